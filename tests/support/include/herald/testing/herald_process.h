// Runs the real `herald` binary for end-to-end tests, with its ports chosen free and its logs
// kept for failure messages.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

#include <herald/testing/subprocess.h>

namespace herald::testing {

class HeraldProcess {
 public:
  struct Options {
    std::vector<std::string> args = {"serve", "--role=all"};  // without ports
    std::map<std::string, std::string> env;
    bool wait_ready = true;   // wait for /readyz to answer 200
    uint16_t redis_port = 0;  // passed as --redis_address=127.0.0.1:<port> when not 0
    // Teams register their webhook with the upstream, pointing at this process's ingest port
    // (https:// with `webhooks_over_tls`, for an ingest serving TLS).
    bool register_webhooks = false;
    bool webhooks_over_tls = false;
  };

  // Starts herald with --grpc_address, --admin_address and --ingest_address on free ports (plus
  // `args`). Herald is ready only with a reachable Redis: give `redis_port` when `wait_ready`.
  static absl::StatusOr<std::unique_ptr<HeraldProcess>> Start(Options options);

  uint16_t grpc_port() const { return grpc_port_; }
  uint16_t admin_port() const { return admin_port_; }
  uint16_t ingest_port() const { return ingest_port_; }
  std::string grpc_target() const;  // "127.0.0.1:<port>"
  Subprocess& process() { return process_; }

  // Starts the process again with the same arguments, environment and ports (killing it first
  // if it still runs), and waits for /readyz as Start did: a crashed process coming back where
  // its clients expect it. Fails if a port was taken meanwhile or herald does not become ready.
  absl::Status Restart();
  // The same, with these environment variables set from now on (an empty value removes one).
  absl::Status Restart(const std::map<std::string, std::string>& env_changes);

  // The process's log output, for assertion messages.
  std::string Logs() const { return process_.Stderr(); }
  // Every run's log output since Start, restarts included, oldest first.
  std::string AllLogs() const { return earlier_logs_ + process_.Stderr(); }

 private:
  HeraldProcess(Subprocess process, uint16_t grpc_port, uint16_t admin_port, uint16_t ingest_port)
      : process_(std::move(process)),
        grpc_port_(grpc_port),
        admin_port_(admin_port),
        ingest_port_(ingest_port) {}

  // Waits (up to 60 s) for /readyz to answer 200; fails at once if the process exits.
  absl::Status WaitReady();

  Subprocess process_;
  uint16_t grpc_port_;
  uint16_t admin_port_;
  uint16_t ingest_port_;
  // What Start ran, for Restart.
  std::vector<std::string> argv_;
  std::map<std::string, std::string> env_;
  bool wait_ready_ = true;
  std::string earlier_logs_;  // the runs before a Restart
};

// Herald with the api and ingest roles in processes of their own, as deployed: ingest first, then
// api with --upstream_url at the simulator on `sim_port` and --public_webhook_url at that ingest
// (so a team created through the api registers its webhook there). Both get `env` and Redis on
// `redis_port`; `api_args` and `ingest_args` are added to their `serve --role=...`.
struct ApiAndIngest {
  std::unique_ptr<HeraldProcess> api;
  std::unique_ptr<HeraldProcess> ingest;
};
absl::StatusOr<ApiAndIngest> StartApiAndIngest(uint16_t redis_port, uint16_t sim_port,
                                               const std::map<std::string, std::string>& env,
                                               const std::vector<std::string>& api_args = {},
                                               const std::vector<std::string>& ingest_args = {});

// What a command run to completion came to: its exit code (-1 when it did not exit normally
// within the time allowed), stdout and stderr.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// All of it, for assertion messages.
std::ostream& operator<<(std::ostream& os, const CommandResult& r);

// Runs `herald args...` to completion, up to 30 s (for flag and usage checks).
CommandResult RunHerald(std::vector<std::string> args, std::map<std::string, std::string> env = {});

// Runs `heraldctl args...` (tools/heraldctl) against the herald at `server` ("host:port") to
// completion, up to 60 s. Its settings come from `env` only: each HERALD_* variable heraldctl
// reads that `env` does not give is set empty, so the test's own environment cannot reach it.
CommandResult RunHeraldctl(std::string_view server, std::vector<std::string> args,
                           std::map<std::string, std::string> env = {});

}  // namespace herald::testing
