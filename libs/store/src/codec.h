// JSON documents of the records (model.h), through Boost.Describe: every field is written, and
// a document missing one does not decode, except the fields listed in AddedFields: a record
// stored before they existed decodes with their defaults (the upgrade path). A field this build
// does not know is ignored: a record written by a later Herald, during a rolling deploy or after
// a rollback, still decodes (the downgrade path).
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>
#include <boost/describe.hpp>
#include <boost/json.hpp>

#include <herald/store/model.h>

namespace herald::store {

BOOST_DESCRIBE_STRUCT(Tenant, (), (id, display_name, create_time_ms, scheduling_weight))
BOOST_DESCRIBE_STRUCT(ApiKey, (),
                      (tenant, id, display_name, secret_prefix, secret_sha256, create_time_ms,
                       revoke_time_ms))
BOOST_DESCRIBE_STRUCT(PauseWindow, (), (start_ms, end_ms))
BOOST_DESCRIBE_STRUCT(Team, (),
                      (tenant, id, display_name, sealed_api_key, api_key_hint,
                       rate_limit_per_minute, api_key_invalid, paused, pause_reason, create_time_ms,
                       webhook_id, sealed_webhook_secret, sealed_previous_webhook_secret,
                       webhook_error, burst, pauses, paused_on_request,
                       webhook_secret_rotate_time_ms))
BOOST_DESCRIBE_STRUCT(Account, (),
                      (tenant, id, team, display_name, sends_per_minute, max_in_flight, paused,
                       upstream_username, create_time_ms, pauses))
BOOST_DESCRIBE_ENUM(MediaType, kUnspecified, kImage, kVideo, kAudio)
BOOST_DESCRIBE_STRUCT(MediaAsset, (),
                      (tenant, id, type, source_url, file_name, content_type, size_bytes, sha256,
                       create_time_ms))
BOOST_DESCRIBE_STRUCT(Segment, (),
                      (tenant, id, display_name, min_lifetime_spend_cents, subscribed_within_days,
                       expired_only, create_time_ms, top_spenders))
BOOST_DESCRIBE_ENUM(AutomationTrigger, kUnspecified, kNewSubscriber, kRenewal, kExpiry, kPpvUnlock)
BOOST_DESCRIBE_ENUM(AutomationAction, kAddToList, kRemoveFromList)
BOOST_DESCRIBE_STRUCT(Automation, (),
                      (tenant, id, account, trigger, list_id, create_time_ms, action))
BOOST_DESCRIBE_STRUCT(MessageContent, (), (text, price_cents, media, previews, locked_text))
BOOST_DESCRIBE_STRUCT(AccountTarget, (), (account, user_lists, fan_ids, excluded_lists, segment))
// A campaign's target as stored in the campaign's targets table, with its position.
struct TargetDocument {
  int32_t index = 0;
  AccountTarget target;
};
BOOST_DESCRIBE_STRUCT(TargetDocument, (), (index, target))
BOOST_DESCRIBE_ENUM(CampaignPhase, kDraft, kScheduled, kDispatched, kPaused, kCancelled, kMissed)
BOOST_DESCRIBE_STRUCT(Campaign, (),
                      (tenant, id, display_name, content, targets, send_time_ms, grace_period_ms,
                       upstream_lead_ms, phase, phase_reason, generation, create_time_ms,
                       update_time_ms, dispatch_time_ms, end_time_ms))
BOOST_DESCRIBE_STRUCT(PendingDispatch, (), (id, campaign, since_ms))
BOOST_DESCRIBE_ENUM(DeliveryState, kPending, kUploadingMedia, kBuildingList, kSending,
                    kScheduledUpstream, kSent, kCompleted, kFailed, kCancelled)
BOOST_DESCRIBE_STRUCT(AttemptContent, (), (text_sha256, free, media_count, generation))
BOOST_DESCRIBE_STRUCT(Delivery, (),
                      (account, state, upstream_media, segment_list_id, segment_list_name,
                       segment_fans, segment_added, upstream_message_id, recipients,
                       recipients_pending, error, send_attempts, send_started_ms, send_scheduled_ms,
                       attempt_content, send_in_doubt_until_ms, send_unsent_attempt,
                       upstream_generation, polls, cancel_outcome, update_time_ms))

// Fields added to a record kind after records of it were first stored.
template <typename T>
struct AddedFields {
  static constexpr std::array<std::string_view, 0> kNames{};
};
template <>
struct AddedFields<Tenant> {
  static constexpr std::array<std::string_view, 1> kNames{"scheduling_weight"};
};
template <>
struct AddedFields<Campaign> {
  static constexpr std::array<std::string_view, 1> kNames{"upstream_lead_ms"};
};
template <>
struct AddedFields<Delivery> {
  static constexpr std::array<std::string_view, 6> kNames{
      "send_scheduled_ms", "upstream_generation",    "segment_list_name",
      "attempt_content",   "send_in_doubt_until_ms", "send_unsent_attempt"};
};
template <>
struct AddedFields<Team> {
  static constexpr std::array<std::string_view, 8> kNames{"webhook_id",
                                                          "sealed_webhook_secret",
                                                          "sealed_previous_webhook_secret",
                                                          "webhook_error",
                                                          "burst",
                                                          "pauses",
                                                          "paused_on_request",
                                                          "webhook_secret_rotate_time_ms"};
};
template <>
struct AddedFields<Account> {
  static constexpr std::array<std::string_view, 1> kNames{"pauses"};
};
template <>
struct AddedFields<Segment> {
  static constexpr std::array<std::string_view, 1> kNames{"top_spenders"};
};
template <>
struct AddedFields<Automation> {
  static constexpr std::array<std::string_view, 1> kNames{"action"};
};

// Whether `value` names one of E's enumerators (as value_from writes them).
template <typename E>
bool IsEnumeratorName(const boost::json::value& value) {
  if (!value.is_string()) return false;
  bool known = false;
  boost::mp11::mp_for_each<boost::describe::describe_enumerators<E>>(
      [&](auto e) { known = known || value.get_string() == e.name; });
  return known;
}

// Values a later Herald may store that this one does not know, made into what this one can
// read (the downgrade path for enumerators). By default none: the record does not decode.
template <typename T>
void ForgetLaterValues(boost::json::object&) {}

// A rule on a trigger or with an action of a later release decodes as a rule on no trigger: it
// fires nothing here, and the tenant's other rules still load.
template <>
inline void ForgetLaterValues<Automation>(boost::json::object& o) {
  const boost::json::value* trigger = o.if_contains("trigger");
  const boost::json::value* action = o.if_contains("action");
  const bool later_trigger = trigger != nullptr && !IsEnumeratorName<AutomationTrigger>(*trigger);
  const bool later_action = action != nullptr && !IsEnumeratorName<AutomationAction>(*action);
  if (!later_trigger && !later_action) return;
  o["trigger"] = "kUnspecified";
  o["action"] = "kAddToList";
}

// The JSON trees below live only for the call: their nodes come from a buffer on the stack
// (then from larger blocks freed at once), not one allocation each.
constexpr size_t kCodecBufferBytes = 4096;

template <typename T>
std::string Encode(const T& record) {
  unsigned char buffer[kCodecBufferBytes];
  boost::json::monotonic_resource resource(buffer, sizeof(buffer));
  return boost::json::serialize(boost::json::value_from(record, &resource));
}

// Decodes `document`. With `later`, the top-level fields this build does not know (a later
// release's) are kept there as a JSON object, empty when there are none (the usual case, which
// costs nothing more): WithLaterFields puts them back into an update of the record.
template <typename T>
absl::StatusOr<T> Decode(std::string_view document, std::string* later = nullptr) {
  if (later != nullptr) later->clear();
  unsigned char buffer[kCodecBufferBytes];
  boost::json::monotonic_resource resource(buffer, sizeof(buffer));
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(document, ec, &resource);
  if (ec) return absl::DataLossError("stored record is not JSON: " + ec.message());
  auto r = boost::json::try_value_to<T>(v);
  if (!r && v.is_object()) {
    boost::json::object& o = v.as_object();
    if constexpr (boost::describe::has_describe_members<T>::value) {
      // Boost.JSON refuses an object whose keys are not exactly the struct's.
      std::vector<std::string> unknown;  // copies: erasing moves the object's entries
      for (const auto& [key, value] : o) {
        bool known = false;
        boost::mp11::mp_for_each<
            boost::describe::describe_members<T, boost::describe::mod_any_access>>(
            [&](auto member) { known = known || key == member.name; });
        if (!known) unknown.emplace_back(key);
      }
      if (later != nullptr && !unknown.empty()) {
        boost::json::object kept;
        for (const std::string& key : unknown) kept[key] = o.at(key);
        *later = boost::json::serialize(kept);
      }
      for (const std::string& key : unknown) o.erase(key);
    }
    ForgetLaterValues<T>(o);
    if (!AddedFields<T>::kNames.empty()) {
      const boost::json::value defaults = boost::json::value_from(T{});
      for (std::string_view name : AddedFields<T>::kNames) {
        if (!o.contains(name)) o[name] = defaults.at(name);
      }
    }
    r = boost::json::try_value_to<T>(v);
  }
  if (!r) return absl::DataLossError("stored record does not decode: " + r.error().message());
  return std::move(*r);
}

// `updated` (a record's document as this build writes it) with the fields `later` (from Decode)
// added: an update by an earlier release, during a rolling deploy or after a rollback, keeps
// what a later one wrote. `updated` itself when `later` is empty.
std::string WithLaterFields(std::string updated, std::string_view later);

}  // namespace herald::store
