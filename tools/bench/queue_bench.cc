// End-to-end benchmarks of Herald's queue against a running redis-server (tools/bench/run starts
// one and runs BullMQ against the same server for the same-run baseline).
//
//   queue_bench throughput --port=P [--jobs=1000000 --accounts=10000 --teams=200 --shards=16
//                                    --threads=1 --loops=8 --batch=256 --enqueue_batch=500
//                                    --visit=16 (jobs per account visit; the queue's default)]
//   queue_bench phases     --port=P [--jobs=200000 --batch=128 --visit=16 --pause_ms=0]
//   queue_bench limiter    --port=P [--teams=200 --accounts_per_team=50 --seconds=60
//                                    --team_per_minute=120 --team_burst=3
//                                    --account_per_minute=6 --account_burst=2]
//   queue_bench memory     --port=P [--jobs=100000 --payload_bytes=16]
//   queue_bench cluster    [--jobs=200000 --accounts=10000 --teams=200]   (starts its own
//                           redis-server and three-master Redis Cluster; 16 and 64 shards)
//   queue_bench fairness   --port=P [--shards=16 --big_accounts=9000 --big_teams=180
//                                    --big_jobs_per_account=20 --small_accounts=10
//                                    --gold_weight=3 --share_jobs=40000]
//
// Each mode prints "key: value" lines (and a final JSON object) for tools/bench/run.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <sys/resource.h>

#include <herald/common/ids.h>
#include <herald/common/strings.h>
#include <herald/queue/layout.h>
#include <herald/queue/queue.h>
#include <herald/queue/worker.h>
#include <herald/redis/client.h>
#include <herald/redis/cluster.h>
#include <herald/testing/redis_cluster.h>
#include <herald/testing/redis_server.h>

#include "bench_flags.h"

namespace herald::bench {
namespace {

namespace asio = boost::asio;

std::string TeamOf(int64_t account, int64_t teams) { return StrCat("team_", account % teams); }
std::string AccountName(int64_t account) { return StrCat("acct_", account); }

asio::awaitable<int64_t> UsedMemory(redis::Client& client) {
  redis::Command cmd{"INFO", "memory"};
  absl::StatusOr<redis::Reply> r = co_await client.Exec(std::move(cmd));
  if (!r.ok()) co_return -1;
  const std::string_view text = r->str();
  const size_t at = text.find("used_memory:");
  if (at == std::string_view::npos) co_return -1;
  const size_t end = text.find('\r', at);
  co_return ParseInt<int64_t>(text.substr(at + 12, end - at - 12)).value_or(-1);
}

// Redis' own CPU time (user + sys), in seconds: how much of the server a phase used, which
// other processes on a shared machine do not inflate.
asio::awaitable<double> RedisCpu(redis::Client& client) {
  redis::Command cmd{"INFO", "cpu"};
  absl::StatusOr<redis::Reply> r = co_await client.Exec(std::move(cmd));
  if (!r.ok()) co_return -1;
  double total = 0;
  for (const char* field : {"used_cpu_user:", "used_cpu_sys:"}) {
    const std::string_view text = r->str();
    const size_t at = text.find(field);
    if (at == std::string_view::npos) co_return -1;
    const size_t start = at + std::string_view(field).size();
    total += std::strtod(std::string(text.substr(start, text.find('\r', start) - start)).c_str(),
                         nullptr);
  }
  co_return total;
}

// This process' CPU time (user + sys) in seconds: the client side of a phase.
double ClientCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Sets limits for every team and account (one script call each, many in flight).
asio::awaitable<void> Configure(queue::Queue& q, int64_t teams, int64_t accounts,
                                ratelimit::Limit team, ratelimit::Limit account) {
  for (int64_t t = 0; t < teams; ++t) {
    absl::Status s = co_await q.SetTeamLimits(StrCat("team_", t), team);
    if (!s.ok()) std::fprintf(stderr, "SetTeamLimits: %s\n", s.ToString().c_str());
  }
  for (int64_t a = 0; a < accounts; ++a) {
    queue::AccountSettings settings{.tenant = "tenant_1",
                                    .team = TeamOf(a, teams),
                                    .per_minute = account.per_minute,
                                    .burst = account.burst};
    absl::Status s = co_await q.SetAccountLimits(AccountName(a), settings);
    if (!s.ok()) std::fprintf(stderr, "SetAccountLimits: %s\n", s.ToString().c_str());
  }
}

// Jobs grouped by shard and cut into batches, round-robin over each shard's accounts.
std::vector<std::vector<queue::JobSpec>> MakeBatches(const queue::Queue& q, int64_t jobs,
                                                     int64_t accounts, int64_t teams, int64_t batch,
                                                     size_t payload_bytes,
                                                     const std::string& prefix) {
  std::vector<std::vector<int64_t>> by_shard(q.shard_count());
  for (int64_t a = 0; a < accounts; ++a) by_shard[q.ShardOf(TeamOf(a, teams))].push_back(a);
  std::vector<std::vector<queue::JobSpec>> batches;
  std::vector<size_t> cursor(by_shard.size(), 0);
  const std::string payload(payload_bytes, 'x');
  IdGenerator ids;
  int64_t made = 0;
  while (made < jobs) {
    for (size_t s = 0; s < by_shard.size() && made < jobs; ++s) {
      if (by_shard[s].empty()) continue;
      std::vector<queue::JobSpec>& b = batches.emplace_back();
      for (int64_t i = 0; i < batch && made < jobs; ++i, ++made) {
        const int64_t a = by_shard[s][cursor[s]++ % by_shard[s].size()];
        b.push_back({.id = prefix.empty() ? ids.Next() : StrCat(prefix, made),
                     .kind = "send_mass_message",
                     .tenant = "tenant_1",
                     .team = TeamOf(a, teams),
                     .account = AccountName(a),
                     .payload = payload});
      }
    }
  }
  return batches;
}

// Enqueues every batch with `parallel` calls in flight. Returns seconds taken.
double EnqueueAll(asio::io_context& io, queue::Queue& q,
                  std::vector<std::vector<queue::JobSpec>>& batches, int parallel) {
  std::atomic<size_t> next{0};
  std::atomic<int64_t> failures{0};
  const absl::Time start = absl::Now();
  std::vector<std::future<void>> running;
  for (int p = 0; p < parallel; ++p) {
    running.push_back(asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (size_t i = next++; i < batches.size(); i = next++) {
            auto r = co_await q.EnqueueBatch(std::move(batches[i]));
            if (!r.ok()) {
              ++failures;
              std::fprintf(stderr, "enqueue: %s\n", r.status().ToString().c_str());
            }
          }
        },
        asio::use_future));
  }
  for (auto& f : running) f.get();
  if (failures > 0) std::exit(1);
  return absl::ToDoubleSeconds(absl::Now() - start);
}

template <typename T>
T RunSync(asio::io_context& io, asio::awaitable<T> op) {
  return asio::co_spawn(io, std::move(op), asio::use_future).get();
}

struct Env {
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
  std::vector<std::thread> threads;
  std::unique_ptr<redis::Client> client;

  Env(redis::ClientConfig config, int threads_n) {
    config.command_timeout = absl::Seconds(60);
    client = std::make_unique<redis::Client>(io.get_executor(), std::move(config));
    client->Start();
    for (int i = 0; i < threads_n; ++i) threads.emplace_back([this] { io.run(); });
  }
  Env(uint16_t port, int threads_n, int connections)
      : Env(redis::ClientConfig{.address = {"127.0.0.1", port}, .connections = connections},
            threads_n) {}
  ~Env() {
    client->Stop();
    work.reset();
    io.stop();
    for (auto& t : threads) t.join();
  }
};

// One throughput run: what it is given and what it measured.
struct ThroughputRun {
  int64_t jobs = 1'000'000;
  int64_t accounts = 10'000;
  int64_t teams = 200;
  int shards = 16;
  int visit = queue::QueueConfig{}.jobs_per_visit;
  int64_t enqueue_batch = 500;
  int loops = 8;
  int batch = 256;
  // Redis' CPU seconds so far, per node (one entry on a single server, one per master on a
  // cluster); read before enqueueing, after it, and after processing.
  std::function<std::vector<double>()> redis_cpu;
  std::function<void()> after_enqueue = [] {};  // runs between enqueueing and processing

  double enqueue_s = 0;
  double process_s = 0;
  double client_cpu_s = 0;
  double mean_lease_batch = 0;
  std::vector<double> enqueue_cpu_s;    // per node
  std::vector<double> lease_ack_cpu_s;  // per node
  int64_t handled = 0;

  double PerJobUs(double seconds) const { return seconds * 1e6 / static_cast<double>(jobs); }
};

std::vector<double> Minus(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

double Sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

// Enqueues run.jobs no-op jobs (limits on, not binding), then leases and acks them all with one
// worker; fills in run's measurements. False when a job was lost or processing timed out.
bool MeasureThroughput(Env& env, ThroughputRun& run) {
  queue::Queue q(*env.client, {.shards = run.shards, .jobs_per_visit = run.visit});
  // "Limiter on": every job takes a token from its account's and its team's bucket, with limits
  // high enough not to bind.
  RunSync(env.io, Configure(q, run.teams, run.accounts, {.per_minute = 6'000'000, .burst = 1000},
                            {.per_minute = 600'000, .burst = 100}));
  auto batches = MakeBatches(q, run.jobs, run.accounts, run.teams, run.enqueue_batch, 16, "");
  const std::vector<double> cpu_0 = run.redis_cpu();
  run.enqueue_s = EnqueueAll(env.io, q, batches, 8);
  const std::vector<double> cpu_1 = run.redis_cpu();
  run.after_enqueue();

  queue::Worker worker(env.io.get_executor(), q,
                       {.lease_loops = run.loops,
                        .batch_size = run.batch,
                        .idle_min = absl::Milliseconds(1),
                        .idle_max = absl::Milliseconds(20)});
  std::atomic<int64_t> handled{0};
  worker.Handle("send_mass_message",
                [&](const queue::LeasedJob&) -> asio::awaitable<queue::JobResult> {
                  ++handled;
                  co_return queue::JobResult::Ok();
                });
  metrics::Counter& acked =
      worker.metrics().jobs.Add({{"kind", "send_mass_message"}, {"outcome", "ok"}});
  const absl::Time start = absl::Now();
  const double client_cpu_0 = ClientCpu();
  worker.Start();
  while (acked.Value() < static_cast<double>(run.jobs)) {
    if (absl::Now() - start > absl::Minutes(30)) {
      std::fprintf(stderr, "processing timed out at %.0f jobs\n", acked.Value());
      return false;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  run.process_s = absl::ToDoubleSeconds(absl::Now() - start);
  const std::vector<double> cpu_2 = run.redis_cpu();
  run.client_cpu_s = ClientCpu() - client_cpu_0;
  worker.Drain(absl::Now());
  const auto lease_batch = worker.metrics().lease_batch_size.Collect().histogram;
  run.mean_lease_batch =
      lease_batch.sample_count
          ? lease_batch.sample_sum / static_cast<double>(lease_batch.sample_count)
          : 0.0;
  run.enqueue_cpu_s = Minus(cpu_1, cpu_0);
  run.lease_ack_cpu_s = Minus(cpu_2, cpu_1);
  run.handled = handled.load();
  return run.handled == run.jobs;
}

int Throughput(const Flags& f) {
  ThroughputRun run{.jobs = f.Int("jobs", 1'000'000),
                    .accounts = f.Int("accounts", 10'000),
                    .teams = f.Int("teams", 200),
                    .shards = static_cast<int>(f.Int("shards", 16)),
                    .visit = static_cast<int>(f.Int("visit", queue::QueueConfig{}.jobs_per_visit)),
                    .enqueue_batch = f.Int("enqueue_batch", 500),
                    .loops = static_cast<int>(f.Int("loops", 8)),
                    .batch = static_cast<int>(f.Int("batch", 256))};
  Env env(static_cast<uint16_t>(f.Int("port", 6379)), static_cast<int>(f.Int("threads", 1)),
          static_cast<int>(f.Int("connections", 2)));
  run.redis_cpu = [&env] { return std::vector<double>{RunSync(env.io, RedisCpu(*env.client))}; };
  const int64_t mem_before = RunSync(env.io, UsedMemory(*env.client));
  int64_t mem_after = mem_before;
  run.after_enqueue = [&] { mem_after = RunSync(env.io, UsedMemory(*env.client)); };
  const bool complete = MeasureThroughput(env, run);
  const double jobs = static_cast<double>(run.jobs);
  std::printf("herald_enqueue_per_s: %.0f\n", jobs / run.enqueue_s);
  std::printf("herald_process_per_s: %.0f\n", jobs / run.process_s);
  std::printf("herald_bytes_per_queued_job: %.1f\n",
              static_cast<double>(mem_after - mem_before) / jobs);
  std::printf("herald_redis_cpu_us_per_enqueue: %.1f\n", run.PerJobUs(Sum(run.enqueue_cpu_s)));
  std::printf("herald_redis_cpu_us_per_lease_ack: %.1f\n", run.PerJobUs(Sum(run.lease_ack_cpu_s)));
  std::printf("herald_client_cpu_us_per_lease_ack: %.1f\n", run.PerJobUs(run.client_cpu_s));
  std::printf("herald_mean_lease_batch: %.1f\n", run.mean_lease_batch);
  std::printf("{\"enqueue_per_s\": %.0f, \"process_per_s\": %.0f}\n", jobs / run.enqueue_s,
              jobs / run.process_s);
  return complete ? 0 : 1;
}

// Where lease+ack's Redis time goes: every job is leased first (batches of --batch, shard by
// shard), then every lease is acked (the same batches), and Redis' CPU is read around each phase.
int Phases(const Flags& f) {
  const int64_t jobs = f.Int("jobs", 200'000);
  const int64_t accounts = f.Int("accounts", 10'000);
  const int64_t teams = f.Int("teams", 200);
  const int batch = static_cast<int>(f.Int("batch", 128));
  Env env(static_cast<uint16_t>(f.Int("port", 6379)), 1, 2);
  queue::Queue q(
      *env.client,
      {.shards = static_cast<int>(f.Int("shards", 16)),
       .jobs_per_visit = static_cast<int>(f.Int("visit", queue::QueueConfig{}.jobs_per_visit))});
  RunSync(env.io, Configure(q, teams, accounts, {.per_minute = 6'000'000, .burst = 1000},
                            {.per_minute = 600'000, .burst = 100}));
  auto batches = MakeBatches(q, jobs, accounts, teams, 500, 16, "");
  EnqueueAll(env.io, q, batches, 4);
  std::vector<std::vector<queue::AckRequest>> acks;
  auto lease_all = [&]() -> asio::awaitable<int64_t> {
    int64_t leased = 0;
    for (int shard = 0; shard < q.shard_count(); ++shard) {
      while (true) {
        auto b = co_await q.Lease(shard, batch, absl::Minutes(30));
        if (!b.ok() || b->jobs.empty()) break;
        leased += static_cast<int64_t>(b->jobs.size());
        auto& a = acks.emplace_back();
        for (const queue::LeasedJob& j : b->jobs) a.push_back({j.ref(), std::nullopt});
      }
    }
    co_return leased;
  };
  auto ack_all = [&]() -> asio::awaitable<int64_t> {
    int64_t done = 0;
    for (auto& a : acks) {
      auto r = co_await q.Ack(std::move(a));
      if (r.ok()) {
        for (const queue::AckResult& x : *r) done += x.ack == queue::FinishResult::kDone ? 1 : 0;
      }
    }
    co_return done;
  };
  // --pause_ms: a quiet gap before each phase (announced on stderr), for a profiler.
  const int64_t pause = f.Int("pause_ms", 0);
  auto announce = [&](const char* phase) {
    if (pause <= 0) return;
    std::fprintf(stderr, "%s phase in %lld ms\n", phase, static_cast<long long>(pause));
    absl::SleepFor(absl::Milliseconds(pause));
  };
  announce("lease");
  const double cpu_0 = RunSync(env.io, RedisCpu(*env.client));
  const int64_t leased = RunSync(env.io, lease_all());
  const double cpu_1 = RunSync(env.io, RedisCpu(*env.client));
  announce("ack");
  const int64_t acked = RunSync(env.io, ack_all());
  const double cpu_2 = RunSync(env.io, RedisCpu(*env.client));
  std::printf("phases_leased: %lld\nphases_acked: %lld\n", static_cast<long long>(leased),
              static_cast<long long>(acked));
  std::printf("herald_redis_cpu_us_per_lease: %.1f\n",
              (cpu_1 - cpu_0) * 1e6 / static_cast<double>(leased));
  std::printf("herald_redis_cpu_us_per_ack: %.1f\n",
              (cpu_2 - cpu_1) * 1e6 / static_cast<double>(acked));
  return leased == jobs && acked == jobs ? 0 : 1;
}

int Memory(const Flags& f) {
  const int64_t jobs = f.Int("jobs", 100'000);
  const int64_t accounts = f.Int("accounts", 10'000);
  const int64_t teams = f.Int("teams", 200);
  Env env(static_cast<uint16_t>(f.Int("port", 6379)), 1, 2);
  queue::Queue q(*env.client, {.shards = static_cast<int>(f.Int("shards", 16))});
  // Accounts and teams are registered first: their memory is per account, not per job.
  RunSync(env.io,
          Configure(
              q, teams, accounts,
              {.per_minute = f.Int("team_per_minute", 600), .burst = f.Int("team_burst", 10)},
              {.per_minute = f.Int("account_per_minute", 60), .burst = f.Int("account_burst", 5)}));
  auto batches = MakeBatches(q, jobs, accounts, teams, 500,
                             static_cast<size_t>(f.Int("payload_bytes", 16)), "");
  const int64_t before = RunSync(env.io, UsedMemory(*env.client));
  EnqueueAll(env.io, q, batches, 4);
  const int64_t after = RunSync(env.io, UsedMemory(*env.client));
  const double per_job = static_cast<double>(after - before) / static_cast<double>(jobs);
  std::printf("herald_bytes_per_queued_job: %.1f\n", per_job);
  std::printf("{\"bytes_per_queued_job\": %.1f}\n", per_job);
  return 0;
}

int Limiter(const Flags& f) {
  const int64_t teams = f.Int("teams", 200);
  const int64_t per_team = f.Int("accounts_per_team", 50);
  const int64_t accounts = teams * per_team;
  const int64_t seconds = f.Int("seconds", 60);
  const ratelimit::Limit team{.per_minute = f.Int("team_per_minute", 120),
                              .burst = f.Int("team_burst", 3)};
  const ratelimit::Limit account{.per_minute = f.Int("account_per_minute", 6),
                                 .burst = f.Int("account_burst", 2)};
  Env env(static_cast<uint16_t>(f.Int("port", 6379)), 1, 2);
  queue::Queue q(*env.client, {.shards = static_cast<int>(f.Int("shards", 16))});
  RunSync(env.io, Configure(q, teams, accounts, team, account));
  // Enough work that no account runs dry within the run.
  const int64_t per_account =
      std::max<int64_t>(account.burst + account.per_minute * seconds / 60 + 2, 4);
  auto batches = MakeBatches(q, per_account * accounts, accounts, teams, 500, 16, "");
  EnqueueAll(env.io, q, batches, 4);

  const absl::Duration lease = absl::Seconds(30);
  std::mutex mu;
  std::map<std::string, std::vector<int64_t>> by_team, by_account;  // lease times, ms
  queue::Worker worker(env.io.get_executor(), q,
                       {.lease_loops = 4,
                        .batch_size = 64,
                        .lease_duration = lease,
                        .idle_min = absl::Milliseconds(1),
                        .idle_max = absl::Milliseconds(50)});
  worker.Handle("send_mass_message",
                [&](const queue::LeasedJob& job) -> asio::awaitable<queue::JobResult> {
                  // The lease script's own time, to the millisecond.
                  const int64_t at = absl::ToUnixMillis(job.lease_expires_at - lease);
                  std::lock_guard lock(mu);
                  by_team[job.team].push_back(at);
                  by_account[job.account].push_back(at);
                  co_return queue::JobResult::Ok();
                });
  worker.Start();
  absl::SleepFor(absl::Seconds(seconds));
  worker.Drain(absl::Now() + absl::Seconds(5));

  std::lock_guard lock(mu);
  int64_t first = INT64_MAX, total = 0;
  for (const auto& [name, times] : by_team) {
    for (int64_t t : times) first = std::min(first, t);
    total += static_cast<int64_t>(times.size());
  }
  // Count only leases in [first, first + seconds), the measured window. The steady rate leaves out
  // the first 5 s, where each team's initial burst adds up to `burst` tokens above its rate.
  int64_t in_window = 0, steady = 0;
  for (const auto& [name, times] : by_team) {
    for (int64_t t : times) {
      in_window += t < first + seconds * 1000 ? 1 : 0;
      steady += t >= first + 5000 && t < first + seconds * 1000 ? 1 : 0;
    }
  }
  // Every window [t_i, t_j] of every team and account: count <= burst + rate * (w + 1ms), the
  // 1ms covering the millisecond truncation of the lease times.
  auto over = [](std::vector<int64_t> times, const ratelimit::Limit& limit) {
    std::sort(times.begin(), times.end());
    int64_t violations = 0;
    for (size_t i = 0; i < times.size(); ++i) {
      for (size_t j = i; j < times.size(); ++j) {
        const double allowed = static_cast<double>(limit.burst) +
                               static_cast<double>(limit.per_minute) *
                                   static_cast<double>(times[j] - times[i] + 1) / 60000.0;
        if (static_cast<double>(j - i + 1) > allowed) {
          ++violations;
          break;
        }
      }
    }
    return violations;
  };
  int64_t team_violations = 0, account_violations = 0;
  for (const auto& [name, times] : by_team) team_violations += over(times, team);
  for (const auto& [name, times] : by_account) account_violations += over(times, account);
  const double allowed = static_cast<double>(teams * team.per_minute) * seconds / 60.0;
  const double ratio = static_cast<double>(in_window) / allowed;
  const double steady_ratio =
      static_cast<double>(steady) /
      (static_cast<double>(teams * team.per_minute) * static_cast<double>(seconds - 5) / 60.0);
  std::printf("limiter_leased_total: %lld\n", static_cast<long long>(total));
  std::printf("limiter_leased_in_window: %lld\n", static_cast<long long>(in_window));
  std::printf("limiter_allowed_by_team_limits: %.0f\n", allowed);
  std::printf("limiter_rate_vs_team_limits: %.4f\n", ratio);
  std::printf("limiter_steady_rate_vs_team_limits: %.4f\n", steady_ratio);
  std::printf("limiter_team_window_violations: %lld\n", static_cast<long long>(team_violations));
  std::printf("limiter_account_window_violations: %lld\n",
              static_cast<long long>(account_violations));
  std::printf("{\"ratio\": %.4f, \"team_violations\": %lld, \"account_violations\": %lld}\n", ratio,
              static_cast<long long>(team_violations), static_cast<long long>(account_violations));
  return team_violations == 0 && account_violations == 0 ? 0 : 1;
}

// "used_cpu_user" + "used_cpu_sys" from INFO cpu text; -1 when absent.
double CpuOfInfo(const absl::StatusOr<std::string>& info) {
  if (!info.ok()) return -1;
  double total = 0;
  for (const std::string_view field : {"used_cpu_user:", "used_cpu_sys:"}) {
    const size_t at = info->find(field);
    if (at == std::string::npos) return -1;
    total += std::strtod(info->c_str() + at + field.size(), nullptr);
  }
  return total;
}

// Queue throughput on a three-master Redis Cluster beside a single redis-server, in one run, for
// 16 and 64 queue shards: enqueue and lease+ack rates, Redis' CPU per job on each master, and how
// the shards spread over the masters. Starts both itself (no persistence, no replicas).
int Cluster(const Flags& f) {
  const int64_t jobs = f.Int("jobs", 200'000);
  auto single = testing::RedisServer::Start();
  auto cluster = testing::RedisCluster::Start({.replicas_per_master = 0, .appendonly = false});
  if (!single.ok() || !cluster.ok()) {
    std::fprintf(stderr, "cannot start redis: %s %s\n", single.status().ToString().c_str(),
                 cluster.status().ToString().c_str());
    return 1;
  }
  const std::vector<uint16_t> masters = (*cluster)->master_ports();
  bool complete = true;
  for (const int shards : {16, 64}) {
    const auto make_run = [&] {
      return ThroughputRun{.jobs = jobs,
                           .accounts = f.Int("accounts", 10'000),
                           .teams = f.Int("teams", 200),
                           .shards = shards};
    };
    (void)(*single)->Command({"FLUSHALL"});
    ThroughputRun one = make_run();
    one.redis_cpu = [&] {
      return std::vector<double>{CpuOfInfo((*single)->Command({"INFO", "cpu"}))};
    };
    {
      redis::ClientConfig config;
      config.address = {"127.0.0.1", (*single)->port()};
      Env env(config, 1);
      complete &= MeasureThroughput(env, one);
    }
    for (const uint16_t m : masters) (void)(*cluster)->Command(m, {"FLUSHALL"});
    ThroughputRun three = make_run();
    three.redis_cpu = [&] {
      std::vector<double> cpu;
      for (const uint16_t m : masters)
        cpu.push_back(CpuOfInfo((*cluster)->Command(m, {"INFO", "cpu"})));
      return cpu;
    };
    {
      redis::ClientConfig config;
      config.cluster = true;
      config.address = {"127.0.0.1", masters[0]};
      Env env(config, 1);
      complete &= MeasureThroughput(env, three);
    }
    std::map<uint16_t, int> spread;
    for (int k = 0; k < shards; ++k) {
      ++spread[(*cluster)->MasterPortOf(redis::cluster::KeySlot(queue::ShardTag(k))).value_or(0)];
    }
    const double n = static_cast<double>(jobs);
    std::printf("shards_%d_single_enqueue_per_s: %.0f\n", shards, n / one.enqueue_s);
    std::printf("shards_%d_cluster_enqueue_per_s: %.0f\n", shards, n / three.enqueue_s);
    std::printf("shards_%d_ratio_enqueue (cluster/single): %.2f\n", shards,
                one.enqueue_s / three.enqueue_s);
    std::printf("shards_%d_single_process_per_s: %.0f\n", shards, n / one.process_s);
    std::printf("shards_%d_cluster_process_per_s: %.0f\n", shards, n / three.process_s);
    std::printf("shards_%d_ratio_process (cluster/single): %.2f\n", shards,
                one.process_s / three.process_s);
    std::printf("shards_%d_single_redis_cpu_us_per_job: enqueue %.1f, lease+ack %.1f\n", shards,
                one.PerJobUs(Sum(one.enqueue_cpu_s)), one.PerJobUs(Sum(one.lease_ack_cpu_s)));
    std::printf("shards_%d_cluster_redis_cpu_us_per_job: enqueue %.1f, lease+ack %.1f\n", shards,
                three.PerJobUs(Sum(three.enqueue_cpu_s)),
                three.PerJobUs(Sum(three.lease_ack_cpu_s)));
    std::printf("shards_%d_client_cpu_us_per_lease_ack: single %.1f, cluster %.1f\n", shards,
                one.PerJobUs(one.client_cpu_s), three.PerJobUs(three.client_cpu_s));
    for (size_t i = 0; i < masters.size(); ++i) {
      std::printf(
          "shards_%d_master_%zu: %d shards, redis cpu us per job: enqueue %.1f, lease+ack %.1f\n",
          shards, i, spread[masters[i]], three.PerJobUs(three.enqueue_cpu_s[i]),
          three.PerJobUs(three.lease_ack_cpu_s[i]));
    }
  }
  return complete ? 0 : 1;
}

// ---- fairness between tenants

// One tenant's share of a fairness run: its accounts spread over `teams`, and the jobs each
// account gets.
struct TenantLoad {
  std::string tenant;
  std::string name;  // of its accounts and teams, unique per load
  std::vector<std::string> teams;
  int64_t accounts = 0;
  int64_t jobs_per_account = 0;

  std::string Account(int64_t i) const { return StrCat(name, "_acct_", i); }
  const std::string& TeamOfAccount(int64_t i) const {
    return teams[static_cast<size_t>(i) % teams.size()];
  }
  int64_t jobs() const { return accounts * jobs_per_account; }
};

// `count` team names (prefixed `name`) on distinct shards where possible (one per shard, in shard
// order, wrapping), so that the tenant has work on every shard it can.
std::vector<std::string> TeamsOnShards(const queue::Queue& q, const std::string& name, int count) {
  std::vector<std::string> by_shard(static_cast<size_t>(q.shard_count()));
  for (int i = 0, found = 0; found < q.shard_count(); ++i) {
    const std::string team = StrCat(name, "_team_", i);
    std::string& slot = by_shard[static_cast<size_t>(q.ShardOf(team))];
    if (slot.empty()) {
      slot = team;
      ++found;
    }
  }
  std::vector<std::string> teams;
  for (int i = 0; i < count; ++i) {
    teams.push_back(by_shard[static_cast<size_t>(i) % by_shard.size()]);
    if (i >= q.shard_count()) teams.back() += StrCat("_", i);  // more teams than shards
  }
  return teams;
}

asio::awaitable<void> ConfigureTenant(queue::Queue& q, const TenantLoad& t, int weight) {
  absl::Status s = co_await q.SetTenantWeight(t.tenant, weight);
  if (!s.ok()) std::fprintf(stderr, "SetTenantWeight: %s\n", s.ToString().c_str());
  for (const std::string& team : t.teams) {
    s = co_await q.SetTeamLimits(team, {.per_minute = 6'000'000, .burst = 1000});
    if (!s.ok()) std::fprintf(stderr, "SetTeamLimits: %s\n", s.ToString().c_str());
  }
  for (int64_t a = 0; a < t.accounts; ++a) {
    queue::AccountSettings settings{
        .tenant = t.tenant, .team = t.TeamOfAccount(a), .per_minute = 600'000, .burst = 100};
    s = co_await q.SetAccountLimits(t.Account(a), settings);
    if (!s.ok()) std::fprintf(stderr, "SetAccountLimits: %s\n", s.ToString().c_str());
  }
}

// The tenant's jobs in batches of 500, account after account round-robin (the order a campaign
// fans out in).
std::vector<std::vector<queue::JobSpec>> TenantBatches(const TenantLoad& t,
                                                       const std::string& id_prefix) {
  std::vector<std::vector<queue::JobSpec>> batches;
  for (int64_t n = 0; n < t.jobs(); ++n) {
    if (n % 500 == 0) batches.emplace_back();
    const int64_t a = n % t.accounts;
    batches.back().push_back({.id = StrCat(id_prefix, t.name, "_", n),
                              .kind = "send_mass_message",
                              .tenant = t.tenant,
                              .team = t.TeamOfAccount(a),
                              .account = t.Account(a),
                              .payload = "x"});
  }
  return batches;
}

// Handled jobs per tenant, and when each tenant's last job so far was handled.
struct TenantCounts {
  std::mutex mu;
  std::map<std::string, int64_t> handled;
  std::map<std::string, absl::Time> last;

  int64_t Of(const std::string& tenant) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = handled.find(tenant);
    return it == handled.end() ? 0 : it->second;
  }
  absl::Time LastOf(const std::string& tenant) {
    std::lock_guard<std::mutex> lock(mu);
    return last[tenant];
  }
  int64_t Total() {
    std::lock_guard<std::mutex> lock(mu);
    int64_t sum = 0;
    for (const auto& [tenant, n] : handled) sum += n;
    return sum;
  }
};

std::unique_ptr<queue::Worker> CountingWorker(Env& env, queue::Queue& q, TenantCounts& counts) {
  auto worker =
      std::make_unique<queue::Worker>(env.io.get_executor(), q,
                                      queue::WorkerConfig{.lease_loops = 8,
                                                          .batch_size = 256,
                                                          .idle_min = absl::Milliseconds(1),
                                                          .idle_max = absl::Milliseconds(20)});
  worker->Handle("send_mass_message",
                 [&counts](const queue::LeasedJob& job) -> asio::awaitable<queue::JobResult> {
                   {
                     std::lock_guard<std::mutex> lock(counts.mu);
                     ++counts.handled[job.tenant];
                     counts.last[job.tenant] = absl::Now();
                   }
                   co_return queue::JobResult::Ok();
                 });
  return worker;
}

// Polls `done` every millisecond, up to ten minutes; false on timeout.
bool Await(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Minutes(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// Two measurements on one Redis:
//  1. Latency: tenant "big" (--big_accounts over every shard, --big_jobs_per_account each) is
//     draining when tenant "small" (--small_accounts on one team) enqueues one job per account.
//     How long until small's jobs have all run, against how long big's backlog then takes to
//     drain (what small would wait behind it with fairness between accounts only).
//  2. Shares: tenants "gold" (--gold_weight) and "basic" (weight 1), both backlogged on every
//     shard, basic with ten times gold's accounts; gold's share of the first half of the jobs run,
//     against its weight's share. The same jobs under one tenant first: the throughput ratio is
//     the cost of the second level of fairness.
int Fairness(const Flags& f) {
  Env env(static_cast<uint16_t>(f.Int("port", 6379)), 1, 2);
  queue::Queue q(*env.client, {.shards = static_cast<int>(f.Int("shards", 16))});
  const int shards = q.shard_count();

  // 1. Latency.
  const TenantLoad big{.tenant = "big",
                       .name = "big",
                       .teams = TeamsOnShards(q, "big", static_cast<int>(f.Int("big_teams", 180))),
                       .accounts = f.Int("big_accounts", 9000),
                       .jobs_per_account = f.Int("big_jobs_per_account", 20)};
  const TenantLoad small{.tenant = "small",
                         .name = "small",
                         .teams = TeamsOnShards(q, "small", 1),
                         .accounts = f.Int("small_accounts", 10),
                         .jobs_per_account = 1};
  RunSync(env.io, ConfigureTenant(q, big, 1));
  RunSync(env.io, ConfigureTenant(q, small, 1));
  auto big_batches = TenantBatches(big, "l");
  EnqueueAll(env.io, q, big_batches, 8);
  TenantCounts counts;
  std::unique_ptr<queue::Worker> worker = CountingWorker(env, q, counts);
  worker->Start();
  if (!Await([&] { return counts.Of("big") >= big.jobs() / 5; })) return 1;
  auto small_batches = TenantBatches(small, "l");
  const absl::Time small_at = absl::Now();
  EnqueueAll(env.io, q, small_batches, 1);
  const int64_t big_backlog = big.jobs() - counts.Of("big");
  if (!Await([&] { return counts.Of("small") >= small.jobs(); })) return 1;
  const absl::Duration small_wait = counts.LastOf("small") - small_at;
  if (!Await([&] { return counts.Of("big") >= big.jobs(); })) return 1;
  const absl::Duration big_drain = counts.LastOf("big") - small_at;
  worker->Drain(absl::Now());
  worker.reset();

  // 2. Shares; first the same jobs under one tenant.
  const int gold_weight = static_cast<int>(f.Int("gold_weight", 3));
  const int64_t per_tenant_jobs = f.Int("share_jobs", 40'000);
  const auto load = [&](std::string tenant, std::string name, int64_t accounts_per_shard) {
    TenantLoad t{.tenant = std::move(tenant),
                 .name = std::move(name),
                 .accounts = accounts_per_shard * shards,
                 .jobs_per_account = per_tenant_jobs / (accounts_per_shard * shards)};
    t.teams = TeamsOnShards(q, t.name, shards);
    return t;
  };
  const TenantLoad gold = load("gold", "gold", 10);
  const TenantLoad basic = load("basic", "basic", 100);
  const TenantLoad solo_gold = load("solo", "solo_gold", 10);
  const TenantLoad solo_basic = load("solo", "solo_basic", 100);
  RunSync(env.io, ConfigureTenant(q, gold, gold_weight));
  RunSync(env.io, ConfigureTenant(q, basic, 1));
  RunSync(env.io, ConfigureTenant(q, solo_gold, 1));
  RunSync(env.io, ConfigureTenant(q, solo_basic, 1));
  const int64_t total = gold.jobs() + basic.jobs();
  // Enqueues both loads, then runs them with a fresh worker: returns the rate (jobs/s) at which
  // the first half ran, and what each tenant had run by then in `by_tenant`; -1 on timeout.
  const auto run = [&](const TenantLoad& a, const TenantLoad& b,
                       std::map<std::string, int64_t>& by_tenant) -> double {
    std::vector<std::vector<queue::JobSpec>> batches = TenantBatches(a, "s");
    for (auto& batch : TenantBatches(b, "s")) batches.push_back(std::move(batch));
    EnqueueAll(env.io, q, batches, 8);
    TenantCounts c;
    std::unique_ptr<queue::Worker> w = CountingWorker(env, q, c);
    const absl::Time start = absl::Now();
    w->Start();
    if (!Await([&] { return c.Total() >= total / 2; })) return -1;
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    {
      std::lock_guard<std::mutex> lock(c.mu);
      by_tenant = c.handled;
    }
    if (!Await([&] { return c.Total() >= total; })) return -1;
    w->Drain(absl::Now());
    int64_t first_half = 0;
    for (const auto& [tenant, n] : by_tenant) first_half += n;
    return static_cast<double>(first_half) / seconds;
  };
  std::map<std::string, int64_t> solo_counts, shared;
  const double solo_rate = run(solo_gold, solo_basic, solo_counts);
  const double shared_rate = run(gold, basic, shared);
  if (solo_rate < 0 || shared_rate < 0) return 1;
  const double gold_share =
      static_cast<double>(shared["gold"]) / static_cast<double>(shared["gold"] + shared["basic"]);
  const double expected = static_cast<double>(gold_weight) / (gold_weight + 1);

  std::printf("small_tenant_jobs: %lld, big_tenant_backlog_then: %lld jobs\n",
              static_cast<long long>(small.jobs()), static_cast<long long>(big_backlog));
  std::printf("small_tenant_all_run_after_ms: %.1f\n", absl::ToDoubleMilliseconds(small_wait));
  std::printf("big_tenant_backlog_drained_after_ms: %.1f\n", absl::ToDoubleMilliseconds(big_drain));
  std::printf("wait_ratio_small_vs_backlog: %.4f\n",
              absl::ToDoubleMilliseconds(small_wait) / absl::ToDoubleMilliseconds(big_drain));
  std::printf("gold_weight: %d, gold_share: %.4f (weight share %.4f, off by %.1f%% of it)\n",
              gold_weight, gold_share, expected, 100 * std::abs(gold_share - expected) / expected);
  std::printf("one_tenant_jobs_per_s: %.0f, two_tenants_jobs_per_s: %.0f, ratio: %.3f\n", solo_rate,
              shared_rate, shared_rate / solo_rate);
  return 0;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: queue_bench throughput|limiter|memory|phases|cluster|fairness --port=P "
                 "[--flag=value...]\n");
    return 2;
  }
  const std::optional<herald::bench::Flags> parsed = herald::bench::Flags::Parse(argc, argv, 2);
  if (!parsed) return 2;
  const herald::bench::Flags& flags = *parsed;
  const std::string_view mode = argv[1];
  if (mode == "throughput") return herald::bench::Throughput(flags);
  if (mode == "limiter") return herald::bench::Limiter(flags);
  if (mode == "memory") return herald::bench::Memory(flags);
  if (mode == "phases") return herald::bench::Phases(flags);
  if (mode == "cluster") return herald::bench::Cluster(flags);
  if (mode == "fairness") return herald::bench::Fairness(flags);
  std::fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 2;
}
