// The protocol state machine, without sockets: encoding, FIFO matching of replies, arbitrary
// read boundaries, abandonment (deadlines, cancellation) and protocol errors.
#include "pipeline.h"

#include <ostream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>

namespace herald::redis {
// gtest prints replies in failure messages with this.
void PrintTo(const Reply& reply, std::ostream* os) { *os << reply.DebugString(); }
}  // namespace herald::redis

namespace herald::redis::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const Deadline kT0 = Deadline() + std::chrono::hours(1);

// Queues `request` for `commands` and returns it.
PipelineRequest* Queue(Pipeline& p, PipelineRequest& request, std::vector<Command> commands,
                       uint64_t id = 0, Deadline deadline = kNoDeadline) {
  request.id = id;
  request.deadline = deadline;
  for (const Command& c : commands) p.Encode(c);
  p.Push(&request);
  return &request;
}

std::vector<PipelineRequest*> FeedAll(Pipeline& p, std::string_view bytes) {
  std::vector<PipelineRequest*> completed;
  absl::Status s = p.Feed(bytes, completed);
  EXPECT_TRUE(s.ok()) << s;
  return completed;
}

std::vector<PipelineRequest*> FeedByteByByte(Pipeline& p, std::string_view bytes) {
  std::vector<PipelineRequest*> completed;
  for (const char c : bytes) {
    absl::Status s = p.Feed(std::string_view(&c, 1), completed);
    EXPECT_TRUE(s.ok()) << s;
  }
  return completed;
}

TEST(PipelineTest, EncodesCommandsAsArraysOfBulkStrings) {
  Pipeline p;
  PipelineRequest r;
  Queue(p, r, {Command{"SET", "key", std::string_view("a\0b", 3)}});
  constexpr char kWire[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\na\0b\r\n";
  EXPECT_EQ(p.PrepareWrite(), std::string_view(kWire, sizeof(kWire) - 1));
}

TEST(PipelineTest, EncodesEmptyAndLargeArgumentsAndArgvSpans) {
  Pipeline p;
  PipelineRequest r;
  const std::string large(100'000, 'x');
  const std::string_view argv[] = {"HSET", "h", "", large};
  p.Encode(argv);
  p.Push(&r);
  EXPECT_EQ(p.PrepareWrite(),
            StrCat("*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$0\r\n\r\n$100000\r\n", large, "\r\n"));
}

TEST(PipelineTest, CoalescesQueuedRequestsIntoOneWrite) {
  Pipeline p;
  PipelineRequest a, b, c;
  Queue(p, a, {Command{"PING"}});
  Queue(p, b, {Command{"GET", "x"}, Command{"GET", "y"}});
  Queue(p, c, {Command{"INCR", "n"}});
  EXPECT_EQ(p.unsent_requests(), 3u);
  EXPECT_EQ(p.PrepareWrite(),
            "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n*2\r\n$3\r\nGET\r\n$1\r\ny\r\n"
            "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n");
  EXPECT_FALSE(p.has_unsent());
  EXPECT_EQ(p.sent_requests(), 3u);

  // Commands queued while the write is out go into the next one.
  PipelineRequest d;
  Queue(p, d, {Command{"PING"}});
  p.WriteDone();
  EXPECT_EQ(p.PrepareWrite(), "*1\r\n$4\r\nPING\r\n");
}

TEST(PipelineTest, MatchesPipelinedRepliesInOrder) {
  Pipeline p;
  PipelineRequest a, b, c;
  Queue(p, a, {Command{"SET", "k", "v"}});
  Queue(p, b, {Command{"INCR", "n"}});
  Queue(p, c, {Command{"GET", "k"}});
  p.PrepareWrite();
  EXPECT_THAT(FeedAll(p, "+OK\r\n:5\r\n$1\r\nv\r\n"), ElementsAre(&a, &b, &c));
  EXPECT_EQ(a.reply, Reply::Status("OK"));
  EXPECT_EQ(b.reply, Reply::Integer(5));
  EXPECT_EQ(c.reply, Reply::String("v"));
  EXPECT_EQ(p.sent_requests(), 0u);
}

TEST(PipelineTest, RepliesSplitAtEveryByteBoundary) {
  const std::string wire =
      "+OK\r\n:-42\r\n$12\r\nhello\r\nworld\r\n$-1\r\n-ERR no such key\r\n"
      "*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n*0\r\n$0\r\n\r\n";
  Pipeline p;
  PipelineRequest r[7];
  for (auto& req : r) Queue(p, req, {Command{"X"}});
  p.PrepareWrite();
  const std::vector<PipelineRequest*> completed = FeedByteByByte(p, wire);
  ASSERT_EQ(completed.size(), 7u);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(completed[i], &r[i]);
  EXPECT_EQ(r[0].reply, Reply::Status("OK"));
  EXPECT_EQ(r[1].reply, Reply::Integer(-42));
  EXPECT_EQ(r[2].reply, Reply::String("hello\r\nworld"));
  EXPECT_TRUE(r[3].reply.is_nil());
  EXPECT_EQ(r[4].reply, Reply::Error("ERR no such key"));
  EXPECT_EQ(r[5].reply.DebugString(), R"(["a", [1, nil], []])");
  EXPECT_EQ(r[6].reply, Reply::String(""));

  // Every split into two reads gives the same replies.
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    Pipeline q;
    PipelineRequest s[7];
    for (auto& req : s) Queue(q, req, {Command{"X"}});
    q.PrepareWrite();
    std::vector<PipelineRequest*> done;
    ASSERT_TRUE(q.Feed(std::string_view(wire).substr(0, cut), done).ok());
    ASSERT_TRUE(q.Feed(std::string_view(wire).substr(cut), done).ok());
    ASSERT_EQ(done.size(), 7u) << "cut at " << cut;
    for (size_t i = 0; i < 7; ++i) EXPECT_EQ(s[i].reply, r[i].reply) << "cut at " << cut;
  }
}

TEST(PipelineTest, NestedArraysAndNullArray) {
  Pipeline p;
  PipelineRequest a, b;
  Queue(p, a, {Command{"X"}});
  Queue(p, b, {Command{"Y"}});
  p.PrepareWrite();
  EXPECT_THAT(FeedAll(p, "*2\r\n*2\r\n*1\r\n:7\r\n+deep\r\n-ERR inner\r\n*-1\r\n"),
              ElementsAre(&a, &b));
  ASSERT_EQ(a.reply.type(), Reply::Type::kArray);
  ASSERT_EQ(a.reply.elements().size(), 2u);
  EXPECT_EQ(a.reply.elements()[0].elements()[0].elements()[0], Reply::Integer(7));
  EXPECT_EQ(a.reply.elements()[0].elements()[1], Reply::Status("deep"));
  EXPECT_TRUE(a.reply.elements()[1].is_error());
  EXPECT_TRUE(b.reply.is_nil());
}

TEST(PipelineTest, ArrayHeaderAloneAllocatesNothingForItsElements) {
  // A dozen bytes announce 2^31-1 elements: room is made as elements arrive, not for the count
  // announced (which would be 150 GB before a single element is read).
  Pipeline p;
  PipelineRequest a;
  Queue(p, a, {Command{"X"}});
  p.PrepareWrite();
  EXPECT_THAT(FeedAll(p, "*2147483647\r\n:1\r\n*44444441\r\n*0\r\n"), IsEmpty());
  std::vector<PipelineRequest*> out;
  p.Reset(out);
  EXPECT_THAT(out, ElementsAre(&a));

  // Arrays larger than what is reserved up front still arrive whole, in order, across reads.
  PipelineRequest b;
  Queue(p, b, {Command{"Y"}});
  p.PrepareWrite();
  std::string wire = "*3000\r\n";
  for (int i = 0; i < 3000; ++i) {
    StrAppend(&wire, i % 2 == 0 ? StrCat(":", i, "\r\n") : StrCat("*1\r\n$1\r\n", i % 10, "\r\n"));
  }
  EXPECT_THAT(FeedByteByByte(p, wire), ElementsAre(&b));
  ASSERT_EQ(b.reply.elements().size(), 3000u);
  EXPECT_EQ(b.reply.elements()[2998], Reply::Integer(2998));
  EXPECT_EQ(b.reply.elements()[2999], Reply::Array({Reply::String("9")}));
}

TEST(PipelineTest, LargeBulkStringAcrossManyReads) {
  Pipeline p;
  PipelineRequest a, b;
  Queue(p, a, {Command{"GET", "big"}});
  Queue(p, b, {Command{"PING"}});
  p.PrepareWrite();
  const std::string value(300000, 'x');
  const std::string wire = StrCat("$", value.size(), "\r\n", value, "\r\n+PONG\r\n");
  std::vector<PipelineRequest*> done;
  for (size_t pos = 0; pos < wire.size(); pos += 4096) {
    ASSERT_TRUE(p.Feed(std::string_view(wire).substr(pos, 4096), done).ok());
  }
  EXPECT_THAT(done, ElementsAre(&a, &b));
  EXPECT_EQ(a.reply.str(), value);
}

TEST(PipelineTest, BatchCompletesAfterItsLastReply) {
  Pipeline p;
  PipelineRequest batch, next;
  Queue(p, batch, {Command{"SET", "a", "1"}, Command{"HGET", "a", "f"}, Command{"GET", "a"}});
  Queue(p, next, {Command{"PING"}});
  p.PrepareWrite();
  EXPECT_THAT(FeedAll(p, "+OK\r\n-WRONGTYPE Operation against a key\r\n"), IsEmpty());
  EXPECT_THAT(FeedAll(p, "$1\r\n1\r\n+PONG\r\n"), ElementsAre(&batch, &next));
  EXPECT_THAT(batch.replies,
              ElementsAre(Reply::Status("OK"), Reply::Error("WRONGTYPE Operation against a key"),
                          Reply::String("1")));
  EXPECT_EQ(next.reply, Reply::Status("PONG"));
}

TEST(PipelineTest, AbandonedSentRequestsRepliesAreSkipped) {
  Pipeline p;
  PipelineRequest slow, later;
  Queue(p, slow, {Command{"GET", "a"}}, /*id=*/7);
  Queue(p, later, {Command{"GET", "b"}}, /*id=*/8);
  p.PrepareWrite();
  EXPECT_EQ(p.Abandon(7), &slow);
  EXPECT_EQ(p.Abandon(7), nullptr);  // already gone
  // The late reply to `slow` arrives first and must not be taken for `later`'s.
  EXPECT_THAT(FeedAll(p, "$2\r\nva\r\n$2\r\nvb\r\n"), ElementsAre(&later));
  EXPECT_EQ(later.reply, Reply::String("vb"));
  EXPECT_TRUE(slow.reply.is_nil());
}

TEST(PipelineTest, AbandonedBatchSkipsItsRemainingReplies) {
  Pipeline p;
  PipelineRequest batch, next;
  Queue(p, batch, {Command{"A"}, Command{"B"}, Command{"C"}}, /*id=*/1);
  Queue(p, next, {Command{"D"}}, /*id=*/2);
  p.PrepareWrite();
  EXPECT_THAT(FeedAll(p, ":1\r\n"), IsEmpty());
  EXPECT_EQ(p.Abandon(1), &batch);
  EXPECT_THAT(FeedAll(p, ":2\r\n:3\r\n:4\r\n"), ElementsAre(&next));
  EXPECT_EQ(next.reply, Reply::Integer(4));
}

TEST(PipelineTest, AbandonedUnsentRequestIsNeverWritten) {
  Pipeline p;
  PipelineRequest a, b, c;
  Queue(p, a, {Command{"GET", "a"}}, 1);
  Queue(p, b, {Command{"GET", "b"}}, 2);
  Queue(p, c, {Command{"GET", "c"}}, 3);
  EXPECT_EQ(p.Abandon(2), &b);
  EXPECT_EQ(p.unsent_requests(), 2u);
  EXPECT_EQ(p.PrepareWrite(), "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nc\r\n");
  EXPECT_THAT(FeedAll(p, "$1\r\na\r\n$1\r\nc\r\n"), ElementsAre(&a, &c));
  EXPECT_EQ(c.reply, Reply::String("c"));
}

TEST(PipelineTest, AbandonIgnoresIdZero) {
  Pipeline p;
  PipelineRequest a;
  Queue(p, a, {Command{"PING"}}, 0);
  EXPECT_EQ(p.Abandon(0), nullptr);
  EXPECT_EQ(p.unsent_requests(), 1u);
}

TEST(PipelineTest, ExpireDetachesDueRequestsAndReportsTheNextDeadline) {
  Pipeline p;
  PipelineRequest sent_due, sent_later, unsent_due, unsent_later;
  Queue(p, sent_due, {Command{"GET", "1"}}, 0, kT0 + std::chrono::milliseconds(100));
  Queue(p, sent_later, {Command{"GET", "2"}}, 0, kT0 + std::chrono::seconds(5));
  p.PrepareWrite();
  p.WriteDone();
  Queue(p, unsent_due, {Command{"GET", "3"}}, 0, kT0 + std::chrono::milliseconds(50));
  Queue(p, unsent_later, {Command{"GET", "4"}}, 0, kT0 + std::chrono::seconds(2));

  std::vector<PipelineRequest*> expired;
  EXPECT_EQ(p.Expire(kT0, expired), kT0 + std::chrono::milliseconds(50));
  EXPECT_THAT(expired, IsEmpty());

  EXPECT_EQ(p.Expire(kT0 + std::chrono::milliseconds(100), expired), kT0 + std::chrono::seconds(2));
  EXPECT_THAT(expired, ElementsAre(&sent_due, &unsent_due));
  // The expired unsent command is not written; the expired sent one's reply is skipped.
  EXPECT_EQ(p.PrepareWrite(), "*2\r\n$3\r\nGET\r\n$1\r\n4\r\n");
  EXPECT_THAT(FeedAll(p, "$2\r\nv1\r\n$2\r\nv2\r\n$2\r\nv4\r\n"),
              ElementsAre(&sent_later, &unsent_later));
  EXPECT_EQ(sent_later.reply, Reply::String("v2"));
  EXPECT_EQ(unsent_later.reply, Reply::String("v4"));

  expired.clear();
  EXPECT_EQ(p.Expire(kT0 + std::chrono::hours(1), expired), kNoDeadline);
  EXPECT_THAT(expired, IsEmpty());
}

TEST(PipelineTest, PushFrontGoesAheadOfQueuedRequests) {
  Pipeline p;
  PipelineRequest waiting, auth;
  Queue(p, waiting, {Command{"GET", "k"}});
  const std::string_view argv[] = {"AUTH", "pw"};
  p.Encode(argv);
  p.PushFront(&auth);
  EXPECT_EQ(p.PrepareWrite(1), "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
  EXPECT_EQ(p.unsent_requests(), 1u);
  EXPECT_THAT(FeedAll(p, "+OK\r\n"), ElementsAre(&auth));
  p.WriteDone();
  EXPECT_EQ(p.PrepareWrite(), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  EXPECT_THAT(FeedAll(p, "$-1\r\n"), ElementsAre(&waiting));
}

TEST(PipelineTest, ProtocolErrorIsReported) {
  Pipeline p;
  PipelineRequest a, b;
  Queue(p, a, {Command{"PING"}});
  Queue(p, b, {Command{"PING"}});
  p.PrepareWrite();
  std::vector<PipelineRequest*> done;
  absl::Status s = p.Feed("+PONG\r\n!oops\r\n", done);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("protocol error"));
  EXPECT_THAT(done, ElementsAre(&a));  // what was parsed before the error still completes
}

TEST(PipelineTest, ReplyWithNoWaitingRequestIsAnError) {
  Pipeline p;
  std::vector<PipelineRequest*> done;
  absl::Status s = p.Feed("+OK\r\n", done);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("no command was waiting"));

  // Nor may a reply come for a request that is queued but not written.
  Pipeline q;
  PipelineRequest a;
  Queue(q, a, {Command{"PING"}});
  EXPECT_FALSE(q.Feed("+PONG\r\n", done).ok());
}

TEST(PipelineTest, ResetHandsBackEverythingAndForgetsPartialReplies) {
  Pipeline p;
  PipelineRequest sent, abandoned, unsent;
  Queue(p, sent, {Command{"GET", "a"}});
  Queue(p, abandoned, {Command{"GET", "b"}}, 5);
  p.PrepareWrite();
  Queue(p, unsent, {Command{"GET", "c"}});
  ASSERT_EQ(p.Abandon(5), &abandoned);
  EXPECT_THAT(FeedAll(p, "$5\r\nhal"), IsEmpty());

  std::vector<PipelineRequest*> out;
  p.Reset(out);
  EXPECT_THAT(out, ElementsAre(&sent, &unsent));
  EXPECT_FALSE(p.has_unsent());
  EXPECT_EQ(p.sent_requests(), 0u);

  // A new connection starts from a clean parser and output.
  PipelineRequest fresh;
  Queue(p, fresh, {Command{"PING"}});
  EXPECT_EQ(p.PrepareWrite(), "*1\r\n$4\r\nPING\r\n");
  EXPECT_THAT(FeedAll(p, "+PONG\r\n"), ElementsAre(&fresh));
}

TEST(PipelineTest, ThousandsOfPipelinedRequestsInRandomChunks) {
  Pipeline p;
  constexpr int kCount = 5000;
  std::vector<PipelineRequest> requests(kCount);
  std::string wire;
  for (int i = 0; i < kCount; ++i) {
    Queue(p, requests[i], {Command{"INCR", "n"}});
    StrAppend(&wire, ":", i, "\r\n");
  }
  p.PrepareWrite();
  std::vector<PipelineRequest*> done;
  size_t pos = 0;
  for (size_t step = 1; pos < wire.size(); step = step * 7 % 61 + 1) {
    ASSERT_TRUE(p.Feed(std::string_view(wire).substr(pos, step), done).ok());
    pos += step;
  }
  ASSERT_EQ(done.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(done[i], &requests[i]);
    ASSERT_EQ(requests[i].reply, Reply::Integer(i));
  }
}

}  // namespace
}  // namespace herald::redis::internal
