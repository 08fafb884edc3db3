#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <absl/cleanup/cleanup.h>
#include <absl/random/random.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <herald/common/log.h>
#include <herald/common/outage.h>
#include <herald/common/setting_error.h>
#include <herald/common/strings.h>
#include <herald/queue/worker.h>

#include "loop_supervisor.h"
#include "shard_schedule.h"

namespace herald::queue {

namespace asio = boost::asio;

namespace {

// The longest pause before a failed lease loop runs again (restarts in a row back off from
// WorkerConfig::error_backoff up to this).
constexpr absl::Duration kMaxRestartPause = absl::Seconds(30);

constexpr const char* kOutcomes[] = {"ok", "retry", "dead", "rate_limited", "released", "fenced"};
enum OutcomeIndex { kOk, kRetry, kDead, kRateLimited, kReleased, kFenced, kOutcomeCount };

std::string Describe(std::exception_ptr e) {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

// The result of a job cancelled at the drain deadline. One that finished all the same keeps its
// result, as does an upstream 429 (an answer: the team must wait it out); any other goes back
// without losing an attempt, flagged outcome unknown: the cancel may have cut its upstream call
// after the request was written.
JobResult Stopped(JobResult result) {
  if (result.status == JobResult::Status::kOk || result.status == JobResult::Status::kRateLimited) {
    return result;
  }
  JobResult released = JobResult::Release();
  released.outcome_unknown = true;
  return released;
}

// One finishing call (ack or nack of a batch), retried a few times: a retry after the first call
// took effect reports kFenced, so it is safe. If Redis stays away, the leases expire and the jobs
// come back flagged outcome-unknown: nothing is lost.
template <typename T>
asio::awaitable<absl::StatusOr<T>> FinishWithRetries(
    WorkerMetrics& metrics, log::Outage& outage, const Clock& clock, absl::Duration backoff,
    std::string_view op, std::function<asio::awaitable<absl::StatusOr<T>>()> call) {
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<T> done = co_await call();
    if (done.ok()) {
      outage.Succeeded();
      co_return done;
    }
    metrics.errors.Add({{"op", std::string(op)}}).Increment();
    outage.Failed(done.status());
    if (attempt == kAttempts) co_return done;
    co_await clock.SleepFor(backoff);
  }
}

// How long a job waits after Herald's store was unavailable, spread so that the jobs a failover
// or a slot migration held back do not all come back at once.
constexpr double kStoreRetryMinSeconds = 2.5;
constexpr double kStoreRetryMaxSeconds = 5;

}  // namespace

JobResult JobResult::StoreFailed(const absl::Status& status, bool outcome_unknown) {
  std::string reason(status.message());
  if (!absl::IsUnavailable(status) && !absl::IsDeadlineExceeded(status)) {
    return Retry(std::move(reason), outcome_unknown);
  }
  thread_local absl::BitGen rng;
  return Later(StrCat("Herald's store is unavailable, not counted as an attempt: ", reason),
               absl::Seconds(absl::Uniform(rng, kStoreRetryMinSeconds, kStoreRetryMaxSeconds)),
               outcome_unknown);
}

absl::Status ValidateWorkerConfig(const WorkerConfig& c) {
  if (c.lease_loops < 1 || c.lease_loops > 1024) {
    return config::SettingError("worker.lease_loops",
                                StrCat("must be in [1, 1024] (got ", c.lease_loops, ")"));
  }
  if (c.batch_size < 1 || c.batch_size > 1000) {
    return config::SettingError("worker.batch_size",
                                StrCat("must be in [1, 1000] (got ", c.batch_size, ")"));
  }
  // A batch stops its jobs half a heartbeat interval before a lease it could not extend may
  // expire: the first heartbeat must come before that.
  if (c.heartbeat_interval <= absl::ZeroDuration() ||
      c.heartbeat_interval * 3 >= c.lease_duration * 2) {
    return config::SettingError("worker.heartbeat_interval",
                                "must be positive and under two thirds of the lease duration");
  }
  if (c.finish_linger < absl::ZeroDuration() || c.finish_linger >= c.heartbeat_interval) {
    return config::SettingError("worker.finish_linger",
                                "must be at least zero and shorter than the heartbeat interval");
  }
  if (c.idle_min <= absl::ZeroDuration() || c.idle_max < c.idle_min) {
    return config::SettingError("worker.idle_min", "must be positive and at most idle_max");
  }
  if (c.error_backoff <= absl::ZeroDuration()) {
    return config::SettingError("worker.error_backoff", "must be positive");
  }
  return absl::OkStatus();
}

struct Worker::Loop {
  explicit Loop(asio::any_io_executor executor) : strand(asio::make_strand(executor)) {}
  asio::strand<asio::any_io_executor> strand;
  // The rest is used on the strand only.
  // What the loop waits on now (an idle pause, room for more jobs, or the pause before a
  // restart).
  Timer* wake = nullptr;
  enum class Waiting {
    kOther,  // nothing, or the pause before a restart
    kRoom,   // room for more jobs: a finished job ends it
    kIdle,   // an idle pause: a next step ready now ends it
  };
  Waiting waiting = Waiting::kOther;
  // Makes `timer` what the loop waits on, as `why`, until the returned guard goes.
  auto WaitOn(Timer* timer, Waiting why) {
    wake = timer;
    waiting = why;
    return absl::Cleanup([this] {
      wake = nullptr;
      waiting = Waiting::kOther;
    });
  }
  // A next step became ready during this pass over the shards: the loop passes again at once.
  bool woken = false;
  // Jobs this loop leased that are not finished yet (acked or nacked), over all its batches.
  int unfinished = 0;
  int room(int batch_size) const { return batch_size - unfinished; }
  // What each running batch waits on (its jobs, its next heartbeat), cancelled by a drain.
  std::vector<Timer*> batch_wakes;
  std::optional<MonoTime> deadline;  // set by a drain
};

struct Worker::KindSeries {
  metrics::Counter* outcomes[kOutcomeCount];
  metrics::Histogram* duration;
};

Worker::Worker(asio::any_io_executor executor, Queue& queue, WorkerConfig config,
               metrics::Registry* registry, const Clock& clock)
    : executor_(std::move(executor)), queue_(queue), config_(std::move(config)), clock_(clock) {
  if (registry == nullptr) {
    own_registry_ = std::make_unique<metrics::Registry>();
    registry = own_registry_.get();
  }
  metrics_ = std::make_unique<WorkerMetrics>(*registry);
  schedule_ = std::make_unique<internal::ShardSchedule>(queue_.shard_count(), config_.idle_max);
  lease_outage_ = std::make_unique<log::Outage>("redis", "queue leases");
  finish_outage_ = std::make_unique<log::Outage>("redis", "finishing jobs (ack, nack)");
}

Worker::~Worker() {
  if (started_.load()) Drain(clock_.Now());
}

void Worker::Handle(std::string kind, Handler handler) {
  handlers_[std::move(kind)] = std::move(handler);
}

Worker::KindSeries& Worker::SeriesFor(const std::string& kind) {
  auto it = series_.find(kind);
  if (it == series_.end()) it = series_.find("unregistered");
  return *it->second;
}

void Worker::Start() {
  if (started_.exchange(true)) return;
  // Every series is created here, never on the job path.
  std::vector<std::string> kinds = {"unregistered"};
  for (const auto& [kind, handler] : handlers_) kinds.push_back(kind);
  for (const std::string& kind : kinds) {
    auto s = std::make_unique<KindSeries>();
    for (int o = 0; o < kOutcomeCount; ++o) {
      s->outcomes[o] = &metrics_->jobs.Add({{"kind", kind}, {"outcome", kOutcomes[o]}});
    }
    s->duration = &metrics_->duration.Add({{"kind", kind}});
    series_[kind] = std::move(s);
  }
  for (int i = 0; i < config_.lease_loops; ++i) {
    Loop& loop = *loops_.emplace_back(std::make_shared<Loop>(executor_));
    GateHolder hold(gate_);  // left when the loop has ended
    asio::co_spawn(loop.strand, SuperviseLoop(loop, i),
                   [hold = std::move(hold)](std::exception_ptr e) {
                     // The supervisor catches the loop's exceptions. One from the supervisor itself
                     // (its logging, its timer) would leave a worker that reports ready without
                     // this loop: a broken invariant.
                     log::AbortOnException(std::move(e), "worker lease loop supervisor");
                   });
  }
}

void Worker::RequestStop(absl::Time deadline) {
  stopping_.store(true);
  const MonoTime at = clock_.MonotonicAt(deadline);
  for (auto& loop : loops_) {
    asio::post(loop->strand, [l = loop, at] {
      l->deadline = at;
      // The loop and its batches re-read their state.
      if (l->wake != nullptr) l->wake->Cancel();
      for (Timer* batch : l->batch_wakes) batch->Cancel();
    });
  }
}

asio::awaitable<void> Worker::Close(absl::Time deadline) {
  if (!started_.load()) co_return;
  RequestStop(deadline);
  co_await gate_.Close();
}

void Worker::Drain(absl::Time deadline) {
  if (!started_.load()) return;
  RequestStop(deadline);
  gate_.CloseAndWait();
}

// A lease loop that throws, or ends while the worker is running, is logged, counted and run again
// after a backoff: the process stays ready only while every loop leases.
asio::awaitable<void> Worker::SuperviseLoop(Loop& loop, int index) {
  internal::RestartHooks hooks{
      .body = [this, &loop, index] { return RunLoop(loop, index); },
      .stopping = [this] { return stopping_.load(); },
      .restarting =
          [this, index](const std::string& why, int restarts, absl::Duration pause) {
            metrics_->loop_restarts.Increment();
            log::Error("worker lease loop failed; restarting it",
                       {{"loop", index}, {"error", why}, {"restarts", restarts}, {"pause", pause}});
          }};
  co_await internal::RunRestarting(
      std::move(hooks), {.backoff = {.base = config_.error_backoff, .cap = kMaxRestartPause}},
      &loop.wake, clock_);
}

int Worker::MinLease() const { return std::max(1, config_.batch_size / 2); }

asio::awaitable<void> Worker::RunLoop(Loop& loop, int index) {
  const int shards = queue_.shard_count();
  int cursor = index % shards;
  while (!stopping_.load()) {
    bool busy = false;
    loop.woken = false;
    for (int i = 0; i < shards && !stopping_.load(); ++i) {
      if (loop.room(config_.batch_size) < MinLease()) {
        co_await WaitForRoom(loop);
        if (stopping_.load()) break;
      }
      const int shard = (cursor + i) % shards;
      const absl::Time called = clock_.Now();
      const std::optional<internal::ShardSchedule::Claim> claim =
          schedule_->TryClaim(shard, called);
      if (!claim.has_value()) continue;
      const int room = loop.room(config_.batch_size);
      absl::StatusOr<LeaseBatch> batch = co_await queue_.Lease(shard, room, config_.lease_duration);
      if (!batch.ok()) {
        metrics_->errors.Add({{"op", "lease"}}).Increment();
        lease_outage_->Failed(batch.status());
        schedule_->Failed(shard, called, config_.error_backoff);
        continue;
      }
      lease_outage_->Succeeded();
      metrics_->lease_batch_size.Observe(static_cast<double>(batch->jobs.size()));
      metrics_->throttled_account.Increment(batch->throttled_by_account);
      metrics_->throttled_team.Increment(batch->throttled_by_team);
      schedule_->Leased(*claim, called, batch->jobs.size(), batch->next_due);
      if (batch->next_due == absl::ZeroDuration()) busy = true;
      if (!batch->jobs.empty()) {
        busy = true;
        StartBatch(loop, std::move(batch->jobs));
      }
    }
    cursor = (cursor + 1) % shards;
    if (!busy && !loop.woken && !stopping_.load()) {
      const absl::Duration wait =
          std::clamp(schedule_->NextDue() - clock_.Now(), config_.idle_min, config_.idle_max);
      std::unique_ptr<Timer> pause = clock_.NewTimer(loop.strand);
      auto awake = loop.WaitOn(pause.get(), Loop::Waiting::kIdle);
      const MonoTime until = clock_.MonotonicAfter(wait);
      co_await pause->WaitUntil(until);
    }
  }
}

asio::awaitable<void> Worker::WaitForRoom(Loop& loop) {
  std::unique_ptr<Timer> room = clock_.NewTimer(loop.strand);
  auto done = loop.WaitOn(room.get(), Loop::Waiting::kRoom);
  while (loop.room(config_.batch_size) < MinLease() && !stopping_.load()) {
    co_await room->WaitUntil(MonoTime::max());
  }
}

void Worker::GiveBackRoom(Loop& loop, size_t jobs) {
  loop.unfinished -= static_cast<int>(jobs);
  if (loop.waiting == Loop::Waiting::kRoom) loop.wake->Cancel();
}

void Worker::NextStepReady(Loop& loop, int shard) {
  schedule_->Ready(shard, clock_.Now());
  loop.woken = true;
  if (loop.waiting == Loop::Waiting::kIdle) loop.wake->Cancel();
}

void Worker::StartBatch(Loop& loop, std::vector<LeasedJob> jobs) {
  loop.unfinished += static_cast<int>(jobs.size());
  // A drain waits for the batch too. The loop that leases it is inside the gate, even when a
  // drain began during its last lease.
  GateHolder hold = GateHolder::Nested(gate_);
  asio::co_spawn(loop.strand, RunBatch(loop, std::move(jobs)),
                 [this, hold = std::move(hold)](std::exception_ptr e) {
                   if (!e) return;
                   // RunBatch cancelled its jobs and gave their room back; their leases expire
                   // and they come back flagged outcome-unknown.
                   metrics_->errors.Add({{"op", "batch"}}).Increment();
                   log::Error(
                       "worker batch failed; its unfinished jobs return when their leases "
                       "expire",
                       {{"error", Describe(e)}});
                 });
}

// Runs a batch's jobs concurrently on the loop's strand. This coroutine supervises them all at
// once: it finishes (acks or nacks) the jobs that have ended in groups (see finish_linger); it
// extends the leases of the jobs still running every heartbeat interval (cancelling any whose
// lease was lost), and at the drain deadline cancels the rest, which are then released.
asio::awaitable<void> Worker::RunBatch(Loop& loop, std::vector<LeasedJob> jobs) {
  const size_t n = jobs.size();
  std::vector<JobResult> results(n);
  std::vector<char> running(n, 1);
  std::vector<char> finished(n, 0);
  std::vector<char> lost(n, 0);
  std::vector<char> stopped(n, 0);
  std::vector<asio::cancellation_signal> signals(n);
  size_t still_running = n;
  size_t unfinished = n;
  // When the first job of the group waiting to be finished ended (none: no group).
  std::optional<MonoTime> group_since;
  const std::unique_ptr<Timer> wake = clock_.NewTimer(loop.strand);
  loop.batch_wakes.push_back(wake.get());
  absl::Cleanup leave = [&] {
    std::erase(loop.batch_wakes, wake.get());
    if (unfinished > 0) GiveBackRoom(loop, unfinished);  // only when this coroutine failed
  };
  in_flight_.fetch_add(static_cast<int64_t>(n));
  metrics_->in_flight.Increment(static_cast<double>(n));
  const MonoTime start = clock_.Monotonic();
  for (size_t i = 0; i < n; ++i) {
    auto h = handlers_.find(jobs[i].kind);
    const Handler* handler = h == handlers_.end() ? nullptr : &h->second;
    // The completion writes into this frame, which outlives every job: the loop below waits
    // for all of them.
    asio::co_spawn(
        loop.strand, CallHandler(handler, jobs[i]),
        asio::bind_cancellation_slot(signals[i].slot(), [&, i](std::exception_ptr e, JobResult r) {
          if (e) r = JobResult::Retry("handler failed with an exception");
          results[i] = std::move(r);
          running[i] = 0;
          const MonoTime ended = clock_.Monotonic();
          const bool first_of_group = !group_since.has_value();
          if (first_of_group) group_since = ended;
          SeriesFor(jobs[i].kind)
              .duration->Observe(std::chrono::duration<double>(ended - start).count());
          // Last: whoever sees the job no longer in flight also sees its group started.
          in_flight_.fetch_sub(1);
          metrics_->in_flight.Decrement();
          --still_running;
          // The supervisor's wait changes only when a group starts (its linger) or the last
          // job ends (finish now); other endings join the group it already waits for.
          if (first_of_group || still_running == 0) wake->Cancel();
        }));
  }
  MonoTime next_heartbeat = clock_.MonotonicAfter(config_.heartbeat_interval);
  // Until when the leases hold as far as this batch knows: a lease's length from when it was
  // granted or last extended, less half a heartbeat interval for the calls' delays.
  const auto held_for = absl::ToChronoNanoseconds(config_.lease_duration) -
                        absl::ToChronoNanoseconds(config_.heartbeat_interval / 2);
  MonoTime held_until = start + held_for;
  bool cancelled_all = false;
  std::exception_ptr failure;
  try {
    while (unfinished > 0) {
      // The jobs that ended are finished together once the rest have ended too, or once the
      // first of them has waited finish_linger; at once when the worker is draining.
      std::optional<MonoTime> finish_at;
      if (group_since.has_value()) {
        finish_at = *group_since + absl::ToChronoNanoseconds(config_.finish_linger);
        if (still_running == 0 || loop.deadline.has_value()) finish_at = clock_.Monotonic();
      }
      if (finish_at.has_value() && clock_.Monotonic() >= *finish_at) {
        std::vector<size_t> done;
        for (size_t i = 0; i < n; ++i) {
          if (running[i] || finished[i]) continue;
          finished[i] = 1;
          if (stopped[i] && !lost[i]) results[i] = Stopped(std::move(results[i]));
          done.push_back(i);
        }
        group_since.reset();  // jobs that end during the call below form the next group
        co_await Finish(loop, jobs, results, done, lost);
        unfinished -= done.size();
        GiveBackRoom(loop, done.size());
        continue;
      }
      if (loop.deadline.has_value() && clock_.Monotonic() >= *loop.deadline && !cancelled_all) {
        cancelled_all = true;
        for (size_t i = 0; i < n; ++i) {
          if (!running[i]) continue;
          stopped[i] = 1;
          signals[i].emit(asio::cancellation_type::terminal);
        }
        continue;  // the cancelled jobs complete and wake this loop
      }
      if (!cancelled_all && clock_.Monotonic() >= held_until) {
        // The leases could not be extended (Redis out of reach) and may soon expire, when
        // another worker may lease these jobs: they are stopped first, and their results
        // discarded. They come back flagged outcome-unknown.
        for (size_t i = 0; i < n; ++i) {
          if (!running[i] || lost[i]) continue;
          log::Warn("lease not extended in time; cancelling the job",
                    {{"job", jobs[i].id}, {"shard", jobs[i].shard}});
          lost[i] = 1;
          signals[i].emit(asio::cancellation_type::terminal);
        }
        held_until = MonoTime::max();
        continue;
      }
      if (!cancelled_all && clock_.Monotonic() >= next_heartbeat) {
        std::vector<size_t> held;
        for (size_t i = 0; i < n; ++i) {
          if (running[i] && !lost[i]) held.push_back(i);
        }
        const MonoTime asked = clock_.Monotonic();
        const std::optional<std::vector<size_t>> gone = co_await ExtendLeases(jobs, held);
        if (gone.has_value()) {
          if (held_until != MonoTime::max()) held_until = asked + held_for;
          for (const size_t i : *gone) {
            if (!running[i]) continue;
            log::Warn("lease lost; cancelling the job",
                      {{"job", jobs[i].id}, {"shard", jobs[i].shard}});
            lost[i] = 1;
            signals[i].emit(asio::cancellation_type::terminal);
          }
        }
        next_heartbeat = clock_.MonotonicAfter(config_.heartbeat_interval);
        continue;
      }
      MonoTime until = std::min(next_heartbeat, held_until);
      if (cancelled_all) until = MonoTime::max();
      if (loop.deadline.has_value() && !cancelled_all) until = std::min(until, *loop.deadline);
      if (finish_at.has_value()) until = std::min(until, *finish_at);
      co_await wake->WaitUntil(until);
    }
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    // The jobs' completions write into this frame: none may outlive it. Cancel those still
    // running and wait for them; their leases expire and they come back flagged outcome-unknown.
    for (size_t i = 0; i < n; ++i) {
      if (running[i]) signals[i].emit(asio::cancellation_type::terminal);
    }
    while (still_running > 0) co_await wake->WaitUntil(MonoTime::max());
    std::rethrow_exception(failure);
  }
}

asio::awaitable<std::optional<std::vector<size_t>>> Worker::ExtendLeases(
    const std::vector<LeasedJob>& jobs, const std::vector<size_t>& held) {
  std::vector<size_t> lost;
  if (held.empty()) co_return lost;
  std::vector<JobRef> refs;
  refs.reserve(held.size());
  for (const size_t i : held) refs.push_back(jobs[i].ref());
  absl::StatusOr<std::vector<std::optional<absl::Time>>> extended =
      co_await queue_.Heartbeat(std::move(refs), config_.lease_duration);
  if (!extended.ok()) {
    metrics_->errors.Add({{"op", "heartbeat"}}).Increment();
    co_return std::nullopt;
  }
  for (size_t k = 0; k < held.size(); ++k) {
    if (!(*extended)[k].has_value()) lost.push_back(held[k]);
  }
  co_return lost;
}

asio::awaitable<JobResult> Worker::CallHandler(const Handler* handler, const LeasedJob& job) {
  if (handler == nullptr) {
    co_return JobResult::Retry(StrCat("no handler registered for job kind ", job.kind));
  }
  try {
    co_return co_await (*handler)(job);
  } catch (const std::exception& e) {
    co_return JobResult::Retry(StrCat("handler threw: ", e.what()));
  }
}

asio::awaitable<void> Worker::Finish(Loop& loop, const std::vector<LeasedJob>& jobs,
                                     std::vector<JobResult>& results,
                                     const std::vector<size_t>& which,
                                     const std::vector<char>& fenced) {
  std::vector<AckRequest> acks;
  std::vector<size_t> ack_jobs;
  std::vector<NackRequest> nacks;
  std::vector<size_t> nack_jobs;
  for (const size_t i : which) {
    const LeasedJob& job = jobs[i];
    if (fenced[i]) {
      SeriesFor(job.kind).outcomes[kFenced]->Increment();
      continue;
    }
    JobResult& r = results[i];
    if (r.status == JobResult::Status::kOk && r.next.has_value()) {
      // A next step the queue would refuse fails the whole ack call: refuse it here instead.
      if (absl::Status valid = queue_.ValidateNextStep(job.shard, *r.next); !valid.ok()) {
        r = JobResult::Fail(StrCat("invalid next step: ", valid.message()));
      }
    }
    // A job put back without using its attempt (a 429, a release, a deferral) made no call whose
    // outcome settles an earlier unknown one: the next attempt must still reconcile.
    const bool still_unknown = r.outcome_unknown || job.previous_outcome_unknown;
    switch (r.status) {
      case JobResult::Status::kOk:
        acks.push_back({job.ref(), std::move(r.next)});
        ack_jobs.push_back(i);
        continue;
      case JobResult::Status::kRetry:
        nacks.push_back(queue_.RetryRequest(job, std::move(r.reason), r.outcome_unknown));
        break;
      case JobResult::Status::kFail:
        nacks.push_back(Queue::DeadLetterRequest(job.ref(), std::move(r.reason)));
        break;
      case JobResult::Status::kRateLimited:
        nacks.push_back(Queue::RateLimitedRequest(job.ref(), r.retry_after, still_unknown));
        break;
      case JobResult::Status::kRelease:
        nacks.push_back(Queue::ReleaseRequest(job.ref(), still_unknown));
        break;
      case JobResult::Status::kDeferred:
        nacks.push_back(
            Queue::DeferRequest(job.ref(), std::move(r.reason), r.retry_after, still_unknown));
        break;
    }
    nack_jobs.push_back(i);
  }
  if (!acks.empty()) {
    absl::StatusOr<std::vector<AckResult>> done =
        co_await FinishWithRetries<std::vector<AckResult>>(*metrics_, *finish_outage_, clock_,
                                                           config_.error_backoff, "ack",
                                                           [&] { return queue_.Ack(acks); });
    for (size_t k = 0; done.ok() && k < done->size(); ++k) {
      const AckResult& acked = (*done)[k];
      const LeasedJob& job = jobs[ack_jobs[k]];
      const bool ok = acked.ack == FinishResult::kDone;
      SeriesFor(job.kind).outcomes[ok ? kOk : kFenced]->Increment();
      if (acked.next == EnqueueResult::kEnqueued && acks[k].next->delay <= absl::ZeroDuration()) {
        NextStepReady(loop, job.shard);
      }
      if (acked.next == EnqueueResult::kWrongTeam) {
        // The account was deleted and created again under another team since the chain began:
        // the chain ends here, and says so.
        log::Error("a job's next step was refused: its account belongs to another team now",
                   {{"job", job.id}, {"next", acks[k].next->id}, {"account", job.account}});
      }
    }
  }
  if (!nacks.empty()) {
    absl::StatusOr<std::vector<NackResult>> done =
        co_await FinishWithRetries<std::vector<NackResult>>(*metrics_, *finish_outage_, clock_,
                                                            config_.error_backoff, "nack",
                                                            [&] { return queue_.Nack(nacks); });
    for (size_t k = 0; done.ok() && k < done->size(); ++k) {
      int outcome = kFenced;
      switch ((*done)[k]) {
        case NackResult::kRetryScheduled:
          outcome = kRetry;
          break;
        case NackResult::kDead:
          outcome = kDead;
          break;
        case NackResult::kReturned:
          outcome = nacks[k].mode == NackRequest::Mode::kRateLimited ? kRateLimited : kReleased;
          break;
        case NackResult::kFenced:
          break;
      }
      SeriesFor(jobs[nack_jobs[k]].kind).outcomes[outcome]->Increment();
    }
  }
}

}  // namespace herald::queue
