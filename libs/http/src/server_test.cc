// The server over real sockets on 127.0.0.1: the server's io_context runs on two background
// threads, the test drives blocking clients whose every wait is bounded.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <absl/time/clock.h>
#include <absl/time/time.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/http/server.h>

namespace herald::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using ClientResponse = bhttp::response<bhttp::string_body>;

// A blocking client for one connection. Every wait is bounded: a read that gets nothing within
// its timeout reports timed_out.
class Client {
 public:
  explicit Client(uint16_t port) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port}, connect_error_);
  }

  const boost::system::error_code& connect_error() const { return connect_error_; }

  void Send(std::string_view bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes), ec);
    ASSERT_FALSE(ec) << ec.message();
  }

  // Reads one response (for a HEAD request, `head` skips the body the headers announce).
  absl::StatusOr<ClientResponse> Read(bool head = false) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.skip(head);
    parser.body_limit(64 * 1024 * 1024);
    const boost::system::error_code ec = Run([&](auto done) {
      bhttp::async_read(socket_, buffer_, parser, [done](auto error, size_t) { done(error); });
    });
    if (ec) return absl::UnavailableError(StrCat("read: ", ec.message()));
    return parser.release();
  }

  // Sends a request and reads its response.
  absl::StatusOr<ClientResponse> Get(std::string_view target) {
    Send(StrCat("GET ", target, " HTTP/1.1\r\nHost: test\r\n\r\n"));
    return Read();
  }

  // Waits for the server to end the connection and returns how it did: eof for a close,
  // connection_reset for a reset, timed_out if it stayed open. Success means bytes arrived.
  boost::system::error_code WaitForClose() {
    return Run([&](auto done) {
      socket_.async_read_some(asio::buffer(&byte_, 1), [done](auto error, size_t) { done(error); });
    });
  }

 private:
  template <typename Start>
  boost::system::error_code Run(Start start) {
    boost::system::error_code result;
    bool finished = false;
    start([&](boost::system::error_code ec) {
      result = ec;
      finished = true;
    });
    io_.restart();
    io_.run_for(std::chrono::seconds(10));
    if (!finished) {
      boost::system::error_code ignored;
      socket_.cancel(ignored);
      io_.restart();
      io_.run();
      return asio::error::timed_out;
    }
    return result;
  }

  asio::io_context io_;
  tcp::socket socket_{io_};
  boost::system::error_code connect_error_;
  boost::beast::flat_buffer buffer_;
  char byte_ = 0;
};

// Polls `condition` until it holds or 10 s pass.
template <typename Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

bool AcceptsConnections(uint16_t port) { return !Client(port).connect_error(); }

// Holds a handler until the test releases it.
class Hold {
 public:
  asio::awaitable<void> Wait() {
    asio::steady_timer timer(co_await asio::this_coro::executor,
                             asio::steady_timer::time_point::max());
    {
      std::lock_guard lock(mu_);
      timer_ = &timer;
    }
    entered_.set_value();
    // Release() posts the cancel to this coroutine's strand, so it runs after the wait starts.
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  bool WaitUntilEntered() {
    return entered_.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  }

  void Release() {
    std::lock_guard lock(mu_);
    asio::steady_timer* timer = timer_;
    asio::post(timer->get_executor(), [timer] { timer->cancel(); });
  }

 private:
  std::mutex mu_;
  asio::steady_timer* timer_ = nullptr;
  std::promise<void> entered_;
};

class ServerTest : public ::testing::Test {
 protected:
  ~ServerTest() override {
    // Stop() must end every session: the io threads run out of work and return.
    if (server_ != nullptr) server_->Stop();
    server_.reset();
    guard_.reset();
    for (std::thread& t : threads_) t.join();
  }

  void StartServer(ServerConfig config, Handler handler) {
    config.address = {"127.0.0.1", 0};
    server_ = std::make_unique<Server>(io_.get_executor(), std::move(config), std::move(handler));
    const absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    port_ = server_->port();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  void StartEchoServer(ServerConfig config = {}) {
    StartServer(std::move(config), [this](Request& request) -> asio::awaitable<Reply> {
      handled_.fetch_add(1);
      co_return Reply{
          .response = MakeResponse(request, 200, "text/plain",
                                   StrCat("you asked for ", std::string_view(request.target())))};
    });
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::vector<std::thread> threads_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
  std::atomic<int> handled_{0};
};

TEST_F(ServerTest, GetIsAnswered) {
  StartEchoServer();
  Client client(port_);
  auto res = client.Get("/hello?x=1");
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "you asked for /hello?x=1");
  EXPECT_EQ((*res)[bhttp::field::server], "herald");
  EXPECT_EQ((*res)[bhttp::field::content_type], "text/plain");
  EXPECT_EQ((*res)[bhttp::field::content_length], "24");
  EXPECT_TRUE(res->keep_alive());
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartEchoServer();
  Client client(port_);
  for (int i = 0; i < 3; ++i) {
    auto res = client.Get(StrCat("/", i));
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_EQ(res->body(), StrCat("you asked for /", i));
  }
  EXPECT_EQ(server_->connections(), 1);
  // Pipelined: two requests in one write, answered in order.
  client.Send("GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n");
  auto a = client.Read();
  auto b = client.Read();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->body(), "you asked for /a");
  EXPECT_EQ(b->body(), "you asked for /b");
  EXPECT_EQ(handled_.load(), 5);
}

// RFC 9112 §2.2: empty lines before a request line are ignored, as a stray CRLF after a body.
TEST_F(ServerTest, EmptyLinesBeforeARequestAreIgnored) {
  StartEchoServer();
  Client client(port_);
  client.Send("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}\r\n");
  auto a = client.Read();
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->body(), "you asked for /a");
  client.Send("\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n");
  auto b = client.Read();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->result_int(), 200);
  EXPECT_EQ(b->body(), "you asked for /b");
  EXPECT_EQ(server_->connections(), 1);
  // But not without end: a client sending only line breaks is not holding the connection.
  client.Send("\r\n\r\n\r\n");
  auto refused = client.Read();
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->result_int(), 400);
  EXPECT_EQ(client.WaitForClose(), asio::error::eof);
}

// A head the parser accepts but whose request is unusable is refused before any handler runs:
// an HTTP/1.1 request without exactly one Host, and a body whose end a Transfer-Encoding other
// than chunked leaves unknown (read as bodiless, its body would pass for the next request).
TEST_F(ServerTest, ARequestWithoutOneHostOrWithAnUnframedBodyIs400) {
  StartEchoServer();
  const std::string requests[] = {
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nGET /smuggled HTTP/1.1\r\n"
      "Host: t\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
  };
  for (const std::string& request : requests) {
    Client client(port_);
    client.Send(request);
    auto res = client.Read();
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_EQ(res->result_int(), 400) << request;
    EXPECT_THAT(res->body(), HasSubstr("bad request: ")) << request;
    EXPECT_EQ(client.WaitForClose(), asio::error::eof) << request;
  }
  EXPECT_EQ(handled_.load(), 0);
  // HTTP/1.0 has no Host requirement.
  Client old(port_);
  old.Send("GET /old HTTP/1.0\r\n\r\n");
  auto res = old.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->body(), "you asked for /old");
}

// Every response says when it was made (RFC 9110 §6.6.1), refusals too.
TEST_F(ServerTest, ResponsesCarryADate) {
  StartEchoServer({.max_body_bytes = 10});
  Client client(port_);
  auto ok = client.Get("/");
  ASSERT_TRUE(ok.ok()) << ok.status();
  const std::string date((*ok)[bhttp::field::date]);
  absl::Time parsed;
  std::string error;
  ASSERT_TRUE(
      absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", date, absl::UTCTimeZone(), &parsed, &error))
      << date << ": " << error;
  EXPECT_LT(absl::AbsDuration(absl::Now() - parsed), absl::Minutes(1)) << date;
  client.Send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n");
  auto refused = client.Read();
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->result_int(), 413);
  EXPECT_FALSE((*refused)[bhttp::field::date].empty());
}

TEST_F(ServerTest, ConnectionCloseIsHonoured) {
  StartEchoServer();
  Client client(port_);
  client.Send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  auto res = client.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_FALSE(res->keep_alive());
  EXPECT_EQ(client.WaitForClose(), asio::error::eof);
}

TEST_F(ServerTest, HeadGetsTheLengthWithoutABody) {
  StartEchoServer();
  Client client(port_);
  client.Send("HEAD /abc HTTP/1.1\r\nHost: t\r\n\r\n");
  auto res = client.Read(/*head=*/true);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ((*res)[bhttp::field::content_length], "18");
  // No body followed: the next response on the connection parses.
  auto next = client.Get("/next");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->body(), "you asked for /next");
}

// A client that sends "Expect: 100-continue" holds its body back until the server says so.
TEST_F(ServerTest, ExpectContinueGetsAnInterimResponseBeforeTheBody) {
  StartServer({}, [this](Request& request) -> asio::awaitable<Reply> {
    handled_.fetch_add(1);
    co_return Reply{.response =
                        MakeResponse(request, 200, "text/plain", StrCat("got ", request.body()))};
  });
  Client client(port_);
  client.Send("POST /in HTTP/1.1\r\nHost: t\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n");
  auto interim = client.Read();
  ASSERT_TRUE(interim.ok()) << interim.status();
  EXPECT_EQ(interim->result_int(), 100);
  EXPECT_EQ(handled_.load(), 0);
  client.Send("hello");
  auto res = client.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "got hello");

  // HTTP/1.0 has no interim responses: the expectation is ignored, the body read as sent.
  client.Send(
      "POST /in HTTP/1.0\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
  res = client.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "got hi");
}

// A body announced over the limit is refused on the header: no "100 Continue", so the client
// never sends it.
TEST_F(ServerTest, ExpectContinueWithABodyOverTheLimitIs413WithoutTheBody) {
  StartEchoServer({.max_body_bytes = 100});
  Client client(port_);
  client.Send(
      "POST /in HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
  auto res = client.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 413);
  EXPECT_EQ(client.WaitForClose(), asio::error::eof);
  EXPECT_EQ(handled_.load(), 0);
}

TEST_F(ServerTest, BodyOverTheLimitIs413AndTheConnectionCloses) {
  StartEchoServer({.max_body_bytes = 100,
                   .too_large_content_type = "application/json",
                   .too_large_body = R"({"error":"too large"})"});
  Client client(port_);
  client.Send(StrCat("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n",
                     std::string(5000, 'x')));
  auto res = client.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 413);
  EXPECT_EQ((*res)[bhttp::field::content_type], "application/json");
  EXPECT_EQ(res->body(), R"({"error":"too large"})");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_EQ(client.WaitForClose(), asio::error::eof);
  EXPECT_EQ(handled_.load(), 0);
}

// Bodies being read count against a budget shared by all connections: one that would overrun it
// is refused at once (503, Retry-After) without being read, and the budget frees as bodies are
// answered.
TEST_F(ServerTest, BodiesInFlightOverTheBudgetAre503UntilOthersAreAnswered) {
  StartEchoServer({.max_body_bytes = 600, .max_body_bytes_in_flight = 1000});
  // A slow sender: its 600 bytes are reserved once the server asks for them.
  Client slow(port_);
  slow.Send(
      "POST /slow HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 600\r\n\r\n");
  auto interim = slow.Read();
  ASSERT_TRUE(interim.ok()) << interim.status();
  ASSERT_EQ(interim->result_int(), 100);

  Client refused(port_);
  refused.Send(StrCat("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 600\r\n\r\n",
                      std::string(600, 'x')));
  auto res = refused.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 503);
  EXPECT_EQ((*res)[bhttp::field::retry_after], "1");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_EQ(refused.WaitForClose(), asio::error::eof);
  // A smaller body still fits beside the slow one.
  Client small(port_);
  small.Send(StrCat("POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 300\r\n\r\n",
                    std::string(300, 'x')));
  res = small.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(handled_.load(), 1);

  // Once the slow body is in and answered, a body of its size fits again.
  slow.Send(std::string(600, 'x'));
  res = slow.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200);
  Client after(port_);
  after.Send(StrCat("POST /after HTTP/1.1\r\nHost: t\r\nContent-Length: 600\r\n\r\n",
                    std::string(600, 'x')));
  res = after.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(handled_.load(), 3);
}

TEST_F(ServerTest, ChunkedBodyOverTheLimitIs413) {
  StartEchoServer({.max_body_bytes = 100});
  Client client(port_);
  client.Send(StrCat("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", "c8\r\n",
                     std::string(200, 'x'), "\r\n0\r\n\r\n"));
  auto res = client.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 413);
  EXPECT_EQ(res->body(), "request too large\n");
}

TEST_F(ServerTest, HeaderOverTheLimitIs431) {
  StartEchoServer({.max_header_bytes = 1024});
  Client client(port_);
  client.Send(
      StrCat("GET / HTTP/1.1\r\nHost: t\r\nX-Padding: ", std::string(4000, 'a'), "\r\n\r\n"));
  auto res = client.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 431);
  EXPECT_EQ(res->body(), "request header fields too large\n");
  EXPECT_EQ((*res)[bhttp::field::connection], "close");
  EXPECT_EQ(client.WaitForClose(), asio::error::eof);
  EXPECT_EQ(handled_.load(), 0);
}

TEST_F(ServerTest, MalformedRequestIs400) {
  StartEchoServer();
  Client client(port_);
  client.Send("GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n");
  auto res = client.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 400);
  EXPECT_EQ(client.WaitForClose(), asio::error::eof);
}

TEST_F(ServerTest, EachRequestTheServerRefusesItselfIsReportedWithItsStatus) {
  std::mutex mu;
  std::vector<unsigned> refused;
  StartEchoServer(
      {.max_header_bytes = 1024, .max_body_bytes = 100, .on_refused = [&](unsigned status) {
         std::lock_guard lock(mu);
         refused.push_back(status);
       }});
  const std::string requests[] = {
      "GET /fine HTTP/1.1\r\nHost: t\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n",
      StrCat("GET / HTTP/1.1\r\nHost: t\r\nX-Padding: ", std::string(4000, 'a'), "\r\n\r\n"),
      "GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
  };
  std::vector<unsigned> answered;
  for (const std::string& request : requests) {
    Client client(port_);
    client.Send(request);
    auto res = client.Read();
    ASSERT_TRUE(res.ok()) << res.status();
    answered.push_back(res->result_int());
  }
  EXPECT_THAT(answered, ::testing::ElementsAre(200u, 413u, 431u, 400u));
  std::lock_guard lock(mu);
  EXPECT_THAT(refused, ::testing::ElementsAre(413u, 431u, 400u));  // not the handler's 200
}

TEST_F(ServerTest, StalledRequestIsCutOffAfterTheRequestTimeout) {
  StartEchoServer({.idle_timeout = absl::Seconds(60), .request_timeout = absl::Milliseconds(200)});
  Client client(port_);
  client.Send("GET / HTTP/1.1\r\nHost: t\r\n");  // and never the blank line
  EXPECT_EQ(client.WaitForClose(), asio::error::eof);
  EXPECT_EQ(handled_.load(), 0);
  EXPECT_TRUE(Eventually([&] { return server_->connections() == 0; }));
}

TEST_F(ServerTest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  StartEchoServer({.idle_timeout = absl::Milliseconds(200), .request_timeout = absl::Seconds(60)});
  Client after_request(port_);
  ASSERT_TRUE(after_request.Get("/").ok());
  EXPECT_EQ(after_request.WaitForClose(), asio::error::eof);
  Client silent(port_);
  EXPECT_EQ(silent.WaitForClose(), asio::error::eof);
}

TEST_F(ServerTest, ConnectionsBeyondTheCapAreClosedAtOnce) {
  StartEchoServer({.max_connections = 1});
  Client first(port_);
  ASSERT_TRUE(first.Get("/").ok());
  Client second(port_);
  const boost::system::error_code refused = second.WaitForClose();
  EXPECT_TRUE(refused == asio::error::eof || refused == asio::error::connection_reset)
      << refused.message();
  // The first connection is unaffected; once it ends there is room again.
  ASSERT_TRUE(first.Get("/again").ok());
  first.Send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(first.Read().ok());
  ASSERT_TRUE(Eventually([&] { return server_->connections() == 0; }));
  Client third(port_);
  auto res = third.Get("/third");
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->body(), "you asked for /third");
}

TEST_F(ServerTest, ResetReplyResetsTheConnectionWithoutAResponse) {
  StartServer({}, [](Request&) -> asio::awaitable<Reply> { co_return Reply{.reset = true}; });
  Client client(port_);
  client.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(client.WaitForClose(), asio::error::connection_reset);
}

TEST_F(ServerTest, HandlerExceptionIs500) {
  StartServer({}, [](Request&) -> asio::awaitable<Reply> {
    throw std::runtime_error("handler bug");
    co_return Reply{};
  });
  Client client(port_);
  auto res = client.Get("/");
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 500);
  EXPECT_FALSE(res->keep_alive());
}

TEST_F(ServerTest, CloseLetsAnInFlightRequestFinishAndClosesIdleConnections) {
  Hold hold;
  StartServer({}, [&](Request& request) -> asio::awaitable<Reply> {
    if (request.target() == "/slow") co_await hold.Wait();
    co_return Reply{.response = MakeResponse(request, 200, "text/plain",
                                             StrCat("done ", std::string_view(request.target())))};
  });
  Client busy(port_);
  busy.Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(hold.WaitUntilEntered());
  Client idle(port_);
  ASSERT_TRUE(idle.Get("/fast").ok());

  auto closed = std::make_shared<std::promise<void>>();
  asio::co_spawn(io_, server_->Close(), [closed](std::exception_ptr) { closed->set_value(); });
  std::future<void> close_done = closed->get_future();

  EXPECT_EQ(idle.WaitForClose(), asio::error::eof);
  EXPECT_TRUE(Eventually([&] { return !AcceptsConnections(port_); }));
  // The handler is still held, so Close() cannot have completed.
  EXPECT_EQ(close_done.wait_for(std::chrono::seconds(0)), std::future_status::timeout);

  hold.Release();
  auto res = busy.Read();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->body(), "done /slow");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_EQ(busy.WaitForClose(), asio::error::eof);
  EXPECT_EQ(close_done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(server_->connections(), 0);
}

TEST_F(ServerTest, CloseCompletesAtOnceWithoutConnectionsAndTwice) {
  StartEchoServer();
  for (int i = 0; i < 2; ++i) {
    auto closed = std::make_shared<std::promise<void>>();
    asio::co_spawn(io_, server_->Close(), [closed](std::exception_ptr) { closed->set_value(); });
    EXPECT_EQ(closed->get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  }
  EXPECT_FALSE(AcceptsConnections(port_));
}

TEST_F(ServerTest, StopClosesEveryConnectionAndTheListener) {
  StartEchoServer();
  Client idle(port_);
  ASSERT_TRUE(idle.Get("/").ok());
  Client silent(port_);
  ASSERT_TRUE(Eventually([&] { return server_->connections() == 2; }));
  server_->Stop();
  EXPECT_EQ(idle.WaitForClose(), asio::error::eof);
  EXPECT_EQ(silent.WaitForClose(), asio::error::eof);
  EXPECT_TRUE(Eventually([&] { return !AcceptsConnections(port_); }));
}

TEST_F(ServerTest, PortZeroBindsAFreePort) {
  StartEchoServer();
  EXPECT_NE(port_, 0);
  Server other(io_.get_executor(), {.address = {"127.0.0.1", 0}}, nullptr);
  ASSERT_TRUE(other.Start().ok());
  EXPECT_NE(other.port(), 0);
  EXPECT_NE(other.port(), port_);
}

TEST_F(ServerTest, BusyPortIsAnError) {
  StartEchoServer();
  Server second(io_.get_executor(), {.address = {"127.0.0.1", port_}}, nullptr);
  const absl::Status s = second.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), StartsWith(StrCat("cannot listen on 127.0.0.1:", port_)));
}

TEST(ServerStartTest, AddressNotOnThisMachineIsAnError) {
  asio::io_context io;
  Server server(io.get_executor(), {.address = {"192.0.2.1", 0}}, nullptr);  // TEST-NET-1
  const absl::Status s = server.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("cannot listen on 192.0.2.1:0"));
}

TEST(ServerStartTest, NonPositiveTimeoutIsAnError) {
  asio::io_context io;
  Server server(io.get_executor(), {.request_timeout = absl::ZeroDuration()}, nullptr);
  EXPECT_EQ(server.Start().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace herald::http
