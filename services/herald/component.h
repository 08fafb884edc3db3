// A part of the serving process with a start and a drain (gRPC server, worker pool, webhook
// receiver). See serve.h for the lifecycle.
#pragma once

#include <string_view>

#include <absl/status/status.h>
#include <absl/time/time.h>

namespace herald::serve {

class Component {
 public:
  virtual ~Component() = default;

  virtual std::string_view name() const = 0;

  // Starts serving. An error stops the process before it reports ready.
  virtual absl::Status Start() = 0;

  // Stops accepting new work and finishes (or hands back) in-flight work by `deadline`, then
  // returns. Work still running at the deadline is cancelled. Called once, after Start().
  virtual void Drain(absl::Time deadline) = 0;
};

}  // namespace herald::serve
