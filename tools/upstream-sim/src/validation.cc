#include <algorithm>
#include <cctype>
#include <set>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <herald/common/strings.h>
#include <herald/upstream_sim/money.h>
#include <herald/upstream_sim/time_format.h>
#include <herald/upstream_sim/validation.h>

namespace herald::upstream_sim {
namespace {

namespace json = boost::json;

std::string_view Str(const json::string& s) { return {s.data(), s.size()}; }

ApiResult<json::object> ParseObject(std::string_view body) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec) {
    return ApiError{400, "invalid_json", StrCat("Malformed JSON body: ", ec.message())};
  }
  if (!root.is_object()) return Unprocessable("invalid_body", "The body must be a JSON object.");
  return std::move(root.as_object());
}

// An array of strings or integers, as strings. nullopt when the value has another shape.
std::optional<std::vector<std::string>> StringList(const json::value& v) {
  if (!v.is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const json::value& item : v.as_array()) {
    if (item.is_string()) {
      if (item.as_string().empty()) return std::nullopt;
      out.emplace_back(Str(item.as_string()));
    } else if (item.is_int64()) {
      out.push_back(StrCat(item.as_int64()));
    } else if (item.is_uint64()) {
      out.push_back(StrCat(item.as_uint64()));
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

ApiError Unprocessable(std::string_view code, std::string_view message) {
  return ApiError{422, std::string(code), std::string(message)};
}

const std::vector<std::string>& BannedWords() {
  static const auto* words =
      new std::vector<std::string>{"paypal", "cashapp", "venmo", "snapchat", "whatsapp"};
  return *words;
}

ApiResult<MassMessageRequest> ParseMassMessageBody(std::string_view body, bool update) {
  auto parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.error();
  const json::object& o = parsed.value();
  MassMessageRequest r;

  const json::value* text = o.if_contains("text");
  if (text == nullptr || !text->is_string() || Trim(Str(text->as_string())).empty()) {
    return Unprocessable("text_required", "The text field is required.");
  }
  r.text = std::string(Str(text->as_string()));

  if (const json::value* price = o.if_contains("price"); price && !price->is_null()) {
    std::optional<int64_t> cents;
    if (price->is_int64()) {
      if (price->as_int64() >= -1'000'000 && price->as_int64() <= 1'000'000) {
        cents = price->as_int64() * 100;
      }
    } else if (price->is_uint64()) {
      cents = std::nullopt;
    } else if (price->is_double()) {
      cents = CentsFromDouble(price->as_double());
    } else if (price->is_string()) {
      cents = ParseDollarText(Str(price->as_string()));
    }
    if (!cents) {
      return Unprocessable("invalid_price",
                           "The price must be a number of dollars with at most 2 decimals.");
    }
    r.price_cents = *cents;
  }

  struct ListField {
    const char* key;
    std::optional<std::vector<std::string>>* out;
    const char* code;
  };
  for (const ListField& f :
       {ListField{"userLists", &r.user_lists, "invalid_user_lists"},
        ListField{"userIds", &r.user_ids, "invalid_user_ids"},
        ListField{"excludedLists", &r.excluded_lists, "invalid_excluded_lists"},
        ListField{"mediaFiles", &r.media_files, "invalid_media_files"},
        ListField{"previews", &r.previews, "invalid_previews"}}) {
    const json::value* v = o.if_contains(f.key);
    if (v == nullptr || v->is_null()) continue;
    auto list = StringList(*v);
    if (!list) {
      return Unprocessable(f.code, StrCat("The ", f.key, " field must be an array of ids."));
    }
    *f.out = std::move(*list);
  }
  if (update && r.excluded_lists) {
    return Unprocessable("invalid_excluded_lists", "excludedLists cannot be changed by an update.");
  }

  if (const json::value* v = o.if_contains("lockedText"); v && !v->is_null()) {
    if (!v->is_bool()) return Unprocessable("invalid_locked_text", "lockedText must be a boolean.");
    r.locked_text = v->as_bool();
  }
  if (const json::value* v = o.if_contains("saveForLater"); v && !v->is_null()) {
    if (!v->is_bool()) {
      return Unprocessable("invalid_save_for_later", "saveForLater must be a boolean.");
    }
    if (update) {
      return Unprocessable("invalid_save_for_later", "saveForLater cannot be set by an update.");
    }
    r.save_for_later = v->as_bool();
  }
  if (const json::value* v = o.if_contains("scheduledDate"); v && !v->is_null()) {
    auto t = v->is_string() ? ParseClientTime(Str(v->as_string())) : std::nullopt;
    if (!t) {
      return Unprocessable("invalid_scheduled_date",
                           "scheduledDate must be a UTC date such as 2025-01-01T00:00:00.000Z.");
    }
    r.scheduled_date = *t;
  }
  if (const json::value* v = o.if_contains("giphyId"); v && !v->is_null()) {
    if (!v->is_string()) return Unprocessable("invalid_giphy_id", "giphyId must be a string.");
    r.giphy_id = std::string(Str(v->as_string()));
  }
  if (const json::value* v = o.if_contains("blockBannedWords"); v && !v->is_null()) {
    const std::string_view mode = v->is_string() ? Str(v->as_string()) : "";
    if (mode != "strict_ban" && mode != "risky" && mode != "replace_soften") {
      return Unprocessable("invalid_block_banned_words",
                           "blockBannedWords must be strict_ban, risky or replace_soften.");
    }
    const std::string lower = AsciiLower(r.text);
    std::vector<std::string> hits;
    for (const std::string& word : BannedWords()) {
      if (lower.find(word) != std::string::npos) hits.push_back(word);
    }
    if (!hits.empty()) {
      if (mode == "replace_soften") {
        for (const std::string& word : hits) {
          for (size_t at = AsciiLower(r.text).find(word); at != std::string::npos;
               at = AsciiLower(r.text).find(word, at + 1)) {
            r.text.replace(at, word.size(), std::string(word.size(), '*'));
          }
        }
      } else {
        return Unprocessable("banned_words",
                             StrCat("The text contains banned words: ", StrJoin(hits, ", "), "."));
      }
    }
  }

  if (!update) {
    const bool has_lists = r.user_lists && !r.user_lists->empty();
    const bool has_ids = r.user_ids && !r.user_ids->empty();
    if (!has_lists && !has_ids) {
      return Unprocessable("recipients_required", "Either userLists or userIds is required.");
    }
    if (auto error = CheckMessageContent(r.price_cents.value_or(0),
                                         r.media_files.value_or(std::vector<std::string>{}),
                                         r.previews.value_or(std::vector<std::string>{}))) {
      return *error;
    }
  } else if (r.price_cents && (*r.price_cents != 0 && (*r.price_cents < kMinPriceCents ||
                                                       *r.price_cents > kMaxPriceCents))) {
    return Unprocessable("invalid_price", "The price must be 0 or between 3 and 200.");
  }
  return r;
}

std::optional<ApiError> CheckMessageContent(int64_t price_cents,
                                            const std::vector<std::string>& media_files,
                                            const std::vector<std::string>& previews) {
  if (price_cents != 0 && (price_cents < kMinPriceCents || price_cents > kMaxPriceCents)) {
    return Unprocessable("invalid_price", "The price must be 0 or between 3 and 200.");
  }
  if (price_cents > 0 && media_files.empty()) {
    return Unprocessable("media_required", "A priced message needs at least one media file.");
  }
  std::set<std::string_view> media(media_files.begin(), media_files.end());
  if (media.size() != media_files.size()) {
    return Unprocessable("invalid_media_files", "mediaFiles lists the same media twice.");
  }
  for (const std::string& preview : previews) {
    if (!media.contains(preview)) {
      return Unprocessable("invalid_previews",
                           StrCat("Preview ", preview, " is not one of the mediaFiles."));
    }
  }
  return std::nullopt;
}

namespace {

// The `name` of a list body: required, 1..64 characters (code points), not only blanks.
ApiResult<std::string> ListName(const json::object& body) {
  const json::value* name = body.if_contains("name");
  if (name == nullptr || !name->is_string() || Trim(Str(name->as_string())).empty()) {
    return Unprocessable("name_required", "The name field is required.");
  }
  const std::string_view value = Str(name->as_string());
  if (Utf8Length(value) > kMaxListNameChars) {
    return Unprocessable("invalid_name", "The name may not be greater than 64 characters.");
  }
  return std::string(value);
}

}  // namespace

ApiResult<std::string> ParseCreateListBody(std::string_view body) {
  auto parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.error();
  return ListName(parsed.value());
}

ApiResult<UpdateListRequest> ParseUpdateListBody(std::string_view body) {
  auto parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.error();
  auto name = ListName(parsed.value());
  if (!name.ok()) return name.error();
  UpdateListRequest request;
  request.name = std::move(name).value();
  if (const json::value* pinned = parsed.value().if_contains("isPinnedToFeed");
      pinned != nullptr && !pinned->is_null()) {
    if (!pinned->is_bool()) {
      return Unprocessable("invalid_pinned_to_feed", "isPinnedToFeed must be a boolean.");
    }
    request.pinned_to_feed = pinned->as_bool();
  }
  return request;
}

ApiResult<std::vector<uint64_t>> ParseAddUsersBody(std::string_view body, int max_ids) {
  auto parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.error();
  const json::value* ids = parsed.value().if_contains("ids");
  if (ids == nullptr || !ids->is_array() || ids->as_array().empty()) {
    return Unprocessable("ids_required", "The ids field is required (a non-empty array).");
  }
  if (ids->as_array().size() > static_cast<size_t>(max_ids)) {
    return Unprocessable("too_many_ids",
                         StrCat("At most ", max_ids, " ids can be added in one call."));
  }
  std::vector<uint64_t> out;
  for (const json::value& v : ids->as_array()) {
    std::optional<int64_t> id;
    if (v.is_int64()) id = v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
      id = static_cast<int64_t>(v.as_uint64());
    }
    if (v.is_string()) id = ParseInt<int64_t>(Str(v.as_string()));
    if (!id || *id <= 0) return Unprocessable("invalid_ids", "ids must be positive user ids.");
    out.push_back(static_cast<uint64_t>(*id));
  }
  return out;
}

ApiResult<int64_t> ParseIntParam(std::string_view name, std::optional<std::string_view> value,
                                 int64_t min, int64_t max, int64_t fallback) {
  if (!value) return fallback;
  auto n = ParseInt<int64_t>(*value);
  if (!n || *n < min || *n > max) {
    return Unprocessable(
        StrCat("invalid_", name),
        StrCat("The ", name, " must be an integer between ", min, " and ", max, "."));
  }
  return *n;
}

}  // namespace herald::upstream_sim
