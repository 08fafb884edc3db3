#include <cmath>

#include <gtest/gtest.h>

#include <herald/upstream_sim/json_writer.h>
#include <herald/upstream_sim/money.h>

namespace herald::upstream_sim {
namespace {

TEST(MoneyTest, ParsesDollarTextExactly) {
  EXPECT_EQ(ParseDollarText("9.99"), 999);
  EXPECT_EQ(ParseDollarText("25"), 2500);
  EXPECT_EQ(ParseDollarText("3.5"), 350);
  EXPECT_EQ(ParseDollarText("0.01"), 1);
  EXPECT_EQ(ParseDollarText("-1.50"), -150);
  EXPECT_EQ(ParseDollarText("9.999"), std::nullopt);
  EXPECT_EQ(ParseDollarText("9."), std::nullopt);
  EXPECT_EQ(ParseDollarText(".5"), std::nullopt);
  EXPECT_EQ(ParseDollarText("1e3"), std::nullopt);
  EXPECT_EQ(ParseDollarText("abc"), std::nullopt);
  EXPECT_EQ(ParseDollarText(""), std::nullopt);
}

TEST(MoneyTest, CentsFromDoubleAcceptsTwoDecimalsOnly) {
  EXPECT_EQ(CentsFromDouble(9.99), 999);
  EXPECT_EQ(CentsFromDouble(0.29), 29);  // 28.999999999999996 once scaled
  EXPECT_EQ(CentsFromDouble(200.0), 20000);
  EXPECT_EQ(CentsFromDouble(19.9), 1990);
  EXPECT_EQ(CentsFromDouble(9.999), std::nullopt);
  EXPECT_EQ(CentsFromDouble(3.001), std::nullopt);
  // Close to a cent is not a cent: neither rounded into the price range nor to another price.
  EXPECT_EQ(CentsFromDouble(2.9999999), std::nullopt);
  EXPECT_EQ(CentsFromDouble(200.000001), std::nullopt);
  EXPECT_EQ(CentsFromDouble(9.9900001), std::nullopt);
  EXPECT_EQ(CentsFromDouble(-1.5), -150);
  EXPECT_EQ(CentsFromDouble(0.1 + 0.2), std::nullopt);  // 0.30000000000000004
  EXPECT_EQ(CentsFromDouble(1e-7), std::nullopt);
  EXPECT_EQ(CentsFromDouble(NAN), std::nullopt);
  EXPECT_EQ(CentsFromDouble(1e300), std::nullopt);
}

TEST(MoneyTest, FormatsLikeTheUpstream) {
  EXPECT_EQ(FormatDecimal(13986), "139.86");
  EXPECT_EQ(FormatDecimal(2500), "25.00");
  EXPECT_EQ(FormatDecimal(5), "0.05");
  EXPECT_EQ(FormatDecimal(-150), "-1.50");
  EXPECT_EQ(FormatNumber(2500), "25");
  EXPECT_EQ(FormatNumber(999), "9.99");
  EXPECT_EQ(FormatNumber(1360), "13.6");
  EXPECT_EQ(FormatNumber(5), "0.05");
  EXPECT_EQ(FormatNumber(0), "0");
  EXPECT_EQ(FormatDollars(1200), "$12.00");
}

TEST(JsonWriterTest, WritesNestedDocumentsWithMoneyAndEscapes) {
  JsonWriter w;
  w.BeginObject();
  w.Field("id", int64_t{12});
  w.Key("price").Money(999);
  w.Field("text", "<p>say \"hi\"\n</p>");
  w.Key("list").BeginArray().Int(1).Null().Bool(true).BeginObject().EndObject().EndArray();
  w.Key("empty").BeginArray().EndArray();
  w.Key("ratio").Double(0.25);
  w.EndObject();
  EXPECT_EQ(w.str(),
            R"({"id":12,"price":9.99,"text":"<p>say \"hi\"\n</p>","list":[1,null,true,{}],)"
            R"("empty":[],"ratio":0.25})");
}

}  // namespace
}  // namespace herald::upstream_sim
