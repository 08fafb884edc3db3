#include <algorithm>
#include <unordered_map>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <herald/campaign/service.h>
#include <herald/campaign/state.h>
#include <herald/campaign/workflow.h>
#include <herald/common/grpc_status.h>
#include <herald/common/ids.h>
#include <herald/common/log.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/queue/queue.h>
#include <herald/store/audit.h>
#include <herald/store/crypto.h>
#include <herald/upstream/ids.h>
#include <herald/webhooks/ingest.h>

#include "lifecycle_metrics.h"

namespace herald::campaign {
namespace {

// What a team's secrets are sealed as (SecretBox's context).
std::string ApiKeyContext(std::string_view tenant, std::string_view team) {
  return store::TeamSecretContext(tenant, team, store::TeamSecret::kUpstreamApiKey);
}
std::string WebhookSecretContext(std::string_view tenant, std::string_view team) {
  return store::TeamSecretContext(tenant, team, store::TeamSecret::kWebhookSecret);
}

namespace asio = boost::asio;
using store::Campaign;
using store::CampaignPhase;
using store::Delivery;
using store::DeliveryState;

// How long a list-add batch's outcome outlives the wait of the call that asked for it.
constexpr absl::Duration kListAddOutcomeMargin = absl::Minutes(1);

bool Has(const std::vector<std::string>& fields, std::string_view f) {
  return std::find(fields.begin(), fields.end(), f) != fields.end();
}

absl::Status NotChangeable(const CampaignView& v, std::string_view what) {
  return absl::FailedPreconditionError(
      StrCat("campaign '", v.campaign.id, "' is ", CampaignStateName(v.state), ": ", what));
}

// The view of `campaign` at `revision` with these deliveries, but for the paused teams a live
// campaign names (NamesPausedTeams, AddPausedTeams).
CampaignView BaseView(Campaign campaign, int64_t revision,
                      const std::vector<Delivery>& deliveries) {
  CampaignView view;
  view.revision = revision;
  view.counts = CountDeliveries(deliveries);
  view.state = DeriveState(campaign, view.counts);
  if (IsFinal(view.state) && campaign.end_time_ms == 0) {
    // Finished by its deliveries: it ended with the last of them.
    for (const Delivery& d : deliveries) {
      campaign.end_time_ms = std::max(campaign.end_time_ms, d.update_time_ms);
    }
  }
  view.reason = campaign.phase_reason;
  // Paused, then finished by the deliveries the pause could not hold: the pause is history.
  if (IsFinal(view.state) && campaign.phase == CampaignPhase::kPaused) view.reason.clear();
  // Cancelled after its messages went out, and the upstream took none of them back: the state
  // says no more is sent, the reason that everything was (or, beside failed deliveries, that
  // what went out stays out). Only once the cancel has settled every delivery.
  const DeliveryCounts& c = view.counts;
  if (campaign.phase == CampaignPhase::kCancelled && c.cancelled == 0 && c.pending == 0 &&
      c.in_progress == 0 && c.failed < c.total &&
      std::none_of(deliveries.begin(), deliveries.end(), CancelUnsettled)) {
    view.reason = StrCat(view.reason,
                         c.failed == 0 ? "; every message had gone out and none could be unsent "
                                       : "; none of the messages that went out could be unsent ",
                         "(each delivery's cancel_outcome says why)");
  }
  // Ended without success because messages were taken back on the upstream, not by Herald: the
  // reason says so, as it names a failure.
  if (IsFinal(view.state) && view.reason.empty() && c.failed == 0 && c.cancelled > 0 &&
      campaign.phase != CampaignPhase::kCancelled) {
    for (const Delivery& d : deliveries) {
      if (d.state == DeliveryState::kCancelled) {
        view.reason = StrCat(c.cancelled, " of ", c.total, " deliveries' messages were ",
                             kUnsentElsewhere, "; first: ", d.account);
        break;
      }
    }
  }
  if (IsFinal(view.state) && view.counts.failed > 0 && view.reason.empty()) {
    for (const Delivery& d : deliveries) {
      if (d.state == DeliveryState::kFailed) {
        view.reason = StrCat(view.counts.failed, " of ", view.counts.total,
                             " deliveries failed; first: ", d.account, ": ", d.error);
        break;
      }
    }
  }
  view.campaign = std::move(campaign);
  return view;
}

// Whether the view says which of the campaign's teams hold it up.
bool NamesPausedTeams(const CampaignView& view) {
  return !IsFinal(view.state) && view.campaign.phase != CampaignPhase::kDraft;
}

// The teams of `accounts`, sorted, each once.
std::vector<std::string> TeamsOf(const std::vector<store::Account>& accounts) {
  std::vector<std::string> teams;
  teams.reserve(accounts.size());
  for (const store::Account& a : accounts) teams.push_back(a.team);
  std::sort(teams.begin(), teams.end());
  teams.erase(std::unique(teams.begin(), teams.end()), teams.end());
  return teams;
}

void AddPausedTeams(CampaignView& view, const std::vector<std::optional<store::Team>>& teams) {
  for (const auto& team : teams) {
    if (team && team->paused) {
      StrAppend(&view.reason, view.reason.empty() ? "" : "; ", "team '", team->id,
                "' is paused: ", team->pause_reason);
    }
  }
}

// Accounts paused by the agency (AccountService.PauseAccount) hold their deliveries too.
void AddPausedAccounts(CampaignView& view, const std::vector<store::Account>& accounts) {
  constexpr size_t kNamed = 3;
  std::vector<std::string> paused;
  for (const store::Account& a : accounts) {
    if (a.paused) paused.push_back(StrCat("'", a.id, "'"));
  }
  if (paused.empty()) return;
  const size_t more = paused.size() > kNamed ? paused.size() - kNamed : 0;
  paused.resize(std::min(paused.size(), kNamed));
  StrAppend(&view.reason, view.reason.empty() ? "" : "; ",
            paused.size() + more == 1 ? "account " : "accounts ", StrJoin(paused, ", "),
            more > 0 ? StrCat(" and ", more, " more") : "",
            paused.size() + more == 1 ? " is" : " are", " paused (ResumeAccount to send)");
}

// The limiter's bucket for a team: no minute carries more than its rate_limit_per_minute
// calls, bursts of its burst included.
ratelimit::Limit TeamLimit(const store::Team& team) {
  return ratelimit::AtMostPerMinute(team.rate_limit_per_minute, TeamBurst(team));
}

// A burst above the rate is refused.
absl::Status CheckBurst(const store::Team& team) {
  if (team.burst > team.rate_limit_per_minute) {
    return absl::InvalidArgumentError(
        StrCat("team.burst: at most rate_limit_per_minute (", team.rate_limit_per_minute, ")"));
  }
  return absl::OkStatus();
}

// Service::ReferenceLookups: the media, then the accounts, then the segments.
constexpr size_t kAccountReferences = 1;

// Scheduled or dispatched: what LaunchCampaign and ResumeCampaign leave a campaign in.
bool Launched(const Campaign& c) {
  return c.phase == CampaignPhase::kScheduled || c.phase == CampaignPhase::kDispatched;
}

// A store write that failed this way wrote nothing (the record's checks refused it, or lost to
// concurrent writers): its outbox entry owes nothing. Other failures (Redis unreachable, a
// deadline) may have come after the write.
bool NothingWritten(const absl::Status& status) {
  return absl::IsNotFound(status) || absl::IsFailedPrecondition(status) ||
         absl::IsInvalidArgument(status) || absl::IsAborted(status) ||
         absl::IsAlreadyExists(status);
}

// The last four characters of an upstream key, to tell keys apart; none for a key so short that
// they would give most of it away.
std::string KeyHint(std::string_view key) {
  constexpr size_t kShown = 4, kShortest = 12;
  return key.size() < kShortest ? "" : std::string(key.substr(key.size() - kShown));
}

}  // namespace

std::string_view TriggerEvent(store::AutomationTrigger trigger) {
  switch (trigger) {
    case store::AutomationTrigger::kNewSubscriber:
      return "subscriptions.new";
    case store::AutomationTrigger::kRenewal:
      return "subscriptions.renewed";
    case store::AutomationTrigger::kExpiry:
      return "subscriptions.expired";
    case store::AutomationTrigger::kPpvUnlock:
      return "messages.ppv.unlocked";
    case store::AutomationTrigger::kUnspecified:
      break;
  }
  return {};
}

Service::Service(store::Store& store, queue::Queue& queue, const store::SecretBox& box,
                 UpstreamClients& clients, const Clock& clock, ServiceConfig config)
    : store_(store),
      queue_(queue),
      box_(box),
      clients_(clients),
      clock_(clock),
      config_(std::move(config)),
      ids_(clock) {}

Service::~Service() = default;

void Service::UseMetrics(metrics::Registry& registry) {
  lifecycle_ = std::make_unique<internal::LifecycleMetrics>(registry);
}

std::string Caller::Actor() const {
  if (admin) return "platform-admin";
  return StrCat("tenants/", tenant, "/apiKeys/", key);
}

void Service::UseAuditTrail(store::AuditTrail& trail) { audit_ = &trail; }

asio::awaitable<void> Service::Audit(const Caller& caller, std::string_view action,
                                     std::string_view tenant, std::string_view resource,
                                     std::string_view detail) {
  if (audit_ == nullptr) co_return;
  store::AuditEvent event{.actor = caller.Actor(),
                          .action = std::string(action),
                          .tenant = std::string(tenant),
                          .resource = std::string(resource),
                          .detail = std::string(detail)};
  const absl::Status written = co_await audit_->Append(event);
  if (!written.ok()) {
    log::Error("audit trail: an operation could not be recorded", {{"action", event.action},
                                                                   {"resource", event.resource},
                                                                   {"actor", event.actor},
                                                                   {"error", written.ToString()}});
  }
}

Service::Op<store::AuditPage> Service::ListAuditEvents(store::AuditQuery query) {
  if (audit_ == nullptr)
    co_return absl::FailedPreconditionError("this server keeps no audit trail");
  co_return co_await audit_->List(std::move(query));
}

Service::Op<Service::Rotation> Service::RotateEncryptionKey() {
  Rotation rotation{.key_id = box_.key_id()};
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Tenant> tenants, co_await ListTenants());
  for (const store::Tenant& tenant : tenants) {
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Team> teams, co_await ListTeams(tenant.id));
    for (const store::Team& team : teams) {
      ++rotation.teams;
      const auto current = [&](const std::string& sealed) {
        return sealed.empty() || box_.SealedUnderCurrentKey(sealed);
      };
      if (current(team.sealed_api_key) && current(team.sealed_webhook_secret) &&
          current(team.sealed_previous_webhook_secret)) {
        continue;
      }
      // Compare-and-set: a team changed meanwhile (a new key set through the API) is read again
      // and only what is still under an old key is sealed again.
      int resealed = 0;
      std::string unreadable;
      auto updated = co_await store_.Update<store::Team>(tenant.id, team.id, [&](store::Team& t) {
        resealed = 0;
        unreadable.clear();
        const std::pair<std::string*, store::TeamSecret> secrets[] = {
            {&t.sealed_api_key, store::TeamSecret::kUpstreamApiKey},
            {&t.sealed_webhook_secret, store::TeamSecret::kWebhookSecret},
            {&t.sealed_previous_webhook_secret, store::TeamSecret::kWebhookSecret}};
        for (const auto& [sealed, which] : secrets) {
          if (current(*sealed)) continue;
          const std::string context = store::TeamSecretContext(t.tenant, t.id, which);
          absl::StatusOr<std::string> plain = box_.Open(*sealed, context);
          if (!plain.ok()) {
            unreadable = std::string(plain.status().message());
            continue;
          }
          *sealed = box_.Seal(*plain, context);
          ++resealed;
        }
        return absl::OkStatus();
      });
      if (!updated.ok() && !absl::IsNotFound(updated.status())) co_return updated.status();
      if (updated.ok()) rotation.resealed += resealed;
      if (updated.ok() && !unreadable.empty()) {
        rotation.unreadable.push_back(
            StrCat("tenants/", tenant.id, "/teams/", team.id, ": ", unreadable));
      }
    }
  }
  co_return rotation;
}

void Service::Count(const CampaignView& view) {
  if (lifecycle_ != nullptr) lifecycle_->CampaignEntered(view.campaign.tenant, view.state);
}

Service::Op<Caller> Service::Authenticate(std::string_view bearer) {
  if (bearer.empty()) {
    co_return absl::UnauthenticatedError(
        "missing credentials: send 'authorization: Bearer <API key>'");
  }
  if (!config_.admin_key.empty() && store::ConstantTimeEquals(bearer, config_.admin_key)) {
    co_return Caller{.admin = true};
  }
  // Keys are found by the hash of the secret; the lookup itself compares hashes, so the secret
  // never meets a comparison that could leak its prefix through timing.
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<store::ApiKey> key,
                             co_await store_.FindApiKey(store::Sha256Hex(bearer)));
  if (!key || key->revoke_time_ms != 0) {
    co_return absl::UnauthenticatedError("invalid or revoked API key");
  }
  co_return Caller{.tenant = key->tenant, .key = key->id};
}

// ---- tenants and keys

Service::Op<store::Created<store::Tenant>> Service::CreateTenant(store::Tenant tenant,
                                                                 store::RequestId request_id) {
  tenant.create_time_ms = absl::ToUnixMillis(clock_.Now());
  HERALD_CO_ASSIGN_OR_RETURN(auto created,
                             co_await store_.Create(std::move(tenant), std::move(request_id)));
  // On a replay too: a create whose weight did not reach the queue is completed by its retry.
  HERALD_CO_RETURN_IF_ERROR(
      co_await queue_.SetTenantWeight(created.value.id, created.value.scheduling_weight));
  co_return created;
}

Service::Op<store::Tenant> Service::GetTenant(std::string id) {
  co_return co_await store_.Get<store::Tenant>("", std::move(id));
}

Service::Op<store::Tenant> Service::UpdateTenant(store::Tenant update,
                                                 std::vector<std::string> fields) {
  HERALD_CO_ASSIGN_OR_RETURN(
      store::Tenant tenant,
      co_await store_.Update<store::Tenant>("", update.id, [&](store::Tenant& t) {
        if (Has(fields, "display_name")) t.display_name = update.display_name;
        if (Has(fields, "scheduling_weight")) t.scheduling_weight = update.scheduling_weight;
        return absl::OkStatus();
      }));
  HERALD_CO_RETURN_IF_ERROR(co_await queue_.SetTenantWeight(tenant.id, tenant.scheduling_weight));
  co_return tenant;
}

Service::Op<std::vector<store::Tenant>> Service::ListTenants() {
  co_return co_await store_.List<store::Tenant>("");
}

Service::Op<std::pair<store::ApiKey, std::string>> Service::CreateApiKey(
    std::string tenant, std::string display_name, store::RequestId request_id) {
  HERALD_CO_RETURN_IF_ERROR((co_await GetTenant(tenant)).status());
  const std::string secret = StrCat("hk_", store::RandomToken(32));
  store::ApiKey key{.tenant = tenant,
                    .id = ids_.Next(),
                    .display_name = std::move(display_name),
                    .secret_prefix = secret.substr(0, 8),
                    .secret_sha256 = store::Sha256Hex(secret),
                    .create_time_ms = absl::ToUnixMillis(clock_.Now())};
  HERALD_CO_ASSIGN_OR_RETURN(auto created, co_await store_.Create(key, std::move(request_id)));
  co_return std::make_pair(created.value, created.replayed ? std::string() : secret);
}

Service::Op<std::vector<store::ApiKey>> Service::ListApiKeys(std::string tenant) {
  HERALD_CO_RETURN_IF_ERROR((co_await GetTenant(tenant)).status());
  co_return co_await store_.List<store::ApiKey>(std::move(tenant));
}

Service::Op<Service::Revoked> Service::RevokeApiKey(std::string tenant, std::string id) {
  const int64_t now = absl::ToUnixMillis(clock_.Now());
  bool revoked_now = false;
  HERALD_CO_ASSIGN_OR_RETURN(store::ApiKey key,
                             co_await store_.Update<store::ApiKey>(
                                 std::move(tenant), std::move(id), [&](store::ApiKey& k) {
                                   revoked_now = k.revoke_time_ms == 0;
                                   if (revoked_now) k.revoke_time_ms = now;
                                   return absl::OkStatus();
                                 }));
  co_return Revoked{.key = std::move(key), .now = revoked_now};
}

// ---- teams and accounts

void Service::RotateWebhookSecret(store::Team& team, std::string_view secret) const {
  team.sealed_previous_webhook_secret = team.sealed_webhook_secret;
  team.sealed_webhook_secret = box_.Seal(secret, WebhookSecretContext(team.tenant, team.id));
  // The previous secret's overlap starts when the upstream signs with the new one: now, for a
  // webhook set up outside Herald (its owner switched it); once the registration succeeds, for
  // one Herald registered (RegisterTeamWebhook). A secret set on the latter by UpdateTeam, which
  // tells the upstream nothing, leaves the previous one accepted until the next change.
  team.webhook_secret_rotate_time_ms =
      team.webhook_id.empty() ? absl::ToUnixMillis(clock_.Now()) : 0;
}

Service::Op<store::Created<store::Team>> Service::CreateTeam(store::Team team, TeamSecrets secrets,
                                                             store::RequestId request_id) {
  if (!secrets.api_key) co_return absl::InvalidArgumentError("team.upstream_api_key: is required");
  const std::string& api_key = *secrets.api_key;
  team.sealed_api_key = box_.Seal(api_key, ApiKeyContext(team.tenant, team.id));
  team.api_key_hint = KeyHint(api_key);
  if (secrets.webhook_secret) {
    team.sealed_webhook_secret =
        box_.Seal(*secrets.webhook_secret, WebhookSecretContext(team.tenant, team.id));
  }
  team.create_time_ms = absl::ToUnixMillis(clock_.Now());
  HERALD_CO_RETURN_IF_ERROR(CheckBurst(team));
  HERALD_CO_ASSIGN_OR_RETURN(auto created, co_await store_.Create(team, std::move(request_id)));
  // Named, not a braced temporary inside co_await: g++ 12 destroys such temporaries twice.
  // The created team, not the request's: a replay answers with the first create's team.
  const ratelimit::Limit limit = TeamLimit(created.value);
  const std::string queue_team = QueueTeam(created.value.tenant, created.value.id);
  HERALD_CO_RETURN_IF_ERROR(co_await queue_.SetTeamLimits(queue_team, limit));
  // A team of this id deleted while paused left its pause in the queue.
  if (!created.value.paused) HERALD_CO_RETURN_IF_ERROR(co_await queue_.ResumeTeam(queue_team));
  if (!created.replayed && !config_.public_webhook_url.empty()) {
    // The team exists whatever happens here; a failed registration shows in webhook_error and
    // is retried with RegisterTeamWebhook.
    auto registered = co_await RegisterTeamWebhook(team.tenant, created.value.id,
                                                   secrets.webhook_secret.value_or(""));
    if (registered.ok()) {
      created.value = *std::move(registered);
    } else {
      log::Warn("team webhook registration failed", {{"tenant", team.tenant},
                                                     {"team", created.value.id},
                                                     {"error", registered.status().ToString()}});
      auto current = co_await GetTeam(team.tenant, created.value.id);
      if (current.ok()) created.value = *std::move(current);
    }
  }
  co_return created;
}

Service::Op<store::Team> Service::RegisterTeamWebhook(std::string tenant, std::string id,
                                                      std::string secret) {
  if (config_.public_webhook_url.empty()) {
    co_return absl::FailedPreconditionError(
        "Herald has no public webhook URL (--public_webhook_url); webhooks cannot be registered");
  }
  HERALD_CO_ASSIGN_OR_RETURN(store::Team team, co_await GetTeam(tenant, id));
  HERALD_CO_ASSIGN_OR_RETURN(std::shared_ptr<upstream::Api> api, clients_.For(team));
  upstream::WebhookSpec spec;
  spec.endpoint_url = TeamWebhookUrl(tenant, id);
  HERALD_CO_ASSIGN_OR_RETURN(spec.events, co_await TeamWebhookEvents(tenant, id));
  // A paused or throttled team is refused before anything changes.
  HERALD_CO_RETURN_IF_ERROR(co_await Pace(tenant, id, nullptr));

  // The secret is stored before the upstream learns it, and the one before stays accepted beside
  // it: events signed before the switch (or with the old one, if telling the upstream fails) are
  // still taken. Until a registration succeeds the upstream may sign with either, so a
  // registration after one that failed (or never finished: webhook_error is set with the
  // secret) offers the same secret again instead of rotating the older one out.
  absl::Status opened;
  HERALD_CO_RETURN_IF_ERROR(
      (co_await store_.Update<store::Team>(tenant, id, [&](store::Team& t) {
        spec.signing_secret = secret;
        opened = absl::OkStatus();
        if (secret.empty() && !t.webhook_error.empty() && !t.sealed_webhook_secret.empty()) {
          absl::StatusOr<std::string> pending =
              box_.Open(t.sealed_webhook_secret, WebhookSecretContext(t.tenant, t.id));
          if (pending.ok()) spec.signing_secret = *std::move(pending);
          opened = pending.status();
        } else {
          if (spec.signing_secret.empty()) {
            spec.signing_secret = store::RandomToken(32);
          }
          RotateWebhookSecret(t, spec.signing_secret);
        }
        t.webhook_error = "registration with the upstream did not finish";
        return opened;
      })).status());

  std::string existing = team.webhook_id;
  absl::Status status;
  bool called = false;   // whether the upstream was asked yet (each call takes a token)
  bool refused = false;  // whether `status` is the upstream's answer, not the limiter's
  upstream::Result<upstream::Webhook> result;
  if (existing.empty()) {
    // Herald's webhook may exist upstream without its id stored here (a registration whose
    // answer was lost): it is looked for first, and a failed look creates none, since a second
    // webhook would deliver, and charge for, every event twice.
    auto listed = co_await api->ListWebhooks();
    called = true;
    if (listed.ok()) {
      for (const upstream::Webhook& w : *listed.value) {
        if (w.url == spec.endpoint_url) existing = w.id;
      }
    } else {
      status = listed.status();
      refused = true;
    }
  }
  if (status.ok() && !existing.empty()) {
    if (called) status = co_await Pace(tenant, id, nullptr);
    if (status.ok()) {
      result = co_await api->UpdateWebhook(existing, spec);
      status = result.status();
      refused = !status.ok();
    }
  }
  if (status.ok() ? existing.empty() : absl::IsNotFound(status) && !existing.empty()) {
    status = co_await Pace(tenant, id, nullptr);
    if (status.ok()) {
      result = co_await api->CreateWebhook(spec);  // none yet, or deleted upstream meanwhile
      status = result.status();
      refused = !status.ok();
    }
  }
  const std::string webhook_id = status.ok() ? result.value->id : existing;
  HERALD_CO_ASSIGN_OR_RETURN(store::Team saved,
                             co_await store_.Update<store::Team>(tenant, id, [&](store::Team& t) {
                               t.webhook_id = webhook_id;
                               t.webhook_error = status.ok() ? "" : std::string(status.message());
                               // The upstream signs with the new secret from now on: the
                               // previous one's overlap starts.
                               if (status.ok())
                                 t.webhook_secret_rotate_time_ms = absl::ToUnixMillis(clock_.Now());
                               return absl::OkStatus();
                             }));
  if (refused) {
    co_return co_await UpstreamFailed(tenant, id, "registering the team's webhook", status);
  }
  HERALD_CO_RETURN_IF_ERROR(status);
  co_return saved;
}

std::string Service::TeamWebhookUrl(std::string_view tenant, std::string_view team) const {
  std::string_view base = config_.public_webhook_url;
  while (base.ends_with('/')) base.remove_suffix(1);
  return StrCat(base, "/", webhooks::EndpointId(tenant, team));
}

Service::Op<std::vector<std::string>> Service::TeamWebhookEvents(const std::string& tenant,
                                                                 const std::string& team) {
  std::vector<std::string> events(std::begin(kWebhookEvents), std::end(kWebhookEvents));
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Automation> rules,
                             co_await store_.List<store::Automation>(tenant));
  if (rules.empty()) co_return events;
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Account> accounts,
                             co_await ListAccounts(tenant, team));
  absl::flat_hash_set<std::string_view> own;
  for (const store::Account& a : accounts) own.insert(a.id);
  for (const store::Automation& rule : rules) {
    const std::string_view event = TriggerEvent(rule.trigger);
    if (own.contains(rule.account) && !event.empty() &&
        std::ranges::find(events, event) == events.end()) {
      events.emplace_back(event);
    }
  }
  co_return events;
}

Service::Op<bool> Service::SyncTeamWebhookEvents(std::string tenant, std::string account_id,
                                                 std::string also) {
  HERALD_CO_ASSIGN_OR_RETURN(store::Account account, co_await GetAccount(tenant, account_id));
  HERALD_CO_ASSIGN_OR_RETURN(store::Team team, co_await GetTeam(tenant, account.team));
  // A webhook set up outside Herald (only its secret given) carries what its owner chose.
  if (team.webhook_id.empty() || config_.public_webhook_url.empty()) co_return false;
  absl::StatusOr<std::string> secret =
      box_.Open(team.sealed_webhook_secret, WebhookSecretContext(team.tenant, team.id));
  if (!secret.ok()) co_return absl::FailedPreconditionError("the webhook secret cannot be opened");
  upstream::WebhookSpec spec;
  spec.endpoint_url = TeamWebhookUrl(tenant, team.id);
  HERALD_CO_ASSIGN_OR_RETURN(spec.events, co_await TeamWebhookEvents(tenant, team.id));
  if (!also.empty() && std::ranges::find(spec.events, also) == spec.events.end()) {
    spec.events.push_back(std::move(also));
  }
  spec.signing_secret = *std::move(secret);  // unchanged: events signed now stay valid
  HERALD_CO_ASSIGN_OR_RETURN(std::shared_ptr<upstream::Api> api, clients_.For(team));
  HERALD_CO_RETURN_IF_ERROR(co_await Pace(tenant, team.id, nullptr));
  upstream::Result<upstream::Webhook> updated =
      co_await api->UpdateWebhook(team.webhook_id, std::move(spec));
  if (!updated.ok()) {
    co_return co_await UpstreamFailed(tenant, team.id, "changing the events of the team's webhook",
                                      updated.status());
  }
  co_return true;
}

Service::Op<std::pair<std::string, std::string>> Service::TeamWebhookSecrets(std::string tenant,
                                                                             std::string id) {
  HERALD_CO_ASSIGN_OR_RETURN(store::Team team, co_await GetTeam(tenant, id));
  if (team.sealed_webhook_secret.empty()) {
    co_return absl::NotFoundError(StrCat("team '", id, "' has no webhook"));
  }
  auto secret = box_.Open(team.sealed_webhook_secret, WebhookSecretContext(team.tenant, team.id));
  if (!secret.ok()) {
    // Sealed under a key this process lacks (FailedPrecondition: another process may hold it),
    // or not a secret of this team at all (DataLoss: altered, or copied from another record).
    co_return absl::Status(secret.status().code(), StrCat("the webhook secret cannot be opened: ",
                                                          secret.status().message()));
  }
  // The previous secret is accepted while a registration has not finished (the upstream may sign
  // with either), then for the overlap after the change.
  std::string previous;
  const bool overlap_over =
      team.webhook_error.empty() && team.webhook_secret_rotate_time_ms != 0 &&
      clock_.Now() - absl::FromUnixMillis(team.webhook_secret_rotate_time_ms) >=
          config_.webhook_secret_overlap;
  if (!team.sealed_previous_webhook_secret.empty() && !overlap_over) {
    auto opened =
        box_.Open(team.sealed_previous_webhook_secret, WebhookSecretContext(team.tenant, team.id));
    if (opened.ok()) previous = *std::move(opened);
  }
  co_return std::make_pair(*std::move(secret), std::move(previous));
}

Service::Op<store::Team> Service::GetTeam(std::string tenant, std::string id) {
  co_return co_await store_.Get<store::Team>(std::move(tenant), std::move(id));
}

Service::Op<std::vector<store::Team>> Service::ListTeams(std::string tenant) {
  co_return co_await store_.List<store::Team>(std::move(tenant));
}

Service::Op<store::Team> Service::UpdateTeam(store::Team update, TeamSecrets secrets,
                                             std::vector<std::string> fields) {
  std::string sealed, hint;
  if (secrets.api_key) {
    sealed = box_.Seal(*secrets.api_key, ApiKeyContext(update.tenant, update.id));
    hint = KeyHint(*secrets.api_key);
  }
  bool resume = false;  // a new key for a team paused because its key was refused
  HERALD_CO_ASSIGN_OR_RETURN(
      store::Team team,
      co_await store_.Update<store::Team>(update.tenant, update.id, [&](store::Team& t) {
        resume = false;
        if (Has(fields, "display_name")) t.display_name = update.display_name;
        if (Has(fields, "rate_limit_per_minute")) {
          t.rate_limit_per_minute = update.rate_limit_per_minute;
        }
        if (Has(fields, "burst")) t.burst = update.burst;
        HERALD_RETURN_IF_ERROR(CheckBurst(t));
        if (secrets.api_key) {
          t.sealed_api_key = sealed;
          t.api_key_hint = hint;
          // A team paused with PauseTeam stays paused until ResumeTeam.
          if (t.api_key_invalid && t.paused && !t.paused_on_request) {
            t.paused = false;
            t.pause_reason.clear();
            EndPause(t.pauses, absl::ToUnixMillis(clock_.Now()));
            resume = true;
          }
          t.api_key_invalid = false;
        }
        if (secrets.webhook_secret) RotateWebhookSecret(t, *secrets.webhook_secret);
        return absl::OkStatus();
      }));
  const ratelimit::Limit limit = TeamLimit(team);
  HERALD_CO_RETURN_IF_ERROR(co_await queue_.SetTeamLimits(QueueTeam(team.tenant, team.id), limit));
  if (resume)
    HERALD_CO_RETURN_IF_ERROR(co_await queue_.ResumeTeam(QueueTeam(team.tenant, team.id)));
  co_return team;
}

Service::Op<bool> Service::DeleteTeam(std::string tenant, std::string id) {
  HERALD_CO_ASSIGN_OR_RETURN(store::Team team, co_await GetTeam(tenant, id));
  HERALD_CO_ASSIGN_OR_RETURN(auto accounts, co_await ListAccounts(tenant, id));
  if (!accounts.empty()) {
    co_return absl::FailedPreconditionError(
        StrCat("team '", id, "' still has ", accounts.size(), " accounts; delete them first"));
  }
  if (!team.webhook_id.empty()) HERALD_CO_RETURN_IF_ERROR(co_await DeleteTeamWebhook(team));
  co_return co_await store_.Delete<store::Team>(std::move(tenant), std::move(id));
}

asio::awaitable<absl::Status> Service::DeleteTeamWebhook(const store::Team& team) {
  const auto left = [&](const absl::Status& why) {
    log::Warn("deleting a team whose webhook stays registered upstream",
              {{"tenant", team.tenant},
               {"team", team.id},
               {"webhook", team.webhook_id},
               {"reason", why.ToString()}});
    return absl::OkStatus();
  };
  absl::StatusOr<std::shared_ptr<upstream::Api>> api = clients_.For(team);
  if (!api.ok()) co_return left(api.status());
  const absl::Status paced = co_await Pace(team.tenant, team.id, nullptr);
  if (absl::IsFailedPrecondition(paced)) co_return left(paced);  // the team is paused
  HERALD_CO_RETURN_IF_ERROR(paced);
  upstream::Result<bool> deleted = co_await (*api)->DeleteWebhook(team.webhook_id);
  const absl::Status status = deleted.status();
  if (status.ok() || absl::IsNotFound(status)) co_return absl::OkStatus();
  const std::optional<upstream::UpstreamError> e = upstream::GetUpstreamError(status);
  if (upstream::IsTransient(e) || e->kind == upstream::ErrorKind::kRateLimited) {
    co_return co_await UpstreamFailed(team.tenant, team.id, "deleting the team's webhook", status);
  }
  co_return left(status);
}

Service::Op<store::Team> Service::PauseTeam(std::string tenant, std::string id) {
  const int64_t now = absl::ToUnixMillis(clock_.Now());
  HERALD_CO_ASSIGN_OR_RETURN(
      store::Team team, co_await store_.Update<store::Team>(tenant, id, [&now](store::Team& t) {
        if (!t.paused) BeginPause(t.pauses, now);
        t.paused = true;
        t.paused_on_request = true;
        t.pause_reason =
            "paused with PauseTeam: nothing goes upstream for its accounts until "
            "ResumeTeam";
        return absl::OkStatus();
      }));
  HERALD_CO_RETURN_IF_ERROR(co_await queue_.PauseTeam(QueueTeam(tenant, id)));
  co_return team;
}

Service::Op<store::Team> Service::ResumeTeam(std::string tenant, std::string id) {
  const int64_t now = absl::ToUnixMillis(clock_.Now());
  HERALD_CO_ASSIGN_OR_RETURN(
      store::Team team, co_await store_.Update<store::Team>(tenant, id, [&now](store::Team& t) {
        if (t.api_key_invalid) {
          return absl::FailedPreconditionError(
              "the team's upstream key was refused; set a new one with UpdateTeam first");
        }
        if (t.paused) EndPause(t.pauses, now);
        t.paused = false;
        t.paused_on_request = false;
        t.pause_reason.clear();
        return absl::OkStatus();
      }));
  HERALD_CO_RETURN_IF_ERROR(co_await queue_.ResumeTeam(QueueTeam(tenant, id)));
  co_return team;
}

asio::awaitable<absl::Status> Service::ApplyAccountLimits(const store::Account& account,
                                                          bool created) {
  // A created account may have been deleted from another team before: the queue moves it.
  // No minute carries more than the account's pace, its burst of a second's worth included.
  const ratelimit::Limit pace = ratelimit::AtMostPerMinute(
      account.sends_per_minute, std::max<int64_t>(1, account.sends_per_minute / 60));
  queue::AccountSettings settings{.tenant = account.tenant,
                                  .team = QueueTeam(account.tenant, account.team),
                                  .per_minute = pace.per_minute,
                                  .burst = pace.burst,
                                  .max_in_flight = account.max_in_flight,
                                  .move = created};
  HERALD_CO_RETURN_IF_ERROR(co_await queue_.SetAccountLimits(
      QueueAccount(account.tenant, account.id), std::move(settings)));
  const std::string team = QueueTeam(account.tenant, account.team);
  const std::string id = QueueAccount(account.tenant, account.id);
  if (account.paused) co_return co_await queue_.PauseAccount(team, id);
  co_return co_await queue_.ResumeAccount(team, id);
}

Service::Op<store::Created<store::Account>> Service::CreateAccount(store::Account account,
                                                                   store::RequestId request_id) {
  auto team = co_await GetTeam(account.tenant, account.team);
  if (absl::IsNotFound(team.status())) {
    co_return absl::NotFoundError(StrCat("account.team: team '", account.team, "' not found"));
  }
  HERALD_CO_RETURN_IF_ERROR(team.status());
  co_return co_await StoreAccount(std::move(account), std::move(request_id));
}

Service::Op<store::Created<store::Account>> Service::StoreAccount(store::Account account,
                                                                  store::RequestId request_id) {
  account.create_time_ms = absl::ToUnixMillis(clock_.Now());
  HERALD_CO_ASSIGN_OR_RETURN(auto created, co_await store_.Create(account, std::move(request_id)));
  HERALD_CO_RETURN_IF_ERROR(co_await ApplyAccountLimits(created.value, /*created=*/true));
  co_return created;
}

Service::Op<store::Account> Service::GetAccount(std::string tenant, std::string id) {
  co_return co_await store_.Get<store::Account>(std::move(tenant), std::move(id));
}

Service::Op<std::vector<store::Account>> Service::ListAccounts(std::string tenant,
                                                               std::string team) {
  HERALD_CO_ASSIGN_OR_RETURN(auto all, co_await store_.List<store::Account>(std::move(tenant)));
  if (!team.empty()) {
    std::erase_if(all, [&](const store::Account& a) { return a.team != team; });
  }
  co_return all;
}

Service::Op<store::Account> Service::UpdateAccount(store::Account update,
                                                   std::vector<std::string> fields) {
  HERALD_CO_ASSIGN_OR_RETURN(
      store::Account account,
      co_await store_.Update<store::Account>(update.tenant, update.id, [&](store::Account& a) {
        if (!update.team.empty() && update.team != a.team) {
          return absl::InvalidArgumentError(
              StrCat("account.team: is immutable: the account is in tenants/", a.tenant, "/teams/",
                     a.team, "; delete it and create it in the other team to move it"));
        }
        if (Has(fields, "display_name")) a.display_name = update.display_name;
        if (Has(fields, "sends_per_minute")) a.sends_per_minute = update.sends_per_minute;
        if (Has(fields, "max_in_flight")) a.max_in_flight = update.max_in_flight;
        return absl::OkStatus();
      }));
  HERALD_CO_RETURN_IF_ERROR(co_await ApplyAccountLimits(account, /*created=*/false));
  co_return account;
}

Service::Op<std::optional<std::string>> Service::UnfinishedCampaignWith(const std::string& tenant,
                                                                        Use use) {
  std::optional<double> before;
  do {
    HERALD_CO_ASSIGN_OR_RETURN(auto page, co_await store_.ListCampaigns(tenant, before, 200));
    std::vector<bool> targeting;  // kAccount: whether each campaign of the page targets it
    if (use.kind == Use::Kind::kAccount) {
      std::vector<std::string> ids;
      ids.reserve(page.campaigns.size());
      for (const Campaign& c : page.campaigns) ids.push_back(c.id);
      HERALD_CO_ASSIGN_OR_RETURN(targeting,
                                 co_await store_.CampaignsTargeting(tenant, ids, use.id));
    }
    for (size_t i = 0; i < page.campaigns.size(); ++i) {
      Campaign& c = page.campaigns[i];
      if (use.skip_drafts && c.phase == store::CampaignPhase::kDraft) continue;
      bool uses = false;
      switch (use.kind) {
        case Use::Kind::kAccount:
          uses = i < targeting.size() && targeting[i];
          break;
        case Use::Kind::kMediaAsset:
          uses = std::find(c.content.media.begin(), c.content.media.end(), use.id) !=
                 c.content.media.end();
          break;
        case Use::Kind::kSegment: {
          HERALD_CO_ASSIGN_OR_RETURN(c.targets, co_await store_.CampaignTargets(tenant, c.id));
          uses = std::any_of(c.targets.begin(), c.targets.end(),
                             [&](const store::AccountTarget& t) { return t.segment == use.id; });
          break;
        }
      }
      if (!uses) continue;
      HERALD_CO_ASSIGN_OR_RETURN(const bool finished, co_await Finished(c));
      if (!finished) co_return std::optional<std::string>(c.id);
      if (use.kind == Use::Kind::kAccount && c.phase == CampaignPhase::kCancelled) {
        HERALD_CO_ASSIGN_OR_RETURN(const bool settled, co_await CancelSettledOn(c, use.id));
        if (!settled) co_return std::optional<std::string>(c.id);
      }
    }
    before = page.next_before;
  } while (before);
  co_return std::optional<std::string>();
}

Service::Op<bool> Service::CancelSettledOn(const Campaign& campaign, const std::string& account) {
  // Cancelled is final at once, but its cancel may still be taking the account's message back,
  // waiting for a send in flight to land, or not have reached the delivery yet (a cancel that
  // stopped part-way, which the dispatch sweep finishes): the account is in use till then (one
  // deleted meanwhile would leave a paid message out, and the cancel never settled).
  absl::StatusOr<Delivery> d = co_await store_.GetDelivery(campaign.tenant, campaign.id, account);
  if (absl::IsNotFound(d.status())) co_return true;
  HERALD_CO_RETURN_IF_ERROR(d.status());
  const bool reached = !d->cancel_outcome.empty() || d->state == DeliveryState::kCancelled ||
                       d->state == DeliveryState::kFailed;
  co_return reached && !CancelUnsettled(*d);
}

Service::Op<bool> Service::Finished(const Campaign& campaign) {
  // A campaign's state is its phase unless it is launched (DeriveState).
  if (!Launched(campaign)) co_return IsFinal(DeriveState(campaign, DeliveryCounts{}));
  HERALD_CO_ASSIGN_OR_RETURN(auto deliveries,
                             co_await store_.ListDeliveries(campaign.tenant, campaign.id));
  co_return IsFinal(DeriveState(campaign, CountDeliveries(deliveries)));
}

Service::Op<bool> Service::DeleteAccount(std::string tenant, std::string id) {
  HERALD_CO_RETURN_IF_ERROR((co_await GetAccount(tenant, id)).status());
  const Use use{Use::Kind::kAccount, id};
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<std::string> user,
                             co_await UnfinishedCampaignWith(tenant, use));
  if (user) {
    co_return absl::FailedPreconditionError(
        StrCat("account '", id, "' is a target of unfinished campaign '", *user, "'"));
  }
  // A rule left behind would act again if the account were registered again.
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Automation> rules,
                             co_await store_.List<store::Automation>(tenant));
  for (const store::Automation& rule : rules) {
    if (rule.account == id) {
      co_return absl::FailedPreconditionError(StrCat("account '", id, "' has automation '", rule.id,
                                                     "'; delete its automations first"));
    }
  }
  co_return co_await store_.Delete<store::Account>(std::move(tenant), std::move(id));
}

Service::Op<store::Account> Service::SetAccountPaused(std::string tenant, std::string id,
                                                      bool paused) {
  const int64_t now = absl::ToUnixMillis(clock_.Now());
  HERALD_CO_ASSIGN_OR_RETURN(store::Account account, co_await store_.Update<store::Account>(
                                                         std::move(tenant), std::move(id),
                                                         [&paused, &now](store::Account& a) {
                                                           if (paused && !a.paused)
                                                             BeginPause(a.pauses, now);
                                                           if (!paused && a.paused)
                                                             EndPause(a.pauses, now);
                                                           a.paused = paused;
                                                           return absl::OkStatus();
                                                         }));
  HERALD_CO_RETURN_IF_ERROR(co_await ApplyAccountLimits(account, /*created=*/false));
  co_return account;
}

Service::Op<Service::SyncedAccounts> Service::SyncAccounts(std::string tenant,
                                                           std::string team_id) {
  HERALD_CO_ASSIGN_OR_RETURN(store::Team team, co_await GetTeam(tenant, team_id));
  HERALD_CO_ASSIGN_OR_RETURN(auto api, clients_.For(team));
  HERALD_CO_RETURN_IF_ERROR(co_await Pace(tenant, team_id, nullptr));
  auto upstream_accounts = co_await api->ListAccounts();
  if (!upstream_accounts.ok()) {
    co_return co_await UpstreamFailed(tenant, team_id, "listing the team's accounts",
                                      upstream_accounts.status());
  }
  SyncedAccounts out;
  // An id Herald could not name (an API call, a webhook) would make an account no one could
  // use, update or delete: it is left out, and reported.
  std::vector<upstream::Account> usable;
  usable.reserve(upstream_accounts.value->size());
  for (upstream::Account& u : *upstream_accounts.value) {
    if (upstream::IsAccountId(u.id)) {
      usable.push_back(std::move(u));
    } else {
      out.unusable_ids.push_back(std::move(u.id));
    }
  }
  if (!out.unusable_ids.empty()) {
    log::Warn("the upstream listed accounts whose ids are not account ids; they were not imported",
              {{"tenant", tenant}, {"team", team_id}, {"ids", StrJoin(out.unusable_ids, ", ")}});
  }
  std::vector<std::string> ids;
  ids.reserve(usable.size());
  for (const upstream::Account& u : usable) ids.push_back(u.id);
  HERALD_CO_ASSIGN_OR_RETURN(auto known, co_await store_.GetMany<store::Account>(tenant, ids));
  for (size_t i = 0; i < known.size(); ++i) {
    if (known[i]) {
      if (known[i]->team == team_id) {
        ++out.unchanged;
      } else {
        out.in_other_teams.push_back(*std::move(known[i]));
      }
      continue;
    }
    const upstream::Account& u = usable[i];
    store::Account account{.tenant = tenant,
                           .id = u.id,
                           .team = team_id,
                           .display_name = u.display_name,
                           .upstream_username = u.onlyfans_username};
    auto made = co_await StoreAccount(std::move(account), "");
    if (absl::IsAlreadyExists(made.status())) {  // created meanwhile, by another sync
      ++out.unchanged;
      continue;
    }
    HERALD_CO_RETURN_IF_ERROR(made.status());
    out.created.push_back(std::move(made->value));
  }
  co_return out;
}

// ---- media

Service::Op<store::Created<store::MediaAsset>> Service::CreateMediaAsset(
    store::MediaAsset asset, store::RequestId request_id, std::optional<std::string> bytes) {
  if (asset.id.empty()) asset.id = ids_.Next();
  asset.create_time_ms = absl::ToUnixMillis(clock_.Now());
  if (!bytes) co_return co_await store_.Create(std::move(asset), std::move(request_id));
  // A retried upload gets its first asset without storing its bytes again.
  if (!request_id.empty()) {
    HERALD_CO_ASSIGN_OR_RETURN(
        std::optional<store::MediaAsset> earlier,
        co_await store_.CreatedBy<store::MediaAsset>(asset.tenant, request_id));
    if (earlier) {
      co_return store::Created<store::MediaAsset>{.value = *std::move(earlier), .replayed = true};
    }
  }
  asset.size_bytes = static_cast<int64_t>(bytes->size());
  if (asset.sha256.empty()) asset.sha256 = store::Sha256Hex(*bytes);
  // Bytes first: a record is never visible without them.
  HERALD_CO_RETURN_IF_ERROR(
      (co_await store_.PutMediaBytes(asset.tenant, asset.id, *std::move(bytes))).status());
  const std::string tenant = asset.tenant, id = asset.id;
  auto created = co_await store_.Create(std::move(asset), std::move(request_id));
  if (created.ok() && created->replayed) {
    // A retry that raced the first upload, answered with the first asset: no record refers to
    // this one's bytes. (After an error they stay: the record may have been written.)
    auto removed = co_await store_.DeleteMediaBytes(tenant, id);
    if (!removed.ok()) {
      log::Warn("could not delete an upload's unused bytes",
                {{"tenant", tenant}, {"media", id}, {"error", removed.status().message()}});
    }
  }
  co_return created;
}

Service::Op<store::MediaAsset> Service::GetMediaAsset(std::string tenant, std::string id) {
  co_return co_await store_.Get<store::MediaAsset>(std::move(tenant), std::move(id));
}

Service::Op<std::vector<store::MediaAsset>> Service::ListMediaAssets(std::string tenant) {
  co_return co_await store_.List<store::MediaAsset>(std::move(tenant));
}

Service::Op<bool> Service::DeleteMediaAsset(std::string tenant, std::string id) {
  HERALD_CO_RETURN_IF_ERROR((co_await GetMediaAsset(tenant, id)).status());
  const Use use{Use::Kind::kMediaAsset, id};
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<std::string> user,
                             co_await UnfinishedCampaignWith(tenant, use));
  if (user) {
    co_return absl::FailedPreconditionError(
        StrCat("media asset '", id, "' is used by unfinished campaign '", *user, "'"));
  }
  // The record first: it is never visible without its bytes.
  HERALD_CO_ASSIGN_OR_RETURN(const bool deleted,
                             co_await store_.Delete<store::MediaAsset>(tenant, id));
  HERALD_CO_RETURN_IF_ERROR(
      (co_await store_.DeleteMediaBytes(std::move(tenant), std::move(id))).status());
  co_return deleted;
}

// ---- audiences

Service::Op<std::pair<std::vector<upstream::UserList>, bool>> Service::ListUserLists(
    std::string tenant, std::string account_id, int offset, int limit) {
  HERALD_CO_ASSIGN_OR_RETURN(store::Account account, co_await GetAccount(tenant, account_id));
  HERALD_CO_ASSIGN_OR_RETURN(std::shared_ptr<upstream::Api> api, co_await ApiFor(account));
  if (limit < 1 || limit > kMaxUserListPage) {
    co_return absl::InvalidArgumentError(
        StrCat("page_size: 1 to ", kMaxUserListPage, ", got ", limit));
  }
  const upstream::UserListsQuery query{.limit = std::max(limit + 1, 10), .offset = offset};
  HERALD_CO_RETURN_IF_ERROR(co_await Pace(tenant, account.team, &account_id));
  auto lists = co_await api->ListUserLists(account_id, query);
  if (!lists.ok()) {
    co_return co_await UpstreamFailed(account.tenant, account.team, "listing user lists",
                                      lists.status());
  }
  std::vector<upstream::UserList> page = *std::move(lists.value);
  const bool more = static_cast<int>(page.size()) > limit;
  if (more) page.resize(limit);
  co_return std::make_pair(std::move(page), more);
}

namespace {

// What a CreateUserList with a request id left: the account and name it was made with, when,
// and the list's id once the upstream answered ("account\nlist id\nUnix ms\nname"; empty id:
// pending). A request id names its request for store::CreateRequest::request_id_ttl, as the
// creates of Herald's own records do.
struct UserListRequest {
  std::string account;
  std::string list_id;
  int64_t time_ms = 0;
  std::string name;
};

// Where a request id's record is kept: the table and the row.
struct UserListRequestRow {
  store::Table table;
  std::string id;
};

// A table of the request id's own, which expires once the id names its request no more.
UserListRequestRow OwnRow(const std::string& tenant, const std::string& request_id) {
  return {{tenant, StrCat("user_list_request:", request_id)}, "request"};
}

// Where a Herald before those tables kept every request id of a tenant, in one table that nothing
// empties: a request begun there is finished there.
UserListRequestRow SharedRow(const std::string& tenant, const std::string& request_id) {
  return {{tenant, "user_list_requests"}, request_id};
}

std::string Encode(const UserListRequest& r) {
  return StrCat(r.account, "\n", r.list_id, "\n", r.time_ms, "\n", r.name);
}

std::optional<UserListRequest> DecodeUserListRequest(std::string_view document) {
  std::string_view fields[3];
  for (std::string_view& field : fields) {
    const size_t end = document.find('\n');
    if (end == std::string_view::npos) return std::nullopt;
    field = document.substr(0, end);
    document.remove_prefix(end + 1);
  }
  std::optional<int64_t> time_ms = ParseInt<int64_t>(fields[2]);
  if (!time_ms) return std::nullopt;
  return UserListRequest{.account = std::string(fields[0]),
                         .list_id = std::string(fields[1]),
                         .time_ms = *time_ms,
                         .name = std::string(document)};
}

// How long a CreateUserList's request id stays with the call that claimed it: a retry within
// it that finds no list is told the first call is still under way, and one after it makes the
// list. Longer than a call's pacing and upstream call take.
constexpr absl::Duration kUserListRequestInFlight = absl::Minutes(2);

absl::Status UserListRequestInProgress(std::string_view request_id) {
  return absl::AbortedError(StrCat("request_id: '", request_id,
                                   "' names a CreateUserList still in progress; retry shortly"));
}

}  // namespace

Service::Op<upstream::UserList> Service::CreateUserList(std::string tenant, std::string account_id,
                                                        std::string name, std::string request_id) {
  HERALD_CO_ASSIGN_OR_RETURN(store::Account account, co_await GetAccount(tenant, account_id));
  HERALD_CO_ASSIGN_OR_RETURN(std::shared_ptr<upstream::Api> api, co_await ApiFor(account));
  UserListRequestRow row = OwnRow(tenant, request_id);
  if (!request_id.empty()) {
    const UserListRequestRow shared = SharedRow(tenant, request_id);
    std::vector<store::Lookup> lookups;
    lookups.push_back({.table = row.table, .ids = {row.id}});
    lookups.push_back({.table = shared.table, .ids = {shared.id}});
    HERALD_CO_ASSIGN_OR_RETURN(store::LookupResults records,
                               co_await store_.records().GetTables(std::move(lookups)));
    std::optional<std::string> document = std::move(records[0][0]);
    if (!document && records[1][0]) {
      row = shared;
      document = std::move(records[1][0]);
    }
    std::optional<UserListRequest> earlier;
    if (document.has_value()) {
      earlier = DecodeUserListRequest(*document);
      if (!earlier) co_return absl::InternalError("a user list request record is malformed");
      const absl::Duration age = clock_.Now() - absl::FromUnixMillis(earlier->time_ms);
      if (age >= store::CreateRequest{}.request_id_ttl) earlier.reset();  // a new request
    }
    if (earlier.has_value()) {
      if (earlier->account != account_id || earlier->name != name) {
        co_return absl::AlreadyExistsError(StrCat("request_id: '", request_id,
                                                  "' was used for list '", earlier->name,
                                                  "' of account '", earlier->account, "'"));
      }
      if (!earlier->list_id.empty()) {
        co_return upstream::UserList{
            .id = earlier->list_id, .name = earlier->name, .type = "custom"};
      }
      // The first call may have made the list and lost the answer: looked for by its name.
      std::function<asio::awaitable<absl::Status>()> pace = [&] {
        return Pace(tenant, account.team, &account_id);
      };
      auto found = co_await FindUserListNamed(*api, account_id, name, std::move(pace));
      if (!found.ok()) {
        co_return co_await UpstreamFailed(account.tenant, account.team, "looking for the list",
                                          found.status());
      }
      if (found->has_value()) {
        earlier->list_id = (*found)->id;
        HERALD_CO_RETURN_IF_ERROR(
            (co_await store_.records().Put(row.table, row.id, Encode(*earlier))).status());
        co_return **std::move(found);
      }
      // Not made yet: the first call may still be making it.
      if (clock_.Now() - absl::FromUnixMillis(earlier->time_ms) < kUserListRequestInFlight) {
        co_return UserListRequestInProgress(request_id);
      }
    }
    // This call makes the list: it claims the request id first, atomically, so that of calls
    // racing with one request id only one goes on.
    const UserListRequest pending{
        .account = account_id, .time_ms = absl::ToUnixMillis(clock_.Now()), .name = name};
    bool claimed = false;
    if (document.has_value()) {
      HERALD_CO_ASSIGN_OR_RETURN(
          store::ReplaceCode replaced,
          co_await store_.records().Replace(row.table, row.id, *document, Encode(pending)));
      claimed = replaced == store::ReplaceCode::kReplaced;
    } else {
      store::CreateRequest claim{.id = row.id, .document = Encode(pending)};
      HERALD_CO_ASSIGN_OR_RETURN(store::CreateOutcome created,
                                 co_await store_.records().Create(row.table, std::move(claim)));
      claimed = created.code == store::CreateCode::kCreated;
      if (claimed) {
        // The same record, now expiring: the id names its request for a day from its first use,
        // and later writes keep the expiry. Without it (this write failed) the record stays.
        const absl::Duration ttl = store::CreateRequest{}.request_id_ttl;
        absl::Status expiring =
            co_await store_.records().PutExpiring(row.table, row.id, Encode(pending), ttl);
        if (!expiring.ok()) {
          log::Warn("a user list's request id will not expire",
                    {{"tenant", tenant}, {"request_id", request_id}, {"error", expiring}});
        }
      }
    }
    if (!claimed) co_return UserListRequestInProgress(request_id);
  }
  // A call that ends without the list lets a retry go on at once (looking for the list by its
  // name first, as its answer may have been lost): its claim is dated back by the window.
  auto release = [&]() -> asio::awaitable<void> {
    if (request_id.empty()) co_return;
    const UserListRequest ended{
        .account = account_id,
        .time_ms = absl::ToUnixMillis(clock_.Now() - kUserListRequestInFlight),
        .name = name};
    auto put = co_await store_.records().Put(row.table, row.id, Encode(ended));
    if (!put.ok()) {
      log::Warn(
          "could not release a user list's request id",
          {{"tenant", tenant}, {"request_id", request_id}, {"error", put.status().message()}});
    }
  };
  if (absl::Status paced = co_await Pace(tenant, account.team, &account_id); !paced.ok()) {
    co_await release();
    co_return paced;
  }
  auto list = co_await api->CreateUserList(account_id, name);
  if (!list.ok()) {
    co_await release();
    co_return co_await UpstreamFailed(account.tenant, account.team, "creating the list",
                                      list.status());
  }
  if (!request_id.empty()) {
    const UserListRequest made{.account = account_id,
                               .list_id = list.value->id,
                               .time_ms = absl::ToUnixMillis(clock_.Now()),
                               .name = name};
    auto recorded = co_await store_.records().Put(row.table, row.id, Encode(made));
    if (!recorded.ok()) {
      // The list exists either way; a retry finds it by its name.
      log::Warn(
          "could not record a user list's request id",
          {{"tenant", tenant}, {"request_id", request_id}, {"error", recorded.status().message()}});
    }
  }
  co_return *std::move(list.value);
}

Service::Op<std::pair<int, int64_t>> Service::AddFansToUserList(std::string tenant,
                                                                std::string account_id,
                                                                std::string list_id,
                                                                std::vector<int64_t> fans) {
  HERALD_CO_ASSIGN_OR_RETURN(store::Account account, co_await GetAccount(tenant, account_id));
  HERALD_CO_RETURN_IF_ERROR((co_await ApiFor(account)).status());  // the team is usable
  // One queued job per batch, so every call is rate-limited like the rest and none is lost if
  // this process stops; the call waits for the batches' outcomes.
  // A fan given twice is added once, so that each batch's count is of fans no other batch has.
  absl::flat_hash_set<int64_t> seen;
  std::erase_if(fans, [&seen](int64_t fan) { return !seen.insert(fan).second; });
  const std::string operation = ids_.Next();
  std::vector<queue::JobSpec> jobs;
  for (size_t at = 0; at < fans.size(); at += config_.list_batch) {
    const size_t end = std::min(fans.size(), at + config_.list_batch);
    const std::vector<int64_t> batch(fans.begin() + at, fans.begin() + end);
    // An outcome written by the end of the wait is read in time; one written later is not read.
    jobs.push_back(ListAddStep(account, operation, static_cast<int>(jobs.size()), list_id, batch,
                               config_.attempts.For(kListAddJob),
                               config_.list_wait + kListAddOutcomeMargin));
  }
  const int batches = static_cast<int>(jobs.size());
  HERALD_CO_RETURN_IF_ERROR(co_await EnqueueAll(queue_, std::move(jobs)));
  const store::Table outcomes = ListAddOutcomes(tenant, operation);
  std::vector<store::Lookup> lookups(2);
  lookups[0].table = outcomes;
  // A worker of a Herald before ListAddOutcomes writes to the tenant's shared table.
  lookups[1].table = ListAddResults(tenant);
  for (int b = 0; b < batches; ++b) {
    lookups[0].ids.push_back(StrCat(b));
    lookups[1].ids.push_back(ListAddResultKey(operation, b));
  }
  const MonoTime deadline = clock_.MonotonicAfter(config_.list_wait);
  while (true) {
    std::vector<store::Lookup> reads = lookups;  // GetTables takes them; each poll passes a copy
    HERALD_CO_ASSIGN_OR_RETURN(store::LookupResults found,
                               co_await store_.records().GetTables(std::move(reads)));
    std::vector<std::optional<std::string>>& docs = found[0];
    for (int b = 0; b < batches; ++b) {
      if (!docs[b]) docs[b] = std::move(found[1][b]);
    }
    int done = 0;
    int failed = 0;
    int not_found = 0;
    int64_t reported = 0;
    std::string first_error;
    for (const auto& doc : docs) {
      if (!doc) continue;
      ++done;
      const std::optional<ListAddResult> r = DecodeListAddResult(*doc);
      if (r && r->ok) {
        reported += r->reported;
      } else {
        ++failed;
        // A 404 of the list, not of the account (which the upstream says apart by its code).
        if (r && r->http_status == 404 && r->upstream_code != "account_not_found") ++not_found;
        if (first_error.empty()) first_error = r ? r->error : "unreadable batch outcome";
      }
    }
    if (done == batches) {
      // Read, and of no further use; a failed delete leaves them to expire.
      auto dropped = co_await store_.records().DeleteTable(outcomes);
      if (!dropped.ok()) {
        log::Warn("could not drop list-add outcomes", {{"error", dropped.status()}});
      }
      if (not_found == batches) {
        co_return absl::NotFoundError(StrCat("user_list_id: the upstream has no list '", list_id,
                                             "' on account '", account_id,
                                             "'; no fans were added (", first_error, ")"));
      }
      if (failed == batches) {
        co_return absl::FailedPreconditionError(
            StrCat("upstream, ", first_error, " (every batch failed; no fans were added)"));
      }
      if (!first_error.empty()) {
        // The other batches went in: say so, so that a caller retries the failed ones only.
        co_return absl::FailedPreconditionError(
            StrCat("upstream, ", first_error, " (", failed, " of ", batches, " batches of up to ",
                   config_.list_batch, " fans failed; the others were added",
                   reported > 0 ? StrCat(", the upstream counting ", reported, " fans in them")
                                : std::string(),
                   ")"));
      }
      co_return std::make_pair(batches, reported);
    }
    if (clock_.Monotonic() >= deadline) {
      co_return absl::DeadlineExceededError(
          StrCat(done, " of ", batches,
                 " batches are done; the rest stay queued and are added when the team's limit "
                 "allows"));
    }
    // A batch the upstream refused for the team's sake (401, 402) paused the team and waits.
    HERALD_CO_ASSIGN_OR_RETURN(store::Team team,
                               co_await store_.Get<store::Team>(tenant, account.team));
    if (team.paused) {
      co_return absl::FailedPreconditionError(StrCat(
          "team '", team.id, "' is paused (", team.pause_reason, "); ", done, " of ", batches,
          " batches are done, the rest stay queued and are added once it is "
          "resumed"));
    }
    co_await clock_.SleepFor(absl::Milliseconds(20));
  }
}

Service::Op<store::Created<store::Segment>> Service::CreateSegment(store::Segment segment,
                                                                   store::RequestId request_id) {
  if (segment.id.empty()) segment.id = ids_.Next();
  segment.create_time_ms = absl::ToUnixMillis(clock_.Now());
  co_return co_await store_.Create(std::move(segment), std::move(request_id));
}

Service::Op<store::Segment> Service::GetSegment(std::string tenant, std::string id) {
  co_return co_await store_.Get<store::Segment>(std::move(tenant), std::move(id));
}

Service::Op<std::vector<store::Segment>> Service::ListSegments(std::string tenant) {
  co_return co_await store_.List<store::Segment>(std::move(tenant));
}

Service::Op<store::Segment> Service::UpdateSegment(store::Segment update,
                                                   std::vector<std::string> fields) {
  HERALD_CO_RETURN_IF_ERROR((co_await GetSegment(update.tenant, update.id)).status());
  const Use use{.kind = Use::Kind::kSegment, .id = update.id, .skip_drafts = true};
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<std::string> user,
                             co_await UnfinishedCampaignWith(update.tenant, use));
  if (user) {
    co_return absl::FailedPreconditionError(
        StrCat("segment '", update.id, "' is used by campaign '", *user,
               "', launched and not finished; a segment changes only while the campaigns that "
               "use it are drafts or finished"));
  }
  co_return co_await store_.Update<store::Segment>(
      update.tenant, update.id, [&update, &fields](store::Segment& s) {
        if (Has(fields, "display_name")) s.display_name = update.display_name;
        if (Has(fields, "min_lifetime_spend_cents")) {
          s.min_lifetime_spend_cents = update.min_lifetime_spend_cents;
        }
        if (Has(fields, "subscribed_within_days")) {
          s.subscribed_within_days = update.subscribed_within_days;
        }
        if (Has(fields, "expired_only")) s.expired_only = update.expired_only;
        if (Has(fields, "top_spenders")) s.top_spenders = update.top_spenders;
        if (!s.SetsACondition()) {
          return absl::InvalidArgumentError(
              "segment: set at least one condition (the update would leave none)");
        }
        return absl::OkStatus();
      });
}

Service::Op<bool> Service::DeleteSegment(std::string tenant, std::string id) {
  HERALD_CO_RETURN_IF_ERROR((co_await GetSegment(tenant, id)).status());
  const Use use{Use::Kind::kSegment, id};
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<std::string> user,
                             co_await UnfinishedCampaignWith(tenant, use));
  if (user) {
    co_return absl::FailedPreconditionError(
        StrCat("segment '", id, "' is used by unfinished campaign '", *user, "'"));
  }
  co_return co_await store_.Delete<store::Segment>(std::move(tenant), std::move(id));
}

// ---- campaigns

std::vector<store::Lookup> Service::ReferenceLookups(const Campaign& campaign) {
  std::vector<std::string> account_ids, segment_ids;
  account_ids.reserve(campaign.targets.size());
  for (const auto& t : campaign.targets) {
    account_ids.push_back(t.account);
    if (!t.segment.empty()) segment_ids.push_back(t.segment);
  }
  std::vector<store::Lookup> lookups;
  lookups.reserve(3);
  lookups.push_back(
      store::Store::LookupOf<store::MediaAsset>(campaign.tenant, campaign.content.media));
  lookups.push_back(
      store::Store::LookupOf<store::Account>(campaign.tenant, std::move(account_ids)));
  lookups.push_back(
      store::Store::LookupOf<store::Segment>(campaign.tenant, std::move(segment_ids)));
  return lookups;
}

absl::StatusOr<std::vector<store::Account>> Service::ResolveReferences(
    const Campaign& campaign, const store::LookupResults& found) {
  if (found.size() != 3) return absl::InternalError("a campaign's references are three lookups");
  HERALD_ASSIGN_OR_RETURN(auto assets, store::Store::DecodeMany<store::MediaAsset>(found[0]));
  for (size_t i = 0; i < assets.size(); ++i) {
    if (!assets[i]) {
      return absl::NotFoundError(StrCat("campaign.content.media[", i, "]: media asset '",
                                        campaign.content.media[i], "' not found"));
    }
  }
  HERALD_ASSIGN_OR_RETURN(auto targets,
                          store::Store::DecodeMany<store::Account>(found[kAccountReferences]));
  HERALD_ASSIGN_OR_RETURN(auto segments, store::Store::DecodeMany<store::Segment>(found[2]));
  std::vector<store::Account> accounts;
  accounts.reserve(targets.size());
  size_t segment_at = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!targets[i]) {
      return absl::NotFoundError(StrCat("campaign.targets[", i, "].account: account '",
                                        campaign.targets[i].account, "' not found"));
    }
    if (!campaign.targets[i].segment.empty() && !segments[segment_at++]) {
      return absl::NotFoundError(StrCat("campaign.targets[", i, "].segment: segment '",
                                        campaign.targets[i].segment, "' not found"));
    }
    accounts.push_back(*std::move(targets[i]));
  }
  return accounts;
}

Service::Op<std::vector<store::Account>> Service::CheckReferences(const Campaign& campaign) {
  // One round trip for media, accounts and segments, whatever the number of targets.
  HERALD_CO_ASSIGN_OR_RETURN(store::LookupResults found,
                             co_await store_.records().GetTables(ReferenceLookups(campaign)));
  co_return ResolveReferences(campaign, found);
}

asio::awaitable<absl::Status> Service::Dispatch(const Campaign& campaign,
                                                const std::vector<store::Account>& accounts) {
  const std::vector<store::AccountTarget>* targets = &campaign.targets;
  std::vector<store::AccountTarget> stored_targets;
  if (targets->empty()) {  // a campaign head (store::Store::Update returns heads)
    HERALD_CO_ASSIGN_OR_RETURN(stored_targets,
                               co_await store_.CampaignTargets(campaign.tenant, campaign.id));
    targets = &stored_targets;
  }
  // Each account's target. The accounts usually come in the targets' order (CheckReferences);
  // otherwise they are looked up, once each.
  std::vector<const store::AccountTarget*> target_of(accounts.size(), nullptr);
  bool in_order = accounts.size() == targets->size();
  for (size_t i = 0; in_order && i < accounts.size(); ++i) {
    in_order = accounts[i].id == (*targets)[i].account;
    target_of[i] = &(*targets)[i];
  }
  if (!in_order) {
    std::unordered_map<std::string_view, const store::AccountTarget*> by_account;
    by_account.reserve(targets->size());
    for (const store::AccountTarget& t : *targets) by_account.emplace(t.account, &t);
    for (size_t i = 0; i < accounts.size(); ++i) {
      auto it = by_account.find(accounts[i].id);
      target_of[i] = it == by_account.end() ? nullptr : it->second;
    }
  }
  // A scheduled campaign's chains start at its send time, or its upstream lead before it.
  const absl::Duration delay =
      campaign.phase == CampaignPhase::kScheduled
          ? absl::FromUnixMillis(campaign.send_time_ms - campaign.upstream_lead_ms) - clock_.Now()
          : absl::ZeroDuration();
  static const store::AccountTarget kNoTarget;
  std::vector<queue::JobSpec> jobs;
  jobs.reserve(accounts.size());
  for (size_t i = 0; i < accounts.size(); ++i) {
    const store::AccountTarget& target = target_of[i] ? *target_of[i] : kNoTarget;
    jobs.push_back(FirstStep(campaign, target, accounts[i], delay, config_.attempts));
  }
  co_return co_await EnqueueAll(queue_, std::move(jobs));
}

Service::Op<CampaignView> Service::View(Campaign campaign) {
  HERALD_CO_ASSIGN_OR_RETURN(const int64_t revision,
                             co_await store_.CampaignRevision(campaign.tenant, campaign.id));
  co_return co_await ViewAt(std::move(campaign), revision);
}

Service::Op<CampaignView> Service::ViewAt(Campaign campaign, int64_t revision) {
  if (campaign.targets.empty()) {  // a head: every campaign has at least one target
    HERALD_CO_ASSIGN_OR_RETURN(campaign.targets,
                               co_await store_.CampaignTargets(campaign.tenant, campaign.id));
  }
  HERALD_CO_ASSIGN_OR_RETURN(auto deliveries,
                             co_await store_.ListDeliveries(campaign.tenant, campaign.id));
  CampaignView view = BaseView(std::move(campaign), revision, deliveries);
  if (NamesPausedTeams(view)) {
    // Two round trips, whatever the number of targets.
    std::vector<std::string> account_ids;
    account_ids.reserve(view.campaign.targets.size());
    for (const auto& t : view.campaign.targets) account_ids.push_back(t.account);
    HERALD_CO_ASSIGN_OR_RETURN(
        auto found, co_await store_.GetMany<store::Account>(view.campaign.tenant, account_ids));
    std::vector<store::Account> accounts;
    accounts.reserve(found.size());
    for (auto& a : found) {
      if (a) accounts.push_back(*std::move(a));
    }
    const std::vector<std::string> team_ids = TeamsOf(accounts);
    HERALD_CO_ASSIGN_OR_RETURN(
        auto teams, co_await store_.GetMany<store::Team>(view.campaign.tenant, team_ids));
    AddPausedTeams(view, teams);
    AddPausedAccounts(view, accounts);
  }
  co_return view;
}

absl::Status CheckUpstreamLeadHasSendTime(const Campaign& campaign) {
  if (campaign.upstream_lead_ms == 0 || campaign.send_time_ms != 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "campaign.upstream_lead: needs campaign.send_time (the lead is how long before it the "
      "upstream gets the message); set a send_time, or leave upstream_lead unset");
}

absl::Status Service::CheckTargetCount(const Campaign& campaign) const {
  if (static_cast<int>(campaign.targets.size()) > config_.max_targets) {
    return absl::InvalidArgumentError(
        StrCat("campaign.targets: at most ", config_.max_targets, " accounts per campaign"));
  }
  return absl::OkStatus();
}

Service::Op<CampaignView> Service::CreateCampaign(Campaign campaign, store::RequestId request_id) {
  if (campaign.id.empty()) campaign.id = ids_.Next();
  HERALD_CO_RETURN_IF_ERROR(CheckTargetCount(campaign));
  const absl::Time now = clock_.Now();
  campaign.create_time_ms = campaign.update_time_ms = absl::ToUnixMillis(now);
  if (campaign.phase != CampaignPhase::kDraft) {
    if (campaign.send_time_ms > campaign.create_time_ms) {
      campaign.phase = CampaignPhase::kScheduled;
    } else {
      campaign.phase = CampaignPhase::kDispatched;
      campaign.dispatch_time_ms = campaign.create_time_ms;
    }
  }
  std::vector<Delivery> deliveries;
  deliveries.reserve(campaign.targets.size());
  for (const auto& t : campaign.targets) {
    deliveries.push_back({.account = t.account, .update_time_ms = campaign.create_time_ms});
  }
  // One atomic step: the references are checked (nothing is written when one is missing), then
  // the campaign, its targets and deliveries are written, and the targets' teams read for the
  // answer (a live campaign names its paused teams).
  store::CampaignCreateReads reads{
      .references = ReferenceLookups(campaign),
      .follow =
          store::Follow{.of = kAccountReferences,
                        .field = "team",
                        .table = store::Store::LookupOf<store::Team>(campaign.tenant, {}).table}};
  // A launched campaign enters the outbox in the same step, until its jobs are enqueued.
  const store::PendingDispatch pending = NewPendingDispatch(campaign.id, "create");
  std::optional<store::PendingDispatch> entry;
  if (Launched(campaign)) entry = pending;
  HERALD_CO_ASSIGN_OR_RETURN(
      store::CampaignCreated created,
      co_await store_.CreateCampaign(std::move(campaign), deliveries, request_id, std::move(reads),
                                     std::move(entry)));
  campaign = std::move(created.campaign);
  if (created.replayed) co_return co_await FinishReplayedCreate(std::move(campaign));
  // The references as the step found them: a missing one is refused here, with nothing written.
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Account> accounts,
                             ResolveReferences(campaign, created.references));
  if (created.missing_reference) {
    co_return absl::InternalError("the campaign's create found a reference missing that is there");
  }
  if (Launched(campaign)) {
    HERALD_CO_RETURN_IF_ERROR(co_await Dispatch(campaign, accounts));
    co_await SettlePendingDispatch(campaign.tenant, pending.id);
  }
  // The answer is the campaign as this step stored it: nothing to read back.
  CampaignView view = BaseView(std::move(campaign), created.revision, deliveries);
  if (NamesPausedTeams(view)) {
    HERALD_CO_ASSIGN_OR_RETURN(auto teams, store::Store::DecodeMany<store::Team>(created.followed));
    AddPausedTeams(view, teams);
    AddPausedAccounts(view, accounts);
  }
  Count(view);
  co_return view;
}

Service::Op<std::optional<CampaignView>> Service::ReplayCreateCampaign(
    std::string tenant, store::RequestId request_id) {
  HERALD_CO_ASSIGN_OR_RETURN(
      std::optional<Campaign> created,
      co_await store_.CreatedBy<Campaign>(std::move(tenant), std::move(request_id)));
  if (!created) co_return std::optional<CampaignView>();
  HERALD_CO_ASSIGN_OR_RETURN(CampaignView view, co_await FinishReplayedCreate(*std::move(created)));
  co_return std::optional<CampaignView>(std::move(view));
}

Service::Op<CampaignView> Service::FinishReplayedCreate(Campaign campaign) {
  // The first attempt may have failed after storing the campaign but before enqueueing;
  // enqueueing again is harmless (job ids are derived). The campaign may have moved on since:
  // its view is read, and its deliveries say what to enqueue (a send in flight keeps its
  // delivery: a chain of a later generation beside it could send again).
  if (Launched(campaign)) {
    absl::StatusOr<std::vector<store::Account>> accounts = co_await CheckReferences(campaign);
    if (accounts.ok()) {
      HERALD_CO_RETURN_IF_ERROR(co_await DispatchFromDeliveries(campaign, *accounts));
      co_await SettlePendingDispatch(campaign.tenant, NewPendingDispatch(campaign.id, "create").id);
    } else if (!absl::IsNotFound(accounts.status())) {
      co_return accounts.status();
    }
    // A reference deleted since: only a final campaign's references can be, so there is
    // nothing left to enqueue.
  }
  co_return co_await View(std::move(campaign));
}

Service::Op<CampaignView> Service::GetCampaign(std::string tenant, std::string id) {
  // The revision before the record: a write between the two reads pairs the newer record with
  // the older revision, so an update that gives this revision back (UpdateCampaign's
  // precondition) is refused rather than taken for one made on the newer record.
  HERALD_CO_ASSIGN_OR_RETURN(const int64_t revision, co_await store_.CampaignRevision(tenant, id));
  HERALD_CO_ASSIGN_OR_RETURN(Campaign c,
                             co_await store_.Get<Campaign>(std::move(tenant), std::move(id)));
  co_return co_await ViewAt(std::move(c), revision);
}

Service::Op<std::vector<store::Delivery>> Service::ListDeliveries(std::string tenant,
                                                                  std::string id) {
  HERALD_CO_RETURN_IF_ERROR((co_await store_.GetCampaignHead(tenant, id)).status());
  co_return co_await store_.ListDeliveries(std::move(tenant), std::move(id));
}

Service::Op<store::Delivery> Service::GetDelivery(std::string tenant, std::string id,
                                                  std::string account) {
  HERALD_CO_RETURN_IF_ERROR((co_await store_.GetCampaignHead(tenant, id)).status());
  co_return co_await store_.GetDelivery(std::move(tenant), std::move(id), std::move(account));
}

Service::Op<std::pair<std::vector<CampaignView>, std::optional<double>>> Service::ListCampaigns(
    std::string tenant, std::optional<double> before, int limit) {
  HERALD_CO_ASSIGN_OR_RETURN(auto page, co_await store_.ListCampaigns(tenant, before, limit));
  std::vector<CampaignView> views;
  for (Campaign& c : page.campaigns) {
    HERALD_CO_ASSIGN_OR_RETURN(CampaignView v, co_await View(std::move(c)));
    views.push_back(std::move(v));
  }
  co_return std::make_pair(std::move(views), page.next_before);
}

Service::Op<CampaignView> Service::UpdateCampaign(Campaign update, std::vector<std::string> fields,
                                                  int64_t expected_revision) {
  HERALD_CO_ASSIGN_OR_RETURN(CampaignView current, co_await GetCampaign(update.tenant, update.id));
  // Every change moves the revision and is caught below from this read on, so the client's read
  // and this one are one.
  if (expected_revision != 0 && current.revision != expected_revision) {
    co_return absl::AbortedError(StrCat("campaign.revision: campaign '", update.id,
                                        "' is at revision ", current.revision, ", not ",
                                        expected_revision, "; read it again and retry"));
  }
  if (current.state != CampaignState::kDraft && current.state != CampaignState::kScheduled) {
    co_return NotChangeable(current, "only drafts and scheduled campaigns can be updated");
  }
  // At its send time a scheduled campaign dispatches with the first of its jobs to run (and
  // messages the upstream holds go out): from then on it is no longer changeable, whether or
  // not a job has run yet.
  if (current.campaign.phase == CampaignPhase::kScheduled &&
      absl::FromUnixMillis(current.campaign.send_time_ms) <= clock_.Now()) {
    co_return NotChangeable(current, "its send time has come, and it is being sent");
  }
  // Build the result first to check its references.
  Campaign next = current.campaign;
  for (const std::string& f : fields) {
    if (f == "display_name") next.display_name = update.display_name;
    if (f == "content") next.content = update.content;
    if (f == "content.text") next.content.text = update.content.text;
    if (f == "content.price_cents") next.content.price_cents = update.content.price_cents;
    if (f == "content.media") next.content.media = update.content.media;
    if (f == "content.previews") next.content.previews = update.content.previews;
    if (f == "content.locked_text") next.content.locked_text = update.content.locked_text;
    if (f == "targets") next.targets = update.targets;
    if (f == "send_time") next.send_time_ms = update.send_time_ms;
    if (f == "grace_period") next.grace_period_ms = update.grace_period_ms;
    if (f == "upstream_lead") next.upstream_lead_ms = update.upstream_lead_ms;
  }
  HERALD_CO_RETURN_IF_ERROR(CheckTargetCount(next));
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Account> accounts, co_await CheckReferences(next));
  const absl::Time now = clock_.Now();
  // Once its messages are being handed to the upstream, what the upstream holds changes by PUT
  // and only what a PUT can carry may change.
  const bool staging = StagingBegun(current.campaign, now);
  if (staging) HERALD_CO_RETURN_IF_ERROR(CheckStagedUpdate(current.campaign, next));
  // After the staged rules: a send time cleared once the messages are on their way is refused
  // as what may no longer change.
  HERALD_CO_RETURN_IF_ERROR(CheckUpstreamLeadHasSendTime(next));
  // A new generation: the chains start again from where each delivery stands (a held message's
  // follows the new send time), and jobs of the earlier one end. A change of media needs one
  // too: the chains enqueued at the schedule start with the old media's uploads (or with the
  // send, when it had none).
  const bool reschedule =
      current.campaign.phase == CampaignPhase::kScheduled &&
      (staging || next.send_time_ms != current.campaign.send_time_ms ||
       next.upstream_lead_ms != current.campaign.upstream_lead_ms || Has(fields, "targets") ||
       next.content.media != current.campaign.content.media);
  // A scheduled campaign's update owes it its jobs (below): the outbox holds the debt till then.
  std::optional<store::PendingDispatch> pending;
  if (current.campaign.phase == CampaignPhase::kScheduled) pending = NewPendingDispatch(update.id);
  HERALD_CO_ASSIGN_OR_RETURN(
      Campaign stored,
      co_await UpdateOwingDispatch(update.tenant, update.id, pending, [&](Campaign& c) {
        // Any change since `current` was read (every write moves the state or the update
        // time, and an update's time always moves forward) is a concurrent one: `next` would
        // undo it, so the client's read-modify-write starts again (ABORTED).
        if (c.phase != current.campaign.phase || c.generation != current.campaign.generation ||
            c.update_time_ms != current.campaign.update_time_ms) {
          return absl::AbortedError(StrCat("campaign '", c.id,
                                           "' changed while it was being updated; read it "
                                           "again and retry"));
        }
        const int32_t generation = c.generation;
        c = next;
        // Targets not named in the mask are left as stored: only an update of them rewrites
        // them (store::Store::Update writes the targets of the record it is given).
        if (!Has(fields, "targets")) c.targets.clear();
        c.update_time_ms = std::max(absl::ToUnixMillis(now), current.campaign.update_time_ms + 1);
        if (reschedule) {
          c.generation = generation + 1;
          if (c.send_time_ms <= c.update_time_ms) {
            c.phase = CampaignPhase::kDispatched;
            c.dispatch_time_ms = c.update_time_ms;
          }
        }
        return absl::OkStatus();
      }));
  if (!Has(fields, "targets")) stored.targets = std::move(next.targets);
  // (Held messages keep their deliveries: a staged update cannot change the targets.)
  if (Has(fields, "targets") && !staging) {
    std::vector<Delivery> deliveries;
    for (const auto& t : stored.targets) {
      deliveries.push_back({.account = t.account, .update_time_ms = stored.update_time_ms});
    }
    // Deliveries of removed targets go: rebuild the table from the new targets.
    for (const auto& t : current.campaign.targets) {
      const bool kept = std::any_of(stored.targets.begin(), stored.targets.end(),
                                    [&](const auto& n) { return n.account == t.account; });
      if (!kept) {
        store::Table table{stored.tenant, StrCat("c:", stored.id, ":deliveries")};
        absl::StatusOr<bool> removed = co_await store_.records().Delete(table, t.account);
        HERALD_CO_RETURN_IF_ERROR(removed.status());
      }
    }
    HERALD_CO_RETURN_IF_ERROR(
        (co_await store_.PutDeliveries(stored.tenant, stored.id, std::move(deliveries))).status());
    // A cancel that came between the campaign's write and the rows' found the rows before they
    // were rebuilt, and would leave these pending: they are cancelled here too (the cancel's
    // step is idempotent). A cancel after this read finds the new rows itself.
    HERALD_CO_ASSIGN_OR_RETURN(Campaign head,
                               co_await store_.GetCampaignHead(stored.tenant, stored.id));
    if (head.phase == CampaignPhase::kCancelled) {
      HERALD_CO_RETURN_IF_ERROR(co_await CancelDeliveries(head, now));
      if (pending) co_await SettlePendingDispatch(stored.tenant, pending->id);
      co_return co_await View(std::move(head));
    }
  }
  // A scheduled campaign's jobs are enqueued again whatever changed: a retry of an update whose
  // first attempt stored the new schedule but failed before enqueueing finds nothing left to
  // change, and would otherwise leave the new schedule without jobs. Enqueueing again is
  // harmless (job ids are derived from the generation).
  if (staging) {
    // The deliveries as the new generation finds them: each held message gets a PUT (then its
    // poll at the new send time); a delivery whose send is in flight is left to that send,
    // which hands it over when it lands; the others start the new generation's chain. A retry
    // of this update does the same under its own generation.
    HERALD_CO_RETURN_IF_ERROR(co_await DispatchFromDeliveries(stored, accounts));
  } else if (reschedule || stored.phase == CampaignPhase::kScheduled) {
    HERALD_CO_RETURN_IF_ERROR(co_await Dispatch(stored, accounts));
  }
  if (pending) co_await SettlePendingDispatch(stored.tenant, pending->id);
  co_return co_await View(std::move(stored));
}

absl::Status Service::CheckStagedUpdate(const Campaign& current, const Campaign& next) {
  // What a PUT cannot change on the upstream (or Herald would have to upload again per
  // account): the accounts, each one's excluded lists and segment, the media and previews.
  auto refused = [&](std::string_view field, std::string_view why) {
    return absl::FailedPreconditionError(
        StrCat(field, ": cannot change once campaign '", current.id,
               "' is being handed to the upstream ahead of its send time (upstream_lead); ", why));
  };
  constexpr std::string_view kRecreate = "cancel it and create a new one";
  if (next.content.media != current.content.media) {
    return refused("campaign.content.media", kRecreate);
  }
  if (next.content.previews != current.content.previews) {
    return refused("campaign.content.previews", kRecreate);
  }
  if (next.upstream_lead_ms != current.upstream_lead_ms) {
    return refused("campaign.upstream_lead", "the messages are already on their way");
  }
  if (next.send_time_ms == 0) {
    return refused("campaign.send_time", "set a time (it may be now) instead of clearing it");
  }
  if (next.targets.size() != current.targets.size()) {
    return refused("campaign.targets", kRecreate);
  }
  for (size_t i = 0; i < next.targets.size(); ++i) {
    const store::AccountTarget& a = current.targets[i];
    const store::AccountTarget& b = next.targets[i];
    if (a.account != b.account || a.user_lists != b.user_lists || a.fan_ids != b.fan_ids ||
        a.excluded_lists != b.excluded_lists || a.segment != b.segment) {
      return refused(StrCat("campaign.targets[", i, "]"), kRecreate);
    }
  }
  return absl::OkStatus();
}

asio::awaitable<absl::Status> Service::DispatchFromDeliveries(
    const Campaign& campaign, const std::vector<store::Account>& accounts) {
  HERALD_CO_ASSIGN_OR_RETURN(auto deliveries,
                             co_await store_.ListDeliveries(campaign.tenant, campaign.id));
  std::unordered_map<std::string_view, const Delivery*> delivery_of;
  for (const Delivery& d : deliveries) delivery_of.emplace(d.account, &d);
  std::vector<store::Account> restart;
  std::vector<queue::JobSpec> updates;
  std::vector<Delivery> missing;
  for (const store::Account& a : accounts) {
    auto it = delivery_of.find(a.id);
    if (it == delivery_of.end()) {
      // A target without a delivery: an update of the targets stopped before writing them.
      missing.push_back({.account = a.id, .update_time_ms = campaign.update_time_ms});
      restart.push_back(a);
      continue;
    }
    const DeliveryState state = it->second->state;
    if (state == DeliveryState::kScheduledUpstream) {
      updates.push_back(UpdateStep(campaign, a, config_.attempts));
    } else if (state != DeliveryState::kSending && !store::IsFinal(state)) {
      restart.push_back(a);
    }
  }
  if (!missing.empty()) {
    HERALD_CO_RETURN_IF_ERROR(
        (co_await store_.PutDeliveries(campaign.tenant, campaign.id, std::move(missing))).status());
  }
  HERALD_CO_RETURN_IF_ERROR(co_await Dispatch(campaign, restart));
  co_return co_await EnqueueAll(queue_, std::move(updates));
}

store::PendingDispatch Service::NewPendingDispatch(const std::string& campaign,
                                                   std::string suffix) {
  if (suffix.empty()) suffix = ids_.Next();
  return {.id = StrCat(campaign, "/", suffix),
          .campaign = campaign,
          .since_ms = absl::ToUnixMillis(clock_.Now())};
}

Service::Op<Campaign> Service::UpdateOwingDispatch(
    const std::string& tenant, const std::string& id,
    const std::optional<store::PendingDispatch>& pending,
    std::function<absl::Status(Campaign&)> mutate) {
  if (pending) HERALD_CO_RETURN_IF_ERROR(co_await store_.AddPendingDispatch(tenant, *pending));
  absl::StatusOr<Campaign> updated =
      co_await store_.Update<Campaign>(tenant, id, std::move(mutate));
  if (pending && !updated.ok() && NothingWritten(updated.status())) {
    co_await SettlePendingDispatch(tenant, pending->id);
  }
  co_return updated;
}

asio::awaitable<void> Service::SettlePendingDispatch(const std::string& tenant,
                                                     const std::string& id) {
  absl::StatusOr<bool> removed = co_await store_.RemovePendingDispatch(tenant, id);
  if (!removed.ok()) {
    log::Warn("dispatch outbox entry left for the sweep",
              {{"tenant", tenant}, {"entry", id}, {"status", removed.status()}});
  }
}

asio::awaitable<absl::Status> Service::FinishDispatch(const std::string& tenant,
                                                      const std::string& id) {
  absl::StatusOr<Campaign> campaign = co_await store_.Get<Campaign>(tenant, id);
  if (absl::IsNotFound(campaign.status())) co_return absl::OkStatus();  // deleted since
  HERALD_CO_RETURN_IF_ERROR(campaign.status());
  if (campaign->phase == CampaignPhase::kCancelled) {
    co_return co_await CancelDeliveries(*campaign, clock_.Now());
  }
  if (campaign->phase == CampaignPhase::kMissed) {
    co_return co_await FailUnstartedDeliveries(*campaign, clock_.Now(), campaign->phase_reason);
  }
  if (!Launched(*campaign)) co_return absl::OkStatus();  // a draft or paused
  absl::StatusOr<std::vector<store::Account>> accounts = co_await CheckReferences(*campaign);
  if (absl::IsNotFound(accounts.status())) {
    // A reference deleted by a delete that raced the launch (deletes refuse what an unfinished
    // campaign uses, but check before they delete): nothing can be sent, and the deliveries
    // that never started fail saying why, rather than every sweep trying again for good.
    const std::string reason = StrCat("cannot be sent: ", accounts.status().message());
    co_return co_await FailUnstartedDeliveries(*campaign, clock_.Now(), reason);
  }
  HERALD_CO_RETURN_IF_ERROR(accounts.status());
  co_return co_await DispatchFromDeliveries(*campaign, *accounts);
}

Service::Op<Service::Sweep> Service::SweepDispatches(absl::Duration older_than) {
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Tenant> tenants, co_await ListTenants());
  const int64_t due_ms = absl::ToUnixMillis(clock_.Now() - older_than);
  Sweep sweep;
  const auto note = [&sweep](const absl::Status& s) {
    if (sweep.error.ok()) sweep.error = s;
  };
  for (const store::Tenant& tenant : tenants) {
    if (absl::StatusOr<std::vector<store::Team>> teams = co_await ListTeams(tenant.id);
        teams.ok()) {
      sweep.paused_teams[tenant.id] =
          static_cast<int>(std::count_if(teams->begin(), teams->end(), [](const store::Team& t) {
            return t.paused && !t.paused_on_request;
          }));
    } else {
      note(teams.status());
    }
    absl::StatusOr<std::vector<store::PendingDispatch>> entries =
        co_await store_.PendingDispatches(tenant.id);
    if (!entries.ok()) {
      note(entries.status());
      continue;
    }
    // A campaign may owe several dispatches: it is finished once, and its due entries go.
    std::unordered_map<std::string, bool> finished;
    for (const store::PendingDispatch& entry : *entries) {
      if (entry.since_ms > due_ms) continue;
      auto [it, first] = finished.try_emplace(entry.campaign, false);
      if (first) {
        const absl::Status s = co_await FinishDispatch(tenant.id, entry.campaign);
        it->second = s.ok();
        if (s.ok()) {
          ++sweep.finished;
          log::Info("finished the dispatch of a campaign whose request stopped before it",
                    {{"tenant", tenant.id},
                     {"campaign", entry.campaign},
                     {"age", clock_.Now() - absl::FromUnixMillis(entry.since_ms)}});
        } else {
          ++sweep.failed;
          note(s);
          log::Warn("could not finish a campaign's dispatch; the next sweep tries again",
                    {{"tenant", tenant.id}, {"campaign", entry.campaign}, {"status", s}});
        }
      }
      if (!it->second) continue;
      absl::StatusOr<bool> removed = co_await store_.RemovePendingDispatch(tenant.id, entry.id);
      if (!removed.ok()) note(removed.status());
    }
  }
  co_return sweep;
}

Service::Op<CampaignView> Service::Redispatch(Campaign campaign) {
  HERALD_CO_ASSIGN_OR_RETURN(auto deliveries,
                             co_await store_.ListDeliveries(campaign.tenant, campaign.id));
  std::vector<store::Account> accounts;
  for (const Delivery& d : deliveries) {
    // A send in flight stays with its job, which hands the delivery to this generation when it
    // lands or fails: a second chain could send again while the first send is unanswered.
    if (store::IsFinal(d.state) || d.state == DeliveryState::kSending) continue;
    HERALD_CO_ASSIGN_OR_RETURN(store::Account a, co_await GetAccount(campaign.tenant, d.account));
    accounts.push_back(std::move(a));
  }
  HERALD_CO_RETURN_IF_ERROR(co_await Dispatch(campaign, accounts));
  co_return co_await View(std::move(campaign));
}

Service::Op<CampaignView> Service::RunAgain(Campaign campaign, std::string_view verb) {
  HERALD_CO_ASSIGN_OR_RETURN(CampaignView view, co_await View(campaign));
  if (IsFinal(view.state)) {
    co_return NotChangeable(view, StrCat("it has finished; there is nothing left to ", verb));
  }
  // Its jobs are enqueued again; that is harmless (job ids are derived).
  co_return co_await Redispatch(std::move(campaign));
}

Service::Op<std::optional<Campaign>> Service::LaunchedMeanwhile(const std::string& tenant,
                                                                const std::string& id,
                                                                const absl::Status& refused) {
  if (!absl::IsFailedPrecondition(refused)) co_return std::optional<Campaign>();
  HERALD_CO_ASSIGN_OR_RETURN(Campaign now, co_await store_.Get<Campaign>(tenant, id));
  if (!Launched(now)) co_return std::optional<Campaign>();
  co_return std::optional<Campaign>(std::move(now));
}

Service::Op<CampaignView> Service::LaunchCampaign(std::string tenant, std::string id) {
  const absl::Time now = clock_.Now();
  HERALD_CO_ASSIGN_OR_RETURN(Campaign current, co_await store_.Get<Campaign>(tenant, id));
  if (Launched(current)) co_return co_await RunAgain(std::move(current), "launch");
  const std::optional<store::PendingDispatch> pending = NewPendingDispatch(id);
  absl::StatusOr<Campaign> launched =
      co_await UpdateOwingDispatch(tenant, id, pending, [&](Campaign& c) {
        if (c.phase != CampaignPhase::kDraft) {
          return absl::FailedPreconditionError(
              StrCat("campaign '", c.id, "' is not a draft; only drafts can be launched"));
        }
        if (std::optional<absl::Duration> late = LateBeyondGrace(c, now)) {
          return absl::FailedPreconditionError(
              StrCat("campaign.send_time passed ",
                     absl::FormatDuration(absl::Trunc(*late, absl::Seconds(1))),
                     " ago, beyond the grace period; set a new send_time, or clear it to send now, "
                     "then launch"));
        }
        c.update_time_ms = absl::ToUnixMillis(now);
        if (c.send_time_ms > c.update_time_ms) {
          c.phase = CampaignPhase::kScheduled;
        } else {
          c.phase = CampaignPhase::kDispatched;
          c.dispatch_time_ms = c.update_time_ms;
        }
        return absl::OkStatus();
      });
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<Campaign> by_another,
                             co_await LaunchedMeanwhile(tenant, id, launched.status()));
  if (by_another) co_return co_await RunAgain(*std::move(by_another), "launch");
  HERALD_CO_ASSIGN_OR_RETURN(Campaign stored, std::move(launched));
  HERALD_CO_ASSIGN_OR_RETURN(stored.targets, co_await store_.CampaignTargets(tenant, id));
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Account> accounts,
                             co_await CheckReferences(stored));
  HERALD_CO_RETURN_IF_ERROR(co_await Dispatch(stored, accounts));
  co_await SettlePendingDispatch(tenant, pending->id);
  HERALD_CO_ASSIGN_OR_RETURN(CampaignView view, co_await View(std::move(stored)));
  Count(view);
  co_return view;
}

asio::awaitable<absl::Status> Service::CancelDeliveries(const Campaign& stored, absl::Time now) {
  // Deliveries that have not reached the upstream end here (the workers skip their jobs); those
  // with an upstream message get an unsend job. A send in flight now finds the campaign cancelled
  // when it returns and unsends what it created.
  HERALD_CO_ASSIGN_OR_RETURN(auto deliveries,
                             co_await store_.ListDeliveries(stored.tenant, stored.id));
  std::vector<queue::JobSpec> unsends;
  for (const Delivery& d : deliveries) {
    DeliveryState before = d.state;
    absl::StatusOr<Delivery> updated =
        co_await store_.UpdateDelivery(stored.tenant, stored.id, d.account, [&](Delivery& x) {
          before = x.state;
          if (x.state == DeliveryState::kCancelled || x.state == DeliveryState::kFailed) {
            return absl::OkStatus();
          }
          // Seen by an earlier attempt of this cancel: its unsend is decided, or still pending
          // (and enqueued again below).
          if (!x.cancel_outcome.empty()) return absl::OkStatus();
          if (x.upstream_message_id == 0) {
            if (x.state == DeliveryState::kSending) return absl::OkStatus();  // its send decides
            x.state = DeliveryState::kCancelled;
            x.cancel_outcome = "nothing sent";
          } else {
            x.cancel_outcome = std::string(kUnsendPending);
          }
          x.update_time_ms = absl::ToUnixMillis(now);
          return absl::OkStatus();
        });
    // Its target removed since the list was read, by an update of a draft's or a scheduled
    // campaign's targets: nothing was sent to it.
    if (absl::IsNotFound(updated.status())) continue;
    HERALD_CO_ASSIGN_OR_RETURN(Delivery after, std::move(updated));
    if (lifecycle_ != nullptr) lifecycle_->DeliveryUpdated(before, after.state);
    if (after.cancel_outcome == kUnsendPending) {
      HERALD_CO_ASSIGN_OR_RETURN(store::Account account,
                                 co_await GetAccount(stored.tenant, d.account));
      unsends.push_back(UnsendStep(stored, account, config_.attempts));
    }
  }
  if (!unsends.empty()) {
    HERALD_CO_RETURN_IF_ERROR(co_await EnqueueAll(queue_, std::move(unsends)));
  }
  co_return absl::OkStatus();
}

asio::awaitable<absl::Status> Service::FailUnstartedDeliveries(const Campaign& stored,
                                                               absl::Time now,
                                                               std::string_view reason) {
  HERALD_CO_ASSIGN_OR_RETURN(auto deliveries,
                             co_await store_.ListDeliveries(stored.tenant, stored.id));
  // A delivery with a send attempt is its job's to settle: the send may have reached the
  // upstream before the pause.
  std::vector<queue::JobSpec> cleanups;
  for (const Delivery& d : deliveries) {
    if (!NeverAttempted(d)) continue;
    DeliveryState before = d.state;
    HERALD_CO_ASSIGN_OR_RETURN(
        Delivery after,
        co_await store_.UpdateDelivery(stored.tenant, stored.id, d.account, [&](Delivery& x) {
          before = x.state;
          if (!NeverAttempted(x)) return absl::OkStatus();
          x.state = DeliveryState::kFailed;
          x.error = std::string(reason);
          x.update_time_ms = absl::ToUnixMillis(now);
          return absl::OkStatus();
        }));
    if (lifecycle_ != nullptr) lifecycle_->DeliveryUpdated(before, after.state);
    // One that had begun its segment (a scan, an upstream list) leaves nothing of it behind:
    // its parked steps end with the old generation, so a step of this one clears it.
    const bool segment_begun = after.segment_fans >= 0 || !after.segment_list_id.empty() ||
                               !after.segment_list_name.empty();
    if (before != DeliveryState::kFailed && after.state == DeliveryState::kFailed &&
        segment_begun) {
      HERALD_CO_ASSIGN_OR_RETURN(store::Account account,
                                 co_await GetAccount(stored.tenant, d.account));
      cleanups.push_back(ClearUnsentStep(stored, account, config_.attempts));
    }
  }
  co_return co_await EnqueueAll(queue_, std::move(cleanups));
}

Service::Op<CancelResult> Service::CancelCampaign(std::string tenant, std::string id) {
  HERALD_CO_ASSIGN_OR_RETURN(CampaignView current, co_await GetCampaign(tenant, id));
  if (current.state == CampaignState::kCancelled || current.state == CampaignState::kMissed ||
      current.state == CampaignState::kFailed) {
    if (current.campaign.phase == CampaignPhase::kCancelled) {
      // Perhaps a retry of a cancel that stopped part-way: its deliveries are finished off and
      // their unsends enqueued (again: job ids are derived) before the answer says so.
      HERALD_CO_RETURN_IF_ERROR(co_await CancelDeliveries(current.campaign, clock_.Now()));
    }
    co_return NotChangeable(current, "there is nothing left to cancel");
  }
  const absl::Time now = clock_.Now();
  const std::optional<store::PendingDispatch> pending = NewPendingDispatch(id);
  HERALD_CO_ASSIGN_OR_RETURN(
      Campaign stored, co_await UpdateOwingDispatch(tenant, id, pending, [&](Campaign& c) {
        // Final since it was read (missed at its send time, or cancelled by a concurrent call):
        // kept as it is.
        if (c.phase == CampaignPhase::kCancelled) {
          return absl::FailedPreconditionError(
              StrCat("campaign '", c.id, "' is cancelled; there is nothing left to cancel"));
        }
        if (c.phase == CampaignPhase::kMissed) {
          return absl::FailedPreconditionError(
              StrCat("campaign '", c.id, "' was missed; there is nothing left to cancel"));
        }
        c.phase = CampaignPhase::kCancelled;
        c.phase_reason = "cancelled by request";
        c.update_time_ms = c.end_time_ms = absl::ToUnixMillis(now);
        return absl::OkStatus();
      }));
  HERALD_CO_RETURN_IF_ERROR(co_await CancelDeliveries(stored, now));
  co_await SettlePendingDispatch(tenant, pending->id);
  std::vector<Delivery> deliveries;
  // Give the unsends a moment, so the answer can say what could not be undone.
  const MonoTime deadline = clock_.MonotonicAfter(config_.cancel_wait);
  CancelResult result;
  while (true) {
    HERALD_CO_ASSIGN_OR_RETURN(deliveries, co_await store_.ListDeliveries(tenant, id));
    const bool unsettled = std::any_of(deliveries.begin(), deliveries.end(), CancelUnsettled);
    if (!unsettled || clock_.Monotonic() >= deadline) break;
    co_await clock_.SleepFor(absl::Milliseconds(50));
  }
  for (Delivery& d : deliveries) {
    if (d.state == DeliveryState::kCancelled) continue;
    // A delivery that failed after its message reached the upstream (its progress could not be
    // followed) left that message out: the cancel does not take it back.
    const bool failed_unsent = d.state == DeliveryState::kFailed && d.upstream_message_id == 0;
    if (d.cancel_outcome.empty()) {
      if (failed_unsent) {
        d.cancel_outcome = "nothing sent (the delivery had failed)";
      } else if (d.state == DeliveryState::kFailed) {
        d.cancel_outcome =
            StrCat("not unsent: the delivery failed after its mass message ", d.upstream_message_id,
                   " reached the upstream; check the account's queue");
      } else {
        d.cancel_outcome = "still being sent";
      }
    }
    if (!failed_unsent) result.not_undone.push_back(std::move(d));
  }
  // Wording only: the cancel stands without it.
  if (absl::Status said = co_await SayWhatHoldsUnsends(tenant, result.not_undone); !said.ok()) {
    log::Warn("could not say what holds a cancel's unsends",
              {{"tenant", tenant}, {"campaign", id}, {"error", said.ToString()}});
  }
  HERALD_CO_ASSIGN_OR_RETURN(result.campaign, co_await View(std::move(stored)));
  Count(result.campaign);
  co_return result;
}

asio::awaitable<absl::Status> Service::SayWhatHoldsUnsends(const std::string& tenant,
                                                           std::vector<Delivery>& deliveries) {
  std::vector<std::string> ids;
  for (const Delivery& d : deliveries) {
    if (d.cancel_outcome == kUnsendPending) ids.push_back(d.account);
  }
  if (ids.empty()) co_return absl::OkStatus();
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<std::optional<store::Account>> accounts,
                             co_await store_.GetMany<store::Account>(tenant, ids));
  std::vector<std::string> team_ids;
  for (const auto& a : accounts) {
    if (a) team_ids.push_back(a->team);
  }
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<std::optional<store::Team>> teams,
                             co_await store_.GetMany<store::Team>(tenant, team_ids));
  absl::flat_hash_map<std::string, const store::Account*> by_id;
  for (const auto& a : accounts) {
    if (a) by_id[a->id] = &*a;
  }
  absl::flat_hash_map<std::string, const store::Team*> team_by_id;
  for (const auto& t : teams) {
    if (t) team_by_id[t->id] = &*t;
  }
  // An unsend waits in the queue like any call of a paused account or team, while the
  // upstream's window for it runs: say so, so that the operator can resume in time.
  constexpr std::string_view kWindow = "; the upstream allows an unsend only for a while";
  for (Delivery& d : deliveries) {
    if (d.cancel_outcome != kUnsendPending) continue;
    const auto account = by_id.find(d.account);
    if (account == by_id.end()) continue;
    const auto team = team_by_id.find(account->second->team);
    if (account->second->paused) {
      d.cancel_outcome =
          StrCat("unsending, once account '", d.account, "' is resumed (it is paused)", kWindow);
    } else if (team != team_by_id.end() && team->second->paused) {
      d.cancel_outcome = StrCat("unsending, once team '", team->first, "' is resumed (",
                                team->second->pause_reason, ")", kWindow);
    }
  }
  co_return absl::OkStatus();
}

Service::Op<CampaignView> Service::PauseCampaign(std::string tenant, std::string id) {
  HERALD_CO_ASSIGN_OR_RETURN(CampaignView current, co_await GetCampaign(tenant, id));
  // Paused already: a retry of a pause whose answer was lost.
  if (current.campaign.phase == CampaignPhase::kPaused && !IsFinal(current.state)) {
    co_return current;
  }
  if (current.campaign.phase != CampaignPhase::kDispatched &&
      current.campaign.phase != CampaignPhase::kScheduled) {
    co_return NotChangeable(current, "only scheduled or dispatching campaigns can be paused");
  }
  if (IsFinal(current.state)) co_return NotChangeable(current, "it is already final");
  if (current.campaign.phase == CampaignPhase::kDispatched &&
      current.counts.pending + current.counts.in_progress == 0) {
    co_return NotChangeable(current,
                            "every delivery has reached the upstream, so a pause holds nothing; "
                            "cancel it to unsend what the upstream still allows");
  }
  constexpr std::string_view kHeld =
      "its messages are being handed to the upstream, which sends them at the send time "
      "(upstream_lead); cancel it, or update it, instead";
  if (StagingBegun(current.campaign, clock_.Now())) co_return NotChangeable(current, kHeld);
  HERALD_CO_ASSIGN_OR_RETURN(
      Campaign stored, co_await store_.Update<Campaign>(tenant, id, [&](Campaign& c) {
        if (c.phase != current.campaign.phase) {
          return absl::AbortedError("the campaign changed state; read it again and retry");
        }
        if (StagingBegun(c, clock_.Now())) {
          return NotChangeable(current, kHeld);
        }
        c.phase = CampaignPhase::kPaused;
        c.phase_reason = "paused by request";
        c.update_time_ms = absl::ToUnixMillis(clock_.Now());
        return absl::OkStatus();
      }));
  HERALD_CO_ASSIGN_OR_RETURN(CampaignView view, co_await View(std::move(stored)));
  Count(view);
  co_return view;
}

Service::Op<CampaignView> Service::ResumeCampaign(std::string tenant, std::string id) {
  const absl::Time now = clock_.Now();
  HERALD_CO_ASSIGN_OR_RETURN(Campaign current, co_await store_.Get<Campaign>(tenant, id));
  if (current.phase == CampaignPhase::kPaused) {
    // Finished while paused, by deliveries the pause could not hold: nothing is left to resume,
    // but the campaign leaves the paused phase (else it would count as unfinished for good, and
    // hold its accounts, media and segments), keeping its end.
    HERALD_CO_ASSIGN_OR_RETURN(CampaignView view, co_await View(current));
    if (IsFinal(view.state)) {
      HERALD_CO_ASSIGN_OR_RETURN(Campaign stored,
                                 co_await store_.Update<Campaign>(tenant, id, [](Campaign& c) {
                                   if (c.phase == CampaignPhase::kPaused) {
                                     c.phase = CampaignPhase::kDispatched;
                                     c.phase_reason.clear();
                                   }
                                   return absl::OkStatus();
                                 }));
      co_return co_await View(std::move(stored));
    }
  }
  if (Launched(current)) co_return co_await RunAgain(std::move(current), "resume");
  const std::optional<store::PendingDispatch> pending = NewPendingDispatch(id);
  absl::StatusOr<Campaign> resumed =
      co_await UpdateOwingDispatch(tenant, id, pending, [&](Campaign& c) {
        if (c.phase != CampaignPhase::kPaused) {
          return absl::FailedPreconditionError(StrCat("campaign '", c.id, "' is not paused"));
        }
        ++c.generation;  // jobs parked under the old generation end; new ones start below
        c.phase_reason.clear();
        c.update_time_ms = absl::ToUnixMillis(now);
        if (c.dispatch_time_ms == 0) {
          // Paused before it went out and resumed too late: missed, as a schedule Herald could
          // not keep is, rather than sent hours after the time it was meant for.
          if (std::optional<absl::Duration> late = LateBeyondGrace(c, now)) {
            c.phase = CampaignPhase::kMissed;
            c.phase_reason = MissedReason(c, *late);
            c.end_time_ms = c.update_time_ms;
            return absl::OkStatus();
          }
        }
        if (c.dispatch_time_ms == 0 && c.send_time_ms > c.update_time_ms) {
          c.phase = CampaignPhase::kScheduled;
        } else {
          c.phase = CampaignPhase::kDispatched;
          if (c.dispatch_time_ms == 0) c.dispatch_time_ms = c.update_time_ms;
        }
        return absl::OkStatus();
      });
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<Campaign> by_another,
                             co_await LaunchedMeanwhile(tenant, id, resumed.status()));
  if (by_another) co_return co_await RunAgain(*std::move(by_another), "resume");
  HERALD_CO_ASSIGN_OR_RETURN(Campaign stored, std::move(resumed));
  if (stored.phase == CampaignPhase::kMissed) {
    // Left to the dispatch sweep when this fails (the outbox entry stays).
    HERALD_CO_RETURN_IF_ERROR(co_await FailUnstartedDeliveries(stored, now, stored.phase_reason));
    co_await SettlePendingDispatch(tenant, pending->id);
    HERALD_CO_ASSIGN_OR_RETURN(CampaignView missed, co_await View(std::move(stored)));
    Count(missed);
    co_return missed;
  }
  // Every unfinished delivery starts again from its first step; steps already done are skipped
  // by what the delivery records (uploaded media, the upstream message id).
  HERALD_CO_ASSIGN_OR_RETURN(CampaignView view, co_await Redispatch(std::move(stored)));
  co_await SettlePendingDispatch(tenant, pending->id);
  Count(view);
  co_return view;
}

Service::Op<std::shared_ptr<upstream::Api>> Service::ApiFor(const store::Account& account) {
  if (account.paused) {
    co_return absl::FailedPreconditionError(
        StrCat("account '", account.id, "' is paused; ResumeAccount first"));
  }
  HERALD_CO_ASSIGN_OR_RETURN(store::Team team, co_await GetTeam(account.tenant, account.team));
  if (team.paused) {
    co_return absl::FailedPreconditionError(
        StrCat("team '", team.id, "' is paused: ", team.pause_reason));
  }
  co_return clients_.For(team);
}

asio::awaitable<absl::Status> Service::Pace(const std::string& tenant, const std::string& team,
                                            const std::string* account) {
  std::string queue_team = QueueTeam(tenant, team);
  std::string queue_account = account ? QueueAccount(tenant, *account) : std::string();
  absl::StatusOr<PacedCall> paced = co_await TakeTokenWithin(
      queue_, clock_, std::move(queue_team), std::move(queue_account), config_.max_pace_wait);
  if (!paced.ok()) {
    // Both are registered with the limiter when created; a miss is Herald's own fault.
    if (absl::IsNotFound(paced.status())) {
      co_return absl::InternalError(StrCat("rate limiter: ", paced.status().message()));
    }
    if (absl::IsFailedPrecondition(paced.status())) {
      co_return absl::FailedPreconditionError(
          account ? StrCat("account '", *account, "' or its team '", team, "' is paused")
                  : StrCat("team '", team, "' is paused"));
    }
    co_return paced.status();
  }
  if (!paced->taken) {
    const std::string subject =
        account ? StrCat("account '", *account, "'") : StrCat("team '", team, "'");
    const absl::Duration retry_in = absl::Ceil(paced->retry_in, absl::Seconds(1));
    co_return WithRetryInfo(
        absl::ResourceExhaustedError(StrCat(subject, " is at its upstream rate limit; retry in ",
                                            absl::FormatDuration(retry_in))),
        retry_in);
  }
  if (lifecycle_ != nullptr) lifecycle_->PaceWaited("api", paced->waited);
  co_return absl::OkStatus();
}

asio::awaitable<absl::Status> Service::UpstreamFailed(const std::string& tenant,
                                                      const std::string& team,
                                                      std::string_view doing, absl::Status status) {
  const std::string what = StrCat("upstream, ", doing, ": ", status.message());
  const std::optional<upstream::UpstreamError> e = upstream::GetUpstreamError(status);
  if (e && (e->kind == upstream::ErrorKind::kUnauthorized ||
            e->kind == upstream::ErrorKind::kOutOfCredits)) {
    absl::StatusOr<std::optional<std::string>> reason =
        co_await PauseTeamAfterUpstream(store_, queue_, clock_, tenant, team, *e);
    if (!reason.ok()) {
      log::Warn("could not pause the team",
                {{"tenant", tenant}, {"team", team}, {"error", reason.status().ToString()}});
      co_return absl::FailedPreconditionError(what);
    }
    if (!reason->has_value()) {
      co_return WithRetryInfo(
          absl::UnavailableError(StrCat(what, "; this refusal is of team '", team,
                                        "' before its last resume or key change: retry")),
          absl::Seconds(1));
    }
    co_return absl::FailedPreconditionError(
        StrCat(what, "; team '", team, "' is now paused: ", **reason));
  }
  if (e && e->kind == upstream::ErrorKind::kRateLimited) {
    // The team's bucket waits out the upstream's Retry-After, for the workers too.
    const absl::Duration retry_after = e->retry_after;
    if (absl::Status pushed = co_await queue_.PushBackTeam(QueueTeam(tenant, team), retry_after);
        !pushed.ok()) {
      log::Warn("could not hold the team back after a 429",
                {{"tenant", tenant}, {"team", team}, {"error", pushed.ToString()}});
    }
    const absl::Duration retry_in = absl::Ceil(retry_after, absl::Seconds(1));
    co_return WithRetryInfo(
        absl::ResourceExhaustedError(StrCat(what, "; retry in ", absl::FormatDuration(retry_in))),
        retry_in);
  }
  switch (status.code()) {
    // These would read as a verdict on the caller's own key or names, not the upstream's.
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kNotFound:
      co_return absl::FailedPreconditionError(what);
    default:
      co_return absl::Status(status.code(), what);
  }
}

Service::Op<int64_t> Service::SendTestMessage(std::string tenant, std::string id,
                                              std::string account_id,
                                              std::vector<int64_t> fan_ids) {
  HERALD_CO_ASSIGN_OR_RETURN(Campaign campaign, co_await store_.Get<Campaign>(tenant, id));
  const bool targeted = std::any_of(campaign.targets.begin(), campaign.targets.end(),
                                    [&](const auto& t) { return t.account == account_id; });
  if (!targeted) {
    co_return absl::InvalidArgumentError(
        StrCat("account: '", account_id, "' is not a target of campaign '", id, "'"));
  }
  HERALD_CO_ASSIGN_OR_RETURN(store::Account account, co_await GetAccount(tenant, account_id));
  HERALD_CO_ASSIGN_OR_RETURN(std::shared_ptr<upstream::Api> api, co_await ApiFor(account));
  upstream::MassMessage message{.text = campaign.content.text,
                                .user_ids = std::move(fan_ids),
                                .price_cents = campaign.content.price_cents,
                                .locked_text = campaign.content.locked_text};
  for (const std::string& media_id : campaign.content.media) {
    HERALD_CO_ASSIGN_OR_RETURN(store::MediaAsset asset, co_await GetMediaAsset(tenant, media_id));
    upstream::Result<upstream::UploadedMedia> uploaded;
    HERALD_CO_RETURN_IF_ERROR(co_await Pace(tenant, account.team, &account_id));
    if (!asset.source_url.empty()) {
      uploaded = co_await api->UploadMediaFromUrl(account_id, asset.source_url);
    } else {
      HERALD_CO_ASSIGN_OR_RETURN(std::optional<std::string> bytes,
                                 co_await store_.GetMediaBytes(tenant, media_id));
      if (!bytes) co_return absl::FailedPreconditionError("the media asset's bytes are gone");
      upstream::MediaFile file{.file_name = asset.file_name,
                               .content_type = asset.content_type,
                               .data = *std::move(bytes)};
      uploaded = co_await api->UploadMediaFile(account_id, std::move(file));
    }
    if (!uploaded.ok()) {
      co_return co_await UpstreamFailed(account.tenant, account.team, "uploading media",
                                        uploaded.status());
    }
    message.media_files.push_back(uploaded.value->prefixed_id);
    if (std::find(campaign.content.previews.begin(), campaign.content.previews.end(), media_id) !=
        campaign.content.previews.end()) {
      message.previews.push_back(uploaded.value->prefixed_id);
    }
  }
  HERALD_CO_RETURN_IF_ERROR(co_await Pace(tenant, account.team, &account_id));
  auto sent = co_await api->SendMassMessage(account_id, std::move(message));
  if (!sent.ok()) {
    co_return co_await UpstreamFailed(account.tenant, account.team, "sending the test message",
                                      sent.status());
  }
  // Claimed as a test, so that the campaign's own send, reconciling after an attempt whose
  // outcome it does not know, never takes it for its message: text, price and media are the
  // same. The message is sent whatever happens here; an error would only invite a second one.
  auto claimed = co_await store_.records().Put(
      AdoptedMessages(tenant, account_id), std::to_string(sent.value->id), TestMessageClaim(id));
  if (!claimed.ok()) {
    log::Error(
        "could not record a test message as such; a send of its campaign that "
        "reconciles within the clock skew could adopt it",
        {{"campaign", id},
         {"account", account_id},
         {"message", sent.value->id},
         {"error", claimed.status().message()}});
  }
  co_return sent.value->id;
}

Service::Op<std::vector<UpstreamQueueEntry>> Service::ListUpstreamQueue(std::string tenant,
                                                                        std::string account_id) {
  HERALD_CO_ASSIGN_OR_RETURN(store::Account account, co_await GetAccount(tenant, account_id));
  HERALD_CO_ASSIGN_OR_RETURN(std::shared_ptr<upstream::Api> api, co_await ApiFor(account));
  HERALD_CO_RETURN_IF_ERROR(co_await Pace(tenant, account.team, &account_id));
  auto queue = co_await api->ListMassMessageQueue(account_id);
  if (!queue.ok()) {
    co_return co_await UpstreamFailed(account.tenant, account.team, "listing the queue",
                                      queue.status());
  }
  std::vector<std::string> ids;
  for (const auto& q : *queue.value) ids.push_back(std::to_string(q.id));
  HERALD_CO_ASSIGN_OR_RETURN(auto owners, co_await store_.records().GetMany(
                                              AdoptedMessages(tenant, account_id), std::move(ids)));
  std::vector<UpstreamQueueEntry> out;
  for (size_t i = 0; i < queue.value->size(); ++i) {
    const upstream::QueueItem& q = (*queue.value)[i];
    out.push_back({.id = q.id,
                   .date = q.date,
                   .is_ready = q.is_ready,
                   .is_done = q.is_done,
                   .is_canceled = q.is_canceled,
                   .has_error = q.has_error,
                   .pending = q.pending,
                   .total = q.total,
                   .can_unsend = q.can_unsend});
    if (owners[i]) {
      UpstreamQueueEntry& e = out.back();
      std::optional<std::string_view> tested = TestMessageCampaign(*owners[i]);
      e.test = tested.has_value();
      e.campaign = tested ? std::string(*tested) : *std::move(owners[i]);
    }
  }
  co_return out;
}

Service::Op<int64_t> Service::CampaignRevision(std::string tenant, std::string id) {
  co_return co_await store_.CampaignRevision(std::move(tenant), std::move(id));
}

}  // namespace herald::campaign
