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

// A subscriber's stream is read a page at a time, at most one page ahead of what gRPC is
// writing: a replay from "0" goes at the client's pace, and a client that stops reading holds a
// page in memory, not its tenant's stream.
struct EventServiceConfig {
  absl::Duration poll = absl::Milliseconds(100);  // how often a caught-up stream is read again
  int page = 500;                                 // events read per poll
  // Events a subscriber may fall behind (queued for it, and kept after what it was sent)
  // before it is cut off with RESOURCE_EXHAUSTED.
  size_t max_backlog = 10'000;
  absl::Duration drain_poll = absl::Milliseconds(5);  // how often a full queue is looked at
  absl::Duration lag_check = absl::Seconds(1);        // how often a stalled subscriber is measured
};

// The service, ready to register; `bridge` and `messages` must outlive it.
std::unique_ptr<grpc::Service> MakeEventService(Bridge& bridge,
                                                webhooks::MessageAnalytics& messages,
                                                EventServiceConfig config = {});

}  // namespace herald::api
