// Overload: a flood far beyond what Herald sustains leaves its processes within their memory
// limits, refusing the excess cleanly, and serving normally as soon as it ends.
//
// The real herald binary as two processes (api, and ingest) on a real redis-server, with the
// upstream simulator to register the team's webhook. For kFloodSeconds (HERALD_FLOOD_SECONDS
// overrides it: 30 for the full check), at once:
//   - 64 keep-alive connections post distinct signed webhooks to ingest as fast as it answers;
//   - 16 threads call the API with one tenant's key as fast as it answers, against a tenant quota
//     of kQuota calls/s: the flood is asserted to be at least ten times the quota;
// while the processes' resident memory is sampled. Asserted: every webhook answer is 200 or a
// 503 with Retry-After (ingest sheds, it does not time out or fail), every API answer OK or
// RESOURCE_EXHAUSTED with retry info, no more OKs than the quota allows, peak memory below the
// deployment's limits (deploy/k8s: ingest 512 MiB, api 1 GiB); then, right after the flood, a
// normal load is served in full (webhooks all 200, API calls all OK once within the quota).
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/types.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/wait.h>
#include <herald/testing/webhook_events.h>
#include <herald/testing/webhook_sender.h>
#include <herald/v1/campaign.grpc.pb.h>

namespace herald {
namespace {

namespace asio = boost::asio;
using testing::Delivery;
using testing::HeraldProcess;

constexpr int kQuota = 50;  // API calls per second for the tenant (burst as much)
constexpr int kSenders = 64;
constexpr int kCallers = 16;
constexpr int64_t kIngestLimitBytes = 512LL << 20;
constexpr int64_t kApiLimitBytes = 1LL << 30;
constexpr char kAdminKey[] = "admin-secret-for-flood";
constexpr char kTenant[] = "flood";
constexpr char kTeam[] = "main";
const std::string kEncryptionKey(64, 'f');

int FloodSeconds() {
  const char* env = std::getenv("HERALD_FLOOD_SECONDS");
  const int seconds = env == nullptr ? 0 : std::atoi(env);
  return seconds > 0 ? seconds : 5;
}

// VmRSS of `pid` in bytes; 0 when unreadable.
int64_t ResidentBytes(pid_t pid) {
  std::ifstream status(StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::atoll(line.c_str() + 6) * 1024;
  }
  return 0;
}

Delivery Subscription(int64_t i, const std::string& account, const std::string& secret) {
  return testing::SubscriptionDelivery(StrCat("evt_flood_", i), account, 2'000'000 + i, secret);
}

class FloodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
    auto sim = testing::SimulatorProcess::Start(
        {.args = {"--teams=1", "--accounts_per_team=2", "--fans_per_account=10"}});
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
    const std::map<std::string, std::string> env = {{"HERALD_ADMIN_KEY", kAdminKey},
                                                    {"HERALD_ENCRYPTION_KEY", kEncryptionKey}};
    auto herald =
        testing::StartApiAndIngest(redis_->port(), sim_->port(), env,
                                   {StrCat("--api_tenant_rate=", kQuota),
                                    StrCat("--api_tenant_burst=", kQuota), "--log_level=error"},
                                   {"--log_level=error"});
    ASSERT_TRUE(herald.ok()) << herald.status();
    api_ = std::move(herald->api);
    ingest_ = std::move(herald->ingest);
    channel_ = grpc::CreateChannel(api_->grpc_target(), grpc::InsecureChannelCredentials());
  }

  // The team's signing secret, as the upstream got it (Herald keeps it sealed).
  absl::StatusOr<std::string> WebhookSecret() {
    auto record = redis_->Command({"HGET", testing::TeamsKey(kTenant), kTeam});
    if (!record.ok()) return record.status();
    return testing::OpenWebhookSecret(*record, kEncryptionKey);
  }

  grpc::Status ListCampaigns(const std::string& key) {
    v1::ListCampaignsRequest req;
    req.set_parent(StrCat("tenants/", kTenant));
    v1::ListCampaignsResponse resp;
    return v1::CampaignService::NewStub(channel_)->ListCampaigns(
        testing::BearerContext(key, absl::Seconds(10)).get(), req, &resp);
  }

  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<testing::SimulatorProcess> sim_;
  std::unique_ptr<HeraldProcess> ingest_;
  std::unique_ptr<HeraldProcess> api_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(FloodTest, StaysWithinItsMemoryLimitsRefusesTheExcessAndServesRightAfter) {
  auto key = testing::CreateTenant(channel_, kAdminKey, kTenant);
  ASSERT_TRUE(key.ok()) << key.status();
  auto team = testing::CreateTeamWithAccounts(channel_, *key, kTenant, {.team_id = kTeam});
  ASSERT_TRUE(team.ok()) << team.status();
  const std::string account = testing::ShortId(team->accounts.at(0));
  absl::StatusOr<std::string> secret = WebhookSecret();
  ASSERT_TRUE(secret.ok()) << secret.status();
  const std::string target = StrCat("/webhooks/", kTenant, ".", kTeam);
  const int seconds = FloodSeconds();

  std::atomic<bool> flooding{true};
  std::atomic<int64_t> peak_ingest{0}, peak_api{0};
  std::thread sampler([&] {
    while (flooding.load()) {
      peak_ingest = std::max(peak_ingest.load(), ResidentBytes(ingest_->process().pid()));
      peak_api = std::max(peak_api.load(), ResidentBytes(api_->process().pid()));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the sampling period
    }
  });

  // The API flood.
  std::mutex mu;
  std::map<grpc::StatusCode, int64_t> api_codes;
  int64_t exhausted_without_retry_info = 0;
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&] {
      while (flooding.load()) {
        v1::ListCampaignsRequest req;
        req.set_parent(StrCat("tenants/", kTenant));
        v1::ListCampaignsResponse resp;
        auto ctx = testing::BearerContext(*key, absl::Seconds(10));
        const grpc::Status s =
            v1::CampaignService::NewStub(channel_)->ListCampaigns(ctx.get(), req, &resp);
        std::lock_guard<std::mutex> lock(mu);
        ++api_codes[s.error_code()];
        if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
            s.error_details().find("RetryInfo") == std::string::npos) {
          ++exhausted_without_retry_info;
        }
      }
    });
  }

  // The webhook flood, on one thread.
  std::map<int, int64_t> ingest_statuses;
  std::map<std::string, int64_t> ingest_errors;
  int64_t next_event = 0;
  const bool killed = false;
  {
    asio::io_context ioc;
    std::vector<std::unique_ptr<testing::WebhookConnection>> connections;
    for (int i = 0; i < kSenders; ++i) {
      connections.push_back(
          std::make_unique<testing::WebhookConnection>(ioc.get_executor(), ingest_->ingest_port()));
    }
    const absl::Time end = absl::Now() + absl::Seconds(seconds);
    for (auto& connection : connections) {
      testing::WebhookConnection* conn = connection.get();
      asio::co_spawn(
          ioc,
          [&, conn]() -> asio::awaitable<void> {
            while (absl::Now() < end) {
              const Delivery d = Subscription(next_event++, account, *secret);
              const testing::Answer a = co_await conn->Post(target, d, killed);
              if (!a.answered) {
                ++ingest_errors[a.error];
                continue;
              }
              ++ingest_statuses[a.status];
            }
          },
          asio::detached);
    }
    ioc.run();
  }
  flooding = false;
  for (std::thread& t : callers) t.join();
  sampler.join();

  int64_t api_total = 0;
  for (const auto& [code, n] : api_codes) api_total += n;
  std::printf("flood of %d s: %lld API calls (%lld/s against a quota of %d/s): ", seconds,
              static_cast<long long>(api_total), static_cast<long long>(api_total / seconds),
              kQuota);
  for (const auto& [code, n] : api_codes) {
    std::printf("code %d x %lld ", static_cast<int>(code), static_cast<long long>(n));
  }
  std::printf("\n%lld webhooks: ", static_cast<long long>(next_event));
  for (const auto& [status, n] : ingest_statuses) {
    std::printf("%d x %lld ", status, static_cast<long long>(n));
  }
  std::printf("\npeak memory: ingest %.1f MiB, api %.1f MiB\n",
              static_cast<double>(peak_ingest.load()) / (1 << 20),
              static_cast<double>(peak_api.load()) / (1 << 20));

  // The API flood was at least ten times the quota; the excess was refused as such, with retry
  // information; no more calls went through than the quota allows (plus the burst).
  EXPECT_GE(api_total, 10LL * kQuota * seconds);
  for (const auto& [code, n] : api_codes) {
    EXPECT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::RESOURCE_EXHAUSTED)
        << n << " API calls ended with code " << code;
  }
  EXPECT_EQ(exhausted_without_retry_info, 0);
  EXPECT_LE(api_codes[grpc::StatusCode::OK], static_cast<int64_t>(kQuota) * (seconds + 1) + kQuota);
  // Ingest answered every request: recorded (200) or shed (503), never a timeout or an error.
  EXPECT_TRUE(ingest_errors.empty())
      << ingest_errors.begin()->first << " x " << ingest_errors.begin()->second;
  for (const auto& [status, n] : ingest_statuses) {
    EXPECT_TRUE(status == 200 || status == 503) << n << " webhooks answered " << status;
  }
  EXPECT_GT(ingest_statuses[200], 0);
  // Within the deployment's memory limits throughout.
  EXPECT_GT(peak_ingest.load(), 0);
  EXPECT_LT(peak_ingest.load(), kIngestLimitBytes);
  EXPECT_LT(peak_api.load(), kApiLimitBytes);
  EXPECT_TRUE(ingest_->process().running());
  EXPECT_TRUE(api_->process().running());

  // Right after: once the quota lets a call through again, a client keeping to half the quota
  // is served in full.
  ASSERT_TRUE(testing::WaitFor([&] { return ListCampaigns(*key).ok(); }, absl::Seconds(10)));
  for (int i = 0; i < kQuota / 2; ++i) {
    absl::SleepFor(absl::Seconds(2) / kQuota);  // the client's pace: half the quota
    const grpc::Status s = ListCampaigns(*key);
    EXPECT_TRUE(s.ok()) << "call " << i << " after the flood: " << s.error_message();
  }
  // And a normal stream of webhooks is recorded in full.
  asio::io_context ioc;
  testing::WebhookConnection conn(ioc.get_executor(), ingest_->ingest_port());
  int after_ok = 0;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 200; ++i) {
          const Delivery d = Subscription(next_event++, account, *secret);
          const testing::Answer a = co_await conn.Post(target, d, killed);
          if (a.answered && a.status == 200) ++after_ok;
        }
      },
      asio::detached);
  ioc.run();
  EXPECT_EQ(after_ok, 200);
}

}  // namespace
}  // namespace herald
