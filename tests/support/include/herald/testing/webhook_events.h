// Signed upstream webhooks for end-to-end tests: the team's signing secret as the upstream got
// it, and the events tests post to ingest.
//
//   auto record = redis->Command({"HGET", TeamsKey("acme"), "main"});
//   auto secret = OpenWebhookSecret(*record, encryption_key_hex);
//   Delivery d = SubscriptionDelivery("evt_1", "acct_…", 1001, *secret);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>

#include <herald/testing/webhook_sender.h>

namespace herald::testing {

// The Redis hash holding tenant `tenant`'s team records (JSON, one field per team).
std::string TeamsKey(std::string_view tenant);

// The webhook signing secret in a team's stored record: Herald keeps it sealed with its
// encryption key (64 hex digits). kInternal when the record has none or does not parse.
absl::StatusOr<std::string> OpenWebhookSecret(std::string_view team_record,
                                              std::string_view encryption_key_hex);

// A subscriptions.new delivery (idempotency key `key`) about fan `fan_id` of upstream account
// `account`, whose lifetime spend on the account is `spend_cents`, signed with `secret` as the
// upstream signs it.
Delivery SubscriptionDelivery(std::string key, std::string account, int64_t fan_id,
                              const std::string& secret, int64_t spend_cents = 999);

// Writes `count` transactions.new events into tenant `tenant`'s event stream (what
// EventService.Subscribe reads) as ingest applies them, in one script call: the stream's events
// are numbered 1.. in their fan and chat ids, these continuing from those already there.
absl::Status AppendStreamEvents(uint16_t redis_port, const std::string& redis_password,
                                std::string_view tenant, int count);

}  // namespace herald::testing
