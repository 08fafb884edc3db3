#include <algorithm>
#include <filesystem>
#include <iostream>

#include <absl/strings/numbers.h>
#include <absl/time/time.h>
#include <sys/wait.h>

#include <herald/common/strings.h>
#include <herald/testing/net.h>
#include <herald/testing/redis_cluster.h>
#include <herald/testing/subprocess.h>
#include <herald/testing/wait.h>

namespace herald::testing {
namespace {

constexpr int kSlots = 16384;
constexpr std::string_view kErrorPrefix = "(error) ";

std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> words;
  for (std::string_view w : StrSplit(line, ' ')) {
    if (!w.empty()) words.push_back(w);
  }
  return words;
}

// "127.0.0.1:30001@40001[,hostname]" → 30001.
std::optional<uint16_t> PortOfAddress(std::string_view address) {
  address = address.substr(0, address.find('@'));
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return ParseInt<uint16_t>(address.substr(colon + 1));
}

// "0-5460" or "5461"; nullopt for anything else.
std::optional<std::pair<int, int>> SlotRange(std::string_view text) {
  const size_t dash = text.find('-');
  const auto first = ParseInt<int>(text.substr(0, dash));
  const auto last = dash == std::string_view::npos ? first : ParseInt<int>(text.substr(dash + 1));
  if (!first || !last || *first < 0 || *last < *first || *last >= kSlots) return std::nullopt;
  return std::pair(*first, *last);
}

}  // namespace

RedisCluster::RedisCluster(Options options) : options_(std::move(options)) {}

RedisCluster::~RedisCluster() {
  for (auto& [port, node] : nodes_) {
    const std::string dir = node.server->dir();
    node.server.reset();  // SIGKILL
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
}

absl::StatusOr<std::unique_ptr<RedisCluster>> RedisCluster::Start(Options options) {
  if (options.masters < 3) {
    return absl::InvalidArgumentError("a Redis Cluster needs at least 3 masters");
  }
  if (options.replicas_per_master < 0) {
    return absl::InvalidArgumentError("replicas_per_master must not be negative");
  }
  std::unique_ptr<RedisCluster> cluster;
  for (int attempt = 1;; ++attempt) {
    cluster.reset(new RedisCluster(options));
    const Options& o = cluster->options_;
    for (int i = 0; i < o.masters * (1 + o.replicas_per_master); ++i) {
      if (absl::Status s = cluster->StartNode(); !s.ok()) return s;
    }
    absl::Status created = cluster->Create();
    if (created.ok()) break;
    // Seen once in a sanitizer run on a loaded machine: the nodes never finished joining. A new
    // set of nodes (on new ports) is tried once more before the fixture gives up.
    if (!absl::IsDeadlineExceeded(created) || attempt == 2) return created;
    std::cerr << "redis cluster fixture: " << created << "; starting new nodes\n";
  }
  const Options& o = cluster->options_;
  absl::Status settled = cluster->Settle([&o](const Topology& topology) {
    int masters = 0;
    int replicas = 0;
    int covered = 0;
    for (const auto& [port, view] : topology) {
      if (!view.master) ++replicas;
      if (!view.master || view.slots.empty()) continue;
      ++masters;
      for (const auto& [first, last] : view.slots) covered += last - first + 1;
    }
    return masters == o.masters && replicas == o.masters * o.replicas_per_master &&
           covered == kSlots;
  });
  if (!settled.ok()) return settled;
  return cluster;
}

absl::Status RedisCluster::StartNode() {
  // The cluster bus port is picked (and so reserved) too: redis would use port + 10000, which
  // nothing reserves. Either port can still be taken by another program before redis binds it:
  // RedisServer retries new data ports, this loop new bus ports.
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    RedisServer::Options server_options{
        .appendonly = options_.appendonly,
        .password = options_.password,
        .extra =
            {
                "cluster-enabled yes",
                "cluster-config-file nodes.conf",  // relative to the node's dir
                StrCat("cluster-port ", PickFreePort()),
                StrCat("cluster-node-timeout ", options_.node_timeout_ms),
                StrCat("cluster-require-full-coverage ",
                       options_.require_full_coverage ? "yes" : "no"),
                // The topology changes only when a test changes it.
                "cluster-allow-replica-migration no",
                // A replica takes over however long it was cut off from its master.
                "cluster-replica-validity-factor 0",
                // A replica's full sync starts at once, not after waiting 5s for other replicas.
                "repl-diskless-sync-delay 0",
            },
    };
    if (!options_.password.empty()) {
      server_options.extra.push_back(StrCat("masterauth ", options_.password));
    }
    auto server = RedisServer::Start(std::move(server_options));
    if (!server.ok()) {
      last = server.status();
      continue;
    }
    auto id = (*server)->Command({"CLUSTER", "MYID"});
    if (!id.ok()) return id.status();
    const uint16_t port = (*server)->port();
    nodes_.emplace(port, Node{.server = std::move(*server), .id = *std::move(id)});
    start_order_.push_back(port);
    return absl::OkStatus();
  }
  return last;
}

absl::Status RedisCluster::Create() {
  std::vector<std::string> argv = {"/usr/bin/redis-cli"};
  if (!options_.password.empty()) {
    argv.insert(argv.end(), {"-a", options_.password, "--no-auth-warning"});
  }
  argv.insert(argv.end(), {"--cluster", "create"});
  for (std::string& seed : seeds()) argv.push_back(std::move(seed));
  argv.insert(argv.end(),
              {"--cluster-replicas", StrCat(options_.replicas_per_master), "--cluster-yes"});
  auto cli = Subprocess::Start({.argv = std::move(argv)});
  if (!cli.ok()) return cli.status();
  const std::optional<int> status = cli->Wait(options_.settle_timeout);
  if (!status) {
    cli->Kill();
    return absl::DeadlineExceededError(
        StrCat("redis-cli --cluster create did not finish:\n", cli->Stdout(), cli->Stderr()));
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return absl::InternalError(StrCat("redis-cli --cluster create failed (wait status ", *status,
                                      "):\n", cli->Stdout(), cli->Stderr()));
  }
  return absl::OkStatus();
}

std::vector<uint16_t> RedisCluster::ports() const { return start_order_; }

std::vector<std::string> RedisCluster::seeds() const {
  std::vector<std::string> seeds;
  for (uint16_t port : start_order_) seeds.push_back(StrCat("127.0.0.1:", port));
  return seeds;
}

std::vector<uint16_t> RedisCluster::master_ports() const {
  std::vector<uint16_t> ports;
  for (const auto& [port, view] : topology_) {
    if (view.master && !view.failed) ports.push_back(port);
  }
  return ports;
}

std::vector<uint16_t> RedisCluster::replica_ports() const {
  std::vector<uint16_t> ports;
  for (const auto& [port, view] : topology_) {
    if (!view.master && !view.failed) ports.push_back(port);
  }
  return ports;
}

std::vector<uint16_t> RedisCluster::ReplicasOf(uint16_t master_port) const {
  std::vector<uint16_t> ports;
  for (const auto& [port, view] : topology_) {
    if (!view.master && !view.failed && view.master_port == master_port) ports.push_back(port);
  }
  return ports;
}

std::optional<uint16_t> RedisCluster::MasterPortOf(uint16_t slot) const {
  return OwnerIn(topology_, slot);
}

std::optional<uint16_t> RedisCluster::OwnerIn(const Topology& topology, int slot) {
  for (const auto& [port, view] : topology) {
    if (!view.master) continue;
    for (const auto& [first, last] : view.slots) {
      if (first <= slot && slot <= last) return port;
    }
  }
  return std::nullopt;
}

absl::StatusOr<uint16_t> RedisCluster::KeySlot(std::string_view key) {
  absl::Status last = absl::UnavailableError("no node is live");
  for (uint16_t port : start_order_) {
    if (!nodes_.at(port).live) continue;
    auto slot = Run(port, {"CLUSTER", "KEYSLOT", std::string(key)});
    if (!slot.ok()) {
      last = slot.status();
      continue;
    }
    if (auto parsed = ParseInt<uint16_t>(*slot)) return *parsed;
    return absl::InternalError(StrCat("CLUSTER KEYSLOT answered '", *slot, "'"));
  }
  return last;
}

absl::StatusOr<std::string> RedisCluster::Command(uint16_t port,
                                                  const std::vector<std::string>& argv) {
  Node* node = Find(port);
  if (node == nullptr) return absl::NotFoundError(StrCat("no node on port ", port));
  return node->server->Command(argv);
}

absl::StatusOr<std::vector<std::string>> RedisCluster::Commands(
    uint16_t port, const std::vector<std::vector<std::string>>& commands) {
  Node* node = Find(port);
  if (node == nullptr) return absl::NotFoundError(StrCat("no node on port ", port));
  return node->server->Commands(commands);
}

absl::StatusOr<std::string> RedisCluster::Run(uint16_t port, const std::vector<std::string>& argv) {
  auto reply = Command(port, argv);
  if (reply.ok() && reply->starts_with(kErrorPrefix)) {
    return absl::FailedPreconditionError(
        StrCat("node ", port, ": ", StrJoin(argv, " "), ": ", reply->substr(kErrorPrefix.size())));
  }
  return reply;
}

RedisCluster::Node* RedisCluster::Find(uint16_t port) {
  auto it = nodes_.find(port);
  return it == nodes_.end() ? nullptr : &it->second;
}

absl::Status RedisCluster::KillNode(uint16_t port) {
  Node* node = Find(port);
  if (node == nullptr) return absl::NotFoundError(StrCat("no node on port ", port));
  node->live = false;
  return node->server->Stop(/*graceful=*/false);
}

absl::Status RedisCluster::RestartNode(uint16_t port) {
  Node* node = Find(port);
  if (node == nullptr) return absl::NotFoundError(StrCat("no node on port ", port));
  if (node->live) {
    return absl::FailedPreconditionError(StrCat("node ", port, " is running: kill it first"));
  }
  if (absl::Status s = node->server->Restart(/*graceful=*/false); !s.ok()) return s;
  node->live = true;
  return Settle([port](const Topology& topology) {
    auto it = topology.find(port);
    return it != topology.end() && !it->second.failed;
  });
}

absl::StatusOr<uint16_t> RedisCluster::WaitForFailover(uint16_t old_master_port) {
  auto old = topology_.find(old_master_port);
  if (old == topology_.end() || !old->second.master || old->second.slots.empty()) {
    return absl::FailedPreconditionError(
        StrCat("node ", old_master_port, " served no slot when the cluster last settled"));
  }
  const std::vector<std::pair<int, int>> old_slots = old->second.slots;
  std::optional<uint16_t> promoted;
  absl::Status settled = Settle([&](const Topology& topology) {
    promoted = OwnerIn(topology, old_slots.front().first);
    if (!promoted || *promoted == old_master_port) return false;
    for (const auto& [first, last] : old_slots) {
      if (OwnerIn(topology, first) != promoted || OwnerIn(topology, last) != promoted) {
        return false;
      }
    }
    return true;
  });
  if (!settled.ok()) return settled;
  return *promoted;
}

absl::Status RedisCluster::WaitForAgreement() {
  return Settle([](const Topology&) { return true; });
}

absl::Status RedisCluster::BeginMigration(uint16_t slot, uint16_t to_port) {
  if (slot >= kSlots) return absl::InvalidArgumentError(StrCat("no slot ", slot));
  if (migrations_.contains(slot)) {
    return absl::FailedPreconditionError(StrCat("slot ", slot, " is already migrating"));
  }
  const std::optional<uint16_t> source = MasterPortOf(slot);
  if (!source) return absl::FailedPreconditionError(StrCat("slot ", slot, " has no master"));
  auto target = topology_.find(to_port);
  if (target == topology_.end() || !target->second.master || target->second.failed ||
      to_port == *source) {
    return absl::InvalidArgumentError(StrCat(
        "node ", to_port, " is not a live master other than slot ", slot, "'s (", *source, ")"));
  }
  auto importing =
      Run(to_port, {"CLUSTER", "SETSLOT", StrCat(slot), "IMPORTING", nodes_.at(*source).id});
  if (!importing.ok()) return importing.status();
  auto migrating =
      Run(*source, {"CLUSTER", "SETSLOT", StrCat(slot), "MIGRATING", nodes_.at(to_port).id});
  if (!migrating.ok()) return migrating.status();
  migrations_[slot] = Migration{.source = *source, .target = to_port};
  return absl::OkStatus();
}

absl::StatusOr<int> RedisCluster::MigrateKeys(uint16_t slot, int count) {
  auto migration = migrations_.find(slot);
  if (migration == migrations_.end()) {
    return absl::FailedPreconditionError(StrCat("slot ", slot, " is not migrating"));
  }
  const auto [source, target] = migration->second;
  auto listed = Run(source, {"CLUSTER", "GETKEYSINSLOT", StrCat(slot), StrCat(count)});
  if (!listed.ok()) return listed.status();
  if (listed->empty()) return 0;
  const std::vector<std::string_view> keys = StrSplit(*listed, '\n');
  std::vector<std::string> argv = {"MIGRATE", "127.0.0.1", StrCat(target), "", "0", "10000"};
  if (!options_.password.empty()) argv.insert(argv.end(), {"AUTH2", "default", options_.password});
  argv.push_back("KEYS");
  argv.insert(argv.end(), keys.begin(), keys.end());
  auto migrated = Run(source, argv);
  if (!migrated.ok()) return migrated.status();
  if (*migrated != "OK") {
    return absl::InternalError(StrCat("MIGRATE from ", source, " answered '", *migrated, "'"));
  }
  return static_cast<int>(keys.size());
}

absl::Status RedisCluster::FinishMigration(uint16_t slot) {
  auto migration = migrations_.find(slot);
  if (migration == migrations_.end()) {
    return absl::FailedPreconditionError(StrCat("slot ", slot, " is not migrating"));
  }
  const auto [source, target] = migration->second;
  // The target first, so that it serves the slot before the source redirects there for good;
  // then the source; then the other masters, which would learn it by gossip anyway.
  std::vector<uint16_t> order = {target, source};
  for (uint16_t port : master_ports()) {
    if (port != target && port != source && nodes_.at(port).live) order.push_back(port);
  }
  for (uint16_t port : order) {
    auto set = Run(port, {"CLUSTER", "SETSLOT", StrCat(slot), "NODE", nodes_.at(target).id});
    if (!set.ok()) return set.status();
  }
  migrations_.erase(migration);
  return Settle([&](const Topology& topology) { return OwnerIn(topology, slot) == target; });
}

absl::Status RedisCluster::MoveSlot(uint16_t slot, uint16_t to_port) {
  if (absl::Status s = BeginMigration(slot, to_port); !s.ok()) return s;
  while (true) {
    auto moved = MigrateKeys(slot, 100);
    if (!moved.ok()) return moved.status();
    if (*moved == 0) break;
  }
  return FinishMigration(slot);
}

absl::Status RedisCluster::Settle(const std::function<bool(const Topology&)>& accept) {
  std::string problem;
  Topology agreed;
  const bool settled = WaitFor(
      [&] {
        problem = CheckSettled(agreed);
        if (problem.empty() && !accept(agreed)) {
          problem = StrCat("the nodes agree on a topology other than the one awaited:\n",
                           Describe(agreed));
        }
        return problem.empty();
      },
      options_.settle_timeout);
  if (!settled) {
    return absl::DeadlineExceededError(StrCat("Redis Cluster did not settle within ",
                                              absl::FormatDuration(options_.settle_timeout), ": ",
                                              problem));
  }
  topology_ = std::move(agreed);
  return absl::OkStatus();
}

std::string RedisCluster::CheckSettled(Topology& agreed) {
  std::optional<uint16_t> first;
  for (uint16_t port : start_order_) {
    if (!nodes_.at(port).live) continue;
    auto info = Run(port, {"CLUSTER", "INFO"});
    if (!info.ok()) return std::string(info.status().message());
    if (info->find("cluster_state:ok") == std::string::npos) {
      return StrCat("node ", port, " does not report cluster_state:ok");
    }
    auto seen = TopologySeenBy(port);
    if (!seen.ok()) return std::string(seen.status().message());
    if (!first) {
      first = port;
      agreed = *std::move(seen);
    } else if (*seen != agreed) {
      return StrCat("nodes ", *first, " and ", port, " disagree:\n", Describe(agreed), "versus\n",
                    Describe(*seen));
    }
  }
  if (!first) return "no node is live";
  // Masters that bumped their epochs at the same moment (each finished migration bumps its
  // target's) share one until gossip resolves the collision. Until then a slot claim made under
  // the shared epoch can lose to a stale claim of the other master, and nodes end up disagreeing
  // for good about who owns a migrated slot; so the cluster is not settled while two live masters
  // share an epoch.
  std::map<uint64_t, uint16_t> epochs;
  for (const auto& [port, view] : agreed) {
    if (!view.master || view.failed || !nodes_.at(port).live) continue;
    if (auto [at, fresh] = epochs.emplace(view.config_epoch, port); !fresh) {
      return StrCat("masters ", at->second, " and ", port, " share config epoch ",
                    view.config_epoch);
    }
  }
  if (agreed.size() != nodes_.size()) {
    return StrCat("the nodes know ", agreed.size(), " nodes, not ", nodes_.size(), ":\n",
                  Describe(agreed));
  }
  for (const auto& [port, view] : agreed) {
    if (view.master || !nodes_.at(port).live) continue;
    const Node* master = Find(view.master_port);
    if (master == nullptr || !master->live) continue;
    auto info = Run(port, {"INFO", "replication"});
    if (!info.ok()) return std::string(info.status().message());
    if (info->find("master_link_status:up") == std::string::npos) {
      return StrCat("replica ", port, " is not yet in sync with its master ", view.master_port);
    }
  }
  return "";
}

absl::StatusOr<RedisCluster::Topology> RedisCluster::TopologySeenBy(uint16_t port) {
  // CLUSTER NODES, a line per node: <id> <ip:port@cport[,hostname]> <flags> <master id or ->
  // <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>... where a slot is "n", "n-m",
  // or, on the node itself, "[n->-id]" / "[n-<-id]" for a migration (left out here).
  auto text = Run(port, {"CLUSTER", "NODES"});
  if (!text.ok()) return text.status();
  struct Line {
    uint16_t port;
    std::string master_id;
    NodeView view;
  };
  std::map<std::string, Line, std::less<>> lines;  // by node id
  for (std::string_view line : StrSplit(*text, '\n')) {
    const std::vector<std::string_view> words = Words(line);
    if (words.empty()) continue;
    auto malformed = [&] {
      return absl::InternalError(StrCat("node ", port, ": CLUSTER NODES line '", line, "'"));
    };
    if (words.size() < 8) return malformed();
    const std::optional<uint16_t> node_port = PortOfAddress(words[1]);
    if (!node_port) return malformed();
    Line parsed{.port = *node_port, .master_id = std::string(words[3]), .view = {}};
    for (std::string_view flag : StrSplit(words[2], ',')) {
      if (flag == "handshake" || flag == "noaddr") {
        return absl::UnavailableError(
            StrCat("node ", port, " is still meeting node ", *node_port, " (", words[2], ")"));
      }
      if (flag == "master") parsed.view.master = true;
      if (flag == "fail") parsed.view.failed = true;
    }
    if (parsed.view.master && !absl::SimpleAtoi(absl::string_view(words[6].data(), words[6].size()),
                                                &parsed.view.config_epoch)) {
      return malformed();
    }
    for (size_t i = 8; i < words.size(); ++i) {
      if (words[i].starts_with('[')) continue;
      const auto range = SlotRange(words[i]);
      if (!range) return malformed();
      parsed.view.slots.push_back(*range);
    }
    std::sort(parsed.view.slots.begin(), parsed.view.slots.end());
    lines.emplace(std::string(words[0]), std::move(parsed));
  }
  Topology topology;
  for (auto& [id, line] : lines) {
    if (!line.view.master) {
      auto master = lines.find(line.master_id);
      if (master != lines.end()) line.view.master_port = master->second.port;
    }
    if (!topology.emplace(line.port, line.view).second) {
      return absl::UnavailableError(StrCat("node ", port, " knows two nodes on port ", line.port));
    }
  }
  return topology;
}

std::string RedisCluster::Describe(const Topology& topology) {
  std::string out;
  for (const auto& [port, view] : topology) {
    StrAppend(&out, "  ", port, view.failed ? " failed" : "");
    if (view.master) {
      StrAppend(&out, " master (epoch ", view.config_epoch, ")");
      for (const auto& [first, last] : view.slots) StrAppend(&out, " ", first, "-", last);
    } else {
      StrAppend(&out, " replica of ", view.master_port);
    }
    out.push_back('\n');
  }
  return out;
}

}  // namespace herald::testing
