// The webhook receiver's logic, without HTTP: verify the signature → decode → record. The HTTP
// adapter (services/ingest) maps a request to IngestRequest and IngestResponse back.
//
//   POST /webhooks/<endpoint>   one endpoint per upstream team: "<tenant>.<team>"
//
// Answers: 200 applied, duplicate, ignored (an event Herald does not use, or one without an
// idempotency key, e.g. presence); 400 malformed body; 401 missing or wrong signature (checked in
// constant time on the raw body before anything is parsed), or an unknown endpoint (answered as
// a bad signature); 415 a signed body declared as other than JSON (no Content-Type reads as JSON);
// 503 the event could not be recorded (Redis unavailable), or recording is shed (see
// IngestOptions::shed_latency): the sender retries (Retry-After), nothing acknowledged is lost.
//
// Metrics: herald_webhook_events_total{type,result} and herald_ingest_duration_seconds{result}.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/awaitable.hpp>

#include <herald/common/clock.h>
#include <herald/webhooks/endpoint.h>
#include <herald/webhooks/recorder.h>

namespace herald::metrics {
class Registry;
}  // namespace herald::metrics

namespace herald::log {
class Outage;
}  // namespace herald::log

namespace herald::webhooks {

// What an endpoint id resolves to.
struct Endpoint {
  std::string tenant;
  std::string team;
  std::string secret;           // the signing secret Herald gave the upstream
  std::string previous_secret;  // the one before it, still accepted; empty: none
};

class EndpointDirectory {
 public:
  virtual ~EndpointDirectory() = default;
  // kNotFound for an endpoint that does not exist or has no secret; other errors are transient.
  virtual Op<Endpoint> Find(std::string endpoint) = 0;
  // A signature did not match what Find returned: a cache should read the endpoint again
  // (its secret may have been rotated). Returns whether a new Find may return something else.
  virtual bool Invalidate(const std::string& endpoint) {
    (void)endpoint;
    return false;
  }
};

struct IngestRequest {
  std::string_view endpoint;
  std::string_view content_type;
  std::string_view signature;        // the Signature header
  std::string_view idempotency_key;  // X-OFAPI-Idempotency-Key
  std::string_view body;             // raw bytes, as received
};

struct IngestResponse {
  int status = 200;
  std::string message;          // a short plain-text reason
  int retry_after_seconds = 0;  // with 503: the Retry-After to send
};

struct IngestOptions {
  // Load shedding: while recording takes longer than this (a moving average of the recorder's
  // recent calls), events are answered 503 with Retry-After at once, without touching Redis,
  // except one probe per 100 ms whose time keeps the average current, so shedding ends when
  // Redis is fast again. Zero: never shed.
  absl::Duration shed_latency = absl::ZeroDuration();
  const Clock* clock = nullptr;  // for the recorder's call times; null: the system's
};

class Ingest {
 public:
  // Everything must outlive the Ingest. `registry` may be null.
  Ingest(EndpointDirectory& endpoints, EventRecorder& recorder, metrics::Registry* registry,
         IngestOptions options = {});
  ~Ingest();

  boost::asio::awaitable<IngestResponse> Handle(IngestRequest request);

 private:
  struct Metrics;
  class Shedder;
  EndpointDirectory& endpoints_;
  EventRecorder& recorder_;
  std::unique_ptr<Metrics> metrics_;
  // Events not recorded (Redis unavailable): one log line per outage, not per event.
  std::unique_ptr<log::Outage> outage_;
  // Endpoints that could not be looked up or opened (Redis, or a missing encryption key).
  std::unique_ptr<log::Outage> endpoints_down_;
  const Clock& clock_;
  std::unique_ptr<Shedder> shedder_;
};

// Endpoint lookups cached for `ttl` in front of another directory (misses too, for a shorter
// time), so a burst of events costs one lookup per team. A signature mismatch invalidates an
// entry older than 100 ms (so a rotated secret is picked up at once, and a flood of forged
// requests costs at most ten lookups per endpoint and second). Thread-safe.
std::unique_ptr<EndpointDirectory> MakeCachedDirectory(std::unique_ptr<EndpointDirectory> inner,
                                                       const Clock& clock, absl::Duration ttl);

}  // namespace herald::webhooks
