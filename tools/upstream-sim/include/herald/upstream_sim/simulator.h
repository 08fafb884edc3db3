// The whole simulator in one object: world, delivery ticker, webhook emitter, HTTP server, on
// an io_context run by a few threads. main.cc builds the options from flags; tests can embed it.
//
//   Simulator sim(options);
//   HERALD_RETURN_IF_ERROR(sim.Start());
//   sim.port();          // bound port
//   sim.Stop();          // or destroy it
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <absl/status/status.h>
#include <absl/time/time.h>

#include <herald/common/clock.h>
#include <herald/common/config.h>
#include <herald/upstream_sim/config.h>
#include <herald/upstream_sim/faults.h>
#include <herald/upstream_sim/seed.h>
#include <herald/upstream_sim/sim_state.h>
#include <herald/upstream_sim/webhooks.h>

namespace herald::upstream_sim {

struct SimulatorOptions {
  config::HostPort listen{"127.0.0.1", 8080};
  int threads = 2;
  SeedSpec seed;
  Behavior behavior;
  WebhookPolicy webhook_policy;
  std::vector<WebhookEndpointConfig> webhooks;
  std::vector<FaultRule> faults;
  // How often the delivery engine runs.
  absl::Duration tick_interval = absl::Milliseconds(10);
  // Prefix of absolute links in responses; empty: from the Host header.
  std::string public_url;
  uint64_t max_body_bytes = 110'000'000;

  absl::Status Validate() const;
};

class Simulator {
 public:
  // `clock` must outlive the simulator. Builds the world from the seed.
  explicit Simulator(SimulatorOptions options, const Clock& clock = SystemClock::Get());
  ~Simulator();  // Stops.

  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Binds, registers the configured webhooks and faults, starts the threads.
  absl::Status Start();
  uint16_t port() const;
  // Stops serving, delivering and emitting, and joins the threads. Idempotent.
  void Stop();

  SimState& state();
  WebhookEmitter& webhooks();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::upstream_sim
