// campaigns: CampaignService, including `watch` with its live progress bar.
#include <absl/time/time.h>

#include <herald/common/strings.h>
#include <herald/heraldctl/campaign_input.h>
#include <herald/heraldctl/values.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>

#include "interrupt.h"
#include "session.h"

namespace herald::heraldctl {
namespace {

std::unique_ptr<v1::CampaignService::Stub> Stub(Session& s) {
  return v1::CampaignService::NewStub(s.channel());
}

int PrintOrWatch(Session& s, const ParsedCommand& c, const v1::Campaign& campaign);

absl::Status CampaignFromFileAndFlags(const ParsedCommand& c, const Names& names,
                                      v1::Campaign* campaign, std::vector<std::string>* paths);

// The account --all-accounts stands for while the command line and the file are read.
constexpr char kEveryAccount[] = "acct_listed";

// The campaign of --file and the flags (`paths`: the fields they name). With --all-accounts,
// the targets are built for one stand-in account and, once the rest is found good (a usage
// error never reaches the server), copied to every account of the tenant (of --team when given)
// as the server lists them. Each input is read once: a file may be stdin. Returns kExitOk, or
// the exit code of a usage error, a failed listing or a tenant without accounts (rejected, as
// the server would), already reported.
int ReadCampaign(Session& s, const ParsedCommand& given, v1::Campaign* campaign,
                 std::vector<std::string>* paths) {
  ParsedCommand c = given;
  const bool all = c.Has("all-accounts") && c.GetBool("all-accounts");
  if (!all && c.Has("team")) {
    return s.Usage(absl::InvalidArgumentError("--team goes with --all-accounts"));
  }
  if (all && c.Has("accounts")) {
    return s.Usage(absl::InvalidArgumentError("give --accounts or --all-accounts, not both"));
  }
  if (all) c.flags["accounts"] = kEveryAccount;
  if (absl::Status st = CampaignFromFileAndFlags(c, s.names(), campaign, paths); !st.ok()) {
    return s.Usage(st);
  }
  if (!all) return kExitOk;
  std::string stand_in;
  HCTL_ASSIGN_OR_USAGE(stand_in, s, s.names().Resolve("accounts", kEveryAccount));
  v1::ListAccountsRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  if (c.Has("team")) {
    HCTL_ASSIGN_OR_USAGE(*request.mutable_team(), s, s.names().Resolve("teams", c.Get("team")));
  }
  auto stub = v1::AccountService::NewStub(s.channel());
  v1::ListAccountsResponse listed;
  bool more = false;
  const int code = FetchPages(
      s, request,
      [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListAccounts(context, r, response);
      },
      [](const v1::ListAccountsResponse&) { return false; }, &listed, &more);
  if (code != kExitOk) return code;
  if (listed.accounts().empty()) {
    s.err() << "heraldctl: --all-accounts: "
            << (c.Has("team") ? StrCat("team '", c.Get("team"), "' has") : "the tenant has")
            << " no accounts\n";
    return kExitRejected;
  }
  // Every target is the stand-in's (--all-accounts replaces the file's targets, as --accounts
  // does).
  const v1::AccountTarget prototype = campaign->targets(0);
  campaign->clear_targets();
  for (const v1::Account& account : listed.accounts()) {
    v1::AccountTarget* target = campaign->add_targets();
    *target = prototype;
    target->set_account(account.name());
  }
  return kExitOk;
}

absl::Status CampaignFromFileAndFlags(const ParsedCommand& c, const Names& names,
                                      v1::Campaign* campaign, std::vector<std::string>* paths) {
  if (c.Has("file")) {
    absl::StatusOr<std::string> text = ReadFile(c.Get("file"));
    if (!text.ok()) return text.status();
    if (absl::Status st = ParseCampaignFile(*text, campaign, paths); !st.ok()) {
      return absl::InvalidArgumentError(StrCat(c.Get("file"), ": ", st.message()));
    }
  }
  std::vector<std::string> flag_paths;
  if (absl::Status st = ApplyCampaignFlags(c, names, campaign, &flag_paths); !st.ok()) return st;
  for (std::string& path : flag_paths) {
    // A whole-field path from the file already covers its sub-fields.
    const std::string top = path.substr(0, path.find('.'));
    if (std::find(paths->begin(), paths->end(), top) == paths->end()) {
      paths->push_back(std::move(path));
    }
  }
  return absl::OkStatus();
}

// A campaign file may be the output of `campaigns get --json`: its output-only fields are not
// sent.
void ClearOutputOnly(v1::Campaign* campaign) {
  campaign->clear_name();
  campaign->clear_state();
  campaign->clear_state_reason();
  campaign->clear_delivery_counts();
  campaign->clear_create_time();
  campaign->clear_update_time();
  campaign->clear_dispatch_time();
  campaign->clear_end_time();
  campaign->clear_revision();
}

int CampaignsCreate(Session& s, const ParsedCommand& c) {
  v1::CreateCampaignRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  std::vector<std::string> paths;
  if (const int code = ReadCampaign(s, c, request.mutable_campaign(), &paths); code != kExitOk) {
    return code;
  }
  // A draft's own `campaigns get --json` fed back makes a draft again, never a send.
  if (request.campaign().state() == v1::Campaign::DRAFT) {
    request.mutable_campaign()->set_save_as_draft(true);
  }
  ClearOutputOnly(request.mutable_campaign());
  if (c.Has("draft")) request.mutable_campaign()->set_save_as_draft(c.GetBool("draft"));
  if (request.campaign().targets().empty()) {
    return s.Usage(absl::InvalidArgumentError(
        "no target accounts: give --accounts=acct_a,acct_b, --all-accounts or targets in --file"));
  }
  request.set_request_id(c.Get("request-id"));
  v1::Campaign response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->CreateCampaign(context.get(), request, &response);
  return status.ok() ? PrintOrWatch(s, c, response) : s.Fail(status);
}

int CampaignsUpdate(Session& s, const ParsedCommand& c) {
  v1::UpdateCampaignRequest request;
  std::vector<std::string> paths;
  if (const int code = ReadCampaign(s, c, request.mutable_campaign(), &paths); code != kExitOk) {
    return code;
  }
  // Only writable fields go into the mask: a file saved with `campaigns get --json` carries
  // the name (taken from the argument instead) and output-only fields, which are ignored.
  std::erase_if(paths, [](const std::string& path) {
    static constexpr std::string_view kWritable[] = {
        "display_name", "content", "targets", "send_time", "grace_period", "upstream_lead"};
    const std::string_view top = std::string_view(path).substr(0, path.find('.'));
    return std::find(std::begin(kWritable), std::end(kWritable), top) == std::end(kWritable);
  });
  ClearOutputOnly(request.mutable_campaign());
  HCTL_ASSIGN_OR_USAGE(*request.mutable_campaign()->mutable_name(), s,
                       s.names().Resolve("campaigns", c.args[0]));
  if (paths.empty()) return s.Usage(absl::InvalidArgumentError("nothing to update; see --help"));
  for (const std::string& path : paths) request.mutable_update_mask()->add_paths(path);
  v1::Campaign response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->UpdateCampaign(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int CampaignsGet(Session& s, const ParsedCommand& c) {
  v1::GetCampaignRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("campaigns", c.args[0]));
  v1::Campaign response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->GetCampaign(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

// The states --state names, comma separated, in any case; `parse` is the enum's State_Parse.
template <typename State, typename Parse>
absl::StatusOr<std::vector<State>> ParseStates(const ParsedCommand& c, Parse parse) {
  std::vector<State> out;
  for (const std::string& name : ParseList(c.Get("state"))) {
    State state;
    if (!parse(AsciiUpper(name), &state) || state == State{}) {
      return absl::InvalidArgumentError(StrCat("--state: unknown state '", name, "'"));
    }
    out.push_back(state);
  }
  return out;
}

int CampaignsList(Session& s, const ParsedCommand& c) {
  v1::ListCampaignsRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  HCTL_ASSIGN_OR_USAGE(const auto states, s,
                       ParseStates<v1::Campaign::State>(c, v1::Campaign::State_Parse));
  for (const v1::Campaign::State state : states) request.add_states(state);
  if (c.Has("created-after")) {
    HCTL_ASSIGN_OR_USAGE(const absl::Time t, s, ParseTime("created-after", c.Get("created-after")));
    SetTimestamp(t, request.mutable_create_time_after());
  }
  if (c.Has("created-before")) {
    HCTL_ASSIGN_OR_USAGE(const absl::Time t, s,
                         ParseTime("created-before", c.Get("created-before")));
    SetTimestamp(t, request.mutable_create_time_before());
  }
  auto stub = Stub(s);
  return ListAllPages<v1::ListCampaignsResponse>(
      s, request, [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListCampaigns(context, r, response);
      });
}

// Launch, pause and resume: a name in, the campaign out.
template <typename Request, auto kMethod>
int NameToCampaign(Session& s, const ParsedCommand& c) {
  Request request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("campaigns", c.args[0]));
  v1::Campaign response;
  auto context = s.Context();
  auto stub = Stub(s);
  const grpc::Status status = ((*stub).*kMethod)(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int CampaignsLaunch(Session& s, const ParsedCommand& c) {
  v1::LaunchCampaignRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("campaigns", c.args[0]));
  v1::Campaign response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->LaunchCampaign(context.get(), request, &response);
  return status.ok() ? PrintOrWatch(s, c, response) : s.Fail(status);
}

int CampaignsCancel(Session& s, const ParsedCommand& c) {
  v1::CancelCampaignRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("campaigns", c.args[0]));
  v1::CancelCampaignResponse response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->CancelCampaign(context.get(), request, &response);
  if (!status.ok()) return s.Fail(status);
  const int code = response.not_undone().empty() ? kExitOk : kExitCampaignOutcome;
  if (s.global().json) {
    const int printed = s.Print(response);
    return printed == kExitOk ? code : printed;
  }
  s.Print(response.campaign());
  if (!response.not_undone().empty()) {
    v1::ListDeliveriesResponse not_undone;
    *not_undone.mutable_deliveries() = response.not_undone();
    s.out() << "\nNot undone on the upstream:\n" << RenderTable(ToTable(not_undone));
  }
  return code;
}

int CampaignsDeliveries(Session& s, const ParsedCommand& c) {
  v1::ListDeliveriesRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Resolve("campaigns", c.args[0]));
  HCTL_ASSIGN_OR_USAGE(const auto states, s,
                       ParseStates<v1::Delivery::State>(c, v1::Delivery::State_Parse));
  for (const v1::Delivery::State state : states) request.add_states(state);
  auto stub = Stub(s);
  return ListAllPages<v1::ListDeliveriesResponse>(
      s, request, [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListDeliveries(context, r, response);
      });
}

int CampaignsTestSend(Session& s, const ParsedCommand& c) {
  v1::SendTestMessageRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_campaign(), s, s.names().Resolve("campaigns", c.args[0]));
  if (!c.Has("account") || !c.Has("fans")) {
    return s.Usage(absl::InvalidArgumentError("--account and --fans are required"));
  }
  HCTL_ASSIGN_OR_USAGE(*request.mutable_account(), s,
                       s.names().Resolve("accounts", c.Get("account")));
  HCTL_ASSIGN_OR_USAGE(const std::vector<int64_t> ids, s, ParseFanIds("fans", c.Get("fans")));
  request.mutable_fan_ids()->Add(ids.begin(), ids.end());
  v1::SendTestMessageResponse response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->SendTestMessage(context.get(), request, &response);
  if (!status.ok()) return s.Fail(status);
  return s.PrintDone(
      response, StrCat("test message sent: upstream message ", response.upstream_message_id()));
}

int CampaignsQueue(Session& s, const ParsedCommand& c) {
  v1::ListUpstreamQueueRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_account(), s, s.names().Resolve("accounts", c.args[0]));
  v1::ListUpstreamQueueResponse response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->ListUpstreamQueue(context.get(), request, &response);
  return status.ok() ? s.PrintList(response, ToTable(response, absl::Now())) : s.Fail(status);
}

// Follows the campaign until the stream ends (with `follow_revenue`, until Ctrl-C); returns the
// exit code of its final state.
int WatchUntilFinal(Session& s, const std::string& name, bool follow_revenue) {
  v1::WatchCampaignRequest request;
  request.set_name(name);
  request.set_follow_revenue(follow_revenue);
  WatchPrinter printer(s.global().json              ? WatchPrinter::Mode::kJson
                       : s.terminal().stdout_is_tty ? WatchPrinter::Mode::kLive
                                                    : WatchPrinter::Mode::kLines,
                       s.terminal().width);
  CancelOnInterrupt interrupt;
  StreamResumer resumer(interrupt);
  grpc::Status status;
  bool again = true;
  while (again) {
    // No deadline: the stream lasts as long as the campaign (or, following revenue, until
    // Ctrl-C). Opened again, it starts with the whole campaign, and the printer leaves out what
    // it has shown already.
    auto context = s.Context(/*with_deadline=*/false);
    interrupt.Bind(context.get());
    resumer.Opening();
    auto reader = Stub(s)->WatchCampaign(context.get(), request);
    v1::WatchCampaignResponse change;
    bool delivered = false;
    while (reader->Read(&change)) {
      delivered = true;
      s.out() << printer.Update(change);
      if (!s.out().flush()) {
        // Changes read on would be lost: stop (RunCli says why).
        context->TryCancel();
        reader->Finish();
        interrupt.Bind(nullptr);
        return kExitRpcError;
      }
    }
    status = reader->Finish();
    interrupt.Bind(nullptr);
    // Its first message is the whole campaign: a watch the server answered delivered it.
    again = resumer.Again(status, delivered, /*answered=*/delivered, s.err());
  }
  s.out() << printer.Finish();
  s.out().flush();
  // Stopped on purpose: the CANCELLED that follows is not an error; the state reached decides.
  const bool interrupted = interrupt.interrupted();
  if (!status.ok() && !interrupted) return s.Fail(status);
  std::string message;
  const int code = printer.ExitCode(&message, interrupted);
  if (!message.empty()) s.err() << "heraldctl: " << message << "\n";
  return code;
}

int CampaignsWatch(Session& s, const ParsedCommand& c) {
  HCTL_ASSIGN_OR_USAGE(const std::string name, s, s.names().Resolve("campaigns", c.args[0]));
  return WatchUntilFinal(s, name, c.GetBool("revenue"));
}

// After a create or launch: the campaign, then (with --watch) its progress until final.
int PrintOrWatch(Session& s, const ParsedCommand& c, const v1::Campaign& campaign) {
  if (!c.GetBool("watch") || campaign.state() == v1::Campaign::DRAFT) return s.Print(campaign);
  if (s.global().json) {
    // One WatchCampaignResponse per line, this first one included.
    v1::WatchCampaignResponse created;
    *created.mutable_campaign() = campaign;
    s.out() << ToJson(created) << "\n";
  } else {
    s.out() << "campaign " << campaign.name() << " " << v1::Campaign::State_Name(campaign.state())
            << "\n";
  }
  return WatchUntilFinal(s, campaign.name(), /*follow_revenue=*/false);
}

}  // namespace

void AddCampaignCommands(std::vector<CommandSpec>& commands) {
  const FlagSpec watch_flag{"watch", "",
                            "then follow the campaign until it is final, as `campaigns watch`"};
  std::vector<FlagSpec> create_flags = CampaignFlagSpecs();
  create_flags.push_back({"draft", "", "save as a DRAFT instead of sending (launch sends it)"});
  create_flags.push_back(watch_flag);
  create_flags.push_back({"request-id", "ID", "idempotency id: a retry returns the first result"});
  commands.push_back(
      {"campaigns", "create", "", 0, 0,
       "Create a campaign: send now, schedule with --send-at, or save with --draft",
       "Content and targets come from flags, a --file (YAML or JSON, the Campaign message's\n"
       "fields), or both (flags override the file). Every account in --accounts (or, with\n"
       "--all-accounts, every account of the tenant or of --team) gets the same targets\n"
       "(--lists, --fans, --exclude-lists, --segment; default: the \"fans\" list).\n\n"
       "  heraldctl campaigns create --text='New set' --price=15.00 --media=teaser \\\n"
       "      --accounts=acct_a,acct_b --lists=fans --send-at=2026-05-01T20:00:00Z",
       create_flags, CampaignsCreate});
  commands.push_back({"campaigns",
                      "list",
                      "",
                      0,
                      0,
                      "List campaigns, newest first",
                      "",
                      {{"state", "STATES",
                        "only these states, comma separated (e.g. "
                        "SCHEDULED,SENDING)"},
                       {"created-after", "TIME", "only campaigns created at or after (RFC 3339)"},
                       {"created-before", "TIME", "only campaigns created before (RFC 3339)"}},
                      CampaignsList});
  commands.push_back(
      {"campaigns", "get", "CAMPAIGN", 1, 1, "Show a campaign", "", {}, CampaignsGet});
  commands.push_back(
      {"campaigns", "update", "CAMPAIGN", 1, 1,
       "Change a draft or scheduled campaign (only what the flags or --file set)",
       "The update mask holds the fields given: each flag's field, and every top-level field\n"
       "the --file sets. --accounts (or --all-accounts) replaces all targets.",
       CampaignFlagSpecs(), CampaignsUpdate});
  commands.push_back({"campaigns",
                      "launch",
                      "CAMPAIGN",
                      1,
                      1,
                      "Send a draft now, or schedule it when it has a send time",
                      "",
                      {watch_flag},
                      CampaignsLaunch});
  commands.push_back({"campaigns",
                      "cancel",
                      "CAMPAIGN",
                      1,
                      1,
                      "Cancel a campaign; lists what the upstream could not undo",
                      "Exit code 3 when some accounts' messages could not be undone.",
                      {},
                      CampaignsCancel});
  commands.push_back(
      {"campaigns",
       "pause",
       "CAMPAIGN",
       1,
       1,
       "Hold the deliveries that have not sent yet",
       "",
       {},
       NameToCampaign<v1::PauseCampaignRequest, &v1::CampaignService::Stub::PauseCampaign>});
  commands.push_back(
      {"campaigns",
       "resume",
       "CAMPAIGN",
       1,
       1,
       "Resume a paused campaign",
       "",
       {},
       NameToCampaign<v1::ResumeCampaignRequest, &v1::CampaignService::Stub::ResumeCampaign>});
  commands.push_back(
      {"campaigns",
       "watch",
       "CAMPAIGN",
       1,
       1,
       "Follow a campaign and its revenue until it is final (--revenue: until Ctrl-C)",
       "On a terminal: a progress bar (deliveries finished/total, recipients delivered, then\n"
       "purchases and gross revenue once there are any), failed deliveries printed above it.\n"
       "Otherwise one line per change, revenue included (\"revenue: 42 purchases, gross\n"
       "$419.58, net $335.66\"); with --json one WatchCampaignResponse per line (campaign,\n"
       "delivery or stats). Exits 0 when the campaign COMPLETED, 3 when it ended in another\n"
       "final state. Ctrl-C ends the watch: with the exit code of the final state once there is\n"
       "one, 1 before. A stream the server ends UNAVAILABLE (a deploy, a reconnect it asks\n"
       "for) is opened again; the watch gives up after 10 failed attempts in a row (2 while the "
       "server never answered).",
       {{"revenue", "",
         "keep showing revenue after the campaign is final (purchases arrive for days), until "
         "Ctrl-C"}},
       CampaignsWatch});
  commands.push_back(
      {"campaigns",
       "deliveries",
       "CAMPAIGN",
       1,
       1,
       "List a campaign's deliveries (one per account)",
       "",
       {{"state", "STATES", "only these states, comma separated (e.g. FAILED,CANCELLED)"}},
       CampaignsDeliveries});
  commands.push_back({"campaigns",
                      "test-send",
                      "CAMPAIGN",
                      1,
                      1,
                      "Send the campaign's content to a few fans of one account, to check it",
                      "",
                      {{"account", "ACCOUNT", "required: one of the campaign's accounts"},
                       {"fans", "IDS", "required: 1-10 fan ids, comma separated"}},
                      CampaignsTestSend});
  commands.push_back({"campaigns",
                      "queue",
                      "ACCOUNT",
                      1,
                      1,
                      "Show an account's upstream mass-message queue",
                      "",
                      {},
                      CampaignsQueue});
}

}  // namespace herald::heraldctl
