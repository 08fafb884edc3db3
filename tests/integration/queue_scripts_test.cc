// The queue's Lua scripts, run directly against a real redis-server with an explicit `now`:
// fencing, crash recovery, fairness, rate limits, idempotency, durability and the rest of the
// queue's contract, independent of the C++ client.
#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/ratelimit/gcra.h>
#include <herald/testing/redis_server.h>

#include "queue_script_driver.h"

namespace herald::queue::testing {
namespace {

using ::herald::testing::RedisServer;
using ::testing::AllOf;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::SizeIs;

// ack.lua's {ack, next} for one job.
auto IsAck(FinishResult ack, std::optional<EnqueueResult> next) {
  return AllOf(::testing::Field("ack", &AckResult::ack, ack),
               ::testing::Field("next", &AckResult::next, next));
}
using ::testing::HasSubstr;

class QueueScriptsTest : public ::testing::Test {
 protected:
  void SetUp() override { Connect({}); }

  void Connect(RedisServer::Options options) {
    auto server = RedisServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto conn = SyncRedis::Connect(server_->port());
    ASSERT_TRUE(conn.ok()) << conn.status();
    conn_ = std::move(*conn);
    q_ = std::make_unique<ScriptDriver>(*conn_, "{hd:s0}");
  }

  std::string Get(std::vector<std::string> argv) {
    auto r = server_->Command(argv);
    return r.ok() ? *r : r.status().ToString();
  }

  static TestJob Job(std::string id, std::string account = "acct_a") {
    return {.id = std::move(id), .account = std::move(account)};
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<SyncRedis> conn_;
  std::unique_ptr<ScriptDriver> q_;
};

TEST_F(QueueScriptsTest, RoundTripKeepsBinaryPayloadAndEveryField) {
  const std::string payload("\x00\x01\n\xff\r\nbytes\x00", 12);
  TestJob job = Job("job_1");
  job.payload = payload;
  job.kind = "send_mass_message";
  job.max_attempts = 5;
  ASSERT_EQ(q_->Enqueue1(kT0, job), EnqueueResult::kEnqueued);

  const LeaseResult lease = q_->Lease(kT0 + 10 * kMs, 10, 30'000);
  ASSERT_EQ(lease.jobs.size(), 1u);
  const Leased& got = lease.jobs[0];
  EXPECT_EQ(got.id, "job_1");
  EXPECT_EQ(got.payload, payload);
  EXPECT_EQ(got.kind, "send_mass_message");
  EXPECT_EQ(got.account, "acct_a");
  EXPECT_EQ(got.team, "team_1");
  EXPECT_EQ(got.tenant, "tenant_1");
  EXPECT_EQ(got.attempt, 1);
  EXPECT_EQ(got.max_attempts, 5);
  EXPECT_FALSE(got.unknown);
  EXPECT_EQ(got.ready_ms, kT0 / kMs);
  EXPECT_EQ(got.expires_ms, kT0 / kMs + 10 + 30'000);
  EXPECT_FALSE(got.token.empty());
  // Nothing else to lease; the next event is the lease's expiry.
  EXPECT_EQ(lease.hint_ms, 30'001);

  EXPECT_EQ(q_->Ack1(kT0 + 20 * kMs, got), FinishResult::kDone);
  EXPECT_EQ(Get({"HEXISTS", "{hd:s0}:jd", "job_1"}), "0");  // no trace but the completed id
  const auto stats = q_->GetStats(kT0 + 30 * kMs);
  EXPECT_EQ(stats.ready + stats.delayed + stats.leased + stats.dead, 0);
  EXPECT_EQ(stats.finished.at({"send_mass_message", "ok"}), 1);
  EXPECT_EQ(stats.enqueued.at("send_mass_message"), 1);
  EXPECT_EQ(q_->Lease(kT0 + 40 * kMs, 10).hint_ms, -1);  // an empty shard: nothing scheduled
}

TEST_F(QueueScriptsTest, EveryKeyCarriesTheShardHashTag) {
  q_->SetTeam(kT0, "team_1", 600, 10);
  q_->Enqueue(kT0, {Job("a"), Job("b", "acct_b"), {.id = "c", .delay_ms = 1000}});
  const auto lease = q_->Lease(kT0, 1);
  ASSERT_EQ(lease.jobs.size(), 1u);
  q_->Nack(kT0, lease.jobs[0], Mode::kDeadLetter, 0, "bad");
  q_->Ack(kT0, {});
  auto keys = conn_->Command({"KEYS", "*"});
  ASSERT_TRUE(keys.ok());
  ASSERT_GT(keys->elements.size(), 5u);
  for (const auto& k : keys->elements) EXPECT_TRUE(k.str.starts_with("{hd:s0}:")) << k.str;
}

TEST_F(QueueScriptsTest, EnqueueIsIdempotentWhileQueuedLeasedCompletedOrDead) {
  ASSERT_EQ(q_->Enqueue1(kT0, Job("j1")), EnqueueResult::kEnqueued);
  EXPECT_EQ(q_->Enqueue1(kT0, Job("j1")), EnqueueResult::kDuplicate);  // queued
  auto lease = q_->Lease(kT0, 1);
  ASSERT_EQ(lease.jobs.size(), 1u);
  EXPECT_EQ(q_->Enqueue1(kT0, Job("j1")), EnqueueResult::kDuplicate);  // leased
  ASSERT_THAT(q_->Ack(kT0 + kSecond, {{lease.jobs[0].id, lease.jobs[0].token}}, 60'000),
              ElementsAre(FinishResult::kDone));
  EXPECT_EQ(q_->Enqueue1(kT0 + 2 * kSecond, Job("j1"), /*window_ms=*/60'000),
            EnqueueResult::kDuplicate);  // completed
  // Past the window the id may be used again.
  EXPECT_EQ(q_->Enqueue1(kT0 + 120 * kSecond, Job("j1"), /*window_ms=*/60'000),
            EnqueueResult::kEnqueued);

  TestJob doomed = Job("j2");
  doomed.max_attempts = 1;
  ASSERT_EQ(q_->Enqueue1(kT0, doomed), EnqueueResult::kEnqueued);
  lease = q_->Lease(kT0 + 200 * kSecond, 10);
  for (const auto& j : lease.jobs)
    q_->Nack(kT0 + 200 * kSecond, j, Mode::kDeadLetter, 0, "terminal");
  EXPECT_EQ(q_->Enqueue1(kT0 + 201 * kSecond, doomed), EnqueueResult::kDuplicate);  // dead
  EXPECT_EQ(q_->GetStats(kT0).ready, 0);
}

TEST_F(QueueScriptsTest, EnqueueRefusesAnAccountOfAnotherTeam) {
  ASSERT_EQ(q_->Enqueue1(kT0, Job("j1")), EnqueueResult::kEnqueued);
  TestJob other = Job("j2");
  other.team = "team_2";
  EXPECT_EQ(q_->Enqueue1(kT0, other), EnqueueResult::kWrongTeam);
  EXPECT_EQ(Get({"HEXISTS", "{hd:s0}:jd", "j2"}), "0");
  const script::ConfigureResult r = q_->ConfigureAccount(kT0, "acct_a", "team_2", 0, 1);
  EXPECT_EQ(r.code, script::ConfigureCode::kWrongTeam);
  EXPECT_EQ(r.registered_team, "team_1");
}

TEST_F(QueueScriptsTest, DelayedJobsArePromotedWhenDue) {
  TestJob job = Job("later");
  job.delay_ms = 5000;
  ASSERT_EQ(q_->Enqueue1(kT0, job), EnqueueResult::kEnqueued);
  EXPECT_EQ(q_->GetStats(kT0).delayed, 1);
  const LeaseResult early = q_->Lease(kT0 + 4999 * kMs, 10);
  EXPECT_TRUE(early.jobs.empty());
  EXPECT_EQ(early.hint_ms, 1);
  const LeaseResult due = q_->Lease(kT0 + 5000 * kMs, 10);
  ASSERT_EQ(due.jobs.size(), 1u);
  EXPECT_EQ(due.jobs[0].id, "later");
  const auto stats = q_->GetStats(kT0 + 5000 * kMs);
  EXPECT_EQ(stats.delayed, 0);
  EXPECT_EQ(stats.leased, 1);
}

TEST_F(QueueScriptsTest, FencingAnExpiredWorkerCannotAckButItsSuccessorCan) {
  ASSERT_EQ(q_->Enqueue1(kT0, Job("j1")), EnqueueResult::kEnqueued);
  const Leased first = q_->Lease(kT0, 1, /*lease_ms=*/1000).jobs.at(0);
  // The lease expires; the next lease call reaps it and hands the job to a successor.
  const Leased second = q_->Lease(kT0 + 1500 * kMs, 1, 1000).jobs.at(0);
  EXPECT_EQ(second.id, "j1");
  EXPECT_NE(second.token, first.token);
  EXPECT_EQ(second.attempt, 2);
  EXPECT_TRUE(second.unknown);

  EXPECT_EQ(q_->Ack1(kT0 + 1600 * kMs, first), FinishResult::kFenced);  // fenced: nothing changes
  EXPECT_FALSE(q_->Heartbeat(kT0 + 1600 * kMs, first, 1000).has_value());
  EXPECT_EQ(q_->Nack(kT0 + 1600 * kMs, first, Mode::kRetry, 10, "x"), NackResult::kFenced);
  // One lease group is left, the successor's, and it holds the job.
  EXPECT_EQ(Get({"ZCARD", "{hd:s0}:ls"}), "1");
  const std::string group = second.token.substr(0, second.token.find(':'));
  EXPECT_EQ(Get({"HEXISTS", StrCat("{hd:s0}:lg:", group), "j1"}), "1");
  EXPECT_EQ(q_->GetStats(kT0).leased, 1);

  EXPECT_EQ(q_->Ack1(kT0 + 1700 * kMs, second), FinishResult::kDone);
  EXPECT_EQ(q_->Ack1(kT0 + 1800 * kMs, second),
            FinishResult::kFenced);  // a second ack is fenced too
  const auto stats = q_->GetStats(kT0);
  EXPECT_EQ(stats.leased, 0);
  EXPECT_EQ(stats.finished.at({"send", "ok"}), 1);
  EXPECT_EQ(stats.finished.at({"send", "expired"}), 1);
}

TEST_F(QueueScriptsTest, CrashedWorkersJobReturnsAtTheHeadFlaggedOutcomeUnknown) {
  q_->Enqueue(kT0, {Job("j1"), Job("j2"), Job("j3")});
  const Leased lost = q_->Lease(kT0, 1, 1000).jobs.at(0);
  ASSERT_EQ(lost.id, "j1");
  EXPECT_EQ(q_->Reap(kT0 + 1000 * kMs), 0);  // not expired yet (expiry is inclusive)
  EXPECT_EQ(q_->Reap(kT0 + 1001 * kMs), 1);
  EXPECT_EQ(q_->GetStats(kT0).ready, 3);
  const LeaseResult again = q_->Lease(kT0 + 1002 * kMs, 1, 1000);
  ASSERT_EQ(again.jobs.size(), 1u);
  EXPECT_EQ(again.jobs[0].id, "j1");  // at the head of its account's list
  EXPECT_TRUE(again.jobs[0].unknown);
  EXPECT_EQ(again.jobs[0].attempt, 2);
  EXPECT_EQ(again.jobs[0].ready_ms, (kT0 + 1001 * kMs) / kMs);  // ready again when reaped
  // The flag is for the attempt right after the unknown outcome only, unless that attempt ends
  // without trying and says so: put back by a 429 or a release, the next attempt is flagged.
  ASSERT_EQ(q_->Nack(kT0 + 1003 * kMs, again.jobs[0], Mode::kRateLimited, 0, "", /*unknown=*/true),
            NackResult::kReturned);
  const Leased limited = q_->Lease(kT0 + 1004 * kMs, 1).jobs.at(0);
  EXPECT_TRUE(limited.unknown);
  EXPECT_EQ(limited.attempt, 2);
  EXPECT_EQ(limited.ready_ms, (kT0 + 1003 * kMs) / kMs);  // and when put back
  ASSERT_EQ(q_->Nack(kT0 + 1005 * kMs, limited, Mode::kRelease, 0), NackResult::kReturned);
  EXPECT_FALSE(q_->Lease(kT0 + 1006 * kMs, 1).jobs.at(0).unknown);
}

TEST_F(QueueScriptsTest, ExpiryOnTheLastAttemptDeadLettersWithAReason) {
  TestJob job = Job("j1");
  job.max_attempts = 1;
  q_->Enqueue1(kT0, job);
  ASSERT_EQ(q_->Lease(kT0, 1, 1000).jobs.size(), 1u);
  EXPECT_EQ(q_->Reap(kT0 + 2 * kSecond), 1);
  const DeadPage dead = q_->ListDead(kT0 + 2 * kSecond);
  ASSERT_EQ(dead.jobs.size(), 1u);
  EXPECT_THAT(dead.jobs[0].reason, HasSubstr("outcome unknown"));
  const auto stats = q_->GetStats(kT0);
  EXPECT_EQ(stats.dead, 1);
  EXPECT_EQ(stats.ready, 0);
  EXPECT_EQ(stats.leased, 0);
}

// Every way a job dies leaves a notice that a worker takes, oldest first: a retry on the last
// attempt, a terminal failure and a lease that expired on the last attempt. A taken notice is
// claimed for a minute: given back, it comes first again; said done, it is gone; neither (its
// taker died), it is offered again once the claim runs out.
TEST_F(QueueScriptsTest, EveryDeadLetterIsTakenOldestFirstUntilItsTakerIsDoneWithIt) {
  TestJob retried = Job("j1");
  retried.max_attempts = 1;
  retried.payload = "p1";
  q_->Enqueue1(kT0, retried);
  EXPECT_EQ(q_->Nack(kT0, q_->Lease(kT0, 1).jobs.at(0), Mode::kRetry, 1000, "upstream 503"),
            NackResult::kDead);
  q_->Enqueue1(kT0 + kMs, Job("j2", "acct_2"));
  EXPECT_EQ(q_->Nack(kT0 + kMs, q_->Lease(kT0 + kMs, 1).jobs.at(0), Mode::kDeadLetter, 0,
                     "400 invalid price"),
            NackResult::kDead);
  TestJob expired = Job("j3", "acct_3");
  expired.max_attempts = 1;
  q_->Enqueue1(kT0 + 2 * kMs, expired);
  ASSERT_EQ(q_->Lease(kT0 + 2 * kMs, 1, 1000).jobs.size(), 1u);
  EXPECT_EQ(q_->Reap(kT0 + 2 * kSecond), 1);

  std::vector<DeadJob> taken = q_->TakeDead(kT0 + 3 * kSecond, 2);
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0].id, "j1");
  EXPECT_EQ(taken[0].payload, "p1");
  EXPECT_EQ(taken[0].attempts, 1);
  EXPECT_THAT(taken[0].reason, HasSubstr("upstream 503 (attempt 1 of 1)"));
  EXPECT_EQ(taken[1].id, "j2");
  EXPECT_EQ(taken[1].reason, "400 invalid price");
  // Given back, they come first again, before the one not taken yet.
  EXPECT_EQ(q_->ReturnDead(kT0 + 3 * kSecond, {"j1", "j2"}), 2);
  taken = q_->TakeDead(kT0 + 3 * kSecond, 10);
  ASSERT_EQ(taken.size(), 3u);
  EXPECT_EQ(taken[0].id, "j1");
  EXPECT_EQ(taken[1].id, "j2");
  EXPECT_EQ(taken[2].id, "j3");
  EXPECT_EQ(taken[2].account, "acct_3");
  EXPECT_THAT(taken[2].reason, HasSubstr("lease expired on the last attempt"));
  EXPECT_TRUE(q_->TakeDead(kT0 + 3 * kSecond, 10).empty());
  // Taking changes nothing else: the dead letters stay for operators.
  EXPECT_EQ(q_->ListDead(kT0 + 3 * kSecond).total, 3);

  // Two are done with; the third's taker never says so: it comes again after its minute.
  EXPECT_EQ(q_->DoneDead(kT0 + 4 * kSecond, {"j1", "j2"}), 2);
  EXPECT_TRUE(q_->TakeDead(kT0 + 62 * kSecond, 10).empty());
  taken = q_->TakeDead(kT0 + 63 * kSecond, 10);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].id, "j3");
  EXPECT_EQ(q_->DoneDead(kT0 + 63 * kSecond, {"j3"}), 1);
  EXPECT_TRUE(q_->TakeDead(kT0 + 1000 * kSecond, 10).empty());
}

// With a retention, a take purges the dead letters older than it that no taker still needs: one
// acted on goes (and its id may be enqueued again), one still claimed or not yet taken stays, as
// does a younger one.
TEST_F(QueueScriptsTest, DeadLettersPastTheirRetentionArePurgedOnceActedOn) {
  auto kill = [&](int64_t at, const std::string& id) {
    ASSERT_EQ(q_->Enqueue1(at, Job(id)), EnqueueResult::kEnqueued);
    ASSERT_EQ(q_->Nack(at, q_->Lease(at, 1).jobs.at(0), Mode::kDeadLetter, 0, "400"),
              NackResult::kDead);
  };
  kill(kT0, "acted_on");
  kill(kT0 + kMs, "claimed");
  kill(kT0 + 2 * kMs, "not_taken");
  ASSERT_EQ(q_->TakeDead(kT0 + kSecond, 2).size(), 2u);
  EXPECT_EQ(q_->DoneDead(kT0 + kSecond, {"acted_on"}), 1);
  kill(kT0 + 40 * 60 * kSecond, "young");
  EXPECT_EQ(q_->Enqueue1(kT0 + 40 * 60 * kSecond, Job("acted_on")), EnqueueResult::kDuplicate);

  const int64_t hour_later = kT0 + 3600 * kSecond;
  std::vector<DeadJob> taken = q_->TakeDead(hour_later, 10, absl::Minutes(30));
  std::vector<std::string> ids;
  for (const DeadJob& job : taken) ids.push_back(job.id);
  EXPECT_THAT(ids, ElementsAre("claimed", "not_taken", "young"));
  EXPECT_EQ(q_->ListDead(hour_later).total, 3);
  EXPECT_EQ(q_->GetStats(hour_later).dead, 3);
  EXPECT_EQ(q_->Enqueue1(hour_later, Job("acted_on")), EnqueueResult::kEnqueued);

  // Once acted on, the two old ones go at the next take; the young one stays.
  EXPECT_EQ(q_->DoneDead(hour_later, {"claimed", "not_taken", "young"}), 3);
  EXPECT_TRUE(q_->TakeDead(hour_later, 10, absl::Minutes(30)).empty());
  const DeadPage dead = q_->ListDead(hour_later);
  ASSERT_EQ(dead.jobs.size(), 1u);
  EXPECT_EQ(dead.jobs[0].id, "young");
  EXPECT_EQ(q_->GetStats(hour_later).dead, 1);
  // Without a retention nothing is purged.
  EXPECT_TRUE(q_->TakeDead(hour_later + 3600 * kSecond, 10).empty());
  EXPECT_EQ(q_->ListDead(hour_later).total, 1);
}

TEST_F(QueueScriptsTest, FairnessSmallAccountIsNotStarvedByABigOne) {
  for (int batch = 0; batch < 20; ++batch) {
    std::vector<TestJob> jobs;
    for (int i = 0; i < 500; ++i) jobs.push_back(Job(StrCat("a", batch * 500 + i), "acct_big"));
    ASSERT_EQ(q_->Enqueue(kT0, jobs).size(), 500u);
  }
  std::vector<TestJob> small;
  for (int i = 0; i < 10; ++i) small.push_back(Job(StrCat("b", i), "acct_small"));
  q_->Enqueue(kT0 + kMs, small);
  ASSERT_EQ(q_->GetStats(kT0).ready, 10'010);

  std::vector<std::string> order;
  int64_t now = kT0 + 2 * kMs;
  while (order.size() < 40) {
    for (const auto& j : q_->Lease(now, 4).jobs) {
      order.push_back(j.account);
      q_->Ack1(now, j);
    }
    now += kMs;
  }
  const auto small_in_first_20 = std::count(order.begin(), order.begin() + 20, "acct_small");
  EXPECT_EQ(small_in_first_20, 10);
}

// Enqueues `per_account` jobs on each of `accounts` accounts of `tenant` (team "team_<tenant>").
void EnqueueTenant(ScriptDriver& q, int64_t now, const std::string& tenant, int accounts,
                   int per_account) {
  std::vector<TestJob> jobs;
  for (int i = 0; i < per_account; ++i) {
    for (int a = 0; a < accounts; ++a) {
      jobs.push_back({.id = StrCat(tenant, "-", a, "-", i),
                      .account = StrCat("acct_", tenant, "_", a),
                      .team = StrCat("team_", tenant),
                      .tenant = tenant});
    }
  }
  for (size_t i = 0; i < jobs.size(); i += 1000) {
    const std::vector<TestJob> batch(
        jobs.begin() + static_cast<ptrdiff_t>(i),
        jobs.begin() + static_cast<ptrdiff_t>(std::min(jobs.size(), i + 1000)));
    ASSERT_EQ(q.Enqueue(now, batch).size(), batch.size());
  }
}

// Leases (and acks) `n` jobs in batches of `batch`; returns how many each tenant got.
std::map<std::string, int> LeasesPerTenant(ScriptDriver& q, int64_t now, int n, int batch) {
  std::map<std::string, int> got;
  int total = 0;
  while (total < n) {
    const LeaseResult lease = q.Lease(now, std::min(batch, n - total));
    if (lease.jobs.empty()) break;
    for (const Leased& j : lease.jobs) {
      ++got[j.tenant];
      q.Ack1(now, j);
    }
    total += static_cast<int>(lease.jobs.size());
    now += kMs;
  }
  return got;
}

TEST_F(QueueScriptsTest, TenantsShareLeasesEquallyWhateverTheirAccountCounts) {
  EnqueueTenant(*q_, kT0, "big", 90, 20);
  EnqueueTenant(*q_, kT0, "small", 10, 20);
  // Accounts alone would give "big" 90% of the leases; tenants of equal weight get half each.
  const std::map<std::string, int> got = LeasesPerTenant(*q_, kT0 + kMs, 400, 16);
  EXPECT_EQ(got.at("big") + got.at("small"), 400);
  EXPECT_NEAR(got.at("small"), 200, 2);
}

TEST_F(QueueScriptsTest, TenantsShareLeasesByWeight) {
  q_->Configure(script::EncodeTenantWeight(StrCat(kT0), "gold", 3));
  EnqueueTenant(*q_, kT0, "gold", 5, 200);
  EnqueueTenant(*q_, kT0, "basic", 50, 20);
  const std::map<std::string, int> got = LeasesPerTenant(*q_, kT0 + kMs, 800, 32);
  EXPECT_EQ(got.at("gold") + got.at("basic"), 800);
  // 3:1, within 5% of each share.
  EXPECT_NEAR(got.at("gold"), 600, 30);
  EXPECT_NEAR(got.at("basic"), 200, 10);
}

TEST_F(QueueScriptsTest, ASmallTenantGoesAheadOfABigTenantsBacklog) {
  // One account each for 9,000 of "agency_big"'s accounts is draining when "agency_small"
  // enqueues a job for each of its 10 accounts: they go in the very next lease, alternating
  // with the big tenant's.
  EnqueueTenant(*q_, kT0, "agency_big", 9000, 1);
  const std::map<std::string, int> before = LeasesPerTenant(*q_, kT0 + kMs, 500, 50);
  ASSERT_EQ(before.at("agency_big"), 500);
  EnqueueTenant(*q_, kT0 + 2 * kSecond, "agency_small", 10, 1);
  const LeaseResult next = q_->Lease(kT0 + 2 * kSecond, 20);
  ASSERT_EQ(next.jobs.size(), 20u);
  const auto small = std::count_if(next.jobs.begin(), next.jobs.end(),
                                   [](const Leased& j) { return j.tenant == "agency_small"; });
  EXPECT_EQ(small, 10);
}

TEST_F(QueueScriptsTest, ATenantBackFromIdleDoesNotCatchUpOnItsIdleTime) {
  // "steady" leases 1,000 jobs while "sporadic" has nothing; then "sporadic" gets work. Its pass
  // starts level with "steady"'s, so it gets its half from then on, not the next 1,000 leases.
  EnqueueTenant(*q_, kT0, "steady", 10, 300);
  ASSERT_EQ(LeasesPerTenant(*q_, kT0 + kMs, 1000, 50).at("steady"), 1000);
  EnqueueTenant(*q_, kT0 + kSecond, "sporadic", 10, 100);
  const std::map<std::string, int> got = LeasesPerTenant(*q_, kT0 + 2 * kSecond, 400, 20);
  EXPECT_NEAR(got.at("sporadic"), 200, 2);
}

// A tenant whose only account waits on its pace between jobs stays in the shard's tenants while
// another is served: when it gets work it can take at once, it starts level with the other, not
// with the credit of the time it could not use.
TEST_F(QueueScriptsTest, ATenantWhoseAccountWaitedOnItsPaceBanksNoCredit) {
  ASSERT_EQ(q_->Configure(script::EncodeConfigureAccount(
                              StrCat(kT0), "acct_paced_0",
                              {.tenant = "paced", .team = "team_paced", .per_minute = 60}))
                .code,
            script::ConfigureCode::kDone);
  EnqueueTenant(*q_, kT0, "paced", 1, 50);
  EnqueueTenant(*q_, kT0, "steady", 10, 300);
  const std::map<std::string, int> before = LeasesPerTenant(*q_, kT0 + kMs, 1000, 50);
  ASSERT_EQ(before.at("paced"), 1);  // one a second, and the leases took 20 ms
  std::vector<TestJob> free;
  for (int i = 0; i < 400; ++i) {
    free.push_back({.id = StrCat("paced-free-", i),
                    .account = StrCat("acct_paced_free_", i % 10),
                    .team = "team_paced",
                    .tenant = "paced"});
  }
  ASSERT_EQ(q_->Enqueue(kT0 + kSecond / 2, free).size(), free.size());
  const std::map<std::string, int> got = LeasesPerTenant(*q_, kT0 + kSecond / 2, 400, 20);
  EXPECT_NEAR(got.at("paced"), 200, 4);
}

TEST_F(QueueScriptsTest, AccountsLeftInTheSingleRingOfEarlierVersionsAreStillServed) {
  // A shard written by a version with one ring for all accounts: the account is in P:ring, not in
  // its tenant's ring.
  ASSERT_EQ(q_->Enqueue1(kT0, Job("old")), EnqueueResult::kEnqueued);
  const std::string score = Get({"ZSCORE", "{hd:s0}:ring:tenant_1", "acct_a"});
  ASSERT_FALSE(score.empty());
  Get({"ZREM", "{hd:s0}:ring:tenant_1", "acct_a"});
  Get({"ZREM", "{hd:s0}:tr", "tenant_1"});
  Get({"ZADD", "{hd:s0}:ring", score, "acct_a"});
  const LeaseResult lease = q_->Lease(kT0 + kMs, 10);
  ASSERT_EQ(lease.jobs.size(), 1u);
  EXPECT_EQ(lease.jobs[0].id, "old");
  EXPECT_EQ(Get({"EXISTS", "{hd:s0}:ring"}), "0");
}

TEST_F(QueueScriptsTest, EqualTimesServeTheAccountThatWaitedLongestNotTheSmallestId) {
  // "acct_z" became ready before "acct_a", at the same millisecond.
  q_->Enqueue(kT0, {Job("z1", "acct_z"), Job("z2", "acct_z"), Job("a1", "acct_a"),
                    Job("a2", "acct_a"), Job("m1", "acct_m")});
  std::vector<std::string> order;
  for (const auto& j : q_->Lease(kT0, 5).jobs) order.push_back(j.id);
  EXPECT_THAT(order, ElementsAre("z1", "a1", "m1", "z2", "a2"));
}

// Leases greedily at random times for `duration`, acking at once; returns each account's lease
// times.
std::map<std::string, std::vector<int64_t>> LeaseForAWhile(ScriptDriver& q, int64_t start,
                                                           int64_t duration, uint64_t seed,
                                                           int visit_cap = 1,
                                                           int* most_at_once = nullptr) {
  std::mt19937_64 rng(seed);
  std::map<std::string, std::vector<int64_t>> times;
  for (int64_t now = start; now < start + duration;
       now += static_cast<int64_t>(rng() % (3 * kSecond))) {
    const LeaseResult leased = q.Lease(now, 20, 30'000, visit_cap);
    std::map<std::string, int> per_account;
    for (const auto& j : leased.jobs) {
      if (most_at_once != nullptr) {
        *most_at_once = std::max(*most_at_once, ++per_account[j.account]);
      }
    }
    for (const auto& j : leased.jobs) {
      times[j.account].push_back(now);
      q.Ack1(now, j);
    }
  }
  return times;
}

// The largest count in any window [t, t + w] divided against burst + rate * w.
void ExpectNoWindowOverLimit(std::vector<int64_t> times, int64_t per_minute, int64_t burst,
                             const std::string& what) {
  std::sort(times.begin(), times.end());
  for (size_t i = 0; i < times.size(); ++i) {
    for (size_t j = i; j < times.size(); ++j) {
      const double allowed =
          static_cast<double>(burst) +
          static_cast<double>(per_minute) * static_cast<double>(times[j] - times[i]) / 60e6;
      ASSERT_LE(static_cast<double>(j - i + 1), allowed)
          << what << ": " << (j - i + 1) << " leases within " << (times[j] - times[i]) / kMs
          << " ms";
    }
  }
}

TEST_F(QueueScriptsTest, AccountRateNeverExceedsBurstPlusRateInAnyWindow) {
  q_->SetAccount(kT0, "acct_a", "team_1", /*per_minute=*/30, /*burst=*/5);
  std::vector<TestJob> jobs;
  for (int i = 0; i < 1000; ++i) jobs.push_back(Job(StrCat("j", i)));
  q_->Enqueue(kT0, jobs);
  const auto times = LeaseForAWhile(*q_, kT0, 20 * 60 * kSecond, 1);
  const auto& a = times.at("acct_a");
  // 20 minutes at 30/min plus the burst, less what random polling leaves unused.
  EXPECT_GE(a.size(), 560u);
  EXPECT_LE(a.size(), 5u + 600u);
  ExpectNoWindowOverLimit(a, 30, 5, "acct_a");
}

TEST_F(QueueScriptsTest, TeamRateCapsTheSumOverItsAccounts) {
  q_->SetTeam(kT0, "team_1", /*per_minute=*/60, /*burst=*/3);
  std::vector<TestJob> jobs;
  for (const char* account : {"acct_a", "acct_b", "acct_c", "acct_d"}) {
    q_->SetAccount(kT0, account, "team_1", 120, 10);
    for (int i = 0; i < 300; ++i) jobs.push_back(Job(StrCat(account, "_", i), account));
  }
  q_->Enqueue(kT0, jobs);
  const auto times = LeaseForAWhile(*q_, kT0, 10 * 60 * kSecond, 2);
  std::vector<int64_t> all;
  for (const auto& [account, t] : times) {
    all.insert(all.end(), t.begin(), t.end());
    // Shared fairly: each account gets roughly a quarter.
    EXPECT_GE(t.size(), 120u) << account;
    ExpectNoWindowOverLimit(t, 120, 10, account);
  }
  EXPECT_GE(all.size(), 560u);
  ExpectNoWindowOverLimit(all, 60, 3, "team_1");
}

// Several jobs per account visit take several tokens at once; no window of the account or of the
// team may hold more than its burst plus its rate, exactly as with one job per visit.
TEST_F(QueueScriptsTest, MultiJobVisitsNeverExceedAccountOrTeamLimitsInAnyWindow) {
  q_->SetTeam(kT0, "team_1", /*per_minute=*/90, /*burst=*/8);
  std::vector<TestJob> jobs;
  for (const char* account : {"acct_a", "acct_b", "acct_c"}) {
    q_->SetAccount(kT0, account, "team_1", /*per_minute=*/40, /*burst=*/6);
    for (int i = 0; i < 600; ++i) jobs.push_back(Job(StrCat(account, "_", i), account));
  }
  q_->Enqueue(kT0, jobs);
  int most_at_once = 0;
  const auto times =
      LeaseForAWhile(*q_, kT0, 10 * 60 * kSecond, 5, /*visit_cap=*/16, &most_at_once);
  // Visits did take several tokens at once (a full burst after an idle spell).
  EXPECT_GE(most_at_once, 4);
  std::vector<int64_t> all;
  for (const auto& [account, t] : times) {
    all.insert(all.end(), t.begin(), t.end());
    EXPECT_GE(t.size(), 200u) << account;  // shared fairly: about a third of the team's rate each
    ExpectNoWindowOverLimit(t, 40, 6, account);
  }
  // 10 minutes at 90/min plus the burst, less what random polling leaves unused.
  EXPECT_GE(all.size(), 800u);
  ExpectNoWindowOverLimit(all, 90, 8, "team_1");
}

TEST_F(QueueScriptsTest, AVisitTakesNoMoreThanTokensInFlightRoomAndItsCapAllow) {
  // The account's burst binds: 5 tokens, 5 jobs, however large the visit cap.
  q_->SetAccount(kT0, "acct_a", "team_1", /*per_minute=*/60, /*burst=*/5);
  std::vector<TestJob> jobs;
  for (int i = 0; i < 40; ++i) jobs.push_back(Job(StrCat("a", i)));
  q_->Enqueue(kT0, jobs);
  LeaseResult r = q_->Lease(kT0, 100, 30'000, /*visit_cap=*/16);
  EXPECT_EQ(r.jobs.size(), 5u);
  EXPECT_EQ(r.jobs[0].id, "a0");
  EXPECT_EQ(r.jobs[4].id, "a4");
  EXPECT_EQ(r.hint_ms, 1000);  // the next token
  // Two intervals later: two tokens.
  EXPECT_EQ(q_->Lease(kT0 + 2 * kSecond, 100, 30'000, 16).jobs.size(), 2u);

  // The in-flight cap binds: 3 slots.
  q_->SetAccount(kT0, "acct_b", "team_1", 0, 1, /*max_in_flight=*/3);
  jobs.clear();
  for (int i = 0; i < 40; ++i) jobs.push_back(Job(StrCat("b", i), "acct_b"));
  q_->Enqueue(kT0, jobs);
  std::vector<Leased> b;
  for (const auto& j : q_->Lease(kT0 + 3 * kSecond, 100, 30'000, 16).jobs) {
    if (j.account == "acct_b") b.push_back(j);  // acct_a has earned one more token meanwhile
  }
  ASSERT_EQ(b.size(), 3u);
  EXPECT_TRUE(q_->Lease(kT0 + 3 * kSecond, 100, 30'000, 16).jobs.empty());
  ASSERT_THAT(q_->Ack(kT0 + 3 * kSecond, {{b[0].id, b[0].token}, {b[1].id, b[1].token}}),
              ElementsAre(FinishResult::kDone, FinishResult::kDone));
  EXPECT_EQ(q_->Lease(kT0 + 3 * kSecond, 100, 30'000, 16).jobs.size(), 2u);

  // The team's burst binds across its accounts, and the visit cap binds an unlimited account.
  q_->SetTeam(kT0, "team_2", /*per_minute=*/60, /*burst=*/4);
  q_->SetAccount(kT0, "acct_c", "team_2", 0, 1);
  q_->SetAccount(kT0, "acct_d", "team_2", 0, 1);
  jobs.clear();
  for (int i = 0; i < 40; ++i) {
    TestJob c = Job(StrCat("c", i), "acct_c");
    c.team = "team_2";
    TestJob d = Job(StrCat("d", i), "acct_d");
    d.team = "team_2";
    jobs.push_back(c);
    jobs.push_back(d);
  }
  q_->Enqueue(kT0, jobs);
  r = q_->Lease(kT0 + 4 * kSecond, 100, 30'000, 3);
  std::map<std::string, int> by_account;
  for (const auto& j : r.jobs) ++by_account[j.account];
  EXPECT_EQ(by_account["acct_c"], 3);  // the visit cap
  EXPECT_EQ(by_account["acct_d"], 1);  // what the team's burst had left
}

// With up to V jobs per visit, the round-robin is by visit: a big account gets at most V jobs per
// turn while a small one waits, and the small one finishes within its first turns.
TEST_F(QueueScriptsTest, FairnessHoldsAtTheGranularityOfOneVisit) {
  for (const int cap : {1, 4, 8, 16}) {
    ScriptDriver q(*conn_, StrCat("{hd:s", cap, "}"));
    for (int batch = 0; batch < 4; ++batch) {
      std::vector<TestJob> jobs;
      for (int i = 0; i < 500; ++i) jobs.push_back(Job(StrCat("a", batch * 500 + i), "acct_big"));
      q.Enqueue(kT0, jobs);
    }
    std::vector<TestJob> small;
    for (int i = 0; i < 10; ++i) small.push_back(Job(StrCat("b", i), "acct_small"));
    q.Enqueue(kT0 + kMs, small);

    std::vector<std::string> order;
    int64_t now = kT0 + 2 * kMs;
    while (order.size() < 100) {
      const LeaseResult r = q.Lease(now, 2 * cap, 30'000, cap);
      ASSERT_FALSE(r.jobs.empty());
      for (const auto& j : r.jobs) {
        order.push_back(j.account);
        q.Ack1(now, j);
      }
      now += kMs;
    }
    const int turns = (10 + cap - 1) / cap;
    const auto within = static_cast<std::ptrdiff_t>(2 * cap * turns);
    EXPECT_EQ(std::count(order.begin(), order.begin() + within, "acct_small"), 10) << "cap " << cap;
    // While the small account has work, the big one never runs more than one visit in a row.
    const auto last_small =
        std::find(order.rbegin(), order.rend(), "acct_small").base() - order.begin();
    int run = 0;
    for (std::ptrdiff_t i = 0; i < last_small; ++i) {
      run = order[static_cast<size_t>(i)] == "acct_big" ? run + 1 : 0;
      EXPECT_LE(run, cap) << "cap " << cap << " at " << i;
    }
  }
}

// The jobs of one visit share a lease group: one expiry, extended together, reaped together (back
// at the head of their account in their old order), and each finished on its own.
TEST_F(QueueScriptsTest, LeaseGroupsExtendTogetherAndReapOnlyWhatIsStillHeld) {
  std::vector<TestJob> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(Job(StrCat("j", i)));
  q_->Enqueue(kT0, jobs);
  const LeaseResult r = q_->Lease(kT0, 4, /*lease_ms=*/1000, /*visit_cap=*/4);
  ASSERT_EQ(r.jobs.size(), 4u);
  EXPECT_EQ(Get({"ZCARD", "{hd:s0}:ls"}), "1");  // one group
  // A heartbeat of one job extends every job of the group still held.
  ASSERT_EQ(q_->Ack1(kT0 + 100 * kMs, r.jobs[1]), FinishResult::kDone);
  EXPECT_EQ(q_->Heartbeat(kT0 + 800 * kMs, r.jobs[3], 1000), kT0 / kMs + 1800);
  EXPECT_EQ(q_->Reap(kT0 + 1500 * kMs), 0);
  EXPECT_FALSE(q_->Heartbeat(kT0 + 900 * kMs, r.jobs[1], 1000).has_value());  // acked: fenced
  // Expired: the three still held go back to the head, in order, flagged outcome-unknown.
  EXPECT_EQ(q_->Reap(kT0 + 1801 * kMs), 3);
  EXPECT_EQ(Get({"ZCARD", "{hd:s0}:ls"}), "0");
  EXPECT_EQ(q_->Ack1(kT0 + 1802 * kMs, r.jobs[0]), FinishResult::kFenced);  // fenced
  const LeaseResult again = q_->Lease(kT0 + 1803 * kMs, 10, 1000, 16);
  std::vector<std::string> ids;
  for (const auto& j : again.jobs) {
    ids.push_back(j.id);
    EXPECT_EQ(j.unknown, j.id != "j4" && j.id != "j5") << j.id;
  }
  EXPECT_THAT(ids, ElementsAre("j0", "j2", "j3", "j4", "j5"));
  const auto stats = q_->GetStats(kT0 + 1803 * kMs);
  EXPECT_EQ(stats.leased, 5);
  EXPECT_EQ(stats.ready, 0);
  EXPECT_EQ(stats.finished.at({"send", "expired"}), 3);
  // The group of the last lease empties with its last ack, and takes its P:ls entry with it.
  std::vector<std::pair<std::string, std::string>> refs;
  for (const auto& j : again.jobs) refs.push_back({j.id, j.token});
  EXPECT_THAT(q_->Ack(kT0 + 1804 * kMs, refs), AllOf(SizeIs(5), Each(FinishResult::kDone)));
  EXPECT_EQ(Get({"ZCARD", "{hd:s0}:ls"}), "0");
  EXPECT_EQ(Get({"KEYS", "{hd:s0}:lg:*"}), "");
}

TEST_F(QueueScriptsTest, RateLimitedPushesTheTeamBackWithoutLosingAnAttempt) {
  q_->SetTeam(kT0, "team_1", 600, 10);
  q_->Enqueue(kT0, {Job("j1", "acct_a"), Job("j2", "acct_b")});
  const Leased j = q_->Lease(kT0, 1).jobs.at(0);
  ASSERT_EQ(j.id, "j1");
  EXPECT_EQ(q_->Nack(kT0 + kSecond, j, Mode::kRateLimited, /*retry_after_ms=*/30'000),
            NackResult::kReturned);
  // Neither account of the team goes before now + 30s.
  const LeaseResult blocked = q_->Lease(kT0 + 2 * kSecond, 10);
  EXPECT_TRUE(blocked.jobs.empty());
  EXPECT_EQ(blocked.throttled_team, 1);  // acct_b was due; acct_a is scored 30s out
  EXPECT_EQ(blocked.throttled_account, 0);
  EXPECT_EQ(blocked.hint_ms, 29'000);
  const LeaseResult after = q_->Lease(kT0 + 31 * kSecond, 10);
  ASSERT_GE(after.jobs.size(), 1u);
  EXPECT_EQ(after.jobs[0].id, "j1");
  EXPECT_EQ(after.jobs[0].attempt, 1);  // the 429 did not cost an attempt
  EXPECT_EQ(q_->GetStats(kT0).finished.at({"send", "rate_limited"}), 1);
}

TEST_F(QueueScriptsTest, ReleaseReturnsTheJobToTheHeadWithoutLosingAnAttempt) {
  q_->Enqueue(kT0, {Job("j1"), Job("j2")});
  const Leased j = q_->Lease(kT0, 1).jobs.at(0);
  EXPECT_EQ(q_->Nack(kT0, j, Mode::kRelease, 0), NackResult::kReturned);
  const Leased again = q_->Lease(kT0 + kMs, 1).jobs.at(0);
  EXPECT_EQ(again.id, "j1");
  EXPECT_EQ(again.attempt, 1);
}

TEST_F(QueueScriptsTest, RetryBacksOffThenDeadLettersWithTheReasonAfterMaxAttempts) {
  TestJob job = Job("j1");
  job.max_attempts = 2;
  job.payload = "payload-1";
  q_->Enqueue1(kT0, job);
  Leased j = q_->Lease(kT0, 1).jobs.at(0);
  EXPECT_EQ(q_->Nack(kT0, j, Mode::kRetry, 2000, "upstream 503", /*unknown=*/true),
            NackResult::kRetryScheduled);
  EXPECT_EQ(q_->GetStats(kT0).delayed, 1);
  EXPECT_TRUE(q_->Lease(kT0 + 1999 * kMs, 1).jobs.empty());
  j = q_->Lease(kT0 + 2000 * kMs, 1).jobs.at(0);
  EXPECT_EQ(j.attempt, 2);
  EXPECT_TRUE(j.unknown);  // the failed attempt said its outcome was unknown
  EXPECT_EQ(q_->Nack(kT0 + 3000 * kMs, j, Mode::kRetry, 2000, "upstream 503"), NackResult::kDead);

  TestJob terminal = Job("j2");
  terminal.max_attempts = 5;
  q_->Enqueue1(kT0 + 4000 * kMs, terminal);
  EXPECT_EQ(q_->Nack(kT0 + 4000 * kMs, q_->Lease(kT0 + 4000 * kMs, 1).jobs.at(0), Mode::kDeadLetter,
                     0, "400 invalid price"),
            NackResult::kDead);

  const DeadPage dead = q_->ListDead(kT0 + 4000 * kMs);
  EXPECT_EQ(dead.total, 2);
  ASSERT_EQ(dead.jobs.size(), 2u);
  // Newest first.
  EXPECT_EQ(dead.jobs[0].id, "j2");
  EXPECT_EQ(dead.jobs[0].reason, "400 invalid price");
  EXPECT_EQ(dead.jobs[0].died_at, absl::FromUnixMicros(kT0 + 4000 * kMs));
  EXPECT_EQ(dead.jobs[1].id, "j1");
  EXPECT_EQ(dead.jobs[1].payload, "payload-1");
  EXPECT_EQ(dead.jobs[1].attempts, 2);
  EXPECT_THAT(dead.jobs[1].reason, HasSubstr("upstream 503 (attempt 2 of 2)"));
  const auto stats = q_->GetStats(kT0);
  EXPECT_EQ(stats.dead, 2);
  EXPECT_EQ(stats.finished.at({"send", "retry"}), 1);
  EXPECT_EQ(stats.finished.at({"send", "dead"}), 2);
}

// A job deferred because Herald's store was unavailable comes back after the delay without
// losing an attempt, however often that happens, and keeps the outcome-unknown flag.
TEST_F(QueueScriptsTest, DeferralWaitsWithoutSpendingAnAttempt) {
  TestJob job = Job("j1");
  job.max_attempts = 2;
  q_->Enqueue1(kT0, job);
  Leased j = q_->Lease(kT0, 1).jobs.at(0);
  for (int i = 1; i <= 5; ++i) {
    const int64_t now = kT0 + i * 10 * kSecond;
    EXPECT_EQ(q_->Nack(now, j, Mode::kDefer, 3000, "ASK 2810 10.0.0.3:6379", /*unknown=*/i == 1),
              NackResult::kRetryScheduled);
    EXPECT_EQ(q_->GetStats(now).delayed, 1);
    EXPECT_TRUE(q_->Lease(now + 2999 * kMs, 1).jobs.empty());
    j = q_->Lease(now + 3000 * kMs, 1).jobs.at(0);
    EXPECT_EQ(j.attempt, 1);
    EXPECT_EQ(j.unknown, i == 1) << i;  // the flag is for the attempt right after it only
  }
  // A real failure still counts: the job's two attempts are both left.
  EXPECT_EQ(q_->Nack(kT0 + 60 * kSecond, j, Mode::kRetry, 1000, "upstream 503"),
            NackResult::kRetryScheduled);
  j = q_->Lease(kT0 + 61 * kSecond, 1).jobs.at(0);
  EXPECT_EQ(j.attempt, 2);
  EXPECT_EQ(q_->GetStats(kT0).dead, 0);
  EXPECT_EQ(q_->GetStats(kT0).finished.at({"send", "retry"}), 6);
}

TEST_F(QueueScriptsTest, MaxInFlightCapsConcurrencyAndAckWakesTheAccount) {
  q_->SetAccount(kT0, "acct_a", "team_1", 0, 1, /*max_in_flight=*/2);
  q_->Enqueue(kT0, {Job("j1"), Job("j2"), Job("j3"), Job("b1", "acct_b")});
  const LeaseResult first = q_->Lease(kT0, 10);
  std::vector<std::string> ids;
  for (const auto& j : first.jobs) ids.push_back(j.id);
  EXPECT_THAT(ids, ElementsAre("j1", "b1", "j2"));
  EXPECT_TRUE(q_->Lease(kT0 + kMs, 10).jobs.empty());
  ASSERT_EQ(q_->Ack1(kT0 + 2 * kMs, first.jobs[0]), FinishResult::kDone);
  const LeaseResult next = q_->Lease(kT0 + 3 * kMs, 10);
  ASSERT_EQ(next.jobs.size(), 1u);
  EXPECT_EQ(next.jobs[0].id, "j3");
}

TEST_F(QueueScriptsTest, PauseAndResumeAccountAndTeamLoseNoWakeUp) {
  q_->Enqueue(kT0, {Job("a1", "acct_a"), Job("b1", "acct_b")});
  q_->Pause(kT0, script::PauseTarget::kAccount, "acct_a");
  auto got = q_->Lease(kT0, 10);
  ASSERT_EQ(got.jobs.size(), 1u);
  EXPECT_EQ(got.jobs[0].id, "b1");
  // Work arriving while paused does not wake the account.
  q_->Enqueue(kT0, {Job("a2", "acct_a")});
  EXPECT_TRUE(q_->Lease(kT0 + kMs, 10).jobs.empty());
  q_->Resume(kT0 + 2 * kMs, script::PauseTarget::kAccount, "acct_a");
  EXPECT_EQ(q_->Lease(kT0 + 3 * kMs, 10).jobs.size(), 2u);

  q_->Enqueue(kT0, {Job("a3", "acct_a"), Job("b2", "acct_b")});
  q_->Pause(kT0 + 4 * kMs, script::PauseTarget::kTeam, "team_1");
  EXPECT_TRUE(q_->Lease(kT0 + 5 * kMs, 10).jobs.empty());
  EXPECT_EQ(q_->GetStats(kT0).ready_accounts, 0);
  q_->Resume(kT0 + 6 * kMs, script::PauseTarget::kTeam, "team_1");
  EXPECT_EQ(q_->Lease(kT0 + 7 * kMs, 10).jobs.size(), 2u);
}

TEST_F(QueueScriptsTest, LooseningALimitWakesTheAccountAtOnce) {
  q_->SetAccount(kT0, "acct_a", "team_1", /*per_minute=*/1, 1);
  q_->Enqueue(kT0, {Job("j1"), Job("j2")});
  ASSERT_EQ(q_->Lease(kT0, 10, /*lease_ms=*/600'000).jobs.size(), 1u);
  EXPECT_EQ(q_->Lease(kT0 + kSecond, 10).hint_ms, 59'000);
  // The debt from the old limit is capped by the new one: next token at 1s + 100ms.
  q_->SetAccount(kT0 + kSecond, "acct_a", "team_1", /*per_minute=*/600, 1);
  EXPECT_EQ(q_->Lease(kT0 + 1050 * kMs, 10).hint_ms, 50);
  EXPECT_EQ(q_->Lease(kT0 + 1100 * kMs, 10).jobs.size(), 1u);
}

TEST_F(QueueScriptsTest, HeartbeatExtendsTheLease) {
  q_->Enqueue1(kT0, Job("j1"));
  const Leased j = q_->Lease(kT0, 1, 1000).jobs.at(0);
  EXPECT_EQ(q_->Heartbeat(kT0 + 800 * kMs, j, 1000), kT0 / kMs + 1800);
  EXPECT_EQ(q_->Reap(kT0 + 1500 * kMs), 0);
  EXPECT_EQ(q_->Ack1(kT0 + 1700 * kMs, j), FinishResult::kDone);
  Leased stale = j;
  stale.token = "0";
  EXPECT_FALSE(q_->Heartbeat(kT0 + 1800 * kMs, stale, 1000).has_value());
}

TEST_F(QueueScriptsTest, AckAndEnqueueChainsNeitherForkNorStall) {
  q_->Enqueue1(kT0, Job("step1"));
  const Leased a = q_->Lease(kT0, 1).jobs.at(0);
  EXPECT_THAT(q_->AckAndEnqueue(kT0, a, Job("step2")),
              IsAck(FinishResult::kDone, EnqueueResult::kEnqueued));
  // A replay (a duplicate delivery of the same ack) is fenced and enqueues nothing.
  EXPECT_THAT(q_->AckAndEnqueue(kT0, a, Job("step2_dup")),
              IsAck(FinishResult::kFenced, std::nullopt));
  EXPECT_EQ(Get({"HEXISTS", "{hd:s0}:jd", "step2_dup"}), "0");
  const Leased b = q_->Lease(kT0 + kMs, 10).jobs.at(0);
  EXPECT_EQ(b.id, "step2");
  // A next step that already exists is reported duplicate; the ack still happens.
  q_->Enqueue1(kT0, Job("step3"));
  EXPECT_THAT(q_->AckAndEnqueue(kT0 + 2 * kMs, b, Job("step3")),
              IsAck(FinishResult::kDone, EnqueueResult::kDuplicate));
  const auto stats = q_->GetStats(kT0);
  EXPECT_EQ(stats.ready, 1);
  EXPECT_EQ(stats.leased, 0);
}

TEST_F(QueueScriptsTest, StatsTrackDepthsAndOldestReadyAge) {
  q_->Enqueue(kT0, {Job("r1"), Job("r2", "acct_b")});
  q_->Enqueue(kT0 + 5 * kSecond, {Job("r3", "acct_c"), {.id = "d1", .delay_ms = 60'000}});
  const auto stats = q_->GetStats(kT0 + 10 * kSecond);
  EXPECT_EQ(stats.ready, 3);
  EXPECT_EQ(stats.delayed, 1);
  EXPECT_EQ(stats.oldest_ready_age, absl::Seconds(10));
  EXPECT_EQ(stats.ready_accounts, 3);
}

// A job waiting out a delay or a retry's backoff is not ready: the oldest ready age counts from
// the end of the wait, so jobs scheduled or retried long ago do not look like a stalled queue.
TEST_F(QueueScriptsTest, OldestReadyAgeCountsFromTheEndOfADelay) {
  q_->Enqueue(kT0, {{.id = "d1", .delay_ms = 60'000}, {.id = "d2", .delay_ms = 60'000}});
  // The lease promotes both and takes one: the other has been ready for a second, not 61.
  const LeaseResult first = q_->Lease(kT0 + 61 * kSecond, 1);
  ASSERT_EQ(first.jobs.size(), 1u);
  EXPECT_EQ(first.jobs[0].ready_ms, (kT0 + 60 * kSecond) / kMs);
  EXPECT_EQ(q_->GetStats(kT0 + 61 * kSecond).oldest_ready_age, absl::Seconds(1));
  const LeaseResult second = q_->Lease(kT0 + 62 * kSecond, 1);
  ASSERT_EQ(second.jobs.size(), 1u);
  // A retry is ready again when its backoff ends; the other job waits behind it meanwhile.
  ASSERT_TRUE(q_->Nack(kT0 + 62 * kSecond, first.jobs[0], Mode::kRetry, 30'000, "503"));
  ASSERT_TRUE(q_->Nack(kT0 + 62 * kSecond, second.jobs[0], Mode::kRetry, 40'000, "503"));
  const LeaseResult retried = q_->Lease(kT0 + 105 * kSecond, 1);
  ASSERT_EQ(retried.jobs.size(), 1u);
  EXPECT_EQ(retried.jobs[0].id, "d1");
  EXPECT_EQ(retried.jobs[0].ready_ms, (kT0 + 92 * kSecond) / kMs);
  EXPECT_EQ(q_->GetStats(kT0 + 105 * kSecond).oldest_ready_age, absl::Seconds(3));
}

TEST(QueueDurabilityTest, EveryJobSurvivesARestartExactlyOnce) {
  auto server = RedisServer::Start({.appendonly = true});
  ASSERT_TRUE(server.ok()) << server.status();
  auto conn = SyncRedis::Connect((*server)->port());
  ASSERT_TRUE(conn.ok());
  {
    ScriptDriver q(**conn, "{hd:s0}");
    for (int batch = 0; batch < 10; ++batch) {
      std::vector<TestJob> jobs;
      for (int i = 0; i < 100; ++i) {
        jobs.push_back({.id = StrCat("j", batch * 100 + i), .account = StrCat("acct_", i % 7)});
      }
      q.Enqueue(kT0, jobs);
    }
    // Some are in flight when Redis dies.
    ASSERT_EQ(q.Lease(kT0, 50, 1000).jobs.size(), 50u);
  }
  ASSERT_TRUE((*server)->Restart(/*graceful=*/false).ok());
  conn = SyncRedis::Connect((*server)->port());
  ASSERT_TRUE(conn.ok());
  ScriptDriver q(**conn, "{hd:s0}");
  std::set<std::string> ids;
  int leased = 0;
  for (int64_t now = kT0 + 2 * kSecond; leased < 1000 && now < kT0 + 60 * kSecond; now += kMs) {
    const LeaseResult r = q.Lease(now, 100);
    if (r.jobs.empty()) break;
    for (const auto& j : r.jobs) {
      ids.insert(j.id);
      ++leased;
      ASSERT_EQ(q.Ack1(now, j), FinishResult::kDone);
    }
  }
  EXPECT_EQ(leased, 1000);
  EXPECT_EQ(ids.size(), 1000u);
  const auto stats = q.GetStats(kT0 + 61 * kSecond);
  EXPECT_EQ(stats.ready + stats.leased + stats.delayed, 0);
}

// The Lua GCRA and the C++ one must agree exactly: drive both with the same sequence.
TEST(GcraParityTest, LuaAndCppAgreeOnEveryStep) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok());
  auto conn = SyncRedis::Connect((*server)->port());
  ASSERT_TRUE(conn.ok());
  const std::string driver = StrCat(ratelimit::GcraLua(), R"lua(
local interval = gcra_interval(tonumber(ARGV[1]))
local tol = gcra_tolerance(interval, tonumber(ARGV[2]))
local tat = 0
local out = {}
for i = 3, #ARGV, 2 do
  local now = tonumber(ARGV[i])
  if ARGV[i + 1] == 'p' then
    tat = gcra_push_back(tat, tol, now + 5000000)
  elseif ARGV[i + 1] == 'c' then
    tat = gcra_clamp(tat, interval, tol, now)
  elseif ARGV[i + 1] == 'n' then
    tat = gcra_take_n(tat, interval, now, gcra_available(tat, interval, tol, now, 4))
  elseif gcra_allow_at(tat, tol, now) <= now then
    tat = gcra_take(tat, interval, now)
  end
  out[#out + 1] = string.format('%d', gcra_allow_at(tat, tol, now))
  out[#out + 1] = string.format('%d', tat)
  out[#out + 1] = string.format('%d', gcra_available(tat, interval, tol, now, 1000))
end
return out
)lua");
  std::mt19937_64 rng(3);
  for (const ratelimit::Limit limit : {ratelimit::Limit{7, 3}, ratelimit::Limit{600, 1},
                                       ratelimit::Limit{0, 1}, ratelimit::Limit{59999, 17}}) {
    const ratelimit::Gcra gcra(limit);
    std::vector<std::string> args = {StrCat(limit.per_minute), StrCat(limit.burst)};
    std::vector<std::string> expected;
    int64_t now = kT0;
    int64_t tat = 0;
    for (int i = 0; i < 300; ++i) {
      now += static_cast<int64_t>(rng() % 3'000'000);
      const uint64_t op = rng() % 20;
      args.push_back(StrCat(now));
      args.push_back(op == 0 ? "p" : op == 1 ? "c" : op < 8 ? "n" : "t");
      if (op == 0) {
        tat = gcra.PushBack(tat, now + 5'000'000);
      } else if (op == 1) {
        tat = gcra.Clamp(tat, now);
      } else if (op < 8) {
        tat = gcra.TakeN(tat, now, gcra.Available(tat, now, 4));
      } else if (gcra.AllowAt(tat, now) <= now) {
        tat = gcra.Take(tat, now);
      }
      expected.push_back(StrCat(gcra.AllowAt(tat, now)));
      expected.push_back(StrCat(tat));
      expected.push_back(StrCat(gcra.Available(tat, now, 1000)));
    }
    auto reply = (*conn)->Eval(driver, {}, args);
    ASSERT_TRUE(reply.ok());
    ASSERT_EQ(reply->elements.size(), expected.size()) << reply->DebugString();
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(reply->elements[i].str, expected[i])
          << "limit " << limit.per_minute << " step " << i;
    }
  }
}

}  // namespace
}  // namespace herald::queue::testing
