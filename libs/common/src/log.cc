#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <unistd.h>

#include <herald/common/log.h>
#include <herald/common/strings.h>

namespace herald::log {
namespace {

struct State {
  std::atomic<int> min_level{static_cast<int>(Level::kInfo)};
  bool json = true;
  Sink sink;
  std::mutex write_mu;
};

State& GetState() {
  static State* const state = new State();
  return *state;
}

void AppendDouble(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append(std::isnan(v) ? "NaN" : (v > 0 ? "Inf" : "-Inf"));
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void AppendJsonValue(std::string& out, const Field::Value& value) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          out.append(v ? "true" : "false");
        } else if constexpr (std::is_same_v<T, double>) {
          if (std::isfinite(v)) {
            AppendDouble(out, v);
          } else {
            out.push_back('"');
            AppendDouble(out, v);
            out.push_back('"');
          }
        } else if constexpr (std::is_integral_v<T>) {
          StrAppend(&out, v);
        } else {
          AppendJsonString(out, v);
        }
      },
      value);
}

bool NeedsQuoting(std::string_view s) {
  if (s.empty()) return true;
  for (char c : s) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

void AppendTextValue(std::string& out, const Field::Value& value) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          out.append(v ? "true" : "false");
        } else if constexpr (std::is_same_v<T, double>) {
          AppendDouble(out, v);
        } else if constexpr (std::is_integral_v<T>) {
          StrAppend(&out, v);
        } else if (NeedsQuoting(v)) {
          AppendJsonString(out, v);
        } else {
          out.append(v);
        }
      },
      value);
}

}  // namespace

absl::StatusOr<Level> ParseLevel(std::string_view name) {
  const std::string lower = AsciiLower(name);
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warn" || lower == "warning") return Level::kWarn;
  if (lower == "error") return Level::kError;
  return absl::InvalidArgumentError(
      StrCat("unknown log level '", name, "' (want debug, info, warn or error)"));
}

absl::StatusOr<Format> ParseFormat(std::string_view name) {
  const std::string lower = AsciiLower(name);
  if (lower == "auto") return Format::kAuto;
  if (lower == "json") return Format::kJson;
  if (lower == "text") return Format::kText;
  return absl::InvalidArgumentError(
      StrCat("unknown log format '", name, "' (want auto, json or text)"));
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "unknown";
}

void Configure(Options options) {
  State& state = GetState();
  std::lock_guard lock(state.write_mu);
  state.min_level.store(static_cast<int>(options.min_level), std::memory_order_relaxed);
  switch (options.format) {
    case Format::kJson:
      state.json = true;
      break;
    case Format::kText:
      state.json = false;
      break;
    case Format::kAuto:
      state.json = !isatty(STDERR_FILENO);
      break;
  }
  state.sink = std::move(options.sink);
}

bool Enabled(Level level) {
  return static_cast<int>(level) >= GetState().min_level.load(std::memory_order_relaxed);
}

std::string FormatJson(absl::Time time, Level level, std::string_view message, Fields fields) {
  std::string out;
  out.reserve(128);
  out.append("{\"ts\":\"");
  out.append(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone()));
  out.append("\",\"level\":\"");
  out.append(LevelName(level));
  out.append("\",\"msg\":");
  AppendJsonString(out, message);
  for (const Field& field : fields) {
    out.push_back(',');
    AppendJsonString(out, field.key());
    out.push_back(':');
    AppendJsonValue(out, field.value());
  }
  out.append("}\n");
  return out;
}

std::string FormatText(absl::Time time, Level level, std::string_view message, Fields fields) {
  std::string out;
  out.reserve(128);
  out.append(absl::FormatTime("%Y-%m-%d %H:%M:%E3S", time, absl::UTCTimeZone()));
  out.push_back(' ');
  std::string_view name = LevelName(level);
  out.append(AsciiUpper(name));
  out.append(6 - name.size(), ' ');
  out.append(message);
  for (const Field& field : fields) {
    out.append("  ");
    out.append(field.key());
    out.push_back('=');
    AppendTextValue(out, field.value());
  }
  out.push_back('\n');
  return out;
}

void AbortOnException(std::exception_ptr e, std::string_view what) {
  if (!e) return;
  std::string error;
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& ex) {
    error = ex.what();
  } catch (...) {
    error = "an exception that is not a std::exception";
  }
  Write(Level::kError, "unexpected exception; aborting", {{"in", what}, {"error", error}});
  std::abort();
}

void Write(Level level, std::string_view message, Fields fields) {
  State& state = GetState();
  const absl::Time now = absl::Now();
  std::lock_guard lock(state.write_mu);
  const std::string line = state.json ? FormatJson(now, level, message, fields)
                                      : FormatText(now, level, message, fields);
  if (state.sink) {
    state.sink(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }
}

}  // namespace herald::log
