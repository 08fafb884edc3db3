// Herald's own request and response types for the upstream's REST API.
//
// Field names follow Herald's conventions; the wire names are noted where they differ. Money is
// integer cents, parsed exactly (money.h). Numeric ids arrive as JSON numbers or strings and are
// int64 here; user-list ids are text because system lists are named ("fans", "following").
// Dates the upstream returns are kept as its text (ISO-8601 with offset); dates Herald sends
// are absl::Time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <herald/upstream/error.h>

namespace herald::upstream {

// ---------------------------------------------------------------------------------------------
// Limits and credits reported with a response.

// The JSON `_meta` envelope of a successful response.
struct BodyMeta {
  std::optional<int64_t> credits_used;                 // _meta._credits.used
  std::optional<int64_t> credits_balance;              // _meta._credits.balance
  std::string credits_note;                            // _meta._credits.note
  std::optional<bool> is_cached;                       // _meta._cache.is_cached
  std::optional<int64_t> rate_limit_minute;            // _meta._rate_limits.limit_minute
  std::optional<int64_t> rate_limit_remaining_minute;  // _meta._rate_limits.remaining_minute
};

// What one response said about limits and credits; every field is unset when not reported.
struct ResponseInfo {
  int http_status = 0;                                 // 0: no response was received
  std::optional<int64_t> rate_limit_minute;            // X-Rate-Limit-Limit-Minute
  std::optional<int64_t> rate_limit_remaining_minute;  // X-Rate-Limit-Remaining-Minute
  std::optional<int64_t> credits_used;                 // X-OFAPI-Credits-Used
  std::optional<int64_t> credits_balance;              // X-OFAPI-Credits-Balance
  std::optional<absl::Duration> retry_after;           // Retry-After, whole seconds
  std::optional<BodyMeta> meta;                        // present when the body had `_meta`

  // Header value, else the `_meta` value.
  std::optional<int64_t> RemainingPerMinute() const;
  std::optional<int64_t> CreditsBalance() const;
};

// The outcome of one typed call: the value or a classified error (error.h), and what the
// upstream reported about limits and credits, which is filled in on failures too (a 429 carries
// its headers).
template <typename T>
struct Result {
  absl::StatusOr<T> value;
  ResponseInfo info;

  bool ok() const { return value.ok(); }
  const absl::Status& status() const { return value.status(); }
  // The failure's classification; nullopt when ok().
  std::optional<UpstreamError> error() const { return GetUpstreamError(value.status()); }
};

// ---------------------------------------------------------------------------------------------
// Requests.

// POST /api/{account}/mass-messaging. At least one of user_lists and user_ids is needed.
struct MassMessage {
  std::string text;                         // required; HTML allowed
  std::vector<std::string> user_lists;      // userLists: system names or custom list ids
  std::vector<int64_t> user_ids;            // userIds: individual fans
  std::vector<std::string> excluded_lists;  // excludedLists
  int64_t price_cents = 0;                  // price: 0 (free) or 300..20000
  std::vector<std::string> media_files;     // mediaFiles: ofapi_media_… or vault media ids
  std::vector<std::string> previews;        // free previews; each must be in media_files
  bool locked_text = false;                 // lockedText
  std::optional<absl::Time> scheduled_at;   // scheduledDate; unset: send now
  bool save_for_later = false;              // saveForLater
};

// PUT /api/{account}/mass-messaging/{id}. Unset fields are not sent.
struct MassMessageUpdate {
  std::string text;  // required by the upstream on every update
  std::optional<std::vector<std::string>> user_lists;
  std::optional<std::vector<int64_t>> user_ids;
  std::optional<int64_t> price_cents;
  std::optional<std::vector<std::string>> media_files;
  std::optional<std::vector<std::string>> previews;
  std::optional<bool> locked_text;
  std::optional<absl::Time> scheduled_at;
};

// Query of the mass-message overview and the engagement mass-message list. `end` is also the
// pagination cursor: the next page ends where the previous one's oldest item was.
struct DateRangeQuery {
  std::optional<absl::Time> start;  // startDate, sent as "YYYY-MM-DD HH:MM:SS" UTC
  std::optional<absl::Time> end;    // endDate, must be after start
  std::optional<int> limit;         // upstream default 10
  std::string query;                // text filter; empty: none
};

// GET …/engagement/messages/mass-messages/chart.
struct ChartQuery {
  std::optional<absl::Time> start;  // startDate; the upstream's default period when absent
  std::optional<absl::Time> end;    // endDate, after start; now when absent
  std::optional<bool> with_total;   // withTotal (upstream default true)
};

struct UserListsQuery {
  std::optional<int> limit;   // 10..50
  std::optional<int> offset;  // >= 0
  bool queue_only = false;    // view=queue: only lists usable for mass messaging
};

struct PageQuery {
  std::optional<int> limit;   // 1..100, upstream default 10
  std::optional<int> offset;  // >= 0
};

struct BuyersQuery {
  std::optional<int> limit;   // upstream default 10
  std::optional<int> offset;  // upstream default 0
  std::string marker;         // from the previous page; empty on the first
};

// A file uploaded in the request body (multipart part `file`).
struct MediaFile {
  std::string file_name;                                  // e.g. "teaser.mp4"
  std::string content_type = "application/octet-stream";  // e.g. "video/mp4"; no control chars
  std::string data;                                       // the bytes
};

// ---------------------------------------------------------------------------------------------
// Responses.

// A mass message in the queue: the data of send, update and list-queue.
struct QueueItem {
  int64_t id = 0;
  std::string date;
  bool is_ready = false;
  bool is_done = false;  // true once pending reaches 0
  bool is_canceled = false;
  bool has_error = false;
  int64_t pending = 0;  // recipients not yet delivered
  int64_t total = 0;    // recipients targeted
  bool can_unsend = false;
  int64_t unsend_seconds = 0;
};

// One mass message in detail: data.queue of get-one and unsend/delete.
struct QueueDetail {
  int64_t id = 0;
  std::string date;
  std::string text;
  std::string text_cropped;
  std::string giphy_id;
  bool is_free = false;
  int64_t sent_count = 0;
  int64_t viewed_count = 0;
  bool can_unsend = false;
  int64_t unsend_seconds = 0;
  bool is_canceled = false;
  bool has_error = false;
};

struct QueueDetailResult {
  bool success = false;  // data.success
  QueueDetail queue;     // data.queue
};

// An item of the mass-message overview and of the engagement mass-message list.
struct MassMessageStats {
  int64_t id = 0;
  std::string date;
  std::string text;
  std::string raw_text;
  std::string response_type;
  int64_t sent_count = 0;
  int64_t viewed_count = 0;
  bool is_free = false;
  bool is_canceled = false;
  bool can_unsend = false;
  int64_t unsend_seconds = 0;
  int64_t media_count = 0;
  // Not part of the documented item; read when the upstream sends them.
  std::optional<int64_t> price_cents;
  std::optional<int64_t> purchased_count;
  std::optional<int64_t> revenue_cents;  // totalRevenueGenerated
};

struct MassMessageStatsPage {
  std::vector<MassMessageStats> items;
  bool has_more = false;
  std::optional<std::string> next_page;  // _pagination.next_page as sent; see Api::Next…()
};

// POST /api/{account}/media/upload (a flat object, no `data` envelope).
struct UploadedMedia {
  std::string prefixed_id;  // "ofapi_media_…"; single use
  std::string file_name;
  std::string source_url;   // sourceUrl
  std::string polling_url;  // asynchronous uploads only (HTTP 202)
};

// A fan, as listed in a user list or among a message's buyers.
struct Fan {
  int64_t id = 0;
  std::string name;
  std::string username;
};

// GET /api/{account}/media/uploads/{prefixed_id}/status (a flat object, free of credits).
struct UploadStatus {
  std::string prefixed_id;
  std::string status;                  // "pending", "processing", "completed" or "failed"
  int64_t credits_used = 0;            // completed
  std::optional<UploadedMedia> media;  // completed
  std::string error;                   // failed
};

// Mass messages sent and purchases per day (UTC dates "YYYY-MM-DD"), with the period's totals
// and their change against the period before when asked for.
struct MassMessageChart {
  struct Day {
    std::string date;
    int64_t count = 0;
  };
  struct Group {
    std::vector<Day> chart;
    std::optional<int64_t> total;
    std::optional<int64_t> delta;
  };
  Group messages;   // group_messages
  Group purchases;  // group_messages_purchases
};

struct UserList {
  std::string id;  // numeric ids as decimal text; system lists by name ("fans")
  std::string name;
  std::string type;  // "custom", or a system list type
  int64_t users_count = 0;
  int64_t posts_count = 0;
  bool can_add_users = false;
  bool can_delete = false;
  bool pinned_to_feed = false;  // isPinnedToFeed
  // The first members, as getting, updating or clearing one list returns them (empty in a
  // listing of lists); ListUserListUsers pages through all of them.
  std::vector<Fan> users;
};

// PUT /api/{account}/user-lists/{list}: the upstream requires the name.
struct UserListUpdate {
  std::string name;                    // 1 to 64 characters
  std::optional<bool> pinned_to_feed;  // isPinnedToFeed; unchanged when absent
};

// DELETE /api/{account}/user-lists/{list}/users/{user}: the list after the removal, and its
// state for the fan removed (userState).
struct RemovedListUser {
  UserList list;
  bool has_user = false;
  bool can_add_user = false;
  std::string cannot_add_user_reason;
};

// The answer to adding users to a list: for each key the upstream returns (a list id), the
// numeric user ids it reports.
struct AddUsersResult {
  std::vector<std::pair<std::string, std::vector<int64_t>>> users_by_key;
};

struct UserListUsersPage {
  std::vector<Fan> users;  // data.list
  bool has_more = false;
  std::optional<int64_t> next_offset;
};

// The best-selling message in a period (data.purchases of top-message).
struct TopMessage {
  int64_t id = 0;
  std::string date;
  std::string text;
  std::string raw_text;
  int64_t price_cents = 0;
  int64_t purchased_count = 0;
  int64_t sent_count = 0;
  int64_t viewed_count = 0;
  int64_t total_revenue_cents = 0;  // totalRevenueGenerated
  bool is_free = false;
  bool is_canceled = false;
  int64_t media_count = 0;
};

struct BuyersPage {
  std::vector<Fan> buyers;  // data.list
  bool has_more = false;
  std::string marker;                    // data.marker, for the next page
  std::optional<std::string> next_page;  // _pagination.next_page as sent; see Api::Next…()
};

// Every buyer, page after page.
struct AllBuyers {
  std::vector<Fan> buyers;
  bool complete = false;  // false: stopped at the page limit with more pages left
  int pages = 0;
};

// A team-level webhook (POST/PUT /api/webhooks), scoped to every account of the team.
struct WebhookSpec {
  std::string endpoint_url;
  std::vector<std::string> events;
  std::string signing_secret;  // the key of the Signature header's HMAC
};

struct Webhook {
  std::string id;  // "wh_…"
  std::string url;
  std::vector<std::string> events;
  bool enabled = false;
  bool has_signing_secret = false;
};

// An event a webhook can subscribe to (GET /api/webhooks/events).
struct WebhookCatalogueEntry {
  std::string value;  // "messages.sent", ...
  std::string description;
};

// One attempt to deliver an event to a webhook (GET /api/webhooks/{id}/deliveries, newest
// first); the attempts of one event share delivery_uuid.
struct WebhookDelivery {
  std::string id;
  std::string delivery_uuid;
  std::string event;
  std::string idempotency_key;
  std::optional<int64_t> status_code;  // none when the receiver never answered
  bool success = false;
  int64_t attempt = 0;
  std::string created_at;
  std::string redelivery_of;  // the delivery this one replays, if any
};

// A connected creator account (GET /api/accounts).
struct Account {
  std::string id;  // "acct_…"
  std::string onlyfans_username;
  std::string display_name;
  bool is_authenticated = false;
};

}  // namespace herald::upstream
