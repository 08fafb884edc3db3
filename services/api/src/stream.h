// The one shape of Herald's server-streaming RPCs: a coroutine produces messages, a write queue
// hands them to gRPC one at a time, and the call finishes once the coroutine has ended and the
// queue is written (or the client is gone; or, when it ended in error, once the write in flight
// is done: the rest of the queue is dropped).
//
//   class WatchReactor final : public StreamReactor<v1::WatchCampaignResponse> {
//     asio::awaitable<absl::Status> Run(const campaign::Caller& caller) override {
//       while (!cancelled()) { Push(...); co_await ...; }
//     }
//   };
//   auto* r = new WatchReactor(ctx, ...);  r->Begin(bridge, "WatchCampaign");  return r;
//
// Begin takes one of the process's stream slots, checks the caller's tenant key (and quota),
// takes one of the tenant's stream slots, then runs Run for that caller.
//
// The reactor deletes itself once gRPC is done with it (OnDone, which comes only after Finish,
// which comes only after Run has returned) and Begin's coroutine has ended.
// A stream holds its slot and the bridge's gate until OnDone; when the bridge closes, cancelled()
// turns true and the stream ends with UNAVAILABLE (the client resumes it on another replica). A
// Redis read that times out ends it UNAVAILABLE too, not DEADLINE_EXCEEDED: a stream only reads, so
// opening it again is always safe.
// A stream that ended in error while a write was in flight waits kStalledWriteGrace for that
// write, then cancels the call: a client that stopped reading (most such ends are Subscribe
// cutting one off) would otherwise keep its slot, and hold up a drain, for as long as it stays
// connected.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <absl/cleanup/cleanup.h>
#include <absl/status/status.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <grpcpp/support/server_callback.h>

#include <herald/common/grpc_status.h>
#include <herald/common/strings.h>

#include "bridge.h"
#include "stream_slots.h"

namespace herald::api {

template <typename Message>
class StreamReactor : public grpc::ServerWriteReactor<Message> {
 public:
  // How long a stream that ended in error waits for its write in flight before cancelling the
  // call (see the header comment).
  static constexpr absl::Duration kStalledWriteGrace = absl::Seconds(5);
  // How often an open stream checks its caller's key again (StillAuthenticated).
  static constexpr absl::Duration kKeyRecheck = absl::Seconds(5);

  explicit StreamReactor(grpc::CallbackServerContext* context) : context_(context) {}

  // Starts Run() on the bridge's executor, in one of its stream slots and of its caller's
  // tenant's; when either has none free the call ends at once with RESOURCE_EXHAUSTED, and when
  // the bridge is closing with UNAVAILABLE. The call's end is recorded under `method` in the
  // bridge's metrics.
  void Begin(Bridge& bridge, std::string_view method) {
    const absl::Time start = absl::Now();
    StreamSlots& slots = bridge.streams();
    hold_ = GateHolder(bridge.gate());
    gate_ = &bridge.gate();
    bridge_ = &bridge;
    const bool open = hold_.held();
    const bool admitted = open && slots.TryAcquire();
    if (admitted) {
      slots_ = &slots;
      metrics_ = &bridge.metrics();
      method_ = method;
      metrics_->StreamsOpen(method_, +1);
      // Headers go out at once, so a client knows the stream is open before its first event
      // (a refused stream ends with its status alone), unless Run sends them (SendHeaders).
      if (HeadersAtOnce()) this->StartSendInitialMetadata();
    }
    boost::asio::co_spawn(
        bridge.executor(),
        [this, open, admitted, &bridge, method, start]() -> boost::asio::awaitable<void> {
          absl::Status status;
          try {
            if (!open) {
              status = ShuttingDownError();
            } else if (admitted) {
              status = co_await AdmitAndRun(bridge);
              if (ShuttingDown()) {
                status = ShuttingDownError();
              } else if (absl::IsDeadlineExceeded(status)) {
                // Run never enforces the call's own deadline (gRPC ends the call itself), so
                // this is a read of Herald's state that Redis did not answer in time. A
                // stream's reads have no side effects and it resumes from its cursor or
                // revision: the client should open it again, as on any UNAVAILABLE.
                status = WithRetryInfo(
                    absl::UnavailableError(
                        "Herald's store did not answer in time; open the stream again"),
                    absl::Seconds(1));
              }
            } else {
              status = WithRetryInfo(absl::ResourceExhaustedError(
                                         StrCat("this server has ", bridge.streams().limits().max,
                                                " streams open, its limit; retry later")),
                                     absl::Seconds(1));
            }
          } catch (const std::exception& e) {
            status = absl::InternalError(e.what());
          }
          const grpc::Status api_status = ToGrpcStatus(status);
          bridge.metrics().Record(method, api_status.error_code(), absl::Now() - start);
          std::optional<grpc::Status> finish;
          bool write_in_flight = false;
          {
            std::lock_guard lock(mu_);
            finish_ = api_status;
            // An error ends the stream now, not after a backlog a slow client would take long
            // to read: what was not handed to gRPC is dropped (a Subscribe resumes from the
            // last cursor received, a Watch starts again with the whole campaign).
            if (!api_status.ok()) queue_.clear();
            finish = TakeFinishLocked();
            write_in_flight = !finish && !api_status.ok();
            // Kept alive for CancelStalledWrite: Finish cannot have been called yet.
            if (write_in_flight) refs_.fetch_add(1, std::memory_order_relaxed);
          }
          if (finish) this->Finish(*finish);  // last: OnDone may delete this at once
          if (write_in_flight) co_await CancelStalledWrite();
        },
        boost::asio::detached);
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> finish;
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok) {
        cancelled_ = true;
        queue_.clear();
      }
      WriteNextLocked();
      finish = TakeFinishLocked();
    }
    if (finish) this->Finish(*finish);
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
  }

  void OnDone() override {
    if (slots_ != nullptr) {
      if (tenant_) slots_->ReleaseFor(*tenant_);
      std::exchange(slots_, nullptr)->Release();
      metrics_->StreamsOpen(method_, -1);
    }
    hold_ = GateHolder();
    Unref();
  }

 protected:
  // Produces the stream for `caller` (a tenant); its status ends the call.
  virtual boost::asio::awaitable<absl::Status> Run(const campaign::Caller& caller) = 0;

  // False when Run sends the headers itself, with metadata it looks up first: it calls
  // SendHeaders once, before its first Push.
  virtual bool HeadersAtOnce() const { return true; }
  void SendHeaders() { this->StartSendInitialMetadata(); }

  // OK while the caller's key still holds; checked against the store once kKeyRecheck has passed
  // since the last check. A key revoked while its stream is open (or a tenant deleted) ends the
  // stream UNAUTHENTICATED within that time, as any new call is refused. Run calls it between
  // its reads.
  boost::asio::awaitable<absl::Status> StillAuthenticated() {
    const absl::Time now = absl::Now();
    if (now < next_key_check_) co_return absl::OkStatus();
    next_key_check_ = now + kKeyRecheck;
    const std::string bearer = BearerOf(*context_);  // named: it outlives the co_await
    absl::StatusOr<campaign::Caller> caller = co_await bridge_->service().Authenticate(bearer);
    co_return caller.status();
  }

  // Queues messages for the client.
  template <typename Range>
  void Push(Range&& messages) {
    std::lock_guard lock(mu_);
    for (auto& m : messages) queue_.push_back(std::move(m));
    WriteNextLocked();
  }
  // The client has gone (cancelled, or a write failed), or the server is shutting down: Run
  // should return.
  bool cancelled() {
    if (gate_->closing()) return true;
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  // Messages queued and not yet handed to gRPC.
  size_t backlog() {
    std::lock_guard lock(mu_);
    return queue_.size();
  }
  grpc::CallbackServerContext* context() const { return context_; }

 private:
  // Checks the caller's key and takes one of its tenant's stream slots, then runs the stream.
  boost::asio::awaitable<absl::Status> AdmitAndRun(Bridge& bridge) {
    absl::StatusOr<campaign::Caller> caller =
        co_await bridge.Admit(BearerOf(*context_), Access::kTenant);
    if (!caller.ok()) co_return caller.status();
    StreamSlots& slots = bridge.streams();
    if (!slots.TryAcquireFor(caller->tenant)) {
      co_return WithRetryInfo(
          absl::ResourceExhaustedError(StrCat("tenant '", caller->tenant, "' has ",
                                              slots.limits().max_per_tenant,
                                              " streams open on this server, its limit; retry "
                                              "later")),
          absl::Seconds(1));
    }
    tenant_ = caller->tenant;  // read in OnDone, which comes after Run has returned
    next_key_check_ = absl::Now() + kKeyRecheck;
    co_return co_await Run(*caller);
  }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // After Run ended in error with a write in flight: waits up to kStalledWriteGrace for gRPC to
  // take it, then cancels the call. The client sees CANCELLED rather than the stream's status;
  // gRPC completes the write (not ok), and OnWriteDone finishes the call. Holds a reference,
  // taken by the caller.
  boost::asio::awaitable<void> CancelStalledWrite() {
    absl::Cleanup unref = [this] { Unref(); };
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    const absl::Time give_up = absl::Now() + kStalledWriteGrace;
    while (WriteInFlight() && absl::Now() < give_up) {
      timer.expires_after(std::chrono::milliseconds(100));
      boost::system::error_code ec;
      co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
    bool cancel = false;
    {
      std::lock_guard lock(mu_);
      // While cancelling_, the call is not finished, so the context stays valid.
      cancel = cancelling_ = WriteInFlightLocked();
    }
    if (!cancel) co_return;
    context_->TryCancel();
    std::optional<grpc::Status> finish;
    {
      std::lock_guard lock(mu_);
      cancelling_ = false;
      finish = TakeFinishLocked();
    }
    if (finish) this->Finish(*finish);
  }

  bool WriteInFlight() {
    std::lock_guard lock(mu_);
    return WriteInFlightLocked();
  }
  bool WriteInFlightLocked() const { return writing_ && !finished_; }

  // The server closed the stream, not the client.
  bool ShuttingDown() {
    std::lock_guard lock(mu_);
    return gate_->closing() && !cancelled_;
  }

  void WriteNextLocked() {
    if (writing_ || queue_.empty() || cancelled_) return;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    this->StartWrite(&current_);
  }

  // The status to finish with, once: when Run has ended and every queued message is written
  // (or the client is gone). Under mu_; Finish itself is called after releasing it.
  std::optional<grpc::Status> TakeFinishLocked() {
    if (finished_ || cancelling_ || !finish_ || writing_ || (!queue_.empty() && !cancelled_)) {
      return std::nullopt;
    }
    finished_ = true;
    return finish_;
  }

  std::mutex mu_;
  std::deque<Message> queue_;
  Message current_;
  bool writing_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
  bool cancelling_ = false;  // CancelStalledWrite is cancelling the call: not to be finished yet
  std::optional<grpc::Status> finish_;
  // gRPC's until OnDone, and Begin's coroutine's while it waits in CancelStalledWrite.
  std::atomic<int> refs_{1};
  grpc::CallbackServerContext* const context_;
  StreamSlots* slots_ = nullptr;       // released when gRPC is done with the stream
  RpcMetrics* metrics_ = nullptr;      // the bridge's, while the stream holds a slot
  std::string_view method_;            // a literal
  std::optional<std::string> tenant_;  // whose stream slot this stream holds
  Gate* gate_ = nullptr;               // the bridge's
  Bridge* bridge_ = nullptr;           // set by Begin
  absl::Time next_key_check_;          // Run's: when StillAuthenticated reads the key again
  GateHolder hold_;                    // leaves when gRPC is done with the stream
};

}  // namespace herald::api
