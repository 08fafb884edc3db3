// The webhook recorder over a real redis-server: each event applied exactly once, purchases
// credited to their mass message whatever order the events arrive in, fan data kept for
// segments, and the analytics reads.
#include <atomic>
#include <future>
#include <map>

#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include <herald/common/clock.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/redis/client.h>
#include <herald/testing/io_thread.h>
#include <herald/testing/redis_server.h>
#include <herald/upstream/webhook_event.h>
#include <herald/webhooks/recorder.h>

namespace herald::webhooks {
namespace {

namespace asio = boost::asio;
using upstream::WebhookEvent;
using upstream::WebhookEventType;

WebhookEvent Sent(int64_t queue, int64_t chat, int64_t fan, int64_t price_cents) {
  WebhookEvent e;
  e.type = WebhookEventType::kMessageSent;
  e.name = "messages.sent";
  e.account = "acct_a";
  e.queue_id = queue;
  e.chat_message_id = chat;
  e.fan_id = fan;
  e.price_cents = price_cents;
  return e;
}

WebhookEvent Unlock(int64_t chat, int64_t fan, int64_t amount) {
  WebhookEvent e;
  e.type = WebhookEventType::kPpvUnlocked;
  e.name = "messages.ppv.unlocked";
  e.account = "acct_a";
  e.chat_message_id = chat;
  e.fan_id = fan;
  e.amount_cents = amount;
  return e;
}

WebhookEvent Transaction(int64_t chat, int64_t fan, int64_t amount, int64_t spend_total = -1) {
  WebhookEvent e;
  e.type = WebhookEventType::kTransaction;
  e.name = "transactions.new";
  e.transaction_kind = "message";
  e.account = "acct_a";
  e.chat_message_id = chat;
  e.fan_id = fan;
  e.amount_cents = amount;
  e.fee_cents = (amount * 20 + 50) / 100;
  e.net_cents = amount - e.fee_cents;
  e.fan_lifetime_spend_cents = spend_total;
  return e;
}

WebhookEvent Subscription(std::string account, int64_t fan, int64_t subscribed_at_ms) {
  WebhookEvent e;
  e.type = WebhookEventType::kSubscription;
  e.name = "subscriptions.new";
  e.account = std::move(account);
  e.fan_id = fan;
  e.subscribed_at_ms = subscribed_at_ms;
  return e;
}

WebhookEvent Queue(int64_t queue, int64_t total, int64_t pending, bool done) {
  WebhookEvent e;
  e.type = done ? WebhookEventType::kChatQueueFinished : WebhookEventType::kChatQueueUpdated;
  e.name = done ? "chat_queue.finished" : "chat_queue.updated";
  e.account = "acct_a";
  e.queue_id = queue;
  e.queue_total = total;
  e.queue_pending = pending;
  e.queue_done = done;
  return e;
}

class WebhooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = testing::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = std::make_unique<redis::Client>(
        io_.executor(), redis::ClientConfig{.address = {"127.0.0.1", server_->port()}});
    client_->Start();
    recorder_ = MakeRedisEventRecorder(*client_, clock_, {}, &registry_);
    reader_ = std::make_unique<MessageAnalytics>(*client_);
    io_.Start();
  }

  void TearDown() override {
    client_->Stop();
    io_.Join();
  }

  template <typename T>
  T Must(asio::awaitable<absl::StatusOr<T>> op) {
    return io_.Must(std::move(op));
  }

  RecordOutcome Record(std::string key, const WebhookEvent& event, std::string tenant = "t1") {
    return Must(recorder_->Record(std::move(tenant), std::move(key), event));
  }

  // Records `events` of tenant t1 with `recorder`, all started in one turn of the I/O thread so
  // that they meet in its group commit; their outcomes, in order.
  std::vector<absl::StatusOr<RecordOutcome>> RecordTogether(
      EventRecorder& recorder, const std::vector<std::pair<std::string, WebhookEvent>>& events) {
    std::vector<std::future<absl::StatusOr<RecordOutcome>>> results;
    std::promise<void> started;
    asio::post(io_.context(), [&] {
      for (const auto& [key, event] : events) {
        results.push_back(io_.Spawn(recorder.Record("t1", key, event)));
      }
      started.set_value();
    });
    started.get_future().get();
    std::vector<absl::StatusOr<RecordOutcome>> outcomes;
    for (auto& r : results) outcomes.push_back(r.get());
    return outcomes;
  }

  MessageStats Stats(int64_t queue, std::string tenant = "t1") {
    std::vector<MessageStats> s =
        Must(reader_->Messages(std::move(tenant), {MessageKey{"acct_a", queue}}));
    return s.empty() ? MessageStats{} : s[0];
  }

  std::optional<std::string> Fan(int64_t fan) {
    redis::Reply r = Must(client_->Exec({"HGET", "hd:{t:t1}:fans:acct_a", std::to_string(fan)}));
    return r.AsOptionalString();
  }

  ManualClock clock_{absl::FromUnixMillis(1'800'000'000'000)};
  metrics::Registry registry_;
  testing::IoThread io_;
  std::unique_ptr<testing::RedisServer> server_;
  std::unique_ptr<redis::Client> client_;
  std::unique_ptr<EventRecorder> recorder_;
  std::unique_ptr<MessageAnalytics> reader_;
};

TEST_F(WebhooksTest, PurchaseCreditedToItsMassMessageExactlyOnce) {
  EXPECT_EQ(Record("e1", Sent(100, 501, 7, 999)), RecordOutcome::kApplied);
  EXPECT_EQ(Record("e2", Unlock(501, 7, 999)), RecordOutcome::kApplied);
  EXPECT_EQ(Record("e3", Transaction(501, 7, 999)), RecordOutcome::kApplied);
  // Redelivered copies change nothing.
  EXPECT_EQ(Record("e1", Sent(100, 501, 7, 999)), RecordOutcome::kDuplicate);
  EXPECT_EQ(Record("e3", Transaction(501, 7, 999)), RecordOutcome::kDuplicate);
  const MessageStats s = Stats(100);
  EXPECT_EQ(s.sent, 1);
  EXPECT_EQ(s.purchases, 1);
  EXPECT_EQ(s.gross_cents, 999);
  EXPECT_EQ(s.fee_cents, 200);
  EXPECT_EQ(s.net_cents, 799);
  const std::vector<Buyer> buyers = Must(reader_->Buyers("t1", {MessageKey{"acct_a", 100}}));
  ASSERT_EQ(buyers.size(), 1u);
  EXPECT_EQ(buyers[0].fan_id, 7);
  EXPECT_EQ(buyers[0].spent_cents, 999);
  EXPECT_EQ(buyers[0].first_purchase_ms, 1'800'000'000'000);
}

TEST_F(WebhooksTest, AnEventIsKnownAppliedByItsKeyInItsTenantOnly) {
  EXPECT_FALSE(Must(recorder_->Applied("t1", "k1")));
  EXPECT_EQ(Record("k1", Sent(100, 511, 7, 999)), RecordOutcome::kApplied);
  EXPECT_TRUE(Must(recorder_->Applied("t1", "k1")));
  EXPECT_FALSE(Must(recorder_->Applied("t2", "k1")));
  EXPECT_FALSE(Must(recorder_->Applied("t1", "k2")));
}

TEST_F(WebhooksTest, PurchaseBeforeItsMessageIsCreditedWhenTheLinkArrives) {
  EXPECT_EQ(Record("t", Transaction(502, 8, 1500)), RecordOutcome::kUnattributed);
  EXPECT_EQ(Record("u", Unlock(502, 8, 1500)), RecordOutcome::kUnattributed);
  EXPECT_EQ(Stats(101).purchases, 0);
  Record("s", Sent(101, 502, 8, 1500));
  const MessageStats s = Stats(101);
  EXPECT_EQ(s.purchases, 1);
  EXPECT_EQ(s.gross_cents, 1500);
  EXPECT_EQ(s.net_cents, 1200);
}

// An unlock alone counts the purchase and its gross, with net and fee estimated at the
// platform's 20% until the transaction's exact amounts replace them; a transaction that never
// arrives leaves the estimate, not a purchase without net.
TEST_F(WebhooksTest, UnlockAloneEstimatesNetAndTheTransactionCorrectsIt) {
  Record("s", Sent(102, 503, 9, 1000));
  Record("u", Unlock(503, 9, 777));
  MessageStats s = Stats(102);
  EXPECT_EQ(s.purchases, 1);
  EXPECT_EQ(s.gross_cents, 777);
  EXPECT_EQ(s.fee_cents, 155);
  EXPECT_EQ(s.net_cents, 622);
  Record("t", Transaction(503, 9, 1050));
  s = Stats(102);
  EXPECT_EQ(s.purchases, 1);
  EXPECT_EQ(s.gross_cents, 1050);
  EXPECT_EQ(s.fee_cents, 210);
  EXPECT_EQ(s.net_cents, 840);
  // Delivered again, under new keys: nothing moves.
  Record("u2", Unlock(503, 9, 777));
  Record("t2", Transaction(503, 9, 1050));
  s = Stats(102);
  EXPECT_EQ(s.gross_cents, 1050);
  EXPECT_EQ(s.fee_cents, 210);
  EXPECT_EQ(s.net_cents, 840);
  redis::Reply account =
      Must(client_->Exec({"HMGET", "hd:{t:t1}:acct:acct_a", "gross", "net", "fee"}));
  ASSERT_EQ(account.elements().size(), 3u);
  EXPECT_EQ(account.elements()[0].AsOptionalString(), "1050");
  EXPECT_EQ(account.elements()[1].AsOptionalString(), "840");
  EXPECT_EQ(account.elements()[2].AsOptionalString(), "210");
}

// A transaction that says neither its net nor its fee gives the gross and leaves them
// estimated, as an unlock does; it is not a purchase with no net.
TEST_F(WebhooksTest, ATransactionWithoutNetOrFeeKeepsTheEstimate) {
  Record("s", Sent(105, 505, 12, 1000));
  WebhookEvent unknown = Transaction(505, 12, 1000);
  unknown.net_cents = -1;
  unknown.fee_cents = -1;
  Record("t", unknown);
  MessageStats s = Stats(105);
  EXPECT_EQ(s.purchases, 1);
  EXPECT_EQ(s.gross_cents, 1000);
  EXPECT_EQ(s.fee_cents, 200);
  EXPECT_EQ(s.net_cents, 800);
  // After an unlock's estimate, the same: the gross is the transaction's.
  Record("s2", Sent(106, 506, 13, 1000));
  Record("u2", Unlock(506, 13, 900));
  Record("t2", [&] {
    WebhookEvent t = Transaction(506, 13, 1000);
    t.net_cents = t.fee_cents = -1;
    return t;
  }());
  s = Stats(106);
  EXPECT_EQ(s.purchases, 1);
  EXPECT_EQ(s.gross_cents, 1000);
  EXPECT_EQ(s.fee_cents, 200);
  EXPECT_EQ(s.net_cents, 800);
}

// A buyer's first purchase is dated as the upstream dates it (a webhook retried for minutes
// does not move it), never later than Herald's clock, and when the upstream does not say, when
// it is applied.
TEST_F(WebhooksTest, APurchaseIsDatedByTheUpstreamNeverInTheFuture) {
  const int64_t now = 1'800'000'000'000;
  Record("s", Sent(107, 507, 14, 1000));
  WebhookEvent early = Unlock(507, 14, 1000);
  early.purchased_at_ms = now - 90'000;
  Record("u", early);
  Record("s2", Sent(107, 508, 15, 1000));
  WebhookEvent ahead = Transaction(508, 15, 1000);
  ahead.purchased_at_ms = now + 60'000;
  Record("t", ahead);
  Record("s3", Sent(107, 509, 16, 1000));
  Record("t3", Transaction(509, 16, 1000));  // undated
  std::vector<Buyer> buyers = Must(reader_->Buyers("t1", {MessageKey{"acct_a", 107}}));
  ASSERT_EQ(buyers.size(), 3u);
  std::map<int64_t, int64_t> first;
  for (const Buyer& b : buyers) first[b.fan_id] = b.first_purchase_ms;
  EXPECT_EQ(first[14], now - 90'000);
  EXPECT_EQ(first[15], now);
  EXPECT_EQ(first[16], now);
}

// An unlock before its messages.sent: the estimate is made when the purchase is credited.
TEST_F(WebhooksTest, AnUnlockBeforeItsMessageIsEstimatedWhenCredited) {
  Record("u", Unlock(590, 11, 1500));
  EXPECT_EQ(Stats(190).purchases, 0);
  Record("s", Sent(190, 590, 11, 1500));
  const MessageStats s = Stats(190);
  EXPECT_EQ(s.purchases, 1);
  EXPECT_EQ(s.gross_cents, 1500);
  EXPECT_EQ(s.fee_cents, 300);
  EXPECT_EQ(s.net_cents, 1200);
}

// A message purchase whose payload names no chat message cannot be credited: it says so, and
// its fan's data still counts. A tip, which is no message's, is simply applied.
TEST_F(WebhooksTest, AMessagePurchaseNamingNoMessageIsUnattributed) {
  Record("s", Sent(104, 505, 12, 1500));
  EXPECT_EQ(Record("t", Transaction(0, 12, 1500, 4200)), RecordOutcome::kUnattributed);
  EXPECT_EQ(Record("u", Unlock(0, 12, 1500)), RecordOutcome::kUnattributed);
  EXPECT_EQ(Record("u", Unlock(0, 12, 1500)), RecordOutcome::kDuplicate);
  EXPECT_EQ(Stats(104).purchases, 0);
  EXPECT_EQ(Fan(12), R"({"lifetime_spend_cents":4200,"subscribed_at_ms":0})");
  WebhookEvent tip = Transaction(0, 12, 500, 4700);
  tip.transaction_kind = "tip";
  EXPECT_EQ(Record("tip", tip), RecordOutcome::kApplied);
}

// A transaction without its fan object names fan 0; the unlock that names the fan makes them
// the buyer when it arrives before the purchase is credited. Once credited, the buyer stays the
// one the credit recorded, for its purchase and its amount alike.
TEST_F(WebhooksTest, ThePurchasesBuyerIsTheFanAnEventNames) {
  EXPECT_EQ(Record("t", Transaction(506, 0, 1500)), RecordOutcome::kUnattributed);
  EXPECT_EQ(Record("u", Unlock(506, 13, 1500)), RecordOutcome::kUnattributed);
  Record("s", Sent(105, 506, 13, 1500));
  redis::Reply buyers = Must(client_->Exec({"ZRANGE", "hd:{t:t1}:mb:acct_a:105", "0", "-1"}));
  ASSERT_EQ(buyers.elements().size(), 1u);
  EXPECT_EQ(buyers.elements()[0].AsOptionalString(), "13");

  // A fan-less transaction of a message whose recipient is known credits that recipient.
  Record("s2", Sent(106, 507, 14, 1500));
  EXPECT_EQ(Record("t2", Transaction(507, 0, 1500)), RecordOutcome::kApplied);
  EXPECT_EQ(Record("u2", Unlock(507, 14, 1500)), RecordOutcome::kApplied);
  EXPECT_EQ(Stats(106).purchases, 1);
  EXPECT_EQ(Stats(106).gross_cents, 1500);
  redis::Reply paid = Must(client_->Exec({"HGETALL", "hd:{t:t1}:mbc:acct_a:106"}));
  ASSERT_EQ(paid.elements().size(), 2u);
  EXPECT_EQ(paid.elements()[0].AsOptionalString(), "14");
  EXPECT_EQ(paid.elements()[1].AsOptionalString(), "1500");
}

// Fan-less transactions of two fans' copies of one mass message are two purchases by two
// buyers, whether each arrives after its messages.sent or before it.
TEST_F(WebhooksTest, FanlessTransactionsOfTwoRecipientsAreTwoPurchases) {
  Record("s1", Sent(108, 520, 21, 1500));
  EXPECT_EQ(Record("t1", Transaction(520, 0, 1500)), RecordOutcome::kApplied);
  EXPECT_EQ(Record("t2", Transaction(521, 0, 1500)), RecordOutcome::kUnattributed);
  Record("s2", Sent(108, 521, 22, 1500));
  const MessageStats s = Stats(108);
  EXPECT_EQ(s.purchases, 2);
  EXPECT_EQ(s.gross_cents, 3000);
  std::map<int64_t, int64_t> spent;
  for (const Buyer& b : Must(reader_->Buyers("t1", {MessageKey{"acct_a", 108}}))) {
    spent[b.fan_id] = b.spent_cents;
  }
  const std::map<int64_t, int64_t> expected = {{21, 1500}, {22, 1500}};
  EXPECT_EQ(spent, expected);
}

// A refund (a transaction of a negative amount) is recorded once and credited to nothing: the
// purchase it undoes stays as the upstream's reconciled figures will say.
TEST_F(WebhooksTest, ARefundIsRecordedButCreditsNothing) {
  Record("s", Sent(109, 530, 23, 1500));
  Record("t", Transaction(530, 23, 1500));
  WebhookEvent refund = Transaction(530, 23, -1500);
  refund.transaction_kind = "refund";
  EXPECT_EQ(Record("r", refund), RecordOutcome::kApplied);
  EXPECT_EQ(Record("r", refund), RecordOutcome::kDuplicate);
  WebhookEvent negative_message = Transaction(530, 23, -1500);
  EXPECT_EQ(Record("r2", negative_message), RecordOutcome::kApplied);
  const MessageStats s = Stats(109);
  EXPECT_EQ(s.purchases, 1);
  EXPECT_EQ(s.gross_cents, 1500);
  EXPECT_EQ(s.net_cents, 1200);
}

TEST_F(WebhooksTest, FreeMessagesAreCountedButNotLinked) {
  Record("s", Sent(103, 504, 10, 0));
  Record("t", Transaction(504, 10, 500));
  EXPECT_EQ(Stats(103).sent, 1);
  EXPECT_EQ(Stats(103).purchases, 0);
}

TEST_F(WebhooksTest, QueueProgressNeverMovesBackwards) {
  Record("q1", Queue(104, 50, 20, false));
  Record("q3", Queue(104, 50, 0, true));
  Record("q2", Queue(104, 50, 10, false));  // late
  const MessageStats s = Stats(104);
  EXPECT_EQ(s.total, 50);
  EXPECT_EQ(s.pending, 0);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.progress_ms, 1'800'000'000'000);
  EXPECT_EQ(Stats(999).total, -1);  // nothing known
  // A purchase changes the message but is not progress.
  Record("s", Sent(105, 901, 7, 100));
  clock_.Advance(absl::Seconds(5));
  Record("t", Transaction(901, 7, 100));
  EXPECT_EQ(Stats(105).progress_ms, 0);
  EXPECT_EQ(Stats(105).updated_ms, 1'800'000'005'000);
}

// Events come in any order: a cancel stays whatever arrives after it, and one that arrives
// after the end is kept too.
TEST_F(WebhooksTest, ACancelIsNeverTakenBack) {
  WebhookEvent cancel = Queue(104, 50, 30, false);
  cancel.queue_canceled = true;
  Record("q2", cancel);
  Record("q1", Queue(104, 50, 30, false));  // the update before it, late
  Record("q0", Queue(104, 50, 40, false));  // an older one still
  EXPECT_TRUE(Stats(104).canceled);
  Record("q3", Queue(104, -1, -1, true));  // the end, without counts
  MessageStats s = Stats(104);
  EXPECT_TRUE(s.canceled);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.pending, 30);

  Record("d1", Queue(105, 20, 0, true));
  WebhookEvent late_cancel = Queue(105, 20, 5, false);
  late_cancel.queue_canceled = true;
  Record("d2", late_cancel);
  s = Stats(105);
  EXPECT_TRUE(s.canceled);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.pending, 0);  // progress stays as the end left it
}

// The end ends the queue even when its counts are older than those already known: progress
// keeps the newer counts, and a cancelled end is kept as cancelled.
TEST_F(WebhooksTest, TheEndWithStaleCountsStillEndsTheQueue) {
  Record("q2", Queue(106, 50, 10, false));
  clock_.Advance(absl::Seconds(5));
  Record("q1", Queue(106, 50, 30, true));
  MessageStats s = Stats(106);
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.canceled);
  EXPECT_EQ(s.pending, 10);
  EXPECT_EQ(s.progress_ms, 1'800'000'005'000);

  Record("c2", Queue(107, 50, 10, false));
  WebhookEvent cancelled_end = Queue(107, 50, 30, true);
  cancelled_end.queue_canceled = true;
  Record("c1", cancelled_end);
  s = Stats(107);
  EXPECT_TRUE(s.done);
  EXPECT_TRUE(s.canceled);
  EXPECT_EQ(s.pending, 10);
}

TEST_F(WebhooksTest, AQueueEventWithoutCountsKeepsTheLastKnownOnes) {
  Record("q1", Queue(104, 50, 20, false));
  clock_.Advance(absl::Seconds(5));
  Record("q2", Queue(104, -1, -1, true));
  const MessageStats s = Stats(104);
  EXPECT_EQ(s.total, 50);
  EXPECT_EQ(s.pending, 20);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.progress_ms, 1'800'000'005'000);
  // Nothing known before: the counts stay unknown.
  Record("q3", Queue(105, -1, -1, true));
  EXPECT_EQ(Stats(105).total, -1);
  EXPECT_TRUE(Stats(105).done);
}

TEST_F(WebhooksTest, FanDataKeepsTheLargestSpendAndLatestSubscription) {
  Record("a", Transaction(0, 11, 500, 12'000));
  Record("b", Transaction(0, 11, 500, 11'500));  // an older total, delivered late
  EXPECT_EQ(Fan(11), R"({"lifetime_spend_cents":12000,"subscribed_at_ms":0})");
  WebhookEvent sub = Subscription("acct_a", 11, 1'790'000'000'000);
  Record("c", sub);
  EXPECT_EQ(Fan(11), R"({"lifetime_spend_cents":12000,"subscribed_at_ms":1790000000000})");
  // One that does not say when it began began when Herald applied it.
  sub.fan_id = 12;
  sub.subscribed_at_ms = -1;
  Record("d", sub);
  EXPECT_EQ(Fan(12), R"({"lifetime_spend_cents":0,"subscribed_at_ms":1800000000000})");
}

TEST_F(WebhooksTest, TenantsAreSeparate) {
  Record("e1", Sent(105, 505, 7, 999), "t1");
  EXPECT_EQ(Record("e1", Sent(105, 505, 7, 999), "t2"), RecordOutcome::kApplied);
  EXPECT_EQ(Stats(105, "t1").sent, 1);
  EXPECT_EQ(Stats(105, "t2").sent, 1);
}

TEST_F(WebhooksTest, ConcurrentCopiesApplyOnce) {
  std::vector<std::future<absl::StatusOr<RecordOutcome>>> copies;
  const WebhookEvent sent = Sent(106, 506, 7, 999);
  for (int i = 0; i < 16; ++i) {
    copies.push_back(io_.Spawn(recorder_->Record("t1", "same-key", sent)));
  }
  int applied = 0;
  for (auto& c : copies) {
    absl::StatusOr<RecordOutcome> r = c.get();
    ASSERT_TRUE(r.ok()) << r.status();
    applied += *r == RecordOutcome::kApplied;
  }
  EXPECT_EQ(applied, 1);
  EXPECT_EQ(Stats(106).sent, 1);
}

TEST_F(WebhooksTest, ConcurrentEventsAreCommittedTogetherAndEachAnsweredForItself) {
  // 300 events of two tenants arrive together: each tenant's are written in a few script calls
  // (group commit), and every event gets its own outcome.
  constexpr int kEvents = 150;
  std::vector<std::future<absl::StatusOr<RecordOutcome>>> results;
  std::promise<void> started;
  asio::post(io_.context(), [&] {
    for (int i = 0; i < kEvents; ++i) {
      for (std::string tenant : {"t1", "t2"}) {
        // Every fifth event repeats the previous key: a duplicate within the same batch.
        const int key = i % 5 == 4 ? i - 1 : i;
        results.push_back(io_.Spawn(
            recorder_->Record(tenant, StrCat("k", key), Sent(120, 10'000 + key, 7, 999))));
      }
    }
    started.set_value();
  });
  started.get_future().get();
  std::map<RecordOutcome, int> outcomes;
  for (auto& r : results) {
    absl::StatusOr<RecordOutcome> outcome = r.get();
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    ++outcomes[*outcome];
  }
  EXPECT_EQ(outcomes[RecordOutcome::kApplied], 2 * kEvents * 4 / 5);
  EXPECT_EQ(outcomes[RecordOutcome::kDuplicate], 2 * kEvents / 5);
  EXPECT_EQ(Stats(120, "t1").sent, kEvents * 4 / 5);
  EXPECT_EQ(Stats(120, "t2").sent, kEvents * 4 / 5);

  const std::string metrics = registry_.Serialize();
  EXPECT_NE(metrics.find(StrCat("herald_ingest_batch_size_sum ", 2 * kEvents)), std::string::npos)
      << metrics;
  // The first event of each tenant goes alone; the rest wait for it and go together.
  const size_t count_at = metrics.find("herald_ingest_batch_size_count ");
  ASSERT_NE(count_at, std::string::npos);
  const int64_t calls =
      ParseInt<int64_t>(metrics.substr(count_at + 31, metrics.find('\n', count_at) - count_at - 31))
          .value_or(0);
  EXPECT_GE(calls, 2);
  EXPECT_LT(calls, 2 * kEvents / 10);
}

TEST_F(WebhooksTest, AnEventThatCannotBeAppliedFailsAloneAndItsRetryAppliesIt) {
  // acct_bad's fan data is a key of the wrong type, so its subscription fails inside the script,
  // in the middle of a batch: the first event goes alone (one call in flight), the other four
  // wait for it and go together.
  ASSERT_EQ(
      Must(client_->Exec({"SET", "hd:{t:t1}:fans:acct_bad", "not a hash"})).AsOptionalString(),
      "OK");
  const WebhookEvent sub = Subscription("acct_bad", 5, 1'790'000'000'000);
  metrics::Registry registry;
  std::unique_ptr<EventRecorder> one_lane =
      MakeRedisEventRecorder(*client_, clock_, {.max_batches_in_flight = 1}, &registry);
  const std::vector<std::pair<std::string, WebhookEvent>> events = {
      {"first", Sent(200, 60'000, 9, 500)}, {"s1", Sent(300, 60'001, 1, 500)},
      {"t1", Transaction(60'001, 1, 500)},  {"sub", sub},
      {"s2", Sent(300, 60'002, 2, 500)},
  };
  const std::vector<absl::StatusOr<RecordOutcome>> outcomes = RecordTogether(*one_lane, events);
  const std::string metrics = registry.Serialize();
  ASSERT_NE(metrics.find("herald_ingest_batch_size_count 2\n"), std::string::npos) << metrics;

  for (size_t i : {0, 1, 2, 4}) {
    EXPECT_EQ(outcomes[i].value_or(RecordOutcome::kDuplicate), RecordOutcome::kApplied) << i;
  }
  EXPECT_TRUE(absl::IsInternal(outcomes[3].status())) << outcomes[3].status();
  EXPECT_NE(outcomes[3].status().message().find("WRONGTYPE"), std::string::npos);
  // Its batch-mates count in full, the event itself not at all, and it is not taken as applied.
  const MessageStats stats = Stats(300);
  EXPECT_EQ(stats.sent, 2);
  EXPECT_EQ(stats.purchases, 1);
  EXPECT_EQ(stats.gross_cents, 500);
  EXPECT_TRUE(Must(client_->Exec({"HGET", "hd:{t:t1}:acct:acct_bad", "subscriptions"})).is_nil());
  EXPECT_FALSE(Must(recorder_->Applied("t1", "sub")));

  // Once the cause is gone, the sender's retry applies it.
  ASSERT_EQ(Must(client_->Exec({"DEL", "hd:{t:t1}:fans:acct_bad"})).integer(), 1);
  EXPECT_EQ(Record("sub", sub), RecordOutcome::kApplied);
  EXPECT_EQ(
      Must(client_->Exec({"HGET", "hd:{t:t1}:acct:acct_bad", "subscriptions"})).AsOptionalString(),
      "1");
}

TEST_F(WebhooksTest, APurchaseCreditedBeforeItsEventFailedCountsOnceWhenTheRetryIsApplied) {
  ASSERT_EQ(Record("s", Sent(500, 80'001, 5, 1000)), RecordOutcome::kApplied);
  // The transaction's fan data cannot be written: the event fails after its purchase was
  // credited and recorded as such.
  ASSERT_EQ(Must(client_->Exec({"SET", "hd:{t:t1}:fans:acct_a", "not a hash"})).AsOptionalString(),
            "OK");
  absl::StatusOr<RecordOutcome> failed =
      io_.Run(recorder_->Record("t1", "t", Transaction(80'001, 5, 1000, 1000)));
  EXPECT_TRUE(absl::IsInternal(failed.status())) << failed.status();
  EXPECT_FALSE(Must(recorder_->Applied("t1", "t")));
  // The credit stands with its record: the retry must not count it again.
  EXPECT_EQ(Stats(500).purchases, 1);
  EXPECT_EQ(Stats(500).gross_cents, 1000);

  ASSERT_EQ(Must(client_->Exec({"DEL", "hd:{t:t1}:fans:acct_a"})).integer(), 1);
  EXPECT_EQ(Record("t", Transaction(80'001, 5, 1000, 1000)), RecordOutcome::kApplied);
  const MessageStats stats = Stats(500);
  EXPECT_EQ(stats.purchases, 1);
  EXPECT_EQ(stats.gross_cents, 1000);
  EXPECT_EQ(stats.net_cents, 800);
  EXPECT_EQ(Fan(5), R"({"lifetime_spend_cents":1000,"subscribed_at_ms":0})");
}

TEST_F(WebhooksTest, ACounterKeyOfAnotherTypeFailsTheEventNotTheBatchsLastWrites) {
  // The account's totals are written once, at the batch's end: a key of another type there
  // fails the event that names it, before anything marks it applied.
  ASSERT_EQ(Must(client_->Exec({"SET", "hd:{t:t1}:acct:acct_a", "not a hash"})).AsOptionalString(),
            "OK");
  absl::StatusOr<RecordOutcome> failed = io_.Run(recorder_->Record("t1", "s", Sent(600, 1, 5, 0)));
  EXPECT_TRUE(absl::IsInternal(failed.status())) << failed.status();
  EXPECT_NE(failed.status().message().find("WRONGTYPE"), std::string::npos) << failed.status();
  EXPECT_FALSE(Must(recorder_->Applied("t1", "s")));
  EXPECT_EQ(Stats(600).sent, 0);

  ASSERT_EQ(Must(client_->Exec({"DEL", "hd:{t:t1}:acct:acct_a"})).integer(), 1);
  EXPECT_EQ(Record("s", Sent(600, 1, 5, 0)), RecordOutcome::kApplied);
  EXPECT_EQ(Stats(600).sent, 1);
}

// A stored figure that is not a number (a corrupt record, a hand edit) is reported, never read as
// 0 cents or fan 0.
TEST_F(WebhooksTest, AFigureThatIsNotANumberIsAnErrorNotZero) {
  EXPECT_EQ(Record("s", Sent(610, 1, 5, 999)), RecordOutcome::kApplied);
  EXPECT_EQ(Record("u", Unlock(1, 5, 999)), RecordOutcome::kApplied);
  ASSERT_EQ(Stats(610).gross_cents, 999);
  Must(client_->Exec({"HSET", "hd:{t:t1}:mm:acct_a:610", "gross", "9.99"}));
  absl::StatusOr<std::vector<MessageStats>> stats =
      io_.Run(reader_->Messages("t1", {MessageKey{"acct_a", 610}}));
  EXPECT_TRUE(absl::IsInternal(stats.status())) << stats.status();
  EXPECT_NE(stats.status().message().find("9.99"), std::string::npos) << stats.status();
  Must(client_->Exec({"HSET", "hd:{t:t1}:acct:acct_a", "net", "lots"}));
  EXPECT_TRUE(absl::IsInternal(io_.Run(reader_->Account("t1", "acct_a")).status()));
  Must(client_->Exec({"HSET", "hd:{t:t1}:mbc:acct_a:610", "fan-five", "999"}));
  EXPECT_TRUE(
      absl::IsInternal(io_.Run(reader_->Buyers("t1", {MessageKey{"acct_a", 610}})).status()));
}

TEST_F(WebhooksTest, PurchasesOfSeveralMassMessagesInOneBatchAddUpExactly) {
  // The script sums a batch's counter increments per key before writing them: two mass
  // messages' sends, unlocks and transactions arriving together (interleaved, some before
  // their messages.sent) must still add up per message, per buyer and on the account.
  std::vector<std::pair<std::string, WebhookEvent>> events;
  for (int64_t fan = 1; fan <= 12; ++fan) {
    const int64_t queue = fan % 2 == 0 ? 300 : 301;
    const int64_t chat = 50'000 + fan;
    if (fan % 3 == 0) events.emplace_back(StrCat("t", fan), Transaction(chat, fan, 100 * fan));
    events.emplace_back(StrCat("s", fan), Sent(queue, chat, fan, 500));
    if (fan % 3 == 0) events.emplace_back(StrCat("u", fan), Unlock(chat, fan, 100 * fan));
    if (fan % 4 == 0) events.emplace_back(StrCat("u", fan), Unlock(chat, fan, 100 * fan));
  }
  for (const absl::StatusOr<RecordOutcome>& r : RecordTogether(*recorder_, events)) {
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // Buyers: fans 3, 6, 9, 12 (a transaction and an unlock each), 4 and 8 (an unlock only).
  // Queue 300 has the even fans (4, 6, 8, 12), queue 301 the odd ones (3, 9).
  const MessageStats even = Stats(300), odd = Stats(301);
  EXPECT_EQ(even.sent, 6);
  EXPECT_EQ(odd.sent, 6);
  EXPECT_EQ(even.purchases, 4);
  EXPECT_EQ(odd.purchases, 2);
  EXPECT_EQ(even.gross_cents, 100 * (4 + 6 + 8 + 12));
  EXPECT_EQ(odd.gross_cents, 100 * (3 + 9));
  // Net and fee at 20%: from transactions (fans 6 and 12, and 3 and 9), estimated from the
  // unlocks alone (fans 4 and 8).
  EXPECT_EQ(even.fee_cents, 80 + 120 + 160 + 240);
  EXPECT_EQ(even.net_cents, 100 * (4 + 6 + 8 + 12) - 600);
  EXPECT_EQ(odd.fee_cents, 60 + 180);
  EXPECT_EQ(odd.net_cents, 300 + 900 - 60 - 180);
  EXPECT_GT(even.updated_ms, 0);

  redis::Reply account = Must(client_->Exec(
      {"HMGET", "hd:{t:t1}:acct:acct_a", "sent", "purchases", "gross", "net", "fee"}));
  ASSERT_EQ(account.elements().size(), 5u);
  EXPECT_EQ(account.elements()[0].AsOptionalString(), "12");
  EXPECT_EQ(account.elements()[1].AsOptionalString(), "6");
  EXPECT_EQ(account.elements()[2].AsOptionalString(), StrCat(100 * (3 + 4 + 6 + 8 + 9 + 12)));
  EXPECT_EQ(account.elements()[3].AsOptionalString(), StrCat(100 * (3 + 4 + 6 + 8 + 9 + 12) - 840));
  EXPECT_EQ(account.elements()[4].AsOptionalString(), "840");
  // Each buyer's spend on the message it bought.
  redis::Reply spend = Must(client_->Exec({"HGET", "hd:{t:t1}:mbc:acct_a:300", "12"}));
  EXPECT_EQ(spend.AsOptionalString(), "1200");
}

TEST_F(WebhooksTest, ReconciliationAddsLostPurchasesOnceAndLateEventsCorrectIt) {
  // Fan 7's purchase arrived; fans 8 and 9 bought too but their events were lost.
  Record("s7", Sent(110, 701, 7, 1000));
  Record("s8", Sent(110, 702, 8, 1000));
  Record("t7", Transaction(701, 7, 1000));
  const MessageKey message{"acct_a", 110};
  EXPECT_EQ(Must(reader_->ReconcileBuyers("t1", message, 1000, 200, {7, 8, 9}, 5)), 2);
  EXPECT_EQ(Must(reader_->ReconcileBuyers("t1", message, 1000, 200, {7, 8, 9}, 6)), 0);
  MessageStats s = Stats(110);
  EXPECT_EQ(s.purchases, 3);
  EXPECT_EQ(s.gross_cents, 3000);
  EXPECT_EQ(s.net_cents, 2400);
  EXPECT_EQ(s.reconciled, 2);
  // Fan 8's transaction turns up after all, at a different amount: counted once, corrected.
  Record("t8", Transaction(702, 8, 1100));
  Record("u8", Unlock(702, 8, 1100));
  s = Stats(110);
  EXPECT_EQ(s.purchases, 3);
  EXPECT_EQ(s.gross_cents, 3100);
  EXPECT_EQ(s.fee_cents, 200 + 200 + 220);
  EXPECT_EQ(s.net_cents, 3100 - 620);
  // Fan 9's purchase arrives before its messages.sent: still once.
  Record("t9", Transaction(703, 9, 1000));
  Record("s9", Sent(110, 703, 9, 1000));
  s = Stats(110);
  EXPECT_EQ(s.purchases, 3);
  EXPECT_EQ(s.gross_cents, 3100);
  EXPECT_EQ(s.net_cents, 2480);
  const std::vector<Buyer> buyers = Must(reader_->Buyers("t1", {message}));
  ASSERT_EQ(buyers.size(), 3u);
}

TEST_F(WebhooksTest, AReconciledPurchaseTakesTheDateItsLateEventGives) {
  const int64_t now = 1'800'000'000'000;
  Record("s", Sent(111, 711, 7, 1000));
  const MessageKey message{"acct_a", 111};
  ASSERT_EQ(Must(reader_->ReconcileBuyers("t1", message, 1000, 200, {7}, now)), 1);
  WebhookEvent late = Unlock(711, 7, 1000);
  late.purchased_at_ms = now - 3'600'000;
  Record("u", late);
  const std::vector<Buyer> buyers = Must(reader_->Buyers("t1", {message}));
  ASSERT_EQ(buyers.size(), 1u);
  EXPECT_EQ(buyers[0].first_purchase_ms, now - 3'600'000);
  EXPECT_EQ(buyers[0].spent_cents, 1000);
}

TEST_F(WebhooksTest, AppliedEventsAreStreamedOnceInOrder) {
  EXPECT_EQ(Must(reader_->LatestEventCursor("t1")), "0-0");
  Record("e1", Sent(120, 801, 7, 999));
  Record("e1", Sent(120, 801, 7, 999));  // a duplicate is not streamed again
  Record("e2", Transaction(801, 7, 999));
  const std::string latest = Must(reader_->LatestEventCursor("t1"));
  Record("e3", Queue(120, 1, 0, true));
  EventPage page = Must(reader_->ReadEvents("t1", "", 10));
  ASSERT_EQ(page.events.size(), 3u);
  EXPECT_EQ(page.oldest, page.events[0].cursor);
  EXPECT_EQ(page.events[0].type, "messages.sent");
  EXPECT_EQ(page.events[0].message_id, 120);
  EXPECT_EQ(page.events[0].price_cents, 999);
  EXPECT_EQ(page.events[1].type, "transactions.new");
  EXPECT_EQ(page.events[1].amount_cents, 999);
  EXPECT_EQ(page.events[1].chat_message_id, 801);
  EXPECT_EQ(page.events[1].cursor, latest);
  // After a cursor: only what came next; pages of a given size.
  page = Must(reader_->ReadEvents("t1", latest, 10));
  ASSERT_EQ(page.events.size(), 1u);
  EXPECT_EQ(page.events[0].type, "chat_queue.finished");
  EXPECT_EQ(Must(reader_->ReadEvents("t1", "", 2)).events.size(), 2u);
  EXPECT_TRUE(Must(reader_->ReadEvents("t2", "", 10)).events.empty());
}

// The stream keeps at least `events_max_len` events (Redis trims whole blocks of it), and a page
// says which event is the oldest kept: the one after the last trimmed, nothing between missing.
TEST_F(WebhooksTest, TheStreamKeepsAtLeastItsLengthAndSaysWhereItStarts) {
  metrics::Registry registry;
  auto recorder = MakeRedisEventRecorder(*client_, clock_, {.events_max_len = 10}, &registry);
  constexpr int64_t kEvents = 300;
  std::vector<std::string> cursors;
  for (int64_t i = 1; i <= kEvents; ++i) {
    ASSERT_EQ(Must(recorder->Record("trim", StrCat("k", i), Sent(i, i, i, 500))),
              RecordOutcome::kApplied);
    cursors.push_back(Must(reader_->LatestEventCursor("trim")));
  }
  const EventPage page = Must(reader_->ReadEvents("trim", "", 1000));
  ASSERT_GE(page.events.size(), 10u);
  ASSERT_LT(page.events.size(), static_cast<size_t>(kEvents));  // trimmed
  const size_t first = kEvents - page.events.size();
  EXPECT_EQ(page.oldest, cursors[first]);
  EXPECT_EQ(page.events[0].cursor, cursors[first]);
  EXPECT_EQ(page.events[0].message_id, static_cast<int64_t>(first) + 1);
  EXPECT_EQ(page.events.back().message_id, kEvents);
  // Read after a trimmed cursor: the oldest kept is newer than it.
  EXPECT_EQ(Must(reader_->ReadEvents("trim", cursors[0], 1)).oldest, cursors[first]);
}

TEST_F(WebhooksTest, RedisDownIsAnErrorAndTheRetryApplies) {
  std::promise<void> down, up;
  bool went_down = false, came_up = false;
  // Set once the stopped server has exited: the client may reconnect to it while it shuts down,
  // and only a connection to the restarted one counts.
  std::atomic<bool> restarting = false;
  client_->OnConnectivityChange([&](absl::Status status) {
    if (!status.ok() && !went_down) {
      went_down = true;
      down.set_value();
    } else if (status.ok() && restarting && !came_up) {
      came_up = true;
      up.set_value();
    }
  });
  ASSERT_TRUE(server_->Stop().ok());
  down.get_future().wait();
  absl::StatusOr<RecordOutcome> r = io_.Run(recorder_->Record("t1", "k", Sent(107, 507, 7, 999)));
  EXPECT_FALSE(r.ok());
  restarting = true;
  ASSERT_TRUE(server_->Restart().ok());
  up.get_future().wait();  // the client reconnects on its own
  EXPECT_EQ(Record("k", Sent(107, 507, 7, 999)), RecordOutcome::kApplied);
  EXPECT_EQ(Stats(107).sent, 1);
  client_->OnConnectivityChange([](absl::Status) {});  // the promises above go out of scope
}

}  // namespace
}  // namespace herald::webhooks
