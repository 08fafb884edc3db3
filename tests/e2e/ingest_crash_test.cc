// An ingest process killed with SIGKILL under load loses no acknowledged event.
//
// The real herald binary as two processes (the api role, and the ingest role that is killed), a
// real redis-server, and the upstream simulator (only to register the team's webhook, which is how
// Herald generates the signing secret). Senders post distinct signed events over keep-alive
// connections as fast as ingest answers; ingest is killed at once when the kKillAfter-th 200
// arrives, while the other connections wait for answers and most events are not sent yet. Requests
// cut off by the kill may or may not have been recorded. The process is started again on the same
// port and the senders retry every unacknowledged event with its idempotency key, as the upstream
// does, until each has its 200. Herald's read path (the account totals and the tenant's event
// stream) must then show every event applied exactly once: none of the acknowledged ones lost, none
// of the retried ones doubled.
//
// How many requests were in flight at the kill (written, never answered), and how many of those had
// been recorded (their retry is answered "duplicate"), depends on timing; the test prints both
// rather than asserting them.
#include <algorithm>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <absl/time/clock.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <herald/common/strings.h>
#include <herald/store/crypto.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/webhook_events.h>
#include <herald/testing/webhook_sender.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/events.grpc.pb.h>

namespace herald {
namespace {

namespace asio = boost::asio;
using testing::Answer;
using testing::Delivery;
using testing::HeraldProcess;
using testing::RedisServer;
using testing::SimulatorProcess;
using testing::WebhookConnection;

// Distinct events per run: a second or two of load on a CI machine; raise it to soak ingest.
constexpr int kEvents = 24000;
// Ingest is killed when this many events have been acknowledged.
constexpr int kKillAfter = kEvents / 3;
// Concurrent keep-alive connections, each sending its next event as soon as one is answered.
constexpr int kSenders = 16;
// Attempts per event after the restart before the test gives up on it.
constexpr int kMaxAttempts = 5;
// The deadline of each gRPC call to the api process.
constexpr absl::Duration kRpcTimeout = absl::Seconds(30);

constexpr char kAdminKey[] = "admin-secret-for-ingest-crash";
constexpr char kTenant[] = "crash";
constexpr char kTeam[] = "main";

// Event `i`: alternately a new subscriber and a campaign message delivered to a fan, on the
// accounts in turn, each about its own fan.
Delivery MakeDelivery(int i, const std::vector<std::string>& accounts, const std::string& secret) {
  Delivery d;
  d.key = StrCat("evt_crash_", i);
  d.account = accounts[static_cast<size_t>(i / 2) % accounts.size()];
  d.fan_id = 1'000'000 + i;
  if (i % 2 == 0) {
    d.type = "subscriptions.new";
    d.body = StrCat(R"({"event":"subscriptions.new","account_id":")", d.account,
                    R"(","payload":{"user_id":")", d.fan_id,
                    R"(","subscribedAt":"2026-11-30T12:00:00+00:00",)",
                    R"("expiredAt":"2026-12-30T12:00:00+00:00","price":9.99,)",
                    R"("isNewSubscriber":true,"fanData":{"available":true,)",
                    R"("spending":{"total":9.99}}}})");
  } else {
    d.type = "messages.sent";
    const int64_t queue = 5'000'000 + i / 100;
    d.body = StrCat(
        R"({"event":"messages.sent","account_id":")", d.account, R"(","payload":{"id":)",
        9'000'000 + i, R"(,"text":"<p>New set</p>","price":15,"isFree":false,"mediaCount":1,)",
        R"("queueId":)", queue, R"(,"isFromQueue":true,"createdAt":"2026-11-30T12:00:00+00:00",)",
        R"("canPurchase":true,"isOpened":false,"isNew":true,"toUser":{"id":)", d.fan_id,
        R"(,"name":"Fan","username":"u)", d.fan_id, R"("}}})");
  }
  d.signature = store::HmacSha256Hex(secret, d.body);
  return d;
}

// The senders' shared record. Every coroutine runs on one thread, so plain fields suffice.
struct Load {
  const std::vector<Delivery>& deliveries;
  std::string target;
  std::function<void()> kill;  // SIGKILLs ingest

  std::vector<bool> acknowledged = std::vector<bool>(deliveries.size(), false);
  int acknowledged_count = 0;
  size_t next = 0;  // the next event never sent yet
  bool killed = false;
  int acknowledged_at_kill = 0;
  int in_flight_at_kill = 0;                // written before the kill, never answered
  int failed_after_kill = 0;                // every request that got no answer after the kill
  std::vector<std::string> early_failures;  // no answer before the kill: must stay empty
  std::map<int, int> unexpected_statuses;   // answers other than 200: must stay empty
  std::deque<size_t> unacknowledged;        // to retry after the restart
  std::vector<int> attempts = std::vector<int>(deliveries.size(), 0);
  int retried_duplicates = 0;  // retries answered "duplicate": applied before the kill
  std::vector<size_t> given_up;

  void Acknowledge(size_t i) {
    acknowledged[i] = true;
    ++acknowledged_count;
  }
};

// Before and through the kill: sends events in order until the connection fails (ingest is gone) or
// none is left.
asio::awaitable<void> SendUntilKilled(Load& load, WebhookConnection& conn) {
  while (load.next < load.deliveries.size()) {
    const size_t i = load.next++;
    const Answer answer = co_await conn.Post(load.target, load.deliveries[i], load.killed);
    if (answer.answered && answer.status == 200) {
      load.Acknowledge(i);
      if (load.acknowledged_count == kKillAfter) {
        load.kill();
        load.killed = true;
        load.acknowledged_at_kill = load.acknowledged_count;
      }
      continue;
    }
    load.unacknowledged.push_back(i);
    if (answer.answered) {
      ++load.unexpected_statuses[answer.status];
      continue;
    }
    if (!load.killed) {
      load.early_failures.push_back(StrCat(load.deliveries[i].key, ": ", answer.error));
    } else {
      ++load.failed_after_kill;
      if (answer.in_flight_at_kill) ++load.in_flight_at_kill;
    }
    co_return;
  }
}

// After the restart: the upstream's retries. Every event without its 200 is sent again (same key,
// same body, same signature) until it gets one, at most kMaxAttempts times.
asio::awaitable<void> RetryUnacknowledged(Load& load, WebhookConnection& conn) {
  while (!load.unacknowledged.empty()) {
    const size_t i = load.unacknowledged.front();
    load.unacknowledged.pop_front();
    ++load.attempts[i];
    const Answer answer = co_await conn.Post(load.target, load.deliveries[i], load.killed);
    if (answer.answered && answer.status == 200) {
      load.Acknowledge(i);
      if (answer.body == "duplicate\n") ++load.retried_duplicates;
      continue;
    }
    if (answer.answered) ++load.unexpected_statuses[answer.status];
    if (load.attempts[i] >= kMaxAttempts) {
      load.given_up.push_back(i);
    } else {
      load.unacknowledged.push_back(i);
    }
  }
}

// Runs one coroutine per connection on `ioc`, from this thread, until all have returned.
void RunSenders(asio::io_context& ioc, Load& load,
                std::vector<std::unique_ptr<WebhookConnection>>& connections,
                asio::awaitable<void> (*sender)(Load&, WebhookConnection&)) {
  std::exception_ptr error;
  for (auto& conn : connections) {
    asio::co_spawn(ioc, sender(load, *conn), [&error](std::exception_ptr e) {
      if (e && !error) error = e;
    });
  }
  ioc.restart();
  ioc.run();
  if (error) std::rethrow_exception(error);
}

class IngestCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
    auto sim = SimulatorProcess::Start(
        {.args = {"--teams=1", "--accounts_per_team=2", "--fans_per_account=10"}});
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
    const std::map<std::string, std::string> env = {{"HERALD_ADMIN_KEY", kAdminKey},
                                                    {"HERALD_ENCRYPTION_KEY", kEncryptionKey}};
    // The team's webhook is registered with the upstream pointing at the ingest process.
    auto herald = testing::StartApiAndIngest(redis_->port(), sim_->port(), env,
                                             {"--log_level=warn"}, {"--log_level=warn"});
    ASSERT_TRUE(herald.ok()) << herald.status();
    api_ = std::move(herald->api);
    ingest_ = std::move(herald->ingest);
    channel_ = grpc::CreateChannel(api_->grpc_target(), grpc::InsecureChannelCredentials());
  }

  // Creates the tenant, its API key and a team on the simulator's team-1 (which registers the
  // team's webhook) with its accounts. Returns the tenant's key; `accounts` gets the upstream
  // account ids.
  std::string CreateTenantAndTeam(std::vector<std::string>* accounts) {
    auto key = testing::CreateTenant(channel_, kAdminKey, kTenant, "", kRpcTimeout);
    EXPECT_TRUE(key.ok()) << key.status();
    if (!key.ok()) return "";
    auto team = testing::CreateTeamWithAccounts(
        channel_, *key, kTenant, {.team_id = kTeam, .rate_limit_per_minute = 0}, kRpcTimeout);
    EXPECT_TRUE(team.ok()) << team.status();
    if (!team.ok()) return *key;
    EXPECT_TRUE(team->team.webhook_id().starts_with("wh_")) << team->team.webhook_error();
    for (const std::string& name : team->accounts) accounts->push_back(testing::ShortId(name));
    return *key;
  }

  // The team's signing secret, as the upstream got it: Herald stores it sealed with its encryption
  // key (the same way tools/bench/ingest.sh reads it).
  absl::StatusOr<std::string> WebhookSecret() {
    auto record = redis_->Command({"HGET", testing::TeamsKey(kTenant), kTeam});
    if (!record.ok()) return record.status();
    return testing::OpenWebhookSecret(*record, kEncryptionKey);
  }

  static inline const std::string kEncryptionKey = std::string(64, 'c');

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<SimulatorProcess> sim_;
  std::unique_ptr<HeraldProcess> ingest_;
  std::unique_ptr<HeraldProcess> api_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(IngestCrashTest, KilledUnderLoadLosesNoAcknowledgedEventAndAppliesRetriesOnce) {
  std::vector<std::string> accounts;
  const std::string key = CreateTenantAndTeam(&accounts);
  ASSERT_EQ(accounts.size(), 2u);
  absl::StatusOr<std::string> secret = WebhookSecret();
  ASSERT_TRUE(secret.ok()) << secret.status();

  std::vector<Delivery> deliveries;
  for (int i = 0; i < kEvents; ++i) deliveries.push_back(MakeDelivery(i, accounts, *secret));
  Load load{.deliveries = deliveries,
            .target = StrCat("/webhooks/", kTenant, ".", kTeam),
            .kill = [this] { ingest_->process().Signal(SIGKILL); }};
  asio::io_context ioc;
  std::vector<std::unique_ptr<WebhookConnection>> connections;
  for (int i = 0; i < kSenders; ++i) {
    connections.push_back(
        std::make_unique<WebhookConnection>(ioc.get_executor(), ingest_->ingest_port()));
  }

  // Load until the kill; every sender stops at its first request without an answer.
  const absl::Time load_start = absl::Now();
  RunSenders(ioc, load, connections, SendUntilKilled);
  const absl::Duration until_kill = absl::Now() - load_start;
  ASSERT_TRUE(load.killed) << "only " << load.acknowledged_count << " acknowledgements\n"
                           << ingest_->Logs();
  const std::optional<int> exit_status = ingest_->process().Wait(absl::Seconds(10));
  ASSERT_TRUE(exit_status.has_value());
  ASSERT_TRUE(WIFSIGNALED(*exit_status) && WTERMSIG(*exit_status) == SIGKILL) << *exit_status;
  EXPECT_TRUE(load.early_failures.empty()) << load.early_failures.front();
  // The kill came mid-load: after exactly kKillAfter acknowledgements, with requests cut off by it,
  // and before most events were sent.
  EXPECT_EQ(load.acknowledged_at_kill, kKillAfter);
  EXPECT_GT(load.failed_after_kill, 0);
  const size_t never_sent = deliveries.size() - load.next;
  EXPECT_GT(never_sent, 0u);
  const int acknowledged_before_restart = load.acknowledged_count;
  for (size_t i = load.next; i < deliveries.size(); ++i) load.unacknowledged.push_back(i);
  load.next = deliveries.size();
  const size_t retried = load.unacknowledged.size() - never_sent;

  // The process comes back where the upstream delivers, and every unacknowledged event is sent
  // again until it is acknowledged.
  ASSERT_TRUE(ingest_->Restart().ok()) << ingest_->Logs();
  const absl::Time retry_start = absl::Now();
  RunSenders(ioc, load, connections, RetryUnacknowledged);
  const absl::Duration retrying = absl::Now() - retry_start;
  ASSERT_TRUE(load.given_up.empty())
      << load.given_up.size() << " events never acknowledged after the restart, e.g. "
      << deliveries[load.given_up.front()].key << "\n"
      << ingest_->Logs();
  EXPECT_TRUE(load.unexpected_statuses.empty())
      << load.unexpected_statuses.begin()->first << " answered "
      << load.unexpected_statuses.begin()->second << " times";
  ASSERT_EQ(std::count(load.acknowledged.begin(), load.acknowledged.end(), true), kEvents);
  std::printf(
      "%d events over %d connections; SIGKILL at the %d-th acknowledgement (after %s of load), "
      "%d requests in flight then, %d acknowledged in all before the restart, %d requests failed, "
      "%zu events never sent; after the restart %zu retried (%d of them answered duplicate: "
      "applied before the kill) and %zu sent, in %s\n",
      kEvents, kSenders, load.acknowledged_at_kill, absl::FormatDuration(until_kill).c_str(),
      load.in_flight_at_kill, acknowledged_before_restart, load.failed_after_kill, never_sent,
      retried, load.retried_duplicates, never_sent, absl::FormatDuration(retrying).c_str());

  // Each account's totals count every event once.
  std::map<std::string, int64_t> subscriptions, sent;
  for (const Delivery& d : deliveries) {
    if (d.type == "subscriptions.new") {
      ++subscriptions[d.account];
    } else {
      ++sent[d.account];
    }
  }
  for (const std::string& account : accounts) {
    v1::GetAccountOverviewRequest req;
    req.set_name(StrCat("tenants/", kTenant, "/accounts/", account));
    v1::AccountOverview overview;
    grpc::Status s = v1::AnalyticsService::NewStub(channel_)->GetAccountOverview(
        testing::BearerContext(key, kRpcTimeout).get(), req, &overview);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(overview.new_subscribers(), subscriptions[account]) << account;
    EXPECT_EQ(overview.sent(), sent[account]) << account;
  }

  // The tenant's event stream from its start holds each event exactly once, and nothing else.
  std::map<int64_t, const Delivery*> by_fan;
  for (const Delivery& d : deliveries) by_fan[d.fan_id] = &d;
  std::map<int64_t, int> seen;
  v1::SubscribeRequest sreq;
  sreq.set_parent(StrCat("tenants/", kTenant));
  sreq.set_cursor("0");
  // A subscriber reading from the start may fall behind and be cut off (RESOURCE_EXHAUSTED); it
  // resumes after the last cursor it received, as the API documents.
  for (int subscriptions_left = 10; seen.size() < by_fan.size() && subscriptions_left > 0;
       --subscriptions_left) {
    auto ctx = testing::BearerContext(key, kRpcTimeout);
    auto reader = v1::EventService::NewStub(channel_)->Subscribe(ctx.get(), sreq);
    v1::Event e;
    while (seen.size() < by_fan.size() && reader->Read(&e)) {
      sreq.set_cursor(e.cursor());
      const auto it = by_fan.find(e.fan_id());
      if (it == by_fan.end()) {
        ADD_FAILURE() << "an event nobody sent: " << e.ShortDebugString();
        continue;
      }
      EXPECT_EQ(e.event_type(), it->second->type);
      EXPECT_EQ(e.account(), StrCat("tenants/", kTenant, "/accounts/", it->second->account));
      EXPECT_EQ(++seen[e.fan_id()], 1) << "applied twice: " << it->second->key;
    }
    const bool complete = seen.size() == by_fan.size();
    if (complete) ctx->TryCancel();
    const grpc::Status status = reader->Finish();
    if (!complete && status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ADD_FAILURE() << "the event stream ended with " << seen.size() << " of " << by_fan.size()
                    << " events: " << status.error_code() << " " << status.error_message();
      break;
    }
  }
  std::vector<std::string> missing;
  for (const Delivery& d : deliveries) {
    if (!seen.contains(d.fan_id)) missing.push_back(d.key);
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " acknowledged events are not in the stream, "
                               << "e.g. " << missing.front();
}

}  // namespace
}  // namespace herald
