// The Redis Cluster every cluster test stands on: real nodes that agree on one slot map, and
// faults (a killed master, a slot moved by hand) that behave as in production. Assertions ask
// the nodes themselves (CLUSTER INFO, ROLE, MOVED/ASK replies), not the fixture's own view.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/net.h>
#include <herald/testing/redis_cluster.h>

namespace herald::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

std::string Moved(uint16_t slot, uint16_t port) {
  return StrCat("(error) MOVED ", slot, " 127.0.0.1:", port);
}

std::string Ask(uint16_t slot, uint16_t port) {
  return StrCat("(error) ASK ", slot, " 127.0.0.1:", port);
}

// A master other than `port`.
uint16_t OtherMaster(const RedisCluster& cluster, uint16_t port) {
  for (uint16_t master : cluster.master_ports()) {
    if (master != port) return master;
  }
  return 0;
}

TEST(RedisClusterTest, RefusesFewerThanThreeMasters) {
  auto cluster = RedisCluster::Start({.masters = 2});
  EXPECT_EQ(cluster.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RedisClusterTest, ThreeMastersWithOneReplicaEachCoverEverySlot) {
  std::vector<uint16_t> ports;
  {
    auto cluster = RedisCluster::Start({});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    RedisCluster& c = **cluster;
    ports = c.ports();
    ASSERT_EQ(c.node_count(), 6u);
    EXPECT_THAT(c.seeds(), SizeIs(6));
    EXPECT_EQ(c.seeds()[0], StrCat("127.0.0.1:", ports[0]));
    ASSERT_THAT(c.master_ports(), SizeIs(3));
    EXPECT_THAT(c.replica_ports(), SizeIs(3));
    for (uint16_t port : ports) {
      auto info = c.Command(port, {"CLUSTER", "INFO"});
      ASSERT_TRUE(info.ok()) << info.status();
      EXPECT_THAT(*info, HasSubstr("cluster_state:ok"));
      EXPECT_THAT(*info, HasSubstr("cluster_slots_assigned:16384"));
      EXPECT_THAT(*info, HasSubstr("cluster_slots_ok:16384"));
      EXPECT_THAT(*info, HasSubstr("cluster_known_nodes:6"));
      EXPECT_THAT(*info, HasSubstr("cluster_size:3"));
    }
    for (uint16_t master : c.master_ports()) {
      const std::vector<uint16_t> replicas = c.ReplicasOf(master);
      ASSERT_THAT(replicas, SizeIs(1));
      EXPECT_THAT(*c.Command(replicas[0], {"ROLE"}),
                  StartsWith(StrCat("slave\n127.0.0.1\n", master, "\nconnected\n")));
      EXPECT_THAT(*c.Command(master, {"ROLE"}), StartsWith("master\n"));
    }
    // The slot map the fixture reports is the one the nodes route by.
    const auto slot = c.KeySlot("greeting");
    ASSERT_TRUE(slot.ok()) << slot.status();
    const std::optional<uint16_t> owner = c.MasterPortOf(*slot);
    ASSERT_TRUE(owner.has_value());
    EXPECT_EQ(*c.Command(*owner, {"SET", "greeting", "hi"}), "OK");
    EXPECT_EQ(*c.Command(OtherMaster(c, *owner), {"GET", "greeting"}), Moved(*slot, *owner));
  }
  for (uint16_t port : ports) EXPECT_FALSE(PortAcceptsConnections(port)) << port;
}

TEST(RedisClusterTest, ReplicaServesAReadOnlyReadOfAWriteItAcknowledged) {
  auto cluster = RedisCluster::Start({});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  RedisCluster& c = **cluster;
  const uint16_t slot = *c.KeySlot("greeting");
  const uint16_t master = *c.MasterPortOf(slot);
  const std::vector<uint16_t> replicas = c.ReplicasOf(master);
  ASSERT_THAT(replicas, SizeIs(1));

  auto replies = c.Commands(master, {{"SET", "greeting", "hello again"}, {"WAIT", "1", "5000"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_THAT(*replies, ElementsAre("OK", "1"));
  EXPECT_EQ(*c.Command(replicas[0], {"GET", "greeting"}), Moved(slot, master));
  replies = c.Commands(replicas[0], {{"READONLY"}, {"GET", "greeting"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_THAT(*replies, ElementsAre("OK", "hello again"));
}

TEST(RedisClusterTest, MoveSlotMovesItsKeysAndEveryNodeRoutesToTheNewOwner) {
  auto cluster = RedisCluster::Start({});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  RedisCluster& c = **cluster;
  const uint16_t slot = *c.KeySlot("{moving}");
  const uint16_t source = *c.MasterPortOf(slot);
  const uint16_t target = OtherMaster(c, source);
  for (int i = 0; i < 150; ++i) {  // more than one MIGRATE batch
    ASSERT_EQ(*c.Command(source, {"SET", StrCat("{moving}:", i), StrCat(i)}), "OK");
  }

  ASSERT_EQ(c.MoveSlot(slot, target), absl::OkStatus());

  EXPECT_EQ(c.MasterPortOf(slot), target);
  EXPECT_EQ(*c.Command(target, {"CLUSTER", "COUNTKEYSINSLOT", StrCat(slot)}), "150");
  EXPECT_EQ(*c.Command(source, {"CLUSTER", "COUNTKEYSINSLOT", StrCat(slot)}), "0");
  EXPECT_EQ(*c.Command(target, {"GET", "{moving}:149"}), "149");
  for (uint16_t port : c.ports()) {
    if (port == target) continue;
    EXPECT_EQ(*c.Command(port, {"GET", "{moving}:7"}), Moved(slot, target)) << "node " << port;
  }
}

TEST(RedisClusterTest, DuringAMigrationTheSourceAnswersAskForKeysItMovedAlready) {
  auto cluster = RedisCluster::Start({});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  RedisCluster& c = **cluster;
  const uint16_t slot = *c.KeySlot("{half}");
  const uint16_t source = *c.MasterPortOf(slot);
  const uint16_t target = OtherMaster(c, source);
  const std::vector<std::string> keys = {"{half}:a", "{half}:b", "{half}:c"};
  for (const std::string& key : keys) {
    ASSERT_EQ(*c.Command(source, {"SET", key, "v"}), "OK");
  }

  ASSERT_EQ(c.BeginMigration(slot, target), absl::OkStatus());
  auto moved = c.MigrateKeys(slot, 2);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, 2);

  int asked = 0;
  for (const std::string& key : keys) {
    const std::string reply = *c.Command(source, {"GET", key});
    if (reply == "v") continue;  // not moved yet: the source still serves it
    EXPECT_EQ(reply, Ask(slot, target)) << key;
    ++asked;
    // The target serves it only to a client that was redirected: after ASKING.
    EXPECT_EQ(*c.Command(target, {"GET", key}), Moved(slot, source));
    EXPECT_THAT(*c.Commands(target, {{"ASKING"}, {"GET", key}}), ElementsAre("OK", "v"));
  }
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(c.MasterPortOf(slot), source);

  EXPECT_EQ(*c.MigrateKeys(slot, 10), 1);
  EXPECT_EQ(*c.MigrateKeys(slot, 10), 0);
  ASSERT_EQ(c.FinishMigration(slot), absl::OkStatus());
  EXPECT_EQ(c.MasterPortOf(slot), target);
  EXPECT_EQ(*c.Command(source, {"GET", keys[0]}), Moved(slot, target));
  EXPECT_EQ(*c.Command(target, {"GET", keys[0]}), "v");
}

TEST(RedisClusterTest, AKilledMasterFailsOverToItsReplicaAndRejoinsAsItsReplica) {
  auto cluster = RedisCluster::Start({});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  RedisCluster& c = **cluster;
  const uint16_t slot = *c.KeySlot("survivor");
  const uint16_t master = *c.MasterPortOf(slot);
  const std::vector<uint16_t> replicas = c.ReplicasOf(master);
  ASSERT_THAT(replicas, SizeIs(1));
  EXPECT_THAT(*c.Commands(master, {{"SET", "survivor", "yes"}, {"WAIT", "1", "5000"}}),
              ElementsAre("OK", "1"));

  EXPECT_EQ(c.WaitForFailover(replicas[0]).status().code(),
            absl::StatusCode::kFailedPrecondition);                                // serves no slot
  EXPECT_EQ(c.RestartNode(master).code(), absl::StatusCode::kFailedPrecondition);  // running

  ASSERT_EQ(c.KillNode(master), absl::OkStatus());
  auto promoted = c.WaitForFailover(master);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_EQ(*promoted, replicas[0]);
  EXPECT_EQ(c.MasterPortOf(slot), *promoted);
  EXPECT_THAT(*c.Command(*promoted, {"ROLE"}), StartsWith("master\n"));
  EXPECT_EQ(*c.Command(*promoted, {"GET", "survivor"}), "yes");
  for (uint16_t port : c.ports()) {
    if (port == master || port == *promoted) continue;
    EXPECT_EQ(*c.Command(port, {"GET", "survivor"}), Moved(slot, *promoted)) << "node " << port;
  }
  EXPECT_FALSE(c.Command(master, {"PING"}).ok());

  ASSERT_EQ(c.RestartNode(master), absl::OkStatus());
  EXPECT_THAT(*c.Command(master, {"ROLE"}),
              StartsWith(StrCat("slave\n127.0.0.1\n", *promoted, "\nconnected\n")));
  EXPECT_THAT(c.ReplicasOf(*promoted), ElementsAre(master));
  EXPECT_EQ(*c.Command(master, {"GET", "survivor"}), Moved(slot, *promoted));
  EXPECT_EQ(c.MasterPortOf(slot), *promoted);
}

TEST(RedisClusterTest, WithAPasswordNodesReplicateAndMigrateAuthenticated) {
  auto cluster = RedisCluster::Start({.password = "s3cret"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  RedisCluster& c = **cluster;
  EXPECT_EQ(c.password(), "s3cret");
  const uint16_t slot = *c.KeySlot("{locked}");
  const uint16_t source = *c.MasterPortOf(slot);
  const uint16_t target = OtherMaster(c, source);
  // Replication to the replica needs masterauth: WAIT counts its acknowledgement.
  EXPECT_THAT(*c.Commands(source, {{"SET", "{locked}:k", "v"}, {"WAIT", "1", "5000"}}),
              ElementsAre("OK", "1"));
  // MIGRATE to the target needs AUTH2.
  ASSERT_EQ(c.MoveSlot(slot, target), absl::OkStatus());
  EXPECT_EQ(*c.Command(target, {"GET", "{locked}:k"}), "v");
}

}  // namespace
}  // namespace herald::testing
