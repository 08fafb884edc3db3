// Retry delays: exponential backoff with full jitter.
//
// The n-th retry of a job waits a uniformly random time in [0, min(cap, base * 2^n)], n counting
// from 0 for the first retry. Full jitter spreads retries of jobs that failed together (an
// upstream outage) instead of bringing them back in waves.
#pragma once

#include <absl/random/bit_gen_ref.h>
#include <absl/status/status.h>
#include <absl/time/time.h>

namespace herald::queue {

struct BackoffPolicy {
  absl::Duration base = absl::Seconds(1);
  absl::Duration cap = absl::Minutes(5);
};

// OK when 0 < base <= cap; otherwise kInvalidArgument naming the field.
absl::Status ValidateBackoffPolicy(const BackoffPolicy& policy);

// min(cap, base * 2^retry), without overflow for any retry >= 0 (negative counts as 0).
absl::Duration BackoffCeiling(const BackoffPolicy& policy, int retry);

// A delay drawn uniformly from [0, BackoffCeiling(policy, retry)], at millisecond resolution.
absl::Duration FullJitterBackoff(const BackoffPolicy& policy, int retry, absl::BitGenRef rng);

}  // namespace herald::queue
