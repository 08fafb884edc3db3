#include "loop_supervisor.h"

#include <chrono>
#include <exception>
#include <utility>

#include <boost/asio/this_coro.hpp>

namespace herald::queue::internal {

namespace asio = boost::asio;

asio::awaitable<void> RunRestarting(RestartHooks hooks, RestartPolicy policy, Timer** wake,
                                    const Clock& clock) {
  int restarts = 0;
  int in_a_row = 0;
  while (true) {
    const MonoTime started = clock.Monotonic();
    std::string why;
    try {
      co_await hooks.body();
      if (hooks.stopping()) co_return;
      why = "the loop ended while the worker was running";
    } catch (const std::exception& e) {
      why = e.what();
    } catch (...) {
      why = "an exception that is not a std::exception";
    }
    if (hooks.stopping()) co_return;
    const absl::Duration ran = absl::FromChrono(clock.Monotonic() - started);
    if (ran >= policy.healthy_after) in_a_row = 0;
    const absl::Duration pause = BackoffCeiling(policy.backoff, in_a_row);
    ++in_a_row;
    ++restarts;
    hooks.restarting(why, restarts, pause);
    std::unique_ptr<Timer> timer = clock.NewTimer(co_await asio::this_coro::executor);
    *wake = timer.get();
    const MonoTime until = clock.MonotonicAfter(pause);
    co_await timer->WaitUntil(until);
    *wake = nullptr;
    if (hooks.stopping()) co_return;
  }
}

}  // namespace herald::queue::internal
