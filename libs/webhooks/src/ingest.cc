#include <array>
#include <mutex>

#include <absl/container/flat_hash_map.h>
#include <boost/json/parse.hpp>

#include <herald/common/clock.h>
#include <herald/common/log.h>
#include <herald/common/outage.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/store/crypto.h>
#include <herald/upstream/webhook_event.h>
#include <herald/webhooks/ingest.h>

namespace herald::webhooks {
namespace {

namespace asio = boost::asio;
using upstream::WebhookEventType;

// Idempotency keys up to this long are stored as they are; longer ones as their digest.
constexpr size_t kMaxKeptKeyBytes = 200;

// The event label: the events Herald applies by name, everything else "other" (label values
// come from a fixed set).
constexpr std::array<std::string_view, 9> kEventLabels = {
    "chat_queue.updated",    "chat_queue.finished",   "messages.sent",
    "messages.ppv.unlocked", "transactions.new",      "subscriptions.new",
    "subscriptions.renewed", "subscriptions.expired", "other"};

// Results: applied, unattributed (applied, but a purchase of no known mass message yet),
// duplicate, unknown (a type Herald does not apply), no_key (a type Herald does
// not apply, without an idempotency key: presence), bad_signature, malformed, unknown_endpoint
// (answered as a bad signature), unsupported_type (a signed body declared as other than JSON),
// unavailable (not recorded; the sender retries), shed (not tried: recording is slow; the sender
// retries), failed (Redis is up but the event could not be applied; the sender retries).
constexpr std::array<std::string_view, 12> kResults = {
    "applied",   "unattributed",     "duplicate",        "unknown",     "no_key", "bad_signature",
    "malformed", "unknown_endpoint", "unsupported_type", "unavailable", "shed",   "failed"};
enum Result {
  kApplied,
  kUnattributed,
  kDuplicate,
  kUnknownType,
  kNoKey,
  kBadSignature,
  kMalformed,
  kUnknownEndpoint,
  kUnsupportedType,
  kUnavailable,
  kShed,
  kFailed,
};

constexpr absl::Duration kProbeEvery = absl::Milliseconds(100);

// The event type a body names, for the metrics of one that does not decode ("" when it names
// none); EventLabel keeps the label's values to the known types.
std::string EventNameOf(std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  const boost::json::object* o = ec ? nullptr : v.if_object();
  const boost::json::value* name = o != nullptr ? o->if_contains("event") : nullptr;
  return name != nullptr && name->is_string() ? std::string(name->as_string()) : std::string();
}

size_t EventLabel(std::string_view name) {
  for (size_t i = 0; i + 1 < kEventLabels.size(); ++i) {
    if (kEventLabels[i] == name) return i;
  }
  return kEventLabels.size() - 1;
}

// Whether a body may be read as JSON: declared so, or not declared at all.
bool IsJson(std::string_view content_type) {
  const std::string_view media = content_type.substr(0, content_type.find(';'));
  std::string lower(media);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!lower.empty() && lower.back() == ' ') lower.pop_back();
  return lower.empty() || lower == "application/json";
}

bool IsLowerHex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

struct Ingest::Metrics {
  explicit Metrics(metrics::Registry& registry)
      : gross(metrics::BuildCounter()
                  .Name("herald_revenue_gross_cents_total")
                  .Help("Money fans paid, in cents, from the transactions.new events recorded.")
                  .LabelNames({"tenant"})
                  .Register(registry)),
        net(metrics::BuildCounter()
                .Name("herald_revenue_net_cents_total")
                .Help("What the creators received after the platform's fee, in cents, from the "
                      "transactions.new events recorded that carry their net or fee.")
                .LabelNames({"tenant"})
                .Register(registry)) {
    auto& events = metrics::BuildCounter()
                       .Name("herald_webhook_events_total")
                       .Help("Webhook deliveries received, by event type and result.")
                       .LabelNames({"type", "result"})
                       .Register(registry);
    auto& latency = metrics::BuildHistogram()
                        .Name("herald_ingest_duration_seconds")
                        .Help("Time to verify, decode and record one webhook delivery.")
                        .LabelNames({"result"})
                        .Buckets(metrics::ExponentialBuckets(0.0001, 2, 16))
                        .Register(registry);
    for (size_t e = 0; e < kEventLabels.size(); ++e) {
      for (size_t r = 0; r < kResults.size(); ++r) {
        counters[e][r] = &events.Add(
            {{"type", std::string(kEventLabels[e])}, {"result", std::string(kResults[r])}});
      }
    }
    for (size_t r = 0; r < kResults.size(); ++r) {
      durations[r] = &latency.Add({{"result", std::string(kResults[r])}});
    }
  }

  // A recorded transaction's money, counted once: a duplicate is not recorded. A refund (a
  // negative amount) is not taken off: the counters only grow.
  void CountRevenue(const std::string& tenant, const upstream::WebhookEvent& event) {
    if (event.type != WebhookEventType::kTransaction || event.amount_cents < 0) return;
    gross.Add({{"tenant", tenant}}).Increment(static_cast<double>(event.amount_cents));
    if (event.net_cents >= 0) {  // -1: the transaction did not say
      net.Add({{"tenant", tenant}}).Increment(static_cast<double>(event.net_cents));
    }
  }

  std::array<std::array<metrics::Counter*, kResults.size()>, kEventLabels.size()> counters{};
  std::array<metrics::Histogram*, kResults.size()> durations{};
  metrics::Family<metrics::Counter>& gross;
  metrics::Family<metrics::Counter>& net;
};

// The moving average of the recorder's call times (weight 1/8 per call), and whether to try the
// next event. The average forgets what is a second old: after a second without a completed call,
// the next call's time replaces it, so that an ingest idle since Redis recovered does not go on
// shedding for the average's sake. Thread-safe.
class Ingest::Shedder {
 public:
  explicit Shedder(absl::Duration threshold) : threshold_(threshold) {}

  bool Admit(absl::Time now) {
    if (threshold_ <= absl::ZeroDuration()) return true;
    std::lock_guard<std::mutex> lock(mu_);
    if (average_ <= threshold_) return true;
    if (now - last_probe_ < kProbeEvery) return false;
    last_probe_ = now;
    return true;
  }

  // A call that started `took` before `now` has completed.
  void Completed(absl::Time now, absl::Duration took) {
    if (threshold_ <= absl::ZeroDuration()) return;
    std::lock_guard<std::mutex> lock(mu_);
    const bool was_shedding = average_ > threshold_;
    average_ = now - last_completed_ >= kForgetAfter ? took : average_ * 7 / 8 + took / 8;
    last_completed_ = now;
    if (!was_shedding && average_ > threshold_) last_probe_ = now;  // the first probe in 100 ms
  }

 private:
  static constexpr absl::Duration kForgetAfter = absl::Seconds(1);

  const absl::Duration threshold_;
  std::mutex mu_;
  absl::Duration average_;                            // guarded by mu_
  absl::Time last_probe_ = absl::InfinitePast();      // guarded by mu_
  absl::Time last_completed_ = absl::InfinitePast();  // guarded by mu_
};

Ingest::Ingest(EndpointDirectory& endpoints, EventRecorder& recorder, metrics::Registry* registry,
               IngestOptions options)
    : endpoints_(endpoints),
      recorder_(recorder),
      metrics_(registry != nullptr ? std::make_unique<Metrics>(*registry) : nullptr),
      outage_(std::make_unique<log::Outage>("redis", "recording webhook events")),
      endpoints_down_(std::make_unique<log::Outage>("webhook endpoints", "checking signatures")),
      clock_(options.clock != nullptr ? *options.clock : SystemClock::Get()),
      shedder_(std::make_unique<Shedder>(options.shed_latency)) {}

Ingest::~Ingest() = default;

asio::awaitable<IngestResponse> Ingest::Handle(IngestRequest request) {
  const absl::Time start = absl::Now();
  std::string_view event_name;
  auto finish = [&](Result result, int status, std::string message) {
    if (metrics_) {
      metrics_->counters[EventLabel(event_name)][result]->Increment();
      metrics_->durations[result]->Observe(absl::ToDoubleSeconds(absl::Now() - start));
    }
    return IngestResponse{.status = status,
                          .message = std::move(message),
                          .retry_after_seconds = status == 503 ? 1 : 0};
  };

  // Unsigned requests cost nothing more, and their answer says nothing of the endpoint.
  if (request.signature.empty() || !IsLowerHex(request.signature)) {
    co_return finish(kBadSignature, 401, "missing or invalid signature");
  }
  std::string endpoint_id(request.endpoint);
  absl::StatusOr<Endpoint> endpoint = co_await endpoints_.Find(std::move(endpoint_id));
  if (!endpoint.ok()) {
    // The same answer as a bad signature, after the same work (an HMAC of the body): an
    // unsigned request cannot probe which endpoints exist, by the answer or by its time. The
    // metric still tells an operator which of the two it was.
    if (absl::IsNotFound(endpoint.status())) {
      static_cast<void>(store::HmacSha256Hex(request.endpoint, request.body));
      co_return finish(kUnknownEndpoint, 401, "missing or invalid signature");
    }
    endpoints_down_->Failed(endpoint.status());
    co_return finish(kUnavailable, 503, "temporarily unavailable; retry");
  }
  endpoints_down_->Succeeded();
  // The signature covers the raw bytes and is checked before anything is parsed.
  // The previous secret is accepted too, so rotating the secret never refuses events the
  // upstream signed before it learnt the new one.
  auto signed_with = [&](const std::string& secret) {
    return !secret.empty() &&
           store::ConstantTimeEquals(store::HmacSha256Hex(secret, request.body), request.signature);
  };
  auto verified = [&] {
    return signed_with(endpoint->secret) || signed_with(endpoint->previous_secret);
  };
  if (!verified()) {
    // The secret may have been rotated since the endpoint was cached: look once more.
    std::string again_id(request.endpoint);
    if (!endpoints_.Invalidate(again_id)) {
      co_return finish(kBadSignature, 401, "missing or invalid signature");
    }
    endpoint = co_await endpoints_.Find(std::move(again_id));
    if (!endpoint.ok() && !absl::IsNotFound(endpoint.status())) {
      endpoints_down_->Failed(endpoint.status());
      co_return finish(kUnavailable, 503, "temporarily unavailable; retry");
    }
    if (!endpoint.ok() || !verified()) {
      co_return finish(kBadSignature, 401, "missing or invalid signature");
    }
  }
  if (!IsJson(request.content_type)) {
    co_return finish(kUnsupportedType, 415, "the body must be application/json");
  }
  absl::StatusOr<upstream::WebhookEvent> event = upstream::DecodeWebhookEvent(request.body);
  if (!event.ok()) {
    const std::string named = EventNameOf(request.body);
    event_name = named;
    co_return finish(kMalformed, 400, StrCat("malformed event: ", event.status().message()));
  }
  event_name = event->name;
  const bool applies = event->type != WebhookEventType::kOther;
  if (request.idempotency_key.empty() && !applies) {
    // Ephemeral events (presence) carry no key; they are counted, not stored.
    co_return finish(kNoKey, 200, "ignored: no idempotency key");
  }
  if (!applies) co_return finish(kUnknownType, 200, "ignored: event type not used");
  // Every event Herald applies should carry a key. One that does not is still recorded, never
  // dropped: keyed by its signed body, which a retry or a redelivery repeats byte for byte. A
  // key longer than the upstream's (evt_ and 40 hex digits) is kept as its digest, so that
  // what Redis holds per event stays small.
  std::string key;
  if (request.idempotency_key.empty()) {
    key = StrCat("body:", store::Sha256Hex(request.body));
  } else if (request.idempotency_key.size() > kMaxKeptKeyBytes) {
    key = StrCat("sha256:", store::Sha256Hex(request.idempotency_key));
  } else {
    key = std::string(request.idempotency_key);
  }
  const absl::Time recording = clock_.Now();
  if (!shedder_->Admit(recording)) {
    co_return finish(kShed, 503, "overloaded; retry");
  }
  absl::StatusOr<RecordOutcome> outcome =
      co_await recorder_.Record(endpoint->tenant, std::move(key), *event);
  const absl::Time recorded = clock_.Now();
  shedder_->Completed(recorded, recorded - recording);
  if (!outcome.ok() && absl::IsInternal(outcome.status())) {
    // Not an outage: this event (a key of the wrong type, a fault in the script) and not Redis.
    // Its sender retries it, and each try is logged until the cause is found.
    log::Error("webhook event not applied", {{"tenant", endpoint->tenant},
                                             {"event", event->name},
                                             {"error", outcome.status().ToString()}});
    co_return finish(kFailed, 500, "the event could not be applied; retry");
  }
  if (!outcome.ok()) {
    outage_->Failed(outcome.status());
    co_return finish(kUnavailable, 503, "temporarily unavailable; retry");
  }
  outage_->Succeeded();
  if (metrics_ && *outcome != RecordOutcome::kDuplicate) {
    metrics_->CountRevenue(endpoint->tenant, *event);
  }
  switch (*outcome) {
    case RecordOutcome::kDuplicate:
      co_return finish(kDuplicate, 200, "duplicate");
    case RecordOutcome::kUnattributed:
      co_return finish(kUnattributed, 200, "applied; not attributed to a mass message yet");
    case RecordOutcome::kApplied:
      break;
  }
  co_return finish(kApplied, 200, "applied");
}

namespace {

class CachedDirectory final : public EndpointDirectory {
 public:
  CachedDirectory(std::unique_ptr<EndpointDirectory> inner, const Clock& clock, absl::Duration ttl)
      : inner_(std::move(inner)), clock_(clock), ttl_(ttl) {}

  // The entry is dropped when it is over kReread old; either way the next Find may differ (a
  // concurrent request may have read it again already).
  bool Invalidate(const std::string& endpoint) override {
    const absl::Time now = clock_.Now();
    std::lock_guard lock(mu_);
    auto it = cache_.find(endpoint);
    if (it != cache_.end() && now - it->second.fetched >= kReread) cache_.erase(it);
    return true;
  }

  Op<Endpoint> Find(std::string endpoint) override {
    const absl::Time now = clock_.Now();
    {
      std::lock_guard lock(mu_);
      if (auto it = cache_.find(endpoint); it != cache_.end() && it->second.expires > now) {
        if (it->second.found) co_return it->second.endpoint;
        co_return absl::NotFoundError("unknown webhook endpoint");
      }
    }
    absl::StatusOr<Endpoint> found = co_await inner_->Find(endpoint);
    if (!found.ok() && !absl::IsNotFound(found.status())) co_return found.status();
    std::lock_guard lock(mu_);
    if (cache_.size() >= kMaxEntries) cache_.clear();  // a flood of made-up endpoints
    Entry& entry = cache_[endpoint];
    entry.found = found.ok();
    entry.fetched = now;
    entry.expires = now + (found.ok() ? ttl_ : std::min(ttl_, absl::Seconds(2)));
    if (found.ok()) entry.endpoint = *found;
    co_return found;
  }

 private:
  static constexpr size_t kMaxEntries = 100'000;
  // A signature mismatch reads an endpoint again at most this often (forged floods stay cheap).
  static constexpr absl::Duration kReread = absl::Milliseconds(100);
  struct Entry {
    bool found = false;
    Endpoint endpoint;
    absl::Time fetched;
    absl::Time expires;
  };
  std::unique_ptr<EndpointDirectory> inner_;
  const Clock& clock_;
  const absl::Duration ttl_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> cache_;
};

}  // namespace

std::unique_ptr<EndpointDirectory> MakeCachedDirectory(std::unique_ptr<EndpointDirectory> inner,
                                                       const Clock& clock, absl::Duration ttl) {
  return std::make_unique<CachedDirectory>(std::move(inner), clock, ttl);
}

}  // namespace herald::webhooks
