// Automations without Redis or sockets: the rules' validation and storage over the in-memory
// record store, the job's codec and id, the trigger's decisions (with a fake queue and recorder),
// the rule cache on a manual clock, and how upstream failures end a job.
#include <set>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <herald/automation/action.h>
#include <herald/automation/automations.h>
#include <herald/automation/job.h>
#include <herald/automation/trigger.h>
#include <herald/common/clock.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/store/record_store.h>
#include <herald/store/store.h>
#include <herald/testing/run_sync.h>
#include <herald/upstream/error.h>
#include <herald/upstream/webhook_event.h>

namespace herald::automation {
namespace {

namespace asio = boost::asio;
using queue::EnqueueResult;
using queue::JobResult;
using queue::JobSpec;
using store::AutomationTrigger;
using webhooks::RecordOutcome;

store::Automation Rule(std::string account = "acct_a", std::string list = "42") {
  return {.tenant = "t1",
          .account = std::move(account),
          .trigger = AutomationTrigger::kNewSubscriber,
          .list_id = std::move(list)};
}

upstream::WebhookEvent Subscription(std::string account = "acct_a", int64_t fan = 7) {
  upstream::WebhookEvent e;
  e.type = upstream::WebhookEventType::kSubscription;
  e.name = "subscriptions.new";
  e.account = std::move(account);
  e.fan_id = fan;
  return e;
}

double Counter(const metrics::Registry& registry, std::string_view name, std::string_view result) {
  const std::string text = registry.Serialize();
  const std::string series = StrCat(name, "{result=\"", result, "\"} ");
  const size_t at = text.find(series);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size()));
}

// ---- rules

TEST(ValidateAutomationTest, NamesTheFieldOfEachMistake) {
  EXPECT_TRUE(ValidateAutomation(Rule()).ok());
  store::Automation r = Rule();
  r.trigger = AutomationTrigger::kUnspecified;
  EXPECT_EQ(ValidateAutomation(r).message(),
            "automation.trigger: required (NEW_SUBSCRIBER, SUBSCRIPTION_RENEWED, "
            "SUBSCRIPTION_EXPIRED or PPV_UNLOCKED)");
  for (std::string list : {"", "fans", "0", "-3", "12x", "007"}) {
    absl::Status s = ValidateAutomation(Rule("acct_a", list));
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << list;
    EXPECT_TRUE(ToStd(s.message()).starts_with("automation.user_list_id: ")) << s;
  }
  EXPECT_EQ(ValidateAutomation(Rule("")).message(), "automation.account: required");
}

class AutomationsTest : public ::testing::Test {
 protected:
  AutomationsTest() {
    EXPECT_TRUE(Run(store_.Create(store::Team{.tenant = "t1", .id = "main"}, "")).ok());
    EXPECT_TRUE(
        Run(store_.Create(store::Account{.tenant = "t1", .id = "acct_a", .team = "main"}, ""))
            .ok());
    EXPECT_TRUE(
        Run(store_.Create(store::Account{.tenant = "t1", .id = "acct_b", .team = "main"}, ""))
            .ok());
    EXPECT_TRUE(
        Run(store_.Create(store::Account{.tenant = "t2", .id = "acct_c", .team = "other"}, ""))
            .ok());
  }

  template <typename T>
  T Run(asio::awaitable<T> op) {
    return testing::RunSync(io_, std::move(op));
  }

  asio::io_context io_;
  ManualClock clock_;
  std::unique_ptr<store::RecordStore> records_ = store::MakeMemoryRecordStore();
  store::Store store_{*records_};
  Automations automations_{store_, clock_};
};

TEST_F(AutomationsTest, CreateStoresTheRuleWithAnIdAndItsTime) {
  absl::StatusOr<AutomationView> made = Run(automations_.Create(Rule(), ""));
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_TRUE(IsValidId(made->automation.id));
  EXPECT_EQ(made->automation.create_time_ms, absl::ToUnixMillis(clock_.Now()));
  EXPECT_EQ(made->fans, 0);
  absl::StatusOr<AutomationView> got = Run(automations_.Get("t1", made->automation.id));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->automation.account, "acct_a");
  EXPECT_EQ(got->automation.list_id, "42");
  EXPECT_EQ(got->automation.trigger, AutomationTrigger::kNewSubscriber);
}

TEST_F(AutomationsTest, RefusedRulesStoreNothing) {
  absl::StatusOr<AutomationView> unknown = Run(automations_.Create(Rule("acct_zz"), ""));
  EXPECT_TRUE(absl::IsNotFound(unknown.status()));
  EXPECT_EQ(unknown.status().message(), "automation.account: account 'acct_zz' not found");
  // Another tenant's account is not found either.
  EXPECT_TRUE(absl::IsNotFound(Run(automations_.Create(Rule("acct_c"), "")).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Run(automations_.Create(Rule("acct_a", ""), "")).status()));
  absl::StatusOr<std::vector<AutomationView>> all = Run(automations_.List("t1", ""));
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(AutomationsTest, ARetriedCreateReturnsTheFirstRule) {
  absl::StatusOr<AutomationView> first = Run(automations_.Create(Rule(), "req-1"));
  absl::StatusOr<AutomationView> again = Run(automations_.Create(Rule(), "req-1"));
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->automation.id, again->automation.id);
  EXPECT_EQ(Run(automations_.List("t1", ""))->size(), 1u);
}

TEST_F(AutomationsTest, ARetryGetsTheFirstRuleAfterItsAccountWasDeleted) {
  absl::StatusOr<AutomationView> first = Run(automations_.Create(Rule(), "req-2"));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(*Run(store_.Delete<store::Account>("t1", "acct_a")));
  absl::StatusOr<AutomationView> again = Run(automations_.Create(Rule(), "req-2"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->automation.id, first->automation.id);
  EXPECT_TRUE(absl::IsNotFound(Run(automations_.Create(Rule(), "req-3")).status()))
      << "a new request for the deleted account is refused";
}

TEST_F(AutomationsTest, ListFiltersByAccountAndCountsFans) {
  const std::string a = Run(automations_.Create(Rule("acct_a"), ""))->automation.id;
  const std::string b = Run(automations_.Create(Rule("acct_b"), ""))->automation.id;
  ASSERT_TRUE(Run(CountFan(store_, "t1", b)).ok());
  ASSERT_EQ(*Run(CountFan(store_, "t1", b)), 2);
  absl::StatusOr<std::vector<AutomationView>> all = Run(automations_.List("t1", ""));
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].automation.id, a);  // oldest first
  EXPECT_EQ((*all)[1].fans, 2);
  absl::StatusOr<std::vector<AutomationView>> of_b = Run(automations_.List("t1", "acct_b"));
  ASSERT_TRUE(of_b.ok());
  ASSERT_EQ(of_b->size(), 1u);
  EXPECT_EQ((*of_b)[0].automation.id, b);
  EXPECT_TRUE(Run(automations_.List("t2", ""))->empty());
}

TEST_F(AutomationsTest, DeleteRemovesTheRuleAndAMissingOneIsNotFound) {
  const std::string id = Run(automations_.Create(Rule(), ""))->automation.id;
  EXPECT_TRUE(absl::IsNotFound(Run(automations_.Delete("t2", id)).status()));  // not t2's
  ASSERT_TRUE(Run(automations_.Delete("t1", id)).ok());
  EXPECT_TRUE(absl::IsNotFound(Run(automations_.Get("t1", id)).status()));
  absl::StatusOr<bool> again = Run(automations_.Delete("t1", id));
  EXPECT_EQ(again.status().message(), StrCat("automation '", id, "' not found"));
}

// ---- the job

TEST(ActionJobTest, CarriesTheActionOnTheAccountsQueue) {
  store::Automation rule = Rule();
  rule.id = "01hzzzzzzzzzzzzzzzzzzzzzzz";
  const JobSpec job = ActionJob(rule, "main", "evt_1", 7);
  EXPECT_EQ(job.kind, kAddFanJob);
  EXPECT_EQ(job.tenant, "t1");
  EXPECT_EQ(job.team, "t1/main");
  EXPECT_EQ(job.account, "t1/acct_a");
  EXPECT_EQ(job.max_attempts, kActionMaxAttempts);
  EXPECT_TRUE(queue::ValidateJobSpec(job).ok());
  absl::StatusOr<FanAction> action = DecodeFanAction(job.payload);
  ASSERT_TRUE(action.ok()) << action.status();
  EXPECT_EQ(action->tenant, "t1");
  EXPECT_EQ(action->automation, rule.id);
  EXPECT_EQ(action->account, "acct_a");
  EXPECT_EQ(action->list_id, "42");
  EXPECT_EQ(action->fan, 7);
}

TEST(ActionJobTest, ARemovingRuleQueuesARemoveJobWithTheSameIdAndPayload) {
  store::Automation rule = Rule();
  rule.id = "01hzzzzzzzzzzzzzzzzzzzzzzz";
  const JobSpec adding = ActionJob(rule, "main", "evt_1", 7);
  rule.action = store::AutomationAction::kRemoveFromList;
  const JobSpec removing = ActionJob(rule, "main", "evt_1", 7);
  EXPECT_EQ(removing.kind, kRemoveFanJob);
  EXPECT_EQ(removing.id, adding.id);
  EXPECT_EQ(removing.payload, adding.payload);
  EXPECT_EQ(removing.account, adding.account);
  EXPECT_TRUE(queue::ValidateJobSpec(removing).ok());
}

TEST(ActionJobTest, TheIdDependsOnTheEventAndTheRuleOnly) {
  EXPECT_EQ(ActionJobId("t1", "evt_1", "r1"), ActionJobId("t1", "evt_1", "r1"));
  EXPECT_NE(ActionJobId("t1", "evt_1", "r1"), ActionJobId("t1", "evt_2", "r1"));
  EXPECT_NE(ActionJobId("t1", "evt_1", "r1"), ActionJobId("t1", "evt_1", "r2"));
  EXPECT_NE(ActionJobId("t1", "evt_1", "r1"), ActionJobId("t2", "evt_1", "r1"));
  // The longest key ingest accepts (200 bytes) with the longest tenant still fits the queue.
  const std::string tenant(40, 't'), key(200, 'k'), other(199, 'k');
  const std::string id = ActionJobId(tenant, key, "01hzzzzzzzzzzzzzzzzzzzzzzz");
  EXPECT_LE(id.size(), 256u);
  EXPECT_NE(id, ActionJobId(tenant, other, "01hzzzzzzzzzzzzzzzzzzzzzzz"));
}

TEST(ActionJobTest, MalformedPayloadsAreRefused) {
  for (std::string_view payload :
       {"", "[]", R"({"tenant":"t1"})",
        R"({"tenant":"t1","automation":"r","account":"a","list":"1","fan":"7"})",
        R"({"tenant":"t1","automation":"r","account":"a","list":1,"fan":7})",
        R"({"tenant":"t1","automation":"r","account":"a","list":"1","fan":0})"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(DecodeFanAction(payload).status())) << payload;
  }
}

// ---- the trigger

class FakeRecorder final : public webhooks::EventRecorder {
 public:
  webhooks::Op<RecordOutcome> Record(std::string, std::string key,
                                     const upstream::WebhookEvent&) override {
    if (!keys.insert(key).second) co_return RecordOutcome::kDuplicate;
    co_return RecordOutcome::kApplied;
  }
  webhooks::Op<bool> Applied(std::string, std::string key) override {
    co_return keys.contains(key);
  }
  std::set<std::string> keys;
};

// A queue that enqueues an id once, like the real one.
struct FakeQueue {
  asio::awaitable<absl::StatusOr<std::vector<EnqueueResult>>> Enqueue(std::vector<JobSpec> batch) {
    ++calls;
    if (unavailable) co_return absl::UnavailableError("redis down");
    std::vector<EnqueueResult> out;
    for (JobSpec& job : batch) {
      if (wrong_team) {
        out.push_back(EnqueueResult::kWrongTeam);
      } else if (ids.insert(job.id).second) {
        out.push_back(EnqueueResult::kEnqueued);
        jobs.push_back(std::move(job));
      } else {
        out.push_back(EnqueueResult::kDuplicate);
      }
    }
    co_return out;
  }
  int calls = 0;
  bool unavailable = false;
  bool wrong_team = false;
  std::set<std::string> ids;
  std::vector<JobSpec> jobs;
};

class TriggerTest : public AutomationsTest {
 protected:
  TriggerTest() {
    directory_ = MakeStoreRuleDirectory(store_);
    recorder_ = MakeTriggeringRecorder(
        inner_, *directory_,
        [this](std::vector<JobSpec> batch) { return queue_.Enqueue(std::move(batch)); },
        &registry_);
  }

  absl::StatusOr<RecordOutcome> Record(const upstream::WebhookEvent& event, std::string key) {
    return Run(recorder_->Record("t1", std::move(key), event));
  }

  FakeRecorder inner_;
  FakeQueue queue_;
  metrics::Registry registry_;
  std::unique_ptr<RuleDirectory> directory_;
  std::unique_ptr<webhooks::EventRecorder> recorder_;
};

TEST_F(TriggerTest, ASubscriptionEnqueuesOneJobPerRuleOfItsAccount) {
  ASSERT_TRUE(Run(automations_.Create(Rule("acct_a", "1"), "")).ok());
  ASSERT_TRUE(Run(automations_.Create(Rule("acct_a", "2"), "")).ok());
  ASSERT_TRUE(Run(automations_.Create(Rule("acct_b", "3"), "")).ok());
  absl::StatusOr<RecordOutcome> outcome = Record(Subscription("acct_a", 7), "evt_1");
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, RecordOutcome::kApplied);
  ASSERT_EQ(queue_.jobs.size(), 2u);
  std::set<std::string> lists;
  for (const JobSpec& job : queue_.jobs) {
    absl::StatusOr<FanAction> action = DecodeFanAction(job.payload);
    ASSERT_TRUE(action.ok());
    EXPECT_EQ(action->fan, 7);
    EXPECT_EQ(action->account, "acct_a");
    EXPECT_EQ(job.id, ActionJobId("t1", "evt_1", action->automation));
    lists.insert(action->list_id);
  }
  EXPECT_EQ(lists, (std::set<std::string>{"1", "2"}));
  EXPECT_TRUE(inner_.keys.contains("evt_1"));
  EXPECT_EQ(Counter(registry_, "herald_automation_triggers_total", "enqueued"), 2);
}

// The queue remembers a job id for a day or two, the ingest an event for longer: an event
// redelivered after the queue forgot its jobs acts no more than the first time.
TEST_F(TriggerTest, AnEventRedeliveredAfterTheQueueForgotItsJobsActsOnce) {
  ASSERT_TRUE(Run(automations_.Create(Rule(), "")).ok());
  ASSERT_TRUE(Record(Subscription(), "evt_1").ok());
  ASSERT_EQ(queue_.jobs.size(), 1u);
  queue_.ids.clear();  // the queue's idempotency window has passed
  absl::StatusOr<RecordOutcome> again = Record(Subscription(), "evt_1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, RecordOutcome::kDuplicate);
  EXPECT_EQ(queue_.jobs.size(), 1u);
  EXPECT_EQ(Counter(registry_, "herald_automation_triggers_total", "duplicate"), 1);
}

TEST_F(TriggerTest, ARedeliveredEventEnqueuesNothingNew) {
  ASSERT_TRUE(Run(automations_.Create(Rule(), "")).ok());
  ASSERT_TRUE(Record(Subscription(), "evt_1").ok());
  absl::StatusOr<RecordOutcome> again = Record(Subscription(), "evt_1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, RecordOutcome::kDuplicate);
  EXPECT_EQ(queue_.jobs.size(), 1u);
  EXPECT_EQ(Counter(registry_, "herald_automation_triggers_total", "duplicate"), 1);
}

TEST_F(TriggerTest, OtherAccountsAndOtherEventsFireNothing) {
  ASSERT_TRUE(Run(automations_.Create(Rule("acct_b"), "")).ok());
  ASSERT_TRUE(Record(Subscription("acct_a"), "evt_1").ok());
  upstream::WebhookEvent sent;
  sent.type = upstream::WebhookEventType::kMessageSent;
  sent.account = "acct_b";
  sent.fan_id = 7;
  ASSERT_TRUE(Record(sent, "evt_2").ok());
  EXPECT_TRUE(queue_.jobs.empty());
  EXPECT_EQ(queue_.calls, 0);
  EXPECT_EQ(inner_.keys.size(), 2u);  // both recorded
}

TEST_F(TriggerTest, EachTriggeringEventFiresTheRulesOnItAlone) {
  const std::pair<AutomationTrigger, std::string> rules[] = {
      {AutomationTrigger::kNewSubscriber, "1"},
      {AutomationTrigger::kRenewal, "2"},
      {AutomationTrigger::kExpiry, "3"},
      {AutomationTrigger::kPpvUnlock, "4"}};
  for (const auto& [trigger, list] : rules) {
    store::Automation rule = Rule("acct_a", list);
    rule.trigger = trigger;
    ASSERT_TRUE(Run(automations_.Create(std::move(rule), "")).ok());
  }
  const std::tuple<upstream::WebhookEventType, std::string, std::string> events[] = {
      {upstream::WebhookEventType::kRenewal, "subscriptions.renewed", "2"},
      {upstream::WebhookEventType::kExpiry, "subscriptions.expired", "3"},
      {upstream::WebhookEventType::kPpvUnlocked, "messages.ppv.unlocked", "4"},
      {upstream::WebhookEventType::kSubscription, "subscriptions.new", "1"}};
  for (const auto& [type, name, list] : events) {
    upstream::WebhookEvent e = Subscription("acct_a", 7);
    e.type = type;
    e.name = name;
    queue_.jobs.clear();
    absl::StatusOr<RecordOutcome> outcome = Record(e, StrCat("evt_", name));
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    ASSERT_EQ(queue_.jobs.size(), 1u) << name;
    absl::StatusOr<FanAction> action = DecodeFanAction(queue_.jobs[0].payload);
    ASSERT_TRUE(action.ok());
    EXPECT_EQ(action->list_id, list) << name;
    EXPECT_EQ(action->fan, 7);
  }
  EXPECT_EQ(inner_.keys.size(), 4u);
}

TEST_F(TriggerTest, AnEventWhoseJobsCannotBeEnqueuedIsNotRecorded) {
  ASSERT_TRUE(Run(automations_.Create(Rule(), "")).ok());
  queue_.unavailable = true;
  absl::StatusOr<RecordOutcome> outcome = Record(Subscription(), "evt_1");
  EXPECT_TRUE(absl::IsUnavailable(outcome.status()));
  EXPECT_TRUE(inner_.keys.empty());  // the upstream retries; nothing was acknowledged
  EXPECT_EQ(Counter(registry_, "herald_automation_triggers_total", "error"), 1);
  queue_.unavailable = false;
  ASSERT_TRUE(Record(Subscription(), "evt_1").ok());
  EXPECT_EQ(queue_.jobs.size(), 1u);
  EXPECT_TRUE(inner_.keys.contains("evt_1"));
}

TEST_F(TriggerTest, AJobTheQueueRefusesForGoodDoesNotHoldTheEventBack) {
  ASSERT_TRUE(Run(automations_.Create(Rule(), "")).ok());
  queue_.wrong_team = true;
  absl::StatusOr<RecordOutcome> outcome = Record(Subscription(), "evt_1");
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(inner_.keys.contains("evt_1"));
  EXPECT_EQ(Counter(registry_, "herald_automation_triggers_total", "refused"), 1);
}

TEST_F(TriggerTest, ARuleWhoseAccountWasDeletedIsLeftOut) {
  ASSERT_TRUE(Run(automations_.Create(Rule(), "")).ok());
  ASSERT_TRUE(Run(store_.Delete<store::Account>("t1", "acct_a")).ok());
  absl::StatusOr<RuleSet> rules = Run(directory_->Rules("t1"));
  ASSERT_TRUE(rules.ok());
  EXPECT_TRUE((*rules)->empty());
  ASSERT_TRUE(Record(Subscription(), "evt_1").ok());
  EXPECT_TRUE(queue_.jobs.empty());
}

TEST_F(TriggerTest, TheDirectoryCarriesEachRulesTeam) {
  ASSERT_TRUE(Run(automations_.Create(Rule("acct_a"), "")).ok());
  absl::StatusOr<RuleSet> rules = Run(directory_->Rules("t1"));
  ASSERT_TRUE(rules.ok());
  ASSERT_EQ((*rules)->size(), 1u);
  EXPECT_EQ((*rules)->at(0).team, "main");
}

// ---- the rule cache

class CountingDirectory final : public RuleDirectory {
 public:
  asio::awaitable<absl::StatusOr<RuleSet>> Rules(std::string tenant) override {
    ++reads[tenant];
    if (unavailable) co_return absl::UnavailableError("redis down");
    auto out = std::make_shared<std::vector<ActiveRule>>();
    out->push_back({.rule = Rule(), .team = StrCat("team-", reads[tenant])});
    co_return out;
  }
  std::map<std::string, int> reads;
  bool unavailable = false;
};

class RuleCacheTest : public ::testing::Test {
 protected:
  std::string TeamOf(const std::string& tenant) {
    absl::StatusOr<RuleSet> rules = testing::RunSync(io_, cache_->Rules(tenant));
    if (!rules.ok()) return rules.status().ToString();
    return (*rules)->at(0).team;
  }

  asio::io_context io_;
  ManualClock clock_;
  CountingDirectory* inner_ = new CountingDirectory;
  std::unique_ptr<RuleDirectory> cache_ = MakeCachedRuleDirectory(
      std::unique_ptr<RuleDirectory>(inner_), clock_, {.ttl = absl::Seconds(5), .max_tenants = 2});
};

TEST_F(RuleCacheTest, RulesAreReusedUntilTheyExpire) {
  EXPECT_EQ(TeamOf("t1"), "team-1");
  clock_.Advance(absl::Seconds(4));
  EXPECT_EQ(TeamOf("t1"), "team-1");
  EXPECT_EQ(inner_->reads["t1"], 1);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(TeamOf("t1"), "team-2");
  EXPECT_EQ(inner_->reads["t1"], 2);
}

TEST_F(RuleCacheTest, ErrorsAreNotCached) {
  inner_->unavailable = true;
  EXPECT_NE(TeamOf("t1").find("redis down"), std::string::npos);
  inner_->unavailable = false;
  EXPECT_EQ(TeamOf("t1"), "team-2");
}

TEST_F(RuleCacheTest, TheCacheKeepsAtMostItsTenants) {
  EXPECT_EQ(TeamOf("t1"), "team-1");
  EXPECT_EQ(TeamOf("t2"), "team-1");
  clock_.Advance(absl::Seconds(6));  // both expired: a third tenant replaces them
  EXPECT_EQ(TeamOf("t3"), "team-1");
  EXPECT_EQ(TeamOf("t4"), "team-1");
  EXPECT_EQ(TeamOf("t5"), "team-1");  // full and nothing expired: everything goes
  EXPECT_EQ(TeamOf("t3"), "team-2");
  EXPECT_EQ(inner_->reads["t1"], 1);
}

// ---- how a failed upstream call ends the job

constexpr store::AutomationAction kAdd = store::AutomationAction::kAddToList;
constexpr store::AutomationAction kRemove = store::AutomationAction::kRemoveFromList;

absl::Status UpstreamFailure(upstream::ErrorKind kind, int http, absl::StatusCode code) {
  return upstream::MakeUpstreamStatus(
      code, "boom", {.kind = kind, .http_status = http, .retry_after = absl::Seconds(7)});
}

TEST(ClassifyActionErrorTest, RateLimitsHoldTheTeamWithoutSpendingAnAttempt) {
  const JobResult r = ClassifyActionError(
      kAdd,
      UpstreamFailure(upstream::ErrorKind::kRateLimited, 429, absl::StatusCode::kResourceExhausted),
      /*last_attempt=*/true);
  EXPECT_EQ(r.status, JobResult::Status::kRateLimited);
  EXPECT_EQ(r.retry_after, absl::Seconds(7));
}

TEST(ClassifyActionErrorTest, TransientFailuresRetryUntilTheLastAttempt) {
  for (const absl::Status& s :
       {UpstreamFailure(upstream::ErrorKind::kRetryable, 503, absl::StatusCode::kUnavailable),
        UpstreamFailure(upstream::ErrorKind::kUnknownOutcome, 0, absl::StatusCode::kUnknown),
        absl::DeadlineExceededError("local")}) {
    const JobResult retry = ClassifyActionError(kAdd, s, false);
    EXPECT_EQ(retry.status, JobResult::Status::kRetry) << s;
    EXPECT_NE(retry.reason.find("adding the fan to the list"), std::string::npos);
    EXPECT_EQ(ClassifyActionError(kAdd, s, true).status, JobResult::Status::kFail) << s;
  }
}

TEST(ClassifyActionErrorTest, OtherClientErrorsAreDeadLetteredAtOnceWithTheUpstreamsWords) {
  for (const absl::Status& s :
       {UpstreamFailure(upstream::ErrorKind::kTerminal, 404, absl::StatusCode::kNotFound),
        UpstreamFailure(upstream::ErrorKind::kOutOfCredits, 402,
                        absl::StatusCode::kFailedPrecondition),
        UpstreamFailure(upstream::ErrorKind::kUnauthorized, 401,
                        absl::StatusCode::kUnauthenticated)}) {
    const JobResult r = ClassifyActionError(kAdd, s, false);
    EXPECT_EQ(r.status, JobResult::Status::kFail) << s;
    EXPECT_EQ(r.reason, "upstream, adding the fan to the list: boom");
  }
}

TEST(ClassifyActionErrorTest, ARemovalIsClassifiedAlikeAndSaysWhatItDid) {
  const absl::Status gone =
      UpstreamFailure(upstream::ErrorKind::kTerminal, 404, absl::StatusCode::kNotFound);
  const JobResult r = ClassifyActionError(kRemove, gone, false);
  EXPECT_EQ(r.status, JobResult::Status::kFail);
  EXPECT_EQ(r.reason, "upstream, removing the fan from the list: boom");
  const absl::Status lost =
      UpstreamFailure(upstream::ErrorKind::kUnknownOutcome, 0, absl::StatusCode::kUnknown);
  EXPECT_EQ(ClassifyActionError(kRemove, lost, false).status, JobResult::Status::kRetry);
}

}  // namespace
}  // namespace herald::automation
