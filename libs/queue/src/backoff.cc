#include <absl/random/distributions.h>

#include <herald/queue/backoff.h>

namespace herald::queue {

absl::Status ValidateBackoffPolicy(const BackoffPolicy& policy) {
  if (policy.base <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("backoff base must be positive");
  }
  if (policy.cap < policy.base) {
    return absl::InvalidArgumentError("backoff cap must be at least the base");
  }
  return absl::OkStatus();
}

absl::Duration BackoffCeiling(const BackoffPolicy& policy, int retry) {
  absl::Duration ceiling = policy.base;
  for (int i = 0; i < retry && ceiling < policy.cap; ++i) ceiling *= 2;
  return std::min(ceiling, policy.cap);
}

absl::Duration FullJitterBackoff(const BackoffPolicy& policy, int retry, absl::BitGenRef rng) {
  const int64_t ceiling_ms = absl::ToInt64Milliseconds(BackoffCeiling(policy, retry));
  return absl::Milliseconds(absl::Uniform<int64_t>(absl::IntervalClosedClosed, rng, 0, ceiling_ms));
}

}  // namespace herald::queue
