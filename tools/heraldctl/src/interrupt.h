// Ctrl-C for streaming commands (`events tail`, `campaigns watch`): SIGINT cancels the call
// instead of killing the process, so the command can end cleanly and pick its exit code.
// Private to heraldctl.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <ostream>
#include <thread>

#include <grpcpp/client_context.h>

namespace herald::heraldctl {

// Cancels the bound call on SIGINT for as long as it lives, so that a blocking Read returns (the
// call then ends CANCELLED). A streaming command that opens its stream again after an error binds
// each new call in turn, and waits between them with SleepFor, which SIGINT ends early. A signal
// handler may only do async-signal-safe work: it writes a byte to a pipe, and a thread reading
// the pipe cancels the call. The destructor stops that thread and puts back the previous handler.
// One at a time. A bound context must stay alive until another is bound (or nullptr). If the
// pipe cannot be created, SIGINT keeps its default action (the process ends).
class CancelOnInterrupt {
 public:
  explicit CancelOnInterrupt(grpc::ClientContext* context = nullptr);
  ~CancelOnInterrupt();

  CancelOnInterrupt(const CancelOnInterrupt&) = delete;
  CancelOnInterrupt& operator=(const CancelOnInterrupt&) = delete;

  // Cancels `context` on SIGINT from now on (nullptr: no call), at once if SIGINT came already.
  void Bind(grpc::ClientContext* context);

  // Waits `duration` or until SIGINT; false if interrupted.
  bool SleepFor(std::chrono::milliseconds duration);

  // True once SIGINT has arrived.
  bool interrupted() const { return interrupted_.load(); }

 private:
  int fds_[2] = {-1, -1};
  bool installed_ = false;
  struct sigaction previous_ {};
  std::thread thread_;
  std::atomic<bool> interrupted_{false};
  std::mutex mu_;
  std::condition_variable woken_;
  grpc::ClientContext* context_ = nullptr;  // guarded by mu_
};

// Whether a streaming command opens its stream again: only after it ended UNAVAILABLE (the
// server drained for a deploy, a connection past its maximum age, the server briefly out of
// reach) and never after SIGINT, with a pause that grows from 0.5 s to 5 s while attempts fail,
// and at most 10 failed attempts in a row, 2 until an attempt was answered at all (a server
// address that never answers fails in seconds). An attempt was served when it delivered a message,
// or when the server answered it (a stream's headers saying where it starts) and it then lasted
// 5 s; any other attempt failed, however long it waited for an answer (a server whose store
// does not answer ends each attempt UNAVAILABLE after its timeout).
class StreamResumer {
 public:
  static constexpr int kMaxFailures = 10;
  static constexpr int kMaxFailuresUnanswered = 2;
  static constexpr std::chrono::seconds kServed{5};

  explicit StreamResumer(CancelOnInterrupt& interrupt) : interrupt_(interrupt) {}

  // Call as each stream is opened.
  void Opening() { opened_ = std::chrono::steady_clock::now(); }

  // `delivered`: the stream that ended delivered at least one message; `answered`: the server
  // answered it (Served). Says on `err` that it opens the stream again, pauses, and returns
  // true; or returns false at once.
  bool Again(const grpc::Status& status, bool delivered, bool answered, std::ostream& err);

  // Whether an attempt that lasted `lasted` was served (see above).
  static bool Served(bool delivered, bool answered, std::chrono::steady_clock::duration lasted) {
    return delivered || (answered && lasted >= kServed);
  }

 private:
  CancelOnInterrupt& interrupt_;
  std::chrono::steady_clock::time_point opened_ = std::chrono::steady_clock::now();
  int failures_ = 0;       // attempts in a row that failed
  bool answered_ = false;  // whether the server answered any attempt
  std::chrono::milliseconds pause_{500};
};

}  // namespace herald::heraldctl
