#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <absl/time/clock.h>
#include <absl/time/time.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <herald/common/gate.h>
#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/http/server.h>

namespace herald::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// Pause after a failed accept (out of file descriptors and the like) instead of spinning.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

// A request's share of ServerConfig::max_body_bytes_in_flight, held until its handler has
// returned (Release), or it was refused.
class BodyReservation {
 public:
  explicit BodyReservation(std::atomic<uint64_t>& in_flight) : in_flight_(in_flight) {}
  ~BodyReservation() { Release(); }
  BodyReservation(const BodyReservation&) = delete;
  BodyReservation& operator=(const BodyReservation&) = delete;

  // Takes `bytes` unless that would put the total over `budget`.
  bool Take(uint64_t bytes, uint64_t budget) {
    uint64_t now = in_flight_.load(std::memory_order_relaxed);
    do {
      if (now + bytes > budget) return false;
    } while (!in_flight_.compare_exchange_weak(now, now + bytes, std::memory_order_relaxed));
    bytes_ = bytes;
    return true;
  }

  void Release() {
    if (bytes_ > 0) in_flight_.fetch_sub(bytes_, std::memory_order_relaxed);
    bytes_ = 0;
  }

 private:
  std::atomic<uint64_t>& in_flight_;
  uint64_t bytes_ = 0;
};

// After a refusal (413, 400) the rest of the request is read and dropped for at most this long
// before closing, so the client reads the answer instead of a reset caused by unread data.
constexpr auto kLingerTimeout = std::chrono::seconds(1);
// The read that waits for a request's first byte.
constexpr size_t kFirstReadBytes = 4096;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// An HTTP/1.1 request that waits for "100 Continue" before sending its body (HTTP/1.0 clients'
// expectations are ignored, as RFC 9110 asks).
bool ExpectsContinue(const bhttp::request<bhttp::string_body>& request) {
  if (request.version() < 11) return false;
  const auto expect = request.find(bhttp::field::expect);
  return expect != request.end() && beast::iequals(expect->value(), "100-continue");
}

// What makes a request head unusable that the parser lets through (RFC 9112), or empty: an
// HTTP/1.1 request without exactly one Host (§3.2), and a Transfer-Encoding whose last coding is
// not chunked, which leaves the body's end unknown (§6.3; reading it as bodiless would take the
// body for the next request).
std::string_view HeadProblem(const bhttp::request_parser<bhttp::string_body>& parser) {
  const bhttp::request<bhttp::string_body>& request = parser.get();
  if (request.version() >= 11 && request.count(bhttp::field::host) != 1) {
    return "bad request: an HTTP/1.1 request has one Host header\n";
  }
  if (request.find(bhttp::field::transfer_encoding) != request.end() && !parser.chunked()) {
    return "bad request: a Transfer-Encoding must end with chunked\n";
  }
  return {};
}

// Drops the empty lines a client may send before a request line (RFC 9112 §2.2), such as a
// stray CRLF after a body; returns how many bytes they took.
size_t SkipEmptyLines(beast::flat_buffer& buffer) {
  const auto* data = static_cast<const char*>(buffer.data().data());
  size_t n = 0;
  while (n < buffer.size() && (data[n] == '\r' || data[n] == '\n')) ++n;
  buffer.consume(n);
  return n;
}

// The most bytes of empty lines skipped before a request: two lines' worth. More would let a
// client hold a connection without ever sending a request (each renewing the idle timeout).
constexpr size_t kMaxEmptyLineBytes = 4;

// The current time as an HTTP date (RFC 9110 §5.6.7), formatted once a second per thread.
std::string_view HttpDate() {
  thread_local int64_t formatted_second = -1;
  thread_local std::string text;
  const absl::Time now = absl::Now();
  if (const int64_t second = absl::ToUnixSeconds(now); second != formatted_second) {
    formatted_second = second;
    text = absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", now, absl::UTCTimeZone());
  }
  return text;
}

void ExpiresAfter(beast::tcp_stream& stream, absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) {
    stream.expires_never();
  } else {
    stream.expires_after(absl::ToChronoNanoseconds(timeout));
  }
}

// Closes the connection with a TCP reset and no response.
void Abort(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().set_option(asio::socket_base::linger(true, 0), ignored);
  stream.close();
}

// A malformed request (as opposed to one cut short or too large).
bool IsParseError(const boost::system::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
         ec != bhttp::error::need_more && ec != bhttp::error::header_limit &&
         ec != bhttp::error::body_limit && ec != bhttp::error::buffer_overflow;
}

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection, plain or TLS. `stream` runs on the session's strand; so does everything that
// touches it.
struct Session {
  explicit Session(tcp::socket socket)
      : stream(std::in_place_type<beast::tcp_stream>, std::move(socket)) {}
  Session(tcp::socket socket, std::shared_ptr<asio::ssl::context> context)
      : tls_context(std::move(context)),
        stream(std::in_place_type<TlsStream>, std::move(socket), *tls_context) {}

  // The TCP layer under either: its timeouts, and closing it ends the connection.
  beast::tcp_stream& transport() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); },
                      stream);
  }

  std::shared_ptr<asio::ssl::context> tls_context;  // before `stream`, which refers to it
  std::variant<beast::tcp_stream, TlsStream> stream;
  // Waiting for the first byte of a request (or lingering after a refusal): Close() may end the
  // connection now without losing a request. Strand only.
  bool idle = false;
};

// Completion of a detached coroutine: nothing in it is expected to throw (handler exceptions
// are caught), so an exception is logged rather than thrown out of io_context::run().
auto LogFailure(std::string name, std::string what) {
  return [name = std::move(name), what = std::move(what)](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::Error("http server coroutine failed",
                 {{"server", name}, {"coroutine", what}, {"error", ex.what()}});
    }
  };
}

absl::Status Validate(const ServerConfig& config) {
  if (config.idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("http server: idle_timeout must be positive");
  }
  if (config.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("http server: request_timeout must be positive");
  }
  if (config.max_header_bytes == 0 || config.max_connections == 0) {
    return absl::InvalidArgumentError(
        "http server: max_header_bytes and max_connections must be positive");
  }
  return absl::OkStatus();
}

}  // namespace

Response MakeResponse(const Request& request, unsigned status, std::string_view content_type,
                      std::string body) {
  Response response(static_cast<bhttp::status>(status), request.version());
  response.set(bhttp::field::content_type, content_type);
  response.keep_alive(request.keep_alive());
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

class Server::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, ServerConfig config, Handler handler)
      : executor_(std::move(executor)),
        config_(std::move(config)),
        handler_(std::move(handler)),
        accept_strand_(asio::make_strand(executor_)),
        acceptor_(accept_strand_),
        backoff_(accept_strand_) {}

  absl::Status Start() {
    if (started_.exchange(true)) {
      return absl::FailedPreconditionError("http server: already started");
    }
    if (absl::Status valid = Validate(config_); !valid.ok()) return valid;
    GateHolder accept_hold(gate_);
    if (!accept_hold || stopped_.load()) {
      return absl::FailedPreconditionError("http server: closed before it started");
    }
    const std::string where = config_.address.ToString();
    boost::system::error_code ec;
    tcp::resolver resolver(executor_);
    auto results = resolver.resolve(config_.address.host, std::to_string(config_.address.port),
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
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      return absl::UnavailableError(StrCat("cannot listen on ", where, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(accept_strand_, AcceptLoop(shared_from_this(), std::move(accept_hold)),
                   LogFailure(config_.name, "accept loop"));
    return absl::OkStatus();
  }

  uint16_t port() const { return port_.load(); }
  int64_t connections() const { return connections_.load(); }

  asio::awaitable<void> Close() {
    draining_.store(true);
    CloseAcceptor();
    // Sessions waiting for a request end now; the others see draining_ before they read the
    // next one, and answer the current one with `Connection: close`.
    ForEachSession([](const std::shared_ptr<Session>& session) {
      asio::post(session->transport().get_executor(), [session] {
        if (session->idle) session->transport().close();
      });
    });
    co_await gate_.Close();
  }

  void Stop() {
    stopped_.store(true);
    CloseAcceptor();
    ForEachSession([](const std::shared_ptr<Session>& session) {
      asio::post(session->transport().get_executor(), [session] { session->transport().close(); });
    });
  }

 private:
  bool stopping() const { return draining_.load() || stopped_.load(); }

  void CloseAcceptor() {
    asio::post(accept_strand_, [self = shared_from_this()] {
      boost::system::error_code ignored;
      self->acceptor_.close(ignored);
      self->backoff_.cancel();
    });
  }

  template <typename F>
  void ForEachSession(F f) {
    std::vector<std::shared_ptr<Session>> sessions;
    {
      std::lock_guard lock(mu_);
      sessions.reserve(sessions_.size());
      for (const auto& [raw, session] : sessions_) sessions.push_back(session);
    }
    for (const std::shared_ptr<Session>& session : sessions) f(session);
  }

  static asio::awaitable<void> AcceptLoop(std::shared_ptr<Impl> self, GateHolder hold) {
    const GateHolder held = std::move(hold);
    for (;;) {
      auto [ec, socket] =
          co_await self->acceptor_.async_accept(asio::make_strand(self->executor_), kUseTuple);
      if (!self->acceptor_.is_open() || self->stopping()) co_return;
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) {
        log::Warn("http accept failed", {{"server", self->config_.name}, {"error", ec.message()}});
        self->backoff_.expires_after(kAcceptBackoff);
        co_await self->backoff_.async_wait(kUseTuple);
        continue;
      }
      self->Admit(tcp::socket(std::move(socket)));
    }
  }

  // On the accept strand.
  void Admit(tcp::socket socket) {
    boost::system::error_code ignored;
    if (connections_.load() >= static_cast<int64_t>(config_.max_connections)) {
      log::Debug("http connection refused: too many",
                 {{"server", config_.name}, {"max_connections", config_.max_connections}});
      socket.close(ignored);
      return;
    }
    GateHolder hold(gate_);
    if (!hold) {
      socket.close(ignored);
      return;
    }
    if (config_.no_delay) socket.set_option(tcp::no_delay(true), ignored);
    std::shared_ptr<Session> session;
    if (config_.tls) {
      std::shared_ptr<asio::ssl::context> context = config_.tls();
      if (context == nullptr) {
        log::Warn("http connection refused: no TLS context", {{"server", config_.name}});
        socket.close(ignored);
        return;
      }
      session = std::make_shared<Session>(std::move(socket), std::move(context));
    } else {
      session = std::make_shared<Session>(std::move(socket));
    }
    {
      std::lock_guard lock(mu_);
      sessions_.emplace(session.get(), session);
    }
    connections_.fetch_add(1);
    asio::co_spawn(session->transport().get_executor(),
                   RunSession(shared_from_this(), session, std::move(hold)),
                   LogFailure(config_.name, "session"));
  }

  // Removes a session from the open set however its coroutine ends.
  struct Registration {
    Impl* impl;
    Session* session;
    ~Registration() {
      {
        std::lock_guard lock(impl->mu_);
        impl->sessions_.erase(session);
      }
      impl->connections_.fetch_sub(1);
    }
  };

  static asio::awaitable<void> RunSession(std::shared_ptr<Impl> self,
                                          std::shared_ptr<Session> session, GateHolder hold) {
    // Locals end before the parameters: the gate is left while `self` still owns it.
    const GateHolder held = std::move(hold);
    const Registration registration{self.get(), session.get()};
    co_await self->Serve(*session);
  }

  asio::awaitable<void> Serve(Session& s) {
    if (auto* tls = std::get_if<TlsStream>(&s.stream)) {
      ExpiresAfter(s.transport(), config_.request_timeout);
      auto [ec] = co_await tls->async_handshake(asio::ssl::stream_base::server, kUseTuple);
      if (ec) {
        log::Debug("tls handshake failed", {{"server", config_.name}, {"error", ec.message()}});
        s.transport().close();
        co_return;
      }
      co_await ServeOn(s, *tls);
    } else {
      co_await ServeOn(s, std::get<beast::tcp_stream>(s.stream));
    }
  }

  template <typename Stream>
  asio::awaitable<void> ServeOn(Session& s, Stream& stream) {
    beast::flat_buffer buffer;
    size_t empty_line_bytes = 0;  // since the last request
    for (;;) {
      // Checked on the strand before going idle; Close() posts to the strand after setting it,
      // so an idle session is either closed by Close() or never goes idle.
      if (stopping()) break;
      if (buffer.size() == 0) {
        s.idle = true;
        ExpiresAfter(s.transport(), config_.idle_timeout);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(kFirstReadBytes), kUseTuple);
        s.idle = false;
        if (ec) break;  // the client left, idle too long, or Close()/Stop()
        buffer.commit(n);
      }
      empty_line_bytes += SkipEmptyLines(buffer);
      if (empty_line_bytes > kMaxEmptyLineBytes) {
        co_await Refuse(s, stream, bhttp::status::bad_request, "text/plain", "bad request\n");
        co_return;
      }
      if (buffer.size() == 0) continue;
      empty_line_bytes = 0;

      // The whole request must arrive within request_timeout of its first byte.
      ExpiresAfter(s.transport(), config_.request_timeout);
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(config_.max_header_bytes);
      parser.body_limit(config_.max_body_bytes);
      auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kUseTuple);
      if (!ec) {
        if (const std::string_view problem = HeadProblem(parser); !problem.empty()) {
          std::string body(problem);
          co_await Refuse(s, stream, bhttp::status::bad_request, "text/plain", std::move(body));
          co_return;
        }
      }
      BodyReservation reserved(body_bytes_in_flight_);
      if (!ec && !parser.is_done() && config_.max_body_bytes_in_flight > 0) {
        const uint64_t declared = parser.content_length().value_or(config_.max_body_bytes);
        if (declared <= config_.max_body_bytes &&
            !reserved.Take(declared, config_.max_body_bytes_in_flight)) {
          co_await Refuse(s, stream, bhttp::status::service_unavailable, "text/plain",
                          "too many request bodies in flight; retry\n", /*retry_after=*/true);
          co_return;
        }
      }
      if (!ec && !parser.is_done()) {
        if (ExpectsContinue(parser.get())) {
          // The client holds the body back until it hears this (RFC 9110 §10.1.1); a request
          // refused on its header alone (413 for a Content-Length over the limit) never gets it.
          const auto interim = asio::buffer(kContinue);
          auto [write_ec, written] = co_await asio::async_write(stream, interim, kUseTuple);
          ec = write_ec;
        }
        if (!ec) std::tie(ec, n) = co_await bhttp::async_read(stream, buffer, parser, kUseTuple);
      }
      if (ec == bhttp::error::header_limit) {
        co_await Refuse(s, stream, bhttp::status::request_header_fields_too_large,
                        config_.too_large_content_type, config_.header_too_large_body);
        co_return;
      }
      if (ec == bhttp::error::body_limit) {
        co_await Refuse(s, stream, bhttp::status::payload_too_large, config_.too_large_content_type,
                        config_.too_large_body);
        co_return;
      }
      if (IsParseError(ec)) {
        co_await Refuse(s, stream, bhttp::status::bad_request, "text/plain", "bad request\n");
        co_return;
      }
      if (ec) break;  // cut short, too slow (the stream is closed), or Stop()

      Request& request = parser.get();
      const bool head = request.method() == bhttp::verb::head;
      const bool client_keep_alive = request.keep_alive();
      s.transport().expires_never();  // handlers keep their own deadlines
      Reply reply = co_await CallHandler(request);
      // Before the answer goes out: a client that has read it finds the budget freed.
      reserved.Release();
      if (reply.reset) {
        Abort(s.transport());
        co_return;
      }
      Response& response = reply.response;
      const bool keep_alive = client_keep_alive && response.keep_alive() && !stopping();
      Finish(response, head, keep_alive);
      ExpiresAfter(s.transport(), config_.request_timeout);
      auto [write_ec, written] = co_await bhttp::async_write(stream, response, kUseTuple);
      if (write_ec || !keep_alive) break;
    }
    co_await Shutdown(s, stream);
  }

  // Ends the connection: a TLS close_notify (waiting a moment for the client's), or a TCP
  // half-close followed by a moment of draining what the client still sends (a pipelined
  // request, the rest of a refused one), then closes it. Closing with unread bytes would reset
  // the connection, and the client could lose the last answer.
  template <typename Stream>
  static asio::awaitable<void> Shutdown(Session& s, Stream& stream) {
    s.transport().expires_after(kLingerTimeout);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      co_await stream.async_shutdown(kUseTuple);
    } else {
      boost::system::error_code ignored;
      s.transport().socket().shutdown(tcp::socket::shutdown_send, ignored);
      s.idle = true;
      std::array<char, 4096> sink;
      for (;;) {
        auto [read_ec, n] = co_await stream.async_read_some(asio::buffer(sink), kUseTuple);
        if (read_ec) break;
      }
    }
    s.transport().close();
  }

  asio::awaitable<Reply> CallHandler(Request& request) {
    try {
      co_return co_await handler_(request);
    } catch (const std::exception& e) {
      log::Error("http handler failed", {{"server", config_.name},
                                         {"target", std::string_view(request.target())},
                                         {"error", e.what()}});
    }
    Reply reply{.response = MakeResponse(request, 500, "text/plain", "internal server error\n")};
    reply.response.keep_alive(false);
    co_return reply;
  }

  void Finish(Response& response, bool head, bool keep_alive) const {
    response.set(bhttp::field::date, HttpDate());
    if (!config_.server_header.empty() && response.find(bhttp::field::server) == response.end()) {
      response.set(bhttp::field::server, config_.server_header);
    }
    if (head) {
      // The length of the body a GET would have had, and no body.
      if (!response.body().empty()) {
        response.content_length(response.body().size());
        response.body().clear();
      }
    } else {
      response.prepare_payload();
    }
    response.keep_alive(keep_alive);
  }

  // Answers `status` with `Connection: close`, then drops the rest of the request and closes.
  template <typename Stream>
  asio::awaitable<void> Refuse(Session& s, Stream& stream, bhttp::status status,
                               std::string_view content_type, std::string body,
                               bool retry_after = false) {
    if (config_.on_refused) config_.on_refused(static_cast<unsigned>(status));
    Response response(status, 11);
    response.set(bhttp::field::content_type, content_type);
    if (retry_after) response.set(bhttp::field::retry_after, "1");
    response.body() = std::move(body);
    Finish(response, /*head=*/false, /*keep_alive=*/false);
    ExpiresAfter(s.transport(), config_.request_timeout);
    auto [ec, written] = co_await bhttp::async_write(stream, response, kUseTuple);
    if (ec) {
      s.transport().close();
      co_return;
    }
    co_await Shutdown(s, stream);
  }

  const asio::any_io_executor executor_;
  const ServerConfig config_;
  const Handler handler_;
  asio::strand<asio::any_io_executor> accept_strand_;
  tcp::acceptor acceptor_;      // accept strand only (after Start)
  asio::steady_timer backoff_;  // accept strand only
  std::atomic<uint16_t> port_{0};
  std::atomic<bool> started_{false};
  std::atomic<bool> draining_{false};  // Close() called
  std::atomic<bool> stopped_{false};   // Stop() called
  std::atomic<int64_t> connections_{0};
  std::atomic<uint64_t> body_bytes_in_flight_{0};  // see ServerConfig::max_body_bytes_in_flight
  Gate gate_;                                      // the accept loop and every session
  std::mutex mu_;
  std::unordered_map<Session*, std::shared_ptr<Session>> sessions_;  // guarded by mu_
};

Server::Server(asio::any_io_executor executor, ServerConfig config, Handler handler)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(config), std::move(handler))) {}

Server::~Server() { impl_->Stop(); }

absl::Status Server::Start() { return impl_->Start(); }
uint16_t Server::port() const { return impl_->port(); }
int64_t Server::connections() const { return impl_->connections(); }

asio::awaitable<void> Server::Close() {
  // The coroutine owns the implementation, so the Server may be destroyed while it runs.
  const std::shared_ptr<Impl> impl = impl_;
  co_await impl->Close();
}

void Server::Stop() { impl_->Stop(); }

}  // namespace herald::http
