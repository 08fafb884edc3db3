// Webhook deliveries as the upstream sends them, and a keep-alive HTTP connection that posts
// them to Herald's ingest port, for end-to-end tests that load ingest while something fails.
//
//   WebhookConnection conn(ioc.get_executor(), ingest_port);
//   Answer a = co_await conn.Post("/webhooks/acme.main", delivery, killed);
//
// Header-only: only tests include it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <herald/common/strings.h>

namespace herald::testing {

// One signed webhook delivery, as the upstream would send it.
struct Delivery {
  std::string key;        // X-OFAPI-Idempotency-Key
  std::string body;       // the JSON the signature covers
  std::string signature;  // lowercase hex HMAC-SHA256 of the body
  std::string type;       // "subscriptions.new" or "messages.sent"
  std::string account;    // upstream account id
  int64_t fan_id = 0;     // distinct per event: tells events apart in the event stream
};

// What one POST came to.
struct Answer {
  bool answered = false;  // a whole response arrived
  // The request was written out before the kill and no response came: in flight at the kill.
  bool in_flight_at_kill = false;
  int status = 0;
  std::string body;
  std::string error;
};

// One keep-alive connection to the ingest port; a failed request closes it and the next one
// connects again. Not thread-safe: used by one coroutine on a single-threaded io_context.
class WebhookConnection {
 public:
  WebhookConnection(boost::asio::any_io_executor executor, uint16_t port,
                    std::chrono::seconds timeout = std::chrono::seconds(10))
      : timeout_(timeout),
        stream_(std::move(executor)),
        endpoint_(boost::asio::ip::make_address_v4("127.0.0.1"), port),
        host_(StrCat("127.0.0.1:", port)) {}

  // Posts `d` to `target`. `killed` is read when the request has been written, to tell the requests
  // in flight at the kill from those sent after it.
  boost::asio::awaitable<Answer> Post(const std::string& target, const Delivery& d,
                                      const bool& killed) {
    Answer answer;
    if (!open_) {
      stream_.expires_after(timeout_);
      auto [ec] = co_await stream_.async_connect(endpoint_, kAsTuple);
      if (ec) {
        answer.error = StrCat("connect: ", ec.message());
        Close();
        co_return answer;
      }
      open_ = true;
    }
    boost::beast::http::request<boost::beast::http::string_body> req(boost::beast::http::verb::post,
                                                                     target, 11);
    req.set(boost::beast::http::field::host, host_);
    req.set(boost::beast::http::field::content_type, "application/json");
    req.set("Signature", d.signature);
    req.set("X-OFAPI-Idempotency-Key", d.key);
    req.keep_alive(true);
    req.body() = d.body;
    req.prepare_payload();
    stream_.expires_after(timeout_);
    auto [wec, written] = co_await boost::beast::http::async_write(stream_, req, kAsTuple);
    if (wec) {
      answer.error = StrCat("write: ", wec.message());
      Close();
      co_return answer;
    }
    const bool written_before_kill = !killed;
    boost::beast::http::response<boost::beast::http::string_body> res;
    auto [rec, read] = co_await boost::beast::http::async_read(stream_, buffer_, res, kAsTuple);
    if (rec) {
      answer.error = StrCat("read: ", rec.message());
      answer.in_flight_at_kill = written_before_kill && killed;
      Close();
      co_return answer;
    }
    answer.answered = true;
    answer.status = static_cast<int>(res.result_int());
    answer.body = std::move(res.body());
    if (!res.keep_alive()) Close();
    co_return answer;
  }

 private:
  void Close() {
    boost::beast::error_code ignored;
    stream_.socket().close(ignored);
    buffer_.clear();
    open_ = false;
  }

  static constexpr auto kAsTuple = boost::asio::as_tuple(boost::asio::use_awaitable);

  std::chrono::seconds timeout_;
  boost::beast::tcp_stream stream_;
  boost::asio::ip::tcp::endpoint endpoint_;
  std::string host_;
  boost::beast::flat_buffer buffer_;
  bool open_ = false;
};

}  // namespace herald::testing
