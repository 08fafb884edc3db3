// A team's upstream rate limit holds across herald processes: two workers sharing one Redis send
// a campaign through the same team without a single 429 from the upstream, at no more than the
// team's rate.
//
// The simulator counts its limit in 5-second windows (--rate_limit_window) so a few seconds of
// sending cross several of them: without a limit shared by both processes the campaign's calls
// would leave in a burst and be refused.
#include <string>

#include <boost/json.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/herald_stack.h>
#include <herald/testing/net.h>
#include <herald/testing/observability.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/wait.h>
#include <herald/v1/campaign.grpc.pb.h>

namespace herald {
namespace {

using testing::BearerContext;
using testing::HeraldProcess;
using testing::HeraldStack;

constexpr char kAdminKey[] = "admin-key-limits";
constexpr char kEncryptionKey[] =
    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
constexpr int kAccounts = 6;
// The upstream admits 120 calls a minute (10 in each 5-second window); the team is set a little
// below it, as an operator sets it, so a call's way from its token to the upstream cannot carry
// it into a full window.
constexpr int kUpstreamPerMinute = 120;
constexpr int kTeamPerMinute = 108;

struct TeamCalls {
  int64_t admitted = 0;
  int64_t rate_limited = 0;
};

// The simulator's counts for team-1.
absl::StatusOr<TeamCalls> SimTeamCalls(uint16_t sim_port) {
  auto stats = testing::ReadSimStats(sim_port);
  if (!stats.ok()) return stats.status();
  for (const boost::json::value& team : stats->at("teams").as_array()) {
    if (team.at("id").as_string() != "team-1") continue;
    return TeamCalls{.admitted = team.at("requests").to_number<int64_t>(),
                     .rate_limited = team.at("rate_limited").to_number<int64_t>()};
  }
  return absl::NotFoundError("no team-1 in /_sim/stats");
}

// The upstream calls a herald process has made (its herald_upstream_requests_total series).
int64_t UpstreamCallsOf(const HeraldProcess& herald) {
  auto metrics = testing::HttpGet(herald.admin_port(), "/metrics");
  if (!metrics.ok()) return -1;
  return static_cast<int64_t>(testing::FamilySum(metrics->body, "herald_upstream_requests_total"));
}

TEST(RateLimitTest, TwoWorkersShareTheTeamLimitAndTheUpstreamRefusesNothing) {
  auto stack =
      HeraldStack::Start({.simulator_args = {"--teams=1", StrCat("--accounts_per_team=", kAccounts),
                                             "--fans_per_account=20", "--delivery_rate=2000",
                                             StrCat("--rate_limit_per_minute=", kUpstreamPerMinute),
                                             "--rate_limit_window=5s"},
                          .herald_args = {"--poll_interval=200ms", "--log_level=warn"},
                          .admin_key = kAdminKey,
                          .encryption_key = kEncryptionKey});
  ASSERT_TRUE(stack.ok()) << stack.status();
  HeraldStack& s = **stack;
  auto second = HeraldProcess::Start(
      {.args = {"serve", "--role=worker",
                StrCat("--upstream_url=http://127.0.0.1:", s.sim().port()), "--poll_interval=200ms",
                "--log_level=warn"},
       .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", kEncryptionKey}},
       .redis_port = s.redis().port()});
  ASSERT_TRUE(second.ok()) << second.status();

  auto key = testing::CreateTenant(s.channel(), kAdminKey, "agency");
  ASSERT_TRUE(key.ok()) << key.status();
  auto team = testing::CreateTeamWithAccounts(
      s.channel(), *key, "agency", {.rate_limit_per_minute = kTeamPerMinute, .burst = 1});
  ASSERT_TRUE(team.ok()) << team.status();
  ASSERT_EQ(team->accounts.size(), static_cast<size_t>(kAccounts));
  auto media = testing::CreateMediaAsset(s.channel(), *key, "agency", v1::MediaAsset::IMAGE,
                                         "https://cdn.example.com/a.jpg");
  ASSERT_TRUE(media.ok()) << media.status();
  const absl::StatusOr<TeamCalls> before = SimTeamCalls(s.sim().port());
  ASSERT_TRUE(before.ok()) << before.status();

  auto campaigns = v1::CampaignService::NewStub(s.channel());
  v1::Campaign created;
  const grpc::Status status = campaigns->CreateCampaign(
      BearerContext(*key).get(),
      testing::CampaignToFans("agency", team->accounts, "Paced", 1500, *media), &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const absl::Time start = absl::Now();
  v1::Campaign done;
  const bool final = testing::WaitFor(
      [&] {
        v1::GetCampaignRequest req;
        req.set_name(created.name());
        return campaigns->GetCampaign(BearerContext(*key).get(), req, &done).ok() &&
               (done.state() == v1::Campaign::COMPLETED || done.state() == v1::Campaign::FAILED ||
                done.state() == v1::Campaign::PARTIALLY_FAILED);
      },
      absl::Seconds(90), absl::Milliseconds(200));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(final) << "state " << v1::Campaign::State_Name(done.state()) << "\n"
                     << s.herald().Logs() << (*second)->Logs();
  EXPECT_EQ(done.state(), v1::Campaign::COMPLETED) << done.state_reason() << "\n"
                                                   << s.herald().Logs() << (*second)->Logs();

  const absl::StatusOr<TeamCalls> after = SimTeamCalls(s.sim().port());
  ASSERT_TRUE(after.ok()) << after.status();
  const int64_t calls = after->admitted - before->admitted;
  EXPECT_EQ(after->rate_limited, 0) << "the upstream refused calls over the team's limit";
  // Each account's upload, send and at least one read of its queue.
  EXPECT_GE(calls, 3 * kAccounts);
  // The limit bound: calls a token apart (the first and last may fall at either end of the run).
  EXPECT_GE(took, (calls - 2) * absl::Minutes(1) / kTeamPerMinute) << calls << " calls";
  // Both processes sent: the limit was shared, not one process's alone.
  EXPECT_GT(UpstreamCallsOf(s.herald()), 0);
  EXPECT_GT(UpstreamCallsOf(**second), 0);
}

}  // namespace
}  // namespace herald
