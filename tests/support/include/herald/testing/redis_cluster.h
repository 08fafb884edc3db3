// A real Redis Cluster for tests: masters × (1 + replicas) redis-server processes on free ports,
// each in its own temporary directory, joined by `redis-cli --cluster create`.
//
//   auto started = RedisCluster::Start({});          // ASSERT_TRUE(started.ok())
//   RedisCluster& cluster = **started;
//   cluster.seeds();                                  // {"127.0.0.1:41234", ...}
//   const uint16_t master = *cluster.MasterPortOf(*cluster.KeySlot("k"));
//   cluster.KillNode(master);
//   auto promoted = cluster.WaitForFailover(master);  // its replica, now master of its slots
//   cluster.RestartNode(master);                      // rejoins, as a replica of `promoted`
//
// Settling. Start, RestartNode, WaitForFailover, FinishMigration and WaitForAgreement return
// only once the cluster has settled: every live node reports cluster_state:ok, every live node
// gives the same answer for every node it knows (role, master, failed or not, slots), and every
// live replica of a live master has its replication link up. Each waits at most
// Options::settle_timeout and returns kDeadlineExceeded, saying what did not agree, after it.
// Slot migrations in progress (IMPORTING/MIGRATING) are not part of the comparison.
//
// The topology accessors (master_ports, replica_ports, ReplicasOf, MasterPortOf) answer from
// the topology all nodes agreed on when the cluster last settled; after changing the topology
// by other means (a CLUSTER FAILOVER sent through Command, say) call WaitForAgreement.
//
// Not thread-safe: one test thread drives it. Destruction kills (SIGKILL) every node and
// removes its directory.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <herald/testing/redis_server.h>

namespace herald::testing {

class RedisCluster {
 public:
  struct Options {
    int masters = 3;              // at least 3, as redis-cli --cluster create requires
    int replicas_per_master = 1;  // 0 or more
    bool appendonly = true;       // AOF with appendfsync always on every node
    int node_timeout_ms = 1000;   // cluster-node-timeout: how soon a dead master fails over
    std::string password;         // requirepass and masterauth on every node, when set
    // cluster-require-full-coverage: when true, every node refuses queries while any slot has
    // no live master (Redis's default); when false, only that slot's keys are refused.
    bool require_full_coverage = true;
    // How long Start and each of the waiting methods below wait for the cluster to settle. An
    // upper bound, not a pause, and generous: six nodes fsyncing every write, on two cores
    // shared with a parallel ctest's heaviest suites, can take more than 30 s.
    absl::Duration settle_timeout = absl::Seconds(60);
  };

  // Starts the nodes on free ports (new ones when a port is taken meanwhile), joins them with
  // redis-cli --cluster create and returns once the cluster has settled with every slot
  // served and `masters` masters with `replicas_per_master` replicas each.
  static absl::StatusOr<std::unique_ptr<RedisCluster>> Start(Options options);
  ~RedisCluster();

  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  // Every node, live or not, in the order they were started.
  size_t node_count() const { return nodes_.size(); }
  std::vector<uint16_t> ports() const;
  std::vector<std::string> seeds() const;  // "127.0.0.1:<port>" per node
  const std::string& password() const { return options_.password; }

  // From the topology agreed when the cluster last settled (see the top of this file). Ports
  // in ascending order; nodes flagged failed are in neither list.
  std::vector<uint16_t> master_ports() const;
  std::vector<uint16_t> replica_ports() const;
  std::vector<uint16_t> ReplicasOf(uint16_t master_port) const;
  // The master `slot` is assigned to (which may be failed, when the cluster settled without
  // full coverage); nullopt when none.
  std::optional<uint16_t> MasterPortOf(uint16_t slot) const;

  // The hash slot of `key`, as a live node computes it (CLUSTER KEYSLOT).
  absl::StatusOr<uint16_t> KeySlot(std::string_view key);

  // Runs one command on the node at `port` (authenticated when a password is set), as
  // RedisServer::Command: the reply rendered as text, an error reply as "(error) ..." (MOVED
  // and ASK redirections included). kNotFound for a port that is not a node of this cluster,
  // kUnavailable when the node does not answer.
  absl::StatusOr<std::string> Command(uint16_t port, const std::vector<std::string>& argv);
  // Several commands over one connection, for READONLY or ASKING before a command.
  absl::StatusOr<std::vector<std::string>> Commands(
      uint16_t port, const std::vector<std::vector<std::string>>& commands);

  // SIGKILL: nothing is flushed. Returns at once; the other nodes flag it failed after about
  // node_timeout_ms, and a replica of a master takes over shortly after (see WaitForFailover).
  absl::Status KillNode(uint16_t port);
  // Starts a killed node again on its port, directory and cluster config file (nodes.conf), so
  // it rejoins as the node it was; then waits for the cluster to settle with it in.
  absl::Status RestartNode(uint16_t port);
  // After KillNode(old_master_port): waits until one of its replicas has been promoted, every
  // live node agrees that it serves all of the old master's slots, and the cluster has
  // settled. Returns the promoted node's port. kFailedPrecondition when `old_master_port`
  // served no slot when the cluster last settled.
  absl::StatusOr<uint16_t> WaitForFailover(uint16_t old_master_port);
  // Waits for the cluster to settle and refreshes the agreed topology.
  absl::Status WaitForAgreement();

  // Moving a slot by hand, as `redis-cli --cluster reshard` does, in steps a test can observe
  // between. The slot's source is its master in the agreed topology; `to_port` must be another
  // master.
  //
  // BeginMigration: CLUSTER SETSLOT <slot> IMPORTING on the target, then MIGRATING on the
  // source. From then on the source answers ASK for keys of the slot it no longer holds.
  absl::Status BeginMigration(uint16_t slot, uint16_t to_port);
  // Moves up to `count` of the slot's keys still on the source to the target (CLUSTER
  // GETKEYSINSLOT, then one MIGRATE ... KEYS). Returns how many were moved; 0 when none is
  // left. kFailedPrecondition when no migration of `slot` was begun. Keys must not contain a
  // newline (they are read back from the rendered reply).
  absl::StatusOr<int> MigrateKeys(uint16_t slot, int count);
  // CLUSTER SETSLOT <slot> NODE <target> on the target, the source and every other live
  // master, then waits for the cluster to settle with the target serving the slot. The source
  // refuses (kFailedPrecondition) while it still holds keys of the slot.
  absl::Status FinishMigration(uint16_t slot);
  // All three: begins, migrates every key, finishes.
  absl::Status MoveSlot(uint16_t slot, uint16_t to_port);

 private:
  // One node's entry in the topology: what the cluster says about the node at a port.
  struct NodeView {
    bool master = false;
    uint16_t master_port = 0;  // a replica's master
    bool failed = false;       // flagged FAIL (PFAIL is one node's opinion and is left out)
    std::vector<std::pair<int, int>> slots;  // ranges, first and last inclusive
    uint64_t config_epoch = 0;               // a master's (0 for a replica)
    friend bool operator==(const NodeView&, const NodeView&) = default;
  };
  using Topology = std::map<uint16_t, NodeView>;  // by port

  struct Node {
    std::unique_ptr<RedisServer> server;
    std::string id;  // the cluster node id (CLUSTER MYID)
    bool live = true;
  };

  struct Migration {
    uint16_t source = 0;
    uint16_t target = 0;
  };

  explicit RedisCluster(Options options);

  absl::Status StartNode();
  absl::Status Create();
  // Settles (see the top of this file) with `accept` also true of the agreed topology.
  absl::Status Settle(const std::function<bool(const Topology&)>& accept);
  // Empty when the live nodes agree and are healthy; otherwise what is amiss. Sets `agreed`.
  std::string CheckSettled(Topology& agreed);
  absl::StatusOr<Topology> TopologySeenBy(uint16_t port);
  static std::optional<uint16_t> OwnerIn(const Topology& topology, int slot);
  static std::string Describe(const Topology& topology);
  // Command, with an error reply turned into kFailedPrecondition.
  absl::StatusOr<std::string> Run(uint16_t port, const std::vector<std::string>& argv);
  Node* Find(uint16_t port);

  Options options_;
  std::map<uint16_t, Node> nodes_;  // by port
  std::vector<uint16_t> start_order_;
  Topology topology_;                         // as agreed when the cluster last settled
  std::map<uint16_t, Migration> migrations_;  // by slot
};

}  // namespace herald::testing
