// The campaign API end to end: the real herald binary over gRPC, on a real redis-server and on a
// six-node Redis Cluster, and the upstream simulator, with the simulator's ledger as ground truth.
#include <algorithm>
#include <functional>
#include <future>
#include <optional>
#include <set>
#include <thread>

#include <absl/cleanup/cleanup.h>
#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <herald/common/strings.h>
#include <herald/queue/layout.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_stack_suite.h>
#include <herald/testing/net.h>
#include <herald/testing/observability.h>
#include <herald/testing/queue_jobs.h>
#include <herald/testing/redis_sync.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/wait.h>
#include <herald/testing/webhook_events.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/audience.grpc.pb.h>
#include <herald/v1/automation.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/events.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald {
namespace {

namespace json = boost::json;
using testing::BearerContext;
using testing::HeraldStack;
using testing::ShortId;

constexpr char kAdminKey[] = "admin-secret-for-tests";
constexpr int kAccounts = 20;

// One Herald, Redis and simulator for the whole suite (starting them is the slow part), once on a
// single Redis and once on a Redis Cluster; each test works in tenants of its own.
// Calls `method` of `stub` with `request` as the tenant of `key`; the response is dropped.
template <typename Stub, typename Request, typename Response>
grpc::Status CallAs(const std::string& key, Stub& stub,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request) {
  Response response;
  return (stub.*method)(BearerContext(key).get(), request, &response);
}

// A request with its `name`, `parent` or `account` set.
template <typename Request>
Request Named(const std::string& name) {
  Request r;
  r.set_name(name);
  return r;
}
template <typename Request>
Request Parented(const std::string& parent) {
  Request r;
  r.set_parent(parent);
  return r;
}
template <typename Request>
Request OfAccount(const std::string& account) {
  Request r;
  r.set_account(account);
  return r;
}

// The fans of upstream list `list_id` of `account_id`, read page by page as the upstream gives
// them (sim team `sim_team`'s key).
std::set<int64_t> UpstreamListMembers(uint16_t sim_port, int sim_team,
                                      const std::string& account_id, const std::string& list_id) {
  std::set<int64_t> fans;
  for (int64_t offset = 0;;) {
    auto r = testing::HttpRequest(
        sim_port, "GET",
        StrCat("/api/", account_id, "/user-lists/", list_id, "/users?limit=50&offset=", offset), "",
        {{"Authorization", StrCat("Bearer sim-key-", sim_team)}});
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    if (!r.ok() || r->status != 200) return fans;
    const json::value body = json::parse(r->body);
    const json::object& data = body.at("data").as_object();
    for (const json::value& fan : data.at("list").as_array()) {
      fans.insert(fan.at("id").to_number<int64_t>());
    }
    if (!data.at("hasMore").as_bool()) return fans;
    offset = data.at("nextOffset").to_number<int64_t>();
  }
}

class CampaignTest : public testing::HeraldStackSuiteOnEachRedis<CampaignTest> {
 public:
  static HeraldStack::Options StackOptions() {
    // Two fans per add-to-list call: a handful of fans takes several batches. A segment scans
    // an account's list in pages of 4, which the upstream answers with 3 fans each: the scan
    // must go on from the offset each page gives.
    return {.simulator_args = {"--teams=2", StrCat("--accounts_per_team=", kAccounts),
                               "--fans_per_account=40", "--delivery_rate=2000",
                               "--rate_limit_per_minute=100000", "--member_page_shortfall=1"},
            .herald_args = {"--poll_interval=50ms", "--lookup_retry=1s", "--log_level=warn",
                            "--dispatch_sweep_interval=200ms", "--dispatch_sweep_after=2s",
                            "--list_batch=2", "--segment_page=4"},
            .admin_key = kAdminKey,
            .encryption_key = std::string(64, 'a')};
  }

 protected:
  // A new tenant with a key; returns the key.
  static std::string NewTenant(const std::string& id) {
    auto key = testing::CreateTenant(stack_->channel(), kAdminKey, id, /*display_name=*/id);
    EXPECT_TRUE(key.ok()) << key.status() << "\n" << stack_->herald().Logs();
    return key.value_or("");
  }

  // Creates team "main" on upstream team `sim_team` (1-based) and imports its accounts.
  static std::vector<std::string> ImportAccounts(const std::string& tenant, const std::string& key,
                                                 int sim_team) {
    auto team =
        testing::CreateTeamWithAccounts(stack_->channel(), key, tenant, {.sim_team = sim_team});
    EXPECT_TRUE(team.ok()) << team.status();
    return team.ok() ? team->accounts : std::vector<std::string>();
  }

  static std::string NewMedia(const std::string& tenant, const std::string& key) {
    auto media = testing::CreateMediaAsset(stack_->channel(), key, tenant, v1::MediaAsset::VIDEO,
                                           "https://cdn.example.com/teaser.mp4");
    EXPECT_TRUE(media.ok()) << media.status();
    return media.value_or("");
  }

  // Creates `segment` for `tenant`: the segment as created (empty, and a test failure, when the
  // create fails).
  static v1::Segment NewSegment(const std::string& tenant, const std::string& key,
                                v1::Segment segment) {
    v1::CreateSegmentRequest req;
    req.set_parent(StrCat("tenants/", tenant));
    *req.mutable_segment() = std::move(segment);
    v1::Segment created;
    const grpc::Status s = v1::AudienceService::NewStub(stack_->channel())
                               ->CreateSegment(BearerContext(key).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return created;
  }

  // A segment of the fans whose subscription has expired.
  static v1::Segment Lapsed() {
    v1::Segment segment;
    segment.set_display_name("Lapsed fans");
    segment.set_expired_only(true);
    return segment;
  }

  static v1::CreateCampaignRequest PpvCampaign(const std::string& tenant,
                                               const std::vector<std::string>& accounts,
                                               const std::string& media, std::string text) {
    v1::CreateCampaignRequest req = testing::CampaignToFans(tenant, accounts, text, 1500, media);
    req.mutable_campaign()->set_display_name("weekend ppv");
    return req;
  }

  // A draft of PpvCampaign, saved for later.
  static v1::Campaign NewDraft(const std::string& tenant, const std::string& key,
                               const std::vector<std::string>& accounts, const std::string& media,
                               std::string text) {
    v1::CreateCampaignRequest req = PpvCampaign(tenant, accounts, media, std::move(text));
    req.mutable_campaign()->set_save_as_draft(true);
    v1::Campaign draft;
    grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                         ->CreateCampaign(BearerContext(key).get(), req, &draft);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return draft;
  }

  // PauseCampaign and ResumeCampaign of campaign `name`.
  static absl::StatusOr<v1::Campaign> Pause(const std::string& key, const std::string& name) {
    return testing::PauseCampaign(stack_->channel(), key, name);
  }
  static absl::StatusOr<v1::Campaign> Resume(const std::string& key, const std::string& name) {
    return testing::ResumeCampaign(stack_->channel(), key, name);
  }

  static v1::Campaign GetCampaign(const std::string& key, const std::string& name) {
    v1::GetCampaignRequest req;
    req.set_name(name);
    v1::Campaign out;
    const grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                               ->GetCampaign(BearerContext(key).get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // Follows WatchCampaign to its end; returns the last campaign seen.
  static v1::Campaign Watch(const std::string& key, const std::string& name) {
    auto campaigns = v1::CampaignService::NewStub(stack_->channel());
    auto ctx = BearerContext(key, absl::Seconds(60));
    v1::WatchCampaignRequest req;
    req.set_name(name);
    auto reader = campaigns->WatchCampaign(ctx.get(), req);
    v1::WatchCampaignResponse update;
    v1::Campaign last;
    while (reader->Read(&update)) {
      if (update.has_campaign()) last = update.campaign();
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return last;
  }

  // The simulator's ledger: mass messages per account id.
  static std::map<std::string, int> LedgerMessages() {
    auto ledger = testing::ReadLedger(stack_->sim().port());
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return ledger.ok() ? testing::MassMessagesPerAccount(*ledger) : std::map<std::string, int>();
  }

  // Every ledger entry of an account's mass messages: (id, state).
  static std::vector<std::pair<int64_t, std::string>> LedgerOf(const std::string& account_id) {
    std::vector<std::pair<int64_t, std::string>> out;
    auto ledger =
        testing::ReadLedger(stack_->sim().port(), StrCat("all=true&account=", account_id));
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    if (!ledger.ok()) return out;
    for (const auto& a : ledger->at("accounts").as_array()) {
      for (const auto& m : a.at("mass_messages").as_array()) {
        out.emplace_back(m.at("id").to_number<int64_t>(), std::string(m.at("state").as_string()));
      }
    }
    return out;
  }

  // Sets the credits of simulator team `sim_team` ("team-1").
  // How many recipients a second the simulator delivers a mass message to (2: slowly enough to
  // catch a message part-way; 2000, the stack's own: at once).
  static void SetDeliveryRate(int per_second) {
    auto r = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/behavior",
                                  StrCat(R"({"delivery_rate":)", per_second, "}"));
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
  }

  static void SetUnsendWindowMs(int64_t ms) {
    auto r = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/behavior",
                                  StrCat(R"({"unsend_window_ms":)", ms, "}"));
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
  }

  // PauseAccount or ResumeAccount of `account`; the answer in `answer` when given.
  static void SetAccountPaused(const std::string& key, const std::string& account, bool paused,
                               v1::Account* answer = nullptr) {
    auto accounts = v1::AccountService::NewStub(stack_->channel());
    v1::Account local;
    v1::Account& out = answer != nullptr ? *answer : local;
    grpc::Status status;
    if (paused) {
      v1::PauseAccountRequest req;
      req.set_name(account);
      status = accounts->PauseAccount(BearerContext(key).get(), req, &out);
    } else {
      v1::ResumeAccountRequest req;
      req.set_name(account);
      status = accounts->ResumeAccount(BearerContext(key).get(), req, &out);
    }
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  static void SetCredits(const std::string& sim_team, int64_t credits) {
    auto r = testing::HttpRequest(stack_->sim().port(), "POST", StrCat("/_sim/teams/", sim_team),
                                  StrCat(R"({"credits":)", credits, "}"));
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
  }

  // A new custom upstream list of `account`.
  static v1::UserList NewUserList(const std::string& key, const std::string& account,
                                  const std::string& name) {
    v1::CreateUserListRequest create;
    create.set_account(account);
    create.set_display_name(name);
    v1::UserList list;
    grpc::Status s = v1::AudienceService::NewStub(stack_->channel())
                         ->CreateUserList(BearerContext(key).get(), create, &list);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return list;
  }

  // A few fans of an upstream account (five), from the simulator.
  static std::vector<int64_t> SampleFans(const std::string& account_id) {
    auto r = testing::HttpGet(stack_->sim().port(), "/_sim/teams");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    std::vector<int64_t> fans;
    const json::value teams = json::parse(r->body);
    for (const auto& team : teams.as_array()) {
      for (const auto& a : team.at("accounts").as_array()) {
        if (a.at("id").as_string() != account_id) continue;
        for (const auto& f : a.at("sample_fan_ids").as_array()) {
          fans.push_back(f.to_number<int64_t>());
        }
      }
    }
    return fans;
  }

  // A fan of an upstream account, from the simulator.
  static int64_t SomeFan(const std::string& account_id) {
    const std::vector<int64_t> fans = SampleFans(account_id);
    EXPECT_FALSE(fans.empty()) << account_id;
    return fans.empty() ? 0 : fans.front();
  }

  // The ids of `account`'s upstream lists whose display name starts with `prefix`.
  static std::vector<std::string> ListsNamed(const std::string& key, const std::string& account,
                                             std::string_view prefix) {
    v1::ListUserListsRequest req;
    req.set_account(account);
    std::vector<std::string> ids;
    do {  // every page: the account's lists may be many
      v1::ListUserListsResponse lists;
      const grpc::Status s = v1::AudienceService::NewStub(stack_->channel())
                                 ->ListUserLists(BearerContext(key).get(), req, &lists);
      EXPECT_TRUE(s.ok()) << s.error_message();
      for (const v1::UserList& l : lists.user_lists()) {
        if (l.display_name().starts_with(prefix)) ids.push_back(l.id());
      }
      req.set_page_token(lists.next_page_token());
    } while (!req.page_token().empty());
    return ids;
  }

  // A binary-safe connection to the Redis node that serves `key`.
  static absl::StatusOr<std::unique_ptr<testing::SyncRedis>> RedisFor(testing::RedisKind kind,
                                                                      const std::string& key) {
    if (kind == testing::RedisKind::kSingleNode) {
      return testing::SyncRedis::Connect(stack_->redis().port(), stack_->redis().password());
    }
    absl::StatusOr<uint16_t> slot = stack_->cluster().KeySlot(key);
    if (!slot.ok()) return slot.status();
    const std::optional<uint16_t> port = stack_->cluster().MasterPortOf(*slot);
    if (!port) return absl::UnavailableError(StrCat("no master serves ", key));
    return testing::SyncRedis::Connect(*port, stack_->cluster().password());
  }

  // The Redis keys of `tenant` that match `pattern` after the tenant's prefix.
  static std::vector<std::string> TenantKeys(const std::string& tenant, std::string_view pattern) {
    const std::string prefix = StrCat("hd:{t:", tenant, "}:");
    auto redis = RedisFor(GetParam(), prefix);
    EXPECT_TRUE(redis.ok()) << redis.status();
    if (!redis.ok()) return {"(unreadable)"};
    auto keys = (*redis)->Command({"KEYS", StrCat(prefix, pattern)});
    EXPECT_TRUE(keys.ok()) << keys.status();
    if (!keys.ok()) return {"(unreadable)"};
    std::vector<std::string> names;
    for (const auto& k : keys->elements) names.push_back(k.str);
    return names;
  }

  // The Redis keys of `tenant`'s segment scans (what the segment steps keep while they build a
  // delivery's list).
  static std::vector<std::string> SegmentScansOf(const std::string& tenant) {
    return TenantKeys(tenant, "c:*:segment*");
  }

  // Adds a fault rule to the simulator: `rule` as POST /_sim/faults takes it.
  static void AddFault(const std::string& rule) {
    auto added = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/faults", rule);
    ASSERT_TRUE(added.ok() && added->status == 200)
        << (added.ok() ? added->body : added.status().ToString());
  }

  // Removes the fault rules of simulator team `team` ("team-2").
  static void ClearFaults(const std::string& team) {
    auto cleared = testing::HttpRequest(stack_->sim().port(), "DELETE",
                                        StrCat("/_sim/faults?team=", team), "");
    EXPECT_TRUE(cleared.ok() && cleared->status == 200)
        << (cleared.ok() ? cleared->body : cleared.status().ToString());
  }

  // A campaign of `text` sent now to the fans `segment` selects on `account`; an empty name when
  // refused.
  static v1::Campaign SendToSegment(const std::string& tenant, const std::string& key,
                                    const std::string& account, const v1::Segment& segment,
                                    const std::string& text = "Come back") {
    v1::CreateCampaignRequest req;
    req.set_parent(StrCat("tenants/", tenant));
    req.mutable_campaign()->mutable_content()->set_text(text);
    v1::AccountTarget* target = req.mutable_campaign()->add_targets();
    target->set_account(account);
    target->set_segment(segment.name());
    v1::Campaign created;
    const grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                               ->CreateCampaign(BearerContext(key).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return created;
  }

  // Herald's upstream calls to `endpoint` with `outcome` so far (its metric).
  static double UpstreamRequests(std::string_view endpoint, std::string_view outcome) {
    auto metrics = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
    if (!metrics.ok()) return 0;
    return testing::SeriesValue(metrics->body, StrCat("herald_upstream_requests_total{endpoint=\"",
                                                      endpoint, "\",outcome=\"", outcome, "\"}"))
        .value_or(0);
  }

  // A segment campaign whose list step asked for its list while Herald stopped: the list is made
  // upstream under the campaign's name, and the step is put off with its outcome unknown and no
  // attempt spent (what a run whose answer was lost, or whose record of the list Redis refused,
  // leaves). Herald stays stopped; the simulator's faults are cleared.
  struct UnrecordedList {
    v1::Campaign campaign;
    std::string account;        // its resource name
    std::string short_account;  // as the simulator names it
    std::string name;
    std::string id;
    std::set<int64_t> fans;  // the segment's: the account's lapsed fans
  };
  static void LeaveListUnrecorded(const std::string& tenant, const std::string& key,
                                  UnrecordedList& out) {
    const std::vector<std::string> accounts = ImportAccounts(tenant, key, 2);
    ASSERT_FALSE(accounts.empty());
    out.account = accounts[0];
    out.short_account = ShortId(accounts[0]);
    out.fans = UpstreamListMembers(stack_->sim().port(), 2, out.short_account, "expired");
    ASSERT_FALSE(out.fans.empty());
    const v1::Segment segment = NewSegment(tenant, key, Lapsed());
    ASSERT_FALSE(segment.name().empty());
    // The upstream throttles every list creation: the delivery waits at its list step.
    ASSERT_NO_FATAL_FAILURE(
        AddFault(R"({"team":"team-2","methods":["POST"],"path_contains":"/user-lists",)"
                 R"("error_rate":1,"error_status":429,"retry_after_s":1})"));
    absl::Cleanup clear_faults = [] { ClearFaults("team-2"); };
    out.campaign = SendToSegment(tenant, key, out.account, segment);
    ASSERT_FALSE(out.campaign.name().empty());
    ASSERT_TRUE(
        testing::WaitFor([&] { return UpstreamRequests("create_user_list", "rate_limited") > 0; },
                         absl::Seconds(30)))
        << "the list step never asked for its list";

    // Herald stops; its drain returns the step to the queue. What the step's earlier run would
    // have left then goes in place: the list, made upstream under the campaign's name...
    stack_->herald().process().Signal(SIGTERM);
    ASSERT_TRUE(stack_->herald().process().Wait(absl::Seconds(30)).has_value());
    std::move(clear_faults).Invoke();
    const std::string id = ShortId(out.campaign.name());
    out.name = StrCat("Herald Lapsed fans ", id.substr(id.size() - 6));
    auto made = testing::HttpRequest(
        stack_->sim().port(), "POST", StrCat("/api/", out.short_account, "/user-lists"),
        StrCat(R"({"name":")", out.name, R"("})"),
        {{"Authorization", "Bearer sim-key-2"}, {"Content-Type", "application/json"}});
    ASSERT_TRUE(made.ok() && made->status / 100 == 2)
        << (made.ok() ? made->body : made.status().ToString());
    const json::value made_body = json::parse(made->body);
    const json::value& made_id = made_body.at("data").at("id");
    out.id = made_id.is_string() ? std::string(made_id.as_string())
                                 : StrCat(made_id.to_number<int64_t>());
    // ... and the step, put off with its outcome unknown, no attempt spent.
    absl::Status put_off;
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          put_off = testing::PutOffWithOutcomeUnknown(
              stack_->redis().port(), StrCat(tenant, "/main"), "delivery_segment_list");
          return put_off.ok();
        },
        absl::Seconds(30)))
        << put_off << "\n"
        << stack_->herald().AllLogs();
  }

  // The campaign of `list` completes, and its account has that one list, filled with the
  // segment's fans: no second list was made.
  static void ExpectCompletedThroughTheListMade(const std::string& key,
                                                const UnrecordedList& list) {
    const v1::Campaign done = Watch(key, list.campaign.name());
    EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();
    const std::vector<std::string> lists = ListsNamed(key, list.account, list.name);
    ASSERT_EQ(lists.size(), 1u) << "a second list was made";
    EXPECT_EQ(lists[0], list.id);
    EXPECT_EQ(UpstreamListMembers(stack_->sim().port(), 2, list.short_account, list.id), list.fans);
  }

  // Restarts Herald with team-2's reads of user lists throttled, and waits until a list step
  // has been refused one: it has not found its list, and waits a second before it tries again.
  static void RestartWithListLookupsThrottled() {
    ASSERT_NO_FATAL_FAILURE(
        AddFault(R"({"team":"team-2","methods":["GET"],"path_contains":"/user-lists",)"
                 R"("error_rate":1,"error_status":429,"retry_after_s":1})"));
    ASSERT_TRUE(stack_->herald().Restart().ok()) << stack_->herald().AllLogs();
    ASSERT_TRUE(testing::WaitFor(
        [&] { return UpstreamRequests("list_user_lists", "rate_limited") > 0; }, absl::Seconds(30)))
        << "the list step never looked for its list";
  }

  // Sets the team the queue holds `account` (of team "main" of `tenant`) under, as a change of
  // team that bypassed Herald would; returns the team it held. A job of the account is refused
  // while they differ.
  static std::string SetQueueTeam(testing::RedisKind kind, const std::string& tenant,
                                  const std::string& account, const std::string& team) {
    const int shard = queue::ShardOf(StrCat(tenant, "/main"), 16);
    const std::string registration = StrCat("{hd:s", shard, "}:a:", tenant, "/", ShortId(account));
    auto redis = RedisFor(kind, registration);
    EXPECT_TRUE(redis.ok()) << redis.status();
    if (!redis.ok()) return "";
    auto held = (*redis)->Command({"HGET", registration, "tm"});
    EXPECT_TRUE(held.ok() && held->type == testing::SyncReply::Type::kString)
        << (held.ok() ? held->DebugString() : held.status().ToString());
    auto set = (*redis)->Command({"HSET", registration, "tm", team});
    EXPECT_TRUE(set.ok() && !set->is_error());
    return held.ok() ? held->str : "";
  }

  // A request made while the queue refuses its account's jobs (SetQueueTeam): it stored its
  // change, then could not enqueue them. A fatal failure when it did not fail so: wrap the call in
  // ASSERT_NO_FATAL_FAILURE.
  static void ExpectStoppedBeforeItsJobs(const grpc::Status& s) {
    ASSERT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("registered with another team"));
  }

  // Lets the queue take `account`'s jobs under `team` again: the dispatch sweep alone, with no
  // retry of the request, sends campaign `name` to it, once (one message more than `before`).
  void ExpectSentByTheSweep(const std::string& key, const std::string& tenant,
                            const std::string& account, const std::string& team,
                            const std::string& name, const std::map<std::string, int>& before) {
    SetQueueTeam(GetParam(), tenant, account, team);
    const v1::Campaign done = Watch(key, name);
    EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();
    ExpectOneMoreMessageEach(before, {account});
  }

  // The campaign's deliveries.
  static std::vector<v1::Delivery> DeliveriesOf(const std::string& key, const std::string& name) {
    v1::ListDeliveriesRequest req;
    req.set_parent(name);
    v1::ListDeliveriesResponse resp;
    grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                         ->ListDeliveries(BearerContext(key).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.deliveries().begin(), resp.deliveries().end()};
  }

  // Waits until every delivery of the campaign is in `state`; false after `timeout`.
  static bool WaitForDeliveries(const std::string& key, const std::string& name,
                                v1::Delivery::State state,
                                absl::Duration timeout = absl::Seconds(20)) {
    return testing::WaitFor(
        [&] {
          const std::vector<v1::Delivery> all = DeliveriesOf(key, name);
          return !all.empty() && std::all_of(all.begin(), all.end(), [&](const v1::Delivery& d) {
            return d.state() == state;
          });
        },
        timeout);
  }

  // The simulator's record of mass message `id` of `account_id` (with its recipient_ids); null
  // when it has none.
  static json::value LedgerMessage(const std::string& account_id, int64_t id) {
    auto ledger = testing::ReadLedger(stack_->sim().port(),
                                      StrCat("all=true&recipients=true&account=", account_id));
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    if (!ledger.ok()) return nullptr;
    for (const auto& a : ledger->at("accounts").as_array()) {
      for (const auto& m : a.at("mass_messages").as_array()) {
        if (m.at("id").to_number<int64_t>() == id) return m;
      }
    }
    return nullptr;
  }

  // A PpvCampaign sent at `send_time`, handed to the upstream `lead` ahead of it.
  static v1::CreateCampaignRequest HeldCampaign(const std::string& tenant,
                                                const std::vector<std::string>& accounts,
                                                const std::string& media, std::string text,
                                                absl::Time send_time, absl::Duration lead) {
    v1::CreateCampaignRequest req = PpvCampaign(tenant, accounts, media, std::move(text));
    req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(send_time));
    req.mutable_campaign()->mutable_upstream_lead()->set_seconds(absl::ToInt64Seconds(lead));
    return req;
  }

  // Creates `req` and waits until the upstream holds each of its messages; the campaign, or
  // one without a name when that did not happen.
  static v1::Campaign CreateHeld(const std::string& key, const v1::CreateCampaignRequest& req) {
    v1::Campaign created;
    grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                         ->CreateCampaign(BearerContext(key).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) return {};
    const bool held = WaitForDeliveries(key, created.name(), v1::Delivery::SCHEDULED_UPSTREAM);
    EXPECT_TRUE(held) << stack_->herald().Logs();
    return held ? created : v1::Campaign();
  }

  // Waits until the simulator's fault rules are used up: with a slow rule last, its call has
  // reached the simulator and waits there. False after 30 s.
  static bool SlowCallBegun() {
    return testing::WaitFor(
        [] {
          auto listed = testing::HttpGet(stack_->sim().port(), "/_sim/faults");
          return listed.ok() && listed->body == "[]";
        },
        absl::Seconds(30));
  }

  // Each of `accounts` has exactly one more upstream mass message than in `before`.
  static void ExpectOneMoreMessageEach(const std::map<std::string, int>& before,
                                       const std::vector<std::string>& accounts) {
    const auto after = LedgerMessages();
    for (const auto& account : accounts) {
      const std::string id = ShortId(account);
      const int was = before.contains(id) ? before.at(id) : 0;
      EXPECT_EQ(after.contains(id) ? after.at(id) : 0, was + 1) << id;
    }
  }
};

TEST_P(CampaignTest, PpvCampaignAcrossTwentyAccountsSendsOncePerAccount) {
  const std::string key = NewTenant("acme");
  const std::vector<std::string> accounts = ImportAccounts("acme", key, 1);
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
  const std::string media = NewMedia("acme", key);
  const auto before = LedgerMessages();

  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = PpvCampaign("acme", accounts, media, "New video, just for you");
  req.set_request_id("create-1");
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message() << stack_->herald().Logs();
  EXPECT_EQ(created.delivery_counts().total(), kAccounts);
  EXPECT_EQ(created.delivery_counts().pending(), kAccounts);
  EXPECT_TRUE(created.state_reason().empty()) << created.state_reason();

  // A retried create returns the same campaign and creates nothing more.
  v1::Campaign replayed;
  s = campaigns->CreateCampaign(BearerContext(key).get(), req, &replayed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(replayed.name(), created.name());
  EXPECT_EQ(replayed.create_time().seconds(), created.create_time().seconds());
  EXPECT_EQ(replayed.delivery_counts().total(), kAccounts);

  // The same request_id on a different request is refused, and creates nothing.
  v1::CreateCampaignRequest other = req;
  other.mutable_campaign()->mutable_content()->set_text("Another video");
  v1::Campaign refused;
  s = campaigns->CreateCampaign(BearerContext(key).get(), other, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("request_id: 'create-1'"));
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr(ShortId(created.name())));
  v1::ListCampaignsRequest list;
  list.set_parent("tenants/acme");
  v1::ListCampaignsResponse listed;
  ASSERT_TRUE(campaigns->ListCampaigns(BearerContext(key).get(), list, &listed).ok());
  EXPECT_EQ(listed.campaigns_size(), 1);

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << done.state_reason() << stack_->herald().Logs();
  EXPECT_EQ(done.delivery_counts().completed(), kAccounts);
  EXPECT_GT(done.delivery_counts().recipients(), 0);
  EXPECT_EQ(done.delivery_counts().recipients_pending(), 0);

  ExpectOneMoreMessageEach(before, accounts);

  v1::ListDeliveriesRequest lreq;
  lreq.set_parent(created.name());
  v1::ListDeliveriesResponse deliveries;
  s = campaigns->ListDeliveries(BearerContext(key).get(), lreq, &deliveries);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(deliveries.deliveries_size(), kAccounts);
  for (const auto& d : deliveries.deliveries()) {
    EXPECT_EQ(d.state(), v1::Delivery::COMPLETED) << d.account() << ": " << d.error();
    EXPECT_NE(d.upstream_message_id(), 0);
    EXPECT_EQ(d.send_attempts(), 1);
  }

  // Each delivery by its name, as listed; a name of no delivery is NOT_FOUND.
  for (const auto& listed_delivery : deliveries.deliveries()) {
    v1::GetDeliveryRequest get;
    get.set_name(listed_delivery.name());
    v1::Delivery got;
    s = campaigns->GetDelivery(BearerContext(key).get(), get, &got);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(got.name(), listed_delivery.name());
    EXPECT_EQ(got.account(), listed_delivery.account());
    EXPECT_EQ(got.state(), v1::Delivery::COMPLETED);
    EXPECT_EQ(got.upstream_message_id(), listed_delivery.upstream_message_id());
    EXPECT_EQ(got.send_attempts(), 1);
  }
  for (const std::string& missing :
       {StrCat(created.name(), "/deliveries/acct_notatarget"),
        StrCat("tenants/acme/campaigns/nosuchcampaign/deliveries/", ShortId(accounts[0]))}) {
    v1::GetDeliveryRequest get;
    get.set_name(missing);
    v1::Delivery got;
    s = campaigns->GetDelivery(BearerContext(key).get(), get, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << missing << ": " << s.error_message();
  }
  v1::GetDeliveryRequest malformed;
  malformed.set_name(StrCat(created.name(), "/deliveries"));
  v1::Delivery got;
  s = campaigns->GetDelivery(BearerContext(key).get(), malformed, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

TEST_P(CampaignTest, LostSendResponsesAreReconciledNotResent) {
  const std::string key = NewTenant("lossy");
  const std::vector<std::string> accounts = ImportAccounts("lossy", key, 2);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("lossy", key);
  const auto before = LedgerMessages();
  // The upstream applies the next sends but their responses never arrive.
  auto fault = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/faults",
      R"({"team":"team-2","methods":["POST"],"path_contains":"/mass-messaging",)"
      R"("commit_then_lose_rate":1,"count":5})");
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");

  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(
      BearerContext(key).get(), PpvCampaign("lossy", accounts, media, "Lost and found"), &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << done.state_reason() << stack_->herald().Logs();

  ExpectOneMoreMessageEach(before, accounts);
}

// An upload job queued before upload payloads named their media asset (an upgrade finds such
// jobs in the queue) still uploads and sends: it reads the asset on its own.
TEST_P(CampaignTest, UploadJobQueuedWithoutItsMediaIdStillSends) {
  const std::string key = NewTenant("legacy");
  const std::vector<std::string> all = ImportAccounts("legacy", key, 2);
  ASSERT_FALSE(all.empty());
  const std::vector<std::string> accounts = {all[0]};
  const std::string media = NewMedia("legacy", key);
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = PpvCampaign("legacy", accounts, media, "Queued before");
  // Due in a few seconds: its first job waits in the queue meanwhile.
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 4);
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // The job's record ends with its payload: take the media field out of it, in whichever of
  // the queue's shards holds it, and only while the job still waits in the shard's delayed set
  // (one atomic step), so that the attempt that runs is the rewritten one.
  static const std::string kRewriteIfDelayed = R"lua(
    if not redis.call('ZSCORE', KEYS[1] .. ':dl', ARGV[1]) then return 0 end
    redis.call('HSET', KEYS[1] .. ':jd', ARGV[1], ARGV[2])
    return 1)lua";
  const std::string campaign_id = ShortId(created.name());
  const std::string field = StrCat(",\"media\":\"", ShortId(media), "\"");
  int rewritten = 0;
  for (int shard = 0; shard < 16; ++shard) {
    const std::string prefix = StrCat("{hd:s", shard, "}");
    const std::string jobs = StrCat(prefix, ":jd");
    auto redis = RedisFor(GetParam(), jobs);
    ASSERT_TRUE(redis.ok()) << redis.status();
    auto records = (*redis)->Command({"HGETALL", jobs});
    ASSERT_TRUE(records.ok() && !records->is_error()) << records.status();
    for (size_t i = 0; i + 1 < records->elements.size(); i += 2) {
      const std::string& id = records->elements[i].str;
      std::string record = records->elements[i + 1].str;
      if (!absl::StrContains(id, campaign_id) || !absl::StrContains(id, "delivery_upload_media")) {
        continue;
      }
      const size_t at = record.find(field);
      ASSERT_NE(at, std::string::npos) << record;
      record.erase(at, field.size());
      auto set = (*redis)->Eval(kRewriteIfDelayed, {prefix}, {id, record});
      ASSERT_TRUE(set.ok() && !set->is_error()) << (set.ok() ? set->str : set.status().ToString());
      rewritten += static_cast<int>(set->integer);
    }
  }
  ASSERT_EQ(rewritten, 1) << "the upload job was not found waiting in the queue";

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << done.state_reason() << stack_->herald().Logs();
  ExpectOneMoreMessageEach(before, accounts);
}

TEST_P(CampaignTest, AScheduleWhoseJobsWereLostIsEnqueuedAgainByTheUpdateRetried) {
  const std::string key = NewTenant("lost");
  const std::vector<std::string> all = ImportAccounts("lost", key, 1);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  const std::string media = NewMedia("lost", key);
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = PpvCampaign("lost", accounts, media, "Lost and found");
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 4);
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // An update that stored its new schedule and then stopped before enqueueing leaves the
  // campaign's jobs missing: take them out of the queue while they wait.
  static const std::string kDropIfDelayed = R"lua(
    if not redis.call('ZSCORE', KEYS[1] .. ':dl', ARGV[1]) then return 0 end
    redis.call('ZREM', KEYS[1] .. ':dl', ARGV[1])
    redis.call('HDEL', KEYS[1] .. ':jd', ARGV[1])
    return 1)lua";
  const std::string campaign_id = ShortId(created.name());
  int dropped = 0;
  for (int shard = 0; shard < 16; ++shard) {
    const std::string prefix = StrCat("{hd:s", shard, "}");
    const std::string jobs = StrCat(prefix, ":jd");
    auto redis = RedisFor(GetParam(), jobs);
    ASSERT_TRUE(redis.ok()) << redis.status();
    auto ids = (*redis)->Command({"HKEYS", jobs});
    ASSERT_TRUE(ids.ok() && !ids->is_error()) << ids.status();
    for (const auto& id : ids->elements) {
      if (!absl::StrContains(id.str, campaign_id)) continue;
      auto drop = (*redis)->Eval(kDropIfDelayed, {prefix}, {id.str});
      ASSERT_TRUE(drop.ok() && !drop->is_error());
      dropped += static_cast<int>(drop->integer);
    }
  }
  ASSERT_EQ(dropped, 2) << "the campaign's jobs were not found waiting in the queue";

  // The client retries the update: nothing is left to change, and the jobs come back.
  v1::UpdateCampaignRequest update;
  update.mutable_campaign()->set_name(created.name());
  update.mutable_campaign()->set_display_name("weekend ppv");
  update.mutable_update_mask()->add_paths("display_name");
  v1::Campaign updated;
  s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();
  ExpectOneMoreMessageEach(before, accounts);
}

// A retried create gets the first answer even once the request no longer passes the check of
// its send time, which has passed since the first attempt; nothing is sent twice.
TEST_P(CampaignTest, ARetriedCreateWhoseSendTimeHasPassedGetsTheFirstAnswer) {
  const std::string tenant = "late-retry";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  const auto before = LedgerMessages();
  const std::string media = NewMedia(tenant, key);
  v1::CreateCampaignRequest req = PpvCampaign(tenant, {accounts[0]}, media, "Sent once");
  req.set_request_id("create-late");
  // A moment ago: still taken (the API allows a few seconds of clock skew), and sent now.
  const absl::Time send_time = absl::Now() - absl::Seconds(4);
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(send_time));
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign first;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Watch(key, first.name()).state(), v1::Campaign::COMPLETED);
  // Until the send time is past what a new create may name.
  ASSERT_TRUE(testing::WaitFor([&] { return absl::Now() > send_time + absl::Seconds(6); },
                               absl::Seconds(10)));
  v1::CreateCampaignRequest fresh = req;
  fresh.set_request_id("create-late-new");
  v1::Campaign refused;
  EXPECT_EQ(campaigns->CreateCampaign(BearerContext(key).get(), fresh, &refused).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT)
      << "a new request with this send time is refused";

  v1::Campaign again;
  s = campaigns->CreateCampaign(BearerContext(key).get(), req, &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.name(), first.name());
  EXPECT_EQ(again.state(), v1::Campaign::COMPLETED);

  // The finished campaign's media may go; a retry still gets the campaign.
  v1::DeleteMediaAssetRequest remove;
  remove.set_name(media);
  v1::DeleteMediaAssetResponse removed;
  s = v1::MediaService::NewStub(stack_->channel())
          ->DeleteMediaAsset(BearerContext(key).get(), remove, &removed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = campaigns->CreateCampaign(BearerContext(key).get(), req, &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.name(), first.name());
  ExpectOneMoreMessageEach(before, {accounts[0]});
}

// Two launches (or resumes) of one campaign at once: both answer with the launched campaign,
// as a retry of either would, whichever wrote first.
TEST_P(CampaignTest, ConcurrentLaunchesAndResumesBothSucceed) {
  const std::string key = NewTenant("twice");
  const std::vector<std::string> accounts = ImportAccounts("twice", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("twice", key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  // Both calls of `call` at once, released together.
  auto both = [](const std::function<grpc::Status()>& call) {
    std::promise<void> go;
    std::shared_future<void> started = go.get_future().share();
    auto first = std::async(std::launch::async, [&] {
      started.wait();
      return call();
    });
    auto second = std::async(std::launch::async, [&] {
      started.wait();
      return call();
    });
    go.set_value();
    return std::make_pair(first.get(), second.get());
  };
  for (int round = 0; round < 10; ++round) {
    v1::CreateCampaignRequest req = PpvCampaign("twice", accounts, media, StrCat("Round ", round));
    req.mutable_campaign()->set_save_as_draft(true);
    req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) +
                                                             3600);
    v1::Campaign draft;
    ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &draft).ok());
    v1::LaunchCampaignRequest launch;
    launch.set_name(draft.name());
    const auto [a, b] = both([&] {
      v1::Campaign out;
      return campaigns->LaunchCampaign(BearerContext(key).get(), launch, &out);
    });
    ASSERT_TRUE(a.ok()) << round << ": " << a.error_message();
    ASSERT_TRUE(b.ok()) << round << ": " << b.error_message();
    ASSERT_TRUE(Pause(key, draft.name()).ok());
    const auto [c, d] = both([&] {
      absl::StatusOr<v1::Campaign> resumed = Resume(key, draft.name());
      return resumed.ok()
                 ? grpc::Status::OK
                 : grpc::Status(grpc::StatusCode::UNKNOWN, std::string(resumed.status().message()));
    });
    ASSERT_TRUE(c.ok()) << round << ": " << c.error_message();
    ASSERT_TRUE(d.ok()) << round << ": " << d.error_message();
    EXPECT_EQ(GetCampaign(key, draft.name()).state(), v1::Campaign::SCHEDULED);
  }
}

TEST_P(CampaignTest, LaunchAndResumeAreSafeToRetry) {
  const std::string key = NewTenant("retry");
  const std::vector<std::string> all = ImportAccounts("retry", key, 1);
  ASSERT_GE(all.size(), 2u);
  const std::string media = NewMedia("retry", key);
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest draft = PpvCampaign("retry", {all[0]}, media, "Launched twice");
  draft.mutable_campaign()->set_save_as_draft(true);
  v1::Campaign launched_draft;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), draft, &launched_draft).ok());
  v1::LaunchCampaignRequest launch;
  launch.set_name(launched_draft.name());
  for (int i = 0; i < 2; ++i) {  // the second is a retry whose first answer was lost
    v1::Campaign launched;
    grpc::Status s = campaigns->LaunchCampaign(BearerContext(key).get(), launch, &launched);
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
    EXPECT_NE(launched.state(), v1::Campaign::DRAFT);
  }

  v1::CreateCampaignRequest later = PpvCampaign("retry", {all[1]}, media, "Resumed twice");
  later.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) +
                                                             3600);
  v1::Campaign held;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), later, &held).ok());
  ASSERT_TRUE(Pause(key, held.name()).ok());
  for (int i = 0; i < 2; ++i) {
    auto resumed = Resume(key, held.name());
    ASSERT_TRUE(resumed.ok()) << i << ": " << resumed.status();
    EXPECT_EQ(resumed->state(), v1::Campaign::SCHEDULED);
  }

  EXPECT_EQ(Watch(key, launched_draft.name()).state(), v1::Campaign::COMPLETED);
  ExpectOneMoreMessageEach(before, {all[0]});
}

TEST_P(CampaignTest, ScheduledCampaignCancelledBeforeDispatchSendsNothing) {
  const std::string key = NewTenant("sched");
  auto accounts_stub = v1::AccountService::NewStub(stack_->channel());
  const std::vector<std::string> accounts = ImportAccounts("sched", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("sched", key);
  const auto before = LedgerMessages();

  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = PpvCampaign("sched", accounts, media, "Later");
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(created.state(), v1::Campaign::SCHEDULED);

  // Still changeable: the text, by update mask.
  v1::UpdateCampaignRequest ureq;
  ureq.mutable_campaign()->set_name(created.name());
  ureq.mutable_campaign()->mutable_content()->set_text("Later, updated");
  ureq.mutable_update_mask()->add_paths("content.text");
  v1::Campaign updated;
  s = campaigns->UpdateCampaign(BearerContext(key).get(), ureq, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.content().text(), "Later, updated");
  EXPECT_EQ(updated.content().price_cents(), 1500);

  v1::CancelCampaignRequest creq;
  creq.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  s = campaigns->CancelCampaign(BearerContext(key).get(), creq, &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cancelled.campaign().state(), v1::Campaign::CANCELLED);
  EXPECT_EQ(cancelled.not_undone_size(), 0);
  EXPECT_EQ(cancelled.campaign().delivery_counts().cancelled(), static_cast<int>(accounts.size()));

  // A final campaign cannot change any more.
  s = campaigns->UpdateCampaign(BearerContext(key).get(), ureq, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  s = campaigns->CancelCampaign(BearerContext(key).get(), creq, &cancelled);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(LedgerMessages(), before);
}

// Two clients updating different fields of one campaign at the same moment: each update lands,
// or is told ABORTED and lands when retried. Neither undoes the other.
TEST_P(CampaignTest, ConcurrentUpdatesOfDifferentFieldsBothLand) {
  const std::string key = NewTenant("raced");
  const std::vector<std::string> accounts = ImportAccounts("raced", key, 1);
  ASSERT_FALSE(accounts.empty());
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = PpvCampaign("raced", accounts, NewMedia("raced", key), "Draft");
  req.mutable_campaign()->set_save_as_draft(true);
  v1::Campaign draft;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &draft);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // Updates `path` to `value`, again for as long as it is ABORTED; the last status.
  auto update = [&](const char* path, const std::string& value) {
    v1::UpdateCampaignRequest u;
    u.mutable_campaign()->set_name(draft.name());
    u.mutable_campaign()->set_display_name(value);
    u.mutable_campaign()->mutable_content()->set_text(value);
    u.mutable_update_mask()->add_paths(path);
    grpc::Status status;
    for (int attempt = 0; attempt < 100; ++attempt) {
      v1::Campaign out;
      status = campaigns->UpdateCampaign(BearerContext(key).get(), u, &out);
      if (status.error_code() != grpc::StatusCode::ABORTED) break;
    }
    return status;
  };
  for (int round = 0; round < 30; ++round) {
    const std::string name = StrCat("name ", round);
    const std::string text = StrCat("text ", round);
    std::promise<void> go;
    std::shared_future<void> started = go.get_future().share();
    auto named = std::async(std::launch::async, [&] {
      started.wait();
      return update("display_name", name);
    });
    auto texted = std::async(std::launch::async, [&] {
      started.wait();
      return update("content.text", text);
    });
    go.set_value();
    const grpc::Status named_status = named.get();
    const grpc::Status texted_status = texted.get();
    ASSERT_TRUE(named_status.ok()) << named_status.error_message();
    ASSERT_TRUE(texted_status.ok()) << texted_status.error_message();
    const v1::Campaign now = GetCampaign(key, draft.name());
    ASSERT_EQ(now.display_name(), name) << "round " << round;
    ASSERT_EQ(now.content().text(), text) << "round " << round;
  }
}

// A read-modify-write carrying the revision it read (an etag) lands only if nothing changed
// since: a stale revision is ABORTED and changes nothing, as a negative one is INVALID_ARGUMENT.
TEST_P(CampaignTest, AnUpdateGivenARevisionAppliesOnlyAtThatRevision) {
  const std::string key = NewTenant("etag");
  const std::vector<std::string> accounts = ImportAccounts("etag", key, 1);
  ASSERT_FALSE(accounts.empty());
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  const v1::Campaign draft = NewDraft("etag", key, accounts, NewMedia("etag", key), "First");
  ASSERT_FALSE(draft.name().empty());
  ASSERT_GT(draft.revision(), 0);

  // Two clients read the draft; the first writes back what it changed.
  v1::Campaign mine = GetCampaign(key, draft.name());
  v1::Campaign theirs = mine;
  mine.mutable_content()->set_text("Second");
  v1::UpdateCampaignRequest update;
  *update.mutable_campaign() = mine;
  update.mutable_update_mask()->add_paths("content.text");
  v1::Campaign updated;
  grpc::Status s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(updated.revision(), mine.revision());

  // The second's read is stale.
  theirs.set_display_name("Renamed");
  *update.mutable_campaign() = theirs;
  update.mutable_update_mask()->Clear();
  update.mutable_update_mask()->add_paths("display_name");
  s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("campaign.revision"));
  update.mutable_campaign()->set_revision(-1);
  s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  v1::Campaign now = GetCampaign(key, draft.name());
  EXPECT_EQ(now.display_name(), draft.display_name());
  EXPECT_EQ(now.content().text(), "Second");

  // Read again, it lands; without a revision, an update applies at any.
  update.mutable_campaign()->set_revision(now.revision());
  s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.display_name(), "Renamed");
  update.mutable_campaign()->clear_revision();
  update.mutable_campaign()->set_display_name("Renamed again");
  s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(GetCampaign(key, draft.name()).display_name(), "Renamed again");
}

// Media added to a scheduled campaign that had none: its chains, enqueued for the send time,
// start again with the uploads, and the message goes out with the media.
TEST_P(CampaignTest, MediaAddedToAScheduledCampaignGoesOutWithIt) {
  const std::string key = NewTenant("addmedia");
  const std::vector<std::string> accounts = ImportAccounts("addmedia", key, 2);
  ASSERT_GE(accounts.size(), 2u);
  const std::vector<std::string> two(accounts.begin(), accounts.begin() + 2);
  const std::string media = NewMedia("addmedia", key);
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = PpvCampaign("addmedia", two, media, "Free at first");
  req.mutable_campaign()->mutable_content()->clear_media();
  req.mutable_campaign()->mutable_content()->set_price_cents(0);
  req.mutable_campaign()->mutable_send_time()->set_seconds(
      absl::ToUnixSeconds(absl::Now() + absl::Seconds(3)));
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(created.state(), v1::Campaign::SCHEDULED);

  v1::UpdateCampaignRequest update;
  update.mutable_campaign()->set_name(created.name());
  update.mutable_campaign()->mutable_content()->add_media(media);
  update.mutable_campaign()->mutable_content()->set_price_cents(1500);
  update.mutable_update_mask()->add_paths("content.media");
  update.mutable_update_mask()->add_paths("content.price_cents");
  v1::Campaign updated;
  s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(updated.state(), v1::Campaign::SCHEDULED);

  const v1::Campaign done = Watch(key, created.name());
  ASSERT_EQ(done.state(), v1::Campaign::COMPLETED)
      << done.state_reason() << stack_->herald().Logs();
  ExpectOneMoreMessageEach(before, two);
  for (const v1::Delivery& d : DeliveriesOf(key, created.name())) {
    const json::value m = LedgerMessage(ShortId(d.account()), d.upstream_message_id());
    ASSERT_TRUE(m.is_object()) << d.account();
    EXPECT_EQ(m.at("price").as_string(), "15.00") << d.account();
    EXPECT_EQ(m.at("media").as_array().size(), 1u) << d.account();
  }
}

// A scheduled campaign whose send time has come is being sent, even while no job has run yet
// (here its team is paused): it is no longer changeable.
TEST_P(CampaignTest, AScheduledCampaignCannotBeUpdatedOnceItsSendTimeHasCome) {
  const std::string key = NewTenant("due");
  const std::vector<std::string> all = ImportAccounts("due", key, 1);
  ASSERT_FALSE(all.empty());
  const std::vector<std::string> accounts = {all[0]};
  v1::PauseTeamRequest pause;
  pause.set_name("tenants/due/teams/main");
  v1::Team team;
  grpc::Status s = v1::AccountService::NewStub(stack_->channel())
                       ->PauseTeam(BearerContext(key).get(), pause, &team);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = PpvCampaign("due", accounts, NewMedia("due", key), "Soon");
  const absl::Time send_time = absl::Now() + absl::Seconds(2);
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(send_time));
  v1::Campaign created;
  s = campaigns->CreateCampaign(BearerContext(key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();

  v1::UpdateCampaignRequest update;
  update.mutable_campaign()->set_name(created.name());
  update.mutable_campaign()->mutable_content()->set_text("Too late");
  update.mutable_update_mask()->add_paths("content.text");
  ASSERT_TRUE(testing::WaitFor([&] { return absl::Now() > send_time; }));
  ASSERT_EQ(GetCampaign(key, created.name()).state(), v1::Campaign::SCHEDULED);
  v1::Campaign unused;
  s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &unused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("send time has come"));
  EXPECT_EQ(GetCampaign(key, created.name()).content().text(), "Soon");
}

// A masked message field is replaced whole: `content` takes exactly the content sent (nothing
// of the old one is kept or appended), and a masked field left unset is cleared.
TEST_P(CampaignTest, AnUpdateReplacesEachMaskedFieldWhole) {
  const std::string tenant = "replace";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia(tenant, key);
  v1::CreateCampaignRequest req = PpvCampaign(tenant, {accounts[0]}, media, "Before");
  req.mutable_campaign()->set_save_as_draft(true);
  req.mutable_campaign()->mutable_content()->set_locked_text(true);
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) +
                                                           86400);
  req.mutable_campaign()->mutable_send_time()->set_nanos(500'000'000);
  req.mutable_campaign()->mutable_grace_period()->set_seconds(3600);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign draft;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &draft).ok());
  ASSERT_EQ(draft.content().media_size(), 1);

  auto update = [&](const v1::Campaign& fields, std::vector<std::string> paths) {
    v1::UpdateCampaignRequest u;
    *u.mutable_campaign() = fields;
    u.mutable_campaign()->set_name(draft.name());
    for (auto& p : paths) u.mutable_update_mask()->add_paths(std::move(p));
    v1::Campaign out;
    grpc::Status s = campaigns->UpdateCampaign(BearerContext(key).get(), u, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  };
  // The same media again: one media asset, not two; locked_text, left unset, is cleared.
  v1::Campaign fields;
  fields.mutable_content()->set_text("After");
  fields.mutable_content()->set_price_cents(1500);
  fields.mutable_content()->add_media(media);
  v1::Campaign updated = update(fields, {"content"});
  EXPECT_EQ(updated.content().text(), "After");
  EXPECT_THAT(updated.content().media(), ::testing::ElementsAre(media));
  EXPECT_FALSE(updated.content().locked_text());
  // A free text message: the price and the media go.
  fields.clear_content();
  fields.mutable_content()->set_text("Free now");
  updated = update(fields, {"content"});
  EXPECT_EQ(updated.content().text(), "Free now");
  EXPECT_EQ(updated.content().price_cents(), 0);
  EXPECT_EQ(updated.content().media_size(), 0);
  // A new send time keeps nothing of the old one; unset, the send time and grace period clear.
  fields.clear_content();
  const int64_t later = absl::ToUnixSeconds(absl::Now()) + 2 * 86400;
  fields.mutable_send_time()->set_seconds(later);
  updated = update(fields, {"send_time"});
  EXPECT_EQ(updated.send_time().seconds(), later);
  EXPECT_EQ(updated.send_time().nanos(), 0);
  fields.clear_send_time();
  updated = update(fields, {"send_time", "grace_period"});
  EXPECT_FALSE(updated.has_send_time());
  EXPECT_EQ(updated.grace_period().seconds(), 15 * 60) << "unset: the default grace period";
  EXPECT_EQ(updated.state(), v1::Campaign::DRAFT);
}

TEST_P(CampaignTest, DraftIsSentOnlyWhenLaunched) {
  const std::string key = NewTenant("drafts");
  const std::vector<std::string> accounts = ImportAccounts("drafts", key, 2);
  ASSERT_FALSE(accounts.empty());
  const std::vector<std::string> two(accounts.begin(), accounts.begin() + 2);
  const std::string media = NewMedia("drafts", key);
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = PpvCampaign("drafts", two, media, "Saved for later");
  req.mutable_campaign()->set_save_as_draft(true);
  v1::Campaign draft;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &draft);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(draft.state(), v1::Campaign::DRAFT);
  EXPECT_EQ(LedgerMessages(), before);

  v1::LaunchCampaignRequest lreq;
  lreq.set_name(draft.name());
  v1::Campaign launched;
  s = campaigns->LaunchCampaign(BearerContext(key).get(), lreq, &launched);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Watch(key, draft.name()).state(), v1::Campaign::COMPLETED);

  // Finished: nothing is left to launch or resume.
  s = campaigns->LaunchCampaign(BearerContext(key).get(), lreq, &launched);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("COMPLETED"));
  const absl::StatusOr<v1::Campaign> resumed = Resume(key, draft.name());
  EXPECT_TRUE(absl::IsFailedPrecondition(resumed.status())) << resumed.status();
  ExpectOneMoreMessageEach(before, two);
}

TEST_P(CampaignTest, AnAccountDeletedAndCreatedAgainInAnotherTeamSendsThroughIt) {
  const std::string tenant = "moves";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string moved = ShortId(accounts[0]);
  // The new team shares the first one's queue shard (herald's default 16), where the account
  // is registered with its first team.
  std::string team_id;
  for (int i = 0; team_id.empty(); ++i) {
    const std::string candidate = StrCat("second", i);
    if (queue::ShardOf(StrCat(tenant, "/", candidate), 16) ==
        queue::ShardOf(StrCat(tenant, "/main"), 16)) {
      team_id = candidate;
    }
  }
  auto teams = v1::AccountService::NewStub(stack_->channel());
  v1::CreateTeamRequest create_team;
  create_team.set_parent(StrCat("tenants/", tenant));
  create_team.set_team_id(team_id);
  create_team.mutable_team()->set_upstream_api_key("sim-key-1");
  create_team.mutable_team()->set_rate_limit_per_minute(100000);
  v1::Team team;
  grpc::Status s = teams->CreateTeam(BearerContext(key).get(), create_team, &team);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // Both teams hold the same upstream key: a sync of the new one says where its accounts are.
  v1::SyncAccountsRequest sync;
  sync.set_team(team.name());
  v1::SyncAccountsResponse synced;
  s = teams->SyncAccounts(BearerContext(key).get(), sync, &synced);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(synced.created_size(), 0);
  EXPECT_EQ(synced.unchanged(), 0);
  ASSERT_EQ(synced.in_other_teams_size(), static_cast<int>(accounts.size()));
  EXPECT_EQ(synced.in_other_teams(0).team(), StrCat("tenants/", tenant, "/teams/main"));

  v1::DeleteAccountRequest remove;
  remove.set_name(accounts[0]);
  v1::DeleteAccountResponse removed;
  s = teams->DeleteAccount(BearerContext(key).get(), remove, &removed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::CreateAccountRequest create;
  create.set_parent(StrCat("tenants/", tenant));
  create.set_account_id(moved);
  create.mutable_account()->set_team(team.name());
  v1::Account account;
  s = teams->CreateAccount(BearerContext(key).get(), create, &account);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(account.team(), team.name());
  s = teams->SyncAccounts(BearerContext(key).get(), sync, &synced);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(synced.created_size(), 0);
  EXPECT_EQ(synced.unchanged(), 1);
  EXPECT_EQ(synced.in_other_teams_size(), static_cast<int>(accounts.size()) - 1);

  const auto before = LedgerMessages();
  v1::CreateCampaignRequest req =
      PpvCampaign(tenant, {accounts[0]}, NewMedia(tenant, key), "From its new team");
  v1::Campaign campaign;
  s = v1::CampaignService::NewStub(stack_->channel())
          ->CreateCampaign(BearerContext(key).get(), req, &campaign);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Watch(key, campaign.name()).state(), v1::Campaign::COMPLETED);
  ExpectOneMoreMessageEach(before, {accounts[0]});
}

TEST_P(CampaignTest, ACampaignWhoseCreateStoppedBeforeItsJobsIsSentByTheDispatchSweep) {
  const std::string tenant = "swept";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  // With the account registered under another team in the queue, the create stores the
  // campaign and then fails to enqueue its jobs: a request that stopped between the two.
  const std::string team = SetQueueTeam(GetParam(), tenant, accounts[0], "elsewhere");
  ASSERT_FALSE(team.empty());
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(
      BearerContext(key).get(),
      PpvCampaign(tenant, {accounts[0]}, NewMedia(tenant, key), "Swept up"), &created);
  ASSERT_NO_FATAL_FAILURE(ExpectStoppedBeforeItsJobs(s));
  v1::ListCampaignsRequest list;
  list.set_parent(StrCat("tenants/", tenant));
  v1::ListCampaignsResponse stored;
  ASSERT_TRUE(campaigns->ListCampaigns(BearerContext(key).get(), list, &stored).ok());
  ASSERT_EQ(stored.campaigns_size(), 1);

  ExpectSentByTheSweep(key, tenant, accounts[0], team, stored.campaigns(0).name(), before);
  auto metrics = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(testing::SeriesValue(metrics->body,
                                   "herald_dispatch_sweep_campaigns_total{result=\"finished\"}"),
              ::testing::Optional(::testing::Ge(1)));
}

// A launch writes its outbox entry before the campaign, not in the same step as a create does:
// the sweep finishes a launch that stopped after its write too.
TEST_P(CampaignTest, ALaunchThatStoppedBeforeItsJobsIsSentByTheDispatchSweep) {
  const std::string tenant = "swept-launch";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  const v1::Campaign draft =
      NewDraft(tenant, key, {accounts[0]}, NewMedia(tenant, key), "Launched, then swept");
  ASSERT_EQ(draft.state(), v1::Campaign::DRAFT);
  const std::string team = SetQueueTeam(GetParam(), tenant, accounts[0], "elsewhere");
  ASSERT_FALSE(team.empty());
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::LaunchCampaignRequest launch;
  launch.set_name(draft.name());
  v1::Campaign launched;
  ASSERT_NO_FATAL_FAILURE(ExpectStoppedBeforeItsJobs(
      campaigns->LaunchCampaign(BearerContext(key).get(), launch, &launched)));
  const v1::Campaign stored = GetCampaign(key, draft.name());
  EXPECT_NE(stored.state(), v1::Campaign::DRAFT);  // the launch was written, its jobs were not

  ExpectSentByTheSweep(key, tenant, accounts[0], team, draft.name(), before);
}

// A launch that finds a reference gone after its write (a delete that raced it; here the record
// is removed behind Herald's back) is refused, and the dispatch sweep fails the deliveries saying
// why instead of trying again for good.
TEST_P(CampaignTest, ALaunchWhoseMediaWentIsFailedByTheSweepSayingWhy) {
  const std::string tenant = "gone-media";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia(tenant, key);
  const v1::Campaign draft = NewDraft(tenant, key, {accounts[0]}, media, "Its media went");
  ASSERT_EQ(draft.state(), v1::Campaign::DRAFT);
  const std::string table = StrCat("hd:{t:", tenant, "}:media");
  auto redis = RedisFor(GetParam(), table);
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto removed = (*redis)->Command({"HDEL", table, ShortId(media)});
  ASSERT_TRUE(removed.ok() && removed->integer == 1);
  const auto before = LedgerMessages();

  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::LaunchCampaignRequest launch;
  launch.set_name(draft.name());
  v1::Campaign launched;
  grpc::Status s = campaigns->LaunchCampaign(BearerContext(key).get(), launch, &launched);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("media[0]"));

  const v1::Campaign done = Watch(key, draft.name());
  EXPECT_EQ(done.state(), v1::Campaign::FAILED) << done.state_reason();
  const std::vector<v1::Delivery> deliveries = DeliveriesOf(key, draft.name());
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].state(), v1::Delivery::FAILED);
  EXPECT_THAT(deliveries[0].error(), ::testing::AllOf(::testing::HasSubstr("cannot be sent"),
                                                      ::testing::HasSubstr(ShortId(media))));
  EXPECT_EQ(LedgerMessages(), before) << "nothing was sent";
}

// A scheduled campaign moved to an earlier send time owes the new schedule's jobs: an update that
// stopped before enqueueing them is finished by the sweep, and the campaign goes out at the new
// time rather than the old one, a day later.
TEST_P(CampaignTest, AnUpdateThatStoppedBeforeItsJobsIsSentByTheDispatchSweep) {
  const std::string tenant = "swept-update";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req =
      PpvCampaign(tenant, {accounts[0]}, NewMedia(tenant, key), "Moved, then swept");
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) +
                                                           86400);
  v1::Campaign created;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &created).ok());
  const std::string team = SetQueueTeam(GetParam(), tenant, accounts[0], "elsewhere");
  ASSERT_FALSE(team.empty());
  const auto before = LedgerMessages();
  v1::UpdateCampaignRequest update;
  update.mutable_campaign()->set_name(created.name());
  update.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  update.mutable_update_mask()->add_paths("send_time");
  v1::Campaign moved;
  ASSERT_NO_FATAL_FAILURE(ExpectStoppedBeforeItsJobs(
      campaigns->UpdateCampaign(BearerContext(key).get(), update, &moved)));
  ExpectSentByTheSweep(key, tenant, accounts[0], team, created.name(), before);
}

// A resume writes its outbox entry before the campaign, as a launch does: a scheduled campaign
// whose resume stopped before enqueueing its jobs is sent by the sweep at its send time.
TEST_P(CampaignTest, AResumeThatStoppedBeforeItsJobsIsSentByTheDispatchSweep) {
  const std::string tenant = "swept-resume";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req =
      PpvCampaign(tenant, {accounts[0]}, NewMedia(tenant, key), "Paused, resumed, then swept");
  // Far enough ahead that the pause lands before the send time, near enough to wait for.
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 5);
  v1::Campaign created;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &created).ok());
  ASSERT_EQ(created.state(), v1::Campaign::SCHEDULED);
  absl::StatusOr<v1::Campaign> paused = Pause(key, created.name());
  ASSERT_TRUE(paused.ok()) << paused.status();
  ASSERT_EQ(paused->state(), v1::Campaign::PAUSED);
  const std::string team = SetQueueTeam(GetParam(), tenant, accounts[0], "elsewhere");
  ASSERT_FALSE(team.empty());
  const auto before = LedgerMessages();
  v1::ResumeCampaignRequest resume;
  resume.set_name(created.name());
  v1::Campaign resumed;
  ASSERT_NO_FATAL_FAILURE(ExpectStoppedBeforeItsJobs(
      campaigns->ResumeCampaign(BearerContext(key).get(), resume, &resumed)));
  const v1::Campaign stored = GetCampaign(key, created.name());
  EXPECT_NE(stored.state(), v1::Campaign::PAUSED);  // the resume was written, its jobs were not

  ExpectSentByTheSweep(key, tenant, accounts[0], team, created.name(), before);
}

// An account, a media asset or a segment that an unfinished campaign uses cannot be deleted, and
// the refusal changes nothing; once the campaign is final they can.
TEST_P(CampaignTest, WhatAnUnfinishedCampaignUsesCannotBeDeletedUntilItIsFinal) {
  const std::string tenant = "inuse";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_GE(accounts.size(), 3u);
  const std::string media = NewMedia(tenant, key);
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  const v1::Segment segment = NewSegment(tenant, key, Lapsed());
  ASSERT_FALSE(segment.name().empty());
  // Other campaigns of the tenant, finished, that use neither the account nor the segment.
  for (int i = 0; i < 3; ++i) {
    v1::Campaign done;
    ASSERT_TRUE(v1::CampaignService::NewStub(stack_->channel())
                    ->CreateCampaign(BearerContext(key).get(),
                                     PpvCampaign(tenant, {accounts[2]}, media, "Earlier"), &done)
                    .ok());
    ASSERT_EQ(Watch(key, done.name()).state(), v1::Campaign::COMPLETED);
  }
  // Scheduled an hour ahead: unfinished.
  v1::CreateCampaignRequest req = PpvCampaign(tenant, {accounts[0]}, media, "Later");
  req.mutable_campaign()->mutable_targets(0)->set_segment(segment.name());
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign scheduled;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &scheduled).ok());

  auto teams = v1::AccountService::NewStub(stack_->channel());
  auto media_stub = v1::MediaService::NewStub(stack_->channel());
  const auto delete_all = [&](grpc::StatusCode expected) {
    v1::DeleteAccountResponse account_deleted;
    grpc::Status s = teams->DeleteAccount(
        BearerContext(key).get(), Named<v1::DeleteAccountRequest>(accounts[0]), &account_deleted);
    EXPECT_EQ(s.error_code(), expected) << s.error_message();
    if (!s.ok()) {
      EXPECT_THAT(s.error_message(), ::testing::HasSubstr(ShortId(scheduled.name())));
    }
    v1::DeleteMediaAssetResponse media_deleted;
    s = media_stub->DeleteMediaAsset(BearerContext(key).get(),
                                     Named<v1::DeleteMediaAssetRequest>(media), &media_deleted);
    EXPECT_EQ(s.error_code(), expected) << s.error_message();
    v1::DeleteSegmentResponse segment_deleted;
    s = audiences->DeleteSegment(BearerContext(key).get(),
                                 Named<v1::DeleteSegmentRequest>(segment.name()), &segment_deleted);
    EXPECT_EQ(s.error_code(), expected) << s.error_message();
  };
  delete_all(grpc::StatusCode::FAILED_PRECONDITION);
  v1::Account account;
  EXPECT_TRUE(teams
                  ->GetAccount(BearerContext(key).get(), Named<v1::GetAccountRequest>(accounts[0]),
                               &account)
                  .ok());
  v1::MediaAsset asset;
  EXPECT_TRUE(
      media_stub
          ->GetMediaAsset(BearerContext(key).get(), Named<v1::GetMediaAssetRequest>(media), &asset)
          .ok());
  // An account the campaign does not target goes.
  v1::DeleteAccountResponse other_deleted;
  EXPECT_TRUE(teams
                  ->DeleteAccount(BearerContext(key).get(),
                                  Named<v1::DeleteAccountRequest>(accounts[1]), &other_deleted)
                  .ok());

  v1::CancelCampaignResponse cancelled;
  ASSERT_TRUE(campaigns
                  ->CancelCampaign(BearerContext(key).get(),
                                   Named<v1::CancelCampaignRequest>(scheduled.name()), &cancelled)
                  .ok());
  ASSERT_EQ(Watch(key, scheduled.name()).state(), v1::Campaign::CANCELLED);
  delete_all(grpc::StatusCode::OK);

  // A draft is unfinished too, though nothing of it has been enqueued.
  const v1::Campaign draft = NewDraft(tenant, key, {accounts[2]}, NewMedia(tenant, key), "Draft");
  v1::DeleteAccountResponse held;
  grpc::Status s = teams->DeleteAccount(BearerContext(key).get(),
                                        Named<v1::DeleteAccountRequest>(accounts[2]), &held);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr(ShortId(draft.name())));
}

// A segment's fields change through its update mask, only to valid values, and only while no
// launched, unfinished campaign uses it; a refused update changes nothing.
// An account changes what the mask names (or, without one, what the request sets); its team is
// immutable: sent back unchanged it is accepted, a new one is refused whatever the mask and
// nothing changes.
TEST_P(CampaignTest, AnAccountUpdateChangesWhatItNamesAndNeverItsTeam) {
  const std::string tenant = "acctupdate";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  auto other = testing::CreateTeamWithAccounts(stack_->channel(), key, tenant,
                                               {.team_id = "other", .sim_team = 2});
  ASSERT_TRUE(other.ok()) << other.status();
  auto stub = v1::AccountService::NewStub(stack_->channel());
  const auto get = [&] {
    v1::GetAccountRequest req;
    req.set_name(accounts[0]);
    v1::Account a;
    EXPECT_TRUE(stub->GetAccount(BearerContext(key).get(), req, &a).ok());
    return a;
  };
  const auto update = [&](const v1::Account& account, std::vector<std::string> paths,
                          v1::Account* out) {
    v1::UpdateAccountRequest req;
    *req.mutable_account() = account;
    for (std::string& p : paths) req.mutable_update_mask()->add_paths(std::move(p));
    return stub->UpdateAccount(BearerContext(key).get(), req, out);
  };

  v1::Account changed;
  changed.set_name(accounts[0]);
  changed.set_display_name("Renamed");
  changed.set_sends_per_minute(30);  // not in the mask
  v1::Account updated;
  grpc::Status s = update(changed, {"display_name"}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.display_name(), "Renamed");
  EXPECT_NE(updated.sends_per_minute(), 30);
  EXPECT_EQ(get().DebugString(), updated.DebugString());

  // Read, changed, sent back whole without a mask: the unchanged team comes along.
  v1::Account whole = get();
  whole.set_sends_per_minute(30);
  s = update(whole, {}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.sends_per_minute(), 30);
  EXPECT_EQ(updated.team(), StrCat("tenants/", tenant, "/teams/main"));

  // Sent back whole under a mask that leaves the team out: the unchanged team comes along.
  whole = get();
  whole.set_display_name("Renamed again");
  s = update(whole, {"display_name"}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.display_name(), "Renamed again");

  // Another team, whatever the mask: refused, and nothing changes.
  const v1::Account before = get();
  v1::Account moved = before;
  moved.set_team(other->team.name());
  moved.set_display_name("Moved");
  for (const std::vector<std::string>& paths :
       {std::vector<std::string>{}, std::vector<std::string>{"team", "display_name"},
        std::vector<std::string>{"display_name"}, std::vector<std::string>{"*"}}) {
    v1::Account out;
    const grpc::Status refused = update(moved, paths, &out);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.error_message();
    EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("team"));
    EXPECT_EQ(get().DebugString(), before.DebugString());
  }
}

TEST_P(CampaignTest, ASegmentChangesOnlyWhileNoLaunchedCampaignUsesIt) {
  const std::string tenant = "segedit";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia(tenant, key);
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  const v1::Segment created = NewSegment(tenant, key, Lapsed());
  ASSERT_FALSE(created.name().empty());

  // `paths` of `values`, on the segment.
  const auto update = [&](v1::Segment values, std::vector<std::string> paths, v1::Segment* out) {
    v1::UpdateSegmentRequest req;
    values.set_name(created.name());
    *req.mutable_segment() = std::move(values);
    for (const std::string& path : paths) req.mutable_update_mask()->add_paths(path);
    return audiences->UpdateSegment(BearerContext(key).get(), req, out);
  };
  const auto stored = [&] {
    v1::Segment got;
    EXPECT_TRUE(audiences
                    ->GetSegment(BearerContext(key).get(),
                                 Named<v1::GetSegmentRequest>(created.name()), &got)
                    .ok());
    return got;
  };

  // Only the fields the mask names change.
  v1::Segment values;
  values.set_display_name("Big spenders");
  values.set_min_lifetime_spend_cents(5000);
  values.set_subscribed_within_days(30);  // not in the mask
  v1::Segment updated;
  grpc::Status s = update(values, {"display_name", "min_lifetime_spend_cents"}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.name(), created.name());
  EXPECT_EQ(updated.display_name(), "Big spenders");
  EXPECT_EQ(updated.min_lifetime_spend_cents(), 5000);
  EXPECT_EQ(updated.subscribed_within_days(), 0);
  EXPECT_TRUE(updated.expired_only());
  EXPECT_EQ(updated.create_time().seconds(), created.create_time().seconds());
  EXPECT_EQ(stored().DebugString(), updated.DebugString());

  // Bad requests: INVALID_ARGUMENT naming the field, and nothing changes.
  const auto expect_invalid = [&](const v1::Segment& bad, std::vector<std::string> paths,
                                  const std::string& field) {
    v1::Segment out;
    const grpc::Status refused = update(bad, std::move(paths), &out);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.error_message();
    EXPECT_THAT(refused.error_message(), ::testing::HasSubstr(field));
    EXPECT_EQ(stored().DebugString(), updated.DebugString());
  };
  expect_invalid(v1::Segment(), {}, "update_mask");  // no mask, and nothing set to imply one
  expect_invalid(values, {"create_time"}, "update_mask");
  expect_invalid(values, {"*", "display_name"}, "update_mask");
  expect_invalid(values, {"display_name", "display_name"}, "update_mask");
  v1::Segment bad;
  expect_invalid(bad, {"display_name"}, "segment.display_name");
  bad.set_min_lifetime_spend_cents(-1);
  expect_invalid(bad, {"min_lifetime_spend_cents"}, "segment.min_lifetime_spend_cents");
  bad.set_subscribed_within_days(3651);
  expect_invalid(bad, {"subscribed_within_days"}, "segment.subscribed_within_days");
  // Dropping both of its conditions would leave none.
  expect_invalid(v1::Segment(), {"min_lifetime_spend_cents", "expired_only"}, "condition");

  // Without a mask, the fields the request sets (AIP-134): here the name alone.
  v1::Segment renamed;
  renamed.set_display_name("Lapsed big spenders");
  s = update(renamed, {}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.display_name(), "Lapsed big spenders");
  EXPECT_EQ(updated.min_lifetime_spend_cents(), 5000);
  EXPECT_TRUE(updated.expired_only());
  EXPECT_EQ(stored().DebugString(), updated.DebugString());

  // A draft that uses it does not hold it back.
  v1::CreateCampaignRequest req = PpvCampaign(tenant, {accounts[0]}, media, "Draft");
  req.mutable_campaign()->mutable_targets(0)->set_segment(created.name());
  req.mutable_campaign()->set_save_as_draft(true);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign draft;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &draft).ok());
  values.set_min_lifetime_spend_cents(7000);
  s = update(values, {"min_lifetime_spend_cents"}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.min_lifetime_spend_cents(), 7000);

  // A campaign scheduled an hour ahead is launched: it does, until it is final.
  req.mutable_campaign()->set_save_as_draft(false);
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  v1::Campaign scheduled;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &scheduled).ok());
  values.set_min_lifetime_spend_cents(9000);
  v1::Segment refused_out;
  s = update(values, {"min_lifetime_spend_cents"}, &refused_out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr(ShortId(scheduled.name())));
  EXPECT_EQ(stored().min_lifetime_spend_cents(), 7000);

  v1::CancelCampaignResponse cancelled;
  ASSERT_TRUE(campaigns
                  ->CancelCampaign(BearerContext(key).get(),
                                   Named<v1::CancelCampaignRequest>(scheduled.name()), &cancelled)
                  .ok());
  ASSERT_EQ(Watch(key, scheduled.name()).state(), v1::Campaign::CANCELLED);
  s = update(values, {"min_lifetime_spend_cents"}, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stored().min_lifetime_spend_cents(), 9000);
}

// A cancel whose unsends the queue refuses says so, and the dispatch sweep takes the messages
// back once the queue takes them.
TEST_P(CampaignTest, ACancelThatStoppedBeforeItsUnsendsIsFinishedByTheDispatchSweep) {
  const std::string tenant = "unswept";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(
                      BearerContext(key).get(),
                      PpvCampaign(tenant, {accounts[0]}, NewMedia(tenant, key), "Taken back later"),
                      &created)
                  .ok());
  ASSERT_EQ(Watch(key, created.name()).state(), v1::Campaign::COMPLETED);

  const std::string team = SetQueueTeam(GetParam(), tenant, accounts[0], "elsewhere");
  ASSERT_FALSE(team.empty());
  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  ASSERT_NO_FATAL_FAILURE(ExpectStoppedBeforeItsJobs(
      campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled)));

  SetQueueTeam(GetParam(), tenant, accounts[0], team);
  const v1::Campaign done = Watch(key, created.name());  // ends once the unsends have finished
  EXPECT_EQ(done.state(), v1::Campaign::CANCELLED);
  const std::vector<v1::Delivery> deliveries = DeliveriesOf(key, created.name());
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].state(), v1::Delivery::CANCELLED);
  EXPECT_EQ(deliveries[0].cancel_outcome(), "unsent");
  bool canceled_upstream = false;
  for (const auto& [id, state] : LedgerOf(ShortId(accounts[0]))) {
    if (id == deliveries[0].upstream_message_id()) canceled_upstream = state == "canceled";
  }
  EXPECT_TRUE(canceled_upstream);
}

TEST_P(CampaignTest, CancelAfterSendUnsendsWithinTheWindow) {
  const std::string key = NewTenant("undo");
  const std::vector<std::string> all = ImportAccounts("undo", key, 1);
  ASSERT_GE(all.size(), 3u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 3);
  const std::string media = NewMedia("undo", key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   PpvCampaign("undo", accounts, media, "Oops, wrong price"),
                                   &created)
                  .ok());
  ASSERT_EQ(Watch(key, created.name()).state(), v1::Campaign::COMPLETED);

  // Herald's messages show in each account's upstream queue, marked with the campaign.
  v1::ListUpstreamQueueRequest qreq;
  qreq.set_account(accounts[0]);
  v1::ListUpstreamQueueResponse queue;
  grpc::Status s = campaigns->ListUpstreamQueue(BearerContext(key).get(), qreq, &queue);
  ASSERT_TRUE(s.ok()) << s.error_message();
  int ours = 0;
  for (const auto& item : queue.items()) ours += item.campaign() == created.name();
  EXPECT_EQ(ours, 1);

  v1::CancelCampaignRequest creq;
  creq.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  s = campaigns->CancelCampaign(BearerContext(key).get(), creq, &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cancelled.campaign().state(), v1::Campaign::CANCELLED);
  EXPECT_EQ(cancelled.not_undone_size(), 0) << cancelled.not_undone(0).cancel_outcome();
  Watch(key, created.name());  // ends once the unsends have finished

  v1::ListDeliveriesRequest lreq;
  lreq.set_parent(created.name());
  v1::ListDeliveriesResponse deliveries;
  ASSERT_TRUE(campaigns->ListDeliveries(BearerContext(key).get(), lreq, &deliveries).ok());
  for (const auto& d : deliveries.deliveries()) {
    EXPECT_EQ(d.state(), v1::Delivery::CANCELLED) << d.account();
    EXPECT_EQ(d.cancel_outcome(), "unsent") << d.account();
    bool canceled_upstream = false;
    for (const auto& [id, state] : LedgerOf(ShortId(d.account()))) {
      if (id == d.upstream_message_id()) canceled_upstream = state == "canceled";
    }
    EXPECT_TRUE(canceled_upstream) << d.account();
  }
}

// An unsend waits, like every call of its account, while the account is paused: the cancel
// says so, and the message is unsent once the account is resumed.
TEST_P(CampaignTest, ACancelSaysWhichPauseHoldsItsUnsend) {
  const std::string key = NewTenant("pausedundo");
  const std::vector<std::string> accounts = ImportAccounts("pausedundo", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("pausedundo", key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   PpvCampaign("pausedundo", {accounts[0]}, media, "Wrong one"),
                                   &created)
                  .ok());
  ASSERT_EQ(Watch(key, created.name()).state(), v1::Campaign::COMPLETED);
  ASSERT_NO_FATAL_FAILURE(SetAccountPaused(key, accounts[0], true));

  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  grpc::Status s = campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(cancelled.not_undone_size(), 1);
  EXPECT_THAT(cancelled.not_undone(0).cancel_outcome(),
              ::testing::HasSubstr(StrCat("unsending, once account '", ShortId(accounts[0]),
                                          "' is resumed (it is paused)")));
  // The campaign is CANCELLED, but its account is in use until the message is taken back.
  auto account_stub = v1::AccountService::NewStub(stack_->channel());
  v1::DeleteAccountRequest remove;
  remove.set_name(accounts[0]);
  v1::DeleteAccountResponse removed;
  s = account_stub->DeleteAccount(BearerContext(key).get(), remove, &removed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr(ShortId(created.name())));

  ASSERT_NO_FATAL_FAILURE(SetAccountPaused(key, accounts[0], false));
  ASSERT_TRUE(testing::WaitFor([&] {
    const std::vector<v1::Delivery> ds = DeliveriesOf(key, created.name());
    return ds.size() == 1 && ds[0].state() == v1::Delivery::CANCELLED;
  })) << stack_->herald().Logs();
  EXPECT_EQ(DeliveriesOf(key, created.name())[0].cancel_outcome(), "unsent");
  s = account_stub->DeleteAccount(BearerContext(key).get(), remove, &removed);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// A completed campaign cancelled after the upstream's unsend window: the response names every
// account whose message stays out, the messages stay delivered, and the campaign says so.
TEST_P(CampaignTest, ACancelTooLateToUnsendSaysEveryMessageStaysOut) {
  const std::string key = NewTenant("toolate");
  const std::vector<std::string> accounts = ImportAccounts("toolate", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("toolate", key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   PpvCampaign("toolate", {accounts[0]}, media, "Too late"),
                                   &created)
                  .ok());
  ASSERT_EQ(Watch(key, created.name()).state(), v1::Campaign::COMPLETED);

  ASSERT_NO_FATAL_FAILURE(SetUnsendWindowMs(0));
  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  grpc::Status s = campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled);
  // The window comes back only once the unsend has run against the closed one.
  const bool refused =
      s.ok() && testing::WaitFor([&] {
        const std::vector<v1::Delivery> ds = DeliveriesOf(key, created.name());
        return ds.size() == 1 && ds[0].cancel_outcome().starts_with("could not be unsent");
      });
  ASSERT_NO_FATAL_FAILURE(SetUnsendWindowMs(60'000));
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(refused) << stack_->herald().Logs();
  const std::vector<v1::Delivery> ds = DeliveriesOf(key, created.name());
  EXPECT_EQ(ds[0].state(), v1::Delivery::COMPLETED);
  std::string upstream_state;
  for (const auto& [id, state] : LedgerOf(ShortId(accounts[0]))) {
    if (id == ds[0].upstream_message_id()) upstream_state = state;
  }
  EXPECT_EQ(upstream_state, "done");
  const v1::Campaign after = GetCampaign(key, created.name());
  EXPECT_EQ(after.state(), v1::Campaign::CANCELLED);
  EXPECT_THAT(after.state_reason(),
              ::testing::HasSubstr("every message had gone out and none could be unsent"));
}

// The same with a delivery that failed: the reason does not claim that every message went out.
TEST_P(CampaignTest, ACancelTooLateBesideAFailedDeliverySaysWhatWentOutStaysOut) {
  const std::string key = NewTenant("toolate-failed");
  std::vector<std::string> accounts = ImportAccounts("toolate-failed", key, 1);
  ASSERT_GE(accounts.size(), 2u);
  accounts.resize(2);
  const std::string media = NewMedia("toolate-failed", key);
  // The second account's send is refused for good (a 400 is not retried).
  auto fault = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/faults",
      StrCat(R"({"methods":["POST"],"path_contains":"/api/)", ShortId(accounts[1]),
             R"(/mass-messaging","error_rate":1,"error_status":400,"count":1})"));
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   PpvCampaign("toolate-failed", accounts, media, "Half late"),
                                   &created)
                  .ok());
  Watch(key, created.name());
  std::vector<v1::Delivery> ds = DeliveriesOf(key, created.name());
  ASSERT_EQ(ds.size(), 2u);
  int failed = 0;
  for (const v1::Delivery& d : ds) failed += d.state() == v1::Delivery::FAILED ? 1 : 0;
  ASSERT_EQ(failed, 1) << stack_->herald().Logs();

  ASSERT_NO_FATAL_FAILURE(SetUnsendWindowMs(0));
  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  grpc::Status s = campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled);
  const bool refused = s.ok() && testing::WaitFor([&] {
                         for (const v1::Delivery& d : DeliveriesOf(key, created.name())) {
                           if (d.cancel_outcome().starts_with("could not be unsent")) return true;
                         }
                         return false;
                       });
  ASSERT_NO_FATAL_FAILURE(SetUnsendWindowMs(60'000));
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(refused) << stack_->herald().Logs();
  const v1::Campaign after = GetCampaign(key, created.name());
  EXPECT_EQ(after.state(), v1::Campaign::CANCELLED);
  EXPECT_THAT(after.state_reason(),
              ::testing::HasSubstr("none of the messages that went out could be unsent"));
  EXPECT_THAT(after.state_reason(), ::testing::Not(::testing::HasSubstr("every message")));
}

// An unsend the upstream refuses for want of credits pauses the team instead of using up its
// attempts; once credits are back and the team resumed, the message is unsent.
TEST_P(CampaignTest, AnUnsendWithoutCreditsPausesTheTeamAndUnsendsOnceResumed) {
  const std::string tenant = "unpaid-undo";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia(tenant, key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  auto teams = v1::AccountService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   PpvCampaign(tenant, {accounts[0]}, media, "Sent in error"),
                                   &created)
                  .ok());
  ASSERT_EQ(Watch(key, created.name()).state(), v1::Campaign::COMPLETED);

  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 0));
  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  grpc::Status s = campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::GetTeamRequest get_team;
  get_team.set_name(StrCat("tenants/", tenant, "/teams/main"));
  v1::Team team;
  const bool paused = testing::WaitFor([&] {
    return teams->GetTeam(BearerContext(key).get(), get_team, &team).ok() && team.paused();
  });
  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 1000000000));
  ASSERT_TRUE(paused) << "no credits: the team pauses";
  EXPECT_THAT(team.pause_reason(), ::testing::HasSubstr("credits"));

  v1::ResumeTeamRequest resume;
  resume.set_name(get_team.name());
  ASSERT_TRUE(teams->ResumeTeam(BearerContext(key).get(), resume, &team).ok());
  v1::ListDeliveriesRequest lreq;
  lreq.set_parent(created.name());
  v1::ListDeliveriesResponse deliveries;
  ASSERT_TRUE(testing::WaitFor([&] {
    return campaigns->ListDeliveries(BearerContext(key).get(), lreq, &deliveries).ok() &&
           deliveries.deliveries_size() == 1 &&
           !deliveries.deliveries(0).cancel_outcome().empty() &&
           deliveries.deliveries(0).cancel_outcome() != "unsending";
  }));
  const v1::Delivery& d = deliveries.deliveries(0);
  EXPECT_EQ(d.cancel_outcome(), "unsent");
  EXPECT_EQ(d.state(), v1::Delivery::CANCELLED);
  bool canceled_upstream = false;
  for (const auto& [id, state] : LedgerOf(ShortId(d.account()))) {
    if (id == d.upstream_message_id()) canceled_upstream = state == "canceled";
  }
  EXPECT_TRUE(canceled_upstream);
}

// A cancel that comes while a send's outcome is unknown (its response lost) does not take the
// delivery for unsent: the next attempt looks for the message upstream and takes it back.
TEST_P(CampaignTest, ACancelDuringASendWhoseOutcomeIsUnknownTakesTheMessageBack) {
  const std::string key = NewTenant("unknown");
  const std::vector<std::string> accounts = ImportAccounts("unknown", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("unknown", key);
  const std::string upstream_account = ShortId(accounts[0]);
  const size_t before = LedgerOf(upstream_account).size();
  // The send is applied but its answer lost, and no retry can look for it until the second
  // rule goes.
  for (const char* rule :
       {R"({"team":"team-1","methods":["POST"],"path_contains":"/mass-messaging",)"
        R"("commit_then_lose_rate":1,"count":1})",
        R"({"team":"team-1","methods":["GET"],"path_contains":"/mass-messaging/overview",)"
        R"("error_rate":1,"error_status":503})"}) {
    auto fault = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/faults", rule);
    ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  }
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   PpvCampaign("unknown", {accounts[0]}, media, "Maybe sent"),
                                   &created)
                  .ok());
  {
    // Until the delivery is sending: its message cannot be on record before the rule goes.
    auto ctx = BearerContext(key, absl::Seconds(60));
    v1::WatchCampaignRequest wreq;
    wreq.set_name(created.name());
    auto reader = campaigns->WatchCampaign(ctx.get(), wreq);
    v1::WatchCampaignResponse update;
    bool sending = false;
    while (!sending && reader->Read(&update)) {
      sending = update.has_delivery() && update.delivery().send_attempts() > 0;
    }
    ASSERT_TRUE(sending);
    ctx->TryCancel();
    reader->Finish();
  }
  // The cancel answers once the send settles (or after its wait): the lookup is let through as
  // soon as the cancel is on record, while the send's retries still have attempts left.
  v1::CancelCampaignRequest creq;
  creq.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  auto cancel_ctx = BearerContext(key);
  std::future<grpc::Status> cancel = std::async(std::launch::async, [&] {
    return campaigns->CancelCampaign(cancel_ctx.get(), creq, &cancelled);
  });
  const bool on_record = testing::WaitFor([&] {
    v1::GetCampaignRequest greq;
    greq.set_name(created.name());
    v1::Campaign now;
    return campaigns->GetCampaign(BearerContext(key).get(), greq, &now).ok() &&
           now.state() == v1::Campaign::CANCELLED;
  });
  auto cleared =
      testing::HttpRequest(stack_->sim().port(), "DELETE", "/_sim/faults?team=team-1", "");
  ASSERT_TRUE(on_record);
  ASSERT_TRUE(cleared.ok() && cleared->status == 200) << (cleared.ok() ? cleared->body : "");
  const grpc::Status s = cancel.get();
  ASSERT_TRUE(s.ok()) << s.error_message();
  Watch(key, created.name());  // ends once the unsend has finished

  v1::ListDeliveriesRequest lreq;
  lreq.set_parent(created.name());
  v1::ListDeliveriesResponse deliveries;
  ASSERT_TRUE(campaigns->ListDeliveries(BearerContext(key).get(), lreq, &deliveries).ok());
  ASSERT_EQ(deliveries.deliveries_size(), 1);
  const v1::Delivery& d = deliveries.deliveries(0);
  EXPECT_EQ(d.state(), v1::Delivery::CANCELLED) << d.error();
  EXPECT_EQ(d.cancel_outcome(), "unsent");
  const auto ledger = LedgerOf(upstream_account);
  ASSERT_EQ(ledger.size(), before + 1);
  const auto ours = std::find_if(ledger.begin(), ledger.end(),
                                 [&](const auto& m) { return m.first == d.upstream_message_id(); });
  ASSERT_NE(ours, ledger.end());
  EXPECT_EQ(ours->second, "canceled");
}

TEST_P(CampaignTest, TestMessageGoesToTheGivenFansOnly) {
  const std::string key = NewTenant("preview");
  const std::vector<std::string> accounts = ImportAccounts("preview", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("preview", key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  const v1::Campaign draft = NewDraft("preview", key, {accounts[0]}, media, "Check me");
  ASSERT_FALSE(draft.name().empty());
  const std::string upstream_account = ShortId(accounts[0]);
  const size_t before = LedgerOf(upstream_account).size();

  v1::SendTestMessageRequest treq;
  treq.set_campaign(draft.name());
  treq.set_account(accounts[0]);
  treq.add_fan_ids(SomeFan(upstream_account));
  v1::SendTestMessageResponse sent;
  grpc::Status s = campaigns->SendTestMessage(BearerContext(key).get(), treq, &sent);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(sent.upstream_message_id(), 0);
  EXPECT_EQ(LedgerOf(upstream_account).size(), before + 1);

  // The campaign is still a draft; a bad request changes nothing.
  const v1::Campaign c = GetCampaign(key, draft.name());
  EXPECT_EQ(c.state(), v1::Campaign::DRAFT);
  treq.clear_fan_ids();
  s = campaigns->SendTestMessage(BearerContext(key).get(), treq, &sent);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  treq.add_fan_ids(1);
  treq.set_account(accounts.size() > 1 ? accounts[1] : "tenants/preview/accounts/acct_x");
  s = campaigns->SendTestMessage(BearerContext(key).get(), treq, &sent);
  EXPECT_NE(s.error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(LedgerOf(upstream_account).size(), before + 1);
}

// A test message carries the campaign's text, price and media: a send retried after a failed
// attempt looks for that attempt's message upstream and must not take the test for it.
TEST_P(CampaignTest, ARetriedSendDoesNotAdoptTheCampaignsTestMessage) {
  const std::string key = NewTenant("tested");
  const std::vector<std::string> accounts = ImportAccounts("tested", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("tested", key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  const v1::Campaign draft = NewDraft("tested", key, {accounts[0]}, media, "Tested first");
  ASSERT_FALSE(draft.name().empty());
  const std::string upstream_account = ShortId(accounts[0]);
  std::set<int64_t> before;
  for (const auto& [id, state] : LedgerOf(upstream_account)) before.insert(id);
  v1::SendTestMessageRequest treq;
  treq.set_campaign(draft.name());
  treq.set_account(accounts[0]);
  treq.add_fan_ids(SomeFan(upstream_account));
  v1::SendTestMessageResponse test;
  grpc::Status s = campaigns->SendTestMessage(BearerContext(key).get(), treq, &test);
  ASSERT_TRUE(s.ok()) << s.error_message();

  v1::ListUpstreamQueueRequest qreq;
  qreq.set_account(accounts[0]);
  v1::ListUpstreamQueueResponse queue;
  s = campaigns->ListUpstreamQueue(BearerContext(key).get(), qreq, &queue);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto listed = std::find_if(queue.items().begin(), queue.items().end(), [&](const auto& item) {
    return item.id() == test.upstream_message_id();
  });
  ASSERT_NE(listed, queue.items().end());
  EXPECT_TRUE(listed->test_message());
  EXPECT_EQ(listed->campaign(), draft.name());

  // The campaign's first send is refused (nothing created upstream); the second reconciles.
  auto fault = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/faults",
      R"({"team":"team-1","methods":["POST"],"path_contains":"/mass-messaging",)"
      R"("error_rate":1,"error_status":503,"count":1})");
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  v1::LaunchCampaignRequest lreq;
  lreq.set_name(draft.name());
  v1::Campaign launched;
  s = campaigns->LaunchCampaign(BearerContext(key).get(), lreq, &launched);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const v1::Campaign done = Watch(key, draft.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();

  v1::ListDeliveriesRequest dreq;
  dreq.set_parent(draft.name());
  v1::ListDeliveriesResponse deliveries;
  s = campaigns->ListDeliveries(BearerContext(key).get(), dreq, &deliveries);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(deliveries.deliveries_size(), 1);
  const v1::Delivery& d = deliveries.deliveries(0);
  EXPECT_EQ(d.send_attempts(), 2);
  EXPECT_NE(d.upstream_message_id(), 0);
  EXPECT_NE(d.upstream_message_id(), test.upstream_message_id());
  std::vector<int64_t> ledger_ids;
  for (const auto& [id, state] : LedgerOf(upstream_account)) {
    if (!before.contains(id)) ledger_ids.push_back(id);
  }
  EXPECT_THAT(ledger_ids,
              ::testing::UnorderedElementsAre(test.upstream_message_id(), d.upstream_message_id()));
}

// A segment becomes one upstream list per account, made once even when the answer to its creation
// is lost, and the campaign goes to exactly the fans it selects.
TEST_P(CampaignTest, SegmentBecomesAnUpstreamListAndIsSentTo) {
  const std::string key = NewTenant("segments");
  const std::vector<std::string> all = ImportAccounts("segments", key, 2);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  const v1::Segment segment = NewSegment("segments", key, Lapsed());
  ASSERT_FALSE(segment.name().empty());

  // How many expired fans each account has, per the upstream.
  std::map<std::string, int64_t> expired;
  for (const auto& a : accounts) {
    v1::ListUserListsRequest lreq;
    lreq.set_account(a);
    v1::ListUserListsResponse lists;
    ASSERT_TRUE(audiences->ListUserLists(BearerContext(key).get(), lreq, &lists).ok());
    for (const auto& l : lists.user_lists()) {
      if (l.id() == "expired") expired[a] = l.fan_count();
    }
  }

  // The first account's list is created upstream but the answer is lost: the retry finds it.
  auto fault = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/faults",
      StrCat(R"({"methods":["POST"],"path_contains":")", testing::ShortId(accounts[0]),
             R"(/user-lists","commit_then_lose_rate":1,"count":1})"));
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");

  v1::CreateCampaignRequest req;
  req.set_parent("tenants/segments");
  req.mutable_campaign()->mutable_content()->set_text("We miss you");
  for (const auto& a : accounts) {
    v1::AccountTarget* t = req.mutable_campaign()->add_targets();
    t->set_account(a);
    t->set_segment(segment.name());
  }
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << done.state_reason() << stack_->herald().Logs();

  v1::ListDeliveriesRequest dreq;
  dreq.set_parent(created.name());
  v1::ListDeliveriesResponse deliveries;
  ASSERT_TRUE(campaigns->ListDeliveries(BearerContext(key).get(), dreq, &deliveries).ok());
  for (const auto& d : deliveries.deliveries()) {
    EXPECT_EQ(d.state(), v1::Delivery::COMPLETED) << d.account() << ": " << d.error();
    EXPECT_EQ(d.recipients(), expired[d.account()]) << d.account();
    // The segment's list exists on the account with exactly those fans (it stays until the
    // campaign's reconciliation is over).
    v1::ListUserListsRequest lreq;
    lreq.set_account(d.account());
    v1::ListUserListsResponse lists;
    ASSERT_TRUE(audiences->ListUserLists(BearerContext(key).get(), lreq, &lists).ok());
    int found = 0;
    for (const auto& l : lists.user_lists()) {
      if (l.display_name().starts_with("Herald Lapsed fans")) {
        ++found;
        EXPECT_EQ(l.fan_count(), expired[d.account()]);
      }
    }
    EXPECT_EQ(found, 1) << d.account() << ": one list, made once";
  }
  EXPECT_THAT(SegmentScansOf("segments"), ::testing::IsEmpty())
      << "each delivery drops its scan once its list is filled";
}

// A segment delivery that fails before its message goes out does not leave its list behind.
TEST_P(CampaignTest, AFailedSegmentDeliveryLeavesNoListBehind) {
  const std::string tenant = "refusedseg";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 2);
  ASSERT_FALSE(accounts.empty());
  const v1::Segment segment = NewSegment(tenant, key, Lapsed());
  ASSERT_FALSE(segment.name().empty());
  // The upstream refuses the send: the delivery fails once its list is built.
  ASSERT_NO_FATAL_FAILURE(AddFault(StrCat(
      R"({"team":"team-2","methods":["POST"],"path_contains":")", ShortId(accounts[0]),
      R"(/mass-messaging","error_rate":1,"error_status":422,"error_code":"invalid_text"})")));
  absl::Cleanup clear_faults = [] { ClearFaults("team-2"); };
  // Other tests' segment lists on the same simulator account stay.
  const std::vector<std::string> before = ListsNamed(key, accounts[0], "Herald Lapsed fans");

  const v1::Campaign created = SendToSegment(tenant, key, accounts[0], segment);
  ASSERT_FALSE(created.name().empty());
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::FAILED) << done.state_reason();
  const std::vector<v1::Delivery> deliveries = DeliveriesOf(key, created.name());
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].state(), v1::Delivery::FAILED);
  EXPECT_EQ(deliveries[0].upstream_message_id(), 0);
  EXPECT_TRUE(
      testing::WaitFor([&] { return ListsNamed(key, accounts[0], "Herald Lapsed fans") == before; },
                       absl::Seconds(60)))
      << "the failed delivery's list is still there";
  EXPECT_THAT(SegmentScansOf(tenant), ::testing::IsEmpty());
}

// A target's segment that selects nobody on the account leaves the target's other recipients:
// the message still goes to its lists, and only a target with nothing else sends nothing.
TEST_P(CampaignTest, ASegmentThatSelectsNobodyStillSendsToTheTargetsLists) {
  const std::string tenant = "emptyseg";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> all = ImportAccounts(tenant, key, 2);
  ASSERT_GE(all.size(), 2u);
  v1::Segment whales;
  whales.set_display_name("Whales");
  whales.set_min_lifetime_spend_cents(int64_t{1} << 40);  // nobody spends that
  const v1::Segment segment = NewSegment(tenant, key, std::move(whales));
  ASSERT_FALSE(segment.name().empty());
  const auto before = LedgerMessages();

  v1::CreateCampaignRequest req;
  req.set_parent(StrCat("tenants/", tenant));
  req.mutable_campaign()->mutable_content()->set_text("For everyone, and the whales");
  v1::AccountTarget* with_lists = req.mutable_campaign()->add_targets();
  with_lists->set_account(all[0]);
  with_lists->add_user_lists("fans");
  with_lists->set_segment(segment.name());
  v1::AccountTarget* segment_only = req.mutable_campaign()->add_targets();
  segment_only->set_account(all[1]);
  segment_only->set_segment(segment.name());
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();

  std::map<std::string, v1::Delivery> by_account;
  for (const v1::Delivery& d : DeliveriesOf(key, created.name())) by_account[d.account()] = d;
  ASSERT_EQ(by_account.size(), 2u);
  EXPECT_EQ(by_account[all[0]].state(), v1::Delivery::COMPLETED) << by_account[all[0]].error();
  EXPECT_GT(by_account[all[0]].recipients(), 0);
  EXPECT_EQ(by_account[all[1]].state(), v1::Delivery::COMPLETED) << by_account[all[1]].error();
  EXPECT_EQ(by_account[all[1]].recipients(), 0);
  ExpectOneMoreMessageEach(before, {all[0]});
  const auto after = LedgerMessages();
  const std::string second = ShortId(all[1]);
  EXPECT_EQ(after.contains(second) ? after.at(second) : 0,
            before.contains(second) ? before.at(second) : 0)
      << "a target with the segment alone sends nothing";
}

// A campaign cancelled while a segment's list is being filled leaves neither the list upstream
// nor the scan in Redis.
TEST_P(CampaignTest, ACampaignCancelledWhileItsListIsFilledLeavesNothingBehind) {
  const std::string tenant = "cancelledseg";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 2);
  ASSERT_FALSE(accounts.empty());
  const v1::Segment segment = NewSegment(tenant, key, Lapsed());
  ASSERT_FALSE(segment.name().empty());
  // Every add to a list is throttled: the list is made, and stays unfilled.
  ASSERT_NO_FATAL_FAILURE(
      AddFault(R"({"team":"team-2","methods":["POST"],"path_contains":"/users","error_rate":1,)"
               R"("error_status":429,"retry_after_s":1})"));
  absl::Cleanup clear_faults = [] { ClearFaults("team-2"); };

  const v1::Campaign created = SendToSegment(tenant, key, accounts[0], segment);
  ASSERT_FALSE(created.name().empty());
  ASSERT_TRUE(
      testing::WaitFor([&] { return !ListsNamed(key, accounts[0], "Herald Lapsed fans").empty(); },
                       absl::Seconds(60)))
      << "the segment's list was never made" << stack_->herald().Logs();

  v1::CancelCampaignResponse cancelled;
  const grpc::Status s =
      v1::CampaignService::NewStub(stack_->channel())
          ->CancelCampaign(BearerContext(key).get(),
                           Named<v1::CancelCampaignRequest>(created.name()), &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Watch(key, created.name()).state(), v1::Campaign::CANCELLED);
  const std::vector<v1::Delivery> deliveries = DeliveriesOf(key, created.name());
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].state(), v1::Delivery::CANCELLED);
  EXPECT_EQ(deliveries[0].upstream_message_id(), 0);
  // The throttled add step, once it runs again, finds its delivery ended.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return ListsNamed(key, accounts[0], "Herald Lapsed fans").empty() &&
               SegmentScansOf(tenant).empty();
      },
      absl::Seconds(60)))
      << "the cancelled delivery's list or scan is still there: lists "
      << absl::StrJoin(ListsNamed(key, accounts[0], "Herald Lapsed fans"), ", ") << "; scans "
      << absl::StrJoin(SegmentScansOf(tenant), ", ") << "\n"
      << stack_->herald().Logs();
}

// A segment's list step put off with its outcome unknown (the list was made upstream, and the
// store refused the write that records it) looks for the list by name before making one: the
// account ends with one list, filled with the segment's fans.
TEST_P(CampaignTest, AListStepPutOffWithItsOutcomeUnknownAdoptsTheListItMade) {
  if (GetParam() != testing::RedisKind::kSingleNode) {
    GTEST_SKIP() << "the step is put off through one redis-server";
  }
  const std::string tenant = "putoffseg";
  const std::string key = NewTenant(tenant);
  UnrecordedList list;
  ASSERT_NO_FATAL_FAILURE(LeaveListUnrecorded(tenant, key, list));
  ASSERT_TRUE(stack_->herald().Restart().ok()) << stack_->herald().AllLogs();

  ExpectCompletedThroughTheListMade(key, list);
}

// A campaign cancelled while its list step waits to look for a list whose answer was lost: the
// list, known to the delivery only by its name, is found and deleted with the scan.
TEST_P(CampaignTest, AListWhoseAnswerWasLostIsDeletedWhenItsCampaignIsCancelled) {
  if (GetParam() != testing::RedisKind::kSingleNode) {
    GTEST_SKIP() << "the step is put off through one redis-server";
  }
  const std::string tenant = "lostlistseg";
  const std::string key = NewTenant(tenant);
  UnrecordedList list;
  ASSERT_NO_FATAL_FAILURE(LeaveListUnrecorded(tenant, key, list));
  absl::Cleanup clear_faults = [] { ClearFaults("team-2"); };
  // Throttled, the step waits a second before it runs again: it next reads its delivery after
  // the cancel.
  ASSERT_NO_FATAL_FAILURE(RestartWithListLookupsThrottled());

  v1::CancelCampaignResponse cancelled;
  const grpc::Status s =
      v1::CampaignService::NewStub(stack_->channel())
          ->CancelCampaign(BearerContext(key).get(),
                           Named<v1::CancelCampaignRequest>(list.campaign.name()), &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Watch(key, list.campaign.name()).state(), v1::Campaign::CANCELLED);
  const std::vector<v1::Delivery> deliveries = DeliveriesOf(key, list.campaign.name());
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].state(), v1::Delivery::CANCELLED);
  EXPECT_EQ(deliveries[0].upstream_message_id(), 0);
  std::move(clear_faults).Invoke();

  const std::string& account = list.account;
  EXPECT_TRUE(testing::WaitFor(
      [&] { return ListsNamed(key, account, list.name).empty() && SegmentScansOf(tenant).empty(); },
      absl::Seconds(60)))
      << "the cancelled delivery's list or scan is still there: lists "
      << absl::StrJoin(ListsNamed(key, account, list.name), ", ") << "; scans "
      << absl::StrJoin(SegmentScansOf(tenant), ", ") << "\n"
      << stack_->herald().AllLogs();
}

// A campaign paused and resumed while its list step waits to look for a list whose answer was
// lost: the resumed campaign's list step, though on its first attempt, finds the list by the name
// on the delivery and makes no second one.
TEST_P(CampaignTest, AListWhoseAnswerWasLostIsFoundByTheResumedCampaign) {
  if (GetParam() != testing::RedisKind::kSingleNode) {
    GTEST_SKIP() << "the step is put off through one redis-server";
  }
  const std::string tenant = "resumedseg";
  const std::string key = NewTenant(tenant);
  UnrecordedList list;
  ASSERT_NO_FATAL_FAILURE(LeaveListUnrecorded(tenant, key, list));
  absl::Cleanup clear_faults = [] { ClearFaults("team-2"); };
  ASSERT_NO_FATAL_FAILURE(RestartWithListLookupsThrottled());
  // The resumed campaign's chain starts again from the list step: a new job, on its first
  // attempt, with no outcome on record.
  ASSERT_TRUE(Pause(key, list.campaign.name()).ok());
  ASSERT_TRUE(Resume(key, list.campaign.name()).ok());
  std::move(clear_faults).Invoke();

  ExpectCompletedThroughTheListMade(key, list);
}

// A scan that a Herald before per-delivery scan tables began (its pages in the campaign's table)
// is finished by this one, and its list holds every fan the scan selected.
TEST_P(CampaignTest, AScanBegunInTheCampaignsTableIsFinished) {
  const std::string tenant = "earlyscan";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 2);
  ASSERT_FALSE(accounts.empty());
  const std::string account = ShortId(accounts[0]);
  const std::set<int64_t> expired =
      UpstreamListMembers(stack_->sim().port(), 2, account, "expired");
  ASSERT_GT(expired.size(), 3u) << "the scan must take more than one page of 4";
  const v1::Segment segment = NewSegment(tenant, key, Lapsed());
  ASSERT_FALSE(segment.name().empty());
  // The scan reads its first page at once and waits 3 s for each of the others: time to move
  // the first page where the earlier Herald kept it.
  ASSERT_NO_FATAL_FAILURE(AddFault(
      R"({"team":"team-2","methods":["GET"],"path_contains":"/users","latency_ms":{"fixed":3000}})"));
  ASSERT_NO_FATAL_FAILURE(
      AddFault(R"({"team":"team-2","methods":["GET"],"path_contains":"/users","count":1})"));
  absl::Cleanup clear_faults = [] { ClearFaults("team-2"); };

  const v1::Campaign created = SendToSegment(tenant, key, accounts[0], segment);
  ASSERT_FALSE(created.name().empty());
  const std::string prefix = StrCat("hd:{t:", tenant, "}:c:", ShortId(created.name()));
  const std::string scan = StrCat(prefix, ":segment:", account);
  auto redis = RedisFor(GetParam(), scan);
  ASSERT_TRUE(redis.ok()) << redis.status();
  std::string page;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto r = (*redis)->Command({"HGET", scan, "0"});
        if (r.ok() && r->type == testing::SyncReply::Type::kString) page = r->str;
        return !page.empty();
      },
      absl::Seconds(30)))
      << "the scan never read its first page";
  auto moved =
      (*redis)->Command({"HSET", StrCat(prefix, ":segment_fans"), StrCat(account, ":0"), page});
  ASSERT_TRUE(moved.ok()) << moved.status();
  moved = (*redis)->Command({"HDEL", scan, "0"});
  ASSERT_TRUE(moved.ok() && moved->integer == 1) << (moved.ok() ? moved->DebugString() : "");
  std::move(clear_faults).Invoke();

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();
  const std::vector<std::string> lists = ListsNamed(key, accounts[0], "Herald Lapsed fans");
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_EQ(UpstreamListMembers(stack_->sim().port(), 2, account, lists[0]), expired)
      << "the first page's fans came from the campaign's table";
}

// A top-spenders segment sends to the biggest spenders Herald has heard of through the team's
// webhooks, and to nobody it knows no spend of.
TEST_P(CampaignTest, ATopSpendersSegmentSendsToTheBiggestSpendersTheWebhooksReported) {
  const std::string tenant = "whales";
  const std::string key = NewTenant(tenant);
  const std::string secret = "whales-webhook-signing-secret";
  auto team = testing::CreateTeamWithAccounts(stack_->channel(), key, tenant,
                                              {.sim_team = 1, .webhook_signing_secret = secret});
  ASSERT_TRUE(team.ok()) << team.status();
  ASSERT_FALSE(team->accounts.empty());
  const std::string account = team->accounts[0];
  const std::string account_id = ShortId(account);
  const std::set<int64_t> active = UpstreamListMembers(stack_->sim().port(), 1, account_id, "fans");
  ASSERT_GE(active.size(), 6u);
  const std::vector<int64_t> fans(active.begin(), std::next(active.begin(), 6));

  // What the webhooks say each fan has spent on the account; the last fan is never mentioned.
  const std::vector<int64_t> spends{5000, 90000, 12000, 90000, 20};
  for (size_t i = 0; i < spends.size(); ++i) {
    const testing::Delivery event = testing::SubscriptionDelivery(
        StrCat("evt_whales_", i), account_id, fans[i], secret, spends[i]);
    auto r = testing::HttpRequest(stack_->herald().ingest_port(), "POST",
                                  team->team.webhook_endpoint(), event.body,
                                  {{"Content-Type", "application/json"},
                                   {"X-OFAPI-Idempotency-Key", event.key},
                                   {"Signature", event.signature}});
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
  }

  v1::Segment whales;
  whales.set_display_name("Whales");
  whales.set_top_spenders(3);
  const v1::Segment segment = NewSegment(tenant, key, std::move(whales));
  ASSERT_EQ(segment.top_spenders(), 3);
  const v1::Campaign created = SendToSegment(tenant, key, account, segment, "For our biggest fans");
  ASSERT_FALSE(created.name().empty());
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();
  const std::vector<v1::Delivery> deliveries = DeliveriesOf(key, created.name());
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].recipients(), 3) << deliveries[0].error();

  // The message went to the three biggest spenders: both at $900 and the one at $120.
  const json::value message = LedgerMessage(account_id, deliveries[0].upstream_message_id());
  ASSERT_TRUE(message.is_object()) << "no such message in the simulator's ledger";
  std::set<int64_t> recipients;
  for (const json::value& fan : message.at("recipient_ids").as_array()) {
    recipients.insert(fan.to_number<int64_t>());
  }
  EXPECT_THAT(recipients, ::testing::ElementsAre(fans[1], fans[2], fans[3]));
}

TEST_P(CampaignTest, RescheduledPausedAndResumedCampaignSendsOnceAtItsNewTime) {
  const std::string key = NewTenant("timing");
  const std::vector<std::string> all = ImportAccounts("timing", key, 2);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  const std::string media = NewMedia("timing", key);
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = PpvCampaign("timing", accounts, media, "Moved");
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) +
                                                           86400);
  v1::Campaign created;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &created).ok());

  // Paused while scheduled: it holds even after its (new) send time passes.
  auto paused = Pause(key, created.name());
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_EQ(paused->state(), v1::Campaign::PAUSED);
  // A retried pause (its answer lost) gets the paused campaign, unchanged.
  auto again = Pause(key, created.name());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state(), v1::Campaign::PAUSED);
  EXPECT_EQ(again->revision(), paused->revision());
  v1::UpdateCampaignRequest update;
  update.mutable_campaign()->set_name(created.name());
  update.mutable_update_mask()->add_paths("send_time");
  EXPECT_EQ(campaigns->UpdateCampaign(BearerContext(key).get(), update, &*paused).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION)
      << "a paused campaign is not changeable";
  auto resumed = Resume(key, created.name());
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->state(), v1::Campaign::SCHEDULED);

  // Moved to a second from now: the jobs of the first schedule do nothing, the new ones send.
  const absl::Time soon = absl::Now() + absl::Seconds(1);
  update.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(soon));
  update.mutable_campaign()->mutable_send_time()->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(soon - absl::FromUnixSeconds(absl::ToUnixSeconds(soon)))));
  v1::Campaign moved;
  grpc::Status s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &moved);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(moved.state(), v1::Campaign::SCHEDULED);
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();
  EXPECT_GE(absl::FromUnixSeconds(done.dispatch_time().seconds()) + absl::Seconds(1),
            absl::FromUnixSeconds(moved.send_time().seconds()));
  ExpectOneMoreMessageEach(before, accounts);
}

// With an upstream lead, each account's message is handed to the upstream ahead of the send
// time and held there; an update reaches the held messages by PUT, and they go out at the (new)
// send time with the new content, still one message per account.
TEST_P(CampaignTest, AnUpstreamLeadHandsTheMessageOverEarlyAndUpdatesReachItThere) {
  const std::string key = NewTenant("lead");
  const std::vector<std::string> all = ImportAccounts("lead", key, 1);
  ASSERT_GE(all.size(), 3u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 3);
  const std::string media = NewMedia("lead", key);
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  const absl::Time send_time = absl::Now() + absl::Hours(1);
  const v1::Campaign created = CreateHeld(
      key, HeldCampaign("lead", accounts, media, "Early bird", send_time, absl::Hours(2)));
  ASSERT_FALSE(created.name().empty());
  EXPECT_EQ(created.upstream_lead().seconds(), 7200);
  const v1::Campaign held = GetCampaign(key, created.name());
  EXPECT_EQ(held.state(), v1::Campaign::SCHEDULED);
  EXPECT_EQ(held.delivery_counts().scheduled_upstream(), 3);
  std::map<std::string, int64_t> message_of;
  for (const v1::Delivery& d : DeliveriesOf(key, created.name())) {
    message_of[d.account()] = d.upstream_message_id();
    const json::value m = LedgerMessage(ShortId(d.account()), d.upstream_message_id());
    ASSERT_TRUE(m.is_object()) << d.account();
    EXPECT_EQ(m.at("state").as_string(), "scheduled") << d.account();
    EXPECT_EQ(m.at("start_at").as_string(),
              absl::FormatTime("%Y-%m-%dT%H:%M:%S+00:00", send_time, absl::UTCTimeZone()))
        << d.account();
  }
  ExpectOneMoreMessageEach(before, accounts);

  // Held messages: no pause, and nothing a PUT cannot carry.
  v1::Campaign unused;
  const absl::Status refused = Pause(key, created.name()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  v1::UpdateCampaignRequest bad;
  bad.mutable_campaign()->set_name(created.name());
  bad.mutable_campaign()->mutable_content()->add_media(NewMedia("lead", key));
  bad.mutable_update_mask()->add_paths("content.media");
  grpc::Status s = campaigns->UpdateCampaign(BearerContext(key).get(), bad, &unused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("campaign.content.media"));
  v1::UpdateCampaignRequest cleared;  // the send time, which the held messages carry
  cleared.mutable_campaign()->set_name(created.name());
  cleared.mutable_update_mask()->add_paths("send_time");
  s = campaigns->UpdateCampaign(BearerContext(key).get(), cleared, &unused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("campaign.send_time"));

  // New text and price, and a send time a few seconds away.
  const absl::Time soon = absl::Now() + absl::Seconds(5);
  v1::UpdateCampaignRequest update;
  update.mutable_campaign()->set_name(created.name());
  update.mutable_campaign()->mutable_content()->set_text("Early bird, now cheaper");
  update.mutable_campaign()->mutable_content()->set_price_cents(1000);
  update.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(soon));
  *update.mutable_campaign()->mutable_targets() = created.targets();  // named, but the same
  for (const char* path : {"content.text", "content.price_cents", "send_time", "targets"}) {
    update.mutable_update_mask()->add_paths(path);
  }
  v1::Campaign updated;
  s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.state(), v1::Campaign::SCHEDULED);

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << done.state_reason() << stack_->herald().Logs();
  ExpectOneMoreMessageEach(before, accounts);  // the same messages, changed in place
  for (const v1::Delivery& d : DeliveriesOf(key, created.name())) {
    EXPECT_EQ(d.state(), v1::Delivery::COMPLETED) << d.account() << ": " << d.error();
    EXPECT_TRUE(d.error().empty()) << d.error();
    EXPECT_EQ(d.upstream_message_id(), message_of[d.account()]) << d.account();
    const json::value m = LedgerMessage(ShortId(d.account()), d.upstream_message_id());
    ASSERT_TRUE(m.is_object()) << d.account();
    EXPECT_THAT(std::string(m.at("text").as_string()),
                ::testing::HasSubstr("Early bird, now cheaper"));
    EXPECT_EQ(m.at("price").as_string(), "10.00") << d.account();
    EXPECT_GE(m.at("updates").to_number<int64_t>(), 1) << d.account();
    EXPECT_GT(m.at("sent").to_number<int64_t>(), 0) << d.account();
  }
}

// A cancel deletes the messages the upstream holds: nothing reaches a fan.
TEST_P(CampaignTest, CancellingACampaignTheUpstreamHoldsDeletesItsMessages) {
  const std::string key = NewTenant("heldcancel");
  const std::vector<std::string> all = ImportAccounts("heldcancel", key, 2);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  const std::string media = NewMedia("heldcancel", key);
  const v1::Campaign created =
      CreateHeld(key, HeldCampaign("heldcancel", accounts, media, "Not after all",
                                   absl::Now() + absl::Hours(1), absl::Hours(1)));
  ASSERT_FALSE(created.name().empty());
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());

  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  grpc::Status s = campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cancelled.campaign().state(), v1::Campaign::CANCELLED);
  Watch(key, created.name());  // ends once the deletes have finished
  for (const v1::Delivery& d : DeliveriesOf(key, created.name())) {
    EXPECT_EQ(d.state(), v1::Delivery::CANCELLED) << d.account();
    EXPECT_EQ(d.cancel_outcome(), "unsent") << d.account();
    const json::value m = LedgerMessage(ShortId(d.account()), d.upstream_message_id());
    ASSERT_TRUE(m.is_object()) << d.account();
    EXPECT_EQ(m.at("state").as_string(), "canceled") << d.account();
    EXPECT_EQ(m.at("sent").to_number<int64_t>(), 0) << d.account();
  }
  // The figures say so too: an unsent queue has nothing pending, yet reached nobody.
  v1::GetCampaignStatsRequest sreq;
  sreq.set_name(StrCat(created.name(), "/stats"));
  v1::CampaignStats stats;
  s = v1::AnalyticsService::NewStub(stack_->channel())
          ->GetCampaignStats(BearerContext(key).get(), sreq, &stats);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stats.sent(), 0);
  ASSERT_EQ(stats.accounts_size(), 2);
  for (const v1::AccountStats& a : stats.accounts()) EXPECT_EQ(a.sent(), 0) << a.account();
}

// The upstream deletes a message it holds: a delete retried after its answer was lost finds
// nothing (404), and the message is unsent all the same.
TEST_P(CampaignTest, AHeldMessageTheUpstreamNoLongerHasCountsAsUnsent) {
  const std::string key = NewTenant("gone");
  const std::vector<std::string> all = ImportAccounts("gone", key, 1);
  ASSERT_FALSE(all.empty());
  const std::vector<std::string> accounts = {all[0]};
  const std::string media = NewMedia("gone", key);
  const v1::Campaign created =
      CreateHeld(key, HeldCampaign("gone", accounts, media, "Gone already",
                                   absl::Now() + absl::Hours(1), absl::Hours(1)));
  ASSERT_FALSE(created.name().empty());
  auto fault = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/faults",
      StrCat(R"({"methods":["DELETE"],"path_contains":")", ShortId(accounts[0]),
             R"(/mass-messaging","error_rate":1,"error_status":404,"count":1})"));
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");

  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                       ->CancelCampaign(BearerContext(key).get(), cancel, &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  Watch(key, created.name());  // ends once the delete has been answered
  const std::vector<v1::Delivery> deliveries = DeliveriesOf(key, created.name());
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].state(), v1::Delivery::CANCELLED) << deliveries[0].DebugString();
  EXPECT_EQ(deliveries[0].cancel_outcome(), "unsent");
}

// A free text message to `accounts` (no media: nothing single-use that would make the upstream
// refuse a second send on its own).
v1::CreateCampaignRequest TextCampaign(const std::string& tenant,
                                       const std::vector<std::string>& accounts,
                                       const std::string& text) {
  v1::CreateCampaignRequest req = testing::CampaignToFans(tenant, accounts, text, 0, "");
  req.mutable_campaign()->mutable_content()->clear_media();
  return req;
}

// Makes the next two sends of sim team `sim_team` wait three seconds before the simulator acts
// on them.
void SlowNextTwoSends(uint16_t sim_port, std::string_view sim_team) {
  auto fault = testing::HttpRequest(
      sim_port, "POST", "/_sim/faults",
      StrCat(R"({"team":")", sim_team, R"(","methods":["POST"],"path_contains":"/mass-messaging",)",
             R"("latency_ms":{"fixed":3000},"count":2})"));
  EXPECT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
}

// Whether the simulator has answered every upstream call it received.
bool SimAnsweredEverything(uint16_t sim_port) {
  auto stats = testing::ReadSimStats(sim_port);
  return stats.ok() && stats->at("requests").at("in_flight").to_number<int64_t>() == 0;
}

// An update that comes while the sends to the upstream are still unanswered: the new
// generation leaves each delivery to its send, which on landing carries the update on. One
// message per account, with the new text.
TEST_P(CampaignTest, AnUpdateDuringHeldSendsInFlightReachesThemOnceTheyLand) {
  const std::string key = NewTenant("heldslow");
  const std::vector<std::string> all = ImportAccounts("heldslow", key, 2);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  const auto before = LedgerMessages();
  SlowNextTwoSends(stack_->sim().port(), "team-2");
  v1::CreateCampaignRequest req = TextCampaign("heldslow", accounts, "Slow to land");
  req.mutable_campaign()->mutable_send_time()->set_seconds(
      absl::ToUnixSeconds(absl::Now() + absl::Hours(1)));
  req.mutable_campaign()->mutable_upstream_lead()->set_seconds(3600);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &created).ok());
  ASSERT_TRUE(WaitForDeliveries(key, created.name(), v1::Delivery::SENDING))
      << stack_->herald().Logs();

  v1::UpdateCampaignRequest update;
  update.mutable_campaign()->set_name(created.name());
  update.mutable_campaign()->mutable_content()->set_text("Slow to land, and changed");
  update.mutable_update_mask()->add_paths("content.text");
  v1::Campaign updated;
  grpc::Status s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();

  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (const v1::Delivery& d : DeliveriesOf(key, created.name())) {
          if (d.state() != v1::Delivery::SCHEDULED_UPSTREAM) return false;
          const json::value m = LedgerMessage(ShortId(d.account()), d.upstream_message_id());
          if (!m.is_object() ||
              !absl::StrContains(std::string(m.at("text").as_string()), "and changed")) {
            return false;
          }
        }
        return true;
      },
      absl::Seconds(20)))
      << stack_->herald().Logs();
  // Any second send would be on the ledger once the slow ones have been answered.
  ASSERT_TRUE(testing::WaitFor([&] { return SimAnsweredEverything(stack_->sim().port()); }));
  ExpectOneMoreMessageEach(before, accounts);
}

// A pause and resume while sends are unanswered: the resumed generation leaves each delivery to
// its send, and follows the message once it lands. One message per account; the campaign
// completes.
TEST_P(CampaignTest, AResumeWhileSendsAreInFlightSendsOnceAndCompletes) {
  const std::string key = NewTenant("resumeslow");
  const std::vector<std::string> all = ImportAccounts("resumeslow", key, 2);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  const auto before = LedgerMessages();
  SlowNextTwoSends(stack_->sim().port(), "team-2");
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   TextCampaign("resumeslow", accounts, "Paused mid-air"), &created)
                  .ok());
  ASSERT_TRUE(WaitForDeliveries(key, created.name(), v1::Delivery::SENDING))
      << stack_->herald().Logs();
  const auto paused = Pause(key, created.name());
  ASSERT_TRUE(paused.ok()) << paused.status();
  const auto resumed = Resume(key, created.name());
  ASSERT_TRUE(resumed.ok()) << resumed.status();

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << done.state_reason() << stack_->herald().Logs();
  // Any second send would be on the ledger once the slow ones have been answered.
  ASSERT_TRUE(testing::WaitFor([&] { return SimAnsweredEverything(stack_->sim().port()); }));
  ExpectOneMoreMessageEach(before, accounts);
}

// A watch shows what holds its campaign though nothing of the campaign itself changed: its team
// paused (by PauseTeam here, or by the upstream's 402 on another campaign's send), then resumed.
TEST_P(CampaignTest, AWatchShowsItsTeamPausedAndResumed) {
  const std::string key = NewTenant("watchteam");
  const std::vector<std::string> all = ImportAccounts("watchteam", key, 1);
  ASSERT_FALSE(all.empty());
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = TextCampaign("watchteam", {all[0]}, "Tomorrow");
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) +
                                                           86400);
  v1::Campaign created;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &created).ok());
  auto ctx = BearerContext(key, absl::Seconds(60));
  v1::WatchCampaignRequest watch;
  watch.set_name(created.name());
  auto reader = campaigns->WatchCampaign(ctx.get(), watch);
  // Reads the stream until a campaign message whose reason `wanted` accepts.
  auto read_until = [&](const std::function<bool(const std::string&)>& wanted) {
    v1::WatchCampaignResponse update;
    while (reader->Read(&update)) {
      if (update.has_campaign() && wanted(update.campaign().state_reason())) return true;
    }
    return false;
  };
  ASSERT_TRUE(read_until([](const std::string& reason) { return reason.empty(); }));

  auto accounts = v1::AccountService::NewStub(stack_->channel());
  v1::PauseTeamRequest pause;
  pause.set_name("tenants/watchteam/teams/main");
  v1::Team team;
  ASSERT_TRUE(accounts->PauseTeam(BearerContext(key).get(), pause, &team).ok());
  EXPECT_TRUE(read_until([](const std::string& reason) {
    return absl::StrContains(reason, "paused");
  })) << "the pause never showed";
  v1::ResumeTeamRequest resume;
  resume.set_name(pause.name());
  ASSERT_TRUE(accounts->ResumeTeam(BearerContext(key).get(), resume, &team).ok());
  EXPECT_TRUE(read_until([](const std::string& reason) { return reason.empty(); }))
      << "the resume never showed";
  ctx->TryCancel();
  reader->Finish();
}

// A send refused (503, nothing sent) after a pause and resume came while it was unanswered: the
// resumed generation started no chain beside it, so the refused send hands its delivery over
// rather than retrying as a step of the generation before. The campaign completes, one message.
TEST_P(CampaignTest, ASendRefusedAfterAResumeDuringItsCallIsSentByTheResumedCampaign) {
  const std::string key = NewTenant("resumerefused");
  const std::vector<std::string> all = ImportAccounts("resumerefused", key, 2);
  ASSERT_FALSE(all.empty());
  const std::vector<std::string> accounts(all.begin(), all.begin() + 1);
  const auto before = LedgerMessages();
  ASSERT_NO_FATAL_FAILURE(
      AddFault(R"({"team":"team-2","methods":["POST"],"path_contains":"/mass-messaging",)"
               R"("latency_ms":{"fixed":3000},"error_rate":1,"error_status":503,"count":1})"));
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   TextCampaign("resumerefused", accounts, "Refused mid-air"),
                                   &created)
                  .ok());
  ASSERT_TRUE(SlowCallBegun()) << stack_->herald().Logs();
  const auto paused = Pause(key, created.name());
  ASSERT_TRUE(paused.ok()) << paused.status();
  const auto resumed = Resume(key, created.name());
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_FALSE(SimAnsweredEverything(stack_->sim().port())) << "the resume came too late";

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << done.state_reason() << stack_->herald().Logs();
  ExpectOneMoreMessageEach(before, accounts);
}

// A cancel that lands while a retried send looks for its first attempt's message (the first
// attempt's connection reset before the upstream acted on it): the retry finds nothing, reads the
// campaign cancelled as it records its attempt, and sends nothing. The delivery ends CANCELLED
// with nothing sent, and the upstream never had a message from it.
TEST_P(CampaignTest, ACancelDuringARetrysLookupSendsNothing) {
  const std::string key = NewTenant("cancellookup");
  const std::vector<std::string> all = ImportAccounts("cancellookup", key, 2);
  ASSERT_FALSE(all.empty());
  const std::string account = all[0];
  // Every mass message the upstream ever had for the account (its simulator account is shared
  // with other tests' tenants), unsent and deleted ones included.
  const size_t had = LedgerOf(ShortId(account)).size();
  ASSERT_NO_FATAL_FAILURE(
      AddFault(R"({"team":"team-2","methods":["POST"],"path_contains":"/mass-messaging",)"
               R"("reset_rate":1,"count":1})"));
  ASSERT_NO_FATAL_FAILURE(
      AddFault(R"({"team":"team-2","methods":["GET"],"path_contains":"/mass-messag",)"
               R"("latency_ms":{"fixed":3000},"count":1})"));
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   TextCampaign("cancellookup", {account}, "Never out"), &created)
                  .ok());
  // Both rules are used up once the retry's slow lookup has begun.
  ASSERT_TRUE(SlowCallBegun()) << stack_->herald().Logs();
  ASSERT_FALSE(SimAnsweredEverything(stack_->sim().port())) << "the lookup was over too soon";
  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  grpc::Status s = campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::CANCELLED) << done.state_reason();
  const std::vector<v1::Delivery> deliveries = DeliveriesOf(key, created.name());
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].state(), v1::Delivery::CANCELLED);
  EXPECT_EQ(deliveries[0].upstream_message_id(), 0);
  EXPECT_EQ(LedgerOf(ShortId(account)).size(), had) << stack_->herald().Logs();
}

// A cancel that lands while a send is out, which the upstream then refuses (402: out of credits,
// nothing sent): the send step settles the delivery as the cancel asked, CANCELLED with nothing
// sent, though the refusal paused the team (before, it waited on the team's resume).
TEST_P(CampaignTest, ACancelDuringASendTheUpstreamRefusesSettlesItsDelivery) {
  const std::string key = NewTenant("cancelrefused");
  const std::vector<std::string> all = ImportAccounts("cancelrefused", key, 2);
  ASSERT_FALSE(all.empty());
  const std::string account = all[0];
  const size_t had = LedgerOf(ShortId(account)).size();
  ASSERT_NO_FATAL_FAILURE(
      AddFault(R"({"team":"team-2","methods":["POST"],"path_contains":"/mass-messaging",)"
               R"("latency_ms":{"fixed":3000},"error_rate":1,"error_status":402,"count":1})"));
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   TextCampaign("cancelrefused", {account}, "Refused, cancelled"),
                                   &created)
                  .ok());
  ASSERT_TRUE(SlowCallBegun()) << stack_->herald().Logs();
  ASSERT_FALSE(SimAnsweredEverything(stack_->sim().port())) << "the cancel came too late";
  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  grpc::Status s = campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();

  std::vector<v1::Delivery> deliveries;
  ASSERT_TRUE(testing::WaitFor([&] {
    deliveries = DeliveriesOf(key, created.name());
    return deliveries.size() == 1 && deliveries[0].state() == v1::Delivery::CANCELLED;
  })) << (deliveries.empty() ? "" : deliveries[0].DebugString())
      << stack_->herald().Logs();
  EXPECT_EQ(deliveries[0].cancel_outcome(), "nothing sent");
  EXPECT_EQ(deliveries[0].upstream_message_id(), 0);
  EXPECT_EQ(LedgerOf(ShortId(account)).size(), had);
}

// A send that lands after its campaign was cancelled, when the upstream refuses to unsend it (its
// window closed): the message stays out, and the delivery is followed to its end like any sent
// message, not left SENT.
TEST_P(CampaignTest, AMessageThatLandedAfterTheCancelAndStaysOutIsFollowedToItsEnd) {
  const std::string key = NewTenant("landedlate");
  const std::vector<std::string> all = ImportAccounts("landedlate", key, 2);
  ASSERT_FALSE(all.empty());
  const std::vector<std::string> accounts(all.begin(), all.begin() + 1);
  ASSERT_NO_FATAL_FAILURE(
      AddFault(R"({"team":"team-2","methods":["POST"],"path_contains":"/mass-messaging",)"
               R"("latency_ms":{"fixed":3000},"count":1})"));
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   TextCampaign("landedlate", accounts, "Out for good"), &created)
                  .ok());
  ASSERT_TRUE(SlowCallBegun()) << stack_->herald().Logs();
  ASSERT_NO_FATAL_FAILURE(SetUnsendWindowMs(0));
  absl::Cleanup window = [] { SetUnsendWindowMs(60'000); };
  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  grpc::Status s = campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();

  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const std::vector<v1::Delivery> ds = DeliveriesOf(key, created.name());
        return ds.size() == 1 && ds[0].state() == v1::Delivery::COMPLETED;
      },
      absl::Seconds(30)))
      << stack_->herald().Logs();
  const v1::Delivery d = DeliveriesOf(key, created.name())[0];
  EXPECT_THAT(d.cancel_outcome(), ::testing::StartsWith("could not be unsent"))
      << d.cancel_outcome();
  EXPECT_NE(d.upstream_message_id(), 0);
  EXPECT_EQ(GetCampaign(key, created.name()).state(), v1::Campaign::CANCELLED);
}

// A CreateCampaign replayed (the same request_id) after a pause and resume, while a send of the
// campaign is still unanswered: the replay enqueues what the deliveries say is left, and leaves
// the sending delivery to its send. One message.
TEST_P(CampaignTest, ACreateReplayedWhileASendIsInFlightDoesNotSendAgain) {
  const std::string key = NewTenant("replayslow");
  const std::vector<std::string> all = ImportAccounts("replayslow", key, 2);
  ASSERT_FALSE(all.empty());
  const std::vector<std::string> accounts(all.begin(), all.begin() + 1);
  const auto before = LedgerMessages();
  ASSERT_NO_FATAL_FAILURE(
      AddFault(R"({"team":"team-2","methods":["POST"],"path_contains":"/mass-messaging",)"
               R"("latency_ms":{"fixed":3000},"count":1})"));
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = TextCampaign("replayslow", accounts, "Asked for twice");
  req.set_request_id("replay-while-sending");
  v1::Campaign created;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &created).ok());
  ASSERT_TRUE(SlowCallBegun()) << stack_->herald().Logs();
  ASSERT_TRUE(Pause(key, created.name()).ok());
  ASSERT_TRUE(Resume(key, created.name()).ok());
  v1::Campaign replayed;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &replayed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(replayed.name(), created.name());
  ASSERT_FALSE(SimAnsweredEverything(stack_->sim().port())) << "the replay came too late";

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << done.state_reason() << stack_->herald().Logs();
  ASSERT_TRUE(testing::WaitFor([&] { return SimAnsweredEverything(stack_->sim().port()); }));
  ExpectOneMoreMessageEach(before, accounts);
}

// A pause holds what has not gone to the upstream yet; a message the upstream already has is
// followed to its end, and a campaign with nothing left to hold completes without a resume.
// A campaign paused while a send was in flight finishes by itself once that message is out:
// it reads COMPLETED without the pause as its reason, and ResumeCampaign takes it out of the
// paused phase, so that it no longer holds its accounts.
TEST_P(CampaignTest, ACampaignThatFinishesWhilePausedIsFinishedForGood) {
  const std::string key = NewTenant("pausedend");
  const std::vector<std::string> all = ImportAccounts("pausedend", key, 1);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  const std::string slow =
      StrCat(R"({"team":"team-1","methods":["POST"],"path_contains":")", ShortId(accounts[1]),
             R"(/mass-messaging","latency_ms":{"fixed":3000},"count":1})");
  auto fault = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/faults", slow);
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   TextCampaign("pausedend", accounts, "Half in flight"), &created)
                  .ok());
  const bool in_flight = testing::WaitFor([&] {
    const std::vector<v1::Delivery> ds = DeliveriesOf(key, created.name());
    return std::any_of(ds.begin(), ds.end(), [&](const v1::Delivery& d) {
      return d.account() == accounts[1] && d.state() == v1::Delivery::SENDING;
    });
  });
  const auto paused = in_flight ? Pause(key, created.name()) : absl::CancelledError("no send");
  ASSERT_TRUE(in_flight) << stack_->herald().Logs();
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_EQ(paused->state(), v1::Campaign::PAUSED);

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();
  EXPECT_EQ(done.state_reason(), "");
  auto accounts_api = v1::AccountService::NewStub(stack_->channel());
  v1::DeleteAccountRequest remove;
  remove.set_name(accounts[0]);
  v1::DeleteAccountResponse removed;
  const grpc::Status held = accounts_api->DeleteAccount(BearerContext(key).get(), remove, &removed);
  EXPECT_EQ(held.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << held.error_message();

  const auto resumed = Resume(key, created.name());
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->state(), v1::Campaign::COMPLETED);
  EXPECT_EQ(resumed->end_time().seconds(), done.end_time().seconds());
  const grpc::Status freed =
      accounts_api->DeleteAccount(BearerContext(key).get(), remove, &removed);
  EXPECT_TRUE(freed.ok()) << freed.error_message();
}

// A message unsent part-way keeps the recipients it never reached as pending: a cancelled
// delivery never reads as delivered to everyone.
TEST_P(CampaignTest, AnUnsentMessageCountsOnlyTheRecipientsItReached) {
  const std::string key = NewTenant("halfway");
  const std::vector<std::string> accounts = ImportAccounts("halfway", key, 1);
  ASSERT_FALSE(accounts.empty());
  ASSERT_NO_FATAL_FAILURE(SetDeliveryRate(2));
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(
      BearerContext(key).get(), TextCampaign("halfway", {accounts[0]}, "Stopped early"), &created);
  const bool sent = s.ok() && WaitForDeliveries(key, created.name(), v1::Delivery::SENT);
  v1::CancelCampaignResponse cancelled;
  grpc::Status cancel = grpc::Status(grpc::StatusCode::UNKNOWN, "not sent");
  if (sent) {
    v1::CancelCampaignRequest req;
    req.set_name(created.name());
    cancel = campaigns->CancelCampaign(BearerContext(key).get(), req, &cancelled);
  }
  ASSERT_NO_FATAL_FAILURE(SetDeliveryRate(2000));
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(sent) << stack_->herald().Logs();
  ASSERT_TRUE(cancel.ok()) << cancel.error_message();
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::CANCELLED);

  const std::vector<v1::Delivery> deliveries = DeliveriesOf(key, created.name());
  ASSERT_EQ(deliveries.size(), 1u);
  const v1::Delivery& d = deliveries[0];
  EXPECT_EQ(d.state(), v1::Delivery::CANCELLED) << d.cancel_outcome();
  const json::value message = LedgerMessage(ShortId(accounts[0]), d.upstream_message_id());
  ASSERT_TRUE(message.is_object()) << d.upstream_message_id();
  EXPECT_EQ(message.at("state").as_string(), "canceled");
  const int64_t reached = message.at("sent").to_number<int64_t>();
  EXPECT_GT(d.recipients_pending(), 0);
  EXPECT_EQ(d.recipients() - d.recipients_pending(), reached)
      << d.recipients() << " recipients, " << d.recipients_pending() << " pending";
  EXPECT_EQ(done.delivery_counts().recipients_pending(), d.recipients_pending());
}

// A message someone takes back on the upstream itself (the creator, another client of the key)
// ends its delivery CANCELLED saying so, and the campaign, which has nothing else, ends FAILED
// with that as its reason, not without one.
TEST_P(CampaignTest, AMessageUnsentOutsideHeraldSaysSoOnTheCampaign) {
  const std::string key = NewTenant("unsentelsewhere");
  const std::vector<std::string> accounts = ImportAccounts("unsentelsewhere", key, 2);
  ASSERT_FALSE(accounts.empty());
  ASSERT_NO_FATAL_FAILURE(SetDeliveryRate(2));  // a message takes a while to reach its fans
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(
      BearerContext(key).get(), TextCampaign("unsentelsewhere", {accounts[0]}, "Taken back"),
      &created);
  const bool sent = s.ok() && WaitForDeliveries(key, created.name(), v1::Delivery::SENT);
  std::vector<v1::Delivery> deliveries =
      sent ? DeliveriesOf(key, created.name()) : std::vector<v1::Delivery>();
  absl::StatusOr<testing::HttpResponse> unsent = absl::CancelledError("not sent");
  if (deliveries.size() == 1) {
    unsent = testing::HttpRequest(stack_->sim().port(), "DELETE",
                                  StrCat("/api/", ShortId(accounts[0]), "/mass-messaging/",
                                         deliveries[0].upstream_message_id()),
                                  "", {{"Authorization", "Bearer sim-key-2"}});
  }
  ASSERT_NO_FATAL_FAILURE(SetDeliveryRate(2000));
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(sent) << stack_->herald().Logs();
  ASSERT_TRUE(unsent.ok() && unsent->status == 200)
      << (unsent.ok() ? unsent->body : unsent.status().ToString());

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::FAILED);
  EXPECT_THAT(done.state_reason(), ::testing::HasSubstr("unsent on the upstream, not by Herald"));
  deliveries = DeliveriesOf(key, created.name());
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].state(), v1::Delivery::CANCELLED);
  EXPECT_EQ(deliveries[0].cancel_outcome(), "unsent on the upstream, not by Herald");
}

// A pause holds the deliveries that have not reached the upstream, and follows the messages
// already out to their end. With nothing left to hold, a pause is refused: it would say PAUSED
// while the upstream delivers.
TEST_P(CampaignTest, APausedCampaignFollowsTheMessagesAlreadySentToTheirEnd) {
  const std::string key = NewTenant("pausesent");
  const std::vector<std::string> accounts = ImportAccounts("pausesent", key, 2);
  ASSERT_GE(accounts.size(), 2u);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());

  // Every delivery out: nothing to hold.
  ASSERT_NO_FATAL_FAILURE(SetDeliveryRate(2));  // a message takes a while to reach its fans
  v1::Campaign alone;
  grpc::Status s = campaigns->CreateCampaign(
      BearerContext(key).get(), TextCampaign("pausesent", {accounts[0]}, "All out"), &alone);
  const bool alone_sent = s.ok() && WaitForDeliveries(key, alone.name(), v1::Delivery::SENT);
  const auto refused = alone_sent ? Pause(key, alone.name()) : absl::CancelledError("not sent");

  // One delivery out, one held by its account's pause: the campaign pause holds the second.
  ASSERT_NO_FATAL_FAILURE(SetAccountPaused(key, accounts[1], true));
  v1::Campaign created;
  s = campaigns->CreateCampaign(BearerContext(key).get(),
                                TextCampaign("pausesent", {accounts[0], accounts[1]}, "Half out"),
                                &created);
  const bool first_sent = s.ok() && testing::WaitFor([&] {
                            const std::vector<v1::Delivery> all = DeliveriesOf(key, created.name());
                            return std::any_of(all.begin(), all.end(), [](const v1::Delivery& d) {
                              return d.state() == v1::Delivery::SENT;
                            });
                          });
  const auto paused = first_sent ? Pause(key, created.name()) : absl::CancelledError("not sent");
  ASSERT_NO_FATAL_FAILURE(SetDeliveryRate(2000));
  ASSERT_TRUE(alone_sent) << stack_->herald().Logs();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("holds nothing"));
  const v1::Campaign alone_done = Watch(key, alone.name());
  EXPECT_EQ(alone_done.state(), v1::Campaign::COMPLETED) << alone_done.state_reason();

  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(first_sent) << stack_->herald().Logs();
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_EQ(paused->state(), v1::Campaign::PAUSED);
  // The message already out is followed to its end while the campaign stays paused.
  ASSERT_TRUE(testing::WaitFor([&] {
    const std::vector<v1::Delivery> all = DeliveriesOf(key, created.name());
    return std::any_of(all.begin(), all.end(),
                       [](const v1::Delivery& d) { return d.state() == v1::Delivery::COMPLETED; });
  })) << stack_->herald().Logs();
  EXPECT_EQ(GetCampaign(key, created.name()).state(), v1::Campaign::PAUSED);

  ASSERT_NO_FATAL_FAILURE(SetAccountPaused(key, accounts[1], false));
  ASSERT_TRUE(Resume(key, created.name()).ok());
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();
  for (const v1::Delivery& d : DeliveriesOf(key, created.name())) {
    EXPECT_EQ(d.state(), v1::Delivery::COMPLETED) << d.account();
    EXPECT_EQ(d.recipients_pending(), 0) << d.account();
  }
}

// A send the upstream refuses for want of credits sent nothing: cancelled while its team waits,
// the delivery is cancelled at once, with nothing reported as left undone.
TEST_P(CampaignTest, ACancelWhileTheTeamWaitsForCreditsSettlesAtOnce) {
  const std::string tenant = "unpaidcancel";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  auto teams = v1::AccountService::NewStub(stack_->channel());
  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 0));
  v1::Campaign created;
  const grpc::Status s = campaigns->CreateCampaign(
      BearerContext(key).get(), TextCampaign(tenant, {accounts[0]}, "Unpaid"), &created);
  v1::GetTeamRequest get_team;
  get_team.set_name(StrCat("tenants/", tenant, "/teams/main"));
  v1::Team team;
  const bool paused =
      s.ok() && testing::WaitFor([&] {
        return teams->GetTeam(BearerContext(key).get(), get_team, &team).ok() && team.paused();
      });
  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 1000000000));
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(paused) << stack_->herald().Logs();

  v1::CancelCampaignRequest cancel;
  cancel.set_name(created.name());
  v1::CancelCampaignResponse cancelled;
  const grpc::Status c = campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled);
  ASSERT_TRUE(c.ok()) << c.error_message();
  EXPECT_EQ(cancelled.not_undone_size(), 0)
      << cancelled.not_undone(0).account() << ": " << cancelled.not_undone(0).cancel_outcome();
  EXPECT_EQ(Watch(key, created.name()).state(), v1::Campaign::CANCELLED);
  for (const v1::Delivery& d : DeliveriesOf(key, created.name())) {
    EXPECT_EQ(d.state(), v1::Delivery::CANCELLED) << d.account();
    EXPECT_EQ(d.upstream_message_id(), 0) << d.account();
  }
  v1::ResumeTeamRequest resume;
  resume.set_name(get_team.name());
  EXPECT_TRUE(teams->ResumeTeam(BearerContext(key).get(), resume, &team).ok());
}

// How many delivery_send jobs the stack's herald has finished with `outcome`.
int64_t SendJobsFinished(HeraldStack& stack, std::string_view outcome) {
  auto metrics = testing::HttpGet(stack.herald().admin_port(), "/metrics");
  if (!metrics.ok()) return -1;
  const std::string series =
      StrCat("herald_jobs_total{kind=\"delivery_send\",outcome=\"", outcome, "\"}");
  return static_cast<int64_t>(testing::SeriesValue(metrics->body, series).value_or(0));
}

// A send whose answer is lost while its campaign is paused: its retry finds the campaign paused,
// and the resume starts no chain beside an unanswered send. The step waits, looking again, until
// the resumed campaign takes the delivery over, finds the message and completes: one message.
TEST_P(CampaignTest, ASendWhoseAnswerIsLostDuringAPauseCompletesOnceResumed) {
  const std::string key = NewTenant("pauselost");
  const std::vector<std::string> all = ImportAccounts("pauselost", key, 2);
  ASSERT_FALSE(all.empty());
  const std::vector<std::string> accounts(all.begin(), all.begin() + 1);
  const auto before = LedgerMessages();
  const int64_t finished_before = SendJobsFinished(*stack_, "ok");
  auto fault = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/faults",
      R"({"team":"team-2","methods":["POST"],"path_contains":"/mass-messaging",)"
      R"("latency_ms":{"fixed":1500},"commit_then_lose_rate":1,"count":1})");
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   TextCampaign("pauselost", accounts, "Lost while paused"),
                                   &created)
                  .ok());
  ASSERT_TRUE(WaitForDeliveries(key, created.name(), v1::Delivery::SENDING))
      << stack_->herald().Logs();
  const auto paused = Pause(key, created.name());
  ASSERT_TRUE(paused.ok()) << paused.status();
  // The send's retry has run, and found the campaign paused.
  ASSERT_TRUE(testing::WaitFor([&] { return SendJobsFinished(*stack_, "ok") > finished_before; },
                               absl::Seconds(30)))
      << stack_->herald().Logs();
  const auto resumed = Resume(key, created.name());
  ASSERT_TRUE(resumed.ok()) << resumed.status();

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED)
      << done.state_reason() << stack_->herald().Logs();
  ExpectOneMoreMessageEach(before, accounts);
}

// A held send whose response was lost is found on the upstream's queue (the overview does not
// list messages that have not started) and adopted, not sent again.
TEST_P(CampaignTest, AHeldSendWhoseResponseWasLostIsFoundOnTheUpstreamQueue) {
  const std::string key = NewTenant("heldlost");
  const std::vector<std::string> all = ImportAccounts("heldlost", key, 2);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  const std::string media = NewMedia("heldlost", key);
  const auto before = LedgerMessages();
  auto fault = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/faults",
      R"({"team":"team-2","methods":["POST"],"path_contains":"/mass-messaging",)"
      R"("commit_then_lose_rate":1,"count":2})");
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  ASSERT_FALSE(CreateHeld(key, HeldCampaign("heldlost", accounts, media, "Found again",
                                            absl::Now() + absl::Hours(1), absl::Hours(1)))
                   .name()
                   .empty());
  auto faults = testing::HttpGet(stack_->sim().port(), "/_sim/faults");
  ASSERT_TRUE(faults.ok()) << faults.status();
  EXPECT_EQ(faults->body, "[]") << "both sends lost their responses";
  ExpectOneMoreMessageEach(before, accounts);
}

// The upstream sends held messages at the send time even while Herald is down; Herald, back,
// finds the campaign sent, not missed.
TEST_P(CampaignTest, HeldMessagesGoOutOnTimeWhileHeraldIsStopped) {
  const std::string key = NewTenant("heldaway");
  const std::vector<std::string> all = ImportAccounts("heldaway", key, 1);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  const std::string media = NewMedia("heldaway", key);
  const auto before = LedgerMessages();
  v1::CreateCampaignRequest req = HeldCampaign("heldaway", accounts, media, "On time anyway",
                                               absl::Now() + absl::Seconds(4), absl::Hours(1));
  req.mutable_campaign()->mutable_grace_period()->set_seconds(1);
  const v1::Campaign created = CreateHeld(key, req);
  ASSERT_FALSE(created.name().empty());

  stack_->herald().process().Signal(SIGSTOP);
  const absl::Time send_time = absl::FromUnixSeconds(created.send_time().seconds());
  const bool waited = testing::WaitFor([&] { return absl::Now() > send_time + absl::Seconds(2); },
                                       absl::Seconds(15));
  stack_->herald().process().Signal(SIGCONT);
  ASSERT_TRUE(waited);

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();
  ExpectOneMoreMessageEach(before, accounts);
}

TEST_P(CampaignTest, ScheduleThatCameDueWhileHeraldWasStoppedIsMissedNotSentLate) {
  const std::string key = NewTenant("missed");
  const std::vector<std::string> accounts = ImportAccounts("missed", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("missed", key);
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = PpvCampaign("missed", {accounts[0]}, media, "Too late");
  const absl::Time due = absl::Now() + absl::Seconds(1);
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(due) + 1);
  req.mutable_campaign()->mutable_grace_period()->set_seconds(1);
  v1::Campaign created;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &created).ok());

  // Herald stops (as if down) across the send time and the grace period after it.
  stack_->herald().process().Signal(SIGSTOP);
  const absl::Time send_time = absl::FromUnixSeconds(created.send_time().seconds());
  const bool waited = testing::WaitFor([&] { return absl::Now() > send_time + absl::Seconds(2); },
                                       absl::Seconds(10));
  stack_->herald().process().Signal(SIGCONT);
  ASSERT_TRUE(waited);

  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::MISSED) << done.state_reason();
  EXPECT_NE(done.state_reason().find("grace period"), std::string::npos) << done.state_reason();
  // No delivery of a final campaign is left pending: each failed, saying why.
  ASSERT_TRUE(WaitForDeliveries(key, created.name(), v1::Delivery::FAILED))
      << stack_->herald().Logs();
  for (const v1::Delivery& d : DeliveriesOf(key, created.name())) {
    EXPECT_THAT(d.error(), ::testing::HasSubstr("grace period")) << d.account();
  }
  EXPECT_EQ(LedgerMessages(), before);
}

TEST_P(CampaignTest, ASendTimeThatPassedBeyondGraceIsNotSentOnResumeOrLaunch) {
  const std::string key = NewTenant("stale");
  const std::vector<std::string> accounts = ImportAccounts("stale", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("stale", key);
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  const absl::Time send_time = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + 3);
  auto make = [&](const std::string& text, bool draft) {
    v1::CreateCampaignRequest req = PpvCampaign("stale", {accounts[0]}, media, text);
    req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(send_time));
    req.mutable_campaign()->mutable_grace_period()->set_seconds(1);
    req.mutable_campaign()->set_save_as_draft(draft);
    v1::Campaign created;
    grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return created;
  };
  const v1::Campaign draft = make("Saved", true);
  const v1::Campaign scheduled = make("Held", false);
  ASSERT_TRUE(Pause(key, scheduled.name()).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return absl::Now() > send_time + absl::Seconds(2); },
                               absl::Seconds(10)));

  // Launching the draft now would send it beyond its grace period: refused, nothing changes.
  v1::LaunchCampaignRequest launch;
  launch.set_name(draft.name());
  v1::Campaign launched;
  grpc::Status s = campaigns->LaunchCampaign(BearerContext(key).get(), launch, &launched);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("campaign.send_time passed"));
  const v1::Campaign still = GetCampaign(key, draft.name());
  EXPECT_EQ(still.state(), v1::Campaign::DRAFT);

  // Resuming the campaign paused before it went out: missed, as a schedule Herald could not keep.
  auto resumed = Resume(key, scheduled.name());
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->state(), v1::Campaign::MISSED);
  EXPECT_THAT(resumed->state_reason(), ::testing::HasSubstr("grace period"));
  EXPECT_EQ(Watch(key, scheduled.name()).state(), v1::Campaign::MISSED);
  // Its deliveries end with it, as the scheduler's missed campaigns' do: none is left pending.
  EXPECT_EQ(resumed->delivery_counts().failed(), 1);
  EXPECT_EQ(resumed->delivery_counts().pending(), 0);
  for (const v1::Delivery& d : DeliveriesOf(key, scheduled.name())) {
    EXPECT_EQ(d.state(), v1::Delivery::FAILED) << d.account();
    EXPECT_THAT(d.error(), ::testing::HasSubstr("grace period")) << d.account();
  }
  EXPECT_EQ(LedgerMessages(), before);
}

// A scheduled delivery held by its account's pause past the grace period is missed when the
// account resumes, not sent late; the campaign's other accounts went out on time.
TEST_P(CampaignTest, ADeliveryHeldByAnAccountPausePastGraceIsMissedNotSentLate) {
  const std::string key = NewTenant("heldpause");
  const std::vector<std::string> all = ImportAccounts("heldpause", key, 1);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  v1::Account paused;
  ASSERT_NO_FATAL_FAILURE(SetAccountPaused(key, accounts[1], true, &paused));
  EXPECT_TRUE(paused.has_pause_time());
  EXPECT_FALSE(paused.has_resume_time());
  const auto before = LedgerMessages();

  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::CreateCampaignRequest req = TextCampaign("heldpause", accounts, "On time or not at all");
  const absl::Duration grace = absl::Seconds(3);
  const absl::Time send_time = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + 2);
  req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(send_time));
  req.mutable_campaign()->mutable_grace_period()->set_seconds(absl::ToInt64Seconds(grace));
  v1::Campaign created;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &created).ok());
  // The first account's delivery goes out at the send time; the paused one's waits. The pause
  // is to outlast the grace period plainly: one ending in the deadline's own millisecond did not.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const std::vector<v1::Delivery> ds = DeliveriesOf(key, created.name());
        return absl::Now() > send_time + grace + absl::Milliseconds(100) &&
               std::any_of(ds.begin(), ds.end(), [](const v1::Delivery& d) {
                 return d.state() == v1::Delivery::COMPLETED;
               });
      },
      absl::Seconds(20)))
      << stack_->herald().Logs();

  v1::Account resumed;
  ASSERT_NO_FATAL_FAILURE(SetAccountPaused(key, accounts[1], false, &resumed));
  // The account says when its pause began and ended, as the delivery's error will.
  EXPECT_EQ(resumed.pause_time().seconds(), paused.pause_time().seconds());
  ASSERT_GT(absl::FromUnixSeconds(resumed.resume_time().seconds()) +
                absl::Nanoseconds(resumed.resume_time().nanos()),
            send_time + grace);
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::PARTIALLY_FAILED) << done.state_reason();
  for (const v1::Delivery& d : DeliveriesOf(key, created.name())) {
    if (d.account() == accounts[0]) {
      EXPECT_EQ(d.state(), v1::Delivery::COMPLETED) << d.error();
    } else {
      EXPECT_EQ(d.state(), v1::Delivery::FAILED) << stack_->herald().Logs();
      EXPECT_THAT(d.error(), ::testing::HasSubstr("missed: its account was paused from "));
      EXPECT_THAT(d.error(), ::testing::HasSubstr("nothing was sent to this account"));
      EXPECT_EQ(d.upstream_message_id(), 0);
    }
  }
  // The failed delivery is what a filter on FAILED lists; a page token serves its own filter.
  const auto list = [&](std::vector<v1::Delivery::State> states, int page_size,
                        const std::string& token, v1::ListDeliveriesResponse* out) {
    v1::ListDeliveriesRequest lreq;
    lreq.set_parent(created.name());
    for (const v1::Delivery::State state : states) lreq.add_states(state);
    lreq.set_page_size(page_size);
    lreq.set_page_token(token);
    return campaigns->ListDeliveries(BearerContext(key).get(), lreq, out);
  };
  v1::ListDeliveriesResponse failed;
  ASSERT_TRUE(list({v1::Delivery::FAILED}, 0, "", &failed).ok());
  ASSERT_EQ(failed.deliveries_size(), 1);
  EXPECT_EQ(failed.deliveries(0).account(), accounts[1]);
  v1::ListDeliveriesResponse first;
  ASSERT_TRUE(list({v1::Delivery::COMPLETED, v1::Delivery::FAILED}, 1, "", &first).ok());
  ASSERT_EQ(first.deliveries_size(), 1);
  ASSERT_FALSE(first.next_page_token().empty());
  v1::ListDeliveriesResponse second;
  ASSERT_TRUE(
      list({v1::Delivery::FAILED, v1::Delivery::COMPLETED}, 1, first.next_page_token(), &second)
          .ok());
  ASSERT_EQ(second.deliveries_size(), 1);
  EXPECT_NE(second.deliveries(0).account(), first.deliveries(0).account());
  v1::ListDeliveriesResponse refused;
  EXPECT_EQ(list({v1::Delivery::FAILED}, 1, first.next_page_token(), &refused).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(list({}, 1, first.next_page_token(), &refused).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(list({v1::Delivery::STATE_UNSPECIFIED}, 0, "", &refused).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(list({static_cast<v1::Delivery::State>(99)}, 0, "", &refused).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  ExpectOneMoreMessageEach(before, {accounts[0]});
  const auto after = LedgerMessages();
  const std::string paused_id = ShortId(accounts[1]);
  EXPECT_EQ(after.contains(paused_id) ? after.at(paused_id) : 0,
            before.contains(paused_id) ? before.at(paused_id) : 0);
}

// The same for a team the upstream paused (out of credits) before the grace period ended and
// resumed after it: the delivery it held is missed, whether the refusal came before any send
// (the media upload of a PPV message) or on the send itself (a text message, whose send attempt
// is on record: the upstream is looked at first, and holds nothing).
TEST_P(CampaignTest, ADeliveryHeldByATeamPausePastGraceIsMissedNotSentLate) {
  struct Case {
    std::string tenant;
    int sim_team;
    bool ppv;
    std::string key;
    v1::Campaign campaign;
    v1::Team team;
  };
  std::vector<Case> cases = {{.tenant = "heldppv", .sim_team = 1, .ppv = true},
                             {.tenant = "heldtext", .sim_team = 2, .ppv = false}};
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  auto teams = v1::AccountService::NewStub(stack_->channel());
  const absl::Duration grace = absl::Seconds(3);
  const absl::Time send_time = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + 3);
  const auto before = LedgerMessages();
  for (Case& c : cases) {
    c.key = NewTenant(c.tenant);
    const std::vector<std::string> accounts = ImportAccounts(c.tenant, c.key, c.sim_team);
    ASSERT_FALSE(accounts.empty());
    ASSERT_NO_FATAL_FAILURE(SetCredits(StrCat("team-", c.sim_team), 0));
    v1::CreateCampaignRequest req =
        c.ppv ? PpvCampaign(c.tenant, {accounts[0]}, NewMedia(c.tenant, c.key), "Now or never")
              : TextCampaign(c.tenant, {accounts[0]}, "Now or never");
    req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(send_time));
    req.mutable_campaign()->mutable_grace_period()->set_seconds(absl::ToInt64Seconds(grace));
    ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(c.key).get(), req, &c.campaign).ok());
  }
  // Each team's first call is refused for want of credits, which pauses it; the pauses outlast
  // the grace period, plainly (one ending in the deadline's own millisecond did not).
  const auto team_name = [](const Case& c) { return StrCat("tenants/", c.tenant, "/teams/main"); };
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        if (absl::Now() <= send_time + grace + absl::Milliseconds(100)) return false;
        for (Case& c : cases) {
          v1::GetTeamRequest get;
          get.set_name(team_name(c));
          if (!teams->GetTeam(BearerContext(c.key).get(), get, &c.team).ok() || !c.team.paused()) {
            return false;
          }
        }
        return true;
      },
      absl::Seconds(30)))
      << stack_->herald().Logs();

  for (Case& c : cases) {
    SCOPED_TRACE(c.tenant);
    ASSERT_NO_FATAL_FAILURE(SetCredits(StrCat("team-", c.sim_team), 1000000000));
    const google::protobuf::Timestamp pause_time = c.team.pause_time();
    EXPECT_GT(pause_time.seconds(), 0);
    EXPECT_FALSE(c.team.has_resume_time());
    v1::ResumeTeamRequest resume;
    resume.set_name(team_name(c));
    ASSERT_TRUE(teams->ResumeTeam(BearerContext(c.key).get(), resume, &c.team).ok());
    EXPECT_EQ(c.team.pause_time().seconds(), pause_time.seconds());
    EXPECT_GE(c.team.resume_time().seconds(), absl::ToUnixSeconds(send_time + grace));
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.tenant);
    const v1::Campaign done = Watch(c.key, c.campaign.name());
    EXPECT_EQ(done.state(), v1::Campaign::FAILED) << done.state_reason();
    const std::vector<v1::Delivery> deliveries = DeliveriesOf(c.key, c.campaign.name());
    ASSERT_EQ(deliveries.size(), 1u);
    EXPECT_EQ(deliveries[0].state(), v1::Delivery::FAILED);
    EXPECT_THAT(deliveries[0].error(),
                ::testing::HasSubstr("missed: its team 'main' was paused from "));
    EXPECT_EQ(deliveries[0].upstream_message_id(), 0);
  }
  EXPECT_EQ(LedgerMessages(), before);
}

// A send the upstream refuses (out of credits) leaves SENDING; a watcher is told, though the
// delivery goes back to the state it had rather than on to a new one.
TEST_P(CampaignTest, AWatcherSeesASendRefusedForCreditsLeaveSending) {
  const std::string key = NewTenant("refused");
  const std::vector<std::string> accounts = ImportAccounts("refused", key, 1);
  ASSERT_FALSE(accounts.empty());
  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 0));
  // The send is held three seconds before it is refused: the watcher sees it under way.
  SlowNextTwoSends(stack_->sim().port(), "team-1");
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   TextCampaign("refused", {accounts[0]}, "Credit check"), &created)
                  .ok());
  auto ctx = BearerContext(key, absl::Seconds(30));
  v1::WatchCampaignRequest req;
  req.set_name(created.name());
  auto reader = campaigns->WatchCampaign(ctx.get(), req);
  std::vector<v1::Delivery::State> seen;
  v1::WatchCampaignResponse update;
  while (reader->Read(&update)) {
    if (!update.has_delivery()) continue;
    if (seen.empty() || seen.back() != update.delivery().state()) {
      seen.push_back(update.delivery().state());
    }
    if (std::find(seen.begin(), seen.end(), v1::Delivery::SENDING) != seen.end() &&
        seen.back() != v1::Delivery::SENDING) {
      break;
    }
  }
  ctx->TryCancel();
  reader->Finish();
  ASSERT_GE(seen.size(), 2u) << stack_->herald().Logs();
  EXPECT_EQ(seen[seen.size() - 2], v1::Delivery::SENDING);
  EXPECT_EQ(seen.back(), v1::Delivery::PENDING);
  const std::vector<v1::Delivery> now = DeliveriesOf(key, created.name());
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].state(), v1::Delivery::PENDING);
  EXPECT_GT(now[0].update_time().seconds(), 0);
}

TEST_P(CampaignTest, OutOfCreditsPausesTheTeamUntilResumed) {
  const std::string key = NewTenant("broke");
  const std::vector<std::string> all = ImportAccounts("broke", key, 1);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  const std::string media = NewMedia("broke", key);
  const auto before = LedgerMessages();
  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 0));

  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  auto teams = v1::AccountService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   PpvCampaign("broke", accounts, media, "Pay day"), &created)
                  .ok());
  v1::GetTeamRequest get_team;
  get_team.set_name("tenants/broke/teams/main");
  v1::Team team;
  ASSERT_TRUE(testing::WaitFor([&] {
    return teams->GetTeam(BearerContext(key).get(), get_team, &team).ok() && team.paused();
  }));
  EXPECT_NE(team.pause_reason().find("credits"), std::string::npos) << team.pause_reason();
  // The paused team shows in herald_teams_paused (alert HeraldTeamsPaused) while it lasts.
  const auto paused_teams = [&] {
    auto metrics = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
    return metrics.ok()
               ? testing::SeriesValue(metrics->body, "herald_teams_paused{tenant=\"broke\"}")
               : std::nullopt;
  };
  EXPECT_TRUE(testing::WaitFor([&] { return paused_teams() == 1; })) << paused_teams().value_or(-1);
  const v1::Campaign held = GetCampaign(key, created.name());
  EXPECT_FALSE(held.state() == v1::Campaign::COMPLETED || held.state() == v1::Campaign::FAILED);
  EXPECT_NE(held.state_reason().find("out of credits"), std::string::npos) << held.state_reason();

  // A campaign created meanwhile says in its answer which team holds it up (and, cancelled
  // before its send time, sends nothing).
  v1::CreateCampaignRequest later = PpvCampaign("broke", accounts, media, "Later");
  later.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) +
                                                             3600);
  v1::Campaign scheduled;
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), later, &scheduled).ok());
  EXPECT_EQ(scheduled.state(), v1::Campaign::SCHEDULED);
  EXPECT_NE(scheduled.state_reason().find("team 'main' is paused"), std::string::npos)
      << scheduled.state_reason();
  v1::CancelCampaignRequest cancel;
  cancel.set_name(scheduled.name());
  v1::CancelCampaignResponse cancelled;
  ASSERT_TRUE(campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled).ok());
  EXPECT_EQ(LedgerMessages(), before);

  // Paused with PauseTeam as well: the agency's pause is nothing to alert on, and it says so.
  v1::PauseTeamRequest pause;
  pause.set_name("tenants/broke/teams/main");
  ASSERT_TRUE(teams->PauseTeam(BearerContext(key).get(), pause, &team).ok());
  EXPECT_TRUE(team.paused_on_request());
  EXPECT_THAT(team.pause_reason(), ::testing::HasSubstr("PauseTeam"));
  EXPECT_TRUE(testing::WaitFor([&] { return paused_teams() == 0; })) << paused_teams().value_or(-1);

  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 1000000000));
  v1::ResumeTeamRequest resume;
  resume.set_name("tenants/broke/teams/main");
  ASSERT_TRUE(teams->ResumeTeam(BearerContext(key).get(), resume, &team).ok());
  EXPECT_FALSE(team.paused());
  EXPECT_TRUE(testing::WaitFor([&] { return paused_teams() == 0; })) << paused_teams().value_or(-1);
  EXPECT_EQ(Watch(key, created.name()).state(), v1::Campaign::COMPLETED);
  ExpectOneMoreMessageEach(before, accounts);
}

// PauseTeam holds every call of the team's accounts until ResumeTeam; here it comes on top of
// Herald's own pause for a refused key, which a new key then does not end. The campaign it
// holds says so, then sends one message per account.
TEST_P(CampaignTest, APausedTeamHoldsItsCampaignsUntilResumed) {
  const std::string tenant = "held";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> all = ImportAccounts(tenant, key, 1);
  ASSERT_GE(all.size(), 2u);
  const std::vector<std::string> accounts(all.begin(), all.begin() + 2);
  const auto before = LedgerMessages();
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  auto teams = v1::AccountService::NewStub(stack_->channel());
  const std::string team_name = StrCat("tenants/", tenant, "/teams/main");
  const auto set_key = [&](const std::string& upstream_key, v1::Team* team) {
    v1::UpdateTeamRequest update;
    update.mutable_team()->set_name(team_name);
    update.mutable_team()->set_upstream_api_key(upstream_key);
    update.mutable_update_mask()->add_paths("upstream_api_key");
    const grpc::Status s = teams->UpdateTeam(BearerContext(key).get(), update, team);
    ASSERT_TRUE(s.ok()) << s.error_message();
  };

  // The upstream refuses the team's key: Herald pauses the team.
  v1::Team team;
  ASSERT_NO_FATAL_FAILURE(set_key("revoked-upstream-key", &team));
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   TextCampaign(tenant, accounts, "After the pause"), &created)
                  .ok());
  v1::GetTeamRequest get_team;
  get_team.set_name(team_name);
  ASSERT_TRUE(testing::WaitFor([&] {
    return teams->GetTeam(BearerContext(key).get(), get_team, &team).ok() && team.api_key_invalid();
  })) << stack_->herald().Logs();
  ASSERT_TRUE(team.paused());
  EXPECT_FALSE(team.paused_on_request());

  // The agency pauses it too: twice, the same pause.
  v1::PauseTeamRequest pause;
  pause.set_name(team_name);
  v1::Team paused;
  ASSERT_TRUE(teams->PauseTeam(BearerContext(key).get(), pause, &paused).ok());
  EXPECT_TRUE(paused.paused());
  EXPECT_TRUE(paused.paused_on_request());
  EXPECT_THAT(paused.pause_reason(), ::testing::HasSubstr("PauseTeam"));
  EXPECT_EQ(paused.pause_time().seconds(), team.pause_time().seconds());
  EXPECT_EQ(paused.pause_time().nanos(), team.pause_time().nanos());
  v1::Team again;
  ASSERT_TRUE(teams->PauseTeam(BearerContext(key).get(), pause, &again).ok());
  EXPECT_TRUE(again.paused_on_request());
  EXPECT_EQ(again.pause_time().nanos(), paused.pause_time().nanos());

  // A good key clears the refusal but not the agency's pause.
  v1::Team rekeyed;
  ASSERT_NO_FATAL_FAILURE(set_key("sim-key-1", &rekeyed));
  EXPECT_FALSE(rekeyed.api_key_invalid());
  EXPECT_TRUE(rekeyed.paused());
  EXPECT_THAT(GetCampaign(key, created.name()).state_reason(),
              ::testing::HasSubstr("team 'main' is paused: paused with PauseTeam"));
  // A test message is refused at once rather than held.
  v1::SendTestMessageRequest test_message;
  test_message.set_campaign(created.name());
  test_message.set_account(accounts[0]);
  test_message.add_fan_ids(SomeFan(ShortId(accounts[0])));
  v1::SendTestMessageResponse sent;
  const grpc::Status refused =
      campaigns->SendTestMessage(BearerContext(key).get(), test_message, &sent);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << refused.error_message();
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("team 'main' is paused"));
  EXPECT_EQ(LedgerMessages(), before);

  v1::ResumeTeamRequest resume;
  resume.set_name(team_name);
  v1::Team resumed;
  ASSERT_TRUE(teams->ResumeTeam(BearerContext(key).get(), resume, &resumed).ok());
  EXPECT_FALSE(resumed.paused());
  EXPECT_FALSE(resumed.paused_on_request());
  EXPECT_TRUE(resumed.pause_reason().empty()) << resumed.pause_reason();
  const v1::Campaign done = Watch(key, created.name());
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason();
  ExpectOneMoreMessageEach(before, accounts);
}

TEST_P(CampaignTest, ATeamDeletedWhilePausedAndCreatedAgainSends) {
  const std::string tenant = "reborn";
  const std::string key = NewTenant(tenant);
  std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia(tenant, key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  auto teams = v1::AccountService::NewStub(stack_->channel());

  // Out of credits: the team is paused, and its campaign cancelled.
  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 0));
  v1::Campaign held;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   PpvCampaign(tenant, {accounts[0]}, media, "Unpaid"), &held)
                  .ok());
  v1::GetTeamRequest get_team;
  get_team.set_name(StrCat("tenants/", tenant, "/teams/main"));
  v1::Team team;
  ASSERT_TRUE(testing::WaitFor([&] {
    return teams->GetTeam(BearerContext(key).get(), get_team, &team).ok() && team.paused();
  }));
  v1::CancelCampaignRequest cancel;
  cancel.set_name(held.name());
  v1::CancelCampaignResponse cancelled;
  ASSERT_TRUE(campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled).ok());
  ASSERT_EQ(Watch(key, held.name()).state(), v1::Campaign::CANCELLED);

  // The team goes, accounts first, and comes back under the same id with credits.
  for (const std::string& account : accounts) {
    v1::DeleteAccountRequest remove;
    remove.set_name(account);
    v1::DeleteAccountResponse removed;
    const grpc::Status s = teams->DeleteAccount(BearerContext(key).get(), remove, &removed);
    ASSERT_TRUE(s.ok()) << account << ": " << s.error_message();
  }
  v1::DeleteTeamRequest remove_team;
  remove_team.set_name(get_team.name());
  v1::DeleteTeamResponse removed_team;
  const grpc::Status deleted =
      teams->DeleteTeam(BearerContext(key).get(), remove_team, &removed_team);
  ASSERT_TRUE(deleted.ok()) << deleted.error_message();
  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 1000000000));
  accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());

  const auto before = LedgerMessages();
  v1::Campaign sent;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   PpvCampaign(tenant, {accounts[0]}, media, "Paid up"), &sent)
                  .ok());
  EXPECT_EQ(Watch(key, sent.name()).state(), v1::Campaign::COMPLETED);
  ExpectOneMoreMessageEach(before, {accounts[0]});
}

TEST_P(CampaignTest, RefusedUpstreamKeyPausesTheTeamUntilANewKeyIsSet) {
  const std::string key = NewTenant("badkey");
  const std::vector<std::string> accounts = ImportAccounts("badkey", key, 2);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("badkey", key);
  auto teams = v1::AccountService::NewStub(stack_->channel());
  auto set_key = [&](const std::string& upstream_key, std::string_view hint) {
    v1::UpdateTeamRequest update;
    update.mutable_team()->set_name("tenants/badkey/teams/main");
    update.mutable_team()->set_upstream_api_key(upstream_key);
    update.mutable_update_mask()->add_paths("upstream_api_key");
    v1::Team team;
    grpc::Status s = teams->UpdateTeam(BearerContext(key).get(), update, &team);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(team.upstream_api_key_hint(), hint);
    EXPECT_TRUE(team.upstream_api_key().empty()) << "the key is never returned";
  };
  ASSERT_NO_FATAL_FAILURE(set_key("revoked-upstream-key", "-key"));

  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  ASSERT_TRUE(campaigns
                  ->CreateCampaign(BearerContext(key).get(),
                                   PpvCampaign("badkey", {accounts[0]}, media, "Key trouble"),
                                   &created)
                  .ok());
  v1::GetTeamRequest get_team;
  get_team.set_name("tenants/badkey/teams/main");
  v1::Team team;
  ASSERT_TRUE(testing::WaitFor([&] {
    return teams->GetTeam(BearerContext(key).get(), get_team, &team).ok() && team.api_key_invalid();
  }));
  EXPECT_TRUE(team.paused());
  v1::ResumeTeamRequest resume;
  resume.set_name("tenants/badkey/teams/main");
  EXPECT_EQ(teams->ResumeTeam(BearerContext(key).get(), resume, &team).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION)
      << "resuming needs a new key first";

  // A new key resumes the team: the campaign goes out with no ResumeTeam.
  ASSERT_NO_FATAL_FAILURE(set_key("sim-key-2", ""));  // too short to hint at
  ASSERT_TRUE(teams->GetTeam(BearerContext(key).get(), get_team, &team).ok());
  EXPECT_FALSE(team.api_key_invalid());
  EXPECT_FALSE(team.paused()) << team.pause_reason();
  EXPECT_TRUE(team.pause_reason().empty());
  EXPECT_EQ(Watch(key, created.name()).state(), v1::Campaign::COMPLETED);
  ASSERT_TRUE(teams->ResumeTeam(BearerContext(key).get(), resume, &team).ok())
      << "resuming a running team changes nothing";
  EXPECT_FALSE(team.paused());
}

// An account's lists page at any size up to 49, the upstream's own minimum of 10 included; a
// larger size is read as 49, a negative one refused; the last page, full or not, has no token.
TEST_P(CampaignTest, UserListsPageAtAnySizeAndALargerSizeIsClamped) {
  const std::string key = NewTenant("listpages");
  const std::vector<std::string> accounts = ImportAccounts("listpages", key, 1);
  ASSERT_FALSE(accounts.empty());
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  v1::ListUserListsRequest req;
  req.set_account(accounts[0]);
  v1::ListUserListsResponse whole;
  ASSERT_TRUE(audiences->ListUserLists(BearerContext(key).get(), req, &whole).ok());
  ASSERT_GE(whole.user_lists_size(), 3);
  ASSERT_TRUE(whole.next_page_token().empty());
  std::vector<std::string> all;
  for (const v1::UserList& l : whole.user_lists()) all.push_back(l.id());

  req.set_page_size(100);
  v1::ListUserListsResponse clamped;
  grpc::Status s = audiences->ListUserLists(BearerContext(key).get(), req, &clamped);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(clamped.user_lists_size(), whole.user_lists_size());

  req.set_page_size(2);
  std::vector<std::string> paged;
  for (int page = 0; page < 50; ++page) {
    v1::ListUserListsResponse resp;
    s = audiences->ListUserLists(BearerContext(key).get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_LE(resp.user_lists_size(), 2);
    for (const v1::UserList& l : resp.user_lists()) paged.push_back(l.id());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(paged, all);

  // A page the size of the whole is the last; one smaller leaves exactly one for the next.
  req.set_page_token("");
  req.set_page_size(whole.user_lists_size());
  v1::ListUserListsResponse exact;
  ASSERT_TRUE(audiences->ListUserLists(BearerContext(key).get(), req, &exact).ok());
  EXPECT_EQ(exact.user_lists_size(), whole.user_lists_size());
  EXPECT_TRUE(exact.next_page_token().empty());
  req.set_page_size(whole.user_lists_size() - 1);
  ASSERT_TRUE(audiences->ListUserLists(BearerContext(key).get(), req, &exact).ok());
  ASSERT_FALSE(exact.next_page_token().empty());
  req.set_page_token(exact.next_page_token());
  ASSERT_TRUE(audiences->ListUserLists(BearerContext(key).get(), req, &exact).ok());
  ASSERT_EQ(exact.user_lists_size(), 1);
  EXPECT_EQ(exact.user_lists(0).id(), all.back());
  EXPECT_TRUE(exact.next_page_token().empty());

  req.set_page_token("");
  req.set_page_size(-1);
  s = audiences->ListUserLists(BearerContext(key).get(), req, &clamped);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("page_size"));
}

TEST_P(CampaignTest, TheApisOwnUpstreamCallsReportARefusedKeyAsAPreconditionAndPauseTheTeam) {
  const std::string key = NewTenant("apikey");
  const std::vector<std::string> accounts = ImportAccounts("apikey", key, 1);
  ASSERT_FALSE(accounts.empty());
  auto teams = v1::AccountService::NewStub(stack_->channel());
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  v1::ListUserListsRequest list;
  list.set_account(accounts[0]);
  v1::ListUserListsResponse lists;

  // A paused account makes no upstream calls, the API's own included.
  v1::PauseAccountRequest pause;
  pause.set_name(accounts[0]);
  v1::Account account;
  ASSERT_TRUE(teams->PauseAccount(BearerContext(key).get(), pause, &account).ok());
  grpc::Status s = audiences->ListUserLists(BearerContext(key).get(), list, &lists);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("is paused"));
  // A campaign on it says why it waits, when created and when read.
  {
    auto campaigns = v1::CampaignService::NewStub(stack_->channel());
    v1::Campaign waiting;
    ASSERT_TRUE(campaigns
                    ->CreateCampaign(BearerContext(key).get(),
                                     TextCampaign("apikey", {accounts[0]}, "Held by a pause"),
                                     &waiting)
                    .ok());
    const std::string why = StrCat("account '", ShortId(accounts[0]), "' is paused");
    EXPECT_THAT(waiting.state_reason(), ::testing::HasSubstr(why));
    v1::GetCampaignRequest get;
    get.set_name(waiting.name());
    ASSERT_TRUE(campaigns->GetCampaign(BearerContext(key).get(), get, &waiting).ok());
    EXPECT_THAT(waiting.state_reason(), ::testing::HasSubstr(why));
    v1::CancelCampaignRequest cancel;
    cancel.set_name(waiting.name());
    v1::CancelCampaignResponse cancelled;
    ASSERT_TRUE(campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled).ok());
  }
  v1::ResumeAccountRequest resume_account;
  resume_account.set_name(accounts[0]);
  ASSERT_TRUE(teams->ResumeAccount(BearerContext(key).get(), resume_account, &account).ok());
  ASSERT_TRUE(audiences->ListUserLists(BearerContext(key).get(), list, &lists).ok());

  v1::UpdateTeamRequest update;
  update.mutable_team()->set_name("tenants/apikey/teams/main");
  update.mutable_team()->set_upstream_api_key("revoked-upstream-key");
  update.mutable_update_mask()->add_paths("upstream_api_key");
  v1::Team team;
  ASSERT_TRUE(teams->UpdateTeam(BearerContext(key).get(), update, &team).ok());
  // The caller's own key is fine: the upstream refusing the team's key is not UNAUTHENTICATED.
  s = audiences->ListUserLists(BearerContext(key).get(), list, &lists);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("HTTP 401"));
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("team 'main' is now paused"));
  v1::GetTeamRequest get_team;
  get_team.set_name("tenants/apikey/teams/main");
  ASSERT_TRUE(teams->GetTeam(BearerContext(key).get(), get_team, &team).ok());
  EXPECT_TRUE(team.paused());
  EXPECT_TRUE(team.api_key_invalid());
  s = audiences->ListUserLists(BearerContext(key).get(), list, &lists);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("team 'main' is paused"));
}

TEST_P(CampaignTest, TheApisOwnUpstreamCallsCountAgainstTheTeamsLimit) {
  const std::string key = NewTenant("paced");
  const std::vector<std::string> accounts = ImportAccounts("paced", key, 1);
  ASSERT_FALSE(accounts.empty());
  auto teams = v1::AccountService::NewStub(stack_->channel());
  auto set_rate = [&](int per_minute) {
    v1::UpdateTeamRequest update;
    update.mutable_team()->set_name("tenants/paced/teams/main");
    update.mutable_team()->set_rate_limit_per_minute(per_minute);
    update.mutable_update_mask()->add_paths("rate_limit_per_minute");
    v1::Team team;
    grpc::Status s = teams->UpdateTeam(BearerContext(key).get(), update, &team);
    ASSERT_TRUE(s.ok()) << s.error_message();
  };
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  v1::ListUserListsRequest list;
  list.set_account(accounts[0]);
  v1::ListUserListsResponse lists;

  // One call a second: the second call waits for its token (within the API's two seconds)
  // rather than fail.
  ASSERT_NO_FATAL_FAILURE(set_rate(60));
  for (int i = 0; i < 2; ++i) {
    grpc::Status s = audiences->ListUserLists(BearerContext(key).get(), list, &lists);
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
  }
  // The wait shows in the limiter's wait histogram.
  auto metrics = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const std::string sum_prefix = R"(herald_ratelimit_wait_seconds_sum{caller="api"} )";
  const size_t at = metrics->body.find(sum_prefix);
  ASSERT_NE(at, std::string::npos) << metrics->body;
  EXPECT_GT(std::stod(metrics->body.substr(at + sum_prefix.size())), 0.0);

  ASSERT_NO_FATAL_FAILURE(set_rate(1));
  grpc::Status s = audiences->ListUserLists(BearerContext(key).get(), list, &lists);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The team's one call a minute is spent: the next waits a minute, far longer than an API call
  // holds, so the caller is told when to come back.
  s = audiences->ListUserLists(BearerContext(key).get(), list, &lists);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("at its upstream rate limit; retry in"));
}

TEST_P(CampaignTest, AnUpstream429OnAnApiCallHoldsTheTeamBackForItsRetryAfter) {
  const std::string key = NewTenant("storm");
  const std::vector<std::string> accounts = ImportAccounts("storm", key, 2);
  ASSERT_FALSE(accounts.empty());
  // The upstream now allows the team one call a minute; Herald still allows itself 1000.
  auto r = testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/teams/team-2",
                                R"({"rate_limit_per_minute":1})");
  ASSERT_TRUE(r.ok() && r->status == 200);
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  v1::ListUserListsRequest list;
  list.set_account(accounts[0]);
  v1::ListUserListsResponse lists;
  grpc::Status s;
  for (int i = 0; i < 2; ++i) {  // the minute may still have its one call left
    s = audiences->ListUserLists(BearerContext(key).get(), list, &lists);
    if (!s.ok()) break;
  }
  ASSERT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("HTTP 429"));
  // The Retry-After runs to the end of the simulator's minute.
  const std::string retry_in = "; retry in ";
  const size_t at = s.error_message().rfind(retry_in);
  ASSERT_NE(at, std::string::npos) << s.error_message();
  absl::Duration retry_after;
  ASSERT_TRUE(absl::ParseDuration(s.error_message().substr(at + retry_in.size()), &retry_after))
      << s.error_message();
  // It now holds the team's own bucket: Herald refuses without calling. (Within the API's two
  // seconds of the minute's end, the call may instead wait the hold out and go through.)
  s = audiences->ListUserLists(BearerContext(key).get(), list, &lists);
  if (retry_after > absl::Seconds(2)) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("is at its upstream rate limit; retry in"));
  }
}

TEST_P(CampaignTest, ATeamsBurstIsSetUpToItsPerMinuteRate) {
  const std::string key = NewTenant("bursty");
  ASSERT_FALSE(ImportAccounts("bursty", key, 1).empty());
  auto teams = v1::AccountService::NewStub(stack_->channel());
  v1::UpdateTeamRequest update;
  update.mutable_team()->set_name("tenants/bursty/teams/main");
  update.mutable_team()->set_burst(120);
  update.mutable_update_mask()->add_paths("burst");
  v1::Team team;
  grpc::Status s = teams->UpdateTeam(BearerContext(key).get(), update, &team);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(team.burst(), 120);

  // More than a minute's worth at once would let Herald exceed the team's limit.
  update.mutable_team()->set_burst(team.rate_limit_per_minute() + 1);
  s = teams->UpdateTeam(BearerContext(key).get(), update, &team);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("team.burst"));
  v1::GetTeamRequest get;
  get.set_name("tenants/bursty/teams/main");
  ASSERT_TRUE(teams->GetTeam(BearerContext(key).get(), get, &team).ok());
  EXPECT_EQ(team.burst(), 120);
}

TEST_P(CampaignTest, FansAreAddedToListsThroughTheQueueAndFailuresAreReported) {
  const std::string key = NewTenant("lists");
  const std::vector<std::string> accounts = ImportAccounts("lists", key, 1);
  ASSERT_FALSE(accounts.empty());
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  const v1::UserList list = NewUserList(key, accounts[0], "VIP");
  ASSERT_FALSE(list.id().empty());

  v1::AddFansToUserListRequest add;
  add.set_account(accounts[0]);
  add.set_user_list_id(list.id());
  add.add_fan_ids(SomeFan(ShortId(accounts[0])));
  v1::AddFansToUserListResponse added;
  grpc::Status s = audiences->AddFansToUserList(BearerContext(key).get(), add, &added);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(added.batches(), 1);
  EXPECT_EQ(added.fans_added(), 1);
  // Five fans (one given twice) in batches of two: each is counted once, whatever the batch.
  const std::vector<int64_t> fans = SampleFans(ShortId(accounts[0]));
  ASSERT_EQ(fans.size(), 5u);
  add.clear_fan_ids();
  for (int64_t fan : fans) add.add_fan_ids(fan);
  add.add_fan_ids(fans[3]);
  s = audiences->AddFansToUserList(BearerContext(key).get(), add, &added);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(added.batches(), 3);
  EXPECT_EQ(added.fans_added(), 5);

  // One batch refused (an id that is not the account's fan): the error says which share
  // failed, and that the other batches went in.
  add.clear_fan_ids();
  for (int i = 0; i < 4; ++i) add.add_fan_ids(fans[i]);
  add.add_fan_ids(987'654'321);
  s = audiences->AddFansToUserList(BearerContext(key).get(), add, &added);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(),
              ::testing::HasSubstr("1 of 3 batches of up to 2 fans failed; the others were added"));

  // A list the account does not have: NOT_FOUND, naming the field, with nothing added.
  add.set_user_list_id("987654321");
  s = audiences->AddFansToUserList(BearerContext(key).get(), add, &added);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("user_list_id: the upstream has no list"));
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("no fans were added"));
  // Each call's batch outcomes went once the call had read them.
  EXPECT_THAT(TenantKeys("lists", "list_add*"), ::testing::IsEmpty());
  // Bad input never reaches the queue.
  for (const char* bad : {"fans", " 5", "05", "+5", "5 ", "-5"}) {
    add.set_user_list_id(bad);
    s = audiences->AddFansToUserList(BearerContext(key).get(), add, &added);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("user_list_id")) << bad;
  }
}

// A retried CreateUserList with its request_id returns the first call's list and makes no other,
// even when the first call's answer was lost after the upstream had made the list (it is found
// by its name); the id names that request only.
TEST_P(CampaignTest, ARetriedListCreationWithItsRequestIdMakesOneList) {
  const std::string key = NewTenant("listretry");
  const std::vector<std::string> accounts = ImportAccounts("listretry", key, 1);
  ASSERT_FALSE(accounts.empty());
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  auto create = [&](const std::string& name, const std::string& request_id, v1::UserList* list) {
    v1::CreateUserListRequest req;
    req.set_account(accounts[0]);
    req.set_display_name(name);
    req.set_request_id(request_id);
    return audiences->CreateUserList(BearerContext(key).get(), req, list);
  };
  auto lists_created = [&]() -> int64_t {
    auto stats = testing::ReadSimStats(stack_->sim().port());
    return stats.ok() ? stats->at("lists_created").to_number<int64_t>() : -1;
  };
  const int64_t before = lists_created();

  v1::UserList first, again;
  grpc::Status s = create("Retried", "list-req-1", &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = create("Retried", "list-req-1", &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.id(), first.id());
  EXPECT_EQ(lists_created(), before + 1);

  // The upstream makes the next list but its answer is lost.
  auto fault =
      testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/faults",
                           StrCat(R"({"methods":["POST"],"path_contains":")", ShortId(accounts[0]),
                                  R"(/user-lists","commit_then_lose_rate":1,"count":1})"));
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  v1::UserList lost, found;
  EXPECT_FALSE(create("Answer lost", "list-req-2", &lost).ok());
  s = create("Answer lost", "list-req-2", &found);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(lists_created(), before + 2) << "the retry made no second list";
  v1::ListUserListsRequest list_req;
  list_req.set_account(accounts[0]);
  v1::ListUserListsResponse listed;
  ASSERT_TRUE(audiences->ListUserLists(BearerContext(key).get(), list_req, &listed).ok());
  std::vector<std::string> named;
  for (const v1::UserList& l : listed.user_lists()) {
    if (l.display_name() == "Answer lost") named.push_back(l.id());
  }
  EXPECT_THAT(named, ::testing::ElementsAre(found.id()));

  // The id of another request: refused, nothing made.
  v1::UserList other;
  s = create("Another list", "list-req-1", &other);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("request_id"));
  // An id longer than 100 characters is refused before anything is made.
  s = create("Too long", std::string(101, 'r'), &other);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("request_id"));
  // A blank name, which the upstream would refuse only after the call was paid for, is refused
  // here, and so is one with a control character.
  for (const std::string name : {"   ", "Tab\tname"}) {
    s = create(name, "", &other);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), ::testing::StartsWith("display_name: must not"));
  }
  EXPECT_EQ(lists_created(), before + 2);

  // Each request id's record expires: nothing is kept for good.
  const std::vector<std::string> records = TenantKeys("listretry", "user_list_request*");
  EXPECT_THAT(records,
              ::testing::UnorderedElementsAre("hd:{t:listretry}:user_list_request:list-req-1",
                                              "hd:{t:listretry}:user_list_request:list-req-2"));
  for (const std::string& record : records) {
    auto redis = RedisFor(GetParam(), record);
    ASSERT_TRUE(redis.ok()) << redis.status();
    auto ttl = (*redis)->Command({"PTTL", record});
    ASSERT_TRUE(ttl.ok()) << ttl.status();
    EXPECT_GT(ttl->integer, 0) << record;
    EXPECT_LE(ttl->integer, 24 * 3600 * 1000) << record;
  }
}

// A retry that comes while the first CreateUserList with its request_id is still making the
// list is told so (ABORTED) and makes none; one after it gets the first call's list.
TEST_P(CampaignTest, AListCreationRetriedWhileTheFirstIsInFlightMakesOneList) {
  const std::string key = NewTenant("listrace");
  const std::vector<std::string> accounts = ImportAccounts("listrace", key, 1);
  ASSERT_FALSE(accounts.empty());
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  auto create = [&](v1::UserList* list) {
    v1::CreateUserListRequest req;
    req.set_account(accounts[0]);
    req.set_display_name("Raced");
    req.set_request_id("race-1");
    return audiences->CreateUserList(BearerContext(key).get(), req, list);
  };
  auto lists_created = [&]() -> int64_t {
    auto stats = testing::ReadSimStats(stack_->sim().port());
    return stats.ok() ? stats->at("lists_created").to_number<int64_t>() : -1;
  };
  const int64_t before = lists_created();
  // The upstream holds the first creation for 3 s.
  auto fault =
      testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/faults",
                           StrCat(R"({"methods":["POST"],"path_contains":")", ShortId(accounts[0]),
                                  R"(/user-lists","latency_ms":{"fixed":3000},"count":1})"));
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");
  v1::UserList first;
  grpc::Status first_status;
  std::thread in_flight([&] { first_status = create(&first); });
  // Held: the rule is used up once the upstream has the first call.
  const bool held = testing::WaitFor([&] {
    auto rules = testing::HttpGet(stack_->sim().port(), "/_sim/faults");
    return rules.ok() && !absl::StrContains(rules->body, "user-lists");
  });
  v1::UserList raced;
  const grpc::Status raced_status = held ? create(&raced) : grpc::Status::CANCELLED;
  in_flight.join();
  ASSERT_TRUE(held);
  EXPECT_EQ(raced_status.error_code(), grpc::StatusCode::ABORTED) << raced_status.error_message();
  EXPECT_THAT(raced_status.error_message(), ::testing::HasSubstr("in progress"));
  ASSERT_TRUE(first_status.ok()) << first_status.error_message();
  v1::UserList after;
  const grpc::Status s = create(&after);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(after.id(), first.id());
  EXPECT_EQ(lists_created(), before + 1);
}

// A unary call still running at its client's deadline is cancelled on the server and counted as
// DEADLINE_EXCEEDED, not left to finish: here the upstream holds the list's creation for 30 s
// and the caller gives up after one. The next call, in time, is answered as usual.
TEST_P(CampaignTest, AUnaryCallPastItsDeadlineIsCancelledOnTheServer) {
  const std::string key = NewTenant("deadline");
  const std::vector<std::string> accounts = ImportAccounts("deadline", key, 1);
  ASSERT_FALSE(accounts.empty());
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  auto finished = [&](std::string_view code) -> int64_t {
    auto metrics = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
    if (!metrics.ok()) return -1;
    const std::string series =
        StrCat("herald_grpc_requests_total{code=\"", code, "\",method=\"CreateUserList\"}");
    return static_cast<int64_t>(testing::SeriesValue(metrics->body, series).value_or(0));
  };
  // The stack serves the whole suite: count from here.
  const int64_t expired_before = finished("DEADLINE_EXCEEDED");
  const int64_t ok_before = finished("OK");
  auto fault =
      testing::HttpRequest(stack_->sim().port(), "POST", "/_sim/faults",
                           StrCat(R"({"methods":["POST"],"path_contains":")", ShortId(accounts[0]),
                                  R"(/user-lists","latency_ms":{"fixed":30000},"count":1})"));
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");

  v1::CreateUserListRequest req;
  req.set_account(accounts[0]);
  req.set_display_name("Held upstream");
  v1::UserList list;
  grpc::Status s =
      audiences->CreateUserList(BearerContext(key, absl::Seconds(1)).get(), req, &list);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  // Without the cancellation the call would finish when the upstream answers, 30 s on, as OK.
  EXPECT_TRUE(testing::WaitFor([&] { return finished("DEADLINE_EXCEEDED") == expired_before + 1; },
                               absl::Seconds(15)))
      << stack_->herald().Logs();
  EXPECT_EQ(finished("OK"), ok_before);

  req.set_display_name("In time");
  s = audiences->CreateUserList(BearerContext(key).get(), req, &list);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(list.display_name(), "In time");
  EXPECT_EQ(finished("OK"), ok_before + 1);
}

// A request id recorded by a Herald before request ids had tables of their own (in the tenant's
// shared table) still names its list: a retry returns that list and makes none.
TEST_P(CampaignTest, AListRequestIdInTheSharedTableStillNamesItsList) {
  const std::string tenant = "sharedreq";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  const v1::UserList made = NewUserList(key, accounts[0], "Made before");
  ASSERT_FALSE(made.id().empty());
  const std::string shared = StrCat("hd:{t:", tenant, "}:user_list_requests");
  auto redis = RedisFor(GetParam(), shared);
  ASSERT_TRUE(redis.ok()) << redis.status();
  const std::string record = StrCat(ShortId(accounts[0]), "\n", made.id(), "\n",
                                    absl::ToUnixMillis(absl::Now()), "\nMade before");
  auto seeded = (*redis)->Command({"HSET", shared, "req-before", record});
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  const auto stats = testing::ReadSimStats(stack_->sim().port());
  ASSERT_TRUE(stats.ok()) << stats.status();
  const int64_t before = stats->at("lists_created").to_number<int64_t>();

  v1::CreateUserListRequest req;
  req.set_account(accounts[0]);
  req.set_display_name("Made before");
  req.set_request_id("req-before");
  v1::UserList again;
  const grpc::Status s = v1::AudienceService::NewStub(stack_->channel())
                             ->CreateUserList(BearerContext(key).get(), req, &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.id(), made.id());
  const auto after = testing::ReadSimStats(stack_->sim().port());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->at("lists_created").to_number<int64_t>(), before) << "no second list";
  EXPECT_THAT(TenantKeys(tenant, "user_list_request:*"), ::testing::IsEmpty());
}

// A list-add job enqueued by a Herald before each call had a table of outcomes of its own (its
// payload has no outcome_ttl_ms) adds its fans and writes its outcome where that Herald's call
// waits for it.
TEST_P(CampaignTest, AListAddJobOfThePreviousReleaseWritesWhereItsCallReads) {
  if (GetParam() == testing::RedisKind::kCluster) GTEST_SKIP() << "the job is placed on one node";
  const std::string tenant = "oldlistadd";
  const std::string key = NewTenant(tenant);
  const std::vector<std::string> accounts = ImportAccounts(tenant, key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string account = ShortId(accounts[0]);
  const v1::UserList list = NewUserList(key, accounts[0], "Older");
  ASSERT_FALSE(list.id().empty());
  const int64_t fan = SomeFan(account);
  const absl::Status placed =
      testing::PlaceJob(stack_->redis().port(),
                        {.id = StrCat("l:", tenant, ":op-before:0"),
                         .kind = "list_add_fans",
                         .tenant = tenant,
                         .team = StrCat(tenant, "/main"),
                         .account = StrCat(tenant, "/", account),
                         .payload = StrCat(R"({"tenant":")", tenant, R"(","account":")", account,
                                           R"(","operation":"op-before","batch":0,"list":")",
                                           list.id(), R"(","fans":[)", fan, "]}"),
                         .max_attempts = 3});
  ASSERT_TRUE(placed.ok()) << placed;

  auto redis = RedisFor(GetParam(), StrCat("hd:{t:", tenant, "}:"));
  ASSERT_TRUE(redis.ok()) << redis.status();
  const std::string shared = StrCat("hd:{t:", tenant, "}:list_add_results");
  std::string outcome;
  ASSERT_TRUE(testing::WaitFor([&] {
    auto r = (*redis)->Command({"HGET", shared, "op-before:0"});
    if (r.ok() && r->type == testing::SyncReply::Type::kString) outcome = r->str;
    return !outcome.empty();
  })) << "the job wrote no outcome where its call reads"
      << stack_->herald().Logs();
  EXPECT_EQ(json::parse(outcome), json::parse(R"({"ok":true,"reported":1})"));
  EXPECT_EQ(UpstreamListMembers(stack_->sim().port(), 1, account, list.id()),
            std::set<int64_t>{fan});
  EXPECT_THAT(TenantKeys(tenant, "list_add:*"), ::testing::IsEmpty());
}

// A batch the upstream refuses for want of credits pauses the team, as a send does, and is
// added once the team is resumed: it is neither dropped nor retried into the refusal.
TEST_P(CampaignTest, FansRefusedForWantOfCreditsAreAddedOnceTheTeamIsResumed) {
  const std::string key = NewTenant("listbroke");
  const std::vector<std::string> accounts = ImportAccounts("listbroke", key, 1);
  ASSERT_FALSE(accounts.empty());
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  const v1::UserList list = NewUserList(key, accounts[0], "Later");
  ASSERT_FALSE(list.id().empty());
  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 0));

  v1::AddFansToUserListRequest add;
  add.set_account(accounts[0]);
  add.set_user_list_id(list.id());
  add.add_fan_ids(SomeFan(ShortId(accounts[0])));
  v1::AddFansToUserListResponse added;
  grpc::Status s = audiences->AddFansToUserList(BearerContext(key).get(), add, &added);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_NE(s.error_message().find("credits"), std::string::npos) << s.error_message();
  auto teams = v1::AccountService::NewStub(stack_->channel());
  v1::GetTeamRequest get_team;
  get_team.set_name("tenants/listbroke/teams/main");
  v1::Team team;
  ASSERT_TRUE(teams->GetTeam(BearerContext(key).get(), get_team, &team).ok());
  EXPECT_TRUE(team.paused());

  ASSERT_NO_FATAL_FAILURE(SetCredits("team-1", 1000000000));
  v1::ResumeTeamRequest resume;
  resume.set_name(get_team.name());
  ASSERT_TRUE(teams->ResumeTeam(BearerContext(key).get(), resume, &team).ok());
  v1::ListUserListsRequest lists;
  lists.set_account(accounts[0]);
  EXPECT_TRUE(testing::WaitFor([&] {
    v1::ListUserListsResponse got;
    if (!audiences->ListUserLists(BearerContext(key).get(), lists, &got).ok()) return false;
    for (const v1::UserList& l : got.user_lists()) {
      if (l.id() == list.id()) return l.fan_count() == 1;
    }
    return false;
  }));
  // The batch's outcome, which nobody waits for any more, expires.
  std::vector<std::string> outcomes;
  ASSERT_TRUE(testing::WaitFor([&] {
    return !(outcomes = TenantKeys("listbroke", "list_add*")).empty();
  })) << "the batch's outcome was never written";
  ASSERT_EQ(outcomes.size(), 1u);
  auto redis = RedisFor(GetParam(), outcomes[0]);
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto ttl = (*redis)->Command({"PTTL", outcomes[0]});
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(ttl->integer, 0) << outcomes[0];
}

// UploadMediaAsset authenticates before it reads the file, refuses what is over the limit or
// another tenant's, stores nothing then, and shows in the RPC metrics like any call.
TEST_P(CampaignTest, UploadsAreAuthenticatedFirstLimitedAndCounted) {
  const std::string key = NewTenant("uploader");
  const std::string other_key = NewTenant("bystander");
  auto media = v1::MediaService::NewStub(stack_->channel());
  auto upload = [&](const std::string& bearer, const std::string& parent, size_t size,
                    v1::MediaAsset* out, v1::MediaAsset::Type type = v1::MediaAsset::IMAGE,
                    size_t chunk_size = 64 * 1024) {
    auto ctx = BearerContext(bearer);
    auto writer = media->UploadMediaAsset(ctx.get(), out);
    v1::UploadMediaAssetRequest part;
    part.mutable_metadata()->set_parent(parent);
    v1::MediaAsset* asset = part.mutable_metadata()->mutable_media_asset();
    asset->set_type(type);
    asset->set_file_name("teaser.jpg");
    asset->set_content_type("image/jpeg");
    bool open = writer->Write(part);
    for (size_t sent = 0; open && sent < size; sent += chunk_size) {
      part.set_chunk(std::string(std::min(chunk_size, size - sent), 'x'));
      open = writer->Write(part);
    }
    if (open) writer->WritesDone();
    return writer->Finish();
  };
  auto count = [&](const std::string& bearer, const std::string& parent) {
    v1::ListMediaAssetsRequest req;
    req.set_parent(parent);
    v1::ListMediaAssetsResponse resp;
    EXPECT_TRUE(media->ListMediaAssets(BearerContext(bearer).get(), req, &resp).ok());
    return resp.media_assets_size();
  };

  v1::MediaAsset stored;
  grpc::Status s = upload(key, "tenants/uploader", 100 * 1024, &stored);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stored.size_bytes(), 100 * 1024);
  EXPECT_EQ(count(key, "tenants/uploader"), 1);

  v1::MediaAsset refused;
  EXPECT_EQ(upload("not-a-key", "tenants/uploader", 1024 * 1024, &refused).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(upload(other_key, "tenants/uploader", 1024, &refused).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(upload(key, "tenants/uploader", (16 << 20) + 1, &refused).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Chunks of up to 4 MiB are taken; a bigger one is refused, however small the file.
  s = upload(key, "tenants/uploader", 6 << 20, &stored, v1::MediaAsset::IMAGE, 4 << 20);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stored.size_bytes(), 6 << 20);
  const grpc::Status big_chunk =
      upload(key, "tenants/uploader", 5 << 20, &refused, v1::MediaAsset::IMAGE, 5 << 20);
  EXPECT_EQ(big_chunk.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << big_chunk.error_message();
  // Metadata is checked before the file is read: refused metadata is the error, whatever follows.
  const grpc::Status untyped =
      upload(key, "tenants/uploader", (16 << 20) + 1, &refused, v1::MediaAsset::TYPE_UNSPECIFIED);
  EXPECT_EQ(untyped.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << untyped.error_message();
  EXPECT_THAT(untyped.error_message(), ::testing::HasSubstr("media_asset.type"));
  EXPECT_EQ(count(key, "tenants/uploader"), 2);
  EXPECT_EQ(count(other_key, "tenants/bystander"), 0);

  // Streams are counted by method and code too.
  {
    auto campaigns = v1::CampaignService::NewStub(stack_->channel());
    auto ctx = BearerContext(key);
    v1::WatchCampaignRequest wreq;
    wreq.set_name("tenants/uploader/campaigns/missing");
    auto reader = campaigns->WatchCampaign(ctx.get(), wreq);
    v1::WatchCampaignResponse update;
    while (reader->Read(&update)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  auto metrics = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  for (const char* line :
       {R"(herald_grpc_requests_total{code="OK",method="UploadMediaAsset"})",
        R"(herald_grpc_requests_total{code="UNAUTHENTICATED",method="UploadMediaAsset"})",
        R"(herald_grpc_requests_total{code="RESOURCE_EXHAUSTED",method="UploadMediaAsset"})",
        R"(herald_grpc_requests_total{code="NOT_FOUND",method="WatchCampaign"})"}) {
    EXPECT_TRUE(absl::StrContains(metrics->body, line)) << line;
  }
}

// An upload needs its content type; and one the client cancels part-way leaves no asset, even
// when the server had already stored it before it saw the cancel.
TEST_P(CampaignTest, AnUploadWithoutItsContentTypeOrCancelledStoresNothing) {
  const std::string tenant = "cancelled-upload";
  const std::string key = NewTenant(tenant);
  const std::string parent = StrCat("tenants/", tenant);
  auto media = v1::MediaService::NewStub(stack_->channel());
  auto metadata = [&](std::string content_type) {
    v1::UploadMediaAssetRequest part;
    part.mutable_metadata()->set_parent(parent);
    v1::MediaAsset* asset = part.mutable_metadata()->mutable_media_asset();
    asset->set_type(v1::MediaAsset::IMAGE);
    asset->set_file_name("teaser.jpg");
    asset->set_content_type(std::move(content_type));
    return part;
  };
  auto assets = [&] {
    v1::ListMediaAssetsRequest req;
    req.set_parent(parent);
    v1::ListMediaAssetsResponse resp;
    EXPECT_TRUE(media->ListMediaAssets(BearerContext(key).get(), req, &resp).ok());
    return resp.media_assets_size();
  };
  // Uploads the server has answered (or ended), from its metrics.
  auto uploads_ended = [&] {
    auto metrics = testing::HttpGet(stack_->herald().admin_port(), "/metrics");
    EXPECT_TRUE(metrics.ok()) << metrics.status();
    const std::string body = metrics.ok() ? metrics->body : std::string();
    double total = 0;
    for (absl::string_view line : absl::StrSplit(body, '\n')) {
      if (!absl::StartsWith(line, "herald_grpc_requests_total{") ||
          !absl::StrContains(line, R"(method="UploadMediaAsset")")) {
        continue;
      }
      double v = 0;
      if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) total += v;
    }
    return total;
  };

  {
    v1::MediaAsset refused;
    auto ctx = BearerContext(key);
    auto writer = media->UploadMediaAsset(ctx.get(), &refused);
    v1::UploadMediaAssetRequest part = metadata("");
    ASSERT_TRUE(writer->Write(part));
    part.set_chunk("bytes");
    writer->Write(part);
    writer->WritesDone();
    const grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("content_type"));
  }
  EXPECT_EQ(assets(), 0);

  const double ended = uploads_ended();
  {
    v1::MediaAsset unused;
    auto ctx = BearerContext(key);
    auto writer = media->UploadMediaAsset(ctx.get(), &unused);
    v1::UploadMediaAssetRequest part = metadata("image/jpeg");
    ASSERT_TRUE(writer->Write(part));
    part.set_chunk(std::string(64 * 1024, 'x'));
    ASSERT_TRUE(writer->Write(part));
    ctx->TryCancel();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // Once the server has ended the call, the asset is gone or was never stored.
  ASSERT_TRUE(testing::WaitFor([&] { return uploads_ended() > ended; }, absl::Seconds(10)));
  EXPECT_TRUE(testing::WaitFor([&] { return assets() == 0; }, absl::Seconds(10)))
      << "a cancelled upload left an asset";
}

TEST_P(CampaignTest, ADeletedUploadTakesItsBytesWithIt) {
  const std::string key = NewTenant("tidy");
  auto media = v1::MediaService::NewStub(stack_->channel());
  v1::MediaAsset stored;
  {
    auto ctx = BearerContext(key);
    auto writer = media->UploadMediaAsset(ctx.get(), &stored);
    v1::UploadMediaAssetRequest part;
    part.mutable_metadata()->set_parent("tenants/tidy");
    v1::MediaAsset* asset = part.mutable_metadata()->mutable_media_asset();
    asset->set_type(v1::MediaAsset::IMAGE);
    asset->set_file_name("teaser.jpg");
    asset->set_content_type("image/jpeg");
    ASSERT_TRUE(writer->Write(part));
    part.set_chunk(std::string(64 * 1024, 'x'));
    ASSERT_TRUE(writer->Write(part));
    writer->WritesDone();
    const grpc::Status s = writer->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const std::string bytes_key = StrCat("hd:{t:tidy}:blob:media:", ShortId(stored.name()));
  auto redis = RedisFor(GetParam(), bytes_key);
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto size = (*redis)->Command({"STRLEN", bytes_key});
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(size->integer, 64 * 1024);

  v1::DeleteMediaAssetRequest remove;
  remove.set_name(stored.name());
  v1::DeleteMediaAssetResponse removed;
  const grpc::Status s = media->DeleteMediaAsset(BearerContext(key).get(), remove, &removed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto exists = (*redis)->Command({"EXISTS", bytes_key});
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_EQ(exists->integer, 0);
  v1::GetMediaAssetRequest get;
  get.set_name(stored.name());
  v1::MediaAsset gone;
  EXPECT_EQ(media->GetMediaAsset(BearerContext(key).get(), get, &gone).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// A retried upload with its request_id gets the first asset, and its bytes are stored once.
TEST_P(CampaignTest, ARetriedUploadStoresItsBytesOnce) {
  const std::string key = NewTenant("reupload");
  auto media = v1::MediaService::NewStub(stack_->channel());
  auto upload = [&](v1::MediaAsset* stored, char fill = 'x') {
    auto ctx = BearerContext(key);
    auto writer = media->UploadMediaAsset(ctx.get(), stored);
    v1::UploadMediaAssetRequest part;
    part.mutable_metadata()->set_parent("tenants/reupload");
    part.mutable_metadata()->set_request_id("upload-1");
    v1::MediaAsset* asset = part.mutable_metadata()->mutable_media_asset();
    asset->set_type(v1::MediaAsset::IMAGE);
    asset->set_file_name("teaser.jpg");
    asset->set_content_type("image/jpeg");
    EXPECT_TRUE(writer->Write(part));
    part.set_chunk(std::string(1024, fill));
    EXPECT_TRUE(writer->Write(part));
    writer->WritesDone();
    return writer->Finish();
  };
  v1::MediaAsset first, again;
  grpc::Status s = upload(&first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = upload(&again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.name(), first.name());
  // Other bytes under the same request_id are another upload: refused, and not stored.
  v1::MediaAsset other;
  s = upload(&other, 'y');
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("request_id: 'upload-1'"));
  const std::string blobs = "hd:{t:reupload}:blob:media:*";
  auto redis = RedisFor(GetParam(), "hd:{t:reupload}:blob:media:x");
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto stored = (*redis)->Command({"KEYS", blobs});
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->elements.size(), 1u) << stored->DebugString();
  EXPECT_EQ(stored->elements[0].str, StrCat("hd:{t:reupload}:blob:media:", ShortId(first.name())));
}

// A retried create answers with the first create's resource, and sets nothing up for the retry's
// own ids; the same request_id on a different request is refused and changes nothing.
TEST_P(CampaignTest, ARequestIdNamesOneRequest) {
  const std::string key = NewTenant("once");
  auto teams = v1::AccountService::NewStub(stack_->channel());
  auto create_team = [&](const std::string& id, int per_minute, v1::Team* team) {
    v1::CreateTeamRequest req;
    req.set_parent("tenants/once");
    req.set_team_id(id);
    req.set_request_id("team-1");
    req.mutable_team()->set_upstream_api_key("sim-key-1");
    req.mutable_team()->set_rate_limit_per_minute(per_minute);
    return teams->CreateTeam(BearerContext(key).get(), req, team);
  };
  v1::Team first, retried, other;
  grpc::Status s = create_team("main", 6000, &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = create_team("main", 6000, &retried);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(retried.name(), first.name());

  s = create_team("other", 7, &other);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("request_id: 'team-1'"));
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("team 'main'"));
  v1::GetTeamRequest get;
  get.set_name("tenants/once/teams/other");
  EXPECT_EQ(teams->GetTeam(BearerContext(key).get(), get, &other).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Nothing of "other" reached the queue's rate limits; "main" is there.
  for (const auto& [team, expected] : {std::pair<std::string, int64_t>{"other", 0}, {"main", 1}}) {
    const std::string limits =
        StrCat("{hd:s", queue::ShardOf(StrCat("once/", team), 16), "}:t:once/", team);
    auto redis = RedisFor(GetParam(), limits);
    ASSERT_TRUE(redis.ok()) << redis.status();
    auto exists = (*redis)->Command({"EXISTS", limits});
    ASSERT_TRUE(exists.ok()) << exists.status();
    EXPECT_EQ(exists->integer, expected) << limits;
  }
}

TEST_P(CampaignTest, ListPagesNewestFirstAndFiltersByState) {
  const std::string key = NewTenant("lister");
  const std::vector<std::string> accounts = ImportAccounts("lister", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("lister", key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  std::vector<std::string> created;
  for (int i = 0; i < 5; ++i) {
    v1::CreateCampaignRequest req =
        PpvCampaign("lister", {accounts[0]}, media, StrCat("draft ", i));
    req.mutable_campaign()->set_save_as_draft(true);
    v1::Campaign c;
    ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(key).get(), req, &c).ok());
    created.push_back(c.name());
  }
  v1::CancelCampaignRequest cancel;
  cancel.set_name(created[1]);
  v1::CancelCampaignResponse cancelled;
  ASSERT_TRUE(campaigns->CancelCampaign(BearerContext(key).get(), cancel, &cancelled).ok());

  std::vector<std::string> seen;
  v1::ListCampaignsRequest list;
  list.set_parent("tenants/lister");
  list.set_page_size(2);
  for (int page = 0; page < 5; ++page) {
    v1::ListCampaignsResponse resp;
    grpc::Status s = campaigns->ListCampaigns(BearerContext(key).get(), list, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_LE(resp.campaigns_size(), 2);
    for (const auto& c : resp.campaigns()) seen.push_back(c.name());
    if (resp.next_page_token().empty()) break;
    list.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(seen, std::vector<std::string>(created.rbegin(), created.rend()));

  // A token only works with the filter it came from, to the nanosecond.
  v1::ListCampaignsResponse resp;
  list.set_page_token("");
  ASSERT_TRUE(campaigns->ListCampaigns(BearerContext(key).get(), list, &resp).ok());
  ASSERT_FALSE(resp.next_page_token().empty());
  list.set_page_token(resp.next_page_token());
  list.mutable_create_time_after()->set_nanos(1);
  EXPECT_EQ(campaigns->ListCampaigns(BearerContext(key).get(), list, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  list.clear_create_time_after();
  // A bound set to the epoch is a filter, not the absence of one.
  list.mutable_create_time_before()->set_seconds(0);
  EXPECT_EQ(campaigns->ListCampaigns(BearerContext(key).get(), list, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  list.clear_create_time_before();
  {
    v1::ListCampaignsRequest inverted;
    inverted.set_parent("tenants/lister");
    inverted.mutable_create_time_after()->set_seconds(2'000'000'000);
    inverted.mutable_create_time_before()->set_seconds(1'000'000'000);
    const grpc::Status s = campaigns->ListCampaigns(BearerContext(key).get(), inverted, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("create_time_before"));
  }
  // Another tenant's request does not take this tenant's token.
  {
    const std::string other_key = NewTenant("lister2");
    v1::ListCampaignsRequest theirs = list;
    theirs.set_parent("tenants/lister2");
    v1::ListCampaignsResponse none;
    const grpc::Status s = campaigns->ListCampaigns(BearerContext(other_key).get(), theirs, &none);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }
  list.add_states(v1::Campaign::DRAFT);
  EXPECT_EQ(campaigns->ListCampaigns(BearerContext(key).get(), list, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  list.clear_page_token();
  list.set_page_size(0);
  ASSERT_TRUE(campaigns->ListCampaigns(BearerContext(key).get(), list, &resp).ok());
  EXPECT_EQ(resp.campaigns_size(), 4);
  for (const auto& c : resp.campaigns()) EXPECT_EQ(c.state(), v1::Campaign::DRAFT);
  EXPECT_EQ(resp.next_page_token(), "");
  // A full last page is the last: no token leads to an empty one.
  list.set_page_size(2);
  ASSERT_TRUE(campaigns->ListCampaigns(BearerContext(key).get(), list, &resp).ok());
  EXPECT_EQ(resp.campaigns_size(), 2);
  ASSERT_NE(resp.next_page_token(), "");
  list.set_page_token(resp.next_page_token());
  ASSERT_TRUE(campaigns->ListCampaigns(BearerContext(key).get(), list, &resp).ok());
  EXPECT_EQ(resp.campaigns_size(), 2);
  EXPECT_EQ(resp.next_page_token(), "");
  list.clear_page_token();
  list.clear_states();
  list.set_page_size(5);
  ASSERT_TRUE(campaigns->ListCampaigns(BearerContext(key).get(), list, &resp).ok());
  EXPECT_EQ(resp.campaigns_size(), 5);
  EXPECT_EQ(resp.next_page_token(), "");

  // Bounds hold to the nanosecond, though create times are whole milliseconds: a campaign is
  // "at or after" its own create time and not after it plus 1 ns, "before" it plus 1 ns and not
  // before itself.
  const v1::Campaign newest = GetCampaign(key, created[4]);
  auto names_in = [&](const std::optional<google::protobuf::Timestamp>& after,
                      const std::optional<google::protobuf::Timestamp>& before) {
    v1::ListCampaignsRequest ranged;
    ranged.set_parent("tenants/lister");
    if (after) *ranged.mutable_create_time_after() = *after;
    if (before) *ranged.mutable_create_time_before() = *before;
    v1::ListCampaignsResponse r;
    const grpc::Status s = campaigns->ListCampaigns(BearerContext(key).get(), ranged, &r);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::set<std::string> names;
    for (const auto& c : r.campaigns()) names.insert(c.name());
    return names;
  };
  google::protobuf::Timestamp at = newest.create_time();
  google::protobuf::Timestamp just_after = at;
  just_after.set_nanos(at.nanos() + 1);
  EXPECT_TRUE(names_in(at, std::nullopt).contains(created[4]));
  EXPECT_FALSE(names_in(just_after, std::nullopt).contains(created[4]));
  EXPECT_TRUE(names_in(std::nullopt, just_after).contains(created[4]));
  EXPECT_FALSE(names_in(std::nullopt, at).contains(created[4]));
  EXPECT_TRUE(names_in(at, just_after).contains(created[4]));
}

// "/herald.v1.CampaignService/GetCampaign" and the like: every method of every service in
// proto/herald/v1.
std::vector<std::string> EveryHeraldMethod() {
  std::vector<std::string> methods;
  for (const google::protobuf::FileDescriptor* file :
       {v1::Tenant::descriptor()->file(), v1::Team::descriptor()->file(),
        v1::MediaAsset::descriptor()->file(), v1::Segment::descriptor()->file(),
        v1::Campaign::descriptor()->file(), v1::CampaignStats::descriptor()->file(),
        v1::SubscribeRequest::descriptor()->file(), v1::Automation::descriptor()->file()}) {
    for (int s = 0; s < file->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = file->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        methods.push_back(StrCat("/", service->full_name(), "/", service->method(m)->name()));
      }
    }
  }
  return methods;
}

// Every method of every Herald service, called alike with an empty request: without a key, with
// an authorization header of another scheme and with a key that is no key, UNAUTHENTICATED;
// TenantService's with a tenant's key, and every other service's with the platform
// administrator's, PERMISSION_DENIED. A method added later is tried too.
TEST_P(CampaignTest, EveryMethodRefusesACallWithoutTheRightKindOfKey) {
  const std::string tenant_key = NewTenant("keyless");
  const std::vector<std::string> methods = EveryHeraldMethod();
  ASSERT_EQ(methods.size(), 60u) << "every service of proto/herald/v1";
  auto code = [&](const std::string& method, std::unique_ptr<grpc::ClientContext> context) {
    return testing::CallWithEmptyRequest(stack_->channel(), method, *context).error_code();
  };
  for (const std::string& method : methods) {
    EXPECT_EQ(code(method, BearerContext("")), grpc::StatusCode::UNAUTHENTICATED) << method;
    EXPECT_EQ(code(method, BearerContext("hk_not_a_key")), grpc::StatusCode::UNAUTHENTICATED)
        << method;
    auto basic = BearerContext("");
    basic->AddMetadata("authorization", "Basic YWRtaW46c2VjcmV0");
    EXPECT_EQ(code(method, std::move(basic)), grpc::StatusCode::UNAUTHENTICATED) << method;
    const bool tenants_only = method.starts_with("/herald.v1.TenantService/");
    EXPECT_EQ(code(method, BearerContext(tenants_only ? tenant_key : kAdminKey)),
              grpc::StatusCode::PERMISSION_DENIED)
        << method;
  }
}

TEST_P(CampaignTest, ARevokedKeyStopsWorking) {
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  auto tenants = v1::TenantService::NewStub(stack_->channel());
  const std::string key = NewTenant("keyed");
  // A stream opened with the key before it is revoked.
  auto events = v1::EventService::NewStub(stack_->channel());
  auto stream_context = BearerContext(key);
  v1::SubscribeRequest subscribe;
  subscribe.set_parent("tenants/keyed");
  auto stream = events->Subscribe(stream_context.get(), subscribe);
  stream->WaitForInitialMetadata();
  v1::ListApiKeysRequest kreq;
  kreq.set_parent("tenants/keyed");
  v1::ListApiKeysResponse keys;
  ASSERT_TRUE(tenants->ListApiKeys(BearerContext(kAdminKey).get(), kreq, &keys).ok());
  ASSERT_EQ(keys.api_keys_size(), 1);
  v1::RevokeApiKeyRequest rreq;
  rreq.set_name(keys.api_keys(0).name());
  v1::ApiKey revoked;
  ASSERT_TRUE(tenants->RevokeApiKey(BearerContext(kAdminKey).get(), rreq, &revoked).ok());
  v1::ListCampaignsRequest listreq;
  listreq.set_parent("tenants/keyed");
  v1::ListCampaignsResponse list;
  EXPECT_EQ(campaigns->ListCampaigns(BearerContext(key).get(), listreq, &list).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // The open stream ends so too.
  v1::Event event;
  EXPECT_FALSE(stream->Read(&event));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // On every method, streams and the upload included.
  for (const std::string& method : EveryHeraldMethod()) {
    if (method.starts_with("/herald.v1.TenantService/")) continue;
    EXPECT_EQ(
        testing::CallWithEmptyRequest(stack_->channel(), method, *BearerContext(key)).error_code(),
        grpc::StatusCode::UNAUTHENTICATED)
        << method;
  }
}

TEST_P(CampaignTest, AnotherTenantsResourcesAreNotFoundAndUnchanged) {
  const std::string owner_key = NewTenant("owner");
  const std::vector<std::string> accounts = ImportAccounts("owner", owner_key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("owner", owner_key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  const v1::Campaign draft = NewDraft("owner", owner_key, {accounts[0]}, media, "Mine");
  ASSERT_FALSE(draft.name().empty());

  const std::string intruder = NewTenant("intruder");
  auto accounts_stub = v1::AccountService::NewStub(stack_->channel());
  auto media_stub = v1::MediaService::NewStub(stack_->channel());
  v1::Campaign c;
  v1::GetCampaignRequest get;
  get.set_name(draft.name());
  EXPECT_EQ(campaigns->GetCampaign(BearerContext(intruder).get(), get, &c).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::LaunchCampaignRequest launch;
  launch.set_name(draft.name());
  EXPECT_EQ(campaigns->LaunchCampaign(BearerContext(intruder).get(), launch, &c).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::CancelCampaignRequest cancel;
  cancel.set_name(draft.name());
  v1::CancelCampaignResponse cr;
  EXPECT_EQ(campaigns->CancelCampaign(BearerContext(intruder).get(), cancel, &cr).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::UpdateCampaignRequest update;
  update.mutable_campaign()->set_name(draft.name());
  update.mutable_campaign()->mutable_content()->set_text("hijacked");
  update.mutable_update_mask()->add_paths("content.text");
  EXPECT_EQ(campaigns->UpdateCampaign(BearerContext(intruder).get(), update, &c).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::ListCampaignsRequest list;
  list.set_parent("tenants/owner");
  v1::ListCampaignsResponse lr;
  EXPECT_EQ(campaigns->ListCampaigns(BearerContext(intruder).get(), list, &lr).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::ListDeliveriesRequest ld;
  ld.set_parent(draft.name());
  v1::ListDeliveriesResponse ldr;
  EXPECT_EQ(campaigns->ListDeliveries(BearerContext(intruder).get(), ld, &ldr).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::GetAccountRequest ga;
  ga.set_name(accounts[0]);
  v1::Account account;
  EXPECT_EQ(accounts_stub->GetAccount(BearerContext(intruder).get(), ga, &account).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::PauseAccountRequest pa;
  pa.set_name(accounts[0]);
  EXPECT_EQ(accounts_stub->PauseAccount(BearerContext(intruder).get(), pa, &account).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::GetTeamRequest gt;
  gt.set_name("tenants/owner/teams/main");
  v1::Team team;
  EXPECT_EQ(accounts_stub->GetTeam(BearerContext(intruder).get(), gt, &team).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::PauseTeamRequest pt;
  pt.set_name(gt.name());
  EXPECT_EQ(accounts_stub->PauseTeam(BearerContext(intruder).get(), pt, &team).error_code(),
            grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(accounts_stub->GetTeam(BearerContext(owner_key).get(), gt, &team).ok());
  EXPECT_FALSE(team.paused());
  v1::GetMediaAssetRequest gm;
  gm.set_name(media);
  v1::MediaAsset asset;
  EXPECT_EQ(media_stub->GetMediaAsset(BearerContext(intruder).get(), gm, &asset).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::WatchCampaignRequest watch;
  watch.set_name(draft.name());
  auto ctx = BearerContext(intruder);
  auto reader = campaigns->WatchCampaign(ctx.get(), watch);
  v1::WatchCampaignResponse ignored;
  EXPECT_FALSE(reader->Read(&ignored));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);

  // The owner's resources named inside the intruder's own requests are not found either, each
  // error naming its field, and the intruder has made nothing with them.
  const std::string own_media = NewMedia("intruder", intruder);
  struct Borrowed {
    v1::CreateCampaignRequest request;
    std::string field;
  };
  const std::vector<Borrowed> borrowed = {
      {PpvCampaign("intruder", {accounts[0]}, own_media, "Theirs"), "targets[0].account"},
      {PpvCampaign("intruder", {accounts[0]}, media, "Theirs"), "media[0]"},
  };
  for (const Borrowed& b : borrowed) {
    v1::Campaign made;
    grpc::Status s = campaigns->CreateCampaign(BearerContext(intruder).get(), b.request, &made);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    EXPECT_NE(s.error_message().find(b.field), std::string::npos) << s.error_message();
  }
  v1::CreateAccountRequest borrow_team;
  borrow_team.set_parent("tenants/intruder");
  borrow_team.set_account_id(ShortId(accounts[0]));
  borrow_team.mutable_account()->set_team(gt.name());
  grpc::Status borrowed_team =
      accounts_stub->CreateAccount(BearerContext(intruder).get(), borrow_team, &account);
  EXPECT_EQ(borrowed_team.error_code(), grpc::StatusCode::NOT_FOUND)
      << borrowed_team.error_message();
  EXPECT_NE(borrowed_team.error_message().find("account.team"), std::string::npos);
  v1::ListCampaignsRequest theirs;
  theirs.set_parent("tenants/intruder");
  ASSERT_TRUE(campaigns->ListCampaigns(BearerContext(intruder).get(), theirs, &lr).ok());
  EXPECT_EQ(lr.campaigns_size(), 0);
  v1::ListAccountsRequest their_accounts;
  their_accounts.set_parent("tenants/intruder");
  v1::ListAccountsResponse la;
  ASSERT_TRUE(accounts_stub->ListAccounts(BearerContext(intruder).get(), their_accounts, &la).ok());
  EXPECT_EQ(la.accounts_size(), 0);

  // Nothing changed for the owner.
  ASSERT_TRUE(campaigns->GetCampaign(BearerContext(owner_key).get(), get, &c).ok());
  EXPECT_EQ(c.state(), v1::Campaign::DRAFT);
  EXPECT_EQ(c.content().text(), "Mine");
  ASSERT_TRUE(accounts_stub->GetAccount(BearerContext(owner_key).get(), ga, &account).ok());
  EXPECT_FALSE(account.paused());
}

// The RPCs the test above does not try, each with the names of another tenant's resources (or
// that tenant as parent): all NOT_FOUND, and the owner's resources are as they were.
TEST_P(CampaignTest, EveryOtherRpcTreatsAnotherTenantsNamesAsNotFound) {
  const std::string owner_key = NewTenant("keeper");
  const std::vector<std::string> accounts = ImportAccounts("keeper", owner_key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("keeper", owner_key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  const v1::Campaign draft = NewDraft("keeper", owner_key, {accounts[0]}, media, "Ours");
  ASSERT_FALSE(draft.name().empty());
  auto audiences = v1::AudienceService::NewStub(stack_->channel());
  v1::CreateSegmentRequest sreq;
  sreq.set_parent("tenants/keeper");
  sreq.mutable_segment()->set_display_name("Lapsed");
  sreq.mutable_segment()->set_expired_only(true);
  v1::Segment segment;
  ASSERT_TRUE(audiences->CreateSegment(BearerContext(owner_key).get(), sreq, &segment).ok());
  const std::string team = "tenants/keeper/teams/main";

  const std::string intruder = NewTenant("prowler");
  auto teams = v1::AccountService::NewStub(stack_->channel());
  auto media_stub = v1::MediaService::NewStub(stack_->channel());
  auto analytics = v1::AnalyticsService::NewStub(stack_->channel());
  // `method` of `stub` with `request`, as the intruder: NOT_FOUND.
  auto expect_not_found = [&](const char* name, auto& stub, auto method, const auto& request) {
    const grpc::Status s = CallAs(intruder, stub, method, request);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << name << ": " << s.error_message();
  };
  const size_t ledger_before = LedgerOf(ShortId(accounts[0])).size();
  using Analytics = v1::AnalyticsService::Stub;
  using Audiences = v1::AudienceService::Stub;
  using Accounts = v1::AccountService::Stub;
  using Media = v1::MediaService::Stub;
  using Campaigns = v1::CampaignService::Stub;
  const std::string stats = draft.name() + "/stats";
  expect_not_found("GetCampaignStats", *analytics, &Analytics::GetCampaignStats,
                   Named<v1::GetCampaignStatsRequest>(stats));
  expect_not_found("ListCampaignBuyers", *analytics, &Analytics::ListCampaignBuyers,
                   Parented<v1::ListCampaignBuyersRequest>(draft.name()));
  expect_not_found("TopCampaigns", *analytics, &Analytics::TopCampaigns,
                   Parented<v1::TopCampaignsRequest>("tenants/keeper"));
  expect_not_found("GetAccountOverview", *analytics, &Analytics::GetAccountOverview,
                   Named<v1::GetAccountOverviewRequest>(accounts[0]));
  expect_not_found("ListUserLists", *audiences, &Audiences::ListUserLists,
                   OfAccount<v1::ListUserListsRequest>(accounts[0]));
  v1::CreateUserListRequest create_list = OfAccount<v1::CreateUserListRequest>(accounts[0]);
  create_list.set_display_name("theirs");
  expect_not_found("CreateUserList", *audiences, &Audiences::CreateUserList, create_list);
  v1::AddFansToUserListRequest add_fans = OfAccount<v1::AddFansToUserListRequest>(accounts[0]);
  add_fans.set_user_list_id("123");
  add_fans.add_fan_ids(1);
  expect_not_found("AddFansToUserList", *audiences, &Audiences::AddFansToUserList, add_fans);
  expect_not_found("CreateSegment", *audiences, &Audiences::CreateSegment, sreq);
  expect_not_found("GetSegment", *audiences, &Audiences::GetSegment,
                   Named<v1::GetSegmentRequest>(segment.name()));
  expect_not_found("ListSegments", *audiences, &Audiences::ListSegments,
                   Parented<v1::ListSegmentsRequest>("tenants/keeper"));
  v1::UpdateSegmentRequest update_segment;
  update_segment.mutable_segment()->set_name(segment.name());
  update_segment.mutable_segment()->set_display_name("Theirs");
  update_segment.mutable_update_mask()->add_paths("display_name");
  expect_not_found("UpdateSegment", *audiences, &Audiences::UpdateSegment, update_segment);
  expect_not_found("DeleteSegment", *audiences, &Audiences::DeleteSegment,
                   Named<v1::DeleteSegmentRequest>(segment.name()));
  expect_not_found("ListTeams", *teams, &Accounts::ListTeams,
                   Parented<v1::ListTeamsRequest>("tenants/keeper"));
  v1::UpdateTeamRequest update_team;
  update_team.mutable_team()->set_name(team);
  update_team.mutable_team()->set_rate_limit_per_minute(1);
  update_team.mutable_update_mask()->add_paths("rate_limit_per_minute");
  expect_not_found("UpdateTeam", *teams, &Accounts::UpdateTeam, update_team);
  expect_not_found("DeleteTeam", *teams, &Accounts::DeleteTeam, Named<v1::DeleteTeamRequest>(team));
  expect_not_found("ResumeTeam", *teams, &Accounts::ResumeTeam, Named<v1::ResumeTeamRequest>(team));
  expect_not_found("RegisterTeamWebhook", *teams, &Accounts::RegisterTeamWebhook,
                   Named<v1::RegisterTeamWebhookRequest>(team));
  expect_not_found("ListAccounts", *teams, &Accounts::ListAccounts,
                   Parented<v1::ListAccountsRequest>("tenants/keeper"));
  v1::UpdateAccountRequest update_account;
  update_account.mutable_account()->set_name(accounts[0]);
  update_account.mutable_account()->set_display_name("taken");
  update_account.mutable_update_mask()->add_paths("display_name");
  expect_not_found("UpdateAccount", *teams, &Accounts::UpdateAccount, update_account);
  expect_not_found("DeleteAccount", *teams, &Accounts::DeleteAccount,
                   Named<v1::DeleteAccountRequest>(accounts[0]));
  expect_not_found("ResumeAccount", *teams, &Accounts::ResumeAccount,
                   Named<v1::ResumeAccountRequest>(accounts[0]));
  v1::SyncAccountsRequest sync;
  sync.set_team(team);
  expect_not_found("SyncAccounts", *teams, &Accounts::SyncAccounts, sync);
  expect_not_found("ListMediaAssets", *media_stub, &Media::ListMediaAssets,
                   Parented<v1::ListMediaAssetsRequest>("tenants/keeper"));
  expect_not_found("DeleteMediaAsset", *media_stub, &Media::DeleteMediaAsset,
                   Named<v1::DeleteMediaAssetRequest>(media));
  expect_not_found("PauseCampaign", *campaigns, &Campaigns::PauseCampaign,
                   Named<v1::PauseCampaignRequest>(draft.name()));
  expect_not_found("ResumeCampaign", *campaigns, &Campaigns::ResumeCampaign,
                   Named<v1::ResumeCampaignRequest>(draft.name()));
  v1::SendTestMessageRequest test;
  test.set_campaign(draft.name());
  test.set_account(accounts[0]);
  test.add_fan_ids(SomeFan(ShortId(accounts[0])));
  expect_not_found("SendTestMessage", *campaigns, &Campaigns::SendTestMessage, test);
  expect_not_found("ListUpstreamQueue", *campaigns, &Campaigns::ListUpstreamQueue,
                   OfAccount<v1::ListUpstreamQueueRequest>(accounts[0]));
  expect_not_found(
      "GetDelivery", *campaigns, &Campaigns::GetDelivery,
      Named<v1::GetDeliveryRequest>(StrCat(draft.name(), "/deliveries/", ShortId(accounts[0]))));

  // The owner's resources are as they were.
  v1::GetTeamRequest gt;
  gt.set_name(team);
  v1::Team t;
  ASSERT_TRUE(teams->GetTeam(BearerContext(owner_key).get(), gt, &t).ok());
  EXPECT_NE(t.rate_limit_per_minute(), 1);
  v1::GetAccountRequest ga;
  ga.set_name(accounts[0]);
  v1::Account a;
  ASSERT_TRUE(teams->GetAccount(BearerContext(owner_key).get(), ga, &a).ok());
  EXPECT_NE(a.display_name(), "taken");
  v1::GetSegmentRequest gs;
  gs.set_name(segment.name());
  v1::Segment sg;
  EXPECT_TRUE(audiences->GetSegment(BearerContext(owner_key).get(), gs, &sg).ok());
  EXPECT_EQ(sg.display_name(), "Lapsed");
  v1::GetMediaAssetRequest gm;
  gm.set_name(media);
  v1::MediaAsset m;
  EXPECT_TRUE(media_stub->GetMediaAsset(BearerContext(owner_key).get(), gm, &m).ok());
  v1::GetCampaignRequest gc;
  gc.set_name(draft.name());
  v1::Campaign c;
  ASSERT_TRUE(campaigns->GetCampaign(BearerContext(owner_key).get(), gc, &c).ok());
  EXPECT_EQ(c.state(), v1::Campaign::DRAFT);
  EXPECT_EQ(LedgerOf(ShortId(accounts[0])).size(), ledger_before);
}

TEST_P(CampaignTest, InvalidCampaignsAreRefusedAndStoreNothing) {
  const std::string key = NewTenant("strict");
  const std::vector<std::string> accounts = ImportAccounts("strict", key, 1);
  ASSERT_FALSE(accounts.empty());
  const std::string media = NewMedia("strict", key);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  const v1::CreateCampaignRequest good = PpvCampaign("strict", {accounts[0]}, media, "ok");

  struct Case {
    std::string name;
    std::function<void(v1::CreateCampaignRequest&)> mutate;
    std::string field;
    grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
  };
  const std::vector<Case> cases = {
      {"price below $3",
       [](auto& r) { r.mutable_campaign()->mutable_content()->set_price_cents(299); },
       "price_cents"},
      {"price above $200",
       [](auto& r) { r.mutable_campaign()->mutable_content()->set_price_cents(20001); },
       "price_cents"},
      {"priced without media",
       [](auto& r) { r.mutable_campaign()->mutable_content()->clear_media(); }, "media"},
      {"preview not among media",
       [&](auto& r) {
         r.mutable_campaign()->mutable_content()->add_previews("tenants/strict/media/other");
       },
       "previews"},
      {"preview twice",
       [&](auto& r) {
         r.mutable_campaign()->mutable_content()->add_previews(media);
         r.mutable_campaign()->mutable_content()->add_previews(media);
       },
       "previews[1]"},
      {"empty text", [](auto& r) { r.mutable_campaign()->mutable_content()->clear_text(); },
       "text"},
      {"text too long",
       [](auto& r) { r.mutable_campaign()->mutable_content()->set_text(std::string(10001, 'x')); },
       "text"},
      {"no targets", [](auto& r) { r.mutable_campaign()->clear_targets(); }, "targets"},
      {"target without recipients",
       [](auto& r) { r.mutable_campaign()->mutable_targets(0)->clear_user_lists(); }, "targets[0]"},
      {"account twice",
       [](auto& r) { *r.mutable_campaign()->add_targets() = r.campaign().targets(0); },
       "targets[1]"},
      {"unknown account",
       [](auto& r) {
         r.mutable_campaign()->mutable_targets(0)->set_account("tenants/strict/accounts/acct_zz");
       },
       "targets[0].account", grpc::StatusCode::NOT_FOUND},
      {"unknown media",
       [](auto& r) {
         r.mutable_campaign()->mutable_content()->set_media(0, "tenants/strict/media/nope");
       },
       "media[0]", grpc::StatusCode::NOT_FOUND},
      {"send time in the past",
       [](auto& r) {
         r.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) -
                                                                3600);
       },
       "send_time"},
      {"negative fan id",
       [](auto& r) { r.mutable_campaign()->mutable_targets(0)->add_fan_ids(-4); }, "fan_ids"},
      // Echoed whole, the name would make the error's trailer too large for the client.
      {"a 20 KB account name",
       [](auto& r) {
         r.mutable_campaign()->mutable_targets(0)->set_account(
             StrCat("tenants/strict/accounts/", std::string(20'000, 'a')));
       },
       "targets[0].account"},
  };
  for (const Case& c : cases) {
    v1::CreateCampaignRequest req = good;
    c.mutate(req);
    v1::Campaign out;
    grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &out);
    EXPECT_EQ(s.error_code(), c.code) << c.name;
    EXPECT_NE(s.error_message().find(c.field), std::string::npos)
        << c.name << ": " << s.error_message();
  }
  v1::ListCampaignsRequest list;
  list.set_parent("tenants/strict");
  v1::ListCampaignsResponse lr;
  ASSERT_TRUE(campaigns->ListCampaigns(BearerContext(key).get(), list, &lr).ok());
  EXPECT_EQ(lr.campaigns_size(), 0);
}

INSTANTIATE_TEST_SUITE_P(Redis, CampaignTest, testing::kEachRedis, testing::RedisKindName);

}  // namespace
}  // namespace herald
