#include <herald/automation/action.h>
#include <herald/automation/automations.h>
#include <herald/automation/job.h>
#include <herald/campaign/workflow.h>
#include <herald/common/clock.h>
#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/store/store.h>
#include <herald/upstream/error.h>

namespace herald::automation {

namespace asio = boost::asio;
using queue::JobResult;

queue::JobResult ClassifyActionError(store::AutomationAction action, const absl::Status& error,
                                     bool last_attempt) {
  const std::optional<upstream::UpstreamError> kind = upstream::GetUpstreamError(error);
  const std::string_view doing = action == store::AutomationAction::kRemoveFromList
                                     ? "removing the fan from the list"
                                     : "adding the fan to the list";
  const std::string reason = StrCat("upstream, ", doing, ": ", error.message());
  if (kind && kind->kind == upstream::ErrorKind::kRateLimited) {
    return JobResult::RateLimited(kind->retry_after);
  }
  // Connection errors, 5xx, and calls whose outcome is unknown: adding a fan twice, or removing
  // one twice, changes nothing, so a retry needs no reconciliation. A status that did not come
  // from the upstream client is a local failure, retried too.
  if (upstream::IsTransient(kind) && !last_attempt) return JobResult::Retry(reason);
  return JobResult::Fail(reason);
}

struct ActionRunner::Metrics {
  explicit Metrics(metrics::Registry* registry)
      : own(registry == nullptr ? std::make_unique<metrics::Registry>() : nullptr),
        family(metrics::BuildCounter()
                   .Name("herald_automation_actions_total")
                   .Help("Automation jobs run by the workers, by result: added (the fan is in "
                         "the list), removed (the fan is off the list), skipped (the rule was "
                         "deleted, or is a later release's), rate_limited, retried, failed "
                         "(dead-lettered).")
                   .LabelNames({"result"})
                   .Register(registry == nullptr ? *own : *registry)),
        added(family.Add({{"result", "added"}})),
        removed(family.Add({{"result", "removed"}})),
        skipped(family.Add({{"result", "skipped"}})),
        rate_limited(family.Add({{"result", "rate_limited"}})),
        retried(family.Add({{"result", "retried"}})),
        failed(family.Add({{"result", "failed"}})) {}

  // Counts a job's end by its result. A success is counted by Succeeded, which knows what the
  // job did.
  JobResult Count(JobResult result) {
    switch (result.status) {
      case JobResult::Status::kOk:
        break;
      case JobResult::Status::kRateLimited:
        rate_limited.Increment();
        break;
      case JobResult::Status::kRetry:
      case JobResult::Status::kDeferred:
        retried.Increment();
        break;
      case JobResult::Status::kFail:
        failed.Increment();
        break;
      case JobResult::Status::kRelease:
        break;
    }
    return result;
  }

  // Counts a job that did `action`.
  JobResult Succeeded(store::AutomationAction action) {
    (action == store::AutomationAction::kRemoveFromList ? removed : added).Increment();
    return JobResult::Ok();
  }

  std::unique_ptr<metrics::Registry> own;
  metrics::Family<metrics::Counter>& family;
  metrics::Counter& added;
  metrics::Counter& removed;
  metrics::Counter& skipped;
  metrics::Counter& rate_limited;
  metrics::Counter& retried;
  metrics::Counter& failed;
};

ActionRunner::ActionRunner(store::Store& store, queue::Queue& queue,
                           campaign::UpstreamClients& clients, metrics::Registry* registry)
    : store_(store),
      queue_(queue),
      clients_(clients),
      metrics_(std::make_unique<Metrics>(registry)) {}

ActionRunner::~ActionRunner() = default;

void ActionRunner::Register(queue::Worker& worker) {
  for (const std::string_view kind : {kAddFanJob, kRemoveFanJob}) {
    worker.Handle(std::string(kind),
                  [this](const queue::LeasedJob& job) -> asio::awaitable<JobResult> {
                    co_return co_await Run(job);
                  });
  }
}

asio::awaitable<JobResult> ActionRunner::Run(const queue::LeasedJob& job) {
  const bool last_attempt = job.attempt >= job.max_attempts;
  absl::StatusOr<FanAction> action = DecodeFanAction(job.payload);
  if (!action.ok())
    co_return metrics_->Count(JobResult::Fail(std::string(action.status().message())));
  // Only a rule that still exists acts: deleting a rule stops the jobs it has not run yet.
  auto rule = co_await store_.Get<store::Automation>(action->tenant, action->automation);
  if (absl::IsNotFound(rule.status())) {
    metrics_->skipped.Increment();
    co_return JobResult::Ok();
  }
  if (!rule.ok()) co_return metrics_->Count(JobResult::StoreFailed(rule.status()));
  if (rule->trigger == store::AutomationTrigger::kUnspecified) {
    // A rule of a later release this one cannot read (see the store's codec) fires nothing,
    // and its jobs queued before a rollback act on nothing either.
    metrics_->skipped.Increment();
    co_return JobResult::Ok();
  }
  auto account = co_await store_.Get<store::Account>(action->tenant, action->account);
  if (absl::IsNotFound(account.status())) {
    co_return metrics_->Count(JobResult::Fail(
        StrCat("account '", action->account, "' is no longer in Herald; delete the automation")));
  }
  if (!account.ok()) {
    co_return metrics_->Count(JobResult::StoreFailed(account.status()));
  }
  auto team = co_await store_.Get<store::Team>(action->tenant, account->team);
  if (!team.ok()) co_return metrics_->Count(JobResult::StoreFailed(team.status()));
  absl::StatusOr<std::shared_ptr<upstream::Api>> api = clients_.For(*team);
  if (!api.ok()) {
    // A worker without the encryption key the team's upstream key was sealed under (one not
    // yet restarted while the keys rotate): another attempt, perhaps elsewhere, may open it.
    std::string reason(api.status().message());
    if (last_attempt) co_return metrics_->Count(JobResult::Fail(std::move(reason)));
    co_return metrics_->Count(JobResult::Retry(std::move(reason)));
  }

  // The rule is immutable: its action is the one its jobs were enqueued for.
  const store::AutomationAction what = rule->action;
  absl::Status done = co_await Act(**api, what, *action);
  if (!done.ok()) {
    // The team refused (401, 402): paused, and the job waits for ResumeTeam. The pause is
    // dated on the wall clock, as the API's pauses and resumes are.
    if (auto held = co_await campaign::PauseTeamIfRefused(store_, queue_, SystemClock::Get(),
                                                          action->tenant, team->id, done)) {
      co_return metrics_->Count(*std::move(held));
    }
    co_return metrics_->Count(ClassifyActionError(what, done, last_attempt));
  }

  auto counted = co_await CountFan(store_, action->tenant, action->automation);
  if (!counted.ok()) {
    // The list is as the rule wants it; the retry acts again (no change upstream) and counts.
    co_return metrics_->Count(JobResult::Retry(
        StrCat("the fan's list was changed; counting it failed: ", counted.status().message())));
  }
  co_return metrics_->Succeeded(what);
}

asio::awaitable<absl::Status> ActionRunner::Act(upstream::Api& api, store::AutomationAction what,
                                                const FanAction& action) {
  if (what == store::AutomationAction::kRemoveFromList) {
    auto removed = co_await api.RemoveUserFromList(action.account, action.list_id, action.fan);
    co_return removed.status();
  }
  std::vector<int64_t> fans = {action.fan};
  auto added = co_await api.AddUsersToUserList(action.account, action.list_id, std::move(fans));
  co_return added.status();
}

}  // namespace herald::automation
