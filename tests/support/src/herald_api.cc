#include <chrono>
#include <future>

#include <absl/status/status.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/client_callback.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald::testing {
namespace {

// `step` failed with `status`: the same code, the step named in the message.
absl::Status Failed(std::string_view step, const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      StrCat(step, ": ", status.error_message()));
}

// One call of a generic stub: an empty message written and the writes closed, every answer
// read and dropped, until the call ends.
class EmptyRequestCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  grpc::Status Run(grpc::GenericStub& stub, const std::string& method,
                   grpc::ClientContext& context) {
    grpc::Slice nothing;
    request_ = grpc::ByteBuffer(&nothing, 1);
    stub.PrepareBidiStreamingCall(&context, method, grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
    return done_.get_future().get();
  }

  void OnReadDone(bool ok) override {
    if (ok) StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override { done_.set_value(status); }

 private:
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::promise<grpc::Status> done_;
};

}  // namespace

grpc::Status CallWithEmptyRequest(const std::shared_ptr<grpc::Channel>& channel,
                                  const std::string& method, grpc::ClientContext& context) {
  grpc::GenericStub stub(channel);
  EmptyRequestCall call;
  return call.Run(stub, method, context);
}

std::unique_ptr<grpc::ClientContext> BearerContext(std::string_view key, absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!key.empty()) ctx->AddMetadata("authorization", StrCat("Bearer ", key));
  ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout));
  return ctx;
}

std::shared_ptr<grpc::Channel> SmallWindowChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

std::string ShortId(std::string_view name) { return std::string(name.substr(name.rfind('/') + 1)); }

absl::StatusOr<std::string> CreateTenant(const std::shared_ptr<grpc::Channel>& channel,
                                         std::string_view admin_key, std::string_view tenant_id,
                                         std::string_view display_name, absl::Duration timeout) {
  auto tenants = v1::TenantService::NewStub(channel);
  v1::CreateTenantRequest req;
  req.set_tenant_id(std::string(tenant_id));
  if (!display_name.empty()) req.mutable_tenant()->set_display_name(std::string(display_name));
  v1::Tenant tenant;
  grpc::Status s = tenants->CreateTenant(BearerContext(admin_key, timeout).get(), req, &tenant);
  if (!s.ok()) return Failed(StrCat("CreateTenant ", tenant_id), s);
  v1::CreateApiKeyRequest kreq;
  kreq.set_parent(tenant.name());
  v1::CreateApiKeyResponse key;
  s = tenants->CreateApiKey(BearerContext(admin_key, timeout).get(), kreq, &key);
  if (!s.ok()) return Failed(StrCat("CreateApiKey ", tenant.name()), s);
  if (key.secret().empty()) {
    return absl::InternalError(StrCat("CreateApiKey ", tenant.name(), ": no secret returned"));
  }
  return key.secret();
}

absl::StatusOr<TeamWithAccounts> CreateTeamWithAccounts(
    const std::shared_ptr<grpc::Channel>& channel, std::string_view key, std::string_view tenant_id,
    const TeamSpec& spec, absl::Duration timeout) {
  auto accounts = v1::AccountService::NewStub(channel);
  v1::CreateTeamRequest treq;
  treq.set_parent(StrCat("tenants/", tenant_id));
  treq.set_team_id(spec.team_id);
  treq.mutable_team()->set_upstream_api_key(StrCat("sim-key-", spec.sim_team));
  treq.mutable_team()->set_rate_limit_per_minute(spec.rate_limit_per_minute);
  treq.mutable_team()->set_burst(spec.burst);
  treq.mutable_team()->set_webhook_signing_secret(spec.webhook_signing_secret);
  TeamWithAccounts out;
  grpc::Status s = accounts->CreateTeam(BearerContext(key, timeout).get(), treq, &out.team);
  if (!s.ok()) return Failed(StrCat("CreateTeam ", treq.parent(), "/teams/", spec.team_id), s);
  v1::SyncAccountsRequest sreq;
  sreq.set_team(out.team.name());
  v1::SyncAccountsResponse synced;
  s = accounts->SyncAccounts(BearerContext(key, timeout).get(), sreq, &synced);
  if (!s.ok()) return Failed(StrCat("SyncAccounts ", out.team.name()), s);
  for (const v1::Account& a : synced.created()) out.accounts.push_back(a.name());
  return out;
}

absl::StatusOr<std::string> CreateMediaAsset(const std::shared_ptr<grpc::Channel>& channel,
                                             std::string_view key, std::string_view tenant_id,
                                             v1::MediaAsset::Type type,
                                             std::string_view source_url) {
  v1::CreateMediaAssetRequest req;
  req.set_parent(StrCat("tenants/", tenant_id));
  req.mutable_media_asset()->set_type(type);
  req.mutable_media_asset()->set_source_url(std::string(source_url));
  v1::MediaAsset asset;
  grpc::Status s =
      v1::MediaService::NewStub(channel)->CreateMediaAsset(BearerContext(key).get(), req, &asset);
  if (!s.ok()) return Failed(StrCat("CreateMediaAsset ", source_url), s);
  return asset.name();
}

v1::CreateCampaignRequest CampaignToFans(std::string_view tenant_id,
                                         const std::vector<std::string>& accounts,
                                         std::string_view text, int64_t price_cents,
                                         std::string_view media) {
  v1::CreateCampaignRequest req;
  req.set_parent(StrCat("tenants/", tenant_id));
  v1::Campaign* c = req.mutable_campaign();
  c->mutable_content()->set_text(std::string(text));
  c->mutable_content()->set_price_cents(price_cents);
  c->mutable_content()->add_media(std::string(media));
  for (const auto& a : accounts) {
    v1::AccountTarget* t = c->add_targets();
    t->set_account(a);
    t->add_user_lists("fans");
  }
  return req;
}

namespace {

// A custom method of CampaignService on campaign `name` that answers the campaign.
template <typename Request>
absl::StatusOr<v1::Campaign> OnCampaign(const std::shared_ptr<grpc::Channel>& channel,
                                        std::string_view key, std::string_view name,
                                        std::string_view step,
                                        grpc::Status (v1::CampaignService::Stub::*method)(
                                            grpc::ClientContext*, const Request&, v1::Campaign*)) {
  Request req;
  req.set_name(std::string(name));
  v1::Campaign answer;
  auto stub = v1::CampaignService::NewStub(channel);
  grpc::Status s = ((*stub).*method)(BearerContext(key).get(), req, &answer);
  if (!s.ok()) return Failed(step, s);
  return answer;
}

}  // namespace

absl::StatusOr<v1::Campaign> PauseCampaign(const std::shared_ptr<grpc::Channel>& channel,
                                           std::string_view key, std::string_view name) {
  return OnCampaign<v1::PauseCampaignRequest>(channel, key, name, "PauseCampaign",
                                              &v1::CampaignService::Stub::PauseCampaign);
}

absl::StatusOr<v1::Campaign> ResumeCampaign(const std::shared_ptr<grpc::Channel>& channel,
                                            std::string_view key, std::string_view name) {
  return OnCampaign<v1::ResumeCampaignRequest>(channel, key, name, "ResumeCampaign",
                                               &v1::CampaignService::Stub::ResumeCampaign);
}

}  // namespace herald::testing
