// The audit trail: administrative and key operations (tenants and API keys created or revoked,
// team keys set or changed, teams deleted, webhook secrets rotated, campaigns cancelled), kept in
// one bounded Redis stream for the platform administrator to read.
//
//   AuditTrail audit(redis);
//   co_await audit.Append({.actor = "platform-admin", .action = "tenant.create",
//                          .tenant = "acme", .resource = "tenants/acme"});
//   auto page = co_await audit.List({.tenant = "acme", .page_size = 50});
//
// Entries never carry secrets. The stream keeps about `max_events` of the newest entries
// (trimmed approximately, as Redis does cheaply).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <boost/asio/awaitable.hpp>

namespace herald::redis {
class Client;
}  // namespace herald::redis

namespace herald::store {

struct AuditEvent {
  std::string id;        // the stream entry id, set by Redis; increasing with time
  int64_t time_ms = 0;   // set by Append
  std::string actor;     // "platform-admin" or "tenants/{t}/apiKeys/{k}"
  std::string action;    // "tenant.create", "api_key.revoke", "campaign.cancel", ...
  std::string tenant;    // the tenant acted on; empty for none
  std::string resource;  // the resource's name, e.g. "tenants/acme/campaigns/c1"
  std::string detail;    // optional; never a secret
};

struct AuditQuery {
  std::string tenant;      // only this tenant's entries; empty: all
  int page_size = 100;     // 1..1000
  std::string page_token;  // next_page_token of the previous page; empty: the newest
};

struct AuditPage {
  std::vector<AuditEvent> events;  // newest first
  std::string next_page_token;     // empty on the last page
};

class AuditTrail {
 public:
  // The stream's key: one hash slot, so it lives on one node of a cluster.
  static constexpr char kKey[] = "hd:{audit}:events";

  // `redis` must outlive the trail.
  explicit AuditTrail(redis::Client& redis, int64_t max_events = 100'000)
      : redis_(redis), max_events_(max_events) {}

  boost::asio::awaitable<absl::Status> Append(AuditEvent event);
  // kInvalidArgument for a page size out of range or a token this trail did not make.
  boost::asio::awaitable<absl::StatusOr<AuditPage>> List(AuditQuery query);

 private:
  redis::Client& redis_;
  const int64_t max_events_;
};

}  // namespace herald::store
