#include "convert.h"

#include <algorithm>
#include <set>
#include <unordered_set>

#include <absl/strings/ascii.h>
#include <absl/strings/escaping.h>
#include <absl/strings/match.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/time_util.h>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/queue/job.h>
#include <herald/store/crypto.h>
#include <herald/webhooks/endpoint.h>

#include "names.h"
#include "paging.h"

namespace herald::api {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxTextCharacters = 10000;
constexpr int kMaxMedia = 20;
constexpr int kMaxLists = 50;
constexpr int kMaxFanIds = 10000;
// A send time this little in the past is taken as "now": the caller's clock may be a little
// behind ours. More than that is a mistake, refused rather than sent at once.
constexpr absl::Duration kPastTolerance = absl::Seconds(5);
constexpr absl::Duration kMaxGrace = absl::Hours(24);
constexpr absl::Duration kMaxUpstreamLead = absl::Hours(7 * 24);

int64_t ToMillis(const google::protobuf::Timestamp& t) {
  return TimeUtil::TimestampToMilliseconds(t);
}

absl::Status Invalid(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(field, ": ", what));
}

v1::Campaign::State ToProto(campaign::CampaignState s) {
  using S = campaign::CampaignState;
  switch (s) {
    case S::kDraft:
      return v1::Campaign::DRAFT;
    case S::kScheduled:
      return v1::Campaign::SCHEDULED;
    case S::kDispatching:
      return v1::Campaign::DISPATCHING;
    case S::kSending:
      return v1::Campaign::SENDING;
    case S::kPaused:
      return v1::Campaign::PAUSED;
    case S::kCompleted:
      return v1::Campaign::COMPLETED;
    case S::kPartiallyFailed:
      return v1::Campaign::PARTIALLY_FAILED;
    case S::kFailed:
      return v1::Campaign::FAILED;
    case S::kCancelled:
      return v1::Campaign::CANCELLED;
    case S::kMissed:
      return v1::Campaign::MISSED;
  }
  return v1::Campaign::STATE_UNSPECIFIED;
}

}  // namespace

absl::StatusOr<std::string> ChildOfTenant(std::string_view field, std::string_view name,
                                          std::string_view collection, std::string_view tenant) {
  absl::StatusOr<std::string> id = OwnId(tenant, field, name, collection);
  // The field's path first: inside a request, it says which reference was not found.
  if (absl::IsNotFound(id.status())) {
    return absl::NotFoundError(StrCat(field, ": ", id.status().message()));
  }
  return id;
}

absl::Status ValidateListName(std::string_view field, std::string_view name) {
  if (name.empty() || Utf8Length(name) > 64) return Invalid(field, "1-64 characters");
  if (std::all_of(name.begin(), name.end(),
                  [](char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); })) {
    return Invalid(field, "must not be blank");
  }
  if (HasControlCharacter(name)) return Invalid(field, "must not contain control characters");
  return absl::OkStatus();
}

v1::Delivery::State ToProto(store::DeliveryState s) {
  using S = store::DeliveryState;
  switch (s) {
    case S::kPending:
      return v1::Delivery::PENDING;
    case S::kUploadingMedia:
      return v1::Delivery::UPLOADING_MEDIA;
    case S::kBuildingList:
      return v1::Delivery::BUILDING_LIST;
    case S::kSending:
      return v1::Delivery::SENDING;
    case S::kScheduledUpstream:
      return v1::Delivery::SCHEDULED_UPSTREAM;
    case S::kSent:
      return v1::Delivery::SENT;
    case S::kCompleted:
      return v1::Delivery::COMPLETED;
    case S::kFailed:
      return v1::Delivery::FAILED;
    case S::kCancelled:
      return v1::Delivery::CANCELLED;
  }
  return v1::Delivery::STATE_UNSPECIFIED;
}

bool IsCustomListId(std::string_view id) {
  const std::optional<int64_t> number = ParseInt<int64_t>(id);
  return number.has_value() && *number > 0 && id.front() != '0';
}

namespace {

// An upstream list id: a system list's name ("fans", "recent", "rebill_on", ...) or a custom
// list's number. Whether the account has it only the upstream knows, at send time.
absl::Status CheckListId(const std::string& field, std::string_view id) {
  const bool number = IsCustomListId(id);
  const bool name = !id.empty() && id.size() <= 64 && absl::ascii_islower(id.front()) &&
                    std::all_of(id.begin(), id.end(), [](char c) {
                      return absl::ascii_islower(static_cast<unsigned char>(c)) ||
                             absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_';
                    });
  if (number || name) return absl::OkStatus();
  return Invalid(field, StrCat("'", id,
                               "' is neither a system list name (fans, recent, expired, ...) nor "
                               "a custom list id (a positive number)"));
}

// Content rules; `prefix` is the field path of the content ("campaign.content").
absl::Status ParseContent(std::string_view prefix, std::string_view tenant,
                          const v1::MessageContent& in, store::MessageContent& out) {
  if (in.text().empty()) return Invalid(StrCat(prefix, ".text"), "is required");
  // The upstream refuses a blank text (text_required) on every account, after the media were
  // uploaded to each.
  if (std::all_of(in.text().begin(), in.text().end(),
                  [](char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); })) {
    return Invalid(StrCat(prefix, ".text"), "must not be blank");
  }
  if (Utf8Length(in.text()) > kMaxTextCharacters) {
    return Invalid(StrCat(prefix, ".text"), StrCat("at most ", kMaxTextCharacters, " characters"));
  }
  if (HasControlCharacter(in.text(), "\t\n\r")) {
    return Invalid(StrCat(prefix, ".text"),
                   "must not contain control characters other than tab and line breaks");
  }
  if (in.price_cents() != 0 && (in.price_cents() < 300 || in.price_cents() > 20000)) {
    return Invalid(StrCat(prefix, ".price_cents"),
                   StrCat("must be 0 (free) or 300-20000 cents ($3-$200), got ", in.price_cents()));
  }
  if (in.media_size() > kMaxMedia) {
    return Invalid(StrCat(prefix, ".media"), StrCat("at most ", kMaxMedia, " media assets"));
  }
  if (in.price_cents() > 0 && in.media_size() == 0) {
    return Invalid(StrCat(prefix, ".media"), "a priced message needs at least one media asset");
  }
  out.text = in.text();
  out.price_cents = in.price_cents();
  out.locked_text = in.locked_text();
  out.media.clear();
  out.previews.clear();
  std::set<std::string> seen;
  for (int i = 0; i < in.media_size(); ++i) {
    const std::string field = StrCat(prefix, ".media[", i, "]");
    auto id = ChildOfTenant(field, in.media(i), "media", tenant);
    if (!id.ok()) return id.status();
    if (!seen.insert(*id).second) return Invalid(field, "is listed twice");
    out.media.push_back(*id);
  }
  for (int i = 0; i < in.previews_size(); ++i) {
    const std::string field = StrCat(prefix, ".previews[", i, "]");
    auto id = ChildOfTenant(field, in.previews(i), "media", tenant);
    if (!id.ok()) return id.status();
    if (!seen.contains(*id)) return Invalid(field, "every preview must also be in media");
    if (std::find(out.previews.begin(), out.previews.end(), *id) != out.previews.end()) {
      return Invalid(field, "is listed twice");
    }
    out.previews.push_back(*id);
  }
  return absl::OkStatus();
}

absl::Status ParseTargets(std::string_view tenant,
                          const google::protobuf::RepeatedPtrField<v1::AccountTarget>& in,
                          std::vector<store::AccountTarget>& out) {
  if (in.empty()) return Invalid("campaign.targets", "at least one target account is required");
  std::set<std::string> accounts;
  out.clear();
  for (int i = 0; i < in.size(); ++i) {
    const v1::AccountTarget& t = in[i];
    const std::string prefix = StrCat("campaign.targets[", i, "]");
    store::AccountTarget target;
    auto account = ChildOfTenant(StrCat(prefix, ".account"), t.account(), "accounts", tenant);
    if (!account.ok()) return account.status();
    if (!accounts.insert(*account).second) {
      return Invalid(StrCat(prefix, ".account"), StrCat("'", *account, "' is targeted twice"));
    }
    target.account = *account;
    if (t.user_lists_size() == 0 && t.fan_ids_size() == 0 && t.segment().empty()) {
      return Invalid(prefix, "needs user_lists, fan_ids or a segment");
    }
    if (t.user_lists_size() > kMaxLists) {
      return Invalid(StrCat(prefix, ".user_lists"), StrCat("at most ", kMaxLists));
    }
    if (t.excluded_lists_size() > kMaxLists) {
      return Invalid(StrCat(prefix, ".excluded_lists"), StrCat("at most ", kMaxLists));
    }
    if (t.fan_ids_size() > kMaxFanIds) {
      return Invalid(StrCat(prefix, ".fan_ids"), StrCat("at most ", kMaxFanIds));
    }
    // A list given twice, or both to send to and to exclude, is a mistake the upstream would
    // settle silently one way or the other.
    std::set<std::string_view> included;
    for (int j = 0; j < t.user_lists_size(); ++j) {
      const std::string field = StrCat(prefix, ".user_lists[", j, "]");
      if (absl::Status s = CheckListId(field, t.user_lists(j)); !s.ok()) return s;
      if (!included.insert(t.user_lists(j)).second) return Invalid(field, "is listed twice");
      target.user_lists.push_back(t.user_lists(j));
    }
    std::set<std::string_view> excluded;
    for (int j = 0; j < t.excluded_lists_size(); ++j) {
      const std::string field = StrCat(prefix, ".excluded_lists[", j, "]");
      if (absl::Status s = CheckListId(field, t.excluded_lists(j)); !s.ok()) return s;
      if (!excluded.insert(t.excluded_lists(j)).second) return Invalid(field, "is listed twice");
      if (included.contains(t.excluded_lists(j))) {
        return Invalid(field, StrCat("'", t.excluded_lists(j), "' is also in user_lists"));
      }
      target.excluded_lists.push_back(t.excluded_lists(j));
    }
    std::unordered_set<int64_t> fans;
    fans.reserve(t.fan_ids_size());
    for (int j = 0; j < t.fan_ids_size(); ++j) {
      const std::string field = StrCat(prefix, ".fan_ids[", j, "]");
      if (t.fan_ids(j) <= 0) return Invalid(field, "must be > 0");
      if (!fans.insert(t.fan_ids(j)).second) {
        return Invalid(field, StrCat("fan ", t.fan_ids(j), " is listed twice"));
      }
      target.fan_ids.push_back(t.fan_ids(j));
    }
    if (!t.segment().empty()) {
      auto segment = ChildOfTenant(StrCat(prefix, ".segment"), t.segment(), "segments", tenant);
      if (!segment.ok()) return segment.status();
      target.segment = *segment;
    }
    out.push_back(std::move(target));
  }
  return absl::OkStatus();
}

absl::Status ParseSendTime(const v1::Campaign& c, absl::Time now, store::Campaign& out) {
  out.send_time_ms = 0;
  if (!c.has_send_time()) return absl::OkStatus();
  if (c.send_time().seconds() < 0 || c.send_time().seconds() > 253402300799 ||
      c.send_time().nanos() < 0 || c.send_time().nanos() > 999999999) {
    return Invalid("campaign.send_time", "is not a valid timestamp");
  }
  const absl::Time t = absl::FromUnixMillis(ToMillis(c.send_time()));
  if (t < now - kPastTolerance) {
    return Invalid("campaign.send_time", StrCat("is in the past (", absl::FormatTime(t), ")"));
  }
  out.send_time_ms = absl::ToUnixMillis(t);
  return absl::OkStatus();
}

absl::Status ParseGrace(const v1::Campaign& c, store::Campaign& out) {
  out.grace_period_ms = absl::ToInt64Milliseconds(absl::Minutes(15));
  if (!c.has_grace_period()) return absl::OkStatus();
  const auto& g = c.grace_period();
  if (g.nanos() <= -1'000'000'000 || g.nanos() >= 1'000'000'000 ||
      (g.seconds() > 0 && g.nanos() < 0) || (g.seconds() < 0 && g.nanos() > 0)) {
    return Invalid("campaign.grace_period", "is not a valid duration");
  }
  const absl::Duration d = absl::Seconds(g.seconds()) + absl::Nanoseconds(g.nanos());
  if (d < absl::ZeroDuration() || d > kMaxGrace) {
    return Invalid("campaign.grace_period", "must be between 0 and 24 hours");
  }
  // Kept in whole milliseconds, where 0 means the default: a shorter period would be stored as
  // "send only exactly on time".
  if (d > absl::ZeroDuration() && d < absl::Milliseconds(1)) {
    return Invalid("campaign.grace_period", "must be 0 (15 minutes) or at least 1 millisecond");
  }
  if (d > absl::ZeroDuration()) out.grace_period_ms = absl::ToInt64Milliseconds(d);
  return absl::OkStatus();
}

absl::Status ParseUpstreamLead(const v1::Campaign& c, store::Campaign& out) {
  out.upstream_lead_ms = 0;
  if (!c.has_upstream_lead()) return absl::OkStatus();
  const auto& l = c.upstream_lead();
  if (l.nanos() != 0 || l.seconds() < 0 || absl::Seconds(l.seconds()) > kMaxUpstreamLead) {
    return Invalid("campaign.upstream_lead", "must be whole seconds between 0 and 7 days");
  }
  out.upstream_lead_ms = l.seconds() * 1000;
  return absl::OkStatus();
}

}  // namespace

void SetTime(int64_t unix_ms, google::protobuf::Timestamp* out) {
  *out = TimeUtil::MillisecondsToTimestamp(unix_ms);
}

namespace {

// An Account's or Team's pause_time and resume_time: its last pause's.
template <typename Message>
void SetPauseTimes(const std::vector<store::PauseWindow>& pauses, Message& out) {
  if (pauses.empty()) return;
  SetTime(pauses.back().start_ms, out.mutable_pause_time());
  if (pauses.back().end_ms != 0) SetTime(pauses.back().end_ms, out.mutable_resume_time());
}

}  // namespace

// "<fingerprint>:<after>", base64url: the format every Herald reads, so that a page token
// outlives a rolling deploy.
std::string EncodePageToken(std::string_view after, uint64_t fingerprint) {
  return absl::WebSafeBase64Escape(StrCat(fingerprint, ":", after));
}

absl::StatusOr<std::string> DecodePageToken(std::string_view token, uint64_t fingerprint) {
  if (token.empty()) return std::string();
  std::string raw;
  const absl::Status bad = Invalid("page_token", "is not a token from this list request");
  if (!absl::WebSafeBase64Unescape(ToAbsl(token), &raw)) return bad;
  const size_t colon = raw.find(':');
  if (colon == std::string::npos || raw.substr(0, colon) != std::to_string(fingerprint)) return bad;
  return raw.substr(colon + 1);
}

absl::StatusOr<int64_t> ParseTimestampMillis(std::string_view field,
                                             const google::protobuf::Timestamp& t) {
  if (t.seconds() < TimeUtil::kTimestampMinSeconds ||
      t.seconds() > TimeUtil::kTimestampMaxSeconds || t.nanos() < 0 || t.nanos() > 999'999'999) {
    return Invalid(field, "is not a valid timestamp");
  }
  return TimeUtil::TimestampToMilliseconds(t);
}

absl::StatusOr<int64_t> ParseTimestampBoundMillis(std::string_view field,
                                                  const google::protobuf::Timestamp& t) {
  absl::StatusOr<int64_t> ms = ParseTimestampMillis(field, t);
  if (ms.ok() && t.nanos() % 1'000'000 != 0) ++*ms;  // nanos are never negative: ms is the floor
  return ms;
}

absl::StatusOr<int> ParsePageSize(int32_t page_size, int fallback, int max) {
  if (page_size < 0) return Invalid("page_size", "must not be negative");
  if (page_size == 0) return fallback;
  return std::min<int>(page_size, max);
}

absl::Status ValidateRequestId(std::string_view request_id) {
  if (Utf8Length(request_id) > 100) return Invalid("request_id", "at most 100 characters");
  if (HasControlCharacter(request_id)) {
    return Invalid("request_id", "must not contain control characters");
  }
  return absl::OkStatus();
}

namespace {

// Clears the secrets a request carries (a team's upstream key and webhook secret), at any depth:
// the fingerprint is kept in Redis beside the request id, where a plain digest of a secret would
// let a guess be checked offline. A retry that changes only a secret is taken for the same
// request.
void ClearSecrets(google::protobuf::Message& message) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    if (field->name() == "upstream_api_key" || field->name() == "webhook_signing_secret") {
      reflection->ClearField(&message, field);
    } else if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE &&
               !field->is_repeated()) {
      ClearSecrets(*reflection->MutableMessage(&message, field));
    }
  }
}

}  // namespace

absl::StatusOr<store::RequestId> CreateRequestId(const google::protobuf::Message& request,
                                                 std::string_view more) {
  const google::protobuf::FieldDescriptor* field =
      request.GetDescriptor()->FindFieldByName("request_id");
  if (field == nullptr || field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
    return absl::InternalError(StrCat(request.GetTypeName(), " has no request_id"));
  }
  std::string id = request.GetReflection()->GetString(request, field);
  if (absl::Status s = ValidateRequestId(id); !s.ok()) return s;
  if (id.empty()) return store::RequestId();
  // The request without its request_id, serialized deterministically (map entries in key
  // order), so that equal requests digest alike.
  std::unique_ptr<google::protobuf::Message> rest(request.New());
  rest->CopyFrom(request);
  rest->GetReflection()->ClearField(rest.get(), field);
  ClearSecrets(*rest);
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!rest->SerializeToCodedStream(&coded)) {
      return absl::InternalError(StrCat(request.GetTypeName(), " does not serialize"));
    }
  }
  bytes.append(more);
  // 128 bits of SHA-256: a retry and a different request never collide in practice.
  return store::RequestId(std::move(id), store::Sha256Hex(bytes).substr(0, 32));
}

absl::Status ValidateDisplayName(std::string_view field, std::string_view name) {
  if (Utf8Length(name) > 200) return Invalid(field, "at most 200 characters");
  if (HasControlCharacter(name)) return Invalid(field, "must not contain control characters");
  return absl::OkStatus();
}

absl::StatusOr<int32_t> ParseSchedulingWeight(std::string_view field, int32_t weight,
                                              bool zero_means_default) {
  if (weight == 0 && zero_means_default) return 1;
  if (weight < queue::kMinTenantWeight || weight > queue::kMaxTenantWeight) {
    return Invalid(field, StrCat("must be ", queue::kMinTenantWeight, "-", queue::kMaxTenantWeight,
                                 ", got ", weight));
  }
  return weight;
}

namespace {

// Whether `message` sets the field at `path` ("content.text"): a repeated field with an element,
// a message or optional field present, a plain scalar not at its default.
bool Populated(const google::protobuf::Message& message, std::string_view path) {
  const google::protobuf::Message* at = &message;
  for (std::string_view rest = path;;) {
    const size_t dot = rest.find('.');
    const std::string name(rest.substr(0, dot));
    const google::protobuf::FieldDescriptor* field = at->GetDescriptor()->FindFieldByName(name);
    if (field == nullptr) return false;
    const google::protobuf::Reflection* reflection = at->GetReflection();
    if (dot == std::string_view::npos) {
      return field->is_repeated() ? reflection->FieldSize(*at, field) > 0
                                  : reflection->HasField(*at, field);
    }
    if (field->is_repeated() ||
        field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE ||
        !reflection->HasField(*at, field)) {
      return false;
    }
    at = &reflection->GetMessage(*at, field);
    rest = rest.substr(dot + 1);
  }
}

bool Contains(std::initializer_list<std::string_view> list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseMask(
    const google::protobuf::Message& resource, const google::protobuf::FieldMask& mask,
    std::initializer_list<std::string_view> allowed,
    std::initializer_list<std::string_view> input_only) {
  std::vector<std::string> out;
  if (mask.paths_size() == 0) {
    // The most specific paths (`content.text`, not all of `content`): what the request leaves
    // unset inside a message it sets keeps its value.
    for (std::string_view path : allowed) {
      const bool has_finer = std::any_of(allowed.begin(), allowed.end(), [&](std::string_view p) {
        return p.size() > path.size() && p.starts_with(path) && p[path.size()] == '.';
      });
      if (!has_finer && Populated(resource, path)) out.emplace_back(path);
    }
    if (out.empty()) {
      return Invalid("update_mask",
                     StrCat("is empty and the request sets none of the fields it could update (",
                            StrJoin(allowed, ", "), ")"));
    }
    return out;
  }
  if (mask.paths_size() == 1 && mask.paths(0) == "*") {
    // Every field whole, as the request has it, set or not; a secret (input only) when given.
    for (std::string_view path : allowed) {
      if (path.find('.') != std::string_view::npos) continue;
      if (Contains(input_only, path) && !Populated(resource, path)) continue;
      out.emplace_back(path);
    }
    return out;
  }
  for (const std::string& path : mask.paths()) {
    if (path == "*") return Invalid("update_mask", "'*' must be its only path");
    if (!Contains(allowed, path)) {
      return Invalid(
          "update_mask",
          StrCat("'", path, "' cannot be updated (allowed: ", StrJoin(allowed, ", "), ")"));
    }
    if (std::find(out.begin(), out.end(), path) != out.end()) {
      return Invalid("update_mask", StrCat("'", path, "' is named twice"));
    }
    out.push_back(path);
  }
  return out;
}

absl::StatusOr<store::AuditQuery> ParseAuditQuery(const v1::ListAuditEventsRequest& req) {
  store::AuditQuery query;
  if (!req.parent().empty()) {
    absl::StatusOr<std::string> tenant = ParseTenantName("parent", req.parent());
    if (!tenant.ok()) return tenant.status();
    query.tenant = *std::move(tenant);
  }
  // As every list's: above the maximum is the maximum, and a token serves the listing (here, the
  // parent) it came from only.
  HERALD_ASSIGN_OR_RETURN(query.page_size, ParsePageSize(req.page_size(), 100, 1000));
  HERALD_ASSIGN_OR_RETURN(query.page_token,
                          DecodePageToken(req.page_token(), AuditListing(req.parent())));
  return query;
}

uint64_t AuditListing(std::string_view parent) { return Fingerprint(StrCat("audit/", parent)); }

v1::ListAuditEventsResponse ToProto(const store::AuditPage& page, uint64_t listing) {
  v1::ListAuditEventsResponse out;
  for (const store::AuditEvent& e : page.events) {
    v1::AuditEvent* p = out.add_events();
    p->set_id(e.id);
    SetTime(e.time_ms, p->mutable_time());
    p->set_actor(e.actor);
    p->set_action(e.action);
    p->set_resource(e.resource);
    p->set_detail(e.detail);
  }
  if (!page.next_page_token.empty()) {
    out.set_next_page_token(EncodePageToken(page.next_page_token, listing));
  }
  return out;
}

v1::RotateEncryptionKeyResponse ToProto(const campaign::Service::Rotation& rotation) {
  v1::RotateEncryptionKeyResponse out;
  out.set_key_id(rotation.key_id);
  out.set_teams_checked(rotation.teams);
  out.set_secrets_resealed(rotation.resealed);
  for (const std::string& u : rotation.unreadable) out.add_unreadable(u);
  return out;
}

v1::Tenant ToProto(const store::Tenant& t) {
  v1::Tenant out;
  out.set_name(TenantName(t.id));
  out.set_display_name(t.display_name);
  if (t.create_time_ms != 0) SetTime(t.create_time_ms, out.mutable_create_time());
  out.set_scheduling_weight(t.scheduling_weight);
  return out;
}

absl::StatusOr<TenantUpdate> ParseTenantUpdate(const v1::UpdateTenantRequest& req) {
  TenantUpdate out;
  HERALD_ASSIGN_OR_RETURN(out.tenant.id, ParseTenantName("tenant.name", req.tenant().name()));
  HERALD_ASSIGN_OR_RETURN(out.fields, ParseMask(req.tenant(), req.update_mask(),
                                                {"display_name", "scheduling_weight"}));
  for (const std::string& field : out.fields) {
    if (field == "display_name") {
      HERALD_RETURN_IF_ERROR(
          ValidateDisplayName("tenant.display_name", req.tenant().display_name()));
      out.tenant.display_name = req.tenant().display_name();
    } else {
      HERALD_ASSIGN_OR_RETURN(
          out.tenant.scheduling_weight,
          ParseSchedulingWeight("tenant.scheduling_weight", req.tenant().scheduling_weight(),
                                /*zero_means_default=*/false));
    }
  }
  return out;
}

v1::CampaignStats ToProto(std::string_view tenant, std::string_view campaign,
                          const campaign::CampaignFigures& f) {
  v1::CampaignStats out;
  out.set_name(StrCat(ChildNameOf(tenant, "campaigns", campaign), "/stats"));
  out.set_recipients(f.recipients);
  out.set_sent(f.sent);
  out.set_purchases(f.purchases);
  out.set_unlock_rate(f.unlock_rate);
  out.set_gross_revenue_cents(f.gross_cents);
  out.set_net_revenue_cents(f.net_cents);
  out.set_fee_cents(f.fee_cents);
  out.set_reconciled_purchases(f.reconciled);
  out.set_viewed(f.viewed);
  out.set_view_rate(f.view_rate);
  for (const campaign::AccountFigures& a : f.accounts) {
    v1::AccountStats* s = out.add_accounts();
    s->set_account(ChildNameOf(tenant, "accounts", a.account));
    s->set_upstream_message_id(a.upstream_message_id);
    s->set_recipients(a.recipients);
    s->set_sent(a.sent);
    s->set_purchases(a.purchases);
    s->set_gross_revenue_cents(a.gross_cents);
    s->set_net_revenue_cents(a.net_cents);
    s->set_fee_cents(a.fee_cents);
    s->set_reconciled_purchases(a.reconciled);
    s->set_viewed(a.viewed);
    if (a.sent > 0) {
      s->set_unlock_rate(static_cast<double>(a.purchases) / static_cast<double>(a.sent));
      s->set_view_rate(static_cast<double>(a.viewed) / static_cast<double>(a.sent));
    }
  }
  if (f.updated_ms != 0) SetTime(f.updated_ms, out.mutable_update_time());
  return out;
}

absl::StatusOr<TopCampaignsQuery> ParseTopCampaigns(const v1::TopCampaignsRequest& r,
                                                    absl::Time now) {
  using google::protobuf::util::TimeUtil;
  if (r.limit() < 0 || r.limit() > 100) {
    return absl::InvalidArgumentError("limit: 1-100 (or 0 for 10)");
  }
  TopCampaignsQuery q;
  q.limit = r.limit() == 0 ? 10 : r.limit();
  // Create times are kept in whole milliseconds: both bounds round up, so that "at or after
  // start_time" and "before end_time" hold to the nanosecond.
  q.end_ms = absl::ToUnixMillis(now);
  absl::Time end = now;
  if (r.has_end_time()) {
    absl::StatusOr<int64_t> end_ms = ParseTimestampBoundMillis("end_time", r.end_time());
    if (!end_ms.ok()) return end_ms.status();
    q.end_ms = *end_ms;
    end = absl::FromUnixSeconds(r.end_time().seconds()) + absl::Nanoseconds(r.end_time().nanos());
  }
  q.start_ms = q.end_ms - int64_t{30} * 24 * 3600 * 1000;
  if (r.has_start_time()) {
    absl::StatusOr<int64_t> start_ms = ParseTimestampBoundMillis("start_time", r.start_time());
    if (!start_ms.ok()) return start_ms.status();
    q.start_ms = *start_ms;
    const absl::Time start =
        absl::FromUnixSeconds(r.start_time().seconds()) + absl::Nanoseconds(r.start_time().nanos());
    if (start >= end) return absl::InvalidArgumentError("start_time: must be before end_time");
  }
  return q;
}

v1::Buyer ToProto(std::string_view tenant, const webhooks::Buyer& b) {
  v1::Buyer out;
  out.set_account(ChildNameOf(tenant, "accounts", b.account));
  out.set_fan_id(b.fan_id);
  out.set_spent_cents(b.spent_cents);
  if (b.first_purchase_ms != 0) SetTime(b.first_purchase_ms, out.mutable_first_purchase_time());
  return out;
}

v1::ApiKey ToProto(const store::ApiKey& k) {
  v1::ApiKey out;
  out.set_name(ChildNameOf(k.tenant, "apiKeys", k.id));
  out.set_display_name(k.display_name);
  out.set_secret_prefix(k.secret_prefix);
  if (k.create_time_ms != 0) SetTime(k.create_time_ms, out.mutable_create_time());
  if (k.revoke_time_ms != 0) SetTime(k.revoke_time_ms, out.mutable_revoke_time());
  return out;
}

v1::Team ToProto(const store::Team& t) {
  v1::Team out;
  out.set_name(ChildNameOf(t.tenant, "teams", t.id));
  out.set_display_name(t.display_name);
  out.set_rate_limit_per_minute(t.rate_limit_per_minute);
  out.set_upstream_api_key_hint(t.api_key_hint);
  out.set_api_key_invalid(t.api_key_invalid);
  out.set_paused(t.paused);
  out.set_paused_on_request(t.paused_on_request);
  out.set_pause_reason(t.pause_reason);
  if (t.create_time_ms != 0) SetTime(t.create_time_ms, out.mutable_create_time());
  SetPauseTimes(t.pauses, out);
  out.set_webhook_id(t.webhook_id);
  out.set_webhook_error(t.webhook_error);
  out.set_burst(t.burst);
  out.set_webhook_endpoint(StrCat("/webhooks/", webhooks::EndpointId(t.tenant, t.id)));
  if (t.webhook_secret_rotate_time_ms != 0) {
    SetTime(t.webhook_secret_rotate_time_ms, out.mutable_webhook_secret_rotate_time());
  }
  return out;
}

v1::Account ToProto(const store::Account& a) {
  v1::Account out;
  out.set_name(ChildNameOf(a.tenant, "accounts", a.id));
  out.set_team(ChildNameOf(a.tenant, "teams", a.team));
  out.set_display_name(a.display_name);
  out.set_sends_per_minute(a.sends_per_minute);
  out.set_max_in_flight(a.max_in_flight);
  out.set_paused(a.paused);
  out.set_upstream_username(a.upstream_username);
  if (a.create_time_ms != 0) SetTime(a.create_time_ms, out.mutable_create_time());
  SetPauseTimes(a.pauses, out);
  return out;
}

v1::MediaAsset ToProto(const store::MediaAsset& m) {
  v1::MediaAsset out;
  out.set_name(ChildNameOf(m.tenant, "media", m.id));
  out.set_type(static_cast<v1::MediaAsset::Type>(m.type));
  out.set_source_url(m.source_url);
  out.set_file_name(m.file_name);
  out.set_content_type(m.content_type);
  out.set_size_bytes(m.size_bytes);
  out.set_sha256(m.sha256);
  if (m.create_time_ms != 0) SetTime(m.create_time_ms, out.mutable_create_time());
  return out;
}

v1::Campaign ToProto(const campaign::CampaignView& v) {
  const store::Campaign& c = v.campaign;
  v1::Campaign out;
  out.set_name(ChildNameOf(c.tenant, "campaigns", c.id));
  out.set_display_name(c.display_name);
  v1::MessageContent* content = out.mutable_content();
  content->set_text(c.content.text);
  content->set_price_cents(c.content.price_cents);
  content->set_locked_text(c.content.locked_text);
  for (const auto& m : c.content.media) content->add_media(ChildNameOf(c.tenant, "media", m));
  for (const auto& m : c.content.previews) content->add_previews(ChildNameOf(c.tenant, "media", m));
  for (const auto& t : c.targets) {
    v1::AccountTarget* target = out.add_targets();
    target->set_account(ChildNameOf(c.tenant, "accounts", t.account));
    for (const auto& l : t.user_lists) target->add_user_lists(l);
    for (int64_t f : t.fan_ids) target->add_fan_ids(f);
    for (const auto& l : t.excluded_lists) target->add_excluded_lists(l);
    if (!t.segment.empty()) target->set_segment(ChildNameOf(c.tenant, "segments", t.segment));
  }
  if (c.send_time_ms != 0) SetTime(c.send_time_ms, out.mutable_send_time());
  *out.mutable_grace_period() = TimeUtil::MillisecondsToDuration(c.grace_period_ms);
  if (c.upstream_lead_ms != 0) {
    *out.mutable_upstream_lead() = TimeUtil::MillisecondsToDuration(c.upstream_lead_ms);
  }
  out.set_state(ToProto(v.state));
  out.set_state_reason(v.reason);
  v1::DeliveryCounts* counts = out.mutable_delivery_counts();
  counts->set_total(v.counts.total);
  counts->set_pending(v.counts.pending);
  counts->set_in_progress(v.counts.in_progress);
  counts->set_sent(v.counts.sent);
  counts->set_scheduled_upstream(v.counts.scheduled_upstream);
  counts->set_completed(v.counts.completed);
  counts->set_failed(v.counts.failed);
  counts->set_cancelled(v.counts.cancelled);
  counts->set_recipients(v.counts.recipients);
  counts->set_recipients_pending(v.counts.recipients_pending);
  if (c.create_time_ms != 0) SetTime(c.create_time_ms, out.mutable_create_time());
  // The campaign changes with its deliveries too (state, counts, revision).
  const int64_t updated_ms = std::max(c.update_time_ms, v.counts.updated_ms);
  if (updated_ms != 0) SetTime(updated_ms, out.mutable_update_time());
  if (c.dispatch_time_ms != 0) SetTime(c.dispatch_time_ms, out.mutable_dispatch_time());
  if (c.end_time_ms != 0) SetTime(c.end_time_ms, out.mutable_end_time());
  out.set_revision(v.revision);
  return out;
}

v1::Delivery ToProto(std::string_view tenant, std::string_view campaign, const store::Delivery& d) {
  v1::Delivery out;
  out.set_name(StrCat(ChildNameOf(tenant, "campaigns", campaign), "/deliveries/", d.account));
  out.set_account(ChildNameOf(tenant, "accounts", d.account));
  out.set_state(ToProto(d.state));
  out.set_upstream_message_id(d.upstream_message_id);
  out.set_recipients(d.recipients);
  out.set_recipients_pending(d.recipients_pending);
  out.set_error(d.error);
  out.set_send_attempts(d.send_attempts);
  out.set_cancel_outcome(d.cancel_outcome);
  if (d.update_time_ms != 0) SetTime(d.update_time_ms, out.mutable_update_time());
  return out;
}

v1::Segment ToProto(const store::Segment& s) {
  v1::Segment out;
  out.set_name(ChildNameOf(s.tenant, "segments", s.id));
  out.set_display_name(s.display_name);
  out.set_min_lifetime_spend_cents(s.min_lifetime_spend_cents);
  out.set_subscribed_within_days(s.subscribed_within_days);
  out.set_expired_only(s.expired_only);
  out.set_top_spenders(s.top_spenders);
  if (s.create_time_ms != 0) SetTime(s.create_time_ms, out.mutable_create_time());
  return out;
}

absl::Status ValidateSegmentFields(const v1::Segment& s, const std::vector<std::string>* fields) {
  const auto named = [&](std::string_view field) {
    return fields == nullptr || std::find(fields->begin(), fields->end(), field) != fields->end();
  };
  // Its upstream list is named after it.
  if (named("display_name")) {
    HERALD_RETURN_IF_ERROR(ValidateListName("segment.display_name", s.display_name()));
  }
  if (named("min_lifetime_spend_cents") && s.min_lifetime_spend_cents() < 0) {
    return Invalid("segment.min_lifetime_spend_cents", "must not be negative");
  }
  if (named("subscribed_within_days") &&
      (s.subscribed_within_days() < 0 || s.subscribed_within_days() > 3650)) {
    return Invalid("segment.subscribed_within_days", "must be in [0, 3650]");
  }
  if (named("top_spenders") && (s.top_spenders() < 0 || s.top_spenders() > 100000)) {
    return Invalid("segment.top_spenders", "must be in [0, 100000]");
  }
  return absl::OkStatus();
}

namespace {

store::Segment FromProto(std::string_view tenant, const v1::Segment& s) {
  return store::Segment{.tenant = std::string(tenant),
                        .display_name = s.display_name(),
                        .min_lifetime_spend_cents = s.min_lifetime_spend_cents(),
                        .subscribed_within_days = s.subscribed_within_days(),
                        .expired_only = s.expired_only(),
                        .top_spenders = s.top_spenders()};
}

}  // namespace

absl::StatusOr<store::Segment> ParseSegment(std::string_view tenant, const v1::Segment& s) {
  HERALD_RETURN_IF_ERROR(ValidateSegmentFields(s));
  store::Segment segment = FromProto(tenant, s);
  if (!segment.SetsACondition()) return Invalid("segment", "set at least one condition");
  return segment;
}

absl::StatusOr<SegmentUpdate> ParseSegmentUpdate(std::string_view tenant,
                                                 const v1::UpdateSegmentRequest& req) {
  HERALD_ASSIGN_OR_RETURN(std::string id,
                          OwnId(tenant, "segment.name", req.segment().name(), "segments"));
  SegmentUpdate out;
  HERALD_ASSIGN_OR_RETURN(
      out.fields, ParseMask(req.segment(), req.update_mask(),
                            {"display_name", "min_lifetime_spend_cents", "subscribed_within_days",
                             "expired_only", "top_spenders"}));
  HERALD_RETURN_IF_ERROR(ValidateSegmentFields(req.segment(), &out.fields));
  out.segment = FromProto(tenant, req.segment());
  out.segment.id = std::move(id);
  return out;
}

absl::Status ValidateTeamFields(const v1::Team& team, bool create) {
  if (absl::Status s = ValidateDisplayName("team.display_name", team.display_name()); !s.ok()) {
    return s;
  }
  if (create && team.upstream_api_key().empty()) {
    return Invalid("team.upstream_api_key", "is required");
  }
  if (team.upstream_api_key().size() > 1024) {
    return Invalid("team.upstream_api_key", "at most 1024 characters");
  }
  // It becomes an Authorization header: a pasted newline would make every call fail.
  if (std::any_of(team.upstream_api_key().begin(), team.upstream_api_key().end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) == 0x7f;
      })) {
    return Invalid("team.upstream_api_key", "must not contain whitespace or control characters");
  }
  if (team.rate_limit_per_minute() < 0 || team.rate_limit_per_minute() > 100000 ||
      (!create && team.rate_limit_per_minute() == 0)) {
    return Invalid("team.rate_limit_per_minute", "must be in [1, 100000]");
  }
  if (team.burst() < 0) return Invalid("team.burst", "must not be negative");
  const size_t secret = Utf8Length(team.webhook_signing_secret());
  if (secret != 0 && (secret < 16 || secret > 256)) {
    return Invalid("team.webhook_signing_secret", "must be 16-256 characters");
  }
  return absl::OkStatus();
}

absl::Status ValidateTeamUpdate(const v1::Team& team, const std::vector<std::string>& fields) {
  const auto named = [&](std::string_view field) {
    return std::find(fields.begin(), fields.end(), field) != fields.end();
  };
  // Fields outside the mask are not read, so they are not checked either.
  v1::Team checked = team;
  if (!named("display_name")) checked.clear_display_name();
  if (!named("upstream_api_key")) checked.clear_upstream_api_key();
  if (!named("rate_limit_per_minute")) checked.set_rate_limit_per_minute(1);
  if (!named("burst")) checked.clear_burst();
  if (!named("webhook_signing_secret")) checked.clear_webhook_signing_secret();
  if (absl::Status s = ValidateTeamFields(checked, /*create=*/false); !s.ok()) return s;
  if (named("upstream_api_key") && team.upstream_api_key().empty()) {
    return Invalid("team.upstream_api_key", "is required");
  }
  if (named("webhook_signing_secret") && team.webhook_signing_secret().empty()) {
    return Invalid("team.webhook_signing_secret", "is required");
  }
  return absl::OkStatus();
}

absl::Status ValidateAccountFields(const v1::Account& account,
                                   const std::vector<std::string>* fields) {
  const auto named = [&](std::string_view field) {
    return fields == nullptr || std::find(fields->begin(), fields->end(), field) != fields->end();
  };
  if (named("display_name")) {
    HERALD_RETURN_IF_ERROR(ValidateDisplayName("account.display_name", account.display_name()));
  }
  if (named("sends_per_minute") &&
      (account.sends_per_minute() < 0 || account.sends_per_minute() > 10000)) {
    return Invalid("account.sends_per_minute", "must be in [0, 10000]");
  }
  if (named("max_in_flight") && (account.max_in_flight() < 0 || account.max_in_flight() > 100)) {
    return Invalid("account.max_in_flight", "must be in [0, 100]");
  }
  return absl::OkStatus();
}

namespace {

std::string_view MediaTypeWord(store::MediaType type) {
  switch (type) {
    case store::MediaType::kImage:
      return "image";
    case store::MediaType::kVideo:
      return "video";
    case store::MediaType::kAudio:
      return "audio";
    case store::MediaType::kUnspecified:
      break;
  }
  return "unspecified";
}

std::string WithArticle(std::string_view word) {
  return StrCat(word.starts_with('i') || word.starts_with('a') ? "an " : "a ", word);
}

bool IsMimeTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$&-^_.+").find(c) != std::string_view::npos;
}

// A content type ("video/mp4", parameters allowed) whose top-level type is the asset's, or
// "application/octet-stream".
absl::Status CheckContentType(std::string_view content_type, store::MediaType type) {
  const std::string_view media_type = content_type.substr(0, content_type.find(';'));
  const size_t slash = media_type.find('/');
  const std::string_view top = media_type.substr(0, slash);
  const std::string_view sub =
      slash == std::string_view::npos ? std::string_view() : media_type.substr(slash + 1);
  if (top.empty() || sub.empty() || !std::all_of(top.begin(), top.end(), IsMimeTokenChar) ||
      !std::all_of(sub.begin(), sub.end(), IsMimeTokenChar)) {
    return Invalid("media_asset.content_type",
                   StrCat("'", content_type, "' is not a MIME type (e.g. \"video/mp4\")"));
  }
  // "application/octet-stream" says only that the kind is not known (heraldctl sends it for a
  // file whose extension it does not know); anything else names a kind, which must agree.
  if (absl::EqualsIgnoreCase(ToAbsl(media_type), "application/octet-stream")) {
    return absl::OkStatus();
  }
  if (!absl::EqualsIgnoreCase(ToAbsl(top), ToAbsl(MediaTypeWord(type)))) {
    return Invalid("media_asset.content_type",
                   StrCat("'", content_type, "' is not ", WithArticle(MediaTypeWord(type)),
                          " type, and media_asset.type says ", MediaTypeWord(type)));
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<store::MediaType> SniffMediaType(std::string_view bytes) {
  auto at = [&](size_t pos, std::string_view magic) {
    return bytes.size() >= pos + magic.size() && bytes.substr(pos, magic.size()) == magic;
  };
  // Only signatures that name one kind: Ogg, Matroska/WebM and the ISO family's generic brands
  // (isom, mp42, ...) carry audio or video alike, and are left unknown.
  if (at(0, "\x89PNG\r\n\x1a\n") || at(0, "\xff\xd8\xff") || at(0, "GIF87a") || at(0, "GIF89a") ||
      (at(0, "RIFF") && at(8, "WEBP")) || at(4, "ftypheic") || at(4, "ftypheix") ||
      at(4, "ftypheim") || at(4, "ftypheis") || at(4, "ftyphevc") || at(4, "ftyphevx") ||
      at(4, "ftypmif1") || at(4, "ftypmsf1") || at(4, "ftypavif") || at(4, "ftypavis")) {
    return store::MediaType::kImage;
  }
  if (at(0, "ID3") || at(0, "fLaC") || (at(0, "RIFF") && at(8, "WAVE")) || at(4, "ftypM4A ") ||
      at(4, "ftypM4B ")) {
    return store::MediaType::kAudio;
  }
  if (at(4, "ftypqt  ") || at(4, "ftypM4V ")) return store::MediaType::kVideo;
  return std::nullopt;
}

namespace {

// Whether `bytes` are an Ogg or Matroska/WebM file, or of the ISO family without an image brand
// (HEIF, AVIF, ...) among its major and compatible brands: audio or video, never a still image.
bool AudioOrVideoContainer(std::string_view bytes) {
  auto at = [&](size_t pos, std::string_view magic) {
    return bytes.size() >= pos + magic.size() && bytes.substr(pos, magic.size()) == magic;
  };
  if (at(0, "OggS") || at(0, "\x1a\x45\xdf\xa3")) return true;
  if (!at(4, "ftyp")) return false;
  // The ftyp box: its size, "ftyp", the major brand, a minor version, then compatible brands.
  size_t size = 0;
  for (size_t i = 0; i < 4; ++i) size = size << 8 | static_cast<unsigned char>(bytes[i]);
  size = std::min(size, bytes.size());
  constexpr std::string_view kImageBrands[] = {"mif1", "mif2", "msf1", "heic", "heix", "heim",
                                               "heis", "hevc", "hevx", "avif", "avis", "avci",
                                               "jpeg", "MiHB", "MiHE", "MiPr", "crx "};
  for (size_t pos = 8; pos + 4 <= size; pos += pos == 8 ? 8 : 4) {
    const std::string_view brand = bytes.substr(pos, 4);
    for (std::string_view image : kImageBrands) {
      if (brand == image) return false;
    }
  }
  return true;
}

}  // namespace

absl::Status CheckUploadedBytes(std::string_view bytes, store::MediaType type) {
  const std::optional<store::MediaType> sniffed = SniffMediaType(bytes);
  if (!sniffed && type == store::MediaType::kImage) {
    if (AudioOrVideoContainer(bytes)) {
      return Invalid("chunk",
                     "the file is audio or video (an Ogg, Matroska/WebM or MP4-family container), "
                     "but media_asset.type says image");
    }
  }
  if (!sniffed || *sniffed == type) return absl::OkStatus();
  return Invalid("chunk", StrCat("the file is ", WithArticle(MediaTypeWord(*sniffed)),
                                 ", but media_asset.type says ", MediaTypeWord(type)));
}

absl::StatusOr<store::MediaAsset> ParseMediaAsset(std::string_view tenant, const v1::MediaAsset& m,
                                                  bool uploaded) {
  store::MediaAsset out{.tenant = std::string(tenant)};
  if (m.type() == v1::MediaAsset::TYPE_UNSPECIFIED || !v1::MediaAsset::Type_IsValid(m.type())) {
    return Invalid("media_asset.type", "is required (IMAGE, VIDEO or AUDIO)");
  }
  out.type = static_cast<store::MediaType>(m.type());
  // The content type becomes a header line of the upload to the upstream.
  if (HasControlCharacter(m.content_type())) {
    return Invalid("media_asset.content_type", "must not contain control characters");
  }
  if (m.content_type().size() > 255) {
    return Invalid("media_asset.content_type", "at most 255 characters");
  }
  if (!m.content_type().empty()) {
    if (absl::Status s = CheckContentType(m.content_type(), out.type); !s.ok()) return s;
  }
  if (uploaded) {
    if (!m.source_url().empty())
      return Invalid("media_asset.source_url", "must be empty for uploads");
    if (m.file_name().empty()) return Invalid("media_asset.file_name", "is required");
    if (m.content_type().empty()) {
      return Invalid("media_asset.content_type", "is required (e.g. \"video/mp4\")");
    }
    out.file_name = m.file_name();
    out.content_type = m.content_type();
  } else {
    const std::string& url = m.source_url();
    if (url.empty()) return Invalid("media_asset.source_url", "is required");
    if (url.size() > 2048 || !(url.starts_with("https://") || url.starts_with("http://")) ||
        url.find(' ') != std::string::npos || HasControlCharacter(url)) {
      return Invalid("media_asset.source_url", "must be an http(s) URL of at most 2048 characters");
    }
    const std::string_view after_scheme = std::string_view(url).substr(url.find("://") + 3);
    const std::string_view authority = after_scheme.substr(0, after_scheme.find_first_of("/?#"));
    // Credentials in the URL would be stored and shown with the asset.
    if (authority.find('@') != std::string_view::npos) {
      return Invalid("media_asset.source_url", "must not carry credentials (user:password@)");
    }
    if (authority.empty() || authority.front() == ':') {
      return Invalid("media_asset.source_url", "must name a host (https://host/path)");
    }
    out.source_url = url;
    out.file_name = m.file_name();
    if (out.file_name.empty()) {
      std::string_view path = std::string_view(url).substr(url.find("://") + 3);
      const size_t q = path.find_first_of("?#");
      if (q != std::string_view::npos) path = path.substr(0, q);
      const size_t slash = path.rfind('/');
      // At most 200 characters of it: its end, where the extension is. A URL that ends in no
      // file name leaves it empty: it only labels the asset (the upstream names a file it
      // downloads itself).
      if (slash != std::string_view::npos) {
        out.file_name = std::string(Utf8Suffix(path.substr(slash + 1), 200));
      }
    }
    out.content_type = m.content_type();
  }
  if (Utf8Length(out.file_name) > 200)
    return Invalid("media_asset.file_name", "at most 200 characters");
  // The file name becomes part of the upload's multipart header to the upstream.
  if (HasControlCharacter(out.file_name)) {
    return Invalid("media_asset.file_name", "must not contain control characters");
  }
  return out;
}

absl::StatusOr<store::Campaign> ParseCampaign(std::string_view tenant, const v1::Campaign& c,
                                              absl::Time now) {
  store::Campaign out{.tenant = std::string(tenant)};
  if (absl::Status s = ValidateDisplayName("campaign.display_name", c.display_name()); !s.ok()) {
    return s;
  }
  out.display_name = c.display_name();
  if (!c.has_content()) return Invalid("campaign.content", "is required");
  if (absl::Status s = ParseContent("campaign.content", tenant, c.content(), out.content);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ParseTargets(tenant, c.targets(), out.targets); !s.ok()) return s;
  if (absl::Status s = ParseSendTime(c, now, out); !s.ok()) return s;
  if (absl::Status s = ParseGrace(c, out); !s.ok()) return s;
  if (absl::Status s = ParseUpstreamLead(c, out); !s.ok()) return s;
  out.phase = c.save_as_draft() ? store::CampaignPhase::kDraft : store::CampaignPhase::kDispatched;
  return out;
}

}  // namespace herald::api
