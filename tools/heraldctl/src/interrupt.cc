#include "interrupt.h"

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

CancelOnInterrupt::CancelOnInterrupt(grpc::ClientContext* context) {
  if (pipe2(fds_, O_CLOEXEC) != 0) return;  // no Ctrl-C handling: the default kills the process
  interrupt_fd.store(fds_[1]);
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  installed_ = sigaction(SIGINT, &action, &previous_) == 0;
  thread_ = std::thread([this, context] {
    char byte = 0;
    ssize_t n;
    do {
      n = read(fds_[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && byte == 'i') {
      interrupted_.store(true);
      context->TryCancel();
    }
  });
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

}  // namespace herald::heraldctl
