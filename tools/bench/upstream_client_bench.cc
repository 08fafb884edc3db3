// Throughput of Herald's upstream client over keep-alive connections, against any server that
// answers the API's paths (upstream-sim, or nginx returning {"data":[]} for a same-run
// baseline; tools/bench/upstream_client.sh runs both and wrk).
//
//   upstream_client_bench --base_url=http://127.0.0.1:PORT [--api_key=sim-key-1]
//       [--call=accounts|queue|http|delivery] [--account=acct_...] [--teams=1]
//       [--connections=8] [--concurrency=64] [--seconds=10] [--warmup_seconds=1] [--threads=1]
//
// accounts: upstream::Client::ListAccounts (GET /api/accounts), the typed client end to end:
//           request building, the HTTP exchange, JSON parsing and error classification.
// queue:    upstream::Client::ListMassMessageQueue(--account) (GET /api/{account}/mass-messaging).
// http:     GET /api/accounts through upstream::HttpClient alone (no JSON parsing).
// delivery: the calls a campaign's delivery makes, in its order, spread over the accounts of
//           teams sim-key-1..sim-key-{teams} (one typed client per team, as Herald has): upload
//           the media asset from its URL, send a priced mass message with it to list "fans",
//           read the account's queue. Each call counts once. It sends real mass messages: run it
//           after a measurement that needs the simulator's accounts untouched.
//
// `concurrency` coroutines share one client (delivery: one per team) whose pool holds at most
// `connections` connections; the io_context runs on `threads` threads. Calls completed during the
// `seconds` after the warmup are counted. Prints "key: value" lines.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sys/resource.h>

#include <herald/common/strings.h>
#include <herald/upstream/client.h>
#include <herald/upstream/http_client.h>

#include "bench_flags.h"

namespace herald::bench {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

// One kind of call, repeated by every worker.
class Target {
 public:
  virtual ~Target() = default;
  // `worker` (0..concurrency-1) names the coroutine calling, for targets that keep a state per
  // worker.
  virtual asio::awaitable<absl::Status> Call(size_t worker) = 0;
};

class AccountsTarget final : public Target {
 public:
  explicit AccountsTarget(std::unique_ptr<upstream::Client> client) : client_(std::move(client)) {}
  asio::awaitable<absl::Status> Call(size_t /*worker*/) override {
    upstream::Result<std::vector<upstream::Account>> r = co_await client_->ListAccounts();
    co_return r.status();
  }

 private:
  std::unique_ptr<upstream::Client> client_;
};

class QueueTarget final : public Target {
 public:
  QueueTarget(std::unique_ptr<upstream::Client> client, std::string account)
      : client_(std::move(client)), account_(std::move(account)) {}
  asio::awaitable<absl::Status> Call(size_t /*worker*/) override {
    upstream::Result<std::vector<upstream::QueueItem>> r =
        co_await client_->ListMassMessageQueue(account_);
    co_return r.status();
  }

 private:
  std::unique_ptr<upstream::Client> client_;
  const std::string account_;
};

class HttpTarget final : public Target {
 public:
  HttpTarget(std::unique_ptr<upstream::HttpClient> http, std::string url, std::string api_key)
      : http_(std::move(http)), url_(std::move(url)), api_key_(std::move(api_key)) {}
  asio::awaitable<absl::Status> Call(size_t /*worker*/) override {
    upstream::HttpRequest request;
    request.url = url_;
    request.headers = {{"Authorization", StrCat("Bearer ", api_key_)},
                       {"Accept", "application/json"}};
    absl::StatusOr<upstream::HttpResponse> res = co_await http_->Send(std::move(request));
    if (!res.ok()) co_return res.status();
    if (res->status != 200) co_return absl::InternalError(StrCat("HTTP ", res->status));
    co_return absl::OkStatus();
  }

 private:
  std::unique_ptr<upstream::HttpClient> http_;
  const std::string url_;
  const std::string api_key_;
};

class DeliveryTarget final : public Target {
 public:
  struct Team {
    std::unique_ptr<upstream::Client> client;
    std::vector<std::string> accounts;
  };

  // Worker w makes deliveries w, w + workers, w + 2 * workers, …: delivery d goes to team
  // d % teams, to that team's account d / teams (cycling), so the calls spread over every account.
  DeliveryTarget(std::vector<Team> teams, size_t workers)
      : teams_(std::move(teams)), workers_(workers) {
    for (size_t w = 0; w < workers; ++w) workers_[w].delivery = w;
  }

  asio::awaitable<absl::Status> Call(size_t worker) override {
    State& state = workers_[worker];
    Team& team = teams_[state.delivery % teams_.size()];
    const std::string& account =
        team.accounts[(state.delivery / teams_.size()) % team.accounts.size()];
    switch (state.step) {
      case Step::kUpload: {
        upstream::Result<upstream::UploadedMedia> uploaded =
            co_await team.client->UploadMediaFromUrl(account, kMediaUrl);
        if (!uploaded.ok()) co_return uploaded.status();
        state.media = uploaded.value->prefixed_id;
        state.step = Step::kSend;
        co_return absl::OkStatus();
      }
      case Step::kSend: {
        upstream::MassMessage message{.text = "New this weekend: the full video, unlocked for you.",
                                      .user_lists = {"fans"},
                                      .price_cents = 1500,
                                      .media_files = {state.media}};
        upstream::Result<upstream::QueueItem> sent =
            co_await team.client->SendMassMessage(account, std::move(message));
        if (!sent.ok()) co_return sent.status();
        state.step = Step::kPoll;
        co_return absl::OkStatus();
      }
      case Step::kPoll: {
        upstream::Result<std::vector<upstream::QueueItem>> queue =
            co_await team.client->ListMassMessageQueue(account);
        if (!queue.ok()) co_return queue.status();
        state.step = Step::kUpload;
        state.delivery += workers_.size();
        co_return absl::OkStatus();
      }
    }
    co_return absl::InternalError("unknown step");
  }

 private:
  static constexpr const char* kMediaUrl = "https://cdn.example.com/teaser.mp4";
  enum class Step { kUpload, kSend, kPoll };
  struct State {
    size_t delivery = 0;
    Step step = Step::kUpload;
    std::string media;
  };

  std::vector<Team> teams_;
  std::vector<State> workers_;
};

// A typed client of `base_url` with `api_key`; prints the error and returns null on failure.
std::unique_ptr<upstream::Client> MakeClient(asio::io_context& io, const std::string& base_url,
                                             const std::string& api_key,
                                             const upstream::HttpClientConfig& http) {
  upstream::ClientConfig config;
  config.base_url = base_url;
  config.api_key = api_key;
  config.http = http;
  auto client = upstream::Client::Create(io.get_executor(), std::move(config));
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", std::string(client.status().message()).c_str());
    return nullptr;
  }
  return *std::move(client);
}

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::atomic<int64_t> completed{0};  // successful calls while measuring
  std::atomic<int64_t> all{0};        // successful calls, warmup included
  std::atomic<int64_t> errors{0};     // failed calls, any time
  std::mutex mu;
  std::string first_error;
};

asio::awaitable<void> Worker(Target* target, size_t worker, Shared* shared,
                             std::vector<uint32_t>* latencies_us) {
  while (!shared->stop.load(std::memory_order_relaxed)) {
    const SteadyClock::time_point start = SteadyClock::now();
    const absl::Status status = co_await target->Call(worker);
    if (!status.ok()) {
      if (shared->errors.fetch_add(1) == 0) {
        std::lock_guard lock(shared->mu);
        shared->first_error = std::string(status.message());
      }
      continue;
    }
    shared->all.fetch_add(1, std::memory_order_relaxed);
    if (shared->measuring.load(std::memory_order_relaxed)) {
      shared->completed.fetch_add(1, std::memory_order_relaxed);
      latencies_us->push_back(static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start)
              .count()));
    }
  }
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct Window {
  double wall_seconds = 0;
  double cpu_seconds = 0;
};

// Waits out the warmup, measures for `seconds`, then stops the workers.
asio::awaitable<void> Sampler(Shared* shared, int64_t warmup_seconds, int64_t seconds,
                              Window* window) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(std::chrono::seconds(warmup_seconds));
  co_await timer.async_wait(asio::use_awaitable);
  const SteadyClock::time_point start = SteadyClock::now();
  const double cpu_start = CpuSeconds();
  shared->measuring = true;
  timer.expires_after(std::chrono::seconds(seconds));
  co_await timer.async_wait(asio::use_awaitable);
  shared->measuring = false;
  shared->stop = true;
  window->wall_seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  window->cpu_seconds = CpuSeconds() - cpu_start;
}

uint32_t Percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t at = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1));
  return sorted[at];
}

int Main(const Flags& flags) {
  const std::string base_url = flags.Str("base_url", "");
  const std::string api_key = flags.Str("api_key", "sim-key-1");
  const std::string call = flags.Str("call", "accounts");
  const std::string account = flags.Str("account", "");
  const int64_t connections = flags.Int("connections", 8);
  const int64_t concurrency = flags.Int("concurrency", 64);
  const int64_t seconds = flags.Int("seconds", 10);
  const int64_t warmup = flags.Int("warmup_seconds", 1);
  const int64_t threads = flags.Int("threads", 1);
  const int64_t teams = flags.Int("teams", 1);
  if (base_url.empty() || teams < 1 || connections < 1 || concurrency < 1 || seconds < 1 ||
      threads < 1) {
    std::fprintf(stderr,
                 "usage: upstream_client_bench --base_url=http://HOST:PORT [--call=accounts|queue|"
                 "http|delivery --account=ID --teams=N --connections=N --concurrency=M --seconds=S "
                 "--warmup_seconds=W --threads=T]\n");
    return 2;
  }

  asio::io_context io(static_cast<int>(threads));
  upstream::HttpClientConfig http_config;
  http_config.max_connections_per_host = static_cast<int>(connections);
  http_config.request_timeout = absl::Seconds(30);
  std::unique_ptr<Target> target;
  if (call == "http") {
    auto http = upstream::HttpClient::Create(io.get_executor(), http_config);
    if (!http.ok()) {
      std::fprintf(stderr, "%s\n", std::string(http.status().message()).c_str());
      return 2;
    }
    target = std::make_unique<HttpTarget>(*std::move(http), base_url + "/api/accounts", api_key);
  } else if (call == "delivery") {
    std::vector<DeliveryTarget::Team> clients;
    for (int64_t t = 1; t <= teams; ++t) {
      std::unique_ptr<upstream::Client> client =
          MakeClient(io, base_url, StrCat("sim-key-", t), http_config);
      if (client == nullptr) return 2;
      clients.push_back({.client = std::move(client), .accounts = {}});
    }
    absl::Status listed = absl::OkStatus();
    asio::co_spawn(
        io,
        [&clients, &listed]() -> asio::awaitable<void> {
          for (DeliveryTarget::Team& team : clients) {
            upstream::Result<std::vector<upstream::Account>> accounts =
                co_await team.client->ListAccounts();
            if (!accounts.ok()) {
              listed = accounts.status();
              co_return;
            }
            for (const upstream::Account& a : *accounts.value) team.accounts.push_back(a.id);
            if (team.accounts.empty()) {
              listed = absl::FailedPreconditionError("a team without accounts");
              co_return;
            }
          }
        },
        asio::detached);
    io.run();
    io.restart();
    if (!listed.ok()) {
      std::fprintf(stderr, "listing the teams' accounts: %s\n",
                   std::string(listed.message()).c_str());
      return 2;
    }
    target = std::make_unique<DeliveryTarget>(std::move(clients), static_cast<size_t>(concurrency));
  } else if (call == "accounts" || call == "queue") {
    if (call == "queue" && account.empty()) {
      std::fprintf(stderr, "--call=queue needs --account\n");
      return 2;
    }
    std::unique_ptr<upstream::Client> client = MakeClient(io, base_url, api_key, http_config);
    if (client == nullptr) return 2;
    if (call == "accounts") {
      target = std::make_unique<AccountsTarget>(std::move(client));
    } else {
      target = std::make_unique<QueueTarget>(std::move(client), account);
    }
  } else {
    std::fprintf(stderr, "--call must be accounts, queue, http or delivery\n");
    return 2;
  }

  Shared shared;
  Window window;
  std::vector<std::vector<uint32_t>> latencies(static_cast<size_t>(concurrency));
  for (auto& l : latencies) l.reserve(1 << 16);
  for (int64_t i = 0; i < concurrency; ++i) {
    const size_t worker = static_cast<size_t>(i);
    asio::co_spawn(io, Worker(target.get(), worker, &shared, &latencies[worker]), asio::detached);
  }
  asio::co_spawn(io, Sampler(&shared, warmup, seconds, &window), asio::detached);
  std::vector<std::thread> runners;
  for (int64_t i = 1; i < threads; ++i) runners.emplace_back([&io] { io.run(); });
  io.run();
  for (std::thread& t : runners) t.join();

  std::vector<uint32_t> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  const int64_t completed = shared.completed.load();
  std::printf("call: %s\n", call.c_str());
  if (call == "delivery") std::printf("teams: %lld\n", static_cast<long long>(teams));
  std::printf("connections: %lld\nconcurrency: %lld\nthreads: %lld\n",
              static_cast<long long>(connections), static_cast<long long>(concurrency),
              static_cast<long long>(threads));
  std::printf("requests: %lld\n", static_cast<long long>(completed));
  // Every successful call, warmup included: for dividing a server's CPU time by.
  std::printf("requests_all: %lld\n", static_cast<long long>(shared.all.load()));
  std::printf("errors: %lld\n", static_cast<long long>(shared.errors.load()));
  std::printf("seconds: %.3f\n", window.wall_seconds);
  std::printf("requests_per_s: %.0f\n", static_cast<double>(completed) / window.wall_seconds);
  std::printf("latency_p50_us: %u\nlatency_p99_us: %u\n", Percentile(all, 0.50),
              Percentile(all, 0.99));
  // The client's own CPU per call (user + sys, kernel networking included), which other load
  // on a shared machine inflates less than the rate.
  std::printf("client_cpu_us_per_request: %.1f\n",
              completed > 0 ? window.cpu_seconds * 1e6 / static_cast<double>(completed) : 0.0);
  if (shared.errors.load() > 0) {
    std::printf("first_error: %s\n", shared.first_error.c_str());
  }
  return completed > 0 && shared.errors.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  const std::optional<herald::bench::Flags> parsed = herald::bench::Flags::Parse(argc, argv, 1);
  if (!parsed) return 2;
  const herald::bench::Flags& flags = *parsed;
  return herald::bench::Main(flags);
}
