#include <herald/common/strings.h>
#include <herald/upstream_sim/render.h>
#include <herald/upstream_sim/time_format.h>

namespace herald::upstream_sim {

void WriteQueueItem(JsonWriter& w, int64_t id, const QueueStatus& s) {
  w.BeginObject();
  w.Field("id", id);
  w.Field("date", FormatIsoTime(s.date));
  w.Field("isReady", s.ready);
  w.Field("isDone", s.done);
  w.Field("isCanceled", s.canceled);
  w.Field("hasError", false);
  w.Field("pending", s.pending);
  w.Field("total", s.total);
  w.Field("canUnsend", s.can_unsend);
  w.Field("unsendSeconds", s.unsend_seconds);
  w.Field("isCouplePeopleMedia", false);
  w.EndObject();
}

void WriteFan(JsonWriter& w, const FanSnapshot& fan) {
  w.BeginObject();
  w.Field("id", fan.id);
  w.Field("name", FanName(fan.id));
  w.Field("username", FanUsername(fan.id));
  w.NullField("avatar");
  w.NullField("avatarThumbs");
  w.Field("isVerified", false);
  w.Field("view", "f");
  w.Field("subscribedOn", fan.active);
  w.Field("subscribedOnExpiredNow", !fan.active);
  if (fan.lists) {
    w.Key("listsStates").BeginArray();
    for (const FanListState& l : *fan.lists) {
      w.BeginObject();
      w.Field("id", l.id);
      w.Field("type", "custom");
      w.Field("name", l.name);
      w.Field("hasUser", l.has_user);
      w.Field("canAddUser", !l.has_user);
      if (l.has_user) {
        w.Field("cannotAddUserReason", "ALREADY_EXISTS");
      } else {
        w.NullField("cannotAddUserReason");
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

void WriteFanData(JsonWriter& w, const FanSnapshot& fan, absl::Time at) {
  const int64_t total =
      int64_t{fan.spend_subscriptions} + fan.spend_messages + fan.spend_tips + fan.spend_posts;
  w.BeginObject();
  w.Field("available", true);
  w.Field("last_updated_at", FormatIsoTime(at));
  w.Key("spending").BeginObject();
  w.Key("total").Money(total);
  w.Key("messages").Money(fan.spend_messages);
  w.Key("subscribes").Money(fan.spend_subscriptions);
  w.Key("posts").Money(fan.spend_posts);
  w.Key("tips").Money(fan.spend_tips);
  w.Key("streams").Money(0);
  w.EndObject();
  w.NullField("previous_reply_at");
  w.EndObject();
}

void WriteMedia(JsonWriter& w, const MessageContent& content, bool locked) {
  w.BeginArray();
  for (const MediaItem& m : content.media) {
    bool preview = false;
    for (const std::string& p : content.previews) preview |= p == m.ref;
    w.BeginObject();
    w.Field("id", m.numeric_id);
    w.Field("type", m.is_video ? "video" : "photo");
    w.Field("convertedToVideo", false);
    w.Field("canView", !locked || preview);
    w.Field("hasError", false);
    w.Field("isReady", true);
    w.EndObject();
  }
  w.EndArray();
}

void WritePreviews(JsonWriter& w, const MessageContent& content) {
  w.BeginArray();
  for (const std::string& p : content.previews) {
    for (const MediaItem& m : content.media) {
      if (m.ref == p) w.Int(m.numeric_id);
    }
  }
  w.EndArray();
}

void WriteUploadedMedia(JsonWriter& w, uint64_t creator_user_id, const Media& m,
                        std::string_view id_key) {
  w.BeginObject();
  w.Field(id_key, m.prefixed_id);
  w.Field("file_name", m.file_name);
  w.Field("processId", StrCat(m.numeric_id));
  w.Field("host", "convert1.onlyfans.com");
  w.Field("sourceUrl", StrCat("https://of2transcoder.s3.amazonaws.com/upload/", m.numeric_id, "/",
                              PercentEncode(m.file_name), "?X-Amz-Expires=604800"));
  w.Field("extra", "eyJzaW11bGF0ZWQiOnRydWV9");
  w.Key("additional").BeginObject().Field("user", StrCat(creator_user_id)).EndObject();
  w.Key("thumbs").BeginArray();
  w.BeginObject()
      .Field("id", 1)
      .Field("url", StrCat("https://cdn2.onlyfans.com/thumbs/", m.numeric_id, ".jpg"))
      .EndObject();
  w.EndArray();
  w.EndObject();
}

void WriteUploadOutcome(JsonWriter& w, uint64_t creator_user_id, const Media& media, bool failed) {
  w.BeginObject();
  w.Field("prefixed_id", media.prefixed_id);
  if (failed) {
    w.Field("status", "failed");
    w.Field("error", media.error);
  } else {
    w.Field("status", "completed");
    w.Field("credits_used", media.credits);
    w.Key("media");
    WriteUploadedMedia(w, creator_user_id, media);
  }
  w.EndObject();
}

}  // namespace herald::upstream_sim
