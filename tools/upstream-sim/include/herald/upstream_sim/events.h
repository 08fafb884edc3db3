// Webhook events: what happened (built by the delivery engine and the API while an account is
// locked) and how it is written on the wire (rendered later by the emitter, without locks).
//
// An event is a compact snapshot (~200 bytes) rather than a rendered body, so a backlog of
// hundreds of thousands of events stays cheap. Rendering is deterministic: a retry or a
// duplicate of an event has byte-identical body, signature and idempotency key.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/time/time.h>

#include <herald/upstream_sim/model.h>

namespace herald::upstream_sim {

enum class EventType : uint8_t {
  kChatQueueUpdated,
  kChatQueueFinished,
  kMessagesSent,
  kPpvUnlocked,
  kTransactionNew,
  kSubscriptionNew,
  kMediaUploadCompleted,
  kMediaUploadFailed,
  // Account lifecycle (the platform session behind an account). The simulator's accounts never
  // lose their session; these are emitted only on request (POST /_sim/accounts/{id}/events).
  kAccountConnected,
  kAccountReconnected,
  kAccountSessionExpired,
  kAccountAuthenticationFailed,
  kAccountOtpCodeRequired,
  kAccountFaceOtpRequired,
  // A fan's own activity on an account. The simulated fans do none of it by themselves; these
  // are emitted only on request (POST /_sim/accounts/{id}/events), like the accounts.* events.
  kMessagesReceived,
  kMessagesDeleted,
  kTipsReceived,
  kSubscriptionRenewed,
  kSubscriptionExpired,
  // Presence: ephemeral, delivered without an X-OFAPI-Idempotency-Key.
  kUserTyping,
  kUserOnline,
  kUserOffline,
};
inline constexpr int kEventTypeCount = 22;

// "chat_queue.updated", "messages.ppv.unlocked", ...
std::string_view EventName(EventType type);
// The inverse of EventName; nullopt for a name the simulator does not emit.
std::optional<EventType> ParseEventName(std::string_view name);
// One sentence saying when the event is sent (the event catalogue's description).
std::string_view EventDescription(EventType type);
// True for the accounts.* events, which carry the account's authentication state only.
bool IsAccountEvent(EventType type);
// True for the events about one fan that happen only on request: messages.received,
// messages.deleted, tips.received, subscriptions.renewed, subscriptions.expired, users.*.
bool IsFanActivityEvent(EventType type);
// True for the presence events (users.typing, users.online, users.offline), which the platform
// sends without an idempotency key.
bool IsEphemeralEvent(EventType type);

// A custom list of the account and whether the fan is in it (a user object's `listsStates[]`).
struct FanListState {
  int64_t id = 0;
  std::string name;
  bool has_user = false;
};

struct FanSnapshot {
  uint64_t id = 0;
  int64_t subscribed_at = 0;
  uint32_t spend_subscriptions = 0;
  uint32_t spend_messages = 0;
  uint32_t spend_tips = 0;
  uint32_t spend_posts = 0;
  bool active = true;
  // The account's custom lists, when the snapshot carries them (messages.sent's toUser): written
  // as listsStates[].
  std::optional<std::vector<FanListState>> lists;
};
FanSnapshot Snapshot(const Fan& fan);

struct WebhookEvent {
  EventType type = EventType::kChatQueueUpdated;
  std::shared_ptr<const AccountIdentity> account;
  std::shared_ptr<const MessageContent> content;  // message events
  absl::Time at;
  uint64_t sequence = 0;  // unique per world; the idempotency key derives from it
  uint64_t seed = 0;

  // chat_queue.*: the queue as it was.
  int64_t queue_id = 0;
  QueueStatus queue;

  // messages.*, transactions.new, subscriptions.*, tips.received, users.*
  FanSnapshot fan;
  int64_t chat_message_id = 0;
  int64_t amount_cents = 0;
  std::string text;  // messages.received: the fan's message (plain text)

  // media_uploads.*: the upload as it ended (a copy; `error` set for a failure).
  std::shared_ptr<const Media> media;

  // accounts.* need nothing beyond the type, the account and `at` (the time the attempt
  // reached the state the event reports).

  // Delivery bookkeeping, owned by the emitter.
  int attempt = 0;
  bool duplicate = false;
};

// "evt_" + 40 lowercase hex characters, stable for the event; empty for an ephemeral event,
// which is delivered without the header.
std::string IdempotencyKey(const WebhookEvent& event);

// The JSON body {"event", "account_id", "payload"}. An accounts.* payload is
// {"state", "progress", "latestAuthAttempt": {"started_at", "completed_at", "success",
// "error_message", "needs_otp", "needs_face_otp", "otp_phone_ending"}}; the values per event
// are tabulated in the README ("Account events").
std::string RenderWebhookBody(const WebhookEvent& event);

// A representative body of an event of `type` for a made-up account, rendered the way real
// events are (GET /api/webhooks/{type}/example-payload).
std::string ExampleWebhookBody(EventType type);

// Receives events as they happen. Implementations must be thread-safe and must not block:
// Emit is called with an account lock held.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // False when no endpoint would receive events of this team, so callers can skip building them.
  virtual bool Wants(const AccountIdentity& account) const = 0;
  virtual void Emit(WebhookEvent event) = 0;
};

// A sink that drops everything.
class NullSink final : public EventSink {
 public:
  bool Wants(const AccountIdentity&) const override { return false; }
  void Emit(WebhookEvent) override {}
};

}  // namespace herald::upstream_sim
