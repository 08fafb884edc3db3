#include <fstream>

#include <gmock/gmock.h>
#include <google/protobuf/timestamp.pb.h>
#include <gtest/gtest.h>

#include <herald/heraldctl/values.h>

namespace herald::heraldctl {
namespace {

using ::testing::HasSubstr;

TEST(ParsePriceCentsTest, ExactDecimalDollars) {
  EXPECT_EQ(*ParsePriceCents("price", "15"), 1500);
  EXPECT_EQ(*ParsePriceCents("price", "15.5"), 1550);
  EXPECT_EQ(*ParsePriceCents("price", "15.05"), 1505);
  EXPECT_EQ(*ParsePriceCents("price", "$199.99"), 19999);
  EXPECT_EQ(*ParsePriceCents("price", "0"), 0);
  EXPECT_EQ(*ParsePriceCents("price", "0.29"), 29);
  for (const char* bad : {"", "15.005", "-3", "1e3", "15.", ".5", "abc", "15,00", "9999999999"}) {
    EXPECT_FALSE(ParsePriceCents("price", bad).ok()) << bad;
  }
  EXPECT_THAT(ParsePriceCents("price", "1.234").status().message(),
              ::testing::HasSubstr("--price"));
}

TEST(ParseListTest, TrimsAndDropsEmpty) {
  EXPECT_EQ(ParseList("a, b,,c "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(ParseList("").empty());
}

TEST(ParseFanIdsTest, CommasSpacesAndNewlines) {
  EXPECT_EQ(*ParseFanIds("fans", "1,2, 3\n4\r\n5\t6\n"), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_FALSE(ParseFanIds("fans", "1,x").ok());
  EXPECT_EQ(*ParseFanIds("fans", "7,3\n7\n3,9"), (std::vector<int64_t>{7, 3, 9}));
  EXPECT_FALSE(ParseFanIds("fans", "0").ok());
  EXPECT_FALSE(ParseFanIds("fans", "-4").ok());
  EXPECT_FALSE(ParseFanIds("fans", " , ").ok());
}

// A time goes to the server to the nanosecond: a filter by the create time of a campaign made
// in the same second as another tells them apart.
TEST(SetTimestampTest, KeepsTheFractionOfASecond) {
  auto t = ParseTime("created-after", "2026-05-01T22:00:00.750+02:00");
  ASSERT_TRUE(t.ok()) << t.status();
  google::protobuf::Timestamp out;
  SetTimestamp(*t, &out);
  EXPECT_EQ(out.seconds(), 1777665600);
  EXPECT_EQ(out.nanos(), 750'000'000);
  SetTimestamp(absl::FromUnixMillis(-1), &out);
  EXPECT_EQ(out.seconds(), -1);
  EXPECT_EQ(out.nanos(), 999'000'000);
}

TEST(ParseTimeTest, Rfc3339) {
  auto t = ParseTime("send-at", "2026-05-01T20:00:00Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(absl::ToUnixSeconds(*t), 1777665600);
  auto offset = ParseTime("send-at", "2026-05-01T22:00:00+02:00");
  ASSERT_TRUE(offset.ok());
  EXPECT_EQ(*offset, *t);
  EXPECT_FALSE(ParseTime("send-at", "tomorrow").ok());
}

TEST(ParseDurationFlagTest, GoStyle) {
  EXPECT_EQ(*ParseDurationFlag("grace-period", "1h30m"), absl::Minutes(90));
  EXPECT_FALSE(ParseDurationFlag("grace-period", "-5m").ok());
  EXPECT_FALSE(ParseDurationFlag("grace-period", "inf").ok());
  EXPECT_FALSE(ParseDurationFlag("grace-period", "soon").ok());
}

TEST(ParseLookbackTest, DaysOrADuration) {
  EXPECT_EQ(*ParseLookback("since", "7d"), absl::Hours(7 * 24));
  EXPECT_EQ(*ParseLookback("since", "36h"), absl::Hours(36));
  EXPECT_EQ(*ParseLookback("since", "90m"), absl::Minutes(90));
  EXPECT_FALSE(ParseLookback("since", "0d").ok());
  EXPECT_FALSE(ParseLookback("since", "0s").ok());
  EXPECT_FALSE(ParseLookback("since", "-1h").ok());
  EXPECT_FALSE(ParseLookback("since", "d").ok());
  EXPECT_FALSE(ParseLookback("since", "1.5d").ok());
  EXPECT_FALSE(ParseLookback("since", "99999999d").ok());
  EXPECT_THAT(ParseLookback("since", "soon").status().message(), HasSubstr("--since"));
}

TEST(ParseCountTest, NonNegative) {
  EXPECT_EQ(*ParseCount("pace", "60"), 60);
  EXPECT_FALSE(ParseCount("pace", "-1").ok());
  EXPECT_FALSE(ParseCount("pace", "6x").ok());
}

TEST(TrimSecretTest, TrailingNewlinesOnly) {
  EXPECT_EQ(*TrimSecret("f", "abc \n\r\n"), "abc ");
  EXPECT_FALSE(TrimSecret("f", "\n").ok());
}

TEST(ReadFileTest, ADirectoryOrAMissingFileIsAnErrorNotACrash) {
  const std::string dir = ::testing::TempDir();
  absl::StatusOr<std::string> directory = ReadFile(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(directory.status().message()), HasSubstr("it is a directory"));
  EXPECT_FALSE(ReadFile(dir + "/no-such-file").ok());

  const std::string path = dir + "/read_file_test.txt";
  std::ofstream(path, std::ios::binary) << std::string(200'000, 'x') << "end";
  absl::StatusOr<std::string> text = ReadFile(path);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->size(), 200'003u);
  EXPECT_TRUE(text->ends_with("xend"));
}

}  // namespace
}  // namespace herald::heraldctl
