#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/upstream_sim/server.h>

namespace herald::upstream_sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// Closes the connection with a TCP reset and no response.
void Abort(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().set_option(asio::socket_base::linger(true, 0), ignored);
  stream.socket().close(ignored);
}

}  // namespace

class Server::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, ServerConfig config, Api& api, Control& control, SimState& state)
      : io_(io),
        config_(std::move(config)),
        api_(api),
        control_(control),
        state_(state),
        acceptor_(io) {}

  absl::Status Start() {
    const std::string where = config_.listen.ToString();
    boost::system::error_code ec;
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(config_.listen.host, std::to_string(config_.listen.port),
                                    tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(StrCat("cannot resolve ", where, ": ", ec.message()));
    }
    const tcp::endpoint endpoint = results.begin()->endpoint();
    if (acceptor_.open(endpoint.protocol(), ec); !ec) {
      acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) acceptor_.bind(endpoint, ec);
      if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      acceptor_.close();
      return absl::UnavailableError(StrCat("cannot listen on ", where, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(acceptor_.get_executor(), AcceptLoop(shared_from_this()), asio::detached);
    return absl::OkStatus();
  }

  uint16_t port() const { return port_; }

  void Stop() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      boost::system::error_code ignored;
      self->acceptor_.close(ignored);
    });
  }

 private:
  static asio::awaitable<void> AcceptLoop(std::shared_ptr<Impl> self) {
    asio::steady_timer backoff(self->io_);
    while (self->acceptor_.is_open()) {
      auto [ec, socket] = co_await self->acceptor_.async_accept(kUseTuple);
      if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) co_return;
      if (ec) {
        log::Warn("accept failed", {{"error", ec.message()}});
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(kUseTuple);
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      asio::co_spawn(self->io_, Session(self, std::move(socket)), asio::detached);
    }
  }

  static ApiRequest ToApiRequest(http::request<http::string_body>& req) {
    ApiRequest out;
    out.method = std::string(req.method_string());
    out.target = std::string(req.target());
    out.authorization = std::string(req[http::field::authorization]);
    out.content_type = std::string(req[http::field::content_type]);
    out.host = std::string(req[http::field::host]);
    out.body = std::move(req.body());
    return out;
  }

  static asio::awaitable<void> Session(std::shared_ptr<Impl> self, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    RequestCounters& counters = self->state_.counters();
    for (;;) {
      stream.expires_after(absl::ToChronoNanoseconds(self->config_.idle_timeout));
      http::request_parser<http::string_body> parser;
      parser.header_limit(64 * 1024);
      parser.body_limit(self->config_.max_body_bytes);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
      if (ec == http::error::body_limit || ec == http::error::header_limit) {
        http::response<http::string_body> res(http::status::payload_too_large, 11);
        res.set(http::field::content_type, "application/json");
        res.set(http::field::connection, "close");
        res.body() = R"({"error":"Request too large.","code":"payload_too_large"})";
        res.prepare_payload();
        co_await http::async_write(stream, res, kUseTuple);
        break;
      }
      if (ec) break;
      http::request<http::string_body>& req = parser.get();
      const bool keep_alive = req.keep_alive();
      const unsigned version = req.version();
      ApiRequest api_req = ToApiRequest(req);
      ApiResponse api_res;
      const std::string_view target = api_req.target;
      if (target == "/_sim" || target.starts_with("/_sim/") || target.starts_with("/_sim?")) {
        api_res = self->control_.Handle(api_req);
      } else {
        const std::string path(target.substr(0, target.find('?')));
        const FaultDecision fault = self->state_.faults().Decide(
            self->api_.TeamOf(api_req.authorization), api_req.method, path);
        if (fault.latency > absl::ZeroDuration()) {
          counters.fault_delayed.fetch_add(1, std::memory_order_relaxed);
          asio::steady_timer timer(stream.get_executor());
          timer.expires_after(absl::ToChronoNanoseconds(fault.latency));
          co_await timer.async_wait(kUseTuple);
        }
        if (fault.action == FaultAction::kReset) {
          counters.fault_resets.fetch_add(1, std::memory_order_relaxed);
          Abort(stream);
          co_return;
        }
        if (fault.action == FaultAction::kError) {
          counters.fault_errors.fetch_add(1, std::memory_order_relaxed);
          api_res.status = fault.status;
          api_res.body = R"({"error":"Internal Server Error","code":"internal_error"})";
        } else {
          api_res = self->api_.Handle(api_req);
          if (fault.action == FaultAction::kCommitThenLose) {
            counters.fault_lost_responses.fetch_add(1, std::memory_order_relaxed);
            Abort(stream);
            co_return;
          }
        }
      }
      http::response<http::string_body> res(static_cast<http::status>(api_res.status), version);
      res.set(http::field::server, "upstream-sim");
      res.set(http::field::content_type, "application/json");
      for (const auto& [name, value] : api_res.headers) res.set(name, value);
      res.keep_alive(keep_alive);
      res.body() = std::move(api_res.body);
      res.prepare_payload();
      auto [wec, written] = co_await http::async_write(stream, res, kUseTuple);
      if (wec || !keep_alive) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::io_context& io_;
  const ServerConfig config_;
  Api& api_;
  Control& control_;
  SimState& state_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
};

Server::Server(asio::io_context& io, ServerConfig config, Api& api, Control& control,
               SimState& state)
    : impl_(std::make_shared<Impl>(io, std::move(config), api, control, state)) {}

Server::~Server() = default;

absl::Status Server::Start() { return impl_->Start(); }
uint16_t Server::port() const { return impl_->port(); }
void Server::Stop() { impl_->Stop(); }

}  // namespace herald::upstream_sim
