// Ground truth for tests and benchmarks: what the simulated upstream really did, independent
// of what any client saw (a response lost to a fault still shows up here).
//
// GET /_sim/ledger renders, per account: every mass message created (so duplicate sends are
// visible), its recipients, sent and viewed counts, purchases and revenue (cents and a decimal
// string), and the account's webhook delivery outcomes; plus totals and webhook outcomes by
// event type. GET /_sim/stats renders process-wide counters.
#pragma once

#include <string>

#include <absl/time/time.h>

#include <herald/upstream_sim/sim_state.h>
#include <herald/upstream_sim/webhooks.h>

namespace herald::upstream_sim {

struct LedgerQuery {
  std::string account;      // only this account
  std::string team;         // only this team's accounts
  bool purchases = false;   // list every purchase (fan, amount, time, chat message id)
  bool recipients = false;  // list every message's recipients (fan ids)
  bool all = false;         // include accounts without messages or webhook events
};

// Takes each account's lock in turn.
std::string RenderLedger(const World& world, const LedgerQuery& query, absl::Time now,
                         const Behavior& behavior, const WebhookEmitter* emitter);

std::string RenderStats(SimState& state, const WebhookEmitter* emitter, absl::Time started);

// The same counters in the Prometheus text format (GET /metrics), for dashboards of a
// development stack: requests by status, injected faults, deliveries, purchases, webhooks, and
// each team's rate limit and credits.
std::string RenderMetrics(SimState& state, const WebhookEmitter* emitter);

}  // namespace herald::upstream_sim
