#include <absl/strings/numbers.h>
#include <absl/time/clock.h>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/redis/client.h>
#include <herald/store/audit.h>

namespace herald::store {
namespace {

namespace asio = boost::asio;

// Entries read per XREVRANGE while a tenant filter skips others' entries, and the most read for
// one page, so a page of a rare tenant costs a bounded amount of Redis work.
constexpr int kScanChunk = 500;
constexpr int kScanBudget = 20'000;

// A stream entry id, "<ms>-<seq>": what a page token holds.
bool IsEntryId(std::string_view id) {
  const size_t dash = id.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == id.size()) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i != dash && (id[i] < '0' || id[i] > '9')) return false;
  }
  return id.size() <= 41;
}

// One XREVRANGE entry: [id, [field, value, ...]].
absl::StatusOr<AuditEvent> Decode(const redis::Reply& entry) {
  const auto& parts = entry.elements();
  if (parts.size() != 2) return absl::InternalError("audit stream: malformed entry");
  AuditEvent e;
  e.id = std::string(parts[0].str());
  const auto& fields = parts[1].elements();
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    const std::string_view name = fields[i].str();
    std::string value(fields[i + 1].str());
    if (name == "time_ms") {
      if (!absl::SimpleAtoi(value, &e.time_ms)) {
        return absl::InternalError("audit stream: time_ms is not a number");
      }
    } else if (name == "actor") {
      e.actor = std::move(value);
    } else if (name == "action") {
      e.action = std::move(value);
    } else if (name == "tenant") {
      e.tenant = std::move(value);
    } else if (name == "resource") {
      e.resource = std::move(value);
    } else if (name == "detail") {
      e.detail = std::move(value);
    }
  }
  return e;
}

}  // namespace

asio::awaitable<absl::Status> AuditTrail::Append(AuditEvent event) {
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  redis::Command xadd("XADD", kKey, "MAXLEN", "~", max_events_, "*");
  xadd.Arg("time_ms").Arg(now_ms);
  xadd.Arg("actor").Arg(event.actor);
  xadd.Arg("action").Arg(event.action);
  xadd.Arg("tenant").Arg(event.tenant);
  xadd.Arg("resource").Arg(event.resource);
  if (!event.detail.empty()) xadd.Arg("detail").Arg(event.detail);
  HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply, co_await redis_.Exec(std::move(xadd)));
  co_return reply.ToStatus();
}

asio::awaitable<absl::StatusOr<AuditPage>> AuditTrail::List(AuditQuery query) {
  if (query.page_size < 1 || query.page_size > 1000) {
    co_return absl::InvalidArgumentError("page_size: must be 1-1000");
  }
  if (!query.page_token.empty() && !IsEntryId(query.page_token)) {
    co_return absl::InvalidArgumentError("page_token: not a token from a previous page");
  }
  AuditPage page;
  // Entries older than `end`, newest first; "(" makes the bound exclusive.
  std::string end = query.page_token.empty() ? "+" : StrCat("(", query.page_token);
  int scanned = 0;
  while (true) {
    const int want = query.tenant.empty() ? query.page_size + 1 : kScanChunk;
    redis::Command xrevrange("XREVRANGE", kKey, end, "-", "COUNT", want);
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply, co_await redis_.Exec(std::move(xrevrange)));
    HERALD_CO_RETURN_IF_ERROR(reply.ToStatus());
    const auto& entries = reply.elements();
    for (const redis::Reply& entry : entries) {
      HERALD_CO_ASSIGN_OR_RETURN(AuditEvent e, Decode(entry));
      ++scanned;
      end = StrCat("(", e.id);
      if (!query.tenant.empty() && e.tenant != query.tenant) continue;
      if (static_cast<int>(page.events.size()) == query.page_size) {
        // One more matching entry exists: the page ends before it.
        page.next_page_token = page.events.back().id;
        co_return page;
      }
      page.events.push_back(std::move(e));
    }
    if (static_cast<int>(entries.size()) < want) co_return page;  // the stream's oldest entry
    if (scanned >= kScanBudget) {
      // A sparse tenant: the page ends here, and the next one continues the scan.
      page.next_page_token = end.substr(1);
      co_return page;
    }
  }
}

}  // namespace herald::store
