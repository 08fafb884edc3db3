// The simulated upstream's business rules, independent of HTTP: sending, updating and unsending
// mass messages, uploads, user lists. The REST layer parses, locks the account, calls these and
// renders the result; tests call them directly.
//
// Every function here requires the account's mutex to be held by the caller; each either
// changes nothing and returns an error, or applies all of its change.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/time/time.h>

#include <herald/upstream_sim/config.h>
#include <herald/upstream_sim/events.h>
#include <herald/upstream_sim/model.h>
#include <herald/upstream_sim/validation.h>

namespace herald::upstream_sim {

// System lists every account has, addressable by name in userLists / excludedLists and in the
// user-lists endpoints: fans (active subscribers), expired, recent (subscribed in the last 30
// days), rebill_on, rebill_off, and following, tagged, muted, friends, bookmarks (always empty
// in the simulator).
const std::vector<std::string>& SystemListNames();
bool IsSystemList(std::string_view name);
// Fan indexes of a system list, ascending.
std::vector<uint32_t> SystemListMembers(const Account& account, std::string_view name,
                                        absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);

// The union of `user_lists` and `user_ids` minus every member of `excluded_lists`, as
// ascending fan indexes. Unknown lists are 422 `invalid_user_list`, unknown fans 422
// `invalid_user_ids`.
ApiResult<std::vector<uint32_t>> ResolveRecipients(const Account& account,
                                                   const std::vector<std::string>& user_lists,
                                                   const std::vector<std::string>& user_ids,
                                                   const std::vector<std::string>& excluded_lists,
                                                   absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);

// Creates a mass message from a parsed send request. `ofapi_media_…` ids must belong to this
// account, be ready and unused (422 `media_not_found`, `media_not_ready`,
// `media_already_used`); they are consumed. Numeric media ids are vault media (reusable).
// The account is marked active so the delivery engine picks the queue up.
ApiResult<MassMessage*> SendMassMessage(World& world, Account& account,
                                        const MassMessageRequest& request, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);

// Applies an update to a queue that has not started (scheduled or saved for later); fields
// absent from `request` are kept. 404 `message_not_found`; 422 `cannot_update` once sending
// started or after cancellation.
ApiResult<MassMessage*> UpdateMassMessage(World& world, Account& account, int64_t message_id,
                                          const MassMessageRequest& request, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);

// Unsends (or deletes, if not started) a queue while `canUnsend` holds; an already canceled
// queue is returned as is. 404 `message_not_found`; 422 `cannot_unsend` after the window.
// Emits chat_queue.updated for the cancellation.
ApiResult<MassMessage*> UnsendMassMessage(World& world, Account& account, int64_t message_id,
                                          absl::Time now, const Behavior& behavior, EventSink& sink)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);

// Records an upload of `bytes` and returns it. Async uploads become ready after
// `behavior.async_upload_delay` (then the delivery engine emits media_uploads.completed, or
// media_uploads.failed when `failure` is set: the error the upload ends with).
Media& CreateUpload(World& world, Account& account, std::string_view file_name, int64_t bytes,
                    bool async, int64_t credits, absl::Time now, const Behavior& behavior,
                    std::string_view failure = "") ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);

// Credits an upload of `bytes` costs: `per_mb` per started decimal megabyte, at least one.
int64_t UploadCredits(int64_t bytes, int64_t per_mb);

UserList& CreateList(World& world, Account& account, std::string_view name, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);

// Adds fans to a custom list; returns the ids now in the list among those requested.
// 404 `list_not_found`; 422 `system_list` for system lists; 422 `invalid_ids` when an id is not
// a fan of the account (nothing is added then).
ApiResult<std::vector<uint64_t>> AddUsersToList(Account& account, std::string_view list_ref,
                                                const std::vector<uint64_t>& fan_ids)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);

// Edits of one custom list. Each is 404 `list_not_found` for an unknown (or non-numeric) list
// and 422 `system_list` for a system list, and changes nothing then.

// Renames the list and, when given, sets isPinnedToFeed.
ApiResult<UserList*> UpdateList(Account& account, std::string_view list_ref,
                                const UpdateListRequest& request)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);
// Deletes the list with its pins; sends and updates naming it afterwards are 422
// `invalid_user_list`, as for any unknown list. Queues already created keep their recipients.
std::optional<ApiError> DeleteList(Account& account, std::string_view list_ref)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);
// Removes every member (and every pin).
ApiResult<UserList*> ClearList(Account& account, std::string_view list_ref)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);
// Removes fan `user_ref` (and its pin); removing a fan that is not a member is a no-op. 404
// `user_not_found` when `user_ref` is not a fan id of the account.
ApiResult<UserList*> RemoveUserFromList(Account& account, std::string_view list_ref,
                                        std::string_view user_ref)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);

// Pins fan `user_ref` in list `list_ref` (a custom list id or a system list name); pinning a
// pinned fan is a no-op. 404 `list_not_found`, 404 `user_not_found` (not a fan of the account),
// 422 `user_not_in_list` (the fan is not a member; the system lists the simulator keeps empty,
// such as `friends`, accept any fan of the account).
std::optional<ApiError> PinUserInList(Account& account, std::string_view list_ref,
                                      std::string_view user_ref, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);
// Fan indexes pinned in list `list_ref`, most recently pinned first. 404 `list_not_found`.
ApiResult<std::vector<uint32_t>> PinnedUsers(const Account& account, std::string_view list_ref)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu);

}  // namespace herald::upstream_sim
