// The typed Store over the in-memory RecordStore: kinds, messages, compare-and-set updates,
// API key lookup, campaign paging, deliveries and revisions, undecodable documents.
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/store/record_store.h>
#include <herald/store/store.h>

namespace herald::store {
namespace {

namespace asio = boost::asio;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;

// Runs `op` to completion on an io_context of its own, so that it may also be called from
// inside a mutation that another Run is executing (a concurrent writer).
template <typename T>
T Await(asio::awaitable<T> op) {
  asio::io_context ioc;
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T value) {
    error = e;
    out = std::move(value);
  });
  ioc.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

Team MakeTeam(std::string tenant, std::string id, std::string name = "Team") {
  Team t;
  t.tenant = std::move(tenant);
  t.id = std::move(id);
  t.display_name = std::move(name);
  t.create_time_ms = 1'700'000'000'000;
  return t;
}

Campaign MakeCampaign(std::string tenant, std::string id, int64_t create_time_ms) {
  Campaign c;
  c.tenant = std::move(tenant);
  c.id = std::move(id);
  c.display_name = "Campaign " + c.id;
  c.content.text = "hello";
  c.targets.push_back(AccountTarget{.account = "acct_1"});
  c.create_time_ms = create_time_ms;
  return c;
}

Delivery MakeDelivery(std::string account) {
  Delivery d;
  d.account = std::move(account);
  return d;
}

template <typename T>
std::vector<std::string> Ids(const std::vector<T>& records) {
  std::vector<std::string> ids;
  for (const T& r : records) ids.push_back(r.id);
  return ids;
}

absl::Status Ok() { return absl::OkStatus(); }

class StoreTest : public ::testing::Test {
 protected:
  template <typename T>
  T MustCreate(T record, std::string request_id = "") {
    auto created = Await(store_.Create(std::move(record), std::move(request_id)));
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->value : T{};
  }

  int64_t CampaignRevision(std::string tenant, std::string campaign) {
    auto revision = Await(store_.CampaignRevision(std::move(tenant), std::move(campaign)));
    EXPECT_TRUE(revision.ok()) << revision.status();
    return revision.ok() ? *revision : -1;
  }

  std::unique_ptr<RecordStore> records_ = MakeMemoryRecordStore();
  Store store_{*records_};
};

// ---------------------------------------------------------------------------------------------
// Create, Get, List, Delete

TEST_F(StoreTest, TeamsAreCreatedReadListedAndDeleted) {
  Team t2 = MakeTeam("acme", "t2", "Second");
  t2.rate_limit_per_minute = 250;
  t2.sealed_api_key = "sealed";
  auto created = Await(store_.Create(t2, "req-2"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(created->replayed);
  EXPECT_EQ(created->value.display_name, "Second");
  MustCreate(MakeTeam("acme", "t1", "First"));
  MustCreate(MakeTeam("globex", "t3", "Elsewhere"));

  auto got = Await(store_.Get<Team>("acme", "t2"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->tenant, "acme");
  EXPECT_EQ(got->display_name, "Second");
  EXPECT_EQ(got->rate_limit_per_minute, 250);
  EXPECT_EQ(got->sealed_api_key, "sealed");
  EXPECT_EQ(got->create_time_ms, 1'700'000'000'000);

  auto listed = Await(store_.List<Team>("acme"));
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(Ids(*listed), ElementsAre("t1", "t2"));

  auto deleted = Await(store_.Delete<Team>("acme", "t2"));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(*deleted);
  EXPECT_FALSE(*Await(store_.Delete<Team>("acme", "t2")));
  EXPECT_TRUE(absl::IsNotFound(Await(store_.Get<Team>("acme", "t2")).status()));
  EXPECT_THAT(Ids(*Await(store_.List<Team>("acme"))), ElementsAre("t1"));
  EXPECT_THAT(Ids(*Await(store_.List<Team>("globex"))), ElementsAre("t3"));
  EXPECT_THAT(*Await(store_.List<Team>("nobody")), IsEmpty());
}

TEST_F(StoreTest, CampaignsKeepEveryField) {
  Campaign c = MakeCampaign("acme", "c1", 1000);
  c.content.media = {"m1", "m2"};
  c.content.previews = {"m1"};
  c.content.price_cents = 499;
  c.targets.push_back(AccountTarget{.account = "acct_2", .fan_ids = {7, 8}, .segment = "s1"});
  c.phase = CampaignPhase::kScheduled;
  c.send_time_ms = 5000;
  MustCreate(c);

  auto got = Await(store_.Get<Campaign>("acme", "c1"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->content.media, c.content.media);
  EXPECT_EQ(got->content.previews, c.content.previews);
  EXPECT_EQ(got->content.price_cents, 499);
  ASSERT_EQ(got->targets.size(), 2u);
  EXPECT_EQ(got->targets[1].fan_ids, (std::vector<int64_t>{7, 8}));
  EXPECT_EQ(got->targets[1].segment, "s1");
  EXPECT_EQ(got->phase, CampaignPhase::kScheduled);
  EXPECT_EQ(got->send_time_ms, 5000);
  EXPECT_THAT(Ids(*Await(store_.List<Campaign>("acme"))), ElementsAre("c1"));
}

TEST_F(StoreTest, TenantsLiveInThePlatformTable) {
  MustCreate(Tenant{.id = "acme", .display_name = "Acme"});
  auto got = Await(store_.Get<Tenant>("", "acme"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->display_name, "Acme");
  EXPECT_THAT(Ids(*Await(store_.List<Tenant>(""))), ElementsAre("acme"));
}

TEST_F(StoreTest, CreateWithARepeatedRequestIdReturnsTheFirstRecord) {
  MustCreate(MakeTeam("acme", "t1", "First"), "req-1");
  auto again = Await(store_.Create(MakeTeam("acme", "t2", "Second"), "req-1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->value.id, "t1");
  EXPECT_EQ(again->value.display_name, "First");
  EXPECT_TRUE(absl::IsNotFound(Await(store_.Get<Team>("acme", "t2")).status()));
}

TEST_F(StoreTest, ReplayOfACreateWhoseRecordWasDeletedIsNotFound) {
  MustCreate(MakeTeam("acme", "t1"), "req-1");
  ASSERT_TRUE(*Await(store_.Delete<Team>("acme", "t1")));
  auto again = Await(store_.Create(MakeTeam("acme", "t1"), "req-1"));
  EXPECT_TRUE(absl::IsNotFound(again.status())) << again.status();
  EXPECT_THAT(again.status().message(), HasSubstr("team"));
}

TEST_F(StoreTest, ATakenIdIsAlreadyExistsNamingTheKindAndId) {
  MustCreate(MakeTeam("acme", "t1", "First"), "req-1");
  auto team = Await(store_.Create(MakeTeam("acme", "t1", "Second"), "req-2"));
  EXPECT_TRUE(absl::IsAlreadyExists(team.status())) << team.status();
  EXPECT_EQ(team.status().message(), "team 't1' already exists");
  EXPECT_EQ(Await(store_.Get<Team>("acme", "t1"))->display_name, "First");

  MustCreate(MakeCampaign("acme", "c1", 1000));
  auto campaign = Await(store_.Create(MakeCampaign("acme", "c1", 2000), ""));
  EXPECT_TRUE(absl::IsAlreadyExists(campaign.status())) << campaign.status();
  EXPECT_EQ(campaign.status().message(), "campaign 'c1' already exists");
}

TEST_F(StoreTest, MissingRecordsAreNotFoundNamingTheKindAndId) {
  auto team = Await(store_.Get<Team>("acme", "t9"));
  EXPECT_TRUE(absl::IsNotFound(team.status())) << team.status();
  EXPECT_EQ(team.status().message(), "team 't9' not found");

  auto campaign = Await(store_.Get<Campaign>("acme", "c9"));
  EXPECT_TRUE(absl::IsNotFound(campaign.status())) << campaign.status();
  EXPECT_EQ(campaign.status().message(), "campaign 'c9' not found");

  auto key = Await(store_.Get<ApiKey>("acme", "k9"));
  EXPECT_EQ(key.status().message(), "API key 'k9' not found");

  bool called = false;
  auto updated = Await(store_.Update<Team>("acme", "t9", [&](Team&) {
    called = true;
    return Ok();
  }));
  EXPECT_TRUE(absl::IsNotFound(updated.status())) << updated.status();
  EXPECT_EQ(updated.status().message(), "team 't9' not found");
  EXPECT_FALSE(called);

  // A record of the same id in another tenant is not this one.
  MustCreate(MakeTeam("globex", "t9"));
  EXPECT_TRUE(absl::IsNotFound(Await(store_.Get<Team>("acme", "t9")).status()));
}

// ---------------------------------------------------------------------------------------------
// Update

TEST_F(StoreTest, UpdateAppliesTheMutation) {
  MustCreate(MakeTeam("acme", "t1", "Before"));
  auto updated = Await(store_.Update<Team>("acme", "t1", [](Team& t) {
    t.display_name = "After";
    t.paused = true;
    return Ok();
  }));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->display_name, "After");
  auto got = Await(store_.Get<Team>("acme", "t1"));
  EXPECT_EQ(got->display_name, "After");
  EXPECT_TRUE(got->paused);
}

TEST_F(StoreTest, UpdateRetriesOnTopOfAConcurrentWrite) {
  MustCreate(MakeTeam("acme", "t1", "Before"));
  int calls = 0;
  auto updated = Await(store_.Update<Team>("acme", "t1", [&](Team& t) {
    if (++calls == 1) {
      // Another writer changes the team between this update's read and its write.
      auto other = Await(store_.Update<Team>("acme", "t1", [](Team& o) {
        o.paused = true;
        o.pause_reason = "upstream down";
        return Ok();
      }));
      EXPECT_TRUE(other.ok()) << other.status();
    }
    t.display_name = "Renamed";
    return Ok();
  }));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(calls, 2);  // the first write lost; the second applied to the fresh read

  auto got = Await(store_.Get<Team>("acme", "t1"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->display_name, "Renamed");
  EXPECT_TRUE(got->paused);
  EXPECT_EQ(got->pause_reason, "upstream down");
  EXPECT_EQ(updated->display_name, "Renamed");
  EXPECT_TRUE(updated->paused);
}

TEST_F(StoreTest, UpdateThatAlwaysLosesIsAbortedNamingTheKindAndId) {
  MustCreate(MakeTeam("acme", "t1", "Before"));
  int calls = 0;
  auto updated = Await(store_.Update<Team>("acme", "t1", [&](Team& t) {
    ++calls;
    auto other = Await(store_.Update<Team>("acme", "t1", [](Team& o) {
      ++o.rate_limit_per_minute;
      return Ok();
    }));
    EXPECT_TRUE(other.ok()) << other.status();
    t.display_name = "Never";
    return Ok();
  }));
  EXPECT_TRUE(absl::IsAborted(updated.status())) << updated.status();
  EXPECT_THAT(updated.status().message(), HasSubstr("team 't1'"));
  auto got = Await(store_.Get<Team>("acme", "t1"));
  EXPECT_EQ(got->display_name, "Before");
  EXPECT_EQ(got->rate_limit_per_minute, 1000 + calls);  // every concurrent write landed
  EXPECT_GT(calls, 1);
}

TEST_F(StoreTest, AMutationThatFailsWritesNothing) {
  MustCreate(MakeCampaign("acme", "c1", 1000));
  const int64_t revision = CampaignRevision("acme", "c1");
  auto updated = Await(store_.Update<Campaign>("acme", "c1", [](Campaign& c) {
    c.display_name = "Changed";
    return absl::FailedPreconditionError("campaign 'c1' is running");
  }));
  EXPECT_TRUE(absl::IsFailedPrecondition(updated.status())) << updated.status();
  EXPECT_EQ(updated.status().message(), "campaign 'c1' is running");
  EXPECT_EQ(Await(store_.Get<Campaign>("acme", "c1"))->display_name, "Campaign c1");
  EXPECT_EQ(CampaignRevision("acme", "c1"), revision);
}

TEST_F(StoreTest, CampaignUpdatesBumpTheCampaignRevisionOnlyWhenSomethingChanged) {
  MustCreate(MakeCampaign("acme", "c1", 1000));
  MustCreate(MakeCampaign("acme", "c2", 2000));
  const int64_t before = CampaignRevision("acme", "c1");

  ASSERT_TRUE(Await(store_.Update<Campaign>("acme", "c1", [](Campaign& c) {
                c.phase = CampaignPhase::kPaused;
                return Ok();
              })).ok());
  EXPECT_EQ(CampaignRevision("acme", "c1"), before + 1);

  ASSERT_TRUE(Await(store_.Update<Campaign>("acme", "c1", [](Campaign&) { return Ok(); })).ok());
  EXPECT_EQ(CampaignRevision("acme", "c1"), before + 1);
  EXPECT_EQ(CampaignRevision("acme", "c2"), 0);

  // Teams have no revision: updating one bumps no campaign's.
  MustCreate(MakeTeam("acme", "c1"));
  ASSERT_TRUE(Await(store_.Update<Team>("acme", "c1", [](Team& t) {
                t.paused = true;
                return Ok();
              })).ok());
  EXPECT_EQ(CampaignRevision("acme", "c1"), before + 1);
}

// ---------------------------------------------------------------------------------------------
// API keys

TEST_F(StoreTest, FindApiKeyLooksUpTheSecretHash) {
  ApiKey key{.tenant = "acme",
             .id = "k1",
             .display_name = "ci",
             .secret_prefix = "hk_ab",
             .secret_sha256 = "aaaa"};
  MustCreate(key);
  MustCreate(ApiKey{.tenant = "globex", .id = "k1", .secret_sha256 = "bbbb"});

  auto found = Await(store_.FindApiKey("aaaa"));
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->tenant, "acme");
  EXPECT_EQ((*found)->id, "k1");
  EXPECT_EQ((*found)->display_name, "ci");

  auto other = Await(store_.FindApiKey("bbbb"));
  ASSERT_TRUE(other.ok() && other->has_value());
  EXPECT_EQ((*other)->tenant, "globex");

  auto unknown = Await(store_.FindApiKey("cccc"));
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_FALSE(unknown->has_value());

  // Revoked keys are still found (the caller decides what revocation means).
  ASSERT_TRUE(Await(store_.Update<ApiKey>("acme", "k1", [](ApiKey& k) {
                k.revoke_time_ms = 42;
                return Ok();
              })).ok());
  auto revoked = Await(store_.FindApiKey("aaaa"));
  ASSERT_TRUE(revoked.ok() && revoked->has_value());
  EXPECT_EQ((*revoked)->revoke_time_ms, 42);

  // A deleted key is gone, though its hash was indexed.
  ASSERT_TRUE(*Await(store_.Delete<ApiKey>("acme", "k1")));
  auto deleted = Await(store_.FindApiKey("aaaa"));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_FALSE(deleted->has_value());
}

// Records in `inner`, where each create is written and its answer then lost (a connection cut
// after the write, a write the replicas did not confirm in time); with `unreplicated`, no
// replicated put is confirmed either (written all the same).
class CreateAnswerLost final : public RecordStore {
 public:
  explicit CreateAnswerLost(RecordStore& inner, bool unreplicated = false)
      : inner_(inner), unreplicated_(unreplicated) {}

  Op<CreateOutcome> Create(Table table, CreateRequest request) override {
    absl::StatusOr<CreateOutcome> written =
        co_await inner_.Create(std::move(table), std::move(request));
    if (!written.ok()) co_return written.status();
    co_return absl::UnavailableError("connection reset after the write");
  }
  boost::asio::awaitable<absl::Status> PutReplicated(Table table, std::string id,
                                                     std::string document) override {
    absl::Status written =
        co_await inner_.PutReplicated(std::move(table), std::move(id), std::move(document));
    if (!written.ok() || !unreplicated_) co_return written;
    co_return absl::UnavailableError("WAIT: 0 of 1 replicas acknowledged the write");
  }
  Op<std::optional<std::string>> Get(Table table, std::string id) override {
    return inner_.Get(std::move(table), std::move(id));
  }
  Op<std::optional<RequestRecord>> CreatedBy(Table table, std::string request_id) override {
    return inner_.CreatedBy(std::move(table), std::move(request_id));
  }
  Op<std::vector<std::optional<std::string>>> GetMany(Table table,
                                                      std::vector<std::string> ids) override {
    return inner_.GetMany(std::move(table), std::move(ids));
  }
  Op<LookupResults> GetTables(std::vector<Lookup> lookups) override {
    return inner_.GetTables(std::move(lookups));
  }
  Op<std::vector<std::pair<std::string, std::string>>> GetAll(Table table) override {
    return inner_.GetAll(std::move(table));
  }
  Op<int64_t> Put(Table table, std::string id, std::string document,
                  std::optional<std::string> revision) override {
    return inner_.Put(std::move(table), std::move(id), std::move(document), std::move(revision));
  }
  boost::asio::awaitable<absl::Status> PutExpiring(Table table, std::string id,
                                                   std::string document,
                                                   absl::Duration ttl) override {
    return inner_.PutExpiring(std::move(table), std::move(id), std::move(document), ttl);
  }
  Op<int64_t> PutMany(Table table, std::vector<std::pair<std::string, std::string>> documents,
                      std::optional<std::string> revision) override {
    return inner_.PutMany(std::move(table), std::move(documents), std::move(revision));
  }
  using RecordStore::Replace;
  Op<ReplaceOutcome> Replace(Table table, ReplaceRequest request) override {
    return inner_.Replace(std::move(table), std::move(request));
  }
  Op<bool> Delete(Table table, std::string id) override {
    return inner_.Delete(std::move(table), std::move(id));
  }
  Op<bool> DeleteTable(Table table) override { return inner_.DeleteTable(std::move(table)); }
  Op<std::vector<std::pair<std::string, double>>> IndexBefore(Table table,
                                                              std::optional<double> before,
                                                              int limit) override {
    return inner_.IndexBefore(std::move(table), before, limit);
  }
  Op<int64_t> Revision(std::string tenant, std::string name) override {
    return inner_.Revision(std::move(tenant), std::move(name));
  }
  Op<bool> PutBlob(std::string tenant, std::string id, std::string bytes) override {
    return inner_.PutBlob(std::move(tenant), std::move(id), std::move(bytes));
  }
  Op<std::optional<std::string>> GetBlob(std::string tenant, std::string id) override {
    return inner_.GetBlob(std::move(tenant), std::move(id));
  }
  Op<bool> DeleteBlob(std::string tenant, std::string id) override {
    return inner_.DeleteBlob(std::move(tenant), std::move(id));
  }

 private:
  RecordStore& inner_;
  const bool unreplicated_;
};

// A key's index entry is a replicated write: one its shard's replicas did not confirm fails the
// create before the key is stored (the entry stays, naming no key).
TEST_F(StoreTest, AKeyWhoseIndexEntryIsNotReplicatedIsNotCreated) {
  CreateAnswerLost lossy(*records_, /*unreplicated=*/true);
  Store store(lossy);
  auto created =
      Await(store.Create(ApiKey{.tenant = "acme", .id = "k1", .secret_sha256 = "aaaa"}, ""));
  ASSERT_TRUE(absl::IsUnavailable(created.status())) << created.status();
  EXPECT_THAT(std::string(created.status().message()), HasSubstr("replicas"));
  auto stored = Await(store_.Get<ApiKey>("acme", "k1"));
  EXPECT_TRUE(absl::IsNotFound(stored.status())) << stored.status();
}

// A key whose create was written but not answered still authenticates: the create's error
// leaves the hash's index entry in place, as the key may exist.
TEST_F(StoreTest, AKeyWhoseCreateWasNotAnsweredStillAuthenticates) {
  CreateAnswerLost lossy(*records_);
  Store store(lossy);
  auto created =
      Await(store.Create(ApiKey{.tenant = "acme", .id = "k1", .secret_sha256 = "aaaa"}, ""));
  ASSERT_TRUE(absl::IsUnavailable(created.status())) << created.status();

  auto found = Await(store_.FindApiKey("aaaa"));
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, "k1");
}

// ---------------------------------------------------------------------------------------------
// Campaign pages

// Every page from the first on; fails the test on an error.
std::vector<CampaignPage> AllPages(Store& store, const std::string& tenant, int limit) {
  std::vector<CampaignPage> pages;
  std::optional<double> before;
  do {
    auto page = Await(store.ListCampaigns(tenant, before, limit));
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok() || pages.size() > 100) break;
    before = page->next_before;
    pages.push_back(std::move(*page));
  } while (before);
  return pages;
}

TEST_F(StoreTest, ListCampaignsPagesNewestFirst) {
  for (int i = 1; i <= 5; ++i) MustCreate(MakeCampaign("acme", "c" + std::to_string(i), i * 1000));
  MustCreate(MakeCampaign("globex", "g1", 3500));

  auto first = Await(store_.ListCampaigns("acme", std::nullopt, 2));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Ids(first->campaigns), ElementsAre("c5", "c4"));
  EXPECT_EQ(first->next_before, 4000.0);

  auto second = Await(store_.ListCampaigns("acme", first->next_before, 2));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(Ids(second->campaigns), ElementsAre("c3", "c2"));
  EXPECT_EQ(second->next_before, 2000.0);

  auto last = Await(store_.ListCampaigns("acme", second->next_before, 2));
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_THAT(Ids(last->campaigns), ElementsAre("c1"));
  EXPECT_EQ(last->next_before, std::nullopt);

  // A page that ends exactly at the last campaign is the last page.
  auto exact = Await(store_.ListCampaigns("acme", 3000.0, 2));
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_THAT(Ids(exact->campaigns), ElementsAre("c2", "c1"));
  EXPECT_EQ(exact->next_before, std::nullopt);

  auto all = Await(store_.ListCampaigns("acme", std::nullopt, 100));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(Ids(all->campaigns), ElementsAre("c5", "c4", "c3", "c2", "c1"));
  EXPECT_EQ(all->next_before, std::nullopt);

  // Deleted campaigns leave the index.
  ASSERT_TRUE(*Await(store_.Delete<Campaign>("acme", "c4")));
  auto after_delete = Await(store_.ListCampaigns("acme", std::nullopt, 2));
  EXPECT_THAT(Ids(after_delete->campaigns), ElementsAre("c5", "c3"));

  EXPECT_THAT(Ids(Await(store_.ListCampaigns("nobody", std::nullopt, 2))->campaigns), IsEmpty());
}

TEST_F(StoreTest, ListCampaignsNeverSplitsEqualCreateTimesAcrossPages) {
  // Creates within one millisecond share a score; `next_before` excludes it, so a page that
  // ended inside such a group would make the next one skip the rest of it.
  MustCreate(MakeCampaign("acme", "d", 2000));
  for (const char* id : {"a", "b", "c"}) MustCreate(MakeCampaign("acme", id, 1000));
  MustCreate(MakeCampaign("acme", "e", 500));

  for (int limit : {1, 2, 3, 4, 10}) {
    std::vector<std::string> ids;
    for (const CampaignPage& page : AllPages(store_, "acme", limit)) {
      for (const Campaign& c : page.campaigns) ids.push_back(c.id);
    }
    EXPECT_THAT(ids, ElementsAre("d", "c", "b", "a", "e")) << "limit " << limit;
  }
}

// ---------------------------------------------------------------------------------------------
// Deliveries

TEST_F(StoreTest, DeliveryWritesBumpTheCampaignRevision) {
  MustCreate(MakeCampaign("acme", "c1", 1000));
  EXPECT_EQ(CampaignRevision("acme", "c1"), 0);

  std::vector<Delivery> deliveries = {MakeDelivery("acct_2"), MakeDelivery("acct_1")};
  auto put = Await(store_.PutDeliveries("acme", "c1", deliveries));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(*put, 1);  // one bump for the whole batch
  EXPECT_EQ(CampaignRevision("acme", "c1"), 1);

  auto listed = Await(store_.ListDeliveries("acme", "c1"));
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].account, "acct_1");
  EXPECT_EQ((*listed)[1].account, "acct_2");

  auto updated = Await(store_.UpdateDelivery("acme", "c1", "acct_1", [](Delivery& d) {
    d.state = DeliveryState::kSending;
    d.send_attempts = 1;
    d.upstream_media = {"u1"};
    return Ok();
  }));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->state, DeliveryState::kSending);
  EXPECT_EQ(CampaignRevision("acme", "c1"), 2);

  auto got = Await(store_.GetDelivery("acme", "c1", "acct_1"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->state, DeliveryState::kSending);
  EXPECT_EQ(got->send_attempts, 1);
  EXPECT_EQ(got->upstream_media, std::vector<std::string>{"u1"});

  // No change, or a refused one: nothing written, no bump.
  ASSERT_TRUE(
      Await(store_.UpdateDelivery("acme", "c1", "acct_1", [](Delivery&) { return Ok(); })).ok());
  auto refused = Await(store_.UpdateDelivery("acme", "c1", "acct_1", [](Delivery& d) {
    d.state = DeliveryState::kFailed;
    return absl::FailedPreconditionError("no");
  }));
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_EQ(Await(store_.GetDelivery("acme", "c1", "acct_1"))->state, DeliveryState::kSending);
  EXPECT_EQ(CampaignRevision("acme", "c1"), 2);

  // A campaign update shares the counter.
  ASSERT_TRUE(Await(store_.Update<Campaign>("acme", "c1", [](Campaign& c) {
                c.phase = CampaignPhase::kDispatched;
                return Ok();
              })).ok());
  EXPECT_EQ(CampaignRevision("acme", "c1"), 3);

  std::vector<Delivery> again = {MakeDelivery("acct_2")};
  EXPECT_EQ(*Await(store_.PutDeliveries("acme", "c1", again)), 4);

  // Other campaigns and tenants keep their own deliveries and revisions.
  EXPECT_THAT(*Await(store_.ListDeliveries("acme", "c2")), IsEmpty());
  EXPECT_THAT(*Await(store_.ListDeliveries("globex", "c1")), IsEmpty());
  EXPECT_EQ(CampaignRevision("acme", "c2"), 0);
  EXPECT_EQ(CampaignRevision("globex", "c1"), 0);
}

TEST_F(StoreTest, CreateCampaignStoresTargetsAndDeliveriesInOneStep) {
  Campaign c = MakeCampaign("acme", "c1", 1000);
  c.targets.push_back(AccountTarget{.account = "acct_2", .segment = "s1"});
  MustCreate(MakeTeam("acme", "t1", "First"));
  MustCreate(Account{.tenant = "acme", .id = "acct_1", .team = "t1"});
  MustCreate(Account{.tenant = "acme", .id = "acct_2", .team = "t9"});
  std::vector<Delivery> deliveries = {MakeDelivery("acct_1"), MakeDelivery("acct_2")};
  CampaignCreateReads reads;
  reads.references.push_back(Store::LookupOf<Account>("acme", {"acct_1", "acct_2"}));
  reads.follow = Follow{.of = 0, .field = "team", .table = Store::LookupOf<Team>("acme", {}).table};
  auto created = Await(store_.CreateCampaign(c, deliveries, "req-1", reads));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(created->replayed);
  EXPECT_FALSE(created->missing_reference);
  EXPECT_EQ(created->revision, 1);
  EXPECT_EQ(created->campaign.targets.size(), 2u);
  ASSERT_EQ(created->references.size(), 1u);
  EXPECT_EQ(created->references[0].size(), 2u);
  // The accounts' teams, each once: t1, and t9 which does not exist.
  auto teams = Store::DecodeMany<Team>(created->followed);
  ASSERT_TRUE(teams.ok()) << teams.status();
  ASSERT_EQ(teams->size(), 2u);
  EXPECT_EQ((*teams)[0]->display_name, "First");
  EXPECT_EQ((*teams)[1], std::nullopt);

  auto stored = Await(store_.Get<Campaign>("acme", "c1"));
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->targets.size(), 2u);
  EXPECT_EQ(stored->targets[1].segment, "s1");
  auto listed = Await(store_.ListDeliveries("acme", "c1"));
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->size(), 2u);
  EXPECT_EQ(CampaignRevision("acme", "c1"), 1);

  // A retry under another id replays the first campaign and writes nothing.
  Campaign retry = MakeCampaign("acme", "c2", 2000);
  std::vector<Delivery> retry_deliveries = {MakeDelivery("acct_1")};
  auto again = Await(store_.CreateCampaign(retry, retry_deliveries, "req-1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->campaign.id, "c1");
  EXPECT_EQ(again->campaign.targets.size(), 2u);
  EXPECT_EQ(again->revision, 0);
  EXPECT_TRUE(absl::IsNotFound(Await(store_.Get<Campaign>("acme", "c2")).status()));
  EXPECT_THAT(*Await(store_.ListDeliveries("acme", "c2")), IsEmpty());
  EXPECT_EQ(CampaignRevision("acme", "c1"), 1);
}

TEST_F(StoreTest, UpdateDeliveryFromWhatTheCallerSawWritesAgainstIt) {
  MustCreate(MakeCampaign("acme", "c1", 1000));
  std::vector<Delivery> deliveries = {MakeDelivery("acct_1")};
  ASSERT_TRUE(Await(store_.PutDeliveries("acme", "c1", deliveries)).ok());
  auto seen = Await(store_.GetDelivery("acme", "c1", "acct_1"));
  ASSERT_TRUE(seen.ok()) << seen.status();

  // Still the stored one: written against it.
  int runs = 0;
  auto sent = Await(store_.UpdateDelivery("acme", "c1", "acct_1", *seen, [&](Delivery& d) {
    ++runs;
    d.state = DeliveryState::kSending;
    return Ok();
  }));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(sent->state, DeliveryState::kSending);
  EXPECT_EQ(CampaignRevision("acme", "c1"), 2);

  // Changed since (by someone else): read again and applied to what is stored now.
  ASSERT_TRUE(Await(store_.UpdateDelivery("acme", "c1", "acct_1", [](Delivery& d) {
                ++d.send_attempts;
                return Ok();
              })).ok());
  runs = 0;
  auto polled = Await(store_.UpdateDelivery("acme", "c1", "acct_1", *sent, [&](Delivery& d) {
    ++runs;
    d.polls = 3;
    return Ok();
  }));
  ASSERT_TRUE(polled.ok()) << polled.status();
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(polled->send_attempts, 1);
  EXPECT_EQ(polled->polls, 3);
  EXPECT_EQ(Await(store_.GetDelivery("acme", "c1", "acct_1"))->polls, 3);

  // A mutation that refuses writes nothing; a missing delivery is not found.
  auto refused = Await(store_.UpdateDelivery("acme", "c1", "acct_1", *polled, [](Delivery&) {
    return absl::FailedPreconditionError("no");
  }));
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  auto missing =
      Await(store_.UpdateDelivery("acme", "c1", "acct_9", MakeDelivery("acct_9"), [](Delivery& d) {
        d.polls = 1;
        return Ok();
      }));
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
}

TEST_F(StoreTest, UpdateDeliveryWritesItsRowsWithTheDeliveryAndReadsAfter) {
  MustCreate(MakeCampaign("acme", "c1", 1000));
  std::vector<Delivery> deliveries = {MakeDelivery("acct_1")};
  ASSERT_TRUE(Await(store_.PutDeliveries("acme", "c1", deliveries)).ok());
  auto seen = Await(store_.GetDelivery("acme", "c1", "acct_1"));
  ASSERT_TRUE(seen.ok()) << seen.status();
  const Table claims{"acme", "claims"};
  auto extras = [&] {
    UpdateExtras e;
    e.rows.push_back({.table = claims, .documents = {{"m1", "c1"}}});
    e.reads.push_back(Store::LookupOf<Campaign>("acme", {"c1"}));
    return e;
  };
  auto sent = [](Delivery& d) {
    d.state = DeliveryState::kSent;
    d.upstream_message_id = 1;
    return Ok();
  };

  auto updated = Await(store_.UpdateDelivery("acme", "c1", "acct_1", *seen, sent, extras()));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->delivery.state, DeliveryState::kSent);
  EXPECT_EQ(Await(store_.GetDelivery("acme", "c1", "acct_1"))->upstream_message_id, 1);
  EXPECT_THAT(*Await(records_->Get(claims, "m1")), Optional(std::string("c1")));
  ASSERT_EQ(updated->reads.size(), 1u);
  auto heads = Store::DecodeMany<Campaign>(updated->reads[0]);
  ASSERT_TRUE(heads.ok()) << heads.status();
  ASSERT_EQ(heads->size(), 1u);
  ASSERT_TRUE((*heads)[0].has_value());
  EXPECT_EQ((*heads)[0]->id, "c1");
  EXPECT_EQ(CampaignRevision("acme", "c1"), 2);

  // Nothing left to change: no write (its rows neither), and the reads are still made.
  ASSERT_TRUE(Await(records_->Put(claims, "m1", "other")).ok());
  auto again = Await(store_.UpdateDelivery("acme", "c1", "acct_1", *seen, sent, extras()));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->reads.size(), 1u);
  EXPECT_THAT(*Await(records_->Get(claims, "m1")), Optional(std::string("other")));
  EXPECT_EQ(CampaignRevision("acme", "c1"), 2);

  // A refused mutation writes nothing.
  auto refused = Await(store_.UpdateDelivery(
      "acme", "c1", "acct_1", updated->delivery,
      [](Delivery&) { return absl::FailedPreconditionError("no"); }, extras()));
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(*Await(records_->Get(claims, "m1")), Optional(std::string("other")));
}

TEST_F(StoreTest, TheDispatchOutboxTakesACreatesEntryInItsStepAndAnyOtherByItself) {
  Campaign c = MakeCampaign("acme", "c1", 1000);
  std::vector<Delivery> deliveries = {MakeDelivery("acct_1")};
  const PendingDispatch entry{.id = "c1/create", .campaign = "c1", .since_ms = 1000};
  ASSERT_TRUE(Await(store_.CreateCampaign(c, deliveries, "req-1", {}, entry)).ok());
  auto pending = Await(store_.PendingDispatches("acme"));
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].id, "c1/create");
  EXPECT_EQ((*pending)[0].campaign, "c1");
  EXPECT_EQ((*pending)[0].since_ms, 1000);

  // A replay of the create writes no entry; a create that fails writes none either.
  const PendingDispatch other{.id = "c2/create", .campaign = "c2", .since_ms = 2000};
  Campaign retry = MakeCampaign("acme", "c2", 2000);
  ASSERT_TRUE(Await(store_.CreateCampaign(retry, deliveries, "req-1", {}, other)).ok());
  Campaign taken = MakeCampaign("acme", "c1", 3000);
  EXPECT_TRUE(absl::IsAlreadyExists(
      Await(store_.CreateCampaign(taken, deliveries, "", {}, other)).status()));
  EXPECT_EQ(Await(store_.PendingDispatches("acme"))->size(), 1u);

  ASSERT_TRUE(Await(store_.AddPendingDispatch(
                        "acme", PendingDispatch{.id = "c1/x", .campaign = "c1", .since_ms = 5}))
                  .ok());
  EXPECT_EQ(Await(store_.PendingDispatches("acme"))->size(), 2u);
  EXPECT_THAT(*Await(store_.PendingDispatches("globex")), IsEmpty());
  EXPECT_TRUE(*Await(store_.RemovePendingDispatch("acme", "c1/create")));
  EXPECT_FALSE(*Await(store_.RemovePendingDispatch("acme", "c1/create")));
  pending = Await(store_.PendingDispatches("acme"));
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].id, "c1/x");
}

TEST_F(StoreTest, CampaignsTargetingSaysWhichCampaignsTargetAnAccount) {
  Campaign first = MakeCampaign("acme", "c1", 1000);  // targets acct_1
  Campaign second = MakeCampaign("acme", "c2", 2000);
  second.targets[0].account = "acct_2";
  std::vector<Delivery> none;
  ASSERT_TRUE(Await(store_.CreateCampaign(first, none, "")).ok());
  ASSERT_TRUE(Await(store_.CreateCampaign(second, none, "")).ok());
  auto targeting = Await(store_.CampaignsTargeting("acme", {"c1", "c2", "missing"}, "acct_1"));
  ASSERT_TRUE(targeting.ok()) << targeting.status();
  EXPECT_THAT(*targeting, ElementsAre(true, false, false));
  EXPECT_THAT(*Await(store_.CampaignsTargeting("globex", {"c1"}, "acct_1")), ElementsAre(false));
  EXPECT_THAT(*Await(store_.CampaignsTargeting("acme", {}, "acct_1")), IsEmpty());
}

TEST_F(StoreTest, ReadDeliveryRecordsReadsWhatAJobStartsFrom) {
  MustCreate(MakeTeam("acme", "main", "Main"));
  MustCreate(Account{.tenant = "acme", .id = "acct_1", .team = "main"});
  Campaign c = MakeCampaign("acme", "c1", 1000);
  c.targets[0].fan_ids = {7, 8};
  std::vector<Delivery> deliveries = {MakeDelivery("acct_1")};
  ASSERT_TRUE(Await(store_.CreateCampaign(c, deliveries, "")).ok());

  auto read = Await(store_.ReadDeliveryRecords("acme", "c1", "acct_1", "main", ""));
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->campaign.has_value());
  EXPECT_EQ(read->campaign->content.text, "hello");
  EXPECT_TRUE(read->campaign->targets.empty()) << "the head only";
  ASSERT_TRUE(read->delivery.has_value());
  EXPECT_EQ(read->delivery->account, "acct_1");
  ASSERT_TRUE(read->target.has_value());
  EXPECT_THAT(read->target->fan_ids, ElementsAre(7, 8));
  ASSERT_TRUE(read->account.has_value());
  EXPECT_EQ(read->account->team, "main");
  ASSERT_TRUE(read->team.has_value());
  EXPECT_EQ(read->team->display_name, "Main");
  EXPECT_FALSE(read->media.has_value()) << "none asked for";

  MustCreate(MediaAsset{.tenant = "acme", .id = "m1", .source_url = "https://cdn.example/a.jpg"});
  auto with_media = Await(store_.ReadDeliveryRecords("acme", "c1", "acct_1", "main", "m1"));
  ASSERT_TRUE(with_media.ok()) << with_media.status();
  ASSERT_TRUE(with_media->media.has_value());
  EXPECT_EQ(with_media->media->source_url, "https://cdn.example/a.jpg");
  EXPECT_TRUE(with_media->delivery.has_value());

  auto absent = Await(store_.ReadDeliveryRecords("acme", "c9", "acct_9", "", "m9"));
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_FALSE(absent->campaign || absent->delivery || absent->target || absent->account ||
               absent->team || absent->media);
}

TEST_F(StoreTest, AMissingDeliveryIsNotFoundNamingCampaignAndAccount) {
  auto got = Await(store_.GetDelivery("acme", "c1", "acct_9"));
  EXPECT_TRUE(absl::IsNotFound(got.status())) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("'c1'"));
  EXPECT_THAT(got.status().message(), HasSubstr("'acct_9'"));

  auto updated =
      Await(store_.UpdateDelivery("acme", "c1", "acct_9", [](Delivery&) { return Ok(); }));
  EXPECT_TRUE(absl::IsNotFound(updated.status())) << updated.status();
  EXPECT_THAT(updated.status().message(), HasSubstr("'acct_9'"));
  EXPECT_EQ(CampaignRevision("acme", "c1"), 0);
}

// ---------------------------------------------------------------------------------------------
// Undecodable documents and media

TEST_F(StoreTest, ADocumentThatDoesNotDecodeIsDataLoss) {
  // Written behind the Store's back, in its tables: "teams", "c:<campaign>:deliveries" and the
  // platform's key index.
  MustCreate(MakeTeam("acme", "t1"));
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "teams"}, "bad", "not json")).ok());
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "teams"}, "partial", R"({"tenant":"acme"})")).ok());

  EXPECT_EQ(Await(store_.Get<Team>("acme", "bad")).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Await(store_.Get<Team>("acme", "partial")).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Await(store_.List<Team>("acme")).status().code(), absl::StatusCode::kDataLoss);
  bool called = false;
  auto updated = Await(store_.Update<Team>("acme", "bad", [&](Team&) {
    called = true;
    return Ok();
  }));
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(called);
  EXPECT_EQ(Await(store_.Get<Team>("acme", "t1"))->id, "t1");  // the others still read

  ASSERT_TRUE(Await(records_->Put(Table{"acme", "c:c1:deliveries"}, "acct_1", "[]")).ok());
  EXPECT_EQ(Await(store_.GetDelivery("acme", "c1", "acct_1")).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Await(store_.ListDeliveries("acme", "c1")).status().code(),
            absl::StatusCode::kDataLoss);

  ASSERT_TRUE(Await(records_->Put(Table{"", "api_key_hashes"}, "ffff", "no-slash")).ok());
  EXPECT_EQ(Await(store_.FindApiKey("ffff")).status().code(), absl::StatusCode::kDataLoss);
}

// A record a later Herald wrote, with a field this one does not know (a rolling deploy, or a
// rollback), still decodes; the field is ignored.
TEST_F(StoreTest, ARecordWithAFieldOfALaterVersionStillDecodes) {
  const std::string later =
      R"({"tenant":"acme","id":"acct_new","team":"main","display_name":"New",)"
      R"("sends_per_minute":6,"max_in_flight":0,"paused":false,"upstream_username":"new",)"
      R"("create_time_ms":5,"pause_time_ms":7,"a_later_field":{"x":[1,2]}})";
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "accounts"}, "acct_new", later)).ok());
  absl::StatusOr<Account> account = Await(store_.Get<Account>("acme", "acct_new"));
  ASSERT_TRUE(account.ok()) << account.status();
  EXPECT_EQ(account->sends_per_minute, 6);
  EXPECT_EQ(account->upstream_username, "new");
  // A later field and a missing one at once: a team from before burst, with a field from after.
  const std::string mixed =
      R"({"tenant":"acme","id":"mixed","display_name":"M","sealed_api_key":"v1:x",)"
      R"("api_key_hint":"abcd","rate_limit_per_minute":60,"api_key_invalid":false,)"
      R"("paused":false,"pause_reason":"","create_time_ms":5,"resume_time_ms":9})";
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "teams"}, "mixed", mixed)).ok());
  absl::StatusOr<Team> team = Await(store_.Get<Team>("acme", "mixed"));
  ASSERT_TRUE(team.ok()) << team.status();
  EXPECT_EQ(team->rate_limit_per_minute, 60);
  EXPECT_EQ(team->burst, 0);
}

// An update by this Herald keeps the fields a later one wrote: a rolling deploy or a rollback
// loses nothing the newer release stored.
TEST_F(StoreTest, AnUpdateKeepsTheFieldsOfALaterVersion) {
  const std::string later =
      R"({"tenant":"acme","id":"acct_new","team":"main","display_name":"New",)"
      R"("sends_per_minute":6,"max_in_flight":0,"paused":false,"upstream_username":"new",)"
      R"("create_time_ms":5,"pauses":[],"a_later_field":{"x":[1,2]}})";
  const Table accounts{"acme", "accounts"};
  ASSERT_TRUE(Await(records_->Put(accounts, "acct_new", later)).ok());
  ASSERT_TRUE(Await(store_.Update<Account>("acme", "acct_new", [](Account& a) {
                a.sends_per_minute = 9;
                return Ok();
              })).ok());
  auto stored = Await(records_->Get(accounts, "acct_new"));
  ASSERT_TRUE(stored.ok() && *stored) << stored.status();
  EXPECT_NE((*stored)->find(R"("a_later_field":{"x":[1,2]})"), std::string::npos) << **stored;
  EXPECT_NE((*stored)->find(R"("sends_per_minute":9)"), std::string::npos) << **stored;

  // A delivery too, updated from what its caller saw (which lacks the field) or from a read.
  MustCreate(MakeCampaign("acme", "c1", 1000));
  std::vector<Delivery> deliveries = {MakeDelivery("acct_1")};
  ASSERT_TRUE(Await(store_.PutDeliveries("acme", "c1", deliveries)).ok());
  const Table table{"acme", "c:c1:deliveries"};
  auto doc = Await(records_->Get(table, "acct_1"));
  ASSERT_TRUE(doc.ok() && *doc) << doc.status();
  std::string with_later = **doc;
  with_later.insert(with_later.size() - 1, R"(,"later_progress":42)");
  ASSERT_TRUE(Await(records_->Put(table, "acct_1", with_later)).ok());
  auto seen = Await(store_.GetDelivery("acme", "c1", "acct_1"));
  ASSERT_TRUE(seen.ok()) << seen.status();
  ASSERT_TRUE(Await(store_.UpdateDelivery("acme", "c1", "acct_1", *seen, [](Delivery& d) {
                d.polls = 2;
                return Ok();
              })).ok());
  doc = Await(records_->Get(table, "acct_1"));
  ASSERT_TRUE(doc.ok() && *doc) << doc.status();
  EXPECT_NE((*doc)->find(R"("later_progress":42)"), std::string::npos) << **doc;
  EXPECT_NE((*doc)->find(R"("polls":2)"), std::string::npos) << **doc;
  EXPECT_EQ(Await(store_.GetDelivery("acme", "c1", "acct_1"))->polls, 2);
}

TEST_F(StoreTest, ATeamStoredBeforeItsWebhookFieldsExistedStillDecodes) {
  const std::string before =
      R"({"tenant":"acme","id":"old","display_name":"Old","sealed_api_key":"v1:x",)"
      R"("api_key_hint":"abcd","rate_limit_per_minute":60,"api_key_invalid":false,)"
      R"("paused":false,"pause_reason":"","create_time_ms":5})";
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "teams"}, "old", before)).ok());
  absl::StatusOr<Team> team = Await(store_.Get<Team>("acme", "old"));
  ASSERT_TRUE(team.ok()) << team.status();
  EXPECT_EQ(team->rate_limit_per_minute, 60);
  EXPECT_EQ(team->webhook_id, "");
  EXPECT_EQ(team->burst, 0);
  EXPECT_TRUE(team->pauses.empty());
}

TEST_F(StoreTest, AnAccountStoredBeforeItsPauseTimesExistedStillDecodes) {
  const std::string before =
      R"({"tenant":"acme","id":"acct_old","team":"main","display_name":"Old",)"
      R"("sends_per_minute":0,"max_in_flight":0,"paused":true,"upstream_username":"old",)"
      R"("create_time_ms":5})";
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "accounts"}, "acct_old", before)).ok());
  absl::StatusOr<Account> account = Await(store_.Get<Account>("acme", "acct_old"));
  ASSERT_TRUE(account.ok()) << account.status();
  EXPECT_TRUE(account->paused);
  EXPECT_TRUE(account->pauses.empty());
}

// A delivery from before its held-message fields and its segment list's name: no list was asked
// for by name, so a later list step looks one up only by its job's attempts.
TEST_F(StoreTest, ADeliveryStoredBeforeItsAddedFieldsExistedStillDecodes) {
  const std::string before =
      R"({"account":"acct_old","state":"kBuildingList","upstream_media":[],)"
      R"("segment_list_id":"","segment_fans":4,"segment_added":0,"upstream_message_id":0,)"
      R"("recipients":0,"recipients_pending":0,"error":"","send_attempts":0,)"
      R"("send_started_ms":0,"polls":0,"cancel_outcome":"","update_time_ms":5})";
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "c:c1:deliveries"}, "acct_old", before)).ok());
  absl::StatusOr<Delivery> delivery = Await(store_.GetDelivery("acme", "c1", "acct_old"));
  ASSERT_TRUE(delivery.ok()) << delivery.status();
  EXPECT_EQ(delivery->state, DeliveryState::kBuildingList);
  EXPECT_EQ(delivery->segment_fans, 4);
  EXPECT_EQ(delivery->segment_list_name, "");
  EXPECT_EQ(delivery->send_scheduled_ms, 0);
  EXPECT_EQ(delivery->upstream_generation, 0);
}

TEST_F(StoreTest, AnAutomationStoredBeforeActionsExistedAddsToItsList) {
  const std::string before =
      R"({"tenant":"acme","id":"rule_old","account":"acct_a","trigger":"kNewSubscriber",)"
      R"("list_id":"77","create_time_ms":5})";
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "automations"}, "rule_old", before)).ok());
  absl::StatusOr<Automation> rule = Await(store_.Get<Automation>("acme", "rule_old"));
  ASSERT_TRUE(rule.ok()) << rule.status();
  EXPECT_EQ(rule->list_id, "77");
  EXPECT_EQ(rule->action, AutomationAction::kAddToList);
}

// A rule a later Herald stored, on a trigger or with an action this one does not know, loads as a
// rule on no trigger (it fires nothing), and the tenant's other rules still list.
TEST_F(StoreTest, AnAutomationOfALaterTriggerOrActionLoadsAsARuleOnNoTrigger) {
  const std::string later_trigger =
      R"({"tenant":"acme","id":"r1","account":"acct_a","trigger":"kSomethingNew",)"
      R"("list_id":"77","create_time_ms":5,"action":"kAddToList"})";
  const std::string later_action =
      R"({"tenant":"acme","id":"r2","account":"acct_a","trigger":"kNewSubscriber",)"
      R"("list_id":"78","create_time_ms":5,"action":"kMoveToList"})";
  const std::string known = R"({"tenant":"acme","id":"r3","account":"acct_a","trigger":"kExpiry",)"
                            R"("list_id":"79","create_time_ms":5,"action":"kRemoveFromList"})";
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "automations"}, "r1", later_trigger)).ok());
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "automations"}, "r2", later_action)).ok());
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "automations"}, "r3", known)).ok());
  absl::StatusOr<std::vector<Automation>> rules = Await(store_.List<Automation>("acme"));
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 3u);
  EXPECT_EQ((*rules)[0].trigger, AutomationTrigger::kUnspecified);
  EXPECT_EQ((*rules)[0].list_id, "77");
  EXPECT_EQ((*rules)[1].trigger, AutomationTrigger::kUnspecified);
  EXPECT_EQ((*rules)[2].trigger, AutomationTrigger::kExpiry);
  EXPECT_EQ((*rules)[2].action, AutomationAction::kRemoveFromList);
  // Other kinds still refuse a value they do not know.
  const std::string later_media =
      R"({"tenant":"acme","id":"m1","type":"kHologram","source_url":"","file_name":"",)"
      R"("content_type":"","size_bytes":0,"sha256":"","create_time_ms":5})";
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "media"}, "m1", later_media)).ok());
  EXPECT_EQ(Await(store_.Get<MediaAsset>("acme", "m1")).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(StoreTest, ATenantStoredBeforeItsWeightExistedDecodesWithWeightOne) {
  const std::string before = R"({"id":"old","display_name":"Old","create_time_ms":5})";
  ASSERT_TRUE(Await(records_->Put(Table{"", "tenants"}, "old", before)).ok());
  absl::StatusOr<Tenant> tenant = Await(store_.Get<Tenant>("", "old"));
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  EXPECT_EQ(tenant->display_name, "Old");
  EXPECT_EQ(tenant->scheduling_weight, 1);
}

TEST_F(StoreTest, ASegmentStoredBeforeTopSpendersExistedRanksNobody) {
  const std::string before =
      R"({"tenant":"acme","id":"seg_old","display_name":"Old","min_lifetime_spend_cents":5000,)"
      R"("subscribed_within_days":0,"expired_only":false,"create_time_ms":5})";
  ASSERT_TRUE(Await(records_->Put(Table{"acme", "segments"}, "seg_old", before)).ok());
  absl::StatusOr<Segment> segment = Await(store_.Get<Segment>("acme", "seg_old"));
  ASSERT_TRUE(segment.ok()) << segment.status();
  EXPECT_EQ(segment->min_lifetime_spend_cents, 5000);
  EXPECT_EQ(segment->top_spenders, 0);
}

TEST_F(StoreTest, MediaBytesArePerTenant) {
  EXPECT_EQ(*Await(store_.GetMediaBytes("acme", "m1")), std::nullopt);
  const std::string bytes("\0\x01\xfe", 3);
  ASSERT_TRUE(*Await(store_.PutMediaBytes("acme", "m1", bytes)));
  EXPECT_EQ(*Await(store_.GetMediaBytes("acme", "m1")), bytes);
  EXPECT_EQ(*Await(store_.GetMediaBytes("globex", "m1")), std::nullopt);
}

}  // namespace
}  // namespace herald::store
