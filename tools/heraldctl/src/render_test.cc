#include <cmath>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/heraldctl/exit_codes.h>
#include <herald/heraldctl/render.h>
#include <herald/v1/account.pb.h>
#include <herald/v1/analytics.pb.h>
#include <herald/v1/automation.pb.h>
#include <herald/v1/campaign.pb.h>
#include <herald/v1/events.pb.h>

namespace herald::heraldctl {
namespace {

using ::testing::HasSubstr;

TEST(RenderTableTest, AlignsColumnsWithoutTrailingSpaces) {
  EXPECT_EQ(RenderTable({{"ID", "NAME", "X"}, {{"a", "longer name", ""}, {"bbbb", "n", "1"}}}),
            "ID    NAME         X\n"
            "a     longer name\n"
            "bbbb  n            1\n");
}

TEST(FormatCentsTest, DollarsAndCents) {
  EXPECT_EQ(FormatCents(1500), "$15.00");
  EXPECT_EQ(FormatCents(5), "$0.05");
  EXPECT_EQ(FormatCents(0), "$0.00");
  EXPECT_EQ(FormatCents(-1234), "-$12.34");
}

TEST(FormatPercentTest, OneDecimalRoundedHalfAwayFromZero) {
  EXPECT_EQ(FormatPercent(0), "0.0%");
  EXPECT_EQ(FormatPercent(0.04), "4.0%");
  EXPECT_EQ(FormatPercent(0.0625), "6.3%");
  EXPECT_EQ(FormatPercent(0.12345), "12.3%");
  EXPECT_EQ(FormatPercent(1), "100.0%");
  EXPECT_EQ(FormatPercent(-0.0625), "-6.3%");
  EXPECT_EQ(FormatPercent(std::nan("")), "-");
  EXPECT_EQ(FormatPercent(std::numeric_limits<double>::infinity()), "-");
}

TEST(RenderQueueTest, AMessageHeldForLaterIsScheduledNotSending) {
  const absl::Time now = absl::FromUnixSeconds(1777665600);  // 2026-05-01T20:00:00Z
  v1::ListUpstreamQueueResponse queue;
  v1::UpstreamQueueItem* held = queue.add_items();
  held->set_id(7);
  held->set_date("2026-05-01T21:00:00+00:00");
  held->set_is_ready(true);
  held->set_total(40);
  held->set_pending(40);
  v1::UpstreamQueueItem* going = queue.add_items();
  *going = *held;
  going->set_id(8);
  going->set_date("2026-05-01T19:59:00+00:00");
  going->set_pending(10);
  const Table t = ToTable(queue, now);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][2], "scheduled");
  EXPECT_EQ(t.rows[1][2], "sending");
  EXPECT_EQ(t.rows[1][3], "30/40");
}

TEST(RenderDetailTest, FieldsEnumsTimesAndNesting) {
  v1::Campaign campaign;
  campaign.set_name("tenants/a/campaigns/c1");
  campaign.set_state(v1::Campaign::SENDING);
  campaign.mutable_content()->set_text("Hi");
  campaign.mutable_content()->set_price_cents(1500);
  campaign.mutable_send_time()->set_seconds(1777665600);
  campaign.mutable_grace_period()->set_seconds(900);
  campaign.add_targets()->set_account("tenants/a/accounts/acct_a");
  campaign.mutable_targets(0)->add_user_lists("fans");
  campaign.mutable_targets(0)->add_user_lists("123");
  campaign.add_targets()->set_account("tenants/a/accounts/acct_b");
  EXPECT_EQ(RenderDetail(campaign),
            "name: tenants/a/campaigns/c1\n"
            "content:\n"
            "  text: Hi\n"
            "  price_cents: 1500 ($15.00)\n"
            "targets:\n"
            "  - account: tenants/a/accounts/acct_a\n"
            "    user_lists: fans, 123\n"
            "  - account: tenants/a/accounts/acct_b\n"
            "send_time: 2026-05-01T20:00:00Z\n"
            "grace_period: 15m\n"
            "state: SENDING\n");
  // A zero timestamp is left out like an unset one.
  v1::Campaign zero;
  zero.mutable_end_time();
  EXPECT_EQ(RenderDetail(zero), "");
}

TEST(ToJsonTest, SnakeCaseWithDefaults) {
  v1::Account account;
  account.set_name("tenants/a/accounts/acct_x");
  const std::string json = ToJson(account);
  EXPECT_THAT(json, HasSubstr(R"("name":"tenants/a/accounts/acct_x")"));
  EXPECT_THAT(json, HasSubstr(R"("sends_per_minute":0)"));
  EXPECT_THAT(json, HasSubstr(R"("paused":false)"));
  EXPECT_EQ(json.find('\n'), std::string::npos);
}

TEST(ToTableTest, AccountsShowShortIds) {
  v1::ListAccountsResponse response;
  v1::Account* a = response.add_accounts();
  a->set_name("tenants/t/accounts/acct_a");
  a->set_team("tenants/t/teams/main");
  a->set_sends_per_minute(60);
  a->set_paused(true);
  const std::string table = RenderTable(ToTable(response));
  EXPECT_THAT(table, HasSubstr("acct_a  main"));
  EXPECT_THAT(table, HasSubstr("paused"));
}

TEST(ToTableTest, AutomationsShowShortIdsTheTriggerTheActionAndTheirFans) {
  v1::ListAutomationsResponse response;
  v1::Automation* a = response.add_automations();
  a->set_name("tenants/acme/automations/01j0000000000000000000000a");
  a->set_account("tenants/acme/accounts/acct_a1");
  a->set_trigger(v1::Automation::NEW_SUBSCRIBER);
  a->set_action(v1::Automation::ADD_TO_LIST);
  a->set_user_list_id("42");
  a->set_fans_added(3);
  a->mutable_create_time()->set_seconds(1'767'225'600);
  v1::Automation* b = response.add_automations();
  b->set_name("tenants/acme/automations/01j0000000000000000000000b");
  b->set_account("tenants/acme/accounts/acct_a1");
  b->set_trigger(v1::Automation::SUBSCRIPTION_RENEWED);
  b->set_action(v1::Automation::REMOVE_FROM_LIST);
  b->set_user_list_id("43");
  b->set_fans_removed(5);
  b->mutable_create_time()->set_seconds(1'767'225'600);
  EXPECT_EQ(RenderTable(ToTable(response)),
            "ID                          ACCOUNT  TRIGGER               ACTION            LIST  "
            "FANS  CREATED\n"
            "01j0000000000000000000000a  acct_a1  NEW_SUBSCRIBER        ADD_TO_LIST       42    "
            "3     2026-01-01T00:00:00Z\n"
            "01j0000000000000000000000b  acct_a1  SUBSCRIPTION_RENEWED  REMOVE_FROM_LIST  43    "
            "5     2026-01-01T00:00:00Z\n");
}

TEST(RenderTeamTest, WebhookIdOrNotRegisteredAndTheError) {
  v1::Team team;
  team.set_name("tenants/t/teams/main");
  team.set_rate_limit_per_minute(1000);
  team.set_webhook_id("wh_123");
  EXPECT_EQ(RenderTeam(team),
            "name: tenants/t/teams/main\n"
            "rate_limit_per_minute: 1000\n"
            "webhook_id: wh_123\n");
  team.clear_webhook_id();
  team.set_webhook_error("upstream: 401 invalid key");
  team.mutable_create_time()->set_seconds(1777665600);
  EXPECT_EQ(RenderTeam(team),
            "name: tenants/t/teams/main\n"
            "rate_limit_per_minute: 1000\n"
            "create_time: 2026-05-01T20:00:00Z\n"
            "webhook_id: not registered\n"
            "webhook_error: upstream: 401 invalid key\n");
}

TEST(ToTableTest, TeamsShowTheWebhook) {
  v1::ListTeamsResponse response;
  v1::Team* a = response.add_teams();
  a->set_name("tenants/t/teams/a");
  a->set_webhook_id("wh_1");
  v1::Team* b = response.add_teams();
  b->set_name("tenants/t/teams/b");
  b->set_webhook_error("no public URL");
  v1::Team* c = response.add_teams();
  c->set_name("tenants/t/teams/c");
  EXPECT_EQ(RenderTable(ToTable(response)),
            "ID  DISPLAY NAME  RATE/MIN  KEY  STATUS  WEBHOOK\n"
            "a                 0              active  wh_1\n"
            "b                 0              active  not registered (error: no public URL)\n"
            "c                 0              active  not registered\n");
}

v1::CampaignStats Stats() {
  v1::CampaignStats stats;
  stats.set_name("tenants/t/campaigns/c1/stats");
  stats.set_recipients(3000);
  stats.set_sent(2950);
  stats.set_viewed(1900);
  stats.set_view_rate(1900.0 / 2950);
  stats.set_purchases(118);
  stats.set_unlock_rate(118.0 / 2950);
  stats.set_gross_revenue_cents(177040);
  stats.set_net_revenue_cents(141632);
  stats.set_fee_cents(35408);
  stats.mutable_update_time()->set_seconds(1777665600);
  v1::AccountStats* a = stats.add_accounts();
  a->set_account("tenants/t/accounts/acct_a");
  a->set_upstream_message_id(901234567);
  a->set_recipients(2000);
  a->set_sent(1980);
  a->set_viewed(1500);
  a->set_purchases(118);
  a->set_unlock_rate(118.0 / 1980);
  a->set_gross_revenue_cents(177040);
  a->set_net_revenue_cents(141632);
  v1::AccountStats* b = stats.add_accounts();
  b->set_account("tenants/t/accounts/acct_b");
  b->set_recipients(1000);
  b->set_sent(970);
  b->set_viewed(400);
  return stats;
}

TEST(RenderCampaignStatsTest, SummaryThenOneRowPerAccount) {
  EXPECT_EQ(
      RenderCampaignStats(Stats()),
      "campaign:     c1\n"
      "recipients:   3000\n"
      "sent:         2950\n"
      "viewed:       1900 (64.4%)\n"
      "purchases:    118\n"
      "unlock rate:  4.0%\n"
      "gross:        $1770.40\n"
      "net:          $1416.32\n"
      "fees:         $354.08\n"
      "updated:      2026-05-01T20:00:00Z\n"
      "\n"
      "ACCOUNT  MESSAGE    RECIPIENTS  SENT  VIEWED  PURCHASES  UNLOCK RATE  GROSS     NET\n"
      "acct_a   901234567  2000        1980  1500    118        6.0%         $1770.40  $1416.32\n"
      "acct_b              1000        970   400     0          0.0%         $0.00     $0.00\n");
}

TEST(RenderCampaignStatsTest, BeforeAnyEvent) {
  v1::CampaignStats stats;
  stats.set_name("tenants/t/campaigns/c2/stats");
  const std::string out = RenderCampaignStats(stats);
  EXPECT_THAT(out, HasSubstr("campaign:     c2\n"));
  EXPECT_THAT(out, HasSubstr("unlock rate:  0.0%\n"));
  EXPECT_THAT(out, HasSubstr("gross:        $0.00\n"));
  EXPECT_THAT(out, HasSubstr("updated:      never (no events yet)\n"));
  EXPECT_THAT(out, HasSubstr("\nACCOUNT  MESSAGE"));
}

TEST(ToTableTest, BuyersInDollarsWithTheFirstPurchase) {
  v1::ListCampaignBuyersResponse response;
  v1::Buyer* buyer = response.add_buyers();
  buyer->set_account("tenants/t/accounts/acct_a");
  buyer->set_fan_id(4242);
  buyer->set_spent_cents(1505);
  buyer->mutable_first_purchase_time()->set_seconds(1777665600);
  EXPECT_EQ(RenderTable(ToTable(response)),
            "ACCOUNT  FAN ID  SPENT   FIRST PURCHASE\n"
            "acct_a   4242    $15.05  2026-05-01T20:00:00Z\n");
}

TEST(ToTableTest, TopCampaignsRankedWithRateAndMoney) {
  v1::TopCampaignsResponse response;
  v1::RankedCampaign* best = response.add_campaigns();
  best->set_campaign("tenants/t/campaigns/c-123");
  best->set_display_name("Friday drop");
  best->mutable_create_time()->set_seconds(1777665600);
  best->mutable_stats()->set_purchases(118);
  best->mutable_stats()->set_unlock_rate(118.0 / 2950);
  best->mutable_stats()->set_gross_revenue_cents(177040);
  best->mutable_stats()->set_net_revenue_cents(141632);
  response.add_campaigns()->set_campaign("tenants/t/campaigns/c-9");
  EXPECT_EQ(
      RenderTable(ToTable(response)),
      "RANK  ID     DISPLAY NAME  CREATED               PURCHASES  UNLOCK RATE  GROSS     NET\n"
      "1     c-123  Friday drop   2026-05-01T20:00:00Z  118        4.0%         $1770.40  "
      "$1416.32\n"
      "2     c-9                                        0          0.0%         $0.00     $0.00\n");
}

TEST(RenderAccountOverviewTest, AlignedTotalsInDollars) {
  v1::AccountOverview overview;
  overview.set_name("tenants/t/accounts/acct_a");
  overview.set_sent(5);
  overview.set_purchases(1);
  overview.set_gross_revenue_cents(1505);
  overview.set_net_revenue_cents(1204);
  overview.set_fee_cents(301);
  EXPECT_EQ(RenderAccountOverview(overview),
            "account:               acct_a\n"
            "sent:                  5\n"
            "purchases:             1\n"
            "gross:                 $15.05\n"
            "net:                   $12.04\n"
            "fees:                  $3.01\n"
            "reconciled purchases:  0\n"
            "new subscribers:       0\n"
            "known fans:            0\n");
}

TEST(EventLineTest, NonZeroFieldsOnly) {
  v1::Event event;
  event.set_cursor("1777665600000-3");
  event.set_event_type("transactions.new");
  event.set_account("tenants/t/accounts/acct_a");
  event.set_upstream_message_id(901234567);
  event.set_chat_message_id(5);
  event.set_fan_id(4242);
  event.set_amount_cents(1500);
  event.mutable_apply_time()->set_seconds(1777665600);
  EXPECT_EQ(EventLine(event),
            "2026-05-01T20:00:00Z transactions.new acct_a message 901234567 fan 4242 $15.00 cursor "
            "1777665600000-3");
  v1::Event bare;
  bare.set_cursor("7-0");
  bare.set_event_type("subscriptions.new");
  EXPECT_EQ(EventLine(bare), "- subscriptions.new - cursor 7-0");
}

v1::Campaign Sending() {
  v1::Campaign c;
  c.set_name("tenants/t/campaigns/c1");
  c.set_state(v1::Campaign::SENDING);
  v1::DeliveryCounts* counts = c.mutable_delivery_counts();
  counts->set_total(10);
  counts->set_completed(3);
  counts->set_failed(1);
  counts->set_sent(2);
  counts->set_pending(4);
  counts->set_recipients(1000);
  counts->set_recipients_pending(500);
  return c;
}

TEST(ProgressTest, DeliveriesAndRecipients) {
  const Progress p = ComputeProgress(Sending());
  EXPECT_EQ(p.deliveries_done, 4);
  EXPECT_EQ(p.deliveries_total, 10);
  EXPECT_EQ(p.deliveries_failed, 1);
  EXPECT_EQ(p.recipients_delivered, 500);
  EXPECT_EQ(p.recipients_total, 1000);
  EXPECT_DOUBLE_EQ(p.fraction, 0.5);  // 4 done + 2 sent at half
  v1::Campaign empty;
  EXPECT_EQ(ComputeProgress(empty).fraction, 0);
  v1::Campaign done = Sending();
  done.set_state(v1::Campaign::PARTIALLY_FAILED);
  EXPECT_EQ(ComputeProgress(done).fraction, 1.0);
  EXPECT_TRUE(IsFinal(done));
  EXPECT_FALSE(IsFinal(Sending()));
}

TEST(ProgressTest, ProgressLineFitsTheWidth) {
  EXPECT_EQ(RenderProgressLine(Sending(), 120),
            "SENDING  [####################--------------------] 50%  deliveries 4/10, 1 failed"
            "  recipients 500/1000");
  const std::string narrow = RenderProgressLine(Sending(), 80);
  EXPECT_EQ(narrow.size(), 80u);
  EXPECT_THAT(narrow, HasSubstr("[#"));
  // Too narrow for a bar: the numbers alone, as many as fit whole, never one cut short.
  EXPECT_EQ(RenderProgressLine(Sending(), 70),
            "SENDING  50%  deliveries 4/10, 1 failed  recipients 500/1000");
  EXPECT_EQ(RenderProgressLine(Sending(), 45), "SENDING  50%  deliveries 4/10, 1 failed");
  EXPECT_EQ(RenderProgressLine(Sending(), 20), "SENDING  50%");
  EXPECT_EQ(RenderProgressLine(Sending(), 10), "SENDING");
  EXPECT_EQ(RenderProgressLine(Sending(), 4), "SEND");
}

v1::CampaignStats Earning() {
  v1::CampaignStats stats;
  stats.set_name("tenants/t/campaigns/c1/stats");
  stats.set_sent(500);
  stats.set_purchases(42);
  stats.set_gross_revenue_cents(41958);
  stats.set_net_revenue_cents(33566);
  stats.set_fee_cents(8392);
  return stats;
}

TEST(ProgressTest, RevenueFollowsTheRecipientsWhenThereIsAny) {
  const v1::CampaignStats earning = Earning();
  // 86 columns without the bar; the bar takes the rest, up to 40.
  EXPECT_EQ(RenderProgressLine(Sending(), 120, &earning),
            "SENDING  [#################-----------------] 50%  deliveries 4/10, 1 failed"
            "  recipients 500/1000  purchases 42  $419.58");
  EXPECT_EQ(RenderProgressLine(Sending(), 96, &earning).size(), 96u);
  // No revenue yet (figures all zero, or none received): the line as before.
  v1::CampaignStats none;
  none.set_sent(500);
  EXPECT_EQ(RenderProgressLine(Sending(), 120, &none), RenderProgressLine(Sending(), 120));
  EXPECT_EQ(RenderProgressLine(Sending(), 120, nullptr), RenderProgressLine(Sending(), 120));
  // Any purchase shows, whatever the amounts.
  v1::CampaignStats one;
  one.set_purchases(1);
  EXPECT_THAT(RenderProgressLine(Sending(), 120, &one), HasSubstr("  purchases 1  $0.00"));
}

TEST(ProgressTest, NarrowTerminalsDropTheBarThenTheRecipientsThenTheRevenue) {
  const v1::CampaignStats earning = Earning();
  EXPECT_EQ(RenderProgressLine(Sending(), 95, &earning),
            "SENDING  50%  deliveries 4/10, 1 failed  recipients 500/1000  purchases 42  $419.58");
  EXPECT_EQ(RenderProgressLine(Sending(), 80, &earning),
            "SENDING  50%  deliveries 4/10, 1 failed  purchases 42  $419.58");
  EXPECT_EQ(RenderProgressLine(Sending(), 62, &earning),
            "SENDING  50%  deliveries 4/10, 1 failed  purchases 42  $419.58");
  // A sum of money is never cut short: without room for it, the line has none.
  EXPECT_EQ(RenderProgressLine(Sending(), 61, &earning),
            "SENDING  50%  deliveries 4/10, 1 failed  recipients 500/1000");
  EXPECT_EQ(RenderProgressLine(Sending(), 50, &earning), "SENDING  50%  deliveries 4/10, 1 failed");
  EXPECT_EQ(RenderProgressLine(Sending(), 20, &earning), "SENDING  50%");
  for (int width = 1; width <= 130; ++width) {
    EXPECT_LE(RenderProgressLine(Sending(), width, &earning).size(), static_cast<size_t>(width))
        << width;
  }
}

TEST(WatchLinesTest, Revenue) {
  EXPECT_EQ(RevenueChangeLine(Earning()), "revenue: 42 purchases, gross $419.58, net $335.66");
  EXPECT_TRUE(HasRevenue(Earning()));
  EXPECT_FALSE(HasRevenue(v1::CampaignStats()));
}

TEST(WatchLinesTest, CampaignAndDelivery) {
  EXPECT_EQ(CampaignChangeLine(Sending()),
            "campaign c1 SENDING deliveries 4/10 failed 1 recipients 500/1000");
  v1::Delivery d;
  d.set_account("tenants/t/accounts/acct_a");
  d.set_state(v1::Delivery::FAILED);
  d.set_error("out of credits");
  EXPECT_EQ(DeliveryChangeLine(d), "delivery acct_a FAILED recipients 0/0 error: out of credits");
}

TEST(WatchPrinterTest, LinesModeAndExitCodes) {
  WatchPrinter printer(WatchPrinter::Mode::kLines, 80);
  std::string message;
  EXPECT_EQ(printer.ExitCode(&message), kExitRpcError);  // nothing seen
  v1::WatchCampaignResponse change;
  *change.mutable_campaign() = Sending();
  EXPECT_EQ(printer.Update(change),
            "campaign c1 SENDING deliveries 4/10 failed 1 recipients 500/1000\n");
  EXPECT_EQ(printer.ExitCode(&message), kExitRpcError);  // not final
  EXPECT_THAT(message, HasSubstr("before the campaign was final"));
  v1::WatchCampaignResponse delivery;
  delivery.mutable_delivery()->set_account("tenants/t/accounts/acct_b");
  delivery.mutable_delivery()->set_state(v1::Delivery::SENT);
  EXPECT_EQ(printer.Update(delivery), "delivery acct_b SENT recipients 0/0\n");
  change.mutable_campaign()->set_state(v1::Campaign::COMPLETED);
  printer.Update(change);
  EXPECT_EQ(printer.ExitCode(&message), kExitOk);
  EXPECT_EQ(message, "");
  EXPECT_EQ(printer.Finish(), "");
  change.mutable_campaign()->set_state(v1::Campaign::FAILED);
  change.mutable_campaign()->set_state_reason("every team is out of credits");
  printer.Update(change);
  EXPECT_EQ(printer.ExitCode(&message), kExitCampaignOutcome);
  EXPECT_EQ(message, "campaign ended FAILED: every team is out of credits");
}

// A stream opened again starts with every delivery and the campaign: what was printed already
// is not printed twice, in either mode; what changed is.
TEST(WatchPrinterTest, WhatWasPrintedAlreadyIsNotPrintedAgain) {
  WatchPrinter lines(WatchPrinter::Mode::kLines, 80);
  v1::WatchCampaignResponse change;
  *change.mutable_campaign() = Sending();
  v1::WatchCampaignResponse delivery;
  delivery.mutable_delivery()->set_account("tenants/t/accounts/acct_b");
  delivery.mutable_delivery()->set_state(v1::Delivery::SENT);
  EXPECT_NE(lines.Update(change), "");
  EXPECT_EQ(lines.Update(delivery), "delivery acct_b SENT recipients 0/0\n");
  EXPECT_EQ(lines.Update(change), "");
  EXPECT_EQ(lines.Update(delivery), "");
  delivery.mutable_delivery()->set_state(v1::Delivery::COMPLETED);
  EXPECT_EQ(lines.Update(delivery), "delivery acct_b COMPLETED recipients 0/0\n");

  WatchPrinter live(WatchPrinter::Mode::kLive, 120);
  delivery.mutable_delivery()->set_state(v1::Delivery::FAILED);
  EXPECT_EQ(live.Update(change), "\r\033[K" + RenderProgressLine(Sending(), 120));
  EXPECT_EQ(live.Update(delivery), "\r\033[Kdelivery acct_b FAILED recipients 0/0\n\r\033[K" +
                                       RenderProgressLine(Sending(), 120));
  EXPECT_EQ(live.Update(delivery), "");
}

TEST(WatchPrinterTest, LiveModeRedrawsTheBarInPlace) {
  WatchPrinter printer(WatchPrinter::Mode::kLive, 120);
  v1::WatchCampaignResponse delivery;
  delivery.mutable_delivery()->set_account("tenants/t/accounts/acct_b");
  delivery.mutable_delivery()->set_state(v1::Delivery::SENT);
  EXPECT_EQ(printer.Update(delivery), "");  // no campaign yet: nothing to draw
  v1::WatchCampaignResponse change;
  *change.mutable_campaign() = Sending();
  EXPECT_EQ(printer.Update(change), "\r\033[K" + RenderProgressLine(Sending(), 120));
  EXPECT_EQ(printer.Update(delivery), "");  // nothing new to draw
  delivery.mutable_delivery()->set_state(v1::Delivery::FAILED);
  EXPECT_EQ(printer.Update(delivery), "\r\033[Kdelivery acct_b FAILED recipients 0/0\n\r\033[K" +
                                          RenderProgressLine(Sending(), 120));
  EXPECT_EQ(printer.Finish(), "\n");
}

TEST(WatchPrinterTest, JsonModeOneMessagePerLine) {
  WatchPrinter printer(WatchPrinter::Mode::kJson, 80);
  v1::WatchCampaignResponse change;
  *change.mutable_campaign() = Sending();
  const std::string out = printer.Update(change);
  EXPECT_THAT(out, HasSubstr(R"({"campaign":{"name":"tenants/t/campaigns/c1")"));
  EXPECT_EQ(out.find('\n'), out.size() - 1);
  // Figures print like any other change, even before there is revenue.
  v1::WatchCampaignResponse stats;
  stats.mutable_stats()->set_name("tenants/t/campaigns/c1/stats");
  const std::string line = printer.Update(stats);
  EXPECT_THAT(line, HasSubstr(R"({"stats":{"name":"tenants/t/campaigns/c1/stats",)"));
  EXPECT_THAT(line, HasSubstr(R"("purchases":"0")"));
  EXPECT_EQ(line.find('\n'), line.size() - 1);

  // A reopened watch sends everything again: only what changed is printed.
  v1::WatchCampaignResponse delivery;
  delivery.mutable_delivery()->set_account("tenants/t/accounts/acct_a");
  EXPECT_THAT(printer.Update(delivery), HasSubstr(R"({"delivery":)"));
  EXPECT_EQ(printer.Update(change), "");
  EXPECT_EQ(printer.Update(delivery), "");
  EXPECT_EQ(printer.Update(stats), "");
  delivery.mutable_delivery()->set_state(v1::Delivery::COMPLETED);
  EXPECT_THAT(printer.Update(delivery), HasSubstr(R"("state":"COMPLETED")"));
}

TEST(WatchPrinterTest, LinesModePrintsRevenueWhenItMoves) {
  WatchPrinter printer(WatchPrinter::Mode::kLines, 80);
  v1::WatchCampaignResponse stats;
  stats.mutable_stats()->set_sent(500);
  EXPECT_EQ(printer.Update(stats), "");  // no revenue yet
  *stats.mutable_stats() = Earning();
  EXPECT_EQ(printer.Update(stats), "revenue: 42 purchases, gross $419.58, net $335.66\n");
  // Other figures moved (views), the revenue did not: nothing to say.
  stats.mutable_stats()->set_viewed(300);
  EXPECT_EQ(printer.Update(stats), "");
  // Net alone moves when a purchase's transaction arrives after its unlock.
  stats.mutable_stats()->set_net_revenue_cents(33600);
  EXPECT_EQ(printer.Update(stats), "revenue: 42 purchases, gross $419.58, net $336.00\n");
  stats.mutable_stats()->set_purchases(43);
  stats.mutable_stats()->set_gross_revenue_cents(42958);
  EXPECT_EQ(printer.Update(stats), "revenue: 43 purchases, gross $429.58, net $336.00\n");
}

TEST(WatchPrinterTest, LiveModeRedrawsWhenRevenueArrives) {
  WatchPrinter printer(WatchPrinter::Mode::kLive, 120);
  v1::WatchCampaignResponse stats;
  *stats.mutable_stats() = Earning();
  EXPECT_EQ(printer.Update(stats), "");  // no campaign yet: nothing to draw
  v1::WatchCampaignResponse change;
  *change.mutable_campaign() = Sending();
  const v1::CampaignStats earning = Earning();
  EXPECT_EQ(printer.Update(change), "\r\033[K" + RenderProgressLine(Sending(), 120, &earning));
  EXPECT_EQ(printer.Update(stats), "");  // the same figures: nothing new to draw
  stats.mutable_stats()->set_purchases(43);
  stats.mutable_stats()->set_gross_revenue_cents(42958);
  const std::string redrawn = printer.Update(stats);
  EXPECT_EQ(redrawn, "\r\033[K" + RenderProgressLine(Sending(), 120, &stats.stats()));
  EXPECT_THAT(redrawn, HasSubstr("recipients 500/1000  purchases 43  $429.58"));
}

TEST(WatchPrinterTest, InterruptedWatchExitsWithTheFinalStateOnceThereIsOne) {
  WatchPrinter printer(WatchPrinter::Mode::kLines, 80);
  std::string message;
  v1::WatchCampaignResponse change;
  *change.mutable_campaign() = Sending();
  printer.Update(change);
  EXPECT_EQ(printer.ExitCode(&message, /*interrupted=*/true), kExitRpcError);
  EXPECT_EQ(message, "interrupted before the campaign was final");
  change.mutable_campaign()->set_state(v1::Campaign::COMPLETED);
  printer.Update(change);
  EXPECT_EQ(printer.ExitCode(&message, /*interrupted=*/true), kExitOk);
  EXPECT_EQ(message, "");
  change.mutable_campaign()->set_state(v1::Campaign::PARTIALLY_FAILED);
  printer.Update(change);
  EXPECT_EQ(printer.ExitCode(&message, /*interrupted=*/true), kExitCampaignOutcome);
  EXPECT_EQ(message, "campaign ended PARTIALLY_FAILED");
}

}  // namespace
}  // namespace herald::heraldctl
