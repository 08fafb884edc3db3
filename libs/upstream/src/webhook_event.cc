#include <utility>

#include <absl/strings/ascii.h>
#include <absl/time/time.h>

#include <herald/common/strings.h>
#include <herald/upstream/ids.h>
#include <herald/upstream/money.h>
#include <herald/upstream/webhook_event.h>

#include "json.h"

namespace herald::upstream {
namespace {

using internal::JsonDocument;
using internal::JsonReader;
using internal::ObjectReader;

struct NamedType {
  std::string_view name;
  WebhookEventType type;
};
constexpr NamedType kApplied[] = {
    {"chat_queue.updated", WebhookEventType::kChatQueueUpdated},
    {"chat_queue.finished", WebhookEventType::kChatQueueFinished},
    {"messages.sent", WebhookEventType::kMessageSent},
    {"messages.ppv.unlocked", WebhookEventType::kPpvUnlocked},
    {"transactions.new", WebhookEventType::kTransaction},
    {"subscriptions.new", WebhookEventType::kSubscription},
    {"subscriptions.renewed", WebhookEventType::kRenewal},
    {"subscriptions.expired", WebhookEventType::kExpiry},
};

}  // namespace

std::vector<std::string_view> AppliedWebhookEventNames() {
  std::vector<std::string_view> names;
  for (const NamedType& t : kApplied) names.push_back(t.name);
  return names;
}

namespace {

WebhookEventType TypeOf(std::string_view name) {
  for (const NamedType& t : kApplied) {
    if (t.name == name) return t.type;
  }
  return WebhookEventType::kOther;
}

// "2026-01-01T00:00:00+00:00" (with optional fraction) or "2026-01-01 00:00:00" (UTC).
std::optional<int64_t> ParseTimeMs(std::string_view text) {
  absl::Time t;
  std::string error;
  const std::string s(text);
  if (absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%Ez", s, &t, &error) ||
      absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", s, &t, &error) ||
      absl::ParseTime("%Y-%m-%d %H:%M:%E*S", s, absl::UTCTimeZone(), &t, &error)) {
    return absl::ToUnixMillis(t);
  }
  return std::nullopt;
}

// 2000-01-01T00:00:00Z: no purchase on the platform is older, so an earlier time is an unset
// field's zero value (1970, or year 1), not a date.
constexpr int64_t kEarliestPurchaseMs = 946'684'800'000;

// The time in `field` (ParseTimeMs), -1 when it is absent, not a time or before 2000.
int64_t OptionalTimeMs(ObjectReader& payload, std::string_view field) {
  std::optional<JsonReader> v = payload.Get(field);
  if (!v.has_value() || !v->value().is_string()) return -1;
  const auto& text = v->value().as_string();
  const int64_t ms = ParseTimeMs(std::string_view(text.data(), text.size())).value_or(-1);
  return ms >= kEarliestPurchaseMs ? ms : -1;
}

// fanData.spending.total, when the payload carries fan data.
void ReadFanData(ObjectReader& payload, WebhookEvent& e) {
  std::optional<JsonReader> data = payload.Get("fanData");
  if (!data.has_value() || !data->value().is_object()) return;
  std::optional<JsonReader> spending = data->Object().Get("spending");
  if (!spending.has_value() || !spending->value().is_object()) return;
  ObjectReader s = spending->Object();
  if (std::optional<int64_t> total = s.OptionalMoneyCents("total")) {
    e.fan_lifetime_spend_cents = *total;
  }
}

void ReadQueue(ObjectReader& p, WebhookEvent& e) {
  e.queue_id = p.RequiredId("id");
  // Progress counts only as a pair: an event that lacks either leaves both unknown.
  std::optional<int64_t> total = p.OptionalInt("total");
  std::optional<int64_t> pending = p.OptionalInt("pending");
  if (total.has_value() && pending.has_value()) {
    e.queue_total = *total;
    e.queue_pending = *pending;
  }
  // `chat_queue.finished` is the end, whether or not its payload says isDone.
  e.queue_done = p.Bool("isDone") || e.type == WebhookEventType::kChatQueueFinished;
  e.queue_canceled = p.Bool("isCanceled");
}

void ReadMessageSent(ObjectReader& p, WebhookEvent& e) {
  e.chat_message_id = p.RequiredId("id");
  // A mass message's copy names it in queueId. isFromQueue is not read: copies captured from
  // the upstream carry a queueId with isFromQueue false. A queueId Herald does not know leaves
  // the message unattributed.
  e.queue_id = p.OptionalInt("queueId").value_or(0);
  e.price_cents = p.OptionalMoneyCents("price").value_or(0);
  if (std::optional<JsonReader> to = p.Get("toUser"); to.has_value()) {
    e.fan_id = to->Object().RequiredId("id");
  }
}

void ReadUnlock(ObjectReader& p, WebhookEvent& e) {
  e.fan_id = p.RequiredId("user_id");
  e.purchased_at_ms = OptionalTimeMs(p, "createdAt");
  if (std::optional<JsonReader> pairs = p.Get("replacePairs"); pairs.has_value()) {
    ObjectReader r = pairs->Object();
    e.chat_message_id = FirstIdInLink(r.String("{MESSAGE_LINK}"));
    if (std::optional<JsonReader> amount = r.Get("{AMOUNT}"); amount.has_value()) {
      e.amount_cents = amount->MoneyCents();
    }
  }
  ReadFanData(p, e);
}

void ReadTransaction(ObjectReader& p, WebhookEvent& e) {
  e.transaction_id = p.RequiredIdText("id");
  e.purchased_at_ms = OptionalTimeMs(p, "created_at");
  e.transaction_kind = p.String("type");
  // A refund or a correction is negative: it is recorded, and credited to nothing (see
  // IsMessagePurchase in the recorder).
  constexpr MoneyParseOptions kSigned{.allow_negative = true};
  e.amount_cents = p.Required("amount").MoneyCents(kSigned);
  // The fee is what the amount leaves beyond the net, so that the two always add up to it:
  // each rounded to the cent on its own, 0.805 and 0.205 of 1.01 would make 1.02. With only
  // the fee, the net is the rest; with neither, both stay unknown (-1), and the analytics keep
  // their estimate rather than crediting a purchase with no net. The fee is read only when the
  // net is absent: beside a net it says nothing more, so it cannot fail the event.
  if (const std::optional<int64_t> net = p.OptionalMoneyCents("net_amount", kSigned);
      net.has_value()) {
    e.net_cents = *net;
    e.fee_cents = e.amount_cents - *net;
  } else if (const std::optional<int64_t> fee = p.OptionalMoneyCents("fee_amount", kSigned);
             fee.has_value()) {
    e.net_cents = e.amount_cents - *fee;
    e.fee_cents = *fee;
  } else {
    e.net_cents = -1;
    e.fee_cents = -1;
  }
  e.chat_message_id = FirstIdInLink(p.String("description"));
  if (std::optional<JsonReader> fan = p.Get("fan"); fan.has_value()) {
    e.fan_id = fan->Object().RequiredId("id");
  }
  ReadFanData(p, e);
}

// The subscriber: `user_id` as messages.ppv.unlocked carries it, else the id of a `user` or
// `fan` object (the upstream does not document this payload; both shapes are in its others).
int64_t SubscriberId(ObjectReader& p) {
  if (p.Get("user_id").has_value()) return p.RequiredId("user_id");
  for (const char* key : {"user", "fan"}) {
    if (std::optional<JsonReader> o = p.Get(key); o.has_value() && o->value().is_object()) {
      return o->Object().RequiredId("id");
    }
  }
  return p.RequiredId("user_id");  // none of them: the error names the documented field
}

// A new subscription: its fan, fan data and start (subscribedAt, an undocumented field: -1 when
// it is absent or not a time, which leaves the start to the time Herald applies the event).
void ReadSubscription(ObjectReader& p, WebhookEvent& e) {
  e.fan_id = SubscriberId(p);
  ReadFanData(p, e);
  e.subscribed_at_ms = OptionalTimeMs(p, "subscribedAt");
}

}  // namespace

int64_t FirstIdInLink(std::string_view html) {
  constexpr std::string_view kKey = "firstId=";
  const size_t at = html.find(kKey);
  if (at == std::string_view::npos) return 0;
  int64_t id = 0;
  size_t digits = 0;
  for (size_t i = at + kKey.size(); i < html.size() && absl::ascii_isdigit(html[i]); ++i) {
    if (++digits > 18) return 0;  // not an id Herald could have stored
    id = id * 10 + (html[i] - '0');
  }
  return id;
}

absl::StatusOr<WebhookEvent> DecodeWebhookEvent(std::string_view body) {
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(body);
  if (!doc.ok()) return doc.status();
  if (!doc->root().is_object()) return absl::InvalidArgumentError("the body is not a JSON object");
  ObjectReader root = JsonReader(*doc, "").Object();
  WebhookEvent e;
  e.name = root.RequiredString("event");
  e.account = root.String("account_id");
  if (!root.status().ok()) return root.status();
  e.type = TypeOf(e.name);
  if (e.type == WebhookEventType::kOther) return e;
  if (e.account.empty()) return absl::InvalidArgumentError("account_id: required");
  if (!IsAccountId(e.account)) {
    return absl::InvalidArgumentError(
        StrCat("account_id: \"", Utf8Prefix(e.account, 80),
               "\" is not an upstream account id (acct_ then 1-64 letters or digits)"));
  }
  ObjectReader p = root.Required("payload").Object();
  if (!p.status().ok()) return p.status();
  switch (e.type) {
    case WebhookEventType::kChatQueueUpdated:
    case WebhookEventType::kChatQueueFinished:
      ReadQueue(p, e);
      break;
    case WebhookEventType::kMessageSent:
      ReadMessageSent(p, e);
      break;
    case WebhookEventType::kPpvUnlocked:
      ReadUnlock(p, e);
      break;
    case WebhookEventType::kTransaction:
      ReadTransaction(p, e);
      break;
    case WebhookEventType::kSubscription:
      ReadSubscription(p, e);
      break;
    case WebhookEventType::kRenewal:
    case WebhookEventType::kExpiry:
      // Their subscribedAt is the period's start: a renewal is not a new subscriber, and an
      // expiry's period began before, so neither moves the date segments read.
      e.fan_id = SubscriberId(p);
      ReadFanData(p, e);
      break;
    case WebhookEventType::kOther:
      break;
  }
  if (!p.status().ok()) return p.status();
  // A refund's parts are negative as its amount is: they are compared by size.
  const int64_t sign = e.amount_cents < 0 ? -1 : 1;
  if (e.type == WebhookEventType::kTransaction && sign * e.fee_cents > sign * e.amount_cents) {
    return absl::InvalidArgumentError(StrCat("payload.fee_amount: ", FormatCents(e.fee_cents),
                                             " is more than the amount, ",
                                             FormatCents(e.amount_cents)));
  }
  if (sign * e.net_cents > sign * e.amount_cents) {
    return absl::InvalidArgumentError(StrCat("payload.net_amount: ", FormatCents(e.net_cents),
                                             " is more than the amount, ",
                                             FormatCents(e.amount_cents)));
  }
  // Amounts no purchase comes near are refused, so that the sums the analytics keep (in Redis
  // integers, and Lua numbers on the way) can never overflow or lose a cent.
  for (const auto& [field, cents] : {std::pair<std::string_view, int64_t>{"price", e.price_cents},
                                     {"amount", e.amount_cents},
                                     {"net_amount", e.net_cents},
                                     {"fee_amount", e.fee_cents},
                                     {"fanData.spending.total", e.fan_lifetime_spend_cents}}) {
    if (cents > kMaxEventCents || cents < -kMaxEventCents) {
      return absl::InvalidArgumentError(
          StrCat("payload.", field, ": ", FormatCents(cents), " is beyond any real amount"));
    }
  }
  return e;
}

}  // namespace herald::upstream
