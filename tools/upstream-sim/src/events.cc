#include <herald/common/strings.h>
#include <herald/upstream_sim/events.h>
#include <herald/upstream_sim/json_writer.h>
#include <herald/upstream_sim/money.h>
#include <herald/upstream_sim/render.h>
#include <herald/upstream_sim/time_format.h>

namespace herald::upstream_sim {
namespace {

void AppendHex(std::string& out, uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out.push_back(kHex[(v >> (4 * i)) & 0xf]);
}

// 32 hex characters derived from the event, for transaction and notification ids.
std::string EventHex32(const WebhookEvent& e, uint64_t salt) {
  std::string out;
  const uint64_t h = HashValues({e.seed, e.sequence, salt});
  AppendHex(out, h, 16);
  AppendHex(out, Mix64(h), 16);
  return out;
}

std::string MessageLink(const WebhookEvent& e) {
  return StrCat("<a href=\"https://onlyfans.com/my/chats/chat/", e.fan.id,
                "/?firstId=", e.chat_message_id, "\">message</a>");
}

void WriteQueuePayload(JsonWriter& w, const WebhookEvent& e) {
  WriteQueueItem(w, e.queue_id, e.queue);
}

void WriteMessageSent(JsonWriter& w, const WebhookEvent& e) {
  const MessageContent& c = *e.content;
  const std::string at = FormatIsoTime(e.at);
  w.BeginObject();
  w.Field("id", e.chat_message_id);
  w.Field("text", c.html);
  w.Key("price").Money(c.price_cents);
  w.Field("isFree", c.price_cents == 0);
  w.Field("lockedText", c.locked_text);
  w.Field("mediaCount", static_cast<int64_t>(c.media.size()));
  w.Key("media");
  WriteMedia(w, c, c.price_cents > 0);
  w.Key("previews");
  WritePreviews(w, c);
  w.Field("queueId", e.queue_id);
  w.Field("isFromQueue", true);
  w.Field("createdAt", at);
  w.Field("changedAt", at);
  w.Field("cancelSeconds", 0);
  w.Field("canPurchase", c.price_cents > 0);
  w.Field("isOpened", false);
  w.Field("isNew", true);
  if (c.giphy_id.empty()) {
    w.NullField("giphyId");
  } else {
    w.Field("giphyId", c.giphy_id);
  }
  w.Key("fromUser").BeginObject();
  w.Field("id", e.account->user_id);
  w.Field("_view", "s");
  w.EndObject();
  w.Key("toUser");
  WriteFan(w, e.fan);
  w.EndObject();
}

void WritePpvUnlocked(JsonWriter& w, const WebhookEvent& e) {
  w.BeginObject();
  w.Field("id", EventHex32(e, 1).substr(0, 12));
  w.Field("type", "paided_message");
  w.Field("subType", "subscriber_pay_for_chat_message");
  w.Field("createdAt", FormatIsoTime(e.at));
  w.Field("text", "{NAME} unlocked your {MESSAGE_LINK} for {AMOUNT}");
  w.Field("user_id", StrCat(e.fan.id));
  w.Field("isRead", false);
  w.Field("canGoToProfile", true);
  w.Key("replacePairs").BeginObject();
  w.Field("{NAME}", StrCat("<a href=\"https://onlyfans.com/", FanUsername(e.fan.id), "\">",
                           FanName(e.fan.id), "</a>"));
  w.Field("{MESSAGE_LINK}", MessageLink(e));
  w.Field("{AMOUNT}", FormatDollars(e.amount_cents));
  w.EndObject();
  w.Key("user");
  WriteFan(w, e.fan);
  w.Key("fanData");
  WriteFanData(w, e.fan, e.at);
  w.EndObject();
}

// transactions.new (a paid message bought) and tips.received (a tip in a chat) share the
// transaction object; a tip names no message.
void WriteTransaction(JsonWriter& w, const WebhookEvent& e) {
  const bool tip = e.type == EventType::kTipsReceived;
  // The platform keeps 20%; VAT and tax are not simulated.
  const int64_t fee = (e.amount_cents * 20 + 50) / 100;
  w.BeginObject();
  w.Field("id", EventHex32(e, 2));
  w.Field("created_at", FormatSqlTime(e.at));
  w.Field("type", tip ? "tip" : "message");
  if (tip) {
    w.Field("tips_source", "chat");
  } else {
    w.NullField("tips_source");
  }
  w.Key("amount").Money(e.amount_cents);
  w.Key("vat_amount").Money(0);
  w.Key("tax_amount").Money(0);
  w.Key("net_amount").Money(e.amount_cents - fee);
  w.Key("fee_amount").Money(fee);
  w.Field("currency", "USD");
  const std::string from = StrCat("<a href=\"https://onlyfans.com/", FanUsername(e.fan.id), "\">",
                                  FanName(e.fan.id), "</a>");
  if (tip) {
    w.Field("description", StrCat("Tip from ", from));
  } else {
    w.Field("description", StrCat("Payment for ", MessageLink(e), " from ", from));
  }
  w.Field("status", "loading");
  w.Key("fan").BeginObject();
  w.Field("id", StrCat(e.fan.id));
  w.Field("username", FanUsername(e.fan.id));
  w.Field("name", FanName(e.fan.id));
  w.Field("display_name", FanName(e.fan.id));
  w.NullField("avatar");
  w.EndObject();
  w.Key("fanData");
  WriteFanData(w, e.fan, e.at);
  w.EndObject();
}

// subscriptions.new and subscriptions.renewed start a 30-day period at the event;
// subscriptions.expired ends the one that started 30 days earlier.
void WriteSubscription(JsonWriter& w, const WebhookEvent& e) {
  constexpr absl::Duration kPeriod = absl::Hours(24 * 30);
  const bool expired = e.type == EventType::kSubscriptionExpired;
  const absl::Time start = expired ? e.at - kPeriod : e.at;
  w.BeginObject();
  w.Field("user_id", StrCat(e.fan.id));
  w.Key("user");
  WriteFan(w, e.fan);
  w.Field("subscribedAt", FormatIsoTime(start));
  w.Field("expiredAt", FormatIsoTime(start + kPeriod));
  w.Key("price").Money(e.amount_cents);
  w.Field("isNewSubscriber", e.type == EventType::kSubscriptionNew);
  w.Field("isRenewal", e.type == EventType::kSubscriptionRenewed);
  w.Field("isExpired", expired);
  w.Field("isTrial", false);
  w.Key("fanData");
  WriteFanData(w, e.fan, e.at);
  w.EndObject();
}

// messages.received: a chat message from the fan to the account (text only).
void WriteMessageReceived(JsonWriter& w, const WebhookEvent& e) {
  const std::string at = FormatIsoTime(e.at);
  w.BeginObject();
  w.Field("id", e.chat_message_id);
  w.Field("text", WrapHtml(e.text));
  w.Key("price").Money(0);
  w.Field("isFree", true);
  w.Field("mediaCount", 0);
  w.Key("media").BeginArray().EndArray();
  w.Key("previews").BeginArray().EndArray();
  w.Field("isFromQueue", false);
  w.Field("createdAt", at);
  w.Field("changedAt", at);
  w.Field("isOpened", false);
  w.Field("isNew", true);
  w.Key("fromUser");
  WriteFan(w, e.fan);
  w.Key("toUser").BeginObject();
  w.Field("id", e.account->user_id);
  w.Field("_view", "s");
  w.EndObject();
  w.EndObject();
}

// messages.deleted: which message of the chat with the fan was deleted, and when.
void WriteMessageDeleted(JsonWriter& w, const WebhookEvent& e) {
  w.BeginObject();
  w.Field("id", e.chat_message_id);
  w.Field("user_id", StrCat(e.fan.id));
  w.Key("user");
  WriteFan(w, e.fan);
  w.Field("deletedAt", FormatIsoTime(e.at));
  w.EndObject();
}

// users.typing, users.online, users.offline: the fan and the moment.
void WritePresence(JsonWriter& w, const WebhookEvent& e) {
  w.BeginObject();
  w.Field("user_id", StrCat(e.fan.id));
  w.Key("user");
  WriteFan(w, e.fan);
  if (e.type == EventType::kUserTyping) {
    w.Field("typingAt", FormatIsoTime(e.at));
  } else {
    w.Field("isOnline", e.type == EventType::kUserOnline);
    w.Field("lastSeen", FormatIsoTime(e.at));
  }
  w.EndObject();
}

// How long a login takes on the platform, for the attempt's started_at.
constexpr absl::Duration kLoginDuration = absl::Seconds(8);

// The accounts.* payload. `at` is when the attempt reached the reported state: a finished
// attempt (connected, reconnected, failed) completed at `at`; one waiting for a code started
// at `at - kLoginDuration` and has not completed; an expired session reports the login that
// created it, a day earlier.
void WriteAccountAuth(JsonWriter& w, const WebhookEvent& e) {
  struct Shape {
    std::string_view state;
    std::string_view progress;
    bool completed;
    bool success;
    std::string_view error;  // empty: null
    bool needs_otp;
    bool needs_face_otp;
  };
  Shape s{};
  absl::Time completed_at = e.at;
  switch (e.type) {
    case EventType::kAccountConnected:
    case EventType::kAccountReconnected:
      s = {"authenticated", "completed", true, true, "", false, false};
      break;
    case EventType::kAccountSessionExpired:
      s = {"session_expired", "completed", true, true, "", false, false};
      completed_at = e.at - absl::Hours(24);
      break;
    case EventType::kAccountAuthenticationFailed:
      s = {"authentication_failed",    "failed", true, false,
           "Wrong email or password.", false,    false};
      break;
    case EventType::kAccountOtpCodeRequired:
      s = {"otp_required", "started", false, false, "", true, false};
      break;
    case EventType::kAccountFaceOtpRequired:
      s = {"face_otp_required", "started", false, false, "", false, true};
      break;
    default:
      break;
  }
  w.BeginObject();
  w.Field("state", s.state);
  w.Field("progress", s.progress);
  w.Key("latestAuthAttempt").BeginObject();
  w.Field("started_at", FormatIsoTime(completed_at - kLoginDuration));
  if (s.completed) {
    w.Field("completed_at", FormatIsoTime(completed_at));
  } else {
    w.NullField("completed_at");
  }
  w.Field("success", s.success);
  if (s.error.empty()) {
    w.NullField("error_message");
  } else {
    w.Field("error_message", s.error);
  }
  w.Field("needs_otp", s.needs_otp);
  w.Field("needs_face_otp", s.needs_face_otp);
  if (s.needs_otp) {
    // The last two digits of the creator's phone, stable per account.
    const uint64_t digits = e.account->user_id % 100;
    w.Field("otp_phone_ending", StrCat(digits / 10, digits % 10));
  } else {
    w.NullField("otp_phone_ending");
  }
  w.EndObject();
  w.EndObject();
}

}  // namespace

std::optional<EventType> ParseEventName(std::string_view name) {
  for (int t = 0; t < kEventTypeCount; ++t) {
    if (EventName(static_cast<EventType>(t)) == name) return static_cast<EventType>(t);
  }
  return std::nullopt;
}

std::string_view EventDescription(EventType type) {
  switch (type) {
    case EventType::kChatQueueUpdated:
      return "A mass message queue started, progressed or was canceled.";
    case EventType::kChatQueueFinished:
      return "A mass message queue finished sending.";
    case EventType::kMessagesSent:
      return "A message was sent to a fan (one per recipient of a mass message).";
    case EventType::kPpvUnlocked:
      return "A fan unlocked (bought) a paid message.";
    case EventType::kTransactionNew:
      return "A new transaction was recorded (a paid message purchase).";
    case EventType::kSubscriptionNew:
      return "A fan subscribed to the account.";
    case EventType::kMediaUploadCompleted:
      return "An asynchronous media upload completed.";
    case EventType::kMediaUploadFailed:
      return "An asynchronous media upload failed.";
    case EventType::kAccountConnected:
      return "An account was connected and authenticated.";
    case EventType::kAccountReconnected:
      return "An account authenticated again after losing its session.";
    case EventType::kAccountSessionExpired:
      return "An account's session expired; it must be reconnected.";
    case EventType::kAccountAuthenticationFailed:
      return "An authentication attempt of an account failed.";
    case EventType::kAccountOtpCodeRequired:
      return "An authentication attempt is waiting for an OTP code sent to the creator's phone.";
    case EventType::kAccountFaceOtpRequired:
      return "An authentication attempt is waiting for a face verification.";
    case EventType::kMessagesReceived:
      return "A fan sent a message to the account.";
    case EventType::kMessagesDeleted:
      return "A chat message was deleted.";
    case EventType::kTipsReceived:
      return "A fan sent a tip.";
    case EventType::kSubscriptionRenewed:
      return "A fan's subscription renewed for another period.";
    case EventType::kSubscriptionExpired:
      return "A fan's subscription expired.";
    case EventType::kUserTyping:
      return "A fan is typing in a chat with the account (ephemeral, no idempotency key).";
    case EventType::kUserOnline:
      return "A fan came online (ephemeral, no idempotency key).";
    case EventType::kUserOffline:
      return "A fan went offline (ephemeral, no idempotency key).";
  }
  return "";
}

bool IsFanActivityEvent(EventType type) {
  switch (type) {
    case EventType::kMessagesReceived:
    case EventType::kMessagesDeleted:
    case EventType::kTipsReceived:
    case EventType::kSubscriptionRenewed:
    case EventType::kSubscriptionExpired:
    case EventType::kUserTyping:
    case EventType::kUserOnline:
    case EventType::kUserOffline:
      return true;
    default:
      return false;
  }
}

bool IsEphemeralEvent(EventType type) {
  switch (type) {
    case EventType::kUserTyping:
    case EventType::kUserOnline:
    case EventType::kUserOffline:
      return true;
    default:
      return false;
  }
}

bool IsAccountEvent(EventType type) {
  switch (type) {
    case EventType::kAccountConnected:
    case EventType::kAccountReconnected:
    case EventType::kAccountSessionExpired:
    case EventType::kAccountAuthenticationFailed:
    case EventType::kAccountOtpCodeRequired:
    case EventType::kAccountFaceOtpRequired:
      return true;
    default:
      return false;
  }
}

std::string_view EventName(EventType type) {
  switch (type) {
    case EventType::kChatQueueUpdated:
      return "chat_queue.updated";
    case EventType::kChatQueueFinished:
      return "chat_queue.finished";
    case EventType::kMessagesSent:
      return "messages.sent";
    case EventType::kPpvUnlocked:
      return "messages.ppv.unlocked";
    case EventType::kTransactionNew:
      return "transactions.new";
    case EventType::kSubscriptionNew:
      return "subscriptions.new";
    case EventType::kMediaUploadCompleted:
      return "media_uploads.completed";
    case EventType::kMediaUploadFailed:
      return "media_uploads.failed";
    case EventType::kAccountConnected:
      return "accounts.connected";
    case EventType::kAccountReconnected:
      return "accounts.reconnected";
    case EventType::kAccountSessionExpired:
      return "accounts.session_expired";
    case EventType::kAccountAuthenticationFailed:
      return "accounts.authentication_failed";
    case EventType::kAccountOtpCodeRequired:
      return "accounts.otp_code_required";
    case EventType::kAccountFaceOtpRequired:
      return "accounts.face_otp_required";
    case EventType::kMessagesReceived:
      return "messages.received";
    case EventType::kMessagesDeleted:
      return "messages.deleted";
    case EventType::kTipsReceived:
      return "tips.received";
    case EventType::kSubscriptionRenewed:
      return "subscriptions.renewed";
    case EventType::kSubscriptionExpired:
      return "subscriptions.expired";
    case EventType::kUserTyping:
      return "users.typing";
    case EventType::kUserOnline:
      return "users.online";
    case EventType::kUserOffline:
      return "users.offline";
  }
  return "unknown";
}

FanSnapshot Snapshot(const Fan& fan) {
  return FanSnapshot{.id = fan.id,
                     .subscribed_at = fan.subscribed_at,
                     .spend_subscriptions = fan.spend_subscriptions,
                     .spend_messages = fan.spend_messages,
                     .spend_tips = fan.spend_tips,
                     .spend_posts = fan.spend_posts,
                     .active = fan.active()};
}

std::string IdempotencyKey(const WebhookEvent& e) {
  if (IsEphemeralEvent(e.type)) return "";
  std::string out = "evt_";
  out.reserve(44);
  const uint64_t h = HashValues({e.seed, e.sequence, 0x1de});
  AppendHex(out, h, 16);
  AppendHex(out, Mix64(h), 16);
  AppendHex(out, Mix64(h ^ 0x5555), 8);
  return out;
}

std::string RenderWebhookBody(const WebhookEvent& e) {
  JsonWriter w;
  w.BeginObject();
  w.Field("event", EventName(e.type));
  w.Field("account_id", e.account->id);
  w.Key("payload");
  switch (e.type) {
    case EventType::kChatQueueUpdated:
    case EventType::kChatQueueFinished:
      WriteQueuePayload(w, e);
      break;
    case EventType::kMessagesSent:
      WriteMessageSent(w, e);
      break;
    case EventType::kPpvUnlocked:
      WritePpvUnlocked(w, e);
      break;
    case EventType::kTransactionNew:
    case EventType::kTipsReceived:
      WriteTransaction(w, e);
      break;
    case EventType::kSubscriptionNew:
    case EventType::kSubscriptionRenewed:
    case EventType::kSubscriptionExpired:
      WriteSubscription(w, e);
      break;
    case EventType::kMessagesReceived:
      WriteMessageReceived(w, e);
      break;
    case EventType::kMessagesDeleted:
      WriteMessageDeleted(w, e);
      break;
    case EventType::kUserTyping:
    case EventType::kUserOnline:
    case EventType::kUserOffline:
      WritePresence(w, e);
      break;
    case EventType::kMediaUploadCompleted:
    case EventType::kMediaUploadFailed:
      WriteUploadOutcome(w, e.account->user_id, *e.media, e.type == EventType::kMediaUploadFailed);
      break;
    case EventType::kAccountConnected:
    case EventType::kAccountReconnected:
    case EventType::kAccountSessionExpired:
    case EventType::kAccountAuthenticationFailed:
    case EventType::kAccountOtpCodeRequired:
    case EventType::kAccountFaceOtpRequired:
      WriteAccountAuth(w, e);
      break;
  }
  w.EndObject();
  return w.Take();
}

std::string ExampleWebhookBody(EventType type) {
  auto account = std::make_shared<AccountIdentity>();
  account->id = "acct_0123456789abcdef0123456789abcdef";
  account->username = "example_creator";
  account->display_name = "Example Creator";
  account->user_id = 123456;
  auto content = std::make_shared<MessageContent>();
  content->text = "Something special for you";
  content->html = WrapHtml(content->text);
  content->price_cents = 999;
  content->media.push_back(MediaItem{"ofapi_media_01JR1234", 5000000001, false});
  const absl::Time at = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
  WebhookEvent e;
  e.type = type;
  e.account = account;
  e.content = content;
  e.at = at;
  e.sequence = 1;
  e.queue_id = 1000026;
  e.queue.date = at;
  e.queue.total = 7;
  e.queue.sent = type == EventType::kChatQueueFinished ? 7 : 3;
  e.queue.pending = e.queue.total - e.queue.sent;
  e.queue.started = true;
  e.queue.done = type == EventType::kChatQueueFinished;
  e.fan = FanSnapshot{.id = 101,
                      .subscribed_at = absl::ToUnixSeconds(at) - 86400 * 30,
                      .spend_subscriptions = 1500,
                      .spend_messages = 999};
  e.chat_message_id = 1000027;
  const bool subscription = type == EventType::kSubscriptionNew ||
                            type == EventType::kSubscriptionRenewed ||
                            type == EventType::kSubscriptionExpired;
  e.amount_cents = subscription ? 1500 : 999;
  e.text = "Hi! Loved the last set";
  auto media = std::make_shared<Media>();
  media->prefixed_id = "ofapi_media_01JR1234ABCDEFGHJKMNPQRSTV";
  media->numeric_id = 5000000001;
  media->file_name = "photo.jpg";
  media->bytes = 1000000;
  media->credits = 3;
  media->async = true;
  if (type == EventType::kMediaUploadFailed) media->error = "The file could not be downloaded.";
  e.media = media;
  return RenderWebhookBody(e);
}

}  // namespace herald::upstream_sim
