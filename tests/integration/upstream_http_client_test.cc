// The upstream HTTP client against a real socket: a scripted HTTP/1.1 server in this file (plain
// or TLS, on 127.0.0.1 port 0) that can misbehave on demand.
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/testing/net.h>
#include <herald/testing/run_sync.h>
#include <herald/testing/subprocess.h>
#include <herald/testing/wait.h>
#include <herald/upstream/client.h>
#include <herald/upstream/error.h>
#include <herald/upstream/http_client.h>

namespace herald::upstream {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace asio::experimental::awaitable_operators;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// ---------------------------------------------------------------------------------------------
// A self-signed certificate made with OpenSSL, for the TLS server.

struct TestCertificate {
  std::string cert_pem;
  std::string key_pem;
};

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

// `subject_alt_name` in OpenSSL config syntax, e.g. "IP:127.0.0.1".
TestCertificate MakeSelfSignedCertificate(const std::string& subject_alt_name) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("herald upstream test"), -1, -1,
                             0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair{NID_subject_alt_name, subject_alt_name},
        std::pair{NID_basic_constraints, std::string("critical,CA:TRUE")}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert, key, EVP_sha256());
  BIO* cert_bio = BIO_new(BIO_s_mem());
  BIO* key_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cert_bio, cert);
  PEM_write_bio_PrivateKey(key_bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  TestCertificate out{BioToString(cert_bio), BioToString(key_bio)};
  BIO_free(cert_bio);
  BIO_free(key_bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The scripted server.

struct Reply {
  enum class Fault {
    kNone,
    kCloseAfter,        // respond, then close the connection (as an idle timeout would)
    kResetAfter,        // respond, then reset the connection
    kResetBeforeReply,  // read the request, then reset without answering
    kTruncate,          // promise more body than is sent, then close
    kDrip,              // send the response one byte at a time, `drip` apart
    kHang,              // read the request and never answer
  };

  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body = "{}";
  Fault fault = Fault::kNone;
  std::chrono::milliseconds delay{0};  // before answering
  std::chrono::milliseconds drip{0};
};

struct SeenRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class TestServer {
 public:
  using Handler = std::function<Reply(const SeenRequest&)>;

  explicit TestServer(Handler handler, const TestCertificate* certificate = nullptr)
      : handler_(std::move(handler)), acceptor_(ioc_), tls_(ssl::context::tls_server) {
    if (certificate != nullptr) {
      use_tls_ = true;
      tls_.use_certificate_chain(asio::buffer(certificate->cert_pem));
      tls_.use_private_key(asio::buffer(certificate->key_pem), ssl::context::pem);
    }
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(ioc_, Accept(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~TestServer() {
    ioc_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }
  std::string url() const { return StrCat(use_tls_ ? "https" : "http", "://127.0.0.1:", port_); }
  int accepted() const { return accepted_.load(); }
  int requests() const { return requests_.load(); }
  int closed() const { return closed_.load(); }  // connections that ended, either side

  void SetHandler(Handler handler) {
    std::lock_guard lock(mu_);
    handler_ = std::move(handler);
  }
  std::vector<SeenRequest> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  asio::awaitable<void> Accept() {
    while (true) {
      auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
      if (ec) co_return;
      ++accepted_;
      if (use_tls_) {
        asio::co_spawn(ioc_, ServeTls(std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(ioc_, ServePlain(std::move(socket)), asio::detached);
      }
    }
  }

  asio::awaitable<void> ServePlain(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    co_await Serve(stream);
    ++closed_;
  }

  asio::awaitable<void> ServeTls(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), tls_);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
    if (!ec) co_await Serve(stream);
    ++closed_;
  }

  template <typename Stream>
  asio::awaitable<void> Serve(Stream& stream) {
    beast::flat_buffer buffer;
    while (true) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(stream, buffer, req, kTuple);
      if (ec) co_return;
      ++requests_;
      SeenRequest seen{std::string(req.method_string()), std::string(req.target()), {}, req.body()};
      for (const auto& field : req) {
        seen.headers[AsciiLower(std::string(field.name_string()))] = std::string(field.value());
      }
      Reply reply;
      {
        std::lock_guard lock(mu_);
        seen_.push_back(seen);
        reply = handler_(seen);
      }
      if (reply.delay.count() > 0) co_await Wait(reply.delay);
      tcp::socket& socket = beast::get_lowest_layer(stream).socket();
      using Fault = Reply::Fault;
      if (reply.fault == Fault::kResetBeforeReply) {
        Reset(socket);
        co_return;
      }
      if (reply.fault == Fault::kHang) {
        co_await Wait(std::chrono::hours(1));
        co_return;
      }
      std::string raw = StrCat("HTTP/1.1 ", reply.status, " Test\r\n");
      bool has_length = false;
      for (const auto& [k, v] : reply.headers) {
        StrAppend(&raw, k, ": ", v, "\r\n");
        has_length =
            has_length || AsciiLower(k) == "content-length" || AsciiLower(k) == "transfer-encoding";
      }
      if (!has_length) {
        const size_t length = reply.body.size() + (reply.fault == Fault::kTruncate ? 100 : 0);
        StrAppend(&raw, "Content-Length: ", length, "\r\n");
      }
      StrAppend(&raw, "\r\n", reply.body);
      if (reply.fault == Fault::kDrip) {
        for (char c : raw) {
          auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(&c, 1), kTuple);
          if (wec) co_return;
          co_await Wait(reply.drip);
        }
        continue;
      }
      auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(raw), kTuple);
      if (wec) co_return;
      if (reply.fault == Fault::kTruncate || reply.fault == Fault::kCloseAfter) {
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
        co_return;
      }
      if (reply.fault == Fault::kResetAfter) {
        Reset(socket);
        co_return;
      }
    }
  }

  static void Reset(tcp::socket& socket) {
    boost::system::error_code ignored;
    socket.set_option(asio::socket_base::linger(true, 0), ignored);
    socket.close(ignored);
  }

  asio::awaitable<void> Wait(std::chrono::steady_clock::duration d) {
    asio::steady_timer timer(ioc_, d);
    co_await timer.async_wait(kTuple);
  }

  mutable std::mutex mu_;
  Handler handler_;
  std::vector<SeenRequest> seen_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  ssl::context tls_;
  bool use_tls_ = false;
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> closed_{0};
  std::thread thread_;
};

Reply Json(std::string body, int status = 200) {
  return Reply{
      .status = status, .headers = {{"Content-Type", "application/json"}}, .body = std::move(body)};
}

// ---------------------------------------------------------------------------------------------
// Running client coroutines from a test.

using testing::RunSync;

HttpRequest Get(const TestServer& server, std::string path = "/api/ping") {
  return HttpRequest{.method = HttpMethod::kGet, .url = server.url() + path};
}

HttpRequest Post(const TestServer& server, std::string path = "/api/acct_1/mass-messaging") {
  return HttpRequest{.method = HttpMethod::kPost, .url = server.url() + path, .body = "{}"};
}

UpstreamError ErrorOf(const absl::Status& status) {
  const std::optional<UpstreamError> error = GetUpstreamError(status);
  EXPECT_TRUE(error.has_value()) << status;
  return error.value_or(UpstreamError{});
}

class HttpClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<HttpClient> MakeClient(HttpClientConfig config = {}) {
    if (config.connect_timeout == HttpClientConfig{}.connect_timeout) {
      config.connect_timeout = absl::Seconds(2);
    }
    if (config.request_timeout == HttpClientConfig{}.request_timeout) {
      config.request_timeout = absl::Seconds(10);
    }
    absl::StatusOr<std::unique_ptr<HttpClient>> client =
        HttpClient::Create(ioc_.get_executor(), std::move(config));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  absl::StatusOr<HttpResponse> Send(HttpClient& client, HttpRequest request) {
    return RunSync(ioc_, client.Send(std::move(request)));
  }

  asio::io_context ioc_;
};

// ---------------------------------------------------------------------------------------------
// Connection pool.

TEST_F(HttpClientTest, KeepAliveReusesOneConnection) {
  TestServer server([](const SeenRequest&) { return Json(R"({"ok": true})"); });
  auto client = MakeClient();
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<HttpResponse> res = Send(*client, Get(server));
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, R"({"ok": true})");
    EXPECT_EQ(res->Header("content-type"), "application/json");
  }
  EXPECT_EQ(server.requests(), 5);
  EXPECT_EQ(server.accepted(), 1);
  const SeenRequest first = server.seen().front();
  EXPECT_EQ(first.headers.at("host"), StrCat("127.0.0.1:", server.port()));
  EXPECT_EQ(first.headers.at("user-agent"), "herald");
}

TEST_F(HttpClientTest, PoolIsBoundedPerHost) {
  // Every answer takes a while, so all six calls are in flight together.
  TestServer server([](const SeenRequest&) {
    Reply r = Json("{}");
    r.delay = std::chrono::milliseconds(100);
    return r;
  });
  auto client = MakeClient({.max_connections_per_host = 2});
  std::vector<absl::StatusOr<HttpResponse>> results;
  std::mutex mu;
  for (int i = 0; i < 6; ++i) {
    asio::co_spawn(ioc_, client->Send(Get(server)),
                   [&](std::exception_ptr, absl::StatusOr<HttpResponse> res) {
                     std::lock_guard lock(mu);
                     results.push_back(std::move(res));
                   });
  }
  ioc_.run();
  ASSERT_EQ(results.size(), 6u);
  for (const auto& res : results) EXPECT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(server.accepted(), 2);
  EXPECT_EQ(server.requests(), 6);
}

TEST_F(HttpClientTest, WaitingForAFullPoolEndsAtTheDeadline) {
  TestServer server([](const SeenRequest&) { return Reply{.fault = Reply::Fault::kHang}; });
  auto client = MakeClient({.max_connections_per_host = 1});
  // The first call holds the only connection; the second waits for it and gives up first.
  HttpRequest first = Get(server);
  first.timeout = absl::Milliseconds(600);
  std::optional<absl::StatusOr<HttpResponse>> first_result;
  asio::co_spawn(ioc_, client->Send(first),
                 [&](std::exception_ptr, absl::StatusOr<HttpResponse> res) { first_result = res; });
  HttpRequest second = Get(server);
  second.timeout = absl::Milliseconds(200);
  absl::StatusOr<HttpResponse> res = Send(*client, second);
  ASSERT_TRUE(first_result.has_value());
  EXPECT_EQ(first_result->status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(res.status().message()), HasSubstr("no connection"));
  EXPECT_EQ(ErrorOf(res.status()).kind, ErrorKind::kRetryable);
  EXPECT_FALSE(ErrorOf(res.status()).request_written);
  EXPECT_EQ(server.accepted(), 1);
}

TEST_F(HttpClientTest, ServerClosingIdleConnectionsIsTransparent) {
  for (Reply::Fault fault : {Reply::Fault::kCloseAfter, Reply::Fault::kResetAfter}) {
    TestServer server([fault](const SeenRequest&) {
      Reply r = Json(R"({"n": 1})");
      r.fault = fault;
      return r;
    });
    auto client = MakeClient();
    for (int i = 1; i <= 4; ++i) {
      // Also POST: a request not yet written may go out on a fresh connection.
      absl::StatusOr<HttpResponse> res = Send(*client, i % 2 == 0 ? Post(server) : Get(server));
      ASSERT_TRUE(res.ok()) << "request " << i << ": " << res.status();
      EXPECT_EQ(res->status, 200);
      // The server has closed the idle connection before the next request is made.
      ASSERT_TRUE(testing::WaitFor([&] { return server.closed() == i; }));
    }
    EXPECT_EQ(server.accepted(), 4);
    EXPECT_EQ(server.requests(), 4);
  }
}

TEST_F(HttpClientTest, ConnectionsClosedByTheServerAreNotReusedAfterConnectionClose) {
  TestServer server([](const SeenRequest&) {
    Reply r = Json("{}");
    r.headers.emplace_back("Connection", "close");
    r.fault = Reply::Fault::kCloseAfter;
    return r;
  });
  auto client = MakeClient();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Send(*client, Get(server)).ok());
  EXPECT_EQ(server.accepted(), 3);
}

// ---------------------------------------------------------------------------------------------
// Broken responses.

TEST_F(HttpClientTest, TruncatedBodyIsAnUnknownOutcome) {
  TestServer server([](const SeenRequest&) {
    Reply r = Json(R"({"data": {"id": 1)");
    r.fault = Reply::Fault::kTruncate;
    return r;
  });
  auto client = MakeClient();
  absl::StatusOr<HttpResponse> res = Send(*client, Post(server));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(std::string(res.status().message()), HasSubstr("truncated"));
  EXPECT_EQ(ErrorOf(res.status()).kind, ErrorKind::kUnknownOutcome);
  EXPECT_TRUE(ErrorOf(res.status()).request_written);
}

TEST_F(HttpClientTest, ResponsesOverTheLimitAreRefused) {
  constexpr int64_t kLimit = 64 * 1024;
  TestServer server([](const SeenRequest& req) {
    if (req.target == "/api/huge-body") return Json(std::string(1 << 20, 'x'));
    if (req.target == "/api/huge-chunked") {
      std::string chunked;
      for (int i = 0; i < 100; ++i) StrAppend(&chunked, "400\r\n", std::string(1024, 'y'), "\r\n");
      chunked += "0\r\n\r\n";
      Reply r{.headers = {{"Transfer-Encoding", "chunked"}}, .body = chunked};
      return r;
    }
    if (req.target == "/api/huge-headers") {
      Reply r = Json("{}");
      r.headers.emplace_back("X-Padding", std::string(kLimit, 'h'));
      return r;
    }
    if (req.target == "/api/just-under") return Json(std::string(kLimit - 200, 'z'));
    return Json("{}");
  });
  auto client = MakeClient({.max_response_bytes = kLimit});
  for (std::string path : {"/api/huge-body", "/api/huge-chunked", "/api/huge-headers"}) {
    absl::StatusOr<HttpResponse> res = Send(*client, Get(server, path));
    ASSERT_FALSE(res.ok()) << path;
    EXPECT_EQ(res.status().code(), absl::StatusCode::kUnknown) << path;
    EXPECT_THAT(std::string(res.status().message()),
                HasSubstr("exceeds max_response_bytes (65536)"))
        << path;
    EXPECT_EQ(ErrorOf(res.status()).kind, ErrorKind::kUnknownOutcome);
  }
  absl::StatusOr<HttpResponse> ok = Send(*client, Get(server, "/api/just-under"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->body.size(), static_cast<size_t>(kLimit - 200));
}

TEST_F(HttpClientTest, SlowDripEndsAtTheTotalDeadline) {
  TestServer server([](const SeenRequest&) {
    Reply r = Json(std::string(200, 'x'));
    r.fault = Reply::Fault::kDrip;
    r.drip = std::chrono::milliseconds(20);  // the whole response would take seconds
    return r;
  });
  auto client = MakeClient({.request_timeout = absl::Milliseconds(300)});
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> res = Send(*client, Get(server));
  const absl::Duration elapsed = absl::Now() - start;
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(res.status().message()), HasSubstr("before the deadline"));
  EXPECT_EQ(ErrorOf(res.status()).kind, ErrorKind::kUnknownOutcome);
  EXPECT_GE(elapsed, absl::Milliseconds(250));
  EXPECT_LT(elapsed, absl::Seconds(3));
}

TEST_F(HttpClientTest, ResetAfterTheRequestWasWrittenIsAnUnknownOutcome) {
  TestServer server(
      [](const SeenRequest&) { return Reply{.fault = Reply::Fault::kResetBeforeReply}; });
  auto client = MakeClient();
  absl::StatusOr<HttpResponse> res = Send(*client, Post(server));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(std::string(res.status().message()), HasSubstr("may have acted on the request"));
  const UpstreamError error = ErrorOf(res.status());
  EXPECT_EQ(error.kind, ErrorKind::kUnknownOutcome);
  EXPECT_TRUE(error.request_written);
  // Never re-sent.
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(HttpClientTest, ConnectRefusedIsRetryable) {
  const uint16_t port = testing::PickFreePort();
  auto client = MakeClient();
  absl::StatusOr<HttpResponse> res =
      Send(*client, HttpRequest{.url = StrCat("http://127.0.0.1:", port, "/api/accounts")});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(res.status().message()), HasSubstr("connect to 127.0.0.1:"));
  EXPECT_EQ(ErrorOf(res.status()).kind, ErrorKind::kRetryable);
  EXPECT_FALSE(ErrorOf(res.status()).request_written);
}

TEST_F(HttpClientTest, BadUrlsAreRefused) {
  auto client = MakeClient();
  for (std::string url : {"ftp://127.0.0.1/x", "http://user@127.0.0.1/x", "nonsense"}) {
    absl::StatusOr<HttpResponse> res = Send(*client, HttpRequest{.url = url});
    ASSERT_FALSE(res.ok()) << url;
    EXPECT_EQ(res.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_EQ(ErrorOf(res.status()).kind, ErrorKind::kTerminal) << url;
  }
}

// ---------------------------------------------------------------------------------------------
// Cancellation.

// Sends `request` and stores the outcome, so that it survives the `||` that cancels it.
asio::awaitable<void> SendInto(HttpClient& client, HttpRequest request,
                               std::optional<absl::StatusOr<HttpResponse>>* out) {
  *out = co_await client.Send(std::move(request));
}

asio::awaitable<void> SendWithTimer(HttpClient& client, HttpRequest request,
                                    std::optional<absl::StatusOr<HttpResponse>>* out,
                                    std::chrono::milliseconds after) {
  asio::steady_timer timer(co_await asio::this_coro::executor, after);
  co_await (SendInto(client, std::move(request), out) || timer.async_wait(kTuple));
}

TEST_F(HttpClientTest, CancellingAnInFlightCallAbortsItAndKeepsThePoolUsable) {
  std::atomic<bool> hang{true};
  TestServer server([&](const SeenRequest&) {
    return hang.load() ? Reply{.fault = Reply::Fault::kHang} : Json(R"({"ok": 1})");
  });
  auto client = MakeClient({.request_timeout = absl::Seconds(30), .max_connections_per_host = 1});
  std::optional<absl::StatusOr<HttpResponse>> cancelled;
  const absl::Time start = absl::Now();
  RunSync(ioc_, SendWithTimer(*client, Post(server), &cancelled, std::chrono::milliseconds(100)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ASSERT_TRUE(cancelled.has_value());
  ASSERT_FALSE(cancelled->ok());
  EXPECT_EQ(cancelled->status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(ErrorOf(cancelled->status()).kind, ErrorKind::kUnknownOutcome);
  EXPECT_TRUE(ErrorOf(cancelled->status()).request_written);

  // The cancelled connection was discarded, and its slot in the pool (of one) freed.
  hang = false;
  absl::StatusOr<HttpResponse> res = Send(*client, Get(server));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->body, R"({"ok": 1})");
  EXPECT_EQ(server.accepted(), 2);
}

TEST_F(HttpClientTest, CancellingACallWaitingForAConnection) {
  TestServer server([](const SeenRequest&) { return Reply{.fault = Reply::Fault::kHang}; });
  auto client = MakeClient({.request_timeout = absl::Seconds(30), .max_connections_per_host = 1});
  std::optional<absl::StatusOr<HttpResponse>> holder;
  std::optional<absl::StatusOr<HttpResponse>> waiter;
  asio::co_spawn(ioc_, SendWithTimer(*client, Get(server), &holder, std::chrono::milliseconds(400)),
                 asio::detached);
  asio::co_spawn(ioc_, SendWithTimer(*client, Get(server), &waiter, std::chrono::milliseconds(100)),
                 asio::detached);
  ioc_.run();
  ASSERT_TRUE(waiter.has_value() && holder.has_value());
  EXPECT_EQ(waiter->status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(waiter->status().message()), HasSubstr("waiting for a connection"));
  EXPECT_EQ(ErrorOf(waiter->status()).kind, ErrorKind::kRetryable);
  EXPECT_EQ(holder->status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(server.accepted(), 1);
}

// ---------------------------------------------------------------------------------------------
// TLS.

class TlsTest : public HttpClientTest {
 protected:
  void SetUp() override {
    certificate_ = MakeSelfSignedCertificate("IP:127.0.0.1");
    const std::string dir = testing::MakeTempDir("herald-upstream-tls");
    ca_file_ = dir + "/ca.pem";
    std::ofstream(ca_file_) << certificate_.cert_pem;
  }

  TestCertificate certificate_;
  std::string ca_file_;
};

TEST_F(TlsTest, VerificationFailsByDefaultForAnUnknownCertificate) {
  TestServer server([](const SeenRequest&) { return Json(R"({"tls": true})"); }, &certificate_);
  auto client = MakeClient();
  absl::StatusOr<HttpResponse> res = Send(*client, Get(server));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(res.status().message()),
              HasSubstr("TLS certificate verification failed for 127.0.0.1:"));
  EXPECT_THAT(std::string(res.status().message()), HasSubstr("self-signed certificate"));
  EXPECT_EQ(ErrorOf(res.status()).kind, ErrorKind::kTerminal);
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(TlsTest, SucceedsWithTheCaFileAndReusesTheConnection) {
  TestServer server([](const SeenRequest&) { return Json(R"({"tls": true})"); }, &certificate_);
  auto client = MakeClient({.ca_file = ca_file_});
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<HttpResponse> res = Send(*client, Get(server));
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_EQ(res->body, R"({"tls": true})");
  }
  EXPECT_EQ(server.accepted(), 1);
}

TEST_F(TlsTest, ClientsWithTheSameTrustShareOneLoadOfTheCertificates) {
  // The trusted certificates are loaded once for every client alive with the same settings (a
  // team's client each): with the CA file now unreadable, a second client still starts and
  // verifies the server, from the first one's certificates.
  TestServer server([](const SeenRequest&) { return Json("{}"); }, &certificate_);
  auto first = MakeClient({.ca_file = ca_file_});
  std::ofstream(ca_file_, std::ios::trunc) << "not a certificate";
  absl::StatusOr<std::unique_ptr<HttpClient>> second =
      HttpClient::Create(ioc_.get_executor(), {.ca_file = ca_file_});
  ASSERT_TRUE(second.ok()) << second.status();
  absl::StatusOr<HttpResponse> res = Send(**second, Get(server));
  EXPECT_TRUE(res.ok()) << res.status();

  // Once no client holds them, the file is read again, and its new content is refused.
  first.reset();
  second->reset();
  absl::StatusOr<std::unique_ptr<HttpClient>> third =
      HttpClient::Create(ioc_.get_executor(), {.ca_file = ca_file_});
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(third.status().message()), HasSubstr("cannot load trusted"));
}

TEST_F(TlsTest, HostNameMustMatchTheCertificate) {
  TestServer server([](const SeenRequest&) { return Json("{}"); }, &certificate_);
  auto client = MakeClient({.ca_file = ca_file_});
  // Trusted, but issued for 127.0.0.1 only.
  absl::StatusOr<HttpResponse> res =
      Send(*client, HttpRequest{.url = StrCat("https://localhost:", server.port(), "/api/x")});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kFailedPrecondition) << res.status();
  EXPECT_THAT(std::string(res.status().message()), HasSubstr("does not match the host name"));
}

TEST_F(TlsTest, InsecureModeSkipsVerification) {
  TestServer server([](const SeenRequest&) { return Json("{}"); }, &certificate_);
  auto client = MakeClient({.insecure_skip_tls_verify = true});
  absl::StatusOr<HttpResponse> res = Send(*client, Get(server));
  ASSERT_TRUE(res.ok()) << res.status();
}

TEST(HttpClientConfigTest, UnreadableCaFileIsRejected) {
  asio::io_context ioc;
  absl::StatusOr<std::unique_ptr<HttpClient>> client =
      HttpClient::Create(ioc.get_executor(), {.ca_file = "/nonexistent/ca.pem"});
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("http.ca_file"));
  EXPECT_FALSE(HttpClient::Create(ioc.get_executor(), {.max_connections_per_host = 0}).ok());
}

// ---------------------------------------------------------------------------------------------
// The typed client over real HTTP.

class TypedClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<Client> MakeClient(const TestServer& server, ClientConfig config = {}) {
    config.base_url = server.url();
    config.api_key = "sk_live_secret";
    config.tenant = "t1";
    config.team = "team_1";
    config.http.request_timeout = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Create(ioc_.get_executor(), std::move(config), &registry_);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  template <typename T>
  Result<T> Run(asio::awaitable<Result<T>> op) {
    return RunSync(ioc_, std::move(op));
  }

  asio::io_context ioc_;
  metrics::Registry registry_;
};

TEST_F(TypedClientTest, WhatTheUpstreamNeverReportedHasNoSeries) {
  // A refused key is answered without the rate-limit and credits headers: a balance of 0 must
  // not appear (it would read as a team out of credits).
  TestServer server([](const SeenRequest&) { return Json(R"({"error": "Unauthorized"})", 401); });
  auto client = MakeClient(server);
  Result<QueueItem> sent = Run(client->SendMassMessage("acct_1", {.text = "Hi", .user_ids = {1}}));
  ASSERT_FALSE(sent.ok());
  const std::string exposition = registry_.Serialize();
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_responses_total{code=\"401\""));
  EXPECT_THAT(exposition, ::testing::Not(HasSubstr("herald_upstream_credits_balance{")));
  EXPECT_THAT(exposition, ::testing::Not(HasSubstr("herald_upstream_rate_limit_limit{")));
  EXPECT_THAT(exposition, ::testing::Not(HasSubstr("herald_upstream_rate_limit_remaining{")));
}

TEST_F(TypedClientTest, SendMassMessageEndToEnd) {
  TestServer server([](const SeenRequest&) {
    Reply r = Json(R"({"data": {"id": 9001, "date": "2025-01-01T01:01:01+00:00", "isReady": true,
        "isDone": false, "isCanceled": false, "hasError": false, "pending": 3, "total": 3,
        "canUnsend": true, "unsendSeconds": 60},
        "_meta": {"_credits": {"used": 1, "balance": 955, "note": "Always"},
                  "_rate_limits": {"limit_minute": 1000, "remaining_minute": 994}}})");
    r.headers.emplace_back("X-Rate-Limit-Limit-Minute", "1000");
    r.headers.emplace_back("X-Rate-Limit-Remaining-Minute", "993");
    r.headers.emplace_back("X-OFAPI-Credits-Used", "1");
    r.headers.emplace_back("X-OFAPI-Credits-Balance", "954");
    return r;
  });
  auto client = MakeClient(server);
  Result<QueueItem> sent =
      Run(client->SendMassMessage("acct_1", {.text = "Hi",
                                             .user_lists = {"fans"},
                                             .price_cents = 1500,
                                             .media_files = {"ofapi_media_1"}}));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent.value->id, 9001);
  EXPECT_EQ(sent.value->total, 3);
  EXPECT_EQ(sent.info.rate_limit_remaining_minute, 993);
  EXPECT_EQ(sent.info.credits_balance, 954);
  ASSERT_TRUE(sent.info.meta.has_value());
  EXPECT_EQ(sent.info.meta->credits_note, "Always");

  const SeenRequest req = server.seen().at(0);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/api/acct_1/mass-messaging");
  EXPECT_EQ(req.headers.at("authorization"), "Bearer sk_live_secret");
  EXPECT_EQ(req.headers.at("content-type"), "application/json");
  EXPECT_THAT(req.body, HasSubstr("\"price\":15.00"));

  const std::string exposition = registry_.Serialize();
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_requests_total{endpoint=\"send_mass_message\","
                                    "outcome=\"ok\"} 1\n"));
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_request_duration_seconds_count{endpoint="
                                    "\"send_mass_message\"} 1\n"));
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_responses_total{code=\"200\",endpoint="
                                    "\"send_mass_message\"} 1\n"));
  // What the upstream reports per key is kept per team.
  EXPECT_THAT(exposition,
              HasSubstr("herald_upstream_rate_limit_limit{team=\"team_1\",tenant=\"t1\"} 1000\n"));
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_rate_limit_remaining{team=\"team_1\","
                                    "tenant=\"t1\"} 993\n"));
  EXPECT_THAT(exposition,
              HasSubstr("herald_upstream_credits_balance{team=\"team_1\",tenant=\"t1\"} 954\n"));
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_retry_after_seconds_count 0\n"));
  EXPECT_THAT(exposition, ::testing::Not(HasSubstr("sk_live_secret")));
}

TEST_F(TypedClientTest, RateLimitedCarriesRetryAfter) {
  TestServer server([](const SeenRequest&) {
    Reply r = Json(R"({"error": "Too Many Requests", "code": "rate_limited"})", 429);
    r.headers.emplace_back("Retry-After", "7");
    r.headers.emplace_back("X-Rate-Limit-Remaining-Minute", "0");
    return r;
  });
  auto client = MakeClient(server);
  Result<std::vector<Account>> res = Run(client->ListAccounts());
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(res.error().has_value());
  EXPECT_EQ(res.error()->kind, ErrorKind::kRateLimited);
  EXPECT_EQ(res.error()->retry_after, absl::Seconds(7));
  EXPECT_EQ(res.error()->code, "rate_limited");
  EXPECT_EQ(res.info.rate_limit_remaining_minute, 0);
  const std::string exposition = registry_.Serialize();
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_requests_total{endpoint=\"list_accounts\","
                                    "outcome=\"rate_limited\"} 1\n"));
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_responses_total{code=\"429\",endpoint="
                                    "\"list_accounts\"} 1\n"));
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_retry_after_seconds_bucket{le=\"5\"} 0\n"));
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_retry_after_seconds_bucket{le=\"10\"} 1\n"));
  EXPECT_THAT(exposition, HasSubstr("herald_upstream_retry_after_seconds_sum 7\n"));
}

TEST_F(TypedClientTest, OutOfCredits) {
  TestServer server([](const SeenRequest&) {
    return Json(R"({"error": "Not enough credits", "code": "insufficient_credits"})", 402);
  });
  auto client = MakeClient(server);
  Result<UserList> res = Run(client->CreateUserList("acct_1", "VIP"));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(res.error()->kind, ErrorKind::kOutOfCredits);
  EXPECT_THAT(std::string(res.status().message()), HasSubstr("Not enough credits"));
}

TEST_F(TypedClientTest, TruncatedJsonAndWrongTypesAreClearErrors) {
  TestServer server([](const SeenRequest& req) {
    if (req.target.find("/mass-messaging/1") != std::string::npos) {
      return Json(R"({"data": {"success": true, "queue": {"id": 1, "sentCount": )");
    }
    return Json(R"({"data": [{"id": 5, "isDone": "yes"}]})");
  });
  auto client = MakeClient(server);
  Result<QueueDetailResult> truncated = Run(client->GetMassMessage("acct_1", 1));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error()->kind, ErrorKind::kUnknownOutcome);
  EXPECT_THAT(std::string(truncated.status().message()),
              HasSubstr("get_mass_message: HTTP 200 with a body that does not match the contract: "
                        "invalid JSON"));

  Result<std::vector<QueueItem>> wrong = Run(client->ListMassMessageQueue("acct_1"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error()->kind, ErrorKind::kUnknownOutcome);
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("data[0].isDone: expected a boolean, got a string"));
  // The connection is fine: both calls used the same one.
  EXPECT_EQ(server.accepted(), 1);
}

TEST_F(TypedClientTest, UploadSendsMultipart) {
  TestServer server([](const SeenRequest&) {
    return Json(R"({"prefixed_id": "ofapi_media_01JR", "file_name": "v.mp4"})");
  });
  auto client = MakeClient(server);
  Result<UploadedMedia> res =
      Run(client->UploadMediaFromUrl("acct_1", "https://cdn.example.com/v.mp4"));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res.value->prefixed_id, "ofapi_media_01JR");
  const SeenRequest req = server.seen().at(0);
  EXPECT_EQ(req.target, "/api/acct_1/media/upload");
  EXPECT_THAT(req.headers.at("content-type"), StartsWith("multipart/form-data; boundary="));
  EXPECT_THAT(req.body, HasSubstr("name=\"file_url\"\r\n\r\nhttps://cdn.example.com/v.mp4\r\n"));
}

TEST_F(TypedClientTest, AllBuyersFollowsNextPageOnTheApiOrigin) {
  // Three pages: a link, an empty page with a link (not the end), then the last page.
  uint16_t port = 0;
  TestServer server([&port](const SeenRequest& req) {
    const std::string base =
        StrCat("http://127.0.0.1:", port, "/api/acct_1/engagement/messages/77/buyers");
    if (req.target.find("page=2") != std::string::npos) {
      return Json(StrCat(R"({"data": {"list": [], "hasMore": true, "marker": "m2"},
          "_pagination": {"next_page": ")",
                         base, R"(?page=3"}})"));
    }
    if (req.target.find("page=3") != std::string::npos) {
      return Json(R"({"data": {"list": [{"id": 3, "name": "C"}], "hasMore": false},
          "_pagination": {"next_page": null}})");
    }
    return Json(StrCat(R"({"data": {"list": [{"id": 1}, {"id": "2"}], "hasMore": true,
        "marker": 1}, "_pagination": {"next_page": ")",
                       base, R"(?page=2"}})"));
  });
  port = server.port();
  auto client = MakeClient(server);
  Result<AllBuyers> all = Run(client->ListAllMessageBuyers("acct_1", 77));
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all.value->buyers.size(), 3u);
  EXPECT_EQ(all.value->buyers[1].id, 2);
  EXPECT_EQ(all.value->buyers[2].name, "C");
  EXPECT_EQ(all.value->pages, 3);
  EXPECT_TRUE(all.value->complete);
  for (const SeenRequest& req : server.seen()) {
    EXPECT_EQ(req.headers.at("authorization"), "Bearer sk_live_secret");
  }
}

TEST_F(TypedClientTest, NextPageToAnotherOriginIsNotFollowed) {
  TestServer server([](const SeenRequest&) {
    return Json(R"({"data": {"list": [{"id": 1}], "hasMore": true},
        "_pagination": {"next_page": "http://127.0.0.2:1/api/acct_1/engagement/messages/77/buyers?page=2"}})");
  });
  auto client = MakeClient(server);
  Result<AllBuyers> all = Run(client->ListAllMessageBuyers("acct_1", 77));
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(all.status().message()), HasSubstr("refusing to follow next_page"));
  EXPECT_EQ(all.error()->kind, ErrorKind::kTerminal);
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(TypedClientTest, BuyerPagesStopAtTheConfiguredLimit) {
  // A server whose next_page always points at itself: paging must end anyway.
  uint16_t port = 0;
  TestServer server([&port](const SeenRequest&) {
    return Json(StrCat(R"({"data": {"list": [{"id": 1}], "hasMore": true}, "_pagination":
        {"next_page": "http://127.0.0.1:)",
                       port, R"(/api/acct_1/engagement/messages/77/buyers"}})"));
  });
  port = server.port();
  ClientConfig config;
  config.max_buyer_pages = 4;
  auto client = MakeClient(server, config);
  Result<AllBuyers> all = Run(client->ListAllMessageBuyers("acct_1", 77));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_FALSE(all.value->complete);
  EXPECT_EQ(all.value->pages, 4);
  EXPECT_EQ(server.requests(), 4);
}

TEST_F(TypedClientTest, AnEmptyPageWithoutALinkUnderTheSameMarkerEndsThePaging) {
  // More is promised, but the next request would be the one just answered.
  TestServer server([](const SeenRequest& req) {
    if (req.target.find("marker=m1") != std::string::npos) {
      return Json(R"({"data": {"list": [], "hasMore": true, "marker": "m1"}})");
    }
    return Json(R"({"data": {"list": [{"id": 1}], "hasMore": true, "marker": "m1"}})");
  });
  auto client = MakeClient(server);
  Result<AllBuyers> all = Run(client->ListAllMessageBuyers("acct_1", 77));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all.value->buyers.size(), 1u);
  EXPECT_FALSE(all.value->complete);
  EXPECT_EQ(all.value->pages, 2);
  EXPECT_EQ(server.requests(), 2);
}

TEST_F(TypedClientTest, RefusedRequestsAreNotSent) {
  TestServer server([](const SeenRequest&) { return Json("{}"); });
  auto client = MakeClient(server);
  Result<QueueItem> res = Run(client->SendMassMessage("acct_1", {.text = "no recipients"}));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(res.error()->kind, ErrorKind::kTerminal);
  EXPECT_EQ(server.requests(), 0);
}

TEST(ClientConfigTest, Validation) {
  EXPECT_TRUE(ValidateClientConfig({.base_url = "http://127.0.0.1:8080", .api_key = "k"}).ok());
  EXPECT_FALSE(ValidateClientConfig({.base_url = "http://127.0.0.1:8080"}).ok());
  const absl::Status bad_key =
      ValidateClientConfig({.base_url = "http://127.0.0.1:8080", .api_key = "secret key\n"});
  EXPECT_FALSE(bad_key.ok());
  EXPECT_THAT(std::string(bad_key.message()), ::testing::Not(HasSubstr("secret")));
  EXPECT_FALSE(ValidateClientConfig({.base_url = "127.0.0.1:8080", .api_key = "k"}).ok());
  EXPECT_FALSE(
      ValidateClientConfig({.base_url = "https://app.onlyfansapi.com/api", .api_key = "k"}).ok());
  ClientConfig no_pages{.api_key = "k"};
  no_pages.max_buyer_pages = 0;
  EXPECT_FALSE(ValidateClientConfig(no_pages).ok());
}

}  // namespace
}  // namespace herald::upstream
