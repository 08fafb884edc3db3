// Reconciliation finds purchases whose webhooks were lost: those of a message unsent while it was
// still going out (found by the chaos runner: cancelled deliveries were never reconciled), and
// those of a message whose last round failed through all of its attempts (the chaos runner
// again: such a round was given up, and nothing came after it), and those of a message whose
// poll or unsend step ran again after ending its delivery (its acknowledgement, which chains the
// reconciliation, was lost to a crash).
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/queue/queue.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/herald_stack.h>
#include <herald/testing/net.h>
#include <herald/testing/queue_jobs.h>
#include <herald/testing/redis_sync.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/wait.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>

namespace herald {
namespace {

namespace json = boost::json;
using testing::BearerContext;
using testing::PlaceJob;

constexpr char kAdminKey[] = "admin-key-reconcile";
constexpr char kTenant[] = "unsent";

// Creates a campaign of `price_cents` with one image, sent to list "fans" of every account.
absl::StatusOr<v1::Campaign> CreatePricedCampaign(const std::shared_ptr<grpc::Channel>& channel,
                                                  const std::string& key,
                                                  const std::vector<std::string>& accounts,
                                                  std::string_view text, int64_t price_cents) {
  auto media = testing::CreateMediaAsset(channel, key, kTenant, v1::MediaAsset::IMAGE,
                                         "https://cdn.example.com/set.jpg");
  if (!media.ok()) return media.status();
  const v1::CreateCampaignRequest req =
      testing::CampaignToFans(kTenant, accounts, text, price_cents, *media);
  v1::Campaign campaign;
  const grpc::Status created = v1::CampaignService::NewStub(channel)->CreateCampaign(
      BearerContext(key).get(), req, &campaign);
  if (!created.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(created.error_code()),
                        created.error_message());
  }
  return campaign;
}

// Waits (up to 30 s) until the campaign's stats count the ledger's `purchases`, and expects every
// one of them found by reconciliation and, unless `gross_cents` is negative, that gross revenue.
// `logs` is printed when they never add up.
void ExpectEveryPurchaseReconciled(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& key, const std::string& campaign,
                                   int64_t purchases, int64_t gross_cents,
                                   const std::function<std::string()>& logs) {
  v1::CampaignStats stats;
  const bool reconciled = testing::WaitFor(
      [&] {
        v1::GetCampaignStatsRequest req;
        req.set_name(StrCat(campaign, "/stats"));
        stats.Clear();
        return v1::AnalyticsService::NewStub(channel)
                   ->GetCampaignStats(BearerContext(key).get(), req, &stats)
                   .ok() &&
               stats.purchases() == purchases;
      },
      absl::Seconds(30));
  EXPECT_TRUE(reconciled) << "Herald has " << stats.purchases() << " purchases, the ledger "
                          << purchases << "\n"
                          << logs();
  if (gross_cents >= 0) {
    EXPECT_EQ(stats.gross_revenue_cents(), gross_cents);
  }
  EXPECT_EQ(stats.reconciled_purchases(), purchases);
}

TEST(ReconcileTest, PurchasesMadeBeforeAnUnsendAreReconciledWhenTheirWebhooksWereLost) {
  // Slow delivery (30 fans at 5 a second), and every fan who gets the message buys it at once.
  auto stack = testing::HeraldStack::Start(
      {.simulator_args = {"--teams=1", "--accounts_per_team=2", "--fans_per_account=30",
                          "--delivery_rate=5", "--purchase_probability=1", "--fan_behavior=uniform",
                          "--purchase_delay_min=0s", "--purchase_delay_max=100ms"},
       .herald_args = {"--poll_interval=50ms", "--log_level=warn", "--reconcile_schedule=300ms,2s"},
       .admin_key = kAdminKey,
       .encryption_key = std::string(64, 'e'),
       .register_webhooks = true});
  ASSERT_TRUE(stack.ok()) << stack.status();
  testing::HeraldStack& s = **stack;
  auto key = testing::CreateTenant(s.channel(), kAdminKey, kTenant);
  ASSERT_TRUE(key.ok()) << key.status();
  auto team = testing::CreateTeamWithAccounts(s.channel(), *key, kTenant);
  ASSERT_TRUE(team.ok()) << team.status();
  ASSERT_TRUE(team->team.webhook_id().starts_with("wh_")) << team->team.webhook_error();
  // Every event from now on is lost.
  auto paused = testing::HttpRequest(
      s.sim().port(), "PUT", StrCat("/api/webhooks/", team->team.webhook_id()),
      R"({"enabled": false})",
      {{"Authorization", "Bearer sim-key-1"}, {"Content-Type", "application/json"}});
  ASSERT_TRUE(paused.ok() && paused->status == 200) << (paused.ok() ? paused->body : "");

  auto created = CreatePricedCampaign(s.channel(), *key, team->accounts, "Unsent midway", 700);
  ASSERT_TRUE(created.ok()) << created.status();
  const v1::Campaign campaign = *created;
  auto campaigns = v1::CampaignService::NewStub(s.channel());

  // Both messages are going out and have sold a few when the campaign is cancelled.
  const auto ledger_messages = [&] {
    std::vector<json::object> out;
    auto ledger = testing::ReadLedger(s.sim().port(), "all=true");
    if (!ledger.ok()) return out;
    for (const json::value& a : ledger->at("accounts").as_array()) {
      for (const json::value& m : a.at("mass_messages").as_array()) out.push_back(m.as_object());
    }
    return out;
  };
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const std::vector<json::object> messages = ledger_messages();
        return messages.size() == 2 && std::all_of(messages.begin(), messages.end(), [](auto& m) {
                 return m.at("purchases").template to_number<int64_t>() >= 3 &&
                        m.at("state").as_string() == "sending";
               });
      },
      absl::Seconds(30)));
  v1::CancelCampaignRequest cancel;
  cancel.set_name(campaign.name());
  v1::CancelCampaignResponse cancelled;
  ASSERT_TRUE(campaigns->CancelCampaign(BearerContext(*key).get(), cancel, &cancelled).ok());

  // Unsent upstream, with what was bought before; Herald heard none of it by webhook.
  int64_t ledger_purchases = 0, ledger_revenue = 0;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const std::vector<json::object> messages = ledger_messages();
        ledger_purchases = ledger_revenue = 0;
        for (const json::object& m : messages) {
          if (m.at("state").as_string() != "canceled") return false;
          if (m.at("purchases_pending").to_number<int64_t>() != 0) return false;
          ledger_purchases += m.at("purchases").to_number<int64_t>();
          ledger_revenue += m.at("revenue_cents").to_number<int64_t>();
        }
        return messages.size() == 2;
      },
      absl::Seconds(30)));
  ASSERT_GE(ledger_purchases, 6);

  ExpectEveryPurchaseReconciled(s.channel(), *key, campaign.name(), ledger_purchases,
                                ledger_revenue, [&] { return s.herald().Logs(); });

  v1::GetCampaignRequest get;
  get.set_name(campaign.name());
  v1::Campaign final_state;
  ASSERT_TRUE(campaigns->GetCampaign(BearerContext(*key).get(), get, &final_state).ok());
  EXPECT_EQ(final_state.state(), v1::Campaign::CANCELLED);
}

// One account whose webhook is paused (every event lost) and whose upstream answers the next
// reads of a message's buyers with `fault` (a /_sim/faults rule for GET .../buyers): a campaign
// every fan buys is still credited in full, by reconciliation alone, and the rule is used up.
void ExpectReconciledPastBuyersFault(std::string_view fault, std::string_view reconcile_schedule) {
  auto stack = testing::HeraldStack::Start(
      {.simulator_args = {"--teams=1", "--accounts_per_team=1", "--fans_per_account=20",
                          "--delivery_rate=1000", "--purchase_probability=1",
                          "--fan_behavior=uniform", "--purchase_delay_min=0s",
                          "--purchase_delay_max=100ms"},
       .herald_args = {"--poll_interval=50ms", "--log_level=warn",
                       StrCat("--reconcile_schedule=", reconcile_schedule), "--max_attempts=1"},
       .admin_key = kAdminKey,
       .encryption_key = std::string(64, 'e'),
       .register_webhooks = true});
  ASSERT_TRUE(stack.ok()) << stack.status();
  testing::HeraldStack& s = **stack;
  auto key = testing::CreateTenant(s.channel(), kAdminKey, kTenant);
  ASSERT_TRUE(key.ok()) << key.status();
  auto team = testing::CreateTeamWithAccounts(s.channel(), *key, kTenant);
  ASSERT_TRUE(team.ok()) << team.status();
  const std::map<std::string, std::string> sim_headers = {{"Authorization", "Bearer sim-key-1"},
                                                          {"Content-Type", "application/json"}};
  // Every event from now on is lost, and the next reads of a message's buyers fail.
  auto paused =
      testing::HttpRequest(s.sim().port(), "PUT", StrCat("/api/webhooks/", team->team.webhook_id()),
                           R"({"enabled": false})", sim_headers);
  ASSERT_TRUE(paused.ok() && paused->status == 200) << (paused.ok() ? paused->body : "");
  auto injected =
      testing::HttpRequest(s.sim().port(), "POST", "/_sim/faults", std::string(fault), sim_headers);
  ASSERT_TRUE(injected.ok() && injected->status == 200)
      << (injected.ok() ? injected->body : injected.status().ToString());

  auto created = CreatePricedCampaign(s.channel(), *key, team->accounts, "Bought unheard", 500);
  ASSERT_TRUE(created.ok()) << created.status();
  const v1::Campaign campaign = *created;

  // Every fan bought it, and Herald heard of none of it by webhook.
  int64_t ledger_purchases = 0, ledger_revenue = 0;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto ledger = testing::ReadLedger(s.sim().port(), "all=true");
        if (!ledger.ok()) return false;
        ledger_purchases = ledger_revenue = 0;
        int messages = 0;
        for (const json::value& a : ledger->at("accounts").as_array()) {
          for (const json::value& v : a.at("mass_messages").as_array()) {
            const json::object& m = v.as_object();
            if (m.at("state").as_string() != "done") return false;
            if (m.at("purchases_pending").to_number<int64_t>() != 0) return false;
            ++messages;
            ledger_purchases += m.at("purchases").to_number<int64_t>();
            ledger_revenue += m.at("revenue_cents").to_number<int64_t>();
          }
        }
        return messages == 1;
      },
      absl::Seconds(30)));
  ASSERT_GT(ledger_purchases, 0);

  ExpectEveryPurchaseReconciled(s.channel(), *key, campaign.name(), ledger_purchases,
                                ledger_revenue, [&] { return s.herald().Logs(); });
  // The failures were the reconciliation's: the fault rule is used up.
  auto faults = testing::HttpRequest(s.sim().port(), "GET", "/_sim/faults", "", sim_headers);
  ASSERT_TRUE(faults.ok() && faults->status == 200);
  EXPECT_EQ(faults->body.find("/buyers"), std::string::npos) << faults->body;
}

TEST(ReconcileTest, ALastRoundThatFailsThroughItsAttemptsIsTriedAgain) {
  // One reconciliation round and one attempt per job: the round's first failure spends them.
  ExpectReconciledPastBuyersFault(R"({"methods": ["GET"], "path_contains": "/buyers",
      "error_rate": 1, "error_status": 503, "count": 2})",
                                  "1s");
}

TEST(ReconcileTest, AnAccountTheUpstreamDoesNotKnowForAMomentEndsOnlyThatRound) {
  // A 404 naming the account, not the message: the message is not gone, so the next round
  // reads its buyers again.
  ExpectReconciledPastBuyersFault(R"({"methods": ["GET"], "path_contains": "/buyers",
      "error_rate": 1, "error_status": 404, "error_code": "account_not_found", "count": 1})",
                                  "300ms,1s");
}

// How the unreconciled delivery of UnreconciledDeliveryTest ends.
enum class Ending {
  kCompleted,  // the message went out to every fan
  kUnsent,     // the campaign was cancelled while the message was going out: it was unsent
};

// A priced campaign to one account delivered by a herald that never reconciles, while every
// webhook is lost: the ledger has purchases Herald has not heard of. Once nothing of the delivery
// is left in the queue, that herald is killed.
class UnreconciledDeliveryTest : public ::testing::Test {
 protected:
  void Deliver(Ending ending) {
    // Sent at once, or slowly enough (20 fans at 5 a second) to be cancelled part-way.
    const std::string rate = ending == Ending::kCompleted ? "1000" : "5";
    auto stack = testing::HeraldStack::Start(
        {.simulator_args = {"--teams=1", "--accounts_per_team=1", "--fans_per_account=20",
                            StrCat("--delivery_rate=", rate), "--purchase_probability=1",
                            "--fan_behavior=uniform", "--purchase_delay_min=0s",
                            "--purchase_delay_max=100ms"},
         .herald_args = {"--poll_interval=50ms", "--log_level=warn", "--reconcile_schedule="},
         .admin_key = kAdminKey,
         .encryption_key = kEncryptionKey,
         .register_webhooks = true});
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = *std::move(stack);
    auto key = testing::CreateTenant(stack_->channel(), kAdminKey, kTenant);
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *key;
    auto team = testing::CreateTeamWithAccounts(stack_->channel(), key_, kTenant);
    ASSERT_TRUE(team.ok()) << team.status();
    auto paused = testing::HttpRequest(
        stack_->sim().port(), "PUT", StrCat("/api/webhooks/", team->team.webhook_id()),
        R"({"enabled": false})",
        {{"Authorization", "Bearer sim-key-1"}, {"Content-Type", "application/json"}});
    ASSERT_TRUE(paused.ok() && paused->status == 200) << (paused.ok() ? paused->body : "");
    auto created =
        CreatePricedCampaign(stack_->channel(), key_, team->accounts, "Acknowledged late", 400);
    ASSERT_TRUE(created.ok()) << created.status();
    campaign_ = *created;
    auto campaigns = v1::CampaignService::NewStub(stack_->channel());

    // The ledger's one message in `state` with every purchase made, and at least `purchases`.
    const auto ledger_message = [&](std::string_view state, int64_t purchases) {
      auto ledger = testing::ReadLedger(stack_->sim().port(), "all=true");
      if (!ledger.ok()) return false;
      ledger_purchases_ = 0;
      int messages = 0;
      for (const json::value& a : ledger->at("accounts").as_array()) {
        for (const json::value& v : a.at("mass_messages").as_array()) {
          const json::object& m = v.as_object();
          if (m.at("state").as_string() != state) return false;
          if (m.at("purchases_pending").to_number<int64_t>() != 0) return false;
          ledger_purchases_ += m.at("purchases").to_number<int64_t>();
          ++messages;
        }
      }
      return messages == 1 && ledger_purchases_ >= purchases;
    };
    v1::Campaign::State final_state = v1::Campaign::COMPLETED;
    if (ending == Ending::kUnsent) {
      ASSERT_TRUE(
          testing::WaitFor([&] { return ledger_message("sending", 3); }, absl::Seconds(30)));
      v1::CancelCampaignRequest cancel;
      cancel.set_name(campaign_.name());
      v1::CancelCampaignResponse cancelled;
      ASSERT_TRUE(campaigns->CancelCampaign(BearerContext(key_).get(), cancel, &cancelled).ok());
      final_state = v1::Campaign::CANCELLED;
    }
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          v1::GetCampaignRequest get;
          get.set_name(campaign_.name());
          v1::Campaign now;
          return campaigns->GetCampaign(BearerContext(key_).get(), get, &now).ok() &&
                 now.state() == final_state;
        },
        absl::Seconds(30)));
    ASSERT_TRUE(testing::WaitFor(
        [&] { return ledger_message(ending == Ending::kCompleted ? "done" : "canceled", 1); },
        absl::Seconds(30)));
    // No step of the delivery is left to run (a poll step, say, that would find the message
    // over and start its reconciliation): every job record of the queue's shards is gone.
    auto redis = testing::SyncRedis::Connect(stack_->redis().port());
    ASSERT_TRUE(redis.ok()) << redis.status();
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          auto shards = (*redis)->Command({"KEYS", "{hd:s*}:jd"});
          if (!shards.ok()) return false;
          for (const testing::SyncReply& shard : shards->elements) {
            auto jobs = (*redis)->Command({"HLEN", shard.str});
            if (!jobs.ok() || jobs->integer != 0) return false;
          }
          return true;
        },
        absl::Seconds(30)));
    stack_->herald().process().Kill();

    campaign_id_ = testing::ShortId(campaign_.name());
    account_ = testing::ShortId(team->accounts[0]);
    team_id_ = testing::ShortId(team->team.name());
  }

  // A step of the delivery's chain of `kind` (a poll number or a reconciliation page, `index`).
  queue::JobSpec Step(std::string_view kind, int index) const {
    return {
        .id = StrCat("d:", kTenant, ":", campaign_id_, ":", account_, ":g1:", kind, ":", index),
        .kind = std::string(kind),
        .tenant = kTenant,
        .team = StrCat(kTenant, "/", team_id_),
        .account = StrCat(kTenant, "/", account_),
        .payload = StrCat(R"({"tenant":")", kTenant, R"(","campaign":")", campaign_id_,
                          R"(","account":")", account_, R"(","generation":1,"index":)", index, "}"),
        .max_attempts = 3};
  }

  // Starts a herald that reconciles, on the same Redis and simulator, and expects every purchase
  // of the ledger to be found by its reconciliation.
  void ExpectReconciledByANewHerald() {
    auto herald = testing::HeraldProcess::Start(
        {.args = {"serve", "--role=all",
                  StrCat("--upstream_url=http://127.0.0.1:", stack_->sim().port()),
                  "--poll_interval=50ms", "--log_level=warn", "--reconcile_schedule=300ms",
                  "--queue_stats_interval=100ms"},
         .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", kEncryptionKey}},
         .redis_port = stack_->redis().port()});
    ASSERT_TRUE(herald.ok()) << herald.status();
    auto channel =
        grpc::CreateChannel((*herald)->grpc_target(), grpc::InsecureChannelCredentials());
    ExpectEveryPurchaseReconciled(channel, key_, campaign_.name(), ledger_purchases_,
                                  /*gross_cents=*/-1, [&] { return (*herald)->Logs(); });
  }

  static constexpr char kEncryptionKey[] =
      "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
  std::unique_ptr<testing::HeraldStack> stack_;
  std::string key_;
  v1::Campaign campaign_;
  int64_t ledger_purchases_ = 0;
  std::string campaign_id_, account_, team_id_;
};

TEST_F(UnreconciledDeliveryTest, APollStepRunAgainAfterEndingItsDeliveryStartsTheReconciliation) {
  ASSERT_NO_FATAL_FAILURE(Deliver(Ending::kCompleted));
  // As when its ack, which chains the reconciliation, was lost and its lease expired.
  // A new poll number: the steps that ended the delivery are within the queue's window of ids.
  ASSERT_TRUE(
      PlaceJob(stack_->redis().port(), Step("delivery_poll", 7), /*dead_letter=*/false).ok());
  ExpectReconciledByANewHerald();
}

TEST_F(UnreconciledDeliveryTest, APollStepThatDiedOnItsLastAttemptStillStartsTheReconciliation) {
  ASSERT_NO_FATAL_FAILURE(Deliver(Ending::kCompleted));
  ASSERT_TRUE(
      PlaceJob(stack_->redis().port(), Step("delivery_poll", 7), /*dead_letter=*/true).ok());
  ExpectReconciledByANewHerald();
}

TEST_F(UnreconciledDeliveryTest, AReconciliationRoundWhoseJobDiedIsTriedAgain) {
  ASSERT_NO_FATAL_FAILURE(Deliver(Ending::kCompleted));
  // The only round (index 0) died before reading anything: its try again finds the purchases.
  ASSERT_TRUE(
      PlaceJob(stack_->redis().port(), Step("delivery_reconcile", 0), /*dead_letter=*/true).ok());
  ExpectReconciledByANewHerald();
}

TEST_F(UnreconciledDeliveryTest,
       AnUnsendStepRunAgainAfterEndingItsDeliveryStartsTheReconciliation) {
  ASSERT_NO_FATAL_FAILURE(Deliver(Ending::kUnsent));
  // As when the ack of the step that unsent the message, which chains the reconciliation, was
  // lost. A new index: the step that ran is within the queue's window of completed ids.
  ASSERT_TRUE(
      PlaceJob(stack_->redis().port(), Step("delivery_unsend", 7), /*dead_letter=*/false).ok());
  ExpectReconciledByANewHerald();
}

}  // namespace
}  // namespace herald
