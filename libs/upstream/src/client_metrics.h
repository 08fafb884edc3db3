// The typed client's metrics, declared once (see client.h for their meaning).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

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
  kManageUserList,  // get, update, delete, clear one list; remove or pin one member; pinned
  kListMassMessageStats,
  kGetTopMessage,
  kGetUploadStatus,
  kGetMassMessageChart,
  kListMessageBuyers,
  kListAccounts,
  kListWebhooks,
  kCreateWebhook,
  kUpdateWebhook,
  kManageWebhook,  // get or delete one; the event catalogue; deliveries and redelivery
};
inline constexpr size_t kEndpointCount = static_cast<size_t>(Endpoint::kManageWebhook) + 1;

std::string_view EndpointName(Endpoint endpoint);  // "send_mass_message", ...

// The `outcome` label of a finished call: "ok", "cancelled" or the ErrorKindName.
std::string_view OutcomeName(const absl::Status& status);

// The `code` label of a response with HTTP status `status`: the status itself when the upstream
// contract names it ("200", "429"), else its class ("4xx"; "other" outside 100-599), so that a
// misbehaving upstream or proxy cannot grow the series without bound.
std::string CodeLabel(int status);

// A gauge of a figure the upstream reports, made on its first report: until then the series
// does not exist, rather than read 0 (a credits balance of 0 raises an alert). Thread-safe.
class ReportedGauge {
 public:
  ReportedGauge(metrics::Family<metrics::Gauge>& family, metrics::Labels labels)
      : family_(family), labels_(std::move(labels)) {}

  void Set(double value);

 private:
  metrics::Family<metrics::Gauge>& family_;
  const metrics::Labels labels_;
  std::atomic<metrics::Gauge*> gauge_{nullptr};
};

class ClientMetrics {
 public:
  // `tenant` and `team` label the gauges of what the upstream reports per key (its rate limit,
  // the team's credits); empty for a client of no team.
  ClientMetrics(metrics::Registry& registry, const std::string& tenant, const std::string& team);

  void Record(Endpoint endpoint, const absl::Status& status, absl::Duration elapsed,
              const ResponseInfo& info);

 private:
  static constexpr size_t kOutcomeCount = 8;
  static size_t OutcomeIndex(std::string_view outcome);

  struct PerEndpoint {
    std::string_view name;
    metrics::Histogram* duration = nullptr;
    std::array<metrics::Counter*, kOutcomeCount> requests{};
  };
  std::array<PerEndpoint, kEndpointCount> endpoints_;
  metrics::Family<metrics::Counter>& responses_;  // by endpoint and HTTP status, made on use
  metrics::Histogram& retry_after_;
  ReportedGauge rate_limit_limit_;
  ReportedGauge rate_limit_remaining_;
  ReportedGauge credits_balance_;
  ReportedGauge report_time_;  // when any of the three was last set
};

}  // namespace herald::upstream::internal
