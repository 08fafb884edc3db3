#include <absl/strings/str_join.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_stack.h>

namespace herald::testing {

absl::StatusOr<std::unique_ptr<HeraldStack>> HeraldStack::Start(Options options) {
  std::unique_ptr<HeraldStack> stack(new HeraldStack());
  std::vector<std::string> redis_args;
  if (options.redis_cluster) {
    auto cluster = RedisCluster::Start({.password = options.redis.password});
    if (!cluster.ok()) return cluster.status();
    stack->cluster_ = *std::move(cluster);
    redis_args = {"--redis_cluster",
                  StrCat("--redis_address=", absl::StrJoin(stack->cluster_->seeds(), ","))};
  } else {
    auto redis = RedisServer::Start(std::move(options.redis));
    if (!redis.ok()) return redis.status();
    stack->redis_ = *std::move(redis);
    redis_args = {StrCat("--redis_address=127.0.0.1:", stack->redis_->port())};
  }
  auto sim = SimulatorProcess::Start(
      {.args = std::move(options.simulator_args), .env = std::move(options.simulator_env)});
  if (!sim.ok()) return sim.status();
  stack->sim_ = *std::move(sim);
  std::vector<std::string> args = {"serve", "--role=all",
                                   StrCat("--upstream_url=http://127.0.0.1:", stack->sim_->port())};
  args.insert(args.end(), redis_args.begin(), redis_args.end());
  args.insert(args.end(), options.herald_args.begin(), options.herald_args.end());
  auto herald = HeraldProcess::Start({.args = std::move(args),
                                      .env = {{"HERALD_ADMIN_KEY", options.admin_key},
                                              {"HERALD_ENCRYPTION_KEY", options.encryption_key}},
                                      .register_webhooks = options.register_webhooks,
                                      .webhooks_over_tls = options.webhooks_over_tls});
  if (!herald.ok()) return herald.status();
  stack->herald_ = *std::move(herald);
  stack->channel_ =
      grpc::CreateChannel(stack->herald_->grpc_target(), grpc::InsecureChannelCredentials());
  return stack;
}

}  // namespace herald::testing
