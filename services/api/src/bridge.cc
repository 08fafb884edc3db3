#include "bridge.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <variant>

#include <absl/strings/match.h>
#include <absl/time/clock.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/redis/client.h>

namespace herald::api {

namespace asio = boost::asio;
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
                      .Register(registry)),
        streams_(metrics::BuildGauge()
                     .Name("herald_grpc_streams_open")
                     .Help("Server streams open in this process, by method; their sum is bounded "
                           "by --api_max_streams.")
                     .LabelNames({"method"})
                     .Register(registry)) {
    // At 0 from the start: none open is worth a series.
    for (const char* method : {"WatchCampaign", "Subscribe"}) streams_.Add({{"method", method}});
  }

  void Record(std::string_view method, grpc::StatusCode code, absl::Duration took) override {
    requests_.Add({{"method", std::string(method)}, {"code", CodeName(code)}}).Increment();
    duration_.Add({{"method", std::string(method)}}).Observe(absl::ToDoubleSeconds(took));
  }
  void StreamsOpen(std::string_view method, int change) override {
    streams_.Add({{"method", std::string(method)}}).Increment(change);
  }

 private:
  static std::string CodeName(grpc::StatusCode code) {
    return std::string(absl::StatusCodeToString(static_cast<absl::StatusCode>(code)));
  }
  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& duration_;
  metrics::Family<metrics::Gauge>& streams_;
};

class NoRpcMetrics final : public RpcMetrics {
 public:
  void Record(std::string_view, grpc::StatusCode, absl::Duration) override {}
  void StreamsOpen(std::string_view, int) override {}
};

// A call's status as its client sees it when Redis did not answer within its command timeout:
// when `retry_safe` (nothing was written), UNAVAILABLE with a retry delay, not DEADLINE_EXCEEDED,
// which clients read as their own deadline and do not retry; otherwise DEADLINE_EXCEEDED saying
// the outcome is unknown. Either way the message names no address of Herald's own. Any other
// status is unchanged.
absl::Status StoreTimeoutStatus(absl::Status status, bool retry_safe) {
  if (!redis::IsNoReplyInTime(status)) return status;
  if (!retry_safe) {
    return absl::DeadlineExceededError(
        "Herald's store did not answer in time, so the call may or may not have taken effect: "
        "read what it changes before calling again (a create with a request_id may be retried "
        "with the same one)");
  }
  return WithRetryInfo(
      absl::UnavailableError("Herald's store did not answer in time; retry the call"),
      absl::Seconds(1));
}

// Whether a method only reads (Get…, List…, Top…).
bool ReadOnlyMethod(std::string_view method) {
  return method.starts_with("Get") || method.starts_with("List") || method.starts_with("Top");
}

// The status of a call whose work the drain deadline cut: as for a store timeout, a read may be
// retried, a write may or may not have taken effect.
absl::Status CutByDrain(bool read_only) {
  if (read_only) {
    return WithRetryInfo(
        absl::UnavailableError("this server shut down before the call finished; retry the call"),
        absl::Seconds(1));
  }
  return absl::DeadlineExceededError(
      "this server shut down before the call finished, so it may or may not have taken effect: "
      "read what it changes before calling again (a create with a request_id may be retried "
      "with the same one)");
}

// Runs a call's work, an exception it throws becoming INTERNAL: the race with UntilStop waits
// for a branch that completes without one, so a throw would otherwise hold the call until its
// deadline. A throw because the race cancelled the work (UntilStop won) is not an error.
asio::awaitable<absl::Status> Guarded(
    const std::function<asio::awaitable<absl::Status>(const campaign::Caller&)>& work,
    const campaign::Caller& caller, std::string_view method) {
  std::string what;
  try {
    co_return co_await work(caller);
  } catch (const std::exception& e) {
    what = e.what();
  }
  const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  if (state.cancelled() == asio::cancellation_type::none) {
    log::Error("RPC failed with an exception", {{"method", method}, {"what", what}});
  }
  co_return absl::InternalError("internal error");
}

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

absl::Status ShuttingDownError() {
  return absl::UnavailableError(
      "this server is shutting down; retry the call (another replica takes it; creates are "
      "idempotent by request_id)");
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
  if (quota_ != nullptr && !caller->admin) {
    if (const absl::Duration wait = quota_->Take(caller->tenant); wait > absl::ZeroDuration()) {
      co_return WithRetryInfo(
          absl::ResourceExhaustedError(StrCat(
              "tenant '", caller->tenant, "' is over its API quota (", quota_->config().per_second,
              " calls/s, bursts of ", quota_->config().burst, "); retry in ",
              absl::FormatDuration(absl::Ceil(wait, absl::Milliseconds(1))))),
          wait);
    }
  }
  co_return caller;
}

asio::awaitable<void> Bridge::Close(absl::Time deadline) {
  stop_at_ns_.store(absl::ToUnixNanos(deadline));
  co_await gate_.Close();
}

asio::awaitable<bool> Bridge::UntilStop(std::chrono::system_clock::time_point deadline) {
  // Close's deadline is read every so often: calls that take longer than this are few.
  constexpr std::chrono::nanoseconds kStopCheck = std::chrono::milliseconds(250);
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  while (true) {
    const std::chrono::nanoseconds left = TimeLeft(deadline);
    if (left <= std::chrono::nanoseconds(0)) co_return false;
    const int64_t stop_in = stop_at_ns_.load() - absl::ToUnixNanos(absl::Now());
    if (stop_in <= 0) co_return true;
    timer.expires_after(std::min({left, std::chrono::nanoseconds(stop_in), kStopCheck}));
    // The wait completes with its error code, not an exception: a call that finishes in time
    // cancels it, and that must not cost every call a throw.
    std::tuple<boost::system::error_code> waited =
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (std::get<0>(waited)) co_return false;  // cancelled: the call's work ended first
  }
}

grpc::ServerUnaryReactor* Bridge::RunUnary(grpc::CallbackServerContext* context,
                                           std::string_view method, Access access, UnaryWork work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  GateHolder hold(gate_);
  if (!hold) {
    const grpc::Status refused = ToGrpcStatus(ShuttingDownError());
    metrics_.Record(method, refused.error_code(), absl::ZeroDuration());
    reactor->Finish(refused);
    return reactor;
  }
  using namespace asio::experimental::awaitable_operators;  // NOLINT: operator||
  // On a strand of its own: the race below cancels one branch from the other's completion,
  // which must not run beside it.
  asio::co_spawn(
      asio::make_strand(executor_),
      [this, reactor, access, method = std::string(method), deadline = context->deadline(),
       bearer = BearerOf(*context), work = std::move(work),
       hold = std::move(hold)]() mutable -> asio::awaitable<void> {
        const absl::Time start = absl::Now();
        absl::Status status;
        bool started = false;  // the work ran, and may have written before a timeout
        try {
          absl::StatusOr<campaign::Caller> caller = co_await Admit(std::move(bearer), access);
          if (!caller.ok()) {
            status = caller.status();
          } else if (TimeLeft(deadline) <= std::chrono::nanoseconds(0)) {
            // The call waited past its deadline (in gRPC's queue, or while authenticating): its
            // work is not started.
            status = absl::DeadlineExceededError("the call's deadline passed before it started");
          } else {
            // The client's deadline, or the server's drain deadline, cancels the work: every
            // Redis and upstream call below honours cancellation, and creates are idempotent, so
            // a retry picks up after it.
            started = true;
            std::variant<absl::Status, bool> outcome =
                co_await (Guarded(work, *caller, method) || UntilStop(deadline));
            if (outcome.index() == 0) {
              status = std::get<0>(std::move(outcome));
            } else if (std::get<1>(outcome)) {
              status = CutByDrain(ReadOnlyMethod(method));
            } else {
              status = absl::DeadlineExceededError("the call's deadline passed");
            }
          }
        } catch (const std::exception& e) {
          log::Error("RPC failed with an exception", {{"method", method}, {"what", e.what()}});
          status = absl::InternalError("internal error");
        }
        // Before the work (authenticating) or in a read, nothing was written: the client may
        // retry. A write may have been applied before its reply was lost, and a create without
        // a request_id would be made twice: that one is left to the client to check.
        status = StoreTimeoutStatus(std::move(status), !started || ReadOnlyMethod(method));
        const grpc::Status grpc_status = ToGrpcStatus(status);
        metrics_.Record(method, grpc_status.error_code(), absl::Now() - start);
        reactor->Finish(grpc_status);
        // `hold` leaves the gate when this coroutine's frame is gone.
      },
      asio::detached);
  return reactor;
}

}  // namespace herald::api
