// A blocking Redis connection with structured replies, for tests that drive Lua scripts
// directly: binary-safe arguments and replies (payloads with NULs and newlines survive), nested
// arrays kept as arrays, scripts run by SHA and reloaded after a restart.
//
//   auto redis = RedisServer::Start();
//   auto conn = SyncRedis::Connect((*redis)->port());
//   auto reply = conn->Eval(source, {"{hd:s0}"}, {"", "10"});
//
// Not thread-safe; one connection per test thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

namespace herald::testing {

struct SyncReply {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // string, status or error text
  int64_t integer = 0;
  std::vector<SyncReply> elements;

  bool is_error() const { return type == Type::kError; }
  // Debug rendering, e.g. `[1, "x", nil]`.
  std::string DebugString() const;
};

class SyncRedis {
 public:
  static absl::StatusOr<std::unique_ptr<SyncRedis>> Connect(uint16_t port,
                                                            std::string password = "");
  ~SyncRedis();
  SyncRedis(const SyncRedis&) = delete;
  SyncRedis& operator=(const SyncRedis&) = delete;

  // One command. A Redis error reply is returned as a reply of Type::kError, not a status; the
  // status fails only when the connection does (it reconnects on the next call).
  absl::StatusOr<SyncReply> Command(const std::vector<std::string>& argv);

  // EVALSHA of `source` (SCRIPT LOAD on first use and on NOSCRIPT).
  absl::StatusOr<SyncReply> Eval(const std::string& source, const std::vector<std::string>& keys,
                                 const std::vector<std::string>& args);

 private:
  SyncRedis(uint16_t port, std::string password) : port_(port), password_(std::move(password)) {}
  absl::Status EnsureConnected();

  uint16_t port_;
  std::string password_;
  void* context_ = nullptr;  // redisContext*; hiredis stays out of this header
  std::map<std::string, std::string, std::less<>> shas_;  // source -> sha1
};

}  // namespace herald::testing
