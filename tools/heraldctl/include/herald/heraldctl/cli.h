// heraldctl's commands and its entry point, kept out of main.cc so tests can drive them.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <herald/heraldctl/args.h>

namespace herald::heraldctl {

// Every `<resource> <verb>` heraldctl knows, in help order.
const std::vector<CommandSpec>& Commands();

// Where output goes and what it looks like.
struct Terminal {
  bool stdout_is_tty = false;  // live progress bars and redraws only on a terminal
  int width = 80;              // columns, for the progress bar
};

// Parses `args` (without the program name), runs the command against the server named by the
// global options and returns the exit code (exit_codes.h). Results go to `out`, errors and
// notices to `err`.
int RunCli(const std::vector<std::string>& args, const EnvLookup& env, std::ostream& out,
           std::ostream& err, const Terminal& terminal);

}  // namespace herald::heraldctl
