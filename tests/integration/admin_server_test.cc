#include <atomic>
#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/metrics/admin_server.h>
#include <herald/testing/net.h>
#include <herald/testing/promtool.h>

namespace herald::metrics {
namespace {

using ::testing::HasSubstr;
using testing::HttpGet;
using testing::HttpRequest;
using ::testing::StartsWith;

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterProcessMetrics(registry_);
    auto& jobs = BuildCounter()
                     .Name("herald_jobs_total")
                     .Help("Jobs finished, by kind and outcome.")
                     .LabelNames({"kind", "outcome"})
                     .Register(registry_);
    jobs.Add({{"kind", "send_mass_message"}, {"outcome", "ok"}}).Increment(41);
    jobs.Add({{"kind", "odd \"kind\"\\with\nescapes"}, {"outcome", "dead"}}).Increment();
    auto& latency = BuildHistogram()
                        .Name("herald_upstream_call_seconds")
                        .Help("Upstream call latency.\nSecond help line.")
                        .LabelNames({"endpoint"})
                        .Buckets(ExponentialBuckets(0.001, 2, 12))
                        .Register(registry_);
    for (double v : {0.0005, 0.003, 0.2, 9.0}) latency.Add({{"endpoint", "send"}}).Observe(v);
    BuildGauge()
        .Name("herald_queue_depth")
        .Help("Jobs waiting.")
        .LabelNames({"shard", "state"})
        .Register(registry_)
        .Add({{"shard", "0"}, {"state", "ready"}})
        .Set(12);
    readiness_.Set("redis", absl::OkStatus());
    server_ = std::make_unique<AdminServer>(
        AdminServerConfig{.address = {"127.0.0.1", 0}, .max_request_bytes = 4096}, registry_,
        readiness_);
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  Registry registry_;
  Readiness readiness_;
  std::unique_ptr<AdminServer> server_;
  uint16_t port_ = 0;
};

TEST_F(AdminServerTest, MetricsAreServedAndPromtoolAcceptsThem) {
  auto res = HttpGet(port_, "/metrics");
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(res->body,
              HasSubstr("herald_jobs_total{kind=\"send_mass_message\",outcome=\"ok\"} 41\n"));
  EXPECT_THAT(res->body,
              HasSubstr("herald_upstream_call_seconds_bucket{endpoint=\"send\",le=\"+Inf\"} 4\n"));
  EXPECT_THAT(res->body, HasSubstr("process_resident_memory_bytes "));
  const absl::Status check = testing::PromtoolCheckMetrics(res->body);
  EXPECT_TRUE(check.ok()) << check << "\n" << res->body;
}

TEST_F(AdminServerTest, PromtoolRejectsBrokenExposition) {
  // Guards the check above: promtool must be able to fail.
  EXPECT_FALSE(testing::PromtoolCheckMetrics("# TYPE x counter\nx{a=\"unterminated} 1\n").ok());
}

TEST_F(AdminServerTest, HealthzIsOkWhileDraining) {
  readiness_.Set("shutdown", absl::UnavailableError("draining"));
  auto res = HttpGet(port_, "/healthz");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
}

// /healthz follows the event loops' beats: live while each beat within the stall, 503 naming the
// loop once one has been silent longer, live again at its next beat.
TEST(AdminServerLivenessTest, HealthzFailsWhileALoopHasStalled) {
  std::atomic<int64_t> now_s{1000};
  const Liveness::Clock clock = [&now_s] {
    return std::chrono::steady_clock::time_point(std::chrono::seconds(now_s.load()));
  };
  Registry registry;
  Readiness readiness;
  Liveness liveness(absl::Seconds(15), clock);
  AdminServer server(AdminServerConfig{.address = {"127.0.0.1", 0}}, registry, readiness,
                     &liveness);
  ASSERT_TRUE(server.Start().ok());
  const auto healthz = [&] { return HttpGet(server.port(), "/healthz"); };

  auto res = healthz();  // no loop has beaten yet
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");
  liveness.Beat("io");
  liveness.Beat("other");
  now_s += 15;
  res = healthz();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->body, "io: ok\nother: ok\n");

  liveness.Beat("other");
  now_s += 1;  // "io" silent for 16 s
  res = healthz();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, "io has not run for 16s (stalled past 15s)\n");

  liveness.Beat("io");
  res = healthz();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->status, 200) << res->body;
  server.Stop();
}

TEST_F(AdminServerTest, ReadyzFollowsComponents) {
  auto ready = HttpGet(port_, "/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(ready->body, "redis: ok\n");

  readiness_.Set("shutdown", absl::UnavailableError("draining"));
  auto draining = HttpGet(port_, "/readyz");
  ASSERT_TRUE(draining.ok());
  EXPECT_EQ(draining->status, 503);
  EXPECT_EQ(draining->body, "redis: ok\nshutdown: draining\n");
}

TEST_F(AdminServerTest, UnknownPathsAndMethodsAreRejected) {
  auto missing = HttpGet(port_, "/nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  auto post = HttpRequest(port_, "POST", "/metrics", "x");
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->headers["allow"], "GET, HEAD");
}

TEST_F(AdminServerTest, QueryStringsAreIgnoredAndHeadHasNoBody) {
  auto res = HttpRequest(port_, "HEAD", "/metrics?x=1");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(res->body.empty());
  EXPECT_GT(std::stoul(res->headers["content-length"]), 100u);
}

TEST_F(AdminServerTest, OversizedHeadersGet431) {
  auto res = HttpRequest(port_, "GET", "/metrics", "", {{"x-padding", std::string(8000, 'a')}});
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->status, 431);
}

TEST_F(AdminServerTest, StopClosesIdleConnectionsAndTheListener) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket idle(ioc);
  idle.connect({boost::asio::ip::make_address("127.0.0.1"), port_});
  server_->Stop();  // returns although a client keeps a connection open
  EXPECT_FALSE(testing::PortAcceptsConnections(port_));
  char byte;
  boost::system::error_code ec;
  idle.read_some(boost::asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec) << "the server should have closed the idle connection";
}

TEST(AdminServerStartTest, BusyPortIsAClearError) {
  Registry registry;
  Readiness readiness;
  AdminServer first({.address = {"127.0.0.1", 0}}, registry, readiness);
  ASSERT_TRUE(first.Start().ok());
  AdminServer second({.address = {"127.0.0.1", first.port()}}, registry, readiness);
  const absl::Status s = second.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), StartsWith("admin server: cannot listen on 127.0.0.1:"));
}

}  // namespace
}  // namespace herald::metrics
