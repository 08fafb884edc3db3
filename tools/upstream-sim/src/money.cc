#include <algorithm>
#include <cmath>
#include <cstdlib>

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
  const double scaled = dollars * 100.0;
  const double rounded = std::round(scaled);
  // A double that was written with two decimals lands within a few ulps of an integer once
  // scaled; anything further away had a third decimal.
  if (std::fabs(scaled - rounded) > 1e-6 * std::max(1.0, std::fabs(scaled))) return std::nullopt;
  return static_cast<int64_t>(rounded);
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
