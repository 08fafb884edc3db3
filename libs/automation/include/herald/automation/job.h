// The queue job of an automation's action: what it carries and how its id is made. Pure; shared
// by the trigger (which enqueues) and the action runner (which runs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>

#include <herald/queue/job.h>
#include <herald/store/model.h>

namespace herald::automation {

// Adds one fan to a rule's upstream list: one upstream call.
inline constexpr std::string_view kAddFanJob = "automation_add_fan";
// Removes one fan from a rule's upstream list: one upstream call.
inline constexpr std::string_view kRemoveFanJob = "automation_remove_fan";

// The job kind of a rule's action.
std::string_view ActionJobKind(store::AutomationAction action);

// Attempts before a job that keeps failing (5xx, timeouts) is dead-lettered.
inline constexpr int kActionMaxAttempts = 6;

// What an action job carries (its payload, as JSON), whichever its kind.
struct FanAction {
  std::string tenant;
  std::string automation;  // the rule's id
  std::string account;     // the upstream account id
  std::string list_id;
  int64_t fan = 0;
};

std::string EncodeFanAction(const FanAction& action);
// kInvalidArgument when `payload` is not an object with every field of the right type.
absl::StatusOr<FanAction> DecodeFanAction(std::string_view payload);

// The job's id, from (tenant, event idempotency key, rule): the same event delivered again, or
// retried after a 503, gives the same id, and the queue enqueues an id once. Always within the
// queue's 256 bytes: a key that would not fit is replaced by its SHA-256.
std::string ActionJobId(std::string_view tenant, std::string_view idempotency_key,
                        std::string_view automation);

// The job doing `rule`'s action (ActionJobKind) to `fan`, on the queue of `rule`'s account (of
// team `team`), so the account's and the team's limits apply to it like to every upstream call.
queue::JobSpec ActionJob(const store::Automation& rule, std::string_view team,
                         std::string_view idempotency_key, int64_t fan);

}  // namespace herald::automation
