#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/upstream/webhook_event.h>

namespace herald::upstream {
namespace {

TEST(WebhookEventTest, MessageSentLinksTheFansMessageToItsQueue) {
  auto e = DecodeWebhookEvent(R"({"event":"messages.sent","account_id":"acct_a","payload":{
      "id":1000027,"text":"<p>hi</p>","price":25,"isFree":false,"queueId":1000026,
      "isFromQueue":true,"toUser":{"id":77,"name":"F"}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->type, WebhookEventType::kMessageSent);
  EXPECT_EQ(e->account, "acct_a");
  EXPECT_EQ(e->chat_message_id, 1000027);
  EXPECT_EQ(e->queue_id, 1000026);
  EXPECT_EQ(e->price_cents, 2500);
  EXPECT_EQ(e->fan_id, 77);
}

// queueId names the mass message, whatever isFromQueue says (the upstream's own captures of
// mass-message copies carry isFromQueue: false); without it the message belongs to none.
TEST(WebhookEventTest, QueueIdNamesTheMassMessage) {
  auto e = DecodeWebhookEvent(R"({"event":"messages.sent","account_id":"acct_a","payload":{
      "id":1000027,"text":"<p>hi</p>","price":25,"isFree":false,"queueId":1000026,
      "isFromQueue":false,"toUser":{"id":77}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->chat_message_id, 1000027);
  EXPECT_EQ(e->queue_id, 1000026);
  EXPECT_EQ(e->price_cents, 2500);
  e = DecodeWebhookEvent(R"({"event":"messages.sent","account_id":"acct_a","payload":{
      "id":1000031,"price":15,"isFromQueue":true,"toUser":{"id":77}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->queue_id, 0);
}

TEST(WebhookEventTest, TransactionIsExactToTheCent) {
  auto e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"0123abcd","created_at":"2026-01-01 00:00:00","type":"message","amount":17,
      "vat_amount":2.21,"tax_amount":0,"net_amount":13.6,"fee_amount":3.4,"currency":"USD",
      "description":"Payment for <a href=\"https://onlyfans.com/my/chats/chat/77/?firstId=555\">message</a>",
      "fan":{"id":"77"},"fanData":{"spending":{"total":115.2}}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->type, WebhookEventType::kTransaction);
  EXPECT_EQ(e->amount_cents, 1700);
  EXPECT_EQ(e->net_cents, 1360);
  EXPECT_EQ(e->fee_cents, 340);
  EXPECT_EQ(e->chat_message_id, 555);
  EXPECT_EQ(e->fan_id, 77);
  EXPECT_EQ(e->transaction_id, "0123abcd");
  EXPECT_EQ(e->transaction_kind, "message");
  EXPECT_EQ(e->fan_lifetime_spend_cents, 11520);
}

// A refund or a correction is a negative transaction; a price never is.
TEST(WebhookEventTest, ATransactionMayBeNegative) {
  auto e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"0123abce","type":"refund","amount":-9.99,"net_amount":"-7.99"}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->amount_cents, -999);
  EXPECT_EQ(e->net_cents, -799);
  EXPECT_EQ(e->fee_cents, -200);
  e = DecodeWebhookEvent(R"({"event":"messages.sent","account_id":"acct_a","payload":{
      "id":1000031,"price":-15,"queueId":1000026,"toUser":{"id":77}}})");
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WebhookEventTest, ATransactionsFeeIsWhatItsAmountLeavesBeyondItsNet) {
  // Rounded each on its own, the net (80.5 cents) and the fee (20.5) would add up to 102.
  auto e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"0123abce","type":"message","amount":1.01,"net_amount":0.805,"fee_amount":0.205,
      "description":"?firstId=555","fan":{"id":"77"}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->amount_cents, 101);
  EXPECT_EQ(e->net_cents, 81);
  EXPECT_EQ(e->fee_cents, 20);
  // A net beyond the amount is no transaction.
  e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"0123abd0","type":"message","amount":17,"net_amount":26.6,"fan":{"id":"77"}}})");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("payload.net_amount"), std::string_view::npos);
  // Without a net, the fee is as given and the net is the rest.
  e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"0123abcf","type":"message","amount":10,"fee_amount":2,"fan":{"id":"77"}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->net_cents, 800);
  EXPECT_EQ(e->fee_cents, 200);
  // A fee beyond the amount is no transaction either.
  e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"0123abd1","type":"message","amount":10,"fee_amount":12,"fan":{"id":"77"}}})");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("payload.fee_amount"), std::string_view::npos);
  // Beside a net, the fee is the rest of the amount whatever the event says of it: one it
  // cannot read does not fail the event.
  e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"0123abd3","type":"message","amount":10,"net_amount":8,"fee_amount":"n/a",
      "fan":{"id":"77"}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->net_cents, 800);
  EXPECT_EQ(e->fee_cents, 200);
}

TEST(WebhookEventTest, ATransactionWithNeitherNetNorFeeLeavesBothUnknown) {
  auto e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"0123abd2","type":"message","amount":10,"description":"?firstId=555",
      "fan":{"id":"77"}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->amount_cents, 1000);
  EXPECT_EQ(e->net_cents, -1);
  EXPECT_EQ(e->fee_cents, -1);
}

TEST(WebhookEventTest, UnlockReadsTheMessageLinkAndAmount) {
  auto e = DecodeWebhookEvent(R"({"event":"messages.ppv.unlocked","account_id":"acct_a",
      "payload":{"id":"n1","user_id":"9","replacePairs":{"{AMOUNT}":"$12.00",
      "{MESSAGE_LINK}":"<a href=\"x/?firstId=42\">message</a>"}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->type, WebhookEventType::kPpvUnlocked);
  EXPECT_EQ(e->amount_cents, 1200);
  EXPECT_EQ(e->chat_message_id, 42);
  EXPECT_EQ(e->fan_id, 9);
  EXPECT_EQ(e->fan_lifetime_spend_cents, -1);
  EXPECT_EQ(e->purchased_at_ms, -1);  // undated
}

// A purchase is dated as the upstream dates it; a date Herald cannot read leaves it undated
// (applied all the same).
TEST(WebhookEventTest, APurchaseKeepsTheTimeTheUpstreamGivesIt) {
  auto e = DecodeWebhookEvent(R"({"event":"messages.ppv.unlocked","account_id":"acct_a",
      "payload":{"id":"n1","user_id":"9","createdAt":"2026-01-01T00:00:01+00:00",
      "replacePairs":{"{AMOUNT}":"$12.00","{MESSAGE_LINK}":"x/?firstId=42"}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->purchased_at_ms, 1767225601000);
  e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"0123abcd","created_at":"2026-01-01 00:00:02","type":"message","amount":17,
      "net_amount":13.6,"description":"?firstId=555","fan":{"id":"77"}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->purchased_at_ms, 1767225602000);
  // A date before 2000 is no purchase's date on the platform (an unset field's zero time).
  for (std::string_view at : {R"("yesterday")", "12", "null", R"("1970-01-01 00:00:00")",
                              R"("0001-01-01T00:00:00+00:00")"}) {
    e = DecodeWebhookEvent(StrCat(R"({"event":"transactions.new","account_id":"acct_a",
        "payload":{"id":"0123abce","created_at":)",
                                  at, R"(,"type":"message","amount":17,"net_amount":13.6,
        "description":"?firstId=555","fan":{"id":"77"}}})"));
    ASSERT_TRUE(e.ok()) << at << ": " << e.status();
    EXPECT_EQ(e->purchased_at_ms, -1) << at;
  }
}

TEST(WebhookEventTest, QueueProgress) {
  auto e = DecodeWebhookEvent(R"({"event":"chat_queue.finished","account_id":"acct_a",
      "payload":{"id":12,"isDone":true,"isCanceled":false,"pending":0,"total":7}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->type, WebhookEventType::kChatQueueFinished);
  EXPECT_EQ(e->queue_id, 12);
  EXPECT_EQ(e->queue_total, 7);
  EXPECT_TRUE(e->queue_done);
}

TEST(WebhookEventTest, AFinishedQueueIsDoneWhateverItsPayloadSays) {
  auto finished = DecodeWebhookEvent(R"({"event":"chat_queue.finished","account_id":"acct_a",
      "payload":{"id":12,"pending":0,"total":7}})");
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_TRUE(finished->queue_done);
  auto updated = DecodeWebhookEvent(R"({"event":"chat_queue.updated","account_id":"acct_a",
      "payload":{"id":12,"pending":3,"total":7}})");
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_FALSE(updated->queue_done);
}

TEST(WebhookEventTest, QueueProgressWithoutBothCountsHasNone) {
  for (std::string_view counts : {"", R"(,"total":7)", R"(,"pending":0)"}) {
    auto e = DecodeWebhookEvent(StrCat(R"({"event":"chat_queue.finished",
        "account_id":"acct_a","payload":{"id":12,"isDone":true)",
                                       counts, "}}"));
    ASSERT_TRUE(e.ok()) << counts << ": " << e.status();
    EXPECT_EQ(e->queue_total, -1) << counts;
    EXPECT_EQ(e->queue_pending, -1) << counts;
    EXPECT_TRUE(e->queue_done) << counts;
  }
}

TEST(WebhookEventTest, SubscriptionTimeInEitherFormat) {
  auto e = DecodeWebhookEvent(R"({"event":"subscriptions.new","account_id":"acct_a",
      "payload":{"user_id":"5","subscribedAt":"2026-01-01T00:00:01+00:00"}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->subscribed_at_ms, 1767225601000);
  e = DecodeWebhookEvent(R"({"event":"subscriptions.new","account_id":"acct_a",
      "payload":{"user_id":"5","subscribedAt":"2026-01-01 00:00:01"}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->subscribed_at_ms, 1767225601000);
}

// The subscription still counts when its start is missing or unreadable: Herald dates it.
TEST(WebhookEventTest, ASubscriptionWithoutAReadableStartIsKeptUndated) {
  for (std::string_view at : {R"(,"subscribedAt":"yesterday")", R"(,"subscribedAt":7)", ""}) {
    auto e = DecodeWebhookEvent(StrCat(R"({"event":"subscriptions.new","account_id":"acct_a",)",
                                       R"("payload":{"user_id":"5")", at, "}}"));
    ASSERT_TRUE(e.ok()) << at << ": " << e.status();
    EXPECT_EQ(e->fan_id, 5) << at;
    EXPECT_EQ(e->subscribed_at_ms, -1) << at;
  }
}

TEST(WebhookEventTest, TheSubscriberIsUserIdOrTheUserOrFansId) {
  for (std::string_view payload :
       {R"({"user_id":"5"})", R"({"user":{"id":5,"name":"x"}})", R"({"fan":{"id":"5"}})"}) {
    auto e = DecodeWebhookEvent(
        StrCat(R"({"event":"subscriptions.new","account_id":"acct_a","payload":)", payload, "}"));
    ASSERT_TRUE(e.ok()) << payload << ": " << e.status();
    EXPECT_EQ(e->fan_id, 5) << payload;
  }
  auto e = DecodeWebhookEvent(
      R"({"event":"subscriptions.new","account_id":"acct_a","payload":{"id":"s1"}})");
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("user_id"), std::string::npos) << e.status();
}

// A renewal or an expiry names its fan and carries fan data, but its subscribedAt (the period's
// start) is not a new subscription's date.
TEST(WebhookEventTest, RenewalsAndExpiriesNameTheFanButNoNewSubscription) {
  for (const auto& [name, type] : {std::pair<std::string_view, WebhookEventType>{
                                       "subscriptions.renewed", WebhookEventType::kRenewal},
                                   {"subscriptions.expired", WebhookEventType::kExpiry}}) {
    auto e = DecodeWebhookEvent(StrCat(R"({"event":")", name, R"(","account_id":"acct_a",
        "payload":{"user_id":"5","user":{"id":5},"subscribedAt":"2026-01-01T00:00:01+00:00",
        "fanData":{"spending":{"total":12.5}}}})"));
    ASSERT_TRUE(e.ok()) << name << ": " << e.status();
    EXPECT_EQ(e->type, type) << name;
    EXPECT_EQ(e->fan_id, 5) << name;
    EXPECT_EQ(e->fan_lifetime_spend_cents, 1250) << name;
    EXPECT_EQ(e->subscribed_at_ms, -1) << name;
    e = DecodeWebhookEvent(
        StrCat(R"({"event":")", name, R"(","account_id":"acct_a","payload":{"id":"s1"}})"));
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
}

// A net amount computed without rounding (80% of 9.99) is rounded to the cent, not refused.
TEST(WebhookEventTest, AmountsBeyondCentsAreRoundedToTheCent) {
  auto e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"t1","type":"message","amount":9.99,"net_amount":7.992,"fee_amount":1.998,
      "fan":{"id":"77"},"fanData":{"spending":{"total":15.255}}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->amount_cents, 999);
  EXPECT_EQ(e->net_cents, 799);
  EXPECT_EQ(e->fee_cents, 200);
  EXPECT_EQ(e->fan_lifetime_spend_cents, 1526);
}

TEST(WebhookEventTest, AmountsBeyondAnyRealOneAreRefused) {
  auto e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"t1","type":"message","amount":1000000000.01,"fan":{"id":"77"}}})");
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("payload.amount"), std::string::npos) << e.status();
  e = DecodeWebhookEvent(R"({"event":"transactions.new","account_id":"acct_a","payload":{
      "id":"t1","type":"message","amount":1000000000,"fan":{"id":"77"}}})");
  EXPECT_TRUE(e.ok()) << e.status();
}

TEST(WebhookEventTest, UnknownEventsDecodeAsOther) {
  auto e = DecodeWebhookEvent(R"({"event":"users.typing","payload":{"x":1}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->type, WebhookEventType::kOther);
  EXPECT_EQ(e->name, "users.typing");
}

TEST(WebhookEventTest, MalformedBodiesAreErrors) {
  for (std::string_view body :
       {"", "[]", "{", R"({"event":5})", R"({"account_id":"acct_a"})",
        R"({"event":"messages.sent","account_id":"acct_a"})",
        R"({"event":"messages.sent","account_id":"acct_a","payload":[]})",
        R"({"event":"messages.sent","payload":{"id":1}})",
        R"({"event":"messages.sent","account_id":"acct_a","payload":{"id":"x"}})",
        R"({"event":"transactions.new","account_id":"acct_a","payload":{"id":"t"}})",
        R"({"event":"transactions.new","account_id":"acct_a",
                                   "payload":{"id":"t","amount":"1,23"}})"}) {
    auto e = DecodeWebhookEvent(body);
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(WebhookEventTest, AnAppliedEventNamesAnUpstreamAccount) {
  for (std::string_view account :
       {"a", "acct_", "../x", "acct_a b", "acct_a/b",
        "acct_0123456789012345678901234567890123456789012345678901234567890123456789"}) {
    const std::string body = StrCat(R"({"event":"subscriptions.new","account_id":")", account,
                                    R"(","payload":{"user_id":"7"}})");
    auto e = DecodeWebhookEvent(body);
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << account;
    EXPECT_EQ(e.status().message().substr(0, 12), "account_id: ") << e.status();
  }
  auto e = DecodeWebhookEvent(
      R"({"event":"subscriptions.new","account_id":"acct_Ab9","payload":{"user_id":"7"}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->account, "acct_Ab9");
}

TEST(WebhookEventTest, FirstIdInLink) {
  EXPECT_EQ(FirstIdInLink("a?firstId=123\">"), 123);
  EXPECT_EQ(FirstIdInLink("no link"), 0);
  EXPECT_EQ(FirstIdInLink("firstId=99999999999999999999"), 0);
}

}  // namespace
}  // namespace herald::upstream
