#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <herald/common/clock.h>

namespace herald {
namespace {

namespace asio = boost::asio;

// Starts timer->WaitUntil(at) on `io`; the result lands in the returned slot.
std::shared_ptr<std::optional<bool>> SpawnWait(asio::io_context& io, Timer& timer, MonoTime at) {
  auto result = std::make_shared<std::optional<bool>>();
  asio::co_spawn(io, timer.WaitUntil(at), [result](std::exception_ptr e, bool fired) {
    if (e) std::rethrow_exception(e);
    *result = fired;
  });
  return result;
}

TEST(ManualClockTest, WallAndMonotonicTimeMoveTogetherOnlyWhenTold) {
  ManualClock clock;
  const absl::Time wall = clock.Now();
  const MonoTime mono = clock.Monotonic();
  clock.Advance(absl::Seconds(90));
  EXPECT_EQ(clock.Now() - wall, absl::Seconds(90));
  EXPECT_EQ(clock.Monotonic() - mono, std::chrono::seconds(90));
  EXPECT_EQ(clock.MonotonicAt(clock.Now() + absl::Seconds(5)),
            clock.Monotonic() + std::chrono::seconds(5));
  EXPECT_EQ(clock.MonotonicAt(wall), clock.Monotonic()) << "the past is now";
}

// A wall time is one point on the monotonic scale, read off it however the clock moves
// meanwhile: a deadline set while another thread advances the clock is not shifted by the step.
TEST(ManualClockTest, AWallTimeIsTheSameMonotonicPointWhileTheClockMoves) {
  ManualClock clock;
  const absl::Time deadline = clock.Now() + absl::Hours(24);
  const MonoTime expected = clock.MonotonicAt(deadline);
  EXPECT_EQ(expected, clock.Monotonic() + std::chrono::hours(24));
  std::atomic<bool> done{false};
  std::thread mover([&] {
    for (int i = 0; i < 20'000; ++i) clock.Advance(absl::Seconds(1));
    done = true;
  });
  int64_t shifted = 0;
  while (!done.load()) {
    if (clock.MonotonicAt(deadline) != expected) ++shifted;
  }
  mover.join();
  EXPECT_EQ(shifted, 0);
  EXPECT_EQ(clock.MonotonicAt(absl::InfiniteFuture()), MonoTime::max());
  EXPECT_EQ(clock.MonotonicAt(absl::InfinitePast()), clock.Monotonic());
}

TEST(ManualClockTest, ATimerFiresWhenTheClockReachesItsTimeAndNotBefore) {
  asio::io_context io;
  ManualClock clock;
  std::unique_ptr<Timer> timer = clock.NewTimer(io.get_executor());
  auto fired = SpawnWait(io, *timer, clock.Monotonic() + std::chrono::seconds(10));
  io.poll();
  EXPECT_FALSE(fired->has_value());
  EXPECT_EQ(clock.pending_timers(), 1);

  clock.Advance(absl::Seconds(9));
  io.poll();
  EXPECT_FALSE(fired->has_value());

  clock.Advance(absl::Seconds(1));
  io.poll();
  ASSERT_TRUE(fired->has_value());
  EXPECT_TRUE(**fired);
  EXPECT_EQ(clock.pending_timers(), 0);
}

TEST(ManualClockTest, AWaitForThePastCompletesAtOnce) {
  asio::io_context io;
  ManualClock clock;
  std::unique_ptr<Timer> timer = clock.NewTimer(io.get_executor());
  auto fired = SpawnWait(io, *timer, clock.Monotonic());
  io.poll();
  ASSERT_TRUE(fired->has_value());
  EXPECT_TRUE(**fired);
}

TEST(ManualClockTest, CancelEndsTheWaitWithFalse) {
  asio::io_context io;
  ManualClock clock;
  std::unique_ptr<Timer> timer = clock.NewTimer(io.get_executor());
  auto fired = SpawnWait(io, *timer, MonoTime::max());
  io.poll();
  timer->Cancel();
  io.poll();
  ASSERT_TRUE(fired->has_value());
  EXPECT_FALSE(**fired);
  EXPECT_EQ(clock.pending_timers(), 0);
  timer->Cancel();  // nothing pending: no effect
}

TEST(ManualClockTest, TheCoroutinesCancellationEndsASleep) {
  asio::io_context io;
  ManualClock clock;
  asio::cancellation_signal signal;
  std::optional<bool> slept;
  asio::co_spawn(io, clock.SleepFor(absl::Hours(1)),
                 asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, bool ok) {
                   if (e) std::rethrow_exception(e);
                   slept = ok;
                 }));
  io.poll();
  EXPECT_EQ(clock.pending_timers(), 1);
  signal.emit(asio::cancellation_type::terminal);
  io.poll();
  ASSERT_TRUE(slept.has_value());
  EXPECT_FALSE(*slept);
}

TEST(ManualClockTest, TimersFireInTheOrderOfTheirTimes) {
  asio::io_context io;
  ManualClock clock;
  std::vector<int> order;
  std::vector<std::unique_ptr<Timer>> timers;
  for (int seconds : {3, 1, 2}) {
    timers.push_back(clock.NewTimer(io.get_executor()));
    asio::co_spawn(io, timers.back()->WaitUntil(clock.Monotonic() + std::chrono::seconds(seconds)),
                   [&order, seconds](std::exception_ptr, bool) { order.push_back(seconds); });
  }
  io.poll();
  for (int i = 0; i < 3; ++i) {
    clock.Advance(absl::Seconds(1));
    io.poll();
  }
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(SystemClockTest, ATimerWaitsAndCanBeCancelled) {
  asio::io_context io;
  const Clock& clock = SystemClock::Get();
  std::unique_ptr<Timer> timer = clock.NewTimer(io.get_executor());
  auto fired = SpawnWait(io, *timer, clock.Monotonic() + std::chrono::milliseconds(1));
  io.run();
  ASSERT_TRUE(fired->has_value());
  EXPECT_TRUE(**fired);

  io.restart();
  auto cancelled = SpawnWait(io, *timer, MonoTime::max());
  io.poll();
  timer->Cancel();
  io.run();
  ASSERT_TRUE(cancelled->has_value());
  EXPECT_FALSE(**cancelled);
}

}  // namespace
}  // namespace herald
