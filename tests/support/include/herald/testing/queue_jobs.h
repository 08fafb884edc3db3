// Jobs placed on Herald's queue directly, as a step of an earlier release or a worker that died
// would have left them, for tests of what the workers of this one do with them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <absl/status/status.h>

#include <herald/queue/queue.h>

namespace herald::testing {

// Enqueues `spec` on the single redis-server at `redis_port`; with `dead_letter`, also leases it
// and dead-letters it, as when the last attempt of its step died.
absl::Status PlaceJob(uint16_t redis_port, queue::JobSpec spec, bool dead_letter = false);

// Leases the next job of `kind` of queue team `team` on the single redis-server at `redis_port`
// and puts it off as a step whose own store failed after its upstream call: due again at once,
// no attempt spent, its next run flagged "previous outcome unknown". Other jobs leased with it go
// back as they were. kNotFound when no job of `kind` could be leased now (the caller may try
// again: a throttled team's jobs wait for its bucket).
absl::Status PutOffWithOutcomeUnknown(uint16_t redis_port, const std::string& team,
                                      std::string_view kind);

}  // namespace herald::testing
