// Readiness as reported by /readyz.
//
// Components report their own state: the Redis client marks itself not ready while it has no
// usable connection, the shutdown path marks the process "draining". The process is ready when
// every registered component is; a watcher hears of each change (gRPC health follows it). With
// a registry, each component's state is also the gauge
// herald_ready{component} (1 ready, 0 not), which alerts read. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include <absl/status/status.h>

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

}  // namespace herald::metrics
