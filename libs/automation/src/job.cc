#include <boost/json.hpp>

#include <herald/automation/job.h>
#include <herald/campaign/workflow.h>
#include <herald/common/strings.h>
#include <herald/store/crypto.h>

namespace herald::automation {
namespace {

namespace json = boost::json;

constexpr size_t kMaxJobIdBytes = 256;  // the queue's limit (queue::JobSpec::id)

}  // namespace

std::string_view ActionJobKind(store::AutomationAction action) {
  switch (action) {
    case store::AutomationAction::kAddToList:
      return kAddFanJob;
    case store::AutomationAction::kRemoveFromList:
      return kRemoveFanJob;
  }
  return kAddFanJob;
}

std::string EncodeFanAction(const FanAction& action) {
  return json::serialize(json::object{{"tenant", action.tenant},
                                      {"automation", action.automation},
                                      {"account", action.account},
                                      {"list", action.list_id},
                                      {"fan", action.fan}});
}

absl::StatusOr<FanAction> DecodeFanAction(std::string_view payload) {
  boost::system::error_code ec;
  const json::value v = json::parse(payload, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) {
    return absl::InvalidArgumentError("automation job payload is not a JSON object");
  }
  FanAction action;
  for (auto [name, field] :
       {std::pair{"tenant", &action.tenant}, std::pair{"automation", &action.automation},
        std::pair{"account", &action.account}, std::pair{"list", &action.list_id}}) {
    const json::value* x = o->if_contains(name);
    if (x == nullptr || !x->is_string()) {
      return absl::InvalidArgumentError(
          StrCat("automation job payload: '", name, "' is not a string"));
    }
    *field = std::string(x->as_string());
  }
  const json::value* fan = o->if_contains("fan");
  if (fan == nullptr || !fan->is_int64() || fan->as_int64() <= 0) {
    return absl::InvalidArgumentError("automation job payload: 'fan' is not a positive integer");
  }
  action.fan = fan->as_int64();
  return action;
}

std::string ActionJobId(std::string_view tenant, std::string_view idempotency_key,
                        std::string_view automation) {
  std::string id = StrCat("a:", tenant, ":", automation, ":", idempotency_key);
  if (id.size() > kMaxJobIdBytes) {
    id = StrCat("a:", tenant, ":", automation, ":#", store::Sha256Hex(idempotency_key));
  }
  return id;
}

queue::JobSpec ActionJob(const store::Automation& rule, std::string_view team,
                         std::string_view idempotency_key, int64_t fan) {
  const FanAction action{.tenant = rule.tenant,
                         .automation = rule.id,
                         .account = rule.account,
                         .list_id = rule.list_id,
                         .fan = fan};
  return {.id = ActionJobId(rule.tenant, idempotency_key, rule.id),
          .kind = std::string(ActionJobKind(rule.action)),
          .tenant = rule.tenant,
          .team = campaign::QueueTeam(rule.tenant, team),
          .account = campaign::QueueAccount(rule.tenant, rule.account),
          .payload = EncodeFanAction(action),
          .max_attempts = kActionMaxAttempts};
}

}  // namespace herald::automation
