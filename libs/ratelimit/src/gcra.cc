#include <algorithm>

#include <herald/common/strings.h>
#include <herald/ratelimit/gcra.h>

#include "ratelimit_lua.h"

namespace herald::ratelimit {

absl::Status ValidateLimit(const Limit& limit) {
  if (limit.per_minute < 0 || limit.per_minute > kMicrosPerMinute) {
    return absl::InvalidArgumentError(
        StrCat("per_minute must be in [0, ", kMicrosPerMinute, "], got ", limit.per_minute));
  }
  if (limit.burst < 1 || limit.burst > 1'000'000) {
    return absl::InvalidArgumentError(StrCat("burst must be in [1, 1000000], got ", limit.burst));
  }
  return absl::OkStatus();
}

Limit AtMostPerMinute(int64_t per_minute, int64_t burst) {
  burst = std::max<int64_t>(burst, 1);
  if (per_minute <= 0) return {.per_minute = 0, .burst = burst};
  // Tokens come an interval apart and the burst adds burst - 1: rate + burst - 1 tokens at most
  // in any minute. Above one a second, one more is left over for calls that reach the upstream
  // a little unevenly; at a second or more apart, that unevenness is far below an interval.
  const int64_t slack = per_minute > 60 ? 1 : 0;
  return {.per_minute = std::max<int64_t>(1, per_minute - burst + 1 - slack), .burst = burst};
}

// Each step below matches a line of lua/gcra.lua.
Gcra::Gcra(Limit limit)
    : interval_us_(
          limit.per_minute <= 0 ? 0 : (kMicrosPerMinute + limit.per_minute - 1) / limit.per_minute),
      tolerance_us_(interval_us_ * (std::max<int64_t>(limit.burst, 1) - 1)) {}

int64_t Gcra::AllowAt(int64_t tat_us, int64_t now_us) const {
  return std::max(tat_us - tolerance_us_, now_us);
}

int64_t Gcra::Take(int64_t tat_us, int64_t now_us) const {
  if (interval_us_ == 0) return tat_us;
  return std::max(tat_us, now_us) + interval_us_;
}

int64_t Gcra::Available(int64_t tat_us, int64_t now_us, int64_t max) const {
  if (tat_us - tolerance_us_ > now_us) return 0;
  if (interval_us_ == 0) return max;
  const int64_t base = std::max(tat_us, now_us);
  return std::min((now_us + tolerance_us_ - base) / interval_us_ + 1, max);
}

int64_t Gcra::TakeN(int64_t tat_us, int64_t now_us, int64_t n) const {
  if (interval_us_ == 0) return tat_us;
  return std::max(tat_us, now_us) + interval_us_ * n;
}

int64_t Gcra::PushBack(int64_t tat_us, int64_t until_us) const {
  return std::max(tat_us, until_us + tolerance_us_);
}

int64_t Gcra::Clamp(int64_t tat_us, int64_t now_us) const {
  return std::min(tat_us, now_us + tolerance_us_ + interval_us_);
}

std::string_view GcraLua() { return lua::kGcra; }

void HierarchicalLimiter::SetTeamLimit(std::string_view team, Limit limit) {
  std::lock_guard lock(mu_);
  auto it = teams_.find(team);
  if (it == teams_.end()) it = teams_.emplace(std::string(team), Bucket{}).first;
  it->second.limit = limit;
  it->second.tat_us = Gcra(limit).Clamp(it->second.tat_us, absl::ToUnixMicros(clock_.Now()));
}

void HierarchicalLimiter::SetAccountLimit(std::string_view account, Limit limit) {
  std::lock_guard lock(mu_);
  auto it = accounts_.find(account);
  if (it == accounts_.end()) it = accounts_.emplace(std::string(account), Bucket{}).first;
  it->second.limit = limit;
  it->second.tat_us = Gcra(limit).Clamp(it->second.tat_us, absl::ToUnixMicros(clock_.Now()));
}

HierarchicalLimiter::Decision HierarchicalLimiter::TryAcquire(std::string_view team,
                                                              std::string_view account) {
  const int64_t now = absl::ToUnixMicros(clock_.Now());
  std::lock_guard lock(mu_);
  auto t = teams_.find(team);
  if (t == teams_.end()) t = teams_.emplace(std::string(team), Bucket{}).first;
  auto a = accounts_.find(account);
  if (a == accounts_.end()) a = accounts_.emplace(std::string(account), Bucket{}).first;
  const Gcra team_gcra(t->second.limit);
  const Gcra account_gcra(a->second.limit);
  const int64_t allow_at = std::max(team_gcra.AllowAt(t->second.tat_us, now),
                                    account_gcra.AllowAt(a->second.tat_us, now));
  if (allow_at > now) return {.allowed = false, .allow_at = absl::FromUnixMicros(allow_at)};
  t->second.tat_us = team_gcra.Take(t->second.tat_us, now);
  a->second.tat_us = account_gcra.Take(a->second.tat_us, now);
  return {.allowed = true, .allow_at = absl::FromUnixMicros(now)};
}

void HierarchicalLimiter::PushBackTeam(std::string_view team, absl::Duration retry_after) {
  const int64_t now = absl::ToUnixMicros(clock_.Now());
  std::lock_guard lock(mu_);
  auto t = teams_.find(team);
  if (t == teams_.end()) t = teams_.emplace(std::string(team), Bucket{}).first;
  const Gcra gcra(t->second.limit);
  t->second.tat_us = gcra.PushBack(t->second.tat_us, now + absl::ToInt64Microseconds(retry_after));
}

}  // namespace herald::ratelimit
