// Where a team's jobs live in Redis.
//
// The queue is split into shards; all keys of a shard share the hash tag "{hd:s<k>}", so every
// script touches keys of one hash slot only and the design holds on Redis Cluster (more shards
// spread over more nodes; workers pull from every shard). A team and all its accounts live in
// one shard, chosen by a stable hash of the team id, because the lease script takes a token from
// the account's and the team's bucket in one atomic step.
//
// The keys of one shard are documented in lua/common.lua.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herald::queue {

// The shard of `team`: FNV-1a (64-bit) of the team id, modulo `shard_count` (> 0). Stable across
// processes, builds and versions: changing it would strand queued jobs.
int ShardOf(std::string_view team, int shard_count);

// The hash tag of shard `shard`, "{hd:s<shard>}": the KEYS[1] of every queue script, and the
// prefix of every key of the shard.
std::string ShardTag(int shard);

}  // namespace herald::queue
