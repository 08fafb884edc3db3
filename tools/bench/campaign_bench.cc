// The campaign API against a running `herald serve` (and the upstream simulator it calls), each
// figure beside a same-run baseline. tools/bench/campaign.sh starts the processes and drives it.
//
//   campaign_bench api --target=127.0.0.1:PORT --admin_key=KEY [--accounts=10] [--inflight=64]
//       [--seconds=5] [--warmup_seconds=1] [--rate=1000] [--open_seconds=10] [--draft=0]
//       [--timeline=0]
//       [--pids=PID,...]
//     CreateCampaign with `accounts` targets (priced, one media asset, list "fans"; real sends
//     unless --draft=1, so each call parses, stores the campaign and its deliveries, and enqueues
//     one job per account), and the no-op baseline grpc.health.v1.Health/Check, on the same
//     channel through the same client code (gRPC's generic callback stub with pre-serialized
//     requests):
//       closed loop: `inflight` calls in flight for `seconds` (after a warmup): calls/s, latency;
//       open loop: one call every 1/`rate` s for `open_seconds`, whatever is outstanding;
//         latency counts from the call's scheduled time, so a stall is not hidden.
//     The accounts come from SyncAccounts of simulator team 1 (key sim-key-1).
//
//   campaign_bench fanout --target=127.0.0.1:PORT --admin_key=KEY --sim=127.0.0.1:PORT
//       [--teams=200] [--timeout_seconds=300] [--create_deadline_seconds=120] [--poll_ms=50]
//     Set-up (not timed): 200 teams on simulator keys sim-key-1..200, SyncAccounts on each, one
//     media asset. Then one CreateCampaign to every account, and the simulator's /_sim/stats
//     polled until it has created one mass message per account: the time from the call to the
//     last upstream send, and the upstream requests made over that time. A failed CreateCampaign
//     is reported and the simulator followed all the same (the campaign may have been stored).
//
// `pids`: processes whose CPU time (user + system, /proc/PID/stat) is reported per call of each
// phase (e.g. herald and redis-server). Prints "key: value" lines; exit status 1 on a failed
// set-up or a phase with errors.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <herald/common/strings.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

#include "bench_flags.h"

namespace herald::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;
namespace http = boost::beast::http;
namespace json = boost::json;

constexpr char kHealthMethod[] = "/grpc.health.v1.Health/Check";
constexpr char kCreateMethod[] = "/herald.v1.CampaignService/CreateCampaign";

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "campaign_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const grpc::Status& s, const std::string& what) {
  if (!s.ok())
    Fail(StrCat(what, ": ", s.error_message(), " (code ", static_cast<int>(s.error_code()), ")"));
}

// --- set-up over the ordinary stubs ---------------------------------------------------------

class Setup {
 public:
  Setup(std::shared_ptr<grpc::Channel> channel, std::string admin_key)
      : channel_(std::move(channel)), admin_key_(std::move(admin_key)) {}

  // A tenant and its API key.
  void NewTenant(const std::string& id) {
    tenant_ = id;
    auto tenants = v1::TenantService::NewStub(channel_);
    v1::CreateTenantRequest req;
    req.set_tenant_id(id);
    req.mutable_tenant()->set_display_name(id);
    v1::Tenant tenant;
    Check(tenants->CreateTenant(Context(admin_key_).get(), req, &tenant), "CreateTenant");
    v1::CreateApiKeyRequest kreq;
    kreq.set_parent(tenant.name());
    v1::CreateApiKeyResponse key;
    Check(tenants->CreateApiKey(Context(admin_key_).get(), kreq, &key), "CreateApiKey");
    key_ = key.secret();
  }

  // Team `team_id` on simulator key sim-key-`sim_team`, high limit; returns its synced accounts.
  std::vector<std::string> TeamAccounts(const std::string& team_id, int sim_team) {
    auto accounts = v1::AccountService::NewStub(channel_);
    v1::CreateTeamRequest treq;
    treq.set_parent(StrCat("tenants/", tenant_));
    treq.set_team_id(team_id);
    treq.mutable_team()->set_upstream_api_key(StrCat("sim-key-", sim_team));
    treq.mutable_team()->set_rate_limit_per_minute(100000);  // the API's maximum
    v1::Team team;
    Check(accounts->CreateTeam(Context(key_).get(), treq, &team), "CreateTeam");
    v1::SyncAccountsRequest sreq;
    sreq.set_team(team.name());
    v1::SyncAccountsResponse synced;
    Check(accounts->SyncAccounts(Context(key_).get(), sreq, &synced), "SyncAccounts");
    std::vector<std::string> names;
    for (const auto& a : synced.created()) {
      if (a.sends_per_minute() != 0 || a.max_in_flight() != 0 || a.paused()) {
        Fail(StrCat("account ", a.name(), " is paced, capped or paused"));
      }
      names.push_back(a.name());
    }
    return names;
  }

  std::string NewMedia() {
    auto media = v1::MediaService::NewStub(channel_);
    v1::CreateMediaAssetRequest req;
    req.set_parent(StrCat("tenants/", tenant_));
    req.mutable_media_asset()->set_type(v1::MediaAsset::VIDEO);
    req.mutable_media_asset()->set_source_url("https://cdn.example.com/teaser.mp4");
    v1::MediaAsset asset;
    Check(media->CreateMediaAsset(Context(key_).get(), req, &asset), "CreateMediaAsset");
    return asset.name();
  }

  // A priced campaign with one media asset to list "fans" of every account.
  v1::CreateCampaignRequest Campaign(const std::vector<std::string>& accounts,
                                     const std::string& media, bool draft) const {
    v1::CreateCampaignRequest req;
    req.set_parent(StrCat("tenants/", tenant_));
    v1::Campaign* c = req.mutable_campaign();
    c->set_display_name("benchmark ppv");
    c->mutable_content()->set_text("New this weekend: the full video, unlocked for you.");
    c->mutable_content()->set_price_cents(1500);
    c->mutable_content()->add_media(media);
    c->set_save_as_draft(draft);
    for (const auto& a : accounts) {
      v1::AccountTarget* t = c->add_targets();
      t->set_account(a);
      t->add_user_lists("fans");
    }
    return req;
  }

  std::unique_ptr<grpc::ClientContext> Context(const std::string& key) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", StrCat("Bearer ", key));
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }

  const std::string& key() const { return key_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  const std::string admin_key_;
  std::string tenant_;
  std::string key_;
};

std::string UniqueSuffix() {
  return StrCat(std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                        .count() %
                    1000000000,
                "-", getpid() % 10000);
}

// --- CPU time of other processes ------------------------------------------------------------

struct Process {
  std::string name;
  int pid = 0;
};

// "herald:123,redis:456".
std::vector<Process> ParseProcesses(const std::string& list) {
  std::vector<Process> out;
  for (std::string_view part : StrSplit(list, ',')) {
    if (part.empty()) continue;
    const size_t colon = part.find(':');
    auto pid =
        colon == std::string_view::npos ? std::nullopt : ParseInt<int>(part.substr(colon + 1));
    if (!pid) Fail(StrCat("--pids: want NAME:PID, got ", part));
    out.push_back({std::string(part.substr(0, colon)), *pid});
  }
  return out;
}

double CpuSeconds(int pid) {
  std::ifstream in(StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<std::string_view> fields = StrSplit(std::string_view(stat).substr(paren + 2), ' ');
  // After "pid (comm) ", field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
  if (fields.size() < 13) return 0;
  const auto utime = ParseInt<int64_t>(fields[11]);
  const auto stime = ParseInt<int64_t>(fields[12]);
  if (!utime || !stime) return 0;
  return static_cast<double>(*utime + *stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The machine's CPU time by kind, in clock ticks, from the "cpu" line of /proc/stat.
struct MachineCpu {
  int64_t user = 0;    // user + nice
  int64_t system = 0;  // system + irq + softirq
  int64_t idle = 0;    // idle + iowait
  int64_t steal = 0;
};

MachineCpu ReadMachineCpu() {
  std::ifstream in("/proc/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string_view> f = StrSplit(std::string_view(line), ' ');
  // "cpu  <user> ...": the label is followed by two spaces.
  f.erase(std::remove(f.begin(), f.end(), std::string_view()), f.end());
  MachineCpu out;
  if (f.size() < 9 || f[0] != "cpu") return out;
  auto at = [&](size_t i) { return ParseInt<int64_t>(f[i]).value_or(0); };
  out.user = at(1) + at(2);
  out.system = at(3) + at(6) + at(7);
  out.idle = at(4) + at(5);
  out.steal = at(8);
  return out;
}

// "machine_cpu_<name>: user U% system S% idle I% steal T%" between two readings.
void PrintMachineCpu(const std::string& name, const MachineCpu& a, const MachineCpu& b) {
  const double user = static_cast<double>(b.user - a.user);
  const double system = static_cast<double>(b.system - a.system);
  const double idle = static_cast<double>(b.idle - a.idle);
  const double steal = static_cast<double>(b.steal - a.steal);
  const double all = user + system + idle + steal;
  if (all <= 0) return;
  std::printf("machine_cpu_%s: user %.0f%% system %.0f%% idle %.0f%% steal %.0f%%\n", name.c_str(),
              100 * user / all, 100 * system / all, 100 * idle / all, 100 * steal / all);
}

// CPU seconds of each process, then of this one.
std::vector<double> CpuSnapshot(const std::vector<Process>& procs) {
  std::vector<double> out;
  for (const Process& p : procs) out.push_back(CpuSeconds(p.pid));
  out.push_back(CpuSeconds(getpid()));
  return out;
}

// Prints "<prefix>_<process>_cpu_us_per_<unit>" for every process and this client.
void PrintCpu(const std::string& prefix, const std::string& unit, const std::vector<Process>& procs,
              const std::vector<double>& before, const std::vector<double>& after, int64_t count) {
  if (count <= 0) return;
  for (size_t i = 0; i <= procs.size(); ++i) {
    const std::string name = i < procs.size() ? procs[i].name : "client";
    std::printf("%s_%s_cpu_us_per_%s: %.1f\n", prefix.c_str(), name.c_str(), unit.c_str(),
                (after[i] - before[i]) * 1e6 / static_cast<double>(count));
  }
}

// --- the load generator ---------------------------------------------------------------------

// One method called with one pre-serialized request, through the generic callback stub: the
// client does the same work for every method, so the baseline's costs match.
class UnaryLoad {
 public:
  UnaryLoad(grpc::GenericStub& stub, std::string method, std::string key, std::string request)
      : stub_(stub), method_(std::move(method)), key_(std::move(key)) {
    grpc::Slice slice(request);
    request_ = grpc::ByteBuffer(&slice, 1);
  }

  struct Sample {
    SteadyClock::time_point scheduled;
    SteadyClock::time_point done;
    bool ok = false;
  };

  struct Result {
    int64_t calls = 0;      // completed within the measured window
    int64_t all_calls = 0;  // completed in the whole phase (warmup and tail included)
    int64_t errors = 0;
    double seconds = 0;
    std::vector<int64_t> latencies_us;                  // sorted
    std::vector<std::pair<int64_t, int64_t>> timeline;  // (scheduled ms into the window, us)
    std::string first_error;
  };

  // `inflight` calls at all times; the figures cover the calls that ended within
  // [warmup, warmup + seconds).
  Result ClosedLoop(int inflight, double warmup_seconds, double seconds) {
    Begin();
    const auto start = SteadyClock::now();
    window_begin_ = start + Duration(warmup_seconds);
    window_end_ = window_begin_ + Duration(seconds);
    closed_ = true;
    for (int i = 0; i < inflight; ++i) Issue(SteadyClock::now());
    return Finish(seconds);
  }

  // One call every 1/rate s for `seconds` (after a warmup at the same rate), each timed from
  // its scheduled start; the figures cover the calls scheduled in the window.
  Result OpenLoop(double rate, double warmup_seconds, double seconds) {
    Begin();
    const auto start = SteadyClock::now();
    window_begin_ = start + Duration(warmup_seconds);
    window_end_ = window_begin_ + Duration(seconds);
    closed_ = false;
    const auto total = static_cast<int64_t>((warmup_seconds + seconds) * rate);
    for (int64_t i = 0; i < total; ++i) {
      const auto at = start + Duration(static_cast<double>(i) / rate);
      std::this_thread::sleep_until(at);
      Issue(at);
    }
    return Finish(seconds);
  }

 private:
  static SteadyClock::duration Duration(double seconds) {
    return std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(seconds));
  }

  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    SteadyClock::time_point scheduled;
  };

  void Begin() {
    std::lock_guard lock(mu_);
    samples_.clear();
    samples_.reserve(1 << 20);
    outstanding_ = 0;
    all_calls_ = 0;
    first_error_.clear();
  }

  // Starts a call; `replacing` when it takes the place of one that just finished (closed loop).
  void Issue(SteadyClock::time_point scheduled, bool replacing = false) {
    auto* call = new Call;
    call->scheduled = scheduled;
    call->context.AddMetadata("authorization", key_);
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!replacing) {
      std::lock_guard lock(mu_);
      ++outstanding_;
    }
    stub_.UnaryCall(&call->context, method_, grpc::StubOptions(), &request_, &call->response,
                    [this, call](grpc::Status status) { Done(call, status); });
  }

  void Done(Call* call, const grpc::Status& status) {
    const auto now = SteadyClock::now();
    const auto scheduled = call->scheduled;
    delete call;
    bool again = false;
    {
      std::lock_guard lock(mu_);
      ++all_calls_;
      // Closed loop: calls that ended in the window. Open loop: calls scheduled in it, however
      // late they end, so a backlog at the end of the window is not left out.
      const SteadyClock::time_point t = closed_ ? now : scheduled;
      if (t >= window_begin_ && t < window_end_) samples_.push_back({scheduled, now, status.ok()});
      if (!status.ok() && first_error_.empty()) {
        first_error_ =
            StrCat(status.error_message(), " (code ", static_cast<int>(status.error_code()), ")");
      }
      again = closed_ && now < window_end_;
      if (!again && --outstanding_ == 0) cv_.notify_all();
    }
    if (again) Issue(now, /*replacing=*/true);
  }

  Result Finish(double seconds) {
    std::this_thread::sleep_until(window_end_);
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return outstanding_ == 0; });
    Result r;
    r.seconds = seconds;
    r.first_error = first_error_;
    r.all_calls = all_calls_;
    for (const Sample& s : samples_) {
      ++r.calls;
      if (!s.ok) ++r.errors;
      r.latencies_us.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(s.done - s.scheduled).count());
      r.timeline.emplace_back(
          std::chrono::duration_cast<std::chrono::milliseconds>(s.scheduled - window_begin_)
              .count(),
          r.latencies_us.back());
    }
    std::sort(r.latencies_us.begin(), r.latencies_us.end());
    return r;
  }

  grpc::GenericStub& stub_;
  const std::string method_;
  const std::string key_;
  grpc::ByteBuffer request_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Sample> samples_;
  int64_t outstanding_ = 0;
  int64_t all_calls_ = 0;
  bool closed_ = true;
  SteadyClock::time_point window_begin_;
  SteadyClock::time_point window_end_;
  std::string first_error_;
};

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

// Runs one phase and prints "<name>_<measure>: value" lines; returns calls/s.
struct PhaseFigures {
  double per_s = 0;
  int64_t p50_us = 0;
  int64_t p99_us = 0;
  int64_t errors = 0;
};

// Prints the 100 ms slots of the window (by scheduled start) that had calls over 10 ms, with the
// slot's slowest call: a p99 made of bursts in which calls queue shows as runs of slots.
void PrintTimeline(const std::string& name, const UnaryLoad::Result& r) {
  std::map<int64_t, std::pair<int64_t, int64_t>> slots;  // slot -> (max us, calls over 10 ms)
  for (const auto& [ms, us] : r.timeline) {
    auto& slot = slots[ms / 100];
    slot.first = std::max(slot.first, us);
    if (us > 10000) ++slot.second;
  }
  for (const auto& [slot, v] : slots) {
    if (v.second == 0) continue;
    std::printf("%s_slow_slot: %lld-%lld ms, %lld calls over 10 ms, max %lld us\n", name.c_str(),
                static_cast<long long>(slot * 100), static_cast<long long>(slot * 100 + 100),
                static_cast<long long>(v.second), static_cast<long long>(v.first));
  }
}

PhaseFigures Report(const std::string& name, const UnaryLoad::Result& r) {
  PhaseFigures f;
  f.per_s = static_cast<double>(r.calls) / r.seconds;
  f.p50_us = Percentile(r.latencies_us, 0.50);
  f.p99_us = Percentile(r.latencies_us, 0.99);
  f.errors = r.errors;
  std::printf("%s_calls: %lld\n", name.c_str(), static_cast<long long>(r.calls));
  std::printf("%s_errors: %lld\n", name.c_str(), static_cast<long long>(r.errors));
  if (!r.first_error.empty())
    std::printf("%s_first_error: %s\n", name.c_str(), r.first_error.c_str());
  std::printf("%s_per_s: %.0f\n", name.c_str(), f.per_s);
  std::printf("%s_p50_us: %lld\n", name.c_str(), static_cast<long long>(f.p50_us));
  std::printf("%s_p90_us: %lld\n", name.c_str(),
              static_cast<long long>(Percentile(r.latencies_us, 0.90)));
  std::printf("%s_p99_us: %lld\n", name.c_str(), static_cast<long long>(f.p99_us));
  std::printf("%s_p999_us: %lld\n", name.c_str(),
              static_cast<long long>(Percentile(r.latencies_us, 0.999)));
  std::printf("%s_max_us: %lld\n", name.c_str(),
              static_cast<long long>(r.latencies_us.empty() ? 0 : r.latencies_us.back()));
  std::fflush(stdout);
  return f;
}

int RunApi(const Flags& flags) {
  const std::string target = flags.Str("target", "");
  if (target.empty()) Fail("--target is required");
  const int accounts = static_cast<int>(flags.Int("accounts", 10));
  const int inflight = static_cast<int>(flags.Int("inflight", 64));
  const double seconds = static_cast<double>(flags.Int("seconds", 5));
  const double warmup = static_cast<double>(flags.Int("warmup_seconds", 1));
  const double rate = static_cast<double>(flags.Int("rate", 1000));
  const double open_seconds = static_cast<double>(flags.Int("open_seconds", 10));
  const bool draft = flags.Int("draft", 0) != 0;
  const bool timeline = flags.Int("timeline", 0) != 0;
  const std::vector<Process> procs = ParseProcesses(flags.Str("pids", ""));

  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  Setup setup(channel, flags.Str("admin_key", ""));
  setup.NewTenant(StrCat("bench-api-", UniqueSuffix()));
  std::vector<std::string> names = setup.TeamAccounts("main", 1);
  if (static_cast<int>(names.size()) < accounts) {
    Fail(StrCat("simulator team 1 has ", names.size(), " accounts; need ", accounts));
  }
  names.resize(static_cast<size_t>(accounts));
  const std::string media = setup.NewMedia();
  const v1::CreateCampaignRequest create = setup.Campaign(names, media, draft);
  std::printf("create_request_bytes: %zu\n", create.ByteSizeLong());
  std::printf("mode: %s\n", draft ? "draft (save_as_draft)" : "send (jobs enqueued)");

  grpc::GenericStub stub(channel);
  const std::string bearer = StrCat("Bearer ", setup.key());
  UnaryLoad health(stub, kHealthMethod, bearer, std::string());
  UnaryLoad creates(stub, kCreateMethod, bearer, create.SerializeAsString());

  bool failed = false;
  auto phase = [&](const std::string& name, UnaryLoad& load, bool closed) {
    const std::vector<double> cpu0 = CpuSnapshot(procs);
    UnaryLoad::Result r = closed ? load.ClosedLoop(inflight, warmup, seconds)
                                 : load.OpenLoop(rate, warmup, open_seconds);
    // CPU over the whole phase, per call completed in it (warmup and tail included).
    PrintCpu(name, "call", procs, cpu0, CpuSnapshot(procs), r.all_calls);
    std::printf("%s_all_calls: %lld\n", name.c_str(), static_cast<long long>(r.all_calls));
    PhaseFigures f = Report(name, r);
    if (timeline) PrintTimeline(name, r);
    if (f.errors > 0 || r.calls == 0) failed = true;
    return f;
  };

  std::printf("== closed loop: %d in flight, %.0f s (after %.0f s warmup)\n", inflight, seconds,
              warmup);
  const PhaseFigures hc = phase("health_closed", health, true);
  const PhaseFigures cc = phase("create_closed", creates, true);
  std::printf("== open loop: %.0f calls/s for %.0f s (after %.0f s warmup)\n", rate, open_seconds,
              warmup);
  const PhaseFigures ho = phase("health_open", health, false);
  const PhaseFigures co = phase("create_open", creates, false);
  std::printf("== ratios (CreateCampaign / Health.Check, same run)\n");
  std::printf("ratio_closed_throughput: %.2f\n", hc.per_s > 0 ? cc.per_s / hc.per_s : 0.0);
  std::printf("ratio_closed_p50: %.2f\n",
              hc.p50_us > 0 ? static_cast<double>(cc.p50_us) / static_cast<double>(hc.p50_us) : 0);
  std::printf("ratio_open_p50: %.2f\n",
              ho.p50_us > 0 ? static_cast<double>(co.p50_us) / static_cast<double>(ho.p50_us) : 0);
  std::printf("ratio_open_p99: %.2f\n",
              ho.p99_us > 0 ? static_cast<double>(co.p99_us) / static_cast<double>(ho.p99_us) : 0);
  std::printf("create_open_p99_under_10ms: %s\n", co.p99_us < 10000 ? "yes" : "no");
  return failed ? 1 : 0;
}

// --- fan-out --------------------------------------------------------------------------------

// GET http://host:port/path, body as JSON.
json::value GetJson(const std::string& host, const std::string& port, const std::string& path) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::resolver resolver(ioc);
  boost::beast::tcp_stream stream(ioc);
  stream.connect(resolver.resolve(host, port));
  http::request<http::empty_body> req{http::verb::get, path, 11};
  req.set(http::field::host, host);
  req.set(http::field::connection, "close");
  http::write(stream, req);
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::read(stream, buffer, parser);
  if (parser.get().result() != http::status::ok) {
    Fail(StrCat("GET ", path, ": HTTP ", parser.get().result_int()));
  }
  return json::parse(parser.get().body());
}

struct SimCounts {
  int64_t requests = 0;
  int64_t mass_messages = 0;
  int64_t uploads = 0;
  int64_t rate_limited = 0;
};

SimCounts ReadSim(const std::string& host, const std::string& port) {
  const json::value v = GetJson(host, port, "/_sim/stats");
  SimCounts c;
  c.requests = v.at("requests").at("total").to_number<int64_t>();
  c.rate_limited = v.at("requests").at("429").to_number<int64_t>();
  c.mass_messages = v.at("mass_messages_created").to_number<int64_t>();
  c.uploads = v.at("uploads").to_number<int64_t>();
  return c;
}

int RunFanout(const Flags& flags) {
  const std::string target = flags.Str("target", "");
  const std::string sim = flags.Str("sim", "");
  const size_t colon = sim.rfind(':');
  if (target.empty() || colon == std::string::npos) Fail("--target and --sim=host:port required");
  const std::string sim_host = sim.substr(0, colon);
  const std::string sim_port = sim.substr(colon + 1);
  const int teams = static_cast<int>(flags.Int("teams", 200));
  const double timeout = static_cast<double>(flags.Int("timeout_seconds", 300));
  const auto poll = std::chrono::milliseconds(flags.Int("poll_ms", 50));
  const int64_t create_deadline = flags.Int("create_deadline_seconds", 120);
  const std::vector<Process> procs = ParseProcesses(flags.Str("pids", ""));

  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  Setup setup(channel, flags.Str("admin_key", ""));
  setup.NewTenant(StrCat("bench-fanout-", UniqueSuffix()));
  std::vector<std::string> names;
  const auto setup_start = SteadyClock::now();
  for (int t = 1; t <= teams; ++t) {
    std::vector<std::string> team = setup.TeamAccounts(StrCat("team-", t), t);
    names.insert(names.end(), team.begin(), team.end());
  }
  const std::string media = setup.NewMedia();
  v1::CreateCampaignRequest req = setup.Campaign(names, media, false);
  std::printf("setup_seconds: %.1f\n",
              std::chrono::duration<double>(SteadyClock::now() - setup_start).count());
  std::printf("accounts: %zu\nteams: %d\ncreate_request_bytes: %zu\n", names.size(), teams,
              req.ByteSizeLong());

  const SimCounts before = ReadSim(sim_host, sim_port);
  const std::vector<double> cpu0 = CpuSnapshot(procs);
  const MachineCpu machine0 = ReadMachineCpu();
  const auto t0 = SteadyClock::now();
  auto campaigns = v1::CampaignService::NewStub(channel);
  v1::Campaign created;
  auto ctx = setup.Context(setup.key());
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(create_deadline));
  const grpc::Status create_status = campaigns->CreateCampaign(ctx.get(), req, &created);
  const double create_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  std::printf("create_campaign_seconds: %.3f\n", create_s);
  if (!create_status.ok()) {
    // The campaign may be stored and dispatched all the same: keep following the simulator.
    std::printf("create_campaign_error: %s (code %d)\n", create_status.error_message().c_str(),
                static_cast<int>(create_status.error_code()));
  }
  std::fflush(stdout);

  const auto want = static_cast<int64_t>(names.size());
  SimCounts last = before;
  SteadyClock::time_point last_change = t0;
  SimCounts at_last_change = before;
  const auto deadline = t0 + std::chrono::duration_cast<SteadyClock::duration>(
                                 std::chrono::duration<double>(timeout));
  while (true) {
    std::this_thread::sleep_for(poll);
    const SimCounts now = ReadSim(sim_host, sim_port);
    const auto at = SteadyClock::now();
    if (now.mass_messages != last.mass_messages) {
      last_change = at;
      at_last_change = now;
    }
    last = now;
    if (now.mass_messages - before.mass_messages >= want) break;
    if (at > deadline) {
      std::printf("timeout: %lld of %lld sends after %.0f s\n",
                  static_cast<long long>(now.mass_messages - before.mass_messages),
                  static_cast<long long>(want), timeout);
      return 1;
    }
  }
  const std::vector<double> cpu1 = CpuSnapshot(procs);
  const MachineCpu machine1 = ReadMachineCpu();
  const double seconds = std::chrono::duration<double>(last_change - t0).count();
  const int64_t calls = at_last_change.requests - before.requests;
  std::printf("sends: %lld\n",
              static_cast<long long>(at_last_change.mass_messages - before.mass_messages));
  std::printf("uploads: %lld\n", static_cast<long long>(at_last_change.uploads - before.uploads));
  std::printf("upstream_requests: %lld\n", static_cast<long long>(calls));
  std::printf("upstream_429: %lld\n",
              static_cast<long long>(at_last_change.rate_limited - before.rate_limited));
  std::printf("seconds_to_last_send: %.2f\n", seconds);
  std::printf("sends_per_s: %.0f\n",
              static_cast<double>(at_last_change.mass_messages - before.mass_messages) / seconds);
  std::printf("upstream_requests_per_s: %.0f\n", static_cast<double>(calls) / seconds);
  PrintCpu("fanout", "upstream_request", procs, cpu0, cpu1, calls);
  PrintMachineCpu("fanout", machine0, machine1);
  return 0;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  using namespace herald::bench;
  const std::string mode = argc > 1 ? argv[1] : "";
  std::optional<Flags> flags = Flags::Parse(argc, argv, 2);
  if (!flags) return 2;
  if (mode == "api") return RunApi(*flags);
  if (mode == "fanout") return RunFanout(*flags);
  std::fprintf(stderr, "usage: campaign_bench api|fanout --target=HOST:PORT --admin_key=KEY ...\n");
  return 2;
}
