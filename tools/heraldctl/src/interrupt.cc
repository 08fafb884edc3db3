#include "interrupt.h"

#include <algorithm>
#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

namespace herald::heraldctl {
namespace {

// The write end of the live CancelOnInterrupt's pipe; -1 when there is none.
std::atomic<int> interrupt_fd{-1};

extern "C" void OnInterrupt(int) {
  const int saved_errno = errno;
  const int fd = interrupt_fd.load();
  if (fd >= 0) {
    const char byte = 'i';
    [[maybe_unused]] const ssize_t n = write(fd, &byte, 1);
  }
  errno = saved_errno;
}

}  // namespace

CancelOnInterrupt::CancelOnInterrupt(grpc::ClientContext* context) : context_(context) {
  if (pipe2(fds_, O_CLOEXEC) != 0) return;  // no Ctrl-C handling: the default kills the process
  interrupt_fd.store(fds_[1]);
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  installed_ = sigaction(SIGINT, &action, &previous_) == 0;
  thread_ = std::thread([this] {
    char byte = 0;
    ssize_t n;
    do {
      n = read(fds_[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && byte == 'i') {
      std::lock_guard lock(mu_);
      interrupted_.store(true);
      if (context_ != nullptr) context_->TryCancel();
      woken_.notify_all();
    }
  });
}

void CancelOnInterrupt::Bind(grpc::ClientContext* context) {
  std::lock_guard lock(mu_);
  context_ = context;
  if (context_ != nullptr && interrupted_.load()) context_->TryCancel();
}

bool CancelOnInterrupt::SleepFor(std::chrono::milliseconds duration) {
  std::unique_lock lock(mu_);
  return !woken_.wait_for(lock, duration, [this] { return interrupted_.load(); });
}

CancelOnInterrupt::~CancelOnInterrupt() {
  if (fds_[1] < 0) return;
  if (installed_) sigaction(SIGINT, &previous_, nullptr);
  interrupt_fd.store(-1);
  const char stop = 's';
  [[maybe_unused]] const ssize_t n = write(fds_[1], &stop, 1);
  thread_.join();
  close(fds_[0]);
  close(fds_[1]);
}

bool StreamResumer::Again(const grpc::Status& status, bool delivered, bool answered,
                          std::ostream& err) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE || interrupt_.interrupted()) {
    return false;
  }
  if (Served(delivered, answered, std::chrono::steady_clock::now() - opened_)) {
    failures_ = 0;
    pause_ = std::chrono::milliseconds(500);
  }
  answered_ = answered_ || delivered || answered;
  if (++failures_ > (answered_ ? kMaxFailures : kMaxFailuresUnanswered)) return false;
  err << "heraldctl: the stream ended (UNAVAILABLE: " << status.error_message()
      << "); opening it again in " << pause_.count() << " ms\n";
  err.flush();
  if (!interrupt_.SleepFor(pause_)) return false;
  pause_ = std::min(pause_ * 2, std::chrono::milliseconds(5000));
  return true;
}

}  // namespace herald::heraldctl
