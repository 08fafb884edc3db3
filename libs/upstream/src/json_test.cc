#include "json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace herald::upstream::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

JsonDocument Parse(std::string_view text) {
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(text);
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? *std::move(doc) : *JsonDocument::Parse("null");
}

TEST(JsonDocument, KeepsTheTextOfNonIntegerNumbers) {
  JsonDocument doc = Parse(R"({"a": 15.2, "b": [0.1, 1e2, 25], "c": "x"})");
  const auto& root = doc.root().as_object();
  EXPECT_THAT(doc.NumberTexts(root.at("a").as_double()), ElementsAre("15.2"));
  EXPECT_THAT(doc.NumberTexts(root.at("b").as_array()[0].as_double()), ElementsAre("0.1"));
  EXPECT_THAT(doc.NumberTexts(root.at("b").as_array()[1].as_double()), ElementsAre("1e2"));
  EXPECT_TRUE(root.at("b").as_array()[2].is_int64());
  EXPECT_TRUE(doc.NumberTexts(3.25).empty());
}

TEST(JsonDocument, DistinctTextsOfOneDoubleAreAllKept) {
  JsonDocument doc = Parse(R"([0.1, 0.10, 0.1])");
  EXPECT_THAT(doc.NumberTexts(0.1), ElementsAre("0.1", "0.10"));
}

TEST(JsonDocument, RejectsInvalidJson) {
  for (std::string_view bad :
       {"", "{", R"({"a": 1,})", R"({"a": 1} x)", "[1, 2", "nul", R"({"a": 1} // c)"}) {
    absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(bad);
    EXPECT_FALSE(doc.ok()) << bad;
    EXPECT_THAT(std::string(doc.status().message()), HasSubstr("invalid JSON")) << bad;
  }
}

TEST(JsonDocument, LimitsNesting) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  EXPECT_FALSE(JsonDocument::Parse(deep).ok());
}

TEST(JsonReader, ReadsTypedFieldsWithTolerantIds) {
  JsonDocument doc = Parse(
      R"({"data": {"id": "123", "n": 7, "s": "text", "b": true, "list": "fans", "num": 42,
          "price": 15.2, "price_s": "$12.00", "price_i": 25, "nothing": null}})");
  ObjectReader o = JsonReader(doc, "").Object().Required("data").Object();
  EXPECT_EQ(o.RequiredId("id"), 123);
  EXPECT_EQ(o.RequiredId("n"), 7);
  EXPECT_EQ(o.Int("n"), 7);
  EXPECT_EQ(o.Int("absent", 5), 5);
  EXPECT_EQ(o.Int("nothing", 6), 6);
  EXPECT_EQ(o.String("s"), "text");
  EXPECT_EQ(o.String("absent"), "");
  EXPECT_TRUE(o.Bool("b"));
  EXPECT_EQ(o.RequiredIdText("list"), "fans");
  EXPECT_EQ(o.RequiredIdText("num"), "42");
  EXPECT_EQ(o.OptionalMoneyCents("price"), 1520);
  EXPECT_EQ(o.OptionalMoneyCents("price_s"), 1200);
  EXPECT_EQ(o.OptionalMoneyCents("price_i"), 2500);
  EXPECT_EQ(o.OptionalMoneyCents("absent"), std::nullopt);
  EXPECT_FALSE(o.OptionalInt("nothing").has_value());
  EXPECT_TRUE(o.status().ok()) << o.status();
}

TEST(JsonReader, WrongTypesNameThePath) {
  JsonDocument doc = Parse(R"({"data": {"items": [{"id": 1, "sentCount": "many"}]}})");
  ObjectReader data = JsonReader(doc, "").Object().Required("data").Object();
  ArrayReader items = data.Required("items").Array();
  ASSERT_EQ(items.size(), 1u);
  ObjectReader item = items.At(0).Object();
  EXPECT_EQ(item.RequiredId("id"), 1);
  EXPECT_EQ(item.Int("sentCount"), 0);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(data.status().message()),
            "data.items[0].sentCount: expected an integer, got string \"many\"");
}

TEST(JsonReader, FirstErrorIsKept) {
  JsonDocument doc = Parse(R"({"a": "x", "b": {}})");
  ObjectReader o = JsonReader(doc, "").Object();
  o.Bool("a");
  o.Int("b");
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("a: expected a boolean, got a string"));
}

TEST(JsonReader, MissingRequiredFields) {
  JsonDocument doc = Parse(R"({"data": {"id": null}})");
  ObjectReader o = JsonReader(doc, "").Object().Required("data").Object();
  o.RequiredId("id");
  EXPECT_EQ(std::string(o.status().message()), "data.id: required field is missing");
}

TEST(JsonReader, RejectsBadIds) {
  for (std::string_view body : {R"({"id": -4})", R"({"id": "12a"})", R"({"id": 1.5})",
                                R"({"id": true})", R"({"id": 18446744073709551615})"}) {
    JsonDocument doc = Parse(body);
    ObjectReader o = JsonReader(doc, "").Object();
    o.RequiredId("id");
    EXPECT_FALSE(o.status().ok()) << body;
    EXPECT_THAT(std::string(o.status().message()), HasSubstr("id: ")) << body;
  }
}

TEST(JsonReader, MoneyFromNumbersUsesTheirText) {
  // 115886693330064.09 is one of the decimals Boost.JSON 1.81 rounds to a neighbouring double;
  // the cents come from the text, so they are exact anyway.
  JsonDocument doc = Parse(R"({"a": 115886693330064.09, "b": 0.1, "c": 0.2, "d": 1.15})");
  ObjectReader o = JsonReader(doc, "").Object();
  EXPECT_EQ(o.OptionalMoneyCents("a"), 11588669333006409);
  EXPECT_EQ(*o.OptionalMoneyCents("b") + *o.OptionalMoneyCents("c"), 30);
  EXPECT_EQ(o.OptionalMoneyCents("d"), 115);
  EXPECT_TRUE(o.status().ok()) << o.status();
}

TEST(JsonReader, MoneyErrors) {
  for (std::string_view body : {R"({"p": "1.2.3"})", R"({"p": "abc"})", R"({"p": -5})",
                                R"({"p": "-1.00"})", R"({"p": true})", R"({"p": [1]})"}) {
    JsonDocument doc = Parse(body);
    ObjectReader o = JsonReader(doc, "").Object();
    o.OptionalMoneyCents("p");
    EXPECT_FALSE(o.status().ok()) << body;
    EXPECT_THAT(std::string(o.status().message()), HasSubstr("p: ")) << body;
  }
}

TEST(JsonReader, AmbiguousTextsOfOneDoubleAreRejected) {
  // Both texts are the double nearest 0.005, but name amounts that round to 1 and 0 cents.
  JsonDocument doc = Parse(R"({"a": 0.005, "b": 0.00499999999999999999})");
  ObjectReader o = JsonReader(doc, "").Object();
  o.OptionalMoneyCents("a");
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("a: "));
  // Texts of one double that name the same amount are fine.
  JsonDocument same = Parse(R"({"a": 0.1, "b": 0.10})");
  ObjectReader s = JsonReader(same, "").Object();
  EXPECT_EQ(s.OptionalMoneyCents("a"), 10);
  EXPECT_EQ(s.OptionalMoneyCents("b"), 10);
  EXPECT_TRUE(s.status().ok()) << s.status();
}

}  // namespace
}  // namespace herald::upstream::internal
