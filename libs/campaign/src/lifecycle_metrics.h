// The campaign lifecycle metrics, counted alike by the service (the changes the API makes) and
// the delivery workflow (the changes the workers make).
#pragma once

#include <string>
#include <string_view>

#include <absl/time/time.h>

#include <herald/campaign/state.h>
#include <herald/metrics/metrics.h>
#include <herald/store/model.h>

namespace herald::campaign::internal {

class LifecycleMetrics {
 public:
  explicit LifecycleMetrics(metrics::Registry& registry)
      : campaigns_(metrics::BuildCounter()
                       .Name("herald_campaigns_total")
                       .Help("Campaigns Herald moved into a state, by tenant and state: created "
                             "(as a draft, scheduled or sending), launched, paused, resumed or "
                             "cancelled through the API; dispatched at their send time or "
                             "missed by the workers.")
                       .LabelNames({"tenant", "state"})
                       .Register(registry)),
        deliveries_finished_(metrics::BuildCounter()
                                 .Name("herald_deliveries_finished_total")
                                 .Help("Deliveries (one campaign on one account) that ended, by "
                                       "final state: completed, failed or cancelled.")
                                 .LabelNames({"state"})
                                 .Register(registry)),
        pace_wait_(metrics::BuildHistogram()
                       .Name("herald_ratelimit_wait_seconds")
                       .Help("Time an upstream call waited for its team's and account's tokens "
                             "when its job's lease had not paid for it, by caller: api (the "
                             "API's own calls) or worker (a job's calls after its first).")
                       .LabelNames({"caller"})
                       .Buckets({0, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 61})
                       .Register(registry)) {}

  // An upstream call's wait for tokens (zero when they were there).
  void PaceWaited(std::string_view caller, absl::Duration wait) {
    pace_wait_.Add({{"caller", std::string(caller)}}).Observe(absl::ToDoubleSeconds(wait));
  }

  void CampaignEntered(const std::string& tenant, CampaignState state) {
    campaigns_.Add({{"tenant", tenant}, {"state", std::string(CampaignStateName(state))}})
        .Increment();
  }

  // A delivery update applied to a delivery in state `before`, leaving it in `after`.
  void DeliveryUpdated(store::DeliveryState before, store::DeliveryState after) {
    if (store::IsFinal(before) || !store::IsFinal(after)) return;
    deliveries_finished_.Add({{"state", std::string(FinalStateLabel(after))}}).Increment();
  }

 private:
  static std::string_view FinalStateLabel(store::DeliveryState state) {
    switch (state) {
      case store::DeliveryState::kCompleted:
        return "completed";
      case store::DeliveryState::kFailed:
        return "failed";
      case store::DeliveryState::kCancelled:
        return "cancelled";
      default:
        return "unknown";
    }
  }

  metrics::Family<metrics::Counter>& campaigns_;
  metrics::Family<metrics::Counter>& deliveries_finished_;
  metrics::Family<metrics::Histogram>& pace_wait_;
};

}  // namespace herald::campaign::internal
