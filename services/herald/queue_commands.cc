#include "queue_commands.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <herald/common/ids.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>

#include "worker_component.h"

namespace herald::serve {
namespace {

namespace asio = boost::asio;

// Runs `body(queue, args...)` on a private io_context with its own client, stops the client
// when the body is done, and returns the body's result.
template <typename T, typename... Args>
T RunWithQueue(const redis::ClientConfig& redis_config, const queue::QueueConfig& queue_config,
               asio::awaitable<T> (*body)(queue::Queue&, Args...), Args... args) {
  asio::io_context ioc;
  redis::Client client(ioc.get_executor(), redis_config);
  client.Start();
  queue::Queue q(client, queue_config);
  std::optional<T> result;
  asio::co_spawn(ioc, body(q, args...), [&](std::exception_ptr error, T value) {
    if (error) std::rethrow_exception(error);
    result = std::move(value);
    client.Stop();  // ends the connections, so run() returns
  });
  ioc.run();
  return std::move(*result);
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "herald queue: %s\n", std::string(status.ToString()).c_str());
  return 1;
}

asio::awaitable<absl::StatusOr<std::vector<queue::ShardStats>>> AllStats(queue::Queue& q) {
  std::vector<queue::ShardStats> all;
  for (int shard = 0; shard < q.shard_count(); ++shard) {
    HERALD_CO_ASSIGN_OR_RETURN(queue::ShardStats stats, co_await q.Stats(shard));
    all.push_back(std::move(stats));
  }
  co_return all;
}

int64_t Finished(const std::vector<queue::ShardStats>& stats, std::string_view kind,
                 std::string_view outcome) {
  int64_t total = 0;
  for (const auto& s : stats) {
    auto it = s.finished.find({std::string(kind), std::string(outcome)});
    if (it != s.finished.end()) total += it->second;
  }
  return total;
}

struct DeadLetters {
  int64_t total = 0;                                   // over all shards
  std::vector<std::pair<int, queue::DeadJob>> newest;  // (shard, job), newest first
};

// The newest `limit` dead jobs over all shards: each shard's newest `limit`, merged.
asio::awaitable<absl::StatusOr<DeadLetters>> NewestDead(queue::Queue& q, int limit) {
  DeadLetters out;
  for (int shard = 0; shard < q.shard_count(); ++shard) {
    HERALD_CO_ASSIGN_OR_RETURN(queue::DeadPage page, co_await q.ListDead(shard, 0, limit));
    out.total += page.total;
    for (queue::DeadJob& job : page.jobs) out.newest.emplace_back(shard, std::move(job));
  }
  std::stable_sort(out.newest.begin(), out.newest.end(), [](const auto& a, const auto& b) {
    return a.second.died_at > b.second.died_at;
  });
  if (out.newest.size() > static_cast<size_t>(limit)) out.newest.resize(limit);
  co_return out;
}

}  // namespace

int RunQueueDead(const redis::ClientConfig& redis, const queue::QueueConfig& queue, int limit) {
  auto dead = RunWithQueue(redis, queue, &NewestDead, limit);
  if (!dead.ok()) return Fail(dead.status());
  std::printf("%lld dead jobs", static_cast<long long>(dead->total));
  if (dead->total > 0) std::printf("; the newest %zu:", dead->newest.size());
  std::printf("\n");
  if (dead->newest.empty()) return 0;
  std::printf("%-24s %5s %-20s %-24s %8s  %-28s %s\n", "died (UTC)", "shard", "kind", "account",
              "attempts", "id", "reason");
  for (const auto& [shard, job] : dead->newest) {
    std::printf("%-24s %5d %-20s %-24s %8d  %-28s %s\n",
                absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", job.died_at, absl::UTCTimeZone()).c_str(),
                shard, job.kind.c_str(), job.account.c_str(), job.attempts, job.id.c_str(),
                job.reason.c_str());
  }
  return 0;
}

int RunQueueStats(const redis::ClientConfig& redis, const queue::QueueConfig& queue) {
  auto stats = RunWithQueue(redis, queue, &AllStats);
  if (!stats.ok()) return Fail(stats.status());
  std::printf("%5s %10s %10s %10s %10s %9s %12s\n", "shard", "ready", "delayed", "leased", "dead",
              "accounts", "oldest");
  std::map<std::pair<std::string, std::string>, int64_t> finished;
  for (const auto& s : *stats) {
    std::printf(
        "%5d %10lld %10lld %10lld %10lld %9lld %12s\n", s.shard, static_cast<long long>(s.ready),
        static_cast<long long>(s.delayed), static_cast<long long>(s.leased),
        static_cast<long long>(s.dead), static_cast<long long>(s.ready_accounts),
        absl::FormatDuration(absl::Trunc(s.oldest_ready_age, absl::Milliseconds(1))).c_str());
    for (const auto& [key, n] : s.finished) finished[key] += n;
  }
  std::printf("\n%-24s %-14s %12s\n", "kind", "outcome", "jobs");
  for (const auto& [key, n] : finished) {
    std::printf("%-24s %-14s %12lld\n", key.first.c_str(), key.second.c_str(),
                static_cast<long long>(n));
  }
  return 0;
}

asio::awaitable<absl::Status> Smoke(queue::Queue& q, SmokeConfig smoke) {
  const std::string run = IdGenerator().Next();
  // Teams and accounts named after the run, so runs never share limits or jobs.
  for (int t = 0; t < smoke.teams; ++t) {
    const std::string team = StrCat("smoke-", run, "-t", t);
    // Arguments are named locals: g++ 12 mishandles braced temporaries inside co_await.
    // A second's worth of burst: with a burst of 1, capacity a poll arrives late for is lost.
    const ratelimit::Limit team_limit{.per_minute = smoke.team_per_minute,
                                      .burst = std::max<int64_t>(1, smoke.team_per_minute / 60)};
    HERALD_CO_RETURN_IF_ERROR(co_await q.SetTeamLimits(team, team_limit));
    for (int a = 0; a < smoke.accounts_per_team; ++a) {
      const queue::AccountSettings settings{
          .tenant = "smoke", .team = team, .per_minute = smoke.account_per_minute};
      std::string account = StrCat("acct_smoke_", run, "_", t, "_", a);
      HERALD_CO_RETURN_IF_ERROR(co_await q.SetAccountLimits(std::move(account), settings));
    }
  }
  HERALD_CO_ASSIGN_OR_RETURN(auto before, co_await AllStats(q));
  const int64_t done_before = Finished(before, kNoopJobKind, "ok");

  std::vector<queue::JobSpec> jobs;
  for (int i = 0; i < smoke.jobs; ++i) {
    const int t = i % smoke.teams;
    const int a = (i / smoke.teams) % smoke.accounts_per_team;
    jobs.push_back({.id = StrCat("smoke-", run, "-", i),
                    .kind = std::string(kNoopJobKind),
                    .tenant = "smoke",
                    .team = StrCat("smoke-", run, "-t", t),
                    .account = StrCat("acct_smoke_", run, "_", t, "_", a)});
  }
  const absl::Time start = absl::Now();
  HERALD_CO_ASSIGN_OR_RETURN(auto enqueued, co_await q.EnqueueBatch(std::move(jobs)));
  std::printf("enqueued %zu no-op jobs over %d accounts in %d teams (team limit %lld/min)\n",
              enqueued.size(), smoke.teams * smoke.accounts_per_team, smoke.teams,
              static_cast<long long>(smoke.team_per_minute));

  asio::steady_timer timer(co_await asio::this_coro::executor);
  int64_t done = 0;
  absl::Time last_print = start;
  absl::Time last_progress = start;  // a run of any size waits as long as the workers progress
  while (done < smoke.jobs) {
    if (absl::Now() - last_progress > smoke.stall_timeout) {
      co_return absl::DeadlineExceededError(
          StrCat(done, " of ", smoke.jobs, " jobs done, none in the last ",
                 absl::FormatDuration(smoke.stall_timeout), "; are workers running?"));
    }
    timer.expires_after(std::chrono::milliseconds(100));
    co_await timer.async_wait(asio::use_awaitable);
    HERALD_CO_ASSIGN_OR_RETURN(auto now_stats, co_await AllStats(q));
    const int64_t now_done = Finished(now_stats, kNoopJobKind, "ok") - done_before;
    if (now_done > done) last_progress = absl::Now();
    done = now_done;
    if (absl::Now() - last_print >= absl::Seconds(1) || done >= smoke.jobs) {
      last_print = absl::Now();
      std::printf("  %6lld / %d done\n", static_cast<long long>(done), smoke.jobs);
      std::fflush(stdout);
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double limit_per_s = static_cast<double>(smoke.team_per_minute * smoke.teams) / 60.0;
  std::printf(
      "all %d jobs done in %.2fs: %.0f jobs/s (sum of team limits: %.0f/s after a "
      "burst of one second's worth)\n",
      smoke.jobs, seconds, smoke.jobs / seconds, limit_per_s);
  co_return absl::OkStatus();
}

absl::Status CheckSmokeConfig(const SmokeConfig& smoke) {
  // Bounded so a typo cannot flood a production queue: a million jobs is a few hundred MB.
  if (smoke.jobs < 1 || smoke.jobs > 1'000'000) {
    return absl::InvalidArgumentError(
        StrCat("--smoke_jobs must be in [1, 1000000], got ", smoke.jobs));
  }
  if (smoke.teams < 1 || smoke.teams > 1000) {
    return absl::InvalidArgumentError(
        StrCat("--smoke_teams must be in [1, 1000], got ", smoke.teams));
  }
  if (smoke.accounts_per_team < 1 || smoke.accounts_per_team > 10'000) {
    return absl::InvalidArgumentError(
        StrCat("--smoke_accounts must be in [1, 10000], got ", smoke.accounts_per_team));
  }
  if (smoke.team_per_minute < 1) {
    return absl::InvalidArgumentError(
        StrCat("--smoke_team_per_minute must be positive, got ", smoke.team_per_minute));
  }
  return absl::OkStatus();
}

int RunQueueSmoke(const redis::ClientConfig& redis, const queue::QueueConfig& queue,
                  const SmokeConfig& smoke) {
  const absl::Status status = RunWithQueue(redis, queue, &Smoke, smoke);
  return status.ok() ? 0 : Fail(status);
}

}  // namespace herald::serve
