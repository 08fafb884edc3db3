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

std::string EncodeAddFan(const AddFan& action) {
  return json::serialize(json::object{{"tenant", action.tenant},
                                      {"automation", action.automation},
                                      {"account", action.account},
                                      {"list", action.list_id},
                                      {"fan", action.fan}});
}

absl::StatusOr<AddFan> DecodeAddFan(std::string_view payload) {
  boost::system::error_code ec;
  const json::value v = json::parse(payload, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return absl::InvalidArgumentError("add-fan job payload is not a JSON object");
  AddFan action;
  for (auto [name, field] :
       {std::pair{"tenant", &action.tenant}, std::pair{"automation", &action.automation},
        std::pair{"account", &action.account}, std::pair{"list", &action.list_id}}) {
    const json::value* x = o->if_contains(name);
    if (x == nullptr || !x->is_string()) {
      return absl::InvalidArgumentError(
          StrCat("add-fan job payload: '", name, "' is not a string"));
    }
    *field = std::string(x->as_string());
  }
  const json::value* fan = o->if_contains("fan");
  if (fan == nullptr || !fan->is_int64() || fan->as_int64() <= 0) {
    return absl::InvalidArgumentError("add-fan job payload: 'fan' is not a positive integer");
  }
  action.fan = fan->as_int64();
  return action;
}

std::string AddFanJobId(std::string_view tenant, std::string_view idempotency_key,
                        std::string_view automation) {
  std::string id = StrCat("a:", tenant, ":", automation, ":", idempotency_key);
  if (id.size() > kMaxJobIdBytes) {
    id = StrCat("a:", tenant, ":", automation, ":#", store::Sha256Hex(idempotency_key));
  }
  return id;
}

queue::JobSpec AddFanJob(const store::Automation& rule, std::string_view team,
                         std::string_view idempotency_key, int64_t fan) {
  const AddFan action{.tenant = rule.tenant,
                      .automation = rule.id,
                      .account = rule.account,
                      .list_id = rule.list_id,
                      .fan = fan};
  return {.id = AddFanJobId(rule.tenant, idempotency_key, rule.id),
          .kind = std::string(kAddFanJob),
          .tenant = rule.tenant,
          .team = campaign::QueueTeam(rule.tenant, team),
          .account = campaign::QueueAccount(rule.tenant, rule.account),
          .payload = EncodeAddFan(action),
          .max_attempts = kAddFanMaxAttempts};
}

}  // namespace herald::automation
