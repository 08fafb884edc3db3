// The pure request checks of convert.h. The RPCs themselves run in tests/e2e.
#include "convert.h"

#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include <absl/strings/escaping.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/campaign/service.h>
#include <herald/common/strings.h>

#include "names.h"

namespace herald::api {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

google::protobuf::Timestamp Ts(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  t.set_nanos(nanos);
  return t;
}

TEST(ParseTimestampMillisTest, AcceptsTheRangeOfTimestampOnly) {
  EXPECT_EQ(*ParseTimestampMillis("t", Ts(1767225600, 5'000'000)), 1767225600005);
  EXPECT_EQ(*ParseTimestampMillis("t", Ts(-62135596800)), -62135596800000);
  EXPECT_EQ(*ParseTimestampMillis("t", Ts(253402300799, 999'999'999)), 253402300799999);
  for (const google::protobuf::Timestamp& bad :
       {Ts(-62135596801), Ts(253402300800), Ts(0, -1), Ts(0, 1'000'000'000),
        Ts(std::numeric_limits<int64_t>::max()), Ts(std::numeric_limits<int64_t>::min())}) {
    absl::StatusOr<int64_t> ms = ParseTimestampMillis("end_time", bad);
    ASSERT_FALSE(ms.ok()) << bad.ShortDebugString();
    EXPECT_EQ(ms.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(ms.status().message()),
                HasSubstr("end_time: is not a valid timestamp"));
  }
}

TEST(PageTokenTest, ATokenIsBoundToItsListing) {
  const std::string token = EncodePageToken("acct_b", 42);
  EXPECT_EQ(DecodePageToken(token, 42).value_or(""), "acct_b");
  EXPECT_EQ(DecodePageToken("", 42).value_or("error"), "");
  for (const std::string& bad : {EncodePageToken("acct_b", 43), std::string("not a token"),
                                 absl::WebSafeBase64Escape("43:acct_b")}) {
    absl::StatusOr<std::string> after = DecodePageToken(bad, 42);
    ASSERT_FALSE(after.ok()) << bad;
    EXPECT_EQ(after.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(after.status().message()), HasSubstr("page_token"));
  }
}

TEST(CreateRequestIdTest, AFingerprintOfTheRequestWithoutItsRequestId) {
  v1::CreateTeamRequest req;
  req.set_parent("tenants/acme");
  req.set_team_id("main");
  EXPECT_TRUE(CreateRequestId(req)->empty());  // no request_id: not idempotent
  req.set_request_id("r1");
  absl::StatusOr<store::RequestId> first = CreateRequestId(req);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id, "r1");
  EXPECT_EQ(first->fingerprint.size(), 32u);
  // The request id itself is not part of it; every other field is.
  req.set_request_id("r2");
  EXPECT_EQ(CreateRequestId(req)->fingerprint, first->fingerprint);
  req.set_team_id("other");
  EXPECT_NE(CreateRequestId(req)->fingerprint, first->fingerprint);
  req.set_team_id("main");
  EXPECT_NE(CreateRequestId(req, "bytes")->fingerprint, first->fingerprint);
  // Secrets are left out: a digest of one, kept in Redis, would let a guess be checked.
  req.mutable_team()->set_upstream_api_key("sk-guess-me");
  req.mutable_team()->set_webhook_signing_secret("a-signing-secret-of-32-characters");
  const std::string with_secrets = CreateRequestId(req)->fingerprint;
  req.mutable_team()->set_upstream_api_key("sk-another-guess");
  req.mutable_team()->clear_webhook_signing_secret();
  EXPECT_EQ(CreateRequestId(req)->fingerprint, with_secrets);
  req.mutable_team()->set_display_name("Main");
  EXPECT_NE(CreateRequestId(req)->fingerprint, with_secrets);
  req.set_request_id(std::string(101, 'x'));
  EXPECT_EQ(CreateRequestId(req).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateRequestIdTest, UpToAHundredCharactersWithoutControlCharacters) {
  std::string accented;
  for (int i = 0; i < 100; ++i) accented += "\xc3\xa9";  // 200 bytes, 100 characters
  EXPECT_TRUE(ValidateRequestId(accented).ok());
  EXPECT_EQ(ValidateRequestId(accented + "x").code(), absl::StatusCode::kInvalidArgument);
  for (std::string bad : {std::string("a\nb"), std::string("a\0b", 3), std::string("\x7f")}) {
    const absl::Status s = ValidateRequestId(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("request_id: must not contain control"));
  }
}

TEST(ParseCampaignTest, GracePeriodIsZeroOrAtLeastOneMillisecond) {
  v1::Campaign c;
  c.mutable_content()->set_text("New set");
  v1::AccountTarget* target = c.add_targets();
  target->set_account("tenants/acme/accounts/acct_a");
  target->add_user_lists("fans");
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  auto grace_of = [&](int64_t seconds, int32_t nanos) {
    c.mutable_grace_period()->set_seconds(seconds);
    c.mutable_grace_period()->set_nanos(nanos);
    return ParseCampaign("acme", c, now);
  };
  EXPECT_EQ(grace_of(0, 0)->grace_period_ms, 15 * 60 * 1000);  // 0: the default
  EXPECT_EQ(grace_of(0, 1'500'000)->grace_period_ms, 1);
  EXPECT_EQ(grace_of(90, 0)->grace_period_ms, 90'000);
  // Found by fuzzing: 1.8 us was kept as 0 ms, which reads back as the 15-minute default.
  absl::StatusOr<store::Campaign> tiny = grace_of(0, 1800);
  ASSERT_FALSE(tiny.ok());
  EXPECT_EQ(tiny.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tiny.status().message()), HasSubstr("campaign.grace_period"));
  // A Duration's nanos lie within ±1 s and share the seconds' sign.
  for (auto [seconds, nanos] :
       {std::pair<int64_t, int32_t>{0, 1'500'000'000}, {10, -500'000'000}, {0, -1'000'000'000}}) {
    absl::StatusOr<store::Campaign> bad = grace_of(seconds, nanos);
    ASSERT_FALSE(bad.ok()) << seconds << "s " << nanos << "ns";
    EXPECT_THAT(std::string(bad.status().message()),
                HasSubstr("campaign.grace_period: is not a valid duration"));
  }
}

v1::Campaign MinimalCampaign() {
  v1::Campaign c;
  c.mutable_content()->set_text("New set");
  v1::AccountTarget* target = c.add_targets();
  target->set_account("tenants/acme/accounts/acct_a");
  target->add_user_lists("fans");
  return c;
}

TEST(ParseCampaignTest, ListIdsAreSystemNamesOrNumbersAndTextIsNotBlank) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  v1::Campaign c = MinimalCampaign();
  c.mutable_targets(0)->add_user_lists("1004");
  c.mutable_targets(0)->add_user_lists("rebill_on");
  c.mutable_targets(0)->add_excluded_lists("muted");
  ASSERT_TRUE(ParseCampaign("acme", c, now).ok()) << ParseCampaign("acme", c, now).status();
  for (const char* bad : {"-5", "0", "01", "Fans", "vip list", "x;y"}) {
    v1::Campaign with = c;
    with.mutable_targets(0)->add_excluded_lists(bad);
    absl::StatusOr<store::Campaign> parsed = ParseCampaign("acme", with, now);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()),
                HasSubstr("campaign.targets[0].excluded_lists[1]: '"))
        << bad;
  }
  c.mutable_content()->set_text(" \t\n ");
  absl::StatusOr<store::Campaign> blank = ParseCampaign("acme", c, now);
  ASSERT_FALSE(blank.ok());
  EXPECT_THAT(std::string(blank.status().message()), HasSubstr(".text: must not be blank"));
}

TEST(ParseCampaignTest, AListOrFanGivenTwiceOrBothIncludedAndExcludedIsRefused) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  struct Case {
    std::function<void(v1::AccountTarget&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](v1::AccountTarget& t) { t.add_user_lists("fans"); },
       "campaign.targets[0].user_lists[1]: is listed twice"},
      {[](v1::AccountTarget& t) {
         t.add_excluded_lists("1004");
         t.add_excluded_lists("1004");
       },
       "campaign.targets[0].excluded_lists[1]: is listed twice"},
      {[](v1::AccountTarget& t) { t.add_excluded_lists("fans"); },
       "campaign.targets[0].excluded_lists[0]: 'fans' is also in user_lists"},
      {[](v1::AccountTarget& t) {
         t.add_fan_ids(7);
         t.add_fan_ids(8);
         t.add_fan_ids(7);
       },
       "campaign.targets[0].fan_ids[2]: fan 7 is listed twice"},
  };
  for (const Case& c : cases) {
    v1::Campaign campaign = MinimalCampaign();
    c.change(*campaign.mutable_targets(0));
    absl::StatusOr<store::Campaign> parsed = ParseCampaign("acme", campaign, now);
    ASSERT_FALSE(parsed.ok()) << c.message;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(), c.message);
  }
}

TEST(ParseCampaignTest, ControlCharactersAreRefusedBesideTabsAndLineBreaksInText) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  v1::Campaign c = MinimalCampaign();
  c.mutable_content()->set_text("Line one\r\n\tLine two");
  EXPECT_TRUE(ParseCampaign("acme", c, now).ok());
  c.mutable_content()->set_text(std::string("New\0set", 7));
  EXPECT_THAT(std::string(ParseCampaign("acme", c, now).status().message()),
              HasSubstr("campaign.content.text: must not contain control characters"));
  c = MinimalCampaign();
  c.set_display_name("Weekend\nPPV");
  EXPECT_THAT(std::string(ParseCampaign("acme", c, now).status().message()),
              HasSubstr("campaign.display_name: must not contain control characters"));
}

TEST(ParseCampaignTest, UpstreamLeadIsWholeSecondsUpToSevenDays) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  v1::Campaign c = MinimalCampaign();
  auto lead_of = [&](int64_t seconds, int32_t nanos) {
    c.mutable_upstream_lead()->set_seconds(seconds);
    c.mutable_upstream_lead()->set_nanos(nanos);
    return ParseCampaign("acme", c, now);
  };
  EXPECT_EQ(ParseCampaign("acme", MinimalCampaign(), now)->upstream_lead_ms, 0);
  EXPECT_EQ(lead_of(3600, 0)->upstream_lead_ms, 3'600'000);
  EXPECT_EQ(lead_of(7 * 86400, 0)->upstream_lead_ms, int64_t{7} * 86'400'000);
  for (auto [seconds, nanos] : {std::pair<int64_t, int32_t>{7 * 86400 + 1, 0}, {-1, 0}, {1, 5}}) {
    absl::StatusOr<store::Campaign> bad = lead_of(seconds, nanos);
    ASSERT_FALSE(bad.ok()) << seconds << "s " << nanos << "ns";
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr("campaign.upstream_lead"));
  }
}

TEST(ParseCampaignTest, TextAndNameLimitsCountCharactersNotBytes) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  v1::Campaign c = MinimalCampaign();
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "\xc3\xa9";  // "é": two bytes, one character
  c.mutable_content()->set_text(text);
  std::string name;
  for (int i = 0; i < 200; ++i) name += "\xe2\x82\xac";  // "€": three bytes
  c.set_display_name(name);
  EXPECT_TRUE(ParseCampaign("acme", c, now).ok());

  c.mutable_content()->set_text(text + "x");
  absl::StatusOr<store::Campaign> long_text = ParseCampaign("acme", c, now);
  ASSERT_FALSE(long_text.ok());
  EXPECT_THAT(std::string(long_text.status().message()),
              HasSubstr("campaign.content.text: at most 10000 characters"));

  c.mutable_content()->set_text("New set");
  c.set_display_name(name + "x");
  absl::StatusOr<store::Campaign> long_name = ParseCampaign("acme", c, now);
  ASSERT_FALSE(long_name.ok());
  EXPECT_THAT(std::string(long_name.status().message()), HasSubstr("display_name"));
}

TEST(ParseCampaignTest, SendTimeMayLagTheServerClockBySecondsNotMore) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  v1::Campaign c = MinimalCampaign();
  *c.mutable_send_time() = Ts(absl::ToUnixSeconds(now) - 3);
  EXPECT_EQ(ParseCampaign("acme", c, now)->send_time_ms, absl::ToUnixMillis(now) - 3000);
  *c.mutable_send_time() = Ts(absl::ToUnixSeconds(now) - 30);
  absl::StatusOr<store::Campaign> past = ParseCampaign("acme", c, now);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(past.status().message()),
              HasSubstr("campaign.send_time: is in the past"));
}

TEST(ParseTopCampaignsTest, DefaultsToThirtyDaysBeforeNow) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  v1::TopCampaignsRequest r;
  absl::StatusOr<TopCampaignsQuery> q = ParseTopCampaigns(r, now);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->end_ms, 1767225600000);
  EXPECT_EQ(q->start_ms, 1767225600000 - int64_t{30} * 24 * 3600 * 1000);
  EXPECT_EQ(q->limit, 10);

  *r.mutable_start_time() = Ts(1764547200);
  *r.mutable_end_time() = Ts(1764633600);
  r.set_limit(5);
  q = ParseTopCampaigns(r, now);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->start_ms, 1764547200000);
  EXPECT_EQ(q->end_ms, 1764633600000);
  EXPECT_EQ(q->limit, 5);
}

// Create times are whole milliseconds: a campaign created at ...197 ms is at or after a start
// of ...196.999999999 ms and before an end of ...197.000001 ms, but not at or after ...197.0005.
TEST(ParseTopCampaignsTest, BoundsRoundUpToWholeMilliseconds) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  v1::TopCampaignsRequest r;
  *r.mutable_start_time() = Ts(1764547200, 196'999'999);
  *r.mutable_end_time() = Ts(1764547200, 197'000'001);
  absl::StatusOr<TopCampaignsQuery> q = ParseTopCampaigns(r, now);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->start_ms, 1764547200197);  // 197 >= start
  EXPECT_EQ(q->end_ms, 1764547200198);    // 197 < end
  *r.mutable_start_time() = Ts(1764547200, 197'000'500);
  *r.mutable_end_time() = Ts(1764547200, 197'900'000);
  q = ParseTopCampaigns(r, now);
  ASSERT_TRUE(q.ok()) << q.status();  // start < end, though both round to the same millisecond
  EXPECT_EQ(q->start_ms, 1764547200198);
  EXPECT_EQ(q->end_ms, 1764547200198);  // nothing: 197 is before the start
  *r.mutable_end_time() = Ts(1764547200, 197'000'500);
  q = ParseTopCampaigns(r, now);
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(std::string(q.status().message()), HasSubstr("start_time: must be before end_time"));
  EXPECT_EQ(*ParseTimestampBoundMillis("t", Ts(1, 0)), 1000);
  EXPECT_EQ(*ParseTimestampBoundMillis("t", Ts(-1, 500'000)), -999);
}

TEST(ParseTopCampaignsTest, TimesOutsideTheTimestampRangeAreRejected) {
  // The end's milliseconds lie 808 ms above INT64_MIN; the default start, 30 days before it,
  // overflowed.
  v1::TopCampaignsRequest r;
  *r.mutable_end_time() = Ts(-9223372036854775);
  absl::StatusOr<TopCampaignsQuery> q = ParseTopCampaigns(r, absl::Now());
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(q.status().message()), HasSubstr("end_time: is not a valid timestamp"));

  r.clear_end_time();
  *r.mutable_start_time() = Ts(std::numeric_limits<int64_t>::max());
  q = ParseTopCampaigns(r, absl::Now());
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(std::string(q.status().message()), HasSubstr("start_time: is not a valid timestamp"));
}

TEST(ValidateTeamUpdateTest, ARateLimitNamedInTheMaskIsOneOrMore) {
  v1::Team team;
  team.set_upstream_api_key("ofapi_new");
  team.set_rate_limit_per_minute(500);
  EXPECT_TRUE(ValidateTeamUpdate(team, {"upstream_api_key", "rate_limit_per_minute"}).ok());

  // 0 is the default only on create; in an update it would reach the rate limiter, which takes
  // it for "unlimited". Rotating the key in the same update changes nothing.
  team.set_rate_limit_per_minute(0);
  for (const std::vector<std::string>& fields : std::vector<std::vector<std::string>>{
           {"rate_limit_per_minute"}, {"upstream_api_key", "rate_limit_per_minute"}}) {
    absl::Status s = ValidateTeamUpdate(team, fields);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << fields.size();
    EXPECT_THAT(std::string(s.message()), HasSubstr("team.rate_limit_per_minute"));
  }
  // Not named: not checked, not written.
  EXPECT_TRUE(ValidateTeamUpdate(team, {"upstream_api_key"}).ok());

  team.clear_upstream_api_key();
  absl::Status s = ValidateTeamUpdate(team, {"upstream_api_key"});
  EXPECT_THAT(std::string(s.message()), HasSubstr("team.upstream_api_key: is required"));
  EXPECT_TRUE(ValidateTeamUpdate(team, {"display_name"}).ok());
}

TEST(ValidateTeamUpdateTest, AnUpstreamKeyWithWhitespaceIsRefused) {
  v1::Team team;
  for (const std::string bad : {"ofapi_new\n", " ofapi_new", "ofapi new", "ofapi\x7fnew"}) {
    team.set_upstream_api_key(bad);
    absl::Status s = ValidateTeamUpdate(team, {"upstream_api_key"});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("team.upstream_api_key: must not contain whitespace"));
  }
  team.set_upstream_api_key("ofapi_new-key.1");
  EXPECT_TRUE(ValidateTeamUpdate(team, {"upstream_api_key"}).ok());
}

TEST(ValidateTeamUpdateTest, AWebhookSecretIs16To256CharactersAndABurstNotNegative) {
  v1::Team team;
  team.set_webhook_signing_secret("short");
  absl::Status s = ValidateTeamUpdate(team, {"webhook_signing_secret"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("team.webhook_signing_secret: must be 16-256"));
  EXPECT_TRUE(ValidateTeamUpdate(team, {"display_name"}).ok()) << "not named: not checked";
  team.set_webhook_signing_secret(std::string(256, 's'));
  EXPECT_TRUE(ValidateTeamUpdate(team, {"webhook_signing_secret"}).ok());
  team.set_webhook_signing_secret(std::string(257, 's'));
  EXPECT_FALSE(ValidateTeamUpdate(team, {"webhook_signing_secret"}).ok());
  team.clear_webhook_signing_secret();
  EXPECT_THAT(std::string(ValidateTeamUpdate(team, {"webhook_signing_secret"}).message()),
              HasSubstr("is required"));

  team.set_burst(-1);
  EXPECT_THAT(std::string(ValidateTeamUpdate(team, {"burst"}).message()),
              HasSubstr("team.burst: must not be negative"));
  team.set_burst(50);
  EXPECT_TRUE(ValidateTeamUpdate(team, {"burst"}).ok());
}

TEST(ValidateTeamUpdateTest, FieldsOutsideTheMaskAreNotChecked) {
  v1::Team team;
  team.set_display_name(std::string(201, 'x'));
  team.set_upstream_api_key(std::string(1025, 'k'));
  team.set_rate_limit_per_minute(600);
  EXPECT_TRUE(ValidateTeamUpdate(team, {"rate_limit_per_minute"}).ok());
  EXPECT_THAT(std::string(ValidateTeamUpdate(team, {"display_name"}).message()),
              ::testing::HasSubstr("team.display_name"));
  EXPECT_THAT(std::string(ValidateTeamUpdate(team, {"upstream_api_key"}).message()),
              ::testing::HasSubstr("team.upstream_api_key"));
}

TEST(ValidateAccountFieldsTest, AnUpdateChecksOnlyTheFieldsItsMaskNames) {
  v1::Account account;
  account.set_display_name("Creator");
  account.set_sends_per_minute(-5);
  account.set_max_in_flight(101);
  EXPECT_FALSE(ValidateAccountFields(account).ok()) << "a create checks every field";
  const std::vector<std::string> name_only = {"display_name"};
  EXPECT_TRUE(ValidateAccountFields(account, &name_only).ok());
  const std::vector<std::string> pace = {"sends_per_minute"};
  EXPECT_THAT(std::string(ValidateAccountFields(account, &pace).message()),
              ::testing::HasSubstr("account.sends_per_minute"));
  const std::vector<std::string> in_flight = {"max_in_flight"};
  EXPECT_THAT(std::string(ValidateAccountFields(account, &in_flight).message()),
              ::testing::HasSubstr("account.max_in_flight"));
}

TEST(ParseMediaAssetTest, ContentTypeWithoutControlCharacters) {
  v1::MediaAsset m;
  m.set_type(v1::MediaAsset::IMAGE);
  m.set_file_name("cover.jpg");
  m.set_content_type("image/jpeg");
  absl::StatusOr<store::MediaAsset> asset = ParseMediaAsset("acme", m, /*uploaded=*/true);
  ASSERT_TRUE(asset.ok()) << asset.status();
  EXPECT_EQ(asset->content_type, "image/jpeg");

  // It becomes a header line of the upload: a line break would add lines of the client's own.
  m.set_content_type("image/jpeg\r\nX-Injected: 1");
  asset = ParseMediaAsset("acme", m, /*uploaded=*/true);
  ASSERT_FALSE(asset.ok());
  EXPECT_EQ(asset.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(asset.status().message()), HasSubstr("media_asset.content_type"));

  // Bounded, as every other field: it is stored and sent with every upload.
  m.set_content_type("image/" + std::string(249, 'x'));
  EXPECT_TRUE(ParseMediaAsset("acme", m, /*uploaded=*/true).ok());
  m.set_content_type("image/" + std::string(250, 'x'));
  asset = ParseMediaAsset("acme", m, /*uploaded=*/true);
  EXPECT_THAT(std::string(asset.status().message()),
              HasSubstr("media_asset.content_type: at most 255 characters"));
}

TEST(ParseMediaAssetTest, AContentTypeIsAMimeTypeOfTheAssetsKind) {
  v1::MediaAsset m;
  m.set_type(v1::MediaAsset::VIDEO);
  m.set_file_name("teaser.mp4");
  for (const char* good :
       {"video/mp4", "Video/QuickTime", "video/webm; codecs=vp9", "application/octet-stream"}) {
    m.set_content_type(good);
    EXPECT_TRUE(ParseMediaAsset("acme", m, /*uploaded=*/true).ok()) << good;
  }
  for (const auto& [bad, says] : std::vector<std::pair<std::string, std::string>>{
           {"image/png", "is not a video type"},
           {"application/x-msdownload", "is not a video type"},
           {"not a mime", "is not a MIME type"},
           {"video/", "is not a MIME type"}}) {
    m.set_content_type(bad);
    absl::StatusOr<store::MediaAsset> asset = ParseMediaAsset("acme", m, /*uploaded=*/true);
    ASSERT_FALSE(asset.ok()) << bad;
    EXPECT_EQ(asset.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(asset.status().message()),
                HasSubstr("media_asset.content_type: '" + bad + "' " + says));
  }
}

TEST(SniffMediaTypeTest, KnownSignaturesOnly) {
  using store::MediaType;
  const auto iso = [](std::string_view brand) {
    return StrCat(std::string("\0\0\0\x18", 4), "ftyp", brand);
  };
  EXPECT_EQ(SniffMediaType(std::string("\x89PNG\r\n\x1a\n....", 12)), MediaType::kImage);
  EXPECT_EQ(SniffMediaType("\xff\xd8\xff\xe0"), MediaType::kImage);
  EXPECT_EQ(SniffMediaType(iso("heic")), MediaType::kImage);
  EXPECT_EQ(SniffMediaType(iso("qt  ")), MediaType::kVideo);
  EXPECT_EQ(SniffMediaType(iso("M4A ")), MediaType::kAudio);
  EXPECT_EQ(SniffMediaType("ID3\x04"), MediaType::kAudio);
  // Generic brands, Ogg and Matroska hold audio or video alike: unknown, refused only as an image.
  EXPECT_EQ(SniffMediaType(iso("mp42")), std::nullopt);
  EXPECT_EQ(SniffMediaType(iso("isom")), std::nullopt);
  EXPECT_EQ(SniffMediaType("OggS"), std::nullopt);
  EXPECT_EQ(SniffMediaType("\x1a\x45\xdf\xa3"), std::nullopt);
  EXPECT_EQ(SniffMediaType("plain text"), std::nullopt);
  EXPECT_EQ(SniffMediaType(""), std::nullopt);
  EXPECT_TRUE(CheckUploadedBytes("plain text", MediaType::kImage).ok());
  EXPECT_TRUE(CheckUploadedBytes(iso("mp42"), MediaType::kAudio).ok());
  EXPECT_TRUE(CheckUploadedBytes("OggS", MediaType::kVideo).ok());
  // A container of audio or video is never an image.
  for (const std::string& av :
       {iso("mp42"), iso("isom"), std::string("OggS"), std::string("\x1a\x45\xdf\xa3")}) {
    const absl::Status refused = CheckUploadedBytes(av, MediaType::kImage);
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << av;
    EXPECT_THAT(std::string(refused.message()), HasSubstr("chunk: the file is audio or video"));
  }
  EXPECT_TRUE(CheckUploadedBytes(iso("avif"), MediaType::kImage).ok());
  // An image brand among the compatible ones makes it an image, whatever the major brand.
  const auto box = [](std::string_view major, std::string_view compatible) {
    const std::string body = StrCat(major, std::string("\0\0\0\0", 4), compatible);
    return StrCat(std::string("\0\0\0", 3), std::string(1, static_cast<char>(8 + body.size())),
                  "ftyp", body);
  };
  EXPECT_TRUE(CheckUploadedBytes(box("mif2", "mif2heic"), MediaType::kImage).ok());
  EXPECT_TRUE(CheckUploadedBytes(box("crx ", "crx isom"), MediaType::kImage).ok());
  EXPECT_FALSE(CheckUploadedBytes(box("isom", "isomiso2avc1mp41"), MediaType::kImage).ok());
  const absl::Status mov_as_image = CheckUploadedBytes(iso("qt  "), MediaType::kImage);
  EXPECT_EQ(mov_as_image.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mov_as_image.message()),
              HasSubstr("chunk: the file is a video, but media_asset.type says image"));
}

TEST(ParseMediaAssetTest, AnUploadNamesItsContentType) {
  v1::MediaAsset m;
  m.set_type(v1::MediaAsset::IMAGE);
  m.set_file_name("cover.jpg");
  absl::StatusOr<store::MediaAsset> asset = ParseMediaAsset("acme", m, /*uploaded=*/true);
  ASSERT_FALSE(asset.ok());
  EXPECT_EQ(asset.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(asset.status().message()), HasSubstr("media_asset.content_type"));
}

TEST(ParseMediaAssetTest, AUrlAssetsFileNameDefaultsToItsLastPathSegment) {
  v1::MediaAsset m;
  m.set_type(v1::MediaAsset::VIDEO);
  m.set_source_url("https://cdn.example.com/clips/teaser.mp4?sig=abc");
  absl::StatusOr<store::MediaAsset> asset = ParseMediaAsset("acme", m, /*uploaded=*/false);
  ASSERT_TRUE(asset.ok()) << asset.status();
  EXPECT_EQ(asset->file_name, "teaser.mp4");

  // No file name in the URL: the name only labels the asset, so it may stay empty, or be given.
  for (const char* url : {"https://cdn.example.com/", "https://cdn.example.com",
                          "https://cdn.example.com/clips/?v=1"}) {
    m.set_source_url(url);
    asset = ParseMediaAsset("acme", m, /*uploaded=*/false);
    ASSERT_TRUE(asset.ok()) << url << ": " << asset.status();
    EXPECT_EQ(asset->file_name, "") << url;
    m.set_file_name("teaser.mp4");
    asset = ParseMediaAsset("acme", m, /*uploaded=*/false);
    ASSERT_TRUE(asset.ok()) << url << ": " << asset.status();
    EXPECT_EQ(asset->file_name, "teaser.mp4") << url;
    m.clear_file_name();
  }

  // A longer last segment keeps its last 200 characters, the extension among them.
  m.set_source_url("https://cdn.example.com/" + std::string(2000, 'a') + ".mp4");
  asset = ParseMediaAsset("acme", m, /*uploaded=*/false);
  ASSERT_TRUE(asset.ok()) << asset.status();
  EXPECT_EQ(asset->file_name, std::string(196, 'a') + ".mp4");
}

TEST(ParseMediaAssetTest, AUrlWithoutAHostIsRefused) {
  v1::MediaAsset m;
  m.set_type(v1::MediaAsset::IMAGE);
  m.set_file_name("set.jpg");
  for (const char* url : {"https://", "http:///x.jpg", "https://:443/x.jpg", "https://?x=1"}) {
    m.set_source_url(url);
    absl::StatusOr<store::MediaAsset> asset = ParseMediaAsset("acme", m, /*uploaded=*/false);
    ASSERT_FALSE(asset.ok()) << url;
    EXPECT_EQ(asset.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_THAT(std::string(asset.status().message()), HasSubstr("must name a host")) << url;
  }
  for (const char* url : {"https://cdn.example.com:8443/x.jpg", "http://10.0.0.1/x.jpg"}) {
    m.set_source_url(url);
    EXPECT_TRUE(ParseMediaAsset("acme", m, /*uploaded=*/false).ok()) << url;
  }
}

TEST(ParseMediaAssetTest, AUrlCarriesNoCredentialsOrControlCharacters) {
  v1::MediaAsset m;
  m.set_type(v1::MediaAsset::IMAGE);
  for (const auto& [url, why] : std::vector<std::pair<std::string, std::string>>{
           {"https://u:secret@cdn.example.com/x.jpg", "must not carry credentials"},
           {"https://user@/x.jpg", "must not carry credentials"},
           {"https://cdn.example.com/x\x7f.jpg", "http(s) URL"},
           {std::string("https://cdn.example.com/x\0.jpg", 30), "http(s) URL"}}) {
    m.set_source_url(url);
    absl::StatusOr<store::MediaAsset> asset = ParseMediaAsset("acme", m, /*uploaded=*/false);
    ASSERT_FALSE(asset.ok()) << url;
    EXPECT_THAT(std::string(asset.status().message()),
                AllOf(HasSubstr("media_asset.source_url"), HasSubstr(why)));
  }
  m.set_source_url("https://cdn.example.com/x.jpg");
  m.set_file_name("set\x01.jpg");
  EXPECT_THAT(std::string(ParseMediaAsset("acme", m, false).status().message()),
              HasSubstr("media_asset.file_name: must not contain control characters"));
}

TEST(CheckUpstreamLeadTest, ALeadNeedsASendTime) {
  store::Campaign c;
  EXPECT_TRUE(campaign::CheckUpstreamLeadHasSendTime(c).ok());
  c.upstream_lead_ms = 60'000;
  const absl::Status s = campaign::CheckUpstreamLeadHasSendTime(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("campaign.upstream_lead: needs campaign.send_time"));
  c.send_time_ms = 1'800'000'000'000;
  EXPECT_TRUE(campaign::CheckUpstreamLeadHasSendTime(c).ok());
}

TEST(OwnDeliveryTest, ADeliveryNameGivesItsCampaignAndAccountInTheCallersTenant) {
  absl::StatusOr<DeliveryName> d =
      OwnDelivery("acme", "tenants/acme/campaigns/01hx/deliveries/acct_7f");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->campaign, "01hx");
  EXPECT_EQ(d->account, "acct_7f");

  EXPECT_EQ(OwnDelivery("other", "tenants/acme/campaigns/01hx/deliveries/acct_7f").status().code(),
            absl::StatusCode::kNotFound);
  for (std::string_view bad :
       {"", "tenants/acme/campaigns/01hx", "tenants/acme/campaigns/01hx/deliveries/",
        "tenants/acme/campaigns/01hx/deliveries/7f", "tenants/acme/campaigns/01hx/accounts/acct_7f",
        "tenants/acme/teams/01hx/deliveries/acct_7f", "tenants//campaigns/01hx/deliveries/acct_7f",
        "tenants/acme/campaigns/01hx/deliveries/acct_7f/x"}) {
    const absl::Status s = OwnDelivery("acme", bad).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()), ::testing::StartsWith("name")) << bad;
  }
}

TEST(ParseMaskTest, NamedPathsMustBeUpdatableAndNamedOnce) {
  v1::Account account;
  google::protobuf::FieldMask mask;
  mask.add_paths("display_name");
  mask.add_paths("max_in_flight");
  auto fields = ParseMask(account, mask, {"display_name", "sends_per_minute", "max_in_flight"});
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_THAT(*fields, ElementsAre("display_name", "max_in_flight"));

  for (const std::vector<std::string>& paths : std::vector<std::vector<std::string>>{
           {"create_time"}, {"display_name", "display_name"}, {"*", "display_name"}}) {
    google::protobuf::FieldMask bad;
    for (const std::string& path : paths) bad.add_paths(path);
    auto refused = ParseMask(account, bad, {"display_name", "max_in_flight"});
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << paths[0];
    EXPECT_THAT(refused.status().message(), HasSubstr("update_mask")) << paths[0];
  }
}

TEST(ParseMaskTest, WithoutAMaskTheFieldsTheRequestSetsMostSpecificFirst) {
  const std::initializer_list<std::string_view> allowed = {
      "display_name",  "content", "content.text", "content.price_cents",
      "content.media", "targets", "send_time"};
  v1::Campaign campaign;
  // Sets nothing updatable: nothing to infer.
  auto none = ParseMask(campaign, {}, allowed);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(none.status().message(), HasSubstr("update_mask: is empty"));

  campaign.mutable_content()->set_price_cents(1500);
  campaign.mutable_content()->add_media("tenants/t/media/m");
  campaign.mutable_send_time()->set_seconds(1);
  auto fields = ParseMask(campaign, {}, allowed);
  ASSERT_TRUE(fields.ok()) << fields.status();
  // `content.text`, unset, keeps its value; `content` whole is never implied.
  EXPECT_THAT(*fields, ElementsAre("content.price_cents", "content.media", "send_time"));
}

TEST(ParseMaskTest, AStarReplacesEveryTopLevelFieldButUnsetSecrets) {
  v1::Team team;
  team.set_upstream_api_key("new-key");
  google::protobuf::FieldMask star;
  star.add_paths("*");
  auto fields = ParseMask(team, star,
                          {"display_name", "upstream_api_key", "rate_limit_per_minute", "burst",
                           "webhook_signing_secret"},
                          {"upstream_api_key", "webhook_signing_secret"});
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_THAT(*fields,
              ElementsAre("display_name", "upstream_api_key", "rate_limit_per_minute", "burst"));

  v1::Campaign campaign;
  auto whole = ParseMask(campaign, star, {"display_name", "content", "content.text", "targets"});
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_THAT(*whole, ElementsAre("display_name", "content", "targets"));
}

TEST(ParseTenantUpdateTest, TakesTheNamedFieldsAndRefusesWeightsOutOfRange) {
  v1::UpdateTenantRequest req;
  req.mutable_tenant()->set_name("tenants/acme");
  req.mutable_tenant()->set_display_name("Acme");
  req.mutable_tenant()->set_scheduling_weight(4);
  req.mutable_update_mask()->add_paths("scheduling_weight");
  absl::StatusOr<TenantUpdate> update = ParseTenantUpdate(req);
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_EQ(update->tenant.id, "acme");
  EXPECT_EQ(update->tenant.scheduling_weight, 4);
  EXPECT_EQ(update->tenant.display_name, "");  // not named in the mask
  EXPECT_EQ(update->fields, std::vector<std::string>{"scheduling_weight"});

  req.mutable_tenant()->set_scheduling_weight(0);  // 0 means 1 on create only
  EXPECT_THAT(ParseTenantUpdate(req).status().message(), HasSubstr("tenant.scheduling_weight"));
  req.mutable_tenant()->set_scheduling_weight(1001);
  EXPECT_EQ(ParseTenantUpdate(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.mutable_update_mask()->set_paths(0, "create_time");
  EXPECT_THAT(ParseTenantUpdate(req).status().message(), HasSubstr("update_mask"));
}

TEST(ValidateSegmentFieldsTest, AnUpdateChecksOnlyTheFieldsItsMaskNames) {
  v1::Segment segment;  // no display name: invalid on create
  segment.set_subscribed_within_days(3651);
  EXPECT_FALSE(ValidateSegmentFields(segment).ok()) << "a create checks every field";
  const std::vector<std::string> spend{"min_lifetime_spend_cents"};
  EXPECT_TRUE(ValidateSegmentFields(segment, &spend).ok());
  const std::vector<std::string> days{"subscribed_within_days"};
  EXPECT_THAT(std::string(ValidateSegmentFields(segment, &days).message()),
              HasSubstr("segment.subscribed_within_days"));
  const std::vector<std::string> name{"display_name"};
  EXPECT_THAT(std::string(ValidateSegmentFields(segment, &name).message()),
              HasSubstr("segment.display_name"));
  segment.set_min_lifetime_spend_cents(-1);
  EXPECT_THAT(std::string(ValidateSegmentFields(segment, &spend).message()),
              HasSubstr("segment.min_lifetime_spend_cents"));
  // Whether a condition remains is not a field's to say: an update may clear one.
  v1::Segment cleared;
  cleared.set_display_name("Lapsed");
  EXPECT_TRUE(ValidateSegmentFields(cleared).ok());
  EXPECT_THAT(std::string(ParseSegment("acme", cleared).status().message()),
              HasSubstr("at least one condition"));
  // Its name becomes its upstream list's: not blank, no control characters.
  for (const char* bad : {"   ", "Lapsed\nfans"}) {
    cleared.set_display_name(bad);
    EXPECT_THAT(std::string(ValidateSegmentFields(cleared).message()),
                HasSubstr("segment.display_name: must not"))
        << bad;
  }
}

TEST(ParseSegmentTest, TopSpendersIsAConditionOfItsOwnWithinItsRange) {
  v1::Segment top;
  top.set_display_name("Whales");
  top.set_top_spenders(50);
  absl::StatusOr<store::Segment> parsed = ParseSegment("acme", top);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->top_spenders, 50);
  EXPECT_EQ(ToProto(*parsed).top_spenders(), 50);
  for (const int32_t bad : {-1, 100001}) {
    top.set_top_spenders(bad);
    EXPECT_THAT(std::string(ParseSegment("acme", top).status().message()),
                HasSubstr("segment.top_spenders"))
        << bad;
  }

  v1::UpdateSegmentRequest req;
  req.mutable_segment()->set_name("tenants/acme/segments/s1");
  req.mutable_segment()->set_top_spenders(10);
  req.mutable_update_mask()->add_paths("top_spenders");
  absl::StatusOr<SegmentUpdate> update = ParseSegmentUpdate("acme", req);
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_EQ(update->segment.top_spenders, 10);
  EXPECT_EQ(update->fields, std::vector<std::string>{"top_spenders"});
}

}  // namespace
}  // namespace herald::api
