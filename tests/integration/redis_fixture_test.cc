// The harness every Redis-backed test stands on: it must give a real, isolated, restartable
// server and leave nothing behind.
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <herald/common/strings.h>
#include <herald/testing/net.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/subprocess.h>

namespace herald::testing {
namespace {

TEST(RedisServerTest, ServersAreIndependent) {
  auto a = RedisServer::Start();
  auto b = RedisServer::Start();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*a)->port(), (*b)->port());
  ASSERT_EQ(*(*a)->Command({"SET", "k", "a"}), "OK");
  EXPECT_EQ(*(*b)->Command({"GET", "k"}), "(nil)");
  EXPECT_EQ(*(*a)->Command({"GET", "k"}), "a");
}

TEST(RedisServerTest, AppendOnlyDataSurvivesAKill) {
  auto redis = RedisServer::Start({.appendonly = true});
  ASSERT_TRUE(redis.ok()) << redis.status();
  ASSERT_EQ(*(*redis)->Command({"RPUSH", "jobs", "1", "2", "3"}), "3");
  ASSERT_TRUE((*redis)->Restart(/*graceful=*/false).ok());
  EXPECT_EQ(*(*redis)->Command({"LRANGE", "jobs", "0", "-1"}), "1\n2\n3");
}

TEST(RedisServerTest, PasswordIsRequired) {
  auto redis = RedisServer::Start({.password = "s3cret"});
  ASSERT_TRUE(redis.ok()) << redis.status();
  EXPECT_EQ(*(*redis)->Command({"PING"}), "PONG");
  EXPECT_TRUE(PortAcceptsConnections((*redis)->port()));
}

TEST(RedisServerTest, DestructionStopsTheServer) {
  uint16_t port = 0;
  {
    auto redis = RedisServer::Start();
    ASSERT_TRUE(redis.ok());
    port = (*redis)->port();
    EXPECT_TRUE(PortAcceptsConnections(port));
  }
  EXPECT_FALSE(PortAcceptsConnections(port));
}

// ctest runs tests side by side: a port one test picked must not be picked by another before its
// server binds it, nor become the local port of some outgoing connection meanwhile.
TEST(PickFreePortTest, APickedPortIsHeldAgainstOtherProcessesAndClearOfOutgoingConnections) {
  const uint16_t port = PickFreePort();
  int ephemeral_start = 0;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_start;
  EXPECT_LT(port, ephemeral_start);
  EXPECT_NE(PickFreePort(), port);

  // flock(1) exits with the conflict code when another process holds the lock.
  constexpr int kHeld = 3;
  auto flock = Subprocess::Start({.argv = {"/usr/bin/flock", "--nonblock", "--conflict-exit-code",
                                           StrCat(kHeld), PortReservationPath(port), "true"}});
  ASSERT_TRUE(flock.ok()) << flock.status();
  const std::optional<int> status = flock->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), kHeld);
}

}  // namespace
}  // namespace herald::testing
