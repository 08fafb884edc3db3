// Parsing of flag values: money, id lists, times, secrets. Pure functions; errors name the flag.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>

namespace google::protobuf {
class Timestamp;
}  // namespace google::protobuf

namespace herald::heraldctl {

// "15", "15.5", "15.00", "$15.00" -> cents (1500, 1550, 1500, 1500), exactly, without floating
// point. At most two decimals; negative amounts are refused.
absl::StatusOr<int64_t> ParsePriceCents(std::string_view flag, std::string_view value);

// "a,b, c" -> {"a", "b", "c"}; empty pieces are dropped.
std::vector<std::string> ParseList(std::string_view value);

// Fan ids separated by commas, spaces or newlines (a --fans value or a --fans-file's text);
// every id a positive integer. A fan given again is kept once, where it came first (an export
// may repeat fans; the server refuses a target that names one twice).
absl::StatusOr<std::vector<int64_t>> ParseFanIds(std::string_view flag, std::string_view value);

// An RFC 3339 time ("2026-05-01T20:00:00Z", "2026-05-01T20:00:00+02:00").
absl::StatusOr<absl::Time> ParseTime(std::string_view flag, std::string_view value);

// `t` to the nanosecond.
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);

// A duration ("15m", "1h30m", "90s").
absl::StatusOr<absl::Duration> ParseDurationFlag(std::string_view flag, std::string_view value);

// A positive look-back period: a duration as above, or whole days ("7d", "30d").
absl::StatusOr<absl::Duration> ParseLookback(std::string_view flag, std::string_view value);

// A non-negative int32 ("--pace=60").
absl::StatusOr<int32_t> ParseCount(std::string_view flag, std::string_view value);

// The whole of a file ("-" is standard input). NotFound/InvalidArgument naming the path.
absl::StatusOr<std::string> ReadFile(std::string_view path);

// A secret read from a file (trailing newlines removed) or an environment variable's value;
// empty secrets are refused.
absl::StatusOr<std::string> TrimSecret(std::string_view source, std::string value);

}  // namespace herald::heraldctl
