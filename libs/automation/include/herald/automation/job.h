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

// Attempts before a job that keeps failing (5xx, timeouts) is dead-lettered.
inline constexpr int kAddFanMaxAttempts = 6;

// What an add-fan job carries (its payload, as JSON).
struct AddFan {
  std::string tenant;
  std::string automation;  // the rule's id
  std::string account;     // the upstream account id
  std::string list_id;
  int64_t fan = 0;
};

std::string EncodeAddFan(const AddFan& action);
// kInvalidArgument when `payload` is not an object with every field of the right type.
absl::StatusOr<AddFan> DecodeAddFan(std::string_view payload);

// The job's id, from (tenant, event idempotency key, rule): the same event delivered again, or
// retried after a 503, gives the same id, and the queue enqueues an id once. Always within the
// queue's 256 bytes: a key that would not fit is replaced by its SHA-256.
std::string AddFanJobId(std::string_view tenant, std::string_view idempotency_key,
                        std::string_view automation);

// The job adding `fan` to `rule`'s list, on the queue of `rule`'s account (of team `team`), so
// the account's and the team's limits apply to it like to every upstream call.
queue::JobSpec AddFanJob(const store::Automation& rule, std::string_view team,
                         std::string_view idempotency_key, int64_t fan);

}  // namespace herald::automation
