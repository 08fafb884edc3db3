// A Redis Cluster master killed with SIGKILL while Herald sends a campaign and ingests webhooks.
//
// herald (every role, --redis_cluster, --redis_wait_replicas=1) runs on a six-node cluster with
// the upstream simulator. A PPV campaign goes to 20 accounts whose chat queues deliver slowly, so
// its jobs (sends, progress polls) are enqueued, leased and acked throughout; meanwhile senders
// post distinct signed webhooks over keep-alive connections. When kKillAfter events have been
// acknowledged, the test SIGKILLs the master holding the tenant's data (hash tag {t:failover}),
// which also holds some queue shards. Its replica takes over; the killed node is started again
// once it has (as an orchestrator restarts a pod) and rejoins as the new master's replica. Until
// then writes that must reach a replica are refused (503 to the senders, retried as the upstream
// retries), never acknowledged and lost.
//
// Then: every event is applied exactly once (the account totals), the campaign completes with
// exactly one upstream message per account (the simulator's ledger: nothing sent twice), and
// Herald is ready again. The test prints how long the outage lasted as seen by the senders.
//
// The same run with --redis_wait_replicas=0 measures what a failover loses without the option:
// events acknowledged by the master that never reached its replica (printed; never counted
// twice), while the campaign still sends exactly once per account (the queue's fencing and the
// send's reconciliation do not depend on the option).
#include <atomic>
#include <cstdio>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <absl/time/clock.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/redis/cluster.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/net.h>
#include <herald/testing/redis_cluster.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/wait.h>
#include <herald/testing/webhook_events.h>
#include <herald/testing/webhook_sender.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/events.grpc.pb.h>

namespace herald {
namespace {

namespace asio = boost::asio;
using testing::Answer;
using testing::Delivery;
using testing::HeraldProcess;
using testing::RedisCluster;
using testing::SimulatorProcess;
using testing::WebhookConnection;

constexpr int kEvents = 6000;
constexpr int kKillAfter = kEvents / 4;
constexpr int kSenders = 8;
constexpr int kAccounts = 20;
// How long the senders keep retrying before the test gives up on an event.
constexpr absl::Duration kLoadDeadline = absl::Seconds(90);
constexpr absl::Duration kRpcTimeout = absl::Seconds(30);

constexpr char kAdminKey[] = "admin-secret-for-failover";
constexpr char kTenant[] = "failover";
constexpr char kTeam[] = "main";
const std::string kEncryptionKey(64, 'f');

// Event `i`: a new subscriber of one of the accounts, each about its own fan.
Delivery MakeDelivery(int i, const std::vector<std::string>& accounts, const std::string& secret) {
  return testing::SubscriptionDelivery(StrCat("evt_failover_", i),
                                       accounts[static_cast<size_t>(i) % accounts.size()],
                                       2'000'000 + i, secret);
}

// The senders' shared record; every sender coroutine runs on one thread (the load's), the test's
// thread reads `acknowledged_count` only.
struct Load {
  const std::vector<Delivery>& deliveries;
  std::string target;

  std::deque<size_t> pending;  // not acknowledged yet, in sending order
  std::vector<bool> acknowledged = std::vector<bool>(deliveries.size(), false);
  std::atomic<int> acknowledged_count{0};
  std::map<int, int> refusals;  // status -> count (503 during the outage)
  int connection_failures = 0;
  absl::Time first_refusal = absl::InfiniteFuture();
  absl::Time last_refusal = absl::InfinitePast();
};

asio::awaitable<void> Pause(absl::Duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(absl::ToChronoNanoseconds(d));
  co_await timer.async_wait(asio::use_awaitable);
}

// Sends events until each has its 200; an event refused or cut off goes to the back of the line,
// as the upstream retries it later.
asio::awaitable<void> Send(Load& load, WebhookConnection& conn, absl::Time deadline) {
  const bool never_killed = false;  // the ingest process stays up; only Redis fails
  while (!load.pending.empty() && absl::Now() < deadline) {
    const size_t i = load.pending.front();
    load.pending.pop_front();
    const Answer answer = co_await conn.Post(load.target, load.deliveries[i], never_killed);
    if (answer.answered && answer.status == 200) {
      load.acknowledged[i] = true;
      load.acknowledged_count.fetch_add(1);
      continue;
    }
    load.pending.push_back(i);
    if (answer.answered) {
      ++load.refusals[answer.status];
      load.first_refusal = std::min(load.first_refusal, absl::Now());
      load.last_refusal = absl::Now();
    } else {
      ++load.connection_failures;
    }
    co_await Pause(absl::Milliseconds(20));  // the sender's retry delay
  }
}

// Waits (up to a minute) for campaign `name` to end; the campaign as last read.
v1::Campaign AwaitFinal(const std::shared_ptr<grpc::Channel>& channel, const std::string& key,
                        const std::string& name) {
  auto campaigns = v1::CampaignService::NewStub(channel);
  v1::Campaign done;
  testing::WaitFor(
      [&] {
        v1::GetCampaignRequest req;
        req.set_name(name);
        grpc::Status s =
            campaigns->GetCampaign(testing::BearerContext(key, kRpcTimeout).get(), req, &done);
        return s.ok() &&
               (done.state() == v1::Campaign::COMPLETED ||
                done.state() == v1::Campaign::PARTIALLY_FAILED ||
                done.state() == v1::Campaign::FAILED || done.state() == v1::Campaign::CANCELLED);
      },
      absl::Seconds(60));
  return done;
}

// Each of `accounts` (ids or resource names) has exactly one mass message on the simulator.
void ExpectOneMessageEach(uint16_t sim_port, const std::vector<std::string>& accounts) {
  auto ledger = testing::ReadLedger(sim_port);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  const std::map<std::string, int> messages = testing::MassMessagesPerAccount(*ledger);
  for (const std::string& name : accounts) {
    const std::string account = testing::ShortId(name);
    EXPECT_EQ(messages.contains(account) ? messages.at(account) : 0, 1) << account;
  }
}

// The parameter: --redis_wait_replicas. With 1 nothing acknowledged may be lost; with 0 the test
// measures what a failover loses (acknowledged events missing from the totals) and prints it.
class RedisFailoverTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    auto cluster = RedisCluster::Start({});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    // Slow chat queues: 40 fans at 10 per second keep each delivery going for seconds.
    auto sim = SimulatorProcess::Start(
        {.args = {"--teams=1", StrCat("--accounts_per_team=", kAccounts), "--fans_per_account=40",
                  "--delivery_rate=10", "--rate_limit_per_minute=100000"}});
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
    auto herald = HeraldProcess::Start(
        {.args = {"serve", "--role=all", "--redis_cluster",
                  StrCat("--redis_address=", absl::StrJoin(cluster_->seeds(), ",")),
                  // Long enough for a live replica on a loaded two-core machine: a write it
                  // misses is refused (not acknowledged), which the setup's calls do not retry.
                  StrCat("--redis_wait_replicas=", GetParam()), "--redis_wait_timeout=2s",
                  StrCat("--upstream_url=http://127.0.0.1:", sim_->port()), "--poll_interval=50ms",
                  "--lookup_retry=1s", "--log_level=info"},
         .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", kEncryptionKey}},
         .register_webhooks = true});
    ASSERT_TRUE(herald.ok()) << herald.status();
    herald_ = *std::move(herald);
    channel_ = grpc::CreateChannel(herald_->grpc_target(), grpc::InsecureChannelCredentials());
  }

  // The team's signing secret, read from its record on the master that holds the tenant.
  absl::StatusOr<std::string> WebhookSecret() {
    const std::string key = testing::TeamsKey(kTenant);
    const std::optional<uint16_t> master = cluster_->MasterPortOf(redis::cluster::KeySlot(key));
    if (!master) return absl::InternalError("no master for the tenant's slot");
    auto record = cluster_->Command(*master, {"HGET", key, kTeam});
    if (!record.ok()) return record.status();
    return testing::OpenWebhookSecret(*record, kEncryptionKey);
  }

  std::unique_ptr<RedisCluster> cluster_;
  std::unique_ptr<SimulatorProcess> sim_;
  std::unique_ptr<HeraldProcess> herald_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_P(RedisFailoverTest, AMasterKilledUnderLoadLosesNothingAcknowledgedAndSendsNothingTwice) {
  auto key = testing::CreateTenant(channel_, kAdminKey, kTenant, "", kRpcTimeout);
  ASSERT_TRUE(key.ok()) << key.status() << herald_->Logs();
  auto team = testing::CreateTeamWithAccounts(
      channel_, *key, kTenant, {.team_id = kTeam, .rate_limit_per_minute = 0}, kRpcTimeout);
  ASSERT_TRUE(team.ok()) << team.status();
  ASSERT_EQ(team->accounts.size(), static_cast<size_t>(kAccounts));
  std::vector<std::string> accounts;
  for (const std::string& name : team->accounts) accounts.push_back(testing::ShortId(name));
  absl::StatusOr<std::string> secret = WebhookSecret();
  ASSERT_TRUE(secret.ok()) << secret.status();

  // The campaign: one upstream mass message per account, delivered over seconds.
  auto media = testing::CreateMediaAsset(channel_, *key, kTenant, v1::MediaAsset::IMAGE,
                                         "https://cdn.example.com/set.jpg");
  ASSERT_TRUE(media.ok()) << media.status();
  const v1::CreateCampaignRequest create =
      testing::CampaignToFans(kTenant, team->accounts, "A new set", 1500, *media);
  v1::Campaign campaign;
  auto campaigns = v1::CampaignService::NewStub(channel_);
  grpc::Status created =
      campaigns->CreateCampaign(testing::BearerContext(*key, kRpcTimeout).get(), create, &campaign);
  ASSERT_TRUE(created.ok()) << created.error_message();

  // Webhooks under load; the tenant's master dies after kKillAfter acknowledgements.
  const std::string tenant_key = StrCat("hd:{t:", kTenant, "}:teams");
  const uint16_t victim = *cluster_->MasterPortOf(redis::cluster::KeySlot(tenant_key));
  std::vector<Delivery> deliveries;
  for (int i = 0; i < kEvents; ++i) deliveries.push_back(MakeDelivery(i, accounts, *secret));
  Load load{.deliveries = deliveries, .target = StrCat("/webhooks/", kTenant, ".", kTeam)};
  for (size_t i = 0; i < deliveries.size(); ++i) load.pending.push_back(i);
  asio::io_context ioc;
  std::vector<std::unique_ptr<WebhookConnection>> connections;
  std::exception_ptr error;
  const absl::Time deadline = absl::Now() + kLoadDeadline;
  for (int i = 0; i < kSenders; ++i) {
    connections.push_back(
        std::make_unique<WebhookConnection>(ioc.get_executor(), herald_->ingest_port()));
    asio::co_spawn(ioc, Send(load, *connections.back(), deadline),
                   [&](std::exception_ptr e) { error = error ? error : e; });
  }
  std::thread senders([&] { ioc.run(); });

  // The kill, the promotion, and the old master's return as a replica (from this thread: the
  // node's process lives as long as the thread that starts it).
  const bool loaded =
      testing::WaitFor([&] { return load.acknowledged_count.load() >= kKillAfter; }, kLoadDeadline);
  const absl::Time killed_at = absl::Now();
  const absl::Status killed = cluster_->KillNode(victim);
  // Not ready while a master is unreachable, saying which.
  std::string not_ready;
  const bool reported = testing::WaitFor(
      [&] {
        auto r = testing::HttpGet(herald_->admin_port(), "/readyz");
        if (!r.ok() || r->status != 503) return false;
        not_ready = r->body;
        return absl::StrContains(r->body, StrCat("127.0.0.1:", victim));
      },
      absl::Seconds(10));
  absl::StatusOr<uint16_t> promoted = cluster_->WaitForFailover(victim);
  const absl::Time promoted_at = absl::Now();
  const absl::Status restarted = cluster_->RestartNode(victim);
  const absl::Time restarted_at = absl::Now();
  senders.join();
  if (error) std::rethrow_exception(error);
  ASSERT_TRUE(loaded) << load.acknowledged_count.load() << " acknowledged\n" << herald_->Logs();
  ASSERT_TRUE(killed.ok()) << killed;
  EXPECT_TRUE(reported) << "/readyz: " << not_ready;
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  ASSERT_TRUE(restarted.ok()) << restarted;

  std::string refusals;
  for (const auto& [status, n] : load.refusals) StrAppend(&refusals, " ", n, "x", status);
  ASSERT_EQ(load.acknowledged_count.load(), kEvents)
      << load.pending.size() << " events never acknowledged; refusals:" << refusals << ", "
      << load.connection_failures << " connection failures; herald "
      << (herald_->process().running() ? "running" : "exited") << "\n"
      << herald_->Logs();
  std::printf(
      "master :%u killed after %d acknowledgements; its replica :%u promoted %s later, the old "
      "master back as a replica %s after the kill; refusals:%s (from %s to %s after the kill), %d "
      "connection failures\n",
      victim, kKillAfter, *promoted, absl::FormatDuration(promoted_at - killed_at).c_str(),
      absl::FormatDuration(restarted_at - killed_at).c_str(),
      refusals.empty() ? " none" : refusals.c_str(),
      absl::FormatDuration(load.first_refusal - killed_at).c_str(),
      absl::FormatDuration(load.last_refusal - killed_at).c_str(), load.connection_failures);
  for (const auto& [status, n] : load.refusals) EXPECT_EQ(status, 503) << n << " answers";

  // Herald is ready again, on its own.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        auto r = testing::HttpGet(herald_->admin_port(), "/readyz");
        return r.ok() && r->status == 200;
      },
      absl::Seconds(30)))
      << herald_->Logs();

  // Each account's new subscribers: each event once.
  std::map<std::string, int64_t> subscriptions;
  for (const Delivery& d : deliveries) ++subscriptions[d.account];
  auto analytics = v1::AnalyticsService::NewStub(channel_);
  int64_t lost = 0;
  for (const std::string& account : accounts) {
    v1::GetAccountOverviewRequest req;
    req.set_name(StrCat("tenants/", kTenant, "/accounts/", account));
    v1::AccountOverview overview;
    grpc::Status s = analytics->GetAccountOverview(testing::BearerContext(*key, kRpcTimeout).get(),
                                                   req, &overview);
    ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << herald_->Logs();
    // Never more than once; with replicas acknowledging, never less.
    EXPECT_LE(overview.new_subscribers(), subscriptions[account]) << account;
    if (GetParam() > 0) {
      EXPECT_EQ(overview.new_subscribers(), subscriptions[account]) << account;
    }
    lost += subscriptions[account] - overview.new_subscribers();
  }
  std::printf("--redis_wait_replicas=%d: %lld of %d acknowledged events lost in the failover\n",
              GetParam(), static_cast<long long>(lost), kEvents);

  // The campaign completes, with one upstream message per account.
  const v1::Campaign done = AwaitFinal(channel_, *key, campaign.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << v1::Campaign::State_Name(done.state()) << ": " << done.state_reason() << "\n"
      << herald_->Logs();
  ExpectOneMessageEach(sim_->port(), accounts);
}

// The tenant's hash slot moved to another master while its campaign's jobs run, held half-way
// (MIGRATING on the source, IMPORTING on the target) for longer than the jobs' attempts would
// last: Herald's scripts cannot run on the tenant's data meanwhile. The jobs wait without
// spending attempts, and once the slot has moved the campaign goes out, once per account.
TEST(RedisSlotMigrationTest, AMigratingTenantSlotDefersJobsWithoutSpendingTheirAttempts) {
  constexpr int kMigratingAccounts = 3;
  constexpr int kMaxAttempts = 2;
  auto started = RedisCluster::Start({.replicas_per_master = 0});
  ASSERT_TRUE(started.ok()) << started.status();
  RedisCluster& cluster = **started;
  auto sim = SimulatorProcess::Start(
      {.args = {"--teams=1", StrCat("--accounts_per_team=", kMigratingAccounts),
                "--fans_per_account=10", "--rate_limit_per_minute=100000"}});
  ASSERT_TRUE(sim.ok()) << sim.status();
  auto herald = HeraldProcess::Start(
      {.args = {"serve", "--role=all", "--redis_cluster",
                StrCat("--redis_address=", absl::StrJoin(cluster.seeds(), ",")),
                "--redis_timeout=1s", StrCat("--max_attempts=", kMaxAttempts),
                StrCat("--upstream_url=http://127.0.0.1:", (*sim)->port()), "--poll_interval=50ms",
                "--log_level=info"},
       .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", kEncryptionKey}}});
  ASSERT_TRUE(herald.ok()) << herald.status();
  auto channel = grpc::CreateChannel((*herald)->grpc_target(), grpc::InsecureChannelCredentials());

  auto key = testing::CreateTenant(channel, kAdminKey, kTenant, "", kRpcTimeout);
  ASSERT_TRUE(key.ok()) << key.status() << (*herald)->Logs();
  auto team = testing::CreateTeamWithAccounts(
      channel, *key, kTenant, {.team_id = kTeam, .rate_limit_per_minute = 0}, kRpcTimeout);
  ASSERT_TRUE(team.ok()) << team.status();
  ASSERT_EQ(team->accounts.size(), static_cast<size_t>(kMigratingAccounts));
  auto media = testing::CreateMediaAsset(channel, *key, kTenant, v1::MediaAsset::IMAGE,
                                         "https://cdn.example.com/set.jpg");
  ASSERT_TRUE(media.ok()) << media.status();

  // Scheduled a few seconds ahead: its first jobs are delayed in the queue, and run while the
  // slot is half-way.
  v1::CreateCampaignRequest create =
      testing::CampaignToFans(kTenant, team->accounts, "A new set", 1500, *media);
  create.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 3);
  v1::Campaign campaign;
  auto campaigns = v1::CampaignService::NewStub(channel);
  grpc::Status created =
      campaigns->CreateCampaign(testing::BearerContext(*key, kRpcTimeout).get(), create, &campaign);
  ASSERT_TRUE(created.ok()) << created.error_message();

  const uint16_t slot = redis::cluster::KeySlot(StrCat("{t:", kTenant, "}"));
  const uint16_t source = *cluster.MasterPortOf(slot);
  uint16_t target = 0;
  for (uint16_t port : cluster.master_ports()) target = port != source ? port : target;
  ASSERT_TRUE(cluster.BeginMigration(slot, target).ok());

  // Jobs of every kind finished with `outcome` (herald_jobs_total summed over `kind`).
  auto finished = [&](std::string_view outcome) {
    auto metrics = testing::HttpGet((*herald)->admin_port(), "/metrics");
    if (!metrics.ok()) return -1.0;
    double sum = 0;
    for (absl::string_view line : absl::StrSplit(metrics->body, '\n')) {
      if (!absl::StartsWith(line, "herald_jobs_total{") ||
          !absl::StrContains(line, StrCat("outcome=\"", outcome, "\""))) {
        continue;
      }
      double value = 0;
      if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) sum += value;
    }
    return sum;
  };
  // Three times as many failed runs as the jobs have attempts: without deferral, every job
  // would have been dead-lettered after its second.
  const bool deferred =
      testing::WaitFor([&] { return finished("retry") >= 3 * kMaxAttempts * kMigratingAccounts; },
                       absl::Seconds(90));
  const double dead_during = finished("dead");
  for (absl::StatusOr<int> moved = cluster.MigrateKeys(slot, 1000); moved.ok() && *moved > 0;
       moved = cluster.MigrateKeys(slot, 1000)) {
  }
  ASSERT_TRUE(cluster.FinishMigration(slot).ok());
  ASSERT_TRUE(deferred) << finished("retry") << " retries\n" << (*herald)->Logs();
  EXPECT_EQ(dead_during, 0);

  const v1::Campaign done = AwaitFinal(channel, *key, campaign.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << v1::Campaign::State_Name(done.state()) << ": " << done.state_reason() << "\n"
      << (*herald)->Logs();
  EXPECT_EQ(finished("dead"), 0);
  ExpectOneMessageEach((*sim)->port(), team->accounts);
}

INSTANTIATE_TEST_SUITE_P(WaitReplicas, RedisFailoverTest, ::testing::Values(1, 0),
                         [](const ::testing::TestParamInfo<int>& param) {
                           return StrCat("WaitFor", param.param);
                         });

}  // namespace
}  // namespace herald
