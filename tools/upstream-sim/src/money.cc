#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include <herald/common/strings.h>
#include <herald/upstream_sim/money.h>

namespace herald::upstream_sim {

std::optional<int64_t> ParseDollarText(std::string_view text) {
  bool negative = false;
  if (text.starts_with('-')) {
    negative = true;
    text.remove_prefix(1);
  }
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 12) return std::nullopt;
  if (dot != std::string_view::npos && (fraction.empty() || fraction.size() > 2)) {
    return std::nullopt;
  }
  for (char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  for (char c : fraction) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int64_t cents = *ParseInt<int64_t>(whole) * 100;
  if (fraction.size() == 1) cents += (fraction[0] - '0') * 10;
  if (fraction.size() == 2) cents += (fraction[0] - '0') * 10 + (fraction[1] - '0');
  return negative ? -cents : cents;
}

std::optional<int64_t> CentsFromDouble(double dollars) {
  if (!std::isfinite(dollars) || std::fabs(dollars) > 1e12) return std::nullopt;
  // The shortest text that reads back as the same double is what was written (9.99, not
  // 9.9900000000000002): held to the same rule as text, so 2.9999999 is refused, not rounded
  // to 3.00.
  char text[32];
  const auto [end, error] = std::to_chars(text, text + sizeof text, dollars);
  if (error != std::errc()) return std::nullopt;
  const std::string_view written(text, static_cast<size_t>(end - text));
  if (written.find_first_of("eE") != std::string_view::npos) return std::nullopt;
  return ParseDollarText(written);
}

std::string FormatDecimal(int64_t cents) {
  const bool negative = cents < 0;
  const uint64_t abs = negative ? 0 - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  const uint64_t frac = abs % 100;
  return StrCat(negative ? "-" : "", abs / 100, ".", frac < 10 ? "0" : "", frac);
}

std::string FormatNumber(int64_t cents) {
  const bool negative = cents < 0;
  const uint64_t abs = negative ? 0 - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  const uint64_t frac = abs % 100;
  std::string out = StrCat(negative ? "-" : "", abs / 100);
  if (frac == 0) return out;
  if (frac % 10 == 0) return StrCat(out, ".", frac / 10);
  return StrCat(out, ".", frac < 10 ? "0" : "", frac);
}

std::string FormatDollars(int64_t cents) { return StrCat("$", FormatDecimal(cents)); }

}  // namespace herald::upstream_sim
