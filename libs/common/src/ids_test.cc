#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <herald/common/ids.h>

namespace herald {
namespace {

TEST(IdGeneratorTest, IdsAreValidAndCarryTheirTimestamp) {
  ManualClock clock(absl::FromUnixMillis(1'764'000'000'123));
  IdGenerator ids(clock);
  const std::string id = ids.Next();
  EXPECT_EQ(id.size(), kIdLength);
  EXPECT_TRUE(IsValidId(id)) << id;
  EXPECT_EQ(IdTimestampMillis(id), 1'764'000'000'123u);
}

TEST(IdGeneratorTest, IdsIncreaseWithinOneMillisecondAndAcrossTime) {
  ManualClock clock;
  IdGenerator ids(clock);
  std::vector<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    seen.push_back(ids.Next());
    if (i % 100 == 99) clock.Advance(absl::Milliseconds(1));
  }
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size());
}

TEST(IdGeneratorTest, IdsStayIncreasingWhenTheClockStepsBack) {
  ManualClock clock;
  IdGenerator ids(clock);
  const std::string first = ids.Next();
  clock.Advance(absl::Seconds(-5));
  const std::string second = ids.Next();
  EXPECT_LT(first, second);
}

TEST(IdGeneratorTest, ConcurrentCallersNeverShareAnId) {
  IdGenerator ids;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<std::string>> out(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) out[static_cast<size_t>(t)].push_back(ids.Next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& v : out) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(IsValidIdTest, RejectsWrongShapes) {
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId("01hzzzzzzzzzzzzzzzzzzzzzz"));   // 25 characters
  EXPECT_FALSE(IsValidId("01HZZZZZZZZZZZZZZZZZZZZZZZ"));  // upper case
  EXPECT_FALSE(IsValidId("01hzzzzzzzzzzzzzzzzzzzzzzu"));  // 'u' is not Crockford
  EXPECT_FALSE(IsValidId("81hzzzzzzzzzzzzzzzzzzzzzzz"));  // timestamp over 48 bits
  EXPECT_TRUE(IsValidId("01hzzzzzzzzzzzzzzzzzzzzzzz"));
}

}  // namespace
}  // namespace herald
