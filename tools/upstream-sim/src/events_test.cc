// Rendering of the accounts.* webhook events: the authentication state each one reports.
#include <string>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <herald/upstream_sim/events.h>
#include <herald/upstream_sim/webhooks.h>

namespace herald::upstream_sim {
namespace {

namespace json = boost::json;

WebhookEvent AccountEvent(EventType type) {
  auto account = std::make_shared<AccountIdentity>();
  account->id = "acct_auth";
  account->user_id = 1234507;
  WebhookEvent e;
  e.type = type;
  e.account = account;
  e.at = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
  e.seed = 3;
  e.sequence = 42;
  return e;
}

TEST(AccountEventTest, OtpRequiredRendersTheWholeSkeleton) {
  EXPECT_EQ(RenderWebhookBody(AccountEvent(EventType::kAccountOtpCodeRequired)),
            R"({"event":"accounts.otp_code_required","account_id":"acct_auth","payload":{)"
            R"("state":"otp_required","progress":"started","latestAuthAttempt":{)"
            R"("started_at":"2025-12-31T23:59:52+00:00","completed_at":null,"success":false,)"
            R"("error_message":null,"needs_otp":true,"needs_face_otp":false,)"
            R"("otp_phone_ending":"07"}}})");
}

TEST(AccountEventTest, EachEventReportsItsState) {
  struct Expected {
    EventType type;
    std::string name, state, progress;
    bool completed, success, error, otp, face;
    std::string completed_at;
  };
  const Expected cases[] = {
      {EventType::kAccountConnected, "accounts.connected", "authenticated", "completed", true, true,
       false, false, false, "2026-01-01T00:00:00+00:00"},
      {EventType::kAccountReconnected, "accounts.reconnected", "authenticated", "completed", true,
       true, false, false, false, "2026-01-01T00:00:00+00:00"},
      // The login that created the expired session, a day earlier.
      {EventType::kAccountSessionExpired, "accounts.session_expired", "session_expired",
       "completed", true, true, false, false, false, "2025-12-31T00:00:00+00:00"},
      {EventType::kAccountAuthenticationFailed, "accounts.authentication_failed",
       "authentication_failed", "failed", true, false, true, false, false,
       "2026-01-01T00:00:00+00:00"},
      {EventType::kAccountOtpCodeRequired, "accounts.otp_code_required", "otp_required", "started",
       false, false, false, true, false, ""},
      {EventType::kAccountFaceOtpRequired, "accounts.face_otp_required", "face_otp_required",
       "started", false, false, false, false, true, ""},
  };
  for (const Expected& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(IsAccountEvent(c.type));
    EXPECT_EQ(EventName(c.type), c.name);
    EXPECT_EQ(ParseEventName(c.name), c.type);
    const json::value body = json::parse(RenderWebhookBody(AccountEvent(c.type)));
    EXPECT_EQ(body.at("event"), c.name.c_str());
    EXPECT_EQ(body.at("account_id"), "acct_auth");
    const json::value& p = body.at("payload");
    EXPECT_EQ(p.at("state"), c.state.c_str());
    EXPECT_EQ(p.at("progress"), c.progress.c_str());
    const json::value& a = p.at("latestAuthAttempt");
    EXPECT_EQ(a.as_object().size(), 7u);
    EXPECT_TRUE(a.at("started_at").is_string());
    if (c.completed) {
      EXPECT_EQ(a.at("completed_at"), c.completed_at.c_str());
    } else {
      EXPECT_TRUE(a.at("completed_at").is_null());
    }
    EXPECT_EQ(a.at("success").as_bool(), c.success);
    EXPECT_EQ(a.at("error_message").is_string(), c.error);
    EXPECT_EQ(a.at("error_message").is_null(), !c.error);
    EXPECT_EQ(a.at("needs_otp").as_bool(), c.otp);
    EXPECT_EQ(a.at("needs_face_otp").as_bool(), c.face);
    EXPECT_EQ(a.at("otp_phone_ending").is_string(), c.otp);
  }
}

TEST(AccountEventTest, OnlyAccountEventsAreAccountEvents) {
  int account_events = 0;
  for (int t = 0; t < kEventTypeCount; ++t) {
    if (IsAccountEvent(static_cast<EventType>(t))) ++account_events;
  }
  EXPECT_EQ(account_events, 6);
  EXPECT_FALSE(IsAccountEvent(EventType::kSubscriptionNew));
  // Every event type has its own filter bit.
  EXPECT_EQ(kAllEvents, (1u << 14) - 1);
  EXPECT_NE(kAllEvents & EventBit(EventType::kAccountFaceOtpRequired), 0u);
}

TEST(AccountEventTest, RenderingIsStableAcrossRetries) {
  const WebhookEvent e = AccountEvent(EventType::kAccountSessionExpired);
  WebhookEvent retry = e;
  retry.attempt = 3;
  retry.duplicate = true;
  EXPECT_EQ(RenderWebhookBody(e), RenderWebhookBody(retry));
  EXPECT_EQ(IdempotencyKey(e), IdempotencyKey(retry));
}

}  // namespace
}  // namespace herald::upstream_sim
