#include <gtest/gtest.h>

#include <herald/campaign/state.h>
#include <herald/campaign/workflow.h>

namespace herald::campaign {
namespace {

using store::CampaignPhase;
using store::Delivery;
using store::DeliveryState;

std::vector<Delivery> Deliveries(std::initializer_list<DeliveryState> states) {
  std::vector<Delivery> out;
  for (DeliveryState s : states) out.push_back({.state = s});
  return out;
}

CampaignState StateOf(CampaignPhase phase, std::initializer_list<DeliveryState> states) {
  store::Campaign c{.phase = phase};
  return DeriveState(c, CountDeliveries(Deliveries(states)));
}

TEST(DeriveState, PhaseDecidesBeforeDispatch) {
  EXPECT_EQ(StateOf(CampaignPhase::kDraft, {DeliveryState::kPending}), CampaignState::kDraft);
  EXPECT_EQ(StateOf(CampaignPhase::kScheduled, {DeliveryState::kPending}),
            CampaignState::kScheduled);
  EXPECT_EQ(StateOf(CampaignPhase::kCancelled, {DeliveryState::kSent}), CampaignState::kCancelled);
  EXPECT_EQ(StateOf(CampaignPhase::kMissed, {DeliveryState::kPending}), CampaignState::kMissed);
  EXPECT_EQ(StateOf(CampaignPhase::kPaused, {DeliveryState::kSending}), CampaignState::kPaused);
}

TEST(DeriveState, DispatchedFollowsDeliveries) {
  using enum DeliveryState;
  EXPECT_EQ(StateOf(CampaignPhase::kDispatched, {kPending, kSent}), CampaignState::kDispatching);
  EXPECT_EQ(StateOf(CampaignPhase::kDispatched, {kUploadingMedia}), CampaignState::kDispatching);
  EXPECT_EQ(StateOf(CampaignPhase::kDispatched, {kSent, kCompleted}), CampaignState::kSending);
  EXPECT_EQ(StateOf(CampaignPhase::kDispatched, {kCompleted, kCompleted}),
            CampaignState::kCompleted);
  EXPECT_EQ(StateOf(CampaignPhase::kDispatched, {kCompleted, kFailed}),
            CampaignState::kPartiallyFailed);
  EXPECT_EQ(StateOf(CampaignPhase::kDispatched, {kFailed, kFailed}), CampaignState::kFailed);
}

TEST(DeriveState, AMessageTheUpstreamHoldsIsSentUnlessTheCampaignIsScheduled) {
  using enum DeliveryState;
  EXPECT_EQ(StateOf(CampaignPhase::kScheduled, {kScheduledUpstream, kPending}),
            CampaignState::kScheduled);
  EXPECT_EQ(StateOf(CampaignPhase::kDispatched, {kScheduledUpstream, kSent}),
            CampaignState::kSending);
  EXPECT_EQ(StateOf(CampaignPhase::kDispatched, {kScheduledUpstream, kPending}),
            CampaignState::kDispatching);
  const DeliveryCounts c = CountDeliveries(Deliveries({kScheduledUpstream, kSent}));
  EXPECT_EQ(c.scheduled_upstream, 1);
  EXPECT_EQ(c.sent, 1);
}

TEST(DeriveState, AHeldCampaignWhoseDeliveriesAllFinishedIsFinal) {
  using enum DeliveryState;
  store::Campaign held{.phase = CampaignPhase::kScheduled};
  held.upstream_lead_ms = 60'000;
  EXPECT_EQ(DeriveState(held, CountDeliveries(Deliveries({kCompleted, kCompleted}))),
            CampaignState::kCompleted);
  EXPECT_EQ(DeriveState(held, CountDeliveries(Deliveries({kCompleted, kFailed}))),
            CampaignState::kPartiallyFailed);
  EXPECT_EQ(DeriveState(held, CountDeliveries(Deliveries({kCompleted, kSent}))),
            CampaignState::kScheduled);
  // Without a lead, the first job at the send time moves the phase: scheduled until then.
  EXPECT_EQ(StateOf(CampaignPhase::kScheduled, {kCompleted}), CampaignState::kScheduled);
}

TEST(DeriveState, APausedCampaignWhoseDeliveriesAllFinishedIsFinal) {
  using enum DeliveryState;
  EXPECT_EQ(StateOf(CampaignPhase::kPaused, {kSent, kCompleted}), CampaignState::kPaused);
  EXPECT_EQ(StateOf(CampaignPhase::kPaused, {kPending, kCompleted}), CampaignState::kPaused);
  EXPECT_EQ(StateOf(CampaignPhase::kPaused, {kCompleted, kCompleted}), CampaignState::kCompleted);
  EXPECT_EQ(StateOf(CampaignPhase::kPaused, {kCompleted, kFailed}),
            CampaignState::kPartiallyFailed);
  EXPECT_EQ(StateOf(CampaignPhase::kPaused, {}), CampaignState::kPaused);
}

TEST(CountDeliveries, KeepsTheLatestChange) {
  std::vector<Delivery> d = Deliveries({DeliveryState::kSent, DeliveryState::kCompleted});
  d[0].update_time_ms = 5000;
  d[1].update_time_ms = 7000;
  EXPECT_EQ(CountDeliveries(d).updated_ms, 7000);
  EXPECT_EQ(CountDeliveries({}).updated_ms, 0);
}

TEST(CountDeliveries, SumsStatesAndRecipients) {
  auto d = Deliveries({DeliveryState::kSent, DeliveryState::kCompleted, DeliveryState::kFailed});
  d[0].recipients = 10;
  d[0].recipients_pending = 4;
  d[1].recipients = 5;
  const DeliveryCounts c = CountDeliveries(d);
  EXPECT_EQ(c.total, 3);
  EXPECT_EQ(c.sent, 1);
  EXPECT_EQ(c.completed, 1);
  EXPECT_EQ(c.failed, 1);
  EXPECT_EQ(c.recipients, 15);
  EXPECT_EQ(c.recipients_pending, 4);
}

TEST(CampaignStateName, FinalStates) {
  EXPECT_TRUE(IsFinal(CampaignState::kCompleted));
  EXPECT_TRUE(IsFinal(CampaignState::kMissed));
  EXPECT_FALSE(IsFinal(CampaignState::kSending));
  EXPECT_EQ(CampaignStateName(CampaignState::kPartiallyFailed), "PARTIALLY_FAILED");
}

TEST(SegmentSelects, SpendAndRecencyNeedWhatHeraldKnows) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  const store::Segment spenders{.min_lifetime_spend_cents = 5000};
  EXPECT_FALSE(SegmentSelects(spenders, std::nullopt, now)) << "no data: not selected";
  EXPECT_FALSE(SegmentSelects(spenders, FanData{.lifetime_spend_cents = 4999}, now));
  EXPECT_TRUE(SegmentSelects(spenders, FanData{.lifetime_spend_cents = 5000}, now));

  const store::Segment recent{.subscribed_within_days = 7};
  const int64_t six_days_ago = absl::ToUnixMillis(now - absl::Hours(24 * 6));
  const int64_t eight_days_ago = absl::ToUnixMillis(now - absl::Hours(24 * 8));
  EXPECT_TRUE(SegmentSelects(recent, FanData{.subscribed_at_ms = six_days_ago}, now));
  EXPECT_FALSE(SegmentSelects(recent, FanData{.subscribed_at_ms = eight_days_ago}, now));
  EXPECT_FALSE(SegmentSelects(recent, FanData{}, now)) << "unknown subscription date";

  // The source list decides expiry; with no other condition every fan of it is selected.
  EXPECT_TRUE(SegmentSelects(store::Segment{.expired_only = true}, std::nullopt, now));

  // Top spenders are ranked among the fans known to have spent something.
  const store::Segment top{.top_spenders = 2};
  EXPECT_FALSE(SegmentSelects(top, std::nullopt, now));
  EXPECT_FALSE(SegmentSelects(top, FanData{.lifetime_spend_cents = 0}, now));
  EXPECT_TRUE(SegmentSelects(top, FanData{.lifetime_spend_cents = 1}, now));
}

TEST(ScanPage, RoundTripsWithOrWithoutSpends) {
  const std::vector<ScannedFan> fans{{.id = 7, .spend_cents = 900}, {.id = 3, .spend_cents = 0}};
  EXPECT_EQ(EncodeScanPage(fans, true), "7:900,3:0");
  EXPECT_EQ(DecodeScanPage(EncodeScanPage(fans, true)), fans);
  EXPECT_EQ(EncodeScanPage(fans, false), "7,3");
  EXPECT_EQ(DecodeScanPage("7,3"),
            (std::vector<ScannedFan>{{.id = 7, .spend_cents = 0}, {.id = 3, .spend_cents = 0}}));
  EXPECT_TRUE(DecodeScanPage("").empty());
  EXPECT_TRUE(EncodeScanPage({}, true).empty());
  EXPECT_EQ(DecodeScanPage("x,5:y,,9:12,:3"),
            (std::vector<ScannedFan>{{.id = 9, .spend_cents = 12}}))
      << "malformed entries are skipped";
}

TEST(AddBatch, RoundTripsAndRefusesAnythingElse) {
  const AddBatch batch{.begin = 200, .fans = {17, 4, 9000000000}};
  EXPECT_EQ(EncodeAddBatch(batch), "200;17,4,9000000000");
  EXPECT_EQ(DecodeAddBatch(EncodeAddBatch(batch)), batch);
  EXPECT_EQ(DecodeAddBatch("0;5"), (AddBatch{.begin = 0, .fans = {5}}));
  for (std::string_view bad : {"", "17,4", ";17", "x;17", "-1;17", "3;", "3;17,,4", "3;17,y"}) {
    EXPECT_EQ(DecodeAddBatch(bad), std::nullopt) << "'" << bad << "'";
  }
}

TEST(NextPollDelay, ChecksAgainJustAfterTheUpstreamShouldBeDone) {
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  const absl::Duration margin = absl::Milliseconds(500);
  // 400 recipients reached in 4 s: the other 600 take 6 s more.
  EXPECT_EQ(NextPollDelay({.pending = 1000, .at = t0},
                          {.pending = 600, .at = t0 + absl::Seconds(4)}, margin, absl::Seconds(30)),
            absl::Milliseconds(6500));
  // Never later than the backoff.
  EXPECT_EQ(NextPollDelay({.pending = 1000, .at = t0},
                          {.pending = 600, .at = t0 + absl::Seconds(4)}, margin, absl::Seconds(4)),
            absl::Seconds(4));
}

TEST(NextPollDelay, FiguresThatDidNotFallKeepTheBackoff) {
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  const absl::Time t4 = t0 + absl::Seconds(4);
  const absl::Duration margin = absl::Milliseconds(500);
  const absl::Duration backoff = absl::Seconds(16);
  // No progress, or no earlier figure (a delivery starts with none pending).
  EXPECT_EQ(NextPollDelay({.pending = 600, .at = t0}, {.pending = 600, .at = t4}, margin, backoff),
            backoff);
  EXPECT_EQ(NextPollDelay({.pending = 0, .at = t0}, {.pending = 600, .at = t4}, margin, backoff),
            backoff);
  // Nothing left to project, or no time between the two figures.
  EXPECT_EQ(NextPollDelay({.pending = 600, .at = t0}, {.pending = 0, .at = t4}, margin, backoff),
            backoff);
  EXPECT_EQ(NextPollDelay({.pending = 600, .at = t4}, {.pending = 300, .at = t4}, margin, backoff),
            backoff);
}

TEST(SegmentRecipients, TopSpendersAreTheBiggestFirstAndTiesGoToTheLowerId) {
  const std::vector<ScannedFan> scanned{{.id = 5, .spend_cents = 100},
                                        {.id = 9, .spend_cents = 700},
                                        {.id = 2, .spend_cents = 300},
                                        {.id = 4, .spend_cents = 700},
                                        {.id = 1, .spend_cents = 50}};
  EXPECT_EQ(SegmentRecipients(store::Segment{.top_spenders = 3}, scanned),
            (std::vector<int64_t>{4, 9, 2}));
  EXPECT_EQ(SegmentRecipients(store::Segment{.top_spenders = 100}, scanned),
            (std::vector<int64_t>{4, 9, 2, 5, 1}))
      << "fewer candidates than the limit: all of them, ranked";
  EXPECT_EQ(SegmentRecipients(store::Segment{.min_lifetime_spend_cents = 1}, scanned),
            (std::vector<int64_t>{5, 9, 2, 4, 1}))
      << "without top_spenders: every scanned fan, in scan order";
}

TEST(FanData, RoundTripsAndRejectsGarbage) {
  const FanData fan{.lifetime_spend_cents = 12345, .subscribed_at_ms = 1'700'000'000'000};
  const std::optional<FanData> back = DecodeFanData(EncodeFanData(fan));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->lifetime_spend_cents, 12345);
  EXPECT_EQ(back->subscribed_at_ms, 1'700'000'000'000);
  EXPECT_FALSE(DecodeFanData("not json").has_value());
}

TEST(PauseWindows, KeepTheLastFewAndFindTheOneAcrossAMoment) {
  std::vector<store::PauseWindow> pauses;
  EXPECT_EQ(PauseAcross(pauses, 100), nullptr);
  BeginPause(pauses, 100);
  BeginPause(pauses, 150);  // already paused: the pause keeps its start
  ASSERT_EQ(pauses.size(), 1u);
  EXPECT_EQ(PauseAcross(pauses, 500), &pauses[0]);  // still lasting
  EndPause(pauses, 200);
  EndPause(pauses, 250);  // not paused: nothing changes
  EXPECT_EQ(pauses[0].start_ms, 100);
  EXPECT_EQ(pauses[0].end_ms, 200);
  EXPECT_EQ(PauseAcross(pauses, 100), &pauses[0]);
  EXPECT_EQ(PauseAcross(pauses, 199), &pauses[0]);
  EXPECT_EQ(PauseAcross(pauses, 200), nullptr);  // over by then
  EXPECT_EQ(PauseAcross(pauses, 99), nullptr);
  // A later pause does not hide the one that lasted across the moment.
  BeginPause(pauses, 300);
  EndPause(pauses, 400);
  EXPECT_EQ(PauseAcross(pauses, 150)->start_ms, 100);
  EXPECT_EQ(PauseAcross(pauses, 350)->start_ms, 300);
  EXPECT_EQ(PauseAcross(pauses, 250), nullptr);
  // Only the last kPauseWindowsKept are kept.
  for (int64_t t = 1000; t < 1000 + 100 * static_cast<int64_t>(kPauseWindowsKept); t += 100) {
    BeginPause(pauses, t);
    EndPause(pauses, t + 50);
  }
  ASSERT_EQ(pauses.size(), kPauseWindowsKept);
  EXPECT_EQ(pauses.front().start_ms, 1000);
  EXPECT_EQ(PauseAcross(pauses, 150), nullptr);
}

TEST(NeverAttempted, ADeliveryStillPreparingItsSendHasNotAttemptedIt) {
  // A missed campaign fails these without asking the upstream.
  for (DeliveryState s :
       {DeliveryState::kPending, DeliveryState::kUploadingMedia, DeliveryState::kBuildingList}) {
    EXPECT_TRUE(NeverAttempted({.state = s})) << static_cast<int>(s);
  }
  // A send on record may have reached the upstream: its job settles the delivery.
  EXPECT_FALSE(NeverAttempted({.state = DeliveryState::kSending, .send_attempts = 1}));
  EXPECT_FALSE(NeverAttempted({.state = DeliveryState::kUploadingMedia, .send_attempts = 1}));
  EXPECT_FALSE(NeverAttempted({.state = DeliveryState::kPending, .send_attempts = 1}));
  EXPECT_FALSE(
      NeverAttempted({.state = DeliveryState::kScheduledUpstream, .upstream_message_id = 7}));
  for (DeliveryState s :
       {DeliveryState::kCompleted, DeliveryState::kFailed, DeliveryState::kCancelled}) {
    EXPECT_FALSE(NeverAttempted({.state = s})) << static_cast<int>(s);
  }
}

}  // namespace
}  // namespace herald::campaign
