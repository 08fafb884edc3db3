#include <vector>

#include <gtest/gtest.h>

#include <herald/metrics/metrics.h>
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

TEST(ReadinessTest, EachComponentIsAGauge) {
  Registry registry;
  Readiness readiness(&registry);
  readiness.Set("redis", absl::UnavailableError("PING refused: NOAUTH"));
  readiness.Set("lifecycle", absl::OkStatus());
  std::string text = registry.Serialize();
  EXPECT_NE(text.find("herald_ready{component=\"redis\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("herald_ready{component=\"lifecycle\"} 1\n"), std::string::npos) << text;
  readiness.Set("redis", absl::OkStatus());
  readiness.Set("lifecycle", absl::UnavailableError("draining"));
  text = registry.Serialize();
  EXPECT_NE(text.find("herald_ready{component=\"redis\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("herald_ready{component=\"lifecycle\"} 0\n"), std::string::npos) << text;
}

TEST(ReadinessTest, AWatcherHearsEachChangeOnce) {
  Readiness readiness;
  readiness.Set("lifecycle", absl::UnavailableError("starting"));
  std::vector<bool> heard;
  readiness.Watch([&heard](bool ready) { heard.push_back(ready); });
  readiness.Set("redis", absl::UnavailableError("connecting"));  // still not ready: nothing
  readiness.Set("redis", absl::OkStatus());
  readiness.Set("lifecycle", absl::OkStatus());  // ready
  readiness.Set("redis", absl::OkStatus());      // no change
  readiness.Set("lifecycle", absl::UnavailableError("draining"));
  EXPECT_EQ(heard, (std::vector<bool>{false, true, false}));
  readiness.Watch(nullptr);
  readiness.Set("lifecycle", absl::OkStatus());
  EXPECT_EQ(heard.size(), 3u);
}

}  // namespace
}  // namespace herald::metrics
