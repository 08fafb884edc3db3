// Per-tenant API quotas: a token bucket (GCRA) per tenant in this process, so one tenant's
// burst of calls cannot take the API from the others.
//
//   TenantQuota quota({.per_second = 200, .burst = 400}, clock);
//   if (absl::Duration wait = quota.Take("acme"); wait > absl::ZeroDuration()) { refuse }
//
// Per process: with N api replicas a tenant gets up to N times the rate. Thread-safe.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include <absl/container/flat_hash_map.h>
#include <absl/time/time.h>

#include <herald/common/clock.h>

namespace herald::api {

struct QuotaConfig {
  double per_second = 0;  // sustained calls per second per tenant; 0: no quota
  int burst = 0;          // calls a tenant may make at once after being idle (at least 1)
};

class TenantQuota {
 public:
  TenantQuota(QuotaConfig config, const Clock& clock);

  bool enabled() const { return config_.per_second > 0; }
  const QuotaConfig& config() const { return config_; }

  // Takes one call from `tenant`'s bucket: zero when allowed, else how long until one is (and
  // nothing is taken).
  absl::Duration Take(std::string_view tenant);

 private:
  const QuotaConfig config_;
  const Clock& clock_;
  const absl::Duration interval_;  // between two calls at the sustained rate
  std::mutex mu_;
  // Each tenant's theoretical arrival time: when its bucket is full again.
  absl::flat_hash_map<std::string, absl::Time> tat_;  // guarded by mu_
};

}  // namespace herald::api
