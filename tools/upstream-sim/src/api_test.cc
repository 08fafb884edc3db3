// The REST layer without sockets: auth, envelope, headers, limits, credits, uploads.
#include <boost/json/parse.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/clock.h>
#include <herald/common/strings.h>
#include <herald/upstream_sim/api.h>
#include <herald/upstream_sim/config.h>
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
  // An id that is not UTF-8, echoed in the message, leaves the body valid JSON.
  ApiResponse bad = Call("GET", "/api/%FF%22x%C3/mass-messaging");
  EXPECT_EQ(bad.status, 404);
  boost::system::error_code ec;
  const json::value body = json::parse(bad.body, ec);
  ASSERT_FALSE(ec) << bad.body;
  EXPECT_EQ(body.at("error"), "Account \xEF\xBF\xBD\"x\xEF\xBF\xBD not found.");
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

TEST(TeamTest, AShorterWindowAdmitsTheLimitScaledToItsLength) {
  Team team("t", {"k"}, /*limit_per_minute=*/120, /*credits=*/1000, absl::Seconds(5));
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000) + absl::Milliseconds(1500);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(team.Admit(start, 1).result, Admission::Result::kOk) << i;
  }
  const Admission over = team.Admit(start, 1);
  EXPECT_EQ(over.result, Admission::Result::kRateLimited);
  EXPECT_EQ(over.retry_after_seconds, 4);  // the window ends 3.5 s later
  EXPECT_EQ(over.limit_minute, 120);
  EXPECT_EQ(team.remaining(start), 0);
  const absl::Time next = absl::FromUnixSeconds(1'700'000'005);
  EXPECT_EQ(team.remaining(next), 10);
  EXPECT_EQ(team.Admit(next, 1).result, Admission::Result::kOk);
  EXPECT_EQ(team.counters().rate_limited, 1);
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

TEST_F(ApiTest, UploadsInDataShapeAreEnvelopedWithTheIdAsDataId) {
  state_->world()->FindTeam("a")->SetLimit(1000);
  Behavior behavior = state_->behavior();
  behavior.upload_response_shape = UploadResponseShape::kData;
  state_->SetBehavior(behavior);

  ApiResponse r = Call("POST", "/api/acct_a1/media/upload",
                       R"({"file_url":"https://cdn.example.com/p/photo.jpg"})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value body = Parse(r.body);
  EXPECT_FALSE(body.as_object().contains("prefixed_id"));
  ASSERT_TRUE(body.as_object().contains("_meta")) << r.body;
  const json::object& data = body.at("data").as_object();
  EXPECT_FALSE(data.contains("prefixed_id"));
  EXPECT_THAT(std::string(data.at("id").as_string()), StartsWith("ofapi_media_"));
  EXPECT_EQ(data.at("file_name").as_string(), "photo.jpg");
  EXPECT_EQ(body.at("_meta").at("_credits").at("used").as_int64(), 3);

  // The status poll keeps its documented shape, and is free: it works without credits and
  // spends none.
  const std::string id(data.at("id").as_string());
  state_->world()->FindTeam("a")->SetCredits(0);
  ApiResponse status = Call("GET", "/api/acct_a1/media/uploads/" + id + "/status");
  ASSERT_EQ(status.status, 200) << status.body;
  EXPECT_EQ(Parse(status.body).at("prefixed_id").as_string(), id);
  EXPECT_EQ(state_->world()->FindTeam("a")->balance(), 0);
  EXPECT_EQ(Call("GET", "/api/acct_a1/mass-messaging").status, 402);
}

TEST_F(ApiTest, UploadResponseShapeIsABehaviorSetting) {
  Behavior behavior;
  WebhookPolicy policy;
  ASSERT_TRUE(ApplyBehaviorJson(R"({"upload_response_shape": "data"})", behavior, policy).ok());
  EXPECT_EQ(behavior.upload_response_shape, UploadResponseShape::kData);
  EXPECT_THAT(BehaviorToJson(behavior, policy), HasSubstr(R"("upload_response_shape":"data")"));
  const absl::Status bad = ApplyBehaviorJson(R"({"upload_response_shape": "x"})", behavior, policy);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("upload_response_shape"));
  EXPECT_EQ(behavior.upload_response_shape, UploadResponseShape::kData);
  EXPECT_EQ(ParseUploadResponseShape("flat"), UploadResponseShape::kFlat);
  EXPECT_EQ(UploadResponseShapeName(UploadResponseShape::kFlat), "flat");
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

// Fixture for the user-list edits, statistics and chart: team a without limits, a custom list
// "VIP" holding fans 1 and 2.
class ApiListsTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    Team* team = state_->world()->FindTeam("a");
    team->SetLimit(1'000'000);
    team->SetCredits(1'000'000);
    ApiResponse created = Call("POST", "/api/acct_a1/user-lists", R"({"name":"VIP"})");
    ASSERT_EQ(created.status, 200) << created.body;
    list_ = StrCat(Parse(created.body).at("data").at("id").as_int64());
    base_ = StrCat("/api/acct_a1/user-lists/", list_);
    ASSERT_EQ(Call("POST", base_ + "/users", R"({"ids":[1,2]})").status, 200);
  }

  int64_t Balance() { return state_->world()->FindTeam("a")->balance(); }

  // The error code of a call that must fail with `status` and cost nothing.
  std::string ErrorCode(int status, std::string method, std::string target, std::string body = "") {
    const int64_t before = Balance();
    ApiResponse r = Call(std::move(method), target, std::move(body));
    EXPECT_EQ(r.status, status) << target << ": " << r.body;
    EXPECT_EQ(Header(r, "X-OFAPI-Credits-Used"), "0") << target;
    EXPECT_EQ(Balance(), before) << target;
    json::value v = Parse(r.body);
    return v.is_object() && v.as_object().contains("code") ? std::string(v.at("code").as_string())
                                                           : "";
  }

  json::value Data(std::string method, std::string target, std::string body = "") {
    const int64_t before = Balance();
    ApiResponse r = Call(std::move(method), target, std::move(body));
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    EXPECT_EQ(Balance(), before - 1) << target;
    json::value v = Parse(r.body);
    return v.is_object() && v.as_object().contains("data") ? v.at("data") : json::value();
  }

  // Fan ids of a {list, hasMore, nextOffset} page.
  static std::vector<int64_t> Ids(const json::value& page) {
    std::vector<int64_t> ids;
    for (const json::value& fan : page.at("list").as_array())
      ids.push_back(fan.at("id").as_int64());
    return ids;
  }

  int64_t Send(std::string_view body) {
    json::value item = Data("POST", "/api/acct_a1/mass-messaging", std::string(body));
    // Messages started in the same instant get increasing microseconds; step past them.
    clock_.Advance(absl::Seconds(1));
    return item.is_object() ? item.at("id").as_int64() : 0;
  }

  std::string list_;
  std::string base_;
};

using ::testing::ElementsAre;

TEST_F(ApiListsTest, UpdateRenamesAndPinsToFeed) {
  json::value list = Data("PUT", base_, R"({"name":"Whales","isPinnedToFeed":true})");
  EXPECT_EQ(list.at("id").as_int64(), std::stoll(list_));
  EXPECT_EQ(list.at("name"), "Whales");
  EXPECT_EQ(list.at("type"), "custom");
  EXPECT_TRUE(list.at("isPinnedToFeed").as_bool());
  EXPECT_EQ(list.at("usersCount"), 2);
  // Absent isPinnedToFeed keeps it.
  EXPECT_TRUE(Data("PUT", base_, R"({"name":"Whales 2"})").at("isPinnedToFeed").as_bool());

  EXPECT_EQ(ErrorCode(422, "PUT", base_, R"({"isPinnedToFeed":false})"), "name_required");
  EXPECT_EQ(ErrorCode(422, "PUT", base_, R"({"name":"  "})"), "name_required");
  EXPECT_EQ(ErrorCode(422, "PUT", base_, StrCat(R"({"name":")", std::string(65, 'n'), "\"}")),
            "invalid_name");
  EXPECT_EQ(ErrorCode(422, "PUT", base_, R"({"name":"X","isPinnedToFeed":"yes"})"),
            "invalid_pinned_to_feed");
  EXPECT_EQ(ErrorCode(400, "PUT", base_, "{oops"), "invalid_json");
  EXPECT_EQ(ErrorCode(422, "PUT", "/api/acct_a1/user-lists/fans", R"({"name":"X"})"),
            "system_list");
  EXPECT_EQ(ErrorCode(404, "PUT", "/api/acct_a1/user-lists/424242", R"({"name":"X"})"),
            "list_not_found");
  EXPECT_EQ(ErrorCode(404, "PUT", "/api/acct_a1/user-lists/abc", R"({"name":"X"})"),
            "list_not_found");
  // 64 characters (code points, not bytes) is the limit, as for create.
  std::string name;
  for (int i = 0; i < 64; ++i) name += "\xc3\xa9";  // é
  EXPECT_EQ(Data("PUT", base_, StrCat(R"({"name":")", name, "\"}")).at("name").as_string(), name);

  // Failed updates changed nothing.
  json::value got = Data("GET", base_);
  EXPECT_EQ(got.at("name").as_string(), name);
  EXPECT_TRUE(got.at("isPinnedToFeed").as_bool());
  bool listed = false;
  const json::value lists = Data("GET", "/api/acct_a1/user-lists?limit=50");
  for (const json::value& l : lists.as_array()) {
    if (l.at("id") == json::value(list_)) {
      listed = true;
      EXPECT_TRUE(l.at("isPinnedToFeed").as_bool());
    }
  }
  EXPECT_TRUE(listed);
}

TEST_F(ApiListsTest, DeletedListsAreGoneAndCannotBeTargeted) {
  EXPECT_EQ(ErrorCode(422, "DELETE", "/api/acct_a1/user-lists/fans"), "system_list");
  EXPECT_EQ(ErrorCode(404, "DELETE", "/api/acct_a1/user-lists/424242"), "list_not_found");
  EXPECT_EQ(state_->counters().lists_deleted.load(), 0);
  // Still there after the failures: a send to it reaches both members.
  const int64_t before = Send(StrCat(R"({"text":"hi","userLists":[")", list_, R"("]})"));
  ASSERT_GT(before, 0);

  json::value deleted = Data("DELETE", base_);
  EXPECT_TRUE(deleted.at("success").as_bool());
  EXPECT_EQ(state_->counters().lists_deleted.load(), 1);
  EXPECT_EQ(ErrorCode(404, "GET", base_), "list_not_found");
  EXPECT_EQ(ErrorCode(404, "DELETE", base_), "list_not_found");
  EXPECT_EQ(ErrorCode(404, "GET", base_ + "/users"), "list_not_found");
  EXPECT_EQ(ErrorCode(404, "POST", base_ + "/users", R"({"ids":[1]})"), "list_not_found");
  EXPECT_EQ(ErrorCode(404, "GET", base_ + "/users/pinned"), "list_not_found");
  EXPECT_EQ(ErrorCode(404, "POST", base_ + "/users/1/pin"), "list_not_found");
  const json::value lists = Data("GET", "/api/acct_a1/user-lists?limit=50");
  for (const json::value& l : lists.as_array()) {
    EXPECT_NE(l.at("id"), json::value(list_));
  }
  EXPECT_EQ(ErrorCode(422, "POST", "/api/acct_a1/mass-messaging",
                      StrCat(R"({"text":"hi","userLists":[")", list_, R"("]})")),
            "invalid_user_list");
  EXPECT_EQ(ErrorCode(422, "POST", "/api/acct_a1/mass-messaging",
                      StrCat(R"({"text":"hi","userIds":[1],"excludedLists":[")", list_, R"("]})")),
            "invalid_user_list");
  // The queue sent before the deletion keeps its recipients.
  json::value detail = Data("GET", StrCat("/api/acct_a1/mass-messaging/", before));
  EXPECT_TRUE(detail.at("success").as_bool());
}

TEST_F(ApiListsTest, ClearEmptiesACustomList) {
  EXPECT_EQ(ErrorCode(422, "DELETE", "/api/acct_a1/user-lists/rebill_on/users"), "system_list");
  EXPECT_EQ(ErrorCode(404, "DELETE", "/api/acct_a1/user-lists/424242/users"), "list_not_found");
  EXPECT_EQ(Data("GET", base_).at("usersCount"), 2);
  ASSERT_TRUE(Data("POST", base_ + "/users/1/pin").at("success").as_bool());

  json::value cleared = Data("DELETE", base_ + "/users");
  EXPECT_EQ(cleared.at("id").as_int64(), std::stoll(list_));
  EXPECT_EQ(cleared.at("usersCount"), 0);
  EXPECT_TRUE(cleared.at("users").as_array().empty());
  EXPECT_TRUE(Ids(Data("GET", base_ + "/users")).empty());
  EXPECT_TRUE(Ids(Data("GET", base_ + "/users/pinned")).empty());
  // The system list is untouched.
  EXPECT_EQ(Data("GET", "/api/acct_a1/user-lists/fans").at("usersCount"), 3);
}

TEST_F(ApiListsTest, RemoveOneFan) {
  EXPECT_EQ(ErrorCode(422, "DELETE", "/api/acct_a1/user-lists/fans/users/1"), "system_list");
  EXPECT_EQ(ErrorCode(404, "DELETE", "/api/acct_a1/user-lists/424242/users/1"), "list_not_found");
  EXPECT_EQ(ErrorCode(404, "DELETE", base_ + "/users/99"), "user_not_found");
  EXPECT_EQ(ErrorCode(404, "DELETE", base_ + "/users/abc"), "user_not_found");
  EXPECT_EQ(ErrorCode(405, "GET", base_ + "/users/1"), "method_not_allowed");
  EXPECT_THAT(Ids(Data("GET", base_ + "/users")), ElementsAre(1, 2));

  json::value removed = Data("DELETE", base_ + "/users/2");
  EXPECT_EQ(removed.at("list").at("id").as_int64(), std::stoll(list_));
  EXPECT_EQ(removed.at("list").at("usersCount"), 1);
  ASSERT_EQ(removed.at("list").at("users").as_array().size(), 1u);
  EXPECT_EQ(removed.at("list").at("users").as_array()[0].at("id"), 1);
  const json::value& state = removed.at("userState");
  EXPECT_EQ(state.at("id").as_int64(), std::stoll(list_));
  EXPECT_EQ(state.at("name"), "VIP");
  EXPECT_EQ(state.at("type"), "custom");
  EXPECT_FALSE(state.at("hasUser").as_bool());
  EXPECT_TRUE(state.at("canAddUser").as_bool());
  EXPECT_TRUE(state.at("cannotAddUserReason").is_null());
  // A fan of the account that is not a member: nothing to remove, same answer.
  EXPECT_EQ(Data("DELETE", base_ + "/users/3").at("list").at("usersCount"), 1);
  EXPECT_THAT(Ids(Data("GET", base_ + "/users")), ElementsAre(1));
}

// With a shortfall, a page holds fewer fans than asked and says where the list goes on: paging
// by nextOffset reads every member once, paging by offset + limit would skip some.
TEST_F(ApiListsTest, ShortMemberPagesSayWhereTheListGoesOn) {
  ASSERT_EQ(Call("POST", base_ + "/users", R"({"ids":[3]})").status, 200);
  Behavior behavior = state_->behavior();
  behavior.member_page_shortfall = 1;
  state_->SetBehavior(behavior);
  std::vector<int64_t> all;
  int64_t offset = 0;
  for (int page = 0; page < 10; ++page) {
    json::value data = Data("GET", StrCat(base_, "/users?limit=2&offset=", offset));
    const std::vector<int64_t> ids = Ids(data);
    EXPECT_EQ(ids.size(), 1u);
    all.insert(all.end(), ids.begin(), ids.end());
    offset = data.at("nextOffset").as_int64();
    if (!data.at("hasMore").as_bool()) break;
  }
  EXPECT_THAT(all, ElementsAre(1, 2, 3));
}

TEST_F(ApiListsTest, PinAndListPinnedMembers) {
  EXPECT_TRUE(Data("POST", base_ + "/users/2/pin").at("success").as_bool());
  EXPECT_TRUE(Data("POST", base_ + "/users/1/pin").at("success").as_bool());
  EXPECT_TRUE(Data("POST", base_ + "/users/2/pin").at("success").as_bool());  // already pinned

  EXPECT_EQ(ErrorCode(422, "POST", base_ + "/users/3/pin"), "user_not_in_list");
  EXPECT_EQ(ErrorCode(404, "POST", base_ + "/users/99/pin"), "user_not_found");
  EXPECT_EQ(ErrorCode(404, "POST", "/api/acct_a1/user-lists/424242/users/1/pin"), "list_not_found");
  EXPECT_EQ(ErrorCode(422, "POST", "/api/acct_a1/user-lists/expired/users/1/pin"),
            "user_not_in_list");
  EXPECT_EQ(ErrorCode(405, "GET", base_ + "/users/1/pin"), "method_not_allowed");
  EXPECT_EQ(ErrorCode(405, "DELETE", base_ + "/users/pinned"), "method_not_allowed");
  for (std::string_view query : {"limit=0", "limit=101", "limit=x"}) {
    EXPECT_EQ(ErrorCode(422, "GET", StrCat(base_, "/users/pinned?", query)), "invalid_limit");
  }
  EXPECT_EQ(ErrorCode(422, "GET", base_ + "/users/pinned?offset=-1"), "invalid_offset");

  // Most recently pinned first; the failed pins added nothing.
  json::value page = Data("GET", base_ + "/users/pinned");
  EXPECT_THAT(Ids(page), ElementsAre(1, 2));
  EXPECT_FALSE(page.at("hasMore").as_bool());
  EXPECT_EQ(page.at("nextOffset"), 2);
  json::value first = Data("GET", base_ + "/users/pinned?limit=1");
  EXPECT_THAT(Ids(first), ElementsAre(1));
  EXPECT_TRUE(first.at("hasMore").as_bool());
  EXPECT_EQ(first.at("nextOffset"), 1);
  EXPECT_THAT(Ids(Data("GET", base_ + "/users/pinned?limit=1&offset=1")), ElementsAre(2));
  // Removing a member unpins it.
  Data("DELETE", base_ + "/users/1");
  EXPECT_THAT(Ids(Data("GET", base_ + "/users/pinned")), ElementsAre(2));

  // System lists by name: friends is empty in the simulator and takes any fan of the account;
  // fans takes its (active) members.
  EXPECT_TRUE(Data("POST", "/api/acct_a1/user-lists/friends/users/3/pin").at("success").as_bool());
  EXPECT_TRUE(Data("POST", "/api/acct_a1/user-lists/fans/users/1/pin").at("success").as_bool());
  EXPECT_THAT(Ids(Data("GET", "/api/acct_a1/user-lists/friends/users/pinned")), ElementsAre(3));
  EXPECT_THAT(Ids(Data("GET", "/api/acct_a1/user-lists/fans/users/pinned")), ElementsAre(1));
  EXPECT_TRUE(Ids(Data("GET", "/api/acct_a1/user-lists/muted/users/pinned")).empty());
}

TEST_F(ApiListsTest, StatisticsByType) {
  const int64_t sent = Send(R"({"text":"Hello sent","userIds":[1]})");
  const int64_t canceled = Send(R"({"text":"Oops","userIds":[1,2]})");
  const int64_t scheduled =
      Send(R"({"text":"Later","userIds":[2],"scheduledDate":"2030-01-01T00:00:00.000Z"})");
  const int64_t saved = Send(R"({"text":"Saved","userIds":[3],"saveForLater":true})");
  const int64_t newer = Send(R"({"text":"Hello again","userLists":["fans"]})");
  ASSERT_TRUE(Data("DELETE", StrCat("/api/acct_a1/mass-messaging/", canceled))
                  .at("queue")
                  .at("isCanceled")
                  .as_bool());
  auto ids = [&](std::string query) {
    json::value data = Data("GET", "/api/acct_a1/mass-messaging/statistics" + query);
    std::vector<int64_t> out;
    for (const json::value& item : data.at("list").as_array())
      out.push_back(item.at("id").as_int64());
    return out;
  };
  EXPECT_THAT(ids(""), ElementsAre(newer, sent));
  EXPECT_THAT(ids("?type=sent"), ElementsAre(newer, sent));
  EXPECT_THAT(ids("?type=scheduled"), ElementsAre(scheduled, saved));
  EXPECT_THAT(ids("?type=unsent"), ElementsAre(canceled));
  EXPECT_THAT(ids("?query=HELLO"), ElementsAre(newer, sent));
  EXPECT_THAT(ids("?query=again"), ElementsAre(newer));
  EXPECT_THAT(ids("?type=unsent&query=hello"), ElementsAre());

  json::value first = Data("GET", "/api/acct_a1/mass-messaging/statistics?limit=1");
  ASSERT_EQ(first.at("list").as_array().size(), 1u);
  EXPECT_TRUE(first.at("hasMore").as_bool());
  const json::value& item = first.at("list").as_array()[0];
  EXPECT_EQ(item.at("id"), newer);
  EXPECT_EQ(item.at("rawText"), "Hello again");
  EXPECT_EQ(item.at("sentCount"), 0);  // no delivery pass ran
  json::value second = Data("GET", "/api/acct_a1/mass-messaging/statistics?limit=1&offset=1");
  EXPECT_FALSE(second.at("hasMore").as_bool());
  EXPECT_THAT(ids("?offset=5"), ElementsAre());

  EXPECT_EQ(ErrorCode(422, "GET", "/api/acct_a1/mass-messaging/statistics?type=all"),
            "invalid_type");
  EXPECT_EQ(ErrorCode(422, "GET", "/api/acct_a1/mass-messaging/statistics?limit=0"),
            "invalid_limit");
  EXPECT_EQ(ErrorCode(422, "GET", "/api/acct_a1/mass-messaging/statistics?limit=101"),
            "invalid_limit");
  EXPECT_EQ(ErrorCode(422, "GET", "/api/acct_a1/mass-messaging/statistics?offset=-1"),
            "invalid_offset");
  EXPECT_EQ(ErrorCode(405, "POST", "/api/acct_a1/mass-messaging/statistics"), "method_not_allowed");
}

// Messages scheduled for the same instant start a microsecond apart: the engagement list's
// date cursor (its next_page) pages through every one of them.
TEST_F(ApiListsTest, MessagesScheduledForTheSameInstantArePagedThroughOneByOne) {
  const std::string at = R"("scheduledDate":"2023-11-15T00:00:00.000Z")";
  const int64_t first = Send(StrCat(R"({"text":"a","userIds":[1],)", at, "}"));
  const int64_t second = Send(StrCat(R"({"text":"b","userIds":[2],)", at, "}"));
  const int64_t third = Send(StrCat(R"({"text":"c","userIds":[3],)", at, "}"));
  clock_.Advance(absl::Hours(24));  // all three started
  std::vector<int64_t> paged;
  std::string target = "/api/acct_a1/engagement/messages/mass-messages?limit=1";
  for (int page = 0; page < 5 && !target.empty(); ++page) {
    ApiResponse r = Call("GET", target);
    ASSERT_EQ(r.status, 200) << r.body;
    const json::value body = Parse(r.body);
    for (const json::value& item : body.at("data").at("items").as_array()) {
      paged.push_back(item.at("id").as_int64());
    }
    const json::value& next = body.at("_pagination").at("next_page");
    target.clear();
    if (next.is_string()) {
      const std::string url(next.as_string());
      target = url.substr(url.find("/api/"));
    }
  }
  EXPECT_THAT(paged, ElementsAre(third, second, first));
}

// A scheduled message deleted before its date never started: once the date has passed, the
// engagement list still leaves it out, as the chart's count does.
TEST_F(ApiListsTest, AScheduledMessageDeletedBeforeItsDateNeverStarted) {
  const int64_t kept =
      Send(R"({"text":"kept","userIds":[1],"scheduledDate":"2023-11-15T00:00:00.000Z"})");
  const int64_t deleted =
      Send(R"({"text":"gone","userIds":[2],"scheduledDate":"2023-11-15T00:00:00.000Z"})");
  ASSERT_EQ(Call("DELETE", StrCat("/api/acct_a1/mass-messaging/", deleted)).status, 200);
  clock_.Advance(absl::Hours(24));
  const json::value engagement = Data("GET", "/api/acct_a1/engagement/messages/mass-messages");
  std::vector<int64_t> listed;
  for (const json::value& item : engagement.at("items").as_array()) {
    listed.push_back(item.at("id").as_int64());
  }
  EXPECT_THAT(listed, ElementsAre(kept));
  json::value chart = Data("GET",
                           "/api/acct_a1/engagement/messages/mass-messages/chart?startDate=2023-11-"
                           "14%2000:00:00&endDate=2023-11-17%2000:00:00");
  EXPECT_EQ(chart.at("group_messages").at("total"), 1);
}

TEST_F(ApiListsTest, MassMessagesChartCountsPerDay) {
  // The clock starts at 2023-11-14 22:13:15 UTC.
  auto purchase = [&](int64_t message_id, std::string_view at) {
    Account* a = state_->world()->FindAccount("acct_a1");
    absl::MutexLock lock(&a->mu);
    MassMessage* m = a->FindMessage(message_id);
    ASSERT_NE(m, nullptr);
    absl::Time t;
    std::string error;
    ASSERT_TRUE(absl::ParseTime("%Y-%m-%d %H:%M:%S", ToAbsl(at), absl::UTCTimeZone(), &t, &error));
    m->purchases.push_back(Purchase{0, 500, t});
  };
  const int64_t m1 = Send(R"({"text":"one","userIds":[1]})");
  clock_.Advance(absl::Hours(24));
  const int64_t m2 = Send(R"({"text":"two","userIds":[1]})");
  Send(R"({"text":"three","userIds":[2]})");
  Send(R"({"text":"saved","userIds":[2],"saveForLater":true})");  // never started
  clock_.Advance(absl::Hours(24));
  purchase(m1, "2023-11-15 23:00:00");
  purchase(m1, "2023-11-16 01:00:00");
  purchase(m2, "2023-11-16 02:00:00");
  purchase(m1, "2023-11-14 23:00:00");  // before the range: counts for the preceding one

  const std::string chart = "/api/acct_a1/engagement/messages/mass-messages/chart";
  for (const std::string& range :
       {std::string("startDate=2023-11-15%2000:00:00&endDate=2023-11-17%2000:00:00"),
        std::string("startDate=2023-11-15T00:00:00.000Z&endDate=2023-11-17T00:00:00Z")}) {
    json::value data = Data("GET", StrCat(chart, "?", range));
    const json::value& messages = data.at("group_messages");
    ASSERT_EQ(messages.at("chart").as_array().size(), 2u) << range;
    EXPECT_EQ(messages.at("chart").as_array()[0].at("date"), "2023-11-15");
    EXPECT_EQ(messages.at("chart").as_array()[0].at("count"), 2);
    EXPECT_EQ(messages.at("chart").as_array()[1].at("date"), "2023-11-16");
    EXPECT_EQ(messages.at("chart").as_array()[1].at("count"), 0);
    EXPECT_EQ(messages.at("total"), 2);
    EXPECT_EQ(messages.at("delta"), 1);  // m1 on 2023-11-14 in the preceding two days
    const json::value& purchases = data.at("group_messages_purchases");
    ASSERT_EQ(purchases.at("chart").as_array().size(), 2u);
    EXPECT_EQ(purchases.at("chart").as_array()[0].at("count"), 1);
    EXPECT_EQ(purchases.at("chart").as_array()[1].at("count"), 2);
    EXPECT_EQ(purchases.at("total"), 3);
    EXPECT_EQ(purchases.at("delta"), 2);
  }
  json::value bare = Data("GET", StrCat(chart,
                                        "?startDate=2023-11-15%2022:30:00&endDate=2023-11-16%2000:"
                                        "00:01&withTotal=false"));
  for (std::string_view group : {"group_messages", "group_messages_purchases"}) {
    const json::object& g = bare.at(group).as_object();
    EXPECT_FALSE(g.contains("total"));
    EXPECT_FALSE(g.contains("delta"));
    ASSERT_EQ(g.at("chart").as_array().size(), 2u);  // a partial day at each end
  }
  // m2 and m3 started at 22:13:16 and 22:13:17, before the range; the 23:00 purchase is in it.
  EXPECT_EQ(bare.at("group_messages").at("chart").as_array()[0].at("count"), 0);
  EXPECT_EQ(bare.at("group_messages_purchases").at("chart").as_array()[0].at("count"), 1);
  EXPECT_EQ(bare.at("group_messages_purchases").at("chart").as_array()[1].at("count"), 0);
  // Without dates: the 30 days up to now (31 calendar days, as now is not midnight).
  json::value recent = Data("GET", chart);
  EXPECT_EQ(recent.at("group_messages").at("chart").as_array().size(), 31u);
  EXPECT_EQ(recent.at("group_messages").at("total"), 3);
  EXPECT_EQ(recent.at("group_messages_purchases").at("total"), 4);

  const std::string day1 = "2023-11-15%2000:00:00", day2 = "2023-11-16%2000:00:00";
  EXPECT_EQ(ErrorCode(422, "GET", StrCat(chart, "?startDate=", day2, "&endDate=", day1)),
            "invalid_date_range");
  EXPECT_EQ(ErrorCode(422, "GET", StrCat(chart, "?startDate=", day1, "&endDate=", day1)),
            "invalid_date_range");
  EXPECT_EQ(ErrorCode(422, "GET", StrCat(chart, "?startDate=2030-01-01")), "invalid_date_range");
  EXPECT_EQ(ErrorCode(422, "GET", StrCat(chart, "?startDate=2020-01-01&endDate=2023-01-01")),
            "invalid_date_range");
  EXPECT_EQ(ErrorCode(422, "GET", StrCat(chart, "?startDate=yesterday")), "invalid_start_date");
  EXPECT_EQ(ErrorCode(422, "GET", StrCat(chart, "?endDate=15.11.2023")), "invalid_end_date");
  EXPECT_EQ(ErrorCode(422, "GET", StrCat(chart, "?withTotal=maybe")), "invalid_with_total");
  EXPECT_EQ(ErrorCode(405, "POST", chart), "method_not_allowed");
}

}  // namespace
}  // namespace herald::upstream_sim
