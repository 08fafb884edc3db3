// Child processes for tests: the herald binary, redis-server, the upstream simulator.
//
// Output goes to files in a per-process temporary directory so a failing test can print it.
// The destructor kills (SIGKILL) and reaps a child that is still running: no test leaves a
// process behind. A child also dies (SIGKILL) when the thread that started it ends
// (PR_SET_PDEATHSIG follows the thread, not the process): start children from the test's main
// thread, or from a thread that outlives them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <sys/types.h>

namespace herald::testing {

class Subprocess {
 public:
  struct Options {
    std::vector<std::string> argv;           // argv[0] is the executable path
    std::map<std::string, std::string> env;  // added to (or overriding) the test's environment
    std::string working_dir;                 // empty: the current directory
  };

  static absl::StatusOr<Subprocess> Start(Options options);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();

  pid_t pid() const { return pid_; }
  bool running();

  // Sends a signal; no effect when the process has exited.
  void Signal(int signo);

  // Waits up to `timeout` for the process to exit. Returns the exit status as from waitpid()
  // (use WIFEXITED/WEXITSTATUS), or nullopt when still running at the deadline.
  std::optional<int> Wait(absl::Duration timeout);

  // SIGKILL and reap.
  void Kill();

  // What the process wrote so far.
  std::string Stdout() const;
  std::string Stderr() const;
  const std::string& output_dir() const { return dir_; }

 private:
  Subprocess() = default;

  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string dir_;
};

// The path of a file or directory beside the test binary's build tree, e.g.
// BuildPath("services/herald/herald").
std::string BuildPath(std::string_view relative);

// A fresh temporary directory, removed when the test process exits.
std::string MakeTempDir(std::string_view prefix);

}  // namespace herald::testing
