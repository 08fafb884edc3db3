// Protobuf <-> domain: Parse (validation of a request's shape, errors naming the field) and
// ToProto. Pure functions; no I/O.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <herald/campaign/analytics.h>
#include <herald/campaign/service.h>
#include <herald/store/audit.h>
#include <herald/store/model.h>
#include <herald/store/store.h>
#include <herald/v1/account.pb.h>
#include <herald/v1/analytics.pb.h>
#include <herald/v1/audience.pb.h>
#include <herald/v1/campaign.pb.h>
#include <herald/v1/media.pb.h>
#include <herald/v1/tenant.pb.h>

namespace herald::api {

// Sets `out` to `unix_ms`; callers leave unset times (0) unset.
void SetTime(int64_t unix_ms, google::protobuf::Timestamp* out);

// Page tokens: opaque strings bound to the request's filter.
std::string EncodePageToken(std::string_view after, uint64_t fingerprint);
absl::StatusOr<std::string> DecodePageToken(std::string_view token, uint64_t fingerprint);
// 0 -> `fallback`; otherwise 1..max.
absl::StatusOr<int> ParsePageSize(int32_t page_size, int fallback, int max);

// A custom upstream list's id as the upstream writes it: a positive decimal number, with no sign,
// space or leading zero.
bool IsCustomListId(std::string_view id);
// `t` in Unix milliseconds; kInvalidArgument naming `field` when it is outside the range a
// Timestamp may hold (years 1 to 9999, nanos 0 to 999,999,999), where the milliseconds of a
// client's arbitrary seconds would overflow.
absl::StatusOr<int64_t> ParseTimestampMillis(std::string_view field,
                                             const google::protobuf::Timestamp& t);
// The same, rounded up to the next whole millisecond: a bound on times kept in milliseconds
// ("at or after t", "before t") then holds to the nanosecond.
absl::StatusOr<int64_t> ParseTimestampBoundMillis(std::string_view field,
                                                  const google::protobuf::Timestamp& t);

absl::Status ValidateRequestId(std::string_view request_id);
// The request_id of a create `request`, validated, with the fingerprint of the rest of the
// request (and of `more`, what a streamed request carries besides the message): a retry must
// repeat it unchanged, or it is refused as a different request (store::RequestId).
absl::StatusOr<store::RequestId> CreateRequestId(const google::protobuf::Message& request,
                                                 std::string_view more = {});
absl::Status ValidateDisplayName(std::string_view field, std::string_view name);
// An upstream user list's name (a CreateUserList's, a segment's): 1-64 characters, not blank, no
// control characters.
absl::Status ValidateListName(std::string_view field, std::string_view name);
// The id of `name`, a resource of `collection` that a request refers to in `field`: as OwnId,
// with the field's path leading the message of one that is not the tenant's.
absl::StatusOr<std::string> ChildOfTenant(std::string_view field, std::string_view name,
                                          std::string_view collection, std::string_view tenant);
// A tenant's scheduling_weight: 1..1000, or 0 (meaning 1) when `zero_means_default` (create).
absl::StatusOr<int32_t> ParseSchedulingWeight(std::string_view field, int32_t weight,
                                              bool zero_means_default);
// The fields an update of `resource` changes, as AIP-134 has it: the mask's paths, each one of
// `allowed` (kInvalidArgument naming the first that is not); with no mask, every allowed field
// `resource` sets, the most specific path of each (kInvalidArgument when it sets none); with `*`
// alone, every top-level allowed field, set or not, except those of `input_only` (secrets)
// the request leaves empty.
absl::StatusOr<std::vector<std::string>> ParseMask(
    const google::protobuf::Message& resource, const google::protobuf::FieldMask& mask,
    std::initializer_list<std::string_view> allowed,
    std::initializer_list<std::string_view> input_only = {});

// ListAuditEvents: the tenant filter (parent), the page size (0 means 100; at most 1000) and
// the page token.
absl::StatusOr<store::AuditQuery> ParseAuditQuery(const v1::ListAuditEventsRequest& req);
// What an audit page token is bound to: the listing of `parent`.
uint64_t AuditListing(std::string_view parent);
v1::ListAuditEventsResponse ToProto(const store::AuditPage& page, uint64_t listing);
v1::RotateEncryptionKeyResponse ToProto(const campaign::Service::Rotation& rotation);
v1::Tenant ToProto(const store::Tenant& t);
// UpdateTenant: the tenant (its id and the new values) and the fields named in update_mask,
// each validated.
struct TenantUpdate {
  store::Tenant tenant;
  std::vector<std::string> fields;
};
absl::StatusOr<TenantUpdate> ParseTenantUpdate(const v1::UpdateTenantRequest& req);
v1::ApiKey ToProto(const store::ApiKey& k);
v1::Team ToProto(const store::Team& t);
v1::Account ToProto(const store::Account& a);
v1::MediaAsset ToProto(const store::MediaAsset& m);
v1::Campaign ToProto(const campaign::CampaignView& v);
v1::Delivery ToProto(std::string_view tenant, std::string_view campaign, const store::Delivery& d);
v1::Delivery::State ToProto(store::DeliveryState s);
v1::CampaignStats ToProto(std::string_view tenant, std::string_view campaign,
                          const campaign::CampaignFigures& f);
v1::Buyer ToProto(std::string_view tenant, const webhooks::Buyer& b);

// TopCampaigns' range and size: end defaults to `now`, start to 30 days before end.
struct TopCampaignsQuery {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  int limit = 10;
};
absl::StatusOr<TopCampaignsQuery> ParseTopCampaigns(const v1::TopCampaignsRequest& r,
                                                    absl::Time now);

v1::Segment ToProto(const store::Segment& s);
absl::StatusOr<store::Segment> ParseSegment(std::string_view tenant, const v1::Segment& s);
// A segment's writable fields: all of them, or only those `fields` names (an update's mask).
// Whether the segment still sets a condition is the caller's to check.
absl::Status ValidateSegmentFields(const v1::Segment& s,
                                   const std::vector<std::string>* fields = nullptr);
// UpdateSegment: the segment (its tenant, id and the new values) and the fields named in
// update_mask, each validated. Whether a condition remains is known only once they are applied.
struct SegmentUpdate {
  store::Segment segment;
  std::vector<std::string> fields;
};
absl::StatusOr<SegmentUpdate> ParseSegmentUpdate(std::string_view tenant,
                                                 const v1::UpdateSegmentRequest& req);

// A team's writable fields. On create the upstream key is required and a rate limit of 0 means
// the default; otherwise the rate limit must be 1-100000.
absl::Status ValidateTeamFields(const v1::Team& team, bool create);
// The fields of an UpdateTeamRequest its mask names (`fields`, from ParseMask): a rate limit, if
// named, 1-100000 (0 is no default here: the rate limiter takes it for "unlimited"); a new
// upstream key, if named, not empty.
absl::Status ValidateTeamUpdate(const v1::Team& team, const std::vector<std::string>& fields);
// An account's writable fields: all of them, or only those `fields` names (an update's mask).
absl::Status ValidateAccountFields(const v1::Account& account,
                                   const std::vector<std::string>* fields = nullptr);
// The kind of media `bytes` are by their first bytes, where those name one kind (PNG, JPEG, GIF,
// WebP, HEIF/HEIC, AVIF; MP3, FLAC, WAV, M4A; QuickTime, M4V); nullopt otherwise (Ogg, Matroska and
// generic MP4 brands hold audio or video alike).
std::optional<store::MediaType> SniffMediaType(std::string_view bytes);
// kInvalidArgument when an upload's bytes are plainly another kind of media than `type`: a known
// signature of another kind, or an audio or video container (Ogg, Matroska, a non-image ISO brand)
// declared an image.
absl::Status CheckUploadedBytes(std::string_view bytes, store::MediaType type);
absl::StatusOr<store::MediaAsset> ParseMediaAsset(std::string_view tenant, const v1::MediaAsset& m,
                                                  bool uploaded);

// The campaign of a CreateCampaign request, or an existing campaign with an update merged in
// (`now` checks the send time).
absl::StatusOr<store::Campaign> ParseCampaign(std::string_view tenant, const v1::Campaign& c,
                                              absl::Time now);
}  // namespace herald::api
