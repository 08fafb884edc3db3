// The state one heraldctl invocation runs with: the channel, credentials, output streams and
// the helpers every command uses. Private to heraldctl.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include <absl/status/status.h>
#include <google/protobuf/message.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/status.h>

#include <herald/heraldctl/args.h>
#include <herald/heraldctl/cli.h>
#include <herald/heraldctl/exit_codes.h>
#include <herald/heraldctl/names.h>
#include <herald/heraldctl/render.h>
#include <herald/heraldctl/values.h>

namespace herald::heraldctl {

class Session {
 public:
  Session(const ParsedCommand& command, EnvLookup env, std::ostream& out, std::ostream& err,
          const Terminal& terminal);

  const GlobalOptions& global() const { return global_; }
  const Names& names() const { return names_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  const Terminal& terminal() const { return terminal_; }
  std::optional<std::string> Env(std::string_view name) const { return env_(name); }

  // The channel to --server (created on first use).
  std::shared_ptr<grpc::Channel> channel();

  // A context with the bearer key and, when `with_deadline`, the --timeout deadline.
  std::unique_ptr<grpc::ClientContext> Context(bool with_deadline = true);

  // Reads the API key from --key-file when given, and the --tls-*-file PEM files. Usage error
  // otherwise reported by Usage().
  absl::Status LoadCredentials();

  // Reports a failed RPC on stderr and returns its exit code.
  int Fail(const grpc::Status& status);
  // Reports a usage error on stderr and returns kExitUsage.
  int Usage(const absl::Status& status);

  // Prints a single resource: JSON with --json, `field: value` lines otherwise.
  int Print(const google::protobuf::Message& message);
  // Prints a list: JSON of the whole (merged) response with --json, the table otherwise.
  int PrintList(const google::protobuf::Message& response, const Table& table);
  // For commands that return nothing worth a table: `text` for people, JSON of `message` for
  // scripts.
  int PrintDone(const google::protobuf::Message& message, std::string_view text);

 private:
  GlobalOptions global_;
  Names names_;
  std::ostream& out_;
  std::ostream& err_;
  Terminal terminal_;
  EnvLookup env_;
  grpc::SslCredentialsOptions tls_;  // the PEM files' contents, once LoadCredentials has read them
  std::shared_ptr<grpc::Channel> channel_;
};

// Shorthands for command bodies: evaluate a StatusOr, or return the usage exit code.
#define HCTL_ASSIGN_OR_USAGE(lhs, session, expr)                   \
  auto HCTL_CONCAT(hctl_, __LINE__) = (expr);                      \
  if (!HCTL_CONCAT(hctl_, __LINE__).ok()) {                        \
    return (session).Usage(HCTL_CONCAT(hctl_, __LINE__).status()); \
  }                                                                \
  lhs = *std::move(HCTL_CONCAT(hctl_, __LINE__))
#define HCTL_CONCAT_INNER(a, b) a##b
#define HCTL_CONCAT(a, b) HCTL_CONCAT_INNER(a, b)

// Splits a resource argument into the parent and the id of a new resource:
// "tenants/acme/teams/t1" or "t1" with --tenant=acme -> {"tenants/acme", "t1"}.
absl::StatusOr<std::pair<std::string, std::string>> ParentAndId(const Names& names,
                                                                std::string_view collection,
                                                                std::string_view arg);

// A secret from --<flag>-file=F or --<flag>-env=VAR (never from the command line itself).
// nullopt when neither flag was given.
absl::StatusOr<std::optional<std::string>> ReadSecretFlags(Session& session,
                                                           const ParsedCommand& command,
                                                           std::string_view flag);

// A count flag of a create or update: when `flag` was given, parses it (ParseCount), sets it on
// `message` with `set` and names `path` in `paths`; OK when it was not given.
//   ApplyCountFlag(c, "pace", account, &v1::Account::set_sends_per_minute, "sends_per_minute",
//                  paths)
template <typename Message, typename Value>
absl::Status ApplyCountFlag(const ParsedCommand& command, std::string_view flag, Message* message,
                            void (Message::*set)(Value), std::string_view path,
                            std::vector<std::string>* paths) {
  if (!command.Has(flag)) return absl::OkStatus();
  absl::StatusOr<int32_t> value = ParseCount(flag, command.Get(flag));
  if (!value.ok()) return value.status();
  (message->*set)(*value);
  paths->emplace_back(path);
  return absl::OkStatus();
}

// Fetches the pages of a paged List call into `all`, in order, until the last page or until
// `enough(all)` is true after a page; then `*more` tells whether the server had more (a page
// token left). Returns kExitOk, or the exit code of a failure already reported on stderr.
//   call(context, request, response) -> grpc::Status
//   enough(const Response&) -> bool
template <typename Response, typename Request, typename Call, typename Enough>
int FetchPages(Session& session, Request request, Call call, Enough enough, Response* all,
               bool* more) {
  *more = false;
  while (true) {
    Response page;
    auto context = session.Context();
    const grpc::Status status = call(context.get(), request, &page);
    if (!status.ok()) return session.Fail(status);
    const std::string next = page.next_page_token();
    all->MergeFrom(page);
    all->clear_next_page_token();
    if (next.empty()) return kExitOk;
    if (enough(*all)) {
      *more = true;
      return kExitOk;
    }
    if (next == request.page_token()) {
      session.err() << "heraldctl: the server returned the same page token twice\n";
      return kExitRpcError;
    }
    request.set_page_token(next);
  }
}

// Fetches every page of a paged List call into one response and prints it.
//   call(context, request, response) -> grpc::Status
template <typename Response, typename Request, typename Call>
int ListAllPages(Session& session, Request request, Call call) {
  Response all;
  bool more = false;
  const int code = FetchPages(
      session, std::move(request), call, [](const Response&) { return false; }, &all, &more);
  return code == kExitOk ? session.PrintList(all, ToTable(all)) : code;
}

// Each file adds its resource's commands.
void AddAdminCommands(std::vector<CommandSpec>& commands);       // tenants, keys
void AddAccountCommands(std::vector<CommandSpec>& commands);     // teams, accounts
void AddContentCommands(std::vector<CommandSpec>& commands);     // media, lists, segments
void AddCampaignCommands(std::vector<CommandSpec>& commands);    // campaigns
void AddAnalyticsCommands(std::vector<CommandSpec>& commands);   // campaigns stats, buyers, top;
                                                                 // accounts overview
void AddEventCommands(std::vector<CommandSpec>& commands);       // events
void AddAutomationCommands(std::vector<CommandSpec>& commands);  // automations

}  // namespace herald::heraldctl
