// The delivery engine and the mass-message rules, driven by a manual clock.
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/clock.h>
#include <herald/common/strings.h>
#include <herald/upstream_sim/delivery.h>
#include <herald/upstream_sim/operations.h>
#include <herald/upstream_sim/seed.h>
#include <herald/upstream_sim/time_format.h>

namespace herald::upstream_sim {
namespace {

using ::testing::HasSubstr;

class RecordingSink final : public EventSink {
 public:
  bool Wants(const AccountIdentity&) const override { return true; }
  void Emit(WebhookEvent event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  std::vector<WebhookEvent> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::vector<WebhookEvent> OfType(EventType type) const {
    std::vector<WebhookEvent> out;
    for (const WebhookEvent& e : events()) {
      if (e.type == type) out.push_back(e);
    }
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<WebhookEvent> events_;
};

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spec = ParseSeedJson(R"({"seed": 3, "teams": [{"id": "t", "api_keys": ["k"],
      "accounts": [{"id": "acct_a", "fans": [
        {"id": 11}, {"id": 12}, {"id": 13}, {"id": 14}, {"id": 15},
        {"id": 16}, {"id": 17}, {"id": 18}, {"id": 19}, {"id": 20, "active": false}],
        "lists": [{"id": 500, "name": "VIP", "users": [11, 12, 13]}]},
        {"id": "acct_b", "fans": 5}]}]})");
    ASSERT_TRUE(spec.ok()) << spec.status();
    world_ = BuildWorld(*spec, clock_.Now());
    account_ = world_->FindAccount("acct_a");
    behavior_.delivery_rate = 2;  // recipients per second
    behavior_.unsend_window = absl::Seconds(10);
    behavior_.purchase_probability = 1.0;
    behavior_.fan_behavior = FanBehavior::kUniform;
    behavior_.purchase_delay_min = absl::Seconds(5);
    behavior_.purchase_delay_max = absl::Seconds(5);
    behavior_.progress_interval = absl::Seconds(1);
  }

  MassMessage* Send(std::string_view body) {
    auto request = ParseMassMessageBody(body, false);
    EXPECT_TRUE(request.ok()) << request.error().message;
    absl::MutexLock lock(&account_->mu);
    auto m = SendMassMessage(*world_, *account_, request.value(), clock_.Now());
    EXPECT_TRUE(m.ok()) << m.error().message;
    return m.ok() ? m.value() : nullptr;
  }

  std::string SendError(std::string_view body) {
    auto request = ParseMassMessageBody(body, false);
    if (!request.ok()) return request.error().code;
    absl::MutexLock lock(&account_->mu);
    auto m = SendMassMessage(*world_, *account_, request.value(), clock_.Now());
    return m.ok() ? "ok" : m.error().code;
  }

  QueueStatus Status(const MassMessage& m) {
    absl::MutexLock lock(&account_->mu);
    return ComputeQueueStatus(m, clock_.Now(), behavior_.unsend_window);
  }

  void Step(absl::Duration d) {
    clock_.Advance(d);
    engine_.Tick(*world_, behavior_);
  }

  std::string Upload() {
    absl::MutexLock lock(&account_->mu);
    return CreateUpload(*world_, *account_, "a.jpg", 1000, false, 3, clock_.Now(), behavior_)
        .prefixed_id;
  }

  ManualClock clock_;
  RecordingSink sink_;
  DeliveryEngine engine_{clock_, sink_};
  Behavior behavior_;
  std::unique_ptr<World> world_;
  Account* account_ = nullptr;
};

TEST_F(DeliveryTest, AsyncUploadsReportCompletionOrFailureOnce) {
  behavior_.async_upload_delay = absl::Seconds(2);
  std::string ok, bad;
  {
    absl::MutexLock lock(&account_->mu);
    ok = CreateUpload(*world_, *account_, "v.mp4", 1000, true, 3, clock_.Now(), behavior_)
             .prefixed_id;
    bad = CreateUpload(*world_, *account_, "x.jpg", 1000, true, 3, clock_.Now(), behavior_,
                       "download failed")
              .prefixed_id;
    CreateUpload(*world_, *account_, "sync.jpg", 1000, false, 3, clock_.Now(), behavior_);
  }
  Step(absl::Seconds(1));
  EXPECT_TRUE(sink_.events().empty());
  Step(absl::Seconds(1));
  Step(absl::Seconds(1));
  const auto completed = sink_.OfType(EventType::kMediaUploadCompleted);
  const auto failed = sink_.OfType(EventType::kMediaUploadFailed);
  ASSERT_EQ(completed.size(), 1u);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(sink_.events().size(), 2u);  // the sync upload emits nothing
  EXPECT_EQ(completed[0].media->prefixed_id, ok);
  EXPECT_EQ(completed[0].account->id, "acct_a");
  EXPECT_EQ(failed[0].media->prefixed_id, bad);
  EXPECT_THAT(RenderWebhookBody(completed[0]),
              HasSubstr(R"("status":"completed","credits_used":3)"));
  EXPECT_THAT(RenderWebhookBody(failed[0]),
              HasSubstr(R"("status":"failed","error":"download failed")"));
  // A failed upload cannot be attached.
  EXPECT_EQ(SendError(StrCat(R"({"text":"x","userIds":[11],"mediaFiles":[")", bad, R"("]})")),
            "media_failed");
}

TEST_F(DeliveryTest, DeliversAtTheConfiguredRateUntilDone) {
  MassMessage* m = Send(R"({"text":"hello","userLists":["fans"]})");
  ASSERT_NE(m, nullptr);
  QueueStatus s = Status(*m);
  EXPECT_EQ(s.total, 9u);  // the expired fan is not in "fans"
  EXPECT_EQ(s.pending, 9u);
  EXPECT_FALSE(s.done);
  Step(absl::Seconds(2));
  s = Status(*m);
  EXPECT_EQ(s.sent, 4u);
  EXPECT_EQ(s.pending, 5u);
  EXPECT_FALSE(s.done);
  Step(absl::Seconds(3));
  s = Status(*m);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(sink_.OfType(EventType::kMessagesSent).size(), 9u);
  const auto finished = sink_.OfType(EventType::kChatQueueFinished);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].queue_id, m->id);
  EXPECT_TRUE(finished[0].queue.done);
  EXPECT_GE(sink_.OfType(EventType::kChatQueueUpdated).size(), 1u);
  for (const WebhookEvent& e : sink_.OfType(EventType::kMessagesSent)) {
    EXPECT_EQ(e.queue_id, m->id);
    EXPECT_GT(e.chat_message_id, m->id);
    EXPECT_THAT(RenderWebhookBody(e), HasSubstr(R"("isFromQueue":true)"));
    EXPECT_THAT(RenderWebhookBody(e), HasSubstr(R"("text":"<p>hello</p>")"));
  }
}

TEST_F(DeliveryTest, ScheduledMessagesWaitForTheirDate) {
  MassMessage* m = Send(R"({"text":"later","userIds":[11,12],"scheduledDate":")" +
                        FormatSqlTime(clock_.Now() + absl::Seconds(30)) + R"("})");
  ASSERT_NE(m, nullptr);
  Step(absl::Seconds(29));
  QueueStatus s = Status(*m);
  EXPECT_FALSE(s.started);
  EXPECT_EQ(s.pending, 2u);
  EXPECT_TRUE(s.can_unsend);
  EXPECT_TRUE(sink_.events().empty());
  Step(absl::Seconds(2));
  s = Status(*m);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(sink_.OfType(EventType::kMessagesSent).size(), 2u);
}

TEST_F(DeliveryTest, PurchasesHappenAfterTheDelayAndAddUp) {
  const std::string media = Upload();
  MassMessage* m = Send(R"({"text":"ppv","userLists":["500"],"userIds":["14"],"price":9.99,)"
                        R"("mediaFiles":[")" +
                        media + R"("]})");
  ASSERT_NE(m, nullptr);
  Step(absl::Seconds(10));  // all 4 delivered; purchases due 5s after each delivery
  Step(absl::Seconds(10));
  EXPECT_EQ(m->purchases.size(), 4u);
  EXPECT_EQ(m->revenue_cents, 4 * 999);
  const auto unlocked = sink_.OfType(EventType::kPpvUnlocked);
  const auto transactions = sink_.OfType(EventType::kTransactionNew);
  ASSERT_EQ(unlocked.size(), 4u);
  ASSERT_EQ(transactions.size(), 4u);
  int64_t total = 0;
  for (const WebhookEvent& e : transactions) total += e.amount_cents;
  EXPECT_EQ(total, m->revenue_cents);
  const std::string body = RenderWebhookBody(unlocked[0]);
  EXPECT_THAT(body, HasSubstr(StrCat("firstId=", unlocked[0].chat_message_id)));
  EXPECT_THAT(body, HasSubstr(R"("{AMOUNT}":"$9.99")"));
  EXPECT_THAT(RenderWebhookBody(transactions[0]), HasSubstr(R"("amount":9.99)"));
  // The buyer's spend grew by the price.
  absl::MutexLock lock(&account_->mu);
  EXPECT_EQ(account_->fans[0].spend_messages, 999u);
}

// The mean stays p however heavy the weights' tail, which puts big spenders at the cap.
TEST(PurchaseChanceTest, SpendWeightedKeepsTheMeanAndTheEnds) {
  const std::vector<double> weights = {0.05, 0.5, 0.5, 0.75, 1.0, 1.25, 2.0, 20.0, 50.0};
  for (double p : {0.0, 0.05, 0.2, 0.5, 0.9, 1.0}) {
    const double scale = SpendWeightedScale(weights, p);
    double sum = 0;
    for (double w : weights) sum += PurchaseChance(p, FanBehavior::kSpendWeighted, w, scale);
    EXPECT_NEAR(sum / static_cast<double>(weights.size()), p, 1e-12) << p;
    EXPECT_EQ(PurchaseChance(p, FanBehavior::kUniform, 3.0, scale), p);
    if (p >= 0.5 && p < 1) {
      EXPECT_EQ(PurchaseChance(p, FanBehavior::kSpendWeighted, 50, scale), 1.0) << p;
    }
    if (p > 0 && p < 1) {
      EXPECT_GT(PurchaseChance(p, FanBehavior::kSpendWeighted, 0.5, scale),
                PurchaseChance(p, FanBehavior::kSpendWeighted, 0.05, scale))
          << p;
    }
  }
  EXPECT_EQ(PurchaseChance(1.0, FanBehavior::kSpendWeighted, 0.05, 0), 1.0);
  EXPECT_EQ(PurchaseChance(0.0, FanBehavior::kSpendWeighted, 50, 0), 0.0);
  // A fan of weight 0 never buys below p = 1, and the others keep the mean.
  const std::vector<double> with_zero = {0.0, 1.0, 1.0, 2.0};
  const double scale = SpendWeightedScale(with_zero, 0.3);
  double sum = 0;
  for (double w : with_zero) sum += PurchaseChance(0.3, FanBehavior::kSpendWeighted, w, scale);
  EXPECT_NEAR(sum / 4, 0.3, 1e-12);
  EXPECT_EQ(PurchaseChance(0.3, FanBehavior::kSpendWeighted, 0.0, scale), 0.0);
  EXPECT_EQ(SpendWeightedScale({0.0, 0.0}, 0.3), 0.0);
}

TEST_F(DeliveryTest, AtProbabilityOneEveryRecipientBuysUnderEitherBehaviour) {
  behavior_.fan_behavior = FanBehavior::kSpendWeighted;
  {
    absl::MutexLock lock(&account_->mu);
    for (size_t i = 0; i < account_->fans.size(); ++i) {
      account_->fans[i].propensity = static_cast<uint16_t>(5 + 40 * i);  // 0.05 .. 3.65
    }
  }
  const std::string media = Upload();
  MassMessage* m =
      Send(R"({"text":"ppv","userLists":["fans"],"price":5,"mediaFiles":[")" + media + R"("]})");
  ASSERT_NE(m, nullptr);
  Step(absl::Seconds(10));
  Step(absl::Seconds(10));
  EXPECT_EQ(m->sent, 9u);
  EXPECT_EQ(m->purchases.size(), 9u);
}

TEST_F(DeliveryTest, FreeMessagesAreNeverBought) {
  MassMessage* m = Send(R"({"text":"free","userLists":["fans"]})");
  Step(absl::Seconds(60));
  EXPECT_TRUE(m->purchases.empty());
  EXPECT_TRUE(sink_.OfType(EventType::kPpvUnlocked).empty());
}

TEST_F(DeliveryTest, PurchaseProbabilityZeroMeansNoBuyers) {
  behavior_.purchase_probability = 0;
  const std::string media = Upload();
  MassMessage* m =
      Send(R"({"text":"ppv","userLists":["fans"],"price":5,"mediaFiles":[")" + media + R"("]})");
  Step(absl::Seconds(60));
  EXPECT_TRUE(m->purchases.empty());
  EXPECT_EQ(m->sent, 9u);
}

TEST_F(DeliveryTest, UnsendOnlyWithinTheWindow) {
  MassMessage* m = Send(R"({"text":"oops","userLists":["fans"]})");
  Step(absl::Seconds(2));
  {
    absl::MutexLock lock(&account_->mu);
    auto r = UnsendMassMessage(*world_, *account_, m->id, clock_.Now(), behavior_, sink_);
    ASSERT_TRUE(r.ok());
  }
  const uint32_t sent_at_cancel = m->sent;
  Step(absl::Seconds(10));
  QueueStatus s = Status(*m);
  EXPECT_TRUE(s.canceled);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(m->sent, sent_at_cancel);  // delivery stopped
  EXPECT_LT(m->sent, 9u);

  MassMessage* late = Send(R"({"text":"too late","userLists":["fans"]})");
  Step(absl::Seconds(11));
  EXPECT_FALSE(Status(*late).can_unsend);
  absl::MutexLock lock(&account_->mu);
  auto r = UnsendMassMessage(*world_, *account_, late->id, clock_.Now(), behavior_, sink_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "cannot_unsend");
  auto missing = UnsendMassMessage(*world_, *account_, 42, clock_.Now(), behavior_, sink_);
  EXPECT_EQ(missing.error().status, 404);
}

TEST_F(DeliveryTest, UnsendCancelsPendingPurchases) {
  const std::string media = Upload();
  MassMessage* m =
      Send(R"({"text":"ppv","userIds":[11],"price":3,"mediaFiles":[")" + media + R"("]})");
  Step(absl::Seconds(1));
  EXPECT_EQ(m->purchases_pending, 1u);
  {
    absl::MutexLock lock(&account_->mu);
    ASSERT_TRUE(UnsendMassMessage(*world_, *account_, m->id, clock_.Now(), behavior_, sink_).ok());
  }
  Step(absl::Seconds(30));
  EXPECT_TRUE(m->purchases.empty());
  EXPECT_EQ(m->purchases_pending, 0u);
}

TEST_F(DeliveryTest, MediaIdsAreSingleUseAndPerAccount) {
  const std::string media = Upload();
  ASSERT_NE(Send(R"({"text":"a","userIds":[11],"mediaFiles":[")" + media + R"("]})"), nullptr);
  EXPECT_EQ(SendError(R"({"text":"b","userIds":[11],"mediaFiles":[")" + media + R"("]})"),
            "media_already_used");
  EXPECT_EQ(SendError(R"({"text":"c","userIds":[11],"mediaFiles":["ofapi_media_NOPE"]})"),
            "media_not_found");
  // Vault ids can be reused.
  EXPECT_EQ(SendError(R"({"text":"d","userIds":[11],"mediaFiles":["123"]})"), "ok");
  EXPECT_EQ(SendError(R"({"text":"e","userIds":[11],"mediaFiles":["123"]})"), "ok");
  // Another account's upload is unknown here.
  Account* other = world_->FindAccount("acct_b");
  std::string foreign;
  {
    absl::MutexLock lock(&other->mu);
    foreign =
        CreateUpload(*world_, *other, "b.jpg", 10, false, 3, clock_.Now(), behavior_).prefixed_id;
  }
  EXPECT_EQ(SendError(R"({"text":"f","userIds":[11],"mediaFiles":[")" + foreign + R"("]})"),
            "media_not_found");
  // A failed send consumes nothing.
  const std::string fresh = Upload();
  EXPECT_EQ(SendError(R"({"text":"g","userIds":[999],"mediaFiles":[")" + fresh + R"("]})"),
            "invalid_user_ids");
  EXPECT_EQ(SendError(R"({"text":"h","userIds":[11],"mediaFiles":[")" + fresh + R"("]})"), "ok");
}

TEST_F(DeliveryTest, RecipientsResolveListsIdsAndExclusions) {
  absl::MutexLock lock(&account_->mu);
  auto r = ResolveRecipients(*account_, {"fans"}, {"20"}, {"500"}, clock_.Now());
  ASSERT_TRUE(r.ok());
  // fans (9 active) + fan 20 (expired) - VIP (11, 12, 13).
  EXPECT_EQ(r.value().size(), 7u);
  EXPECT_EQ(ResolveRecipients(*account_, {"777"}, {}, {}, clock_.Now()).error().code,
            "invalid_user_list");
  EXPECT_EQ(ResolveRecipients(*account_, {"expired"}, {}, {}, clock_.Now()).value().size(), 1u);
  EXPECT_TRUE(ResolveRecipients(*account_, {"muted"}, {}, {}, clock_.Now()).value().empty());
}

TEST_F(DeliveryTest, UpdatesOnlyBeforeSending) {
  MassMessage* m = Send(R"({"text":"v1","userIds":[14],"scheduledDate":")" +
                        FormatSqlTime(clock_.Now() + absl::Seconds(60)) + R"("})");
  auto update = ParseMassMessageBody(R"({"text":"v2","userLists":["500"]})", true);
  ASSERT_TRUE(update.ok());
  {
    absl::MutexLock lock(&account_->mu);
    auto r = UpdateMassMessage(*world_, *account_, m->id, update.value(), clock_.Now());
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  EXPECT_EQ(m->content->html, "<p>v2</p>");
  EXPECT_EQ(Status(*m).total, 4u);  // the VIP list plus the kept user id
  Step(absl::Seconds(61));
  absl::MutexLock lock(&account_->mu);
  auto r = UpdateMassMessage(*world_, *account_, m->id, update.value(), clock_.Now());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "cannot_update");
}

TEST_F(DeliveryTest, NewSubscribersAreAppendedAndAnnounced) {
  engine_.AddSubscribers(*world_, *account_, 3);
  const auto events = sink_.OfType(EventType::kSubscriptionNew);
  ASSERT_EQ(events.size(), 3u);
  absl::MutexLock lock(&account_->mu);
  EXPECT_EQ(account_->fans.size(), 13u);
  EXPECT_EQ(account_->fans.back().id, events.back().fan.id);
  EXPECT_GT(account_->fans[10].id, 20u);
}

TEST_F(DeliveryTest, HugeQueuesAreSpreadOverPasses) {
  behavior_.delivery_rate = 1e12;
  Account* big = world_->FindAccount("acct_b");
  {
    absl::MutexLock lock(&big->mu);
    big->fans.clear();
    for (uint64_t id = 1; id <= 50'000; ++id) big->fans.push_back(Fan{.id = id});
  }
  auto request = ParseMassMessageBody(R"({"text":"all","userLists":["fans"]})", false);
  MassMessage* m;
  {
    absl::MutexLock lock(&big->mu);
    m = SendMassMessage(*world_, *big, request.value(), clock_.Now()).value();
  }
  Step(absl::Milliseconds(10));
  EXPECT_EQ(m->sent, 20'000u);
  Step(absl::Milliseconds(10));
  EXPECT_EQ(m->sent, 40'000u);
  Step(absl::Milliseconds(10));
  EXPECT_EQ(m->sent, 50'000u);
  EXPECT_EQ(sink_.OfType(EventType::kMessagesSent).size(), 50'000u);
  EXPECT_EQ(sink_.OfType(EventType::kChatQueueFinished).size(), 1u);
}

TEST(EventKeyTest, IdempotencyKeysAreStablePerEventAndDistinctAcrossEvents) {
  WebhookEvent a;
  a.seed = 1;
  a.sequence = 10;
  WebhookEvent b = a;
  b.attempt = 3;
  b.duplicate = true;
  WebhookEvent c = a;
  c.sequence = 11;
  EXPECT_EQ(IdempotencyKey(a), IdempotencyKey(b));
  EXPECT_NE(IdempotencyKey(a), IdempotencyKey(c));
  EXPECT_EQ(IdempotencyKey(a).size(), 44u);
  EXPECT_TRUE(IdempotencyKey(a).starts_with("evt_"));
}

}  // namespace
}  // namespace herald::upstream_sim
