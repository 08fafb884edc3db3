// campaigns stats and buyers: AnalyticsService.
#include <algorithm>

#include <herald/common/strings.h>
#include <herald/heraldctl/values.h>
#include <herald/v1/analytics.grpc.pb.h>

#include "session.h"

namespace herald::heraldctl {
namespace {

// The largest page ListCampaignBuyers serves.
constexpr int32_t kMaxBuyersPage = 1000;

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
    // Every page has the same size (the server refuses a token with other fields changed), so
    // the last page may bring more than needed; the extra buyers are dropped.
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
}

}  // namespace herald::heraldctl
