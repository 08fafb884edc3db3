// Campaigns under upstream faults and worker crashes: every delivery ends sent or failed with a
// reason, and the simulator's ledger never shows a second message for a (campaign, account).
#include <csignal>
#include <functional>

#include <absl/strings/match.h>
#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_stack.h>
#include <herald/testing/net.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/wait.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/audience.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>

namespace herald {
namespace {

using testing::BearerContext;
using testing::HeraldStack;

constexpr char kAdminKey[] = "admin-key-faults";
constexpr int kAccounts = 12;

class CampaignFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> herald_args = {"--poll_interval=50ms", "--lookup_retry=1s",
                                            "--lease_duration=3s", "--log_level=warn"};
    for (std::string& arg : MoreHeraldArgs()) herald_args.push_back(std::move(arg));
    auto stack = HeraldStack::Start(
        {.redis = {.appendonly = true},
         .simulator_args = {"--teams=1", StrCat("--accounts_per_team=", kAccounts),
                            "--fans_per_account=30", "--delivery_rate=2000",
                            "--rate_limit_per_minute=100000"},
         .herald_args = std::move(herald_args),
         .admin_key = kAdminKey,
         .encryption_key = std::string(64, 'b')});
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = *std::move(stack);
  }

  virtual std::vector<std::string> MoreHeraldArgs() const { return {}; }

  // A tenant with a team on the simulator's team, its accounts and a media asset: returns the
  // tenant key, fills `accounts` and `media`.
  std::string Prepare(std::vector<std::string>& accounts, std::string& media) {
    auto key = testing::CreateTenant(stack_->channel(), kAdminKey, "agency");
    EXPECT_TRUE(key.ok()) << key.status();
    if (!key.ok()) return "";
    auto team = testing::CreateTeamWithAccounts(stack_->channel(), *key, "agency");
    EXPECT_TRUE(team.ok()) << team.status();
    if (team.ok()) accounts = team->accounts;
    auto asset = testing::CreateMediaAsset(stack_->channel(), *key, "agency", v1::MediaAsset::IMAGE,
                                           "https://cdn.example.com/a.jpg");
    EXPECT_TRUE(asset.ok()) << asset.status();
    media = asset.value_or("");
    return *key;
  }

  // As Prepare, with `one` set to the first account alone: a campaign to it makes calls of one
  // account only.
  std::string PrepareOne(std::vector<std::string>& one, std::string& media) {
    std::vector<std::string> accounts;
    std::string key = Prepare(accounts, media);
    if (!accounts.empty()) one = {accounts[0]};
    return key;
  }

  // Paces `account` (a resource name) at `per_minute` upstream calls a minute.
  void SetPace(const std::string& key, const std::string& account, int32_t per_minute) {
    v1::UpdateAccountRequest update;
    update.mutable_account()->set_name(account);
    update.mutable_account()->set_sends_per_minute(per_minute);
    update.mutable_update_mask()->add_paths("sends_per_minute");
    v1::Account updated;
    const grpc::Status s = v1::AccountService::NewStub(stack_->channel())
                               ->UpdateAccount(BearerContext(key).get(), update, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // A $9 message with `media`, or without media a free text (no media id the upstream could
  // refuse as spent).
  std::string CreateCampaign(const std::string& key, const std::vector<std::string>& accounts,
                             const std::string& media) {
    v1::CreateCampaignRequest req =
        testing::CampaignToFans("agency", accounts, "Faults or not, once", 900, media);
    if (media.empty()) {
      req.mutable_campaign()->mutable_content()->clear_media();
      req.mutable_campaign()->mutable_content()->set_price_cents(0);
    }
    v1::Campaign created;
    grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                         ->CreateCampaign(BearerContext(key).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return created.name();
  }

  // Creates the campaign with slow sends, kills herald (SIGKILL: no drain, leases left behind)
  // once a send is in flight, and restarts it. Sets `campaign` to the campaign's name.
  void CreateAndKillMidSend(const std::string& key, const std::vector<std::string>& accounts,
                            const std::string& media, std::string& campaign) {
    CreateAndKillOnce("/mass-messaging", key, accounts, media, campaign, [&] {
      for (const auto& d : Deliveries(key, campaign)) {
        if (d.state() == v1::Delivery::SENDING) return true;
      }
      return false;
    });
  }

  // The same with slow media uploads, killed once one is in flight (the first calls a campaign
  // makes are its uploads: any call in flight is one).
  void CreateAndKillMidUpload(const std::string& key, const std::vector<std::string>& accounts,
                              const std::string& media, std::string& campaign) {
    CreateAndKillOnce("/media/upload", key, accounts, media, campaign,
                      [&] { return SimStat("requests", "in_flight") > 0; });
  }

  // Slows the upstream's `method` calls to paths containing `path` by `latency_ms`, creates the
  // campaign, and kills and restarts herald once `ready` holds.
  void CreateAndKillOnce(std::string_view path, const std::string& key,
                         const std::vector<std::string>& accounts, const std::string& media,
                         std::string& campaign, const std::function<bool()>& ready,
                         int latency_ms = 400, std::string_view method = "POST") {
    ASSERT_NO_FATAL_FAILURE(
        SimRequest("POST", "/_sim/faults",
                   StrCat(R"({"methods":[")", method, R"("],"path_contains":")", path,
                          R"(","latency_ms":{"fixed":)", latency_ms, "}}")));
    campaign = CreateCampaign(key, accounts, media);
    ASSERT_TRUE(testing::WaitFor(ready, absl::Seconds(30)));
    stack_->herald().process().Kill();
    const absl::Status restarted = stack_->herald().Restart();
    ASSERT_TRUE(restarted.ok()) << restarted;
  }

  std::vector<v1::Delivery> Deliveries(const std::string& key, const std::string& campaign) {
    v1::ListDeliveriesRequest req;
    req.set_parent(campaign);
    v1::ListDeliveriesResponse resp;
    grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                         ->ListDeliveries(BearerContext(key).get(), req, &resp);
    if (!s.ok()) return {};
    return {resp.deliveries().begin(), resp.deliveries().end()};
  }

  v1::Campaign Get(const std::string& key, const std::string& campaign) {
    v1::GetCampaignRequest req;
    req.set_name(campaign);
    v1::Campaign c;
    v1::CampaignService::NewStub(stack_->channel())->GetCampaign(BearerContext(key).get(), req, &c);
    return c;
  }

  bool Final(const v1::Campaign& c) {
    return c.state() == v1::Campaign::COMPLETED || c.state() == v1::Campaign::PARTIALLY_FAILED ||
           c.state() == v1::Campaign::FAILED;
  }

  // Mass messages per upstream account on the ledger.
  std::map<std::string, int> Ledger() {
    auto ledger = testing::ReadLedger(stack_->sim().port());
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return ledger.ok() ? testing::MassMessagesPerAccount(*ledger) : std::map<std::string, int>();
  }

  // The deliveries not yet completed, for a failure's message.
  std::string Unfinished(const std::string& key, const std::string& campaign) {
    std::string out;
    for (const v1::Delivery& d : Deliveries(key, campaign)) {
      if (d.state() != v1::Delivery::COMPLETED) StrAppend(&out, d.DebugString(), "\n");
    }
    return out;
  }

  // Every delivery ended sent (completed, no error left) or failed with a reason; at most one
  // message each.
  void ExpectSettled(const std::string& key, const std::string& campaign,
                     const std::vector<std::string>& accounts) {
    const auto ledger = Ledger();
    for (const v1::Delivery& d : Deliveries(key, campaign)) {
      const std::string upstream = testing::ShortId(d.account());
      const int messages = ledger.contains(upstream) ? ledger.at(upstream) : 0;
      EXPECT_LE(messages, 1) << upstream << " got a second message";
      if (d.state() == v1::Delivery::COMPLETED) {
        EXPECT_EQ(messages, 1) << upstream;
        EXPECT_EQ(d.error(), "") << upstream << ": an error outlived the trouble it reported";
      } else {
        EXPECT_EQ(d.state(), v1::Delivery::FAILED) << upstream;
        EXPECT_FALSE(d.error().empty()) << upstream;
      }
    }
    EXPECT_EQ(Deliveries(key, campaign).size(), accounts.size());
  }

  // A campaign to every account with herald killed mid-send and restarted: it completes, one
  // message each.
  void KillMidSendThenExpectEveryDeliveryCompleted() {
    std::vector<std::string> accounts;
    std::string media;
    const std::string key = Prepare(accounts, media);
    ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
    std::string campaign;
    ASSERT_NO_FATAL_FAILURE(CreateAndKillMidSend(key, accounts, media, campaign));
    ExpectCompleted(key, campaign, accounts);
  }

  // The campaign ends COMPLETED, one message per account.
  void ExpectCompleted(const std::string& key, const std::string& campaign,
                       const std::vector<std::string>& accounts) {
    ASSERT_TRUE(testing::WaitFor([&] { return Final(Get(key, campaign)); }, absl::Seconds(90)))
        << Get(key, campaign).DebugString() << Unfinished(key, campaign) << stack_->herald().Logs();
    ExpectSettled(key, campaign, accounts);
    EXPECT_EQ(Get(key, campaign).state(), v1::Campaign::COMPLETED)
        << Get(key, campaign).state_reason() << stack_->herald().Logs();
  }

  // Sets the simulator's fault rules that `rules` gives for the accounts (resource names; the
  // newest rule that matches a call applies first), sends a campaign to every account, and
  // expects it COMPLETED with one message each, every rule used up (`what` says what they did).
  using FaultRules = std::function<std::vector<std::string>(const std::vector<std::string>&)>;
  void ExpectCompletedThrough(const FaultRules& rules, std::string_view what) {
    std::vector<std::string> accounts;
    std::string media;
    const std::string key = Prepare(accounts, media);
    ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
    for (const std::string& rule : rules(accounts)) {
      ASSERT_NO_FATAL_FAILURE(SimRequest("POST", "/_sim/faults", rule));
    }
    ExpectCompleted(key, CreateCampaign(key, accounts, media), accounts);
    auto faults = testing::HttpGet(stack_->sim().port(), "/_sim/faults");
    ASSERT_TRUE(faults.ok()) << faults.status();
    EXPECT_EQ(faults->body, "[]") << what;
  }

  // Sends a campaign to every account with the sends to the first one failing as `fault` (the
  // failure fields of a fault rule) makes them, and expects the campaign PARTIALLY_FAILED: that
  // account's delivery FAILED (and, when `nothing_sent`, no message of it on the ledger), the
  // others COMPLETED. Sets `failed` to the failed delivery.
  void ExpectOnlyTheFirstAccountFailed(std::string_view fault, bool nothing_sent,
                                       v1::Delivery& failed) {
    std::vector<std::string> accounts;
    std::string media;
    const std::string key = Prepare(accounts, media);
    ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
    const std::string first = testing::ShortId(accounts[0]);
    ASSERT_NO_FATAL_FAILURE(SimRequest("POST", "/_sim/faults",
                                       StrCat(R"({"methods":["POST"],"path_contains":")", first,
                                              R"(/mass-messaging",)", fault, "}")));
    const std::string campaign = CreateCampaign(key, accounts, media);
    ASSERT_TRUE(testing::WaitFor([&] { return Final(Get(key, campaign)); }, absl::Seconds(60)))
        << Unfinished(key, campaign) << stack_->herald().Logs();
    ExpectSettled(key, campaign, accounts);
    EXPECT_EQ(Get(key, campaign).state(), v1::Campaign::PARTIALLY_FAILED);
    for (const v1::Delivery& d : Deliveries(key, campaign)) {
      if (testing::ShortId(d.account()) == first) {
        failed = d;
      } else {
        EXPECT_EQ(d.state(), v1::Delivery::COMPLETED) << d.account();
      }
    }
    EXPECT_EQ(failed.state(), v1::Delivery::FAILED) << failed.DebugString();
    if (nothing_sent) {
      const auto ledger = Ledger();
      EXPECT_EQ(ledger.contains(first) ? ledger.at(first) : 0, 0) << "nothing sent";
    }
  }

  // With uploads limited to one attempt: kills herald mid-upload and expects the campaign to end
  // with at least one delivery FAILED for its expired lease, every other sent once.
  void ExpectAnUploadKilledOnItsOnlyAttemptFailsItsDelivery() {
    std::vector<std::string> accounts;
    std::string media;
    const std::string key = Prepare(accounts, media);
    ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
    std::string campaign;
    ASSERT_NO_FATAL_FAILURE(CreateAndKillMidUpload(key, accounts, media, campaign));
    ASSERT_TRUE(testing::WaitFor([&] { return Final(Get(key, campaign)); }, absl::Seconds(60)))
        << Get(key, campaign).DebugString() << stack_->herald().Logs();
    ExpectSettled(key, campaign, accounts);
    int expired = 0;
    for (const v1::Delivery& d : Deliveries(key, campaign)) {
      expired += d.state() == v1::Delivery::FAILED &&
                 absl::StrContains(d.error(), "gave up after 1 attempt: lease expired");
    }
    EXPECT_GE(expired, 1);
  }

  // A counter of GET /_sim/stats, e.g. ("faults", "errors"); -1 when the stats cannot be read.
  int64_t SimStat(std::string_view group, std::string_view name = "") {
    auto stats = testing::ReadSimStats(stack_->sim().port());
    if (!stats.ok()) return -1;
    const boost::json::value& v = name.empty() ? stats->at(group) : stats->at(group).at(name);
    return v.to_number<int64_t>();
  }

  void SimRequest(std::string_view method, std::string_view target, std::string_view body = "") {
    auto r = testing::HttpRequest(stack_->sim().port(), method, target, body);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << target << ": " << r->body;
  }

  // Sends the campaign with the send to `accounts[0]` refused (503) until that account's upload
  // has been used up on the upstream, as a post made outside the API would use it. `before_send`
  // runs once the media is spent and the refusals stopped, before the send that will find the
  // media spent.
  void SendWithSpentMedia(const std::string& key, const std::vector<std::string>& accounts,
                          const std::string& media, std::string& campaign,
                          const std::function<void()>& before_send) {
    const std::string spent = testing::ShortId(accounts[0]);
    ASSERT_NO_FATAL_FAILURE(
        SimRequest("POST", "/_sim/faults",
                   StrCat(R"({"methods":["POST"],"path_contains":")", spent,
                          R"(/mass-messaging","error_rate":1,"error_status":503})")));
    campaign = CreateCampaign(key, accounts, media);
    // The send was refused, so its upload is done and unused.
    ASSERT_TRUE(testing::WaitFor([&] { return SimStat("faults", "errors") >= 1; }))
        << stack_->herald().Logs();
    auto r = testing::HttpRequest(stack_->sim().port(), "POST",
                                  StrCat("/_sim/accounts/", spent, "/media/spend"), "");
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    EXPECT_EQ(r->body, R"({"spent":1})");
    ASSERT_NO_FATAL_FAILURE(SimRequest("DELETE", "/_sim/faults"));
    before_send();
  }

  std::unique_ptr<HeraldStack> stack_;
};

TEST_F(CampaignFaultsTest, ServerErrorsResetsAndLostResponses) {
  std::vector<std::string> accounts;
  std::string media;
  const std::string key = Prepare(accounts, media);
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
  // Every kind of failure on the upstream's mutations and reads, for a while.
  auto fault = testing::HttpRequest(
      stack_->sim().port(), "POST", "/_sim/faults",
      R"({"error_rate":0.1,"error_status":503,"reset_rate":0.05,"commit_then_lose_rate":0.1,)"
      R"("count":60})");
  ASSERT_TRUE(fault.ok() && fault->status == 200);
  const std::string campaign = CreateCampaign(key, accounts, media);
  ASSERT_TRUE(testing::WaitFor([&] { return Final(Get(key, campaign)); }, absl::Seconds(90)))
      << Get(key, campaign).DebugString() << stack_->herald().Logs();
  ExpectSettled(key, campaign, accounts);
  EXPECT_EQ(Get(key, campaign).state(), v1::Campaign::COMPLETED)
      << Get(key, campaign).state_reason();
}

TEST_F(CampaignFaultsTest, WorkerKilledMidSendIsReconciledByItsSuccessor) {
  KillMidSendThenExpectEveryDeliveryCompleted();
}

// The upstream takes six seconds over each send, and herald dies while they are in flight: the
// successor's first lookup (after the three-second lease) finds nothing, since the sends have
// not landed yet, and must not send again. It looks again until they land and adopts them. (A
// text message: with media, a second send would find its ids spent.)
TEST_F(CampaignFaultsTest, ASendThatLandsAfterItsWorkerDiedIsAdoptedNotSentAgain) {
  std::vector<std::string> accounts;
  std::string media;
  const std::string key = Prepare(accounts, media);
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
  std::string campaign;
  ASSERT_NO_FATAL_FAILURE(CreateAndKillOnce(
      "/mass-messaging", key, accounts, /*media=*/"", campaign,
      [&] { return SimStat("requests", "in_flight") > 0; }, /*latency_ms=*/6000));
  ExpectCompleted(key, campaign, accounts);
}

// Upstream media ids are single-use. A send refused because its upload was used up meanwhile
// (`media_already_used`) uploads the asset again and sends once: the delivery completes.
TEST_F(CampaignFaultsTest, ASendWhoseMediaWasUsedUpUploadsItAgain) {
  std::vector<std::string> accounts;
  std::string media;
  const std::string key = Prepare(accounts, media);
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
  std::string campaign;
  ASSERT_NO_FATAL_FAILURE(SendWithSpentMedia(key, accounts, media, campaign, [] {}));
  ExpectCompleted(key, campaign, accounts);
  EXPECT_EQ(SimStat("uploads"), kAccounts + 1) << "one upload again, for the spent one";
  EXPECT_EQ(SimStat("requests", "422"), 1) << "one send refused for its spent media";
}

// The same with the campaign paused and resumed while that upload is in flight: the send the
// upload chains, whose generation the resume moved on, hands the delivery over instead of leaving
// it SENDING with its earlier attempt on record.
TEST_F(CampaignFaultsTest, AnUploadAgainAcrossAPauseCompletesOnceResumed) {
  std::vector<std::string> accounts;
  std::string media;
  const std::string key = Prepare(accounts, media);
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
  std::string campaign;
  ASSERT_NO_FATAL_FAILURE(SendWithSpentMedia(key, accounts, media, campaign, [&] {
    // The upload again is held two seconds upstream, and the campaign paused and resumed then.
    SimRequest("POST", "/_sim/faults",
               StrCat(R"({"methods":["POST"],"path_contains":")", testing::ShortId(accounts[0]),
                      R"(/media/upload","latency_ms":{"fixed":2000}})"));
    ASSERT_TRUE(testing::WaitFor([&] { return SimStat("faults", "delayed") >= 1; }))
        << stack_->herald().Logs();
    auto paused = testing::PauseCampaign(stack_->channel(), key, campaign);
    ASSERT_TRUE(paused.ok()) << paused.status();
    auto resumed = testing::ResumeCampaign(stack_->channel(), key, campaign);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
  }));
  ExpectCompleted(key, campaign, accounts);
  EXPECT_EQ(SimStat("uploads"), kAccounts + 1);
}

// An upstream that refuses every send's media as spent gets a fresh upload and send per send
// attempt, up to --max_attempts (6 here), and then the delivery fails saying so: no endless
// uploads at the team's expense, and nothing sent.
TEST_F(CampaignFaultsTest, MediaRefusedAsSpentOnEveryAttemptFailsTheDeliveryAtTheLast) {
  v1::Delivery failed;
  ASSERT_NO_FATAL_FAILURE(ExpectOnlyTheFirstAccountFailed(
      R"("error_rate":1,"error_status":422,"error_code":"media_already_used")",
      /*nothing_sent=*/true, failed));
  EXPECT_EQ(failed.send_attempts(), 6);
  EXPECT_THAT(failed.error(),
              ::testing::HasSubstr("refused the media as spent on send attempt 6 of 6"));
  EXPECT_EQ(SimStat("faults", "errors"), 6);
  EXPECT_EQ(SimStat("uploads"), kAccounts + 5)
      << "one upload again after each refusal but the last";
}

// A refusal is final: an account the upstream no longer knows (disconnected from the team) fails
// its delivery at once, in the upstream's words, with no retry; the other accounts complete.
TEST_F(CampaignFaultsTest, ASendTheUpstreamRefusesFailsItsDeliveryWithoutRetrying) {
  v1::Delivery failed;
  ASSERT_NO_FATAL_FAILURE(ExpectOnlyTheFirstAccountFailed(
      R"("error_rate":1,"error_status":404,"error_code":"account_not_found")",
      /*nothing_sent=*/true, failed));
  EXPECT_EQ(failed.send_attempts(), 1);
  EXPECT_THAT(failed.error(),
              ::testing::HasSubstr("the upstream refused sending the mass message"));
  EXPECT_THAT(failed.error(), ::testing::HasSubstr("account_not_found"));
  EXPECT_EQ(SimStat("faults", "errors"), 1) << "a refusal is not retried";
}

// A send answered 503 on an account paced at 12 a minute (a token every five seconds or so): the
// retry's lookup takes the token its lease paid for, and the send's token is seconds away. The
// lookup's finding is kept when the job is put back to wait for it, so the next lease sends;
// before, each lease paid for the lookup again and the message never went out.
TEST_F(CampaignFaultsTest, ARetryOnASlowlyPacedAccountSendsAfterItsLookup) {
  std::vector<std::string> accounts;
  std::string media;
  const std::string key = Prepare(accounts, media);
  ASSERT_FALSE(accounts.empty());
  const std::vector<std::string> paced(accounts.begin(), accounts.begin() + 1);
  ASSERT_NO_FATAL_FAILURE(SetPace(key, paced[0], 12));
  ASSERT_NO_FATAL_FAILURE(SimRequest(
      "POST", "/_sim/faults",
      R"({"methods":["POST"],"path_contains":"/mass-messaging","error_rate":1,"error_status":503,)"
      R"("count":1})"));
  const std::string campaign = CreateCampaign(key, paced, /*media=*/"");
  ExpectCompleted(key, campaign, paced);
  EXPECT_EQ(SimStat("faults", "errors"), 1);
}

// A segment's list whose creation was refused (503), on an account paced at 20 a minute (a token
// every three seconds): the retry looks for the list by its name with the token its lease paid
// for, and its creation's token is an interval away. The step waits that interval rather than go
// back to the queue, where each lease would pay for the lookup again and never make the list.
TEST_F(CampaignFaultsTest, ASegmentListRetryOnASlowlyPacedAccountMakesTheList) {
  std::vector<std::string> accounts;
  std::string media;
  const std::string key = Prepare(accounts, media);
  ASSERT_FALSE(accounts.empty());
  const std::vector<std::string> paced(accounts.begin(), accounts.begin() + 1);
  ASSERT_NO_FATAL_FAILURE(SetPace(key, paced[0], 20));
  v1::CreateSegmentRequest sreq;
  sreq.set_parent("tenants/agency");
  sreq.mutable_segment()->set_display_name("Lapsed");
  sreq.mutable_segment()->set_expired_only(true);
  v1::Segment segment;
  grpc::Status s = v1::AudienceService::NewStub(stack_->channel())
                       ->CreateSegment(BearerContext(key).get(), sreq, &segment);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_NO_FATAL_FAILURE(
      SimRequest("POST", "/_sim/faults",
                 StrCat(R"({"methods":["POST"],"path_contains":")", testing::ShortId(paced[0]),
                        R"(/user-lists","error_rate":1,"error_status":503,"count":1})")));

  v1::CreateCampaignRequest req;
  req.set_parent("tenants/agency");
  req.mutable_campaign()->mutable_content()->set_text("We miss you");
  v1::AccountTarget* target = req.mutable_campaign()->add_targets();
  target->set_account(paced[0]);
  target->set_segment(segment.name());
  v1::Campaign created;
  s = v1::CampaignService::NewStub(stack_->channel())
          ->CreateCampaign(BearerContext(key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ExpectCompleted(key, created.name(), paced);
  EXPECT_EQ(SimStat("faults", "errors"), 1);
}

// Once its message is sent, a delivery is not failed for want of its progress: reads of the
// account's queue the upstream refuses are noted on the delivery and checked again later, and the
// delivery completes once they answer.
TEST_F(CampaignFaultsTest, ASentMessageWhoseProgressReadsAreRefusedStillCompletes) {
  ExpectCompletedThrough(
      [](const std::vector<std::string>& accounts) -> std::vector<std::string> {
        return {StrCat(R"({"methods":["GET"],"path_contains":")", testing::ShortId(accounts[0]),
                       R"(/mass-messaging","error_rate":1,"error_status":403,)"
                       R"("error_code":"forbidden","count":3})")};
      },
      "three progress reads refused");
  EXPECT_EQ(SimStat("faults", "errors"), 3);
}

// One attempt per step, and dead letters handled at once.
class CampaignOneAttemptTest : public CampaignFaultsTest {
 protected:
  std::vector<std::string> MoreHeraldArgs() const override {
    return {"--max_attempts=1", "--queue_stats_interval=200ms"};
  }
};

// An operator tops the team's credits up and resumes it while a call made before is still out:
// that call's 402, answered after the resume, speaks of the credits as they were. It pauses
// nothing, and the send goes out with the team as it is now.
TEST_F(CampaignFaultsTest, ARefusalOfACallMadeBeforeTheTeamWasResumedPausesNothing) {
  std::vector<std::string> one;
  std::string media;
  const std::string key = PrepareOne(one, media);
  ASSERT_EQ(one.size(), 1u);
  ASSERT_NO_FATAL_FAILURE(SimRequest(
      "POST", "/_sim/faults",
      R"({"methods":["POST"],"path_contains":"/mass-messaging","latency_ms":{"fixed":5000},)"
      R"("error_rate":1,"error_status":402,"error_code":"insufficient_credits","count":1})"));
  const std::string campaign = CreateCampaign(key, one, /*media=*/"");
  ASSERT_TRUE(testing::WaitFor([&] { return SimStat("requests", "in_flight") > 0; }));

  auto teams = v1::AccountService::NewStub(stack_->channel());
  v1::Team team;
  v1::PauseTeamRequest pause;
  pause.set_name("tenants/agency/teams/main");
  ASSERT_TRUE(teams->PauseTeam(BearerContext(key).get(), pause, &team).ok());
  v1::ResumeTeamRequest resume;
  resume.set_name(pause.name());
  ASSERT_TRUE(teams->ResumeTeam(BearerContext(key).get(), resume, &team).ok());

  ExpectCompleted(key, campaign, one);
  EXPECT_EQ(SimStat("requests", "402"), 1) << "the refused call was answered";
  v1::GetTeamRequest get;
  get.set_name(pause.name());
  ASSERT_TRUE(teams->GetTeam(BearerContext(key).get(), get, &team).ok());
  EXPECT_FALSE(team.paused()) << team.pause_reason();
}

// A send of a message the upstream is to hold, whose answer was lost, then an update of the
// campaign before any lookup could run: the lookup recognises the message by what the attempt
// sent, adopts it, and gives it the update by PUT. It does not take the message for someone
// else's and send the new content beside it.
TEST_F(CampaignFaultsTest, AHeldSendLostThenUpdatedIsAdoptedAndUpdatedNotSentAgain) {
  std::vector<std::string> one;
  std::string media;
  const std::string key = PrepareOne(one, media);
  ASSERT_EQ(one.size(), 1u);
  const std::string account = testing::ShortId(one[0]);
  // The send is applied and its answer lost; every look at the account's messages fails until
  // the rule is removed.
  ASSERT_NO_FATAL_FAILURE(
      SimRequest("POST", "/_sim/faults",
                 StrCat(R"({"methods":["POST"],"path_contains":")", account,
                        R"(/mass-messaging","commit_then_lose_rate":1,"count":1})")));
  ASSERT_NO_FATAL_FAILURE(
      SimRequest("POST", "/_sim/faults",
                 StrCat(R"({"methods":["GET"],"path_contains":")", account,
                        R"(/mass-messaging","error_rate":1,"error_status":503})")));
  v1::CreateCampaignRequest req =
      testing::CampaignToFans("agency", one, "The first words", 900, media);
  req.mutable_campaign()->mutable_send_time()->set_seconds(
      absl::ToUnixSeconds(absl::Now() + absl::Seconds(8)));
  req.mutable_campaign()->mutable_upstream_lead()->set_seconds(3600);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign created;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(testing::WaitFor([&] {
    const std::vector<v1::Delivery> d = Deliveries(key, created.name());
    return Ledger()[account] == 1 && SimStat("faults", "errors") >= 1 && d.size() == 1 &&
           d[0].state() == v1::Delivery::SENDING && d[0].upstream_message_id() == 0;
  })) << Unfinished(key, created.name())
      << stack_->herald().Logs();

  v1::UpdateCampaignRequest update;
  update.mutable_campaign()->set_name(created.name());
  update.mutable_campaign()->mutable_content()->set_text("The second words");
  update.mutable_update_mask()->add_paths("content.text");
  v1::Campaign updated;
  s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_NO_FATAL_FAILURE(SimRequest("DELETE", "/_sim/faults"));

  ExpectCompleted(key, created.name(), one);
  auto ledger = testing::ReadLedger(stack_->sim().port(), StrCat("all=true&account=", account));
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  const auto& messages = ledger->at("accounts").as_array().at(0).at("mass_messages").as_array();
  ASSERT_EQ(messages.size(), 1u) << boost::json::serialize(*ledger);
  EXPECT_THAT(std::string(messages.at(0).at("text").as_string()),
              ::testing::HasSubstr("The second words"));
  EXPECT_GE(messages.at(0).at("updates").to_number<int64_t>(), 1);
}

// A step that runs out of attempts (here the only one, its lease expired after its worker was
// killed mid-upload) is dead-lettered, and its delivery says why: the campaign ends instead of
// waiting for a step that will never run.
TEST_F(CampaignOneAttemptTest, ADeliveryWhoseLastAttemptDiedIsFailedWithTheReason) {
  ExpectAnUploadKilledOnItsOnlyAttemptFailsItsDelivery();
}

// The same when only uploads have one attempt (`--max_attempts_by_kind`), every other step the
// default six.
class CampaignOneUploadAttemptTest : public CampaignFaultsTest {
 protected:
  std::vector<std::string> MoreHeraldArgs() const override {
    return {"--max_attempts_by_kind=delivery_upload_media=1", "--queue_stats_interval=200ms"};
  }
};

TEST_F(CampaignOneUploadAttemptTest, AKindsOwnAttemptLimitAppliesToItsSteps) {
  ExpectAnUploadKilledOnItsOnlyAttemptFailsItsDelivery();
}

// A progress check that died (its worker killed while it asked for the message's progress, its
// only attempt spent) does not fail a delivery whose message went out: the next check follows
// the message, and the campaign completes.
TEST_F(CampaignOneAttemptTest, AProgressCheckThatDiedDoesNotFailASentDelivery) {
  std::vector<std::string> one;
  std::string media;
  const std::string key = PrepareOne(one, media);
  ASSERT_EQ(one.size(), 1u);
  std::string campaign;
  // One account: once its message is sent, the only calls are the checks of its progress.
  ASSERT_NO_FATAL_FAILURE(CreateAndKillOnce(
      "/mass-messaging", key, one, media, campaign,
      [&] {
        const std::vector<v1::Delivery> d = Deliveries(key, campaign);
        return d.size() == 1 && d[0].upstream_message_id() != 0 &&
               SimStat("requests", "in_flight") > 0;
      },
      1500, "GET"));
  ExpectCompleted(key, campaign, one);
}

// A progress check that dies again before any check succeeded (a lasting fault) fails its
// delivery with the reason, rather than being followed check after check.
TEST_F(CampaignOneAttemptTest, AProgressCheckThatDiesTwiceFailsItsDelivery) {
  std::vector<std::string> one;
  std::string media;
  const std::string key = PrepareOne(one, media);
  ASSERT_EQ(one.size(), 1u);
  std::string campaign;
  const auto checking = [&] {
    const std::vector<v1::Delivery> d = Deliveries(key, campaign);
    return d.size() == 1 && d[0].upstream_message_id() != 0 && SimStat("requests", "in_flight") > 0;
  };
  ASSERT_NO_FATAL_FAILURE(
      CreateAndKillOnce("/mass-messaging", key, one, media, campaign, checking, 1500, "GET"));
  // The first death is noted on the delivery, and the next check comes after the longest poll
  // interval (30 s); the note is written after the killed call has ended upstream.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const std::vector<v1::Delivery> d = Deliveries(key, campaign);
        return d.size() == 1 && absl::StartsWith(d[0].error(), "progress check failed, check ");
      },
      absl::Seconds(30)))
      << Unfinished(key, campaign) << stack_->herald().Logs();
  EXPECT_EQ(Deliveries(key, campaign)[0].state(), v1::Delivery::SENT);
  ASSERT_TRUE(testing::WaitFor(checking, absl::Seconds(60))) << Unfinished(key, campaign);
  stack_->herald().process().Kill();
  const absl::Status restarted = stack_->herald().Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;

  ASSERT_TRUE(testing::WaitFor([&] { return Final(Get(key, campaign)); }, absl::Seconds(60)))
      << Unfinished(key, campaign) << stack_->herald().Logs();
  ExpectSettled(key, campaign, one);
  const std::vector<v1::Delivery> d = Deliveries(key, campaign);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].state(), v1::Delivery::FAILED);
  EXPECT_THAT(d[0].error(), ::testing::HasSubstr("gave up after 1 attempt: lease expired"));
  EXPECT_EQ(Get(key, campaign).state(), v1::Campaign::FAILED);
  EXPECT_EQ(Ledger()[testing::ShortId(one[0])], 1);
}

// A short drain and a short in-doubt window.
class CampaignDrainTest : public CampaignFaultsTest {
 protected:
  std::vector<std::string> MoreHeraldArgs() const override {
    return {"--drain_timeout=5s", "--send_settle=10s"};
  }
};

// A send cut off at the drain deadline may still land: it stays in doubt for --send_settle from
// then, not from when it began. Here it lands 12 s after it began, after the window counted from
// its start (10 s) but within the one counted from the cut (5 s + 10 s): the restarted herald
// adopts it instead of sending a second message.
TEST_F(CampaignDrainTest, ASendCutOffByTheDrainIsInDoubtFromThenAndAdoptedWhenItLands) {
  std::vector<std::string> one;
  std::string media;
  const std::string key = PrepareOne(one, media);
  ASSERT_EQ(one.size(), 1u);
  ASSERT_NO_FATAL_FAILURE(SimRequest(
      "POST", "/_sim/faults",
      R"({"methods":["POST"],"path_contains":"/mass-messaging","latency_ms":{"fixed":12000}})"));
  const std::string campaign = CreateCampaign(key, one, "");
  ASSERT_TRUE(testing::WaitFor([&] { return SimStat("requests", "in_flight") > 0; }))
      << Unfinished(key, campaign) << stack_->herald().Logs();
  stack_->herald().process().Signal(SIGTERM);
  const std::optional<int> exited = stack_->herald().process().Wait(absl::Seconds(30));
  ASSERT_TRUE(exited.has_value()) << stack_->herald().Logs();
  EXPECT_EQ(*exited, 0) << stack_->herald().Logs();
  const absl::Status restarted = stack_->herald().Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  ExpectCompleted(key, campaign, one);
}

// A send step that died with its attempt on record (its worker killed mid-send, its only attempt
// spent) does not fail its delivery: the message may exist. A new step looks for it, adopts it
// or sends, and every delivery completes with one message.
TEST_F(CampaignOneAttemptTest, ASendStepThatDiedMidCallIsLookedUpNotFailed) {
  KillMidSendThenExpectEveryDeliveryCompleted();
}

// A send whose answer was lost cannot be retried until the upstream says whether it went
// through. When the lookup fails on the step's last attempt, a new step asks again later
// (--lookup_retry) instead of failing a delivery whose message may exist: here the upstream's
// overview fails three lookups in a row, and the fourth finds and adopts the message.
TEST_F(CampaignOneAttemptTest, ALostSendIsLookedUpAgainUntilTheUpstreamAnswers) {
  ExpectCompletedThrough(
      [](const std::vector<std::string>&) -> std::vector<std::string> {
        return {R"({"methods":["POST"],"path_contains":"/mass-messaging",)"
                R"("commit_then_lose_rate":1,"count":1})",
                R"({"methods":["GET"],"path_contains":"/mass-messaging/overview","error_rate":1,)"
                R"("error_status":503,"count":3})"};
      },
      "the send lost its answer and three lookups failed");
}

// A 500 may come after the upstream made the message: on a send's only attempt it is looked
// up (and, not found, sent again), never taken for a refusal that fails the delivery.
TEST_F(CampaignOneAttemptTest, ASendAnsweredWithA500IsLookedUpNotFailed) {
  ExpectCompletedThrough(
      [](const std::vector<std::string>& accounts) -> std::vector<std::string> {
        return {StrCat(R"({"methods":["POST"],"path_contains":")", testing::ShortId(accounts[0]),
                       R"(/mass-messaging","error_rate":1,"error_status":500,"count":1})")};
      },
      "a 500 on the first send");
}

// A lookup that finds nothing sends again, as a new attempt; when that answer is lost too, the
// next lookup is a step of its own (one that reused the first lookup's would never be queued):
// here one account's first send gets a gateway timeout (nothing sent, outcome unknown) and its
// second, from the lookup, is applied but its answer lost.
TEST_F(CampaignOneAttemptTest, ALookupThatSendsAgainAndLosesThatAnswerIsLookedUpAgain) {
  ExpectCompletedThrough(
      [](const std::vector<std::string>& accounts) -> std::vector<std::string> {
        const std::string path = StrCat(testing::ShortId(accounts[0]), "/mass-messaging");
        return {StrCat(R"({"methods":["POST"],"path_contains":")", path,
                       R"(","commit_then_lose_rate":1,"count":1})"),
                StrCat(R"({"methods":["POST"],"path_contains":")", path,
                       R"(","error_rate":1,"error_status":504,"count":1})")};
      },
      "a gateway timeout, then a lost answer");
}

// With no patience (--lookup_patience=0s) a send whose answer was lost on its only attempt fails
// its delivery at once, saying where to look: the bound on the lookups holds.
class CampaignNoLookupPatienceTest : public CampaignOneAttemptTest {
 protected:
  std::vector<std::string> MoreHeraldArgs() const override {
    std::vector<std::string> args = CampaignOneAttemptTest::MoreHeraldArgs();
    args.push_back("--lookup_patience=0s");
    return args;
  }
};

TEST_F(CampaignNoLookupPatienceTest, ALostSendFailsItsDeliveryNamingTheQueueToCheck) {
  v1::Delivery failed;
  ASSERT_NO_FATAL_FAILURE(ExpectOnlyTheFirstAccountFailed(R"("commit_then_lose_rate":1,"count":1)",
                                                          /*nothing_sent=*/false, failed));
  EXPECT_THAT(failed.error(), ::testing::HasSubstr("check the account's upstream queue"));
}

}  // namespace
}  // namespace herald
