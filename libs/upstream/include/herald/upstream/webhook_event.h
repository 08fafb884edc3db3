// The upstream's webhook deliveries, decoded into one normalised event.
//
// A delivery body is `{"event", "account_id", "payload"}`. Decoding is pure (no I/O, no clock),
// bounded by the body's size, and never trusts the body: every field it uses is type-checked,
// money is converted exactly (money.h), and a malformed body is an error naming the JSON path.
// Events Herald does not use decode as kOther with their name, so they can be counted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

namespace herald::upstream {

enum class WebhookEventType {
  kOther,  // a well-formed event Herald does not apply (accounts.*, media_uploads.*, …)
  kChatQueueUpdated,   // a mass message started, progressed or was cancelled
  kChatQueueFinished,  // a mass message finished
  kMessageSent,        // one recipient's copy of a message (one per fan of a mass message)
  kPpvUnlocked,        // a fan bought a priced message
  kTransaction,        // money received (type "message": a priced message bought)
  kSubscription,       // a fan subscribed
  kRenewal,            // a fan's subscription renewed (subscriptions.renewed)
  kExpiry,             // a fan's subscription expired (subscriptions.expired)
};

struct WebhookEvent {
  WebhookEventType type = WebhookEventType::kOther;
  std::string name;     // "event" as sent
  std::string account;  // "account_id" ("acct_…"); may be empty for kOther

  // kChatQueueUpdated / kChatQueueFinished: the mass message; kMessageSent: its queue (0 when the
  // message did not come from a mass message).
  int64_t queue_id = 0;
  // kChatQueue*: the queue's recipients and those not reached yet; -1 both when the event
  // gives no counts.
  int64_t queue_total = -1;
  int64_t queue_pending = -1;
  bool queue_done = false;
  bool queue_canceled = false;

  // kMessageSent: the fan's chat message; kPpvUnlocked / kTransaction: the message bought (the
  // `firstId` of the message link), 0 when the event names none.
  int64_t chat_message_id = 0;
  int64_t fan_id = 0;
  int64_t price_cents = 0;  // kMessageSent

  // kPpvUnlocked: amount only (the {AMOUNT} shown to the creator). kTransaction: all three,
  // net and fee -1 when the transaction carries neither `net_amount` nor `fee_amount`; the
  // amount (and so the others) negative for a refund or a correction.
  int64_t amount_cents = 0;
  int64_t net_cents = 0;
  int64_t fee_cents = 0;
  // kPpvUnlocked / kTransaction: when the purchase was made (createdAt / created_at), -1 when
  // the event does not say in a form Herald reads or gives a time before 2000 (it still counts,
  // dated when applied).
  int64_t purchased_at_ms = -1;
  std::string transaction_id;    // kTransaction
  std::string transaction_kind;  // kTransaction "type": "message", "tip", "subscription", …

  // kSubscription, kRenewal, kExpiry: the subscriber, in fan_id.
  // Fan data carried by the event (fanData.spending.total; subscribedAt of a kSubscription),
  // -1 when absent.
  int64_t fan_lifetime_spend_cents = -1;
  int64_t subscribed_at_ms = -1;
};

// The names of the events Herald applies (every type but kOther), as the upstream sends them.
std::vector<std::string_view> AppliedWebhookEventNames();

// Decodes one delivery body. kInvalidArgument with the JSON path when it is not a JSON object
// with a string `event`, or when an applied event lacks a field it needs or has a wrong type.
absl::StatusOr<WebhookEvent> DecodeWebhookEvent(std::string_view body);

// The number after `firstId=` in an upstream message link, or 0 when there is none.
int64_t FirstIdInLink(std::string_view html);

// The largest amount an event may carry, in cents ($1,000,000,000): DecodeWebhookEvent refuses
// a larger one.
inline constexpr int64_t kMaxEventCents = 100'000'000'000;

}  // namespace herald::upstream
