#include <algorithm>

#include <herald/campaign/analytics.h>
#include <herald/common/status.h>
#include <herald/store/store.h>

namespace herald::campaign {

namespace {

// The deliveries that sent a mass message, as keys of the analytics.
std::vector<webhooks::MessageKey> SentMessages(const std::vector<store::Delivery>& deliveries) {
  std::vector<webhooks::MessageKey> keys;
  for (const store::Delivery& d : deliveries) {
    if (d.upstream_message_id != 0) keys.push_back({d.account, d.upstream_message_id});
  }
  return keys;
}

}  // namespace

Analytics::Op<CampaignFigures> Analytics::CampaignStats(std::string tenant, std::string campaign) {
  HERALD_CO_RETURN_IF_ERROR((co_await store_.GetCampaignHead(tenant, campaign)).status());
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Delivery> deliveries,
                             co_await store_.ListDeliveries(tenant, campaign));
  std::sort(
      deliveries.begin(), deliveries.end(),
      [](const store::Delivery& a, const store::Delivery& b) { return a.account < b.account; });
  std::vector<webhooks::MessageKey> sent = SentMessages(deliveries);
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<webhooks::MessageStats> stats,
                             co_await reader_.Messages(tenant, std::move(sent)));
  CampaignFigures out;
  size_t next = 0;
  for (const store::Delivery& d : deliveries) {
    AccountFigures a{.account = d.account, .upstream_message_id = d.upstream_message_id};
    a.recipients = d.recipients;
    // A queue that was unsent ends with nothing pending, though it did not reach its recipients:
    // its fans reached are those its messages.sent events (or the upstream's count) name.
    const webhooks::MessageStats* s = d.upstream_message_id != 0 ? &stats[next++] : nullptr;
    const bool unsent =
        d.state == store::DeliveryState::kCancelled || (s != nullptr && s->canceled);
    a.sent = unsent ? 0 : d.recipients - d.recipients_pending;
    if (s != nullptr) {
      // Two sources follow delivery: the queue's progress (events or polls) and the count of
      // messages.sent events; each only grows, so the larger is the later.
      if (s->total >= 0) a.recipients = std::max(a.recipients, s->total);
      if (!unsent && s->total >= 0 && s->pending >= 0) {
        a.sent = std::max(a.sent, s->total - s->pending);
      }
      a.sent = std::max(a.sent, s->sent);
      a.viewed = s->viewed;
      a.purchases = s->purchases;
      a.gross_cents = s->gross_cents;
      a.net_cents = s->net_cents;
      a.fee_cents = s->fee_cents;
      a.reconciled = s->reconciled;
      out.updated_ms = std::max(out.updated_ms, s->updated_ms);
    }
    a.sent = std::max<int64_t>(0, a.sent);
    out.recipients += a.recipients;
    out.sent += a.sent;
    out.viewed += a.viewed;
    out.purchases += a.purchases;
    out.gross_cents += a.gross_cents;
    out.net_cents += a.net_cents;
    out.fee_cents += a.fee_cents;
    out.reconciled += a.reconciled;
    out.accounts.push_back(std::move(a));
  }
  out.unlock_rate = out.sent > 0 ? static_cast<double>(out.purchases) / out.sent : 0;
  out.view_rate = out.sent > 0 ? static_cast<double>(out.viewed) / out.sent : 0;
  co_return out;
}

Analytics::Op<std::vector<RankedCampaign>> Analytics::TopCampaigns(std::string tenant,
                                                                   int64_t start_ms, int64_t end_ms,
                                                                   int limit) {
  std::vector<RankedCampaign> ranked;
  // Newest first from just before end_ms, until start_ms or kMaxRanked campaigns.
  std::optional<double> before = static_cast<double>(end_ms);
  while (static_cast<int>(ranked.size()) < kMaxRanked) {
    HERALD_CO_ASSIGN_OR_RETURN(store::CampaignPage page,
                               co_await store_.ListCampaigns(tenant, before, 200));
    bool past_start = false;
    for (const store::Campaign& c : page.campaigns) {
      if (c.create_time_ms >= end_ms) continue;
      if (c.create_time_ms < start_ms) {
        past_start = true;
        break;
      }
      HERALD_CO_ASSIGN_OR_RETURN(CampaignFigures figures, co_await CampaignStats(tenant, c.id));
      figures.accounts.clear();
      ranked.push_back({.campaign = c.id,
                        .display_name = c.display_name,
                        .create_time_ms = c.create_time_ms,
                        .figures = std::move(figures)});
      if (static_cast<int>(ranked.size()) >= kMaxRanked) break;
    }
    if (past_start || !page.next_before) break;
    before = page.next_before;
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const RankedCampaign& a, const RankedCampaign& b) {
                     return a.figures.gross_cents > b.figures.gross_cents;
                   });
  if (static_cast<int>(ranked.size()) > limit) ranked.resize(static_cast<size_t>(limit));
  co_return ranked;
}

Analytics::Op<webhooks::AccountTotals> Analytics::AccountOverview(std::string tenant,
                                                                  std::string account) {
  HERALD_CO_RETURN_IF_ERROR((co_await store_.Get<store::Account>(tenant, account)).status());
  co_return co_await reader_.Account(std::move(tenant), std::move(account));
}

Analytics::Op<std::vector<webhooks::Buyer>> Analytics::CampaignBuyers(std::string tenant,
                                                                      std::string campaign) {
  HERALD_CO_RETURN_IF_ERROR((co_await store_.GetCampaignHead(tenant, campaign)).status());
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<store::Delivery> deliveries,
                             co_await store_.ListDeliveries(tenant, campaign));
  std::vector<webhooks::MessageKey> sent = SentMessages(deliveries);
  co_return co_await reader_.Buyers(std::move(tenant), std::move(sent));
}

}  // namespace herald::campaign
