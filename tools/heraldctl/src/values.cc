#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <unordered_set>

#include <google/protobuf/timestamp.pb.h>

#include <herald/common/strings.h>
#include <herald/heraldctl/values.h>

namespace herald::heraldctl {
namespace {

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<int64_t> ParsePriceCents(std::string_view flag, std::string_view value) {
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("--", flag, ": '", value, "' ", why));
  };
  std::string_view s = value;
  if (!s.empty() && s.front() == '$') s.remove_prefix(1);
  const size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? "" : s.substr(dot + 1);
  if (!AllDigits(whole) || whole.size() > 9) return bad("is not an amount like 15.00");
  if (dot != std::string_view::npos && (!AllDigits(fraction) || fraction.size() > 2)) {
    return bad("has more than two decimals or is not an amount like 15.00");
  }
  int64_t cents = *ParseInt<int64_t>(whole) * 100;
  if (fraction.size() == 1) cents += (fraction[0] - '0') * 10;
  if (fraction.size() == 2) cents += *ParseInt<int64_t>(fraction);
  return cents;
}

std::vector<std::string> ParseList(std::string_view value) {
  std::vector<std::string> out;
  for (std::string_view piece : StrSplit(value, ',')) {
    while (!piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    while (!piece.empty() && piece.back() == ' ') piece.remove_suffix(1);
    if (!piece.empty()) out.emplace_back(piece);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> ParseFanIds(std::string_view flag, std::string_view value) {
  std::vector<int64_t> ids;
  std::unordered_set<int64_t> seen;
  size_t i = 0;
  while (i < value.size()) {
    const char c = value[i];
    if (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < value.size() && value[end] != ',' && value[end] != ' ' && value[end] != '\n' &&
           value[end] != '\r' && value[end] != '\t') {
      ++end;
    }
    const std::string_view token = value.substr(i, end - i);
    const std::optional<int64_t> id = ParseInt<int64_t>(token);
    if (!id || *id <= 0) {
      return absl::InvalidArgumentError(
          StrCat("--", flag, ": '", token, "' is not a fan id (a positive integer)"));
    }
    if (seen.insert(*id).second) ids.push_back(*id);
    i = end;
  }
  if (ids.empty()) return absl::InvalidArgumentError(StrCat("--", flag, ": no fan ids"));
  return ids;
}

absl::StatusOr<absl::Time> ParseTime(std::string_view flag, std::string_view value) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, ToAbsl(value), &t, &error)) {
    return absl::InvalidArgumentError(
        StrCat("--", flag, ": '", value, "' is not an RFC 3339 time like 2026-05-01T20:00:00Z"));
  }
  return t;
}

absl::StatusOr<absl::Duration> ParseDurationFlag(std::string_view flag, std::string_view value) {
  absl::Duration d;
  if (!absl::ParseDuration(ToAbsl(value), &d) || d < absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        StrCat("--", flag, ": '", value, "' is not a duration like 15m or 1h30m"));
  }
  return d;
}

absl::StatusOr<absl::Duration> ParseLookback(std::string_view flag, std::string_view value) {
  // Longer than any range Herald keeps; also keeps the days in range of absl::Hours.
  constexpr int64_t kMaxDays = 100 * 365;
  absl::Duration d;
  if (value.ends_with('d')) {
    const std::optional<int64_t> days = ParseInt<int64_t>(value.substr(0, value.size() - 1));
    if (!days || *days <= 0 || *days > kMaxDays) {
      return absl::InvalidArgumentError(
          StrCat("--", flag, ": '", value, "' is not a number of days like 7d"));
    }
    return absl::Hours(24 * *days);
  }
  if (!absl::ParseDuration(ToAbsl(value), &d) || d <= absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        StrCat("--", flag, ": '", value, "' is not a period like 7d, 12h or 90m"));
  }
  return d;
}

absl::StatusOr<int32_t> ParseCount(std::string_view flag, std::string_view value) {
  const std::optional<int32_t> n = ParseInt<int32_t>(value);
  if (!n || *n < 0) {
    return absl::InvalidArgumentError(
        StrCat("--", flag, ": '", value, "' is not a non-negative integer"));
  }
  return *n;
}

absl::StatusOr<std::string> ReadFile(std::string_view path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::error_code ec;
  if (std::filesystem::is_directory(std::string(path), ec)) {
    return absl::InvalidArgumentError(StrCat("cannot read ", path, ": it is a directory"));
  }
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) {
    return absl::InvalidArgumentError(StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::string text;
  char buffer[64 << 10];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) {
    return absl::InvalidArgumentError(StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  return text;
}

absl::StatusOr<std::string> TrimSecret(std::string_view source, std::string value) {
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  if (value.empty()) return absl::InvalidArgumentError(StrCat(source, " is empty"));
  return value;
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

}  // namespace herald::heraldctl
