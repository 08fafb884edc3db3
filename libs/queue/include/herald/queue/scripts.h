// The queue's Lua scripts, as sent to Redis.
//
// Each script under lua/ is one file with a header comment (KEYS, ARGV, returns, complexity).
// Redis scripts cannot call each other, so every script is sent as
//   ratelimit's gcra.lua + lua/common.lua + the script itself
// and the GCRA math and the queue's layout have one source each. Exposed for tests and tools
// that drive the scripts directly (EVAL with an explicit `now`).
#pragma once

#include <string>
#include <string_view>

namespace herald::queue {

enum class ScriptId {
  kEnqueue,
  kLease,
  kAck,
  kNack,
  kHeartbeat,
  kReap,
  kConfigure,
  kStats,
  kListDead,
  kTakeDead,
};

// The complete source of a script. The reference is valid for the life of the process.
const std::string& ScriptSource(ScriptId id);

// The script's file name, e.g. "lease.lua" (for messages).
std::string_view ScriptName(ScriptId id);

}  // namespace herald::queue
