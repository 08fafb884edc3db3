#include <limits>

#include <herald/common/strings.h>
#include <herald/upstream/money.h>

namespace herald::upstream {
namespace {

absl::Status Invalid(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(ToAbsl(StrCat("invalid money amount \"", text, "\": ", why)));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

absl::StatusOr<int64_t> ParseMoneyCents(std::string_view text, MoneyParseOptions options) {
  // Sign and currency symbol: "-$1", "$-1", "$1" and "-1" are accepted.
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (!s.empty() && s.front() == '$') s.remove_prefix(1);
  if (!negative && !s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }

  // The number: every digit of the integer and fraction parts in `digits`, and `scale`, the
  // count of digits after the decimal point once the exponent is applied.
  std::string digits;
  int64_t scale = 0;
  size_t i = 0;
  // Thousands may be grouped, as a display amount is ("$1,234.00"): a comma is taken only
  // between digits and before exactly three.
  auto group_follows = [&] {
    return s[i] == ',' && !digits.empty() && i + 3 < s.size() && IsDigit(s[i + 1]) &&
           IsDigit(s[i + 2]) && IsDigit(s[i + 3]) && (i + 4 == s.size() || !IsDigit(s[i + 4]));
  };
  while (i < s.size() && (IsDigit(s[i]) || group_follows())) {
    if (s[i] == ',') ++i;
    digits.push_back(s[i++]);
  }
  if (digits.empty()) return Invalid(text, "expected digits");
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t start = i;
    while (i < s.size() && IsDigit(s[i])) digits.push_back(s[i++]);
    if (i == start) return Invalid(text, "expected digits after the decimal point");
    scale = static_cast<int64_t>(i - start);
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool exponent_negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) exponent_negative = s[i++] == '-';
    const size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    const std::optional<int> exponent = ParseInt<int>(s.substr(start, i - start));
    // Beyond +/-400 the amount cannot fit in cents (or is all zeros); refuse rather than loop.
    if (!exponent.has_value() || *exponent > 400) return Invalid(text, "bad exponent");
    scale += exponent_negative ? *exponent : -*exponent;
  }
  if (i != s.size()) return Invalid(text, "unexpected characters");

  // Drop leading zeros, then fractional digits beyond cents, rounding half away from zero on
  // the first of them: "7.992" is 799 cents, "0.125" 13.
  const size_t first_nonzero = digits.find_first_not_of('0');
  digits.erase(0, first_nonzero == std::string::npos ? digits.size() : first_nonzero);
  bool round_up = false;
  if (scale > 2) {
    const auto dropped = static_cast<uint64_t>(scale - 2);
    if (dropped <= digits.size()) {
      round_up = digits[digits.size() - dropped] >= '5';
      digits.erase(digits.size() - dropped);
    } else {
      digits.clear();  // under a tenth of a cent
    }
    scale = 2;
  }
  if (digits.empty() && !round_up) return 0;  // "0", "-0.000", "0e5", "0.001"

  // cents = digits * 10^(2 - scale) (+1 when rounded up), checked for overflow.
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t value = 0;
  if (!digits.empty()) {
    const std::optional<uint64_t> parsed = ParseInt<uint64_t>(digits);
    if (!parsed.has_value()) return Invalid(text, "too large");
    value = *parsed;
  }
  for (int64_t k = scale; k < 2; ++k) {
    if (value > kMax / 10) return Invalid(text, "too large");
    value *= 10;
  }
  if (round_up) {
    if (value >= kMax) return Invalid(text, "too large");
    ++value;
  }
  if (value > kMax) return Invalid(text, "too large");
  if (negative && !options.allow_negative) return Invalid(text, "must not be negative");
  const auto cents = static_cast<int64_t>(value);
  return negative ? -cents : cents;
}

std::string FormatCents(int64_t cents) {
  const bool negative = cents < 0;
  // Unsigned arithmetic so that the most negative value has a magnitude too.
  const uint64_t magnitude =
      negative ? uint64_t{0} - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  const uint64_t fraction = magnitude % 100;
  return StrCat(negative ? "-" : "", magnitude / 100, ".", fraction < 10 ? "0" : "", fraction);
}

}  // namespace herald::upstream
