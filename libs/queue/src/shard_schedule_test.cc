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

// The claim of a lease call on `shard` made before any Ready().
ShardSchedule::Claim Unreadied(int shard) { return {.shard = shard}; }

TEST(ShardScheduleTest, AShardThatLeasedOrHintsZeroStaysDue) {
  ShardSchedule s(2, absl::Milliseconds(200));
  s.Leased(Unreadied(0), kT0, 32, absl::Milliseconds(50));
  s.Leased(Unreadied(1), kT0, 0, absl::ZeroDuration());
  EXPECT_TRUE(s.Due(0, kT0));
  EXPECT_TRUE(s.Due(1, kT0));
}

TEST(ShardScheduleTest, AnEmptyLeaseSkipsTheShardUntilItsHintCappedByIdleMax) {
  ShardSchedule s(3, absl::Milliseconds(200));
  s.Leased(Unreadied(0), kT0, 0, absl::Milliseconds(30));  // an account's next token in 30 ms
  s.Leased(Unreadied(1), kT0, 0, absl::Seconds(60));       // a delayed job in a minute: capped
  s.Leased(Unreadied(2), kT0, 0, std::nullopt);            // nothing scheduled
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
  const std::optional<ShardSchedule::Claim> claim = s.TryClaim(0, kT0);
  ASSERT_TRUE(claim.has_value());
  EXPECT_EQ(claim->shard, 0);
  EXPECT_FALSE(s.TryClaim(0, kT0).has_value());  // claimed: another loop moves on
  EXPECT_FALSE(s.Due(0, kT0 + absl::Milliseconds(199)));
  s.Leased(*claim, kT0 + absl::Milliseconds(1), 5, absl::ZeroDuration());
  EXPECT_TRUE(s.TryClaim(0, kT0 + absl::Milliseconds(1)).has_value());  // it had work: due again
  // A claim whose result never comes lapses after idle_max.
  EXPECT_TRUE(s.TryClaim(0, kT0 + absl::Milliseconds(201)).has_value());
}

TEST(ShardScheduleTest, AFailedCallBacksOffAndALaterLeaseOverrides) {
  ShardSchedule s(1, absl::Milliseconds(200));
  s.Failed(0, kT0, absl::Milliseconds(500));
  EXPECT_FALSE(s.Due(0, kT0 + absl::Milliseconds(499)));
  EXPECT_EQ(s.NextDue(), kT0 + absl::Milliseconds(500));
  s.Leased(Unreadied(0), kT0 + absl::Milliseconds(500), 1, std::nullopt);
  EXPECT_TRUE(s.Due(0, kT0 + absl::Milliseconds(500)));
}

TEST(ShardScheduleTest, ReadyWorkMakesAnIdleShardDueAndNeverPutsOneOff) {
  ShardSchedule s(2, absl::Milliseconds(200));
  s.Leased(Unreadied(0), kT0, 0, std::nullopt);
  s.Ready(0, kT0 + absl::Milliseconds(5));
  EXPECT_FALSE(s.Due(0, kT0 + absl::Milliseconds(4)));
  EXPECT_TRUE(s.Due(0, kT0 + absl::Milliseconds(5)));
  s.Failed(1, kT0, absl::Milliseconds(1));
  s.Ready(1, kT0 + absl::Milliseconds(50));  // due from 1 ms: stays so
  EXPECT_FALSE(s.Due(1, kT0));
  EXPECT_TRUE(s.Due(1, kT0 + absl::Milliseconds(1)));
}

TEST(ShardScheduleTest, WorkReadiedDuringALeaseCallKeepsTheShardDue) {
  ShardSchedule s(1, absl::Milliseconds(200));
  const std::optional<ShardSchedule::Claim> before = s.TryClaim(0, kT0);
  ASSERT_TRUE(before.has_value());
  // The call found nothing, but work was enqueued while it was under way: it may have been too
  // early to see it.
  s.Ready(0, kT0 + absl::Milliseconds(1));
  s.Leased(*before, kT0, 0, std::nullopt);
  EXPECT_TRUE(s.Due(0, kT0));
  // A call claimed after that work was enqueued saw it: its empty answer holds.
  const std::optional<ShardSchedule::Claim> after = s.TryClaim(0, kT0);
  ASSERT_TRUE(after.has_value());
  s.Leased(*after, kT0, 0, std::nullopt);
  EXPECT_FALSE(s.Due(0, kT0 + absl::Milliseconds(199)));
}

}  // namespace
}  // namespace herald::queue::internal
