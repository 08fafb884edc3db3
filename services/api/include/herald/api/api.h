// Herald's gRPC API (proto/herald/v1): the service implementations the api role registers.
//
// Every RPC follows one path (bridge.h): authenticate the bearer key, Parse the request into
// domain values (pure; errors name the field), Execute on campaign::Service, translate the
// result back to protobuf. Resources of another tenant are NOT_FOUND, like missing ones.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace grpc {
class Service;
}  // namespace grpc
namespace herald::automation {
class Automations;
}  // namespace herald::automation
namespace herald::campaign {
class Analytics;
class Service;
}  // namespace herald::campaign
namespace herald::metrics {
class Registry;
}  // namespace herald::metrics

namespace herald::api {

struct ApiConfig {
  int64_t media_max_bytes = 16 << 20;  // UploadMediaAsset's limit
  // Bytes the UploadMediaAsset calls of this process may hold at once (each holds its file until
  // it is stored): a chunk beyond it is RESOURCE_EXHAUSTED with RetryInfo. At least
  // media_max_bytes.
  int64_t media_buffer_bytes = int64_t{256} << 20;
  absl::Duration watch_poll = absl::Milliseconds(200);  // WatchCampaign's change check period
  // Per-tenant quota of calls (all methods; a stream counts once, when it opens), per process.
  // A call over it is RESOURCE_EXHAUSTED with google.rpc.RetryInfo saying when to retry.
  // 0: no quota. The platform administrator's key is not limited.
  double tenant_calls_per_second = 0;
  int tenant_burst = 0;  // at least 1 when the quota is on
  // Server streams (WatchCampaign, Subscribe) open at once in this process, and of those, one
  // tenant's; a new one beyond either is RESOURCE_EXHAUSTED with RetryInfo.
  int max_streams = 10000;
  int max_streams_per_tenant = 1000;
};

// The API's gRPC services and what they share.
class Api {
 public:
  virtual ~Api() = default;
  // Ready to register on a grpc::ServerBuilder; owned by the Api.
  virtual std::vector<grpc::Service*> services() = 0;
  // Their full names ("herald.v1.CampaignService"), for per-service health.
  virtual std::vector<std::string> service_names() const = 0;

  // Refuses new calls (UNAVAILABLE), ends open streams (UNAVAILABLE: clients resume them on
  // another replica), cancels the work of calls still running at `deadline` (a read
  // UNAVAILABLE, a write DEADLINE_EXCEEDED: it may have taken effect), and completes once every
  // call has finished its work. The Api and what it uses may be destroyed after that.
  virtual boost::asio::awaitable<void> Close(absl::Time deadline) = 0;
};

// The services run their work on `executor`; `service`, `analytics`, `automations` (and
// `registry`, if given) must outlive the result, and the server they are registered on must stop
// and Close() must complete before it is destroyed.
std::unique_ptr<Api> MakeApi(boost::asio::any_io_executor executor, campaign::Service& service,
                             campaign::Analytics& analytics, automation::Automations& automations,
                             ApiConfig config, metrics::Registry* registry);

}  // namespace herald::api
