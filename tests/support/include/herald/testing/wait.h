// Polling with a deadline: the only way tests wait for something to happen.
#pragma once

#include <functional>

#include <absl/time/clock.h>
#include <absl/time/time.h>

namespace herald::testing {

// Calls `condition` until it returns true or `timeout` passes; true if it became true. The poll
// interval grows from 1ms to `max_interval` so fast events are seen fast and slow ones cost
// little (raise it for a condition that is expensive to check).
inline bool WaitFor(const std::function<bool()>& condition,
                    absl::Duration timeout = absl::Seconds(10),
                    absl::Duration max_interval = absl::Milliseconds(50)) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration interval = absl::Milliseconds(1);
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(interval);
    interval = std::min(interval * 2, max_interval);
  }
}

}  // namespace herald::testing
