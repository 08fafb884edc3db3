// No secret leaks: a whole run — tenant, API key, team with its upstream key and webhook, a priced
// campaign sent and its webhooks ingested, failed calls with a wrong key — with known secrets, then
// every log line herald wrote (at debug level), its whole /metrics output, and Redis' persisted
// data (the RDB snapshot, uncompressed, and the append-only file) are searched for each of them.
//
// The secrets: the platform admin key, the secrets-encryption key, the tenant's API key (stored
// as a hash), the team's upstream API key and its webhook signing secret (both stored sealed).
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/store/crypto.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_stack.h>
#include <herald/testing/net.h>
#include <herald/testing/wait.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald {
namespace {

namespace json = boost::json;
using testing::BearerContext;
using testing::HeraldStack;

constexpr char kAdminKey[] = "admin-7c1d9e-secret-for-leak-test";
const std::string kEncryptionKey = "5f" + std::string(62, 'e');
constexpr char kTenant[] = "leaks";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Every file under `dir`, concatenated (the RDB and the append-only files).
std::string ReadTree(const std::filesystem::path& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) all += ReadFile(entry.path());
  }
  return all;
}

TEST(SecretsTest, NoSecretInLogsMetricsOrRedis) {
  auto started = HeraldStack::Start(
      {.redis = {.appendonly = true},
       .simulator_args = {"--teams=1", "--accounts_per_team=3", "--fans_per_account=5"},
       .herald_args = {"--poll_interval=50ms", "--log_level=debug"},
       .admin_key = kAdminKey,
       .encryption_key = kEncryptionKey,
       .register_webhooks = true});
  ASSERT_TRUE(started.ok()) << started.status();
  HeraldStack& stack = **started;

  auto key = testing::CreateTenant(stack.channel(), kAdminKey, kTenant);
  ASSERT_TRUE(key.ok()) << key.status();
  auto team = testing::CreateTeamWithAccounts(stack.channel(), *key, kTenant, {});
  ASSERT_TRUE(team.ok()) << team.status();
  ASSERT_TRUE(team->team.webhook_id().starts_with("wh_")) << team->team.webhook_error();
  const std::string upstream_key = "sim-key-1";

  // The webhook signing secret, opened from its sealed form with the encryption key.
  auto record = stack.redis().Command({"HGET", StrCat("hd:{t:", kTenant, "}:teams"), "main"});
  ASSERT_TRUE(record.ok()) << record.status();
  const json::value team_record = json::parse(*record);
  auto box = store::SecretBox::FromHexKey(kEncryptionKey);
  ASSERT_TRUE(box.ok());
  auto webhook_secret = box->Open(team_record.at("sealed_webhook_secret").as_string());
  ASSERT_TRUE(webhook_secret.ok()) << webhook_secret.status();
  ASSERT_GE(webhook_secret->size(), 16u);

  // A priced campaign, sent and delivered; the simulator's webhooks reach the ingest.
  auto media = testing::CreateMediaAsset(stack.channel(), *key, kTenant, v1::MediaAsset::IMAGE,
                                         "https://cdn.example.com/set.jpg");
  ASSERT_TRUE(media.ok()) << media.status();
  const v1::CreateCampaignRequest create =
      testing::CampaignToFans(kTenant, team->accounts, "A new set", 1500, *media);
  v1::Campaign campaign;
  auto campaigns = v1::CampaignService::NewStub(stack.channel());
  grpc::Status s = campaigns->CreateCampaign(BearerContext(*key).get(), create, &campaign);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::Campaign done;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        v1::GetCampaignRequest req;
        req.set_name(campaign.name());
        return campaigns->GetCampaign(BearerContext(*key).get(), req, &done).ok() &&
               done.state() == v1::Campaign::COMPLETED;
      },
      absl::Seconds(60)))
      << v1::Campaign::State_Name(done.state()) << "\n"
      << stack.herald().Logs();

  // Calls with a wrong key and with a key of the right shape but revoked: refused, and the
  // refusal must not echo what was sent.
  const std::string wrong_key = StrCat(*key, "x");
  v1::GetCampaignRequest get;
  get.set_name(campaign.name());
  v1::Campaign ignored;
  grpc::Status refused = campaigns->GetCampaign(BearerContext(wrong_key).get(), get, &ignored);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(refused.error_message().find(wrong_key), std::string::npos);
  const std::string wrong_admin = StrCat(kAdminKey, "x");
  v1::GetTenantRequest get_tenant;
  get_tenant.set_name(StrCat("tenants/", kTenant));
  v1::Tenant tenant;
  refused = v1::TenantService::NewStub(stack.channel())
                ->GetTenant(BearerContext(wrong_admin).get(), get_tenant, &tenant);
  EXPECT_NE(refused.error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(refused.error_message().find(wrong_admin), std::string::npos);

  // What herald wrote and exports.
  const std::string logs = stack.herald().Logs();
  ASSERT_FALSE(logs.empty());
  auto metrics = testing::HttpGet(stack.herald().admin_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_EQ(metrics->status, 200);
  // What Redis keeps: a fresh uncompressed snapshot and the append-only file.
  ASSERT_TRUE(stack.redis().Command({"CONFIG", "SET", "rdbcompression", "no"}).ok());
  ASSERT_EQ(stack.redis().Command({"SAVE"}).value_or(""), "OK");
  const std::string persisted = ReadTree(stack.redis().dir());
  // The data is there: the team's record, in the snapshot and in the append-only file.
  ASSERT_NE(persisted.find("sealed_webhook_secret"), std::string::npos);

  const std::vector<std::pair<std::string, std::string>> secrets = {
      {"admin key", kAdminKey},           {"encryption key", kEncryptionKey},
      {"tenant API key", *key},           {"wrong tenant key", wrong_key},
      {"upstream API key", upstream_key}, {"webhook signing secret", *webhook_secret}};
  for (const auto& [what, secret] : secrets) {
    EXPECT_EQ(logs.find(secret), std::string::npos) << what << " in herald's log";
    EXPECT_EQ(metrics->body.find(secret), std::string::npos) << what << " in /metrics";
    EXPECT_EQ(persisted.find(secret), std::string::npos) << what << " in Redis' files";
  }
}

}  // namespace
}  // namespace herald
