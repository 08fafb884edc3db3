#include "responses.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/upstream/error.h>

namespace herald::upstream::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr std::string_view kMeta = R"(
  "_meta": {
    "_credits": {"used": 1, "balance": 955, "note": "Always"},
    "_cache": {"is_cached": false, "note": "Cache disabled for this endpoint"},
    "_rate_limits": {"limit_minute": 1000, "remaining_minute": 994, "limit_day": null,
                     "remaining_day": null, "notice": "daily limits removed"}
  })";

HttpResponse Ok(std::string body, HttpHeaders headers = {}) {
  return HttpResponse{.status = 200, .headers = std::move(headers), .body = std::move(body)};
}

std::string Envelope(std::string_view data, std::string_view extra = "") {
  return std::string("{\"data\": ") + std::string(data) + "," + std::string(extra) +
         std::string(kMeta) + "}";
}

template <typename T>
Result<T> InterpretAs(BodyParser<T> parse, const absl::StatusOr<HttpResponse>& response,
                      HttpMethod method = HttpMethod::kGet) {
  return Interpret<T>("test_endpoint", method, response, parse, absl::Seconds(60));
}

TEST(Interpret, QueueItemFromSend) {
  const std::string body = Envelope(R"({
      "id": 123, "date": "2025-01-01T01:01:01+00:00", "isReady": true, "isDone": false,
      "isCanceled": false, "hasError": false, "pending": 40, "total": 40, "canUnsend": true,
      "unsendSeconds": 0, "isCouplePeopleMedia": false})");
  Result<QueueItem> r = InterpretAs(&ParseQueueItemBody,
                                    Ok(body, {{"X-Rate-Limit-Limit-Minute", "1000"},
                                              {"x-rate-limit-remaining-minute", " 993 "},
                                              {"X-OFAPI-Credits-Used", "1"},
                                              {"X-OFAPI-Credits-Balance", "954"}}),
                                    HttpMethod::kPost);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r.value->id, 123);
  EXPECT_EQ(r.value->date, "2025-01-01T01:01:01+00:00");
  EXPECT_TRUE(r.value->is_ready);
  EXPECT_FALSE(r.value->is_done);
  EXPECT_EQ(r.value->pending, 40);
  EXPECT_EQ(r.value->total, 40);
  EXPECT_TRUE(r.value->can_unsend);
  EXPECT_FALSE(r.error().has_value());
  // Headers and body _meta.
  EXPECT_EQ(r.info.http_status, 200);
  EXPECT_EQ(r.info.rate_limit_minute, 1000);
  EXPECT_EQ(r.info.rate_limit_remaining_minute, 993);
  EXPECT_EQ(r.info.credits_used, 1);
  EXPECT_EQ(r.info.credits_balance, 954);
  EXPECT_FALSE(r.info.retry_after.has_value());
  ASSERT_TRUE(r.info.meta.has_value());
  EXPECT_EQ(r.info.meta->credits_used, 1);
  EXPECT_EQ(r.info.meta->credits_balance, 955);
  EXPECT_EQ(r.info.meta->credits_note, "Always");
  EXPECT_EQ(r.info.meta->is_cached, false);
  EXPECT_EQ(r.info.meta->rate_limit_minute, 1000);
  EXPECT_EQ(r.info.meta->rate_limit_remaining_minute, 994);
  // Headers win over _meta.
  EXPECT_EQ(r.info.RemainingPerMinute(), 993);
  EXPECT_EQ(r.info.CreditsBalance(), 954);
}

TEST(Interpret, MetaFillsInWhenHeadersAreAbsent) {
  Result<QueueItem> r = InterpretAs(&ParseQueueItemBody, Ok(Envelope(R"({"id": "5"})")));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r.value->id, 5);
  EXPECT_FALSE(r.info.rate_limit_remaining_minute.has_value());
  EXPECT_EQ(r.info.RemainingPerMinute(), 994);
  EXPECT_EQ(r.info.CreditsBalance(), 955);
}

TEST(Interpret, MalformedMetaIsIgnored) {
  Result<QueueItem> r = InterpretAs(&ParseQueueItemBody, Ok(R"({"data": {"id": 5}, "_meta": {
      "_credits": {"used": "lots", "balance": 12}, "_rate_limits": [], "_cache": 3}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r.info.meta.has_value());
  EXPECT_FALSE(r.info.meta->credits_used.has_value());
  EXPECT_EQ(r.info.meta->credits_balance, 12);
  EXPECT_FALSE(r.info.meta->rate_limit_remaining_minute.has_value());
}

TEST(Interpret, QueueList) {
  const std::string body = Envelope(R"([
      {"id": 1, "date": "2025-01-01T01:01:01+00:00", "isReady": true, "isDone": true,
       "isCanceled": false, "hasError": false, "pending": 0, "total": 7, "canUnsend": false,
       "unsendSeconds": 0},
      {"id": "2", "isDone": false, "pending": "3", "total": 3}])");
  Result<std::vector<QueueItem>> r = InterpretAs(&ParseQueueListBody, Ok(body));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r.value->size(), 2u);
  EXPECT_EQ((*r.value)[0].id, 1);
  EXPECT_TRUE((*r.value)[0].is_done);
  EXPECT_EQ((*r.value)[0].total, 7);
  EXPECT_EQ((*r.value)[1].id, 2);
  EXPECT_EQ((*r.value)[1].pending, 3);
}

TEST(Interpret, OverviewAndEngagementPages) {
  const std::string body = Envelope(
      R"({"hasMore": true, "items": [
        {"id": 123, "date": "2025-01-01T01:01:01+00:00", "text": "<p>Hi</p>", "rawText": "Hi",
         "responseType": "message", "template": "x", "sentCount": 120, "viewedCount": 45,
         "isFree": false, "isTip": false, "isMediaReady": true, "isCanceled": false,
         "isReportedByMe": false, "canUnsend": false, "unsendSeconds": 0, "giphyId": null,
         "mediaCount": 1, "media": [{"id": 9}], "previews": [], "price": "15.00",
         "purchasedCount": 3, "totalRevenueGenerated": 45.6},
        {"id": 124, "sentCount": 5, "viewedCount": 0}]})",
      R"("_pagination": {"next_page": "https://app.onlyfansapi.com/api/acct_1/engagement/messages/mass-messages?endDate=2025"},)");
  Result<MassMessageStatsPage> r = InterpretAs(&ParseStatsPageBody, Ok(body));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r.value->has_more);
  ASSERT_EQ(r.value->items.size(), 2u);
  const MassMessageStats& a = r.value->items[0];
  EXPECT_EQ(a.id, 123);
  EXPECT_EQ(a.text, "<p>Hi</p>");
  EXPECT_EQ(a.raw_text, "Hi");
  EXPECT_EQ(a.response_type, "message");
  EXPECT_EQ(a.sent_count, 120);
  EXPECT_EQ(a.viewed_count, 45);
  EXPECT_EQ(a.media_count, 1);
  EXPECT_EQ(a.price_cents, 1500);
  EXPECT_EQ(a.purchased_count, 3);
  EXPECT_EQ(a.revenue_cents, 4560);
  EXPECT_FALSE(r.value->items[1].price_cents.has_value());
  EXPECT_EQ(
      r.value->next_page,
      "https://app.onlyfansapi.com/api/acct_1/engagement/messages/mass-messages?endDate=2025");

  Result<MassMessageStatsPage> last = InterpretAs(
      &ParseStatsPageBody,
      Ok(Envelope(R"({"hasMore": false, "items": []})", R"("_pagination": {"next_page": null},)")));
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_FALSE(last.value->has_more);
  EXPECT_TRUE(last.value->items.empty());
  EXPECT_FALSE(last.value->next_page.has_value());
}

TEST(Interpret, QueueDetailFromGetAndDelete) {
  const std::string body = Envelope(R"({"success": true, "queue": {
      "id": 123, "date": "2025-01-01T01:01:01+00:00", "text": "My message",
      "textCropped": "My message", "giphyId": null, "isFree": true, "mediaTypes": null,
      "releaseForms": [], "sentCount": 2, "viewedCount": 0, "canUnsend": false,
      "unsendSeconds": 0, "isCanceled": true, "hasError": false}})");
  Result<QueueDetailResult> r = InterpretAs(&ParseQueueDetailBody, Ok(body), HttpMethod::kDelete);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r.value->success);
  EXPECT_EQ(r.value->queue.id, 123);
  EXPECT_EQ(r.value->queue.text, "My message");
  EXPECT_EQ(r.value->queue.text_cropped, "My message");
  EXPECT_EQ(r.value->queue.giphy_id, "");
  EXPECT_TRUE(r.value->queue.is_free);
  EXPECT_EQ(r.value->queue.sent_count, 2);
  EXPECT_TRUE(r.value->queue.is_canceled);
}

TEST(Interpret, UploadIsFlat) {
  const std::string body = R"({"prefixed_id": "ofapi_media_01JR1234", "file_name": "MyVideo.mp4",
      "processId": "abc", "host": "convert1.onlyfans.com",
      "sourceUrl": "https://of2transcoder.s3.amazonaws.com/upload/x?X-Amz-Expires=604800",
      "extra": "ZXh0cmE=", "additional": {"user": "123"},
      "thumbs": [{"id": 1, "url": "https://cdn2.onlyfans.com/t.jpg"}], "note": "ok"})";
  Result<UploadedMedia> r = InterpretAs(&ParseUploadBody, Ok(body), HttpMethod::kPost);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r.value->prefixed_id, "ofapi_media_01JR1234");
  EXPECT_EQ(r.value->file_name, "MyVideo.mp4");
  EXPECT_EQ(r.value->source_url,
            "https://of2transcoder.s3.amazonaws.com/upload/x?X-Amz-Expires=604800");
  EXPECT_FALSE(r.info.meta.has_value());

  Result<UploadedMedia> async = InterpretAs(
      &ParseUploadBody,
      HttpResponse{
          .status = 202,
          .body = R"({"polling_url": "https://app.onlyfansapi.com/api/a/media/uploads/x/status"})"},
      HttpMethod::kPost);
  ASSERT_TRUE(async.ok()) << async.status();
  EXPECT_EQ(async.value->prefixed_id, "");
  EXPECT_THAT(async.value->polling_url, HasSubstr("/status"));

  Result<UploadedMedia> missing =
      InterpretAs(&ParseUploadBody, Ok(R"({"file_name": "a"})"), HttpMethod::kPost);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("prefixed_id: required"));

  // Found by the response fuzzer: an empty id, and no polling URL to learn it from later.
  Result<UploadedMedia> empty = InterpretAs(
      &ParseUploadBody, Ok(R"({"prefixed_id": "", "file_name": "a"})"), HttpMethod::kPost);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()),
              HasSubstr("prefixed_id: expected the uploaded media's id, got an empty string"));

  // Herald uploads synchronously: an answer that only gives a polling URL has no media to send.
  Result<UploadedMedia> pending = InterpretAs(
      &ParseSyncUploadBody,
      HttpResponse{
          .status = 202,
          .body = R"({"polling_url": "https://app.onlyfansapi.com/api/a/media/uploads/x/status"})"},
      HttpMethod::kPost);
  ASSERT_FALSE(pending.ok());
  EXPECT_THAT(std::string(pending.status().message()),
              HasSubstr("answered as still processing (polling_url "
                        "\"https://app.onlyfansapi.com/api/a/media/uploads/x/status\") without "
                        "the media's id"));
  const std::optional<UpstreamError> why = GetUpstreamError(pending.status());
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->kind, ErrorKind::kUnknownOutcome);  // uploaded again on the job's retry
  Result<UploadedMedia> named = InterpretAs(&ParseSyncUploadBody, Ok(body), HttpMethod::kPost);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named.value->prefixed_id, r.value->prefixed_id);
}

TEST(Interpret, UploadInData) {
  // The vendor's marketing sample: the enveloped object, the media named `id`.
  const std::string body = Envelope(R"({"id": "ofapi_media_01JR1234", "file_name": "MyVideo.mp4",
      "processId": "abc", "sourceUrl": "https://of2transcoder.s3.amazonaws.com/upload/x"})");
  Result<UploadedMedia> r = InterpretAs(&ParseUploadBody, Ok(body), HttpMethod::kPost);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r.value->prefixed_id, "ofapi_media_01JR1234");
  EXPECT_EQ(r.value->file_name, "MyVideo.mp4");
  EXPECT_EQ(r.value->source_url, "https://of2transcoder.s3.amazonaws.com/upload/x");
  ASSERT_TRUE(r.info.meta.has_value());

  // `prefixed_id` inside `data`, and a flat `id`.
  Result<UploadedMedia> data_prefixed =
      InterpretAs(&ParseUploadBody, Ok(Envelope(R"({"prefixed_id": "ofapi_media_7", "id": 7})")),
                  HttpMethod::kPost);
  ASSERT_TRUE(data_prefixed.ok()) << data_prefixed.status();
  EXPECT_EQ(data_prefixed.value->prefixed_id, "ofapi_media_7");
  Result<UploadedMedia> flat_id =
      InterpretAs(&ParseUploadBody, Ok(R"({"id": "ofapi_media_8"})"), HttpMethod::kPost);
  ASSERT_TRUE(flat_id.ok()) << flat_id.status();
  EXPECT_EQ(flat_id.value->prefixed_id, "ofapi_media_8");

  // An asynchronous answer in `data` carries its polling URL there.
  Result<UploadedMedia> async = InterpretAs(
      &ParseUploadBody,
      HttpResponse{.status = 202, .body = Envelope(R"({"id": "ofapi_media_9", "status": "pending",
                       "polling_url": "https://app.onlyfansapi.com/api/a/media/uploads/x/status"})")},
      HttpMethod::kPost);
  ASSERT_TRUE(async.ok()) << async.status();
  EXPECT_EQ(async.value->prefixed_id, "ofapi_media_9");
  EXPECT_THAT(async.value->polling_url, HasSubstr("/status"));
}

TEST(Interpret, UploadIdThatIsNotAnUploadIsAnError) {
  // A numeric `id` names vault media, which a message cannot attach as an upload.
  Result<UploadedMedia> numeric =
      InterpretAs(&ParseUploadBody, Ok(Envelope(R"({"id": 4242})")), HttpMethod::kPost);
  ASSERT_FALSE(numeric.ok());
  EXPECT_EQ(numeric.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(std::string(numeric.status().message()),
              HasSubstr("data.id: expected a string, got"));

  Result<UploadedMedia> other =
      InterpretAs(&ParseUploadBody, Ok(Envelope(R"({"id": "vault_12"})")), HttpMethod::kPost);
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(std::string(other.status().message()),
              HasSubstr(R"(data.id: expected an id starting with ofapi_media_, got "vault_12")"));

  Result<UploadedMedia> missing =
      InterpretAs(&ParseUploadBody, Ok(Envelope(R"({"file_name": "a"})")), HttpMethod::kPost);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("data.prefixed_id: required"));

  Result<UploadedMedia> not_object =
      InterpretAs(&ParseUploadBody, Ok(R"({"data": "ofapi_media_1"})"), HttpMethod::kPost);
  EXPECT_THAT(std::string(not_object.status().message()),
              HasSubstr("data: expected an object, got"));
}

TEST(Interpret, UserLists) {
  const std::string lists = Envelope(R"([
      {"id": "fans", "name": "Fans", "type": "fans", "usersCount": 1200, "postsCount": 0,
       "canAddUsers": false, "canDelete": false},
      {"id": 1234567, "name": "VIP", "type": "custom", "usersCount": 12, "postsCount": 0,
       "canAddUsers": true, "canDelete": true, "canManageUsers": true, "canUpdate": true,
       "canPinnedToChat": true, "canPinnedToFeed": true, "isPinnedToChat": false,
       "isPinnedToFeed": false, "direction": "desc", "order": "recent", "sortList": [],
       "users": []}])");
  Result<std::vector<UserList>> r = InterpretAs(&ParseUserListsBody, Ok(lists));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r.value->size(), 2u);
  EXPECT_EQ((*r.value)[0].id, "fans");
  EXPECT_EQ((*r.value)[0].users_count, 1200);
  EXPECT_FALSE((*r.value)[0].can_add_users);
  EXPECT_EQ((*r.value)[1].id, "1234567");
  EXPECT_EQ((*r.value)[1].name, "VIP");
  EXPECT_EQ((*r.value)[1].type, "custom");
  EXPECT_TRUE((*r.value)[1].can_add_users);

  Result<std::vector<UserList>> paged = InterpretAs(
      &ParseUserListsBody, Ok(Envelope(R"({"list": [{"id": 5, "name": "A"}], "hasMore": false})")));
  ASSERT_TRUE(paged.ok()) << paged.status();
  EXPECT_EQ((*paged.value)[0].id, "5");

  Result<UserList> created = InterpretAs(
      &ParseUserListBody, Ok(Envelope(R"({"id": 1234568, "name": "Whales", "type": "custom",
                                     "usersCount": 0, "postsCount": 0, "canAddUsers": true,
                                     "canDelete": true, "users": []})")),
      HttpMethod::kPost);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created.value->id, "1234568");
  EXPECT_EQ(created.value->name, "Whales");
}

TEST(Interpret, AddUsers) {
  Result<AddUsersResult> r = InterpretAs(
      &ParseAddUsersBody, Ok(Envelope(R"({"1224114714": [101, "102", 103], "success": true})")),
      HttpMethod::kPost);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r.value->users_by_key, ElementsAre(Pair("1224114714", ElementsAre(101, 102, 103))));

  Result<AddUsersResult> bad = InterpretAs(
      &ParseAddUsersBody, Ok(Envelope(R"({"1224114714": [101, "x"]})")), HttpMethod::kPost);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("data.1224114714[1]: expected an integer, got string \"x\""));
}

TEST(Interpret, UserListUsers) {
  const std::string body = Envelope(R"({"list": [
      {"id": 501, "name": "Ann", "username": "ann", "avatar": null, "isVerified": false},
      {"id": "502", "name": "Bob", "username": "bob"}], "hasMore": true, "nextOffset": 2})");
  Result<UserListUsersPage> r = InterpretAs(&ParseUserListUsersBody, Ok(body));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r.value->users.size(), 2u);
  EXPECT_EQ(r.value->users[0].id, 501);
  EXPECT_EQ(r.value->users[0].username, "ann");
  EXPECT_EQ(r.value->users[1].id, 502);
  EXPECT_TRUE(r.value->has_more);
  EXPECT_EQ(r.value->next_offset, 2);
}

TEST(Interpret, TopMessage) {
  const std::string body = Envelope(R"({"purchases": {
      "id": 123, "date": "2025-01-01T01:01:01+00:00", "text": "<p>PPV</p>", "rawText": "PPV",
      "price": "9.99", "purchasedCount": 14, "sentCount": 500, "viewedCount": 210,
      "totalRevenueGenerated": "139.86", "canSendMessageToBuyers": true, "isFree": false,
      "isTip": false, "isCanceled": false, "canUnsend": false, "unsendSeconds": 0,
      "mediaCount": 1, "media": [], "previews": [], "responseType": "message", "template": "",
      "relationships": {"buyers": {"href": "https://x", "method": "GET"}}}})");
  Result<std::optional<TopMessage>> r = InterpretAs(&ParseTopMessageBody, Ok(body));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r.value->has_value());
  const TopMessage& top = **r.value;
  EXPECT_EQ(top.id, 123);
  EXPECT_EQ(top.price_cents, 999);
  EXPECT_EQ(top.purchased_count, 14);
  EXPECT_EQ(top.sent_count, 500);
  EXPECT_EQ(top.viewed_count, 210);
  EXPECT_EQ(top.total_revenue_cents, 13986);
  EXPECT_EQ(top.media_count, 1);

  for (std::string_view empty : {R"({"purchases": null})", "{}", "[]"}) {
    Result<std::optional<TopMessage>> none = InterpretAs(&ParseTopMessageBody, Ok(Envelope(empty)));
    ASSERT_TRUE(none.ok()) << empty << ": " << none.status();
    EXPECT_FALSE(none.value->has_value()) << empty;
  }

  Result<std::optional<TopMessage>> bad_price = InterpretAs(
      &ParseTopMessageBody, Ok(Envelope(R"({"purchases": {"id": 1, "price": "9,99"}})")));
  ASSERT_FALSE(bad_price.ok());
  EXPECT_THAT(std::string(bad_price.status().message()),
              HasSubstr("data.purchases.price: invalid money amount \"9,99\""));
}

TEST(Interpret, Buyers) {
  const std::string body = Envelope(
      R"({"list": [{"id": 77, "name": "Cat", "username": "cat"}], "hasMore": true,
          "marker": 1735689600})",
      R"("_pagination": {"next_page": "https://app.onlyfansapi.com/api/acct_1/engagement/messages/123/buyers?offset=1&marker=1735689600"},)");
  Result<BuyersPage> r = InterpretAs(&ParseBuyersBody, Ok(body));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r.value->buyers.size(), 1u);
  EXPECT_EQ(r.value->buyers[0].id, 77);
  EXPECT_TRUE(r.value->has_more);
  EXPECT_EQ(r.value->marker, "1735689600");
  EXPECT_THAT(r.value->next_page.value_or(""), HasSubstr("offset=1&marker=1735689600"));
}

TEST(Interpret, Accounts) {
  const std::string bare = R"([
      {"id": "acct_0123456789abcdef0123456789abcdef", "onlyfans_username": "creator",
       "display_name": "Creator", "is_authenticated": true, "other": {"x": 1}},
      {"id": "acct_2", "onlyfans_username": "b", "display_name": "B", "is_authenticated": false}])";
  for (const std::string& body : {bare, Envelope(bare)}) {
    Result<std::vector<Account>> r = InterpretAs(&ParseAccountsBody, Ok(body));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r.value->size(), 2u);
    EXPECT_EQ((*r.value)[0].id, "acct_0123456789abcdef0123456789abcdef");
    EXPECT_EQ((*r.value)[0].onlyfans_username, "creator");
    EXPECT_EQ((*r.value)[0].display_name, "Creator");
    EXPECT_TRUE((*r.value)[0].is_authenticated);
    EXPECT_FALSE((*r.value)[1].is_authenticated);
  }
}

// --- Contract violations in 2xx bodies ---

TEST(Interpret, BodiesThatBreakTheContractAreUnknownOutcomes) {
  struct Case {
    std::string body;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"data": {"id": 1, "pending": "many"}})",
       "data.pending: expected an integer, got string \"many\""},
      {R"({"data": {"id": 1, "isDone": "yes"}})", "data.isDone: expected a boolean, got a string"},
      {R"({"data": {"pending": 1}})", "data.id: required field is missing"},
      {R"({"data": [1, 2]})", "data: expected an object, got an array"},
      {R"({"result": {}})", "data: required field is missing"},
      {R"({"data": {"id": 1, "date": 5}})", "data.date: expected a string, got an integer"},
      {R"({"data": {"id": 1)", "invalid JSON"},
      {"", "invalid JSON"},
      {"<html>502</html>", "invalid JSON"},
  };
  for (const Case& c : cases) {
    Result<QueueItem> r = InterpretAs(&ParseQueueItemBody, Ok(c.body), HttpMethod::kPost);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnknown) << c.body;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message)) << c.body;
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr("upstream test_endpoint: HTTP 200 with a body that does not match"));
    ASSERT_TRUE(r.error().has_value());
    EXPECT_EQ(r.error()->kind, ErrorKind::kUnknownOutcome);
    EXPECT_EQ(r.error()->http_status, 200);
    EXPECT_TRUE(r.error()->request_written);
  }
}

// --- Error classification ---

struct Classified {
  absl::Status status;
  UpstreamError error;
};

Classified Classify(int status, std::string body, HttpHeaders headers = {},
                    HttpMethod method = HttpMethod::kPost) {
  const HttpResponse res{.status = status, .headers = std::move(headers), .body = std::move(body)};
  Classified out;
  out.status = ClassifyHttpStatus("send_mass_message", method, res, absl::Seconds(60));
  EXPECT_FALSE(out.status.ok()) << status;
  const std::optional<UpstreamError> error = GetUpstreamError(out.status);
  EXPECT_TRUE(error.has_value()) << status;
  out.error = error.value_or(UpstreamError{});
  EXPECT_EQ(out.error.http_status, status);
  EXPECT_TRUE(out.error.request_written);
  return out;
}

TEST(ClassifyHttpStatus, SuccessCodes) {
  for (int status : {200, 201, 202, 204}) {
    EXPECT_TRUE(
        ClassifyHttpStatus("x", HttpMethod::kPost, HttpResponse{.status = status}, absl::Seconds(1))
            .ok());
  }
}

TEST(ClassifyHttpStatus, RateLimitedWithRetryAfter) {
  Classified c = Classify(429, R"({"error": "Too many requests"})", {{"Retry-After", "17"}});
  EXPECT_EQ(c.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(c.error.kind, ErrorKind::kRateLimited);
  EXPECT_EQ(c.error.retry_after, absl::Seconds(17));
  EXPECT_EQ(std::string(c.status.message()),
            "upstream send_mass_message: HTTP 429, retry after 17s: Too many requests");
}

// An HTTP date (RFC 9110's other form) is the time from now until then, never negative.
TEST(ClassifyHttpStatus, RateLimitedWithRetryAfterAsADate) {
  const std::string in_90s = absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT",
                                              absl::Now() + absl::Seconds(90), absl::UTCTimeZone());
  Classified c = Classify(429, "", {{"Retry-After", in_90s}});
  EXPECT_EQ(c.error.kind, ErrorKind::kRateLimited);
  EXPECT_GE(c.error.retry_after, absl::Seconds(85));
  EXPECT_LE(c.error.retry_after, absl::Seconds(91));
  Classified past = Classify(429, "", {{"Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  EXPECT_EQ(past.error.retry_after, absl::ZeroDuration());
  // At most an hour, either way.
  EXPECT_EQ(Classify(429, "", {{"Retry-After", "999999"}}).error.retry_after, absl::Hours(1));
  EXPECT_EQ(Classify(429, "", {{"Retry-After", "99999999999999999999999"}}).error.retry_after,
            absl::Hours(1));
  EXPECT_EQ(Classify(429, "", {{"Retry-After", "Fri, 01 Jan 2100 00:00:00 GMT"}}).error.retry_after,
            absl::Hours(1));
}

TEST(ClassifyHttpStatus, RateLimitedWithoutRetryAfterUsesTheDefault) {
  for (HttpHeaders headers :
       {HttpHeaders{}, HttpHeaders{{"Retry-After", "soon"}}, HttpHeaders{{"Retry-After", "-5"}}}) {
    Classified c = Classify(429, "", headers);
    EXPECT_EQ(c.error.kind, ErrorKind::kRateLimited);
    EXPECT_EQ(c.error.retry_after, absl::Seconds(60));
  }
}

TEST(ClassifyHttpStatus, OutOfCredits) {
  Classified c = Classify(402, R"({"error": "Insufficient credits", "code": "no_credits"})");
  EXPECT_EQ(c.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(c.error.kind, ErrorKind::kOutOfCredits);
  EXPECT_EQ(c.error.code, "no_credits");
  EXPECT_THAT(std::string(c.status.message()), HasSubstr("Insufficient credits [code no_credits]"));
}

TEST(ClassifyHttpStatus, Unauthorized) {
  Classified c = Classify(
      401,
      R"({"error": "Unauthorized. Go to https://app.onlyfansapi.com/api-keys to get your API key."})");
  EXPECT_EQ(c.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(c.error.kind, ErrorKind::kUnauthorized);
  EXPECT_THAT(std::string(c.status.message()), HasSubstr("Unauthorized. Go to"));
}

TEST(ClassifyHttpStatus, ValidationIsTerminalWithTheUpstreamMessage) {
  Classified c = Classify(422, R"({"message": "The given data was invalid.",
      "errors": {"price": ["The price must be at least 3."], "text": ["The text is required."]}})");
  EXPECT_EQ(c.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.error.kind, ErrorKind::kTerminal);
  EXPECT_THAT(std::string(c.status.message()),
              HasSubstr("HTTP 422: The given data was invalid. (The price must be at least 3.; "
                        "The text is required.)"));

  Classified banned =
      Classify(422, R"({"error": "Banned words: foo, bar", "code": "banned_words"})");
  EXPECT_EQ(banned.error.code, "banned_words");
  EXPECT_THAT(std::string(banned.status.message()), HasSubstr("Banned words: foo, bar"));

  Classified nested = Classify(400, R"({"error": {"message": "bad id", "code": 17}})");
  EXPECT_EQ(nested.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(nested.error.code, "17");
  EXPECT_THAT(std::string(nested.status.message()), HasSubstr("bad id [code 17]"));
}

TEST(ClassifyHttpStatus, OtherClientErrors) {
  Classified not_found =
      Classify(404, R"({"message": "Account not found", "code": "account_not_found"})");
  EXPECT_EQ(not_found.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(not_found.error.kind, ErrorKind::kTerminal);
  EXPECT_EQ(not_found.error.code, "account_not_found");
  EXPECT_EQ(Classify(403, "").status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Classify(409, "").status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Classify(301, "").error.kind, ErrorKind::kTerminal);
}

TEST(ClassifyHttpStatus, ServerErrorsAreRetryable) {
  for (int status : {500, 503, 599, 408}) {
    Classified c = Classify(status, "<html>oops</html>");
    EXPECT_EQ(c.status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_EQ(c.error.kind, ErrorKind::kRetryable) << status;
    EXPECT_THAT(std::string(c.status.message()), HasSubstr("<html>oops</html>"));
  }
  for (int status : {502, 504}) {
    Classified get = Classify(status, "", {}, HttpMethod::kGet);
    EXPECT_EQ(get.error.kind, ErrorKind::kRetryable) << status;
  }
}

TEST(ClassifyHttpStatus, GatewayFailuresOfMutationsAreUnknownOutcomes) {
  for (HttpMethod method : {HttpMethod::kPost, HttpMethod::kPut, HttpMethod::kDelete}) {
    for (int status : {502, 504}) {
      Classified c = Classify(status, "Gateway Timeout", {}, method);
      EXPECT_EQ(c.status.code(), absl::StatusCode::kUnknown) << status;
      EXPECT_EQ(c.error.kind, ErrorKind::kUnknownOutcome) << status;
    }
  }
}

TEST(ClassifyHttpStatus, QuotesLongOrBinaryBodiesSafely) {
  Classified c = Classify(500, std::string(1000, 'x') + "\n");
  const std::string message(c.status.message());
  EXPECT_LT(message.size(), 400u);
  EXPECT_THAT(message, HasSubstr("..."));
  Classified control = Classify(500, std::string("a\r\nb\0c", 6));
  EXPECT_THAT(std::string(control.status.message()), HasSubstr("a  b c"));
}

TEST(Interpret, ErrorsCarryTheirHeaders) {
  Result<QueueItem> r = InterpretAs(&ParseQueueItemBody,
                                    HttpResponse{.status = 429,
                                                 .headers = {{"Retry-After", "30"},
                                                             {"X-Rate-Limit-Remaining-Minute", "0"},
                                                             {"X-OFAPI-Credits-Balance", "500"}},
                                                 .body = "{}"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error()->kind, ErrorKind::kRateLimited);
  EXPECT_EQ(r.error()->retry_after, absl::Seconds(30));
  EXPECT_EQ(r.info.http_status, 429);
  EXPECT_EQ(r.info.retry_after, absl::Seconds(30));
  EXPECT_EQ(r.info.rate_limit_remaining_minute, 0);
  EXPECT_EQ(r.info.credits_balance, 500);
}

TEST(Interpret, TransportFailuresPassThrough) {
  const absl::Status transport = MakeUpstreamStatus(
      absl::StatusCode::kUnavailable, "connect failed", {.kind = ErrorKind::kRetryable});
  Result<QueueItem> r = InterpretAs(&ParseQueueItemBody, absl::StatusOr<HttpResponse>(transport));
  EXPECT_EQ(r.status(), transport);
  EXPECT_EQ(r.error()->kind, ErrorKind::kRetryable);
  EXPECT_EQ(r.info.http_status, 0);
}

}  // namespace
}  // namespace herald::upstream::internal
