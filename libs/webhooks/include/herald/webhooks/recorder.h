// Where upstream webhook events land: each one recorded and applied to the analytics in one
// atomic Redis step (lua/apply_event.lua), deduplicated on its idempotency key; and the reads of
// what they built.
//
// Analytics are kept per upstream mass message (account, message id), not per campaign, so an
// event never needs to know its campaign: a purchase finds its mass message through the chat
// message's link from messages.sent, and a campaign's figures are the sum over its deliveries'
// messages (campaign::Analytics). A purchase that arrives before its messages.sent is kept and
// credited when the link arrives.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/awaitable.hpp>

namespace herald {
class Clock;
}  // namespace herald
namespace herald::metrics {
class Registry;
}  // namespace herald::metrics
namespace herald::redis {
class Client;
}  // namespace herald::redis
namespace herald::upstream {
struct WebhookEvent;
}  // namespace herald::upstream

namespace herald::webhooks {

template <typename T>
using Op = boost::asio::awaitable<absl::StatusOr<T>>;

enum class RecordOutcome {
  kApplied,
  kDuplicate,  // the idempotency key was seen within the dedupe window: nothing changed
  // Applied, but a purchase whose mass message is not known (yet): kept, and credited if the
  // chat message's messages.sent arrives within the link TTL. Also a message purchase that
  // names no chat message: only the fan's data is applied (reconciliation finds the purchase).
  kUnattributed,
};

struct RecorderConfig {
  // How long an idempotency key is remembered. The upstream redelivers for up to 7 days.
  absl::Duration dedupe_ttl = absl::Hours(24 * 8);
  // How long a priced chat message stays linked to its mass message (and a purchase waits for
  // its messages.sent).
  absl::Duration link_ttl = absl::Hours(24 * 35);
  // Applied events are also appended to the tenant's event stream for subscribers, trimmed to
  // about this many entries (never fewer; Redis trims whole blocks). 0: no stream.
  int64_t events_max_len = 100'000;
  // The platform's share of a purchase, in percent: a purchase known only from its unlock (its
  // transaction lost, or not arrived yet) has its net and fee estimated with it.
  int platform_fee_percent = 20;
  // Group commit: a tenant has at most `max_batches_in_flight` script calls in flight; events
  // that arrive while all are busy are written together in the next call, at most `max_batch`
  // events each.
  int max_batch = 64;
  int max_batches_in_flight = 4;
};

class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  // Records `event` of `tenant` under `idempotency_key`. The event is applied once or not at
  // all; an error (Redis unavailable, deadline) means it may not have been applied, and a
  // retry with the same key is safe. INTERNAL: the event itself could not be applied (a key of
  // the wrong type, say); it is not marked applied, so a retry tries it again.
  virtual Op<RecordOutcome> Record(std::string tenant, std::string idempotency_key,
                                   const upstream::WebhookEvent& event) = 0;
  // True when an event recorded under `idempotency_key` was applied, within the dedupe window
  // (RecorderConfig::dedupe_ttl).
  virtual Op<bool> Applied(std::string tenant, std::string idempotency_key) = 0;
};

// Records events with group commit: a few script calls (lua/apply_event.lua) in flight per
// tenant, each carrying the events of that tenant that arrived while the calls before it were
// in flight (up to RecorderConfig::max_batch), so Redis round trips and script calls grow far
// slower than the event rate. An event is answered when its batch is committed; a failed call fails
// each of its events, and an event that fails inside a call fails alone (the script applies the
// others as if it were not in the batch).
//
// Metrics, with a registry: herald_ingest_batch_size (events per script call).
std::unique_ptr<EventRecorder> MakeRedisEventRecorder(redis::Client& client, const Clock& clock,
                                                      RecorderConfig config = {},
                                                      metrics::Registry* registry = nullptr);

// What the events said of one mass message.
struct MessageStats {
  // Fans reached: the messages.sent events received, or the upstream's own count
  // (RecordEngagement) when that is higher (events lost).
  int64_t sent = 0;
  int64_t viewed = 0;     // as the upstream last reported (RecordEngagement); 0 before
  int64_t purchases = 0;  // distinct purchases
  int64_t gross_cents = 0;
  int64_t net_cents = 0;
  int64_t fee_cents = 0;
  int64_t total = -1;    // recipients as the last queue event said; -1: no queue event yet
  int64_t pending = -1;  // likewise
  bool done = false;
  bool canceled = false;
  int64_t reconciled = 0;   // purchases found by reconciliation, not by their events
  int64_t updated_ms = 0;   // last change; 0: no event yet
  int64_t progress_ms = 0;  // last queue progress event; 0: none yet
};

// One applied event as subscribers see it (the tenant's event stream).
struct StreamEvent {
  std::string cursor;  // the stream entry id: resume after it
  std::string type;    // the upstream event name
  std::string account;
  int64_t message_id = 0;  // the mass message (queue) id, 0 if none
  int64_t chat_message_id = 0;
  int64_t fan_id = 0;
  int64_t price_cents = 0;   // messages.sent
  int64_t amount_cents = 0;  // purchases
  int64_t at_ms = 0;         // when Herald applied it
};

struct EventPage {
  std::vector<StreamEvent> events;
  // The oldest retained cursor, read after the events; empty when the stream is empty. Only
  // trimming removes events, so a subscriber whose cursor is older may have missed some.
  std::string oldest;
};

// An account's totals from the events Herald applied: its mass messages' copies sent and the
// purchases of them (a purchase of any other chat message is not counted), new subscribers, and
// reconciliation's corrections.
struct AccountTotals {
  int64_t sent = 0;
  int64_t purchases = 0;
  int64_t gross_cents = 0;
  int64_t net_cents = 0;
  int64_t fee_cents = 0;
  int64_t reconciled = 0;
  int64_t subscriptions = 0;  // new subscribers
  int64_t known_fans = 0;     // fans with spend or subscription data, for segments
};

struct MessageKey {
  std::string account;
  int64_t message_id = 0;
};

// One buyer of a mass message.
struct Buyer {
  std::string account;
  int64_t fan_id = 0;
  int64_t spent_cents = 0;
  int64_t first_purchase_ms = 0;
};

// The upstream event types a tenant's stream carries: those Herald applies
// (upstream::AppliedWebhookEventNames).
std::vector<std::string_view> StreamedEventTypes();

// The analytics of mass messages: what the events built, and repairs from the upstream's own
// figures. Thread-safe; the client must outlive it.
class MessageAnalytics {
 public:
  explicit MessageAnalytics(redis::Client& client) : client_(client) {}

  // Stats of each message, in the order of `messages`, in one round trip.
  Op<std::vector<MessageStats>> Messages(std::string tenant, std::vector<MessageKey> messages);
  // Every buyer of `messages`, earliest first.
  Op<std::vector<Buyer>> Buyers(std::string tenant, std::vector<MessageKey> messages);
  Op<AccountTotals> Account(std::string tenant, std::string account);

  // Credits the buyers in `fans` (one page of the upstream's buyers list of `message`) that no
  // event has credited yet, at `price_cents` each minus `fee_cents` for net; their events, if
  // they arrive later, replace the estimate. Returns how many purchases were added. Idempotent.
  Op<int64_t> ReconcileBuyers(std::string tenant, MessageKey message, int64_t price_cents,
                              int64_t fee_cents, std::vector<int64_t> fans, int64_t now_ms);

  // Keeps the upstream's own figures of `message` (its mass-message stats): fans reached and
  // fans who viewed it. The latest read replaces the previous one; `sent` only raises the
  // events' count (events may be lost, never invented).
  boost::asio::awaitable<absl::Status> RecordEngagement(std::string tenant, MessageKey message,
                                                        int64_t sent, int64_t viewed,
                                                        int64_t now_ms);

  // Up to `count` events of the tenant's stream after cursor `after` (empty: from the oldest
  // retained), oldest first, and the oldest retained cursor, read after the events.
  Op<EventPage> ReadEvents(std::string tenant, std::string after, int count);
  // How many events the tenant's stream keeps after cursor `after` (empty: all it keeps),
  // counted up to `limit`.
  Op<size_t> CountEventsAfter(std::string tenant, std::string after, size_t limit);
  // The cursor of the newest event ("0-0" when there is none): subscribing from it delivers
  // only what comes next.
  Op<std::string> LatestEventCursor(std::string tenant);

 private:
  redis::Client& client_;
};

}  // namespace herald::webhooks
