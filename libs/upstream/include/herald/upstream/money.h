// Exact money amounts: upstream decimals in dollars to Herald's integer cents, and back.
//
// The upstream writes amounts as JSON strings ("9.99", "$12.00") or JSON numbers (15.2, 25).
// Both arrive here as decimal text and are converted digit by digit, never through a binary
// floating-point value, so "15.2" is exactly 1520 cents and "0.1" + "0.2" are exactly 30.
// (JSON numbers are read from their source text; see JsonDocument in src/json.h.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>

namespace herald::upstream {

struct MoneyParseOptions {
  bool allow_negative = false;  // refunds and adjustments; prices and totals are never negative
};

// Parses a dollar amount into cents. Accepted: an optional '-', an optional '$', decimal digits,
// an optional fraction, and an optional exponent as JSON numbers may have ("1.5e1"), the
// integer part's thousands grouped by commas or not:
//   "9.99" -> 999, "15.2" -> 1520, "25" -> 2500, "$12.00" -> 1200, "1.230" -> 123, "-$3" -> -300,
//   "$1,234.50" -> 123450.
// Digits beyond cents (a net amount computed as 80% of 9.99, say) are rounded to the nearest
// cent, half away from zero: "7.992" -> 799, "0.125" -> 13, "-0.005" -> -1. Refusing them would
// refuse the whole event, which the upstream would retry and then drop.
// Rejected with kInvalidArgument: anything else ("abc", "", " 1", "1,00", ",100", "1."), negatives
// unless allowed, and amounts beyond +/-92,233,720,368,547,758.07 dollars.
absl::StatusOr<int64_t> ParseMoneyCents(std::string_view text, MoneyParseOptions options = {});

// Cents as a decimal dollar amount with exactly two decimals: 1520 -> "15.20", -5 -> "-0.05".
// The result is valid JSON number text and round-trips through ParseMoneyCents.
std::string FormatCents(int64_t cents);

}  // namespace herald::upstream
