#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include <absl/time/clock.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <herald/common/strings.h>
#include <herald/testing/subprocess.h>

extern char** environ;

namespace herald::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::mutex& TempDirsMutex() {
  static std::mutex mu;
  return mu;
}

std::vector<std::string>& TempDirs() {
  static auto* dirs = [] {
    auto* v = new std::vector<std::string>();
    std::atexit([] {
      std::lock_guard lock(TempDirsMutex());
      for (const auto& d : TempDirs()) {
        std::error_code ec;
        std::filesystem::remove_all(d, ec);
      }
    });
    return v;
  }();
  return *dirs;
}

}  // namespace

std::string MakeTempDir(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string templ = StrCat(base && *base ? base : "/tmp", "/herald-", prefix, "-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp(%s): %s\n", templ.c_str(), std::strerror(errno));
    std::abort();
  }
  std::lock_guard lock(TempDirsMutex());
  TempDirs().push_back(templ);
  return templ;
}

std::string BuildPath(std::string_view relative) { return StrCat(HERALD_BUILD_DIR, "/", relative); }

absl::StatusOr<Subprocess> Subprocess::Start(Options options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("empty argv");
  if (access(options.argv[0].c_str(), X_OK) != 0 &&
      options.argv[0].find('/') != std::string::npos) {
    return absl::NotFoundError(StrCat(options.argv[0], " is not executable"));
  }
  Subprocess p;
  std::string name = std::filesystem::path(options.argv[0]).filename().string();
  p.dir_ = MakeTempDir(name);

  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::vector<char*> argv;
  for (auto& a : options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    const std::string key(kv.substr(0, kv.find('=')));
    if (!options.env.contains(key)) env_storage.emplace_back(kv);
  }
  for (const auto& [k, v] : options.env) env_storage.push_back(StrCat(k, "=", v));
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string out_path = p.dir_ + "/stdout";
  const std::string err_path = p.dir_ + "/stderr";
  const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out_fd < 0 || err_fd < 0 || null_fd < 0)
    return absl::InternalError("cannot open output files");
  const char* cwd = options.working_dir.empty() ? nullptr : options.working_dir.c_str();
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    // The child dies with the test process, whatever happens to it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    if (cwd != nullptr && chdir(cwd) != 0) _exit(127);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out_fd);
  close(err_fd);
  close(null_fd);
  p.pid_ = pid;
  return p;
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(other.status_), dir_(std::move(other.dir_)) {}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = std::exchange(other.pid_, -1);
    status_ = other.status_;
    dir_ = std::move(other.dir_);
  }
  return *this;
}

Subprocess::~Subprocess() { Kill(); }

bool Subprocess::running() {
  if (pid_ < 0 || status_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) status_ = status;
  return !status_;
}

void Subprocess::Signal(int signo) {
  if (running()) kill(pid_, signo);
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration interval = absl::Milliseconds(1);
  while (running()) {
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(interval);
    interval = std::min(interval * 2, absl::Milliseconds(20));
  }
  return status_;
}

void Subprocess::Kill() {
  if (pid_ < 0) return;
  if (running()) {
    kill(pid_, SIGKILL);
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_) status_ = status;
  }
}

std::string Subprocess::Stdout() const { return ReadFile(dir_ + "/stdout"); }
std::string Subprocess::Stderr() const { return ReadFile(dir_ + "/stderr"); }

}  // namespace herald::testing
