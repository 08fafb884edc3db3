#include "connection.h"

#include <algorithm>
#include <charconv>
#include <exception>
#include <utility>

#include <absl/strings/cord.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <herald/common/log.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>

#include "backoff.h"

namespace herald::redis::internal {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// One read takes up to this much; the buffer is allocated once per connection.
constexpr size_t kReadBufferSize = 64 * 1024;

// A server that vanished without a reset (a dropped NAT entry, an address moved to another
// host) ends the connection within about half a minute, so its commands fail over and it
// reconnects, rather than after the kernel's quarter of an hour of retransmissions: an idle
// connection is probed after 15 s (every 5 s, 3 times), and written data left unacknowledged
// for 30 s ends it. A server that is merely slow still acknowledges, and is waited for.
void DetectVanishedPeers(int fd) {
  const int on = 1, idle_s = 15, interval_s = 5, probes = 3;
  const unsigned int unacknowledged_ms = 30'000;
  // Best effort: without them the connection still works, as before.
  (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s));
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
  (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &unacknowledged_ms,
                   sizeof(unacknowledged_ms));
}

metrics::Family<metrics::Counter>& CommandsFamily(metrics::Registry& registry) {
  return metrics::BuildCounter()
      .Name("herald_redis_commands_total")
      .Help(
          "Redis commands finished, by outcome (ok, error_reply, timeout, unavailable, "
          "cancelled). A batch counts each of its commands.")
      .LabelNames({"outcome"})
      .Register(registry);
}

metrics::Counter& Outcome(metrics::Registry& registry, const char* outcome) {
  return CommandsFamily(registry).Add({{"outcome", outcome}});
}

Deadline::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<Deadline::duration>(absl::ToChronoNanoseconds(d));
}

std::string ReadError(const boost::system::error_code& ec) {
  if (ec == asio::error::eof) return "connection closed by the server";
  return StrCat("read: ", ec.message());
}

}  // namespace

ClientMetrics::ClientMetrics(metrics::Registry& registry)
    : ok(Outcome(registry, "ok")),
      error_reply(Outcome(registry, "error_reply")),
      timeout(Outcome(registry, "timeout")),
      unavailable(Outcome(registry, "unavailable")),
      cancelled(Outcome(registry, "cancelled")),
      duration(metrics::BuildHistogram()
                   .Name("herald_redis_command_duration_seconds")
                   .Help("Time from issuing a Redis operation (command, batch or script) to "
                         "its completion, whatever the outcome.")
                   .Buckets(metrics::ExponentialBuckets(0.0001, 2, 17))
                   .Register(registry)
                   .Add({})),
      reconnects(metrics::BuildCounter()
                     .Name("herald_redis_reconnects_total")
                     .Help("Redis connection attempts after each pooled connection's first.")
                     .Register(registry)
                     .Add({})),
      connections(metrics::BuildGauge()
                      .Name("herald_redis_connections")
                      .Help("Redis connections established and authenticated.")
                      .Register(registry)
                      .Add({})) {}

// ---------------------------------------------------------------------------------------------
// Results and completion.

absl::StatusOr<Reply> ReplyResult(Op& op) {
  if (!op.status.ok()) return op.status;
  Reply* reply = &op.reply;
  if (op.kind == OpKind::kEval && op.script_loaded) {
    // replies: SCRIPT LOAD's, then EVALSHA's.
    if (op.replies.size() != 2) return absl::InternalError("redis: incomplete script reload");
    if (op.replies[0].is_error()) return op.replies[0].ToStatus();
    reply = &op.replies[1];
  }
  if (reply->is_error()) return reply->ToStatus();
  return std::move(*reply);
}

absl::StatusOr<std::vector<Reply>> BatchResult(Op& op) {
  if (!op.status.ok()) return op.status;
  // The pipeline puts a lone reply in `reply`, several in `replies`.
  if (op.batch.size() == 1) {
    std::vector<Reply> replies;
    replies.push_back(std::move(op.reply));
    return replies;
  }
  return std::move(op.replies);
}

CompletionBatch::~CompletionBatch() {
  for (Op* op : ops_) delete op;
}

void CompletionBatch::operator()() {
  for (Op*& op : ops_) std::exchange(op, nullptr)->Complete();
  ops_.clear();
}

namespace {
constexpr char kNotSentPayload[] = "type.herald.dev/redis.not_sent";
constexpr char kNoReplyPayload[] = "type.herald.dev/redis.no_reply_in_time";
}  // namespace

absl::Status NoReplyInTime(std::string message) {
  absl::Status status = absl::DeadlineExceededError(std::move(message));
  status.SetPayload(kNoReplyPayload, absl::Cord());
  return status;
}

absl::Status NotSent(absl::Status status) {
  status.SetPayload(kNotSentPayload, absl::Cord());
  return status;
}

bool WasNotSent(const absl::Status& status) {
  return status.GetPayload(kNotSentPayload).has_value();
}

void PostCompletion(std::unique_ptr<Op> op) {
  const asio::any_io_executor executor = op->executor;
  CompletionBatch batch;
  batch.Add(op.release());
  asio::post(executor, std::move(batch));
}

// ---------------------------------------------------------------------------------------------
// ClientState.

ClientState::ClientState(ClientConfig config_in, metrics::Registry* registry)
    : config(std::move(config_in)),
      address(config.address.ToString()),
      metrics(registry != nullptr ? std::make_unique<ClientMetrics>(*registry) : nullptr),
      last_failure_(absl::UnavailableError(StrCat("redis ", address, ": not connected yet"))) {}

absl::Status ClientState::Annotate(const absl::Status& status) const {
  return absl::Status(status.code(), StrCat("redis ", address, ": ", ToStd(status.message())));
}

void ClientState::Record(const Op& op, SteadyClock::time_point now) const {
  if (metrics == nullptr || op.status.code() == absl::StatusCode::kInvalidArgument) return;
  metrics->duration.Observe(std::chrono::duration<double>(now - op.start).count());
  const double commands = op.kind == OpKind::kBatch ? static_cast<double>(op.batch.size()) : 1.0;
  switch (op.status.code()) {
    case absl::StatusCode::kOk:
      break;
    case absl::StatusCode::kDeadlineExceeded:
      metrics->timeout.Increment(commands);
      return;
    case absl::StatusCode::kCancelled:
      metrics->cancelled.Increment(commands);
      return;
    default:
      metrics->unavailable.Increment(commands);
      return;
  }
  switch (op.kind) {
    case OpKind::kExec:
      (op.reply.is_error() ? metrics->error_reply : metrics->ok).Increment();
      break;
    case OpKind::kEval: {
      const bool error = op.script_loaded ? std::any_of(op.replies.begin(), op.replies.end(),
                                                        [](const Reply& r) { return r.is_error(); })
                                          : op.reply.is_error();
      (error ? metrics->error_reply : metrics->ok).Increment();
      break;
    }
    case OpKind::kBatch: {
      double errors = 0;
      if (op.batch.size() == 1) {
        errors = op.reply.is_error() ? 1 : 0;
      } else {
        for (const Reply& r : op.replies) errors += r.is_error() ? 1 : 0;
      }
      metrics->error_reply.Increment(errors);
      metrics->ok.Increment(commands - errors);
      break;
    }
  }
}

void ClientState::SetCallback(std::function<void(absl::Status)> callback) {
  std::lock_guard<std::mutex> lock(callback_mu_);
  callback_ = std::move(callback);
}

void ClientState::Report(std::unique_lock<std::mutex> state_lock, const absl::Status& status) {
  last_reported_ = status.ToString();
  // Reports keep their order (callback_mu_ is taken before mu_ is released), and the callback
  // runs without mu_, so it may use the client.
  std::lock_guard<std::mutex> lock(callback_mu_);
  state_lock.unlock();
  if (callback_) callback_(status);
}

void ClientState::ConnectionUp() {
  std::unique_lock<std::mutex> lock(mu_);
  if (metrics != nullptr) metrics->connections.Increment();
  if (++up_ == 1) {
    connected_.store(true, std::memory_order_release);
    stalled_.store(false, std::memory_order_release);
    Report(std::move(lock), absl::OkStatus());
  }
}

void ClientState::Stalled(const absl::Status& why) {
  std::unique_lock<std::mutex> lock(mu_);
  if (up_ == 0 || stalled_.load(std::memory_order_relaxed)) return;
  stalled_.store(true, std::memory_order_release);
  Report(std::move(lock),
         absl::UnavailableError(StrCat(why.message(), " (connected, but no reply since)")));
}

void ClientState::EndStall() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!stalled_.load(std::memory_order_relaxed)) return;
  stalled_.store(false, std::memory_order_release);
  if (up_ > 0) Report(std::move(lock), absl::OkStatus());
}

void ClientState::ConnectionDown(const absl::Status& reason) {
  std::unique_lock<std::mutex> lock(mu_);
  if (metrics != nullptr) metrics->connections.Decrement();
  last_failure_ = reason;
  if (--up_ == 0) {
    connected_.store(false, std::memory_order_release);
    Report(std::move(lock), reason);
  }
}

void ClientState::ConnectFailed(const absl::Status& reason) {
  std::unique_lock<std::mutex> lock(mu_);
  last_failure_ = reason;
  if (up_ == 0 && reason.ToString() != last_reported_) Report(std::move(lock), reason);
}

absl::Status ClientState::Unavailable() const {
  std::lock_guard<std::mutex> lock(mu_);
  return absl::UnavailableError(last_failure_.message());
}

// ---------------------------------------------------------------------------------------------
// Connection: lifecycle.

Connection::Connection(asio::any_io_executor executor, std::shared_ptr<ClientState> client,
                       int index)
    : client_(std::move(client)),
      index_(index),
      strand_(asio::make_strand(executor)),
      socket_(strand_),
      resolver_(strand_),
      deadline_timer_(strand_),
      handshake_timer_(strand_),
      backoff_timer_(strand_),
      read_buffer_(std::make_unique<char[]>(kReadBufferSize)) {}

Connection::~Connection() {
  // Only reached with ops still pending when the executor's context was destroyed: they can
  // no longer be resumed, so they (and the coroutines awaiting them) are destroyed.
  std::vector<PipelineRequest*> left;
  pipeline_.Reset(left);
  for (PipelineRequest* request : left) {
    if (request != &handshake_) delete static_cast<Op*>(request);
  }
  for (Op* op : done_) delete op;
}

void Connection::Start() {
  // The loop's entry in the client's gate; it leaves before the state it lives in can go.
  OwnedGateHolder<ClientState> entry{client_, GateHolder(client_->gate)};
  if (!entry.hold) return;  // the client is closing
  asio::co_spawn(strand_, Run(),
                 [self = shared_from_this(), entry = std::move(entry)](std::exception_ptr e) {
                   // The loop reports errors as values.
                   log::AbortOnException(std::move(e), "redis connection loop");
                 });
}

void Connection::Stop() {
  asio::post(strand_, [self = shared_from_this()] { self->StopOnStrand(); });
}

void Connection::StopOnStrand() {
  if (state() == State::kStopped) return;
  const bool was_connected = state() == State::kConnected;
  SetState(State::kStopped);
  resolver_.cancel();
  deadline_timer_.cancel();
  handshake_timer_.cancel();
  backoff_timer_.cancel();
  timer_expiry_ = kNoDeadline;
  const absl::Status stopped = absl::CancelledError("redis client stopped");
  if (was_connected) client_->ConnectionDown(stopped);  // before the ops see kCancelled
  EndConnection(stopped);
}

asio::awaitable<void> Connection::Run() {
  const ClientConfig& config = client_->config;
  int failures = 0;
  bool first_attempt = true;
  while (state() != State::kStopped) {
    if (!first_attempt && client_->metrics != nullptr) client_->metrics->reconnects.Increment();
    first_attempt = false;
    SetState(State::kConnecting);
    absl::Status status = co_await Connect();
    if (state() == State::kStopped) break;
    const bool was_up = status.ok();
    if (was_up) {
      failures = 0;
      SetState(State::kConnected);
      client_->ConnectionUp();
      log::Info("redis connected", {{"address", client_->address}, {"connection", index_}});
      last_logged_failure_.clear();
      StartWrite();  // the commands that waited for the connection
      status = co_await ReadLoop();
      status = client_->Annotate(status);
      if (state() == State::kStopped) break;
      client_->ConnectionDown(status);
      log::Warn("redis connection lost", {{"connection", index_}, {"reason", status}});
    } else {
      status = client_->Annotate(status);
      client_->ConnectFailed(status);
      // Logged when the reason changes, not at every retry of a long outage.
      if (std::string reason = status.ToString(); reason != last_logged_failure_) {
        log::Warn("redis connect failed", {{"connection", index_}, {"reason", status}});
        last_logged_failure_ = std::move(reason);
      }
    }
    SetState(State::kBackoff);
    // Commands that waited for a connection that never came up were never written: a cluster
    // client may send them to the slot's next owner.
    absl::Status ended = absl::UnavailableError(status.message());
    EndConnection(was_up ? ended : NotSent(std::move(ended)));
    const absl::Duration delay =
        ReconnectDelay(failures++, config.reconnect_backoff_min, config.reconnect_backoff_max,
                       absl::Uniform(random_, 0.0, 1.0));
    backoff_timer_.expires_after(ToChrono(delay));
    co_await backoff_timer_.async_wait(kUseTuple);
  }
}

tcp::socket& Connection::Tcp() { return tls_ ? tls_->next_layer() : socket_; }

// The stream of the current connection: both branches start the same operation and return the
// same type (an awaitable for kUseTuple, nothing for a callback), so callers need not know.
template <typename Token>
auto Connection::ReadSome(asio::mutable_buffer into, Token&& token) {
  if (tls_) return tls_->async_read_some(into, std::forward<Token>(token));
  return socket_.async_read_some(into, std::forward<Token>(token));
}

template <typename Token>
auto Connection::Write(asio::const_buffer bytes, Token&& token) {
  if (tls_) return asio::async_write(*tls_, bytes, std::forward<Token>(token));
  return asio::async_write(socket_, bytes, std::forward<Token>(token));
}

asio::awaitable<absl::Status> Connection::Connect() {
  const ClientConfig& config = client_->config;
  ++generation_;
  writing_ = false;
  write_error_ = absl::OkStatus();
  handshaking_ = true;
  handshake_timed_out_ = false;
  handshake_timer_.expires_after(ToChrono(config.connect_timeout));
  handshake_timer_.async_wait(
      [self = shared_from_this(), generation = generation_](boost::system::error_code ec) {
        if (ec || !self->handshaking_ || generation != self->generation_) return;
        self->handshake_timed_out_ = true;
        self->resolver_.cancel();
        boost::system::error_code ignored;
        self->Tcp().close(ignored);
      });
  absl::Status status = co_await Handshake();
  handshaking_ = false;
  handshake_timer_.cancel();
  if (!status.ok() && handshake_timed_out_) {
    status = absl::DeadlineExceededError(
        StrCat("connect timed out after ", absl::FormatDuration(config.connect_timeout)));
  }
  co_return status;
}

asio::awaitable<absl::Status> Connection::Handshake() {
  const ClientConfig& config = client_->config;
  auto [resolve_ec, endpoints] =
      co_await resolver_.async_resolve(config.address.host, StrCat(config.address.port), kUseTuple);
  if (resolve_ec) {
    co_return absl::UnavailableError(
        StrCat("resolve ", config.address.host, ": ", resolve_ec.message()));
  }
  if (config.tls.enabled) {
    HERALD_CO_RETURN_IF_ERROR(PrepareTls());
  } else {
    tls_.reset();
  }
  auto [connect_ec, endpoint] = co_await asio::async_connect(Tcp(), endpoints, kUseTuple);
  if (connect_ec) co_return absl::UnavailableError(StrCat("connect: ", connect_ec.message()));
  boost::system::error_code ignored;
  Tcp().set_option(tcp::no_delay(true), ignored);
  DetectVanishedPeers(Tcp().native_handle());
  if (tls_) {
    auto [tls_ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kUseTuple);
    if (tls_ec) co_return absl::UnavailableError(StrCat("TLS handshake: ", tls_ec.message()));
  }
  // Without AUTH, a PING proves the session usable before the connection counts as up: a server
  // that wants a password (NOAUTH) is a failed connect that readiness reports, not a connection
  // whose every command fails; and over TLS 1.3 the server checks the client's certificate after
  // the client's handshake has completed, so a refused certificate is a failed connect too.
  const bool probe = config.password.empty();

  // AUTH (or the PING) goes ahead of the commands already waiting, and alone: they are written
  // only once it has succeeded.
  if (probe) {
    const std::string_view argv[] = {"PING"};
    HERALD_CO_RETURN_IF_ERROR(co_await HandshakeCall(argv));
  } else if (config.username.empty()) {
    const std::string_view argv[] = {"AUTH", config.password};
    HERALD_CO_RETURN_IF_ERROR(co_await HandshakeCall(argv));
  } else {
    const std::string_view argv[] = {"AUTH", config.username, config.password};
    HERALD_CO_RETURN_IF_ERROR(co_await HandshakeCall(argv));
  }
  if (handshake_.reply.is_error()) {
    co_return absl::UnauthenticatedError(
        StrCat(probe ? "PING refused: " : "AUTH refused: ", handshake_.reply.str()));
  }
  if (demoted_) {
    // The last connection heard READONLY: this one counts as up only once the address leads to
    // a primary again, so that a replica still behind it is a failed connect (backing off, and
    // reported) rather than a connection made and dropped at every write.
    const std::string_view argv[] = {"ROLE"};
    HERALD_CO_RETURN_IF_ERROR(co_await HandshakeCall(argv));
    // A ROLE the server refuses (an ACL without it) cannot tell: the connection goes ahead.
    const Reply& role = handshake_.reply;
    if (!role.is_error() && (role.elements().empty() || role.elements()[0].str() != "master")) {
      co_return absl::UnavailableError(
          "the server is a replica (it answered READONLY): waiting for this address to lead to "
          "a primary");
    }
    demoted_ = false;
  }
  co_return absl::OkStatus();
}

asio::awaitable<absl::Status> Connection::HandshakeCall(std::span<const std::string_view> argv) {
  handshake_.reply = Reply();
  pipeline_.Encode(argv);
  pipeline_.PushFront(&handshake_);
  const std::string_view request = pipeline_.PrepareWrite(1);
  auto [write_ec, written] = co_await Write(asio::buffer(request), kUseTuple);
  pipeline_.WriteDone();
  if (write_ec) co_return absl::UnavailableError(StrCat("write: ", write_ec.message()));
  while (completed_.empty()) {
    auto [read_ec, n] =
        co_await ReadSome(asio::buffer(read_buffer_.get(), kReadBufferSize), kUseTuple);
    if (read_ec) {
      co_return absl::UnavailableError(
          StrCat(tls_ ? "TLS session refused: " : "", ReadError(read_ec)));
    }
    if (absl::Status fed = pipeline_.Feed(std::string_view(read_buffer_.get(), n), completed_);
        !fed.ok()) {
      completed_.clear();
      co_return fed;
    }
  }
  completed_.clear();  // only this command was sent, so only it can have completed
  co_return absl::OkStatus();
}

absl::Status Connection::PrepareTls() {
  const ClientConfig::Tls& tls = client_->config.tls;
  auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                           asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                           asio::ssl::context::no_tlsv1_1,
                       ec);
  if (tls.ca_file.empty()) {
    context->set_default_verify_paths(ec);
  } else {
    context->load_verify_file(tls.ca_file, ec);
  }
  if (ec) {
    return absl::FailedPreconditionError(
        StrCat("TLS: cannot load the CA certificates ", tls.ca_file, ": ", ec.message()));
  }
  if (!tls.cert_file.empty()) {
    context->use_certificate_chain_file(tls.cert_file, ec);
    if (!ec) context->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
    if (ec) {
      return absl::FailedPreconditionError(StrCat("TLS: cannot load the client certificate ",
                                                  tls.cert_file, " / ", tls.key_file, ": ",
                                                  ec.message()));
    }
  }
  context->set_verify_mode(asio::ssl::verify_peer);
  const std::string& name =
      tls.server_name.empty() ? client_->config.address.host : tls.server_name;
  retired_tls_ = std::move(tls_);
  tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(tcp::socket(strand_), *context);
  tls_context_ = std::move(context);
  tls_->set_verify_callback(asio::ssl::host_name_verification(name));
  boost::system::error_code not_an_address;
  asio::ip::make_address(name, not_an_address);
  // SNI carries host names only.
  if (not_an_address) SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());
  return absl::OkStatus();
}

asio::awaitable<absl::Status> Connection::ReadLoop() {
  while (true) {
    auto [ec, n] = co_await ReadSome(asio::buffer(read_buffer_.get(), kReadBufferSize), kUseTuple);
    if (ec) co_return write_error_.ok() ? absl::UnavailableError(ReadError(ec)) : write_error_;
    const absl::Status fed = pipeline_.Feed(std::string_view(read_buffer_.get(), n), completed_);
    bool demoted = false;
    if (!completed_.empty()) {
      client_->Answered();
      const SteadyClock::time_point now = SteadyClock::now();
      bool sent_again = false;
      for (PipelineRequest* request : completed_) {
        demoted |= client_->config.reconnect_on_readonly && AnsweredReadOnly(*request);
        sent_again |= OnReplies(static_cast<Op*>(request), now);
      }
      completed_.clear();
      PostCompletions();
      if (sent_again && !demoted) StartWrite();
    }
    if (!fed.ok()) co_return fed;
    if (demoted) {
      // The server is a replica now: a failover moved the primary, perhaps behind this same
      // address (a managed Redis's DNS name). A new connection resolves the address again; this
      // one would refuse every write for good.
      demoted_ = true;
      co_return absl::UnavailableError(
          "redis answered READONLY: the server is a replica now; reconnecting");
    }
  }
}

void Connection::EndConnection(const absl::Status& status) {
  ++generation_;
  handshaking_ = false;
  writing_ = false;
  boost::system::error_code ignored;
  Tcp().close(ignored);
  const SteadyClock::time_point now = SteadyClock::now();
  std::vector<PipelineRequest*> pending;
  pipeline_.Reset(pending);
  for (PipelineRequest* request : pending) {
    if (request != &handshake_) Finish(static_cast<Op*>(request), status, now);
  }
  PostCompletions();
}

// ---------------------------------------------------------------------------------------------
// Connection: commands.

void Connection::Submit(std::unique_ptr<Op> op) {
  asio::post(strand_, [self = shared_from_this(), op = std::move(op)]() mutable {
    self->Enqueue(std::move(op));
  });
}

void Connection::Cancel(uint64_t id) {
  asio::post(strand_, [self = shared_from_this(), id] {
    if (PipelineRequest* request = self->pipeline_.Abandon(id)) {
      self->Finish(static_cast<Op*>(request), absl::CancelledError("redis command cancelled"),
                   SteadyClock::now());
      self->PostCompletions();
    }
  });
}

void Connection::Enqueue(std::unique_ptr<Op> op_ptr) {
  Op* op = op_ptr.release();
  switch (state()) {
    case State::kStopped:
      Finish(op, absl::CancelledError("redis client stopped"), SteadyClock::now());
      break;
    case State::kBackoff:
      Finish(op, NotSent(client_->Unavailable()), SteadyClock::now());
      break;
    case State::kConnecting:
    case State::kConnected:
      // A deadline that passed on the way here is caught by the deadline timer; only a zero
      // timeout is settled without reading the clock again.
      if (op->deadline <= op->start) {
        Finish(op, absl::DeadlineExceededError("redis command timeout is not positive"), op->start);
        break;
      }
      Encode(*op);
      pipeline_.Push(op);
      ArmDeadline(op->deadline);
      if (state() == State::kConnected) ScheduleFlush();
      break;
  }
  PostCompletions();
}

void Connection::Encode(Op& op) {
  switch (op.kind) {
    case OpKind::kExec:
      pipeline_.Encode(op.command);
      break;
    case OpKind::kBatch:
      for (const Command& command : op.batch) pipeline_.Encode(command);
      break;
    case OpKind::kEval:
      EncodeEval(op);
      break;
  }
}

void Connection::EncodeEval(const Op& op) {
  char numkeys[24];
  const auto end = std::to_chars(numkeys, numkeys + sizeof(numkeys), op.keys.size()).ptr;
  argv_.clear();
  argv_.push_back("EVALSHA");
  argv_.push_back(op.script->sha1());
  argv_.push_back(std::string_view(numkeys, static_cast<size_t>(end - numkeys)));
  for (const std::string& key : op.keys) argv_.push_back(key);
  for (const std::string& arg : op.args) argv_.push_back(arg);
  pipeline_.Encode(argv_);
}

bool Connection::AnsweredReadOnly(const PipelineRequest& request) {
  const auto read_only = [](const Reply& r) {
    return r.is_error() && r.str().starts_with("READONLY");
  };
  return read_only(request.reply) ||
         std::any_of(request.replies.begin(), request.replies.end(), read_only);
}

bool Connection::OnReplies(Op* op, SteadyClock::time_point now) {
  if (op->kind == OpKind::kEval && !op->script_loaded && op->reply.is_error() &&
      op->reply.str().starts_with("NOSCRIPT")) {
    // Redis lost the script (restart, SCRIPT FLUSH): load it and run it again, back to back on
    // this connection, under the same deadline.
    op->script_loaded = true;
    const std::string_view load[] = {"SCRIPT", "LOAD", op->script->source()};
    pipeline_.Encode(load);
    EncodeEval(*op);
    pipeline_.Push(op);
    return true;
  }
  Finish(op, absl::OkStatus(), now);
  return false;
}

void Connection::Finish(Op* op, absl::Status status, SteadyClock::time_point now) {
  op->status = std::move(status);
  client_->Record(*op, now);
  done_.push_back(op);
}

void Connection::PostCompletions() {
  // Usually every op completed here awaits on one executor: one post resumes them all.
  while (!done_.empty()) {
    const asio::any_io_executor executor = done_.front()->executor;
    CompletionBatch batch;
    batch.Reserve(done_.size());
    size_t kept = 0;
    for (Op* op : done_) {
      if (op->executor == executor) {
        batch.Add(op);
      } else {
        done_[kept++] = op;
      }
    }
    done_.resize(kept);
    asio::post(executor, std::move(batch));
  }
}

// ---------------------------------------------------------------------------------------------
// Connection: writing.

void Connection::ScheduleFlush() {
  // Deferred by one strand turn, so that the commands already queued on the strand go out in
  // the same write as this one.
  if (flush_scheduled_ || writing_) return;
  flush_scheduled_ = true;
  asio::post(strand_, [self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->StartWrite();
  });
}

void Connection::StartWrite() {
  if (writing_ || state() != State::kConnected || !pipeline_.has_unsent()) return;
  writing_ = true;
  const std::string_view bytes = pipeline_.PrepareWrite();
  Write(asio::buffer(bytes),
        [self = shared_from_this(), generation = generation_](
            const boost::system::error_code& ec, size_t) { self->OnWritten(ec, generation); });
}

void Connection::OnWritten(const boost::system::error_code& ec, uint64_t generation) {
  if (generation != generation_) return;  // that connection is gone
  writing_ = false;
  pipeline_.WriteDone();
  if (ec) {
    // The read loop notices the closed socket and reports this.
    write_error_ = absl::UnavailableError(StrCat("write: ", ec.message()));
    boost::system::error_code ignored;
    Tcp().close(ignored);
    return;
  }
  StartWrite();
}

// ---------------------------------------------------------------------------------------------
// Connection: deadlines.

void Connection::ArmDeadline(Deadline deadline) {
  if (deadline >= timer_expiry_) return;
  timer_expiry_ = deadline;
  deadline_timer_.expires_at(deadline);
  deadline_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->OnDeadline();
  });
}

void Connection::OnDeadline() {
  if (state() == State::kStopped) return;
  timer_expiry_ = kNoDeadline;
  const SteadyClock::time_point now = SteadyClock::now();
  std::vector<PipelineRequest*> expired;
  const Deadline next = pipeline_.Expire(now, expired);
  for (PipelineRequest* request : expired) {
    Op* op = static_cast<Op*>(request);
    const absl::Status why =
        NoReplyInTime(StrCat("no reply from redis ", client_->address, " within ",
                             absl::FormatDuration(absl::FromChrono(op->deadline - op->start))));
    client_->Stalled(why);  // nothing while no connection is up: that is reported already
    Finish(op, why, now);
  }
  if (next != kNoDeadline) ArmDeadline(next);
  PostCompletions();
}

}  // namespace herald::redis::internal

namespace herald::redis {

bool IsNoReplyInTime(const absl::Status& status) {
  return absl::IsDeadlineExceeded(status) &&
         status.GetPayload(internal::kNoReplyPayload).has_value();
}

}  // namespace herald::redis
