// Moves simulated time forward: delivers mass messages to their recipients at the configured
// speed, lets recipients buy priced messages after a delay, adds new subscribers, reports async
// uploads that completed or failed, and emits the matching webhook events.
//
//   DeliveryEngine engine(clock, sink);
//   engine.Tick(world, behavior);   // from a timer every few milliseconds, or from a test
//
// Delivery is a function of time: a queue that started at S has delivered
// min(total, floor((now - S) * delivery_rate)) recipients, so the outcome does not depend on
// how often Tick runs, only on the clock (except that one pass delivers at most 20,000
// recipients per account, so a huge queue at a huge rate holds its account's lock briefly and
// finishes over a few passes). Purchase decisions are deterministic per (seed,
// message, fan), so runs with the same seed and requests buy the same.
//
// Thread-safety: Tick takes account locks one at a time and runs concurrently with request
// handlers; concurrent Ticks are serialised.
#pragma once

#include <atomic>
#include <cstdint>

#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>

#include <herald/common/clock.h>
#include <herald/upstream_sim/config.h>
#include <herald/upstream_sim/events.h>
#include <herald/upstream_sim/model.h>

namespace herald::upstream_sim {

struct DeliveryCounters {
  std::atomic<int64_t> recipients_delivered{0};
  std::atomic<int64_t> purchases{0};
  std::atomic<int64_t> revenue_cents{0};
  std::atomic<int64_t> queues_finished{0};
  std::atomic<int64_t> subscribers_added{0};
};

// The chance that a recipient buys a priced message. `uniform`: the purchase probability p.
// `spend_weighted`, with the fan's propensity w (its weight) and the message's `scale` a
// (SpendWeightedScale of its recipients' weights): a·w, capped at 1. The mean over the
// recipients stays p exactly, big spenders buy more, and p = 1 means every recipient buys, p = 0
// that none does.
double PurchaseChance(double probability, FanBehavior behavior, double propensity, double scale);

// The a for which the mean of min(1, a·w) over `weights` (all positive) is `probability` (for a
// probability in (0, 1); 0 otherwise, when PurchaseChance needs none).
double SpendWeightedScale(const std::vector<double>& weights, double probability);

class DeliveryEngine {
 public:
  // `clock` and `sink` must outlive the engine.
  DeliveryEngine(const Clock& clock, EventSink& sink) : clock_(clock), sink_(sink) {}

  // One pass over every account with work, at the clock's current time.
  void Tick(World& world, const Behavior& behavior);

  // Adds `count` new active subscribers to `account` now (emits subscriptions.new). Takes the
  // account lock.
  void AddSubscribers(World& world, Account& account, int count);

  const DeliveryCounters& counters() const { return counters_; }

  // Forget the new-subscriber rate's carry-over (after the world is replaced).
  void Reset();

 private:
  // True when the account still has work.
  bool Advance(World& world, Account& account, const Behavior& behavior, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);
  void Deliver(World& world, Account& account, MassMessage& m, uint32_t recipient,
               const Behavior& behavior, absl::Time now, bool emit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);
  void Buy(World& world, Account& account, MassMessage& m, uint32_t recipient, absl::Time at,
           bool emit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);
  void EmitQueue(World& world, Account& account, const MassMessage& m, EventType type,
                 const Behavior& behavior, absl::Time now);

  const Clock& clock_;
  EventSink& sink_;
  DeliveryCounters counters_;
  absl::Mutex tick_mu_;
  absl::Time last_tick_ ABSL_GUARDED_BY(tick_mu_) = absl::InfinitePast();
  double subscriber_carry_ ABSL_GUARDED_BY(tick_mu_) = 0;
  uint64_t subscriber_draws_ ABSL_GUARDED_BY(tick_mu_) = 0;
};

}  // namespace herald::upstream_sim
