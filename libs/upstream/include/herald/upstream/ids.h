// The upstream's identifiers, as Herald accepts them.
#pragma once

#include <string_view>

namespace herald::upstream {

// Whether `id` is an upstream creator account id: "acct_" then 1-64 ASCII letters or digits.
constexpr bool IsAccountId(std::string_view id) {
  constexpr std::string_view kPrefix = "acct_";
  if (!id.starts_with(kPrefix)) return false;
  const std::string_view rest = id.substr(kPrefix.size());
  if (rest.empty() || rest.size() > 64) return false;
  for (const char c : rest) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum) return false;
  }
  return true;
}

}  // namespace herald::upstream
