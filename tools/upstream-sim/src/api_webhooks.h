// The team-level webhook management API (/api/webhooks/...), behind the authentication, rate
// limit and credits of api.cc, which routes every /api/webhooks request here.
//
//   GET    /api/webhooks                                        the team's webhooks
//   POST   /api/webhooks                                        create
//   GET    /api/webhooks/events                                 event catalogue
//   GET    /api/webhooks/{event}/example-payload                example delivery body
//   GET    /api/webhooks/{id}                                   one webhook
//   PUT    /api/webhooks/{id}                                   update (absent fields kept)
//   DELETE /api/webhooks/{id}                                   {success: true}
//   GET    /api/webhooks/{id}/deliveries?limit=&offset=         attempts, newest first
//   POST   /api/webhooks/{id}/deliveries/{delivery}/redeliver   {redelivery_id}
//
// A webhook id of another team is 404 `not_found`, exactly like an unknown one.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <herald/upstream_sim/model.h>
#include <herald/upstream_sim/validation.h>
#include <herald/upstream_sim/webhooks.h>

namespace herald::upstream_sim {

struct WebhookApiRequest {
  std::string_view method;
  std::vector<std::string> path;  // segments after /api/webhooks
  const std::map<std::string, std::string, std::less<>>& params;
  std::string_view body;
  const World& world;
  const Team& team;
};

// The envelope's `data` on success; the error otherwise.
ApiResult<std::string> HandleWebhookApi(WebhookEmitter& emitter, const WebhookApiRequest& request);

// Parses and checks a create (`current` null) or update body into the webhook's configuration
// (an update starts from `current`: absent fields are kept; `enabled` may be set by either).
// `is_team_account` tells whether an account id belongs to the caller's team. Codes: 400
// `invalid_json`; 422 `invalid_body`, `invalid_url`, `invalid_events`, `invalid_account_scope`,
// `invalid_account_ids`, `invalid_signing_secret`, `invalid_enabled`.
ApiResult<WebhookEndpointConfig> ParseWebhookBody(
    std::string_view body, const WebhookEndpointConfig* current,
    const std::function<bool(std::string_view)>& is_team_account);

}  // namespace herald::upstream_sim
