// The C++ queue API (queue.h) and the worker runtime (worker.h) over the real redis::Client,
// each test twice: on a single redis-server and on a six-node Redis Cluster (three masters, the
// queue's four shards spread over them). Queue tests drive time with a ManualClock; worker tests
// run on Redis' own clock and wait with WaitFor.
#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include <absl/cleanup/cleanup.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/clock.h>
#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/queue/layout.h>
#include <herald/queue/metrics.h>
#include <herald/queue/queue.h>
#include <herald/queue/worker.h>
#include <herald/redis/client.h>
#include <herald/testing/io_thread.h>
#include <herald/testing/log_capture.h>
#include <herald/testing/redis_cluster.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/wait.h>

namespace herald::queue {
namespace {

namespace asio = boost::asio;
using ::herald::testing::RedisCluster;
using ::herald::testing::RedisServer;
using ::herald::testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

enum class Backend { kSingleNode, kCluster };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kCluster ? "Cluster" : "SingleNode";
}

// One cluster for every cluster-backed test of this file (starting one takes seconds); each test
// empties it first. Destroyed (its nodes killed) when the test program exits.
absl::StatusOr<RedisCluster*> SharedCluster() {
  static absl::StatusOr<std::unique_ptr<RedisCluster>> cluster = RedisCluster::Start({});
  if (!cluster.ok()) return cluster.status();
  return cluster->get();
}

// Redis (a server or a cluster), an io_context on its own thread, a client, and a way to run
// awaitables.
class QueueApiTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    redis::ClientConfig config;
    if (GetParam() == Backend::kSingleNode) {
      auto server = RedisServer::Start();
      ASSERT_TRUE(server.ok()) << server.status();
      server_ = std::move(*server);
      config.address = {"127.0.0.1", server_->port()};
    } else {
      auto cluster = SharedCluster();
      ASSERT_TRUE(cluster.ok()) << cluster.status();
      for (const uint16_t master : (*cluster)->master_ports()) {
        ASSERT_EQ((*cluster)->Command(master, {"FLUSHALL"}).value_or(""), "OK");
      }
      config.cluster = true;
      config.address = {"127.0.0.1", (*cluster)->master_ports()[0]};
    }
    client_ = std::make_unique<redis::Client>(io_.executor(), config);
    client_->Start();
    io_.Start();
    queue_ = std::make_unique<Queue>(*client_, QueueConfig{.shards = 4}, &clock_);
  }

  void TearDown() override {
    queue_.reset();
    if (client_ != nullptr) client_->Stop();  // null when SetUp found no Redis
    io_.context().stop();
    io_.Join();
  }

  template <typename T>
  T Run(asio::awaitable<T> op) {
    return io_.Run(std::move(op));
  }

  JobSpec Spec(std::string id, std::string account = "acct_a", std::string team = "team_1") {
    return {.id = std::move(id),
            .kind = "send",
            .tenant = "tenant_1",
            .team = std::move(team),
            .account = std::move(account),
            .payload = "payload"};
  }

  LeasedJob LeaseOne(int shard, std::optional<absl::Duration> lease = std::nullopt) {
    auto batch = Run(queue_->Lease(shard, 1, lease));
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok() || batch->jobs.empty()) {
      ADD_FAILURE() << "nothing leased from shard " << shard;
      return {};
    }
    return batch->jobs[0];
  }

  int Shard(std::string_view team) const { return queue_->ShardOf(team); }

  // The stats of `team`'s shard (empty, and a failure, when they cannot be read).
  ShardStats StatsOf(std::string_view team) {
    auto s = Run(queue_->Stats(Shard(team)));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : ShardStats{};
  }

  ManualClock clock_{absl::FromUnixSeconds(1'700'000'000)};
  std::unique_ptr<RedisServer> server_;
  testing::IoThread io_;
  std::unique_ptr<redis::Client> client_;
  std::unique_ptr<Queue> queue_;
};

TEST_P(QueueApiTest, EnqueueLeaseAckKeepsEveryField) {
  JobSpec spec = Spec("job_1");
  spec.payload = std::string("\x08\x96\x01\x00\xff\n", 6);  // protobuf bytes, with a NUL
  spec.max_attempts = 7;
  auto enqueued = Run(queue_->Enqueue(spec));
  ASSERT_TRUE(enqueued.ok()) << enqueued.status();
  EXPECT_EQ(*enqueued, EnqueueResult::kEnqueued);
  EXPECT_EQ(*Run(queue_->Enqueue(spec)), EnqueueResult::kDuplicate);

  clock_.Advance(absl::Seconds(1));
  auto batch = Run(queue_->Lease(Shard("team_1"), 10, absl::Seconds(20)));
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->jobs.size(), 1u);
  const LeasedJob& job = batch->jobs[0];
  EXPECT_EQ(job.shard, Shard("team_1"));
  EXPECT_EQ(job.id, "job_1");
  EXPECT_EQ(job.payload, spec.payload);
  EXPECT_EQ(job.kind, "send");
  EXPECT_EQ(job.tenant, "tenant_1");
  EXPECT_EQ(job.team, "team_1");
  EXPECT_EQ(job.account, "acct_a");
  EXPECT_EQ(job.attempt, 1);
  EXPECT_EQ(job.max_attempts, 7);
  EXPECT_FALSE(job.previous_outcome_unknown);
  EXPECT_EQ(job.ready_at, absl::FromUnixSeconds(1'700'000'000));
  EXPECT_EQ(job.lease_expires_at, clock_.Now() + absl::Seconds(20));
  EXPECT_EQ(batch->next_due, absl::Seconds(20) + absl::Milliseconds(1));

  auto acked = Run(queue_->Ack({{job.ref()}}));
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(acked->at(0).ack, FinishResult::kDone);
  EXPECT_FALSE(acked->at(0).next.has_value());
  EXPECT_EQ(*Run(queue_->Enqueue(spec)), EnqueueResult::kDuplicate);  // completed, in window
}

TEST_P(QueueApiTest, EnqueueBatchSpansShardsAndKeepsOrder) {
  // Two teams in different shards.
  std::string other = "team_2";
  for (int i = 2; Shard(other) == Shard("team_1"); ++i) other = StrCat("team_", i);
  auto results = Run(queue_->EnqueueBatch(
      {Spec("a", "acct_a"), Spec("b", "acct_b", other), Spec("a", "acct_a"), Spec("c", "acct_c")}));
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ(*results,
            (std::vector<EnqueueResult>{EnqueueResult::kEnqueued, EnqueueResult::kEnqueued,
                                        EnqueueResult::kDuplicate, EnqueueResult::kEnqueued}));
  EXPECT_EQ(Run(queue_->Stats(Shard("team_1")))->ready, 2);
  EXPECT_EQ(Run(queue_->Stats(Shard(other)))->ready, 1);
}

// A batch bigger than max_jobs_per_enqueue_call goes to Redis in several calls per shard, and
// answers as one call would: a duplicate across calls, a job of an account registered to another
// team, every answer in request order, and each account's jobs leased in the order given.
TEST_P(QueueApiTest, EnqueueBatchSplitsLargeShardsIntoBoundedCalls) {
  queue_ = std::make_unique<Queue>(
      *client_, QueueConfig{.shards = 4, .max_jobs_per_enqueue_call = 2}, &clock_);
  std::string other = "team_2";
  for (int i = 2; Shard(other) == Shard("team_1"); ++i) other = StrCat("team_", i);
  std::string neighbour = "team_2";  // another team of team_1's shard
  for (int i = 2; Shard(neighbour) != Shard("team_1"); ++i) neighbour = StrCat("team_", i);
  ASSERT_EQ(*Run(queue_->Enqueue(Spec("x0", "acct_x", neighbour))), EnqueueResult::kEnqueued);
  auto calls = [this]() -> int64_t {
    if (server_ == nullptr) return -1;  // a cluster's calls are spread over its masters
    auto info = server_->Command({"INFO", "commandstats"});
    const size_t at = info.ok() ? info->find("cmdstat_evalsha:calls=") : std::string::npos;
    return at == std::string::npos ? 0 : std::atoll(info->c_str() + at + 22);
  };
  const int64_t calls_before = calls();

  auto results = Run(queue_->EnqueueBatch(
      {Spec("a0", "acct_a"), Spec("b0", "acct_b", other), Spec("a1", "acct_a"),
       Spec("a2", "acct_a"), Spec("a0", "acct_a"), Spec("x1", "acct_x"), Spec("a3", "acct_a")}));
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ(*results,
            (std::vector<EnqueueResult>{EnqueueResult::kEnqueued, EnqueueResult::kEnqueued,
                                        EnqueueResult::kEnqueued, EnqueueResult::kEnqueued,
                                        EnqueueResult::kDuplicate, EnqueueResult::kWrongTeam,
                                        EnqueueResult::kEnqueued}));
  if (server_ != nullptr) {
    // team_1's six jobs in three calls of two, the other team's one in one.
    EXPECT_EQ(calls() - calls_before, 4);
  }
  EXPECT_EQ(StatsOf("team_1").ready, 5);  // acct_a's four and x0
  EXPECT_EQ(StatsOf(other).ready, 1);

  auto batch = Run(queue_->Lease(Shard("team_1"), 10));
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<std::string> ids;
  for (const LeasedJob& j : batch->jobs) {
    if (j.account == "acct_a") ids.push_back(j.id);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"a0", "a1", "a2", "a3"}));
}

// One account's jobs come out together (up to jobs_per_visit per turn), and Ack takes any mix of
// lease groups, chained steps and stale tokens in one call per shard, answering in request order.
TEST_P(QueueApiTest, MultiJobVisitsAndMixedAcksKeepEveryAnswerInOrder) {
  std::vector<JobSpec> specs;
  for (int i = 0; i < 5; ++i) specs.push_back(Spec(StrCat("a", i), "acct_a"));
  for (int i = 0; i < 3; ++i) specs.push_back(Spec(StrCat("b", i), "acct_b"));
  ASSERT_TRUE(Run(queue_->EnqueueBatch(specs)).ok());
  const int shard = Shard("team_1");
  auto batch = Run(queue_->Lease(shard, 100));
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<std::string> ids;
  for (const LeasedJob& j : batch->jobs) ids.push_back(j.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2"}));

  // b1's ref carries a2's token: not its lease.
  JobRef forged = batch->jobs[6].ref();
  forged.token = batch->jobs[2].token;
  std::vector<AckRequest> acks = {{batch->jobs[5].ref(), Spec("b0_next", "acct_b")},
                                  {forged},
                                  {batch->jobs[0].ref()},
                                  {batch->jobs[2].ref(), Spec("a2_next", "acct_a")},
                                  {batch->jobs[0].ref()}};
  auto acked = Run(queue_->Ack(std::move(acks)));
  ASSERT_TRUE(acked.ok()) << acked.status();
  ASSERT_EQ(acked->size(), 5u);
  EXPECT_EQ(acked->at(0).ack, FinishResult::kDone);
  EXPECT_EQ(acked->at(0).next, EnqueueResult::kEnqueued);
  EXPECT_EQ(acked->at(1).ack, FinishResult::kFenced);
  EXPECT_EQ(acked->at(2).ack, FinishResult::kDone);
  EXPECT_EQ(acked->at(3).ack, FinishResult::kDone);
  EXPECT_EQ(acked->at(3).next, EnqueueResult::kEnqueued);
  EXPECT_EQ(acked->at(4).ack, FinishResult::kFenced);  // a0 twice: the second is stale
  const ShardStats stats = *Run(queue_->Stats(shard));
  EXPECT_EQ(stats.leased, 5);
  EXPECT_EQ(stats.ready, 2);
  EXPECT_EQ((stats.finished.at({"send", "ok"})), 3);
}

TEST_P(QueueApiTest, BadInputIsRejectedBeforeRedis) {
  JobSpec bad = Spec("");
  EXPECT_EQ(Run(queue_->Enqueue(bad)).status().code(), absl::StatusCode::kInvalidArgument);
  bad = Spec("x");
  bad.max_attempts = 0;
  EXPECT_THAT(std::string(Run(queue_->Enqueue(bad)).status().message()), HasSubstr("max_attempts"));
  EXPECT_EQ(Run(queue_->Lease(99, 1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ValidateQueueConfig({.jobs_per_visit = 0}).message()),
              HasSubstr("jobs_per_visit"));
  EXPECT_THAT(std::string(ValidateQueueConfig({.max_jobs_per_enqueue_call = 0}).message()),
              HasSubstr("max_jobs_per_enqueue_call"));
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("y"))).ok());
  JobSpec moved = Spec("z", "acct_a", "team_9");
  if (Shard("team_9") == Shard("team_1")) {
    EXPECT_EQ(Run(queue_->Enqueue(moved)).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(Run(queue_->SetAccountLimits("acct_a", {.team = "team_1", .per_minute = -5})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(QueueApiTest, AnAccountChangesTeamOnlyWhenMoved) {
  ASSERT_TRUE(Run(queue_->SetAccountLimits("acct_a", {.tenant = "t", .team = "team_1"})).ok());
  // Find another team in the same shard, so the script (not the routing) must refuse it.
  std::string same_shard;
  for (int i = 2; same_shard.empty(); ++i) {
    if (Shard(StrCat("team_", i)) == Shard("team_1")) same_shard = StrCat("team_", i);
  }
  const absl::Status s =
      Run(queue_->SetAccountLimits("acct_a", {.tenant = "t", .team = same_shard}));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(Run(queue_->Enqueue(Spec("j", "acct_a", same_shard))).status().code(),
            absl::StatusCode::kFailedPrecondition);

  // Moved (deleted and created again under the other team): its jobs go with the new team,
  // and the old team's are refused.
  ASSERT_TRUE(
      Run(queue_->SetAccountLimits("acct_a", {.tenant = "t", .team = same_shard, .move = true}))
          .ok());
  EXPECT_TRUE(Run(queue_->Enqueue(Spec("j", "acct_a", same_shard))).ok());
  EXPECT_EQ(Run(queue_->Enqueue(Spec("k", "acct_a", "team_1"))).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const LeasedJob leased = LeaseOne(Shard(same_shard), absl::Seconds(5));
  EXPECT_EQ(leased.id, "j");
}

TEST_P(QueueApiTest, FencingExpiredWorkerCannotAckItsSuccessorCan) {
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("j1"))).ok());
  const int shard = Shard("team_1");
  const LeasedJob first = LeaseOne(shard, absl::Seconds(5));
  clock_.Advance(absl::Seconds(6));
  const LeasedJob second = LeaseOne(shard, absl::Seconds(5));
  EXPECT_EQ(second.id, "j1");
  EXPECT_TRUE(second.previous_outcome_unknown);
  EXPECT_EQ(second.attempt, 2);

  EXPECT_EQ(Run(queue_->Ack({{first.ref()}}))->at(0).ack, FinishResult::kFenced);
  EXPECT_EQ(*Run(queue_->Release(first.ref())), NackResult::kFenced);
  EXPECT_FALSE(Run(queue_->Heartbeat({first.ref()}))->at(0).has_value());
  EXPECT_EQ(Run(queue_->Ack({{second.ref()}}))->at(0).ack, FinishResult::kDone);
}

TEST_P(QueueApiTest, CrashedWorkersJobIsReapedAndFlaggedOutcomeUnknown) {
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("j1"))).ok());
  const int shard = Shard("team_1");
  (void)LeaseOne(shard, absl::Seconds(2));  // the worker holding it vanishes
  clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(*Run(queue_->Reap(shard)), 1);
  const LeasedJob again = LeaseOne(shard);
  EXPECT_EQ(again.id, "j1");
  EXPECT_TRUE(again.previous_outcome_unknown);
  auto stats = Run(queue_->Stats(shard));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((stats->finished[{"send", "expired"}]), 1);
}

TEST_P(QueueApiTest, RetryUsesFullJitterBackoffThenDeadLetters) {
  queue_ = std::make_unique<Queue>(
      *client_,
      QueueConfig{.shards = 4, .backoff = {.base = absl::Seconds(10), .cap = absl::Seconds(10)}},
      &clock_);
  JobSpec spec = Spec("j1");
  spec.max_attempts = 2;
  ASSERT_TRUE(Run(queue_->Enqueue(spec)).ok());
  const int shard = Shard("team_1");
  const LeasedJob first = LeaseOne(shard);
  EXPECT_EQ(*Run(queue_->Retry(first, "upstream 503")), NackResult::kRetryScheduled);
  // Due somewhere in [now, now + 10s]: certainly by 10s.
  clock_.Advance(absl::Seconds(10));
  const LeasedJob second = LeaseOne(shard);
  EXPECT_EQ(second.attempt, 2);
  EXPECT_EQ(*Run(queue_->Retry(second, "upstream 503")), NackResult::kDead);

  ASSERT_TRUE(Run(queue_->Enqueue(Spec("j2"))).ok());
  EXPECT_EQ(*Run(queue_->DeadLetter(LeaseOne(shard).ref(), "400: price too low")),
            NackResult::kDead);
  auto dead = Run(queue_->ListDead(shard, 0, 10));
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_EQ(dead->total, 2);
  ASSERT_EQ(dead->jobs.size(), 2u);
  std::map<std::string, std::string> reasons;
  for (const auto& d : dead->jobs) {
    reasons[d.id] = d.reason;
    EXPECT_EQ(d.died_at, clock_.Now());
    EXPECT_EQ(d.payload, "payload");
  }
  EXPECT_THAT(reasons["j1"], HasSubstr("upstream 503 (attempt 2 of 2)"));
  EXPECT_EQ(reasons["j2"], "400: price too low");
}

TEST_P(QueueApiTest, RateLimitedPushesTheTeamBackWithoutLosingAnAttempt) {
  ASSERT_TRUE(Run(queue_->SetTeamLimits("team_1", {.per_minute = 600, .burst = 5})).ok());
  ASSERT_TRUE(Run(queue_->EnqueueBatch({Spec("j1", "acct_a"), Spec("j2", "acct_b")})).ok());
  const int shard = Shard("team_1");
  const LeasedJob job = LeaseOne(shard);
  EXPECT_EQ(*Run(queue_->RateLimited(job.ref(), absl::Seconds(30))), NackResult::kReturned);
  auto blocked = Run(queue_->Lease(shard, 10));
  ASSERT_TRUE(blocked.ok());
  EXPECT_TRUE(blocked->jobs.empty());
  EXPECT_EQ(blocked->throttled_by_team, 1);
  clock_.Advance(absl::Seconds(30));
  const LeasedJob again = LeaseOne(shard);
  EXPECT_EQ(again.id, "j1");
  EXPECT_EQ(again.attempt, 1);
}

// A team's new limits do not cut short the wait an upstream 429 asked for.
TEST_P(QueueApiTest, ATeamsRetryAfterOutlastsAChangeOfItsLimits) {
  ASSERT_TRUE(Run(queue_->SetTeamLimits("team_1", {.per_minute = 1000, .burst = 16})).ok());
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("j1"))).ok());
  const LeasedJob job = LeaseOne(Shard("team_1"));
  EXPECT_EQ(*Run(queue_->RateLimited(job.ref(), absl::Seconds(45))), NackResult::kReturned);
  ASSERT_TRUE(Run(queue_->SetTeamLimits("team_1", {.per_minute = 800, .burst = 13})).ok());
  EXPECT_GE(*Run(queue_->TakeToken("team_1", "")), absl::Seconds(44));
  clock_.Advance(absl::Seconds(45));
  // Past the Retry-After, the new limits alone apply.
  ASSERT_TRUE(Run(queue_->SetTeamLimits("team_1", {.per_minute = 600, .burst = 10})).ok());
  EXPECT_EQ(*Run(queue_->TakeToken("team_1", "")), absl::ZeroDuration());
}

TEST_P(QueueApiTest, LimitsPausesAndInFlightCapsTakeEffectAtRunTime) {
  const int shard = Shard("team_1");
  ASSERT_TRUE(Run(queue_->SetAccountLimits(
                      "acct_a", {.tenant = "tenant_1", .team = "team_1", .max_in_flight = 1}))
                  .ok());
  ASSERT_TRUE(Run(queue_->EnqueueBatch({Spec("j1"), Spec("j2")})).ok());
  const LeasedJob j1 = LeaseOne(shard);
  EXPECT_TRUE(Run(queue_->Lease(shard, 10))->jobs.empty());  // at its cap
  ASSERT_TRUE(Run(queue_->PauseAccount("team_1", "acct_a")).ok());
  ASSERT_EQ(Run(queue_->Ack({{j1.ref()}}))->at(0).ack, FinishResult::kDone);
  EXPECT_TRUE(Run(queue_->Lease(shard, 10))->jobs.empty());  // paused
  ASSERT_TRUE(Run(queue_->ResumeAccount("team_1", "acct_a")).ok());
  const LeasedJob j2 = LeaseOne(shard);
  EXPECT_EQ(j2.id, "j2");

  ASSERT_TRUE(Run(queue_->Enqueue(Spec("j3"))).ok());
  ASSERT_TRUE(Run(queue_->Ack({{j2.ref()}})).ok());
  ASSERT_TRUE(Run(queue_->PauseTeam("team_1")).ok());
  EXPECT_TRUE(Run(queue_->Lease(shard, 10))->jobs.empty());
  ASSERT_TRUE(Run(queue_->ResumeTeam("team_1")).ok());
  EXPECT_EQ(LeaseOne(shard).id, "j3");
}

// A pause, a limit or a weight is acknowledged to an API caller: with --redis_wait_replicas it
// waits for the replicas as enqueues do. Without one the call fails UNAVAILABLE (applied on the
// primary all the same), where a lease, which the lease timeout recovers, needs none, nor a
// token take or a push-back, which lose at most a token.
// On the single server, which has no replica.
class QueueApiSingleNodeTest : public QueueApiTest {};

TEST_P(QueueApiSingleNodeTest, SettingsWaitForTheReplicasAsEnqueuesDo) {
  redis::Client waiting(io_.executor(),
                        redis::ClientConfig{.address = {"127.0.0.1", server_->port()},
                                            .wait_replicas = 1,
                                            .wait_timeout = absl::Milliseconds(20)});
  waiting.Start();
  Queue replicated(waiting, QueueConfig{.shards = 4}, &clock_);
  const absl::Status paused = Run(replicated.PauseTeam("team_1"));
  EXPECT_EQ(paused.code(), absl::StatusCode::kUnavailable) << paused;
  const absl::Status limited =
      Run(replicated.SetTeamLimits("team_1", {.per_minute = 60, .burst = 2}));
  EXPECT_EQ(limited.code(), absl::StatusCode::kUnavailable) << limited;
  EXPECT_TRUE(Run(replicated.Lease(Shard("team_1"), 1)).ok());
  // A token take (every paced call's) and a push-back (a 429's) need none either.
  ASSERT_TRUE(Run(queue_->SetTeamLimits("team_2", {.per_minute = 600, .burst = 10})).ok());
  ASSERT_TRUE(Run(queue_->SetAccountLimits(
                      "acct_b", {.tenant = "tenant_1", .team = "team_2", .per_minute = 60}))
                  .ok());
  EXPECT_TRUE(Run(replicated.TakeToken("team_2", "acct_b")).ok());
  EXPECT_TRUE(Run(replicated.PushBackTeam("team_2", absl::Seconds(1))).ok());

  ASSERT_TRUE(Run(queue_->Enqueue(Spec("j1"))).ok());
  EXPECT_TRUE(Run(queue_->Lease(Shard("team_1"), 10))->jobs.empty()) << "the pause was applied";
  waiting.Stop();
}

TEST_P(QueueApiTest, TokensTakenOutsideJobsCountAgainstTheSameLimits) {
  const int shard = Shard("team_1");
  ASSERT_TRUE(Run(queue_->SetTeamLimits("team_1", {.per_minute = 60, .burst = 2})).ok());
  ASSERT_TRUE(
      Run(queue_->SetAccountLimits(
              "acct_a", {.tenant = "tenant_1", .team = "team_1", .per_minute = 600, .burst = 10}))
          .ok());
  // The team's burst of two, taken outside any job: a third waits a team interval (1 s).
  EXPECT_EQ(*Run(queue_->TakeToken("team_1", "acct_a")), absl::ZeroDuration());
  EXPECT_EQ(*Run(queue_->TakeToken("team_1", "")), absl::ZeroDuration());
  EXPECT_EQ(*Run(queue_->TakeToken("team_1", "acct_a")), absl::Seconds(1));
  // ...and a job waits for it too: the limits count both kinds of call.
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("j1"))).ok());
  auto blocked = Run(queue_->Lease(shard, 10));
  ASSERT_TRUE(blocked.ok());
  EXPECT_TRUE(blocked->jobs.empty());
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(LeaseOne(shard).id, "j1");
  EXPECT_EQ(*Run(queue_->TakeToken("team_1", "acct_a")), absl::Seconds(1));

  // An upstream 429 met outside a job holds the team back as a job's would.
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(Run(queue_->PushBackTeam("team_1", absl::Seconds(30))).ok());
  EXPECT_EQ(*Run(queue_->TakeToken("team_1", "")), absl::Seconds(30));
  // Setting the same limits again (the team renamed, say) keeps it held back.
  ASSERT_TRUE(Run(queue_->SetTeamLimits("team_1", {.per_minute = 60, .burst = 2})).ok());
  EXPECT_EQ(*Run(queue_->TakeToken("team_1", "")), absl::Seconds(30));

  ASSERT_TRUE(Run(queue_->PauseAccount("team_1", "acct_a")).ok());
  EXPECT_EQ(Run(queue_->TakeToken("team_1", "acct_a")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Run(queue_->TakeToken("team_1", "acct_zz")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Run(queue_->TakeToken("team_nope", "")).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(QueueApiTest, HeartbeatExtendsALongCall) {
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("j1"))).ok());
  const int shard = Shard("team_1");
  const LeasedJob job = LeaseOne(shard, absl::Seconds(10));
  clock_.Advance(absl::Seconds(8));
  auto extended = Run(queue_->Heartbeat({job.ref()}, absl::Seconds(10)));
  ASSERT_TRUE(extended.ok());
  EXPECT_EQ(extended->at(0), clock_.Now() + absl::Seconds(10));
  clock_.Advance(absl::Seconds(8));  // 16s after the lease: alive thanks to the heartbeat
  EXPECT_EQ(*Run(queue_->Reap(shard)), 0);
  EXPECT_EQ(Run(queue_->Ack({{job.ref()}}))->at(0).ack, FinishResult::kDone);
}

TEST_P(QueueApiTest, AckAndEnqueueChainsAtomically) {
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("campaign_1:acct_a:upload"))).ok());
  const int shard = Shard("team_1");
  const LeasedJob upload = LeaseOne(shard);
  auto chained = Run(queue_->AckAndEnqueue(upload.ref(), Spec("campaign_1:acct_a:send")));
  ASSERT_TRUE(chained.ok()) << chained.status();
  EXPECT_EQ(chained->ack, FinishResult::kDone);
  EXPECT_EQ(chained->next, EnqueueResult::kEnqueued);
  // A replay by a stale worker neither acks nor forks the chain.
  auto replay = Run(queue_->AckAndEnqueue(upload.ref(), Spec("campaign_1:acct_a:send_again")));
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->ack, FinishResult::kFenced);
  EXPECT_FALSE(replay->next.has_value());
  EXPECT_EQ(LeaseOne(shard).id, "campaign_1:acct_a:send");
  EXPECT_TRUE(Run(queue_->Lease(shard, 10))->jobs.empty());

  std::string other = "team_2";
  for (int i = 2; Shard(other) == shard; ++i) other = StrCat("team_", i);
  EXPECT_EQ(Run(queue_->AckAndEnqueue(upload.ref(), Spec("x", "acct_z", other))).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(QueueApiTest, StatsPollerExportsDepthsAgesAndOutcomes) {
  const int shard = Shard("team_1");
  ASSERT_TRUE(Run(queue_->EnqueueBatch({Spec("j1"), Spec("j2"), Spec("j3")})).ok());
  JobSpec later = Spec("j4");
  later.delay = absl::Minutes(5);
  ASSERT_TRUE(Run(queue_->Enqueue(later)).ok());
  clock_.Advance(absl::Seconds(42));
  ASSERT_TRUE(Run(queue_->Ack({{LeaseOne(shard).ref()}})).ok());

  metrics::Registry registry;
  QueueMetrics metrics(registry);
  StatsPoller poller(io_.executor(), *queue_, metrics);
  poller.ExpectKinds({"upload"});
  ASSERT_TRUE(Run(poller.PollOnce()).ok());
  const std::string s = StrCat(shard);
  EXPECT_EQ(metrics.jobs.Add({{"shard", s}, {"state", "ready"}}).Value(), 2);
  EXPECT_EQ(metrics.jobs.Add({{"shard", s}, {"state", "delayed"}}).Value(), 1);
  EXPECT_EQ(metrics.oldest_ready_age.Add({{"shard", s}}).Value(), 42);
  // What Redis counted before the first poll is where the counters start; every outcome of
  // every kind seen or expected is exported from then on, at 0 until it happens (so that its
  // first occurrence is an increase).
  const std::string first = registry.Serialize();
  EXPECT_THAT(first, HasSubstr(R"(herald_queue_finished_jobs_total{kind="send",outcome="ok"} 0)"));
  EXPECT_THAT(first,
              HasSubstr(R"(herald_queue_finished_jobs_total{kind="upload",outcome="dead"} 0)"));
  EXPECT_THAT(first, HasSubstr(R"(herald_queue_enqueued_jobs_total{kind="send"} 0)"));
  // Later polls add what is new.
  ASSERT_TRUE(Run(queue_->Ack({{LeaseOne(shard).ref()}})).ok());
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("j5"))).ok());
  ASSERT_TRUE(Run(poller.PollOnce()).ok());
  EXPECT_EQ(metrics.finished.Add({{"kind", "send"}, {"outcome", "ok"}}).Value(), 1);
  EXPECT_EQ(metrics.enqueued.Add({{"kind", "send"}}).Value(), 1);
  EXPECT_THAT(registry.Serialize(),
              HasSubstr("herald_queue_jobs{shard=\"" + s + "\",state=\"leased\"} 0"));
}

// A dead letter its owner cannot take yet (its store is unavailable) goes back for a later
// poll; the poll itself read the statistics, so it succeeds and the counters move.
TEST_P(QueueApiTest, AFailedDeadLetterHandOffIsNotAFailedPoll) {
  const int shard = Shard("team_1");
  metrics::Registry registry;
  QueueMetrics metrics(registry);
  StatsPoller poller(io_.executor(), *queue_, metrics);
  int offered = 0;
  bool accept = false;
  poller.HandDeadLettersTo([&](const DeadJob&) -> asio::awaitable<absl::Status> {
    ++offered;
    co_return accept ? absl::OkStatus() : absl::UnavailableError("redis: slot migrating");
  });
  poller.ExpectKinds({"send"});
  ASSERT_TRUE(Run(poller.PollOnce()).ok());  // the counters' baseline
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("j1"))).ok());
  ASSERT_TRUE(Run(queue_->DeadLetter(LeaseOne(shard).ref(), "400: price too low")).ok());

  EXPECT_TRUE(Run(poller.PollOnce()).ok());
  EXPECT_EQ(offered, 1);
  EXPECT_EQ(metrics.finished.Add({{"kind", "send"}, {"outcome", "dead"}}).Value(), 1);
  accept = true;
  EXPECT_TRUE(Run(poller.PollOnce()).ok());
  EXPECT_EQ(offered, 2);  // given back, and offered again
  EXPECT_EQ(metrics.finished.Add({{"kind", "send"}, {"outcome", "dead"}}).Value(), 1);
  EXPECT_TRUE(Run(poller.PollOnce()).ok());
  EXPECT_EQ(offered, 2);
}

TEST_P(QueueApiTest, StatsPollerCloseEndsItsLoopWithoutWaitingOutTheInterval) {
  ASSERT_TRUE(Run(queue_->EnqueueBatch({Spec("j1")})).ok());
  metrics::Registry registry;
  QueueMetrics metrics(registry);
  // A long interval: the loop is waiting on its timer when Close() comes, and must not wait it
  // out (Run() would not return for an hour).
  StatsPoller poller(io_.executor(), *queue_, metrics, absl::Hours(1));
  poller.Start();
  const std::string s = StrCat(Shard("team_1"));
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return metrics.jobs.Add({{"shard", s}, {"state", "ready"}}).Value() == 1;
      },
      absl::Seconds(10)));
  Run(poller.Close());
  Run(poller.Close());  // idempotent
  // PollOnce still works on demand.
  ASSERT_TRUE(Run(queue_->EnqueueBatch({Spec("j2")})).ok());
  ASSERT_TRUE(Run(poller.PollOnce()).ok());
  EXPECT_EQ(metrics.jobs.Add({{"shard", s}, {"state", "ready"}}).Value(), 2);
}

TEST_P(QueueApiTest, ProductionModeUsesRedisTime) {
  Queue queue(*client_, QueueConfig{.shards = 4});  // no clock: scripts read TIME
  const absl::Time before = absl::Now();
  ASSERT_TRUE(Run(queue.Enqueue(Spec("j1"))).ok());
  auto batch = Run(queue.Lease(queue.ShardOf("team_1"), 5, absl::Seconds(30)));
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->jobs.size(), 1u);
  EXPECT_GE(batch->jobs[0].lease_expires_at, before + absl::Seconds(29));
  EXPECT_LE(batch->jobs[0].lease_expires_at, absl::Now() + absl::Seconds(31));
}

// ---- the worker runtime (Redis' clock, real time)

class WorkerTest : public QueueApiTest {
 protected:
  void SetUp() override {
    QueueApiTest::SetUp();
    if (HasFatalFailure()) return;  // no Redis to queue on
    queue_ = std::make_unique<Queue>(
        *client_,
        QueueConfig{.shards = 4,
                    .backoff = {.base = absl::Milliseconds(10), .cap = absl::Milliseconds(20)}});
  }

  WorkerConfig FastConfig() {
    return {.lease_loops = 2,
            .batch_size = 8,
            .lease_duration = absl::Seconds(5),
            .heartbeat_interval = absl::Seconds(1),
            .idle_min = absl::Milliseconds(1),
            .idle_max = absl::Milliseconds(20)};
  }
};

TEST_P(WorkerTest, ProcessesEveryJobOnceAndFollowsChains) {
  std::mutex mu;
  std::multiset<std::string> seen;
  Worker worker(io_.executor(), *queue_, FastConfig());
  worker.Handle("send", [&](const LeasedJob& job) -> asio::awaitable<JobResult> {
    {
      std::lock_guard lock(mu);
      seen.insert(job.id);
    }
    if (job.id.ends_with(":1")) {
      JobSpec next{.id = job.id.substr(0, job.id.size() - 2) + ":2",
                   .kind = "send",
                   .tenant = job.tenant,
                   .team = job.team,
                   .account = job.account};
      co_return JobResult::OkThen(std::move(next));
    }
    co_return JobResult::Ok();
  });
  std::vector<JobSpec> jobs;
  for (int i = 0; i < 200; ++i) {
    jobs.push_back(
        Spec(StrCat("c", i, ":1"), StrCat("acct_", i % 13), StrCat("team_", i % 13 % 5)));
  }
  ASSERT_TRUE(Run(queue_->EnqueueBatch(jobs)).ok());
  worker.Start();
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return seen.size() >= 400;
  }));
  worker.Drain(absl::Now() + absl::Seconds(5));
  EXPECT_EQ(seen.size(), 400u);
  for (const auto& id : seen) EXPECT_EQ(seen.count(id), 1u) << id;
  int64_t left = 0;
  for (int s = 0; s < 4; ++s) {
    auto st = Run(queue_->Stats(s));
    left += st->ready + st->leased + st->delayed;
  }
  EXPECT_EQ(left, 0);
  EXPECT_EQ(worker.metrics().jobs.Add({{"kind", "send"}, {"outcome", "ok"}}).Value(), 400);
}

TEST_P(WorkerTest, FailuresRetryThenDeadLetter) {
  Worker worker(io_.executor(), *queue_, FastConfig());
  worker.Handle("send", [](const LeasedJob& job) -> asio::awaitable<JobResult> {
    if (job.id == "terminal") co_return JobResult::Fail("400 invalid price");
    co_return JobResult::Retry("503");
  });
  JobSpec flaky = Spec("flaky");
  flaky.max_attempts = 3;
  ASSERT_TRUE(Run(queue_->EnqueueBatch({flaky, Spec("terminal", "acct_b")})).ok());
  worker.Start();
  ASSERT_TRUE(WaitFor([&] { return StatsOf("team_1").dead == 2; }));
  worker.Drain(absl::Now());
  auto dead = Run(queue_->ListDead(Shard("team_1"), 0, 10));
  ASSERT_TRUE(dead.ok());
  std::map<std::string, DeadJob> by_id;
  for (auto& d : dead->jobs) by_id[d.id] = d;
  EXPECT_EQ(by_id["flaky"].attempts, 3);
  EXPECT_THAT(by_id["flaky"].reason, HasSubstr("503 (attempt 3 of 3)"));
  EXPECT_EQ(by_id["terminal"].attempts, 1);
  EXPECT_EQ(by_id["terminal"].reason, "400 invalid price");
  EXPECT_EQ(worker.metrics().jobs.Add({{"kind", "send"}, {"outcome", "retry"}}).Value(), 2);
}

TEST_P(WorkerTest, AThrowingHandlerFailsItsJobNotTheLoop) {
  WorkerConfig config = FastConfig();
  config.lease_loops = 1;  // one loop: if it died, nothing after the throws would run
  config.batch_size = 1;
  Worker worker(io_.executor(), *queue_, config);
  std::mutex mu;
  std::vector<std::string> ran;
  worker.Handle("send", [&](const LeasedJob& job) -> asio::awaitable<JobResult> {
    {
      std::lock_guard lock(mu);
      ran.push_back(job.id);
    }
    if (job.id == "throws") throw std::runtime_error("handler bug");
    if (job.id == "throws_int") throw 7;  // not a std::exception
    co_return JobResult::Ok();
  });
  // Not a coroutine: throws before there is an awaitable.
  worker.Handle("eager", [](const LeasedJob&) -> asio::awaitable<JobResult> {
    throw std::logic_error("eager bug");
  });
  std::vector<JobSpec> jobs;
  for (std::string id : {"throws", "throws_int"}) {
    jobs.push_back(Spec(id));
    jobs.back().max_attempts = 1;
  }
  jobs.push_back(Spec("eager"));
  jobs.back().kind = "eager";
  jobs.back().max_attempts = 1;
  for (int i = 0; i < 5; ++i) jobs.push_back(Spec(StrCat("later_", i)));
  ASSERT_TRUE(Run(queue_->EnqueueBatch(jobs)).ok());
  worker.Start();
  ASSERT_TRUE(WaitFor([&] {
    ShardStats s = StatsOf("team_1");
    return s.dead == 3 && s.finished[{"send", "ok"}] == 5;
  }));
  worker.Drain(absl::Now() + absl::Seconds(5));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(ran.size(), 7u);  // every send job, each once (the eager handler never returned)
    for (int i = 0; i < 5; ++i)
      EXPECT_EQ(std::count(ran.begin(), ran.end(), StrCat("later_", i)), 1);
  }
  auto dead = Run(queue_->ListDead(Shard("team_1"), 0, 10));
  ASSERT_TRUE(dead.ok()) << dead.status();
  std::map<std::string, std::string> reasons;
  for (const DeadJob& d : dead->jobs) reasons[d.id] = d.reason;
  EXPECT_THAT(reasons["throws"], HasSubstr("handler threw: handler bug"));
  EXPECT_THAT(reasons["throws_int"], HasSubstr("exception"));
  EXPECT_THAT(reasons["eager"], HasSubstr("handler threw: eager bug"));
  EXPECT_EQ(worker.metrics().jobs.Add({{"kind", "send"}, {"outcome", "ok"}}).Value(), 5);
  EXPECT_EQ(worker.metrics().jobs.Add({{"kind", "send"}, {"outcome", "dead"}}).Value(), 2);
  EXPECT_EQ(worker.metrics().jobs.Add({{"kind", "eager"}, {"outcome", "dead"}}).Value(), 1);
  // The handlers' exceptions never reached the loop.
  EXPECT_EQ(worker.metrics().loop_restarts.Value(), 0);
}

// ---- the worker runtime on the test's ManualClock (the queue's too): no test waits out time

// A job whose previous outcome is unknown and that is put back without trying (here released,
// as a handler does when its team is paused) keeps the flag: its next attempt reconciles too.
TEST_P(WorkerTest, AnUnknownOutcomeOutlivesAnAttemptThatDidNotTry) {
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("send_1"))).ok());
  // Its first lease ends unanswered (the worker holding it vanished); the worker's lease reaps it.
  (void)LeaseOne(Shard("team_1"), absl::Milliseconds(50));
  Worker worker(io_.executor(), *queue_, FastConfig());
  std::mutex mu;
  std::vector<bool> unknown;
  worker.Handle("send", [&](const LeasedJob& job) -> asio::awaitable<JobResult> {
    size_t run = 0;
    {
      std::lock_guard lock(mu);
      unknown.push_back(job.previous_outcome_unknown);
      run = unknown.size();
    }
    if (run == 1) co_return JobResult::Release();
    co_return JobResult::Ok();
  });
  worker.Start();
  ASSERT_TRUE(WaitFor([&] { return StatsOf("team_1").finished[{"send", "ok"}] == 1; }));
  worker.Drain(absl::Now());
  std::lock_guard lock(mu);
  EXPECT_THAT(unknown, ElementsAre(true, true));
}

class ManualClockWorkerTest : public QueueApiTest {
 protected:
  WorkerConfig Config() {
    return {.lease_loops = 1,
            .batch_size = 8,
            .lease_duration = absl::Seconds(30),
            .heartbeat_interval = absl::Seconds(10),
            .idle_min = absl::Milliseconds(10),
            .idle_max = absl::Milliseconds(100)};
  }
  // Moves the clock by `d` once the worker waits on `timers` timers of it, and returns once it
  // waits on them again (it has done what the new time called for).
  void AdvanceWhenWaiting(absl::Duration d, int timers) {
    ASSERT_TRUE(WaitFor([&] { return clock_.pending_timers() == timers; }));
    clock_.Advance(d);
    ASSERT_TRUE(WaitFor([&] { return clock_.pending_timers() == timers; }));
  }
};

TEST_P(ManualClockWorkerTest, HeartbeatsKeepALongJobLeased) {
  Worker worker(io_.executor(), *queue_, Config(), nullptr, clock_);
  std::atomic<int> runs{0};
  worker.Handle("send", [&](const LeasedJob&) -> asio::awaitable<JobResult> {
    ++runs;
    co_await clock_.SleepFor(absl::Minutes(2));  // four lease durations
    co_return JobResult::Ok();
  });
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("long"))).ok());
  worker.Start();
  ASSERT_TRUE(WaitFor([&] { return runs.load() == 1; }));
  // Two minutes in heartbeat steps. The worker waits on the job's sleep, its batch's next
  // heartbeat and the loop's idle pause (the job leaves it room to lease more).
  for (int i = 0; i < 11; ++i) AdvanceWhenWaiting(absl::Seconds(10), 3);
  ASSERT_TRUE(WaitFor([&] { return clock_.pending_timers() == 3; }));
  clock_.Advance(absl::Seconds(10));  // the job's two minutes are up
  ASSERT_TRUE(WaitFor([&] { return StatsOf("team_1").finished[{"send", "ok"}] == 1; }));
  worker.Drain(clock_.Now());
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ((StatsOf("team_1").finished[{"send", "expired"}]), 0);
  EXPECT_EQ(worker.metrics().jobs.Add({{"kind", "send"}, {"outcome", "fenced"}}).Value(), 0);
}

// A 429 that comes as the drain cancels its job is kept: the team waits out its Retry-After
// rather than the job going back as if its call's outcome were unknown.
TEST_P(ManualClockWorkerTest, ARateLimitMetAtTheDrainDeadlineHoldsTheTeamBack) {
  ASSERT_TRUE(Run(queue_->SetTeamLimits("team_1", {.per_minute = 600, .burst = 10})).ok());
  Worker worker(io_.executor(), *queue_, Config(), nullptr, clock_);
  worker.Handle("send", [&](const LeasedJob&) -> asio::awaitable<JobResult> {
    co_await clock_.SleepFor(absl::Hours(1));  // until the drain cancels it
    co_return JobResult::RateLimited(absl::Seconds(60));
  });
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("send_1"))).ok());
  worker.Start();
  ASSERT_TRUE(WaitFor([&] { return worker.in_flight() == 1; }));
  worker.Drain(clock_.Now());
  EXPECT_EQ((StatsOf("team_1").finished[{"send", "rate_limited"}]), 1);
  EXPECT_GE(*Run(queue_->TakeToken("team_1", "")), absl::Seconds(59));
}

// A job's next step is leased as soon as the job is acked with it: the loop does not wait out an
// idle pause for work it enqueued itself. The clock stands still, so no pause ever ends.
TEST_P(ManualClockWorkerTest, ANextStepRunsWithoutWaitingOutAnIdlePause) {
  Worker worker(io_.executor(), *queue_, Config(), nullptr, clock_);
  std::mutex mu;
  std::vector<std::string> ran;
  worker.Handle("send", [&](const LeasedJob& job) -> asio::awaitable<JobResult> {
    {
      std::lock_guard lock(mu);
      ran.push_back(job.id);
    }
    const int step = job.id.back() - '0';
    if (step < 4) co_return JobResult::OkThen(Spec(StrCat("chain_", step + 1)));
    co_return JobResult::Ok();
  });
  ASSERT_TRUE(Run(queue_->Enqueue(Spec("chain_1"))).ok());
  worker.Start();
  ASSERT_TRUE(WaitFor([&] { return StatsOf("team_1").finished[{"send", "ok"}] == 4; }));
  worker.Drain(clock_.Now());
  std::lock_guard lock(mu);
  EXPECT_THAT(ran, ElementsAre("chain_1", "chain_2", "chain_3", "chain_4"));
}

// A job whose call hangs holds its own place in its loop and nothing else: the jobs leased with
// it are acked as they end, and the loop goes on leasing. The clock stands still, so the slow
// job never ends while the others run.
TEST_P(ManualClockWorkerTest, ASlowJobHoldsItsOwnPlaceOnly) {
  WorkerConfig config = Config();
  config.batch_size = 2;  // one loop, two places: the slow job holds one
  Worker worker(io_.executor(), *queue_, config, nullptr, clock_);
  std::atomic<int> quick{0};
  worker.Handle("send", [&](const LeasedJob& job) -> asio::awaitable<JobResult> {
    if (job.id == "slow") {
      if (!co_await clock_.SleepFor(absl::Hours(1))) co_return JobResult::Retry("cancelled");
      co_return JobResult::Ok();
    }
    ++quick;
    co_return JobResult::Ok();
  });
  ASSERT_TRUE(
      Run(queue_->EnqueueBatch({Spec("slow", "acct_slow"), Spec("quick_0", "acct_0")})).ok());
  worker.Start();
  // The job leased with the slow one waits finish_linger for it, then is acked without it.
  ASSERT_TRUE(WaitFor([&] { return worker.in_flight() == 1 && quick.load() == 1; }));
  clock_.Advance(config.finish_linger);
  ASSERT_TRUE(WaitFor([&] { return StatsOf("team_1").finished[{"send", "ok"}] == 1; }));
  ASSERT_EQ(worker.in_flight(), 1);
  // Work enqueued later is leased into the free place, one job at a time.
  std::vector<JobSpec> later;
  for (int i = 1; i <= 6; ++i) later.push_back(Spec(StrCat("quick_", i), StrCat("acct_", i)));
  // The loop found nothing more and pauses: the slow job's sleep, its batch's heartbeat and the
  // idle pause. Advancing before the pause began would leave it waiting on the stopped clock.
  ASSERT_TRUE(WaitFor([&] { return clock_.pending_timers() == 3; }));
  ASSERT_TRUE(Run(queue_->EnqueueBatch(later)).ok());
  clock_.Advance(config.idle_max);  // the loop's idle pause ends; the slow job sleeps on
  ASSERT_TRUE(WaitFor([&] { return StatsOf("team_1").finished[{"send", "ok"}] == 7; }));
  EXPECT_EQ(quick.load(), 7);
  EXPECT_EQ(worker.in_flight(), 1);
  EXPECT_EQ(StatsOf("team_1").leased, 1);
  worker.Drain(clock_.Now());
  const ShardStats stats = StatsOf("team_1");
  EXPECT_EQ(stats.leased, 0);
  EXPECT_EQ(stats.ready, 1);  // the slow job, released
  EXPECT_EQ((stats.finished.at({"send", "released"})), 1);
}

TEST_P(ManualClockWorkerTest, DrainLetsQuickJobsFinishAndReleasesTheRestAtTheDeadline) {
  Worker worker(io_.executor(), *queue_, Config(), nullptr, clock_);
  std::atomic<int> finished{0};
  worker.Handle("send", [&](const LeasedJob& job) -> asio::awaitable<JobResult> {
    const absl::Duration work = job.id.starts_with("quick") ? absl::Seconds(1) : absl::Hours(1);
    // "done" ends its work as the cancel comes: it keeps its result.
    if (!co_await clock_.SleepFor(work) && !job.id.starts_with("done")) {
      co_return JobResult::Retry("cancelled");
    }
    ++finished;
    co_return JobResult::Ok();
  });
  ASSERT_TRUE(Run(queue_->EnqueueBatch({Spec("quick_1", "acct_a"), Spec("quick_2", "acct_b"),
                                        Spec("slow_1", "acct_c"), Spec("slow_2", "acct_d"),
                                        Spec("done_1", "acct_e")}))
                  .ok());
  worker.Start();
  ASSERT_TRUE(WaitFor([&] { return worker.in_flight() == 5; }));
  std::future<void> closed = io_.Spawn(worker.Close(clock_.Now() + absl::Seconds(10)));
  // Five sleeping jobs and the batch's wait for its next heartbeat or the deadline.
  ASSERT_TRUE(WaitFor([&] { return clock_.pending_timers() == 6; }));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(WaitFor([&] { return finished.load() == 2; }));
  EXPECT_EQ(closed.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "the drain ended before its deadline";
  ASSERT_TRUE(WaitFor([&] { return clock_.pending_timers() == 4; }));
  clock_.Advance(absl::Seconds(9));  // the deadline
  closed.get();
  EXPECT_EQ(finished.load(), 3);
  const ShardStats stats = StatsOf("team_1");
  EXPECT_EQ(stats.leased, 0);
  EXPECT_EQ(stats.ready, 2);  // the slow ones, released
  EXPECT_EQ((stats.finished.at({"send", "ok"})), 3);
  EXPECT_EQ((stats.finished.at({"send", "released"})), 2);
  // Released without losing an attempt, and with the next attempt told the call it was making
  // may have happened.
  auto batch = Run(queue_->Lease(Shard("team_1"), 10));
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->jobs.size(), 2u);
  for (const auto& j : batch->jobs) {
    EXPECT_TRUE(j.id.starts_with("slow")) << j.id;
    EXPECT_EQ(j.attempt, 1);
    EXPECT_TRUE(j.previous_outcome_unknown) << j.id;
  }
}

TEST_P(ManualClockWorkerTest, IdleWorkersLeaseOncePerPauseAndDoNotSpin) {
  Worker worker(io_.executor(), *queue_, Config(), nullptr, clock_);
  worker.Start();
  const auto calls = [&] {
    return worker.metrics().lease_batch_size.Collect().histogram.sample_count;
  };
  ASSERT_TRUE(WaitFor([&] { return clock_.pending_timers() == 1; }));
  const uint64_t first_round = calls();
  EXPECT_EQ(first_round, 4u) << "one lease per shard";
  // The clock stands still: an idle worker makes no call until its pause is over.
  for (int i = 0; i < 5; ++i) AdvanceWhenWaiting(absl::Milliseconds(100), 1);
  worker.Drain(clock_.Now());
  // At most a round of the four shards per pause (a shard not yet due is skipped).
  EXPECT_LE(calls(), first_round + 5 * 4);
  EXPECT_GE(calls(), first_round + 5);
}

// A worker cut off from Redis stops a job whose lease it cannot extend before the lease may
// expire: another worker that then leases the job never runs it while this one still does.
TEST(WorkerOutageTest, AJobWhoseLeaseCannotBeExtendedIsStoppedBeforeItMayExpire) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  testing::IoThread io;
  redis::Client client(io.executor(),
                       redis::ClientConfig{.address = {"127.0.0.1", (*server)->port()}});
  client.Start();
  io.Start();
  Queue queue(client, QueueConfig{.shards = 1});
  Worker worker(io.executor(), queue,
                {.lease_loops = 1,
                 .batch_size = 1,
                 .lease_duration = absl::Seconds(3),
                 .heartbeat_interval = absl::Seconds(1),
                 .idle_min = absl::Milliseconds(1),
                 .idle_max = absl::Milliseconds(5),
                 .error_backoff = absl::Milliseconds(5)});
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};
  worker.Handle("send", [&](const LeasedJob&) -> asio::awaitable<JobResult> {
    started = true;
    stopped = !co_await SystemClock::Get().SleepFor(absl::Hours(1));
    co_return JobResult::Ok();
  });
  const JobSpec spec{.id = "long_call",
                     .kind = "send",
                     .tenant = "tenant_1",
                     .team = "team_1",
                     .account = "acct_a",
                     .payload = "payload"};
  ASSERT_TRUE(io.Run(queue.Enqueue(spec)).ok());
  worker.Start();
  absl::Cleanup stop = [&] {
    worker.Drain(absl::Now());
    client.Stop();
    io.Join();
  };
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  ASSERT_TRUE((*server)->Stop(/*graceful=*/false).ok());
  // Heartbeats fail; half a heartbeat before the lease's three seconds are up, the job stops.
  EXPECT_TRUE(WaitFor([&] { return stopped.load(); }, absl::Seconds(20)));
  EXPECT_GE(worker.metrics().errors.Add({{"op", "heartbeat"}}).Value(), 1);
  EXPECT_EQ(worker.metrics().jobs.Add({{"kind", "send"}, {"outcome", "ok"}}).Value(), 0);
}

// A Redis outage while a worker runs: one line when leases start failing, one when they work
// again; the failures themselves go to metrics.
TEST(WorkerOutageTest, ARedisOutageLogsOneLineDownAndOneBack) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  testing::LogCapture logs;
  {
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    redis::Client client(io.get_executor(),
                         redis::ClientConfig{.address = {"127.0.0.1", (*server)->port()}});
    client.Start();
    std::thread thread([&] { io.run(); });
    Queue queue(client, QueueConfig{.shards = 4});
    Worker worker(io.get_executor(), queue,
                  {.lease_loops = 4,
                   .batch_size = 8,
                   .lease_duration = absl::Seconds(5),
                   .heartbeat_interval = absl::Seconds(1),
                   .idle_min = absl::Milliseconds(1),
                   .idle_max = absl::Milliseconds(5),
                   .error_backoff = absl::Milliseconds(5)});
    worker.Handle(
        "send", [](const LeasedJob&) -> asio::awaitable<JobResult> { co_return JobResult::Ok(); });
    worker.Start();
    // Also when an ASSERT below returns early: a thread still joinable at the end of the scope
    // would abort the whole test binary instead of failing this test.
    absl::Cleanup stop = [&] {
      worker.Drain(absl::Now());
      client.Stop();
      work.reset();
      thread.join();
    };
    ASSERT_TRUE((*server)->Stop(/*graceful=*/false).ok());
    // Leases fail, shard after shard and loop after loop, many times a second.
    const double before = worker.metrics().errors.Add({{"op", "lease"}}).Value();
    ASSERT_TRUE(WaitFor(
        [&] {
          return worker.metrics().errors.Add({{"op", "lease"}}).Value() >= before + 100;
        },
        absl::Seconds(20)));
    ASSERT_TRUE((*server)->Restart().ok());
    ASSERT_TRUE(
        WaitFor([&] { return logs.Count(R"("msg":"redis recovered")") >= 1; }, absl::Seconds(20)));
  }
  logs.Stop();
  EXPECT_EQ(logs.Count(R"("msg":"redis unavailable","what":"queue leases")"), 1) << logs.All();
  EXPECT_EQ(logs.Count(R"("msg":"redis recovered","what":"queue leases")"), 1) << logs.All();
  EXPECT_EQ(logs.Count("lease failed"), 0) << logs.All();
  // Everything else said about the outage: each connection's loss and failed reconnects (once
  // per reason), nothing per lease.
  EXPECT_LE(logs.size(), 12u) << logs.All();
}

INSTANTIATE_TEST_SUITE_P(Redis, QueueApiTest,
                         ::testing::Values(Backend::kSingleNode, Backend::kCluster), BackendName);
INSTANTIATE_TEST_SUITE_P(Redis, QueueApiSingleNodeTest, ::testing::Values(Backend::kSingleNode),
                         BackendName);
INSTANTIATE_TEST_SUITE_P(Redis, WorkerTest,
                         ::testing::Values(Backend::kSingleNode, Backend::kCluster), BackendName);
INSTANTIATE_TEST_SUITE_P(Redis, ManualClockWorkerTest,
                         ::testing::Values(Backend::kSingleNode, Backend::kCluster), BackendName);

}  // namespace
}  // namespace herald::queue
