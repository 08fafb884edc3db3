// Money in the simulator: integer cents inside, the upstream's decimal spellings on the wire.
//
// The upstream writes prices as JSON numbers in dollars (25, 9.99), revenue as strings with two
// decimals ("139.86") and webhook amounts as decimal numbers (17, 13.6). Requests are parsed
// exactly: a price with more than two decimals is rejected rather than rounded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::upstream_sim {

// "9.99" -> 999, "25" -> 2500, "3.5" -> 350. Digits with an optional '.' and at most two
// decimals; an optional leading '-'. nullopt for anything else (exponents, junk, overflow).
std::optional<int64_t> ParseDollarText(std::string_view text);

// A JSON number that arrived as a double (9.99 is 9.9900000000000002 in binary): its value in
// cents when it has at most two decimals, nullopt otherwise (9.999, NaN, out of range).
std::optional<int64_t> CentsFromDouble(double dollars);

// 13986 -> "139.86", 2500 -> "25.00", -150 -> "-1.50". For revenue strings.
std::string FormatDecimal(int64_t cents);

// The shortest decimal spelling, as the upstream writes JSON numbers: 2500 -> "25",
// 999 -> "9.99", 1360 -> "13.6", 0 -> "0".
std::string FormatNumber(int64_t cents);

// 1200 -> "$12.00", for the {AMOUNT} replace pair.
std::string FormatDollars(int64_t cents);

}  // namespace herald::upstream_sim
