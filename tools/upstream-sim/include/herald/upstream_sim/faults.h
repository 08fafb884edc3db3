// Fault injection for the simulated API (never for /_sim/ control endpoints).
//
// A rule applies globally or to one team (by the team of the request's API key), optionally
// only to some methods or paths, optionally only to its next `count` matching requests. For a
// matching request it adds latency and then draws at most one failure:
//
//   reset             close the connection without a response; nothing is applied
//   error             answer `error_status` (default 500; any 4xx or 5xx) with the upstream's
//                     error body, its `code` `error_code` (default "internal_error" for a 5xx,
//                     "injected_error" for a 4xx); nothing is applied
//   commit_then_lose  apply the request (mutations only: POST, PUT, PATCH, DELETE), then
//                     close the connection without the response
//
// Team rules win over global rules; among rules of the same scope the newest wins.
// Rules as JSON (POST /_sim/faults body, --faults flag; an object or an array of them):
//
//   {"team": "team-1", "methods": ["POST"], "path_contains": "/mass-messaging", "count": 1,
//    "latency_ms": {"fixed": 20, "jitter": 10},          // or {"p50": 20, "p90": 80, "p99": 300}
//    "error_rate": 0.1, "error_status": 503, "reset_rate": 0.05, "commit_then_lose_rate": 0.01}
//   {"path_contains": "/mass-messaging", "error_rate": 1, "error_status": 422,
//    "error_code": "media_already_used"}
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/base/thread_annotations.h>
#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>

namespace herald::upstream_sim {

struct LatencySpec {
  absl::Duration fixed;
  absl::Duration jitter;  // uniform in [0, jitter), added to fixed
  // Percentile points (quantile in (0, 1], latency), ascending; when set, fixed/jitter are
  // ignored and latency is interpolated linearly between points (from 0 at quantile 0).
  std::vector<std::pair<double, absl::Duration>> percentiles;

  bool empty() const {
    return fixed == absl::ZeroDuration() && jitter == absl::ZeroDuration() && percentiles.empty();
  }
  // The latency for a uniform draw `u` in [0, 1).
  absl::Duration Sample(double u) const;
};

struct FaultRule {
  std::string team;                  // empty: every request
  std::vector<std::string> methods;  // upper case; empty: every method
  std::string path_contains;         // empty: every path
  LatencySpec latency;
  double error_rate = 0;
  int error_status = 500;
  std::string error_code;  // empty: the status's default
  // The Retry-After (whole seconds) of an injected error; nullopt: 1 for a 429, none otherwise.
  std::optional<int> retry_after_s;
  double reset_rate = 0;
  double commit_then_lose_rate = 0;
  int64_t remaining = -1;  // matching requests left; -1: unlimited
};

enum class FaultAction { kNone, kError, kReset, kCommitThenLose };

struct FaultDecision {
  absl::Duration latency;
  FaultAction action = FaultAction::kNone;
  int status = 0;                    // for kError
  std::string code;                  // for kError: the error body's `code`
  std::optional<int> retry_after_s;  // for kError: the Retry-After header, when it has one
};

// Parses one rule or an array of rules. InvalidArgument naming the problem.
absl::StatusOr<std::vector<FaultRule>> ParseFaultRules(std::string_view json);

class FaultInjector {
 public:
  explicit FaultInjector(uint64_t seed = 1) : random_(seed) {}

  // Adds rules (newest first in precedence).
  void Add(std::vector<FaultRule> rules);
  // Removes every rule, or only those of `team` (empty string: only the global ones).
  void Clear(std::optional<std::string> team = std::nullopt);

  // The faults for one request. `team` is empty when the request has no valid key.
  FaultDecision Decide(std::string_view team, std::string_view method, std::string_view path);

  // The current rules as a JSON array: every one, or only those of `team` (empty string: only
  // the global ones).
  std::string ToJson(std::optional<std::string> team = std::nullopt) const;

 private:
  mutable absl::Mutex mu_;
  std::vector<FaultRule> rules_ ABSL_GUARDED_BY(mu_);  // newest last
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::upstream_sim
