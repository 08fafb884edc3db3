// Date spellings used by the upstream, all in UTC.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <absl/time/time.h>

namespace herald::upstream_sim {

// "2025-01-01T01:01:01+00:00": queue items, messages, notifications.
std::string FormatIsoTime(absl::Time t);
// "2025-01-01 01:01:01": transactions and the `Y-m-d H:i:s` query parameters.
std::string FormatSqlTime(absl::Time t);
// "2025-01-01 01:01:01.123456": a query cursor that keeps sub-second order.
std::string FormatCursorTime(absl::Time t);

// Parses what clients send for dates: "Y-m-d H:i:s" (optionally with a fraction), "Y-m-d",
// and ISO-8601 with "Z" or a numeric offset ("2025-01-01T00:00:00.000Z"). nullopt otherwise.
std::optional<absl::Time> ParseClientTime(std::string_view text);

}  // namespace herald::upstream_sim
