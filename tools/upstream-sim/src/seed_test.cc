#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/upstream_sim/seed.h>

namespace herald::upstream_sim {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'750'000'000);

TEST(SeedTest, QuickSeedIsDeterministic) {
  const QuickSeed quick{.teams = 2,
                        .accounts_per_team = 3,
                        .fans_per_account = 200,
                        .lists_per_account = 2,
                        .seed = 42};
  auto a = BuildWorld(MakeQuickSeed(quick), kNow);
  auto b = BuildWorld(MakeQuickSeed(quick), kNow);
  ASSERT_EQ(a->accounts().size(), 6u);
  ASSERT_EQ(a->teams().size(), 2u);
  EXPECT_EQ(a->teams()[0]->id(), "team-1");
  EXPECT_EQ(a->teams()[1]->api_keys(), std::vector<std::string>{"sim-key-2"});
  EXPECT_EQ(a->TeamForKey("sim-key-2"), a->teams()[1].get());
  for (size_t i = 0; i < a->accounts().size(); ++i) {
    Account& x = *a->accounts()[i];
    Account& y = *b->accounts()[i];
    EXPECT_EQ(x.id(), y.id());
    EXPECT_TRUE(x.id().starts_with("acct_"));
    EXPECT_EQ(x.id().size(), 37u);
    absl::MutexLock lx(&x.mu);
    absl::MutexLock ly(&y.mu);
    ASSERT_EQ(x.fans.size(), 200u);
    for (size_t f = 0; f < x.fans.size(); ++f) {
      EXPECT_EQ(x.fans[f].id, y.fans[f].id);
      EXPECT_EQ(x.fans[f].TotalSpend(), y.fans[f].TotalSpend());
      if (f > 0) {
        EXPECT_LT(x.fans[f - 1].id, x.fans[f].id);
      }
    }
    ASSERT_EQ(x.lists.size(), 2u);
    EXPECT_EQ(x.lists[0].name, "VIP");
    EXPECT_EQ(x.lists[0].members.size(), 20u);
    EXPECT_EQ(x.lists[0].members, y.lists[0].members);
  }
  // A different seed gives different accounts.
  auto c = BuildWorld(MakeQuickSeed({.teams = 2, .accounts_per_team = 3, .seed = 43}), kNow);
  EXPECT_NE(c->accounts()[0]->id(), a->accounts()[0]->id());
}

TEST(SeedTest, GeneratedFansHaveSpendHistoriesAndAMeanPropensityOfOne) {
  auto world = BuildWorld(MakeQuickSeed({.accounts_per_team = 1, .fans_per_account = 5000}), kNow);
  Account& a = *world->accounts()[0];
  absl::MutexLock lock(&a.mu);
  double propensity = 0;
  int active = 0;
  int64_t spend = 0;
  for (const Fan& f : a.fans) {
    propensity += f.propensity;
    active += f.active();
    spend += f.TotalSpend();
  }
  EXPECT_NEAR(propensity / 5000, 100, 2);
  EXPECT_NEAR(active / 5000.0, 0.8, 0.03);
  EXPECT_GT(spend, 0);
}

TEST(SeedTest, ParsesAnExactSeedFile) {
  auto spec = ParseSeedJson(R"({
    "seed": 7,
    "teams": [{
      "id": "agency-a", "api_keys": ["key-a", "key-a2"], "rate_limit_per_minute": 5,
      "credits": 100,
      "accounts": [{
        "id": "acct_00000000000000000000000000000001", "username": "alice",
        "fans": [{"id": 1001, "spend_messages": 12.5, "propensity": 2},
                 {"id": 1002, "active": false}, 1003],
        "lists": [{"id": 55, "name": "VIP", "users": [1001, 1003]}, {"name": "Some", "size": 2}]
      }, {"fans": 10}]
    }]})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->seed, 7u);
  auto world = BuildWorld(*spec, kNow);
  ASSERT_EQ(world->accounts().size(), 2u);
  Team* team = world->TeamForKey("key-a2");
  ASSERT_NE(team, nullptr);
  EXPECT_EQ(team->limit_per_minute(), 5);
  EXPECT_EQ(team->balance(), 100);
  Account* alice = world->FindAccount("acct_00000000000000000000000000000001");
  ASSERT_NE(alice, nullptr);
  absl::MutexLock lock(&alice->mu);
  ASSERT_EQ(alice->fans.size(), 3u);
  EXPECT_EQ(alice->fans[0].spend_messages, 1250u);
  EXPECT_EQ(alice->fans[0].propensity, 200);
  EXPECT_FALSE(alice->fans[1].active());
  ASSERT_EQ(alice->lists.size(), 2u);
  EXPECT_EQ(alice->lists[0].id, 55);
  EXPECT_EQ(alice->lists[0].members, (std::vector<uint32_t>{0, 2}));
  EXPECT_EQ(alice->lists[1].members.size(), 2u);
  EXPECT_GT(alice->lists[1].id, 55);  // generated ids never collide with exact ones
}

TEST(SeedTest, RejectsInconsistentSeeds) {
  auto error = [](std::string_view json) {
    auto spec = ParseSeedJson(json);
    return spec.ok() ? std::string("ok") : std::string(spec.status().message());
  };
  EXPECT_THAT(error(R"({"teams":[]})"), HasSubstr("at least one team"));
  EXPECT_THAT(error(R"({"teams":[{"id":"a","api_keys":["k"]},{"id":"b","api_keys":["k"]}]})"),
              HasSubstr("API key used by two teams"));
  EXPECT_THAT(error(R"({"teams":[{"id":"a","api_keys":["k"],"accounts":[{"id":"bad"}]}]})"),
              HasSubstr("acct_"));
  EXPECT_THAT(error(R"({"teams":[{"id":"a","api_keys":["k"],"colour":1}]})"),
              HasSubstr("unknown key 'colour'"));
  EXPECT_THAT(error(R"({"teams":[{"id":"a","api_keys":["k"],"rate_limit_per_minute":0}]})"),
              HasSubstr("rate_limit_per_minute"));
  EXPECT_THAT(
      error(
          R"({"teams":[{"id":"a","api_keys":["k"],"accounts":[{"fans":[1],"lists":[{"name":"L","users":[2]}]}]}]})"),
      HasSubstr("not one of the account's fans"));
  EXPECT_THAT(error("{"), HasSubstr("not valid JSON"));
  EXPECT_THAT(error(R"({"teams":[{"id":"a","api_keys":["k"],"accounts":[{"lists":[{"name":")" +
                    std::string(65, 'x') + R"("}]}]}]})"),
              HasSubstr("1 to 64"));
}

}  // namespace
}  // namespace herald::upstream_sim
