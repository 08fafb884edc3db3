#include <herald/common/strings.h>
#include <herald/upstream_sim/json_writer.h>
#include <herald/upstream_sim/ledger.h>
#include <herald/upstream_sim/money.h>
#include <herald/upstream_sim/time_format.h>

namespace herald::upstream_sim {
namespace {

std::string_view MessageState(const MassMessage& m, const QueueStatus& s) {
  if (m.canceled) return "canceled";
  if (m.save_for_later) return "saved";
  if (!s.started) return "scheduled";
  if (!s.done) return "sending";
  return "done";
}

void WriteCounters(JsonWriter& w, const WebhookCounters& c) {
  w.BeginObject();
  w.Field("events", c.events.load());
  w.Field("attempts", c.attempts.load());
  w.Field("successes", c.successes.load());
  w.Field("failures", c.failures.load());
  w.Field("duplicates", c.duplicates.load());
  w.Field("dropped", c.dropped.load());
  w.Field("gave_up", c.gave_up.load());
  w.EndObject();
}

void WriteTotals(JsonWriter& w, const DeliveryTotals& t) {
  w.BeginObject();
  w.Field("events", t.events.load());
  w.Field("attempts", t.attempts.load());
  w.Field("successes", t.successes.load());
  w.Field("failures", t.failures.load());
  w.Field("duplicates", t.duplicates.load());
  w.Field("dropped", t.dropped.load());
  w.Field("gave_up", t.gave_up.load());
  w.EndObject();
}

void WriteMoney(JsonWriter& w, std::string_view prefix, int64_t cents) {
  w.Field(StrCat(prefix, "_cents"), cents);
  w.Field(prefix, FormatDecimal(cents));
}

}  // namespace

std::string RenderLedger(const World& world, const LedgerQuery& query, absl::Time now,
                         const Behavior& behavior, const WebhookEmitter* emitter) {
  JsonWriter w;
  w.BeginObject();
  w.Field("generated_at", FormatIsoTime(now));
  int64_t total_messages = 0, total_recipients = 0, total_sent = 0, total_purchases = 0,
          total_revenue = 0;
  w.Key("accounts").BeginArray();
  for (const auto& account_ptr : world.accounts()) {
    const Account& account = *account_ptr;
    const AccountIdentity& id = account.identity();
    if (!query.account.empty() && id.id != query.account) continue;
    if (!query.team.empty() && id.team_id != query.team) continue;
    absl::MutexLock lock(&account.mu);
    if (!query.all && query.account.empty() && account.messages.empty() &&
        id.webhooks.events.load() == 0) {
      continue;
    }
    int64_t messages = 0, recipients = 0, sent = 0, purchases = 0, revenue = 0;
    w.BeginObject();
    w.Field("account_id", id.id);
    w.Field("team_id", id.team_id);
    w.Field("fans", static_cast<int64_t>(account.fans.size()));
    w.Key("mass_messages").BeginArray();
    for (const auto& [message_id, message] : account.messages) {
      const MassMessage& m = *message;
      const QueueStatus s = ComputeQueueStatus(m, now, behavior.unsend_window);
      ++messages;
      recipients += static_cast<int64_t>(m.recipients.size());
      sent += m.sent;
      purchases += static_cast<int64_t>(m.purchases.size());
      revenue += m.revenue_cents;
      w.BeginObject();
      w.Field("id", m.id);
      w.Field("state", MessageState(m, s));
      w.Field("created_at", FormatIsoTime(m.created_at));
      w.Field("start_at", FormatIsoTime(m.start_at));
      w.Field("text", m.content->text);
      WriteMoney(w, "price", m.content->price_cents);
      w.Key("media").BeginArray();
      for (const MediaItem& item : m.content->media) w.String(item.ref);
      w.EndArray();
      w.Field("recipients", static_cast<int64_t>(m.recipients.size()));
      w.Field("sent", m.sent);
      w.Field("viewed", m.viewed);
      w.Field("purchases", static_cast<int64_t>(m.purchases.size()));
      w.Field("purchases_pending", m.purchases_pending);
      WriteMoney(w, "revenue", m.revenue_cents);
      w.Field("updates", m.updates);
      if (m.canceled) {
        w.Field("canceled_at", FormatIsoTime(m.canceled_at));
      } else {
        w.NullField("canceled_at");
      }
      if (query.recipients) {
        w.Key("recipient_ids").BeginArray();
        for (const auto fan : m.recipients) w.UInt(account.fans[fan].id);
        w.EndArray();
      }
      if (query.purchases) {
        w.Key("buyers").BeginArray();
        for (const Purchase& p : m.purchases) {
          w.BeginObject();
          w.Field("fan_id", account.fans[m.recipients[p.recipient]].id);
          w.Field("chat_message_id", m.first_chat_message_id + p.recipient);
          w.Field("amount_cents", p.amount_cents);
          w.Field("at", FormatIsoTime(p.at));
          w.EndObject();
        }
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray();
    w.Key("totals").BeginObject();
    w.Field("mass_messages", messages);
    w.Field("recipients", recipients);
    w.Field("sent", sent);
    w.Field("purchases", purchases);
    WriteMoney(w, "revenue", revenue);
    w.EndObject();
    w.Key("webhooks");
    WriteCounters(w, id.webhooks);
    w.EndObject();
    total_messages += messages;
    total_recipients += recipients;
    total_sent += sent;
    total_purchases += purchases;
    total_revenue += revenue;
  }
  w.EndArray();
  w.Key("totals").BeginObject();
  w.Field("mass_messages", total_messages);
  w.Field("recipients", total_recipients);
  w.Field("sent", total_sent);
  w.Field("purchases", total_purchases);
  WriteMoney(w, "revenue", total_revenue);
  w.EndObject();
  w.Key("webhooks").BeginObject();
  if (emitter != nullptr) {
    w.Field("backlog", emitter->backlog());
    w.Field("in_flight", emitter->in_flight());
    w.Key("by_event").BeginObject();
    for (int t = 0; t < kEventTypeCount; ++t) {
      w.Key(EventName(static_cast<EventType>(t)));
      WriteTotals(w, emitter->totals()[static_cast<size_t>(t)]);
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return w.Take();
}

std::string RenderStats(SimState& state, const WebhookEmitter* emitter, absl::Time started) {
  const std::shared_ptr<World> world = state.world();
  const RequestCounters& r = state.counters();
  const DeliveryCounters& d = state.engine().counters();
  int64_t fans = 0;
  for (const auto& account : world->accounts()) {
    absl::MutexLock lock(&account->mu);
    fans += static_cast<int64_t>(account->fans.size());
  }
  JsonWriter w;
  w.BeginObject();
  w.Key("uptime_seconds").Double(absl::ToDoubleSeconds(state.clock().Now() - started));
  w.Field("teams", static_cast<int64_t>(world->teams().size()));
  w.Field("accounts", static_cast<int64_t>(world->accounts().size()));
  w.Field("fans", fans);
  w.Key("requests").BeginObject();
  w.Field("total", r.requests.load());
  w.Field("in_flight", r.in_flight.load());
  w.Field("2xx", r.status_2xx.load());
  w.Field("400", r.status_400.load());
  w.Field("401", r.status_401.load());
  w.Field("402", r.status_402.load());
  w.Field("404", r.status_404.load());
  w.Field("422", r.status_422.load());
  w.Field("429", r.status_429.load());
  w.Field("other", r.status_other.load());
  w.EndObject();
  w.Key("faults").BeginObject();
  w.Field("errors", r.fault_errors.load());
  w.Field("resets", r.fault_resets.load());
  w.Field("lost_responses", r.fault_lost_responses.load());
  w.Field("delayed", r.fault_delayed.load());
  w.EndObject();
  w.Field("mass_messages_created", r.mass_messages_created.load());
  w.Field("uploads", r.uploads.load());
  w.Field("lists_created", r.lists_created.load());
  w.Field("lists_deleted", r.lists_deleted.load());
  w.Key("delivery").BeginObject();
  w.Field("recipients_delivered", d.recipients_delivered.load());
  w.Field("queues_finished", d.queues_finished.load());
  w.Field("purchases", d.purchases.load());
  WriteMoney(w, "revenue", d.revenue_cents.load());
  w.Field("subscribers_added", d.subscribers_added.load());
  w.EndObject();
  w.Key("webhooks").BeginObject();
  if (emitter != nullptr) {
    DeliveryTotals sum;
    for (const DeliveryTotals& t : emitter->totals()) {
      sum.events += t.events.load();
      sum.attempts += t.attempts.load();
      sum.successes += t.successes.load();
      sum.failures += t.failures.load();
      sum.duplicates += t.duplicates.load();
      sum.dropped += t.dropped.load();
      sum.gave_up += t.gave_up.load();
    }
    w.Field("backlog", emitter->backlog());
    w.Field("in_flight", emitter->in_flight());
    w.Key("totals");
    WriteTotals(w, sum);
  }
  w.EndObject();
  w.Key("teams").BeginArray();
  const absl::Time now = state.clock().Now();
  for (const auto& team : world->teams()) {
    const Team::Counters c = team->counters();
    w.BeginObject();
    w.Field("id", team->id());
    w.Field("rate_limit_per_minute", team->limit_per_minute());
    w.Field("remaining_minute", team->remaining(now));
    w.Field("credits_balance", team->balance());
    w.Field("credits_spent", c.credits_spent);
    w.Field("requests", c.requests);
    w.Field("rate_limited", c.rate_limited);
    w.Field("no_credits", c.no_credits);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

}  // namespace herald::upstream_sim

namespace herald::upstream_sim {
namespace {

// Prometheus text exposition, written family by family.
class Exposition {
 public:
  Exposition& Family(std::string_view name, std::string_view type, std::string_view help) {
    StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    return *this;
  }
  Exposition& Sample(std::string_view name, int64_t value) {
    StrAppend(&out_, name, " ", value, "\n");
    return *this;
  }
  Exposition& Sample(std::string_view name, std::string_view label, std::string_view label_value,
                     int64_t value) {
    StrAppend(&out_, name, "{", label, "=\"");
    for (const char c : label_value) {
      if (c == '\\' || c == '"') out_.push_back('\\');
      if (c == '\n') {
        out_ += "\\n";
      } else {
        out_.push_back(c);
      }
    }
    StrAppend(&out_, "\"} ", value, "\n");
    return *this;
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string RenderMetrics(SimState& state, const WebhookEmitter* emitter) {
  const std::shared_ptr<World> world = state.world();
  const RequestCounters& r = state.counters();
  const DeliveryCounters& d = state.engine().counters();
  Exposition e;
  constexpr std::string_view kRequests = "upstream_sim_requests_total";
  e.Family(kRequests, "counter", "API requests answered, by HTTP status (2xx together).")
      .Sample(kRequests, "code", "2xx", r.status_2xx.load())
      .Sample(kRequests, "code", "400", r.status_400.load())
      .Sample(kRequests, "code", "401", r.status_401.load())
      .Sample(kRequests, "code", "402", r.status_402.load())
      .Sample(kRequests, "code", "404", r.status_404.load())
      .Sample(kRequests, "code", "422", r.status_422.load())
      .Sample(kRequests, "code", "429", r.status_429.load())
      .Sample(kRequests, "code", "other", r.status_other.load());
  constexpr std::string_view kFaults = "upstream_sim_faults_total";
  e.Family(kFaults, "counter", "Faults injected by the fault rules, by kind.")
      .Sample(kFaults, "kind", "error", r.fault_errors.load())
      .Sample(kFaults, "kind", "reset", r.fault_resets.load())
      .Sample(kFaults, "kind", "lost_response", r.fault_lost_responses.load())
      .Sample(kFaults, "kind", "delay", r.fault_delayed.load());
  e.Family("upstream_sim_mass_messages_created_total", "counter", "Mass messages created.")
      .Sample("upstream_sim_mass_messages_created_total", r.mass_messages_created.load());
  e.Family("upstream_sim_recipients_delivered_total", "counter",
           "Mass-message copies delivered to fans.")
      .Sample("upstream_sim_recipients_delivered_total", d.recipients_delivered.load());
  e.Family("upstream_sim_purchases_total", "counter", "Priced messages fans bought.")
      .Sample("upstream_sim_purchases_total", d.purchases.load());
  e.Family("upstream_sim_revenue_cents_total", "counter", "What fans paid, in cents.")
      .Sample("upstream_sim_revenue_cents_total", d.revenue_cents.load());
  if (emitter != nullptr) {
    constexpr std::string_view kEvents = "upstream_sim_webhook_events_total";
    constexpr std::string_view kAttempts = "upstream_sim_webhook_attempts_total";
    e.Family(kEvents, "counter", "Webhook events emitted, by event type.");
    const auto& totals = emitter->totals();
    int64_t successes = 0;
    int64_t failures = 0;
    int64_t dropped = 0;
    for (int i = 0; i < kEventTypeCount; ++i) {
      const DeliveryTotals& t = totals[static_cast<size_t>(i)];
      e.Sample(kEvents, "event", EventName(static_cast<EventType>(i)), t.events.load());
      successes += t.successes.load();
      failures += t.failures.load();
      dropped += t.dropped.load() + t.gave_up.load();
    }
    e.Family(kAttempts, "counter", "Webhook delivery attempts, by result.")
        .Sample(kAttempts, "result", "success", successes)
        .Sample(kAttempts, "result", "failure", failures);
    e.Family("upstream_sim_webhook_events_lost_total", "counter",
             "Webhook events never delivered: dropped by a full backlog or given up on.")
        .Sample("upstream_sim_webhook_events_lost_total", dropped);
    e.Family("upstream_sim_webhook_backlog", "gauge", "Webhook events waiting to be sent.")
        .Sample("upstream_sim_webhook_backlog", static_cast<int64_t>(emitter->backlog()));
  }
  const absl::Time now = state.clock().Now();
  constexpr std::string_view kLimit = "upstream_sim_team_rate_limit_per_minute";
  constexpr std::string_view kRemaining = "upstream_sim_team_rate_limit_remaining";
  constexpr std::string_view kCredits = "upstream_sim_team_credits_balance";
  constexpr std::string_view kLimited = "upstream_sim_team_rate_limited_total";
  e.Family(kLimit, "gauge", "Each team's requests allowed per minute.");
  for (const auto& team : world->teams())
    e.Sample(kLimit, "team", team->id(), team->limit_per_minute());
  e.Family(kRemaining, "gauge", "Requests left in each team's current minute.");
  for (const auto& team : world->teams())
    e.Sample(kRemaining, "team", team->id(), team->remaining(now));
  e.Family(kCredits, "gauge", "Each team's credit balance.");
  for (const auto& team : world->teams()) e.Sample(kCredits, "team", team->id(), team->balance());
  e.Family(kLimited, "counter", "Requests answered 429 for each team's rate limit.");
  for (const auto& team : world->teams()) {
    e.Sample(kLimited, "team", team->id(), team->counters().rate_limited);
  }
  return e.Take();
}

}  // namespace herald::upstream_sim
