// JSON renderings shared by the REST responses and the webhook payloads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <absl/time/time.h>

#include <herald/upstream_sim/events.h>
#include <herald/upstream_sim/json_writer.h>
#include <herald/upstream_sim/model.h>

namespace herald::upstream_sim {

// QueueItem: {id, date, isReady, isDone, isCanceled, hasError, pending, total, canUnsend,
// unsendSeconds, isCouplePeopleMedia}.
void WriteQueueItem(JsonWriter& w, int64_t id, const QueueStatus& status);

// A fan as the platform shows users: {id, name, username, avatar, …}.
void WriteFan(JsonWriter& w, const FanSnapshot& fan);

// fanData: {available, last_updated_at, spending{total, messages, subscribes, posts, tips,
// streams}, previous_reply_at}, money in dollars.
void WriteFanData(JsonWriter& w, const FanSnapshot& fan, absl::Time at);

// The `media` array of a message: platform media objects; locked when `locked`.
void WriteMedia(JsonWriter& w, const MessageContent& content, bool locked);
// The `previews` array: platform media ids of the free previews.
void WritePreviews(JsonWriter& w, const MessageContent& content);

// A finished upload as the synchronous upload response and the `media` of a completed upload
// show it: {prefixed_id, file_name, processId, host, sourceUrl, extra, additional, thumbs}.
// `creator_user_id` is the account's numeric platform id. `id_key` names the media's id field
// ("id" in the vendor's enveloped sample, see UploadResponseShape).
void WriteUploadedMedia(JsonWriter& w, uint64_t creator_user_id, const Media& media,
                        std::string_view id_key = "prefixed_id");

// A finished upload as its status poll and its media_uploads.* webhook show it:
// {prefixed_id, status: "failed", error} when `failed`, else
// {prefixed_id, status: "completed", credits_used, media}.
void WriteUploadOutcome(JsonWriter& w, uint64_t creator_user_id, const Media& media, bool failed);

}  // namespace herald::upstream_sim
