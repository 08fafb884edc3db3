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

void WriteTransaction(JsonWriter& w, const WebhookEvent& e) {
  // The platform keeps 20%; VAT and tax are not simulated.
  const int64_t fee = (e.amount_cents * 20 + 50) / 100;
  w.BeginObject();
  w.Field("id", EventHex32(e, 2));
  w.Field("created_at", FormatSqlTime(e.at));
  w.Field("type", "message");
  w.NullField("tips_source");
  w.Key("amount").Money(e.amount_cents);
  w.Key("vat_amount").Money(0);
  w.Key("tax_amount").Money(0);
  w.Key("net_amount").Money(e.amount_cents - fee);
  w.Key("fee_amount").Money(fee);
  w.Field("currency", "USD");
  w.Field("description",
          StrCat("Payment for ", MessageLink(e), " from <a href=\"https://onlyfans.com/",
                 FanUsername(e.fan.id), "\">", FanName(e.fan.id), "</a>"));
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

void WriteSubscription(JsonWriter& w, const WebhookEvent& e) {
  w.BeginObject();
  w.Field("user_id", StrCat(e.fan.id));
  w.Key("user");
  WriteFan(w, e.fan);
  w.Field("subscribedAt", FormatIsoTime(e.at));
  w.Field("expiredAt", FormatIsoTime(e.at + absl::Hours(24 * 30)));
  w.Key("price").Money(e.amount_cents);
  w.Field("isNewSubscriber", true);
  w.Field("isTrial", false);
  w.Key("fanData");
  WriteFanData(w, e.fan, e.at);
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
  }
  return "";
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
      WriteTransaction(w, e);
      break;
    case EventType::kSubscriptionNew:
      WriteSubscription(w, e);
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
  e.amount_cents = type == EventType::kSubscriptionNew ? 1500 : 999;
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
