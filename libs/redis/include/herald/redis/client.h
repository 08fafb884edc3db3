// An asynchronous Redis client on Boost.Asio with C++20 coroutines.
//
//   redis::Client client(executor, {.address = {"127.0.0.1", 6379}}, &registry);
//   client.Start();
//   absl::StatusOr<redis::Reply> r = co_await client.Exec(redis::Command{"GET", key});
//
// - One connection carries many commands in flight: commands issued while a write is in
//   progress (or queued behind it) go out together in the next write (automatic pipelining),
//   and replies are matched to commands in order.
// - A small pool of connections (ClientConfig::connections); each command goes to one of them,
//   round robin over the connected ones.
// - Connections reconnect in the background with jittered exponential backoff; AUTH runs on
//   every (re)connect when a password is configured. A connection whose server answers READONLY
//   (demoted to a replica, perhaps behind the same DNS name) is closed and made again, resolving
//   the address anew, and counts as up only once the address leads to a primary; the commands
//   in flight on it fail with kUnavailable (ClientConfig::reconnect_on_readonly).
// - Every command has a deadline (ClientConfig::command_timeout unless given). A command that
//   misses it fails with kDeadlineExceeded at once; its reply, if it comes later, is discarded
//   and never taken for another command's. A command that had not been written yet is not sent.
// - Scripts run with EVALSHA; a NOSCRIPT error (e.g. after a Redis restart or SCRIPT FLUSH)
//   sends SCRIPT LOAD and EVALSHA again, once, on the same connection, transparently.
//
// Commands are encoded with hiredis' formatter and replies parsed with hiredis' reader; Asio
// does the I/O, one strand per connection. hiredis types do not appear in this header.
//
// Not supported: commands that break the one-reply-per-command rule of a connection (SUBSCRIBE
// and friends, MONITOR, CLIENT REPLY OFF) and blocking commands with no timeout, which hold
// up every command behind them on their connection.
//
// Redis Cluster (ClientConfig::cluster): the same API over a cluster. Every command goes to the
// master serving its key's hash slot, each master with its own pool of pipelined connections;
// MOVED and ASK redirections are followed (scripts and transactions wait out a slot's
// migration rather than follow ASK), TRYAGAIN, CLUSTERDOWN and READONLY retried within the
// command's deadline, and the slot map (CLUSTER SHARDS, or CLUSTER SLOTS on older servers)
// is refreshed on those events, on connection loss and periodically. A batch's commands and a
// script's keys must share one slot (refused with kInvalidArgument otherwise, nothing sent).
// connected() means every master is reachable; the connectivity status names those that are
// not. Commands without a key (PING, INFO, ...) go to any master.
//
// Thread safety: every method may be called from any thread, and the awaitables may be awaited
// from coroutines on any executor; they resume on the awaiting coroutine's executor (never
// inline in the caller of Exec).
//
// Cancellation: each awaitable supports the awaiting coroutine's cancellation slot (terminal
// and partial cancellation, e.g. `co_await (client.Exec(cmd) || timer.async_wait())`): the
// operation completes at once with kCancelled, and its reply is discarded when it arrives. A
// command already written may still execute in Redis.
//
// Lifetimes: the Client must outlive every operation started on it, and `executor`'s context
// must keep running until the Client is destroyed (pending operations complete through it).
// Destroying the Client stops it; its connections finish closing on `executor` afterwards, so
// the metrics registry must outlive that context's run (in Herald: the registry is created
// before, and destroyed after, the io_context).
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <herald/common/config.h>
#include <herald/redis/reply.h>

namespace herald::metrics {
class Registry;
}  // namespace herald::metrics

namespace herald::redis {

namespace internal {
class ClusterClient;
struct Unreplicated;
}  // namespace internal

// An argument of Command's constructor: text, or an integer (written in decimal).
template <typename T>
concept CommandArgument = std::convertible_to<const T&, std::string_view> ||
    (std::integral<T> && !std::same_as<T, bool>);

// One Redis command: its arguments, binary-safe. A command must have at least one argument.
//
//   co_await client.Exec({"SET", key, value});
//   co_await client.Exec(Command{"EXPIRE", key, 30});
//
// The constructor is variadic rather than taking an initializer_list because g++ 12
// miscompiles an initializer_list created inside a co_await expression (error: "array used as
// initializer"). For the same reason, build a std::vector<Command> for ExecBatch() before the
// co_await, not as a braced list inside it.
class Command {
 public:
  Command() = default;
  template <typename... Args>
  requires(sizeof...(Args) > 0 && (CommandArgument<Args> && ...))
      Command(const Args&... args) {  // NOLINT: implicit, so that Exec({"GET", key}) works
    args_.reserve(sizeof...(args));
    (Arg(args), ...);
  }

  Command& Arg(std::string_view arg);
  Command& Arg(int64_t arg);
  // Appends each element of `args` (strings or string views).
  template <typename Range>
  Command& Args(const Range& args) {
    for (const auto& a : args) Arg(std::string_view(a));
    return *this;
  }

  const std::vector<std::string>& args() const { return args_; }
  bool empty() const { return args_.empty(); }

 private:
  std::vector<std::string> args_;
};

// A Lua script, identified by the SHA-1 of its source (computed once, here). Scripts are
// usually constants that live as long as the program.
class Script {
 public:
  // How the script's writes are acknowledged. kReplicated: writes that must survive a
  // failover; with ClientConfig::wait_replicas > 0, Eval succeeds only once that many replicas
  // have them (see ClientConfig::wait_replicas).
  enum class Durability { kPrimary, kReplicated };

  explicit Script(std::string source, Durability durability = Durability::kPrimary);

  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }  // lower-case hex
  Durability durability() const { return durability_; }

 private:
  std::string source_;
  std::string sha1_;
  Durability durability_;
};

struct ClientConfig {
  // The Redis server; with `cluster`, the first node the slot map is read from.
  config::HostPort address{"127.0.0.1", 6379};
  // Redis Cluster: route commands by hash slot over one connection pool per master (see
  // "Redis Cluster" above). The slot map is read from `address`, else from any of `seeds`.
  bool cluster = false;
  std::vector<config::HostPort> seeds;
  absl::Duration cluster_refresh_interval = absl::Seconds(5);  // periodic slot map reads
  // Durability: when positive, Eval of a Script::Durability::kReplicated script sends
  // `WAIT wait_replicas <wait_timeout>` right behind it on the same connection and succeeds
  // only when that many replicas acknowledged its writes; with fewer it fails with
  // kUnavailable, although the writes stay on the primary (and reach the replicas when they
  // catch up), so callers retry an idempotent write rather than report it done. 0: writes are
  // acknowledged by the primary alone, and a failover can lose the last ones.
  int wait_replicas = 0;
  absl::Duration wait_timeout = absl::Seconds(1);  // must be below command_timeout
  // TLS (a server's `tls-port`): every connection is TLS. The server's certificate is verified
  // against `ca_file` (the system's trusted CAs when empty) and must name `server_name` (the
  // host of the address connected to when empty: on a cluster, each node's). `cert_file` and
  // `key_file` (both or neither) present a client certificate, for servers with
  // `tls-auth-clients yes`. The files are read at every (re)connect, so certificates replaced on
  // disk are used from the next connection on.
  struct Tls {
    bool enabled = false;
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
    std::string server_name;
  };
  Tls tls;
  std::string username;  // ACL user for AUTH; empty means the default user
  std::string password;  // AUTH on every (re)connect when non-empty; never logged
  int connections = 2;   // pool size (per master on a cluster)
  // A connection whose server answers READONLY (demoted to a replica) is closed, and the next
  // counts as up only once ROLE says the address leads to a primary again. The cluster client
  // turns it off for its per-node clients: it follows the slot map to the new primary instead.
  bool reconnect_on_readonly = true;
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration command_timeout = absl::Seconds(5);  // default per-command deadline
  absl::Duration reconnect_backoff_min = absl::Milliseconds(50);
  absl::Duration reconnect_backoff_max = absl::Seconds(2);
};

// Validates a config (host and port set, positive timeouts, backoff min <= max, 1..64
// connections); errors are kInvalidArgument naming the field.
absl::Status ValidateClientConfig(const ClientConfig& config);

// Whether `status` is a command's failure for want of a reply within its deadline (the command
// may or may not have run): Redis, not the caller, was slow. Such statuses are kDeadlineExceeded.
bool IsNoReplyInTime(const absl::Status& status);

// Metrics, when Client is given a registry (shared by every Client on that registry):
//   herald_redis_commands_total{outcome}       commands finished, by outcome: ok, error_reply,
//                                              timeout, unavailable, cancelled (a batch counts
//                                              each of its commands)
//   herald_redis_command_duration_seconds      time from issue to completion, per operation
//   herald_redis_reconnects_total              connection attempts after a connection's first
//   herald_redis_connections                   connections established and authenticated
//   herald_redis_unreplicated_writes_total     replicated scripts (wait_replicas) whose write
//                                              reached fewer replicas than required in time,
//                                              and so failed kUnavailable

class Client {
 public:
  // `executor` runs the connections' I/O (each connection on its own strand of it). `config`
  // must be valid (ValidateClientConfig); an invalid one aborts. `registry`, when given,
  // receives the client's metrics and must outlive it (see Lifetimes above).
  Client(boost::asio::any_io_executor executor, ClientConfig config,
         metrics::Registry* registry = nullptr);
  // Stops the client (see Stop()).
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts connecting in the background. Never blocks. Commands issued while a connection is
  // being established (including before Start()) wait for it, within their deadline; commands
  // issued while every connection is down and waiting to retry fail at once with kUnavailable.
  // Idempotent.
  void Start();

  // Closes every connection. Pending and later commands fail with kCancelled. Never blocks:
  // pending operations complete on their executors shortly after. Idempotent.
  void Stop();

  // Stop(), then completes once every connection's loop (and a cluster client's slot-map
  // refresh) has ended: after it, the client runs nothing on its executor. Idempotent.
  boost::asio::awaitable<void> Close();

  // True while at least one connection is established and authenticated.
  bool connected() const;
  // True while Redis holds the connections but answers nothing: a command's deadline passed
  // with no reply since (a hung server, or a path lost without a reset). Reported through
  // OnConnectivityChange as kUnavailable, and OkStatus when a reply comes. On a cluster
  // client, false (its masters' states are in its reports).
  bool stalled() const;

  // Called whenever connected() changes, with OkStatus when connected or the reason it is not,
  // and, while not connected, when that reason changes (e.g. kUnauthenticated when AUTH is
  // refused, then kUnavailable when Redis goes away). Runs on a connection's strand, one call
  // at a time and in order; for readiness reporting, so it must not block, and it must not call
  // OnConnectivityChange. Replaces any previous callback; not called for the state at
  // registration (read connected()), nor once the Client's destructor has returned.
  void OnConnectivityChange(std::function<void(absl::Status)> callback);

  // Sends `command` and waits for its reply. `timeout` (default: config.command_timeout) runs
  // from the moment the awaitable is awaited.
  //
  // A Redis error reply becomes a status (Reply::ToStatus): kUnavailable for transient server
  // states (LOADING, BUSY, MASTERDOWN, READONLY, TRYAGAIN, CLUSTERDOWN), kResourceExhausted for
  // OOM, kUnauthenticated/kPermissionDenied for NOAUTH, WRONGPASS/NOPERM, kInternal otherwise, with
  // Redis' message. Other failures:
  //   kDeadlineExceeded  no reply before the deadline (the late reply is discarded)
  //   kUnavailable       no connection, or the connection failed before the reply arrived; the
  //                      command may or may not have executed
  //   kCancelled         Stop() was called, or the awaiting operation was cancelled
  //   kInvalidArgument   the command is empty
  boost::asio::awaitable<absl::StatusOr<Reply>> Exec(
      Command command, std::optional<absl::Duration> timeout = std::nullopt);

  // Sends `commands` back to back on one connection, in one write, and returns their replies
  // in order; one deadline covers them all. Not a transaction: other clients' commands may
  // interleave (wrap in MULTI/EXEC for that). Error replies stay in the result as
  // Reply::Type::kError; the status fails only for the reasons Exec() lists besides replies.
  // An empty batch succeeds with no replies.
  boost::asio::awaitable<absl::StatusOr<std::vector<Reply>>> ExecBatch(
      std::vector<Command> commands, std::optional<absl::Duration> timeout = std::nullopt);

  // EVALSHA `script` with `keys` and `args`, loading it on NOSCRIPT and retrying once; one
  // deadline covers both. Errors as for Exec(); a script's own error_reply becomes kInternal
  // with its message; keys in more than one cluster hash slot are refused (kInvalidArgument,
  // naming two of them, nothing sent), on a single node as on a cluster. `script` must stay
  // alive until the operation completes.
  boost::asio::awaitable<absl::StatusOr<Reply>> Eval(
      const Script& script, std::vector<std::string> keys, std::vector<std::string> args,
      std::optional<absl::Duration> timeout = std::nullopt);

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;                        // a single node
  std::shared_ptr<internal::ClusterClient> cluster_;  // a cluster
  int wait_replicas_ = 0;
  absl::Duration wait_timeout_;
  // Writes their replicas did not acknowledge (wait_replicas): counted, and logged as an outage.
  std::shared_ptr<internal::Unreplicated> unreplicated_;
};

}  // namespace herald::redis
