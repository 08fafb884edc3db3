// AnalyticsService: a campaign's or account's revenue and buyers.

#include <algorithm>
#include <iterator>
#include <optional>
#include <string_view>
#include <tuple>
#include <vector>

#include <absl/strings/str_split.h>

#include <herald/campaign/analytics.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/v1/analytics.grpc.pb.h>

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

// A buyer's place in ListCampaignBuyers' order: first purchase, account, fan.
using BuyerPlace = std::tuple<int64_t, std::string, int64_t>;

BuyerPlace PlaceOf(const webhooks::Buyer& b) { return {b.first_purchase_ms, b.account, b.fan_id}; }

// A page token's place: "<first purchase ms>:<fan id>:<account>".
std::optional<BuyerPlace> ParseBuyerPlace(std::string_view text) {
  const std::vector<std::string> parts =
      absl::StrSplit(absl::string_view(text.data(), text.size()), absl::MaxSplits(':', 2));
  if (parts.size() != 3) return std::nullopt;
  const std::optional<int64_t> time = ParseInt<int64_t>(parts[0]);
  const std::optional<int64_t> fan = ParseInt<int64_t>(parts[1]);
  if (!time || !fan) return std::nullopt;
  return BuyerPlace{*time, std::string(parts[2]), *fan};
}

class AnalyticsServiceImpl final : public v1::AnalyticsService::CallbackService {
 public:
  AnalyticsServiceImpl(Bridge& bridge, campaign::Analytics& analytics)
      : bridge_(bridge), analytics_(analytics) {}

  ServerUnaryReactor* GetCampaignStats(CallbackServerContext* ctx,
                                       const v1::GetCampaignStatsRequest* req,
                                       v1::CampaignStats* resp) override {
    return bridge_.Unary(
        ctx, "GetCampaignStats", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::CampaignStats> {
          std::string_view name = req->name();
          if (!name.ends_with("/stats")) {
            co_return absl::InvalidArgumentError(
                "name: must be \"tenants/{tenant}/campaigns/{campaign}/stats\"");
          }
          name.remove_suffix(std::string_view("/stats").size());
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", name, "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(campaign::CampaignFigures figures,
                                     co_await analytics_.CampaignStats(c.tenant, id));
          co_return ToProto(c.tenant, id, figures);
        });
  }

  ServerUnaryReactor* TopCampaigns(CallbackServerContext* ctx, const v1::TopCampaignsRequest* req,
                                   v1::TopCampaignsResponse* resp) override {
    return bridge_.Unary(
        ctx, "TopCampaigns", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::TopCampaignsResponse> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(TopCampaignsQuery q, ParseTopCampaigns(*req, absl::Now()));
          HERALD_CO_ASSIGN_OR_RETURN(
              std::vector<campaign::RankedCampaign> ranked,
              co_await analytics_.TopCampaigns(c.tenant, q.start_ms, q.end_ms, q.limit));
          v1::TopCampaignsResponse out;
          for (const campaign::RankedCampaign& r : ranked) {
            v1::RankedCampaign* p = out.add_campaigns();
            p->set_campaign(ChildNameOf(c.tenant, "campaigns", r.campaign));
            p->set_display_name(r.display_name);
            if (r.create_time_ms != 0) SetTime(r.create_time_ms, p->mutable_create_time());
            *p->mutable_stats() = ToProto(c.tenant, r.campaign, r.figures);
          }
          co_return out;
        });
  }

  ServerUnaryReactor* GetAccountOverview(CallbackServerContext* ctx,
                                         const v1::GetAccountOverviewRequest* req,
                                         v1::AccountOverview* resp) override {
    return bridge_.Unary(ctx, "GetAccountOverview", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::AccountOverview> {
                           HERALD_CO_ASSIGN_OR_RETURN(
                               std::string id, OwnId(c.tenant, "name", req->name(), "accounts"));
                           HERALD_CO_ASSIGN_OR_RETURN(
                               webhooks::AccountTotals t,
                               co_await analytics_.AccountOverview(c.tenant, id));
                           v1::AccountOverview out;
                           out.set_name(ChildNameOf(c.tenant, "accounts", id));
                           out.set_sent(t.sent);
                           out.set_purchases(t.purchases);
                           out.set_gross_revenue_cents(t.gross_cents);
                           out.set_net_revenue_cents(t.net_cents);
                           out.set_fee_cents(t.fee_cents);
                           out.set_reconciled_purchases(t.reconciled);
                           out.set_new_subscribers(t.subscriptions);
                           out.set_known_fans(t.known_fans);
                           co_return out;
                         });
  }

  ServerUnaryReactor* ListCampaignBuyers(CallbackServerContext* ctx,
                                         const v1::ListCampaignBuyersRequest* req,
                                         v1::ListCampaignBuyersResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListCampaignBuyers", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListCampaignBuyersResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "parent", req->parent(), "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(int size, ParsePageSize(req->page_size(), 100, 1000));
          const uint64_t fingerprint = Fingerprint(StrCat("buyers/", req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(std::string after,
                                     DecodePageToken(req->page_token(), fingerprint));
          // A page goes on after the last buyer of the one before, by its place in the order
          // (first purchase, account, fan), not by a count: buyers credited meanwhile neither
          // repeat one listed nor push one off. A new buyer whose purchase the upstream dates
          // before that place (a late webhook) is on the next listing from the start, not on a
          // later page of this one.
          std::optional<BuyerPlace> from;
          if (!after.empty()) {
            from = ParseBuyerPlace(after);
            if (!from) co_return absl::InvalidArgumentError("page_token: malformed");
          }
          HERALD_CO_ASSIGN_OR_RETURN(std::vector<webhooks::Buyer> buyers,
                                     co_await analytics_.CampaignBuyers(c.tenant, id));
          std::sort(buyers.begin(), buyers.end(),
                    [](const webhooks::Buyer& a, const webhooks::Buyer& b) {
                      return PlaceOf(a) < PlaceOf(b);
                    });
          auto it = buyers.begin();
          if (from) {
            it = std::upper_bound(buyers.begin(), buyers.end(), *from,
                                  [](const BuyerPlace& place, const webhooks::Buyer& b) {
                                    return place < PlaceOf(b);
                                  });
          }
          v1::ListCampaignBuyersResponse out;
          for (; it != buyers.end() && out.buyers_size() < size; ++it) {
            *out.add_buyers() = ToProto(c.tenant, *it);
          }
          if (it != buyers.end()) {
            const webhooks::Buyer& last = *std::prev(it);
            out.set_next_page_token(EncodePageToken(
                StrCat(last.first_purchase_ms, ":", last.fan_id, ":", last.account), fingerprint));
          }
          co_return out;
        });
  }

 private:
  Bridge& bridge_;
  campaign::Analytics& analytics_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeAnalyticsService(Bridge& bridge,
                                                    campaign::Analytics& analytics) {
  return std::make_unique<AnalyticsServiceImpl>(bridge, analytics);
}

}  // namespace herald::api
