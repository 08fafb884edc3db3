// Ctrl-C for streaming commands (`events tail`, `campaigns watch`): SIGINT cancels the call
// instead of killing the process, so the command can end cleanly and pick its exit code.
// Private to heraldctl.
#pragma once

#include <atomic>
#include <csignal>
#include <thread>

#include <grpcpp/client_context.h>

namespace herald::heraldctl {

// Cancels `context` on SIGINT for as long as it lives, so that a blocking Read returns (the call
// then ends CANCELLED). A signal handler may only do async-signal-safe work: it writes a byte to
// a pipe, and a thread reading the pipe cancels the call. The destructor stops that thread and
// puts back the previous handler. One at a time; not thread-safe. `context` must outlive this
// object. If the pipe cannot be created, SIGINT keeps its default action (the process ends).
class CancelOnInterrupt {
 public:
  explicit CancelOnInterrupt(grpc::ClientContext* context);
  ~CancelOnInterrupt();

  CancelOnInterrupt(const CancelOnInterrupt&) = delete;
  CancelOnInterrupt& operator=(const CancelOnInterrupt&) = delete;

  // True once SIGINT has cancelled the call.
  bool interrupted() const { return interrupted_.load(); }

 private:
  int fds_[2] = {-1, -1};
  bool installed_ = false;
  struct sigaction previous_ {};
  std::thread thread_;
  std::atomic<bool> interrupted_{false};
};

}  // namespace herald::heraldctl
