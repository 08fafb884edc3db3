#include "requests.h"

#include <algorithm>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url.hpp>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/upstream/client.h>
#include <herald/upstream/error.h>
#include <herald/upstream/money.h>

#include "multipart.h"

namespace herald::upstream::internal {
namespace json = boost::json;
namespace urls = boost::urls;

namespace {

uint16_t DefaultPort(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

json::string_view J(std::string_view s) { return {s.data(), s.size()}; }

json::array StringArray(const std::vector<std::string>& values) {
  json::array out;
  for (const std::string& v : values) out.emplace_back(J(v));
  return out;
}

// Fan ids travel as strings (the upstream types them string[]).
json::array IdArray(const std::vector<int64_t>& ids) {
  json::array out;
  for (int64_t id : ids) out.emplace_back(J(StrCat(id)));
  return out;
}

// The object as JSON, with "price" appended as exact decimal text ("15.00"). Boost.JSON would
// print a double, from a binary approximation and in exponent form (9.99E0).
std::string SerializeWithPrice(const json::object& body, std::optional<int64_t> price_cents) {
  std::string out = json::serialize(body);
  if (!price_cents.has_value()) return out;
  out.pop_back();  // the closing brace
  StrAppend(&out, body.empty() ? "" : ",", "\"price\":", FormatCents(*price_cents), "}");
  return out;
}

absl::Status CheckAccount(std::string_view account) {
  if (account.empty()) return InvalidRequest("account id is empty");
  return absl::OkStatus();
}

absl::Status CheckPrice(int64_t price_cents, bool has_media) {
  if (price_cents != 0 && (price_cents < 300 || price_cents > 20000)) {
    return InvalidRequest(
        StrCat("price must be 0 or between 3.00 and 200.00, got ", FormatCents(price_cents)));
  }
  if (price_cents > 0 && !has_media) return InvalidRequest("a priced message needs media files");
  return absl::OkStatus();
}

absl::Status CheckPreviews(const std::vector<std::string>& previews,
                           const std::vector<std::string>& media) {
  for (const std::string& p : previews) {
    if (std::find(media.begin(), media.end(), p) == media.end()) {
      return InvalidRequest(StrCat("preview ", p, " is not among the media files"));
    }
  }
  return absl::OkStatus();
}

void AddDateRange(const DateRangeQuery& query, QueryParams& params) {
  if (query.start) params.emplace_back("startDate", FormatQueryDate(*query.start));
  if (query.end) params.emplace_back("endDate", FormatQueryDate(*query.end));
  if (query.limit) params.emplace_back("limit", StrCat(*query.limit));
  if (!query.query.empty()) params.emplace_back("query", query.query);
}

}  // namespace

absl::Status InvalidRequest(std::string_view message) {
  return MakeUpstreamStatus(absl::StatusCode::kInvalidArgument,
                            StrCat("refusing to send: ", message), {.kind = ErrorKind::kTerminal});
}

absl::StatusOr<Origin> ParseOrigin(std::string_view field, std::string_view url) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(ToAbsl(StrCat(field, ": ", why, " in '", url, "'")));
  };
  const auto parsed = urls::parse_uri(urls::string_view(url.data(), url.size()));
  if (!parsed) return bad("not an absolute URL");
  const urls::url_view& u = *parsed;
  Origin origin;
  origin.scheme = AsciiLower(std::string_view(u.scheme().data(), u.scheme().size()));
  if (origin.scheme != "http" && origin.scheme != "https")
    return bad("scheme must be http or https");
  if (u.has_userinfo()) return bad("user info is not allowed");
  origin.host = AsciiLower(std::string_view(u.encoded_host().data(), u.encoded_host().size()));
  if (origin.host.empty()) return bad("missing host");
  if (u.has_port() && (u.port().empty() || u.port_number() == 0)) return bad("bad port");
  origin.port = u.has_port() ? u.port_number() : DefaultPort(origin.scheme);
  if (!u.encoded_path().empty() && u.encoded_path() != "/") return bad("a path is not allowed");
  if (u.has_query() || u.has_fragment()) return bad("a query or fragment is not allowed");
  origin.base = StrCat(origin.scheme, "://", origin.host);
  if (origin.port != DefaultPort(origin.scheme)) StrAppend(&origin.base, ":", origin.port);
  return origin;
}

std::string BuildUrl(const Origin& origin, std::initializer_list<std::string_view> segments,
                     const QueryParams& query) {
  urls::url u = *urls::parse_uri(urls::string_view(origin.base.data(), origin.base.size()));
  u.set_path_absolute(true);
  u.segments().push_back("api");
  for (std::string_view s : segments) u.segments().push_back(urls::string_view(s.data(), s.size()));
  if (!query.empty()) {
    std::string q;
    for (const auto& [key, value] : query) {
      if (!q.empty()) q.push_back('&');
      StrAppend(
          &q, urls::encode(urls::string_view(key.data(), key.size()), urls::unreserved_chars), "=",
          urls::encode(urls::string_view(value.data(), value.size()), urls::unreserved_chars));
    }
    u.set_encoded_query(urls::pct_string_view(urls::string_view(q.data(), q.size())));
  }
  return std::string(u.buffer());
}

std::string FormatQueryDate(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", t, absl::UTCTimeZone());
}

std::string FormatScheduledDate(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<std::string> CheckNextPageAgainst(const Origin& origin, std::string_view next_page) {
  auto refuse = [&](std::string_view why) {
    return MakeUpstreamStatus(absl::StatusCode::kFailedPrecondition,
                              StrCat("refusing to follow next_page '", next_page, "': ", why),
                              {.kind = ErrorKind::kTerminal});
  };
  const auto parsed = urls::parse_uri(urls::string_view(next_page.data(), next_page.size()));
  if (!parsed) return refuse("not an absolute URL");
  const urls::url_view& u = *parsed;
  const std::string scheme = AsciiLower(std::string_view(u.scheme().data(), u.scheme().size()));
  const std::string host =
      AsciiLower(std::string_view(u.encoded_host().data(), u.encoded_host().size()));
  const uint16_t port = u.has_port() ? u.port_number() : DefaultPort(scheme);
  if (scheme != origin.scheme || host != origin.host || port != origin.port ||
      (u.has_port() && u.port().empty())) {
    return refuse(StrCat("not the API origin ", origin.base));
  }
  if (u.has_userinfo()) return refuse("user info is not allowed");
  const std::string_view path(u.encoded_path().data(), u.encoded_path().size());
  if (!path.starts_with("/api/")) return refuse("path is outside /api/");
  urls::url normalized = u;
  normalized.remove_fragment();
  return std::string(normalized.buffer());
}

// --- RequestFactory ---

HttpRequest RequestFactory::Make(HttpMethod method, std::string url) const {
  HttpRequest req;
  req.method = method;
  req.url = std::move(url);
  req.headers = {{"Authorization", StrCat("Bearer ", api_key_)}, {"Accept", "application/json"}};
  return req;
}

HttpRequest RequestFactory::MakeJson(HttpMethod method, std::string url, std::string body) const {
  HttpRequest req = Make(method, std::move(url));
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = std::move(body);
  return req;
}

HttpRequest RequestFactory::MakeUpload(std::string_view account,
                                       const std::vector<FormPart>& parts) const {
  MultipartBody multipart = EncodeMultipart(parts, PickBoundary(parts));
  HttpRequest req = Make(HttpMethod::kPost, BuildUrl(origin_, {account, "media", "upload"}));
  req.headers.emplace_back("Content-Type", std::move(multipart.content_type));
  req.body = std::move(multipart.body);
  req.timeout = upload_timeout_;
  return req;
}

absl::StatusOr<HttpRequest> RequestFactory::SendMassMessage(std::string_view account,
                                                            const MassMessage& m) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (m.text.empty()) return InvalidRequest("text is empty");
  if (m.user_lists.empty() && m.user_ids.empty()) {
    return InvalidRequest("no recipients: give user lists or user ids");
  }
  HERALD_RETURN_IF_ERROR(CheckPrice(m.price_cents, !m.media_files.empty()));
  HERALD_RETURN_IF_ERROR(CheckPreviews(m.previews, m.media_files));
  json::object body;
  body["text"] = J(m.text);
  if (!m.user_lists.empty()) body["userLists"] = StringArray(m.user_lists);
  if (!m.user_ids.empty()) body["userIds"] = IdArray(m.user_ids);
  if (!m.excluded_lists.empty()) body["excludedLists"] = StringArray(m.excluded_lists);
  if (!m.media_files.empty()) body["mediaFiles"] = StringArray(m.media_files);
  if (!m.previews.empty()) body["previews"] = StringArray(m.previews);
  if (m.locked_text) body["lockedText"] = true;
  if (m.scheduled_at) body["scheduledDate"] = J(FormatScheduledDate(*m.scheduled_at));
  if (m.save_for_later) body["saveForLater"] = true;
  return MakeJson(
      HttpMethod::kPost, BuildUrl(origin_, {account, "mass-messaging"}),
      SerializeWithPrice(body, m.price_cents > 0 ? std::optional(m.price_cents) : std::nullopt));
}

absl::StatusOr<HttpRequest> RequestFactory::ListMassMessageQueue(std::string_view account) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  return Make(HttpMethod::kGet, BuildUrl(origin_, {account, "mass-messaging"}));
}

absl::StatusOr<HttpRequest> RequestFactory::GetMassMessageOverview(
    std::string_view account, const DateRangeQuery& query) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  QueryParams params;
  AddDateRange(query, params);
  return Make(HttpMethod::kGet, BuildUrl(origin_, {account, "mass-messaging", "overview"}, params));
}

absl::StatusOr<HttpRequest> RequestFactory::GetMassMessage(std::string_view account,
                                                           int64_t id) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (id <= 0) return InvalidRequest("mass message id must be positive");
  return Make(HttpMethod::kGet, BuildUrl(origin_, {account, "mass-messaging", StrCat(id)}));
}

absl::StatusOr<HttpRequest> RequestFactory::UpdateMassMessage(std::string_view account, int64_t id,
                                                              const MassMessageUpdate& u) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (id <= 0) return InvalidRequest("mass message id must be positive");
  if (u.text.empty()) return InvalidRequest("text is empty");
  if (u.price_cents) {
    HERALD_RETURN_IF_ERROR(
        CheckPrice(*u.price_cents, !u.media_files.has_value() || !u.media_files->empty()));
  }
  if (u.previews && u.media_files)
    HERALD_RETURN_IF_ERROR(CheckPreviews(*u.previews, *u.media_files));
  json::object body;
  body["text"] = J(u.text);
  if (u.user_lists) body["userLists"] = StringArray(*u.user_lists);
  if (u.user_ids) body["userIds"] = IdArray(*u.user_ids);
  if (u.media_files) body["mediaFiles"] = StringArray(*u.media_files);
  if (u.previews) body["previews"] = StringArray(*u.previews);
  if (u.locked_text) body["lockedText"] = *u.locked_text;
  if (u.scheduled_at) body["scheduledDate"] = J(FormatScheduledDate(*u.scheduled_at));
  return MakeJson(HttpMethod::kPut, BuildUrl(origin_, {account, "mass-messaging", StrCat(id)}),
                  SerializeWithPrice(body, u.price_cents));
}

absl::StatusOr<HttpRequest> RequestFactory::UnsendMassMessage(std::string_view account,
                                                              int64_t id) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (id <= 0) return InvalidRequest("mass message id must be positive");
  return Make(HttpMethod::kDelete, BuildUrl(origin_, {account, "mass-messaging", StrCat(id)}));
}

absl::StatusOr<HttpRequest> RequestFactory::UploadMediaFromUrl(std::string_view account,
                                                               std::string_view file_url) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (!urls::parse_uri(urls::string_view(file_url.data(), file_url.size()))) {
    return InvalidRequest(StrCat("file_url is not an absolute URL: '", file_url, "'"));
  }
  const std::vector<FormPart> parts = {{.name = "file_url", .value = std::string(file_url)}};
  return MakeUpload(account, parts);
}

absl::StatusOr<HttpRequest> RequestFactory::UploadMediaFile(std::string_view account,
                                                            const MediaFile& file) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (file.data.empty()) return InvalidRequest("the file is empty");
  if (file.file_name.empty()) return InvalidRequest("the file has no name");
  // The content type is a header line of the part: a line break in it would end that line and
  // let the text after it pass for headers or data of the upload.
  if (HasControlCharacter(file.content_type)) {
    return InvalidRequest("the file's content type contains a control character");
  }
  const std::vector<FormPart> parts = {{.name = "file",
                                        .value = file.data,
                                        .file_name = file.file_name,
                                        .content_type = file.content_type}};
  return MakeUpload(account, parts);
}

absl::StatusOr<HttpRequest> RequestFactory::ListUserLists(std::string_view account,
                                                          const UserListsQuery& query) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (query.limit && (*query.limit < 10 || *query.limit > 50)) {
    return InvalidRequest("user lists limit must be in [10, 50]");
  }
  if (query.offset && *query.offset < 0) return InvalidRequest("offset must not be negative");
  QueryParams params;
  if (query.limit) params.emplace_back("limit", StrCat(*query.limit));
  if (query.offset) params.emplace_back("offset", StrCat(*query.offset));
  if (query.queue_only) params.emplace_back("view", "queue");
  return Make(HttpMethod::kGet, BuildUrl(origin_, {account, "user-lists"}, params));
}

namespace {

// The upstream's limit is 64 characters, not bytes.
absl::Status CheckListName(std::string_view name) {
  if (name.empty() || Utf8Length(name) > 64) {
    return InvalidRequest("list name must be 1 to 64 characters");
  }
  return absl::OkStatus();
}

absl::Status CheckList(std::string_view account, std::string_view list_id) {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (list_id.empty()) return InvalidRequest("list id is empty");
  return absl::OkStatus();
}

absl::Status CheckPage(const PageQuery& query, QueryParams& params) {
  if (query.limit && (*query.limit < 1 || *query.limit > 100)) {
    return InvalidRequest("limit must be in [1, 100]");
  }
  if (query.offset && *query.offset < 0) return InvalidRequest("offset must not be negative");
  if (query.limit) params.emplace_back("limit", StrCat(*query.limit));
  if (query.offset) params.emplace_back("offset", StrCat(*query.offset));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HttpRequest> RequestFactory::CreateUserList(std::string_view account,
                                                           std::string_view name) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  HERALD_RETURN_IF_ERROR(CheckListName(name));
  json::object body;
  body["name"] = J(name);
  return MakeJson(HttpMethod::kPost, BuildUrl(origin_, {account, "user-lists"}),
                  json::serialize(body));
}

absl::StatusOr<HttpRequest> RequestFactory::AddUsersToUserList(
    std::string_view account, std::string_view list_id,
    const std::vector<int64_t>& user_ids) const {
  HERALD_RETURN_IF_ERROR(CheckList(account, list_id));
  if (user_ids.empty()) return InvalidRequest("no user ids to add");
  json::object body;
  body["ids"] = IdArray(user_ids);
  return MakeJson(HttpMethod::kPost, BuildUrl(origin_, {account, "user-lists", list_id, "users"}),
                  json::serialize(body));
}

absl::StatusOr<HttpRequest> RequestFactory::ListUserListUsers(std::string_view account,
                                                              std::string_view list_id,
                                                              const PageQuery& query) const {
  return MembersPage(account, list_id, query, /*pinned=*/false);
}

absl::StatusOr<HttpRequest> RequestFactory::GetUserList(std::string_view account,
                                                        std::string_view list_id) const {
  HERALD_RETURN_IF_ERROR(CheckList(account, list_id));
  return Make(HttpMethod::kGet, BuildUrl(origin_, {account, "user-lists", list_id}));
}

absl::StatusOr<HttpRequest> RequestFactory::UpdateUserList(std::string_view account,
                                                           std::string_view list_id,
                                                           const UserListUpdate& update) const {
  HERALD_RETURN_IF_ERROR(CheckList(account, list_id));
  HERALD_RETURN_IF_ERROR(CheckListName(update.name));
  json::object body;
  body["name"] = J(update.name);
  if (update.pinned_to_feed) body["isPinnedToFeed"] = *update.pinned_to_feed;
  return MakeJson(HttpMethod::kPut, BuildUrl(origin_, {account, "user-lists", list_id}),
                  json::serialize(body));
}

absl::StatusOr<HttpRequest> RequestFactory::DeleteUserList(std::string_view account,
                                                           std::string_view list_id) const {
  HERALD_RETURN_IF_ERROR(CheckList(account, list_id));
  return Make(HttpMethod::kDelete, BuildUrl(origin_, {account, "user-lists", list_id}));
}

absl::StatusOr<HttpRequest> RequestFactory::ClearUserList(std::string_view account,
                                                          std::string_view list_id) const {
  HERALD_RETURN_IF_ERROR(CheckList(account, list_id));
  return Make(HttpMethod::kDelete, BuildUrl(origin_, {account, "user-lists", list_id, "users"}));
}

absl::StatusOr<HttpRequest> RequestFactory::RemoveUserFromList(std::string_view account,
                                                               std::string_view list_id,
                                                               int64_t user_id) const {
  HERALD_RETURN_IF_ERROR(CheckList(account, list_id));
  if (user_id <= 0) return InvalidRequest("user id must be positive");
  return Make(HttpMethod::kDelete,
              BuildUrl(origin_, {account, "user-lists", list_id, "users", StrCat(user_id)}));
}

absl::StatusOr<HttpRequest> RequestFactory::PinUserInList(std::string_view account,
                                                          std::string_view list_id,
                                                          int64_t user_id) const {
  HERALD_RETURN_IF_ERROR(CheckList(account, list_id));
  if (user_id <= 0) return InvalidRequest("user id must be positive");
  return Make(HttpMethod::kPost,
              BuildUrl(origin_, {account, "user-lists", list_id, "users", StrCat(user_id), "pin"}));
}

absl::StatusOr<HttpRequest> RequestFactory::ListPinnedUsers(std::string_view account,
                                                            std::string_view list_id,
                                                            const PageQuery& query) const {
  return MembersPage(account, list_id, query, /*pinned=*/true);
}

absl::StatusOr<HttpRequest> RequestFactory::MembersPage(std::string_view account,
                                                        std::string_view list_id,
                                                        const PageQuery& query, bool pinned) const {
  HERALD_RETURN_IF_ERROR(CheckList(account, list_id));
  QueryParams params;
  HERALD_RETURN_IF_ERROR(CheckPage(query, params));
  std::string url =
      pinned ? BuildUrl(origin_, {account, "user-lists", list_id, "users", "pinned"}, params)
             : BuildUrl(origin_, {account, "user-lists", list_id, "users"}, params);
  return Make(HttpMethod::kGet, std::move(url));
}

absl::StatusOr<HttpRequest> RequestFactory::ListMassMessageStats(
    std::string_view account, const DateRangeQuery& query) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  QueryParams params;
  AddDateRange(query, params);
  return Make(HttpMethod::kGet,
              BuildUrl(origin_, {account, "engagement", "messages", "mass-messages"}, params));
}

absl::StatusOr<HttpRequest> RequestFactory::GetUploadStatus(std::string_view account,
                                                            std::string_view prefixed_id) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (prefixed_id.empty()) return InvalidRequest("media id is empty");
  return Make(HttpMethod::kGet,
              BuildUrl(origin_, {account, "media", "uploads", prefixed_id, "status"}));
}

absl::StatusOr<HttpRequest> RequestFactory::GetMassMessageChart(std::string_view account,
                                                                const ChartQuery& query) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (query.start && query.end && *query.end <= *query.start) {
    return InvalidRequest("end must be after start");
  }
  QueryParams params;
  if (query.start) params.emplace_back("startDate", FormatQueryDate(*query.start));
  if (query.end) params.emplace_back("endDate", FormatQueryDate(*query.end));
  if (query.with_total) params.emplace_back("withTotal", *query.with_total ? "true" : "false");
  return Make(
      HttpMethod::kGet,
      BuildUrl(origin_, {account, "engagement", "messages", "mass-messages", "chart"}, params));
}

absl::StatusOr<HttpRequest> RequestFactory::GetTopMessage(std::string_view account,
                                                          std::optional<absl::Time> start,
                                                          std::optional<absl::Time> end) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (start && end && *end <= *start) return InvalidRequest("end must be after start");
  QueryParams params;
  if (start) params.emplace_back("startDate", FormatQueryDate(*start));
  if (end) params.emplace_back("endDate", FormatQueryDate(*end));
  return Make(HttpMethod::kGet,
              BuildUrl(origin_, {account, "engagement", "messages", "top-message"}, params));
}

absl::StatusOr<HttpRequest> RequestFactory::ListMessageBuyers(std::string_view account,
                                                              int64_t message_id,
                                                              const BuyersQuery& query) const {
  HERALD_RETURN_IF_ERROR(CheckAccount(account));
  if (message_id <= 0) return InvalidRequest("message id must be positive");
  if (query.limit && *query.limit < 1) return InvalidRequest("limit must be positive");
  if (query.offset && *query.offset < 0) return InvalidRequest("offset must not be negative");
  QueryParams params;
  if (query.limit) params.emplace_back("limit", StrCat(*query.limit));
  if (query.offset) params.emplace_back("offset", StrCat(*query.offset));
  if (!query.marker.empty()) params.emplace_back("marker", query.marker);
  return Make(
      HttpMethod::kGet,
      BuildUrl(origin_, {account, "engagement", "messages", StrCat(message_id), "buyers"}, params));
}

absl::StatusOr<HttpRequest> RequestFactory::ListAccounts() const {
  return Make(HttpMethod::kGet, BuildUrl(origin_, {"accounts"}));
}

absl::StatusOr<HttpRequest> RequestFactory::ListWebhooks() const {
  return Make(HttpMethod::kGet, BuildUrl(origin_, {"webhooks"}));
}

absl::StatusOr<HttpRequest> RequestFactory::GetWebhook(std::string_view id) const {
  if (id.empty()) return InvalidRequest("webhook id is empty");
  return Make(HttpMethod::kGet, BuildUrl(origin_, {"webhooks", id}));
}

absl::StatusOr<HttpRequest> RequestFactory::DeleteWebhook(std::string_view id) const {
  if (id.empty()) return InvalidRequest("webhook id is empty");
  return Make(HttpMethod::kDelete, BuildUrl(origin_, {"webhooks", id}));
}

absl::StatusOr<HttpRequest> RequestFactory::ListWebhookEvents() const {
  return Make(HttpMethod::kGet, BuildUrl(origin_, {"webhooks", "events"}));
}

absl::StatusOr<HttpRequest> RequestFactory::ListWebhookDeliveries(std::string_view id,
                                                                  const PageQuery& query) const {
  if (id.empty()) return InvalidRequest("webhook id is empty");
  QueryParams params;
  HERALD_RETURN_IF_ERROR(CheckPage(query, params));
  return Make(HttpMethod::kGet, BuildUrl(origin_, {"webhooks", id, "deliveries"}, params));
}

absl::StatusOr<HttpRequest> RequestFactory::RedeliverWebhook(std::string_view id,
                                                             std::string_view delivery_id) const {
  if (id.empty()) return InvalidRequest("webhook id is empty");
  if (delivery_id.empty()) return InvalidRequest("delivery id is empty");
  return Make(HttpMethod::kPost,
              BuildUrl(origin_, {"webhooks", id, "deliveries", delivery_id, "redeliver"}));
}

namespace {

absl::StatusOr<json::object> WebhookBody(const WebhookSpec& spec) {
  if (!spec.endpoint_url.starts_with("http://") && !spec.endpoint_url.starts_with("https://")) {
    return InvalidRequest("webhook endpoint_url must be an http(s) URL");
  }
  if (spec.events.empty()) return InvalidRequest("a webhook needs at least one event");
  json::object body;
  body["endpoint_url"] = J(spec.endpoint_url);
  body["events"] = StringArray(spec.events);
  body["account_scope"] = "global";
  if (!spec.signing_secret.empty()) body["signing_secret"] = J(spec.signing_secret);
  return body;
}

}  // namespace

absl::StatusOr<HttpRequest> RequestFactory::CreateWebhook(const WebhookSpec& spec) const {
  HERALD_ASSIGN_OR_RETURN(json::object body, WebhookBody(spec));
  return MakeJson(HttpMethod::kPost, BuildUrl(origin_, {"webhooks"}), json::serialize(body));
}

absl::StatusOr<HttpRequest> RequestFactory::UpdateWebhook(std::string_view id,
                                                          const WebhookSpec& spec) const {
  if (id.empty()) return InvalidRequest("webhook id is empty");
  HERALD_ASSIGN_OR_RETURN(json::object body, WebhookBody(spec));
  body["enabled"] = true;
  return MakeJson(HttpMethod::kPut, BuildUrl(origin_, {"webhooks", id}), json::serialize(body));
}

absl::StatusOr<HttpRequest> RequestFactory::FollowNextPage(std::string_view next_page) const {
  HERALD_ASSIGN_OR_RETURN(std::string url, CheckNextPageAgainst(origin_, next_page));
  return Make(HttpMethod::kGet, std::move(url));
}

}  // namespace herald::upstream::internal

namespace herald::upstream {

absl::StatusOr<std::string> CheckNextPage(std::string_view base_url, std::string_view next_page) {
  HERALD_ASSIGN_OR_RETURN(internal::Origin origin, internal::ParseOrigin("base_url", base_url));
  return internal::CheckNextPageAgainst(origin, next_page);
}

}  // namespace herald::upstream
