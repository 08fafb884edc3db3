#include <array>
#include <memory>
#include <string>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <herald/campaign/service.h>
#include <herald/common/strings.h>
#include <herald/ingest/ingest.h>
#include <herald/metrics/metrics.h>

namespace herald::ingest {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

constexpr std::string_view kPrefix = "/webhooks/";

std::string_view Header(const http::Request& req, std::string_view name) {
  auto it = req.find(name);
  if (it == req.end()) return {};
  return std::string_view(it->value().data(), it->value().size());
}

class TeamDirectory final : public webhooks::EndpointDirectory {
 public:
  explicit TeamDirectory(campaign::Service& service) : service_(service) {}

  webhooks::Op<webhooks::Endpoint> Find(std::string endpoint) override {
    const size_t dot = endpoint.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == endpoint.size()) {
      co_return absl::NotFoundError("unknown webhook endpoint");
    }
    webhooks::Endpoint out{.tenant = endpoint.substr(0, dot), .team = endpoint.substr(dot + 1)};
    auto secrets = co_await service_.TeamWebhookSecrets(out.tenant, out.team);
    if (!secrets.ok()) {
      // A team without a secret has no endpoint, nor one whose sealed secret does not open
      // with the keys this process holds (altered, or copied from another team's record).
      if (absl::IsNotFound(secrets.status()) || absl::IsDataLoss(secrets.status())) {
        co_return absl::NotFoundError("unknown webhook endpoint");
      }
      // One whose secret names a key this process lacks (started without the encryption key
      // it was sealed under, as during a key rotation's rollout) cannot check its events: they
      // are not forgeries, and the sender retries them, on a process with the key perhaps.
      if (absl::IsFailedPrecondition(secrets.status())) {
        co_return absl::UnavailableError(
            StrCat("the webhook secret of team '", out.team, "' of tenant '", out.tenant,
                   "' cannot be opened with this process's encryption keys"));
      }
      co_return secrets.status();
    }
    out.secret = std::move(secrets->first);
    out.previous_secret = std::move(secrets->second);
    co_return out;
  }

 private:
  campaign::Service& service_;
};

// Requests refused before they were events, by status.
class RefusedRequests {
 public:
  explicit RefusedRequests(metrics::Registry& registry) {
    auto& family = metrics::BuildCounter()
                       .Name("herald_webhook_requests_refused_total")
                       .Help(
                           "Requests to the ingest port refused before they were read as an "
                           "event, by HTTP status: 400 not HTTP, 404 not a webhook endpoint's "
                           "path, 405 not a POST, 413 a body over --webhook_max_body_bytes, "
                           "431 headers over 16 KiB, 503 bodies in flight over "
                           "--webhook_max_body_bytes_in_flight.")
                       .LabelNames({"status"})
                       .Register(registry);
    for (size_t i = 0; i < kStatuses.size(); ++i) {
      counters_[i] = &family.Add({{"status", std::to_string(kStatuses[i])}});
    }
  }

  void Count(unsigned status) {
    for (size_t i = 0; i < kStatuses.size(); ++i) {
      if (kStatuses[i] == status) counters_[i]->Increment();
    }
  }

 private:
  static constexpr std::array<unsigned, 6> kStatuses = {400, 404, 405, 413, 431, 503};
  std::array<metrics::Counter*, kStatuses.size()> counters_{};
};

}  // namespace

WebhookServer MakeWebhookServer(http::ServerConfig config, webhooks::Ingest& ingest,
                                metrics::Registry* registry) {
  std::shared_ptr<RefusedRequests> refused;
  if (registry != nullptr) {
    refused = std::make_shared<RefusedRequests>(*registry);
    config.on_refused = [refused](unsigned status) { refused->Count(status); };
  }
  auto handler = [&ingest, refused](http::Request& req) -> asio::awaitable<http::Reply> {
    auto refuse = [&](unsigned status, std::string_view body) {
      if (refused) refused->Count(status);
      return http::Reply{http::MakeResponse(req, status, "text/plain", std::string(body))};
    };
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    // The absolute form (http://host/webhooks/…, as sent to a proxy) names the same path.
    for (std::string_view scheme : {"http://", "https://"}) {
      if (!target.starts_with(scheme)) continue;
      const size_t path = target.find('/', scheme.size());
      target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
    }
    if (!target.starts_with(kPrefix)) co_return refuse(404, "not found\n");
    const std::string_view endpoint = target.substr(kPrefix.size());
    if (endpoint.empty() || endpoint.find('/') != std::string_view::npos) {
      co_return refuse(404, "not found\n");
    }
    if (req.method() != bhttp::verb::post) {
      http::Reply reply = refuse(405, "method not allowed\n");
      reply.response.set(bhttp::field::allow, "POST");
      co_return reply;
    }
    webhooks::IngestRequest request{
        .endpoint = endpoint,
        .content_type = Header(req, "Content-Type"),
        .signature = Header(req, "Signature"),
        .idempotency_key = Header(req, "X-OFAPI-Idempotency-Key"),
        .body = req.body(),
    };
    webhooks::IngestResponse answer = co_await ingest.Handle(request);
    http::Response res =
        http::MakeResponse(req, answer.status, "text/plain", StrCat(answer.message, "\n"));
    if (answer.retry_after_seconds > 0) {
      res.set(bhttp::field::retry_after, std::to_string(answer.retry_after_seconds));
    }
    // What a 401 asks for: the body signed as Signature says (lowercase hex HMAC-SHA256).
    if (answer.status == 401) res.set(bhttp::field::www_authenticate, "Signature");
    co_return http::Reply{std::move(res)};
  };
  return WebhookServer{.config = std::move(config), .handler = std::move(handler)};
}

std::unique_ptr<webhooks::EndpointDirectory> MakeTeamDirectory(campaign::Service& service) {
  return std::make_unique<TeamDirectory>(service);
}

}  // namespace herald::ingest
