#include <set>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/metrics/admin_server.h>

namespace herald::metrics {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response MakeResponse(const Request& req, http::status status, std::string_view content_type,
                      std::string body) {
  Response res(status, req.version());
  res.set(http::field::server, "herald");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(req.keep_alive());
  if (req.method() == http::verb::head) {
    res.content_length(body.size());
  } else {
    res.body() = std::move(body);
    res.prepare_payload();
  }
  return res;
}

}  // namespace

class AdminServer::Impl {
 public:
  Impl(AdminServerConfig config, const Registry& registry, const Readiness& readiness)
      : config_(std::move(config)), registry_(registry), readiness_(readiness), acceptor_(ioc_) {}

  ~Impl() { Stop(); }

  absl::Status Start() {
    if (thread_.joinable()) return absl::FailedPreconditionError("admin server already started");
    const std::string where = config_.address.ToString();
    boost::system::error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(config_.address.host, std::to_string(config_.address.port),
                                    tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(
          StrCat("admin server: cannot resolve ", where, ": ", ec.message()));
    }
    const tcp::endpoint endpoint = results.begin()->endpoint();
    if (acceptor_.open(endpoint.protocol(), ec); !ec) {
      acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) acceptor_.bind(endpoint, ec);
      if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      acceptor_.close();
      return absl::UnavailableError(
          StrCat("admin server: cannot listen on ", where, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(ioc_, AcceptLoop(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
    log::Info("admin server listening",
              {{"address", endpoint.address().to_string()}, {"port", port_}});
    return absl::OkStatus();
  }

  uint16_t port() const { return port_; }

  void Stop() {
    if (!thread_.joinable()) return;
    asio::post(ioc_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      for (beast::tcp_stream* stream : sessions_) stream->socket().close(ignored);
    });
    // run() returns once the accept loop and every session have finished.
    thread_.join();
  }

 private:
  asio::awaitable<void> AcceptLoop() {
    asio::steady_timer backoff(ioc_);
    while (acceptor_.is_open()) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec) {
        // Out of file descriptors and the like: do not spin; try again shortly.
        log::Warn("admin server accept failed", {{"error", ec.message()}});
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(kUseTuple);
        continue;
      }
      asio::co_spawn(ioc_, Session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    sessions_.insert(&stream);
    beast::flat_buffer buffer;
    for (;;) {
      stream.expires_after(absl::ToChronoNanoseconds(config_.idle_timeout));
      http::request_parser<http::string_body> parser;
      parser.header_limit(config_.max_request_bytes);
      parser.body_limit(config_.max_request_bytes);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
      if (ec == http::error::header_limit || ec == http::error::body_limit) {
        Response res(http::status::payload_too_large, 11);
        res.set(http::field::connection, "close");
        res.body() = "request too large\n";
        res.prepare_payload();
        co_await http::async_write(stream, res, kUseTuple);
        break;
      }
      if (ec) break;  // closed, timed out, stopped or malformed: nothing more to answer
      Response res = Handle(parser.get());
      const bool keep_alive = res.keep_alive();
      auto [wec, written] = co_await http::async_write(stream, res, kUseTuple);
      if (wec || !keep_alive) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    sessions_.erase(&stream);
  }

  Response Handle(const Request& req) {
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      Response res =
          MakeResponse(req, http::status::method_not_allowed, "text/plain", "method not allowed\n");
      res.set(http::field::allow, "GET, HEAD");
      return res;
    }
    std::string_view path = req.target();
    path = path.substr(0, path.find('?'));
    if (path == "/metrics") {
      return MakeResponse(req, http::status::ok, kTextContentType, registry_.Serialize());
    }
    if (path == "/healthz") return MakeResponse(req, http::status::ok, "text/plain", "ok\n");
    if (path == "/readyz") {
      const bool ready = readiness_.Ready();
      std::string report = readiness_.Report();
      if (report.empty()) report = "ok\n";
      return MakeResponse(req, ready ? http::status::ok : http::status::service_unavailable,
                          "text/plain", std::move(report));
    }
    if (path == "/") {
      return MakeResponse(req, http::status::ok, "text/plain",
                          "herald admin\n/metrics\n/healthz\n/readyz\n");
    }
    return MakeResponse(req, http::status::not_found, "text/plain", "not found\n");
  }

  const AdminServerConfig config_;
  const Registry& registry_;
  const Readiness& readiness_;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::set<beast::tcp_stream*> sessions_;  // touched only on ioc_'s thread
  std::thread thread_;
};

AdminServer::AdminServer(AdminServerConfig config, const Registry& registry,
                         const Readiness& readiness)
    : impl_(std::make_unique<Impl>(std::move(config), registry, readiness)) {}

AdminServer::~AdminServer() = default;

absl::Status AdminServer::Start() { return impl_->Start(); }
uint16_t AdminServer::port() const { return impl_->port(); }
void AdminServer::Stop() { impl_->Stop(); }

}  // namespace herald::metrics
