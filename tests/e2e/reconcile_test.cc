// Reconciliation finds purchases whose webhooks were lost: those of a message unsent while it was
// still going out (found by the chaos runner: cancelled deliveries were never reconciled), and
// those of a message whose last round failed through all of its attempts (the chaos runner
// again: such a round was given up, and nothing came after it), and those of a message whose
// poll step ran again after completing its delivery (its acknowledgement, which chains the
// reconciliation, was lost to a crash).
#include <chrono>
#include <future>
#include <map>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/queue/queue.h>
#include <herald/redis/client.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/herald_stack.h>
#include <herald/testing/net.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/wait.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>

namespace herald {
namespace {

namespace json = boost::json;
using testing::BearerContext;

constexpr char kAdminKey[] = "admin-key-reconcile";
constexpr char kTenant[] = "unsent";

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

  auto media = testing::CreateMediaAsset(s.channel(), *key, kTenant, v1::MediaAsset::IMAGE,
                                         "https://cdn.example.com/set.jpg");
  ASSERT_TRUE(media.ok()) << media.status();
  const v1::CreateCampaignRequest req =
      testing::CampaignToFans(kTenant, team->accounts, "Unsent midway", 700, *media);
  v1::Campaign campaign;
  auto campaigns = v1::CampaignService::NewStub(s.channel());
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(*key).get(), req, &campaign).ok());

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

  v1::CampaignStats stats;
  const bool reconciled = testing::WaitFor(
      [&] {
        v1::GetCampaignStatsRequest sreq;
        sreq.set_name(StrCat(campaign.name(), "/stats"));
        stats.Clear();
        return v1::AnalyticsService::NewStub(s.channel())
                   ->GetCampaignStats(BearerContext(*key).get(), sreq, &stats)
                   .ok() &&
               stats.purchases() == ledger_purchases;
      },
      absl::Seconds(30));
  EXPECT_TRUE(reconciled) << "Herald has " << stats.purchases() << " purchases, the ledger "
                          << ledger_purchases << "\n"
                          << s.herald().Logs();
  EXPECT_EQ(stats.gross_revenue_cents(), ledger_revenue);
  EXPECT_EQ(stats.reconciled_purchases(), ledger_purchases);  // every one found by reconciling

  v1::GetCampaignRequest get;
  get.set_name(campaign.name());
  v1::Campaign final_state;
  ASSERT_TRUE(campaigns->GetCampaign(BearerContext(*key).get(), get, &final_state).ok());
  EXPECT_EQ(final_state.state(), v1::Campaign::CANCELLED);
}

TEST(ReconcileTest, ALastRoundThatFailsThroughItsAttemptsIsTriedAgain) {
  // One reconciliation round and one attempt per job: the round's first failure spends them.
  auto stack = testing::HeraldStack::Start(
      {.simulator_args = {"--teams=1", "--accounts_per_team=1", "--fans_per_account=20",
                          "--delivery_rate=1000", "--purchase_probability=1",
                          "--fan_behavior=uniform", "--purchase_delay_min=0s",
                          "--purchase_delay_max=100ms"},
       .herald_args = {"--poll_interval=50ms", "--log_level=warn", "--reconcile_schedule=1s",
                       "--max_attempts=1"},
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
  // Every event from now on is lost, and the next two reads of a message's buyers fail.
  auto paused =
      testing::HttpRequest(s.sim().port(), "PUT", StrCat("/api/webhooks/", team->team.webhook_id()),
                           R"({"enabled": false})", sim_headers);
  ASSERT_TRUE(paused.ok() && paused->status == 200) << (paused.ok() ? paused->body : "");
  auto fault = testing::HttpRequest(
      s.sim().port(), "POST", "/_sim/faults",
      R"({"methods": ["GET"], "path_contains": "/buyers", "error_rate": 1, "error_status": 503,
          "count": 2})",
      sim_headers);
  ASSERT_TRUE(fault.ok() && fault->status == 200) << (fault.ok() ? fault->body : "");

  auto media = testing::CreateMediaAsset(s.channel(), *key, kTenant, v1::MediaAsset::IMAGE,
                                         "https://cdn.example.com/set.jpg");
  ASSERT_TRUE(media.ok()) << media.status();
  const v1::CreateCampaignRequest req =
      testing::CampaignToFans(kTenant, team->accounts, "Bought unheard", 500, *media);
  v1::Campaign campaign;
  auto campaigns = v1::CampaignService::NewStub(s.channel());
  ASSERT_TRUE(campaigns->CreateCampaign(BearerContext(*key).get(), req, &campaign).ok());

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

  v1::CampaignStats stats;
  const bool reconciled = testing::WaitFor(
      [&] {
        v1::GetCampaignStatsRequest sreq;
        sreq.set_name(StrCat(campaign.name(), "/stats"));
        stats.Clear();
        return v1::AnalyticsService::NewStub(s.channel())
                   ->GetCampaignStats(BearerContext(*key).get(), sreq, &stats)
                   .ok() &&
               stats.purchases() == ledger_purchases;
      },
      absl::Seconds(30));
  EXPECT_TRUE(reconciled) << "Herald has " << stats.purchases() << " purchases, the ledger "
                          << ledger_purchases << "\n"
                          << s.herald().Logs();
  EXPECT_EQ(stats.gross_revenue_cents(), ledger_revenue);
  EXPECT_EQ(stats.reconciled_purchases(), ledger_purchases);
  // Both failures were the round's: the fault rule is used up.
  auto faults = testing::HttpRequest(s.sim().port(), "GET", "/_sim/faults", "", sim_headers);
  ASSERT_TRUE(faults.ok() && faults->status == 200);
  EXPECT_EQ(faults->body.find("/buyers"), std::string::npos) << faults->body;
}

// Enqueues `spec` through the queue library on a private io_context.
absl::Status EnqueueJob(uint16_t redis_port, queue::JobSpec spec) {
  boost::asio::io_context io;
  redis::Client client(io.get_executor(), {.address = {"127.0.0.1", redis_port}});
  client.Start();
  queue::Queue q(client, {});
  auto enqueue = [&]() -> boost::asio::awaitable<absl::Status> {
    absl::StatusOr<queue::EnqueueResult> r = co_await q.Enqueue(std::move(spec));
    if (!r.ok()) co_return r.status();
    if (*r != queue::EnqueueResult::kEnqueued) co_return absl::InternalError("not enqueued");
    co_return absl::OkStatus();
  };
  auto done = boost::asio::co_spawn(io, enqueue(), boost::asio::use_future);
  while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
  const absl::Status status = done.get();
  client.Stop();
  io.run();
  return status;
}

TEST(ReconcileTest, APollStepRunAgainAfterItsDeliveryCompletedStillStartsTheReconciliation) {
  // A first herald that never reconciles completes the delivery; webhooks are lost throughout.
  const std::string encryption_key(64, 'e');
  auto stack = testing::HeraldStack::Start(
      {.simulator_args = {"--teams=1", "--accounts_per_team=1", "--fans_per_account=20",
                          "--delivery_rate=1000", "--purchase_probability=1",
                          "--fan_behavior=uniform", "--purchase_delay_min=0s",
                          "--purchase_delay_max=100ms"},
       .herald_args = {"--poll_interval=50ms", "--log_level=warn", "--reconcile_schedule="},
       .admin_key = kAdminKey,
       .encryption_key = encryption_key,
       .register_webhooks = true});
  ASSERT_TRUE(stack.ok()) << stack.status();
  testing::HeraldStack& s = **stack;
  auto key = testing::CreateTenant(s.channel(), kAdminKey, kTenant);
  ASSERT_TRUE(key.ok()) << key.status();
  auto team = testing::CreateTeamWithAccounts(s.channel(), *key, kTenant);
  ASSERT_TRUE(team.ok()) << team.status();
  auto paused = testing::HttpRequest(
      s.sim().port(), "PUT", StrCat("/api/webhooks/", team->team.webhook_id()),
      R"({"enabled": false})",
      {{"Authorization", "Bearer sim-key-1"}, {"Content-Type", "application/json"}});
  ASSERT_TRUE(paused.ok() && paused->status == 200) << (paused.ok() ? paused->body : "");
  auto media = testing::CreateMediaAsset(s.channel(), *key, kTenant, v1::MediaAsset::IMAGE,
                                         "https://cdn.example.com/set.jpg");
  ASSERT_TRUE(media.ok()) << media.status();
  const v1::CreateCampaignRequest req =
      testing::CampaignToFans(kTenant, team->accounts, "Acknowledged late", 400, *media);
  v1::Campaign campaign;
  ASSERT_TRUE(v1::CampaignService::NewStub(s.channel())
                  ->CreateCampaign(BearerContext(*key).get(), req, &campaign)
                  .ok());
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        v1::GetCampaignRequest get;
        get.set_name(campaign.name());
        v1::Campaign now;
        return v1::CampaignService::NewStub(s.channel())
                   ->GetCampaign(BearerContext(*key).get(), get, &now)
                   .ok() &&
               now.state() == v1::Campaign::COMPLETED;
      },
      absl::Seconds(30)));
  int64_t ledger_purchases = 0;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto ledger = testing::ReadLedger(s.sim().port(), "all=true");
        if (!ledger.ok()) return false;
        ledger_purchases = 0;
        for (const json::value& a : ledger->at("accounts").as_array()) {
          for (const json::value& m : a.at("mass_messages").as_array()) {
            if (m.at("purchases_pending").to_number<int64_t>() != 0) return false;
            ledger_purchases += m.at("purchases").to_number<int64_t>();
          }
        }
        return true;
      },
      absl::Seconds(30)));
  ASSERT_GT(ledger_purchases, 0);

  // That herald dies; one that reconciles takes over, and the poll step that completed the
  // delivery runs again, as it does when its acknowledgement was lost.
  s.herald().process().Kill();
  auto herald = testing::HeraldProcess::Start(
      {.args = {"serve", "--role=all", StrCat("--upstream_url=http://127.0.0.1:", s.sim().port()),
                "--poll_interval=50ms", "--log_level=warn", "--reconcile_schedule=300ms"},
       .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", encryption_key}},
       .redis_port = s.redis().port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  const std::string campaign_id = testing::ShortId(campaign.name());
  const std::string account = testing::ShortId(team->accounts[0]);
  const std::string team_id = testing::ShortId(team->team.name());
  const std::string payload = StrCat(R"({"tenant":")", kTenant, R"(","campaign":")", campaign_id,
                                     R"(","account":")", account, R"(","generation":1,"index":7})");
  ASSERT_TRUE(EnqueueJob(s.redis().port(), {.id = StrCat("d:", kTenant, ":", campaign_id, ":",
                                                         account, ":g1:delivery_poll:7"),
                                            .kind = "delivery_poll",
                                            .tenant = kTenant,
                                            .team = StrCat(kTenant, "/", team_id),
                                            .account = StrCat(kTenant, "/", account),
                                            .payload = payload,
                                            .max_attempts = 3})
                  .ok());

  auto channel = grpc::CreateChannel((*herald)->grpc_target(), grpc::InsecureChannelCredentials());
  v1::CampaignStats stats;
  const bool reconciled = testing::WaitFor(
      [&] {
        v1::GetCampaignStatsRequest sreq;
        sreq.set_name(StrCat(campaign.name(), "/stats"));
        stats.Clear();
        return v1::AnalyticsService::NewStub(channel)
                   ->GetCampaignStats(BearerContext(*key).get(), sreq, &stats)
                   .ok() &&
               stats.purchases() == ledger_purchases;
      },
      absl::Seconds(30));
  EXPECT_TRUE(reconciled) << "Herald has " << stats.purchases() << " purchases, the ledger "
                          << ledger_purchases << "\n"
                          << (*herald)->Logs();
  EXPECT_EQ(stats.reconciled_purchases(), ledger_purchases);
}

}  // namespace
}  // namespace herald
