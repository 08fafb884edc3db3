#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/upstream_sim/validation.h>

namespace herald::upstream_sim {
namespace {

using ::testing::HasSubstr;

std::string CodeOf(std::string_view body, bool update = false) {
  auto r = ParseMassMessageBody(body, update);
  return r.ok() ? "ok" : r.error().code;
}

TEST(ValidationTest, AcceptsAFullSendBody) {
  auto r = ParseMassMessageBody(
      R"({"text":"hi","userLists":["fans",123],"userIds":[5,"6"],"excludedLists":["muted"],
          "price":9.99,"mediaFiles":["ofapi_media_A",777],"previews":["777"],"lockedText":true,
          "scheduledDate":"2030-01-01T00:00:00.000Z","giphyId":"g1","rfTag":["x"]})",
      false);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const MassMessageRequest& m = r.value();
  EXPECT_EQ(m.text, "hi");
  EXPECT_EQ(m.price_cents, 999);
  EXPECT_EQ(*m.user_lists, (std::vector<std::string>{"fans", "123"}));
  EXPECT_EQ(*m.user_ids, (std::vector<std::string>{"5", "6"}));
  EXPECT_EQ(*m.media_files, (std::vector<std::string>{"ofapi_media_A", "777"}));
  EXPECT_EQ(m.locked_text, true);
  ASSERT_TRUE(m.scheduled_date.has_value());
  EXPECT_EQ(absl::ToUnixSeconds(*m.scheduled_date), 1893456000);
  EXPECT_EQ(m.giphy_id, "g1");
}

TEST(ValidationTest, PriceIsZeroOrThreeToTwoHundredWithTwoDecimals) {
  const std::string tail = R"(,"userLists":["fans"],"mediaFiles":["1"]})";
  auto with_price = [&](std::string price) {
    return CodeOf(R"({"text":"t","price":)" + price + tail);
  };
  EXPECT_EQ(with_price("0"), "ok");
  EXPECT_EQ(with_price("3"), "ok");
  EXPECT_EQ(with_price("200"), "ok");
  EXPECT_EQ(with_price("199.99"), "ok");
  EXPECT_EQ(with_price("\"4.50\""), "ok");
  EXPECT_EQ(with_price("2.99"), "invalid_price");
  EXPECT_EQ(with_price("200.01"), "invalid_price");
  EXPECT_EQ(with_price("-3"), "invalid_price");
  EXPECT_EQ(with_price("9.999"), "invalid_price");
  EXPECT_EQ(with_price("\"abc\""), "invalid_price");
  EXPECT_EQ(with_price("true"), "invalid_price");
}

TEST(ValidationTest, ContentRules) {
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":["fans"],"price":5})"), "media_required");
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":["fans"],"price":5,"mediaFiles":[]})"),
            "media_required");
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":["fans"],"mediaFiles":["1"],"previews":["2"]})"),
            "invalid_previews");
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":["fans"],"mediaFiles":["1","1"]})"),
            "invalid_media_files");
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":["fans"],"mediaFiles":[{"a":1}]})"),
            "invalid_media_files");
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":["fans"],"price":0})"), "ok");
}

TEST(ValidationTest, TextAndRecipientsAreRequired) {
  EXPECT_EQ(CodeOf(R"({"userLists":["fans"]})"), "text_required");
  EXPECT_EQ(CodeOf(R"({"text":"   ","userLists":["fans"]})"), "text_required");
  EXPECT_EQ(CodeOf(R"({"text":5,"userLists":["fans"]})"), "text_required");
  EXPECT_EQ(CodeOf(R"({"text":"t"})"), "recipients_required");
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":[],"userIds":[]})"), "recipients_required");
  // An update may leave the recipients as they are.
  EXPECT_EQ(CodeOf(R"({"text":"t"})", /*update=*/true), "ok");
  EXPECT_EQ(CodeOf(R"({"text":"t","excludedLists":["x"]})", true), "invalid_excluded_lists");
}

TEST(ValidationTest, MalformedJsonIs400AndOtherShapes422) {
  auto r = ParseMassMessageBody("{not json", false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 400);
  EXPECT_EQ(r.error().code, "invalid_json");
  r = ParseMassMessageBody("[1,2]", false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 422);
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":"fans"})"), "invalid_user_lists");
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":["fans"],"scheduledDate":"tomorrow"})"),
            "invalid_scheduled_date");
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":["fans"],"lockedText":"yes"})"),
            "invalid_locked_text");
}

TEST(ValidationTest, BannedWordsScreening) {
  EXPECT_EQ(CodeOf(R"({"text":"pay me on PayPal","userLists":["fans"]})"), "ok");
  auto r = ParseMassMessageBody(
      R"({"text":"pay me on PayPal","userLists":["fans"],"blockBannedWords":"strict_ban"})", false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "banned_words");
  EXPECT_THAT(r.error().message, HasSubstr("paypal"));
  r = ParseMassMessageBody(
      R"({"text":"pay me on PayPal","userLists":["fans"],"blockBannedWords":"replace_soften"})",
      false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().text, "pay me on ******");
  EXPECT_EQ(CodeOf(R"({"text":"t","userLists":["fans"],"blockBannedWords":"nope"})"),
            "invalid_block_banned_words");
}

TEST(ValidationTest, ListNameUpTo64Characters) {
  EXPECT_TRUE(ParseCreateListBody(R"({"name":"VIP"})").ok());
  EXPECT_TRUE(ParseCreateListBody("{\"name\":\"" + std::string(64, 'a') + "\"}").ok());
  std::string accented;
  for (int i = 0; i < 64; ++i) accented += "\xc3\xa9";  // 64 x 'é', 128 bytes
  EXPECT_TRUE(ParseCreateListBody("{\"name\":\"" + accented + "\"}").ok());
  auto r = ParseCreateListBody("{\"name\":\"" + std::string(65, 'a') + "\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid_name");
  EXPECT_EQ(ParseCreateListBody(R"({"name":""})").error().code, "name_required");
  EXPECT_EQ(ParseCreateListBody(R"({})").error().code, "name_required");
  EXPECT_EQ(ParseCreateListBody("nope").error().status, 400);
}

TEST(ValidationTest, AddUsersHonoursTheMaximum) {
  auto r = ParseAddUsersBody(R"({"ids":["10",11]})", 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), (std::vector<uint64_t>{10, 11}));
  EXPECT_EQ(ParseAddUsersBody(R"({"ids":[1,2,3]})", 2).error().code, "too_many_ids");
  EXPECT_EQ(ParseAddUsersBody(R"({"ids":[]})", 2).error().code, "ids_required");
  EXPECT_EQ(ParseAddUsersBody(R"({"ids":["x"]})", 2).error().code, "invalid_ids");
  EXPECT_EQ(ParseAddUsersBody(R"({"ids":[-4]})", 2).error().code, "invalid_ids");
}

TEST(ValidationTest, IntegerQueryParameters) {
  EXPECT_EQ(ParseIntParam("limit", std::nullopt, 1, 100, 10).value(), 10);
  EXPECT_EQ(ParseIntParam("limit", "50", 1, 100, 10).value(), 50);
  EXPECT_EQ(ParseIntParam("limit", "0", 1, 100, 10).error().code, "invalid_limit");
  EXPECT_EQ(ParseIntParam("limit", "x", 1, 100, 10).error().code, "invalid_limit");
}

}  // namespace
}  // namespace herald::upstream_sim
