// One small HTTP/1.1 server (Boost.Beast) for every HTTP surface of Herald: the admin port, the
// webhook ingest and the upstream simulator. It owns what each of them would otherwise repeat:
// the accept loop with backoff, keep-alive, request limits (413), an idle timeout between
// requests and a deadline for reading one request (slow clients are cut off), a connection cap,
// optional TLS, and a gate so Close() returns only when every session has ended.
//
// Handlers are coroutines that see a parsed request and return a reply; they never deal with
// sockets. A handler may ask for the connection to be reset without a response (the simulator's
// fault injection does).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <absl/status/status.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <herald/common/config.h>

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace herald::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

struct Reply {
  Response response;
  // Close the connection with a TCP reset instead of answering.
  bool reset = false;
};

// Builds a response to `request` (same version and keep-alive) with a body and a content type.
Response MakeResponse(const Request& request, unsigned status, std::string_view content_type,
                      std::string body);

// Called once per request, on the connection's strand; the request stays valid until the
// returned coroutine completes, and the handler may move its body out. The server then sets
// Content-Length from the body (for HEAD: the body's length, and the body is not sent), adds the
// Server header unless the response has one, and downgrades keep-alive when the client or the
// response asked for `Connection: close` or the server is closing. An exception is logged and
// answered 500 with `Connection: close`. There is no deadline while the handler runs: a handler
// that calls out keeps its own.
using Handler = std::function<boost::asio::awaitable<Reply>(Request&)>;

struct ServerConfig {
  config::HostPort address{"127.0.0.1", 0};
  // The `server` field of every line the server logs ("admin", "ingest", ...).
  std::string name = "http";
  // A connection that waits this long for a request (its first, or the next one on keep-alive)
  // is closed.
  absl::Duration idle_timeout = absl::Seconds(30);
  // One request (headers and body) must arrive within this once its first byte has; a slower
  // client is disconnected (slowloris protection).
  absl::Duration request_timeout = absl::Seconds(10);
  // A larger header block is answered 431, a larger body 413 (as soon as its Content-Length
  // says so, before it is read), and the connection is closed.
  uint32_t max_header_bytes = 16 * 1024;
  uint64_t max_body_bytes = 1024 * 1024;
  // The bodies all connections may be reading at once, by their Content-Length (a chunked one
  // counts as max_body_bytes), until their handlers return: a request past it is answered 503
  // with Retry-After, before its body is read, and the connection is closed. So connections
  // that each declare a large body and send it slowly cannot hold more memory than this.
  // 0: no budget.
  uint64_t max_body_bytes_in_flight = 0;
  // Connections beyond this are accepted and closed at once, so a flood cannot exhaust memory.
  uint32_t max_connections = 10'000;
  // Sets TCP_NODELAY on accepted sockets.
  bool no_delay = true;
  // Content type of the 413 and 431 answers, and their bodies.
  std::string too_large_content_type = "text/plain";
  std::string too_large_body = "request too large\n";
  std::string header_too_large_body = "request header fields too large\n";
  // Called when the server answers a request itself, without the handler, because it could not
  // be read: 400 (not HTTP), 413 (body over max_body_bytes), 431 (headers over
  // max_header_bytes) or 503 (bodies over max_body_bytes_in_flight). Runs on the connection's
  // strand before the answer is written, so it has run by the time the client reads it. Optional;
  // for the metrics of a surface.
  std::function<void(unsigned status)> on_refused;
  // The `Server` header of every response (empty: none).
  std::string server_header = "herald";
  // When set, every connection is served over TLS (no plain text), with the context this
  // returns when it is accepted: a renewed certificate is picked up by new connections. The TLS
  // handshake must finish within request_timeout. Called on the accept strand; a null context
  // refuses the connection.
  std::function<std::shared_ptr<boost::asio::ssl::context>()> tls;
};

class Server {
 public:
  // Sessions run on `executor` (typically an io_context run by one or more threads), each on a
  // strand of its own; `handler` is called on it, concurrently for different connections when
  // several threads run it. The executor's context must outlive the server and its sessions
  // (they keep the server's state alive until they end).
  Server(boost::asio::any_io_executor executor, ServerConfig config, Handler handler);
  ~Server();  // Closes the listener and the open connections; does not wait for them.

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. Fails (and serves nothing) when the address cannot be resolved
  // (InvalidArgument) or bound (Unavailable; the message names the address), or when a timeout
  // or limit is not positive (InvalidArgument). Call once.
  absl::Status Start();
  // The bound port (the chosen one for port 0). Valid after Start().
  uint16_t port() const;
  // Open connections right now.
  int64_t connections() const;

  // Stops accepting, closes idle connections, lets requests being read or handled finish and be
  // answered (with `Connection: close`), and completes when every session has ended. May be
  // awaited on any executor, by several callers. It waits as long as the slowest handler (and a
  // request being read, up to request_timeout): bound it with a drain timeout and call Stop()
  // when that expires.
  boost::asio::awaitable<void> Close();
  // Stops accepting and closes every connection now, without waiting. Handlers already running
  // are not interrupted; their answers are dropped. Thread-safe.
  void Stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace herald::http
