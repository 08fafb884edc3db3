#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/queue/queue.h>
#include <herald/queue/script_codec.h>
#include <herald/queue/worker.h>

namespace herald::queue::script {
namespace {

using redis::Reply;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Reply Ints(std::vector<int64_t> values) {
  std::vector<Reply> out;
  for (int64_t v : values) out.push_back(Reply::Integer(v));
  return Reply::Array(std::move(out));
}

// A record as the scripts store it (record.h): flags, kind, account, counters, payload.
std::string Record(std::string_view kind, std::string_view account, std::string_view payload,
                   bool unknown = false) {
  std::string r(unknown ? "1" : "0");
  r.push_back(static_cast<char>(kind.size()));
  r.append(kind);
  r.push_back(static_cast<char>(account.size()));
  r.append(account);
  r.append("1:5:1700000000000:0:0:");
  r.append(payload);
  return r;
}

void ExpectInternal(const absl::Status& s, std::string_view script, std::string_view received) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(script));
  EXPECT_THAT(std::string(s.message()), HasSubstr(received));
}

TEST(ScriptCodec, EnqueueArgumentsAndResults) {
  JobSpec a{.id = "j1",
            .kind = "send",
            .tenant = "t",
            .team = "tm",
            .account = "acct",
            .payload = std::string("p\0q", 3),
            .max_attempts = 3,
            .delay = absl::Seconds(2)};
  JobSpec b{.id = "j2", .kind = "noop", .team = "tm", .account = "acct"};
  EXPECT_THAT(EncodeEnqueue("123", absl::Minutes(1), {&a, &b}),
              ElementsAre("123", "60000", "j1", "send", "acct", "tm", "t", std::string("p\0q", 3),
                          "3", "2000", "j2", "noop", "acct", "tm", "", "", "5", "0"));

  absl::StatusOr<std::vector<EnqueueResult>> r = DecodeEnqueue(Ints({1, 0, -1}), 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(EnqueueResult::kEnqueued, EnqueueResult::kDuplicate,
                              EnqueueResult::kWrongTeam));
}

TEST(ScriptCodec, UnknownCodesAreErrorsNamingTheScriptAndTheReply) {
  ExpectInternal(DecodeEnqueue(Ints({1, 7}), 2).status(), "enqueue.lua", "7");
  ExpectInternal(DecodeNack(Ints({4}), 1).status(), "nack.lua", "4");
  ExpectInternal(DecodeNack(Ints({0}), 1).status(), "nack.lua", "0");
  ExpectInternal(DecodeHeartbeat(Ints({-5}), 1).status(), "heartbeat.lua", "-5");
  ExpectInternal(DecodeConfigure(Reply::Array({Reply::Integer(0), Reply::String("")})).status(),
                 "configure.lua", "0");
  const AckRequest ack{.job = {.id = "j", .token = "p:j"}};
  const AckCall call = EncodeAck("", absl::ZeroDuration(), {&ack});
  ExpectInternal(DecodeAck(Ints({2, -2}), call, 1).status(), "ack.lua", "2");
  ExpectInternal(DecodeAck(Ints({1, 5}), call, 1).status(), "ack.lua", "5");
  // A fenced ack never tries its next job: a result for one is a protocol error.
  ExpectInternal(DecodeAck(Ints({-1, 1}), call, 1).status(), "ack.lua", "fenced");
}

TEST(ScriptCodec, TakeDecodesEachCodeAndRefusesOthers) {
  EXPECT_THAT(EncodeTake("", "t1/main", ""), ElementsAre("", "take", "t1/main", ""));
  EXPECT_EQ(DecodeTake(Ints({1, 0}))->code, TakeCode::kTaken);
  absl::StatusOr<TakeResult> wait = DecodeTake(Ints({0, 1500}));
  ASSERT_TRUE(wait.ok()) << wait.status();
  EXPECT_EQ(wait->code, TakeCode::kWait);
  EXPECT_EQ(wait->wait, absl::Microseconds(1500));
  EXPECT_EQ(DecodeTake(Ints({-2, 0}))->code, TakeCode::kPaused);
  EXPECT_EQ(DecodeTake(Ints({-3, 0}))->code, TakeCode::kUnknown);
  ExpectInternal(DecodeTake(Ints({2, 0})).status(), "configure.lua", "2");
  ExpectInternal(DecodeTake(Ints({0, 0})).status(), "configure.lua", "0");  // a wait of nothing
  ExpectInternal(DecodeTake(Ints({1})).status(), "configure.lua", "{code, wait_us}");
}

TEST(ScriptCodec, MistypedRepliesAreErrorsNeverZero) {
  // A string where an integer belongs, even one holding digits.
  ExpectInternal(DecodeNack(Reply::Array({Reply::String("1")}), 1).status(), "nack.lua", "\"1\"");
  ExpectInternal(DecodeReap(Reply::String("3")).status(), "reap.lua", "\"3\"");
  ExpectInternal(DecodeReap(Reply::Nil()).status(), "reap.lua", "nil");
  ExpectInternal(DecodeReap(Reply::Integer(-1)).status(), "reap.lua", "-1");
  // Not an array, or an array of another length.
  ExpectInternal(DecodeEnqueue(Reply::Integer(1), 1).status(), "enqueue.lua", "1");
  ExpectInternal(DecodeEnqueue(Ints({1}), 2).status(), "enqueue.lua", "array of 2");
  ExpectInternal(DecodeHeartbeat(Ints({1, 2}), 1).status(), "heartbeat.lua", "[1, 2]");
  // A script's own error reply keeps Redis' message.
  ExpectInternal(DecodeStats(Reply::Error("ERR boom"), 0).status(), "stats.lua", "ERR boom");
}

TEST(ScriptCodec, LeaseDecodesGroupsAndChecksEveryElement) {
  const Reply reply =
      Reply::Array({Reply::Integer(0), Reply::Integer(2), Reply::Integer(1),
                    Reply::Integer(1'700'000'030'000), Reply::String("acct"), Reply::String("tm"),
                    Reply::String("t"), Reply::String("7:acct:send:"), Reply::Integer(2),
                    Reply::String("j1"), Reply::String(Record("send", "acct", "x", true)),
                    Reply::String("j2"), Reply::String(Record("send", "acct", "y"))});
  absl::StatusOr<LeaseBatch> batch = DecodeLease(reply, 3);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->next_due, absl::ZeroDuration());
  EXPECT_EQ(batch->throttled_by_account, 2);
  EXPECT_EQ(batch->throttled_by_team, 1);
  ASSERT_EQ(batch->jobs.size(), 2u);
  const LeasedJob& j = batch->jobs[0];
  EXPECT_EQ(j.shard, 3);
  EXPECT_EQ(j.id, "j1");
  EXPECT_EQ(j.token, "7:acct:send:j1");
  EXPECT_EQ(j.kind, "send");
  EXPECT_EQ(j.team, "tm");
  EXPECT_EQ(j.tenant, "t");
  EXPECT_EQ(j.payload, "x");
  EXPECT_EQ(j.attempt, 2);
  EXPECT_EQ(j.max_attempts, 5);
  EXPECT_TRUE(j.previous_outcome_unknown);
  EXPECT_FALSE(batch->jobs[1].previous_outcome_unknown);
  EXPECT_EQ(j.ready_at, absl::FromUnixMillis(1'700'000'000'000));
  EXPECT_EQ(j.lease_expires_at, absl::FromUnixMillis(1'700'000'030'000));

  absl::StatusOr<LeaseBatch> idle = DecodeLease(Ints({-1, 0, 0, 5}), 0);
  ASSERT_TRUE(idle.ok()) << idle.status();
  EXPECT_FALSE(idle->next_due.has_value());
  EXPECT_TRUE(idle->jobs.empty());

  ExpectInternal(DecodeLease(Ints({0, 0, 0}), 0).status(), "lease.lua", "[0, 0, 0]");
  ExpectInternal(DecodeLease(Ints({-2, 0, 0, 5}), 0).status(), "lease.lua", "-2");
  // A group cut short, a count beyond the reply, an undecodable record, another account's record.
  Reply cut = Ints({0, 0, 0, 5});
  std::vector<Reply> e = cut.elements();
  e.push_back(Reply::String("acct"));
  ExpectInternal(DecodeLease(Reply::Array(e), 0).status(), "lease.lua", "whole lease group");
  for (const Reply& bad :
       {Reply::Array({Reply::Integer(0), Reply::Integer(0), Reply::Integer(0), Reply::Integer(5),
                      Reply::String("acct"), Reply::String("tm"), Reply::String("t"),
                      Reply::String("p:"), Reply::Integer(3), Reply::String("j1"),
                      Reply::String(Record("send", "acct", ""))}),
        Reply::Array({Reply::Integer(0), Reply::Integer(0), Reply::Integer(0), Reply::Integer(5),
                      Reply::String("acct"), Reply::String("tm"), Reply::String("t"),
                      Reply::String("p:"), Reply::Integer(1), Reply::String("j1"),
                      Reply::String("garbage")}),
        Reply::Array({Reply::Integer(0), Reply::Integer(0), Reply::Integer(0), Reply::Integer(5),
                      Reply::String("acct"), Reply::String("tm"), Reply::String("t"),
                      Reply::String("p:"), Reply::Integer(1), Reply::String("j1"),
                      Reply::String(Record("send", "other", ""))}),
        Reply::Array({Reply::Integer(0), Reply::Integer(0), Reply::Integer(0), Reply::Integer(5),
                      Reply::Integer(9), Reply::String("tm"), Reply::String("t"),
                      Reply::String("p:"), Reply::Integer(0)})}) {
    EXPECT_EQ(DecodeLease(bad, 0).status().code(), absl::StatusCode::kInternal)
        << bad.DebugString();
  }
}

TEST(ScriptCodec, AckGroupsTokensByPrefixAndFencesMalformedTokensWithoutACall) {
  const JobSpec next{.id = "n1", .kind = "send", .team = "tm", .account = "acct"};
  const AckRequest a{.job = {.id = "j1", .token = "g1:j1"}, .next = next};
  const AckRequest bad{.job = {.id = "j2", .token = "j2"}};  // no prefix: cannot be a lease
  const AckRequest b{.job = {.id = "j3", .token = "g2:j3"}};
  const AckRequest c{.job = {.id = "j4", .token = "g1:j4"}};
  const AckCall call = EncodeAck("9", absl::Seconds(1), {&a, &bad, &b, &c});
  EXPECT_THAT(call.order, ElementsAre(0, 3, 2));
  EXPECT_THAT(call.args, ElementsAre("9", "1000", "2", "g1:", "2", "j1", "j4", "g2:", "1", "j3",
                                     "1", "n1", "send", "acct", "tm", "", "", "5", "0"));

  absl::StatusOr<std::vector<AckResult>> r = DecodeAck(Ints({1, 0, -1, -2, 1, -2}), call, 4);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].ack, FinishResult::kDone);
  EXPECT_EQ((*r)[0].next, EnqueueResult::kDuplicate);
  EXPECT_EQ((*r)[1].ack, FinishResult::kFenced);  // never sent
  EXPECT_FALSE((*r)[1].next.has_value());
  EXPECT_EQ((*r)[2].ack, FinishResult::kDone);
  EXPECT_EQ((*r)[3].ack, FinishResult::kFenced);
  EXPECT_FALSE((*r)[3].next.has_value());

  const AckCall none = EncodeAck("9", absl::Seconds(1), {&bad});
  EXPECT_TRUE(none.order.empty());
  EXPECT_TRUE(none.args.empty());
  absl::StatusOr<std::vector<AckResult>> fenced = DecodeAck(Reply::Nil(), none, 1);
  ASSERT_TRUE(fenced.ok()) << fenced.status();
  EXPECT_EQ((*fenced)[0].ack, FinishResult::kFenced);
}

TEST(ScriptCodec, NackModesAndResults) {
  const NackRequest retry{.job = {.id = "j1", .token = "p:j1"},
                          .mode = NackRequest::Mode::kRetry,
                          .delay = absl::Milliseconds(1500),
                          .reason = "503",
                          .outcome_unknown = true};
  const NackRequest dead{.job = {.id = "j2", .token = "p:j2"},
                         .mode = NackRequest::Mode::kDeadLetter,
                         .reason = "bad"};
  const NackRequest limited{.job = {.id = "j3", .token = "p:j3"},
                            .mode = NackRequest::Mode::kRateLimited,
                            .delay = absl::Seconds(30)};
  const NackRequest release{.job = {.id = "j4", .token = "p:j4"},
                            .mode = NackRequest::Mode::kRelease};
  const NackRequest defer = Queue::DeferRequest({.id = "j5", .token = "p:j5"}, "ASK 1",
                                                absl::Seconds(3), /*outcome_unknown=*/true);
  EXPECT_THAT(EncodeNack("", {&retry, &dead, &limited, &release, &defer}),
              ElementsAre("", "j1", "p:j1", "retry", "1500", "503", "1", "j2", "p:j2", "dead", "0",
                          "bad", "0", "j3", "p:j3", "limited", "30000", "", "0", "j4", "p:j4",
                          "release", "0", "", "0", "j5", "p:j5", "defer", "3000", "ASK 1", "1"));
  absl::StatusOr<std::vector<NackResult>> r = DecodeNack(Ints({1, 2, 3, -1, 1}), 5);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(NackResult::kRetryScheduled, NackResult::kDead, NackResult::kReturned,
                              NackResult::kFenced, NackResult::kRetryScheduled));
}

// Herald's store unavailable defers the job without spending an attempt; any other error of the
// store is the step's failure.
TEST(JobResultTest, StoreFailedDefersOnlyWhenTheStoreIsUnavailable) {
  for (const absl::Status& s : {absl::UnavailableError("ASK 2810 10.0.0.3:6379"),
                                absl::DeadlineExceededError("no reply from redis")}) {
    const JobResult r = JobResult::StoreFailed(s, /*outcome_unknown=*/true);
    EXPECT_EQ(r.status, JobResult::Status::kDeferred) << s;
    EXPECT_THAT(r.reason, HasSubstr(std::string(s.message())));
    EXPECT_TRUE(r.outcome_unknown);
    EXPECT_GE(r.retry_after, absl::Milliseconds(2500));
    EXPECT_LE(r.retry_after, absl::Seconds(5));
  }
  for (const absl::Status& s :
       {absl::AbortedError("changed concurrently"), absl::InternalError("unexpected reply")}) {
    const JobResult r = JobResult::StoreFailed(s);
    EXPECT_EQ(r.status, JobResult::Status::kRetry) << s;
    EXPECT_EQ(r.reason, std::string(s.message()));
  }
}

TEST(ScriptCodec, HeartbeatReapAndLease) {
  const JobRef a{.id = "j1", .token = "p:j1"};
  EXPECT_THAT(EncodeHeartbeat("1", absl::Seconds(5), {&a}), ElementsAre("1", "5000", "j1", "p:j1"));
  absl::StatusOr<std::vector<std::optional<absl::Time>>> hb = DecodeHeartbeat(Ints({42, -1}), 2);
  ASSERT_TRUE(hb.ok()) << hb.status();
  EXPECT_EQ((*hb)[0], absl::FromUnixMillis(42));
  EXPECT_FALSE((*hb)[1].has_value());

  EXPECT_THAT(EncodeReap("1", 10), ElementsAre("1", "10"));
  EXPECT_EQ(DecodeReap(Reply::Integer(4)).value_or(-1), 4);

  EXPECT_THAT(EncodeLease("1", {.max_jobs = 32,
                                .lease = absl::Seconds(30),
                                .promote_limit = 7,
                                .reap_limit = 8,
                                .jobs_per_visit = 16}),
              ElementsAre("1", "32", "30000", "7", "8", "16"));
}

TEST(ScriptCodec, ConfigureOperationsAndTheWrongTeamCode) {
  EXPECT_THAT(EncodeConfigureAccount(
                  "1", "acct",
                  {.tenant = "t", .team = "tm", .per_minute = 60, .burst = 2, .max_in_flight = 3}),
              ElementsAre("1", "account", "acct", "tm", "t", "60", "2", "3", "0"));
  EXPECT_THAT(EncodeConfigureAccount("1", "acct", {.tenant = "t", .team = "tm", .move = true}),
              ElementsAre("1", "account", "acct", "tm", "t", "0", "1", "0", "1"));
  EXPECT_THAT(EncodeConfigureTeam("1", "tm", {.per_minute = 100, .burst = 5}),
              ElementsAre("1", "team", "tm", "100", "5"));
  EXPECT_THAT(EncodePause("1", PauseTarget::kAccount, true, "a"),
              ElementsAre("1", "pause_account", "a"));
  EXPECT_THAT(EncodePause("1", PauseTarget::kTeam, false, "tm"),
              ElementsAre("1", "resume_team", "tm"));

  absl::StatusOr<ConfigureResult> done =
      DecodeConfigure(Reply::Array({Reply::Integer(1), Reply::String("")}));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->code, ConfigureCode::kDone);
  absl::StatusOr<ConfigureResult> wrong =
      DecodeConfigure(Reply::Array({Reply::Integer(-1), Reply::String("team_1")}));
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  EXPECT_EQ(wrong->code, ConfigureCode::kWrongTeam);
  EXPECT_EQ(wrong->registered_team, "team_1");
  // The old protocol's bare 1 is not this one.
  ExpectInternal(DecodeConfigure(Reply::Integer(1)).status(), "configure.lua", "1");
}

TEST(ScriptCodec, StatsAndDeadLetters) {
  EXPECT_THAT(EncodeStats("1", 16), ElementsAre("1", "16"));
  const Reply stats =
      Reply::Array({Reply::Integer(1), Reply::Integer(2), Reply::Integer(3), Reply::Integer(4),
                    Reply::Integer(1500), Reply::Integer(6), Reply::String("e:send"),
                    Reply::Integer(10), Reply::String("o:a:b:ok"), Reply::Integer(7)});
  absl::StatusOr<ShardStats> s = DecodeStats(stats, 2);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->shard, 2);
  EXPECT_EQ(s->ready, 1);
  EXPECT_EQ(s->dead, 4);
  EXPECT_EQ(s->oldest_ready_age, absl::Milliseconds(1500));
  EXPECT_EQ(s->ready_accounts, 6);
  EXPECT_EQ(s->enqueued.at("send"), 10);
  EXPECT_EQ(s->finished.at({"a:b", "ok"}), 7);
  ExpectInternal(DecodeStats(Ints({1, 2, 3, 4, 5, 6, 7}), 0).status(), "stats.lua", "pairs");

  EXPECT_THAT(EncodeListDead("1", 0, 20), ElementsAre("1", "0", "20"));
  absl::StatusOr<DeadPage> page = DecodeListDead(Reply::Array(
      {Reply::Integer(1), Reply::String("j"), Reply::String("send"), Reply::String("acct"),
       Reply::String("p"), Reply::Integer(3), Reply::String("bad"), Reply::Integer(1000)}));
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 1);
  ASSERT_EQ(page->jobs.size(), 1u);
  EXPECT_EQ(page->jobs[0].attempts, 3);
  EXPECT_EQ(page->jobs[0].reason, "bad");
  EXPECT_EQ(page->jobs[0].died_at, absl::FromUnixMillis(1000));
  ExpectInternal(DecodeListDead(Ints({1, 2})).status(), "list_dead.lua", "7 fields");
}

}  // namespace
}  // namespace herald::queue::script
