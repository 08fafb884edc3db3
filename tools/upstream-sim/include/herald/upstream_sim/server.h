// The simulator's HTTP/1.1 server (keep-alive): /_sim/ goes to the control handler, everything
// else to the API, with fault injection (latency, 5xx, connection resets, lost responses) in
// between. Sessions are coroutines on the caller's io_context; handlers are short and never
// block on I/O.
#pragma once

#include <cstdint>
#include <memory>

#include <absl/status/status.h>
#include <absl/time/time.h>
#include <boost/asio/io_context.hpp>

#include <herald/common/config.h>
#include <herald/upstream_sim/api.h>
#include <herald/upstream_sim/control.h>
#include <herald/upstream_sim/sim_state.h>

namespace herald::upstream_sim {

struct ServerConfig {
  config::HostPort listen{"127.0.0.1", 8080};
  // Larger bodies are answered 413 (uploads are limited to 100 MB).
  uint64_t max_body_bytes = 110'000'000;
  absl::Duration idle_timeout = absl::Seconds(60);
};

class Server {
 public:
  // Everything must outlive the server; `io` is run by the caller.
  Server(boost::asio::io_context& io, ServerConfig config, Api& api, Control& control,
         SimState& state);
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. Fails when the address cannot be bound.
  absl::Status Start();
  // The bound port (the chosen one for port 0). Valid after Start().
  uint16_t port() const;
  // Stops accepting. Open sessions end when the io_context stops.
  void Stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace herald::upstream_sim
