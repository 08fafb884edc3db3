#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/redis/reply.h>

namespace herald::redis {
namespace {

using ::testing::HasSubstr;

TEST(ReplyTest, Accessors) {
  EXPECT_TRUE(Reply().is_nil());
  EXPECT_TRUE(Reply::Nil().is_nil());
  EXPECT_EQ(Reply::String("abc").type(), Reply::Type::kString);
  EXPECT_EQ(Reply::String("abc").str(), "abc");
  EXPECT_EQ(Reply::Status("OK").str(), "OK");
  EXPECT_TRUE(Reply::Error("ERR x").is_error());
  EXPECT_EQ(Reply::Integer(-7).integer(), -7);
  EXPECT_EQ(Reply::Integer(-7).str(), "");
  EXPECT_EQ(Reply::String("12").integer(), 0);
  const Reply array = Reply::Array({Reply::Integer(1), Reply::Nil()});
  ASSERT_EQ(array.elements().size(), 2u);
  EXPECT_EQ(array.elements()[0].integer(), 1);
  EXPECT_TRUE(Reply::String("x").elements().empty());
}

TEST(ReplyTest, AsString) {
  EXPECT_EQ(*Reply::String("v").AsString(), "v");
  EXPECT_EQ(*Reply::Status("OK").AsString(), "OK");
  absl::StatusOr<std::string> nil = Reply::Nil().AsString();
  EXPECT_EQ(nil.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(nil.status().message()), HasSubstr("nil"));
  EXPECT_EQ(Reply::Integer(3).AsString().status().code(), absl::StatusCode::kFailedPrecondition);
  // An error reply gives its own status, not a type mismatch.
  absl::StatusOr<std::string> error = Reply::Error("WRONGTYPE bad").AsString();
  EXPECT_EQ(error.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(std::string(error.status().message()), "WRONGTYPE bad");
}

TEST(ReplyTest, AsInteger) {
  EXPECT_EQ(*Reply::Integer(42).AsInteger(), 42);
  EXPECT_EQ(*Reply::String("-17").AsInteger(), -17);
  EXPECT_FALSE(Reply::String("12x").AsInteger().ok());
  EXPECT_FALSE(Reply::String("").AsInteger().ok());
  EXPECT_FALSE(Reply::String("99999999999999999999").AsInteger().ok());
  EXPECT_FALSE(Reply::Nil().AsInteger().ok());
  EXPECT_EQ(Reply::Error("OOM full").AsInteger().status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(ReplyTest, AsOptionalString) {
  EXPECT_EQ(Reply::Nil().AsOptionalString(), std::nullopt);
  EXPECT_EQ(Reply::String("v").AsOptionalString(), "v");
  EXPECT_EQ(Reply::Status("OK").AsOptionalString(), "OK");
  EXPECT_EQ(Reply::Integer(1).AsOptionalString(), std::nullopt);
  EXPECT_EQ(Reply::Error("ERR").AsOptionalString(), std::nullopt);
}

TEST(ReplyTest, ErrorRepliesMapToStatusCodes) {
  struct Case {
    const char* error;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {"LOADING Redis is loading the dataset in memory", absl::StatusCode::kUnavailable},
      {"BUSY Redis is busy running a script", absl::StatusCode::kUnavailable},
      {"MASTERDOWN Link with MASTER is down", absl::StatusCode::kUnavailable},
      {"READONLY You can't write against a read only replica.", absl::StatusCode::kUnavailable},
      {"TRYAGAIN Multiple keys request during rehashing", absl::StatusCode::kUnavailable},
      {"CLUSTERDOWN The cluster is down", absl::StatusCode::kUnavailable},
      {"OOM command not allowed when used memory > 'maxmemory'.",
       absl::StatusCode::kResourceExhausted},
      {"NOAUTH Authentication required.", absl::StatusCode::kUnauthenticated},
      {"WRONGPASS invalid username-password pair", absl::StatusCode::kUnauthenticated},
      {"NOPERM this user has no permissions", absl::StatusCode::kPermissionDenied},
      {"ERR unknown command 'FOO'", absl::StatusCode::kInternal},
      {"WRONGTYPE Operation against a key holding the wrong kind of value",
       absl::StatusCode::kInternal},
      {"NOSCRIPT No matching script.", absl::StatusCode::kInternal},
      {"BUSYKEY Target key name already exists.", absl::StatusCode::kInternal},
      {"LOADINGX not a known prefix", absl::StatusCode::kInternal},
      {"user script failed", absl::StatusCode::kInternal},
      {"", absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    const absl::Status s = Reply::Error(c.error).ToStatus();
    EXPECT_EQ(s.code(), c.code) << c.error;
    EXPECT_EQ(std::string(s.message()), c.error);
  }
  // Cluster redirects that reach a caller: a migration that outlasted its deadline is
  // transient; a MOVED means Herald talks to a cluster as to one server.
  const absl::Status ask = Reply::Error("ASK 2810 10.0.0.3:6379").ToStatus();
  EXPECT_EQ(ask.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(ask.message()), "redis: slot migrating: ASK 2810 10.0.0.3:6379");
  const absl::Status moved = Reply::Error("MOVED 1380 10.0.0.6:6379").ToStatus();
  EXPECT_EQ(moved.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(moved.message()),
            "redis: MOVED 1380 10.0.0.6:6379 (a Redis Cluster node: run Herald with "
            "--redis_cluster)");
  EXPECT_TRUE(Reply::Status("OK").ToStatus().ok());
  EXPECT_TRUE(Reply::Nil().ToStatus().ok());
}

TEST(ReplyTest, DebugString) {
  const Reply r = Reply::Array({Reply::Status("OK"), Reply::Integer(3), Reply::Nil(),
                                Reply::Array({Reply::String("a\"b\n\x01")}), Reply::Array({}),
                                Reply::Error("ERR x")});
  EXPECT_EQ(r.DebugString(), R"(["OK", 3, nil, ["a\"b\x0a\x01"], [], (error) ERR x])");
}

TEST(ReplyTest, Equality) {
  EXPECT_TRUE(Reply::String("a") == Reply::String("a"));
  EXPECT_FALSE(Reply::String("a") == Reply::Status("a"));
  EXPECT_FALSE(Reply::Integer(1) == Reply::Integer(2));
  EXPECT_TRUE(Reply::Array({Reply::Nil()}) == Reply::Array({Reply::Nil()}));
  EXPECT_FALSE(Reply::Array({Reply::Nil()}) == Reply::Array({Reply::Integer(0)}));
}

}  // namespace
}  // namespace herald::redis
