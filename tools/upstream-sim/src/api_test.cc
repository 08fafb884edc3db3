// The REST layer without sockets: auth, envelope, headers, limits, credits, uploads.
#include <boost/json/parse.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/clock.h>
#include <herald/upstream_sim/api.h>
#include <herald/upstream_sim/seed.h>

namespace herald::upstream_sim {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Header(const ApiResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

json::value Parse(const std::string& body) { return json::parse(body); }

class ApiTest : public ::testing::Test {
 protected:
  // 15 seconds into a minute of Unix time.
  ApiTest() : clock_(absl::FromUnixSeconds(1'699'999'995)) {}

  void SetUp() override {
    auto spec = ParseSeedJson(R"({"teams": [
      {"id": "a", "api_keys": ["key-a"], "rate_limit_per_minute": 4, "credits": 30,
       "accounts": [{"id": "acct_a1", "fans": [{"id": 1}, {"id": 2}, {"id": 3}]}]},
      {"id": "b", "api_keys": ["key-b"], "accounts": [{"id": "acct_b1", "fans": 2}]}]})");
    ASSERT_TRUE(spec.ok()) << spec.status();
    state_ = std::make_unique<SimState>(clock_, sink_, *spec, Behavior{});
    api_ = std::make_unique<Api>(*state_);
  }

  ApiResponse Call(std::string method, std::string target, std::string body = "",
                   std::string key = "key-a", std::string content_type = "application/json") {
    ApiRequest req;
    req.method = std::move(method);
    req.target = std::move(target);
    if (!key.empty()) req.authorization = "Bearer " + key;
    req.content_type = std::move(content_type);
    req.host = "sim.test:1234";
    req.body = std::move(body);
    return api_->Handle(req);
  }

  ManualClock clock_;
  NullSink sink_;
  std::unique_ptr<SimState> state_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, MissingOrUnknownKeyIs401WithTheVendorBody) {
  ApiResponse r = Call("GET", "/api/accounts", "", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, kUnauthorizedBody);
  EXPECT_EQ(Call("GET", "/api/accounts", "", "nope").status, 401);
}

TEST_F(ApiTest, EnvelopeAndHeaders) {
  ApiResponse r = Call("GET", "/api/accounts");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Header(r, "X-OFAPI-Credits-Used"), "1");
  EXPECT_EQ(Header(r, "X-OFAPI-Credits-Balance"), "29");
  EXPECT_EQ(Header(r, "X-Rate-Limit-Limit-Minute"), "4");
  EXPECT_EQ(Header(r, "X-Rate-Limit-Remaining-Minute"), "3");
  json::value body = Parse(r.body);
  const json::array& data = body.at("data").as_array();
  ASSERT_EQ(data.size(), 1u);  // only team a's account
  EXPECT_EQ(data[0].at("id").as_string(), "acct_a1");
  const json::object& meta = body.at("_meta").as_object();
  EXPECT_EQ(meta.at("_credits").at("used").as_int64(), 1);
  EXPECT_EQ(meta.at("_credits").at("balance").as_int64(), 29);
  EXPECT_TRUE(meta.at("_rate_limits").at("limit_day").is_null());
  EXPECT_TRUE(meta.at("_rate_limits").at("remaining_day").is_null());
  EXPECT_TRUE(meta.at("_rate_limits").at("notice").is_string());
  EXPECT_FALSE(body.as_object().contains("_pagination"));
}

TEST_F(ApiTest, AnotherTeamsAccountIsNotFound) {
  ApiResponse r = Call("GET", "/api/acct_b1/mass-messaging");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Parse(r.body).at("code").as_string(), "account_not_found");
  EXPECT_EQ(Header(r, "X-OFAPI-Credits-Used"), "0");
  EXPECT_EQ(Call("GET", "/api/acct_b1/mass-messaging", "", "key-b").status, 200);
  EXPECT_EQ(Parse(Call("GET", "/api/acct_zz/mass-messaging", "", "key-b").body).at("code"),
            "account_not_found");
}

TEST_F(ApiTest, MinuteLimitGives429WithRetryAfterUntilTheWindowResets) {
  for (int i = 0; i < 4; ++i) ASSERT_EQ(Call("GET", "/api/accounts").status, 200);
  ApiResponse r = Call("GET", "/api/accounts");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(Header(r, "Retry-After"), "45");
  EXPECT_EQ(Header(r, "X-Rate-Limit-Remaining-Minute"), "0");
  EXPECT_EQ(Parse(r.body).at("code").as_string(), "rate_limited");
  clock_.Advance(absl::Seconds(44));
  EXPECT_EQ(Header(Call("GET", "/api/accounts"), "Retry-After"), "1");
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Call("GET", "/api/accounts").status, 200);
  // The other team has its own window.
  EXPECT_EQ(Call("GET", "/api/accounts", "", "key-b").status, 200);
}

TEST_F(ApiTest, CreditsRunOutWith402AndErrorsAreFree) {
  Team* team = state_->world()->FindTeam("a");
  team->SetLimit(1000);
  team->SetCredits(2);
  EXPECT_EQ(Call("POST", "/api/acct_a1/user-lists", R"({"name":""})").status, 422);
  EXPECT_EQ(team->balance(), 2);
  EXPECT_EQ(Call("GET", "/api/accounts").status, 200);
  EXPECT_EQ(Call("GET", "/api/accounts").status, 200);
  ApiResponse r = Call("GET", "/api/accounts");
  EXPECT_EQ(r.status, 402);
  EXPECT_EQ(Parse(r.body).at("code").as_string(), "insufficient_credits");
  EXPECT_EQ(team->balance(), 0);
}

TEST_F(ApiTest, UploadsAreFlatAndCostPerMegabyte) {
  state_->world()->FindTeam("a")->SetLimit(1000);
  const std::string file(2'500'000, 'x');
  const std::string body =
      "--B\r\nContent-Disposition: form-data; name=\"file\"; "
      "filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n" +
      file + "\r\n--B--\r\n";
  ApiResponse r =
      Call("POST", "/api/acct_a1/media/upload", body, "key-a", "multipart/form-data; boundary=B");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Header(r, "X-OFAPI-Credits-Used"), "9");  // 3 started MB x 3 credits
  json::value upload = Parse(r.body);
  EXPECT_FALSE(upload.as_object().contains("data"));
  EXPECT_THAT(std::string(upload.at("prefixed_id").as_string()), StartsWith("ofapi_media_"));
  EXPECT_EQ(upload.at("file_name").as_string(), "clip.mp4");
  const std::string id(upload.at("prefixed_id").as_string());

  ApiResponse status = Call("GET", "/api/acct_a1/media/uploads/" + id + "/status");
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(Header(status, "X-OFAPI-Credits-Used"), "0");
  EXPECT_EQ(Parse(status.body).at("status").as_string(), "completed");

  ApiResponse by_url = Call("POST", "/api/acct_a1/media/upload",
                            R"({"file_url":"https://cdn.example.com/p/photo.jpg"})");
  ASSERT_EQ(by_url.status, 200) << by_url.body;
  EXPECT_EQ(Parse(by_url.body).at("file_name").as_string(), "photo.jpg");

  EXPECT_EQ(Parse(Call("POST", "/api/acct_a1/media/upload", "{}").body).at("code"),
            "file_required");
  EXPECT_EQ(Call("POST", "/api/acct_a1/media/upload", "{oops").status, 400);
  EXPECT_EQ(Call("GET", "/api/acct_a1/media/uploads/ofapi_media_X/status").status, 404);
}

TEST_F(ApiTest, SendEchoesTextAsHtmlAndIdsAreIntegers) {
  state_->world()->FindTeam("a")->SetLimit(1000);
  ApiResponse r =
      Call("POST", "/api/acct_a1/mass-messaging", R"({"text":"Hello","userIds":["1",2]})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value item = Parse(r.body).at("data");
  ASSERT_TRUE(item.at("id").is_int64());
  EXPECT_EQ(item.at("total").as_int64(), 2);
  EXPECT_EQ(item.at("pending").as_int64(), 2);
  EXPECT_FALSE(item.at("isDone").as_bool());
  const std::string id = std::to_string(item.at("id").as_int64());
  json::value detail = Parse(Call("GET", "/api/acct_a1/mass-messaging/" + id).body).at("data");
  EXPECT_TRUE(detail.at("success").as_bool());
  EXPECT_EQ(detail.at("queue").at("text").as_string(), "<p>Hello</p>");
  EXPECT_EQ(Call("PATCH", "/api/acct_a1/mass-messaging/" + id).status, 405);
  EXPECT_EQ(Call("GET", "/api/acct_a1/mass-messaging/999").status, 404);
  EXPECT_EQ(Call("GET", "/api/acct_a1/nothing-here").status, 404);
}

}  // namespace
}  // namespace herald::upstream_sim
