// Webhook ingest and campaign analytics end to end: the real herald binary (all roles), a real
// redis-server and the upstream simulator sending signed webhooks to Herald's ingest port, with
// duplicates and retries; the simulator's ledger is the ground truth for every figure.
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
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/events.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald {
namespace {

namespace json = boost::json;
using testing::HeraldProcess;
using testing::RedisServer;
using testing::SimulatorProcess;

constexpr char kAdminKey[] = "admin-secret-for-webhook-tests";
constexpr int kAccounts = 4;

// What the ledger says of one mass message.
struct LedgerMessage {
  int64_t recipients = 0;
  int64_t sent = 0;
  int64_t viewed = 0;
  int64_t purchases = 0;
  int64_t revenue_cents = 0;
  int64_t net_cents = 0;  // from each purchase, with the platform's 20% fee rounded per purchase
};

class WebhooksTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // AOF with fsync always: what Redis acknowledged survives its restart.
    auto redis = RedisServer::Start({.appendonly = true});
    if (!redis.ok()) {
      setup_error_ = redis.status().ToString();
      return;
    }
    redis_ = redis->release();
    // Every event is delivered, some twice; failed deliveries are retried quickly.
    auto sim = SimulatorProcess::Start(
        {.args = {"--teams=2", StrCat("--accounts_per_team=", kAccounts), "--fans_per_account=30",
                  "--delivery_rate=2000", "--rate_limit_per_minute=100000",
                  "--purchase_probability=1", "--fan_behavior=uniform", "--purchase_delay_min=0s",
                  "--purchase_delay_max=300ms", "--webhook_duplicate_rate=0.3",
                  "--webhook_retry_base=50ms"}});
    if (!sim.ok()) {
      setup_error_ = sim.status().ToString();
      return;
    }
    sim_ = sim->release();
    auto herald = HeraldProcess::Start(
        {.args = {"serve", "--role=all", StrCat("--upstream_url=http://127.0.0.1:", sim_->port()),
                  "--poll_interval=50ms", "--log_level=warn", "--webhook_max_body_bytes=4096",
                  "--reconcile_schedule=300ms,2s"},
         .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", std::string(64, 'b')}},
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

  static std::unique_ptr<grpc::ClientContext> Context(std::string_view key) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", StrCat("Bearer ", key));
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return ctx;
  }

  static std::string NewTenant(const std::string& id) {
    auto tenants = v1::TenantService::NewStub(channel_);
    v1::CreateTenantRequest req;
    req.set_tenant_id(id);
    v1::Tenant tenant;
    grpc::Status s = tenants->CreateTenant(Context(kAdminKey).get(), req, &tenant);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::CreateApiKeyRequest kreq;
    kreq.set_parent(tenant.name());
    v1::CreateApiKeyResponse key;
    s = tenants->CreateApiKey(Context(kAdminKey).get(), kreq, &key);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return key.secret();
  }

  // A team on upstream team `sim_team` (its webhook registered on creation) and its accounts.
  static std::vector<std::string> NewTeam(const std::string& tenant, const std::string& key,
                                          int sim_team, v1::Team* team) {
    auto accounts = v1::AccountService::NewStub(channel_);
    v1::CreateTeamRequest treq;
    treq.set_parent(StrCat("tenants/", tenant));
    treq.set_team_id("main");
    treq.mutable_team()->set_upstream_api_key(StrCat("sim-key-", sim_team));
    treq.mutable_team()->set_rate_limit_per_minute(60000);
    grpc::Status s = accounts->CreateTeam(Context(key).get(), treq, team);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::SyncAccountsRequest sreq;
    sreq.set_team(team->name());
    v1::SyncAccountsResponse synced;
    s = accounts->SyncAccounts(Context(key).get(), sreq, &synced);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> names;
    for (const auto& a : synced.created()) names.push_back(a.name());
    return names;
  }

  static std::string Send(const std::string& tenant, const std::string& key,
                          const std::vector<std::string>& accounts, int64_t price_cents) {
    auto media = v1::MediaService::NewStub(channel_);
    v1::CreateMediaAssetRequest mreq;
    mreq.set_parent(StrCat("tenants/", tenant));
    mreq.mutable_media_asset()->set_type(v1::MediaAsset::IMAGE);
    mreq.mutable_media_asset()->set_source_url("https://cdn.example.com/set.jpg");
    v1::MediaAsset asset;
    grpc::Status s = media->CreateMediaAsset(Context(key).get(), mreq, &asset);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::CreateCampaignRequest req;
    req.set_parent(StrCat("tenants/", tenant));
    v1::Campaign* c = req.mutable_campaign();
    c->mutable_content()->set_text("A new set");
    c->mutable_content()->set_price_cents(price_cents);
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

  static json::value Ledger() {
    auto r = testing::HttpGet(sim_->port(), "/_sim/ledger?purchases=true");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? json::parse(r->body) : json::value();
  }

  // Every message delivered, every purchase made and every webhook delivered (or given up).
  static bool Settled(const json::value& ledger) {
    const json::object& hooks = ledger.at("webhooks").as_object();
    if (hooks.at("backlog").to_number<int64_t>() != 0) return false;
    if (hooks.at("in_flight").to_number<int64_t>() != 0) return false;
    for (const auto& a : ledger.at("accounts").as_array()) {
      for (const auto& m : a.at("mass_messages").as_array()) {
        if (m.at("state").as_string() != "done") return false;
        if (m.at("purchases_pending").to_number<int64_t>() != 0) return false;
      }
    }
    return true;
  }

  static std::map<int64_t, LedgerMessage> LedgerMessages(const json::value& ledger) {
    std::map<int64_t, LedgerMessage> out;
    for (const auto& a : ledger.at("accounts").as_array()) {
      for (const auto& m : a.at("mass_messages").as_array()) {
        LedgerMessage& l = out[m.at("id").to_number<int64_t>()];
        l.recipients = m.at("recipients").to_number<int64_t>();
        l.sent = m.at("sent").to_number<int64_t>();
        l.viewed = m.at("viewed").to_number<int64_t>();
        l.purchases = m.at("purchases").to_number<int64_t>();
        l.revenue_cents = m.at("revenue_cents").to_number<int64_t>();
        for (const auto& b : m.at("buyers").as_array()) {
          const int64_t amount = b.at("amount_cents").to_number<int64_t>();
          l.net_cents += amount - (amount * 20 + 50) / 100;
        }
      }
    }
    return out;
  }

  static v1::CampaignStats Stats(const std::string& key, const std::string& campaign) {
    v1::GetCampaignStatsRequest req;
    req.set_name(StrCat(campaign, "/stats"));
    v1::CampaignStats stats;
    grpc::Status s =
        v1::AnalyticsService::NewStub(channel_)->GetCampaignStats(Context(key).get(), req, &stats);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return stats;
  }

  // The campaign's figures equal the ledger's, account by account, to the cent.
  static void ExpectStatsMatchLedger(const std::string& key, const std::string& campaign,
                                     const std::map<int64_t, LedgerMessage>& ledger) {
    const v1::CampaignStats stats = Stats(key, campaign);
    int64_t purchases = 0, gross = 0, net = 0, sent = 0;
    for (const v1::AccountStats& a : stats.accounts()) {
      SCOPED_TRACE(a.account());
      ASSERT_NE(a.upstream_message_id(), 0);
      ASSERT_TRUE(ledger.contains(a.upstream_message_id()));
      const LedgerMessage& l = ledger.at(a.upstream_message_id());
      EXPECT_EQ(a.recipients(), l.recipients);
      EXPECT_EQ(a.sent(), l.sent);
      EXPECT_EQ(a.purchases(), l.purchases);
      EXPECT_EQ(a.gross_revenue_cents(), l.revenue_cents);
      EXPECT_EQ(a.net_revenue_cents(), l.net_cents);
      purchases += l.purchases;
      gross += l.revenue_cents;
      net += l.net_cents;
      sent += l.sent;
    }
    EXPECT_EQ(stats.purchases(), purchases);
    EXPECT_EQ(stats.gross_revenue_cents(), gross);
    EXPECT_EQ(stats.net_revenue_cents(), net);
    EXPECT_EQ(stats.fee_cents(), gross - net);
    EXPECT_EQ(stats.sent(), sent);
    EXPECT_DOUBLE_EQ(stats.unlock_rate(), sent > 0 ? static_cast<double>(purchases) / sent : 0);
  }

  // Views reach Herald only through reconciliation (no event reports them): waits for its first
  // round, then each account's views and the campaign's view rate equal the ledger's.
  static void ExpectViewsMatchLedger(const std::string& key, const std::string& campaign,
                                     const std::map<int64_t, LedgerMessage>& ledger) {
    v1::CampaignStats stats;
    const bool read = testing::WaitFor(
        [&] {
          stats = Stats(key, campaign);
          return std::all_of(stats.accounts().begin(), stats.accounts().end(),
                             [&](const v1::AccountStats& a) {
                               return ledger.contains(a.upstream_message_id()) &&
                                      a.viewed() == ledger.at(a.upstream_message_id()).viewed;
                             });
        },
        absl::Seconds(30));
    EXPECT_TRUE(read) << stats.DebugString();
    int64_t viewed = 0;
    for (const v1::AccountStats& a : stats.accounts()) {
      viewed += ledger.at(a.upstream_message_id()).viewed;
    }
    EXPECT_GT(viewed, 0);
    EXPECT_EQ(stats.viewed(), viewed);
    EXPECT_DOUBLE_EQ(stats.view_rate(),
                     stats.sent() > 0 ? static_cast<double>(viewed) / stats.sent() : 0);
  }

  static inline RedisServer* redis_ = nullptr;
  static inline SimulatorProcess* sim_ = nullptr;
  static inline HeraldProcess* herald_ = nullptr;
  static inline std::shared_ptr<grpc::Channel> channel_;
  static inline std::string setup_error_;
};

TEST_F(WebhooksTest, RevenueOfEveryCampaignEqualsTheLedgerToTheCent) {
  const std::string key = NewTenant("agency");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("agency", key, 1, &team);
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
  EXPECT_TRUE(team.webhook_id().starts_with("wh_")) << team.webhook_error();
  EXPECT_EQ(team.webhook_error(), "");

  // Everyone buys the first campaign; about one in twenty the second and third.
  const std::string first = Send("agency", key, accounts, 999);
  auto settled_with = [](int64_t messages) {
    const json::value ledger = Ledger();
    return ledger.is_object() && Settled(ledger) &&
           ledger.at("totals").at("mass_messages").to_number<int64_t>() == messages;
  };
  ASSERT_TRUE(testing::WaitFor([&] { return settled_with(kAccounts); }, absl::Seconds(60)))
      << herald_->Logs();
  auto behaviour = testing::HttpRequest(sim_->port(), "POST", "/_sim/behavior",
                                        R"({"purchase_probability": 0.05})");
  ASSERT_TRUE(behaviour.ok() && behaviour->status == 200);
  // The secret is rotated between campaigns: the same upstream webhook, a new secret, and no
  // event lost on the way.
  v1::RegisterTeamWebhookRequest rreq;
  rreq.set_name(team.name());
  v1::Team rotated;
  grpc::Status rs = v1::AccountService::NewStub(channel_)->RegisterTeamWebhook(Context(key).get(),
                                                                               rreq, &rotated);
  ASSERT_TRUE(rs.ok()) << rs.error_message();
  EXPECT_EQ(rotated.webhook_id(), team.webhook_id());
  const std::string second = Send("agency", key, accounts, 1250);
  const std::string third = Send("agency", key, {accounts[0], accounts[1]}, 300);

  ASSERT_TRUE(testing::WaitFor([&] { return settled_with(2 * kAccounts + 2); }, absl::Seconds(60)))
      << herald_->Logs();
  const json::value ledger = Ledger();
  const auto messages = LedgerMessages(ledger);
  // No delivery was given up: what a rotation refused for a moment (signed with the new secret
  // before the ingest re-read the team) was taken on a retry.
  EXPECT_EQ(ledger.at("webhooks")
                .at("by_event")
                .at("transactions.new")
                .at("gave_up")
                .to_number<int64_t>(),
            0);
  EXPECT_EQ(
      ledger.at("webhooks").at("by_event").at("messages.sent").at("gave_up").to_number<int64_t>(),
      0);
  // Every webhook was acknowledged (duplicates included), so Herald's figures are final.
  EXPECT_GT(ledger.at("webhooks")
                .at("by_event")
                .at("messages.sent")
                .at("duplicates")
                .to_number<int64_t>(),
            0);
  for (const std::string& campaign : {first, second, third}) {
    SCOPED_TRACE(campaign);
    ExpectStatsMatchLedger(key, campaign, messages);
    ExpectViewsMatchLedger(key, campaign, messages);
  }
  // At probability 1 every recipient of the first campaign bought it.
  const v1::CampaignStats first_stats = Stats(key, first);
  EXPECT_GT(first_stats.recipients(), 0);
  EXPECT_EQ(first_stats.purchases(), first_stats.recipients());

  // The tenant's ranking, by gross revenue.
  v1::TopCampaignsRequest treq;
  treq.set_parent("tenants/agency");
  v1::TopCampaignsResponse top;
  grpc::Status ts =
      v1::AnalyticsService::NewStub(channel_)->TopCampaigns(Context(key).get(), treq, &top);
  ASSERT_TRUE(ts.ok()) << ts.error_message();
  ASSERT_EQ(top.campaigns_size(), 3);
  for (int i = 0; i < 3; ++i) {
    const v1::RankedCampaign& r = top.campaigns(i);
    EXPECT_EQ(r.stats().gross_revenue_cents(), Stats(key, r.campaign()).gross_revenue_cents());
    if (i > 0) {
      EXPECT_GE(top.campaigns(i - 1).stats().gross_revenue_cents(),
                r.stats().gross_revenue_cents());
    }
  }
  EXPECT_EQ(top.campaigns(0).campaign(), first);  // everyone bought it

  // Each account's totals: its three (or two) messages on the ledger.
  for (const std::string& account : accounts) {
    v1::GetAccountOverviewRequest oreq;
    oreq.set_name(account);
    v1::AccountOverview overview;
    grpc::Status os = v1::AnalyticsService::NewStub(channel_)->GetAccountOverview(
        Context(key).get(), oreq, &overview);
    ASSERT_TRUE(os.ok()) << os.error_message();
    int64_t purchases = 0, gross = 0;
    for (const auto& a : ledger.at("accounts").as_array()) {
      if (!account.ends_with(StrCat("/", std::string(a.at("account_id").as_string())))) continue;
      purchases = a.at("totals").at("purchases").to_number<int64_t>();
      gross = a.at("totals").at("revenue_cents").to_number<int64_t>();
    }
    EXPECT_EQ(overview.purchases(), purchases) << account;
    EXPECT_EQ(overview.gross_revenue_cents(), gross) << account;
  }

  // Buyers of the first campaign: every fan of every account, each with the price.
  v1::ListCampaignBuyersRequest breq;
  breq.set_parent(first);
  breq.set_page_size(50);
  int buyers = 0;
  for (;;) {
    v1::ListCampaignBuyersResponse page;
    grpc::Status s = v1::AnalyticsService::NewStub(channel_)->ListCampaignBuyers(Context(key).get(),
                                                                                 breq, &page);
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (const v1::Buyer& b : page.buyers()) {
      EXPECT_EQ(b.spent_cents(), 999);
      ++buyers;
    }
    if (page.next_page_token().empty()) break;
    breq.set_page_token(page.next_page_token());
  }
  EXPECT_EQ(buyers, first_stats.recipients());
}

TEST_F(WebhooksTest, PurchasesWhoseWebhooksWereLostAreRepairedByReconciliation) {
  const std::string key = NewTenant("paused");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("paused", key, 2, &team);
  ASSERT_TRUE(team.webhook_id().starts_with("wh_")) << team.webhook_error();
  // The upstream pauses the endpoint: events that happen meanwhile are never delivered.
  auto paused = testing::HttpRequest(
      sim_->port(), "PUT", StrCat("/api/webhooks/", team.webhook_id()), R"({"enabled": false})",
      {{"Authorization", "Bearer sim-key-2"}, {"Content-Type", "application/json"}});
  ASSERT_TRUE(paused.ok() && paused->status == 200) << (paused.ok() ? paused->body : "");

  const std::string campaign = Send("paused", key, accounts, 700);
  v1::CampaignStats stats;
  json::value ledger;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        ledger = Ledger();
        if (!ledger.is_object() || !Settled(ledger)) return false;
        // This team's accounts only: the suite's other tests send on the other team.
        int64_t messages = 0, purchases = 0;
        for (const auto& a : ledger.at("accounts").as_array()) {
          const std::string id(a.at("account_id").as_string());
          if (std::none_of(accounts.begin(), accounts.end(),
                           [&](const std::string& n) { return n.ends_with("/" + id); })) {
            continue;
          }
          messages += static_cast<int64_t>(a.at("mass_messages").as_array().size());
          purchases += a.at("totals").at("purchases").to_number<int64_t>();
        }
        if (messages != kAccounts) return false;
        stats = Stats(key, campaign);
        return stats.purchases() == purchases;
      },
      absl::Seconds(60)))
      << "herald " << stats.purchases() << " purchases\n"
      << herald_->Logs();
  EXPECT_GT(stats.purchases(), 0);
  EXPECT_EQ(stats.reconciled_purchases(), stats.purchases());
  ExpectStatsMatchLedger(key, campaign, LedgerMessages(ledger));
  ExpectViewsMatchLedger(key, campaign, LedgerMessages(ledger));
}

TEST_F(WebhooksTest, EventStreamDeliversEachPurchaseOnceAcrossAResume) {
  const std::string key = NewTenant("streams");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("streams", key, 1, &team);
  auto behaviour = testing::HttpRequest(sim_->port(), "POST", "/_sim/behavior",
                                        R"({"purchase_probability": 1, "delivery_rate": 2000})");
  ASSERT_TRUE(behaviour.ok() && behaviour->status == 200);
  const std::string campaign = Send("streams", key, accounts, 555);
  int64_t expected = 0;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const json::value ledger = Ledger();
        if (!Settled(ledger)) return false;
        int64_t messages = 0;
        expected = 0;
        for (const auto& a : ledger.at("accounts").as_array()) {
          for (const auto& m : a.at("mass_messages").as_array()) {
            if (m.at("price_cents").to_number<int64_t>() != 555) continue;
            ++messages;
            expected += m.at("purchases").to_number<int64_t>();
          }
        }
        return messages == kAccounts;
      },
      absl::Seconds(60)));
  ASSERT_GT(expected, 3);

  auto events = v1::EventService::NewStub(channel_);
  v1::SubscribeRequest req;
  req.set_parent("tenants/streams");
  req.add_event_types("transactions.new");
  req.set_cursor("0");                  // from the oldest kept
  std::map<std::string, int64_t> seen;  // cursor -> amount
  std::string resume_after;
  {
    auto ctx = Context(key);
    auto reader = events->Subscribe(ctx.get(), req);
    v1::Event e;
    while (static_cast<int>(seen.size()) < 3 && reader->Read(&e)) {
      EXPECT_EQ(e.event_type(), "transactions.new");
      seen[e.cursor()] = e.amount_cents();
      resume_after = e.cursor();
    }
    ctx->TryCancel();
    reader->Finish();
  }
  ASSERT_EQ(seen.size(), 3u);
  req.set_cursor(resume_after);
  {
    auto ctx = Context(key);
    auto reader = events->Subscribe(ctx.get(), req);
    v1::Event e;
    while (static_cast<int64_t>(seen.size()) < expected && reader->Read(&e)) {
      EXPECT_FALSE(seen.contains(e.cursor())) << "delivered twice: " << e.cursor();
      EXPECT_TRUE(e.account().starts_with("tenants/streams/accounts/acct_"));
      seen[e.cursor()] = e.amount_cents();
    }
    ctx->TryCancel();
    reader->Finish();
  }
  ASSERT_EQ(static_cast<int64_t>(seen.size()), expected);
  for (const auto& [cursor, amount] : seen) EXPECT_EQ(amount, 555) << cursor;

  // Another tenant's stream, a malformed cursor, and no key are refused.
  auto refused = [&](const std::string& parent, const std::string& cursor, const std::string& k) {
    v1::SubscribeRequest bad;
    bad.set_parent(parent);
    bad.set_cursor(cursor);
    auto ctx = Context(k);
    auto reader = events->Subscribe(ctx.get(), bad);
    v1::Event e;
    EXPECT_FALSE(reader->Read(&e));
    return reader->Finish().error_code();
  };
  EXPECT_EQ(refused("tenants/agency", "0", key), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(refused("tenants/streams", "yesterday", key), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(refused("tenants/streams", "0", "wrong-key"), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(WebhooksTest, ForgedUnsignedAndMisaddressedDeliveriesAreRefused) {
  const std::string key = NewTenant("forger");
  v1::Team team;
  NewTeam("forger", key, 2, &team);
  const std::string body =
      R"({"event":"transactions.new","account_id":"acct_x","payload":{"id":"t1","amount":100,)"
      R"("description":"?firstId=1"}})";
  const std::map<std::string, std::string> json_type = {{"Content-Type", "application/json"},
                                                        {"X-OFAPI-Idempotency-Key", "evt_f1"}};
  auto post = [&](std::string target, std::map<std::string, std::string> headers) {
    auto r = testing::HttpRequest(herald_->ingest_port(), "POST", target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->status : 0;
  };
  EXPECT_EQ(post("/webhooks/forger.main", json_type), 401);  // unsigned
  auto forged = json_type;
  forged["Signature"] = std::string(64, 'a');
  EXPECT_EQ(post("/webhooks/forger.main", forged), 401);
  EXPECT_EQ(post("/webhooks/forger.nope", forged), 404);
  // Another tenant's endpoint: its own secret, so the forger's signature is refused there too.
  const std::string other_key = NewTenant("bystander");
  v1::Team other;
  NewTeam("bystander", other_key, 2, &other);
  EXPECT_EQ(post("/webhooks/bystander.main", forged), 401);
  auto text = forged;
  text["Content-Type"] = "text/plain";
  EXPECT_EQ(post("/webhooks/forger.main", text), 415);
  auto r = testing::HttpRequest(herald_->ingest_port(), "POST", "/webhooks/forger.main",
                                std::string(8192, 'x'), forged);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413);
  auto get = testing::HttpRequest(herald_->ingest_port(), "GET", "/webhooks/forger.main");
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->status, 405);
}

TEST_F(WebhooksTest, RedisOutageMidStreamIsAnsweredWith503AndNothingAcknowledgedIsLost) {
  const std::string key = NewTenant("outage");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("outage", key, 1, &team);
  ASSERT_TRUE(team.webhook_id().starts_with("wh_")) << team.webhook_error();
  // A slower delivery, so that events are still arriving when Redis goes away.
  auto behaviour = testing::HttpRequest(
      sim_->port(), "POST", "/_sim/behavior",
      R"({"purchase_probability": 1, "delivery_rate": 20, "purchase_delay_max_ms": 300})");
  ASSERT_TRUE(behaviour.ok() && behaviour->status == 200);
  auto failures = [] {
    const json::value ledger = Ledger();
    int64_t n = 0;
    for (const auto& a : ledger.at("accounts").as_array()) {
      n += a.at("webhooks").at("failures").to_number<int64_t>();
    }
    return n;
  };
  const int64_t failures_before = failures();

  const std::string campaign = Send("outage", key, accounts, 450);
  // This campaign's messages (the only ones at $4.50) have started to reach fans.
  ASSERT_TRUE(testing::WaitFor([&] {
    const json::value ledger = Ledger();
    for (const auto& a : ledger.at("accounts").as_array()) {
      for (const auto& m : a.at("mass_messages").as_array()) {
        if (m.at("price_cents").to_number<int64_t>() == 450 &&
            m.at("sent").to_number<int64_t>() > 0) {
          return true;
        }
      }
    }
    return false;
  }));
  ASSERT_TRUE(redis_->Stop(/*graceful=*/false).ok());
  // Deliveries now fail (503) and the upstream retries them.
  EXPECT_TRUE(testing::WaitFor([&] { return failures() > failures_before; }));
  ASSERT_TRUE(redis_->Restart().ok());

  v1::CampaignStats stats;
  json::value ledger;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        ledger = Ledger();
        if (!Settled(ledger)) return false;
        int64_t purchases = 0, messages = 0;
        for (const auto& a : ledger.at("accounts").as_array()) {
          const std::string id(a.at("account_id").as_string());
          if (std::none_of(accounts.begin(), accounts.end(),
                           [&](const std::string& n) { return n.ends_with("/" + id); })) {
            continue;
          }
          for (const auto& m : a.at("mass_messages").as_array()) {
            if (m.at("price_cents").to_number<int64_t>() == 450) {
              ++messages;
              purchases += m.at("purchases").to_number<int64_t>();
            }
          }
        }
        if (messages != kAccounts) return false;
        stats = Stats(key, campaign);
        return stats.purchases() == purchases;
      },
      absl::Seconds(90)))
      << "herald " << stats.purchases() << " purchases\n"
      << herald_->Logs();
  // Every event was retried until Herald took it (none given up), and counted once.
  EXPECT_EQ(ledger.at("webhooks")
                .at("by_event")
                .at("transactions.new")
                .at("gave_up")
                .to_number<int64_t>(),
            0);
  ExpectStatsMatchLedger(key, campaign, LedgerMessages(ledger));
}

}  // namespace
}  // namespace herald
