// The upstream simulator binary over real sockets: every endpoint's happy path and errors,
// limits and credits, delivery over time, unsend, fault injection, and signed webhooks checked
// by a receiver in the test against the simulator's ledger.
#include <atomic>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <absl/time/clock.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <herald/common/strings.h>
#include <herald/testing/net.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/subprocess.h>
#include <herald/testing/wait.h>

namespace herald::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kSeed[] = R"({
  "seed": 5,
  "teams": [
    {"id": "alpha", "api_keys": ["key-alpha"], "rate_limit_per_minute": 100000,
     "credits": 1000000,
     "accounts": [
       {"id": "acct_alpha1", "username": "alpha_one",
        "fans": [{"id": 101}, {"id": 102}, {"id": 103}, {"id": 104}, {"id": 105},
                 {"id": 106}, {"id": 107}, {"id": 108}, {"id": 109}, {"id": 110},
                 {"id": 111, "active": false}],
        "lists": [{"id": 900, "name": "VIP", "users": [101, 102, 103]}]},
       {"id": "acct_alpha2", "fans": 20}]},
    {"id": "beta", "api_keys": ["key-beta"], "rate_limit_per_minute": 5,
     "accounts": [{"id": "acct_beta1", "fans": 5}]},
    {"id": "poor", "api_keys": ["key-poor"], "credits": 3,
     "accounts": [{"id": "acct_poor1", "fans": 5}]}
  ]})";

std::string Hmac(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    static constexpr char kHex[] = "0123456789abcdef";
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

// Webhook idempotency keys are "evt_" and 40 lower-case hex digits.
bool IsEventKey(std::string_view key) {
  constexpr std::string_view kPrefix = "evt_";
  if (key.size() != kPrefix.size() + 40 || !key.starts_with(kPrefix)) return false;
  return key.substr(kPrefix.size()).find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string Str(const json::value& v) { return std::string(v.as_string()); }

int64_t Cents(const json::value& v) {
  if (v.is_int64()) return v.as_int64() * 100;
  return std::llround(v.as_double() * 100);
}

// A webhook endpoint: a Beast server on a free port that records every request and answers
// 500 to the first attempt of each idempotency key when asked to.
class WebhookReceiver {
 public:
  struct Delivery {
    std::string body;
    std::string signature;
    std::string key;
    std::string user_agent;
    std::string content_type;
    std::string redelivery_of;  // X-OFAPI-Redelivery-Of
    int status = 0;
  };

  // `stall_reused`: the first request that arrives on a connection already used is answered
  // only after this long (zero: never stalls).
  explicit WebhookReceiver(bool fail_first_attempt,
                           absl::Duration stall_reused = absl::ZeroDuration())
      : fail_first_(fail_first_attempt),
        stall_reused_(stall_reused),
        acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~WebhookReceiver() {
    io_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }
  std::vector<Delivery> deliveries() const {
    std::lock_guard lock(mu_);
    return deliveries_;
  }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io_, Session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    constexpr auto token = asio::as_tuple(asio::use_awaitable);
    for (int on_connection = 1;; ++on_connection) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(stream, buffer, req, token);
      if (ec) break;
      Delivery d{.body = req.body(),
                 .signature = std::string(req["Signature"]),
                 .key = std::string(req["X-OFAPI-Idempotency-Key"]),
                 .user_agent = std::string(req[http::field::user_agent]),
                 .content_type = std::string(req[http::field::content_type]),
                 .redelivery_of = std::string(req["X-OFAPI-Redelivery-Of"])};
      {
        std::lock_guard lock(mu_);
        const bool first = seen_.insert(d.key).second;
        d.status = fail_first_ && first ? 500 : 200;
        deliveries_.push_back(d);
      }
      if (on_connection > 1 && stall_reused_ > absl::ZeroDuration() && !stalled_.exchange(true)) {
        asio::steady_timer timer(io_, absl::ToChronoNanoseconds(stall_reused_));
        co_await timer.async_wait(token);
      }
      http::response<http::string_body> res(static_cast<http::status>(d.status), 11);
      res.keep_alive(req.keep_alive());
      res.body() = "ok";
      res.prepare_payload();
      auto [wec, w] = co_await http::async_write(stream, res, token);
      if (wec || !req.keep_alive()) break;
    }
  }

  const bool fail_first_;
  const absl::Duration stall_reused_;
  std::atomic<bool> stalled_{false};
  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::set<std::string> seen_;
  std::vector<Delivery> deliveries_;
};

class UpstreamSimTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(std::vector<std::string> extra) {
    const std::string dir = MakeTempDir("upstream-sim-test");
    const std::string seed_path = dir + "/seed.json";
    std::ofstream(seed_path) << kSeed;
    std::vector<std::string> args = {"--seed_file=" + seed_path, "--delivery_rate=100000",
                                     "--purchase_delay_min=0s", "--purchase_delay_max=0s",
                                     "--tick_interval=5ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    sim_.reset();
    auto sim = SimulatorProcess::Start({.args = args});
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = std::move(*sim);
  }

  uint16_t port() const { return sim_->port(); }

  // A request with the team's key; status 0 when the transport failed.
  HttpResponse Call(std::string_view method, std::string_view target, std::string_view body = "",
                    std::string_view key = "key-alpha",
                    std::string_view content_type = "application/json") {
    std::map<std::string, std::string> headers;
    if (!key.empty()) headers["Authorization"] = StrCat("Bearer ", key);
    if (!body.empty()) headers["Content-Type"] = std::string(content_type);
    auto res = HttpRequest(port(), method, target, body, headers);
    if (!res.ok()) return HttpResponse{};
    return *res;
  }

  json::value Body(const HttpResponse& res) {
    boost::system::error_code ec;
    json::value v = json::parse(res.body, ec);
    EXPECT_FALSE(ec) << "not JSON: " << res.body;
    return v;
  }

  json::value Control(std::string_view method, std::string_view target,
                      std::string_view body = "") {
    auto res = HttpRequest(port(), method, target, body, {{"Content-Type", "application/json"}});
    EXPECT_TRUE(res.ok()) << res.status();
    if (!res.ok()) return nullptr;
    EXPECT_EQ(res->status, 200) << target << ": " << res->body;
    return json::parse(res->body);
  }

  void Behave(std::string_view settings) { Control("POST", "/_sim/behavior", settings); }

  // The ledger entry of one account.
  json::value Ledger(std::string_view account, bool purchases = false) {
    json::value l = Control(
        "GET", StrCat("/_sim/ledger?account=", account, purchases ? "&purchases=true" : ""));
    if (!l.is_object() || l.at("accounts").as_array().empty()) return nullptr;
    json::value entry = l.at("accounts").as_array()[0];
    entry.as_object()["_webhooks"] = l.at("webhooks");
    return entry;
  }

  std::string Upload(std::string_view account) {
    HttpResponse res = Call("POST", StrCat("/api/", account, "/media/upload"),
                            R"({"file_url":"https://cdn.example.com/photo.jpg"})");
    EXPECT_EQ(res.status, 200) << res.body;
    if (res.status != 200) return "";
    return Str(Body(res).at("prefixed_id"));
  }

  int64_t Send(std::string_view account, std::string_view body) {
    HttpResponse res = Call("POST", StrCat("/api/", account, "/mass-messaging"), body);
    EXPECT_EQ(res.status, 200) << res.body;
    if (res.status != 200) return 0;
    return Body(res).at("data").at("id").as_int64();
  }

  // The queue item of message `id` in the account's queue list.
  json::value QueueItem(std::string_view account, int64_t id) {
    HttpResponse res = Call("GET", StrCat("/api/", account, "/mass-messaging"));
    if (res.status != 200) return nullptr;
    const json::value body = Body(res);
    for (const json::value& item : body.at("data").as_array()) {
      if (item.at("id").as_int64() == id) return item;
    }
    return nullptr;
  }

  // The path and query of an absolute next_page link.
  static std::string PathOf(std::string_view url) {
    const size_t scheme = url.find("://");
    return std::string(url.substr(url.find('/', scheme + 3)));
  }

  std::unique_ptr<SimulatorProcess> sim_;
};

TEST_F(UpstreamSimTest, AccountsWithEnvelopeAndHeaders) {
  HttpResponse res = Call("GET", "/api/accounts");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.headers["content-type"], "application/json");
  EXPECT_EQ(res.headers["x-ofapi-credits-used"], "1");
  EXPECT_EQ(res.headers["x-ofapi-credits-balance"], "999999");
  EXPECT_EQ(res.headers["x-rate-limit-limit-minute"], "100000");
  EXPECT_FALSE(res.headers["x-rate-limit-remaining-minute"].empty());
  json::value body = Body(res);
  const json::array& accounts = body.at("data").as_array();
  ASSERT_EQ(accounts.size(), 2u);
  EXPECT_EQ(accounts[0].at("id"), "acct_alpha1");
  EXPECT_EQ(accounts[0].at("onlyfans_username"), "alpha_one");
  EXPECT_EQ(body.at("_meta").at("_credits").at("used"), 1);
  EXPECT_TRUE(body.at("_meta").at("_rate_limits").at("limit_day").is_null());
  EXPECT_TRUE(body.at("_meta").at("_rate_limits").at("notice").is_string());
}

TEST_F(UpstreamSimTest, MissingOrBadKeyIs401WithTheVendorBody) {
  for (std::string_view key : {"", "wrong"}) {
    HttpResponse res = Call("GET", "/api/accounts", "", key);
    EXPECT_EQ(res.status, 401);
    EXPECT_EQ(Str(Body(res).at("error")),
              "Unauthorized. Go to https://app.onlyfansapi.com/api-keys to get your API key.");
  }
}

TEST_F(UpstreamSimTest, AccountsOfOtherTeamsAndUnknownAccountsAre404) {
  for (std::string_view account : {"acct_beta1", "acct_nope"}) {
    HttpResponse res = Call("GET", StrCat("/api/", account, "/mass-messaging"));
    EXPECT_EQ(res.status, 404);
    EXPECT_EQ(Body(res).at("code"), "account_not_found");
    EXPECT_TRUE(Body(res).at("error").is_string());
  }
  EXPECT_EQ(Call("GET", "/api/acct_beta1/mass-messaging", "", "key-beta").status, 200);
}

TEST_F(UpstreamSimTest, MassMessagingEndpoints) {
  const int64_t id = Send("acct_alpha1", R"({"text":"Hello <b>fans</b>","userLists":["900"],
                                             "userIds":["104"]})");
  ASSERT_GT(id, 0);
  ASSERT_TRUE(WaitFor([&] {
    json::value item = QueueItem("acct_alpha1", id);
    return item.is_object() && item.at("isDone").as_bool();
  }));
  json::value item = QueueItem("acct_alpha1", id);
  EXPECT_EQ(item.at("total"), 4);
  EXPECT_EQ(item.at("pending"), 0);
  EXPECT_FALSE(item.at("isCanceled").as_bool());

  json::value detail = Body(Call("GET", StrCat("/api/acct_alpha1/mass-messaging/", id)));
  EXPECT_TRUE(detail.at("data").at("success").as_bool());
  EXPECT_EQ(detail.at("data").at("queue").at("text"), "<p>Hello <b>fans</b></p>");
  EXPECT_EQ(detail.at("data").at("queue").at("sentCount"), 4);

  const std::string day = absl::FormatTime("%Y-%m-%d", absl::Now(), absl::UTCTimeZone());
  const std::string tomorrow =
      absl::FormatTime("%Y-%m-%d", absl::Now() + absl::Hours(24), absl::UTCTimeZone());
  for (const std::string& query :
       {StrCat("startDate=", day, "%2000:00:00&endDate=", tomorrow, "%2000:00:00&limit=5"),
        StrCat("start_date=", day, "&end_date=", tomorrow, "&query=hello")}) {
    HttpResponse res = Call("GET", StrCat("/api/acct_alpha1/mass-messaging/overview?", query));
    ASSERT_EQ(res.status, 200) << res.body;
    json::value data = Body(res).at("data");
    EXPECT_FALSE(data.at("hasMore").as_bool());
    ASSERT_EQ(data.at("items").as_array().size(), 1u) << query;
    EXPECT_EQ(data.at("items").as_array()[0].at("id"), id);
    EXPECT_EQ(data.at("items").as_array()[0].at("rawText"), "Hello <b>fans</b>");
  }
  HttpResponse none = Call("GET", "/api/acct_alpha1/mass-messaging/overview?query=absent");
  EXPECT_TRUE(Body(none).at("data").at("items").as_array().empty());
  HttpResponse bad = Call(
      "GET",
      StrCat("/api/acct_alpha1/mass-messaging/overview?startDate=", tomorrow, "&endDate=", day));
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(Body(bad).at("code"), "invalid_date_range");

  // Update is for queues that have not started; this one has.
  HttpResponse update =
      Call("PUT", StrCat("/api/acct_alpha1/mass-messaging/", id), R"({"text":"changed"})");
  EXPECT_EQ(update.status, 422);
  EXPECT_EQ(Body(update).at("code"), "cannot_update");
  EXPECT_EQ(Call("GET", "/api/acct_alpha1/mass-messaging/123").status, 404);
}

TEST_F(UpstreamSimTest, ScheduledSendWaitsAndCanBeUpdatedBeforeItsDate) {
  const absl::Time at = absl::Now() + absl::Seconds(2);
  const int64_t id =
      Send("acct_alpha1",
           StrCat(R"({"text":"later","userIds":[101,102],"scheduledDate":")",
                  absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone()), R"("})"));
  ASSERT_GT(id, 0);
  json::value item = QueueItem("acct_alpha1", id);
  EXPECT_EQ(item.at("pending"), 2);
  EXPECT_FALSE(item.at("isDone").as_bool());
  EXPECT_TRUE(item.at("canUnsend").as_bool());

  HttpResponse update = Call("PUT", StrCat("/api/acct_alpha1/mass-messaging/", id),
                             R"({"text":"later, edited","userLists":["900"]})");
  ASSERT_EQ(update.status, 200) << update.body;
  EXPECT_EQ(Body(update).at("data").at("total"), 3);  // 101, 102 and the VIP list: 101..103

  ASSERT_TRUE(WaitFor(
      [&] {
        json::value i = QueueItem("acct_alpha1", id);
        return i.is_object() && i.at("isDone").as_bool();
      },
      absl::Seconds(15)));
  EXPECT_GE(absl::Now(), at);
  json::value ledger = Ledger("acct_alpha1");
  EXPECT_EQ(ledger.at("mass_messages").as_array()[0].at("text"), "later, edited");
  EXPECT_EQ(ledger.at("mass_messages").as_array()[0].at("updates"), 1);
  EXPECT_FALSE(ledger.at("mass_messages").as_array()[0].as_object().contains("recipient_ids"));
  // Asked for, the ledger names who received it.
  const json::value with_ids = Control("GET", "/_sim/ledger?account=acct_alpha1&recipients=true");
  EXPECT_EQ(
      with_ids.at("accounts").as_array()[0].at("mass_messages").as_array()[0].at("recipient_ids"),
      json::parse("[101,102,103]"));
}

TEST_F(UpstreamSimTest, DeliveryProgressesOverTimeUntilDone) {
  Behave(R"({"delivery_rate": 5})");
  const int64_t id = Send("acct_alpha2", R"({"text":"slow","userLists":["fans"]})");
  ASSERT_GT(id, 0);
  const int64_t total = QueueItem("acct_alpha2", id).at("total").as_int64();
  ASSERT_GE(total, 10);
  bool saw_progress = false;
  ASSERT_TRUE(WaitFor(
      [&] {
        json::value item = QueueItem("acct_alpha2", id);
        if (!item.is_object()) return false;
        const int64_t pending = item.at("pending").as_int64();
        if (pending > 0 && pending < total) saw_progress = true;
        return item.at("isDone").as_bool();
      },
      absl::Seconds(20)));
  EXPECT_TRUE(saw_progress);
  json::value ledger = Ledger("acct_alpha2");
  EXPECT_EQ(ledger.at("mass_messages").as_array()[0].at("sent"), total);
  EXPECT_EQ(ledger.at("mass_messages").as_array()[0].at("state"), "done");
}

TEST_F(UpstreamSimTest, UnsendWithinTheWindowOnly) {
  Behave(R"({"delivery_rate": 2, "unsend_window_ms": 1000})");
  const int64_t early = Send("acct_alpha1", R"({"text":"oops","userLists":["fans"]})");
  HttpResponse del = Call("DELETE", StrCat("/api/acct_alpha1/mass-messaging/", early));
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_TRUE(Body(del).at("data").at("success").as_bool());
  EXPECT_TRUE(Body(del).at("data").at("queue").at("isCanceled").as_bool());
  json::value item = QueueItem("acct_alpha1", early);
  EXPECT_TRUE(item.at("isCanceled").as_bool());
  EXPECT_FALSE(item.at("canUnsend").as_bool());

  const int64_t late = Send("acct_alpha1", R"({"text":"sent","userLists":["fans"]})");
  ASSERT_TRUE(WaitFor([&] {
    json::value i = QueueItem("acct_alpha1", late);
    return i.is_object() && !i.at("canUnsend").as_bool();
  }));
  HttpResponse too_late = Call("DELETE", StrCat("/api/acct_alpha1/mass-messaging/", late));
  EXPECT_EQ(too_late.status, 422);
  EXPECT_EQ(Body(too_late).at("code"), "cannot_unsend");

  // A scheduled message can be deleted any time before it starts.
  const int64_t scheduled = Send("acct_alpha1", R"({"text":"next year","userIds":[101],
                                                   "scheduledDate":"2999-01-01 00:00:00"})");
  EXPECT_EQ(Call("DELETE", StrCat("/api/acct_alpha1/mass-messaging/", scheduled)).status, 200);

  json::value ledger = Ledger("acct_alpha1");
  std::map<int64_t, std::string> states;
  for (const json::value& m : ledger.at("mass_messages").as_array()) {
    states[m.at("id").as_int64()] = Str(m.at("state"));
  }
  EXPECT_EQ(states[early], "canceled");
  EXPECT_EQ(states[scheduled], "canceled");
  EXPECT_NE(states[late], "canceled");
}

TEST_F(UpstreamSimTest, ValidationErrors) {
  const std::string media = Upload("acct_alpha1");
  struct Case {
    std::string body;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {R"({"text":"t","userLists":["fans"],"price":2.99,"mediaFiles":["1"]})", 422,
       "invalid_price"},
      {R"({"text":"t","userLists":["fans"],"price":200.5,"mediaFiles":["1"]})", 422,
       "invalid_price"},
      {R"({"text":"t","userLists":["fans"],"price":5.555,"mediaFiles":["1"]})", 422,
       "invalid_price"},
      {R"({"text":"t","userLists":["fans"],"price":5})", 422, "media_required"},
      {R"({"text":"t","userLists":["fans"],"mediaFiles":["1"],"previews":["2"]})", 422,
       "invalid_previews"},
      {R"({"userLists":["fans"]})", 422, "text_required"},
      {R"({"text":"t"})", 422, "recipients_required"},
      {R"({"text":"t","userLists":["4242"]})", 422, "invalid_user_list"},
      {R"({"text":"t","userIds":["999999"]})", 422, "invalid_user_ids"},
      {R"({"text":"t","userIds":[101],"mediaFiles":["ofapi_media_UNKNOWN"]})", 422,
       "media_not_found"},
      {R"({"text": "t", "userIds": [101)", 400, "invalid_json"},
  };
  for (const Case& c : cases) {
    HttpResponse res = Call("POST", "/api/acct_alpha1/mass-messaging", c.body);
    EXPECT_EQ(res.status, c.status) << c.body << " -> " << res.body;
    json::value body = Body(res);
    EXPECT_EQ(body.at("code"), c.code.c_str()) << c.body;
    EXPECT_TRUE(body.at("error").is_string());
    EXPECT_EQ(res.headers["x-ofapi-credits-used"], "0");
  }
  // Prices with two decimals inside the range are fine, and nothing above was created.
  EXPECT_GT(Send("acct_alpha1", StrCat(R"({"text":"t","userIds":[101],"price":3.5,"mediaFiles":[")",
                                       media, R"("],"previews":[")", media, R"("]})")),
            0);
  EXPECT_EQ(Ledger("acct_alpha1").at("mass_messages").as_array().size(), 1u);
}

TEST_F(UpstreamSimTest, MediaUploadsAreSingleUseAndPerAccount) {
  const std::string boundary = "sim-boundary";
  const std::string multipart = StrCat(
      "--", boundary, "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.mp4\"\r\n",
      "Content-Type: video/mp4\r\n\r\n", std::string(1'500'000, 'v'), "\r\n--", boundary, "--\r\n");
  HttpResponse up = Call("POST", "/api/acct_alpha1/media/upload", multipart, "key-alpha",
                         StrCat("multipart/form-data; boundary=", boundary));
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(up.headers["x-ofapi-credits-used"], "6");  // 2 started MB x 3 credits
  json::value flat = Body(up);
  EXPECT_FALSE(flat.as_object().contains("data"));
  const std::string id = Str(flat.at("prefixed_id"));
  EXPECT_THAT(id, StartsWith("ofapi_media_"));
  EXPECT_EQ(flat.at("file_name"), "v.mp4");

  const std::string url_form =
      StrCat("--", boundary, "\r\nContent-Disposition: form-data; name=\"file_url\"\r\n\r\n",
             "https://cdn.example.com/a.jpg\r\n--", boundary, "--\r\n");
  HttpResponse by_url = Call("POST", "/api/acct_alpha1/media/upload", url_form, "key-alpha",
                             StrCat("multipart/form-data; boundary=", boundary));
  ASSERT_EQ(by_url.status, 200) << by_url.body;

  HttpResponse status = Call("GET", StrCat("/api/acct_alpha1/media/uploads/", id, "/status"));
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(Body(status).at("status"), "completed");
  EXPECT_EQ(status.headers["x-ofapi-credits-used"], "0");

  const std::string send =
      StrCat(R"({"text":"pic","userIds":[101],"price":10,"mediaFiles":[")", id, R"("]})");
  EXPECT_GT(Send("acct_alpha1", send), 0);
  HttpResponse reuse = Call("POST", "/api/acct_alpha1/mass-messaging", send);
  EXPECT_EQ(reuse.status, 422);
  EXPECT_EQ(Body(reuse).at("code"), "media_already_used");
  HttpResponse foreign = Call("POST", "/api/acct_alpha2/mass-messaging",
                              StrCat(R"({"text":"x","userLists":["fans"],"mediaFiles":[")",
                                     Str(Body(by_url).at("prefixed_id")), R"("]})"));
  EXPECT_EQ(foreign.status, 422);
  EXPECT_EQ(Body(foreign).at("code"), "media_not_found");
  HttpResponse neither = Call("POST", "/api/acct_alpha1/media/upload", "{}");
  EXPECT_EQ(neither.status, 422);
  EXPECT_EQ(Body(neither).at("code"), "file_required");
}

// The control endpoint spends an account's unused uploads, as a post made outside the API would:
// a send with one of them is refused as already used, and a fresh upload still sends.
TEST_F(UpstreamSimTest, SpendingAnAccountsUploadsRefusesTheirSendUntilUploadedAgain) {
  const std::string spent = Upload("acct_alpha1");
  const std::string other_account = Upload("acct_alpha2");
  const std::string used = Upload("acct_alpha1");
  auto send = [](std::string_view media) {
    return StrCat(R"({"text":"pic","userLists":["fans"],"price":10,"mediaFiles":[")", media,
                  R"("]})");
  };
  ASSERT_GT(Send("acct_alpha1", send(used)), 0);

  EXPECT_EQ(Control("POST", "/_sim/accounts/acct_alpha1/media/spend").at("spent"), 1);
  HttpResponse refused = Call("POST", "/api/acct_alpha1/mass-messaging", send(spent));
  EXPECT_EQ(refused.status, 422) << refused.body;
  EXPECT_EQ(Body(refused).at("code"), "media_already_used");
  EXPECT_GT(Send("acct_alpha1", send(Upload("acct_alpha1"))), 0);
  EXPECT_GT(Send("acct_alpha2", send(other_account)), 0);  // another account's are untouched

  auto unknown = HttpRequest(port(), "POST", "/_sim/accounts/acct_nobody/media/spend", "", {});
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_EQ(unknown->status, 404);
}

TEST_F(UpstreamSimTest, UserLists) {
  HttpResponse lists = Call("GET", "/api/acct_alpha1/user-lists?limit=50");
  ASSERT_EQ(lists.status, 200);
  std::map<std::string, int64_t> counts;
  const json::value all = Body(lists);
  for (const json::value& l : all.at("data").as_array()) {
    counts[Str(l.at("id"))] = l.at("usersCount").as_int64();
  }
  EXPECT_EQ(counts["fans"], 10);
  EXPECT_EQ(counts["expired"], 1);
  EXPECT_EQ(counts["900"], 3);
  EXPECT_EQ(Call("GET", "/api/acct_alpha1/user-lists?limit=5").status, 422);

  HttpResponse created = Call("POST", "/api/acct_alpha1/user-lists", R"({"name":"Big spenders"})");
  ASSERT_EQ(created.status, 200) << created.body;
  const int64_t list = Body(created).at("data").at("id").as_int64();
  const std::string base = StrCat("/api/acct_alpha1/user-lists/", list);
  HttpResponse added = Call("POST", base + "/users", R"({"ids":[101,"102",103]})");
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(Body(added).at("data").at(std::to_string(list)).as_array().size(), 3u);

  json::value page1 = Body(Call("GET", base + "/users?limit=2&offset=0")).at("data");
  EXPECT_EQ(page1.at("list").as_array().size(), 2u);
  EXPECT_TRUE(page1.at("hasMore").as_bool());
  EXPECT_EQ(page1.at("nextOffset"), 2);
  json::value page2 = Body(Call("GET", base + "/users?limit=2&offset=2")).at("data");
  EXPECT_EQ(page2.at("list").as_array().size(), 1u);
  EXPECT_FALSE(page2.at("hasMore").as_bool());
  EXPECT_EQ(page2.at("list").as_array()[0].at("id"), 103);
  json::value got = Body(Call("GET", base)).at("data");
  EXPECT_EQ(got.at("usersCount"), 3);
  EXPECT_EQ(got.at("name"), "Big spenders");

  HttpResponse long_name = Call("POST", "/api/acct_alpha1/user-lists",
                                StrCat(R"({"name":")", std::string(65, 'n'), "\"}"));
  EXPECT_EQ(long_name.status, 422);
  EXPECT_EQ(Body(long_name).at("code"), "invalid_name");
  std::string many = "{\"ids\":[";
  for (int i = 0; i < 101; ++i) StrAppend(&many, i ? "," : "", 101);
  many += "]}";
  HttpResponse too_many = Call("POST", base + "/users", many);
  EXPECT_EQ(too_many.status, 422);
  EXPECT_EQ(Body(too_many).at("code"), "too_many_ids");
  EXPECT_EQ(
      Body(Call("POST", "/api/acct_alpha1/user-lists/fans/users", R"({"ids":[101]})")).at("code"),
      "system_list");
  EXPECT_EQ(Call("GET", "/api/acct_alpha1/user-lists/424242").status, 404);
  // A message to the new list reaches its three members.
  const int64_t id = Send("acct_alpha1", StrCat(R"({"text":"hi","userLists":[")", list, R"("]})"));
  EXPECT_EQ(QueueItem("acct_alpha1", id).at("total"), 3);
}

TEST_F(UpstreamSimTest, UserListEditsPinsAndDeletion) {
  HttpResponse created = Call("POST", "/api/acct_alpha1/user-lists", R"({"name":"Regulars"})");
  ASSERT_EQ(created.status, 200) << created.body;
  const int64_t list = Body(created).at("data").at("id").as_int64();
  const std::string base = StrCat("/api/acct_alpha1/user-lists/", list);
  ASSERT_EQ(Call("POST", base + "/users", R"({"ids":[101,102,103]})").status, 200);
  auto code = [&](const HttpResponse& res, int status) {
    EXPECT_EQ(res.status, status) << res.body;
    EXPECT_EQ(res.headers.at("x-ofapi-credits-used"), "0");
    return Body(res).at("code");
  };

  // Update: rename and pin to the feed; bad bodies and system lists change nothing.
  HttpResponse updated = Call("PUT", base, R"({"name":"Best","isPinnedToFeed":true})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(updated.headers["x-ofapi-credits-used"], "1");
  EXPECT_EQ(Body(updated).at("data").at("name"), "Best");
  EXPECT_TRUE(Body(updated).at("data").at("isPinnedToFeed").as_bool());
  EXPECT_EQ(code(Call("PUT", base, R"({"isPinnedToFeed":false})"), 422), "name_required");
  EXPECT_EQ(code(Call("PUT", base, R"({"name":"X","isPinnedToFeed":1})"), 422),
            "invalid_pinned_to_feed");
  EXPECT_EQ(code(Call("PUT", "/api/acct_alpha1/user-lists/fans", R"({"name":"X"})"), 422),
            "system_list");
  json::value got = Body(Call("GET", base)).at("data");
  EXPECT_EQ(got.at("name"), "Best");
  EXPECT_TRUE(got.at("isPinnedToFeed").as_bool());
  EXPECT_EQ(got.at("usersCount"), 3);

  // Pins: members only (any fan in the lists the simulator keeps empty); "pinned" is a route.
  ASSERT_EQ(Call("POST", base + "/users/102/pin").status, 200);
  EXPECT_EQ(code(Call("POST", base + "/users/104/pin"), 422), "user_not_in_list");
  EXPECT_EQ(code(Call("POST", base + "/users/999/pin"), 404), "user_not_found");
  ASSERT_EQ(Call("POST", "/api/acct_alpha1/user-lists/friends/users/105/pin").status, 200);
  json::value pinned = Body(Call("GET", base + "/users/pinned?limit=100")).at("data");
  ASSERT_EQ(pinned.at("list").as_array().size(), 1u);
  EXPECT_EQ(pinned.at("list").as_array()[0].at("id"), 102);
  EXPECT_FALSE(pinned.at("hasMore").as_bool());
  json::value friends =
      Body(Call("GET", "/api/acct_alpha1/user-lists/friends/users/pinned")).at("data");
  ASSERT_EQ(friends.at("list").as_array().size(), 1u);
  EXPECT_EQ(friends.at("list").as_array()[0].at("id"), 105);
  EXPECT_EQ(code(Call("GET", base + "/users/pinned?limit=101"), 422), "invalid_limit");

  // Remove one, then clear.
  HttpResponse removed = Call("DELETE", base + "/users/103");
  ASSERT_EQ(removed.status, 200) << removed.body;
  json::value data = Body(removed).at("data");
  EXPECT_EQ(data.at("list").at("usersCount"), 2);
  EXPECT_EQ(data.at("userState").at("id"), list);
  EXPECT_FALSE(data.at("userState").at("hasUser").as_bool());
  EXPECT_EQ(code(Call("DELETE", base + "/users/999"), 404), "user_not_found");
  EXPECT_EQ(code(Call("DELETE", "/api/acct_alpha1/user-lists/fans/users/101"), 422), "system_list");
  HttpResponse cleared = Call("DELETE", base + "/users");
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_EQ(Body(cleared).at("data").at("usersCount"), 0);
  EXPECT_TRUE(Body(Call("GET", base + "/users")).at("data").at("list").as_array().empty());
  EXPECT_TRUE(Body(Call("GET", base + "/users/pinned")).at("data").at("list").as_array().empty());

  // Delete: gone from the API, the control view and sends.
  EXPECT_EQ(code(Call("DELETE", "/api/acct_alpha1/user-lists/expired"), 422), "system_list");
  HttpResponse deleted = Call("DELETE", base);
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_TRUE(Body(deleted).at("data").at("success").as_bool());
  EXPECT_EQ(code(Call("GET", base), 404), "list_not_found");
  EXPECT_EQ(code(Call("DELETE", base), 404), "list_not_found");
  EXPECT_EQ(code(Call("POST", "/api/acct_alpha1/mass-messaging",
                      StrCat(R"({"text":"hi","userLists":[")", list, R"("]})")),
                 422),
            "invalid_user_list");
  EXPECT_EQ(Control("GET", "/_sim/stats").at("lists_deleted"), 1);
  const json::value teams = Control("GET", "/_sim/teams");
  for (const json::value& team : teams.as_array()) {
    for (const json::value& account : team.at("accounts").as_array()) {
      for (const json::value& l : account.at("lists").as_array()) EXPECT_NE(l.at("id"), list);
    }
  }
  // The seeded list is untouched.
  EXPECT_EQ(Body(Call("GET", "/api/acct_alpha1/user-lists/900")).at("data").at("usersCount"), 3);
}

TEST_F(UpstreamSimTest, StatisticsAndMassMessagesChart) {
  Behave(R"({"purchase_probability": 1, "fan_behavior": "uniform",
             "purchase_delay_min_ms": 0, "purchase_delay_max_ms": 50})");
  const std::string media = Upload("acct_alpha1");
  const int64_t ppv = Send("acct_alpha1", StrCat(R"({"text":"ppv","userLists":["900"],)",
                                                 R"("price":5,"mediaFiles":[")", media, R"("]})"));
  const int64_t saved =
      Send("acct_alpha1", R"({"text":"later","userIds":["101"],"saveForLater":true})");
  ASSERT_TRUE(WaitFor([&] {
    json::value l = Ledger("acct_alpha1");
    return l.is_object() && l.at("totals").at("purchases") == 3;
  }));

  auto ids = [&](std::string_view type) {
    HttpResponse res = Call("GET", StrCat("/api/acct_alpha1/mass-messaging/statistics?", type));
    EXPECT_EQ(res.status, 200) << res.body;
    std::vector<int64_t> out;
    const json::value body = Body(res);
    for (const json::value& item : body.at("data").at("list").as_array()) {
      out.push_back(item.at("id").as_int64());
    }
    return out;
  };
  EXPECT_EQ(ids(""), std::vector<int64_t>{ppv});
  EXPECT_EQ(ids("type=scheduled"), std::vector<int64_t>{saved});
  EXPECT_TRUE(ids("type=unsent").empty());
  HttpResponse bad_type = Call("GET", "/api/acct_alpha1/mass-messaging/statistics?type=x");
  EXPECT_EQ(bad_type.status, 422);
  EXPECT_EQ(Body(bad_type).at("code"), "invalid_type");
  EXPECT_EQ(bad_type.headers["x-ofapi-credits-used"], "0");

  const std::string day = absl::FormatTime("%Y-%m-%d", absl::Now(), absl::UTCTimeZone());
  const std::string tomorrow =
      absl::FormatTime("%Y-%m-%d", absl::Now() + absl::Hours(24), absl::UTCTimeZone());
  const std::string chart = "/api/acct_alpha1/engagement/messages/mass-messages/chart";
  HttpResponse res = Call(
      "GET", StrCat(chart, "?startDate=", day, "%2000:00:00&endDate=", tomorrow, "%2000:00:00"));
  ASSERT_EQ(res.status, 200) << res.body;
  json::value data = Body(res).at("data");
  const json::array& messages = data.at("group_messages").at("chart").as_array();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(Str(messages[0].at("date")), day);
  EXPECT_EQ(messages[0].at("count"), 1);  // the saved message has not started
  EXPECT_EQ(data.at("group_messages").at("total"), 1);
  EXPECT_EQ(data.at("group_messages").at("delta"), 1);
  EXPECT_EQ(data.at("group_messages_purchases").at("chart").as_array()[0].at("count"), 3);
  EXPECT_EQ(data.at("group_messages_purchases").at("total"), 3);
  EXPECT_EQ(data.at("group_messages_purchases").at("delta"), 3);
  HttpResponse bad =
      Call("GET", StrCat(chart, "?startDate=", tomorrow, "&endDate=", day, "&withTotal=false"));
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(Body(bad).at("code"), "invalid_date_range");
}

TEST_F(UpstreamSimTest, EngagementTopMessageAndBuyers) {
  Behave(R"({"purchase_probability": 1, "fan_behavior": "uniform"})");
  // A message nobody bought (a free one) is no top message.
  Send("acct_alpha1", R"({"text":"free","userLists":["fans"]})");
  EXPECT_TRUE(Body(Call("GET", "/api/acct_alpha1/engagement/messages/top-message"))
                  .at("data")
                  .at("purchases")
                  .is_null());
  const std::string media = Upload("acct_alpha1");
  const int64_t id =
      Send("acct_alpha1", StrCat(R"({"text":"ppv","userLists":["fans"],)",
                                 R"("price":4.99,"mediaFiles":[")", media, R"("]})"));
  ASSERT_TRUE(WaitFor([&] {
    json::value l = Ledger("acct_alpha1");
    return l.is_object() && l.at("totals").at("purchases") == 10;
  }));
  json::value top = Body(Call("GET", "/api/acct_alpha1/engagement/messages/top-message"))
                        .at("data")
                        .at("purchases");
  EXPECT_EQ(top.at("id"), id);
  EXPECT_EQ(top.at("purchasedCount"), 10);
  EXPECT_EQ(top.at("totalRevenueGenerated"), "49.90");
  EXPECT_EQ(top.at("price"), "4.99");

  HttpResponse list = Call("GET", "/api/acct_alpha1/engagement/messages/mass-messages?limit=1");
  ASSERT_EQ(list.status, 200);
  EXPECT_TRUE(Body(list).at("_pagination").as_object().contains("next_page"));

  std::set<int64_t> buyers;
  std::string next = StrCat("/api/acct_alpha1/engagement/messages/", id, "/buyers?limit=3");
  for (int page = 0; page < 10 && !next.empty(); ++page) {
    HttpResponse res = Call("GET", next);
    ASSERT_EQ(res.status, 200) << res.body;
    json::value body = Body(res);
    for (const json::value& fan : body.at("data").at("list").as_array()) {
      buyers.insert(fan.at("id").as_int64());
    }
    const json::value& link = body.at("_pagination").at("next_page");
    EXPECT_EQ(link.is_string(), body.at("data").at("hasMore").as_bool());
    next = link.is_string() ? PathOf(Str(link)) : "";
  }
  EXPECT_EQ(buyers.size(), 10u);
  EXPECT_TRUE(next.empty());

  // With a shortfall, pages of 4 asked hold 3: following next_page reads every buyer once;
  // stepping the offset by the limit asked for would skip one a page.
  Behave(R"({"buyer_page_shortfall": 1})");
  std::vector<int64_t> linked;
  next = StrCat("/api/acct_alpha1/engagement/messages/", id, "/buyers?limit=4");
  for (int page = 0; page < 10 && !next.empty(); ++page) {
    json::value body = Body(Call("GET", next));
    const json::array& fans = body.at("data").at("list").as_array();
    EXPECT_EQ(fans.size(), page < 3 ? 3u : 1u) << page;
    for (const json::value& fan : fans) linked.push_back(fan.at("id").as_int64());
    const json::value& link = body.at("_pagination").at("next_page");
    next = link.is_string() ? PathOf(Str(link)) : "";
  }
  EXPECT_EQ(linked.size(), 10u);
  EXPECT_EQ(std::set<int64_t>(linked.begin(), linked.end()), buyers);
  Behave(R"({"buyer_page_shortfall": 0})");

  // Without links, a page says where the list goes on only by hasMore and marker.
  Behave(R"({"buyer_page_links": false})");
  json::value unlinked =
      Body(Call("GET", StrCat("/api/acct_alpha1/engagement/messages/", id, "/buyers?limit=3")));
  EXPECT_TRUE(unlinked.at("data").at("hasMore").as_bool());
  EXPECT_FALSE(unlinked.as_object().contains("_pagination"));
}

TEST_F(UpstreamSimTest, MinuteLimitGives429WithRetryAfter) {
  int last_remaining = -1;
  bool limited = false;
  for (int i = 0; i < 15 && !limited; ++i) {
    HttpResponse res = Call("GET", "/api/accounts", "", "key-beta");
    if (res.status == 429) {
      limited = true;
      // Only after the window's allowance is used up.
      EXPECT_EQ(last_remaining, 0);
      EXPECT_EQ(Body(res).at("code"), "rate_limited");
      auto retry = ParseInt<int>(res.headers["retry-after"]);
      ASSERT_TRUE(retry.has_value()) << res.headers["retry-after"];
      EXPECT_GE(*retry, 1);
      EXPECT_LE(*retry, 60);
      EXPECT_EQ(res.headers["x-rate-limit-remaining-minute"], "0");
    } else {
      ASSERT_EQ(res.status, 200);
      last_remaining = *ParseInt<int>(res.headers["x-rate-limit-remaining-minute"]);
    }
  }
  EXPECT_TRUE(limited);
  // Another team is not affected.
  EXPECT_EQ(Call("GET", "/api/accounts").status, 200);
}

TEST_F(UpstreamSimTest, CreditsRunOutWith402) {
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Call("GET", "/api/accounts", "", "key-poor").status, 200);
  HttpResponse res = Call("GET", "/api/accounts", "", "key-poor");
  EXPECT_EQ(res.status, 402);
  EXPECT_EQ(Body(res).at("code"), "insufficient_credits");
  EXPECT_EQ(res.headers["x-ofapi-credits-balance"], "0");
  Control("POST", "/_sim/teams/poor", R"({"add_credits": 1})");
  EXPECT_EQ(Call("GET", "/api/accounts", "", "key-poor").status, 200);
}

TEST_F(UpstreamSimTest, InjectedServerErrorsAndLatency) {
  auto other_statuses = [&] {
    return Control("GET", "/_sim/stats").at("requests").at("other").to_number<int64_t>();
  };
  const int64_t other_before = other_statuses();
  Control("POST", "/_sim/faults", R"({"team":"alpha","error_rate":1.0})");
  for (int i = 0; i < 3; ++i) {
    HttpResponse res = Call("GET", "/api/accounts");
    EXPECT_EQ(res.status, 500);
    EXPECT_EQ(Body(res).at("code"), "internal_error");
  }
  EXPECT_EQ(Call("GET", "/api/accounts", "", "key-beta").status, 200);  // other team unaffected
  EXPECT_FALSE(Call("GET", "/api/accounts").headers.contains("retry-after"));
  // Injected answers count in the request statistics like any other.
  EXPECT_EQ(other_statuses(), other_before + 4);
  Control("DELETE", "/_sim/faults");
  EXPECT_EQ(Call("GET", "/api/accounts").status, 200);

  // ?team= scopes a rule that names no team, on the way in and on the way out.
  Control("POST", "/_sim/faults?team=beta", R"({"error_rate":1.0,"error_status":503})");
  EXPECT_EQ(Call("GET", "/api/accounts").status, 200);
  EXPECT_EQ(Call("GET", "/api/accounts", "", "key-beta").status, 503);
  const json::value beta_rules = Control("GET", "/_sim/faults?team=beta");
  ASSERT_EQ(beta_rules.as_array().size(), 1u);
  EXPECT_EQ(beta_rules.as_array()[0].at("team"), "beta");
  EXPECT_TRUE(Control("GET", "/_sim/faults?team=alpha").as_array().empty());
  Control("DELETE", "/_sim/faults");

  // An injected 429 says when to come back, as the upstream's own do: 1 s unless the rule says.
  Control("POST", "/_sim/faults", R"({"error_rate":1,"error_status":429,"count":1})");
  HttpResponse limited = Call("GET", "/api/accounts");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.headers["retry-after"], "1");
  Control("POST", "/_sim/faults",
          R"({"error_rate":1,"error_status":503,"retry_after_s":7,"count":1})");
  HttpResponse unavailable = Call("GET", "/api/accounts");
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_EQ(unavailable.headers["retry-after"], "7");
  EXPECT_EQ(Call("GET", "/api/accounts").status, 200);

  Control("POST", "/_sim/faults", R"({"latency_ms":{"fixed":300},"count":1})");
  const absl::Time start = absl::Now();
  EXPECT_EQ(Call("GET", "/api/accounts").status, 200);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
}

TEST_F(UpstreamSimTest, ConnectionResetAppliesNothing) {
  Control("POST", "/_sim/faults", R"({"reset_rate":1.0})");
  auto res = HttpRequest(
      port(), "POST", "/api/acct_alpha1/mass-messaging", R"({"text":"x","userIds":[101]})",
      {{"Authorization", "Bearer key-alpha"}, {"Content-Type", "application/json"}});
  EXPECT_FALSE(res.ok());
  Control("DELETE", "/_sim/faults");
  EXPECT_TRUE(Ledger("acct_alpha1").at("mass_messages").as_array().empty());
}

TEST_F(UpstreamSimTest, CommitThenLoseTheResponse) {
  Control("POST", "/_sim/faults", R"({"commit_then_lose_rate":1.0,"methods":["POST"],
                                      "path_contains":"/mass-messaging","count":1})");
  auto lost = HttpRequest(
      port(), "POST", "/api/acct_alpha1/mass-messaging", R"({"text":"lost reply","userIds":[101]})",
      {{"Authorization", "Bearer key-alpha"}, {"Content-Type", "application/json"}});
  EXPECT_FALSE(lost.ok());
  // The client saw a reset, but the message exists: a blind retry would send it twice.
  json::value ledger = Ledger("acct_alpha1");
  ASSERT_EQ(ledger.at("mass_messages").as_array().size(), 1u);
  EXPECT_EQ(ledger.at("mass_messages").as_array()[0].at("text"), "lost reply");
  EXPECT_GT(Send("acct_alpha1", R"({"text":"lost reply","userIds":[101]})"), 0);
  EXPECT_EQ(Ledger("acct_alpha1").at("mass_messages").as_array().size(), 2u);
  json::value stats = Control("GET", "/_sim/stats");
  EXPECT_EQ(stats.at("faults").at("lost_responses"), 1);
}

TEST_F(UpstreamSimTest, SignedWebhooksWithRetriesDuplicatesAndLedgerTotals) {
  WebhookReceiver receiver(/*fail_first_attempt=*/true);
  Control("POST", "/_sim/webhooks",
          StrCat(R"({"url":"http://127.0.0.1:)", receiver.port(), R"(/hooks","secret":"s3cret"})"));
  Behave(R"({"purchase_probability": 1, "fan_behavior": "uniform", "purchase_delay_min_ms": 0,
             "purchase_delay_max_ms": 200, "webhook_retry_base_ms": 50,
             "webhook_duplicate_rate": 0.3})");
  const std::string media = Upload("acct_alpha1");
  const int64_t id =
      Send("acct_alpha1", StrCat(R"({"text":"ppv","userLists":["fans"],)",
                                 R"("price":12.34,"mediaFiles":[")", media, R"("]})"));
  ASSERT_GT(id, 0);
  json::value ledger;
  ASSERT_TRUE(WaitFor(
      [&] {
        ledger = Ledger("acct_alpha1");
        if (!ledger.is_object()) return false;
        const json::value& m = ledger.at("mass_messages").as_array()[0];
        const json::value& hooks = ledger.at("_webhooks");
        return m.at("state") == "done" && m.at("purchases") == 10 &&
               m.at("purchases_pending") == 0 && hooks.at("backlog") == 0 &&
               hooks.at("in_flight") == 0;
      },
      absl::Seconds(30)))
      << boost::json::serialize(ledger);

  const auto deliveries = receiver.deliveries();
  std::map<std::string, std::vector<WebhookReceiver::Delivery>> by_key;
  for (const auto& d : deliveries) {
    EXPECT_EQ(d.signature, Hmac("s3cret", d.body));
    EXPECT_EQ(d.user_agent, "OnlyFansAPI.com/Webhook-Client");
    EXPECT_EQ(d.content_type, "application/json");
    EXPECT_TRUE(IsEventKey(d.key)) << d.key;
    by_key[d.key].push_back(d);
  }
  std::map<std::string, std::vector<json::value>> events;  // one payload per key
  int duplicated = 0;
  for (const auto& [key, attempts] : by_key) {
    // The first attempt was refused, so every event was retried; the body never changes.
    ASSERT_GE(attempts.size(), 2u) << key;
    EXPECT_EQ(attempts[0].status, 500);
    for (const auto& a : attempts) EXPECT_EQ(a.body, attempts[0].body);
    int ok = 0;
    for (const auto& a : attempts) ok += a.status == 200;
    if (ok > 1) ++duplicated;
    json::value event = json::parse(attempts[0].body);
    EXPECT_EQ(event.at("account_id"), "acct_alpha1");
    events[Str(event.at("event"))].push_back(event.at("payload"));
  }
  EXPECT_GT(duplicated, 0);

  ASSERT_EQ(events["messages.sent"].size(), 10u);
  std::map<int64_t, int64_t> chat_message_of_fan;
  std::set<int64_t> in_vip;  // fans whose listsStates say they are in the seed's list 900
  for (const json::value& p : events["messages.sent"]) {
    // The fan object carries its custom lists, as the upstream's sample does.
    const json::array& states = p.at("toUser").at("listsStates").as_array();
    ASSERT_EQ(states.size(), 1u);
    EXPECT_EQ(states[0].at("id"), 900);
    EXPECT_EQ(states[0].at("type"), "custom");
    EXPECT_EQ(states[0].at("name"), "VIP");
    EXPECT_EQ(states[0].at("canAddUser").as_bool(), !states[0].at("hasUser").as_bool());
    if (states[0].at("hasUser").as_bool()) in_vip.insert(p.at("toUser").at("id").as_int64());
    EXPECT_EQ(p.at("queueId"), id);
    EXPECT_TRUE(p.at("isFromQueue").as_bool());
    EXPECT_EQ(p.at("text"), "<p>ppv</p>");
    EXPECT_EQ(p.at("price"), 12.34);
    chat_message_of_fan[p.at("toUser").at("id").as_int64()] = p.at("id").as_int64();
  }
  EXPECT_EQ(in_vip, (std::set<int64_t>{101, 102, 103}));
  ASSERT_EQ(events["messages.ppv.unlocked"].size(), 10u);
  for (const json::value& p : events["messages.ppv.unlocked"]) {
    const int64_t fan = p.at("user").at("id").as_int64();
    EXPECT_THAT(Str(p.at("replacePairs").at("{MESSAGE_LINK}")),
                HasSubstr(StrCat("firstId=", chat_message_of_fan[fan])));
    EXPECT_EQ(p.at("replacePairs").at("{AMOUNT}"), "$12.34");
  }
  ASSERT_EQ(events["transactions.new"].size(), 10u);
  int64_t revenue = 0;
  for (const json::value& p : events["transactions.new"]) {
    EXPECT_EQ(p.at("type"), "message");
    revenue += Cents(p.at("amount"));
  }
  const json::value& message = ledger.at("mass_messages").as_array()[0];
  EXPECT_EQ(revenue, message.at("revenue_cents").as_int64());
  EXPECT_EQ(message.at("revenue"), "123.40");
  ASSERT_EQ(events["chat_queue.finished"].size(), 1u);
  EXPECT_EQ(events["chat_queue.finished"][0].at("id"), id);
  EXPECT_TRUE(events["chat_queue.finished"][0].at("isDone").as_bool());
  EXPECT_GE(events["chat_queue.updated"].size(), 1u);

  const json::value& hooks = ledger.at("webhooks");
  EXPECT_EQ(hooks.at("events").as_int64(), static_cast<int64_t>(by_key.size()));
  EXPECT_EQ(hooks.at("failures").as_int64(), static_cast<int64_t>(by_key.size()));
  EXPECT_EQ(hooks.at("duplicates").as_int64(), duplicated);
  EXPECT_EQ(hooks.at("attempts").as_int64(), static_cast<int64_t>(deliveries.size()));
  EXPECT_EQ(hooks.at("gave_up"), 0);
  EXPECT_EQ(hooks.at("dropped"), 0);
}

TEST_F(UpstreamSimTest, WebhookFlagsAndNewSubscribers) {
  WebhookReceiver receiver(/*fail_first_attempt=*/false);
  Start({StrCat("--webhook_url=http://127.0.0.1:", receiver.port(), "/in"),
         "--webhook_secret=flag-secret"});
  Control("POST", "/_sim/subscribers", R"({"account":"acct_alpha2","count":2})");
  ASSERT_TRUE(WaitFor([&] { return receiver.deliveries().size() >= 2; }));
  const auto deliveries = receiver.deliveries();
  ASSERT_EQ(deliveries.size(), 2u);
  std::set<std::string> keys;
  for (const auto& d : deliveries) {
    EXPECT_EQ(d.signature, Hmac("flag-secret", d.body));
    json::value event = json::parse(d.body);
    EXPECT_EQ(event.at("event"), "subscriptions.new");
    EXPECT_EQ(event.at("account_id"), "acct_alpha2");
    EXPECT_TRUE(event.at("payload").at("user").at("id").is_int64());
    keys.insert(d.key);
  }
  EXPECT_EQ(keys.size(), 2u);
  json::value lists = Body(Call("GET", "/api/acct_alpha2/user-lists/fans"));
  EXPECT_GE(lists.at("data").at("usersCount").as_int64(), 2);
}

// A receiver that does not answer within the request timeout is retried on the policy's backoff,
// not again at once on a new connection (only a keep-alive connection the receiver closed is):
// with no retries, it gets the event once.
TEST_F(UpstreamSimTest, AWebhookThatTimedOutIsNotSentAgainAtOnce) {
  WebhookReceiver receiver(/*fail_first_attempt=*/false, /*stall_reused=*/absl::Seconds(2));
  // One sender, so the events share a keep-alive connection.
  Behave(R"({"webhook_request_timeout_ms": 300, "webhook_max_retries": 0,
             "webhook_concurrency": 1})");
  Control("POST", "/_sim/webhooks",
          StrCat(R"({"url":"http://127.0.0.1:)", receiver.port(), R"(/hooks","secret":"s"})"));
  Control("POST", "/_sim/subscribers", R"({"account":"acct_alpha2","count":6})");
  ASSERT_TRUE(WaitFor(
      [&] {
        const json::value hooks = Ledger("acct_alpha2").at("_webhooks");
        return hooks.at("backlog") == 0 && hooks.at("in_flight") == 0;
      },
      absl::Seconds(30)));
  std::map<std::string, int> per_key;
  for (const auto& d : receiver.deliveries()) ++per_key[d.key];
  ASSERT_EQ(per_key.size(), 6u);
  for (const auto& [key, count] : per_key) EXPECT_EQ(count, 1) << key;
}

TEST_F(UpstreamSimTest, ResetRestoresTheSeed) {
  const int64_t before = Send("acct_alpha1", R"({"text":"x","userIds":[101]})");
  EXPECT_GT(before, 0);
  Control("POST", "/_sim/reset");
  EXPECT_TRUE(Ledger("acct_alpha1").at("mass_messages").as_array().empty());
  // Ids are never reused across a reset.
  EXPECT_GT(Send("acct_alpha1", R"({"text":"y","userIds":[101]})"), before);
  json::value teams = Control("GET", "/_sim/teams");
  EXPECT_EQ(teams.as_array().size(), 3u);
  EXPECT_EQ(teams.as_array()[0].at("api_keys").as_array()[0], "key-alpha");
}

// ---- webhook management API (/api/webhooks) and async upload webhooks -------------------

// The data of a successful call; null (and a test failure) otherwise.
json::value DataOf(const HttpResponse& res) {
  EXPECT_GE(res.status, 200) << res.body;
  EXPECT_LT(res.status, 300) << res.body;
  boost::system::error_code ec;
  json::value v = json::parse(res.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("data")) return nullptr;
  return v.at("data");
}

std::string CodeOf(const HttpResponse& res) {
  boost::system::error_code ec;
  json::value v = json::parse(res.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("code")) return "";
  return Str(v.at("code"));
}

std::string HookUrl(const WebhookReceiver& receiver) {
  return StrCat("http://127.0.0.1:", receiver.port(), "/hooks");
}

class SimWebhookApiTest : public UpstreamSimTest {
 protected:
  // Creates a webhook with `fields` (JSON members after endpoint_url) and returns its id.
  std::string CreateHook(std::string_view url, std::string_view fields) {
    HttpResponse res =
        Call("POST", "/api/webhooks", StrCat(R"({"endpoint_url":")", url, R"(",)", fields, "}"));
    EXPECT_EQ(res.status, 200) << res.body;
    if (res.status != 200) return "";
    return Str(DataOf(res).at("id"));
  }

  // Every simulator endpoint has sent or given up everything it queued.
  bool WebhooksSettled() {
    json::value endpoints = Control("GET", "/_sim/webhooks");
    if (!endpoints.is_array()) return false;
    for (const json::value& ep : endpoints.as_array()) {
      if (ep.at("backlog").as_int64() != 0) return false;
    }
    return true;
  }

  // The /_sim/webhooks entry of endpoint `id`.
  json::value Counters(std::string_view id) {
    json::value endpoints = Control("GET", "/_sim/webhooks");
    for (const json::value& ep : endpoints.as_array()) {
      if (Str(ep.at("id")) == id) return ep;
    }
    return nullptr;
  }

  json::array Records(std::string_view id, std::string_view query = "") {
    HttpResponse res = Call("GET", StrCat("/api/webhooks/", id, "/deliveries", query));
    json::value data = DataOf(res);
    return data.is_array() ? data.as_array() : json::array();
  }

  static std::vector<json::value> Events(const WebhookReceiver& receiver) {
    std::vector<json::value> out;
    for (const auto& d : receiver.deliveries()) out.push_back(json::parse(d.body));
    return out;
  }
};

TEST_F(SimWebhookApiTest, CreateListGetUpdateDeleteScopedToTheTeam) {
  HttpResponse created = Call("POST", "/api/webhooks",
                              R"({"endpoint_url":"http://127.0.0.1:9/in",
                                  "events":["messages.sent","media_uploads.completed"],
                                  "account_scope":"inclusive","account_ids":["acct_alpha2"],
                                  "signing_secret":"s"})");
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(created.headers["x-ofapi-credits-used"], "1");
  const json::value hook = DataOf(created);
  const std::string id = Str(hook.at("id"));
  EXPECT_THAT(id, StartsWith("wh_"));
  EXPECT_EQ(hook.at("url"), "http://127.0.0.1:9/in");
  EXPECT_EQ(hook.at("events").as_array().size(), 2u);
  EXPECT_TRUE(hook.at("enabled").as_bool());
  EXPECT_TRUE(hook.at("has_signing_secret").as_bool());
  EXPECT_TRUE(hook.at("created_at").is_string());
  EXPECT_EQ(hook.at("account_scope"), "inclusive");
  EXPECT_EQ(hook.at("account_ids").as_array()[0], "acct_alpha2");

  const json::value list = DataOf(Call("GET", "/api/webhooks"));
  ASSERT_EQ(list.as_array().size(), 1u);
  EXPECT_EQ(list.as_array()[0], hook);
  EXPECT_EQ(DataOf(Call("GET", StrCat("/api/webhooks/", id))), hook);

  // Another team sees nothing and cannot address it.
  EXPECT_TRUE(DataOf(Call("GET", "/api/webhooks", "", "key-beta")).as_array().empty());
  HttpResponse foreign = Call("GET", StrCat("/api/webhooks/", id), "", "key-beta");
  EXPECT_EQ(foreign.status, 404);
  EXPECT_EQ(CodeOf(foreign), "not_found");
  EXPECT_EQ(Call("DELETE", StrCat("/api/webhooks/", id), "", "key-beta").status, 404);

  HttpResponse updated =
      Call("PUT", StrCat("/api/webhooks/", id), R"({"enabled":false,"account_scope":"global"})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  const json::value after = DataOf(updated);
  EXPECT_FALSE(after.at("enabled").as_bool());
  EXPECT_EQ(after.at("account_scope"), "global");
  EXPECT_TRUE(after.at("account_ids").as_array().empty());
  EXPECT_EQ(after.at("url"), hook.at("url"));        // absent fields are kept
  EXPECT_EQ(after.at("events"), hook.at("events"));  // absent fields are kept
  EXPECT_TRUE(after.at("has_signing_secret").as_bool());

  HttpResponse deleted = Call("DELETE", StrCat("/api/webhooks/", id));
  ASSERT_EQ(deleted.status, 200);
  EXPECT_TRUE(DataOf(deleted).at("success").as_bool());
  EXPECT_EQ(Call("GET", StrCat("/api/webhooks/", id)).status, 404);
  EXPECT_TRUE(DataOf(Call("GET", "/api/webhooks")).as_array().empty());
}

TEST_F(SimWebhookApiTest, BadInputGivesItsCodeAndChangesNothing) {
  const std::string id =
      CreateHook("http://127.0.0.1:9/in", R"("events":["messages.sent"],"account_scope":"global")");
  ASSERT_FALSE(id.empty());
  const json::value before = DataOf(Call("GET", "/api/webhooks"));
  const std::string ok_events = R"("events":["messages.sent"])";
  const std::string global = R"("account_scope":"global")";
  const std::vector<std::pair<std::string, std::string>> creates = {
      {StrCat(R"({"endpoint_url":"ftp://h/x",)", ok_events, ",", global, "}"), "invalid_url"},
      {StrCat(R"({)", ok_events, ",", global, "}"), "invalid_url"},
      {StrCat(R"({"endpoint_url":"http://h/x","events":[],)", global, "}"), "invalid_events"},
      {StrCat(R"({"endpoint_url":"http://h/x","events":["nope.never"],)", global, "}"),
       "invalid_events"},
      {StrCat(R"({"endpoint_url":"http://h/x",)", ok_events, R"(,"account_scope":"all"})"),
       "invalid_account_scope"},
      {StrCat(R"({"endpoint_url":"http://h/x",)", ok_events, R"(,"account_scope":"inclusive"})"),
       "invalid_account_ids"},
      {StrCat(R"({"endpoint_url":"http://h/x",)", ok_events,
              R"(,"account_scope":"exclusive","account_ids":["acct_beta1"]})"),
       "invalid_account_ids"},
  };
  for (const auto& [body, code] : creates) {
    HttpResponse res = Call("POST", "/api/webhooks", body);
    EXPECT_EQ(res.status, 422) << body;
    EXPECT_EQ(CodeOf(res), code) << body;
    EXPECT_EQ(res.headers["x-ofapi-credits-used"], "0");
  }
  const std::vector<std::pair<std::string, std::string>> updates = {
      {R"({"endpoint_url":"ftp://h/x"})", "invalid_url"},
      {R"({"events":["messages.sent","bogus"]})", "invalid_events"},
      {R"({"account_scope":"inclusive"})", "invalid_account_ids"},
      {R"({"account_scope":"inclusive","account_ids":["acct_poor1"]})", "invalid_account_ids"},
      {R"({"enabled":"off"})", "invalid_enabled"},
  };
  for (const auto& [body, code] : updates) {
    HttpResponse res = Call("PUT", StrCat("/api/webhooks/", id), body);
    EXPECT_EQ(res.status, 422) << body;
    EXPECT_EQ(CodeOf(res), code) << body;
  }
  HttpResponse malformed = Call("POST", "/api/webhooks", "{");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(CodeOf(malformed), "invalid_json");
  EXPECT_EQ(DataOf(Call("GET", "/api/webhooks")), before);

  // The catalogue, example payloads, and routes that are neither.
  const json::value events = DataOf(Call("GET", "/api/webhooks/events"));
  std::set<std::string> names;
  for (const json::value& e : events.as_array()) {
    names.insert(Str(e.at("value")));
    EXPECT_FALSE(Str(e.at("description")).empty());
  }
  for (const char* name :
       {"chat_queue.updated", "chat_queue.finished", "messages.sent", "messages.ppv.unlocked",
        "transactions.new", "subscriptions.new", "media_uploads.completed", "media_uploads.failed",
        "accounts.connected", "accounts.reconnected", "accounts.session_expired",
        "accounts.authentication_failed", "accounts.otp_code_required",
        "accounts.face_otp_required"}) {
    EXPECT_TRUE(names.contains(name)) << name;
  }
  const json::value example = DataOf(Call("GET", "/api/webhooks/transactions.new/example-payload"));
  EXPECT_EQ(example.at("event"), "transactions.new");
  EXPECT_EQ(example.at("payload").at("type"), "message");
  EXPECT_EQ(Call("GET", "/api/webhooks/not.an.event/example-payload").status, 404);
  EXPECT_EQ(Call("GET", StrCat("/api/webhooks/", id, "/example-payload")).status, 404);
  EXPECT_EQ(Call("PATCH", StrCat("/api/webhooks/", id)).status, 405);
}

TEST_F(SimWebhookApiTest, DeliveriesFollowTheEventFilterAccountScopeAndPause) {
  WebhookReceiver only_alpha2(/*fail_first_attempt=*/false);
  WebhookReceiver not_alpha2(/*fail_first_attempt=*/false);
  const std::string a = CreateHook(HookUrl(only_alpha2), R"("events":["subscriptions.new"],
      "account_scope":"inclusive","account_ids":["acct_alpha2"])");
  const std::string b = CreateHook(HookUrl(not_alpha2), R"("events":["subscriptions.new",
      "messages.sent"],"account_scope":"exclusive","account_ids":["acct_alpha2"])");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  Control("POST", "/_sim/subscribers", R"({"account":"acct_alpha1","count":1})");
  Control("POST", "/_sim/subscribers", R"({"account":"acct_alpha2","count":1})");
  ASSERT_GT(Send("acct_alpha1", R"({"text":"hi","userIds":[101]})"), 0);
  ASSERT_TRUE(WaitFor([&] {
    const json::value l = Ledger("acct_alpha1");
    return l.is_object() && l.at("mass_messages").as_array()[0].at("state") == "done" &&
           only_alpha2.deliveries().size() >= 1 && not_alpha2.deliveries().size() >= 2 &&
           WebhooksSettled();
  }));
  const auto got_a = Events(only_alpha2);
  ASSERT_EQ(got_a.size(), 1u);
  EXPECT_EQ(got_a[0].at("event"), "subscriptions.new");
  EXPECT_EQ(got_a[0].at("account_id"), "acct_alpha2");
  const auto got_b = Events(not_alpha2);
  ASSERT_EQ(got_b.size(), 2u);  // no chat_queue.* (not subscribed), nothing of acct_alpha2
  std::multiset<std::string> kinds;
  for (const json::value& e : got_b) {
    EXPECT_EQ(e.at("account_id"), "acct_alpha1");
    kinds.insert(Str(e.at("event")));
  }
  EXPECT_EQ(kinds, (std::multiset<std::string>{"messages.sent", "subscriptions.new"}));

  // Paused: the event is not queued, and resuming does not recover it.
  ASSERT_EQ(Call("PUT", StrCat("/api/webhooks/", b), R"({"enabled":false})").status, 200);
  const int64_t events_before = Counters(b).at("events").as_int64();
  Control("POST", "/_sim/subscribers", R"({"account":"acct_alpha1","count":1})");
  EXPECT_EQ(Counters(b).at("events").as_int64(), events_before);
  ASSERT_EQ(Call("PUT", StrCat("/api/webhooks/", b), R"({"enabled":true})").status, 200);
  Control("POST", "/_sim/subscribers", R"({"account":"acct_alpha1","count":1})");
  ASSERT_TRUE(WaitFor([&] { return not_alpha2.deliveries().size() >= 3 && WebhooksSettled(); }));
  EXPECT_EQ(not_alpha2.deliveries().size(), 3u);
  EXPECT_EQ(Counters(b).at("events").as_int64(), events_before + 1);
  EXPECT_EQ(only_alpha2.deliveries().size(), 1u);
}

TEST_F(SimWebhookApiTest, DeliveryRecordsAndRedeliveryToTheCurrentUrlAndSecret) {
  WebhookReceiver flaky(/*fail_first_attempt=*/true);
  Behave(R"({"webhook_retry_base_ms": 20})");
  const std::string id = CreateHook(HookUrl(flaky), R"("events":["subscriptions.new"],
      "account_scope":"global","signing_secret":"first")");
  ASSERT_FALSE(id.empty());
  Control("POST", "/_sim/subscribers", R"({"account":"acct_alpha1","count":1})");
  json::array records;
  ASSERT_TRUE(WaitFor([&] {
    records = Records(id);
    return records.size() >= 2;
  }));
  ASSERT_EQ(records.size(), 2u);
  const auto received = flaky.deliveries();
  ASSERT_EQ(received.size(), 2u);
  // Newest first: the successful retry, then the refused first attempt, one delivery.
  const json::value& retry = records[0];
  const json::value& first = records[1];
  EXPECT_EQ(first.at("attempt"), 1);
  EXPECT_EQ(first.at("status_code"), 500);
  EXPECT_FALSE(first.at("success").as_bool());
  EXPECT_EQ(retry.at("attempt"), 2);
  EXPECT_EQ(retry.at("status_code"), 200);
  EXPECT_TRUE(retry.at("success").as_bool());
  EXPECT_EQ(first.at("delivery_uuid"), retry.at("delivery_uuid"));
  EXPECT_NE(first.at("id"), retry.at("id"));
  EXPECT_EQ(first.at("event"), "subscriptions.new");
  EXPECT_EQ(Str(first.at("idempotency_key")), received[0].key);
  EXPECT_EQ(retry.at("idempotency_key"), first.at("idempotency_key"));
  EXPECT_TRUE(first.at("redelivery_of").is_null());
  EXPECT_TRUE(first.at("created_at").is_string());
  // Paging.
  const json::array page = Records(id, "?limit=1&offset=1");
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].at("id"), first.at("id"));
  HttpResponse bad_limit = Call("GET", StrCat("/api/webhooks/", id, "/deliveries?limit=0"));
  EXPECT_EQ(bad_limit.status, 422);
  EXPECT_EQ(CodeOf(bad_limit), "invalid_limit");

  // Move the webhook, then replay the first attempt: the original body and key, the new URL
  // and secret, and the record it replays.
  WebhookReceiver moved(/*fail_first_attempt=*/false);
  ASSERT_EQ(Call("PUT", StrCat("/api/webhooks/", id),
                 StrCat(R"({"endpoint_url":")", HookUrl(moved), R"(","signing_secret":"second"})"))
                .status,
            200);
  const std::string first_id = Str(first.at("id"));
  HttpResponse redeliver =
      Call("POST", StrCat("/api/webhooks/", id, "/deliveries/", first_id, "/redeliver"));
  ASSERT_EQ(redeliver.status, 200) << redeliver.body;
  EXPECT_EQ(redeliver.headers["x-ofapi-credits-used"], "1");
  const std::string redelivery_id = Str(DataOf(redeliver).at("redelivery_id"));
  ASSERT_TRUE(WaitFor([&] { return !moved.deliveries().empty(); }));
  const auto replayed = moved.deliveries();
  ASSERT_EQ(replayed.size(), 1u);
  EXPECT_EQ(replayed[0].body, received[0].body);
  EXPECT_EQ(replayed[0].key, received[0].key);
  EXPECT_EQ(replayed[0].redelivery_of, first_id);
  EXPECT_EQ(replayed[0].signature, Hmac("second", replayed[0].body));
  EXPECT_EQ(flaky.deliveries().size(), 2u);
  ASSERT_TRUE(WaitFor([&] { return Records(id).size() == 3; }));
  const json::value newest = Records(id)[0];
  EXPECT_EQ(Str(newest.at("delivery_uuid")), redelivery_id);
  EXPECT_EQ(Str(newest.at("redelivery_of")), first_id);
  EXPECT_EQ(newest.at("idempotency_key"), first.at("idempotency_key"));

  HttpResponse unknown =
      Call("POST", StrCat("/api/webhooks/", id, "/deliveries/dlv_999999/redeliver"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(CodeOf(unknown), "delivery_not_found");
  EXPECT_EQ(unknown.headers["x-ofapi-credits-used"], "0");
  EXPECT_EQ(Call("POST", StrCat("/api/webhooks/", id, "/deliveries/", first_id, "/redeliver"), "",
                 "key-beta")
                .status,
            404);
}

// Each event a webhook delivers costs its team a credit; failed attempts cost nothing.
TEST_F(SimWebhookApiTest, EachDeliveredEventCostsTheTeamACredit) {
  WebhookReceiver flaky(/*fail_first_attempt=*/true);
  Behave(R"({"webhook_retry_base_ms": 20})");
  const std::string id = CreateHook(HookUrl(flaky), R"("events":["subscriptions.new"],
      "account_scope":"global")");
  ASSERT_FALSE(id.empty());
  auto credits = [&] {
    const json::value teams = Control("GET", "/_sim/teams");
    for (const json::value& team : teams.as_array()) {
      if (Str(team.at("id")) == "alpha") return team.at("credits").to_number<int64_t>();
    }
    return int64_t{-1};
  };
  const int64_t before = credits();
  Control("POST", "/_sim/subscribers", R"({"account":"acct_alpha1","count":3})");
  ASSERT_TRUE(WaitFor([&] { return flaky.deliveries().size() == 6 && WebhooksSettled(); }));
  EXPECT_EQ(Counters(id).at("successes"), 3);
  EXPECT_EQ(credits(), before - 3);
}

TEST_F(SimWebhookApiTest, ConnectionErrorsAreRecordedWithoutAStatusCode) {
  Behave(R"({"webhook_retry_base_ms": 10, "webhook_max_retries": 1})");
  const std::string id = CreateHook(StrCat("http://127.0.0.1:", PickFreePort(), "/gone"),
                                    R"("events":["subscriptions.new"],"account_scope":"global")");
  ASSERT_FALSE(id.empty());
  Control("POST", "/_sim/subscribers", R"({"account":"acct_alpha2","count":1})");
  json::array records;
  ASSERT_TRUE(WaitFor([&] {
    records = Records(id);
    return records.size() >= 2;
  }));
  ASSERT_EQ(records.size(), 2u);
  for (const json::value& r : records) {
    EXPECT_TRUE(r.at("status_code").is_null());
    EXPECT_FALSE(r.at("success").as_bool());
  }
  EXPECT_EQ(records[0].at("delivery_uuid"), records[1].at("delivery_uuid"));
}

TEST_F(SimWebhookApiTest, AsyncUploadsEmitCompletedOrFailed) {
  WebhookReceiver receiver(/*fail_first_attempt=*/false);
  Behave(R"({"async_upload_delay_ms": 50})");
  ASSERT_FALSE(CreateHook(HookUrl(receiver), R"("events":["media_uploads.completed",
      "media_uploads.failed"],"account_scope":"global")")
                   .empty());
  HttpResponse ok = Call("POST", "/api/acct_alpha1/media/upload",
                         R"({"file_url":"https://cdn.example.com/clip.mp4","async":true})");
  ASSERT_EQ(ok.status, 202) << ok.body;
  const std::string ok_id = Str(Body(ok).at("prefixed_id"));
  HttpResponse bad = Call("POST", "/api/acct_alpha1/media/upload",
                          R"({"file_url":"http://fail.invalid/x.jpg","async":true})");
  ASSERT_EQ(bad.status, 202) << bad.body;
  const std::string bad_id = Str(Body(bad).at("prefixed_id"));
  EXPECT_FALSE(Upload("acct_alpha1").empty());  // sync: no event
  HttpResponse bad_sync =
      Call("POST", "/api/acct_alpha1/media/upload", R"({"file_url":"http://fail.invalid/y.jpg"})");
  EXPECT_EQ(bad_sync.status, 422);
  EXPECT_EQ(CodeOf(bad_sync), "upload_failed");
  EXPECT_EQ(bad_sync.headers["x-ofapi-credits-used"], "0");

  ASSERT_TRUE(WaitFor([&] { return receiver.deliveries().size() >= 2 && WebhooksSettled(); }));
  const auto events = Events(receiver);
  ASSERT_EQ(events.size(), 2u);
  std::map<std::string, json::value> by_event;
  for (const json::value& e : events) {
    EXPECT_EQ(e.at("account_id"), "acct_alpha1");
    by_event[Str(e.at("event"))] = e.at("payload");
  }
  const json::value& completed = by_event["media_uploads.completed"];
  ASSERT_TRUE(completed.is_object());
  EXPECT_EQ(Str(completed.at("prefixed_id")), ok_id);
  EXPECT_EQ(completed.at("status"), "completed");
  EXPECT_EQ(completed.at("credits_used"), 3);
  EXPECT_EQ(Str(completed.at("media").at("prefixed_id")), ok_id);
  EXPECT_EQ(completed.at("media").at("file_name"), "clip.mp4");
  EXPECT_TRUE(completed.at("media").at("thumbs").is_array());
  const json::value& failed = by_event["media_uploads.failed"];
  ASSERT_TRUE(failed.is_object());
  EXPECT_EQ(Str(failed.at("prefixed_id")), bad_id);
  EXPECT_EQ(failed.at("status"), "failed");
  EXPECT_THAT(Str(failed.at("error")), HasSubstr("fail.invalid"));

  // The status endpoint agrees, and a failed upload cannot be attached.
  const json::value status =
      Body(Call("GET", StrCat("/api/acct_alpha1/media/uploads/", bad_id, "/status")));
  EXPECT_EQ(status.at("status"), "failed");
  EXPECT_EQ(status.at("error"), failed.at("error"));
  EXPECT_EQ(
      Body(Call("GET", StrCat("/api/acct_alpha1/media/uploads/", ok_id, "/status"))).at("status"),
      "completed");
  HttpResponse attach =
      Call("POST", "/api/acct_alpha1/mass-messaging",
           StrCat(R"({"text":"x","userIds":[101],"mediaFiles":[")", bad_id, R"("]})"));
  EXPECT_EQ(attach.status, 422);
  EXPECT_EQ(CodeOf(attach), "media_failed");
}

// Events queued for an endpoint that is removed are dropped and counted so: once nothing is
// queued or in flight, every event was delivered, given up or dropped.
TEST_F(SimWebhookApiTest, EventsQueuedForARemovedEndpointAreCountedAsDropped) {
  asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  silent.listen();  // connections are made, and never answered
  Behave(R"({"webhook_concurrency": 1, "webhook_request_timeout_ms": 200,
             "webhook_max_retries": 1, "webhook_retry_base_ms": 10,
             "webhook_duplicate_rate": 0})");
  const json::value added = Control(
      "POST", "/_sim/webhooks",
      StrCat(R"({"url":"http://127.0.0.1:)", silent.local_endpoint().port(), R"(/hooks"})"));
  ASSERT_TRUE(added.is_object());
  const std::string id = Str(added.at("id"));
  constexpr int kEvents = 20;
  for (int i = 0; i < kEvents; ++i) {
    Control("POST", "/_sim/accounts/acct_alpha1/events", R"({"event":"accounts.connected"})");
  }
  ASSERT_GT(Counters(id).at("backlog").as_int64(), 0);
  Control("DELETE", StrCat("/_sim/webhooks/", id));
  json::value totals;
  EXPECT_TRUE(WaitFor(
      [&] {
        const json::value l = Control("GET", "/_sim/ledger");
        const json::value& w = l.at("webhooks");
        totals = w.at("by_event").at("accounts.connected");
        const auto n = [&](const char* field) { return totals.at(field).as_int64(); };
        return w.at("backlog").as_int64() == 0 && w.at("in_flight").as_int64() == 0 &&
               n("events") == kEvents && n("successes") + n("gave_up") + n("dropped") == kEvents;
      },
      absl::Seconds(20)))
      << totals;
  EXPECT_GT(totals.at("dropped").as_int64(), 0) << totals;
}

TEST_F(SimWebhookApiTest, ControlEndpointEmitsAccountEvents) {
  WebhookReceiver every(/*fail_first_attempt=*/false);
  WebhookReceiver expired_only(/*fail_first_attempt=*/false);
  Control("POST", "/_sim/webhooks",
          StrCat(R"({"url":")", HookUrl(every), R"(","secret":"sim-secret"})"));
  const std::string hook = CreateHook(HookUrl(expired_only), R"("events":
      ["accounts.session_expired"],"account_scope":"global","signing_secret":"team-secret")");
  ASSERT_FALSE(hook.empty());

  // The state each event reports (README "Account events").
  const std::map<std::string, std::string> states = {
      {"accounts.connected", "authenticated"},
      {"accounts.reconnected", "authenticated"},
      {"accounts.session_expired", "session_expired"},
      {"accounts.authentication_failed", "authentication_failed"},
      {"accounts.otp_code_required", "otp_required"},
      {"accounts.face_otp_required", "face_otp_required"}};
  std::map<std::string, std::string> key_of;  // event name -> idempotency key
  for (const auto& [name, state] : states) {
    const json::value res = Control("POST", "/_sim/accounts/acct_alpha1/events",
                                    StrCat(R"({"event":")", name, R"("})"));
    ASSERT_TRUE(res.is_object());
    EXPECT_EQ(Str(res.at("event")), name);
    EXPECT_EQ(res.at("account_id"), "acct_alpha1");
    key_of[name] = Str(res.at("idempotency_key"));
    EXPECT_TRUE(IsEventKey(key_of[name])) << key_of[name];
  }
  ASSERT_TRUE(WaitFor([&] {
    return every.deliveries().size() >= states.size() && expired_only.deliveries().size() >= 1 &&
           WebhooksSettled();
  }));

  const auto received = every.deliveries();
  ASSERT_EQ(received.size(), states.size());
  std::set<std::string> seen;
  for (const auto& d : received) {
    const json::value e = json::parse(d.body);
    const std::string name = Str(e.at("event"));
    SCOPED_TRACE(name);
    ASSERT_TRUE(states.contains(name));
    seen.insert(name);
    EXPECT_EQ(d.signature, Hmac("sim-secret", d.body));
    EXPECT_EQ(d.key, key_of[name]);
    EXPECT_EQ(d.user_agent, "OnlyFansAPI.com/Webhook-Client");
    EXPECT_EQ(e.at("account_id"), "acct_alpha1");
    const json::value& p = e.at("payload");
    EXPECT_EQ(Str(p.at("state")), states.at(name));
    const json::value& attempt = p.at("latestAuthAttempt");
    EXPECT_TRUE(attempt.at("started_at").is_string());
    const bool waiting =
        name == "accounts.otp_code_required" || name == "accounts.face_otp_required";
    EXPECT_EQ(p.at("progress"), waiting                                    ? "started"
                                : name == "accounts.authentication_failed" ? "failed"
                                                                           : "completed");
    EXPECT_EQ(attempt.at("completed_at").is_null(), waiting);
    EXPECT_EQ(attempt.at("success").as_bool(),
              !waiting && name != "accounts.authentication_failed");
    EXPECT_EQ(attempt.at("error_message").is_string(), name == "accounts.authentication_failed");
    EXPECT_EQ(attempt.at("needs_otp").as_bool(), name == "accounts.otp_code_required");
    EXPECT_EQ(attempt.at("needs_face_otp").as_bool(), name == "accounts.face_otp_required");
    EXPECT_EQ(attempt.at("otp_phone_ending").is_string(), name == "accounts.otp_code_required");
  }
  EXPECT_EQ(seen.size(), states.size());

  // The managed webhook heard only the event it subscribed to, signed with its own secret.
  const auto managed = expired_only.deliveries();
  ASSERT_EQ(managed.size(), 1u);
  EXPECT_EQ(json::parse(managed[0].body).at("event"), "accounts.session_expired");
  EXPECT_EQ(managed[0].signature, Hmac("team-secret", managed[0].body));
  EXPECT_EQ(managed[0].key, key_of["accounts.session_expired"]);
  const json::array records = Records(hook);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].at("event"), "accounts.session_expired");
  EXPECT_EQ(Str(records[0].at("idempotency_key")), key_of["accounts.session_expired"]);
  EXPECT_TRUE(records[0].at("success").as_bool());
  const json::value by_event = Ledger("acct_alpha1").at("_webhooks").at("by_event");
  EXPECT_EQ(by_event.at("accounts.session_expired").at("events"), 2);
  EXPECT_EQ(by_event.at("accounts.connected").at("events"), 1);

  // Catalogue example of a new event.
  const json::value example =
      DataOf(Call("GET", "/api/webhooks/accounts.otp_code_required/example-payload"));
  EXPECT_EQ(example.at("event"), "accounts.otp_code_required");
  EXPECT_TRUE(example.at("payload").at("latestAuthAttempt").at("needs_otp").as_bool());

  // Bad input gives its code and emits nothing.
  const json::value counters_before = Control("GET", "/_sim/webhooks");
  const struct {
    std::string target, body;
    int status;
    std::string code;
  } bad[] = {
      {"/_sim/accounts/acct_nope/events", R"({"event":"accounts.connected"})", 404,
       "account_not_found"},
      {"/_sim/accounts/acct_alpha1/events", R"({"event":"accounts.nope"})", 422, "invalid_event"},
      {"/_sim/accounts/acct_alpha1/events", R"({"event":"messages.sent"})", 422, "invalid_event"},
      {"/_sim/accounts/acct_alpha1/events", R"({"event":5})", 422, "invalid_event"},
      {"/_sim/accounts/acct_alpha1/events", R"({})", 422, "invalid_event"},
      {"/_sim/accounts/acct_alpha1/events", "{", 400, "invalid_json"},
  };
  for (const auto& b : bad) {
    auto res =
        HttpRequest(port(), "POST", b.target, b.body, {{"Content-Type", "application/json"}});
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_EQ(res->status, b.status) << b.body << ": " << res->body;
    EXPECT_EQ(CodeOf(*res), b.code) << b.body;
    EXPECT_FALSE(Str(json::parse(res->body).at("error")).empty());
  }
  EXPECT_EQ(Control("GET", "/_sim/webhooks"), counters_before);
  EXPECT_EQ(every.deliveries().size(), states.size());
  EXPECT_EQ(expired_only.deliveries().size(), 1u);
}

TEST_F(SimWebhookApiTest, ControlEndpointEmitsFanActivityAndPresenceWithoutKeys) {
  WebhookReceiver receiver(/*fail_first_attempt=*/false);
  const std::string hook =
      CreateHook(HookUrl(receiver), R"("events":["messages.received","tips.received",
      "users.typing","users.online"],"account_scope":"global","signing_secret":"s")");
  ASSERT_FALSE(hook.empty());

  const json::value typing =
      Control("POST", "/_sim/accounts/acct_alpha1/events", R"({"event":"users.typing"})");
  ASSERT_TRUE(typing.is_object());
  EXPECT_TRUE(typing.at("idempotency_key").is_null());
  const uint64_t fan = typing.at("fan_id").to_number<uint64_t>();
  ASSERT_GT(fan, 0u);
  const json::value tip =
      Control("POST", "/_sim/accounts/acct_alpha1/events",
              StrCat(R"({"event":"tips.received","fan":)", fan, R"(,"amount_cents":1250})"));
  EXPECT_TRUE(IsEventKey(Str(tip.at("idempotency_key"))));
  EXPECT_EQ(tip.at("fan_id"), fan);
  const json::value message =
      Control("POST", "/_sim/accounts/acct_alpha1/events",
              StrCat(R"({"event":"messages.received","fan":)", fan, R"(,"text":"hey"})"));
  EXPECT_TRUE(IsEventKey(Str(message.at("idempotency_key"))));
  // No endpoint takes subscriptions.expired: nothing is delivered or counted.
  Control("POST", "/_sim/accounts/acct_alpha1/events", R"({"event":"subscriptions.expired"})");
  ASSERT_TRUE(WaitFor([&] { return receiver.deliveries().size() >= 3 && WebhooksSettled(); }));

  const auto received = receiver.deliveries();
  ASSERT_EQ(received.size(), 3u);
  std::map<std::string, WebhookReceiver::Delivery> by_event;
  for (const auto& d : received) {
    const json::value e = json::parse(d.body);
    EXPECT_EQ(d.signature, Hmac("s", d.body));
    EXPECT_EQ(e.at("account_id"), "acct_alpha1");
    by_event[Str(e.at("event"))] = d;
  }
  ASSERT_EQ(by_event.size(), 3u);
  EXPECT_EQ(by_event["users.typing"].key, "");  // no header at all
  EXPECT_EQ(by_event["tips.received"].key, Str(tip.at("idempotency_key")));
  EXPECT_EQ(by_event["messages.received"].key, Str(message.at("idempotency_key")));
  const json::value tip_payload = json::parse(by_event["tips.received"].body).at("payload");
  EXPECT_EQ(tip_payload.at("type"), "tip");
  EXPECT_DOUBLE_EQ(tip_payload.at("amount").to_number<double>(), 12.5);
  EXPECT_EQ(Str(tip_payload.at("fan").at("id")), StrCat(fan));
  const json::value message_payload = json::parse(by_event["messages.received"].body).at("payload");
  EXPECT_EQ(message_payload.at("text"), "<p>hey</p>");
  EXPECT_EQ(message_payload.at("fromUser").at("id"), fan);

  // The delivery record of a presence event has no key either.
  int keyless = 0;
  for (const json::value& r : Records(hook)) {
    const bool presence = r.at("event") == "users.typing";
    EXPECT_EQ(r.at("idempotency_key").is_null(), presence);
    keyless += presence ? 1 : 0;
  }
  EXPECT_EQ(keyless, 1);
  const json::value by_type = Ledger("acct_alpha1").at("_webhooks").at("by_event");
  EXPECT_EQ(by_type.at("subscriptions.expired").at("events"), 0);
  EXPECT_EQ(by_type.at("users.typing").at("events"), 1);

  // Bad input gives its code and emits nothing.
  const json::value counters_before = Control("GET", "/_sim/webhooks");
  const struct {
    std::string body;
    int status;
    std::string code;
  } bad[] = {
      {R"({"event":"users.online","fan":999999999999})", 404, "fan_not_found"},
      {R"({"event":"users.online","fan":"x"})", 422, "invalid_fan"},
      {R"({"event":"users.online","fan":0})", 422, "invalid_fan"},
      {R"({"event":"users.online","amount_cents":5})", 422, "invalid_field"},
      {R"({"event":"accounts.connected","fan":1})", 422, "invalid_field"},
      {R"({"event":"tips.received","amount_cents":0})", 422, "invalid_amount"},
      {R"({"event":"tips.received","amount_cents":-5})", 422, "invalid_amount"},
      {R"({"event":"messages.received","text":""})", 422, "invalid_text"},
      {R"({"event":"messages.deleted","message_id":"12"})", 422, "invalid_message_id"},
  };
  for (const auto& b : bad) {
    auto res = HttpRequest(port(), "POST", "/_sim/accounts/acct_alpha1/events", b.body,
                           {{"Content-Type", "application/json"}});
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_EQ(res->status, b.status) << b.body << ": " << res->body;
    EXPECT_EQ(CodeOf(*res), b.code) << b.body;
  }
  EXPECT_EQ(Control("GET", "/_sim/webhooks"), counters_before);
  EXPECT_EQ(receiver.deliveries().size(), 3u);
}

}  // namespace
}  // namespace herald::testing
