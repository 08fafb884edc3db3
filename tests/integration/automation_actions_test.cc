// The workers' side of automations over a real redis-server and the upstream simulator: an
// action job adds its fan to the rule's upstream list, or takes it off, and counts the fan on
// the rule; a job whose rule was deleted, or whose rule this release reads as on no trigger,
// ends without an upstream call; the upstream's errors end a job as ClassifyActionError and
// PauseTeamIfRefused say.
#include <fstream>
#include <set>

#include <boost/json/value.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/automation/action.h>
#include <herald/automation/automations.h>
#include <herald/automation/job.h>
#include <herald/campaign/workflow.h>
#include <herald/common/clock.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/queue/queue.h>
#include <herald/redis/client.h>
#include <herald/store/record_store.h>
#include <herald/store/store.h>
#include <herald/testing/io_thread.h>
#include <herald/testing/net.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/subprocess.h>
#include <herald/upstream/client.h>

namespace herald::automation {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using queue::JobResult;
using ::testing::HasSubstr;

constexpr char kTenant[] = "t1";
constexpr char kTeam[] = "main";
constexpr char kAccount[] = "acct_actions";
constexpr char kKey[] = "key-actions";
constexpr char kList[] = "900";  // holds fan 1001 at the start

// The one upstream client every team of the test uses.
class OneClient final : public campaign::UpstreamClients {
 public:
  explicit OneClient(std::shared_ptr<upstream::Api> api) : api_(std::move(api)) {}
  absl::StatusOr<std::shared_ptr<upstream::Api>> For(const store::Team&) override { return api_; }

 private:
  std::shared_ptr<upstream::Api> api_;
};

class ActionRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = testing::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    redis_server_ = std::move(*server);
    const std::string seed_path = testing::MakeTempDir("automation-actions") + "/seed.json";
    std::ofstream(seed_path) << StrCat(R"({"seed": 3, "teams": [{"id": "team-1", "api_keys": [")",
                                       kKey, R"("], "accounts": [{"id": ")", kAccount,
                                       R"(", "fans": [1001, 1002, 1003],
                                       "lists": [{"id": 900, "name": "Buyers", "users": [1001]}]}]}]})");
    auto sim = testing::SimulatorProcess::Start({.args = {"--seed_file=" + seed_path}});
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = std::move(*sim);

    redis_ = std::make_unique<redis::Client>(
        io_.executor(), redis::ClientConfig{.address = {"127.0.0.1", redis_server_->port()}});
    redis_->Start();
    records_ = store::MakeRedisRecordStore(*redis_);
    store_ = std::make_unique<store::Store>(*records_);
    queue_ = std::make_unique<queue::Queue>(*redis_, queue::QueueConfig{});
    upstream::ClientConfig config;
    config.base_url = StrCat("http://127.0.0.1:", sim_->port());
    config.api_key = kKey;
    // Labelled as the team's clients are, for the team as SetUp stores it.
    config.key_id = campaign::UpstreamKeyId(store::Team{.tenant = kTenant, .id = kTeam});
    auto api = upstream::Client::Create(io_.executor(), std::move(config));
    ASSERT_TRUE(api.ok()) << api.status();
    clients_ = std::make_unique<OneClient>(std::shared_ptr<upstream::Api>(*std::move(api)));
    runner_ = std::make_unique<ActionRunner>(*store_, *queue_, *clients_, &registry_);
    io_.Start();

    Must(store_->Create(store::Team{.tenant = kTenant, .id = kTeam}, ""));
    Must(store_->Create(store::Account{.tenant = kTenant, .id = kAccount, .team = kTeam}, ""));
  }

  void TearDown() override {
    if (redis_) redis_->Stop();
    io_.Join();
  }

  template <typename T>
  T Must(asio::awaitable<absl::StatusOr<T>> op) {
    return io_.Must(std::move(op));
  }

  // A rule of kAccount on kList, created as the API creates it.
  std::string NewRule(store::AutomationAction action) {
    Automations automations(*store_, SystemClock::Get());
    store::Automation rule{.tenant = kTenant,
                           .account = kAccount,
                           .trigger = store::AutomationTrigger::kNewSubscriber,
                           .list_id = kList,
                           .action = action};
    return Must(automations.Create(std::move(rule), "")).automation.id;
  }

  // Runs the job of `rule`'s action on `fan`, as its `attempt` of kActionMaxAttempts.
  JobResult RunJob(const std::string& rule, int64_t fan, std::string_view kind = kAddFanJob,
                   std::string list = kList, int attempt = 1) {
    queue::LeasedJob job;
    job.id = StrCat("job-", rule, "-", fan);
    job.kind = std::string(kind);
    job.tenant = kTenant;
    job.account = kAccount;
    job.payload = EncodeFanAction({.tenant = kTenant,
                                   .automation = rule,
                                   .account = kAccount,
                                   .list_id = std::move(list),
                                   .fan = fan});
    job.attempt = attempt;
    job.max_attempts = kActionMaxAttempts;
    return io_.Run(runner_->Run(job));
  }

  // The fans in kList, as the simulator holds them.
  std::set<int64_t> ListFans() {
    absl::StatusOr<std::set<int64_t>> fans =
        testing::ReadListMembers(sim_->port(), kAccount, kList, kKey);
    EXPECT_TRUE(fans.ok()) << fans.status();
    return fans.ok() ? *std::move(fans) : std::set<int64_t>();
  }

  // API requests the simulator has handled.
  int64_t UpstreamRequests() {
    absl::StatusOr<json::value> stats = testing::ReadSimStats(sim_->port());
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? stats->at("requests").at("total").as_int64() : -1;
  }

  void AddFault(std::string_view rule) {
    auto res = testing::HttpRequest(sim_->port(), "POST", "/_sim/faults", rule,
                                    {{"Content-Type", "application/json"}});
    ASSERT_TRUE(res.ok()) << res.status();
    ASSERT_EQ(res->status, 200) << res->body;
  }

  int64_t FansCounted(const std::string& rule) {
    Automations automations(*store_, SystemClock::Get());
    return Must(automations.Get(kTenant, rule)).fans;
  }

  double Actions(std::string_view result) {
    const std::string text = registry_.Serialize();
    const std::string series = StrCat("herald_automation_actions_total{result=\"", result, "\"} ");
    const size_t at = text.find(series);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size()));
  }

  testing::IoThread io_;
  std::unique_ptr<testing::RedisServer> redis_server_;
  std::unique_ptr<testing::SimulatorProcess> sim_;
  std::unique_ptr<redis::Client> redis_;
  std::unique_ptr<store::RecordStore> records_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<queue::Queue> queue_;
  std::unique_ptr<campaign::UpstreamClients> clients_;
  metrics::Registry registry_;
  std::unique_ptr<ActionRunner> runner_;
};

TEST_F(ActionRunnerTest, AnAddingRuleListsTheFanOnceAndCountsEachRun) {
  const std::string rule = NewRule(store::AutomationAction::kAddToList);
  EXPECT_EQ(RunJob(rule, 1002).status, JobResult::Status::kOk);
  EXPECT_EQ(ListFans(), (std::set<int64_t>{1001, 1002}));
  // A retried job adds the fan again: the list is unchanged.
  EXPECT_EQ(RunJob(rule, 1002).status, JobResult::Status::kOk);
  EXPECT_EQ(ListFans(), (std::set<int64_t>{1001, 1002}));
  EXPECT_EQ(FansCounted(rule), 2);
  EXPECT_EQ(Actions("added"), 2);
  EXPECT_EQ(Actions("removed"), 0);
}

TEST_F(ActionRunnerTest, ARemovingRuleTakesTheFanOffTheList) {
  const std::string rule = NewRule(store::AutomationAction::kRemoveFromList);
  EXPECT_EQ(RunJob(rule, 1001, kRemoveFanJob).status, JobResult::Status::kOk);
  EXPECT_TRUE(ListFans().empty());
  // Removing a fan who is not in the list changes nothing and succeeds.
  EXPECT_EQ(RunJob(rule, 1003, kRemoveFanJob).status, JobResult::Status::kOk);
  EXPECT_TRUE(ListFans().empty());
  EXPECT_EQ(FansCounted(rule), 2);
  EXPECT_EQ(Actions("removed"), 2);
  EXPECT_EQ(Actions("added"), 0);
}

TEST_F(ActionRunnerTest, AJobOfADeletedRuleEndsWithoutAnUpstreamCall) {
  const std::string rule = NewRule(store::AutomationAction::kAddToList);
  Automations automations(*store_, SystemClock::Get());
  ASSERT_TRUE(Must(automations.Delete(kTenant, rule)));
  const int64_t before = UpstreamRequests();
  EXPECT_EQ(RunJob(rule, 1002).status, JobResult::Status::kOk);
  EXPECT_EQ(UpstreamRequests(), before);
  EXPECT_EQ(ListFans(), (std::set<int64_t>{1001}));
  EXPECT_EQ(Actions("skipped"), 1);
}

TEST_F(ActionRunnerTest, AJobOfARuleOfALaterReleaseEndsWithoutAnUpstreamCall) {
  // As a later release would store a rule on a trigger this one does not know.
  const std::string later = StrCat(R"({"tenant":"t1","id":"later","account":")", kAccount,
                                   R"(","trigger":"kSomethingNew","list_id":"900",)",
                                   R"("create_time_ms":5,"action":"kAddToList"})");
  Must(records_->Put(store::Table{kTenant, "automations"}, "later", later));
  const int64_t before = UpstreamRequests();
  EXPECT_EQ(RunJob("later", 1002).status, JobResult::Status::kOk);
  EXPECT_EQ(UpstreamRequests(), before);
  EXPECT_EQ(ListFans(), (std::set<int64_t>{1001}));
  EXPECT_EQ(Actions("skipped"), 1);
  EXPECT_EQ(Actions("added"), 0);
}

TEST_F(ActionRunnerTest, AnUpstream5xxRetriesUntilTheLastAttempt) {
  const std::string rule = NewRule(store::AutomationAction::kAddToList);
  AddFault(R"({"methods":["POST"],"path_contains":"/user-lists/900/users","error_rate":1,)"
           R"("error_status":503,"count":2})");
  const JobResult first = RunJob(rule, 1002);
  EXPECT_EQ(first.status, JobResult::Status::kRetry);
  EXPECT_THAT(first.reason, HasSubstr("upstream, adding the fan to the list: "));
  const JobResult last = RunJob(rule, 1002, kAddFanJob, kList, kActionMaxAttempts);
  EXPECT_EQ(last.status, JobResult::Status::kFail);
  EXPECT_EQ(ListFans(), (std::set<int64_t>{1001}));
  EXPECT_EQ(FansCounted(rule), 0);
  EXPECT_EQ(Actions("retried"), 1);
  EXPECT_EQ(Actions("failed"), 1);
}

TEST_F(ActionRunnerTest, AListTheUpstreamDoesNotKnowDeadLettersTheJobAtOnce) {
  const std::string rule = NewRule(store::AutomationAction::kAddToList);
  const JobResult result = RunJob(rule, 1002, kAddFanJob, "987654");
  EXPECT_EQ(result.status, JobResult::Status::kFail);
  EXPECT_THAT(result.reason, HasSubstr("upstream, adding the fan to the list: "));
  EXPECT_THAT(result.reason, HasSubstr("987654"));
  EXPECT_EQ(FansCounted(rule), 0);
}

TEST_F(ActionRunnerTest, OutOfCreditsPausesTheTeamAndReleasesTheJob) {
  const std::string rule = NewRule(store::AutomationAction::kAddToList);
  AddFault(R"({"methods":["POST"],"path_contains":"/user-lists/900/users","error_rate":1,)"
           R"("error_status":402,"count":1})");
  EXPECT_EQ(RunJob(rule, 1002).status, JobResult::Status::kRelease);
  const store::Team team = Must(store_->Get<store::Team>(kTenant, kTeam));
  EXPECT_TRUE(team.paused);
  EXPECT_FALSE(team.pause_reason.empty());
  EXPECT_EQ(ListFans(), (std::set<int64_t>{1001}));
}

// A refusal of the key the team had (this client's) after the operator set a new one (a worker
// that read the team before, say): it pauses nothing and marks no key invalid; the job runs
// again a moment later.
TEST_F(ActionRunnerTest, ARefusalOfTheTeamsPreviousKeyPausesNothing) {
  const std::string rule = NewRule(store::AutomationAction::kAddToList);
  Must(store_->Update<store::Team>(kTenant, kTeam, [](store::Team& t) {
    t.sealed_api_key = "v1:a-key-set-since";
    return absl::OkStatus();
  }));
  AddFault(R"({"methods":["POST"],"path_contains":"/user-lists/900/users","error_rate":1,)"
           R"("error_status":401,"count":1})");
  const JobResult refused = RunJob(rule, 1002);
  EXPECT_EQ(refused.status, JobResult::Status::kDeferred);
  EXPECT_EQ(refused.retry_after, campaign::kStaleRefusalRetry);
  EXPECT_THAT(refused.reason, HasSubstr("before the team's last resume or key change"));
  const store::Team team = Must(store_->Get<store::Team>(kTenant, kTeam));
  EXPECT_FALSE(team.paused) << team.pause_reason;
  EXPECT_FALSE(team.api_key_invalid);

  EXPECT_EQ(RunJob(rule, 1002).status, JobResult::Status::kOk);
  EXPECT_EQ(ListFans(), (std::set<int64_t>{1001, 1002}));
}

// A refusal of the team's own key pauses it and marks the key invalid.
TEST_F(ActionRunnerTest, ARefusalOfTheTeamsKeyPausesItAndMarksTheKeyInvalid) {
  const std::string rule = NewRule(store::AutomationAction::kAddToList);
  AddFault(R"({"methods":["POST"],"path_contains":"/user-lists/900/users","error_rate":1,)"
           R"("error_status":401,"count":1})");
  EXPECT_EQ(RunJob(rule, 1002).status, JobResult::Status::kRelease);
  const store::Team team = Must(store_->Get<store::Team>(kTenant, kTeam));
  EXPECT_TRUE(team.paused);
  EXPECT_TRUE(team.api_key_invalid);
}

TEST_F(ActionRunnerTest, AJobOfAnAccountNoLongerInHeraldFailsSayingWhatToDo) {
  const std::string rule = NewRule(store::AutomationAction::kAddToList);
  ASSERT_TRUE(Must(store_->Delete<store::Account>(kTenant, kAccount)));
  const int64_t before = UpstreamRequests();
  const JobResult result = RunJob(rule, 1002);
  EXPECT_EQ(result.status, JobResult::Status::kFail);
  EXPECT_EQ(result.reason,
            StrCat("account '", kAccount, "' is no longer in Herald; delete the automation"));
  EXPECT_EQ(UpstreamRequests(), before);
}

}  // namespace
}  // namespace herald::automation
