// Time as a dependency.
//
// Code that schedules, expires, waits or rate-limits takes a `const Clock&` instead of reading
// the system time or arming asio timers itself, so tests drive time explicitly (ManualClock) and
// never sleep:
//
//   absl::Time now = clock.Now();                    // wall time: records, schedules
//   MonoTime t = clock.Monotonic();                  // intervals, deadlines in this process
//   std::unique_ptr<Timer> timer = clock.NewTimer(strand);
//   MonoTime at = clock.MonotonicAfter(absl::Seconds(1));
//   bool fired = co_await timer->WaitUntil(at);      // false: cancelled
//   bool slept = co_await clock.SleepFor(absl::Milliseconds(5));
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include <absl/time/clock.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace herald {

// A point on a clock's monotonic scale: only differences and comparisons between points of the
// same clock mean anything.
using MonoTime = std::chrono::steady_clock::time_point;

// A one-shot, re-armable timer of a Clock. Like an asio timer it is used from one strand: one
// WaitUntil() at a time, and Cancel() from that strand.
class Timer {
 public:
  virtual ~Timer() = default;
  // Completes when the clock reaches `at` (true; at once when it has), or when Cancel() ends
  // the wait early (false). MonoTime::max() waits until cancelled.
  virtual boost::asio::awaitable<bool> WaitUntil(MonoTime at) = 0;
  // Ends the pending wait, if any, with false.
  virtual void Cancel() = 0;
};

// A source of wall-clock and monotonic time, and of timers on the latter. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  virtual MonoTime Monotonic() const = 0;
  // A timer whose completions run on `executor`.
  virtual std::unique_ptr<Timer> NewTimer(boost::asio::any_io_executor executor) const = 0;

  // Waits `d` of this clock's time on the calling coroutine's executor: true, or false when the
  // coroutine was cancelled first.
  boost::asio::awaitable<bool> SleepFor(absl::Duration d) const;
  // `d` from now on the monotonic scale (negative: now; saturating at MonoTime::max()).
  MonoTime MonotonicAfter(absl::Duration d) const;
  // `t` of this clock's wall time as a point on its monotonic scale (the past: now).
  virtual MonoTime MonotonicAt(absl::Time t) const { return MonotonicAfter(t - Now()); }
};

// The real time of the machine; timers are asio steady timers.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  MonoTime Monotonic() const override { return std::chrono::steady_clock::now(); }
  std::unique_ptr<Timer> NewTimer(boost::asio::any_io_executor executor) const override;

  // A process-wide instance; never destroyed.
  static const SystemClock& Get();
};

// A clock that moves only when told to: wall and monotonic time move together, and Advance() or
// Set() fires the timers that came due (their completions are posted to their executors).
// Thread-safe: Now() may race with Advance().
class ManualClock final : public Clock {
 public:
  explicit ManualClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : nanos_(absl::ToUnixNanos(start)) {}
  ~ManualClock() override;

  absl::Time Now() const override {
    return absl::FromUnixNanos(nanos_.load(std::memory_order_acquire));
  }
  MonoTime Monotonic() const override {
    return MonoTime(std::chrono::nanoseconds(nanos_.load(std::memory_order_acquire)));
  }
  std::unique_ptr<Timer> NewTimer(boost::asio::any_io_executor executor) const override;
  // Exact, whenever the clock moves: its two scales are one, so `t` is read off it directly
  // rather than as an interval from a Now() that an Advance() may have moved since.
  MonoTime MonotonicAt(absl::Time t) const override;

  void Set(absl::Time t);
  void Advance(absl::Duration d);

  // Timers waiting now (for tests that advance time only once the code under test waits).
  int pending_timers() const;

 private:
  class ManualTimer;
  using Fire = std::function<void(bool fired)>;

  // Calls `fire(true)` once the clock reaches `at` (at once if it has); returns an id for
  // Unschedule.
  uint64_t Schedule(MonoTime at, Fire fire) const;
  // Calls the scheduled `fire(false)` unless it has fired.
  void Unschedule(uint64_t id) const;
  void FireDue();

  std::atomic<int64_t> nanos_;
  mutable std::mutex mu_;
  mutable uint64_t next_id_ = 1;                                        // guarded by mu_
  mutable std::multimap<MonoTime, std::pair<uint64_t, Fire>> waiting_;  // guarded by mu_
};

}  // namespace herald
