// Herald's operations, as the gRPC adapters (services/api) call them: tenants and keys, teams and
// accounts, media, and campaigns. Inputs are validated records (the adapters' Parse step checks
// shapes and ranges, naming the fields); Service checks what needs the store: that referenced
// resources exist and belong to the tenant, that a change is still possible, and it keeps the
// queue's limits and pauses in step with the records.
//
// Every method takes the caller's tenant: records of other tenants are NOT_FOUND, exactly like
// records that do not exist.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/awaitable.hpp>

#include <herald/campaign/attempts.h>
#include <herald/campaign/state.h>
#include <herald/common/clock.h>
#include <herald/common/ids.h>
#include <herald/store/model.h>
#include <herald/store/store.h>
#include <herald/upstream/client.h>

namespace herald::metrics {
class Registry;
}  // namespace herald::metrics
namespace herald::queue {
class Queue;
}  // namespace herald::queue
namespace herald::store {
class AuditTrail;
struct AuditPage;
struct AuditQuery;
class SecretBox;
}  // namespace herald::store

namespace herald::campaign {
namespace internal {
class LifecycleMetrics;
}  // namespace internal

class UpstreamClients;

// Who is calling: a tenant, or the platform administrator.
struct Caller {
  std::string tenant;  // empty for the platform administrator
  std::string key;     // the API key's id; empty for the platform administrator
  bool admin = false;

  // Who, for the audit trail: "platform-admin" or "tenants/{t}/apiKeys/{k}".
  std::string Actor() const;
};

// An upstream_lead is an offset from send_time: INVALID_ARGUMENT for one without a send time.
absl::Status CheckUpstreamLeadHasSendTime(const store::Campaign& campaign);

// A campaign as clients see it.
struct CampaignView {
  store::Campaign campaign;
  CampaignState state = CampaignState::kDraft;
  DeliveryCounts counts;
  std::string reason;  // why it is in its state, when there is something to say
  int64_t revision = 0;
};

struct CancelResult {
  CampaignView campaign;
  // Deliveries whose upstream message is still out (could not be unsent, or the unsend had not
  // finished within ServiceConfig::cancel_wait), with the reason in cancel_outcome.
  std::vector<store::Delivery> not_undone;
};

// An upstream mass message of an account, and the campaign Herald sent it for (if any).
struct UpstreamQueueEntry {
  int64_t id = 0;
  std::string date;
  bool is_ready = false;
  bool is_done = false;
  bool is_canceled = false;
  bool has_error = false;
  int64_t pending = 0;
  int64_t total = 0;
  bool can_unsend = false;
  std::string campaign;  // campaign id; empty when not Herald's
  bool test = false;     // a test message of `campaign` (SendTestMessage)
};

struct ServiceConfig {
  std::string admin_key;  // the platform administrator's bearer secret; empty: none
  int max_targets = 10000;
  int list_batch = 100;    // fan ids per upstream add-to-list call
  AttemptLimits attempts;  // of each job the API enqueues (WorkflowConfig::attempts)
  // AddFansToUserList waits this long for its queued batches.
  absl::Duration list_wait = absl::Seconds(30);
  // CancelCampaign waits this long for the unsends it started, to report what was not undone.
  absl::Duration cancel_wait = absl::Seconds(5);
  // An upstream call the API makes itself waits this long at most for its team's and account's
  // rate limits; longer is RESOURCE_EXHAUSTED.
  absl::Duration max_pace_wait = absl::Seconds(2);
  // Where the upstream reaches Herald's ingest, e.g. "https://ingest.example.com/webhooks": each
  // team registers "<url>/<tenant>.<team>" with the upstream when it is created. Empty: teams
  // are not registered (no webhooks; deliveries are followed by polling).
  std::string public_webhook_url;
  // How long a team's previous webhook signing secret is still accepted after it changed: the
  // upstream retries what it signed before for hours. Zero: not at all.
  absl::Duration webhook_secret_overlap = absl::Hours(24);
};

// The upstream events Herald subscribes each team to; automations on other events add theirs
// (Service::SyncTeamWebhookEvents).
inline constexpr std::string_view kWebhookEvents[] = {"messages.sent",      "messages.ppv.unlocked",
                                                      "transactions.new",   "subscriptions.new",
                                                      "chat_queue.updated", "chat_queue.finished"};

// The upstream event an automation fires on ("subscriptions.new", …); empty for kUnspecified.
std::string_view TriggerEvent(store::AutomationTrigger trigger);

class Service {
 public:
  template <typename T>
  using Op = boost::asio::awaitable<absl::StatusOr<T>>;

  // Everything must outlive the service.
  Service(store::Store& store, queue::Queue& queue, const store::SecretBox& box,
          UpstreamClients& clients, const Clock& clock, ServiceConfig config);
  ~Service();

  // Counts, in `registry` (which must outlive the service), the campaigns it moves into a state
  // (herald_campaigns_total).
  void UseMetrics(metrics::Registry& registry);

  // Writes the administrative and key operations to `trail` (which must outlive the service),
  // through Audit().
  void UseAuditTrail(store::AuditTrail& trail);
  // Records that `caller` did `action` on `resource` (of `tenant`). The operation has happened:
  // a failure to record it is logged, not returned.
  boost::asio::awaitable<void> Audit(const Caller& caller, std::string_view action,
                                     std::string_view tenant, std::string_view resource,
                                     std::string_view detail = {});
  // The audit trail, newest first (platform administrator); kFailedPrecondition without one.
  Op<store::AuditPage> ListAuditEvents(store::AuditQuery query);

  // What RotateEncryptionKey did.
  struct Rotation {
    std::string key_id;  // the current key's
    int teams = 0;
    int resealed = 0;
    std::vector<std::string> unreadable;  // "tenants/{t}/teams/{id}: reason"
  };
  // Seals every team secret not sealed under the current key again under it (platform
  // administrator).
  Op<Rotation> RotateEncryptionKey();

  // kUnauthenticated for a missing, unknown or revoked key.
  Op<Caller> Authenticate(std::string_view bearer);

  // ---- tenants and keys (platform administrator)
  Op<store::Created<store::Tenant>> CreateTenant(store::Tenant tenant, store::RequestId request_id);
  Op<store::Tenant> GetTenant(std::string id);
  // Changes the named `fields` (display_name, scheduling_weight) to `update`'s values.
  Op<store::Tenant> UpdateTenant(store::Tenant update, std::vector<std::string> fields);
  Op<std::vector<store::Tenant>> ListTenants();
  // The key and its secret (empty on a replay: the secret is shown once).
  Op<std::pair<store::ApiKey, std::string>> CreateApiKey(std::string tenant,
                                                         std::string display_name,
                                                         store::RequestId request_id);
  Op<std::vector<store::ApiKey>> ListApiKeys(std::string tenant);
  struct Revoked {
    store::ApiKey key;
    bool now = false;  // false: it was revoked before (nothing changed)
  };
  Op<Revoked> RevokeApiKey(std::string tenant, std::string id);

  // ---- teams and accounts
  // A team's secrets in clear, as a caller gives them; they are sealed before they are stored.
  struct TeamSecrets {
    std::optional<std::string> api_key;         // the upstream API key
    std::optional<std::string> webhook_secret;  // the secret the upstream signs webhooks with
  };
  // `secrets.api_key` is required. With a webhook secret, the team's webhook is registered with
  // it (when Herald has a public webhook URL); without one, with a secret Herald generates.
  Op<store::Created<store::Team>> CreateTeam(store::Team team, TeamSecrets secrets,
                                             store::RequestId request_id);
  Op<store::Team> GetTeam(std::string tenant, std::string id);
  Op<std::vector<store::Team>> ListTeams(std::string tenant);
  // Fields named in `fields` (proto field names) are copied; the secrets given are replaced (a
  // replaced webhook secret stays accepted beside the new one: for
  // ServiceConfig::webhook_secret_overlap, or, on a team whose webhook Herald registered, until
  // the next change).
  Op<store::Team> UpdateTeam(store::Team team, TeamSecrets secrets,
                             std::vector<std::string> fields);
  // Deletes a team without accounts, and its webhook upstream (whose events the upstream
  // charges to the team). An upstream failure that may pass (unreachable, busy, the team at its
  // rate limit) is returned and nothing is deleted; one that will not (the key refused, no
  // credits, the team paused) leaves the webhook registered, with a warning in the log.
  Op<bool> DeleteTeam(std::string tenant, std::string id);
  // Holds every upstream call of the team's accounts until ResumeTeam, as a pause after an
  // upstream refusal does; but a new key does not end it, and Sweep::paused_teams leaves it out
  // (an agency's choice is nothing to alert on). Idempotent.
  Op<store::Team> PauseTeam(std::string tenant, std::string id);
  // Ends a team's pause, whichever paused it; kFailedPrecondition while its key is refused.
  Op<store::Team> ResumeTeam(std::string tenant, std::string id);
  // Registers (or re-registers, with a new signing secret) the team's webhook with the
  // upstream: updates Herald's webhook there if it exists, else creates it. kFailedPrecondition
  // when ServiceConfig::public_webhook_url is not set; upstream errors as they are (the failure
  // is also kept in Team::webhook_error).
  // `secret`: the signing secret to register; empty: a new random one.
  Op<store::Team> RegisterTeamWebhook(std::string tenant, std::string id, std::string secret = {});
  // Makes the upstream webhook of `account`'s team carry kWebhookEvents and the events of the
  // tenant's automations on the team's accounts, with `also` besides (the event of a rule about
  // to be stored; empty: none). True when the upstream was told; false when the team has no
  // webhook Herald registered (registering it subscribes the same events). Upstream errors as
  // UpstreamFailed gives them.
  Op<bool> SyncTeamWebhookEvents(std::string tenant, std::string account, std::string also);
  // The signing secrets of a team's webhook for the ingest: the current one and the one before
  // the last registration (empty: none). kNotFound when the team has no webhook;
  // kFailedPrecondition when its secret is sealed under an encryption key this process lacks;
  // kDataLoss when it does not open (altered, or another record's).
  Op<std::pair<std::string, std::string>> TeamWebhookSecrets(std::string tenant, std::string id);

  Op<store::Created<store::Account>> CreateAccount(store::Account account,
                                                   store::RequestId request_id);
  Op<store::Account> GetAccount(std::string tenant, std::string id);
  Op<std::vector<store::Account>> ListAccounts(std::string tenant, std::string team);
  // Sets the `fields` of `account` (its id names it). Its team is immutable: `account.team`, when
  // set, must be the stored one (INVALID_ARGUMENT otherwise, nothing changed).
  Op<store::Account> UpdateAccount(store::Account account, std::vector<std::string> fields);
  Op<bool> DeleteAccount(std::string tenant, std::string id);
  Op<store::Account> SetAccountPaused(std::string tenant, std::string id, bool paused);
  // What SyncAccounts did with the team's upstream accounts.
  struct SyncedAccounts {
    std::vector<store::Account> created;
    int unchanged = 0;  // known already, in this team
    // Known already under another of the tenant's teams, where they stay (a creator moved
    // between the agency's upstream keys): deleted there, the next sync brings them here.
    std::vector<store::Account> in_other_teams;
    // Listed with an id that is not an account id ("acct_" then 1-64 letters or digits): not
    // imported.
    std::vector<std::string> unusable_ids;
  };
  Op<SyncedAccounts> SyncAccounts(std::string tenant, std::string team);

  // ---- media
  Op<store::Created<store::MediaAsset>> CreateMediaAsset(store::MediaAsset asset,
                                                         store::RequestId request_id,
                                                         std::optional<std::string> bytes);
  Op<store::MediaAsset> GetMediaAsset(std::string tenant, std::string id);
  Op<std::vector<store::MediaAsset>> ListMediaAssets(std::string tenant);
  Op<bool> DeleteMediaAsset(std::string tenant, std::string id);

  // ---- audiences
  // The most upstream lists a page of ListUserLists holds: one fewer than the upstream's most,
  // which Herald reads to tell whether another page follows.
  static constexpr int kMaxUserListPage = 49;
  // One page of the account's upstream lists (offset paging, 1 to kMaxUserListPage per page) and
  // whether more follow: the upstream, which pages by 10 to 50 without saying whether more follow,
  // is asked for one more than the page.
  Op<std::pair<std::vector<upstream::UserList>, bool>> ListUserLists(std::string tenant,
                                                                     std::string account,
                                                                     int offset, int limit);
  // Idempotent by `request_id` (empty: not idempotent): a retry returns the first call's list;
  // when the first call's answer was lost, the list is looked for by its name before another
  // is made.
  Op<upstream::UserList> CreateUserList(std::string tenant, std::string account, std::string name,
                                        std::string request_id);
  // Adds fans in batches of the upstream maximum (ServiceConfig::list_batch), one queued job
  // each (rate-limited; the workers run them), and waits for them up to
  // ServiceConfig::list_wait. A fan given twice is added once. The batches made, and how many
  // of the fans given the upstream reported in the list.
  Op<std::pair<int, int64_t>> AddFansToUserList(std::string tenant, std::string account,
                                                std::string list_id, std::vector<int64_t> fans);
  Op<store::Created<store::Segment>> CreateSegment(store::Segment segment,
                                                   store::RequestId request_id);
  Op<store::Segment> GetSegment(std::string tenant, std::string id);
  Op<std::vector<store::Segment>> ListSegments(std::string tenant);
  // Sets the `fields` of the segment named by `update` (its tenant and id) to `update`'s. A
  // segment is read as each account's list is built, so it changes only while no campaign that
  // uses it has left DRAFT unfinished: FAILED_PRECONDITION otherwise, naming that campaign.
  // INVALID_ARGUMENT when the result would set no condition.
  Op<store::Segment> UpdateSegment(store::Segment update, std::vector<std::string> fields);
  Op<bool> DeleteSegment(std::string tenant, std::string id);

  // ---- campaigns
  Op<CampaignView> CreateCampaign(store::Campaign campaign, store::RequestId request_id);
  // What a retry of CreateCampaign with `request_id` answers, when a create with it was taken
  // (within the request id's lifetime); nullopt when none was. For a retry that no longer passes
  // a check of the time (its send time has passed since the first attempt).
  Op<std::optional<CampaignView>> ReplayCreateCampaign(std::string tenant,
                                                       store::RequestId request_id);
  Op<CampaignView> GetCampaign(std::string tenant, std::string id);
  Op<std::vector<store::Delivery>> ListDeliveries(std::string tenant, std::string id);
  // Campaign `id`'s delivery to `account`; kNotFound naming the campaign or the delivery.
  Op<store::Delivery> GetDelivery(std::string tenant, std::string id, std::string account);
  // Newest first; `before` is a page cursor (a creation time in ms).
  Op<std::pair<std::vector<CampaignView>, std::optional<double>>> ListCampaigns(
      std::string tenant, std::optional<double> before, int limit);
  // Applies the named fields of `update` (content, targets, send_time, …). Messages the
  // upstream holds for the send time (Campaign::upstream_lead_ms) get the change by PUT, one
  // job per account; a send still in flight carries the change on when it lands.
  // `expected_revision`, unless 0, is a precondition: ABORTED, and nothing changes, unless the
  // campaign is at that revision (CampaignView::revision).
  Op<CampaignView> UpdateCampaign(store::Campaign update, std::vector<std::string> fields,
                                  int64_t expected_revision);
  Op<CampaignView> LaunchCampaign(std::string tenant, std::string id);
  Op<CancelResult> CancelCampaign(std::string tenant, std::string id);
  Op<CampaignView> PauseCampaign(std::string tenant, std::string id);
  Op<CampaignView> ResumeCampaign(std::string tenant, std::string id);
  Op<int64_t> CampaignRevision(std::string tenant, std::string id);
  // Sends the campaign's content to `fan_ids` of one of its target accounts, as an upstream mass
  // message addressed to those fans only (media uploaded for it). The upstream message id.
  // Calls the upstream directly (not through the queue): a handful of calls an operator makes.
  Op<int64_t> SendTestMessage(std::string tenant, std::string id, std::string account,
                              std::vector<int64_t> fan_ids);
  // The account's upstream queue (GET mass-messaging), Herald's campaigns marked.
  Op<std::vector<UpstreamQueueEntry>> ListUpstreamQueue(std::string tenant, std::string account);

  // ---- the dispatch outbox (store::PendingDispatch)
  // A change that launches, reschedules, resumes or cancels a campaign enters the tenant's
  // outbox with (or before) its write, and leaves it once the campaign's jobs are enqueued. An
  // entry left behind means the request failed, or its process died, in between: the sweep
  // finishes it as a retry of the request would, by enqueueing the jobs the campaign's state
  // calls for (idempotent: job ids are derived), then removes it.
  struct Sweep {
    int finished = 0;    // campaigns whose jobs were enqueued (or found to need none)
    int failed = 0;      // campaigns left for the next sweep
    absl::Status error;  // the first failure, if any
    // Teams paused after the upstream refused them (402, 401), by tenant; every tenant whose
    // teams could be read is present, with 0 when none is paused.
    std::map<std::string, int> paused_teams;
  };
  // Finishes every entry at least `older_than` old, in every tenant, and counts the tenants'
  // paused teams.
  Op<Sweep> SweepDispatches(absl::Duration older_than);

 private:
  // A record a campaign may use, which cannot go while an unfinished campaign does.
  struct Use {
    enum class Kind { kAccount, kMediaAsset, kSegment };
    Kind kind;
    std::string id;
    bool skip_drafts = false;  // a draft's use does not count (it has read nothing yet)
  };
  // The id of an unfinished campaign that uses `use`, if any. Reads the tenant's campaigns a
  // page at a time: their heads, then (for an account) one round trip per page for whether each
  // targets it, or (for a segment) each one's targets; then whether those that use it are final.
  Op<std::optional<std::string>> UnfinishedCampaignWith(const std::string& tenant, Use use);
  // Whether `campaign` is in a final state: its phase says so, except for a launched campaign,
  // whose deliveries are read (one round trip).
  Op<bool> Finished(const store::Campaign& campaign);
  // Seals `secret` as the team's webhook secret, keeping the one it replaces accepted.
  void RotateWebhookSecret(store::Team& team, std::string_view secret) const;
  // INVALID_ARGUMENT when the campaign names more accounts than ServiceConfig::max_targets.
  absl::Status CheckTargetCount(const store::Campaign& campaign) const;
  // An update of a campaign whose messages the upstream is being handed (StagingBegun): only
  // what a PUT of the held messages can carry may change.
  static absl::Status CheckStagedUpdate(const store::Campaign& current,
                                        const store::Campaign& next);
  // What a campaign refers to, as three lookups: its media, its targets' accounts, their
  // segments.
  static std::vector<store::Lookup> ReferenceLookups(const store::Campaign& campaign);
  // The target accounts from the documents of ReferenceLookups, or INVALID_ARGUMENT naming the
  // first reference that is missing.
  static absl::StatusOr<std::vector<store::Account>> ResolveReferences(
      const store::Campaign& campaign, const store::LookupResults& found);
  // Checks targets and media against the tenant's records (a read of ReferenceLookups).
  Op<std::vector<store::Account>> CheckReferences(const store::Campaign& campaign);
  // Enqueues the first step of every unfinished delivery of a scheduled or dispatched campaign
  // (idempotent), and returns its view: for a resume, and a retried launch or resume.
  Op<CampaignView> Redispatch(store::Campaign campaign);
  // A launch or resume of a campaign that runs already: a retry whose answer was lost, or whose
  // first attempt stopped before enqueueing, is redispatched; a finished one is refused, as there
  // is nothing left to `verb`.
  Op<CampaignView> RunAgain(store::Campaign campaign, std::string_view verb);
  // Whether cancelled `campaign`'s cancel has settled its delivery to `account` (taken the
  // message back, found it stays out, or had nothing to take back).
  Op<bool> CancelSettledOn(const store::Campaign& campaign, const std::string& account);
  // After a launch or resume was `refused` by its write: the campaign, if a concurrent launch or
  // resume got there first (to be answered as a retry is); none otherwise.
  Op<std::optional<store::Campaign>> LaunchedMeanwhile(const std::string& tenant,
                                                       const std::string& id,
                                                       const absl::Status& refused);
  // A cancelled campaign's deliveries: those not on the upstream end as cancelled, those with an
  // upstream message get an unsend job. Idempotent, so a retried cancel finishes what a failed
  // one began.
  boost::asio::awaitable<absl::Status> CancelDeliveries(const store::Campaign& stored,
                                                        absl::Time now);
  // A missed campaign's deliveries that never started end FAILED with `reason` (the campaign's
  // phase_reason), as the workers end them when they find a campaign missed at its send time;
  // so do those of a launched campaign whose references went. Idempotent.
  boost::asio::awaitable<absl::Status> FailUnstartedDeliveries(const store::Campaign& stored,
                                                               absl::Time now,
                                                               std::string_view reason);
  // Enqueues the first step of every delivery not yet started (idempotent).
  boost::asio::awaitable<absl::Status> Dispatch(const store::Campaign& campaign,
                                                const std::vector<store::Account>& accounts);
  // Enqueues what each unfinished delivery of a launched campaign needs next, from where it
  // stands: a message the upstream holds gets an update step (which then follows it), a send in
  // flight is left to its job, the others start their chain (idempotent).
  boost::asio::awaitable<absl::Status> DispatchFromDeliveries(
      const store::Campaign& campaign, const std::vector<store::Account>& accounts);
  // A new outbox entry for `campaign`, made now; `suffix` names it within the campaign (the
  // create's is "create", so a replay of the create can remove it).
  store::PendingDispatch NewPendingDispatch(const std::string& campaign, std::string suffix = {});
  // store::Store::Update of the campaign, with `pending` (when set) entered in the outbox
  // before the write, and removed again when the write was refused (nothing written).
  Op<store::Campaign> UpdateOwingDispatch(const std::string& tenant, const std::string& id,
                                          const std::optional<store::PendingDispatch>& pending,
                                          std::function<absl::Status(store::Campaign&)> mutate);
  // Removes an entry whose jobs are enqueued. A failure is logged, not returned: the entry only
  // costs the sweep one more idempotent dispatch.
  boost::asio::awaitable<void> SettlePendingDispatch(const std::string& tenant,
                                                     const std::string& id);
  // Enqueues what `campaign`'s state calls for, as a retry of the request that left an outbox
  // entry would: the chains of a launched campaign, the unsends of a cancelled one, nothing for
  // the others (or when the campaign is gone).
  boost::asio::awaitable<absl::Status> FinishDispatch(const std::string& tenant,
                                                      const std::string& campaign);
  // The campaign as clients see it, from its records read now.
  Op<CampaignView> View(store::Campaign campaign);
  // The same at `revision`, read before `campaign` was.
  Op<CampaignView> ViewAt(store::Campaign campaign, int64_t revision);
  // For each of `deliveries` whose unsend waits (kUnsendPending) because its account or team is
  // paused, a cancel_outcome that says so.
  boost::asio::awaitable<absl::Status> SayWhatHoldsUnsends(
      const std::string& tenant, std::vector<store::Delivery>& deliveries);
  // A retried create's answer: the campaign its first attempt stored, its jobs enqueued again
  // when it is launched (the first attempt may have stopped before enqueueing them).
  Op<CampaignView> FinishReplayedCreate(store::Campaign campaign);
  // Deletes the team's webhook upstream before the team goes. A failure that may pass is
  // returned; one that will not (a refused key, no credits) leaves the webhook, with a warning.
  boost::asio::awaitable<absl::Status> DeleteTeamWebhook(const store::Team& team);
  // CreateAccount once the account's team is known to exist.
  Op<store::Created<store::Account>> StoreAccount(store::Account account,
                                                  store::RequestId request_id);
  // Registers the account's limits and pause with the queue. `created`: the account was just
  // created, and moves in the queue if it was registered with another team before.
  boost::asio::awaitable<absl::Status> ApplyAccountLimits(const store::Account& account,
                                                          bool created);
  // The upstream client of `account`'s team; FAILED_PRECONDITION while the account or its team
  // is paused (a paused account makes no upstream calls, the API's own included).
  Op<std::shared_ptr<upstream::Api>> ApiFor(const store::Account& account);
  // Waits for a token of the team's limit and the account's (null: the team's alone) before an
  // upstream call the API makes itself, so those calls count against the limits the workers
  // keep. A wait beyond ServiceConfig::max_pace_wait is RESOURCE_EXHAUSTED, with the time to
  // retry in; a paused team or account is FAILED_PRECONDITION.
  boost::asio::awaitable<absl::Status> Pace(const std::string& tenant, const std::string& team,
                                            const std::string* account);
  // A failure of an upstream call the API made itself, as its caller sees it: the upstream's
  // words, with a code that cannot be mistaken for a verdict on the caller's own request (the
  // upstream refusing the team's key is FAILED_PRECONDITION, not UNAUTHENTICATED). A refused key
  // (401) or exhausted credits (402) pause the team, and a 429 holds the team's bucket back for
  // its Retry-After, as when a worker meets them. A 401 or 402 to a call made before the team
  // was resumed or given a new key pauses nothing and is UNAVAILABLE: a retry may succeed.
  boost::asio::awaitable<absl::Status> UpstreamFailed(const std::string& tenant,
                                                      const std::string& team,
                                                      std::string_view doing, absl::Status status);
  // Where the upstream sends `team`'s webhooks: ServiceConfig::public_webhook_url and the
  // team's endpoint id.
  std::string TeamWebhookUrl(std::string_view tenant, std::string_view team) const;
  // kWebhookEvents and the events of the tenant's automations on `team`'s accounts.
  Op<std::vector<std::string>> TeamWebhookEvents(const std::string& tenant,
                                                 const std::string& team);
  // Counts `view`'s campaign as having entered its state.
  void Count(const CampaignView& view);

  store::Store& store_;
  queue::Queue& queue_;
  const store::SecretBox& box_;
  UpstreamClients& clients_;
  const Clock& clock_;
  const ServiceConfig config_;
  IdGenerator ids_;
  std::unique_ptr<internal::LifecycleMetrics> lifecycle_;
  store::AuditTrail* audit_ = nullptr;
};

}  // namespace herald::campaign
