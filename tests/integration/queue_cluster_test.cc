// The queue on a Redis Cluster while its slots move: queue shards migrated from master to master
// (IMPORTING/MIGRATING, MIGRATE of every key, SETSLOT NODE) while jobs are enqueued, leased and
// acked. Nothing is lost, nothing runs twice.
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/queue/layout.h>
#include <herald/queue/queue.h>
#include <herald/queue/worker.h>
#include <herald/redis/client.h>
#include <herald/redis/cluster.h>
#include <herald/testing/redis_cluster.h>
#include <herald/testing/wait.h>

namespace herald::queue {
namespace {

namespace asio = boost::asio;
using testing::RedisCluster;

constexpr int kShards = 8;
constexpr int kTeams = 16;
constexpr int kAccountsPerTeam = 8;
constexpr int kJobsPerWave = 10000;

JobSpec Job(int n) {
  const int account = n % (kTeams * kAccountsPerTeam);
  return {.id = StrCat("job_", n),
          .kind = "send",
          .tenant = "tenant_1",
          .team = StrCat("team_", account % kTeams),
          .account = StrCat("acct_", account),
          .payload = "payload"};
}

TEST(QueueClusterTest, SlotsMovingUnderLoadLoseAndDuplicateNothing) {
  auto started = RedisCluster::Start({.replicas_per_master = 0});
  ASSERT_TRUE(started.ok()) << started.status();
  RedisCluster& cluster = **started;

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  redis::ClientConfig config;
  config.cluster = true;
  config.address = {"127.0.0.1", cluster.master_ports()[0]};
  // Scripts refused with TRYAGAIN while a shard's keys are split between two masters are retried
  // until the move ends: give them the time a move takes.
  config.command_timeout = absl::Seconds(30);
  redis::Client client(io.get_executor(), config);
  client.Start();
  std::thread io_thread([&] { io.run(); });
  Queue queue(client, {.shards = kShards});

  std::mutex mu;
  std::map<std::string, int> runs;  // job id -> handler calls
  Worker worker(io.get_executor(), queue,
                {.lease_loops = 2,
                 .batch_size = 64,
                 .lease_duration = absl::Seconds(30),
                 .heartbeat_interval = absl::Seconds(10),
                 .idle_min = absl::Milliseconds(1),
                 .idle_max = absl::Milliseconds(20)});
  worker.Handle("send", [&](const LeasedJob& job) -> asio::awaitable<JobResult> {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++runs[job.id];
    }
    co_return JobResult::Ok();
  });
  metrics::Counter& ok = worker.metrics().jobs.Add({{"kind", "send"}, {"outcome", "ok"}});

  // Enqueues jobs [first, first + kJobsPerWave) in batches, from the io thread.
  const auto enqueue_wave = [&](int first) {
    return asio::co_spawn(
        io,
        [&queue, first]() -> asio::awaitable<absl::Status> {
          for (int n = first; n < first + kJobsPerWave; n += 100) {
            std::vector<JobSpec> batch;
            for (int i = n; i < n + 100; ++i) batch.push_back(Job(i));
            absl::StatusOr<std::vector<EnqueueResult>> r =
                co_await queue.EnqueueBatch(std::move(batch));
            if (!r.ok()) co_return r.status();
            for (const EnqueueResult e : *r) {
              if (e != EnqueueResult::kEnqueued) co_return absl::InternalError("not enqueued");
            }
          }
          co_return absl::OkStatus();
        },
        asio::use_future);
  };

  ASSERT_TRUE(enqueue_wave(0).get().ok());
  worker.Start();
  // While the worker drains the first wave and a second wave is enqueued, half the shards move
  // to the next master, one after another.
  std::future<absl::Status> second = enqueue_wave(kJobsPerWave);
  const std::vector<uint16_t> masters = cluster.master_ports();
  int moved = 0;
  for (int shard = 0; shard < kShards; shard += 2) {
    const uint16_t slot = redis::cluster::KeySlot(ShardTag(shard));
    const uint16_t owner = *cluster.MasterPortOf(slot);
    const auto at = std::find(masters.begin(), masters.end(), owner);
    ASSERT_NE(at, masters.end());
    const uint16_t target = masters[static_cast<size_t>(at - masters.begin() + 1) % masters.size()];
    const absl::Status status = cluster.MoveSlot(slot, target);
    ASSERT_TRUE(status.ok()) << "shard " << shard << ": " << status;
    ASSERT_EQ(cluster.MasterPortOf(slot), target);
    ++moved;
  }
  EXPECT_EQ(moved, kShards / 2);
  // The moves happened under load: jobs were still being processed when the last one ended.
  const double done_when_moved = ok.Value();
  const absl::Status enqueued = second.get();
  ASSERT_TRUE(enqueued.ok()) << enqueued;

  constexpr int kJobs = 2 * kJobsPerWave;
  const bool all_done =
      testing::WaitFor([&] { return ok.Value() >= static_cast<double>(kJobs); }, absl::Seconds(60));
  worker.Drain(absl::Now());
  client.Stop();
  work.reset();
  io_thread.join();

  ASSERT_TRUE(all_done) << ok.Value() << " of " << kJobs << " jobs acknowledged";
  EXPECT_LT(done_when_moved, kJobs);
  EXPECT_EQ(ok.Value(), static_cast<double>(kJobs));  // no job completed twice
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(runs.size(), static_cast<size_t>(kJobs));  // none lost
  for (const auto& [id, n] : runs) EXPECT_EQ(n, 1) << id << " ran " << n << " times";
}

}  // namespace
}  // namespace herald::queue
