#include <algorithm>
#include <cmath>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/upstream_sim/json_writer.h>
#include <herald/upstream_sim/signature.h>
#include <herald/upstream_sim/webhooks.h>

namespace herald::upstream_sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

using Channel =
    asio::experimental::concurrent_channel<void(boost::system::error_code, WebhookEvent)>;

struct Endpoint {
  std::string id;
  std::string url;
  std::string secret;
  std::string team;
  std::string host;
  std::string port;
  std::string target;
  std::string host_header;
  int64_t max_backlog = 0;
  std::unique_ptr<Channel> channel;
  std::atomic<bool> closed{false};
  std::atomic<int64_t> backlog{0};
  DeliveryTotals totals;
};

struct AttemptResult {
  bool ok = false;
  int status = 0;         // HTTP status when answered
  bool answered = false;  // a response was read
  std::string error;      // transport error when not answered
};

}  // namespace

class WebhookEmitter::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, WebhookPolicy policy) : io_(io), policy_(policy) {}

  absl::StatusOr<std::string> AddEndpoint(WebhookEndpointConfig config) {
    auto parsed = boost::urls::parse_uri(config.url);
    if (!parsed)
      return absl::InvalidArgumentError(StrCat("webhook url: cannot parse '", config.url, "'"));
    if (parsed->scheme() != "http") {
      return absl::InvalidArgumentError("webhook url: only http:// URLs are supported");
    }
    if (parsed->host().empty()) return absl::InvalidArgumentError("webhook url: missing host");
    auto ep = std::make_shared<Endpoint>();
    ep->url = config.url;
    ep->secret = std::move(config.secret);
    ep->team = std::move(config.team);
    ep->host = std::string(parsed->host_name().empty() ? parsed->host() : parsed->host_name());
    if (parsed->host_type() == boost::urls::host_type::ipv6) {
      ep->host = std::string(parsed->host_ipv6_address().to_string());
    }
    ep->port = parsed->has_port() ? std::string(parsed->port()) : "80";
    ep->target = std::string(parsed->encoded_resource());
    if (ep->target.empty() || ep->target[0] != '/') ep->target = StrCat("/", ep->target);
    ep->host_header = std::string(parsed->encoded_authority());
    WebhookPolicy policy;
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return absl::FailedPreconditionError("webhook emitter stopped");
      policy = policy_;
      ep->id = StrCat("wh_", next_id_++);
      ep->max_backlog = policy.max_backlog;
      ep->channel = std::make_unique<Channel>(io_, static_cast<size_t>(policy.max_backlog));
      endpoints_.push_back(ep);
      endpoint_count_.store(static_cast<int>(endpoints_.size()));
    }
    for (int i = 0; i < policy.concurrency; ++i) {
      asio::co_spawn(io_, Worker(shared_from_this(), ep), asio::detached);
    }
    log::Info("webhook endpoint added", {{"id", ep->id},
                                         {"url", ep->url},
                                         {"team", ep->team.empty() ? "*" : ep->team},
                                         {"signed", !ep->secret.empty()}});
    return ep->id;
  }

  bool Remove(std::optional<std::string_view> id) {
    std::vector<std::shared_ptr<Endpoint>> removed;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = endpoints_.begin(); it != endpoints_.end();) {
        if (!id || (*it)->id == *id) {
          removed.push_back(*it);
          it = endpoints_.erase(it);
        } else {
          ++it;
        }
      }
      endpoint_count_.store(static_cast<int>(endpoints_.size()));
    }
    for (const auto& ep : removed) {
      ep->closed.store(true);
      ep->channel->close();
    }
    return !removed.empty();
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
    }
    Remove(std::nullopt);
  }

  void SetPolicy(const WebhookPolicy& policy) {
    absl::MutexLock lock(&mu_);
    policy_ = policy;
  }

  WebhookPolicy policy() const {
    absl::MutexLock lock(&mu_);
    return policy_;
  }

  bool Wants(const AccountIdentity& account) const {
    if (endpoint_count_.load(std::memory_order_relaxed) == 0) return false;
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& ep : endpoints_) {
      if (ep->team.empty() || ep->team == account.team_id) return true;
    }
    return false;
  }

  void Emit(const WebhookEvent& event) {
    absl::ReaderMutexLock lock(&mu_);
    const double duplicate_rate = policy_.duplicate_rate;
    DeliveryTotals& totals = totals_[static_cast<size_t>(event.type)];
    WebhookCounters& account = event.account->webhooks;
    for (const auto& ep : endpoints_) {
      if (!ep->team.empty() && ep->team != event.account->team_id) continue;
      totals.events.fetch_add(1, std::memory_order_relaxed);
      ep->totals.events.fetch_add(1, std::memory_order_relaxed);
      account.events.fetch_add(1, std::memory_order_relaxed);
      const bool twice =
          duplicate_rate > 0 &&
          UnitInterval(HashValues({event.seed, event.sequence, 0xd0b1e})) < duplicate_rate;
      for (int copy = 0; copy < (twice ? 2 : 1); ++copy) {
        WebhookEvent e = event;
        e.duplicate = copy == 1;
        if (e.duplicate) {
          totals.duplicates.fetch_add(1, std::memory_order_relaxed);
          ep->totals.duplicates.fetch_add(1, std::memory_order_relaxed);
          account.duplicates.fetch_add(1, std::memory_order_relaxed);
        }
        if (!Enqueue(*ep, std::move(e))) {
          totals.dropped.fetch_add(1, std::memory_order_relaxed);
          ep->totals.dropped.fetch_add(1, std::memory_order_relaxed);
          account.dropped.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  }

  int64_t backlog() const {
    absl::ReaderMutexLock lock(&mu_);
    int64_t total = 0;
    for (const auto& ep : endpoints_) total += ep->backlog.load();
    return total;
  }

  int64_t in_flight() const { return in_flight_.load(); }
  const std::array<DeliveryTotals, kEventTypeCount>& totals() const { return totals_; }

  std::string EndpointsJson() const {
    absl::ReaderMutexLock lock(&mu_);
    JsonWriter w;
    w.BeginArray();
    for (const auto& ep : endpoints_) {
      w.BeginObject();
      w.Field("id", ep->id);
      w.Field("url", ep->url);
      if (ep->team.empty()) {
        w.NullField("team");
      } else {
        w.Field("team", ep->team);
      }
      w.Field("has_signing_secret", !ep->secret.empty());
      w.Field("backlog", ep->backlog.load());
      w.Field("events", ep->totals.events.load());
      w.Field("attempts", ep->totals.attempts.load());
      w.Field("successes", ep->totals.successes.load());
      w.Field("failures", ep->totals.failures.load());
      w.Field("duplicates", ep->totals.duplicates.load());
      w.Field("dropped", ep->totals.dropped.load());
      w.Field("gave_up", ep->totals.gave_up.load());
      w.EndObject();
    }
    w.EndArray();
    return w.Take();
  }

 private:
  // Counts the event in the endpoint's backlog and queues it; false when the backlog is full.
  static bool Enqueue(Endpoint& ep, WebhookEvent event) {
    if (ep.closed.load(std::memory_order_relaxed)) return false;
    if (ep.backlog.fetch_add(1) >= ep.max_backlog) {
      ep.backlog.fetch_sub(1);
      return false;
    }
    if (!ep.channel->try_send(boost::system::error_code(), std::move(event))) {
      ep.backlog.fetch_sub(1);
      return false;
    }
    return true;
  }

  static asio::awaitable<void> RetryLater(std::shared_ptr<Impl> self, std::shared_ptr<Endpoint> ep,
                                          WebhookEvent event, absl::Duration delay) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(absl::ToChronoNanoseconds(delay));
    co_await timer.async_wait(kUseTuple);
    // The event was counted in the backlog while it waited; hand it back to the queue.
    ep->backlog.fetch_sub(1);
    const EventType type = event.type;
    const std::shared_ptr<const AccountIdentity> account = event.account;
    if (!Enqueue(*ep, std::move(event))) {
      self->totals_[static_cast<size_t>(type)].dropped.fetch_add(1);
      ep->totals.dropped.fetch_add(1);
      account->webhooks.dropped.fetch_add(1);
    }
  }

  // The whole POST as bytes: serialised once per attempt loop, identical for every retry.
  static std::string SerializeRequest(const Endpoint& ep, const WebhookEvent& event) {
    const std::string body = RenderWebhookBody(event);
    std::string out;
    out.reserve(body.size() + 320);
    StrAppend(
        &out, "POST ", ep.target, " HTTP/1.1\r\nHost: ", ep.host_header,
        "\r\nContent-Type: application/json\r\nUser-Agent: OnlyFansAPI.com/Webhook-Client\r\n");
    if (!ep.secret.empty()) StrAppend(&out, "Signature: ", HmacSha256Hex(ep.secret, body), "\r\n");
    StrAppend(&out, "X-OFAPI-Idempotency-Key: ", IdempotencyKey(event),
              "\r\nContent-Length: ", body.size(), "\r\nConnection: keep-alive\r\n\r\n", body);
    return out;
  }

  static asio::awaitable<AttemptResult> Attempt(beast::tcp_stream& stream,
                                                beast::flat_buffer& buffer, bool& open,
                                                const Endpoint& ep, const WebhookPolicy& policy,
                                                const std::string& request) {
    AttemptResult result;
    if (!open) {
      tcp::resolver resolver(stream.get_executor());
      auto [rec, results] = co_await resolver.async_resolve(ep.host, ep.port, kUseTuple);
      if (rec) {
        result.error = StrCat("resolve: ", rec.message());
        co_return result;
      }
      stream.expires_after(absl::ToChronoNanoseconds(policy.connect_timeout));
      auto [cec, connected] = co_await stream.async_connect(results, kUseTuple);
      if (cec) {
        stream.close();
        result.error = StrCat("connect: ", cec.message());
        co_return result;
      }
      boost::system::error_code ignored;
      stream.socket().set_option(tcp::no_delay(true), ignored);
      buffer.clear();
      open = true;
    }
    stream.expires_after(absl::ToChronoNanoseconds(policy.request_timeout));
    auto [wec, written] = co_await asio::async_write(stream, asio::buffer(request), kUseTuple);
    if (wec) {
      stream.close();
      open = false;
      result.error = StrCat("write: ", wec.message());
      co_return result;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, kUseTuple);
    if (rec) {
      stream.close();
      open = false;
      result.error = StrCat("read: ", rec.message());
      co_return result;
    }
    result.answered = true;
    result.status = static_cast<int>(parser.get().result_int());
    result.ok = result.status >= 200 && result.status < 300;
    if (!parser.get().keep_alive()) {
      stream.close();
      open = false;
    }
    co_return result;
  }

  static asio::awaitable<void> Worker(std::shared_ptr<Impl> self, std::shared_ptr<Endpoint> ep) {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    beast::flat_buffer buffer;
    bool open = false;
    for (;;) {
      auto [ec, event] = co_await ep->channel->async_receive(kUseTuple);
      if (ec || ep->closed.load()) break;
      const WebhookPolicy policy = self->policy();
      const std::string request = SerializeRequest(*ep, event);

      self->in_flight_.fetch_add(1);
      const bool reused = open;
      AttemptResult result = co_await Attempt(stream, buffer, open, *ep, policy, request);
      if (!result.ok && !result.answered && reused) {
        // The receiver closed an idle keep-alive connection; a sender reconnects once.
        result = co_await Attempt(stream, buffer, open, *ep, policy, request);
      }
      self->in_flight_.fetch_sub(1);

      DeliveryTotals& totals = self->totals_[static_cast<size_t>(event.type)];
      WebhookCounters& account = event.account->webhooks;
      totals.attempts.fetch_add(1, std::memory_order_relaxed);
      ep->totals.attempts.fetch_add(1, std::memory_order_relaxed);
      account.attempts.fetch_add(1, std::memory_order_relaxed);
      if (result.ok) {
        totals.successes.fetch_add(1, std::memory_order_relaxed);
        ep->totals.successes.fetch_add(1, std::memory_order_relaxed);
        account.successes.fetch_add(1, std::memory_order_relaxed);
        ep->backlog.fetch_sub(1);
        continue;
      }
      totals.failures.fetch_add(1, std::memory_order_relaxed);
      ep->totals.failures.fetch_add(1, std::memory_order_relaxed);
      account.failures.fetch_add(1, std::memory_order_relaxed);
      if (event.attempt >= policy.max_retries || ep->closed.load()) {
        totals.gave_up.fetch_add(1, std::memory_order_relaxed);
        ep->totals.gave_up.fetch_add(1, std::memory_order_relaxed);
        account.gave_up.fetch_add(1, std::memory_order_relaxed);
        ep->backlog.fetch_sub(1);
        log::Debug("webhook delivery gave up", {{"endpoint", ep->id},
                                                {"event", EventName(event.type)},
                                                {"status", result.status},
                                                {"error", result.error}});
        continue;
      }
      ++event.attempt;
      absl::Duration delay = policy.retry_base * std::pow(2.0, event.attempt - 1);
      delay = std::min(delay, policy.retry_max);
      // +-20% jitter, derived from the event so runs repeat.
      delay *= 0.8 + 0.4 * UnitInterval(HashValues(
                               {event.seed, event.sequence, static_cast<uint64_t>(event.attempt)}));
      asio::co_spawn(stream.get_executor(), RetryLater(self, ep, std::move(event), delay),
                     asio::detached);
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  asio::io_context& io_;
  mutable absl::Mutex mu_;
  WebhookPolicy policy_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Endpoint>> endpoints_ ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int> endpoint_count_{0};
  std::atomic<int64_t> in_flight_{0};
  std::array<DeliveryTotals, kEventTypeCount> totals_;
};

WebhookEmitter::WebhookEmitter(boost::asio::io_context& io, WebhookPolicy policy)
    : impl_(std::make_shared<Impl>(io, policy)) {}

WebhookEmitter::~WebhookEmitter() { impl_->Stop(); }

absl::StatusOr<std::string> WebhookEmitter::AddEndpoint(WebhookEndpointConfig config) {
  return impl_->AddEndpoint(std::move(config));
}
bool WebhookEmitter::RemoveEndpoint(std::string_view id) { return impl_->Remove(id); }
void WebhookEmitter::RemoveAll() { impl_->Remove(std::nullopt); }
void WebhookEmitter::SetPolicy(const WebhookPolicy& policy) { impl_->SetPolicy(policy); }
WebhookPolicy WebhookEmitter::policy() const { return impl_->policy(); }
bool WebhookEmitter::Wants(const AccountIdentity& account) const { return impl_->Wants(account); }
void WebhookEmitter::Emit(WebhookEvent event) { impl_->Emit(event); }
int64_t WebhookEmitter::backlog() const { return impl_->backlog(); }
int64_t WebhookEmitter::in_flight() const { return impl_->in_flight(); }
const std::array<DeliveryTotals, kEventTypeCount>& WebhookEmitter::totals() const {
  return impl_->totals();
}
std::string WebhookEmitter::EndpointsJson() const { return impl_->EndpointsJson(); }
void WebhookEmitter::Stop() { impl_->Stop(); }

}  // namespace herald::upstream_sim
