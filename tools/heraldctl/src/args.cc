#include <algorithm>
#include <set>

#include <absl/strings/ascii.h>

#include <herald/common/strings.h>
#include <herald/heraldctl/args.h>
#include <herald/heraldctl/exit_codes.h>

namespace herald::heraldctl {
namespace {

std::string Canonical(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::optional<bool> ParseBool(std::string_view value) {
  const std::string lower = AsciiLower(value);
  if (lower == "true" || lower == "1" || lower == "yes") return true;
  if (lower == "false" || lower == "0" || lower == "no") return false;
  return std::nullopt;
}

const FlagSpec* FindFlag(const std::vector<FlagSpec>& specs, std::string_view name) {
  for (const FlagSpec& spec : specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

absl::Status ApplyGlobal(GlobalOptions& global, std::string_view name, std::string_view value,
                         std::string_view source) {
  if (name == "server") {
    if (value.empty()) return absl::InvalidArgumentError(StrCat(source, ": empty address"));
    global.server = std::string(value);
  } else if (name == "key") {
    global.key = std::string(value);
  } else if (name == "key-file") {
    global.key_file = std::string(value);
  } else if (name == "tenant") {
    global.tenant = std::string(value);
  } else if (name == "tls-ca-file") {
    global.tls_ca_file = std::string(value);
  } else if (name == "tls-cert-file") {
    global.tls_cert_file = std::string(value);
  } else if (name == "tls-key-file") {
    global.tls_key_file = std::string(value);
  } else if (name == "json" || name == "tls") {
    const std::optional<bool> b = ParseBool(value);
    if (!b) {
      return absl::InvalidArgumentError(StrCat(source, ": '", value, "' is not true or false"));
    }
    (name == "json" ? global.json : global.tls) = *b;
  } else if (name == "timeout") {
    const std::optional<int> seconds = ParseInt<int>(value);
    if (!seconds || *seconds < 1 || *seconds > 86400) {
      return absl::InvalidArgumentError(
          StrCat(source, ": '", value, "' is not a number of seconds in [1, 86400]"));
    }
    global.timeout_seconds = *seconds;
  }
  return absl::OkStatus();
}

void AppendFlags(std::string& out, const std::vector<FlagSpec>& flags) {
  size_t width = 0;
  std::vector<std::string> heads;
  for (const FlagSpec& flag : flags) {
    std::string head = StrCat("  --", flag.name);
    if (!flag.value_name.empty()) StrAppend(&head, "=", flag.value_name);
    width = std::max(width, head.size());
    heads.push_back(std::move(head));
  }
  for (size_t i = 0; i < flags.size(); ++i) {
    StrAppend(&out, heads[i], std::string(width + 2 - heads[i].size(), ' '), flags[i].help, "\n");
  }
}

std::string Usage(const CommandSpec& spec) {
  std::string usage = StrCat("heraldctl ", spec.resource, " ", spec.verb);
  if (!spec.args.empty()) StrAppend(&usage, " ", spec.args);
  if (!spec.flags.empty()) StrAppend(&usage, " [flags]");
  return usage;
}

}  // namespace

const std::vector<FlagSpec>& GlobalFlagSpecs() {
  static const std::vector<FlagSpec> kSpecs = {
      {"server", "HOST:PORT", "Herald's gRPC address (HERALD_SERVER; default 127.0.0.1:7070)"},
      {"key", "KEY", "API key, sent as a bearer token (HERALD_API_KEY)"},
      {"key-file", "FILE", "read the API key from FILE instead (HERALD_API_KEY_FILE)"},
      {"tenant", "ID", "tenant of short resource names (HERALD_TENANT)"},
      {"json", "", "print protobuf JSON (snake_case field names) instead of tables"},
      {"tls", "", "connect with TLS, system roots (HERALD_TLS=1)"},
      {"tls-ca-file", "FILE", "TLS, trusting the PEM CA certificates in FILE (HERALD_TLS_CA_FILE)"},
      {"tls-cert-file", "FILE",
       "TLS with this client certificate chain, PEM, for a server that asks for one "
       "(HERALD_TLS_CERT_FILE)"},
      {"tls-key-file", "FILE", "the client certificate's private key, PEM (HERALD_TLS_KEY_FILE)"},
      {"timeout", "SECONDS", "deadline of each call (HERALD_TIMEOUT; default 30)"},
      {"help", "", "show help for the command"},
  };
  return kSpecs;
}

std::string ParsedCommand::Get(std::string_view flag, std::string_view fallback) const {
  auto it = flags.find(std::string(flag));
  return it == flags.end() ? std::string(fallback) : it->second;
}

std::vector<std::string> ParsedCommand::GetAll(std::string_view flag) const {
  auto it = flag_values.find(std::string(flag));
  return it == flag_values.end() ? std::vector<std::string>() : it->second;
}

bool ParsedCommand::GetBool(std::string_view flag) const { return Get(flag) == "true"; }

absl::StatusOr<ParsedCommand> ParseCommandLine(const std::vector<std::string>& args,
                                               const std::vector<CommandSpec>& commands,
                                               const EnvLookup& env) {
  ParsedCommand parsed;
  std::set<std::string, std::less<>> given;  // global flags given on the command line
  std::vector<std::string> words;
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    // Flags are long (--name) but for -h: "-v" is a mistaken flag, not a name or an id (a word
    // that begins with '-' goes after "--").
    if (!flags_ended && arg.size() >= 2 && arg[0] == '-' && arg[1] != '-' && arg != "-h" &&
        !absl::ascii_isdigit(static_cast<unsigned char>(arg[1]))) {
      return absl::InvalidArgumentError(
          StrCat("unknown flag ", arg,
                 ": flags are written --name (a word beginning with '-' "
                 "goes after --)"));
    }
    if (flags_ended || arg.size() < 2 || arg[0] != '-' || (arg[1] != '-' && arg != "-h")) {
      words.push_back(arg);
      // `heraldctl help campaigns create` is `heraldctl campaigns create --help`.
      if (words.size() == 1 && words[0] == "help" && !flags_ended) {
        parsed.help = true;
        words.clear();
      } else if (!parsed.spec && words.size() == 2) {
        for (const CommandSpec& spec : commands) {
          if (spec.resource == words[0] && spec.verb == words[1]) parsed.spec = &spec;
        }
        if (!parsed.spec) {
          const bool known_resource =
              std::any_of(commands.begin(), commands.end(),
                          [&](const CommandSpec& spec) { return spec.resource == words[0]; });
          if (!known_resource) {
            return absl::InvalidArgumentError(StrCat("unknown resource '", words[0], "'"));
          }
          return absl::InvalidArgumentError(
              StrCat("unknown command '", words[0], " ", words[1], "'"));
        }
      }
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      parsed.help = true;
      continue;
    }
    const std::string_view body = std::string_view(arg).substr(2);
    const size_t eq = body.find('=');
    const std::string name = Canonical(body.substr(0, eq));
    std::optional<std::string> value;
    if (eq != std::string_view::npos) value = std::string(body.substr(eq + 1));
    if (name == "help") {  // --help=true|false, as any boolean flag
      const std::optional<bool> b = value ? ParseBool(*value) : std::optional<bool>(true);
      if (!b)
        return absl::InvalidArgumentError(StrCat("--help: '", *value, "' is not true or false"));
      parsed.help = parsed.help || *b;
      continue;
    }

    const FlagSpec* spec = FindFlag(GlobalFlagSpecs(), name);
    const bool global = spec != nullptr;
    if (!spec && parsed.spec) spec = FindFlag(parsed.spec->flags, name);
    if (!spec) {
      if (!parsed.spec) {
        return absl::InvalidArgumentError(
            StrCat("unknown flag --", name, " (command flags come after `<resource> <verb>`)"));
      }
      return absl::InvalidArgumentError(StrCat("unknown flag --", name, " for `",
                                               parsed.spec->resource, " ", parsed.spec->verb,
                                               "`; see --help"));
    }
    if (spec->value_name.empty()) {
      const std::optional<bool> b = value ? ParseBool(*value) : std::optional<bool>(true);
      if (!b) {
        return absl::InvalidArgumentError(
            StrCat("--", name, ": '", *value, "' is not true or false"));
      }
      value = *b ? "true" : "false";
    } else if (!value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            StrCat("--", name, " needs a value (", spec->value_name, ")"));
      }
      // `--tenant --json` lacks the tenant; it does not name a tenant "--json".
      if (args[i + 1].starts_with("--")) {
        return absl::InvalidArgumentError(StrCat("--", name, " needs a value (", spec->value_name,
                                                 "), not the flag ", args[i + 1],
                                                 "; for a value "
                                                 "starting with --, write --",
                                                 name, "=VALUE"));
      }
      value = args[++i];
    }
    if (global) {
      if (absl::Status status = ApplyGlobal(parsed.global, name, *value, StrCat("--", name));
          !status.ok()) {
        return status;
      }
      given.insert(name);
    } else {
      parsed.flags[name] = *value;
      parsed.flag_values[name].push_back(*value);
    }
  }

  // The environment fills in what the flags left out; help needs neither.
  if (!parsed.help) {
    static constexpr std::pair<std::string_view, std::string_view> kEnv[] = {
        {"server", "HERALD_SERVER"},
        {"key", "HERALD_API_KEY"},
        {"key-file", "HERALD_API_KEY_FILE"},
        {"tenant", "HERALD_TENANT"},
        {"tls", "HERALD_TLS"},
        {"timeout", "HERALD_TIMEOUT"},
        {"tls-ca-file", "HERALD_TLS_CA_FILE"},
        {"tls-cert-file", "HERALD_TLS_CERT_FILE"},
        {"tls-key-file", "HERALD_TLS_KEY_FILE"},
    };
    // A key given either way on the command line replaces the environment's, given either way;
    // given both ways in one place, which one was meant is anyone's guess.
    const bool key_given = given.contains("key") || given.contains("key-file");
    if (given.contains("key") && given.contains("key-file")) {
      return absl::InvalidArgumentError("--key and --key-file both given; pass one");
    }
    const std::optional<std::string> env_key = env("HERALD_API_KEY");
    const std::optional<std::string> env_key_file = env("HERALD_API_KEY_FILE");
    if (!key_given && env_key && !env_key->empty() && env_key_file && !env_key_file->empty()) {
      return absl::InvalidArgumentError(
          "HERALD_API_KEY and HERALD_API_KEY_FILE are both set; unset one (or pass --key or "
          "--key-file, which wins over both)");
    }
    for (const auto& [flag, variable] : kEnv) {
      if (given.contains(flag) || (key_given && (flag == "key" || flag == "key-file"))) continue;
      if (std::optional<std::string> value = env(variable); value && !value->empty()) {
        if (absl::Status status = ApplyGlobal(parsed.global, flag, *value, variable);
            !status.ok()) {
          return status;
        }
      }
    }
  }

  if (!parsed.spec) {
    if (words.size() == 1) {
      const bool known = std::any_of(commands.begin(), commands.end(),
                                     [&](const CommandSpec& s) { return s.resource == words[0]; });
      if (!known) return absl::InvalidArgumentError(StrCat("unknown resource '", words[0], "'"));
      parsed.help_resource = words[0];
      if (parsed.help) return parsed;
      return absl::InvalidArgumentError(
          StrCat("`", words[0], "` needs a command; see heraldctl ", words[0], " --help"));
    }
    if (parsed.help) return parsed;
    return absl::InvalidArgumentError("no command given; see heraldctl --help");
  }
  if (parsed.help) return parsed;

  parsed.args.assign(words.begin() + 2, words.end());
  const int count = static_cast<int>(parsed.args.size());
  const CommandSpec& spec = *parsed.spec;
  if (count < spec.min_args || (spec.max_args >= 0 && count > spec.max_args)) {
    return absl::InvalidArgumentError(
        count < spec.min_args ? StrCat("missing arguments; usage: ", Usage(spec))
                              : StrCat("unexpected argument '", parsed.args[spec.max_args],
                                       "'; usage: ", Usage(spec)));
  }
  return parsed;
}

std::string ProgramHelp(const std::vector<CommandSpec>& commands) {
  std::string out =
      "heraldctl: the command line over Herald's gRPC API.\n\n"
      "Usage: heraldctl <resource> <verb> [args] [flags]\n"
      "       heraldctl <resource> <verb> --help\n"
      "       heraldctl --version\n\nCommands:\n";
  size_t width = 0;
  for (const CommandSpec& spec : commands) {
    width = std::max(width, spec.resource.size() + spec.verb.size() + 1);
  }
  for (const CommandSpec& spec : commands) {
    const std::string head = StrCat(spec.resource, " ", spec.verb);
    StrAppend(&out, "  ", head, std::string(width + 2 - head.size(), ' '), spec.summary, "\n");
  }
  StrAppend(&out, "\nGlobal flags:\n");
  AppendFlags(out, GlobalFlagSpecs());
  StrAppend(&out,
            "\nNames: an argument with a '/' is a full resource name (tenants/acme/campaigns/c1)"
            "\nand is used as is; one without is a short id, resolved in the tenant of --tenant"
            "\n(HERALD_TENANT). Tenant commands take the tenant id itself.\n\n",
            ExitCodeHelp());
  return out;
}

std::string ResourceHelp(const std::vector<CommandSpec>& commands, std::string_view resource) {
  std::string out = StrCat("Usage: heraldctl ", resource, " <verb> [args] [flags]\n\nVerbs:\n");
  size_t width = 0;
  for (const CommandSpec& spec : commands) {
    if (spec.resource == resource) width = std::max(width, Usage(spec).size());
  }
  for (const CommandSpec& spec : commands) {
    if (spec.resource != resource) continue;
    const std::string usage = Usage(spec);
    StrAppend(&out, "  ", usage, std::string(width + 2 - usage.size(), ' '), spec.summary, "\n");
  }
  StrAppend(&out, "\nRun `heraldctl ", resource, " <verb> --help` for a verb's flags.\n");
  return out;
}

std::string CommandHelp(const CommandSpec& spec) {
  std::string out = StrCat("Usage: ", Usage(spec), "\n\n", spec.summary, "\n");
  if (!spec.details.empty()) StrAppend(&out, "\n", spec.details, "\n");
  if (!spec.flags.empty()) {
    StrAppend(&out, "\nFlags:\n");
    AppendFlags(out, spec.flags);
  }
  StrAppend(&out, "\nGlobal flags:\n");
  AppendFlags(out, GlobalFlagSpecs());
  StrAppend(&out, "\n", ExitCodeHelp());
  return out;
}

}  // namespace herald::heraldctl
