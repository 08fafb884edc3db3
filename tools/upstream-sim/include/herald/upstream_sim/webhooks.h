// Delivers webhook events to the configured endpoints the way the upstream does: one signed
// POST per event over keep-alive HTTP/1.1 connections, retried with exponential backoff on a
// non-2xx answer, a timeout or a connection error, sometimes delivered twice.
//
// Each endpoint has a bounded queue (`max_backlog` events, retries included) and
// `concurrency` connections, each driven by one coroutine on the simulator's io_context.
// Events beyond the backlog are dropped and counted, like the upstream's pausing of failing
// endpoints loses events. Only http:// URLs are supported.
//
// Request: POST <url>, Content-Type application/json, User-Agent
// OnlyFansAPI.com/Webhook-Client, Signature = hex HMAC-SHA256 of the body with the endpoint's
// secret (absent without a secret), X-OFAPI-Idempotency-Key = the event's key (the same on
// every retry and duplicate).
//
// Thread-safe. Emit never blocks.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>
#include <boost/asio/io_context.hpp>

#include <herald/upstream_sim/config.h>
#include <herald/upstream_sim/events.h>

namespace herald::upstream_sim {

struct WebhookEndpointConfig {
  std::string url;     // http://host:port/path
  std::string secret;  // signing secret; empty: no Signature header
  std::string team;    // only this team's accounts; empty: every team
};

struct DeliveryTotals {
  std::atomic<int64_t> events{0};
  std::atomic<int64_t> attempts{0};
  std::atomic<int64_t> successes{0};
  std::atomic<int64_t> failures{0};
  std::atomic<int64_t> duplicates{0};
  std::atomic<int64_t> dropped{0};
  std::atomic<int64_t> gave_up{0};
};

class WebhookEmitter final : public EventSink {
 public:
  // `io` must outlive the emitter and be run by the caller's threads.
  WebhookEmitter(boost::asio::io_context& io, WebhookPolicy policy);
  ~WebhookEmitter() override;

  WebhookEmitter(const WebhookEmitter&) = delete;
  WebhookEmitter& operator=(const WebhookEmitter&) = delete;

  // Validates the URL and starts the endpoint's connections. Returns its id ("wh_<n>").
  absl::StatusOr<std::string> AddEndpoint(WebhookEndpointConfig config);
  // Stops endpoints (all, or the one with `id`); queued events are discarded. False when no
  // endpoint has that id.
  bool RemoveEndpoint(std::string_view id);
  void RemoveAll();

  void SetPolicy(const WebhookPolicy& policy);
  WebhookPolicy policy() const;

  bool Wants(const AccountIdentity& account) const override;
  void Emit(WebhookEvent event) override;

  // Events queued or waiting for a retry, over all endpoints.
  int64_t backlog() const;
  // Requests written and not yet answered.
  int64_t in_flight() const;
  // Totals by event type (index: EventType) over all endpoints.
  const std::array<DeliveryTotals, kEventTypeCount>& totals() const;

  // Endpoints with their counters, as a JSON array (secrets are not included).
  std::string EndpointsJson() const;

  // Stops every endpoint. Pending retries are abandoned. Idempotent.
  void Stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace herald::upstream_sim
