#include "tcp_proxy.h"

#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <herald/common/strings.h>

namespace herald::chaos {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

// Copies bytes from `from` to `to` until either fails or `from` ends, then closes both: one side
// gone means the connection is over.
asio::awaitable<void> Pipe(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
  std::array<char, 16 * 1024> buffer;
  while (true) {
    auto [read_error, n] = co_await from->async_read_some(asio::buffer(buffer), kAsTuple);
    if (read_error) break;
    auto [write_error, written] =
        co_await asio::async_write(*to, asio::buffer(buffer, n), kAsTuple);
    if (write_error) break;
  }
  boost::system::error_code ignored;
  from->close(ignored);
  to->close(ignored);
}

}  // namespace

TcpProxy::TcpProxy(std::vector<uint16_t> backend_ports)
    : acceptor_(io_), backends_(std::move(backend_ports)) {}

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(std::vector<uint16_t> backend_ports) {
  if (backend_ports.empty()) return absl::InvalidArgumentError("tcp proxy: no backends");
  std::unique_ptr<TcpProxy> proxy(new TcpProxy(std::move(backend_ports)));
  boost::system::error_code ec;
  const tcp::endpoint listen(asio::ip::make_address("127.0.0.1"), 0);
  proxy->acceptor_.open(listen.protocol(), ec);
  if (!ec) proxy->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) proxy->acceptor_.bind(listen, ec);
  if (!ec) proxy->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(StrCat("tcp proxy: cannot listen: ", ec.message()));
  proxy->port_ = proxy->acceptor_.local_endpoint().port();
  asio::co_spawn(proxy->io_, proxy->Accept(), asio::detached);
  proxy->thread_ = std::thread([p = proxy.get()] { p->io_.run(); });
  return proxy;
}

TcpProxy::~TcpProxy() {
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

asio::awaitable<void> TcpProxy::Accept() {
  while (true) {
    auto [ec, client] = co_await acceptor_.async_accept(kAsTuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;
    ++accepted_;
    asio::co_spawn(io_, Serve(std::move(client)), asio::detached);
  }
}

asio::awaitable<void> TcpProxy::Serve(Socket client) {
  auto upstream = std::make_shared<tcp::socket>(io_);
  bool connected = false;
  for (size_t tries = 0; tries < backends_.size() && !connected; ++tries) {
    const uint16_t port = backends_[next_];
    next_ = (next_ + 1) % backends_.size();
    boost::system::error_code ignored;
    upstream->close(ignored);
    const tcp::endpoint backend(asio::ip::make_address("127.0.0.1"), port);
    auto [ec] = co_await upstream->async_connect(backend, kAsTuple);
    connected = !ec;
  }
  if (!connected) {
    ++refused_;
    co_return;  // `client` closes: the sender retries later
  }
  auto downstream = std::make_shared<tcp::socket>(std::move(client));
  asio::co_spawn(io_, Pipe(downstream, upstream), asio::detached);
  asio::co_spawn(io_, Pipe(upstream, downstream), asio::detached);
}

}  // namespace herald::chaos
