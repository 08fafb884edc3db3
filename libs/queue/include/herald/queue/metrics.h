// The queue's metrics: shard depths and ages refreshed by a poller, and the worker's own counters.
//
// No per-account or per-team labels. `shard` takes at most QueueConfig::shards values; `kind`
// the job kinds Herald defines; `outcome` a fixed set (ok, retry, dead, rate_limited, released,
// expired, fenced).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <absl/status/status.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <herald/common/clock.h>
#include <herald/common/periodic.h>
#include <herald/metrics/metrics.h>
#include <herald/queue/queue.h>

namespace herald::log {
class Outage;
}  // namespace herald::log

namespace herald::queue {

// Queue-wide state read from Redis. Every process that runs a StatsPoller reports the same
// values (they come from the shared counters), so dashboards aggregate them with max(), not sum().
struct QueueMetrics {
  explicit QueueMetrics(metrics::Registry& registry);

  // herald_queue_jobs{shard,state}: state is ready, delayed, leased or dead.
  metrics::Family<metrics::Gauge>& jobs;
  // herald_queue_oldest_ready_age_seconds{shard}: approximate (see ShardStats).
  metrics::Family<metrics::Gauge>& oldest_ready_age;
  // herald_queue_ready_accounts{shard}: accounts waiting for a turn.
  metrics::Family<metrics::Gauge>& ready_accounts;
  // herald_queue_enqueued_jobs_total{kind} and herald_queue_finished_jobs_total{kind,outcome}:
  // queue-wide counts kept in Redis, mirrored here: from 0 at the process's first poll, the
  // counter advances by what Redis added since the poll before (StatsPoller).
  metrics::Family<metrics::Counter>& enqueued;
  metrics::Family<metrics::Counter>& finished;
  // herald_queue_stats_poll_errors_total
  metrics::Counter& poll_errors;
  // herald_queue_dead_letters_handled_total{result}: dead letters handed to the poller's handler
  // (see StatsPoller::HandDeadLettersTo), by result: ok, or error (given back for a later poll).
  metrics::Family<metrics::Counter>& dead_letters_handled;
};

// What a StatsPoller does with a dead letter it took: an error gives it back for a later poll.
using DeadLetterHandler = std::function<boost::asio::awaitable<absl::Status>(const DeadJob&)>;

// Reads every shard's ShardStats into QueueMetrics periodically (every `interval` of `clock`).
// Start() spawns the loop on the executor; Close() ends it and completes when it has ended. The
// queue, metrics and clock must outlive the poller.
class StatsPoller {
 public:
  StatsPoller(boost::asio::any_io_executor executor, Queue& queue, QueueMetrics& metrics,
              absl::Duration interval = absl::Seconds(10), const Clock& clock = SystemClock::Get());
  // Closes the poller (CloseAndWait) if it is still running: destroy it from a thread that does
  // not run `executor`, or after Close() has completed.
  ~StatsPoller();

  // Also takes each shard's new dead letters at every poll (Queue::TakeDeadLetters, at most
  // kDeadLettersPerPoll per shard) and hands each to `handler`, so that whoever owns a job's
  // kind learns that it died (however it died: a last attempt failed or expired, or a terminal
  // failure). At least once: a dead letter whose handling was cut short (the process died) is
  // handed out again once its claim (kDeadLetterClaim) runs out, so `handler` must be
  // idempotent. Before Start() only; `handler` must stay callable until Close() has completed.
  void HandDeadLettersTo(DeadLetterHandler handler);
  static constexpr int kDeadLettersPerPoll = 256;
  static constexpr absl::Duration kDeadLetterClaim = absl::Minutes(2);

  // Job kinds whose enqueued and finished series (every outcome) exist from the first poll on,
  // at 0 until something happens: a kind's first dead letter is then an increase that alerts
  // see, not a series that appears at 1. Kinds first seen in Redis get theirs when they are.
  // Before Start() only.
  void ExpectKinds(std::vector<std::string> kinds);

  void Start();
  // Stops polling and completes once the polling loop has ended. Idempotent.
  boost::asio::awaitable<void> Close();

  // One refresh of every shard (and its dead letters, with a handler): the first error reading
  // the statistics is returned (other shards still refresh). A failed hand-off of dead letters
  // is logged apart ("dead letters hand-off") and tried again at the next poll.
  boost::asio::awaitable<absl::Status> PollOnce();

 private:
  boost::asio::awaitable<absl::Status> HandDeadLetters(int shard);

  Queue& queue_;
  QueueMetrics& metrics_;
  DeadLetterHandler dead_letters_;
  // The counts of the last complete poll; the first one sets where the counters start.
  bool baselined_ = false;
  std::vector<std::string> expected_kinds_;
  std::map<std::string, double> last_enqueued_;                          // by kind
  std::map<std::pair<std::string, std::string>, double> last_finished_;  // by kind, outcome
  std::unique_ptr<log::Outage> outage_;  // Redis failures of the polls, logged once per outage
  // Failures to hand dead letters to their owner, logged apart: the statistics were read.
  std::unique_ptr<log::Outage> hand_off_outage_;
  Periodic loop_;  // last: it ends before what it uses goes
};

// What workers measure about their own work.
struct WorkerMetrics {
  explicit WorkerMetrics(metrics::Registry& registry);

  // herald_jobs_total{kind,outcome}: jobs this process finished (outcome: ok, retry, dead,
  // rate_limited, released, fenced).
  metrics::Family<metrics::Counter>& jobs;
  // herald_job_duration_seconds{kind}: handler run time.
  metrics::Family<metrics::Histogram>& duration;
  // herald_queue_lease_batch_size: jobs per lease call (0 included).
  metrics::Histogram& lease_batch_size;
  // herald_ratelimit_throttled_total{scope}: accounts the lease script deferred because the
  // account's (scope="account") or the team's (scope="team") bucket was empty.
  metrics::Counter& throttled_account;
  metrics::Counter& throttled_team;
  // herald_queue_worker_errors_total{op}: failed Redis calls (op: lease, ack, nack, heartbeat).
  metrics::Family<metrics::Counter>& errors;
  // herald_jobs_in_flight: handlers running in this process.
  metrics::Gauge& in_flight;
  // herald_worker_loop_restarts_total: lease loops restarted after they threw or ended while the
  // worker was running (each restart is also logged with the reason).
  metrics::Counter& loop_restarts;
};

}  // namespace herald::queue
