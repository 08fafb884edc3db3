#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <herald/redis/cluster.h>
#include <herald/redis/reply.h>

namespace herald::redis::cluster {
namespace {

Reply S(std::string s) { return Reply::String(std::move(s)); }
Reply I(int64_t v) { return Reply::Integer(v); }
Reply A(std::vector<Reply> e) { return Reply::Array(std::move(e)); }

TEST(KeySlotTest, MatchesTheSpecification) {
  // The values Redis' CLUSTER KEYSLOT returns (its documentation's examples and known keys).
  EXPECT_EQ(KeySlot("somekey"), 11058);
  EXPECT_EQ(KeySlot("foo{hash_tag}"), 2515);
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("bar"), 5061);
  EXPECT_EQ(KeySlot("123456789"), 0x31C3 % kSlots);  // the CRC16/XMODEM check value
  EXPECT_EQ(KeySlot(""), 0);
  // Read from a redis-server 7.0 in cluster mode (CLUSTER KEYSLOT).
  EXPECT_EQ(KeySlot("hd:{t:acme}:events"), 9557);
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), 4015);
  EXPECT_EQ(KeySlot("foo{}{bar}"), 8363);
  EXPECT_EQ(KeySlot("\xc3\xa9"), 10180);  // bytes, not characters
}

TEST(KeySlotTest, HashTagsFollowTheFirstBraces) {
  EXPECT_EQ(HashTag("hd:{t:acme}:events"), "t:acme");
  EXPECT_EQ(HashTag("{user1000}.following"), "user1000");
  EXPECT_EQ(HashTag("foo{}{bar}"), "foo{}{bar}");  // an empty tag: the whole key
  EXPECT_EQ(HashTag("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(HashTag("foo{bar}{zap}"), "bar");
  EXPECT_EQ(HashTag("no-close{brace"), "no-close{brace");
  EXPECT_EQ(KeySlot("hd:{t:acme}:events"), KeySlot("hd:{t:acme}:mm:acct_a:7"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
}

TEST(CheckSameSlotTest, NamesTheKeysThatDiffer) {
  const std::vector<std::string> same = {"hd:{t:a}:x", "hd:{t:a}:y", "{t:a}"};
  EXPECT_TRUE(CheckSameSlot(same).ok());
  EXPECT_TRUE(CheckSameSlot({}).ok());
  const std::vector<std::string> apart = {"hd:{t:a}:x", "hd:{t:b}:y"};
  const absl::Status s = CheckSameSlot(apart);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'hd:{t:a}:x'"), std::string_view::npos) << s;
  EXPECT_NE(s.message().find("'hd:{t:b}:y'"), std::string_view::npos) << s;
}

// A CLUSTER SLOTS reply of three masters with a replica each; the second master's endpoint is
// unknown to the server (NULL), the third announces a hostname.
Reply ThreeMasterSlots() {
  return A({
      A({I(0), I(5460), A({S("10.0.0.1"), I(7000), S("id-a")}),
         A({S("10.0.0.4"), I(7003), S("id-d")})}),
      A({I(5461), I(10922), A({Reply::Nil(), I(7001), S("id-b")}),
         A({S("10.0.0.5"), I(7004), S("id-e")})}),
      A({I(10923), I(16383), A({S("redis-2.example"), I(7002), S("id-c"), A({})})}),
  });
}

TEST(SlotMapTest, FromSlotsRoutesEverySlotToItsMaster) {
  auto map = SlotMap::FromSlots(ThreeMasterSlots(), "seed.example");
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->uncovered(), 0);
  ASSERT_EQ(map->masters().size(), 3u);
  EXPECT_EQ(map->MasterOf(0)->Address(), "10.0.0.1:7000");
  EXPECT_EQ(map->MasterOf(5460)->id, "id-a");
  EXPECT_EQ(map->MasterOf(5461)->Address(), "seed.example:7001");  // NULL: the seed's host
  EXPECT_EQ(map->MasterOf(16383)->Address(), "redis-2.example:7002");
  EXPECT_EQ(map->MasterOf(KeySlot("foo"))->port, 7002);  // 12182
}

TEST(SlotMapTest, FromShardsTakesTheLiveMasterAndItsPreferredEndpoint) {
  auto node = [](std::string id, std::string endpoint, int64_t port, std::string role,
                 std::string health) {
    return A({S("id"), S(std::move(id)), S("port"), I(port), S("ip"), S("10.0.0.9"), S("endpoint"),
              S(std::move(endpoint)), S("role"), S(std::move(role)), S("replication-offset"),
              I(100), S("health"), S(std::move(health))});
  };
  const Reply shards = A({
      A({S("slots"), A({I(0), I(100), I(200), I(16383)}), S("nodes"),
         A({node("r1", "10.0.0.2", 7100, "replica", "online"),
            node("m1", "10.0.0.1", 7000, "master", "online")})}),
      // The master's endpoint is unknown ("?"): its ip is used. (A single node started with
      // no announced address answers "" for both: the seed's host, tested below.)
      A({S("slots"), A({I(101), I(199)}), S("nodes"),
         A({node("m2", "?", 7001, "master", "online")})}),
      // Replicas only: no slots.
      A({S("slots"), A({}), S("nodes"), A({node("r3", "10.0.0.3", 7003, "replica", "online")})}),
  });
  auto map = SlotMap::FromShards(shards, "seed");
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->uncovered(), 0);
  ASSERT_EQ(map->masters().size(), 2u);
  EXPECT_EQ(map->MasterOf(0)->Address(), "10.0.0.1:7000");
  EXPECT_EQ(map->MasterOf(150)->Address(), "10.0.0.9:7001");
  EXPECT_EQ(map->MasterOf(150)->id, "m2");
  EXPECT_EQ(map->MasterOf(16383)->id, "m1");

  const Reply single = A({A(
      {S("slots"), A({I(0), I(16383)}), S("nodes"),
       A({A({S("id"), S("n1"), S("port"), I(6398), S("ip"), S(""), S("endpoint"), S(""), S("role"),
             S("master"), S("replication-offset"), I(0), S("health"), S("online")})})})});
  auto one = SlotMap::FromShards(single, "127.0.0.1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->MasterOf(9557)->Address(), "127.0.0.1:6398");

  // A failed master serves nothing until its replica takes over.
  const Reply failed = A({A({S("slots"), A({I(0), I(16383)}), S("nodes"),
                             A({node("m1", "10.0.0.1", 7000, "master", "failed")})})});
  auto partial = SlotMap::FromShards(failed, "seed");
  ASSERT_TRUE(partial.ok()) << partial.status();
  EXPECT_EQ(partial->uncovered(), kSlots);
  EXPECT_EQ(partial->MasterOf(0), nullptr);
  // As servers spell it ("fail"), and a shard listing its dead old master after the new one.
  const Reply dead = A({A({S("slots"), A({I(0), I(16383)}), S("nodes"),
                           A({node("m1", "10.0.0.1", 7000, "master", "fail")})})});
  auto none = SlotMap::FromShards(dead, "seed");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->MasterOf(0), nullptr);
  const Reply promoted = A({A({S("slots"), A({I(0), I(16383)}), S("nodes"),
                               A({node("m2", "10.0.0.2", 7001, "master", "online"),
                                  node("m1", "10.0.0.1", 7000, "master", "fail")})})});
  auto after = SlotMap::FromShards(promoted, "seed");
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_NE(after->MasterOf(0), nullptr);
  EXPECT_EQ(after->MasterOf(0)->id, "m2");
}

TEST(RedirectTest, MovedAndAskNameTheSlotAndItsNode) {
  auto moved = ParseRedirect("MOVED 3999 127.0.0.1:6381", "seed");
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->kind, Redirect::Kind::kMoved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->node.Address(), "127.0.0.1:6381");
  auto ask = ParseRedirect("ASK 16383 redis-1.example:7000", "seed");
  ASSERT_TRUE(ask.has_value());
  EXPECT_EQ(ask->kind, Redirect::Kind::kAsk);
  EXPECT_EQ(ask->node.Address(), "redis-1.example:7000");
  EXPECT_EQ(ParseRedirect("MOVED 12 :7001", "10.0.0.1")->node.Address(), "10.0.0.1:7001");
  EXPECT_EQ(ParseRedirect("MOVED 12 [::1]:7001", "s")->node.host, "::1");
  EXPECT_FALSE(ParseRedirect("ERR unknown command", "s").has_value());
  EXPECT_FALSE(ParseRedirect("MOVED 16384 h:1", "s").has_value());
  EXPECT_FALSE(ParseRedirect("MOVED x h:1", "s").has_value());
  EXPECT_FALSE(ParseRedirect("ASK 1 h", "s").has_value());
  EXPECT_FALSE(ParseRedirect("MOVED 1 h:0", "s").has_value());
}

TEST(RoutingKeyTest, ScriptsByTheirFirstKeyCommandsByTheirFirstArgument) {
  auto key = [](std::vector<std::string> args) {
    std::optional<std::string_view> k = RoutingKey(args);
    return k ? std::string(*k) : std::string("<none>");
  };
  EXPECT_EQ(key({"HMGET", "hd:{t:a}:mm:x", "sent"}), "hd:{t:a}:mm:x");
  EXPECT_EQ(key({"evalsha", "abc", "2", "q:{s3}:ready", "q:{s3}:jobs", "arg"}), "q:{s3}:ready");
  EXPECT_EQ(key({"EVAL", "return 1", "0"}), "<none>");
  EXPECT_EQ(key({"PING"}), "<none>");
  EXPECT_EQ(key({"SCRIPT", "LOAD", "return 1"}), "<none>");
  EXPECT_EQ(key({"WAIT", "1", "100"}), "<none>");
  EXPECT_EQ(key({"XADD", "hd:{t:a}:events", "*", "k", "v"}), "hd:{t:a}:events");
}

TEST(CommandKeysTest, MultiKeyCommandsNameEveryKey) {
  const auto keys = [](std::vector<std::string> args) {
    const std::vector<std::string_view> k = CommandKeys(args);
    return std::vector<std::string>(k.begin(), k.end());
  };
  EXPECT_EQ(keys({"DEL", "a", "b", "c"}), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(keys({"mget", "a", "b"}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(keys({"MSET", "a", "1", "b", "2"}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(keys({"RENAME", "a", "b"}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(keys({"LMOVE", "a", "b", "LEFT", "RIGHT"}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(keys({"EVALSHA", "sha", "2", "k1", "k2", "arg"}),
            (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(keys({"EVALSHA", "sha", "0", "arg"}), std::vector<std::string>{});
  EXPECT_EQ(keys({"HSET", "h", "f", "v"}), std::vector<std::string>{"h"});
  EXPECT_EQ(keys({"PING"}), std::vector<std::string>{});
  EXPECT_EQ(keys({"MULTI"}), std::vector<std::string>{});
  EXPECT_EQ(keys({"INFO", "cpu"}), std::vector<std::string>{});
  EXPECT_TRUE(CommandKeys(std::vector<std::string>{"DEL"}).empty());
}

TEST(SlotMapTest, MalformedRepliesAreErrors) {
  EXPECT_FALSE(SlotMap::FromSlots(S("nope"), "seed").ok());
  EXPECT_FALSE(SlotMap::FromSlots(A({A({I(0), I(20000), A({S("h"), I(1)})})}), "seed").ok());
  EXPECT_FALSE(SlotMap::FromSlots(A({A({I(0), I(1)})}), "seed").ok());
  EXPECT_FALSE(SlotMap::FromSlots(A({A({I(0), I(1), A({S("h"), I(0)})})}), "seed").ok());
  EXPECT_EQ(
      SlotMap::FromSlots(Reply::Error("ERR This instance has cluster support disabled"), "seed")
          .status()
          .code(),
      absl::StatusCode::kInternal);
  EXPECT_FALSE(SlotMap::FromShards(A({A({S("slots"), A({I(0)}), S("nodes"), A({})})}), "s").ok());
}

}  // namespace
}  // namespace herald::redis::cluster
