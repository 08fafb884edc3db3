// The Asio side of the client: one Connection per pooled socket drives a Pipeline.
//
// Everything a Connection does runs on its strand: Submit() and Cancel() post there from any
// thread, reads, writes and timers complete there. Completed operations are handed back to the
// awaiting coroutines' executors in batches: one post per executor per read, not one per reply.
//
// Deadlines: instead of a timer per command, each connection has one timer armed at the
// earliest deadline it knows of. Commands issued later with later deadlines (the usual case:
// one timeout for everything) do not touch it; when it fires, one pass over the pipeline fails
// what has expired and re-arms it at the earliest remaining deadline. That costs one timer
// wait per timeout period per connection, whatever the command rate.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <absl/random/random.h>
#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <herald/common/gate.h>
#include <herald/metrics/metrics.h>
#include <herald/redis/client.h>
#include <herald/redis/reply.h>

#include "pipeline.h"

namespace herald::redis::internal {

using SteadyClock = std::chrono::steady_clock;

// The client's metrics, declared once (see client.h for their meaning).
struct ClientMetrics {
  explicit ClientMetrics(metrics::Registry& registry);

  metrics::Counter& ok;
  metrics::Counter& error_reply;
  metrics::Counter& timeout;
  metrics::Counter& unavailable;
  metrics::Counter& cancelled;
  metrics::Histogram& duration;
  metrics::Counter& reconnects;
  metrics::Gauge& connections;
};

enum class OpKind : uint8_t { kExec, kBatch, kEval };

// One Client operation: a pipeline request, what to send for it, and how to resume the
// coroutine awaiting it. Owned by whoever holds it: the Client until Submit(), then the
// Connection (through its pipeline), then a completion batch.
class Op : public PipelineRequest {
 public:
  virtual ~Op() = default;

  // Resumes the awaiting coroutine with the result and destroys the op. Runs on `executor`.
  virtual void Complete() = 0;

  OpKind kind = OpKind::kExec;
  boost::asio::any_io_executor executor;  // the awaiting coroutine's
  SteadyClock::time_point start;
  absl::Status status;  // why the op failed, other than by an error reply

  Command command;                 // kExec
  std::vector<Command> batch;      // kBatch
  const Script* script = nullptr;  // kEval
  std::vector<std::string> keys;   // kEval
  std::vector<std::string> args;   // kEval
  bool script_loaded = false;      // kEval: NOSCRIPT made it send SCRIPT LOAD + EVALSHA
};

// The results an op completes with. They move the replies out of the op.
absl::StatusOr<Reply> ReplyResult(Op& op);
absl::StatusOr<std::vector<Reply>> BatchResult(Op& op);

// Ops completed on one executor, resumed in order by one posted call. Destroying it without
// calling it (the executor's context was destroyed) destroys the ops and their coroutines.
class CompletionBatch {
 public:
  CompletionBatch() = default;
  CompletionBatch(CompletionBatch&&) = default;
  CompletionBatch& operator=(CompletionBatch&&) = delete;
  ~CompletionBatch();

  void Reserve(size_t n) { ops_.reserve(n); }
  void Add(Op* op) { ops_.push_back(op); }
  void operator()();

 private:
  std::vector<Op*> ops_;
};

// Marks `status` as the failure of a command that was never written to Redis, which a cluster
// client may therefore send to another node; WasNotSent() tells.
absl::Status NotSent(absl::Status status);
// A command's kDeadlineExceeded that IsNoReplyInTime (client.h) recognises.
absl::Status NoReplyInTime(std::string message);
bool WasNotSent(const absl::Status& status);

// Posts `op`'s completion to its executor.
void PostCompletion(std::unique_ptr<Op> op);

// What the connections of one Client share: configuration, metrics and connectivity.
class ClientState {
 public:
  ClientState(ClientConfig config, metrics::Registry* registry);

  const ClientConfig config;
  const std::string address;                     // "host:port", for messages and logs
  const std::unique_ptr<ClientMetrics> metrics;  // null without a registry
  std::atomic<bool> stopped{false};
  // Entered by each connection's loop while it runs: Client::Close() awaits it.
  Gate gate;

  // `status` with "redis host:port: " before its message.
  absl::Status Annotate(const absl::Status& status) const;
  // Counts an op's outcome and duration (nothing for kInvalidArgument: a caller's bug).
  void Record(const Op& op, SteadyClock::time_point now) const;

  bool connected() const { return connected_.load(std::memory_order_acquire); }
  void SetCallback(std::function<void(absl::Status)> callback);
  void ConnectionUp();
  void ConnectionDown(const absl::Status& reason);
  // A connection attempt failed; `reason` is reported while no connection is up.
  void ConnectFailed(const absl::Status& reason);
  // Why commands cannot be sent now: the last connection failure.
  absl::Status Unavailable() const;
  // A command's deadline passed with no reply: while no reply has come since, Redis holds the
  // connection but answers nothing (hung, or the path to it lost without a reset), and that is
  // reported as unavailable although the connections stand.
  void Stalled(const absl::Status& why);
  // A reply came: ends a stall. Cheap when there is none (one atomic load).
  void Answered() {
    if (stalled_.load(std::memory_order_acquire)) EndStall();
  }
  bool stalled() const { return stalled_.load(std::memory_order_acquire); }

 private:
  // Calls the callback with `status`; `state_lock` holds mu_.
  void Report(std::unique_lock<std::mutex> state_lock, const absl::Status& status);
  void EndStall();

  mutable std::mutex mu_;
  int up_ = 0;  // connections up; guarded by mu_
  std::atomic<bool> connected_{false};
  std::atomic<bool> stalled_{false};            // written under mu_
  absl::Status last_failure_;                   // guarded by mu_
  std::string last_reported_;                   // guarded by mu_
  std::mutex callback_mu_;                      // taken after mu_
  std::function<void(absl::Status)> callback_;  // guarded by callback_mu_
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State : uint8_t {
    kConnecting,  // connecting or authenticating; commands queue
    kConnected,   // commands are written as they come
    kBackoff,     // waiting to reconnect; commands fail with kUnavailable
    kStopped,     // commands fail with kCancelled
  };

  Connection(boost::asio::any_io_executor executor, std::shared_ptr<ClientState> client, int index);
  ~Connection();

  // Starts the connect / read / reconnect loop. Once.
  void Start();
  // Closes the connection for good and fails every pending op with kCancelled.
  void Stop();
  // Queues `op` (any thread). Its completion is posted to op->executor.
  void Submit(std::unique_ptr<Op> op);
  // Fails the op with `id` with kCancelled if it is still pending (any thread).
  void Cancel(uint64_t id);

  State state() const { return state_.load(std::memory_order_acquire); }

 private:
  boost::asio::awaitable<void> Run();
  boost::asio::awaitable<absl::Status> Connect();
  boost::asio::awaitable<absl::Status> Handshake();
  // A fresh TLS context (the files read again) and stream for the next connection attempt.
  absl::Status PrepareTls();
  boost::asio::awaitable<absl::Status> ReadLoop();

  void Enqueue(std::unique_ptr<Op> op);
  void Encode(Op& op);
  void EncodeEval(const Op& op);
  // Handles an op whose replies are in; true if it was sent again (NOSCRIPT).
  bool OnReplies(Op* op, SteadyClock::time_point now);
  // Whether a reply of `request` is READONLY: the server was demoted to a replica.
  static bool AnsweredReadOnly(const PipelineRequest& request);
  // Writes `argv` alone (ahead of the commands waiting) and reads its reply into handshake_.
  boost::asio::awaitable<absl::Status> HandshakeCall(std::span<const std::string_view> argv);
  void ScheduleFlush();
  void StartWrite();
  void OnWritten(const boost::system::error_code& ec, uint64_t generation);
  void ArmDeadline(Deadline deadline);
  void OnDeadline();
  void StopOnStrand();
  // Closes the socket and fails every pending op with `status`.
  void EndConnection(const absl::Status& status);
  void Finish(Op* op, absl::Status status, SteadyClock::time_point now);
  void PostCompletions();
  void SetState(State state) { state_.store(state, std::memory_order_release); }

  const std::shared_ptr<ClientState> client_;
  const int index_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  std::atomic<State> state_{State::kConnecting};

  // Strand-only state below.
  // The connection's TCP socket: `socket_` in plain text, inside `tls_` with TLS (a new TLS
  // stream for every connection attempt).
  boost::asio::ip::tcp::socket& Tcp();
  // async_read_some / async_write on the current connection's stream (TLS or plain).
  template <typename Token>
  auto ReadSome(boost::asio::mutable_buffer into, Token&& token);
  template <typename Token>
  auto Write(boost::asio::const_buffer bytes, Token&& token);
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<boost::asio::ssl::context> tls_context_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls_;
  // The previous attempt's stream, kept until the next attempt so that no completion of it can
  // outlive it.
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> retired_tls_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer handshake_timer_;
  boost::asio::steady_timer backoff_timer_;
  Pipeline pipeline_;
  PipelineRequest handshake_;  // the AUTH of the current connection attempt
  std::unique_ptr<char[]> read_buffer_;
  uint64_t generation_ = 0;  // connection attempts; stale write completions are ignored
  bool demoted_ = false;     // the last connection heard READONLY: a connect checks ROLE
  bool handshaking_ = false;
  bool handshake_timed_out_ = false;
  bool writing_ = false;
  bool flush_scheduled_ = false;
  absl::Status write_error_;
  Deadline timer_expiry_ = kNoDeadline;
  std::vector<PipelineRequest*> completed_;  // reused
  std::vector<Op*> done_;                    // ops finished in this strand call, to post
  std::vector<std::string_view> argv_;       // reused
  absl::BitGen random_;
  std::string last_logged_failure_;
};

}  // namespace herald::redis::internal
