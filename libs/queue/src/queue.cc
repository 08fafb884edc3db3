#include <map>

#include <absl/random/random.h>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/queue/layout.h>
#include <herald/queue/queue.h>
#include <herald/queue/record.h>
#include <herald/queue/scripts.h>
#include <herald/redis/client.h>

namespace herald::queue {
namespace {

namespace asio = boost::asio;

constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxPayloadBytes = 1 << 20;

absl::Status BadReply(std::string_view script, const redis::Reply& reply) {
  return absl::InternalError(
      StrCat(script, ": unexpected reply ", reply.DebugString().substr(0, 200)));
}

int64_t ToMillis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

void AppendJob(std::vector<std::string>& args, const JobSpec& j) {
  args.push_back(j.id);
  args.push_back(j.kind);
  args.push_back(j.account);
  args.push_back(j.team);
  args.push_back(j.tenant);
  args.push_back(j.payload);
  args.push_back(StrCat(j.max_attempts));
  args.push_back(StrCat(ToMillis(j.delay)));
}

absl::StatusOr<EnqueueResult> ToEnqueueResult(int64_t code) {
  switch (code) {
    case 1:
      return EnqueueResult::kEnqueued;
    case 0:
      return EnqueueResult::kDuplicate;
    case -1:
      return EnqueueResult::kWrongTeam;
    default:
      return absl::InternalError(StrCat("enqueue.lua: unknown result ", code));
  }
}

std::string_view ModeName(NackRequest::Mode mode) {
  switch (mode) {
    case NackRequest::Mode::kRetry:
      return "retry";
    case NackRequest::Mode::kDeadLetter:
      return "dead";
    case NackRequest::Mode::kRateLimited:
      return "limited";
    case NackRequest::Mode::kRelease:
      return "release";
  }
  return "retry";
}

// Groups request indices by shard, in first-seen order of shards.
template <typename T, typename ShardFn>
std::vector<std::pair<int, std::vector<size_t>>> GroupByShard(const std::vector<T>& items,
                                                              ShardFn shard_of) {
  std::vector<std::pair<int, std::vector<size_t>>> groups;
  std::map<int, size_t> index;
  for (size_t i = 0; i < items.size(); ++i) {
    const int shard = shard_of(items[i]);
    auto [it, inserted] = index.emplace(shard, groups.size());
    if (inserted) groups.push_back({shard, {}});
    groups[it->second].second.push_back(i);
  }
  return groups;
}

absl::Status CheckShard(int shard, int shards) {
  if (shard < 0 || shard >= shards) {
    return absl::InvalidArgumentError(StrCat("shard ", shard, " is not in [0, ", shards, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckName(std::string_view field, std::string_view value) {
  if (value.empty() || value.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(StrCat(field, " must be 1..", kMaxNameBytes, " bytes"));
  }
  return absl::OkStatus();
}

// Runs `script` on `shard`. Call sites build `args` in a statement of its own: g++ 12 cannot keep
// an initializer list's array alive across a co_await in the same full-expression.
asio::awaitable<absl::StatusOr<redis::Reply>> EvalOn(redis::Client& client,
                                                     const redis::Script& script, int shard,
                                                     std::vector<std::string> args) {
  std::vector<std::string> keys;
  keys.push_back(ShardTag(shard));
  co_return co_await client.Eval(script, std::move(keys), std::move(args));
}

}  // namespace

absl::Status ValidateJobSpec(const JobSpec& spec) {
  if (spec.id.empty() || spec.id.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(StrCat("job id must be 1..", kMaxIdBytes, " bytes"));
  }
  HERALD_RETURN_IF_ERROR(CheckName("job kind", spec.kind));
  HERALD_RETURN_IF_ERROR(CheckName("job team", spec.team));
  HERALD_RETURN_IF_ERROR(CheckName("job account", spec.account));
  if (spec.tenant.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        StrCat("job tenant must be at most ", kMaxNameBytes, " bytes"));
  }
  if (spec.payload.size() > kMaxPayloadBytes) {
    return absl::InvalidArgumentError(
        StrCat("job payload is ", spec.payload.size(), " bytes; the limit is ", kMaxPayloadBytes));
  }
  if (spec.max_attempts < 1 || spec.max_attempts > 1000) {
    return absl::InvalidArgumentError(
        StrCat("job max_attempts must be in [1, 1000], got ", spec.max_attempts));
  }
  if (spec.delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("job delay must not be negative");
  }
  return absl::OkStatus();
}

absl::Status ValidateQueueConfig(const QueueConfig& config) {
  if (config.shards < 1 || config.shards > 4096) {
    return absl::InvalidArgumentError("queue shards must be in [1, 4096]");
  }
  if (config.idempotency_window < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("queue idempotency_window must not be negative");
  }
  if (config.lease_duration < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("queue lease_duration must be at least 1ms");
  }
  HERALD_RETURN_IF_ERROR(ValidateBackoffPolicy(config.backoff));
  if (config.jobs_per_visit < 1 || config.jobs_per_visit > 1000) {
    return absl::InvalidArgumentError("queue jobs_per_visit must be in [1, 1000]");
  }
  if (config.promote_per_lease < 1 || config.reap_per_lease < 1 || config.stats_sample < 1) {
    return absl::InvalidArgumentError(
        "queue promote_per_lease, reap_per_lease and stats_sample must be positive");
  }
  return absl::OkStatus();
}

struct Queue::Scripts {
  redis::Script enqueue{ScriptSource(ScriptId::kEnqueue)};
  redis::Script lease{ScriptSource(ScriptId::kLease)};
  redis::Script ack{ScriptSource(ScriptId::kAck)};
  redis::Script nack{ScriptSource(ScriptId::kNack)};
  redis::Script heartbeat{ScriptSource(ScriptId::kHeartbeat)};
  redis::Script reap{ScriptSource(ScriptId::kReap)};
  redis::Script configure{ScriptSource(ScriptId::kConfigure)};
  redis::Script stats{ScriptSource(ScriptId::kStats)};
  redis::Script list_dead{ScriptSource(ScriptId::kListDead)};
};

Queue::Queue(redis::Client& client, QueueConfig config, const Clock* clock)
    : client_(client),
      config_(std::move(config)),
      clock_(clock),
      scripts_(std::make_unique<Scripts>()) {}

Queue::~Queue() = default;

int Queue::ShardOf(std::string_view team) const { return queue::ShardOf(team, config_.shards); }

std::string Queue::Now() const {
  return clock_ == nullptr ? std::string() : StrCat(absl::ToUnixMicros(clock_->Now()));
}

asio::awaitable<absl::StatusOr<EnqueueResult>> Queue::Enqueue(JobSpec job) {
  std::vector<JobSpec> jobs;
  jobs.push_back(std::move(job));
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<EnqueueResult> results,
                             co_await EnqueueBatch(std::move(jobs)));
  if (results.at(0) == EnqueueResult::kWrongTeam) {
    co_return absl::FailedPreconditionError("the account is registered to another team");
  }
  co_return results.at(0);
}

asio::awaitable<absl::StatusOr<std::vector<EnqueueResult>>> Queue::EnqueueBatch(
    std::vector<JobSpec> jobs) {
  for (const JobSpec& j : jobs) HERALD_CO_RETURN_IF_ERROR(ValidateJobSpec(j));
  std::vector<EnqueueResult> results(jobs.size(), EnqueueResult::kDuplicate);
  const auto groups = GroupByShard(jobs, [&](const JobSpec& j) { return ShardOf(j.team); });
  for (const auto& group : groups) {
    const int shard = group.first;
    const std::vector<size_t>& indices = group.second;
    std::vector<std::string> args = {Now(), StrCat(ToMillis(config_.idempotency_window))};
    args.reserve(2 + 8 * indices.size());
    for (const size_t i : indices) AppendJob(args, jobs[i]);
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await EvalOn(client_, scripts_->enqueue, shard, std::move(args)));
    if (reply.elements().size() != indices.size()) co_return BadReply("enqueue.lua", reply);
    for (size_t k = 0; k < indices.size(); ++k) {
      HERALD_CO_ASSIGN_OR_RETURN(results[indices[k]],
                                 ToEnqueueResult(reply.elements()[k].integer()));
    }
  }
  co_return results;
}

asio::awaitable<absl::StatusOr<LeaseBatch>> Queue::Lease(
    int shard, int max_jobs, std::optional<absl::Duration> lease_duration) {
  HERALD_CO_RETURN_IF_ERROR(CheckShard(shard, config_.shards));
  if (max_jobs < 1 || max_jobs > 10'000) {
    co_return absl::InvalidArgumentError("max_jobs must be in [1, 10000]");
  }
  const absl::Duration lease = lease_duration.value_or(config_.lease_duration);
  if (lease < absl::Milliseconds(1)) {
    co_return absl::InvalidArgumentError("lease duration must be at least 1ms");
  }
  std::vector<std::string> args = {Now(),
                                   StrCat(max_jobs),
                                   StrCat(ToMillis(lease)),
                                   StrCat(config_.promote_per_lease),
                                   StrCat(config_.reap_per_lease),
                                   StrCat(config_.jobs_per_visit)};
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->lease, shard, std::move(args)));
  const auto& e = reply.elements();
  if (e.size() < 4) co_return BadReply("lease.lua", reply);
  LeaseBatch batch;
  const int64_t hint = e[0].integer();
  if (hint >= 0) batch.next_due = absl::Milliseconds(hint);
  batch.throttled_by_account = static_cast<int>(e[1].integer());
  batch.throttled_by_team = static_cast<int>(e[2].integer());
  const absl::Time expires = absl::FromUnixMillis(e[3].integer());
  // Per lease group: account, team, tenant, token prefix, n, then n × (id, record).
  size_t i = 4;
  while (i < e.size()) {
    if (e.size() - i < 5) co_return BadReply("lease.lua", reply);
    const std::string_view account = e[i].str();
    const std::string_view team = e[i + 1].str();
    const std::string_view tenant = e[i + 2].str();
    const std::string_view prefix = e[i + 3].str();
    const int64_t n = e[i + 4].integer();
    i += 5;
    if (n < 0 || static_cast<uint64_t>(n) > (e.size() - i) / 2) {
      co_return BadReply("lease.lua", reply);
    }
    for (int64_t k = 0; k < n; ++k, i += 2) {
      const std::optional<JobRecord> record = DecodeJobRecord(e[i + 1].str());
      if (!record.has_value()) co_return BadReply("lease.lua (record)", e[i + 1]);
      LeasedJob& j = batch.jobs.emplace_back();
      j.shard = shard;
      j.id = std::string(e[i].str());
      j.token = StrCat(prefix, j.id);
      j.kind = std::string(record->kind);
      j.account = std::string(account);
      j.team = std::string(team);
      j.tenant = std::string(tenant);
      j.payload = std::string(record->payload);
      j.attempt = static_cast<int>(record->failed_attempts + 1);
      j.max_attempts = static_cast<int>(record->max_attempts);
      j.previous_outcome_unknown = record->previous_outcome_unknown;
      j.enqueued_at = absl::FromUnixMillis(record->enqueued_ms);
      j.lease_expires_at = expires;
    }
  }
  co_return batch;
}

asio::awaitable<absl::StatusOr<std::vector<AckResult>>> Queue::Ack(std::vector<AckRequest> acks) {
  for (const AckRequest& a : acks) {
    HERALD_CO_RETURN_IF_ERROR(CheckShard(a.job.shard, config_.shards));
    if (a.next.has_value()) {
      HERALD_CO_RETURN_IF_ERROR(ValidateJobSpec(*a.next));
      if (ShardOf(a.next->team) != a.job.shard) {
        co_return absl::InvalidArgumentError(StrCat("next job ", a.next->id, " belongs to shard ",
                                                    ShardOf(a.next->team),
                                                    ", not the acked job's shard ", a.job.shard));
      }
    }
  }
  std::vector<AckResult> results(acks.size());
  const auto groups = GroupByShard(acks, [](const AckRequest& a) { return a.job.shard; });
  for (const auto& group : groups) {
    const int shard = group.first;
    // ack.lua takes the tokens grouped by prefix (a token is its lease group's prefix followed by
    // the job's id). A token that does not end with its job's id cannot be the job's lease: it
    // is fenced here, without a call.
    std::vector<std::pair<std::string_view, std::vector<size_t>>> by_prefix;
    std::map<std::string_view, size_t> prefix_index;
    for (const size_t i : group.second) {
      const JobRef& job = acks[i].job;
      if (job.token.size() <= job.id.size() || !job.token.ends_with(job.id)) continue;
      const std::string_view prefix =
          std::string_view(job.token).substr(0, job.token.size() - job.id.size());
      auto [it, inserted] = prefix_index.emplace(prefix, by_prefix.size());
      if (inserted) by_prefix.push_back({prefix, {}});
      by_prefix[it->second].second.push_back(i);
    }
    if (by_prefix.empty()) continue;
    std::vector<std::string> args = {Now(), StrCat(ToMillis(config_.idempotency_window)),
                                     StrCat(by_prefix.size())};
    std::vector<size_t> order;  // the job numbered k + 1 in the call is acks[order[k]]
    order.reserve(group.second.size());
    for (const auto& [prefix, indices] : by_prefix) {
      args.push_back(std::string(prefix));
      args.push_back(StrCat(indices.size()));
      for (const size_t i : indices) {
        args.push_back(acks[i].job.id);
        order.push_back(i);
      }
    }
    for (size_t k = 0; k < order.size(); ++k) {
      const AckRequest& a = acks[order[k]];
      if (!a.next.has_value()) continue;
      args.push_back(StrCat(k + 1));
      AppendJob(args, *a.next);
    }
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await EvalOn(client_, scripts_->ack, shard, std::move(args)));
    if (reply.elements().size() != 2 * order.size()) co_return BadReply("ack.lua", reply);
    for (size_t k = 0; k < order.size(); ++k) {
      AckResult& r = results[order[k]];
      r.ack = reply.elements()[2 * k].integer() == 1 ? FinishResult::kDone : FinishResult::kFenced;
      const int64_t next = reply.elements()[2 * k + 1].integer();
      if (next != -2) {
        HERALD_CO_ASSIGN_OR_RETURN(EnqueueResult n, ToEnqueueResult(next));
        r.next = n;
      }
    }
  }
  co_return results;
}

asio::awaitable<absl::StatusOr<AckResult>> Queue::AckAndEnqueue(JobRef job, JobSpec next) {
  std::vector<AckRequest> acks;
  acks.push_back({std::move(job), std::move(next)});
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<AckResult> results, co_await Ack(std::move(acks)));
  co_return results.at(0);
}

asio::awaitable<absl::StatusOr<std::vector<NackResult>>> Queue::Nack(
    std::vector<NackRequest> nacks) {
  for (const NackRequest& n : nacks) {
    HERALD_CO_RETURN_IF_ERROR(CheckShard(n.job.shard, config_.shards));
    if (n.delay < absl::ZeroDuration()) {
      co_return absl::InvalidArgumentError("nack delay must not be negative");
    }
  }
  std::vector<NackResult> results(nacks.size(), NackResult::kFenced);
  const auto groups = GroupByShard(nacks, [](const NackRequest& n) { return n.job.shard; });
  for (const auto& group : groups) {
    const int shard = group.first;
    const std::vector<size_t>& indices = group.second;
    std::vector<std::string> args = {Now()};
    args.reserve(1 + 6 * indices.size());
    for (const size_t i : indices) {
      const NackRequest& n = nacks[i];
      args.push_back(n.job.id);
      args.push_back(n.job.token);
      args.push_back(std::string(ModeName(n.mode)));
      args.push_back(StrCat(ToMillis(n.delay)));
      args.push_back(n.reason);
      args.push_back(n.outcome_unknown ? "1" : "0");
    }
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await EvalOn(client_, scripts_->nack, shard, std::move(args)));
    if (reply.elements().size() != indices.size()) co_return BadReply("nack.lua", reply);
    for (size_t k = 0; k < indices.size(); ++k) {
      switch (reply.elements()[k].integer()) {
        case 1:
          results[indices[k]] = NackResult::kRetryScheduled;
          break;
        case 2:
          results[indices[k]] = NackResult::kDead;
          break;
        case 3:
          results[indices[k]] = NackResult::kReturned;
          break;
        default:
          results[indices[k]] = NackResult::kFenced;
      }
    }
  }
  co_return results;
}

namespace {

asio::awaitable<absl::StatusOr<NackResult>> NackOne(Queue& queue, NackRequest request) {
  std::vector<NackRequest> nacks;
  nacks.push_back(std::move(request));
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<NackResult> results,
                             co_await queue.Nack(std::move(nacks)));
  co_return results.at(0);
}

}  // namespace

// Each request is a named local: g++ 12 mishandles aggregate temporaries that live across a
// co_await in the same full-expression.
asio::awaitable<absl::StatusOr<NackResult>> Queue::Retry(const LeasedJob& job, std::string reason,
                                                         bool outcome_unknown) {
  thread_local absl::BitGen rng;
  NackRequest request{.job = job.ref(),
                      .mode = NackRequest::Mode::kRetry,
                      .delay = FullJitterBackoff(config_.backoff, job.attempt - 1, rng),
                      .reason = std::move(reason),
                      .outcome_unknown = outcome_unknown};
  co_return co_await NackOne(*this, std::move(request));
}

asio::awaitable<absl::StatusOr<NackResult>> Queue::DeadLetter(JobRef job, std::string reason) {
  NackRequest request{
      .job = std::move(job), .mode = NackRequest::Mode::kDeadLetter, .reason = std::move(reason)};
  co_return co_await NackOne(*this, std::move(request));
}

asio::awaitable<absl::StatusOr<NackResult>> Queue::RateLimited(JobRef job,
                                                               absl::Duration retry_after) {
  NackRequest request{.job = std::move(job),
                      .mode = NackRequest::Mode::kRateLimited,
                      .delay = retry_after,
                      .reason = "upstream rate limit"};
  co_return co_await NackOne(*this, std::move(request));
}

asio::awaitable<absl::StatusOr<NackResult>> Queue::Release(JobRef job) {
  NackRequest request{.job = std::move(job), .mode = NackRequest::Mode::kRelease};
  co_return co_await NackOne(*this, std::move(request));
}

asio::awaitable<absl::StatusOr<std::vector<std::optional<absl::Time>>>> Queue::Heartbeat(
    std::vector<JobRef> jobs, std::optional<absl::Duration> lease_duration) {
  for (const JobRef& j : jobs) HERALD_CO_RETURN_IF_ERROR(CheckShard(j.shard, config_.shards));
  const absl::Duration lease = lease_duration.value_or(config_.lease_duration);
  std::vector<std::optional<absl::Time>> results(jobs.size());
  const auto groups = GroupByShard(jobs, [](const JobRef& j) { return j.shard; });
  for (const auto& group : groups) {
    const int shard = group.first;
    const std::vector<size_t>& indices = group.second;
    std::vector<std::string> args = {Now(), StrCat(ToMillis(lease))};
    for (const size_t i : indices) {
      args.push_back(jobs[i].id);
      args.push_back(jobs[i].token);
    }
    HERALD_CO_ASSIGN_OR_RETURN(
        redis::Reply reply, co_await EvalOn(client_, scripts_->heartbeat, shard, std::move(args)));
    if (reply.elements().size() != indices.size()) co_return BadReply("heartbeat.lua", reply);
    for (size_t k = 0; k < indices.size(); ++k) {
      const int64_t expires = reply.elements()[k].integer();
      if (expires >= 0) results[indices[k]] = absl::FromUnixMillis(expires);
    }
  }
  co_return results;
}

asio::awaitable<absl::StatusOr<int>> Queue::Reap(int shard, int limit) {
  HERALD_CO_RETURN_IF_ERROR(CheckShard(shard, config_.shards));
  std::vector<std::string> args = {Now(), StrCat(limit)};
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->reap, shard, std::move(args)));
  co_return static_cast<int>(reply.integer());
}

namespace {

asio::awaitable<absl::Status> Configure(redis::Client& client, const redis::Script& script,
                                        int shard, std::vector<std::string> args) {
  absl::StatusOr<redis::Reply> reply = co_await EvalOn(client, script, shard, std::move(args));
  if (!reply.ok()) {
    const std::string_view message = ToStd(reply.status().message());
    if (message.find("WRONGTEAM") != std::string_view::npos) {
      co_return absl::FailedPreconditionError(
          ToAbsl(message.substr(message.find("WRONGTEAM") + 10)));
    }
    co_return reply.status();
  }
  co_return absl::OkStatus();
}

}  // namespace

asio::awaitable<absl::Status> Queue::SetAccountLimits(std::string account,
                                                      AccountSettings settings) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("account", account));
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", settings.team));
  HERALD_CO_RETURN_IF_ERROR(
      ratelimit::ValidateLimit({.per_minute = settings.per_minute, .burst = settings.burst}));
  if (settings.max_in_flight < 0) {
    co_return absl::InvalidArgumentError("max_in_flight must not be negative");
  }
  const int shard = ShardOf(settings.team);
  std::vector<std::string> args = {Now(),
                                   "account",
                                   std::move(account),
                                   settings.team,
                                   settings.tenant,
                                   StrCat(settings.per_minute),
                                   StrCat(settings.burst),
                                   StrCat(settings.max_in_flight)};
  co_return co_await Configure(client_, scripts_->configure, shard, std::move(args));
}

asio::awaitable<absl::Status> Queue::SetTeamLimits(std::string team, ratelimit::Limit limit) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  HERALD_CO_RETURN_IF_ERROR(ratelimit::ValidateLimit(limit));
  const int shard = ShardOf(team);
  std::vector<std::string> args = {Now(), "team", std::move(team), StrCat(limit.per_minute),
                                   StrCat(limit.burst)};
  co_return co_await Configure(client_, scripts_->configure, shard, std::move(args));
}

asio::awaitable<absl::Status> Queue::PauseAccount(std::string team, std::string account) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  HERALD_CO_RETURN_IF_ERROR(CheckName("account", account));
  std::vector<std::string> args = {Now(), "pause_account", std::move(account)};
  co_return co_await Configure(client_, scripts_->configure, ShardOf(team), std::move(args));
}

asio::awaitable<absl::Status> Queue::ResumeAccount(std::string team, std::string account) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  HERALD_CO_RETURN_IF_ERROR(CheckName("account", account));
  std::vector<std::string> args = {Now(), "resume_account", std::move(account)};
  co_return co_await Configure(client_, scripts_->configure, ShardOf(team), std::move(args));
}

asio::awaitable<absl::Status> Queue::PauseTeam(std::string team) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  const int shard = ShardOf(team);
  std::vector<std::string> args = {Now(), "pause_team", std::move(team)};
  co_return co_await Configure(client_, scripts_->configure, shard, std::move(args));
}

asio::awaitable<absl::Status> Queue::ResumeTeam(std::string team) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  const int shard = ShardOf(team);
  std::vector<std::string> args = {Now(), "resume_team", std::move(team)};
  co_return co_await Configure(client_, scripts_->configure, shard, std::move(args));
}

asio::awaitable<absl::StatusOr<ShardStats>> Queue::Stats(int shard) {
  HERALD_CO_RETURN_IF_ERROR(CheckShard(shard, config_.shards));
  std::vector<std::string> args = {Now(), StrCat(config_.stats_sample)};
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->stats, shard, std::move(args)));
  const auto& e = reply.elements();
  if (e.size() < 6 || (e.size() - 6) % 2 != 0) co_return BadReply("stats.lua", reply);
  ShardStats s;
  s.shard = shard;
  s.ready = e[0].integer();
  s.delayed = e[1].integer();
  s.leased = e[2].integer();
  s.dead = e[3].integer();
  s.oldest_ready_age = absl::Milliseconds(e[4].integer());
  s.ready_accounts = e[5].integer();
  for (size_t i = 6; i < e.size(); i += 2) {
    const std::string_view name = e[i].str();
    const int64_t value = e[i + 1].integer();
    if (name.starts_with("e:")) {
      s.enqueued[std::string(name.substr(2))] = value;
    } else if (name.starts_with("o:")) {
      // "o:<kind>:<outcome>"; the outcome never contains ':' (a kind might).
      const size_t colon = name.rfind(':');
      if (colon > 2) {
        s.finished[{std::string(name.substr(2, colon - 2)), std::string(name.substr(colon + 1))}] =
            value;
      }
    }
  }
  co_return s;
}

asio::awaitable<absl::StatusOr<DeadPage>> Queue::ListDead(int shard, int offset, int count) {
  HERALD_CO_RETURN_IF_ERROR(CheckShard(shard, config_.shards));
  if (offset < 0 || count < 1 || count > 1000) {
    co_return absl::InvalidArgumentError("offset must be >= 0 and count in [1, 1000]");
  }
  std::vector<std::string> args = {Now(), StrCat(offset), StrCat(count)};
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->list_dead, shard, std::move(args)));
  const auto& e = reply.elements();
  if (e.empty() || (e.size() - 1) % 7 != 0) co_return BadReply("list_dead.lua", reply);
  DeadPage page;
  page.total = e[0].integer();
  for (size_t i = 1; i < e.size(); i += 7) {
    page.jobs.push_back({.id = std::string(e[i].str()),
                         .kind = std::string(e[i + 1].str()),
                         .account = std::string(e[i + 2].str()),
                         .payload = std::string(e[i + 3].str()),
                         .attempts = static_cast<int>(e[i + 4].integer()),
                         .reason = std::string(e[i + 5].str()),
                         .died_at = absl::FromUnixMillis(e[i + 6].integer())});
  }
  co_return page;
}

}  // namespace herald::queue
