#include "requests.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/upstream/client.h>
#include <herald/upstream/error.h>

namespace herald::upstream::internal {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;

Origin MustOrigin(std::string_view url) {
  absl::StatusOr<Origin> origin = ParseOrigin("base_url", url);
  EXPECT_TRUE(origin.ok()) << origin.status();
  return origin.value_or(Origin{});
}

class RequestFactoryTest : public ::testing::Test {
 protected:
  RequestFactory factory_{MustOrigin("https://app.onlyfansapi.com"), "sk_test_key",
                          absl::Seconds(90)};

  static std::string Header(const HttpRequest& req, std::string_view name) {
    for (const auto& [k, v] : req.headers) {
      if (k == name) return v;
    }
    return "<absent>";
  }

  static void ExpectRefused(const absl::StatusOr<HttpRequest>& req, std::string_view why) {
    ASSERT_FALSE(req.ok());
    EXPECT_EQ(req.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(req.status().message()), HasSubstr(why));
    const std::optional<UpstreamError> error = GetUpstreamError(req.status());
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind, ErrorKind::kTerminal);
    EXPECT_FALSE(error->request_written);
  }
};

TEST(ParseOrigin, AcceptsOrigins) {
  Origin o = MustOrigin("https://App.OnlyFansAPI.com/");
  EXPECT_EQ(o.scheme, "https");
  EXPECT_EQ(o.host, "app.onlyfansapi.com");
  EXPECT_EQ(o.port, 443);
  EXPECT_EQ(o.base, "https://app.onlyfansapi.com");
  o = MustOrigin("http://127.0.0.1:8080");
  EXPECT_EQ(o.port, 8080);
  EXPECT_EQ(o.base, "http://127.0.0.1:8080");
  EXPECT_EQ(MustOrigin("https://example.com:443").base, "https://example.com");
  EXPECT_EQ(MustOrigin("http://[::1]:9000").base, "http://[::1]:9000");
}

TEST(ParseOrigin, RejectsEverythingElse) {
  for (std::string_view bad :
       {"app.onlyfansapi.com", "ftp://example.com", "https://user:pw@example.com",
        "https://example.com/api", "https://example.com?x=1", "https://example.com#f",
        "https://:443", "http://example.com:0", ""}) {
    absl::StatusOr<Origin> origin = ParseOrigin("upstream.base_url", bad);
    EXPECT_FALSE(origin.ok()) << bad;
    EXPECT_THAT(std::string(origin.status().message()), HasSubstr("upstream.base_url: ")) << bad;
  }
}

TEST(BuildUrl, EncodesSegmentsAndQuery) {
  const Origin origin = MustOrigin("http://127.0.0.1:8080");
  EXPECT_EQ(BuildUrl(origin, {"acct_1", "mass-messaging"}),
            "http://127.0.0.1:8080/api/acct_1/mass-messaging");
  EXPECT_EQ(BuildUrl(origin, {"acct /x?y#", "user-lists"}),
            "http://127.0.0.1:8080/api/acct%20%2Fx%3Fy%23/user-lists");
  EXPECT_EQ(
      BuildUrl(origin, {"a"}, {{"query", "a+b&c=d é%"}, {"startDate", "2025-01-01 00:00:00"}}),
      "http://127.0.0.1:8080/api/a?query=a%2Bb%26c%3Dd%20%C3%A9%25"
      "&startDate=2025-01-01%2000%3A00%3A00");
}

TEST(FormatDates, UpstreamFormats) {
  const absl::Time t = absl::FromUnixMillis(1735693261123);  // 2025-01-01 01:01:01.123 UTC
  EXPECT_EQ(FormatQueryDate(t), "2025-01-01 01:01:01");
  EXPECT_EQ(FormatScheduledDate(t), "2025-01-01T01:01:01.123Z");
}

TEST_F(RequestFactoryTest, SendMassMessage) {
  absl::StatusOr<HttpRequest> req =
      factory_.SendMassMessage("acct_abc", {.text = "<p>Hi</p> \"there\"",
                                            .user_lists = {"fans", "1234"},
                                            .user_ids = {42, 7},
                                            .excluded_lists = {"muted"},
                                            .price_cents = 1520,
                                            .media_files = {"ofapi_media_1", "555"},
                                            .previews = {"555"},
                                            .locked_text = true,
                                            .scheduled_at = absl::FromUnixSeconds(1735693261)});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->method, HttpMethod::kPost);
  EXPECT_EQ(req->url, "https://app.onlyfansapi.com/api/acct_abc/mass-messaging");
  EXPECT_EQ(Header(*req, "Authorization"), "Bearer sk_test_key");
  EXPECT_EQ(Header(*req, "Content-Type"), "application/json");
  EXPECT_EQ(Header(*req, "Accept"), "application/json");
  EXPECT_FALSE(req->timeout.has_value());
  // The price is written as exact decimal text, not as a binary double.
  EXPECT_THAT(req->body, HasSubstr("\"price\":15.20}"));
  const boost::json::value body = boost::json::parse(req->body);
  EXPECT_EQ(body, boost::json::parse(R"({
      "text": "<p>Hi</p> \"there\"", "userLists": ["fans", "1234"], "userIds": ["42", "7"],
      "excludedLists": ["muted"], "mediaFiles": ["ofapi_media_1", "555"], "previews": ["555"],
      "lockedText": true, "scheduledDate": "2025-01-01T01:01:01.000Z", "price": 15.20})"))
      << req->body;
}

TEST_F(RequestFactoryTest, SendFreeMessageOmitsUnsetFields) {
  absl::StatusOr<HttpRequest> req =
      factory_.SendMassMessage("acct_abc", {.text = "Hello", .user_ids = {9}});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(boost::json::parse(req->body),
            boost::json::parse(R"({"text":"Hello","userIds":["9"]})"))
      << req->body;
}

TEST_F(RequestFactoryTest, SendRefusesInvalidMessages) {
  ExpectRefused(factory_.SendMassMessage("", {.text = "x", .user_lists = {"fans"}}),
                "account id is empty");
  ExpectRefused(factory_.SendMassMessage("a", {.text = "", .user_lists = {"fans"}}),
                "text is empty");
  ExpectRefused(factory_.SendMassMessage("a", {.text = "x"}), "no recipients");
  ExpectRefused(
      factory_.SendMassMessage(
          "a", {.text = "x", .user_lists = {"fans"}, .price_cents = 299, .media_files = {"m"}}),
      "price must be 0 or between 3.00 and 200.00, got 2.99");
  ExpectRefused(
      factory_.SendMassMessage(
          "a", {.text = "x", .user_lists = {"fans"}, .price_cents = 20001, .media_files = {"m"}}),
      "got 200.01");
  ExpectRefused(
      factory_.SendMassMessage("a", {.text = "x", .user_lists = {"fans"}, .price_cents = 500}),
      "a priced message needs media files");
  ExpectRefused(
      factory_.SendMassMessage(
          "a", {.text = "x", .user_lists = {"fans"}, .media_files = {"m"}, .previews = {"p"}}),
      "preview p is not among the media files");
}

TEST_F(RequestFactoryTest, MassMessageQueueOperations) {
  absl::StatusOr<HttpRequest> list = factory_.ListMassMessageQueue("acct_1");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->method, HttpMethod::kGet);
  EXPECT_EQ(list->url, "https://app.onlyfansapi.com/api/acct_1/mass-messaging");
  EXPECT_TRUE(list->body.empty());

  absl::StatusOr<HttpRequest> get = factory_.GetMassMessage("acct_1", 123);
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->method, HttpMethod::kGet);
  EXPECT_EQ(get->url, "https://app.onlyfansapi.com/api/acct_1/mass-messaging/123");

  absl::StatusOr<HttpRequest> del = factory_.UnsendMassMessage("acct_1", 123);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->method, HttpMethod::kDelete);
  EXPECT_EQ(del->url, "https://app.onlyfansapi.com/api/acct_1/mass-messaging/123");

  ExpectRefused(factory_.GetMassMessage("acct_1", 0), "must be positive");
  ExpectRefused(factory_.UnsendMassMessage("acct_1", -3), "must be positive");

  absl::StatusOr<HttpRequest> overview =
      factory_.GetMassMessageOverview("acct_1", {.start = absl::FromUnixSeconds(1735689600),
                                                 .end = absl::FromUnixSeconds(1735776000),
                                                 .limit = 20,
                                                 .query = "summer sale"});
  ASSERT_TRUE(overview.ok());
  EXPECT_EQ(overview->url,
            "https://app.onlyfansapi.com/api/acct_1/mass-messaging/overview"
            "?startDate=2025-01-01%2000%3A00%3A00&endDate=2025-01-02%2000%3A00%3A00&limit=20"
            "&query=summer%20sale");
}

TEST_F(RequestFactoryTest, UpdateSendsOnlyGivenFields) {
  absl::StatusOr<HttpRequest> req = factory_.UpdateMassMessage(
      "acct_1", 77, {.text = "New", .price_cents = 999, .locked_text = false});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->method, HttpMethod::kPut);
  EXPECT_EQ(req->url, "https://app.onlyfansapi.com/api/acct_1/mass-messaging/77");
  EXPECT_EQ(boost::json::parse(req->body),
            boost::json::parse(R"({"text":"New","lockedText":false,"price":9.99})"))
      << req->body;
  ExpectRefused(factory_.UpdateMassMessage("acct_1", 77, {.text = ""}), "text is empty");
  ExpectRefused(factory_.UpdateMassMessage(
                    "acct_1", 77,
                    {.text = "x", .price_cents = 500, .media_files = std::vector<std::string>{}}),
                "needs media");
}

TEST_F(RequestFactoryTest, MediaUploadIsMultipart) {
  absl::StatusOr<HttpRequest> req =
      factory_.UploadMediaFromUrl("acct_1", "https://cdn.example.com/v.mp4?sig=a+b");
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->method, HttpMethod::kPost);
  EXPECT_EQ(req->url, "https://app.onlyfansapi.com/api/acct_1/media/upload");
  EXPECT_EQ(req->timeout, absl::Seconds(90));
  const std::string content_type = Header(*req, "Content-Type");
  ASSERT_THAT(content_type, testing::StartsWith("multipart/form-data; boundary="));
  const std::string boundary = content_type.substr(content_type.find('=') + 1);
  EXPECT_EQ(req->body, "--" + boundary +
                           "\r\nContent-Disposition: form-data; name=\"file_url\"\r\n\r\n"
                           "https://cdn.example.com/v.mp4?sig=a+b\r\n--" +
                           boundary + "--\r\n");

  absl::StatusOr<HttpRequest> file = factory_.UploadMediaFile(
      "acct_1", {.file_name = "a.jpg", .content_type = "image/jpeg", .data = "JPEGDATA"});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_THAT(file->body, HasSubstr("name=\"file\"; filename=\"a.jpg\"\r\nContent-Type: "
                                    "image/jpeg\r\n\r\nJPEGDATA\r\n"));
  ExpectRefused(factory_.UploadMediaFromUrl("acct_1", "not a url"), "not an absolute URL");
  ExpectRefused(factory_.UploadMediaFile("acct_1", {.file_name = "a"}), "the file is empty");
  // A line break in the content type would add lines of the caller's choosing to the part.
  ExpectRefused(
      factory_.UploadMediaFile("acct_1", {.file_name = "a.jpg",
                                          .content_type = "image/jpeg\r\n\r\nNOT-THE-FILE",
                                          .data = "JPEGDATA"}),
      "content type contains a control character");
}

TEST_F(RequestFactoryTest, UserLists) {
  absl::StatusOr<HttpRequest> lists =
      factory_.ListUserLists("acct_1", {.limit = 50, .offset = 100, .queue_only = true});
  ASSERT_TRUE(lists.ok());
  EXPECT_EQ(lists->url,
            "https://app.onlyfansapi.com/api/acct_1/user-lists?limit=50&offset=100&view=queue");
  ExpectRefused(factory_.ListUserLists("acct_1", {.limit = 5}), "limit must be in [10, 50]");

  absl::StatusOr<HttpRequest> create = factory_.CreateUserList("acct_1", "VIP \"whales\"");
  ASSERT_TRUE(create.ok());
  EXPECT_EQ(create->method, HttpMethod::kPost);
  EXPECT_EQ(create->url, "https://app.onlyfansapi.com/api/acct_1/user-lists");
  EXPECT_EQ(boost::json::parse(create->body), boost::json::parse(R"({"name":"VIP \"whales\""})"));
  ExpectRefused(factory_.CreateUserList("acct_1", std::string(65, 'x')), "1 to 64 characters");
  std::string accented;
  for (int i = 0; i < 64; ++i) accented += "\xc3\xa9";  // 64 characters, 128 bytes
  EXPECT_TRUE(factory_.CreateUserList("acct_1", accented).ok());
  ExpectRefused(factory_.CreateUserList("acct_1", accented + "\xc3\xa9"), "1 to 64 characters");

  absl::StatusOr<HttpRequest> add = factory_.AddUsersToUserList("acct_1", "1234", {5, 6, 7});
  ASSERT_TRUE(add.ok());
  EXPECT_EQ(add->method, HttpMethod::kPost);
  EXPECT_EQ(add->url, "https://app.onlyfansapi.com/api/acct_1/user-lists/1234/users");
  EXPECT_EQ(boost::json::parse(add->body), boost::json::parse(R"({"ids":["5","6","7"]})"));
  ExpectRefused(factory_.AddUsersToUserList("acct_1", "1234", {}), "no user ids");

  absl::StatusOr<HttpRequest> users =
      factory_.ListUserListUsers("acct_1", "fans", {.limit = 100, .offset = 0});
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users->url,
            "https://app.onlyfansapi.com/api/acct_1/user-lists/fans/users?limit=100&offset=0");
  ExpectRefused(factory_.ListUserListUsers("acct_1", "fans", {.limit = 101}), "[1, 100]");
}

TEST_F(RequestFactoryTest, Engagement) {
  absl::StatusOr<HttpRequest> stats =
      factory_.ListMassMessageStats("acct_1", {.end = absl::FromUnixSeconds(1735689600)});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->url,
            "https://app.onlyfansapi.com/api/acct_1/engagement/messages/mass-messages"
            "?endDate=2025-01-01%2000%3A00%3A00");

  absl::StatusOr<HttpRequest> top = factory_.GetTopMessage("acct_1", std::nullopt, std::nullopt);
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->url, "https://app.onlyfansapi.com/api/acct_1/engagement/messages/top-message");
  ExpectRefused(
      factory_.GetTopMessage("acct_1", absl::FromUnixSeconds(10), absl::FromUnixSeconds(5)),
      "end must be after start");

  absl::StatusOr<HttpRequest> buyers =
      factory_.ListMessageBuyers("acct_1", 99, {.limit = 10, .offset = 20, .marker = "17 3"});
  ASSERT_TRUE(buyers.ok());
  EXPECT_EQ(buyers->url,
            "https://app.onlyfansapi.com/api/acct_1/engagement/messages/99/buyers"
            "?limit=10&offset=20&marker=17%203");
}

TEST_F(RequestFactoryTest, Accounts) {
  absl::StatusOr<HttpRequest> req = factory_.ListAccounts();
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->method, HttpMethod::kGet);
  EXPECT_EQ(req->url, "https://app.onlyfansapi.com/api/accounts");
  EXPECT_THAT(req->headers, Contains(Pair("Authorization", "Bearer sk_test_key")));
}

TEST_F(RequestFactoryTest, FollowsOnlyNextPagesOnTheApiOrigin) {
  absl::StatusOr<HttpRequest> ok = factory_.FollowNextPage(
      "https://APP.onlyfansapi.com:443/api/acct_1/engagement/messages/9/"
      "buyers?offset=10&marker=5#x");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->method, HttpMethod::kGet);
  EXPECT_EQ(ok->url,
            "https://APP.onlyfansapi.com:443/api/acct_1/engagement/messages/9/buyers"
            "?offset=10&marker=5");
  EXPECT_EQ(Header(*ok, "Authorization"), "Bearer sk_test_key");
}

TEST(CheckNextPage, RefusesOtherOrigins) {
  const std::string_view base = "https://app.onlyfansapi.com";
  for (std::string_view bad : {
           "http://app.onlyfansapi.com/api/x",            // scheme downgrade
           "https://app.onlyfansapi.com.evil.com/api/x",  // look-alike host
           "https://evil.com/api/x",                      // another host
           "https://app.onlyfansapi.com:8443/api/x",      // another port
           "https://user@app.onlyfansapi.com/api/x",      // user info
           "https://app.onlyfansapi.com/other/x",         // outside /api/
           "//app.onlyfansapi.com/api/x",                 // relative
           "/api/x",                                      // relative
           "not a url",
       }) {
    absl::StatusOr<std::string> checked = CheckNextPage(base, bad);
    ASSERT_FALSE(checked.ok()) << bad;
    EXPECT_EQ(checked.status().code(), absl::StatusCode::kFailedPrecondition) << bad;
    EXPECT_THAT(std::string(checked.status().message()), HasSubstr("refusing to follow next_page"));
    ASSERT_TRUE(GetUpstreamError(checked.status()).has_value());
    EXPECT_EQ(GetUpstreamError(checked.status())->kind, ErrorKind::kTerminal);
  }
  EXPECT_TRUE(CheckNextPage("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/a?x=1").ok());
  EXPECT_FALSE(CheckNextPage("http://127.0.0.1:8080", "http://localhost:8080/api/a").ok());
}

}  // namespace
}  // namespace herald::upstream::internal
