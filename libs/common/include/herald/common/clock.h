// Time as a dependency.
//
// Code that schedules, expires or rate-limits takes a `const Clock&` instead of reading the
// system time, so tests drive time explicitly (ManualClock) and never sleep.
#pragma once

#include <atomic>

#include <absl/time/clock.h>
#include <absl/time/time.h>

namespace herald {

// A source of wall-clock time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The real time of the machine.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }

  // A process-wide instance; never destroyed.
  static const SystemClock& Get();
};

// A clock that moves only when told to. Thread-safe: Now() may race with Advance().
class ManualClock final : public Clock {
 public:
  explicit ManualClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : nanos_(absl::ToUnixNanos(start)) {}

  absl::Time Now() const override {
    return absl::FromUnixNanos(nanos_.load(std::memory_order_acquire));
  }
  void Set(absl::Time t) { nanos_.store(absl::ToUnixNanos(t), std::memory_order_release); }
  void Advance(absl::Duration d) {
    nanos_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_acq_rel);
  }

 private:
  std::atomic<int64_t> nanos_;
};

}  // namespace herald
