// What the REST API, the control endpoints and the delivery ticker share: the current world
// (replaced as a whole by a reset), the behaviour settings, the clock, the event sink and the
// request counters.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include <absl/base/thread_annotations.h>
#include <absl/synchronization/mutex.h>

#include <herald/common/clock.h>
#include <herald/upstream_sim/config.h>
#include <herald/upstream_sim/delivery.h>
#include <herald/upstream_sim/events.h>
#include <herald/upstream_sim/faults.h>
#include <herald/upstream_sim/model.h>
#include <herald/upstream_sim/seed.h>

namespace herald::upstream_sim {

struct RequestCounters {
  std::atomic<int64_t> requests{0};   // every /api request
  std::atomic<int64_t> in_flight{0};  // /api requests received and not answered yet
  std::atomic<int64_t> status_2xx{0};
  std::atomic<int64_t> status_400{0};
  std::atomic<int64_t> status_401{0};
  std::atomic<int64_t> status_402{0};
  std::atomic<int64_t> status_404{0};
  std::atomic<int64_t> status_422{0};
  std::atomic<int64_t> status_429{0};
  std::atomic<int64_t> status_other{0};
  std::atomic<int64_t> mass_messages_created{0};
  std::atomic<int64_t> uploads{0};
  std::atomic<int64_t> lists_created{0};
  std::atomic<int64_t> lists_deleted{0};
  // Injected faults.
  std::atomic<int64_t> fault_errors{0};
  std::atomic<int64_t> fault_resets{0};
  std::atomic<int64_t> fault_lost_responses{0};
  std::atomic<int64_t> fault_delayed{0};

  void CountStatus(int status);
};

class SimState {
 public:
  // `clock` and `sink` must outlive the state. The world is built from `seed` at once.
  SimState(const Clock& clock, EventSink& sink, SeedSpec seed, Behavior behavior);

  // The current world. Holders keep it alive across a reset.
  std::shared_ptr<World> world() const;
  // Rebuilds the world from the seed: messages, uploads, new lists and fans, spend and team
  // counters are gone; id sequences continue, so no id or event key is ever reused.
  void Reset();

  Behavior behavior() const;
  void SetBehavior(const Behavior& behavior);

  const Clock& clock() const { return clock_; }
  EventSink& sink() { return sink_; }
  DeliveryEngine& engine() { return engine_; }
  FaultInjector& faults() { return faults_; }
  RequestCounters& counters() { return counters_; }
  const SeedSpec& seed() const { return seed_; }

 private:
  const Clock& clock_;
  EventSink& sink_;
  const SeedSpec seed_;
  DeliveryEngine engine_;
  FaultInjector faults_;
  RequestCounters counters_;
  mutable absl::Mutex mu_;
  std::shared_ptr<World> world_ ABSL_GUARDED_BY(mu_);
  Behavior behavior_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::upstream_sim
