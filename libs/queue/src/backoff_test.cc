#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/queue/backoff.h>

namespace herald::queue {
namespace {

TEST(BackoffTest, CeilingDoublesUpToTheCap) {
  const BackoffPolicy policy{.base = absl::Seconds(1), .cap = absl::Seconds(60)};
  EXPECT_EQ(BackoffCeiling(policy, 0), absl::Seconds(1));
  EXPECT_EQ(BackoffCeiling(policy, 1), absl::Seconds(2));
  EXPECT_EQ(BackoffCeiling(policy, 5), absl::Seconds(32));
  EXPECT_EQ(BackoffCeiling(policy, 6), absl::Seconds(60));
  EXPECT_EQ(BackoffCeiling(policy, 1000), absl::Seconds(60));  // no overflow
  EXPECT_EQ(BackoffCeiling(policy, -3), absl::Seconds(1));
}

TEST(BackoffTest, FullJitterStaysWithinZeroAndTheCeilingAndCoversIt) {
  const BackoffPolicy policy{.base = absl::Milliseconds(100), .cap = absl::Seconds(10)};
  std::mt19937_64 rng(42);
  for (int retry = 0; retry < 12; ++retry) {
    const absl::Duration ceiling = BackoffCeiling(policy, retry);
    absl::Duration lo = absl::InfiniteDuration();
    absl::Duration hi = absl::ZeroDuration();
    for (int i = 0; i < 2000; ++i) {
      const absl::Duration d = FullJitterBackoff(policy, retry, rng);
      ASSERT_GE(d, absl::ZeroDuration());
      ASSERT_LE(d, ceiling);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter: the draws span the whole interval, not just its upper part.
    EXPECT_LT(lo, ceiling / 10) << retry;
    EXPECT_GT(hi, ceiling * 9 / 10) << retry;
  }
}

TEST(BackoffTest, PolicyValidation) {
  EXPECT_TRUE(ValidateBackoffPolicy({}).ok());
  EXPECT_FALSE(ValidateBackoffPolicy({.base = absl::ZeroDuration()}).ok());
  EXPECT_FALSE(ValidateBackoffPolicy({.base = absl::Seconds(2), .cap = absl::Seconds(1)}).ok());
}

}  // namespace
}  // namespace herald::queue
