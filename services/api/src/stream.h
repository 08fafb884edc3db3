// The one shape of Herald's server-streaming RPCs: a coroutine produces messages, a write queue
// hands them to gRPC one at a time, and the call finishes once the coroutine has ended and the
// queue is written (or the client is gone).
//
//   class WatchReactor final : public StreamReactor<v1::WatchCampaignResponse> {
//     asio::awaitable<absl::Status> Run() override {
//       while (!cancelled()) { Push(...); co_await ...; }
//     }
//   };
//   auto* r = new WatchReactor(...);  r->Begin(executor);  return r;
//
// The reactor deletes itself when gRPC is done with it (OnDone), which happens only after
// Finish, which happens only after Run has returned: nothing refers to it afterwards.
#pragma once

#include <deque>
#include <mutex>
#include <optional>

#include <absl/status/status.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <grpcpp/support/server_callback.h>

#include <herald/common/grpc_status.h>

#include "bridge.h"

namespace herald::api {

template <typename Message>
class StreamReactor : public grpc::ServerWriteReactor<Message> {
 public:
  // Starts Run() on `executor`.
  void Begin(boost::asio::any_io_executor executor) {
    boost::asio::co_spawn(
        executor,
        [this]() -> boost::asio::awaitable<void> {
          absl::Status status;
          try {
            status = co_await Run();
          } catch (const std::exception& e) {
            status = absl::InternalError(e.what());
          }
          std::optional<grpc::Status> finish;
          {
            std::lock_guard lock(mu_);
            finish_ = ToApiStatus(status);
            finish = TakeFinishLocked();
          }
          if (finish) this->Finish(*finish);  // last: OnDone may delete this at once
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

  void OnDone() override { delete this; }

 protected:
  // Produces the stream; its status ends the call.
  virtual boost::asio::awaitable<absl::Status> Run() = 0;

  // Queues messages for the client.
  template <typename Range>
  void Push(Range&& messages) {
    std::lock_guard lock(mu_);
    for (auto& m : messages) queue_.push_back(std::move(m));
    WriteNextLocked();
  }
  // The client has gone (cancelled, or a write failed).
  bool cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  // Messages queued and not yet handed to gRPC.
  size_t backlog() {
    std::lock_guard lock(mu_);
    return queue_.size();
  }

 private:
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
    if (finished_ || !finish_ || writing_ || (!queue_.empty() && !cancelled_)) return std::nullopt;
    finished_ = true;
    return finish_;
  }

  std::mutex mu_;
  std::deque<Message> queue_;
  Message current_;
  bool writing_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
  std::optional<grpc::Status> finish_;
};

}  // namespace herald::api
