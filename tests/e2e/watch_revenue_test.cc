// WatchCampaign carries revenue end to end: the real herald binary (all roles, webhooks
// registered), a real redis-server and the upstream simulator, where every fan buys the message
// 3-5 s after receiving it, so the purchases keep arriving after the campaign is final.
#include <algorithm>
#include <optional>
#include <vector>

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_stack_suite.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>

namespace herald {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::BearerContext;
using testing::HeraldStack;

constexpr char kAdminKey[] = "admin-secret-for-watch-revenue-tests";
constexpr int kAccounts = 3;
constexpr int64_t kPriceCents = 1500;
constexpr int64_t kNetCents = 1200;  // the price less the platform's 20%

bool IsFinal(const v1::Campaign& c) {
  switch (c.state()) {
    case v1::Campaign::COMPLETED:
    case v1::Campaign::PARTIALLY_FAILED:
    case v1::Campaign::FAILED:
    case v1::Campaign::CANCELLED:
    case v1::Campaign::MISSED:
      return true;
    default:
      return false;
  }
}

class WatchRevenueTest : public testing::HeraldStackSuite<WatchRevenueTest> {
 public:
  static HeraldStack::Options StackOptions() {
    // Delivery takes milliseconds and Herald sees it finish within a poll (50 ms); every
    // recipient buys 3-5 s after delivery, well after the campaign is final.
    return {.simulator_args = {"--teams=1", StrCat("--accounts_per_team=", kAccounts),
                               "--fans_per_account=20", "--delivery_rate=2000",
                               "--rate_limit_per_minute=100000", "--purchase_probability=1",
                               "--fan_behavior=uniform", "--purchase_delay_min=3s",
                               "--purchase_delay_max=5s", "--webhook_retry_base=50ms"},
            .herald_args = {"--poll_interval=50ms", "--api_watch_poll=5ms", "--log_level=warn"},
            .admin_key = kAdminKey,
            .encryption_key = std::string(64, 'c'),
            .register_webhooks = true};
  }

 protected:
  // A tenant with a team on the simulator's team (its webhook registered) and its accounts;
  // returns the tenant's key.
  static std::string NewTenantWithAccounts(const std::string& tenant,
                                           std::vector<std::string>* accounts) {
    auto key = testing::CreateTenant(stack_->channel(), kAdminKey, tenant);
    EXPECT_TRUE(key.ok()) << key.status();
    if (!key.ok()) return "";
    auto team = testing::CreateTeamWithAccounts(stack_->channel(), *key, tenant);
    EXPECT_TRUE(team.ok()) << team.status();
    if (!team.ok()) return *key;
    EXPECT_TRUE(team->team.webhook_id().starts_with("wh_")) << team->team.webhook_error();
    *accounts = team->accounts;
    return *key;
  }

  // A priced campaign to every account's fans, sent now; returns its name.
  static std::string SendPriced(const std::string& tenant, const std::string& key,
                                const std::vector<std::string>& accounts) {
    auto media = testing::CreateMediaAsset(stack_->channel(), key, tenant, v1::MediaAsset::IMAGE,
                                           "https://cdn.example.com/set.jpg");
    EXPECT_TRUE(media.ok()) << media.status();
    const v1::CreateCampaignRequest req =
        testing::CampaignToFans(tenant, accounts, "A new set", kPriceCents, media.value_or(""));
    v1::Campaign created;
    grpc::Status s = v1::CampaignService::NewStub(stack_->channel())
                         ->CreateCampaign(BearerContext(key).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message() << stack_->herald().Logs();
    return created.name();
  }
};

TEST_F(WatchRevenueTest, FollowRevenueCarriesPurchasesPastTheFinalStateUntilCancelled) {
  std::vector<std::string> accounts;
  const std::string key = NewTenantWithAccounts("agency", &accounts);
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kAccounts));
  const std::string name = SendPriced("agency", key, accounts);
  ASSERT_FALSE(name.empty());

  v1::WatchCampaignRequest req;
  req.set_name(name);
  req.set_follow_revenue(true);
  auto ctx = BearerContext(key, absl::Seconds(60));
  auto reader = v1::CampaignService::NewStub(stack_->channel())->WatchCampaign(ctx.get(), req);
  std::vector<v1::WatchCampaignResponse> changes;
  std::optional<size_t> final_at;  // index of the first final campaign
  v1::WatchCampaignResponse change;
  bool cancelled = false;
  while (reader->Read(&change)) {
    changes.push_back(change);
    if (change.has_campaign() && IsFinal(change.campaign()) && !final_at) {
      final_at = changes.size() - 1;
    }
    // The campaign is final and every recipient's purchase has arrived, its transaction (the
    // net) included: nothing more will change, and only the client ends a follow_revenue stream.
    if (!cancelled && final_at && change.has_stats() && change.stats().recipients() > 0 &&
        change.stats().purchases() == change.stats().recipients() &&
        change.stats().net_revenue_cents() == change.stats().purchases() * kNetCents) {
      ctx->TryCancel();
      cancelled = true;
    }
  }
  const grpc::Status status = reader->Finish();
  ASSERT_TRUE(cancelled) << "the stream ended by itself: " << status.error_message() << "\n"
                         << stack_->herald().Logs();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED) << status.error_message();
  ASSERT_TRUE(final_at.has_value());
  EXPECT_EQ(changes[*final_at].campaign().state(), v1::Campaign::COMPLETED);

  // The first batch: every delivery, the campaign, then its figures.
  size_t first = 0;
  while (first < changes.size() && changes[first].has_delivery()) ++first;
  EXPECT_EQ(first, static_cast<size_t>(kAccounts));
  ASSERT_LT(first + 1, changes.size());
  EXPECT_TRUE(changes[first].has_campaign());
  ASSERT_TRUE(changes[first + 1].has_stats());
  EXPECT_EQ(changes[first + 1].stats().name(), StrCat(name, "/stats"));

  // Figures are sent only when they changed, and purchases and revenue only grow.
  std::vector<v1::CampaignStats> stats;
  std::vector<size_t> stats_at;
  for (size_t i = 0; i < changes.size(); ++i) {
    if (!changes[i].has_stats()) continue;
    if (!stats.empty()) {
      EXPECT_FALSE(MessageDifferencer::Equals(stats.back(), changes[i].stats())) << i;
      EXPECT_GE(changes[i].stats().purchases(), stats.back().purchases()) << i;
      EXPECT_GE(changes[i].stats().gross_revenue_cents(), stats.back().gross_revenue_cents()) << i;
    }
    stats.push_back(changes[i].stats());
    stats_at.push_back(i);
  }
  ASSERT_GE(stats.size(), 2u);
  EXPECT_GT(stats.back().gross_revenue_cents(), stats.front().gross_revenue_cents());

  // Purchases went on arriving after the final campaign, on the same stream.
  int64_t purchases_at_final = 0;
  for (size_t i = 0; i < stats.size() && stats_at[i] < *final_at; ++i) {
    purchases_at_final = stats[i].purchases();
  }
  EXPECT_LT(purchases_at_final, stats.back().purchases());
  EXPECT_GT(stats_at.back(), *final_at);

  // The last figures: every recipient bought once, to the cent.
  const v1::CampaignStats& last = stats.back();
  EXPECT_EQ(last.recipients(), changes[*final_at].campaign().delivery_counts().recipients());
  EXPECT_EQ(last.purchases(), last.recipients());
  EXPECT_EQ(last.gross_revenue_cents(), last.purchases() * kPriceCents);
  EXPECT_EQ(last.net_revenue_cents(), last.purchases() * kNetCents);
  EXPECT_EQ(last.accounts_size(), kAccounts);

  // Without follow_revenue, a watch of the final campaign ends by itself after the first batch,
  // its figures included.
  v1::WatchCampaignRequest plain;
  plain.set_name(name);
  auto plain_ctx = BearerContext(key);
  auto plain_reader =
      v1::CampaignService::NewStub(stack_->channel())->WatchCampaign(plain_ctx.get(), plain);
  std::vector<v1::WatchCampaignResponse> ended;
  while (plain_reader->Read(&change)) ended.push_back(change);
  const grpc::Status plain_status = plain_reader->Finish();
  EXPECT_TRUE(plain_status.ok()) << plain_status.error_message();
  ASSERT_EQ(ended.size(), static_cast<size_t>(kAccounts) + 2);
  EXPECT_EQ(ended[kAccounts].campaign().state(), v1::Campaign::COMPLETED);
  ASSERT_TRUE(ended.back().has_stats());
  EXPECT_EQ(ended.back().stats().purchases(), last.purchases());
  EXPECT_EQ(ended.back().stats().gross_revenue_cents(), last.gross_revenue_cents());
}

// A watcher that stops reading while its campaign keeps changing is sent the changes merged
// once it reads again: what waited for it is the latest campaign, not every revision since.
TEST_F(WatchRevenueTest, AWatcherThatStopsReadingGetsTheChangesMergedAtTheirLatest) {
  std::vector<std::string> accounts;
  const std::string key = NewTenantWithAccounts("slowwatch", &accounts);
  ASSERT_FALSE(accounts.empty());
  v1::CreateCampaignRequest create =
      testing::CampaignToFans("slowwatch", {accounts.front()}, "draft", 0, "");
  create.mutable_campaign()->mutable_content()->clear_media();
  create.mutable_campaign()->set_save_as_draft(true);
  auto campaigns = v1::CampaignService::NewStub(stack_->channel());
  v1::Campaign draft;
  grpc::Status s = campaigns->CreateCampaign(BearerContext(key).get(), create, &draft);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // Once the client stops reading, a few campaign messages (each carrying 4 KB of text) fill
  // its receive window and the server's writes wait.
  auto slow_channel = testing::SmallWindowChannel(stack_->herald().grpc_target());
  v1::WatchCampaignRequest watch;
  watch.set_name(draft.name());
  auto ctx = BearerContext(key, absl::Seconds(120));
  auto reader = v1::CampaignService::NewStub(slow_channel)->WatchCampaign(ctx.get(), watch);
  v1::WatchCampaignResponse change;
  ASSERT_TRUE(reader->Read(&change));

  // Revisions for a second or more, read by a poll every 5 ms, while the client reads nothing.
  constexpr int kRevisions = 1000;
  const auto text = [](int revision) { return StrCat(std::string(4000, 'x'), " #", revision); };
  int64_t final_revision = 0;
  for (int i = 1; i <= kRevisions; ++i) {
    v1::UpdateCampaignRequest update;
    update.mutable_campaign()->set_name(draft.name());
    update.mutable_campaign()->mutable_content()->set_text(text(i));
    update.mutable_update_mask()->add_paths("content.text");
    v1::Campaign updated;
    s = campaigns->UpdateCampaign(BearerContext(key).get(), update, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_GT(updated.revision(), final_revision);
    final_revision = updated.revision();
  }

  // Reading again: the revisions that waited, ending with the last, arrive merged.
  int campaigns_read = 0;
  int64_t last_revision = 0;
  while (last_revision < final_revision && reader->Read(&change)) {
    if (!change.has_campaign()) continue;
    ++campaigns_read;
    EXPECT_GT(change.campaign().revision(), last_revision);
    last_revision = change.campaign().revision();
  }
  ctx->TryCancel();
  reader->Finish();
  ASSERT_EQ(last_revision, final_revision) << stack_->herald().Logs();
  EXPECT_EQ(change.campaign().content().text(), text(kRevisions));
  EXPECT_LT(campaigns_read, 50);
}

}  // namespace
}  // namespace herald
