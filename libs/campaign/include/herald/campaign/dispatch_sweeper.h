// The dispatch sweep: every `interval`, finishes the outbox entries (store::PendingDispatch)
// that are `after` old or more, so a campaign whose request stopped between its write and the
// enqueueing of its jobs still goes out (Service::SweepDispatches). The worker role runs it; two
// processes sweeping at once enqueue the same derived job ids, which the queue takes once.
//
// Metrics: herald_dispatch_sweep_campaigns_total{result} (finished, failed),
// herald_dispatch_sweep_errors_total (sweeps that met a failure, a campaign's or a read's), and
// herald_teams_paused{tenant}: the tenant's teams paused after the upstream refused them (402,
// 401), as of the last sweep that could read them (alert HeraldTeamsPaused).
#pragma once

#include <memory>
#include <set>
#include <string>

#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <herald/common/clock.h>
#include <herald/common/periodic.h>
#include <herald/metrics/metrics.h>

namespace herald::log {
class Outage;
}  // namespace herald::log

namespace herald::campaign {

class Service;

struct DispatchSweepConfig {
  absl::Duration interval = absl::Seconds(30);
  // An entry this old is owed by a request that stopped: longer than a request takes between
  // its write and its enqueue.
  absl::Duration after = absl::Minutes(1);
};

class DispatchSweeper {
 public:
  // `service`, `registry` and `clock` must outlive the sweeper.
  DispatchSweeper(boost::asio::any_io_executor executor, Service& service,
                  DispatchSweepConfig config, metrics::Registry& registry,
                  const Clock& clock = SystemClock::Get());
  ~DispatchSweeper();

  void Start();
  // Stops sweeping and completes once a sweep in progress has ended. Idempotent.
  boost::asio::awaitable<void> Close();

 private:
  boost::asio::awaitable<void> SweepOnce();

  Service& service_;
  const DispatchSweepConfig config_;
  metrics::Counter& finished_;
  metrics::Counter& failed_;
  metrics::Counter& errors_;
  metrics::Family<metrics::Gauge>& paused_teams_;
  std::set<std::string> paused_tenants_;  // tenants last reported with a paused team
  std::unique_ptr<log::Outage> outage_;
  Periodic loop_;  // last: it ends before what it uses goes
};

}  // namespace herald::campaign
