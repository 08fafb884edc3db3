// Automations end to end: the real herald binary (all roles), a real redis-server and the
// upstream simulator. Rules are made over gRPC (and heraldctl); new subscribers, renewals and
// expiries come from the simulator as signed subscriptions.* webhooks to Herald's ingest port;
// the simulator's own lists are the ground truth of what the rules did.
#include <algorithm>
#include <set>

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/herald_stack_suite.h>
#include <herald/testing/net.h>
#include <herald/testing/observability.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/wait.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/audience.grpc.pb.h>
#include <herald/v1/automation.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/events.grpc.pb.h>

namespace herald {
namespace {

namespace json = boost::json;
using testing::BearerContext;
using testing::CommandResult;
using testing::HeraldStack;
using testing::ShortId;

constexpr char kAdminKey[] = "admin-secret-for-automation-tests";
constexpr int kSimTeam = 1;

class AutomationsEndToEndTest : public testing::HeraldStackSuite<AutomationsEndToEndTest> {
 public:
  static HeraldStack::Options StackOptions() {
    return {.simulator_args = {"--teams=1", "--accounts_per_team=2", "--fans_per_account=5",
                               "--rate_limit_per_minute=100000", "--webhook_retry_base=50ms"},
            .herald_args = {"--log_level=warn"},
            .admin_key = kAdminKey,
            .encryption_key = std::string(64, 'c'),
            .register_webhooks = true};
  }

 protected:
  void TearDown() override {
    if (HasFailure() && stack_ != nullptr) {
      const std::string logs = stack_->herald().Logs();
      std::cerr << "herald logs (last 4000 bytes):\n"
                << logs.substr(logs.size() > 4000 ? logs.size() - 4000 : 0) << "\n";
    }
  }

  // A tenant and a key of it.
  static std::string NewTenant(const std::string& id) {
    auto key = testing::CreateTenant(stack_->channel(), kAdminKey, id);
    EXPECT_TRUE(key.ok()) << key.status();
    return key.value_or("");
  }

  // The simulator's team as the tenant's team "main" (its webhook registered on creation), and
  // its accounts' names, sorted.
  static std::vector<std::string> NewTeam(const std::string& tenant, const std::string& key,
                                          v1::Team* team) {
    auto created =
        testing::CreateTeamWithAccounts(stack_->channel(), key, tenant, {.sim_team = kSimTeam});
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return {};
    *team = created->team;
    EXPECT_TRUE(team->webhook_id().starts_with("wh_")) << team->webhook_error();
    std::vector<std::string> names = created->accounts;
    std::sort(names.begin(), names.end());
    return names;
  }

  // A new custom list on `account`; its id.
  static std::string NewList(const std::string& key, const std::string& account,
                             const std::string& name) {
    v1::CreateUserListRequest req;
    req.set_account(account);
    req.set_display_name(name);
    v1::UserList list;
    grpc::Status s = v1::AudienceService::NewStub(stack_->channel())
                         ->CreateUserList(BearerContext(key).get(), req, &list);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return list.id();
  }

  static grpc::Status CreateRule(const std::string& key, const std::string& tenant,
                                 const std::string& account, const std::string& list,
                                 v1::Automation* out, const std::string& request_id = "",
                                 v1::Automation::Trigger trigger = v1::Automation::NEW_SUBSCRIBER,
                                 v1::Automation::Action action = v1::Automation::ADD_TO_LIST) {
    v1::CreateAutomationRequest req;
    req.set_parent(StrCat("tenants/", tenant));
    req.mutable_automation()->set_account(account);
    req.mutable_automation()->set_trigger(trigger);
    req.mutable_automation()->set_action(action);
    req.mutable_automation()->set_user_list_id(list);
    req.set_request_id(request_id);
    return v1::AutomationService::NewStub(stack_->channel())
        ->CreateAutomation(BearerContext(key).get(), req, out);
  }

  static grpc::Status GetRule(const std::string& key, const std::string& name,
                              v1::Automation* out) {
    v1::GetAutomationRequest req;
    req.set_name(name);
    return v1::AutomationService::NewStub(stack_->channel())
        ->GetAutomation(BearerContext(key).get(), req, out);
  }

  // The upstream's view, with the team's key: one page of a list's members (ids).
  static std::set<int64_t> Members(const std::string& account, const std::string& list) {
    absl::StatusOr<std::set<int64_t>> ids = testing::ReadListMembers(
        stack_->sim().port(), ShortId(account), list, StrCat("sim-key-", kSimTeam));
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *std::move(ids) : std::set<int64_t>();
  }

  // The team webhook's delivery records, newest first.
  static json::array Deliveries(const std::string& webhook) {
    auto r = testing::HttpRequest(stack_->sim().port(), "GET",
                                  StrCat("/api/webhooks/", webhook, "/deliveries?limit=100"), "",
                                  {{"Authorization", StrCat("Bearer sim-key-", kSimTeam)}});
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    if (!r.ok() || r->status != 200) return {};
    json::value body = json::parse(r->body);
    json::value& data = body.as_object().contains("data") ? body.at("data") : body;
    return data.is_array() ? data.as_array() : json::array();
  }

  // Idempotency keys of the subscriptions.new deliveries Herald acknowledged.
  static std::set<std::string> AcknowledgedSubscriptions(const std::string& webhook) {
    std::set<std::string> keys;
    for (const auto& d : Deliveries(webhook)) {
      if (d.at("event").as_string() == "subscriptions.new" && d.at("success").as_bool()) {
        keys.insert(std::string(d.at("idempotency_key").as_string()));
      }
    }
    return keys;
  }

  // The events the upstream delivers to `webhook`.
  static std::set<std::string> WebhookEvents(const std::string& webhook) {
    auto r = testing::HttpRequest(stack_->sim().port(), "GET", StrCat("/api/webhooks/", webhook),
                                  "", {{"Authorization", StrCat("Bearer sim-key-", kSimTeam)}});
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    std::set<std::string> events;
    if (!r.ok() || r->status != 200) return events;
    const json::value body = json::parse(r->body);
    for (const auto& e : body.at("data").at("events").as_array()) {
      events.emplace(e.as_string());
    }
    return events;
  }

  // The simulator emits `event` about `fan` of `account` (signed, to the webhooks that carry it).
  static void Emit(const std::string& account, std::string_view event, int64_t fan) {
    auto r = testing::HttpRequest(stack_->sim().port(), "POST",
                                  StrCat("/_sim/accounts/", ShortId(account), "/events"),
                                  StrCat(R"({"event":")", event, R"(","fan":)", fan, "}"));
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
  }

  // A new subscriber of `account` in the simulator, announced by a signed webhook.
  static void Subscribe(const std::string& account) {
    auto r = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/subscribers",
                                  StrCat(R"({"account":")", ShortId(account), R"(","count":1})"));
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
  }

  // One series of Herald's metrics; 0 before it is first reported.
  static double Metric(std::string_view family, std::string_view result) {
    auto r = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return -1;
    return testing::SeriesValue(r->body, StrCat(family, "{result=\"", result, "\"}")).value_or(0);
  }

  // Jobs the workers have finished, whatever their result.
  static double ActionsFinished() {
    return Metric("herald_automation_actions_total", "added") +
           Metric("herald_automation_actions_total", "removed") +
           Metric("herald_automation_actions_total", "skipped") +
           Metric("herald_automation_actions_total", "failed");
  }
};

TEST_F(AutomationsEndToEndTest, ANewSubscriberLandsInTheRulesListOnceAndOnlyItsAccountsRuleFires) {
  const std::string key = NewTenant("agency");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("agency", key, &team);
  ASSERT_EQ(accounts.size(), 2u);
  const std::string& a = accounts[0];
  const std::string& b = accounts[1];
  const std::string list_a = NewList(key, a, "New subscribers");
  const std::string list_b = NewList(key, b, "New subscribers");
  v1::Automation rule_a, rule_b;
  grpc::Status s = CreateRule(key, "agency", a, list_a, &rule_a);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = CreateRule(key, "agency", b, list_b, &rule_b);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(rule_a.name().starts_with("tenants/agency/automations/"));
  EXPECT_EQ(rule_a.account(), a);
  EXPECT_EQ(rule_a.trigger(), v1::Automation::NEW_SUBSCRIBER);
  EXPECT_EQ(rule_a.user_list_id(), list_a);
  EXPECT_TRUE(rule_a.has_create_time());
  const std::set<int64_t> fans_before = Members(a, "fans");

  // A fan subscribes to A: the simulator's signed webhook reaches the ingest, the rule's job
  // runs, and the fan is in A's list.
  Subscribe(a);
  std::set<int64_t> in_list;
  ASSERT_TRUE(testing::WaitFor([&] {
    in_list = Members(a, list_a);
    return !in_list.empty();
  })) << stack_->herald().Logs();
  ASSERT_EQ(in_list.size(), 1u);
  const int64_t fan = *in_list.begin();
  EXPECT_FALSE(fans_before.contains(fan));
  EXPECT_TRUE(Members(a, "fans").contains(fan));  // the new subscriber, not someone else
  std::set<std::string> acknowledged;
  ASSERT_TRUE(testing::WaitFor([&] {
    acknowledged = AcknowledgedSubscriptions(team.webhook_id());
    return !acknowledged.empty();
  }));
  ASSERT_EQ(acknowledged.size(), 1u);
  // One job, done: B's rule did not fire, and its list is empty.
  EXPECT_EQ(Metric("herald_automation_triggers_total", "enqueued"), 1);
  ASSERT_TRUE(
      testing::WaitFor([&] { return Metric("herald_automation_actions_total", "added") == 1; }));
  EXPECT_TRUE(Members(b, list_b).empty());

  // The rule counts the fan.
  v1::Automation got;
  s = GetRule(key, rule_a.name(), &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.fans_added(), 1);
  s = GetRule(key, rule_b.name(), &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.fans_added(), 0);

  // The upstream delivers the same event again (a manual redelivery: byte-identical body, the
  // same idempotency key). Herald acknowledges it and enqueues nothing new.
  std::string first;
  for (const auto& d : Deliveries(team.webhook_id())) {
    if (d.at("event").as_string() == "subscriptions.new" && d.at("success").as_bool()) {
      first = std::string(d.at("id").as_string());
    }
  }
  ASSERT_FALSE(first.empty());
  auto redeliver = testing::HttpRequest(
      stack_->sim().port(), "POST",
      StrCat("/api/webhooks/", team.webhook_id(), "/deliveries/", first, "/redeliver"), "",
      {{"Authorization", StrCat("Bearer sim-key-", kSimTeam)}});
  ASSERT_TRUE(redeliver.ok() && redeliver->status == 200)
      << (redeliver.ok() ? redeliver->body : redeliver.status().ToString());
  ASSERT_TRUE(testing::WaitFor([&] {
    for (const auto& d : Deliveries(team.webhook_id())) {
      if (d.at("redelivery_of").is_string() && d.at("redelivery_of").as_string() == first &&
          d.at("success").as_bool()) {
        return true;
      }
    }
    return false;
  }));
  EXPECT_EQ(Metric("herald_automation_triggers_total", "duplicate"), 1);
  EXPECT_EQ(Metric("herald_automation_triggers_total", "enqueued"), 1);
  EXPECT_EQ(ActionsFinished(), 1);
  EXPECT_EQ(Members(a, list_a), (std::set<int64_t>{fan}));
}

// A win-back rule: the team's webhook does not carry expiries until a rule needs them, then
// each expiry puts its fan in the rule's list, and deleting the rule takes the event off again.
TEST_F(AutomationsEndToEndTest, AnExpiryRuleSubscribesTheTeamToExpiriesAndListsTheirFans) {
  const std::string key = NewTenant("winback");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("winback", key, &team);
  ASSERT_FALSE(accounts.empty());
  const std::string& a = accounts[0];
  const std::set<std::string> own = WebhookEvents(team.webhook_id());
  EXPECT_TRUE(own.contains("subscriptions.new"));
  EXPECT_FALSE(own.contains("subscriptions.expired"));
  EXPECT_FALSE(own.contains("subscriptions.renewed"));

  const std::string list = NewList(key, a, "Win-back");
  // The upstream refuses the webhook's new events once: the rule is refused and not stored.
  auto fault = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/faults",
      R"({"methods":["PUT"],"path_contains":"/api/webhooks/","error_rate":1,"error_status":422,"error_code":"invalid_events","count":1})");
  ASSERT_TRUE(fault.ok() && fault->status == 200)
      << (fault.ok() ? fault->body : fault.status().ToString());
  v1::Automation rule;
  grpc::Status s =
      CreateRule(key, "winback", a, list, &rule, "", v1::Automation::SUBSCRIPTION_EXPIRED);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("webhook")) << s.error_message();
  v1::ListAutomationsRequest list_rules;
  list_rules.set_parent("tenants/winback");
  v1::ListAutomationsResponse listed;
  grpc::Status listed_status = v1::AutomationService::NewStub(stack_->channel())
                                   ->ListAutomations(BearerContext(key).get(), list_rules, &listed);
  ASSERT_TRUE(listed_status.ok()) << listed_status.error_message();
  EXPECT_EQ(listed.automations_size(), 0);
  EXPECT_EQ(WebhookEvents(team.webhook_id()), own);

  s = CreateRule(key, "winback", a, list, &rule, "", v1::Automation::SUBSCRIPTION_EXPIRED);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(rule.trigger(), v1::Automation::SUBSCRIPTION_EXPIRED);
  std::set<std::string> widened = own;
  widened.insert("subscriptions.expired");
  EXPECT_EQ(WebhookEvents(team.webhook_id()), widened);

  // One fan's subscription renews (no rule, and the webhook does not carry it), another's
  // expires: only the second lands in the list.
  const std::set<int64_t> fans = Members(a, "fans");
  ASSERT_GE(fans.size(), 2u);
  const int64_t renewing = *fans.begin();
  const int64_t leaving = *fans.rbegin();
  Emit(a, "subscriptions.renewed", renewing);
  Emit(a, "subscriptions.expired", leaving);
  ASSERT_TRUE(testing::WaitFor([&] {
    return Metric("herald_automation_actions_total", "added") == 1;
  })) << stack_->herald().Logs();
  EXPECT_EQ(Members(a, list), (std::set<int64_t>{leaving}));
  EXPECT_EQ(Metric("herald_automation_triggers_total", "enqueued"), 1);

  // The expiry is an applied event: EventService streams it with its fan.
  v1::SubscribeRequest subscribe;
  subscribe.set_parent("tenants/winback");
  subscribe.set_cursor("0");
  subscribe.add_event_types("subscriptions.expired");
  auto stream_ctx = BearerContext(key);
  auto reader =
      v1::EventService::NewStub(stack_->channel())->Subscribe(stream_ctx.get(), subscribe);
  v1::Event streamed;
  ASSERT_TRUE(reader->Read(&streamed)) << reader->Finish().error_message();
  EXPECT_EQ(streamed.event_type(), "subscriptions.expired");
  EXPECT_EQ(streamed.account(), a);
  EXPECT_EQ(streamed.fan_id(), leaving);
  stream_ctx->TryCancel();
  reader->Finish();

  v1::DeleteAutomationRequest del;
  del.set_name(rule.name());
  v1::DeleteAutomationResponse deleted;
  s = v1::AutomationService::NewStub(stack_->channel())
          ->DeleteAutomation(BearerContext(key).get(), del, &deleted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(WebhookEvents(team.webhook_id()), own);
}

// A win-back list: one rule adds each fan whose subscription expires, another takes each fan
// who renews off it again.
// A request_id reused for another rule is ALREADY_EXISTS, and changes nothing: not the store,
// and not the team's webhook on the upstream either.
TEST_F(AutomationsEndToEndTest, ARequestIdReusedForAnotherRuleChangesNothingUpstream) {
  const std::string key = NewTenant("reuse");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("reuse", key, &team);
  ASSERT_FALSE(accounts.empty());
  const std::string list = NewList(key, accounts[0], "Reused");
  const std::set<std::string> own = WebhookEvents(team.webhook_id());
  ASSERT_FALSE(own.contains("subscriptions.expired"));
  v1::Automation first;
  grpc::Status s = CreateRule(key, "reuse", accounts[0], list, &first, "rule-1");
  ASSERT_TRUE(s.ok()) << s.error_message();

  v1::Automation other;
  s = CreateRule(key, "reuse", accounts[0], list, &other, "rule-1",
                 v1::Automation::SUBSCRIPTION_EXPIRED);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_EQ(WebhookEvents(team.webhook_id()), own);
  // The same request again gets the first rule.
  v1::Automation again;
  s = CreateRule(key, "reuse", accounts[0], list, &again, "rule-1");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.name(), first.name());
}

TEST_F(AutomationsEndToEndTest, AWinBackListGainsExpiringFansAndLosesThemWhenTheyRenew) {
  const std::string key = NewTenant("comeback");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("comeback", key, &team);
  ASSERT_FALSE(accounts.empty());
  const std::string& a = accounts[0];
  const std::string list = NewList(key, a, "Win-back");
  v1::Automation adder;
  grpc::Status s =
      CreateRule(key, "comeback", a, list, &adder, "", v1::Automation::SUBSCRIPTION_EXPIRED);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::Automation remover;
  s = CreateRule(key, "comeback", a, list, &remover, "", v1::Automation::SUBSCRIPTION_RENEWED,
                 v1::Automation::REMOVE_FROM_LIST);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(remover.action(), v1::Automation::REMOVE_FROM_LIST);
  const std::set<std::string> events = WebhookEvents(team.webhook_id());
  EXPECT_TRUE(events.contains("subscriptions.expired"));
  EXPECT_TRUE(events.contains("subscriptions.renewed"));

  const std::vector<int64_t> fans = [&] {
    const std::set<int64_t> all = Members(a, "fans");
    return std::vector<int64_t>(all.begin(), all.end());
  }();
  ASSERT_GE(fans.size(), 3u);
  Emit(a, "subscriptions.expired", fans[0]);
  Emit(a, "subscriptions.expired", fans[1]);
  ASSERT_TRUE(testing::WaitFor([&] {
    return Metric("herald_automation_actions_total", "added") == 2;
  })) << stack_->herald().Logs();
  EXPECT_EQ(Members(a, list), (std::set<int64_t>{fans[0], fans[1]}));

  // The first fan comes back and leaves the list; a renewal of a fan who never left changes
  // nothing.
  Emit(a, "subscriptions.renewed", fans[0]);
  Emit(a, "subscriptions.renewed", fans[2]);
  ASSERT_TRUE(testing::WaitFor([&] {
    return Metric("herald_automation_actions_total", "removed") == 2;
  })) << stack_->herald().Logs();
  EXPECT_EQ(Members(a, list), (std::set<int64_t>{fans[1]}));
  EXPECT_EQ(Metric("herald_automation_actions_total", "failed"), 0);

  v1::Automation got;
  s = GetRule(key, adder.name(), &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.fans_added(), 2);
  EXPECT_EQ(got.fans_removed(), 0);
  s = GetRule(key, remover.name(), &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.action(), v1::Automation::REMOVE_FROM_LIST);
  EXPECT_EQ(got.fans_removed(), 2);
  EXPECT_EQ(got.fans_added(), 0);
}

// A buyers list: each fan who buys a priced message of the account lands in it.
TEST_F(AutomationsEndToEndTest, APurchaseRuleListsTheAccountsBuyers) {
  const std::string key = NewTenant("buyers");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("buyers", key, &team);
  ASSERT_FALSE(accounts.empty());
  const std::string& a = accounts[0];
  const std::string list = NewList(key, a, "Buyers");
  v1::Automation rule;
  grpc::Status s = CreateRule(key, "buyers", a, list, &rule, "", v1::Automation::PPV_UNLOCKED);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(rule.trigger(), v1::Automation::PPV_UNLOCKED);
  // Herald applies unlocks for itself: the team's webhook needed no change.
  EXPECT_TRUE(WebhookEvents(team.webhook_id()).contains("messages.ppv.unlocked"));

  // Every recipient buys, soon after the message reaches them.
  auto behavior = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/behavior",
      R"({"purchase_probability":1,"fan_behavior":"uniform","purchase_delay_min_ms":0,"purchase_delay_max_ms":100})");
  ASSERT_TRUE(behavior.ok() && behavior->status == 200)
      << (behavior.ok() ? behavior->body : behavior.status().ToString());
  auto media = testing::CreateMediaAsset(stack_->channel(), key, "buyers", v1::MediaAsset::IMAGE,
                                         "https://cdn.example.com/set.jpg");
  ASSERT_TRUE(media.ok()) << media.status();
  const v1::CreateCampaignRequest req =
      testing::CampaignToFans("buyers", {a}, "A new set", 500, *media);
  v1::Campaign campaign;
  s = v1::CampaignService::NewStub(stack_->channel())
          ->CreateCampaign(BearerContext(key).get(), req, &campaign);
  ASSERT_TRUE(s.ok()) << s.error_message();

  const std::set<int64_t> fans = Members(a, "fans");
  ASSERT_FALSE(fans.empty());
  ASSERT_TRUE(testing::WaitFor([&] {
    return Metric("herald_automation_actions_total", "added") == static_cast<double>(fans.size());
  })) << stack_->herald().Logs();
  EXPECT_EQ(Members(a, list), fans);
  EXPECT_EQ(Metric("herald_automation_actions_total", "failed"), 0);
  v1::Automation got;
  s = GetRule(key, rule.name(), &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.fans_added(), static_cast<int64_t>(fans.size()));
}

TEST_F(AutomationsEndToEndTest, ADeletedRuleStopsActing) {
  const std::string key = NewTenant("stopper");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("stopper", key, &team);
  ASSERT_FALSE(accounts.empty());
  const std::string& a = accounts[0];
  const std::string list = NewList(key, a, "Welcome");
  v1::Automation rule;
  grpc::Status s = CreateRule(key, "stopper", a, list, &rule);
  ASSERT_TRUE(s.ok()) << s.error_message();
  Subscribe(a);
  ASSERT_TRUE(testing::WaitFor([&] {
    return Metric("herald_automation_actions_total", "added") == 1;
  })) << stack_->herald().Logs();
  const std::set<int64_t> before = Members(a, list);
  ASSERT_EQ(before.size(), 1u);

  v1::DeleteAutomationRequest del;
  del.set_name(rule.name());
  v1::DeleteAutomationResponse deleted;
  s = v1::AutomationService::NewStub(stack_->channel())
          ->DeleteAutomation(BearerContext(key).get(), del, &deleted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::GetAutomationRequest get;
  get.set_name(rule.name());
  v1::Automation gone;
  s = v1::AutomationService::NewStub(stack_->channel())
          ->GetAutomation(BearerContext(key).get(), get, &gone);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  s = v1::AutomationService::NewStub(stack_->channel())
          ->DeleteAutomation(BearerContext(key).get(), del, &deleted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);

  // Another fan subscribes. Whether the ingest still had the rule cached (its job then finds the
  // rule gone) or not (nothing enqueued), once the event is acknowledged and every job enqueued
  // has finished, the list has not changed.
  Subscribe(a);
  ASSERT_TRUE(testing::WaitFor([&] {
    return AcknowledgedSubscriptions(team.webhook_id()).size() == 2 &&
           ActionsFinished() == Metric("herald_automation_triggers_total", "enqueued");
  })) << stack_->herald().Logs();
  EXPECT_EQ(Members(a, list), before);
  EXPECT_EQ(Metric("herald_automation_actions_total", "added"), 1);
}

TEST_F(AutomationsEndToEndTest, InvalidRulesAreRefusedAndNothingIsStored) {
  const std::string key = NewTenant("careful");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("careful", key, &team);
  ASSERT_FALSE(accounts.empty());
  const std::string& a = accounts[0];
  const std::string other_key = NewTenant("outsider");
  v1::Automation out;
  auto code = [](const grpc::Status& s) { return s.error_code(); };

  // Unknown account, another tenant's account, no list, a system list, no trigger.
  grpc::Status s = CreateRule(key, "careful", "tenants/careful/accounts/acct_nobody", "1", &out);
  EXPECT_EQ(code(s), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "automation.account: account 'acct_nobody' not found");
  s = CreateRule(other_key, "outsider", a, "1", &out);
  EXPECT_EQ(code(s), grpc::StatusCode::NOT_FOUND) << s.error_message();
  s = CreateRule(key, "careful", a, "", &out);
  EXPECT_EQ(code(s), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "automation.user_list_id: a custom list's numeric id is required (got '')");
  s = CreateRule(key, "careful", a, "fans", &out);
  EXPECT_EQ(code(s), grpc::StatusCode::INVALID_ARGUMENT);
  v1::CreateAutomationRequest no_trigger;
  no_trigger.set_parent("tenants/careful");
  no_trigger.mutable_automation()->set_account(a);
  no_trigger.mutable_automation()->set_user_list_id("1");
  s = v1::AutomationService::NewStub(stack_->channel())
          ->CreateAutomation(BearerContext(key).get(), no_trigger, &out);
  EXPECT_EQ(code(s), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "automation.trigger: required (NEW_SUBSCRIBER, SUBSCRIPTION_RENEWED, "
            "SUBSCRIPTION_EXPIRED or PPV_UNLOCKED)");
  // Another tenant's parent is not found; a wrong key is not authenticated.
  s = CreateRule(other_key, "careful", a, "1", &out);
  EXPECT_EQ(code(s), grpc::StatusCode::NOT_FOUND);
  s = CreateRule("hk_wrong", "careful", a, "1", &out);
  EXPECT_EQ(code(s), grpc::StatusCode::UNAUTHENTICATED);

  auto stub = v1::AutomationService::NewStub(stack_->channel());
  v1::ListAutomationsRequest list;
  list.set_parent("tenants/careful");
  v1::ListAutomationsResponse listed;
  s = stub->ListAutomations(BearerContext(key).get(), list, &listed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(listed.automations_size(), 0);

  // A retried create returns the first rule; rules page by id; another tenant sees none of them.
  v1::Automation first, again, second, third;
  ASSERT_TRUE(CreateRule(key, "careful", a, "11", &first, "req-1").ok());
  ASSERT_TRUE(CreateRule(key, "careful", a, "11", &again, "req-1").ok());
  EXPECT_EQ(first.name(), again.name());
  ASSERT_TRUE(CreateRule(key, "careful", a, "12", &second).ok());
  ASSERT_TRUE(CreateRule(key, "careful", accounts.back(), "13", &third).ok());
  list.set_page_size(2);
  s = stub->ListAutomations(BearerContext(key).get(), list, &listed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(listed.automations_size(), 2);
  EXPECT_EQ(listed.automations(0).name(), first.name());
  EXPECT_EQ(listed.automations(1).name(), second.name());
  ASSERT_FALSE(listed.next_page_token().empty());
  list.set_page_token(listed.next_page_token());
  s = stub->ListAutomations(BearerContext(key).get(), list, &listed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(listed.automations_size(), 1);
  EXPECT_EQ(listed.automations(0).name(), third.name());
  EXPECT_TRUE(listed.next_page_token().empty());
  // The token belongs to its tenant and its filter.
  v1::ListAutomationsRequest replayed = list;
  replayed.set_parent("tenants/outsider");
  s = stub->ListAutomations(BearerContext(other_key).get(), replayed, &listed);
  EXPECT_EQ(code(s), grpc::StatusCode::INVALID_ARGUMENT);
  list.set_account(a);
  s = stub->ListAutomations(BearerContext(key).get(), list, &listed);
  EXPECT_EQ(code(s), grpc::StatusCode::INVALID_ARGUMENT);
  list.clear_page_token();
  list.set_page_size(0);
  s = stub->ListAutomations(BearerContext(key).get(), list, &listed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(listed.automations_size(), 2);  // only A's

  v1::GetAutomationRequest get;
  get.set_name(first.name());
  s = stub->GetAutomation(BearerContext(other_key).get(), get, &out);
  EXPECT_EQ(code(s), grpc::StatusCode::NOT_FOUND);
  v1::DeleteAutomationRequest del;
  del.set_name(first.name());
  v1::DeleteAutomationResponse deleted;
  s = stub->DeleteAutomation(BearerContext(other_key).get(), del, &deleted);
  EXPECT_EQ(code(s), grpc::StatusCode::NOT_FOUND);
  s = stub->GetAutomation(BearerContext(key).get(), get, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();  // still there

  // An account a rule acts on is not deleted (the rule would act again were it registered
  // again); once its rules are gone, it is.
  auto accounts_stub = v1::AccountService::NewStub(stack_->channel());
  v1::DeleteAccountRequest remove;
  remove.set_name(accounts.back());
  v1::DeleteAccountResponse removed;
  s = accounts_stub->DeleteAccount(BearerContext(key).get(), remove, &removed);
  EXPECT_EQ(code(s), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("automation"));
  del.set_name(third.name());
  s = stub->DeleteAutomation(BearerContext(key).get(), del, &deleted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = accounts_stub->DeleteAccount(BearerContext(key).get(), remove, &removed);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// ---- heraldctl

TEST_F(AutomationsEndToEndTest, HeraldctlCreatesListsShowsAndDeletesRules) {
  const std::string key = NewTenant("operator");
  v1::Team team;
  const std::vector<std::string> accounts = NewTeam("operator", key, &team);
  ASSERT_FALSE(accounts.empty());
  const std::string account = ShortId(accounts[0]);
  auto run = [&](std::vector<std::string> args) {
    return testing::RunHeraldctl(stack_->herald().grpc_target(), std::move(args),
                                 {{"HERALD_API_KEY", key}, {"HERALD_TENANT", "operator"}});
  };

  const CommandResult created =
      run({"automations", "create", StrCat("--account=", account), "--list=77", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created;
  v1::Automation rule;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created.out, &rule).ok()) << created;
  EXPECT_EQ(rule.account(), accounts[0]);
  EXPECT_EQ(rule.user_list_id(), "77");
  EXPECT_EQ(rule.trigger(), v1::Automation::NEW_SUBSCRIBER);
  EXPECT_EQ(rule.action(), v1::Automation::ADD_TO_LIST);
  const std::string id = ShortId(rule.name());
  // The API's names, as `automations get` prints them, are taken too.
  const CommandResult removing =
      run({"automations", "create", StrCat("--account=", account), "--list=78",
           "--trigger=NEW_SUBSCRIBER", "--action=remove_from_list", "--json"});
  ASSERT_EQ(removing.exit_code, 0) << removing;
  v1::Automation remover;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(removing.out, &remover).ok()) << removing;
  EXPECT_EQ(remover.action(), v1::Automation::REMOVE_FROM_LIST);

  const CommandResult table = run({"automations", "list"});
  ASSERT_EQ(table.exit_code, 0) << table;
  EXPECT_NE(table.out.find("ACTION"), std::string::npos) << table;
  EXPECT_NE(table.out.find("FANS"), std::string::npos) << table;
  EXPECT_NE(table.out.find(StrCat(id, "  ", account, "  NEW_SUBSCRIBER  ADD_TO_LIST       77")),
            std::string::npos)
      << table;
  EXPECT_NE(table.out.find(StrCat(ShortId(remover.name()), "  ", account,
                                  "  NEW_SUBSCRIBER  REMOVE_FROM_LIST  78")),
            std::string::npos)
      << table;
  const CommandResult shown = run({"automations", "get", id});
  ASSERT_EQ(shown.exit_code, 0) << shown;
  EXPECT_NE(shown.out.find("user_list_id: 77"), std::string::npos) << shown;

  // Refused input: a usage error before any call, and the server's INVALID_ARGUMENT.
  const CommandResult no_list = run({"automations", "create", StrCat("--account=", account)});
  EXPECT_EQ(no_list.exit_code, 2) << no_list;
  EXPECT_NE(no_list.err.find("--list is required"), std::string::npos) << no_list;
  const CommandResult bad_action =
      run({"automations", "create", StrCat("--account=", account), "--list=77", "--action=move"});
  EXPECT_EQ(bad_action.exit_code, 2) << bad_action;
  EXPECT_NE(bad_action.err.find("--action: 'move' is not an action"), std::string::npos)
      << bad_action;
  const CommandResult bad_list =
      run({"automations", "create", StrCat("--account=", account), "--list=fans"});
  EXPECT_EQ(bad_list.exit_code, 6) << bad_list;  // INVALID_ARGUMENT
  EXPECT_NE(bad_list.err.find("automation.user_list_id"), std::string::npos) << bad_list;

  const CommandResult deleted = run({"automations", "delete", id});
  ASSERT_EQ(deleted.exit_code, 0) << deleted;
  const CommandResult deleted_remover = run({"automations", "delete", ShortId(remover.name())});
  ASSERT_EQ(deleted_remover.exit_code, 0) << deleted_remover;
  const CommandResult empty = run({"automations", "list", "--json"});
  ASSERT_EQ(empty.exit_code, 0) << empty;
  v1::ListAutomationsResponse listed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(empty.out, &listed).ok()) << empty;
  EXPECT_EQ(listed.automations_size(), 0);
  const CommandResult missing = run({"automations", "get", id});
  EXPECT_EQ(missing.exit_code, 4) << missing;  // NOT_FOUND
}

}  // namespace
}  // namespace herald
