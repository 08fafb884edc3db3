#include <atomic>
#include <exception>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <herald/common/clock.h>
#include <herald/common/periodic.h>

namespace herald {
namespace {

namespace asio = boost::asio;

TEST(PeriodicTest, RunsAtOnceThenOncePerIntervalUntilClosed) {
  asio::io_context io;
  ManualClock clock;
  int runs = 0;
  Periodic loop(io.get_executor(), absl::Seconds(30), clock, [&]() -> asio::awaitable<void> {
    ++runs;
    co_return;
  });
  loop.Start();
  io.poll();
  EXPECT_EQ(runs, 1);
  ASSERT_EQ(clock.pending_timers(), 1);

  clock.Advance(absl::Seconds(29));
  io.poll();
  EXPECT_EQ(runs, 1);
  clock.Advance(absl::Seconds(1));
  io.poll();
  EXPECT_EQ(runs, 2);

  bool closed = false;
  asio::co_spawn(io, loop.Close(), [&](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    closed = true;
  });
  io.poll();
  EXPECT_TRUE(closed);
  clock.Advance(absl::Minutes(5));
  io.poll();
  EXPECT_EQ(runs, 2);
}

TEST(PeriodicTest, CloseWaitsForTheRunInProgress) {
  asio::io_context io;
  ManualClock clock;
  auto gate_timer = clock.NewTimer(io.get_executor());
  bool run_ended = false;
  Periodic loop(io.get_executor(), absl::Seconds(30), clock, [&]() -> asio::awaitable<void> {
    // A run that takes 10 s of the clock.
    co_await gate_timer->WaitUntil(clock.MonotonicAfter(absl::Seconds(10)));
    run_ended = true;
  });
  loop.Start();
  io.poll();
  bool closed = false;
  asio::co_spawn(io, loop.Close(), [&](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    closed = true;
  });
  io.poll();
  EXPECT_FALSE(closed);
  clock.Advance(absl::Seconds(10));
  io.poll();
  EXPECT_TRUE(run_ended);
  EXPECT_TRUE(closed);
}

TEST(PeriodicTest, RunNowEndsTheWaitAndThenTheIntervalResumes) {
  asio::io_context io;
  ManualClock clock;
  int runs = 0;
  Periodic loop(io.get_executor(), absl::Seconds(30), clock, [&]() -> asio::awaitable<void> {
    ++runs;
    co_return;
  });
  loop.Start();
  io.poll();
  ASSERT_EQ(runs, 1);

  loop.RunNow();
  io.poll();
  EXPECT_EQ(runs, 2);
  clock.Advance(absl::Seconds(29));
  io.poll();
  EXPECT_EQ(runs, 2);
  clock.Advance(absl::Seconds(1));
  io.poll();
  EXPECT_EQ(runs, 3);
  asio::co_spawn(io, loop.Close(), asio::detached);
  io.poll();
}

TEST(PeriodicTest, RunNowDuringARunRunsAgainOnceItEnds) {
  asio::io_context io;
  ManualClock clock;
  auto run_timer = clock.NewTimer(io.get_executor());
  int runs = 0;
  Periodic loop(io.get_executor(), absl::Seconds(30), clock, [&]() -> asio::awaitable<void> {
    ++runs;
    co_await run_timer->WaitUntil(clock.MonotonicAfter(absl::Seconds(10)));
  });
  loop.Start();
  io.poll();
  ASSERT_EQ(runs, 1);
  loop.RunNow();  // while the first run waits for its 10 s
  io.poll();
  EXPECT_EQ(runs, 1);
  clock.Advance(absl::Seconds(10));
  io.poll();
  EXPECT_EQ(runs, 2);  // at once, not 30 s later
  clock.Advance(absl::Seconds(10));
  io.poll();
  EXPECT_EQ(runs, 2);  // then once per interval again
  clock.Advance(absl::Seconds(30));
  io.poll();
  EXPECT_EQ(runs, 3);
  asio::co_spawn(io, loop.Close(), asio::detached);
  clock.Advance(absl::Seconds(10));
  io.poll();
}

TEST(PeriodicTest, ALoopClosedBeforeItStartsNeverRuns) {
  asio::io_context io;
  ManualClock clock;
  int runs = 0;
  {
    Periodic loop(io.get_executor(), absl::Seconds(1), clock, [&]() -> asio::awaitable<void> {
      ++runs;
      co_return;
    });
    asio::co_spawn(io, loop.Close(), asio::detached);
    io.poll();
    loop.Start();
    io.poll();
  }
  EXPECT_EQ(runs, 0);
}

}  // namespace
}  // namespace herald
