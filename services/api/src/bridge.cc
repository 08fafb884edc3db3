#include "bridge.h"

#include <absl/strings/match.h>

#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>

namespace herald::api {
namespace {

class RegistryRpcMetrics final : public RpcMetrics {
 public:
  explicit RegistryRpcMetrics(metrics::Registry& registry)
      : requests_(metrics::BuildCounter()
                      .Name("herald_grpc_requests_total")
                      .Help("gRPC requests finished, by method and status code.")
                      .LabelNames({"method", "code"})
                      .Register(registry)),
        duration_(metrics::BuildHistogram()
                      .Name("herald_grpc_request_duration_seconds")
                      .Help("Time from a gRPC request's arrival to its status, by method.")
                      .LabelNames({"method"})
                      .Buckets(metrics::ExponentialBuckets(0.0005, 2, 14))
                      .Register(registry)) {}

  void Record(std::string_view method, grpc::StatusCode code, absl::Duration took) override {
    requests_.Add({{"method", std::string(method)}, {"code", CodeName(code)}}).Increment();
    duration_.Add({{"method", std::string(method)}}).Observe(absl::ToDoubleSeconds(took));
  }

 private:
  static std::string CodeName(grpc::StatusCode code) {
    return std::string(absl::StatusCodeToString(static_cast<absl::StatusCode>(code)));
  }
  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& duration_;
};

class NoRpcMetrics final : public RpcMetrics {
 public:
  void Record(std::string_view, grpc::StatusCode, absl::Duration) override {}
};

}  // namespace

std::unique_ptr<RpcMetrics> MakeRpcMetrics(metrics::Registry* registry) {
  if (registry == nullptr) return std::make_unique<NoRpcMetrics>();
  return std::make_unique<RegistryRpcMetrics>(*registry);
}

std::chrono::nanoseconds TimeLeft(std::chrono::system_clock::time_point deadline) {
  const auto now = std::chrono::system_clock::now();
  constexpr std::chrono::nanoseconds kNoDeadline = std::chrono::hours(24);
  if (deadline <= now) return std::chrono::nanoseconds(0);
  if (deadline - now > kNoDeadline) return kNoDeadline;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
}

std::string BearerOf(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return {};
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kScheme = "Bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(ToAbsl(value.substr(0, kScheme.size())), ToAbsl(kScheme))) {
    return {};
  }
  return std::string(value.substr(kScheme.size()));
}

Op<campaign::Caller> Bridge::Admit(std::string bearer, Access access) {
  absl::StatusOr<campaign::Caller> caller = co_await service_.Authenticate(bearer);
  if (!caller.ok()) co_return caller.status();
  if (access == Access::kAdmin && !caller->admin) {
    co_return absl::PermissionDeniedError("this method needs the platform administrator's key");
  }
  if (access == Access::kTenant && caller->admin) {
    co_return absl::PermissionDeniedError(
        "this method needs a tenant's API key; the platform administrator's key manages tenants "
        "only");
  }
  co_return caller;
}

}  // namespace herald::api
