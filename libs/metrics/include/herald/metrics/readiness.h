// Readiness as reported by /readyz, and liveness as reported by /healthz.
//
// Components report their own state: the Redis client marks itself not ready while it has no
// usable connection, the shutdown path marks the process "draining". The process is ready when
// every registered component is; a watcher hears of each change (gRPC health follows it). With
// a registry, each component's state is also the gauge
// herald_ready{component} (1 ready, 0 not), which alerts read. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include <absl/status/status.h>
#include <absl/time/time.h>

namespace prometheus {
class Gauge;
}  // namespace prometheus

namespace herald::metrics {

class Registry;
template <typename T>
class Family;

class Readiness {
 public:
  explicit Readiness(Registry* registry = nullptr);

  // Records the state of `component`: OkStatus when ready, otherwise an error whose message
  // explains why ("draining", "redis: connection refused").
  void Set(std::string_view component, absl::Status status);

  // True when every component is ready (and vacuously when none registered).
  bool Ready() const;

  // One line per component, "name: ok" or "name: <message>", sorted by name.
  std::string Report() const;

  // Calls `watcher` with Ready() now and again whenever it changes, in order, under the
  // object's lock: `watcher` must not call back into it. One watcher at a time (the gRPC health
  // service's); nullptr removes it, after which it is no longer called.
  void Watch(std::function<void(bool ready)> watcher);

 private:
  bool ReadyLocked() const;

  Family<prometheus::Gauge>* const gauge_;
  mutable std::mutex mu_;
  std::map<std::string, absl::Status, std::less<>> components_;
  std::function<void(bool)> watcher_;  // guarded by mu_
  bool reported_ = false;              // what watcher_ was last told; guarded by mu_
};

// Liveness as reported by /healthz: each event loop the process serves from beats (Beat) from a
// timer of its own, and the process is live while every loop that has beaten did so within
// `stall`. A loop whose every thread is stuck (a deadlock, handlers that never return) serves
// nothing, while the admin server, on a thread of its own, would still answer: /healthz then
// fails and the orchestrator restarts the process. Thread-safe.
class Liveness {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit Liveness(
      absl::Duration stall, Clock now = [] { return std::chrono::steady_clock::now(); });

  // `loop` ran a beat now.
  void Beat(std::string_view loop);

  // OK, or UNAVAILABLE naming each loop silent for longer than the stall, and for how long.
  absl::Status Check() const;
  // One line per loop that has beaten, "name: ok", sorted by name; empty before any beat.
  std::string Report() const;

  absl::Duration stall() const { return stall_; }

 private:
  const absl::Duration stall_;
  const Clock now_;
  mutable std::mutex mu_;
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> beats_;  // guarded
};

}  // namespace herald::metrics
