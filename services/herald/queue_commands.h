// `herald queue ...`: operator commands against the job queue in Redis.
//
//   herald queue stats                 depth per shard, jobs by kind and outcome
//   herald queue dead --dead_limit=20  the newest dead-lettered jobs over all shards, with
//                                      their reasons
//   herald queue smoke --jobs=1000     enqueue no-op jobs over test accounts and wait until the
//                                      running workers have finished them all (or stopped
//                                      finishing any)
#pragma once

#include <string_view>

#include <herald/queue/queue.h>
#include <herald/redis/client.h>

namespace herald::serve {

struct SmokeConfig {
  int jobs = 1000;
  int teams = 2;
  int accounts_per_team = 10;
  int64_t team_per_minute = 6000;  // binding limits, so the run shows the limiter pacing
  int64_t account_per_minute = 0;  // 0: only the team limit applies
  // Given up when no job finished for this long: the workers are not running, or not taking
  // the queue's work.
  absl::Duration stall_timeout = absl::Minutes(2);
};

// The settings' ranges (each named by its flag): InvalidArgument outside them.
absl::Status CheckSmokeConfig(const SmokeConfig& smoke);

// Prints what the command did to stdout; returns the process exit code.
int RunQueueStats(const redis::ClientConfig& redis, const queue::QueueConfig& queue);
int RunQueueDead(const redis::ClientConfig& redis, const queue::QueueConfig& queue, int limit);
int RunQueueSmoke(const redis::ClientConfig& redis, const queue::QueueConfig& queue,
                  const SmokeConfig& smoke);

}  // namespace herald::serve
