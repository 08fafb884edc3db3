// Herald's durable, fair, rate-limited job queue on Redis.
//
//   queue::Queue q(client, {.shards = 16});
//   co_await q.Enqueue({.id = step_id, .kind = "send_mass_message", .tenant = t, .team = team,
//                       .account = acct, .payload = bytes});
//   auto batch = co_await q.Lease(shard, 64);
//   co_await q.Ack({{job.ref()}});
//
// Jobs live in shards (layout.h); each operation is one Lua script call on one shard, atomic in
// Redis, so any number of processes may share a queue. Leasing is fair between tenants (weighted:
// SetTenantWeight), then between a tenant's accounts (round-robin among those ready), and
// enforces per-account and per-team GCRA limits, pauses and
// per-account in-flight caps inside the script (libs/ratelimit, lua/lease.lua).
//
// Time: scripts read Redis' TIME, so every process agrees on one clock. A Queue built with a
// Clock passes that clock's time instead (deterministic tests).
//
// Errors: kInvalidArgument for bad input (nothing sent); otherwise the redis::Client's codes
// (kUnavailable, kDeadlineExceeded: the operation may or may not have happened, and every
// operation is safe to retry: enqueue is idempotent by job id, and a finish retried after it took
// effect reports kFenced).
//
// Thread safety: all methods may be called concurrently from any thread. The client (and clock)
// must outlive the Queue; the Queue must outlive the operations started on it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/awaitable.hpp>

#include <herald/common/clock.h>
#include <herald/queue/backoff.h>
#include <herald/queue/job.h>
#include <herald/ratelimit/gcra.h>

namespace herald::redis {
class Client;
}  // namespace herald::redis

namespace herald::queue {

struct QueueConfig {
  int shards = 16;  // must never change for a given Redis: a team's jobs would be stranded
  absl::Duration idempotency_window = absl::Hours(24);
  absl::Duration lease_duration = absl::Seconds(30);  // default for Lease()
  BackoffPolicy backoff;                              // for Nack()
  // Jobs one account may get per turn of the round-robin, when its limits, its in-flight cap and
  // its ready list allow (every job still takes its own token from both buckets). 1 serves
  // strictly job by job; larger values cut Redis work per leased job several-fold for accounts
  // with a backlog, at the price of fairness at the granularity of one turn of this many jobs.
  int jobs_per_visit = 16;
  int promote_per_lease = 256;  // delayed jobs promoted per lease call, at most
  int reap_per_lease = 64;      // expired leases reaped per lease call, at most
  int stats_sample = 16;        // ring accounts sampled for the oldest ready age
  // Jobs one enqueue script call takes at most. Redis runs nothing else while a script runs,
  // and a job costs it 5-30 µs (more when its account joins the ring), so a campaign to
  // thousands of accounts of one team is enqueued in several calls, none holding Redis for
  // more than a few milliseconds.
  int max_jobs_per_enqueue_call = 256;
  // How long after it died a dead letter is kept: TakeDeadLetters purges older ones once their
  // owner has acted on them; zero keeps them for good. A purged job's id may be enqueued again as
  // a new job, so it is zero or at least the idempotency window.
  absl::Duration dead_letter_retention = absl::Hours(24 * 30);
};

// OK when every field is in range; kInvalidArgument naming the field otherwise.
absl::Status ValidateQueueConfig(const QueueConfig& config);

class Queue {
 public:
  // `clock`: nullptr in production (scripts read Redis' TIME); a clock for deterministic tests.
  Queue(redis::Client& client, QueueConfig config, const Clock* clock = nullptr);
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  const QueueConfig& config() const { return config_; }
  int shard_count() const { return config_.shards; }
  int ShardOf(std::string_view team) const;

  // ---- producing

  // kWrongTeam is returned as kFailedPrecondition.
  boost::asio::awaitable<absl::StatusOr<EnqueueResult>> Enqueue(JobSpec job);
  // One script call per shard involved (per max_jobs_per_enqueue_call jobs of a shard, in
  // order); results in the order of `jobs`. Not atomic across calls: when one fails, the jobs
  // of the calls before it stay enqueued (enqueue is idempotent, so the whole batch may be
  // retried).
  boost::asio::awaitable<absl::StatusOr<std::vector<EnqueueResult>>> EnqueueBatch(
      std::vector<JobSpec> jobs);

  // ---- consuming

  // Leases up to `max_jobs` jobs from `shard`: promotes due delayed jobs, reaps expired leases,
  // then picks ready accounts round-robin within their limits, up to `jobs_per_visit` jobs per
  // account turn. Each job gets a fresh token and expires after `lease_duration` (config
  // default) unless extended by Heartbeat(). Jobs of one account come out together, oldest first.
  boost::asio::awaitable<absl::StatusOr<LeaseBatch>> Lease(
      int shard, int max_jobs, std::optional<absl::Duration> lease_duration = std::nullopt);

  // Completes jobs (any shards; one script call per shard), each optionally chained to its next
  // workflow step in the same atomic step. Results in the order of `acks`.
  boost::asio::awaitable<absl::StatusOr<std::vector<AckResult>>> Ack(std::vector<AckRequest> acks);
  // Ack of one job plus its next step. `next` must map to the job's shard (same team, or a team
  // of the same shard); otherwise kInvalidArgument.
  boost::asio::awaitable<absl::StatusOr<AckResult>> AckAndEnqueue(JobRef job, JobSpec next);
  // OK when `next` may be chained to the ack of a job on `shard`: a valid JobSpec whose team maps
  // to that shard; kInvalidArgument otherwise. Ack() refuses the whole call when one fails it, so
  // callers that batch acks check each next step first.
  absl::Status ValidateNextStep(int shard, const JobSpec& next) const;

  // Ends leases that did not succeed (any shards). Results in the order of `nacks`.
  boost::asio::awaitable<absl::StatusOr<std::vector<NackResult>>> Nack(
      std::vector<NackRequest> nacks);
  // A failed attempt: retried after FullJitterBackoff(config.backoff, job.attempt - 1), or
  // dead-lettered with `reason` when it was the last attempt.
  boost::asio::awaitable<absl::StatusOr<NackResult>> Retry(const LeasedJob& job, std::string reason,
                                                           bool outcome_unknown = false);
  // A terminal failure: dead-lettered now with `reason`.
  boost::asio::awaitable<absl::StatusOr<NackResult>> DeadLetter(JobRef job, std::string reason);
  // Upstream 429: the team's bucket is pushed to now + retry_after, the job returns to ready
  // without losing an attempt.
  boost::asio::awaitable<absl::StatusOr<NackResult>> RateLimited(JobRef job,
                                                                 absl::Duration retry_after);
  // Draining: the job returns to ready without losing an attempt.
  boost::asio::awaitable<absl::StatusOr<NackResult>> Release(JobRef job);

  // The requests the four calls above send, for callers that batch them into one Nack().
  NackRequest RetryRequest(const LeasedJob& job, std::string reason,
                           bool outcome_unknown = false) const;
  static NackRequest DeadLetterRequest(JobRef job, std::string reason);
  static NackRequest RateLimitedRequest(JobRef job, absl::Duration retry_after,
                                        bool outcome_unknown = false);
  static NackRequest ReleaseRequest(JobRef job, bool outcome_unknown = false);
  // Again after `delay`, without losing an attempt: the job could not run because Herald's own
  // store was unavailable (JobResult::StoreFailed), not because its step failed.
  static NackRequest DeferRequest(JobRef job, std::string reason, absl::Duration delay,
                                  bool outcome_unknown);

  // Extends leases to now + `lease_duration` (config default). Per job: the new expiry, or
  // nullopt when fenced (the lease was lost: stop working on the job).
  boost::asio::awaitable<absl::StatusOr<std::vector<std::optional<absl::Time>>>> Heartbeat(
      std::vector<JobRef> jobs, std::optional<absl::Duration> lease_duration = std::nullopt);

  // Returns up to `limit` expired leases of `shard` to ready (flagged outcome unknown). Lease()
  // also reaps; this is for a dedicated reaper. Returns how many were reaped.
  boost::asio::awaitable<absl::StatusOr<int>> Reap(int shard, int limit = 1000);

  // ---- limits and pauses (take effect at the next lease; wake accounts that become eligible)

  // Registers the account (tenant, team) and sets its limits. Changing an account's team is
  // kFailedPrecondition unless `settings.move`.
  boost::asio::awaitable<absl::Status> SetAccountLimits(std::string account,
                                                        AccountSettings settings);
  boost::asio::awaitable<absl::Status> SetTeamLimits(std::string team, ratelimit::Limit limit);
  boost::asio::awaitable<absl::Status> PauseAccount(std::string team, std::string account);
  boost::asio::awaitable<absl::Status> ResumeAccount(std::string team, std::string account);
  boost::asio::awaitable<absl::Status> PauseTeam(std::string team);
  boost::asio::awaitable<absl::Status> ResumeTeam(std::string team);
  // Gives the team no token before now + `delay`: an upstream 429's Retry-After met by a call
  // made outside a job (a job's own 429 goes through RateLimited). A team not registered is
  // left as it is.
  boost::asio::awaitable<absl::Status> PushBackTeam(std::string team, absl::Duration delay);
  // Takes one token from `team`'s bucket and `account`'s (empty: the team's alone) for an
  // upstream call made outside a job, so the limits count every call the team makes. Returns
  // zero when taken; otherwise nothing is taken and it returns how long until both buckets would
  // have one. kFailedPrecondition when the team or account is paused; kNotFound when either is
  // not registered (or the account is not of `team`).
  boost::asio::awaitable<absl::StatusOr<absl::Duration>> TakeToken(std::string team,
                                                                   std::string account);
  // Sets the tenant's weight (kMinTenantWeight..kMaxTenantWeight; 1 until set) on every shard.
  // Where tenants share a shard, each gets leases in proportion to its weight while it has work
  // ready; within a tenant, its accounts take turns.
  boost::asio::awaitable<absl::Status> SetTenantWeight(std::string tenant, int weight);

  // ---- observing

  boost::asio::awaitable<absl::StatusOr<ShardStats>> Stats(int shard);
  boost::asio::awaitable<absl::StatusOr<DeadPage>> ListDead(int shard, int offset, int count);
  // Up to `max` (1..1000) of the shard's dead letters to act on, oldest first, each claimed for
  // `claim`: the caller says when it is done with them (FinishDeadLetters), or gives back those
  // it cannot act on now (ReturnDeadLetters), which come first again. A claim that runs out (its
  // caller died) is offered again: acting on a dead letter must be idempotent. Also purges up to
  // 100 dead letters older than the config's dead_letter_retention that were acted on.
  boost::asio::awaitable<absl::StatusOr<std::vector<DeadJob>>> TakeDeadLetters(
      int shard, int max, absl::Duration claim);
  boost::asio::awaitable<absl::Status> ReturnDeadLetters(int shard, std::vector<std::string> ids);
  boost::asio::awaitable<absl::Status> FinishDeadLetters(int shard, std::vector<std::string> ids);

 private:
  struct Scripts;

  // ReturnDeadLetters and FinishDeadLetters: `encode` names what happens to the claims.
  boost::asio::awaitable<absl::Status> EndDeadLetterClaims(
      int shard, std::vector<std::string> ids,
      std::vector<std::string> (*encode)(std::string, std::vector<std::string>));

  std::string Now() const;

  redis::Client& client_;
  const QueueConfig config_;
  const Clock* const clock_;
  std::unique_ptr<Scripts> scripts_;
};

}  // namespace herald::queue
