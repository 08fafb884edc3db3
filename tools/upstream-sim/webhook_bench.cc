// Webhook emission throughput: the simulator (in-process, its own threads) delivers one mass
// message to every fan of an account with webhooks on, to a minimal keep-alive receiver in the
// same process, and the signed events per second that reach the receiver are reported.
//
//   webhook_bench --fans=250000 --concurrency=64 --sim_threads=2 --receiver_threads=1
#include <atomic>
#include <cstdio>
#include <thread>

#include <absl/flags/flag.h>
#include <absl/flags/parse.h>
#include <absl/time/clock.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/upstream_sim/operations.h>
#include <herald/upstream_sim/simulator.h>

ABSL_FLAG(int, fans, 250'000, "Fans of the account (about 80% are active recipients).");
ABSL_FLAG(int, concurrency, 64, "Webhook connections.");
ABSL_FLAG(int, sim_threads, 2, "Simulator threads.");
ABSL_FLAG(int, receiver_threads, 1, "Receiver threads.");

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace sim = herald::upstream_sim;
using tcp = asio::ip::tcp;
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

// Answers 200 to every request on keep-alive connections and counts them.
class Receiver {
 public:
  explicit Receiver(int threads)
      : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, Accept(), asio::detached);
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~Receiver() {
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int64_t count() const { return count_.load(); }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kToken);
      if (ec) co_return;
      asio::co_spawn(io_, Session(std::move(socket)), asio::detached);
    }
  }
  asio::awaitable<void> Session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    http::response<http::empty_body> res(http::status::ok, 11);
    res.keep_alive(true);
    res.prepare_payload();
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(stream, buffer, req, kToken);
      if (ec) break;
      count_.fetch_add(1, std::memory_order_relaxed);
      auto [wec, w] = co_await http::async_write(stream, res, kToken);
      if (wec) break;
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> count_{0};
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  herald::log::Configure({.min_level = herald::log::Level::kWarn});
  Receiver receiver(absl::GetFlag(FLAGS_receiver_threads));

  sim::SimulatorOptions options;
  options.listen = {"127.0.0.1", 0};
  options.threads = absl::GetFlag(FLAGS_sim_threads);
  options.seed = sim::MakeQuickSeed(
      {.teams = 1, .accounts_per_team = 1, .fans_per_account = absl::GetFlag(FLAGS_fans)});
  options.behavior.delivery_rate = 1e12;
  options.webhook_policy.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.webhook_policy.max_backlog = 10'000'000;
  options.webhooks = {{.url = herald::StrCat("http://127.0.0.1:", receiver.port(), "/hooks"),
                       .secret = "bench-secret"}};
  sim::Simulator simulator(options);
  if (absl::Status s = simulator.Start(); !s.ok()) {
    std::fprintf(stderr, "cannot start: %s\n", s.ToString().c_str());
    return 1;
  }
  std::shared_ptr<sim::World> world = simulator.state().world();
  sim::Account& account = *world->accounts()[0];
  sim::MassMessageRequest request;
  request.text = "benchmark";
  request.user_lists = std::vector<std::string>{"fans"};
  int64_t recipients = 0;
  const absl::Time start = absl::Now();
  {
    absl::MutexLock lock(&account.mu);
    auto m = sim::SendMassMessage(*world, account, request, absl::Now());
    if (!m.ok()) return 1;
    recipients = static_cast<int64_t>(m.value()->recipients.size());
  }
  // messages.sent per recipient, plus chat_queue.updated and chat_queue.finished.
  const int64_t expected = recipients + 2;
  while (receiver.count() < expected && absl::Now() - start < absl::Minutes(5)) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const auto& totals = simulator.webhooks().totals();
  int64_t failures = 0, dropped = 0;
  for (const auto& t : totals) {
    failures += t.failures.load();
    dropped += t.dropped.load();
  }
  std::printf(
      "webhook events delivered: %lld of %lld in %.3f s = %.0f events/s "
      "(concurrency %d, sim threads %d, receiver threads %d, failures %lld, dropped %lld)\n",
      static_cast<long long>(receiver.count()), static_cast<long long>(expected), seconds,
      static_cast<double>(receiver.count()) / seconds, absl::GetFlag(FLAGS_concurrency),
      absl::GetFlag(FLAGS_sim_threads), absl::GetFlag(FLAGS_receiver_threads),
      static_cast<long long>(failures), static_cast<long long>(dropped));
  simulator.Stop();
  return receiver.count() >= expected ? 0 : 1;
}
