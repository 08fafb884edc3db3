// Redis Cluster's key space, as a client routes by it: the slot of a key (CRC16 of its hash
// tag), the check that the keys of one command or script share a slot, and the slot map read
// from CLUSTER SHARDS (Redis 7) or CLUSTER SLOTS (older servers).
//
//   const uint16_t slot = cluster::KeySlot("hd:{t:acme}:events");  // the slot of "t:acme"
//   auto map = cluster::SlotMap::FromShards(reply, seed_host);
//   const cluster::Node* master = map->MasterOf(slot);
//
// Pure functions and values: no I/O, no Redis needed to test them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

namespace herald::redis {
class Reply;
}  // namespace herald::redis

namespace herald::redis::cluster {

inline constexpr int kSlots = 16384;

// The part of `key` that is hashed: the text between the first '{' and the first '}' after it
// when that text is not empty, else the whole key (the Redis Cluster specification's rule).
std::string_view HashTag(std::string_view key);

// The hash slot of `key`: CRC16 (XMODEM) of its hash tag, modulo 16384.
uint16_t KeySlot(std::string_view key);

// OK when every key maps to one slot (or there are none); otherwise kInvalidArgument naming
// two keys whose slots differ, so a cross-slot command is refused before it reaches Redis.
absl::Status CheckSameSlot(std::span<const std::string> keys);

// A node as the slot map names it. `host` is the node's preferred endpoint (an IP address or
// a hostname); when the server does not know it (NULL, "" or "?"), the host the map was read
// from, as the specification tells clients to do.
struct Node {
  std::string host;
  int port = 0;
  std::string id;  // empty when the server did not send it

  std::string Address() const;  // "host:port"
  friend bool operator==(const Node&, const Node&) = default;
};

// A cluster redirection: "MOVED <slot> <endpoint>" (the slot has a new owner: refresh the
// map, retry there) or "ASK <slot> <endpoint>" (the slot is migrating: send ASKING then the
// command to the target, once, and keep the map).
struct Redirect {
  enum class Kind { kMoved, kAsk };
  Kind kind = Kind::kMoved;
  uint16_t slot = 0;
  Node node;  // id empty
};

// The redirection an error reply carries, or nullopt when `error` (the reply's text, as
// Reply::str()) is none. An endpoint without a host (":7001", as servers with an unknown
// endpoint send) means `seed_host`.
std::optional<Redirect> ParseRedirect(std::string_view error, std::string_view seed_host);

// The key a command is routed by: the first key of EVAL/EVALSHA/FCALL (nullopt when the script
// declares none), else the first argument after the command's name; nullopt for commands that
// take no key (PING, INFO, SCRIPT, CLUSTER, TIME, WAIT and the like), which any node serves.
std::optional<std::string_view> RoutingKey(std::span<const std::string> args);

// The keys of a command, for the cross-slot check: the declared keys of EVAL/EVALSHA/FCALL;
// every argument of DEL, UNLINK, EXISTS, MGET, TOUCH, WATCH, the set operations (SINTER,
// SUNION, SDIFF and their STORE forms) and PFCOUNT/PFMERGE; the keys of MSET/MSETNX; the two
// keys of RENAME(NX), SMOVE, RPOPLPUSH, LMOVE, BLMOVE and COPY; otherwise the routing key
// alone (none for keyless commands).
std::vector<std::string_view> CommandKeys(std::span<const std::string> args);

class SlotMap {
 public:
  // CLUSTER SHARDS: per shard, its slot ranges and nodes; the master is the node whose role is
  // "master" (a master whose health is "failed" serves no slots). `seed_host`: the host the
  // command was sent to.
  static absl::StatusOr<SlotMap> FromShards(const Reply& reply, std::string_view seed_host);
  // CLUSTER SLOTS: per range, its first and last slot, the master, then the replicas.
  static absl::StatusOr<SlotMap> FromSlots(const Reply& reply, std::string_view seed_host);

  // The master serving `slot`; nullptr when none does (the cluster is incomplete).
  const Node* MasterOf(uint16_t slot) const;
  // Every master that serves at least one slot, each once, in the order first seen.
  const std::vector<Node>& masters() const { return masters_; }
  // Slots no master serves.
  int uncovered() const;

 private:
  // Gives slots [first, last] to `master`; kInvalidArgument for a range out of bounds.
  absl::Status Assign(int64_t first, int64_t last, const Node& master);

  std::vector<int16_t> owner_ = std::vector<int16_t>(kSlots, -1);  // slot -> masters_ index
  std::vector<Node> masters_;
};

}  // namespace herald::redis::cluster
