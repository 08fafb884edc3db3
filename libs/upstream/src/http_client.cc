#include <algorithm>
#include <cerrno>
#include <chrono>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <mutex>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/upstream/error.h>
#include <herald/upstream/http_client.h>

namespace herald::upstream {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace urls = boost::urls;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::chrono::nanoseconds ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

bool HasLineBreak(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// Where a request goes, from its URL.
struct Target {
  bool tls = false;
  std::string host;         // for DNS, SNI and certificate checks; IPv6 without brackets
  std::string port;         // decimal
  std::string host_header;  // "host[:port]", IPv6 in brackets, default port omitted
  std::string pool_key;     // "scheme://host_header"
  std::string resource;     // origin-form: path and query
  std::string where;        // "host:port", for messages
};

absl::Status Refuse(absl::StatusCode code, std::string_view message) {
  return MakeUpstreamStatus(code, message, {.kind = ErrorKind::kTerminal});
}

absl::StatusOr<Target> ParseTarget(std::string_view url) {
  const auto parsed = urls::parse_uri(urls::string_view(url.data(), url.size()));
  auto bad = [&](std::string_view why) {
    return Refuse(absl::StatusCode::kInvalidArgument, StrCat("bad request URL '", url, "': ", why));
  };
  if (!parsed) return bad("not an absolute URL");
  const urls::url_view& u = *parsed;
  Target t;
  const std::string scheme = AsciiLower(std::string_view(u.scheme().data(), u.scheme().size()));
  if (scheme != "http" && scheme != "https") return bad("scheme must be http or https");
  t.tls = scheme == "https";
  if (u.has_userinfo()) return bad("user info is not allowed");
  const uint16_t default_port = t.tls ? 443 : 80;
  const uint16_t port = u.has_port() ? u.port_number() : default_port;
  if (port == 0) return bad("bad port");
  t.port = StrCat(port);
  if (u.host_type() == urls::host_type::ipv6) {
    t.host = std::string(u.encoded_host_address().data(), u.encoded_host_address().size());
    t.host_header = StrCat("[", t.host, "]");
  } else if (u.host_type() == urls::host_type::ipv4 || u.host_type() == urls::host_type::name) {
    t.host = AsciiLower(std::string_view(u.encoded_host().data(), u.encoded_host().size()));
    t.host_header = t.host;
  } else {
    return bad("missing or unsupported host");
  }
  if (t.host.empty()) return bad("missing host");
  t.where = StrCat(t.host_header, ":", port);
  if (port != default_port) StrAppend(&t.host_header, ":", port);
  t.pool_key = StrCat(scheme, "://", t.host_header);
  t.resource = std::string(u.encoded_target().data(), u.encoded_target().size());
  if (t.resource.empty() || t.resource.front() != '/') t.resource.insert(0, "/");
  return t;
}

http::verb Verb(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet:
      return http::verb::get;
    case HttpMethod::kPost:
      return http::verb::post;
    case HttpMethod::kPut:
      return http::verb::put;
    case HttpMethod::kDelete:
      return http::verb::delete_;
  }
  return http::verb::get;
}

// Checks a certificate chain as host_name_verification does, and keeps the reason of a refusal
// so the error can say why ("self-signed certificate") instead of OpenSSL's generic text.
class VerifyPeer {
 public:
  VerifyPeer(std::string host, std::string* reason) : check_(std::move(host)), reason_(reason) {}

  bool operator()(bool preverified, ssl::verify_context& ctx) const {
    const bool ok = check_(preverified, ctx);
    if (!ok && reason_->empty()) {
      const int err = X509_STORE_CTX_get_error(ctx.native_handle());
      *reason_ = err != X509_V_OK ? X509_verify_cert_error_string(err)
                                  : "certificate does not match the host name";
    }
    return ok;
  }

 private:
  ssl::host_name_verification check_;
  std::string* reason_;
};

// One keep-alive connection, plain or TLS. Used by one call at a time.
class Connection {
 public:
  Connection(const asio::strand<asio::any_io_executor>& strand, ssl::context* tls_context) {
    if (tls_context != nullptr) {
      tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(strand, *tls_context);
    } else {
      plain_ = std::make_unique<beast::tcp_stream>(strand);
    }
  }

  bool tls() const { return tls_ != nullptr; }
  beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }
  beast::ssl_stream<beast::tcp_stream>& tls_stream() { return *tls_; }
  beast::tcp_stream& plain_stream() { return *plain_; }

  // True when an idle connection can carry a request: the peer has neither closed it nor sent
  // anything unasked (a TLS close_notify, junk). Never blocks.
  bool LooksAlive() {
    tcp::socket& socket = tcp().socket();
    if (!socket.is_open() || buffer.size() != 0) return false;
    // One system call: a peek that never blocks. An idle keep-alive connection has nothing to
    // read (EAGAIN); a closed one reads end-of-file or an error; unexpected bytes also mean the
    // connection cannot carry a new request.
    char byte;
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void Close() {
    error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();
  }

  beast::flat_buffer buffer;
  SteadyClock::time_point idle_since;
  std::string verify_error;  // why the certificate was refused, if it was

 private:
  std::unique_ptr<beast::tcp_stream> plain_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
};

// What happened to one request on one connection.
struct Exchange {
  error_code ec;           // transport or HTTP parse error; empty on success
  bool written = false;    // the whole request was handed to the socket
  bool too_large = false;  // the response exceeded max_response_bytes
  HttpResponse response;
  bool reusable = false;  // keep-alive and fully read
};

}  // namespace

std::string_view HttpMethodName(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet:
      return "GET";
    case HttpMethod::kPost:
      return "POST";
    case HttpMethod::kPut:
      return "PUT";
    case HttpMethod::kDelete:
      return "DELETE";
  }
  return "GET";
}

absl::Status ValidateHttpClientConfig(const HttpClientConfig& config) {
  auto positive = [](std::string_view field, absl::Duration d) {
    return d > absl::ZeroDuration()
               ? absl::OkStatus()
               : absl::InvalidArgumentError(ToAbsl(StrCat(field, " must be positive")));
  };
  HERALD_RETURN_IF_ERROR(positive("http.connect_timeout", config.connect_timeout));
  HERALD_RETURN_IF_ERROR(positive("http.request_timeout", config.request_timeout));
  HERALD_RETURN_IF_ERROR(positive("http.idle_timeout", config.idle_timeout));
  if (config.max_connections_per_host < 1 || config.max_connections_per_host > 1024) {
    return absl::InvalidArgumentError("http.max_connections_per_host must be in [1, 1024]");
  }
  if (config.max_response_bytes < 1024 || config.max_response_bytes > (int64_t{1} << 31)) {
    return absl::InvalidArgumentError("http.max_response_bytes must be in [1 KiB, 2 GiB]");
  }
  if (HasLineBreak(config.user_agent)) {
    return absl::InvalidArgumentError("http.user_agent must not contain line breaks");
  }
  if (config.insecure_skip_tls_verify && !config.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "http.ca_file and http.insecure_skip_tls_verify cannot be combined");
  }
  return absl::OkStatus();
}

namespace {

// The TLS context of `config`'s trust settings, shared by every client alive with the same
// settings. Loading the system's trusted certificates parses the whole bundle (tens of
// milliseconds of CPU), which every team's client would otherwise pay when it is created: an
// agency's hundreds of teams at a worker's start. A configured SSL_CTX is safe to share between
// threads. A changed CA file is read again once no client holds the old context.
absl::StatusOr<std::shared_ptr<ssl::context>> SharedTlsContext(const HttpClientConfig& config) {
  static std::mutex mu;
  static auto& contexts = *new std::map<std::pair<bool, std::string>, std::weak_ptr<ssl::context>>;
  std::lock_guard lock(mu);  // held while loading: concurrent creators load once
  std::weak_ptr<ssl::context>& entry =
      contexts[std::make_pair(config.insecure_skip_tls_verify, config.ca_file)];
  if (std::shared_ptr<ssl::context> shared = entry.lock()) return shared;

  auto tls_context = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls_context->native_handle(), TLS1_2_VERSION);
  error_code ec;
  if (config.insecure_skip_tls_verify) {
    tls_context->set_verify_mode(ssl::verify_none);
  } else {
    tls_context->set_verify_mode(ssl::verify_peer, ec);
    if (!ec) {
      if (config.ca_file.empty()) {
        tls_context->set_default_verify_paths(ec);
      } else {
        tls_context->load_verify_file(config.ca_file, ec);
      }
    }
    if (ec) {
      return absl::InvalidArgumentError(ToAbsl(
          StrCat("http.ca_file: cannot load trusted certificates",
                 config.ca_file.empty() ? std::string() : StrCat(" from '", config.ca_file, "'"),
                 ": ", ec.message())));
    }
  }
  entry = tls_context;
  return tls_context;
}

}  // namespace

class HttpClient::Impl {
 public:
  Impl(asio::any_io_executor executor, HttpClientConfig config,
       std::shared_ptr<ssl::context> tls_context)
      : config_(std::move(config)),
        strand_(asio::make_strand(std::move(executor))),
        tls_context_(std::move(tls_context)) {}

  ~Impl() {
    for (auto& [key, pool] : pools_) {
      for (auto& conn : pool.idle) conn->Close();
    }
  }

  const HttpClientConfig& config() const { return config_; }
  const asio::strand<asio::any_io_executor>& strand() const { return strand_; }

  // Runs on strand_.
  asio::awaitable<absl::StatusOr<HttpResponse>> Run(HttpRequest request) {
    // After a cancellation the call still has to tidy up; errors are values here.
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    const SteadyClock::time_point deadline =
        SteadyClock::now() + ToChrono(request.timeout.value_or(config_.request_timeout));
    HERALD_CO_ASSIGN_OR_RETURN(const Target target, ParseTarget(request.url));
    HERALD_CO_ASSIGN_OR_RETURN(const http::request<http::string_body> req,
                               BuildRequest(request, target));
    Pool& pool = pools_[target.pool_key];
    while (true) {
      HERALD_CO_ASSIGN_OR_RETURN(Lease lease, co_await Acquire(pool, target, deadline));
      Exchange ex = co_await Perform(*lease.conn, req, deadline);
      if (!ex.ec && !ex.too_large) {
        if (ex.reusable) {
          Release(pool, std::move(lease.conn));
        } else {
          Discard(pool, *lease.conn);
        }
        co_return std::move(ex.response);
      }
      Discard(pool, *lease.conn);
      const bool cancelled = co_await Cancelled();
      // A pooled connection that fails before the request is fully written was closed by the
      // server while idle: nothing reached the application, so another connection may carry
      // the request. Once written, never again.
      if (lease.reused && !ex.written && ex.ec != beast::error::timeout && !cancelled) continue;
      co_return ExchangeError(ex, target, cancelled);
    }
  }

 private:
  struct Waiter {
    explicit Waiter(const asio::strand<asio::any_io_executor>& strand) : timer(strand) {}
    asio::steady_timer timer;
    bool woken = false;
  };

  struct Pool {
    std::vector<std::unique_ptr<Connection>> idle;  // most recently used last
    int open = 0;                                   // idle + in use + connecting
    std::list<Waiter*> waiters;
  };

  struct Lease {
    std::unique_ptr<Connection> conn;
    bool reused = false;
  };

  static asio::awaitable<bool> Cancelled() {
    asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    co_return state.cancelled() != asio::cancellation_type::none;
  }

  absl::StatusOr<http::request<http::string_body>> BuildRequest(const HttpRequest& request,
                                                                const Target& target) const {
    http::request<http::string_body> req(Verb(request.method), target.resource, 11);
    for (const auto& [name, value] : request.headers) {
      if (name.empty() || HasLineBreak(name) || HasLineBreak(value)) {
        return Refuse(absl::StatusCode::kInvalidArgument,
                      StrCat("bad request header '", name, "'"));
      }
      req.set(name, value);
    }
    req.set(http::field::host, target.host_header);
    req.set(http::field::user_agent, config_.user_agent);
    req.keep_alive(true);
    req.body() = request.body;
    req.prepare_payload();
    return req;
  }

  // A connection for `target`: a live idle one, a new one while the pool has room, or the
  // next one released, whichever comes first before the deadline.
  asio::awaitable<absl::StatusOr<Lease>> Acquire(Pool& pool, const Target& target,
                                                 SteadyClock::time_point deadline) {
    while (true) {
      while (!pool.idle.empty()) {
        std::unique_ptr<Connection> conn = std::move(pool.idle.back());
        pool.idle.pop_back();
        if (SteadyClock::now() - conn->idle_since < ToChrono(config_.idle_timeout) &&
            conn->LooksAlive()) {
          co_return Lease{std::move(conn), true};
        }
        Discard(pool, *conn);
      }
      if (pool.open < config_.max_connections_per_host) {
        ++pool.open;
        absl::StatusOr<std::unique_ptr<Connection>> conn = co_await Connect(target, deadline);
        if (!conn.ok()) {
          --pool.open;
          WakeOne(pool);
          co_return conn.status();
        }
        co_return Lease{*std::move(conn), false};
      }
      Waiter waiter(strand_);
      pool.waiters.push_back(&waiter);
      waiter.timer.expires_at(deadline);
      // Ends when woken, at the deadline, or when the call is cancelled.
      co_await waiter.timer.async_wait(kTuple);
      pool.waiters.remove(&waiter);
      const bool cancelled = co_await Cancelled();
      if (waiter.woken) {
        // Woken and cancelled at once: the freed connection goes to the next waiter, not to a
        // call whose caller has given up (a draining worker must not start a send).
        if (!cancelled) continue;
        WakeOne(pool);
      }
      co_return MakeUpstreamStatus(
          cancelled ? absl::StatusCode::kCancelled : absl::StatusCode::kDeadlineExceeded,
          cancelled ? StrCat("call to ", target.where, " cancelled while waiting for a connection")
                    : StrCat("no connection to ", target.where,
                             " became free before the deadline (pool of ",
                             config_.max_connections_per_host, ")"),
          {.kind = ErrorKind::kRetryable});
    }
  }

  void Release(Pool& pool, std::unique_ptr<Connection> conn) {
    conn->idle_since = SteadyClock::now();
    pool.idle.push_back(std::move(conn));
    WakeOne(pool);
  }

  void Discard(Pool& pool, Connection& conn) {
    conn.Close();
    --pool.open;
    WakeOne(pool);
  }

  static void WakeOne(Pool& pool) {
    if (pool.waiters.empty()) return;
    Waiter* waiter = pool.waiters.front();
    pool.waiters.pop_front();
    waiter->woken = true;
    waiter->timer.cancel();
  }

  static absl::Status ConnectError(absl::StatusCode code, std::string message, bool terminal) {
    return MakeUpstreamStatus(code, message,
                              {.kind = terminal ? ErrorKind::kTerminal : ErrorKind::kRetryable});
  }

  // DNS, TCP connect and TLS handshake, within the connect deadline.
  asio::awaitable<absl::StatusOr<std::unique_ptr<Connection>>> Connect(
      const Target& target, SteadyClock::time_point deadline) {
    const SteadyClock::time_point connect_deadline =
        std::min(deadline, SteadyClock::now() + ToChrono(config_.connect_timeout));
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<tcp::endpoint> endpoints,
                               co_await Resolve(target, connect_deadline));
    auto conn = std::make_unique<Connection>(strand_, target.tls ? tls_context_.get() : nullptr);
    beast::tcp_stream& stream = conn->tcp();
    stream.expires_at(connect_deadline);
    auto [ec, connected_to] = co_await stream.async_connect(endpoints, kTuple);
    static_cast<void>(connected_to);
    if (ec) {
      const bool cancelled = co_await Cancelled();
      co_return PreWriteError(ec, StrCat("connect to ", target.where), cancelled);
    }
    error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
    if (!conn->tls()) co_return conn;

    auto& tls = conn->tls_stream();
    // SNI carries host names only (RFC 6066); addresses are still checked against the
    // certificate's IP entries.
    error_code not_an_address;
    asio::ip::make_address(target.host, not_an_address);
    if (not_an_address && !SSL_set_tlsext_host_name(tls.native_handle(), target.host.c_str())) {
      co_return ConnectError(absl::StatusCode::kInternal, "cannot set TLS SNI", true);
    }
    if (!config_.insecure_skip_tls_verify) {
      tls.set_verify_callback(VerifyPeer(target.host, &conn->verify_error));
    }
    auto [hec] = co_await tls.async_handshake(ssl::stream_base::client, kTuple);
    if (hec) {
      if (!conn->verify_error.empty()) {
        co_return ConnectError(absl::StatusCode::kFailedPrecondition,
                               StrCat("TLS certificate verification failed for ", target.where,
                                      ": ", conn->verify_error),
                               true);
      }
      const bool cancelled = co_await Cancelled();
      co_return PreWriteError(hec, StrCat("TLS handshake with ", target.where), cancelled);
    }
    co_return conn;
  }

  // Resolution cannot be cancelled once the resolver thread runs getaddrinfo, so the call waits
  // on a timer instead and abandons a late answer.
  asio::awaitable<absl::StatusOr<std::vector<tcp::endpoint>>> Resolve(
      const Target& target, SteadyClock::time_point deadline) {
    error_code not_an_address;
    const asio::ip::address address = asio::ip::make_address(target.host, not_an_address);
    if (!not_an_address) {
      co_return std::vector<tcp::endpoint>{
          tcp::endpoint(address, static_cast<uint16_t>(std::stoi(target.port)))};
    }
    struct State {
      explicit State(const asio::strand<asio::any_io_executor>& strand)
          : resolver(strand), timer(strand) {}
      tcp::resolver resolver;
      asio::steady_timer timer;
      bool done = false;
      error_code ec;
      std::vector<tcp::endpoint> endpoints;
    };
    auto state = std::make_shared<State>(strand_);
    state->timer.expires_at(deadline);
    state->resolver.async_resolve(target.host, target.port,
                                  [state](error_code ec, tcp::resolver::results_type results) {
                                    state->done = true;
                                    state->ec = ec;
                                    for (const auto& entry : results)
                                      state->endpoints.push_back(entry.endpoint());
                                    state->timer.cancel();
                                  });
    auto [ec] = co_await state->timer.async_wait(kTuple);
    if (!state->done) {
      state->resolver.cancel();
      const bool cancelled = co_await Cancelled();
      const error_code why =
          ec ? error_code(asio::error::operation_aborted) : error_code(beast::error::timeout);
      co_return PreWriteError(why, StrCat("resolve ", target.host), cancelled);
    }
    if (state->ec || state->endpoints.empty()) {
      co_return ConnectError(absl::StatusCode::kUnavailable,
                             StrCat("cannot resolve ", target.host, ": ",
                                    state->ec ? state->ec.message() : std::string("no addresses")),
                             false);
    }
    co_return std::move(state->endpoints);
  }

  // A failure before any byte of the request could have been acted on.
  static absl::Status PreWriteError(const error_code& ec, std::string_view what, bool cancelled) {
    if (cancelled || ec == asio::error::operation_aborted) {
      return ConnectError(absl::StatusCode::kCancelled, StrCat(what, ": cancelled"), false);
    }
    if (ec == beast::error::timeout) {
      return ConnectError(absl::StatusCode::kDeadlineExceeded, StrCat(what, ": timed out"), false);
    }
    return ConnectError(absl::StatusCode::kUnavailable, StrCat(what, " failed: ", ec.message()),
                        false);
  }

  // Writes the request and reads the response, within the call's deadline.
  asio::awaitable<Exchange> Perform(Connection& conn, const http::request<http::string_body>& req,
                                    SteadyClock::time_point deadline) {
    conn.tcp().expires_at(deadline);
    if (conn.tls()) co_return co_await PerformOn(conn.tls_stream(), conn, req);
    co_return co_await PerformOn(conn.plain_stream(), conn, req);
  }

  template <typename Stream>
  asio::awaitable<Exchange> PerformOn(Stream& stream, Connection& conn,
                                      const http::request<http::string_body>& req) {
    Exchange ex;
    auto [wec, written] = co_await http::async_write(stream, req, kTuple);
    if (wec) {
      ex.ec = wec;
      co_return ex;
    }
    ex.written = true;

    // The limit covers headers and body together.
    const auto max_bytes = static_cast<uint64_t>(config_.max_response_bytes);
    http::response_parser<http::string_body> parser;
    parser.header_limit(
        static_cast<uint32_t>(std::min<uint64_t>(max_bytes, std::numeric_limits<uint32_t>::max())));
    parser.body_limit(max_bytes);
    auto [hec, header_bytes] =
        co_await http::async_read_header(stream, conn.buffer, parser, kTuple);
    if (hec) {
      ex.ec = hec;
      ex.too_large = hec == http::error::header_limit || hec == http::error::body_limit;
      co_return ex;
    }
    const uint64_t remaining = max_bytes - std::min<uint64_t>(max_bytes, header_bytes);
    if (parser.content_length().has_value() && *parser.content_length() > remaining) {
      ex.too_large = true;
      co_return ex;
    }
    parser.body_limit(remaining);
    auto [rec, body_bytes] = co_await http::async_read(stream, conn.buffer, parser, kTuple);
    if (rec) {
      ex.ec = rec;
      ex.too_large = rec == http::error::body_limit;
      co_return ex;
    }
    http::response<http::string_body> res = parser.release();
    ex.reusable = res.keep_alive() && !res.need_eof() && conn.buffer.size() == 0;
    ex.response.status = static_cast<int>(res.result_int());
    for (const auto& field : res) {
      ex.response.headers.emplace_back(std::string(field.name_string()),
                                       std::string(field.value()));
    }
    ex.response.body = std::move(res.body());
    co_return ex;
  }

  absl::Status ExchangeError(const Exchange& ex, const Target& target, bool cancelled) const {
    if (!ex.written) {
      return PreWriteError(ex.ec, StrCat("sending the request to ", target.where), cancelled);
    }
    UpstreamError error{.kind = ErrorKind::kUnknownOutcome, .request_written = true};
    const std::string_view maybe = "; the upstream may have acted on the request";
    if (cancelled || ex.ec == asio::error::operation_aborted) {
      return MakeUpstreamStatus(absl::StatusCode::kCancelled,
                                StrCat("call to ", target.where,
                                       " cancelled after the request "
                                       "was sent",
                                       maybe),
                                error);
    }
    if (ex.ec == beast::error::timeout) {
      return MakeUpstreamStatus(
          absl::StatusCode::kDeadlineExceeded,
          StrCat("no complete response from ", target.where, " before the deadline", maybe), error);
    }
    if (ex.too_large) {
      return MakeUpstreamStatus(
          absl::StatusCode::kUnknown,
          StrCat("response from ", target.where, " exceeds max_response_bytes (",
                 config_.max_response_bytes, ")", maybe),
          error);
    }
    if (ex.ec == http::error::end_of_stream || ex.ec == asio::error::eof ||
        ex.ec == asio::error::connection_reset || ex.ec == asio::error::broken_pipe) {
      return MakeUpstreamStatus(absl::StatusCode::kUnknown,
                                StrCat("connection to ", target.where,
                                       " closed before a response (", ex.ec.message(), ")", maybe),
                                error);
    }
    if (ex.ec == http::error::partial_message || ex.ec == ssl::error::stream_truncated) {
      return MakeUpstreamStatus(absl::StatusCode::kUnknown,
                                StrCat("response from ", target.where, " was truncated", maybe),
                                error);
    }
    return MakeUpstreamStatus(
        absl::StatusCode::kUnknown,
        StrCat("malformed HTTP response from ", target.where, ": ", ex.ec.message(), maybe), error);
  }

  const HttpClientConfig config_;
  const asio::strand<asio::any_io_executor> strand_;
  const std::shared_ptr<ssl::context> tls_context_;
  std::map<std::string, Pool> pools_;  // by origin; nodes never move
};

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(asio::any_io_executor executor,
                                                               HttpClientConfig config) {
  HERALD_RETURN_IF_ERROR(ValidateHttpClientConfig(config));
  HERALD_ASSIGN_OR_RETURN(std::shared_ptr<ssl::context> tls_context, SharedTlsContext(config));
  auto impl =
      std::make_shared<Impl>(std::move(executor), std::move(config), std::move(tls_context));
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

HttpClient::HttpClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

const HttpClientConfig& HttpClient::config() const { return impl_->config(); }

asio::awaitable<absl::StatusOr<HttpResponse>> HttpClient::Send(HttpRequest request) {
  // The call runs on the client's strand; cancellation of this coroutine is forwarded to it.
  std::shared_ptr<Impl> impl = impl_;
  co_return co_await asio::co_spawn(impl->strand(), impl->Run(std::move(request)),
                                    asio::use_awaitable);
}

}  // namespace herald::upstream
