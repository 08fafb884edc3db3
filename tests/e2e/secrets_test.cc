// No secret leaks: a whole run — tenant, API key, team with its upstream key and webhook, a priced
// campaign sent and its webhooks ingested, failed calls with a wrong key — with known secrets, then
// every log line herald wrote (at debug level), its whole /metrics output, and Redis' persisted
// data (the RDB snapshot, uncompressed, and the append-only file) are searched for each of them.
//
// The secrets: the platform admin key, the secrets-encryption key, the tenant's API key (stored
// as a hash), the team's upstream API key and its webhook signing secret (both stored sealed).
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/store/crypto.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_stack.h>
#include <herald/testing/net.h>
#include <herald/testing/observability.h>
#include <herald/testing/wait.h>
#include <herald/v1/account.grpc.pb.h>
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
// What the team "main" of kTenant seals its webhook secret as.
const std::string kWebhookContext =
    store::TeamSecretContext(kTenant, "main", store::TeamSecret::kWebhookSecret);

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

// A running stack with tenant kTenant, its API key, and team "main" with the simulator's first
// team's accounts and its webhook registered.
struct TenantStack {
  std::unique_ptr<HeraldStack> stack;
  std::string key;
  testing::TeamWithAccounts team;
};

absl::StatusOr<TenantStack> StartWithTeam(HeraldStack::Options options) {
  TenantStack out;
  HERALD_ASSIGN_OR_RETURN(out.stack, HeraldStack::Start(std::move(options)));
  HERALD_ASSIGN_OR_RETURN(out.key, testing::CreateTenant(out.stack->channel(), kAdminKey, kTenant));
  HERALD_ASSIGN_OR_RETURN(
      out.team, testing::CreateTeamWithAccounts(out.stack->channel(), out.key, kTenant, {}));
  if (!out.team.team.webhook_id().starts_with("wh_")) {
    return absl::FailedPreconditionError(
        StrCat("the team's webhook was not registered: ", out.team.team.webhook_error()));
  }
  return out;
}

TEST(SecretsTest, NoSecretInLogsMetricsOrRedis) {
  auto started = StartWithTeam(
      {.redis = {.appendonly = true},
       .simulator_args = {"--teams=1", "--accounts_per_team=3", "--fans_per_account=5"},
       .herald_args = {"--poll_interval=50ms", "--log_level=debug"},
       .admin_key = kAdminKey,
       .encryption_key = kEncryptionKey,
       .register_webhooks = true});
  ASSERT_TRUE(started.ok()) << started.status();
  HeraldStack& stack = *started->stack;
  const std::string& key = started->key;
  const testing::TeamWithAccounts& team = started->team;
  const std::string upstream_key = "sim-key-1";

  // The webhook signing secret, opened from its sealed form with the encryption key.
  auto record = stack.redis().Command({"HGET", StrCat("hd:{t:", kTenant, "}:teams"), "main"});
  ASSERT_TRUE(record.ok()) << record.status();
  const json::value team_record = json::parse(*record);
  auto box = store::SecretBox::FromHexKey(kEncryptionKey);
  ASSERT_TRUE(box.ok());
  auto webhook_secret =
      box->Open(team_record.at("sealed_webhook_secret").as_string(),
                store::TeamSecretContext(kTenant, "main", store::TeamSecret::kWebhookSecret));
  ASSERT_TRUE(webhook_secret.ok()) << webhook_secret.status();
  ASSERT_GE(webhook_secret->size(), 16u);

  // A priced campaign, sent and delivered; the simulator's webhooks reach the ingest.
  auto media = testing::CreateMediaAsset(stack.channel(), key, kTenant, v1::MediaAsset::IMAGE,
                                         "https://cdn.example.com/set.jpg");
  ASSERT_TRUE(media.ok()) << media.status();
  const v1::CreateCampaignRequest create =
      testing::CampaignToFans(kTenant, team.accounts, "A new set", 1500, *media);
  v1::Campaign campaign;
  auto campaigns = v1::CampaignService::NewStub(stack.channel());
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), create, &campaign);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::Campaign done;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        v1::GetCampaignRequest req;
        req.set_name(campaign.name());
        return campaigns->GetCampaign(BearerContext(key).get(), req, &done).ok() &&
               done.state() == v1::Campaign::COMPLETED;
      },
      absl::Seconds(60)))
      << v1::Campaign::State_Name(done.state()) << "\n"
      << stack.herald().Logs();

  // Calls with a wrong key and with a key of the right shape but revoked: refused, and the
  // refusal must not echo what was sent.
  const std::string wrong_key = StrCat(key, "x");
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
      {"admin key", kAdminKey},
      {"encryption key", kEncryptionKey},
      {"tenant API key", key},
      {"wrong tenant key", wrong_key},
      {"upstream API key", upstream_key},
      {"webhook signing secret", *webhook_secret}};
  for (const auto& [what, secret] : secrets) {
    EXPECT_EQ(logs.find(secret), std::string::npos) << what << " in herald's log";
    EXPECT_EQ(metrics->body.find(secret), std::string::npos) << what << " in /metrics";
    EXPECT_EQ(persisted.find(secret), std::string::npos) << what << " in Redis' files";
  }
}

// The sealed fields of the team's record in Redis.
std::vector<std::string> SealedFields(HeraldStack& stack, const std::string& tenant,
                                      const std::string& team) {
  auto record = stack.redis().Command({"HGET", StrCat("hd:{t:", tenant, "}:teams"), team});
  if (!record.ok()) return {StrCat("(", record.status().ToString(), ")")};
  const json::value v = json::parse(*record);
  std::vector<std::string> out;
  for (const char* field :
       {"sealed_api_key", "sealed_webhook_secret", "sealed_previous_webhook_secret"}) {
    if (const json::value* f = v.as_object().if_contains(field); f && !f->as_string().empty()) {
      out.emplace_back(f->as_string());
    }
  }
  return out;
}

// Posts an event of a type Herald does not apply to team "main"'s ingest endpoint, signed with
// `secret`, under a fresh idempotency key; the HTTP status (0: no answer).
int DeliverSigned(HeraldStack& stack, const std::string& secret) {
  static int events = 0;
  const std::string body = R"({"event":"accounts.connected","account_id":"acct_1","payload":{}})";
  auto r = testing::HttpRequest(stack.herald().ingest_port(), "POST",
                                StrCat("/webhooks/", kTenant, ".main"), body,
                                {{"Content-Type", "application/json"},
                                 {"X-OFAPI-Idempotency-Key", StrCat("evt_signed_", ++events)},
                                 {"Signature", store::HmacSha256Hex(secret, body)}});
  return r.ok() ? r->status : 0;
}

// Whether the stack's channel reaches the restarted herald within 10 s: its first calls may
// still meet the old process' connection.
bool Reconnected(HeraldStack& stack) {
  return testing::WaitFor(
      [&] {
        v1::ListTenantsResponse tenants;
        return v1::TenantService::NewStub(stack.channel())
            ->ListTenants(BearerContext(kAdminKey).get(), {}, &tenants)
            .ok();
      },
      absl::Seconds(10));
}

TEST(SecretsTest, EncryptionKeyRotatesWhileServing) {
  const std::string old_key(64, '1');
  const std::string new_key(64, '2');
  auto old_box = store::SecretBox::FromHexKey(old_key);
  auto new_box = store::SecretBox::FromHexKey(new_key);
  ASSERT_TRUE(old_box.ok() && new_box.ok());
  auto started = StartWithTeam(
      {.simulator_args = {"--teams=1", "--accounts_per_team=2", "--fans_per_account=5"},
       .admin_key = kAdminKey,
       .encryption_key = old_key,
       .register_webhooks = true});
  ASSERT_TRUE(started.ok()) << started.status();
  HeraldStack& stack = *started->stack;
  const std::string& key = started->key;
  const testing::TeamWithAccounts& team = started->team;
  const std::vector<std::string> before = SealedFields(stack, kTenant, "main");
  ASSERT_EQ(before.size(), 2u);  // the upstream key and the webhook signing secret
  for (const std::string& sealed : before) EXPECT_TRUE(old_box->SealedUnderCurrentKey(sealed));
  auto webhook_secret = old_box->Open(before[1], kWebhookContext);
  ASSERT_TRUE(webhook_secret.ok()) << webhook_secret.status();

  // The team's secrets work: its upstream key imports its accounts, and an event signed with its
  // webhook secret is taken (200; a type Herald does not use) while a forged one is not (401).
  auto channel = [&] { return stack.channel(); };
  auto sync = [&] {
    v1::SyncAccountsRequest req;
    req.set_team(team.team.name());
    v1::SyncAccountsResponse res;
    return v1::AccountService::NewStub(channel())->SyncAccounts(BearerContext(key).get(), req,
                                                                &res);
  };
  auto deliver = [&](const std::string& secret) { return DeliverSigned(stack, secret); };

  // Every process gets the new key, the old one as previous: old values still open.
  const std::string old_id = old_box->key_id();
  ASSERT_TRUE(stack.herald()
                  .Restart({{"HERALD_ENCRYPTION_KEY", new_key},
                            {"HERALD_PREVIOUS_ENCRYPTION_KEYS", old_key}})
                  .ok())
      << stack.herald().Logs();
  ASSERT_TRUE(Reconnected(stack));
  grpc::Status s = sync();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(deliver(*webhook_secret), 200);

  // The rotation seals both secrets again under the new key; a second run has nothing to do.
  auto tenants = v1::TenantService::NewStub(channel());
  v1::RotateEncryptionKeyResponse rotated;
  s = tenants->RotateEncryptionKey(BearerContext(kAdminKey).get(), {}, &rotated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(rotated.key_id(), new_box->key_id());
  EXPECT_EQ(rotated.teams_checked(), 1);
  EXPECT_EQ(rotated.secrets_resealed(), 2);
  EXPECT_EQ(rotated.unreadable_size(), 0);
  s = tenants->RotateEncryptionKey(BearerContext(kAdminKey).get(), {}, &rotated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(rotated.secrets_resealed(), 0);
  // Only the platform administrator may rotate.
  EXPECT_EQ(tenants->RotateEncryptionKey(BearerContext(key).get(), {}, &rotated).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  const std::vector<std::string> after = SealedFields(stack, kTenant, "main");
  ASSERT_EQ(after.size(), 2u);
  for (const std::string& sealed : after) {
    EXPECT_TRUE(new_box->SealedUnderCurrentKey(sealed)) << sealed;
    EXPECT_EQ(sealed.find(old_id), std::string::npos) << sealed;
  }
  EXPECT_EQ(new_box->Open(after[1], kWebhookContext).value_or(""), *webhook_secret);

  // The old key can go: with the new key alone both secrets still work.
  ASSERT_TRUE(stack.herald().Restart({{"HERALD_PREVIOUS_ENCRYPTION_KEYS", ""}}).ok())
      << stack.herald().Logs();
  ASSERT_TRUE(Reconnected(stack));
  s = sync();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(deliver(*webhook_secret), 200);
  EXPECT_EQ(deliver(std::string(43, 'x')), 401);

  // The rotation is in the audit trail.
  v1::ListAuditEventsRequest audit_req;
  v1::ListAuditEventsResponse audit;
  ASSERT_TRUE(tenants->ListAuditEvents(BearerContext(kAdminKey).get(), audit_req, &audit).ok());
  ASSERT_GE(audit.events_size(), 2);
  EXPECT_EQ(audit.events(0).action(), "encryption_key.rotate");
  EXPECT_EQ(audit.events(0).resource(), new_box->key_id());
  EXPECT_EQ(audit.events(0).detail(), "0 secrets resealed over 1 teams, 0 teams unreadable");
}

// A worker that cannot open a team's upstream key (one started without the encryption key it
// was sealed under, as during a rotation's rollout) retries the delivery's step rather than
// failing it: once a worker with the key runs, the campaign is sent. An ingest without the key
// answers the team's events 503 until it has the key, so that the upstream retries them.
TEST(SecretsTest, AWorkerWithoutTheKeyRetriesUntilOneWithItSends) {
  const std::string old_key(64, '3');
  const std::string new_key(64, '4');
  auto started = StartWithTeam(
      {.simulator_args = {"--teams=1", "--accounts_per_team=2", "--fans_per_account=5"},
       .herald_args = {"--log_level=warn"},
       .admin_key = kAdminKey,
       .encryption_key = old_key,
       .register_webhooks = true});
  ASSERT_TRUE(started.ok()) << started.status();
  HeraldStack& stack = *started->stack;
  auto old_box = store::SecretBox::FromHexKey(old_key);
  ASSERT_TRUE(old_box.ok());
  const std::vector<std::string> sealed = SealedFields(stack, kTenant, "main");
  ASSERT_EQ(sealed.size(), 2u);
  auto webhook_secret = old_box->Open(sealed[1], kWebhookContext);
  ASSERT_TRUE(webhook_secret.ok()) << webhook_secret.status();
  auto deliver = [&] { return DeliverSigned(stack, *webhook_secret); };
  ASSERT_TRUE(stack.herald().Restart({{"HERALD_ENCRYPTION_KEY", new_key}}).ok())
      << stack.herald().Logs();
  // Nor can its ingest check the team's events: they are answered 503, for the upstream to
  // retry, not refused as forgeries.
  EXPECT_EQ(deliver(), 503);

  v1::CreateCampaignRequest create =
      testing::CampaignToFans(kTenant, started->team.accounts, "Sent in the end", 0, "");
  create.mutable_campaign()->mutable_content()->clear_media();
  v1::Campaign campaign;
  ASSERT_TRUE(testing::WaitFor([&] {
    return v1::CampaignService::NewStub(stack.channel())
        ->CreateCampaign(BearerContext(started->key).get(), create, &campaign)
        .ok();
  }));
  const std::string retried = R"(herald_jobs_total{kind="delivery_send",outcome="retry"})";
  ASSERT_TRUE(testing::WaitFor([&] {
    auto metrics = testing::HttpGet(stack.herald().admin_port(), "/metrics");
    return metrics.ok() && testing::SeriesValue(metrics->body, retried).value_or(0) > 0;
  })) << stack.herald().Logs();
  auto get = [&] {
    v1::GetCampaignRequest req;
    req.set_name(campaign.name());
    v1::Campaign out;
    v1::CampaignService::NewStub(stack.channel())
        ->GetCampaign(BearerContext(started->key).get(), req, &out);
    return out;
  };
  EXPECT_NE(get().state(), v1::Campaign::FAILED);

  ASSERT_TRUE(stack.herald().Restart({{"HERALD_PREVIOUS_ENCRYPTION_KEYS", old_key}}).ok())
      << stack.herald().Logs();
  ASSERT_TRUE(
      testing::WaitFor([&] { return get().state() == v1::Campaign::COMPLETED; }, absl::Seconds(60)))
      << get().DebugString() << stack.herald().Logs();
  EXPECT_EQ(deliver(), 200);
}

// A team's webhook secret, rotated, leaves the one before accepted while the upstream may still
// sign with it: until the registration succeeds, then for --webhook_secret_overlap.
TEST(SecretsTest, AWebhookSecretsPredecessorIsAcceptedForItsOverlapOnly) {
  const std::string encryption_key(64, '5');
  auto started = StartWithTeam(
      {.simulator_args = {"--teams=1", "--accounts_per_team=1", "--fans_per_account=1"},
       .herald_args = {"--log_level=warn"},
       .admin_key = kAdminKey,
       .encryption_key = encryption_key,
       .register_webhooks = true});
  ASSERT_TRUE(started.ok()) << started.status();
  HeraldStack& stack = *started->stack;
  auto box = store::SecretBox::FromHexKey(encryption_key);
  ASSERT_TRUE(box.ok());
  auto current_secret = [&] {
    const std::vector<std::string> sealed = SealedFields(stack, kTenant, "main");
    return sealed.size() < 2 ? "" : box->Open(sealed[1], kWebhookContext).value_or("");
  };
  auto deliver = [&](const std::string& secret) { return DeliverSigned(stack, secret); };
  auto rotate = [&](v1::Team* team) {
    v1::RegisterTeamWebhookRequest req;
    req.set_name(started->team.team.name());
    return v1::AccountService::NewStub(stack.channel())
        ->RegisterTeamWebhook(BearerContext(started->key).get(), req, team);
  };
  // Each restart starts the ingest's endpoint cache afresh.
  auto restart = [&](const std::map<std::string, std::string>& env) {
    ASSERT_TRUE(stack.herald().Restart(env).ok()) << stack.herald().Logs();
    ASSERT_TRUE(Reconnected(stack));
  };

  const std::string first = current_secret();
  ASSERT_FALSE(first.empty());
  v1::Team team;
  grpc::Status s = rotate(&team);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(team.has_webhook_secret_rotate_time());
  const std::string second = current_secret();
  ASSERT_NE(second, first);
  EXPECT_EQ(deliver(first), 200);  // within the default overlap of a day
  EXPECT_EQ(deliver(second), 200);

  // Without an overlap, the predecessor is refused once the upstream has the new secret.
  ASSERT_NO_FATAL_FAILURE(restart({{"HERALD_WEBHOOK_SECRET_OVERLAP", "0s"}}));
  EXPECT_EQ(deliver(first), 401);
  EXPECT_EQ(deliver(second), 200);

  // A registration the upstream fails leaves the upstream signing with the secret it has: that
  // one stays accepted, overlap or not, until a registration succeeds.
  auto fault = testing::HttpRequest(
      stack.sim().port(), "POST", "/_sim/faults",
      R"({"team":"team-1","path_contains":"/webhooks","error_rate":1,"error_status":500})");
  ASSERT_TRUE(fault.ok() && fault->status == 200);
  s = rotate(&team);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  const std::string third = current_secret();
  ASSERT_NE(third, second);
  ASSERT_NO_FATAL_FAILURE(restart({}));
  EXPECT_EQ(deliver(second), 200);
  EXPECT_EQ(deliver(third), 200);
  auto cleared = testing::HttpRequest(stack.sim().port(), "DELETE", "/_sim/faults?team=team-1", "");
  ASSERT_TRUE(cleared.ok() && cleared->status == 200);
  s = rotate(&team);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(current_secret(), third) << "the secret offered before is offered again";
  ASSERT_NO_FATAL_FAILURE(restart({}));
  EXPECT_EQ(deliver(second), 401);
  EXPECT_EQ(deliver(third), 200);

  // A secret set by hand on a webhook Herald registered is not told to the upstream: the one the
  // upstream signs with stays accepted, overlap or not, until the secret changes again.
  const std::string by_hand = "whsec-set-by-hand-0123456789";
  v1::UpdateTeamRequest update;
  update.mutable_team()->set_name(started->team.team.name());
  update.mutable_team()->set_webhook_signing_secret(by_hand);
  update.mutable_update_mask()->add_paths("webhook_signing_secret");
  s = v1::AccountService::NewStub(stack.channel())
          ->UpdateTeam(BearerContext(started->key).get(), update, &team);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_NO_FATAL_FAILURE(restart({}));
  EXPECT_EQ(deliver(third), 200);
  EXPECT_EQ(deliver(by_hand), 200);
}

}  // namespace
}  // namespace herald
