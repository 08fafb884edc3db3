// heraldctl: the command line over Herald's gRPC API. See README.md and `heraldctl --help`.
#include <cstdlib>
#include <iostream>

#include <sys/ioctl.h>
#include <unistd.h>

#include <herald/heraldctl/cli.h>

int main(int argc, char** argv) {
  herald::heraldctl::Terminal terminal;
  terminal.stdout_is_tty = isatty(STDOUT_FILENO) == 1;
  winsize size{};
  if (terminal.stdout_is_tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    terminal.width = size.ws_col;
  }
  const auto env = [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
  return herald::heraldctl::RunCli(std::vector<std::string>(argv + 1, argv + argc), env, std::cout,
                                   std::cerr, terminal);
}
