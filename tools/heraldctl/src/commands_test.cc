// The commands end to end against in-process fake services: what each command sends (requests,
// update masks, credentials, upload chunks), how it pages, prints and exits. No Herald needed.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <absl/time/clock.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <herald/common/grpc_status.h>
#include <herald/common/strings.h>
#include <herald/heraldctl/cli.h>
#include <herald/heraldctl/exit_codes.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/events.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

#include "interrupt.h"

namespace herald::heraldctl {
namespace {

// `name` in a temporary directory of this process's own (test binaries of several builds may
// run at once).
std::string TempFile(std::string_view name) {
  const std::string dir = StrCat(::testing::TempDir(), "/heraldctl-test-", getpid());
  std::filesystem::create_directories(dir);
  return StrCat(dir, "/", name);
}

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

// A streaming fake's end when the client is expected to cancel: CANCELLED once it does, or
// DEADLINE_EXCEEDED after 10 s if it never does (the server side has no cancellation callback
// in the sync API, so it checks every millisecond).
grpc::Status UntilCancelled(grpc::ServerContext& context) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!context.IsCancelled()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the client never cancelled");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return grpc::Status::CANCELLED;
}

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
  v1::TopCampaignsRequest top_campaigns;
  std::string overview_name;
  v1::SubscribeRequest subscribe;
  v1::UpdateAccountRequest update_account;
  v1::CreateCampaignRequest create_campaign;
  v1::UpdateCampaignRequest update_campaign;
  v1::WatchCampaignRequest watch_campaign;
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
    // A retried request id gets the key without its secret, as the server answers.
    if (request->request_id() != "retried") response->set_secret("hk_secret");
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
  // One account created, two known, one of them under another team, and one id not imported.
  grpc::Status SyncAccounts(grpc::ServerContext*, const v1::SyncAccountsRequest* request,
                            v1::SyncAccountsResponse* response) override {
    v1::Account* created = response->add_created();
    created->set_name("tenants/acme/accounts/acct_new");
    created->set_team(request->team());
    response->set_unchanged(1);
    v1::Account* elsewhere = response->add_in_other_teams();
    elsewhere->set_name("tenants/acme/accounts/acct_old");
    elsewhere->set_team("tenants/acme/teams/first");
    response->add_unusable_ids("acct_not-an-id");
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
  // c-partial: cancelled with one account's message still out; any other: all undone.
  grpc::Status CancelCampaign(grpc::ServerContext*, const v1::CancelCampaignRequest* request,
                              v1::CancelCampaignResponse* response) override {
    response->mutable_campaign()->set_name(request->name());
    response->mutable_campaign()->set_state(v1::Campaign::CANCELLED);
    if (request->name().ends_with("/c-partial")) {
      v1::Delivery* d = response->add_not_undone();
      d->set_name(request->name() + "/deliveries/acct_a");
      d->set_account("tenants/acme/accounts/acct_a");
      d->set_state(v1::Delivery::COMPLETED);
      d->set_cancel_outcome("too_late");
    }
    return grpc::Status::OK;
  }
  // c-done completes; c-failed ends PARTIALLY_FAILED; c-revenue completes with a purchase before
  // and one after, then ends, or with follow_revenue stays open; c-selling sells while SENDING
  // and stays open; anything else is cut short. Open streams last until the client cancels them
  // (DEADLINE_EXCEEDED if it never does).
  grpc::Status WatchCampaign(grpc::ServerContext* context, const v1::WatchCampaignRequest* request,
                             grpc::ServerWriter<v1::WatchCampaignResponse>* writer) override {
    {
      std::lock_guard lock(r_.mu);
      r_.watch_campaign = *request;
    }
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
    if (request->name().ends_with("/c-revenue")) {
      writer->Write(Sales(request->name(), 1));
      campaign->set_state(v1::Campaign::COMPLETED);
      campaign->mutable_delivery_counts()->set_completed(2);
      writer->Write(change);
      writer->Write(Sales(request->name(), 2));
      if (!request->follow_revenue()) return grpc::Status::OK;
      return UntilCancelled(*context);
    }
    if (request->name().ends_with("/c-selling")) {
      writer->Write(Sales(request->name(), 1));
      return UntilCancelled(*context);
    }
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
  // The figures after `purchases` sales at $15.00 ($12.00 net).
  static v1::WatchCampaignResponse Sales(const std::string& campaign, int purchases) {
    v1::WatchCampaignResponse change;
    v1::CampaignStats* stats = change.mutable_stats();
    stats->set_name(campaign + "/stats");
    stats->set_sent(40);
    stats->set_purchases(purchases);
    stats->set_gross_revenue_cents(1500 * purchases);
    stats->set_net_revenue_cents(1200 * purchases);
    stats->set_fee_cents(300 * purchases);
    return change;
  }

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
    response->set_viewed(120);
    response->set_view_rate(0.6);
    response->set_purchases(3);
    response->set_unlock_rate(0.015);
    response->set_gross_revenue_cents(4500);
    response->set_net_revenue_cents(3600);
    response->set_fee_cents(900);
    v1::AccountStats* account = response->add_accounts();
    account->set_account("tenants/acme/accounts/acct_a");
    account->set_upstream_message_id(77);
    account->set_sent(200);
    account->set_viewed(120);
    account->set_purchases(3);
    account->set_unlock_rate(0.015);
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
  // Two campaigns, best first.
  grpc::Status TopCampaigns(grpc::ServerContext*, const v1::TopCampaignsRequest* request,
                            v1::TopCampaignsResponse* response) override {
    std::lock_guard lock(r_.mu);
    r_.top_campaigns = *request;
    for (const auto& [id, gross] : {std::pair{"c1", 4500}, std::pair{"c2", 1500}}) {
      v1::RankedCampaign* campaign = response->add_campaigns();
      campaign->set_campaign(request->parent() + "/campaigns/" + id);
      campaign->set_display_name(std::string("Drop ") + id);
      campaign->mutable_create_time()->set_seconds(1777665600);
      campaign->mutable_stats()->set_sent(100);
      campaign->mutable_stats()->set_purchases(gross / 1500);
      campaign->mutable_stats()->set_unlock_rate(gross / 1500 / 100.0);
      campaign->mutable_stats()->set_gross_revenue_cents(gross);
      campaign->mutable_stats()->set_net_revenue_cents(gross * 4 / 5);
    }
    return grpc::Status::OK;
  }
  grpc::Status GetAccountOverview(grpc::ServerContext*,
                                  const v1::GetAccountOverviewRequest* request,
                                  v1::AccountOverview* response) override {
    std::lock_guard lock(r_.mu);
    r_.overview_name = request->name();
    if (request->name().ends_with("/acct_x")) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, request->name() + " not found");
    }
    response->set_name(request->name());
    response->set_sent(1980);
    response->set_purchases(118);
    response->set_gross_revenue_cents(177040);
    response->set_net_revenue_cents(141632);
    response->set_fee_cents(35408);
    response->set_reconciled_purchases(2);
    response->set_new_subscribers(31);
    response->set_known_fans(4210);
    return grpc::Status::OK;
  }

 private:
  Recorder& r_;
};

// Three events (cursors 100-1 to 100-3), then by the request's cursor: "stale" is OUT_OF_RANGE
// before any event; "slow" is cut off with RESOURCE_EXHAUSTED after them; "end" ends the stream;
// "interrupt" raises SIGINT in this process, as Ctrl-C would; otherwise the stream stays open
// until the client cancels it (DEADLINE_EXCEEDED if it never does).
class FakeEvents final : public v1::EventService::Service {
 public:
  explicit FakeEvents(Recorder& r) : r_(r) {}
  grpc::Status Subscribe(grpc::ServerContext* context, const v1::SubscribeRequest* request,
                         grpc::ServerWriter<v1::Event>* writer) override {
    {
      std::lock_guard lock(r_.mu);
      r_.subscribe = *request;
    }
    const std::string& cursor = request->cursor();
    if (cursor == "stale") {
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "cursor stale is older than kept");
    }
    if (cursor == "quiet" && request->progress()) {
      // Only events the filters pass over: progress, then the stream ends as in a deploy.
      v1::Event progress;
      progress.set_cursor("100-0");
      writer->Write(progress);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
    }
    for (int i = 1; i <= 3; ++i) {
      v1::Event event;
      event.set_cursor("100-" + std::to_string(i));
      event.set_event_type(i == 1 ? "messages.sent" : "transactions.new");
      event.set_account(request->parent() + "/accounts/acct_a");
      event.set_upstream_message_id(77);
      event.set_fan_id(i == 1 ? 0 : 4240 + i);
      event.set_price_cents(i == 1 ? 1500 : 0);
      event.set_amount_cents(i == 1 ? 0 : 1500);
      event.mutable_apply_time()->set_seconds(1777665600 + i);
      writer->Write(event);
    }
    if (cursor == "slow") {
      // As Herald cuts a subscriber off: with a retry delay (it resumes from its cursor).
      return ToGrpcStatus(WithRetryInfo(absl::ResourceExhaustedError("subscriber too far behind"),
                                        absl::Seconds(1)));
    }
    if (cursor == "end") return grpc::Status::OK;
    if (cursor == "interrupt") std::raise(SIGINT);
    return UntilCancelled(*context);
  }

 private:
  Recorder& r_;
};

// Output that raises SIGINT in this process, as Ctrl-C would, once `trigger` has been written:
// the interrupt comes right after the command has shown what the test waits for.
class InterruptingOutput final : public std::streambuf {
 public:
  explicit InterruptingOutput(std::string trigger) : trigger_(std::move(trigger)) {}
  const std::string& text() const { return text_; }

 protected:
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      const char ch = traits_type::to_char_type(c);
      Append(std::string_view(&ch, 1));
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    Append(std::string_view(s, static_cast<size_t>(n)));
    return n;
  }

 private:
  void Append(std::string_view s) {
    text_ += s;
    if (!raised_ && text_.find(trigger_) != std::string::npos) {
      raised_ = true;
      std::raise(SIGINT);
    }
  }

  const std::string trigger_;
  std::string text_;
  bool raised_ = false;
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
    builder.RegisterService(&events_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    server_address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override { server_->Shutdown(); }

  int Run(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    out_.str("");
    return RunTo(out_, std::move(args), std::move(env));
  }

  // Run, with Ctrl-C pressed once the output holds `trigger`; out_ gets the output.
  int RunInterruptedAt(std::string trigger, std::vector<std::string> args) {
    InterruptingOutput buffer(std::move(trigger));
    std::ostream out(&buffer);
    const int code = RunTo(out, std::move(args), {});
    out_.str(buffer.text());
    return code;
  }

  int RunTo(std::ostream& out, std::vector<std::string> args,
            std::map<std::string, std::string> env) {
    env.emplace("HERALD_SERVER", server_address_);
    env.emplace("HERALD_TENANT", "acme");
    env.emplace("HERALD_API_KEY", "k-test");
    err_.str("");
    return RunCli(args,
                  [&](std::string_view name) -> std::optional<std::string> {
                    auto it = env.find(std::string(name));
                    if (it == env.end()) return std::nullopt;
                    return it->second;
                  },
                  out, err_, {});
  }

  Recorder r_;
  FakeTenants tenants_{r_};
  FakeAccounts accounts_{r_};
  FakeMedia media_{r_};
  FakeCampaigns campaigns_{r_};
  FakeAnalytics analytics_{r_};
  FakeEvents events_{r_};
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

  const std::string key_file = TempFile("admin.key");
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

// Output where nothing can be written, as on a full disk.
struct FullDisk : std::streambuf {
  int overflow(int) override { return traits_type::eof(); }
  std::streamsize xsputn(const char*, std::streamsize) override { return 0; }
};

// Output that could not be written (a full disk under `> file`) is an error, never success.
TEST_F(CommandsTest, OutputThatCannotBeWrittenIsAnError) {
  FullDisk full;
  std::ostream out(&full);
  EXPECT_EQ(RunTo(out, {"tenants", "create", "beta", "--json"}, {}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("the output could not be written"));
  EXPECT_EQ(r_.create_tenant.tenant_id(), "beta");  // the call itself was made
  // A failure keeps its own code.
  std::ostream failing(&full);
  EXPECT_EQ(RunTo(failing, {"accounts", "get", "acct_x"}, {}), kExitNotFound);
}

// A stream whose output cannot be written stops at once rather than read on and drop what it
// reads (the fake keeps the stream open until the client cancels it).
TEST_F(CommandsTest, AStreamWhoseOutputCannotBeWrittenStops) {
  FullDisk full;
  std::ostream out(&full);
  EXPECT_EQ(RunTo(out, {"events", "tail", "--json"}, {}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("the output could not be written"));
  EXPECT_THAT(err_.str(), Not(HasSubstr("never cancelled")));
}

TEST_F(CommandsTest, SyncSaysWhichAccountsAreUnderAnotherTeam) {
  ASSERT_EQ(Run({"accounts", "sync", "--team=second"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("acct_new"));
  EXPECT_THAT(out_.str(), HasSubstr("1 created, 1 unchanged, 1 under another team (delete them "
                                    "there and sync again to move them): acct_old (first), 1 not "
                                    "imported (the upstream listed ids that are not account ids): "
                                    "acct_not-an-id\n"));
}

TEST_F(CommandsTest, KeysCreatePrintsTheSecretOnce) {
  ASSERT_EQ(Run({"keys", "create", "acme"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("secret: hk_secret\n"));
  ASSERT_EQ(Run({"keys", "create", "acme", "--json"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"("secret":"hk_secret")"));
  // A retry has no secret to give: a script piping it into a key file must not go on.
  for (const bool json : {false, true}) {
    out_.str("");
    err_.str("");
    std::vector<std::string> args = {"keys", "create", "acme", "--request-id=retried"};
    if (json) args.push_back("--json");
    EXPECT_EQ(Run(args), kExitAlreadyExists) << json;
    EXPECT_THAT(out_.str(), HasSubstr("apiKeys/k1"));
    EXPECT_THAT(err_.str(), HasSubstr("cannot be shown again"));
  }
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

  const std::string file = TempFile("upstream.key");
  std::ofstream(file) << "ofapi-456\n";
  ASSERT_EQ(Run({"teams", "create", "tenants/other/teams/t2", "--upstream-key-file=" + file}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(r_.create_team.parent(), "tenants/other");
  EXPECT_EQ(r_.create_team.team_id(), "t2");
  EXPECT_EQ(r_.create_team.team().upstream_api_key(), "ofapi-456");
  EXPECT_TRUE(r_.create_team.team().webhook_signing_secret().empty());

  ASSERT_EQ(Run({"teams", "create", "main", "--upstream-key-env=OF_KEY",
                 "--webhook-secret-env=WH_SECRET", "--burst=20"},
                {{"OF_KEY", "ofapi-123"}, {"WH_SECRET", "whsec-0123456789abcdef\n"}}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(r_.create_team.team().webhook_signing_secret(), "whsec-0123456789abcdef");
  EXPECT_EQ(r_.create_team.team().burst(), 20);
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
  const std::string file = TempFile("teaser.mp4");
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

// --type over the extension: the extension's content type would contradict it, so none is said.
TEST_F(CommandsTest, AnUploadsTypeWinsOverItsExtensionsContentType) {
  const std::string file = TempFile("voice.mp4");
  std::ofstream(file, std::ios::binary) << "bytes";
  ASSERT_EQ(Run({"media", "upload", file, "--type=audio"}), kExitOk) << err_.str();
  EXPECT_EQ(r_.upload_metadata.media_asset().type(), v1::MediaAsset::AUDIO);
  EXPECT_EQ(r_.upload_metadata.media_asset().content_type(), "application/octet-stream");
}

TEST_F(CommandsTest, CampaignCreateFromFileAndFlags) {
  const std::string file = TempFile("campaign.yaml");
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

// A draft saved with `campaigns get --json` and fed back is a draft again (its save_as_draft is
// input-only, printed false); --draft=false sends it.
TEST_F(CommandsTest, ADraftFedBackStaysADraft) {
  const std::string file = TempFile("draft.json");
  std::ofstream(file) << R"({"name": "tenants/acme/campaigns/d1", "state": "DRAFT",
      "save_as_draft": false, "content": {"text": "later"},
      "targets": [{"account": "acct_a", "user_lists": ["fans"]}]})";
  ASSERT_EQ(Run({"campaigns", "create", "--file=" + file}), kExitOk) << err_.str();
  EXPECT_TRUE(r_.create_campaign.campaign().save_as_draft());
  ASSERT_EQ(Run({"campaigns", "create", "--file=" + file, "--draft=false"}), kExitOk) << err_.str();
  EXPECT_FALSE(r_.create_campaign.campaign().save_as_draft());
}

// --all-accounts lists the accounts only once the rest of the command is found good.
TEST_F(CommandsTest, AllAccountsChecksTheCommandBeforeListingAccounts) {
  EXPECT_EQ(Run({"campaigns", "create", "--text=x", "--all-accounts", "--price=abc"}), kExitUsage);
  EXPECT_EQ(Run({"campaigns", "create", "--all-accounts", "--file=/nonexistent/c.yaml"}),
            kExitUsage);
  EXPECT_EQ(Run({"campaigns", "update", "c1", "--all-accounts", "--send-at=yesterday"}),
            kExitUsage);
  {
    std::lock_guard lock(r_.mu);
    EXPECT_TRUE(r_.page_tokens.empty()) << "ListAccounts was called";
  }
  ASSERT_EQ(Run({"campaigns", "create", "--text=x", "--all-accounts"}), kExitOk) << err_.str();
  ASSERT_EQ(r_.create_campaign.campaign().targets_size(), 2);
  EXPECT_EQ(r_.create_campaign.campaign().targets(1).account(), "tenants/acme/accounts/acct_b");
}

// With --all-accounts each input is still read once: a campaign file on stdin arrives whole.
TEST_F(CommandsTest, AllAccountsReadsAFileOnStdinOnce) {
  std::istringstream in(
      "display_name: from stdin\ncontent: {text: hello, price_cents: 1500, "
      "media: [m1]}\n");
  std::streambuf* const cin = std::cin.rdbuf(in.rdbuf());
  const int code = Run({"campaigns", "create", "--all-accounts", "--file=-", "--lists=vips"});
  std::cin.rdbuf(cin);
  ASSERT_EQ(code, kExitOk) << err_.str();
  const v1::Campaign& sent = r_.create_campaign.campaign();
  EXPECT_EQ(sent.display_name(), "from stdin");
  EXPECT_EQ(sent.content().text(), "hello");
  EXPECT_EQ(sent.content().price_cents(), 1500);
  ASSERT_EQ(sent.targets_size(), 2);
  EXPECT_EQ(sent.targets(0).account(), "tenants/acme/accounts/acct_a");
  EXPECT_THAT(sent.targets(1).user_lists(), ElementsAre("vips"));
}

TEST_F(CommandsTest, CampaignUpdateMaskFromFileAndFlags) {
  const std::string file = TempFile("update.json");
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

TEST_F(CommandsTest, CancelSaysInItsExitCodeWhenAMessageWasNotUndone) {
  EXPECT_EQ(Run({"campaigns", "cancel", "c-all"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("CANCELLED"));
  EXPECT_THAT(out_.str(), Not(HasSubstr("Not undone")));
  EXPECT_EQ(Run({"campaigns", "cancel", "c-partial"}), kExitCampaignOutcome) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("Not undone on the upstream"));
  EXPECT_THAT(out_.str(), HasSubstr("acct_a"));
  EXPECT_EQ(Run({"campaigns", "cancel", "c-partial", "--json"}), kExitCampaignOutcome);
  EXPECT_THAT(out_.str(), HasSubstr("not_undone"));
}

TEST_F(CommandsTest, WatchExitsWithTheFinalState) {
  EXPECT_EQ(Run({"campaigns", "watch", "c-done"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "campaign c-done SENDING deliveries 0/2 failed 0 recipients 0/0\n"
            "delivery acct_a COMPLETED recipients 0/0\n"
            "campaign c-done COMPLETED deliveries 2/2 failed 0 recipients 0/0\n");
  EXPECT_EQ(Run({"campaigns", "watch", "c-failed"}), kExitCampaignOutcome);
  EXPECT_THAT(err_.str(), HasSubstr("campaign ended PARTIALLY_FAILED"));
  EXPECT_EQ(Run({"campaigns", "watch", "c-cut"}), kExitRpcError);
  EXPECT_EQ(Run({"campaigns", "watch", "c-done", "--json"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"({"delivery":{"name":"")"));
}

TEST_F(CommandsTest, WatchPrintsRevenueAsItChanges) {
  ASSERT_EQ(Run({"campaigns", "watch", "c-revenue"}), kExitOk) << err_.str();
  EXPECT_FALSE(r_.watch_campaign.follow_revenue());
  EXPECT_EQ(out_.str(),
            "campaign c-revenue SENDING deliveries 0/2 failed 0 recipients 0/0\n"
            "delivery acct_a COMPLETED recipients 0/0\n"
            "revenue: 1 purchases, gross $15.00, net $12.00\n"
            "campaign c-revenue COMPLETED deliveries 2/2 failed 0 recipients 0/0\n"
            "revenue: 2 purchases, gross $30.00, net $24.00\n");
  ASSERT_EQ(Run({"campaigns", "watch", "c-revenue", "--json"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(),
              HasSubstr(R"({"stats":{"name":"tenants/acme/campaigns/c-revenue/stats",)"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("gross_revenue_cents":"3000")"));
}

TEST_F(CommandsTest, WatchWithRevenueFollowsPastTheFinalStateUntilInterrupted) {
  struct sigaction before {};
  ASSERT_EQ(sigaction(SIGINT, nullptr, &before), 0);
  // The stream stays open after COMPLETED; Ctrl-C once the second sale is shown ends it, and the
  // final state decides the exit code.
  ASSERT_EQ(
      RunInterruptedAt("revenue: 2 purchases", {"campaigns", "watch", "c-revenue", "--revenue"}),
      kExitOk)
      << err_.str();
  EXPECT_TRUE(r_.watch_campaign.follow_revenue());
  EXPECT_EQ(r_.watch_campaign.name(), "tenants/acme/campaigns/c-revenue");
  EXPECT_EQ(err_.str(), "");
  EXPECT_THAT(out_.str(), HasSubstr("campaign c-revenue COMPLETED deliveries 2/2 failed 0 "
                                    "recipients 0/0\nrevenue: 2 purchases, gross $30.00, net "
                                    "$24.00\n"));
  // Interrupted before the campaign is final: the watch did not see it end.
  EXPECT_EQ(
      RunInterruptedAt("revenue: 1 purchases", {"campaigns", "watch", "c-selling", "--revenue"}),
      kExitRpcError);
  EXPECT_EQ(err_.str(), "heraldctl: interrupted before the campaign was final\n");
  // The handler the test started with is back (SIG_DFL, or SIG_IGN when run in the background).
  struct sigaction current {};
  ASSERT_EQ(sigaction(SIGINT, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, before.sa_handler);
}

TEST_F(CommandsTest, VersionPrintsTheReleaseWithoutCallingTheServer) {
  for (const char* flag : {"--version", "version"}) {
    ASSERT_EQ(Run({flag}), kExitOk) << flag;
    EXPECT_THAT(out_.str(), MatchesRegex("heraldctl [0-9]+\\.[0-9]+\\.[0-9]+\n")) << flag;
    out_.str("");
  }
  EXPECT_EQ(r_.bearer, "");  // no call reached the server
}

TEST_F(CommandsTest, WatchHelpDescribesRevenue) {
  ASSERT_EQ(Run({"campaigns", "watch", "--help"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("--revenue"));
  EXPECT_THAT(out_.str(), HasSubstr("until Ctrl-C"));
  EXPECT_EQ(Run({"campaigns", "watch", "c-revenue", "--revenue=maybe"}), kExitUsage);
}

TEST_F(CommandsTest, CreateWithWatchFollowsTheNewCampaign) {
  // The fake names every new campaign c1, whose watch stream is cut short.
  EXPECT_EQ(Run({"campaigns", "create", "--text=Hi", "--accounts=acct_a", "--watch"}),
            kExitRpcError);
  EXPECT_THAT(out_.str(), HasSubstr("campaign tenants/acme/campaigns/c1 STATE_UNSPECIFIED\n"
                                    "campaign c1 SENDING"));
  // --json: one WatchCampaignResponse per line, the created campaign's first.
  EXPECT_EQ(Run({"campaigns", "create", "--text=Hi", "--accounts=acct_a", "--watch", "--json"}),
            kExitRpcError);
  std::istringstream lines(out_.str());
  std::string first;
  ASSERT_TRUE(std::getline(lines, first));
  EXPECT_THAT(first, HasSubstr(R"({"campaign":{"name":"tenants/acme/campaigns/c1")")) << first;
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
            "viewed:       120 (60.0%)\n"
            "purchases:    3\n"
            "unlock rate:  1.5%\n"
            "gross:        $45.00\n"
            "net:          $36.00\n"
            "fees:         $9.00\n"
            "updated:      never (no events yet)\n"
            "\n"
            "ACCOUNT  MESSAGE  RECIPIENTS  SENT  VIEWED  PURCHASES  UNLOCK RATE  GROSS   NET\n"
            "acct_a   77       0           200   120     3          1.5%         $45.00  $36.00\n");
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

TEST_F(CommandsTest, TopCampaignsInTheTenantOverARange) {
  ASSERT_EQ(Run({"campaigns", "top", "--start=2026-04-01T00:00:00Z", "--end=2026-05-01T00:00:00Z",
                 "--limit=5"}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(r_.top_campaigns.parent(), "tenants/acme");
  EXPECT_EQ(r_.top_campaigns.start_time().seconds(), 1775001600);
  EXPECT_EQ(r_.top_campaigns.end_time().seconds(), 1777593600);
  EXPECT_EQ(r_.top_campaigns.limit(), 5);
  EXPECT_EQ(
      out_.str(),
      "RANK  ID  DISPLAY NAME  CREATED               PURCHASES  UNLOCK RATE  GROSS   NET\n"
      "1     c1  Drop c1       2026-05-01T20:00:00Z  3          3.0%         $45.00  $36.00\n"
      "2     c2  Drop c2       2026-05-01T20:00:00Z  1          1.0%         $15.00  $12.00\n");
  ASSERT_EQ(Run({"campaigns", "top", "--json"}), kExitOk);
  EXPECT_FALSE(r_.top_campaigns.has_start_time());  // the server's defaults
  EXPECT_FALSE(r_.top_campaigns.has_end_time());
  EXPECT_EQ(r_.top_campaigns.limit(), 0);
  EXPECT_THAT(out_.str(), HasSubstr(R"({"campaigns":[{"campaign":"tenants/acme/campaigns/c1")"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("gross_revenue_cents":"4500")"));
  EXPECT_EQ(out_.str().find('\n'), out_.str().size() - 1);
}

TEST_F(CommandsTest, TopCampaignsSinceAPeriod) {
  // Before --end when given.
  ASSERT_EQ(Run({"campaigns", "top", "--since=7d", "--end=2026-05-08T00:00:00Z"}), kExitOk)
      << err_.str();
  EXPECT_EQ(r_.top_campaigns.start_time().seconds(), 1777593600);  // 2026-05-01
  EXPECT_EQ(r_.top_campaigns.end_time().seconds(), 1778198400);
  // Before now otherwise, with the end left to the server.
  const int64_t before = absl::ToUnixSeconds(absl::Now());
  ASSERT_EQ(Run({"campaigns", "top", "--since=12h"}), kExitOk) << err_.str();
  const int64_t after = absl::ToUnixSeconds(absl::Now());
  EXPECT_GE(r_.top_campaigns.start_time().seconds(), before - 12 * 3600);
  EXPECT_LE(r_.top_campaigns.start_time().seconds(), after - 12 * 3600);
  EXPECT_FALSE(r_.top_campaigns.has_end_time());
}

TEST_F(CommandsTest, TopCampaignsUsageErrors) {
  EXPECT_EQ(Run({"campaigns", "top", "--since=7d", "--start=2026-04-01T00:00:00Z"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--since or --start"));
  EXPECT_EQ(Run({"campaigns", "top", "--start=2026-05-01T00:00:00Z", "--end=2026-04-01T00:00:00Z"}),
            kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--end must be after"));
  EXPECT_EQ(Run({"campaigns", "top", "--since=soon"}), kExitUsage);
  EXPECT_EQ(Run({"campaigns", "top", "--start=yesterday"}), kExitUsage);
  EXPECT_EQ(Run({"campaigns", "top", "--limit=0"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--limit: must be between 1 and 100"));
  EXPECT_EQ(Run({"campaigns", "top", "--limit=101"}), kExitUsage);
  EXPECT_EQ(Run({"campaigns", "top"}, {{"HERALD_TENANT", ""}}), kExitUsage);
}

TEST_F(CommandsTest, AccountOverview) {
  ASSERT_EQ(Run({"accounts", "overview", "acct_a"}), kExitOk) << err_.str();
  EXPECT_EQ(r_.overview_name, "tenants/acme/accounts/acct_a");
  EXPECT_EQ(out_.str(),
            "account:               acct_a\n"
            "sent:                  1980\n"
            "purchases:             118\n"
            "gross:                 $1770.40\n"
            "net:                   $1416.32\n"
            "fees:                  $354.08\n"
            "reconciled purchases:  2\n"
            "new subscribers:       31\n"
            "known fans:            4210\n");
  ASSERT_EQ(Run({"accounts", "overview", "tenants/other/accounts/acct_b", "--json"}), kExitOk);
  EXPECT_EQ(r_.overview_name, "tenants/other/accounts/acct_b");
  EXPECT_THAT(out_.str(), HasSubstr(R"({"name":"tenants/other/accounts/acct_b","sent":"1980")"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("known_fans":"4210")"));
  EXPECT_EQ(Run({"accounts", "overview", "acct_x"}), kExitNotFound);
  EXPECT_EQ(err_.str(), "heraldctl: NOT_FOUND: tenants/acme/accounts/acct_x not found\n");
}

TEST_F(CommandsTest, EventsTailStopsAfterTheLimit) {
  ASSERT_EQ(Run({"events", "tail", "--limit=2", "--type=transactions.new",
                 "--type=messages.sent,messages.ppv.unlocked", "--account=acct_a",
                 "--account=tenants/other/accounts/acct_b"}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(r_.subscribe.parent(), "tenants/acme");
  EXPECT_THAT(r_.subscribe.event_types(),
              ElementsAre("transactions.new", "messages.sent", "messages.ppv.unlocked"));
  EXPECT_THAT(r_.subscribe.accounts(),
              ElementsAre("tenants/acme/accounts/acct_a", "tenants/other/accounts/acct_b"));
  EXPECT_EQ(r_.subscribe.cursor(), "");
  EXPECT_EQ(
      out_.str(),
      "2026-05-01T20:00:01Z messages.sent acct_a message 77 cursor 100-1\n"
      "2026-05-01T20:00:02Z transactions.new acct_a message 77 fan 4242 $15.00 cursor 100-2\n");
  EXPECT_EQ(err_.str(), "");
}

// Progress through events the filters passed over is not printed, and a reopened stream goes on
// after it.
TEST_F(CommandsTest, EventsTailResumesAfterTheEventsItsFiltersPassedOver) {
  ASSERT_EQ(Run({"events", "tail", "--from=quiet", "--type=transactions.new", "--limit=1"}),
            kExitOk)
      << err_.str();
  EXPECT_TRUE(r_.subscribe.progress());
  EXPECT_EQ(r_.subscribe.cursor(), "100-0");  // the reopened stream's
  EXPECT_EQ(out_.str(), "2026-05-01T20:00:01Z messages.sent acct_a message 77 cursor 100-1\n");
  EXPECT_THAT(err_.str(), HasSubstr("the stream ended (UNAVAILABLE"));
}

TEST_F(CommandsTest, EventsTailFromOldestOrACursorAsJsonLines) {
  ASSERT_EQ(Run({"events", "tail", "--from=oldest", "--limit=2", "--json"}), kExitOk) << err_.str();
  EXPECT_EQ(r_.subscribe.cursor(), "0");
  EXPECT_TRUE(r_.subscribe.event_types().empty());
  EXPECT_TRUE(r_.subscribe.accounts().empty());
  const std::string out = out_.str();
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 2);
  EXPECT_EQ(out.rfind(R"({"cursor":"100-1","event_type":"messages.sent")", 0), 0u) << out;
  EXPECT_THAT(out, HasSubstr("\n{\"cursor\":\"100-2\""));
  EXPECT_THAT(out, HasSubstr(R"("amount_cents":"1500")"));
  ASSERT_EQ(Run({"events", "tail", "--from=1714594991000-0", "--limit=1"}), kExitOk);
  EXPECT_EQ(r_.subscribe.cursor(), "1714594991000-0");
  ASSERT_EQ(Run({"events", "tail", "--from=now", "--limit=1"}), kExitOk);
  EXPECT_EQ(r_.subscribe.cursor(), "");
}

TEST_F(CommandsTest, EventsTailUntilTheStreamEnds) {
  // The server ends the stream: every event printed, exit 0.
  ASSERT_EQ(Run({"events", "tail", "--from=end"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr(" cursor 100-3\n"));
  // Cut off after the events: they are printed, then the error and its exit code.
  EXPECT_EQ(Run({"events", "tail", "--from=slow"}), kExitUnavailable);
  EXPECT_THAT(out_.str(), HasSubstr(" cursor 100-3\n"));
  EXPECT_EQ(err_.str(), "heraldctl: RESOURCE_EXHAUSTED: subscriber too far behind (retry in 1s)\n");
  EXPECT_EQ(Run({"events", "tail", "--from=stale"}), kExitRejected);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "heraldctl: OUT_OF_RANGE: cursor stale is older than kept\n");
}

TEST_F(CommandsTest, EventsTailStopsOnInterrupt) {
  // The fake raises SIGINT right after writing its events: the call is cancelled, whether or
  // not they were read by then, and the command ends quietly with 0.
  ASSERT_EQ(Run({"events", "tail", "--from=interrupt"}), kExitOk) << err_.str();
  EXPECT_EQ(err_.str(), "");
  const std::string all =
      "2026-05-01T20:00:01Z messages.sent acct_a message 77 cursor 100-1\n"
      "2026-05-01T20:00:02Z transactions.new acct_a message 77 fan 4242 $15.00 cursor 100-2\n"
      "2026-05-01T20:00:03Z transactions.new acct_a message 77 fan 4243 $15.00 cursor 100-3\n";
  const std::string out = out_.str();
  EXPECT_EQ(all.rfind(out, 0), 0u) << out;  // whole lines, in order
  EXPECT_TRUE(out.empty() || out.back() == '\n');
  // The previous handler is back: a second interrupt would not be caught by heraldctl.
  struct sigaction current {};
  ASSERT_EQ(sigaction(SIGINT, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, SIG_DFL);
}

TEST_F(CommandsTest, EventsTailUsageErrors) {
  EXPECT_EQ(Run({"events", "tail", "--limit=0"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--limit: must be at least 1"));
  EXPECT_EQ(Run({"events", "tail", "--from="}), kExitUsage);
  EXPECT_EQ(Run({"events", "tail", "--account=bad/name"}), kExitUsage);
  EXPECT_EQ(Run({"events", "tail"}, {{"HERALD_TENANT", ""}}), kExitUsage);
}

// An attempt that waited out the server's timeouts without an answer is a failed one, however
// long it lasted: a server whose store hangs is given up on after kMaxFailures of them.
TEST(StreamResumerTest, AnAttemptIsServedOnlyWhenTheServerAnsweredIt) {
  using std::chrono::seconds;
  EXPECT_TRUE(StreamResumer::Served(/*delivered=*/true, /*answered=*/true, seconds(0)));
  EXPECT_TRUE(StreamResumer::Served(false, true, StreamResumer::kServed));
  EXPECT_FALSE(StreamResumer::Served(false, true, StreamResumer::kServed - seconds(1)));
  EXPECT_FALSE(StreamResumer::Served(false, false, seconds(60)));
}

// A server that never answered (a wrong address, a host down) is given up on after a couple
// of attempts; one that did is tried again for longer.
TEST(StreamResumerTest, AServerThatNeverAnsweredIsGivenUpOnSoon) {
  CancelOnInterrupt interrupt;
  std::ostringstream err;
  const grpc::Status unavailable(grpc::StatusCode::UNAVAILABLE, "connection refused");
  StreamResumer never(interrupt);
  int reopened = 0;
  while (never.Again(unavailable, /*delivered=*/false, /*answered=*/false, err)) ++reopened;
  EXPECT_EQ(reopened, StreamResumer::kMaxFailuresUnanswered);

  StreamResumer once(interrupt);
  ASSERT_TRUE(once.Again(unavailable, /*delivered=*/true, /*answered=*/true, err));
  reopened = 1;
  for (int i = 0; i < StreamResumer::kMaxFailuresUnanswered; ++i) {
    if (once.Again(unavailable, false, false, err)) ++reopened;
  }
  EXPECT_EQ(reopened, 1 + StreamResumer::kMaxFailuresUnanswered)
      << "a server that answered keeps its ten attempts";
  EXPECT_FALSE(once.Again(grpc::Status(grpc::StatusCode::NOT_FOUND, "gone"), true, true, err));
}

}  // namespace
}  // namespace herald::heraldctl
