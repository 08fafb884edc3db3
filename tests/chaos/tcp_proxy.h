// A TCP proxy that spreads connections over backends round-robin, skipping any that refuse: what
// a Kubernetes Service or load balancer does in front of Herald's ingest replicas, so a sender
// keeps one address while replicas are killed and restarted behind it.
//
//   auto proxy = TcpProxy::Start({ingest_a->ingest_port(), ingest_b->ingest_port()});
//   (*proxy)->port();  // where senders connect
//
// A connection is bound to one backend for its life; when either side closes or fails, the other
// is closed too (a sender sees its request fail and retries, as it would through a real proxy).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <absl/status/statusor.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace herald::chaos {

class TcpProxy {
 public:
  // Listens on 127.0.0.1 on a free port, forwarding to 127.0.0.1:<backend_ports>.
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(std::vector<uint16_t> backend_ports);
  ~TcpProxy();

  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const { return port_; }
  // Connections accepted, and those closed at once because no backend accepted them.
  int64_t accepted() const { return accepted_.load(); }
  int64_t refused() const { return refused_.load(); }

 private:
  using Socket = boost::asio::ip::tcp::socket;

  explicit TcpProxy(std::vector<uint16_t> backend_ports);
  boost::asio::awaitable<void> Accept();
  boost::asio::awaitable<void> Serve(Socket client);

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<uint16_t> backends_;
  size_t next_ = 0;  // the backend the next connection tries first (io thread only)
  uint16_t port_ = 0;
  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> refused_{0};
  std::thread thread_;
};

}  // namespace herald::chaos
