#include <chrono>

#include <herald/common/outage.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/upstream/client.h>
#include <herald/upstream/error.h>

#include "client_metrics.h"
#include "requests.h"
#include "responses.h"

namespace herald::upstream {
namespace asio = boost::asio;
using internal::Endpoint;

std::optional<int64_t> ResponseInfo::RemainingPerMinute() const {
  if (rate_limit_remaining_minute.has_value()) return rate_limit_remaining_minute;
  return meta.has_value() ? meta->rate_limit_remaining_minute : std::nullopt;
}

std::optional<int64_t> ResponseInfo::CreditsBalance() const {
  if (credits_balance.has_value()) return credits_balance;
  return meta.has_value() ? meta->credits_balance : std::nullopt;
}

absl::Status ValidateClientConfig(const ClientConfig& config) {
  HERALD_RETURN_IF_ERROR(internal::ParseOrigin("upstream.base_url", config.base_url).status());
  if (config.api_key.empty()) return absl::InvalidArgumentError("upstream.api_key is empty");
  for (char c : config.api_key) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      // The key itself is never quoted in a message.
      return absl::InvalidArgumentError(
          "upstream.api_key contains whitespace or control characters");
    }
  }
  HERALD_RETURN_IF_ERROR(ValidateHttpClientConfig(config.http));
  if (config.upload_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("upstream.upload_timeout must be positive");
  }
  if (config.default_retry_after <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("upstream.default_retry_after must be positive");
  }
  if (config.max_buyer_pages < 1) {
    return absl::InvalidArgumentError("upstream.max_buyer_pages must be at least 1");
  }
  return absl::OkStatus();
}

class Client::Impl {
 public:
  Impl(ClientConfig config, internal::RequestFactory requests, std::unique_ptr<HttpClient> http,
       metrics::Registry* registry)
      : config_(std::move(config)), requests_(std::move(requests)), http_(std::move(http)) {
    if (registry != nullptr) metrics_.emplace(*registry, config_.tenant, config_.team);
  }

  const internal::RequestFactory& requests() const { return requests_; }

  // One upstream call: send `request` (unless building it failed), interpret the response with
  // `parse`, record metrics.
  template <typename T>
  asio::awaitable<Result<T>> Call(Endpoint endpoint, absl::StatusOr<HttpRequest> request,
                                  internal::BodyParser<T> parse) {
    Result<T> result;
    if (request.ok()) {
      const auto start = std::chrono::steady_clock::now();
      const absl::Time asked = absl::Now();
      const HttpMethod method = request->method;
      const absl::StatusOr<HttpResponse> response = co_await http_->Send(*std::move(request));
      result = internal::Interpret<T>(internal::EndpointName(endpoint), method, response, parse,
                                      config_.default_retry_after);
      if (!result.ok()) result.value = StampCall(result.status(), asked, config_.key_id);
      if (config_.outage != nullptr) {
        if (!response.ok()) {
          config_.outage->Failed(response.status());
        } else if (response->status >= 500) {
          config_.outage->Failed(result.status());
        } else {
          config_.outage->Succeeded();
        }
      }
      if (metrics_.has_value()) {
        metrics_->Record(endpoint, result.status(),
                         absl::FromChrono(std::chrono::steady_clock::now() - start), result.info);
      }
    } else {
      result.value = request.status();  // refused before sending: not an upstream request
    }
    co_return result;
  }

  asio::awaitable<Result<AllBuyers>> ListAllBuyers(std::string account, int64_t message_id) {
    Result<AllBuyers> out;
    AllBuyers all;
    int64_t offset = 0;
    std::string marker;  // the one the last request without a link sent
    // Built before the co_await: GCC 12 destroys a braced temporary inside a co_await
    // expression twice.
    absl::StatusOr<HttpRequest> first =
        requests_.ListMessageBuyers(account, message_id, BuyersQuery{});
    Result<BuyersPage> page = co_await Call<BuyersPage>(
        Endpoint::kListMessageBuyers, std::move(first), &internal::ParseBuyersBody);
    while (true) {
      out.info = page.info;
      if (!page.ok()) {
        out.value = page.status();
        co_return out;
      }
      ++all.pages;
      offset += static_cast<int64_t>(page.value->buyers.size());
      for (Fan& fan : page.value->buyers) all.buyers.push_back(std::move(fan));
      // The link when there is one (an empty page with a link is not the end), else the
      // documented offset and marker while the upstream says there is more. Without a link, an
      // empty page under the same marker would be asked for again as it is: the list stops
      // there, incomplete.
      std::optional<absl::StatusOr<HttpRequest>> next;
      const bool moved = !page.value->buyers.empty() || page.value->marker != marker;
      if (page.value->next_page.has_value()) {
        next = requests_.FollowNextPage(*page.value->next_page);
      } else if (page.value->has_more && !moved) {
        break;
      } else if (page.value->has_more) {
        marker = page.value->marker;
        next = requests_.ListMessageBuyers(account, message_id,
                                           {.offset = static_cast<int>(offset), .marker = marker});
      }
      if (!next.has_value()) {
        all.complete = true;
        break;
      }
      if (all.pages >= config_.max_buyer_pages) break;
      page = co_await Call<BuyersPage>(Endpoint::kListMessageBuyers, *std::move(next),
                                       &internal::ParseBuyersBody);
    }
    out.value = std::move(all);
    co_return out;
  }

 private:
  const ClientConfig config_;
  const internal::RequestFactory requests_;
  const std::unique_ptr<HttpClient> http_;
  std::optional<internal::ClientMetrics> metrics_;
};

void RegisterClientMetrics(metrics::Registry& registry) {
  // A client of no team: its per-team gauges appear only when set, which they never are.
  const internal::ClientMetrics series(registry, "", "");
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(asio::any_io_executor executor,
                                                       ClientConfig config,
                                                       metrics::Registry* registry) {
  HERALD_RETURN_IF_ERROR(ValidateClientConfig(config));
  HERALD_ASSIGN_OR_RETURN(internal::Origin origin,
                          internal::ParseOrigin("upstream.base_url", config.base_url));
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<HttpClient> http,
                          HttpClient::Create(std::move(executor), config.http));
  internal::RequestFactory requests(std::move(origin), config.api_key, config.upload_timeout);
  return std::unique_ptr<Client>(new Client(
      std::make_unique<Impl>(std::move(config), std::move(requests), std::move(http), registry)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

// Each method builds its request now (so no argument outlives this call by reference) and
// returns the coroutine that sends it.

Api::Call<QueueItem> Client::SendMassMessage(std::string account, MassMessage message) {
  return impl_->Call<QueueItem>(Endpoint::kSendMassMessage,
                                impl_->requests().SendMassMessage(account, message),
                                &internal::ParseQueueItemBody);
}

Api::Call<std::vector<QueueItem>> Client::ListMassMessageQueue(std::string account) {
  return impl_->Call<std::vector<QueueItem>>(Endpoint::kListMassMessageQueue,
                                             impl_->requests().ListMassMessageQueue(account),
                                             &internal::ParseQueueListBody);
}

Api::Call<MassMessageStatsPage> Client::GetMassMessageOverview(std::string account,
                                                               DateRangeQuery query) {
  return impl_->Call<MassMessageStatsPage>(Endpoint::kGetMassMessageOverview,
                                           impl_->requests().GetMassMessageOverview(account, query),
                                           &internal::ParseStatsPageBody);
}

Api::Call<QueueDetailResult> Client::GetMassMessage(std::string account, int64_t id) {
  return impl_->Call<QueueDetailResult>(Endpoint::kGetMassMessage,
                                        impl_->requests().GetMassMessage(account, id),
                                        &internal::ParseQueueDetailBody);
}

Api::Call<QueueItem> Client::UpdateMassMessage(std::string account, int64_t id,
                                               MassMessageUpdate update) {
  return impl_->Call<QueueItem>(Endpoint::kUpdateMassMessage,
                                impl_->requests().UpdateMassMessage(account, id, update),
                                &internal::ParseQueueItemBody);
}

Api::Call<QueueDetailResult> Client::UnsendMassMessage(std::string account, int64_t id) {
  return impl_->Call<QueueDetailResult>(Endpoint::kUnsendMassMessage,
                                        impl_->requests().UnsendMassMessage(account, id),
                                        &internal::ParseQueueDetailBody);
}

Api::Call<UploadedMedia> Client::UploadMediaFromUrl(std::string account, std::string file_url) {
  return impl_->Call<UploadedMedia>(Endpoint::kUploadMedia,
                                    impl_->requests().UploadMediaFromUrl(account, file_url),
                                    &internal::ParseSyncUploadBody);
}

Api::Call<UploadedMedia> Client::UploadMediaFile(std::string account, MediaFile file) {
  return impl_->Call<UploadedMedia>(Endpoint::kUploadMedia,
                                    impl_->requests().UploadMediaFile(account, file),
                                    &internal::ParseSyncUploadBody);
}

Api::Call<std::vector<UserList>> Client::ListUserLists(std::string account, UserListsQuery query) {
  return impl_->Call<std::vector<UserList>>(Endpoint::kListUserLists,
                                            impl_->requests().ListUserLists(account, query),
                                            &internal::ParseUserListsBody);
}

Api::Call<UserList> Client::CreateUserList(std::string account, std::string name) {
  return impl_->Call<UserList>(Endpoint::kCreateUserList,
                               impl_->requests().CreateUserList(account, name),
                               &internal::ParseUserListBody);
}

Api::Call<AddUsersResult> Client::AddUsersToUserList(std::string account, std::string list_id,
                                                     std::vector<int64_t> user_ids) {
  return impl_->Call<AddUsersResult>(
      Endpoint::kAddUsersToUserList,
      impl_->requests().AddUsersToUserList(account, list_id, user_ids),
      &internal::ParseAddUsersBody);
}

Api::Call<UserListUsersPage> Client::ListUserListUsers(std::string account, std::string list_id,
                                                       PageQuery query) {
  return impl_->Call<UserListUsersPage>(
      Endpoint::kListUserListUsers, impl_->requests().ListUserListUsers(account, list_id, query),
      &internal::ParseUserListUsersBody);
}

Api::Call<UserList> Client::GetUserList(std::string account, std::string list_id) {
  return impl_->Call<UserList>(Endpoint::kManageUserList,
                               impl_->requests().GetUserList(account, list_id),
                               &internal::ParseUserListBody);
}

Api::Call<UserList> Client::UpdateUserList(std::string account, std::string list_id,
                                           UserListUpdate update) {
  return impl_->Call<UserList>(Endpoint::kManageUserList,
                               impl_->requests().UpdateUserList(account, list_id, update),
                               &internal::ParseUserListBody);
}

Api::Call<bool> Client::DeleteUserList(std::string account, std::string list_id) {
  return impl_->Call<bool>(Endpoint::kManageUserList,
                           impl_->requests().DeleteUserList(account, list_id),
                           &internal::ParseSuccessBody);
}

Api::Call<UserList> Client::ClearUserList(std::string account, std::string list_id) {
  return impl_->Call<UserList>(Endpoint::kManageUserList,
                               impl_->requests().ClearUserList(account, list_id),
                               &internal::ParseUserListBody);
}

Api::Call<RemovedListUser> Client::RemoveUserFromList(std::string account, std::string list_id,
                                                      int64_t user_id) {
  return impl_->Call<RemovedListUser>(
      Endpoint::kManageUserList, impl_->requests().RemoveUserFromList(account, list_id, user_id),
      &internal::ParseRemovedListUserBody);
}

Api::Call<bool> Client::PinUserInList(std::string account, std::string list_id, int64_t user_id) {
  return impl_->Call<bool>(Endpoint::kManageUserList,
                           impl_->requests().PinUserInList(account, list_id, user_id),
                           &internal::ParseSuccessBody);
}

Api::Call<UserListUsersPage> Client::ListPinnedUsers(std::string account, std::string list_id,
                                                     PageQuery query) {
  return impl_->Call<UserListUsersPage>(Endpoint::kManageUserList,
                                        impl_->requests().ListPinnedUsers(account, list_id, query),
                                        &internal::ParseUserListUsersBody);
}

Api::Call<MassMessageStatsPage> Client::ListMassMessageStats(std::string account,
                                                             DateRangeQuery query) {
  return impl_->Call<MassMessageStatsPage>(Endpoint::kListMassMessageStats,
                                           impl_->requests().ListMassMessageStats(account, query),
                                           &internal::ParseStatsPageBody);
}

Api::Call<MassMessageStatsPage> Client::NextMassMessageStats(std::string next_page) {
  return impl_->Call<MassMessageStatsPage>(Endpoint::kListMassMessageStats,
                                           impl_->requests().FollowNextPage(next_page),
                                           &internal::ParseStatsPageBody);
}

Api::Call<std::optional<TopMessage>> Client::GetTopMessage(std::string account,
                                                           std::optional<absl::Time> start,
                                                           std::optional<absl::Time> end) {
  return impl_->Call<std::optional<TopMessage>>(
      Endpoint::kGetTopMessage, impl_->requests().GetTopMessage(account, start, end),
      &internal::ParseTopMessageBody);
}

Api::Call<BuyersPage> Client::ListMessageBuyers(std::string account, int64_t message_id,
                                                BuyersQuery query) {
  return impl_->Call<BuyersPage>(Endpoint::kListMessageBuyers,
                                 impl_->requests().ListMessageBuyers(account, message_id, query),
                                 &internal::ParseBuyersBody);
}

Api::Call<BuyersPage> Client::NextMessageBuyers(std::string next_page) {
  return impl_->Call<BuyersPage>(Endpoint::kListMessageBuyers,
                                 impl_->requests().FollowNextPage(next_page),
                                 &internal::ParseBuyersBody);
}

Api::Call<AllBuyers> Client::ListAllMessageBuyers(std::string account, int64_t message_id) {
  return impl_->ListAllBuyers(std::move(account), message_id);
}

Api::Call<std::vector<Account>> Client::ListAccounts() {
  return impl_->Call<std::vector<Account>>(
      Endpoint::kListAccounts, impl_->requests().ListAccounts(), &internal::ParseAccountsBody);
}

Api::Call<std::vector<Webhook>> Client::ListWebhooks() {
  return impl_->Call<std::vector<Webhook>>(
      Endpoint::kListWebhooks, impl_->requests().ListWebhooks(), &internal::ParseWebhooksBody);
}

Api::Call<Webhook> Client::CreateWebhook(WebhookSpec spec) {
  return impl_->Call<Webhook>(Endpoint::kCreateWebhook, impl_->requests().CreateWebhook(spec),
                              &internal::ParseWebhookBody);
}

Api::Call<UploadStatus> Client::GetUploadStatus(std::string account, std::string prefixed_id) {
  return impl_->Call<UploadStatus>(Endpoint::kGetUploadStatus,
                                   impl_->requests().GetUploadStatus(account, prefixed_id),
                                   &internal::ParseUploadStatusBody);
}

Api::Call<MassMessageChart> Client::GetMassMessageChart(std::string account, ChartQuery query) {
  return impl_->Call<MassMessageChart>(Endpoint::kGetMassMessageChart,
                                       impl_->requests().GetMassMessageChart(account, query),
                                       &internal::ParseChartBody);
}

Api::Call<Webhook> Client::GetWebhook(std::string id) {
  return impl_->Call<Webhook>(Endpoint::kManageWebhook, impl_->requests().GetWebhook(id),
                              &internal::ParseWebhookBody);
}

Api::Call<bool> Client::DeleteWebhook(std::string id) {
  return impl_->Call<bool>(Endpoint::kManageWebhook, impl_->requests().DeleteWebhook(id),
                           &internal::ParseSuccessBody);
}

Api::Call<std::vector<WebhookCatalogueEntry>> Client::ListWebhookEvents() {
  return impl_->Call<std::vector<WebhookCatalogueEntry>>(Endpoint::kManageWebhook,
                                                         impl_->requests().ListWebhookEvents(),
                                                         &internal::ParseWebhookEventsBody);
}

Api::Call<std::vector<WebhookDelivery>> Client::ListWebhookDeliveries(std::string id,
                                                                      PageQuery query) {
  return impl_->Call<std::vector<WebhookDelivery>>(
      Endpoint::kManageWebhook, impl_->requests().ListWebhookDeliveries(id, query),
      &internal::ParseWebhookDeliveriesBody);
}

Api::Call<std::string> Client::RedeliverWebhook(std::string id, std::string delivery_id) {
  return impl_->Call<std::string>(Endpoint::kManageWebhook,
                                  impl_->requests().RedeliverWebhook(id, delivery_id),
                                  &internal::ParseRedeliveryBody);
}

Api::Call<Webhook> Client::UpdateWebhook(std::string id, WebhookSpec spec) {
  return impl_->Call<Webhook>(Endpoint::kUpdateWebhook, impl_->requests().UpdateWebhook(id, spec),
                              &internal::ParseWebhookBody);
}

}  // namespace herald::upstream
