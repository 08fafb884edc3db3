#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/log.h>

namespace herald::log {
namespace {

using ::testing::HasSubstr;

const absl::Time kTime = absl::FromUnixMillis(1'764'135'155'123);  // 2025-11-26 05:32:35.123

TEST(AbortOnExceptionTest, NoExceptionReturnsOneIsLoggedNamingItsPlaceThenAborts) {
  AbortOnException(nullptr, "nothing");  // returns
  EXPECT_DEATH(AbortOnException(std::make_exception_ptr(std::runtime_error("boom")), "the sweep"),
               "unexpected exception; aborting.*the sweep.*boom");
}

TEST(LogFormatTest, JsonLineHasTimeLevelMessageAndTypedFields) {
  const std::string line =
      FormatJson(kTime, Level::kWarn, "lease failed",
                 {{"shard", 3}, {"ratio", 0.5}, {"ok", false}, {"kind", "send_mass_message"}});
  EXPECT_EQ(line,
            "{\"ts\":\"2025-11-26T05:32:35.123Z\",\"level\":\"warn\",\"msg\":\"lease failed\","
            "\"shard\":3,\"ratio\":0.5,\"ok\":false,\"kind\":\"send_mass_message\"}\n");
}

TEST(LogFormatTest, JsonEscapesQuotesBackslashesAndControlCharacters) {
  const std::string line =
      FormatJson(kTime, Level::kInfo, "a \"quoted\"\nline", {{"path", "C:\\x\x01"}});
  EXPECT_THAT(line, HasSubstr(R"("msg":"a \"quoted\"\nline")"));
  EXPECT_THAT(line, HasSubstr(R"("path":"C:\\x\u0001")"));
}

TEST(LogFormatTest, StatusAndDurationFieldsAreReadable) {
  const std::string line =
      FormatJson(kTime, Level::kError, "x",
                 {{"status", absl::UnavailableError("redis down")}, {"after", absl::Seconds(2)}});
  EXPECT_THAT(line, HasSubstr(R"("status":"UNAVAILABLE: redis down")"));
  EXPECT_THAT(line, HasSubstr(R"("after":"2s")"));
}

TEST(LogFormatTest, TextLineQuotesOnlyWhenNeeded) {
  const std::string line = FormatText(kTime, Level::kInfo, "listening",
                                      {{"addr", "0.0.0.0:9090"}, {"role", "api worker"}});
  EXPECT_EQ(line,
            "2025-11-26 05:32:35.123 INFO  listening  addr=0.0.0.0:9090  role=\"api worker\"\n");
}

TEST(LogTest, LevelsBelowTheMinimumAreDropped) {
  std::vector<std::string> lines;
  Configure({.min_level = Level::kWarn,
             .format = Format::kJson,
             .sink = [&](std::string_view line) { lines.emplace_back(line); }});
  Info("dropped");
  Warn("kept", {{"n", 1}});
  Error("kept too");
  Configure({});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("\"msg\":\"kept\""));
  EXPECT_THAT(lines[1], HasSubstr("\"level\":\"error\""));
}

TEST(LogTest, ParsesLevelAndFormatNames) {
  EXPECT_EQ(*ParseLevel("WARN"), Level::kWarn);
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_EQ(ParseLevel("loud").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseFormat("xml").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace herald::log
