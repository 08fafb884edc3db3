#include <limits>
#include <map>
#include <variant>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>

#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/upstream_sim/control.h>
#include <herald/upstream_sim/json_writer.h>
#include <herald/upstream_sim/ledger.h>

namespace herald::upstream_sim {
namespace {

namespace json = boost::json;

ApiResponse Json(int status, std::string body) {
  ApiResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

ApiResponse Error(int status, std::string_view code, std::string_view message) {
  JsonWriter w;
  w.BeginObject().Field("error", message).Field("code", code).EndObject();
  return Json(status, w.Take());
}

ApiResponse Ok() { return Json(200, R"({"ok":true})"); }

std::optional<json::object> ParseObject(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::optional<int64_t> IntField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->as_double());
  return std::nullopt;
}

std::string StringField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr || !v->is_string()) return "";
  return std::string(v->as_string().data(), v->as_string().size());
}

bool Truthy(const std::map<std::string, std::string, std::less<>>& params, std::string_view key) {
  auto it = params.find(key);
  return it != params.end() && (it->second == "1" || it->second == "true" || it->second.empty());
}

std::string TeamsJson(const World& world, bool with_accounts, absl::Time now) {
  JsonWriter w;
  w.BeginArray();
  for (const auto& team : world.teams()) {
    w.BeginObject();
    w.Field("id", team->id());
    w.Key("api_keys").BeginArray();
    for (const std::string& key : team->api_keys()) w.String(key);
    w.EndArray();
    w.Field("rate_limit_per_minute", team->limit_per_minute());
    w.Field("remaining_minute", team->remaining(now));
    w.Field("credits", team->balance());
    if (with_accounts) {
      w.Key("accounts").BeginArray();
      for (uint32_t index : team->accounts) {
        const Account& a = *world.accounts()[index];
        absl::MutexLock lock(&a.mu);
        w.BeginObject();
        w.Field("id", a.id());
        w.Field("username", a.identity().username);
        w.Field("fans", static_cast<int64_t>(a.fans.size()));
        // A few fan ids to address in tests and demos.
        w.Key("sample_fan_ids").BeginArray();
        for (size_t i = 0; i < a.fans.size() && i < 5; ++i) w.UInt(a.fans[i].id);
        w.EndArray();
        w.Key("lists").BeginArray();
        for (const UserList& list : a.lists) {
          w.BeginObject();
          w.Field("id", list.id);
          w.Field("name", list.name);
          w.Field("size", static_cast<int64_t>(list.members.size()));
          w.EndObject();
        }
        w.EndArray();
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  return w.Take();
}

}  // namespace

ApiResponse Control::SpendMedia(std::string_view account_id) {
  std::shared_ptr<World> world = state_.world();
  Account* account = world->FindAccount(account_id);
  if (account == nullptr) return Error(404, "account_not_found", "No such account.");
  int64_t spent = 0;
  {
    absl::MutexLock lock(&account->mu);
    for (auto& [id, media] : account->media) {
      if (media.used_by != 0) continue;
      media.used_by = kUsedOutsideTheApi;
      ++spent;
    }
  }
  JsonWriter w;
  w.BeginObject().Field("spent", spent).EndObject();
  return Json(200, w.Take());
}

namespace {

// What a requested event may carry beyond its name, and what it is when absent.
struct EventOptions {
  std::optional<uint64_t> fan;  // fan activity: the account's first fan when absent
  int64_t amount_cents = 0;     // tips.received, subscriptions.*
  std::string text;             // messages.received
  int64_t message_id = 0;       // messages.deleted; 0: a new id
};

std::optional<uint64_t> PositiveInt(const json::value& v) {
  if (v.is_uint64()) return v.as_uint64() > 0 ? std::optional(v.as_uint64()) : std::nullopt;
  if (v.is_int64() && v.as_int64() > 0) return static_cast<uint64_t>(v.as_int64());
  return std::nullopt;
}

// The fields of `o` other than "event", checked against what `type` takes: an error, or the
// options with their defaults filled in.
std::variant<ApiResponse, EventOptions> ParseEventOptions(const json::object& o, EventType type) {
  const bool tip = type == EventType::kTipsReceived;
  const bool subscription =
      type == EventType::kSubscriptionRenewed || type == EventType::kSubscriptionExpired;
  EventOptions options;
  options.amount_cents = tip ? 500 : 999;
  options.text = "Hi!";
  for (const auto& [key, value] : o) {
    const std::string_view name(key.data(), key.size());
    if (name == "event") continue;
    const bool fits = (name == "fan" && IsFanActivityEvent(type)) ||
                      (name == "amount_cents" && (tip || subscription)) ||
                      (name == "text" && type == EventType::kMessagesReceived) ||
                      (name == "message_id" && type == EventType::kMessagesDeleted);
    if (!fits) {
      return Error(422, "invalid_field", StrCat(name, " does not apply to ", EventName(type), "."));
    }
    if (name == "fan") {
      options.fan = PositiveInt(value);
      if (!options.fan) return Error(422, "invalid_fan", "fan must be a fan's numeric id.");
    } else if (name == "amount_cents") {
      const std::optional<uint64_t> cents = PositiveInt(value);
      if (!cents || *cents > 10'000'000) {
        return Error(422, "invalid_amount", "amount_cents must be in [1, 10000000].");
      }
      options.amount_cents = static_cast<int64_t>(*cents);
    } else if (name == "text") {
      if (!value.is_string() || value.as_string().empty() ||
          Utf8Length(std::string_view(value.as_string())) > 10'000) {
        return Error(422, "invalid_text", "text must be a string of 1 to 10000 characters.");
      }
      options.text = std::string(value.as_string().data(), value.as_string().size());
    } else {
      const std::optional<uint64_t> id = PositiveInt(value);
      if (!id || *id > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error(422, "invalid_message_id", "message_id must be a positive integer.");
      }
      options.message_id = static_cast<int64_t>(*id);
    }
  }
  return options;
}

}  // namespace

ApiResponse Control::EmitEvent(std::string_view account_id, std::string_view body, absl::Time now) {
  std::shared_ptr<World> world = state_.world();
  Account* account = world->FindAccount(account_id);
  if (account == nullptr) return Error(404, "account_not_found", "No such account.");
  auto o = ParseObject(body);
  if (!o) return Error(400, "invalid_json", "Body must be a JSON object.");
  std::optional<EventType> type;
  if (const json::value* v = o->if_contains("event"); v != nullptr && v->is_string()) {
    type = ParseEventName(std::string_view(v->as_string().data(), v->as_string().size()));
  }
  if (!type || !(IsAccountEvent(*type) || IsFanActivityEvent(*type))) {
    return Error(422, "invalid_event",
                 "event must be an accounts.* event (connected, reconnected, session_expired, "
                 "authentication_failed, otp_code_required, face_otp_required) or a fan's "
                 "activity (messages.received, messages.deleted, tips.received, "
                 "subscriptions.renewed, subscriptions.expired, users.typing, users.online, "
                 "users.offline).");
  }
  auto parsed = ParseEventOptions(*o, *type);
  if (auto* error = std::get_if<ApiResponse>(&parsed)) return std::move(*error);
  const EventOptions& options = std::get<EventOptions>(parsed);

  std::string key;  // empty for a presence event
  uint64_t fan_id = 0;
  {
    // Under the account's lock, like every other event, so an account's events are queued in
    // the order they happen.
    absl::MutexLock lock(&account->mu);
    WebhookEvent e;
    e.type = *type;
    e.account = account->shared_identity();
    e.at = now;
    e.seed = world->seed();
    if (IsFanActivityEvent(*type)) {
      if (account->fans.empty()) return Error(404, "fan_not_found", "The account has no fans.");
      const std::optional<uint32_t> index =
          options.fan ? account->FindFan(*options.fan) : std::optional<uint32_t>(0);
      if (!index) return Error(404, "fan_not_found", "No such fan of the account.");
      e.fan = Snapshot(account->fans[*index]);
      // The event reports the fan as it is after it; the world itself does not change.
      if (*type == EventType::kSubscriptionExpired) e.fan.active = false;
      if (*type == EventType::kSubscriptionRenewed) e.fan.active = true;
      e.amount_cents = options.amount_cents;
      e.text = options.text;
      e.chat_message_id = options.message_id;
      if (*type == EventType::kMessagesReceived || e.chat_message_id == 0) {
        e.chat_message_id = world->NextMessageIds(1);
      }
    }
    e.sequence = world->NextEventSequence();
    key = IdempotencyKey(e);
    fan_id = e.fan.id;
    emitter_.Emit(std::move(e));
  }
  JsonWriter w;
  w.BeginObject().Field("event", EventName(*type)).Field("account_id", account->id());
  if (IsFanActivityEvent(*type)) w.Field("fan_id", fan_id);
  if (key.empty()) {
    w.NullField("idempotency_key");
  } else {
    w.Field("idempotency_key", key);
  }
  w.EndObject();
  return Json(200, w.Take());
}

ApiResponse Control::Handle(const ApiRequest& req) {
  auto url = boost::urls::parse_origin_form(req.target);
  if (!url) return Error(400, "invalid_target", "Unparseable request target.");
  std::vector<std::string> s;
  for (auto segment : url->segments()) {
    if (!segment.empty()) s.push_back(std::string(segment));
  }
  std::map<std::string, std::string, std::less<>> params;
  for (auto p : url->params()) params[std::string(p.key)] = std::string(p.value);
  const std::string& m = req.method;
  auto path_is = [&](std::initializer_list<std::string_view> p) {
    if (p.size() != s.size()) return false;
    size_t i = 0;
    for (std::string_view part : p) {
      if (part != "*" && part != s[i]) return false;
      ++i;
    }
    return true;
  };
  const absl::Time now = state_.clock().Now();

  if (path_is({"_sim", "health"})) return Ok();
  if (path_is({"metrics"}) && m == "GET") {
    ApiResponse r;
    r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    r.body = RenderMetrics(state_, &emitter_);
    return r;
  }
  if (path_is({"_sim", "teams"}) && m == "GET") {
    auto it = params.find("accounts");
    const bool with_accounts = it == params.end() || it->second != "false";
    return Json(200, TeamsJson(*state_.world(), with_accounts, now));
  }
  if (path_is({"_sim", "teams", "*"}) && m == "POST") {
    Team* team = state_.world()->FindTeam(s[2]);
    if (team == nullptr) return Error(404, "team_not_found", StrCat("No team ", s[2]));
    auto body = ParseObject(req.body);
    if (!body) return Error(400, "invalid_json", "Body must be a JSON object.");
    if (auto credits = IntField(*body, "credits")) team->SetCredits(*credits);
    if (auto add = IntField(*body, "add_credits")) team->AddCredits(*add);
    if (auto limit = IntField(*body, "rate_limit_per_minute")) {
      if (*limit < 1) return Error(422, "invalid_limit", "rate_limit_per_minute must be >= 1");
      team->SetLimit(*limit);
    }
    return Ok();
  }
  if (path_is({"_sim", "faults"})) {
    const auto team = params.find("team");
    if (m == "GET") {
      return Json(200, state_.faults().ToJson(team == params.end()
                                                  ? std::nullopt
                                                  : std::optional<std::string>(team->second)));
    }
    if (m == "POST") {
      auto rules = ParseFaultRules(req.body);
      if (!rules.ok()) return Error(422, "invalid_faults", ToStd(rules.status().message()));
      // ?team= scopes the rules that name no team of their own.
      if (team != params.end()) {
        for (FaultRule& rule : *rules) {
          if (rule.team.empty()) rule.team = team->second;
        }
      }
      state_.faults().Add(*rules);
      log::Info("fault rules added", {{"rules", static_cast<int64_t>(rules->size())}});
      return Json(200, state_.faults().ToJson());
    }
    if (m == "DELETE") {
      state_.faults().Clear(team == params.end() ? std::nullopt
                                                 : std::optional<std::string>(team->second));
      return Ok();
    }
  }
  if (path_is({"_sim", "webhooks"})) {
    if (m == "GET") return Json(200, emitter_.EndpointsJson());
    if (m == "POST") {
      auto body = ParseObject(req.body);
      if (!body) return Error(400, "invalid_json", "Body must be a JSON object.");
      WebhookEndpointConfig config{.url = StringField(*body, "url"),
                                   .secret = StringField(*body, "secret"),
                                   .team = StringField(*body, "team")};
      if (!config.team.empty() && state_.world()->FindTeam(config.team) == nullptr) {
        return Error(404, "team_not_found", StrCat("No team ", config.team));
      }
      auto id = emitter_.AddEndpoint(std::move(config));
      if (!id.ok()) return Error(422, "invalid_webhook", ToStd(id.status().message()));
      JsonWriter w;
      w.BeginObject().Field("id", *id).EndObject();
      return Json(200, w.Take());
    }
    if (m == "DELETE") {
      emitter_.RemoveAll();
      return Ok();
    }
  }
  if (path_is({"_sim", "webhooks", "*"}) && m == "DELETE") {
    if (!emitter_.RemoveEndpoint(s[2])) return Error(404, "webhook_not_found", "No such webhook.");
    return Ok();
  }
  if (path_is({"_sim", "behavior"})) {
    if (m == "GET") return Json(200, BehaviorToJson(state_.behavior(), emitter_.policy()));
    if (m == "POST") {
      Behavior behavior = state_.behavior();
      WebhookPolicy policy = emitter_.policy();
      if (absl::Status st = ApplyBehaviorJson(req.body, behavior, policy); !st.ok()) {
        return Error(422, "invalid_behavior", ToStd(st.message()));
      }
      state_.SetBehavior(behavior);
      emitter_.SetPolicy(policy);
      return Json(200, BehaviorToJson(behavior, policy));
    }
  }
  if (path_is({"_sim", "ledger"}) && m == "GET") {
    LedgerQuery query;
    if (auto it = params.find("account"); it != params.end()) query.account = it->second;
    if (auto it = params.find("team"); it != params.end()) query.team = it->second;
    query.purchases = Truthy(params, "purchases");
    query.recipients = Truthy(params, "recipients");
    query.all = Truthy(params, "all");
    return Json(200, RenderLedger(*state_.world(), query, now, state_.behavior(), &emitter_));
  }
  if (path_is({"_sim", "stats"}) && m == "GET") {
    return Json(200, RenderStats(state_, &emitter_, started_));
  }
  if (path_is({"_sim", "subscribers"}) && m == "POST") {
    auto body = ParseObject(req.body);
    if (!body) return Error(400, "invalid_json", "Body must be a JSON object.");
    std::shared_ptr<World> world = state_.world();
    Account* account = world->FindAccount(StringField(*body, "account"));
    if (account == nullptr) return Error(404, "account_not_found", "No such account.");
    const int64_t count = IntField(*body, "count").value_or(1);
    if (count < 1 || count > 1'000'000) return Error(422, "invalid_count", "count in [1, 1000000]");
    state_.engine().AddSubscribers(*world, *account, static_cast<int>(count));
    return Ok();
  }
  if (path_is({"_sim", "accounts", "*", "events"}) && m == "POST") {
    return EmitEvent(s[2], req.body, now);
  }
  if (path_is({"_sim", "accounts", "*", "media", "spend"}) && m == "POST") {
    return SpendMedia(s[2]);
  }
  if (path_is({"_sim", "tick"}) && m == "POST") {
    state_.engine().Tick(*state_.world(), state_.behavior());
    return Ok();
  }
  if (path_is({"_sim", "reset"}) && m == "POST") {
    state_.Reset();
    log::Info("world reset from the seed");
    return Ok();
  }
  return Error(404, "not_found", "Unknown control endpoint; see GET /_sim/health and the README.");
}

}  // namespace herald::upstream_sim
