#include "shard_schedule.h"

#include <algorithm>
#include <limits>

namespace herald::queue::internal {

ShardSchedule::ShardSchedule(int shards, absl::Duration idle_max)
    : shards_(shards),
      idle_max_(idle_max),
      due_ns_(std::make_unique<std::atomic<int64_t>[]>(static_cast<size_t>(shards))),
      readied_(std::make_unique<std::atomic<uint64_t>[]>(static_cast<size_t>(shards))) {
  for (int i = 0; i < shards_; ++i) {
    due_ns_[i].store(0, std::memory_order_relaxed);
    readied_[i].store(0, std::memory_order_relaxed);
  }
}

bool ShardSchedule::Due(int shard, absl::Time now) const {
  return due_ns_[shard].load(std::memory_order_relaxed) <= absl::ToUnixNanos(now);
}

std::optional<ShardSchedule::Claim> ShardSchedule::TryClaim(int shard, absl::Time now) {
  const uint64_t readied = readied_[shard].load();
  const int64_t now_ns = absl::ToUnixNanos(now);
  int64_t due = due_ns_[shard].load(std::memory_order_relaxed);
  while (due <= now_ns) {
    if (due_ns_[shard].compare_exchange_weak(due, absl::ToUnixNanos(now + idle_max_),
                                             std::memory_order_relaxed)) {
      return Claim{.shard = shard, .readied = readied};
    }
  }
  return std::nullopt;
}

void ShardSchedule::Leased(const Claim& claim, absl::Time now, size_t leased,
                           std::optional<absl::Duration> next_due) {
  const int shard = claim.shard;
  if (leased > 0) {
    Set(shard, now);  // a busy shard stays due
    return;
  }
  Set(shard, now + (next_due.has_value() ? std::min(*next_due, idle_max_) : idle_max_));
  // Read after the store above (both sequentially consistent): a Ready() this read misses comes
  // after that store, and lowers the due time itself.
  if (readied_[shard].load() != claim.readied) Set(shard, now);
}

void ShardSchedule::Failed(int shard, absl::Time now, absl::Duration backoff) {
  Set(shard, now + backoff);
}

void ShardSchedule::Ready(int shard, absl::Time now) {
  readied_[shard].fetch_add(1);
  const int64_t now_ns = absl::ToUnixNanos(now);
  int64_t due = due_ns_[shard].load();
  while (due > now_ns && !due_ns_[shard].compare_exchange_weak(due, now_ns)) {
  }
}

absl::Time ShardSchedule::NextDue() const {
  int64_t earliest = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < shards_; ++i) {
    earliest = std::min(earliest, due_ns_[i].load(std::memory_order_relaxed));
  }
  return absl::FromUnixNanos(earliest);
}

void ShardSchedule::Set(int shard, absl::Time at) { due_ns_[shard].store(absl::ToUnixNanos(at)); }

}  // namespace herald::queue::internal
