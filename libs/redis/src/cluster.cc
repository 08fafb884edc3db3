#include <algorithm>
#include <array>
#include <cctype>
#include <initializer_list>
#include <optional>

#include <herald/common/strings.h>
#include <herald/redis/cluster.h>
#include <herald/redis/reply.h>

namespace herald::redis::cluster {
namespace {

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as the cluster specification uses.
constexpr std::array<uint16_t, 256> MakeCrc16Table() {
  std::array<uint16_t, 256> table{};
  for (int byte = 0; byte < 256; ++byte) {
    uint16_t crc = static_cast<uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    table[static_cast<size_t>(byte)] = crc;
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrc16 = MakeCrc16Table();

uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (const char c : data) {
    const auto byte = static_cast<uint8_t>(c);
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16[((crc >> 8) ^ byte) & 0xff]);
  }
  return crc;
}

absl::Status Malformed(std::string_view command, std::string_view what) {
  return absl::InternalError(StrCat(command, ": unexpected reply (", what, ")"));
}

// A node's endpoint as the client should dial it: `preferred`, else `ip`, else the seed's host
// when the server does not know it (NULL, "" or "?").
std::string EndpointOf(const std::optional<std::string>& preferred,
                       const std::optional<std::string>& ip, std::string_view seed_host) {
  auto known = [](const std::optional<std::string>& s) { return s && !s->empty() && *s != "?"; };
  if (known(preferred)) return *preferred;
  if (known(ip)) return *ip;
  return std::string(seed_host);
}

// The value of `name` in a RESP2 map (a flat array of names and values); nullptr if absent.
const Reply* Field(const Reply& map, std::string_view name) {
  const std::vector<Reply>& e = map.elements();
  for (size_t i = 0; i + 1 < e.size(); i += 2) {
    if (e[i].str() == name) return &e[i + 1];
  }
  return nullptr;
}

std::optional<std::string> OptionalString(const Reply* r) {
  if (r == nullptr) return std::nullopt;
  return r->AsOptionalString();
}

}  // namespace

std::string_view HashTag(std::string_view key) {
  const size_t open = key.find('{');
  if (open == std::string_view::npos) return key;
  const size_t close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

uint16_t KeySlot(std::string_view key) { return Crc16(HashTag(key)) & (kSlots - 1); }

absl::Status CheckSameSlot(std::span<const std::string> keys) {
  if (keys.empty()) return absl::OkStatus();
  const uint16_t first = KeySlot(keys[0]);
  for (const std::string& key : keys.subspan(1)) {
    if (KeySlot(key) != first) {
      return absl::InvalidArgumentError(StrCat("keys in different cluster slots: '", keys[0],
                                               "' (slot ", first, ") and '", key, "' (slot ",
                                               KeySlot(key), "); give them one hash tag"));
    }
  }
  return absl::OkStatus();
}

std::string Node::Address() const { return StrCat(host, ":", port); }

std::optional<Redirect> ParseRedirect(std::string_view error, std::string_view seed_host) {
  Redirect r;
  if (error.starts_with("MOVED ")) {
    r.kind = Redirect::Kind::kMoved;
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.kind = Redirect::Kind::kAsk;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const size_t space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::optional<uint16_t> slot = ParseInt<uint16_t>(error.substr(0, space));
  const std::string_view endpoint = error.substr(space + 1);
  const size_t colon = endpoint.rfind(':');
  if (!slot || *slot >= kSlots || colon == std::string_view::npos) return std::nullopt;
  const std::optional<int> port = ParseInt<int>(endpoint.substr(colon + 1));
  if (!port || *port <= 0 || *port > 65535) return std::nullopt;
  std::string_view host = endpoint.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  r.slot = *slot;
  r.node.host = host.empty() || host == "?" ? std::string(seed_host) : std::string(host);
  r.node.port = *port;
  return r;
}

std::optional<std::string_view> RoutingKey(std::span<const std::string> args) {
  if (args.size() < 2) return std::nullopt;
  std::string name = args[0];
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name == "EVAL" || name == "EVALSHA" || name == "EVAL_RO" || name == "EVALSHA_RO" ||
      name == "FCALL" || name == "FCALL_RO") {
    const std::optional<int64_t> keys = args.size() > 2 ? ParseInt<int64_t>(args[2]) : std::nullopt;
    if (!keys || *keys <= 0 || args.size() < 4) return std::nullopt;
    return std::string_view(args[3]);
  }
  static constexpr std::array<std::string_view, 16> kKeyless = {
      "PING",   "INFO",   "SCRIPT", "CLUSTER", "TIME",     "WAIT",   "AUTH",   "HELLO",
      "CLIENT", "CONFIG", "DEBUG",  "COMMAND", "FUNCTION", "ASKING", "SELECT", "FLUSHALL"};
  for (const std::string_view keyless : kKeyless) {
    if (name == keyless) return std::nullopt;
  }
  return std::string_view(args[1]);
}

std::vector<std::string_view> CommandKeys(std::span<const std::string> args) {
  std::vector<std::string_view> keys;
  if (args.size() < 2) return keys;
  std::string name = args[0];
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const auto one_of = [&](std::initializer_list<std::string_view> names) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  if (one_of({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})) {
    const std::optional<int64_t> n = args.size() > 2 ? ParseInt<int64_t>(args[2]) : std::nullopt;
    for (int64_t i = 0; n && i < *n && 3 + static_cast<size_t>(i) < args.size(); ++i) {
      keys.push_back(args[3 + static_cast<size_t>(i)]);
    }
  } else if (one_of({"DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", "WATCH", "SINTER", "SUNION",
                     "SDIFF", "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE", "PFCOUNT", "PFMERGE"})) {
    keys.assign(args.begin() + 1, args.end());
  } else if (one_of({"MSET", "MSETNX"})) {
    for (size_t i = 1; i < args.size(); i += 2) keys.push_back(args[i]);
  } else if (one_of({"RENAME", "RENAMENX", "SMOVE", "RPOPLPUSH", "LMOVE", "BLMOVE", "COPY"})) {
    keys.assign(args.begin() + 1, args.begin() + std::min<size_t>(3, args.size()));
  } else if (std::optional<std::string_view> key = RoutingKey(args)) {
    keys.push_back(*key);
  }
  return keys;
}

absl::Status SlotMap::Assign(int64_t first, int64_t last, const Node& master) {
  if (first < 0 || last >= kSlots || first > last) {
    return absl::InternalError(StrCat("cluster slot range ", first, "-", last, " out of bounds"));
  }
  int16_t index = -1;
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (masters_[i].host == master.host && masters_[i].port == master.port) {
      index = static_cast<int16_t>(i);
    }
  }
  if (index < 0) {
    index = static_cast<int16_t>(masters_.size());
    masters_.push_back(master);
  }
  for (int64_t slot = first; slot <= last; ++slot) owner_[static_cast<size_t>(slot)] = index;
  return absl::OkStatus();
}

absl::StatusOr<SlotMap> SlotMap::FromSlots(const Reply& reply, std::string_view seed_host) {
  constexpr std::string_view kCommand = "CLUSTER SLOTS";
  if (reply.is_error()) return reply.ToStatus();
  if (reply.type() != Reply::Type::kArray) return Malformed(kCommand, "not an array");
  SlotMap map;
  for (const Reply& range : reply.elements()) {
    const std::vector<Reply>& e = range.elements();
    if (range.type() != Reply::Type::kArray || e.size() < 3) {
      return Malformed(kCommand, "a range without its master");
    }
    const absl::StatusOr<int64_t> first = e[0].AsInteger();
    const absl::StatusOr<int64_t> last = e[1].AsInteger();
    const std::vector<Reply>& m = e[2].elements();
    if (!first.ok() || !last.ok() || e[2].type() != Reply::Type::kArray || m.size() < 2) {
      return Malformed(kCommand, "a range's bounds or master");
    }
    const absl::StatusOr<int64_t> port = m[1].AsInteger();
    if (!port.ok() || *port <= 0 || *port > 65535) return Malformed(kCommand, "a master's port");
    Node master{.host = EndpointOf(m[0].AsOptionalString(), std::nullopt, seed_host),
                .port = static_cast<int>(*port),
                .id = m.size() > 2 ? m[2].AsOptionalString().value_or("") : ""};
    if (absl::Status s = map.Assign(*first, *last, master); !s.ok()) return s;
  }
  return map;
}

absl::StatusOr<SlotMap> SlotMap::FromShards(const Reply& reply, std::string_view seed_host) {
  constexpr std::string_view kCommand = "CLUSTER SHARDS";
  if (reply.is_error()) return reply.ToStatus();
  if (reply.type() != Reply::Type::kArray) return Malformed(kCommand, "not an array");
  SlotMap map;
  for (const Reply& shard : reply.elements()) {
    const Reply* slots = Field(shard, "slots");
    const Reply* nodes = Field(shard, "nodes");
    if (slots == nullptr || nodes == nullptr || slots->elements().size() % 2 != 0) {
      return Malformed(kCommand, "a shard without slot ranges or nodes");
    }
    if (slots->elements().empty()) continue;  // replicas only, or a master without slots
    std::optional<Node> master;
    bool online = false;  // whether `master` reported itself online
    for (const Reply& node : nodes->elements()) {
      if (OptionalString(Field(node, "role")).value_or("") != "master") continue;
      // Redis's documentation says "failed", its servers send "fail". A shard may list its dead
      // old master beside the new one: an online master is preferred to any other.
      const std::string health = OptionalString(Field(node, "health")).value_or("online");
      if (health == "fail" || health == "failed" || (online && health != "online")) continue;
      online = health == "online";
      const Reply* port_field = Field(node, "port");
      const absl::StatusOr<int64_t> port =
          port_field != nullptr ? port_field->AsInteger() : absl::NotFoundError("port");
      if (!port.ok() || *port <= 0 || *port > 65535) {
        return Malformed(kCommand, "a master's port");
      }
      master = Node{.host = EndpointOf(OptionalString(Field(node, "endpoint")),
                                       OptionalString(Field(node, "ip")), seed_host),
                    .port = static_cast<int>(*port),
                    .id = OptionalString(Field(node, "id")).value_or("")};
    }
    if (!master) continue;  // its master failed: those slots wait for the failover
    const std::vector<Reply>& bounds = slots->elements();
    for (size_t i = 0; i + 1 < bounds.size(); i += 2) {
      const absl::StatusOr<int64_t> first = bounds[i].AsInteger();
      const absl::StatusOr<int64_t> last = bounds[i + 1].AsInteger();
      if (!first.ok() || !last.ok()) return Malformed(kCommand, "a slot range");
      if (absl::Status s = map.Assign(*first, *last, *master); !s.ok()) return s;
    }
  }
  return map;
}

const Node* SlotMap::MasterOf(uint16_t slot) const {
  if (slot >= kSlots) return nullptr;
  const int16_t index = owner_[slot];
  return index < 0 ? nullptr : &masters_[static_cast<size_t>(index)];
}

int SlotMap::uncovered() const {
  int n = 0;
  for (const int16_t owner : owner_) n += owner < 0;
  return n;
}

}  // namespace herald::redis::cluster
