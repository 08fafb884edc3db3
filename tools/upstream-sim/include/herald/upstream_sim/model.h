// The simulated upstream's state: teams, accounts, fans, user lists, media and mass messages.
//
// Sharding and locking: a World is built once (seed) and its shape is fixed afterwards: the
// team and account vectors and the lookup maps are never modified, so they are read without a
// lock. Everything that changes lives behind a per-account mutex (fans, lists, media, mass
// messages) or a per-team mutex (rate-limit window, credits). A request takes at most one
// account lock and one team lock, never both at once, so handlers stay short and cannot
// deadlock. Ids come from atomics shared by the whole world.
//
// Memory: fans are 40-byte structs in a vector per account, sorted by id (looked up by binary
// search); names and usernames are derived from the id when rendered. List members and mass
// message recipients are vectors of 32-bit fan indexes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <absl/base/thread_annotations.h>
#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>

namespace herald::upstream_sim {

inline constexpr uint8_t kFanActive = 1;    // currently subscribed
inline constexpr uint8_t kFanRebillOn = 2;  // auto-renew on

struct Fan {
  uint64_t id = 0;            // the platform's numeric user id
  int64_t subscribed_at = 0;  // Unix seconds of the (latest) subscription
  // Lifetime spend with this creator, in cents, by kind.
  uint32_t spend_subscriptions = 0;
  uint32_t spend_messages = 0;
  uint32_t spend_tips = 0;
  uint32_t spend_posts = 0;
  // Likelihood to buy relative to the base purchase probability, in percent (100 = average).
  uint16_t propensity = 100;
  uint8_t flags = kFanActive;

  int64_t TotalSpend() const {
    return int64_t{spend_subscriptions} + spend_messages + spend_tips + spend_posts;
  }
  bool active() const { return (flags & kFanActive) != 0; }
};

// Display name and username derived from a fan id ("Fan 123", "u123").
std::string FanName(uint64_t id);
std::string FanUsername(uint64_t id);

// Per-account webhook delivery outcomes, for the ledger. Updated by the emitter.
struct WebhookCounters {
  std::atomic<int64_t> events{0};      // events generated for this account (per endpoint)
  std::atomic<int64_t> attempts{0};    // HTTP attempts, retries and duplicates included
  std::atomic<int64_t> successes{0};   // attempts answered 2xx
  std::atomic<int64_t> failures{0};    // attempts that failed (non-2xx, timeout, connection)
  std::atomic<int64_t> duplicates{0};  // extra deliveries of an event, by the duplicate rate
  std::atomic<int64_t> dropped{0};     // events not queued because the backlog was full
  std::atomic<int64_t> gave_up{0};     // events whose every attempt failed
};

// What never changes about an account; shared with queued webhook events so they outlive a
// reset of the world.
struct AccountIdentity {
  std::string id;  // "acct_" + 32 hex
  std::string username;
  std::string display_name;
  uint64_t user_id = 0;  // the creator's numeric platform id
  std::string team_id;
  uint32_t index = 0;
  uint32_t team_index = 0;
  mutable WebhookCounters webhooks;
};

struct UserList {
  int64_t id = 0;
  std::string name;
  absl::Time created_at;
  std::vector<uint32_t> members;  // fan indexes, sorted, unique
  bool pinned_to_feed = false;
  std::vector<uint32_t> pinned;  // pinned members' fan indexes, in the order they were pinned
};

// Media::used_by of an upload taken by something other than a mass message (a control call that
// stands for a post made outside the API).
inline constexpr int64_t kUsedOutsideTheApi = -1;

// An upload through POST /media/upload: a single-use `ofapi_media_…` id.
struct Media {
  std::string prefixed_id;
  int64_t numeric_id = 0;  // the platform media id it becomes once attached
  std::string file_name;
  int64_t bytes = 0;
  int64_t credits = 0;
  bool is_video = false;
  bool async = false;
  absl::Time created_at;
  absl::Time ready_at;  // async uploads complete (or fail) at this time
  int64_t used_by = 0;  // mass message id that consumed it (or kUsedOutsideTheApi); 0 while unused
  std::string error;    // non-empty: the async upload fails at `ready_at` with this error
  bool failed(absl::Time now) const { return !error.empty() && ready_at <= now; }
};

struct MediaItem {
  std::string ref;         // as the client sent it: "ofapi_media_…" or a numeric vault id
  int64_t numeric_id = 0;  // platform media id
  bool is_video = false;
};

// A mass message's content, immutable once the message starts sending (shared with webhook
// events rendered later).
struct MessageContent {
  std::string text;  // as sent
  std::string html;  // as the upstream echoes it
  int64_t price_cents = 0;
  std::vector<MediaItem> media;
  std::vector<std::string> previews;  // refs, a subset of media refs
  bool locked_text = false;
  std::string giphy_id;
};

struct Purchase {
  uint32_t recipient = 0;  // index into MassMessage::recipients
  int64_t amount_cents = 0;
  absl::Time at;
};

struct MassMessage {
  int64_t id = 0;
  absl::Time created_at;
  absl::Time start_at;  // created_at, or scheduledDate
  bool scheduled = false;
  bool save_for_later = false;
  std::shared_ptr<const MessageContent> content;
  std::vector<std::string> user_lists;
  std::vector<std::string> user_ids;
  std::vector<std::string> excluded_lists;

  std::vector<uint32_t> recipients;   // fan indexes, ascending
  int64_t first_chat_message_id = 0;  // recipient i's chat message id is this + i
  uint32_t sent = 0;                  // recipients delivered so far (a prefix)
  uint32_t viewed = 0;
  // The spend-weighted purchase scale of these recipients (SpendWeightedScale) and the purchase
  // probability it was found for (-1: none yet).
  double purchase_scale = 0;
  double purchase_scale_for = -1;

  bool canceled = false;
  absl::Time canceled_at;
  bool start_reported = false;
  bool finish_reported = false;
  absl::Time last_progress_report;
  absl::Time finished_at;
  int updates = 0;  // successful PUTs

  std::vector<Purchase> purchases;  // in the order they happened
  int64_t revenue_cents = 0;
  uint32_t purchases_pending = 0;  // decided, not yet happened
};

// A queue's state as clients see it at one instant.
struct QueueStatus {
  absl::Time date;
  uint32_t total = 0;
  uint32_t sent = 0;
  uint32_t pending = 0;
  bool started = false;
  bool ready = true;
  bool done = false;
  bool canceled = false;
  bool can_unsend = false;
  int64_t unsend_seconds = 0;
};

// Semantics: a scheduled or saved-for-later queue has not started (pending == total) and can be
// deleted; once sending starts, it can be unsent for `unsend_window`, with `unsend_seconds` the
// whole seconds left. A canceled queue is done with nothing pending.
QueueStatus ComputeQueueStatus(const MassMessage& message, absl::Time now,
                               absl::Duration unsend_window);

// The upstream wraps plain text in a paragraph: "hi" -> "<p>hi</p>"; text that already starts
// with a tag is kept as is.
std::string WrapHtml(std::string_view text);
// Tags removed, for rawText-style fields.
std::string StripHtml(std::string_view html);

struct PendingPurchase {
  absl::Time due;
  int64_t message_id = 0;
  uint32_t recipient = 0;
  bool operator>(const PendingPurchase& other) const { return due > other.due; }
};

class Account {
 public:
  explicit Account(std::shared_ptr<AccountIdentity> identity) : identity_(std::move(identity)) {}

  const AccountIdentity& identity() const { return *identity_; }
  const std::shared_ptr<AccountIdentity>& shared_identity() const { return identity_; }
  const std::string& id() const { return identity_->id; }
  uint32_t team_index() const { return identity_->team_index; }

  mutable absl::Mutex mu;
  std::vector<Fan> fans ABSL_GUARDED_BY(mu);  // sorted by id
  std::vector<UserList> lists ABSL_GUARDED_BY(mu);
  // Pinned fans of system lists by list name, in the order they were pinned (custom lists keep
  // theirs in UserList::pinned).
  std::map<std::string, std::vector<uint32_t>, std::less<>> system_list_pins ABSL_GUARDED_BY(mu);
  std::unordered_map<std::string, Media> media ABSL_GUARDED_BY(mu);
  std::map<int64_t, std::unique_ptr<MassMessage>> messages ABSL_GUARDED_BY(mu);
  std::vector<int64_t> active_messages ABSL_GUARDED_BY(mu);  // scheduled or sending
  std::priority_queue<PendingPurchase, std::vector<PendingPurchase>, std::greater<>>
      pending_purchases ABSL_GUARDED_BY(mu);
  // Async uploads whose media_uploads.* event is not sent yet (prefixed ids).
  std::vector<std::string> pending_uploads ABSL_GUARDED_BY(mu);
  // Creation times are kept strictly increasing so date cursors never tie.
  absl::Time last_message_time ABSL_GUARDED_BY(mu) = absl::InfinitePast();

  // Index of the fan with `fan_id`, or nullopt.
  std::optional<uint32_t> FindFan(uint64_t fan_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  UserList* FindList(int64_t list_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  MassMessage* FindMessage(int64_t message_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // A creation time after every earlier one on this account.
  absl::Time NextMessageTime(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // `wanted`, or the first microsecond after it that no other message of the account starts at
  // (a message's start time is the overview's date cursor: ties would drop one at a page end).
  absl::Time FreeStartTime(absl::Time wanted, int64_t message_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Has queues to deliver, purchases to perform or upload outcomes to report.
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return !active_messages.empty() || !pending_purchases.empty() || !pending_uploads.empty();
  }

 private:
  std::shared_ptr<AccountIdentity> identity_;
};

// The outcome of admitting one request against a team's limit and credits.
struct Admission {
  enum class Result { kOk, kRateLimited, kNoCredits };
  Result result = Result::kOk;
  // The per-minute limit, and what remains in the window it is counted in (a minute unless the
  // simulator's window is shorter).
  int64_t limit_minute = 0;
  int64_t remaining_minute = 0;
  int64_t retry_after_seconds = 0;  // for kRateLimited: until the window resets
  int64_t balance = 0;              // credits after the reservation
};

class Team {
 public:
  // `window` is the length of the fixed windows the limit is counted in (see Admit).
  Team(std::string id, std::vector<std::string> api_keys, int64_t limit_per_minute, int64_t credits,
       absl::Duration window = absl::Minutes(1))
      : id_(std::move(id)),
        api_keys_(std::move(api_keys)),
        window_length_(window),
        limit_per_minute_(limit_per_minute),
        credits_(credits) {}

  const std::string& id() const { return id_; }
  const std::vector<std::string>& api_keys() const { return api_keys_; }
  std::vector<uint32_t> accounts;  // fixed after seeding

  // Counts one request in the current fixed window (a minute unless the team was given another
  // length; windows start at whole multiples of it in Unix time) and reserves `credits`. A window
  // admits the per-minute limit scaled to its length (at least 1). Requests over the limit are
  // not counted and reserve nothing; a team without enough credits gets kNoCredits (the request
  // still counts).
  Admission Admit(absl::Time now, int64_t credits);
  // Takes `credits` more (upload cost beyond the reservation); false and nothing taken when the
  // balance is short.
  bool Charge(int64_t credits);
  // Gives back reserved credits (the request failed).
  void Refund(int64_t credits);

  int64_t balance() const;
  int64_t limit_per_minute() const;
  // Remaining requests in the current window at `now`.
  int64_t remaining(absl::Time now) const;
  void SetLimit(int64_t per_minute);
  void SetCredits(int64_t balance);
  void AddCredits(int64_t delta);

  struct Counters {
    int64_t requests = 0;      // admitted
    int64_t rate_limited = 0;  // answered 429
    int64_t no_credits = 0;    // answered 402
    int64_t credits_spent = 0;
  };
  Counters counters() const;

 private:
  // The current window's index and the requests it admits.
  int64_t WindowAt(absl::Time now) const;
  int64_t PerWindow() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string id_;
  const std::vector<std::string> api_keys_;
  const absl::Duration window_length_;
  mutable absl::Mutex mu_;
  int64_t limit_per_minute_ ABSL_GUARDED_BY(mu_);
  int64_t window_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t used_in_window_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t credits_ ABSL_GUARDED_BY(mu_);
  Counters counters_ ABSL_GUARDED_BY(mu_);
};

// Accounts that have work for the delivery engine. Thread-safe.
class ActiveAccounts {
 public:
  explicit ActiveAccounts(size_t accounts) : marked_(accounts, 0) {}
  void Mark(uint32_t account);
  // Every marked account, unmarked.
  std::vector<uint32_t> Take();

 private:
  absl::Mutex mu_;
  std::vector<uint8_t> marked_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> list_ ABSL_GUARDED_BY(mu_);
};

class World {
 public:
  World(uint64_t seed, std::vector<std::unique_ptr<Team>> teams,
        std::vector<std::unique_ptr<Account>> accounts);

  uint64_t seed() const { return seed_; }
  const std::vector<std::unique_ptr<Team>>& teams() const { return teams_; }
  const std::vector<std::unique_ptr<Account>>& accounts() const { return accounts_; }

  Team* TeamForKey(std::string_view api_key) const;
  Team* FindTeam(std::string_view team_id) const;
  Account* FindAccount(std::string_view account_id) const;

  // Id sequences; message ids and chat message ids share one sequence, as upstream's do.
  int64_t NextMessageIds(int64_t count) { return next_message_id_.fetch_add(count); }
  int64_t NextListId() { return next_list_id_.fetch_add(1); }
  int64_t NextMediaId() { return next_media_id_.fetch_add(1); }
  uint64_t NextEventSequence() { return next_event_.fetch_add(1); }
  // Custom list ids handed out from now on are at least `next` (after seeding exact ids).
  void SetNextListIdAtLeast(int64_t next);
  // Continues every id sequence after `previous`'s, so a world rebuilt by a reset never reuses
  // a message, list or media id or a webhook idempotency key of the world it replaces.
  void ContinueSequencesFrom(const World& previous);

  ActiveAccounts& active() { return active_; }

 private:
  const uint64_t seed_;
  std::vector<std::unique_ptr<Team>> teams_;
  std::vector<std::unique_ptr<Account>> accounts_;
  std::map<std::string, uint32_t, std::less<>> team_by_key_;
  std::map<std::string, uint32_t, std::less<>> team_by_id_;
  std::map<std::string, uint32_t, std::less<>> account_by_id_;
  std::atomic<int64_t> next_message_id_{1'000'000};
  std::atomic<int64_t> next_list_id_{1'000};
  std::atomic<int64_t> next_media_id_{5'000'000'000};
  std::atomic<uint64_t> next_event_{1};
  ActiveAccounts active_;
};

// Deterministic pseudo-randomness: the same inputs give the same value, so a run with the same
// seed and the same requests behaves the same.
uint64_t Mix64(uint64_t x);
uint64_t HashValues(std::initializer_list<uint64_t> values);
// Uniform in [0, 1) from a hash.
double UnitInterval(uint64_t hash);

}  // namespace herald::upstream_sim
