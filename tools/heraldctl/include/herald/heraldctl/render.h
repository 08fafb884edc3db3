// Output: tables for people, protobuf JSON for scripts, and the campaign progress display.
// Pure functions of messages; the caller writes the strings.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <absl/time/time.h>

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace herald::v1 {
class AccountOverview;
class Campaign;
class CampaignStats;
class Delivery;
class Event;
class ListAccountsResponse;
class ListApiKeysResponse;
class ListAuditEventsResponse;
class ListAutomationsResponse;
class ListCampaignBuyersResponse;
class ListCampaignsResponse;
class ListDeliveriesResponse;
class ListMediaAssetsResponse;
class ListSegmentsResponse;
class ListTeamsResponse;
class ListTenantsResponse;
class ListUpstreamQueueResponse;
class ListUserListsResponse;
class Team;
class TopCampaignsResponse;
class WatchCampaignResponse;
}  // namespace herald::v1

namespace herald::heraldctl {

struct Table {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
};

// Columns padded to their widest cell, two spaces apart, header first; no trailing spaces.
std::string RenderTable(const Table& table);

// A message as indented `field: value` lines (set fields only; enums by name; timestamps in RFC
// 3339 UTC; durations like 15m; money fields named *_cents also in dollars).
std::string RenderDetail(const google::protobuf::Message& message);

// Protobuf's JSON mapping on one line, with proto (snake_case) field names and fields at their
// default values included, so scripts see every field and a campaign can be fed back to
// `campaigns create --file`.
std::string ToJson(const google::protobuf::Message& message);

// 1500 -> "$15.00", 0 -> "$0.00"; negative amounts keep their sign.
std::string FormatCents(int64_t cents);

// A ratio as a percentage with one decimal, rounded half away from zero: 0.04 -> "4.0%",
// 0.0625 -> "6.3%", 1 -> "100.0%". "-" for a value that is not a finite number.
std::string FormatPercent(double ratio);

// A team as RenderDetail shows it, then its webhook: the id or "not registered", and the last
// registration's error when there is one.
std::string RenderTeam(const v1::Team& team);

// `campaigns stats`: the totals as aligned `label: value` lines (money in dollars, the unlock
// rate as a percentage), a blank line, then the per-account table (ToTable below).
std::string RenderCampaignStats(const v1::CampaignStats& stats);

// `accounts overview`: the account's totals as aligned `label: value` lines, money in dollars.
std::string RenderAccountOverview(const v1::AccountOverview& overview);

// `events tail`: one line per event, no newline; message, fan and amount only when non-zero:
//   "2026-05-01T20:03:11Z transactions.new acct_a message 901234567 fan 4242 $15.00 cursor 17-0"
std::string EventLine(const v1::Event& event);

Table ToTable(const v1::TopCampaignsResponse& response);  // ranked, best first
Table ToTable(const v1::ListTenantsResponse& response);
Table ToTable(const v1::ListApiKeysResponse& response);
Table ToTable(const v1::ListAuditEventsResponse& response);
Table ToTable(const v1::ListTeamsResponse& response);
Table ToTable(const v1::ListAccountsResponse& response);
Table ToTable(const v1::ListMediaAssetsResponse& response);
Table ToTable(const v1::ListUserListsResponse& response);
Table ToTable(const v1::ListSegmentsResponse& response);
Table ToTable(const v1::ListAutomationsResponse& response);
Table ToTable(const v1::ListCampaignsResponse& response);
Table ToTable(const v1::ListDeliveriesResponse& response);
// `now` tells a message the upstream holds for later ("scheduled") from one it is sending.
Table ToTable(const v1::ListUpstreamQueueResponse& response, absl::Time now);
Table ToTable(const v1::ListCampaignBuyersResponse& response);
Table ToTable(const v1::CampaignStats& stats);  // one row per account

// Campaign progress: deliveries finished (completed, failed or cancelled) out of total, and
// recipients delivered out of recipients reported.
struct Progress {
  int32_t deliveries_done = 0;
  int32_t deliveries_total = 0;
  int32_t deliveries_failed = 0;
  int64_t recipients_delivered = 0;
  int64_t recipients_total = 0;
  // 0..1: finished deliveries plus, for deliveries the upstream is delivering, the share of
  // recipients delivered.
  double fraction = 0;
};
Progress ComputeProgress(const v1::Campaign& campaign);

// True when the figures hold any revenue: a purchase or money.
bool HasRevenue(const v1::CampaignStats& stats);

// One terminal line (no newline) of at most `width` columns:
//   "SENDING  [########------------]  40%  deliveries 4/10, 1 failed  recipients 1200/3000"
// With `stats` (may be null) that HasRevenue, the purchases and gross revenue follow:
//   "...  recipients 1200/3000  purchases 42  $419.58"
// Too narrow for the whole line, the bar goes first, then the recipients, then the revenue (a
// sum of money is never cut short); what is left is cut at the width.
std::string RenderProgressLine(const v1::Campaign& campaign, int width,
                               const v1::CampaignStats* stats = nullptr);

// Plain lines for `watch` when stdout is not a terminal: one per campaign change, per delivery
// change and per change of the revenue.
std::string CampaignChangeLine(const v1::Campaign& campaign);
std::string DeliveryChangeLine(const v1::Delivery& delivery);
//   "revenue: 42 purchases, gross $419.58, net $335.66"
std::string RevenueChangeLine(const v1::CampaignStats& stats);

// True for COMPLETED, PARTIALLY_FAILED, FAILED, CANCELLED and MISSED.
bool IsFinal(const v1::Campaign& campaign);

// What `campaigns watch` writes for each message of the stream. Not thread-safe.
class WatchPrinter {
 public:
  enum class Mode {
    kLive,   // a terminal: the progress bar (and revenue) redrawn in place, failed deliveries
             // above it
    kLines,  // not a terminal: one line per campaign or delivery change, and per change of the
             // purchases or revenue (none while there is no revenue)
    kJson,   // one WatchCampaignResponse per line, whatever its change
  };
  WatchPrinter(Mode mode, int width);
  ~WatchPrinter();

  // The text to write for one change (possibly empty).
  std::string Update(const v1::WatchCampaignResponse& change);
  // The text to write once the stream has ended.
  std::string Finish() const;
  // The exit code for the stream's end: kExitOk if the campaign COMPLETED,
  // kExitCampaignOutcome for another final state, kExitRpcError if the stream ended before
  // a final state. `interrupted`: the user ended the stream (Ctrl-C); once the campaign is final
  // that is how a follow_revenue watch ends, so the final state decides as above. `message`
  // gets a line for stderr (empty when COMPLETED).
  int ExitCode(std::string* message, bool interrupted = false) const;

 private:
  Mode mode_;
  int width_;
  bool seen_campaign_ = false;
  std::unique_ptr<v1::Campaign> campaign_;
  std::unique_ptr<v1::CampaignStats> stats_;  // the latest figures; empty before any
  std::string last_line_;                     // kLive: the progress line on screen
  // The last line printed for the campaign ("") and for each delivery (by account): a line the
  // same as it is not printed again (a stream opened again starts with every delivery).
  std::map<std::string, std::string> printed_;

  // `line` plus a newline, or "" when it is what was printed last for `key`.
  std::string Once(const std::string& key, std::string line);
};

}  // namespace herald::heraldctl
