// The worker side of automations: runs action jobs (job.h), one upstream call each.
//
//   automation::ActionRunner actions(store, clients, &registry);
//   actions.Register(worker);   // before worker.Start()
//
// A job first reads its rule: a rule deleted since the job was enqueued, or one this release
// reads as a rule on no trigger (a later release's), ends the job without acting. Then it adds the
// fan to the rule's list, or removes it, with the account's team's upstream client, and counts the
// fan on the rule (FansCounter). The queue has already applied the account's and the team's rate
// limits and pauses when it leased the job.
//
// Upstream errors (ClassifyActionError): 429 returns the job without spending an attempt and
// holds the team for Retry-After; 5xx, connection errors and unknown outcomes retry with backoff
// (adding a fan twice, or removing a fan who is no longer in the list, leaves the list as it
// was, so a retry needs no reconciliation) and are dead-lettered with the reason after the last
// attempt; other 4xx (the list does not exist, out of credits, an invalid key) are
// dead-lettered at once with the upstream's words.
//
// Metrics: herald_automation_actions_total{result} with result "added", "removed", "skipped"
// (the rule was deleted, or is a later release's), "rate_limited", "retried", "failed"
// (dead-lettered).
#pragma once

#include <memory>
#include <string_view>

#include <absl/status/status.h>
#include <boost/asio/awaitable.hpp>

#include <herald/queue/queue.h>
#include <herald/queue/worker.h>
#include <herald/store/model.h>

namespace herald::campaign {
class UpstreamClients;
}  // namespace herald::campaign
namespace herald::metrics {
class Registry;
}  // namespace herald::metrics
namespace herald::store {
class Store;
}  // namespace herald::store
namespace herald::upstream {
class Api;
}  // namespace herald::upstream

namespace herald::automation {

struct FanAction;

// What a failed call of `action` means for its job: `error` is the upstream client's status
// (not OK), `last_attempt` whether the job has no attempt left. Pure. (A refusal of the team,
// 401 or 402, is handled before by PauseTeamIfRefused: the team is paused and the job waits
// for it, unless the refusal answers for a key or a pause the operator has since dealt with.)
queue::JobResult ClassifyActionError(store::AutomationAction action, const absl::Status& error,
                                     bool last_attempt);

class ActionRunner {
 public:
  // Everything must outlive the runner; `registry` may be null.
  ActionRunner(store::Store& store, queue::Queue& queue, campaign::UpstreamClients& clients,
               metrics::Registry* registry);
  ~ActionRunner();

  // Registers the action job kinds. Before worker.Start().
  void Register(queue::Worker& worker);

  // Runs one action job.
  boost::asio::awaitable<queue::JobResult> Run(const queue::LeasedJob& job);

 private:
  struct Metrics;

  // The upstream call of `what` on `action`'s fan: OK, or the upstream client's error.
  boost::asio::awaitable<absl::Status> Act(upstream::Api& api, store::AutomationAction what,
                                           const FanAction& action);

  store::Store& store_;
  queue::Queue& queue_;
  campaign::UpstreamClients& clients_;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace herald::automation
