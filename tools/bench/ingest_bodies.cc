// Writes a wrk script that posts signed webhook deliveries to one ingest endpoint: `--count`
// realistic bodies (messages sent, unlocks, transactions, queue progress, subscriptions), each
// signed with the team's webhook secret, cycled through, every request with its own
// X-OFAPI-Idempotency-Key (the signature covers the body only, so keys can be minted by wrk).
//
//   ingest_bodies --sealed_secret=v1:… --encryption_key=<64 hex>
//       --endpoint=/webhooks/t.team --account=acct_… --count=1000 > ingest.lua
#include <algorithm>
#include <cstdio>
#include <string>

#include <absl/flags/flag.h>
#include <absl/flags/parse.h>

#include <herald/common/strings.h>
#include <herald/store/crypto.h>

ABSL_FLAG(std::string, sealed_secret, "", "The team's sealed_webhook_secret, as stored.");
ABSL_FLAG(std::string, encryption_key, "", "Herald's --encryption_key (64 hex characters).");
ABSL_FLAG(std::string, endpoint, "", "The ingest path, /webhooks/<tenant>.<team>.");
ABSL_FLAG(std::string, account, "acct_bench", "The account id the events name.");
ABSL_FLAG(int, count, 1000, "Distinct bodies.");

namespace {

std::string LuaString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// One of five event shapes, in the proportions a PPV campaign produces (mostly messages.sent).
// In each ten bodies, the unlock and the transaction are one purchase of the first body's
// message, so purchases are attributed and credited as a campaign's are.
std::string Body(int i, const std::string& account) {
  using herald::StrCat;
  const int64_t queue = 5'000'000 + i / 50;
  const bool purchase = i % 10 == 7 || i % 10 == 8;
  const int message = purchase ? i - i % 10 : i;
  const int64_t chat = 9'000'000 + message;
  const int64_t fan = 100'000 + message;
  switch (i % 10) {
    case 7:
      return StrCat(
          R"({"event":"messages.ppv.unlocked","account_id":")", account, R"(","payload":{"id":"n)",
          i, R"(","type":"paided_message","user_id":")", fan,
          R"(","replacePairs":{"{AMOUNT}":"$15.00","{MESSAGE_LINK}":"<a href=\"https://onlyfans.com/my/chats/chat/)",
          fan, "/?firstId=", chat,
          R"(\">message</a>"},"fanData":{"available":true,"spending":{"total":45.5}}}})");
    case 8:
      return StrCat(
          R"({"event":"transactions.new","account_id":")", account, R"(","payload":{"id":"tx)", i,
          R"(","created_at":"2026-11-30 12:00:00","type":"message","amount":15,"vat_amount":0,"tax_amount":0,"net_amount":12,"fee_amount":3,"currency":"USD","description":"Payment for <a href=\"https://onlyfans.com/my/chats/chat/)",
          fan, "/?firstId=", chat, R"(\">message</a>","fan":{"id":")", fan,
          R"("},"fanData":{"available":true,"spending":{"total":45.5}}}})");
    case 9:
      return StrCat(
          R"({"event":"chat_queue.updated","account_id":")", account, R"(","payload":{"id":)",
          queue,
          R"(,"date":"2026-11-30T12:00:00+00:00","isDone":false,"isCanceled":false,"hasError":false,"isReady":true,"pending":)",
          1000 - i % 1000, R"(,"total":1000,"canUnsend":true,"unsendSeconds":30}})");
    default:
      return StrCat(
          R"({"event":"messages.sent","account_id":")", account, R"(","payload":{"id":)", chat,
          R"(,"text":"<p>New set</p>","price":15,"isFree":false,"mediaCount":1,"queueId":)", queue,
          R"(,"isFromQueue":true,"createdAt":"2026-11-30T12:00:00+00:00","canPurchase":true,"isOpened":false,"isNew":true,"toUser":{"id":)",
          fan, R"(,"name":"Fan","username":"u)", fan, R"("}}})");
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto box = herald::store::SecretBox::FromHexKey(absl::GetFlag(FLAGS_encryption_key));
  if (!box.ok()) {
    std::fprintf(stderr, "ingest_bodies: %s\n", std::string(box.status().message()).c_str());
    return 2;
  }
  // The endpoint names the team: /webhooks/<tenant>.<team>.
  std::string_view endpoint = absl::GetFlag(FLAGS_endpoint);
  endpoint.remove_prefix(std::min(endpoint.size(), std::string_view("/webhooks/").size()));
  const size_t dot = endpoint.find('.');
  const std::string context = herald::store::TeamSecretContext(
      endpoint.substr(0, dot), dot == std::string_view::npos ? "" : endpoint.substr(dot + 1),
      herald::store::TeamSecret::kWebhookSecret);
  auto secret = box->Open(absl::GetFlag(FLAGS_sealed_secret), context);
  if (!secret.ok()) {
    std::fprintf(stderr, "ingest_bodies: %s\n", std::string(secret.status().message()).c_str());
    return 2;
  }
  const std::string account = absl::GetFlag(FLAGS_account);
  std::string lua = "local bodies = {\n";
  std::string signatures = "local signatures = {\n";
  for (int i = 0; i < absl::GetFlag(FLAGS_count); ++i) {
    const std::string body = Body(i, account);
    lua += "  " + LuaString(body) + ",\n";
    signatures += "  \"" + herald::store::HmacSha256Hex(*secret, body) + "\",\n";
  }
  lua += "}\n" + signatures + "}\n";
  lua += "local path = " + LuaString(absl::GetFlag(FLAGS_endpoint)) + "\n";
  lua += R"(local n = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("prefix", "evt_" .. os.time() .. "_" .. threads .. "_")
end
function request()
  n = n + 1
  local i = (n % #bodies) + 1
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Signature"] = signatures[i],
    ["X-OFAPI-Idempotency-Key"] = prefix .. n,
    ["User-Agent"] = "OnlyFansAPI.com/Webhook-Client",
  }, bodies[i])
end
)";
  std::fputs(lua.c_str(), stdout);
  return 0;
}
