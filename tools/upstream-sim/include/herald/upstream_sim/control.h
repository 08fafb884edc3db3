// The simulator's control endpoints under /_sim/. They need no API key: they are meant for
// local use by tests, benchmarks and developers, which is why the simulator listens on
// 127.0.0.1 by default. Do not expose them.
//
//   GET    /_sim/health                      {"ok": true}
//   GET    /_sim/teams[?accounts=false]      teams, API keys, limits, credits, accounts, lists
//   POST   /_sim/teams/{team}                {"credits": n | "add_credits": n,
//                                             "rate_limit_per_minute": n}
//   GET    /_sim/faults                      active fault rules
//   POST   /_sim/faults                      add rule(s) (see faults.h)
//   DELETE /_sim/faults[?team=t]             remove all rules, or one team's
//   GET    /_sim/webhooks                    endpoints with delivery counters
//   POST   /_sim/webhooks                    {"url", "secret"?, "team"?} -> {"id"}
//   DELETE /_sim/webhooks[/{id}]             remove all endpoints, or one
//   GET    /_sim/behavior                    behaviour settings (see config.h)
//   POST   /_sim/behavior                    change some of them
//   GET    /_sim/ledger[?account=&team=&purchases=true&all=true]
//   GET    /_sim/stats                       counters
//   POST   /_sim/subscribers                 {"account": id, "count": n} new subscribers now
//   POST   /_sim/accounts/{id}/events        {"event": "accounts.…"} emit that account event now
//                                             -> {"event", "account_id", "idempotency_key"}
//   POST   /_sim/accounts/{id}/media/spend   every unused upload of the account is used up, as
//                                             if a post outside the API had taken it -> {"spent"}
//   POST   /_sim/tick                        run a delivery pass now
//   POST   /_sim/reset                       rebuild the world from the seed
#pragma once

#include <string_view>

#include <absl/time/time.h>

#include <herald/upstream_sim/api.h>
#include <herald/upstream_sim/sim_state.h>
#include <herald/upstream_sim/webhooks.h>

namespace herald::upstream_sim {

class Control {
 public:
  // Everything must outlive the control handler.
  Control(SimState& state, WebhookEmitter& emitter, absl::Time started)
      : state_(state), emitter_(emitter), started_(started) {}

  // Thread-safe.
  ApiResponse Handle(const ApiRequest& request);

 private:
  // POST /_sim/accounts/{account_id}/events: emits an accounts.* event or a fan's activity.
  // 404 account_not_found or fan_not_found, 400 invalid_json, 422 invalid_event (neither kind)
  // or invalid_field/invalid_fan/invalid_amount/invalid_text/invalid_message_id; nothing is
  // emitted on an error.
  ApiResponse EmitEvent(std::string_view account_id, std::string_view body, absl::Time now);
  // POST /_sim/accounts/{account_id}/media/spend: 404 account_not_found.
  ApiResponse SpendMedia(std::string_view account_id);

  SimState& state_;
  WebhookEmitter& emitter_;
  const absl::Time started_;
};

}  // namespace herald::upstream_sim
