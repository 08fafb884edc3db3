// The typed client's metrics, declared once (see client.h for their meaning).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include <absl/status/status.h>
#include <absl/time/time.h>

#include <herald/metrics/metrics.h>
#include <herald/upstream/types.h>

namespace herald::upstream::internal {

// The `endpoint` label: one per Api method that calls the upstream.
enum class Endpoint {
  kSendMassMessage,
  kListMassMessageQueue,
  kGetMassMessageOverview,
  kGetMassMessage,
  kUpdateMassMessage,
  kUnsendMassMessage,
  kUploadMedia,
  kListUserLists,
  kCreateUserList,
  kAddUsersToUserList,
  kListUserListUsers,
  kListMassMessageStats,
  kGetTopMessage,
  kListMessageBuyers,
  kListAccounts,
  kListWebhooks,
  kCreateWebhook,
  kUpdateWebhook,
};
inline constexpr size_t kEndpointCount = static_cast<size_t>(Endpoint::kUpdateWebhook) + 1;

std::string_view EndpointName(Endpoint endpoint);  // "send_mass_message", ...

// The `outcome` label of a finished call: "ok", "cancelled" or the ErrorKindName.
std::string_view OutcomeName(const absl::Status& status);

class ClientMetrics {
 public:
  explicit ClientMetrics(metrics::Registry& registry);

  void Record(Endpoint endpoint, const absl::Status& status, absl::Duration elapsed,
              const ResponseInfo& info);

 private:
  static constexpr size_t kOutcomeCount = 8;
  static size_t OutcomeIndex(std::string_view outcome);

  struct PerEndpoint {
    metrics::Histogram* duration = nullptr;
    std::array<metrics::Counter*, kOutcomeCount> requests{};
  };
  std::array<PerEndpoint, kEndpointCount> endpoints_;
  metrics::Gauge& rate_limit_remaining_;
  metrics::Gauge& credits_balance_;
};

}  // namespace herald::upstream::internal
