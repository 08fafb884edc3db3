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
  EXPECT_EQ(kAllEvents, (1u << 22) - 1);
  EXPECT_NE(kAllEvents & EventBit(EventType::kAccountFaceOtpRequired), 0u);
  EXPECT_NE(kAllEvents & EventBit(EventType::kUserOffline), 0u);
}

WebhookEvent FanEvent(EventType type) {
  WebhookEvent e = AccountEvent(type);
  e.fan = FanSnapshot{.id = 4242, .subscribed_at = 1767225600, .spend_tips = 500};
  e.chat_message_id = 777;
  e.amount_cents = 1250;
  e.text = "hello there";
  return e;
}

TEST(FanActivityEventTest, PresenceEventsAloneHaveNoIdempotencyKey) {
  int fan_events = 0;
  int ephemeral = 0;
  for (int t = 0; t < kEventTypeCount; ++t) {
    const auto type = static_cast<EventType>(t);
    fan_events += IsFanActivityEvent(type) ? 1 : 0;
    ephemeral += IsEphemeralEvent(type) ? 1 : 0;
    EXPECT_FALSE(IsFanActivityEvent(type) && IsAccountEvent(type)) << EventName(type);
    const std::string key = IdempotencyKey(FanEvent(type));
    EXPECT_EQ(key.empty(), IsEphemeralEvent(type)) << EventName(type);
    EXPECT_TRUE(!IsEphemeralEvent(type) || IsFanActivityEvent(type)) << EventName(type);
  }
  EXPECT_EQ(fan_events, 8);
  EXPECT_EQ(ephemeral, 3);
  EXPECT_TRUE(IsEphemeralEvent(EventType::kUserTyping));
  EXPECT_FALSE(IsEphemeralEvent(EventType::kMessagesReceived));
}

TEST(FanActivityEventTest, PayloadsNameTheFanAndWhatHappened) {
  const auto payload = [](EventType type) {
    const json::value body = json::parse(RenderWebhookBody(FanEvent(type)));
    EXPECT_EQ(std::string(body.at("event").as_string()), EventName(type));
    EXPECT_EQ(body.at("account_id"), "acct_auth");
    return body.at("payload").as_object();
  };

  const json::object received = payload(EventType::kMessagesReceived);
  EXPECT_EQ(received.at("id"), 777);
  EXPECT_EQ(received.at("text"), "<p>hello there</p>");
  EXPECT_EQ(received.at("fromUser").at("id"), 4242);
  EXPECT_EQ(received.at("isFromQueue"), false);

  const json::object deleted = payload(EventType::kMessagesDeleted);
  EXPECT_EQ(deleted.at("id"), 777);
  EXPECT_EQ(deleted.at("user_id"), "4242");

  const json::object tip = payload(EventType::kTipsReceived);
  EXPECT_EQ(tip.at("type"), "tip");
  EXPECT_EQ(tip.at("tips_source"), "chat");
  EXPECT_DOUBLE_EQ(tip.at("amount").to_number<double>(), 12.5);
  EXPECT_EQ(tip.at("fan").at("id"), "4242");
  // A tip names no message, so nothing attributes it to a campaign.
  EXPECT_EQ(std::string(tip.at("description").as_string()).find("firstId"), std::string::npos);

  const json::object renewed = payload(EventType::kSubscriptionRenewed);
  EXPECT_EQ(renewed.at("isRenewal"), true);
  EXPECT_EQ(renewed.at("isNewSubscriber"), false);
  EXPECT_EQ(renewed.at("subscribedAt"), "2026-01-01T00:00:00+00:00");
  const json::object expired = payload(EventType::kSubscriptionExpired);
  EXPECT_EQ(expired.at("isExpired"), true);
  EXPECT_EQ(expired.at("expiredAt"), "2026-01-01T00:00:00+00:00");

  EXPECT_EQ(payload(EventType::kUserTyping).at("typingAt"), "2026-01-01T00:00:00+00:00");
  EXPECT_EQ(payload(EventType::kUserOnline).at("isOnline"), true);
  const json::object offline = payload(EventType::kUserOffline);
  EXPECT_EQ(offline.at("isOnline"), false);
  EXPECT_EQ(offline.at("user").at("id"), 4242);
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
