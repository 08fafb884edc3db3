#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/campaign/attempts.h>
#include <herald/campaign/workflow.h>

namespace herald::campaign {
namespace {

using ::testing::HasSubstr;

TEST(AttemptLimitsTest, AKindNamedHasItsOwnLimitAndTheRestShareOne) {
  auto by_kind = ParseAttemptLimits(" delivery_poll=12,\tdelivery_upload_media = 3\n");
  ASSERT_TRUE(by_kind.ok()) << by_kind.status();
  const AttemptLimits limits{.all = 6, .by_kind = *by_kind};
  EXPECT_EQ(limits.For(kPollJob), 12);
  EXPECT_EQ(limits.For(kUploadMediaJob), 3);
  EXPECT_EQ(limits.For(kSendJob), 6);
  EXPECT_TRUE(ValidateKindLimits(limits).ok());
  EXPECT_TRUE(ParseAttemptLimits("")->empty());
  EXPECT_TRUE(ParseAttemptLimits(" \t")->empty());
}

TEST(AttemptLimitsTest, ABadEntryIsRefusedByName) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"delivery_poll", "expected kind=attempts"},
      {"poll=3", "'poll' is not a job kind (one of "},
      {"delivery_poll=0", "'delivery_poll=0': attempts must be in [1, 100]"},
      {"delivery_poll=101", "attempts must be in [1, 100]"},
      {"delivery_poll=x", "attempts must be in [1, 100]"},
      {"delivery_poll=3,delivery_poll=4", "'delivery_poll' is named twice"},
      {"delivery_poll=3,", "expected kind=attempts"},
  };
  for (const auto& [spec, message] : cases) {
    SCOPED_TRACE(spec);
    auto parsed = ParseAttemptLimits(spec);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr(message));
  }
  EXPECT_FALSE(ValidateKindLimits({.by_kind = {{"delivery_poll", 0}}}).ok());
  EXPECT_FALSE(ValidateKindLimits({.by_kind = {{"nope", 3}}}).ok());
}

// Each step is enqueued with its own kind's limit.
TEST(AttemptLimitsTest, StepsCarryTheirKindsLimit) {
  const AttemptLimits limits{
      .all = 6, .by_kind = {{std::string(kUploadMediaJob), 2}, {std::string(kUnsendJob), 9}}};
  store::Campaign campaign{.tenant = "t", .id = "c"};
  const store::Account account{.tenant = "t", .id = "acct_1", .team = "team"};
  EXPECT_EQ(FirstStep(campaign, {}, account, absl::ZeroDuration(), limits).max_attempts, 6);
  campaign.content.media = {"m1"};
  const queue::JobSpec upload = FirstStep(campaign, {}, account, absl::ZeroDuration(), limits);
  EXPECT_EQ(upload.kind, kUploadMediaJob);
  EXPECT_EQ(upload.max_attempts, 2);
  EXPECT_EQ(UnsendStep(campaign, account, limits).max_attempts, 9);
  EXPECT_EQ(UpdateStep(campaign, account, limits).max_attempts, 6);
}

}  // namespace
}  // namespace herald::campaign
