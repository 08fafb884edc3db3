#include "responses.h"

#include <algorithm>
#include <type_traits>

#include <absl/strings/ascii.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/upstream/error.h>

namespace herald::upstream::internal {
namespace {

constexpr size_t kMaxQuotedMessage = 300;
constexpr std::string_view kUploadedMediaIdPrefix = "ofapi_media_";

std::optional<int64_t> HeaderInt(const HttpResponse& response, std::string_view name) {
  const std::optional<std::string_view> value = response.Header(name);
  if (!value.has_value()) return std::nullopt;
  std::string_view v = *value;
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return ParseInt<int64_t>(v);
}

// The longest Retry-After honoured: a team is not held back for days by one answer.
constexpr absl::Duration kMaxRetryAfter = absl::Hours(1);

// Retry-After as whole seconds (what the upstream sends) or as an HTTP date (RFC 9110), from
// now, between zero and kMaxRetryAfter; nullopt when absent or neither.
std::optional<absl::Duration> RetryAfterOf(const HttpResponse& response) {
  if (std::optional<int64_t> seconds = HeaderInt(response, "Retry-After")) {
    if (*seconds < 0) return std::nullopt;
    return std::min(absl::Seconds(*seconds), kMaxRetryAfter);
  }
  const std::optional<std::string_view> value = response.Header("Retry-After");
  if (!value.has_value()) return std::nullopt;
  // Digits too many to read are seconds all the same: the longest hold, not the default.
  if (const std::string_view digits = ToStd(absl::StripAsciiWhitespace(ToAbsl(*value)));
      !digits.empty() && std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
    return kMaxRetryAfter;
  }
  absl::Time at;
  std::string err;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", std::string(*value), absl::UTCTimeZone(), &at,
                       &err)) {
    return std::nullopt;
  }
  return std::clamp(absl::Ceil(at - absl::Now(), absl::Seconds(1)), absl::ZeroDuration(),
                    kMaxRetryAfter);
}

// Printable, bounded text for a status message.
std::string Quote(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, kMaxQuotedMessage)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  if (s.size() > kMaxQuotedMessage) out += "...";
  return out;
}

struct UpstreamMessage {
  std::string message;
  std::string code;
};

// {"error": "..."}, {"message": "...", "errors": {"price": ["..."]}}, {"error": {"message",
// "code"}}, with an optional "code"; anything else is quoted as text.
UpstreamMessage ReadErrorBody(std::string_view body) {
  UpstreamMessage out;
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(body);
  if (!doc.ok() || !doc->root().is_object()) {
    out.message = Quote(body);
    return out;
  }
  ObjectReader root = JsonReader(*doc, "").Object();
  std::optional<JsonReader> error = root.Get("error");
  ObjectReader holder = root;
  if (error.has_value() && error->value().is_object()) {
    holder = error->Object();
  } else if (error.has_value() && error->value().is_string()) {
    out.message = error->String();
  }
  if (out.message.empty()) {
    std::optional<JsonReader> message = holder.Get("message");
    if (message.has_value() && message->value().is_string()) out.message = message->String();
  }
  std::optional<JsonReader> code = holder.Get("code");
  if (!code.has_value()) code = root.Get("code");
  if (code.has_value() && (code->value().is_string() || code->value().is_number())) {
    out.code = code->value().is_string() ? code->String() : code->IdText();
  }
  // Laravel-style validation details: the first message of up to three fields.
  std::optional<JsonReader> errors = root.Get("errors");
  if (errors.has_value() && errors->value().is_object()) {
    std::vector<std::string> details;
    for (const auto& member : errors->value().get_object()) {
      if (details.size() == 3) break;
      const auto& v = member.value();
      if (v.is_array() && !v.get_array().empty() && v.get_array()[0].is_string()) {
        details.push_back(std::string(v.get_array()[0].get_string()));
      } else if (v.is_string()) {
        details.push_back(std::string(v.get_string()));
      }
    }
    if (!details.empty()) {
      out.message = out.message.empty() ? StrJoin(details, "; ")
                                        : StrCat(out.message, " (", StrJoin(details, "; "), ")");
    }
  }
  out.message = Quote(out.message);
  out.code = Quote(out.code);
  return out;
}

// `data` of the standard envelope.
JsonReader Data(const JsonDocument& doc) { return JsonReader(doc, "").Object().Required("data"); }

std::optional<std::string> NextPage(const JsonDocument& doc) {
  ObjectReader root = JsonReader(doc, "").Object();
  std::optional<JsonReader> pagination = root.Get("_pagination");
  if (!pagination.has_value()) return std::nullopt;
  ObjectReader p = pagination->Object();
  if (!p.Has("next_page")) return std::nullopt;
  std::string next = p.String("next_page");
  if (next.empty()) return std::nullopt;
  return next;
}

template <typename T>
absl::StatusOr<T> Checked(const JsonReader& reader, T value) {
  if (!reader.status().ok()) return reader.status();
  return value;
}

// Each object of `list`, read by `read` (an ObjectReader -> T function). Errors go to the
// readers' shared status, as every read does.
template <typename Read>
auto ReadObjects(ArrayReader list, Read read) {
  std::vector<std::invoke_result_t<Read, ObjectReader>> out;
  out.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) out.push_back(read(list.At(i).Object()));
  return out;
}

QueueItem ReadQueueItem(ObjectReader o) {
  QueueItem q;
  q.id = o.RequiredId("id");
  q.date = o.String("date");
  q.is_ready = o.Bool("isReady");
  q.is_done = o.Bool("isDone");
  q.is_canceled = o.Bool("isCanceled");
  q.has_error = o.Bool("hasError");
  q.pending = o.Int("pending");
  q.total = o.Int("total");
  q.can_unsend = o.Bool("canUnsend");
  q.unsend_seconds = o.Int("unsendSeconds");
  return q;
}

QueueDetail ReadQueueDetail(ObjectReader o) {
  QueueDetail q;
  q.id = o.RequiredId("id");
  q.date = o.String("date");
  q.text = o.String("text");
  q.text_cropped = o.String("textCropped");
  if (std::optional<JsonReader> giphy = o.Get("giphyId")) q.giphy_id = giphy->IdText();
  q.is_free = o.Bool("isFree");
  q.sent_count = o.Int("sentCount");
  q.viewed_count = o.Int("viewedCount");
  q.can_unsend = o.Bool("canUnsend");
  q.unsend_seconds = o.Int("unsendSeconds");
  q.is_canceled = o.Bool("isCanceled");
  q.has_error = o.Bool("hasError");
  return q;
}

MassMessageStats ReadStats(ObjectReader o) {
  MassMessageStats s;
  s.id = o.RequiredId("id");
  s.date = o.String("date");
  s.text = o.String("text");
  s.raw_text = o.String("rawText");
  s.response_type = o.String("responseType");
  s.sent_count = o.Int("sentCount");
  s.viewed_count = o.Int("viewedCount");
  s.is_free = o.Bool("isFree");
  s.is_canceled = o.Bool("isCanceled");
  s.can_unsend = o.Bool("canUnsend");
  s.unsend_seconds = o.Int("unsendSeconds");
  s.media_count = o.Int("mediaCount");
  s.price_cents = o.OptionalMoneyCents("price");
  s.purchased_count = o.OptionalInt("purchasedCount");
  s.revenue_cents = o.OptionalMoneyCents("totalRevenueGenerated");
  return s;
}

Fan ReadFan(ObjectReader o) {
  Fan f;
  f.id = o.RequiredId("id");
  f.name = o.String("name");
  f.username = o.String("username");
  return f;
}

std::vector<Fan> ReadFans(ArrayReader a) { return ReadObjects(a, ReadFan); }

UserList ReadUserList(ObjectReader o) {
  UserList l;
  l.id = o.RequiredIdText("id");
  l.name = o.String("name");
  l.type = o.String("type");
  l.users_count = o.Int("usersCount");
  l.posts_count = o.Int("postsCount");
  l.can_add_users = o.Bool("canAddUsers");
  l.can_delete = o.Bool("canDelete");
  l.pinned_to_feed = o.Bool("isPinnedToFeed");
  if (std::optional<JsonReader> users = o.Get("users")) l.users = ReadFans(users->Array());
  return l;
}

// The envelope's data, or the body itself when it has none.
JsonReader DataOrRoot(const JsonDocument& doc) {
  JsonReader root(doc, "");
  if (root.value().is_object() && root.value().get_object().contains("data")) return Data(doc);
  return root;
}

}  // namespace

ResponseInfo ReadResponseInfo(const HttpResponse& response) {
  ResponseInfo info;
  info.http_status = response.status;
  info.rate_limit_minute = HeaderInt(response, "X-Rate-Limit-Limit-Minute");
  info.rate_limit_remaining_minute = HeaderInt(response, "X-Rate-Limit-Remaining-Minute");
  info.credits_used = HeaderInt(response, "X-OFAPI-Credits-Used");
  info.credits_balance = HeaderInt(response, "X-OFAPI-Credits-Balance");
  if (std::optional<absl::Duration> wait = RetryAfterOf(response)) info.retry_after = *wait;
  return info;
}

std::optional<BodyMeta> ReadBodyMeta(const JsonDocument& doc) {
  if (!doc.root().is_object()) return std::nullopt;
  const auto* meta = doc.root().get_object().if_contains("_meta");
  if (meta == nullptr || !meta->is_object()) return std::nullopt;
  // Each value is read on its own, so one malformed field does not hide the others.
  auto read_int = [&](std::string_view section, std::string_view key) -> std::optional<int64_t> {
    ObjectReader m = JsonReader(doc, "").Object().Required("_meta").Object();
    std::optional<JsonReader> s = m.Get(section);
    if (!s.has_value() || !s->value().is_object()) return std::nullopt;
    ObjectReader o = s->Object();
    std::optional<int64_t> v = o.OptionalInt(key);
    return o.status().ok() ? v : std::nullopt;
  };
  BodyMeta out;
  out.credits_used = read_int("_credits", "used");
  out.credits_balance = read_int("_credits", "balance");
  out.rate_limit_minute = read_int("_rate_limits", "limit_minute");
  out.rate_limit_remaining_minute = read_int("_rate_limits", "remaining_minute");
  const auto& m = meta->get_object();
  if (const auto* credits = m.if_contains("_credits"); credits && credits->is_object()) {
    if (const auto* note = credits->get_object().if_contains("note"); note && note->is_string()) {
      out.credits_note = std::string(note->get_string());
    }
  }
  if (const auto* cache = m.if_contains("_cache"); cache && cache->is_object()) {
    if (const auto* cached = cache->get_object().if_contains("is_cached");
        cached && cached->is_bool()) {
      out.is_cached = cached->get_bool();
    }
  }
  return out;
}

absl::Status ClassifyHttpStatus(std::string_view endpoint, HttpMethod method,
                                const HttpResponse& response, absl::Duration default_retry_after) {
  const int status = response.status;
  if (status >= 200 && status <= 299) return absl::OkStatus();
  UpstreamError error{.http_status = status, .request_written = true};
  absl::StatusCode code = absl::StatusCode::kFailedPrecondition;
  error.kind = ErrorKind::kTerminal;
  if (status == 429) {
    error.kind = ErrorKind::kRateLimited;
    code = absl::StatusCode::kResourceExhausted;
    error.retry_after = RetryAfterOf(response).value_or(default_retry_after);
  } else if (status == 402) {
    error.kind = ErrorKind::kOutOfCredits;
  } else if (status == 401) {
    error.kind = ErrorKind::kUnauthorized;
    code = absl::StatusCode::kUnauthenticated;
  } else if ((status == 502 || status == 504) && method != HttpMethod::kGet) {
    // A gateway lost the answer of a request the API server may already have acted on.
    error.kind = ErrorKind::kUnknownOutcome;
    code = absl::StatusCode::kUnknown;
  } else if (status == 408 || status >= 500) {
    error.kind = ErrorKind::kRetryable;
    code = absl::StatusCode::kUnavailable;
  } else if (status == 400 || status == 422) {
    code = absl::StatusCode::kInvalidArgument;
  } else if (status == 404) {
    code = absl::StatusCode::kNotFound;
  } else if (status == 403) {
    code = absl::StatusCode::kPermissionDenied;
  }
  const UpstreamMessage m = ReadErrorBody(response.body);
  error.code = m.code;
  std::string message = StrCat("upstream ", endpoint, ": HTTP ", status);
  if (status == 429) {
    StrAppend(&message, ", retry after ", absl::ToInt64Seconds(error.retry_after), "s");
  }
  if (!m.message.empty()) StrAppend(&message, ": ", m.message);
  if (!m.code.empty()) StrAppend(&message, " [code ", m.code, "]");
  return MakeUpstreamStatus(code, message, error);
}

absl::Status BadResponseBody(std::string_view endpoint, int http_status, const absl::Status& why) {
  return MakeUpstreamStatus(
      absl::StatusCode::kUnknown,
      StrCat("upstream ", endpoint, ": HTTP ", http_status,
             " with a body that does not match the contract: ", ToStd(why.message())),
      {.kind = ErrorKind::kUnknownOutcome, .http_status = http_status, .request_written = true});
}

absl::StatusOr<JsonDocument> OpenResponse(std::string_view endpoint, HttpMethod method,
                                          const absl::StatusOr<HttpResponse>& response,
                                          absl::Duration default_retry_after, ResponseInfo& info) {
  if (!response.ok()) return response.status();
  info = ReadResponseInfo(*response);
  HERALD_RETURN_IF_ERROR(ClassifyHttpStatus(endpoint, method, *response, default_retry_after));
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(response->body);
  if (!doc.ok()) return BadResponseBody(endpoint, response->status, doc.status());
  info.meta = ReadBodyMeta(*doc);
  return doc;
}

// --- Success bodies ---

absl::StatusOr<QueueItem> ParseQueueItemBody(const JsonDocument& doc) {
  JsonReader data = Data(doc);
  QueueItem item = ReadQueueItem(data.Object());
  return Checked(data, std::move(item));
}

absl::StatusOr<std::vector<QueueItem>> ParseQueueListBody(const JsonDocument& doc) {
  ArrayReader data = Data(doc).Array();
  std::vector<QueueItem> items = ReadObjects(data, ReadQueueItem);
  return Checked(data, std::move(items));
}

absl::StatusOr<MassMessageStatsPage> ParseStatsPageBody(const JsonDocument& doc) {
  ObjectReader data = Data(doc).Object();
  MassMessageStatsPage page;
  page.has_more = data.Bool("hasMore");
  page.items = ReadObjects(data.Required("items").Array(), ReadStats);
  page.next_page = NextPage(doc);
  return Checked(data, std::move(page));
}

absl::StatusOr<QueueDetailResult> ParseQueueDetailBody(const JsonDocument& doc) {
  ObjectReader data = Data(doc).Object();
  QueueDetailResult result;
  result.success = data.Bool("success");
  result.queue = ReadQueueDetail(data.Required("queue").Object());
  return Checked(data, std::move(result));
}

absl::StatusOr<UploadedMedia> ParseUploadBody(const JsonDocument& doc) {
  // The upstream's API reference documents a flat body naming the media `prefixed_id`; the vendor's
  // marketing sample wraps the same object in the envelope's `data` and names the media `id`.
  // Both are read: the body is flat when it names the media or a polling URL at its root.
  ObjectReader root = JsonReader(doc, "").Object();
  const bool flat = root.Has("prefixed_id") || root.Has("polling_url") || !root.Has("data");
  ObjectReader body = flat ? root : root.Required("data").Object();
  UploadedMedia media;
  media.polling_url = body.String("polling_url");
  media.file_name = body.String("file_name");
  media.source_url = body.String("sourceUrl");
  // An asynchronous upload (202) may name its media only once processing completes.
  const bool id_required = media.polling_url.empty();
  if (body.Has("prefixed_id") || !body.Has("id")) {
    media.prefixed_id =
        id_required ? body.RequiredString("prefixed_id") : body.String("prefixed_id");
    // An empty id would be stored as the delivery's media and make every send upload again.
    if (id_required && body.status().ok() && media.prefixed_id.empty()) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat(body.Required("prefixed_id").path(),
                        ": expected the uploaded media's id, got an empty string")));
    }
  } else {
    // `id` also names numeric vault media elsewhere in the API; only an upload's id is accepted.
    JsonReader id = body.Required("id");
    media.prefixed_id = id.String();
    if (body.status().ok() && !media.prefixed_id.starts_with(kUploadedMediaIdPrefix)) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat(id.path(), ": expected an id starting with ", kUploadedMediaIdPrefix,
                        ", got \"", Quote(media.prefixed_id), "\"")));
    }
  }
  return Checked(body, std::move(media));
}

absl::StatusOr<UploadStatus> ParseUploadStatusBody(const JsonDocument& doc) {
  ObjectReader body = DataOrRoot(doc).Object();
  UploadStatus s;
  s.prefixed_id = body.String("prefixed_id");
  s.status = body.RequiredString("status");
  s.credits_used = body.Int("credits_used");
  s.error = body.String("error");
  if (std::optional<JsonReader> media = body.Get("media")) {
    ObjectReader m = media->Object();
    s.media = UploadedMedia{.prefixed_id = m.String("prefixed_id"),
                            .file_name = m.String("file_name"),
                            .source_url = m.String("sourceUrl")};
  }
  return Checked(body, std::move(s));
}

absl::StatusOr<MassMessageChart> ParseChartBody(const JsonDocument& doc) {
  ObjectReader data = Data(doc).Object();
  auto group = [&](std::string_view key) {
    MassMessageChart::Group g;
    std::optional<JsonReader> value = data.Get(key);
    if (!value) return g;
    ObjectReader o = value->Object();
    ArrayReader days = o.Required("chart").Array();
    for (size_t i = 0; i < days.size(); ++i) {
      ObjectReader day = days.At(i).Object();
      g.chart.push_back({.date = day.RequiredString("date"), .count = day.Int("count")});
    }
    g.total = o.OptionalInt("total");
    g.delta = o.OptionalInt("delta");
    return g;
  };
  MassMessageChart chart;
  chart.messages = group("group_messages");
  chart.purchases = group("group_messages_purchases");
  return Checked(data, std::move(chart));
}

absl::StatusOr<UploadedMedia> ParseSyncUploadBody(const JsonDocument& doc) {
  absl::StatusOr<UploadedMedia> media = ParseUploadBody(doc);
  if (media.ok() && media->prefixed_id.empty()) {
    return absl::InvalidArgumentError(
        StrCat("prefixed_id: required: the upload was answered as still processing (polling_url \"",
               Quote(media->polling_url), "\") without the media's id"));
  }
  return media;
}

absl::StatusOr<std::vector<UserList>> ParseUserListsBody(const JsonDocument& doc) {
  JsonReader data = Data(doc);
  // The documented shape is an array; a {"list": [...]} page is accepted too.
  ArrayReader lists =
      data.value().is_object() ? data.Object().Required("list").Array() : data.Array();
  std::vector<UserList> out = ReadObjects(lists, ReadUserList);
  return Checked(data, std::move(out));
}

absl::StatusOr<UserList> ParseUserListBody(const JsonDocument& doc) {
  JsonReader data = Data(doc);
  UserList list = ReadUserList(data.Object());
  return Checked(data, std::move(list));
}

absl::StatusOr<bool> ParseSuccessBody(const JsonDocument& doc) {
  ObjectReader data = DataOrRoot(doc).Object();
  const bool success = data.Bool("success");
  return Checked(data, success);
}

absl::StatusOr<RemovedListUser> ParseRemovedListUserBody(const JsonDocument& doc) {
  ObjectReader data = Data(doc).Object();
  RemovedListUser removed;
  removed.list = ReadUserList(data.Required("list").Object());
  ObjectReader state = data.Required("userState").Object();
  removed.has_user = state.Bool("hasUser");
  removed.can_add_user = state.Bool("canAddUser");
  removed.cannot_add_user_reason = state.String("cannotAddUserReason");
  return Checked(data, std::move(removed));
}

absl::StatusOr<AddUsersResult> ParseAddUsersBody(const JsonDocument& doc) {
  ObjectReader data = Data(doc).Object();
  AddUsersResult result;
  if (data.value().is_object()) {
    // Keyed by list id, each an array of user ids; other members (a "success" flag) are skipped.
    for (const auto& member : data.value().get_object()) {
      if (!member.value().is_array()) continue;
      const std::string key(member.key());
      ArrayReader ids = data.Required(key).Array();
      std::vector<int64_t> users;
      users.reserve(ids.size());
      for (size_t i = 0; i < ids.size(); ++i) users.push_back(ids.At(i).Int());
      result.users_by_key.emplace_back(key, std::move(users));
    }
  }
  return Checked(data, std::move(result));
}

absl::StatusOr<UserListUsersPage> ParseUserListUsersBody(const JsonDocument& doc) {
  ObjectReader data = Data(doc).Object();
  UserListUsersPage page;
  page.users = ReadFans(data.Required("list").Array());
  page.has_more = data.Bool("hasMore");
  page.next_offset = data.OptionalInt("nextOffset");
  return Checked(data, std::move(page));
}

absl::StatusOr<std::optional<TopMessage>> ParseTopMessageBody(const JsonDocument& doc) {
  JsonReader data = Data(doc);
  // No purchases in the period: data.purchases is null or absent, or data is an empty array.
  if (data.value().is_array() && data.value().get_array().empty()) {
    return std::optional<TopMessage>();
  }
  std::optional<JsonReader> purchases = data.Object().Get("purchases");
  if (!purchases.has_value()) return Checked(data, std::optional<TopMessage>());
  ObjectReader o = purchases->Object();
  TopMessage top;
  top.id = o.RequiredId("id");
  top.date = o.String("date");
  top.text = o.String("text");
  top.raw_text = o.String("rawText");
  top.price_cents = o.OptionalMoneyCents("price").value_or(0);
  top.purchased_count = o.Int("purchasedCount");
  top.sent_count = o.Int("sentCount");
  top.viewed_count = o.Int("viewedCount");
  top.total_revenue_cents = o.OptionalMoneyCents("totalRevenueGenerated").value_or(0);
  top.is_free = o.Bool("isFree");
  top.is_canceled = o.Bool("isCanceled");
  top.media_count = o.Int("mediaCount");
  return Checked(data, std::optional<TopMessage>(std::move(top)));
}

absl::StatusOr<BuyersPage> ParseBuyersBody(const JsonDocument& doc) {
  ObjectReader data = Data(doc).Object();
  BuyersPage page;
  page.buyers = ReadFans(data.Required("list").Array());
  page.has_more = data.Bool("hasMore");
  if (std::optional<JsonReader> marker = data.Get("marker")) page.marker = marker->IdText();
  page.next_page = NextPage(doc);
  return Checked(data, std::move(page));
}

namespace {

Webhook ReadWebhook(ObjectReader o) {
  Webhook w;
  w.id = o.RequiredIdText("id");
  w.url = o.String("url");
  if (std::optional<JsonReader> events = o.Get("events"); events.has_value()) {
    ArrayReader list = events->Array();
    for (size_t i = 0; i < list.size(); ++i) w.events.push_back(list.At(i).String());
  }
  w.enabled = o.Bool("enabled");
  w.has_signing_secret = o.Bool("has_signing_secret");
  return w;
}

}  // namespace

absl::StatusOr<std::vector<Webhook>> ParseWebhooksBody(const JsonDocument& doc) {
  ArrayReader list = DataOrRoot(doc).Array();
  std::vector<Webhook> out = ReadObjects(list, ReadWebhook);
  return Checked(list, std::move(out));
}

absl::StatusOr<Webhook> ParseWebhookBody(const JsonDocument& doc) {
  JsonReader data = DataOrRoot(doc);
  Webhook w = ReadWebhook(data.Object());
  return Checked(data, std::move(w));
}

absl::StatusOr<std::vector<WebhookCatalogueEntry>> ParseWebhookEventsBody(const JsonDocument& doc) {
  ArrayReader list = DataOrRoot(doc).Array();
  std::vector<WebhookCatalogueEntry> out = ReadObjects(list, [](ObjectReader o) {
    return WebhookCatalogueEntry{.value = o.RequiredString("value"),
                                 .description = o.String("description")};
  });
  return Checked(list, std::move(out));
}

absl::StatusOr<std::vector<WebhookDelivery>> ParseWebhookDeliveriesBody(const JsonDocument& doc) {
  ArrayReader list = DataOrRoot(doc).Array();
  std::vector<WebhookDelivery> out = ReadObjects(list, [](ObjectReader o) {
    WebhookDelivery d;
    d.id = o.RequiredIdText("id");
    d.delivery_uuid = o.String("delivery_uuid");
    d.event = o.String("event");
    d.idempotency_key = o.String("idempotency_key");
    d.status_code = o.OptionalInt("status_code");
    d.success = o.Bool("success");
    d.attempt = o.Int("attempt");
    d.created_at = o.String("created_at");
    d.redelivery_of = o.String("redelivery_of");
    return d;
  });
  return Checked(list, std::move(out));
}

absl::StatusOr<std::string> ParseRedeliveryBody(const JsonDocument& doc) {
  ObjectReader data = DataOrRoot(doc).Object();
  std::string id = data.RequiredIdText("redelivery_id");
  return Checked(data, std::move(id));
}

absl::StatusOr<std::vector<Account>> ParseAccountsBody(const JsonDocument& doc) {
  // A bare array, or the standard envelope.
  JsonReader root(doc, "");
  ArrayReader list = root.value().is_array() ? root.Array() : Data(doc).Array();
  std::vector<Account> accounts = ReadObjects(list, [](ObjectReader o) {
    Account a;
    a.id = o.RequiredIdText("id");
    a.onlyfans_username = o.String("onlyfans_username");
    a.display_name = o.String("display_name");
    a.is_authenticated = o.Bool("is_authenticated");
    return a;
  });
  return Checked(list, std::move(accounts));
}

}  // namespace herald::upstream::internal
