#include <cstdint>
#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/upstream/money.h>

namespace herald::upstream {
namespace {

using ::testing::HasSubstr;

int64_t Cents(std::string_view text, MoneyParseOptions options = {}) {
  absl::StatusOr<int64_t> cents = ParseMoneyCents(text, options);
  EXPECT_TRUE(cents.ok()) << text << ": " << cents.status();
  return cents.value_or(-999999);
}

std::string Error(std::string_view text, MoneyParseOptions options = {}) {
  absl::StatusOr<int64_t> cents = ParseMoneyCents(text, options);
  EXPECT_FALSE(cents.ok()) << text << " parsed as " << cents.value_or(0);
  EXPECT_EQ(cents.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(cents.status().message());
}

TEST(ParseMoneyCents, PlainDecimals) {
  EXPECT_EQ(Cents("9.99"), 999);
  EXPECT_EQ(Cents("15.2"), 1520);
  EXPECT_EQ(Cents("25"), 2500);
  EXPECT_EQ(Cents("0"), 0);
  EXPECT_EQ(Cents("0.01"), 1);
  EXPECT_EQ(Cents("0.5"), 50);
  EXPECT_EQ(Cents("139.86"), 13986);
  EXPECT_EQ(Cents("200.00"), 20000);
  EXPECT_EQ(Cents("007.50"), 750);
}

TEST(ParseMoneyCents, ValuesThatAreInexactInBinary) {
  // Each of these is a classic double pitfall: 0.1 + 0.2 != 0.3, 1.15 * 100 = 114.99999...
  EXPECT_EQ(Cents("0.1") + Cents("0.2"), Cents("0.3"));
  EXPECT_EQ(Cents("0.3"), 30);
  EXPECT_EQ(Cents("1.15"), 115);
  EXPECT_EQ(Cents("4.35"), 435);
  EXPECT_EQ(Cents("8.29"), 829);
  EXPECT_EQ(Cents("19.99"), 1999);
  EXPECT_EQ(Cents("1.005e2"), 10050);
  // Beyond double precision: still exact.
  EXPECT_EQ(Cents("115886693330064.09"), 11588669333006409);
  EXPECT_EQ(Cents("90071992547409.93"), 9007199254740993);
}

TEST(ParseMoneyCents, DollarSignAndSign) {
  EXPECT_EQ(Cents("$12.00"), 1200);
  EXPECT_EQ(Cents("$0.99"), 99);
  EXPECT_EQ(Cents("-$3", {.allow_negative = true}), -300);
  EXPECT_EQ(Cents("$-3.5", {.allow_negative = true}), -350);
  EXPECT_EQ(Cents("-0.25", {.allow_negative = true}), -25);
  EXPECT_EQ(Cents("-0.00"), 0);  // negative zero is zero, not a negative amount
}

TEST(ParseMoneyCents, TrailingZerosBeyondCentsAreFine) {
  EXPECT_EQ(Cents("1.230"), 123);
  EXPECT_EQ(Cents("1.2300000"), 123);
  EXPECT_EQ(Cents("5.000"), 500);
}

TEST(ParseMoneyCents, ExponentsAsJsonNumbersHaveThem) {
  EXPECT_EQ(Cents("1.5e1"), 1500);
  EXPECT_EQ(Cents("1.5E+1"), 1500);
  EXPECT_EQ(Cents("1e2"), 10000);
  EXPECT_EQ(Cents("999e-2"), 999);
  EXPECT_EQ(Cents("0e400"), 0);
  EXPECT_EQ(Cents("1e-3"), 0);
  EXPECT_EQ(Cents("5e-3"), 1);
  EXPECT_THAT(Error("1e"), HasSubstr("exponent"));
  EXPECT_THAT(Error("1e+"), HasSubstr("exponent"));
  EXPECT_THAT(Error("1e999"), HasSubstr("exponent"));
}

TEST(ParseMoneyCents, RoundsBeyondCentsHalfAwayFromZero) {
  EXPECT_EQ(Cents("1.234"), 123);
  EXPECT_EQ(Cents("7.992"), 799);
  EXPECT_EQ(Cents("0.125"), 13);
  EXPECT_EQ(Cents("0.1249999"), 12);
  EXPECT_EQ(Cents("0.001"), 0);
  EXPECT_EQ(Cents("0.005"), 1);
  EXPECT_EQ(Cents("9.999"), 1000);
  EXPECT_EQ(Cents("1.2301"), 123);
  EXPECT_EQ(Cents("-0.005", {.allow_negative = true}), -1);
  EXPECT_EQ(Cents("-1.234", {.allow_negative = true}), -123);
  EXPECT_EQ(Cents("92233720368547758.07"), 9223372036854775807);
  EXPECT_THAT(Error("92233720368547758.075"), HasSubstr("too large"));
}

TEST(ParseMoneyCents, GroupedThousands) {
  EXPECT_EQ(Cents("$1,234.50"), 123450);
  EXPECT_EQ(Cents("1,000"), 100000);
  EXPECT_EQ(Cents("12,345,678.9"), 1234567890);
  EXPECT_EQ(Cents("-$1,000", {.allow_negative = true}), -100000);
}

TEST(ParseMoneyCents, RejectsJunk) {
  for (std::string_view bad :
       {"abc",    "",        " 1",   "1 ",  "1,00",     "1,0000", ",100", "1,",
        "1,,000", "1.000,5", "1.",   ".5",  "$",        "-",      "--1",  "+1",
        "1.2.3",  "12USD",   "0x10", "NaN", "Infinity", "1_000",  "$$1",  "-$-1"}) {
    EXPECT_THAT(Error(bad, {.allow_negative = true}), HasSubstr("invalid money amount"))
        << "'" << bad << "'";
  }
}

TEST(ParseMoneyCents, RejectsNegativesUnlessAllowed) {
  EXPECT_THAT(Error("-1"), HasSubstr("must not be negative"));
  EXPECT_THAT(Error("-$12.00"), HasSubstr("must not be negative"));
  EXPECT_THAT(Error("-0.01"), HasSubstr("must not be negative"));
}

TEST(ParseMoneyCents, Range) {
  EXPECT_EQ(Cents("92233720368547758.07"), std::numeric_limits<int64_t>::max());
  EXPECT_THAT(Error("92233720368547758.08"), HasSubstr("too large"));
  EXPECT_THAT(Error("100000000000000000000"), HasSubstr("too large"));
  EXPECT_EQ(Cents("-92233720368547758.07", {.allow_negative = true}),
            -std::numeric_limits<int64_t>::max());
}

TEST(FormatCents, TwoDecimals) {
  EXPECT_EQ(FormatCents(1520), "15.20");
  EXPECT_EQ(FormatCents(999), "9.99");
  EXPECT_EQ(FormatCents(5), "0.05");
  EXPECT_EQ(FormatCents(0), "0.00");
  EXPECT_EQ(FormatCents(-5), "-0.05");
  EXPECT_EQ(FormatCents(-12345), "-123.45");
  EXPECT_EQ(FormatCents(std::numeric_limits<int64_t>::min()), "-92233720368547758.08");
}

TEST(FormatCents, RoundTrips) {
  for (int64_t cents : {int64_t{0}, int64_t{1}, int64_t{99}, int64_t{100}, int64_t{1520},
                        int64_t{20000}, int64_t{123456789}, std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(Cents(FormatCents(cents)), cents);
  }
}

}  // namespace
}  // namespace herald::upstream
