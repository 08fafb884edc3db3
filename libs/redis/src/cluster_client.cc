#include "cluster_client.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/str_join.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <herald/common/log.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>

#include "backoff.h"
#include "connection.h"

namespace herald::redis::internal {
namespace {

namespace asio = boost::asio;

// Redirections followed at once for one command. Past them the nodes disagree about the slot's
// owner (a migration is being finished, or its news is still spreading): each further redirect
// is followed after a pause, with the slot map re-read, until the command's deadline.
constexpr int kImmediateRedirects = 4;
// The shortest time between two reads of the slot map.
constexpr absl::Duration kRefreshMinInterval = absl::Milliseconds(100);
// Pauses before retrying a command refused by a transient cluster state (TRYAGAIN,
// CLUSTERDOWN, ...) or waiting for its slot to have a reachable owner.
constexpr absl::Duration kRetryPauseMin = absl::Milliseconds(5);
constexpr absl::Duration kRetryPauseMax = absl::Milliseconds(200);

bool StartsWithWord(std::string_view text, std::string_view word) {
  return text.starts_with(word) && (text.size() == word.size() || text[word.size()] == ' ');
}

// An error reply that means "not executed here; try again later or elsewhere".
bool IsTransientClusterError(const Reply& reply) {
  if (!reply.is_error()) return false;
  const std::string_view e = reply.str();
  return StartsWithWord(e, "TRYAGAIN") || StartsWithWord(e, "CLUSTERDOWN") ||
         StartsWithWord(e, "READONLY") || StartsWithWord(e, "MASTERDOWN") ||
         StartsWithWord(e, "LOADING");
}

bool IsCommand(const Command& command, std::string_view name) {
  const std::string& first = command.args().front();
  return std::equal(first.begin(), first.end(), name.begin(), name.end(), [](char a, char b) {
    return std::toupper(static_cast<unsigned char>(a)) == b;
  });
}

std::chrono::steady_clock::time_point DeadlineAfter(absl::Duration timeout) {
  const auto now = std::chrono::steady_clock::now();
  if (timeout >= absl::Hours(24 * 365)) return std::chrono::steady_clock::time_point::max();
  return now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   absl::ToChronoNanoseconds(std::max(timeout, absl::ZeroDuration())));
}

absl::Duration Remaining(std::chrono::steady_clock::time_point deadline) {
  if (deadline == std::chrono::steady_clock::time_point::max()) return absl::InfiniteDuration();
  return absl::FromChrono(deadline - std::chrono::steady_clock::now());
}

asio::awaitable<void> Pause(absl::Duration duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(absl::ToChronoNanoseconds(duration));
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// The first slot among the keys of `commands`, after checking they all share it.
absl::StatusOr<std::optional<uint16_t>> SlotOf(const std::vector<Command>& commands) {
  std::vector<std::string> keys;
  for (const Command& c : commands) {
    for (std::string_view key : cluster::CommandKeys(c.args())) keys.emplace_back(key);
  }
  if (keys.empty()) return std::optional<uint16_t>();
  if (absl::Status same = cluster::CheckSameSlot(keys); !same.ok()) return same;
  return std::optional<uint16_t>(cluster::KeySlot(keys.front()));
}

}  // namespace

struct ClusterClient::Request {
  std::vector<Command> commands;                  // for a script: its EVALSHA
  const Script* script = nullptr;                 // set for Eval
  std::vector<std::string> script_keys_and_args;  // a script's numkeys, keys and args
  std::optional<uint16_t> slot;                   // nullopt: any master
  bool transaction = false;                       // MULTI ... EXEC: nothing runs unless all can
  // The commands answer together: a transaction, or a batch ending in WAIT, whose count covers
  // only the writes sent before it on its connection. A redirected one is sent again whole, so
  // its WAIT follows the writes to their new node.
  bool whole = false;
  // A transaction, or a script, which may touch keys it does not declare: while its slot
  // migrates some of those keys may be on either node, so it is not sent with ASKING but waits
  // for the migration to end (the source answers ASK until then, MOVED after).
  bool waits_out_migrations = false;
  std::chrono::steady_clock::time_point deadline;
};

struct ClusterClient::Attempt {
  absl::Status status;         // the connection's failure; OK when replies came
  std::vector<Reply> replies;  // one per command sent, without the ASKING replies
};

ClusterClient::ClusterClient(asio::any_io_executor executor, ClientConfig config,
                             metrics::Registry* registry)
    : config_(std::move(config)),
      registry_(registry),
      executor_(executor),
      strand_(asio::make_strand(executor)),
      refresh_timer_(strand_),
      owners_(cluster::kSlots) {
  seeds_.push_back({.host = config_.address.host, .port = config_.address.port});
  for (const config::HostPort& seed : config_.seeds) {
    seeds_.push_back({.host = seed.host, .port = seed.port});
  }
  last_reported_ = absl::UnavailableError("redis cluster: no slot map yet").ToString();
}

ClusterClient::~ClusterClient() { Stop(); }

ClusterClient::Entry ClusterClient::Enter() { return Entry{shared_from_this(), GateHolder(gate_)}; }

void ClusterClient::Start() {
  if (stopped_.load() || started_.exchange(true)) return;
  Entry entry = Enter();
  if (!entry.hold) return;
  asio::co_spawn(strand_, RefreshLoop(), [entry = std::move(entry)](std::exception_ptr e) {
    log::AbortOnException(std::move(e), "redis cluster slot map refresh");
  });
}

void ClusterClient::Stop() { StopNodes(); }

std::vector<ClusterClient::NodePtr> ClusterClient::StopNodes() {
  if (stopped_.exchange(true)) return {};
  asio::post(strand_, [this, self = weak_from_this()] {
    if (!self.lock()) return;
    refresh_timer_.cancel();
    for (asio::steady_timer* grace : retiring_) grace->cancel();
  });
  std::map<std::string, NodePtr> nodes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    nodes.swap(nodes_);
    masters_.clear();
    std::fill(owners_.begin(), owners_.end(), nullptr);
  }
  std::vector<NodePtr> stopped;
  for (auto& [address, node] : nodes) {
    node->client->Stop();
    stopped.push_back(std::move(node));
  }
  return stopped;
}

asio::awaitable<void> ClusterClient::Close() {
  const auto self = shared_from_this();
  for (const NodePtr& node : StopNodes()) co_await node->client->Close();
  co_await gate_.Close();
}

void ClusterClient::OnConnectivityChange(std::function<void(absl::Status)> callback) {
  std::lock_guard<std::mutex> lock(callback_mu_);
  callback_ = std::move(callback);
}

// ---------------------------------------------------------------------------------------------
// Commands.

asio::awaitable<absl::StatusOr<Reply>> ClusterClient::Exec(Command command,
                                                           std::optional<absl::Duration> timeout) {
  if (command.empty()) co_return absl::InvalidArgumentError("redis command has no arguments");
  Request request;
  request.commands.push_back(std::move(command));
  HERALD_CO_ASSIGN_OR_RETURN(request.slot, SlotOf(request.commands));
  request.deadline = DeadlineAfter(timeout.value_or(config_.command_timeout));
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<Reply> replies, co_await Route(request));
  if (replies[0].is_error()) co_return replies[0].ToStatus();
  co_return std::move(replies[0]);
}

asio::awaitable<absl::StatusOr<std::vector<Reply>>> ClusterClient::ExecBatch(
    std::vector<Command> commands, std::optional<absl::Duration> timeout) {
  if (std::any_of(commands.begin(), commands.end(), [](const Command& c) { return c.empty(); })) {
    co_return absl::InvalidArgumentError("redis command has no arguments");
  }
  if (commands.empty()) co_return std::vector<Reply>();
  Request request;
  request.commands = std::move(commands);
  HERALD_CO_ASSIGN_OR_RETURN(request.slot, SlotOf(request.commands));
  request.transaction = IsCommand(request.commands.front(), "MULTI");
  request.whole = request.transaction || IsCommand(request.commands.back(), "WAIT");
  request.waits_out_migrations =
      request.transaction ||
      std::any_of(request.commands.begin(), request.commands.end(), [](const Command& c) {
        return IsCommand(c, "EVAL") || IsCommand(c, "EVALSHA") || IsCommand(c, "EVAL_RO") ||
               IsCommand(c, "EVALSHA_RO") || IsCommand(c, "FCALL") || IsCommand(c, "FCALL_RO");
      });
  request.deadline = DeadlineAfter(timeout.value_or(config_.command_timeout));
  co_return co_await Route(request);
}

asio::awaitable<absl::StatusOr<Reply>> ClusterClient::Eval(const Script& script,
                                                           std::vector<std::string> keys,
                                                           std::vector<std::string> args,
                                                           std::optional<absl::Duration> timeout) {
  HERALD_CO_RETURN_IF_ERROR(cluster::CheckSameSlot(keys));
  Request request;
  request.script = &script;
  request.waits_out_migrations = true;
  if (!keys.empty()) request.slot = cluster::KeySlot(keys.front());
  request.script_keys_and_args.reserve(1 + keys.size() + args.size());
  request.script_keys_and_args.push_back(StrCat(keys.size()));
  for (std::string& k : keys) request.script_keys_and_args.push_back(std::move(k));
  for (std::string& a : args) request.script_keys_and_args.push_back(std::move(a));
  Command evalsha("EVALSHA", script.sha1());
  evalsha.Args(request.script_keys_and_args);
  request.commands.push_back(std::move(evalsha));
  request.deadline = DeadlineAfter(timeout.value_or(config_.command_timeout));
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<Reply> replies, co_await Route(request));
  if (replies[0].is_error()) co_return replies[0].ToStatus();
  co_return std::move(replies[0]);
}

asio::awaitable<absl::StatusOr<std::vector<Reply>>> ClusterClient::Route(const Request& request) {
  const auto self = shared_from_this();
  const size_t n = request.commands.size();
  std::vector<Reply> replies(n);
  std::vector<size_t> pending(n);
  for (size_t i = 0; i < n; ++i) pending[i] = i;
  std::optional<cluster::Node> ask;  // where the pending commands go with ASKING
  absl::Duration pause = kRetryPauseMin;
  absl::Status last = absl::UnavailableError("redis cluster: no master serves the key's slot");
  int redirects = 0;

  // Waits before the next try; false when the deadline leaves no time for one.
  auto wait = [&]() -> asio::awaitable<bool> {
    const absl::Duration remaining = Remaining(request.deadline);
    if (remaining <= pause || stopped_.load()) co_return false;
    co_await Pause(pause);
    pause = std::min(pause * 2, kRetryPauseMax);
    co_return true;
  };

  while (true) {
    if (stopped_.load()) co_return absl::CancelledError("redis client stopped");
    const absl::Duration remaining = Remaining(request.deadline);
    if (remaining <= absl::ZeroDuration()) {
      co_return NoReplyInTime(
          StrCat("redis cluster: no answer before the deadline; last: ", last.message()));
    }
    const NodePtr node = ask ? Node(*ask) : OwnerOf(request.slot);
    if (node == nullptr) {
      RequestRefresh();
      if (!co_await wait()) co_return last;
      continue;
    }

    Request part;
    const Request* sent = &request;
    if (pending.size() != n) {  // only the commands still to be answered
      part.script = request.script;
      part.script_keys_and_args = request.script_keys_and_args;
      for (const size_t i : pending) part.commands.push_back(request.commands[i]);
      sent = &part;
    }
    Attempt attempt = co_await Send(*sent, node, ask.has_value(), remaining);
    if (!attempt.status.ok()) {
      RequestRefresh();
      if (WasNotSent(attempt.status)) {  // the node is unreachable: wait for a new owner
        last = attempt.status;
        ask.reset();
        if (co_await wait()) continue;
      }
      co_return attempt.status;
    }

    std::vector<size_t> again;
    std::optional<cluster::Redirect> redirect;
    bool transient = false;
    for (size_t j = 0; j < pending.size(); ++j) {
      Reply& reply = attempt.replies[j];
      if (reply.is_error()) {
        if (std::optional<cluster::Redirect> r =
                cluster::ParseRedirect(reply.str(), node->node.host)) {
          if (r->kind == cluster::Redirect::Kind::kMoved) Moved(r->slot, r->node);
          redirect = std::move(r);
          again.push_back(pending[j]);
        } else if (IsTransientClusterError(reply)) {
          transient = true;
          again.push_back(pending[j]);
        }
      }
      replies[pending[j]] = std::move(reply);
    }
    if (again.empty()) co_return replies;

    last = replies[again.front()].ToStatus();
    const std::string refusal(replies[again.front()].str());
    // A command refused while queued aborts EXEC: nothing ran, so the whole transaction is sent
    // again. A WAIT after a redirected write is, with it, to count that write's replicas.
    if (request.whole) again = pending;
    if (request.waits_out_migrations && redirect &&
        redirect->kind == cluster::Redirect::Kind::kAsk) {
      transient = true;
    }
    pending = std::move(again);
    ask.reset();
    if (!transient && redirect && redirect->kind == cluster::Redirect::Kind::kAsk) {
      ask = redirect->node;
    }
    const bool bouncing = redirect && ++redirects > kImmediateRedirects;
    if (transient || bouncing) {
      RequestRefresh();
      if (co_await wait()) continue;
      if (redirect) {
        // Masters still naming each other as the slot's owner when the deadline came: a
        // transient state of the cluster, not a MOVED the caller failed to follow.
        co_return absl::UnavailableError(
            StrCat("redis cluster: the owner of slot ", redirect->slot,
                   " was still moving at the deadline; last: ", refusal));
      }
      co_return replies;
    }
  }
}

asio::awaitable<ClusterClient::Attempt> ClusterClient::Send(const Request& request,
                                                            const NodePtr& node, bool asking,
                                                            absl::Duration timeout) {
  std::vector<Command> commands;
  commands.reserve(request.commands.size() * (asking ? 2 : 1));
  for (const Command& c : request.commands) {
    if (asking) commands.emplace_back("ASKING");
    commands.push_back(c);
  }
  const auto deadline = DeadlineAfter(timeout);
  absl::StatusOr<std::vector<Reply>> result =
      co_await node->client->ExecBatch(std::move(commands), timeout);
  Attempt attempt;
  if (!result.ok()) {
    attempt.status = result.status();
    co_return attempt;
  }
  if (asking) {
    for (size_t i = 1; i < result->size(); i += 2)
      attempt.replies.push_back(std::move((*result)[i]));
  } else {
    attempt.replies = std::move(*result);
  }
  // A script this node has not cached (a new node, a failover, SCRIPT FLUSH): EVAL its source,
  // which also caches it.
  if (request.script != nullptr && attempt.replies.size() == 1 && attempt.replies[0].is_error() &&
      StartsWithWord(attempt.replies[0].str(), "NOSCRIPT")) {
    std::vector<Command> eval;
    if (asking) eval.emplace_back("ASKING");
    Command command("EVAL", request.script->source());
    command.Args(request.script_keys_and_args);
    eval.push_back(std::move(command));
    const absl::Duration remaining = Remaining(deadline);
    result = co_await node->client->ExecBatch(std::move(eval), remaining);
    if (!result.ok()) {
      attempt.status = result.status();
      co_return attempt;
    }
    attempt.replies[0] = std::move(result->back());
  }
  co_return attempt;
}

// ---------------------------------------------------------------------------------------------
// The slot map.

ClusterClient::NodePtr ClusterClient::OwnerOf(std::optional<uint16_t> slot) {
  std::lock_guard<std::mutex> lock(mu_);
  if (slot) return owners_[*slot];
  if (masters_.empty()) return nullptr;
  return masters_[round_robin_++ % masters_.size()];
}

std::string ClusterClient::MasterAddressOf(uint16_t slot) {
  const NodePtr owner = OwnerOf(slot);
  return owner == nullptr ? std::string() : owner->node.Address();
}

ClusterClient::NodePtr ClusterClient::Node(const cluster::Node& node) {
  std::lock_guard<std::mutex> lock(mu_);
  return NodeLocked(node);
}

ClusterClient::NodePtr ClusterClient::NodeLocked(const cluster::Node& node) {
  if (stopped_.load()) return nullptr;
  const std::string address = node.Address();
  if (auto it = nodes_.find(address); it != nodes_.end()) return it->second;
  ClientConfig config = config_;
  config.cluster = false;
  config.reconnect_on_readonly = false;  // MOVED and the slot map lead to the new primary
  config.seeds.clear();
  config.address = {node.host, static_cast<uint16_t>(node.port)};
  auto pool = std::make_shared<NodeClient>();
  pool->node = node;
  pool->client = std::make_unique<Client>(executor_, std::move(config), registry_);
  pool->client->OnConnectivityChange([weak = weak_from_this()](const absl::Status& status) {
    const std::shared_ptr<ClusterClient> self = weak.lock();
    if (self == nullptr) return;
    if (!status.ok()) self->RequestRefresh();
    self->UpdateConnectivity();
  });
  pool->client->Start();
  nodes_.emplace(address, pool);
  return pool;
}

void ClusterClient::Moved(uint16_t slot, const cluster::Node& node) {
  std::lock_guard<std::mutex> lock(mu_);
  if (NodePtr owner = NodeLocked(node)) owners_[slot] = std::move(owner);
}

void ClusterClient::RequestRefresh() {
  if (stopped_.load()) return;
  asio::post(strand_, [this, self = weak_from_this()] {
    if (self.lock() == nullptr || refresh_requested_) return;
    refresh_requested_ = true;
    refresh_timer_.cancel();
  });
}

asio::awaitable<void> ClusterClient::RefreshLoop() {
  const auto self = shared_from_this();
  int failures = 0;
  while (!stopped_.load()) {
    refresh_requested_ = false;
    const absl::Status refreshed = co_await Refresh();
    if (stopped_.load()) break;
    absl::Duration next = config_.cluster_refresh_interval;
    if (refreshed.ok()) {
      last_refresh_failure_.clear();
      failures = 0;
    } else {
      // Logged when the reason changes, not at every retry of a long outage.
      if (std::string reason = refreshed.ToString(); reason != last_refresh_failure_) {
        log::Warn("redis cluster: cannot read the slot map", {{"reason", refreshed}});
        last_refresh_failure_ = std::move(reason);
      }
      // Jittered, so that the processes that lost a master together do not read the slot map
      // of the ones left in lockstep.
      next =
          internal::ReconnectDelay(failures++, config_.reconnect_backoff_min,
                                   config_.reconnect_backoff_max, absl::Uniform(random_, 0.0, 1.0));
    }
    boost::system::error_code ec;
    // Requests that come while the map is being read or just after wait out the minimum
    // interval; then the loop sleeps until the next periodic read or request.
    refresh_timer_.expires_after(absl::ToChronoNanoseconds(kRefreshMinInterval));
    co_await refresh_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_.load()) break;
    if (refresh_requested_) continue;
    refresh_timer_.expires_after(absl::ToChronoNanoseconds(next - kRefreshMinInterval));
    co_await refresh_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<absl::Status> ClusterClient::Refresh() {
  // Connected masters first, then the other known masters, then the seeds.
  std::vector<cluster::Node> candidates;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const NodePtr& m : masters_) {
      if (m->client->connected()) candidates.push_back(m->node);
    }
    for (const NodePtr& m : masters_) {
      if (!m->client->connected()) candidates.push_back(m->node);
    }
  }
  for (const cluster::Node& seed : seeds_) {
    if (std::none_of(candidates.begin(), candidates.end(),
                     [&](const cluster::Node& c) { return c.Address() == seed.Address(); })) {
      candidates.push_back(seed);
    }
  }
  absl::Status last = absl::UnavailableError("redis cluster: no node to read the slot map from");
  const absl::Duration timeout = config_.connect_timeout;
  for (const cluster::Node& candidate : candidates) {
    const NodePtr node = Node(candidate);
    if (node == nullptr) co_return absl::CancelledError("redis client stopped");
    const Command shards("CLUSTER", "SHARDS");
    absl::StatusOr<Reply> reply = co_await node->client->Exec(shards, timeout);
    absl::StatusOr<cluster::SlotMap> map = absl::UnavailableError("");
    // "ERR unknown subcommand" from 6.2, "ERR Unknown subcommand" from earlier servers.
    if (!reply.ok() &&
        absl::StrContains(absl::AsciiStrToLower(reply.status().message()), "unknown subcommand")) {
      const Command slots("CLUSTER", "SLOTS");
      reply = co_await node->client->Exec(slots, timeout);
      if (reply.ok()) map = cluster::SlotMap::FromSlots(*reply, candidate.host);
    } else if (reply.ok()) {
      map = cluster::SlotMap::FromShards(*reply, candidate.host);
    }
    if (!reply.ok()) {
      last = absl::Status(reply.status().code(),
                          StrCat(candidate.Address(), ": ", reply.status().message()));
      continue;
    }
    if (!map.ok() || map->masters().empty()) {
      last = map.ok() ? absl::UnavailableError(StrCat(candidate.Address(), ": serves no slots"))
                      : map.status();
      continue;
    }
    Apply(*map);
    co_return absl::OkStatus();
  }
  co_return last;
}

void ClusterClient::Apply(const cluster::SlotMap& map) {
  std::vector<NodePtr> retired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_.load()) return;
    std::vector<NodePtr> masters;
    for (const cluster::Node& m : map.masters()) {
      masters.push_back(NodeLocked(m));
      // Stopped since the check above (Stop() does not take the lock): nothing to apply.
      if (masters.back() == nullptr) return;
    }
    for (int slot = 0; slot < cluster::kSlots; ++slot) {
      const cluster::Node* owner = map.MasterOf(static_cast<uint16_t>(slot));
      owners_[static_cast<size_t>(slot)] =
          owner == nullptr ? nullptr : masters[static_cast<size_t>(owner - map.masters().data())];
    }
    // Logged when the set of masters or the coverage changes (nodes list them in any order).
    std::vector<std::string> names;
    for (const NodePtr& m : masters) names.push_back(m->node.Address());
    std::sort(names.begin(), names.end());
    std::string summary = StrCat(absl::StrJoin(names, ", "), "; unserved slots: ", map.uncovered());
    if (summary != last_map_summary_) {
      log::Info("redis cluster slot map",
                {{"masters", absl::StrJoin(names, ", ")}, {"unserved_slots", map.uncovered()}});
      last_map_summary_ = std::move(summary);
    }
    masters_ = std::move(masters);
    uncovered_ = map.uncovered();
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      const NodePtr& node = it->second;
      const bool keep = std::find(masters_.begin(), masters_.end(), node) != masters_.end() ||
                        std::any_of(seeds_.begin(), seeds_.end(), [&](const cluster::Node& s) {
                          return s.Address() == it->first;
                        });
      if (keep) {
        ++it;
      } else {
        retired.push_back(node);
        it = nodes_.erase(it);
      }
    }
  }
  Retire(std::move(retired));
  UpdateConnectivity();
}

void ClusterClient::Retire(std::vector<NodePtr> nodes) {
  for (NodePtr& node : nodes) {
    Entry entry = Enter();
    if (!entry.hold) {  // closing: Close() no longer waits for retired pools
      node->client->Stop();
      continue;
    }
    asio::co_spawn(strand_, CloseAfterGrace(std::move(node)),
                   [entry = std::move(entry)](std::exception_ptr e) {
                     log::AbortOnException(std::move(e), "redis cluster retired node close");
                   });
  }
}

asio::awaitable<void> ClusterClient::CloseAfterGrace(NodePtr node) {
  // Commands already on their way to the node finish (or time out) before it closes; a Stop()
  // cuts the wait short.
  asio::steady_timer grace(strand_);
  grace.expires_after(absl::ToChronoNanoseconds(config_.command_timeout + absl::Seconds(1)));
  retiring_.insert(&grace);
  if (!stopped_.load()) {
    boost::system::error_code ec;
    co_await grace.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  retiring_.erase(&grace);
  co_await node->client->Close();
}

void ClusterClient::UpdateConnectivity() {
  std::unique_lock<std::mutex> lock(mu_);
  absl::Status status;
  if (masters_.empty()) {
    status = absl::UnavailableError("redis cluster: no slot map yet");
  } else {
    std::string down;
    for (const NodePtr& m : masters_) {
      if (!m->client->connected()) {
        StrAppend(&down, down.empty() ? "" : ", ", m->node.Address());
      } else if (m->client->stalled()) {
        StrAppend(&down, down.empty() ? "" : ", ", m->node.Address(), " (connected, no reply)");
      }
    }
    if (!down.empty()) {
      status = absl::UnavailableError(StrCat("redis cluster: masters unreachable: ", down));
    } else if (uncovered_ > 0) {
      status =
          absl::UnavailableError(StrCat("redis cluster: ", uncovered_, " slots have no master"));
    }
  }
  connected_.store(status.ok(), std::memory_order_release);
  std::string rendered = status.ToString();
  if (rendered == last_reported_) return;
  last_reported_ = std::move(rendered);
  std::lock_guard<std::mutex> callback_lock(callback_mu_);
  lock.unlock();
  if (callback_) callback_(status);
}

}  // namespace herald::redis::internal
