// A campaign's figures: the analytics of the upstream mass messages its deliveries sent
// (webhooks::MessageAnalytics), summed per campaign.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <boost/asio/awaitable.hpp>

#include <herald/webhooks/recorder.h>

namespace herald::store {
class Store;
}  // namespace herald::store

namespace herald::campaign {

struct AccountFigures {
  std::string account;
  int64_t upstream_message_id = 0;  // 0: not sent yet
  int64_t recipients = 0;
  int64_t sent = 0;
  int64_t viewed = 0;  // as the upstream last reported (reconciliation reads it)
  int64_t purchases = 0;
  int64_t gross_cents = 0;
  int64_t net_cents = 0;
  int64_t fee_cents = 0;
  int64_t reconciled = 0;  // purchases found by reconciliation

  bool operator==(const AccountFigures&) const = default;
};

struct CampaignFigures {
  int64_t recipients = 0;
  int64_t sent = 0;
  int64_t viewed = 0;
  int64_t purchases = 0;
  int64_t gross_cents = 0;
  int64_t net_cents = 0;
  int64_t fee_cents = 0;
  int64_t reconciled = 0;
  double view_rate = 0;                  // viewed / sent
  double unlock_rate = 0;                // purchases / sent
  int64_t updated_ms = 0;                // the latest event that changed them; 0: none
  std::vector<AccountFigures> accounts;  // by account id

  // Equal when every figure, per account included, is.
  bool operator==(const CampaignFigures&) const = default;
};

// A campaign's place in a ranking.
struct RankedCampaign {
  std::string campaign;  // id
  std::string display_name;
  int64_t create_time_ms = 0;
  CampaignFigures figures;  // without the per-account breakdown
};

class Analytics {
 public:
  template <typename T>
  using Op = boost::asio::awaitable<absl::StatusOr<T>>;

  // Both must outlive the Analytics.
  Analytics(store::Store& store, webhooks::MessageAnalytics& reader)
      : store_(store), reader_(reader) {}

  // kNotFound when the campaign does not exist.
  Op<CampaignFigures> CampaignStats(std::string tenant, std::string campaign);
  // Every buyer of the campaign's messages, earliest first.
  Op<std::vector<webhooks::Buyer>> CampaignBuyers(std::string tenant, std::string campaign);

  // The tenant's campaigns created in [start_ms, end_ms), by gross revenue (highest first), at
  // most `limit`. Reads at most kMaxRanked campaigns of the range, newest first.
  static constexpr int kMaxRanked = 1000;
  Op<std::vector<RankedCampaign>> TopCampaigns(std::string tenant, int64_t start_ms, int64_t end_ms,
                                               int limit);
  // An account's totals; kNotFound when the tenant has no such account.
  Op<webhooks::AccountTotals> AccountOverview(std::string tenant, std::string account);

  // The analytics of upstream messages, and the tenants' event streams.
  webhooks::MessageAnalytics& messages() { return reader_; }

 private:
  store::Store& store_;
  webhooks::MessageAnalytics& reader_;
};

}  // namespace herald::campaign
