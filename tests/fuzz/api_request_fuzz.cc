// libFuzzer target: the validation of gRPC requests (services/api/src/convert.h, names.h), run in
// the order the services' handlers (services/api/src/campaigns.cc, …) run them, on messages
// parsed from arbitrary bytes. Whatever the message, validation never crashes and never
// overflows; what it accepts keeps the rules the store relies on, and an accepted campaign,
// turned back into its message, is accepted again unchanged.
//
// Input: byte 0 picks the request type (see kinds below, modulo their number); the rest is the
// message in protobuf's wire format. The seeds were made with
//   protoc --proto_path=proto --encode=herald.v1.<Request> herald/v1/<file>.proto < seed.txtpb
// behind the type byte.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/field_mask_util.h>
#include <google/protobuf/util/message_differencer.h>

#include "convert.h"
#include "names.h"

namespace {

using namespace herald;  // NOLINT
using google::protobuf::util::MessageDifferencer;

constexpr std::string_view kTenant = "acme";
// Validation is checked at a fixed instant so that runs repeat: 2026-01-01T00:00:00Z.
const absl::Time kNow = absl::FromUnixSeconds(1767225600);

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

// A rejection is kInvalidArgument or, for another tenant's resource, kNotFound, with a message.
void CheckRejection(const absl::Status& status) {
  Check(absl::IsInvalidArgument(status) || absl::IsNotFound(status));
  Check(!status.message().empty());
}

template <typename T>
bool Ok(const absl::StatusOr<T>& result) {
  if (!result.ok()) CheckRejection(result.status());
  return result.ok();
}

bool Ok(const absl::Status& status) {
  if (!status.ok()) CheckRejection(status);
  return status.ok();
}

template <typename M>
bool Parse(std::string_view bytes, M& message) {
  return message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

// An accepted campaign, as the API shows it, is accepted again and shows the same.
void CheckCampaign(const store::Campaign& accepted) {
  Check(accepted.tenant == kTenant && !accepted.targets.empty());
  Check(accepted.content.price_cents == 0 ||
        (accepted.content.price_cents >= 300 && accepted.content.price_cents <= 20000));
  Check(accepted.grace_period_ms >= 0);
  const v1::Campaign shown = api::ToProto(campaign::CampaignView{.campaign = accepted});
  absl::StatusOr<store::Campaign> again = api::ParseCampaign(kTenant, shown, kNow);
  Check(again.ok());
  Check(
      MessageDifferencer::Equals(shown, api::ToProto(campaign::CampaignView{.campaign = *again})));
}

void CreateCampaign(std::string_view bytes) {
  v1::CreateCampaignRequest req;
  if (!Parse(bytes, req)) return;
  if (!Ok(api::OwnParent(kTenant, req.parent()))) return;
  if (!Ok(api::ValidateRequestId(req.request_id()))) return;
  absl::StatusOr<store::Campaign> campaign = api::ParseCampaign(kTenant, req.campaign(), kNow);
  if (Ok(campaign)) CheckCampaign(*campaign);
}

void UpdateCampaign(std::string_view bytes) {
  v1::UpdateCampaignRequest req;
  if (!Parse(bytes, req)) return;
  absl::StatusOr<std::string> id =
      api::OwnId(kTenant, "campaign.name", req.campaign().name(), "campaigns");
  if (!Ok(id)) return;
  absl::StatusOr<std::vector<std::string>> fields = api::ParseMask(
      req.campaign(), req.update_mask(),
      {"display_name", "content", "content.text", "content.price_cents", "content.media",
       "content.previews", "content.locked_text", "targets", "send_time", "grace_period"});
  if (!Ok(fields)) return;
  // The update is merged into a stored campaign and checked whole, as UpdateCampaign does.
  store::Campaign current{.tenant = std::string(kTenant),
                          .id = *id,
                          .display_name = "Friday drop",
                          .content = {.text = "New video", .price_cents = 1500, .media = {"m1"}},
                          .targets = {{.account = "acct_a", .user_lists = {"fans"}}},
                          .send_time_ms = absl::ToUnixMillis(kNow + absl::Hours(1)),
                          .grace_period_ms = 900'000};
  v1::Campaign merged = api::ToProto(campaign::CampaignView{.campaign = current});
  // With the mask the fields make (an empty mask or `*` stands for fields), as the server does.
  google::protobuf::FieldMask mask;
  for (const std::string& field : *fields) mask.add_paths(field);
  google::protobuf::util::FieldMaskUtil::MergeOptions options;
  options.set_replace_repeated_fields(true);
  options.set_replace_message_fields(true);
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(req.campaign(), mask, options, &merged);
  if (std::find(fields->begin(), fields->end(), "send_time") == fields->end()) {
    merged.clear_send_time();
  }
  absl::StatusOr<store::Campaign> campaign = api::ParseCampaign(kTenant, merged, kNow);
  if (Ok(campaign)) CheckCampaign(*campaign);
}

void ListCampaigns(std::string_view bytes) {
  v1::ListCampaignsRequest req;
  if (!Parse(bytes, req)) return;
  if (!Ok(api::OwnParent(kTenant, req.parent()))) return;
  absl::StatusOr<int> size = api::ParsePageSize(req.page_size(), 50, 1000);
  if (!Ok(size)) return;
  Check(*size >= 1 && *size <= 1000);
  constexpr uint64_t kFingerprint = 0x5eed;
  absl::StatusOr<std::string> after = api::DecodePageToken(req.page_token(), kFingerprint);
  if (Ok(after)) {
    Check(*api::DecodePageToken(api::EncodePageToken(*after, kFingerprint), kFingerprint) ==
          *after);
  }
  // A token is bound to its filter.
  const std::string token = api::EncodePageToken(req.page_token(), kFingerprint);
  Check(*api::DecodePageToken(token, kFingerprint) == req.page_token());
  Check(!api::DecodePageToken(token, kFingerprint + 1).ok());
}

void CreateTeam(std::string_view bytes) {
  v1::CreateTeamRequest req;
  if (!Parse(bytes, req)) return;
  if (!Ok(api::OwnParent(kTenant, req.parent()))) return;
  if (!Ok(api::ValidateSlug("team_id", req.team_id()))) return;
  if (!Ok(api::ValidateRequestId(req.request_id()))) return;
  if (!Ok(api::ValidateTeamFields(req.team(), /*create=*/true))) return;
  Check(!req.team().upstream_api_key().empty() && req.team().rate_limit_per_minute() >= 0);
}

void UpdateTeam(std::string_view bytes) {
  v1::UpdateTeamRequest req;
  if (!Parse(bytes, req)) return;
  if (!Ok(api::OwnId(kTenant, "team.name", req.team().name(), "teams"))) return;
  absl::StatusOr<std::vector<std::string>> fields = api::ParseMask(
      req.team(), req.update_mask(), {"display_name", "upstream_api_key", "rate_limit_per_minute"},
      {"upstream_api_key"});
  if (!Ok(fields)) return;
  if (!Ok(api::ValidateTeamUpdate(req.team(), *fields))) return;
  // What the update writes is a limit (0 would be "unlimited") and a usable key.
  if (std::find(fields->begin(), fields->end(), "rate_limit_per_minute") != fields->end()) {
    Check(req.team().rate_limit_per_minute() >= 1);
  }
  if (std::find(fields->begin(), fields->end(), "upstream_api_key") != fields->end()) {
    Check(!req.team().upstream_api_key().empty());
  }
}

void CreateAccount(std::string_view bytes) {
  v1::CreateAccountRequest req;
  if (!Parse(bytes, req)) return;
  if (!Ok(api::OwnParent(kTenant, req.parent()))) return;
  if (!Ok(api::ValidateAccountId("account_id", req.account_id()))) return;
  if (!Ok(api::ValidateRequestId(req.request_id()))) return;
  if (!Ok(api::ValidateAccountFields(req.account()))) return;
  absl::StatusOr<api::ChildName> team =
      api::ParseChildName("account.team", req.account().team(), "teams");
  if (Ok(team)) {
    Check(api::ChildNameOf(team->tenant, "teams", team->id) == req.account().team());
  }
}

void UpdateAccount(std::string_view bytes) {
  v1::UpdateAccountRequest req;
  if (!Parse(bytes, req)) return;
  if (!Ok(api::OwnId(kTenant, "account.name", req.account().name(), "accounts"))) return;
  if (!Ok(api::ParseMask(req.account(), req.update_mask(),
                         {"display_name", "sends_per_minute", "max_in_flight"}))) {
    return;
  }
  (void)Ok(api::ValidateAccountFields(req.account()));
}

void CreateMediaAsset(std::string_view bytes) {
  v1::CreateMediaAssetRequest req;
  if (!Parse(bytes, req)) return;
  if (!Ok(api::OwnParent(kTenant, req.parent()))) return;
  if (!Ok(api::ValidateRequestId(req.request_id()))) return;
  for (const bool uploaded : {false, true}) {
    absl::StatusOr<store::MediaAsset> asset =
        api::ParseMediaAsset(kTenant, req.media_asset(), uploaded);
    if (!Ok(asset)) continue;
    Check(asset->file_name.size() <= 200);
    Check(uploaded ? !asset->file_name.empty() && asset->source_url.empty()
                   : !asset->source_url.empty());
  }
}

void CreateSegment(std::string_view bytes) {
  v1::CreateSegmentRequest req;
  if (!Parse(bytes, req)) return;
  if (!Ok(api::OwnParent(kTenant, req.parent()))) return;
  if (!Ok(api::ValidateRequestId(req.request_id()))) return;
  absl::StatusOr<store::Segment> segment = api::ParseSegment(kTenant, req.segment());
  if (!Ok(segment)) return;
  Check(api::ParseSegment(kTenant, api::ToProto(*segment)).ok());
}

// An accepted update names its tenant's segment and at least one field. An update checks only
// the fields its mask names, so one refused for a field is refused by a full check too.
void UpdateSegment(std::string_view bytes) {
  v1::UpdateSegmentRequest req;
  if (!Parse(bytes, req)) return;
  absl::StatusOr<api::SegmentUpdate> update = api::ParseSegmentUpdate(kTenant, req);
  if (Ok(update)) {
    Check(update->segment.tenant == kTenant && !update->segment.id.empty() &&
          !update->fields.empty());
    return;
  }
  const std::string refusal(update.status().message());
  if (refusal.starts_with("segment.") && !refusal.starts_with("segment.name")) {
    Check(!api::ValidateSegmentFields(req.segment()).ok());
  }
}

void TopCampaigns(std::string_view bytes) {
  v1::TopCampaignsRequest req;
  if (!Parse(bytes, req)) return;
  if (!Ok(api::OwnParent(kTenant, req.parent()))) return;
  absl::StatusOr<api::TopCampaignsQuery> q = api::ParseTopCampaigns(req, kNow);
  if (!Ok(q)) return;
  // Bounds round up to whole milliseconds: a start before the end in the same millisecond makes
  // an empty range, never an inverted one.
  Check(q->start_ms <= q->end_ms && q->limit >= 1 && q->limit <= 100);
}

void CreateTenantAndKey(std::string_view bytes) {
  v1::CreateTenantRequest req;
  if (Parse(bytes, req) && Ok(api::ValidateSlug("tenant_id", req.tenant_id())) &&
      Ok(api::ValidateRequestId(req.request_id())) &&
      Ok(api::ValidateDisplayName("tenant.display_name", req.tenant().display_name()))) {
    Check(*api::ParseTenantName("name", api::TenantName(req.tenant_id())) == req.tenant_id());
  }
  v1::CreateApiKeyRequest key;
  if (Parse(bytes, key)) {
    absl::StatusOr<std::string> tenant = api::ParseTenantName("parent", key.parent());
    if (Ok(tenant)) Check(api::TenantName(*tenant) == key.parent());
  }
}

constexpr void (*kinds[])(std::string_view) = {
    CreateCampaign, UpdateCampaign, ListCampaigns,      CreateTeam,
    UpdateTeam,     CreateAccount,  UpdateAccount,      CreateMediaAsset,
    CreateSegment,  TopCampaigns,   CreateTenantAndKey, UpdateSegment,
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Strings that are not UTF-8 are logged by the parser; the run's output stays readable.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view message(reinterpret_cast<const char*>(data + 1), size - 1);
  kinds[data[0] % std::size(kinds)](message);
  return 0;
}
