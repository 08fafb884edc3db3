// Webhook ingest and campaign analytics end to end: the real herald binary (all roles), a real
// redis-server and the upstream simulator sending signed webhooks to Herald's ingest port, with
// duplicates and retries; the simulator's ledger is the ground truth for every figure.
#include <map>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/store/crypto.h>
#include <herald/store/record_store.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_stack_suite.h>
#include <herald/testing/net.h>
#include <herald/testing/observability.h>
#include <herald/testing/redis_sync.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/wait.h>
#include <herald/testing/webhook_events.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/events.grpc.pb.h>

namespace herald {
namespace {

namespace json = boost::json;
using testing::BearerContext;
using testing::HeraldStack;

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

// Team "main" of `tenant` on upstream team 3, without accounts, with the webhook signing secret
// `secret` (none registered).
v1::Team CreateTeamWithSecret(HeraldStack& stack, const std::string& tenant, const std::string& key,
                              const std::string& secret) {
  v1::CreateTeamRequest create;
  create.set_parent(StrCat("tenants/", tenant));
  create.set_team_id("main");
  create.mutable_team()->set_upstream_api_key("sim-key-3");
  create.mutable_team()->set_webhook_signing_secret(secret);
  v1::Team team;
  const grpc::Status s = v1::AccountService::NewStub(stack.channel())
                             ->CreateTeam(BearerContext(key).get(), create, &team);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return team;
}

// Posts transactions.new number `n` (amount n dollars, key evt_<tenant><n>) to `team`'s
// endpoint, signed with `secret`; returns the HTTP status (0 when there was no answer).
int PostTransactionTo(HeraldStack& stack, const v1::Team& team, const std::string& secret, int n) {
  const std::string body =
      StrCat(R"({"event":"transactions.new","account_id":"acct_x","payload":{"id":"t)", n,
             R"(","amount":)", n, R"(,"description":"?firstId=1"}})");
  const std::map<std::string, std::string> headers = {
      {"Content-Type", "application/json"},
      {"X-OFAPI-Idempotency-Key", StrCat("evt_", team.name(), "_", n)},
      {"Signature", store::HmacSha256Hex(secret, body)}};
  auto r = testing::HttpRequest(stack.herald().ingest_port(), "POST", team.webhook_endpoint(), body,
                                headers);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->status : 0;
}

class WebhooksTest : public testing::HeraldStackSuite<WebhooksTest> {
 public:
  static HeraldStack::Options StackOptions() {
    // Every event is delivered, some twice; failed deliveries are retried quickly. Redis runs
    // with AOF and fsync always: what it acknowledged survives its restart.
    return {.redis = {.appendonly = true},
            .simulator_args = {"--teams=2", StrCat("--accounts_per_team=", kAccounts),
                               "--fans_per_account=30", "--delivery_rate=2000",
                               "--rate_limit_per_minute=100000", "--purchase_probability=1",
                               "--fan_behavior=uniform", "--purchase_delay_min=0s",
                               "--purchase_delay_max=300ms", "--webhook_duplicate_rate=0.3",
                               "--webhook_retry_base=50ms",
                               // Buyers come two fewer per page than asked: only the upstream's
                               // next_page link says where the list goes on.
                               "--buyer_page_shortfall=2"},
            .herald_args = {"--poll_interval=50ms", "--log_level=warn",
                            "--webhook_max_body_bytes=4096", "--reconcile_schedule=300ms,2s",
                            // Each message's 30 buyers take six pages of five.
                            "--reconcile_page=7"},
            .admin_key = kAdminKey,
            .encryption_key = std::string(64, 'b'),
            .register_webhooks = true};
  }

 protected:
  static std::string NewTenant(const std::string& id) {
    auto key = testing::CreateTenant(stack_->channel(), kAdminKey, id);
    EXPECT_TRUE(key.ok()) << key.status();
    return key.value_or("");
  }

  // A team on upstream team `sim_team` (its webhook registered on creation) and its accounts.
  static std::vector<std::string> NewTeam(const std::string& tenant, const std::string& key,
                                          int sim_team, v1::Team* team) {
    auto created =
        testing::CreateTeamWithAccounts(stack_->channel(), key, tenant, {.sim_team = sim_team});
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return {};
    *team = created->team;
    return created->accounts;
  }

  // Team "main" of `tenant` with the signing secret `secret` of its own (on upstream team 3,
  // which the simulator does not deliver to: only the events a test posts reach it).
  static v1::Team NewTeamWithSecret(const std::string& tenant, const std::string& key,
                                    const std::string& secret) {
    return CreateTeamWithSecret(*stack_, tenant, key, secret);
  }

  static int PostTransaction(const v1::Team& team, const std::string& secret, int n) {
    return PostTransactionTo(*stack_, team, secret, n);
  }

  // Team "main" of `tenant` on upstream team 2, without accounts (its webhook registered).
  static v1::Team NewBareTeam(const std::string& tenant, const std::string& key) {
    v1::CreateTeamRequest create;
    create.set_parent(StrCat("tenants/", tenant));
    create.set_team_id("main");
    create.mutable_team()->set_upstream_api_key("sim-key-2");
    v1::Team team;
    const grpc::Status s = v1::AccountService::NewStub(stack_->channel())
                               ->CreateTeam(BearerContext(key).get(), create, &team);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return team;
  }

  // The ids of the webhooks registered upstream with upstream team 2's key (whose URL ends with
  // `endpoint`, when given).
  static std::vector<std::string> UpstreamWebhooks(std::string_view endpoint = "") {
    std::vector<std::string> ids;
    auto r = testing::HttpRequest(stack_->sim().port(), "GET", "/api/webhooks", "",
                                  {{"Authorization", "Bearer sim-key-2"}});
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    if (!r.ok() || r->status != 200) return ids;
    const json::value listed = json::parse(r->body);
    for (const json::value& w : listed.at("data").as_array()) {
      if (!w.at("url").as_string().ends_with(endpoint)) continue;
      ids.emplace_back(w.at("id").as_string());
    }
    return ids;
  }

  static grpc::Status DeleteTeam(const std::string& key, const std::string& name) {
    v1::DeleteTeamRequest remove;
    remove.set_name(name);
    v1::DeleteTeamResponse removed;
    return v1::AccountService::NewStub(stack_->channel())
        ->DeleteTeam(BearerContext(key).get(), remove, &removed);
  }

  static std::string Send(const std::string& tenant, const std::string& key,
                          const std::vector<std::string>& accounts, int64_t price_cents) {
    auto media = testing::CreateMediaAsset(stack_->channel(), key, tenant, v1::MediaAsset::IMAGE,
                                           "https://cdn.example.com/set.jpg");
    EXPECT_TRUE(media.ok()) << media.status();
    const v1::CreateCampaignRequest req =
        testing::CampaignToFans(tenant, accounts, "A new set", price_cents, media.value_or(""));
    v1::Campaign created;
    grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                         ->CreateCampaign(BearerContext(key).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message() << stack_->herald().Logs();
    return created.name();
  }

  static json::value Ledger() {
    auto ledger = testing::ReadLedger(stack_->sim().port(), "purchases=true");
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return ledger.ok() ? *std::move(ledger) : json::value();
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
    grpc::Status s = v1::AnalyticsService::NewStub(stack_->channel())
                         ->GetCampaignStats(BearerContext(key).get(), req, &stats);
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
      EXPECT_EQ(a.fee_cents(), l.revenue_cents - l.net_cents);
      EXPECT_DOUBLE_EQ(a.unlock_rate(), l.sent > 0 ? static_cast<double>(l.purchases) / l.sent : 0);
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
      const LedgerMessage& l = ledger.at(a.upstream_message_id());
      EXPECT_DOUBLE_EQ(a.view_rate(), l.sent > 0 ? static_cast<double>(l.viewed) / l.sent : 0);
    }
    EXPECT_GT(viewed, 0);
    EXPECT_EQ(stats.viewed(), viewed);
    EXPECT_DOUBLE_EQ(stats.view_rate(),
                     stats.sent() > 0 ? static_cast<double>(viewed) / stats.sent() : 0);
  }

  // Sends a campaign at `price` from `tenant`'s team on upstream team 2, whose webhook the
  // upstream has paused: its purchases reach Herald through reconciliation alone.
  static void ExpectLostPurchasesRepairedByReconciliation(const std::string& tenant,
                                                          int64_t price) {
    const std::string key = NewTenant(tenant);
    v1::Team team;
    const std::vector<std::string> accounts = NewTeam(tenant, key, 2, &team);
    ASSERT_TRUE(team.webhook_id().starts_with("wh_")) << team.webhook_error();
    // The upstream pauses the endpoint: events that happen meanwhile are never delivered.
    auto paused = testing::HttpRequest(
        stack_->sim().port(), "PUT", StrCat("/api/webhooks/", team.webhook_id()),
        R"({"enabled": false})",
        {{"Authorization", "Bearer sim-key-2"}, {"Content-Type", "application/json"}});
    ASSERT_TRUE(paused.ok() && paused->status == 200) << (paused.ok() ? paused->body : "");

    const std::string campaign = Send(tenant, key, accounts, price);
    v1::CampaignStats stats;
    json::value ledger;
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          ledger = Ledger();
          if (!ledger.is_object() || !Settled(ledger)) return false;
          // This campaign's messages only: the team's accounts are other tenants' too.
          int64_t messages = 0, purchases = 0;
          for (const auto& a : ledger.at("accounts").as_array()) {
            for (const auto& m : a.at("mass_messages").as_array()) {
              if (m.at("price_cents").to_number<int64_t>() != price) continue;
              ++messages;
              purchases += m.at("purchases").to_number<int64_t>();
            }
          }
          if (messages != kAccounts) return false;
          stats = Stats(key, campaign);
          return stats.purchases() == purchases;
        },
        absl::Seconds(60)))
        << "herald " << stats.purchases() << " purchases\n"
        << stack_->herald().Logs();
    EXPECT_GT(stats.purchases(), 0);
    EXPECT_EQ(stats.reconciled_purchases(), stats.purchases());
    ExpectStatsMatchLedger(key, campaign, LedgerMessages(ledger));
    ExpectViewsMatchLedger(key, campaign, LedgerMessages(ledger));
  }
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
      << stack_->herald().Logs();
  auto behaviour = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/behavior",
                                        R"({"purchase_probability": 0.05})");
  ASSERT_TRUE(behaviour.ok() && behaviour->status == 200);
  // The secret is rotated between campaigns: the same upstream webhook, a new secret, and no
  // event lost on the way.
  v1::RegisterTeamWebhookRequest rreq;
  rreq.set_name(team.name());
  v1::Team rotated;
  grpc::Status rs = v1::AccountService::NewStub(stack_->channel())
                        ->RegisterTeamWebhook(BearerContext(key).get(), rreq, &rotated);
  ASSERT_TRUE(rs.ok()) << rs.error_message();
  EXPECT_EQ(rotated.webhook_id(), team.webhook_id());
  const std::string second = Send("agency", key, accounts, 1250);
  const std::string third = Send("agency", key, {accounts[0], accounts[1]}, 300);

  ASSERT_TRUE(testing::WaitFor([&] { return settled_with(2 * kAccounts + 2); }, absl::Seconds(60)))
      << stack_->herald().Logs();
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
  grpc::Status ts = v1::AnalyticsService::NewStub(stack_->channel())
                        ->TopCampaigns(BearerContext(key).get(), treq, &top);
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
  int64_t tenant_gross = 0;
  for (const std::string& account : accounts) {
    v1::GetAccountOverviewRequest oreq;
    oreq.set_name(account);
    v1::AccountOverview overview;
    grpc::Status os = v1::AnalyticsService::NewStub(stack_->channel())
                          ->GetAccountOverview(BearerContext(key).get(), oreq, &overview);
    ASSERT_TRUE(os.ok()) << os.error_message();
    int64_t purchases = 0, gross = 0;
    for (const auto& a : ledger.at("accounts").as_array()) {
      if (!account.ends_with(StrCat("/", std::string(a.at("account_id").as_string())))) continue;
      purchases = a.at("totals").at("purchases").to_number<int64_t>();
      gross = a.at("totals").at("revenue_cents").to_number<int64_t>();
    }
    EXPECT_EQ(overview.purchases(), purchases) << account;
    EXPECT_EQ(overview.gross_revenue_cents(), gross) << account;
    tenant_gross += gross;
  }

  // The metrics agree: the tenant's revenue to the cent, three campaigns created, and every
  // delivery completed (the last ones once Herald has seen their queues finish).
  auto metric = [](std::string_view series) {
    auto scrape = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
    return scrape.ok() ? testing::SeriesValue(scrape->body, series) : std::nullopt;
  };
  constexpr std::string_view kCompleted = R"(herald_deliveries_finished_total{state="completed"})";
  const double deliveries = 2 * kAccounts + 2;
  EXPECT_TRUE(
      testing::WaitFor([&] { return metric(kCompleted) >= deliveries; }, absl::Seconds(30)));
  EXPECT_EQ(metric(kCompleted), deliveries);
  EXPECT_EQ(metric(R"(herald_revenue_gross_cents_total{tenant="agency"})"),
            static_cast<double>(tenant_gross));
  // Reading a campaign moves it nowhere: only the three creations are counted.
  for (const std::string& campaign : {first, second, third}) {
    v1::GetCampaignRequest greq;
    greq.set_name(campaign);
    v1::Campaign got;
    ASSERT_TRUE(v1::CampaignService::NewStub(stack_->channel())
                    ->GetCampaign(BearerContext(key).get(), greq, &got)
                    .ok());
  }
  EXPECT_EQ(metric(R"(herald_campaigns_total{state="DISPATCHING",tenant="agency"})"), 3.0);
  EXPECT_EQ(metric(R"(herald_campaigns_total{state="COMPLETED",tenant="agency"})"), std::nullopt);

  // Buyers of the first campaign: every fan of every account, each with the price, each once.
  // After the first page a purchase is credited with an earlier time than any (as a purchase
  // whose messages.sent came late is, apply_event.lua): the pages after it go on where they
  // were, repeating no buyer.
  v1::ListDeliveriesRequest dreq;
  dreq.set_parent(first);
  v1::ListDeliveriesResponse first_deliveries;
  ASSERT_TRUE(v1::CampaignService::NewStub(stack_->channel())
                  ->ListDeliveries(BearerContext(key).get(), dreq, &first_deliveries)
                  .ok());
  ASSERT_GT(first_deliveries.deliveries_size(), 0);
  const v1::Delivery& credited = first_deliveries.deliveries(0);
  v1::ListCampaignBuyersRequest breq;
  breq.set_parent(first);
  breq.set_page_size(50);
  std::set<std::pair<std::string, int64_t>> buyers;
  for (int page_number = 0;; ++page_number) {
    v1::ListCampaignBuyersResponse page;
    grpc::Status s = v1::AnalyticsService::NewStub(stack_->channel())
                         ->ListCampaignBuyers(BearerContext(key).get(), breq, &page);
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (const v1::Buyer& b : page.buyers()) {
      EXPECT_EQ(b.spent_cents(), 999);
      EXPECT_TRUE(buyers.emplace(b.account(), b.fan_id()).second)
          << "listed twice: " << b.account() << " fan " << b.fan_id();
    }
    if (page.next_page_token().empty()) break;
    breq.set_page_token(page.next_page_token());
    if (page_number == 0) {
      auto conn = testing::SyncRedis::Connect(stack_->redis().port(), stack_->redis().password());
      ASSERT_TRUE(conn.ok()) << conn.status();
      const std::string message =
          StrCat(testing::ShortId(credited.account()), ":", credited.upstream_message_id());
      const std::string prefix = store::TenantKeyPrefix("agency");
      auto added = (*conn)->Command({"ZADD", StrCat(prefix, "mb:", message), "1", "987654321"});
      ASSERT_TRUE(added.ok() && added->integer == 1) << (added.ok() ? added->DebugString() : "");
      ASSERT_TRUE(
          (*conn)->Command({"HSET", StrCat(prefix, "mbc:", message), "987654321", "999"}).ok());
    }
  }
  EXPECT_EQ(static_cast<int64_t>(buyers.size()), first_stats.recipients());
}

TEST_F(WebhooksTest, PurchasesWhoseWebhooksWereLostAreRepairedByReconciliation) {
  ExpectLostPurchasesRepairedByReconciliation("paused", 700);
}

// The same where the upstream's buyers pages give no next_page link (the documented fallback):
// each page goes on from the buyers read so far, though pages hold fewer than asked.
TEST_F(WebhooksTest, ReconciliationPagesByOffsetWhenTheUpstreamGivesNoLink) {
  auto behaviour = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/behavior",
                                        R"({"buyer_page_links": false})");
  ASSERT_TRUE(behaviour.ok() && behaviour->status == 200)
      << (behaviour.ok() ? behaviour->body : "");
  ExpectLostPurchasesRepairedByReconciliation("unlinked", 701);
  behaviour = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/behavior",
                                   R"({"buyer_page_links": true})");
  ASSERT_TRUE(behaviour.ok() && behaviour->status == 200);
}

TEST_F(WebhooksTest, EventStreamDeliversEachPurchaseOnceAcrossAResume) {
  const std::string key = NewTenant("streams");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("streams", key, 1, &team);
  auto behaviour = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/behavior",
                                        R"({"purchase_probability": 1, "delivery_rate": 2000})");
  ASSERT_TRUE(behaviour.ok() && behaviour->status == 200);
  const std::string campaign = Send("streams", key, accounts, 555);
  int64_t expected = 0;
  std::set<int64_t> campaign_messages;  // the campaign's upstream mass messages
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const json::value ledger = Ledger();
        if (!Settled(ledger)) return false;
        int64_t messages = 0;
        expected = 0;
        campaign_messages.clear();
        for (const auto& a : ledger.at("accounts").as_array()) {
          for (const auto& m : a.at("mass_messages").as_array()) {
            if (m.at("price_cents").to_number<int64_t>() != 555) continue;
            ++messages;
            expected += m.at("purchases").to_number<int64_t>();
            campaign_messages.insert(m.at("id").to_number<int64_t>());
          }
        }
        return messages == kAccounts;
      },
      absl::Seconds(60)));
  ASSERT_GT(expected, 3);

  auto events = v1::EventService::NewStub(stack_->channel());
  v1::SubscribeRequest req;
  req.set_parent("tenants/streams");
  req.add_event_types("transactions.new");
  req.set_cursor("0");                  // from the oldest kept
  std::map<std::string, int64_t> seen;  // cursor -> amount
  int credited = 0;  // purchases that name the mass message they were bought from
  auto check_message = [&](const v1::Event& e) {
    if (e.upstream_message_id() == 0) return;  // bought before its messages.sent arrived
    ++credited;
    EXPECT_TRUE(campaign_messages.contains(e.upstream_message_id())) << e.upstream_message_id();
  };
  std::string resume_after;
  {
    auto ctx = BearerContext(key);
    auto reader = events->Subscribe(ctx.get(), req);
    v1::Event e;
    while (static_cast<int>(seen.size()) < 3 && reader->Read(&e)) {
      EXPECT_EQ(e.event_type(), "transactions.new");
      seen[e.cursor()] = e.amount_cents();
      check_message(e);
      resume_after = e.cursor();
    }
    ctx->TryCancel();
    reader->Finish();
  }
  ASSERT_EQ(seen.size(), 3u);
  req.set_cursor(resume_after);
  {
    auto ctx = BearerContext(key);
    auto reader = events->Subscribe(ctx.get(), req);
    v1::Event e;
    while (static_cast<int64_t>(seen.size()) < expected && reader->Read(&e)) {
      EXPECT_FALSE(seen.contains(e.cursor())) << "delivered twice: " << e.cursor();
      EXPECT_TRUE(e.account().starts_with("tenants/streams/accounts/acct_"));
      seen[e.cursor()] = e.amount_cents();
      check_message(e);
    }
    ctx->TryCancel();
    reader->Finish();
  }
  ASSERT_EQ(static_cast<int64_t>(seen.size()), expected);
  for (const auto& [cursor, amount] : seen) EXPECT_EQ(amount, 555) << cursor;
  EXPECT_GT(credited, 0) << "no purchase named the mass message it was bought from";

  // Another tenant's stream, a malformed cursor, and no key are refused.
  auto refused = [&](const std::string& parent, const std::string& cursor, const std::string& k) {
    v1::SubscribeRequest bad;
    bad.set_parent(parent);
    bad.set_cursor(cursor);
    auto ctx = BearerContext(k);
    auto reader = events->Subscribe(ctx.get(), bad);
    v1::Event e;
    EXPECT_FALSE(reader->Read(&e));
    return reader->Finish().error_code();
  };
  EXPECT_EQ(refused("tenants/agency", "0", key), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(refused("tenants/streams", "yesterday", key), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(refused("tenants/streams", "99999999999999-0", key), grpc::StatusCode::INVALID_ARGUMENT)
      << "a cursor past the newest event was never returned";
  EXPECT_EQ(refused("tenants/streams", "0", "wrong-key"), grpc::StatusCode::UNAUTHENTICATED);
  // A type Herald never streams (a typo) is refused rather than an empty stream.
  {
    v1::SubscribeRequest typo;
    typo.set_parent("tenants/streams");
    typo.add_event_types("messages.ppv.unlocked");
    typo.add_event_types("messages.ppv.unlock");
    auto ctx = BearerContext(key);
    auto reader = events->Subscribe(ctx.get(), typo);
    v1::Event e;
    EXPECT_FALSE(reader->Read(&e));
    const grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("'messages.ppv.unlock'"));
  }
}

// A subscription from now on says in its headers where it starts: a client that has received
// nothing resumes from there and gets every event applied in between, none before.
TEST_F(WebhooksTest, ASubscriptionFromNowSaysWhereItStartsSoAResumeMissesNothing) {
  const std::string key = NewTenant("pinned");
  const std::string secret = "whsec-pinned-dashboard-1";
  const v1::Team team = NewTeamWithSecret("pinned", key, secret);
  auto events = v1::EventService::NewStub(stack_->channel());
  auto start_of = [&](const std::string& cursor) {
    v1::SubscribeRequest req;
    req.set_parent("tenants/pinned");
    req.set_cursor(cursor);
    auto ctx = BearerContext(key);
    auto reader = events->Subscribe(ctx.get(), req);
    reader->WaitForInitialMetadata();
    const auto& headers = ctx->GetServerInitialMetadata();
    const auto start = headers.find("herald-start-cursor");
    std::string value =
        start == headers.end() ? "(none)" : std::string(start->second.data(), start->second.size());
    ctx->TryCancel();
    reader->Finish();
    return value;
  };
  EXPECT_EQ(start_of(""), "0");  // no event yet: from the oldest
  ASSERT_EQ(PostTransaction(team, secret, 1), 200);
  const std::string pinned = start_of("");
  ASSERT_NE(pinned, "0");
  EXPECT_EQ(start_of(pinned), pinned);
  EXPECT_EQ(start_of("0"), "0");

  // Applied after the subscription from now on started: a resume from its start gets them.
  ASSERT_EQ(PostTransaction(team, secret, 2), 200);
  ASSERT_EQ(PostTransaction(team, secret, 3), 200);
  v1::SubscribeRequest req;
  req.set_parent("tenants/pinned");
  req.set_cursor(pinned);
  auto ctx = BearerContext(key);
  auto reader = events->Subscribe(ctx.get(), req);
  std::vector<int64_t> amounts;
  v1::Event e;
  while (amounts.size() < 2 && reader->Read(&e)) amounts.push_back(e.amount_cents());
  ctx->TryCancel();
  reader->Finish();
  EXPECT_EQ(amounts, (std::vector<int64_t>{200, 300}));
}

void AppendStreamEvents(testing::RedisServer& redis, const std::string& tenant, int count) {
  const absl::Status appended =
      testing::AppendStreamEvents(redis.port(), redis.password(), tenant, count);
  ASSERT_TRUE(appended.ok()) << appended;
}

// A subscriber resumes from the cursor of the last event it received. When events older than
// the oldest kept were trimmed past it, it is told so (OUT_OF_RANGE), never handed the rest as if
// complete. Herald keeps at least four events per tenant here, trimmed as it applies them.
TEST(EventStreamTrimTest, AResumeFromATrimmedCursorIsOutOfRange) {
  auto stack = HeraldStack::Start({.simulator_args = {"--teams=3", "--accounts_per_team=1"},
                                   .herald_args = {"--events_kept=4", "--log_level=warn"},
                                   .admin_key = kAdminKey,
                                   .encryption_key = std::string(64, 'b')});
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto key = testing::CreateTenant((*stack)->channel(), kAdminKey, "trimmed");
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string secret = "whsec-trimmed-stream-1";
  const v1::Team team = CreateTeamWithSecret(**stack, "trimmed", *key, secret);
  for (int n = 1; n <= 4; ++n) ASSERT_EQ(PostTransactionTo(**stack, team, secret, n), 200);
  auto events = v1::EventService::NewStub((*stack)->channel());
  // Subscribes from `cursor`; the amounts (dollars) of up to `want` events, and the status.
  auto resume = [&](const std::string& cursor, size_t want, std::vector<std::string>* cursors) {
    v1::SubscribeRequest req;
    req.set_parent("tenants/trimmed");
    req.set_cursor(cursor);
    auto ctx = BearerContext(*key, absl::Seconds(30));
    auto reader = events->Subscribe(ctx.get(), req);
    std::vector<int64_t> dollars;
    v1::Event e;
    while (dollars.size() < want && reader->Read(&e)) {
      dollars.push_back(e.amount_cents() / 100);
      if (cursors != nullptr) cursors->push_back(e.cursor());
    }
    if (dollars.size() == want) ctx->TryCancel();
    return std::make_pair(dollars, reader->Finish());
  };
  std::vector<std::string> cursors;
  ASSERT_EQ(resume("0", 4, &cursors).first, (std::vector<int64_t>{1, 2, 3, 4}));

  // Enough more for Redis to trim a block of the stream: the first events go.
  constexpr int kEvents = 250;
  for (int n = 5; n <= kEvents; ++n) ASSERT_EQ(PostTransactionTo(**stack, team, secret, n), 200);
  std::vector<std::string> kept;
  const std::vector<int64_t> oldest = resume("0", 1, &kept).first;
  ASSERT_EQ(oldest.size(), 1u);
  ASSERT_GT(oldest[0], 4);
  ASSERT_LE(oldest[0], kEvents - 3);  // at least four kept

  // A subscriber that had read only the first four has missed events: it is told.
  const auto [dollars, status] = resume(cursors[3], 1, nullptr);
  EXPECT_TRUE(dollars.empty());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE) << status.error_message();
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("older than the events kept"));
  // One at the oldest event kept goes on.
  EXPECT_EQ(resume(kept[0], 1, nullptr).first, (std::vector<int64_t>{oldest[0] + 1}));

  // A filtered subscriber asking for progress is told how far it has read, so it resumes after
  // the events it passed over rather than from its last match, however old.
  v1::SubscribeRequest filtered;
  filtered.set_parent("tenants/trimmed");
  filtered.add_event_types("subscriptions.new");
  filtered.set_cursor("0");
  filtered.set_progress(true);
  std::string newest;  // where a subscription from now starts: the newest event
  {
    v1::SubscribeRequest now;
    now.set_parent("tenants/trimmed");
    auto ctx = BearerContext(*key, absl::Seconds(30));
    auto reader = events->Subscribe(ctx.get(), now);
    reader->WaitForInitialMetadata();
    const auto& headers = ctx->GetServerInitialMetadata();
    const auto start = headers.find("herald-start-cursor");
    ASSERT_NE(start, headers.end());
    newest = std::string(start->second.data(), start->second.size());
    ctx->TryCancel();
    reader->Finish();
  }
  std::string progress;
  {
    auto ctx = BearerContext(*key, absl::Seconds(30));
    auto reader = events->Subscribe(ctx.get(), filtered);
    v1::Event e;
    // A report after each read of the stream, up to the newest event.
    while (progress != newest && reader->Read(&e)) {
      EXPECT_EQ(e.event_type(), "");
      EXPECT_EQ(e.amount_cents(), 0);
      progress = e.cursor();
    }
    ctx->TryCancel();
    reader->Finish();
  }
  ASSERT_EQ(progress, newest);
  ASSERT_EQ(PostTransactionTo(**stack, team, secret, kEvents + 1), 200);
  EXPECT_EQ(resume(progress, 1, nullptr).first, (std::vector<int64_t>{kEvents + 1}));
}

// A replay from "0" longer than a subscriber may fall behind (10,000 events) reaches a client
// that reads it, whole and in order: the stream is read at the client's pace.
TEST_F(WebhooksTest, AReplayLongerThanTheCutOffReachesAClientThatReadsIt) {
  const std::string key = NewTenant("replay");
  constexpr int kEvents = 25'000;
  ASSERT_NO_FATAL_FAILURE(AppendStreamEvents(stack_->redis(), "replay", kEvents));
  v1::SubscribeRequest req;
  req.set_parent("tenants/replay");
  req.set_cursor("0");
  auto ctx = BearerContext(key, absl::Seconds(120));
  auto reader = v1::EventService::NewStub(stack_->channel())->Subscribe(ctx.get(), req);
  int received = 0;
  v1::Event e;
  while (received < kEvents && reader->Read(&e)) {
    ++received;
    ASSERT_EQ(e.fan_id(), received) << "out of order at " << e.cursor();
  }
  ctx->TryCancel();
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(received, kEvents) << status.error_code() << ": " << status.error_message();
}

// A client that stops reading is cut off with RESOURCE_EXHAUSTED once more than 10,000 events
// are waiting for it, and what it was sent before ends at a cursor it can resume from.
TEST_F(WebhooksTest, ASubscriberThatStopsReadingIsCutOffAndResumesWhereItStopped) {
  const std::string key = NewTenant("stalled");
  ASSERT_NO_FATAL_FAILURE(AppendStreamEvents(stack_->redis(), "stalled", 1));
  // The server's writes stall as soon as this client stops reading.
  auto channel = testing::SmallWindowChannel(stack_->herald().grpc_target());
  auto cut_off = [&] {
    auto metrics = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
    if (!metrics.ok()) return -1.0;
    return testing::SeriesValue(
               metrics->body,
               R"(herald_grpc_requests_total{code="RESOURCE_EXHAUSTED",method="Subscribe"})")
        .value_or(0);
  };
  const double cut_before = cut_off();
  v1::SubscribeRequest req;
  req.set_parent("tenants/stalled");
  req.set_cursor("0");
  auto ctx = BearerContext(key, absl::Seconds(120));
  auto reader = v1::EventService::NewStub(channel)->Subscribe(ctx.get(), req);
  v1::Event e;
  ASSERT_TRUE(reader->Read(&e));
  ASSERT_EQ(e.fan_id(), 1);
  constexpr int kMore = 40'000;
  ASSERT_NO_FATAL_FAILURE(AppendStreamEvents(stack_->redis(), "stalled", kMore));
  ASSERT_TRUE(testing::WaitFor([&] { return cut_off() > cut_before; }, absl::Seconds(60)))
      << stack_->herald().Logs();
  std::string last = e.cursor();
  int received = 1;
  while (reader->Read(&e)) {
    ++received;
    ASSERT_EQ(e.fan_id(), received);
    last = e.cursor();
  }
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_LT(received, kMore - 10'000);

  // Resumed from the last cursor it received: the rest, none twice.
  req.set_cursor(last);
  auto again = BearerContext(key, absl::Seconds(120));
  auto resumed = v1::EventService::NewStub(stack_->channel())->Subscribe(again.get(), req);
  while (received < kMore + 1 && resumed->Read(&e)) {
    ++received;
    ASSERT_EQ(e.fan_id(), received);
  }
  again->TryCancel();
  resumed->Finish();
  EXPECT_EQ(received, kMore + 1);
}

TEST_F(WebhooksTest, ForgedUnsignedAndMisaddressedDeliveriesAreRefused) {
  // What the ingest port refused before reading an event, by status, as /metrics says.
  auto refused = [] {
    std::map<std::string, double> out;
    auto scrape = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
    EXPECT_TRUE(scrape.ok()) << scrape.status();
    for (const char* status : {"400", "404", "405", "413", "431"}) {
      const auto value =
          scrape.ok()
              ? testing::SeriesValue(
                    scrape->body,
                    StrCat(R"(herald_webhook_requests_refused_total{status=")", status, R"("})"))
              : std::nullopt;
      EXPECT_TRUE(value.has_value()) << status;
      out[status] = value.value_or(-1);
    }
    return out;
  };
  const std::map<std::string, double> refused_before = refused();
  const std::string key = NewTenant("forger");
  v1::Team team;
  NewTeam("forger", key, 2, &team);
  const std::string body =
      R"({"event":"transactions.new","account_id":"acct_x","payload":{"id":"t1","amount":100,)"
      R"("description":"?firstId=1"}})";
  const std::map<std::string, std::string> json_type = {{"Content-Type", "application/json"},
                                                        {"X-OFAPI-Idempotency-Key", "evt_f1"}};
  auto post = [&](std::string target, std::map<std::string, std::string> headers) {
    auto r = testing::HttpRequest(stack_->herald().ingest_port(), "POST", target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->status : 0;
  };
  EXPECT_EQ(post("/webhooks/forger.main", json_type), 401);  // unsigned
  auto forged = json_type;
  forged["Signature"] = std::string(64, 'a');
  EXPECT_EQ(post("/webhooks/forger.main", forged), 401);
  // The request target in absolute form names the same endpoint; a 401 says what it wants.
  auto absolute =
      testing::HttpRequest(stack_->herald().ingest_port(), "POST",
                           "http://ingest.example.com/webhooks/forger.main", body, forged);
  ASSERT_TRUE(absolute.ok()) << absolute.status();
  EXPECT_EQ(absolute->status, 401);
  EXPECT_EQ(absolute->headers["www-authenticate"], "Signature");
  // An unknown endpoint answers as a bad signature does: nothing tells a prober it is absent.
  EXPECT_EQ(post("/webhooks/forger.nope", forged), 401);
  // Another tenant's endpoint: its own secret, so the forger's signature is refused there too.
  const std::string other_key = NewTenant("bystander");
  v1::Team other;
  NewTeam("bystander", other_key, 2, &other);
  EXPECT_EQ(post("/webhooks/bystander.main", forged), 401);
  // The signature is checked before anything else: a forged body is 401 whatever its type.
  auto text = forged;
  text["Content-Type"] = "text/plain";
  EXPECT_EQ(post("/webhooks/forger.main", text), 401);
  auto r = testing::HttpRequest(stack_->herald().ingest_port(), "POST", "/webhooks/forger.main",
                                std::string(8192, 'x'), forged);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413);
  auto padded = forged;
  padded["X-Padding"] = std::string(20000, 'p');  // over the 16 KiB of headers ingest reads
  r = testing::HttpRequest(stack_->herald().ingest_port(), "POST", "/webhooks/forger.main", "{}",
                           padded);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 431);
  auto get = testing::HttpRequest(stack_->herald().ingest_port(), "GET", "/webhooks/forger.main");
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->status, 405);
  for (const char* target : {"/hooks/forger.main", "/webhooks/forger.main/extra"}) {
    auto stray = testing::HttpRequest(stack_->herald().ingest_port(), "POST", target, body, forged);
    ASSERT_TRUE(stray.ok()) << stray.status();
    EXPECT_EQ(stray->status, 404) << target;
  }
  // The refusals before an event are counted by status; the 401s are events, counted apart.
  const std::map<std::string, double> refused_after = refused();
  std::map<std::string, double> counted;
  for (const auto& [status, value] : refused_after)
    counted[status] = value - refused_before.at(status);
  EXPECT_THAT(counted, ::testing::ElementsAre(::testing::Pair("400", 0), ::testing::Pair("404", 2),
                                              ::testing::Pair("405", 1), ::testing::Pair("413", 1),
                                              ::testing::Pair("431", 1)));
}

TEST_F(WebhooksTest, EventsHeraldDoesNotUseAreAcknowledgedWithOrWithoutAKey) {
  // A webhook that takes more than Herald asks for (widened in the upstream's dashboard, say):
  // presence events, which come without an idempotency key, and fan activity, which has one.
  // Each is answered 200 at its first attempt, counted as ignored and not stored, so the
  // upstream neither retries it nor pauses the endpoint.
  const std::string key = NewTenant("chatty");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("chatty", key, 2, &team);
  ASSERT_FALSE(accounts.empty());
  ASSERT_TRUE(team.webhook_id().starts_with("wh_")) << team.webhook_error();
  const std::map<std::string, std::string> upstream_auth = {{"Authorization", "Bearer sim-key-2"},
                                                            {"Content-Type", "application/json"}};
  const std::string hook = StrCat("/api/webhooks/", team.webhook_id());
  auto registered = testing::HttpRequest(stack_->sim().port(), "GET", hook, "", upstream_auth);
  ASSERT_TRUE(registered.ok() && registered->status == 200);
  json::array events = json::parse(registered->body).at("data").at("events").as_array();
  for (const char* e : {"users.typing", "users.online", "tips.received"}) events.emplace_back(e);
  auto widened =
      testing::HttpRequest(stack_->sim().port(), "PUT", hook,
                           json::serialize(json::object{{"events", events}}), upstream_auth);
  ASSERT_TRUE(widened.ok() && widened->status == 200)
      << (widened.ok() ? widened->body : widened.status().ToString());

  auto ignored = [](std::string_view result) {
    auto scrape = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
    EXPECT_TRUE(scrape.ok()) << scrape.status();
    return scrape.ok() ? testing::SeriesValue(
                             scrape->body, StrCat(R"(herald_webhook_events_total{result=")", result,
                                                  R"(",type="other"})"))
                             .value_or(0)
                       : -1;
  };
  const double no_key_before = ignored("no_key");
  const double unknown_before = ignored("unknown");
  for (const char* event : {"users.typing", "users.online", "tips.received"}) {
    auto emitted =
        testing::HttpRequest(stack_->sim().port(), "POST",
                             StrCat("/_sim/accounts/", testing::ShortId(accounts[0]), "/events"),
                             StrCat(R"({"event":")", event, R"("})"), upstream_auth);
    ASSERT_TRUE(emitted.ok() && emitted->status == 200)
        << (emitted.ok() ? emitted->body : emitted.status().ToString());
  }

  // Every delivery of these events (the simulator sends some twice) is one 200 and one count.
  struct Deliveries {
    int presence = 0;
    int other = 0;
    int failed = 0;
  };
  auto deliveries = [&] {
    Deliveries out;
    auto r = testing::HttpRequest(stack_->sim().port(), "GET",
                                  StrCat(hook, "/deliveries?limit=100"), "", upstream_auth);
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    if (!r.ok() || r->status != 200) return out;
    const json::value listed = json::parse(r->body);
    for (const json::value& d : listed.at("data").as_array()) {
      const std::string_view event = d.at("event").as_string();
      const bool presence = event.starts_with("users.");
      if (!presence && event != "tips.received") continue;
      EXPECT_EQ(d.at("idempotency_key").is_null(), presence) << event;
      if (!d.at("success").as_bool()) ++out.failed;
      ++(presence ? out.presence : out.other);
    }
    return out;
  };
  Deliveries seen;
  EXPECT_TRUE(testing::WaitFor([&] {
    seen = deliveries();
    return seen.presence >= 2 && seen.other >= 1 &&
           ignored("no_key") - no_key_before == seen.presence &&
           ignored("unknown") - unknown_before == seen.other;
  })) << "presence "
      << seen.presence << ", other " << seen.other << ", failed " << seen.failed << "; counted "
      << ignored("no_key") - no_key_before << " and " << ignored("unknown") - unknown_before;
  EXPECT_EQ(seen.failed, 0);
}

TEST_F(WebhooksTest, ATeamsOwnSigningSecretIsCheckedAndRotatesWithoutRefusingEvents) {
  const std::string key = NewTenant("byo");
  auto teams = v1::AccountService::NewStub(stack_->channel());
  const std::string first = "whsec-from-the-dashboard-1";
  v1::Team team = NewTeamWithSecret("byo", key, first);
  EXPECT_EQ(team.webhook_endpoint(), "/webhooks/byo.main");
  EXPECT_TRUE(team.webhook_signing_secret().empty()) << "the secret is never returned";

  int next_event = 0;
  auto post = [&](const std::string& secret) {
    return PostTransaction(team, secret, ++next_event);
  };
  EXPECT_EQ(post(first), 200);
  EXPECT_EQ(post("whsec-someone-else-entirely"), 401);

  // A new secret: events the upstream signed with the old one before it switched still count.
  const std::string second = "whsec-from-the-dashboard-2";
  v1::UpdateTeamRequest update;
  update.mutable_team()->set_name("tenants/byo/teams/main");
  update.mutable_team()->set_webhook_signing_secret(second);
  update.mutable_update_mask()->add_paths("webhook_signing_secret");
  grpc::Status s = teams->UpdateTeam(BearerContext(key).get(), update, &team);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The receiver rereads a team's secrets at most every 100 ms (a flood of forged signatures
  // must not become a flood of Redis reads), so the new one may be refused at first, as any
  // 401 is, and the sender retries.
  EXPECT_TRUE(testing::WaitFor([&] { return post(second) == 200; }));
  EXPECT_EQ(post(first), 200);

  // Too short a secret is refused and changes nothing.
  update.mutable_team()->set_webhook_signing_secret("short");
  EXPECT_EQ(teams->UpdateTeam(BearerContext(key).get(), update, &team).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(post(second), 200);
}

TEST_F(WebhooksTest, ADeletedTeamsWebhookIsDeletedUpstream) {
  const std::string key = NewTenant("farewell");
  const v1::Team team = NewBareTeam("farewell", key);
  ASSERT_TRUE(team.webhook_id().starts_with("wh_")) << team.webhook_error();
  ASSERT_THAT(UpstreamWebhooks(), ::testing::Contains(team.webhook_id()));
  const grpc::Status s = DeleteTeam(key, team.name());
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(UpstreamWebhooks(), ::testing::Not(::testing::Contains(team.webhook_id())));
}

TEST_F(WebhooksTest, ATeamIsDeletedOnlyOnceItsWebhookIsGoneOrCannotBe) {
  const std::string key = NewTenant("stubborn");
  const v1::Team team = NewBareTeam("stubborn", key);
  ASSERT_TRUE(team.webhook_id().starts_with("wh_")) << team.webhook_error();
  const std::map<std::string, std::string> sim_headers = {{"Content-Type", "application/json"}};
  auto teams = v1::AccountService::NewStub(stack_->channel());
  v1::GetTeamRequest get;
  get.set_name(team.name());
  v1::Team found;

  // The upstream fails the delete once: nothing is deleted, and the caller can retry.
  auto fault = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/faults",
      R"({"methods": ["DELETE"], "path_contains": "/api/webhooks", "error_rate": 1,
          "error_status": 503, "count": 1})",
      sim_headers);
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  EXPECT_EQ(DeleteTeam(key, team.name()).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(teams->GetTeam(BearerContext(key).get(), get, &found).ok());
  EXPECT_THAT(UpstreamWebhooks(), ::testing::Contains(team.webhook_id()));

  // Without credits the upstream will not delete it: the team goes, the webhook stays.
  auto broke = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/teams/team-2",
                                    R"({"credits": 0})", sim_headers);
  ASSERT_TRUE(broke.ok() && broke->status == 200) << (broke.ok() ? broke->body : "");
  const grpc::Status s = DeleteTeam(key, team.name());
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(teams->GetTeam(BearerContext(key).get(), get, &found).error_code(),
            grpc::StatusCode::NOT_FOUND);
  auto paid = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/teams/team-2",
                                   R"({"credits": 1000000000})", sim_headers);
  ASSERT_TRUE(paid.ok() && paid->status == 200) << (paid.ok() ? paid->body : "");
  EXPECT_THAT(UpstreamWebhooks(), ::testing::Contains(team.webhook_id()));
}

// A registration whose answer was lost leaves Herald's webhook upstream without its id here. A
// later registration that cannot list the team's webhooks fails and creates no second one (it
// would deliver, and charge for, every event twice); the next finds and keeps the first.
TEST_F(WebhooksTest, ARegistrationThatCannotListTheTeamsWebhooksCreatesNoSecondOne) {
  const std::string key = NewTenant("lostanswer");
  const std::map<std::string, std::string> sim_headers = {{"Content-Type", "application/json"}};
  auto fault = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/faults",
                                    R"({"methods": ["POST"], "path_contains": "/api/webhooks",
                                        "commit_then_lose_rate": 1, "count": 1})",
                                    sim_headers);
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  const v1::Team team = NewBareTeam("lostanswer", key);
  ASSERT_TRUE(team.webhook_id().empty()) << team.webhook_id();
  ASSERT_FALSE(team.webhook_endpoint().empty());
  auto registered = [&] { return UpstreamWebhooks(team.webhook_endpoint()); };
  const std::vector<std::string> first = registered();
  ASSERT_EQ(first.size(), 1u) << "the lost answer's webhook";

  fault = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/faults",
                               R"({"methods": ["GET"], "path_contains": "/api/webhooks",
                                   "error_rate": 1, "error_status": 503, "count": 1})",
                               sim_headers);
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  auto teams = v1::AccountService::NewStub(stack_->channel());
  v1::RegisterTeamWebhookRequest req;
  req.set_name(team.name());
  v1::Team after;
  const grpc::Status failed = teams->RegisterTeamWebhook(BearerContext(key).get(), req, &after);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::UNAVAILABLE) << failed.error_message();
  EXPECT_EQ(registered(), first);

  const grpc::Status s = teams->RegisterTeamWebhook(BearerContext(key).get(), req, &after);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(after.webhook_id(), first[0]);
  EXPECT_EQ(registered(), first);
}

// Registrations that fail leave the upstream signing with the secret it had: each offers the
// same new secret rather than rotating again, so the one before stays accepted until a
// registration succeeds.
TEST_F(WebhooksTest, FailedRegistrationsKeepTheSecretTheUpstreamSignsWith) {
  const std::string key = NewTenant("unconfirmed");
  const std::string signing = "whsec-the-upstream-signs-with";
  v1::CreateTeamRequest create;
  create.set_parent("tenants/unconfirmed");
  create.set_team_id("main");
  create.mutable_team()->set_upstream_api_key("sim-key-2");
  create.mutable_team()->set_webhook_signing_secret(signing);
  auto teams = v1::AccountService::NewStub(stack_->channel());
  v1::Team team;
  ASSERT_TRUE(teams->CreateTeam(BearerContext(key).get(), create, &team).ok());
  ASSERT_TRUE(team.webhook_id().starts_with("wh_")) << team.webhook_error();
  auto fault = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/faults",
                                    R"({"methods": ["PUT"], "path_contains": "/api/webhooks",
                                        "error_rate": 1, "error_status": 503, "count": 3})",
                                    {{"Content-Type", "application/json"}});
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  v1::RegisterTeamWebhookRequest req;
  req.set_name(team.name());
  for (int i = 0; i < 3; ++i) {
    v1::Team after;
    const grpc::Status failed = teams->RegisterTeamWebhook(BearerContext(key).get(), req, &after);
    EXPECT_EQ(failed.error_code(), grpc::StatusCode::UNAVAILABLE) << failed.error_message();
  }
  v1::GetTeamRequest get;
  get.set_name(team.name());
  v1::Team failed;
  ASSERT_TRUE(teams->GetTeam(BearerContext(key).get(), get, &failed).ok());
  EXPECT_FALSE(failed.webhook_error().empty());

  // The first event of the endpoint: its secrets are read from the store, not a cache.
  int next_event = 0;
  EXPECT_EQ(PostTransaction(team, signing, ++next_event), 200);

  v1::Team registered;
  const grpc::Status s = teams->RegisterTeamWebhook(BearerContext(key).get(), req, &registered);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(registered.webhook_error(), "");
  EXPECT_EQ(PostTransaction(team, signing, ++next_event), 200);
}

TEST_F(WebhooksTest, RedisOutageMidStreamIsAnsweredWith503AndNothingAcknowledgedIsLost) {
  const std::string key = NewTenant("outage");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("outage", key, 1, &team);
  ASSERT_TRUE(team.webhook_id().starts_with("wh_")) << team.webhook_error();
  // A slower delivery, so that events are still arriving when Redis goes away.
  auto behaviour = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/behavior",
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
  ASSERT_TRUE(stack_->redis().Stop(/*graceful=*/false).ok());
  // Deliveries now fail (503) and the upstream retries them.
  EXPECT_TRUE(testing::WaitFor([&] { return failures() > failures_before; }));
  ASSERT_TRUE(stack_->redis().Restart().ok());

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
      << stack_->herald().Logs();
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
