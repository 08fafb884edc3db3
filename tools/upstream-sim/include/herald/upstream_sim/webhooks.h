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
// Endpoints come in two kinds. Simulator endpoints (flags, POST /_sim/webhooks) receive every
// event of their team (or of every team). Managed webhooks (the team-level /api/webhooks API)
// belong to one team, receive only the events and accounts their filter names, can be paused
// (events emitted while paused are not queued, queued ones are dropped), and keep a bounded
// record of their delivery attempts with the bodies, so a delivery can be replayed verbatim.
//
// Thread-safe. Emit never blocks.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/io_context.hpp>

#include <herald/common/clock.h>
#include <herald/upstream_sim/config.h>
#include <herald/upstream_sim/events.h>

namespace herald::upstream_sim {

// Which accounts of its team a managed webhook hears about.
enum class AccountScope {
  kGlobal,     // every account of the team
  kInclusive,  // only the listed accounts
  kExclusive,  // every account of the team except the listed ones
};
// "global", "inclusive", "exclusive".
std::string_view AccountScopeName(AccountScope scope);
std::optional<AccountScope> ParseAccountScope(std::string_view name);

inline constexpr uint32_t kAllEvents = (1u << kEventTypeCount) - 1;
inline constexpr uint32_t EventBit(EventType type) { return 1u << static_cast<uint32_t>(type); }

// The events and accounts an endpoint receives. The team is checked separately.
struct WebhookFilter {
  uint32_t events = kAllEvents;  // EventBit of each event delivered
  AccountScope scope = AccountScope::kGlobal;
  std::vector<std::string> account_ids;  // for kInclusive and kExclusive

  bool Matches(EventType type, std::string_view account_id) const;
  bool MatchesAccount(std::string_view account_id) const;
};

struct WebhookEndpointConfig {
  std::string url;     // http://host:port/path
  std::string secret;  // signing secret; empty: no Signature header
  std::string team;    // only this team's accounts; empty: every team
  // A webhook of the /api/webhooks API (owned by `team`, which must be set): listed there,
  // filtered by `filter`, pausable, with delivery records.
  bool managed = false;
  WebhookFilter filter;
  bool enabled = true;  // false: paused; events are not queued
};

struct WebhookInfo {
  std::string id;
  WebhookEndpointConfig config;
  absl::Time created_at;
};

// One delivery attempt of a managed webhook.
struct WebhookDeliveryRecord {
  std::string id;             // "dlv_<n>", unique per emitter
  std::string delivery_uuid;  // shared by the attempts (retries) of one delivery
  EventType event = EventType::kChatQueueUpdated;
  std::string idempotency_key;
  std::optional<int> status_code;  // nullopt: connection error or timeout
  bool success = false;
  int attempt = 1;  // 1 for the first attempt of a delivery
  absl::Time created_at;
  std::string redelivery_of;  // a manual redelivery: the record it replays
};

// Delivery records kept per managed webhook; older ones are forgotten (the vendor keeps 7
// days).
inline constexpr size_t kMaxDeliveryRecords = 1000;

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
  // `io` and `clock` must outlive the emitter; `io` is run by the caller's threads. The clock
  // dates managed webhooks and delivery records.
  WebhookEmitter(boost::asio::io_context& io, WebhookPolicy policy,
                 const Clock& clock = SystemClock::Get());
  ~WebhookEmitter() override;

  WebhookEmitter(const WebhookEmitter&) = delete;
  WebhookEmitter& operator=(const WebhookEmitter&) = delete;

  // Validates the URL and starts the endpoint's connections. Returns its id ("wh_<n>").
  absl::StatusOr<std::string> AddEndpoint(WebhookEndpointConfig config);
  // Replaces the URL, secret, filter and enabled flag of endpoint `id` (the team and kind are
  // kept). Queued events and retries go to the new URL with the new secret. NotFound for an
  // unknown id; InvalidArgument for a bad URL (nothing changes).
  absl::Status UpdateEndpoint(std::string_view id, WebhookEndpointConfig config);
  // The endpoint `id`, or nullopt.
  std::optional<WebhookInfo> GetEndpoint(std::string_view id) const;
  // The managed webhooks of `team`, oldest first.
  std::vector<WebhookInfo> ManagedEndpoints(std::string_view team) const;
  // Delivery attempts of endpoint `id`, newest first, skipping `offset`, at most `limit`;
  // nullopt for an unknown id (simulator endpoints record nothing).
  std::optional<std::vector<WebhookDeliveryRecord>> Deliveries(std::string_view id, size_t offset,
                                                               size_t limit) const;
  // Queues a replay of the body recorded by attempt `delivery_id` of endpoint `id`, to the
  // endpoint's current URL and secret, with the original idempotency key and an
  // `X-OFAPI-Redelivery-Of: <delivery_id>` header; retried like any delivery. Returns the
  // delivery_uuid of the new delivery. NotFound (endpoint or record), FailedPrecondition
  // (paused), ResourceExhausted (backlog full).
  absl::StatusOr<std::string> Redeliver(std::string_view id, std::string_view delivery_id);
  // Stops endpoints (all, or the one with `id`); queued events are discarded. False when no
  // endpoint has that id.
  bool RemoveEndpoint(std::string_view id);
  void RemoveAll();

  // Called with a managed webhook's team for each event it delivered (answered 2xx),
  // redeliveries included: the vendor charges a credit per delivered event. Set before the first
  // endpoint is added; from the endpoints' threads.
  void ChargeDeliveriesTo(std::function<void(std::string_view team)> charge);

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
