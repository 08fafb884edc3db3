// The processes of an end-to-end test: a redis-server (or a six-node Redis Cluster), the upstream
// simulator, and herald with every role, pointed at both, with a gRPC channel to it.
//
//   auto stack = HeraldStack::Start({.simulator_args = {"--teams=2"},
//                                    .herald_args = {"--poll_interval=50ms"},
//                                    .admin_key = kAdminKey,
//                                    .encryption_key = std::string(64, 'a')});
//   ASSERT_TRUE(stack.ok()) << stack.status();
//   (*stack)->channel();  (*stack)->sim().port();  (*stack)->herald().Logs();
//
// The processes stop (herald first) when the object dies.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <grpcpp/channel.h>

#include <herald/testing/herald_process.h>
#include <herald/testing/redis_cluster.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/simulator_process.h>

namespace herald::testing {

class HeraldStack {
 public:
  struct Options {
    RedisServer::Options redis;
    // A Redis Cluster (three masters, three replicas) instead of one redis-server; herald gets
    // --redis_cluster and every node as a seed.
    bool redis_cluster = false;
    std::vector<std::string> simulator_args;  // besides the ones SimulatorProcess adds
    std::map<std::string, std::string> simulator_env;
    // Herald runs `serve --role=all --upstream_url=<the simulator>` plus these.
    std::vector<std::string> herald_args;
    std::string admin_key;           // HERALD_ADMIN_KEY
    std::string encryption_key;      // HERALD_ENCRYPTION_KEY: 64 hex digits
    bool register_webhooks = false;  // see HeraldProcess::Options
    bool webhooks_over_tls = false;  // see HeraldProcess::Options
  };

  // Starts Redis, then the simulator, then herald (waiting until it is ready); the first that
  // does not start fails the whole with its own error (the simulator's and herald's carry their
  // logs).
  static absl::StatusOr<std::unique_ptr<HeraldStack>> Start(Options options);

  // The Redis of the stack: redis() without redis_cluster, cluster() with it.
  RedisServer& redis() { return *redis_; }
  RedisCluster& cluster() { return *cluster_; }
  SimulatorProcess& sim() { return *sim_; }
  HeraldProcess& herald() { return *herald_; }
  // An insecure channel to herald's gRPC port (still valid after HeraldProcess::Restart).
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  HeraldStack() = default;

  // Declared in start order: destroyed herald first.
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<RedisCluster> cluster_;
  std::unique_ptr<SimulatorProcess> sim_;
  std::unique_ptr<HeraldProcess> herald_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace herald::testing
