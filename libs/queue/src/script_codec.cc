#include <map>
#include <string_view>
#include <utility>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/queue/record.h>
#include <herald/queue/script_codec.h>
#include <herald/queue/scripts.h>

namespace herald::queue::script {
namespace {

using redis::Reply;

constexpr size_t kMaxQuoted = 200;

int64_t ToMillis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

absl::Status Unexpected(ScriptId script, std::string_view what, const Reply& got) {
  std::string text = got.DebugString();
  if (text.size() > kMaxQuoted) text = StrCat(text.substr(0, kMaxQuoted), "...");
  return absl::InternalError(StrCat(ScriptName(script), ": expected ", what, ", got ", text));
}

// Checked element access: the reply is an array; its elements are checked one by one.
class Elements {
 public:
  Elements(ScriptId script, const Reply& reply) : script_(script), reply_(reply) {}

  // The array, when `reply` is one of `size` elements (or of at least `size` with `at_least`).
  absl::Status Open(std::string_view shape, size_t size, bool at_least = false) {
    if (reply_.type() != Reply::Type::kArray) return Unexpected(script_, shape, reply_);
    const size_t n = reply_.elements().size();
    if (at_least ? n < size : n != size) return Unexpected(script_, shape, reply_);
    return absl::OkStatus();
  }

  size_t size() const { return reply_.elements().size(); }

  absl::StatusOr<int64_t> Int(size_t i, std::string_view what) const {
    const Reply& e = reply_.elements().at(i);
    // Strictly an integer reply: a string holding digits is not what the scripts return.
    absl::StatusOr<int64_t> v = e.AsInteger();
    if (e.type() != Reply::Type::kInteger || !v.ok()) {
      return Unexpected(script_, StrCat(what, " (an integer) at [", i, "]"), e);
    }
    return *v;
  }

  absl::StatusOr<std::string_view> Text(size_t i, std::string_view what) const {
    const Reply& e = reply_.elements().at(i);
    if (e.type() != Reply::Type::kString) {
      return Unexpected(script_, StrCat(what, " (a string) at [", i, "]"), e);
    }
    return e.str();
  }

  absl::Status BadCode(size_t i, std::string_view what) const {
    return Unexpected(script_, StrCat("a known ", what, " code at [", i, "]"),
                      reply_.elements().at(i));
  }

  const Reply& reply() const { return reply_; }

 private:
  ScriptId script_;
  const Reply& reply_;
};

absl::StatusOr<EnqueueResult> ToEnqueueResult(const Elements& e, size_t i, std::string_view what) {
  HERALD_ASSIGN_OR_RETURN(const int64_t code, e.Int(i, what));
  switch (static_cast<EnqueueCode>(code)) {
    case EnqueueCode::kEnqueued:
      return EnqueueResult::kEnqueued;
    case EnqueueCode::kDuplicate:
      return EnqueueResult::kDuplicate;
    case EnqueueCode::kWrongTeam:
      return EnqueueResult::kWrongTeam;
  }
  return e.BadCode(i, what);
}

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
    case NackRequest::Mode::kDefer:
      return "defer";
  }
  return "retry";
}

// A result per job: an array of exactly `n` elements.
absl::Status OpenPerJob(Elements& e, size_t n) {
  return e.Open(StrCat("an array of ", n, " results"), n);
}

}  // namespace

// ---- enqueue.lua

std::vector<std::string> EncodeEnqueue(std::string now, absl::Duration idempotency_window,
                                       const std::vector<const JobSpec*>& jobs) {
  std::vector<std::string> args;
  args.reserve(2 + 8 * jobs.size());
  args.push_back(std::move(now));
  args.push_back(StrCat(ToMillis(idempotency_window)));
  for (const JobSpec* j : jobs) AppendJob(args, *j);
  return args;
}

absl::StatusOr<std::vector<EnqueueResult>> DecodeEnqueue(const Reply& reply, size_t jobs) {
  Elements e(ScriptId::kEnqueue, reply);
  HERALD_RETURN_IF_ERROR(OpenPerJob(e, jobs));
  std::vector<EnqueueResult> out;
  out.reserve(jobs);
  for (size_t i = 0; i < jobs; ++i) {
    HERALD_ASSIGN_OR_RETURN(EnqueueResult r, ToEnqueueResult(e, i, "enqueue"));
    out.push_back(r);
  }
  return out;
}

// ---- lease.lua

std::vector<std::string> EncodeLease(std::string now, const LeaseArgs& a) {
  return {std::move(now),          StrCat(a.max_jobs),   StrCat(ToMillis(a.lease)),
          StrCat(a.promote_limit), StrCat(a.reap_limit), StrCat(a.jobs_per_visit)};
}

absl::StatusOr<LeaseBatch> DecodeLease(const Reply& reply, int shard) {
  Elements e(ScriptId::kLease, reply);
  HERALD_RETURN_IF_ERROR(e.Open("{hint, throttled_account, throttled_team, expires, groups...}", 4,
                                /*at_least=*/true));
  LeaseBatch batch;
  HERALD_ASSIGN_OR_RETURN(const int64_t hint, e.Int(0, "hint_ms"));
  if (hint < -1) return e.BadCode(0, "hint_ms");
  if (hint >= 0) batch.next_due = absl::Milliseconds(hint);
  HERALD_ASSIGN_OR_RETURN(const int64_t by_account, e.Int(1, "throttled_account"));
  HERALD_ASSIGN_OR_RETURN(const int64_t by_team, e.Int(2, "throttled_team"));
  HERALD_ASSIGN_OR_RETURN(const int64_t expires_ms, e.Int(3, "expires_ms"));
  batch.throttled_by_account = static_cast<int>(by_account);
  batch.throttled_by_team = static_cast<int>(by_team);
  const absl::Time expires = absl::FromUnixMillis(expires_ms);
  // Per lease group: account, team, tenant, token prefix, n, then n x (id, record).
  size_t i = 4;
  while (i < e.size()) {
    if (e.size() - i < 5) {
      return Unexpected(ScriptId::kLease, StrCat("a whole lease group at [", i, "]"), reply);
    }
    HERALD_ASSIGN_OR_RETURN(const std::string_view account, e.Text(i, "account"));
    HERALD_ASSIGN_OR_RETURN(const std::string_view team, e.Text(i + 1, "team"));
    HERALD_ASSIGN_OR_RETURN(const std::string_view tenant, e.Text(i + 2, "tenant"));
    HERALD_ASSIGN_OR_RETURN(const std::string_view prefix, e.Text(i + 3, "token prefix"));
    HERALD_ASSIGN_OR_RETURN(const int64_t n, e.Int(i + 4, "group size"));
    if (n < 0 || static_cast<uint64_t>(n) > (e.size() - i - 5) / 2) {
      return e.BadCode(i + 4, "group size");
    }
    i += 5;
    for (int64_t k = 0; k < n; ++k, i += 2) {
      HERALD_ASSIGN_OR_RETURN(const std::string_view id, e.Text(i, "job id"));
      HERALD_ASSIGN_OR_RETURN(const std::string_view text, e.Text(i + 1, "job record"));
      const std::optional<JobRecord> record = DecodeJobRecord(text);
      if (!record.has_value() || record->account != account) {
        return Unexpected(ScriptId::kLease, StrCat("a record of ", account, " at [", i + 1, "]"),
                          reply.elements()[i + 1]);
      }
      LeasedJob& j = batch.jobs.emplace_back();
      j.shard = shard;
      j.id = std::string(id);
      j.token = StrCat(prefix, id);
      j.kind = std::string(record->kind);
      j.account = std::string(account);
      j.team = std::string(team);
      j.tenant = std::string(tenant);
      j.payload = std::string(record->payload);
      j.attempt = static_cast<int>(record->failed_attempts + 1);
      j.max_attempts = static_cast<int>(record->max_attempts);
      j.previous_outcome_unknown = record->previous_outcome_unknown;
      j.ready_at = absl::FromUnixMillis(record->ready_ms);
      j.lease_expires_at = expires;
    }
  }
  return batch;
}

// ---- ack.lua

AckCall EncodeAck(std::string now, absl::Duration idempotency_window,
                  const std::vector<const AckRequest*>& requests) {
  std::vector<std::pair<std::string_view, std::vector<size_t>>> by_prefix;
  std::map<std::string_view, size_t> prefix_index;
  for (size_t i = 0; i < requests.size(); ++i) {
    const JobRef& job = requests[i]->job;
    if (job.token.size() <= job.id.size() || !job.token.ends_with(job.id)) continue;
    const std::string_view prefix =
        std::string_view(job.token).substr(0, job.token.size() - job.id.size());
    auto [it, inserted] = prefix_index.emplace(prefix, by_prefix.size());
    if (inserted) by_prefix.push_back({prefix, {}});
    by_prefix[it->second].second.push_back(i);
  }
  AckCall call;
  if (by_prefix.empty()) return call;
  call.args = {std::move(now), StrCat(ToMillis(idempotency_window)), StrCat(by_prefix.size())};
  call.order.reserve(requests.size());
  for (const auto& [prefix, indices] : by_prefix) {
    call.args.push_back(std::string(prefix));
    call.args.push_back(StrCat(indices.size()));
    for (const size_t i : indices) {
      call.args.push_back(requests[i]->job.id);
      call.order.push_back(i);
    }
  }
  for (size_t k = 0; k < call.order.size(); ++k) {
    const AckRequest& a = *requests[call.order[k]];
    if (!a.next.has_value()) continue;
    call.args.push_back(StrCat(k + 1));
    AppendJob(call.args, *a.next);
  }
  return call;
}

absl::StatusOr<std::vector<AckResult>> DecodeAck(const Reply& reply, const AckCall& call,
                                                 size_t requests) {
  std::vector<AckResult> out(requests);  // kFenced unless the call says otherwise
  if (call.order.empty()) return out;
  Elements e(ScriptId::kAck, reply);
  HERALD_RETURN_IF_ERROR(e.Open(StrCat("an array of ", call.order.size(), " {ack, next} pairs"),
                                2 * call.order.size()));
  for (size_t k = 0; k < call.order.size(); ++k) {
    AckResult& r = out[call.order[k]];
    HERALD_ASSIGN_OR_RETURN(const int64_t ack, e.Int(2 * k, "ack"));
    switch (static_cast<AckCode>(ack)) {
      case AckCode::kDone:
        r.ack = FinishResult::kDone;
        break;
      case AckCode::kFenced:
        r.ack = FinishResult::kFenced;
        break;
      default:
        return e.BadCode(2 * k, "ack");
    }
    HERALD_ASSIGN_OR_RETURN(const int64_t next, e.Int(2 * k + 1, "next"));
    if (next == kNextNotTried) continue;
    // A fenced ack never tries its next job.
    if (r.ack == FinishResult::kFenced) return e.BadCode(2 * k + 1, "next (after a fenced ack)");
    HERALD_ASSIGN_OR_RETURN(r.next, ToEnqueueResult(e, 2 * k + 1, "next"));
  }
  return out;
}

// ---- nack.lua

std::vector<std::string> EncodeNack(std::string now, const std::vector<const NackRequest*>& nacks) {
  std::vector<std::string> args;
  args.reserve(1 + 6 * nacks.size());
  args.push_back(std::move(now));
  for (const NackRequest* n : nacks) {
    args.push_back(n->job.id);
    args.push_back(n->job.token);
    args.push_back(std::string(ModeName(n->mode)));
    args.push_back(StrCat(ToMillis(n->delay)));
    args.push_back(n->reason);
    args.push_back(n->outcome_unknown ? "1" : "0");
  }
  return args;
}

absl::StatusOr<std::vector<NackResult>> DecodeNack(const Reply& reply, size_t nacks) {
  Elements e(ScriptId::kNack, reply);
  HERALD_RETURN_IF_ERROR(OpenPerJob(e, nacks));
  std::vector<NackResult> out;
  out.reserve(nacks);
  for (size_t i = 0; i < nacks; ++i) {
    HERALD_ASSIGN_OR_RETURN(const int64_t code, e.Int(i, "nack"));
    switch (static_cast<NackCode>(code)) {
      case NackCode::kRetryScheduled:
        out.push_back(NackResult::kRetryScheduled);
        break;
      case NackCode::kDead:
        out.push_back(NackResult::kDead);
        break;
      case NackCode::kReturned:
        out.push_back(NackResult::kReturned);
        break;
      case NackCode::kFenced:
        out.push_back(NackResult::kFenced);
        break;
      default:
        return e.BadCode(i, "nack");
    }
  }
  return out;
}

// ---- heartbeat.lua

std::vector<std::string> EncodeHeartbeat(std::string now, absl::Duration lease,
                                         const std::vector<const JobRef*>& jobs) {
  std::vector<std::string> args;
  args.reserve(2 + 2 * jobs.size());
  args.push_back(std::move(now));
  args.push_back(StrCat(ToMillis(lease)));
  for (const JobRef* j : jobs) {
    args.push_back(j->id);
    args.push_back(j->token);
  }
  return args;
}

absl::StatusOr<std::vector<std::optional<absl::Time>>> DecodeHeartbeat(const Reply& reply,
                                                                       size_t jobs) {
  Elements e(ScriptId::kHeartbeat, reply);
  HERALD_RETURN_IF_ERROR(OpenPerJob(e, jobs));
  std::vector<std::optional<absl::Time>> out(jobs);
  for (size_t i = 0; i < jobs; ++i) {
    HERALD_ASSIGN_OR_RETURN(const int64_t expires_ms, e.Int(i, "expiry"));
    if (expires_ms >= 0) {
      out[i] = absl::FromUnixMillis(expires_ms);
    } else if (static_cast<HeartbeatCode>(expires_ms) != HeartbeatCode::kFenced) {
      return e.BadCode(i, "heartbeat");
    }
  }
  return out;
}

// ---- reap.lua

std::vector<std::string> EncodeReap(std::string now, int limit) {
  return {std::move(now), StrCat(limit)};
}

absl::StatusOr<int64_t> DecodeReap(const Reply& reply) {
  absl::StatusOr<int64_t> n = reply.AsInteger();
  if (reply.type() != Reply::Type::kInteger || !n.ok() || *n < 0) {
    return Unexpected(ScriptId::kReap, "a count of reaped jobs", reply);
  }
  return *n;
}

// ---- configure.lua

std::vector<std::string> EncodeConfigureAccount(std::string now, std::string account,
                                                const AccountSettings& settings) {
  return {std::move(now),           "account",
          std::move(account),       settings.team,
          settings.tenant,          StrCat(settings.per_minute),
          StrCat(settings.burst),   StrCat(settings.max_in_flight),
          settings.move ? "1" : "0"};
}

std::vector<std::string> EncodeConfigureTeam(std::string now, std::string team,
                                             const ratelimit::Limit& limit) {
  return {std::move(now), "team", std::move(team), StrCat(limit.per_minute), StrCat(limit.burst)};
}

std::vector<std::string> EncodeTenantWeight(std::string now, std::string tenant, int weight) {
  return {std::move(now), "tenant_weight", std::move(tenant), StrCat(weight)};
}

std::vector<std::string> EncodePause(std::string now, PauseTarget target, bool pause,
                                     std::string name) {
  std::string op =
      StrCat(pause ? "pause_" : "resume_", target == PauseTarget::kAccount ? "account" : "team");
  return {std::move(now), std::move(op), std::move(name)};
}

absl::StatusOr<ConfigureResult> DecodeConfigure(const Reply& reply) {
  Elements e(ScriptId::kConfigure, reply);
  HERALD_RETURN_IF_ERROR(e.Open("{code, team}", 2));
  HERALD_ASSIGN_OR_RETURN(const int64_t code, e.Int(0, "configure"));
  HERALD_ASSIGN_OR_RETURN(const std::string_view team, e.Text(1, "team"));
  ConfigureResult out;
  switch (static_cast<ConfigureCode>(code)) {
    case ConfigureCode::kDone:
      out.code = ConfigureCode::kDone;
      return out;
    case ConfigureCode::kWrongTeam:
      out.code = ConfigureCode::kWrongTeam;
      out.registered_team = std::string(team);
      return out;
  }
  return e.BadCode(0, "configure");
}

std::vector<std::string> EncodePushBack(std::string now, std::string team, absl::Duration delay) {
  return {std::move(now), "push_back", std::move(team), StrCat(absl::ToInt64Milliseconds(delay))};
}

std::vector<std::string> EncodeTake(std::string now, std::string team, std::string account) {
  return {std::move(now), "take", std::move(team), std::move(account)};
}

absl::StatusOr<TakeResult> DecodeTake(const Reply& reply) {
  Elements e(ScriptId::kConfigure, reply);
  HERALD_RETURN_IF_ERROR(e.Open("{code, wait_us}", 2));
  HERALD_ASSIGN_OR_RETURN(const int64_t code, e.Int(0, "take"));
  HERALD_ASSIGN_OR_RETURN(const int64_t wait_us, e.Int(1, "wait"));
  switch (static_cast<TakeCode>(code)) {
    case TakeCode::kTaken:
    case TakeCode::kPaused:
    case TakeCode::kUnknown:
      return TakeResult{.code = static_cast<TakeCode>(code)};
    case TakeCode::kWait:
      if (wait_us <= 0) return e.BadCode(1, "wait");
      return TakeResult{.code = TakeCode::kWait, .wait = absl::Microseconds(wait_us)};
  }
  return e.BadCode(0, "take");
}

// ---- stats.lua

std::vector<std::string> EncodeStats(std::string now, int sample) {
  return {std::move(now), StrCat(sample)};
}

absl::StatusOr<ShardStats> DecodeStats(const Reply& reply, int shard) {
  Elements e(ScriptId::kStats, reply);
  HERALD_RETURN_IF_ERROR(e.Open("{ready, delayed, leased, dead, oldest_ms, ring, counters...}", 6,
                                /*at_least=*/true));
  if ((e.size() - 6) % 2 != 0) {
    return Unexpected(ScriptId::kStats, "counters as name/value pairs", reply);
  }
  ShardStats s;
  s.shard = shard;
  HERALD_ASSIGN_OR_RETURN(s.ready, e.Int(0, "ready"));
  HERALD_ASSIGN_OR_RETURN(s.delayed, e.Int(1, "delayed"));
  HERALD_ASSIGN_OR_RETURN(s.leased, e.Int(2, "leased"));
  HERALD_ASSIGN_OR_RETURN(s.dead, e.Int(3, "dead"));
  HERALD_ASSIGN_OR_RETURN(const int64_t oldest_ms, e.Int(4, "oldest_ready_age_ms"));
  s.oldest_ready_age = absl::Milliseconds(oldest_ms);
  HERALD_ASSIGN_OR_RETURN(s.ready_accounts, e.Int(5, "ring_size"));
  for (size_t i = 6; i < e.size(); i += 2) {
    HERALD_ASSIGN_OR_RETURN(const std::string_view name, e.Text(i, "counter name"));
    HERALD_ASSIGN_OR_RETURN(const int64_t value, e.Int(i + 1, "counter value"));
    if (name.starts_with("e:")) {
      s.enqueued[std::string(name.substr(2))] = value;
    } else if (name.starts_with("o:")) {
      // "o:<kind>:<outcome>"; the outcome never contains ':' (a kind might).
      const size_t colon = name.rfind(':');
      if (colon <= 2) return e.BadCode(i, "counter name");
      s.finished[{std::string(name.substr(2, colon - 2)), std::string(name.substr(colon + 1))}] =
          value;
    }
    // Other counters are the scripts' own bookkeeping.
  }
  return s;
}

// ---- list_dead.lua

std::vector<std::string> EncodeListDead(std::string now, int offset, int count) {
  return {std::move(now), StrCat(offset), StrCat(count)};
}

namespace {

// The 7 fields per dead job from `from` on, as list_dead.lua and take_dead.lua write them.
absl::StatusOr<std::vector<DeadJob>> DecodeDeadJobs(ScriptId script, const Reply& reply,
                                                    Elements& e, size_t from) {
  if ((e.size() - from) % 7 != 0) return Unexpected(script, "7 fields per dead job", reply);
  std::vector<DeadJob> jobs;
  for (size_t i = from; i < e.size(); i += 7) {
    DeadJob& j = jobs.emplace_back();
    HERALD_ASSIGN_OR_RETURN(const std::string_view id, e.Text(i, "id"));
    HERALD_ASSIGN_OR_RETURN(const std::string_view kind, e.Text(i + 1, "kind"));
    HERALD_ASSIGN_OR_RETURN(const std::string_view account, e.Text(i + 2, "account"));
    HERALD_ASSIGN_OR_RETURN(const std::string_view payload, e.Text(i + 3, "payload"));
    HERALD_ASSIGN_OR_RETURN(const int64_t attempts, e.Int(i + 4, "attempts"));
    HERALD_ASSIGN_OR_RETURN(const std::string_view reason, e.Text(i + 5, "reason"));
    HERALD_ASSIGN_OR_RETURN(const int64_t died_ms, e.Int(i + 6, "dead_at_ms"));
    j.id = std::string(id);
    j.kind = std::string(kind);
    j.account = std::string(account);
    j.payload = std::string(payload);
    j.attempts = static_cast<int>(attempts);
    j.reason = std::string(reason);
    j.died_at = absl::FromUnixMillis(died_ms);
  }
  return jobs;
}

}  // namespace

absl::StatusOr<DeadPage> DecodeListDead(const Reply& reply) {
  Elements e(ScriptId::kListDead, reply);
  HERALD_RETURN_IF_ERROR(e.Open("{total, 7 fields per job...}", 1, /*at_least=*/true));
  DeadPage page;
  HERALD_ASSIGN_OR_RETURN(page.total, e.Int(0, "total"));
  HERALD_ASSIGN_OR_RETURN(page.jobs, DecodeDeadJobs(ScriptId::kListDead, reply, e, 1));
  return page;
}

// ---- take_dead.lua

std::vector<std::string> EncodeTakeDead(std::string now, int max, absl::Duration claim,
                                        absl::Duration retention) {
  return {std::move(now), "take", StrCat(max), StrCat(absl::ToInt64Milliseconds(claim)),
          StrCat(absl::ToInt64Milliseconds(retention))};
}

namespace {

std::vector<std::string> EncodeDeadIds(std::string now, std::string op,
                                       std::vector<std::string> ids) {
  std::vector<std::string> args = {std::move(now), std::move(op)};
  for (std::string& id : ids) args.push_back(std::move(id));
  return args;
}

}  // namespace

std::vector<std::string> EncodeReturnDead(std::string now, std::vector<std::string> ids) {
  return EncodeDeadIds(std::move(now), "return", std::move(ids));
}

std::vector<std::string> EncodeDoneDead(std::string now, std::vector<std::string> ids) {
  return EncodeDeadIds(std::move(now), "done", std::move(ids));
}

absl::StatusOr<std::vector<DeadJob>> DecodeTakeDead(const Reply& reply) {
  Elements e(ScriptId::kTakeDead, reply);
  HERALD_RETURN_IF_ERROR(e.Open("{7 fields per job...}", 0, /*at_least=*/true));
  return DecodeDeadJobs(ScriptId::kTakeDead, reply, e, 0);
}

absl::StatusOr<int64_t> DecodeReturnDead(const Reply& reply) {
  if (reply.type() != Reply::Type::kInteger) {
    return Unexpected(ScriptId::kTakeDead, "an integer", reply);
  }
  return reply.integer();
}

}  // namespace herald::queue::script
