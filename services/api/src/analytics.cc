// AnalyticsService: a campaign's or account's revenue and buyers.

#include <absl/strings/numbers.h>

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
          size_t offset = 0;
          if (!after.empty() && !absl::SimpleAtoi(after, &offset)) {
            co_return absl::InvalidArgumentError("page_token: malformed");
          }
          HERALD_CO_ASSIGN_OR_RETURN(std::vector<webhooks::Buyer> buyers,
                                     co_await analytics_.CampaignBuyers(c.tenant, id));
          v1::ListCampaignBuyersResponse out;
          const size_t end = std::min(buyers.size(), offset + static_cast<size_t>(size));
          for (size_t i = offset; i < end; ++i) *out.add_buyers() = ToProto(c.tenant, buyers[i]);
          if (end < buyers.size()) {
            out.set_next_page_token(EncodePageToken(StrCat(end), fingerprint));
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
