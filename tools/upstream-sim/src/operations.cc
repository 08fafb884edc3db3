#include <algorithm>

#include <herald/common/strings.h>
#include <herald/upstream_sim/operations.h>

namespace herald::upstream_sim {
namespace {

constexpr absl::Duration kRecentWindow = absl::Hours(24 * 30);

std::string CrockfordUpper(uint64_t hi, uint64_t lo, int length) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::string out(static_cast<size_t>(length), '0');
  for (int i = length - 1; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kAlphabet[lo & 31];
    lo = (lo >> 5) | (hi << 59);
    hi >>= 5;
  }
  return out;
}

bool LooksLikeVideo(std::string_view file_name) {
  const std::string lower = AsciiLower(file_name);
  for (std::string_view ext : {".mp4", ".mov", ".m4v", ".webm", ".avi", ".mkv"}) {
    if (lower.ends_with(ext)) return true;
  }
  return false;
}

// Marks the members of list `ref` in `marks`. False when the list does not exist.
bool MarkList(const Account& account, std::string_view ref, absl::Time now,
              std::vector<uint8_t>& marks) ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu) {
  if (IsSystemList(ref)) {
    for (uint32_t i : SystemListMembers(account, ref, now)) marks[i] = 1;
    return true;
  }
  auto id = ParseInt<int64_t>(ref);
  if (!id) return false;
  for (const UserList& list : account.lists) {
    if (list.id != *id) continue;
    for (uint32_t i : list.members) marks[i] = 1;
    return true;
  }
  return false;
}

// Resolves media refs to items; nothing is consumed. `self` is the message being updated (its
// own media may be kept).
ApiResult<std::vector<MediaItem>> ResolveMedia(Account& account,
                                               const std::vector<std::string>& refs, absl::Time now,
                                               int64_t self)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu) {
  std::vector<MediaItem> items;
  for (const std::string& ref : refs) {
    if (ref.starts_with("ofapi_media_")) {
      auto it = account.media.find(ref);
      if (it == account.media.end()) {
        return Unprocessable("media_not_found",
                             StrCat("Media ", ref, " was not uploaded to this account."));
      }
      const Media& media = it->second;
      if (media.ready_at > now) {
        return Unprocessable("media_not_ready", StrCat("Media ", ref, " is still processing."));
      }
      if (media.failed(now)) {
        return Unprocessable("media_failed", StrCat("Media ", ref, " failed: ", media.error));
      }
      if (media.used_by != 0 && media.used_by != self) {
        return Unprocessable(
            "media_already_used",
            StrCat("Media ", ref, " was already used; upload it again or use a vault id."));
      }
      items.push_back(MediaItem{ref, media.numeric_id, media.is_video});
      continue;
    }
    auto vault_id = ParseInt<int64_t>(ref);
    if (!vault_id || *vault_id <= 0) {
      return Unprocessable("invalid_media_files",
                           StrCat("Media ", ref, " is neither an ofapi_media id nor a vault id."));
    }
    items.push_back(MediaItem{ref, *vault_id, false});
  }
  return items;
}

void ConsumeMedia(Account& account, const std::vector<MediaItem>& items, int64_t message_id)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu) {
  for (const MediaItem& item : items) {
    auto it = account.media.find(item.ref);
    if (it != account.media.end()) it->second.used_by = message_id;
  }
}

std::shared_ptr<const MessageContent> MakeContent(std::string text, int64_t price_cents,
                                                  std::vector<MediaItem> media,
                                                  std::vector<std::string> previews,
                                                  bool locked_text, std::string giphy_id) {
  auto content = std::make_shared<MessageContent>();
  content->html = WrapHtml(text);
  content->text = std::move(text);
  content->price_cents = price_cents;
  content->media = std::move(media);
  content->previews = std::move(previews);
  content->locked_text = locked_text;
  content->giphy_id = std::move(giphy_id);
  return content;
}

}  // namespace

const std::vector<std::string>& SystemListNames() {
  static const auto* names =
      new std::vector<std::string>{"fans",      "expired", "recent", "rebill_on", "rebill_off",
                                   "following", "tagged",  "muted",  "friends",   "bookmarks"};
  return *names;
}

bool IsSystemList(std::string_view name) {
  const auto& names = SystemListNames();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::vector<uint32_t> SystemListMembers(const Account& account, std::string_view name,
                                        absl::Time now) {
  std::vector<uint32_t> out;
  const int64_t recent_since = absl::ToUnixSeconds(now - kRecentWindow);
  for (uint32_t i = 0; i < account.fans.size(); ++i) {
    const Fan& f = account.fans[i];
    bool member = false;
    if (name == "fans") {
      member = f.active();
    } else if (name == "expired") {
      member = !f.active();
    } else if (name == "recent") {
      member = f.active() && f.subscribed_at >= recent_since;
    } else if (name == "rebill_on") {
      member = f.active() && (f.flags & kFanRebillOn) != 0;
    } else if (name == "rebill_off") {
      member = f.active() && (f.flags & kFanRebillOn) == 0;
    }
    if (member) out.push_back(i);
  }
  return out;
}

ApiResult<std::vector<uint32_t>> ResolveRecipients(const Account& account,
                                                   const std::vector<std::string>& user_lists,
                                                   const std::vector<std::string>& user_ids,
                                                   const std::vector<std::string>& excluded_lists,
                                                   absl::Time now) {
  std::vector<uint8_t> marks(account.fans.size(), 0);
  for (const std::string& ref : user_lists) {
    if (!MarkList(account, ref, now, marks)) {
      return Unprocessable("invalid_user_list", StrCat("User list ", ref, " was not found."));
    }
  }
  for (const std::string& ref : user_ids) {
    auto id = ParseInt<int64_t>(ref);
    auto index = id && *id > 0 ? account.FindFan(static_cast<uint64_t>(*id)) : std::nullopt;
    if (!index) {
      return Unprocessable("invalid_user_ids",
                           StrCat("User ", ref, " is not a fan of this account."));
    }
    marks[*index] = 1;
  }
  if (!excluded_lists.empty()) {
    std::vector<uint8_t> excluded(account.fans.size(), 0);
    for (const std::string& ref : excluded_lists) {
      if (!MarkList(account, ref, now, excluded)) {
        return Unprocessable("invalid_user_list", StrCat("User list ", ref, " was not found."));
      }
    }
    for (size_t i = 0; i < marks.size(); ++i) marks[i] &= static_cast<uint8_t>(!excluded[i]);
  }
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < marks.size(); ++i) {
    if (marks[i]) out.push_back(i);
  }
  return out;
}

ApiResult<MassMessage*> SendMassMessage(World& world, Account& account,
                                        const MassMessageRequest& request, absl::Time now) {
  static const std::vector<std::string> kNone;
  auto recipients = ResolveRecipients(account, request.user_lists.value_or(kNone),
                                      request.user_ids.value_or(kNone),
                                      request.excluded_lists.value_or(kNone), now);
  if (!recipients.ok()) return recipients.error();
  auto media = ResolveMedia(account, request.media_files.value_or(kNone), now, 0);
  if (!media.ok()) return media.error();

  auto message = std::make_unique<MassMessage>();
  MassMessage& m = *message;
  m.recipients = std::move(recipients).value();
  const int64_t ids = 1 + static_cast<int64_t>(m.recipients.size());
  m.id = world.NextMessageIds(ids);
  m.first_chat_message_id = m.id + 1;
  m.created_at = account.NextMessageTime(now);
  m.start_at = m.created_at;
  if (request.scheduled_date && *request.scheduled_date > now) {
    m.scheduled = true;
    m.start_at = account.FreeStartTime(*request.scheduled_date, m.id);
  }
  m.save_for_later = request.save_for_later;
  m.user_lists = request.user_lists.value_or(kNone);
  m.user_ids = request.user_ids.value_or(kNone);
  m.excluded_lists = request.excluded_lists.value_or(kNone);
  ConsumeMedia(account, media.value(), m.id);
  m.content = MakeContent(request.text, request.price_cents.value_or(0), std::move(media).value(),
                          request.previews.value_or(kNone), request.locked_text.value_or(false),
                          request.giphy_id.value_or(""));
  MassMessage* out = message.get();
  account.messages.emplace(m.id, std::move(message));
  if (!out->save_for_later) {
    account.active_messages.push_back(out->id);
    world.active().Mark(account.identity().index);
  }
  return out;
}

ApiResult<MassMessage*> UpdateMassMessage(World& world, Account& account, int64_t message_id,
                                          const MassMessageRequest& request, absl::Time now) {
  MassMessage* m = account.FindMessage(message_id);
  if (m == nullptr) {
    return ApiError{404, "message_not_found", StrCat("Mass message ", message_id, " not found.")};
  }
  const bool started = !m->save_for_later && now >= m->start_at;
  if (m->canceled || started) {
    return Unprocessable("cannot_update",
                         "Only scheduled or saved mass messages that have not started can be "
                         "updated.");
  }
  const MessageContent& old = *m->content;
  const int64_t price = request.price_cents.value_or(old.price_cents);
  std::vector<std::string> old_refs;
  for (const MediaItem& item : old.media) old_refs.push_back(item.ref);
  const std::vector<std::string> refs = request.media_files.value_or(old_refs);
  const std::vector<std::string> previews = request.previews.value_or(old.previews);
  if (auto error = CheckMessageContent(price, refs, previews)) return *error;
  auto media = ResolveMedia(account, refs, now, m->id);
  if (!media.ok()) return media.error();

  std::optional<std::vector<uint32_t>> recipients;
  if (request.user_lists || request.user_ids) {
    const std::vector<std::string> lists = request.user_lists.value_or(m->user_lists);
    const std::vector<std::string> ids = request.user_ids.value_or(m->user_ids);
    if (lists.empty() && ids.empty()) {
      return Unprocessable("recipients_required", "Either userLists or userIds is required.");
    }
    auto resolved = ResolveRecipients(account, lists, ids, m->excluded_lists, now);
    if (!resolved.ok()) return resolved.error();
    recipients = std::move(resolved).value();
    m->user_lists = lists;
    m->user_ids = ids;
  }

  // Everything checked: apply.
  if (recipients) {
    m->recipients = std::move(*recipients);
    m->first_chat_message_id = world.NextMessageIds(static_cast<int64_t>(m->recipients.size()));
  }
  ConsumeMedia(account, media.value(), m->id);
  m->content = MakeContent(request.text, price, std::move(media).value(), previews,
                           request.locked_text.value_or(old.locked_text),
                           request.giphy_id.value_or(old.giphy_id));
  if (request.scheduled_date) {
    m->scheduled = *request.scheduled_date > now;
    m->start_at = account.FreeStartTime(std::max(*request.scheduled_date, now), m->id);
    if (m->save_for_later) {
      m->save_for_later = false;
      account.active_messages.push_back(m->id);
    }
    world.active().Mark(account.identity().index);
  }
  ++m->updates;
  return m;
}

ApiResult<MassMessage*> UnsendMassMessage(World& world, Account& account, int64_t message_id,
                                          absl::Time now, const Behavior& behavior,
                                          EventSink& sink) {
  MassMessage* m = account.FindMessage(message_id);
  if (m == nullptr) {
    return ApiError{404, "message_not_found", StrCat("Mass message ", message_id, " not found.")};
  }
  if (m->canceled) return m;
  const QueueStatus status = ComputeQueueStatus(*m, now, behavior.unsend_window);
  if (!status.can_unsend) {
    return Unprocessable("cannot_unsend", "The unsend window of this mass message has passed.");
  }
  m->canceled = true;
  m->canceled_at = now;
  // The delivery engine drops the queue and its pending purchases on its next pass.
  world.active().Mark(account.identity().index);
  if (sink.Wants(account.identity())) {
    WebhookEvent e;
    e.type = EventType::kChatQueueUpdated;
    e.account = account.shared_identity();
    e.at = now;
    e.seed = world.seed();
    e.sequence = world.NextEventSequence();
    e.queue_id = m->id;
    e.queue = ComputeQueueStatus(*m, now, behavior.unsend_window);
    sink.Emit(std::move(e));
  }
  return m;
}

int64_t UploadCredits(int64_t bytes, int64_t per_mb) {
  const int64_t megabytes = std::max<int64_t>(1, (bytes + 999'999) / 1'000'000);
  return megabytes * per_mb;
}

Media& CreateUpload(World& world, Account& account, std::string_view file_name, int64_t bytes,
                    bool async, int64_t credits, absl::Time now, const Behavior& behavior,
                    std::string_view failure) {
  Media media;
  media.numeric_id = world.NextMediaId();
  const uint64_t h = HashValues({world.seed(), static_cast<uint64_t>(media.numeric_id), 0x3ed1a});
  // ULID-like: 10 characters of time, 16 of randomness.
  const uint64_t millis = static_cast<uint64_t>(absl::ToUnixMillis(now));
  media.prefixed_id =
      StrCat("ofapi_media_", CrockfordUpper(0, millis, 10), CrockfordUpper(h >> 48, Mix64(h), 16));
  media.file_name =
      file_name.empty() ? StrCat("upload_", media.numeric_id) : std::string(file_name);
  media.bytes = bytes;
  media.credits = credits;
  media.is_video = LooksLikeVideo(media.file_name);
  media.async = async;
  media.created_at = now;
  media.ready_at = async ? now + behavior.async_upload_delay : now;
  media.error = std::string(failure);
  if (async) {
    account.pending_uploads.push_back(media.prefixed_id);
    world.active().Mark(account.identity().index);
  }
  auto [it, inserted] = account.media.emplace(media.prefixed_id, std::move(media));
  return it->second;
}

UserList& CreateList(World& world, Account& account, std::string_view name, absl::Time now) {
  UserList list;
  list.id = world.NextListId();
  list.name = std::string(name);
  list.created_at = now;
  account.lists.push_back(std::move(list));
  return account.lists.back();
}

ApiResult<std::vector<uint64_t>> AddUsersToList(Account& account, std::string_view list_ref,
                                                const std::vector<uint64_t>& fan_ids) {
  if (IsSystemList(list_ref)) {
    return Unprocessable("system_list", StrCat("Users cannot be added to the ", list_ref,
                                               " list; it is managed by the platform."));
  }
  auto id = ParseInt<int64_t>(list_ref);
  UserList* list = id ? account.FindList(*id) : nullptr;
  if (list == nullptr) {
    return ApiError{404, "list_not_found", StrCat("User list ", list_ref, " not found.")};
  }
  std::vector<uint32_t> indexes;
  for (uint64_t fan_id : fan_ids) {
    auto index = account.FindFan(fan_id);
    if (!index) {
      return Unprocessable("invalid_ids",
                           StrCat("User ", fan_id, " is not a fan of this account."));
    }
    indexes.push_back(*index);
  }
  std::sort(indexes.begin(), indexes.end());
  indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
  std::vector<uint32_t> merged;
  merged.reserve(list->members.size() + indexes.size());
  std::set_union(list->members.begin(), list->members.end(), indexes.begin(), indexes.end(),
                 std::back_inserter(merged));
  list->members = std::move(merged);
  std::vector<uint64_t> out;
  for (uint32_t index : indexes) out.push_back(account.fans[index].id);
  return out;
}

namespace {

// The custom list `list_ref` for an edit: 422 `system_list` for system lists, 404
// `list_not_found` for unknown ones.
ApiResult<UserList*> EditableList(Account& account, std::string_view list_ref)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu) {
  if (IsSystemList(list_ref)) {
    return Unprocessable("system_list", StrCat("The ", list_ref,
                                               " list is managed by the platform and cannot be "
                                               "changed."));
  }
  auto id = ParseInt<int64_t>(list_ref);
  UserList* list = id ? account.FindList(*id) : nullptr;
  if (list == nullptr) {
    return ApiError{404, "list_not_found", StrCat("User list ", list_ref, " not found.")};
  }
  return list;
}

ApiResult<uint32_t> FanIndex(const Account& account, std::string_view user_ref)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(account.mu) {
  auto id = ParseInt<int64_t>(user_ref);
  auto index = id && *id > 0 ? account.FindFan(static_cast<uint64_t>(*id)) : std::nullopt;
  if (!index) {
    return ApiError{404, "user_not_found",
                    StrCat("User ", user_ref, " is not a fan of this account.")};
  }
  return *index;
}

void Erase(std::vector<uint32_t>& v, uint32_t value) {
  v.erase(std::remove(v.begin(), v.end(), value), v.end());
}

// System lists whose membership the simulator does not model (always empty).
bool IsUnmodelledSystemList(std::string_view name) {
  return name == "following" || name == "tagged" || name == "muted" || name == "friends" ||
         name == "bookmarks";
}

}  // namespace

ApiResult<UserList*> UpdateList(Account& account, std::string_view list_ref,
                                const UpdateListRequest& request) {
  auto list = EditableList(account, list_ref);
  if (!list.ok()) return list;
  list.value()->name = request.name;
  if (request.pinned_to_feed) list.value()->pinned_to_feed = *request.pinned_to_feed;
  return list;
}

std::optional<ApiError> DeleteList(Account& account, std::string_view list_ref) {
  auto list = EditableList(account, list_ref);
  if (!list.ok()) return list.error();
  const int64_t id = list.value()->id;
  std::erase_if(account.lists, [id](const UserList& l) { return l.id == id; });
  return std::nullopt;
}

ApiResult<UserList*> ClearList(Account& account, std::string_view list_ref) {
  auto list = EditableList(account, list_ref);
  if (!list.ok()) return list;
  list.value()->members.clear();
  list.value()->pinned.clear();
  return list;
}

ApiResult<UserList*> RemoveUserFromList(Account& account, std::string_view list_ref,
                                        std::string_view user_ref) {
  auto list = EditableList(account, list_ref);
  if (!list.ok()) return list;
  auto index = FanIndex(account, user_ref);
  if (!index.ok()) return index.error();
  Erase(list.value()->members, index.value());
  Erase(list.value()->pinned, index.value());
  return list;
}

std::optional<ApiError> PinUserInList(Account& account, std::string_view list_ref,
                                      std::string_view user_ref, absl::Time now) {
  std::vector<uint32_t>* pins = nullptr;
  std::vector<uint32_t> system_members;
  const std::vector<uint32_t>* members = nullptr;
  if (IsSystemList(list_ref)) {
    if (!IsUnmodelledSystemList(list_ref)) {
      system_members = SystemListMembers(account, list_ref, now);
      members = &system_members;
    }
  } else {
    auto id = ParseInt<int64_t>(list_ref);
    UserList* list = id ? account.FindList(*id) : nullptr;
    if (list == nullptr) {
      return ApiError{404, "list_not_found", StrCat("User list ", list_ref, " not found.")};
    }
    members = &list->members;
    pins = &list->pinned;
  }
  auto index = FanIndex(account, user_ref);
  if (!index.ok()) return index.error();
  if (members != nullptr && !std::binary_search(members->begin(), members->end(), index.value())) {
    return Unprocessable("user_not_in_list",
                         StrCat("User ", user_ref, " is not in the list ", list_ref, "."));
  }
  if (pins == nullptr) pins = &account.system_list_pins[std::string(list_ref)];
  if (std::find(pins->begin(), pins->end(), index.value()) == pins->end()) {
    pins->push_back(index.value());
  }
  return std::nullopt;
}

ApiResult<std::vector<uint32_t>> PinnedUsers(const Account& account, std::string_view list_ref) {
  const std::vector<uint32_t>* pins = nullptr;
  if (IsSystemList(list_ref)) {
    auto it = account.system_list_pins.find(list_ref);
    if (it != account.system_list_pins.end()) pins = &it->second;
  } else {
    auto id = ParseInt<int64_t>(list_ref);
    const UserList* list = nullptr;
    for (const UserList& l : account.lists) {
      if (id && l.id == *id) list = &l;
    }
    if (list == nullptr) {
      return ApiError{404, "list_not_found", StrCat("User list ", list_ref, " not found.")};
    }
    pins = &list->pinned;
  }
  if (pins == nullptr) return std::vector<uint32_t>{};
  return std::vector<uint32_t>(pins->rbegin(), pins->rend());
}

}  // namespace herald::upstream_sim
