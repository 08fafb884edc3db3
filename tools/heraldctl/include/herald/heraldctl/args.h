// Command-line parsing for heraldctl: `heraldctl <resource> <verb> [args] [flags]`.
//
// Pure: no I/O, no environment access (the caller passes a lookup), so every rule is unit
// tested. Flags are written `--name=value` or `--name value`; boolean flags `--name`,
// `--name=true|false`. Dashes and underscores in flag names are interchangeable. Flags may come
// before, between or after the positional arguments; a bare `--` ends the flags.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

namespace herald::heraldctl {

// One flag a command accepts.
struct FlagSpec {
  std::string name;        // without dashes, with dashes between words: "display-name"
  std::string value_name;  // "N", "FILE", ...; empty for a boolean flag
  std::string help;
};

struct ParsedCommand;
class Session;

// One `<resource> <verb>` pair.
struct CommandSpec {
  std::string resource;  // "campaigns"
  std::string verb;      // "create"
  std::string args;      // usage of the positional arguments, e.g. "NAME" or "ACCOUNT LIST_ID"
  int min_args = 0;
  int max_args = 0;     // -1: any number
  std::string summary;  // one line
  std::string details;  // more paragraphs for --help; may be empty
  std::vector<FlagSpec> flags;
  // Runs the command; returns the process exit code (see exit_codes.h).
  int (*run)(Session& session, const ParsedCommand& command) = nullptr;
};

// Flags every command accepts, with their environment variables.
struct GlobalOptions {
  std::string server = "127.0.0.1:7070";  // --server, HERALD_SERVER
  std::string key;                        // --key, HERALD_API_KEY (or --key-file)
  std::string key_file;                   // --key-file, HERALD_API_KEY_FILE
  std::string tenant;                     // --tenant, HERALD_TENANT
  bool json = false;                      // --json
  bool tls = false;                       // --tls, HERALD_TLS=1
  // TLS with a private CA and a client certificate (mTLS); any of them means TLS.
  std::string tls_ca_file;  // --tls-ca-file, HERALD_TLS_CA_FILE: PEM roots instead of the system's
  std::string tls_cert_file;  // --tls-cert-file, HERALD_TLS_CERT_FILE: client certificate chain
  std::string tls_key_file;   // --tls-key-file, HERALD_TLS_KEY_FILE: its private key
  int timeout_seconds = 30;   // --timeout (seconds), HERALD_TIMEOUT

  bool UsesTls() const {
    return tls || !tls_ca_file.empty() || !tls_cert_file.empty() || !tls_key_file.empty();
  }
};

// The global flags, for help output.
const std::vector<FlagSpec>& GlobalFlagSpecs();

// The result of parsing a command line.
struct ParsedCommand {
  const CommandSpec* spec = nullptr;  // null when only help was asked for
  GlobalOptions global;
  std::vector<std::string> args;             // positional arguments
  std::map<std::string, std::string> flags;  // command flags given, by canonical name (last wins)
  // Every value of each command flag, in command-line order: a flag given more than once
  // (`--type=a --type=b`) keeps them all here.
  std::map<std::string, std::vector<std::string>> flag_values;
  bool help = false;          // --help / -h / `help`
  std::string help_resource;  // `heraldctl campaigns --help`: "campaigns"

  bool Has(std::string_view flag) const { return flags.contains(std::string(flag)); }
  // The flag's value, or `fallback` when it was not given.
  std::string Get(std::string_view flag, std::string_view fallback = "") const;
  // Every value given to a repeatable flag, in order; empty when it was not given.
  std::vector<std::string> GetAll(std::string_view flag) const;
  // A boolean flag: true when given as `--flag` or `--flag=true`.
  bool GetBool(std::string_view flag) const;
};

using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// Parses `args` (without the program name) against `commands`. Global options start from
// the environment (`env`) and are overridden by flags. Errors are usage errors, with a message
// naming the offending argument.
absl::StatusOr<ParsedCommand> ParseCommandLine(const std::vector<std::string>& args,
                                               const std::vector<CommandSpec>& commands,
                                               const EnvLookup& env);

// Help texts.
std::string ProgramHelp(const std::vector<CommandSpec>& commands);
std::string ResourceHelp(const std::vector<CommandSpec>& commands, std::string_view resource);
std::string CommandHelp(const CommandSpec& spec);

}  // namespace herald::heraldctl
