// Bounds on the server streams (WatchCampaign, Subscribe) open at once in one process.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>

namespace herald::api {

struct StreamLimits {
  int max = 10000;            // in the process
  int max_per_tenant = 1000;  // of one tenant, in the process
};

// How many streams may be open at once in this process, and of one tenant; each costs memory
// and a coroutine for as long as its client keeps it. A stream takes a process slot when it
// opens, and its tenant's once its key is checked. Thread-safe.
class StreamSlots {
 public:
  explicit StreamSlots(StreamLimits limits) : limits_(limits) {}

  bool TryAcquire() {
    int open = open_.load(std::memory_order_relaxed);
    do {
      if (open >= limits_.max) return false;
    } while (!open_.compare_exchange_weak(open, open + 1, std::memory_order_relaxed));
    return true;
  }
  void Release() { open_.fetch_sub(1, std::memory_order_relaxed); }

  bool TryAcquireFor(const std::string& tenant) {
    std::lock_guard lock(mu_);
    int& open = by_tenant_[tenant];
    if (open >= limits_.max_per_tenant) return false;
    ++open;
    return true;
  }
  void ReleaseFor(const std::string& tenant) {
    std::lock_guard lock(mu_);
    auto it = by_tenant_.find(tenant);
    if (it != by_tenant_.end() && --it->second <= 0) by_tenant_.erase(it);
  }

  const StreamLimits& limits() const { return limits_; }

 private:
  const StreamLimits limits_;
  std::atomic<int> open_{0};
  std::mutex mu_;
  std::unordered_map<std::string, int> by_tenant_;  // tenants with streams open
};

}  // namespace herald::api
