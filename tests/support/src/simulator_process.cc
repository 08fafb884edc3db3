#include <fstream>

#include <herald/common/strings.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/wait.h>

namespace herald::testing {

absl::StatusOr<std::unique_ptr<SimulatorProcess>> SimulatorProcess::Start(Options options) {
  const std::string port_file = StrCat(MakeTempDir("upstream-sim-port"), "/port");
  std::vector<std::string> argv = {BuildPath("tools/upstream-sim/upstream-sim"),
                                   "--listen=127.0.0.1:0", StrCat("--port_file=", port_file),
                                   "--log_format=json"};
  argv.insert(argv.end(), options.args.begin(), options.args.end());
  auto process = Subprocess::Start({.argv = argv, .env = std::move(options.env)});
  if (!process.ok()) return process.status();
  uint16_t port = 0;
  // The simulator writes the file atomically once it accepts connections.
  WaitFor(
      [&] {
        if (!process->running()) return true;
        std::ifstream in(port_file);
        int value = 0;
        if (in >> value && value > 0 && value < 65536) port = static_cast<uint16_t>(value);
        return port != 0;
      },
      absl::Seconds(30));
  if (port == 0) {
    return absl::UnavailableError(StrCat("upstream-sim did not start; logs:\n", process->Stderr()));
  }
  return std::unique_ptr<SimulatorProcess>(new SimulatorProcess(std::move(*process), port));
}

}  // namespace herald::testing
