// The ingest side of automations: an EventRecorder that fires the tenant's rules before it
// records an event.
//
//   auto recorder = automation::MakeTriggeringRecorder(
//       *redis_recorder, *rules, [&queue](std::vector<queue::JobSpec> jobs) {
//         return queue.EnqueueBatch(std::move(jobs));
//       }, &registry);
//
// For a subscriptions.new, .renewed or .expired event, or a messages.ppv.unlocked one, the
// tenant's rules on that event and the event's account are looked up (RuleDirectory, cached for
// a few seconds) and one job per rule is enqueued (job.h) BEFORE the event is handed to the
// inner recorder. Job ids derive from (tenant, idempotency key, rule), so
// a redelivered event, or one retried after a 503, enqueues nothing new; an event whose jobs
// could not be enqueued is not recorded either and the error is returned (ingest answers 503,
// the upstream retries): nothing acknowledged is lost. Other events go straight to the inner
// recorder at no extra cost.
//
// A queue answer that no retry can change (the account is registered with another team in the
// queue, a job the queue refuses) is logged and counted, and does not block the event.
//
// Metrics: herald_automation_triggers_total{result} with result "enqueued", "duplicate" (the
// job existed: a redelivery), "refused" (see above), "error" (the lookup or the enqueue failed).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/awaitable.hpp>

#include <herald/common/clock.h>
#include <herald/queue/job.h>
#include <herald/store/model.h>
#include <herald/webhooks/recorder.h>

namespace herald::metrics {
class Registry;
}  // namespace herald::metrics
namespace herald::store {
class Store;
}  // namespace herald::store

namespace herald::automation {

// A rule and the team of its account (the job's queue identity).
struct ActiveRule {
  store::Automation rule;
  std::string team;
};

// A tenant's rules, read-only and shared: the cache hands the same set to every event.
using RuleSet = std::shared_ptr<const std::vector<ActiveRule>>;

// Where the trigger finds a tenant's rules.
class RuleDirectory {
 public:
  virtual ~RuleDirectory() = default;
  // Every rule of `tenant` whose account Herald knows (a rule whose account was deleted cannot
  // act and is left out); never null. Errors are transient (Redis).
  virtual boost::asio::awaitable<absl::StatusOr<RuleSet>> Rules(std::string tenant) = 0;
};

// The rules as stored: the tenant's rules and their accounts, two reads. The store must outlive
// the directory.
std::unique_ptr<RuleDirectory> MakeStoreRuleDirectory(store::Store& store);

struct RuleCacheConfig {
  // How long a tenant's rules are reused: a rule created or deleted takes up to this long to be
  // seen by the trigger (a deleted rule's jobs still end without acting; ActionRunner checks).
  absl::Duration ttl = absl::Seconds(5);
  // Tenants kept at most; when full, the expired entries go, and everything if none had.
  size_t max_tenants = 10'000;
};

// Rules cached per tenant in front of `inner` (errors are not cached). Thread-safe; concurrent
// misses of one tenant may each read `inner`.
std::unique_ptr<RuleDirectory> MakeCachedRuleDirectory(std::unique_ptr<RuleDirectory> inner,
                                                       const Clock& clock,
                                                       RuleCacheConfig config = {});

// Enqueues jobs, results in their order (queue::Queue::EnqueueBatch in production).
using EnqueueJobs =
    std::function<boost::asio::awaitable<absl::StatusOr<std::vector<queue::EnqueueResult>>>(
        std::vector<queue::JobSpec>)>;

// The decorator described above. `inner`, `rules` and `registry` (may be null) must outlive it.
std::unique_ptr<webhooks::EventRecorder> MakeTriggeringRecorder(webhooks::EventRecorder& inner,
                                                                RuleDirectory& rules,
                                                                EnqueueJobs enqueue,
                                                                metrics::Registry* registry);

}  // namespace herald::automation
