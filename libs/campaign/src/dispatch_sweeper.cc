#include <utility>

#include <herald/campaign/dispatch_sweeper.h>
#include <herald/campaign/service.h>
#include <herald/common/outage.h>

namespace herald::campaign {

namespace asio = boost::asio;

namespace {

metrics::Family<metrics::Counter>& CampaignsFamily(metrics::Registry& registry) {
  return metrics::BuildCounter()
      .Name("herald_dispatch_sweep_campaigns_total")
      .Help(
          "Campaigns the dispatch sweep finished for a request that stopped before enqueueing "
          "their jobs, by result (finished, or failed and left for the next sweep).")
      .LabelNames({"result"})
      .Register(registry);
}

}  // namespace

DispatchSweeper::DispatchSweeper(asio::any_io_executor executor, Service& service,
                                 DispatchSweepConfig config, metrics::Registry& registry,
                                 const Clock& clock)
    : service_(service),
      config_(config),
      finished_(CampaignsFamily(registry).Add({{"result", "finished"}})),
      failed_(CampaignsFamily(registry).Add({{"result", "failed"}})),
      errors_(metrics::BuildCounter()
                  .Name("herald_dispatch_sweep_errors_total")
                  .Help("Dispatch sweeps that met a failure (a campaign's, or a read's).")
                  .Register(registry)
                  .Add({})),
      paused_teams_(metrics::BuildGauge()
                        .Name("herald_teams_paused")
                        .Help("The tenant's teams paused after the upstream refused them (402 out "
                              "of credits, 401 key refused), as of the last dispatch sweep.")
                        .LabelNames({"tenant"})
                        .Register(registry)),
      outage_(std::make_unique<log::Outage>("redis", "dispatch sweep")),
      loop_(std::move(executor), config.interval, clock,
            [this]() -> asio::awaitable<void> { co_await SweepOnce(); }) {}

DispatchSweeper::~DispatchSweeper() = default;

void DispatchSweeper::Start() { loop_.Start(); }

asio::awaitable<void> DispatchSweeper::Close() { co_await loop_.Close(); }

asio::awaitable<void> DispatchSweeper::SweepOnce() {
  absl::StatusOr<Service::Sweep> sweep = co_await service_.SweepDispatches(config_.after);
  absl::Status error = sweep.ok() ? sweep->error : sweep.status();
  if (sweep.ok()) {
    finished_.Increment(sweep->finished);
    failed_.Increment(sweep->failed);
    // A tenant's series appears with its first paused team and stays, at 0 once none is.
    for (const auto& [tenant, paused] : sweep->paused_teams) {
      if (paused == 0 && !paused_tenants_.contains(tenant)) continue;
      paused_teams_.Add({{"tenant", tenant}}).Set(paused);
      if (paused > 0) paused_tenants_.insert(tenant);
    }
  }
  if (error.ok()) {
    outage_->Succeeded();
  } else {
    errors_.Increment();
    outage_->Failed(error);
  }
}

}  // namespace herald::campaign
