// When each queue shard is worth a lease call, shared by a worker's lease loops.
//
// A lease call that found nothing says when work could next be ready on its shard (the lease
// script's hint: an account's next token, a delayed job's due time, a lease's expiry). Until
// then every loop of the worker skips the shard, so an idle or rate-limited shard costs one call
// per hint, not one per loop per round. A shard with nothing scheduled, and one whose hint is
// further away, is tried again after `idle_max`: that bounds how late work enqueued meanwhile is
// noticed. Work a worker enqueues itself (a job's next step, acked with it) makes its shard due at
// once: Ready(). A loop claims a due shard before calling it, so loops that wake together do not
// all call the same shard. Thread-safe; lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

#include <absl/time/time.h>

namespace herald::queue::internal {

class ShardSchedule {
 public:
  ShardSchedule(int shards, absl::Duration idle_max);

  // One lease call's hold on a shard.
  struct Claim {
    int shard = 0;
    uint64_t readied = 0;  // the shard's Ready() count when it was claimed
  };

  // Whether `shard` may have work at `now`. Every shard is due at first.
  bool Due(int shard, absl::Time now) const;
  // Claims a due shard for one lease call: the claim when it was due at `now`; other callers
  // then find it not due until Leased() or Failed() records the call's result (or, should
  // neither come, for `idle_max`), or Ready() makes it due.
  std::optional<Claim> TryClaim(int shard, absl::Time now);

  // Records a lease call made at `now` under `claim` that leased `leased` jobs and returned
  // `next_due` (the script's hint; nullopt: nothing scheduled on the shard). A shard made
  // Ready() since the claim stays due: the call may have been too early to see that work.
  void Leased(const Claim& claim, absl::Time now, size_t leased,
              std::optional<absl::Duration> next_due);
  // Records a failed lease call: the shard is tried again after `backoff`.
  void Failed(int shard, absl::Time now, absl::Duration backoff);
  // Work ready on `shard` at `now` was just enqueued: the shard is due from then on (or sooner).
  void Ready(int shard, absl::Time now);

  // The earliest time a shard is due; in the past when one is due now.
  absl::Time NextDue() const;

 private:
  void Set(int shard, absl::Time at);

  const int shards_;
  const absl::Duration idle_max_;
  std::unique_ptr<std::atomic<int64_t>[]> due_ns_;    // Unix ns from which each shard is due
  std::unique_ptr<std::atomic<uint64_t>[]> readied_;  // Ready() calls on each shard
};

}  // namespace herald::queue::internal
