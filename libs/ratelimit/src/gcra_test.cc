#include <deque>
#include <random>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/ratelimit/gcra.h>

namespace herald::ratelimit {
namespace {

using ::testing::HasSubstr;

TEST(GcraTest, IntervalRoundsUpSoTheRateNeverExceedsTheLimit) {
  EXPECT_EQ(Gcra({.per_minute = 60}).interval_us(), 1'000'000);
  EXPECT_EQ(Gcra({.per_minute = 7}).interval_us(), 8'571'429);  // 60e6/7 = 8571428.57
  EXPECT_EQ(Gcra({.per_minute = 0}).interval_us(), 0);
  EXPECT_EQ(Gcra({.per_minute = 60, .burst = 5}).tolerance_us(), 4'000'000);
  EXPECT_EQ(Gcra({.per_minute = 60, .burst = 0}).tolerance_us(), 0);  // burst < 1 counts as 1
}

TEST(GcraTest, IdleBucketAllowsBurstThenSteadyRate) {
  const Gcra gcra({.per_minute = 60, .burst = 3});
  const int64_t t0 = 1'700'000'000'000'000;
  int64_t tat = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(gcra.AllowAt(tat, t0), t0) << i;
    tat = gcra.Take(tat, t0);
  }
  EXPECT_EQ(gcra.AllowAt(tat, t0), t0 + 1'000'000);
  tat = gcra.Take(tat, t0 + 1'000'000);
  EXPECT_EQ(gcra.AllowAt(tat, t0 + 1'000'000), t0 + 2'000'000);
}

TEST(GcraTest, UnlimitedNeverWaitsButHonoursPushBack) {
  const Gcra gcra({.per_minute = 0});
  const int64_t t0 = 1'700'000'000'000'000;
  int64_t tat = 0;
  for (int i = 0; i < 1000; ++i) tat = gcra.Take(tat, t0);
  EXPECT_EQ(gcra.AllowAt(tat, t0), t0);
  tat = gcra.PushBack(tat, t0 + 5'000'000);
  EXPECT_EQ(gcra.AllowAt(tat, t0), t0 + 5'000'000);
  EXPECT_EQ(gcra.AllowAt(tat, t0 + 6'000'000), t0 + 6'000'000);
}

TEST(GcraTest, PushBackNeverMovesBackwards) {
  const Gcra gcra({.per_minute = 60, .burst = 2});
  const int64_t t0 = 1'700'000'000'000'000;
  int64_t tat = gcra.PushBack(0, t0 + 10'000'000);
  EXPECT_EQ(gcra.AllowAt(tat, t0), t0 + 10'000'000);
  EXPECT_EQ(gcra.PushBack(tat, t0 + 1'000'000), tat);
}

// The property the queue relies on: in every window of length w, at most burst + w/interval
// tokens, however greedily they are taken.
TEST(GcraTest, NoWindowEverExceedsBurstPlusRate) {
  std::mt19937_64 rng(7);
  for (const Limit limit : {Limit{60, 1}, Limit{600, 10}, Limit{7, 3}, Limit{1000, 50}}) {
    const Gcra gcra(limit);
    int64_t now = 1'700'000'000'000'000;
    int64_t tat = 0;
    std::vector<int64_t> taken;
    for (int i = 0; i < 20000; ++i) {
      now += static_cast<int64_t>(rng() % (2 * gcra.interval_us() + 1));
      while (gcra.AllowAt(tat, now) <= now && rng() % 4 != 0) {
        tat = gcra.Take(tat, now);
        taken.push_back(now);
      }
    }
    ASSERT_GT(taken.size(), 1000u);
    for (const int64_t w :
         {int64_t{0}, int64_t{1'000'000}, int64_t{60'000'000}, int64_t{600'000'000}}) {
      std::deque<int64_t> window;
      size_t worst = 0;
      for (int64_t t : taken) {
        window.push_back(t);
        while (window.front() < t - w) window.pop_front();
        worst = std::max(worst, window.size());
      }
      const double bound = static_cast<double>(limit.burst) +
                           static_cast<double>(limit.per_minute) * static_cast<double>(w) /
                               static_cast<double>(kMicrosPerMinute);
      EXPECT_LE(static_cast<double>(worst), bound)
          << "per_minute=" << limit.per_minute << " burst=" << limit.burst << " w=" << w;
    }
  }
}

// AtMostPerMinute's bucket, taken greedily (a token the moment one is there): no span of a
// minute, or of a minute and almost an interval, holds more than the limit, and a busy hour
// uses at least 98% of it.
TEST(GcraTest, AtMostPerMinuteNeverPassesTheLimitInAnyMinute) {
  for (const auto& [per_minute, burst] : std::vector<std::pair<int64_t, int64_t>>{
           {1000, 16}, {60, 1}, {120, 2}, {6000, 100}, {600, 10}, {100, 1}, {12, 1}}) {
    const Limit limit = AtMostPerMinute(per_minute, burst);
    const Gcra gcra(limit);
    int64_t now = 1'700'000'000'000'000;
    const int64_t start = now;
    int64_t tat = 0;
    std::vector<int64_t> taken;
    while (now < start + 60 * kMicrosPerMinute) {
      now = std::max(now, gcra.AllowAt(tat, now));
      tat = gcra.Take(tat, now);
      taken.push_back(now);
    }
    // Above one a second, also windows up to an interval longer (calls reaching the upstream
    // unevenly).
    std::vector<int64_t> windows = {kMicrosPerMinute};
    if (per_minute > 60) windows.push_back(kMicrosPerMinute + gcra.interval_us() - 1);
    for (const int64_t w : windows) {
      size_t worst = 0;
      size_t first = 0;
      for (size_t i = 0; i < taken.size(); ++i) {
        while (taken[first] <= taken[i] - w) ++first;  // the window [t - w, t] half-open below
        worst = std::max(worst, i - first + 1);
      }
      EXPECT_LE(worst, static_cast<size_t>(per_minute)) << per_minute << "/" << burst << " w=" << w;
    }
    EXPECT_GE(static_cast<double>(taken.size()), 0.98 * 60 * static_cast<double>(per_minute))
        << per_minute << "/" << burst;
  }
  EXPECT_EQ(AtMostPerMinute(0, 5), (Limit{.per_minute = 0, .burst = 5}));
  EXPECT_EQ(AtMostPerMinute(3, 3), (Limit{.per_minute = 1, .burst = 3}));
  EXPECT_EQ(AtMostPerMinute(12, 1), (Limit{.per_minute = 12, .burst = 1}));  // a slow pace, whole
  EXPECT_EQ(AtMostPerMinute(1000, 16), (Limit{.per_minute = 984, .burst = 16}));
}

// Available() counts exactly the single takes that would succeed at one instant, and TakeN() is
// that many Take()s: the queue takes several tokens in one visit and relies on both.
TEST(GcraTest, AvailableAndTakeNMatchSingleTakesAtOneInstant) {
  std::mt19937_64 rng(11);
  for (const Limit limit :
       {Limit{60, 1}, Limit{600, 10}, Limit{7, 3}, Limit{0, 1}, Limit{59999, 17}}) {
    const Gcra gcra(limit);
    int64_t now = 1'700'000'000'000'000;
    int64_t tat = 0;
    for (int i = 0; i < 2000; ++i) {
      now += static_cast<int64_t>(rng() % (3 * gcra.interval_us() + 2));
      if (rng() % 50 == 0) tat = gcra.PushBack(tat, now + 3'000'000);
      const int64_t max = static_cast<int64_t>(rng() % 20);
      int64_t single = 0;
      int64_t t = tat;
      while (single < max && gcra.AllowAt(t, now) <= now) {
        t = gcra.Take(t, now);
        ++single;
      }
      ASSERT_EQ(gcra.Available(tat, now, max), single)
          << "per_minute=" << limit.per_minute << " step " << i;
      const int64_t n = single == 0 ? 0 : 1 + static_cast<int64_t>(rng() % single);
      int64_t expected = tat;
      for (int64_t k = 0; k < n; ++k) expected = gcra.Take(expected, now);
      if (n > 0) {
        ASSERT_EQ(gcra.TakeN(tat, now, n), expected);
        tat = expected;
      }
    }
  }
}

TEST(GcraTest, TakingSeveralAtOnceKeepsTheWindowBound) {
  const Gcra gcra({.per_minute = 60, .burst = 5});
  const int64_t t0 = 1'700'000'000'000'000;
  EXPECT_EQ(gcra.Available(0, t0, 100), 5);  // an idle bucket holds its burst
  int64_t tat = gcra.TakeN(0, t0, 5);
  EXPECT_EQ(gcra.Available(tat, t0, 100), 0);
  EXPECT_EQ(gcra.AllowAt(tat, t0), t0 + 1'000'000);
  EXPECT_EQ(gcra.Available(tat, t0 + 2'500'000, 100), 2);  // two intervals have passed
  tat = gcra.TakeN(tat, t0 + 2'500'000, 2);
  EXPECT_EQ(gcra.Available(tat, t0 + 2'500'000, 100), 0);
  EXPECT_EQ(gcra.Available(0, t0, 3), 3);  // capped by `max`
  EXPECT_EQ(Gcra({.per_minute = 0}).Available(0, t0, 7), 7);
}

TEST(GcraTest, ValidateLimitNamesTheField) {
  EXPECT_TRUE(ValidateLimit({.per_minute = 600, .burst = 10}).ok());
  EXPECT_THAT(std::string(ValidateLimit({.per_minute = -1}).message()), HasSubstr("per_minute"));
  EXPECT_THAT(std::string(ValidateLimit({.per_minute = 1, .burst = 0}).message()),
              HasSubstr("burst"));
}

TEST(GcraTest, LuaSnippetDefinesTheSameFunctions) {
  const std::string_view lua = GcraLua();
  for (const char* fn : {"gcra_interval", "gcra_tolerance", "gcra_allow_at", "gcra_take",
                         "gcra_available", "gcra_take_n", "gcra_push_back", "gcra_clamp"}) {
    EXPECT_NE(lua.find(std::string("local function ") + fn), std::string_view::npos) << fn;
  }
}

TEST(HierarchicalLimiterTest, NeedsATokenFromBothBuckets) {
  ManualClock clock;
  HierarchicalLimiter limiter(clock);
  limiter.SetTeamLimit("team", {.per_minute = 60, .burst = 2});
  limiter.SetAccountLimit("a", {.per_minute = 6, .burst = 1});
  EXPECT_TRUE(limiter.TryAcquire("team", "a").allowed);
  // The account's next token is 10s away; nothing is taken from the team meanwhile.
  const auto denied = limiter.TryAcquire("team", "a");
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.allow_at, clock.Now() + absl::Seconds(10));
  EXPECT_TRUE(limiter.TryAcquire("team", "b").allowed);
  // The team's burst (2) is spent; its next token is 1s after the first.
  const auto team_denied = limiter.TryAcquire("team", "c");
  EXPECT_FALSE(team_denied.allowed);
  EXPECT_EQ(team_denied.allow_at, clock.Now() + absl::Seconds(1));
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(limiter.TryAcquire("team", "c").allowed);
}

TEST(HierarchicalLimiterTest, TeamLimitCapsTheSumOverItsAccounts) {
  ManualClock clock;
  HierarchicalLimiter limiter(clock);
  limiter.SetTeamLimit("team", {.per_minute = 120, .burst = 1});
  int granted = 0;
  for (int step = 0; step < 60 * 100; ++step) {  // one minute in 10ms steps
    for (const char* account : {"a", "b", "c", "d"}) {
      if (limiter.TryAcquire("team", account).allowed) ++granted;
    }
    clock.Advance(absl::Milliseconds(10));
  }
  EXPECT_LE(granted, 1 + 120);
  EXPECT_GE(granted, 119);
}

TEST(HierarchicalLimiterTest, PushBackDelaysTheWholeTeam) {
  ManualClock clock;
  HierarchicalLimiter limiter(clock);
  limiter.SetTeamLimit("team", {.per_minute = 600, .burst = 10});
  limiter.PushBackTeam("team", absl::Seconds(30));
  const auto d = limiter.TryAcquire("team", "a");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.allow_at, clock.Now() + absl::Seconds(30));
  clock.Advance(absl::Seconds(30));
  EXPECT_TRUE(limiter.TryAcquire("team", "a").allowed);
  // After a push-back the team resumes at its steady rate, without a burst.
  EXPECT_FALSE(limiter.TryAcquire("team", "b").allowed);
}

}  // namespace
}  // namespace herald::ratelimit
