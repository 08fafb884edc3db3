// teams and accounts: AccountService.
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/heraldctl/values.h>
#include <herald/v1/account.grpc.pb.h>

#include "session.h"

namespace herald::heraldctl {
namespace {

std::unique_ptr<v1::AccountService::Stub> Stub(Session& s) {
  return v1::AccountService::NewStub(s.channel());
}

// A team with its webhook state, registered or not (RenderTeam); JSON with --json.
int PrintTeam(Session& s, const v1::Team& team) {
  if (s.global().json) return s.Print(team);
  s.out() << RenderTeam(team);
  s.out().flush();
  return kExitOk;
}

// Applies the team flags; appends the update-mask paths set.
absl::Status ApplyTeamFlags(Session& s, const ParsedCommand& c, v1::Team* team,
                            std::vector<std::string>* paths) {
  if (c.Has("display-name")) {
    team->set_display_name(c.Get("display-name"));
    paths->push_back("display_name");
  }
  absl::StatusOr<std::optional<std::string>> key = ReadSecretFlags(s, c, "upstream-key");
  if (!key.ok()) return key.status();
  if (key->has_value()) {
    team->set_upstream_api_key(**key);
    paths->push_back("upstream_api_key");
  }
  HERALD_RETURN_IF_ERROR(ApplyCountFlag(c, "rate-limit", team, &v1::Team::set_rate_limit_per_minute,
                                        "rate_limit_per_minute", paths));
  HERALD_RETURN_IF_ERROR(ApplyCountFlag(c, "burst", team, &v1::Team::set_burst, "burst", paths));
  absl::StatusOr<std::optional<std::string>> secret = ReadSecretFlags(s, c, "webhook-secret");
  if (!secret.ok()) return secret.status();
  if (secret->has_value()) {
    team->set_webhook_signing_secret(**secret);
    paths->push_back("webhook_signing_secret");
  }
  return absl::OkStatus();
}

absl::Status ApplyAccountFlags(const ParsedCommand& c, v1::Account* account,
                               std::vector<std::string>* paths) {
  if (c.Has("display-name")) {
    account->set_display_name(c.Get("display-name"));
    paths->push_back("display_name");
  }
  HERALD_RETURN_IF_ERROR(ApplyCountFlag(c, "pace", account, &v1::Account::set_sends_per_minute,
                                        "sends_per_minute", paths));
  return ApplyCountFlag(c, "max-in-flight", account, &v1::Account::set_max_in_flight,
                        "max_in_flight", paths);
}

int TeamsCreate(Session& s, const ParsedCommand& c) {
  v1::CreateTeamRequest request;
  HCTL_ASSIGN_OR_USAGE(auto parent_id, s, ParentAndId(s.names(), "teams", c.args[0]));
  request.set_parent(parent_id.first);
  request.set_team_id(parent_id.second);
  request.set_request_id(c.Get("request-id"));
  std::vector<std::string> paths;
  if (absl::Status st = ApplyTeamFlags(s, c, request.mutable_team(), &paths); !st.ok()) {
    return s.Usage(st);
  }
  if (request.team().upstream_api_key().empty()) {
    return s.Usage(absl::InvalidArgumentError(
        "the team's upstream API key is required: --upstream-key-file=F or "
        "--upstream-key-env=VAR"));
  }
  v1::Team response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->CreateTeam(context.get(), request, &response);
  return status.ok() ? PrintTeam(s, response) : s.Fail(status);
}

// Get, pause, resume, register-webhook: a team's name in, the team out.
template <typename Request, auto kMethod>
int NameToTeam(Session& s, const ParsedCommand& c) {
  Request request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("teams", c.args[0]));
  v1::Team response;
  auto context = s.Context();
  auto stub = Stub(s);
  const grpc::Status status = ((*stub).*kMethod)(context.get(), request, &response);
  return status.ok() ? PrintTeam(s, response) : s.Fail(status);
}

int TeamsList(Session& s, const ParsedCommand&) {
  v1::ListTeamsRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  auto stub = Stub(s);
  return ListAllPages<v1::ListTeamsResponse>(
      s, request, [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListTeams(context, r, response);
      });
}

int TeamsUpdate(Session& s, const ParsedCommand& c) {
  v1::UpdateTeamRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_team()->mutable_name(), s,
                       s.names().Resolve("teams", c.args[0]));
  std::vector<std::string> paths;
  if (absl::Status st = ApplyTeamFlags(s, c, request.mutable_team(), &paths); !st.ok()) {
    return s.Usage(st);
  }
  if (paths.empty()) return s.Usage(absl::InvalidArgumentError("nothing to update; see --help"));
  for (const std::string& path : paths) request.mutable_update_mask()->add_paths(path);
  v1::Team response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->UpdateTeam(context.get(), request, &response);
  return status.ok() ? PrintTeam(s, response) : s.Fail(status);
}

int TeamsDelete(Session& s, const ParsedCommand& c) {
  v1::DeleteTeamRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("teams", c.args[0]));
  v1::DeleteTeamResponse response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->DeleteTeam(context.get(), request, &response);
  return status.ok() ? s.PrintDone(response, StrCat("deleted ", request.name())) : s.Fail(status);
}

int AccountsCreate(Session& s, const ParsedCommand& c) {
  v1::CreateAccountRequest request;
  HCTL_ASSIGN_OR_USAGE(auto parent_id, s, ParentAndId(s.names(), "accounts", c.args[0]));
  request.set_parent(parent_id.first);
  request.set_account_id(parent_id.second);
  request.set_request_id(c.Get("request-id"));
  if (!c.Has("team")) return s.Usage(absl::InvalidArgumentError("--team is required"));
  HCTL_ASSIGN_OR_USAGE(*request.mutable_account()->mutable_team(), s,
                       s.names().Resolve("teams", c.Get("team")));
  std::vector<std::string> paths;
  if (absl::Status st = ApplyAccountFlags(c, request.mutable_account(), &paths); !st.ok()) {
    return s.Usage(st);
  }
  v1::Account response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->CreateAccount(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int AccountsGet(Session& s, const ParsedCommand& c) {
  v1::GetAccountRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("accounts", c.args[0]));
  v1::Account response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->GetAccount(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int AccountsList(Session& s, const ParsedCommand& c) {
  v1::ListAccountsRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  if (c.Has("team")) {
    HCTL_ASSIGN_OR_USAGE(*request.mutable_team(), s, s.names().Resolve("teams", c.Get("team")));
  }
  auto stub = Stub(s);
  return ListAllPages<v1::ListAccountsResponse>(
      s, request, [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListAccounts(context, r, response);
      });
}

int AccountsUpdate(Session& s, const ParsedCommand& c) {
  v1::UpdateAccountRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_account()->mutable_name(), s,
                       s.names().Resolve("accounts", c.args[0]));
  std::vector<std::string> paths;
  if (absl::Status st = ApplyAccountFlags(c, request.mutable_account(), &paths); !st.ok()) {
    return s.Usage(st);
  }
  if (paths.empty()) return s.Usage(absl::InvalidArgumentError("nothing to update; see --help"));
  for (const std::string& path : paths) request.mutable_update_mask()->add_paths(path);
  v1::Account response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->UpdateAccount(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int AccountsDelete(Session& s, const ParsedCommand& c) {
  v1::DeleteAccountRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("accounts", c.args[0]));
  v1::DeleteAccountResponse response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->DeleteAccount(context.get(), request, &response);
  return status.ok() ? s.PrintDone(response, StrCat("deleted ", request.name())) : s.Fail(status);
}

int AccountsPause(Session& s, const ParsedCommand& c) {
  v1::PauseAccountRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("accounts", c.args[0]));
  v1::Account response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->PauseAccount(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int AccountsResume(Session& s, const ParsedCommand& c) {
  v1::ResumeAccountRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("accounts", c.args[0]));
  v1::Account response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->ResumeAccount(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int AccountsSync(Session& s, const ParsedCommand& c) {
  v1::SyncAccountsRequest request;
  if (!c.Has("team")) return s.Usage(absl::InvalidArgumentError("--team is required"));
  HCTL_ASSIGN_OR_USAGE(*request.mutable_team(), s, s.names().Resolve("teams", c.Get("team")));
  v1::SyncAccountsResponse response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->SyncAccounts(context.get(), request, &response);
  if (!status.ok()) return s.Fail(status);
  if (s.global().json) return s.Print(response);
  v1::ListAccountsResponse created;
  *created.mutable_accounts() = response.created();
  s.out() << RenderTable(ToTable(created)) << response.created_size() << " created, "
          << response.unchanged() << " unchanged";
  if (response.in_other_teams_size() > 0) {
    s.out() << ", " << response.in_other_teams_size() << " under another team (delete them there"
            << " and sync again to move them):";
    for (const v1::Account& a : response.in_other_teams()) {
      s.out() << " " << ShortId(a.name()) << " (" << ShortId(a.team()) << ")";
    }
  }
  if (response.unusable_ids_size() > 0) {
    s.out() << ", " << response.unusable_ids_size()
            << " not imported (the upstream listed ids that are not account ids):";
    for (const std::string& id : response.unusable_ids()) s.out() << " " << id;
  }
  s.out() << "\n";
  return kExitOk;
}

}  // namespace

void AddAccountCommands(std::vector<CommandSpec>& commands) {
  const FlagSpec request_id{"request-id", "ID", "idempotency id: a retry returns the first result"};
  const std::vector<FlagSpec> team_flags = {
      {"display-name", "TEXT", "name for operators"},
      {"upstream-key-file", "FILE", "read the team's upstream API key from FILE (- for stdin)"},
      {"upstream-key-env", "VAR", "read the team's upstream API key from environment variable VAR"},
      {"rate-limit", "N", "upstream calls per minute Herald allows itself (1-100000; 0 = 1000)"},
      {"burst", "N", "calls the team may make at once after a quiet spell (0 = a second's worth)"},
      {"webhook-secret-file", "FILE",
       "read the secret the upstream signs the team's webhooks with from FILE (- for stdin), "
       "for a webhook set up outside Herald"},
      {"webhook-secret-env", "VAR",
       "read that webhook signing secret from environment variable VAR"},
  };
  std::vector<FlagSpec> team_update_flags = team_flags;
  std::vector<FlagSpec> team_create_flags = team_flags;
  team_create_flags.push_back(request_id);
  for (FlagSpec& flag : team_update_flags) {
    if (flag.name == "rate-limit") {
      flag.help = "upstream calls per minute Herald allows itself (1-100000)";
    }
  }
  commands.push_back({"teams", "create", "ID", 1, 1, "Create a team (one upstream API key)",
                      "Secrets are never taken on the command line: give a file or an\n"
                      "environment variable.",
                      team_create_flags, TeamsCreate});
  commands.push_back({"teams", "list", "", 0, 0, "List the tenant's teams", "", {}, TeamsList});
  commands.push_back({"teams",
                      "get",
                      "TEAM",
                      1,
                      1,
                      "Show a team",
                      "",
                      {},
                      NameToTeam<v1::GetTeamRequest, &v1::AccountService::Stub::GetTeam>});
  commands.push_back({"teams", "update", "TEAM", 1, 1,
                      "Change a team's name, secrets or limits (only the flags given)", "",
                      team_update_flags, TeamsUpdate});
  commands.push_back({"teams",
                      "delete",
                      "TEAM",
                      1,
                      1,
                      "Delete a team that has no accounts, and its webhook upstream",
                      "",
                      {},
                      TeamsDelete});
  commands.push_back({"teams",
                      "pause",
                      "TEAM",
                      1,
                      1,
                      "Stop every upstream call of the team's accounts until resumed",
                      "A new upstream key does not end this pause; only `teams resume` does.",
                      {},
                      NameToTeam<v1::PauseTeamRequest, &v1::AccountService::Stub::PauseTeam>});
  commands.push_back({"teams",
                      "resume",
                      "TEAM",
                      1,
                      1,
                      "Resume a paused team (paused with `teams pause`, or out of credits)",
                      "A team whose key the upstream refused needs a new key first\n"
                      "(`teams update --upstream-key-file`), which resumes it unless it was\n"
                      "paused with `teams pause`.",
                      {},
                      NameToTeam<v1::ResumeTeamRequest, &v1::AccountService::Stub::ResumeTeam>});
  commands.push_back(
      {"teams",
       "register-webhook",
       "TEAM",
       1,
       1,
       "Register the team's webhook with the upstream again, with a new signing secret",
       "Teams are registered when created; this repairs a failed registration (the team shows\n"
       "webhook_error) or rotates the secret. Refused (exit 6) when Herald has no public\n"
       "webhook URL.",
       {},
       NameToTeam<v1::RegisterTeamWebhookRequest, &v1::AccountService::Stub::RegisterTeamWebhook>});

  const std::vector<FlagSpec> account_flags = {
      {"display-name", "TEXT", "name for operators"},
      {"pace", "N", "mass-message jobs per minute for this creator (0 = team limit only)"},
      {"max-in-flight", "N", "upstream calls in flight at once (0 = no cap)"},
  };
  std::vector<FlagSpec> account_create_flags = account_flags;
  account_create_flags.insert(account_create_flags.begin(),
                              {"team", "TEAM", "required: the account's team"});
  account_create_flags.push_back(request_id);
  commands.push_back({"accounts", "create", "ACCOUNT", 1, 1,
                      "Register a creator account (acct_...) in a team", "", account_create_flags,
                      AccountsCreate});
  commands.push_back({"accounts",
                      "list",
                      "",
                      0,
                      0,
                      "List accounts, optionally of one team",
                      "",
                      {{"team", "TEAM", "only this team's accounts"}},
                      AccountsList});
  commands.push_back({"accounts", "get", "ACCOUNT", 1, 1, "Show an account", "", {}, AccountsGet});
  commands.push_back({"accounts", "update", "ACCOUNT", 1, 1,
                      "Change an account's name or pacing (only the flags given)", "",
                      account_flags, AccountsUpdate});
  commands.push_back({"accounts",
                      "delete",
                      "ACCOUNT",
                      1,
                      1,
                      "Delete an account no unfinished campaign targets",
                      "",
                      {},
                      AccountsDelete});
  commands.push_back({"accounts",
                      "pause",
                      "ACCOUNT",
                      1,
                      1,
                      "Stop every upstream call of the account until resumed",
                      "",
                      {},
                      AccountsPause});
  commands.push_back(
      {"accounts", "resume", "ACCOUNT", 1, 1, "Resume a paused account", "", {}, AccountsResume});
  commands.push_back({"accounts",
                      "sync",
                      "",
                      0,
                      0,
                      "Import the team's accounts from the upstream",
                      "",
                      {{"team", "TEAM", "required: the team to import"}},
                      AccountsSync});
}

}  // namespace herald::heraldctl
