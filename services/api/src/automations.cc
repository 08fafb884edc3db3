#include "automations.h"

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/v1/automation.grpc.pb.h>

#include "bridge.h"
#include "convert.h"
#include "names.h"
#include "paging.h"

namespace herald::api {
namespace {

using campaign::Caller;
using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

class AutomationServiceImpl final : public v1::AutomationService::CallbackService {
 public:
  AutomationServiceImpl(Bridge& bridge, automation::Automations& automations)
      : bridge_(bridge), automations_(automations) {}

  ServerUnaryReactor* CreateAutomation(CallbackServerContext* ctx,
                                       const v1::CreateAutomationRequest* req,
                                       v1::Automation* resp) override {
    return bridge_.Unary(
        ctx, "CreateAutomation", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Automation> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(store::RequestId request_id, CreateRequestId(*req));
          HERALD_CO_ASSIGN_OR_RETURN(store::Automation rule,
                                     ParseAutomation(c.tenant, req->automation()));
          HERALD_CO_ASSIGN_OR_RETURN(
              automation::AutomationView made,
              co_await automations_.Create(std::move(rule), std::move(request_id)));
          co_return ToProto(made);
        });
  }

  ServerUnaryReactor* GetAutomation(CallbackServerContext* ctx, const v1::GetAutomationRequest* req,
                                    v1::Automation* resp) override {
    return bridge_.Unary(ctx, "GetAutomation", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::Automation> {
                           HERALD_CO_ASSIGN_OR_RETURN(
                               std::string id, OwnId(c.tenant, "name", req->name(), "automations"));
                           HERALD_CO_ASSIGN_OR_RETURN(automation::AutomationView view,
                                                      co_await automations_.Get(c.tenant, id));
                           co_return ToProto(view);
                         });
  }

  ServerUnaryReactor* ListAutomations(CallbackServerContext* ctx,
                                      const v1::ListAutomationsRequest* req,
                                      v1::ListAutomationsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListAutomations", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListAutomationsResponse> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          std::string account;
          if (!req->account().empty()) {
            HERALD_CO_ASSIGN_OR_RETURN(account,
                                       OwnId(c.tenant, "account", req->account(), "accounts"));
          }
          HERALD_CO_ASSIGN_OR_RETURN(int size, ParsePageSize(req->page_size(), 100, 1000));
          const uint64_t fingerprint =
              Fingerprint(StrCat("automations/", c.tenant, "/", req->account()));
          HERALD_CO_ASSIGN_OR_RETURN(std::string after,
                                     DecodePageToken(req->page_token(), fingerprint));
          HERALD_CO_ASSIGN_OR_RETURN(std::vector<automation::AutomationView> all,
                                     co_await automations_.List(c.tenant, account));
          v1::ListAutomationsResponse out;
          std::string last;
          for (const automation::AutomationView& view : all) {  // sorted by id
            if (!after.empty() && view.automation.id <= after) continue;
            if (out.automations_size() == size) {
              out.set_next_page_token(EncodePageToken(last, fingerprint));
              break;
            }
            *out.add_automations() = ToProto(view);
            last = view.automation.id;
          }
          co_return out;
        });
  }

  ServerUnaryReactor* DeleteAutomation(CallbackServerContext* ctx,
                                       const v1::DeleteAutomationRequest* req,
                                       v1::DeleteAutomationResponse* resp) override {
    return bridge_.Unary(
        ctx, "DeleteAutomation", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::DeleteAutomationResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "name", req->name(), "automations"));
          HERALD_CO_RETURN_IF_ERROR((co_await automations_.Delete(c.tenant, id)).status());
          co_return v1::DeleteAutomationResponse();
        });
  }

 private:
  Bridge& bridge_;
  automation::Automations& automations_;
};

}  // namespace

absl::StatusOr<store::Automation> ParseAutomation(std::string_view tenant,
                                                  const v1::Automation& a) {
  HERALD_ASSIGN_OR_RETURN(ChildName account,
                          ParseChildName("automation.account", a.account(), "accounts"));
  if (account.tenant != tenant) {
    return absl::NotFoundError(StrCat("automation.account: account '", a.account(), "' not found"));
  }
  store::Automation out{
      .tenant = std::string(tenant), .account = std::move(account.id), .list_id = a.user_list_id()};
  switch (a.trigger()) {
    case v1::Automation::TRIGGER_UNSPECIFIED:
      out.trigger = store::AutomationTrigger::kUnspecified;
      break;
    case v1::Automation::NEW_SUBSCRIBER:
      out.trigger = store::AutomationTrigger::kNewSubscriber;
      break;
    case v1::Automation::SUBSCRIPTION_RENEWED:
      out.trigger = store::AutomationTrigger::kRenewal;
      break;
    case v1::Automation::SUBSCRIPTION_EXPIRED:
      out.trigger = store::AutomationTrigger::kExpiry;
      break;
    case v1::Automation::PPV_UNLOCKED:
      out.trigger = store::AutomationTrigger::kPpvUnlock;
      break;
    default:
      return absl::InvalidArgumentError(
          StrCat("automation.trigger: unknown value ", static_cast<int>(a.trigger())));
  }
  switch (a.action()) {
    case v1::Automation::ACTION_UNSPECIFIED:
    case v1::Automation::ADD_TO_LIST:
      out.action = store::AutomationAction::kAddToList;
      break;
    case v1::Automation::REMOVE_FROM_LIST:
      out.action = store::AutomationAction::kRemoveFromList;
      break;
    default:
      return absl::InvalidArgumentError(
          StrCat("automation.action: unknown value ", static_cast<int>(a.action())));
  }
  HERALD_RETURN_IF_ERROR(automation::ValidateAutomation(out));
  return out;
}

v1::Automation ToProto(const automation::AutomationView& view) {
  const store::Automation& a = view.automation;
  v1::Automation out;
  out.set_name(ChildNameOf(a.tenant, "automations", a.id));
  out.set_account(ChildNameOf(a.tenant, "accounts", a.account));
  switch (a.trigger) {
    case store::AutomationTrigger::kNewSubscriber:
      out.set_trigger(v1::Automation::NEW_SUBSCRIBER);
      break;
    case store::AutomationTrigger::kRenewal:
      out.set_trigger(v1::Automation::SUBSCRIPTION_RENEWED);
      break;
    case store::AutomationTrigger::kExpiry:
      out.set_trigger(v1::Automation::SUBSCRIPTION_EXPIRED);
      break;
    case store::AutomationTrigger::kPpvUnlock:
      out.set_trigger(v1::Automation::PPV_UNLOCKED);
      break;
    case store::AutomationTrigger::kUnspecified:
      out.set_trigger(v1::Automation::TRIGGER_UNSPECIFIED);
      break;
  }
  out.set_user_list_id(a.list_id);
  if (a.create_time_ms != 0) SetTime(a.create_time_ms, out.mutable_create_time());
  switch (a.action) {
    case store::AutomationAction::kAddToList:
      out.set_action(v1::Automation::ADD_TO_LIST);
      out.set_fans_added(view.fans);
      break;
    case store::AutomationAction::kRemoveFromList:
      out.set_action(v1::Automation::REMOVE_FROM_LIST);
      out.set_fans_removed(view.fans);
      break;
  }
  return out;
}

std::unique_ptr<grpc::Service> MakeAutomationService(Bridge& bridge,
                                                     automation::Automations& automations) {
  return std::make_unique<AutomationServiceImpl>(bridge, automations);
}

}  // namespace herald::api
