#include "loop_supervisor.h"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace herald::queue::internal {
namespace {

namespace asio = boost::asio;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Restart {
  std::string why;
  int restarts;
  absl::Duration pause;
};

// Runs RunRestarting on `ioc` until it returns; false if it has not within 10 s.
bool RunToEnd(asio::io_context& ioc, RestartHooks hooks, RestartPolicy policy,
              asio::steady_timer** wake) {
  bool ended = false;
  asio::co_spawn(ioc, RunRestarting(std::move(hooks), policy, wake), [&](std::exception_ptr e) {
    EXPECT_FALSE(e);
    ended = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!ended && std::chrono::steady_clock::now() < deadline) {
    ioc.run_for(std::chrono::milliseconds(100));
  }
  return ended;
}

TEST(RunRestarting, ThrowsAndUnexpectedEndsRestartWithGrowingBackoff) {
  asio::io_context ioc;
  asio::steady_timer* wake = nullptr;
  bool stopping = false;
  int runs = 0;
  std::vector<Restart> restarts;
  RestartHooks hooks{.body = [&]() -> asio::awaitable<void> {
                       ++runs;
                       if (runs == 1) throw std::runtime_error("redis client exploded");
                       if (runs == 2) throw 42;
                       if (runs == 4) stopping = true;  // a drain: this return is expected
                       co_return;  // run 3 ends while it should still be running
                     },
                     .stopping = [&] { return stopping; },
                     .restarting =
                         [&](const std::string& why, int n, absl::Duration pause) {
                           restarts.push_back({why, n, pause});
                         }};
  ASSERT_TRUE(RunToEnd(ioc, std::move(hooks),
                       {.backoff = {.base = absl::Milliseconds(1), .cap = absl::Milliseconds(3)},
                        .healthy_after = absl::Hours(1)},
                       &wake));
  EXPECT_EQ(runs, 4);
  ASSERT_EQ(restarts.size(), 3u);
  EXPECT_EQ(restarts[0].why, "redis client exploded");
  EXPECT_THAT(restarts[1].why, HasSubstr("not a std::exception"));
  EXPECT_THAT(restarts[2].why, HasSubstr("ended while the worker was running"));
  EXPECT_EQ(restarts[2].restarts, 3);
  EXPECT_THAT(
      (std::vector<absl::Duration>{restarts[0].pause, restarts[1].pause, restarts[2].pause}),
      ElementsAre(absl::Milliseconds(1), absl::Milliseconds(2), absl::Milliseconds(3)));
  EXPECT_EQ(wake, nullptr);
}

TEST(RunRestarting, AHealthyRunResetsTheBackoff) {
  asio::io_context ioc;
  asio::steady_timer* wake = nullptr;
  int runs = 0;
  std::vector<absl::Duration> pauses;
  RestartHooks hooks{.body = [&]() -> asio::awaitable<void> {
                       if (++runs < 4) throw std::runtime_error("again");
                       co_return;
                     },
                     .stopping = [&] { return runs >= 4; },
                     .restarting = [&](const std::string&, int,
                                       absl::Duration pause) { pauses.push_back(pause); }};
  ASSERT_TRUE(RunToEnd(ioc, std::move(hooks),
                       {.backoff = {.base = absl::Milliseconds(1), .cap = absl::Seconds(1)},
                        .healthy_after = absl::ZeroDuration()},
                       &wake));
  EXPECT_THAT(pauses,
              ElementsAre(absl::Milliseconds(1), absl::Milliseconds(1), absl::Milliseconds(1)));
}

TEST(RunRestarting, StoppingCancelsThePause) {
  asio::io_context ioc;
  asio::steady_timer* wake = nullptr;
  bool stopping = false;
  int runs = 0;
  RestartHooks hooks{.body = [&]() -> asio::awaitable<void> {
                       ++runs;
                       throw std::runtime_error("down");
                       co_return;
                     },
                     .stopping = [&] { return stopping; },
                     .restarting =
                         [&](const std::string&, int, absl::Duration) {
                           // A drain arrives during the pause, as Worker::Drain posts it.
                           asio::post(ioc, [&] {
                             stopping = true;
                             ASSERT_NE(wake, nullptr);
                             wake->cancel();
                           });
                         }};
  // An hour's pause: the test ends only because the drain cancels it.
  ASSERT_TRUE(RunToEnd(ioc, std::move(hooks),
                       {.backoff = {.base = absl::Hours(1), .cap = absl::Hours(1)}}, &wake));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(wake, nullptr);
}

}  // namespace
}  // namespace herald::queue::internal
