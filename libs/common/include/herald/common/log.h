// Structured logging.
//
// One event per line: JSON objects in production (for log shippers), aligned readable text when
// stderr is a terminal. Every event has a time, a level, a message and typed fields:
//
//   log::Info("lease batch", {{"shard", 3}, {"jobs", n}});
//   log::Warn("upstream call failed", {{"kind", "send_mass_message"}, {"status", status}});
//
// Secrets, API keys and fan personal data never go into a log field.
//
// Thread-safe. A line is written with one write call, so concurrent lines never interleave.
// Configure() is meant for start-up, before other threads log.
#pragma once

#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>

namespace herald::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Format { kAuto, kJson, kText };

absl::StatusOr<Level> ParseLevel(std::string_view name);    // "debug", "info", "warn", "error"
absl::StatusOr<Format> ParseFormat(std::string_view name);  // "auto", "json", "text"
std::string_view LevelName(Level level);

// A named value attached to a log event. Borrowed strings must live until the call returns,
// which is always the case for fields written inline at the call site.
class Field {
 public:
  using Value = std::variant<std::string_view, std::string, int64_t, uint64_t, double, bool>;

  Field(std::string_view key, std::string_view value) : key_(key), value_(value) {}
  Field(std::string_view key, const char* value) : key_(key), value_(std::string_view(value)) {}
  Field(std::string_view key, const std::string& value)
      : key_(key), value_(std::string_view(value)) {}
  Field(std::string_view key, absl::string_view value)
      : key_(key), value_(std::string_view(value.data(), value.size())) {}
  Field(std::string_view key, bool value) : key_(key), value_(value) {}
  template <std::signed_integral T>
  Field(std::string_view key, T value) : key_(key), value_(static_cast<int64_t>(value)) {}
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) Field(std::string_view key, T value)
      : key_(key), value_(static_cast<uint64_t>(value)) {}
  Field(std::string_view key, double value) : key_(key), value_(value) {}
  Field(std::string_view key, const absl::Status& status) : key_(key), value_(status.ToString()) {}
  Field(std::string_view key, absl::Duration d) : key_(key), value_(absl::FormatDuration(d)) {}

  std::string_view key() const { return key_; }
  const Value& value() const { return value_; }

 private:
  std::string_view key_;
  Value value_;
};

using Fields = std::initializer_list<Field>;

// Where formatted lines go. The default writes to stderr.
using Sink = std::function<void(std::string_view line)>;

struct Options {
  Level min_level = Level::kInfo;
  Format format = Format::kAuto;  // kAuto: text on a terminal, JSON otherwise.
  Sink sink;                      // Empty: stderr.
};

void Configure(Options options);

bool Enabled(Level level);
void Write(Level level, std::string_view message, Fields fields);

inline void Debug(std::string_view message, Fields fields = {}) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, message, fields);
}
inline void Info(std::string_view message, Fields fields = {}) {
  if (Enabled(Level::kInfo)) Write(Level::kInfo, message, fields);
}
inline void Warn(std::string_view message, Fields fields = {}) {
  if (Enabled(Level::kWarn)) Write(Level::kWarn, message, fields);
}
inline void Error(std::string_view message, Fields fields = {}) {
  if (Enabled(Level::kError)) Write(Level::kError, message, fields);
}

// For the completion handler of a detached coroutine that reports its errors as values, where an
// exception is a bug (or out of memory): logs it as `what` failing and aborts the process, as
// the error policy has it (docs/architecture.md), rather than letting it escape an io thread's
// run() and end the process with no word. Returns when `e` is null.
void AbortOnException(std::exception_ptr e, std::string_view what);

// Formatting, exposed for tests.
std::string FormatJson(absl::Time time, Level level, std::string_view message, Fields fields);
std::string FormatText(absl::Time time, Level level, std::string_view message, Fields fields);

}  // namespace herald::log
