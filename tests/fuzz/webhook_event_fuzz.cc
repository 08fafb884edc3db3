// libFuzzer target: the decoder of upstream webhook bodies (upstream/webhook_event.h) and the
// pieces it relies on (exact money, message links) never crash, never read out of bounds and
// never accept an event without the fields its type needs, whatever the bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <herald/upstream/webhook_event.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<herald::upstream::WebhookEvent> event = herald::upstream::DecodeWebhookEvent(body);
  if (event.ok() && event->type != herald::upstream::WebhookEventType::kOther) {
    // An applied event always names its account, and amounts are never negative but a
    // transaction's (a refund); a transaction's net and fee add up to its amount, each of its
    // sign, or are both unknown (-1).
    if (event->account.empty()) __builtin_trap();
    const bool transaction = event->type == herald::upstream::WebhookEventType::kTransaction;
    const bool unknown_net = transaction && event->net_cents == -1 && event->fee_cents == -1;
    const int64_t sign = transaction && event->amount_cents < 0 ? -1 : 1;
    if (sign * event->amount_cents < 0 ||
        (!unknown_net && (sign * event->net_cents < 0 || sign * event->fee_cents < 0))) {
      __builtin_trap();
    }
    if (event->type == herald::upstream::WebhookEventType::kTransaction && !unknown_net &&
        event->net_cents + event->fee_cents != event->amount_cents) {
      __builtin_trap();
    }
  }
  (void)herald::upstream::FirstIdInLink(body);
  return 0;
}
