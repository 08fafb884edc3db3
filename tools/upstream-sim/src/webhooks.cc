#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
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

// Where and how an endpoint's requests go; immutable, replaced as a whole by an update.
struct Settings {
  std::string url;
  std::string secret;
  bool tls = false;  // https://
  std::string host;
  std::string port;
  std::string target;
  std::string host_header;
  WebhookFilter filter;
  bool enabled = true;
};

// A manual redelivery: the recorded body and key, sent verbatim.
struct Replay {
  std::shared_ptr<const std::string> body;
  std::string key;
  std::string redelivery_of;
};

// One queued delivery of an event to one endpoint.
struct Job {
  WebhookEvent event;
  uint64_t delivery = 0;                    // numbers the delivery_uuid (managed endpoints)
  std::shared_ptr<const std::string> body;  // rendered once for managed endpoints
  std::shared_ptr<const Replay> replay;
};

using Channel = asio::experimental::concurrent_channel<void(boost::system::error_code, Job)>;

struct StoredRecord {
  WebhookDeliveryRecord record;
  std::shared_ptr<const std::string> body;
  std::shared_ptr<const AccountIdentity> account;
};

struct Endpoint {
  std::string id;
  std::string team;
  bool managed = false;
  absl::Time created_at;
  std::shared_ptr<const Settings> settings;  // guarded by Impl::mu_
  std::atomic<bool> enabled{true};           // settings->enabled, read without the lock
  int64_t max_backlog = 0;
  std::unique_ptr<Channel> channel;
  std::atomic<bool> closed{false};
  std::atomic<int64_t> backlog{0};
  DeliveryTotals totals;
  mutable absl::Mutex records_mu;
  std::deque<StoredRecord> records ABSL_GUARDED_BY(records_mu);  // oldest first
};

struct AttemptResult {
  bool ok = false;
  int status = 0;          // HTTP status when answered
  bool answered = false;   // a response was read
  bool timed_out = false;  // the receiver took longer than the request timeout
  std::string error;       // transport error when not answered
};

absl::StatusOr<std::shared_ptr<Settings>> MakeSettings(const WebhookEndpointConfig& config) {
  auto parsed = boost::urls::parse_uri(config.url);
  if (!parsed)
    return absl::InvalidArgumentError(StrCat("webhook url: cannot parse '", config.url, "'"));
  if (parsed->scheme() != "http" && parsed->scheme() != "https") {
    return absl::InvalidArgumentError("webhook url: only http:// and https:// URLs are supported");
  }
  if (parsed->host().empty()) return absl::InvalidArgumentError("webhook url: missing host");
  auto s = std::make_shared<Settings>();
  s->url = config.url;
  s->secret = config.secret;
  s->host = std::string(parsed->host_name().empty() ? parsed->host() : parsed->host_name());
  if (parsed->host_type() == boost::urls::host_type::ipv6) {
    s->host = std::string(parsed->host_ipv6_address().to_string());
  }
  s->tls = parsed->scheme() == "https";
  s->port = parsed->has_port() ? std::string(parsed->port()) : s->tls ? "443" : "80";
  s->target = std::string(parsed->encoded_resource());
  if (s->target.empty() || s->target[0] != '/') s->target = StrCat("/", s->target);
  s->host_header = std::string(parsed->encoded_authority());
  s->filter = config.filter;
  std::sort(s->filter.account_ids.begin(), s->filter.account_ids.end());
  s->enabled = config.enabled;
  return s;
}

// An endpoint worker's connection: plain TCP for an http:// URL, TLS over it for https://.
struct Connection {
  explicit Connection(asio::any_io_executor executor) : executor(std::move(executor)) {
    tcp.emplace(this->executor);
  }
  // A fresh stream for each connection: one whose deadline expired keeps that in its state, and
  // Beast asserts on it when the stream is used again.
  void Reset(const Settings& s, asio::ssl::context& tls_context) {
    tcp.reset();
    tls.reset();
    if (s.tls) {
      tls.emplace(executor, tls_context);
    } else {
      tcp.emplace(executor);
    }
  }
  beast::tcp_stream& transport() { return tls ? tls->next_layer() : *tcp; }
  void Close() {
    boost::system::error_code ignored;
    transport().socket().shutdown(tcp::socket::shutdown_both, ignored);
    transport().close();
    open = false;
  }

  asio::any_io_executor executor;
  std::optional<beast::tcp_stream> tcp;
  std::optional<asio::ssl::stream<beast::tcp_stream>> tls;
  bool open = false;
};

// 8-4-4-4-12 lowercase hex, version-4 style, derived from the delivery number.
std::string DeliveryUuid(uint64_t delivery) {
  static constexpr char kHex[] = "0123456789abcdef";
  const uint64_t hi = HashValues({delivery, 0xde11});
  const uint64_t lo = Mix64(hi ^ delivery);
  std::string hex;
  for (int i = 15; i >= 0; --i) hex.push_back(kHex[(hi >> (4 * i)) & 0xf]);
  for (int i = 15; i >= 0; --i) hex.push_back(kHex[(lo >> (4 * i)) & 0xf]);
  hex[12] = '4';
  hex[16] = kHex[8 + (lo & 3)];
  return StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                hex.substr(16, 4), "-", hex.substr(20, 12));
}

}  // namespace

class WebhookEmitter::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, WebhookPolicy policy, const Clock& clock)
      : io_(io), clock_(clock), policy_(policy) {
    // https:// receivers are verified against the system's CAs (OpenSSL's default paths, which
    // SSL_CERT_FILE and SSL_CERT_DIR override) and must present a certificate for their host.
    tls_context_.set_default_verify_paths();
    tls_context_.set_verify_mode(asio::ssl::verify_peer);
  }

  absl::StatusOr<std::string> AddEndpoint(WebhookEndpointConfig config) {
    if (config.managed && config.team.empty()) {
      return absl::InvalidArgumentError("a managed webhook belongs to a team");
    }
    auto settings = MakeSettings(config);
    if (!settings.ok()) return settings.status();
    auto ep = std::make_shared<Endpoint>();
    ep->team = std::move(config.team);
    ep->managed = config.managed;
    ep->created_at = clock_.Now();
    ep->enabled.store((*settings)->enabled);
    const std::string url = (*settings)->url;
    const bool is_signed = !(*settings)->secret.empty();
    ep->settings = std::move(*settings);
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
                                         {"url", url},
                                         {"team", ep->team.empty() ? "*" : ep->team},
                                         {"managed", ep->managed},
                                         {"signed", is_signed}});
    return ep->id;
  }

  absl::Status UpdateEndpoint(std::string_view id, const WebhookEndpointConfig& config) {
    auto settings = MakeSettings(config);
    if (!settings.ok()) return settings.status();
    absl::MutexLock lock(&mu_);
    Endpoint* ep = FindLocked(id);
    if (ep == nullptr) return absl::NotFoundError(StrCat("no webhook ", id));
    ep->enabled.store((*settings)->enabled);
    ep->settings = std::move(*settings);
    return absl::OkStatus();
  }

  std::optional<WebhookInfo> Info(std::string_view id) const {
    absl::ReaderMutexLock lock(&mu_);
    const Endpoint* ep = FindLocked(id);
    if (ep == nullptr) return std::nullopt;
    return InfoLocked(*ep);
  }

  std::vector<WebhookInfo> Managed(std::string_view team) const {
    absl::ReaderMutexLock lock(&mu_);
    std::vector<WebhookInfo> out;
    for (const auto& ep : endpoints_) {
      if (ep->managed && ep->team == team) out.push_back(InfoLocked(*ep));
    }
    return out;
  }

  std::optional<std::vector<WebhookDeliveryRecord>> Deliveries(std::string_view id, size_t offset,
                                                               size_t limit) const {
    std::shared_ptr<Endpoint> ep = Find(id);
    if (ep == nullptr) return std::nullopt;
    std::vector<WebhookDeliveryRecord> out;
    absl::MutexLock lock(&ep->records_mu);
    for (size_t i = offset; i < ep->records.size() && out.size() < limit; ++i) {
      out.push_back(ep->records[ep->records.size() - 1 - i].record);
    }
    return out;
  }

  absl::StatusOr<std::string> Redeliver(std::string_view id, std::string_view delivery_id) {
    std::shared_ptr<Endpoint> ep = Find(id);
    if (ep == nullptr) return absl::NotFoundError(StrCat("no webhook ", id));
    Job job;
    auto replay = std::make_shared<Replay>();
    {
      absl::MutexLock lock(&ep->records_mu);
      auto it = std::find_if(ep->records.begin(), ep->records.end(),
                             [&](const StoredRecord& r) { return r.record.id == delivery_id; });
      if (it == ep->records.end()) return absl::NotFoundError(StrCat("no delivery ", delivery_id));
      replay->body = it->body;
      replay->key = it->record.idempotency_key;
      job.event.type = it->record.event;
      job.event.account = it->account;
    }
    if (!ep->enabled.load()) return absl::FailedPreconditionError("the webhook is paused");
    replay->redelivery_of = std::string(delivery_id);
    job.replay = std::move(replay);
    const uint64_t delivery = next_delivery_.fetch_add(1);
    job.delivery = delivery;
    job.event.sequence = delivery;
    job.event.at = clock_.Now();
    if (!Enqueue(*ep, std::move(job))) {
      return absl::ResourceExhaustedError("the webhook's backlog is full");
    }
    return DeliveryUuid(delivery);
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
      // What waited in its queue is dropped, and counted so (the ledger's totals add up).
      while (ep->channel->try_receive([&](boost::system::error_code, Job job) {
        ep->backlog.fetch_sub(1);
        CountDropped(*ep, job.event);
      })) {
      }
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
      if (!ep->team.empty() && ep->team != account.team_id) continue;
      const Settings& s = *ep->settings;
      if (s.enabled && s.filter.MatchesAccount(account.id)) return true;
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
      const Settings& settings = *ep->settings;
      // A paused webhook does not queue events; they are not recovered later.
      if (!settings.enabled || !settings.filter.Matches(event.type, event.account->id)) continue;
      totals.events.fetch_add(1, std::memory_order_relaxed);
      ep->totals.events.fetch_add(1, std::memory_order_relaxed);
      account.events.fetch_add(1, std::memory_order_relaxed);
      const bool twice =
          duplicate_rate > 0 &&
          UnitInterval(HashValues({event.seed, event.sequence, 0xd0b1e})) < duplicate_rate;
      for (int copy = 0; copy < (twice ? 2 : 1); ++copy) {
        Job job{.event = event};
        job.event.duplicate = copy == 1;
        if (ep->managed) job.delivery = next_delivery_.fetch_add(1, std::memory_order_relaxed);
        if (job.event.duplicate) {
          totals.duplicates.fetch_add(1, std::memory_order_relaxed);
          ep->totals.duplicates.fetch_add(1, std::memory_order_relaxed);
          account.duplicates.fetch_add(1, std::memory_order_relaxed);
        }
        if (!Enqueue(*ep, std::move(job))) {
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
      w.Field("url", ep->settings->url);
      if (ep->team.empty()) {
        w.NullField("team");
      } else {
        w.Field("team", ep->team);
      }
      w.Field("managed", ep->managed);
      w.Field("enabled", ep->settings->enabled);
      w.Field("has_signing_secret", !ep->settings->secret.empty());
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
  Endpoint* FindLocked(std::string_view id) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    for (const auto& ep : endpoints_) {
      if (ep->id == id) return ep.get();
    }
    return nullptr;
  }

  std::shared_ptr<Endpoint> Find(std::string_view id) const {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& ep : endpoints_) {
      if (ep->id == id) return ep;
    }
    return nullptr;
  }

  static WebhookInfo InfoLocked(const Endpoint& ep) {
    const Settings& s = *ep.settings;
    return WebhookInfo{.id = ep.id,
                       .config = WebhookEndpointConfig{.url = s.url,
                                                       .secret = s.secret,
                                                       .team = ep.team,
                                                       .managed = ep.managed,
                                                       .filter = s.filter,
                                                       .enabled = s.enabled},
                       .created_at = ep.created_at};
  }

  std::shared_ptr<const Settings> SettingsOf(const Endpoint& ep) const {
    absl::ReaderMutexLock lock(&mu_);
    return ep.settings;
  }

  // Counts the job in the endpoint's backlog and queues it; false when the backlog is full.
  static bool Enqueue(Endpoint& ep, Job job) {
    if (ep.closed.load(std::memory_order_relaxed)) return false;
    if (ep.backlog.fetch_add(1) >= ep.max_backlog) {
      ep.backlog.fetch_sub(1);
      return false;
    }
    if (!ep.channel->try_send(boost::system::error_code(), std::move(job))) {
      ep.backlog.fetch_sub(1);
      return false;
    }
    return true;
  }

  void CountDropped(Endpoint& ep, const WebhookEvent& event) {
    totals_[static_cast<size_t>(event.type)].dropped.fetch_add(1);
    ep.totals.dropped.fetch_add(1);
    event.account->webhooks.dropped.fetch_add(1);
  }

  static asio::awaitable<void> RetryLater(std::shared_ptr<Impl> self, std::shared_ptr<Endpoint> ep,
                                          Job job, absl::Duration delay) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(absl::ToChronoNanoseconds(delay));
    co_await timer.async_wait(kUseTuple);
    // The job was counted in the backlog while it waited; hand it back to the queue.
    ep->backlog.fetch_sub(1);
    const WebhookEvent event = job.event;
    if (!Enqueue(*ep, std::move(job))) self->CountDropped(*ep, event);
  }

  // The whole POST as bytes: serialised once per attempt, identical for every retry.
  static std::string SerializeRequest(const Settings& s, const Job& job, const std::string& body,
                                      const std::string& key) {
    std::string out;
    out.reserve(body.size() + 384);
    StrAppend(
        &out, "POST ", s.target, " HTTP/1.1\r\nHost: ", s.host_header,
        "\r\nContent-Type: application/json\r\nUser-Agent: OnlyFansAPI.com/Webhook-Client\r\n");
    if (!s.secret.empty()) StrAppend(&out, "Signature: ", HmacSha256Hex(s.secret, body), "\r\n");
    if (job.replay) StrAppend(&out, "X-OFAPI-Redelivery-Of: ", job.replay->redelivery_of, "\r\n");
    // Presence events have no key, and so no header.
    if (!key.empty()) StrAppend(&out, "X-OFAPI-Idempotency-Key: ", key, "\r\n");
    StrAppend(&out, "Content-Length: ", body.size(), "\r\nConnection: keep-alive\r\n\r\n", body);
    return out;
  }

  void Record(Endpoint& ep, const Job& job, const std::string& key, const AttemptResult& result) {
    StoredRecord r;
    r.record.id = StrCat("dlv_", next_record_.fetch_add(1));
    r.record.delivery_uuid = DeliveryUuid(job.delivery);
    r.record.event = job.event.type;
    r.record.idempotency_key = key;
    if (result.answered) r.record.status_code = result.status;
    r.record.success = result.ok;
    r.record.attempt = job.event.attempt + 1;
    r.record.created_at = clock_.Now();
    if (job.replay) r.record.redelivery_of = job.replay->redelivery_of;
    r.body = job.replay ? job.replay->body : job.body;
    r.account = job.event.account;
    absl::MutexLock lock(&ep.records_mu);
    ep.records.push_back(std::move(r));
    while (ep.records.size() > kMaxDeliveryRecords) ep.records.pop_front();
  }

  static asio::awaitable<AttemptResult> Attempt(Connection& c, beast::flat_buffer& buffer,
                                                const Settings& s, asio::ssl::context& tls_context,
                                                const WebhookPolicy& policy,
                                                const std::string& request) {
    AttemptResult result;
    // The request timeout bounds the whole attempt, a connection made for it included.
    const auto started = std::chrono::steady_clock::now();
    if (!c.open) {
      c.Reset(s, tls_context);
      tcp::resolver resolver(c.executor);
      auto [rec, results] = co_await resolver.async_resolve(s.host, s.port, kUseTuple);
      if (rec) {
        result.error = StrCat("resolve: ", rec.message());
        co_return result;
      }
      c.transport().expires_after(
          absl::ToChronoNanoseconds(std::min(policy.connect_timeout, policy.request_timeout)));
      auto [cec, connected] = co_await c.transport().async_connect(results, kUseTuple);
      if (cec) {
        c.transport().close();
        result.error = StrCat("connect: ", cec.message());
        co_return result;
      }
      boost::system::error_code ignored;
      c.transport().socket().set_option(tcp::no_delay(true), ignored);
      if (c.tls) {
        // SNI, and the certificate must name the URL's host.
        SSL_set_tlsext_host_name(c.tls->native_handle(), s.host.c_str());
        c.tls->set_verify_callback(asio::ssl::host_name_verification(s.host));
        auto [hec] = co_await c.tls->async_handshake(asio::ssl::stream_base::client, kUseTuple);
        if (hec) {
          c.transport().close();
          result.error = StrCat("tls handshake: ", hec.message());
          co_return result;
        }
      }
      buffer.clear();
      c.open = true;
    }
    const auto sent_at = std::chrono::steady_clock::now();
    c.transport().expires_after(std::max<std::chrono::nanoseconds>(
        absl::ToChronoNanoseconds(policy.request_timeout) - (sent_at - started),
        std::chrono::milliseconds(1)));
    if (c.tls) {
      co_await Exchange(*c.tls, c, buffer, policy, request, started, result);
    } else {
      co_await Exchange(*c.tcp, c, buffer, policy, request, started, result);
    }
    co_return result;
  }

  // Writes the request and reads the answer over `stream` (c's, plain or TLS).
  template <typename Stream>
  static asio::awaitable<void> Exchange(Stream& stream, Connection& c, beast::flat_buffer& buffer,
                                        const WebhookPolicy& policy, const std::string& request,
                                        std::chrono::steady_clock::time_point started,
                                        AttemptResult& result) {
    auto [wec, written] = co_await asio::async_write(stream, asio::buffer(request), kUseTuple);
    if (wec) {
      c.transport().close();
      c.open = false;
      result.error = StrCat("write: ", wec.message());
      co_return;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, kUseTuple);
    if (rec) {
      c.transport().close();
      c.open = false;
      // The stream's deadline fails the read with `timeout`, or, when it fires as the read
      // completes, with the closed socket's error: the time says which it was.
      result.timed_out =
          rec == beast::error::timeout || std::chrono::steady_clock::now() - started >=
                                              absl::ToChronoNanoseconds(policy.request_timeout);
      result.error = StrCat("read: ", rec.message());
      co_return;
    }
    result.answered = true;
    result.status = static_cast<int>(parser.get().result_int());
    result.ok = result.status >= 200 && result.status < 300;
    if (!parser.get().keep_alive()) {
      c.transport().close();
      c.open = false;
    }
  }

  static asio::awaitable<void> Worker(std::shared_ptr<Impl> self, std::shared_ptr<Endpoint> ep) {
    Connection connection(co_await asio::this_coro::executor);
    beast::flat_buffer buffer;
    std::string connected_to;  // scheme, host and port of the open connection
    for (;;) {
      auto [ec, job] = co_await ep->channel->async_receive(kUseTuple);
      if (ec) break;
      if (ep->closed.load()) {  // removed meanwhile: dropped, as Remove drops the rest
        ep->backlog.fetch_sub(1);
        self->CountDropped(*ep, job.event);
        break;
      }
      if (!ep->enabled.load()) {
        // Paused: what was queued is dropped, not kept for later.
        ep->backlog.fetch_sub(1);
        self->CountDropped(*ep, job.event);
        continue;
      }
      const WebhookPolicy policy = self->policy();
      const std::shared_ptr<const Settings> settings = self->SettingsOf(*ep);
      const std::string destination =
          StrCat(settings->tls ? "https://" : "http://", settings->host, ":", settings->port);
      if (connection.open && destination != connected_to) {
        // The URL changed: the next attempt connects to the new host.
        connection.Close();
      }
      connected_to = destination;
      if (ep->managed && !job.body && !job.replay) {
        job.body = std::make_shared<const std::string>(RenderWebhookBody(job.event));
      }
      const std::string key = job.replay ? job.replay->key : IdempotencyKey(job.event);
      const std::string rendered =
          job.body || job.replay ? std::string() : RenderWebhookBody(job.event);
      const std::string& body = job.replay ? *job.replay->body : job.body ? *job.body : rendered;
      const std::string request = SerializeRequest(*settings, job, body, key);

      self->in_flight_.fetch_add(1);
      const bool reused = connection.open;
      AttemptResult result =
          co_await Attempt(connection, buffer, *settings, self->tls_context_, policy, request);
      if (!result.ok && !result.answered && !result.timed_out && reused) {
        // The receiver closed an idle keep-alive connection: a sender reconnects once at once.
        // The failed try is recorded as an attempt of its own (the receiver may have read it).
        // A receiver that timed out was slow, not gone: it waits for the retry policy.
        if (ep->managed) self->Record(*ep, job, key, result);
        result =
            co_await Attempt(connection, buffer, *settings, self->tls_context_, policy, request);
      }
      self->in_flight_.fetch_sub(1);
      if (ep->managed) self->Record(*ep, job, key, result);

      const WebhookEvent& event = job.event;
      DeliveryTotals& totals = self->totals_[static_cast<size_t>(event.type)];
      WebhookCounters& account = event.account->webhooks;
      totals.attempts.fetch_add(1, std::memory_order_relaxed);
      ep->totals.attempts.fetch_add(1, std::memory_order_relaxed);
      account.attempts.fetch_add(1, std::memory_order_relaxed);
      if (result.ok) {
        totals.successes.fetch_add(1, std::memory_order_relaxed);
        ep->totals.successes.fetch_add(1, std::memory_order_relaxed);
        account.successes.fetch_add(1, std::memory_order_relaxed);
        if (ep->managed && self->charge_) self->charge_(ep->team);
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
      ++job.event.attempt;
      const int attempt = job.event.attempt;
      // +-20% jitter, derived from the event so runs repeat, and the cap over it all.
      const double jitter = 0.8 + 0.4 * UnitInterval(HashValues({job.event.seed, job.event.sequence,
                                                                 static_cast<uint64_t>(attempt)}));
      const absl::Duration delay =
          std::min(policy.retry_base * std::pow(2.0, attempt - 1) * jitter, policy.retry_max);
      asio::co_spawn(connection.executor, RetryLater(self, ep, std::move(job), delay),
                     asio::detached);
    }
    connection.Close();
  }

  asio::io_context& io_;
  const Clock& clock_;
  asio::ssl::context tls_context_{asio::ssl::context::tls_client};  // read-only once built
  mutable absl::Mutex mu_;
  WebhookPolicy policy_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Endpoint>> endpoints_ ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int> endpoint_count_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> next_delivery_{1};
  std::atomic<uint64_t> next_record_{1};
  std::array<DeliveryTotals, kEventTypeCount> totals_;

 public:
  // Set before any endpoint exists (WebhookEmitter::ChargeDeliveriesTo); read-only after.
  std::function<void(std::string_view team)> charge_;
};

std::string_view AccountScopeName(AccountScope scope) {
  switch (scope) {
    case AccountScope::kGlobal:
      return "global";
    case AccountScope::kInclusive:
      return "inclusive";
    case AccountScope::kExclusive:
      return "exclusive";
  }
  return "global";
}

std::optional<AccountScope> ParseAccountScope(std::string_view name) {
  for (AccountScope s :
       {AccountScope::kGlobal, AccountScope::kInclusive, AccountScope::kExclusive}) {
    if (AccountScopeName(s) == name) return s;
  }
  return std::nullopt;
}

bool WebhookFilter::MatchesAccount(std::string_view account_id) const {
  if (scope == AccountScope::kGlobal) return true;
  const bool listed =
      std::find(account_ids.begin(), account_ids.end(), account_id) != account_ids.end();
  return scope == AccountScope::kInclusive ? listed : !listed;
}

bool WebhookFilter::Matches(EventType type, std::string_view account_id) const {
  return (events & EventBit(type)) != 0 && MatchesAccount(account_id);
}

WebhookEmitter::WebhookEmitter(boost::asio::io_context& io, WebhookPolicy policy,
                               const Clock& clock)
    : impl_(std::make_shared<Impl>(io, policy, clock)) {}

WebhookEmitter::~WebhookEmitter() { impl_->Stop(); }

absl::StatusOr<std::string> WebhookEmitter::AddEndpoint(WebhookEndpointConfig config) {
  return impl_->AddEndpoint(std::move(config));
}
absl::Status WebhookEmitter::UpdateEndpoint(std::string_view id, WebhookEndpointConfig config) {
  return impl_->UpdateEndpoint(id, config);
}
std::optional<WebhookInfo> WebhookEmitter::GetEndpoint(std::string_view id) const {
  return impl_->Info(id);
}
std::vector<WebhookInfo> WebhookEmitter::ManagedEndpoints(std::string_view team) const {
  return impl_->Managed(team);
}
std::optional<std::vector<WebhookDeliveryRecord>> WebhookEmitter::Deliveries(std::string_view id,
                                                                             size_t offset,
                                                                             size_t limit) const {
  return impl_->Deliveries(id, offset, limit);
}
absl::StatusOr<std::string> WebhookEmitter::Redeliver(std::string_view id,
                                                      std::string_view delivery_id) {
  return impl_->Redeliver(id, delivery_id);
}
bool WebhookEmitter::RemoveEndpoint(std::string_view id) { return impl_->Remove(id); }
void WebhookEmitter::RemoveAll() { impl_->Remove(std::nullopt); }
void WebhookEmitter::ChargeDeliveriesTo(std::function<void(std::string_view team)> charge) {
  impl_->charge_ = std::move(charge);
}
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
