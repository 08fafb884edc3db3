#include <algorithm>
#include <limits>
#include <map>
#include <mutex>

#include <absl/container/flat_hash_set.h>
#include <absl/strings/numbers.h>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include <herald/campaign/state.h>
#include <herald/campaign/workflow.h>
#include <herald/common/log.h>
#include <herald/common/setting_error.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/queue/queue.h>
#include <herald/queue/worker.h>
#include <herald/store/crypto.h>
#include <herald/store/store.h>
#include <herald/upstream/error.h>

#include "lifecycle_metrics.h"

namespace herald::campaign {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using queue::JobResult;
using store::Delivery;
using store::DeliveryState;

// `unix_ms` as an operator reads it in a delivery's error: "2026-05-01T20:00:00Z".
std::string UtcTime(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

// What every delivery job carries.
struct StepPayload {
  std::string tenant;
  std::string campaign;
  std::string account;
  int32_t generation = 0;
  int32_t index = 0;  // the media position (upload) or the poll number (poll)
  // Which uploads the chain is on: 0 for the first, then the delivery's send attempts when the
  // media was uploaded again (upstream media ids are single-use). The steps after an upload again
  // carry it, so their ids are new beside the first uploads' and send's.
  int32_t round = 0;
  // An upload's media asset id, read with the job's records (payloads written before it was
  // added have none: the upload reads the asset on its own).
  std::string media;
  // A paged step's place in an upstream list, from the page before: the buyers list's
  // next_page link, or its marker when it gave none (reconciliation), or the offset a list's
  // members go on from (a segment's scan). Payloads written before it was added have none: the
  // page goes by its index alone.
  std::string cursor;
  // A reconciliation page read by offset (the buyers list without a link): how many buyers the
  // pages before it held, which may be fewer than asked. Payloads written before it was added
  // have none: the offset is the page's index times the page size.
  std::optional<int64_t> offset;
};

// How a log names the delivery's segment list: its id, or the name it was asked for under.
std::string ListNamed(const Delivery& d) {
  return d.segment_list_id.empty() ? StrCat("named '", d.segment_list_name, "'")
                                   : d.segment_list_id;
}

// A segment's list that delivery_drop_list could not delete, and why.
void LogListLeft(const StepPayload& s, std::string_view list, std::string_view why) {
  log::Warn("the segment's upstream list was left on the account", {{"tenant", s.tenant},
                                                                    {"campaign", s.campaign},
                                                                    {"account", s.account},
                                                                    {"list", list},
                                                                    {"error", why}});
}

std::string EncodePayload(const StepPayload& p) {
  // The object's nodes live in a buffer on the stack: no allocation but the result's.
  unsigned char buffer[1024];
  json::monotonic_resource resource(buffer, sizeof(buffer));
  json::object o(&resource);
  o.reserve(8);
  o.emplace("tenant", p.tenant);
  o.emplace("campaign", p.campaign);
  o.emplace("account", p.account);
  o.emplace("generation", p.generation);
  o.emplace("index", p.index);
  if (!p.media.empty()) o.emplace("media", p.media);
  if (p.round != 0) o.emplace("round", p.round);
  if (!p.cursor.empty()) o.emplace("cursor", p.cursor);
  if (p.offset) o.emplace("offset", *p.offset);
  return json::serialize(o);
}

absl::StatusOr<StepPayload> DecodePayload(std::string_view bytes) {
  boost::system::error_code ec;
  json::value v = json::parse(bytes, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return absl::InvalidArgumentError("delivery job payload is not a JSON object");
  StepPayload p;
  const json::string *tenant = nullptr, *campaign = nullptr, *account = nullptr;
  const json::value *generation = o->if_contains("generation"), *index = o->if_contains("index");
  if (auto* t = o->if_contains("tenant")) tenant = t->if_string();
  if (auto* c = o->if_contains("campaign")) campaign = c->if_string();
  if (auto* a = o->if_contains("account")) account = a->if_string();
  if (!tenant || !campaign || !account || !generation || !generation->is_int64() || !index ||
      !index->is_int64()) {
    return absl::InvalidArgumentError("delivery job payload lacks a field");
  }
  p.tenant = std::string(*tenant);
  p.campaign = std::string(*campaign);
  p.account = std::string(*account);
  p.generation = static_cast<int32_t>(generation->as_int64());
  p.index = static_cast<int32_t>(index->as_int64());
  if (const json::value* media = o->if_contains("media")) {
    const json::string* m = media->if_string();
    if (m == nullptr) return absl::InvalidArgumentError("delivery job payload's media is not text");
    p.media = std::string(*m);
  }
  if (const json::value* round = o->if_contains("round")) {
    if (!round->is_int64()) return absl::InvalidArgumentError("delivery job payload's round");
    p.round = static_cast<int32_t>(round->as_int64());
  }
  if (const json::value* cursor = o->if_contains("cursor")) {
    const json::string* c = cursor->if_string();
    if (c == nullptr) return absl::InvalidArgumentError("delivery job payload's cursor");
    p.cursor = std::string(*c);
  }
  if (const json::value* offset = o->if_contains("offset")) {
    if (!offset->is_int64() || offset->as_int64() < 0) {
      return absl::InvalidArgumentError("delivery job payload's offset");
    }
    p.offset = offset->as_int64();
  }
  return p;
}

std::string StepId(std::string_view kind, const StepPayload& p) {
  // kind is one of the constants; ids stay well below the queue's 256 bytes for valid names.
  std::string id = StrCat("d:", p.tenant, ":", p.campaign, ":", p.account, ":g", p.generation, ":",
                          kind, ":", p.index);
  if (p.round != 0) StrAppend(&id, ":r", p.round);
  return id;
}

int64_t ToMillis(absl::Time t) { return absl::ToUnixMillis(t); }

// Whether the delivery's latest send attempt is known to have made no message.
bool LatestKnownUnsent(const Delivery& d) {
  return d.send_attempts > 0 && d.send_unsent_attempt == d.send_attempts;
}

// Whether a send that failed with `error` may still reach the upstream: Herald stopped waiting
// (a timeout, a cancelled call) or a gateway gave up on a server perhaps still at work (504).
// An answer, a reset or a closed connection ends the exchange.
bool MayStillLand(const absl::Status& error) {
  if (absl::IsDeadlineExceeded(error) || absl::IsCancelled(error)) return true;
  const std::optional<upstream::UpstreamError> e = upstream::GetUpstreamError(error);
  return e.has_value() && e->http_status == 504;
}

// The upstream list a segment becomes for one campaign: "Herald <segment> <campaign id's last
// six characters>", within the upstream's 64 characters. The segment's name is shortened, never
// the campaign's part, so the name stays the campaign's own (a retry finds its list by it).
std::string SegmentListName(std::string_view segment, std::string_view campaign) {
  constexpr size_t kMaxChars = 64;
  const std::string_view suffix = campaign.substr(campaign.size() > 6 ? campaign.size() - 6 : 0);
  const size_t room = kMaxChars - std::string_view("Herald  ").size() - Utf8Length(suffix);
  return StrCat("Herald ", Utf8Prefix(segment, room), " ", suffix);
}

// A sent delivery's note of a failed progress check (DeliveryWorkflow::OnFollowError) starts
// with this; the next check that succeeds clears it, and only it.
constexpr std::string_view kProgressNote = "progress check failed, ";

void ClearProgressNote(Delivery& d) {
  if (d.error.starts_with(kProgressNote)) d.error.clear();
}

// The text the upstream echoes back, reduced for comparison: tags dropped, whitespace folded.
std::string NormaliseText(std::string_view html) {
  std::string out;
  bool in_tag = false, space = false;
  for (char ch : html) {
    if (ch == '<') {
      in_tag = true;
      continue;
    }
    if (in_tag) {
      if (ch == '>') in_tag = false;
      continue;
    }
    if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(ch);
  }
  return out;
}

// The content `campaign`'s generation sends, as a send attempt records it.
store::AttemptContent ContentOf(const store::Campaign& campaign) {
  return {.text_sha256 = store::Sha256Hex(NormaliseText(campaign.content.text)),
          .free = campaign.content.price_cents == 0,
          .media_count = static_cast<int32_t>(campaign.content.media.size()),
          .generation = campaign.generation};
}

// Whether an upstream message with this (raw) text, price and media count is what `sent` asked
// for. A media count below 0: not known (the upstream's queue items carry none).
bool Matches(const store::AttemptContent& sent, std::string_view text, bool free,
             int64_t media_count) {
  return free == sent.free && (media_count < 0 || media_count == sent.media_count) &&
         store::Sha256Hex(NormaliseText(text)) == sent.text_sha256;
}

class TeamClients final : public UpstreamClients {
 public:
  TeamClients(asio::any_io_executor executor, upstream::ClientConfig base,
              const store::SecretBox& box, metrics::Registry* registry)
      : executor_(std::move(executor)),
        base_(std::move(base)),
        box_(box),
        registry_(registry),
        minute_calls_max_(registry == nullptr
                              ? nullptr
                              : &metrics::BuildGauge()
                                     .Name("herald_team_minute_calls_max")
                                     .Help("The most upstream calls Herald lets the team make in "
                                           "one minute (its rate_limit_per_minute), as this "
                                           "process's last upstream call for the team read it.")
                                     .LabelNames({"tenant", "team"})
                                     .Register(*registry)) {}

  absl::StatusOr<std::shared_ptr<upstream::Api>> For(const store::Team& team) override {
    const std::string key = StrCat(team.tenant, "/", team.id);
    const double minute_calls_max = static_cast<double>(team.rate_limit_per_minute);
    if (std::shared_ptr<upstream::Api> client =
            Cached(key, team.sealed_api_key, minute_calls_max)) {
      return client;
    }
    // Made without the lock: a client's first TLS context loads the CA bundle from disk, which
    // would hold up every job of every team meanwhile.
    auto api_key = box_.Open(
        team.sealed_api_key,
        store::TeamSecretContext(team.tenant, team.id, store::TeamSecret::kUpstreamApiKey));
    if (!api_key.ok()) {
      return absl::FailedPreconditionError(
          StrCat("team '", team.id,
                 "': its upstream key cannot be decrypted with this worker's encryption keys "
                 "(check --encryption_key and --previous_encryption_keys on every worker, or "
                 "set the key again with UpdateTeam)"));
    }
    upstream::ClientConfig config = base_;
    config.api_key = *std::move(api_key);
    config.key_id = UpstreamKeyId(team);
    config.tenant = team.tenant;
    config.team = team.id;
    HERALD_ASSIGN_OR_RETURN(std::unique_ptr<upstream::Client> client,
                            upstream::Client::Create(executor_, std::move(config), registry_));
    std::shared_ptr<upstream::Api> shared = std::move(client);
    metrics::Gauge* gauge = nullptr;
    if (minute_calls_max_ != nullptr) {
      gauge = &minute_calls_max_->Add({{"tenant", team.tenant}, {"team", team.id}});
    }
    std::lock_guard lock(mu_);
    Entry& entry = clients_[key];
    // Another job of the team may have made one meanwhile: one client per key is kept.
    if (entry.sealed_key != team.sealed_api_key || entry.client == nullptr) {
      entry = {team.sealed_api_key, std::move(shared), gauge};
    }
    if (entry.minute_calls_max) entry.minute_calls_max->Set(minute_calls_max);
    return entry.client;
  }

 private:
  // The client kept for `key` if it was made with `sealed_key` (its gauge set to
  // `minute_calls_max`); null otherwise.
  std::shared_ptr<upstream::Api> Cached(const std::string& key, const std::string& sealed_key,
                                        double minute_calls_max) {
    std::lock_guard lock(mu_);
    auto it = clients_.find(key);
    if (it == clients_.end() || it->second.sealed_key != sealed_key) return nullptr;
    if (it->second.minute_calls_max) it->second.minute_calls_max->Set(minute_calls_max);
    return it->second.client;
  }

  struct Entry {
    std::string sealed_key;
    std::shared_ptr<upstream::Api> client;
    metrics::Gauge* minute_calls_max = nullptr;  // the team's series; null without a registry
  };
  asio::any_io_executor executor_;
  const upstream::ClientConfig base_;
  const store::SecretBox& box_;
  metrics::Registry* const registry_;
  metrics::Family<metrics::Gauge>* const minute_calls_max_;  // null without a registry
  std::mutex mu_;
  std::map<std::string, Entry> clients_;
};

}  // namespace

int64_t TeamBurst(const store::Team& team) {
  return team.burst > 0 ? team.burst : std::max<int64_t>(1, team.rate_limit_per_minute / 60);
}

// Reconciliation never adopts an id twice.
store::Table AdoptedMessages(std::string_view tenant, std::string_view account) {
  return {std::string(tenant), StrCat("upstream_messages:", account)};
}

asio::awaitable<absl::StatusOr<std::optional<upstream::UserList>>> FindUserListNamed(
    upstream::Api& api, std::string account, std::string name,
    std::function<asio::awaitable<absl::Status>()> pace) {
  constexpr int kPage = 50;      // the upstream's largest page of lists
  constexpr int kMaxPages = 20;  // an account's first 1,000 lists
  for (int page = 0; page < kMaxPages; ++page) {
    HERALD_CO_RETURN_IF_ERROR(co_await pace());
    const upstream::UserListsQuery query{.limit = kPage, .offset = page * kPage};
    auto lists = co_await api.ListUserLists(account, query);
    if (!lists.ok()) co_return lists.status();
    for (upstream::UserList& list : *lists.value) {
      if (list.name == name) co_return std::optional<upstream::UserList>(std::move(list));
    }
    if (static_cast<int>(lists.value->size()) < kPage) break;
  }
  co_return std::nullopt;
}

namespace {
constexpr std::string_view kTestClaimPrefix = "test:";
}  // namespace

std::string TestMessageClaim(std::string_view campaign) {
  return StrCat(kTestClaimPrefix, campaign);
}

std::optional<std::string_view> TestMessageCampaign(std::string_view claim) {
  if (!claim.starts_with(kTestClaimPrefix)) return std::nullopt;
  return claim.substr(kTestClaimPrefix.size());
}

store::Table AccountFans(std::string_view tenant, std::string_view account) {
  return {std::string(tenant), StrCat("fans:", account)};
}

std::string EncodeFanData(const FanData& fan) {
  return json::serialize(json::object{{"lifetime_spend_cents", fan.lifetime_spend_cents},
                                      {"subscribed_at_ms", fan.subscribed_at_ms}});
}

std::optional<FanData> DecodeFanData(std::string_view document) {
  boost::system::error_code ec;
  json::value v = json::parse(document, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return std::nullopt;
  FanData fan;
  if (const json::value* x = o->if_contains("lifetime_spend_cents"); x && x->is_int64()) {
    fan.lifetime_spend_cents = x->as_int64();
  }
  if (const json::value* x = o->if_contains("subscribed_at_ms"); x && x->is_int64()) {
    fan.subscribed_at_ms = x->as_int64();
  }
  return fan;
}

bool SegmentSelects(const store::Segment& segment, const std::optional<FanData>& data,
                    absl::Time now) {
  if (segment.min_lifetime_spend_cents > 0 &&
      (!data || data->lifetime_spend_cents < segment.min_lifetime_spend_cents)) {
    return false;
  }
  if (segment.subscribed_within_days > 0) {
    const absl::Time since = now - absl::Hours(24) * segment.subscribed_within_days;
    if (!data || data->subscribed_at_ms == 0 ||
        absl::FromUnixMillis(data->subscribed_at_ms) < since) {
      return false;
    }
  }
  if (segment.top_spenders > 0 && (!data || data->lifetime_spend_cents <= 0)) return false;
  return true;
}

std::string EncodeScanPage(const std::vector<ScannedFan>& fans, bool with_spend) {
  std::string out;
  for (const ScannedFan& fan : fans) {
    if (!out.empty()) out.push_back(',');
    StrAppend(&out, fan.id);
    if (with_spend) StrAppend(&out, ":", fan.spend_cents);
  }
  return out;
}

std::vector<ScannedFan> DecodeScanPage(std::string_view page) {
  std::vector<ScannedFan> fans;
  if (page.empty()) return fans;
  for (std::string_view entry : StrSplit(page, ',')) {
    const size_t colon = entry.find(':');
    const std::optional<int64_t> id = ParseInt<int64_t>(entry.substr(0, colon));
    std::optional<int64_t> spend = int64_t{0};
    if (colon != std::string_view::npos) spend = ParseInt<int64_t>(entry.substr(colon + 1));
    if (id && spend) fans.push_back({.id = *id, .spend_cents = *spend});
  }
  return fans;
}

std::vector<int64_t> SegmentRecipients(const store::Segment& segment,
                                       std::vector<ScannedFan> scanned) {
  if (segment.top_spenders > 0) {
    const auto bigger = [](const ScannedFan& a, const ScannedFan& b) {
      return a.spend_cents != b.spend_cents ? a.spend_cents > b.spend_cents : a.id < b.id;
    };
    const size_t keep = std::min(scanned.size(), static_cast<size_t>(segment.top_spenders));
    std::partial_sort(scanned.begin(), scanned.begin() + static_cast<ptrdiff_t>(keep),
                      scanned.end(), bigger);
    scanned.resize(keep);
  }
  std::vector<int64_t> ids;
  ids.reserve(scanned.size());
  for (const ScannedFan& fan : scanned) ids.push_back(fan.id);
  return ids;
}

ProgressSample ProgressOf(const Delivery& d) {
  return {.pending = d.recipients_pending, .at = absl::FromUnixMillis(d.update_time_ms)};
}

absl::Duration NextPollDelay(ProgressSample before, ProgressSample now, absl::Duration margin,
                             absl::Duration backoff) {
  if (now.pending <= 0 || now.pending >= before.pending || now.at <= before.at) return backoff;
  const double reached_per_second =
      static_cast<double>(before.pending - now.pending) / absl::ToDoubleSeconds(now.at - before.at);
  const absl::Duration left = absl::Seconds(static_cast<double>(now.pending) / reached_per_second);
  return std::min(backoff, left + margin);
}

std::string EncodeAddBatch(const AddBatch& batch) {
  std::string out = StrCat(batch.begin, ";");
  for (size_t i = 0; i < batch.fans.size(); ++i) {
    if (i > 0) out.push_back(',');
    StrAppend(&out, batch.fans[i]);
  }
  return out;
}

std::optional<AddBatch> DecodeAddBatch(std::string_view document) {
  const size_t semicolon = document.find(';');
  if (semicolon == std::string_view::npos) return std::nullopt;
  const std::optional<int64_t> begin = ParseInt<int64_t>(document.substr(0, semicolon));
  const std::string_view fans = document.substr(semicolon + 1);
  if (!begin || *begin < 0 || fans.empty()) return std::nullopt;
  AddBatch batch{.begin = *begin};
  for (std::string_view entry : StrSplit(fans, ',')) {
    const std::optional<int64_t> id = ParseInt<int64_t>(entry);
    if (!id) return std::nullopt;
    batch.fans.push_back(*id);
  }
  return batch;
}

store::Table ListAddOutcomes(std::string_view tenant, std::string_view operation) {
  return {std::string(tenant), StrCat("list_add:", operation)};
}

store::Table ListAddResults(std::string_view tenant) {
  return {std::string(tenant), "list_add_results"};
}

std::string ListAddResultKey(std::string_view operation, int batch) {
  return StrCat(operation, ":", batch);
}

queue::JobSpec ListAddStep(const store::Account& account, std::string_view operation, int batch,
                           std::string_view list_id, const std::vector<int64_t>& fans,
                           int max_attempts, absl::Duration outcome_ttl) {
  json::array ids;
  for (int64_t f : fans) ids.emplace_back(f);
  const std::string payload =
      json::serialize(json::object{{"tenant", account.tenant},
                                   {"account", account.id},
                                   {"operation", operation},
                                   {"batch", batch},
                                   {"list", list_id},
                                   {"fans", std::move(ids)},
                                   {"outcome_ttl_ms", absl::ToInt64Milliseconds(outcome_ttl)}});
  return {.id = StrCat("l:", account.tenant, ":", operation, ":", batch),
          .kind = std::string(kListAddJob),
          .tenant = account.tenant,
          .team = QueueTeam(account.tenant, account.team),
          .account = QueueAccount(account.tenant, account.id),
          .payload = payload,
          .max_attempts = max_attempts};
}

std::optional<ListAddResult> DecodeListAddResult(std::string_view document) {
  boost::system::error_code ec;
  json::value v = json::parse(document, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return std::nullopt;
  ListAddResult r;
  if (const json::value* x = o->if_contains("ok"); x && x->is_bool()) r.ok = x->as_bool();
  if (const json::value* x = o->if_contains("reported"); x && x->is_int64()) {
    r.reported = x->as_int64();
  }
  if (const json::value* x = o->if_contains("error"); x && x->is_string()) {
    r.error = std::string(x->as_string());
  }
  if (const json::value* x = o->if_contains("http_status"); x && x->is_int64()) {
    r.http_status = static_cast<int>(x->as_int64());
  }
  if (const json::value* x = o->if_contains("code"); x && x->is_string()) {
    r.upstream_code = std::string(x->as_string());
  }
  return r;
}

std::string QueueTeam(std::string_view tenant, std::string_view team) {
  return StrCat(tenant, "/", team);
}
std::string QueueAccount(std::string_view tenant, std::string_view account) {
  return StrCat(tenant, "/", account);
}

asio::awaitable<absl::Status> EnqueueAll(queue::Queue& queue, std::vector<queue::JobSpec> jobs) {
  std::vector<std::string> accounts;
  accounts.reserve(jobs.size());
  for (const queue::JobSpec& job : jobs) accounts.push_back(job.account);
  HERALD_CO_ASSIGN_OR_RETURN(auto results, co_await queue.EnqueueBatch(std::move(jobs)));
  for (size_t i = 0; i < results.size() && i < accounts.size(); ++i) {
    if (results[i] != queue::EnqueueResult::kWrongTeam) continue;
    // QueueAccount: "<tenant>/<account>"; the tenant is the caller's own.
    const std::string_view account =
        std::string_view(accounts[i])
            .substr(std::min(accounts[i].size(), accounts[i].find('/') + 1));
    co_return absl::FailedPreconditionError(
        StrCat("account '", account, "' is registered with another team in the queue"));
  }
  co_return absl::OkStatus();
}

namespace {

// The job `kind` of `account`'s delivery of `campaign`, in the campaign's generation.
queue::JobSpec DeliveryJob(std::string_view kind, const store::Campaign& campaign,
                           const store::Account& account, int32_t index, std::string media,
                           const AttemptLimits& attempts,
                           absl::Duration delay = absl::ZeroDuration()) {
  const StepPayload p{.tenant = campaign.tenant,
                      .campaign = campaign.id,
                      .account = account.id,
                      .generation = campaign.generation,
                      .index = index,
                      .media = std::move(media)};
  return {.id = StepId(kind, p),
          .kind = std::string(kind),
          .tenant = campaign.tenant,
          .team = QueueTeam(campaign.tenant, account.team),
          .account = QueueAccount(campaign.tenant, account.id),
          .payload = EncodePayload(p),
          .max_attempts = attempts.For(kind),
          .delay = std::max(delay, absl::ZeroDuration())};
}

}  // namespace

queue::JobSpec FirstStep(const store::Campaign& campaign, const store::AccountTarget& target,
                         const store::Account& account, absl::Duration delay,
                         const AttemptLimits& attempts) {
  const std::string_view kind = !target.segment.empty()          ? kSegmentScanJob
                                : campaign.content.media.empty() ? kSendJob
                                                                 : kUploadMediaJob;
  std::string media = kind == kUploadMediaJob ? campaign.content.media.front() : std::string();
  return DeliveryJob(kind, campaign, account, 0, std::move(media), attempts, delay);
}

bool StagingBegun(const store::Campaign& campaign, absl::Time now) {
  // Job times are Redis's, `now` this process's: a few seconds' margin for the clocks.
  constexpr absl::Duration kClockMargin = absl::Seconds(5);
  if (campaign.phase != store::CampaignPhase::kScheduled || campaign.upstream_lead_ms <= 0 ||
      campaign.send_time_ms <= 0) {
    return false;
  }
  return now >=
         absl::FromUnixMillis(campaign.send_time_ms - campaign.upstream_lead_ms) - kClockMargin;
}

queue::JobSpec UpdateStep(const store::Campaign& campaign, const store::Account& account,
                          const AttemptLimits& attempts, bool after_send) {
  // Its own id when a send enqueues it, whichever of the two runs first.
  return DeliveryJob(kUpdateJob, campaign, account, after_send ? 1 : 0, {}, attempts);
}

queue::JobSpec ClearUnsentStep(const store::Campaign& campaign, const store::Account& account,
                               const AttemptLimits& attempts) {
  // A send step: on a final delivery without a message it runs ClearUnsent (see Run).
  return DeliveryJob(kSendJob, campaign, account, 0, {}, attempts);
}

queue::JobSpec UnsendStep(const store::Campaign& campaign, const store::Account& account,
                          const AttemptLimits& attempts) {
  return DeliveryJob(kUnsendJob, campaign, account, 0, {}, attempts);
}

std::unique_ptr<UpstreamClients> MakeUpstreamClients(asio::any_io_executor executor,
                                                     upstream::ClientConfig base,
                                                     const store::SecretBox& box,
                                                     metrics::Registry* registry) {
  if (registry != nullptr) upstream::RegisterClientMetrics(*registry);
  return std::make_unique<TeamClients>(std::move(executor), std::move(base), box, registry);
}

absl::Status ValidateWorkflowConfig(const WorkflowConfig& config) {
  if (config.attempts.all < 1 || config.attempts.all > 100) {
    return config::SettingError("workflow.max_attempts",
                                StrCat("must be in [1, 100] (got ", config.attempts.all, ")"));
  }
  if (absl::Status s = ValidateKindLimits(config.attempts); !s.ok()) {
    return config::SettingError("workflow.max_attempts_by_kind", ToStd(s.message()));
  }
  if (config.poll_min <= absl::ZeroDuration() || config.poll_max < config.poll_min) {
    return absl::InvalidArgumentError("workflow: need 0 < poll_min <= poll_max");
  }
  if (config.max_polls < 1) return absl::InvalidArgumentError("workflow.max_polls must be >= 1");
  if (config.lookup_retry <= absl::ZeroDuration()) {
    return config::SettingError("workflow.lookup_retry", "must be positive");
  }
  if (config.lookup_patience < absl::ZeroDuration()) {
    return config::SettingError("workflow.lookup_patience", "must not be negative");
  }
  if (config.send_settle < absl::ZeroDuration()) {
    return config::SettingError("workflow.send_settle", "must not be negative");
  }
  // Upstream pages hold 1 to 100 entries.
  for (const auto& [setting, page] :
       {std::pair<std::string_view, int>{"workflow.segment_page", config.segment_page},
        {"workflow.reconcile_page", config.reconcile_page}}) {
    if (page < 1 || page > 100) {
      return config::SettingError(setting, StrCat("must be in [1, 100] (got ", page, ")"));
    }
  }
  if (config.list_batch < 1 || config.list_batch > kMaxListBatch) {
    return config::SettingError("workflow.list_batch", StrCat("must be in [1, ", kMaxListBatch,
                                                              "] (got ", config.list_batch, ")"));
  }
  return absl::OkStatus();
}

// Everything one job run knows.
struct DeliveryWorkflow::Context {
  const queue::LeasedJob& job;
  StepPayload step;
  store::Campaign campaign;
  store::Account account;
  store::Team team;
  Delivery delivery;
  std::optional<store::AccountTarget> target;  // this account's target; nullopt: no longer one
  std::shared_ptr<upstream::Api> api;
  bool last_attempt = false;
  int upstream_calls = 0;  // made by this job so far (Pace)
  // Read with the campaign for LoadAccount: the account, and its team as the job names it.
  std::optional<store::Account> read_account;
  std::optional<store::Team> read_team;
  // The media asset the job's payload names (StepPayload::media), read with the campaign.
  std::optional<store::MediaAsset> read_media;
};

namespace {

constexpr char kPacePayload[] = "herald.campaign/pace";
constexpr absl::Duration kMaxPaceWait = absl::Seconds(2);
// The longest a job waits for its account's next token: the interval of a pace of one a minute.
constexpr absl::Duration kMaxSlowPaceWait = absl::Seconds(61);

// How long a job's further call waits for its token before the job goes back to the queue. On an
// account (or team) paced slower than a call every kMaxPaceWait, a step of several calls (a
// lookup and then the call it was for) would otherwise pay its lease's token for its first call
// on every lease and never reach its second: it waits the slower of the two intervals instead.
absl::Duration PaceWaitLimit(const store::Account& account, const store::Team& team) {
  absl::Duration interval = absl::ZeroDuration();
  if (account.sends_per_minute > 0) interval = absl::Minutes(1) / account.sends_per_minute;
  if (team.rate_limit_per_minute > 0) {
    interval = std::max(interval, absl::Minutes(1) / team.rate_limit_per_minute);
  }
  return std::clamp(interval + absl::Seconds(1), kMaxPaceWait, kMaxSlowPaceWait);
}

// A status of Pace that ends the job with Release, or nullopt for any other status.
std::optional<JobResult> PaceStop(const absl::Status& status) {
  if (status.ok() || !status.GetPayload(kPacePayload).has_value()) return std::nullopt;
  return JobResult::Release();
}

absl::Status PaceStatus(absl::Status status) {
  status.SetPayload(kPacePayload, absl::Cord());
  return status;
}

// Whether the delivery's upstream message went out and is over (completed, or unsent or deleted
// by a cancel): what its fans bought may need reconciling.
bool MessageFinished(const Delivery& d) {
  return d.upstream_message_id != 0 &&
         (d.state == DeliveryState::kCompleted || d.state == DeliveryState::kCancelled);
}

bool SegmentStep(std::string_view kind) {
  return kind == kSegmentScanJob || kind == kSegmentListJob || kind == kSegmentAddJob;
}

// The steps of a delivery up to its message.
// The campaign a delivery update read back (its UpdateExtras::reads held the campaign's lookup
// first); nullopt when it is gone or does not decode.
std::optional<store::Campaign> CampaignReadBack(const store::LookupResults& reads) {
  auto heads = store::Store::DecodeMany<store::Campaign>(reads.at(0));
  if (!heads.ok() || heads->empty()) return std::nullopt;
  return std::move((*heads)[0]);
}

bool StepBeforeMessage(std::string_view kind) {
  return SegmentStep(kind) || kind == kUploadMediaJob || kind == kSendJob;
}

// The team id in a delivery job's queue team (QueueTeam); empty when it is not of `tenant`.
std::string TeamOfJob(std::string_view queue_team, std::string_view tenant) {
  if (queue_team.size() <= tenant.size() + 1 || !queue_team.starts_with(tenant) ||
      queue_team[tenant.size()] != '/') {
    return {};
  }
  return std::string(queue_team.substr(tenant.size() + 1));
}

}  // namespace

asio::awaitable<absl::StatusOr<Delivery>> DeliveryWorkflow::UpdateDelivery(
    Context& ctx, std::function<absl::Status(Delivery&)> mutate) {
  store::UpdateExtras none;  // named: g++ 12 destroys a temporary in a co_await operand twice
  HERALD_CO_ASSIGN_OR_RETURN(store::DeliveryUpdate updated,
                             co_await UpdateDelivery(ctx, std::move(mutate), std::move(none)));
  co_return std::move(updated.delivery);
}

asio::awaitable<absl::StatusOr<store::DeliveryUpdate>> DeliveryWorkflow::UpdateDelivery(
    Context& ctx, std::function<absl::Status(Delivery&)> mutate, store::UpdateExtras extras) {
  const StepPayload& s = ctx.step;
  // The state the applied update started from: the mutation runs again on a newer delivery
  // when another writer changed it first.
  DeliveryState before = ctx.delivery.state;
  // A named local: GCC 12 destroys a temporary with a non-trivial capture inside a co_await
  // expression twice.
  std::function<absl::Status(Delivery&)> observed = [&before, &mutate](Delivery& d) {
    before = d.state;
    return mutate(d);
  };
  absl::StatusOr<store::DeliveryUpdate> updated = co_await store_.UpdateDelivery(
      s.tenant, s.campaign, s.account, ctx.delivery, std::move(observed), std::move(extras));
  if (updated.ok()) {
    if (lifecycle_ != nullptr) lifecycle_->DeliveryUpdated(before, updated->delivery.state);
    ctx.delivery = updated->delivery;
    // A delivery that ends is done with its segment's scan, if it began one.
    const bool scanned = before == DeliveryState::kBuildingList || ctx.delivery.segment_fans >= 0;
    if (scanned && !store::IsFinal(before) && store::IsFinal(ctx.delivery.state)) {
      co_await DropSegmentScan(ctx);
    }
  }
  co_return updated;
}

DeliveryWorkflow::DeliveryWorkflow(store::Store& store, queue::Queue& queue,
                                   UpstreamClients& clients, const Clock& clock,
                                   WorkflowConfig config)
    : store_(store), queue_(queue), clients_(clients), clock_(clock), config_(config) {}

void DeliveryWorkflow::UseEvents(webhooks::MessageAnalytics* events, metrics::Registry* registry) {
  events_ = events;
  if (registry != nullptr) {
    reconciled_ = &metrics::BuildCounter()
                       .Name("herald_reconciled_purchases_total")
                       .Help("Purchases found by reconciliation whose webhooks never arrived.")
                       .Register(*registry)
                       .Add({});
  }
}

DeliveryWorkflow::~DeliveryWorkflow() = default;

void DeliveryWorkflow::UseMetrics(metrics::Registry& registry) {
  lifecycle_ = std::make_unique<internal::LifecycleMetrics>(registry);
}

namespace {

constexpr std::string_view kDeliveryJobs[] = {
    kSegmentScanJob, kSegmentListJob, kSegmentAddJob, kUploadMediaJob, kSendJob,
    kPollJob,        kUnsendJob,      kUpdateJob,     kReconcileJob,   kDropListJob};

}  // namespace

std::vector<std::string> JobKinds() {
  std::vector<std::string> kinds(std::begin(kDeliveryJobs), std::end(kDeliveryJobs));
  kinds.emplace_back(kListAddJob);
  return kinds;
}

void DeliveryWorkflow::Register(queue::Worker& worker) {
  for (std::string_view kind : kDeliveryJobs) {
    worker.Handle(std::string(kind),
                  [this](const queue::LeasedJob& job) -> asio::awaitable<JobResult> {
                    co_return co_await Run(job);
                  });
  }
  worker.Handle(std::string(kListAddJob),
                [this](const queue::LeasedJob& job) -> asio::awaitable<JobResult> {
                  co_return co_await ListAdd(job);
                });
}

queue::JobSpec DeliveryWorkflow::NextStep(const Context& ctx, std::string_view kind, int32_t index,
                                          absl::Duration delay, std::string_view cursor,
                                          std::optional<int64_t> offset) const {
  StepPayload p = ctx.step;
  p.index = index;
  p.media.clear();
  p.cursor = std::string(cursor);
  p.offset = offset;
  const std::vector<std::string>& media = ctx.campaign.content.media;
  if (kind == kUploadMediaJob && index >= 0 && index < static_cast<int32_t>(media.size())) {
    p.media = media[index];
  }
  return {.id = StepId(kind, p),
          .kind = std::string(kind),
          .tenant = ctx.job.tenant,
          .team = ctx.job.team,
          .account = ctx.job.account,
          .payload = EncodePayload(p),
          .max_attempts = config_.attempts.For(kind),
          .delay = delay};
}

asio::awaitable<JobResult> DeliveryWorkflow::Run(const queue::LeasedJob& job) {
  auto payload = DecodePayload(job.payload);
  if (!payload.ok()) co_return JobResult::Fail(std::string(payload.status().message()));
  Context ctx{.job = job, .step = *std::move(payload)};
  ctx.last_attempt = job.attempt >= job.max_attempts;
  const StepPayload& s = ctx.step;

  // One round trip for what most jobs need: the campaign's head (its targets may be thousands,
  // and this job needs its own), the delivery, the account's target, the account, its team, and
  // an upload's media asset.
  std::string team = TeamOfJob(job.team, s.tenant);
  std::string media = job.kind == kUploadMediaJob ? s.media : std::string();
  auto records = co_await store_.ReadDeliveryRecords(s.tenant, s.campaign, s.account,
                                                     std::move(team), std::move(media));
  if (!records.ok()) co_return JobResult::StoreFailed(records.status());
  if (!records->campaign) co_return JobResult::Ok();  // deleted: nothing to do
  ctx.campaign = *std::move(records->campaign);
  if (!records->delivery) co_return JobResult::Ok();
  ctx.delivery = *std::move(records->delivery);
  if (ctx.campaign.generation != s.generation && job.kind != kUnsendJob &&
      job.kind != kReconcileJob && job.kind != kDropListJob) {
    // A stale schedule. A send whose attempt is still on record keeps its delivery (a new
    // generation starts no chain beside it) and hands it over now.
    if (HoldsSendingDelivery(ctx)) {
      co_return JobResult::OkThen(HandOver(ctx));
    }
    co_return JobResult::Ok();
  }
  ctx.target = std::move(records->target);
  ctx.read_account = std::move(records->account);
  ctx.read_team = std::move(records->team);
  ctx.read_media = std::move(records->media);
  if (job.kind == kReconcileJob) {
    // Follows a finished delivery, whatever has happened to the campaign since.
    if (ctx.delivery.upstream_message_id == 0 || events_ == nullptr) co_return JobResult::Ok();
    if (auto stop = co_await LoadAccount(ctx)) co_return *std::move(stop);
    co_return co_await ReconcileBuyers(ctx);
  }
  if (job.kind == kDropListJob) {
    // As a reconciliation round: follows a finished delivery, whatever has happened since.
    if (auto stop = co_await LoadAccount(ctx)) co_return *std::move(stop);
    co_return co_await DropSegmentList(ctx);
  }
  // A poll or unsend step that ends its delivery chains what follows the message (AfterMessage:
  // the reconciliation, or the segment list's deletion) in the same atomic step as its ack. When
  // that ack is lost after the delivery was written (the worker died, or Redis failed it), the
  // step runs again and finds the delivery already final: it chains the same job again, with the
  // same id, so it still runs once.
  if (job.kind == kUnsendJob) {
    // Runs on a cancelled campaign, whatever generation, until the message is gone.
    if (ctx.delivery.upstream_message_id == 0) co_return JobResult::Ok();
    if (ctx.delivery.state == DeliveryState::kCancelled) {
      if (auto next = AfterMessage(ctx)) co_return JobResult::OkThen(*next);
      co_return JobResult::Ok();
    }
    if (auto stop = co_await LoadAccount(ctx)) co_return *std::move(stop);
    co_return co_await Unsend(ctx);
  }
  if (store::IsFinal(ctx.delivery.state)) {
    if (job.kind == kPollJob && MessageFinished(ctx.delivery)) {
      if (auto next = AfterMessage(ctx)) co_return JobResult::OkThen(*next);
    }
    if (StepBeforeMessage(job.kind)) {
      // Ended before its message while this step waited (cancelled through the API): what it
      // built for its segment goes.
      if (auto next = co_await ClearUnsent(ctx)) co_return JobResult::OkThen(*next);
    }
    co_return JobResult::Ok();
  }

  using store::CampaignPhase;
  if (job.kind == kUpdateJob) {
    // Only a held message of a live campaign changes; a cancel deletes it instead.
    if (ctx.campaign.phase != CampaignPhase::kScheduled &&
        ctx.campaign.phase != CampaignPhase::kDispatched) {
      co_return JobResult::Ok();
    }
    if (auto stop = co_await LoadAccount(ctx)) co_return *std::move(stop);
    co_return co_await UpdateUpstream(ctx);
  }
  switch (ctx.campaign.phase) {
    case CampaignPhase::kPaused:
      // A message the upstream has is not held by a pause: it is followed to its end.
      if (job.kind == kPollJob && ctx.delivery.upstream_message_id != 0) break;
      if (HoldsSendingDelivery(ctx)) {
        // A send whose outcome is not known yet, and ResumeCampaign starts no chain beside it
        // (see Service::Redispatch): the step waits, looking again every lookup_retry, until
        // the resumed generation finds it stale and takes the delivery over.
        co_return JobResult::OkThen(
            NextStep(ctx, kSendJob, LookupRound(ctx.campaign, clock_.Now()), config_.lookup_retry));
      }
      co_return JobResult::Ok();  // ResumeCampaign enqueues the delivery's step again
    case CampaignPhase::kDraft:
      co_return JobResult::Ok();
    case CampaignPhase::kMissed:
      co_return co_await EndMissed(ctx);
    case CampaignPhase::kCancelled:
      if (ctx.delivery.upstream_message_id == 0) co_return co_await CancelUnsent(ctx);
      if (job.kind != kPollJob) co_return JobResult::Ok();
      break;  // keep following a message that could not be unsent
    case CampaignPhase::kScheduled: {
      // The first job to run at the send time dispatches the campaign, or finds it missed.
      const absl::Time now = clock_.Now();
      const absl::Time due = absl::FromUnixMillis(ctx.campaign.send_time_ms);
      // Ahead of the send time, with a lead: the chain hands the message to the upstream, which
      // holds it until then; the campaign stays scheduled.
      if (ctx.campaign.upstream_lead_ms > 0 && now < due) break;
      bool missed = LateBeyondGrace(ctx.campaign, now).has_value();
      if (missed && ctx.campaign.upstream_lead_ms > 0) {
        // Messages the upstream held went out on time without Herald: the campaign was sent. So
        // may a message whose send's outcome is not known yet: the campaign dispatches, that
        // delivery's send step looks for it, and each delivery with nothing on the upstream
        // fails as missed.
        auto deliveries = co_await store_.ListDeliveries(s.tenant, s.campaign);
        if (!deliveries.ok()) co_return JobResult::StoreFailed(deliveries.status());
        missed = std::none_of(deliveries->begin(), deliveries->end(), [](const Delivery& d) {
          return d.upstream_message_id != 0 || d.send_attempts > 0;
        });
      }
      bool moved = false;  // by this job
      auto r =
          co_await store_.Update<store::Campaign>(s.tenant, s.campaign, [&](store::Campaign& c) {
            moved = false;
            if (c.phase != CampaignPhase::kScheduled || c.generation != s.generation) {
              return absl::OkStatus();
            }
            moved = true;
            c.update_time_ms = ToMillis(now);
            if (missed) {
              c.phase = CampaignPhase::kMissed;
              c.end_time_ms = ToMillis(now);
              c.phase_reason = MissedReason(c, now - due);
            } else {
              c.phase = CampaignPhase::kDispatched;
              c.dispatch_time_ms = ToMillis(now);
            }
            return absl::OkStatus();
          });
      if (!r.ok()) co_return JobResult::StoreFailed(r.status());
      ctx.campaign = *std::move(r);
      if (moved && lifecycle_ != nullptr) {
        lifecycle_->CampaignEntered(s.tenant,
                                    missed ? CampaignState::kMissed : CampaignState::kDispatching);
      }
      if (ctx.campaign.phase == CampaignPhase::kMissed) co_return co_await EndMissed(ctx);
      if (ctx.campaign.phase != CampaignPhase::kDispatched) co_return JobResult::Ok();
      break;
    }
    case CampaignPhase::kDispatched:
      break;
  }

  if (auto stop = co_await LoadAccount(ctx)) co_return *std::move(stop);
  // Before any of the chain's calls: a missed delivery uploads nothing either.
  if (job.kind != kPollJob) {
    if (auto stop = co_await FailIfMissed(ctx)) co_return *std::move(stop);
  }
  if (job.kind == kSegmentScanJob) co_return co_await SegmentScan(ctx);
  if (job.kind == kSegmentListJob) co_return co_await SegmentList(ctx);
  if (job.kind == kSegmentAddJob) co_return co_await SegmentAdd(ctx);
  if (job.kind == kUploadMediaJob) co_return co_await UploadMedia(ctx);
  if (job.kind == kSendJob) co_return co_await Send(ctx);
  if (job.kind == kPollJob) co_return co_await Poll(ctx);
  co_return JobResult::Fail(StrCat("unknown delivery job kind '", job.kind, "'"));
}

asio::awaitable<absl::Status> DeliveryWorkflow::OnDeadLetter(const queue::DeadJob& dead) {
  static constexpr std::string_view kSteps[] = {kSegmentScanJob, kSegmentListJob, kSegmentAddJob,
                                                kUploadMediaJob, kSendJob,        kPollJob};
  const bool step = std::find(std::begin(kSteps), std::end(kSteps), dead.kind) != std::end(kSteps);
  if (!step && dead.kind != kUnsendJob && dead.kind != kUpdateJob && dead.kind != kReconcileJob &&
      dead.kind != kDropListJob) {
    co_return absl::OkStatus();
  }
  auto payload = DecodePayload(dead.payload);
  if (!payload.ok()) co_return absl::OkStatus();  // names no delivery
  const queue::LeasedJob job{.id = dead.id,
                             .kind = dead.kind,
                             .payload = dead.payload,
                             .attempt = dead.attempts,
                             .max_attempts = dead.attempts};
  Context ctx{.job = job, .step = *std::move(payload)};
  const StepPayload& s = ctx.step;
  std::string no_team, no_media;  // named: see Run
  auto records = co_await store_.ReadDeliveryRecords(s.tenant, s.campaign, s.account,
                                                     std::move(no_team), std::move(no_media));
  if (!records.ok()) co_return records.status();
  if (!records->campaign || !records->delivery) co_return absl::OkStatus();
  ctx.campaign = *std::move(records->campaign);
  ctx.delivery = *std::move(records->delivery);
  const std::string reason = StrCat("gave up after ", dead.attempts,
                                    dead.attempts == 1 ? " attempt: " : " attempts: ", dead.reason);
  // The dead job as the queue would lease it, for steps enqueued in its place.
  const auto placed_as = [&](const store::Account& account) {
    return queue::LeasedJob{.id = dead.id,
                            .kind = dead.kind,
                            .tenant = s.tenant,
                            .team = QueueTeam(s.tenant, account.team),
                            .account = QueueAccount(s.tenant, s.account),
                            .payload = dead.payload};
  };
  // The step that follows the delivery's message, in the dead job's place.
  const auto follow_step = [&](const store::Account& account) {
    const queue::LeasedJob placed = placed_as(account);  // Context::job refers to it
    const Context where{
        .job = placed, .step = s, .campaign = ctx.campaign, .delivery = ctx.delivery};
    return FollowStep(where);
  };
  if (dead.kind == kUnsendJob) {
    if (ctx.delivery.cancel_outcome != kUnsendPending) co_return absl::OkStatus();
    auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
      if (d.cancel_outcome == kUnsendPending) d.cancel_outcome = StrCat("not unsent: ", reason);
      d.update_time_ms = ToMillis(clock_.Now());
      return absl::OkStatus();
    });
    if (!r.ok() || !records->account || ctx.delivery.upstream_message_id == 0 ||
        store::IsFinal(ctx.delivery.state)) {
      co_return r.status();
    }
    // The message stays out: it is followed to its end, as after an unsend the upstream refused.
    std::vector<queue::JobSpec> jobs;
    jobs.push_back(follow_step(*records->account));
    co_return co_await EnqueueAll(queue_, std::move(jobs));
  }
  if (dead.kind == kUpdateJob) {
    // The held message keeps its earlier content; the delivery itself goes on.
    if (ctx.delivery.state != DeliveryState::kScheduledUpstream) co_return absl::OkStatus();
    auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
      d.error = StrCat("the upstream message kept its earlier content: the update ", reason);
      d.update_time_ms = ToMillis(clock_.Now());
      return absl::OkStatus();
    });
    if (!r.ok() || !records->account || ctx.campaign.generation != s.generation) {
      co_return r.status();
    }
    // The update's step was to follow the message in its generation (the earlier one's polls end
    // as stale): the follow goes on without it.
    std::vector<queue::JobSpec> jobs;
    jobs.push_back(follow_step(*records->account));
    co_return co_await EnqueueAll(queue_, std::move(jobs));
  }
  if (store::IsFinal(ctx.delivery.state)) {
    // What the dead step would have chained on success is enqueued here instead: what follows
    // the message after a poll step whose last attempt ended its delivery but died before its ack,
    // the deletion of the segment's list after a step that failed the delivery before any message,
    // or what follows a reconciliation round whose job died. A deletion that died leaves the list.
    const bool poll_ended = dead.kind == kPollJob && MessageFinished(ctx.delivery);
    // A step that failed its delivery before any message: its segment's list goes.
    const bool unsent = step && ctx.delivery.upstream_message_id == 0;
    if ((!poll_ended && !unsent && dead.kind != kReconcileJob && dead.kind != kDropListJob) ||
        !records->account) {
      co_return absl::OkStatus();
    }
    const queue::LeasedJob placed = placed_as(*records->account);
    const Context where{
        .job = placed, .step = s, .campaign = ctx.campaign, .delivery = ctx.delivery};
    if (dead.kind == kReconcileJob) {
      log::Warn("reconciliation round gave up", {{"tenant", s.tenant},
                                                 {"campaign", s.campaign},
                                                 {"account", s.account},
                                                 {"error", reason}});
    }
    if (dead.kind == kDropListJob) LogListLeft(s, ListNamed(ctx.delivery), reason);
    std::optional<queue::JobSpec> next;
    if (poll_ended) {
      next = AfterMessage(where);
    } else if (unsent) {
      next = co_await ClearUnsent(where);
    } else if (dead.kind == kReconcileJob) {
      next = NextRound(where, /*gave_up=*/true);
      if (!next) next = DropListStep(where);
    }
    if (!next) co_return absl::OkStatus();
    std::vector<queue::JobSpec> jobs;
    jobs.push_back(*std::move(next));
    co_return co_await EnqueueAll(queue_, std::move(jobs));
  }
  if (dead.kind == kReconcileJob) co_return absl::OkStatus();  // follows final deliveries only
  const bool stale = ctx.campaign.generation != s.generation;
  const absl::Time now = clock_.Now();
  // A re-upload (after the upstream refused the attempt's media as spent, or a lookup found
  // nothing) follows an attempt known to have sent nothing: one that died fails its delivery,
  // as a first upload's does.
  const bool lookup_pending =
      dead.kind == kSendJob &&
      now - absl::FromUnixMillis(ctx.delivery.send_started_ms) < config_.lookup_patience;
  if (HoldsSendingDelivery(ctx) && records->account && (stale || lookup_pending)) {
    // Its send attempt may have created the message, and no other step follows the delivery (a
    // new generation starts none beside it): the new generation's send takes it over, or a new
    // step of this one looks for the message again later.
    const store::Account& account = *records->account;
    // The next lookup's round is counted at the time the step died, not now: a dead letter
    // handled twice (its notice offered again after a write that did land) then enqueues the
    // same step both times. That time is at least lookup_retry after the dead step was made, so
    // its round is past the dead step's, and the round after is made from the new step, at least
    // lookup_retry later (see LookupRound).
    queue::JobSpec next =
        stale
            ? DeliveryJob(kSendJob, ctx.campaign, account, 0, {}, config_.attempts)
            : DeliveryJob(kSendJob, ctx.campaign, account, LookupRound(ctx.campaign, dead.died_at),
                          {}, config_.attempts, config_.lookup_retry);
    if (!stale) {
      auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
        d.error = StrCat("the send step ", reason, "; looking for its message again in ",
                         absl::FormatDuration(config_.lookup_retry));
        d.update_time_ms = ToMillis(now);
        return absl::OkStatus();
      });
      if (!r.ok()) co_return r.status();
    }
    std::vector<queue::JobSpec> jobs;
    jobs.push_back(std::move(next));
    co_return co_await EnqueueAll(queue_, std::move(jobs));
  }
  // A step of an earlier schedule died after a reschedule gave the delivery new steps.
  if (stale) co_return absl::OkStatus();
  // A progress check that died (its worker killed on its last attempt, say) follows a message
  // that went out: as when the check fails on the upstream (OnFollowError), the delivery is not
  // failed for want of its progress, and the next check follows it. Once: a check that dies
  // again before any succeeds (a lasting fault) fails the delivery. The note names the check, so
  // a notice handled twice is not taken for a second death.
  const std::string dead_check = StrCat(kProgressNote, "check ");
  const std::string this_check = StrCat(dead_check, s.index, " ");
  const bool died_before =
      ctx.delivery.error.starts_with(dead_check) && !ctx.delivery.error.starts_with(this_check);
  if (dead.kind == kPollJob && ctx.delivery.upstream_message_id != 0 && !died_before &&
      s.index < config_.max_polls && records->account) {
    const std::string note =
        StrCat(this_check, reason, "; checking again in ", absl::FormatDuration(config_.poll_max),
               " (mass message ", ctx.delivery.upstream_message_id, " was sent)");
    auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
      if (d.error.empty() || d.error.starts_with(kProgressNote)) d.error = note;
      d.update_time_ms = ToMillis(now);
      return absl::OkStatus();
    });
    if (!r.ok()) co_return r.status();
    const queue::LeasedJob placed = placed_as(*records->account);
    const Context where{
        .job = placed, .step = s, .campaign = ctx.campaign, .delivery = ctx.delivery};
    std::vector<queue::JobSpec> jobs;
    jobs.push_back(NextStep(where, kPollJob, s.index + 1, config_.poll_max));
    co_return co_await EnqueueAll(queue_, std::move(jobs));
  }
  JobResult failed = co_await FailDelivery(ctx, reason);
  if (failed.status != JobResult::Status::kFail) co_return absl::UnavailableError(failed.reason);
  if (!records->account) co_return absl::OkStatus();
  const queue::LeasedJob placed = placed_as(*records->account);
  const Context where{.job = placed, .step = s, .campaign = ctx.campaign, .delivery = ctx.delivery};
  std::optional<queue::JobSpec> drop = co_await ClearUnsent(where);
  if (!drop) co_return absl::OkStatus();
  std::vector<queue::JobSpec> jobs;
  jobs.push_back(*std::move(drop));
  co_return co_await EnqueueAll(queue_, std::move(jobs));
}

asio::awaitable<std::optional<JobResult>> DeliveryWorkflow::LoadAccount(Context& ctx) {
  const StepPayload& s = ctx.step;
  // The target, the account and (unless the job named another) the team were read by Run.
  if (!ctx.read_account) {
    co_return co_await FailDelivery(ctx, "the account was deleted from Herald");
  }
  ctx.account = *ctx.read_account;
  if (ctx.read_team && ctx.read_team->id == ctx.account.team) {
    ctx.team = *ctx.read_team;
  } else {
    auto team = co_await store_.Get<store::Team>(s.tenant, ctx.account.team);
    if (!team.ok()) co_return JobResult::StoreFailed(team.status());
    ctx.team = *std::move(team);
  }
  auto api = clients_.For(ctx.team);
  if (!api.ok()) {
    // A worker without the encryption key the team's upstream key was sealed under (one not yet
    // restarted while the keys rotate, say): another attempt, perhaps on another worker, may
    // open it. Once the attempts run out the delivery fails with this reason.
    co_return JobResult::Retry(std::string(api.status().message()));
  }
  ctx.api = *std::move(api);
  co_return std::nullopt;
}

asio::awaitable<JobResult> DeliveryWorkflow::ListAdd(const queue::LeasedJob& job) {
  boost::system::error_code ec;
  json::value v = json::parse(job.payload, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  const json::value *tenant = nullptr, *account = nullptr, *operation = nullptr, *batch = nullptr,
                    *list = nullptr, *fans = nullptr;
  if (o != nullptr) {
    tenant = o->if_contains("tenant");
    account = o->if_contains("account");
    operation = o->if_contains("operation");
    batch = o->if_contains("batch");
    list = o->if_contains("list");
    fans = o->if_contains("fans");
  }
  if (!tenant || !tenant->is_string() || !account || !account->is_string() || !operation ||
      !operation->is_string() || !batch || !batch->is_int64() || !list || !list->is_string() ||
      !fans || !fans->is_array()) {
    co_return JobResult::Fail("list job payload is malformed");
  }
  const std::string tenant_id(tenant->as_string()), account_id(account->as_string());
  const std::string operation_id(operation->as_string());
  const int batch_number = static_cast<int>(batch->as_int64());
  // The outcome goes where the caller reads it: the operation's own table, which expires, or the
  // tenant's shared one for a job enqueued by a Herald before those tables.
  const json::value* ttl_ms = o->if_contains("outcome_ttl_ms");
  const bool expiring = ttl_ms != nullptr && ttl_ms->is_int64() && ttl_ms->as_int64() > 0;
  const absl::Duration ttl =
      expiring ? absl::Milliseconds(ttl_ms->as_int64()) : absl::ZeroDuration();
  std::vector<int64_t> ids;
  for (const json::value& f : fans->as_array()) {
    if (f.is_int64()) ids.push_back(f.as_int64());
  }
  auto finish = [&](const json::object& outcome) -> asio::awaitable<absl::Status> {
    if (expiring) {
      co_return co_await store_.records().PutExpiring(ListAddOutcomes(tenant_id, operation_id),
                                                      StrCat(batch_number),
                                                      json::serialize(outcome), ttl);
    }
    auto put = co_await store_.records().Put(ListAddResults(tenant_id),
                                             ListAddResultKey(operation_id, batch_number),
                                             json::serialize(outcome));
    co_return put.status();
  };
  auto fail = [&](std::string reason, int http_status = 0,
                  std::string code = {}) -> asio::awaitable<JobResult> {
    const json::object outcome{
        {"ok", false}, {"error", reason}, {"http_status", http_status}, {"code", code}};
    if (absl::Status st = co_await finish(outcome); !st.ok()) {
      co_return JobResult::StoreFailed(st);
    }
    co_return JobResult::Fail(std::move(reason));
  };
  auto account_record = co_await store_.Get<store::Account>(tenant_id, account_id);
  if (!account_record.ok()) {
    if (absl::IsNotFound(account_record.status())) co_return co_await fail("the account is gone");
    co_return JobResult::StoreFailed(account_record.status());
  }
  auto team = co_await store_.Get<store::Team>(tenant_id, account_record->team);
  if (!team.ok()) co_return JobResult::StoreFailed(team.status());
  auto api = clients_.For(*team);
  if (!api.ok()) {
    // As for a delivery's steps: a worker without the team's encryption key retries.
    std::string reason(api.status().message());
    if (job.attempt < job.max_attempts) co_return JobResult::Retry(std::move(reason));
    co_return co_await fail(std::move(reason));
  }
  // The batch's fans the upstream reports in the list: whether its answer holds the ids this
  // call added or every id now in the list, these are the batch's share of the request's count.
  const absl::flat_hash_set<int64_t> batch_fans(ids.begin(), ids.end());
  // Adding a fan twice leaves the list as it was: a retried batch is harmless.
  auto added = co_await (*api)->AddUsersToUserList(account_id, std::string(list->as_string()),
                                                   std::move(ids));
  if (!added.ok()) {
    // The team refused (401, 402): paused, and the batch waits for ResumeTeam.
    if (auto held = co_await PauseTeamIfRefused(store_, queue_, clock_, tenant_id, team->id,
                                                added.status())) {
      co_return *std::move(held);
    }
    const auto error = added.error();
    const std::string reason = StrCat("adding fans: ", added.status().message());
    if (error && error->kind == upstream::ErrorKind::kRateLimited) {
      co_return JobResult::RateLimited(error->retry_after);
    }
    if (upstream::IsTransient(error) && job.attempt < job.max_attempts)
      co_return JobResult::Retry(reason);
    // Named first: g++ 12 destroys a conditional operator's temporary in a co_await
    // expression wrongly (a free of the callee's parameter), corrupting the heap.
    const int http_status = error ? error->http_status : 0;
    std::string code = error ? error->code : std::string();
    co_return co_await fail(reason, http_status, std::move(code));
  }
  absl::flat_hash_set<int64_t> in_list;
  for (const auto& [list_key, list_ids] : added.value->users_by_key) {
    for (int64_t id : list_ids) {
      if (batch_fans.contains(id)) in_list.insert(id);
    }
  }
  const auto reported = static_cast<int64_t>(in_list.size());
  const json::object outcome{{"ok", true}, {"reported", reported}};
  if (absl::Status st = co_await finish(outcome); !st.ok()) {
    co_return JobResult::StoreFailed(st);
  }
  co_return JobResult::Ok();
}

asio::awaitable<JobResult> DeliveryWorkflow::Unsend(Context& ctx) {
  const StepPayload& s = ctx.step;
  const int64_t id = ctx.delivery.upstream_message_id;
  if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
  auto result = co_await ctx.api->UnsendMassMessage(s.account, id);
  std::string outcome;
  bool unsent = false;
  if (result.ok()) {
    unsent = result.value->queue.is_canceled || result.value->success;
    outcome = unsent ? "unsent" : "the upstream did not cancel the message";
  } else {
    // No credits, or a refused key: the team waits for its operator, and this unsend with it.
    if (auto stop = co_await PauseTeamIfRefused(store_, queue_, clock_, s.tenant, ctx.team.id,
                                                result.status())) {
      co_return *std::move(stop);
    }
    const auto error = result.error();
    if (!error || error->kind != upstream::ErrorKind::kTerminal) {
      if (error && error->kind == upstream::ErrorKind::kRateLimited) {
        co_return JobResult::RateLimited(error->retry_after);
      }
      if (!ctx.last_attempt) {
        co_return JobResult::Retry(StrCat("unsending: ", result.status().message()),
                                   error && error->kind == upstream::ErrorKind::kUnknownOutcome);
      }
    }
    // The upstream deletes a message it held: an earlier attempt whose answer was lost may
    // have, and the message will not go out.
    unsent = upstream::IsNotFoundInAccount(error);
    outcome = unsent ? "unsent" : StrCat("could not be unsent: ", result.status().message());
  }
  auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
    d.cancel_outcome = outcome;
    if (unsent) d.state = DeliveryState::kCancelled;
    if (unsent && result.ok()) {
      // Those the upstream had not reached stay pending: the unsend means they never will be.
      const int64_t delivered = result.value->queue.sent_count;
      if (d.recipients == 0) d.recipients = delivered;
      d.recipients_pending = std::max<int64_t>(0, d.recipients - delivered);
    }
    d.update_time_ms = ToMillis(clock_.Now());
    return absl::OkStatus();
  });
  if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  // A message that stays out is followed to its end, as any sent message is (a send that landed
  // after the cancel has no follow of its own); what comes after the message then follows.
  if (!unsent) co_return JobResult::OkThen(FollowStep(ctx));
  // The message went out before it was unsent: what fans bought meanwhile stands, and its
  // webhooks may have been lost. (The same step as a completed delivery's, so whichever path
  // enqueues it first, it runs once.)
  if (auto next = AfterMessage(ctx)) co_return JobResult::OkThen(*next);
  co_return JobResult::Ok();
}

queue::JobSpec DeliveryWorkflow::AfterSegment(const Context& ctx) const {
  return ctx.campaign.content.media.empty()
             ? NextStep(ctx, kSendJob, 0, absl::ZeroDuration())
             : NextStep(ctx, kUploadMediaJob, 0, absl::ZeroDuration());
}

namespace {

// A segment's working set on one account, a table of its own so that it goes in one step once
// the delivery is done with it (DropSegmentScan). Each retried step overwrites its own documents:
//   "<page>"    the fans the scan selected on that page of the source list (EncodeScanPage),
//   "pages"     how many pages the scan read, once it has read them all,
//   "add:<n>"   the add step's batch n, ranked once by the list step (EncodeAddBatch).
store::Table SegmentScanTable(std::string_view tenant, std::string_view campaign,
                              std::string_view account) {
  return {std::string(tenant), StrCat("c:", campaign, ":segment:", account)};
}

// Where a Herald before those tables kept every account's scan of a campaign ("<account>:<page>",
// "<account>:pages"): a scan that a rolling deploy interrupted is finished from it.
store::Table CampaignScanTable(std::string_view tenant, std::string_view campaign) {
  return {std::string(tenant), StrCat("c:", campaign, ":segment_fans")};
}

std::string AddBatchId(int64_t batch) { return StrCat("add:", batch); }

// Whether every fan the segment selected on the account is on its list.
bool SegmentListFilled(const Delivery& d) {
  return d.segment_fans >= 0 && d.segment_added >= d.segment_fans;
}

}  // namespace

asio::awaitable<JobResult> DeliveryWorkflow::SegmentScan(Context& ctx) {
  const StepPayload& s = ctx.step;
  if (ctx.delivery.segment_fans >= 0) {
    // Scanned already (an earlier run of this delivery): go on from where it stands.
    co_return JobResult::OkThen(ctx.delivery.segment_added >= ctx.delivery.segment_fans
                                    ? AfterSegment(ctx)
                                    : NextStep(ctx, kSegmentListJob, 0, absl::ZeroDuration()));
  }
  if (!ctx.target || ctx.target->segment.empty()) co_return JobResult::OkThen(AfterSegment(ctx));
  auto segment = co_await TargetSegment(ctx);
  if (!segment.ok()) co_return co_await SegmentUnreadable(ctx, segment.status());
  if (s.index == 0 && ctx.delivery.state == DeliveryState::kPending) {
    auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
      if (d.state == DeliveryState::kPending) d.state = DeliveryState::kBuildingList;
      d.update_time_ms = ToMillis(clock_.Now());
      return absl::OkStatus();
    });
    if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  }
  const std::string source = segment->expired_only ? "expired" : "fans";
  // Where the page before said the list goes on (the upstream's nextOffset), not where a full
  // page would have ended: a short page with more behind it loses no member.
  int offset = s.index * config_.segment_page;
  if (!s.cursor.empty()) {
    const std::optional<int> next = ParseInt<int>(s.cursor);
    if (!next || *next < 0) co_return JobResult::Fail("segment scan: malformed offset in payload");
    offset = *next;
  }
  upstream::PageQuery page{.limit = config_.segment_page, .offset = offset};
  if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
  auto users = co_await ctx.api->ListUserListUsers(s.account, source, page);
  if (!users.ok()) {
    co_return co_await OnUpstreamError(ctx, users.status(),
                                       StrCat("reading the '", source, "' list for the segment"));
  }
  std::vector<std::string> ids;
  for (const upstream::Fan& f : users.value->users) ids.push_back(std::to_string(f.id));
  auto known = co_await store_.records().GetMany(AccountFans(s.tenant, s.account), ids);
  if (!known.ok()) co_return JobResult::StoreFailed(known.status());
  std::vector<ScannedFan> selected;
  const absl::Time now = clock_.Now();
  for (size_t i = 0; i < ids.size(); ++i) {
    std::optional<FanData> data;
    if ((*known)[i]) data = DecodeFanData(*(*known)[i]);
    if (!SegmentSelects(*segment, data, now)) continue;
    selected.push_back(
        {.id = users.value->users[i].id, .spend_cents = data ? data->lifetime_spend_cents : 0});
  }
  const store::Table scan = SegmentScanTable(s.tenant, s.campaign, s.account);
  // Spends only where the list step ranks by them.
  const std::string page_doc = EncodeScanPage(selected, segment->top_spenders > 0);
  auto put = co_await store_.records().Put(scan, StrCat(s.index), page_doc);
  if (!put.ok()) co_return JobResult::StoreFailed(put.status());
  const int64_t next_offset = users.value->next_offset.value_or(
      int64_t{offset} + static_cast<int64_t>(users.value->users.size()));
  // An empty page is the end unless the upstream says there is more and where it goes on.
  const bool more =
      users.value->has_more && (!users.value->users.empty() || next_offset > offset) &&
      next_offset <= std::numeric_limits<int>::max() && s.index + 1 < config_.segment_max_pages;
  if (more) {
    co_return JobResult::OkThen(
        NextStep(ctx, kSegmentScanJob, s.index + 1, absl::ZeroDuration(), StrCat(next_offset)));
  }
  put = co_await store_.records().Put(scan, "pages", std::to_string(s.index + 1));
  if (!put.ok()) co_return JobResult::StoreFailed(put.status());
  co_return JobResult::OkThen(NextStep(ctx, kSegmentListJob, 0, absl::ZeroDuration()));
}

asio::awaitable<absl::StatusOr<store::Segment>> DeliveryWorkflow::TargetSegment(
    const Context& ctx) {
  if (!ctx.target || ctx.target->segment.empty()) {
    co_return absl::NotFoundError("the delivery's target names no segment");
  }
  auto segment = co_await store_.Get<store::Segment>(ctx.step.tenant, ctx.target->segment);
  if (absl::IsNotFound(segment.status())) {
    co_return absl::NotFoundError(StrCat("segment '", ctx.target->segment, "' was deleted"));
  }
  co_return std::move(segment);
}

asio::awaitable<JobResult> DeliveryWorkflow::SegmentUnreadable(Context& ctx,
                                                               const absl::Status& status) {
  if (!absl::IsNotFound(status)) co_return JobResult::StoreFailed(status);
  co_return co_await FailDelivery(ctx, std::string(status.message()));
}

asio::awaitable<absl::StatusOr<std::vector<int64_t>>> DeliveryWorkflow::SegmentFans(
    const Context& ctx, const store::Segment& segment) {
  const StepPayload& s = ctx.step;
  const store::Table scan = SegmentScanTable(s.tenant, s.campaign, s.account);
  const store::Table before = CampaignScanTable(s.tenant, s.campaign);
  std::vector<store::Lookup> counts;
  counts.push_back({.table = scan, .ids = {"pages"}});
  counts.push_back({.table = before, .ids = {StrCat(s.account, ":pages")}});
  HERALD_CO_ASSIGN_OR_RETURN(store::LookupResults count,
                             co_await store_.records().GetTables(std::move(counts)));
  const std::optional<std::string>& pages_doc = count[0][0] ? count[0][0] : count[1][0];
  int pages = 0;
  if (!pages_doc || !absl::SimpleAtoi(*pages_doc, &pages)) {
    co_return absl::FailedPreconditionError("the segment's scan has not finished");
  }
  std::vector<std::string> ids;
  for (int p = 0; p < pages; ++p) ids.push_back(StrCat(p));
  HERALD_CO_ASSIGN_OR_RETURN(auto docs, co_await store_.records().GetMany(scan, std::move(ids)));
  // Pages read before a rolling deploy are in the campaign's table.
  std::vector<std::string> earlier;
  for (int p = 0; p < pages; ++p) {
    if (!docs[p]) earlier.push_back(StrCat(s.account, ":", p));
  }
  if (!earlier.empty()) {
    HERALD_CO_ASSIGN_OR_RETURN(auto found,
                               co_await store_.records().GetMany(before, std::move(earlier)));
    auto next = found.begin();
    for (auto& doc : docs) {
      if (!doc) doc = std::move(*next++);
    }
  }
  std::vector<ScannedFan> scanned;
  for (const auto& doc : docs) {
    if (!doc) co_return absl::DataLossError("a page of the segment's scan is missing");
    std::vector<ScannedFan> page = DecodeScanPage(*doc);
    scanned.insert(scanned.end(), page.begin(), page.end());
  }
  co_return SegmentRecipients(segment, std::move(scanned));
}

asio::awaitable<absl::StatusOr<AddBatch>> DeliveryWorkflow::SegmentBatch(const Context& ctx) {
  const StepPayload& s = ctx.step;
  const int64_t added = ctx.delivery.segment_added;
  HERALD_CO_ASSIGN_OR_RETURN(
      std::optional<std::string> doc,
      co_await store_.records().Get(SegmentScanTable(s.tenant, s.campaign, s.account),
                                    AddBatchId(s.index)));
  std::optional<AddBatch> batch;
  if (doc) batch = DecodeAddBatch(*doc);
  // A batch that starts past what is on the list is of a list step that batched by another
  // --list_batch: it would skip fans.
  if (batch && batch->begin <= added) co_return *std::move(batch);
  // None stored (a list step before stored batches): the batch is sliced from the ranked scan.
  HERALD_CO_ASSIGN_OR_RETURN(store::Segment segment, co_await TargetSegment(ctx));
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<int64_t> fans, co_await SegmentFans(ctx, segment));
  AddBatch sliced{.begin = int64_t{s.index} * config_.list_batch};
  const int64_t end =
      std::min<int64_t>(static_cast<int64_t>(fans.size()), sliced.begin + config_.list_batch);
  if (sliced.begin < end) sliced.fans.assign(fans.begin() + sliced.begin, fans.begin() + end);
  co_return sliced;
}

asio::awaitable<void> DeliveryWorkflow::DropSegmentScan(const Context& ctx) {
  const StepPayload& s = ctx.step;
  auto dropped =
      co_await store_.records().DeleteTable(SegmentScanTable(s.tenant, s.campaign, s.account));
  if (!dropped.ok()) {
    // Left behind, unless the delivery has yet to end: its end drops it again.
    log::Warn("could not drop a segment's scan", {{"tenant", s.tenant},
                                                  {"campaign", s.campaign},
                                                  {"account", s.account},
                                                  {"error", dropped.status()}});
  }
}

asio::awaitable<JobResult> DeliveryWorkflow::SegmentList(Context& ctx) {
  const StepPayload& s = ctx.step;
  // Filled by an earlier run, whose scan may be gone.
  if (!ctx.delivery.segment_list_id.empty() && SegmentListFilled(ctx.delivery)) {
    co_return JobResult::OkThen(AfterSegment(ctx));
  }
  auto segment = co_await TargetSegment(ctx);
  if (!segment.ok()) co_return co_await SegmentUnreadable(ctx, segment.status());
  auto fans = co_await SegmentFans(ctx, *segment);
  if (!fans.ok()) co_return JobResult::StoreFailed(fans.status());
  if (fans->empty()) {
    // The segment adds nobody on this account. The target's lists and fans, if it names any,
    // still get the message; otherwise the delivery is done, with nothing sent.
    const bool others =
        ctx.target && (!ctx.target->user_lists.empty() || !ctx.target->fan_ids.empty());
    auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
      d.segment_fans = 0;
      if (!others) {
        d.state = DeliveryState::kCompleted;
        d.recipients = d.recipients_pending = 0;
      }
      d.update_time_ms = ToMillis(clock_.Now());
      return absl::OkStatus();
    });
    if (!r.ok()) co_return JobResult::StoreFailed(r.status());
    if (!others) co_return JobResult::Ok();  // ended: UpdateDelivery dropped the scan
    ctx.delivery = *std::move(r);
    co_await DropSegmentScan(ctx);
    co_return JobResult::OkThen(AfterSegment(ctx));
  }
  // The add step's batches, ranked once here rather than by every batch. A retry writes them
  // again, batched as this process batches.
  std::vector<std::pair<std::string, std::string>> batches;
  const auto size = static_cast<size_t>(config_.list_batch);
  for (size_t begin = 0; begin < fans->size(); begin += size) {
    const size_t end = std::min(fans->size(), begin + size);
    const AddBatch batch{.begin = static_cast<int64_t>(begin),
                         .fans = std::vector<int64_t>(fans->begin() + begin, fans->begin() + end)};
    batches.emplace_back(AddBatchId(static_cast<int64_t>(begin / size)), EncodeAddBatch(batch));
  }
  auto stored = co_await store_.records().PutMany(SegmentScanTable(s.tenant, s.campaign, s.account),
                                                  std::move(batches));
  if (!stored.ok()) co_return JobResult::StoreFailed(stored.status());
  if (ctx.delivery.segment_list_id.empty()) {
    const bool asked = !ctx.delivery.segment_list_name.empty();
    const std::string name =
        asked ? ctx.delivery.segment_list_name : SegmentListName(segment->display_name, s.campaign);
    std::string list_id;
    if (asked || ctx.job.attempt > 1 || ctx.job.previous_outcome_unknown) {
      // An earlier run (of this generation or one before it) may have created the list, and
      // lost the answer or failed to record it: found by its name, it is not made twice.
      std::function<asio::awaitable<absl::Status>()> pace = [&] { return Pace(ctx); };
      auto found = co_await FindUserListNamed(*ctx.api, s.account, name, std::move(pace));
      if (auto stop = PaceStop(found.status())) co_return *std::move(stop);
      if (!found.ok()) {
        co_return co_await OnUpstreamError(ctx, found.status(), "looking for the segment's list");
      }
      if (found->has_value()) list_id = (*found)->id;
    }
    if (list_id.empty()) {
      if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
      if (!asked) {
        // Named on the delivery before it is asked for: whatever becomes of the answer, the list
        // is found again, by this step or by the deletion after a cancel.
        auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
          if (store::IsFinal(d.state)) return absl::OkStatus();
          d.segment_list_name = name;
          d.update_time_ms = ToMillis(clock_.Now());
          return absl::OkStatus();
        });
        if (!r.ok()) co_return JobResult::StoreFailed(r.status());
        if (store::IsFinal(ctx.delivery.state)) {
          // Ended while this step ran (a cancel): nothing was asked for, and the scan goes.
          if (auto next = co_await ClearUnsent(ctx)) co_return JobResult::OkThen(*next);
          co_return JobResult::Ok();
        }
      }
      auto list = co_await ctx.api->CreateUserList(s.account, name);
      if (!list.ok()) {
        co_return co_await OnUpstreamError(ctx, list.status(), "creating the segment's list");
      }
      list_id = list.value->id;
    }
    auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
      d.segment_list_id = list_id;
      d.segment_fans = static_cast<int64_t>(fans->size());
      d.segment_added = 0;
      d.update_time_ms = ToMillis(clock_.Now());
      return absl::OkStatus();
    });
    // The list exists upstream now: the next run looks for it by name even when this one is
    // put off without spending an attempt.
    if (!r.ok()) co_return JobResult::StoreFailed(r.status(), /*outcome_unknown=*/true);
    ctx.delivery = *std::move(r);
  }
  const int32_t batch = static_cast<int32_t>(ctx.delivery.segment_added / config_.list_batch);
  co_return JobResult::OkThen(NextStep(ctx, kSegmentAddJob, batch, absl::ZeroDuration()));
}

asio::awaitable<JobResult> DeliveryWorkflow::SegmentAdd(Context& ctx) {
  const StepPayload& s = ctx.step;
  if (ctx.delivery.segment_list_id.empty()) {
    co_return JobResult::OkThen(NextStep(ctx, kSegmentListJob, 0, absl::ZeroDuration()));
  }
  // Filled by an earlier run of this batch, whose ack was lost.
  if (SegmentListFilled(ctx.delivery)) co_return JobResult::OkThen(AfterSegment(ctx));
  auto batch = co_await SegmentBatch(ctx);
  if (!batch.ok()) co_return co_await SegmentUnreadable(ctx, batch.status());
  const int64_t end = batch->begin + static_cast<int64_t>(batch->fans.size());
  const bool last = batch->fans.empty() || end >= ctx.delivery.segment_fans;
  if (!batch->fans.empty()) {
    // Adding a fan twice leaves the list as it was, so a retried batch is harmless.
    if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
    auto added = co_await ctx.api->AddUsersToUserList(s.account, ctx.delivery.segment_list_id,
                                                      std::move(batch->fans));
    if (!added.ok()) {
      co_return co_await OnUpstreamError(ctx, added.status(), "adding segment fans");
    }
    auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
      d.segment_added = std::max(d.segment_added, end);
      d.update_time_ms = ToMillis(clock_.Now());
      return absl::OkStatus();
    });
    if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  }
  if (!last) {
    co_return JobResult::OkThen(NextStep(ctx, kSegmentAddJob, s.index + 1, absl::ZeroDuration()));
  }
  co_await DropSegmentScan(ctx);
  co_return JobResult::OkThen(AfterSegment(ctx));
}

asio::awaitable<JobResult> DeliveryWorkflow::UploadMedia(Context& ctx) {
  const StepPayload& s = ctx.step;
  const auto& media = ctx.campaign.content.media;
  const int32_t i = s.index;
  if (ctx.delivery.upstream_message_id != 0) co_return JobResult::OkThen(FollowStep(ctx));
  if (i < 0 || i >= static_cast<int32_t>(media.size())) {
    co_return JobResult::OkThen(NextStep(ctx, kSendJob, 0, absl::ZeroDuration()));
  }
  auto next = [&] {
    return i + 1 < static_cast<int32_t>(media.size())
               ? NextStep(ctx, kUploadMediaJob, i + 1, absl::ZeroDuration())
               : NextStep(ctx, kSendJob, 0, absl::ZeroDuration());
  };
  if (static_cast<int32_t>(ctx.delivery.upstream_media.size()) > i &&
      !ctx.delivery.upstream_media[i].empty()) {
    co_return JobResult::OkThen(next());  // uploaded by an attempt whose ack was lost
  }

  // Read with the job's records when its payload names this asset; on its own otherwise.
  absl::StatusOr<store::MediaAsset> asset =
      absl::NotFoundError(StrCat("media asset '", media[i], "' not found"));
  if (s.media == media[i]) {
    if (ctx.read_media) asset = *std::move(ctx.read_media);
  } else {
    asset = co_await store_.Get<store::MediaAsset>(s.tenant, media[i]);
  }
  if (!asset.ok()) {
    if (absl::IsNotFound(asset.status())) {
      co_return co_await FailDelivery(ctx, StrCat("media asset '", media[i], "' was deleted"));
    }
    co_return JobResult::StoreFailed(asset.status());
  }

  if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
  upstream::Result<upstream::UploadedMedia> uploaded;
  if (!asset->source_url.empty()) {
    uploaded = co_await ctx.api->UploadMediaFromUrl(s.account, asset->source_url);
  } else {
    auto bytes = co_await store_.GetMediaBytes(s.tenant, asset->id);
    if (!bytes.ok()) co_return JobResult::StoreFailed(bytes.status());
    if (!*bytes) {
      co_return co_await FailDelivery(
          ctx, StrCat("the bytes of media asset '", asset->id, "' are gone"));
    }
    upstream::MediaFile file{.file_name = asset->file_name,
                             .content_type = asset->content_type,
                             .data = **std::move(bytes)};
    uploaded = co_await ctx.api->UploadMediaFile(s.account, std::move(file));
  }
  if (!uploaded.ok()) {
    co_return co_await OnUpstreamError(ctx, uploaded.status(),
                                       StrCat("uploading media asset '", asset->id, "'"));
  }
  // One write per upload, after it: the delivery shows UPLOADING_MEDIA from its first uploaded
  // asset until the send starts.
  const std::string media_id = uploaded.value->prefixed_id;
  auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
    if (d.state == DeliveryState::kPending || d.state == DeliveryState::kBuildingList) {
      d.state = DeliveryState::kUploadingMedia;
    }
    if (static_cast<int32_t>(d.upstream_media.size()) <= i) d.upstream_media.resize(i + 1);
    d.upstream_media[i] = media_id;
    d.update_time_ms = ToMillis(clock_.Now());
    return absl::OkStatus();
  });
  if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  co_return JobResult::OkThen(next());
}

store::AttemptContent DeliveryWorkflow::AttemptedContent(const Context& ctx) {
  // The campaign's content may have changed since the attempt: what it sent is on record.
  if (!ctx.delivery.attempt_content.text_sha256.empty()) return ctx.delivery.attempt_content;
  return ContentOf(ctx.campaign);
}

asio::awaitable<absl::StatusOr<std::optional<int64_t>>> DeliveryWorkflow::Reconcile(Context& ctx) {
  const store::AttemptContent want = AttemptedContent(ctx);
  const absl::Time since = absl::FromUnixMillis(ctx.delivery.send_started_ms) - config_.clock_skew;
  upstream::DateRangeQuery query{
      .start = since, .end = clock_.Now() + config_.clock_skew, .limit = 100};
  std::vector<std::pair<std::string, int64_t>> matches;  // (date, id), oldest first below
  absl::flat_hash_set<int64_t> seen;
  for (int page = 0; page < 20; ++page) {
    HERALD_CO_RETURN_IF_ERROR(co_await Pace(ctx));
    auto overview = co_await ctx.api->GetMassMessageOverview(ctx.step.account, query);
    if (!overview.ok()) co_return overview.status();
    bool fresh = false;  // a message not on an earlier page
    for (const upstream::MassMessageStats& m : overview.value->items) {
      if (!seen.insert(m.id).second) continue;
      fresh = true;
      if (!m.is_canceled &&
          Matches(want, m.raw_text.empty() ? m.text : m.raw_text, m.is_free, m.media_count)) {
        matches.emplace_back(m.date, m.id);
      }
    }
    if (!overview.value->has_more || !fresh) break;
    absl::Time oldest;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, overview.value->items.back().date, &oldest, &err)) {
      break;
    }
    // endDate is the cursor and dates have whole seconds: the next page ends a second after the
    // oldest date seen, so the messages of that second that did not fit on this page come on
    // the next whether the upstream counts endDate in or out (those seen are skipped by id).
    // Only a second holding more messages than a page could still hide some.
    query.end = oldest + absl::Seconds(1);
  }
  if (ctx.delivery.send_scheduled_ms != 0) {
    // Sent for a later time: the upstream may still hold it, out of the overview.
    const absl::Time scheduled = absl::FromUnixMillis(ctx.delivery.send_scheduled_ms);
    HERALD_CO_RETURN_IF_ERROR(co_await FindScheduled(ctx, scheduled, matches));
  }
  // The oldest match that no other delivery has adopted: Herald's own earlier attempt.
  std::sort(matches.begin(), matches.end());
  for (const auto& [date, id] : matches) {
    auto claimed = co_await store_.records().Get(AdoptedMessages(ctx.step.tenant, ctx.step.account),
                                                 std::to_string(id));
    if (!claimed.ok()) co_return claimed.status();
    if (!*claimed || **claimed == ctx.step.campaign) co_return std::optional<int64_t>(id);
  }
  co_return std::optional<int64_t>();
}

asio::awaitable<absl::Status> DeliveryWorkflow::FindScheduled(
    Context& ctx, absl::Time scheduled, std::vector<std::pair<std::string, int64_t>>& matches) {
  const store::AttemptContent want = AttemptedContent(ctx);
  HERALD_CO_RETURN_IF_ERROR(co_await Pace(ctx));
  auto queue = co_await ctx.api->ListMassMessageQueue(ctx.step.account);
  if (!queue.ok()) co_return queue.status();
  for (const upstream::QueueItem& item : *queue.value) {
    // Its date is the scheduledDate it was sent with, to the second.
    absl::Time date;
    std::string err;
    if (item.is_canceled || !absl::ParseTime(absl::RFC3339_full, item.date, &date, &err) ||
        absl::ToUnixSeconds(date) != absl::ToUnixSeconds(scheduled)) {
      continue;
    }
    const bool known = std::any_of(matches.begin(), matches.end(),
                                   [&](const auto& m) { return m.second == item.id; });
    if (known) continue;
    // The queue's items carry no text: the message itself does.
    HERALD_CO_RETURN_IF_ERROR(co_await Pace(ctx));
    auto detail = co_await ctx.api->GetMassMessage(ctx.step.account, item.id);
    if (!detail.ok()) {
      const auto error = detail.error();
      if (upstream::IsNotFoundInAccount(error)) continue;  // deleted meanwhile
      co_return detail.status();
    }
    const upstream::QueueDetail& m = detail.value->queue;
    if (!m.is_canceled && Matches(want, m.text, m.is_free, /*media_count=*/-1)) {
      matches.emplace_back(item.date, item.id);
    }
  }
  co_return absl::OkStatus();
}

// Claims the message for this campaign (Reconcile reads the claims) and records it on the
// delivery in one atomic step, then reads the campaign's head in the same round trip: a cancel may
// have come while the send was in flight.
asio::awaitable<absl::StatusOr<std::optional<store::Campaign>>> DeliveryWorkflow::Adopt(
    Context& ctx, int64_t id, int64_t total, int64_t pending, bool scheduled) {
  using Head = std::optional<store::Campaign>;
  const StepPayload& s = ctx.step;
  store::UpdateExtras extras;
  extras.rows.push_back({.table = AdoptedMessages(s.tenant, s.account),
                         .documents = {{std::to_string(id), s.campaign}}});
  extras.reads.push_back(store::Store::LookupOf<store::Campaign>(s.tenant, {s.campaign}));
  std::function<absl::Status(Delivery&)> sent = [&](Delivery& d) {
    d.upstream_message_id = id;
    d.state = scheduled ? DeliveryState::kScheduledUpstream : DeliveryState::kSent;
    // The generation whose content the message carries: this job's, or an earlier attempt's.
    d.upstream_generation = d.send_attempts > 0 && d.attempt_content.generation > 0
                                ? d.attempt_content.generation
                                : ctx.step.generation;
    d.recipients = total;
    d.recipients_pending = pending;
    d.upstream_media.clear();  // consumed by the message
    d.error.clear();
    d.update_time_ms = ToMillis(clock_.Now());
    return absl::OkStatus();
  };
  HERALD_CO_ASSIGN_OR_RETURN(store::DeliveryUpdate updated,
                             co_await UpdateDelivery(ctx, std::move(sent), std::move(extras)));
  HERALD_CO_ASSIGN_OR_RETURN(std::vector<Head> heads,
                             store::Store::DecodeMany<store::Campaign>(updated.reads.at(0)));
  co_return heads.empty() ? Head() : std::move(heads[0]);
}

asio::awaitable<JobResult> DeliveryWorkflow::EndMissed(Context& ctx) {
  if (!NeverAttempted(ctx.delivery)) co_return JobResult::Ok();
  auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
    if (!NeverAttempted(d)) return absl::OkStatus();
    d.state = DeliveryState::kFailed;
    d.error = ctx.campaign.phase_reason;
    d.update_time_ms = ToMillis(clock_.Now());
    return absl::OkStatus();
  });
  if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  if (!store::IsFinal(ctx.delivery.state)) co_return JobResult::Ok();
  if (auto next = co_await ClearUnsent(ctx)) co_return JobResult::OkThen(*next);
  co_return JobResult::Ok();
}

asio::awaitable<JobResult> DeliveryWorkflow::CancelUnsent(Context& ctx) {
  // The attempt is recorded before the call: without one, nothing can have been sent.
  if (ctx.delivery.send_attempts > 0 && !LatestKnownUnsent(ctx.delivery)) {
    if (auto stop = co_await LoadAccount(ctx)) co_return *std::move(stop);
    auto found = co_await Reconcile(ctx);
    if (auto stop = PaceStop(found.status())) co_return *std::move(stop);
    if (!found.ok()) {
      co_return co_await OnLookupError(
          ctx, found.status(), "looking for the message of an earlier attempt to take it back",
          absl::FromUnixMillis(ctx.delivery.send_started_ms));
    }
    if (found->has_value()) {
      log::Info(
          "adopted the upstream message of an earlier send attempt to take it back",
          {{"campaign", ctx.step.campaign}, {"account", ctx.step.account}, {"message", **found}});
      auto adopted = co_await Adopt(ctx, **found, 0, 0);
      if (!adopted.ok()) co_return JobResult::StoreFailed(adopted.status());
      auto r = co_await UpdateDelivery(ctx, [](Delivery& d) {
        d.cancel_outcome = std::string(kUnsendPending);
        return absl::OkStatus();
      });
      if (!r.ok()) co_return JobResult::StoreFailed(r.status());
      co_return JobResult::OkThen(UnsendStep(ctx.campaign, ctx.account, config_.attempts));
    }
    // "Nothing sent" only once the attempt can no longer land.
    if (auto later = WhileInDoubt(ctx)) co_return *std::move(later);
  }
  co_return co_await SettleUnsent(ctx);
}

asio::awaitable<JobResult> DeliveryWorkflow::SettleUnsent(Context& ctx) {
  auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
    if (!store::IsFinal(d.state) && d.upstream_message_id == 0) {
      d.state = DeliveryState::kCancelled;
      d.cancel_outcome = "nothing sent";
      d.error.clear();
      d.update_time_ms = ToMillis(clock_.Now());
    }
    return absl::OkStatus();
  });
  if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  ctx.delivery = *std::move(r);
  if (ctx.delivery.state != DeliveryState::kCancelled) co_return JobResult::Ok();
  if (auto next = co_await ClearUnsent(ctx)) co_return JobResult::OkThen(*next);
  co_return JobResult::Ok();
}

asio::awaitable<JobResult> DeliveryWorkflow::Send(Context& ctx) {
  const StepPayload& s = ctx.step;
  const store::MessageContent& content = ctx.campaign.content;
  if (ctx.delivery.upstream_message_id != 0) co_return JobResult::OkThen(FollowStep(ctx));

  // An earlier attempt may have created the message: look before sending again. The attempt
  // is recorded before the call, so without one nothing was sent (a lease lost before it).
  bool looked_in_vain = false;
  if (ctx.delivery.send_attempts > 0 && !LatestKnownUnsent(ctx.delivery)) {
    auto found = co_await Reconcile(ctx);
    if (auto stop = PaceStop(found.status())) co_return *std::move(stop);
    if (!found.ok()) {
      co_return co_await OnLookupError(ctx, found.status(),
                                       "looking for the message of an earlier attempt",
                                       absl::FromUnixMillis(ctx.delivery.send_started_ms));
    }
    if (found->has_value()) {
      log::Info("adopted the upstream message of an earlier send attempt",
                {{"campaign", s.campaign}, {"account", s.account}, {"message", **found}});
      const bool held = ctx.delivery.send_scheduled_ms > ToMillis(clock_.Now());
      auto adopted = co_await Adopt(ctx, **found, 0, 0, held);
      if (!adopted.ok()) co_return JobResult::StoreFailed(adopted.status());
      if (auto unsend = co_await UnsendIfCancelled(ctx, *adopted)) co_return *std::move(unsend);
      const int32_t sent_generation = AttemptedContent(ctx).generation;
      if (held && *adopted && (*adopted)->generation != sent_generation) {
        // Updated since that attempt: the held message gets the update.
        co_return JobResult::OkThen(
            UpdateStep(**adopted, ctx.account, config_.attempts, /*after_send=*/true));
      }
      FollowGeneration(ctx, *adopted);
      if (held) co_return JobResult::OkThen(FollowStep(ctx));
      co_return JobResult::OkThen(NextStep(ctx, kPollJob, 1, absl::ZeroDuration()));
    }
    if (auto later = WhileInDoubt(ctx)) co_return *std::move(later);
    looked_in_vain = true;
  }
  if (ctx.delivery.send_attempts > 0) {
    // Nothing went out (a 402 or 401 refused the send, say): the attempt may have been held
    // by a pause past the grace period as well as a delivery that never tried.
    if (auto stop = co_await FailIfMissed(ctx, /*unsent=*/true)) co_return *std::move(stop);
  }
  // Find this account's target.
  const store::AccountTarget* target_ptr = ctx.target ? &*ctx.target : nullptr;
  if (target_ptr == nullptr) {
    co_return co_await FailDelivery(ctx, "the account is no longer a target of the campaign");
  }
  if (ctx.delivery.upstream_media.size() < content.media.size() ||
      std::any_of(ctx.delivery.upstream_media.begin(), ctx.delivery.upstream_media.end(),
                  [](const std::string& m) { return m.empty(); })) {
    // Media ids are single-use: a send that consumed them needs fresh uploads.
    co_return JobResult::OkThen(UploadAgain(ctx));
  }
  upstream::MassMessage message{.text = content.text,
                                .user_lists = target_ptr->user_lists,
                                .user_ids = target_ptr->fan_ids,
                                .excluded_lists = target_ptr->excluded_lists,
                                .price_cents = content.price_cents,
                                .media_files = ctx.delivery.upstream_media,
                                .locked_text = content.locked_text};
  if (!ctx.delivery.segment_list_id.empty())
    message.user_lists.push_back(ctx.delivery.segment_list_id);
  for (const std::string& preview : content.previews) {
    auto pos = std::find(content.media.begin(), content.media.end(), preview);
    if (pos != content.media.end()) {
      message.previews.push_back(ctx.delivery.upstream_media[pos - content.media.begin()]);
    }
  }

  // Ahead of the send time (an upstream lead), the upstream holds the message until then.
  const absl::Time started = clock_.Now();
  const absl::Time due = absl::FromUnixMillis(ctx.campaign.send_time_ms);
  const bool scheduled = ctx.campaign.upstream_lead_ms > 0 && ctx.campaign.send_time_ms > 0 &&
                         due - started >= absl::Seconds(1);
  if (scheduled) message.scheduled_at = due;

  // The call's token first: a job put back to wait for one leaves no attempt on record.
  if (auto stop = co_await PaceStep(ctx)) {
    // A lookup that found nothing is kept: the job that waits for the token sends without
    // paying for it again, as a slowly paced account could not (its token for the lookup and
    // the next for the send would never come in one job).
    if (looked_in_vain) {
      const int32_t attempts = ctx.delivery.send_attempts;
      auto kept = co_await UpdateDelivery(ctx, [&](Delivery& d) {
        if (d.send_attempts == attempts) d.send_unsent_attempt = attempts;
        return absl::OkStatus();
      });
      if (!kept.ok()) co_return JobResult::StoreFailed(kept.status());
    }
    co_return *std::move(stop);
  }
  // Record the attempt before making it, so a crash mid-call leaves a trace to reconcile from,
  // and read the campaign back in the same step. A delivery a cancel settled since this job read
  // it stays settled: the cancel told its caller nothing was sent.
  const Delivery unmarked = ctx.delivery;
  bool settled = false;
  std::function<absl::Status(Delivery&)> mark = [&](Delivery& d) {
    settled = store::IsFinal(d.state);
    if (settled) return absl::OkStatus();
    d.state = DeliveryState::kSending;
    d.attempt_content = ContentOf(ctx.campaign);
    ++d.send_attempts;
    d.send_started_ms = ToMillis(started);
    d.send_scheduled_ms = scheduled ? ctx.campaign.send_time_ms : 0;
    // In doubt until the call's end is known: a worker that dies mid-call never says.
    d.send_in_doubt_until_ms = ToMillis(started + config_.send_settle);
    d.update_time_ms = ToMillis(started);
    return absl::OkStatus();
  };
  store::UpdateExtras head;
  head.reads.push_back(store::Store::LookupOf<store::Campaign>(s.tenant, {s.campaign}));
  auto marked = co_await UpdateDelivery(ctx, std::move(mark), std::move(head));
  if (!marked.ok()) co_return JobResult::StoreFailed(marked.status());
  if (settled) co_return JobResult::Ok();
  const std::optional<store::Campaign> read_back = CampaignReadBack(marked->reads);
  const bool moved_on = read_back && read_back->generation != s.generation;
  const bool stopped = read_back && (read_back->phase == store::CampaignPhase::kCancelled ||
                                     read_back->phase == store::CampaignPhase::kPaused);
  if (moved_on || stopped) {
    // Rescheduled or updated since this job read the campaign: a chain of the new generation
    // may be under way, and must not find this attempt in flight beside its own. Or cancelled
    // or paused meanwhile (while this job looked for an earlier attempt's message, say): the
    // cancel or pause left a sending delivery to this step, which must not send now. Either
    // way the attempt is taken back before anything is sent.
    const int32_t attempts = ctx.delivery.send_attempts;
    std::function<absl::Status(Delivery&)> take_back = [&](Delivery& d) {
      if (d.state == DeliveryState::kSending && d.send_attempts == attempts &&
          d.send_started_ms == ToMillis(started)) {
        d.state = unmarked.state;
        d.send_attempts = unmarked.send_attempts;
        d.send_started_ms = unmarked.send_started_ms;
        d.send_scheduled_ms = unmarked.send_scheduled_ms;
        d.send_in_doubt_until_ms = unmarked.send_in_doubt_until_ms;
        d.send_unsent_attempt = unmarked.send_unsent_attempt;
        d.attempt_content = unmarked.attempt_content;
        d.update_time_ms = ToMillis(clock_.Now());
      }
      return absl::OkStatus();
    };
    // The campaign is read again with the take-back: a resume between the two started no chain
    // for the delivery (it was sending then), so this step hands it over.
    store::UpdateExtras again;
    again.reads.push_back(store::Store::LookupOf<store::Campaign>(s.tenant, {s.campaign}));
    auto r = co_await UpdateDelivery(ctx, std::move(take_back), std::move(again));
    if (!r.ok()) co_return JobResult::StoreFailed(r.status());
    const std::optional<store::Campaign> latest = CampaignReadBack(r->reads);
    const int32_t generation = latest ? latest->generation : read_back->generation;
    if (generation != s.generation) {
      ctx.campaign.generation = generation;
      co_return JobResult::OkThen(HandOver(ctx));
    }
    ctx.campaign.phase = read_back->phase;
    if (read_back->phase == store::CampaignPhase::kCancelled) co_return co_await CancelUnsent(ctx);
    if (HoldsSendingDelivery(ctx)) {
      // An earlier attempt's outcome is still unknown: as in Run's paused case, the step waits
      // until the resumed generation takes the delivery over.
      co_return JobResult::OkThen(
          NextStep(ctx, kSendJob, LookupRound(ctx.campaign, clock_.Now()), config_.lookup_retry));
    }
    co_return JobResult::Ok();  // ResumeCampaign enqueues the delivery's step again
  }

  auto sent = co_await ctx.api->SendMassMessage(s.account, std::move(message));
  if (!sent.ok()) {
    const auto error = sent.error();
    if (error && error->kind == upstream::ErrorKind::kTerminal &&
        (error->code == "media_already_used" || error->code == "media_not_found")) {
      // The ids were spent (or expired): upload fresh ones and send again, as long as the
      // delivery has send attempts left (each upload costs the team credits).
      const int send_attempts = config_.attempts.For(kSendJob);
      if (ctx.delivery.send_attempts >= send_attempts) {
        std::string reason = StrCat("sending the mass message: ", sent.status().message(),
                                    "; the upstream refused the media as spent on send attempt ",
                                    ctx.delivery.send_attempts, " of ", send_attempts,
                                    ", so it is not uploaded again");
        co_return co_await FailDelivery(ctx, std::move(reason));
      }
      auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
        d.upstream_media.clear();
        // Refused (a 422): nothing was made, and the next attempt need not look.
        d.send_in_doubt_until_ms = 0;
        d.send_unsent_attempt = d.send_attempts;
        return absl::OkStatus();
      });
      if (!r.ok()) co_return JobResult::StoreFailed(r.status());
      co_return JobResult::OkThen(UploadAgain(ctx));
    }
    // A 500 is the upstream failing somewhere in the call, perhaps after it made the message:
    // as with a lost answer, the message is looked for before anything else.
    if (!error || error->kind == upstream::ErrorKind::kUnknownOutcome ||
        error->http_status == 500) {
      // The upstream ended the exchange (an answer, a reset): whatever it did is done, and a
      // lookup that finds nothing may take it for unsent at once. Or Herald stopped waiting: the
      // request may land for a while yet.
      const int64_t in_doubt_until =
          MayStillLand(sent.status()) ? ToMillis(clock_.Now() + config_.send_settle) : 0;
      const int32_t attempts = ctx.delivery.send_attempts;
      // A call cancelled at the drain deadline gets here with the job cancelled, when any
      // co_await would throw: this write must land all the same, or the attempt would be in
      // doubt only for send_settle after it began. Then the job ends (the worker puts it back
      // flagged outcome unknown).
      const bool throws = co_await asio::this_coro::throw_if_cancelled();
      co_await asio::this_coro::throw_if_cancelled(false);
      auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
        if (d.send_attempts == attempts && d.send_started_ms == ToMillis(started)) {
          d.send_in_doubt_until_ms = in_doubt_until;
        }
        return absl::OkStatus();
      });
      co_await asio::this_coro::throw_if_cancelled(throws);
      if (!r.ok()) co_return JobResult::StoreFailed(r.status(), /*outcome_unknown=*/true);
      const asio::cancellation_state cancellation = co_await asio::this_coro::cancellation_state;
      if (cancellation.cancelled() != asio::cancellation_type::none) {
        co_return JobResult::Retry("sending the mass message: the job was stopped");
      }
      co_return co_await OnLookupError(ctx, sent.status(), "sending the mass message", started);
    }
    // Refused, so nothing was sent: the delivery leaves SENDING and waits (for a retry, or for
    // its team to be resumed) as one a cancel can settle at once. The attempt stays on record.
    const int32_t attempts = ctx.delivery.send_attempts;  // the marked delivery's
    // A 4xx (a limit, credits, the key, the request itself) is refused before anything is made;
    // a 5xx may not be, so the next attempt still looks.
    const bool refused_outright = error && error->kind != upstream::ErrorKind::kRetryable;
    std::function<absl::Status(Delivery&)> unmark = [&](Delivery& d) {
      if (d.state == DeliveryState::kSending && d.send_attempts == attempts &&
          d.send_started_ms == ToMillis(started)) {
        d.state = unmarked.state;
        d.send_in_doubt_until_ms = 0;
        if (refused_outright) d.send_unsent_attempt = attempts;
        d.update_time_ms = ToMillis(clock_.Now());
      }
      return absl::OkStatus();
    };
    store::UpdateExtras head_after;
    head_after.reads.push_back(store::Store::LookupOf<store::Campaign>(s.tenant, {s.campaign}));
    auto r = co_await UpdateDelivery(ctx, std::move(unmark), std::move(head_after));
    if (!r.ok()) co_return JobResult::StoreFailed(r.status());
    JobResult result = co_await OnUpstreamError(ctx, sent.status(), "sending the mass message");
    const std::optional<store::Campaign> refused_after = CampaignReadBack(r->reads);
    if (!store::IsFinal(ctx.delivery.state) && refused_after &&
        refused_after->phase == store::CampaignPhase::kCancelled) {
      // Cancelled while the refused call was out, and the cancel left the sending delivery to
      // this step. Refused outright (402, 401, a 4xx), nothing went out: this attempt made
      // nothing, and every earlier one was looked for and found unsent before it was made. The
      // delivery is settled as the cancel asked, whatever the refusal (a paused team) holds back.
      // A 429 first lets its Retry-After hold the team (the next run settles it without looking);
      // after a 5xx the message is looked for first.
      if (!refused_outright) co_return co_await CancelUnsent(ctx);
      if (error->kind != upstream::ErrorKind::kRateLimited) co_return co_await SettleUnsent(ctx);
    }
    if (!store::IsFinal(ctx.delivery.state) && refused_after &&
        refused_after->generation != s.generation) {
      // Rescheduled, updated or resumed while the call was out: the new generation started no
      // chain for the delivery, which was sending, and this job's retry would find itself
      // stale and end. The delivery is handed over instead (what OnUpstreamError did for the
      // refusal, a paused team say, stays done; the handed-over step meets the limits anew).
      ctx.campaign.generation = refused_after->generation;
      co_return JobResult::OkThen(HandOver(ctx));
    }
    co_return result;
  }
  auto now_campaign =
      co_await Adopt(ctx, sent.value->id, sent.value->total, sent.value->pending, scheduled);
  if (!now_campaign.ok()) {
    // The message exists: the next attempt reconciles and adopts it.
    co_return JobResult::StoreFailed(now_campaign.status(), /*outcome_unknown=*/true);
  }
  if (auto unsend = co_await UnsendIfCancelled(ctx, *now_campaign)) co_return *std::move(unsend);
  // Updated while the send was in flight: the held message gets the update (which then follows
  // it) in the campaign's new generation, since the update's own job found nothing held.
  if (scheduled && *now_campaign && (*now_campaign)->generation != s.generation) {
    co_return JobResult::OkThen(
        UpdateStep(**now_campaign, ctx.account, config_.attempts, /*after_send=*/true));
  }
  FollowGeneration(ctx, *now_campaign);
  co_return JobResult::OkThen(FollowStep(ctx));
}

asio::awaitable<std::optional<JobResult>> DeliveryWorkflow::UnsendIfCancelled(
    Context& ctx, const std::optional<store::Campaign>& head) {
  // Cancelled while the send (or the lookup of an earlier one) was in flight: the cancel left
  // the sending delivery to this step, which takes the message back.
  if (!head || head->phase != store::CampaignPhase::kCancelled) co_return std::nullopt;
  auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
    d.cancel_outcome = std::string(kUnsendPending);
    d.update_time_ms = ToMillis(clock_.Now());
    return absl::OkStatus();
  });
  if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  co_return JobResult::OkThen(UnsendStep(*head, ctx.account, config_.attempts));
}

void DeliveryWorkflow::FollowGeneration(Context& ctx, const std::optional<store::Campaign>& head) {
  // Rescheduled, updated or resumed while this send was in flight: the new generation started
  // no chain for the delivery (Service::Redispatch and UpdateCampaign leave a send in flight
  // alone), so what follows the message is the new generation's.
  if (!head || head->generation == ctx.step.generation) return;
  ctx.step.generation = head->generation;
  ctx.campaign.send_time_ms = head->send_time_ms;
}

queue::JobSpec DeliveryWorkflow::HandOver(const Context& ctx) const {
  Context next{.job = ctx.job, .step = ctx.step, .campaign = ctx.campaign};
  next.step.generation = ctx.campaign.generation;
  return NextStep(next, kSendJob, 0, absl::ZeroDuration());
}

queue::JobSpec DeliveryWorkflow::UploadAgain(const Context& ctx) const {
  // The first uploads' step ids are taken (a used id is not enqueued again): this round's are
  // named by the send attempts so far, which each refusal of spent ids moves on. A retry of the
  // step that chains it, before another attempt, names the same round, so it is queued once.
  Context next{.job = ctx.job, .step = ctx.step, .campaign = ctx.campaign};
  next.step.round = ctx.delivery.send_attempts;
  return NextStep(next, kUploadMediaJob, 0, absl::ZeroDuration());
}

queue::JobSpec DeliveryWorkflow::FollowStep(const Context& ctx) const {
  absl::Duration delay = config_.poll_min;
  if (ctx.delivery.state == DeliveryState::kScheduledUpstream) {
    delay = std::max(delay, absl::FromUnixMillis(ctx.campaign.send_time_ms) - clock_.Now());
  }
  return NextStep(ctx, kPollJob, 1, delay);
}

asio::awaitable<std::optional<JobResult>> DeliveryWorkflow::FailIfMissed(Context& ctx,
                                                                         bool unsent) {
  // After a send attempt only a look at the upstream can tell that nothing went out.
  if (ctx.delivery.send_attempts > 0 && !unsent) co_return std::nullopt;
  const std::optional<absl::Duration> late = LateBeyondGrace(ctx.campaign, clock_.Now());
  if (!late) co_return std::nullopt;
  const std::string ago = absl::FormatDuration(absl::Trunc(*late, absl::Seconds(1)));
  // A campaign with an upstream lead dispatches with deliveries that never reached the upstream
  // before its send time; without one, a campaign past its grace period never dispatches.
  if (ctx.campaign.upstream_lead_ms > 0) {
    co_return co_await FailDelivery(
        ctx, StrCat("missed: its send time passed ", ago,
                    " ago, beyond the grace period, before it reached the upstream; nothing was "
                    "sent to this account"));
  }
  // A dispatched campaign's deliveries otherwise run as the rate limits allow, however long
  // after the send time that is. One held by a pause of its account or team that lasted past
  // the grace period is missed instead: the pause, not the pace, made it late.
  const int64_t deadline = ctx.campaign.send_time_ms + ctx.campaign.grace_period_ms;
  const auto span = [](const store::PauseWindow& p) {
    return p.end_ms == 0 ? StrCat("since ", UtcTime(p.start_ms))
                         : StrCat("from ", UtcTime(p.start_ms), " to ", UtcTime(p.end_ms));
  };
  std::string held;
  if (const store::PauseWindow* pause = PauseAcross(ctx.account.pauses, deadline)) {
    held = StrCat("its account was paused ", span(*pause));
  } else if (const store::PauseWindow* team_pause = PauseAcross(ctx.team.pauses, deadline)) {
    held = StrCat("its team '", ctx.team.id, "' was paused ", span(*team_pause));
  }
  if (held.empty()) co_return std::nullopt;
  co_return co_await FailDelivery(
      ctx, StrCat("missed: ", held, ", past the send time (", ago,
                  " ago) and its grace period; nothing was sent to this account"));
}

asio::awaitable<JobResult> DeliveryWorkflow::UpdateUpstream(Context& ctx) {
  const StepPayload& s = ctx.step;
  // A held message is followed from its (new) send time on, by this generation's poll.
  auto then = [&] {
    return ctx.delivery.state == DeliveryState::kScheduledUpstream
               ? JobResult::OkThen(FollowStep(ctx))
               : JobResult::Ok();
  };
  // A send under way enqueues its own update when it lands with older content; a delivery not
  // sent yet sends the new content.
  if (ctx.delivery.state != DeliveryState::kScheduledUpstream ||
      ctx.delivery.upstream_generation >= ctx.campaign.generation) {
    co_return then();
  }
  const store::MessageContent& content = ctx.campaign.content;
  upstream::MassMessageUpdate update{
      .text = content.text, .price_cents = content.price_cents, .locked_text = content.locked_text};
  // The send time moves with the campaign (to a moment ahead when it is now, as a scheduled
  // date must be); targets and media stay as they were sent (an update that would change them
  // is refused while a message is held).
  update.scheduled_at =
      std::max(absl::FromUnixMillis(ctx.campaign.send_time_ms), clock_.Now() + absl::Seconds(1));
  if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
  auto put = co_await ctx.api->UpdateMassMessage(s.account, ctx.delivery.upstream_message_id,
                                                 std::move(update));
  std::string error;
  if (!put.ok()) {
    const std::optional<upstream::UpstreamError> e = upstream::GetUpstreamError(put.status());
    const bool refused = e && e->kind == upstream::ErrorKind::kTerminal;
    const bool held_back = e && (e->kind == upstream::ErrorKind::kRateLimited ||
                                 e->kind == upstream::ErrorKind::kOutOfCredits ||
                                 e->kind == upstream::ErrorKind::kUnauthorized);
    if (held_back) co_return co_await OnUpstreamError(ctx, put.status(), "updating the message");
    if (!refused && !ctx.last_attempt) {
      // A PUT is idempotent: repeating one whose outcome is unknown is safe.
      co_return JobResult::Retry(StrCat("updating the message: ", put.status().message()),
                                 e && e->kind == upstream::ErrorKind::kUnknownOutcome);
    }
    // The message stays as it was sent; the delivery says so.
    error =
        StrCat("the upstream message kept its earlier content: ",
               refused ? "the upstream refused the update (" : "the update did not go through (",
               put.status().message(), ")");
  }
  const int32_t generation = ctx.campaign.generation;
  auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
    if (d.upstream_generation >= generation) return absl::OkStatus();
    d.upstream_generation = generation;
    d.error = error;
    d.update_time_ms = ToMillis(clock_.Now());
    return absl::OkStatus();
  });
  if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  co_return then();
}

asio::awaitable<JobResult> DeliveryWorkflow::Poll(Context& ctx) {
  const StepPayload& s = ctx.step;
  const int64_t id = ctx.delivery.upstream_message_id;
  if (id == 0) co_return JobResult::OkThen(NextStep(ctx, kSendJob, 0, absl::ZeroDuration()));
  const int32_t polls = s.index;
  const absl::Duration delay =
      std::min(config_.poll_max, config_.poll_min * (int64_t{1} << std::min(polls, 10)));
  // Held by the upstream until the send time, which an update may have moved later.
  const absl::Time now = clock_.Now();
  const absl::Time due = absl::FromUnixMillis(ctx.campaign.send_time_ms);
  const bool held = ctx.delivery.state == DeliveryState::kScheduledUpstream;
  if (held && now < due) co_return JobResult::OkThen(NextStep(ctx, kPollJob, polls + 1, due - now));
  // From the send time on, the upstream is delivering it.
  auto started = [&](Delivery& d) {
    if (d.state == DeliveryState::kScheduledUpstream) d.state = DeliveryState::kSent;
  };

  // The upstream's chat_queue events, when they arrive, say what a poll would.
  if (events_ != nullptr) {
    std::vector<webhooks::MessageKey> keys = {{s.account, id}};
    auto seen = co_await events_->Messages(s.tenant, std::move(keys));
    if (seen.ok() && !seen->empty() && (*seen)[0].total >= 0) {
      const webhooks::MessageStats e = (*seen)[0];
      // Only queue events count: purchases keep arriving after progress events stop.
      const bool fresh = clock_.Now() - absl::FromUnixMillis(e.progress_ms) < config_.poll_max;
      if (e.done || fresh) {
        ProgressSample before;
        auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
          before = ProgressOf(d);
          started(d);
          const int64_t pending_before = d.recipients_pending;
          d.recipients = e.total;
          d.recipients_pending = e.done ? 0 : e.pending;
          // A cancelled message keeps those it never reached as pending: the upstream's figure
          // when it gives one, else the last known (a cancelled queue may report none pending).
          if (e.canceled) d.recipients_pending = e.pending > 0 ? e.pending : pending_before;
          ClearProgressNote(d);
          if (e.done) {
            d.state = e.canceled ? DeliveryState::kCancelled : DeliveryState::kCompleted;
            if (e.canceled && d.cancel_outcome.empty()) {
              d.cancel_outcome = std::string(kUnsentElsewhere);
            }
          }
          d.update_time_ms = ToMillis(clock_.Now());
          return absl::OkStatus();
        });
        if (!r.ok()) co_return JobResult::StoreFailed(r.status());
        if (e.done) {
          // Unsent messages too: what fans bought before the unsend stands.
          if (auto next = AfterMessage(ctx)) co_return JobResult::OkThen(*next);
          co_return JobResult::Ok();
        }
        const absl::Duration wait = NextPollDelay(before, ProgressOf(*r), config_.poll_min, delay);
        co_return JobResult::OkThen(NextStep(ctx, kPollJob, polls + 1, wait));
      }
    }
  }

  if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
  auto queue = co_await ctx.api->ListMassMessageQueue(s.account);
  if (!queue.ok()) {
    co_return co_await OnFollowError(ctx, queue.status(), "reading the account's queue", delay);
  }
  std::optional<upstream::QueueItem> item;
  for (const upstream::QueueItem& q : *queue.value) {
    if (q.id == id) item = q;
  }
  bool done = false, canceled = false;
  std::optional<int64_t> delivered;  // read from the message itself when it left the queue
  if (item) {
    done = item->is_done || item->is_canceled;
    canceled = item->is_canceled;
  } else {
    // Gone from the queue (finished long ago): read it directly.
    if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
    auto detail = co_await ctx.api->GetMassMessage(s.account, id);
    if (!detail.ok()) {
      const auto error = detail.error();
      // The message is gone; an account the upstream no longer knows (disconnected, or moved
      // to another team) is a refused check like any other, and its message may well be out.
      if (upstream::IsNotFoundInAccount(error)) {
        co_return co_await FailDelivery(ctx,
                                        StrCat("the upstream no longer knows mass message ", id));
      }
      co_return co_await OnFollowError(ctx, detail.status(), "reading the mass message", delay);
    }
    done = true;
    canceled = detail.value->queue.is_canceled;
    delivered = detail.value->queue.sent_count;
  }
  ProgressSample before;
  auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
    before = ProgressOf(d);
    started(d);
    const int64_t pending_before = d.recipients_pending;
    if (item) {
      d.recipients = item->total;
      d.recipients_pending = item->pending;
    }
    if (done) d.recipients_pending = 0;
    if (canceled) {
      // Those it never reached stay pending (see Unsend): from the upstream's figures when it
      // gives them, else the last known (a cancelled queue may report none pending).
      if (delivered && d.recipients > 0) {
        d.recipients_pending = std::max<int64_t>(0, d.recipients - *delivered);
      } else if (item && item->pending > 0) {
        d.recipients_pending = item->pending;
      } else {
        d.recipients_pending = pending_before;
      }
    }
    if (done) {
      d.state = canceled ? DeliveryState::kCancelled : DeliveryState::kCompleted;
      if (canceled && d.cancel_outcome.empty()) d.cancel_outcome = std::string(kUnsentElsewhere);
    }
    d.polls = polls;
    ClearProgressNote(d);
    d.update_time_ms = ToMillis(clock_.Now());
    return absl::OkStatus();
  });
  if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  if (done) {
    // Unsent messages too: what fans bought before the unsend stands.
    if (auto next = AfterMessage(ctx)) co_return JobResult::OkThen(*next);
    co_return JobResult::Ok();
  }
  if (polls >= config_.max_polls) {
    co_return co_await FailDelivery(
        ctx, StrCat("the upstream has not finished delivering mass message ", id, " after ", polls,
                    " checks; it may still finish"));
  }
  // Back off while the upstream delivers, and check again once it should be done.
  const absl::Duration wait = NextPollDelay(before, ProgressOf(*r), config_.poll_min, delay);
  co_return JobResult::OkThen(NextStep(ctx, kPollJob, polls + 1, wait));
}

// Reconciliation jobs number their pages: index = round * kPagesPerRound + page.
constexpr int32_t kPagesPerRound = 10'000;
// A round that gives up (the upstream or Redis failing through all of a job's attempts) is left
// to the next round, which reads everything again. The last round has none after it: it is
// tried again up to this many times, numbered as rounds past the schedule.
constexpr int32_t kLastRoundRetries = 3;

// A reconciliation step's cursor is the upstream's next_page link, or (without one) the buyers
// list's marker, a number.
bool IsNextPageLink(std::string_view cursor) {
  return cursor.starts_with("http://") || cursor.starts_with("https://");
}

std::optional<queue::JobSpec> DeliveryWorkflow::FirstReconcile(const Context& ctx) const {
  if (events_ == nullptr || config_.reconcile_schedule.empty()) return std::nullopt;
  return NextStep(ctx, kReconcileJob, 0, config_.reconcile_schedule[0]);
}

std::optional<queue::JobSpec> DeliveryWorkflow::AfterMessage(const Context& ctx) const {
  if (auto first = FirstReconcile(ctx)) return first;
  return DropListStep(ctx);
}

std::optional<queue::JobSpec> DeliveryWorkflow::DropListStep(const Context& ctx) const {
  const bool listed =
      !ctx.delivery.segment_list_id.empty() || !ctx.delivery.segment_list_name.empty();
  if (!listed || config_.keep_segment_lists) return std::nullopt;
  return NextStep(ctx, kDropListJob, 0, absl::ZeroDuration());
}

asio::awaitable<std::optional<queue::JobSpec>> DeliveryWorkflow::ClearUnsent(const Context& ctx) {
  if (ctx.delivery.upstream_message_id != 0) co_return std::nullopt;
  // Whoever ended the delivery (this step, or the API while the step ran) may not have dropped
  // the scan: a step whose update found the delivery already ended drops nothing by itself.
  if (SegmentStep(ctx.job.kind) || ctx.delivery.segment_fans >= 0) co_await DropSegmentScan(ctx);
  co_return DropListStep(ctx);
}

asio::awaitable<JobResult> DeliveryWorkflow::DropSegmentList(Context& ctx) {
  const StepPayload& s = ctx.step;
  std::string list_id = ctx.delivery.segment_list_id;
  if (list_id.empty()) {
    // Asked for, and its answer never recorded (lost, or the delivery ended first): the list, if
    // the upstream made it, is found by its name.
    if (ctx.delivery.segment_list_name.empty()) co_return JobResult::Ok();
    std::function<asio::awaitable<absl::Status>()> pace = [&] { return Pace(ctx); };
    auto found = co_await FindUserListNamed(*ctx.api, s.account, ctx.delivery.segment_list_name,
                                            std::move(pace));
    if (auto stop = PaceStop(found.status())) co_return *std::move(stop);
    if (!found.ok()) {
      co_return co_await ListNotDropped(ctx, found.status(), "looking for the segment's list");
    }
    if (!found->has_value()) co_return JobResult::Ok();  // never made
    list_id = (*found)->id;
  }
  if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
  auto dropped = co_await ctx.api->DeleteUserList(s.account, list_id);
  if (dropped.ok()) co_return JobResult::Ok();
  co_return co_await ListNotDropped(ctx, dropped.status(), "deleting the segment's list");
}

asio::awaitable<JobResult> DeliveryWorkflow::ListNotDropped(Context& ctx,
                                                            const absl::Status& status,
                                                            std::string_view doing) {
  const auto error = upstream::GetUpstreamError(status);
  // Gone already (an earlier attempt deleted it and its answer was lost), or its account is.
  if (upstream::IsNotFoundInAccount(error)) co_return JobResult::Ok();
  if (error && (error->kind == upstream::ErrorKind::kRateLimited ||
                error->kind == upstream::ErrorKind::kOutOfCredits ||
                error->kind == upstream::ErrorKind::kUnauthorized)) {
    co_return co_await OnUpstreamError(ctx, status, doing);
  }
  if ((error && error->kind == upstream::ErrorKind::kTerminal) || ctx.last_attempt) {
    // Left where it is: the campaign is done with it either way.
    LogListLeft(ctx.step, ListNamed(ctx.delivery), status.ToString());
    co_return JobResult::Ok();
  }
  co_return JobResult::Retry(StrCat(doing, ": ", status.message()));
}

std::optional<queue::JobSpec> DeliveryWorkflow::NextRound(const Context& ctx, bool gave_up) const {
  const std::vector<absl::Duration>& schedule = config_.reconcile_schedule;
  if (events_ == nullptr || schedule.empty()) return std::nullopt;
  const int32_t rounds = static_cast<int32_t>(schedule.size());
  const int32_t next = ctx.step.index / kPagesPerRound + 1;
  if (next >= (gave_up ? rounds + kLastRoundRetries : rounds)) return std::nullopt;
  const absl::Duration delay = next < rounds ? schedule[next] : schedule.front();
  return NextStep(ctx, kReconcileJob, next * kPagesPerRound, delay);
}

asio::awaitable<JobResult> DeliveryWorkflow::ReconcileBuyers(Context& ctx) {
  const StepPayload& s = ctx.step;
  const int32_t page = s.index % kPagesPerRound;
  const int64_t id = ctx.delivery.upstream_message_id;
  // After the last round, the segment's list goes (if the delivery has one).
  auto then_next_round = [&](bool gave_up) {
    std::optional<queue::JobSpec> next = NextRound(ctx, gave_up);
    if (!next) next = DropListStep(ctx);
    return next ? JobResult::OkThen(*std::move(next)) : JobResult::Ok();
  };
  auto end_of_round = [&] { return then_next_round(/*gave_up=*/false); };
  auto gave_up = [&](const absl::Status& status) {
    log::Warn("reconciliation round gave up", {{"tenant", s.tenant},
                                               {"campaign", s.campaign},
                                               {"account", s.account},
                                               {"error", status}});
    return then_next_round(/*gave_up=*/true);
  };
  // A failed read never marks the delivery failed (it is done). Limits and credits are handled
  // as for every call; a message gone upstream ends the reconciliation, a refused read (an
  // account the upstream no longer knows among them) this round; anything else is retried, and once
  // the job's attempts are spent, gave_up decides.
  auto on_error = [&](const absl::Status& status,
                      std::string_view doing) -> std::optional<JobResult> {
    const auto error = upstream::GetUpstreamError(status);
    if (error && (error->kind == upstream::ErrorKind::kRateLimited ||
                  error->kind == upstream::ErrorKind::kOutOfCredits ||
                  error->kind == upstream::ErrorKind::kUnauthorized)) {
      return std::nullopt;  // OnUpstreamError decides
    }
    if (upstream::IsNotFoundInAccount(error)) {
      std::optional<queue::JobSpec> drop = DropListStep(ctx);  // nothing left to reconcile
      return drop ? JobResult::OkThen(*std::move(drop)) : JobResult::Ok();
    }
    const bool terminal = error && error->kind == upstream::ErrorKind::kTerminal;
    if (terminal) {
      log::Warn("reconciliation round ended: the upstream refused a read",
                {{"tenant", s.tenant}, {"campaign", s.campaign}, {"error", status}});
      return end_of_round();
    }
    if (!ctx.last_attempt) return JobResult::Retry(StrCat(doing, ": ", status.message()));
    return gave_up(status);
  };

  webhooks::MessageKey message{s.account, id};
  if (page == 0) {
    // Each round starts with the upstream's own figures of the message: fans reached (events
    // may have been lost) and views (no event reports them).
    if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
    auto detail = co_await ctx.api->GetMassMessage(s.account, id);
    if (!detail.ok()) {
      std::optional<JobResult> result = on_error(detail.status(), "reading the mass message");
      if (result) co_return *std::move(result);
      co_return co_await OnUpstreamError(ctx, detail.status(), "reading the mass message");
    }
    const upstream::QueueDetail& q = detail.value->queue;
    webhooks::MessageKey engaged = message;
    const int64_t now_ms = ToMillis(clock_.Now());
    absl::Status recorded = co_await events_->RecordEngagement(
        s.tenant, std::move(engaged), q.sent_count, q.viewed_count, now_ms);
    if (!recorded.ok()) {
      if (!ctx.last_attempt) co_return JobResult::StoreFailed(recorded);
      co_return gave_up(recorded);
    }
  }
  const int64_t price = ctx.campaign.content.price_cents;
  if (price <= 0) co_return end_of_round();  // nothing to buy

  // A later page follows the link the page before gave (_pagination.next_page, kept as the
  // step's cursor): a page may hold fewer buyers than asked, so only the upstream knows where
  // the list goes on. Without a link the cursor is the list's marker and the page goes on from
  // the buyers the pages before it held (by its index, for a payload from before that was kept).
  const bool linked = IsNextPageLink(s.cursor);
  const int64_t read_before = s.offset.value_or(page * config_.reconcile_page);
  if (auto stop = co_await PaceStep(ctx)) co_return *std::move(stop);
  upstream::Result<upstream::BuyersPage> buyers;
  if (linked) {
    std::string link = s.cursor;
    buyers = co_await ctx.api->NextMessageBuyers(std::move(link));
  } else {
    upstream::BuyersQuery query{
        .limit = config_.reconcile_page, .offset = read_before, .marker = s.cursor};
    buyers = co_await ctx.api->ListMessageBuyers(s.account, id, std::move(query));
  }
  if (!buyers.ok()) {
    std::optional<JobResult> result = on_error(buyers.status(), "reading the message's buyers");
    if (result) co_return *std::move(result);
    co_return co_await OnUpstreamError(ctx, buyers.status(), "reading the message's buyers");
  }
  std::vector<int64_t> fans;
  for (const upstream::Fan& f : buyers.value->buyers) fans.push_back(f.id);
  const int64_t fee = (price * config_.platform_fee_percent + 50) / 100;
  // Named, not braced temporaries inside the co_await: g++ 12 destroys those twice.
  const int64_t now_ms = ToMillis(clock_.Now());
  auto added = co_await events_->ReconcileBuyers(s.tenant, std::move(message), price, fee,
                                                 std::move(fans), now_ms);
  if (!added.ok()) {
    if (!ctx.last_attempt) co_return JobResult::StoreFailed(added.status());
    co_return gave_up(added.status());
  }
  if (*added > 0) {
    if (reconciled_ != nullptr) reconciled_->Increment(static_cast<double>(*added));
    log::Info("reconciliation found purchases whose webhooks never arrived",
              {{"tenant", s.tenant}, {"campaign", s.campaign}, {"added", *added}});
  }
  // The next page is the upstream's link, else (it says there is more but gives none) its
  // marker, if any. An empty page is the end unless the upstream points somewhere new.
  const upstream::BuyersPage& got = *buyers.value;
  std::string next = got.next_page.value_or(got.marker);
  const bool more = (got.next_page.has_value() || got.has_more) &&
                    (!got.buyers.empty() || (!next.empty() && next != s.cursor));
  if (more && page + 1 < kPagesPerRound) {
    // Without a link the next page goes on from the buyers read so far.
    const int64_t read = read_before + static_cast<int64_t>(got.buyers.size());
    co_return JobResult::OkThen(
        NextStep(ctx, kReconcileJob, s.index + 1, absl::ZeroDuration(), std::move(next), read));
  }
  co_return end_of_round();
}

asio::awaitable<JobResult> DeliveryWorkflow::OnUpstreamError(Context& ctx,
                                                             const absl::Status& error,
                                                             std::string_view doing) {
  const std::optional<upstream::UpstreamError> e = upstream::GetUpstreamError(error);
  const std::string reason = StrCat(doing, ": ", error.message());
  if (!e) {
    // Not Herald's upstream error (e.g. Redis failed): retry. No conditional expression around
    // the co_await: g++ 12 destroys its temporaries twice.
    if (ctx.last_attempt) co_return co_await FailDelivery(ctx, reason);
    co_return JobResult::Retry(reason);
  }
  switch (e->kind) {
    case upstream::ErrorKind::kRateLimited:
      co_return JobResult::RateLimited(e->retry_after);
    case upstream::ErrorKind::kOutOfCredits:
    case upstream::ErrorKind::kUnauthorized:
      if (auto held = co_await PauseTeamIfRefused(store_, queue_, clock_, ctx.step.tenant,
                                                  ctx.team.id, error)) {
        co_return *std::move(held);
      }
      co_return JobResult::Retry(reason);  // not reached: a 401 or 402 is always held
    case upstream::ErrorKind::kTerminal:
      co_return co_await FailDelivery(ctx, StrCat("the upstream refused ", reason));
    case upstream::ErrorKind::kRetryable:
      if (ctx.last_attempt) co_return co_await FailDelivery(ctx, reason);
      co_return JobResult::Retry(reason);
    case upstream::ErrorKind::kUnknownOutcome:
      if (ctx.last_attempt) {
        co_return co_await FailDelivery(
            ctx, StrCat(reason,
                        " (the outcome of the last attempt is unknown: check the "
                        "account's upstream queue)"));
      }
      co_return JobResult::Retry(reason, /*outcome_unknown=*/true);
  }
  co_return JobResult::Retry(reason);
}

asio::awaitable<JobResult> DeliveryWorkflow::OnFollowError(Context& ctx, const absl::Status& error,
                                                           std::string_view doing,
                                                           absl::Duration delay) {
  const std::optional<upstream::UpstreamError> e = upstream::GetUpstreamError(error);
  const bool held_back = e && (e->kind == upstream::ErrorKind::kRateLimited ||
                               e->kind == upstream::ErrorKind::kOutOfCredits ||
                               e->kind == upstream::ErrorKind::kUnauthorized);
  if (held_back || (upstream::IsTransient(e) && !ctx.last_attempt)) {
    co_return co_await OnUpstreamError(ctx, error, doing);
  }
  // Refused, or out of attempts: the message went out all the same, so the delivery is not
  // failed for want of its progress. The next check (or a webhook) reads it later.
  const int32_t polls = ctx.step.index;
  const int64_t id = ctx.delivery.upstream_message_id;
  if (polls >= config_.max_polls) {
    co_return co_await FailDelivery(
        ctx, StrCat(doing, ": ", error.message(), "; gave up following mass message ", id,
                    " after ", polls, " checks (it was sent, and may have finished)"));
  }
  const std::string reason =
      StrCat(kProgressNote, doing, ": ", error.message(), "; checking again in ",
             absl::FormatDuration(delay), " (mass message ", id, " was sent)");
  log::Warn("could not follow a sent mass message",
            {{"campaign", ctx.step.campaign}, {"account", ctx.step.account}, {"reason", reason}});
  auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
    // A lasting note (an update the upstream refused) outranks this passing one.
    if (d.error.empty() || d.error.starts_with(kProgressNote)) d.error = reason;
    d.update_time_ms = ToMillis(clock_.Now());
    return absl::OkStatus();
  });
  if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  co_return JobResult::OkThen(NextStep(ctx, kPollJob, polls + 1, delay));
}

asio::awaitable<JobResult> DeliveryWorkflow::OnLookupError(Context& ctx, const absl::Status& error,
                                                           std::string_view doing,
                                                           absl::Time attempted) {
  const std::optional<upstream::UpstreamError> e = upstream::GetUpstreamError(error);
  const absl::Time now = clock_.Now();
  if (!ctx.last_attempt || !upstream::IsTransient(e) ||
      now - attempted >= config_.lookup_patience) {
    co_return co_await OnUpstreamError(ctx, error, doing);
  }
  const std::string reason =
      StrCat(doing, ": ", error.message(), "; asking again in ",
             absl::FormatDuration(config_.lookup_retry), " (nothing is sent until it is known)");
  log::Warn("could not find out whether an earlier send attempt went through",
            {{"campaign", ctx.step.campaign}, {"account", ctx.step.account}, {"reason", reason}});
  auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
    d.error = reason;
    d.update_time_ms = ToMillis(now);
    return absl::OkStatus();
  });
  if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  // A send step whatever this job was: it looks before it sends, and a cancelled campaign's
  // step takes the message back instead.
  co_return JobResult::OkThen(
      NextStep(ctx, kSendJob, LookupRound(ctx.campaign, now), config_.lookup_retry));
}

std::optional<JobResult> DeliveryWorkflow::WhileInDoubt(const Context& ctx) const {
  const absl::Time now = clock_.Now();
  const absl::Time settles = absl::FromUnixMillis(ctx.delivery.send_in_doubt_until_ms);
  if (ctx.delivery.send_in_doubt_until_ms == 0 || now >= settles) return std::nullopt;
  // Each look comes after half the time since the attempt began: a message that lands late is
  // adopted soon after, and the looks stay few (about log2 of the settle time over a second).
  const absl::Duration since = now - absl::FromUnixMillis(ctx.delivery.send_started_ms);
  const absl::Duration wait = std::min(settles - now, std::max(absl::Seconds(1), since / 2));
  return JobResult::Later(
      StrCat("no message of the unanswered send attempt yet; it may still reach the upstream "
             "until ",
             absl::FormatTime("%H:%M:%S UTC", settles, absl::UTCTimeZone()),
             ", so nothing is sent again before then; looking again in ",
             absl::FormatDuration(absl::Ceil(wait, absl::Milliseconds(1)))),
      wait, /*outcome_unknown=*/true);
}

bool DeliveryWorkflow::HoldsSendingDelivery(const Context& ctx) {
  // The chain of a delivery whose send attempt is on record: the send itself (unanswered, or
  // to be looked up), or the re-upload after the upstream refused its spent media ids.
  return (ctx.job.kind == kSendJob || ctx.job.kind == kUploadMediaJob) &&
         ctx.delivery.state == DeliveryState::kSending;
}

int32_t DeliveryWorkflow::LookupRound(const store::Campaign& campaign, absl::Time now) const {
  // Only makes the step's job id new (ids are derived, and one already used is not enqueued
  // again): each round's step is created by a step that waited lookup_retry since the round
  // before, so counting lookup_retry periods on a fixed clock gives each its own index, and none
  // is the first send's 0. (Counted from the attempt instead, a round that sent again would
  // restart the count and reuse an index.)
  const absl::Duration since = now - absl::FromUnixMillis(campaign.create_time_ms);
  return static_cast<int32_t>(std::clamp<int64_t>(1 + since / config_.lookup_retry, 1,
                                                  std::numeric_limits<int32_t>::max()));
}

asio::awaitable<JobResult> DeliveryWorkflow::FailDelivery(Context& ctx, std::string reason) {
  const StepPayload& s = ctx.step;
  log::Warn("delivery failed",
            {{"campaign", s.campaign}, {"account", s.account}, {"reason", reason}});
  auto r = co_await UpdateDelivery(ctx, [&](Delivery& d) {
    if (store::IsFinal(d.state)) return absl::OkStatus();
    d.state = DeliveryState::kFailed;
    d.error = reason;
    d.update_time_ms = ToMillis(clock_.Now());
    return absl::OkStatus();
  });
  if (!r.ok()) co_return JobResult::StoreFailed(r.status());
  co_return JobResult::Fail(std::move(reason));
}

asio::awaitable<absl::StatusOr<PacedCall>> TakeTokenWithin(queue::Queue& queue, const Clock& clock,
                                                           std::string queue_team,
                                                           std::string queue_account,
                                                           absl::Duration max_wait) {
  const MonoTime deadline = clock.MonotonicAfter(max_wait);
  PacedCall out;
  while (true) {
    HERALD_CO_ASSIGN_OR_RETURN(absl::Duration wait,
                               co_await queue.TakeToken(queue_team, queue_account));
    if (wait == absl::ZeroDuration()) {
      out.taken = true;
      co_return out;
    }
    if (clock.Monotonic() + absl::ToChronoNanoseconds(wait) > deadline) {
      out.retry_in = wait;
      co_return out;
    }
    // Cut short (the job cancelled at a drain's deadline): the job goes back to the queue.
    if (!co_await clock.SleepFor(wait)) {
      out.retry_in = wait;
      co_return out;
    }
    out.waited += wait;
  }
}

asio::awaitable<absl::Status> DeliveryWorkflow::Pace(Context& ctx) {
  if (ctx.upstream_calls++ == 0) co_return absl::OkStatus();
  const absl::Duration wait_limit = PaceWaitLimit(ctx.account, ctx.team);
  absl::StatusOr<PacedCall> paced =
      co_await TakeTokenWithin(queue_, clock_, ctx.job.team, ctx.job.account, wait_limit);
  if (!paced.ok()) {
    // Paused meanwhile: the job waits in the queue for the resume, as its lease would have.
    if (absl::IsFailedPrecondition(paced.status())) co_return PaceStatus(paced.status());
    co_return paced.status();
  }
  if (!paced->taken) {
    co_return PaceStatus(
        absl::ResourceExhaustedError(StrCat("the account's or team's rate limit has no token for ",
                                            absl::FormatDuration(paced->retry_in))));
  }
  if (lifecycle_ != nullptr) lifecycle_->PaceWaited("worker", paced->waited);
  co_return absl::OkStatus();
}

asio::awaitable<std::optional<JobResult>> DeliveryWorkflow::PaceStep(Context& ctx) {
  absl::Status paced = co_await Pace(ctx);
  if (paced.ok()) co_return std::nullopt;
  if (auto stop = PaceStop(paced)) co_return stop;
  co_return JobResult::StoreFailed(paced);
}

asio::awaitable<std::optional<JobResult>> PauseTeamIfRefused(store::Store& store,
                                                             queue::Queue& queue,
                                                             const Clock& clock, std::string tenant,
                                                             std::string team,
                                                             const absl::Status& error) {
  const std::optional<upstream::UpstreamError> e = upstream::GetUpstreamError(error);
  if (!e || (e->kind != upstream::ErrorKind::kOutOfCredits &&
             e->kind != upstream::ErrorKind::kUnauthorized)) {
    co_return std::nullopt;
  }
  auto paused =
      co_await PauseTeamAfterUpstream(store, queue, clock, std::move(tenant), std::move(team), *e);
  if (!paused.ok()) co_return JobResult::StoreFailed(paused.status());
  if (!paused->has_value()) {
    co_return JobResult::Later(
        StrCat("the upstream refused (", upstream::ErrorKindName(e->kind),
               ") a call made before the team's last resume or key change; trying again"),
        kStaleRefusalRetry);
  }
  co_return JobResult::Release();
}

std::string UpstreamKeyId(const store::Team& team) {
  return store::Sha256Hex(team.sealed_api_key).substr(0, 16);
}

asio::awaitable<absl::StatusOr<std::optional<std::string>>> PauseTeamAfterUpstream(
    store::Store& store, queue::Queue& queue, const Clock& clock, std::string tenant,
    std::string team, const upstream::UpstreamError& error) {
  const upstream::ErrorKind kind = error.kind;
  std::string reason;
  if (kind == upstream::ErrorKind::kOutOfCredits) {
    reason = "the upstream team is out of credits (HTTP 402): top up its credits, then ResumeTeam";
  } else if (kind == upstream::ErrorKind::kUnauthorized) {
    reason =
        "the upstream refused the team's API key (HTTP 401): set a valid key with UpdateTeam, "
        "which resumes the team";
  } else {
    co_return absl::InvalidArgumentError(
        StrCat("a team is paused for 401 or 402 only, not ", upstream::ErrorKindName(kind)));
  }
  const int64_t asked = error.asked_at == absl::InfinitePast() ? std::numeric_limits<int64_t>::max()
                                                               : absl::ToUnixMillis(error.asked_at);
  bool stale = false;
  const int64_t now = absl::ToUnixMillis(clock.Now());
  auto r = co_await store.Update<store::Team>(tenant, team, [&](store::Team& t) {
    // Refused for a key since replaced, or before a pause that has ended since: the operator
    // has dealt with what the refusal is about.
    stale = (!error.key_id.empty() && error.key_id != UpstreamKeyId(t)) ||
            std::any_of(t.pauses.begin(), t.pauses.end(),
                        [asked](const store::PauseWindow& w) { return w.end_ms > asked; });
    if (stale) return absl::OkStatus();
    if (!t.paused) BeginPause(t.pauses, now);
    t.paused = true;
    // A team paused with PauseTeam says so until ResumeTeam; api_key_invalid tells of a 401.
    if (!t.paused_on_request) t.pause_reason = reason;
    if (kind == upstream::ErrorKind::kUnauthorized) t.api_key_invalid = true;
    return absl::OkStatus();
  });
  HERALD_CO_RETURN_IF_ERROR(r.status());
  if (stale) {
    log::Info("a refusal from before the team's last resume or key change pauses nothing",
              {{"tenant", tenant}, {"team", team}, {"refusal", upstream::ErrorKindName(kind)}});
    co_return std::nullopt;
  }
  log::Warn("pausing team", {{"tenant", tenant}, {"team", team}, {"reason", reason}});
  HERALD_CO_RETURN_IF_ERROR(co_await queue.PauseTeam(QueueTeam(tenant, team)));
  co_return reason;
}

}  // namespace herald::campaign
