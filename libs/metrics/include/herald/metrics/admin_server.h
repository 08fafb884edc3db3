// The admin HTTP server every Herald role runs on its own port:
//
//   GET /metrics  the registry in Prometheus text format 0.0.4
//   GET /healthz  200 while the process is alive: while its event loops run (see Liveness), one
//                 line per loop ("io: ok"); else 503 naming the stalled loops (liveness probe)
//   GET /readyz   200 when every component is ready, else 503 with the reasons (readiness probe)
//
// It runs on its own thread and io_context, so scrapes and probes are answered even when the
// worker threads are saturated. HTTP/1.1 with keep-alive; requests are small and bounded.
#pragma once

#include <cstdint>
#include <memory>

#include <absl/status/status.h>
#include <absl/time/time.h>

#include <herald/common/config.h>
#include <herald/metrics/metrics.h>
#include <herald/metrics/readiness.h>

namespace herald::metrics {

struct AdminServerConfig {
  config::HostPort address{"0.0.0.0", 9090};
  // A connection idle for this long is closed.
  absl::Duration idle_timeout = absl::Seconds(30);
  // Requests with a larger header block or any body beyond this are answered 413 and closed.
  uint32_t max_request_bytes = 8 * 1024;
};

class AdminServer {
 public:
  // `registry`, `readiness` and `liveness` (may be null: always live) must outlive the server.
  AdminServer(AdminServerConfig config, const Registry& registry, const Readiness& readiness,
              const Liveness* liveness = nullptr);
  ~AdminServer();  // Stops the server if running.

  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and starts serving on a new thread. Fails (and serves nothing) if the address cannot
  // be bound.
  absl::Status Start();

  // The bound port; the chosen one when the configured port is 0. Valid after Start().
  uint16_t port() const;

  // Closes the listener and every open connection, and joins the thread. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::metrics
