// WatchCampaign carries revenue end to end: the real herald binary (all roles, webhooks
// registered), a real redis-server and the upstream simulator, where every fan buys the message
// 3-5 s after receiving it, so the purchases keep arriving after the campaign is final.
#include <algorithm>
#include <optional>
#include <vector>

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/simulator_process.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::HeraldProcess;
using testing::RedisServer;
using testing::SimulatorProcess;

constexpr char kAdminKey[] = "admin-secret-for-watch-revenue-tests";
constexpr int kAccounts = 3;
constexpr int64_t kPriceCents = 1500;
constexpr int64_t kNetCents = 1200;  // the price less the platform's 20%

bool IsFinal(const v1::Campaign& c) {
  switch (c.state()) {
    case v1::Campaign::COMPLETED:
    case v1::Campaign::PARTIALLY_FAILED:
    case v1::Campaign::FAILED:
    case v1::Campaign::CANCELLED:
    case v1::Campaign::MISSED:
      return true;
    default:
      return false;
  }
}

class WatchRevenueTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto redis = RedisServer::Start();
    if (!redis.ok()) {
      setup_error_ = redis.status().ToString();
      return;
    }
    redis_ = redis->release();
    // Delivery takes milliseconds and Herald sees it finish within a poll (50 ms); every
    // recipient buys 3-5 s after delivery, well after the campaign is final.
    auto sim = SimulatorProcess::Start(
        {.args = {"--teams=1", StrCat("--accounts_per_team=", kAccounts), "--fans_per_account=20",
                  "--delivery_rate=2000", "--rate_limit_per_minute=100000",
                  "--purchase_probability=1", "--fan_behavior=uniform", "--purchase_delay_min=3s",
                  "--purchase_delay_max=5s", "--webhook_retry_base=50ms"}});
    if (!sim.ok()) {
      setup_error_ = sim.status().ToString();
      return;
    }
    sim_ = sim->release();
    auto herald = HeraldProcess::Start(
        {.args = {"serve", "--role=all", StrCat("--upstream_url=http://127.0.0.1:", sim_->port()),
                  "--poll_interval=50ms", "--log_level=warn"},
         .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", std::string(64, 'c')}},
         .redis_port = redis_->port(),
         .register_webhooks = true});
    if (!herald.ok()) {
      setup_error_ = herald.status().ToString();
      return;
    }
    herald_ = herald->release();
    channel_ = grpc::CreateChannel(herald_->grpc_target(), grpc::InsecureChannelCredentials());
  }

  static void TearDownTestSuite() {
    delete herald_;
    delete sim_;
    delete redis_;
  }

  void SetUp() override {
    if (herald_ == nullptr) FAIL() << "the suite's processes did not start: " << setup_error_;
  }

  static std::unique_ptr<grpc::ClientContext> Context(std::string_view key, int seconds = 20) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", StrCat("Bearer ", key));
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
    return ctx;
  }

  // A tenant with a team on the simulator's team (its webhook registered) and its accounts;
  // returns the tenant's key.
  static std::string NewTenantWithAccounts(const std::string& tenant,
                                           std::vector<std::string>* accounts) {
    auto tenants = v1::TenantService::NewStub(channel_);
    v1::CreateTenantRequest req;
    req.set_tenant_id(tenant);
    v1::Tenant created;
    grpc::Status s = tenants->CreateTenant(Context(kAdminKey).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::CreateApiKeyRequest kreq;
    kreq.set_parent(created.name());
    v1::CreateApiKeyResponse key;
    s = tenants->CreateApiKey(Context(kAdminKey).get(), kreq, &key);
    EXPECT_TRUE(s.ok()) << s.error_message();

    auto stub = v1::AccountService::NewStub(channel_);
    v1::CreateTeamRequest treq;
    treq.set_parent(created.name());
    treq.set_team_id("main");
    treq.mutable_team()->set_upstream_api_key("sim-key-1");
    treq.mutable_team()->set_rate_limit_per_minute(60000);
    v1::Team team;
    s = stub->CreateTeam(Context(key.secret()).get(), treq, &team);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(team.webhook_id().starts_with("wh_")) << team.webhook_error();
    v1::SyncAccountsRequest sreq;
    sreq.set_team(team.name());
    v1::SyncAccountsResponse synced;
    s = stub->SyncAccounts(Context(key.secret()).get(), sreq, &synced);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const auto& a : synced.created()) accounts->push_back(a.name());
    return key.secret();
  }

  // A priced campaign to every account's fans, sent now; returns its name.
  static std::string SendPriced(const std::string& tenant, const std::string& key,
                                const std::vector<std::string>& accounts) {
    v1::CreateMediaAssetRequest mreq;
    mreq.set_parent(StrCat("tenants/", tenant));
    mreq.mutable_media_asset()->set_type(v1::MediaAsset::IMAGE);
    mreq.mutable_media_asset()->set_source_url("https://cdn.example.com/set.jpg");
    v1::MediaAsset asset;
    grpc::Status s =
        v1::MediaService::NewStub(channel_)->CreateMediaAsset(Context(key).get(), mreq, &asset);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::CreateCampaignRequest req;
    req.set_parent(StrCat("tenants/", tenant));
    v1::Campaign* c = req.mutable_campaign();
    c->mutable_content()->set_text("A new set");
    c->mutable_content()->set_price_cents(kPriceCents);
    c->mutable_content()->add_media(asset.name());
    for (const auto& a : accounts) {
      v1::AccountTarget* t = c->add_targets();
      t->set_account(a);
      t->add_user_lists("fans");
    }
    v1::Campaign created;
    s = v1::CampaignService::NewStub(channel_)->CreateCampaign(Context(key).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message() << herald_->Logs();
    return created.name();
  }

  static inline RedisServer* redis_ = nullptr;
  static inline SimulatorProcess* sim_ = nullptr;
  static inline HeraldProcess* herald_ = nullptr;
  static inline std::shared_ptr<grpc::Channel> channel_;
  static inline std::string setup_error_;
};

TEST_F(WatchRevenueTest, FollowRevenueCarriesPurchasesPastTheFinalStateUntilCancelled) {
  std::vector<std::string> accounts;
  const std::string key = NewTenantWithAccounts("agency", &accounts);
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
  const std::string name = SendPriced("agency", key, accounts);
  ASSERT_FALSE(name.empty());

  v1::WatchCampaignRequest req;
  req.set_name(name);
  req.set_follow_revenue(true);
  auto ctx = Context(key, /*seconds=*/60);
  auto reader = v1::CampaignService::NewStub(channel_)->WatchCampaign(ctx.get(), req);
  std::vector<v1::WatchCampaignResponse> changes;
  std::optional<size_t> final_at;  // index of the first final campaign
  v1::WatchCampaignResponse change;
  bool cancelled = false;
  while (reader->Read(&change)) {
    changes.push_back(change);
    if (change.has_campaign() && IsFinal(change.campaign()) && !final_at) {
      final_at = changes.size() - 1;
    }
    // The campaign is final and every recipient's purchase has arrived, its transaction (the
    // net) included: nothing more will change, and only the client ends a follow_revenue stream.
    if (!cancelled && final_at && change.has_stats() && change.stats().recipients() > 0 &&
        change.stats().purchases() == change.stats().recipients() &&
        change.stats().net_revenue_cents() == change.stats().purchases() * kNetCents) {
      ctx->TryCancel();
      cancelled = true;
    }
  }
  const grpc::Status status = reader->Finish();
  ASSERT_TRUE(cancelled) << "the stream ended by itself: " << status.error_message() << "\n"
                         << herald_->Logs();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED) << status.error_message();
  ASSERT_TRUE(final_at.has_value());
  EXPECT_EQ(changes[*final_at].campaign().state(), v1::Campaign::COMPLETED);

  // The first batch: every delivery, the campaign, then its figures.
  size_t first = 0;
  while (first < changes.size() && changes[first].has_delivery()) ++first;
  EXPECT_EQ(first, static_cast<size_t>(kAccounts));
  ASSERT_LT(first + 1, changes.size());
  EXPECT_TRUE(changes[first].has_campaign());
  ASSERT_TRUE(changes[first + 1].has_stats());
  EXPECT_EQ(changes[first + 1].stats().name(), StrCat(name, "/stats"));

  // Figures are sent only when they changed, and purchases and revenue only grow.
  std::vector<v1::CampaignStats> stats;
  std::vector<size_t> stats_at;
  for (size_t i = 0; i < changes.size(); ++i) {
    if (!changes[i].has_stats()) continue;
    if (!stats.empty()) {
      EXPECT_FALSE(MessageDifferencer::Equals(stats.back(), changes[i].stats())) << i;
      EXPECT_GE(changes[i].stats().purchases(), stats.back().purchases()) << i;
      EXPECT_GE(changes[i].stats().gross_revenue_cents(), stats.back().gross_revenue_cents()) << i;
    }
    stats.push_back(changes[i].stats());
    stats_at.push_back(i);
  }
  ASSERT_GE(stats.size(), 2u);
  EXPECT_GT(stats.back().gross_revenue_cents(), stats.front().gross_revenue_cents());

  // Purchases went on arriving after the final campaign, on the same stream.
  int64_t purchases_at_final = 0;
  for (size_t i = 0; i < stats.size() && stats_at[i] < *final_at; ++i) {
    purchases_at_final = stats[i].purchases();
  }
  EXPECT_LT(purchases_at_final, stats.back().purchases());
  EXPECT_GT(stats_at.back(), *final_at);

  // The last figures: every recipient bought once, to the cent.
  const v1::CampaignStats& last = stats.back();
  EXPECT_EQ(last.recipients(), changes[*final_at].campaign().delivery_counts().recipients());
  EXPECT_EQ(last.purchases(), last.recipients());
  EXPECT_EQ(last.gross_revenue_cents(), last.purchases() * kPriceCents);
  EXPECT_EQ(last.net_revenue_cents(), last.purchases() * kNetCents);
  EXPECT_EQ(last.accounts_size(), kAccounts);

  // Without follow_revenue, a watch of the final campaign ends by itself after the first batch,
  // its figures included.
  v1::WatchCampaignRequest plain;
  plain.set_name(name);
  auto plain_ctx = Context(key);
  auto plain_reader = v1::CampaignService::NewStub(channel_)->WatchCampaign(plain_ctx.get(), plain);
  std::vector<v1::WatchCampaignResponse> ended;
  while (plain_reader->Read(&change)) ended.push_back(change);
  const grpc::Status plain_status = plain_reader->Finish();
  EXPECT_TRUE(plain_status.ok()) << plain_status.error_message();
  ASSERT_EQ(ended.size(), static_cast<size_t>(kAccounts) + 2);
  EXPECT_EQ(ended[kAccounts].campaign().state(), v1::Campaign::COMPLETED);
  ASSERT_TRUE(ended.back().has_stats());
  EXPECT_EQ(ended.back().stats().purchases(), last.purchases());
  EXPECT_EQ(ended.back().stats().gross_revenue_cents(), last.gross_revenue_cents());
}

}  // namespace
}  // namespace herald
