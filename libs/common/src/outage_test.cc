#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/clock.h>
#include <herald/common/log.h>
#include <herald/common/outage.h>

namespace herald::log {
namespace {

using ::testing::HasSubstr;

class OutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Configure({.min_level = Level::kDebug,
               .format = Format::kJson,
               .sink = [this](std::string_view line) { lines_.emplace_back(line); }});
  }
  void TearDown() override { Configure({}); }

  ManualClock clock_;
  std::vector<std::string> lines_;
};

TEST_F(OutageTest, OneLineDownASummaryWhileDownOneLineBack) {
  Outage redis("redis", "queue leases", absl::Seconds(30), &clock_);
  redis.Succeeded();  // up and staying up: nothing
  EXPECT_TRUE(lines_.empty());

  const absl::Status refused = absl::UnavailableError("connect: Connection refused");
  for (int i = 0; i < 1000; ++i) {  // ten seconds of 100 failures a second
    redis.Failed(refused);
    clock_.Advance(absl::Milliseconds(10));
  }
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], HasSubstr(R"("level":"warn","msg":"redis unavailable")"));
  EXPECT_THAT(lines_[0], HasSubstr(R"("what":"queue leases")"));
  EXPECT_THAT(lines_[0], HasSubstr("Connection refused"));
  EXPECT_TRUE(redis.down());

  for (int i = 0; i < 2500; ++i) {  // 25 more seconds: one summary at 30 s
    redis.Failed(refused);
    clock_.Advance(absl::Milliseconds(10));
  }
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_THAT(lines_[1], HasSubstr(R"("msg":"redis still unavailable")"));
  EXPECT_THAT(lines_[1], HasSubstr(R"("for":"30s")"));
  EXPECT_THAT(lines_[1], HasSubstr(R"("failures":3000)"));

  redis.Succeeded();
  redis.Succeeded();
  ASSERT_EQ(lines_.size(), 3u);
  EXPECT_THAT(lines_[2], HasSubstr(R"("level":"info","msg":"redis recovered")"));
  EXPECT_THAT(lines_[2], HasSubstr(R"("after":"35s")"));
  EXPECT_THAT(lines_[2], HasSubstr(R"("failures":3500)"));
  EXPECT_FALSE(redis.down());

  // A new outage starts its own count.
  redis.Failed(refused);
  clock_.Advance(Outage::kSettle);
  redis.Succeeded();
  ASSERT_EQ(lines_.size(), 5u);
  EXPECT_THAT(lines_[4], HasSubstr(R"("failures":1)"));
}

// A server going away closes its connections one by one: a call answered on one still open
// between two failures is not a recovery.
TEST_F(OutageTest, ASuccessRightAfterTheOutageBeganDoesNotEndIt) {
  Outage redis("redis", "queue leases", absl::Seconds(30), &clock_);
  const absl::Status closed = absl::UnavailableError("connection closed by the server");
  redis.Failed(closed);
  clock_.Advance(absl::Microseconds(100));
  redis.Succeeded();  // the other connection, not closed yet
  clock_.Advance(absl::Microseconds(100));
  redis.Failed(closed);
  EXPECT_TRUE(redis.down());
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], HasSubstr(R"("msg":"redis unavailable")"));

  clock_.Advance(absl::Milliseconds(500));
  redis.Succeeded();  // back, but within the settle time: not yet said
  EXPECT_EQ(lines_.size(), 1u);
  clock_.Advance(absl::Milliseconds(600));
  redis.Succeeded();
  EXPECT_FALSE(redis.down());
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_THAT(lines_[1], HasSubstr(R"("msg":"redis recovered")"));
  EXPECT_THAT(lines_[1], HasSubstr(R"("after":"500.2ms")"));  // to the first success that held
  EXPECT_THAT(lines_[1], HasSubstr(R"("failures":2)"));
}

}  // namespace
}  // namespace herald::log
