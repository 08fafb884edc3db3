#include <cstdio>

#include <herald/common/strings.h>
#include <herald/upstream_sim/time_format.h>

namespace herald::upstream_sim {

namespace {

// "YYYY-MM-DD<sep>HH:MM:SS" for a UTC instant, without time zone lookups (webhook bodies
// format several dates per event). Days to civil date after H. Hinnant's days_from_civil
// inverse.
void AppendUtc(std::string& out, absl::Time t, char separator) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  int64_t days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
  const int64_t of_day = seconds - days * 86400;
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2);
  char buffer[32];
  const int n =
      std::snprintf(buffer, sizeof(buffer), "%04lld-%02lld-%02lld%c%02lld:%02lld:%02lld",
                    static_cast<long long>(year), static_cast<long long>(month),
                    static_cast<long long>(day), separator, static_cast<long long>(of_day / 3600),
                    static_cast<long long>(of_day / 60 % 60), static_cast<long long>(of_day % 60));
  out.append(buffer, static_cast<size_t>(n));
}

}  // namespace

std::string FormatIsoTime(absl::Time t) {
  std::string out;
  AppendUtc(out, t, 'T');
  out.append("+00:00");
  return out;
}

std::string FormatSqlTime(absl::Time t) {
  std::string out;
  AppendUtc(out, t, ' ');
  return out;
}

std::string FormatCursorTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S", t, absl::UTCTimeZone());
}

std::optional<absl::Time> ParseClientTime(std::string_view text) {
  static constexpr const char* kFormats[] = {
      "%Y-%m-%d %H:%M:%E*S", "%Y-%m-%dT%H:%M:%E*S%Ez", "%Y-%m-%dT%H:%M:%E*SZ",
      "%Y-%m-%dT%H:%M:%E*S", "%Y-%m-%d %H:%M:%E*S%Ez", "%Y-%m-%d",
  };
  for (const char* format : kFormats) {
    absl::Time t;
    std::string error;
    if (absl::ParseTime(format, ToAbsl(text), absl::UTCTimeZone(), &t, &error)) return t;
  }
  return std::nullopt;
}

}  // namespace herald::upstream_sim
