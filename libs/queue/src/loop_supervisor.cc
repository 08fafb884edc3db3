#include "loop_supervisor.h"

#include <chrono>
#include <exception>
#include <utility>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace herald::queue::internal {

namespace asio = boost::asio;

asio::awaitable<void> RunRestarting(RestartHooks hooks, RestartPolicy policy,
                                    asio::steady_timer** wake) {
  int restarts = 0;
  int in_a_row = 0;
  while (true) {
    const auto started = std::chrono::steady_clock::now();
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
    const absl::Duration ran = absl::FromChrono(std::chrono::steady_clock::now() - started);
    if (ran >= policy.healthy_after) in_a_row = 0;
    const absl::Duration pause = BackoffCeiling(policy.backoff, in_a_row);
    ++in_a_row;
    ++restarts;
    hooks.restarting(why, restarts, pause);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(absl::ToChronoNanoseconds(pause));
    *wake = &timer;
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    *wake = nullptr;
    if (hooks.stopping()) co_return;
  }
}

}  // namespace herald::queue::internal
