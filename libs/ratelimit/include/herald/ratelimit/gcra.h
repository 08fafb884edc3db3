// Rate limiting with GCRA (the generic cell rate algorithm): one timestamp per bucket, no
// background refill.
//
// Herald limits every upstream call twice: by the upstream team (the platform's per-team limit)
// and by the creator account (the agency's own pacing). In production the buckets live in Redis
// and are updated inside the queue's lease script (lua/gcra.lua, embedded here and prepended to
// the queue's scripts) so the limit holds across any number of worker processes. This header is
// the same arithmetic in C++, operation for operation: the queue uses it to reason about limits
// (tests, benchmarks), and tests check that Lua and C++ agree on the same inputs.
//
// Units: times are Unix microseconds (int64). A limit of `per_minute` with `burst` gives
//   interval  = ceil(60e6 / per_minute)
//   tolerance = interval * (burst - 1)
// A token is available at t iff max(tat, t) - t <= tolerance; taking one sets
// tat = max(tat, t) + interval. In any window of length w at most burst + floor(w / interval)
// tokens are taken, so never more than burst + per_minute * w / 1min. Taking n tokens at once is
// n single takes at the same instant, so the bound holds for the queue's multi-job visits too.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include <absl/status/status.h>
#include <absl/time/time.h>

#include <herald/common/clock.h>

namespace herald::ratelimit {

inline constexpr int64_t kMicrosPerMinute = 60'000'000;

// A rate limit. per_minute == 0 means unlimited; burst is how many tokens may be taken at once
// from an idle bucket (values below 1 count as 1).
struct Limit {
  int64_t per_minute = 0;
  int64_t burst = 1;

  friend bool operator==(const Limit&, const Limit&) = default;
};

// OK when per_minute is in [0, 60'000'000] (at most one token per microsecond) and burst in
// [1, 1'000'000]; otherwise kInvalidArgument naming the field.
absl::Status ValidateLimit(const Limit& limit);

// The limit under which at most `per_minute` tokens are taken in any minute (any 60 seconds,
// not only clock minutes) with bursts of up to `burst`, for a `per_minute` above the burst. A
// bucket gives its rate plus burst - 1 in the minute after a quiet spell (see above), so its rate
// is per_minute - burst + 1 (at least 1); above one a second, one less, so that the bound holds
// for windows up to one token interval longer than a minute and calls that reach the upstream a
// little unevenly still fit its per-minute count. With a second's worth of burst that is 98.3%
// of per_minute or more; with a burst of 1 at up to one a second, all of it. per_minute 0
// (unlimited) stays 0.
Limit AtMostPerMinute(int64_t per_minute, int64_t burst);

// The GCRA arithmetic for one limit. A value type; thread-compatible.
class Gcra {
 public:
  explicit Gcra(Limit limit);

  // Microseconds between tokens at the steady rate; 0 when unlimited.
  int64_t interval_us() const { return interval_us_; }
  // How far ahead of now the TAT may run while a token is still available.
  int64_t tolerance_us() const { return tolerance_us_; }

  // The earliest time at or after `now_us` at which the bucket holds a token.
  int64_t AllowAt(int64_t tat_us, int64_t now_us) const;
  // The TAT after taking one token at `now_us`. Precondition: AllowAt(tat_us, now_us) <= now_us.
  int64_t Take(int64_t tat_us, int64_t now_us) const;
  // How many tokens the bucket holds at `now_us`, at most `max` (>= 0): how many single Take()s
  // at `now_us` in a row would be allowed. Unlimited buckets hold `max` unless pushed back.
  int64_t Available(int64_t tat_us, int64_t now_us, int64_t max) const;
  // The TAT after taking `n` tokens at `now_us`, the same as `n` Take()s at `now_us`.
  // Precondition: Available(tat_us, now_us, n) == n.
  int64_t TakeN(int64_t tat_us, int64_t now_us, int64_t n) const;
  // The TAT after forbidding any token before `until_us` (upstream Retry-After feedback). Never
  // moves the TAT backwards.
  int64_t PushBack(int64_t tat_us, int64_t until_us) const;
  // The TAT of a bucket whose limit just changed to this one: debt run up under the old limit is
  // capped at what a full burst under this one leaves (now + tolerance + interval), so loosening
  // takes effect at once and tightening never grants more than this limit's burst.
  int64_t Clamp(int64_t tat_us, int64_t now_us) const;

 private:
  int64_t interval_us_;
  int64_t tolerance_us_;
};

// The GCRA snippet the queue's scripts are built from (lua/gcra.lua).
std::string_view GcraLua();

// A team bucket and an account bucket, taken together: a call needs a token from both, and
// when either is empty nothing is taken and the answer says when both will have one. This is the
// lease script's decision, kept in memory for a single process (and for tests of the math).
//
// Buckets are created on first use, unlimited until a limit is set. Changing a limit clamps the
// bucket's TAT (Gcra::Clamp). Thread-safe. The clock must outlive the limiter.
class HierarchicalLimiter {
 public:
  explicit HierarchicalLimiter(const Clock& clock) : clock_(clock) {}

  // Sets a bucket's limit (Gcra::Clamp applies to its TAT).
  void SetTeamLimit(std::string_view team, Limit limit);
  void SetAccountLimit(std::string_view account, Limit limit);

  struct Decision {
    bool allowed = false;
    // When allowed: now. Otherwise the earliest time both buckets hold a token (as far as is
    // known now; other accounts of the team may take the team's token first).
    absl::Time allow_at;
  };
  // Takes one token from the team's and the account's bucket, or none.
  Decision TryAcquire(std::string_view team, std::string_view account);

  // Upstream said "429, retry after `retry_after`": no token for the team before now + that.
  void PushBackTeam(std::string_view team, absl::Duration retry_after);

 private:
  struct Bucket {
    Limit limit;
    int64_t tat_us = 0;
  };

  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, Bucket, std::less<>> teams_;
  std::map<std::string, Bucket, std::less<>> accounts_;
};

}  // namespace herald::ratelimit
