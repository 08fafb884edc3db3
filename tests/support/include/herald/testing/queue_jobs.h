// Jobs placed on Herald's queue directly, as a step of an earlier release or a worker that died
// would have left them, for tests of what the workers of this one do with them.
#pragma once

#include <cstdint>

#include <absl/status/status.h>

#include <herald/queue/queue.h>

namespace herald::testing {

// Enqueues `spec` on the single redis-server at `redis_port`; with `dead_letter`, also leases it
// and dead-letters it, as when the last attempt of its step died.
absl::Status PlaceJob(uint16_t redis_port, queue::JobSpec spec, bool dead_letter = false);

}  // namespace herald::testing
