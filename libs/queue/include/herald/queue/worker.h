// The worker runtime: leases jobs from every shard, runs the handler registered for each job's
// kind, and finishes the jobs by their results.
//
//   queue::Worker worker(executor, queue, {.lease_loops = 4, .batch_size = 32}, &registry);
//   worker.Handle("send_mass_message", [&](const queue::LeasedJob& job)
//                     -> asio::awaitable<queue::JobResult> { ...; co_return JobResult::Ok(); });
//   worker.Start();
//   ...
//   worker.Drain(absl::Now() + absl::Seconds(25));   // SIGTERM
//
// - `lease_loops` coroutines, each on its own strand, walk the shards and lease batches. A loop
//   holds at most `batch_size` unfinished jobs, over as many batches as it leased: it leases again
//   as soon as half a batch of room is free, so a slow job holds its own place and no other.
// - Each batch runs its jobs concurrently and has one supervisor. It finishes the jobs as they
//   end, in groups: once every job has ended, or once the first of a group has waited
//   `finish_linger` for the others, the group is acked in one call and nacked in another. Every
//   `heartbeat_interval` it extends the leases of the batch's jobs still running, in one call; a
//   job whose lease was lost (fenced: it expired and was reaped) has its handler cancelled and
//   its result discarded. So do jobs whose leases could not be extended for nearly a lease
//   (Redis out of reach): half a heartbeat interval before they may expire, so that no other
//   worker runs a job while its handler still does.
// - Idle: a lease call that finds nothing returns when work could next be ready on its shard;
//   every loop skips the shard until then (at most idle_max, which bounds how late work enqueued
//   by others is noticed). When no shard is due, a loop sleeps until the earliest one is, bounded
//   by [idle_min, idle_max]. It never spins, and an idle worker costs one call per shard per
//   idle_max, whatever the number of loops.
// - A next step acked with its job and ready now (no delay) makes its shard due and wakes the
//   loop that acked it: a chain of steps goes at the pace of its calls, not of idle pauses.
// - A lease loop that throws or ends while the worker runs is logged, counted
//   (herald_worker_loop_restarts_total) and started again after a backoff (error_backoff,
//   doubling up to 30 s); a handler's exception only fails its job (retried).
// - Drain: stop leasing; in-flight jobs may finish until the deadline; then they are cancelled
//   and released back to their accounts (no attempt lost). Nothing is lost: a job whose release
//   fails comes back when its lease expires.
//
// Handlers must be cancellable (every await honours asio cancellation) for the deadline to hold.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <absl/status/status.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <herald/common/clock.h>
#include <herald/common/gate.h>
#include <herald/metrics/metrics.h>
#include <herald/queue/job.h>
#include <herald/queue/metrics.h>
#include <herald/queue/queue.h>

namespace herald::log {
class Outage;
}  // namespace herald::log

namespace herald::queue {

namespace internal {
class ShardSchedule;
}  // namespace internal

// What a handler decided about its job.
struct JobResult {
  enum class Status {
    kOk,           // done; `next` (if any) is enqueued atomically with the ack
    kRetry,        // failed; retried with backoff, dead-lettered after max attempts
    kFail,         // terminal; dead-lettered now with `reason`
    kRateLimited,  // upstream 429; the team waits `retry_after`, no attempt lost
    kRelease,      // not processed; back to ready, no attempt lost
    kDeferred,     // not yet (Herald's store unavailable, say); again after `retry_after`, no
                   // attempt lost
  };
  Status status = Status::kOk;
  std::string reason;
  absl::Duration retry_after = absl::ZeroDuration();
  // kRetry, kRelease, kDeferred: the call may have happened (a timeout after sending, a job
  // stopped mid-call); the next attempt is told so.
  bool outcome_unknown = false;
  std::optional<JobSpec> next;

  static JobResult Ok() { return {}; }
  static JobResult OkThen(JobSpec next) {
    JobResult r;
    r.next = std::move(next);
    return r;
  }
  static JobResult Retry(std::string reason, bool outcome_unknown = false) {
    return {
        .status = Status::kRetry, .reason = std::move(reason), .outcome_unknown = outcome_unknown};
  }
  static JobResult Fail(std::string reason) {
    return {.status = Status::kFail, .reason = std::move(reason)};
  }
  static JobResult RateLimited(absl::Duration retry_after) {
    return {.status = Status::kRateLimited, .retry_after = retry_after};
  }
  static JobResult Release() { return {.status = Status::kRelease}; }
  // Not yet: the job runs again after `after`, no attempt lost.
  static JobResult Later(std::string reason, absl::Duration after, bool outcome_unknown = false) {
    return {.status = Status::kDeferred,
            .reason = std::move(reason),
            .retry_after = after,
            .outcome_unknown = outcome_unknown};
  }
  // A step that could not read or write Herald's own state. UNAVAILABLE or DEADLINE_EXCEEDED
  // (Redis unreachable or failing over, a cluster slot being migrated, a write not acknowledged
  // by the replicas asked for) is the store's trouble, not the step's: the job is deferred
  // without losing an attempt, however long it lasts. Any other error is a Retry.
  static JobResult StoreFailed(const absl::Status& status, bool outcome_unknown = false);
};

using Handler = std::function<boost::asio::awaitable<JobResult>(const LeasedJob&)>;

struct WorkerConfig {
  int lease_loops = 4;  // concurrent lease loops
  int batch_size = 32;  // most jobs per lease call, and most unfinished jobs a loop holds
  absl::Duration lease_duration = absl::Seconds(30);
  absl::Duration heartbeat_interval = absl::Seconds(10);  // < 2/3 lease_duration
  // How long a job that ended waits for the rest of its batch before it is finished without
  // them: bounds what a slow neighbour adds to a step, and keeps finishing calls few.
  absl::Duration finish_linger = absl::Milliseconds(100);  // < heartbeat_interval
  absl::Duration idle_min = absl::Milliseconds(2);
  absl::Duration idle_max = absl::Milliseconds(200);       // bounds how late new work is noticed
  absl::Duration error_backoff = absl::Milliseconds(200);  // after a failed Redis call
};

// OK when the fields are positive (finish_linger may be zero), heartbeat_interval < 2/3 of
// lease_duration and finish_linger < heartbeat_interval.
absl::Status ValidateWorkerConfig(const WorkerConfig& config);

class Worker {
 public:
  // `registry`: where WorkerMetrics go; nullptr keeps them private. The queue (and registry)
  // must outlive the worker.
  // `clock` times the idle pauses, heartbeats, drain deadline and restart pauses (a ManualClock
  // in tests; give the Queue the same one).
  Worker(boost::asio::any_io_executor executor, Queue& queue, WorkerConfig config,
         metrics::Registry* registry = nullptr, const Clock& clock = SystemClock::Get());
  // Drains with an immediate deadline if still running.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Registers the handler for `kind`. Before Start() only. Jobs of kinds without a handler are
  // retried with backoff (another worker version may know them) and end dead after max attempts.
  void Handle(std::string kind, Handler handler);

  void Start();

  // Stops leasing, lets in-flight jobs finish until `deadline`, cancels and releases the rest,
  // and completes when every loop has ended (the worker's gate is empty). Idempotent.
  boost::asio::awaitable<void> Close(absl::Time deadline);
  // Close() for a thread that is not running the worker's executor: blocks until it is done.
  void Drain(absl::Time deadline);

  int64_t in_flight() const { return in_flight_.load(); }
  const WorkerMetrics& metrics() const { return *metrics_; }

 private:
  struct Loop;
  struct KindSeries;

  boost::asio::awaitable<void> SuperviseLoop(Loop& loop, int index);
  boost::asio::awaitable<void> RunLoop(Loop& loop, int index);
  // The fewest jobs a loop leases at once: it waits for that much room under batch_size.
  int MinLease() const;
  boost::asio::awaitable<void> WaitForRoom(Loop& loop);
  // `jobs` of the loop's batches were finished (or given up): room for as many new ones.
  void GiveBackRoom(Loop& loop, size_t jobs);
  // A job of `loop` was acked with a next step that is ready now, on `shard`: the shard is due,
  // and the loop leases again without an idle pause.
  void NextStepReady(Loop& loop, int shard);
  void StartBatch(Loop& loop, std::vector<LeasedJob> jobs);
  boost::asio::awaitable<void> RunBatch(Loop& loop, std::vector<LeasedJob> jobs);
  // Extends the leases of `jobs[held]` in one call; returns those whose lease was lost, or
  // nullopt when the call failed (the leases may still hold, or may not).
  boost::asio::awaitable<std::optional<std::vector<size_t>>> ExtendLeases(
      const std::vector<LeasedJob>& jobs, const std::vector<size_t>& held);
  boost::asio::awaitable<JobResult> CallHandler(const Handler* handler, const LeasedJob& job);
  // Acks or nacks `jobs[which]` by their results (a fenced job is only counted).
  boost::asio::awaitable<void> Finish(Loop& loop, const std::vector<LeasedJob>& jobs,
                                      std::vector<JobResult>& results,
                                      const std::vector<size_t>& which,
                                      const std::vector<char>& fenced);
  KindSeries& SeriesFor(const std::string& kind);
  // Stops leasing: each loop lets its jobs run until `deadline`, then ends.
  void RequestStop(absl::Time deadline);

  boost::asio::any_io_executor executor_;
  Queue& queue_;
  const WorkerConfig config_;
  const Clock& clock_;
  std::unique_ptr<metrics::Registry> own_registry_;
  std::unique_ptr<WorkerMetrics> metrics_;
  std::unique_ptr<internal::ShardSchedule> schedule_;  // shared by the loops
  // Redis failures of leases and of finishing jobs: logged once per outage, not per call.
  std::unique_ptr<log::Outage> lease_outage_;
  std::unique_ptr<log::Outage> finish_outage_;
  std::map<std::string, Handler, std::less<>> handlers_;
  std::map<std::string, std::unique_ptr<KindSeries>, std::less<>> series_;
  // Shared with the drain requests posted to each loop's strand, which may run after the worker
  // is gone (the loop can end before its request runs).
  std::vector<std::shared_ptr<Loop>> loops_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> in_flight_{0};
  Gate gate_;  // entered by each lease loop while it runs
};

}  // namespace herald::queue
