// The webhook management API without sockets: body validation, filters, the event catalogue,
// example payloads, and the /api/webhooks routes through Api (the emitter's io_context is not
// run, so nothing is delivered).
#include "api_webhooks.h"

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/clock.h>
#include <herald/upstream_sim/api.h>
#include <herald/upstream_sim/seed.h>

namespace herald::upstream_sim {
namespace {

namespace json = boost::json;
using ::testing::ElementsAre;

bool AccountsAB(std::string_view id) { return id == "acct_a" || id == "acct_b"; }

std::string Code(const ApiResult<WebhookEndpointConfig>& r) {
  return r.ok() ? "ok" : r.error().code;
}

TEST(ParseWebhookBodyTest, CreateNeedsUrlEventsAndScope) {
  auto ok = ParseWebhookBody(
      R"({"endpoint_url":"http://h:1/x","events":["messages.sent","media_uploads.failed"],
          "account_scope":"inclusive","account_ids":["acct_b","acct_a","acct_a"],
          "signing_secret":"s"})",
      nullptr, AccountsAB);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok.value().url, "http://h:1/x");
  EXPECT_EQ(ok.value().secret, "s");
  EXPECT_EQ(ok.value().filter.events,
            EventBit(EventType::kMessagesSent) | EventBit(EventType::kMediaUploadFailed));
  EXPECT_EQ(ok.value().filter.scope, AccountScope::kInclusive);
  EXPECT_THAT(ok.value().filter.account_ids, ElementsAre("acct_a", "acct_b"));
  EXPECT_TRUE(ok.value().enabled);

  const std::string events = R"("events":["messages.sent"])";
  const std::string global = R"("account_scope":"global")";
  EXPECT_EQ(Code(ParseWebhookBody("{", nullptr, AccountsAB)), "invalid_json");
  EXPECT_EQ(Code(ParseWebhookBody("[]", nullptr, AccountsAB)), "invalid_body");
  EXPECT_EQ(Code(ParseWebhookBody("{" + events + "," + global + "}", nullptr, AccountsAB)),
            "invalid_url");
  EXPECT_EQ(Code(ParseWebhookBody(R"({"endpoint_url":"https://h/x",)" + events + "," + global + "}",
                                  nullptr, AccountsAB)),
            "ok");
  EXPECT_EQ(Code(ParseWebhookBody(R"({"endpoint_url":"ftp://h/x",)" + events + "," + global + "}",
                                  nullptr, AccountsAB)),
            "invalid_url");
  const std::string url = R"("endpoint_url":"http://h/x",)";
  EXPECT_EQ(Code(ParseWebhookBody("{" + url + global + "}", nullptr, AccountsAB)),
            "invalid_events");
  EXPECT_EQ(
      Code(ParseWebhookBody("{" + url + R"("events":[],)" + global + "}", nullptr, AccountsAB)),
      "invalid_events");
  EXPECT_EQ(Code(ParseWebhookBody("{" + url + R"("events":["posts.liked"],)" + global + "}",
                                  nullptr, AccountsAB)),
            "invalid_events");
  EXPECT_EQ(Code(ParseWebhookBody("{" + url + events + "}", nullptr, AccountsAB)),
            "invalid_account_scope");
  EXPECT_EQ(Code(ParseWebhookBody("{" + url + events + R"(,"account_scope":"some"})", nullptr,
                                  AccountsAB)),
            "invalid_account_scope");
  EXPECT_EQ(Code(ParseWebhookBody("{" + url + events + R"(,"account_scope":"exclusive"})", nullptr,
                                  AccountsAB)),
            "invalid_account_ids");
  EXPECT_EQ(Code(ParseWebhookBody(
                "{" + url + events + R"(,"account_scope":"inclusive","account_ids":["acct_z"]})",
                nullptr, AccountsAB)),
            "invalid_account_ids");
  EXPECT_EQ(Code(ParseWebhookBody("{" + url + events + "," + global + R"(,"signing_secret":1})",
                                  nullptr, AccountsAB)),
            "invalid_signing_secret");
  EXPECT_EQ(Code(ParseWebhookBody("{" + url + events + "," + global + R"(,"enabled":1})", nullptr,
                                  AccountsAB)),
            "invalid_enabled");
  // Global ignores account_ids.
  auto g = ParseWebhookBody("{" + url + events + "," + global + R"(,"account_ids":["acct_a"]})",
                            nullptr, AccountsAB);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g.value().filter.account_ids.empty());
}

TEST(ParseWebhookBodyTest, UpdateKeepsAbsentFields) {
  WebhookEndpointConfig current{.url = "http://old/x", .secret = "old", .team = "t"};
  current.managed = true;
  current.filter.events = EventBit(EventType::kSubscriptionNew);
  auto paused = ParseWebhookBody(R"({"enabled":false})", &current, AccountsAB);
  ASSERT_TRUE(paused.ok());
  EXPECT_FALSE(paused.value().enabled);
  EXPECT_EQ(paused.value().url, "http://old/x");
  EXPECT_EQ(paused.value().secret, "old");
  EXPECT_EQ(paused.value().filter.events, EventBit(EventType::kSubscriptionNew));
  EXPECT_EQ(paused.value().team, "t");

  auto scoped = ParseWebhookBody(R"({"account_scope":"exclusive","account_ids":["acct_a"],
                                     "signing_secret":null})",
                                 &current, AccountsAB);
  ASSERT_TRUE(scoped.ok());
  EXPECT_EQ(scoped.value().filter.scope, AccountScope::kExclusive);
  EXPECT_TRUE(scoped.value().secret.empty());
  EXPECT_EQ(Code(ParseWebhookBody(R"({"account_scope":"inclusive"})", &current, AccountsAB)),
            "invalid_account_ids");
  EXPECT_EQ(Code(ParseWebhookBody(R"({"enabled":"no"})", &current, AccountsAB)), "invalid_enabled");
  EXPECT_EQ(Code(ParseWebhookBody(R"({"endpoint_url":""})", &current, AccountsAB)), "invalid_url");
}

TEST(WebhookFilterTest, EventsAndAccountScope) {
  WebhookFilter f;
  EXPECT_TRUE(f.Matches(EventType::kMediaUploadCompleted, "anything"));
  f.events = EventBit(EventType::kMessagesSent);
  f.scope = AccountScope::kInclusive;
  f.account_ids = {"acct_a"};
  EXPECT_TRUE(f.Matches(EventType::kMessagesSent, "acct_a"));
  EXPECT_FALSE(f.Matches(EventType::kMessagesSent, "acct_b"));
  EXPECT_FALSE(f.Matches(EventType::kTransactionNew, "acct_a"));
  f.scope = AccountScope::kExclusive;
  EXPECT_FALSE(f.Matches(EventType::kMessagesSent, "acct_a"));
  EXPECT_TRUE(f.Matches(EventType::kMessagesSent, "acct_b"));
}

TEST(EventCatalogueTest, NamesRoundTripAndExamplesRender) {
  for (int t = 0; t < kEventTypeCount; ++t) {
    const auto type = static_cast<EventType>(t);
    EXPECT_EQ(ParseEventName(EventName(type)), type);
    EXPECT_FALSE(EventDescription(type).empty());
    const json::value body = json::parse(ExampleWebhookBody(type));
    EXPECT_EQ(std::string(body.at("event").as_string()), EventName(type));
    EXPECT_TRUE(body.at("payload").is_object());
  }
  EXPECT_FALSE(ParseEventName("posts.liked"));
  const json::value done = json::parse(ExampleWebhookBody(EventType::kMediaUploadCompleted));
  EXPECT_EQ(done.at("payload").at("status"), "completed");
  EXPECT_TRUE(done.at("payload").at("media").at("prefixed_id").is_string());
  const json::value failed = json::parse(ExampleWebhookBody(EventType::kMediaUploadFailed));
  EXPECT_EQ(failed.at("payload").at("status"), "failed");
  EXPECT_TRUE(failed.at("payload").at("error").is_string());
}

class WebhookApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spec = ParseSeedJson(R"({"teams": [
      {"id": "a", "api_keys": ["key-a"], "credits": 100,
       "accounts": [{"id": "acct_a1", "fans": 2}, {"id": "acct_a2", "fans": 2}]},
      {"id": "b", "api_keys": ["key-b"], "accounts": [{"id": "acct_b1", "fans": 2}]}]})");
    ASSERT_TRUE(spec.ok()) << spec.status();
    state_ = std::make_unique<SimState>(clock_, emitter_, *spec, Behavior{});
    api_ = std::make_unique<Api>(*state_, "", &emitter_);
  }

  ApiResponse Call(std::string method, std::string target, std::string body = "",
                   std::string key = "key-a") {
    return api_->Handle(ApiRequest{.method = std::move(method),
                                   .target = std::move(target),
                                   .authorization = "Bearer " + key,
                                   .content_type = "application/json",
                                   .body = std::move(body)});
  }

  static std::string CodeOf(const ApiResponse& r) {
    return std::string(json::parse(r.body).at("code").as_string());
  }

  ManualClock clock_;
  boost::asio::io_context io_;
  WebhookEmitter emitter_{io_, WebhookPolicy{}, clock_};
  std::unique_ptr<SimState> state_;
  std::unique_ptr<Api> api_;
};

TEST_F(WebhookApiTest, CrudScopedToTheTeamAndChargedOnSuccess) {
  ApiResponse created = Call("POST", "/api/webhooks",
                             R"({"endpoint_url":"http://127.0.0.1:9/h","events":["messages.sent"],
                                 "account_scope":"exclusive","account_ids":["acct_a2"]})");
  ASSERT_EQ(created.status, 200) << created.body;
  const json::value hook = json::parse(created.body).at("data");
  const std::string id(hook.at("id").as_string());
  EXPECT_TRUE(id.starts_with("wh_"));
  EXPECT_EQ(hook.at("account_scope"), "exclusive");
  EXPECT_FALSE(hook.at("has_signing_secret").as_bool());
  EXPECT_EQ(json::parse(created.body).at("_meta").at("_credits").at("used"), 1);

  EXPECT_EQ(json::parse(Call("GET", "/api/webhooks").body).at("data").as_array().size(), 1u);
  EXPECT_TRUE(
      json::parse(Call("GET", "/api/webhooks", "", "key-b").body).at("data").as_array().empty());
  ApiResponse foreign = Call("GET", "/api/webhooks/" + id, "", "key-b");
  EXPECT_EQ(foreign.status, 404);
  EXPECT_EQ(CodeOf(foreign), "not_found");
  EXPECT_EQ(Call("DELETE", "/api/webhooks/" + id, "", "key-b").status, 404);

  const int64_t balance = state_->world()->FindTeam("a")->balance();
  ApiResponse bad = Call("PUT", "/api/webhooks/" + id, R"({"account_ids":["acct_b1"]})");
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(CodeOf(bad), "invalid_account_ids");
  EXPECT_EQ(state_->world()->FindTeam("a")->balance(), balance);  // errors are free

  ApiResponse updated =
      Call("PUT", "/api/webhooks/" + id, R"({"enabled":false,"signing_secret":"x"})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  const json::value after = json::parse(updated.body).at("data");
  EXPECT_FALSE(after.at("enabled").as_bool());
  EXPECT_TRUE(after.at("has_signing_secret").as_bool());
  EXPECT_EQ(after.at("url"), "http://127.0.0.1:9/h");
  EXPECT_EQ(after.at("account_ids").as_array().size(), 1u);

  ApiResponse deleted = Call("DELETE", "/api/webhooks/" + id);
  ASSERT_EQ(deleted.status, 200);
  EXPECT_TRUE(json::parse(deleted.body).at("data").at("success").as_bool());
  EXPECT_EQ(Call("GET", "/api/webhooks/" + id).status, 404);
}

TEST_F(WebhookApiTest, CatalogueExamplesDeliveriesAndRouting) {
  ApiResponse events = Call("GET", "/api/webhooks/events");
  ASSERT_EQ(events.status, 200);
  EXPECT_EQ(json::parse(events.body).at("data").as_array().size(),
            static_cast<size_t>(kEventTypeCount));
  ApiResponse example = Call("GET", "/api/webhooks/media_uploads.completed/example-payload");
  ASSERT_EQ(example.status, 200);
  EXPECT_EQ(json::parse(example.body).at("data").at("event"), "media_uploads.completed");
  EXPECT_EQ(Call("GET", "/api/webhooks/no.such/example-payload").status, 404);
  EXPECT_EQ(Call("POST", "/api/webhooks/events").status, 405);

  ApiResponse created = Call("POST", "/api/webhooks",
                             R"({"endpoint_url":"http://127.0.0.1:9/h",
                                 "events":["subscriptions.new"],"account_scope":"global"})");
  ASSERT_EQ(created.status, 200);
  const std::string id(json::parse(created.body).at("data").at("id").as_string());
  ApiResponse none = Call("GET", "/api/webhooks/" + id + "/deliveries");
  ASSERT_EQ(none.status, 200);
  EXPECT_TRUE(json::parse(none.body).at("data").as_array().empty());
  EXPECT_EQ(CodeOf(Call("GET", "/api/webhooks/" + id + "/deliveries?limit=101")), "invalid_limit");
  EXPECT_EQ(CodeOf(Call("POST", "/api/webhooks/" + id + "/deliveries/dlv_1/redeliver")),
            "delivery_not_found");
  EXPECT_EQ(Call("GET", "/api/webhooks/wh_999").status, 404);
}

}  // namespace
}  // namespace herald::upstream_sim
