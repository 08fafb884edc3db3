// AccountService: teams (an upstream API key each) and creator accounts.

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/store/audit.h>
#include <herald/v1/account.grpc.pb.h>

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

class AccountServiceImpl final : public v1::AccountService::CallbackService {
 public:
  explicit AccountServiceImpl(Bridge& bridge) : bridge_(bridge), service_(bridge.service()) {}

  ServerUnaryReactor* CreateTeam(CallbackServerContext* ctx, const v1::CreateTeamRequest* req,
                                 v1::Team* resp) override {
    return bridge_.Unary(
        ctx, "CreateTeam", resp, Access::kTenant, [this, req](const Caller& c) -> Op<v1::Team> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_RETURN_IF_ERROR(ValidateSlug("team_id", req->team_id()));
          HERALD_CO_ASSIGN_OR_RETURN(store::RequestId request_id, CreateRequestId(*req));
          HERALD_CO_RETURN_IF_ERROR(ValidateTeamFields(req->team(), /*create=*/true));
          store::Team team{.tenant = c.tenant,
                           .id = req->team_id(),
                           .display_name = req->team().display_name(),
                           .rate_limit_per_minute = req->team().rate_limit_per_minute() == 0
                                                        ? 1000
                                                        : req->team().rate_limit_per_minute(),
                           .burst = req->team().burst()};
          campaign::Service::TeamSecrets secrets{.api_key = req->team().upstream_api_key()};
          if (!req->team().webhook_signing_secret().empty()) {
            secrets.webhook_secret = req->team().webhook_signing_secret();
          }
          HERALD_CO_ASSIGN_OR_RETURN(
              auto created, co_await service_.CreateTeam(std::move(team), std::move(secrets),
                                                         std::move(request_id)));
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
    return bridge_.Unary(ctx, "ListTeams", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::ListTeamsResponse> {
                           HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
                           HERALD_CO_ASSIGN_OR_RETURN(auto all,
                                                      co_await service_.ListTeams(c.tenant));
                           co_return ListPage<v1::ListTeamsResponse>(
                               *req, std::move(all), [](const store::Team& t) { return t.id; },
                               Fingerprint(StrCat("teams/", c.tenant)),
                               [](v1::ListTeamsResponse& out, const store::Team& t) {
                                 *out.add_teams() = ToProto(t);
                               });
                         });
  }

  ServerUnaryReactor* UpdateTeam(CallbackServerContext* ctx, const v1::UpdateTeamRequest* req,
                                 v1::Team* resp) override {
    return bridge_.Unary(
        ctx, "UpdateTeam", resp, Access::kTenant, [this, req](const Caller& c) -> Op<v1::Team> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "team.name", req->team().name(), "teams"));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto fields, ParseMask(req->team(), req->update_mask(),
                                     {"display_name", "upstream_api_key", "rate_limit_per_minute",
                                      "burst", "webhook_signing_secret"},
                                     {"upstream_api_key", "webhook_signing_secret"}));
          HERALD_CO_RETURN_IF_ERROR(ValidateTeamUpdate(req->team(), fields));
          const auto named = [&](std::string_view f) {
            return std::find(fields.begin(), fields.end(), f) != fields.end();
          };
          store::Team update{.tenant = c.tenant,
                             .id = id,
                             .display_name = req->team().display_name(),
                             .rate_limit_per_minute = req->team().rate_limit_per_minute(),
                             .burst = req->team().burst()};
          campaign::Service::TeamSecrets secrets;
          if (named("upstream_api_key")) secrets.api_key = req->team().upstream_api_key();
          if (named("webhook_signing_secret")) {
            secrets.webhook_secret = req->team().webhook_signing_secret();
          }
          HERALD_CO_ASSIGN_OR_RETURN(
              auto t, co_await service_.UpdateTeam(std::move(update), secrets, fields));
          const std::string resource = StrCat("tenants/", c.tenant, "/teams/", id);
          if (secrets.api_key) {
            co_await service_.Audit(c, "team.update_key", c.tenant, resource,
                                    "upstream API key replaced");
          }
          if (secrets.webhook_secret) {
            co_await service_.Audit(c, "team.update_webhook_secret", c.tenant, resource,
                                    "webhook signing secret replaced");
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

  ServerUnaryReactor* PauseTeam(CallbackServerContext* ctx, const v1::PauseTeamRequest* req,
                                v1::Team* resp) override {
    return SetTeamPaused(ctx, "PauseTeam", req->name(), resp, true);
  }
  ServerUnaryReactor* ResumeTeam(CallbackServerContext* ctx, const v1::ResumeTeamRequest* req,
                                 v1::Team* resp) override {
    return SetTeamPaused(ctx, "ResumeTeam", req->name(), resp, false);
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
          HERALD_CO_ASSIGN_OR_RETURN(store::RequestId request_id, CreateRequestId(*req));
          HERALD_CO_RETURN_IF_ERROR(ValidateAccountFields(req->account()));
          HERALD_CO_ASSIGN_OR_RETURN(
              std::string team,
              ChildOfTenant("account.team", req->account().team(), "teams", c.tenant));
          store::Account account{.tenant = c.tenant,
                                 .id = req->account_id(),
                                 .team = std::move(team),
                                 .display_name = req->account().display_name(),
                                 .sends_per_minute = req->account().sends_per_minute(),
                                 .max_in_flight = req->account().max_in_flight()};
          HERALD_CO_ASSIGN_OR_RETURN(auto created, co_await service_.CreateAccount(
                                                       std::move(account), std::move(request_id)));
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
          co_return ListPage<v1::ListAccountsResponse>(
              *req, std::move(all), [](const store::Account& a) { return a.id; },
              Fingerprint(StrCat("accounts/", c.tenant, "/", team)),
              [](v1::ListAccountsResponse& out, const store::Account& a) {
                *out.add_accounts() = ToProto(a);
              });
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
              auto fields, ParseMask(req->account(), req->update_mask(),
                                     {"display_name", "sends_per_minute", "max_in_flight"}));
          HERALD_CO_RETURN_IF_ERROR(ValidateAccountFields(req->account(), &fields));
          // A whole account sent back (read, changed, updated) may carry its team unchanged;
          // the update refuses another, whatever its mask, rather than silently keeping the
          // stored one.
          std::string team;
          if (!req->account().team().empty()) {
            HERALD_CO_ASSIGN_OR_RETURN(
                team, OwnId(c.tenant, "account.team", req->account().team(), "teams"));
          }
          store::Account update{.tenant = c.tenant,
                                .id = id,
                                .team = std::move(team),
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
    return SetAccountPaused(ctx, "PauseAccount", req->name(), resp, true);
  }
  ServerUnaryReactor* ResumeAccount(CallbackServerContext* ctx, const v1::ResumeAccountRequest* req,
                                    v1::Account* resp) override {
    return SetAccountPaused(ctx, "ResumeAccount", req->name(), resp, false);
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
                           for (const auto& a : result.created) *out.add_created() = ToProto(a);
                           out.set_unchanged(result.unchanged);
                           for (const auto& a : result.in_other_teams) {
                             *out.add_in_other_teams() = ToProto(a);
                           }
                           for (std::string& id : result.unusable_ids) {
                             out.add_unusable_ids(std::move(id));
                           }
                           co_return out;
                         });
  }

 private:
  ServerUnaryReactor* SetTeamPaused(CallbackServerContext* ctx, std::string_view method,
                                    const std::string& name, v1::Team* resp, bool paused) {
    return bridge_.Unary(
        ctx, method, resp, Access::kTenant, [this, name, paused](const Caller& c) -> Op<v1::Team> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", name, "teams"));
          absl::StatusOr<store::Team> t;
          if (paused) {
            t = co_await service_.PauseTeam(c.tenant, id);
          } else {
            t = co_await service_.ResumeTeam(c.tenant, id);
          }
          if (!t.ok()) co_return t.status();
          co_return ToProto(*t);
        });
  }

  ServerUnaryReactor* SetAccountPaused(CallbackServerContext* ctx, std::string_view method,
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

}  // namespace

std::unique_ptr<grpc::Service> MakeAccountService(Bridge& bridge) {
  return std::make_unique<AccountServiceImpl>(bridge);
}

}  // namespace herald::api
