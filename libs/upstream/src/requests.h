// Building the HTTP requests of every upstream endpoint: paths, query strings, bodies. Pure
// functions, tested without sockets.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <herald/upstream/http_client.h>
#include <herald/upstream/types.h>

#include "multipart.h"

namespace herald::upstream::internal {

// The API's origin, from ClientConfig::base_url.
struct Origin {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower case; IPv6 in brackets
  uint16_t port = 0;   // explicit or the scheme's default
  std::string base;    // "scheme://host[:port]", without a trailing slash
};

// Accepts "http(s)://host[:port]" with an optional trailing "/"; no user info, path, query or
// fragment. Errors name `field`.
absl::StatusOr<Origin> ParseOrigin(std::string_view field, std::string_view url);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// origin.base + "/api/" + each segment percent-encoded + "?" + the query, each key and value
// percent-encoded so that only RFC 3986 unreserved characters stay literal ("+" becomes %2B, a
// space %20).
std::string BuildUrl(const Origin& origin, std::initializer_list<std::string_view> segments,
                     const QueryParams& query = {});

// CheckNextPage (client.h) against an already parsed origin.
absl::StatusOr<std::string> CheckNextPageAgainst(const Origin& origin, std::string_view next_page);

// "YYYY-MM-DD HH:MM:SS" in UTC, the upstream's query date format.
std::string FormatQueryDate(absl::Time t);
// "YYYY-MM-DDTHH:MM:SS.mmmZ", the upstream's scheduledDate format.
std::string FormatScheduledDate(absl::Time t);

// Builds requests with the API key. Every builder checks its input; a refusal is
// kInvalidArgument with kind kTerminal and nothing is sent.
class RequestFactory {
 public:
  RequestFactory(Origin origin, std::string api_key, absl::Duration upload_timeout)
      : origin_(std::move(origin)), api_key_(std::move(api_key)), upload_timeout_(upload_timeout) {}

  const Origin& origin() const { return origin_; }

  absl::StatusOr<HttpRequest> SendMassMessage(std::string_view account,
                                              const MassMessage& message) const;
  absl::StatusOr<HttpRequest> ListMassMessageQueue(std::string_view account) const;
  absl::StatusOr<HttpRequest> GetMassMessageOverview(std::string_view account,
                                                     const DateRangeQuery& query) const;
  absl::StatusOr<HttpRequest> GetMassMessage(std::string_view account, int64_t id) const;
  absl::StatusOr<HttpRequest> UpdateMassMessage(std::string_view account, int64_t id,
                                                const MassMessageUpdate& update) const;
  absl::StatusOr<HttpRequest> UnsendMassMessage(std::string_view account, int64_t id) const;
  absl::StatusOr<HttpRequest> UploadMediaFromUrl(std::string_view account,
                                                 std::string_view file_url) const;
  absl::StatusOr<HttpRequest> UploadMediaFile(std::string_view account,
                                              const MediaFile& file) const;
  absl::StatusOr<HttpRequest> ListUserLists(std::string_view account,
                                            const UserListsQuery& query) const;
  absl::StatusOr<HttpRequest> CreateUserList(std::string_view account, std::string_view name) const;
  absl::StatusOr<HttpRequest> AddUsersToUserList(std::string_view account, std::string_view list_id,
                                                 const std::vector<int64_t>& user_ids) const;
  absl::StatusOr<HttpRequest> ListUserListUsers(std::string_view account, std::string_view list_id,
                                                const PageQuery& query) const;
  absl::StatusOr<HttpRequest> GetUserList(std::string_view account, std::string_view list_id) const;
  absl::StatusOr<HttpRequest> UpdateUserList(std::string_view account, std::string_view list_id,
                                             const UserListUpdate& update) const;
  absl::StatusOr<HttpRequest> DeleteUserList(std::string_view account,
                                             std::string_view list_id) const;
  absl::StatusOr<HttpRequest> ClearUserList(std::string_view account,
                                            std::string_view list_id) const;
  absl::StatusOr<HttpRequest> RemoveUserFromList(std::string_view account, std::string_view list_id,
                                                 int64_t user_id) const;
  absl::StatusOr<HttpRequest> PinUserInList(std::string_view account, std::string_view list_id,
                                            int64_t user_id) const;
  absl::StatusOr<HttpRequest> ListPinnedUsers(std::string_view account, std::string_view list_id,
                                              const PageQuery& query) const;
  absl::StatusOr<HttpRequest> ListMassMessageStats(std::string_view account,
                                                   const DateRangeQuery& query) const;
  absl::StatusOr<HttpRequest> GetUploadStatus(std::string_view account,
                                              std::string_view prefixed_id) const;
  absl::StatusOr<HttpRequest> GetMassMessageChart(std::string_view account,
                                                  const ChartQuery& query) const;
  absl::StatusOr<HttpRequest> GetTopMessage(std::string_view account,
                                            std::optional<absl::Time> start,
                                            std::optional<absl::Time> end) const;
  absl::StatusOr<HttpRequest> ListMessageBuyers(std::string_view account, int64_t message_id,
                                                const BuyersQuery& query) const;
  absl::StatusOr<HttpRequest> ListAccounts() const;
  absl::StatusOr<HttpRequest> ListWebhooks() const;
  absl::StatusOr<HttpRequest> CreateWebhook(const WebhookSpec& spec) const;
  absl::StatusOr<HttpRequest> UpdateWebhook(std::string_view id, const WebhookSpec& spec) const;
  absl::StatusOr<HttpRequest> GetWebhook(std::string_view id) const;
  absl::StatusOr<HttpRequest> DeleteWebhook(std::string_view id) const;
  absl::StatusOr<HttpRequest> ListWebhookEvents() const;
  absl::StatusOr<HttpRequest> ListWebhookDeliveries(std::string_view id,
                                                    const PageQuery& query) const;
  absl::StatusOr<HttpRequest> RedeliverWebhook(std::string_view id,
                                               std::string_view delivery_id) const;
  // A GET of a pagination link, after CheckNextPage.
  absl::StatusOr<HttpRequest> FollowNextPage(std::string_view next_page) const;

 private:
  HttpRequest Make(HttpMethod method, std::string url) const;
  HttpRequest MakeJson(HttpMethod method, std::string url, std::string body) const;
  // POST /api/{account}/media/upload with `parts` as multipart/form-data, upload timeout.
  HttpRequest MakeUpload(std::string_view account, const std::vector<FormPart>& parts) const;
  // GET one page of a list's members, or of its pinned members.
  absl::StatusOr<HttpRequest> MembersPage(std::string_view account, std::string_view list_id,
                                          const PageQuery& query, bool pinned) const;

  Origin origin_;
  std::string api_key_;
  absl::Duration upload_timeout_;
};

// A refusal to send: kInvalidArgument, kind kTerminal, nothing written.
absl::Status InvalidRequest(std::string_view message);

}  // namespace herald::upstream::internal
