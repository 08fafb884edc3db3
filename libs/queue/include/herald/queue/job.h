// The queue's value types: what is enqueued, what a worker leases, and how a lease ends.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <absl/status/status.h>
#include <absl/time/time.h>

namespace herald::queue {

// A job to enqueue: exactly one upstream call (or one internal step).
struct JobSpec {
  // Caller-supplied and the idempotency key: enqueueing an id that is queued, delayed, leased,
  // dead, or completed within the idempotency window (and possibly up to twice that long ago:
  // completed ids are kept in window-long generations) does nothing and reports kDuplicate.
  // Workflow steps derive it from (campaign, account, step). 1..256 bytes.
  std::string id;
  std::string kind;    // the handler to run; a small fixed set (it is a metrics label)
  std::string tenant;  // recorded on the account when the account is first seen
  std::string team;    // chooses the shard; an account never changes team
  std::string account;
  std::string payload;   // opaque bytes (a serialised protobuf), at most 1 MiB
  int max_attempts = 5;  // leases that may end in failure before the job is dead-lettered
  absl::Duration delay = absl::ZeroDuration();  // > 0: a delayed job, due at now + delay
};

// OK when every field is within the bounds documented above; kInvalidArgument naming the field.
absl::Status ValidateJobSpec(const JobSpec& spec);

enum class EnqueueResult {
  kEnqueued,
  kDuplicate,
  kWrongTeam,  // the account is registered to another team; nothing changed
};

// Identifies one lease of one job: the fencing token. Only the current token can finish or
// extend a job; an older one gets kFenced and changes nothing.
struct JobRef {
  int shard = 0;
  std::string id;
  std::string token;
};

// A job handed to a worker.
struct LeasedJob {
  int shard = 0;
  std::string id;
  std::string token;
  std::string kind;
  std::string tenant;
  std::string team;
  std::string account;
  std::string payload;
  int attempt = 0;  // 1 on the first lease; a 429 or a drain release does not count
  int max_attempts = 0;
  // The previous attempt's lease expired (its worker vanished or stalled), or it failed with an
  // unknown outcome: the upstream call may have happened. The handler must reconcile with the
  // upstream before acting again (at most one send per campaign and account).
  bool previous_outcome_unknown = false;
  // When the job became ready to run: its enqueue, the end of its delay or retry backoff, or its
  // return from an earlier lease.
  absl::Time ready_at;
  absl::Time lease_expires_at;

  JobRef ref() const { return {shard, id, token}; }
};

struct LeaseBatch {
  std::vector<LeasedJob> jobs;
  // When the shard may next have work: zero when more may be ready now, nullopt when nothing is
  // scheduled at all. A hint for idling workers, not a promise (other producers may add work).
  std::optional<absl::Duration> next_due;
  int throttled_by_account = 0;  // accounts deferred by their own bucket in this call
  int throttled_by_team = 0;     // accounts deferred by their team's bucket in this call
};

enum class FinishResult {
  kDone,
  kFenced,  // the token is not the job's current lease: nothing changed
};

struct AckRequest {
  JobRef job;
  std::optional<JobSpec> next;  // the next workflow step, enqueued atomically with the ack
};

struct AckResult {
  FinishResult ack = FinishResult::kFenced;
  std::optional<EnqueueResult> next;  // set when a next step was given and the ack succeeded
};

// How a job that did not succeed ends its lease.
struct NackRequest {
  enum class Mode {
    kRetry,        // again after `delay`, or dead-lettered when the attempts are used up
    kDeadLetter,   // terminal error: dead now, with `reason`
    kRateLimited,  // upstream 429: the team's bucket is pushed to now + `delay`; no attempt lost
    kRelease,      // the worker is draining: back to ready, no attempt lost
    kDefer,        // Herald's own store was unavailable: again after `delay`, no attempt lost
  };
  JobRef job;
  Mode mode = Mode::kRetry;
  absl::Duration delay = absl::ZeroDuration();
  std::string reason;
  // kRetry, kRelease, kDefer: flag the next attempt "previous outcome unknown".
  bool outcome_unknown = false;
};

enum class NackResult {
  kRetryScheduled,
  kDead,
  kReturned,  // back at the head of its account's ready list
  kFenced,
};

// Limits of an account (the agency's pacing of one creator account).
// A tenant's weight: its share of a shard's leases against the other tenants with work ready
// there (Queue::SetTenantWeight).
inline constexpr int kMinTenantWeight = 1;
inline constexpr int kMaxTenantWeight = 1000;

struct AccountSettings {
  std::string tenant;
  std::string team;
  int64_t per_minute = 0;  // 0 = no account limit (the team's still applies)
  int64_t burst = 1;
  int max_in_flight = 0;  // 0 = no cap
  // Registers the account with `team` even when its shard has it registered with another team
  // (an account deleted and created again under another team): it leaves that team, and its
  // jobs wait on the new team's bucket from then on. Otherwise that is refused.
  bool move = false;
};

struct DeadJob {
  std::string id;
  std::string kind;
  std::string account;
  std::string payload;
  int attempts = 0;
  std::string reason;
  absl::Time died_at;
};

struct DeadPage {
  int64_t total = 0;          // dead jobs in the shard
  std::vector<DeadJob> jobs;  // newest first
};

// One shard's state, from counters the scripts keep (no scans).
struct ShardStats {
  int shard = 0;
  int64_t ready = 0;
  int64_t delayed = 0;
  int64_t leased = 0;
  int64_t dead = 0;
  int64_t ready_accounts = 0;  // accounts in the ring
  // Approximate: the oldest head-of-list job among the accounts that have waited longest for a
  // turn (see lua/stats.lua). Zero when nothing is ready.
  absl::Duration oldest_ready_age;
  std::map<std::string, int64_t> enqueued;  // by kind, since the shard began
  std::map<std::pair<std::string, std::string>, int64_t> finished;  // by (kind, outcome)
};

}  // namespace herald::queue
