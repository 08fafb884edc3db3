#include <fstream>
#include <mutex>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <herald/common/strings.h>
#include <herald/testing/net.h>

namespace herald::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Ports handed out are never below this, clear of well-known and registered services' habits.
constexpr int kLowestPort = 10'000;
constexpr const char* kReservationDir = "/tmp/herald-test-ports";

// The first port the kernel hands to outgoing connections.
int EphemeralRangeStart() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  return in >> low ? low : 32'768;
}

bool Bindable(uint16_t port) {
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc);
  boost::system::error_code ec;
  acceptor.open(tcp::v4(), ec);
  // As the servers under test do: a port whose last connections linger in TIME_WAIT is free.
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  return !ec;
}

uint16_t KernelPickedPort() {
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

// Holds a lock on `port`'s file until this process exits (the descriptor is never closed and
// not inherited by children). False when another process holds it. The files stay, empty, one
// per port at most: a file removed while another process opens it would let both lock "it".
bool Reserve(uint16_t port) {
  const std::string path = PortReservationPath(port);
  const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
  if (fd < 0) return false;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  if (!Bindable(port)) {
    ::close(fd);
    return false;
  }
  return true;
}

}  // namespace

std::string PortReservationPath(uint16_t port) { return StrCat(kReservationDir, "/", port); }

uint16_t PickFreePort() {
  static std::mutex mu;
  static std::mt19937 random(std::random_device{}());
  const std::lock_guard lock(mu);
  const int end = EphemeralRangeStart();
  // World-writable and sticky, like /tmp, so tests run by different users share it.
  if (::mkdir(kReservationDir, 01777) == 0) ::chmod(kReservationDir, 01777);
  if (end - kLowestPort < 1'000) return KernelPickedPort();  // an unusual range: do without
  const int span = end - kLowestPort;
  const int start = std::uniform_int_distribution<int>(0, span - 1)(random);
  for (int i = 0; i < span; ++i) {
    const auto port = static_cast<uint16_t>(kLowestPort + (start + i) % span);
    if (Reserve(port)) return port;
  }
  return KernelPickedPort();
}

bool PortAcceptsConnections(uint16_t port) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  boost::system::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return false;
  // With nothing listening, a connect whose own ephemeral port happens to be `port` meets
  // itself (TCP simultaneous open) and succeeds: that is not a listener.
  boost::system::error_code local_ec, remote_ec;
  const tcp::endpoint local = socket.local_endpoint(local_ec);
  const tcp::endpoint remote = socket.remote_endpoint(remote_ec);
  return local_ec || remote_ec || local != remote;
}

absl::StatusOr<HttpResponse> HttpRequest(uint16_t port, std::string_view method,
                                         std::string_view target, std::string_view body,
                                         const std::map<std::string, std::string>& headers,
                                         absl::Duration timeout) {
  asio::io_context ioc;
  absl::StatusOr<HttpResponse> result = absl::DeadlineExceededError("no response");
  auto run = [&]() -> asio::awaitable<void> {
    constexpr auto token = asio::as_tuple(asio::use_awaitable);
    beast::tcp_stream stream(ioc);
    stream.expires_after(absl::ToChronoNanoseconds(timeout));
    auto [cec] = co_await stream.async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), token);
    if (cec) {
      result = absl::UnavailableError(StrCat("connect: ", cec.message()));
      co_return;
    }
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, StrCat("127.0.0.1:", port));
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = std::string(body);
    req.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, req, token);
    if (wec) {
      result = absl::UnavailableError(StrCat("write: ", wec.message()));
      co_return;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (method == "HEAD") parser.skip(true);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, token);
    if (rec) {
      result = absl::UnavailableError(StrCat("read: ", rec.message()));
      co_return;
    }
    HttpResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get()) {
      out.headers[AsciiLower(field.name_string())] = std::string(field.value());
    }
    out.body = std::move(parser.get().body());
    result = std::move(out);
  };
  asio::co_spawn(ioc, run(), asio::detached);
  ioc.run();
  return result;
}

}  // namespace herald::testing
