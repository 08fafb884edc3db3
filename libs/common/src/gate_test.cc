#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <herald/common/gate.h>

namespace herald {
namespace {

namespace asio = boost::asio;

// Starts gate.Close() on `io`; the returned flag turns true when it completes.
std::shared_ptr<std::atomic<bool>> SpawnClose(asio::io_context& io, Gate& gate) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  asio::co_spawn(io, gate.Close(), [done](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    done->store(true);
  });
  return done;
}

TEST(GateTest, EntersWhileOpen) {
  Gate gate;
  ASSERT_TRUE(gate.TryEnter());
  EXPECT_EQ(gate.inside(), 1);
  EXPECT_FALSE(gate.closing());
  gate.Leave();
  EXPECT_EQ(gate.inside(), 0);
}

TEST(GateTest, CloseCompletesAtOnceWhenEmptyAndRefusesEntriesAfterwards) {
  asio::io_context io;
  Gate gate;
  auto done = SpawnClose(io, gate);
  io.run();
  EXPECT_TRUE(*done);
  EXPECT_TRUE(gate.closing());
  EXPECT_FALSE(gate.TryEnter());
  EXPECT_EQ(gate.inside(), 0);
  GateHolder holder(gate);
  EXPECT_FALSE(holder.held());
}

TEST(GateTest, CloseCompletesOnlyAfterTheLastHolderLeaves) {
  asio::io_context io;
  Gate gate;
  auto first = std::make_unique<GateHolder>(gate);
  auto second = std::make_unique<GateHolder>(gate);
  ASSERT_TRUE(first->held());
  ASSERT_TRUE(second->held());

  auto done = SpawnClose(io, gate);
  io.poll();  // runs Close() until it waits
  EXPECT_FALSE(*done);
  EXPECT_FALSE(gate.TryEnter()) << "a closing gate refuses entries";
  EXPECT_EQ(gate.inside(), 2);

  first.reset();
  io.poll();
  EXPECT_FALSE(*done);

  second.reset();
  io.run();
  EXPECT_TRUE(*done);
  EXPECT_EQ(gate.inside(), 0);
}

// Work started by work inside the gate enters it even while it closes, and the close waits for
// it: the worker's batches, started by a lease loop whose last lease returned after a drain began.
TEST(GateTest, NestedEntriesSucceedWhileClosingAndCloseWaitsForThem) {
  asio::io_context io;
  Gate gate;
  auto outer = std::make_unique<GateHolder>(gate);
  ASSERT_TRUE(outer->held());
  auto done = SpawnClose(io, gate);
  io.poll();
  ASSERT_FALSE(*done);

  auto nested = std::make_unique<GateHolder>(GateHolder::Nested(gate));
  EXPECT_TRUE(nested->held());
  EXPECT_EQ(gate.inside(), 2);
  outer.reset();
  io.poll();
  EXPECT_FALSE(*done) << "closed with the nested entry inside";

  nested.reset();
  io.run();
  EXPECT_TRUE(*done);
  EXPECT_EQ(gate.inside(), 0);
}

TEST(GateTest, CloseAndWaitReturnsAtOnceWhenEmpty) {
  Gate gate;
  gate.CloseAndWait();
  EXPECT_TRUE(gate.closing());
  EXPECT_FALSE(gate.TryEnter());
}

TEST(GateTest, CloseAndWaitBlocksUntilTheLastHolderLeavesOnAnotherThread) {
  Gate gate;
  auto holder = std::make_unique<GateHolder>(gate);
  ASSERT_TRUE(holder->held());
  std::atomic<bool> left{false};
  std::thread leaver([&] {
    // Leaves only once the closer is committed: the gate is closing.
    while (!gate.closing()) std::this_thread::yield();
    left.store(true);
    holder.reset();
  });
  gate.CloseAndWait();
  EXPECT_TRUE(left.load()) << "returned before the holder left";
  EXPECT_EQ(gate.inside(), 0);
  leaver.join();
}

TEST(GateTest, EveryCloseCallerResumes) {
  asio::io_context io;
  Gate gate;
  ASSERT_TRUE(gate.TryEnter());
  auto a = SpawnClose(io, gate);
  auto b = SpawnClose(io, gate);
  io.poll();
  EXPECT_FALSE(*a);
  EXPECT_FALSE(*b);

  gate.Leave();
  io.run();  // returns once both Close() coroutines have finished
  io.restart();
  EXPECT_TRUE(*a);
  EXPECT_TRUE(*b);

  // A later Close() on the empty, closed gate completes at once.
  auto c = SpawnClose(io, gate);
  io.run();
  EXPECT_TRUE(*c);
}

TEST(GateTest, CloserResumesOnItsOwnExecutorWhenLeaveRunsElsewhere) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });

  Gate gate;
  std::vector<GateHolder> holders;
  for (int i = 0; i < 3; ++i) holders.emplace_back(gate);

  std::promise<bool> resumed;
  asio::co_spawn(io, gate.Close(), [&](std::exception_ptr e) {
    resumed.set_value(e == nullptr && io.get_executor().running_in_this_thread());
  });

  std::thread leaver([&] { holders.clear(); });
  leaver.join();
  auto future = resumed.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(future.get());
  guard.reset();
  io_thread.join();
}

TEST(GateTest, ConcurrentEntriesAndCloseNeverLoseTheLastLeave) {
  // Entries and departures on other threads race with Close(); it must complete once all have
  // left, whichever interleaving occurs.
  for (int round = 0; round < 200; ++round) {
    asio::io_context io;
    Gate gate;
    std::atomic<bool> start{false};
    std::vector<std::thread> workers;
    for (int t = 0; t < 2; ++t) {
      workers.emplace_back([&] {
        while (!start.load()) {
        }
        for (int i = 0; i < 200; ++i) GateHolder holder(gate);
      });
    }
    auto done = SpawnClose(io, gate);
    start.store(true);
    // Close() runs while the workers enter and leave; run() returns once it has completed (the
    // coroutine keeps the io_context busy until then), so a lost wake-up hangs here.
    io.run();
    for (std::thread& w : workers) w.join();
    ASSERT_TRUE(*done) << "round " << round;
    EXPECT_EQ(gate.inside(), 0);
    EXPECT_FALSE(gate.TryEnter());
  }
}

TEST(GateHolderTest, MovesOwnershipAndLeavesOnce) {
  Gate gate;
  GateHolder a(gate);
  ASSERT_TRUE(a);
  GateHolder b(std::move(a));
  EXPECT_FALSE(a.held());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_TRUE(b.held());
  EXPECT_EQ(gate.inside(), 1);
  GateHolder c;
  c = std::move(b);
  EXPECT_EQ(gate.inside(), 1);
  c = GateHolder();
  EXPECT_EQ(gate.inside(), 0);
}

}  // namespace
}  // namespace herald
