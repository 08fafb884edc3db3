#include <gtest/gtest.h>

#include <herald/metrics/readiness.h>

namespace herald::metrics {
namespace {

TEST(ReadinessTest, ReadyOnlyWhenEveryComponentIs) {
  Readiness readiness;
  EXPECT_TRUE(readiness.Ready());
  readiness.Set("redis", absl::OkStatus());
  readiness.Set("shutdown", absl::OkStatus());
  EXPECT_TRUE(readiness.Ready());
  readiness.Set("shutdown", absl::UnavailableError("draining"));
  EXPECT_FALSE(readiness.Ready());
  EXPECT_EQ(readiness.Report(), "redis: ok\nshutdown: draining\n");
  readiness.Set("shutdown", absl::OkStatus());
  EXPECT_TRUE(readiness.Ready());
}

}  // namespace
}  // namespace herald::metrics
