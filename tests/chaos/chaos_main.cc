// herald_chaos: Herald's processes under a realistic load while faults are injected on a seeded
// schedule, then checked against the upstream simulator's ledger and Herald's own API.
//
//   herald_chaos [--duration=3m] [--seed=1] [--tenants=3] [--accounts=6] [--fault_gap=6s]
//                [--log_dir=DIR]
//
// It starts redis-server (AOF, appendfsync always), upstream-sim, and herald as separate
// processes: api, two workers, two ingest replicas behind a TCP proxy (tcp_proxy.h). For
// --duration it creates campaigns for every tenant (immediate, scheduled, rescheduled, drafts then
// launched, cancelled before dispatch, cancelled after sending) while the simulator sells them and
// sends webhooks (some twice), and every --fault_gap or so (randomly 0.5-1.5x) injects one fault:
// SIGKILL or SIGTERM of a herald process then its restart, a Redis restart (AOF reload) or pause,
// simulator 5xx bursts, lost responses after commit, connection resets, latency spikes, a 429
// storm, a team out of credits (402) then topped up and resumed, a tenant's unused uploads used
// up (as posts made outside Herald would use them), webhooks dropped for a while.
// Then it lifts every fault, waits for the work to settle, and checks:
//   - every campaign is final and every delivery completed, failed with a reason, or cancelled;
//   - no (campaign, account) has a second upstream message, and every completed delivery's
//     message is on the ledger;
//   - each campaign's purchases and gross revenue equal the ledger's, to the cent (after
//     reconciliation repaired what dropped webhooks lost; a webhook applied twice would show
//     as more);
//   - each tenant's buyers list, filled by an automation on messages.ppv.unlocked of its first
//     account, holds only fans the ledger shows buying there, and the rule counted each of them
//     (a fan whose unlock webhook was dropped is missing from it: nothing repairs that, so the
//     share listed is reported, not checked);
//   - no queue job is left ready, leased or delayed.
// It prints the figures and the faults injected, and exits 0 only when every check holds. On a
// failure it prints the end of each process's log; with --log_dir it writes every whole log there
// at the end (DIR/<process>.log, the simulator's too), pass or fail, with herald at log level info.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <absl/strings/numbers.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>
#include <boost/json.hpp>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/net.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/wait.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/audience.grpc.pb.h>
#include <herald/v1/automation.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>

#include "tcp_proxy.h"

namespace herald::chaos {
namespace {

namespace json = boost::json;
using testing::BearerContext;
using testing::HeraldProcess;

constexpr char kAdminKey[] = "chaos-platform-admin-key";
const std::string kEncryptionKey(64, 'c');

struct Options {
  absl::Duration duration = absl::Minutes(3);
  uint64_t seed = 1;
  int tenants = 3;
  int accounts = 6;  // per tenant (one upstream team each)
  absl::Duration fault_gap = absl::Seconds(6);
  std::string log_dir;  // set: every process's whole log is written here at the end
};

std::optional<Options> ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const std::string value(eq == std::string_view::npos ? "" : arg.substr(eq + 1));
    bool ok = eq != std::string_view::npos;
    if (ok && name == "--duration") {
      ok = absl::ParseDuration(value, &o.duration) && o.duration > absl::ZeroDuration();
    } else if (ok && name == "--fault_gap") {
      ok = absl::ParseDuration(value, &o.fault_gap) && o.fault_gap >= absl::Seconds(1);
    } else if (ok && name == "--log_dir") {
      o.log_dir = value;
      ok = !value.empty();
    } else if (ok && name == "--seed") {
      ok = absl::SimpleAtoi(value, &o.seed);
    } else if (ok && name == "--tenants") {
      ok = absl::SimpleAtoi(value, &o.tenants) && o.tenants >= 1 && o.tenants <= 20;
    } else if (ok && name == "--accounts") {
      ok = absl::SimpleAtoi(value, &o.accounts) && o.accounts >= 1 && o.accounts <= 50;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr,
                   "herald_chaos: bad argument %s\nusage: herald_chaos [--duration=3m] [--seed=N] "
                   "[--tenants=1..20] [--accounts=1..50] [--fault_gap=6s] [--log_dir=DIR]\n",
                   argv[i]);
      return std::nullopt;
    }
  }
  return o;
}

void Log(const std::string& line) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "[chaos %s] %s\n",
               absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::UTCTimeZone()).c_str(),
               line.c_str());
}

// ---------------------------------------------------------------------------------------------
// The processes.

struct Tenant {
  std::string id;  // "t<i>", on the simulator's team-<i>
  int sim_team = 0;
  std::string key;
  std::string team;  // "tenants/t<i>/teams/main"
  std::string webhook_id;
  std::vector<std::string> accounts;
  std::string media;
  // The custom list of accounts[0] an automation adds each of its buyers to, and the rule.
  std::string buyers_list;
  std::string buyers_rule;
};

class Stack {
 public:
  static absl::StatusOr<std::unique_ptr<Stack>> Start(const Options& o) {
    std::unique_ptr<Stack> s(new Stack);
    // Logs to keep are worth their detail: info rather than warnings only.
    s->log_level_ = o.log_dir.empty() ? "warn" : "info";
    auto redis = testing::RedisServer::Start({.appendonly = true});
    if (!redis.ok()) return redis.status();
    s->redis = std::move(*redis);
    auto sim = testing::SimulatorProcess::Start(
        {.args = {StrCat("--teams=", o.tenants), StrCat("--accounts_per_team=", o.accounts),
                  StrCat("--seed=", o.seed), "--fans_per_account=20", "--delivery_rate=50",
                  "--rate_limit_per_minute=100000", "--purchase_probability=0.3",
                  "--fan_behavior=uniform", "--purchase_delay_min=100ms", "--purchase_delay_max=3s",
                  "--unsend_window=30s", "--webhook_retry_base=200ms", "--webhook_max_retries=10",
                  "--webhook_duplicate_rate=0.05"}});
    if (!sim.ok()) return sim.status();
    s->sim = std::move(*sim);

    // Ingest replicas first: the proxy in front of them is the public webhook URL every team
    // registers with the upstream.
    for (int i = 1; i <= 2; ++i) {
      auto ingest = s->StartHerald("ingest", "");
      if (!ingest.ok()) return ingest.status();
      s->processes.push_back({StrCat("ingest-", i), std::move(*ingest)});
    }
    auto proxy = TcpProxy::Start(
        {s->processes[0].process->ingest_port(), s->processes[1].process->ingest_port()});
    if (!proxy.ok()) return proxy.status();
    s->proxy = std::move(*proxy);
    const std::string public_url = StrCat("http://127.0.0.1:", s->proxy->port(), "/webhooks");
    for (const char* role : {"api", "worker", "worker"}) {
      auto process = s->StartHerald(role, public_url);
      if (!process.ok()) return process.status();
      const int n =
          static_cast<int>(std::count_if(s->processes.begin(), s->processes.end(),
                                         [&](const Named& p) { return p.name.starts_with(role); }));
      s->processes.push_back(
          {std::string(role) == "api" ? "api" : StrCat(role, "-", n + 1), std::move(*process)});
    }
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    s->channel =
        grpc::CreateCustomChannel(s->api().grpc_target(), grpc::InsecureChannelCredentials(), args);
    return s;
  }

  HeraldProcess& api() {
    for (Named& p : processes) {
      if (p.name == "api") return *p.process;
    }
    std::abort();
  }

  uint16_t sim_port() const { return sim->port(); }

  struct Named {
    std::string name;
    std::unique_ptr<HeraldProcess> process;
  };

  std::unique_ptr<testing::RedisServer> redis;
  std::unique_ptr<testing::SimulatorProcess> sim;
  std::unique_ptr<TcpProxy> proxy;
  std::vector<Named> processes;
  std::shared_ptr<grpc::Channel> channel;

 private:
  Stack() = default;

  std::string log_level_;

  absl::StatusOr<std::unique_ptr<HeraldProcess>> StartHerald(const std::string& role,
                                                             const std::string& public_url) {
    std::vector<std::string> args = {"serve",
                                     StrCat("--role=", role),
                                     StrCat("--upstream_url=http://127.0.0.1:", sim->port()),
                                     "--poll_interval=100ms",
                                     "--lookup_retry=2s",
                                     "--lease_duration=3s",
                                     "--reconcile_schedule=2s,8s",
                                     "--drain_timeout=5s",
                                     "--queue_stats_interval=2s",
                                     StrCat("--log_level=", log_level_)};
    if (!public_url.empty()) args.push_back(StrCat("--public_webhook_url=", public_url));
    return HeraldProcess::Start(
        {.args = std::move(args),
         .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", kEncryptionKey}},
         .redis_port = redis->port()});
  }
};

// A simulator control call, tried up to three times; returns the status code (0 when every try
// failed).
int Sim(Stack& s, std::string_view method, std::string_view target, std::string_view body,
        std::map<std::string, std::string> headers = {}) {
  headers.emplace("Content-Type", "application/json");
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const absl::Time start = absl::Now();
    auto r = testing::HttpRequest(s.sim_port(), method, target, body, headers, absl::Seconds(5));
    if (r.ok() && r->status < 500) {
      if (r->status >= 300) {
        Log(StrCat("simulator ", method, " ", target, ": ", r->status, " ", r->body));
      }
      return r->status;
    }
    // Team calls (webhook management) meet the injected faults too: retried like any client.
    Log(StrCat("simulator ", method, " ", target, " (try ", attempt,
               "): ", r.ok() ? StrCat(r->status, " ", r->body) : r.status().ToString(), " after ",
               absl::FormatDuration(absl::Now() - start)));
  }
  const std::string logs = s.sim->Logs();
  Log(StrCat("simulator log (last 3000 bytes):\n",
             logs.substr(logs.size() > 3000 ? logs.size() - 3000 : 0)));
  return 0;
}

// What a client retries: the server was unreachable or stopping (a call that reaches a server as
// it shuts down is CANCELLED without having begun), or asked it to slow down.
bool Retryable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::CANCELLED ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
         s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

// Calls `call` until it answers something other than a transient error, for up to `budget`:
// processes restart under the load, and clients of a real service retry the same way (creates
// carry a request_id, so a retry never creates twice).
grpc::Status WithRetries(const std::function<grpc::Status()>& call,
                         absl::Duration budget = absl::Seconds(60)) {
  const absl::Time deadline = absl::Now() + budget;
  while (true) {
    const grpc::Status s = call();
    if (!Retryable(s) || absl::Now() > deadline) return s;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

absl::StatusOr<std::vector<Tenant>> SetUpTenants(Stack& s, const Options& o) {
  std::vector<Tenant> tenants;
  for (int i = 1; i <= o.tenants; ++i) {
    Tenant t{.id = StrCat("t", i), .sim_team = i};
    auto key = testing::CreateTenant(s.channel, kAdminKey, t.id);
    if (!key.ok()) return key.status();
    t.key = *key;
    auto team =
        testing::CreateTeamWithAccounts(s.channel, t.key, t.id, {.team_id = "main", .sim_team = i});
    if (!team.ok()) return team.status();
    t.team = team->team.name();
    t.webhook_id = team->team.webhook_id();
    t.accounts = team->accounts;
    if (t.accounts.empty())
      return absl::FailedPreconditionError(StrCat(t.team, " has no accounts"));
    if (t.webhook_id.empty()) {
      return absl::FailedPreconditionError(StrCat(t.team, " has no upstream webhook"));
    }
    auto media = testing::CreateMediaAsset(s.channel, t.key, t.id, v1::MediaAsset::IMAGE,
                                           "https://cdn.example.com/chaos.jpg");
    if (!media.ok()) return media.status();
    t.media = *media;
    v1::CreateUserListRequest list_req;
    list_req.set_account(t.accounts[0]);
    list_req.set_display_name("Buyers");
    v1::UserList list;
    grpc::Status made = v1::AudienceService::NewStub(s.channel)->CreateUserList(
        BearerContext(t.key).get(), list_req, &list);
    if (!made.ok()) return absl::UnavailableError(StrCat("buyers list: ", made.error_message()));
    t.buyers_list = list.id();
    v1::CreateAutomationRequest rule_req;
    rule_req.set_parent(StrCat("tenants/", t.id));
    rule_req.mutable_automation()->set_account(t.accounts[0]);
    rule_req.mutable_automation()->set_trigger(v1::Automation::PPV_UNLOCKED);
    rule_req.mutable_automation()->set_user_list_id(t.buyers_list);
    v1::Automation rule;
    made = v1::AutomationService::NewStub(s.channel)->CreateAutomation(BearerContext(t.key).get(),
                                                                       rule_req, &rule);
    if (!made.ok()) return absl::UnavailableError(StrCat("buyers rule: ", made.error_message()));
    t.buyers_rule = rule.name();
    tenants.push_back(std::move(t));
  }
  return tenants;
}

// ---------------------------------------------------------------------------------------------
// The load.

struct CampaignRecord {
  const Tenant* tenant = nullptr;
  std::string name;
  std::string text;
  std::string kind;
};

// Creates campaigns until told to stop, from its own thread; it only makes RPCs (processes are
// started and stopped by the fault thread, which is the main thread).
class Load {
 public:
  Load(Stack& stack, const std::vector<Tenant>& tenants, uint64_t seed)
      : stack_(stack), tenants_(tenants), rng_(seed * 7919 + 17) {}

  void Run(absl::Time end) {
    absl::Time next_create = absl::Now();
    while (absl::Now() < end) {
      RunDueActions(absl::Now());
      if (absl::Now() >= next_create) {
        CreateOne();
        next_create = absl::Now() + absl::Milliseconds(Uniform(300, 1500));
      }
      absl::SleepFor(absl::Milliseconds(50));  // pacing of the load, not synchronisation
    }
    RunDueActions(absl::InfiniteFuture());  // cancels and launches still planned
  }

  std::vector<CampaignRecord> campaigns() {
    std::lock_guard<std::mutex> lock(mu_);
    return campaigns_;
  }
  std::map<std::string, int> counts() {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_;
  }

 private:
  struct Action {
    absl::Time at;
    std::string what;  // "cancel", "launch", "reschedule", "update held"
    CampaignRecord campaign;
  };

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  void Count(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_[what];
  }

  void CreateOne() {
    const Tenant& t =
        tenants_[static_cast<size_t>(Uniform(0, static_cast<int>(tenants_.size()) - 1))];
    std::vector<std::string> accounts = t.accounts;
    std::shuffle(accounts.begin(), accounts.end(), rng_);
    accounts.resize(static_cast<size_t>(Uniform(1, static_cast<int>(accounts.size()))));
    const int roll = Uniform(0, 99);
    std::string kind = roll < 45   ? "now"
                       : roll < 58 ? "scheduled"
                       : roll < 68 ? "rescheduled"
                       : roll < 76 ? "held upstream, then updated"
                       : roll < 83 ? "cancelled before dispatch"
                       : roll < 93 ? "cancelled after sending"
                                   : "draft then launched";
    const int64_t price =
        std::array<int64_t, 4>{300, 900, 1500, 2500}[static_cast<size_t>(Uniform(0, 3))];
    const int n = ++created_;
    CampaignRecord record{
        .tenant = &t, .text = StrCat("chaos #", n, " (", kind, ")"), .kind = kind};
    v1::CreateCampaignRequest req =
        testing::CampaignToFans(t.id, accounts, record.text, price, t.media);
    req.set_request_id(StrCat("chaos-", n));
    const absl::Time now = absl::Now();
    if (kind == "scheduled" || kind == "rescheduled" || kind == "cancelled before dispatch") {
      *req.mutable_campaign()->mutable_send_time() =
          google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
              absl::ToUnixMillis(now + absl::Seconds(Uniform(3, 6))));
    }
    if (kind == "held upstream, then updated") {
      // Handed to the upstream at once, to hold until the send time; the update reaches the
      // held messages by PUT (a new price, an earlier time; the text, which the checks below
      // match messages by, stays).
      *req.mutable_campaign()->mutable_send_time() =
          google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
              absl::ToUnixMillis(now + absl::Seconds(Uniform(6, 9))));
      req.mutable_campaign()->mutable_upstream_lead()->set_seconds(3600);
    }
    if (kind == "draft then launched") req.mutable_campaign()->set_save_as_draft(true);
    v1::Campaign created;
    const grpc::Status s = WithRetries([&] {
      return v1::CampaignService::NewStub(stack_.channel)
          ->CreateCampaign(BearerContext(t.key).get(), req, &created);
    });
    if (!s.ok()) {
      Log(StrCat("CreateCampaign ", record.text, ": ", s.error_message()));
      Count("create failed");
      return;
    }
    record.name = created.name();
    {
      std::lock_guard<std::mutex> lock(mu_);
      campaigns_.push_back(record);
      ++counts_[StrCat("campaigns ", kind)];
    }
    if (kind == "rescheduled") {
      actions_.push_back({now + absl::Seconds(1), "reschedule", record});
    } else if (kind == "cancelled before dispatch") {
      actions_.push_back({now + absl::Seconds(1), "cancel", record});
    } else if (kind == "cancelled after sending") {
      actions_.push_back({now + absl::Milliseconds(Uniform(1500, 4000)), "cancel", record});
    } else if (kind == "draft then launched") {
      actions_.push_back({now + absl::Seconds(1), "launch", record});
    } else if (kind == "held upstream, then updated") {
      actions_.push_back({now + absl::Milliseconds(Uniform(1000, 3000)), "update held", record});
    }
  }

  void RunDueActions(absl::Time now) {
    for (auto it = actions_.begin(); it != actions_.end();) {
      if (it->at > now) {
        ++it;
        continue;
      }
      Act(*it);
      it = actions_.erase(it);
    }
  }

  void Act(const Action& a) {
    auto stub = v1::CampaignService::NewStub(stack_.channel);
    const std::string& key = a.campaign.tenant->key;
    grpc::Status s;
    if (a.what == "cancel") {
      v1::CancelCampaignRequest req;
      req.set_name(a.campaign.name);
      v1::CancelCampaignResponse resp;
      s = WithRetries([&] { return stub->CancelCampaign(BearerContext(key).get(), req, &resp); });
      // A retried cancel that had taken effect finds the campaign cancelled already.
      if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) s = grpc::Status::OK;
    } else if (a.what == "launch") {
      v1::LaunchCampaignRequest req;
      req.set_name(a.campaign.name);
      v1::Campaign resp;
      s = WithRetries([&] { return stub->LaunchCampaign(BearerContext(key).get(), req, &resp); });
      if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) s = grpc::Status::OK;
    } else if (a.what == "update held") {
      v1::UpdateCampaignRequest req;
      req.mutable_campaign()->set_name(a.campaign.name);
      req.mutable_campaign()->mutable_content()->set_price_cents(1000);
      *req.mutable_campaign()->mutable_send_time() =
          google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
              absl::ToUnixMillis(absl::Now() + absl::Seconds(3)));
      req.mutable_update_mask()->add_paths("content.price_cents");
      req.mutable_update_mask()->add_paths("send_time");
      v1::Campaign resp;
      s = WithRetries([&] { return stub->UpdateCampaign(BearerContext(key).get(), req, &resp); });
      if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        Count("update held refused: already dispatched");
        s = grpc::Status::OK;
      }
    } else {  // reschedule: two seconds later than now, before it was due
      v1::UpdateCampaignRequest req;
      req.mutable_campaign()->set_name(a.campaign.name);
      *req.mutable_campaign()->mutable_send_time() =
          google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
              absl::ToUnixMillis(absl::Now() + absl::Seconds(3)));
      req.mutable_update_mask()->add_paths("send_time");
      v1::Campaign resp;
      s = WithRetries([&] { return stub->UpdateCampaign(BearerContext(key).get(), req, &resp); });
      // Under faults the campaign may have been dispatched already: refused, clearly.
      if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        Count("reschedule refused: already dispatched");
        s = grpc::Status::OK;
      }
    }
    if (s.ok()) {
      Count(StrCat(a.what, " done"));
    } else {
      Count(StrCat(a.what, " failed"));
      Log(StrCat(a.what, " ", a.campaign.name, ": ", s.error_message()));
    }
  }

  Stack& stack_;
  const std::vector<Tenant>& tenants_;
  std::mt19937_64 rng_;
  int created_ = 0;
  std::vector<Action> actions_;
  std::mutex mu_;
  std::vector<CampaignRecord> campaigns_;
  std::map<std::string, int> counts_;
};

// ---------------------------------------------------------------------------------------------
// The faults (main thread: it starts processes, and a child dies with the thread that started it).

class Faults {
 public:
  Faults(Stack& stack, const std::vector<Tenant>& tenants, uint64_t seed)
      : stack_(stack), tenants_(tenants), rng_(seed) {}

  void Run(absl::Time end, absl::Duration gap) {
    absl::Time next = absl::Now() + gap;
    while (absl::Now() < end) {
      Restore(absl::Now());
      if (absl::Now() >= next) {
        InjectOne();
        const double factor = std::uniform_real_distribution<double>(0.5, 1.5)(rng_);
        next = absl::Now() + gap * factor;
      }
      absl::SleepFor(absl::Milliseconds(50));  // pacing of the schedule
    }
    Restore(absl::InfiniteFuture());
  }

  // Lifts everything still injected and brings every process back: the end of the run.
  void LiftAll() {
    Sim(stack_, "DELETE", "/_sim/faults", "");
    Restore(absl::InfiniteFuture());
    for (const Tenant& t : tenants_) Recover(t);
    for (Stack::Named& p : stack_.processes) {
      if (!p.process->process().running()) Restart(p);
    }
  }

  const std::map<std::string, int>& injected() const { return injected_; }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  struct Restoration {
    absl::Time at;
    std::function<void()> run;
  };

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  const Tenant& AnyTenant() {
    return tenants_[static_cast<size_t>(Uniform(0, static_cast<int>(tenants_.size()) - 1))];
  }
  Stack::Named& AnyProcess() {
    return stack_
        .processes[static_cast<size_t>(Uniform(0, static_cast<int>(stack_.processes.size()) - 1))];
  }

  void Restart(Stack::Named& p) {
    const absl::Status s = p.process->Restart();
    if (!s.ok()) problems_.push_back(StrCat(p.name, " did not restart: ", s.ToString()));
  }

  // The team has credits and its normal limit again, its webhook is enabled, and Herald resumes
  // it (what an operator does after a 402).
  void Recover(const Tenant& t) {
    const std::string team = StrCat("/_sim/teams/team-", t.sim_team);
    Sim(stack_, "POST", team, R"({"credits": 1000000000})");
    Sim(stack_, "POST", team, R"({"rate_limit_per_minute": 100000})");
    Sim(stack_, "PUT", StrCat("/api/webhooks/", t.webhook_id), R"({"enabled": true})",
        {{"Authorization", StrCat("Bearer sim-key-", t.sim_team)}});
    v1::ResumeTeamRequest req;
    req.set_name(t.team);
    v1::Team resp;
    const grpc::Status s = WithRetries([&] {
      return v1::AccountService::NewStub(stack_.channel)
          ->ResumeTeam(BearerContext(t.key).get(), req, &resp);
    });
    if (!s.ok()) problems_.push_back(StrCat("ResumeTeam ", t.team, ": ", s.error_message()));
  }

  void Later(absl::Duration after, std::function<void()> run) {
    restorations_.push_back({absl::Now() + after, std::move(run)});
  }

  void Restore(absl::Time now) {
    for (size_t i = 0; i < restorations_.size();) {
      if (restorations_[i].at <= now) {
        std::function<void()> run = std::move(restorations_[i].run);
        restorations_.erase(restorations_.begin() + static_cast<std::ptrdiff_t>(i));
        run();
      } else {
        ++i;
      }
    }
  }

  void InjectOne() {
    static const std::vector<std::string> kKinds = {"SIGKILL a herald process",
                                                    "SIGTERM a herald process",
                                                    "Redis restart (AOF reload)",
                                                    "Redis pause",
                                                    "upstream 5xx burst",
                                                    "upstream lost responses",
                                                    "upstream resets",
                                                    "upstream latency spike",
                                                    "upstream 429 storm",
                                                    "upstream out of credits",
                                                    "upstream media used up",
                                                    "webhooks dropped"};
    const std::string& kind =
        kKinds[static_cast<size_t>(Uniform(0, static_cast<int>(kKinds.size()) - 1))];
    ++injected_[kind];
    if (kind == "SIGKILL a herald process") {
      Stack::Named& p = AnyProcess();
      Log(StrCat("fault: SIGKILL ", p.name));
      p.process->process().Kill();
      absl::SleepFor(absl::Milliseconds(Uniform(200, 2000)));  // down for a while
      Restart(p);
    } else if (kind == "SIGTERM a herald process") {
      Stack::Named& p = AnyProcess();
      Log(StrCat("fault: SIGTERM ", p.name));
      p.process->process().Signal(SIGTERM);
      const std::optional<int> status = p.process->process().Wait(absl::Seconds(30));
      if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
        problems_.push_back(StrCat(p.name, " did not drain and exit 0 on SIGTERM"));
      }
      Restart(p);
    } else if (kind == "Redis restart (AOF reload)") {
      Log("fault: Redis restart");
      const absl::Status s = stack_.redis->Restart(/*graceful=*/true);
      if (!s.ok()) problems_.push_back(StrCat("Redis did not restart: ", s.ToString()));
    } else if (kind == "Redis pause") {
      Log("fault: Redis paused 2 s");
      auto r = stack_.redis->Command({"CLIENT", "PAUSE", "2000", "ALL"});
      if (!r.ok()) Log(StrCat("CLIENT PAUSE: ", r.status().ToString()));
    } else if (kind == "upstream 5xx burst") {
      Log("fault: upstream 5xx burst");
      Sim(stack_, "POST", "/_sim/faults",
          R"({"error_rate": 0.6, "error_status": 503, "count": 60})");
    } else if (kind == "upstream lost responses") {
      Log("fault: upstream commits then loses responses");
      Sim(stack_, "POST", "/_sim/faults", R"({"commit_then_lose_rate": 0.5, "count": 30})");
    } else if (kind == "upstream resets") {
      Log("fault: upstream resets connections");
      Sim(stack_, "POST", "/_sim/faults", R"({"reset_rate": 0.5, "count": 40})");
    } else if (kind == "upstream latency spike") {
      Log("fault: upstream latency spike");
      Sim(stack_, "POST", "/_sim/faults",
          R"({"latency_ms": {"fixed": 800, "jitter": 700}, "count": 80})");
    } else if (kind == "upstream 429 storm") {
      const Tenant& t = AnyTenant();
      Log(StrCat("fault: team-", t.sim_team, " limited to 5 calls a minute (429s)"));
      const std::string team = StrCat("/_sim/teams/team-", t.sim_team);
      Sim(stack_, "POST", team, R"({"rate_limit_per_minute": 5})");
      Later(absl::Seconds(Uniform(4, 10)),
            [this, team] { Sim(stack_, "POST", team, R"({"rate_limit_per_minute": 100000})"); });
    } else if (kind == "upstream out of credits") {
      const Tenant& t = AnyTenant();
      Log(StrCat("fault: team-", t.sim_team, " out of credits (402)"));
      Sim(stack_, "POST", StrCat("/_sim/teams/team-", t.sim_team), R"({"credits": 0})");
      Later(absl::Seconds(Uniform(3, 8)), [this, &t] { Recover(t); });
    } else if (kind == "upstream media used up") {
      // As posts made outside Herald would: sends between their upload and the send find their
      // single-use media ids spent, and upload again.
      const Tenant& t = AnyTenant();
      Log(StrCat("fault: every unused upload of ", t.id, "'s accounts used up"));
      for (const std::string& account : t.accounts) {
        Sim(stack_, "POST", StrCat("/_sim/accounts/", testing::ShortId(account), "/media/spend"),
            "");
      }
    } else {  // webhooks dropped
      const Tenant& t = AnyTenant();
      Log(StrCat("fault: team-", t.sim_team, "'s webhook paused (events lost)"));
      Sim(stack_, "PUT", StrCat("/api/webhooks/", t.webhook_id), R"({"enabled": false})",
          {{"Authorization", StrCat("Bearer sim-key-", t.sim_team)}});
      Later(absl::Seconds(Uniform(3, 8)), [this, &t] {
        Sim(stack_, "PUT", StrCat("/api/webhooks/", t.webhook_id), R"({"enabled": true})",
            {{"Authorization", StrCat("Bearer sim-key-", t.sim_team)}});
      });
    }
  }

  Stack& stack_;
  const std::vector<Tenant>& tenants_;
  std::mt19937_64 rng_;
  std::vector<Restoration> restorations_;
  std::map<std::string, int> injected_;
  std::vector<std::string> problems_;
};

// ---------------------------------------------------------------------------------------------
// The checks.

bool Final(v1::Campaign::State s) {
  return s == v1::Campaign::COMPLETED || s == v1::Campaign::PARTIALLY_FAILED ||
         s == v1::Campaign::FAILED || s == v1::Campaign::CANCELLED || s == v1::Campaign::MISSED;
}

struct LedgerMessage {
  std::string account;
  std::string text;
  std::string state;
  int64_t purchases = 0;
  int64_t revenue_cents = 0;
  int64_t purchases_pending = 0;
};

std::map<int64_t, LedgerMessage> ReadMessages(uint16_t sim_port, bool* ok) {
  std::map<int64_t, LedgerMessage> out;
  auto ledger = testing::ReadLedger(sim_port, "all=true");
  *ok = ledger.ok();
  if (!ledger.ok()) return out;
  for (const json::value& account : ledger->at("accounts").as_array()) {
    const std::string id(account.at("account_id").as_string());
    for (const json::value& m : account.at("mass_messages").as_array()) {
      LedgerMessage msg{.account = id,
                        .text = std::string(m.at("text").as_string()),
                        .state = std::string(m.at("state").as_string()),
                        .purchases = m.at("purchases").to_number<int64_t>(),
                        .revenue_cents = m.at("revenue_cents").to_number<int64_t>(),
                        .purchases_pending = m.at("purchases_pending").to_number<int64_t>()};
      out.emplace(m.at("id").to_number<int64_t>(), std::move(msg));
    }
  }
  return out;
}

struct Check {
  std::string name;
  int64_t checked = 0;
  std::vector<std::string> failures;
  void Fail(std::string what) { failures.push_back(std::move(what)); }
};

// The buyers list of `t`: every fan on it bought from its account (the ledger), and its rule
// counted at least as many fans as it holds (a job whose outcome was lost counts twice). Adds
// to `listed` and `buyers` the fans on the list and the account's buyers.
void CheckBuyersList(Stack& s, const Tenant& t, Check& check, int64_t& listed, int64_t& buyers) {
  const std::string account = testing::ShortId(t.accounts[0]);
  // One page holds the whole list: an account has 20 fans (Stack::Start).
  absl::StatusOr<std::set<int64_t>> listed_fans = testing::ReadListMembers(
      s.sim_port(), account, t.buyers_list, StrCat("sim-key-", t.sim_team));
  auto ledger = testing::ReadLedger(s.sim_port(), StrCat("purchases=true&account=", account));
  if (!listed_fans.ok() || !ledger.ok()) {
    check.Fail(StrCat(t.id, ": the buyers list or the ledger could not be read"));
    return;
  }
  std::set<int64_t> bought;
  for (const json::value& a : ledger->at("accounts").as_array()) {
    for (const json::value& m : a.at("mass_messages").as_array()) {
      for (const json::value& b : m.at("buyers").as_array()) {
        bought.insert(b.at("fan_id").to_number<int64_t>());
      }
    }
  }
  const auto on_list = static_cast<int64_t>(listed_fans->size());
  for (const int64_t id : *listed_fans) {
    ++check.checked;
    if (!bought.contains(id))
      check.Fail(StrCat(t.id, ": fan ", id, " is listed and bought nothing"));
  }
  v1::GetAutomationRequest get;
  get.set_name(t.buyers_rule);
  v1::Automation rule;
  const grpc::Status got = v1::AutomationService::NewStub(s.channel)->GetAutomation(
      BearerContext(t.key).get(), get, &rule);
  if (!got.ok()) {
    check.Fail(StrCat(t.buyers_rule, ": ", got.error_message()));
  } else if (rule.fans_added() < on_list) {
    check.Fail(
        StrCat(t.buyers_rule, " counted ", rule.fans_added(), " fans; the list holds ", on_list));
  }
  listed += on_list;
  buyers += static_cast<int64_t>(bought.size());
}

// Writes every process's whole log (all of its runs) to DIR/<name>.log.
void KeepLogs(Stack& s, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream out(std::filesystem::path(dir) / StrCat(name, ".log"), std::ios::binary);
    out << text;
    if (!out)
      std::fprintf(stderr, "herald_chaos: cannot write %s/%s.log\n", dir.c_str(), name.c_str());
  };
  for (Stack::Named& p : s.processes) write(p.name, p.process->AllLogs());
  write("upstream-sim", s.sim->Logs());
  std::fprintf(stderr, "logs written to %s\n", dir.c_str());
}

int Main(const Options& o) {
  const absl::Time started = absl::Now();
  Log(StrCat("seed ", o.seed, ", ", absl::FormatDuration(o.duration), ", ", o.tenants,
             " tenants x ", o.accounts, " accounts, a fault every ~",
             absl::FormatDuration(o.fault_gap)));
  auto stack = Stack::Start(o);
  if (!stack.ok()) {
    std::fprintf(stderr, "herald_chaos: start: %s\n", stack.status().ToString().c_str());
    return 2;
  }
  Stack& s = **stack;
  auto tenants = SetUpTenants(s, o);
  if (!tenants.ok()) {
    std::fprintf(stderr, "herald_chaos: set-up: %s\n", tenants.status().ToString().c_str());
    return 2;
  }

  // Load and faults for the duration.
  const absl::Time end = absl::Now() + o.duration;
  Load load(s, *tenants, o.seed);
  std::thread load_thread([&] { load.Run(end); });
  Faults faults(s, *tenants, o.seed);
  faults.Run(end, o.fault_gap);
  load_thread.join();
  Log("load over; lifting every fault");
  faults.LiftAll();

  // Settling.
  const std::vector<CampaignRecord> campaigns = load.campaigns();
  auto campaign_stub = v1::CampaignService::NewStub(s.channel);
  auto analytics_stub = v1::AnalyticsService::NewStub(s.channel);
  std::map<std::string, v1::Campaign> state;
  const auto refresh = [&] {
    for (const CampaignRecord& c : campaigns) {
      auto it = state.find(c.name);
      if (it != state.end() && Final(it->second.state())) continue;
      v1::GetCampaignRequest req;
      req.set_name(c.name);
      v1::Campaign got;
      if (campaign_stub->GetCampaign(BearerContext(c.tenant->key).get(), req, &got).ok()) {
        state[c.name] = got;
      }
    }
    return std::all_of(campaigns.begin(), campaigns.end(), [&](const CampaignRecord& c) {
      return state.contains(c.name) && Final(state[c.name].state());
    });
  };
  // The checks below read every campaign or the whole ledger: polled every half second at most.
  constexpr absl::Duration kCheckEvery = absl::Milliseconds(500);
  const bool all_final = testing::WaitFor(refresh, absl::Minutes(4), kCheckEvery);
  Log(all_final ? "every campaign is final" : "campaigns still not final after 4 minutes");
  bool ledger_ok = false;
  std::map<int64_t, LedgerMessage> ledger;
  const bool upstream_settled = testing::WaitFor(
      [&] {
        auto stats = testing::HttpGet(s.sim_port(), "/_sim/stats");
        if (!stats.ok() || stats->status != 200) return false;
        const json::value v = json::parse(stats->body);
        const json::value& w = v.at("webhooks");
        if (w.at("backlog").to_number<int64_t>() != 0 ||
            w.at("in_flight").to_number<int64_t>() != 0) {
          return false;
        }
        ledger = ReadMessages(s.sim_port(), &ledger_ok);
        return ledger_ok && std::all_of(ledger.begin(), ledger.end(), [](const auto& m) {
                 return (m.second.state == "done" || m.second.state == "canceled") &&
                        m.second.purchases_pending == 0;
               });
      },
      absl::Minutes(3), kCheckEvery);
  Log(upstream_settled ? "the upstream has settled" : "the upstream did not settle in 3 minutes");

  // Herald's figures per campaign, once reconciliation has had its rounds (2 s and 8 s after each
  // delivery ends) and every webhook was delivered.
  std::map<std::string, v1::CampaignStats> stats;
  const auto revenue_matches = [&] {
    stats.clear();
    for (const CampaignRecord& c : campaigns) {
      v1::GetCampaignStatsRequest req;
      req.set_name(StrCat(c.name, "/stats"));
      v1::CampaignStats got;
      if (!analytics_stub->GetCampaignStats(BearerContext(c.tenant->key).get(), req, &got).ok()) {
        return false;
      }
      stats[c.name] = got;
    }
    for (const auto& [name, st] : stats) {
      for (const v1::AccountStats& a : st.accounts()) {
        if (a.upstream_message_id() == 0) continue;
        auto m = ledger.find(a.upstream_message_id());
        if (m == ledger.end() || m->second.revenue_cents != a.gross_revenue_cents() ||
            m->second.purchases != a.purchases()) {
          return false;
        }
      }
    }
    return true;
  };
  const bool reconciled = testing::WaitFor(revenue_matches, absl::Minutes(2), absl::Seconds(1));
  Log(reconciled ? "revenue matches the ledger" : "revenue still differs after 2 minutes");

  // The queue: nothing ready, leased or delayed once the last reconciliation round has run.
  std::map<std::string, int64_t> queue;
  const auto queue_empty = [&] {
    queue.clear();
    for (int shard = 0; shard < 16; ++shard) {
      auto st = s.redis->Command({"HMGET", StrCat("{hd:s", shard, "}:st"), "r", "l", "d", "x"});
      if (!st.ok()) return false;
      const std::vector<std::string_view> v = StrSplit(*st, '\n');
      const char* names[] = {"ready", "leased", "delayed", "dead"};
      for (size_t i = 0; i < 4 && i < v.size(); ++i) {
        int64_t n = 0;
        if (absl::SimpleAtoi(absl::string_view(v[i].data(), v[i].size()), &n)) queue[names[i]] += n;
      }
    }
    return queue["ready"] == 0 && queue["leased"] == 0 && queue["delayed"] == 0;
  };
  const bool queue_drained = testing::WaitFor(queue_empty, absl::Minutes(1), kCheckEvery);

  // Checks.
  Check final_check{"every campaign is final"};
  Check delivery_check{"every delivery completed, failed with a reason, or cancelled"};
  Check once_check{"at most one upstream message per (campaign, account)"};
  Check sent_check{"every completed delivery's message is on the ledger"};
  Check revenue_check{"purchases and gross revenue per campaign equal the ledger"};
  Check queue_check{"no queue job left ready, leased or delayed"};
  Check process_check{"every process restarted, drained on SIGTERM"};
  Check buyers_check{"each buyers list holds only its account's buyers, each counted by its rule"};
  std::map<std::string, int> deliveries_by_state;
  std::map<std::string, int> messages_per_text;  // over the ledger
  for (const auto& [id, m] : ledger) ++messages_per_text[StrCat(m.account, "|", m.text)];
  int64_t herald_gross = 0, ledger_gross = 0, herald_purchases = 0, reconciled_purchases = 0;
  std::set<int64_t> our_messages;
  for (const CampaignRecord& c : campaigns) {
    ++final_check.checked;
    const v1::Campaign& got = state[c.name];
    if (!Final(got.state())) {
      final_check.Fail(StrCat(c.name, " (", c.text, ") is ", v1::Campaign::State_Name(got.state()),
                              ": ", got.state_reason()));
    }
    v1::ListDeliveriesRequest req;
    req.set_parent(c.name);
    req.set_page_size(1000);
    v1::ListDeliveriesResponse resp;
    const grpc::Status ls = WithRetries([&] {
      return campaign_stub->ListDeliveries(BearerContext(c.tenant->key).get(), req, &resp);
    });
    if (!ls.ok()) delivery_check.Fail(StrCat(c.name, ": ListDeliveries: ", ls.error_message()));
    for (const v1::Delivery& d : resp.deliveries()) {
      ++delivery_check.checked;
      ++deliveries_by_state[v1::Delivery::State_Name(d.state())];
      const std::string account = testing::ShortId(d.account());
      const int messages = messages_per_text[StrCat(account, "|", c.text)];
      ++once_check.checked;
      if (messages > 1) once_check.Fail(StrCat(d.name(), ": ", messages, " upstream messages"));
      if (d.upstream_message_id() != 0) our_messages.insert(d.upstream_message_id());
      switch (d.state()) {
        case v1::Delivery::COMPLETED: {
          ++sent_check.checked;
          auto m = ledger.find(d.upstream_message_id());
          if (m == ledger.end() || m->second.account != account || m->second.text != c.text) {
            sent_check.Fail(StrCat(d.name(), ": message ", d.upstream_message_id(),
                                   " is not on the ledger for ", account));
          }
          break;
        }
        case v1::Delivery::FAILED:
          if (d.error().empty()) delivery_check.Fail(StrCat(d.name(), " failed without a reason"));
          break;
        case v1::Delivery::CANCELLED:
          break;
        default:
          delivery_check.Fail(StrCat(d.name(), " is still ", v1::Delivery::State_Name(d.state())));
      }
    }
    const v1::CampaignStats& st = stats[c.name];
    ++revenue_check.checked;
    int64_t ledger_revenue = 0, ledger_purchases = 0;
    for (const v1::AccountStats& a : st.accounts()) {
      auto m = ledger.find(a.upstream_message_id());
      if (a.upstream_message_id() == 0 || m == ledger.end()) continue;
      ledger_revenue += m->second.revenue_cents;
      ledger_purchases += m->second.purchases;
    }
    herald_gross += st.gross_revenue_cents();
    ledger_gross += ledger_revenue;
    herald_purchases += st.purchases();
    reconciled_purchases += st.reconciled_purchases();
    if (st.gross_revenue_cents() != ledger_revenue || st.purchases() != ledger_purchases) {
      std::string accounts;
      for (const v1::AccountStats& a : st.accounts()) {
        auto m = ledger.find(a.upstream_message_id());
        if (m == ledger.end() || m->second.purchases == a.purchases()) continue;
        StrAppend(&accounts, "; ", testing::ShortId(a.account()), " message ",
                  a.upstream_message_id(), " (", m->second.state, "): Herald ", a.purchases(), " (",
                  a.reconciled_purchases(), " reconciled), ledger ", m->second.purchases);
      }
      revenue_check.Fail(
          StrCat(c.name, " (", c.text, ", ", v1::Campaign::State_Name(state[c.name].state()),
                 "): Herald ", st.purchases(), " purchases / ", st.gross_revenue_cents(),
                 " cents, ledger ", ledger_purchases, " / ", ledger_revenue, accounts));
    }
  }
  // Messages on the ledger that belong to a chaos campaign but to no delivery Herald knows of.
  for (const auto& [id, m] : ledger) {
    if (m.text.starts_with("chaos #") && !our_messages.contains(id)) {
      once_check.Fail(
          StrCat("message ", id, " on ", m.account, " (", m.text, ") belongs to no delivery"));
    }
  }
  queue_check.checked = 16;
  if (!queue_drained) {
    queue_check.Fail(StrCat(queue["ready"], " ready, ", queue["leased"], " leased, ",
                            queue["delayed"], " delayed"));
  }
  int64_t buyers_listed = 0, buyers_total = 0;
  for (const Tenant& t : *tenants) CheckBuyersList(s, t, buyers_check, buyers_listed, buyers_total);
  process_check.checked = static_cast<int64_t>(s.processes.size());
  for (const std::string& p : faults.problems()) process_check.Fail(p);
  if (!upstream_settled) revenue_check.Fail("the upstream did not settle");
  if (!ledger_ok) revenue_check.Fail("the ledger could not be read");

  // Report.
  std::printf("herald_chaos: seed %llu, %s of load (%s in all), %d tenants x %d accounts\n",
              static_cast<unsigned long long>(o.seed), absl::FormatDuration(o.duration).c_str(),
              absl::FormatDuration(absl::Trunc(absl::Now() - started, absl::Seconds(1))).c_str(),
              o.tenants, o.accounts);
  std::printf("\nfaults injected:\n");
  int total_faults = 0;
  for (const auto& [kind, n] : faults.injected()) {
    std::printf("  %-30s %d\n", kind.c_str(), n);
    total_faults += n;
  }
  std::printf("  %-30s %d\n", "total", total_faults);
  std::printf("\nload:\n");
  for (const auto& [what, n] : load.counts()) std::printf("  %-40s %d\n", what.c_str(), n);
  std::printf("  %-40s %zu\n", "campaigns", campaigns.size());
  std::printf("\ndeliveries:\n");
  for (const auto& [what, n] : deliveries_by_state) std::printf("  %-30s %d\n", what.c_str(), n);
  auto sim_stats = testing::HttpGet(s.sim_port(), "/_sim/stats");
  if (sim_stats.ok() && sim_stats->status == 200) {
    const json::value v = json::parse(sim_stats->body);
    const json::object& w = v.at("webhooks").at("totals").as_object();
    std::printf(
        "\nwebhooks (upstream): %lld events, %lld attempts, %lld duplicates, %lld dropped, "
        "%lld given up\n",
        static_cast<long long>(w.at("events").to_number<int64_t>()),
        static_cast<long long>(w.at("attempts").to_number<int64_t>()),
        static_cast<long long>(w.at("duplicates").to_number<int64_t>()),
        static_cast<long long>(w.at("dropped").to_number<int64_t>()),
        static_cast<long long>(w.at("gave_up").to_number<int64_t>()));
    const json::object& f = v.at("faults").as_object();
    std::printf(
        "upstream faults served: %lld errors, %lld resets, %lld lost responses, "
        "%lld delayed\n",
        static_cast<long long>(f.at("errors").to_number<int64_t>()),
        static_cast<long long>(f.at("resets").to_number<int64_t>()),
        static_cast<long long>(f.at("lost_responses").to_number<int64_t>()),
        static_cast<long long>(f.at("delayed").to_number<int64_t>()));
  }
  std::printf("ingest proxy: %lld connections, %lld refused while no replica answered\n",
              static_cast<long long>(s.proxy->accepted()),
              static_cast<long long>(s.proxy->refused()));
  std::printf(
      "revenue: Herald %lld cents in %lld purchases (%lld added by reconciliation), "
      "ledger %lld cents\n",
      static_cast<long long>(herald_gross), static_cast<long long>(herald_purchases),
      static_cast<long long>(reconciled_purchases), static_cast<long long>(ledger_gross));
  std::printf("buyers lists (automations): %lld of the %lld buyers of their accounts listed\n",
              static_cast<long long>(buyers_listed), static_cast<long long>(buyers_total));
  std::printf("queue after the run: %lld ready, %lld leased, %lld delayed, %lld dead letters\n",
              static_cast<long long>(queue["ready"]), static_cast<long long>(queue["leased"]),
              static_cast<long long>(queue["delayed"]), static_cast<long long>(queue["dead"]));

  std::printf("\nchecks:\n");
  bool passed = true;
  for (const Check* c : {&final_check, &delivery_check, &once_check, &sent_check, &revenue_check,
                         &buyers_check, &queue_check, &process_check}) {
    std::printf("  %-4s %s (%lld checked)\n", c->failures.empty() ? "ok" : "FAIL", c->name.c_str(),
                static_cast<long long>(c->checked));
    for (size_t i = 0; i < c->failures.size() && i < 20; ++i) {
      std::printf("         %s\n", c->failures[i].c_str());
    }
    if (c->failures.size() > 20) std::printf("         ... %zu in all\n", c->failures.size());
    passed = passed && c->failures.empty();
  }
  std::printf("\n%s\n", passed ? "PASSED" : "FAILED");
  if (!passed) {
    for (Stack::Named& p : s.processes) {
      const std::string logs = p.process->Logs();
      std::fprintf(stderr, "---- %s (last 3000 bytes of its log)\n%s\n", p.name.c_str(),
                   logs.substr(logs.size() > 3000 ? logs.size() - 3000 : 0).c_str());
    }
  }
  if (!o.log_dir.empty()) KeepLogs(s, o.log_dir);
  return passed ? 0 : 1;
}

}  // namespace
}  // namespace herald::chaos

int main(int argc, char** argv) {
  const std::optional<herald::chaos::Options> options = herald::chaos::ParseArgs(argc, argv);
  if (!options) return 2;
  return herald::chaos::Main(*options);
}
