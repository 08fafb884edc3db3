#include "backoff.h"

#include <gtest/gtest.h>

namespace herald::redis::internal {
namespace {

TEST(ReconnectDelayTest, DoublesFromMinUpToMax) {
  const absl::Duration min = absl::Milliseconds(50);
  const absl::Duration max = absl::Seconds(2);
  // random01 = 1 (the top of the jitter range) shows the undithered delay.
  EXPECT_EQ(ReconnectDelay(0, min, max, 1.0), absl::Milliseconds(50));
  EXPECT_EQ(ReconnectDelay(1, min, max, 1.0), absl::Milliseconds(100));
  EXPECT_EQ(ReconnectDelay(3, min, max, 1.0), absl::Milliseconds(400));
  EXPECT_EQ(ReconnectDelay(6, min, max, 1.0), absl::Seconds(2));
  EXPECT_EQ(ReconnectDelay(1000, min, max, 1.0), absl::Seconds(2));
  EXPECT_EQ(ReconnectDelay(-1, min, max, 1.0), absl::Milliseconds(50));
}

TEST(ReconnectDelayTest, JitterStaysInTheUpperHalf) {
  const absl::Duration min = absl::Milliseconds(100);
  const absl::Duration max = absl::Seconds(10);
  EXPECT_EQ(ReconnectDelay(2, min, max, 0.0), absl::Milliseconds(200));
  EXPECT_EQ(ReconnectDelay(2, min, max, 0.5), absl::Milliseconds(300));
  for (double r = 0; r < 1; r += 0.01) {
    const absl::Duration d = ReconnectDelay(4, min, max, r);
    EXPECT_GE(d, absl::Milliseconds(800));
    EXPECT_LE(d, absl::Milliseconds(1600));
  }
}

}  // namespace
}  // namespace herald::redis::internal
