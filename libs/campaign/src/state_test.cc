#include <gtest/gtest.h>

#include <herald/campaign/state.h>

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

}  // namespace
}  // namespace herald::campaign
