// The ingest role's HTTP surface: upstream webhooks on libs/http's server, answered by
// webhooks::Ingest (verify → decode → record).
//
//   POST /webhooks/{endpoint}   a team's events; see webhooks/ingest.h for the answers
//   anything else               404 (405 for another method on /webhooks/…)
#pragma once

#include <memory>

#include <herald/http/server.h>
#include <herald/webhooks/ingest.h>

namespace herald::campaign {
class Service;
}  // namespace herald::campaign

namespace herald::ingest {

// `ingest` must outlive the handler.
http::Handler MakeWebhookHandler(webhooks::Ingest& ingest);

// Endpoint ids ("<tenant>.<team>") resolved to the team's webhook secret through `service`,
// which must outlive the result.
std::unique_ptr<webhooks::EndpointDirectory> MakeTeamDirectory(campaign::Service& service);

}  // namespace herald::ingest
