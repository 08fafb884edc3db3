// events tail: EventService.Subscribe.
#include <string>
#include <string_view>

#include <herald/common/strings.h>
#include <herald/heraldctl/values.h>
#include <herald/v1/events.grpc.pb.h>

#include "interrupt.h"
#include "session.h"

namespace herald::heraldctl {
namespace {

// Subscribe's response header naming the cursor a stream starts after (events.proto).
constexpr std::string_view kStartCursorHeader = "herald-start-cursor";

int EventsTail(Session& s, const ParsedCommand& c) {
  v1::SubscribeRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  for (const std::string& value : c.GetAll("type")) {
    for (std::string& type : ParseList(value)) request.add_event_types(std::move(type));
  }
  for (const std::string& value : c.GetAll("account")) {
    for (const std::string& account : ParseList(value)) {
      HCTL_ASSIGN_OR_USAGE(*request.add_accounts(), s, s.names().Resolve("accounts", account));
    }
  }
  const std::string from = c.Get("from", "now");
  if (from.empty()) {
    return s.Usage(absl::InvalidArgumentError("--from: give now, oldest or an event's cursor"));
  }
  // The server reads "" as "from now on" and "0" as "from the oldest event kept".
  request.set_cursor(from == "now" ? "" : from == "oldest" ? "0" : from);
  // With filters, the events passed over move the resume point too (progress reports).
  request.set_progress(true);
  int64_t limit = 0;  // no limit
  if (c.Has("limit")) {
    HCTL_ASSIGN_OR_USAGE(limit, s, ParseCount("limit", c.Get("limit")));
    if (limit == 0) return s.Usage(absl::InvalidArgumentError("--limit: must be at least 1"));
  }

  auto stub = v1::EventService::NewStub(s.channel());
  CancelOnInterrupt interrupt;
  StreamResumer resumer(interrupt);
  grpc::Status status;
  int64_t received = 0;
  bool enough = false;
  bool again = true;
  while (again) {
    // No deadline: the stream lasts until --limit, Ctrl-C or an error ends it. Opened again, it
    // resumes after the last event printed, or where the first stream started.
    auto context = s.Context(/*with_deadline=*/false);
    interrupt.Bind(context.get());
    resumer.Opening();
    auto reader = stub->Subscribe(context.get(), request);
    v1::Event event;
    bool delivered = false;
    while (reader->Read(&event)) {
      delivered = true;
      request.set_cursor(event.cursor());
      if (event.event_type().empty()) continue;  // a progress report: nothing to print
      s.out() << (s.global().json ? ToJson(event) : EventLine(event)) << "\n";
      if (!s.out().flush()) {
        // Events read on would be lost: stop (RunCli says why).
        context->TryCancel();
        reader->Finish();
        interrupt.Bind(nullptr);
        return kExitRpcError;
      }
      if (limit > 0 && ++received >= limit) {
        enough = true;
        context->TryCancel();
        break;
      }
    }
    status = reader->Finish();
    interrupt.Bind(nullptr);
    // The server sends the start cursor once it has read where the stream starts: it answered.
    const auto& headers = context->GetServerInitialMetadata();
    const grpc::string_ref name(kStartCursorHeader.data(), kStartCursorHeader.size());
    const auto start = headers.find(name);
    const bool answered = start != headers.end();
    if (!delivered && request.cursor().empty() && answered) {
      // From now on, and nothing printed yet: resume where this stream started.
      request.set_cursor(std::string(start->second.data(), start->second.size()));
    }
    again = !enough && resumer.Again(status, delivered, answered, s.err());
  }
  // Stopped on purpose: the CANCELLED that follows is not an error.
  if (enough || interrupt.interrupted()) return kExitOk;
  return status.ok() ? kExitOk : s.Fail(status);
}

}  // namespace

void AddEventCommands(std::vector<CommandSpec>& commands) {
  commands.push_back(
      {"events",
       "tail",
       "",
       0,
       0,
       "Print the tenant's events as Herald applies them, until stopped",
       "One line per event: time applied, type, account, upstream message, fan, amount and the\n"
       "event's cursor (pass it to --from to continue after it). --json prints one Event per\n"
       "line. Stops after --limit events or on Ctrl-C (exit 0), or when the stream fails (the\n"
       "error's exit code; RESOURCE_EXHAUSTED when too far behind: resume from the last cursor).\n"
       "A stream the server ends UNAVAILABLE (a deploy, a reconnect it asks for) is opened\n"
       "again after the last event printed; the tail gives up after 10 failed attempts in a row (2 "
       "while the server never answered).",
       {{"type", "TYPE", "only events of TYPE (transactions.new, ...); repeatable, or a,b"},
        {"account", "ACCOUNT", "only events of ACCOUNT; repeatable, or a,b"},
        {"from", "CURSOR", "now (default), oldest (the oldest kept) or an event's cursor"},
        {"limit", "N", "stop after N events"}},
       EventsTail});
}

}  // namespace herald::heraldctl
