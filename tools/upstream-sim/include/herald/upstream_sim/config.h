// The simulator's tunable behaviour: how fast mass messages go out, how fans react, how
// webhooks are delivered. Set from flags at start-up and changed at runtime through
// POST /_sim/behavior (JSON keys are the field names below, durations in milliseconds with an
// `_ms` suffix).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <absl/status/status.h>
#include <absl/time/time.h>

namespace herald::upstream_sim {

// How fans decide to buy.
enum class FanBehavior {
  kUniform,        // every recipient buys with probability `purchase_probability`
  kSpendWeighted,  // scaled by the fan's propensity (big past spenders buy more), mean 1.0
};

// How POST .../media/upload answers. The upstream's API reference documents a flat body naming the
// media `prefixed_id`; the vendor's marketing sample shows the usual envelope with the media as
// `data.id`. Clients must read both.
enum class UploadResponseShape {
  kFlat,  // {"prefixed_id": "ofapi_media_…", "file_name": …}
  kData,  // {"data": {"id": "ofapi_media_…", "file_name": …}, "_meta": …}
};

// "flat" or "data"; nullopt for anything else.
std::optional<UploadResponseShape> ParseUploadResponseShape(std::string_view name);
std::string_view UploadResponseShapeName(UploadResponseShape shape);

struct Behavior {
  // Mass-message delivery speed, recipients per second per queue. A very high value delivers a
  // whole queue on the next tick.
  double delivery_rate = 100;
  // After a queue starts sending, DELETE unsends it for this long; before it starts (scheduled)
  // it can always be deleted.
  absl::Duration unsend_window = absl::Seconds(60);
  // Chance that a recipient of a priced message buys it, and how that depends on the fan.
  double purchase_probability = 0.05;
  FanBehavior fan_behavior = FanBehavior::kSpendWeighted;
  // A purchase happens this long after delivery, uniformly distributed in [min, max].
  absl::Duration purchase_delay_min = absl::Seconds(1);
  absl::Duration purchase_delay_max = absl::Seconds(30);
  // Chance that a recipient opens the message (buyers always do).
  double view_probability = 0.4;
  // New subscribers per second over all accounts (each emits subscriptions.new).
  double new_subscribers_per_second = 0;
  // chat_queue.updated is sent when a queue starts and then at most this often while it sends.
  absl::Duration progress_interval = absl::Seconds(1);
  // POST .../user-lists/{id}/users rejects more ids than this with 422.
  int max_ids_per_list_add = 100;
  // GET .../user-lists/{id}/users answers this many fewer fans than asked (one at least), its
  // hasMore and nextOffset saying where the list goes on: a client must page by nextOffset.
  int member_page_shortfall = 0;
  // GET .../engagement/messages/{id}/buyers answers this many fewer buyers than asked (one at
  // least), its hasMore and next_page saying where the list goes on: a client must follow
  // next_page, not step its offset by the limit it asked for.
  int buyer_page_shortfall = 0;
  // Whether a buyers page with more after it gives the _pagination.next_page link; without it
  // only hasMore, the marker and the client's own count of the buyers read say where the list
  // goes on (the documented fallback).
  bool buyer_page_links = true;
  // Media uploads cost this many credits per started decimal megabyte.
  int64_t upload_credits_per_mb = 3;
  // Size charged for a `file_url` upload (the simulator does not download it).
  int64_t url_upload_bytes = 1'000'000;
  // An async upload (async=true) reports `completed` this long after it was accepted.
  absl::Duration async_upload_delay = absl::Seconds(2);
  // The shape of the upload response (synchronous 200 and asynchronous 202 alike).
  UploadResponseShape upload_response_shape = UploadResponseShape::kFlat;
  // GET .../mass-messaging lists unfinished queues plus those finished within this window.
  absl::Duration recent_queue_window = absl::Hours(24);

  absl::Status Validate() const;
};

// Webhook delivery policy. `concurrency` and `max_backlog` apply to endpoints added after a
// change; the rest applies at once.
struct WebhookPolicy {
  int max_retries = 5;                           // attempts after the first one
  absl::Duration retry_base = absl::Seconds(1);  // backoff: base * 2^(attempt-1), capped
  absl::Duration retry_max = absl::Seconds(60);
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration request_timeout = absl::Seconds(10);  // connect + request + response
  double duplicate_rate = 0;                           // chance an event is delivered twice
  int concurrency = 32;                                // connections per endpoint
  int64_t max_backlog = 500'000;  // queued events per endpoint; beyond it, dropped

  absl::Status Validate() const;
};

// Applies the keys present in a JSON object (the body of POST /_sim/behavior) to `behavior`
// and `policy`; unknown keys and bad values are InvalidArgument and change nothing.
absl::Status ApplyBehaviorJson(std::string_view json, Behavior& behavior, WebhookPolicy& policy);

// Both as one JSON object, in the same keys ApplyBehaviorJson reads.
std::string BehaviorToJson(const Behavior& behavior, const WebhookPolicy& policy);

}  // namespace herald::upstream_sim
