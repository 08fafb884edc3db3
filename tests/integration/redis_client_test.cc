// herald::redis::Client against a real redis-server: pipelining under concurrency, reconnects,
// deadlines, scripts, AUTH, shutdown, cancellation, connectivity and metrics.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <numeric>
#include <optional>
#include <sstream>
#include <thread>

#include <absl/strings/match.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/redis/client.h>
#include <herald/testing/net.h>
#include <herald/testing/promtool.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/wait.h>

namespace herald::redis {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;
using testing::RedisServer;
using testing::WaitFor;

// An io_context run by `n` threads until destroyed.
class IoThreads {
 public:
  explicit IoThreads(int n) : guard_(asio::make_work_guard(ioc_)) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~IoThreads() {
    guard_.reset();  // run() returns once the clients' connections have closed
    for (auto& t : threads_) t.join();
  }
  asio::any_io_executor executor() { return ioc_.get_executor(); }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

// Runs `op` on `executor` and waits for its result.
template <typename T>
T Await(asio::any_io_executor executor, asio::awaitable<T> op) {
  std::future<T> result = asio::co_spawn(executor, std::move(op), asio::use_future);
  if (result.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "operation did not complete within 30s";
    std::abort();  // the operation still refers to the test's objects
  }
  return result.get();
}

// A TCP server that accepts connections and never answers.
class SilentServer {
 public:
  SilentServer() : acceptor_(ioc_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~SilentServer() {
    ioc_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      sockets_.push_back(std::move(socket));
      Accept();
    });
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<tcp::socket> sockets_;
  std::thread thread_;
};

// A client's connectivity reports, in order (they arrive on its connections' strands). Declared
// before the client it watches, so that it outlives the client's last report.
class ConnectivityLog {
 public:
  void Watch(Client& client) {
    client.OnConnectivityChange([this](absl::Status s) {
      std::lock_guard<std::mutex> lock(mu_);
      reports_.push_back(std::move(s));
    });
  }
  std::optional<absl::Status> first() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (reports_.empty()) return std::nullopt;
    return reports_.front();
  }
  std::optional<absl::Status> last() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (reports_.empty()) return std::nullopt;
    return reports_.back();
  }

 private:
  mutable std::mutex mu_;
  std::vector<absl::Status> reports_;
};

// The value of one series (`name{labels}` exactly as exposed), or -1 if absent.
double MetricValue(const metrics::Registry& registry, std::string_view series) {
  const std::string text = registry.Serialize();
  for (std::string_view line : StrSplit(text, '\n')) {
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      return std::stod(std::string(line.substr(series.size() + 1)));
    }
  }
  return -1;
}

// A reply's text, or its status when the command failed (so that a failure reads as a
// mismatch, not a crash).
std::string Text(const absl::StatusOr<Reply>& reply) {
  if (!reply.ok()) return reply.status().ToString();
  return std::string(reply->str());
}

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override { StartRedis({}); }

  void StartRedis(RedisServer::Options options) {
    auto redis = RedisServer::Start(std::move(options));
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
  }

  ClientConfig Config() const {
    ClientConfig config;
    config.address = {"127.0.0.1", redis_->port()};
    config.reconnect_backoff_min = absl::Milliseconds(10);
    config.reconnect_backoff_max = absl::Milliseconds(100);
    return config;
  }

  absl::StatusOr<Reply> Exec(Client& client, Command command,
                             std::optional<absl::Duration> timeout = std::nullopt) {
    return Await(io_.executor(), client.Exec(std::move(command), timeout));
  }

  // True once redis reports `n` clients blocked in a blocking command.
  bool BlockedClients(int n) {
    auto info = redis_->Command({"INFO", "clients"});
    return info.ok() && info->find(StrCat("blocked_clients:", n, "\r")) != std::string::npos;
  }

  // Declared in this order so that clients (test locals) die first, then the io threads drain,
  // then the registry and the server go.
  std::unique_ptr<RedisServer> redis_;
  metrics::Registry registry_;
  IoThreads io_{2};
};

// One of many concurrent users: SETs and GETs keys of its own (so every reply is checkable),
// INCRs a shared counter, and sometimes uses a batch.
asio::awaitable<void> Worker(Client& client, int worker, int iterations,
                             std::vector<int64_t>& increments, std::atomic<int>& wrong) {
  for (int i = 0; i < iterations; ++i) {
    const std::string key = StrCat("w", worker, ":", i % 8);
    const std::string value = StrCat("value-", worker, "-", i);
    if (i % 10 == 9) {
      // Built before the co_await: g++ 12 miscompiles a braced list of commands inside one.
      std::vector<Command> batch;
      batch.push_back(Command{"SET", key, value});
      batch.push_back(Command{"INCR", "counter"});
      batch.push_back(Command{"GET", key});
      auto replies = co_await client.ExecBatch(std::move(batch));
      if (!replies.ok() || replies->size() != 3 || (*replies)[0].str() != "OK" ||
          (*replies)[1].type() != Reply::Type::kInteger || (*replies)[2].str() != value) {
        ++wrong;
        continue;
      }
      increments.push_back((*replies)[1].integer());
      continue;
    }
    absl::StatusOr<Reply> set = co_await client.Exec({"SET", key, value});
    if (!set.ok() || set->str() != "OK") ++wrong;
    absl::StatusOr<Reply> incr = co_await client.Exec({"INCR", "counter"});
    if (!incr.ok() || incr->type() != Reply::Type::kInteger) {
      ++wrong;
    } else {
      increments.push_back(incr->integer());
    }
    absl::StatusOr<Reply> get = co_await client.Exec({"GET", key});
    if (!get.ok() || get->str() != value) ++wrong;
  }
}

TEST_F(RedisClientTest, PipelinesConcurrentCommandsWithEveryReplyMatched) {
  Client client(io_.executor(), Config(), &registry_);
  client.Start();
  constexpr int kWorkers = 50;
  constexpr int kIterations = 1000;
  std::vector<std::vector<int64_t>> increments(kWorkers);
  std::atomic<int> wrong{0};
  std::atomic<int> finished{0};
  const absl::Time start = absl::Now();
  for (int w = 0; w < kWorkers; ++w) {
    asio::co_spawn(io_.executor(), Worker(client, w, kIterations, increments[w], wrong),
                   [&finished](std::exception_ptr e) {
                     if (e) std::rethrow_exception(e);
                     ++finished;
                   });
  }
  ASSERT_TRUE(WaitFor([&] { return finished.load() == kWorkers; }, absl::Seconds(60)));
  const absl::Duration elapsed = absl::Now() - start;
  const int commands = kWorkers * kIterations * 3;
  std::printf("%d commands from %d coroutines in %s (%.0f commands/s)\n", commands, kWorkers,
              absl::FormatDuration(elapsed).c_str(), commands / absl::ToDoubleSeconds(elapsed));

  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(*redis_->Command({"GET", "counter"}), StrCat(kWorkers * kIterations));
  // Every INCR reply is distinct and they cover 1..N: no reply was lost, duplicated or given to
  // the wrong command. Each worker saw its own increments in increasing order.
  std::vector<int64_t> all;
  for (const auto& v : increments) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(all.end(), v.begin(), v.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(kWorkers * kIterations);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(all, expected);
  EXPECT_EQ(MetricValue(registry_, R"(herald_redis_commands_total{outcome="ok"})"), commands);
}

// connected_clients of the server's INFO; -1 when it cannot be read.
int ConnectedClients(RedisServer& redis) {
  auto info = redis.Command({"INFO", "clients"});
  if (!info.ok()) return -1;
  const size_t at = info->find("connected_clients:");
  if (at == std::string::npos) return -1;
  return std::atoi(info->c_str() + at + std::string_view("connected_clients:").size());
}

TEST_F(RedisClientTest, CloseEndsEveryConnectionAndLaterCommandsAreCancelled) {
  const int before = ConnectedClients(*redis_);
  ASSERT_GE(before, 0);
  ClientConfig config = Config();
  config.connections = 3;
  Client client(io_.executor(), config, &registry_);
  client.Start();
  ASSERT_TRUE(Exec(client, {"PING"}).ok());
  ASSERT_TRUE(WaitFor([&] { return ConnectedClients(*redis_) == before + 3; }, absl::Seconds(10)));

  Await(io_.executor(), client.Close());
  EXPECT_FALSE(client.connected());
  EXPECT_EQ(Exec(client, {"PING"}).status().code(), absl::StatusCode::kCancelled);
  // Every socket was closed by the time Close() completed; the server notices soon after.
  EXPECT_TRUE(WaitFor([&] { return ConnectedClients(*redis_) == before; }, absl::Seconds(10)))
      << ConnectedClients(*redis_) << " clients, " << before << " before";
  Await(io_.executor(), client.Close());  // idempotent
}

TEST_F(RedisClientTest, ErrorRepliesBecomeStatuses) {
  Client client(io_.executor(), Config());
  client.Start();
  ASSERT_TRUE(Exec(client, {"SET", "s", "text"}).ok());
  absl::StatusOr<Reply> wrong_type = Exec(client, {"HGET", "s", "f"});
  EXPECT_EQ(wrong_type.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(wrong_type.status().message()), HasSubstr("WRONGTYPE"));
  absl::StatusOr<Reply> unknown = Exec(client, {"NOSUCHCOMMAND"});
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("unknown command"));
  EXPECT_EQ(Exec(client, Command()).status().code(), absl::StatusCode::kInvalidArgument);
  // The connection is still in step after errors.
  EXPECT_EQ(Text(Exec(client, {"GET", "s"})), "text");
  absl::StatusOr<Reply> missing = Exec(client, {"GET", "missing"});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_TRUE(missing->is_nil());
}

TEST_F(RedisClientTest, ExecBatchKeepsOrderAndPerElementErrors) {
  Client client(io_.executor(), Config());
  client.Start();
  absl::StatusOr<std::vector<Reply>> replies =
      Await(io_.executor(),
            client.ExecBatch({Command{"SET", "b", "1"}, Command{"INCR", "b"},
                              Command{"HSET", "b", "f", "v"}, Command{"GET", "b"},
                              Command{"RPUSH", "l", "x", "y"}, Command{"LRANGE", "l", "0", "-1"},
                              Command{"GET", "nothing"}}));
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 7u);
  EXPECT_EQ((*replies)[0], Reply::Status("OK"));
  EXPECT_EQ((*replies)[1], Reply::Integer(2));
  EXPECT_TRUE((*replies)[2].is_error());
  EXPECT_THAT(std::string((*replies)[2].str()), HasSubstr("WRONGTYPE"));
  EXPECT_EQ((*replies)[3], Reply::String("2"));
  EXPECT_EQ((*replies)[4], Reply::Integer(2));
  EXPECT_EQ((*replies)[5].DebugString(), R"(["x", "y"])");
  EXPECT_TRUE((*replies)[6].is_nil());

  absl::StatusOr<std::vector<Reply>> one =
      Await(io_.executor(), client.ExecBatch({Command{"GET", "b"}}));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  EXPECT_EQ(one->at(0), Reply::String("2"));

  absl::StatusOr<std::vector<Reply>> none = Await(io_.executor(), client.ExecBatch({}));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  EXPECT_EQ(Await(io_.executor(), client.ExecBatch({Command{"PING"}, Command()})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RedisClientTest, ReconnectsAfterTheServerRestarts) {
  Client client(io_.executor(), Config(), &registry_);
  client.Start();
  ASSERT_TRUE(Exec(client, {"SET", "k", "v"}).ok());
  EXPECT_TRUE(client.connected());

  ASSERT_TRUE(redis_->Stop().ok());
  // Commands fail with kUnavailable (never hang, never another code) while Redis is down.
  ASSERT_TRUE(WaitFor([&] { return !client.connected(); }));
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<Reply> r = Exec(client, {"PING"});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  }

  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return Exec(client, {"PING"}).ok(); }));
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(Text(Exec(client, {"SET", "k", "again"})), "OK");
  EXPECT_EQ(Text(Exec(client, {"GET", "k"})), "again");
  EXPECT_GT(MetricValue(registry_, "herald_redis_reconnects_total"), 0);
  EXPECT_GT(MetricValue(registry_, R"(herald_redis_commands_total{outcome="unavailable"})"), 0);
}

// A server demoted to a replica behind the same address (a managed Redis's failover flips its
// DNS name) answers writes READONLY: the connection that heard it is replaced, so a new one
// resolves the address again, instead of refusing every write for good.
TEST_F(RedisClientTest, AConnectionAnsweredReadOnlyIsReplaced) {
  auto primary = RedisServer::Start();
  ASSERT_TRUE(primary.ok()) << primary.status();
  ClientConfig config = Config();
  config.connections = 1;
  Client client(io_.executor(), config, &registry_);
  std::mutex mu;
  std::string reported;  // the latest connectivity report
  client.OnConnectivityChange([&](const absl::Status& status) {
    std::lock_guard lock(mu);
    reported = std::string(status.message());
  });
  client.Start();
  ASSERT_TRUE(Exec(client, {"SET", "k", "v"}).ok());
  const double before = MetricValue(registry_, "herald_redis_reconnects_total");

  ASSERT_EQ(*redis_->Command({"REPLICAOF", "127.0.0.1", StrCat((*primary)->port())}), "OK");
  absl::StatusOr<Reply> refused = Exec(client, {"SET", "k", "w"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("READONLY"));
  ASSERT_TRUE(
      WaitFor([&] { return MetricValue(registry_, "herald_redis_reconnects_total") > before; }));
  // While the address still leads to the replica, no connection counts as up (reported, and
  // backing off), rather than one made and dropped at every write.
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return !client.connected() && absl::StrContains(reported, "replica");
  })) << reported;

  ASSERT_EQ(*redis_->Command({"REPLICAOF", "NO", "ONE"}), "OK");
  ASSERT_TRUE(WaitFor([&] { return Exec(client, {"SET", "k", "x"}).ok(); }));
  EXPECT_EQ(Text(Exec(client, {"GET", "k"})), "x");
}

TEST_F(RedisClientTest, DeadlineExpiresAndTheLateReplyIsDiscarded) {
  ClientConfig config = Config();
  config.connections = 1;
  Client client(io_.executor(), config, &registry_);
  client.Start();
  for (const char* k : {"a", "b", "c"}) ASSERT_TRUE(Exec(client, {"SET", k, StrCat("v", k)}).ok());

  // Redis holds every command for 500ms.
  ASSERT_EQ(*redis_->Command({"CLIENT", "PAUSE", "500"}), "OK");
  const absl::Time start = absl::Now();
  absl::StatusOr<Reply> late = Exec(client, {"GET", "a"}, absl::Milliseconds(100));
  const absl::Duration waited = absl::Now() - start;
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  EXPECT_GE(waited, absl::Milliseconds(100));
  EXPECT_LT(waited, absl::Milliseconds(400));

  // The reply to GET a arrives first, after the pause; these must get their own.
  EXPECT_EQ(Text(Exec(client, {"GET", "b"})), "vb");
  EXPECT_EQ(Text(Exec(client, {"GET", "c"})), "vc");
  EXPECT_EQ(MetricValue(registry_, R"(herald_redis_commands_total{outcome="timeout"})"), 1);
}

TEST_F(RedisClientTest, EachCommandHasItsOwnDeadline) {
  ClientConfig config = Config();
  config.connections = 1;
  Client client(io_.executor(), config);
  client.Start();
  ASSERT_TRUE(Exec(client, {"PING"}).ok());
  // Redis holds every command, and answers none, for longer than either deadline.
  ASSERT_EQ(*redis_->Command({"CLIENT", "PAUSE", "3000", "ALL"}), "OK");

  // Issued in this order on one strand: the short deadline comes second and must not wait for
  // the long one.
  auto strand = asio::make_strand(io_.executor());
  const absl::Time start = absl::Now();
  auto slow =
      asio::co_spawn(strand, client.Exec({"PING"}, absl::Milliseconds(800)), asio::use_future);
  auto fast =
      asio::co_spawn(strand, client.Exec({"PING"}, absl::Milliseconds(100)), asio::use_future);
  ASSERT_EQ(fast.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  const absl::Duration fast_waited = absl::Now() - start;
  EXPECT_NE(slow.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(fast.get().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(fast_waited, absl::Milliseconds(600));
  ASSERT_EQ(slow.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(slow.get().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(800));
}

TEST_F(RedisClientTest, ConnectTimeoutFailsWaitingCommands) {
  SilentServer silent;  // accepts, never answers AUTH
  ClientConfig config = Config();
  config.address.port = silent.port();
  config.password = "pw";
  config.connect_timeout = absl::Milliseconds(200);
  Client client(io_.executor(), config);
  client.Start();
  const absl::Time start = absl::Now();
  absl::StatusOr<Reply> r = Exec(client, {"PING"}, absl::Seconds(5));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("timed out"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_FALSE(client.connected());
}

TEST_F(RedisClientTest, UnavailableWhenNothingListens) {
  ClientConfig config = Config();
  config.address.port = testing::PickFreePort();
  Client client(io_.executor(), config);
  client.Start();
  const absl::Time start = absl::Now();
  absl::StatusOr<Reply> r = Exec(client, {"PING"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("refused"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(RedisClientTest, ReplicatedScriptsFailWhenTooFewReplicasAcknowledge) {
  // A server without replicas: WAIT 1 answers 0 once its timeout passes.
  ClientConfig config = Config();
  config.wait_replicas = 1;
  config.wait_timeout = absl::Milliseconds(20);
  Client client(io_.executor(), config, &registry_);
  client.Start();
  const Script incr("return redis.call('INCR', KEYS[1])", Script::Durability::kReplicated);
  absl::StatusOr<Reply> r = Await(io_.executor(), client.Eval(incr, {"durable"}, {}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("0 of 1 replicas"));
  EXPECT_EQ(*redis_->Command({"GET", "durable"}), "1");  // on the primary all the same
  // A server without the script gets it with EVAL (here twice: first use, after SCRIPT FLUSH),
  // still followed by WAIT.
  ASSERT_EQ(*redis_->Command({"SCRIPT", "FLUSH"}), "OK");
  r = Await(io_.executor(), client.Eval(incr, {"durable"}, {}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*redis_->Command({"GET", "durable"}), "2");
  EXPECT_THAT(*redis_->Command({"INFO", "commandstats"}), HasSubstr("cmdstat_eval:calls=2"));
  // Each is counted, for the alert on writes no replica acknowledges.
  EXPECT_EQ(MetricValue(registry_, "herald_redis_unreplicated_writes_total"), 2);
  // A script's own error is reported as such.
  const Script failing("return redis.error_reply('ERR refused')", Script::Durability::kReplicated);
  r = Await(io_.executor(), client.Eval(failing, {"durable"}, {}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  // Scripts that need no replica are acknowledged by the primary.
  const Script plain("return redis.call('INCR', KEYS[1])");
  r = Await(io_.executor(), client.Eval(plain, {"durable"}, {}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer(), 3);
}

TEST_F(RedisClientTest, EvalReloadsTheScriptAfterNoscript) {
  Client client(io_.executor(), Config());
  client.Start();
  const Script script("return ARGV[1] .. redis.call('GET', KEYS[1])");
  ASSERT_TRUE(Exec(client, {"SET", "k", "world"}).ok());

  absl::StatusOr<Reply> first = Await(io_.executor(), client.Eval(script, {"k"}, {"hello "}));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->str(), "hello world");
  EXPECT_EQ(*redis_->Command({"SCRIPT", "EXISTS", script.sha1()}), "1");

  ASSERT_EQ(*redis_->Command({"SCRIPT", "FLUSH"}), "OK");
  absl::StatusOr<Reply> again = Await(io_.executor(), client.Eval(script, {"k"}, {"bye "}));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->str(), "bye world");
  EXPECT_EQ(Text(Await(io_.executor(), client.Eval(script, {"k"}, {"x "}))), "x world");

  // By SHA, never by sending the source with EVAL.
  const std::string stats = *redis_->Command({"INFO", "commandstats"});
  EXPECT_THAT(stats, HasSubstr("cmdstat_evalsha:calls="));
  EXPECT_THAT(stats, ::testing::Not(HasSubstr("cmdstat_eval:")));

  const Script failing("return redis.error_reply('quota exceeded')");
  absl::StatusOr<Reply> error = Await(io_.executor(), client.Eval(failing, {}, {}));
  EXPECT_EQ(error.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(error.status().message()), HasSubstr("quota exceeded"));
  const Script broken("this is not lua");
  EXPECT_FALSE(Await(io_.executor(), client.Eval(broken, {}, {})).ok());
  EXPECT_EQ(Text(Exec(client, {"GET", "k"})), "world");
}

TEST_F(RedisClientTest, EvalRefusesKeysOfDifferentHashSlotsBeforeSending) {
  Client client(io_.executor(), Config());
  client.Start();
  const Script script("return redis.call('SET', KEYS[1], ARGV[1])");
  absl::StatusOr<Reply> refused =
      Await(io_.executor(), client.Eval(script, {"{t:a}:x", "{t:b}:y"}, {"1"}));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("'{t:b}:y'"));
  EXPECT_EQ(*redis_->Command({"EXISTS", "{t:a}:x"}), "0");
  EXPECT_THAT(*redis_->Command({"INFO", "commandstats"}),
              ::testing::Not(HasSubstr("cmdstat_evalsha:")));
  // One hash tag: accepted.
  EXPECT_TRUE(Await(io_.executor(), client.Eval(script, {"{t:a}:x", "{t:a}:y"}, {"1"})).ok());
  EXPECT_EQ(*redis_->Command({"GET", "{t:a}:x"}), "1");
}

// A Redis that holds the connection but answers nothing (hung; here CLIENT PAUSE): the first
// command whose deadline passes reports the client unavailable, though its connections stand,
// and the next reply reports it available again.
TEST_F(RedisClientTest, AServerThatStopsAnsweringIsReportedUntilItAnswersAgain) {
  ConnectivityLog log;
  Client client(io_.executor(), Config());
  log.Watch(client);
  client.Start();
  ASSERT_TRUE(Exec(client, {"PING"}).ok());
  EXPECT_FALSE(client.stalled());
  ASSERT_EQ(*redis_->Command({"CLIENT", "PAUSE", "1500", "ALL"}), "OK");

  absl::StatusOr<Reply> r = Exec(client, {"GET", "k"}, absl::Milliseconds(200));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(client.stalled());
  EXPECT_TRUE(client.connected());
  ASSERT_TRUE(log.last().has_value());
  EXPECT_EQ(log.last()->code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(log.last()->message()), HasSubstr("no reply since"));

  // Paused clients get their replies once the pause ends.
  ASSERT_TRUE(Exec(client, {"PING"}, absl::Seconds(10)).ok());
  EXPECT_FALSE(client.stalled());
  EXPECT_TRUE(log.last()->ok()) << *log.last();
}

// How many of this host's established TCP connections to `port` (IPv4, /proc/net/tcp) have their
// keepalive timer running.
int ConnectionsProbedByKeepalive(uint16_t port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // the header
  int probed = 0;
  while (std::getline(table, line)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when ...
    std::istringstream fields(line);
    std::string sl, local, remote, state, queues, timer;
    if (!(fields >> sl >> local >> remote >> state >> queues >> timer)) continue;
    const size_t colon = remote.find(':');
    if (colon == std::string::npos || state != "01") continue;  // 01: established
    if (std::stoul(remote.substr(colon + 1), nullptr, 16) != port) continue;
    if (timer.starts_with("02:")) ++probed;  // 2: the keepalive timer
  }
  return probed;
}

// A server that vanishes without a reset is noticed by TCP keepalive (and unacknowledged writes
// time out), so the connection ends and reconnects instead of waiting out the kernel's
// retransmissions.
TEST_F(RedisClientTest, ConnectionsAreProbedByKeepalive) {
  const int before = ConnectionsProbedByKeepalive(redis_->port());
  ClientConfig config = Config();
  config.connections = 2;
  Client client(io_.executor(), config);
  client.Start();
  ASSERT_TRUE(Exec(client, {"PING"}).ok());
  EXPECT_TRUE(WaitFor([&] { return ConnectionsProbedByKeepalive(redis_->port()) == before + 2; },
                      absl::Seconds(10)))
      << ConnectionsProbedByKeepalive(redis_->port()) << " probed, " << before << " before";
}

class RedisClientAuthTest : public RedisClientTest {
 protected:
  void SetUp() override { StartRedis({.password = "s3cret"}); }
};

TEST_F(RedisClientAuthTest, AuthenticatesOnConnect) {
  ClientConfig config = Config();
  config.password = "s3cret";
  Client client(io_.executor(), config);
  client.Start();
  EXPECT_EQ(Text(Exec(client, {"PING"})), "PONG");
  EXPECT_EQ(Text(Exec(client, {"ACL", "WHOAMI"})), "default");
}

TEST_F(RedisClientAuthTest, AuthenticatesAsAnAclUser) {
  ASSERT_EQ(*redis_->Command({"ACL", "SETUSER", "herald", "on", ">hpw", "~*", "&*", "+@all"}),
            "OK");
  ClientConfig config = Config();
  config.username = "herald";
  config.password = "hpw";
  Client client(io_.executor(), config);
  client.Start();
  EXPECT_EQ(Text(Exec(client, {"ACL", "WHOAMI"})), "herald");
}

TEST_F(RedisClientAuthTest, WrongPasswordFailsClearlyAndFast) {
  ClientConfig config = Config();
  config.password = "wrong";
  ConnectivityLog log;
  Client client(io_.executor(), config);
  log.Watch(client);
  client.Start();
  const absl::Time start = absl::Now();
  absl::StatusOr<Reply> r = Exec(client, {"PING"});
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("AUTH refused: WRONGPASS"));
  EXPECT_FALSE(client.connected());
  ASSERT_TRUE(WaitFor([&] { return log.first().has_value(); }));
  EXPECT_EQ(log.first()->code(), absl::StatusCode::kUnauthenticated);
}

// A server that wants a password Herald was not given: the connect fails and says why, so
// readiness (which follows the connectivity reports) is not-ready rather than ready with every
// command refused.
TEST_F(RedisClientAuthTest, MissingPasswordFailsTheConnect) {
  ConnectivityLog log;
  Client client(io_.executor(), Config());
  log.Watch(client);
  client.Start();
  absl::StatusOr<Reply> r = Exec(client, {"GET", "k"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("PING refused: NOAUTH"));
  EXPECT_FALSE(client.connected());
  ASSERT_TRUE(WaitFor([&] { return log.first().has_value(); }));
  EXPECT_EQ(log.first()->code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(log.first()->message()), HasSubstr("NOAUTH"));
}

TEST_F(RedisClientTest, StopCancelsPendingCommands) {
  ClientConfig config = Config();
  config.connections = 1;
  Client client(io_.executor(), config, &registry_);
  client.Start();
  ASSERT_TRUE(Exec(client, {"PING"}).ok());

  // The first BLPOP blocks the connection in Redis; the others wait behind it.
  constexpr int kPending = 5;
  std::vector<std::future<absl::StatusOr<Reply>>> pending;
  for (int i = 0; i < kPending; ++i) {
    pending.push_back(asio::co_spawn(io_.executor(),
                                     client.Exec({"BLPOP", "nothing", "0"}, absl::Seconds(60)),
                                     asio::use_future));
  }
  ASSERT_TRUE(WaitFor([&] { return BlockedClients(1); }));

  const absl::Time start = absl::Now();
  client.Stop();
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_EQ(f.get().status().code(), absl::StatusCode::kCancelled);
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(Exec(client, {"PING"}).status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(WaitFor([&] { return !client.connected(); }));
  EXPECT_TRUE(WaitFor([&] { return BlockedClients(0); }));  // the connection was closed
  EXPECT_EQ(MetricValue(registry_, R"(herald_redis_commands_total{outcome="cancelled"})"),
            kPending + 1);
}

TEST_F(RedisClientTest, CancellingTheAwaitAbandonsTheCommand) {
  ClientConfig config = Config();
  config.connections = 1;
  Client client(io_.executor(), config);
  client.Start();
  ASSERT_TRUE(Exec(client, {"SET", "k", "v"}).ok());

  auto strand = asio::make_strand(io_.executor());
  asio::cancellation_signal signal;
  auto blocked = asio::co_spawn(strand, client.Exec({"BLPOP", "nothing", "1"}),
                                asio::bind_cancellation_slot(signal.slot(), asio::use_future));
  ASSERT_TRUE(WaitFor([&] { return BlockedClients(1); }));
  asio::post(strand, [&signal] { signal.emit(asio::cancellation_type::terminal); });
  ASSERT_EQ(blocked.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  absl::StatusOr<Reply> cancelled = blocked.get();
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(BlockedClients(1));  // cancelled before Redis answered
  // When BLPOP times out in Redis, its nil reply is skipped; GET gets its own reply.
  EXPECT_EQ(Text(Exec(client, {"GET", "k"})), "v");
}

TEST_F(RedisClientTest, ConnectivityIsReported) {
  ConnectivityLog log;
  Client client(io_.executor(), Config(), &registry_);
  log.Watch(client);
  const auto last = [&] { return log.last(); };
  EXPECT_FALSE(client.connected());
  client.Start();
  ASSERT_TRUE(WaitFor([&] { return client.connected() && last().has_value() && last()->ok(); }));
  ASSERT_TRUE(WaitFor([&] { return MetricValue(registry_, "herald_redis_connections") == 2; }));

  ASSERT_TRUE(redis_->Stop().ok());
  ASSERT_TRUE(WaitFor([&] { return !client.connected() && last().has_value() && !last()->ok(); }));
  EXPECT_EQ(last()->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(MetricValue(registry_, "herald_redis_connections"), 0);

  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return client.connected() && last()->ok(); }));
  client.Stop();
  EXPECT_TRUE(WaitFor(
      [&] { return !client.connected() && last()->code() == absl::StatusCode::kCancelled; }));
}

TEST_F(RedisClientTest, CommandsIssuedBeforeStartWaitForTheConnection) {
  Client client(io_.executor(), Config());
  auto early = asio::co_spawn(io_.executor(), client.Exec({"PING"}), asio::use_future);
  EXPECT_NE(early.wait_for(std::chrono::milliseconds(0)), std::future_status::ready);
  client.Start();
  ASSERT_EQ(early.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  absl::StatusOr<Reply> r = early.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str(), "PONG");
}

TEST_F(RedisClientTest, MetricsPassPromtool) {
  Client client(io_.executor(), Config(), &registry_);
  client.Start();
  ASSERT_TRUE(Exec(client, {"SET", "k", "v"}).ok());
  ASSERT_FALSE(Exec(client, {"HGET", "k", "f"}).ok());
  EXPECT_EQ(MetricValue(registry_, R"(herald_redis_commands_total{outcome="ok"})"), 1);
  EXPECT_EQ(MetricValue(registry_, R"(herald_redis_commands_total{outcome="error_reply"})"), 1);
  EXPECT_EQ(MetricValue(registry_, "herald_redis_command_duration_seconds_count"), 2);
  EXPECT_TRUE(testing::PromtoolCheckMetrics(registry_.Serialize()).ok());
}

}  // namespace
}  // namespace herald::redis
