#include <string>

#include <gtest/gtest.h>

#include <herald/queue/record.h>

namespace herald::queue {
namespace {

std::string Record(std::string_view head, std::string_view kind, std::string_view account,
                   std::string_view rest) {
  std::string r(head);
  r.push_back(static_cast<char>(kind.size()));
  r.append(kind);
  r.push_back(static_cast<char>(account.size()));
  r.append(account);
  r.append(rest);
  return r;
}

TEST(JobRecordTest, DecodesEveryFieldAndABinaryPayload) {
  const std::string payload("\x00\x01:\n\xff", 5);
  const std::string rec = Record("1", "send_mass_message", "acct_1",
                                 "2:5:1700000000123:1700000009999:9:timed out" + payload);
  const auto r = DecodeJobRecord(rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->previous_outcome_unknown);
  EXPECT_EQ(r->kind, "send_mass_message");
  EXPECT_EQ(r->account, "acct_1");
  EXPECT_EQ(r->failed_attempts, 2);
  EXPECT_EQ(r->max_attempts, 5);
  EXPECT_EQ(r->ready_ms, 1'700'000'000'123);
  EXPECT_EQ(r->dead_ms, 1'700'000'009'999);
  EXPECT_EQ(r->reason, "timed out");
  EXPECT_EQ(r->payload, payload);
}

TEST(JobRecordTest, AReasonMayHoldColonsAndThePayloadMayBeEmpty) {
  const std::string rec = Record("0", "k", "a", "0:3:1:0:4:a:b:");
  const auto r = DecodeJobRecord(rec);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->previous_outcome_unknown);
  EXPECT_EQ(r->reason, "a:b:");
  EXPECT_EQ(r->payload, "");
}

TEST(JobRecordTest, MalformedRecordsAreRefused) {
  EXPECT_FALSE(DecodeJobRecord("").has_value());
  EXPECT_FALSE(DecodeJobRecord("x").has_value());
  EXPECT_FALSE(DecodeJobRecord(Record("2", "k", "a", "0:3:1:0:0:")).has_value());  // flag
  EXPECT_FALSE(DecodeJobRecord(std::string("0\x05kin", 5)).has_value());           // kind cut short
  EXPECT_FALSE(DecodeJobRecord(Record("0", "k", "a", "0:3:1:0")).has_value());     // no reason
  EXPECT_FALSE(DecodeJobRecord(Record("0", "k", "a", "0:3:x:0:0:")).has_value());  // not a number
  EXPECT_FALSE(DecodeJobRecord(Record("0", "k", "a", "0:3:1:0:9:short")).has_value());
  EXPECT_FALSE(DecodeJobRecord(Record("0", "k", "a", "-1:3:1:0:0:")).has_value());
}

}  // namespace
}  // namespace herald::queue
