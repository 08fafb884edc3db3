// Herald's domain records: what the API creates and the workers carry out, as plain values.
//
// No protobuf and no Redis here: the gRPC adapters translate API messages to and from these
// types, and Store (store.h) persists them. Times are Unix milliseconds (0 = unset); money is
// integer cents. Every record is owned by one tenant; ids are unique within their tenant.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace herald::store {

struct Tenant {
  std::string id;
  std::string display_name;
  int64_t create_time_ms = 0;
  int32_t scheduling_weight = 1;  // share of the queue between tenants (queue::SetTenantWeight)
};

// A tenant's API key. The secret itself is never stored: `secret_sha256` (hex) identifies it.
struct ApiKey {
  std::string tenant;
  std::string id;
  std::string display_name;
  std::string secret_prefix;
  std::string secret_sha256;
  int64_t create_time_ms = 0;
  int64_t revoke_time_ms = 0;  // 0 while valid
};

// One pause of an account or team: when it began, and when it ended (0 while it lasts).
struct PauseWindow {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

struct Team {
  std::string tenant;
  std::string id;
  std::string display_name;
  std::string sealed_api_key;  // the upstream key, sealed with SecretBox (crypto.h)
  std::string api_key_hint;    // its last four characters; empty for a key under 12
  int32_t rate_limit_per_minute = 1000;
  int32_t burst = 0;             // the limiter's burst; 0: rate_limit_per_minute / 60 (>= 1)
  bool api_key_invalid = false;  // the upstream answered 401
  bool paused = false;
  // Paused with PauseTeam: stays paused until ResumeTeam, whatever the upstream answers or a
  // new key (without it, Herald paused the team after an upstream refusal).
  bool paused_on_request = false;
  std::string pause_reason;
  // The last few pauses, oldest first (campaign/state.h keeps them): a scheduled delivery one of
  // them held past its grace period is missed, not sent late.
  std::vector<PauseWindow> pauses;
  int64_t create_time_ms = 0;
  // The upstream webhook that sends this team's events to Herald's ingest endpoint.
  std::string webhook_id;             // "wh_…"; empty: not registered
  std::string sealed_webhook_secret;  // its signing secret, sealed with SecretBox
  // The secret before the last registration, still accepted for a while (ServiceConfig::
  // webhook_secret_overlap): until the upstream has taken the new one (or when telling it
  // failed), and while it retries what it signed before, its events are signed with this one.
  std::string sealed_previous_webhook_secret;
  // When the secret last changed; 0: never, or before Herald recorded it (the previous secret
  // is then accepted until the next change).
  int64_t webhook_secret_rotate_time_ms = 0;
  std::string webhook_error;  // why the last registration failed; empty: it did not
};

struct Account {
  std::string tenant;
  std::string id;  // the upstream account id, "acct_…"
  std::string team;
  std::string display_name;
  int32_t sends_per_minute = 0;  // 0: only the team's limit
  int32_t max_in_flight = 0;     // 0: no cap
  bool paused = false;
  std::vector<PauseWindow> pauses;  // as Team's
  std::string upstream_username;
  int64_t create_time_ms = 0;
};

enum class MediaType { kUnspecified, kImage, kVideo, kAudio };

struct MediaAsset {
  std::string tenant;
  std::string id;
  MediaType type = MediaType::kUnspecified;
  std::string source_url;  // empty: uploaded bytes (stored beside the record)
  std::string file_name;
  std::string content_type;
  int64_t size_bytes = 0;
  std::string sha256;
  int64_t create_time_ms = 0;
};

struct Segment {
  std::string tenant;
  std::string id;
  std::string display_name;
  int64_t min_lifetime_spend_cents = 0;
  int32_t subscribed_within_days = 0;
  bool expired_only = false;
  int64_t create_time_ms = 0;
  // Of the fans the other conditions select, only this many biggest spenders (0: no limit).
  int32_t top_spenders = 0;

  // A segment selects by at least one condition: one with none is never stored.
  bool SetsACondition() const {
    return min_lifetime_spend_cents != 0 || subscribed_within_days != 0 || expired_only ||
           top_spenders != 0;
  }
};

// What fires an automation.
enum class AutomationTrigger {
  kUnspecified,
  kNewSubscriber,  // a fan subscribed to the account (subscriptions.new)
  kRenewal,        // a fan's subscription renewed (subscriptions.renewed)
  kExpiry,         // a fan's subscription expired (subscriptions.expired)
  kPpvUnlock,      // a fan bought a priced message of the account (messages.ppv.unlocked)
};

// What an automation does with the fan its trigger concerns.
enum class AutomationAction {
  kAddToList,       // adds the fan to the list (every rule stored before actions existed)
  kRemoveFromList,  // takes the fan off the list: a fan who came back leaves a win-back list
};

// A tenant's rule: when `trigger` happens on `account`, add the fan to (or remove it from) the
// account's upstream list `list_id`. Immutable once created.
struct Automation {
  std::string tenant;
  std::string id;
  std::string account;  // the upstream account id, "acct_…"
  AutomationTrigger trigger = AutomationTrigger::kUnspecified;
  std::string list_id;  // a custom list's numeric id
  int64_t create_time_ms = 0;
  AutomationAction action = AutomationAction::kAddToList;
};

struct MessageContent {
  std::string text;
  int64_t price_cents = 0;
  std::vector<std::string> media;     // media asset ids of the tenant
  std::vector<std::string> previews;  // a subset of media
  bool locked_text = false;
};

struct AccountTarget {
  std::string account;  // account id
  std::vector<std::string> user_lists;
  std::vector<int64_t> fan_ids;
  std::vector<std::string> excluded_lists;
  std::string segment;  // segment id; empty: none
};

// What the campaign itself was told to do; the state reported to clients also depends on its
// deliveries (campaign.h, DeriveState).
enum class CampaignPhase {
  kDraft,       // saved; nothing enqueued
  kScheduled,   // first steps enqueued, delayed until send_time
  kDispatched,  // send time reached (or sent at once): deliveries are running
  kPaused,      // deliveries hold until resumed
  kCancelled,
  kMissed,  // the send time passed beyond the grace period while Herald could not send
};

struct Campaign {
  std::string tenant;
  std::string id;
  std::string display_name;
  MessageContent content;
  std::vector<AccountTarget> targets;
  int64_t send_time_ms = 0;  // 0: at once
  int64_t grace_period_ms = 15 * 60 * 1000;
  // When > 0 (and send_time is set): each delivery is handed to the upstream this long before
  // send_time, as a mass message the upstream holds until then (scheduledDate). 0: Herald sends
  // at send_time itself.
  int64_t upstream_lead_ms = 0;
  CampaignPhase phase = CampaignPhase::kDraft;
  std::string phase_reason;
  // Bumped whenever the campaign is (re)scheduled or resumed: workflow job ids include it, so
  // jobs of an earlier schedule find themselves stale and do nothing.
  int32_t generation = 1;
  int64_t create_time_ms = 0;
  int64_t update_time_ms = 0;
  int64_t dispatch_time_ms = 0;
  int64_t end_time_ms = 0;  // set when it became final
};

// An entry of a tenant's dispatch outbox: a request that launched, rescheduled or resumed a
// campaign owes it the enqueueing of its jobs. The entry is written with (or before) the change
// and removed once the jobs are enqueued; one left behind (the request failed, or its process
// died, in between) is finished by the dispatch sweep (campaign::Service::SweepDispatches).
struct PendingDispatch {
  std::string id;  // unique per entry: one campaign may owe several dispatches at once
  std::string campaign;
  int64_t since_ms = 0;  // when the change was made
};

enum class DeliveryState {
  kPending,
  kUploadingMedia,
  kBuildingList,
  kSending,
  // The upstream holds the mass message until the campaign's send_time (an upstream-scheduled
  // send, Campaign::upstream_lead_ms); until then it can be changed (PUT) or deleted there.
  kScheduledUpstream,
  kSent,
  kCompleted,
  kFailed,
  kCancelled,
};

bool IsFinal(DeliveryState state);

// What a send attempt asked the upstream to send, as reconciliation recognises its message: the
// campaign's content may change after the attempt (an update of a held message starts a new
// generation), and the message the attempt may have made still carries the attempt's.
struct AttemptContent {
  std::string text_sha256;  // of the text as the upstream lists it (normalised); empty: unknown
  bool free = false;        // price 0
  int32_t media_count = 0;
  int32_t generation = 0;  // the campaign generation whose content it was
};

// One (campaign, account) pair as the workers carry it out.
struct Delivery {
  std::string account;
  DeliveryState state = DeliveryState::kPending;
  // Upstream media ids uploaded for this delivery, by position in content.media. Single-use:
  // cleared when a send consumed them.
  std::vector<std::string> upstream_media;
  std::string segment_list_id;  // the upstream list built from the target's segment
  // The name the list step asked the upstream to make that list under, set before it asks: a
  // list whose answer was lost (or came after the delivery ended) has no segment_list_id, and is
  // found by this name, to be used or deleted, never made twice or left behind.
  std::string segment_list_name;
  int64_t segment_fans = -1;  // fans the segment selected on the account; -1: not scanned yet
  int64_t segment_added = 0;  // of those, fans added to segment_list_id so far
  int64_t upstream_message_id = 0;
  int64_t recipients = 0;
  int64_t recipients_pending = 0;
  std::string error;
  int32_t send_attempts = 0;
  // When the latest send attempt started: reconciliation after an unknown outcome looks for a
  // message created from then on.
  int64_t send_started_ms = 0;
  // The scheduledDate of the latest send attempt (0: sent for at once): reconciliation looks for
  // a message the upstream still holds with this date.
  int64_t send_scheduled_ms = 0;
  // The content of the latest send attempt (text_sha256 empty: recorded before Herald kept it,
  // and the campaign's current content stands in).
  AttemptContent attempt_content;
  // Until when the latest send attempt, left unanswered (a timeout, a worker gone mid-call), may
  // still reach the upstream: a lookup that finds no message of it before then looks again
  // later instead of taking it for unsent. 0: the upstream ended the exchange, or no attempt.
  int64_t send_in_doubt_until_ms = 0;
  // The send attempt (its number, as send_attempts counts) known to have made no message: the
  // upstream refused it (a 4xx), or it was looked for in vain once it could no longer land. When
  // it is the latest, the next attempt sends without looking for it. 0: none. (A number, not a
  // flag: a Herald that does not know the field leaves it as it was when it makes an attempt.)
  int32_t send_unsent_attempt = 0;
  // The campaign generation whose content the upstream holds for a kScheduledUpstream delivery:
  // while messages are held, every update starts a new generation, and a held message of an
  // older one gets the change by PUT.
  int32_t upstream_generation = 0;
  int32_t polls = 0;
  std::string cancel_outcome;
  int64_t update_time_ms = 0;
};

}  // namespace herald::store
