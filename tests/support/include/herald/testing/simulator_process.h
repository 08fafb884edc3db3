// Runs the real upstream simulator binary (tools/upstream-sim) for integration and end-to-end
// tests: bound to 127.0.0.1 on a port it picks itself, which it reports through --port_file.
//
//   auto sim = SimulatorProcess::Start({.args = {"--seed_file=" + path}});
//   ASSERT_TRUE(sim.ok()) << sim.status();
//   HttpGet((*sim)->port(), "/_sim/health");
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include <herald/testing/subprocess.h>

namespace herald::testing {

class SimulatorProcess {
 public:
  struct Options {
    std::vector<std::string> args;  // besides --listen, --port_file and --log_format
    std::map<std::string, std::string> env;
  };

  // Starts the simulator and waits (up to 30 s) until it serves.
  static absl::StatusOr<std::unique_ptr<SimulatorProcess>> Start(Options options);

  uint16_t port() const { return port_; }
  Subprocess& process() { return process_; }
  // The simulator's log output, for assertion messages.
  std::string Logs() const { return process_.Stderr(); }

 private:
  SimulatorProcess(Subprocess process, uint16_t port) : process_(std::move(process)), port_(port) {}

  Subprocess process_;
  uint16_t port_;
};

}  // namespace herald::testing
