#include "quota.h"

#include <gtest/gtest.h>

namespace herald::api {
namespace {

TEST(TenantQuotaTest, BurstThenTheSustainedRatePerTenant) {
  ManualClock clock;
  TenantQuota quota({.per_second = 10, .burst = 5}, clock);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(quota.Take("acme"), absl::ZeroDuration()) << i;
  // The sixth call at the same instant waits one interval (100 ms).
  EXPECT_EQ(quota.Take("acme"), absl::Milliseconds(100));
  // Another tenant has its own bucket.
  EXPECT_EQ(quota.Take("globex"), absl::ZeroDuration());
  clock.Advance(absl::Milliseconds(100));
  EXPECT_EQ(quota.Take("acme"), absl::ZeroDuration());
  EXPECT_GT(quota.Take("acme"), absl::ZeroDuration());
  // A refused call takes nothing: after the wait it is allowed.
  const absl::Duration wait = quota.Take("acme");
  clock.Advance(wait);
  EXPECT_EQ(quota.Take("acme"), absl::ZeroDuration());
  // Over a long idle the bucket refills only up to the burst.
  clock.Advance(absl::Hours(1));
  int allowed = 0;
  while (quota.Take("acme") == absl::ZeroDuration()) ++allowed;
  EXPECT_EQ(allowed, 5);
}

TEST(TenantQuotaTest, DisabledAllowsEverything) {
  ManualClock clock;
  TenantQuota quota({}, clock);
  EXPECT_FALSE(quota.enabled());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(quota.Take("acme"), absl::ZeroDuration());
}

}  // namespace
}  // namespace herald::api
