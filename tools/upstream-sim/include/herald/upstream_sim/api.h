// The simulated REST API (/api/...): authentication, the per-team minute limit, credits, the
// vendor's envelope and headers, and every endpoint Herald's client knows. Pure
// request -> response: the HTTP server owns sockets and fault injection, so this layer is
// tested without either.
//
// Cross-cutting behaviour:
//   - `Authorization: Bearer <key>`; a missing or unknown key is 401 with the vendor's body.
//   - Every authenticated request counts against its team's fixed 60-second window; over the
//     limit it is 429 with `Retry-After` (whole seconds until the window resets) and nothing is
//     charged.
//   - Credits: 1 per successful call, uploads 3 per started MB, status polls free; errors are
//     not charged. A team short of credits gets 402.
//   - A key of one team addressing another team's account gets 404 `account_not_found`, the
//     same as an unknown account, so account ids of other teams are not disclosed.
//   - Success bodies are {"data": …, "_meta": {…}} (plus "_pagination" where the endpoint
//     paginates), except the flat media upload bodies; errors are {"error", "code"}.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <herald/upstream_sim/sim_state.h>
#include <herald/upstream_sim/webhooks.h>

namespace herald::upstream_sim {

struct ApiRequest {
  std::string method;  // upper case
  std::string target;  // origin form: /api/...?query
  std::string authorization;
  std::string content_type;
  std::string host;  // Host header, for absolute links (next_page, polling_url)
  std::string body;
};

struct ApiResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // JSON
};

class Api {
 public:
  // `state` (and `webhooks`, when given) must outlive the API. `public_url` (e.g.
  // "http://sim:8080") prefixes absolute links; empty: "http://" + the request's Host header.
  // `webhooks` serves the team-level /api/webhooks management API; null: those paths are 404.
  explicit Api(SimState& state, std::string public_url = "", WebhookEmitter* webhooks = nullptr)
      : state_(state), public_url_(std::move(public_url)), webhooks_(webhooks) {}

  // Thread-safe; takes at most one account lock and one team lock, one after the other.
  ApiResponse Handle(const ApiRequest& request);

  // The id of the team `authorization` ("Bearer <key>") belongs to; empty when none.
  std::string TeamOf(std::string_view authorization) const;

 private:
  SimState& state_;
  const std::string public_url_;
  WebhookEmitter* const webhooks_;
};

// The vendor's 401 body.
inline constexpr std::string_view kUnauthorizedBody =
    R"({"error":"Unauthorized. Go to https://app.onlyfansapi.com/api-keys to get your API key."})";

}  // namespace herald::upstream_sim
