// Campaigns under upstream faults and worker crashes: every delivery ends sent or failed with a
// reason, and the simulator's ledger never shows a second message for a (campaign, account).
#include <boost/json.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/net.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/wait.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald {
namespace {

namespace json = boost::json;
using testing::HeraldProcess;
using testing::RedisServer;
using testing::SimulatorProcess;

constexpr char kAdminKey[] = "admin-key-faults";
constexpr int kAccounts = 12;

class CampaignFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = RedisServer::Start({.appendonly = true});
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
    auto sim = SimulatorProcess::Start(
        {.args = {"--teams=1", StrCat("--accounts_per_team=", kAccounts), "--fans_per_account=30",
                  "--delivery_rate=2000", "--rate_limit_per_minute=100000"}});
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
    ASSERT_NO_FATAL_FAILURE(StartHerald());
  }

  void StartHerald() {
    auto herald = HeraldProcess::Start(
        {.args = {"serve", "--role=all", StrCat("--upstream_url=http://127.0.0.1:", sim_->port()),
                  "--poll_interval=50ms", "--lease_duration=3s", "--log_level=warn"},
         .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", std::string(64, 'b')}},
         .redis_port = redis_->port()});
    ASSERT_TRUE(herald.ok()) << herald.status();
    herald_ = *std::move(herald);
    channel_ = grpc::CreateChannel(herald_->grpc_target(), grpc::InsecureChannelCredentials());
  }

  std::unique_ptr<grpc::ClientContext> Context(std::string_view key) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", StrCat("Bearer ", key));
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return ctx;
  }

  // A tenant with a team on the simulator's team, its accounts and a media asset: returns the
  // tenant key, fills `accounts` and `media`.
  std::string Prepare(std::vector<std::string>& accounts, std::string& media) {
    auto tenants = v1::TenantService::NewStub(channel_);
    v1::CreateTenantRequest treq;
    treq.set_tenant_id("agency");
    v1::Tenant tenant;
    EXPECT_TRUE(tenants->CreateTenant(Context(kAdminKey).get(), treq, &tenant).ok());
    v1::CreateApiKeyRequest kreq;
    kreq.set_parent("tenants/agency");
    v1::CreateApiKeyResponse key;
    EXPECT_TRUE(tenants->CreateApiKey(Context(kAdminKey).get(), kreq, &key).ok());
    auto account_stub = v1::AccountService::NewStub(channel_);
    v1::CreateTeamRequest team_req;
    team_req.set_parent("tenants/agency");
    team_req.set_team_id("main");
    team_req.mutable_team()->set_upstream_api_key("sim-key-1");
    team_req.mutable_team()->set_rate_limit_per_minute(60000);
    v1::Team team;
    EXPECT_TRUE(account_stub->CreateTeam(Context(key.secret()).get(), team_req, &team).ok());
    v1::SyncAccountsRequest sync;
    sync.set_team(team.name());
    v1::SyncAccountsResponse synced;
    EXPECT_TRUE(account_stub->SyncAccounts(Context(key.secret()).get(), sync, &synced).ok());
    for (const auto& a : synced.created()) accounts.push_back(a.name());
    auto media_stub = v1::MediaService::NewStub(channel_);
    v1::CreateMediaAssetRequest mreq;
    mreq.set_parent("tenants/agency");
    mreq.mutable_media_asset()->set_type(v1::MediaAsset::IMAGE);
    mreq.mutable_media_asset()->set_source_url("https://cdn.example.com/a.jpg");
    v1::MediaAsset asset;
    EXPECT_TRUE(media_stub->CreateMediaAsset(Context(key.secret()).get(), mreq, &asset).ok());
    media = asset.name();
    return key.secret();
  }

  std::string CreateCampaign(const std::string& key, const std::vector<std::string>& accounts,
                             const std::string& media) {
    v1::CreateCampaignRequest req;
    req.set_parent("tenants/agency");
    req.mutable_campaign()->mutable_content()->set_text("Faults or not, once");
    req.mutable_campaign()->mutable_content()->set_price_cents(900);
    req.mutable_campaign()->mutable_content()->add_media(media);
    for (const auto& a : accounts) {
      auto* t = req.mutable_campaign()->add_targets();
      t->set_account(a);
      t->add_user_lists("fans");
    }
    v1::Campaign created;
    grpc::Status s =
        v1::CampaignService::NewStub(channel_)->CreateCampaign(Context(key).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return created.name();
  }

  std::vector<v1::Delivery> Deliveries(const std::string& key, const std::string& campaign) {
    v1::ListDeliveriesRequest req;
    req.set_parent(campaign);
    v1::ListDeliveriesResponse resp;
    grpc::Status s =
        v1::CampaignService::NewStub(channel_)->ListDeliveries(Context(key).get(), req, &resp);
    if (!s.ok()) return {};
    return {resp.deliveries().begin(), resp.deliveries().end()};
  }

  v1::Campaign Get(const std::string& key, const std::string& campaign) {
    v1::GetCampaignRequest req;
    req.set_name(campaign);
    v1::Campaign c;
    v1::CampaignService::NewStub(channel_)->GetCampaign(Context(key).get(), req, &c);
    return c;
  }

  bool Final(const v1::Campaign& c) {
    return c.state() == v1::Campaign::COMPLETED || c.state() == v1::Campaign::PARTIALLY_FAILED ||
           c.state() == v1::Campaign::FAILED;
  }

  // Mass messages per upstream account on the ledger.
  std::map<std::string, int> Ledger() {
    std::map<std::string, int> out;
    auto r = testing::HttpGet(sim_->port(), "/_sim/ledger?all=true");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return out;
    const json::value ledger = json::parse(r->body);
    for (const auto& a : ledger.at("accounts").as_array()) {
      out[std::string(a.at("account_id").as_string())] =
          static_cast<int>(a.at("mass_messages").as_array().size());
    }
    return out;
  }

  // Every delivery ended sent (completed) or failed with a reason; at most one message each.
  void ExpectSettled(const std::string& key, const std::string& campaign,
                     const std::vector<std::string>& accounts) {
    const auto ledger = Ledger();
    for (const v1::Delivery& d : Deliveries(key, campaign)) {
      const std::string upstream = d.account().substr(d.account().rfind('/') + 1);
      const int messages = ledger.contains(upstream) ? ledger.at(upstream) : 0;
      EXPECT_LE(messages, 1) << upstream << " got a second message";
      if (d.state() == v1::Delivery::COMPLETED) {
        EXPECT_EQ(messages, 1) << upstream;
      } else {
        EXPECT_EQ(d.state(), v1::Delivery::FAILED) << upstream;
        EXPECT_FALSE(d.error().empty()) << upstream;
      }
    }
    EXPECT_EQ(Deliveries(key, campaign).size(), accounts.size());
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<SimulatorProcess> sim_;
  std::unique_ptr<HeraldProcess> herald_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(CampaignFaultsTest, ServerErrorsResetsAndLostResponses) {
  std::vector<std::string> accounts;
  std::string media;
  const std::string key = Prepare(accounts, media);
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
  // Every kind of failure on the upstream's mutations and reads, for a while.
  auto fault = testing::HttpRequest(
      sim_->port(), "POST", "/_sim/faults",
      R"({"error_rate":0.1,"error_status":503,"reset_rate":0.05,"commit_then_lose_rate":0.1,)"
      R"("count":60})");
  ASSERT_TRUE(fault.ok() && fault->status == 200);
  const std::string campaign = CreateCampaign(key, accounts, media);
  ASSERT_TRUE(testing::WaitFor([&] { return Final(Get(key, campaign)); }, absl::Seconds(90)))
      << Get(key, campaign).DebugString() << herald_->Logs();
  ExpectSettled(key, campaign, accounts);
  EXPECT_EQ(Get(key, campaign).state(), v1::Campaign::COMPLETED)
      << Get(key, campaign).state_reason();
}

TEST_F(CampaignFaultsTest, WorkerKilledMidSendIsReconciledByItsSuccessor) {
  std::vector<std::string> accounts;
  std::string media;
  const std::string key = Prepare(accounts, media);
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
  // Sends take a while, so the kill lands while some are in flight.
  auto fault = testing::HttpRequest(
      sim_->port(), "POST", "/_sim/faults",
      R"({"methods":["POST"],"path_contains":"/mass-messaging","latency_ms":{"fixed":400}})");
  ASSERT_TRUE(fault.ok() && fault->status == 200);
  const std::string campaign = CreateCampaign(key, accounts, media);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (const auto& d : Deliveries(key, campaign)) {
          if (d.state() == v1::Delivery::SENDING) return true;
        }
        return false;
      },
      absl::Seconds(30)));
  herald_->process().Kill();  // SIGKILL: no drain, leases left behind
  ASSERT_NO_FATAL_FAILURE(StartHerald());
  ASSERT_TRUE(testing::WaitFor([&] { return Final(Get(key, campaign)); }, absl::Seconds(90)))
      << Get(key, campaign).DebugString() << herald_->Logs();
  ExpectSettled(key, campaign, accounts);
  EXPECT_EQ(Get(key, campaign).state(), v1::Campaign::COMPLETED)
      << Get(key, campaign).state_reason();
}

}  // namespace
}  // namespace herald
