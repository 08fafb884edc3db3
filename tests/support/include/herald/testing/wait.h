// Polling with a deadline: the only way tests wait for something to happen.
#pragma once

#include <functional>

#include <absl/time/clock.h>
#include <absl/time/time.h>

namespace herald::testing {

// Calls `condition` until it returns true or `timeout` passes; true if it became true. The poll
// interval grows from 1ms to 50ms so fast events are seen fast and slow ones cost little.
inline bool WaitFor(const std::function<bool()>& condition,
                    absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration interval = absl::Milliseconds(1);
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(interval);
    interval = std::min(interval * 2, absl::Milliseconds(50));
  }
}

}  // namespace herald::testing
