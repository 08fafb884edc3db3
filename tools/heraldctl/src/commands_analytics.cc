// campaigns stats, buyers and top, accounts overview: AnalyticsService.
#include <algorithm>
#include <optional>

#include <absl/time/clock.h>
#include <google/protobuf/timestamp.pb.h>

#include <herald/common/strings.h>
#include <herald/heraldctl/values.h>
#include <herald/v1/analytics.grpc.pb.h>

#include "session.h"

namespace herald::heraldctl {
namespace {

// The largest page ListCampaignBuyers serves.
constexpr int32_t kMaxBuyersPage = 1000;
// The most campaigns TopCampaigns ranks in one answer.
constexpr int32_t kMaxTopCampaigns = 100;

std::unique_ptr<v1::AnalyticsService::Stub> Stub(Session& s) {
  return v1::AnalyticsService::NewStub(s.channel());
}

int CampaignsStats(Session& s, const ParsedCommand& c) {
  v1::GetCampaignStatsRequest request;
  HCTL_ASSIGN_OR_USAGE(std::string name, s, s.names().Resolve("campaigns", c.args[0]));
  // The stats resource's own name is accepted too.
  if (!name.ends_with("/stats")) name += "/stats";
  request.set_name(std::move(name));
  v1::CampaignStats response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->GetCampaignStats(context.get(), request, &response);
  if (!status.ok()) return s.Fail(status);
  if (s.global().json) return s.Print(response);
  s.out() << RenderCampaignStats(response);
  s.out().flush();
  return kExitOk;
}

int CampaignsBuyers(Session& s, const ParsedCommand& c) {
  v1::ListCampaignBuyersRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Resolve("campaigns", c.args[0]));
  int32_t limit = 0;  // every buyer
  if (c.Has("limit")) {
    HCTL_ASSIGN_OR_USAGE(limit, s, ParseCount("limit", c.Get("limit")));
    if (limit == 0) return s.Usage(absl::InvalidArgumentError("--limit: must be at least 1"));
    // Every page has the same size, so the last page may bring more than needed; the extra
    // buyers are dropped.
    request.set_page_size(std::min(limit, kMaxBuyersPage));
  }
  auto stub = Stub(s);
  v1::ListCampaignBuyersResponse all;
  bool more = false;
  const int code = FetchPages(
      s, request,
      [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListCampaignBuyers(context, r, response);
      },
      [&](const v1::ListCampaignBuyersResponse& so_far) {
        return limit > 0 && so_far.buyers_size() >= limit;
      },
      &all, &more);
  if (code != kExitOk) return code;
  if (limit > 0 && all.buyers_size() > limit) {
    all.mutable_buyers()->DeleteSubrange(limit, all.buyers_size() - limit);
    more = true;
  }
  s.PrintList(all, ToTable(all));
  // On stderr, so that --json output stays one document.
  if (more) {
    s.err() << "heraldctl: showing the first " << limit
            << " buyers; there are more (raise --limit)\n";
  }
  return kExitOk;
}

int CampaignsTop(Session& s, const ParsedCommand& c) {
  v1::TopCampaignsRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  if (c.Has("since") && c.Has("start")) {
    return s.Usage(absl::InvalidArgumentError("give --since or --start, not both"));
  }
  std::optional<absl::Time> start;
  std::optional<absl::Time> end;
  if (c.Has("end")) {
    HCTL_ASSIGN_OR_USAGE(end, s, ParseTime("end", c.Get("end")));
    SetTimestamp(*end, request.mutable_end_time());
  }
  if (c.Has("start")) {
    HCTL_ASSIGN_OR_USAGE(start, s, ParseTime("start", c.Get("start")));
  }
  if (c.Has("since")) {
    HCTL_ASSIGN_OR_USAGE(const absl::Duration since, s, ParseLookback("since", c.Get("since")));
    // The period before --end, or before now (the server's default end).
    start = end.value_or(absl::Now()) - since;
  }
  if (start) {
    if (end && *start >= *end) {
      return s.Usage(
          absl::InvalidArgumentError("the range is empty: --end must be after its start"));
    }
    SetTimestamp(*start, request.mutable_start_time());
  }
  if (c.Has("limit")) {
    HCTL_ASSIGN_OR_USAGE(const int32_t limit, s, ParseCount("limit", c.Get("limit")));
    if (limit < 1 || limit > kMaxTopCampaigns) {
      return s.Usage(
          absl::InvalidArgumentError(StrCat("--limit: must be between 1 and ", kMaxTopCampaigns)));
    }
    request.set_limit(limit);
  }
  v1::TopCampaignsResponse response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->TopCampaigns(context.get(), request, &response);
  return status.ok() ? s.PrintList(response, ToTable(response)) : s.Fail(status);
}

int AccountsOverview(Session& s, const ParsedCommand& c) {
  v1::GetAccountOverviewRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("accounts", c.args[0]));
  v1::AccountOverview response;
  auto context = s.Context();
  const grpc::Status status = Stub(s)->GetAccountOverview(context.get(), request, &response);
  if (!status.ok()) return s.Fail(status);
  if (s.global().json) return s.Print(response);
  s.out() << RenderAccountOverview(response);
  s.out().flush();
  return kExitOk;
}

}  // namespace

void AddAnalyticsCommands(std::vector<CommandSpec>& commands) {
  commands.push_back(
      {"campaigns",
       "stats",
       "CAMPAIGN",
       1,
       1,
       "Show what a campaign earned: totals, unlock rate and one row per account",
       "Figures come from the upstream's events as they arrive; money is exact, in dollars.\n"
       "--json prints the CampaignStats message (money in integer cents).",
       {},
       CampaignsStats});
  commands.push_back({"campaigns",
                      "buyers",
                      "CAMPAIGN",
                      1,
                      1,
                      "List the fans who bought a campaign's message, earliest purchase first",
                      "",
                      {{"limit", "N", "at most N buyers (default: every buyer)"}},
                      CampaignsBuyers});
  commands.push_back(
      {"campaigns",
       "top",
       "",
       0,
       0,
       "Rank the tenant's campaigns created in a time range by gross revenue",
       "The range is --start (or --since before --end) to --end; by default the 30 days before\n"
       "--end (or now). --json prints the TopCampaignsResponse (money in integer cents, "
       "unlock_rate as a\n"
       "fraction).",
       {{"since", "PERIOD", "campaigns created in the PERIOD before --end or now (7d, 12h, 90m)"},
        {"start", "TIME", "campaigns created at or after TIME (RFC 3339)"},
        {"end", "TIME", "campaigns created before TIME (RFC 3339; default now)"},
        {"limit", "N", "the best N campaigns, 1-100 (default 10)"}},
       CampaignsTop});
  commands.push_back(
      {"accounts",
       "overview",
       "ACCOUNT",
       1,
       1,
       "Show an account's totals over every campaign and event",
       "Messages sent, purchases and revenue (in dollars), purchases found by reconciliation,\n"
       "new subscribers and the fans Herald knows. --json prints the AccountOverview message\n"
       "(money in integer cents).",
       {},
       AccountsOverview});
}

}  // namespace herald::heraldctl
