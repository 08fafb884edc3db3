#include <algorithm>
#include <map>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>

#include <herald/common/strings.h>
#include <herald/upstream_sim/api.h>
#include <herald/upstream_sim/json_writer.h>
#include <herald/upstream_sim/money.h>
#include <herald/upstream_sim/multipart.h>
#include <herald/upstream_sim/operations.h>
#include <herald/upstream_sim/render.h>
#include <herald/upstream_sim/time_format.h>

#include "api_webhooks.h"

namespace herald::upstream_sim {
namespace {

namespace json = boost::json;

constexpr int64_t kMaxUploadBytes = 100'000'000;
constexpr size_t kListPreviewUsers = 10;

struct Target {
  std::vector<std::string> segments;  // decoded, without empty ones
  std::map<std::string, std::string, std::less<>> params;
};

std::optional<Target> ParseTarget(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  Target t;
  for (auto segment : url->segments()) {
    if (!segment.empty()) t.segments.push_back(std::string(segment));
  }
  for (auto param : url->params()) t.params[std::string(param.key)] = std::string(param.value);
  return t;
}

// `s` with each byte that is not part of a well-formed UTF-8 sequence (RFC 3629) replaced by
// U+FFFD: an id from the request's path, echoed in a message, keeps the body valid JSON.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range
    if (c < 0x80) {
      n = 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    }
    bool valid = n > 0 && i + n <= s.size();
    for (size_t k = 1; valid && k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      valid = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xbf);
    }
    if (valid) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

std::string ErrorBody(std::string_view code, std::string_view message) {
  JsonWriter w;
  w.BeginObject().Field("error", ValidUtf8(message)).Field("code", code).EndObject();
  return w.Take();
}

struct Outcome {
  int status = 200;
  std::string data;  // "data" of the envelope, or the whole body when !envelope
  bool envelope = true;
  bool paginated = false;
  std::optional<std::string> next_page;
  int64_t cost = 1;  // credits a successful call costs
};

Outcome Fail(const ApiError& e) {
  Outcome o;
  o.status = e.status;
  o.envelope = false;
  o.data = ErrorBody(e.code, e.message);
  return o;
}

Outcome NotFound() { return Fail(ApiError{404, "not_found", "Not found."}); }
Outcome MethodNotAllowed() {
  return Fail(ApiError{405, "method_not_allowed", "Method not allowed."});
}

Outcome Data(std::string data) {
  Outcome o;
  o.data = std::move(data);
  return o;
}

struct Ctx {
  SimState& state;
  const ApiRequest& req;
  const Target& target;
  std::shared_ptr<World> world;
  Team* team = nullptr;
  Account* account = nullptr;
  WebhookEmitter* webhooks = nullptr;  // null: no webhook management API
  absl::Time now;
  Behavior behavior;
  std::string base_url;
  int64_t charged = 0;  // credits taken from the team for this request so far

  std::optional<std::string_view> Param(std::string_view camel, std::string_view snake = "") const {
    auto it = target.params.find(camel);
    if (it == target.params.end() && !snake.empty()) it = target.params.find(snake);
    if (it == target.params.end()) return std::nullopt;
    return std::string_view(it->second);
  }

  bool Charge(int64_t credits) {
    if (credits <= 0) return true;
    if (!team->Charge(credits)) return false;
    charged += credits;
    return true;
  }

  std::string AccountUrl(std::string_view path) const {
    return StrCat(base_url, "/api/", account->id(), path);
  }
};

// ---- rendering -------------------------------------------------------------------------

void WriteQueueDetail(JsonWriter& w, const MassMessage& m, const QueueStatus& s) {
  const MessageContent& c = *m.content;
  w.BeginObject();
  w.Field("id", m.id);
  w.Field("date", FormatIsoTime(s.date));
  w.Field("text", c.html);
  std::string cropped = StripHtml(c.html);
  // Cropped by characters: a cut inside a multi-byte character would make the body invalid JSON.
  if (Utf8Length(cropped) > 100) cropped = StrCat(Utf8Prefix(cropped, 97), "...");
  w.Field("textCropped", cropped);
  if (c.giphy_id.empty()) {
    w.NullField("giphyId");
  } else {
    w.Field("giphyId", c.giphy_id);
  }
  w.Field("isFree", c.price_cents == 0);
  if (c.media.empty()) {
    w.NullField("mediaTypes");
  } else {
    int64_t photos = 0, videos = 0;
    for (const MediaItem& item : c.media) (item.is_video ? videos : photos)++;
    w.Key("mediaTypes").BeginObject();
    if (photos) w.Field("photo", photos);
    if (videos) w.Field("video", videos);
    w.EndObject();
  }
  w.Key("releaseForms").BeginArray().EndArray();
  w.Field("sentCount", m.sent);
  w.Field("viewedCount", m.viewed);
  w.Field("canUnsend", s.can_unsend);
  w.Field("unsendSeconds", s.unsend_seconds);
  w.Field("isCanceled", s.canceled);
  w.Field("hasError", false);
  w.EndObject();
}

void WriteOverviewFields(JsonWriter& w, const MassMessage& m, const QueueStatus& s) {
  const MessageContent& c = *m.content;
  w.Field("id", m.id);
  w.Field("date", FormatIsoTime(s.date));
  w.Field("text", c.html);
  w.Field("rawText", c.text);
  w.Field("responseType", "message");
  w.NullField("template");
  w.Field("sentCount", m.sent);
  w.Field("viewedCount", m.viewed);
  w.Field("isFree", c.price_cents == 0);
  w.Field("isTip", false);
  w.Field("isMediaReady", true);
  w.Field("isCanceled", s.canceled);
  w.Field("isReportedByMe", false);
  w.Field("canUnsend", s.can_unsend);
  w.Field("unsendSeconds", s.unsend_seconds);
  if (c.giphy_id.empty()) {
    w.NullField("giphyId");
  } else {
    w.Field("giphyId", c.giphy_id);
  }
  w.Field("mediaCount", static_cast<int64_t>(c.media.size()));
  w.Key("media");
  WriteMedia(w, c, false);
  w.Key("previews");
  WritePreviews(w, c);
}

void WriteUserList(JsonWriter& w, const std::function<void(JsonWriter&)>& write_id,
                   std::string_view name, std::string_view type, int64_t users_count, bool custom,
                   bool pinned_to_feed, const std::vector<FanSnapshot>& users) {
  w.BeginObject();
  w.Key("id");
  write_id(w);
  w.Field("name", name);
  w.Field("type", type);
  w.Field("usersCount", users_count);
  w.Field("postsCount", 0);
  w.Field("canAddUsers", custom);
  w.Field("canDelete", custom);
  w.Field("canManageUsers", custom);
  w.Field("canUpdate", custom);
  w.Field("canPinnedToChat", true);
  w.Field("canPinnedToFeed", true);
  w.Field("isPinnedToChat", false);
  w.Field("isPinnedToFeed", pinned_to_feed);
  w.Field("direction", "desc");
  w.Field("order", "recent");
  w.Key("sortList").BeginArray().EndArray();
  w.Key("users").BeginArray();
  for (const FanSnapshot& fan : users) WriteFan(w, fan);
  w.EndArray();
  w.EndObject();
}

std::string SystemListTitle(std::string_view name) {
  static const std::map<std::string, std::string, std::less<>> kTitles = {
      {"fans", "Fans"},          {"expired", "Expired"},      {"recent", "Recent (last 30 days)"},
      {"rebill_on", "Renew On"}, {"rebill_off", "Renew Off"}, {"following", "Following"},
      {"tagged", "Tagged"},      {"muted", "Muted"},          {"friends", "Friends"},
      {"bookmarks", "Bookmarks"}};
  auto it = kTitles.find(name);
  return it == kTitles.end() ? std::string(name) : it->second;
}

void WriteMediaBody(JsonWriter& w, const Account& account, const Media& m,
                    std::string_view id_key) {
  WriteUploadedMedia(w, account.identity().user_id, m, id_key);
}

// ---- handlers ------------------------------------------------------------------------

Outcome ListAccounts(Ctx& c) {
  JsonWriter w;
  w.BeginArray();
  for (uint32_t index : c.team->accounts) {
    const AccountIdentity& a = c.world->accounts()[index]->identity();
    w.BeginObject();
    w.Field("id", a.id);
    w.Field("onlyfans_id", a.user_id);
    w.Field("onlyfans_username", a.username);
    w.Field("display_name", a.display_name);
    w.Field("is_authenticated", true);
    w.Field("authentication_progress", "completed");
    w.EndObject();
  }
  w.EndArray();
  return Data(w.Take());
}

Outcome ListQueue(Ctx& c) {
  Account& a = *c.account;
  JsonWriter w;
  w.BeginArray();
  absl::MutexLock lock(&a.mu);
  for (auto it = a.messages.rbegin(); it != a.messages.rend(); ++it) {
    const MassMessage& m = *it->second;
    const QueueStatus s = ComputeQueueStatus(m, c.now, c.behavior.unsend_window);
    const absl::Time ended = m.canceled ? m.canceled_at : m.finished_at;
    // A queue done before the engine's next pass (no recipients) has no end time yet: it just
    // ended.
    const bool ended_known = m.canceled || m.finish_reported;
    const bool recent = !s.done || !ended_known || c.now - ended <= c.behavior.recent_queue_window;
    if (recent) WriteQueueItem(w, m.id, s);
  }
  w.EndArray();
  return Data(w.Take());
}

Outcome Send(Ctx& c) {
  auto request = ParseMassMessageBody(c.req.body, /*update=*/false);
  if (!request.ok()) return Fail(request.error());
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  auto message = SendMassMessage(*c.world, a, request.value(), c.now);
  if (!message.ok()) return Fail(message.error());
  c.state.counters().mass_messages_created.fetch_add(1);
  JsonWriter w;
  WriteQueueItem(w, message.value()->id,
                 ComputeQueueStatus(*message.value(), c.now, c.behavior.unsend_window));
  return Data(w.Take());
}

struct DateRange {
  absl::Time start = absl::InfinitePast();
  absl::Time end = absl::InfiniteFuture();
};

ApiResult<DateRange> ParseRange(const Ctx& c) {
  DateRange range;
  if (auto v = c.Param("startDate", "start_date"); v && !v->empty()) {
    auto t = ParseClientTime(*v);
    if (!t) return Unprocessable("invalid_start_date", "startDate must be a date (Y-m-d H:i:s).");
    range.start = *t;
  }
  if (auto v = c.Param("endDate", "end_date"); v && !v->empty()) {
    auto t = ParseClientTime(*v);
    if (!t) return Unprocessable("invalid_end_date", "endDate must be a date (Y-m-d H:i:s).");
    range.end = *t;
  }
  if (range.end <= range.start) {
    return Unprocessable("invalid_date_range", "The endDate must be a date after startDate.");
  }
  return range;
}

// Messages of the account with a date in [start, end), newest first, matching `query`.
std::vector<const MassMessage*> SelectMessages(const Account& a, const DateRange& range,
                                               std::string_view query, absl::Time now,
                                               bool started_only)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(a.mu) {
  const std::string needle = AsciiLower(query);
  std::vector<const MassMessage*> out;
  for (const auto& [id, message] : a.messages) {
    const MassMessage& m = *message;
    if (m.start_at < range.start || m.start_at >= range.end) continue;
    // Started: sent at least from its start, not cancelled (deleted) before it.
    if (started_only &&
        (m.save_for_later || m.start_at > now || (m.canceled && m.canceled_at <= m.start_at))) {
      continue;
    }
    if (!needle.empty() && AsciiLower(m.content->text).find(needle) == std::string::npos) continue;
    out.push_back(&m);
  }
  std::sort(out.begin(), out.end(), [](const MassMessage* x, const MassMessage* y) {
    return x->start_at != y->start_at ? x->start_at > y->start_at : x->id > y->id;
  });
  return out;
}

Outcome Overview(Ctx& c, bool engagement) {
  auto range = ParseRange(c);
  if (!range.ok()) return Fail(range.error());
  auto limit = ParseIntParam("limit", c.Param("limit"), 1, 100, 10);
  if (!limit.ok()) return Fail(limit.error());
  const std::string query(c.Param("query").value_or(""));
  Account& a = *c.account;
  JsonWriter w;
  std::optional<std::string> next_page;
  {
    absl::MutexLock lock(&a.mu);
    const auto messages = SelectMessages(a, range.value(), query, c.now, engagement);
    const size_t n = std::min<size_t>(messages.size(), static_cast<size_t>(limit.value()));
    const bool has_more = messages.size() > n;
    w.BeginObject();
    w.Field("hasMore", has_more);
    w.Key("items").BeginArray();
    for (size_t i = 0; i < n; ++i) {
      w.BeginObject();
      WriteOverviewFields(w, *messages[i],
                          ComputeQueueStatus(*messages[i], c.now, c.behavior.unsend_window));
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    if (has_more && n > 0) {
      std::string url = c.AccountUrl("/engagement/messages/mass-messages");
      StrAppend(&url, "?limit=", limit.value(),
                "&endDate=", PercentEncode(FormatCursorTime(messages[n - 1]->start_at)));
      if (range.value().start != absl::InfinitePast()) {
        StrAppend(&url, "&startDate=", PercentEncode(FormatCursorTime(range.value().start)));
      }
      if (!query.empty()) StrAppend(&url, "&query=", PercentEncode(query));
      next_page = url;
    }
  }
  Outcome o = Data(w.Take());
  if (engagement) {
    o.paginated = true;
    o.next_page = next_page;
  }
  return o;
}

struct Page {
  int64_t limit = 0;
  int64_t offset = 0;
};

// `limit` in [min_limit, max_limit] (`default_limit` when absent) and `offset` >= 0, from the
// query string; 422 invalid_limit / invalid_offset otherwise.
ApiResult<Page> ParsePage(const Ctx& c, int64_t min_limit, int64_t max_limit,
                          int64_t default_limit) {
  auto limit = ParseIntParam("limit", c.Param("limit"), min_limit, max_limit, default_limit);
  if (!limit.ok()) return limit.error();
  auto offset = ParseIntParam("offset", c.Param("offset"), 0, INT32_MAX, 0);
  if (!offset.ok()) return offset.error();
  return Page{.limit = limit.value(), .offset = offset.value()};
}

// The legacy statistics list: the account's queues of one `type`, newest first, with offset
// paging. `sent`: started and not canceled; `scheduled`: not started yet (a future
// scheduledDate or saved for later); `unsent`: canceled.
Outcome Statistics(Ctx& c) {
  auto page = ParsePage(c, 1, 100, 20);
  if (!page.ok()) return Fail(page.error());
  std::string_view type = c.Param("type").value_or("");
  if (type.empty()) type = "sent";
  if (type != "sent" && type != "scheduled" && type != "unsent") {
    return Fail(Unprocessable("invalid_type", "The type must be sent, scheduled or unsent."));
  }
  const std::string query(c.Param("query").value_or(""));
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  std::vector<const MassMessage*> matching;
  for (const MassMessage* m : SelectMessages(a, DateRange{}, query, c.now, false)) {
    const bool started = !m->save_for_later && m->start_at <= c.now;
    const std::string_view kind = m->canceled ? "unsent" : started ? "sent" : "scheduled";
    if (kind == type) matching.push_back(m);
  }
  const size_t from = std::min(matching.size(), static_cast<size_t>(page.value().offset));
  const size_t to = std::min(matching.size(), from + static_cast<size_t>(page.value().limit));
  JsonWriter w;
  w.BeginObject();
  w.Key("list").BeginArray();
  for (size_t i = from; i < to; ++i) {
    w.BeginObject();
    WriteOverviewFields(w, *matching[i],
                        ComputeQueueStatus(*matching[i], c.now, c.behavior.unsend_window));
    w.EndObject();
  }
  w.EndArray();
  w.Field("hasMore", to < matching.size());
  w.EndObject();
  return Data(w.Take());
}

ApiResult<int64_t> PathId(std::string_view segment, std::string_view code, std::string_view what) {
  auto id = ParseInt<int64_t>(segment);
  if (!id || *id <= 0) return ApiError{404, std::string(code), StrCat(what, " not found.")};
  return *id;
}

Outcome GetMessage(Ctx& c, int64_t id) {
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  const MassMessage* m = a.FindMessage(id);
  if (m == nullptr) return Fail(ApiError{404, "message_not_found", "Mass message not found."});
  JsonWriter w;
  w.BeginObject().Field("success", true).Key("queue");
  WriteQueueDetail(w, *m, ComputeQueueStatus(*m, c.now, c.behavior.unsend_window));
  w.EndObject();
  return Data(w.Take());
}

Outcome UpdateMessage(Ctx& c, int64_t id) {
  auto request = ParseMassMessageBody(c.req.body, /*update=*/true);
  if (!request.ok()) return Fail(request.error());
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  auto m = UpdateMassMessage(*c.world, a, id, request.value(), c.now);
  if (!m.ok()) return Fail(m.error());
  JsonWriter w;
  WriteQueueItem(w, m.value()->id, ComputeQueueStatus(*m.value(), c.now, c.behavior.unsend_window));
  return Data(w.Take());
}

Outcome DeleteMessage(Ctx& c, int64_t id) {
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  auto m = UnsendMassMessage(*c.world, a, id, c.now, c.behavior, c.state.sink());
  if (!m.ok()) return Fail(m.error());
  JsonWriter w;
  w.BeginObject().Field("success", true).Key("queue");
  WriteQueueDetail(w, *m.value(), ComputeQueueStatus(*m.value(), c.now, c.behavior.unsend_window));
  w.EndObject();
  return Data(w.Take());
}

Outcome Upload(Ctx& c) {
  std::string file_name, file_url, type;
  std::string failure;  // the error an upload of file_url ends with
  int64_t bytes = 0;
  bool has_file = false, has_url = false, async = false;
  const std::string content_type = AsciiLower(c.req.content_type);
  if (content_type.starts_with("multipart/form-data")) {
    auto boundary = MultipartBoundary(c.req.content_type);
    if (!boundary.ok()) {
      return Fail(ApiError{400, "invalid_multipart", std::string(boundary.status().message())});
    }
    auto parts = ParseMultipart(*boundary, c.req.body);
    if (!parts.ok()) {
      return Fail(ApiError{400, "invalid_multipart", std::string(parts.status().message())});
    }
    for (const FormPart& part : *parts) {
      if (part.name == "file") {
        has_file = true;
        bytes = static_cast<int64_t>(part.data.size());
        file_name = part.filename;
      } else if (part.name == "file_url") {
        has_url = true;
        file_url = std::string(part.data);
      } else if (part.name == "type") {
        type = std::string(part.data);
      } else if (part.name == "async") {
        async = part.data == "1" || AsciiLower(part.data) == "true";
      }
    }
  } else if (content_type.starts_with("application/json")) {
    boost::system::error_code ec;
    json::value root = json::parse(json::string_view(c.req.body.data(), c.req.body.size()), ec);
    if (ec)
      return Fail(ApiError{400, "invalid_json", StrCat("Malformed JSON body: ", ec.message())});
    if (!root.is_object()) {
      return Fail(Unprocessable("invalid_body", "The body must be a JSON object."));
    }
    const json::object& o = root.as_object();
    if (const json::value* v = o.if_contains("file_url"); v && !v->is_null()) {
      if (!v->is_string())
        return Fail(Unprocessable("invalid_file_url", "file_url must be a URL."));
      has_url = true;
      file_url = std::string(v->as_string().data(), v->as_string().size());
    }
    if (const json::value* v = o.if_contains("type"); v && v->is_string()) {
      type = std::string(v->as_string().data(), v->as_string().size());
    }
    if (const json::value* v = o.if_contains("async"); v && v->is_bool()) async = v->as_bool();
  } else {
    return Fail(Unprocessable("invalid_upload",
                              "Send multipart/form-data (file or file_url) or JSON {file_url}."));
  }
  if (has_file == has_url) {
    return Fail(Unprocessable("file_required", "Exactly one of file or file_url is required."));
  }
  if (has_url) {
    if (!(file_url.starts_with("http://") || file_url.starts_with("https://")) ||
        file_url.size() < 10) {
      return Fail(Unprocessable("invalid_file_url", "file_url must be an http(s) URL."));
    }
    bytes = c.behavior.url_upload_bytes;
    // The simulator downloads nothing: a URL on the host `fail.invalid` stands for a download
    // that fails (async: the upload ends "failed"; sync: 422 upload_failed).
    if (auto parsed = boost::urls::parse_uri(file_url);
        parsed && parsed->host() == "fail.invalid") {
      failure = StrCat("Could not download ", file_url, ": the host did not answer.");
      if (!async) return Fail(Unprocessable("upload_failed", failure));
    }
    std::string_view path = file_url;
    path = path.substr(0, path.find('?'));
    file_name = std::string(path.substr(path.rfind('/') + 1));
  }
  if (!type.empty() && type != "default" && type != "avatar" && type != "header") {
    return Fail(Unprocessable("invalid_type", "type must be default, avatar or header."));
  }
  if (bytes > kMaxUploadBytes) {
    return Fail(Unprocessable("file_too_large", "Files are limited to 100 MB."));
  }
  const int64_t cost = UploadCredits(bytes, c.behavior.upload_credits_per_mb);
  if (!c.Charge(cost - c.charged)) {
    return Fail(ApiError{402, "insufficient_credits",
                         StrCat("This upload needs ", cost, " credits; the balance is too low.")});
  }
  Account& a = *c.account;
  // The documented flat body, or the marketing sample's envelope with the media as `data.id`.
  const bool in_data = c.behavior.upload_response_shape == UploadResponseShape::kData;
  const std::string_view id_key = in_data ? "id" : "prefixed_id";
  JsonWriter w;
  Outcome o;
  {
    absl::MutexLock lock(&a.mu);
    Media& media =
        CreateUpload(*c.world, a, file_name, bytes, async, cost, c.now, c.behavior, failure);
    if (async) {
      o.status = 202;
      w.BeginObject();
      w.Field(id_key, media.prefixed_id);
      w.Field("status", "pending");
      w.Field("polling_url", c.AccountUrl(StrCat("/media/uploads/", media.prefixed_id, "/status")));
      w.EndObject();
    } else {
      WriteMediaBody(w, a, media, id_key);
    }
  }
  c.state.counters().uploads.fetch_add(1);
  o.data = w.Take();
  o.envelope = in_data;
  o.cost = cost;
  return o;
}

Outcome UploadStatus(Ctx& c, std::string_view prefixed_id) {
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  auto it = a.media.find(std::string(prefixed_id));
  if (it == a.media.end()) {
    return Fail(ApiError{404, "media_not_found", "Upload not found for this account."});
  }
  const Media& m = it->second;
  JsonWriter w;
  if (m.ready_at > c.now) {
    w.BeginObject();
    w.Field("prefixed_id", m.prefixed_id);
    w.Field("status", "processing");
    w.EndObject();
  } else {
    WriteUploadOutcome(w, a.identity().user_id, m, m.failed(c.now));
  }
  Outcome o = Data(w.Take());
  o.envelope = false;
  o.cost = 0;
  return o;
}

std::vector<FanSnapshot> FanSnapshots(const Account& a, const std::vector<uint32_t>& members,
                                      size_t offset, size_t limit)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(a.mu) {
  std::vector<FanSnapshot> out;
  for (size_t i = offset; i < members.size() && out.size() < limit; ++i) {
    out.push_back(Snapshot(a.fans[members[i]]));
  }
  return out;
}

Outcome ListUserLists(Ctx& c) {
  auto page = ParsePage(c, 10, 50, 10);
  if (!page.ok()) return Fail(page.error());
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  JsonWriter w;
  w.BeginArray();
  const int64_t system = static_cast<int64_t>(SystemListNames().size());
  const int64_t total = system + static_cast<int64_t>(a.lists.size());
  for (int64_t i = page.value().offset; i < total && i < page.value().offset + page.value().limit;
       ++i) {
    if (i < system) {
      const std::string& name = SystemListNames()[static_cast<size_t>(i)];
      const int64_t count = static_cast<int64_t>(SystemListMembers(a, name, c.now).size());
      WriteUserList(w, [&](JsonWriter& jw) { jw.String(name); }, SystemListTitle(name), name, count,
                    false, false, {});
    } else {
      const UserList& list = a.lists[static_cast<size_t>(i - system)];
      WriteUserList(w, [&](JsonWriter& jw) { jw.String(StrCat(list.id)); }, list.name, "custom",
                    static_cast<int64_t>(list.members.size()), true, list.pinned_to_feed, {});
    }
  }
  w.EndArray();
  return Data(w.Take());
}

Outcome CreateUserList(Ctx& c) {
  auto name = ParseCreateListBody(c.req.body);
  if (!name.ok()) return Fail(name.error());
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  const UserList& list = CreateList(*c.world, a, name.value(), c.now);
  c.state.counters().lists_created.fetch_add(1);
  JsonWriter w;
  WriteUserList(w, [&](JsonWriter& jw) { jw.Int(list.id); }, list.name, "custom", 0, true, false,
                {});
  return Data(w.Take());
}

// The members of list `ref` (a system list name or a custom list id); nullopt when unknown.
std::optional<std::vector<uint32_t>> ListMembers(const Account& a, std::string_view ref,
                                                 absl::Time now, const UserList** custom)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(a.mu) {
  *custom = nullptr;
  if (IsSystemList(ref)) return SystemListMembers(a, ref, now);
  auto id = ParseInt<int64_t>(ref);
  if (!id) return std::nullopt;
  for (const UserList& list : a.lists) {
    if (list.id == *id) {
      *custom = &list;
      return list.members;
    }
  }
  return std::nullopt;
}

Outcome GetUserList(Ctx& c, std::string_view ref) {
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  const UserList* custom = nullptr;
  auto members = ListMembers(a, ref, c.now, &custom);
  if (!members)
    return Fail(ApiError{404, "list_not_found", StrCat("User list ", ref, " not found.")});
  JsonWriter w;
  const auto users = FanSnapshots(a, *members, 0, kListPreviewUsers);
  const int64_t count = static_cast<int64_t>(members->size());
  if (custom != nullptr) {
    WriteUserList(
        w, [&](JsonWriter& jw) { jw.Int(custom->id); }, custom->name, "custom", count, true,
        custom->pinned_to_feed, users);
  } else {
    WriteUserList(
        w, [&](JsonWriter& jw) { jw.String(ref); }, SystemListTitle(ref), ref, count, false, false,
        users);
  }
  return Data(w.Take());
}

// {list: Fan[], hasMore, nextOffset}: `limit` fans of `members` from `offset`.
std::string MembersPage(const Account& a, const std::vector<uint32_t>& members, int64_t offset,
                        int64_t limit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(a.mu) {
  const auto users =
      FanSnapshots(a, members, static_cast<size_t>(offset), static_cast<size_t>(limit));
  const int64_t next = offset + static_cast<int64_t>(users.size());
  JsonWriter w;
  w.BeginObject();
  w.Key("list").BeginArray();
  for (const FanSnapshot& fan : users) WriteFan(w, fan);
  w.EndArray();
  w.Field("hasMore", next < static_cast<int64_t>(members.size()));
  w.Field("nextOffset", next);
  w.EndObject();
  return w.Take();
}

Outcome ListUsersInList(Ctx& c, std::string_view ref) {
  auto page = ParsePage(c, 1, 100, 10);
  if (!page.ok()) return Fail(page.error());
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  const UserList* custom = nullptr;
  auto members = ListMembers(a, ref, c.now, &custom);
  if (!members)
    return Fail(ApiError{404, "list_not_found", StrCat("User list ", ref, " not found.")});
  const int64_t limit = std::max<int64_t>(1, page.value().limit - c.behavior.member_page_shortfall);
  return Data(MembersPage(a, *members, page.value().offset, limit));
}

Outcome AddUsers(Ctx& c, std::string_view ref) {
  auto ids = ParseAddUsersBody(c.req.body, c.behavior.max_ids_per_list_add);
  if (!ids.ok()) return Fail(ids.error());
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  auto added = AddUsersToList(a, ref, ids.value());
  if (!added.ok()) return Fail(added.error());
  JsonWriter w;
  w.BeginObject().Key(ref).BeginArray();
  for (uint64_t id : added.value()) w.UInt(id);
  w.EndArray().EndObject();
  return Data(w.Take());
}

// A custom list as get, update and clear render it: integer id, the first members.
void WriteCustomList(JsonWriter& w, const Account& a, const UserList& list)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(a.mu) {
  WriteUserList(
      w, [&](JsonWriter& jw) { jw.Int(list.id); }, list.name, "custom",
      static_cast<int64_t>(list.members.size()), true, list.pinned_to_feed,
      FanSnapshots(a, list.members, 0, kListPreviewUsers));
}

std::string SuccessBody() {
  JsonWriter w;
  w.BeginObject().Field("success", true).EndObject();
  return w.Take();
}

Outcome UpdateUserList(Ctx& c, std::string_view ref) {
  auto request = ParseUpdateListBody(c.req.body);
  if (!request.ok()) return Fail(request.error());
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  auto list = UpdateList(a, ref, request.value());
  if (!list.ok()) return Fail(list.error());
  JsonWriter w;
  WriteCustomList(w, a, *list.value());
  return Data(w.Take());
}

Outcome DeleteUserList(Ctx& c, std::string_view ref) {
  Account& a = *c.account;
  {
    absl::MutexLock lock(&a.mu);
    if (auto error = DeleteList(a, ref)) return Fail(*error);
  }
  c.state.counters().lists_deleted.fetch_add(1);
  return Data(SuccessBody());
}

Outcome ClearUserList(Ctx& c, std::string_view ref) {
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  auto list = ClearList(a, ref);
  if (!list.ok()) return Fail(list.error());
  JsonWriter w;
  WriteCustomList(w, a, *list.value());
  return Data(w.Take());
}

Outcome RemoveListUser(Ctx& c, std::string_view ref, std::string_view user) {
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  auto list = RemoveUserFromList(a, ref, user);
  if (!list.ok()) return Fail(list.error());
  const UserList& l = *list.value();
  JsonWriter w;
  w.BeginObject().Key("list");
  WriteCustomList(w, a, l);
  // The list's state for the removed fan, as listsStates entries on users have it.
  w.Key("userState").BeginObject();
  w.Field("id", l.id);
  w.Field("name", l.name);
  w.Field("type", "custom");
  w.Field("hasUser", false);
  w.Field("canAddUser", true);
  w.NullField("cannotAddUserReason");
  w.EndObject();
  w.EndObject();
  return Data(w.Take());
}

Outcome PinListUser(Ctx& c, std::string_view ref, std::string_view user) {
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  if (auto error = PinUserInList(a, ref, user, c.now)) return Fail(*error);
  return Data(SuccessBody());
}

Outcome ListPinnedUsers(Ctx& c, std::string_view ref) {
  auto page = ParsePage(c, 1, 100, 10);
  if (!page.ok()) return Fail(page.error());
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  auto pinned = PinnedUsers(a, ref);
  if (!pinned.ok()) return Fail(pinned.error());
  return Data(MembersPage(a, pinned.value(), page.value().offset, page.value().limit));
}

Outcome TopMessage(Ctx& c) {
  auto range = ParseRange(c);
  if (!range.ok()) return Fail(range.error());
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  const auto messages = SelectMessages(a, range.value(), "", c.now, /*started_only=*/true);
  const MassMessage* top = nullptr;
  for (const MassMessage* m : messages) {
    if (m->purchases.empty()) continue;  // a message nobody bought is no top message
    if (top == nullptr || m->purchases.size() > top->purchases.size() ||
        (m->purchases.size() == top->purchases.size() && m->revenue_cents > top->revenue_cents)) {
      top = m;
    }
  }
  JsonWriter w;
  w.BeginObject().Key("purchases");
  if (top == nullptr) {
    w.Null();
  } else {
    const QueueStatus s = ComputeQueueStatus(*top, c.now, c.behavior.unsend_window);
    const MessageContent& content = *top->content;
    w.BeginObject();
    w.Field("id", top->id);
    w.Field("date", FormatIsoTime(s.date));
    w.Field("text", content.html);
    w.Field("rawText", content.text);
    w.Field("price", FormatDecimal(content.price_cents));
    w.Field("purchasedCount", static_cast<int64_t>(top->purchases.size()));
    w.Field("sentCount", top->sent);
    w.Field("viewedCount", top->viewed);
    w.Field("totalRevenueGenerated", FormatDecimal(top->revenue_cents));
    w.Field("canSendMessageToBuyers", true);
    w.Field("isFree", content.price_cents == 0);
    w.Field("isTip", false);
    w.Field("isCanceled", s.canceled);
    w.Field("canUnsend", s.can_unsend);
    w.Field("unsendSeconds", s.unsend_seconds);
    w.Field("mediaCount", static_cast<int64_t>(content.media.size()));
    w.Key("media");
    WriteMedia(w, content, false);
    w.Key("previews");
    WritePreviews(w, content);
    w.Field("responseType", "message");
    w.NullField("template");
    w.Key("relationships").BeginObject().Key("buyers").BeginObject();
    w.Field("href", c.AccountUrl(StrCat("/engagement/messages/", top->id, "/buyers")));
    w.Field("method", "GET");
    w.EndObject().EndObject();
    w.EndObject();
  }
  w.EndObject();
  return Data(w.Take());
}

constexpr absl::Duration kDefaultChartRange = absl::Hours(24 * 30);
constexpr absl::Duration kMaxChartRange = absl::Hours(24 * 366);

int64_t UtcDay(absl::Time t) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  return seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
}

// Mass messages started and their purchases made in [start, end), per UTC day from the day of
// `start` (each vector has one slot per day of the range), and their totals.
struct ChartCounts {
  std::vector<int64_t> messages;
  std::vector<int64_t> purchases;
  int64_t messages_total = 0;
  int64_t purchases_total = 0;
};

ChartCounts CountChart(const Account& a, const DateRange& range, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(a.mu) {
  ChartCounts out;
  const int64_t first = UtcDay(range.start);
  const size_t days = static_cast<size_t>(UtcDay(range.end - absl::Nanoseconds(1)) - first + 1);
  out.messages.assign(days, 0);
  out.purchases.assign(days, 0);
  for (const MassMessage* m : SelectMessages(a, range, "", now, /*started_only=*/true)) {
    ++out.messages[static_cast<size_t>(UtcDay(m->start_at) - first)];
    ++out.messages_total;
  }
  for (const auto& [id, message] : a.messages) {
    for (const Purchase& p : message->purchases) {
      if (p.at < range.start || p.at >= range.end) continue;
      ++out.purchases[static_cast<size_t>(UtcDay(p.at) - first)];
      ++out.purchases_total;
    }
  }
  return out;
}

// Mass messages started per day and their purchases per day over [startDate, endDate)
// (default: the 30 days before now), with totals and the change from the preceding range of the
// same length unless withTotal is false.
Outcome MassMessagesChart(Ctx& c) {
  auto parsed = ParseRange(c);
  if (!parsed.ok()) return Fail(parsed.error());
  DateRange range = parsed.value();
  if (range.end == absl::InfiniteFuture()) range.end = c.now;
  if (range.start == absl::InfinitePast()) range.start = range.end - kDefaultChartRange;
  if (range.end <= range.start) {
    return Fail(Unprocessable("invalid_date_range", "The endDate must be a date after startDate."));
  }
  if (range.end - range.start > kMaxChartRange) {
    return Fail(Unprocessable("invalid_date_range", "The chart covers at most 366 days."));
  }
  bool with_total = true;
  if (auto v = c.Param("withTotal", "with_total"); v && !v->empty()) {
    const std::string value = AsciiLower(*v);
    if (value == "false" || value == "0") {
      with_total = false;
    } else if (value != "true" && value != "1") {
      return Fail(Unprocessable("invalid_with_total", "withTotal must be true or false."));
    }
  }
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  const ChartCounts counts = CountChart(a, range, c.now);
  ChartCounts previous;
  if (with_total) {
    const absl::Duration length = range.end - range.start;
    previous = CountChart(a, DateRange{range.start - length, range.start}, c.now);
  }
  const int64_t first = UtcDay(range.start);
  JsonWriter w;
  w.BeginObject();
  for (int group = 0; group < 2; ++group) {
    const std::vector<int64_t>& per_day = group == 0 ? counts.messages : counts.purchases;
    w.Key(group == 0 ? "group_messages" : "group_messages_purchases").BeginObject();
    w.Key("chart").BeginArray();
    for (size_t i = 0; i < per_day.size(); ++i) {
      const absl::Time day = absl::FromUnixSeconds((first + static_cast<int64_t>(i)) * 86400);
      w.BeginObject();
      w.Field("date", FormatSqlTime(day).substr(0, 10));
      w.Field("count", per_day[i]);
      w.EndObject();
    }
    w.EndArray();
    if (with_total) {
      const int64_t total = group == 0 ? counts.messages_total : counts.purchases_total;
      const int64_t before = group == 0 ? previous.messages_total : previous.purchases_total;
      w.Field("total", total);
      w.Field("delta", total - before);
    }
    w.EndObject();
  }
  w.EndObject();
  return Data(w.Take());
}

Outcome Buyers(Ctx& c, int64_t message_id) {
  auto page = ParsePage(c, 1, 100, 10);
  if (!page.ok()) return Fail(page.error());
  Account& a = *c.account;
  absl::MutexLock lock(&a.mu);
  const MassMessage* m = a.FindMessage(message_id);
  if (m == nullptr) return Fail(ApiError{404, "message_not_found", "Message not found."});
  // The marker fixes the set of buyers a traversal sees (those before it), so purchases made
  // while a client pages do not shift the pages.
  const int64_t count = static_cast<int64_t>(m->purchases.size());
  auto marker = ParseIntParam("marker", c.Param("marker"), 0, count, count);
  if (!marker.ok()) return Fail(marker.error());
  const int64_t served = std::max<int64_t>(1, page.value().limit - c.behavior.buyer_page_shortfall);
  JsonWriter w;
  w.BeginObject();
  w.Key("list").BeginArray();
  int64_t returned = 0;
  for (int64_t i = marker.value() - 1 - page.value().offset; i >= 0 && returned < served; --i) {
    const Purchase& p = m->purchases[static_cast<size_t>(i)];
    WriteFan(w, Snapshot(a.fans[m->recipients[p.recipient]]));
    ++returned;
  }
  w.EndArray();
  const bool has_more = marker.value() - page.value().offset - returned > 0;
  w.Field("hasMore", has_more);
  w.Field("marker", marker.value());
  w.EndObject();
  Outcome o = Data(w.Take());
  o.paginated = c.behavior.buyer_page_links;  // without links, no `_pagination` at all
  if (has_more && c.behavior.buyer_page_links) {
    o.next_page = c.AccountUrl(
        StrCat("/engagement/messages/", message_id, "/buyers?limit=", page.value().limit,
               "&offset=", page.value().offset + returned, "&marker=", marker.value()));
  }
  return o;
}

// /api/webhooks/...: team-level, no account in the path (api_webhooks.h).
Outcome Webhooks(Ctx& c) {
  if (c.webhooks == nullptr) return NotFound();
  const std::vector<std::string>& s = c.target.segments;
  auto result = HandleWebhookApi(*c.webhooks, WebhookApiRequest{.method = c.req.method,
                                                                .path = {s.begin() + 2, s.end()},
                                                                .params = c.target.params,
                                                                .body = c.req.body,
                                                                .world = *c.world,
                                                                .team = *c.team});
  if (!result.ok()) return Fail(result.error());
  return Data(std::move(result).value());
}

Outcome Route(Ctx& c) {
  const std::vector<std::string>& s = c.target.segments;
  const std::string& method = c.req.method;
  if (s.size() >= 2 && s[1] == "webhooks") return Webhooks(c);
  if (s.size() == 2 && s[1] == "accounts") {
    return method == "GET" ? ListAccounts(c) : MethodNotAllowed();
  }
  if (s.size() < 3) return NotFound();
  Account* account = c.world->FindAccount(s[1]);
  if (account == nullptr || account->identity().team_id != c.team->id()) {
    return Fail(ApiError{404, "account_not_found", StrCat("Account ", s[1], " not found.")});
  }
  c.account = account;
  const std::vector<std::string> rest(s.begin() + 2, s.end());
  auto is = [&](std::initializer_list<std::string_view> pattern) {
    if (pattern.size() != rest.size()) return false;
    size_t i = 0;
    for (std::string_view p : pattern) {
      if (p != "*" && p != rest[i]) return false;
      ++i;
    }
    return true;
  };
  if (is({"mass-messaging"})) {
    if (method == "GET") return ListQueue(c);
    if (method == "POST") return Send(c);
    return MethodNotAllowed();
  }
  if (is({"mass-messaging", "overview"})) {
    return method == "GET" ? Overview(c, /*engagement=*/false) : MethodNotAllowed();
  }
  if (is({"mass-messaging", "statistics"})) {
    return method == "GET" ? Statistics(c) : MethodNotAllowed();
  }
  if (is({"mass-messaging", "*"})) {
    auto id = PathId(rest[1], "message_not_found", "Mass message");
    if (!id.ok()) return Fail(id.error());
    if (method == "GET") return GetMessage(c, id.value());
    if (method == "PUT") return UpdateMessage(c, id.value());
    if (method == "DELETE") return DeleteMessage(c, id.value());
    return MethodNotAllowed();
  }
  if (is({"media", "upload"})) return method == "POST" ? Upload(c) : MethodNotAllowed();
  if (is({"media", "uploads", "*", "status"})) {
    return method == "GET" ? UploadStatus(c, rest[2]) : MethodNotAllowed();
  }
  if (is({"user-lists"})) {
    if (method == "GET") return ListUserLists(c);
    if (method == "POST") return CreateUserList(c);
    return MethodNotAllowed();
  }
  if (is({"user-lists", "*"})) {
    if (method == "GET") return GetUserList(c, rest[1]);
    if (method == "PUT") return UpdateUserList(c, rest[1]);
    if (method == "DELETE") return DeleteUserList(c, rest[1]);
    return MethodNotAllowed();
  }
  if (is({"user-lists", "*", "users"})) {
    if (method == "GET") return ListUsersInList(c, rest[1]);
    if (method == "POST") return AddUsers(c, rest[1]);
    if (method == "DELETE") return ClearUserList(c, rest[1]);
    return MethodNotAllowed();
  }
  // Before {userId}: "pinned" is not a user id.
  if (is({"user-lists", "*", "users", "pinned"})) {
    return method == "GET" ? ListPinnedUsers(c, rest[1]) : MethodNotAllowed();
  }
  if (is({"user-lists", "*", "users", "*"})) {
    return method == "DELETE" ? RemoveListUser(c, rest[1], rest[3]) : MethodNotAllowed();
  }
  if (is({"user-lists", "*", "users", "*", "pin"})) {
    return method == "POST" ? PinListUser(c, rest[1], rest[3]) : MethodNotAllowed();
  }
  if (is({"engagement", "messages", "mass-messages"})) {
    return method == "GET" ? Overview(c, /*engagement=*/true) : MethodNotAllowed();
  }
  if (is({"engagement", "messages", "mass-messages", "chart"})) {
    return method == "GET" ? MassMessagesChart(c) : MethodNotAllowed();
  }
  if (is({"engagement", "messages", "top-message"})) {
    return method == "GET" ? TopMessage(c) : MethodNotAllowed();
  }
  if (is({"engagement", "messages", "*", "buyers"})) {
    auto id = PathId(rest[2], "message_not_found", "Message");
    if (!id.ok()) return Fail(id.error());
    return method == "GET" ? Buyers(c, id.value()) : MethodNotAllowed();
  }
  return NotFound();
}

std::string_view BearerKey(std::string_view authorization) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (authorization.size() <= kPrefix.size()) return "";
  if (AsciiLower(authorization.substr(0, kPrefix.size())) != "bearer ") return "";
  std::string_view key = authorization.substr(kPrefix.size());
  while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
  while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
  return key;
}

}  // namespace

std::string Api::TeamOf(std::string_view authorization) const {
  const std::string_view key = BearerKey(authorization);
  if (key.empty()) return "";
  Team* team = state_.world()->TeamForKey(key);
  return team == nullptr ? "" : team->id();
}

ApiResponse Api::Handle(const ApiRequest& req) {
  RequestCounters& counters = state_.counters();
  counters.requests.fetch_add(1, std::memory_order_relaxed);
  ApiResponse res;
  auto finish = [&](int status, std::string body) {
    res.status = status;
    res.body = std::move(body);
    counters.CountStatus(status);
    return std::move(res);
  };
  auto target = ParseTarget(req.target);
  if (!target || target->segments.empty() || target->segments[0] != "api") {
    return finish(404, ErrorBody("not_found", "Not found."));
  }
  std::shared_ptr<World> world = state_.world();
  const std::string_view key = BearerKey(req.authorization);
  Team* team = key.empty() ? nullptr : world->TeamForKey(key);
  if (team == nullptr) return finish(401, std::string(kUnauthorizedBody));

  const absl::Time now = state_.clock().Now();
  // Every call costs a credit, except an upload's status poll (free).
  const std::vector<std::string>& path = target->segments;
  const bool free = req.method == "GET" && path.size() == 6 && path[2] == "media" &&
                    path[3] == "uploads" && path[5] == "status";
  const Admission admission = team->Admit(now, free ? 0 : 1);
  auto rate_headers = [&](int64_t used, int64_t balance) {
    res.headers.emplace_back("X-OFAPI-Credits-Used", StrCat(used));
    res.headers.emplace_back("X-OFAPI-Credits-Balance", StrCat(balance));
    res.headers.emplace_back("X-Rate-Limit-Limit-Minute", StrCat(admission.limit_minute));
    res.headers.emplace_back("X-Rate-Limit-Remaining-Minute", StrCat(admission.remaining_minute));
  };
  if (admission.result == Admission::Result::kRateLimited) {
    rate_headers(0, admission.balance);
    res.headers.emplace_back("Retry-After", StrCat(admission.retry_after_seconds));
    return finish(429, ErrorBody("rate_limited", StrCat("Too many requests: the team's limit is ",
                                                        admission.limit_minute, " per minute.")));
  }
  if (admission.result == Admission::Result::kNoCredits) {
    rate_headers(0, admission.balance);
    return finish(402, ErrorBody("insufficient_credits",
                                 "Insufficient credits. Top up at https://app.onlyfansapi.com."));
  }

  Ctx c{.state = state_,
        .req = req,
        .target = *target,
        .world = world,
        .team = team,
        .webhooks = webhooks_,
        .now = now,
        .behavior = state_.behavior(),
        .charged = free ? 0 : 1};
  c.base_url = !public_url_.empty() ? public_url_
               : req.host.empty()   ? std::string("http://127.0.0.1")
                                    : StrCat("http://", req.host);
  Outcome out = Route(c);
  int64_t used = 0;
  if (out.status >= 200 && out.status < 300) {
    used = out.cost;
    if (c.charged > out.cost) team->Refund(c.charged - out.cost);
  } else {
    team->Refund(c.charged);
  }
  const int64_t balance = team->balance();
  rate_headers(used, balance);
  if (!out.envelope) return finish(out.status, std::move(out.data));

  JsonWriter w;
  w.BeginObject();
  w.Key("data").Raw(out.data);
  if (out.paginated) {
    w.Key("_pagination").BeginObject();
    if (out.next_page) {
      w.Field("next_page", *out.next_page);
    } else {
      w.NullField("next_page");
    }
    w.EndObject();
  }
  w.Key("_meta").BeginObject();
  w.Key("_credits").BeginObject();
  w.Field("used", used).Field("balance", balance).Field("note", "Always");
  w.EndObject();
  w.Key("_cache").BeginObject();
  w.Field("is_cached", false).Field("note", "Cache disabled for this endpoint");
  w.EndObject();
  w.Key("_rate_limits").BeginObject();
  w.Field("limit_minute", admission.limit_minute);
  w.Field("remaining_minute", admission.remaining_minute);
  w.NullField("limit_day");
  w.NullField("remaining_day");
  w.Field("notice", "Daily limits have been removed; only the per-minute limit applies.");
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return finish(out.status, w.Take());
}

}  // namespace herald::upstream_sim
