#include "api_webhooks.h"

#include <algorithm>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <herald/common/strings.h>
#include <herald/upstream_sim/json_writer.h>
#include <herald/upstream_sim/time_format.h>

namespace herald::upstream_sim {
namespace {

namespace json = boost::json;

ApiError NotFound(std::string_view what) {
  return ApiError{404, "not_found", StrCat(what, " not found.")};
}

ApiError MethodNotAllowed() { return ApiError{405, "method_not_allowed", "Method not allowed."}; }

std::string_view View(const json::string& s) { return std::string_view(s.data(), s.size()); }

void WriteWebhook(JsonWriter& w, const WebhookInfo& info) {
  const WebhookEndpointConfig& c = info.config;
  w.BeginObject();
  w.Field("id", info.id);
  w.Field("url", c.url);
  w.Key("events").BeginArray();
  for (int t = 0; t < kEventTypeCount; ++t) {
    if (c.filter.events & EventBit(static_cast<EventType>(t))) {
      w.String(EventName(static_cast<EventType>(t)));
    }
  }
  w.EndArray();
  w.Field("enabled", c.enabled);
  w.Field("has_signing_secret", !c.secret.empty());
  w.Field("created_at", FormatIsoTime(info.created_at));
  w.Field("account_scope", AccountScopeName(c.filter.scope));
  w.Key("account_ids").BeginArray();
  for (const std::string& id : c.filter.account_ids) w.String(id);
  w.EndArray();
  w.EndObject();
}

void WriteRecord(JsonWriter& w, const WebhookDeliveryRecord& r) {
  w.BeginObject();
  w.Field("id", r.id);
  w.Field("delivery_uuid", r.delivery_uuid);
  w.Field("event", EventName(r.event));
  if (r.idempotency_key.empty()) {
    w.NullField("idempotency_key");  // a presence event
  } else {
    w.Field("idempotency_key", r.idempotency_key);
  }
  if (r.status_code) {
    w.Field("status_code", *r.status_code);
  } else {
    w.NullField("status_code");
  }
  w.Field("success", r.success);
  w.Field("attempt", r.attempt);
  w.Field("created_at", FormatIsoTime(r.created_at));
  if (r.redelivery_of.empty()) {
    w.NullField("redelivery_of");
  } else {
    w.Field("redelivery_of", r.redelivery_of);
  }
  w.EndObject();
}

// The caller's managed webhook `id`; 404 for unknown ids and other teams' webhooks.
ApiResult<WebhookInfo> OwnWebhook(const WebhookEmitter& emitter, const WebhookApiRequest& req,
                                  std::string_view id) {
  auto info = emitter.GetEndpoint(id);
  if (!info || !info->config.managed || info->config.team != req.team.id()) {
    return NotFound("Webhook");
  }
  return *std::move(info);
}

bool IsTeamAccount(const WebhookApiRequest& req, std::string_view account_id) {
  const Account* account = req.world.FindAccount(account_id);
  return account != nullptr && account->identity().team_id == req.team.id();
}

ApiResult<std::string> Create(WebhookEmitter& emitter, const WebhookApiRequest& req) {
  auto config = ParseWebhookBody(req.body, nullptr,
                                 [&](std::string_view id) { return IsTeamAccount(req, id); });
  if (!config.ok()) return config.error();
  config.value().team = req.team.id();
  config.value().managed = true;
  auto id = emitter.AddEndpoint(config.value());
  if (!id.ok()) return Unprocessable("invalid_url", ToStd(id.status().message()));
  auto info = emitter.GetEndpoint(*id);
  if (!info) return NotFound("Webhook");
  JsonWriter w;
  WriteWebhook(w, *info);
  return w.Take();
}

ApiResult<std::string> Update(WebhookEmitter& emitter, const WebhookApiRequest& req,
                              const WebhookInfo& current) {
  auto config = ParseWebhookBody(req.body, &current.config,
                                 [&](std::string_view id) { return IsTeamAccount(req, id); });
  if (!config.ok()) return config.error();
  absl::Status st = emitter.UpdateEndpoint(current.id, config.value());
  if (absl::IsNotFound(st)) return NotFound("Webhook");
  if (!st.ok()) return Unprocessable("invalid_url", ToStd(st.message()));
  auto info = emitter.GetEndpoint(current.id);
  if (!info) return NotFound("Webhook");
  JsonWriter w;
  WriteWebhook(w, *info);
  return w.Take();
}

ApiResult<std::string> Deliveries(const WebhookEmitter& emitter, const WebhookApiRequest& req,
                                  std::string_view id) {
  auto param = [&](std::string_view name) -> std::optional<std::string_view> {
    auto it = req.params.find(name);
    if (it == req.params.end()) return std::nullopt;
    return std::string_view(it->second);
  };
  auto limit = ParseIntParam("limit", param("limit"), 1, 100, 20);
  if (!limit.ok()) return limit.error();
  auto offset = ParseIntParam("offset", param("offset"), 0, INT32_MAX, 0);
  if (!offset.ok()) return offset.error();
  auto records = emitter.Deliveries(id, static_cast<size_t>(offset.value()),
                                    static_cast<size_t>(limit.value()));
  if (!records) return NotFound("Webhook");
  JsonWriter w;
  w.BeginArray();
  for (const WebhookDeliveryRecord& r : *records) WriteRecord(w, r);
  w.EndArray();
  return w.Take();
}

ApiResult<std::string> Redeliver(WebhookEmitter& emitter, std::string_view id,
                                 std::string_view delivery_id) {
  auto redelivery = emitter.Redeliver(id, delivery_id);
  if (!redelivery.ok()) {
    const std::string message(ToStd(redelivery.status().message()));
    if (absl::IsNotFound(redelivery.status())) {
      return ApiError{404, "delivery_not_found", "Delivery not found."};
    }
    if (absl::IsFailedPrecondition(redelivery.status())) {
      return Unprocessable("webhook_disabled", "The webhook is paused; enable it to redeliver.");
    }
    return ApiError{503, "backlog_full", message};
  }
  JsonWriter w;
  w.BeginObject().Field("redelivery_id", *redelivery).EndObject();
  return w.Take();
}

}  // namespace

ApiResult<WebhookEndpointConfig> ParseWebhookBody(
    std::string_view body, const WebhookEndpointConfig* current,
    const std::function<bool(std::string_view)>& is_team_account) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec) return ApiError{400, "invalid_json", StrCat("Malformed JSON body: ", ec.message())};
  if (!root.is_object()) return Unprocessable("invalid_body", "The body must be a JSON object.");
  const json::object& o = root.as_object();
  WebhookEndpointConfig config;
  if (current != nullptr) config = *current;

  const json::value* url = o.if_contains("endpoint_url");
  if (url != nullptr || current == nullptr) {
    const std::string_view given =
        url != nullptr && url->is_string() ? View(url->as_string()) : std::string_view();
    const bool http = given.starts_with("http://") && given.size() > 7;
    const bool https = given.starts_with("https://") && given.size() > 8;
    if (!http && !https) {
      return Unprocessable("invalid_url", "endpoint_url must be an http:// or https:// URL.");
    }
    config.url = std::string(View(url->as_string()));
  }

  const json::value* events = o.if_contains("events");
  if (events != nullptr || current == nullptr) {
    if (events == nullptr || !events->is_array() || events->as_array().empty()) {
      return Unprocessable("invalid_events", "events must be a non-empty array of event names.");
    }
    uint32_t mask = 0;
    for (const json::value& e : events->as_array()) {
      std::optional<EventType> type;
      if (e.is_string()) type = ParseEventName(View(e.as_string()));
      if (!type) {
        return Unprocessable(
            "invalid_events",
            StrCat("Unknown event ", e.is_string() ? View(e.as_string()) : std::string_view("?"),
                   "; see GET /api/webhooks/events."));
      }
      mask |= EventBit(*type);
    }
    config.filter.events = mask;
  }

  const json::value* scope = o.if_contains("account_scope");
  if (scope != nullptr || current == nullptr) {
    std::optional<AccountScope> parsed;
    if (scope != nullptr && scope->is_string())
      parsed = ParseAccountScope(View(scope->as_string()));
    if (!parsed) {
      return Unprocessable("invalid_account_scope",
                           "account_scope must be global, inclusive or exclusive.");
    }
    config.filter.scope = *parsed;
  }

  const json::value* ids = o.if_contains("account_ids");
  if (ids != nullptr && !ids->is_null()) {
    if (!ids->is_array()) {
      return Unprocessable("invalid_account_ids", "account_ids must be an array of account ids.");
    }
    std::vector<std::string> parsed;
    for (const json::value& id : ids->as_array()) {
      if (!id.is_string() || !is_team_account(View(id.as_string()))) {
        return Unprocessable("invalid_account_ids",
                             "account_ids must name accounts of the API key's team.");
      }
      parsed.push_back(std::string(View(id.as_string())));
    }
    std::sort(parsed.begin(), parsed.end());
    parsed.erase(std::unique(parsed.begin(), parsed.end()), parsed.end());
    config.filter.account_ids = std::move(parsed);
  }
  if (config.filter.scope == AccountScope::kGlobal) {
    config.filter.account_ids.clear();
  } else if (config.filter.account_ids.empty()) {
    return Unprocessable("invalid_account_ids",
                         "account_ids is required unless account_scope is global.");
  }

  if (const json::value* secret = o.if_contains("signing_secret"); secret != nullptr) {
    if (secret->is_null()) {
      config.secret.clear();
    } else if (secret->is_string()) {
      config.secret = std::string(View(secret->as_string()));
    } else {
      return Unprocessable("invalid_signing_secret", "signing_secret must be a string.");
    }
  }

  if (const json::value* enabled = o.if_contains("enabled"); enabled != nullptr) {
    if (!enabled->is_bool()) return Unprocessable("invalid_enabled", "enabled must be a boolean.");
    config.enabled = enabled->as_bool();
  }
  return config;
}

ApiResult<std::string> HandleWebhookApi(WebhookEmitter& emitter, const WebhookApiRequest& req) {
  const std::vector<std::string>& p = req.path;
  const std::string_view m = req.method;
  if (p.empty()) {
    if (m == "GET") {
      JsonWriter w;
      w.BeginArray();
      for (const WebhookInfo& info : emitter.ManagedEndpoints(req.team.id())) {
        WriteWebhook(w, info);
      }
      w.EndArray();
      return w.Take();
    }
    if (m == "POST") return Create(emitter, req);
    return MethodNotAllowed();
  }
  // Webhook ids are "wh_…", so "events" and event names never clash with them.
  if (p.size() == 1 && p[0] == "events") {
    if (m != "GET") return MethodNotAllowed();
    JsonWriter w;
    w.BeginArray();
    for (int t = 0; t < kEventTypeCount; ++t) {
      const auto type = static_cast<EventType>(t);
      w.BeginObject();
      w.Field("value", EventName(type));
      w.Field("description", EventDescription(type));
      w.EndObject();
    }
    w.EndArray();
    return w.Take();
  }
  if (p.size() == 2 && p[1] == "example-payload") {
    const std::optional<EventType> type = ParseEventName(p[0]);
    if (!type) return ApiError{404, "event_not_found", StrCat("Unknown event type ", p[0], ".")};
    if (m != "GET") return MethodNotAllowed();
    return ExampleWebhookBody(*type);
  }
  auto own = OwnWebhook(emitter, req, p[0]);
  if (!own.ok()) return own.error();
  if (p.size() == 1) {
    if (m == "GET") {
      JsonWriter w;
      WriteWebhook(w, own.value());
      return w.Take();
    }
    if (m == "PUT") return Update(emitter, req, own.value());
    if (m == "DELETE") {
      if (!emitter.RemoveEndpoint(p[0])) return NotFound("Webhook");
      return std::string(R"({"success":true})");
    }
    return MethodNotAllowed();
  }
  if (p.size() == 2 && p[1] == "deliveries") {
    return m == "GET" ? Deliveries(emitter, req, p[0]) : ApiResult<std::string>(MethodNotAllowed());
  }
  if (p.size() == 4 && p[1] == "deliveries" && p[3] == "redeliver") {
    return m == "POST" ? Redeliver(emitter, p[0], p[2])
                       : ApiResult<std::string>(MethodNotAllowed());
  }
  return NotFound("Endpoint");
}

}  // namespace herald::upstream_sim
