// A real redis-server for tests, on a free port, in its own temporary directory.
//
//   auto redis = RedisServer::Start();          // ASSERT_TRUE(redis.ok())
//   redis->port();
//   redis->Restart();                           // same port and data dir (AOF replays)
//
// The server is stopped (and its files removed with the test's temp dir) when the object dies.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include <herald/testing/subprocess.h>

namespace herald::testing {

class RedisServer {
 public:
  struct Options {
    bool appendonly = false;         // AOF with appendfsync always: nothing acknowledged is lost
    std::string password;            // requirepass, when set
    std::vector<std::string> extra;  // further "directive value" config lines
  };

  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start() { return Start(Options{}); }
  ~RedisServer();

  uint16_t port() const { return port_; }
  const std::string& password() const { return options_.password; }
  const std::string& dir() const { return dir_; }

  // Stops the server: SHUTDOWN (saving per its persistence settings) when `graceful`, SIGKILL
  // otherwise.
  absl::Status Stop(bool graceful = true);
  // Starts it again on the same port and data directory.
  absl::Status Restart(bool graceful = true);

  // Runs one command over a fresh blocking connection; the reply rendered as text (integers as
  // decimal, nil as "(nil)", arrays one element per line). For test assertions only.
  absl::StatusOr<std::string> Command(const std::vector<std::string>& argv);
  // Runs commands in order over one fresh connection, for those that set connection state
  // (READONLY, ASKING, SELECT); their replies rendered as by Command.
  absl::StatusOr<std::vector<std::string>> Commands(
      const std::vector<std::vector<std::string>>& commands);

 private:
  RedisServer(Options options, std::string dir, uint16_t port);
  absl::Status Launch();

  Options options_;
  std::string dir_;
  uint16_t port_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace herald::testing
