#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <herald/common/config.h>
#include <herald/common/outage.h>
#include <herald/common/setting_error.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/redis/client.h>
#include <herald/redis/cluster.h>

#include "cluster_client.h"
#include "connection.h"

namespace herald::redis {
namespace {

namespace asio = boost::asio;
using internal::Connection;
using internal::Op;
using internal::OpKind;
using internal::SteadyClock;

// An op that resumes a coroutine through its completion handler: `Handler` takes
// StatusOr<std::vector<Reply>> when `kBatch`, StatusOr<Reply> otherwise.
template <typename Handler, bool kBatch>
class OpImpl final : public Op {
 public:
  explicit OpImpl(Handler handler) : handler_(std::move(handler)) {}

  void Complete() override {
    Handler handler = std::move(handler_);
    if constexpr (kBatch) {
      absl::StatusOr<std::vector<Reply>> result = internal::BatchResult(*this);
      delete this;
      std::move(handler)(std::move(result));
    } else {
      absl::StatusOr<Reply> result = internal::ReplyResult(*this);
      delete this;
      std::move(handler)(std::move(result));
    }
  }

 private:
  Handler handler_;
};

// Installed in the awaiting coroutine's cancellation slot: cancellation abandons the op on its
// connection's strand.
struct CancelHandler {
  std::weak_ptr<Connection> connection;
  uint64_t id;

  void operator()(asio::cancellation_type type) const {
    if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial)) ==
        asio::cancellation_type::none) {
      return;
    }
    if (std::shared_ptr<Connection> c = connection.lock()) c->Cancel(id);
  }
};

internal::Deadline DeadlineAfter(SteadyClock::time_point start, absl::Duration timeout) {
  // Timeouts beyond a year mean none (and cannot overflow the clock).
  if (timeout >= absl::Hours(24 * 365)) return internal::kNoDeadline;
  if (timeout <= absl::ZeroDuration()) return start;
  return start + std::chrono::duration_cast<internal::Deadline::duration>(
                     absl::ToChronoNanoseconds(timeout));
}

bool IsNoScript(const Reply& reply) {
  return reply.is_error() && reply.str().starts_with("NOSCRIPT");
}

}  // namespace

// Writes their replicas did not acknowledge: a master without its replica fails every
// replicated write to its slots while /readyz stays green (reads and other writes work), so
// operators need the count (alert HeraldRedisWritesUnreplicated) and the log. The log keeps one
// outage per master: on a cluster, writes to the other masters' slots keep succeeding, and must
// not read as the lagging master's recovery.
struct internal::Unreplicated {
  explicit Unreplicated(metrics::Registry* registry)
      : counter(registry == nullptr
                    ? nullptr
                    : &metrics::BuildCounter()
                           .Name("herald_redis_unreplicated_writes_total")
                           .Help("Replicated Redis writes (--redis_wait_replicas) that reached "
                                 "fewer replicas than required in time, and so failed.")
                           .Register(*registry)
                           .Add({})) {}

  // `master`: the address of the master that took the write ("" on a single node).
  void Failed(const std::string& master, const absl::Status& why) {
    if (counter != nullptr) counter->Increment();
    // Under mu, as Succeeded may erase the entry (the lines are rare: one when it starts, a
    // summary every 30 s).
    std::lock_guard<std::mutex> lock(mu);
    Lagging& lagging = outages[master];
    lagging_count.store(outages.size(), std::memory_order_relaxed);
    if (lagging.outage == nullptr) {
      lagging.outage = std::make_unique<log::Outage>(
          "redis replicas", master.empty() ? std::string("acknowledged writes")
                                           : StrCat("acknowledged writes to ", master));
    }
    lagging.last_failure = absl::Now();
    lagging.outage->Failed(why);
  }

  // A write `master` took was acknowledged: its outage is over. So is that of a master whose
  // writes have not failed for kQuiet while others' succeed: it is no longer a master (a
  // failover, a reshard, a new address), or it takes no writes to say otherwise.
  void Succeeded(const std::string& master) {
    std::lock_guard<std::mutex> lock(mu);
    const absl::Time now = absl::Now();
    for (auto it = outages.begin(); it != outages.end();) {
      if (it->first == master || now - it->second.last_failure >= kQuiet) {
        it->second.outage->Succeeded();
        if (!it->second.outage->down()) {
          it = outages.erase(it);
          lagging_count.store(outages.size(), std::memory_order_relaxed);
          continue;
        }
      }
      ++it;
    }
  }

  static constexpr absl::Duration kQuiet = absl::Minutes(1);

  struct Lagging {
    std::unique_ptr<log::Outage> outage;
    absl::Time last_failure;
  };
  metrics::Counter* counter;
  std::mutex mu;
  // The masters whose writes are failing: a handful at most.
  std::map<std::string, Lagging> outages;  // guarded by mu
  // outages.size(), read without mu: a write acknowledged while no master lags (nearly always)
  // looks up no address and takes no lock.
  std::atomic<size_t> lagging_count{0};
};

namespace {

// Eval of a kReplicated script: EVALSHA (EVAL when the server lacks it) and WAIT in one batch,
// so both go on one connection and WAIT covers the script's writes.
// `master_of` names the master serving a slot (a cluster), or is null (a single node).
asio::awaitable<absl::StatusOr<Reply>> EvalReplicated(
    Client& client, internal::ClusterClient* master_of, internal::Unreplicated& unreplicated,
    int replicas, absl::Duration wait_timeout, const Script& script, std::vector<std::string> keys,
    std::vector<std::string> args, std::optional<absl::Duration> timeout) {
  HERALD_CO_RETURN_IF_ERROR(cluster::CheckSameSlot(keys));
  // Read after the write: a failover during it moves the outage to the master that has the
  // slot now, which is the one that needs a replica.
  const auto master = [&] {
    return master_of == nullptr || keys.empty()
               ? std::string()
               : master_of->MasterAddressOf(cluster::KeySlot(keys.front()));
  };
  const int64_t numkeys = static_cast<int64_t>(keys.size());
  const Command wait("WAIT", replicas, absl::ToInt64Milliseconds(wait_timeout));
  std::vector<Command> batch;
  batch.push_back(Command("EVALSHA", script.sha1(), numkeys).Args(keys).Args(args));
  batch.push_back(wait);
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<Reply> replies,
                             co_await client.ExecBatch(std::move(batch), timeout));
  if (IsNoScript(replies[0])) {
    std::vector<Command> eval;
    eval.push_back(Command("EVAL", script.source(), numkeys).Args(keys).Args(args));
    eval.push_back(wait);
    HERALD_CO_ASSIGN_OR_RETURN(replies, co_await client.ExecBatch(std::move(eval), timeout));
  }
  if (replies[0].is_error()) co_return replies[0].ToStatus();
  HERALD_CO_ASSIGN_OR_RETURN(const int64_t acknowledged, replies[1].AsInteger());
  if (acknowledged < replicas) {
    absl::Status refused = absl::UnavailableError(
        StrCat("redis: write reached ", acknowledged, " of ", replicas, " replicas within ",
               absl::FormatDuration(wait_timeout), "; not acknowledged, retry it"));
    unreplicated.Failed(master(), refused);
    co_return refused;
  }
  if (unreplicated.lagging_count.load(std::memory_order_relaxed) > 0) {
    unreplicated.Succeeded(master());
  }
  co_return std::move(replies[0]);
}

}  // namespace

absl::Status ValidateClientConfig(const ClientConfig& config) {
  if (config.address.host.empty()) return config::SettingError("redis.address", "host is empty");
  if (config.address.port == 0) return config::SettingError("redis.address", "port must not be 0");
  for (const config::HostPort& seed : config.seeds) {
    if (!config.cluster) return config::SettingError("redis.seeds", "only a cluster has seeds");
    if (seed.host.empty() || seed.port == 0) {
      return config::SettingError("redis.seeds", StrCat("bad seed '", seed.ToString(), "'"));
    }
  }
  if (config.wait_replicas < 0 || config.wait_replicas > 16) {
    return config::SettingError("redis.wait_replicas",
                                StrCat("must be in [0, 16] (got ", config.wait_replicas, ")"));
  }
  if (config.wait_replicas > 0 && (config.wait_timeout < absl::Milliseconds(1) ||
                                   config.wait_timeout >= config.command_timeout)) {
    return config::SettingError("redis.wait_timeout",
                                StrCat("must be at least 1ms and below the command timeout (got ",
                                       absl::FormatDuration(config.wait_timeout), ")"));
  }
  if (config.cluster && config.cluster_refresh_interval < absl::Milliseconds(200)) {
    return config::SettingError("redis.cluster_refresh_interval", "must be at least 200ms");
  }
  if (config.tls.cert_file.empty() != config.tls.key_file.empty()) {
    return config::SettingError("redis.tls",
                                "a client certificate needs both its cert and key files");
  }
  if (!config.tls.enabled && !(config.tls.ca_file.empty() && config.tls.cert_file.empty() &&
                               config.tls.server_name.empty())) {
    return config::SettingError("redis.tls", "certificate options are set but TLS is not enabled");
  }
  if (config.connections < 1 || config.connections > 64) {
    return config::SettingError("redis.connections",
                                StrCat("must be in [1, 64] (got ", config.connections, ")"));
  }
  const std::pair<const char*, absl::Duration> positive[] = {
      {"redis.connect_timeout", config.connect_timeout},
      {"redis.command_timeout", config.command_timeout},
      {"redis.reconnect_backoff_min", config.reconnect_backoff_min},
      {"redis.reconnect_backoff_max", config.reconnect_backoff_max},
  };
  for (const auto& [setting, value] : positive) {
    if (value <= absl::ZeroDuration()) {
      return config::SettingError(
          setting, StrCat("must be positive (got ", absl::FormatDuration(value), ")"));
    }
  }
  if (config.reconnect_backoff_min > config.reconnect_backoff_max) {
    return config::SettingError("redis.reconnect_backoff_min",
                                StrCat("(", absl::FormatDuration(config.reconnect_backoff_min),
                                       ") must not exceed reconnect_backoff_max (",
                                       absl::FormatDuration(config.reconnect_backoff_max), ")"));
  }
  return absl::OkStatus();
}

class Client::Impl {
 public:
  Impl(asio::any_io_executor executor, ClientConfig config, metrics::Registry* registry)
      : state_(std::make_shared<internal::ClientState>(std::move(config), registry)) {
    for (int i = 0; i < state_->config.connections; ++i) {
      connections_.push_back(std::make_shared<Connection>(executor, state_, i));
    }
  }

  void Start() {
    if (state_->stopped.load() || started_.exchange(true)) return;
    for (const auto& c : connections_) c->Start();
  }

  void Stop() {
    if (state_->stopped.exchange(true)) return;
    for (const auto& c : connections_) c->Stop();
  }

  asio::awaitable<void> Close() {
    Stop();
    co_await state_->gate.Close();
  }

  internal::ClientState& state() { return *state_; }
  const internal::ClientState& state() const { return *state_; }

  // Creates the op for `handler` (taken before it is moved from). The executor is not
  // work-tracked per op: the awaiting coroutine's co_spawn already keeps its context running,
  // and tracking would cost two contended atomic operations per command.
  template <bool kBatch, typename Handler>
  std::unique_ptr<Op> NewOp(Handler& handler, OpKind kind) {
    asio::any_io_executor executor = asio::get_associated_executor(handler);
    auto op = std::make_unique<OpImpl<Handler, kBatch>>(std::move(handler));
    op->kind = kind;
    op->executor = std::move(executor);
    op->start = SteadyClock::now();
    return op;
  }

  // Sends `op` to a connection, or completes it at once when it cannot be sent.
  void Submit(std::unique_ptr<Op> op, std::optional<absl::Duration> timeout,
              asio::cancellation_slot slot) {
    op->deadline = DeadlineAfter(op->start, timeout.value_or(state_->config.command_timeout));
    if (absl::Status invalid = Validate(*op); !invalid.ok()) return Fail(std::move(op), invalid);
    if (op->kind == OpKind::kBatch && op->batch.empty()) return Fail(std::move(op), {});
    if (state_->stopped.load(std::memory_order_acquire)) {
      return Fail(std::move(op), absl::CancelledError("redis client stopped"));
    }
    const std::shared_ptr<Connection>& connection = Pick();
    if (connection == nullptr) return Fail(std::move(op), internal::NotSent(state_->Unavailable()));
    if (slot.is_connected()) {
      op->id = next_id_.fetch_add(1, std::memory_order_relaxed);
      slot.template emplace<CancelHandler>(CancelHandler{connection, op->id});
    }
    connection->Submit(std::move(op));
  }

 private:
  static absl::Status Validate(const Op& op) {
    const auto empty = [](const Command& c) { return c.empty(); };
    if ((op.kind == OpKind::kExec && op.command.empty()) ||
        (op.kind == OpKind::kBatch && std::any_of(op.batch.begin(), op.batch.end(), empty))) {
      return absl::InvalidArgumentError("redis command has no arguments");
    }
    // A script's keys must share one hash slot, as Redis Cluster requires, on a single node too:
    // what runs here runs unchanged on a cluster.
    if (op.kind == OpKind::kEval) return cluster::CheckSameSlot(op.keys);
    return absl::OkStatus();
  }

  void Fail(std::unique_ptr<Op> op, absl::Status status) {
    op->status = std::move(status);
    if (!op->status.ok()) state_->Record(*op, SteadyClock::now());
    internal::PostCompletion(std::move(op));
  }

  // Round robin over the connected connections; else one that is connecting (the command
  // waits for it); else none.
  const std::shared_ptr<Connection>& Pick() {
    static const std::shared_ptr<Connection> kNone;
    thread_local uint32_t next = 0;
    const size_t n = connections_.size();
    const size_t first = next++;
    const std::shared_ptr<Connection>* connecting = nullptr;
    for (size_t i = 0; i < n; ++i) {
      const std::shared_ptr<Connection>& c = connections_[(first + i) % n];
      const Connection::State s = c->state();
      if (s == Connection::State::kConnected) return c;
      if (s == Connection::State::kConnecting && connecting == nullptr) connecting = &c;
    }
    return connecting != nullptr ? *connecting : kNone;
  }

  const std::shared_ptr<internal::ClientState> state_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::atomic<bool> started_{false};
  std::atomic<uint64_t> next_id_{1};
};

Client::Client(asio::any_io_executor executor, ClientConfig config, metrics::Registry* registry) {
  if (absl::Status valid = ValidateClientConfig(config); !valid.ok()) {
    std::fprintf(stderr, "herald::redis::Client: invalid config: %s\n", valid.ToString().c_str());
    std::abort();
  }
  wait_replicas_ = config.wait_replicas;
  wait_timeout_ = config.wait_timeout;
  unreplicated_ = std::make_shared<internal::Unreplicated>(registry);  // 0 without wait_replicas
  if (config.cluster) {
    cluster_ =
        std::make_shared<internal::ClusterClient>(std::move(executor), std::move(config), registry);
  } else {
    impl_ = std::make_shared<Impl>(std::move(executor), std::move(config), registry);
  }
}

Client::~Client() {
  // The connections report their end on their strands while and after this runs, when the
  // callback may refer to what dies with the Client's owner: it is not called any more. A call
  // already under way finishes before the callback is dropped.
  OnConnectivityChange(nullptr);
  Stop();
}

void Client::Start() { cluster_ ? cluster_->Start() : impl_->Start(); }

void Client::Stop() { cluster_ ? cluster_->Stop() : impl_->Stop(); }

asio::awaitable<void> Client::Close() {
  if (cluster_) {
    co_await cluster_->Close();
  } else {
    co_await impl_->Close();
  }
}

bool Client::connected() const {
  return cluster_ ? cluster_->connected() : impl_->state().connected();
}

bool Client::stalled() const { return cluster_ ? false : impl_->state().stalled(); }

void Client::OnConnectivityChange(std::function<void(absl::Status)> callback) {
  if (cluster_) return cluster_->OnConnectivityChange(std::move(callback));
  impl_->state().SetCallback(std::move(callback));
}

asio::awaitable<absl::StatusOr<Reply>> Client::Exec(Command command,
                                                    std::optional<absl::Duration> timeout) {
  if (cluster_) return cluster_->Exec(std::move(command), timeout);
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(absl::StatusOr<Reply>)>(
      [](auto handler, Impl* impl, Command cmd, std::optional<absl::Duration> t) {
        asio::cancellation_slot slot = asio::get_associated_cancellation_slot(handler);
        std::unique_ptr<Op> op = impl->NewOp<false>(handler, OpKind::kExec);
        op->command = std::move(cmd);
        impl->Submit(std::move(op), t, slot);
      },
      asio::use_awaitable, impl_.get(), std::move(command), timeout);
}

asio::awaitable<absl::StatusOr<std::vector<Reply>>> Client::ExecBatch(
    std::vector<Command> commands, std::optional<absl::Duration> timeout) {
  if (cluster_) return cluster_->ExecBatch(std::move(commands), timeout);
  return asio::async_initiate<const asio::use_awaitable_t<>&,
                              void(absl::StatusOr<std::vector<Reply>>)>(
      [](auto handler, Impl* impl, std::vector<Command> cmds, std::optional<absl::Duration> t) {
        asio::cancellation_slot slot = asio::get_associated_cancellation_slot(handler);
        std::unique_ptr<Op> op = impl->NewOp<true>(handler, OpKind::kBatch);
        op->batch = std::move(cmds);
        impl->Submit(std::move(op), t, slot);
      },
      asio::use_awaitable, impl_.get(), std::move(commands), timeout);
}

asio::awaitable<absl::StatusOr<Reply>> Client::Eval(const Script& script,
                                                    std::vector<std::string> keys,
                                                    std::vector<std::string> args,
                                                    std::optional<absl::Duration> timeout) {
  if (script.durability() == Script::Durability::kReplicated && wait_replicas_ > 0) {
    return EvalReplicated(*this, cluster_.get(), *unreplicated_, wait_replicas_, wait_timeout_,
                          script, std::move(keys), std::move(args), timeout);
  }
  if (cluster_) return cluster_->Eval(script, std::move(keys), std::move(args), timeout);
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(absl::StatusOr<Reply>)>(
      [](auto handler, Impl* impl, const Script* s, std::vector<std::string> k,
         std::vector<std::string> a, std::optional<absl::Duration> t) {
        asio::cancellation_slot slot = asio::get_associated_cancellation_slot(handler);
        std::unique_ptr<Op> op = impl->NewOp<false>(handler, OpKind::kEval);
        op->script = s;
        op->keys = std::move(k);
        op->args = std::move(a);
        impl->Submit(std::move(op), t, slot);
      },
      asio::use_awaitable, impl_.get(), &script, std::move(keys), std::move(args), timeout);
}

}  // namespace herald::redis
