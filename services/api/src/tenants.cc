// TenantService: tenants, their API keys, the audit log and encryption key rotation.

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/store/audit.h>
#include <herald/v1/tenant.grpc.pb.h>

#include "bridge.h"
#include "convert.h"
#include "names.h"
#include "paging.h"
#include "services.h"

namespace herald::api {
namespace {

using campaign::Caller;
using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

class TenantServiceImpl final : public v1::TenantService::CallbackService {
 public:
  explicit TenantServiceImpl(Bridge& bridge) : bridge_(bridge), service_(bridge.service()) {}

  ServerUnaryReactor* CreateTenant(CallbackServerContext* ctx, const v1::CreateTenantRequest* req,
                                   v1::Tenant* resp) override {
    return bridge_.Unary(
        ctx, "CreateTenant", resp, Access::kAdmin, [this, req](const Caller& c) -> Op<v1::Tenant> {
          HERALD_CO_RETURN_IF_ERROR(ValidateSlug("tenant_id", req->tenant_id()));
          HERALD_CO_ASSIGN_OR_RETURN(store::RequestId request_id, CreateRequestId(*req));
          HERALD_CO_RETURN_IF_ERROR(
              ValidateDisplayName("tenant.display_name", req->tenant().display_name()));
          HERALD_CO_ASSIGN_OR_RETURN(
              const int32_t weight,
              ParseSchedulingWeight("tenant.scheduling_weight", req->tenant().scheduling_weight(),
                                    /*zero_means_default=*/true));
          store::Tenant tenant{.id = req->tenant_id(),
                               .display_name = req->tenant().display_name(),
                               .scheduling_weight = weight};
          HERALD_CO_ASSIGN_OR_RETURN(auto created, co_await service_.CreateTenant(
                                                       std::move(tenant), std::move(request_id)));
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
                           co_return ListPage<v1::ListTenantsResponse>(
                               *req, std::move(all), [](const store::Tenant& t) { return t.id; },
                               Fingerprint("tenants"),
                               [](v1::ListTenantsResponse& out, const store::Tenant& t) {
                                 *out.add_tenants() = ToProto(t);
                               });
                         });
  }

  ServerUnaryReactor* CreateApiKey(CallbackServerContext* ctx, const v1::CreateApiKeyRequest* req,
                                   v1::CreateApiKeyResponse* resp) override {
    return bridge_.Unary(
        ctx, "CreateApiKey", resp, Access::kAdmin,
        [this, req](const Caller& c) -> Op<v1::CreateApiKeyResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string tenant, ParseTenantName("parent", req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(store::RequestId request_id, CreateRequestId(*req));
          HERALD_CO_RETURN_IF_ERROR(
              ValidateDisplayName("api_key.display_name", req->api_key().display_name()));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto key, co_await service_.CreateApiKey(tenant, req->api_key().display_name(),
                                                       std::move(request_id)));
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
          co_return ListPage<v1::ListApiKeysResponse>(
              *req, std::move(keys), [](const store::ApiKey& k) { return k.id; },
              Fingerprint(StrCat("api_keys/", tenant)),
              [](v1::ListApiKeysResponse& out, const store::ApiKey& k) {
                *out.add_api_keys() = ToProto(k);
              });
        });
  }

  ServerUnaryReactor* RevokeApiKey(CallbackServerContext* ctx, const v1::RevokeApiKeyRequest* req,
                                   v1::ApiKey* resp) override {
    return bridge_.Unary(
        ctx, "RevokeApiKey", resp, Access::kAdmin, [this, req](const Caller& c) -> Op<v1::ApiKey> {
          HERALD_CO_ASSIGN_OR_RETURN(ChildName n, ParseChildName("name", req->name(), "apiKeys"));
          HERALD_CO_ASSIGN_OR_RETURN(auto revoked, co_await service_.RevokeApiKey(n.tenant, n.id));
          // A repeated revoke changes nothing and is not recorded again.
          const std::string resource = req->name();
          if (revoked.now) co_await service_.Audit(c, "api_key.revoke", n.tenant, resource);
          co_return ToProto(revoked.key);
        });
  }

  ServerUnaryReactor* ListAuditEvents(CallbackServerContext* ctx,
                                      const v1::ListAuditEventsRequest* req,
                                      v1::ListAuditEventsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListAuditEvents", resp, Access::kAdmin,
        [this, req](const Caller&) -> Op<v1::ListAuditEventsResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(store::AuditQuery query, ParseAuditQuery(*req));
          // A tenant that does not exist is NOT_FOUND, as for ListApiKeys, not an empty trail.
          if (!query.tenant.empty()) {
            HERALD_CO_RETURN_IF_ERROR((co_await service_.GetTenant(query.tenant)).status());
          }
          HERALD_CO_ASSIGN_OR_RETURN(store::AuditPage page,
                                     co_await service_.ListAuditEvents(std::move(query)));
          co_return ToProto(page, AuditListing(req->parent()));
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

}  // namespace

std::unique_ptr<grpc::Service> MakeTenantService(Bridge& bridge) {
  return std::make_unique<TenantServiceImpl>(bridge);
}

}  // namespace herald::api
