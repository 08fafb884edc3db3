// How a delivery (campaign × account) is carried out: a chain of queue jobs, one upstream call
// each, chained with the queue's atomic ack-and-enqueue:
//
//   upload_media(0) … upload_media(k-1) → send → poll(1) → poll(2) … (until the upstream queue
//   reports done)
//
// A campaign with an upstream lead (Campaign::upstream_lead_ms) runs the chain that long before
// its send time and sends with the send time as scheduledDate: the upstream holds the message
// (kScheduledUpstream) and the first poll waits for the send time. An update meanwhile reaches
// the held message through an update job (PUT) per account.
//
// Job ids derive from (tenant, campaign, account, generation, step), so a replayed dispatch
// enqueues nothing twice, and jobs of an earlier generation (the campaign was rescheduled or
// resumed since) find themselves stale and end without acting.
//
// At most one upstream mass message per delivery: before a send whose previous attempt may have
// reached the upstream (any earlier attempt, or a lease that expired mid-call), the workflow
// reconciles against the account's upstream messages and adopts the one it finds (see
// docs/architecture.md, "Reconciling a send").
//
// Upstream errors: 429 holds the team (no attempt lost); 402 pauses the team and says so on the
// team and its campaigns; 401 marks the team's key invalid and pauses it; retryable errors and
// unknown outcomes retry with backoff; validation errors fail the delivery with the upstream's
// words. A delivery whose last attempt fails is marked failed with the reason before its job is
// dead-lettered, so no delivery is left unfinished without one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <herald/campaign/attempts.h>
#include <herald/common/clock.h>
#include <herald/metrics/metrics.h>
#include <herald/queue/job.h>
#include <herald/queue/worker.h>
#include <herald/store/model.h>
#include <herald/store/record_store.h>
#include <herald/upstream/client.h>
#include <herald/webhooks/recorder.h>

namespace herald::store {
class SecretBox;
class Store;
struct DeliveryUpdate;
struct UpdateExtras;
}  // namespace herald::store

namespace herald::campaign {
namespace internal {
class LifecycleMetrics;
}  // namespace internal

inline constexpr std::string_view kUploadMediaJob = "delivery_upload_media";
inline constexpr std::string_view kSendJob = "delivery_send";
inline constexpr std::string_view kPollJob = "delivery_poll";
// A target's segment becomes an upstream list: scan the source list page by page, keeping the
// fans the segment selects; create the list; add the fans in batches.
inline constexpr std::string_view kSegmentScanJob = "delivery_segment_scan";
inline constexpr std::string_view kSegmentListJob = "delivery_segment_list";
inline constexpr std::string_view kSegmentAddJob = "delivery_segment_add";
// Unsends a cancelled campaign's upstream message (DELETE, within the upstream's window).
inline constexpr std::string_view kUnsendJob = "delivery_unsend";
// Carries an update of the campaign to an upstream message the upstream holds for the send time
// (PUT; Campaign::upstream_lead_ms).
inline constexpr std::string_view kUpdateJob = "delivery_update";
// Repairs a sent priced message's analytics from the upstream's buyers list, one page per job,
// in rounds after the delivery completes (WorkflowConfig::reconcile_schedule).
inline constexpr std::string_view kReconcileJob = "delivery_reconcile";
// Deletes the upstream list a segment was turned into once the delivery is over: after the last
// reconciliation round (right after the message when there is none), or when the delivery ended
// without a message (WorkflowConfig::keep_segment_lists).
inline constexpr std::string_view kDropListJob = "delivery_drop_list";

// Adds one batch of fans to an upstream list (AudienceService.AddFansToUserList): one call each,
// rate-limited like every call. Its outcome is written under the batch's number in
// ListAddOutcomes(tenant, operation), which expires once the caller waiting on it can have gone.
inline constexpr std::string_view kListAddJob = "list_add_fans";
// Every kind of job the workflow runs (DeliveryWorkflow::Register handles each).
std::vector<std::string> JobKinds();
store::Table ListAddOutcomes(std::string_view tenant, std::string_view operation);
// Where a Herald before ListAddOutcomes wrote every operation's outcomes, under
// ListAddResultKey; a job without an outcome_ttl_ms (enqueued by such a Herald) still does.
store::Table ListAddResults(std::string_view tenant);
std::string ListAddResultKey(std::string_view operation, int batch);
// The job adding `fans` (one batch, at most the upstream's maximum) to `list_id` of `account`,
// tried `max_attempts` times at most; its outcome expires `outcome_ttl` after it is written.
queue::JobSpec ListAddStep(const store::Account& account, std::string_view operation, int batch,
                           std::string_view list_id, const std::vector<int64_t>& fans,
                           int max_attempts, absl::Duration outcome_ttl);
// A batch's outcome: how many fans the upstream reported in the list, or why it failed.
struct ListAddResult {
  bool ok = false;
  int64_t reported = 0;
  std::string error;
  int http_status = 0;        // the upstream's answer to a refused batch; 0: none
  std::string upstream_code;  // and its machine-readable code ("account_not_found", ...)
};
std::optional<ListAddResult> DecodeListAddResult(std::string_view document);

// What a delivery's cancel_outcome says while its unsend job has not finished.
inline constexpr std::string_view kUnsendPending = "unsending";
// Delivery::cancel_outcome of a message someone took back on the upstream itself (the creator,
// another client of the key) while Herald was not cancelling it.
inline constexpr std::string_view kUnsentElsewhere = "unsent on the upstream, not by Herald";

// Whether a cancel has yet to settle a delivery: its unsend is pending, or a send is in flight
// (its outcome decides whether there is a message to take back).
inline bool CancelUnsettled(const store::Delivery& d) {
  return d.cancel_outcome == kUnsendPending || d.state == store::DeliveryState::kSending;
}

// The queue's identities for a tenant's teams and accounts: the queue is shared by every tenant.
std::string QueueTeam(std::string_view tenant, std::string_view team);
std::string QueueAccount(std::string_view tenant, std::string_view account);

// Enqueues `jobs` (idempotently, as Queue::EnqueueBatch): a job the queue refuses because its
// account is registered with another team is FAILED_PRECONDITION naming the account, never a
// result left unread (its job would be lost unseen).
boost::asio::awaitable<absl::Status> EnqueueAll(queue::Queue& queue,
                                                std::vector<queue::JobSpec> jobs);

// Pauses a team after the upstream answered one of its calls 401 (its key is refused: the team
// is marked api_key_invalid) or 402 (out of credits), with a reason an operator can act on, and
// stops the queue leasing its jobs. The workers and the API's own upstream calls both pause this
// way. Returns the reason; INVALID_ARGUMENT for any other kind of error.
//
// A refusal of a call made before the team was last resumed (`error.asked_at`), or with a key
// the team no longer has (`error.key_id`, against UpstreamKeyId), pauses nothing and returns
// nullopt: it speaks of the credits or the key the operator has since dealt with, and a call
// made now may well succeed. (A refusal not stamped with its call's time and key always pauses.)
// The label a team's upstream clients give their errors (upstream::ClientConfig::key_id): a
// digest of the sealed key, which changes whenever the key is set.
std::string UpstreamKeyId(const store::Team& team);
boost::asio::awaitable<absl::StatusOr<std::optional<std::string>>> PauseTeamAfterUpstream(
    store::Store& store, queue::Queue& queue, const Clock& clock, std::string tenant,
    std::string team, const upstream::UpstreamError& error);
// An upstream call's token: taken after waiting `waited`, or not taken because the next one is
// `retry_in` away, beyond the wait allowed.
struct PacedCall {
  bool taken = false;
  absl::Duration waited;
  absl::Duration retry_in;
};
// Takes a token of the queue team's bucket and, unless `queue_account` is empty, of the
// account's, sleeping on `clock` for one due within `max_wait`. Errors are the queue's
// (Queue::TakeToken: FailedPrecondition when paused, NotFound when not registered).
boost::asio::awaitable<absl::StatusOr<PacedCall>> TakeTokenWithin(queue::Queue& queue,
                                                                  const Clock& clock,
                                                                  std::string queue_team,
                                                                  std::string queue_account,
                                                                  absl::Duration max_wait);

// For a job whose upstream call failed with `error`: when the upstream refused the team (401,
// 402), pauses it (PauseTeamAfterUpstream) and returns Release, so the job runs again once the
// team is resumed; a refusal from before the team's last resume or key change runs it again a
// moment later (kStaleRefusalRetry), without spending an attempt. Retry when the pause could not
// be recorded; nullopt for any other error.
inline constexpr absl::Duration kStaleRefusalRetry = absl::Seconds(1);
boost::asio::awaitable<std::optional<queue::JobResult>> PauseTeamIfRefused(
    store::Store& store, queue::Queue& queue, const Clock& clock, std::string tenant,
    std::string team, const absl::Status& error);

// What Herald knows of a fan of an account (filled from upstream events): the data segments
// select on. Table AccountFans(tenant, account), fan id -> JSON of FanData.
struct FanData {
  int64_t lifetime_spend_cents = 0;
  int64_t subscribed_at_ms = 0;  // 0: unknown
};
store::Table AccountFans(std::string_view tenant, std::string_view account);
std::string EncodeFanData(const FanData& fan);
std::optional<FanData> DecodeFanData(std::string_view document);

// Whether `segment` selects a fan with `data` (nullopt: Herald knows nothing of the fan) at `now`.
// The source list (upstream "expired" for expired_only, else "fans") has already chosen the fan.
// For a top_spenders segment this makes the fan a candidate; SegmentRecipients ranks them.
bool SegmentSelects(const store::Segment& segment, const std::optional<FanData>& data,
                    absl::Time now);

// A fan a segment's scan selected, with its lifetime spend.
struct ScannedFan {
  int64_t id = 0;
  int64_t spend_cents = 0;

  friend bool operator==(const ScannedFan&, const ScannedFan&) = default;
};

// One page of a segment's scan as stored: comma-separated "id", or "id:spend" where the segment
// ranks by spend. Decoding skips a malformed entry, and reads a page without spends as spend 0.
std::string EncodeScanPage(const std::vector<ScannedFan>& fans, bool with_spend);
std::vector<ScannedFan> DecodeScanPage(std::string_view page);

// The fans `segment` adds to its list, in the order they are added: every scanned fan in scan
// order or, for a top_spenders segment, the biggest spenders, biggest first (equal spends: the
// lower fan id first), so that every batch of the list step sees the same order.
std::vector<int64_t> SegmentRecipients(const store::Segment& segment,
                                       std::vector<ScannedFan> scanned);

// One call's worth of a segment's recipients, as the list step stores it for the add step:
// where the batch starts among SegmentRecipients, and its fans.
struct AddBatch {
  int64_t begin = 0;
  std::vector<int64_t> fans;

  friend bool operator==(const AddBatch&, const AddBatch&) = default;
};

// "<begin>;<id>,<id>,…". Decoding refuses (nullopt) anything else, an empty batch among it.
std::string EncodeAddBatch(const AddBatch& batch);
std::optional<AddBatch> DecodeAddBatch(std::string_view document);

// A delivery's recipients still pending at one progress check.
struct ProgressSample {
  int64_t pending = 0;
  absl::Time at;
};
// `d`'s pending recipients as of its last change.
ProgressSample ProgressOf(const store::Delivery& d);
// How long until a delivery's next progress check: `backoff` (the poll schedule's delay), or less
// when the last two checks (`before`, then `now`) say the upstream will have reached every
// recipient sooner. The check then comes `margin` after that projected moment, so that it mostly
// finds the message done. Pending counts that did not fall give no projection.
absl::Duration NextPollDelay(ProgressSample before, ProgressSample now, absl::Duration margin,
                             absl::Duration backoff);

// Upstream message ids Herald adopted for its deliveries, per account (id -> campaign id, or
// TestMessageClaim of the campaign for its test messages).
store::Table AdoptedMessages(std::string_view tenant, std::string_view account);

// The account's upstream list named `name`, among its first 1,000 lists (pages of 50, each read
// after `pace` allowed it); nullopt when there is none. A failed `pace` or read ends the search
// with its status. How a create whose answer was lost finds what it made.
boost::asio::awaitable<absl::StatusOr<std::optional<upstream::UserList>>> FindUserListNamed(
    upstream::Api& api, std::string account, std::string name,
    std::function<boost::asio::awaitable<absl::Status>()> pace);
// What AdoptedMessages holds for a test message of `campaign`: the campaign's own sends never
// adopt it, although its text, price and media are theirs.
std::string TestMessageClaim(std::string_view campaign);
// The campaign of a TestMessageClaim, or nullopt when `claim` is not one.
std::optional<std::string_view> TestMessageCampaign(std::string_view claim);

// The first job of `account`'s delivery of `campaign` (`target`: the account's target), due
// after `delay`, tried as often as `attempts` allows its kind.
queue::JobSpec FirstStep(const store::Campaign& campaign, const store::AccountTarget& target,
                         const store::Account& account, absl::Duration delay,
                         const AttemptLimits& attempts);
// Whether `campaign`'s deliveries are being handed to the upstream ahead of its send time
// (Campaign::upstream_lead_ms) at `now`: from the lead's start until the campaign dispatches.
// Its staged messages can then be changed only as the upstream allows (PUT), and it cannot be
// paused.
bool StagingBegun(const store::Campaign& campaign, absl::Time now);
// The job that carries `campaign`'s latest update (its generation) to `account`'s
// upstream message, when the upstream holds one for the send time, then follows the message
// from the send time on. `after_send`: enqueued by a send that landed with older content.
queue::JobSpec UpdateStep(const store::Campaign& campaign, const store::Account& account,
                          const AttemptLimits& attempts, bool after_send = false);
// A step of `campaign` that finds `account`'s delivery failed before its message and clears
// what it had begun for its segment (the scan, and the upstream list unless kept): for a
// delivery the API failed while its own steps were parked under an earlier generation.
queue::JobSpec ClearUnsentStep(const store::Campaign& campaign, const store::Account& account,
                               const AttemptLimits& attempts);
// The job that unsends `account`'s upstream message of a cancelled `campaign`.
queue::JobSpec UnsendStep(const store::Campaign& campaign, const store::Account& account,
                          const AttemptLimits& attempts);

// An upstream client per team (each team has its own API key).
class UpstreamClients {
 public:
  virtual ~UpstreamClients() = default;
  // The client for `team`'s current key; kFailedPrecondition when its sealed key cannot be
  // opened. Thread-safe.
  virtual absl::StatusOr<std::shared_ptr<upstream::Api>> For(const store::Team& team) = 0;
};

// The burst of a team's limiter bucket: Team.burst, or a second's worth of its rate when unset.
int64_t TeamBurst(const store::Team& team);

// Real clients to `base.base_url`, the key opened from each team's sealed key. `registry` (may be
// null) and `box` must outlive the result. With a registry, each team a client is asked for
// reports the most calls Herald lets it make in a minute (herald_team_minute_calls_max: its
// rate_limit_per_minute, bursts included).
std::unique_ptr<UpstreamClients> MakeUpstreamClients(boost::asio::any_io_executor executor,
                                                     upstream::ClientConfig base,
                                                     const store::SecretBox& box,
                                                     metrics::Registry* registry);

// The upstream's maximum fan ids per add-to-list call.
inline constexpr int kMaxListBatch = 100;

struct WorkflowConfig {
  // Per step, by kind; the send step's limit also bounds a delivery's send attempts while the
  // upstream refuses its media as spent (each refusal uploads again).
  AttemptLimits attempts;
  // The first poll after a send; also how long after a message's projected end
  // (NextPollDelay) the poll comes.
  absl::Duration poll_min = absl::Milliseconds(500);
  absl::Duration poll_max = absl::Seconds(30);  // polls back off up to this
  int max_polls = 5000;            // then the delivery fails as "not finished upstream"
  int segment_page = 100;          // fans per source-list page scanned
  int segment_max_pages = 1000;    // a segment scans at most this many pages per account
  int list_batch = kMaxListBatch;  // fan ids per add-to-list call, 1..kMaxListBatch
  // Reconciliation looks for messages created from (attempt start - skew).
  absl::Duration clock_skew = absl::Minutes(2);
  // A step that cannot find out whether an earlier send attempt created its message (the
  // upstream's queue or overview keeps failing) does not fail the delivery when its attempts run
  // out: a new job asks again `lookup_retry` later, for up to `lookup_patience` after the
  // attempt. Failing would leave a message that may exist, and be delivered, untracked.
  absl::Duration lookup_retry = absl::Minutes(1);
  absl::Duration lookup_patience = absl::Hours(1);
  // A send attempt left unanswered may still reach the upstream for this long after Herald
  // stopped waiting (a timeout, a cancelled call, a 504), or after it began (a worker gone
  // mid-call): until then a lookup that finds no message of it looks again, each time after half
  // the time since the attempt, rather than send.
  absl::Duration send_settle = absl::Seconds(30);
  // After a priced message finishes, its buyers are read from the upstream once per entry, each
  // delay counted from the previous round, to repair purchases whose webhooks were lost. Empty:
  // no reconciliation.
  std::vector<absl::Duration> reconcile_schedule = {
      absl::Minutes(10), absl::Hours(1), absl::Hours(6), absl::Hours(24), absl::Hours(72)};
  int reconcile_page = 100;       // buyers per upstream page
  int platform_fee_percent = 20;  // the platform's share, for purchases found by reconciling
  // A segment's upstream list serves one campaign (it is named after it): once the delivery is
  // over (its last reconciliation round ran) it is deleted from the account, so lists do not pile
  // up on a creator's account, unless this is set.
  bool keep_segment_lists = false;
};

absl::Status ValidateWorkflowConfig(const WorkflowConfig& config);

class DeliveryWorkflow {
 public:
  // Everything must outlive the workflow.
  DeliveryWorkflow(store::Store& store, queue::Queue& queue, UpstreamClients& clients,
                   const Clock& clock, WorkflowConfig config = {});
  ~DeliveryWorkflow();

  // Registers the handler of every delivery job kind. Before worker.Start().
  void Register(queue::Worker& worker);

  // Follows deliveries through the upstream's chat_queue webhooks as `events` records them: a
  // poll step finds the delivery's progress there first and calls the upstream only when no
  // event has moved it within poll_max. Without it (or without webhooks), every step polls.
  // Before the first job runs; `events` must outlive the workflow.
  // `registry` (may be null) receives herald_reconciled_purchases_total.
  void UseEvents(webhooks::MessageAnalytics* events, metrics::Registry* registry);

  // Counts, in `registry` (which must outlive the workflow), the deliveries that end
  // (herald_deliveries_finished_total) and the campaigns the workers dispatch or find missed
  // (herald_campaigns_total). Before the first job runs.
  void UseMetrics(metrics::Registry& registry);

  // Runs one job of any delivery kind.
  boost::asio::awaitable<queue::JobResult> Run(const queue::LeasedJob& job);

  // Acts on a dead letter (StatsPoller::HandDeadLettersTo): a delivery whose current step died
  // (its last attempt failed or its lease expired, or it failed for good before saying why)
  // becomes FAILED with the reason, or, for an unsend, its cancel outcome says it was not
  // unsent; no delivery waits for a step that will never run. Idempotent; other kinds: OK.
  boost::asio::awaitable<absl::Status> OnDeadLetter(const queue::DeadJob& dead);

 private:
  struct Context;

  boost::asio::awaitable<queue::JobResult> UploadMedia(Context& ctx);
  boost::asio::awaitable<queue::JobResult> Send(Context& ctx);
  boost::asio::awaitable<queue::JobResult> Poll(Context& ctx);
  boost::asio::awaitable<queue::JobResult> Unsend(Context& ctx);
  boost::asio::awaitable<queue::JobResult> UpdateUpstream(Context& ctx);
  // What the delivery's latest send attempt sent (the campaign's content, for an attempt
  // recorded without it).
  static store::AttemptContent AttemptedContent(const Context& ctx);
  // After a send landed or an earlier one's message was adopted: when the campaign's `head` is
  // cancelled, marks the unsend pending and returns the step that takes the message back.
  boost::asio::awaitable<std::optional<queue::JobResult>> UnsendIfCancelled(
      Context& ctx, const std::optional<store::Campaign>& head);
  // After a send landed: when the campaign's `head` has moved to a newer generation, the job's
  // next steps are that generation's.
  static void FollowGeneration(Context& ctx, const std::optional<store::Campaign>& head);
  // The send step of the campaign's current generation (ctx.campaign), for a delivery a job of
  // an earlier one had under way.
  queue::JobSpec HandOver(const Context& ctx) const;
  // The first upload of fresh media ids for a delivery whose ids were spent (or never landed
  // on its current chain), as a round of uploads of its own.
  queue::JobSpec UploadAgain(const Context& ctx) const;
  // The step that follows a delivery's upstream message: the first poll, at the send time when
  // the upstream holds the message until then.
  queue::JobSpec FollowStep(const Context& ctx) const;
  // Fails a delivery that has not reached the upstream when its campaign's send time passed
  // beyond the grace period: one of a campaign with an upstream lead (the others went out on
  // time, held upstream), or one an account or team pause held across the end of the grace
  // period. Nullopt when the send may go ahead. `unsent`: a look at the upstream found that no
  // earlier send attempt went out (without it, a delivery with attempts is let through).
  boost::asio::awaitable<std::optional<queue::JobResult>> FailIfMissed(Context& ctx,
                                                                       bool unsent = false);
  boost::asio::awaitable<queue::JobResult> ReconcileBuyers(Context& ctx);
  // The first reconciliation round of a delivery that just completed, if it has one.
  std::optional<queue::JobSpec> FirstReconcile(const Context& ctx) const;
  // What follows a delivery whose message has finished (or was unsent): the first reconciliation
  // round, or without reconciliation the deletion of its segment's list (DropListStep).
  std::optional<queue::JobSpec> AfterMessage(const Context& ctx) const;
  // The deletion of the list the delivery's segment became, when it has one and lists are not
  // kept.
  std::optional<queue::JobSpec> DropListStep(const Context& ctx) const;
  // For a delivery that ended without an upstream message (failed, cancelled or missed): drops
  // its segment's scan, if it began one, and returns DropListStep.
  boost::asio::awaitable<std::optional<queue::JobSpec>> ClearUnsent(const Context& ctx);
  // Deletes the delivery's segment list, found by its name when only that is on record.
  boost::asio::awaitable<queue::JobResult> DropSegmentList(Context& ctx);
  // A lookup or deletion of DropSegmentList failed: the job waits out limits, credits and keys,
  // retries while it has attempts, and otherwise leaves the list (logged).
  boost::asio::awaitable<queue::JobResult> ListNotDropped(Context& ctx, const absl::Status& status,
                                                          std::string_view doing);
  // The reconciliation round after ctx's: the schedule's next, if any; after a round that gave up
  // (its job's attempts spent, or the job dead), the last round again while it has tries left.
  std::optional<queue::JobSpec> NextRound(const Context& ctx, bool gave_up) const;
  boost::asio::awaitable<queue::JobResult> ListAdd(const queue::LeasedJob& job);
  boost::asio::awaitable<queue::JobResult> SegmentScan(Context& ctx);
  boost::asio::awaitable<queue::JobResult> SegmentList(Context& ctx);
  boost::asio::awaitable<queue::JobResult> SegmentAdd(Context& ctx);
  // The segment of the delivery's target; NOT_FOUND, saying why in words for the delivery, when
  // the target names none or the segment was deleted.
  boost::asio::awaitable<absl::StatusOr<store::Segment>> TargetSegment(const Context& ctx);
  // For a segment step that could not read the segment: fails the delivery with TargetSegment's
  // words when it is NOT_FOUND, retries the step when the store failed.
  boost::asio::awaitable<queue::JobResult> SegmentUnreadable(Context& ctx,
                                                             const absl::Status& status);
  // The fans the scan selected that `segment` adds to its list (SegmentRecipients).
  boost::asio::awaitable<absl::StatusOr<std::vector<int64_t>>> SegmentFans(
      const Context& ctx, const store::Segment& segment);
  // The add step's batch ctx.step.index as the list step stored it, or else sliced from
  // SegmentFans; NOT_FOUND (TargetSegment's) when that needs a segment that is gone.
  boost::asio::awaitable<absl::StatusOr<AddBatch>> SegmentBatch(const Context& ctx);
  // Removes the delivery's segment scan (its pages and batches); a failure is logged.
  boost::asio::awaitable<void> DropSegmentScan(const Context& ctx);
  // The step after the segment's list is complete: media uploads, or the send.
  queue::JobSpec AfterSegment(const Context& ctx) const;
  // Loads the account, its team and the team's upstream client into `ctx`; a JobResult when
  // the job cannot go on.
  boost::asio::awaitable<std::optional<queue::JobResult>> LoadAccount(Context& ctx);
  // The upstream message of an earlier attempt of this delivery, if the upstream has one.
  boost::asio::awaitable<absl::StatusOr<std::optional<int64_t>>> Reconcile(Context& ctx);
  // Records upstream message `id` on the delivery (SENT) and claims it for the campaign in one
  // atomic step, then reads the campaign's head: nullopt when the campaign is gone.
  // `scheduled`: the upstream holds it until the send time (kScheduledUpstream).
  boost::asio::awaitable<absl::StatusOr<std::optional<store::Campaign>>> Adopt(
      Context& ctx, int64_t id, int64_t total, int64_t pending, bool scheduled = false);
  // Reconcile's search of the messages the upstream holds for `scheduled` (not started yet).
  boost::asio::awaitable<absl::Status> FindScheduled(
      Context& ctx, absl::Time scheduled, std::vector<std::pair<std::string, int64_t>>& matches);
  // A delivery of a cancelled campaign with no message on record: CANCELLED, nothing sent,
  // unless an attempt to send was made, whose message is then looked for and, found, taken back.
  boost::asio::awaitable<queue::JobResult> CancelUnsent(Context& ctx);
  // The delivery of a cancelled campaign, known to have no message upstream: CANCELLED, nothing
  // sent (then its segment's list is cleared away).
  boost::asio::awaitable<queue::JobResult> SettleUnsent(Context& ctx);
  // A missed campaign's delivery that never started: FAILED, with the campaign's reason.
  boost::asio::awaitable<queue::JobResult> EndMissed(Context& ctx);
  boost::asio::awaitable<queue::JobResult> OnUpstreamError(Context& ctx, const absl::Status& error,
                                                           std::string_view doing);
  boost::asio::awaitable<queue::JobResult> FailDelivery(Context& ctx, std::string reason);
  // A poll's read of a sent message failed. OnUpstreamError while the job has attempts left (and
  // for limits, credits and keys); otherwise the delivery keeps its message and records the
  // error, and the next poll comes after `delay`, up to WorkflowConfig::max_polls.
  boost::asio::awaitable<queue::JobResult> OnFollowError(Context& ctx, const absl::Status& error,
                                                         std::string_view doing,
                                                         absl::Duration delay);
  // A send attempt (made at `attempted`) may have created its message and it is not yet known:
  // its answer was lost, or the lookup for it failed. OnUpstreamError, except that a job out of
  // attempts hands the lookup to a new one (WorkflowConfig::lookup_retry) while the patience
  // lasts.
  boost::asio::awaitable<queue::JobResult> OnLookupError(Context& ctx, const absl::Status& error,
                                                         std::string_view doing,
                                                         absl::Time attempted);
  // After a lookup that found no message of the latest send attempt: while that attempt may
  // still reach the upstream (Delivery::send_in_doubt_until_ms), the job that looked for it runs
  // again later; nullopt once "not sent" is the answer.
  std::optional<queue::JobResult> WhileInDoubt(const Context& ctx) const;
  // Whether this job carries the chain of a delivery in SENDING: a new generation (an update,
  // a resume) starts no chain beside it, so the job must hand the delivery over, not end.
  static bool HoldsSendingDelivery(const Context& ctx);
  // The index of a send step that looks (again) for the message of a send attempt of a delivery
  // of `campaign`, created at `now`.
  int32_t LookupRound(const store::Campaign& campaign, absl::Time now) const;
  // Updates the job's delivery starting from ctx.delivery (one round trip while nobody else has
  // changed it), which then holds the stored result.
  boost::asio::awaitable<absl::StatusOr<store::Delivery>> UpdateDelivery(
      Context& ctx, std::function<absl::Status(store::Delivery&)> mutate);
  // The same, with `extras` written and read in the update's round trip.
  boost::asio::awaitable<absl::StatusOr<store::DeliveryUpdate>> UpdateDelivery(
      Context& ctx, std::function<absl::Status(store::Delivery&)> mutate,
      store::UpdateExtras extras);
  // Before each upstream call of a job: the first is the one its lease took a token for; each
  // further call takes a token of the job's account and team first (design: one call, one
  // token), waiting up to a couple of seconds, or one of the account's intervals when it is paced
  // slower than that. Otherwise a status PaceStop recognises: the job goes back to the queue (no
  // attempt spent) and its lease waits for the token.
  boost::asio::awaitable<absl::Status> Pace(Context& ctx);
  // Pace for a step: nullopt when the call may go ahead, else how the job ends.
  boost::asio::awaitable<std::optional<queue::JobResult>> PaceStep(Context& ctx);
  // The job of step `kind` number `index` of the context's delivery, due after `delay`; a paged
  // step carries its place in the upstream's list from the page before it: a link or a marker
  // (`cursor`), and for a list paged by offset, how many items the pages before it held.
  queue::JobSpec NextStep(const Context& ctx, std::string_view kind, int32_t index,
                          absl::Duration delay, std::string_view cursor = {},
                          std::optional<int64_t> offset = std::nullopt) const;

  webhooks::MessageAnalytics* events_ = nullptr;
  metrics::Counter* reconciled_ = nullptr;
  std::unique_ptr<internal::LifecycleMetrics> lifecycle_;
  store::Store& store_;
  queue::Queue& queue_;
  UpstreamClients& clients_;
  const Clock& clock_;
  const WorkflowConfig config_;
};

}  // namespace herald::campaign
