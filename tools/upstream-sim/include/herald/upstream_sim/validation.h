// Request validation as the upstream's API reference states it, without any
// state: bodies are parsed and checked here; checks that need the account (media ids exist and
// are unused, lists and fans exist) happen where the account is locked.
//
// Errors carry the HTTP status and a machine code, rendered as {"error": …, "code": …}:
// malformed JSON is 400 `invalid_json`; every rule violation is 422.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <absl/time/time.h>

namespace herald::upstream_sim {

struct ApiError {
  int status = 422;
  std::string code;
  std::string message;
};

ApiError Unprocessable(std::string_view code, std::string_view message);

// A value or the error that prevented it.
template <typename T>
class ApiResult {
 public:
  ApiResult(T value) : v_(std::move(value)) {}         // NOLINT: implicit, like StatusOr
  ApiResult(ApiError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  const T& value() const& { return std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const ApiError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, ApiError> v_;
};

// Price limits in cents: 0 (free) or 3..200 dollars.
inline constexpr int64_t kMinPriceCents = 300;
inline constexpr int64_t kMaxPriceCents = 20'000;
inline constexpr size_t kMaxListNameChars = 64;

// The body of POST (send) or PUT (update) /api/{account}/mass-messaging. Absent optional fields
// mean "not given" (on update: unchanged).
struct MassMessageRequest {
  std::string text;
  std::optional<int64_t> price_cents;
  std::optional<std::vector<std::string>> user_lists;
  std::optional<std::vector<std::string>> user_ids;
  std::optional<std::vector<std::string>> excluded_lists;
  std::optional<std::vector<std::string>> media_files;  // "ofapi_media_…" or numeric vault ids
  std::optional<std::vector<std::string>> previews;
  std::optional<bool> locked_text;
  // Set and non-null: send at this time. A time in the past sends at once.
  std::optional<absl::Time> scheduled_date;
  bool save_for_later = false;
  std::optional<std::string> giphy_id;
};

// Parses and checks one send (`update` false) or update body: text required; price a number
// (or numeric string) of dollars with at most two decimals, 0 or 3..200; list and id arrays of
// strings or integers; previews a subset of mediaFiles; a priced message needs mediaFiles; a
// send names recipients (userLists or userIds); blockBannedWords screening.
ApiResult<MassMessageRequest> ParseMassMessageBody(std::string_view body, bool update);

// The rules that tie fields together, for a message as it will be after an update too:
// price range, price > 0 needs media, previews within media, no duplicate media.
std::optional<ApiError> CheckMessageContent(int64_t price_cents,
                                            const std::vector<std::string>& media_files,
                                            const std::vector<std::string>& previews);

// POST /user-lists {"name": "..."}: 1..64 characters (code points).
ApiResult<std::string> ParseCreateListBody(std::string_view body);

// PUT /user-lists/{id} {"name": "...", "isPinnedToFeed": bool}: the name as for create;
// isPinnedToFeed optional (absent or null: unchanged), otherwise 422 `invalid_pinned_to_feed`.
struct UpdateListRequest {
  std::string name;
  std::optional<bool> pinned_to_feed;
};
ApiResult<UpdateListRequest> ParseUpdateListBody(std::string_view body);

// POST /user-lists/{id}/users {"ids": [...]}: 1..max_ids positive integer ids (numbers or
// numeric strings). More than `max_ids` is 422 `too_many_ids`.
ApiResult<std::vector<uint64_t>> ParseAddUsersBody(std::string_view body, int max_ids);

// A query parameter that must be an integer in [min, max]; `fallback` when absent.
ApiResult<int64_t> ParseIntParam(std::string_view name, std::optional<std::string_view> value,
                                 int64_t min, int64_t max, int64_t fallback);

// Words the blockBannedWords screening rejects (case-insensitive).
const std::vector<std::string>& BannedWords();

}  // namespace herald::upstream_sim
