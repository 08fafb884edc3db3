// The one path from a gRPC callback to Herald's coroutines.
//
//   grpc::ServerUnaryReactor* GetCampaign(grpc::CallbackServerContext* ctx,
//                                         const v1::GetCampaignRequest* req,
//                                         v1::Campaign* resp) override {
//     return bridge_.Unary(ctx, "GetCampaign", resp, Access::kTenant,
//                          [=, this](const Caller& caller) -> Op<v1::Campaign> { … });
//   }
//
// Unary() authenticates the call's bearer key, checks the caller may use the method, runs the
// body as a coroutine on the bridge's executor, and finishes the call with the body's status
// (absl -> gRPC codes) or its response. The call's deadline cancels the body (DEADLINE_EXCEEDED).
// An exception escaping the body is INTERNAL and logged.
// Shutdown: every call enters the bridge's gate before its work starts and leaves it after its
// status is sent; Close() refuses new calls (UNAVAILABLE), cancels the work of the calls still
// running at its deadline (a read UNAVAILABLE, a write DEADLINE_EXCEEDED: it may have taken
// effect), and completes once every call that entered has left, so nothing the calls use may be
// destroyed before it.
// Metrics: herald_grpc_requests_total{method,code}, herald_grpc_request_duration_seconds
// {method} and herald_grpc_streams_open{method}, declared once here.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <herald/campaign/service.h>
#include <herald/common/gate.h>
#include <herald/common/grpc_status.h>

#include "quota.h"
#include "stream_slots.h"

namespace herald::metrics {
class Registry;
}  // namespace herald::metrics

namespace herald::api {

template <typename T>
using Op = boost::asio::awaitable<absl::StatusOr<T>>;

enum class Access {
  kAdmin,   // the platform administrator's key
  kTenant,  // a tenant's key
};

// The bearer secret of a call's `authorization` metadata; empty when absent or malformed.
std::string BearerOf(const grpc::CallbackServerContext& context);

// Metrics of every RPC, by method.
class RpcMetrics {
 public:
  virtual ~RpcMetrics() = default;
  virtual void Record(std::string_view method, grpc::StatusCode code, absl::Duration took) = 0;
  // A server stream of `method` took a slot (+1) or gave it back (-1).
  virtual void StreamsOpen(std::string_view method, int change) = 0;
};
std::unique_ptr<RpcMetrics> MakeRpcMetrics(metrics::Registry* registry);

// Time from now to a call's deadline, at most a day (no deadline), at least zero.
std::chrono::nanoseconds TimeLeft(std::chrono::system_clock::time_point deadline);

// The status of a call refused, or a stream ended, because this server is shutting down.
absl::Status ShuttingDownError();

class Bridge {
 public:
  // `quota` (may be null: no quota) must outlive the bridge.
  // `streams`: server streams open at once in this process (see StreamSlots).
  Bridge(boost::asio::any_io_executor executor, campaign::Service& service, RpcMetrics& metrics,
         TenantQuota* quota = nullptr, StreamLimits streams = {})
      : executor_(std::move(executor)),
        service_(service),
        metrics_(metrics),
        quota_(quota),
        streams_(streams) {}

  boost::asio::any_io_executor executor() const { return executor_; }
  campaign::Service& service() { return service_; }
  StreamSlots& streams() { return streams_; }
  // Entered by every call for as long as it runs (see the header comment).
  Gate& gate() { return gate_; }
  // Where calls that do not go through Unary (streams, uploads) record how they ended.
  RpcMetrics& metrics() { return metrics_; }

  // Refuses new calls and completes when every running call has finished; the work of unary
  // calls still running at `deadline` is cancelled then. Streams notice the close at their next
  // step and end with UNAVAILABLE (clients resume them elsewhere).
  boost::asio::awaitable<void> Close(absl::Time deadline);

  // Authenticates and checks access: the caller, or UNAUTHENTICATED / PERMISSION_DENIED.
  Op<campaign::Caller> Admit(std::string bearer, Access access);

  template <typename Response, typename Body>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, std::string_view method,
                                  Response* response, Access access, Body body) {
    // Only this adapter is compiled per method; the call's machinery (gate, authentication,
    // deadline, metrics) is RunUnary's, compiled once.
    return RunUnary(context, method, access,
                    [response, body = std::move(body)](const campaign::Caller& caller) mutable
                    -> boost::asio::awaitable<absl::Status> {
                      absl::StatusOr<Response> result = co_await body(caller);
                      if (!result.ok()) co_return result.status();
                      *response = *std::move(result);
                      co_return absl::OkStatus();
                    });
  }

 private:
  // A method's body as RunUnary runs it: its status, the response written on success.
  using UnaryWork = std::function<boost::asio::awaitable<absl::Status>(const campaign::Caller&)>;

  grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context, std::string_view method,
                                     Access access, UnaryWork work);
  // Completes when a call with `deadline` should stop: true once Close's deadline has passed,
  // false once the call's own has.
  boost::asio::awaitable<bool> UntilStop(std::chrono::system_clock::time_point deadline);

  boost::asio::any_io_executor executor_;
  campaign::Service& service_;
  RpcMetrics& metrics_;
  TenantQuota* const quota_;
  StreamSlots streams_;
  Gate gate_;
  // Close's deadline (nanoseconds since the Unix epoch); the largest value until Close.
  std::atomic<int64_t> stop_at_ns_{std::numeric_limits<int64_t>::max()};
};

}  // namespace herald::api
