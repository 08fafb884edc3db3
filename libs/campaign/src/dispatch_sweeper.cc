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
  }
  if (error.ok()) {
    outage_->Succeeded();
  } else {
    errors_.Increment();
    outage_->Failed(error);
  }
}

}  // namespace herald::campaign
