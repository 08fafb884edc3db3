#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/upstream_sim/faults.h>

namespace herald::upstream_sim {
namespace {

using ::testing::HasSubstr;

std::vector<FaultRule> Rules(std::string_view json) {
  auto rules = ParseFaultRules(json);
  EXPECT_TRUE(rules.ok()) << rules.status();
  return rules.ok() ? *rules : std::vector<FaultRule>{};
}

TEST(FaultsTest, CertainFaultsAlwaysFire) {
  FaultInjector faults;
  faults.Add(Rules(R"({"error_rate":1.0,"error_status":503})"));
  for (int i = 0; i < 20; ++i) {
    const FaultDecision d = faults.Decide("team-1", "GET", "/api/accounts");
    EXPECT_EQ(d.action, FaultAction::kError);
    EXPECT_EQ(d.status, 503);
    EXPECT_EQ(d.code, "internal_error");
  }
  faults.Clear();
  faults.Add(Rules(R"({"error_rate":1,"error_status":422,"error_code":"media_already_used"})"));
  EXPECT_EQ(faults.Decide("t", "POST", "/api/x").code, "media_already_used");
  faults.Clear();
  faults.Add(Rules(R"({"error_rate":1,"error_status":404})"));
  EXPECT_EQ(faults.Decide("t", "POST", "/api/x").code, "injected_error");
  EXPECT_FALSE(faults.Decide("t", "POST", "/api/x").retry_after_s.has_value());
  faults.Clear();
  faults.Add(Rules(R"({"error_rate":1,"error_status":429})"));
  EXPECT_EQ(faults.Decide("t", "GET", "/api/x").retry_after_s, 1);
  faults.Clear();
  faults.Add(Rules(R"({"error_rate":1,"error_status":429,"retry_after_s":30})"));
  EXPECT_EQ(faults.Decide("t", "GET", "/api/x").retry_after_s, 30);
  faults.Clear();
  faults.Add(Rules(R"({"reset_rate":1})"));
  EXPECT_EQ(faults.Decide("", "GET", "/api/x").action, FaultAction::kReset);
  faults.Clear();
  faults.Add(Rules(R"({"commit_then_lose_rate":1})"));
  EXPECT_EQ(faults.Decide("t", "POST", "/api/x").action, FaultAction::kCommitThenLose);
  // Reads have nothing to commit.
  EXPECT_EQ(faults.Decide("t", "GET", "/api/x").action, FaultAction::kNone);
  faults.Clear();
  EXPECT_EQ(faults.Decide("t", "POST", "/api/x").action, FaultAction::kNone);
}

TEST(FaultsTest, RatesAreApproximatelyHonoured) {
  FaultInjector faults(7);
  faults.Add(Rules(R"({"error_rate":0.25})"));
  int errors = 0;
  for (int i = 0; i < 4000; ++i)
    errors += faults.Decide("", "GET", "/").action == FaultAction::kError;
  EXPECT_NEAR(errors / 4000.0, 0.25, 0.03);
}

TEST(FaultsTest, TeamRulesWinAndFiltersApply) {
  FaultInjector faults;
  faults.Add(Rules(R"([{"error_rate":1},
                       {"team":"team-2","reset_rate":1,"methods":["post"],"path_contains":"/mass-messaging"}])"));
  EXPECT_EQ(faults.Decide("team-2", "POST", "/api/a/mass-messaging").action, FaultAction::kReset);
  // The team rule does not match this path, so the global rule applies.
  EXPECT_EQ(faults.Decide("team-2", "POST", "/api/a/user-lists").action, FaultAction::kError);
  EXPECT_EQ(faults.Decide("team-1", "POST", "/api/a/mass-messaging").action, FaultAction::kError);
  faults.Clear(std::string(""));
  EXPECT_EQ(faults.Decide("team-1", "POST", "/api/a/mass-messaging").action, FaultAction::kNone);
  EXPECT_THAT(faults.ToJson(), HasSubstr("team-2"));
  EXPECT_EQ(faults.ToJson(std::string("team-1")), "[]");
  EXPECT_THAT(faults.ToJson(std::string("team-2")), HasSubstr("team-2"));
}

TEST(FaultsTest, CountLimitsARule) {
  FaultInjector faults;
  faults.Add(Rules(R"({"error_rate":1,"count":2})"));
  EXPECT_EQ(faults.Decide("", "GET", "/").action, FaultAction::kError);
  EXPECT_EQ(faults.Decide("", "GET", "/").action, FaultAction::kError);
  EXPECT_EQ(faults.Decide("", "GET", "/").action, FaultAction::kNone);
  EXPECT_EQ(faults.ToJson(), "[]");
}

TEST(FaultsTest, LatencyDistributions) {
  LatencySpec fixed{.fixed = absl::Milliseconds(20), .jitter = absl::Milliseconds(10)};
  EXPECT_EQ(fixed.Sample(0), absl::Milliseconds(20));
  EXPECT_EQ(fixed.Sample(0.5), absl::Milliseconds(25));
  auto rules = Rules(R"({"latency_ms":{"p50":10,"p90":50,"p99":200}})");
  ASSERT_EQ(rules.size(), 1u);
  const LatencySpec& p = rules[0].latency;
  EXPECT_EQ(p.Sample(0.5), absl::Milliseconds(10));
  EXPECT_EQ(p.Sample(0.9), absl::Milliseconds(50));
  EXPECT_EQ(p.Sample(0.25), absl::Milliseconds(5));
  EXPECT_EQ(p.Sample(0.995), absl::Milliseconds(200));
  EXPECT_EQ(p.Sample(0.7), absl::Milliseconds(30));
}

TEST(FaultsTest, RejectsBadRules) {
  auto error = [](std::string_view json) {
    auto r = ParseFaultRules(json);
    return r.ok() ? std::string("ok") : std::string(r.status().message());
  };
  EXPECT_THAT(error(R"({"error_rate":2})"), HasSubstr("error_rate"));
  EXPECT_THAT(error(R"({"error_rate":0.6,"reset_rate":0.6})"), HasSubstr("must not exceed 1"));
  EXPECT_THAT(error(R"({"error_status":399})"), HasSubstr("4xx or 5xx"));
  EXPECT_THAT(error(R"({"error_status":600})"), HasSubstr("4xx or 5xx"));
  EXPECT_THAT(error(R"({"error_code":""})"), HasSubstr("error_code"));
  EXPECT_THAT(error(R"({"error_code":7})"), HasSubstr("error_code"));
  EXPECT_THAT(error(R"({"latency_ms":{"p50":50,"p90":10}})"), HasSubstr("must not decrease"));
  EXPECT_THAT(error(R"({"retry_after_s":-1})"), HasSubstr("retry_after_s"));
  EXPECT_THAT(error(R"({"retry_after_s":1.5})"), HasSubstr("retry_after_s"));
  EXPECT_THAT(error(R"({"retry_after_s":"3"})"), HasSubstr("retry_after_s"));
  EXPECT_THAT(error(R"({"bogus":1})"), HasSubstr("unknown key"));
  EXPECT_THAT(error("[1]"), HasSubstr("JSON object"));
}

}  // namespace
}  // namespace herald::upstream_sim
