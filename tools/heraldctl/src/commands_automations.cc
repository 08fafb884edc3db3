// automations: AutomationService.
#include <algorithm>

#include <herald/common/strings.h>
#include <herald/v1/automation.grpc.pb.h>

#include "session.h"

namespace herald::heraldctl {
namespace {

std::unique_ptr<v1::AutomationService::Stub> Stub(Session& s) {
  return v1::AutomationService::NewStub(s.channel());
}

// "NEW_SUBSCRIBER" (the API's name, as `automations get` prints it) as "new-subscriber".
std::string FlagWord(std::string_view value) {
  std::string word = AsciiLower(value);
  std::replace(word.begin(), word.end(), '_', '-');
  return word;
}

// --trigger's words (or the API's names, in any case) for the API's values.
absl::StatusOr<v1::Automation::Trigger> ParseTrigger(std::string_view given) {
  const std::string value = FlagWord(given);
  if (value == "new-subscriber") return v1::Automation::NEW_SUBSCRIBER;
  if (value == "subscription-renewed") return v1::Automation::SUBSCRIPTION_RENEWED;
  if (value == "subscription-expired") return v1::Automation::SUBSCRIPTION_EXPIRED;
  if (value == "ppv-unlocked") return v1::Automation::PPV_UNLOCKED;
  return absl::InvalidArgumentError(
      StrCat("--trigger: '", given,
             "' is not a trigger (want new-subscriber, subscription-renewed, "
             "subscription-expired or ppv-unlocked)"));
}

// --action's words (or the API's names, in any case) for the API's values.
absl::StatusOr<v1::Automation::Action> ParseAction(std::string_view given) {
  const std::string value = FlagWord(given);
  if (value == "add-to-list") return v1::Automation::ADD_TO_LIST;
  if (value == "remove-from-list") return v1::Automation::REMOVE_FROM_LIST;
  return absl::InvalidArgumentError(
      StrCat("--action: '", given, "' is not an action (want add-to-list or remove-from-list)"));
}

int AutomationsCreate(Session& s, const ParsedCommand& c) {
  v1::CreateAutomationRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  if (!c.Has("account")) return s.Usage(absl::InvalidArgumentError("--account is required"));
  if (!c.Has("list")) return s.Usage(absl::InvalidArgumentError("--list is required"));
  v1::Automation* automation = request.mutable_automation();
  HCTL_ASSIGN_OR_USAGE(*automation->mutable_account(), s,
                       s.names().Resolve("accounts", c.Get("account")));
  HCTL_ASSIGN_OR_USAGE(const v1::Automation::Trigger parsed, s,
                       ParseTrigger(c.Get("trigger", "new-subscriber")));
  automation->set_trigger(parsed);
  HCTL_ASSIGN_OR_USAGE(const v1::Automation::Action action, s,
                       ParseAction(c.Get("action", "add-to-list")));
  automation->set_action(action);
  automation->set_user_list_id(c.Get("list"));
  request.set_request_id(c.Get("request-id"));
  v1::Automation response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->CreateAutomation(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int AutomationsGet(Session& s, const ParsedCommand& c) {
  v1::GetAutomationRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("automations", c.args[0]));
  v1::Automation response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->GetAutomation(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int AutomationsList(Session& s, const ParsedCommand& c) {
  v1::ListAutomationsRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  if (c.Has("account")) {
    HCTL_ASSIGN_OR_USAGE(*request.mutable_account(), s,
                         s.names().Resolve("accounts", c.Get("account")));
  }
  auto stub = Stub(s);
  return ListAllPages<v1::ListAutomationsResponse>(
      s, request, [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListAutomations(context, r, response);
      });
}

int AutomationsDelete(Session& s, const ParsedCommand& c) {
  v1::DeleteAutomationRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("automations", c.args[0]));
  v1::DeleteAutomationResponse response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->DeleteAutomation(context.get(), request, &response);
  return status.ok() ? s.PrintDone(response, StrCat("deleted ", request.name())) : s.Fail(status);
}

}  // namespace

void AddAutomationCommands(std::vector<CommandSpec>& commands) {
  commands.push_back(
      {"automations",
       "create",
       "",
       0,
       0,
       "Create a rule: when a fan of the account subscribes, renews, expires or buys, add the fan "
       "to a list or remove it",
       "Each time the trigger happens, Herald queues the upstream call under the account's and\n"
       "the team's rate limits. Herald assigns the rule's id; the output shows its name. A rule\n"
       "on a renewal or an expiry first adds that event to the team's upstream webhook.\n"
       "A win-back list takes two rules on it: --trigger=subscription-expired, and\n"
       "--trigger=new-subscriber (or subscription-renewed) --action=remove-from-list.",
       {{"account", "ACCOUNT", "required: the account whose events fire the rule"},
        {"list", "LIST_ID", "required: the numeric id of a custom list of the account"},
        {"trigger", "TRIGGER",
         "what fires the rule: new-subscriber (the default), subscription-renewed, "
         "subscription-expired or ppv-unlocked (a fan bought a priced message)"},
        {"action", "ACTION",
         "what is done with the fan: add-to-list (the default) or remove-from-list"},
        {"request-id", "ID", "idempotency id: a retry returns the first result"}},
       AutomationsCreate});
  commands.push_back({"automations",
                      "list",
                      "",
                      0,
                      0,
                      "List the tenant's rules, optionally of one account",
                      "",
                      {{"account", "ACCOUNT", "only this account's rules"}},
                      AutomationsList});
  commands.push_back(
      {"automations", "get", "AUTOMATION", 1, 1, "Show a rule", "", {}, AutomationsGet});
  commands.push_back({"automations",
                      "delete",
                      "AUTOMATION",
                      1,
                      1,
                      "Delete a rule (actions it queued that have not run end without acting)",
                      "",
                      {},
                      AutomationsDelete});
}

}  // namespace herald::heraldctl
