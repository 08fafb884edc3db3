// The audit trail: administrative and key operations recorded with who did them, readable by the
// platform administrator only, newest first, by tenant and in pages, and never with a secret.
#include <string>
#include <vector>

#include <absl/time/clock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_stack.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald {
namespace {

using testing::BearerContext;
using testing::HeraldStack;

constexpr char kAdminKey[] = "admin-key-for-audit-test";

// "action resource (actor)" of each entry, newest first.
std::vector<std::string> Entries(const v1::ListAuditEventsResponse& page) {
  std::vector<std::string> out;
  for (const v1::AuditEvent& e : page.events()) {
    out.push_back(StrCat(e.action(), " ", e.resource(), " (", e.actor(), ")"));
  }
  return out;
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto stack = HeraldStack::Start({.simulator_args = {"--teams=2", "--accounts_per_team=1"},
                                     .admin_key = kAdminKey,
                                     .encryption_key = std::string(64, 'a')});
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = *std::move(stack);
    tenants_ = v1::TenantService::NewStub(stack_->channel());
  }

  grpc::Status List(const std::string& key, const v1::ListAuditEventsRequest& req,
                    v1::ListAuditEventsResponse* out) {
    return tenants_->ListAuditEvents(BearerContext(key).get(), req, out);
  }

  std::unique_ptr<HeraldStack> stack_;
  std::unique_ptr<v1::TenantService::Stub> tenants_;
};

TEST_F(AuditTest, KeyAndAdminOperationsAreRecordedWithTheirActor) {
  const absl::Time start = absl::Now();
  auto key = testing::CreateTenant(stack_->channel(), kAdminKey, "acme");
  ASSERT_TRUE(key.ok()) << key.status();
  auto other = testing::CreateTenant(stack_->channel(), kAdminKey, "globex");
  ASSERT_TRUE(other.ok()) << other.status();
  auto team = testing::CreateTeamWithAccounts(stack_->channel(), *key, "acme");
  ASSERT_TRUE(team.ok()) << team.status();

  // The tenant replaces its team's upstream key, then cancels a scheduled campaign.
  const std::string replacement = "sim-key-2";
  {
    v1::UpdateTeamRequest req;
    req.mutable_team()->set_name(team->team.name());
    req.mutable_team()->set_upstream_api_key(replacement);
    req.mutable_update_mask()->add_paths("upstream_api_key");
    v1::Team updated;
    grpc::Status s = v1::AccountService::NewStub(stack_->channel())
                         ->UpdateTeam(BearerContext(*key).get(), req, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::string campaign;
  {
    auto campaigns = v1::CampaignService::NewStub(stack_->channel());
    auto media = testing::CreateMediaAsset(stack_->channel(), *key, "acme", v1::MediaAsset::IMAGE,
                                           "https://cdn.example.com/set.jpg");
    ASSERT_TRUE(media.ok()) << media.status();
    v1::CreateCampaignRequest req =
        testing::CampaignToFans("acme", team->accounts, "Later", 1500, *media);
    req.mutable_campaign()->mutable_send_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) +
                                                             3600);
    v1::Campaign created;
    grpc::Status s = campaigns->CreateCampaign(BearerContext(*key).get(), req, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
    campaign = created.name();
    v1::CancelCampaignRequest creq;
    creq.set_name(campaign);
    v1::CancelCampaignResponse cancelled;
    s = campaigns->CancelCampaign(BearerContext(*key).get(), creq, &cancelled);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // The administrator revokes globex's key.
  v1::ListApiKeysRequest lreq;
  lreq.set_parent("tenants/globex");
  v1::ListApiKeysResponse keys;
  ASSERT_TRUE(tenants_->ListApiKeys(BearerContext(kAdminKey).get(), lreq, &keys).ok());
  ASSERT_EQ(keys.api_keys_size(), 1);
  const std::string globex_key = keys.api_keys(0).name();
  v1::RevokeApiKeyRequest rreq;
  rreq.set_name(globex_key);
  v1::ApiKey revoked;
  ASSERT_TRUE(tenants_->RevokeApiKey(BearerContext(kAdminKey).get(), rreq, &revoked).ok());
  // Revoking it again changes nothing, and is not recorded again (the list below has one).
  v1::ApiKey again;
  ASSERT_TRUE(tenants_->RevokeApiKey(BearerContext(kAdminKey).get(), rreq, &again).ok());
  EXPECT_EQ(again.SerializeAsString(), revoked.SerializeAsString());

  v1::ListApiKeysResponse acme_keys;
  lreq.set_parent("tenants/acme");
  ASSERT_TRUE(tenants_->ListApiKeys(BearerContext(kAdminKey).get(), lreq, &acme_keys).ok());
  ASSERT_EQ(acme_keys.api_keys_size(), 1);
  const std::string acme_key = acme_keys.api_keys(0).name();
  const std::string acme_team = team->team.name();

  // Everything, newest first, each with who did it.
  v1::ListAuditEventsResponse all;
  grpc::Status s = List(kAdminKey, {}, &all);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Entries(all), (std::vector<std::string>{
                              StrCat("api_key.revoke ", globex_key, " (platform-admin)"),
                              StrCat("campaign.cancel ", campaign, " (", acme_key, ")"),
                              StrCat("team.update_key ", acme_team, " (", acme_key, ")"),
                              StrCat("team.create ", acme_team, " (", acme_key, ")"),
                              StrCat("api_key.create ", globex_key, " (platform-admin)"),
                              "tenant.create tenants/globex (platform-admin)",
                              StrCat("api_key.create ", acme_key, " (platform-admin)"),
                              "tenant.create tenants/acme (platform-admin)",
                          }));
  EXPECT_EQ(all.next_page_token(), "");
  for (const v1::AuditEvent& e : all.events()) {
    EXPECT_GE(e.time().seconds(), absl::ToUnixSeconds(start) - 1) << e.action();
    // No secret: neither tenant key nor either upstream key.
    for (const std::string& secret : {*key, *other, std::string("sim-key-1"), replacement}) {
      EXPECT_EQ(e.ShortDebugString().find(secret), std::string::npos) << e.ShortDebugString();
    }
  }
  EXPECT_EQ(all.events(1).detail(), "0 deliveries not undone");

  // One tenant's entries, two at a time.
  v1::ListAuditEventsRequest req;
  req.set_parent("tenants/globex");
  req.set_page_size(2);
  v1::ListAuditEventsResponse page;
  ASSERT_TRUE(List(kAdminKey, req, &page).ok());
  EXPECT_EQ(Entries(page),
            (std::vector<std::string>{StrCat("api_key.revoke ", globex_key, " (platform-admin)"),
                                      StrCat("api_key.create ", globex_key, " (platform-admin)")}));
  ASSERT_FALSE(page.next_page_token().empty());
  req.set_page_token(page.next_page_token());
  // A token serves the listing it came from only.
  v1::ListAuditEventsRequest elsewhere = req;
  elsewhere.set_parent("tenants/acme");
  v1::ListAuditEventsResponse refused;
  grpc::Status moved = List(kAdminKey, elsewhere, &refused);
  EXPECT_EQ(moved.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << moved.error_message();
  elsewhere.clear_parent();
  EXPECT_EQ(List(kAdminKey, elsewhere, &refused).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(List(kAdminKey, req, &page).ok());
  EXPECT_EQ(Entries(page),
            std::vector<std::string>{"tenant.create tenants/globex (platform-admin)"});
  EXPECT_EQ(page.next_page_token(), "");
}

// A tenant's keys come in pages, each key once, in the order they were made.
TEST_F(AuditTest, ApiKeysAreListedInPages) {
  auto first = testing::CreateTenant(stack_->channel(), kAdminKey, "paged");
  ASSERT_TRUE(first.ok()) << first.status();
  std::vector<std::string> made;
  for (int i = 0; i < 4; ++i) {
    v1::CreateApiKeyRequest req;
    req.set_parent("tenants/paged");
    v1::CreateApiKeyResponse created;
    ASSERT_TRUE(tenants_->CreateApiKey(BearerContext(kAdminKey).get(), req, &created).ok());
    made.push_back(created.api_key().name());
  }
  std::vector<std::string> listed;
  v1::ListApiKeysRequest req;
  req.set_parent("tenants/paged");
  req.set_page_size(2);
  int pages = 0;
  do {
    v1::ListApiKeysResponse page;
    const grpc::Status s = tenants_->ListApiKeys(BearerContext(kAdminKey).get(), req, &page);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_LE(page.api_keys_size(), 2);
    for (const v1::ApiKey& k : page.api_keys()) listed.push_back(k.name());
    req.set_page_token(page.next_page_token());
    ASSERT_LT(++pages, 5);
  } while (!req.page_token().empty());
  EXPECT_EQ(pages, 3);  // the tenant's first key and the four made here
  ASSERT_EQ(listed.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(listed.begin() + 1, listed.end()), made);
  // A token is for the listing it came from.
  ASSERT_TRUE(testing::CreateTenant(stack_->channel(), kAdminKey, "paged-other").ok());
  req.set_page_size(2);
  req.clear_page_token();
  v1::ListApiKeysResponse page;
  ASSERT_TRUE(tenants_->ListApiKeys(BearerContext(kAdminKey).get(), req, &page).ok());
  req.set_parent("tenants/paged-other");
  req.set_page_token(page.next_page_token());
  EXPECT_EQ(tenants_->ListApiKeys(BearerContext(kAdminKey).get(), req, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AuditTest, OnlyThePlatformAdministratorReadsItAndBadRequestsAreRefused) {
  auto key = testing::CreateTenant(stack_->channel(), kAdminKey, "acme");
  ASSERT_TRUE(key.ok()) << key.status();
  v1::ListAuditEventsResponse out;
  EXPECT_EQ(List(*key, {}, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(List("not-a-key", {}, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  v1::ListAuditEventsRequest req;
  req.set_page_size(-1);
  grpc::Status s = List(kAdminKey, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("page_size"), std::string::npos) << s.error_message();
  req.set_page_size(1001);  // as every list: the maximum, 1000
  EXPECT_TRUE(List(kAdminKey, req, &out).ok());
  req.set_page_size(10);
  req.set_page_token("not-a-token");
  s = List(kAdminKey, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("page_token"), std::string::npos) << s.error_message();
  req.clear_page_token();
  req.set_parent("teams/main");
  EXPECT_EQ(List(kAdminKey, req, &out).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace herald
