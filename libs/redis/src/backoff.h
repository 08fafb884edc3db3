// Reconnect backoff: exponential, capped, jittered.
#pragma once

#include <algorithm>
#include <cmath>

#include <absl/time/time.h>

namespace herald::redis::internal {

// The delay before the reconnect attempt that follows `failures` consecutive failures (0 for
// the first retry after a connection was lost): `min` * 2^failures, capped at `max`, then
// scaled by a factor in [0.5, 1] taken from `random01` (uniform in [0, 1)). The jitter keeps
// the connections of many processes that lost Redis together from retrying in lockstep; the
// lower bound of half keeps the growth exponential.
inline absl::Duration ReconnectDelay(int failures, absl::Duration min, absl::Duration max,
                                     double random01) {
  const int doublings = std::clamp(failures, 0, 30);
  absl::Duration delay = min;
  for (int i = 0; i < doublings && delay < max; ++i) delay *= 2;
  delay = std::min(delay, max);
  return delay * (0.5 + 0.5 * std::clamp(random01, 0.0, 1.0));
}

}  // namespace herald::redis::internal
