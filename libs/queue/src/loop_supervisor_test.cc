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

// Runs RunRestarting on `ioc` with `clock` until it returns; false if it stops making progress.
// With `advance`, each pause is waited out by moving the clock past it; without, only a
// cancelled pause ends.
bool RunToEnd(asio::io_context& ioc, ManualClock& clock, RestartHooks hooks, RestartPolicy policy,
              Timer** wake, bool advance = true) {
  bool ended = false;
  asio::co_spawn(ioc, RunRestarting(std::move(hooks), policy, wake, clock),
                 [&](std::exception_ptr e) {
                   EXPECT_FALSE(e);
                   ended = true;
                 });
  for (int step = 0; step < 1000 && !ended; ++step) {
    ioc.restart();
    if (ioc.poll() > 0) continue;
    if (!advance || clock.pending_timers() == 0) break;  // stuck
    clock.Advance(policy.backoff.cap);
  }
  return ended;
}

TEST(RunRestarting, ThrowsAndUnexpectedEndsRestartWithGrowingBackoff) {
  asio::io_context ioc;
  ManualClock clock;
  const absl::Time start = clock.Now();
  Timer* wake = nullptr;
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
  ASSERT_TRUE(RunToEnd(ioc, clock, std::move(hooks),
                       {.backoff = {.base = absl::Seconds(1), .cap = absl::Seconds(3)},
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
      ElementsAre(absl::Seconds(1), absl::Seconds(2), absl::Seconds(3)));
  // Each pause was waited out on the clock (advanced by the cap, 3 s, each time).
  EXPECT_EQ(clock.Now() - start, absl::Seconds(9));
  EXPECT_EQ(wake, nullptr);
}

TEST(RunRestarting, AHealthyRunResetsTheBackoff) {
  asio::io_context ioc;
  ManualClock clock;
  Timer* wake = nullptr;
  int runs = 0;
  std::vector<absl::Duration> pauses;
  RestartHooks hooks{.body = [&]() -> asio::awaitable<void> {
                       // Each run lasts a minute of the clock's time before it fails: healthy.
                       clock.Advance(absl::Minutes(1));
                       if (++runs < 4) throw std::runtime_error("again");
                       co_return;
                     },
                     .stopping = [&] { return runs >= 4; },
                     .restarting = [&](const std::string&, int,
                                       absl::Duration pause) { pauses.push_back(pause); }};
  ASSERT_TRUE(RunToEnd(ioc, clock, std::move(hooks),
                       {.backoff = {.base = absl::Seconds(1), .cap = absl::Seconds(8)},
                        .healthy_after = absl::Minutes(1)},
                       &wake));
  EXPECT_THAT(pauses, ElementsAre(absl::Seconds(1), absl::Seconds(1), absl::Seconds(1)));
}

TEST(RunRestarting, StoppingCancelsThePause) {
  asio::io_context ioc;
  ManualClock clock;
  Timer* wake = nullptr;
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
                             wake->Cancel();
                           });
                         }};
  // The clock never moves: the run ends only because the drain cancels the pause.
  ASSERT_TRUE(RunToEnd(ioc, clock, std::move(hooks),
                       {.backoff = {.base = absl::Hours(1), .cap = absl::Hours(1)}}, &wake,
                       /*advance=*/false));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(wake, nullptr);
}

}  // namespace
}  // namespace herald::queue::internal
