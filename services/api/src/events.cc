#include "events.h"

#include <algorithm>
#include <deque>
#include <mutex>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <herald/common/grpc_status.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/v1/events.grpc.pb.h>
#include <herald/webhooks/recorder.h>

#include "bridge.h"
#include "convert.h"
#include "names.h"
#include "stream.h"

namespace herald::api {
namespace {

namespace asio = boost::asio;

// Stream ids are "<ms>-<seq>"; true when `a` comes before `b`.
bool CursorBefore(std::string_view a, std::string_view b) {
  auto split = [](std::string_view c) {
    const size_t dash = c.find('-');
    return std::make_pair(
        ParseInt<uint64_t>(c.substr(0, dash)).value_or(0),
        dash == std::string_view::npos ? 0 : ParseInt<uint64_t>(c.substr(dash + 1)).value_or(0));
  };
  return split(a) < split(b);
}

bool ValidCursor(std::string_view c) {
  const size_t dash = c.find('-');
  return dash != std::string_view::npos && ParseInt<uint64_t>(c.substr(0, dash)).has_value() &&
         ParseInt<uint64_t>(c.substr(dash + 1)).has_value();
}

class SubscribeReactor final : public StreamReactor<v1::Event> {
 public:
  SubscribeReactor(Bridge& bridge, webhooks::MessageAnalytics& messages,
                   const EventServiceConfig& config, grpc::CallbackServerContext* ctx,
                   const v1::SubscribeRequest& request)
      : StreamReactor(ctx),
        messages_(messages),
        config_(config),
        request_(request),
        timer_(bridge.executor()) {}

 private:
  // The stream's headers carry the cursor it starts after (kStartCursorHeader), once resolved.
  bool HeadersAtOnce() const override { return false; }

  asio::awaitable<absl::Status> Run(const campaign::Caller& c) override {
    auto tenant = ParseTenantName("parent", request_.parent());
    if (!tenant.ok()) co_return tenant.status();
    if (*tenant != c.tenant) {
      co_return absl::NotFoundError(StrCat("'", request_.parent(), "' not found"));
    }
    std::set<std::string> types(request_.event_types().begin(), request_.event_types().end());
    // Herald streams the events it applies; a type it never applies is a mistake to report.
    const std::vector<std::string_view> streamed = webhooks::StreamedEventTypes();
    for (const std::string& type : types) {
      if (std::find(streamed.begin(), streamed.end(), type) == streamed.end()) {
        co_return absl::InvalidArgumentError(StrCat("event_types: '", type,
                                                    "' is not an event Herald streams (",
                                                    StrJoin(streamed, ", "), ")"));
      }
    }
    std::set<std::string> accounts;
    for (int i = 0; i < request_.accounts_size(); ++i) {
      const std::string& name = request_.accounts(i);
      auto account = ParseChildName(StrCat("accounts[", i, "]"), name, "accounts");
      if (!account.ok()) co_return account.status();
      if (account->tenant != c.tenant)
        co_return absl::NotFoundError(StrCat("'", name, "' not found"));
      accounts.insert(account->id);
    }
    std::string cursor = request_.cursor();
    // What a client that has received no event yet resumes from: "from now on" is pinned to
    // the newest event now, so a stream opened again misses nothing applied in between.
    std::string start = cursor;
    if (cursor.empty()) {
      HERALD_CO_ASSIGN_OR_RETURN(cursor, co_await messages_.LatestEventCursor(c.tenant));
      // No event yet: from the oldest, which the first event applied then is.
      const bool none = cursor == "0-0";
      start = none ? "0" : cursor;
      if (none) cursor.clear();
    } else if (cursor == "0") {
      cursor.clear();
    } else if (!ValidCursor(cursor)) {
      co_return absl::InvalidArgumentError("cursor: not a cursor Herald returned");
    } else {
      // A cursor past the newest event was never returned: the stream would wait for ever.
      HERALD_CO_ASSIGN_OR_RETURN(std::string latest,
                                 co_await messages_.LatestEventCursor(c.tenant));
      if (CursorBefore(latest, cursor)) {
        co_return absl::InvalidArgumentError(
            StrCat("cursor: ", cursor, " is past the newest event (", latest,
                   "): not a cursor Herald returned, or the events up to it were lost with a "
                   "Redis failover; resubscribe from now or from \"0\""));
      }
    }
    context()->AddInitialMetadata(std::string(kStartCursorHeader), start);
    SendHeaders();
    while (true) {
      if (cancelled()) co_return absl::CancelledError("the client went away");
      HERALD_CO_RETURN_IF_ERROR(co_await WaitForRoom(c.tenant, cursor));
      // After the wait, which a slow client may make long: no page is read for a revoked key.
      HERALD_CO_RETURN_IF_ERROR(co_await StillAuthenticated());
      HERALD_CO_ASSIGN_OR_RETURN(webhooks::EventPage page,
                                 co_await messages_.ReadEvents(c.tenant, cursor, config_.page));
      // Checked on every page: events trimmed past the cursor are never skipped silently. Only
      // trimming removes events, so a cursor older than the oldest kept may have missed some.
      // (Redis's max-deleted-entry-id would tell whether any after it went, but trimming does
      // not move it.)
      if (!cursor.empty() && !page.oldest.empty() && CursorBefore(cursor, page.oldest)) {
        co_return absl::OutOfRangeError(
            StrCat("cursor ", cursor, " is older than the events kept (oldest: ", page.oldest,
                   "); resubscribe from \"0\" or from now"));
      }
      std::vector<v1::Event> batch;
      bool filtered_last = false;  // the page's last event failed the filters
      for (webhooks::StreamEvent& e : page.events) {
        cursor = e.cursor;
        filtered_last = (!types.empty() && !types.contains(e.type)) ||
                        (!accounts.empty() && !accounts.contains(e.account));
        if (filtered_last) continue;
        v1::Event out;
        out.set_cursor(e.cursor);
        out.set_event_type(e.type);
        out.set_account(ChildNameOf(c.tenant, "accounts", e.account));
        out.set_upstream_message_id(e.message_id);
        out.set_chat_message_id(e.chat_message_id);
        out.set_fan_id(e.fan_id);
        out.set_price_cents(e.price_cents);
        out.set_amount_cents(e.amount_cents);
        if (e.at_ms != 0) SetTime(e.at_ms, out.mutable_apply_time());
        batch.push_back(std::move(out));
      }
      if (filtered_last && request_.progress()) {
        v1::Event progress;  // only a cursor: where a resume goes on
        progress.set_cursor(cursor);
        batch.push_back(std::move(progress));
      }
      Push(batch);
      if (static_cast<int>(page.events.size()) < config_.page) {
        timer_.expires_after(absl::ToChronoNanoseconds(config_.poll));
        boost::system::error_code ec;
        co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
  }

  // Returns once the write queue holds less than a page. A subscriber that has kept it full
  // for lag_check is measured: queued events and those kept after `cursor` (the last one
  // read) over max_backlog cut it off.
  asio::awaitable<absl::Status> WaitForRoom(const std::string& tenant, const std::string& cursor) {
    const size_t room = static_cast<size_t>(config_.page);
    absl::Duration full;
    while (backlog() >= room) {
      if (cancelled()) co_return absl::CancelledError("the client went away");
      timer_.expires_after(absl::ToChronoNanoseconds(config_.drain_poll));
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      full += config_.drain_poll;
      if (full < config_.lag_check) continue;
      full = absl::ZeroDuration();
      const size_t queued = backlog();
      if (queued < room) break;
      const size_t limit = queued < config_.max_backlog ? config_.max_backlog - queued + 1 : 1;
      HERALD_CO_ASSIGN_OR_RETURN(size_t kept,
                                 co_await messages_.CountEventsAfter(tenant, cursor, limit));
      if (queued + kept > config_.max_backlog) {
        co_return WithRetryInfo(absl::ResourceExhaustedError(
                                    StrCat("the subscriber fell more than ", config_.max_backlog,
                                           " events behind; resume from the last cursor received")),
                                absl::Seconds(1));
      }
    }
    co_return absl::OkStatus();
  }

  webhooks::MessageAnalytics& messages_;
  const EventServiceConfig config_;
  const v1::SubscribeRequest request_;
  asio::steady_timer timer_;
};

class EventServiceImpl final : public v1::EventService::CallbackService {
 public:
  EventServiceImpl(Bridge& bridge, webhooks::MessageAnalytics& messages, EventServiceConfig config)
      : bridge_(bridge), messages_(messages), config_(config) {}

  grpc::ServerWriteReactor<v1::Event>* Subscribe(grpc::CallbackServerContext* ctx,
                                                 const v1::SubscribeRequest* request) override {
    auto* reactor = new SubscribeReactor(bridge_, messages_, config_, ctx, *request);
    reactor->Begin(bridge_, "Subscribe");
    return reactor;
  }

 private:
  Bridge& bridge_;
  webhooks::MessageAnalytics& messages_;
  const EventServiceConfig config_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeEventService(Bridge& bridge,
                                                webhooks::MessageAnalytics& messages,
                                                EventServiceConfig config) {
  return std::make_unique<EventServiceImpl>(bridge, messages, config);
}

}  // namespace herald::api
