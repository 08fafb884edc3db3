// The gRPC services: per RPC, Parse (convert.h) → campaign::Service → ToProto.
#include <deque>
#include <mutex>

#include <absl/strings/numbers.h>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <google/protobuf/util/field_mask_util.h>

#include <herald/api/api.h>
#include <herald/campaign/analytics.h>
#include <herald/campaign/workflow.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/store/audit.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/audience.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

#include "automations.h"
#include "bridge.h"
#include "convert.h"
#include "events.h"
#include "names.h"
#include "stream.h"

namespace herald::api {
namespace {

namespace asio = boost::asio;
using campaign::Caller;
using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

// Pages over a sorted vector by the id of the last element returned.
template <typename T, typename IdOf>
absl::StatusOr<std::pair<std::vector<T>, std::string>> Page(std::vector<T> all, IdOf id_of,
                                                            int32_t page_size,
                                                            const std::string& token,
                                                            uint64_t fingerprint) {
  HERALD_ASSIGN_OR_RETURN(int size, ParsePageSize(page_size, 100, 1000));
  HERALD_ASSIGN_OR_RETURN(std::string after, DecodePageToken(token, fingerprint));
  std::vector<T> out;
  std::string next;
  for (T& item : all) {
    if (!after.empty() && id_of(item) <= after) continue;
    if (static_cast<int>(out.size()) == size) {
      next = EncodePageToken(id_of(out.back()), fingerprint);
      break;
    }
    out.push_back(std::move(item));
  }
  return std::make_pair(std::move(out), std::move(next));
}

uint64_t Fingerprint(std::string_view s) { return std::hash<std::string_view>{}(s); }

// ---------------------------------------------------------------------------------------------

class TenantServiceImpl final : public v1::TenantService::CallbackService {
 public:
  explicit TenantServiceImpl(Bridge& bridge) : bridge_(bridge), service_(bridge.service()) {}

  ServerUnaryReactor* CreateTenant(CallbackServerContext* ctx, const v1::CreateTenantRequest* req,
                                   v1::Tenant* resp) override {
    return bridge_.Unary(
        ctx, "CreateTenant", resp, Access::kAdmin, [this, req](const Caller& c) -> Op<v1::Tenant> {
          HERALD_CO_RETURN_IF_ERROR(ValidateSlug("tenant_id", req->tenant_id()));
          HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(req->request_id()));
          HERALD_CO_RETURN_IF_ERROR(
              ValidateDisplayName("tenant.display_name", req->tenant().display_name()));
          HERALD_CO_ASSIGN_OR_RETURN(
              const int32_t weight,
              ParseSchedulingWeight("tenant.scheduling_weight", req->tenant().scheduling_weight(),
                                    /*zero_means_default=*/true));
          store::Tenant tenant{.id = req->tenant_id(),
                               .display_name = req->tenant().display_name(),
                               .scheduling_weight = weight};
          HERALD_CO_ASSIGN_OR_RETURN(
              auto created, co_await service_.CreateTenant(std::move(tenant), req->request_id()));
          if (!created.replayed) {
            const std::string resource = StrCat("tenants/", created.value.id);
            co_await service_.Audit(c, "tenant.create", created.value.id, resource);
          }
          co_return ToProto(created.value);
        });
  }

  ServerUnaryReactor* UpdateTenant(CallbackServerContext* ctx, const v1::UpdateTenantRequest* req,
                                   v1::Tenant* resp) override {
    return bridge_.Unary(
        ctx, "UpdateTenant", resp, Access::kAdmin, [this, req](const Caller& c) -> Op<v1::Tenant> {
          HERALD_CO_ASSIGN_OR_RETURN(TenantUpdate update, ParseTenantUpdate(*req));
          const std::string summary = StrCat("updated ", StrJoin(update.fields, ", "));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto t,
              co_await service_.UpdateTenant(std::move(update.tenant), std::move(update.fields)));
          co_await service_.Audit(c, "tenant.update", t.id, StrCat("tenants/", t.id), summary);
          co_return ToProto(t);
        });
  }

  ServerUnaryReactor* GetTenant(CallbackServerContext* ctx, const v1::GetTenantRequest* req,
                                v1::Tenant* resp) override {
    return bridge_.Unary(
        ctx, "GetTenant", resp, Access::kAdmin, [this, req](const Caller&) -> Op<v1::Tenant> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, ParseTenantName("name", req->name()));
          HERALD_CO_ASSIGN_OR_RETURN(auto t, co_await service_.GetTenant(id));
          co_return ToProto(t);
        });
  }

  ServerUnaryReactor* ListTenants(CallbackServerContext* ctx, const v1::ListTenantsRequest* req,
                                  v1::ListTenantsResponse* resp) override {
    return bridge_.Unary(ctx, "ListTenants", resp, Access::kAdmin,
                         [this, req](const Caller&) -> Op<v1::ListTenantsResponse> {
                           HERALD_CO_ASSIGN_OR_RETURN(auto all, co_await service_.ListTenants());
                           HERALD_CO_ASSIGN_OR_RETURN(
                               auto page,
                               Page(
                                   std::move(all), [](const store::Tenant& t) { return t.id; },
                                   req->page_size(), req->page_token(), Fingerprint("tenants")));
                           v1::ListTenantsResponse out;
                           for (const auto& t : page.first) *out.add_tenants() = ToProto(t);
                           out.set_next_page_token(page.second);
                           co_return out;
                         });
  }

  ServerUnaryReactor* CreateApiKey(CallbackServerContext* ctx, const v1::CreateApiKeyRequest* req,
                                   v1::CreateApiKeyResponse* resp) override {
    return bridge_.Unary(
        ctx, "CreateApiKey", resp, Access::kAdmin,
        [this, req](const Caller& c) -> Op<v1::CreateApiKeyResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string tenant, ParseTenantName("parent", req->parent()));
          HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(req->request_id()));
          HERALD_CO_RETURN_IF_ERROR(
              ValidateDisplayName("api_key.display_name", req->api_key().display_name()));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto key, co_await service_.CreateApiKey(tenant, req->api_key().display_name(),
                                                       req->request_id()));
          if (!key.second.empty()) {  // not a replay: a new key with its secret
            const std::string resource = StrCat("tenants/", tenant, "/apiKeys/", key.first.id);
            co_await service_.Audit(c, "api_key.create", tenant, resource, key.first.display_name);
          }
          v1::CreateApiKeyResponse out;
          *out.mutable_api_key() = ToProto(key.first);
          out.set_secret(key.second);
          co_return out;
        });
  }

  ServerUnaryReactor* ListApiKeys(CallbackServerContext* ctx, const v1::ListApiKeysRequest* req,
                                  v1::ListApiKeysResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListApiKeys", resp, Access::kAdmin,
        [this, req](const Caller&) -> Op<v1::ListApiKeysResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string tenant, ParseTenantName("parent", req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(auto keys, co_await service_.ListApiKeys(tenant));
          v1::ListApiKeysResponse out;
          for (const auto& k : keys) *out.add_api_keys() = ToProto(k);
          co_return out;
        });
  }

  ServerUnaryReactor* RevokeApiKey(CallbackServerContext* ctx, const v1::RevokeApiKeyRequest* req,
                                   v1::ApiKey* resp) override {
    return bridge_.Unary(
        ctx, "RevokeApiKey", resp, Access::kAdmin, [this, req](const Caller& c) -> Op<v1::ApiKey> {
          HERALD_CO_ASSIGN_OR_RETURN(ChildName n, ParseChildName("name", req->name(), "apiKeys"));
          HERALD_CO_ASSIGN_OR_RETURN(auto k, co_await service_.RevokeApiKey(n.tenant, n.id));
          const std::string resource = req->name();
          co_await service_.Audit(c, "api_key.revoke", n.tenant, resource);
          co_return ToProto(k);
        });
  }

  ServerUnaryReactor* ListAuditEvents(CallbackServerContext* ctx,
                                      const v1::ListAuditEventsRequest* req,
                                      v1::ListAuditEventsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListAuditEvents", resp, Access::kAdmin,
        [this, req](const Caller&) -> Op<v1::ListAuditEventsResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(store::AuditQuery query, ParseAuditQuery(*req));
          HERALD_CO_ASSIGN_OR_RETURN(store::AuditPage page,
                                     co_await service_.ListAuditEvents(std::move(query)));
          co_return ToProto(page);
        });
  }

  ServerUnaryReactor* RotateEncryptionKey(CallbackServerContext* ctx,
                                          const v1::RotateEncryptionKeyRequest*,
                                          v1::RotateEncryptionKeyResponse* resp) override {
    return bridge_.Unary(ctx, "RotateEncryptionKey", resp, Access::kAdmin,
                         [this](const Caller& c) -> Op<v1::RotateEncryptionKeyResponse> {
                           HERALD_CO_ASSIGN_OR_RETURN(campaign::Service::Rotation rotation,
                                                      co_await service_.RotateEncryptionKey());
                           const std::string detail =
                               StrCat(rotation.resealed, " secrets resealed over ", rotation.teams,
                                      " teams, ", rotation.unreadable.size(), " teams unreadable");
                           co_await service_.Audit(c, "encryption_key.rotate", "", rotation.key_id,
                                                   detail);
                           co_return ToProto(rotation);
                         });
  }

 private:
  Bridge& bridge_;
  campaign::Service& service_;
};

// ---------------------------------------------------------------------------------------------

class AccountServiceImpl final : public v1::AccountService::CallbackService {
 public:
  explicit AccountServiceImpl(Bridge& bridge) : bridge_(bridge), service_(bridge.service()) {}

  ServerUnaryReactor* CreateTeam(CallbackServerContext* ctx, const v1::CreateTeamRequest* req,
                                 v1::Team* resp) override {
    return bridge_.Unary(
        ctx, "CreateTeam", resp, Access::kTenant, [this, req](const Caller& c) -> Op<v1::Team> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_RETURN_IF_ERROR(ValidateSlug("team_id", req->team_id()));
          HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(req->request_id()));
          HERALD_CO_RETURN_IF_ERROR(ValidateTeamFields(req->team(), /*create=*/true));
          store::Team team{.tenant = c.tenant,
                           .id = req->team_id(),
                           .display_name = req->team().display_name(),
                           .rate_limit_per_minute = req->team().rate_limit_per_minute() == 0
                                                        ? 1000
                                                        : req->team().rate_limit_per_minute()};
          HERALD_CO_ASSIGN_OR_RETURN(
              auto created,
              co_await service_.CreateTeam(std::move(team), req->team().upstream_api_key(),
                                           req->request_id()));
          if (!created.replayed) {
            const std::string resource = StrCat("tenants/", c.tenant, "/teams/", created.value.id);
            co_await service_.Audit(c, "team.create", c.tenant, resource, "upstream API key set");
          }
          co_return ToProto(created.value);
        });
  }

  ServerUnaryReactor* GetTeam(CallbackServerContext* ctx, const v1::GetTeamRequest* req,
                              v1::Team* resp) override {
    return bridge_.Unary(
        ctx, "GetTeam", resp, Access::kTenant, [this, req](const Caller& c) -> Op<v1::Team> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", req->name(), "teams"));
          HERALD_CO_ASSIGN_OR_RETURN(auto t, co_await service_.GetTeam(c.tenant, id));
          co_return ToProto(t);
        });
  }

  ServerUnaryReactor* ListTeams(CallbackServerContext* ctx, const v1::ListTeamsRequest* req,
                                v1::ListTeamsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListTeams", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListTeamsResponse> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(auto all, co_await service_.ListTeams(c.tenant));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto page, Page(
                             std::move(all), [](const store::Team& t) { return t.id; },
                             req->page_size(), req->page_token(), Fingerprint("teams")));
          v1::ListTeamsResponse out;
          for (const auto& t : page.first) *out.add_teams() = ToProto(t);
          out.set_next_page_token(page.second);
          co_return out;
        });
  }

  ServerUnaryReactor* UpdateTeam(CallbackServerContext* ctx, const v1::UpdateTeamRequest* req,
                                 v1::Team* resp) override {
    return bridge_.Unary(
        ctx, "UpdateTeam", resp, Access::kTenant, [this, req](const Caller& c) -> Op<v1::Team> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "team.name", req->team().name(), "teams"));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto fields, ParseMask(req->update_mask(), {"display_name", "upstream_api_key",
                                                          "rate_limit_per_minute"}));
          HERALD_CO_RETURN_IF_ERROR(ValidateTeamUpdate(req->team(), fields));
          const bool new_key =
              std::find(fields.begin(), fields.end(), "upstream_api_key") != fields.end();
          store::Team update{.tenant = c.tenant,
                             .id = id,
                             .display_name = req->team().display_name(),
                             .rate_limit_per_minute = req->team().rate_limit_per_minute()};
          std::optional<std::string> api_key;
          if (new_key) api_key = req->team().upstream_api_key();
          HERALD_CO_ASSIGN_OR_RETURN(
              auto t, co_await service_.UpdateTeam(std::move(update), std::move(api_key), fields));
          if (new_key) {
            const std::string resource = StrCat("tenants/", c.tenant, "/teams/", id);
            co_await service_.Audit(c, "team.update_key", c.tenant, resource,
                                    "upstream API key replaced");
          }
          co_return ToProto(t);
        });
  }

  ServerUnaryReactor* DeleteTeam(CallbackServerContext* ctx, const v1::DeleteTeamRequest* req,
                                 v1::DeleteTeamResponse* resp) override {
    return bridge_.Unary(
        ctx, "DeleteTeam", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::DeleteTeamResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", req->name(), "teams"));
          HERALD_CO_RETURN_IF_ERROR((co_await service_.DeleteTeam(c.tenant, id)).status());
          const std::string resource = StrCat("tenants/", c.tenant, "/teams/", id);
          co_await service_.Audit(c, "team.delete", c.tenant, resource);
          co_return v1::DeleteTeamResponse();
        });
  }

  ServerUnaryReactor* ResumeTeam(CallbackServerContext* ctx, const v1::ResumeTeamRequest* req,
                                 v1::Team* resp) override {
    return bridge_.Unary(
        ctx, "ResumeTeam", resp, Access::kTenant, [this, req](const Caller& c) -> Op<v1::Team> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", req->name(), "teams"));
          HERALD_CO_ASSIGN_OR_RETURN(auto t, co_await service_.ResumeTeam(c.tenant, id));
          co_return ToProto(t);
        });
  }

  ServerUnaryReactor* RegisterTeamWebhook(CallbackServerContext* ctx,
                                          const v1::RegisterTeamWebhookRequest* req,
                                          v1::Team* resp) override {
    return bridge_.Unary(
        ctx, "RegisterTeamWebhook", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Team> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", req->name(), "teams"));
          HERALD_CO_ASSIGN_OR_RETURN(auto t, co_await service_.RegisterTeamWebhook(c.tenant, id));
          const std::string resource = StrCat("tenants/", c.tenant, "/teams/", id);
          co_await service_.Audit(c, "team.webhook_register", c.tenant, resource,
                                  "webhook signing secret rotated");
          co_return ToProto(t);
        });
  }

  ServerUnaryReactor* CreateAccount(CallbackServerContext* ctx, const v1::CreateAccountRequest* req,
                                    v1::Account* resp) override {
    return bridge_.Unary(
        ctx, "CreateAccount", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Account> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_RETURN_IF_ERROR(ValidateAccountId("account_id", req->account_id()));
          HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(req->request_id()));
          HERALD_CO_RETURN_IF_ERROR(ValidateAccountFields(req->account()));
          auto team = ParseChildName("account.team", req->account().team(), "teams");
          if (!team.ok()) co_return team.status();
          if (team->tenant != c.tenant) {
            co_return absl::InvalidArgumentError(
                StrCat("account.team: '", req->account().team(), "' not found"));
          }
          store::Account account{.tenant = c.tenant,
                                 .id = req->account_id(),
                                 .team = team->id,
                                 .display_name = req->account().display_name(),
                                 .sends_per_minute = req->account().sends_per_minute(),
                                 .max_in_flight = req->account().max_in_flight()};
          HERALD_CO_ASSIGN_OR_RETURN(
              auto created, co_await service_.CreateAccount(std::move(account), req->request_id()));
          co_return ToProto(created.value);
        });
  }

  ServerUnaryReactor* GetAccount(CallbackServerContext* ctx, const v1::GetAccountRequest* req,
                                 v1::Account* resp) override {
    return bridge_.Unary(
        ctx, "GetAccount", resp, Access::kTenant, [this, req](const Caller& c) -> Op<v1::Account> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "name", req->name(), "accounts"));
          HERALD_CO_ASSIGN_OR_RETURN(auto a, co_await service_.GetAccount(c.tenant, id));
          co_return ToProto(a);
        });
  }

  ServerUnaryReactor* ListAccounts(CallbackServerContext* ctx, const v1::ListAccountsRequest* req,
                                   v1::ListAccountsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListAccounts", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListAccountsResponse> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          std::string team;
          if (!req->team().empty()) {
            HERALD_CO_ASSIGN_OR_RETURN(team, OwnId(c.tenant, "team", req->team(), "teams"));
          }
          HERALD_CO_ASSIGN_OR_RETURN(auto all, co_await service_.ListAccounts(c.tenant, team));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto page,
              Page(
                  std::move(all), [](const store::Account& a) { return a.id; }, req->page_size(),
                  req->page_token(), Fingerprint(StrCat("accounts/", team))));
          v1::ListAccountsResponse out;
          for (const auto& a : page.first) *out.add_accounts() = ToProto(a);
          out.set_next_page_token(page.second);
          co_return out;
        });
  }

  ServerUnaryReactor* UpdateAccount(CallbackServerContext* ctx, const v1::UpdateAccountRequest* req,
                                    v1::Account* resp) override {
    return bridge_.Unary(
        ctx, "UpdateAccount", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Account> {
          HERALD_CO_ASSIGN_OR_RETURN(
              std::string id, OwnId(c.tenant, "account.name", req->account().name(), "accounts"));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto fields,
              ParseMask(req->update_mask(), {"display_name", "sends_per_minute", "max_in_flight"}));
          HERALD_CO_RETURN_IF_ERROR(ValidateAccountFields(req->account()));
          store::Account update{.tenant = c.tenant,
                                .id = id,
                                .display_name = req->account().display_name(),
                                .sends_per_minute = req->account().sends_per_minute(),
                                .max_in_flight = req->account().max_in_flight()};
          HERALD_CO_ASSIGN_OR_RETURN(auto a,
                                     co_await service_.UpdateAccount(std::move(update), fields));
          co_return ToProto(a);
        });
  }

  ServerUnaryReactor* DeleteAccount(CallbackServerContext* ctx, const v1::DeleteAccountRequest* req,
                                    v1::DeleteAccountResponse* resp) override {
    return bridge_.Unary(
        ctx, "DeleteAccount", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::DeleteAccountResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "name", req->name(), "accounts"));
          HERALD_CO_RETURN_IF_ERROR((co_await service_.DeleteAccount(c.tenant, id)).status());
          co_return v1::DeleteAccountResponse();
        });
  }

  ServerUnaryReactor* PauseAccount(CallbackServerContext* ctx, const v1::PauseAccountRequest* req,
                                   v1::Account* resp) override {
    return SetPaused(ctx, "PauseAccount", req->name(), resp, true);
  }
  ServerUnaryReactor* ResumeAccount(CallbackServerContext* ctx, const v1::ResumeAccountRequest* req,
                                    v1::Account* resp) override {
    return SetPaused(ctx, "ResumeAccount", req->name(), resp, false);
  }

  ServerUnaryReactor* SyncAccounts(CallbackServerContext* ctx, const v1::SyncAccountsRequest* req,
                                   v1::SyncAccountsResponse* resp) override {
    return bridge_.Unary(ctx, "SyncAccounts", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::SyncAccountsResponse> {
                           HERALD_CO_ASSIGN_OR_RETURN(
                               std::string team, OwnId(c.tenant, "team", req->team(), "teams"));
                           HERALD_CO_ASSIGN_OR_RETURN(
                               auto result, co_await service_.SyncAccounts(c.tenant, team));
                           v1::SyncAccountsResponse out;
                           for (const auto& a : result.first) *out.add_created() = ToProto(a);
                           out.set_unchanged(result.second);
                           co_return out;
                         });
  }

 private:
  ServerUnaryReactor* SetPaused(CallbackServerContext* ctx, std::string_view method,
                                const std::string& name, v1::Account* resp, bool paused) {
    return bridge_.Unary(ctx, method, resp, Access::kTenant,
                         [this, name, paused](const Caller& c) -> Op<v1::Account> {
                           HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                                      OwnId(c.tenant, "name", name, "accounts"));
                           HERALD_CO_ASSIGN_OR_RETURN(
                               auto a, co_await service_.SetAccountPaused(c.tenant, id, paused));
                           co_return ToProto(a);
                         });
  }

  Bridge& bridge_;
  campaign::Service& service_;
};

// ---------------------------------------------------------------------------------------------

class MediaServiceImpl final : public v1::MediaService::CallbackService {
 public:
  MediaServiceImpl(Bridge& bridge, int64_t max_bytes)
      : bridge_(bridge), service_(bridge.service()), max_bytes_(max_bytes) {}

  ServerUnaryReactor* CreateMediaAsset(CallbackServerContext* ctx,
                                       const v1::CreateMediaAssetRequest* req,
                                       v1::MediaAsset* resp) override {
    return bridge_.Unary(
        ctx, "CreateMediaAsset", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::MediaAsset> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(req->request_id()));
          HERALD_CO_ASSIGN_OR_RETURN(store::MediaAsset asset,
                                     ParseMediaAsset(c.tenant, req->media_asset(), false));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto created, co_await service_.CreateMediaAsset(std::move(asset), req->request_id(),
                                                               std::nullopt));
          co_return ToProto(created.value);
        });
  }

  grpc::ServerReadReactor<v1::UploadMediaAssetRequest>* UploadMediaAsset(
      CallbackServerContext* ctx, v1::MediaAsset* resp) override {
    return new UploadReactor(this, ctx, resp);
  }

  ServerUnaryReactor* GetMediaAsset(CallbackServerContext* ctx, const v1::GetMediaAssetRequest* req,
                                    v1::MediaAsset* resp) override {
    return bridge_.Unary(
        ctx, "GetMediaAsset", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::MediaAsset> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", req->name(), "media"));
          HERALD_CO_ASSIGN_OR_RETURN(auto m, co_await service_.GetMediaAsset(c.tenant, id));
          co_return ToProto(m);
        });
  }

  ServerUnaryReactor* ListMediaAssets(CallbackServerContext* ctx,
                                      const v1::ListMediaAssetsRequest* req,
                                      v1::ListMediaAssetsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListMediaAssets", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListMediaAssetsResponse> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(auto all, co_await service_.ListMediaAssets(c.tenant));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto page, Page(
                             std::move(all), [](const store::MediaAsset& m) { return m.id; },
                             req->page_size(), req->page_token(), Fingerprint("media")));
          v1::ListMediaAssetsResponse out;
          for (const auto& m : page.first) *out.add_media_assets() = ToProto(m);
          out.set_next_page_token(page.second);
          co_return out;
        });
  }

  ServerUnaryReactor* DeleteMediaAsset(CallbackServerContext* ctx,
                                       const v1::DeleteMediaAssetRequest* req,
                                       v1::DeleteMediaAssetResponse* resp) override {
    return bridge_.Unary(
        ctx, "DeleteMediaAsset", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::DeleteMediaAssetResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", req->name(), "media"));
          HERALD_CO_RETURN_IF_ERROR((co_await service_.DeleteMediaAsset(c.tenant, id)).status());
          co_return v1::DeleteMediaAssetResponse();
        });
  }

 private:
  // Reads the metadata, then chunks up to the limit, then stores the asset through the bridge.
  class UploadReactor final : public grpc::ServerReadReactor<v1::UploadMediaAssetRequest> {
   public:
    UploadReactor(MediaServiceImpl* owner, CallbackServerContext* ctx, v1::MediaAsset* resp)
        : owner_(owner), ctx_(ctx), resp_(resp), bearer_(BearerOf(*ctx)) {
      StartRead(&request_);
    }

    void OnReadDone(bool ok) override {
      if (!ok) {  // the client finished sending
        Store();
        return;
      }
      if (!have_metadata_) {
        if (!request_.has_metadata()) {
          Fail(absl::InvalidArgumentError("the first message must carry metadata"));
          return;
        }
        metadata_ = request_.metadata();
        have_metadata_ = true;
      } else {
        if (!request_.has_chunk() && request_.has_metadata()) {
          Fail(absl::InvalidArgumentError("metadata may only come first"));
          return;
        }
        if (static_cast<int64_t>(bytes_.size() + request_.chunk().size()) > owner_->max_bytes_) {
          Fail(absl::ResourceExhaustedError(
              StrCat("the upload exceeds the limit of ", owner_->max_bytes_, " bytes")));
          return;
        }
        bytes_ += request_.chunk();
      }
      StartRead(&request_);
    }

    void OnDone() override { delete this; }

   private:
    void Fail(const absl::Status& status) { Finish(ToApiStatus(status)); }

    void Store() {
      GateHolder hold(owner_->bridge_.gate());
      if (!hold) return Fail(ShuttingDownError());
      asio::co_spawn(
          owner_->bridge_.executor(),
          [this, hold = std::move(hold)]() -> asio::awaitable<void> {
            absl::Status status = co_await Run();
            Finish(ToApiStatus(status));  // last use of `this`: OnDone may delete it at once
          },
          asio::detached);
    }

    asio::awaitable<absl::Status> Run() {
      if (!have_metadata_) co_return absl::InvalidArgumentError("metadata is required");
      HERALD_CO_ASSIGN_OR_RETURN(Caller c,
                                 co_await owner_->bridge_.Admit(bearer_, Access::kTenant));
      HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, metadata_.parent()));
      HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(metadata_.request_id()));
      if (bytes_.empty()) co_return absl::InvalidArgumentError("chunk: the file is empty");
      HERALD_CO_ASSIGN_OR_RETURN(store::MediaAsset asset,
                                 ParseMediaAsset(c.tenant, metadata_.media_asset(), true));
      HERALD_CO_ASSIGN_OR_RETURN(auto created,
                                 co_await owner_->service_.CreateMediaAsset(
                                     std::move(asset), metadata_.request_id(), std::move(bytes_)));
      *resp_ = ToProto(created.value);
      co_return absl::OkStatus();
    }

    MediaServiceImpl* owner_;
    CallbackServerContext* ctx_;
    v1::MediaAsset* resp_;
    std::string bearer_;
    v1::UploadMediaAssetRequest request_;
    v1::UploadMediaAssetRequest::Metadata metadata_;
    bool have_metadata_ = false;
    std::string bytes_;
  };

  Bridge& bridge_;
  campaign::Service& service_;
  const int64_t max_bytes_;
};

// ---------------------------------------------------------------------------------------------

class CampaignServiceImpl final : public v1::CampaignService::CallbackService {
 public:
  // `analytics` gives WatchCampaign the campaign's figures.
  CampaignServiceImpl(Bridge& bridge, campaign::Analytics& analytics, absl::Duration watch_poll)
      : bridge_(bridge),
        service_(bridge.service()),
        analytics_(analytics),
        watch_poll_(watch_poll) {}

  ServerUnaryReactor* CreateCampaign(CallbackServerContext* ctx,
                                     const v1::CreateCampaignRequest* req,
                                     v1::Campaign* resp) override {
    return bridge_.Unary(
        ctx, "CreateCampaign", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Campaign> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(req->request_id()));
          HERALD_CO_ASSIGN_OR_RETURN(store::Campaign campaign,
                                     ParseCampaign(c.tenant, req->campaign(), absl::Now()));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto view, co_await service_.CreateCampaign(std::move(campaign), req->request_id()));
          co_return ToProto(view);
        });
  }

  ServerUnaryReactor* GetCampaign(CallbackServerContext* ctx, const v1::GetCampaignRequest* req,
                                  v1::Campaign* resp) override {
    return bridge_.Unary(ctx, "GetCampaign", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::Campaign> {
                           HERALD_CO_ASSIGN_OR_RETURN(
                               std::string id, OwnId(c.tenant, "name", req->name(), "campaigns"));
                           HERALD_CO_ASSIGN_OR_RETURN(auto v,
                                                      co_await service_.GetCampaign(c.tenant, id));
                           co_return ToProto(v);
                         });
  }

  ServerUnaryReactor* ListCampaigns(CallbackServerContext* ctx, const v1::ListCampaignsRequest* req,
                                    v1::ListCampaignsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListCampaigns", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListCampaignsResponse> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(int size, ParsePageSize(req->page_size(), 50, 1000));
          std::string filter = StrCat(req->create_time_after().seconds(), "/",
                                      req->create_time_before().seconds(), "/");
          std::set<int> states;
          for (int s : req->states()) {
            if (s == v1::Campaign::STATE_UNSPECIFIED || !v1::Campaign::State_IsValid(s)) {
              co_return absl::InvalidArgumentError("states: unknown state");
            }
            states.insert(s);
          }
          for (int s : states) StrAppend(&filter, s, ",");
          const uint64_t fingerprint = Fingerprint(filter);
          // Campaigns come newest first, ties by id (descending); the token is the position of
          // the last one returned, "create_ms:id".
          HERALD_CO_ASSIGN_OR_RETURN(std::string token,
                                     DecodePageToken(req->page_token(), fingerprint));
          std::optional<int64_t> cursor_ms;
          std::string cursor_id;
          if (!token.empty()) {
            const size_t colon = token.find(':');
            int64_t ms = 0;
            if (colon == std::string::npos ||
                !absl::SimpleAtoi(ToAbsl(std::string_view(token).substr(0, colon)), &ms)) {
              co_return absl::InvalidArgumentError("page_token: malformed");
            }
            cursor_ms = ms;
            cursor_id = token.substr(colon + 1);
          }
          std::optional<double> before;
          // In double: a token's milliseconds are the client's bytes and may be INT64_MAX.
          if (cursor_ms) before = static_cast<double>(*cursor_ms) + 1;
          int64_t after_ms = 0;
          if (req->has_create_time_after()) {
            HERALD_CO_ASSIGN_OR_RETURN(
                after_ms, ParseTimestampMillis("create_time_after", req->create_time_after()));
          }
          if (req->has_create_time_before()) {
            HERALD_CO_ASSIGN_OR_RETURN(
                const int64_t before_ms,
                ParseTimestampMillis("create_time_before", req->create_time_before()));
            const double b = static_cast<double>(before_ms);
            before = before ? std::min(*before, b) : b;
          }
          v1::ListCampaignsResponse out;
          // Filters apply after the index read; keep reading until the page is full.
          while (true) {
            HERALD_CO_ASSIGN_OR_RETURN(auto page,
                                       co_await service_.ListCampaigns(c.tenant, before, size));
            bool full = false, past_range = false;
            for (const auto& v : page.first) {
              const int64_t t = v.campaign.create_time_ms;
              if (cursor_ms &&
                  (t > *cursor_ms || (t == *cursor_ms && v.campaign.id >= cursor_id))) {
                continue;  // returned on an earlier page
              }
              if (t < after_ms) {
                past_range = true;
                break;
              }
              const v1::Campaign proto = ToProto(v);
              if (!states.empty() && !states.contains(proto.state())) continue;
              *out.add_campaigns() = proto;
              if (out.campaigns_size() == size) {
                out.set_next_page_token(
                    EncodePageToken(StrCat(t, ":", v.campaign.id), fingerprint));
                full = true;
                break;
              }
            }
            if (full || past_range || !page.second) break;
            before = page.second;
          }
          co_return out;
        });
  }

  ServerUnaryReactor* UpdateCampaign(CallbackServerContext* ctx,
                                     const v1::UpdateCampaignRequest* req,
                                     v1::Campaign* resp) override {
    return bridge_.Unary(
        ctx, "UpdateCampaign", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Campaign> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "campaign.name",
                                                           req->campaign().name(), "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto fields, ParseMask(req->update_mask(), {"display_name", "content", "content.text",
                                                          "content.price_cents", "content.media",
                                                          "content.previews", "content.locked_text",
                                                          "targets", "send_time", "grace_period"}));
          // Merge the masked fields into the current campaign and check the result whole, with
          // the same rules as a create.
          HERALD_CO_ASSIGN_OR_RETURN(auto current, co_await service_.GetCampaign(c.tenant, id));
          v1::Campaign merged = ToProto(current);
          google::protobuf::FieldMask mask = req->update_mask();
          google::protobuf::util::FieldMaskUtil::MergeOptions options;
          options.set_replace_repeated_fields(true);
          google::protobuf::util::FieldMaskUtil::MergeMessageTo(req->campaign(), mask, options,
                                                                &merged);
          const bool send_time_changed =
              std::find(fields.begin(), fields.end(), "send_time") != fields.end();
          if (!send_time_changed) merged.clear_send_time();
          HERALD_CO_ASSIGN_OR_RETURN(store::Campaign parsed,
                                     ParseCampaign(c.tenant, merged, absl::Now()));
          parsed.id = id;
          if (!send_time_changed) parsed.send_time_ms = current.campaign.send_time_ms;
          HERALD_CO_ASSIGN_OR_RETURN(auto v,
                                     co_await service_.UpdateCampaign(std::move(parsed), fields));
          co_return ToProto(v);
        });
  }

  ServerUnaryReactor* LaunchCampaign(CallbackServerContext* ctx,
                                     const v1::LaunchCampaignRequest* req,
                                     v1::Campaign* resp) override {
    return Simple(ctx, "LaunchCampaign", req->name(), resp, [this](std::string t, std::string id) {
      return service_.LaunchCampaign(std::move(t), std::move(id));
    });
  }

  ServerUnaryReactor* PauseCampaign(CallbackServerContext* ctx, const v1::PauseCampaignRequest* req,
                                    v1::Campaign* resp) override {
    return Simple(ctx, "PauseCampaign", req->name(), resp, [this](std::string t, std::string id) {
      return service_.PauseCampaign(std::move(t), std::move(id));
    });
  }

  ServerUnaryReactor* ResumeCampaign(CallbackServerContext* ctx,
                                     const v1::ResumeCampaignRequest* req,
                                     v1::Campaign* resp) override {
    return Simple(ctx, "ResumeCampaign", req->name(), resp, [this](std::string t, std::string id) {
      return service_.ResumeCampaign(std::move(t), std::move(id));
    });
  }

  ServerUnaryReactor* CancelCampaign(CallbackServerContext* ctx,
                                     const v1::CancelCampaignRequest* req,
                                     v1::CancelCampaignResponse* resp) override {
    return bridge_.Unary(
        ctx, "CancelCampaign", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::CancelCampaignResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "name", req->name(), "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(auto result, co_await service_.CancelCampaign(c.tenant, id));
          const std::string resource = req->name();
          const std::string detail = StrCat(result.not_undone.size(), " deliveries not undone");
          co_await service_.Audit(c, "campaign.cancel", c.tenant, resource, detail);
          v1::CancelCampaignResponse out;
          *out.mutable_campaign() = ToProto(result.campaign);
          for (const auto& d : result.not_undone) *out.add_not_undone() = ToProto(c.tenant, id, d);
          co_return out;
        });
  }

  ServerUnaryReactor* ListDeliveries(CallbackServerContext* ctx,
                                     const v1::ListDeliveriesRequest* req,
                                     v1::ListDeliveriesResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListDeliveries", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListDeliveriesResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "parent", req->parent(), "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(auto all, co_await service_.ListDeliveries(c.tenant, id));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto page, Page(
                             std::move(all), [](const store::Delivery& d) { return d.account; },
                             req->page_size(), req->page_token(), Fingerprint(req->parent())));
          v1::ListDeliveriesResponse out;
          for (const auto& d : page.first) *out.add_deliveries() = ToProto(c.tenant, id, d);
          out.set_next_page_token(page.second);
          co_return out;
        });
  }

  ServerUnaryReactor* SendTestMessage(CallbackServerContext* ctx,
                                      const v1::SendTestMessageRequest* req,
                                      v1::SendTestMessageResponse* resp) override {
    return bridge_.Unary(
        ctx, "SendTestMessage", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::SendTestMessageResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "campaign", req->campaign(), "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(std::string account,
                                     OwnId(c.tenant, "account", req->account(), "accounts"));
          if (req->fan_ids_size() < 1 || req->fan_ids_size() > 10) {
            co_return absl::InvalidArgumentError("fan_ids: give 1-10 fan ids");
          }
          std::vector<int64_t> fans;
          for (int i = 0; i < req->fan_ids_size(); ++i) {
            if (req->fan_ids(i) <= 0) {
              co_return absl::InvalidArgumentError(StrCat("fan_ids[", i, "]: must be > 0"));
            }
            fans.push_back(req->fan_ids(i));
          }
          HERALD_CO_ASSIGN_OR_RETURN(int64_t message, co_await service_.SendTestMessage(
                                                          c.tenant, id, account, std::move(fans)));
          v1::SendTestMessageResponse out;
          out.set_upstream_message_id(message);
          co_return out;
        });
  }

  ServerUnaryReactor* ListUpstreamQueue(CallbackServerContext* ctx,
                                        const v1::ListUpstreamQueueRequest* req,
                                        v1::ListUpstreamQueueResponse* resp) override {
    return bridge_.Unary(ctx, "ListUpstreamQueue", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::ListUpstreamQueueResponse> {
                           HERALD_CO_ASSIGN_OR_RETURN(
                               std::string account,
                               OwnId(c.tenant, "account", req->account(), "accounts"));
                           HERALD_CO_ASSIGN_OR_RETURN(
                               auto items, co_await service_.ListUpstreamQueue(c.tenant, account));
                           v1::ListUpstreamQueueResponse out;
                           for (const auto& e : items) {
                             v1::UpstreamQueueItem* item = out.add_items();
                             item->set_id(e.id);
                             item->set_date(e.date);
                             item->set_is_ready(e.is_ready);
                             item->set_is_done(e.is_done);
                             item->set_is_canceled(e.is_canceled);
                             item->set_has_error(e.has_error);
                             item->set_pending(e.pending);
                             item->set_total(e.total);
                             item->set_can_unsend(e.can_unsend);
                             if (!e.campaign.empty())
                               item->set_campaign(ChildNameOf(c.tenant, "campaigns", e.campaign));
                           }
                           co_return out;
                         });
  }

  grpc::ServerWriteReactor<v1::WatchCampaignResponse>* WatchCampaign(
      CallbackServerContext* ctx, const v1::WatchCampaignRequest* req) override {
    auto* reactor = new WatchReactor(*this, ctx, req->name(), req->follow_revenue());
    reactor->Begin(bridge_);
    return reactor;
  }

 private:
  template <typename Fn>
  ServerUnaryReactor* Simple(CallbackServerContext* ctx, std::string_view method,
                             const std::string& name, v1::Campaign* resp, Fn fn) {
    return bridge_.Unary(
        ctx, method, resp, Access::kTenant, [name, fn](const Caller& c) -> Op<v1::Campaign> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", name, "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(auto v, co_await fn(c.tenant, id));
          co_return ToProto(v);
        });
  }

  // Streams the campaign, its deliveries and its figures: everything first, then, every
  // watch_poll_, the deliveries and the campaign when the campaign's revision moved, and the
  // figures when any of them changed. Ends when the campaign is final (unless follow_revenue:
  // then only when the client goes away), when the client goes away, or with the first failed
  // read.
  class WatchReactor final : public StreamReactor<v1::WatchCampaignResponse> {
   public:
    WatchReactor(CampaignServiceImpl& owner, CallbackServerContext* ctx, std::string name,
                 bool follow_revenue)
        : owner_(owner),
          bearer_(BearerOf(*ctx)),
          name_(std::move(name)),
          follow_revenue_(follow_revenue),
          timer_(owner.bridge_.executor()) {}

   private:
    asio::awaitable<absl::Status> Run() override {
      HERALD_CO_ASSIGN_OR_RETURN(Caller c, co_await owner_.bridge_.Admit(bearer_, Access::kTenant));
      HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", name_, "campaigns"));
      std::map<std::string, int64_t> sent;  // delivery -> last update time sent
      int64_t revision = -1;
      std::optional<campaign::CampaignFigures> figures_sent;
      while (true) {
        if (cancelled()) co_return absl::CancelledError("the client went away");
        std::vector<v1::WatchCampaignResponse> batch;
        bool ended = false;
        HERALD_CO_ASSIGN_OR_RETURN(int64_t now_revision,
                                   co_await owner_.service_.CampaignRevision(c.tenant, id));
        if (now_revision != revision) {
          revision = now_revision;
          HERALD_CO_ASSIGN_OR_RETURN(auto view, co_await owner_.service_.GetCampaign(c.tenant, id));
          HERALD_CO_ASSIGN_OR_RETURN(auto deliveries,
                                     co_await owner_.service_.ListDeliveries(c.tenant, id));
          for (const auto& d : deliveries) {
            auto& last = sent[d.account];
            if (last != 0 && last == d.update_time_ms + 1) continue;
            last = d.update_time_ms + 1;
            v1::WatchCampaignResponse r;
            *r.mutable_delivery() = ToProto(c.tenant, id, d);
            batch.push_back(std::move(r));
          }
          v1::WatchCampaignResponse r;
          *r.mutable_campaign() = ToProto(view);
          batch.push_back(std::move(r));
          const bool unsending =
              std::any_of(deliveries.begin(), deliveries.end(), [](const store::Delivery& d) {
                return d.cancel_outcome == campaign::kUnsendPending;
              });
          ended = campaign::IsFinal(view.state) && !unsending;
        }
        // Read after the campaign, so the last figures of a stream that ends are at least as
        // recent as its final state.
        HERALD_CO_ASSIGN_OR_RETURN(campaign::CampaignFigures figures,
                                   co_await owner_.analytics_.CampaignStats(c.tenant, id));
        if (!figures_sent || *figures_sent != figures) {
          v1::WatchCampaignResponse r;
          *r.mutable_stats() = ToProto(c.tenant, id, figures);
          batch.push_back(std::move(r));
          figures_sent = std::move(figures);
        }
        Push(batch);
        if (ended && !follow_revenue_) co_return absl::OkStatus();
        timer_.expires_after(absl::ToChronoNanoseconds(owner_.watch_poll_));
        boost::system::error_code ec;
        co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }

    CampaignServiceImpl& owner_;
    const std::string bearer_;
    const std::string name_;
    const bool follow_revenue_;
    asio::steady_timer timer_;
  };

  Bridge& bridge_;
  campaign::Service& service_;
  campaign::Analytics& analytics_;
  const absl::Duration watch_poll_;
};

class AudienceServiceImpl final : public v1::AudienceService::CallbackService {
 public:
  explicit AudienceServiceImpl(Bridge& bridge) : bridge_(bridge), service_(bridge.service()) {}

  ServerUnaryReactor* ListUserLists(CallbackServerContext* ctx, const v1::ListUserListsRequest* req,
                                    v1::ListUserListsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListUserLists", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListUserListsResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string account,
                                     OwnId(c.tenant, "account", req->account(), "accounts"));
          if (req->page_size() != 0 && (req->page_size() < 10 || req->page_size() > 50)) {
            co_return absl::InvalidArgumentError("page_size: 10-50 (or 0 for 50)");
          }
          const int limit = req->page_size() == 0 ? 50 : req->page_size();
          const uint64_t fingerprint = Fingerprint(StrCat("lists/", req->account()));
          HERALD_CO_ASSIGN_OR_RETURN(std::string after,
                                     DecodePageToken(req->page_token(), fingerprint));
          int offset = 0;
          if (!after.empty() && !absl::SimpleAtoi(after, &offset)) {
            co_return absl::InvalidArgumentError("page_token: malformed");
          }
          HERALD_CO_ASSIGN_OR_RETURN(
              auto page, co_await service_.ListUserLists(c.tenant, account, offset, limit));
          v1::ListUserListsResponse out;
          for (const auto& l : page.first) {
            v1::UserList* list = out.add_user_lists();
            list->set_id(l.id);
            list->set_display_name(l.name);
            list->set_type(l.type);
            list->set_fan_count(l.users_count);
          }
          if (page.second) {
            out.set_next_page_token(EncodePageToken(
                std::to_string(offset + static_cast<int>(page.first.size())), fingerprint));
          }
          co_return out;
        });
  }

  ServerUnaryReactor* CreateUserList(CallbackServerContext* ctx,
                                     const v1::CreateUserListRequest* req,
                                     v1::UserList* resp) override {
    return bridge_.Unary(
        ctx, "CreateUserList", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::UserList> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string account,
                                     OwnId(c.tenant, "account", req->account(), "accounts"));
          if (req->display_name().empty() || req->display_name().size() > 64) {
            co_return absl::InvalidArgumentError("display_name: 1-64 characters");
          }
          HERALD_CO_ASSIGN_OR_RETURN(
              auto l, co_await service_.CreateUserList(c.tenant, account, req->display_name()));
          v1::UserList out;
          out.set_id(l.id);
          out.set_display_name(l.name);
          out.set_type(l.type);
          out.set_fan_count(l.users_count);
          co_return out;
        });
  }

  ServerUnaryReactor* AddFansToUserList(CallbackServerContext* ctx,
                                        const v1::AddFansToUserListRequest* req,
                                        v1::AddFansToUserListResponse* resp) override {
    return bridge_.Unary(
        ctx, "AddFansToUserList", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::AddFansToUserListResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string account,
                                     OwnId(c.tenant, "account", req->account(), "accounts"));
          int64_t list_number = 0;
          if (!absl::SimpleAtoi(req->user_list_id(), &list_number) || list_number <= 0) {
            co_return absl::InvalidArgumentError(
                "user_list_id: a custom list's numeric id is required");
          }
          if (req->fan_ids_size() < 1 || req->fan_ids_size() > 10000) {
            co_return absl::InvalidArgumentError("fan_ids: give 1-10000 fan ids");
          }
          std::vector<int64_t> fans;
          for (int i = 0; i < req->fan_ids_size(); ++i) {
            if (req->fan_ids(i) <= 0) {
              co_return absl::InvalidArgumentError(StrCat("fan_ids[", i, "]: must be > 0"));
            }
            fans.push_back(req->fan_ids(i));
          }
          HERALD_CO_ASSIGN_OR_RETURN(auto added,
                                     co_await service_.AddFansToUserList(
                                         c.tenant, account, req->user_list_id(), std::move(fans)));
          v1::AddFansToUserListResponse out;
          out.set_batches(added.first);
          out.set_fans_added(added.second);
          co_return out;
        });
  }

  ServerUnaryReactor* CreateSegment(CallbackServerContext* ctx, const v1::CreateSegmentRequest* req,
                                    v1::Segment* resp) override {
    return bridge_.Unary(
        ctx, "CreateSegment", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Segment> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(req->request_id()));
          HERALD_CO_ASSIGN_OR_RETURN(store::Segment segment,
                                     ParseSegment(c.tenant, req->segment()));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto created, co_await service_.CreateSegment(std::move(segment), req->request_id()));
          co_return ToProto(created.value);
        });
  }

  ServerUnaryReactor* GetSegment(CallbackServerContext* ctx, const v1::GetSegmentRequest* req,
                                 v1::Segment* resp) override {
    return bridge_.Unary(
        ctx, "GetSegment", resp, Access::kTenant, [this, req](const Caller& c) -> Op<v1::Segment> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "name", req->name(), "segments"));
          HERALD_CO_ASSIGN_OR_RETURN(auto s, co_await service_.GetSegment(c.tenant, id));
          co_return ToProto(s);
        });
  }

  ServerUnaryReactor* ListSegments(CallbackServerContext* ctx, const v1::ListSegmentsRequest* req,
                                   v1::ListSegmentsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListSegments", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListSegmentsResponse> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(auto all, co_await service_.ListSegments(c.tenant));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto page, Page(
                             std::move(all), [](const store::Segment& s) { return s.id; },
                             req->page_size(), req->page_token(), Fingerprint("segments")));
          v1::ListSegmentsResponse out;
          for (const auto& s : page.first) *out.add_segments() = ToProto(s);
          out.set_next_page_token(page.second);
          co_return out;
        });
  }

  ServerUnaryReactor* DeleteSegment(CallbackServerContext* ctx, const v1::DeleteSegmentRequest* req,
                                    v1::DeleteSegmentResponse* resp) override {
    return bridge_.Unary(ctx, "DeleteSegment", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::DeleteSegmentResponse> {
                           HERALD_CO_ASSIGN_OR_RETURN(
                               std::string id, OwnId(c.tenant, "name", req->name(), "segments"));
                           auto deleted = co_await service_.DeleteSegment(c.tenant, id);
                           HERALD_CO_RETURN_IF_ERROR(deleted.status());
                           co_return v1::DeleteSegmentResponse();
                         });
  }

 private:
  Bridge& bridge_;
  campaign::Service& service_;
};

// ---------------------------------------------------------------------------------------------

class AnalyticsServiceImpl final : public v1::AnalyticsService::CallbackService {
 public:
  AnalyticsServiceImpl(Bridge& bridge, campaign::Analytics& analytics)
      : bridge_(bridge), analytics_(analytics) {}

  ServerUnaryReactor* GetCampaignStats(CallbackServerContext* ctx,
                                       const v1::GetCampaignStatsRequest* req,
                                       v1::CampaignStats* resp) override {
    return bridge_.Unary(
        ctx, "GetCampaignStats", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::CampaignStats> {
          std::string_view name = req->name();
          if (!name.ends_with("/stats")) {
            co_return absl::InvalidArgumentError(
                "name: must be \"tenants/{tenant}/campaigns/{campaign}/stats\"");
          }
          name.remove_suffix(std::string_view("/stats").size());
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", name, "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(campaign::CampaignFigures figures,
                                     co_await analytics_.CampaignStats(c.tenant, id));
          co_return ToProto(c.tenant, id, figures);
        });
  }

  ServerUnaryReactor* TopCampaigns(CallbackServerContext* ctx, const v1::TopCampaignsRequest* req,
                                   v1::TopCampaignsResponse* resp) override {
    return bridge_.Unary(
        ctx, "TopCampaigns", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::TopCampaignsResponse> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(TopCampaignsQuery q, ParseTopCampaigns(*req, absl::Now()));
          HERALD_CO_ASSIGN_OR_RETURN(
              std::vector<campaign::RankedCampaign> ranked,
              co_await analytics_.TopCampaigns(c.tenant, q.start_ms, q.end_ms, q.limit));
          v1::TopCampaignsResponse out;
          for (const campaign::RankedCampaign& r : ranked) {
            v1::RankedCampaign* p = out.add_campaigns();
            p->set_campaign(ChildNameOf(c.tenant, "campaigns", r.campaign));
            p->set_display_name(r.display_name);
            if (r.create_time_ms != 0) SetTime(r.create_time_ms, p->mutable_create_time());
            *p->mutable_stats() = ToProto(c.tenant, r.campaign, r.figures);
          }
          co_return out;
        });
  }

  ServerUnaryReactor* GetAccountOverview(CallbackServerContext* ctx,
                                         const v1::GetAccountOverviewRequest* req,
                                         v1::AccountOverview* resp) override {
    return bridge_.Unary(ctx, "GetAccountOverview", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::AccountOverview> {
                           HERALD_CO_ASSIGN_OR_RETURN(
                               std::string id, OwnId(c.tenant, "name", req->name(), "accounts"));
                           HERALD_CO_ASSIGN_OR_RETURN(
                               webhooks::AccountTotals t,
                               co_await analytics_.AccountOverview(c.tenant, id));
                           v1::AccountOverview out;
                           out.set_name(ChildNameOf(c.tenant, "accounts", id));
                           out.set_sent(t.sent);
                           out.set_purchases(t.purchases);
                           out.set_gross_revenue_cents(t.gross_cents);
                           out.set_net_revenue_cents(t.net_cents);
                           out.set_fee_cents(t.fee_cents);
                           out.set_reconciled_purchases(t.reconciled);
                           out.set_new_subscribers(t.subscriptions);
                           out.set_known_fans(t.known_fans);
                           co_return out;
                         });
  }

  ServerUnaryReactor* ListCampaignBuyers(CallbackServerContext* ctx,
                                         const v1::ListCampaignBuyersRequest* req,
                                         v1::ListCampaignBuyersResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListCampaignBuyers", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListCampaignBuyersResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "parent", req->parent(), "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(int size, ParsePageSize(req->page_size(), 100, 1000));
          const uint64_t fingerprint = Fingerprint(StrCat("buyers/", req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(std::string after,
                                     DecodePageToken(req->page_token(), fingerprint));
          size_t offset = 0;
          if (!after.empty() && !absl::SimpleAtoi(after, &offset)) {
            co_return absl::InvalidArgumentError("page_token: malformed");
          }
          HERALD_CO_ASSIGN_OR_RETURN(std::vector<webhooks::Buyer> buyers,
                                     co_await analytics_.CampaignBuyers(c.tenant, id));
          v1::ListCampaignBuyersResponse out;
          const size_t end = std::min(buyers.size(), offset + static_cast<size_t>(size));
          for (size_t i = offset; i < end; ++i) *out.add_buyers() = ToProto(c.tenant, buyers[i]);
          if (end < buyers.size()) {
            out.set_next_page_token(EncodePageToken(StrCat(end), fingerprint));
          }
          co_return out;
        });
  }

 private:
  Bridge& bridge_;
  campaign::Analytics& analytics_;
};

class ApiImpl final : public Api {
 public:
  ApiImpl(asio::any_io_executor executor, campaign::Service& service,
          campaign::Analytics& analytics, automation::Automations& automations, ApiConfig config,
          metrics::Registry* registry)
      : metrics_(MakeRpcMetrics(registry)),
        quota_({.per_second = config.tenant_calls_per_second, .burst = config.tenant_burst},
               SystemClock::Get()),
        bridge_(std::move(executor), service, *metrics_, quota_.enabled() ? &quota_ : nullptr,
                config.max_streams),
        tenants_(bridge_),
        accounts_(bridge_),
        media_(bridge_, config.media_max_bytes),
        audiences_(bridge_),
        campaigns_(bridge_, analytics, config.watch_poll),
        analytics_(bridge_, analytics),
        events_(MakeEventService(bridge_, analytics.messages())),
        automations_(MakeAutomationService(bridge_, automations)) {}

  std::vector<grpc::Service*> services() override {
    return {&tenants_,   &accounts_,  &media_,       &audiences_,
            &campaigns_, &analytics_, events_.get(), automations_.get()};
  }

  asio::awaitable<void> Close() override { co_await bridge_.Close(); }

 private:
  std::unique_ptr<RpcMetrics> metrics_;
  TenantQuota quota_;
  Bridge bridge_;
  TenantServiceImpl tenants_;
  AccountServiceImpl accounts_;
  MediaServiceImpl media_;
  AudienceServiceImpl audiences_;
  CampaignServiceImpl campaigns_;
  AnalyticsServiceImpl analytics_;
  std::unique_ptr<grpc::Service> events_;
  std::unique_ptr<grpc::Service> automations_;
};

}  // namespace

std::unique_ptr<Api> MakeApi(asio::any_io_executor executor, campaign::Service& service,
                             campaign::Analytics& analytics, automation::Automations& automations,
                             ApiConfig config, metrics::Registry* registry) {
  return std::make_unique<ApiImpl>(std::move(executor), service, analytics, automations, config,
                                   registry);
}

}  // namespace herald::api
