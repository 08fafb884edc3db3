// herald::redis::Client on a real six-node Redis Cluster (three masters, three replicas):
// routing by hash slot, MOVED after a slot moves, ASK while it moves, scripts (and NOSCRIPT on a
// node that never saw them), cross-slot refusal, transactions, and recovery from a master's
// failover.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/outage.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/redis/client.h>
#include <herald/redis/cluster.h>
#include <herald/testing/log_capture.h>
#include <herald/testing/redis_cluster.h>
#include <herald/testing/wait.h>

namespace herald::redis {
namespace {

namespace asio = boost::asio;
using ::testing::HasSubstr;
using testing::RedisCluster;

class IoThreads {
 public:
  explicit IoThreads(int n) : guard_(asio::make_work_guard(ioc_)) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~IoThreads() {
    guard_.reset();
    for (auto& t : threads_) t.join();
  }
  asio::any_io_executor executor() { return ioc_.get_executor(); }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

template <typename T>
T Await(asio::any_io_executor executor, asio::awaitable<T> op) {
  std::future<T> result = asio::co_spawn(executor, std::move(op), asio::use_future);
  if (result.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "operation did not complete within 60s";
    std::abort();  // the operation still refers to the test's objects
  }
  return result.get();
}

const Script kAppend(R"lua(
  redis.call('RPUSH', KEYS[1], ARGV[1])
  return redis.call('LLEN', KEYS[1])
)lua");

// A key in `slot`'s neighbourhood: keys with the same hash tag share a slot.
std::string KeyWithTag(std::string_view tag, std::string_view name) {
  return StrCat("{", tag, "}:", name);
}

// The connected client and its cluster, one per test: slot moves and failovers change the
// cluster, so no test sees another's changes.
class RedisClusterClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = RedisCluster::Start({});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    ClientConfig config;
    config.cluster = true;
    const std::vector<std::string> seeds = cluster_->seeds();
    config.address = {"127.0.0.1", cluster_->ports()[0]};
    for (size_t i = 1; i < 3; ++i) config.seeds.push_back({"127.0.0.1", cluster_->ports()[i]});
    config.command_timeout = absl::Seconds(20);
    client_ = std::make_unique<Client>(io_.executor(), config, &registry_);
    client_->OnConnectivityChange([this](absl::Status status) {
      std::lock_guard<std::mutex> lock(mu_);
      reports_.push_back(status);
    });
    client_->Start();
    ASSERT_TRUE(testing::WaitFor([&] { return client_->connected(); }, absl::Seconds(10)));
  }

  absl::StatusOr<Reply> Exec(Command command) {
    return Await(io_.executor(), client_->Exec(std::move(command)));
  }
  absl::StatusOr<Reply> Eval(const Script& script, std::vector<std::string> keys,
                             std::vector<std::string> args) {
    return Await(io_.executor(), client_->Eval(script, std::move(keys), std::move(args)));
  }
  // The value of `key` read on `port` itself, without redirection.
  std::string ReadOn(uint16_t port, const std::string& key) {
    absl::StatusOr<std::string> v = cluster_->Command(port, {"GET", key});
    return v.ok() ? *v : StrCat("(failed) ", v.status().ToString());
  }
  // Has the master on `port` alone take `slot` for the master on `to`'s (CLUSTER SETSLOT ...
  // NODE): the other masters do not hear of it.
  void GiveSlot(uint16_t port, uint16_t slot, uint16_t to) {
    const absl::StatusOr<std::string> id = cluster_->Command(to, {"CLUSTER", "MYID"});
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_EQ(
        cluster_->Command(port, {"CLUSTER", "SETSLOT", StrCat(slot), "NODE", *id}).value_or(""),
        "OK");
  }
  uint16_t MasterOf(std::string_view key) {
    const std::optional<uint16_t> port = cluster_->MasterPortOf(cluster::KeySlot(key));
    EXPECT_TRUE(port.has_value());
    return port.value_or(0);
  }
  uint16_t AnotherMaster(uint16_t port) {
    for (uint16_t m : cluster_->master_ports()) {
      if (m != port) return m;
    }
    ADD_FAILURE() << "one master only";
    return 0;
  }

  metrics::Registry registry_;
  IoThreads io_{2};
  std::unique_ptr<RedisCluster> cluster_;
  // What the connectivity callback touches outlives the client.
  std::mutex mu_;
  std::vector<absl::Status> reports_;
  std::unique_ptr<Client> client_;
};

TEST_F(RedisClusterClientTest, EveryKeyIsWrittenOnTheMasterOfItsSlot) {
  std::set<uint16_t> masters_written;
  for (int i = 0; i < 60; ++i) {
    const std::string key = StrCat("route:", i);
    ASSERT_TRUE(Exec(Command{"SET", key, i}).ok()) << key;
    EXPECT_EQ(ReadOn(MasterOf(key), key), StrCat(i)) << key;
    masters_written.insert(MasterOf(key));
  }
  EXPECT_EQ(masters_written.size(), 3u);  // 60 keys spread over every master
  // Keys sharing a hash tag go to one master, as one batch.
  std::vector<Command> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(Command{"INCR", KeyWithTag("acme", StrCat(i))});
  auto replies = Await(io_.executor(), client_->ExecBatch(std::move(batch)));
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 5u);
  EXPECT_EQ(ReadOn(MasterOf("{acme}"), KeyWithTag("acme", "4")), "1");
  // Keyless commands go to some master.
  auto pong = Exec(Command{"PING"});
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->str(), "PONG");
}

TEST_F(RedisClusterClientTest, CloseEndsTheRefreshLoopAndEveryPool) {
  ASSERT_TRUE(Exec(Command{"SET", "close:a", "1"}).ok());
  Await(io_.executor(), client_->Close());
  EXPECT_FALSE(client_->connected());
  EXPECT_EQ(Exec(Command{"GET", "close:a"}).status().code(), absl::StatusCode::kCancelled);
  Await(io_.executor(), client_->Close());  // idempotent
}

TEST_F(RedisClusterClientTest, CrossSlotCommandsAreRefusedBeforeSending) {
  const std::string a = "cross:a", b = "cross:b";
  ASSERT_NE(cluster::KeySlot(a), cluster::KeySlot(b));
  auto mset = Exec(Command{"MSET", a, "1", b, "2"});
  EXPECT_EQ(mset.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mset.status().message()), HasSubstr("cross:a"));
  auto script = Eval(kAppend, {a, b}, {"x"});
  EXPECT_EQ(script.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<Command> batch;
  batch.push_back(Command{"SET", a, "1"});
  batch.push_back(Command{"SET", b, "2"});
  auto replies = Await(io_.executor(), client_->ExecBatch(std::move(batch)));
  EXPECT_EQ(replies.status().code(), absl::StatusCode::kInvalidArgument);
  // Nothing was sent.
  EXPECT_EQ(ReadOn(MasterOf(a), a), "(nil)");
  EXPECT_EQ(ReadOn(MasterOf(b), b), "(nil)");
}

TEST_F(RedisClusterClientTest, ScriptsRunOnTheOwnerAndAreLoadedWhereMissing) {
  const std::string key = KeyWithTag("scripts", "list");
  auto first = Eval(kAppend, {key}, {"a"});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->integer(), 1);
  ASSERT_TRUE(cluster_->Command(MasterOf(key), {"SCRIPT", "FLUSH"}).ok());
  auto second = Eval(kAppend, {key}, {"b"});  // NOSCRIPT, then EVAL
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->integer(), 2);
  // A script's own error keeps its message.
  const Script failing("return redis.error_reply('ERR bad input')");
  auto error = Eval(failing, {key}, {});
  EXPECT_EQ(error.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(error.status().message()), HasSubstr("bad input"));
}

TEST_F(RedisClusterClientTest, TransactionsRunOnTheirSlotsMaster) {
  const std::string key = KeyWithTag("tx", "counter");
  std::vector<Command> tx;
  tx.push_back(Command{"MULTI"});
  tx.push_back(Command{"INCRBY", key, 5});
  tx.push_back(Command{"INCRBY", key, 7});
  tx.push_back(Command{"EXEC"});
  auto replies = Await(io_.executor(), client_->ExecBatch(std::move(tx)));
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 4u);
  ASSERT_EQ((*replies)[3].elements().size(), 2u);
  EXPECT_EQ((*replies)[3].elements()[1].integer(), 12);
  EXPECT_EQ(ReadOn(MasterOf(key), key), "12");
}

TEST_F(RedisClusterClientTest, FollowsMovedAfterASlotMoves) {
  const std::string key = KeyWithTag("moving", "value");
  ASSERT_TRUE(Exec(Command{"SET", key, "before"}).ok());
  const uint16_t slot = cluster::KeySlot(key);
  const uint16_t source = MasterOf(key);
  const uint16_t target = AnotherMaster(source);
  ASSERT_TRUE(cluster_->MoveSlot(slot, target).ok());
  ASSERT_EQ(cluster_->MasterPortOf(slot), target);

  // The client still maps the slot to `source`, which answers MOVED: followed.
  auto read = Exec(Command{"GET", key});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->str(), "before");
  ASSERT_TRUE(Exec(Command{"SET", key, "after"}).ok());
  EXPECT_EQ(ReadOn(target, key), "after");
  auto script = Eval(kAppend, {KeyWithTag("moving", "list")}, {"x"});
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_EQ(cluster_->Command(target, {"LLEN", KeyWithTag("moving", "list")}).value_or(""), "1");
}

TEST_F(RedisClusterClientTest, FollowsAskWhileASlotMoves) {
  const std::string moved = KeyWithTag("asking", "a");
  const std::string stays = KeyWithTag("asking", "b");
  ASSERT_TRUE(Exec(Command{"SET", moved, "1"}).ok());
  ASSERT_TRUE(Exec(Command{"SET", stays, "2"}).ok());
  const uint16_t slot = cluster::KeySlot(moved);
  const uint16_t source = MasterOf(moved);
  const uint16_t target = AnotherMaster(source);
  ASSERT_TRUE(cluster_->BeginMigration(slot, target).ok());
  // Move one of the two keys.
  auto migrated = cluster_->MigrateKeys(slot, 1);
  ASSERT_TRUE(migrated.ok()) << migrated.status();
  ASSERT_EQ(*migrated, 1);
  const bool a_moved = ReadOn(source, moved).starts_with("(error) ASK");
  const std::string& on_target = a_moved ? moved : stays;
  const std::string& on_source = a_moved ? stays : moved;
  ASSERT_THAT(ReadOn(source, on_target), HasSubstr("ASK"));

  // ASK: the client asks the target, once, and keeps its map.
  auto read = Exec(Command{"GET", on_target});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_FALSE(read->str().empty());
  auto read_source = Exec(Command{"GET", on_source});
  ASSERT_TRUE(read_source.ok()) << read_source.status();
  EXPECT_FALSE(read_source->str().empty());
  // A new key of the migrating slot is created on the target (the source answers ASK for it).
  const std::string fresh = KeyWithTag("asking", "fresh");
  ASSERT_TRUE(Exec(Command{"SET", fresh, "3"}).ok());
  auto on_target_fresh = cluster_->Commands(target, {{"ASKING"}, {"GET", fresh}});
  ASSERT_TRUE(on_target_fresh.ok()) << on_target_fresh.status();
  EXPECT_EQ(on_target_fresh->back(), "3");
  // A script of the migrating slot may touch keys it does not declare, split between the two
  // nodes: it waits for the migration to end, then runs on the new owner.
  std::future<absl::StatusOr<Reply>> script = asio::co_spawn(
      io_.executor(), client_->Eval(kAppend, {KeyWithTag("asking", "fresh-list")}, {"x"}),
      asio::use_future);
  EXPECT_EQ(script.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);

  ASSERT_TRUE(cluster_->MigrateKeys(slot, 100).ok());
  ASSERT_TRUE(cluster_->FinishMigration(slot).ok());
  ASSERT_EQ(script.wait_for(std::chrono::seconds(15)), std::future_status::ready);
  absl::StatusOr<Reply> ran = script.get();
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ran->integer(), 1);
  EXPECT_EQ(cluster_->Command(target, {"LLEN", KeyWithTag("asking", "fresh-list")}).value_or(""),
            "1");
  auto after = Exec(Command{"GET", on_source});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(ReadOn(target, fresh), "3");
}

TEST_F(RedisClusterClientTest, WaitsOutMastersThatRedirectToEachOther) {
  // While a slot's new owner is still being announced, two masters can each name the other as
  // the owner. The client follows a few such MOVED hops at once, then keeps following them
  // with pauses and fresh slot maps until the masters agree or the command's deadline passes.
  const std::string key = KeyWithTag("bouncing", "value");
  const uint16_t slot = cluster::KeySlot(key);
  const uint16_t owner = MasterOf(key);
  const uint16_t other = AnotherMaster(owner);
  // The owner gives the (empty) slot away; `other` never hears of it.
  ASSERT_NO_FATAL_FAILURE(GiveSlot(owner, slot, other));
  ASSERT_THAT(ReadOn(owner, key), HasSubstr(StrCat("MOVED ", slot, " 127.0.0.1:", other)));
  ASSERT_THAT(ReadOn(other, key), HasSubstr(StrCat("MOVED ", slot, " 127.0.0.1:", owner)));
  // GETs the two masters refused with a redirect.
  const auto refused = [&] {
    int64_t total = 0;
    for (const uint16_t port : {owner, other}) {
      const std::string stats = cluster_->Command(port, {"INFO", "commandstats"}).value_or("");
      const size_t line = stats.find("cmdstat_get:");
      const size_t field = stats.find("rejected_calls=", line);
      if (line == std::string::npos || field == std::string::npos) continue;
      total += std::strtoll(stats.c_str() + field + std::strlen("rejected_calls="), nullptr, 10);
    }
    return total;
  };
  const int64_t before = refused();

  std::future<absl::StatusOr<Reply>> read = asio::co_spawn(
      io_.executor(), client_->Exec(Command{"GET", key}, absl::Seconds(20)), asio::use_future);
  // More hops than a client that gives up after a fixed number of redirects would make.
  ASSERT_TRUE(testing::WaitFor([&] { return refused() - before >= 24; }, absl::Seconds(15)))
      << refused() - before << " redirects";
  EXPECT_EQ(read.wait_for(std::chrono::seconds(0)), std::future_status::timeout);

  // The owner takes the slot back: the masters agree again, and the read is answered.
  ASSERT_NO_FATAL_FAILURE(GiveSlot(owner, slot, owner));
  ASSERT_EQ(read.wait_for(std::chrono::seconds(15)), std::future_status::ready);
  const absl::StatusOr<Reply> answered = read.get();
  ASSERT_TRUE(answered.ok()) << answered.status();
  EXPECT_TRUE(answered->is_nil());
}

// Masters still naming each other as a slot's owner when a command's deadline comes: the command
// fails UNAVAILABLE (transient: a job defers, a caller retries), not with the MOVED reply's
// FAILED_PRECONDITION, which says the client does not speak cluster at all.
TEST_F(RedisClusterClientTest, MastersStillRedirectingAtTheDeadlineAreUnavailable) {
  const std::string key = KeyWithTag("unsettled", "value");
  const uint16_t slot = cluster::KeySlot(key);
  const uint16_t owner = MasterOf(key);
  const uint16_t other = AnotherMaster(owner);
  ASSERT_NO_FATAL_FAILURE(GiveSlot(owner, slot, other));
  const absl::StatusOr<Reply> read =
      Await(io_.executor(), client_->Exec(Command{"GET", key}, absl::Milliseconds(800)));
  EXPECT_TRUE(absl::IsUnavailable(read.status())) << read.status();
  EXPECT_THAT(read.status().message(), HasSubstr(StrCat("slot ", slot)));
  ASSERT_NO_FATAL_FAILURE(GiveSlot(owner, slot, owner));
  const absl::StatusOr<Reply> again = Exec(Command{"GET", key});
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(RedisClusterClientTest, ReplicatedScriptsWaitForTheirReplicas) {
  testing::LogCapture logs;
  ClientConfig config;
  config.cluster = true;
  config.address = {"127.0.0.1", cluster_->ports()[0]};
  config.wait_replicas = 1;
  // Long enough for a live replica on a loaded two-core machine: a write that misses it would
  // log an outage and a recovery this test does not expect. A lagging write waits it out.
  config.wait_timeout = absl::Seconds(2);
  Client durable(io_.executor(), config);
  durable.Start();
  const Script incr("return redis.call('INCR', KEYS[1])", Script::Durability::kReplicated);
  const std::string key = KeyWithTag("durable", "n");
  auto first = Await(io_.executor(), durable.Eval(incr, {key}, {}));
  ASSERT_TRUE(first.ok()) << first.status();
  // Acknowledged means on the replica already.
  const std::vector<uint16_t> replicas = cluster_->ReplicasOf(MasterOf(key));
  ASSERT_EQ(replicas.size(), 1u);
  auto on_replica = cluster_->Commands(replicas[0], {{"READONLY"}, {"GET", key}});
  ASSERT_TRUE(on_replica.ok()) << on_replica.status();
  EXPECT_EQ(on_replica->back(), "1");

  // Without its replica the write is not acknowledged (it stays on the primary).
  ASSERT_TRUE(cluster_->KillNode(replicas[0]).ok());
  auto lagging = Await(io_.executor(), durable.Eval(incr, {key}, {}));
  EXPECT_EQ(lagging.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(lagging.status().message()), HasSubstr("0 of 1 replicas"));
  EXPECT_EQ(ReadOn(MasterOf(key), key), "2");
  // Scripts that need no replica are unaffected.
  const Script plain("return redis.call('INCR', KEYS[1])");
  auto primary_only = Await(io_.executor(), durable.Eval(plain, {key}, {}));
  ASSERT_TRUE(primary_only.ok()) << primary_only.status();
  EXPECT_EQ(primary_only->integer(), 3);

  // Another master keeps its replica, and its writes are acknowledged past the outage's first
  // second (when a success would end it): the lagging master's outage stays one line, not a
  // recovery and a new outage at each of its next writes.
  std::string elsewhere;
  for (int i = 0; elsewhere.empty(); ++i) {
    const std::string candidate = KeyWithTag(StrCat("other", i), "n");
    if (MasterOf(candidate) != MasterOf(key)) elsewhere = candidate;
  }
  const absl::Time failed = absl::Now();
  int acknowledged_after_settle = 0;
  while (acknowledged_after_settle < 3) {
    // A write that misses its replica on a loaded machine is not what this test is about.
    const bool acknowledged = Await(io_.executor(), durable.Eval(incr, {elsewhere}, {})).ok();
    if (acknowledged && absl::Now() - failed > log::Outage::kSettle) ++acknowledged_after_settle;
    ASSERT_LT(absl::Now() - failed, absl::Seconds(30)) << "no write acknowledged elsewhere";
  }
  lagging = Await(io_.executor(), durable.Eval(incr, {key}, {}));
  EXPECT_EQ(lagging.status().code(), absl::StatusCode::kUnavailable);
  logs.Stop();
  const std::string what = StrCat(R"("what":"acknowledged writes to 127.0.0.1:)", MasterOf(key));
  EXPECT_EQ(logs.Count(StrCat(R"("msg":"redis replicas unavailable",)", what, R"(")")), 1)
      << logs.All();
  EXPECT_EQ(logs.Count(StrCat(R"("msg":"redis replicas recovered",)", what, R"(")")), 0)
      << logs.All();
}

// A replicated write sent to the master its slot has left follows the slot with its WAIT: what
// is acknowledged is the new master's replication, not the old one's.
TEST_F(RedisClusterClientTest, AReplicatedScriptsWaitFollowsItsSlotToItsNewMaster) {
  ClientConfig config;
  config.cluster = true;
  config.address = {"127.0.0.1", cluster_->ports()[0]};
  config.wait_replicas = 1;
  config.wait_timeout = absl::Seconds(2);            // see ReplicatedScriptsWaitForTheirReplicas
  config.cluster_refresh_interval = absl::Hours(1);  // the slot's move is learnt from MOVED
  Client durable(io_.executor(), config);
  durable.Start();
  const Script incr("return redis.call('INCR', KEYS[1])", Script::Durability::kReplicated);
  const std::string key = KeyWithTag("following", "n");
  auto first = Await(io_.executor(), durable.Eval(incr, {key}, {}));
  ASSERT_TRUE(first.ok()) << first.status();  // the client maps the slot to its master now

  const uint16_t source = MasterOf(key);
  const uint16_t target = AnotherMaster(source);
  ASSERT_TRUE(cluster_->MoveSlot(cluster::KeySlot(key), target).ok());
  const std::vector<uint16_t> replicas = cluster_->ReplicasOf(target);
  ASSERT_EQ(replicas.size(), 1u);
  ASSERT_TRUE(cluster_->KillNode(replicas[0]).ok());
  // Loaded there already: the script runs on its first try (a NOSCRIPT would send it again).
  ASSERT_TRUE(cluster_->Command(target, {"SCRIPT", "LOAD", incr.source()}).ok());
  // The script goes to `source` first, which answers MOVED (and has its replica still).
  auto moved = Await(io_.executor(), durable.Eval(incr, {key}, {}));
  EXPECT_EQ(moved.status().code(), absl::StatusCode::kUnavailable) << moved.status();
  EXPECT_THAT(std::string(moved.status().message()), HasSubstr("0 of 1 replicas"));
  EXPECT_EQ(ReadOn(target, key), "2");
}

TEST(RedisClusterAuthTest, AuthenticatesOnEveryMaster) {
  auto cluster = RedisCluster::Start({.password = "cluster-secret"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  IoThreads io(1);
  ClientConfig config;
  config.cluster = true;
  config.address = {"127.0.0.1", (*cluster)->ports()[0]};
  config.password = "cluster-secret";
  Client client(io.executor(), config);
  client.Start();
  std::set<uint16_t> masters;
  for (int i = 0; i < 30; ++i) {
    const std::string key = StrCat("auth:", i);
    auto set = Await(io.executor(), client.Exec(Command{"SET", key, i}));
    ASSERT_TRUE(set.ok()) << set.status();
    masters.insert((*cluster)->MasterPortOf(cluster::KeySlot(key)).value_or(0));
  }
  EXPECT_EQ(masters.size(), 3u);
  EXPECT_TRUE(client.connected());

  config.password = "wrong";
  Client refused(io.executor(), config);
  refused.Start();
  auto r = Await(io.executor(), refused.Exec(Command{"GET", "auth:1"}, absl::Seconds(2)));
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(refused.connected());
}

TEST_F(RedisClusterClientTest, RecoversFromAFailoverOnItsOwn) {
  const std::string key = KeyWithTag("failover", "counter");
  const Script incr("return redis.call('INCR', KEYS[1])");
  ASSERT_TRUE(Eval(incr, {key}, {}).ok());
  const uint16_t master = MasterOf(key);
  // WAIT counts the replicas that have the writes of its own connection: one more INCR and
  // the WAIT go to the key's master on one connection.
  auto replicated = cluster_->Commands(master, {{"INCR", key}, {"WAIT", "1", "5000"}});
  ASSERT_TRUE(replicated.ok()) << replicated.status();
  ASSERT_EQ(*replicated, (std::vector<std::string>{"2", "1"}));

  ASSERT_TRUE(cluster_->KillNode(master).ok());
  // Readiness names the master that is gone.
  ASSERT_TRUE(testing::WaitFor([&] { return !client_->connected(); }, absl::Seconds(10)));
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_FALSE(reports_.empty());
    EXPECT_THAT(std::string(reports_.back().message()), HasSubstr(StrCat(":", master)));
  }
  // A command issued now waits (within its deadline) for the replica's promotion and runs
  // there; the promoted replica has never run the script (NOSCRIPT, then EVAL).
  auto during = Eval(incr, {key}, {});
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->integer(), 3);
  auto promoted = cluster_->WaitForFailover(master);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_EQ(ReadOn(*promoted, key), "3");
  ASSERT_TRUE(testing::WaitFor([&] { return client_->connected(); }, absl::Seconds(15)));

  // The old master comes back as a replica; the client keeps writing to the new one.
  ASSERT_TRUE(cluster_->RestartNode(master).ok());
  auto after = Eval(incr, {key}, {});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->integer(), 4);
}

}  // namespace
}  // namespace herald::redis
