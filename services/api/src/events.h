// EventService: a tenant's applied upstream events, streamed from its event stream in Redis.
#pragma once

#include <memory>
#include <string_view>

#include <absl/time/time.h>
#include <grpcpp/impl/service_type.h>

namespace herald::webhooks {
class MessageAnalytics;
}  // namespace herald::webhooks

namespace herald::api {

class Bridge;

// Subscribe's response header: the cursor the stream starts after ("0": the oldest event kept),
// for a client to resume from when it has received no event (proto/herald/v1/events.proto).
inline constexpr std::string_view kStartCursorHeader = "herald-start-cursor";

struct EventServiceConfig {
  absl::Duration poll = absl::Milliseconds(100);  // how often a subscriber's stream is read
  int page = 500;                                 // events read per poll
  size_t max_backlog = 10'000;  // events waiting to be written before a subscriber is cut off
};

// The service, ready to register; `bridge` and `messages` must outlive it.
std::unique_ptr<grpc::Service> MakeEventService(Bridge& bridge,
                                                webhooks::MessageAnalytics& messages,
                                                EventServiceConfig config = {});

}  // namespace herald::api
