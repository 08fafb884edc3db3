#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>

namespace herald {
namespace {

TEST(StrCatTest, MixesTextAndNumbers) {
  const std::string_view sv = "view";
  const std::string s = "string";
  EXPECT_EQ(StrCat("a", sv, s, absl::string_view("absl"), '!', -42, uint64_t{7}, 0.25),
            "aviewstringabsl!-4270.25");
  std::string out = "x=";
  StrAppend(&out, 1, ",", 2);
  EXPECT_EQ(out, "x=1,2");
}

TEST(StrJoinTest, JoinsAnyPieces) {
  EXPECT_EQ(StrJoin(std::vector<std::string_view>{"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(StrJoin(std::vector<int>{1, 2}, "+"), "1+2");
  EXPECT_EQ(StrJoin(std::vector<std::string>{}, ","), "");
}

TEST(StrSplitTest, KeepsEmptyPieces) {
  EXPECT_THAT(StrSplit("a,,b", ','), ::testing::ElementsAre("a", "", "b"));
  EXPECT_THAT(StrSplit("", ','), ::testing::ElementsAre(""));
}

TEST(ParseIntTest, WholeStringOnly) {
  EXPECT_EQ(ParseInt<int>("123"), 123);
  EXPECT_EQ(ParseInt<int>("-5"), -5);
  EXPECT_EQ(ParseInt<int>("12a"), std::nullopt);
  EXPECT_EQ(ParseInt<int>(""), std::nullopt);
  EXPECT_EQ(ParseInt<uint16_t>("70000"), std::nullopt);
}

TEST(AppendJsonStringTest, EscapesOnlyWhatJsonRequires) {
  std::string out = "x:";
  AppendJsonString(out, std::string("say \"hi\"\\\n\r\t\x01\x1f caf\u00e9", 20));
  EXPECT_EQ(out, R"(x:"say \"hi\"\\\n\r\t\u0001\u001f caf)"
                 "\u00e9\"");
  out.clear();
  AppendJsonString(out, "");
  EXPECT_EQ(out, R"("")");
  out.clear();
  AppendJsonString(out, std::string("\0end", 4));
  EXPECT_EQ(out, R"("\u0000end")");
}

TEST(PercentEncodeTest, KeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(PercentEncode("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(PercentEncode("rate(x[1m]) > 0 & y=\u00e9/"),
            "rate%28x%5B1m%5D%29%20%3E%200%20%26%20y%3D%C3%A9%2F");
  EXPECT_EQ(PercentEncode(""), "");
}

TEST(AsciiCaseTest, ChangesOnlyAsciiLetters) {
  EXPECT_EQ(AsciiLower("HeLLo-1"), "hello-1");
  EXPECT_EQ(AsciiUpper("drain_timeout"), "DRAIN_TIMEOUT");
}

TEST(Utf8Test, CountsAndCutsWholeCharacters) {
  const std::string_view text = "caf\u00e9 \U0001F600!";  // 7 characters, 11 bytes
  EXPECT_EQ(Utf8Length(text), 7u);
  EXPECT_EQ(Utf8Prefix(text, 4), "caf\u00e9");
  EXPECT_EQ(Utf8Prefix(text, 6), "caf\u00e9 \U0001F600");
  EXPECT_EQ(Utf8Prefix(text, 0), "");
  EXPECT_EQ(Utf8Prefix(text, 100), text);
  EXPECT_EQ(Utf8Suffix(text, 2), "\U0001F600!");
  EXPECT_EQ(Utf8Suffix(text, 4), "\u00e9 \U0001F600!");
  EXPECT_EQ(Utf8Suffix(text, 0), "");
  EXPECT_EQ(Utf8Suffix(text, 100), text);
}

}  // namespace
}  // namespace herald
