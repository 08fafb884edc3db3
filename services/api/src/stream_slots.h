// A bound on the server streams (WatchCampaign, Subscribe) open at once in one process.
#pragma once

#include <atomic>

namespace herald::api {

// How many streams may be open at once in this process; each costs memory and a coroutine for
// as long as its client keeps it. Thread-safe.
class StreamSlots {
 public:
  explicit StreamSlots(int max) : max_(max) {}
  bool TryAcquire() {
    int open = open_.load(std::memory_order_relaxed);
    do {
      if (open >= max_) return false;
    } while (!open_.compare_exchange_weak(open, open + 1, std::memory_order_relaxed));
    return true;
  }
  void Release() { open_.fetch_sub(1, std::memory_order_relaxed); }
  int max() const { return max_; }

 private:
  const int max_;
  std::atomic<int> open_{0};
};

}  // namespace herald::api
