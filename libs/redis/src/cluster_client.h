// The Redis Cluster side of Client: routing by hash slot over one single-node Client per
// master, redirections, and the slot map kept fresh.
//
// Routing: a command goes to the master that serves its key's slot (cluster::RoutingKey,
// cluster::KeySlot); a command without a key goes to any master. Each master has its own
// pipelined connection pool (a single-node Client), so pipelining, deadlines, AUTH and
// NOSCRIPT reloads work as on one node.
//
// Redirections and transient cluster states, within the command's one deadline:
//   MOVED        the slot has a new owner: the map is updated for that slot at once, a full
//                refresh is requested, and the command is sent to the new owner.
//   ASK          the slot is migrating: ASKING + the command go to the target on one
//                connection; the map is not changed. Scripts and transactions wait for the
//                migration to end instead: a script may touch keys it does not declare (Herald's
//                queue scripts declare only their shard's hash tag), and during the migration
//                those keys are split between the two nodes.
//   TRYAGAIN     a multi-key operation on a slot being migrated: retried after a short pause.
//   CLUSTERDOWN, READONLY (a master that came back as a replica), MASTERDOWN, and a command
//                that could not be written because its node is unreachable: the map is
//                refreshed and the command retried once it has an owner that is reachable.
// A command that was written but whose connection failed before the reply may have run; it is
// not retried (kUnavailable, as on a single node) but the map is refreshed.
//
// The slot map is read with CLUSTER SHARDS (CLUSTER SLOTS on servers without it) from the
// masters known to be connected first, then the other known masters, then the seeds, so a dead
// node's address is never the only one tried. It is refreshed at start, on every event above,
// when a master's connectivity changes, and every ClientConfig::cluster_refresh_interval.
// Nodes that stop being masters are closed after a grace period (their pending commands finish
// or time out first).
//
// Connectivity: connected() is true while a slot map is known and every master in it has a
// connection; the callback's status names every master that has none.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <absl/random/random.h>
#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <herald/common/gate.h>
#include <herald/redis/client.h>
#include <herald/redis/cluster.h>

namespace herald::redis::internal {

class ClusterClient : public std::enable_shared_from_this<ClusterClient> {
 public:
  ClusterClient(boost::asio::any_io_executor executor, ClientConfig config,
                metrics::Registry* registry);
  ~ClusterClient();

  void Start();
  void Stop();
  // Stop(), then completes once the refresh loop has ended and every pool is closed.
  boost::asio::awaitable<void> Close();
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  void OnConnectivityChange(std::function<void(absl::Status)> callback);
  // "host:port" of the master serving `slot` as the client knows it; empty when none is known.
  std::string MasterAddressOf(uint16_t slot);

  boost::asio::awaitable<absl::StatusOr<Reply>> Exec(Command command,
                                                     std::optional<absl::Duration> timeout);
  boost::asio::awaitable<absl::StatusOr<std::vector<Reply>>> ExecBatch(
      std::vector<Command> commands, std::optional<absl::Duration> timeout);
  boost::asio::awaitable<absl::StatusOr<Reply>> Eval(const Script& script,
                                                     std::vector<std::string> keys,
                                                     std::vector<std::string> args,
                                                     std::optional<absl::Duration> timeout);

 private:
  // One node's connection pool.
  struct NodeClient {
    cluster::Node node;
    std::unique_ptr<Client> client;
  };
  using NodePtr = std::shared_ptr<NodeClient>;
  struct Request;
  struct Attempt;
  // An entry in the client's gate that keeps the client alive until it has left.
  using Entry = OwnedGateHolder<ClusterClient>;
  Entry Enter();

  // The command(s) of `request` sent until they are answered by the slot's owner.
  boost::asio::awaitable<absl::StatusOr<std::vector<Reply>>> Route(const Request& request);
  boost::asio::awaitable<Attempt> Send(const Request& request, const NodePtr& node, bool asking,
                                       absl::Duration timeout);

  // The master serving `slot` (any master when `slot` is nullopt); null when none is known.
  NodePtr OwnerOf(std::optional<uint16_t> slot);
  // The pool for `node`, created (and started) when new. `mu_` must be held.
  NodePtr NodeLocked(const cluster::Node& node);
  NodePtr Node(const cluster::Node& node);
  // A MOVED reply: `slot` is now served by `node`.
  void Moved(uint16_t slot, const cluster::Node& node);

  // Asks the refresh loop for a new slot map now (at most one read per refresh_min_interval).
  void RequestRefresh();
  boost::asio::awaitable<void> RefreshLoop();
  boost::asio::awaitable<absl::Status> Refresh();
  void Apply(const cluster::SlotMap& map);
  // Closes `nodes` after a grace period for the commands already on their way to them.
  void Retire(std::vector<NodePtr> nodes);
  boost::asio::awaitable<void> CloseAfterGrace(NodePtr node);
  // Stops every pool; returns them (nothing on a second call).
  std::vector<NodePtr> StopNodes();

  void UpdateConnectivity();

  const ClientConfig config_;
  metrics::Registry* const registry_;
  const boost::asio::any_io_executor executor_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;  // the refresh loop's
  boost::asio::steady_timer refresh_timer_;                   // strand only
  bool refresh_requested_ = false;                            // strand only
  std::set<boost::asio::steady_timer*> retiring_;             // strand only: grace timers
  std::string last_refresh_failure_;                          // strand only
  absl::BitGen random_;                                       // strand only: backoff jitter
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> connected_{false};

  mutable std::mutex mu_;
  std::vector<NodePtr> owners_;                 // slot -> master; guarded by mu_
  std::vector<NodePtr> masters_;                // guarded by mu_
  int uncovered_ = 0;                           // slots without a master; guarded by mu_
  std::map<std::string, NodePtr> nodes_;        // every open pool, by address; guarded by mu_
  std::vector<cluster::Node> seeds_;            // immutable
  uint64_t round_robin_ = 0;                    // guarded by mu_
  std::string last_reported_;                   // guarded by mu_
  std::string last_map_summary_;                // guarded by mu_
  std::mutex callback_mu_;                      // taken after mu_
  std::function<void(absl::Status)> callback_;  // guarded by callback_mu_
  Gate gate_;  // entered by the refresh loop and by each retired pool until it is closed
};

}  // namespace herald::redis::internal
