#include <set>
#include <string>
#include <vector>

#include <herald/common/log.h>
#include <herald/common/outage.h>
#include <herald/common/strings.h>
#include <herald/queue/metrics.h>

namespace herald::queue {

namespace asio = boost::asio;

QueueMetrics::QueueMetrics(metrics::Registry& registry)
    : jobs(metrics::BuildGauge()
               .Name("herald_queue_jobs")
               .Help("Jobs in the queue by shard and state (ready, delayed, leased, dead).")
               .LabelNames({"shard", "state"})
               .Register(registry)),
      oldest_ready_age(metrics::BuildGauge()
                           .Name("herald_queue_oldest_ready_age_seconds")
                           .Help("Approximate age of the oldest ready job, by shard.")
                           .LabelNames({"shard"})
                           .Register(registry)),
      ready_accounts(metrics::BuildGauge()
                         .Name("herald_queue_ready_accounts")
                         .Help("Accounts with ready work waiting for a turn, by shard.")
                         .LabelNames({"shard"})
                         .Register(registry)),
      enqueued(metrics::BuildCounter()
                   .Name("herald_queue_enqueued_jobs_total")
                   .Help("Jobs enqueued, by kind (queue-wide, read from Redis).")
                   .LabelNames({"kind"})
                   .Register(registry)),
      finished(metrics::BuildCounter()
                   .Name("herald_queue_finished_jobs_total")
                   .Help("Leases ended, by kind and outcome (queue-wide, read from Redis).")
                   .LabelNames({"kind", "outcome"})
                   .Register(registry)),
      poll_errors(metrics::BuildCounter()
                      .Name("herald_queue_stats_poll_errors_total")
                      .Help("Failed reads of queue statistics.")
                      .Register(registry)
                      .Add({})),
      dead_letters_handled(metrics::BuildCounter()
                               .Name("herald_queue_dead_letters_handled_total")
                               .Help("Dead letters handed to their kind's owner, by result.")
                               .LabelNames({"result"})
                               .Register(registry)) {}

WorkerMetrics::WorkerMetrics(metrics::Registry& registry)
    : jobs(metrics::BuildCounter()
               .Name("herald_jobs_total")
               .Help("Jobs finished by this process, by kind and outcome.")
               .LabelNames({"kind", "outcome"})
               .Register(registry)),
      duration(metrics::BuildHistogram()
                   .Name("herald_job_duration_seconds")
                   .Help("Handler run time, by job kind.")
                   .LabelNames({"kind"})
                   // 1 ms to ~131 s: an upload by URL may take up to two minutes.
                   .Buckets(metrics::ExponentialBuckets(0.001, 2, 18))
                   .Register(registry)),
      lease_batch_size(metrics::BuildHistogram()
                           .Name("herald_queue_lease_batch_size")
                           .Help("Jobs returned per lease call.")
                           .Buckets({0, 1, 2, 4, 8, 16, 32, 64, 128, 256})
                           .Register(registry)
                           .Add({})),
      throttled_account(metrics::BuildCounter()
                            .Name("herald_ratelimit_throttled_total")
                            .Help("Accounts deferred by an empty limiter bucket, by scope.")
                            .LabelNames({"scope"})
                            .Register(registry)
                            .Add({{"scope", "account"}})),
      throttled_team(registry
                         .AddCounter("herald_ratelimit_throttled_total",
                                     "Accounts deferred by an empty limiter bucket, by scope.",
                                     {"scope"})
                         .Add({{"scope", "team"}})),
      errors(metrics::BuildCounter()
                 .Name("herald_queue_worker_errors_total")
                 .Help("Failed queue calls and failed batches of workers, by operation.")
                 .LabelNames({"op"})
                 .Register(registry)),
      in_flight(metrics::BuildGauge()
                    .Name("herald_jobs_in_flight")
                    .Help("Job handlers running in this process.")
                    .Register(registry)
                    .Add({})),
      loop_restarts(metrics::BuildCounter()
                        .Name("herald_worker_loop_restarts_total")
                        .Help("Lease loops restarted after they failed or ended unexpectedly.")
                        .Register(registry)
                        .Add({})) {}

StatsPoller::StatsPoller(asio::any_io_executor executor, Queue& queue, QueueMetrics& metrics,
                         absl::Duration interval, const Clock& clock)
    : queue_(queue),
      metrics_(metrics),
      outage_(std::make_unique<log::Outage>("redis", "queue statistics")),
      hand_off_outage_(std::make_unique<log::Outage>("redis", "dead letters hand-off")),
      loop_(std::move(executor), interval, clock, [this]() -> asio::awaitable<void> {
        if (absl::Status s = co_await PollOnce(); !s.ok()) {
          outage_->Failed(s);
        } else {
          outage_->Succeeded();
        }
      }) {}

StatsPoller::~StatsPoller() = default;

void StatsPoller::HandDeadLettersTo(DeadLetterHandler handler) {
  dead_letters_ = std::move(handler);
}

void StatsPoller::ExpectKinds(std::vector<std::string> kinds) {
  expected_kinds_ = std::move(kinds);
}

void StatsPoller::Start() { loop_.Start(); }

asio::awaitable<void> StatsPoller::Close() { co_await loop_.Close(); }

namespace {

// A lease's outcomes as queue/lua/stats.lua counts them.
constexpr const char* kFinishOutcomes[] = {"ok",           "retry",    "dead",
                                           "rate_limited", "released", "expired"};

}  // namespace

asio::awaitable<absl::Status> StatsPoller::PollOnce() {
  absl::Status first;
  absl::Status hand_off;  // apart: a failed hand-off is not a failed read of the statistics
  std::map<std::string, double> enqueued;
  std::map<std::pair<std::string, std::string>, double> finished;
  for (int shard = 0; shard < queue_.shard_count(); ++shard) {
    absl::StatusOr<ShardStats> stats = co_await queue_.Stats(shard);
    if (!stats.ok()) {
      metrics_.poll_errors.Increment();
      if (first.ok()) first = stats.status();
      continue;
    }
    const std::string label = StrCat(shard);
    metrics_.jobs.Add({{"shard", label}, {"state", "ready"}})
        .Set(static_cast<double>(stats->ready));
    metrics_.jobs.Add({{"shard", label}, {"state", "delayed"}})
        .Set(static_cast<double>(stats->delayed));
    metrics_.jobs.Add({{"shard", label}, {"state", "leased"}})
        .Set(static_cast<double>(stats->leased));
    metrics_.jobs.Add({{"shard", label}, {"state", "dead"}}).Set(static_cast<double>(stats->dead));
    metrics_.oldest_ready_age.Add({{"shard", label}})
        .Set(absl::ToDoubleSeconds(stats->oldest_ready_age));
    metrics_.ready_accounts.Add({{"shard", label}}).Set(static_cast<double>(stats->ready_accounts));
    for (const auto& e : stats->enqueued) enqueued[e.first] += static_cast<double>(e.second);
    for (const auto& f : stats->finished) finished[f.first] += static_cast<double>(f.second);
    if (dead_letters_) {
      if (absl::Status s = co_await HandDeadLetters(shard); !s.ok() && hand_off.ok()) {
        hand_off = s;
      }
    }
  }
  if (dead_letters_) {
    if (hand_off.ok()) {
      hand_off_outage_->Succeeded();
    } else {
      hand_off_outage_->Failed(hand_off);
    }
  }
  // Counters advance by what Redis added since the last complete poll; a shard that failed
  // this time is caught up by the next poll. What Redis counted before this process's first
  // complete poll is where its counters start (at 0), not an increase.
  if (first.ok()) {
    if (!baselined_) {
      baselined_ = true;
      last_enqueued_ = enqueued;
      last_finished_ = finished;
    }
    std::set<std::string> kinds(expected_kinds_.begin(), expected_kinds_.end());
    for (const auto& e : enqueued) kinds.insert(e.first);
    for (const auto& f : finished) kinds.insert(f.first.first);
    for (const std::string& kind : kinds) {
      metrics_.enqueued.Add({{"kind", kind}});
      for (const char* outcome : kFinishOutcomes) {
        metrics_.finished.Add({{"kind", kind}, {"outcome", outcome}});
      }
    }
    for (const auto& e : enqueued) {
      double& last = last_enqueued_[e.first];
      metrics_.enqueued.Add({{"kind", e.first}}).Increment(e.second - last);
      last = std::max(e.second, last);
    }
    for (const auto& f : finished) {
      double& last = last_finished_[f.first];
      metrics_.finished.Add({{"kind", f.first.first}, {"outcome", f.first.second}})
          .Increment(f.second - last);
      last = std::max(f.second, last);
    }
  }
  co_return first;
}

asio::awaitable<absl::Status> StatsPoller::HandDeadLetters(int shard) {
  absl::StatusOr<std::vector<DeadJob>> jobs =
      co_await queue_.TakeDeadLetters(shard, kDeadLettersPerPoll, kDeadLetterClaim);
  if (!jobs.ok()) co_return jobs.status();
  absl::Status first;
  std::vector<std::string> handled, failed;
  for (const DeadJob& job : *jobs) {
    absl::Status s = co_await dead_letters_(job);
    metrics_.dead_letters_handled.Add({{"result", s.ok() ? "ok" : "error"}}).Increment();
    if (s.ok()) {
      handled.push_back(job.id);
      continue;
    }
    failed.push_back(job.id);
    if (first.ok()) first = s;
  }
  // Either call failing leaves the claims to run out: those dead letters are offered again, and
  // acting on one twice changes nothing.
  if (absl::Status s = co_await queue_.FinishDeadLetters(shard, std::move(handled)); !s.ok()) {
    log::Warn("dead letters acted on will be offered again",
              {{"shard", shard}, {"error", s.message()}});
  }
  if (!failed.empty()) {
    log::Warn("dead letters given back for a later poll",
              {{"shard", shard}, {"count", failed.size()}, {"error", first.message()}});
    if (absl::Status s = co_await queue_.ReturnDeadLetters(shard, std::move(failed)); !s.ok()) {
      log::Warn("dead letters will be offered again once their claim runs out",
                {{"shard", shard}, {"error", s.message()}});
    }
  }
  co_return first;
}

}  // namespace herald::queue
