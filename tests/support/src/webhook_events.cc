#include <boost/json.hpp>

#include <herald/common/strings.h>
#include <herald/store/crypto.h>
#include <herald/store/record_store.h>
#include <herald/testing/redis_sync.h>
#include <herald/testing/webhook_events.h>

namespace herald::testing {

std::string TeamsKey(std::string_view tenant) { return StrCat("hd:{t:", tenant, "}:teams"); }

absl::StatusOr<std::string> OpenWebhookSecret(std::string_view team_record,
                                              std::string_view encryption_key_hex) {
  boost::system::error_code ec;
  const boost::json::value team = boost::json::parse(team_record, ec);
  if (ec || !team.is_object() || !team.as_object().contains("sealed_webhook_secret")) {
    return absl::InternalError(StrCat("unexpected team record: ", team_record));
  }
  auto box = store::SecretBox::FromHexKey(encryption_key_hex);
  if (!box.ok()) return box.status();
  return box->Open(
      team.at("sealed_webhook_secret").as_string(),
      store::TeamSecretContext(team.at("tenant").as_string(), team.at("id").as_string(),
                               store::TeamSecret::kWebhookSecret));
}

Delivery SubscriptionDelivery(std::string key, std::string account, int64_t fan_id,
                              const std::string& secret, int64_t spend_cents) {
  Delivery d;
  d.key = std::move(key);
  d.account = std::move(account);
  d.fan_id = fan_id;
  d.type = "subscriptions.new";
  d.body = StrCat(
      R"({"event":"subscriptions.new","account_id":")", d.account, R"(","payload":{"user_id":")",
      d.fan_id, R"(","subscribedAt":"2026-11-30T12:00:00+00:00",)",
      R"("expiredAt":"2026-12-30T12:00:00+00:00","price":9.99,)",
      R"("isNewSubscriber":true,"fanData":{"available":true,"spending":{"total":)",
      spend_cents / 100, ".", spend_cents % 100 < 10 ? "0" : "", spend_cents % 100, "}}}}");
  d.signature = store::HmacSha256Hex(secret, d.body);
  return d;
}

absl::Status AppendStreamEvents(uint16_t redis_port, const std::string& redis_password,
                                std::string_view tenant, int count) {
  auto conn = SyncRedis::Connect(redis_port, redis_password);
  if (!conn.ok()) return conn.status();
  const std::vector<std::string> keys = {store::TenantKeyPrefix(tenant) + "events"};
  auto added = (*conn)->Eval(R"(
    local first = redis.call('XLEN', KEYS[1])
    for i = first + 1, first + tonumber(ARGV[1]) do
      redis.call('XADD', KEYS[1], '*', 'type', 'transactions.new', 'account', 'acct_replay',
                 'message', 0, 'chat', i, 'fan', i, 'price', 0, 'amount', 100, 'at', 1)
    end
    return redis.call('XLEN', KEYS[1]) - first)",
                             keys, {StrCat(count)});
  if (!added.ok()) return added.status();
  if (added->integer != count) {
    return absl::InternalError(StrCat("appended ", added->DebugString(), " events, not ", count));
  }
  return absl::OkStatus();
}

}  // namespace herald::testing
