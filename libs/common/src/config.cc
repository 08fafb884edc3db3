#include <algorithm>
#include <cstdlib>

#include <absl/flags/commandlineflag.h>
#include <absl/flags/reflection.h>
#include <unistd.h>

#include <herald/common/config.h>
#include <herald/common/strings.h>

namespace herald::config {

std::string EnvironmentName(std::string_view flag_name) {
  std::string name = AsciiUpper(StrCat("HERALD_", flag_name));
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

absl::Status ApplyEnvironment() {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    // Abseil's own flags (--help, --flagfile, ...) are not configurable from the environment.
    if (flag->Filename().find("absl/") != std::string::npos) continue;
    const std::string env = EnvironmentName(ToStd(name));
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          StrCat(env, "='", value, "' is not a valid value for --", name, ": ", error));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> UnknownEnvironment(const std::vector<std::string_view>& also_known) {
  std::vector<std::string> known;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->Filename().find("absl/") == std::string::npos) {
      known.push_back(EnvironmentName(ToStd(name)));
    }
  }
  std::vector<std::string> unknown;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view variable(*entry);
    const std::string_view name = variable.substr(0, variable.find('='));
    if (!name.starts_with("HERALD_")) continue;
    if (std::find(known.begin(), known.end(), name) != known.end() ||
        std::find(also_known.begin(), also_known.end(), name) != also_known.end()) {
      continue;
    }
    unknown.emplace_back(name);
  }
  std::sort(unknown.begin(), unknown.end());
  return unknown;
}

std::vector<char*> NormalizeFlagSpelling(int argc, char** argv, std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  bool after_terminator = false;
  for (size_t i = 1; i < storage.size(); ++i) {
    std::string& arg = storage[i];
    if (arg == "--") after_terminator = true;
    if (after_terminator || arg.size() < 3 || arg[0] != '-') continue;
    const size_t start = arg[1] == '-' ? 2 : 1;
    const size_t end = std::min(arg.find('='), arg.size());
    for (size_t j = start; j < end; ++j) {
      if (arg[j] == '-') arg[j] = '_';
    }
  }
  std::vector<char*> out;
  out.reserve(storage.size() + 1);
  for (std::string& s : storage) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return StrCat("[", host, "]:", port);
  return StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view flag, std::string_view value,
                                       bool allow_zero_port) {
  auto fail = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("--", flag, ": ", why, " in '", value, "'"));
  };
  HostPort out;
  std::string_view port;
  if (value.starts_with('[')) {
    const size_t close = value.find(']');
    if (close == std::string_view::npos) return fail("unterminated '['");
    out.host = std::string(value.substr(1, close - 1));
    std::string_view rest = value.substr(close + 1);
    if (!rest.starts_with(':')) return fail("missing port");
    port = rest.substr(1);
  } else {
    const size_t colon = value.rfind(':');
    if (colon == std::string_view::npos) return fail("missing port");
    out.host = std::string(value.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return fail("IPv6 hosts must be in brackets");
    port = value.substr(colon + 1);
  }
  if (out.host.empty()) return fail("missing host");
  const std::optional<uint16_t> n = ParseInt<uint16_t>(port);
  if (!n) return fail("invalid port");
  if (*n == 0 && !allow_zero_port) return fail("port 0 is not allowed");
  out.port = *n;
  return out;
}

absl::Status RequirePositive(std::string_view flag, absl::Duration value) {
  if (value > absl::ZeroDuration() && value != absl::InfiniteDuration()) return absl::OkStatus();
  return absl::InvalidArgumentError(StrCat("--", flag, " must be a positive, finite duration (got ",
                                           absl::FormatDuration(value), ")"));
}

absl::Status RequireInRange(std::string_view flag, int64_t value, int64_t min, int64_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat("--", flag, " must be in [", min, ", ", max, "] (got ", value, ")"));
}

absl::Status RequireOneOf(std::string_view flag, std::string_view value,
                          std::initializer_list<std::string_view> allowed) {
  for (std::string_view a : allowed) {
    if (value == a) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      StrCat("--", flag, " must be one of ", StrJoin(allowed, ", "), " (got '", value, "')"));
}

}  // namespace herald::config
