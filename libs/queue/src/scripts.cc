#include <array>

#include <herald/common/strings.h>
#include <herald/queue/scripts.h>
#include <herald/ratelimit/gcra.h>

#include "queue_lua.h"

namespace herald::queue {
namespace {

struct Entry {
  std::string_view name;
  std::string_view body;
};

constexpr size_t kScriptCount = static_cast<size_t>(ScriptId::kTakeDead) + 1;

const std::array<Entry, kScriptCount>& Entries() {
  static const std::array<Entry, kScriptCount> entries = {{
      {"enqueue.lua", lua::kEnqueue},
      {"lease.lua", lua::kLease},
      {"ack.lua", lua::kAck},
      {"nack.lua", lua::kNack},
      {"heartbeat.lua", lua::kHeartbeat},
      {"reap.lua", lua::kReap},
      {"configure.lua", lua::kConfigure},
      {"stats.lua", lua::kStats},
      {"list_dead.lua", lua::kListDead},
      {"take_dead.lua", lua::kTakeDead},
  }};
  return entries;
}

}  // namespace

const std::string& ScriptSource(ScriptId id) {
  static const auto* const sources = [] {
    auto* out = new std::array<std::string, kScriptCount>();
    for (size_t i = 0; i < kScriptCount; ++i) {
      (*out)[i] = StrCat(ratelimit::GcraLua(), "\n", lua::kCommon, "\n", Entries()[i].body);
    }
    return out;
  }();
  return (*sources)[static_cast<size_t>(id)];
}

std::string_view ScriptName(ScriptId id) { return Entries()[static_cast<size_t>(id)].name; }

}  // namespace herald::queue
