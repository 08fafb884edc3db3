// The commands end to end against in-process fake services: what each command sends (requests,
// update masks, credentials, upload chunks), how it pages, prints and exits. No Herald needed.
#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/heraldctl/cli.h>
#include <herald/heraldctl/exit_codes.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald::heraldctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Bearer(const grpc::ServerContext* context) {
  auto it = context->client_metadata().find("authorization");
  if (it == context->client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// Records what it receives; answers from canned values.
struct Recorder {
  std::mutex mu;
  std::string bearer;
  std::vector<std::string> page_tokens;
  v1::CreateTenantRequest create_tenant;
  v1::CreateTeamRequest create_team;
  std::string register_webhook;
  std::string stats_name;
  std::vector<int32_t> page_sizes;
  v1::UpdateAccountRequest update_account;
  v1::CreateCampaignRequest create_campaign;
  v1::UpdateCampaignRequest update_campaign;
  v1::UploadMediaAssetRequest::Metadata upload_metadata;
  std::vector<size_t> upload_chunks;
  std::string upload_bytes;
};

class FakeTenants final : public v1::TenantService::Service {
 public:
  explicit FakeTenants(Recorder& r) : r_(r) {}
  grpc::Status CreateTenant(grpc::ServerContext* context, const v1::CreateTenantRequest* request,
                            v1::Tenant* response) override {
    std::lock_guard lock(r_.mu);
    r_.bearer = Bearer(context);
    r_.create_tenant = *request;
    if (request->tenant_id() == "taken") {
      return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "tenants/taken exists");
    }
    response->set_name("tenants/" + request->tenant_id());
    response->set_display_name(request->tenant().display_name());
    return grpc::Status::OK;
  }
  grpc::Status CreateApiKey(grpc::ServerContext*, const v1::CreateApiKeyRequest* request,
                            v1::CreateApiKeyResponse* response) override {
    response->mutable_api_key()->set_name(request->parent() + "/apiKeys/k1");
    response->set_secret("hk_secret");
    return grpc::Status::OK;
  }

 private:
  Recorder& r_;
};

class FakeAccounts final : public v1::AccountService::Service {
 public:
  explicit FakeAccounts(Recorder& r) : r_(r) {}
  grpc::Status CreateTeam(grpc::ServerContext*, const v1::CreateTeamRequest* request,
                          v1::Team* response) override {
    std::lock_guard lock(r_.mu);
    r_.create_team = *request;
    response->set_name(request->parent() + "/teams/" + request->team_id());
    return grpc::Status::OK;
  }
  // "broken" has no public webhook URL to register.
  grpc::Status RegisterTeamWebhook(grpc::ServerContext*,
                                   const v1::RegisterTeamWebhookRequest* request,
                                   v1::Team* response) override {
    std::lock_guard lock(r_.mu);
    r_.register_webhook = request->name();
    if (request->name().ends_with("/broken")) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no public webhook URL");
    }
    response->set_name(request->name());
    response->set_webhook_id("wh_new");
    return grpc::Status::OK;
  }
  grpc::Status GetAccount(grpc::ServerContext*, const v1::GetAccountRequest* request,
                          v1::Account*) override {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, request->name() + " not found");
  }
  // Two pages: acct_a, then acct_b.
  grpc::Status ListAccounts(grpc::ServerContext*, const v1::ListAccountsRequest* request,
                            v1::ListAccountsResponse* response) override {
    std::lock_guard lock(r_.mu);
    r_.page_tokens.push_back(request->page_token());
    if (request->page_token().empty()) {
      response->add_accounts()->set_name(request->parent() + "/accounts/acct_a");
      response->set_next_page_token("p2");
    } else {
      response->add_accounts()->set_name(request->parent() + "/accounts/acct_b");
    }
    return grpc::Status::OK;
  }
  // A broken server: the same next page forever.
  grpc::Status ListTeams(grpc::ServerContext*, const v1::ListTeamsRequest*,
                         v1::ListTeamsResponse* response) override {
    response->add_teams()->set_name("tenants/acme/teams/t");
    response->set_next_page_token("again");
    return grpc::Status::OK;
  }
  grpc::Status UpdateAccount(grpc::ServerContext*, const v1::UpdateAccountRequest* request,
                             v1::Account* response) override {
    std::lock_guard lock(r_.mu);
    r_.update_account = *request;
    *response = request->account();
    return grpc::Status::OK;
  }

 private:
  Recorder& r_;
};

class FakeMedia final : public v1::MediaService::Service {
 public:
  explicit FakeMedia(Recorder& r) : r_(r) {}
  grpc::Status UploadMediaAsset(grpc::ServerContext*,
                                grpc::ServerReader<v1::UploadMediaAssetRequest>* reader,
                                v1::MediaAsset* response) override {
    std::lock_guard lock(r_.mu);
    v1::UploadMediaAssetRequest part;
    bool first = true;
    while (reader->Read(&part)) {
      if (first) {
        if (!part.has_metadata()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "meta");
        r_.upload_metadata = part.metadata();
        first = false;
        continue;
      }
      r_.upload_chunks.push_back(part.chunk().size());
      r_.upload_bytes += part.chunk();
    }
    response->set_name(r_.upload_metadata.parent() + "/media/m1");
    response->set_size_bytes(static_cast<int64_t>(r_.upload_bytes.size()));
    return grpc::Status::OK;
  }

 private:
  Recorder& r_;
};

class FakeCampaigns final : public v1::CampaignService::Service {
 public:
  explicit FakeCampaigns(Recorder& r) : r_(r) {}
  grpc::Status CreateCampaign(grpc::ServerContext*, const v1::CreateCampaignRequest* request,
                              v1::Campaign* response) override {
    std::lock_guard lock(r_.mu);
    r_.create_campaign = *request;
    *response = request->campaign();
    response->set_name(request->parent() + "/campaigns/c1");
    if (request->campaign().save_as_draft()) response->set_state(v1::Campaign::DRAFT);
    return grpc::Status::OK;
  }
  grpc::Status UpdateCampaign(grpc::ServerContext*, const v1::UpdateCampaignRequest* request,
                              v1::Campaign* response) override {
    std::lock_guard lock(r_.mu);
    r_.update_campaign = *request;
    *response = request->campaign();
    return grpc::Status::OK;
  }
  // c-done completes; c-failed ends PARTIALLY_FAILED; anything else is cut short.
  grpc::Status WatchCampaign(grpc::ServerContext*, const v1::WatchCampaignRequest* request,
                             grpc::ServerWriter<v1::WatchCampaignResponse>* writer) override {
    v1::WatchCampaignResponse change;
    v1::Campaign* campaign = change.mutable_campaign();
    campaign->set_name(request->name());
    campaign->set_state(v1::Campaign::SENDING);
    campaign->mutable_delivery_counts()->set_total(2);
    writer->Write(change);
    v1::WatchCampaignResponse delivery;
    delivery.mutable_delivery()->set_account("tenants/acme/accounts/acct_a");
    delivery.mutable_delivery()->set_state(v1::Delivery::COMPLETED);
    writer->Write(delivery);
    if (request->name().ends_with("/c-done")) {
      campaign->set_state(v1::Campaign::COMPLETED);
      campaign->mutable_delivery_counts()->set_completed(2);
    } else if (request->name().ends_with("/c-failed")) {
      campaign->set_state(v1::Campaign::PARTIALLY_FAILED);
      campaign->mutable_delivery_counts()->set_completed(1);
      campaign->mutable_delivery_counts()->set_failed(1);
    } else {
      return grpc::Status::OK;
    }
    writer->Write(change);
    return grpc::Status::OK;
  }

 private:
  Recorder& r_;
};

class FakeAnalytics final : public v1::AnalyticsService::Service {
 public:
  explicit FakeAnalytics(Recorder& r) : r_(r) {}
  grpc::Status GetCampaignStats(grpc::ServerContext*, const v1::GetCampaignStatsRequest* request,
                                v1::CampaignStats* response) override {
    std::lock_guard lock(r_.mu);
    r_.stats_name = request->name();
    response->set_name(request->name());
    response->set_sent(200);
    response->set_purchases(3);
    response->set_unlock_rate(0.015);
    response->set_gross_revenue_cents(4500);
    response->set_net_revenue_cents(3600);
    response->set_fee_cents(900);
    v1::AccountStats* account = response->add_accounts();
    account->set_account("tenants/acme/accounts/acct_a");
    account->set_upstream_message_id(77);
    account->set_sent(200);
    account->set_purchases(3);
    account->set_gross_revenue_cents(4500);
    account->set_net_revenue_cents(3600);
    return grpc::Status::OK;
  }
  // Five buyers, fan ids 1-5, at most two a page (fewer than page_size, as a server may); the
  // token is the next buyer's index.
  grpc::Status ListCampaignBuyers(grpc::ServerContext*,
                                  const v1::ListCampaignBuyersRequest* request,
                                  v1::ListCampaignBuyersResponse* response) override {
    std::lock_guard lock(r_.mu);
    r_.page_tokens.push_back(request->page_token());
    r_.page_sizes.push_back(request->page_size());
    const int size = request->page_size() == 0 ? 2 : std::min(request->page_size(), 2);
    const int from = request->page_token().empty() ? 0 : std::stoi(request->page_token());
    for (int i = from; i < 5 && i < from + size; ++i) {
      v1::Buyer* buyer = response->add_buyers();
      buyer->set_account(request->parent().substr(0, request->parent().find("/campaigns/")) +
                         "/accounts/acct_a");
      buyer->set_fan_id(i + 1);
      buyer->set_spent_cents(1500);
    }
    if (from + size < 5) response->set_next_page_token(std::to_string(from + size));
    return grpc::Status::OK;
  }

 private:
  Recorder& r_;
};

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&tenants_);
    builder.RegisterService(&accounts_);
    builder.RegisterService(&media_);
    builder.RegisterService(&campaigns_);
    builder.RegisterService(&analytics_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    server_address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override { server_->Shutdown(); }

  int Run(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    env.emplace("HERALD_SERVER", server_address_);
    env.emplace("HERALD_TENANT", "acme");
    env.emplace("HERALD_API_KEY", "k-test");
    out_.str("");
    err_.str("");
    return RunCli(args,
                  [&](std::string_view name) -> std::optional<std::string> {
                    auto it = env.find(std::string(name));
                    if (it == env.end()) return std::nullopt;
                    return it->second;
                  },
                  out_, err_, {});
  }

  Recorder r_;
  FakeTenants tenants_{r_};
  FakeAccounts accounts_{r_};
  FakeMedia media_{r_};
  FakeCampaigns campaigns_{r_};
  FakeAnalytics analytics_{r_};
  std::unique_ptr<grpc::Server> server_;
  std::string server_address_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CommandsTest, SendsTheKeyAsBearerAndPrintsTheResult) {
  ASSERT_EQ(Run({"tenants", "create", "beta", "--display-name=Beta", "--request-id=r1"}), kExitOk)
      << err_.str();
  EXPECT_EQ(r_.bearer, "Bearer k-test");
  EXPECT_EQ(r_.create_tenant.tenant_id(), "beta");
  EXPECT_EQ(r_.create_tenant.tenant().display_name(), "Beta");
  EXPECT_EQ(r_.create_tenant.request_id(), "r1");
  EXPECT_EQ(out_.str(), "name: tenants/beta\ndisplay_name: Beta\n");

  const std::string key_file = ::testing::TempDir() + "/admin.key";
  std::ofstream(key_file) << "k-from-file\n";
  ASSERT_EQ(Run({"tenants", "create", "gamma", "--key-file=" + key_file}, {{"HERALD_API_KEY", ""}}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(r_.bearer, "Bearer k-from-file");
}

TEST_F(CommandsTest, ErrorsMapToExitCodes) {
  EXPECT_EQ(Run({"tenants", "create", "taken"}), kExitAlreadyExists);
  EXPECT_EQ(err_.str(), "heraldctl: ALREADY_EXISTS: tenants/taken exists\n");
  EXPECT_EQ(Run({"accounts", "get", "acct_x"}), kExitNotFound);
  EXPECT_THAT(err_.str(), HasSubstr("tenants/acme/accounts/acct_x not found"));
  EXPECT_EQ(Run({"teams", "get", "t1"}), kExitRpcError);  // UNIMPLEMENTED in the fake
}

TEST_F(CommandsTest, KeysCreatePrintsTheSecretOnce) {
  ASSERT_EQ(Run({"keys", "create", "acme"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("secret: hk_secret\n"));
  ASSERT_EQ(Run({"keys", "create", "acme", "--json"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"("secret":"hk_secret")"));
}

TEST_F(CommandsTest, TeamKeyComesFromAFileOrTheEnvironment) {
  ASSERT_EQ(Run({"teams", "create", "main", "--upstream-key-env=OF_KEY", "--rate-limit=600"},
                {{"OF_KEY", "ofapi-123\n"}}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(r_.create_team.parent(), "tenants/acme");
  EXPECT_EQ(r_.create_team.team_id(), "main");
  EXPECT_EQ(r_.create_team.team().upstream_api_key(), "ofapi-123");
  EXPECT_EQ(r_.create_team.team().rate_limit_per_minute(), 600);

  const std::string file = ::testing::TempDir() + "/upstream.key";
  std::ofstream(file) << "ofapi-456\n";
  ASSERT_EQ(Run({"teams", "create", "tenants/other/teams/t2", "--upstream-key-file=" + file}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(r_.create_team.parent(), "tenants/other");
  EXPECT_EQ(r_.create_team.team_id(), "t2");
  EXPECT_EQ(r_.create_team.team().upstream_api_key(), "ofapi-456");
}

TEST_F(CommandsTest, ListsFollowEveryPage) {
  ASSERT_EQ(Run({"accounts", "list", "--json"}), kExitOk) << err_.str();
  EXPECT_THAT(r_.page_tokens, ElementsAre("", "p2"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("name":"tenants/acme/accounts/acct_a")"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("name":"tenants/acme/accounts/acct_b")"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("next_page_token":"")"));
  ASSERT_EQ(Run({"accounts", "list"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("\nacct_a "));
  EXPECT_THAT(out_.str(), HasSubstr("\nacct_b "));
}

TEST_F(CommandsTest, APageTokenThatRepeatsStopsTheListing) {
  EXPECT_EQ(Run({"teams", "list"}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("same page token"));
}

TEST_F(CommandsTest, UpdateSendsOnlyTheFlagsGiven) {
  ASSERT_EQ(Run({"accounts", "update", "acct_a", "--pace=30"}), kExitOk) << err_.str();
  EXPECT_EQ(r_.update_account.account().name(), "tenants/acme/accounts/acct_a");
  EXPECT_THAT(r_.update_account.update_mask().paths(), ElementsAre("sends_per_minute"));
  EXPECT_EQ(Run({"accounts", "update", "acct_a"}), kExitUsage);
}

TEST_F(CommandsTest, UploadStreamsMetadataThen64KiBChunks) {
  const std::string file = ::testing::TempDir() + "/teaser.mp4";
  std::string bytes(150 * 1024, 'x');
  bytes[0] = 'a';
  std::ofstream(file, std::ios::binary) << bytes;
  ASSERT_EQ(Run({"media", "upload", file}), kExitOk) << err_.str();
  EXPECT_EQ(r_.upload_metadata.parent(), "tenants/acme");
  EXPECT_EQ(r_.upload_metadata.media_asset().type(), v1::MediaAsset::VIDEO);
  EXPECT_EQ(r_.upload_metadata.media_asset().file_name(), "teaser.mp4");
  EXPECT_EQ(r_.upload_metadata.media_asset().content_type(), "video/mp4");
  EXPECT_THAT(r_.upload_chunks, ElementsAre(65536, 65536, 22528));
  EXPECT_EQ(r_.upload_bytes, bytes);
}

TEST_F(CommandsTest, CampaignCreateFromFileAndFlags) {
  const std::string file = ::testing::TempDir() + "/campaign.yaml";
  std::ofstream(file) << "name: tenants/acme/campaigns/old\nstate: SENDING\n"
                         "content: {text: from file, price_cents: 300, media: [m1]}\n"
                         "targets: [{account: acct_a, user_lists: [fans]}]\n";
  ASSERT_EQ(Run({"campaigns", "create", "--file=" + file, "--price=15.00", "--draft"}), kExitOk)
      << err_.str();
  const v1::CreateCampaignRequest& request = r_.create_campaign;
  EXPECT_EQ(request.parent(), "tenants/acme");
  EXPECT_EQ(request.campaign().content().text(), "from file");
  EXPECT_EQ(request.campaign().content().price_cents(), 1500);
  EXPECT_THAT(request.campaign().content().media(), ElementsAre("tenants/acme/media/m1"));
  EXPECT_TRUE(request.campaign().save_as_draft());
  EXPECT_EQ(request.campaign().name(), "");  // output-only fields are not sent
  EXPECT_EQ(request.campaign().state(), v1::Campaign::STATE_UNSPECIFIED);
  EXPECT_EQ(request.campaign().targets(0).account(), "tenants/acme/accounts/acct_a");
  EXPECT_EQ(Run({"campaigns", "create", "--text=no targets"}), kExitUsage);
}

TEST_F(CommandsTest, CampaignUpdateMaskFromFileAndFlags) {
  const std::string file = ::testing::TempDir() + "/update.json";
  std::ofstream(file) << R"({"name": "tenants/acme/campaigns/zzz", "state": "DRAFT",
      "display_name": "New", "targets": [{"account": "acct_b"}]})";
  ASSERT_EQ(Run({"campaigns", "update", "c1", "--file=" + file, "--text=Hi", "--price-cents=0"}),
            kExitOk)
      << err_.str();
  const v1::UpdateCampaignRequest& request = r_.update_campaign;
  EXPECT_EQ(request.campaign().name(), "tenants/acme/campaigns/c1");
  EXPECT_THAT(request.update_mask().paths(),
              ElementsAre("display_name", "targets", "content.text", "content.price_cents"));
}

TEST_F(CommandsTest, WatchExitsWithTheFinalState) {
  EXPECT_EQ(Run({"campaigns", "watch", "c-done"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "campaign c-done SENDING deliveries 0/2 failed 0 recipients 0/0\n"
            "delivery acct_a COMPLETED recipients 0/0\n"
            "campaign c-done COMPLETED deliveries 2/2 failed 0 recipients 0/0\n");
  EXPECT_EQ(Run({"campaigns", "watch", "c-failed"}), kExitCampaignNotCompleted);
  EXPECT_THAT(err_.str(), HasSubstr("campaign ended PARTIALLY_FAILED"));
  EXPECT_EQ(Run({"campaigns", "watch", "c-cut"}), kExitRpcError);
  EXPECT_EQ(Run({"campaigns", "watch", "c-done", "--json"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"({"delivery":{"name":"")"));
}

TEST_F(CommandsTest, CreateWithWatchFollowsTheNewCampaign) {
  // The fake names every new campaign c1, whose watch stream is cut short.
  EXPECT_EQ(Run({"campaigns", "create", "--text=Hi", "--accounts=acct_a", "--watch"}),
            kExitRpcError);
  EXPECT_THAT(out_.str(), HasSubstr("campaign tenants/acme/campaigns/c1 STATE_UNSPECIFIED\n"
                                    "campaign c1 SENDING"));
  // A draft is only printed.
  EXPECT_EQ(Run({"campaigns", "create", "--text=Hi", "--accounts=acct_a", "--watch", "--draft"}),
            kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("state: DRAFT\n"));
}

TEST_F(CommandsTest, RegisterWebhookPrintsTheTeam) {
  ASSERT_EQ(Run({"teams", "register-webhook", "main"}), kExitOk) << err_.str();
  EXPECT_EQ(r_.register_webhook, "tenants/acme/teams/main");
  EXPECT_EQ(out_.str(), "name: tenants/acme/teams/main\nwebhook_id: wh_new\n");
  ASSERT_EQ(Run({"teams", "register-webhook", "tenants/other/teams/t2", "--json"}), kExitOk);
  EXPECT_EQ(r_.register_webhook, "tenants/other/teams/t2");
  EXPECT_THAT(out_.str(), HasSubstr(R"("webhook_id":"wh_new","webhook_error":"")"));
  EXPECT_EQ(Run({"teams", "register-webhook", "broken"}), kExitRejected);
  EXPECT_EQ(err_.str(), "heraldctl: FAILED_PRECONDITION: no public webhook URL\n");
}

TEST_F(CommandsTest, TeamsShowTheirWebhookEvenWhenNotRegistered) {
  ASSERT_EQ(Run({"teams", "create", "main", "--upstream-key-env=OF_KEY"}, {{"OF_KEY", "k"}}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(out_.str(), "name: tenants/acme/teams/main\nwebhook_id: not registered\n");
}

TEST_F(CommandsTest, StatsOfACampaignByShortOrFullName) {
  ASSERT_EQ(Run({"campaigns", "stats", "c1"}), kExitOk) << err_.str();
  EXPECT_EQ(r_.stats_name, "tenants/acme/campaigns/c1/stats");
  EXPECT_EQ(out_.str(),
            "campaign:     c1\n"
            "recipients:   0\n"
            "sent:         200\n"
            "purchases:    3\n"
            "unlock rate:  1.5%\n"
            "gross:        $45.00\n"
            "net:          $36.00\n"
            "fees:         $9.00\n"
            "updated:      never (no events yet)\n"
            "\n"
            "ACCOUNT  MESSAGE  RECIPIENTS  SENT  PURCHASES  GROSS   NET\n"
            "acct_a   77       0           200   3          $45.00  $36.00\n");
  ASSERT_EQ(Run({"campaigns", "stats", "tenants/other/campaigns/c2"}), kExitOk);
  EXPECT_EQ(r_.stats_name, "tenants/other/campaigns/c2/stats");
  ASSERT_EQ(Run({"campaigns", "stats", "tenants/other/campaigns/c2/stats", "--json"}), kExitOk);
  EXPECT_EQ(r_.stats_name, "tenants/other/campaigns/c2/stats");
  EXPECT_THAT(out_.str(), HasSubstr(R"("gross_revenue_cents":"4500")"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("accounts":[{"account":"tenants/acme/accounts/acct_a")"));
  EXPECT_EQ(out_.str().find('\n'), out_.str().size() - 1);
  EXPECT_EQ(Run({"campaigns", "stats", "c1"}, {{"HERALD_TENANT", ""}}), kExitUsage);
}

TEST_F(CommandsTest, BuyersFollowEveryPage) {
  ASSERT_EQ(Run({"campaigns", "buyers", "c1"}), kExitOk) << err_.str();
  EXPECT_THAT(r_.page_tokens, ElementsAre("", "2", "4"));
  EXPECT_THAT(r_.page_sizes, ElementsAre(0, 0, 0));
  EXPECT_EQ(out_.str(),
            "ACCOUNT  FAN ID  SPENT   FIRST PURCHASE\n"
            "acct_a   1       $15.00\n"
            "acct_a   2       $15.00\n"
            "acct_a   3       $15.00\n"
            "acct_a   4       $15.00\n"
            "acct_a   5       $15.00\n");
  EXPECT_EQ(err_.str(), "");
  ASSERT_EQ(Run({"campaigns", "buyers", "c1", "--json"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"({"buyers":[{"account":"tenants/acme/accounts/acct_a")"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("fan_id":"5")"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("next_page_token":"")"));
}

TEST_F(CommandsTest, BuyersStopAtTheLimit) {
  // The second page passes the limit: cut there, with a notice that there are more.
  ASSERT_EQ(Run({"campaigns", "buyers", "c1", "--limit=3"}), kExitOk) << err_.str();
  EXPECT_THAT(r_.page_tokens, ElementsAre("", "2"));
  EXPECT_THAT(r_.page_sizes, ElementsAre(3, 3));  // the same on every page
  EXPECT_THAT(out_.str(), HasSubstr("\nacct_a   3 "));
  EXPECT_THAT(out_.str(), Not(HasSubstr("\nacct_a   4 ")));
  EXPECT_EQ(err_.str(), "heraldctl: showing the first 3 buyers; there are more (raise --limit)\n");
  // Reached exactly with a page left.
  r_.page_tokens.clear();
  ASSERT_EQ(Run({"campaigns", "buyers", "c1", "--limit=4"}), kExitOk);
  EXPECT_THAT(r_.page_tokens, ElementsAre("", "2"));
  EXPECT_EQ(err_.str(), "heraldctl: showing the first 4 buyers; there are more (raise --limit)\n");
  // Every buyer fits: no notice.
  r_.page_tokens.clear();
  ASSERT_EQ(Run({"campaigns", "buyers", "c1", "--limit=5"}), kExitOk);
  EXPECT_THAT(r_.page_tokens, ElementsAre("", "2", "4"));
  EXPECT_EQ(err_.str(), "");
  // Pages of at most 1000; JSON holds only the buyers shown.
  r_.page_sizes.clear();
  ASSERT_EQ(Run({"campaigns", "buyers", "c1", "--limit=5000"}), kExitOk);
  EXPECT_THAT(r_.page_sizes, ElementsAre(1000, 1000, 1000));
  ASSERT_EQ(Run({"campaigns", "buyers", "c1", "--limit=1", "--json"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"("fan_id":"1")"));
  EXPECT_THAT(out_.str(), Not(HasSubstr(R"("fan_id":"2")")));
  EXPECT_THAT(out_.str(), HasSubstr(R"("next_page_token":"")"));
  EXPECT_EQ(Run({"campaigns", "buyers", "c1", "--limit=0"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--limit: must be at least 1"));
  EXPECT_EQ(Run({"campaigns", "buyers", "c1", "--limit=many"}), kExitUsage);
}

}  // namespace
}  // namespace herald::heraldctl
