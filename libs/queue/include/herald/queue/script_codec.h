// The protocol of the queue's Lua scripts (lua/*.lua): the positional arguments each script
// takes and the reply it gives, encoded and decoded in one place. Queue speaks it over
// redis::Client; tests that drive the scripts directly speak it too, so both send and read
// exactly what the script headers document.
//
// Encoders return a script's ARGV in order, ARGV[1] being `now`: Unix microseconds as decimal
// text, or "" for Redis TIME. KEYS[1] is always the shard's hash tag (layout.h).
//
// Decoders check a reply against its script's header: a reply of another type or length, an
// element of the wrong type, or a result code the script does not document is kInternal naming
// the script and what was received. Nothing is ever read as a default (a non-integer as 0, an
// unknown code as "fenced"). An error reply decodes to kInternal with Redis' message.
//
// Pure functions: no I/O, no clock, thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <herald/queue/job.h>
#include <herald/ratelimit/gcra.h>
#include <herald/redis/reply.h>

namespace herald::queue::script {

// ---- Result codes: the integers the scripts return, by name (one enum per kind of result).

// enqueue.lua per job; ack.lua's `next` per chained job.
enum class EnqueueCode : int64_t { kEnqueued = 1, kDuplicate = 0, kWrongTeam = -1 };
// ack.lua's `ack` per job.
enum class AckCode : int64_t { kDone = 1, kFenced = -1 };
// ack.lua's `next` when no next job was given, or it was not tried (the ack was fenced).
inline constexpr int64_t kNextNotTried = -2;
// nack.lua per job.
enum class NackCode : int64_t { kRetryScheduled = 1, kDead = 2, kReturned = 3, kFenced = -1 };
// heartbeat.lua per job: the new expiry (Unix ms, >= 0), or this.
enum class HeartbeatCode : int64_t { kFenced = -1 };
// configure.lua's first element.
enum class ConfigureCode : int64_t { kDone = 1, kWrongTeam = -1 };
// configure.lua's first element for "take".
enum class TakeCode : int64_t { kTaken = 1, kWait = 0, kPaused = -2, kUnknown = -3 };

// ---- enqueue.lua

std::vector<std::string> EncodeEnqueue(std::string now, absl::Duration idempotency_window,
                                       const std::vector<const JobSpec*>& jobs);
// One result per job, in order; `jobs` is how many were sent.
absl::StatusOr<std::vector<EnqueueResult>> DecodeEnqueue(const redis::Reply& reply, size_t jobs);

// ---- lease.lua

struct LeaseArgs {
  int max_jobs = 1;
  absl::Duration lease = absl::Seconds(30);
  int promote_limit = 100;  // delayed jobs promoted first
  int reap_limit = 100;     // expired lease groups reaped first
  int jobs_per_visit = 1;
};
std::vector<std::string> EncodeLease(std::string now, const LeaseArgs& args);
// The leased jobs (with `shard` set), the hint and the throttle counts.
absl::StatusOr<LeaseBatch> DecodeLease(const redis::Reply& reply, int shard);

// ---- ack.lua

// The arguments of one ack.lua call. ack.lua takes tokens grouped by prefix (a token is its lease
// group's prefix followed by the job's id); a request whose token does not end with its job's id
// cannot be the job's lease and is left out (fenced without a call).
struct AckCall {
  std::vector<std::string> args;
  // The job numbered k + 1 in the call is requests[order[k]]; empty: nothing to send.
  std::vector<size_t> order;
};
AckCall EncodeAck(std::string now, absl::Duration idempotency_window,
                  const std::vector<const AckRequest*>& requests);
// One result per request (requests.size() == `requests`); those left out of the call are
// kFenced.
absl::StatusOr<std::vector<AckResult>> DecodeAck(const redis::Reply& reply, const AckCall& call,
                                                 size_t requests);

// ---- nack.lua

std::vector<std::string> EncodeNack(std::string now, const std::vector<const NackRequest*>& nacks);
absl::StatusOr<std::vector<NackResult>> DecodeNack(const redis::Reply& reply, size_t nacks);

// ---- heartbeat.lua

std::vector<std::string> EncodeHeartbeat(std::string now, absl::Duration lease,
                                         const std::vector<const JobRef*>& jobs);
// Per job: the new expiry, or nullopt when fenced.
absl::StatusOr<std::vector<std::optional<absl::Time>>> DecodeHeartbeat(const redis::Reply& reply,
                                                                       size_t jobs);

// ---- reap.lua

std::vector<std::string> EncodeReap(std::string now, int limit);
// The number of jobs whose leases were reaped.
absl::StatusOr<int64_t> DecodeReap(const redis::Reply& reply);

// ---- configure.lua

std::vector<std::string> EncodeConfigureAccount(std::string now, std::string account,
                                                const AccountSettings& settings);
std::vector<std::string> EncodeConfigureTeam(std::string now, std::string team,
                                             const ratelimit::Limit& limit);
std::vector<std::string> EncodeTenantWeight(std::string now, std::string tenant, int weight);
enum class PauseTarget { kAccount, kTeam };
std::vector<std::string> EncodePause(std::string now, PauseTarget target, bool pause,
                                     std::string name);

struct ConfigureResult {
  ConfigureCode code = ConfigureCode::kDone;
  std::string registered_team;  // kWrongTeam: the team the account belongs to
};
absl::StatusOr<ConfigureResult> DecodeConfigure(const redis::Reply& reply);

std::vector<std::string> EncodePushBack(std::string now, std::string team, absl::Duration delay);
// `account` may be empty: the team's bucket alone.
std::vector<std::string> EncodeTake(std::string now, std::string team, std::string account);
struct TakeResult {
  TakeCode code = TakeCode::kTaken;
  absl::Duration wait;  // kWait: until both buckets would have a token
};
absl::StatusOr<TakeResult> DecodeTake(const redis::Reply& reply);

// ---- stats.lua

std::vector<std::string> EncodeStats(std::string now, int sample);
absl::StatusOr<ShardStats> DecodeStats(const redis::Reply& reply, int shard);

// ---- list_dead.lua

std::vector<std::string> EncodeListDead(std::string now, int offset, int count);
absl::StatusOr<DeadPage> DecodeListDead(const redis::Reply& reply);

// ---- take_dead.lua

// Takes up to `max` dead letters, each claimed for `claim`, and purges some of those older than
// `retention` (zero: none).
std::vector<std::string> EncodeTakeDead(std::string now, int max, absl::Duration claim,
                                        absl::Duration retention);
std::vector<std::string> EncodeReturnDead(std::string now, std::vector<std::string> ids);
// Ends the claims on `ids`: their dead letters were acted on.
std::vector<std::string> EncodeDoneDead(std::string now, std::vector<std::string> ids);
absl::StatusOr<std::vector<DeadJob>> DecodeTakeDead(const redis::Reply& reply);
// The number of ids a "return" or "done" gave.
absl::StatusOr<int64_t> DecodeReturnDead(const redis::Reply& reply);

}  // namespace herald::queue::script
