// Keeps a long-running coroutine alive. A worker's lease loop must run for as long as the process
// reports ready: one that throws, or returns while it should still be running, is logged and run
// again after a backoff rather than silently lost.
#pragma once

#include <functional>
#include <string>

#include <absl/time/time.h>
#include <boost/asio/awaitable.hpp>

#include <herald/common/clock.h>
#include <herald/queue/backoff.h>

namespace herald::queue::internal {

struct RestartPolicy {
  // The n-th restart in a row (n from 0) waits BackoffCeiling(backoff, n): no jitter, a loop's
  // restarts are not correlated with other processes'.
  BackoffPolicy backoff;
  // A run that lasted at least this long was healthy: the next restart starts from `base` again.
  absl::Duration healthy_after = absl::Minutes(1);
};

struct RestartHooks {
  // Runs the loop once; throwing or returning while !stopping() calls for a restart.
  std::function<boost::asio::awaitable<void>()> body;
  // True once the loop is meant to end (a drain): then a return is expected and nothing restarts.
  std::function<bool()> stopping;
  // Called before each restart's pause, with why the run ended, the restarts so far (this one
  // included) and the pause.
  std::function<void(const std::string& why, int restarts, absl::Duration pause)> restarting;
};

// Runs hooks.body until it returns with hooks.stopping() true, restarting it as above. While it
// pauses (on `clock`), `*wake` points at the pause's timer (else nullptr), so that whoever sets
// `stopping` can cancel the pause; the pause ends early then and RunRestarting returns. Runs on
// the caller's executor (use a strand if `wake` is shared); `wake` must outlive the coroutine.
// Exceptions thrown by `restarting` or `stopping` propagate.
boost::asio::awaitable<void> RunRestarting(RestartHooks hooks, RestartPolicy policy, Timer** wake,
                                           const Clock& clock = SystemClock::Get());

}  // namespace herald::queue::internal
