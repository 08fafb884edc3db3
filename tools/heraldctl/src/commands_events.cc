// events tail: EventService.Subscribe.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include <herald/common/strings.h>
#include <herald/heraldctl/values.h>
#include <herald/v1/events.grpc.pb.h>

#include "session.h"

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

// Cancels `context` on SIGINT (Ctrl-C) for as long as it lives, so that a blocking Read returns.
// A signal handler may only do async-signal-safe work: it writes a byte to a pipe, and a thread
// reading the pipe cancels the call. The destructor stops that thread and puts back the previous
// handler. One at a time; not thread-safe. `context` must outlive this object.
class CancelOnInterrupt {
 public:
  explicit CancelOnInterrupt(grpc::ClientContext* context) {
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

  ~CancelOnInterrupt() {
    if (fds_[1] < 0) return;
    if (installed_) sigaction(SIGINT, &previous_, nullptr);
    interrupt_fd.store(-1);
    const char stop = 's';
    [[maybe_unused]] const ssize_t n = write(fds_[1], &stop, 1);
    thread_.join();
    close(fds_[0]);
    close(fds_[1]);
  }

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

int EventsTail(Session& s, const ParsedCommand& c) {
  v1::SubscribeRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  for (const std::string& value : c.GetAll("type")) {
    for (std::string& type : ParseList(value)) request.add_event_types(std::move(type));
  }
  for (const std::string& value : c.GetAll("account")) {
    for (const std::string& account : ParseList(value)) {
      HCTL_ASSIGN_OR_USAGE(*request.add_accounts(), s, s.names().Resolve("accounts", account));
    }
  }
  const std::string from = c.Get("from", "now");
  if (from.empty()) {
    return s.Usage(absl::InvalidArgumentError("--from: give now, oldest or an event's cursor"));
  }
  // The server reads "" as "from now on" and "0" as "from the oldest event kept".
  request.set_cursor(from == "now" ? "" : from == "oldest" ? "0" : from);
  int64_t limit = 0;  // no limit
  if (c.Has("limit")) {
    HCTL_ASSIGN_OR_USAGE(limit, s, ParseCount("limit", c.Get("limit")));
    if (limit == 0) return s.Usage(absl::InvalidArgumentError("--limit: must be at least 1"));
  }

  auto stub = v1::EventService::NewStub(s.channel());
  // No deadline: the stream lasts until --limit, Ctrl-C or an error ends it.
  auto context = s.Context(/*with_deadline=*/false);
  CancelOnInterrupt interrupt(context.get());
  auto reader = stub->Subscribe(context.get(), request);
  v1::Event event;
  int64_t received = 0;
  bool enough = false;
  while (reader->Read(&event)) {
    s.out() << (s.global().json ? ToJson(event) : EventLine(event)) << "\n";
    s.out().flush();
    if (limit > 0 && ++received >= limit) {
      enough = true;
      context->TryCancel();
      break;
    }
  }
  const grpc::Status status = reader->Finish();
  // Stopped on purpose: the CANCELLED that follows is not an error.
  if (enough || interrupt.interrupted()) return kExitOk;
  return status.ok() ? kExitOk : s.Fail(status);
}

}  // namespace

void AddEventCommands(std::vector<CommandSpec>& commands) {
  commands.push_back(
      {"events",
       "tail",
       "",
       0,
       0,
       "Print the tenant's events as Herald applies them, until stopped",
       "One line per event: time applied, type, account, upstream message, fan, amount and the\n"
       "event's cursor (pass it to --from to continue after it). --json prints one Event per\n"
       "line. Stops after --limit events or on Ctrl-C (exit 0), or when the stream fails (the\n"
       "error's exit code; RESOURCE_EXHAUSTED when too far behind: resume from the last cursor).",
       {{"type", "TYPE", "only events of TYPE (transactions.new, ...); repeatable, or a,b"},
        {"account", "ACCOUNT", "only events of ACCOUNT; repeatable, or a,b"},
        {"from", "CURSOR", "now (default), oldest (the oldest kept) or an event's cursor"},
        {"limit", "N", "stop after N events"}},
       EventsTail});
}

}  // namespace herald::heraldctl
