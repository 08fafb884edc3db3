#include <algorithm>
#include <map>

#include <absl/random/random.h>

#include <herald/common/setting_error.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/queue/layout.h>
#include <herald/queue/queue.h>
#include <herald/queue/script_codec.h>
#include <herald/queue/scripts.h>
#include <herald/redis/client.h>

namespace herald::queue {
namespace {

namespace asio = boost::asio;

constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxPayloadBytes = 1 << 20;

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
    return config::SettingError("queue.shards",
                                StrCat("must be in [1, 4096] (got ", config.shards, ")"));
  }
  if (config.idempotency_window < absl::ZeroDuration()) {
    return config::SettingError("queue.idempotency_window", "must not be negative");
  }
  if (config.dead_letter_retention != absl::ZeroDuration() &&
      config.dead_letter_retention < std::max(config.idempotency_window, absl::Milliseconds(1))) {
    return config::SettingError(
        "queue.dead_letter_retention",
        StrCat("must be 0 (kept for good) or at least the idempotency window (",
               absl::FormatDuration(config.idempotency_window), ")"));
  }
  if (config.lease_duration < absl::Milliseconds(1)) {
    return config::SettingError("queue.lease_duration", "must be at least 1ms");
  }
  HERALD_RETURN_IF_ERROR(ValidateBackoffPolicy(config.backoff));
  if (config.jobs_per_visit < 1 || config.jobs_per_visit > 1000) {
    return config::SettingError("queue.jobs_per_visit",
                                StrCat("must be in [1, 1000] (got ", config.jobs_per_visit, ")"));
  }
  if (config.max_jobs_per_enqueue_call < 1 || config.max_jobs_per_enqueue_call > 10'000) {
    return config::SettingError(
        "queue.max_jobs_per_enqueue_call",
        StrCat("must be in [1, 10000] (got ", config.max_jobs_per_enqueue_call, ")"));
  }
  if (config.promote_per_lease < 1 || config.reap_per_lease < 1 || config.stats_sample < 1) {
    return config::SettingError(
        "queue.promote_per_lease",
        "promote_per_lease, reap_per_lease and stats_sample must be positive");
  }
  return absl::OkStatus();
}

// Enqueue, ack (which may enqueue the next step) and nack (which may schedule a retry or
// dead-letter) must survive a failover: with --redis_wait_replicas they wait for replicas, as
// do the settings configure.lua makes (a pause, a limit or a weight an API caller is told was
// applied). The same script's token takes and push-backs do not: they are on every paced call's
// path, and a lost one costs at most a token. Leases, heartbeats and reaping are recovered by
// the lease timeout if lost.
struct Queue::Scripts {
  static constexpr auto kReplicated = redis::Script::Durability::kReplicated;
  redis::Script enqueue{ScriptSource(ScriptId::kEnqueue), kReplicated};
  redis::Script lease{ScriptSource(ScriptId::kLease)};
  redis::Script ack{ScriptSource(ScriptId::kAck), kReplicated};
  redis::Script nack{ScriptSource(ScriptId::kNack), kReplicated};
  redis::Script heartbeat{ScriptSource(ScriptId::kHeartbeat)};
  redis::Script reap{ScriptSource(ScriptId::kReap)};
  redis::Script configure{ScriptSource(ScriptId::kConfigure), kReplicated};
  redis::Script limiter{ScriptSource(ScriptId::kConfigure)};  // take and push_back
  redis::Script stats{ScriptSource(ScriptId::kStats)};
  redis::Script list_dead{ScriptSource(ScriptId::kListDead)};
  redis::Script take_dead{ScriptSource(ScriptId::kTakeDead)};
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
  const size_t chunk = static_cast<size_t>(config_.max_jobs_per_enqueue_call);
  for (const auto& group : groups) {
    const int shard = group.first;
    const std::vector<size_t>& indices = group.second;
    for (size_t first = 0; first < indices.size(); first += chunk) {
      const size_t last = std::min(indices.size(), first + chunk);
      std::vector<const JobSpec*> call_jobs;
      call_jobs.reserve(last - first);
      for (size_t k = first; k < last; ++k) call_jobs.push_back(&jobs[indices[k]]);
      std::vector<std::string> args =
          script::EncodeEnqueue(Now(), config_.idempotency_window, call_jobs);
      HERALD_CO_ASSIGN_OR_RETURN(
          redis::Reply reply, co_await EvalOn(client_, scripts_->enqueue, shard, std::move(args)));
      HERALD_CO_ASSIGN_OR_RETURN(std::vector<EnqueueResult> call_results,
                                 script::DecodeEnqueue(reply, call_jobs.size()));
      for (size_t k = first; k < last; ++k) results[indices[k]] = call_results[k - first];
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
  std::vector<std::string> args =
      script::EncodeLease(Now(), {.max_jobs = max_jobs,
                                  .lease = lease,
                                  .promote_limit = config_.promote_per_lease,
                                  .reap_limit = config_.reap_per_lease,
                                  .jobs_per_visit = config_.jobs_per_visit});
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->lease, shard, std::move(args)));
  co_return script::DecodeLease(reply, shard);
}

asio::awaitable<absl::StatusOr<std::vector<AckResult>>> Queue::Ack(std::vector<AckRequest> acks) {
  for (const AckRequest& a : acks) {
    HERALD_CO_RETURN_IF_ERROR(CheckShard(a.job.shard, config_.shards));
    if (a.next.has_value()) HERALD_CO_RETURN_IF_ERROR(ValidateNextStep(a.job.shard, *a.next));
  }
  std::vector<AckResult> results(acks.size());
  const auto groups = GroupByShard(acks, [](const AckRequest& a) { return a.job.shard; });
  for (const auto& group : groups) {
    const int shard = group.first;
    std::vector<const AckRequest*> group_acks;
    group_acks.reserve(group.second.size());
    for (const size_t i : group.second) group_acks.push_back(&acks[i]);
    script::AckCall call = script::EncodeAck(Now(), config_.idempotency_window, group_acks);
    redis::Reply reply;
    if (!call.order.empty()) {
      std::vector<std::string> args = std::move(call.args);
      HERALD_CO_ASSIGN_OR_RETURN(reply,
                                 co_await EvalOn(client_, scripts_->ack, shard, std::move(args)));
    }
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<AckResult> group_results,
                               script::DecodeAck(reply, call, group_acks.size()));
    for (size_t k = 0; k < group.second.size(); ++k) {
      results[group.second[k]] = std::move(group_results[k]);
    }
  }
  co_return results;
}

absl::Status Queue::ValidateNextStep(int shard, const JobSpec& next) const {
  HERALD_RETURN_IF_ERROR(ValidateJobSpec(next));
  if (ShardOf(next.team) != shard) {
    return absl::InvalidArgumentError(StrCat("next job ", next.id, " belongs to shard ",
                                             ShardOf(next.team), ", not the acked job's shard ",
                                             shard));
  }
  return absl::OkStatus();
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
    std::vector<const NackRequest*> group_nacks;
    group_nacks.reserve(indices.size());
    for (const size_t i : indices) group_nacks.push_back(&nacks[i]);
    std::vector<std::string> args = script::EncodeNack(Now(), group_nacks);
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await EvalOn(client_, scripts_->nack, shard, std::move(args)));
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<NackResult> group_results,
                               script::DecodeNack(reply, indices.size()));
    for (size_t k = 0; k < indices.size(); ++k) results[indices[k]] = group_results[k];
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

NackRequest Queue::RetryRequest(const LeasedJob& job, std::string reason,
                                bool outcome_unknown) const {
  thread_local absl::BitGen rng;
  return {.job = job.ref(),
          .mode = NackRequest::Mode::kRetry,
          .delay = FullJitterBackoff(config_.backoff, job.attempt - 1, rng),
          .reason = std::move(reason),
          .outcome_unknown = outcome_unknown};
}

NackRequest Queue::DeadLetterRequest(JobRef job, std::string reason) {
  return {
      .job = std::move(job), .mode = NackRequest::Mode::kDeadLetter, .reason = std::move(reason)};
}

NackRequest Queue::RateLimitedRequest(JobRef job, absl::Duration retry_after,
                                      bool outcome_unknown) {
  return {.job = std::move(job),
          .mode = NackRequest::Mode::kRateLimited,
          .delay = retry_after,
          .reason = "upstream rate limit",
          .outcome_unknown = outcome_unknown};
}

NackRequest Queue::ReleaseRequest(JobRef job, bool outcome_unknown) {
  return {.job = std::move(job),
          .mode = NackRequest::Mode::kRelease,
          .outcome_unknown = outcome_unknown};
}

NackRequest Queue::DeferRequest(JobRef job, std::string reason, absl::Duration delay,
                                bool outcome_unknown) {
  return {.job = std::move(job),
          .mode = NackRequest::Mode::kDefer,
          .delay = delay,
          .reason = std::move(reason),
          .outcome_unknown = outcome_unknown};
}

// Each request is a named local: g++ 12 mishandles aggregate temporaries that live across a
// co_await in the same full-expression.
asio::awaitable<absl::StatusOr<NackResult>> Queue::Retry(const LeasedJob& job, std::string reason,
                                                         bool outcome_unknown) {
  NackRequest request = RetryRequest(job, std::move(reason), outcome_unknown);
  co_return co_await NackOne(*this, std::move(request));
}

asio::awaitable<absl::StatusOr<NackResult>> Queue::DeadLetter(JobRef job, std::string reason) {
  NackRequest request = DeadLetterRequest(std::move(job), std::move(reason));
  co_return co_await NackOne(*this, std::move(request));
}

asio::awaitable<absl::StatusOr<NackResult>> Queue::RateLimited(JobRef job,
                                                               absl::Duration retry_after) {
  NackRequest request = RateLimitedRequest(std::move(job), retry_after);
  co_return co_await NackOne(*this, std::move(request));
}

asio::awaitable<absl::StatusOr<NackResult>> Queue::Release(JobRef job) {
  NackRequest request = ReleaseRequest(std::move(job));
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
    std::vector<const JobRef*> group_jobs;
    group_jobs.reserve(indices.size());
    for (const size_t i : indices) group_jobs.push_back(&jobs[i]);
    std::vector<std::string> args = script::EncodeHeartbeat(Now(), lease, group_jobs);
    HERALD_CO_ASSIGN_OR_RETURN(
        redis::Reply reply, co_await EvalOn(client_, scripts_->heartbeat, shard, std::move(args)));
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<std::optional<absl::Time>> group_results,
                               script::DecodeHeartbeat(reply, indices.size()));
    for (size_t k = 0; k < indices.size(); ++k) results[indices[k]] = group_results[k];
  }
  co_return results;
}

asio::awaitable<absl::StatusOr<int>> Queue::Reap(int shard, int limit) {
  HERALD_CO_RETURN_IF_ERROR(CheckShard(shard, config_.shards));
  std::vector<std::string> args = script::EncodeReap(Now(), limit);
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->reap, shard, std::move(args)));
  HERALD_CO_ASSIGN_OR_RETURN(const int64_t reaped, script::DecodeReap(reply));
  co_return static_cast<int>(reaped);
}

namespace {

// Runs configure.lua. `subject` names what is configured, for the wrong-team error.
asio::awaitable<absl::Status> Configure(redis::Client& client, const redis::Script& script,
                                        int shard, std::vector<std::string> args,
                                        std::string subject) {
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client, script, shard, std::move(args)));
  HERALD_CO_ASSIGN_OR_RETURN(script::ConfigureResult result, script::DecodeConfigure(reply));
  if (result.code == script::ConfigureCode::kWrongTeam) {
    co_return absl::FailedPreconditionError(
        StrCat(subject, " belongs to team ", result.registered_team));
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
  std::string subject = StrCat("account ", account);
  std::vector<std::string> args =
      script::EncodeConfigureAccount(Now(), std::move(account), settings);
  co_return co_await Configure(client_, scripts_->configure, shard, std::move(args),
                               std::move(subject));
}

asio::awaitable<absl::Status> Queue::SetTeamLimits(std::string team, ratelimit::Limit limit) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  HERALD_CO_RETURN_IF_ERROR(ratelimit::ValidateLimit(limit));
  const int shard = ShardOf(team);
  std::string subject = StrCat("team ", team);
  std::vector<std::string> args = script::EncodeConfigureTeam(Now(), std::move(team), limit);
  co_return co_await Configure(client_, scripts_->configure, shard, std::move(args),
                               std::move(subject));
}

asio::awaitable<absl::Status> Queue::PauseAccount(std::string team, std::string account) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  HERALD_CO_RETURN_IF_ERROR(CheckName("account", account));
  std::string subject = StrCat("account ", account);
  std::vector<std::string> args =
      script::EncodePause(Now(), script::PauseTarget::kAccount, /*pause=*/true, std::move(account));
  co_return co_await Configure(client_, scripts_->configure, ShardOf(team), std::move(args),
                               std::move(subject));
}

asio::awaitable<absl::Status> Queue::ResumeAccount(std::string team, std::string account) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  HERALD_CO_RETURN_IF_ERROR(CheckName("account", account));
  std::string subject = StrCat("account ", account);
  std::vector<std::string> args = script::EncodePause(Now(), script::PauseTarget::kAccount,
                                                      /*pause=*/false, std::move(account));
  co_return co_await Configure(client_, scripts_->configure, ShardOf(team), std::move(args),
                               std::move(subject));
}

asio::awaitable<absl::Status> Queue::SetTenantWeight(std::string tenant, int weight) {
  if (tenant.size() > kMaxNameBytes) {
    co_return absl::InvalidArgumentError(
        StrCat("tenant must be at most ", kMaxNameBytes, " bytes"));
  }
  if (weight < kMinTenantWeight || weight > kMaxTenantWeight) {
    co_return absl::InvalidArgumentError(StrCat("tenant weight must be in [", kMinTenantWeight,
                                                ", ", kMaxTenantWeight, "], got ", weight));
  }
  // Every shard: any of them may hold one of the tenant's teams.
  for (int shard = 0; shard < config_.shards; ++shard) {
    std::vector<std::string> args = script::EncodeTenantWeight(Now(), tenant, weight);
    std::string subject = StrCat("tenant ", tenant);
    HERALD_CO_RETURN_IF_ERROR(co_await Configure(client_, scripts_->configure, shard,
                                                 std::move(args), std::move(subject)));
  }
  co_return absl::OkStatus();
}

asio::awaitable<absl::Status> Queue::PauseTeam(std::string team) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  const int shard = ShardOf(team);
  std::string subject = StrCat("team ", team);
  std::vector<std::string> args =
      script::EncodePause(Now(), script::PauseTarget::kTeam, /*pause=*/true, std::move(team));
  co_return co_await Configure(client_, scripts_->configure, shard, std::move(args),
                               std::move(subject));
}

asio::awaitable<absl::Status> Queue::ResumeTeam(std::string team) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  const int shard = ShardOf(team);
  std::string subject = StrCat("team ", team);
  std::vector<std::string> args =
      script::EncodePause(Now(), script::PauseTarget::kTeam, /*pause=*/false, std::move(team));
  co_return co_await Configure(client_, scripts_->configure, shard, std::move(args),
                               std::move(subject));
}

asio::awaitable<absl::Status> Queue::PushBackTeam(std::string team, absl::Duration delay) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  if (delay < absl::ZeroDuration()) co_return absl::InvalidArgumentError("negative push-back");
  const int shard = ShardOf(team);
  std::string subject = StrCat("team ", team);
  std::vector<std::string> args = script::EncodePushBack(Now(), std::move(team), delay);
  co_return co_await Configure(client_, scripts_->limiter, shard, std::move(args),
                               std::move(subject));
}

asio::awaitable<absl::StatusOr<absl::Duration>> Queue::TakeToken(std::string team,
                                                                 std::string account) {
  HERALD_CO_RETURN_IF_ERROR(CheckName("team", team));
  if (!account.empty()) HERALD_CO_RETURN_IF_ERROR(CheckName("account", account));
  const int shard = ShardOf(team);
  std::string subject = account.empty() ? StrCat("team ", team) : StrCat("account ", account);
  std::vector<std::string> args = script::EncodeTake(Now(), std::move(team), std::move(account));
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->limiter, shard, std::move(args)));
  HERALD_CO_ASSIGN_OR_RETURN(const script::TakeResult taken, script::DecodeTake(reply));
  switch (taken.code) {
    case script::TakeCode::kTaken:
      co_return absl::ZeroDuration();
    case script::TakeCode::kWait:
      co_return taken.wait;
    case script::TakeCode::kPaused:
      co_return absl::FailedPreconditionError(StrCat(subject, " is paused"));
    case script::TakeCode::kUnknown:
      co_return absl::NotFoundError(StrCat(subject, " is not registered with the queue"));
  }
  co_return absl::InternalError("unreachable take code");
}

asio::awaitable<absl::StatusOr<ShardStats>> Queue::Stats(int shard) {
  HERALD_CO_RETURN_IF_ERROR(CheckShard(shard, config_.shards));
  std::vector<std::string> args = script::EncodeStats(Now(), config_.stats_sample);
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->stats, shard, std::move(args)));
  co_return script::DecodeStats(reply, shard);
}

asio::awaitable<absl::StatusOr<DeadPage>> Queue::ListDead(int shard, int offset, int count) {
  HERALD_CO_RETURN_IF_ERROR(CheckShard(shard, config_.shards));
  if (offset < 0 || count < 1 || count > 1000) {
    co_return absl::InvalidArgumentError("offset must be >= 0 and count in [1, 1000]");
  }
  std::vector<std::string> args = script::EncodeListDead(Now(), offset, count);
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->list_dead, shard, std::move(args)));
  co_return script::DecodeListDead(reply);
}

asio::awaitable<absl::StatusOr<std::vector<DeadJob>>> Queue::TakeDeadLetters(int shard, int max,
                                                                             absl::Duration claim) {
  HERALD_CO_RETURN_IF_ERROR(CheckShard(shard, config_.shards));
  if (max < 1 || max > 1000) co_return absl::InvalidArgumentError("max must be in [1, 1000]");
  if (claim < absl::Milliseconds(1)) co_return absl::InvalidArgumentError("claim must be >= 1ms");
  std::vector<std::string> args =
      script::EncodeTakeDead(Now(), max, claim, config_.dead_letter_retention);
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->take_dead, shard, std::move(args)));
  co_return script::DecodeTakeDead(reply);
}

asio::awaitable<absl::Status> Queue::ReturnDeadLetters(int shard, std::vector<std::string> ids) {
  co_return co_await EndDeadLetterClaims(shard, std::move(ids), script::EncodeReturnDead);
}

asio::awaitable<absl::Status> Queue::FinishDeadLetters(int shard, std::vector<std::string> ids) {
  co_return co_await EndDeadLetterClaims(shard, std::move(ids), script::EncodeDoneDead);
}

asio::awaitable<absl::Status> Queue::EndDeadLetterClaims(
    int shard, std::vector<std::string> ids,
    std::vector<std::string> (*encode)(std::string, std::vector<std::string>)) {
  HERALD_CO_RETURN_IF_ERROR(CheckShard(shard, config_.shards));
  if (ids.empty()) co_return absl::OkStatus();
  std::vector<std::string> args = encode(Now(), std::move(ids));
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await EvalOn(client_, scripts_->take_dead, shard, std::move(args)));
  co_return script::DecodeReturnDead(reply).status();
}

}  // namespace herald::queue
