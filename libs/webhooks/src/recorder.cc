#include <algorithm>
#include <map>

#include <herald/common/clock.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/redis/client.h>
#include <herald/upstream/webhook_event.h>
#include <herald/webhooks/recorder.h>

#include "webhooks_lua.h"

namespace herald::webhooks {
namespace {

using upstream::WebhookEvent;
using upstream::WebhookEventType;

std::string TenantPrefix(std::string_view tenant) { return StrCat("hd:{t:", tenant, "}:"); }

const redis::Script& ApplyScript() {
  static const redis::Script script{std::string(lua::kApplyEvent)};
  return script;
}

const redis::Script& ReconcileScript() {
  static const redis::Script script{std::string(lua::kReconcileBuyers)};
  return script;
}

// The script's event codes (lua/apply_event.lua).
int EventCode(WebhookEventType type) {
  switch (type) {
    case WebhookEventType::kChatQueueUpdated:
    case WebhookEventType::kChatQueueFinished:
      return 1;
    case WebhookEventType::kMessageSent:
      return 2;
    case WebhookEventType::kPpvUnlocked:
      return 3;
    case WebhookEventType::kTransaction:
      return 4;
    case WebhookEventType::kSubscription:
      return 5;
    case WebhookEventType::kOther:
      break;
  }
  return 6;
}

std::string Seconds(absl::Duration d) {
  return StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(d)));
}

class RedisEventRecorder final : public EventRecorder {
 public:
  RedisEventRecorder(redis::Client& client, const Clock& clock, RecorderConfig config)
      : client_(client), clock_(clock), config_(config) {}

  Op<RecordOutcome> Record(std::string tenant, std::string idempotency_key,
                           const WebhookEvent& e) override {
    // A transaction that is not a message purchase (a tip, a subscription) only updates the
    // fan's data.
    const bool message_purchase = e.type != WebhookEventType::kTransaction ||
                                  e.transaction_kind.empty() || e.transaction_kind == "message";
    std::vector<std::string> keys = {TenantPrefix(tenant)};
    std::vector<std::string> args = {
        std::move(idempotency_key),
        Seconds(config_.dedupe_ttl),
        StrCat(EventCode(e.type)),
        e.account,
        StrCat(e.queue_id),
        StrCat(message_purchase ? e.chat_message_id : 0),
        StrCat(e.fan_id),
        StrCat(e.price_cents),
        StrCat(e.amount_cents),
        StrCat(e.net_cents),
        StrCat(e.fee_cents),
        StrCat(e.fan_lifetime_spend_cents),
        StrCat(e.subscribed_at_ms),
        StrCat(absl::ToUnixMillis(clock_.Now())),
        Seconds(config_.link_ttl),
        StrCat(e.queue_total),
        StrCat(e.queue_pending),
        e.queue_done ? "1" : "0",
        e.queue_canceled ? "1" : "0",
        e.name,
        StrCat(config_.events_max_len),
    };
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Eval(ApplyScript(), keys, args));
    if (reply.type() == redis::Reply::Type::kInteger) {
      if (reply.integer() == 1) co_return RecordOutcome::kApplied;
      if (reply.integer() == 0) co_return RecordOutcome::kDuplicate;
    }
    co_return absl::InternalError(
        StrCat("apply_event.lua: unexpected reply ", reply.DebugString()));
  }

 private:
  redis::Client& client_;
  const Clock& clock_;
  const RecorderConfig config_;
};

int64_t IntOr(const redis::Reply& r, int64_t fallback) {
  if (r.is_nil()) return fallback;
  absl::StatusOr<int64_t> v = r.AsInteger();
  return v.ok() ? *v : fallback;
}

std::string MessageSuffix(const MessageKey& m) { return StrCat(m.account, ":", m.message_id); }

}  // namespace

std::unique_ptr<EventRecorder> MakeRedisEventRecorder(redis::Client& client, const Clock& clock,
                                                      RecorderConfig config) {
  return std::make_unique<RedisEventRecorder>(client, clock, config);
}

Op<std::vector<MessageStats>> MessageAnalytics::Messages(std::string tenant,
                                                         std::vector<MessageKey> messages) {
  const std::string prefix = TenantPrefix(tenant);
  std::vector<redis::Command> commands;
  commands.reserve(messages.size());
  for (const MessageKey& m : messages) {
    commands.push_back(redis::Command{
        "HMGET", StrCat(prefix, "mm:", MessageSuffix(m)), "sent", "purchases", "gross", "net",
        "fee", "total", "pending", "done", "canceled", "updated_ms", "reconciled", "progress_ms"});
  }
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                             co_await client_.ExecBatch(std::move(commands)));
  std::vector<MessageStats> out;
  out.reserve(replies.size());
  for (const redis::Reply& reply : replies) {
    if (reply.is_error()) co_return reply.ToStatus();
    const std::vector<redis::Reply>& f = reply.elements();
    if (f.size() != 12) co_return absl::InternalError("HMGET: unexpected reply");
    MessageStats s;
    s.sent = IntOr(f[0], 0);
    s.purchases = IntOr(f[1], 0);
    s.gross_cents = IntOr(f[2], 0);
    s.net_cents = IntOr(f[3], 0);
    s.fee_cents = IntOr(f[4], 0);
    s.total = IntOr(f[5], -1);
    s.pending = IntOr(f[6], -1);
    s.done = IntOr(f[7], 0) == 1;
    s.canceled = IntOr(f[8], 0) == 1;
    s.updated_ms = IntOr(f[9], 0);
    s.reconciled = IntOr(f[10], 0);
    s.progress_ms = IntOr(f[11], 0);
    out.push_back(s);
  }
  co_return out;
}

Op<AccountTotals> MessageAnalytics::Account(std::string tenant, std::string account) {
  const std::string prefix = TenantPrefix(tenant);
  std::vector<redis::Command> commands;
  commands.push_back(redis::Command{"HMGET", StrCat(prefix, "acct:", account), "sent", "purchases",
                                    "gross", "net", "fee", "reconciled", "subscriptions"});
  commands.push_back(redis::Command{"HLEN", StrCat(prefix, "fans:", account)});
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                             co_await client_.ExecBatch(std::move(commands)));
  for (const redis::Reply& r : replies) {
    if (r.is_error()) co_return r.ToStatus();
  }
  const std::vector<redis::Reply>& f = replies[0].elements();
  if (f.size() != 7) co_return absl::InternalError("HMGET: unexpected reply");
  AccountTotals t;
  t.sent = IntOr(f[0], 0);
  t.purchases = IntOr(f[1], 0);
  t.gross_cents = IntOr(f[2], 0);
  t.net_cents = IntOr(f[3], 0);
  t.fee_cents = IntOr(f[4], 0);
  t.reconciled = IntOr(f[5], 0);
  t.subscriptions = IntOr(f[6], 0);
  t.known_fans = IntOr(replies[1], 0);
  co_return t;
}

Op<std::vector<Buyer>> MessageAnalytics::Buyers(std::string tenant,
                                                std::vector<MessageKey> messages) {
  const std::string prefix = TenantPrefix(tenant);
  std::vector<redis::Command> commands;
  commands.reserve(2 * messages.size());
  for (const MessageKey& m : messages) {
    commands.push_back(
        redis::Command{"ZRANGE", StrCat(prefix, "mb:", MessageSuffix(m)), 0, -1, "WITHSCORES"});
    commands.push_back(redis::Command{"HGETALL", StrCat(prefix, "mbc:", MessageSuffix(m))});
  }
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                             co_await client_.ExecBatch(std::move(commands)));
  std::vector<Buyer> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const redis::Reply& times = replies[2 * i];
    const redis::Reply& spent = replies[2 * i + 1];
    if (times.is_error()) co_return times.ToStatus();
    if (spent.is_error()) co_return spent.ToStatus();
    std::map<int64_t, int64_t> spent_by_fan;
    const auto& s = spent.elements();
    for (size_t j = 0; j + 1 < s.size(); j += 2) {
      spent_by_fan[ParseInt<int64_t>(s[j].str()).value_or(0)] = IntOr(s[j + 1], 0);
    }
    const auto& t = times.elements();
    for (size_t j = 0; j + 1 < t.size(); j += 2) {
      Buyer b;
      b.account = messages[i].account;
      b.fan_id = ParseInt<int64_t>(t[j].str()).value_or(0);
      b.first_purchase_ms = ParseInt<int64_t>(t[j + 1].str()).value_or(0);
      b.spent_cents = spent_by_fan[b.fan_id];
      out.push_back(b);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Buyer& a, const Buyer& b) {
    return a.first_purchase_ms < b.first_purchase_ms;
  });
  co_return out;
}

Op<int64_t> MessageAnalytics::ReconcileBuyers(std::string tenant, MessageKey message,
                                              int64_t price_cents, int64_t fee_cents,
                                              std::vector<int64_t> fans, int64_t now_ms) {
  if (fans.empty()) co_return 0;
  std::vector<std::string> keys = {TenantPrefix(tenant)};
  std::vector<std::string> args = {message.account, StrCat(message.message_id), StrCat(price_cents),
                                   StrCat(fee_cents), StrCat(now_ms)};
  for (int64_t fan : fans) args.push_back(StrCat(fan));
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await client_.Eval(ReconcileScript(), keys, args));
  if (reply.type() != redis::Reply::Type::kInteger) {
    co_return absl::InternalError(
        StrCat("reconcile_buyers.lua: unexpected reply ", reply.DebugString()));
  }
  co_return reply.integer();
}

Op<EventPage> MessageAnalytics::ReadEvents(std::string tenant, std::string after, int count) {
  const std::string key = StrCat(TenantPrefix(tenant), "events");
  // The oldest retained entry, and the page after the cursor, in one round trip.
  std::vector<redis::Command> commands;
  commands.push_back(redis::Command{"XRANGE", key, "-", "+", "COUNT", 1});
  const std::string start = after.empty() ? std::string("-") : StrCat("(", after);
  commands.push_back(redis::Command{"XRANGE", key, start, "+", "COUNT", count});
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                             co_await client_.ExecBatch(std::move(commands)));
  for (const redis::Reply& r : replies) {
    if (r.is_error()) co_return r.ToStatus();
  }
  EventPage page;
  if (!replies[0].elements().empty()) {
    page.oldest = std::string(replies[0].elements()[0].elements().at(0).str());
  }
  for (const redis::Reply& entry : replies[1].elements()) {
    const auto& parts = entry.elements();
    if (parts.size() != 2) co_return absl::InternalError("XRANGE: unexpected entry");
    StreamEvent e;
    e.cursor = std::string(parts[0].str());
    const auto& fields = parts[1].elements();
    for (size_t i = 0; i + 1 < fields.size(); i += 2) {
      const std::string_view name = fields[i].str();
      const std::string_view value = fields[i + 1].str();
      if (name == "type") e.type = std::string(value);
      if (name == "account") e.account = std::string(value);
      if (name == "message") e.message_id = ParseInt<int64_t>(value).value_or(0);
      if (name == "chat") e.chat_message_id = ParseInt<int64_t>(value).value_or(0);
      if (name == "fan") e.fan_id = ParseInt<int64_t>(value).value_or(0);
      if (name == "price") e.price_cents = ParseInt<int64_t>(value).value_or(0);
      if (name == "amount") e.amount_cents = ParseInt<int64_t>(value).value_or(0);
      if (name == "at") e.at_ms = ParseInt<int64_t>(value).value_or(0);
    }
    page.events.push_back(std::move(e));
  }
  co_return page;
}

Op<std::string> MessageAnalytics::LatestEventCursor(std::string tenant) {
  const std::string key = StrCat(TenantPrefix(tenant), "events");
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await client_.Exec({"XREVRANGE", key, "+", "-", "COUNT", "1"}));
  if (reply.is_error()) co_return reply.ToStatus();
  if (reply.elements().empty()) co_return std::string("0-0");
  co_return std::string(reply.elements()[0].elements().at(0).str());
}

}  // namespace herald::webhooks
