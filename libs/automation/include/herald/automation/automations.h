// A tenant's automations: rules that act on upstream events as they arrive ("when a fan
// subscribes to account A, add the fan to list L", "when a fan renews, remove the fan from
// list W"), and the operations behind AutomationService.
//
// A rule fires in three steps, each in its own process role:
//   1. ingest: TriggeringRecorder (trigger.h) sees the event, finds the tenant's rules for the
//      event's account and enqueues one job per rule, before the event is recorded;
//   2. the queue holds the job until the account's and the team's rate limits allow it;
//   3. worker: ActionRunner (action.h) makes the upstream call and counts the fan.
//
// Rules live in the store (store::Automation, table "automations" of the tenant); the fans a
// rule added or removed are counted in a tenant counter (FansCounter), so counting never
// contends with reading or deleting the rule.
//
// Thread safety: every method may be called concurrently. The store and clock must outlive the
// Automations.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <boost/asio/awaitable.hpp>

#include <herald/campaign/service.h>
#include <herald/common/clock.h>
#include <herald/common/ids.h>
#include <herald/store/model.h>
#include <herald/store/store.h>

namespace herald::automation {

template <typename T>
using Op = boost::asio::awaitable<absl::StatusOr<T>>;

// A rule as clients see it.
struct AutomationView {
  store::Automation automation;
  int64_t fans = 0;  // fans its action has added to, or removed from, its list
};

// The value rules of a rule, with errors naming the API's field paths ("automation.trigger"):
// a trigger is set, and the list is a custom list's numeric id (a positive integer). The
// account's existence needs the store and is checked by Automations::Create. kInvalidArgument.
absl::Status ValidateAutomation(const store::Automation& automation);

// The tenant counter (store::RecordStore::Revision) of the fans rule `id` has added or
// removed.
std::string FansCounter(std::string_view id);
// Adds one to that counter (one atomic increment); its new value.
Op<int64_t> CountFan(store::Store& store, std::string tenant, std::string id);

class Automations {
 public:
  // `service` (may be null: no webhook is ever changed) keeps the teams' upstream webhooks
  // carrying the events the rules fire on; it must outlive the Automations.
  Automations(store::Store& store, const Clock& clock, campaign::Service* service = nullptr);

  // Validates the rule (ValidateAutomation), checks that its account is one of the tenant's
  // (kNotFound "automation.account: account 'acct_x' not found" otherwise), assigns
  // its id and creation time, and stores it. A rule on an event the team's webhook does not
  // carry yet (a renewal, an expiry) adds it there first, and the upstream's refusal refuses
  // the rule. A retry with the same request_id returns the first rule. Nothing is stored when
  // anything is refused.
  Op<AutomationView> Create(store::Automation automation, store::RequestId request_id);
  // kNotFound "automation 'x' not found" for a rule that does not exist (or is another
  // tenant's: ids are looked up within `tenant` only).
  Op<AutomationView> Get(std::string tenant, std::string id);
  // The tenant's rules by id (oldest first); only `account`'s when it is not empty.
  Op<std::vector<AutomationView>> List(std::string tenant, std::string account);
  // kNotFound when the rule does not exist. Jobs it enqueued that have not run yet find it
  // gone and end without acting. The last rule of a team's accounts on an event Herald does not
  // otherwise need takes it off the team's webhook; when the upstream cannot be told, the rule is
  // deleted all the same and the event, still delivered, fires nothing.
  Op<bool> Delete(std::string tenant, std::string id);

 private:
  Op<AutomationView> View(store::Automation automation);

  store::Store& store_;
  const Clock& clock_;
  campaign::Service* const service_;
  IdGenerator ids_;
};

}  // namespace herald::automation
