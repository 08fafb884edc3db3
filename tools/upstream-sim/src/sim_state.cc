#include <herald/upstream_sim/sim_state.h>

namespace herald::upstream_sim {

void RequestCounters::CountStatus(int status) {
  std::atomic<int64_t>* counter = &status_other;
  if (status >= 200 && status < 300) {
    counter = &status_2xx;
  } else if (status == 400) {
    counter = &status_400;
  } else if (status == 401) {
    counter = &status_401;
  } else if (status == 402) {
    counter = &status_402;
  } else if (status == 404) {
    counter = &status_404;
  } else if (status == 422) {
    counter = &status_422;
  } else if (status == 429) {
    counter = &status_429;
  }
  counter->fetch_add(1, std::memory_order_relaxed);
}

SimState::SimState(const Clock& clock, EventSink& sink, SeedSpec seed, Behavior behavior)
    : clock_(clock),
      sink_(sink),
      seed_(std::move(seed)),
      engine_(clock, sink),
      faults_(seed_.seed),
      world_(BuildWorld(seed_, clock.Now())),
      behavior_(behavior) {}

std::shared_ptr<World> SimState::world() const {
  absl::MutexLock lock(&mu_);
  return world_;
}

void SimState::Reset() {
  std::shared_ptr<World> fresh = BuildWorld(seed_, clock_.Now());
  absl::MutexLock lock(&mu_);
  fresh->ContinueSequencesFrom(*world_);
  world_ = std::move(fresh);
  engine_.Reset();
}

Behavior SimState::behavior() const {
  absl::MutexLock lock(&mu_);
  return behavior_;
}

void SimState::SetBehavior(const Behavior& behavior) {
  absl::MutexLock lock(&mu_);
  behavior_ = behavior;
}

}  // namespace herald::upstream_sim
