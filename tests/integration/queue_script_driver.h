// Typed calls of the queue's Lua scripts over a blocking connection, with an explicit `now`, so
// integration tests read as the queue's operations and stay deterministic. Arguments and replies
// go through the queue's own codec (herald/queue/script_codec.h): the tests speak exactly the
// protocol Queue speaks, and a reply the codec refuses fails the test.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/queue/job.h>
#include <herald/queue/script_codec.h>
#include <herald/queue/scripts.h>
#include <herald/redis/reply.h>
#include <herald/testing/redis_sync.h>

namespace herald::queue::testing {

using herald::testing::SyncRedis;
using herald::testing::SyncReply;

// 2023-11-14 22:13:20 UTC, in microseconds.
inline constexpr int64_t kT0 = 1'700'000'000'000'000;
inline constexpr int64_t kSecond = 1'000'000;
inline constexpr int64_t kMs = 1'000;

struct TestJob {
  std::string id;
  std::string account = "acct_a";
  std::string team = "team_1";
  std::string kind = "send";
  std::string tenant = "tenant_1";
  std::string payload = "p";
  int max_attempts = 3;
  int64_t delay_ms = 0;
};

struct Leased {
  std::string id, token, kind, account, team, tenant, payload;
  int64_t attempt = 0, max_attempts = 0;
  bool unknown = false;
  int64_t ready_ms = 0, expires_ms = 0;
};

struct LeaseResult {
  int64_t hint_ms = 0;
  int64_t throttled_account = 0;
  int64_t throttled_team = 0;
  std::vector<Leased> jobs;
};

using Mode = NackRequest::Mode;

// A blocking connection's reply as the codec reads it.
inline redis::Reply ToReply(const SyncReply& r) {
  switch (r.type) {
    case SyncReply::Type::kNil:
      return redis::Reply::Nil();
    case SyncReply::Type::kString:
      return redis::Reply::String(r.str);
    case SyncReply::Type::kStatus:
      return redis::Reply::Status(r.str);
    case SyncReply::Type::kError:
      return redis::Reply::Error(r.str);
    case SyncReply::Type::kInteger:
      return redis::Reply::Integer(r.integer);
    case SyncReply::Type::kArray: {
      std::vector<redis::Reply> elements;
      elements.reserve(r.elements.size());
      for (const SyncReply& e : r.elements) elements.push_back(ToReply(e));
      return redis::Reply::Array(std::move(elements));
    }
  }
  return redis::Reply::Nil();
}

class ScriptDriver {
 public:
  ScriptDriver(SyncRedis& redis, std::string tag) : redis_(redis), tag_(std::move(tag)) {}

  // Runs script `id` with `args` (ARGV, `now` first); a failed connection is a test failure.
  redis::Reply Run(ScriptId id, const std::vector<std::string>& args) {
    auto reply = redis_.Eval(ScriptSource(id), {tag_}, args);
    if (!reply.ok()) {
      ADD_FAILURE() << ScriptName(id) << ": " << reply.status();
      return redis::Reply::Error(reply.status().ToString());
    }
    return ToReply(*reply);
  }

  static JobSpec Spec(const TestJob& j) {
    return {.id = j.id,
            .kind = j.kind,
            .tenant = j.tenant,
            .team = j.team,
            .account = j.account,
            .payload = j.payload,
            .max_attempts = j.max_attempts,
            .delay = absl::Milliseconds(j.delay_ms)};
  }
  static JobRef Ref(const Leased& job) { return {.id = job.id, .token = job.token}; }

  std::vector<EnqueueResult> Enqueue(int64_t now, const std::vector<TestJob>& jobs,
                                     int64_t window_ms = 86'400'000) {
    std::vector<JobSpec> specs;
    for (const TestJob& j : jobs) specs.push_back(Spec(j));
    std::vector<const JobSpec*> refs;
    for (const JobSpec& j : specs) refs.push_back(&j);
    const redis::Reply reply =
        Run(ScriptId::kEnqueue,
            script::EncodeEnqueue(StrCat(now), absl::Milliseconds(window_ms), refs));
    return Decoded(script::DecodeEnqueue(reply, jobs.size()), ScriptId::kEnqueue);
  }
  std::optional<EnqueueResult> Enqueue1(int64_t now, const TestJob& job,
                                        int64_t window_ms = 86'400'000) {
    auto r = Enqueue(now, {job}, window_ms);
    if (r.empty()) return std::nullopt;
    return r[0];
  }

  // `visit_cap`: jobs per account visit (lease.lua's V); 1 is strict job-by-job round-robin.
  LeaseResult Lease(int64_t now, int max_jobs, int64_t lease_ms = 30'000, int visit_cap = 1) {
    const redis::Reply reply = Run(
        ScriptId::kLease, script::EncodeLease(StrCat(now), {.max_jobs = max_jobs,
                                                            .lease = absl::Milliseconds(lease_ms),
                                                            .promote_limit = 100,
                                                            .reap_limit = 100,
                                                            .jobs_per_visit = visit_cap}));
    const LeaseBatch batch = Decoded(script::DecodeLease(reply, 0), ScriptId::kLease);
    LeaseResult out;
    out.hint_ms = batch.next_due.has_value() ? absl::ToInt64Milliseconds(*batch.next_due) : -1;
    out.throttled_account = batch.throttled_by_account;
    out.throttled_team = batch.throttled_by_team;
    for (const LeasedJob& j : batch.jobs) {
      out.jobs.push_back({.id = j.id,
                          .token = j.token,
                          .kind = j.kind,
                          .account = j.account,
                          .team = j.team,
                          .tenant = j.tenant,
                          .payload = j.payload,
                          .attempt = j.attempt,
                          .max_attempts = j.max_attempts,
                          .unknown = j.previous_outcome_unknown,
                          .ready_ms = absl::ToUnixMillis(j.ready_at),
                          .expires_ms = absl::ToUnixMillis(j.lease_expires_at)});
    }
    return out;
  }

  // The {ack, next} results of acking `jobs` ({id, token} each), chaining `next[k]` (when given)
  // to jobs[k].
  std::vector<AckResult> AckAll(int64_t now,
                                const std::vector<std::pair<std::string, std::string>>& jobs,
                                const std::vector<std::optional<TestJob>>& next = {},
                                int64_t window_ms = 86'400'000) {
    std::vector<AckRequest> requests;
    for (size_t k = 0; k < jobs.size(); ++k) {
      AckRequest& a = requests.emplace_back();
      a.job = {.id = jobs[k].first, .token = jobs[k].second};
      if (k < next.size() && next[k].has_value()) a.next = Spec(*next[k]);
    }
    std::vector<const AckRequest*> refs;
    for (const AckRequest& a : requests) refs.push_back(&a);
    script::AckCall call = script::EncodeAck(StrCat(now), absl::Milliseconds(window_ms), refs);
    redis::Reply reply;
    if (!call.order.empty()) reply = Run(ScriptId::kAck, call.args);
    return Decoded(script::DecodeAck(reply, call, requests.size()), ScriptId::kAck);
  }
  // The ack result per job.
  std::vector<FinishResult> Ack(int64_t now,
                                const std::vector<std::pair<std::string, std::string>>& jobs,
                                int64_t window_ms = 86'400'000) {
    std::vector<FinishResult> out;
    for (const AckResult& r : AckAll(now, jobs, {}, window_ms)) {
      EXPECT_FALSE(r.next.has_value());
      out.push_back(r.ack);
    }
    return out;
  }
  std::optional<FinishResult> Ack1(int64_t now, const Leased& job) {
    auto r = Ack(now, {{job.id, job.token}});
    if (r.empty()) return std::nullopt;
    return r[0];
  }
  AckResult AckAndEnqueue(int64_t now, const Leased& job, const TestJob& next,
                          int64_t window_ms = 86'400'000) {
    auto r = AckAll(now, {{job.id, job.token}}, {next}, window_ms);
    return r.empty() ? AckResult{} : r[0];
  }

  std::optional<NackResult> Nack(int64_t now, const Leased& job, Mode mode, int64_t number,
                                 std::string reason = "", bool unknown = false) {
    const NackRequest request{.job = Ref(job),
                              .mode = mode,
                              .delay = absl::Milliseconds(number),
                              .reason = std::move(reason),
                              .outcome_unknown = unknown};
    const redis::Reply reply = Run(ScriptId::kNack, script::EncodeNack(StrCat(now), {&request}));
    auto r = Decoded(script::DecodeNack(reply, 1), ScriptId::kNack);
    if (r.empty()) return std::nullopt;
    return r[0];
  }

  // The new expiry (Unix ms), or nullopt when fenced.
  std::optional<int64_t> Heartbeat(int64_t now, const Leased& job, int64_t lease_ms) {
    const JobRef ref = Ref(job);
    const redis::Reply reply =
        Run(ScriptId::kHeartbeat,
            script::EncodeHeartbeat(StrCat(now), absl::Milliseconds(lease_ms), {&ref}));
    auto r = Decoded(script::DecodeHeartbeat(reply, 1), ScriptId::kHeartbeat);
    if (r.empty() || !r[0].has_value()) return std::nullopt;
    return absl::ToUnixMillis(*r[0]);
  }

  int64_t Reap(int64_t now, int limit = 100) {
    const redis::Reply reply = Run(ScriptId::kReap, script::EncodeReap(StrCat(now), limit));
    return Decoded(script::DecodeReap(reply), ScriptId::kReap);
  }

  script::ConfigureResult Configure(const std::vector<std::string>& args) {
    return Decoded(script::DecodeConfigure(Run(ScriptId::kConfigure, args)), ScriptId::kConfigure);
  }
  script::ConfigureResult ConfigureAccount(int64_t now, const std::string& account,
                                           const std::string& team, int64_t per_minute,
                                           int64_t burst, int64_t max_in_flight = 0) {
    return Configure(
        script::EncodeConfigureAccount(StrCat(now), account,
                                       {.tenant = "tenant_1",
                                        .team = team,
                                        .per_minute = per_minute,
                                        .burst = burst,
                                        .max_in_flight = static_cast<int>(max_in_flight)}));
  }
  void SetAccount(int64_t now, const std::string& account, const std::string& team,
                  int64_t per_minute, int64_t burst, int64_t max_in_flight = 0) {
    const script::ConfigureResult r =
        ConfigureAccount(now, account, team, per_minute, burst, max_in_flight);
    EXPECT_EQ(r.code, script::ConfigureCode::kDone) << r.registered_team;
  }
  void SetTeam(int64_t now, const std::string& team, int64_t per_minute, int64_t burst) {
    const script::ConfigureResult r = Configure(
        script::EncodeConfigureTeam(StrCat(now), team, {.per_minute = per_minute, .burst = burst}));
    EXPECT_EQ(r.code, script::ConfigureCode::kDone);
  }
  void Pause(int64_t now, script::PauseTarget target, const std::string& name, bool pause = true) {
    const script::ConfigureResult r =
        Configure(script::EncodePause(StrCat(now), target, pause, name));
    EXPECT_EQ(r.code, script::ConfigureCode::kDone);
  }
  void Resume(int64_t now, script::PauseTarget target, const std::string& name) {
    Pause(now, target, name, /*pause=*/false);
  }

  ShardStats GetStats(int64_t now) {
    return Decoded(
        script::DecodeStats(Run(ScriptId::kStats, script::EncodeStats(StrCat(now), 16)), 0),
        ScriptId::kStats);
  }

  DeadPage ListDead(int64_t now, int offset = 0, int count = 10) {
    return Decoded(script::DecodeListDead(Run(ScriptId::kListDead,
                                              script::EncodeListDead(StrCat(now), offset, count))),
                   ScriptId::kListDead);
  }

  // Claims what it takes for a minute; purges dead letters older than `retention` (zero: none).
  std::vector<DeadJob> TakeDead(int64_t now, int max = 10,
                                absl::Duration retention = absl::ZeroDuration()) {
    return Decoded(script::DecodeTakeDead(
                       Run(ScriptId::kTakeDead,
                           script::EncodeTakeDead(StrCat(now), max, absl::Minutes(1), retention))),
                   ScriptId::kTakeDead);
  }
  int64_t ReturnDead(int64_t now, std::vector<std::string> ids) {
    return Decoded(script::DecodeReturnDead(
                       Run(ScriptId::kTakeDead, script::EncodeReturnDead(StrCat(now), ids))),
                   ScriptId::kTakeDead);
  }
  int64_t DoneDead(int64_t now, std::vector<std::string> ids) {
    return Decoded(script::DecodeReturnDead(
                       Run(ScriptId::kTakeDead, script::EncodeDoneDead(StrCat(now), ids))),
                   ScriptId::kTakeDead);
  }

  const std::string& tag() const { return tag_; }

 private:
  // The decoded value; a reply the codec refuses fails the test (and yields a default).
  template <typename T>
  static T Decoded(absl::StatusOr<T> decoded, ScriptId id) {
    if (!decoded.ok()) {
      ADD_FAILURE() << ScriptName(id) << ": " << decoded.status();
      return T{};
    }
    return *std::move(decoded);
  }

  SyncRedis& redis_;
  std::string tag_;
};

}  // namespace herald::queue::testing
