// The typed client for the upstream API (OnlyFansAPI.com): one method per endpoint Herald uses,
// Herald's own request and response types (types.h), classified errors (error.h).
//
//   auto client = upstream::Client::Create(executor, {.base_url = "http://127.0.0.1:8080",
//                                                     .api_key = key}, &registry);
//   upstream::Result<upstream::QueueItem> sent = co_await (*client)->SendMassMessage(
//       "acct_1", {.text = "Hi", .user_lists = {"fans"}, .price_cents = 1500,
//                  .media_files = {"ofapi_media_1"}});
//   if (!sent.ok() && sent.error()->kind == upstream::ErrorKind::kRateLimited) ...
//
// Every call sends "Authorization: Bearer <api_key>" to `base_url` only: pagination links the
// upstream returns are followed only after CheckNextPage() accepts them. The key is never logged.
//
// Every Result carries the rate-limit and credit headers and the body's `_meta` (types.h), on
// success and on failure. A 2xx response whose body does not match the contract fails with
// kUnknownOutcome / kUnknown naming the offending field ("data.items[2].sentCount: expected an
// integer, got string").
//
// Metrics (when a registry is given), with `endpoint` one of the fixed method names below in
// snake case ("send_mass_message") and `outcome` "ok", "cancelled" or an ErrorKindName():
//   herald_upstream_requests_total{endpoint,outcome}          counter
//   herald_upstream_request_duration_seconds{endpoint}        histogram
//   herald_upstream_rate_limit_limit                          gauge, last value reported
//   herald_upstream_rate_limit_remaining                      gauge, last value reported
//   herald_upstream_credits_balance                           gauge, last value reported
// (the three gauges, labelled by tenant and team, exist from the first response that reports
// their value: never a 0 the upstream did not say)
//
// Thread safety, lifetime and cancellation are as for HttpClient (http_client.h): methods may be
// called from any thread; the client must outlive its calls; cancelling the awaiting coroutine
// aborts the call with kCancelled.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <herald/upstream/http_client.h>
#include <herald/upstream/types.h>

namespace herald::metrics {
class Registry;
}  // namespace herald::metrics

namespace herald::log {
class Outage;
}  // namespace herald::log

namespace herald::upstream {

struct ClientConfig {
  // scheme://host[:port] of the API, no path: "https://app.onlyfansapi.com" in production,
  // "http://127.0.0.1:<port>" for the simulator.
  std::string base_url = "https://app.onlyfansapi.com";
  std::string api_key;  // never logged
  // An opaque label of `api_key` (never the key itself), copied into every error the client
  // returns (UpstreamError::key_id), so that a refusal can be told apart from one of another key.
  std::string key_id;
  // The team the key belongs to: labels the gauges of what the upstream reports per key (rate
  // limit, credits). Empty for a client of no team.
  std::string tenant;
  std::string team;
  HttpClientConfig http;
  absl::Duration upload_timeout = absl::Minutes(2);        // total deadline of media uploads
  absl::Duration default_retry_after = absl::Seconds(60);  // a 429 without Retry-After
  int max_buyer_pages = 100;                               // ListAllMessageBuyers stops here
  // Where calls that fail for the upstream's sake (no connection, timeout, 5xx) are reported:
  // one log line when the upstream goes down, summaries, one when it is back. Shared by the
  // clients made from copies of one config (one outage, not one per team); null: not logged.
  std::shared_ptr<log::Outage> outage;
};

// Checks every field; errors name the field ("upstream.base_url: ...").
absl::Status ValidateClientConfig(const ClientConfig& config);

// Accepts a pagination link only if it points at `base_url`'s origin (same scheme, host and
// port; no user info) under /api/, so the API key is never sent anywhere else. Returns the link
// normalised for sending; kFailedPrecondition (kind kTerminal) otherwise.
absl::StatusOr<std::string> CheckNextPage(std::string_view base_url, std::string_view next_page);

// The upstream API as Herald uses it. Client is the implementation; tests of code that calls
// the upstream substitute their own.
class Api {
 public:
  template <typename T>
  using Call = boost::asio::awaitable<Result<T>>;

  virtual ~Api() = default;

  // --- Mass messaging: /api/{account}/mass-messaging ---

  // POST. Not idempotent: an kUnknownOutcome result must be reconciled with
  // ListMassMessageQueue() before any retry. Refuses (kInvalidArgument, nothing sent) an empty
  // text, no recipients, a price outside 0 or 300..20000 cents, a price without media, or a
  // preview that is not among the media.
  virtual Call<QueueItem> SendMassMessage(std::string account, MassMessage message) = 0;
  // GET: pending, scheduled and recently sent mass messages.
  virtual Call<std::vector<QueueItem>> ListMassMessageQueue(std::string account) = 0;
  // GET /overview.
  virtual Call<MassMessageStatsPage> GetMassMessageOverview(std::string account,
                                                            DateRangeQuery query) = 0;
  // GET /{id}.
  virtual Call<QueueDetailResult> GetMassMessage(std::string account, int64_t id) = 0;
  // PUT /{id}.
  virtual Call<QueueItem> UpdateMassMessage(std::string account, int64_t id,
                                            MassMessageUpdate update) = 0;
  // DELETE /{id}: unsends a recently sent message or deletes a scheduled one.
  virtual Call<QueueDetailResult> UnsendMassMessage(std::string account, int64_t id) = 0;

  // --- Media: POST /api/{account}/media/upload (multipart/form-data) ---
  // Both upload synchronously: a result names the uploaded media. An answer without its id (an
  // asynchronous 202 that only gives a polling URL) is a bad response body.

  // The upstream downloads `file_url` itself.
  virtual Call<UploadedMedia> UploadMediaFromUrl(std::string account, std::string file_url) = 0;
  // The bytes travel in the request.
  virtual Call<UploadedMedia> UploadMediaFile(std::string account, MediaFile file) = 0;

  // --- User lists: /api/{account}/user-lists ---

  virtual Call<std::vector<UserList>> ListUserLists(std::string account, UserListsQuery query) = 0;
  virtual Call<UserList> CreateUserList(std::string account, std::string name) = 0;
  // POST /{list}/users. Sends `user_ids` in one call; batching is the caller's business.
  virtual Call<AddUsersResult> AddUsersToUserList(std::string account, std::string list_id,
                                                  std::vector<int64_t> user_ids) = 0;
  virtual Call<UserListUsersPage> ListUserListUsers(std::string account, std::string list_id,
                                                    PageQuery query) = 0;
  // DELETE /{list}/users/{user}: the list after, and the fan's state in it. A fan who is not
  // in the list leaves it as it was.
  virtual Call<RemovedListUser> RemoveUserFromList(std::string account, std::string list_id,
                                                   int64_t user_id) = 0;
  // DELETE /{list}: the upstream's success flag. A list the account does not have is 404.
  virtual Call<bool> DeleteUserList(std::string account, std::string list_id) = 0;

  // --- Engagement: /api/{account}/engagement/messages ---

  // GET /mass-messages: per-message sent and viewed counts.
  virtual Call<MassMessageStatsPage> ListMassMessageStats(std::string account,
                                                          DateRangeQuery query) = 0;
  // Follows a page's next_page link (checked with CheckNextPage first).
  virtual Call<MassMessageStatsPage> NextMassMessageStats(std::string next_page) = 0;
  // GET /top-message: the message of the period with the most purchases (data.purchases);
  // nullopt when the upstream names none (null).
  virtual Call<std::optional<TopMessage>> GetTopMessage(std::string account,
                                                        std::optional<absl::Time> start,
                                                        std::optional<absl::Time> end) = 0;
  // GET /{message_id}/buyers, one page.
  virtual Call<BuyersPage> ListMessageBuyers(std::string account, int64_t message_id,
                                             BuyersQuery query) = 0;
  // Follows a page's next_page link (checked with CheckNextPage first).
  virtual Call<BuyersPage> NextMessageBuyers(std::string next_page) = 0;
  // Every buyer: follows next_page while present (an empty page with a link is not the end),
  // else the offset and marker while has_more, up to ClientConfig::max_buyer_pages pages.
  virtual Call<AllBuyers> ListAllMessageBuyers(std::string account, int64_t message_id) = 0;

  // --- Accounts: GET /api/accounts ---

  virtual Call<std::vector<Account>> ListAccounts() = 0;

  // --- Webhooks: /api/webhooks (the team of the key) ---

  virtual Call<std::vector<Webhook>> ListWebhooks() = 0;
  virtual Call<Webhook> CreateWebhook(WebhookSpec spec) = 0;
  // PUT /{id}: replaces URL, events and secret, and enables it.
  virtual Call<Webhook> UpdateWebhook(std::string id, WebhookSpec spec) = 0;
  // DELETE /{id}: the upstream's success flag.
  virtual Call<bool> DeleteWebhook(std::string id) = 0;
};

// Registers the call counters and latency histograms above in `registry`, every endpoint and
// outcome at 0, as a client does when made. A process that may call the upstream does this at
// start, so that its first refusal (a 402, say) is an increase the alerts see rather than a
// series that appears at 1.
void RegisterClientMetrics(metrics::Registry& registry);

class Client final : public Api {
 public:
  // `executor` runs the I/O. `registry`, when given, receives the metrics above and must outlive
  // the client. Fails with kInvalidArgument on an invalid config.
  static absl::StatusOr<std::unique_ptr<Client>> Create(boost::asio::any_io_executor executor,
                                                        ClientConfig config,
                                                        metrics::Registry* registry = nullptr);
  ~Client() override;

  Call<QueueItem> SendMassMessage(std::string account, MassMessage message) override;
  Call<std::vector<QueueItem>> ListMassMessageQueue(std::string account) override;
  Call<MassMessageStatsPage> GetMassMessageOverview(std::string account,
                                                    DateRangeQuery query) override;
  Call<QueueDetailResult> GetMassMessage(std::string account, int64_t id) override;
  Call<QueueItem> UpdateMassMessage(std::string account, int64_t id,
                                    MassMessageUpdate update) override;
  Call<QueueDetailResult> UnsendMassMessage(std::string account, int64_t id) override;
  Call<UploadedMedia> UploadMediaFromUrl(std::string account, std::string file_url) override;
  Call<UploadedMedia> UploadMediaFile(std::string account, MediaFile file) override;
  Call<std::vector<UserList>> ListUserLists(std::string account, UserListsQuery query) override;
  Call<UserList> CreateUserList(std::string account, std::string name) override;
  Call<AddUsersResult> AddUsersToUserList(std::string account, std::string list_id,
                                          std::vector<int64_t> user_ids) override;
  Call<UserListUsersPage> ListUserListUsers(std::string account, std::string list_id,
                                            PageQuery query) override;
  Call<RemovedListUser> RemoveUserFromList(std::string account, std::string list_id,
                                           int64_t user_id) override;
  Call<bool> DeleteUserList(std::string account, std::string list_id) override;
  Call<MassMessageStatsPage> ListMassMessageStats(std::string account,
                                                  DateRangeQuery query) override;
  Call<MassMessageStatsPage> NextMassMessageStats(std::string next_page) override;
  Call<std::optional<TopMessage>> GetTopMessage(std::string account,
                                                std::optional<absl::Time> start,
                                                std::optional<absl::Time> end) override;
  Call<BuyersPage> ListMessageBuyers(std::string account, int64_t message_id,
                                     BuyersQuery query) override;
  Call<BuyersPage> NextMessageBuyers(std::string next_page) override;
  Call<AllBuyers> ListAllMessageBuyers(std::string account, int64_t message_id) override;
  Call<std::vector<Account>> ListAccounts() override;
  Call<std::vector<Webhook>> ListWebhooks() override;
  Call<Webhook> CreateWebhook(WebhookSpec spec) override;
  Call<Webhook> UpdateWebhook(std::string id, WebhookSpec spec) override;
  Call<bool> DeleteWebhook(std::string id) override;

  // --- User lists beyond what Herald uses, for tools and operators ---

  // GET /{list}: the list with its first members.
  Call<UserList> GetUserList(std::string account, std::string list_id);
  // PUT /{list}: renames it, and pins it to the feed or unpins it when given.
  Call<UserList> UpdateUserList(std::string account, std::string list_id, UserListUpdate update);
  // DELETE /{list}/users: removes every member; the list after.
  Call<UserList> ClearUserList(std::string account, std::string list_id);
  // POST /{list}/users/{user}/pin: the upstream's success flag.
  Call<bool> PinUserInList(std::string account, std::string list_id, int64_t user_id);
  // GET /{list}/users/pinned, one page.
  Call<UserListUsersPage> ListPinnedUsers(std::string account, std::string list_id,
                                          PageQuery query);

  // --- Media and engagement beyond what Herald uses ---

  // GET /api/{account}/media/uploads/{prefixed_id}/status: an asynchronous upload's progress.
  Call<UploadStatus> GetUploadStatus(std::string account, std::string prefixed_id);
  // GET …/engagement/messages/mass-messages/chart.
  Call<MassMessageChart> GetMassMessageChart(std::string account, ChartQuery query);

  // --- Webhooks beyond what Herald uses ---

  Call<Webhook> GetWebhook(std::string id);
  // GET /events: every event type a webhook can subscribe to.
  Call<std::vector<WebhookCatalogueEntry>> ListWebhookEvents();
  // GET /{id}/deliveries, one page, newest first (limit 1..100).
  Call<std::vector<WebhookDelivery>> ListWebhookDeliveries(std::string id, PageQuery query);
  // POST /{id}/deliveries/{delivery}/redeliver: replays the stored payload to the webhook's
  // current URL; the redelivery's id. Costs credits like any call.
  Call<std::string> RedeliverWebhook(std::string id, std::string delivery_id);

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::upstream
