#include <ostream>

#include <herald/heraldctl/cli.h>

#include "session.h"

namespace herald::heraldctl {

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> kCommands = [] {
    std::vector<CommandSpec> commands;
    AddAdminCommands(commands);
    AddAccountCommands(commands);
    AddContentCommands(commands);
    AddCampaignCommands(commands);
    AddAnalyticsCommands(commands);
    AddEventCommands(commands);
    AddAutomationCommands(commands);
    return commands;
  }();
  return kCommands;
}

namespace {

int Run(const std::vector<std::string>& args, const EnvLookup& env, std::ostream& out,
        std::ostream& err, const Terminal& terminal) {
  if (args.empty()) {
    err << ProgramHelp(Commands());
    return kExitUsage;
  }
  if (args.size() == 1 && (args[0] == "--version" || args[0] == "version")) {
    out << "heraldctl " << HERALD_VERSION << "\n";
    return kExitOk;
  }
  absl::StatusOr<ParsedCommand> parsed = ParseCommandLine(args, Commands(), env);
  if (!parsed.ok()) {
    if (args.size() == 1) {
      // `heraldctl campaigns`: show what the resource offers.
      for (const CommandSpec& spec : Commands()) {
        if (spec.resource == args[0]) {
          err << ResourceHelp(Commands(), args[0]);
          return kExitUsage;
        }
      }
    }
    err << "heraldctl: " << parsed.status().message() << "\n";
    return kExitUsage;
  }
  if (parsed->help) {
    if (parsed->spec != nullptr) {
      out << CommandHelp(*parsed->spec);
    } else if (!parsed->help_resource.empty()) {
      out << ResourceHelp(Commands(), parsed->help_resource);
    } else {
      out << ProgramHelp(Commands());
    }
    return kExitOk;
  }
  Session session(*parsed, env, out, err, terminal);
  if (absl::Status status = session.LoadCredentials(); !status.ok()) return session.Usage(status);
  return parsed->spec->run(session, *parsed);
}

}  // namespace

int RunCli(const std::vector<std::string>& args, const EnvLookup& env, std::ostream& out,
           std::ostream& err, const Terminal& terminal) {
  const int code = Run(args, env, out, err, terminal);
  // Output a script redirected to a full disk is lost: success would be a lie.
  if (!out.flush()) {
    err << "heraldctl: the output could not be written (a full disk, or a closed pipe)\n";
    return code == kExitOk ? kExitRpcError : code;
  }
  return code;
}

}  // namespace herald::heraldctl
