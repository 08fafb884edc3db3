// The dashboards and alert rules in deploy/, proven against a real Prometheus scraping a real
// Herald (every role in one process) while campaigns run with webhooks, upstream 503s, a 429
// storm, a revoked API key, low credits, media the upstream refuses (dead letters), a worker
// killed while it holds leases, a target Prometheus cannot scrape and, last, Redis going away.
//
// Every panel query and template variable of every dashboard (variables as "All", `.*`; the
// rate interval as the whole run) must be a query Prometheus accepts that returns data. Every
// alert expression must be accepted, and return data unless the alert is listed as silent here;
// every alert whose fault was injected must be pending or firing, with its annotations rendered.
// A live /metrics scrape passes `promtool check metrics`, and every metric family it holds is in
// the catalogue (docs/operations.md) with its type, and the other way round. The upstream
// simulator is scraped too, and its exposition passes promtool.
#include <cmath>
#include <regex>
#include <set>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_stack.h>
#include <herald/testing/net.h>
#include <herald/testing/observability.h>
#include <herald/testing/prometheus_server.h>
#include <herald/testing/promtool.h>
#include <herald/testing/wait.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>

namespace herald {
namespace {

using testing::BearerContext;
using testing::HeraldStack;
using testing::PrometheusServer;

constexpr char kAdminKey[] = "admin-key-observability";
constexpr char kTenant[] = "obs";
constexpr absl::Duration kWait = absl::Seconds(20);

// Alerts whose condition this test does not create, with the reason; their expressions need only
// be valid. Every other alert of herald-rules.yml must be pending or firing by the end.
const std::map<std::string, std::string> kSilentAlerts = {
    {"HeraldQueueBacklogAging", "needs a ready job older than 5 minutes"},
    {"HeraldCampaignDispatchStuck",
     "needs 15 minutes of failed dispatch sweeps (promtool's tests in herald-rules.test.yml)"},
    {"HeraldRedisWritesUnreplicated",
     "needs a Redis master without its replica and --redis_wait_replicas (promtool's tests in "
     "herald-rules.test.yml; the counter in RedisClientTest."
     "ReplicatedScriptsFailWhenTooFewReplicasAcknowledge)"},
    {"HeraldTeamsPaused",
     "needs a team paused for 15 minutes (promtool's tests in herald-rules.test.yml; the gauge "
     "in CampaignTest.OutOfCreditsPausesTheTeamUntilResumed)"},
    {"HeraldWebhooksNotRecorded",
     "needs 5 minutes of refused webhook deliveries (promtool's tests in herald-rules.test.yml)"},
    {"HeraldWebhookSignaturesRefused",
     "needs 15 minutes of badly signed deliveries (promtool's tests in herald-rules.test.yml)"},
    {"HeraldTeamLimitAboveUpstream",
     "needs 5 minutes, and its series (a worker's, per team) do not outlive the restarts below: "
     "its expression is checked to find the storm team while that team's campaign runs "
     "(promtool's tests in herald-rules.test.yml)"},
};

// The alerts this test provokes, and how.
const std::map<std::string, std::string> kInjectedAlerts = {
    {"HeraldDown", "a scrape target nothing listens on"},
    {"HeraldRedisUnavailable", "Redis stopped"},
    {"HeraldJobsDeadLettered", "media the upstream refuses to upload, twice"},
    {"HeraldLeasesExpiring", "herald killed twice while sends were in flight"},
    {"HeraldQueueStatsFailing", "Redis stopped"},
    {"HeraldUpstreamRateLimited", "the upstream's limit of one team lowered to 1 per minute"},
    {"HeraldUpstreamCreditsLow", "every upstream team starts with 5000 credits"},
    {"HeraldUpstreamUnauthorized", "a team's key replaced by one the upstream does not know"},
    {"HeraldUpstreamOutOfCredits", "a team's upstream credits set to 0"},
};

// A query's samples, for failure messages.
std::string Render(const PrometheusServer::QueryResult& r) {
  std::string out = StrCat(r.type, " of ", r.samples.size(), ":");
  for (const auto& s : r.samples) {
    out += "\n  {";
    for (const auto& [k, v] : s.labels) StrAppend(&out, k, "=\"", v, "\" ");
    StrAppend(&out, "} ", s.value);
  }
  return out;
}

bool Final(v1::Campaign::State s) {
  return s == v1::Campaign::COMPLETED || s == v1::Campaign::PARTIALLY_FAILED ||
         s == v1::Campaign::FAILED;
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Three upstream teams, all with few credits; every purchase is made and every event
    // delivered, some twice. Leases are short, so a killed worker's jobs are reaped quickly.
    auto stack = HeraldStack::Start(
        {.simulator_args = {"--teams=4", "--accounts_per_team=3", "--fans_per_account=20",
                            "--delivery_rate=2000", "--rate_limit_per_minute=100000",
                            "--credits=5000", "--purchase_probability=1", "--fan_behavior=uniform",
                            "--purchase_delay_min=0s", "--purchase_delay_max=300ms",
                            "--webhook_duplicate_rate=0.3", "--webhook_retry_base=50ms"},
         .herald_args = {"--poll_interval=50ms", "--log_level=warn", "--queue_stats_interval=200ms",
                         "--reconcile_schedule=300ms", "--lease_duration=3s", "--redis_timeout=1s"},
         .admin_key = kAdminKey,
         .encryption_key = std::string(64, 'c'),
         .register_webhooks = true});
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = *std::move(stack);
    // Herald's admin port as a Kubernetes scrape would label it, and a target that is down.
    const std::string admin = StrCat("127.0.0.1:", stack_->herald().admin_port());
    const std::string nowhere = StrCat("127.0.0.1:", testing::PickFreePort());
    auto prom = PrometheusServer::Start(
        {.targets = {{.job = "herald",
                      .address = admin,
                      .labels = {{"namespace", "herald-e2e"}, {"role", "all"}}},
                     {.job = "herald",
                      .address = nowhere,
                      .labels = {{"namespace", "herald-e2e"}, {"role", "worker"}}},
                     {.job = "upstream-sim",
                      .address = StrCat("127.0.0.1:", stack_->sim().port()),
                      .labels = {{"namespace", "herald-e2e"}}}},
         .rule_files = {testing::SourcePath("deploy/prometheus/herald-rules.yml")}});
    ASSERT_TRUE(prom.ok()) << prom.status();
    prom_ = *std::move(prom);
    started_ = absl::Now();
  }

  // True when `expr` returns at least one sample now.
  bool HasData(std::string_view expr) {
    auto r = prom_->Query(expr);
    return r.ok() && !r->samples.empty();
  }

  // Waits until Prometheus has scraped herald twice since `since`: whatever herald exported then
  // has two samples, enough for rate() and increase(), even if the process dies next.
  void WaitScrapedTwiceSince(absl::Time since) {
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          const int64_t window = absl::ToInt64Milliseconds(absl::Now() - since);
          return HasData(StrCat(R"(count_over_time(up{role="all"}[)", window, "ms]) >= 2"));
        },
        kWait))
        << Diagnostics();
  }

  // The alert's state ("pending", "firing"), or "" while inactive.
  std::string AlertState(std::string_view name) {
    auto alerts = prom_->Alerts();
    if (!alerts.ok()) return "";
    std::string state;
    for (const auto& a : *alerts) {
      if (a.name == name && state != "firing") state = a.state;
    }
    return state;
  }

  std::string Diagnostics() {
    std::string alerts;
    if (auto a = prom_->Alerts(); a.ok()) {
      for (const auto& x : *a) StrAppend(&alerts, x.name, "=", x.state, " ");
    }
    return StrCat("\nactive alerts: ", alerts, "\nherald log:\n", stack_->herald().Logs(),
                  "\nprometheus log:\n", prom_->Logs());
  }

  // A team of the tenant on upstream team `sim_team`, with its accounts.
  std::vector<std::string> Team(const std::string& key, const std::string& id, int sim_team) {
    auto team = testing::CreateTeamWithAccounts(stack_->channel(), key, kTenant,
                                                {.team_id = id, .sim_team = sim_team});
    EXPECT_TRUE(team.ok()) << team.status();
    return team.ok() ? team->accounts : std::vector<std::string>();
  }

  std::string Media(const std::string& key, const std::string& url) {
    auto media =
        testing::CreateMediaAsset(stack_->channel(), key, kTenant, v1::MediaAsset::IMAGE, url);
    EXPECT_TRUE(media.ok()) << media.status();
    return media.value_or("");
  }

  // Creates a campaign; retried (with the same request_id) while herald is unreachable, as a
  // client does after herald was restarted.
  std::string Campaign(const std::string& key, const std::vector<std::string>& accounts,
                       const std::string& media) {
    v1::CreateCampaignRequest req =
        testing::CampaignToFans(kTenant, accounts, "Watched by Prometheus", 900, media);
    req.set_request_id(StrCat("observability-", ++campaigns_));
    v1::Campaign created;
    grpc::Status s;
    testing::WaitFor(
        [&] {
          s = v1::CampaignService::NewStub(stack_->channel())
                  ->CreateCampaign(BearerContext(key).get(), req, &created);
          return s.error_code() != grpc::StatusCode::UNAVAILABLE;
        },
        kWait);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return created.name();
  }

  v1::Campaign::State CampaignState(const std::string& key, const std::string& campaign) {
    v1::GetCampaignRequest req;
    req.set_name(campaign);
    v1::Campaign c;
    v1::CampaignService::NewStub(stack_->channel())->GetCampaign(BearerContext(key).get(), req, &c);
    return c.state();
  }

  // The state of the campaign's only delivery (STATE_UNSPECIFIED until it exists).
  v1::Delivery::State DeliveryState(const std::string& key, const std::string& campaign) {
    v1::ListDeliveriesRequest req;
    req.set_parent(campaign);
    v1::ListDeliveriesResponse resp;
    grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                         ->ListDeliveries(BearerContext(key).get(), req, &resp);
    return s.ok() && resp.deliveries_size() == 1 ? resp.deliveries(0).state()
                                                 : v1::Delivery::STATE_UNSPECIFIED;
  }

  absl::Status SimPost(const std::string& path, const std::string& body) {
    auto r = testing::HttpRequest(stack_->sim().port(), "POST", path, body);
    if (!r.ok()) return r.status();
    if (r->status != 200)
      return absl::InternalError(StrCat(path, ": HTTP ", r->status, " ", r->body));
    return absl::OkStatus();
  }

  // A campaign of `media` to `account` that ends with its one delivery failed.
  void FailedCampaign(const std::string& key, const std::string& account,
                      const std::string& media) {
    const std::string campaign = Campaign(key, {account}, media);
    ASSERT_TRUE(testing::WaitFor(
        [&] { return DeliveryState(key, campaign) == v1::Delivery::FAILED; }, kWait))
        << campaign << Diagnostics();
  }

  // Kills herald while a send of `account` is in flight (the upstream holds sends for 3 s), and
  // starts it again: the send job's lease expires and the new process reaps it.
  void KillDuringSend(const std::string& key, const std::string& account,
                      const std::string& media) {
    const std::string campaign = Campaign(key, {account}, media);
    ASSERT_TRUE(testing::WaitFor(
        [&] { return DeliveryState(key, campaign) == v1::Delivery::SENDING; }, kWait))
        << campaign << Diagnostics();
    stack_->herald().process().Kill();
    const absl::Status restarted = stack_->herald().Restart();
    ASSERT_TRUE(restarted.ok()) << restarted;
  }

  std::unique_ptr<HeraldStack> stack_;
  std::unique_ptr<PrometheusServer> prom_;
  absl::Time started_;
  int campaigns_ = 0;
};

TEST_F(ObservabilityTest, EveryPanelQueryAndAlertWorksAgainstARealPrometheus) {
  auto dashboards = testing::LoadDashboards(testing::SourcePath("deploy/grafana/dashboards"));
  ASSERT_TRUE(dashboards.ok()) << dashboards.status();
  auto rules = testing::LoadAlertRules(testing::SourcePath("deploy/prometheus/herald-rules.yml"));
  ASSERT_TRUE(rules.ok()) << rules.status();
  for (const testing::AlertRule& r : *rules) {
    ASSERT_TRUE(kSilentAlerts.contains(r.name) != kInjectedAlerts.contains(r.name))
        << r.name << " must be listed once here: injected by this test, or silent with a reason";
  }

  // A tenant with four teams: "main" (upstream 503s on reads), "storm" (429s), "revoked"
  // (401s) and "broke" (402s). The upstream client's series exist at 0 in a scrape before any of
  // them fails, so increase() sees every failure.
  auto key_or = testing::CreateTenant(stack_->channel(), kAdminKey, kTenant);
  ASSERT_TRUE(key_or.ok()) << key_or.status();
  const std::string key = *key_or;
  const std::vector<std::string> main = Team(key, "main", 1);
  const std::vector<std::string> storm = Team(key, "storm", 2);
  const std::vector<std::string> revoked = Team(key, "revoked", 3);
  const std::vector<std::string> broke = Team(key, "broke", 4);
  ASSERT_EQ(main.size(), 3u);
  ASSERT_EQ(storm.size(), 3u);
  ASSERT_EQ(revoked.size(), 3u);
  ASSERT_EQ(broke.size(), 3u);
  const std::string image = Media(key, "https://cdn.example.com/set.jpg");
  const std::string refused = Media(key, "https://fail.invalid/set.jpg");  // the upstream fails it
  ASSERT_TRUE(testing::WaitFor(
      [&] { return HasData(R"(herald_upstream_requests_total{outcome="unauthorized"})"); }, kWait))
      << Diagnostics();

  // Faults: the storm team's upstream limit drops to 1 call a minute (Herald still allows itself
  // 60000), the revoked team's key becomes one the upstream does not know, the broke team has
  // no credits left, and some reads of the main team fail with 503.
  ASSERT_TRUE(SimPost("/_sim/teams/team-2", R"({"rate_limit_per_minute":1})").ok());
  ASSERT_TRUE(SimPost("/_sim/teams/team-4", R"({"credits":0})").ok());
  {
    v1::UpdateTeamRequest req;
    req.mutable_team()->set_name(StrCat("tenants/", kTenant, "/teams/revoked"));
    req.mutable_team()->set_upstream_api_key("sim-key-revoked");
    req.mutable_update_mask()->add_paths("upstream_api_key");
    v1::Team updated;
    grpc::Status s = v1::AccountService::NewStub(stack_->channel())
                         ->UpdateTeam(BearerContext(key).get(), req, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_TRUE(SimPost("/_sim/faults",
                      R"({"team":"team-1","methods":["GET"],"error_rate":0.5,"error_status":503,)"
                      R"("count":6})")
                  .ok());

  // A client mistake: the API answers NOT_FOUND.
  {
    v1::GetCampaignRequest req;
    req.set_name(StrCat("tenants/", kTenant, "/campaigns/no-such-campaign"));
    v1::Campaign c;
    grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                         ->GetCampaign(BearerContext(key).get(), req, &c);
    ASSERT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  }

  // The campaigns: one that completes with webhooks (views, purchases, duplicates), one stuck
  // behind 429s, one on the revoked key, and one whose media the upstream refuses.
  const std::string delivered = Campaign(key, main, image);
  Campaign(key, storm, image);
  Campaign(key, revoked, image);
  Campaign(key, broke, image);
  FailedCampaign(key, main[0], refused);
  ASSERT_TRUE(testing::WaitFor([&] { return Final(CampaignState(key, delivered)); }, kWait))
      << Diagnostics();
  EXPECT_EQ(CampaignState(key, delivered), v1::Campaign::COMPLETED);
  // The storm team, whose upstream limit is 1 a minute while Herald allows it 60,000, is found
  // by HeraldTeamLimitAboveUpstream's expression.
  const auto limit_alert = std::find_if(
      rules->begin(), rules->end(),
      [](const testing::AlertRule& r) { return r.name == "HeraldTeamLimitAboveUpstream"; });
  ASSERT_NE(limit_alert, rules->end());
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        auto r = prom_->Query(limit_alert->expr);
        return r.ok() && std::any_of(r->samples.begin(), r->samples.end(), [](const auto& s) {
                 return s.labels.contains("team") && s.labels.at("team") == "storm";
               });
      },
      kWait))
      << Diagnostics();
  // The credits gauge carries the balance the upstream reported (not its initial 0).
  EXPECT_TRUE(testing::WaitFor(
      [&] { return HasData("herald_upstream_credits_balance > 0 < 10000"); }, kWait))
      << Diagnostics();
  // Every kind's dead-letter series exists at 0 from the first poll on; a second dead letter
  // once Prometheus has seen the first keeps the increase inside the alert's window.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return HasData(R"(herald_queue_finished_jobs_total{outcome="dead"})"); }, kWait))
      << Diagnostics();
  FailedCampaign(key, main[1], refused);

  // Leases left behind by a killed worker, twice for the same reason. Before each kill,
  // Prometheus samples what the process exported.
  WaitScrapedTwiceSince(absl::Now());
  ASSERT_TRUE(SimPost("/_sim/faults",
                      R"({"team":"team-1","methods":["POST"],)"
                      R"("path_contains":"/mass-messaging","latency_ms":{"fixed":3000}})")
                  .ok());
  KillDuringSend(key, main[2], image);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return HasData(R"(herald_queue_finished_jobs_total{outcome="expired"})"); }, kWait))
      << Diagnostics();
  WaitScrapedTwiceSince(absl::Now());
  KillDuringSend(key, main[0], image);

  // Every alert injected so far becomes pending or firing.
  for (const char* name :
       {"HeraldDown", "HeraldJobsDeadLettered", "HeraldLeasesExpiring", "HeraldUpstreamRateLimited",
        "HeraldUpstreamCreditsLow", "HeraldUpstreamUnauthorized", "HeraldUpstreamOutOfCredits"}) {
    EXPECT_TRUE(testing::WaitFor([&] { return !AlertState(name).empty(); }, kWait))
        << name << " (" << kInjectedAlerts.at(name) << ") is not pending or firing"
        << Diagnostics();
  }

  // A live scrape: promtool accepts it, and the catalogue documents exactly its families, those
  // of the upstream's responses once the restarted process has called the upstream (its reaped
  // send is reconciled).
  absl::StatusOr<testing::HttpResponse> scrape;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        scrape = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
        return scrape.ok() && scrape->status == 200 &&
               scrape->body.find("\nherald_upstream_responses_total{") != std::string::npos;
      },
      kWait))
      << Diagnostics();
  const absl::Status promtool = testing::PromtoolCheckMetrics(scrape->body);
  EXPECT_TRUE(promtool.ok()) << promtool;
  auto operations = testing::ReadTextFile(testing::SourcePath("docs/operations.md"));
  ASSERT_TRUE(operations.ok()) << operations.status();
  const auto catalogue = testing::ParseMetricsCatalogue(*operations);
  const auto families = testing::ExpositionFamilies(scrape->body);
  for (const auto& [name, type] : families) {
    const auto it = catalogue.find(name);
    if (it == catalogue.end()) {
      ADD_FAILURE() << name << " (" << type << ") is exported but not in docs/operations.md";
    } else {
      EXPECT_EQ(it->second.type, type) << name << "'s type in docs/operations.md";
    }
  }
  for (const auto& [name, entry] : catalogue) {
    EXPECT_TRUE(families.contains(name)) << name << " is in docs/operations.md but not exported";
  }
  // The simulator's own metrics: a valid exposition, scraped by Prometheus with the requests it
  // answered 429 for the storm team.
  auto sim_scrape = testing::HttpGet(stack_->sim().port(), "/metrics");
  ASSERT_TRUE(sim_scrape.ok()) << sim_scrape.status();
  EXPECT_EQ(sim_scrape->status, 200);
  const absl::Status sim_promtool = testing::PromtoolCheckMetrics(sim_scrape->body);
  EXPECT_TRUE(sim_promtool.ok()) << sim_promtool;
  EXPECT_TRUE(testing::WaitFor(
      [&] { return HasData(R"(upstream_sim_requests_total{job="upstream-sim", code="429"} > 0)"); },
      kWait))
      << Diagnostics();

  // Redis goes away while a send is in flight: the instance loses its connections and its
  // queue statistics, and the worker can neither heartbeat nor finish the job it holds.
  {
    const std::string campaign = Campaign(key, {main[1]}, image);
    ASSERT_TRUE(testing::WaitFor(
        [&] { return DeliveryState(key, campaign) == v1::Delivery::SENDING; }, kWait))
        << campaign << Diagnostics();
  }
  ASSERT_TRUE(stack_->redis().Stop().ok());
  EXPECT_TRUE(testing::WaitFor([&] { return HasData("herald_queue_worker_errors_total"); }, kWait))
      << Diagnostics();
  WaitScrapedTwiceSince(absl::Now());
  for (const char* name : {"HeraldRedisUnavailable", "HeraldQueueStatsFailing"}) {
    EXPECT_TRUE(testing::WaitFor([&] { return !AlertState(name).empty(); }, kWait))
        << name << " (" << kInjectedAlerts.at(name) << ") is not pending or firing"
        << Diagnostics();
  }

  // Every panel query and variable of every dashboard, with "All" selected and the whole run as
  // the rate interval.
  const std::map<std::string, std::string> vars = {
      {"namespace", ".*"},
      {"role", ".*"},
      {"instance", ".*"},
      {"tenant", ".*"},
      {"team", ".*"},
      {"__rate_interval", StrCat(absl::ToInt64Seconds(absl::Now() - started_) + 5, "s")}};
  int queries = 0;
  for (const testing::Dashboard& d : *dashboards) {
    for (const testing::DashboardPanel& p : d.panels) {
      for (const testing::DashboardQuery& q : p.queries) {
        const std::string expr = testing::ExpandVariables(q.expr, vars);
        auto r = prom_->Query(expr);
        ++queries;
        if (!r.ok()) {
          ADD_FAILURE() << d.file << " / " << p.title << " / " << q.ref_id << ": " << r.status()
                        << "\n"
                        << expr;
          continue;
        }
        const bool data = std::any_of(r->samples.begin(), r->samples.end(),
                                      [](const auto& s) { return !std::isnan(s.value); });
        EXPECT_TRUE(data) << d.file << " / " << p.title << " / " << q.ref_id
                          << " returns no data:\n"
                          << expr << "\n"
                          << Render(*r);
      }
    }
    static const std::regex kLabelValues(R"(^label_values\((.*),\s*(\w+)\)$)");
    for (const testing::DashboardVariable& v : d.variables) {
      if (v.type != "query") continue;
      std::smatch m;
      ASSERT_TRUE(std::regex_match(v.query, m, kLabelValues)) << d.file << " $" << v.name;
      const std::string label = m[2];
      const std::string expr =
          StrCat("count by (", label, ") (", testing::ExpandVariables(m[1].str(), vars), ")");
      auto r = prom_->Query(expr);
      ASSERT_TRUE(r.ok()) << d.file << " $" << v.name << ": " << r.status() << "\n" << expr;
      EXPECT_TRUE(std::any_of(r->samples.begin(), r->samples.end(),
                              [&](const auto& s) { return s.labels.contains(label); }))
          << d.file << " $" << v.name << " offers no value: " << expr;
    }
  }
  EXPECT_GT(queries, 40);

  // Every alert expression; the injected alerts' return data and are pending or firing, with
  // annotations Prometheus could render.
  auto alerts = prom_->Alerts();
  ASSERT_TRUE(alerts.ok()) << alerts.status();
  for (const testing::AlertRule& rule : *rules) {
    auto r = prom_->Query(rule.expr);
    ASSERT_TRUE(r.ok()) << rule.name << ": " << r.status() << "\n" << rule.expr;
    if (kSilentAlerts.contains(rule.name)) continue;
    EXPECT_FALSE(r->samples.empty()) << rule.name << " returns no data:\n" << rule.expr;
    int active = 0;
    for (const auto& a : *alerts) {
      if (a.name != rule.name) continue;
      ++active;
      EXPECT_TRUE(a.state == "pending" || a.state == "firing") << rule.name << ": " << a.state;
      for (const char* annotation : {"summary", "description", "runbook_url"}) {
        const auto it = a.annotations.find(annotation);
        ASSERT_TRUE(it != a.annotations.end()) << rule.name << " has no " << annotation;
        EXPECT_FALSE(it->second.empty()) << rule.name << " " << annotation;
        EXPECT_EQ(it->second.find("error expanding template"), std::string::npos)
            << rule.name << " " << annotation << ": " << it->second;
      }
    }
    EXPECT_GT(active, 0) << rule.name << " (" << kInjectedAlerts.at(rule.name)
                         << ") is not pending or firing" << Diagnostics();
  }
  EXPECT_LT(absl::Now() - started_, absl::Seconds(90)) << "the run took too long";
}

}  // namespace
}  // namespace herald
