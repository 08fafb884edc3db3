#include <algorithm>

#include <herald/automation/automations.h>
#include <herald/common/log.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>

namespace herald::automation {

absl::Status ValidateAutomation(const store::Automation& automation) {
  if (automation.trigger == store::AutomationTrigger::kUnspecified) {
    return absl::InvalidArgumentError(
        "automation.trigger: required (NEW_SUBSCRIBER, SUBSCRIPTION_RENEWED, "
        "SUBSCRIPTION_EXPIRED or PPV_UNLOCKED)");
  }
  if (automation.account.empty()) return absl::InvalidArgumentError("automation.account: required");
  // A custom list's id as the upstream writes it: digits, no leading zero (as every list id
  // Herald takes is checked).
  const std::optional<int64_t> list = ParseInt<int64_t>(automation.list_id);
  if (!list || *list <= 0 || automation.list_id.front() == '0') {
    return absl::InvalidArgumentError(
        StrCat("automation.user_list_id: a custom list's numeric id is required (got '",
               automation.list_id.substr(0, 40), "')"));
  }
  return absl::OkStatus();
}

std::string FansCounter(std::string_view id) { return StrCat("automation_fans:", id); }

Op<int64_t> CountFan(store::Store& store, std::string tenant, std::string id) {
  // A write of no documents bumps only the counter (the table just names the tenant).
  const store::Table table{std::move(tenant), "automations"};
  std::vector<std::pair<std::string, std::string>> none;
  std::optional<std::string> counter = FansCounter(id);
  co_return co_await store.records().PutMany(table, std::move(none), std::move(counter));
}

namespace {

// The event `trigger` fires on when a team's webhook carries it for rules alone (not among
// campaign::kWebhookEvents, which Herald applies for itself); empty otherwise.
std::string_view RuleOnlyEvent(store::AutomationTrigger trigger) {
  const std::string_view event = campaign::TriggerEvent(trigger);
  return std::ranges::find(campaign::kWebhookEvents, event) == std::end(campaign::kWebhookEvents)
             ? event
             : std::string_view();
}

}  // namespace

Automations::Automations(store::Store& store, const Clock& clock, campaign::Service* service)
    : store_(store), clock_(clock), service_(service), ids_(clock) {}

Op<AutomationView> Automations::Create(store::Automation automation, store::RequestId request_id) {
  HERALD_CO_RETURN_IF_ERROR(ValidateAutomation(automation));
  auto account = co_await store_.Get<store::Account>(automation.tenant, automation.account);
  if (absl::IsNotFound(account.status())) {
    // A retry whose first attempt made the rule gets it back, though its account is gone.
    if (!request_id.empty()) {
      HERALD_CO_ASSIGN_OR_RETURN(
          std::optional<store::Automation> earlier,
          co_await store_.CreatedBy<store::Automation>(automation.tenant, request_id));
      if (earlier) co_return co_await View(*std::move(earlier));
    }
    co_return absl::NotFoundError(
        StrCat("automation.account: account '", automation.account, "' not found"));
  }
  HERALD_CO_RETURN_IF_ERROR(account.status());
  // A retried request finds its first result (or, if it is another request under a used id,
  // ALREADY_EXISTS) in the store, and changes nothing on the upstream.
  bool retried = false;
  if (!request_id.empty()) {
    HERALD_CO_ASSIGN_OR_RETURN(
        std::optional<store::Automation> earlier,
        co_await store_.CreatedBy<store::Automation>(automation.tenant, request_id));
    retried = earlier.has_value();
  }
  if (std::string event(RuleOnlyEvent(automation.trigger));
      !retried && !event.empty() && service_ != nullptr) {
    // Before the rule is stored, so that a refusal leaves nothing behind. Should storing fail
    // after, the webhook carries an event no rule needs until the team's next change.
    HERALD_CO_RETURN_IF_ERROR((co_await service_->SyncTeamWebhookEvents(
                                   automation.tenant, automation.account, std::move(event)))
                                  .status());
  }
  automation.id = ids_.Next();
  automation.create_time_ms = absl::ToUnixMillis(clock_.Now());
  HERALD_CO_ASSIGN_OR_RETURN(store::Created<store::Automation> created,
                             co_await store_.Create(std::move(automation), std::move(request_id)));
  co_return co_await View(std::move(created.value));
}

Op<AutomationView> Automations::Get(std::string tenant, std::string id) {
  HERALD_CO_ASSIGN_OR_RETURN(store::Automation automation,
                             co_await store_.Get<store::Automation>(std::move(tenant), id));
  co_return co_await View(std::move(automation));
}

Op<std::vector<AutomationView>> Automations::List(std::string tenant, std::string account) {
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Automation> all,
                             co_await store_.List<store::Automation>(tenant));
  std::vector<AutomationView> out;
  for (store::Automation& automation : all) {
    if (!account.empty() && automation.account != account) continue;
    HERALD_CO_ASSIGN_OR_RETURN(AutomationView view, co_await View(std::move(automation)));
    out.push_back(std::move(view));
  }
  co_return out;
}

Op<bool> Automations::Delete(std::string tenant, std::string id) {
  absl::StatusOr<store::Automation> rule = co_await store_.Get<store::Automation>(tenant, id);
  if (absl::IsNotFound(rule.status())) {
    co_return absl::NotFoundError(StrCat("automation '", id, "' not found"));
  }
  HERALD_CO_RETURN_IF_ERROR(rule.status());
  HERALD_CO_ASSIGN_OR_RETURN(bool deleted, co_await store_.Delete<store::Automation>(tenant, id));
  if (!deleted) co_return absl::NotFoundError(StrCat("automation '", id, "' not found"));
  if (!RuleOnlyEvent(rule->trigger).empty() && service_ != nullptr) {
    std::string none;
    const absl::StatusOr<bool> synced =
        co_await service_->SyncTeamWebhookEvents(tenant, rule->account, std::move(none));
    if (!synced.ok()) {
      log::Warn("a deleted automation's event stays on the team's webhook",
                {{"tenant", tenant},
                 {"automation", id},
                 {"account", rule->account},
                 {"status", synced.status()}});
    }
  }
  co_return true;
}

Op<AutomationView> Automations::View(store::Automation automation) {
  const std::string counter = FansCounter(automation.id);
  HERALD_CO_ASSIGN_OR_RETURN(int64_t fans,
                             co_await store_.records().Revision(automation.tenant, counter));
  co_return AutomationView{.automation = std::move(automation), .fans = fans};
}

}  // namespace herald::automation
