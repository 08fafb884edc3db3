#include "quota.h"

#include <algorithm>

namespace herald::api {

TenantQuota::TenantQuota(QuotaConfig config, const Clock& clock)
    : config_(config),
      clock_(clock),
      interval_(config.per_second > 0 ? absl::Seconds(1) / config.per_second
                                      : absl::ZeroDuration()) {}

absl::Duration TenantQuota::Take(std::string_view tenant) {
  if (!enabled()) return absl::ZeroDuration();
  const absl::Time now = clock_.Now();
  const absl::Duration tolerance = interval_ * std::max(config_.burst - 1, 0);
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = tat_.try_emplace(std::string(tenant), now);
  const absl::Time tat = std::max(it->second, now);
  const absl::Time allowed_at = tat - tolerance;
  if (now < allowed_at) return allowed_at - now;
  it->second = tat + interval_;
  return absl::ZeroDuration();
}

}  // namespace herald::api
