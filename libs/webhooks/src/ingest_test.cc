// The receiver's decisions (status per request, what reaches the recorder), with an in-memory
// directory and recorder. The Redis side is tested in tests/integration/webhooks_test.cc.
#include <map>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <herald/common/clock.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/store/crypto.h>
#include <herald/upstream/webhook_event.h>
#include <herald/webhooks/ingest.h>

namespace herald::webhooks {
namespace {

namespace asio = boost::asio;

class FakeDirectory final : public EndpointDirectory {
 public:
  Op<Endpoint> Find(std::string endpoint) override {
    ++lookups;
    if (unavailable) co_return absl::UnavailableError("redis down");
    if (endpoint != "t1.team-a") co_return absl::NotFoundError("no such endpoint");
    co_return Endpoint{"t1", "team-a", "s3cret", previous};
  }
  int lookups = 0;
  bool unavailable = false;
  std::string previous;  // the secret before a rotation, if any
};

class FakeRecorder final : public EventRecorder {
 public:
  Op<RecordOutcome> Record(std::string tenant, std::string key,
                           const upstream::WebhookEvent& event) override {
    if (clock != nullptr) clock->Advance(takes);  // the time the call takes
    if (unavailable) co_return absl::UnavailableError("redis down");
    if (failing)
      co_return absl::InternalError("apply_event.lua: WRONGTYPE Operation against a key");
    if (!keys.insert(key).second) co_return RecordOutcome::kDuplicate;
    recorded.push_back({tenant, event.name});
    if (event.type == upstream::WebhookEventType::kPpvUnlocked) {
      co_return RecordOutcome::kUnattributed;  // as if its messages.sent had not arrived
    }
    co_return RecordOutcome::kApplied;
  }
  Op<bool> Applied(std::string, std::string key) override { co_return keys.contains(key); }
  std::set<std::string> keys;
  std::vector<std::pair<std::string, std::string>> recorded;
  bool unavailable = false;
  bool failing = false;  // the event cannot be applied (Redis answers with an error)
  ManualClock* clock = nullptr;
  absl::Duration takes;
};

constexpr std::string_view kSent =
    R"({"event":"messages.sent","account_id":"acct_a","payload":{"id":5,"queueId":4,"price":3}})";

class IngestTest : public ::testing::Test {
 protected:
  IngestResponse Post(std::string_view body, std::string signature, std::string key = "evt_1",
                      std::string endpoint = "t1.team-a",
                      std::string content_type = "application/json") {
    IngestRequest request{endpoint, content_type, signature, key, body};
    auto future = asio::co_spawn(io_, ingest_.Handle(request), asio::use_future);
    io_.run();
    io_.restart();
    return future.get();
  }
  static std::string Sign(std::string_view body) { return store::HmacSha256Hex("s3cret", body); }

  asio::io_context io_;
  metrics::Registry registry_;
  FakeDirectory directory_;
  FakeRecorder recorder_;
  Ingest ingest_{directory_, recorder_, &registry_};
};

TEST_F(IngestTest, SignedEventIsRecordedOnceAndDuplicatesChangeNothing) {
  EXPECT_EQ(Post(kSent, Sign(kSent)).status, 200);
  IngestResponse again = Post(kSent, Sign(kSent));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.message, "duplicate");
  ASSERT_EQ(recorder_.recorded.size(), 1u);
  EXPECT_EQ(recorder_.recorded[0].first, "t1");
  EXPECT_NE(registry_.Serialize().find(
                R"(herald_webhook_events_total{result="duplicate",type="messages.sent"} 1)"),
            std::string::npos);
}

TEST_F(IngestTest, BadSignaturesAreRefusedBeforeParsing) {
  std::string altered(kSent);
  altered[altered.size() - 3] = '9';  // price 3 -> 9: a forged body under the old signature
  EXPECT_EQ(Post(altered, Sign(kSent)).status, 401);
  EXPECT_EQ(Post(kSent, "").status, 401);
  EXPECT_EQ(Post(kSent, store::HmacSha256Hex("other secret", kSent)).status, 401);
  std::string upper = Sign(kSent);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(Post(kSent, upper).status, 401);
  EXPECT_EQ(Post("not json", "00").status, 401);  // not parsed: 401, not 400
  EXPECT_TRUE(recorder_.recorded.empty());
}

TEST_F(IngestTest, DuringARotationBothSecretsAreAcceptedAndNoOther) {
  directory_.previous = "old-s3cret";
  EXPECT_EQ(Post(kSent, store::HmacSha256Hex("old-s3cret", kSent), "evt_old").status, 200);
  EXPECT_EQ(Post(kSent, Sign(kSent), "evt_new").status, 200);
  EXPECT_EQ(Post(kSent, store::HmacSha256Hex("older", kSent), "evt_x").status, 401);
  EXPECT_EQ(recorder_.recorded.size(), 2u);
}

// A request without a well-formed signature is refused before its endpoint is looked up: it
// costs no Redis read, and its answer and time are the same whether the endpoint exists or not.
TEST_F(IngestTest, AnUnsignedRequestIsRefusedWithoutLookingUpItsEndpoint) {
  for (const char* endpoint : {"t1.team-a", "t1.nope"}) {
    EXPECT_EQ(Post(kSent, "", "evt_1", endpoint).status, 401) << endpoint;
    EXPECT_EQ(Post(kSent, "NOT-HEX", "evt_1", endpoint).status, 401) << endpoint;
  }
  EXPECT_EQ(directory_.lookups, 0);
  EXPECT_TRUE(recorder_.recorded.empty());
}

TEST_F(IngestTest, MalformedWrongTypeUnknownEndpoint) {
  EXPECT_EQ(Post("{not json", Sign("{not json")).status, 400);
  const std::string no_payload = R"({"event":"messages.sent","account_id":"acct_a"})";
  EXPECT_EQ(Post(no_payload, Sign(no_payload)).status, 400);
  EXPECT_EQ(Post(kSent, Sign(kSent), "evt_1", "t1.nope").status, 401);
  EXPECT_EQ(Post(kSent, Sign(kSent), "evt_1", "t1.team-a", "text/plain").status, 415);
  // The signature is checked first: a forged body is 401 whatever its declared type.
  EXPECT_EQ(Post(kSent, "ab12", "evt_1", "t1.team-a", "text/plain").status, 401);
  EXPECT_TRUE(recorder_.recorded.empty());
  // A malformed event is counted under the type it names, when it names a known one.
  const std::string text = registry_.Serialize();
  EXPECT_NE(text.find(R"(herald_webhook_events_total{result="malformed",type="messages.sent"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(herald_webhook_events_total{result="malformed",type="other"} 1)"),
            std::string::npos);
}

// The upstream declares its bodies as JSON; a signed body that declares no type is read as JSON.
TEST_F(IngestTest, ASignedBodyWithoutAContentTypeIsReadAsJson) {
  EXPECT_EQ(Post(kSent, Sign(kSent), "evt_1", "t1.team-a", "").status, 200);
  EXPECT_EQ(recorder_.recorded.size(), 1u);
}

TEST_F(IngestTest, UnknownTypesAndKeylessEventsAreAcknowledgedNotRecorded) {
  const std::string typing = R"({"event":"users.typing","account_id":"a","payload":{}})";
  EXPECT_EQ(Post(typing, Sign(typing), "").status, 200);
  const std::string other = R"({"event":"posts.liked","account_id":"a","payload":{}})";
  EXPECT_EQ(Post(other, Sign(other), "evt_2").status, 200);
  EXPECT_TRUE(recorder_.recorded.empty());
  const std::string text = registry_.Serialize();
  EXPECT_NE(text.find(R"(result="no_key",type="other"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(result="unknown",type="other"} 1)"), std::string::npos);
}

TEST_F(IngestTest, AnAppliedEventWithoutAKeyIsRecordedOnceKeyedByItsBody) {
  EXPECT_EQ(Post(kSent, Sign(kSent), "").status, 200);
  ASSERT_EQ(recorder_.recorded.size(), 1u);
  EXPECT_EQ(recorder_.keys.count("body:" + store::Sha256Hex(kSent)), 1u);
  // The sender's retry repeats the body byte for byte, so it is a duplicate.
  EXPECT_EQ(Post(kSent, Sign(kSent), "").status, 200);
  EXPECT_EQ(recorder_.recorded.size(), 1u);
  const std::string text = registry_.Serialize();
  EXPECT_NE(text.find(R"(result="duplicate",type="messages.sent"} 1)"), std::string::npos);
}

// A key longer than the upstream's is not refused (the sender would retry it for ever): it is
// kept as its digest, and dedupes as itself.
TEST_F(IngestTest, ALongIdempotencyKeyIsKeptAsItsDigest) {
  const std::string long_key(5000, 'k');
  EXPECT_EQ(Post(kSent, Sign(kSent), long_key).status, 200);
  ASSERT_EQ(recorder_.recorded.size(), 1u);
  EXPECT_EQ(recorder_.keys.count("sha256:" + store::Sha256Hex(long_key)), 1u);
  EXPECT_EQ(Post(kSent, Sign(kSent), long_key).status, 200);
  EXPECT_EQ(recorder_.recorded.size(), 1u);
  const std::string typing = R"({"event":"users.typing","account_id":"a","payload":{}})";
  EXPECT_EQ(Post(typing, Sign(typing), long_key).status, 200);
}

TEST_F(IngestTest, PurchasesOfNoKnownMassMessageAreAcknowledgedAndCountedAsUnattributed) {
  const std::string unlock =
      R"({"event":"messages.ppv.unlocked","account_id":"acct_a","payload":{"id":"n1",)"
      R"("user_id":"9","replacePairs":{"{AMOUNT}":"$5.00",)"
      R"("{MESSAGE_LINK}":"<a href=\"x/?firstId=42\">message</a>"}}})";
  const IngestResponse response = Post(unlock, Sign(unlock), "evt_u");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.message, "applied; not attributed to a mass message yet");
  EXPECT_NE(
      registry_.Serialize().find(
          R"(herald_webhook_events_total{result="unattributed",type="messages.ppv.unlocked"} 1)"),
      std::string::npos);
}

TEST_F(IngestTest, RedisUnavailableIs503SoTheSenderRetries) {
  recorder_.unavailable = true;
  EXPECT_EQ(Post(kSent, Sign(kSent)).status, 503);
  recorder_.unavailable = false;
  EXPECT_EQ(Post(kSent, Sign(kSent)).message, "applied");  // the retry is applied
  directory_.unavailable = true;
  EXPECT_EQ(Post(kSent, Sign(kSent), "evt_3").status, 503);
}

TEST_F(IngestTest, AnEventRedisCannotApplyIs500AndCountedAsFailed) {
  recorder_.failing = true;
  const IngestResponse refused = Post(kSent, Sign(kSent));
  EXPECT_EQ(refused.status, 500);
  EXPECT_EQ(refused.message, "the event could not be applied; retry");
  EXPECT_NE(registry_.Serialize().find(
                R"(herald_webhook_events_total{result="failed",type="messages.sent"} 1)"),
            std::string::npos);
  recorder_.failing = false;
  EXPECT_EQ(Post(kSent, Sign(kSent)).message, "applied");  // the retry is applied
}

TEST(IngestSheddingTest, SlowRecordingIsShedWithRetryAfterUntilItIsFastAgain) {
  asio::io_context io;
  metrics::Registry registry;
  FakeDirectory directory;
  FakeRecorder recorder;
  ManualClock clock;
  recorder.clock = &clock;
  Ingest ingest(directory, recorder, &registry,
                {.shed_latency = absl::Milliseconds(500), .clock = &clock});
  int n = 0;
  const std::string signature = store::HmacSha256Hex("s3cret", kSent);
  const auto post = [&] {
    const std::string key = StrCat("evt_", ++n);
    IngestRequest request{"t1.team-a", "application/json", signature, key, kSent};
    auto future = asio::co_spawn(io, ingest.Handle(request), asio::use_future);
    io.run();
    io.restart();
    return future.get();
  };

  recorder.takes = absl::Seconds(2);  // Redis is slow
  EXPECT_EQ(post().status, 200);
  IngestResponse shed = post();  // the average is now 2 s: shed, without a Redis call
  EXPECT_EQ(shed.status, 503);
  EXPECT_EQ(shed.retry_after_seconds, 1);
  EXPECT_EQ(shed.message, "overloaded; retry");
  EXPECT_EQ(recorder.recorded.size(), 1u);

  // Redis is fast again: one probe per 100 ms goes through and brings the average down.
  recorder.takes = absl::Milliseconds(1);
  int probes = 0;
  while (post().status == 503) {
    clock.Advance(absl::Milliseconds(100));
    ASSERT_EQ(post().status, 200);  // the probe
    ++probes;
    ASSERT_LT(probes, 20);
  }
  EXPECT_EQ(probes, 11);  // 2 s × (7/8)^11 < 500 ms
  EXPECT_EQ(post().status, 200);

  // Slow again, then quiet: the first call after a second without one starts the average anew,
  // and the next is not shed for the slow calls of before.
  recorder.takes = absl::Seconds(2);
  EXPECT_EQ(post().status, 200);
  EXPECT_EQ(post().status, 503);
  clock.Advance(absl::Seconds(5));
  recorder.takes = absl::Milliseconds(1);
  EXPECT_EQ(post().status, 200);  // a probe
  EXPECT_EQ(post().status, 200);  // not shed: the average is the probe's
  EXPECT_NE(registry.Serialize().find(
                R"(herald_webhook_events_total{result="shed",type="messages.sent"} )"),
            std::string::npos);
}

TEST_F(IngestTest, RedisUnavailableAnswersRetryAfter) {
  recorder_.unavailable = true;
  const IngestResponse r = Post(kSent, Sign(kSent));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.retry_after_seconds, 1);
  EXPECT_EQ(Post(kSent, Sign(kSent), "evt_1").retry_after_seconds, 1);
  recorder_.unavailable = false;
  EXPECT_EQ(Post(kSent, Sign(kSent)).retry_after_seconds, 0);
}

// A cache of 30 s in front of a FakeDirectory (`raw` counts its lookups), on a manual clock.
class CachedDirectoryTest : public ::testing::Test {
 protected:
  absl::StatusOr<Endpoint> find(std::string id) {
    auto f = asio::co_spawn(io, cached->Find(std::move(id)), asio::use_future);
    io.run();
    io.restart();
    return f.get();
  }

  std::unique_ptr<FakeDirectory> owned = std::make_unique<FakeDirectory>();
  FakeDirectory* raw = owned.get();
  ManualClock clock;
  std::unique_ptr<EndpointDirectory> cached =
      MakeCachedDirectory(std::move(owned), clock, absl::Seconds(30));
  asio::io_context io;
};

TEST_F(CachedDirectoryTest, ASignatureMismatchRereadsAnEntryAtMostEvery100Ms) {
  ASSERT_TRUE(find("t1.team-a").ok());
  cached->Invalidate("t1.team-a");  // just read: kept
  EXPECT_TRUE(find("t1.team-a").ok());
  EXPECT_EQ(raw->lookups, 1);
  clock.Advance(absl::Milliseconds(150));
  cached->Invalidate("t1.team-a");  // over 100 ms old: read again
  EXPECT_TRUE(find("t1.team-a").ok());
  EXPECT_EQ(raw->lookups, 2);
}

TEST_F(CachedDirectoryTest, CachesHitsAndMissesUntilTheyExpire) {
  EXPECT_TRUE(find("t1.team-a").ok());
  EXPECT_TRUE(find("t1.team-a").ok());
  EXPECT_EQ(raw->lookups, 1);
  EXPECT_TRUE(absl::IsNotFound(find("x.y").status()));
  EXPECT_TRUE(absl::IsNotFound(find("x.y").status()));
  EXPECT_EQ(raw->lookups, 2);
  clock.Advance(absl::Seconds(31));
  EXPECT_TRUE(find("t1.team-a").ok());
  EXPECT_EQ(raw->lookups, 3);
  raw->unavailable = true;  // errors are not cached
  clock.Advance(absl::Seconds(31));
  EXPECT_FALSE(find("t1.team-a").ok());
  raw->unavailable = false;
  EXPECT_TRUE(find("t1.team-a").ok());
}

}  // namespace
}  // namespace herald::webhooks
