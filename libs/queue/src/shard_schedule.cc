#include "shard_schedule.h"

#include <algorithm>
#include <limits>

namespace herald::queue::internal {

ShardSchedule::ShardSchedule(int shards, absl::Duration idle_max)
    : shards_(shards),
      idle_max_(idle_max),
      due_ns_(std::make_unique<std::atomic<int64_t>[]>(static_cast<size_t>(shards))) {
  for (int i = 0; i < shards_; ++i) due_ns_[i].store(0, std::memory_order_relaxed);
}

bool ShardSchedule::Due(int shard, absl::Time now) const {
  return due_ns_[shard].load(std::memory_order_relaxed) <= absl::ToUnixNanos(now);
}

bool ShardSchedule::TryClaim(int shard, absl::Time now) {
  const int64_t now_ns = absl::ToUnixNanos(now);
  int64_t due = due_ns_[shard].load(std::memory_order_relaxed);
  while (due <= now_ns) {
    if (due_ns_[shard].compare_exchange_weak(due, absl::ToUnixNanos(now + idle_max_),
                                             std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void ShardSchedule::Leased(int shard, absl::Time now, size_t leased,
                           std::optional<absl::Duration> next_due) {
  if (leased > 0) {
    Set(shard, now);  // a busy shard stays due
  } else if (next_due.has_value()) {
    Set(shard, now + std::min(*next_due, idle_max_));
  } else {
    Set(shard, now + idle_max_);
  }
}

void ShardSchedule::Failed(int shard, absl::Time now, absl::Duration backoff) {
  Set(shard, now + backoff);
}

absl::Time ShardSchedule::NextDue() const {
  int64_t earliest = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < shards_; ++i) {
    earliest = std::min(earliest, due_ns_[i].load(std::memory_order_relaxed));
  }
  return absl::FromUnixNanos(earliest);
}

void ShardSchedule::Set(int shard, absl::Time at) {
  due_ns_[shard].store(absl::ToUnixNanos(at), std::memory_order_relaxed);
}

}  // namespace herald::queue::internal
