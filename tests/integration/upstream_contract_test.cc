// Contract tests: Herald's typed upstream client (herald::upstream::Client) against the real
// upstream simulator binary over real sockets. Every endpoint the client has, error
// classification end to end (what the client refuses before sending and what the upstream
// refuses), limits and credits, and injected faults, with the simulator's ledger (/_sim/ledger)
// as ground truth.
#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <utility>

#include <absl/time/clock.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/net.h>
#include <herald/testing/run_sync.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/subprocess.h>
#include <herald/testing/wait.h>
#include <herald/upstream/client.h>
#include <herald/upstream/error.h>
#include <herald/upstream/types.h>

namespace herald::upstream {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kAccount[] = "acct_contract1";
constexpr char kKey[] = "key-alpha";
constexpr int64_t kCredits = 1'000'000;
constexpr int64_t kRateLimit = 100'000;

// Team "alpha" owns two accounts; kAccount has fans 1001..1040, list 900 holds the first three
// of them and list 901 the first 35. Team "beta" owns one account of its own.
std::string SeedJson() {
  std::vector<std::string> fans;
  std::vector<std::string> list_901;
  for (int id = 1001; id <= 1040; ++id) {
    fans.push_back(StrCat(id));
    if (id <= 1035) list_901.push_back(StrCat(id));
  }
  return StrCat(R"({"seed": 11, "teams": [
      {"id": "alpha", "api_keys": ["key-alpha"], "rate_limit_per_minute": )",
                kRateLimit, R"(, "credits": )", kCredits, R"(,
       "accounts": [
         {"id": "acct_contract1", "username": "contract_one", "display_name": "Contract One",
          "fans": [)",
                StrJoin(fans, ","), R"(],
          "lists": [{"id": 900, "name": "VIP", "users": [1001, 1002, 1003]},
                    {"id": 901, "name": "Big spenders", "users": [)",
                StrJoin(list_901, ","), R"(]}]},
         {"id": "acct_contract2", "username": "contract_two", "fans": 20}]},
      {"id": "beta", "api_keys": ["key-beta"], "accounts": [{"id": "acct_beta1", "fans": 3}]}]})");
}

// A JSON string's text; a marker for anything else, so comparisons fail legibly.
std::string Str(const json::value& v) {
  return v.is_string() ? std::string(v.get_string())
                       : StrCat("<not a string: ", json::serialize(v), ">");
}

using testing::RunSync;

// "YYYY-MM-DDTHH:MM:SS+00:00", the upstream's date format in responses.
std::string IsoDate(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%S+00:00", t, absl::UTCTimeZone());
}

// The limit and credit headers every authenticated response carries, success or failure; a
// success with the JSON envelope repeats them in `_meta`.
void ExpectLimitsReported(const ResponseInfo& info, int http_status, std::string_view what,
                          bool envelope = true) {
  SCOPED_TRACE(what);
  EXPECT_EQ(info.http_status, http_status);
  EXPECT_TRUE(info.rate_limit_minute.has_value());
  EXPECT_TRUE(info.rate_limit_remaining_minute.has_value());
  EXPECT_TRUE(info.credits_used.has_value());
  EXPECT_TRUE(info.credits_balance.has_value());
  if (http_status < 200 || http_status > 299) {
    EXPECT_EQ(info.credits_used, 0) << "failed calls are not charged";
    return;
  }
  if (!envelope) return;
  ASSERT_TRUE(info.meta.has_value());
  EXPECT_EQ(info.meta->credits_used, info.credits_used);
  EXPECT_EQ(info.meta->credits_balance, info.credits_balance);
  EXPECT_EQ(info.meta->rate_limit_minute, info.rate_limit_minute);
  EXPECT_EQ(info.meta->rate_limit_remaining_minute, info.rate_limit_remaining_minute);
}

// A classified upstream error: kind, absl code, HTTP status, the upstream's machine code, and
// its message quoted in the status.
template <typename T>
void ExpectUpstreamError(const Result<T>& r, ErrorKind kind, absl::StatusCode code, int http_status,
                         std::string_view upstream_code, std::string_view upstream_message) {
  ASSERT_FALSE(r.ok());
  ASSERT_TRUE(r.error().has_value()) << r.status();
  EXPECT_EQ(r.error()->kind, kind) << r.status();
  EXPECT_EQ(r.status().code(), code) << r.status();
  EXPECT_EQ(r.error()->http_status, http_status);
  EXPECT_EQ(r.error()->code, upstream_code);
  EXPECT_TRUE(r.error()->request_written);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(upstream_message));
}

// A validation error from the upstream (HTTP 422): terminal, with the upstream's message.
template <typename T>
void ExpectRejectedByUpstream(const Result<T>& r, std::string_view upstream_code,
                              std::string_view upstream_message) {
  ExpectUpstreamError(r, ErrorKind::kTerminal, absl::StatusCode::kInvalidArgument, 422,
                      upstream_code, upstream_message);
  ExpectLimitsReported(r.info, 422, upstream_code);
}

// A request the client refuses to send: terminal, kInvalidArgument, no HTTP exchange.
template <typename T>
void ExpectRefusedLocally(const Result<T>& r, std::string_view why) {
  ASSERT_FALSE(r.ok());
  ASSERT_TRUE(r.error().has_value()) << r.status();
  EXPECT_EQ(r.error()->kind, ErrorKind::kTerminal);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.error()->http_status, 0);
  EXPECT_FALSE(r.error()->request_written);
  EXPECT_EQ(r.info.http_status, 0);
  EXPECT_EQ(std::string(r.status().message()), StrCat("refusing to send: ", why));
}

// A transport failure after the whole request was written: the upstream may have acted.
template <typename T>
void ExpectUnknownOutcome(const Result<T>& r) {
  ASSERT_FALSE(r.ok());
  ASSERT_TRUE(r.error().has_value()) << r.status();
  EXPECT_EQ(r.error()->kind, ErrorKind::kUnknownOutcome) << r.status();
  EXPECT_EQ(r.error()->http_status, 0);
  EXPECT_TRUE(r.error()->request_written);
  EXPECT_EQ(r.info.http_status, 0);
}

class UpstreamContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string seed_path = testing::MakeTempDir("upstream-contract") + "/seed.json";
    std::ofstream(seed_path) << SeedJson();
    std::vector<std::string> args = {"--seed_file=" + seed_path, "--delivery_rate=100000",
                                     "--purchase_delay_min=0s", "--purchase_delay_max=0s",
                                     "--tick_interval=5ms"};
    args.insert(args.end(), extra_sim_args_.begin(), extra_sim_args_.end());
    auto sim = testing::SimulatorProcess::Start({.args = std::move(args)});
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = std::move(*sim);
    client_ = MakeClient(kKey);
    ASSERT_NE(client_, nullptr);
  }

  std::unique_ptr<Client> MakeClient(std::string api_key) {
    ClientConfig config;
    config.base_url = StrCat("http://127.0.0.1:", sim_->port());
    config.api_key = std::move(api_key);
    config.http.request_timeout = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Create(ioc_.get_executor(), std::move(config));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  template <typename T>
  Result<T> Run(asio::awaitable<Result<T>> op) {
    return RunSync(ioc_, std::move(op));
  }

  // A control endpoint of the simulator (/_sim/...), which must answer 200 with JSON.
  json::value Control(std::string_view method, std::string_view target,
                      std::string_view body = "") {
    auto res = testing::HttpRequest(sim_->port(), method, target, body,
                                    {{"Content-Type", "application/json"}});
    EXPECT_TRUE(res.ok()) << res.status();
    if (!res.ok()) return nullptr;
    EXPECT_EQ(res->status, 200) << target << ": " << res->body;
    return json::parse(res->body);
  }

  void Behave(std::string_view settings) { Control("POST", "/_sim/behavior", settings); }
  void AddFaults(std::string_view rules) { Control("POST", "/_sim/faults", rules); }
  void ClearFaults() { Control("DELETE", "/_sim/faults"); }

  // An API request sent as is, with the team's key, bypassing the client: status and body.
  std::pair<int, json::value> Raw(std::string_view method, std::string_view target,
                                  std::string_view body) {
    auto res = testing::HttpRequest(
        sim_->port(), method, target, body,
        {{"Authorization", StrCat("Bearer ", kKey)}, {"Content-Type", "application/json"}});
    EXPECT_TRUE(res.ok()) << res.status();
    if (!res.ok()) return {0, nullptr};
    boost::system::error_code ec;
    json::value v = json::parse(res->body, ec);
    EXPECT_FALSE(ec) << res->body;
    return {res->status, v};
  }

  // The simulator's answer to input the client refuses to send.
  void ExpectRawRejected(std::string_view target, std::string_view body, std::string_view code,
                         std::string_view message) {
    SCOPED_TRACE(body);
    auto [status, answer] = Raw("POST", target, body);
    EXPECT_EQ(status, 422);
    ASSERT_TRUE(answer.is_object());
    EXPECT_EQ(Str(answer.at("code")), code);
    EXPECT_EQ(Str(answer.at("error")), message);
  }

  // kAccount's ledger entry.
  json::object Ledger() {
    json::value l = Control("GET", StrCat("/_sim/ledger?purchases=true&account=", kAccount));
    if (!l.is_object() || l.at("accounts").as_array().size() != 1) {
      ADD_FAILURE() << "no ledger for " << kAccount;
      return {};
    }
    return l.at("accounts").as_array()[0].as_object();
  }

  json::array LedgerMessages() {
    json::object ledger = Ledger();
    return ledger.contains("mass_messages") ? ledger.at("mass_messages").as_array() : json::array();
  }

  // The ledger's record of mass message `id`; null when it has none.
  json::value LedgerMessage(int64_t id) {
    for (const json::value& m : LedgerMessages()) {
      if (m.at("id").as_int64() == id) return m;
    }
    return nullptr;
  }

  // API requests the simulator has handled (control requests excluded).
  int64_t ApiRequestsHandled() {
    json::value stats = Control("GET", "/_sim/stats");
    return stats.is_object() ? stats.at("requests").at("total").as_int64() : -1;
  }

  int64_t TeamCredits(std::string_view team = "alpha") {
    json::value teams = Control("GET", "/_sim/teams?accounts=false");
    if (!teams.is_array()) return -1;
    for (const json::value& t : teams.as_array()) {
      if (Str(t.at("id")) == team) return t.at("credits").as_int64();
    }
    return -1;
  }

  std::string UploadFromUrl(std::string_view url = "https://cdn.example.com/photo.jpg") {
    Result<UploadedMedia> media = Run(client_->UploadMediaFromUrl(kAccount, std::string(url)));
    EXPECT_TRUE(media.ok()) << media.status();
    return media.ok() ? media.value->prefixed_id : "";
  }

  // Sends `message`; its id, or 0 after a failed expectation.
  int64_t Send(MassMessage message) {
    Result<QueueItem> sent = Run(client_->SendMassMessage(kAccount, std::move(message)));
    EXPECT_TRUE(sent.ok()) << sent.status();
    return sent.ok() ? sent.value->id : 0;
  }

  std::optional<QueueItem> FindInQueue(int64_t id) {
    Result<std::vector<QueueItem>> queue = Run(client_->ListMassMessageQueue(kAccount));
    EXPECT_TRUE(queue.ok()) << queue.status();
    if (!queue.ok()) return std::nullopt;
    for (const QueueItem& item : *queue.value) {
      if (item.id == id) return item;
    }
    return std::nullopt;
  }

  // Simulator flags a derived fixture adds, set in its constructor.
  std::vector<std::string> extra_sim_args_;
  // Declared first among the I/O members: destroyed after the clients, whose executor it is.
  asio::io_context ioc_;
  std::unique_ptr<testing::SimulatorProcess> sim_;
  std::unique_ptr<Client> client_;
};

// ---------------------------------------------------------------------------------------------
// Endpoints.

TEST_F(UpstreamContractTest, ListsTheTeamsAccounts) {
  Result<std::vector<Account>> res = Run(client_->ListAccounts());
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_EQ(res.value->size(), 2u);
  const Account& first = (*res.value)[0];
  EXPECT_EQ(first.id, kAccount);
  EXPECT_EQ(first.onlyfans_username, "contract_one");
  EXPECT_EQ(first.display_name, "Contract One");
  EXPECT_TRUE(first.is_authenticated);
  EXPECT_EQ((*res.value)[1].id, "acct_contract2");

  ExpectLimitsReported(res.info, 200, "accounts");
  EXPECT_EQ(res.info.rate_limit_minute, kRateLimit);
  EXPECT_LT(*res.info.rate_limit_remaining_minute, kRateLimit);
  EXPECT_EQ(res.info.credits_used, 1);
  EXPECT_EQ(res.info.credits_balance, kCredits - 1);
  EXPECT_EQ(res.info.credits_balance, TeamCredits());
  EXPECT_EQ(res.info.meta->credits_note, "Always");
  EXPECT_EQ(res.info.meta->is_cached, false);
}

TEST_F(UpstreamContractTest, WebhooksAreCreatedListedAndUpdated) {
  WebhookSpec spec{.endpoint_url = "http://127.0.0.1:9/webhooks/t.team",
                   .events = {"messages.sent", "transactions.new"},
                   .signing_secret = "first-secret"};
  Result<Webhook> created = Run(client_->CreateWebhook(spec));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created.value->id.starts_with("wh_"));
  EXPECT_EQ(created.value->url, spec.endpoint_url);
  EXPECT_EQ(created.value->events, spec.events);
  EXPECT_TRUE(created.value->enabled);
  EXPECT_TRUE(created.value->has_signing_secret);

  spec.events = {"chat_queue.finished"};
  spec.signing_secret = "second-secret";
  Result<Webhook> updated = Run(client_->UpdateWebhook(created.value->id, spec));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated.value->events, spec.events);

  Result<std::vector<Webhook>> listed = Run(client_->ListWebhooks());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed.value->size(), 1u);
  EXPECT_EQ((*listed.value)[0].id, created.value->id);

  spec.events = {"no.such.event"};
  Result<Webhook> refused = Run(client_->CreateWebhook(spec));
  EXPECT_FALSE(refused.ok());
  spec.events = {};
  EXPECT_EQ(Run(client_->CreateWebhook(spec)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UpstreamContractTest, WebhookDeliveriesAreListedAndRedeliveredAndWebhooksDeleted) {
  Result<std::vector<WebhookCatalogueEntry>> catalogue = Run(client_->ListWebhookEvents());
  ASSERT_TRUE(catalogue.ok()) << catalogue.status();
  EXPECT_TRUE(std::any_of(catalogue.value->begin(), catalogue.value->end(),
                          [](const WebhookCatalogueEntry& e) {
                            return e.value == "messages.sent" && !e.description.empty();
                          }));

  // Nobody answers at this URL: each attempt is on record, failed.
  WebhookSpec spec{.endpoint_url = "http://127.0.0.1:9/webhooks/t.team",
                   .events = {"messages.sent"}};
  Result<Webhook> created = Run(client_->CreateWebhook(spec));
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string id = created.value->id;
  Result<Webhook> got = Run(client_->GetWebhook(id));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got.value->url, spec.endpoint_url);
  EXPECT_EQ(got.value->events, spec.events);

  ASSERT_TRUE(
      Run(client_->SendMassMessage(kAccount, {.text = "Hello hooks", .user_ids = {1010}})).ok());
  std::vector<WebhookDelivery> deliveries;
  ASSERT_TRUE(testing::WaitFor([&] {
    Result<std::vector<WebhookDelivery>> page =
        Run(client_->ListWebhookDeliveries(id, {.limit = 10}));
    if (page.ok()) deliveries = *page.value;
    return !deliveries.empty();
  }));
  const WebhookDelivery& first = deliveries.back();
  EXPECT_EQ(first.event, "messages.sent");
  EXPECT_FALSE(first.success);
  EXPECT_FALSE(first.status_code.has_value());
  EXPECT_FALSE(first.delivery_uuid.empty());
  EXPECT_FALSE(first.idempotency_key.empty());
  EXPECT_EQ(first.attempt, 1);

  Result<std::string> redelivered = Run(client_->RedeliverWebhook(id, first.id));
  ASSERT_TRUE(redelivered.ok()) << redelivered.status();
  EXPECT_FALSE(redelivered.value->empty());
  Result<std::string> unknown = Run(client_->RedeliverWebhook(id, "no-such-delivery"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error()->http_status, 404);

  Result<bool> deleted = Run(client_->DeleteWebhook(id));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(*deleted.value);
  Result<Webhook> gone = Run(client_->GetWebhook(id));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error()->http_status, 404);
  EXPECT_TRUE(Run(client_->ListWebhooks()).value->empty());

  ExpectRefusedLocally(Run(client_->ListWebhookDeliveries(id, {.limit = 0})),
                       "limit must be in [1, 100]");
  ExpectRefusedLocally(Run(client_->RedeliverWebhook(id, "")), "delivery id is empty");
}

TEST_F(UpstreamContractTest, AnUploadsStatusAndTheMassMessageChartAreRead) {
  Result<UploadedMedia> uploaded =
      Run(client_->UploadMediaFromUrl(kAccount, "https://cdn.example.com/status.jpg"));
  ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  Result<UploadStatus> status =
      Run(client_->GetUploadStatus(kAccount, uploaded.value->prefixed_id));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status.value->prefixed_id, uploaded.value->prefixed_id);
  EXPECT_EQ(status.value->status, "completed");
  EXPECT_GT(status.value->credits_used, 0);
  ASSERT_TRUE(status.value->media.has_value());
  EXPECT_EQ(status.value->media->prefixed_id, uploaded.value->prefixed_id);
  Result<UploadStatus> unknown = Run(client_->GetUploadStatus(kAccount, "ofapi_media_nope"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error()->http_status, 404);

  ASSERT_TRUE(
      Run(client_->SendMassMessage(kAccount, {.text = "Charted", .user_ids = {1010}})).ok());
  const absl::Time now = absl::Now();
  Result<MassMessageChart> chart = Run(client_->GetMassMessageChart(
      kAccount, {.start = now - absl::Hours(48), .end = now + absl::Hours(1)}));
  ASSERT_TRUE(chart.ok()) << chart.status();
  ASSERT_FALSE(chart.value->messages.chart.empty());
  int64_t sent = 0;
  std::string sent_on;
  for (const MassMessageChart::Day& day : chart.value->messages.chart) {
    sent += day.count;
    if (day.count > 0) sent_on = day.date;
  }
  EXPECT_EQ(sent, 1);
  EXPECT_EQ(sent_on, absl::FormatTime("%Y-%m-%d", now, absl::UTCTimeZone()));
  EXPECT_EQ(chart.value->messages.total, 1);
  Result<MassMessageChart> bare = Run(client_->GetMassMessageChart(
      kAccount,
      {.start = now - absl::Hours(48), .end = now + absl::Hours(1), .with_total = false}));
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_FALSE(bare.value->messages.total.has_value());

  ExpectRefusedLocally(
      Run(client_->GetMassMessageChart(kAccount, {.start = now, .end = now - absl::Hours(1)})),
      "end must be after start");
}

TEST_F(UpstreamContractTest, FreeMassMessageIsQueuedDeliveredAndReported) {
  Result<QueueItem> sent = Run(client_->SendMassMessage(
      kAccount, {.text = "Hello fans", .user_lists = {"900"}, .user_ids = {1010}}));
  ASSERT_TRUE(sent.ok()) << sent.status();
  ExpectLimitsReported(sent.info, 200, "send");
  const int64_t id = sent.value->id;
  EXPECT_GT(id, 0);
  EXPECT_EQ(sent.value->total, 4);
  EXPECT_TRUE(sent.value->is_ready);
  EXPECT_FALSE(sent.value->is_canceled);
  EXPECT_TRUE(sent.value->can_unsend);

  std::optional<QueueItem> item;
  ASSERT_TRUE(testing::WaitFor([&] {
    item = FindInQueue(id);
    return item.has_value() && item->is_done;
  }));
  EXPECT_EQ(item->total, 4);
  EXPECT_EQ(item->pending, 0);

  Result<QueueDetailResult> detail = Run(client_->GetMassMessage(kAccount, id));
  ASSERT_TRUE(detail.ok()) << detail.status();
  ExpectLimitsReported(detail.info, 200, "get");
  EXPECT_TRUE(detail.value->success);
  EXPECT_EQ(detail.value->queue.id, id);
  EXPECT_EQ(detail.value->queue.text, "<p>Hello fans</p>");
  EXPECT_EQ(detail.value->queue.text_cropped, "Hello fans");
  EXPECT_TRUE(detail.value->queue.is_free);
  EXPECT_EQ(detail.value->queue.sent_count, 4);
  EXPECT_FALSE(detail.value->queue.is_canceled);

  const absl::Time now = absl::Now();
  Result<MassMessageStatsPage> overview = Run(client_->GetMassMessageOverview(
      kAccount,
      {.start = now - absl::Hours(1), .end = now + absl::Hours(1), .limit = 5, .query = "hello"}));
  ASSERT_TRUE(overview.ok()) << overview.status();
  ExpectLimitsReported(overview.info, 200, "overview");
  ASSERT_EQ(overview.value->items.size(), 1u);
  const MassMessageStats& stats = overview.value->items[0];
  EXPECT_EQ(stats.id, id);
  EXPECT_EQ(stats.text, "<p>Hello fans</p>");
  EXPECT_EQ(stats.raw_text, "Hello fans");
  EXPECT_EQ(stats.sent_count, 4);
  EXPECT_TRUE(stats.is_free);
  EXPECT_EQ(stats.media_count, 0);
  EXPECT_FALSE(overview.value->has_more);
  EXPECT_FALSE(overview.value->next_page.has_value());

  Result<MassMessageStatsPage> none =
      Run(client_->GetMassMessageOverview(kAccount, {.query = "absent"}));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none.value->items.empty());

  json::value ledger = LedgerMessage(id);
  ASSERT_TRUE(ledger.is_object());
  EXPECT_EQ(ledger.at("state"), "done");
  EXPECT_EQ(ledger.at("text"), "Hello fans");
  EXPECT_EQ(ledger.at("recipients"), 4);
  EXPECT_EQ(ledger.at("sent"), 4);
  EXPECT_EQ(ledger.at("price_cents"), 0);
}

TEST_F(UpstreamContractTest, ALongTextIsCroppedByCharacters) {
  // 60 two-byte characters after 40 ASCII ones: 100 characters, 160 bytes; one more is cropped.
  std::string text(40, 'a');
  for (int i = 0; i < 61; ++i) text += "\u00e9";
  Result<QueueItem> sent =
      Run(client_->SendMassMessage(kAccount, {.text = text, .user_ids = {1010}}));
  ASSERT_TRUE(sent.ok()) << sent.status();

  Result<QueueDetailResult> detail = Run(client_->GetMassMessage(kAccount, sent.value->id));
  ASSERT_TRUE(detail.ok()) << detail.status();
  std::string cropped(40, 'a');
  for (int i = 0; i < 57; ++i) cropped += "\u00e9";
  EXPECT_EQ(detail.value->queue.text_cropped, cropped + "...");
}

TEST_F(UpstreamContractTest, UploadsByUrlAndBytesThenAPricedMessageWithPreviews) {
  Result<UploadedMedia> by_url =
      Run(client_->UploadMediaFromUrl(kAccount, "https://cdn.example.com/media/photo.jpg?v=2"));
  ASSERT_TRUE(by_url.ok()) << by_url.status();
  EXPECT_THAT(by_url.value->prefixed_id, StartsWith("ofapi_media_"));
  EXPECT_EQ(by_url.value->file_name, "photo.jpg");
  EXPECT_FALSE(by_url.value->source_url.empty());
  EXPECT_TRUE(by_url.value->polling_url.empty());
  // A flat body without `_meta`; the headers still report credits: a URL upload counts as one
  // MB at 3 credits per MB.
  ExpectLimitsReported(by_url.info, 200, "upload by url", /*envelope=*/false);
  EXPECT_FALSE(by_url.info.meta.has_value());
  EXPECT_EQ(by_url.info.credits_used, 3);

  Result<UploadedMedia> by_bytes =
      Run(client_->UploadMediaFile(kAccount, {.file_name = "teaser.mp4",
                                              .content_type = "video/mp4",
                                              .data = std::string(1'500'000, 'v')}));
  ASSERT_TRUE(by_bytes.ok()) << by_bytes.status();
  EXPECT_THAT(by_bytes.value->prefixed_id, StartsWith("ofapi_media_"));
  EXPECT_NE(by_bytes.value->prefixed_id, by_url.value->prefixed_id);
  EXPECT_EQ(by_bytes.value->file_name, "teaser.mp4");
  ExpectLimitsReported(by_bytes.info, 200, "upload bytes", /*envelope=*/false);
  EXPECT_EQ(by_bytes.info.credits_used, 6);  // two started MB
  EXPECT_EQ(by_bytes.info.credits_balance, TeamCredits());

  const std::string photo = by_url.value->prefixed_id;
  const std::string video = by_bytes.value->prefixed_id;
  Result<QueueItem> sent = Run(client_->SendMassMessage(kAccount, {.text = "Unlock me",
                                                                   .user_lists = {"900"},
                                                                   .price_cents = 999,
                                                                   .media_files = {photo, video},
                                                                   .previews = {photo}}));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent.value->total, 3);
  json::value ledger = LedgerMessage(sent.value->id);
  ASSERT_TRUE(ledger.is_object());
  EXPECT_EQ(ledger.at("price_cents"), 999);
  EXPECT_EQ(ledger.at("price"), "9.99");
  ASSERT_EQ(ledger.at("media").as_array().size(), 2u);
  EXPECT_EQ(ledger.at("media").as_array()[0].as_string(), photo.c_str());
  EXPECT_EQ(ledger.at("media").as_array()[1].as_string(), video.c_str());

  Result<QueueDetailResult> detail = Run(client_->GetMassMessage(kAccount, sent.value->id));
  ASSERT_TRUE(detail.ok()) << detail.status();
  EXPECT_FALSE(detail.value->queue.is_free);

  // Uploaded media are single-use: a second message with the same id is refused by the upstream
  // and nothing is created.
  Result<QueueItem> again = Run(client_->SendMassMessage(
      kAccount,
      {.text = "Again", .user_lists = {"900"}, .price_cents = 999, .media_files = {photo}}));
  ExpectRejectedByUpstream(
      again, "media_already_used",
      StrCat("Media ", photo, " was already used; upload it again or use a vault id."));
  EXPECT_EQ(LedgerMessages().size(), 1u);
}

// The simulator answering uploads as the vendor's marketing sample does: the usual envelope, the
// media id as `data.id` (the upstream's API reference documents a flat `prefixed_id`).
class UpstreamContractUploadInDataTest : public UpstreamContractTest {
 protected:
  UpstreamContractUploadInDataTest() { extra_sim_args_ = {"--upload_response_shape=data"}; }
};

TEST_F(UpstreamContractUploadInDataTest, UploadsAnsweredInDataAreReadAndAttachable) {
  // The simulator really answers in that shape.
  auto [status, raw] = Raw("POST", StrCat("/api/", kAccount, "/media/upload"),
                           R"({"file_url": "https://cdn.example.com/raw.jpg"})");
  ASSERT_EQ(status, 200) << json::serialize(raw);
  ASSERT_TRUE(raw.is_object() && raw.as_object().contains("data")) << json::serialize(raw);
  EXPECT_FALSE(raw.as_object().contains("prefixed_id"));
  EXPECT_THAT(Str(raw.at("data").at("id")), StartsWith("ofapi_media_"));
  EXPECT_FALSE(raw.at("data").as_object().contains("prefixed_id"));

  Result<UploadedMedia> by_url =
      Run(client_->UploadMediaFromUrl(kAccount, "https://cdn.example.com/media/photo.jpg?v=2"));
  ASSERT_TRUE(by_url.ok()) << by_url.status();
  EXPECT_THAT(by_url.value->prefixed_id, StartsWith("ofapi_media_"));
  EXPECT_EQ(by_url.value->file_name, "photo.jpg");
  EXPECT_FALSE(by_url.value->source_url.empty());
  EXPECT_TRUE(by_url.value->polling_url.empty());
  // Enveloped, so `_meta` repeats the headers.
  ExpectLimitsReported(by_url.info, 200, "upload by url in data");
  EXPECT_EQ(by_url.info.credits_used, 3);

  Result<UploadedMedia> by_bytes =
      Run(client_->UploadMediaFile(kAccount, {.file_name = "teaser.mp4",
                                              .content_type = "video/mp4",
                                              .data = std::string(1'500'000, 'v')}));
  ASSERT_TRUE(by_bytes.ok()) << by_bytes.status();
  EXPECT_THAT(by_bytes.value->prefixed_id, StartsWith("ofapi_media_"));
  EXPECT_NE(by_bytes.value->prefixed_id, by_url.value->prefixed_id);
  EXPECT_EQ(by_bytes.value->file_name, "teaser.mp4");
  ExpectLimitsReported(by_bytes.info, 200, "upload bytes in data");
  EXPECT_EQ(by_bytes.info.credits_used, 6);

  // The ids read from `data.id` are the upstream's: a message attaching them is accepted.
  const std::string photo = by_url.value->prefixed_id;
  const std::string video = by_bytes.value->prefixed_id;
  Result<QueueItem> sent = Run(client_->SendMassMessage(kAccount, {.text = "Unlock me",
                                                                   .user_lists = {"900"},
                                                                   .price_cents = 999,
                                                                   .media_files = {photo, video},
                                                                   .previews = {photo}}));
  ASSERT_TRUE(sent.ok()) << sent.status();
  json::value ledger = LedgerMessage(sent.value->id);
  ASSERT_TRUE(ledger.is_object());
  ASSERT_EQ(ledger.at("media").as_array().size(), 2u);
  EXPECT_EQ(Str(ledger.at("media").as_array()[0]), photo);
  EXPECT_EQ(Str(ledger.at("media").as_array()[1]), video);
}

TEST_F(UpstreamContractTest, UploadShapeSwitchedAtRuntimeIsReadInBothShapes) {
  Behave(R"({"upload_response_shape": "data"})");
  Result<UploadedMedia> in_data =
      Run(client_->UploadMediaFromUrl(kAccount, "https://x.test/a.jpg"));
  ASSERT_TRUE(in_data.ok()) << in_data.status();
  EXPECT_THAT(in_data.value->prefixed_id, StartsWith("ofapi_media_"));
  EXPECT_TRUE(in_data.info.meta.has_value());

  Behave(R"({"upload_response_shape": "flat"})");
  Result<UploadedMedia> flat = Run(client_->UploadMediaFromUrl(kAccount, "https://x.test/b.jpg"));
  ASSERT_TRUE(flat.ok()) << flat.status();
  EXPECT_THAT(flat.value->prefixed_id, StartsWith("ofapi_media_"));
  EXPECT_NE(flat.value->prefixed_id, in_data.value->prefixed_id);
  EXPECT_FALSE(flat.info.meta.has_value());

  auto [status, answer] = Raw("POST", "/_sim/behavior", R"({"upload_response_shape": "nested"})");
  EXPECT_EQ(status, 422) << json::serialize(answer);
  EXPECT_THAT(json::serialize(answer), HasSubstr("upload_response_shape"));
}

TEST_F(UpstreamContractTest, ScheduledMessageIsUpdatedWithPutAndDeleted) {
  const std::string media = UploadFromUrl();
  const absl::Time at = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  Result<QueueItem> sent = Run(client_->SendMassMessage(
      kAccount,
      {.text = "Later", .user_lists = {"900"}, .media_files = {media}, .scheduled_at = at}));
  ASSERT_TRUE(sent.ok()) << sent.status();
  const int64_t id = sent.value->id;
  EXPECT_EQ(sent.value->date, IsoDate(at));
  EXPECT_FALSE(sent.value->is_done);
  EXPECT_EQ(sent.value->pending, 3);
  EXPECT_TRUE(sent.value->can_unsend);
  EXPECT_EQ(LedgerMessage(id).at("state"), "scheduled");

  const absl::Time later = at + absl::Hours(1);
  Result<QueueItem> updated =
      Run(client_->UpdateMassMessage(kAccount, id,
                                     {.text = "Later, and priced",
                                      .price_cents = 1500,
                                      .previews = std::vector<std::string>{media},
                                      .scheduled_at = later}));
  ASSERT_TRUE(updated.ok()) << updated.status();
  ExpectLimitsReported(updated.info, 200, "update");
  EXPECT_EQ(updated.value->id, id);
  EXPECT_EQ(updated.value->date, IsoDate(later));
  json::value ledger = LedgerMessage(id);
  ASSERT_TRUE(ledger.is_object());
  EXPECT_EQ(ledger.at("text"), "Later, and priced");
  EXPECT_EQ(ledger.at("price_cents"), 1500);
  EXPECT_EQ(ledger.at("updates"), 1);
  EXPECT_EQ(Str(ledger.at("start_at")), IsoDate(later));
  EXPECT_EQ(ledger.at("state"), "scheduled");
  Result<QueueDetailResult> detail = Run(client_->GetMassMessage(kAccount, id));
  ASSERT_TRUE(detail.ok()) << detail.status();
  EXPECT_EQ(detail.value->queue.text, "<p>Later, and priced</p>");
  EXPECT_FALSE(detail.value->queue.is_free);

  // Rules that depend on the stored message are the upstream's to check: the client sends
  // these updates, and the upstream's message comes back.
  const int64_t plain =
      Send({.text = "Plain", .user_lists = {"900"}, .scheduled_at = at + absl::Hours(2)});
  ASSERT_GT(plain, 0);
  ExpectRejectedByUpstream(
      Run(client_->UpdateMassMessage(kAccount, plain, {.text = "Plain", .price_cents = 500})),
      "media_required", "A priced message needs at least one media file.");
  ExpectRejectedByUpstream(
      Run(client_->UpdateMassMessage(
          kAccount, id,
          {.text = "x", .previews = std::vector<std::string>{"ofapi_media_elsewhere"}})),
      "invalid_previews", "Preview ofapi_media_elsewhere is not one of the mediaFiles.");
  EXPECT_EQ(LedgerMessage(id).at("updates"), 1);

  // DELETE removes a scheduled message; it can no longer be updated.
  Result<QueueDetailResult> deleted = Run(client_->UnsendMassMessage(kAccount, id));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  ExpectLimitsReported(deleted.info, 200, "delete");
  EXPECT_TRUE(deleted.value->success);
  EXPECT_EQ(deleted.value->queue.id, id);
  EXPECT_TRUE(deleted.value->queue.is_canceled);
  EXPECT_EQ(LedgerMessage(id).at("state"), "canceled");
  ExpectRejectedByUpstream(Run(client_->UpdateMassMessage(kAccount, id, {.text = "Too late"})),
                           "cannot_update",
                           "Only scheduled or saved mass messages that have not started can be "
                           "updated.");
}

TEST_F(UpstreamContractTest, UnsendStopsDeliveryWithinTheWindowAndIsRefusedAfterIt) {
  Behave(R"({"delivery_rate": 2})");  // two recipients a second: the queue is still sending
  const int64_t id = Send({.text = "Oops", .user_lists = {"901"}});
  ASSERT_GT(id, 0);
  Result<QueueDetailResult> unsent = Run(client_->UnsendMassMessage(kAccount, id));
  ASSERT_TRUE(unsent.ok()) << unsent.status();
  EXPECT_TRUE(unsent.value->success);
  EXPECT_TRUE(unsent.value->queue.is_canceled);
  json::value ledger = LedgerMessage(id);
  ASSERT_TRUE(ledger.is_object());
  EXPECT_EQ(ledger.at("state"), "canceled");
  EXPECT_EQ(ledger.at("recipients"), 35);
  EXPECT_LT(ledger.at("sent").as_int64(), 35);
  EXPECT_FALSE(ledger.at("canceled_at").is_null());
  std::optional<QueueItem> item = FindInQueue(id);
  ASSERT_TRUE(item.has_value());
  EXPECT_TRUE(item->is_canceled);
  EXPECT_TRUE(item->is_done);
  EXPECT_EQ(item->pending, 0);
  // Unsending a canceled message returns it again.
  Result<QueueDetailResult> again = Run(client_->UnsendMassMessage(kAccount, id));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again.value->queue.is_canceled);

  Behave(R"({"delivery_rate": 100000, "unsend_window_ms": 300})");
  const int64_t sent = Send({.text = "Final", .user_lists = {"900"}});
  ASSERT_GT(sent, 0);
  ASSERT_TRUE(testing::WaitFor([&] {
    Result<QueueDetailResult> d = Run(client_->GetMassMessage(kAccount, sent));
    return d.ok() && !d.value->queue.can_unsend;
  }));
  ExpectRejectedByUpstream(Run(client_->UnsendMassMessage(kAccount, sent)), "cannot_unsend",
                           "The unsend window of this mass message has passed.");
  EXPECT_EQ(LedgerMessage(sent).at("state"), "done");
}

TEST_F(UpstreamContractTest, UserListsAreCreatedFilledAndPaged) {
  Result<std::vector<UserList>> system = Run(client_->ListUserLists(kAccount, {}));
  ASSERT_TRUE(system.ok()) << system.status();
  ExpectLimitsReported(system.info, 200, "user lists");
  ASSERT_EQ(system.value->size(), 10u);  // the system lists come first
  EXPECT_EQ((*system.value)[0].id, "fans");
  EXPECT_EQ((*system.value)[0].name, "Fans");
  EXPECT_EQ((*system.value)[0].users_count, 40);
  EXPECT_FALSE((*system.value)[0].can_add_users);

  Result<UserList> created = Run(client_->CreateUserList(kAccount, "Contract VIP"));
  ASSERT_TRUE(created.ok()) << created.status();
  ExpectLimitsReported(created.info, 200, "create list");
  const std::string list_id = created.value->id;
  EXPECT_TRUE(ParseInt<int64_t>(list_id).has_value()) << list_id;
  EXPECT_EQ(created.value->name, "Contract VIP");
  EXPECT_EQ(created.value->type, "custom");
  EXPECT_EQ(created.value->users_count, 0);
  EXPECT_TRUE(created.value->can_add_users);

  // The upstream counts the 64-character limit in characters, not bytes.
  std::string accented;
  for (int i = 0; i < 64; ++i) accented += "\xc3\xa9";  // U+00E9, two bytes each
  Result<UserList> long_name = Run(client_->CreateUserList(kAccount, accented));
  ASSERT_TRUE(long_name.ok()) << long_name.status();
  EXPECT_EQ(long_name.value->name, accented);

  std::vector<int64_t> ids;
  for (int64_t id = 1025; id >= 1001; --id) ids.push_back(id);
  ids.push_back(1001);  // twice: counted once
  Result<AddUsersResult> added = Run(client_->AddUsersToUserList(kAccount, list_id, ids));
  ASSERT_TRUE(added.ok()) << added.status();
  ExpectLimitsReported(added.info, 200, "add users");
  ASSERT_EQ(added.value->users_by_key.size(), 1u);
  EXPECT_EQ(added.value->users_by_key[0].first, list_id);
  EXPECT_EQ(added.value->users_by_key[0].second.size(), 25u);

  std::vector<int64_t> members;
  int pages = 0;
  int offset = 0;
  while (true) {
    Result<UserListUsersPage> page =
        Run(client_->ListUserListUsers(kAccount, list_id, {.limit = 10, .offset = offset}));
    ASSERT_TRUE(page.ok()) << page.status();
    ExpectLimitsReported(page.info, 200, "list users");
    ++pages;
    for (const Fan& fan : page.value->users) members.push_back(fan.id);
    ASSERT_TRUE(page.value->next_offset.has_value());
    if (!page.value->has_more) break;
    ASSERT_LT(pages, 10);
    offset = static_cast<int>(*page.value->next_offset);
  }
  EXPECT_EQ(pages, 3);
  std::vector<int64_t> expected;
  for (int64_t id = 1001; id <= 1025; ++id) expected.push_back(id);
  EXPECT_EQ(members, expected);

  Result<std::vector<UserList>> custom =
      Run(client_->ListUserLists(kAccount, {.limit = 10, .offset = 10}));
  ASSERT_TRUE(custom.ok()) << custom.status();
  std::vector<std::string> custom_ids;
  for (const UserList& list : *custom.value) custom_ids.push_back(list.id);
  EXPECT_EQ(custom_ids, (std::vector<std::string>{"900", "901", list_id, long_name.value->id}));
  EXPECT_EQ((*custom.value)[2].users_count, 25);

  ExpectRejectedByUpstream(
      Run(client_->AddUsersToUserList(kAccount, "fans", {1001})), "system_list",
      "Users cannot be added to the fans list; it is managed by the platform.");
}

TEST_F(UpstreamContractTest, UserListsAreRenamedPinnedEmptiedAndDeleted) {
  Result<UserList> created = Run(client_->CreateUserList(kAccount, "Weekend buyers"));
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string list_id = created.value->id;
  ASSERT_TRUE(Run(client_->AddUsersToUserList(kAccount, list_id, {1001, 1002, 1003})).ok());

  Result<UserList> got = Run(client_->GetUserList(kAccount, list_id));
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectLimitsReported(got.info, 200, "get list");
  EXPECT_EQ(got.value->users_count, 3);
  ASSERT_EQ(got.value->users.size(), 3u);
  EXPECT_EQ(got.value->users[0].id, 1001);
  EXPECT_FALSE(got.value->pinned_to_feed);

  Result<UserList> renamed =
      Run(client_->UpdateUserList(kAccount, list_id, {.name = "VIP", .pinned_to_feed = true}));
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  EXPECT_EQ(renamed.value->name, "VIP");
  EXPECT_TRUE(renamed.value->pinned_to_feed);

  Result<bool> pinned = Run(client_->PinUserInList(kAccount, list_id, 1002));
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_TRUE(*pinned.value);
  Result<UserListUsersPage> pins = Run(client_->ListPinnedUsers(kAccount, list_id, {}));
  ASSERT_TRUE(pins.ok()) << pins.status();
  ASSERT_EQ(pins.value->users.size(), 1u);
  EXPECT_EQ(pins.value->users[0].id, 1002);
  EXPECT_FALSE(pins.value->has_more);

  Result<RemovedListUser> removed = Run(client_->RemoveUserFromList(kAccount, list_id, 1002));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed.value->list.users_count, 2);
  EXPECT_FALSE(removed.value->has_user);
  EXPECT_TRUE(removed.value->can_add_user);
  EXPECT_TRUE(Run(client_->ListPinnedUsers(kAccount, list_id, {})).value->users.empty());

  Result<UserList> cleared = Run(client_->ClearUserList(kAccount, list_id));
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_EQ(cleared.value->users_count, 0);
  EXPECT_TRUE(cleared.value->users.empty());

  Result<bool> deleted = Run(client_->DeleteUserList(kAccount, list_id));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(*deleted.value);
  Result<UserList> gone = Run(client_->GetUserList(kAccount, list_id));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error()->http_status, 404);

  // Refused before any call: no name, a name over 64 characters, no user.
  ExpectRefusedLocally(Run(client_->UpdateUserList(kAccount, list_id, {})),
                       "list name must be 1 to 64 characters");
  ExpectRefusedLocally(
      Run(client_->UpdateUserList(kAccount, list_id, {.name = std::string(65, 'n')})),
      "list name must be 1 to 64 characters");
  ExpectRefusedLocally(Run(client_->PinUserInList(kAccount, list_id, 0)),
                       "user id must be positive");
  // And by the upstream: system lists cannot be renamed or emptied.
  Result<UserList> system = Run(client_->ClearUserList(kAccount, "fans"));
  ASSERT_FALSE(system.ok());
  EXPECT_EQ(system.error()->kind, ErrorKind::kTerminal);
}

TEST_F(UpstreamContractTest, BuyersAndRevenueMatchTheLedgerToTheCent) {
  Behave(R"({"purchase_probability": 1, "fan_behavior": "uniform"})");
  Result<std::optional<TopMessage>> no_top =
      Run(client_->GetTopMessage(kAccount, std::nullopt, std::nullopt));
  ASSERT_TRUE(no_top.ok()) << no_top.status();
  EXPECT_FALSE(no_top.value->has_value());

  const std::string media = UploadFromUrl();
  const int64_t id =
      Send({.text = "Premium", .user_lists = {"901"}, .price_cents = 1234, .media_files = {media}});
  ASSERT_GT(id, 0);
  json::value ledger;
  ASSERT_TRUE(testing::WaitFor([&] {
    ledger = LedgerMessage(id);
    return ledger.is_object() && ledger.at("state") == "done" && ledger.at("purchases") == 35 &&
           ledger.at("purchases_pending") == 0;
  })) << ledger;
  std::vector<int64_t> ledger_buyers;
  int64_t amounts = 0;
  for (const json::value& b : ledger.at("buyers").as_array()) {
    ledger_buyers.push_back(b.at("fan_id").as_int64());
    amounts += b.at("amount_cents").as_int64();
  }
  std::sort(ledger_buyers.begin(), ledger_buyers.end());
  const int64_t revenue = ledger.at("revenue_cents").as_int64();
  EXPECT_EQ(revenue, 35 * 1234);
  EXPECT_EQ(amounts, revenue);

  // One page after another, following next_page.
  std::vector<int64_t> buyers;
  int pages = 0;
  Result<BuyersPage> page = Run(client_->ListMessageBuyers(kAccount, id, {}));
  while (true) {
    ASSERT_TRUE(page.ok()) << page.status();
    ExpectLimitsReported(page.info, 200, "buyers");
    ++pages;
    for (const Fan& fan : page.value->buyers) buyers.push_back(fan.id);
    if (!page.value->next_page.has_value()) {
      EXPECT_FALSE(page.value->has_more);
      break;
    }
    EXPECT_TRUE(page.value->has_more);
    ASSERT_LT(pages, 10);
    page = Run(client_->NextMessageBuyers(*page.value->next_page));
  }
  EXPECT_EQ(pages, 4);
  std::sort(buyers.begin(), buyers.end());
  EXPECT_EQ(buyers, ledger_buyers);

  Result<AllBuyers> all = Run(client_->ListAllMessageBuyers(kAccount, id));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all.value->complete);
  EXPECT_EQ(all.value->pages, 4);
  std::vector<int64_t> all_ids;
  for (const Fan& fan : all.value->buyers) all_ids.push_back(fan.id);
  std::sort(all_ids.begin(), all_ids.end());
  EXPECT_EQ(all_ids, ledger_buyers);

  Result<std::optional<TopMessage>> top =
      Run(client_->GetTopMessage(kAccount, absl::Now() - absl::Hours(1), std::nullopt));
  ASSERT_TRUE(top.ok()) << top.status();
  ExpectLimitsReported(top.info, 200, "top message");
  ASSERT_TRUE(top.value->has_value());
  const TopMessage& t = **top.value;
  EXPECT_EQ(t.id, id);
  EXPECT_EQ(t.raw_text, "Premium");
  EXPECT_EQ(t.price_cents, 1234);
  EXPECT_EQ(t.purchased_count, 35);
  EXPECT_EQ(t.sent_count, 35);
  EXPECT_EQ(t.viewed_count, 35);  // buyers have seen the message
  EXPECT_EQ(t.total_revenue_cents, revenue);
  EXPECT_FALSE(t.is_free);
  EXPECT_EQ(t.media_count, 1);

  // The engagement list, one message a page: the newer free message, then this one.
  const int64_t newer = Send({.text = "Thanks", .user_lists = {"900"}});
  ASSERT_GT(newer, 0);
  Result<MassMessageStatsPage> first = Run(client_->ListMassMessageStats(kAccount, {.limit = 1}));
  ASSERT_TRUE(first.ok()) << first.status();
  ExpectLimitsReported(first.info, 200, "engagement");
  ASSERT_EQ(first.value->items.size(), 1u);
  EXPECT_EQ(first.value->items[0].id, newer);
  EXPECT_TRUE(first.value->has_more);
  ASSERT_TRUE(first.value->next_page.has_value());
  Result<MassMessageStatsPage> second = Run(client_->NextMassMessageStats(*first.value->next_page));
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second.value->items.size(), 1u);
  const MassMessageStats& s = second.value->items[0];
  EXPECT_EQ(s.id, id);
  EXPECT_EQ(s.sent_count, 35);
  EXPECT_EQ(s.viewed_count, 35);
  EXPECT_FALSE(s.is_free);
  EXPECT_EQ(s.media_count, 1);
  EXPECT_FALSE(second.value->has_more);
  EXPECT_FALSE(second.value->next_page.has_value());
}

// ---------------------------------------------------------------------------------------------
// Errors, classified end to end.

TEST_F(UpstreamContractTest, BadApiKeyIsUnauthorized) {
  std::unique_ptr<Client> stranger = MakeClient("not-a-key");
  ASSERT_NE(stranger, nullptr);
  Result<std::vector<Account>> res = Run(stranger->ListAccounts());
  ExpectUpstreamError(
      res, ErrorKind::kUnauthorized, absl::StatusCode::kUnauthenticated, 401, "",
      "Unauthorized. Go to https://app.onlyfansapi.com/api-keys to get your API key.");
  EXPECT_EQ(res.info.http_status, 401);
}

TEST_F(UpstreamContractTest, UnknownMessagesAndOtherTeamsAccountsAreNotFound) {
  std::unique_ptr<Client> beta = MakeClient("key-beta");
  ASSERT_NE(beta, nullptr);
  Result<std::vector<QueueItem>> other = Run(beta->ListMassMessageQueue(kAccount));
  ExpectUpstreamError(other, ErrorKind::kTerminal, absl::StatusCode::kNotFound, 404,
                      "account_not_found", StrCat("Account ", kAccount, " not found."));
  ExpectLimitsReported(other.info, 404, "other team");

  Result<QueueDetailResult> missing = Run(client_->GetMassMessage(kAccount, 987654321));
  ExpectUpstreamError(missing, ErrorKind::kTerminal, absl::StatusCode::kNotFound, 404,
                      "message_not_found", "Mass message not found.");
  ExpectLimitsReported(missing.info, 404, "unknown message");
}

TEST_F(UpstreamContractTest, InvalidInputIsRefusedByTheClientAndByTheUpstream) {
  const std::string media = UploadFromUrl();
  const int64_t handled = ApiRequestsHandled();

  // Input the client can judge alone never leaves it.
  ExpectRefusedLocally(
      Run(client_->SendMassMessage(
          kAccount,
          {.text = "x", .user_lists = {"fans"}, .price_cents = 250, .media_files = {media}})),
      "price must be 0 or between 3.00 and 200.00, got 2.50");
  ExpectRefusedLocally(Run(client_->SendMassMessage(
                           kAccount, {.text = "x", .user_lists = {"fans"}, .price_cents = 500})),
                       "a priced message needs media files");
  ExpectRefusedLocally(
      Run(client_->SendMassMessage(kAccount, {.text = "x",
                                              .user_lists = {"fans"},
                                              .media_files = {media},
                                              .previews = {"ofapi_media_elsewhere"}})),
      "preview ofapi_media_elsewhere is not among the media files");
  ExpectRefusedLocally(Run(client_->CreateUserList(kAccount, std::string(65, 'n'))),
                       "list name must be 1 to 64 characters");
  EXPECT_EQ(ApiRequestsHandled(), handled) << "a refused request reached the upstream";

  // The same input sent as is: the upstream refuses it for the same reasons.
  const std::string send = StrCat("/api/", kAccount, "/mass-messaging");
  ExpectRawRejected(
      send,
      StrCat(R"({"text":"x","userLists":["fans"],"mediaFiles":[")", media, R"("],"price":2.50})"),
      "invalid_price", "The price must be 0 or between 3 and 200.");
  ExpectRawRejected(send, R"({"text":"x","userLists":["fans"],"price":5.00})", "media_required",
                    "A priced message needs at least one media file.");
  ExpectRawRejected(send,
                    StrCat(R"({"text":"x","userLists":["fans"],"mediaFiles":[")", media,
                           R"("],"previews":["ofapi_media_elsewhere"]})"),
                    "invalid_previews",
                    "Preview ofapi_media_elsewhere is not one of the mediaFiles.");
  ExpectRawRejected(StrCat("/api/", kAccount, "/user-lists"),
                    StrCat(R"({"name":")", std::string(65, 'n'), R"("})"), "invalid_name",
                    "The name may not be greater than 64 characters.");

  // Input only the upstream can judge is sent and comes back terminal with its message.
  ExpectRejectedByUpstream(
      Run(client_->SendMassMessage(kAccount, {.text = "   ", .user_lists = {"fans"}})),
      "text_required", "The text field is required.");
  ExpectRejectedByUpstream(
      Run(client_->SendMassMessage(kAccount, {.text = "x", .user_lists = {"424242"}})),
      "invalid_user_list", "User list 424242 was not found.");
  ExpectRejectedByUpstream(
      Run(client_->SendMassMessage(kAccount, {.text = "x",
                                              .user_lists = {"fans"},
                                              .price_cents = 500,
                                              .media_files = {"ofapi_media_unknown"}})),
      "media_not_found", "Media ofapi_media_unknown was not uploaded to this account.");
  ExpectRejectedByUpstream(Run(client_->CreateUserList(kAccount, "   ")), "name_required",
                           "The name field is required.");
  std::vector<int64_t> too_many;
  for (int64_t id = 1; id <= 101; ++id) too_many.push_back(id);
  ExpectRejectedByUpstream(Run(client_->AddUsersToUserList(kAccount, "900", too_many)),
                           "too_many_ids", "At most 100 ids can be added in one call.");
  EXPECT_TRUE(LedgerMessages().empty());
}

TEST_F(UpstreamContractTest, TeamRateLimitIsRateLimitedWithRetryAfter) {
  Control("POST", "/_sim/teams/alpha", R"({"rate_limit_per_minute": 2})");
  // The window is aligned to whole minutes, so it may roll over once while this runs.
  std::optional<Result<std::vector<Account>>> limited;
  for (int i = 0; i < 6 && !limited.has_value(); ++i) {
    Result<std::vector<Account>> res = Run(client_->ListAccounts());
    if (res.ok()) {
      ExpectLimitsReported(res.info, 200, "within the limit");
      EXPECT_EQ(res.info.rate_limit_minute, 2);
    } else {
      limited = std::move(res);
    }
  }
  ASSERT_TRUE(limited.has_value()) << "no 429 in 6 calls at 2 a minute";
  const Result<std::vector<Account>>& res = *limited;
  ExpectUpstreamError(res, ErrorKind::kRateLimited, absl::StatusCode::kResourceExhausted, 429,
                      "rate_limited", "Too many requests: the team's limit is 2 per minute.");
  ExpectLimitsReported(res.info, 429, "rate limited");
  EXPECT_EQ(res.info.rate_limit_minute, 2);
  EXPECT_EQ(res.info.rate_limit_remaining_minute, 0);
  EXPECT_EQ(res.info.credits_balance, TeamCredits());
  ASSERT_TRUE(res.info.retry_after.has_value());
  EXPECT_EQ(res.error()->retry_after, *res.info.retry_after);
  EXPECT_GE(*res.info.retry_after, absl::Seconds(1));
  EXPECT_LE(*res.info.retry_after, absl::Seconds(60));
  EXPECT_THAT(std::string(res.status().message()),
              HasSubstr(StrCat("retry after ", absl::ToInt64Seconds(*res.info.retry_after), "s")));
}

TEST_F(UpstreamContractTest, ExhaustedCreditsAreOutOfCredits) {
  Control("POST", "/_sim/teams/alpha", R"({"credits": 2})");
  // An upload needs 3 credits: refused, and nothing is charged.
  Result<UploadedMedia> upload =
      Run(client_->UploadMediaFromUrl(kAccount, "https://cdn.example.com/photo.jpg"));
  ExpectUpstreamError(upload, ErrorKind::kOutOfCredits, absl::StatusCode::kFailedPrecondition, 402,
                      "insufficient_credits",
                      "This upload needs 3 credits; the balance is too low.");
  ExpectLimitsReported(upload.info, 402, "upload without credits");
  EXPECT_EQ(upload.info.credits_balance, 2);

  for (int64_t left : {1, 0}) {
    Result<std::vector<Account>> res = Run(client_->ListAccounts());
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_EQ(res.info.credits_balance, left);
  }
  Result<std::vector<Account>> broke = Run(client_->ListAccounts());
  ExpectUpstreamError(broke, ErrorKind::kOutOfCredits, absl::StatusCode::kFailedPrecondition, 402,
                      "insufficient_credits", "Insufficient credits.");
  ExpectLimitsReported(broke.info, 402, "no credits");
  EXPECT_EQ(broke.info.credits_balance, 0);

  Control("POST", "/_sim/teams/alpha", R"({"add_credits": 10})");
  Result<std::vector<Account>> topped_up = Run(client_->ListAccounts());
  ASSERT_TRUE(topped_up.ok()) << topped_up.status();
  EXPECT_EQ(topped_up.info.credits_balance, 9);
}

// ---------------------------------------------------------------------------------------------
// Injected faults.

TEST_F(UpstreamContractTest, ServerErrorsAreRetryableAndGatewayErrorsOnMutationsUnknown) {
  AddFaults(R"({"team": "alpha", "error_rate": 1.0, "error_status": 503})");
  Result<std::vector<Account>> read = Run(client_->ListAccounts());
  ExpectUpstreamError(read, ErrorKind::kRetryable, absl::StatusCode::kUnavailable, 503,
                      "internal_error", "Internal Server Error");
  Result<QueueItem> send =
      Run(client_->SendMassMessage(kAccount, {.text = "x", .user_lists = {"900"}}));
  ExpectUpstreamError(send, ErrorKind::kRetryable, absl::StatusCode::kUnavailable, 503,
                      "internal_error", "Internal Server Error");

  // 502 is a gateway that may have lost an answer: a read is retryable, a mutation unknown.
  ClearFaults();
  AddFaults(R"({"team": "alpha", "error_rate": 1.0, "error_status": 502})");
  ExpectUpstreamError(Run(client_->ListMassMessageQueue(kAccount)), ErrorKind::kRetryable,
                      absl::StatusCode::kUnavailable, 502, "internal_error",
                      "Internal Server Error");
  ExpectUpstreamError(Run(client_->SendMassMessage(kAccount, {.text = "x", .user_lists = {"900"}})),
                      ErrorKind::kUnknownOutcome, absl::StatusCode::kUnknown, 502, "internal_error",
                      "Internal Server Error");

  ClearFaults();
  // The simulator applied none of them, which reconciling with the queue shows.
  Result<std::vector<QueueItem>> queue = Run(client_->ListMassMessageQueue(kAccount));
  ASSERT_TRUE(queue.ok()) << queue.status();
  EXPECT_TRUE(queue.value->empty());
  EXPECT_TRUE(LedgerMessages().empty());
}

TEST_F(UpstreamContractTest, ConnectionResetAfterTheRequestIsAnUnknownOutcome) {
  AddFaults(R"({"team": "alpha", "reset_rate": 1.0})");
  ExpectUnknownOutcome(Run(client_->ListAccounts()));
  ExpectUnknownOutcome(
      Run(client_->SendMassMessage(kAccount, {.text = "Reset", .user_lists = {"900"}})));
  EXPECT_EQ(Control("GET", "/_sim/stats").at("faults").at("resets"), 2);

  // A reset applies nothing: reconciliation finds no message. The pool recovers.
  ClearFaults();
  Result<std::vector<QueueItem>> queue = Run(client_->ListMassMessageQueue(kAccount));
  ASSERT_TRUE(queue.ok()) << queue.status();
  EXPECT_TRUE(queue.value->empty());
  EXPECT_TRUE(LedgerMessages().empty());
}

TEST_F(UpstreamContractTest, UpstreamThatIsGoneIsRetryable) {
  Result<std::vector<Account>> before = Run(client_->ListAccounts());
  ASSERT_TRUE(before.ok()) << before.status();
  // The pooled connection dies with the process; the next call notices before writing, and
  // connecting is refused: nothing was sent, so retrying is safe.
  sim_->process().Kill();
  Result<QueueItem> send =
      Run(client_->SendMassMessage(kAccount, {.text = "Nobody home", .user_lists = {"900"}}));
  ASSERT_FALSE(send.ok());
  ASSERT_TRUE(send.error().has_value()) << send.status();
  EXPECT_EQ(send.error()->kind, ErrorKind::kRetryable) << send.status();
  EXPECT_EQ(send.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(send.error()->request_written);
  EXPECT_EQ(send.info.http_status, 0);
}

TEST_F(UpstreamContractTest, LostResponseToASendIsAnUnknownOutcomeAndTheMessageExists) {
  AddFaults(R"({"methods": ["POST"], "path_contains": "/mass-messaging",
                "commit_then_lose_rate": 1, "count": 1})");
  Result<QueueItem> lost =
      Run(client_->SendMassMessage(kAccount, {.text = "Lost answer", .user_lists = {"900"}}));
  ExpectUnknownOutcome(lost);

  // The upstream created the message: this is what Herald reconciles before any retry.
  json::array messages = LedgerMessages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].at("text"), "Lost answer");
  EXPECT_EQ(messages[0].at("recipients"), 3);
  const int64_t id = messages[0].at("id").as_int64();
  std::optional<QueueItem> item = FindInQueue(id);
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->total, 3);

  // The rule covered one request; a blind resend would have made a second message.
  const int64_t resent = Send({.text = "Lost answer", .user_lists = {"900"}});
  EXPECT_GT(resent, id);
  EXPECT_EQ(LedgerMessages().size(), 2u);
}

}  // namespace
}  // namespace herald::upstream
