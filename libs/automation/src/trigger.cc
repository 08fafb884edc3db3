#include <algorithm>
#include <mutex>

#include <absl/container/flat_hash_map.h>

#include <herald/automation/job.h>
#include <herald/automation/trigger.h>
#include <herald/campaign/service.h>
#include <herald/common/log.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/queue/job.h>
#include <herald/store/store.h>
#include <herald/upstream/webhook_event.h>

namespace herald::automation {
namespace {

namespace asio = boost::asio;
using webhooks::RecordOutcome;

template <typename T>
using Op = asio::awaitable<absl::StatusOr<T>>;

class StoreRuleDirectory final : public RuleDirectory {
 public:
  explicit StoreRuleDirectory(store::Store& store) : store_(store) {}

  Op<RuleSet> Rules(std::string tenant) override {
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Automation> rules,
                               co_await store_.List<store::Automation>(tenant));
    auto out = std::make_shared<std::vector<ActiveRule>>();
    if (rules.empty()) co_return out;
    std::vector<std::string> accounts;
    for (const store::Automation& r : rules) accounts.push_back(r.account);
    std::sort(accounts.begin(), accounts.end());
    accounts.erase(std::unique(accounts.begin(), accounts.end()), accounts.end());
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<std::optional<store::Account>> found,
                               co_await store_.GetMany<store::Account>(tenant, accounts));
    for (store::Automation& r : rules) {
      const size_t at =
          std::lower_bound(accounts.begin(), accounts.end(), r.account) - accounts.begin();
      if (!found[at]) continue;  // the account was deleted: the rule cannot act
      out->push_back({.rule = std::move(r), .team = found[at]->team});
    }
    co_return out;
  }

 private:
  store::Store& store_;
};

class CachedRuleDirectory final : public RuleDirectory {
 public:
  CachedRuleDirectory(std::unique_ptr<RuleDirectory> inner, const Clock& clock,
                      RuleCacheConfig config)
      : inner_(std::move(inner)), clock_(clock), config_(config) {}

  Op<RuleSet> Rules(std::string tenant) override {
    {
      std::lock_guard lock(mu_);
      if (auto it = cache_.find(tenant); it != cache_.end() && it->second.expires > clock_.Now()) {
        co_return it->second.rules;
      }
    }
    HERALD_CO_ASSIGN_OR_RETURN(RuleSet rules, co_await inner_->Rules(tenant));
    const absl::Time now = clock_.Now();
    std::lock_guard lock(mu_);
    if (cache_.size() >= config_.max_tenants && !cache_.contains(tenant)) {
      absl::erase_if(cache_, [now](const auto& entry) { return entry.second.expires <= now; });
      if (cache_.size() >= config_.max_tenants) cache_.clear();
    }
    cache_[tenant] = {.rules = rules, .expires = now + config_.ttl};
    co_return rules;
  }

 private:
  struct Entry {
    RuleSet rules;
    absl::Time expires;
  };
  std::unique_ptr<RuleDirectory> inner_;
  const Clock& clock_;
  const RuleCacheConfig config_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> cache_;
};

// herald_automation_triggers_total, one series per result.
struct TriggerMetrics {
  explicit TriggerMetrics(metrics::Registry& registry)
      : family(metrics::BuildCounter()
                   .Name("herald_automation_triggers_total")
                   .Help("Automation jobs the ingest enqueued for upstream events, by result: "
                         "enqueued, duplicate (a redelivered event), refused by the queue, "
                         "error (the event was answered 503).")
                   .LabelNames({"result"})
                   .Register(registry)),
        enqueued(family.Add({{"result", "enqueued"}})),
        duplicate(family.Add({{"result", "duplicate"}})),
        refused(family.Add({{"result", "refused"}})),
        error(family.Add({{"result", "error"}})) {}

  metrics::Family<metrics::Counter>& family;
  metrics::Counter& enqueued;
  metrics::Counter& duplicate;
  metrics::Counter& refused;
  metrics::Counter& error;
};

// Whether events of `type` are what some trigger fires on: a subscription's start, renewal or
// expiry, or a purchase (campaign::TriggerEvent).
bool FiresRules(upstream::WebhookEventType type) {
  switch (type) {
    case upstream::WebhookEventType::kSubscription:
    case upstream::WebhookEventType::kRenewal:
    case upstream::WebhookEventType::kExpiry:
    case upstream::WebhookEventType::kPpvUnlocked:
      return true;
    default:
      return false;
  }
}

class TriggeringRecorder final : public webhooks::EventRecorder {
 public:
  TriggeringRecorder(webhooks::EventRecorder& inner, RuleDirectory& rules, EnqueueJobs enqueue,
                     metrics::Registry* registry)
      : inner_(inner),
        rules_(rules),
        enqueue_(std::move(enqueue)),
        own_registry_(registry == nullptr ? std::make_unique<metrics::Registry>() : nullptr),
        metrics_(registry == nullptr ? *own_registry_ : *registry) {}

  webhooks::Op<RecordOutcome> Record(std::string tenant, std::string idempotency_key,
                                     const upstream::WebhookEvent& event) override {
    if (FiresRules(event.type) && event.fan_id > 0) {
      HERALD_CO_RETURN_IF_ERROR(co_await Fire(tenant, idempotency_key, event));
    }
    co_return co_await inner_.Record(std::move(tenant), std::move(idempotency_key), event);
  }

  webhooks::Op<bool> Applied(std::string tenant, std::string idempotency_key) override {
    co_return co_await inner_.Applied(std::move(tenant), std::move(idempotency_key));
  }

 private:
  // Enqueues the jobs of the tenant's rules that `event` fires.
  asio::awaitable<absl::Status> Fire(const std::string& tenant, const std::string& key,
                                     const upstream::WebhookEvent& event) {
    absl::StatusOr<RuleSet> rules = co_await rules_.Rules(tenant);
    if (!rules.ok()) {
      metrics_.error.Increment();
      co_return rules.status();
    }
    std::vector<queue::JobSpec> jobs;
    for (const ActiveRule& active : **rules) {
      const store::Automation& rule = active.rule;
      if (campaign::TriggerEvent(rule.trigger) != event.name || rule.account != event.account) {
        continue;
      }
      queue::JobSpec job = ActionJob(rule, active.team, key, event.fan_id);
      if (absl::Status valid = queue::ValidateJobSpec(job); !valid.ok()) {
        // Made from stored values no retry will change: holding the event back would only
        // make the upstream retry it for days.
        metrics_.refused.Increment();
        log::Error("automation job refused",
                   {{"tenant", tenant}, {"automation", rule.id}, {"status", valid}});
        continue;
      }
      jobs.push_back(std::move(job));
    }
    if (jobs.empty()) co_return absl::OkStatus();
    // An event applied before acted then (its jobs are enqueued before it is applied): the
    // queue remembers their ids for a day or two, the ingest the event for longer.
    absl::StatusOr<bool> applied = co_await inner_.Applied(tenant, key);
    if (!applied.ok()) {
      metrics_.error.Increment();
      co_return applied.status();
    }
    if (*applied) {
      metrics_.duplicate.Increment(static_cast<double>(jobs.size()));
      co_return absl::OkStatus();
    }
    std::vector<std::string> ids;
    for (const queue::JobSpec& job : jobs) ids.push_back(job.id);
    absl::StatusOr<std::vector<queue::EnqueueResult>> results = co_await enqueue_(std::move(jobs));
    if (!results.ok()) {
      metrics_.error.Increment();
      co_return results.status();
    }
    if (results->size() != ids.size()) {
      metrics_.error.Increment();
      co_return absl::InternalError("the queue answered a different number of jobs");
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      switch ((*results)[i]) {
        case queue::EnqueueResult::kEnqueued:
          metrics_.enqueued.Increment();
          break;
        case queue::EnqueueResult::kDuplicate:
          metrics_.duplicate.Increment();
          break;
        case queue::EnqueueResult::kWrongTeam:
          metrics_.refused.Increment();
          log::Error("automation job refused: the account is registered with another team",
                     {{"tenant", tenant}, {"job", ids[i]}, {"account", event.account}});
          break;
      }
    }
    co_return absl::OkStatus();
  }

  webhooks::EventRecorder& inner_;
  RuleDirectory& rules_;
  const EnqueueJobs enqueue_;
  std::unique_ptr<metrics::Registry> own_registry_;
  TriggerMetrics metrics_;
};

}  // namespace

std::unique_ptr<RuleDirectory> MakeStoreRuleDirectory(store::Store& store) {
  return std::make_unique<StoreRuleDirectory>(store);
}

std::unique_ptr<RuleDirectory> MakeCachedRuleDirectory(std::unique_ptr<RuleDirectory> inner,
                                                       const Clock& clock, RuleCacheConfig config) {
  return std::make_unique<CachedRuleDirectory>(std::move(inner), clock, config);
}

std::unique_ptr<webhooks::EventRecorder> MakeTriggeringRecorder(webhooks::EventRecorder& inner,
                                                                RuleDirectory& rules,
                                                                EnqueueJobs enqueue,
                                                                metrics::Registry* registry) {
  return std::make_unique<TriggeringRecorder>(inner, rules, std::move(enqueue), registry);
}

}  // namespace herald::automation
