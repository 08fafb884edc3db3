#include "shard_schedule.h"

#include <gtest/gtest.h>

namespace herald::queue::internal {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

TEST(ShardScheduleTest, EveryShardIsDueAtFirst) {
  ShardSchedule s(4, absl::Milliseconds(200));
  for (int shard = 0; shard < 4; ++shard) EXPECT_TRUE(s.Due(shard, kT0));
  EXPECT_LE(s.NextDue(), kT0);
}

TEST(ShardScheduleTest, AShardThatLeasedOrHintsZeroStaysDue) {
  ShardSchedule s(2, absl::Milliseconds(200));
  s.Leased(0, kT0, 32, absl::Milliseconds(50));
  s.Leased(1, kT0, 0, absl::ZeroDuration());
  EXPECT_TRUE(s.Due(0, kT0));
  EXPECT_TRUE(s.Due(1, kT0));
}

TEST(ShardScheduleTest, AnEmptyLeaseSkipsTheShardUntilItsHintCappedByIdleMax) {
  ShardSchedule s(3, absl::Milliseconds(200));
  s.Leased(0, kT0, 0, absl::Milliseconds(30));  // an account's next token in 30 ms
  s.Leased(1, kT0, 0, absl::Seconds(60));       // a delayed job in a minute: capped
  s.Leased(2, kT0, 0, std::nullopt);            // nothing scheduled
  EXPECT_FALSE(s.Due(0, kT0 + absl::Milliseconds(29)));
  EXPECT_TRUE(s.Due(0, kT0 + absl::Milliseconds(30)));
  EXPECT_FALSE(s.Due(1, kT0 + absl::Milliseconds(199)));
  EXPECT_TRUE(s.Due(1, kT0 + absl::Milliseconds(200)));
  EXPECT_FALSE(s.Due(2, kT0 + absl::Milliseconds(199)));
  EXPECT_TRUE(s.Due(2, kT0 + absl::Milliseconds(200)));
  EXPECT_EQ(s.NextDue(), kT0 + absl::Milliseconds(30));
}

TEST(ShardScheduleTest, OneCallerAtATimeClaimsADueShard) {
  ShardSchedule s(1, absl::Milliseconds(200));
  EXPECT_TRUE(s.TryClaim(0, kT0));
  EXPECT_FALSE(s.TryClaim(0, kT0));  // claimed: another loop moves on
  EXPECT_FALSE(s.Due(0, kT0 + absl::Milliseconds(199)));
  s.Leased(0, kT0 + absl::Milliseconds(1), 5, absl::ZeroDuration());
  EXPECT_TRUE(s.TryClaim(0, kT0 + absl::Milliseconds(1)));  // it had work: due again
  // A claim whose result never comes lapses after idle_max.
  EXPECT_TRUE(s.TryClaim(0, kT0 + absl::Milliseconds(201)));
}

TEST(ShardScheduleTest, AFailedCallBacksOffAndALaterLeaseOverrides) {
  ShardSchedule s(1, absl::Milliseconds(200));
  s.Failed(0, kT0, absl::Milliseconds(500));
  EXPECT_FALSE(s.Due(0, kT0 + absl::Milliseconds(499)));
  EXPECT_EQ(s.NextDue(), kT0 + absl::Milliseconds(500));
  s.Leased(0, kT0 + absl::Milliseconds(500), 1, std::nullopt);
  EXPECT_TRUE(s.Due(0, kT0 + absl::Milliseconds(500)));
}

}  // namespace
}  // namespace herald::queue::internal
