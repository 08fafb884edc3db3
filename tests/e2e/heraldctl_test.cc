// heraldctl against the real herald binary and a real Redis: what operators and scripts do with
// it, checked through its output (--json parsed back into the API's messages) and exit codes.
#include <algorithm>
#include <fstream>
#include <set>
#include <thread>
#include <utility>

#include <absl/strings/str_split.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/net.h>
#include <herald/testing/observability.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/subprocess.h>
#include <herald/testing/wait.h>
#include <herald/v1/account.pb.h>
#include <herald/v1/audience.pb.h>
#include <herald/v1/campaign.pb.h>
#include <herald/v1/events.pb.h>
#include <herald/v1/media.pb.h>
#include <herald/v1/tenant.pb.h>

namespace herald {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using testing::HeraldProcess;

constexpr char kAdminKey[] = "e2e-platform-admin-key";

template <typename Message>
Message FromJson(const std::string& json) {
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // the server may add fields
  const auto status = google::protobuf::util::JsonStringToMessage(json, &message, options);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return message;
}

class HeraldctlTest : public ::testing::Test {
 protected:
  void SetUp() override { StartHerald({"serve", "--role=all"}); }

  void StartHerald(std::vector<std::string> args, bool register_webhooks = false) {
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
    auto herald = HeraldProcess::Start(
        {.args = std::move(args),
         .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", std::string(64, 'a')}},
         .redis_port = redis_->port(),
         .register_webhooks = register_webhooks});
    ASSERT_TRUE(herald.ok()) << herald.status();
    herald_ = std::move(*herald);
  }

  void TearDown() override {
    if (HasFailure() && herald_) {
      const std::string logs = herald_->Logs();
      std::cerr << "herald logs (last 4000 bytes):\n"
                << logs.substr(logs.size() > 4000 ? logs.size() - 4000 : 0) << "\n";
    }
  }

  // Runs heraldctl with `args`, against the test's herald, with only the environment given here.
  CommandResult Run(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    return testing::RunHeraldctl(herald_->grpc_target(), std::move(args), std::move(env));
  }

  CommandResult Admin(std::vector<std::string> args) {
    return Run(std::move(args), {{"HERALD_API_KEY", kAdminKey}});
  }

  // Creates tenant `tenant` and returns a key of it.
  std::string CreateTenantWithKey(const std::string& tenant) {
    const CommandResult created = Admin({"tenants", "create", tenant, "--display-name=E2E Agency"});
    EXPECT_EQ(created.exit_code, 0) << created;
    const CommandResult key = Admin({"keys", "create", tenant, "--display-name=ops", "--json"});
    EXPECT_EQ(key.exit_code, 0) << key;
    return FromJson<v1::CreateApiKeyResponse>(key.out).secret();
  }

  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<HeraldProcess> herald_;
};

TEST_F(HeraldctlTest, PlatformAdminCreatesTenantAndKey) {
  const CommandResult created = Admin({"tenants", "create", "acme", "--display-name=Acme Agency"});
  ASSERT_EQ(created.exit_code, 0) << created;
  EXPECT_THAT(created.out, HasSubstr("name: tenants/acme"));
  EXPECT_THAT(created.out, HasSubstr("display_name: Acme Agency"));

  const CommandResult got = Admin({"tenants", "get", "acme", "--json"});
  ASSERT_EQ(got.exit_code, 0) << got;
  EXPECT_EQ(FromJson<v1::Tenant>(got.out).display_name(), "Acme Agency");

  const CommandResult listed = Admin({"tenants", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed;
  EXPECT_THAT(listed.out, HasSubstr("acme  Acme Agency"));

  // Keys: the secret is printed once; listing shows its prefix only.
  const CommandResult key = Admin({"keys", "create", "acme", "--display-name=crm-prod"});
  ASSERT_EQ(key.exit_code, 0) << key;
  EXPECT_THAT(key.out, HasSubstr("secret: "));
  EXPECT_THAT(key.err, HasSubstr("cannot show it again"));
  const CommandResult keys = Admin({"keys", "list", "acme", "--json"});
  ASSERT_EQ(keys.exit_code, 0) << keys;
  const auto key_list = FromJson<v1::ListApiKeysResponse>(keys.out);
  ASSERT_EQ(key_list.api_keys_size(), 1);
  EXPECT_EQ(key_list.api_keys(0).display_name(), "crm-prod");
  EXPECT_THAT(keys.out, ::testing::Not(HasSubstr("\"secret\"")));

  // A second create of the same tenant is ALREADY_EXISTS.
  EXPECT_EQ(Admin({"tenants", "create", "acme"}).exit_code, 5);
}

TEST_F(HeraldctlTest, TenantWeightsAreValidatedStoredAndReachEveryQueueShard) {
  const CommandResult created = Admin({"tenants", "create", "acme", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created;
  EXPECT_EQ(FromJson<v1::Tenant>(created.out).scheduling_weight(), 1);  // the default

  const CommandResult updated = Admin({"tenants", "update", "acme", "--weight=7", "--json"});
  ASSERT_EQ(updated.exit_code, 0) << updated;
  EXPECT_EQ(FromJson<v1::Tenant>(updated.out).scheduling_weight(), 7);
  const CommandResult got = Admin({"tenants", "get", "acme", "--json"});
  ASSERT_EQ(got.exit_code, 0) << got;
  EXPECT_EQ(FromJson<v1::Tenant>(got.out).scheduling_weight(), 7);
  // The queue's lease script reads the weight on each of the 16 shards.
  for (int shard = 0; shard < 16; ++shard) {
    auto weight = redis_->Command({"HGET", StrCat("{hd:s", shard, "}:tw"), "acme"});
    ASSERT_TRUE(weight.ok()) << weight.status();
    EXPECT_EQ(*weight, "7") << "shard " << shard;
  }

  // Out of range: refused with the field named, and nothing changes.
  const CommandResult refused = Admin({"tenants", "update", "acme", "--weight=1001"});
  EXPECT_EQ(refused.exit_code, 6) << refused;
  EXPECT_THAT(refused.err, HasSubstr("tenant.scheduling_weight"));
  EXPECT_EQ(
      FromJson<v1::Tenant>(Admin({"tenants", "get", "acme", "--json"}).out).scheduling_weight(), 7);
  EXPECT_EQ(Admin({"tenants", "create", "heavy", "--weight=2000"}).exit_code, 6);
  EXPECT_EQ(Admin({"tenants", "get", "heavy"}).exit_code, 4);    // not created
  EXPECT_EQ(Admin({"tenants", "update", "acme"}).exit_code, 2);  // nothing to update
}

TEST_F(HeraldctlTest, TenantCreatesTeamAndAccountsAndListsThemAsJson) {
  const std::string secret = CreateTenantWithKey("acme");
  ASSERT_FALSE(secret.empty());
  const std::map<std::string, std::string> env = {
      {"HERALD_API_KEY", secret}, {"HERALD_TENANT", "acme"}, {"UPSTREAM_KEY", "ofapi-key-1234"}};

  const CommandResult team = Run({"teams", "create", "main", "--display-name=Main team",
                                  "--upstream-key-env=UPSTREAM_KEY", "--rate-limit=600"},
                                 env);
  ASSERT_EQ(team.exit_code, 0) << team;
  EXPECT_THAT(team.out, ::testing::Not(HasSubstr("ofapi-key-1234")));

  for (const std::string id : {"acct_a", "acct_b"}) {
    const CommandResult account =
        Run({"accounts", "create", id, "--team=main", "--pace=60", "--max-in-flight=2"}, env);
    ASSERT_EQ(account.exit_code, 0) << account;
  }

  const CommandResult teams = Run({"teams", "list", "--json"}, env);
  ASSERT_EQ(teams.exit_code, 0) << teams;
  const auto team_list = FromJson<v1::ListTeamsResponse>(teams.out);
  ASSERT_EQ(team_list.teams_size(), 1);
  EXPECT_EQ(team_list.teams(0).name(), "tenants/acme/teams/main");
  EXPECT_EQ(team_list.teams(0).rate_limit_per_minute(), 600);
  EXPECT_EQ(team_list.teams(0).upstream_api_key_hint(), "1234");
  EXPECT_TRUE(team_list.teams(0).upstream_api_key().empty());

  const CommandResult accounts = Run({"accounts", "list", "--team=main", "--json"}, env);
  ASSERT_EQ(accounts.exit_code, 0) << accounts;
  const auto account_list = FromJson<v1::ListAccountsResponse>(accounts.out);
  ASSERT_EQ(account_list.accounts_size(), 2);
  EXPECT_EQ(account_list.accounts(0).name(), "tenants/acme/accounts/acct_a");
  EXPECT_EQ(account_list.accounts(0).team(), "tenants/acme/teams/main");
  EXPECT_EQ(account_list.accounts(0).sends_per_minute(), 60);
  EXPECT_EQ(account_list.accounts(1).max_in_flight(), 2);

  // Tables for people, updates of the flags given only, pause.
  const CommandResult paused = Run({"accounts", "pause", "acct_b"}, env);
  ASSERT_EQ(paused.exit_code, 0) << paused;
  const CommandResult updated = Run({"accounts", "update", "acct_a", "--pace=30"}, env);
  ASSERT_EQ(updated.exit_code, 0) << updated;
  EXPECT_THAT(updated.out, HasSubstr("sends_per_minute: 30"));
  EXPECT_THAT(updated.out, HasSubstr("max_in_flight: 2"));
  const CommandResult table = Run({"accounts", "list"}, env);
  ASSERT_EQ(table.exit_code, 0) << table;
  EXPECT_THAT(table.out, HasSubstr("acct_a  main"));
  EXPECT_THAT(table.out, HasSubstr("paused"));

  // A team paused and resumed.
  const CommandResult team_paused = Run({"teams", "pause", "main"}, env);
  ASSERT_EQ(team_paused.exit_code, 0) << team_paused;
  EXPECT_THAT(team_paused.out, HasSubstr("paused_on_request: yes"));
  const CommandResult team_table = Run({"teams", "list"}, env);
  ASSERT_EQ(team_table.exit_code, 0) << team_table;
  EXPECT_THAT(team_table.out, HasSubstr("paused: paused with PauseTeam"));
  const CommandResult team_resumed = Run({"teams", "resume", "main", "--json"}, env);
  ASSERT_EQ(team_resumed.exit_code, 0) << team_resumed;
  EXPECT_FALSE(FromJson<v1::Team>(team_resumed.out).paused());
}

TEST_F(HeraldctlTest, ExitCodesScriptsCanTrust) {
  const std::string secret = CreateTenantWithKey("acme");
  const std::map<std::string, std::string> env = {{"HERALD_API_KEY", secret},
                                                  {"HERALD_TENANT", "acme"}};
  // Usage errors never reach the server.
  EXPECT_EQ(Run({"accounts", "create", "acct_a"}, env).exit_code, 2);
  EXPECT_EQ(Run({"teams", "list", "--no-such-flag"}, env).exit_code, 2);
  // NOT_FOUND.
  const CommandResult missing = Run({"accounts", "get", "acct_missing"}, env);
  EXPECT_EQ(missing.exit_code, 4) << missing;
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND"));
  // A wrong key, and a tenant key on the platform-admin service.
  EXPECT_EQ(
      Run({"teams", "list"}, {{"HERALD_API_KEY", "nope"}, {"HERALD_TENANT", "acme"}}).exit_code, 7);
  EXPECT_EQ(Run({"tenants", "list"}, env).exit_code, 7);
  // Invalid input the server rejects.
  EXPECT_EQ(Run({"teams", "create", "main", "--upstream-key-env=K", "--rate-limit=100000000"},
                {{"HERALD_API_KEY", secret}, {"HERALD_TENANT", "acme"}, {"K", "key"}})
                .exit_code,
            6);
  // Nothing listening.
  EXPECT_EQ(Run({"teams", "list", "--server=127.0.0.1:1", "--timeout=5"}, env).exit_code, 8);
}

TEST_F(HeraldctlTest, DraftCampaignFromYamlIsListedCancelledAndWatchedToItsEnd) {
  const std::string secret = CreateTenantWithKey("acme");
  const std::map<std::string, std::string> env = {
      {"HERALD_API_KEY", secret}, {"HERALD_TENANT", "acme"}, {"UPSTREAM_KEY", "ofapi-key-1234"}};
  ASSERT_EQ(Run({"teams", "create", "main", "--upstream-key-env=UPSTREAM_KEY"}, env).exit_code, 0);
  ASSERT_EQ(Run({"accounts", "create", "acct_a", "--team=main"}, env).exit_code, 0);
  ASSERT_EQ(Run({"accounts", "create", "acct_b", "--team=main"}, env).exit_code, 0);

  const std::string file = testing::MakeTempDir("heraldctl") + "/campaign.yaml";
  std::ofstream(file) << "display_name: Friday drop\n"
                         "content:\n"
                         "  text: \"Hello: free message\"\n"
                         "targets:\n"
                         "  - {account: acct_a, user_lists: [fans]}\n"
                         "  - {account: acct_b, fan_ids: [11, 12]}\n";
  const CommandResult created =
      Run({"campaigns", "create", "--file=" + file, "--draft", "--json"}, env);
  ASSERT_EQ(created.exit_code, 0) << created;
  const auto campaign = FromJson<v1::Campaign>(created.out);
  EXPECT_EQ(campaign.state(), v1::Campaign::DRAFT);
  EXPECT_EQ(campaign.display_name(), "Friday drop");
  ASSERT_EQ(campaign.targets_size(), 2);
  EXPECT_EQ(campaign.targets(0).account(), "tenants/acme/accounts/acct_a");

  const CommandResult updated =
      Run({"campaigns", "update", campaign.name(), "--text=Changed", "--json"}, env);
  ASSERT_EQ(updated.exit_code, 0) << updated;
  EXPECT_EQ(FromJson<v1::Campaign>(updated.out).content().text(), "Changed");
  EXPECT_EQ(FromJson<v1::Campaign>(updated.out).display_name(), "Friday drop");

  const CommandResult drafts = Run({"campaigns", "list", "--state=draft", "--json"}, env);
  ASSERT_EQ(drafts.exit_code, 0) << drafts;
  ASSERT_EQ(FromJson<v1::ListCampaignsResponse>(drafts.out).campaigns_size(), 1);

  // --all-accounts targets every account of the tenant, or of --team.
  ASSERT_EQ(Run({"teams", "create", "other", "--upstream-key-env=UPSTREAM_KEY"}, env).exit_code, 0);
  ASSERT_EQ(Run({"accounts", "create", "acct_c", "--team=other"}, env).exit_code, 0);
  const auto accounts_of = [](const v1::Campaign& c) {
    std::vector<std::string> out;
    for (const v1::AccountTarget& t : c.targets()) {
      out.push_back(t.account());
      EXPECT_THAT(t.user_lists(), ::testing::ElementsAre("recent")) << t.account();
    }
    return out;
  };
  const CommandResult of_team = Run({"campaigns", "update", campaign.name(), "--all-accounts",
                                     "--team=main", "--lists=recent", "--json"},
                                    env);
  ASSERT_EQ(of_team.exit_code, 0) << of_team;
  EXPECT_THAT(accounts_of(FromJson<v1::Campaign>(of_team.out)),
              ::testing::UnorderedElementsAre("tenants/acme/accounts/acct_a",
                                              "tenants/acme/accounts/acct_b"));
  const CommandResult everyone = Run({"campaigns", "create", "--text=To all", "--all-accounts",
                                      "--lists=recent", "--draft", "--json"},
                                     env);
  ASSERT_EQ(everyone.exit_code, 0) << everyone;
  EXPECT_THAT(accounts_of(FromJson<v1::Campaign>(everyone.out)),
              ::testing::UnorderedElementsAre("tenants/acme/accounts/acct_a",
                                              "tenants/acme/accounts/acct_b",
                                              "tenants/acme/accounts/acct_c"));
  EXPECT_EQ(Run({"campaigns", "create", "--text=x", "--all-accounts", "--accounts=acct_a"}, env)
                .exit_code,
            2);
  EXPECT_EQ(
      Run({"campaigns", "create", "--text=x", "--accounts=acct_a", "--team=main"}, env).exit_code,
      2);
  const CommandResult no_team =
      Run({"campaigns", "create", "--text=x", "--all-accounts", "--team=nope"}, env);
  EXPECT_EQ(no_team.exit_code, 6) << no_team;
  EXPECT_THAT(no_team.err, HasSubstr("team 'nope' has no accounts"));

  const CommandResult cancelled = Run({"campaigns", "cancel", campaign.name()}, env);
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled;
  EXPECT_THAT(cancelled.out, HasSubstr("state: CANCELLED"));

  // The stream of a final campaign ends at once: exit 3, as it did not complete. Not a
  // terminal, so one line per change.
  const CommandResult watched = Run({"campaigns", "watch", std::string(campaign.name())}, env);
  EXPECT_EQ(watched.exit_code, 3) << watched;
  EXPECT_THAT(watched.out, HasSubstr(" CANCELLED "));
  EXPECT_THAT(watched.err, HasSubstr("campaign ended CANCELLED"));
  // Cancelling again is FAILED_PRECONDITION.
  EXPECT_EQ(Run({"campaigns", "cancel", campaign.name()}, env).exit_code, 6);
}

// With the upstream simulator behind Herald: accounts imported from the upstream, media and a PPV
// campaign watched until it completes.
class HeraldctlUpstreamTest : public HeraldctlTest {
 protected:
  void SetUp() override { StartWithSimulator({}); }

  // Herald (role all, and `herald_flags`) in front of a simulator team of two accounts; with
  // `webhooks`, teams register their webhook and the simulator's events reach Herald's ingest.
  void StartWithSimulator(const std::vector<std::string>& herald_flags, bool webhooks = false,
                          int fans_per_account = 5) {
    StartWith(
        {"--teams=1", "--accounts_per_team=2", StrCat("--fans_per_account=", fans_per_account),
         "--delivery_rate=2000", "--rate_limit_per_minute=100000"},
        herald_flags, webhooks);
  }

  // The simulator with `simulator_args` (its team's key is sim-key-1), and Herald in front of it.
  void StartWith(std::vector<std::string> simulator_args,
                 const std::vector<std::string>& herald_flags, bool webhooks) {
    auto sim = testing::SimulatorProcess::Start({.args = std::move(simulator_args)});
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = std::move(*sim);
    std::vector<std::string> args = {"serve", "--role=all",
                                     StrCat("--upstream_url=http://127.0.0.1:", sim_->port()),
                                     "--poll_interval=50ms"};
    args.insert(args.end(), herald_flags.begin(), herald_flags.end());
    StartHerald(std::move(args), webhooks);
  }

  // Tenant acme with team main (the simulator's team), its two accounts and a video, made with
  // heraldctl; `env_` is set for acme's later commands.
  void SetUpAcme() {
    const std::string secret = CreateTenantWithKey("acme");
    env_ = {{"HERALD_API_KEY", secret}, {"HERALD_TENANT", "acme"}, {"SIM_KEY", "sim-key-1"}};
    ASSERT_EQ(Run({"teams", "create", "main", "--upstream-key-env=SIM_KEY"}, env_).exit_code, 0);
    const CommandResult synced = Run({"accounts", "sync", "--team=main", "--json"}, env_);
    ASSERT_EQ(synced.exit_code, 0) << synced;
    const auto sync = FromJson<v1::SyncAccountsResponse>(synced.out);
    for (const auto& account : sync.created()) accounts_.push_back(account.name());
    ASSERT_EQ(accounts_.size(), 2u);
    const CommandResult media =
        Run({"media", "create", "--url=https://cdn.example.com/teaser.mp4", "--json"}, env_);
    ASSERT_EQ(media.exit_code, 0) << media;
    const auto asset = FromJson<v1::MediaAsset>(media.out);
    EXPECT_EQ(asset.type(), v1::MediaAsset::VIDEO);
    video_ = asset.name();
  }

  // Creates a $15 campaign with the video to both accounts' fans (`more`: further flags) and
  // returns its name.
  std::string CreatePpvCampaign(std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"campaigns",
                                     "create",
                                     "--text=New video, just for you",
                                     "--price=15.00",
                                     "--media=" + video_,
                                     "--accounts=" + accounts_[0] + "," + accounts_[1],
                                     "--lists=fans",
                                     "--json"};
    args.insert(args.end(), more.begin(), more.end());
    const CommandResult campaign = Run(args, env_);
    EXPECT_EQ(campaign.exit_code, 0) << campaign;
    return FromJson<v1::Campaign>(campaign.out).name();
  }

  std::unique_ptr<testing::SimulatorProcess> sim_;
  std::map<std::string, std::string> env_;
  std::vector<std::string> accounts_;
  std::string video_;
};

TEST_F(HeraldctlUpstreamTest, PpvCampaignIsWatchedUntilItCompletes) {
  ASSERT_NO_FATAL_FAILURE(SetUpAcme());
  const std::string name = CreatePpvCampaign();
  ASSERT_FALSE(name.empty());

  const CommandResult watched = Run({"campaigns", "watch", name}, env_);
  EXPECT_EQ(watched.exit_code, 0) << watched;
  EXPECT_THAT(watched.out, HasSubstr(" COMPLETED deliveries 2/2 failed 0"));

  const CommandResult deliveries = Run({"campaigns", "deliveries", name, "--json"}, env_);
  ASSERT_EQ(deliveries.exit_code, 0) << deliveries;
  const auto list = FromJson<v1::ListDeliveriesResponse>(deliveries.out);
  ASSERT_EQ(list.deliveries_size(), 2);
  for (const auto& d : list.deliveries()) {
    EXPECT_EQ(d.state(), v1::Delivery::COMPLETED) << d.account() << ": " << d.error();
  }
  // --state filters, in any case; an unknown state is a usage error.
  const CommandResult done =
      Run({"campaigns", "deliveries", name, "--state=completed,sent", "--json"}, env_);
  ASSERT_EQ(done.exit_code, 0) << done;
  EXPECT_EQ(FromJson<v1::ListDeliveriesResponse>(done.out).deliveries_size(), 2);
  const CommandResult failed =
      Run({"campaigns", "deliveries", name, "--state=FAILED", "--json"}, env_);
  ASSERT_EQ(failed.exit_code, 0) << failed;
  EXPECT_EQ(FromJson<v1::ListDeliveriesResponse>(failed.out).deliveries_size(), 0);
  EXPECT_EQ(Run({"campaigns", "deliveries", name, "--state=lost"}, env_).exit_code, 2);
  const CommandResult table = Run({"campaigns", "list"}, env_);
  ASSERT_EQ(table.exit_code, 0) << table;
  EXPECT_THAT(table.out, HasSubstr("COMPLETED"));
  EXPECT_THAT(table.out, HasSubstr("$15.00"));
}

// A segment campaign's lists, with a reconciliation of one round 50ms after each message: by
// default each goes once that round has run, with --keep_segment_lists it stays.
class HeraldctlSegmentListsTest : public HeraldctlUpstreamTest {
 protected:
  void SetUp() override {}  // each test starts Herald with its own flags

  void Start(bool keep_lists) {
    std::vector<std::string> flags = {"--reconcile_schedule=50ms"};
    if (keep_lists) flags.emplace_back("--keep_segment_lists");
    StartWithSimulator(flags, /*webhooks=*/false, /*fans_per_account=*/40);
    ASSERT_NO_FATAL_FAILURE(SetUpAcme());
  }

  // Sends a message to the lapsed fans (a segment) of every account, until it completes.
  void SendToLapsedFans() {
    const CommandResult segment =
        Run({"segments", "create", "Lapsed", "--expired-only", "--json"}, env_);
    ASSERT_EQ(segment.exit_code, 0) << segment;
    const CommandResult sent =
        Run({"campaigns", "create", "--text=We miss you", "--all-accounts",
             "--segment=" + FromJson<v1::Segment>(segment.out).name(), "--watch"},
            env_);
    ASSERT_EQ(sent.exit_code, 0) << sent;
  }

  // How many of the accounts show the segment's list.
  int AccountsShowingTheList() {
    int showing = 0;
    for (const std::string& account : accounts_) {
      const CommandResult lists = Run({"lists", "list", account}, env_);
      EXPECT_EQ(lists.exit_code, 0) << lists;
      if (lists.out.find("Herald Lapsed") != std::string::npos) ++showing;
    }
    return showing;
  }

  // herald_jobs_total{kind, outcome} as Herald reports it; 0 before it is first reported.
  double Jobs(std::string_view kind, std::string_view outcome) {
    auto r = testing::HttpGet(herald_->admin_port(), "/metrics");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return -1;
    return testing::SeriesValue(r->body, StrCat(R"(herald_jobs_total{kind=")", kind,
                                                R"(",outcome=")", outcome, R"("})"))
        .value_or(0);
  }
};

TEST_F(HeraldctlSegmentListsTest, ASegmentsListGoesOnceItsCampaignsReconciliationIsOver) {
  ASSERT_NO_FATAL_FAILURE(Start(/*keep_lists=*/false));
  ASSERT_NO_FATAL_FAILURE(SendToLapsedFans());
  EXPECT_TRUE(
      testing::WaitFor([&] { return Jobs("delivery_drop_list", "ok") >= 2; }, absl::Seconds(30)))
      << herald_->Logs();
  EXPECT_EQ(Jobs("delivery_reconcile", "ok"), 2) << "each list goes after its reconciliation";
  EXPECT_EQ(AccountsShowingTheList(), 0);
}

TEST_F(HeraldctlSegmentListsTest, WithKeepSegmentListsASegmentsListStays) {
  ASSERT_NO_FATAL_FAILURE(Start(/*keep_lists=*/true));
  ASSERT_NO_FATAL_FAILURE(SendToLapsedFans());
  // The reconciliation, after which the list would go, has run, and nothing was deleted.
  EXPECT_TRUE(
      testing::WaitFor([&] { return Jobs("delivery_reconcile", "ok") >= 2; }, absl::Seconds(30)))
      << herald_->Logs();
  EXPECT_EQ(Jobs("delivery_drop_list", "ok"), 0);
  EXPECT_EQ(AccountsShowingTheList(), 2);
}

// Connections asked to reconnect every second (as --grpc_max_connection_age does on a schedule,
// and a drain does on a deploy) end the watch's stream UNAVAILABLE again and again: heraldctl
// opens it again each time and follows the campaign to its end, and the snapshot each new stream
// starts with does not print a delivery's line twice.
// An upstream that lists an id Herald could not name in any call: the account is not imported,
// and the sync says so.
class HeraldctlSyncTest : public HeraldctlUpstreamTest {
 protected:
  void SetUp() override {
    const std::string seed = testing::MakeTempDir("heraldctl-sync") + "/seed.json";
    std::ofstream(seed) << R"({"seed": 5, "teams": [{"id": "team-1", "api_keys": ["sim-key-1"],
        "accounts": [{"id": "acct_good1", "fans": 2}, {"id": "acct_not-an-id", "fans": 2}]}]})";
    StartWith({"--seed_file=" + seed}, {}, /*webhooks=*/false);
  }
};

TEST_F(HeraldctlSyncTest, AnIdThatIsNotAnAccountIdIsNotImported) {
  const std::string secret = CreateTenantWithKey("acme");
  env_ = {{"HERALD_API_KEY", secret}, {"HERALD_TENANT", "acme"}, {"SIM_KEY", "sim-key-1"}};
  ASSERT_EQ(Run({"teams", "create", "main", "--upstream-key-env=SIM_KEY"}, env_).exit_code, 0);

  const CommandResult first = Run({"accounts", "sync", "--team=main"}, env_);
  ASSERT_EQ(first.exit_code, 0) << first;
  EXPECT_THAT(first.out, HasSubstr("acct_good1"));
  EXPECT_THAT(first.out, HasSubstr("1 created, 0 unchanged, 1 not imported (the upstream listed "
                                   "ids that are not account ids): acct_not-an-id\n"));
  const CommandResult again = Run({"accounts", "sync", "--team=main", "--json"}, env_);
  ASSERT_EQ(again.exit_code, 0) << again;
  const auto synced = FromJson<v1::SyncAccountsResponse>(again.out);
  EXPECT_EQ(synced.created_size(), 0);
  EXPECT_EQ(synced.unchanged(), 1);
  EXPECT_THAT(synced.unusable_ids(), ::testing::ElementsAre("acct_not-an-id"));

  const CommandResult listed = Run({"accounts", "list", "--json"}, env_);
  ASSERT_EQ(listed.exit_code, 0) << listed;
  const auto accounts = FromJson<v1::ListAccountsResponse>(listed.out);
  ASSERT_EQ(accounts.accounts_size(), 1);
  EXPECT_EQ(accounts.accounts(0).name(), "tenants/acme/accounts/acct_good1");
}

class HeraldctlReconnectTest : public HeraldctlUpstreamTest {
 protected:
  void SetUp() override {
    StartWithSimulator({"--grpc_max_connection_age=1s", "--grpc_max_connection_age_grace=1s"},
                       /*webhooks=*/true);
  }
};

TEST_F(HeraldctlReconnectTest, AWatchOpensItsStreamAgainAndFollowsTheCampaignToItsEnd) {
  ASSERT_NO_FATAL_FAILURE(SetUpAcme());
  const std::string send_at =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now() + absl::Seconds(6), absl::UTCTimeZone());
  const std::string name = CreatePpvCampaign({"--send-at=" + send_at});
  ASSERT_FALSE(name.empty());

  const CommandResult watched = Run({"campaigns", "watch", name}, env_);
  EXPECT_EQ(watched.exit_code, 0) << watched;
  EXPECT_THAT(watched.err, HasSubstr("opening it again")) << watched;
  const std::vector<std::string> lines = absl::StrSplit(watched.out, '\n');
  auto count = [&](std::string_view part) {
    return std::count_if(lines.begin(), lines.end(), [&](const std::string& line) {
      return line.find(part) != std::string::npos;
    });
  };
  EXPECT_EQ(count(" COMPLETED deliveries 2/2 failed 0"), 1) << watched.out;
  for (const std::string& account : accounts_) {
    const std::string id = account.substr(account.rfind('/') + 1);
    EXPECT_EQ(count(StrCat("delivery ", id, " COMPLETED")), 1) << watched.out;
    EXPECT_EQ(count(StrCat("delivery ", id, " PENDING")), 1) << watched.out;
  }
}

// `events tail` through the same reconnections: each stream opened again resumes after the last
// event printed, so the tail prints the messages.sent of every fan the campaign reached, once.
TEST_F(HeraldctlReconnectTest, AnEventTailOpensItsStreamAgainAndPrintsEachEventOnce) {
  ASSERT_NO_FATAL_FAILURE(SetUpAcme());
  // One messages.sent per fan on the accounts' "fans" lists.
  int64_t fans = 0;
  for (const std::string& account : accounts_) {
    const CommandResult lists = Run({"lists", "list", account, "--json"}, env_);
    ASSERT_EQ(lists.exit_code, 0) << lists;
    const auto listed = FromJson<v1::ListUserListsResponse>(lists.out);
    for (const auto& list : listed.user_lists()) {
      if (list.id() == "fans") fans += list.fan_count();
    }
  }
  ASSERT_GT(fans, 0);
  CommandResult tailed;
  // From now on (the campaign goes out 4 s from now): a stream opened again before the first
  // event resumes where the first one started, so it misses none.
  std::thread tail([&] {
    tailed =
        Run({"events", "tail", "--type=messages.sent", StrCat("--limit=", fans), "--json"}, env_);
  });
  const std::string send_at =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now() + absl::Seconds(4), absl::UTCTimeZone());
  EXPECT_FALSE(CreatePpvCampaign({"--send-at=" + send_at}).empty());
  tail.join();
  EXPECT_EQ(tailed.exit_code, 0) << tailed;
  EXPECT_THAT(tailed.err, HasSubstr("opening it again")) << tailed;
  std::set<std::pair<std::string, int64_t>> recipients;  // (account, fan) of each message
  const std::vector<std::string> lines = absl::StrSplit(tailed.out, '\n', absl::SkipEmpty());
  for (const std::string& line : lines) {
    const auto event = FromJson<v1::Event>(line);
    EXPECT_EQ(event.event_type(), "messages.sent");
    recipients.emplace(event.account(), event.fan_id());
  }
  EXPECT_EQ(static_cast<int64_t>(recipients.size()), fans) << tailed.out;  // none twice
}

TEST_F(HeraldctlUpstreamTest, ListsAndSegments) {
  ASSERT_NO_FATAL_FAILURE(SetUpAcme());
  const std::string account = accounts_[0];

  const CommandResult lists = Run({"lists", "list", account}, env_);
  ASSERT_EQ(lists.exit_code, 0) << lists;
  EXPECT_THAT(lists.out, HasSubstr("fans"));
  const CommandResult created =
      Run({"lists", "create", account, "VIPs", "--request-id=vips-1", "--json"}, env_);
  ASSERT_EQ(created.exit_code, 0) << created;
  const std::string list_id = FromJson<v1::UserList>(created.out).id();
  ASSERT_FALSE(list_id.empty());
  // Run again with its request id (a script retrying): the same list, no second one.
  const CommandResult retried =
      Run({"lists", "create", account, "VIPs", "--request-id=vips-1", "--json"}, env_);
  ASSERT_EQ(retried.exit_code, 0) << retried;
  EXPECT_EQ(FromJson<v1::UserList>(retried.out).id(), list_id);
  // Two real fans of the account, from the simulator.
  auto teams = testing::HttpGet(sim_->port(), "/_sim/teams");
  ASSERT_TRUE(teams.ok()) << teams.status();
  const std::string upstream_id = testing::ShortId(account);
  const size_t at = teams->body.find(upstream_id);
  const size_t ids = teams->body.find("\"sample_fan_ids\":[", at);
  ASSERT_NE(ids, std::string::npos);
  const size_t begin = ids + std::string_view("\"sample_fan_ids\":[").size();
  std::vector<std::string_view> fans = StrSplit(
      std::string_view(teams->body).substr(begin, teams->body.find(']', begin) - begin), ',');
  ASSERT_GE(fans.size(), 2u);
  const CommandResult added = Run(
      {"lists", "add", account, list_id, StrCat("--fans=", fans[0], ",", fans[1]), "--json"}, env_);
  ASSERT_EQ(added.exit_code, 0) << added;
  EXPECT_EQ(FromJson<v1::AddFansToUserListResponse>(added.out).batches(), 1);
  EXPECT_EQ(FromJson<v1::AddFansToUserListResponse>(added.out).fans_added(), 2);

  const CommandResult segment =
      Run({"segments", "create", "Top spenders", "--min-spend=50.00", "--json"}, env_);
  ASSERT_EQ(segment.exit_code, 0) << segment;
  EXPECT_EQ(FromJson<v1::Segment>(segment.out).min_lifetime_spend_cents(), 5000);
  const CommandResult segments = Run({"segments", "list"}, env_);
  ASSERT_EQ(segments.exit_code, 0) << segments;
  EXPECT_THAT(segments.out, HasSubstr("spend >= $50.00"));
  // The name may come as --display-name too, as `segments update` takes it; not both, not none.
  const CommandResult flagged =
      Run({"segments", "create", "--display-name=Lapsed", "--expired-only", "--json"}, env_);
  ASSERT_EQ(flagged.exit_code, 0) << flagged;
  EXPECT_EQ(FromJson<v1::Segment>(flagged.out).display_name(), "Lapsed");
  EXPECT_EQ(Run({"segments", "create", "--expired-only"}, env_).exit_code, 2);
  EXPECT_EQ(Run({"segments", "create", "A", "--display-name=B", "--expired-only"}, env_).exit_code,
            2);

  // An update changes only the flags given.
  const std::string name = FromJson<v1::Segment>(segment.out).name();
  const CommandResult updated = Run(
      {"segments", "update", name, "--min-spend=75.00", "--subscribed-within-days=30", "--json"},
      env_);
  ASSERT_EQ(updated.exit_code, 0) << updated;
  const v1::Segment after = FromJson<v1::Segment>(updated.out);
  EXPECT_EQ(after.display_name(), "Top spenders");
  EXPECT_EQ(after.min_lifetime_spend_cents(), 7500);
  EXPECT_EQ(after.subscribed_within_days(), 30);
  // Nothing to update is a usage error; an update that would leave no condition, the server's.
  EXPECT_EQ(Run({"segments", "update", name}, env_).exit_code, 2);
  const CommandResult emptied =
      Run({"segments", "update", name, "--min-spend-cents=0", "--subscribed-within-days=0"}, env_);
  EXPECT_EQ(emptied.exit_code, 6) << emptied;
  EXPECT_THAT(emptied.err, HasSubstr("at least one condition"));
  const CommandResult unchanged = Run({"segments", "get", name, "--json"}, env_);
  ASSERT_EQ(unchanged.exit_code, 0) << unchanged;
  EXPECT_EQ(FromJson<v1::Segment>(unchanged.out).min_lifetime_spend_cents(), 7500);

  // The biggest spenders among those the other conditions select.
  const CommandResult ranked =
      Run({"segments", "update", name, "--top-spenders=25", "--json"}, env_);
  ASSERT_EQ(ranked.exit_code, 0) << ranked;
  EXPECT_EQ(FromJson<v1::Segment>(ranked.out).top_spenders(), 25);
  EXPECT_EQ(FromJson<v1::Segment>(ranked.out).min_lifetime_spend_cents(), 7500);
  const CommandResult shown = Run({"segments", "list"}, env_);
  ASSERT_EQ(shown.exit_code, 0) << shown;
  EXPECT_THAT(shown.out, HasSubstr("top 25 spenders of: spend >= $75.00"));
  const CommandResult too_many = Run({"segments", "update", name, "--top-spenders=100001"}, env_);
  EXPECT_EQ(too_many.exit_code, 6) << too_many;
  EXPECT_THAT(too_many.err, HasSubstr("segment.top_spenders"));
}

}  // namespace
}  // namespace herald
