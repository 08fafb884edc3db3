// Start-up configuration helpers.
//
// Herald's binaries define their flags with ABSL_FLAG; every flag can also be set through the
// environment as HERALD_<FLAG_NAME> (HERALD_DRAIN_TIMEOUT=10s), which is how Kubernetes
// manifests configure it. The command line wins over the environment. Flags are read once, at
// start-up, into typed per-component structs and validated; libraries take those structs and
// never read flags themselves.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>

namespace herald::config {

// "drain_timeout" -> "HERALD_DRAIN_TIMEOUT".
std::string EnvironmentName(std::string_view flag_name);

// Sets every registered Herald flag (flags defined outside Abseil) whose HERALD_<NAME> variable
// is present in the environment. Call before absl::ParseCommandLine so the command line wins.
// Returns InvalidArgument naming the variable when a value does not parse.
absl::Status ApplyEnvironment();

// The names of the environment's HERALD_* variables that set no registered Herald flag and are
// not in `also_known` (another program's, heraldctl's say): most likely misspelt settings, which
// ApplyEnvironment passes over. Sorted.
std::vector<std::string> UnknownEnvironment(const std::vector<std::string_view>& also_known);

// Returns argv with "--flag-name" rewritten to "--flag_name" (up to any '='), so both spellings
// are accepted. Arguments after a bare "--" are left alone. `storage` owns the rewritten strings.
std::vector<char*> NormalizeFlagSpelling(int argc, char** argv, std::vector<std::string>& storage);

// A "host:port" listen or connect address. IPv6 hosts are written in brackets: "[::1]:9090".
struct HostPort {
  std::string host;
  uint16_t port = 0;

  std::string ToString() const;
};

// Parses "host:port"; port 0 is allowed only when `allow_zero_port` (listen on any free port).
// Errors name the flag: "--admin_address: missing port in 'localhost'".
absl::StatusOr<HostPort> ParseHostPort(std::string_view flag, std::string_view value,
                                       bool allow_zero_port = true);

// Validation with messages that name the flag.
absl::Status RequirePositive(std::string_view flag, absl::Duration value);
absl::Status RequireInRange(std::string_view flag, int64_t value, int64_t min, int64_t max);
absl::Status RequireOneOf(std::string_view flag, std::string_view value,
                          std::initializer_list<std::string_view> allowed);

}  // namespace herald::config
