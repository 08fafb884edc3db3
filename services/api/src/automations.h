// AutomationService: a tenant's rules over upstream events (libs/automation), with the pure
// protobuf <-> domain steps its handlers use.
#pragma once

#include <memory>
#include <string_view>

#include <absl/status/statusor.h>
#include <grpcpp/impl/service_type.h>

#include <herald/automation/automations.h>
#include <herald/store/model.h>
#include <herald/v1/automation.pb.h>

namespace herald::api {

class Bridge;

// The rule of a CreateAutomationRequest made by `tenant`: the account's name parsed (another
// tenant's account is "not found", like a missing one), the trigger mapped, and the values
// checked (automation::ValidateAutomation). Output-only fields are ignored. kInvalidArgument
// naming the field.
absl::StatusOr<store::Automation> ParseAutomation(std::string_view tenant,
                                                  const v1::Automation& automation);

v1::Automation ToProto(const automation::AutomationView& view);

// The service, ready to register; `bridge` and `automations` must outlive it.
std::unique_ptr<grpc::Service> MakeAutomationService(Bridge& bridge,
                                                     automation::Automations& automations);

}  // namespace herald::api
