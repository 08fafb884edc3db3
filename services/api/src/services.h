// The gRPC services of herald::v1, each ready to register. Per RPC: Parse (convert.h) →
// campaign::Service → ToProto. The bridge (and what the arguments refer to) must outlive them.
#pragma once

#include <cstdint>
#include <memory>

#include <absl/time/time.h>
#include <grpcpp/impl/service_type.h>

namespace herald::campaign {
class Analytics;
}  // namespace herald::campaign

namespace herald::api {

class Bridge;

std::unique_ptr<grpc::Service> MakeTenantService(Bridge& bridge);

std::unique_ptr<grpc::Service> MakeAccountService(Bridge& bridge);

// `max_bytes`: one upload's limit; `buffer_bytes`: what all uploads in progress may hold.
std::unique_ptr<grpc::Service> MakeMediaService(Bridge& bridge, int64_t max_bytes,
                                                int64_t buffer_bytes);

std::unique_ptr<grpc::Service> MakeCampaignService(Bridge& bridge, campaign::Analytics& analytics,
                                                   absl::Duration watch_poll);

std::unique_ptr<grpc::Service> MakeAudienceService(Bridge& bridge);

std::unique_ptr<grpc::Service> MakeAnalyticsService(Bridge& bridge, campaign::Analytics& analytics);

}  // namespace herald::api
