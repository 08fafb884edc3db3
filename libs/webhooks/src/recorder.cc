#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include <absl/container/flat_hash_map.h>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <herald/common/clock.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/redis/client.h>
#include <herald/store/record_store.h>
#include <herald/upstream/webhook_event.h>
#include <herald/webhooks/recorder.h>

#include "webhooks_lua.h"

namespace herald::webhooks {
namespace {

using upstream::WebhookEvent;
using upstream::WebhookEventType;

// Every key of a tenant's analytics is under its store prefix: one cluster slot per tenant.
std::string TenantPrefix(std::string_view tenant) { return store::TenantKeyPrefix(tenant); }

// An event is acknowledged (200) to its sender once applied: a replicated write.
const redis::Script& ApplyScript() {
  static const redis::Script script{std::string(lua::kApplyEvent),
                                    redis::Script::Durability::kReplicated};
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
    case WebhookEventType::kRenewal:
    case WebhookEventType::kExpiry:
    case WebhookEventType::kOther:
      break;
  }
  return 6;
}

std::string Seconds(absl::Duration d) {
  return StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(d)));
}

// Whether `e`, if it is a purchase, is one of a chat message: every unlock is; a transaction of
// type "message" (or of no type) is, a tip's or a subscription's is not, nor a refund (a
// negative amount, which the upstream's own figures reflect when reconciled).
bool IsMessagePurchase(const WebhookEvent& e) {
  if (e.type != WebhookEventType::kTransaction) return true;
  return e.amount_cents >= 0 && (e.transaction_kind.empty() || e.transaction_kind == "message");
}

// The arguments of one event in a batch (lua/apply_event.lua, kFieldsPerEvent per event).
void AppendEventArgs(std::vector<std::string>& args, std::string idempotency_key,
                     const WebhookEvent& e) {
  // A transaction that is not a message purchase (a tip, a subscription) only updates the
  // fan's data.
  const bool message_purchase = IsMessagePurchase(e);
  args.push_back(std::move(idempotency_key));
  args.push_back(StrCat(EventCode(e.type)));
  args.push_back(e.account);
  args.push_back(StrCat(e.queue_id));
  args.push_back(StrCat(message_purchase ? e.chat_message_id : 0));
  args.push_back(StrCat(e.fan_id));
  args.push_back(StrCat(e.price_cents));
  args.push_back(StrCat(e.amount_cents));
  args.push_back(StrCat(e.net_cents));
  args.push_back(StrCat(e.fee_cents));
  args.push_back(StrCat(e.fan_lifetime_spend_cents));
  args.push_back(StrCat(e.subscribed_at_ms));
  args.push_back(StrCat(e.queue_total));
  args.push_back(StrCat(e.queue_pending));
  args.push_back(e.queue_done ? "1" : "0");
  args.push_back(e.queue_canceled ? "1" : "0");
  args.push_back(e.name);
  args.push_back(StrCat(e.purchased_at_ms));
}

absl::StatusOr<RecordOutcome> OutcomeOf(const redis::Reply& code) {
  if (code.type() == redis::Reply::Type::kInteger) {
    switch (code.integer()) {
      case 0:
        return RecordOutcome::kDuplicate;
      case 1:
        return RecordOutcome::kApplied;
      case 2:
        return RecordOutcome::kUnattributed;
      default:
        break;
    }
  }
  // The event's own failure (its batch-mates are unaffected): Redis' error, or the script's.
  if (code.type() == redis::Reply::Type::kError) {
    const absl::Status failed = code.ToStatus();
    return absl::Status(failed.code(), StrCat("apply_event.lua: ", failed.message()));
  }
  return absl::InternalError(StrCat("apply_event.lua: unexpected result ", code.DebugString()));
}

// Group commit. Each tenant has a lane of at most max_batches_in_flight script calls. An event
// that finds a free slot is written at once (with whatever waits); otherwise it waits in the
// lane, and when a call completes its committer answers its batch and hands the slot to the
// first waiter, which writes everything that waited (up to max_batch). Under load each call
// carries the events that arrived during the calls before it, and Redis always has the next
// call queued while Herald answers the last.
class RedisEventRecorder final : public EventRecorder {
 public:
  RedisEventRecorder(redis::Client& client, const Clock& clock, RecorderConfig config,
                     metrics::Registry* registry)
      : client_(client), clock_(clock), config_(config) {
    if (registry != nullptr) {
      batch_size_ = &metrics::BuildHistogram()
                         .Name("herald_ingest_batch_size")
                         .Help("Webhook events written per Redis script call (group commit).")
                         .Buckets(metrics::ExponentialBuckets(1, 2, 8))
                         .Register(*registry)
                         .Add({});
    }
  }

  Op<bool> Applied(std::string tenant, std::string idempotency_key) override {
    redis::Command command{"EXISTS", StrCat(TenantPrefix(tenant), "ev:", idempotency_key)};
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply, co_await client_.Exec(std::move(command)));
    if (reply.is_error()) co_return reply.ToStatus();
    if (reply.type() != redis::Reply::Type::kInteger) {
      co_return absl::InternalError(StrCat("EXISTS: unexpected reply ", reply.DebugString()));
    }
    co_return reply.integer() == 1;
  }

  Op<RecordOutcome> Record(std::string tenant, std::string idempotency_key,
                           const WebhookEvent& e) override {
    // A message purchase that names no chat message (its link missing from the payload) is
    // applied to the fan's data but cannot be credited to any mass message: reconciliation's
    // read of the message's buyers finds it.
    const bool unplaced =
        (e.type == WebhookEventType::kPpvUnlocked || e.type == WebhookEventType::kTransaction) &&
        IsMessagePurchase(e) && e.chat_message_id == 0;
    absl::StatusOr<RecordOutcome> outcome =
        co_await Apply(std::move(tenant), std::move(idempotency_key), e);
    if (unplaced && outcome.ok() && *outcome == RecordOutcome::kApplied) {
      co_return RecordOutcome::kUnattributed;
    }
    co_return outcome;
  }

 private:
  // The event's outcome in its batch, which this call commits or waits for.
  Op<RecordOutcome> Apply(std::string tenant, std::string idempotency_key, const WebhookEvent& e) {
    auto me = std::make_shared<Waiter>();
    me->args.reserve(kFieldsPerEvent);
    AppendEventArgs(me->args, std::move(idempotency_key), e);
    if (config_.max_batch <= 1) {  // no group commit
      std::vector<std::shared_ptr<Waiter>> alone;
      alone.push_back(std::move(me));
      std::vector<absl::StatusOr<RecordOutcome>> outcome = co_await Write(tenant, alone);
      co_return std::move(outcome[0]);
    }
    bool lead = false;
    {
      std::lock_guard lock(mu_);
      Lane& lane = lanes_[tenant];
      if (lane.in_flight < config_.max_batches_in_flight) {
        ++lane.in_flight;
        lead = true;
      } else {
        lane.waiting.push_back(me);
      }
    }
    if (!lead) {
      co_await Wait(*me);
      if (me->result) co_return *std::move(me->result);
      // Woken to commit the next batch, which starts with this event.
    }
    co_return co_await Commit(std::move(tenant), std::move(me));
  }

  static constexpr size_t kFieldsPerEvent = 18;

  struct Waiter {
    std::vector<std::string> args;
    // Set once, under mu_: an outcome, or neither (woken to commit the next batch).
    std::optional<absl::StatusOr<RecordOutcome>> result;
    bool woken = false;
    std::function<void()> resume;  // the suspended Record, once it waits
  };
  struct Lane {
    int in_flight = 0;  // script calls
    std::deque<std::shared_ptr<Waiter>> waiting;
  };

  // Writes `first` and the lane's waiters (up to max_batch), answers them, and passes the lane
  // on. Returns `first`'s outcome.
  Op<RecordOutcome> Commit(std::string tenant, std::shared_ptr<Waiter> first) {
    std::vector<std::shared_ptr<Waiter>> batch = {std::move(first)};
    {
      std::lock_guard lock(mu_);
      Lane& lane = lanes_[tenant];
      while (!lane.waiting.empty() && batch.size() < static_cast<size_t>(config_.max_batch)) {
        batch.push_back(std::move(lane.waiting.front()));
        lane.waiting.pop_front();
      }
    }
    std::vector<absl::StatusOr<RecordOutcome>> outcomes = co_await Write(tenant, batch);

    std::shared_ptr<Waiter> next;
    {
      std::lock_guard lock(mu_);
      auto it = lanes_.find(tenant);
      if (it->second.waiting.empty()) {
        if (--it->second.in_flight == 0) lanes_.erase(it);
      } else {
        next = std::move(it->second.waiting.front());
        it->second.waiting.pop_front();
      }
    }
    // The next batch first, so that Redis has it while this one's senders are answered.
    if (next) Wake(*next, std::nullopt);
    for (size_t i = 1; i < batch.size(); ++i) Wake(*batch[i], std::move(outcomes[i]));
    co_return std::move(outcomes[0]);
  }

  // Writes `batch` in one script call; one outcome each, in order. Moves the events' arguments.
  boost::asio::awaitable<std::vector<absl::StatusOr<RecordOutcome>>> Write(
      const std::string& tenant, std::vector<std::shared_ptr<Waiter>>& batch) {
    if (batch_size_ != nullptr) batch_size_->Observe(static_cast<double>(batch.size()));
    std::vector<std::string> keys = {TenantPrefix(tenant)};
    std::vector<std::string> args;
    args.reserve(6 + batch.size() * kFieldsPerEvent);
    args.push_back(Seconds(config_.dedupe_ttl));
    args.push_back(Seconds(config_.link_ttl));
    args.push_back(StrCat(absl::ToUnixMillis(clock_.Now())));
    args.push_back(StrCat(config_.events_max_len));
    args.push_back(StrCat(config_.platform_fee_percent));
    args.push_back(StrCat(batch.size()));
    for (const auto& w : batch) {
      for (std::string& a : w->args) args.push_back(std::move(a));
    }
    absl::StatusOr<redis::Reply> reply =
        co_await client_.Eval(ApplyScript(), std::move(keys), std::move(args));

    std::vector<absl::StatusOr<RecordOutcome>> outcomes;
    outcomes.reserve(batch.size());
    if (!reply.ok()) {
      outcomes.assign(batch.size(), reply.status());
    } else if (reply->type() != redis::Reply::Type::kArray ||
               reply->elements().size() != batch.size()) {
      outcomes.assign(batch.size(), absl::InternalError(StrCat("apply_event.lua: unexpected reply ",
                                                               reply->DebugString())));
    } else {
      for (const redis::Reply& code : reply->elements()) outcomes.push_back(OutcomeOf(code));
    }

    co_return outcomes;
  }

  // Suspends until Wake(w).
  boost::asio::awaitable<void> Wait(Waiter& w) {
    co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void()>(
        [this, &w](auto handler) {
          std::unique_lock lock(mu_);
          if (w.woken) {
            lock.unlock();
            boost::asio::post(std::move(handler));
            return;
          }
          // std::function needs a copyable target; the completion handler is move-only.
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          w.resume = [shared] { boost::asio::post(std::move(*shared)); };
        },
        boost::asio::use_awaitable);
  }

  // Resumes w's Record (on its own executor) with `result`, or to commit when there is none.
  void Wake(Waiter& w, std::optional<absl::StatusOr<RecordOutcome>> result) {
    std::function<void()> resume;
    {
      std::lock_guard lock(mu_);
      w.result = std::move(result);
      w.woken = true;
      resume = std::move(w.resume);
    }
    if (resume) resume();
  }

  redis::Client& client_;
  const Clock& clock_;
  const RecorderConfig config_;
  metrics::Histogram* batch_size_ = nullptr;
  std::mutex mu_;
  absl::flat_hash_map<std::string, Lane> lanes_;  // guarded by mu_; only tenants with a batch
};

// Reads integers out of replies: a nil (a field never written) is the default the caller gives;
// anything else that is not an integer is an error, kept for status() (a corrupt record is
// reported, never read as 0 cents or fan 0).
class IntReader {
 public:
  explicit IntReader(std::string_view what) : what_(what) {}

  int64_t Get(const redis::Reply& r, int64_t if_nil) {
    if (r.is_nil()) return if_nil;
    absl::StatusOr<int64_t> v = r.AsInteger();
    if (v.ok()) return *v;
    Fail(r.DebugString());
    return if_nil;
  }
  int64_t Parse(std::string_view text) {
    std::optional<int64_t> v = ParseInt<int64_t>(text);
    if (v.has_value()) return *v;
    Fail(StrCat("'", Utf8Prefix(text, 40), "'"));
    return 0;
  }
  const absl::Status& status() const { return status_; }

 private:
  void Fail(std::string_view value) {
    if (status_.ok()) {
      status_ = absl::InternalError(StrCat(what_, ": ", value, " is not an integer"));
    }
  }

  std::string what_;
  absl::Status status_;
};

// The id of the first entry of an XRANGE or XREVRANGE reply that has one.
absl::StatusOr<std::string> FirstEntryId(const redis::Reply& reply) {
  const std::vector<redis::Reply>& entries = reply.elements();
  if (entries.empty() || entries[0].elements().size() != 2) {
    return absl::InternalError(StrCat("stream read: unexpected reply ", reply.DebugString()));
  }
  return std::string(entries[0].elements()[0].str());
}

std::string MessageSuffix(const MessageKey& m) { return StrCat(m.account, ":", m.message_id); }

}  // namespace

std::vector<std::string_view> StreamedEventTypes() { return upstream::AppliedWebhookEventNames(); }

std::unique_ptr<EventRecorder> MakeRedisEventRecorder(redis::Client& client, const Clock& clock,
                                                      RecorderConfig config,
                                                      metrics::Registry* registry) {
  return std::make_unique<RedisEventRecorder>(client, clock, config, registry);
}

Op<std::vector<MessageStats>> MessageAnalytics::Messages(std::string tenant,
                                                         std::vector<MessageKey> messages) {
  const std::string prefix = TenantPrefix(tenant);
  std::vector<redis::Command> commands;
  commands.reserve(messages.size());
  for (const MessageKey& m : messages) {
    commands.push_back(redis::Command{"HMGET", StrCat(prefix, "mm:", MessageSuffix(m)), "sent",
                                      "purchases", "gross", "net", "fee", "total", "pending",
                                      "done", "canceled", "updated_ms", "reconciled", "progress_ms",
                                      "upstream_sent", "viewed"});
  }
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                             co_await client_.ExecBatch(std::move(commands)));
  std::vector<MessageStats> out;
  out.reserve(replies.size());
  for (const redis::Reply& reply : replies) {
    if (reply.is_error()) co_return reply.ToStatus();
    const std::vector<redis::Reply>& f = reply.elements();
    if (f.size() != 14) co_return absl::InternalError("HMGET: unexpected reply");
    IntReader read("a mass message's analytics");
    MessageStats s;
    s.sent = std::max(read.Get(f[0], 0), read.Get(f[12], 0));
    s.viewed = read.Get(f[13], 0);
    s.purchases = read.Get(f[1], 0);
    s.gross_cents = read.Get(f[2], 0);
    s.net_cents = read.Get(f[3], 0);
    s.fee_cents = read.Get(f[4], 0);
    s.total = read.Get(f[5], -1);
    s.pending = read.Get(f[6], -1);
    s.done = read.Get(f[7], 0) == 1;
    s.canceled = read.Get(f[8], 0) == 1;
    s.updated_ms = read.Get(f[9], 0);
    s.reconciled = read.Get(f[10], 0);
    s.progress_ms = read.Get(f[11], 0);
    HERALD_CO_RETURN_IF_ERROR(read.status());
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
  IntReader read("an account's analytics");
  AccountTotals t;
  t.sent = read.Get(f[0], 0);
  t.purchases = read.Get(f[1], 0);
  t.gross_cents = read.Get(f[2], 0);
  t.net_cents = read.Get(f[3], 0);
  t.fee_cents = read.Get(f[4], 0);
  t.reconciled = read.Get(f[5], 0);
  t.subscriptions = read.Get(f[6], 0);
  t.known_fans = read.Get(replies[1], 0);
  HERALD_CO_RETURN_IF_ERROR(read.status());
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
    IntReader read("a mass message's buyers");
    std::map<int64_t, int64_t> spent_by_fan;
    const auto& s = spent.elements();
    for (size_t j = 0; j + 1 < s.size(); j += 2) {
      spent_by_fan[read.Parse(s[j].str())] = read.Get(s[j + 1], 0);
    }
    const auto& t = times.elements();
    for (size_t j = 0; j + 1 < t.size(); j += 2) {
      Buyer b;
      b.account = messages[i].account;
      b.fan_id = read.Parse(t[j].str());
      b.first_purchase_ms = read.Parse(t[j + 1].str());
      b.spent_cents = spent_by_fan[b.fan_id];
      out.push_back(b);
    }
    HERALD_CO_RETURN_IF_ERROR(read.status());
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

boost::asio::awaitable<absl::Status> MessageAnalytics::RecordEngagement(
    std::string tenant, MessageKey message, int64_t sent, int64_t viewed, int64_t now_ms) {
  const std::string key = StrCat(TenantPrefix(tenant), "mm:", MessageSuffix(message));
  redis::Command command{"HSET",   key,    "upstream_sent", sent,
                         "viewed", viewed, "engagement_ms", now_ms};
  absl::StatusOr<redis::Reply> reply = co_await client_.Exec(std::move(command));
  if (!reply.ok()) co_return reply.status();
  if (reply->is_error()) co_return reply->ToStatus();
  co_return absl::OkStatus();
}

Op<EventPage> MessageAnalytics::ReadEvents(std::string tenant, std::string after, int count) {
  const std::string key = StrCat(TenantPrefix(tenant), "events");
  // The page after the cursor, then the oldest entry kept, in one round trip and in that order:
  // a trim that overtook the page's read shows in the oldest read after it (the page is then
  // reported incomplete, at worst, never the other way round).
  std::vector<redis::Command> commands;
  const std::string start = after.empty() ? std::string("-") : StrCat("(", after);
  commands.push_back(redis::Command{"XRANGE", key, start, "+", "COUNT", count});
  commands.push_back(redis::Command{"XRANGE", key, "-", "+", "COUNT", 1});
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                             co_await client_.ExecBatch(std::move(commands)));
  for (const redis::Reply& r : replies) {
    if (r.is_error()) co_return r.ToStatus();
  }
  EventPage page;
  if (!replies[1].elements().empty()) {
    HERALD_CO_ASSIGN_OR_RETURN(page.oldest, FirstEntryId(replies[1]));
  }
  // A field an event has no value for is not written (fan 0, no price).
  IntReader read("an event of the stream");
  for (const redis::Reply& entry : replies[0].elements()) {
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
      if (name == "message") e.message_id = read.Parse(value);
      if (name == "chat") e.chat_message_id = read.Parse(value);
      if (name == "fan") e.fan_id = read.Parse(value);
      if (name == "price") e.price_cents = read.Parse(value);
      if (name == "amount") e.amount_cents = read.Parse(value);
      if (name == "at") e.at_ms = read.Parse(value);
    }
    page.events.push_back(std::move(e));
  }
  HERALD_CO_RETURN_IF_ERROR(read.status());
  co_return page;
}

Op<size_t> MessageAnalytics::CountEventsAfter(std::string tenant, std::string after, size_t limit) {
  const std::string key = StrCat(TenantPrefix(tenant), "events");
  const std::string start = after.empty() ? std::string("-") : StrCat("(", after);
  redis::Command command{"XRANGE", key, start, "+", "COUNT", limit};
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply, co_await client_.Exec(std::move(command)));
  if (reply.is_error()) co_return reply.ToStatus();
  co_return reply.elements().size();
}

Op<std::string> MessageAnalytics::LatestEventCursor(std::string tenant) {
  const std::string key = StrCat(TenantPrefix(tenant), "events");
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                             co_await client_.Exec({"XREVRANGE", key, "+", "-", "COUNT", "1"}));
  if (reply.is_error()) co_return reply.ToStatus();
  if (reply.elements().empty()) co_return std::string("0-0");
  co_return FirstEntryId(reply);
}

}  // namespace herald::webhooks
