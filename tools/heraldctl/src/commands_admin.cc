// tenants, keys and the audit trail: TenantService, with the platform-admin key.
#include <algorithm>

#include <herald/common/strings.h>
#include <herald/heraldctl/values.h>
#include <herald/v1/tenant.grpc.pb.h>

#include "session.h"

namespace herald::heraldctl {
namespace {

std::unique_ptr<v1::TenantService::Stub> Stub(Session& s) {
  return v1::TenantService::NewStub(s.channel());
}

// --display-name and --weight into `tenant`, naming each field given in `paths`.
absl::Status ApplyTenantFlags(const ParsedCommand& c, v1::Tenant* tenant,
                              std::vector<std::string>* paths) {
  if (c.Has("display-name")) {
    tenant->set_display_name(c.Get("display-name"));
    paths->push_back("display_name");
  }
  return ApplyCountFlag(c, "weight", tenant, &v1::Tenant::set_scheduling_weight,
                        "scheduling_weight", paths);
}

int TenantsCreate(Session& s, const ParsedCommand& c) {
  v1::CreateTenantRequest request;
  HCTL_ASSIGN_OR_USAGE(const std::string name, s, s.names().Tenant(c.args[0]));
  request.set_tenant_id(std::string(ShortId(name)));
  std::vector<std::string> paths;
  if (absl::Status st = ApplyTenantFlags(c, request.mutable_tenant(), &paths); !st.ok()) {
    return s.Usage(st);
  }
  request.set_request_id(c.Get("request-id"));
  v1::Tenant response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->CreateTenant(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int TenantsUpdate(Session& s, const ParsedCommand& c) {
  v1::UpdateTenantRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_tenant()->mutable_name(), s, s.names().Tenant(c.args[0]));
  std::vector<std::string> paths;
  if (absl::Status st = ApplyTenantFlags(c, request.mutable_tenant(), &paths); !st.ok()) {
    return s.Usage(st);
  }
  if (paths.empty()) return s.Usage(absl::InvalidArgumentError("nothing to update; see --help"));
  for (const std::string& path : paths) request.mutable_update_mask()->add_paths(path);
  v1::Tenant response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->UpdateTenant(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int TenantsGet(Session& s, const ParsedCommand& c) {
  v1::GetTenantRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Tenant(c.args[0]));
  v1::Tenant response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->GetTenant(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int TenantsList(Session& s, const ParsedCommand&) {
  auto stub = Stub(s);
  return ListAllPages<v1::ListTenantsResponse>(
      s, v1::ListTenantsRequest(),
      [&](grpc::ClientContext* context, const auto& request, auto* response) {
        return stub->ListTenants(context, request, response);
      });
}

// The TENANT argument, or --tenant (HERALD_TENANT) without one.
absl::StatusOr<std::string> TenantArgument(Session& s, const ParsedCommand& c) {
  return c.args.empty() ? s.names().Parent() : s.names().Tenant(c.args[0]);
}

int KeysCreate(Session& s, const ParsedCommand& c) {
  v1::CreateApiKeyRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, TenantArgument(s, c));
  request.mutable_api_key()->set_display_name(c.Get("display-name"));
  request.set_request_id(c.Get("request-id"));
  v1::CreateApiKeyResponse response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->CreateApiKey(context.get(), request, &response);
  if (!status.ok()) return s.Fail(status);
  if (s.global().json) {
    s.Print(response);
  } else {
    s.Print(response.api_key());
    if (!response.secret().empty()) s.out() << "secret: " << response.secret() << "\n";
  }
  if (response.secret().empty()) {
    // A retried request_id: the key exists, but a script expecting its secret must not go on
    // as if it had one.
    s.err() << "heraldctl: the secret was shown when the key was first created (retried "
               "request_id); it cannot be shown again\n";
    return kExitAlreadyExists;
  }
  if (!s.global().json) s.err() << "heraldctl: store the secret now; Herald cannot show it again\n";
  return kExitOk;
}

int KeysList(Session& s, const ParsedCommand& c) {
  v1::ListApiKeysRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, TenantArgument(s, c));
  auto stub = Stub(s);
  return ListAllPages<v1::ListApiKeysResponse>(
      s, std::move(request), [&](grpc::ClientContext* context, const auto& req, auto* response) {
        return stub->ListApiKeys(context, req, response);
      });
}

int KeysRevoke(Session& s, const ParsedCommand& c) {
  v1::RevokeApiKeyRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("apiKeys", c.args[0]));
  v1::ApiKey response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->RevokeApiKey(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int AuditList(Session& s, const ParsedCommand& c) {
  v1::ListAuditEventsRequest request;
  if (!c.args.empty()) {
    HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Tenant(c.args[0]));
  }
  int32_t limit = 50;
  if (c.Has("limit")) {
    HCTL_ASSIGN_OR_USAGE(limit, s, ParseCount("limit", c.Get("limit")));
    if (limit == 0) return s.Usage(absl::InvalidArgumentError("--limit: must be at least 1"));
  }
  request.set_page_size(std::min(limit, 1000));
  auto stub = Stub(s);
  v1::ListAuditEventsResponse all;
  bool more = false;
  const int code = FetchPages(
      s, request,
      [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListAuditEvents(context, r, response);
      },
      [&](const v1::ListAuditEventsResponse& so_far) { return so_far.events_size() >= limit; },
      &all, &more);
  if (code != kExitOk) return code;
  if (all.events_size() > limit) {
    all.mutable_events()->DeleteSubrange(limit, all.events_size() - limit);
    more = true;
  }
  s.PrintList(all, ToTable(all));
  if (more) {
    s.err() << "heraldctl: showing the newest " << limit
            << " entries; there are more (raise --limit)\n";
  }
  return kExitOk;
}

int AdminRotateEncryptionKey(Session& s, const ParsedCommand&) {
  v1::RotateEncryptionKeyResponse response;
  auto context = s.Context();
  const grpc::Status status =
      Stub(s)->RotateEncryptionKey(context.get(), v1::RotateEncryptionKeyRequest(), &response);
  if (!status.ok()) return s.Fail(status);
  // Every figure, zeros included: "0 resealed, none unreadable" is what the runbook checks.
  const std::vector<std::string> unreadable(response.unreadable().begin(),
                                            response.unreadable().end());
  s.PrintDone(response,
              StrCat("key_id: ", response.key_id(), "\nteams_checked: ", response.teams_checked(),
                     "\nsecrets_resealed: ", response.secrets_resealed(), "\nunreadable: ",
                     unreadable.empty() ? std::string("none") : StrJoin(unreadable, ", ")));
  if (response.unreadable_size() > 0) {
    s.err() << "heraldctl: " << response.unreadable_size()
            << " teams have secrets sealed under a key the server does not have; give it in "
               "--previous_encryption_keys and run again before removing any old key\n";
    return kExitRejected;
  }
  return kExitOk;
}

}  // namespace

void AddAdminCommands(std::vector<CommandSpec>& commands) {
  const FlagSpec request_id{"request-id", "ID", "idempotency id: a retry returns the first result"};
  const FlagSpec display_name{"display-name", "TEXT", "human-readable name"};
  const FlagSpec weight{"weight", "N",
                        "share of the workers against other tenants with work ready (1-1000; "
                        "default 1)"};
  commands.push_back({"tenants",
                      "create",
                      "ID",
                      1,
                      1,
                      "Create a tenant (platform-admin key)",
                      "ID is 1-40 characters of [a-z0-9-], starting with a letter.",
                      {display_name, weight, request_id},
                      TenantsCreate});
  commands.push_back({"tenants",
                      "update",
                      "ID",
                      1,
                      1,
                      "Change a tenant's display name or weight (only the flags given; "
                      "platform-admin key)",
                      "",
                      {display_name, weight},
                      TenantsUpdate});
  commands.push_back(
      {"tenants", "list", "", 0, 0, "List tenants (platform-admin key)", "", {}, TenantsList});
  commands.push_back(
      {"tenants", "get", "ID", 1, 1, "Show a tenant (platform-admin key)", "", {}, TenantsGet});
  commands.push_back(
      {"keys",
       "create",
       "[TENANT]",
       0,
       1,
       "Create an API key for a tenant (--tenant without TENANT); prints its secret once",
       "The secret is printed on stdout (\"secret: ...\", or the `secret` field with --json)\n"
       "and cannot be shown again. Needs the platform-admin key.",
       {{"display-name", "TEXT", "label for operators, e.g. crm-prod"}, request_id},
       KeysCreate});
  commands.push_back({"keys",
                      "list",
                      "[TENANT]",
                      0,
                      1,
                      "List a tenant's API keys (of --tenant without TENANT), revoked ones "
                      "included (no secrets)",
                      "",
                      {},
                      KeysList});
  commands.push_back({"keys",
                      "revoke",
                      "NAME",
                      1,
                      1,
                      "Revoke an API key (tenants/T/apiKeys/K, or K with --tenant)",
                      "",
                      {},
                      KeysRevoke});
  commands.push_back({"audit",
                      "list",
                      "[TENANT]",
                      0,
                      1,
                      "List the audit trail, newest first (platform-admin key)",
                      "Tenants and keys created or revoked, teams created or deleted, team keys\n"
                      "replaced, webhook secrets rotated, campaigns cancelled: who, what, when.\n"
                      "With TENANT, only that tenant's entries.",
                      {{"limit", "N", "at most N entries (default 50)"}},
                      AuditList});
  commands.push_back(
      {"admin",
       "rotate-encryption-key",
       "",
       0,
       0,
       "Re-seal every stored secret under the server's current encryption key",
       "Run once every Herald process has the new key (--encryption_key) and the old one\n"
       "(--previous_encryption_keys); remove the old key once this reports nothing unreadable.\n"
       "Exits 6 when some secrets need a key the server does not have. Platform-admin key.",
       {},
       AdminRotateEncryptionKey});
}

}  // namespace herald::heraldctl
