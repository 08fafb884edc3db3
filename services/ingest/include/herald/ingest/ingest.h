// The ingest role's HTTP surface: upstream webhooks on libs/http's server, answered by
// webhooks::Ingest (verify → decode → record).
//
//   POST /webhooks/{endpoint}   a team's events; see webhooks/ingest.h for the answers
//   anything else               404 (405 for another method on /webhooks/…)
//
// Requests refused before they are events (those 404s and 405s, and the HTTP server's own 400,
// 413 and 431) are counted in herald_webhook_requests_refused_total{status}: the sender sees the
// status, and this is what an operator sees of a misconfigured sender or a scan.
#pragma once

#include <memory>

#include <herald/http/server.h>
#include <herald/webhooks/ingest.h>

namespace herald::metrics {
class Registry;
}  // namespace herald::metrics

namespace herald::campaign {
class Service;
}  // namespace herald::campaign

namespace herald::ingest {

// The ingest port's server: `config` with the refusals of the server itself counted, and the
// handler. `ingest` must outlive the handler; `registry` (null: nothing counted) the server.
struct WebhookServer {
  http::ServerConfig config;
  http::Handler handler;
};
WebhookServer MakeWebhookServer(http::ServerConfig config, webhooks::Ingest& ingest,
                                metrics::Registry* registry);

// Endpoint ids ("<tenant>.<team>") resolved to the team's webhook secret through `service`,
// which must outlive the result.
std::unique_ptr<webhooks::EndpointDirectory> MakeTeamDirectory(campaign::Service& service);

}  // namespace herald::ingest
