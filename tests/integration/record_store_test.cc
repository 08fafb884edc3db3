// The RecordStore contract (record_store.h), held against both implementations: the in-memory
// store and the Redis store over a real redis-server. Every test runs once per implementation;
// a difference between them is a failure of one of the two.
#include <algorithm>
#include <future>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/redis/client.h>
#include <herald/store/record_store.h>
#include <herald/testing/io_thread.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/wait.h>

namespace herald::store {
namespace {

namespace asio = boost::asio;
using ::herald::testing::RedisServer;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::Pair;

enum class Backend { kMemory, kRedis };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kMemory ? "Memory" : "Redis";
}
void PrintTo(Backend backend, std::ostream* os) {
  *os << (backend == Backend::kMemory ? "memory" : "redis");
}

using Documents = std::vector<std::pair<std::string, std::string>>;
using Scores = std::vector<std::pair<std::string, double>>;

// A store of the parameter's kind, an io_context on its own thread, and a way to run awaitables.
class RecordStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    io_.Start();
    if (GetParam() == Backend::kMemory) {
      store_ = MakeMemoryRecordStore();
      return;
    }
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = std::make_unique<redis::Client>(
        io_.executor(), redis::ClientConfig{.address = {"127.0.0.1", server_->port()}});
    client_->Start();
    store_ = MakeRedisRecordStore(*client_);
  }

  void TearDown() override {
    store_.reset();
    if (client_) client_->Stop();
    io_.Join();  // returns once the client's connections have closed
    client_.reset();
  }

  template <typename T>
  T Run(asio::awaitable<T> op) {
    return io_.Run(std::move(op));
  }

  // Starts every operation before awaiting any, so that they run concurrently.
  template <typename T>
  std::vector<T> RunAll(std::vector<asio::awaitable<T>> ops) {
    std::vector<std::future<T>> futures;
    for (auto& op : ops) futures.push_back(io_.Spawn(std::move(op)));
    std::vector<T> out;
    for (auto& f : futures) out.push_back(f.get());
    return out;
  }

  // Runs `op` and returns its value; a failed operation fails the test.
  template <typename T>
  T Must(asio::awaitable<absl::StatusOr<T>> op) {
    return io_.Must(std::move(op));
  }

  CreateOutcome Create(const Table& table, std::string id, std::string document,
                       std::string request_id = "",
                       std::optional<double> index_score = std::nullopt,
                       std::string fingerprint = "") {
    CreateRequest request{.id = std::move(id),
                          .document = std::move(document),
                          .request_id = std::move(request_id),
                          .request_fingerprint = std::move(fingerprint),
                          .index_score = index_score};
    return Must(store_->Create(table, std::move(request)));
  }

  std::optional<std::string> Get(const Table& table, std::string id) {
    return Must(store_->Get(table, std::move(id)));
  }

  Documents GetAll(const Table& table) { return Must(store_->GetAll(table)); }

  Scores Index(const Table& table, std::optional<double> before = std::nullopt, int limit = 100) {
    return Must(store_->IndexBefore(table, before, limit));
  }

  int64_t Revision(std::string tenant, std::string name) {
    return Must(store_->Revision(std::move(tenant), std::move(name)));
  }

  const Table teams_{"acme", "teams"};
  const Table campaigns_{"acme", "campaigns"};

  testing::IoThread io_;
  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<redis::Client> client_;
  std::unique_ptr<RecordStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, RecordStoreTest,
                         ::testing::Values(Backend::kMemory, Backend::kRedis), BackendName);

// ---------------------------------------------------------------------------------------------
// Create

TEST_P(RecordStoreTest, CreateStoresTheDocumentAndReturnsIt) {
  CreateOutcome out = Create(teams_, "t1", R"({"n":1})");
  EXPECT_EQ(out.code, CreateCode::kCreated);
  EXPECT_THAT(out.document, Optional(std::string(R"({"n":1})")));
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string(R"({"n":1})")));
}

TEST_P(RecordStoreTest, CreateWithARepeatedRequestIdReplaysTheFirstDocument) {
  ASSERT_EQ(Create(teams_, "t1", "first", "req-1").code, CreateCode::kCreated);

  // The replay carries another id and document: neither is looked at.
  CreateOutcome again = Create(teams_, "t2", "second", "req-1");
  EXPECT_EQ(again.code, CreateCode::kReplayed);
  EXPECT_THAT(again.document, Optional(std::string("first")));
  EXPECT_EQ(Get(teams_, "t2"), std::nullopt);
  EXPECT_THAT(GetAll(teams_), ElementsAre(Pair("t1", "first")));

  // The same document again replays too.
  CreateOutcome same = Create(teams_, "t1", "first", "req-1");
  EXPECT_EQ(same.code, CreateCode::kReplayed);
  EXPECT_THAT(same.document, Optional(std::string("first")));
}

// A replay writes: it renews the request id's lifetime, so that the WAIT behind a replicated
// create (--redis_wait_replicas) also covers the record the first request wrote.
TEST_P(RecordStoreTest, AReplayRenewsItsRequestIdsLifetime) {
  if (GetParam() != Backend::kRedis) GTEST_SKIP() << "lifetimes are Redis keys' own";
  ASSERT_EQ(Create(teams_, "t1", "first", "req-1", std::nullopt, "fp").code, CreateCode::kCreated);
  const std::string key = "hd:{t:acme}:teams:req:req-1";
  const std::string fingerprint = "hd:{t:acme}:teams:reqfp:req-1";
  ASSERT_EQ(*server_->Command({"EXPIRE", key, "5"}), "1");
  ASSERT_EQ(*server_->Command({"EXPIRE", fingerprint, "5"}), "1");
  ASSERT_EQ(Create(teams_, "t1", "first", "req-1", std::nullopt, "fp").code, CreateCode::kReplayed);
  for (const std::string& k : {key, fingerprint}) {
    absl::StatusOr<std::string> ttl = server_->Command({"TTL", k});
    ASSERT_TRUE(ttl.ok()) << ttl.status();
    EXPECT_GT(std::stoll(*ttl), 3600) << k;  // the full day again
  }
}

// PutReplicated writes as Put does, and with --redis_wait_replicas is acknowledged only once
// enough replicas have it: a server without replicas refuses it UNAVAILABLE (written on the
// primary all the same), while a plain Put is acknowledged by the primary alone.
TEST_P(RecordStoreTest, PutReplicatedWaitsForTheReplicas) {
  EXPECT_TRUE(io_.Run(store_->PutReplicated(teams_, "t1", "first")).ok());
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("first")));
  if (GetParam() != Backend::kRedis) return;

  redis::Client waiting(io_.executor(),
                        redis::ClientConfig{.address = {"127.0.0.1", server_->port()},
                                            .wait_replicas = 1,
                                            .wait_timeout = absl::Milliseconds(20)});
  waiting.Start();
  std::unique_ptr<RecordStore> replicated = MakeRedisRecordStore(waiting);
  const absl::Status refused = io_.Run(replicated->PutReplicated(teams_, "t2", "second"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_THAT(Get(teams_, "t2"), Optional(std::string("second")));
  EXPECT_TRUE(io_.Run(replicated->Put(teams_, "t3", "third")).ok());
  waiting.Stop();
}

TEST_P(RecordStoreTest, CreatedBySaysWhichIdARequestIdMade) {
  EXPECT_EQ(Must(store_->CreatedBy(teams_, "req-1")), std::nullopt);
  ASSERT_EQ(Create(teams_, "t1", "first", "req-1").code, CreateCode::kCreated);
  EXPECT_THAT(Must(store_->CreatedBy(teams_, "req-1")), Optional(Field(&RequestRecord::id, "t1")));
  // A replay makes nothing new; the request id names its own table only.
  ASSERT_EQ(Create(teams_, "t2", "second", "req-1").code, CreateCode::kReplayed);
  EXPECT_THAT(Must(store_->CreatedBy(teams_, "req-1")), Optional(Field(&RequestRecord::id, "t1")));
  EXPECT_EQ(Must(store_->CreatedBy(campaigns_, "req-1")), std::nullopt);
  EXPECT_EQ(Must(store_->CreatedBy(Table{"globex", "teams"}, "req-1")), std::nullopt);
  EXPECT_EQ(Must(store_->CreatedBy(teams_, "")), std::nullopt);
}

TEST_P(RecordStoreTest, ARequestIdReusedByAnotherRequestIsRefusedAndChangesNothing) {
  ASSERT_EQ(Create(teams_, "t1", "first", "req-1", std::nullopt, "fp-a").code,
            CreateCode::kCreated);
  EXPECT_THAT(
      Must(store_->CreatedBy(teams_, "req-1")),
      Optional(AllOf(Field(&RequestRecord::id, "t1"), Field(&RequestRecord::fingerprint, "fp-a"))));

  CreateOutcome other = Create(teams_, "t2", "second", "req-1", std::nullopt, "fp-b");
  EXPECT_EQ(other.code, CreateCode::kRequestReused);
  EXPECT_EQ(other.reused_by, "t1");
  EXPECT_EQ(other.document, std::nullopt);
  EXPECT_THAT(GetAll(teams_), ElementsAre(Pair("t1", "first")));

  // The same fingerprint is a retry; a create without one (Herald's own) is taken for one.
  CreateOutcome retry = Create(teams_, "t3", "third", "req-1", std::nullopt, "fp-a");
  EXPECT_EQ(retry.code, CreateCode::kReplayed);
  EXPECT_THAT(retry.document, Optional(std::string("first")));
  EXPECT_EQ(Create(teams_, "t4", "fourth", "req-1").code, CreateCode::kReplayed);

  // A request id recorded without a fingerprint matches any request.
  ASSERT_EQ(Create(teams_, "t5", "fifth", "req-2").code, CreateCode::kCreated);
  CreateOutcome legacy = Create(teams_, "t6", "sixth", "req-2", std::nullopt, "fp-c");
  EXPECT_EQ(legacy.code, CreateCode::kReplayed);
  EXPECT_THAT(legacy.document, Optional(std::string("fifth")));
  EXPECT_THAT(GetAll(teams_), ElementsAre(Pair("t1", "first"), Pair("t5", "fifth")));
}

TEST_P(RecordStoreTest, ARequestIdNeverNamesAnothersFingerprint) {
  // Request ids are any text: "req-1:fp" and "req-1" are two requests, whatever the keys are.
  ASSERT_EQ(Create(teams_, "t1", "first", "req-1", std::nullopt, "fp-a").code,
            CreateCode::kCreated);
  ASSERT_EQ(Create(teams_, "t2", "second", "req-1:fp", std::nullopt, "fp-b").code,
            CreateCode::kCreated);
  EXPECT_EQ(Create(teams_, "t3", "third", "req-1", std::nullopt, "fp-a").code,
            CreateCode::kReplayed);
  EXPECT_EQ(Create(teams_, "t4", "fourth", "req-1", std::nullopt, "fp-c").code,
            CreateCode::kRequestReused);
  EXPECT_EQ(Create(teams_, "t5", "fifth", "req-1:fp", std::nullopt, "fp-b").code,
            CreateCode::kReplayed);
  EXPECT_THAT(GetAll(teams_), ElementsAre(Pair("t1", "first"), Pair("t2", "second")));
}

TEST_P(RecordStoreTest, ReplayOfACreateWhoseRecordWasDeletedHasNoDocument) {
  ASSERT_EQ(Create(teams_, "t1", "first", "req-1").code, CreateCode::kCreated);
  ASSERT_TRUE(Must(store_->Delete(teams_, "t1")));

  CreateOutcome again = Create(teams_, "t1", "first", "req-1");
  EXPECT_EQ(again.code, CreateCode::kReplayed);
  EXPECT_EQ(again.document, std::nullopt);
  EXPECT_EQ(Get(teams_, "t1"), std::nullopt);
}

TEST_P(RecordStoreTest, CreateOfATakenIdWithANewRequestIdChangesNothing) {
  ASSERT_EQ(Create(campaigns_, "c1", "first", "req-1", 10.0).code, CreateCode::kCreated);

  CreateOutcome taken = Create(campaigns_, "c1", "second", "req-2", 20.0);
  EXPECT_EQ(taken.code, CreateCode::kExists);
  EXPECT_EQ(taken.document, std::nullopt);
  EXPECT_THAT(Get(campaigns_, "c1"), Optional(std::string("first")));
  EXPECT_THAT(Index(campaigns_), ElementsAre(Pair("c1", 10.0)));

  // req-2 was not recorded: it creates another record afterwards.
  CreateOutcome other = Create(campaigns_, "c2", "third", "req-2", 30.0);
  EXPECT_EQ(other.code, CreateCode::kCreated);
  EXPECT_THAT(Get(campaigns_, "c2"), Optional(std::string("third")));
}

TEST_P(RecordStoreTest, CreateWithoutARequestIdIsNotIdempotent) {
  ASSERT_EQ(Create(teams_, "t1", "first").code, CreateCode::kCreated);
  EXPECT_EQ(Create(teams_, "t1", "first").code, CreateCode::kExists);
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("first")));
}

TEST_P(RecordStoreTest, RequestIdsAreScopedToTheirTableAndTenant) {
  ASSERT_EQ(Create(teams_, "t1", "team", "req-1").code, CreateCode::kCreated);

  const Table accounts{"acme", "accounts"};
  CreateOutcome other_table = Create(accounts, "a1", "account", "req-1");
  EXPECT_EQ(other_table.code, CreateCode::kCreated);
  EXPECT_THAT(Get(accounts, "a1"), Optional(std::string("account")));

  const Table other_teams{"globex", "teams"};
  CreateOutcome other_tenant = Create(other_teams, "t9", "globex team", "req-1");
  EXPECT_EQ(other_tenant.code, CreateCode::kCreated);
  EXPECT_THAT(Get(other_teams, "t9"), Optional(std::string("globex team")));

  const Table platform_teams{"", "teams"};
  EXPECT_EQ(Create(platform_teams, "p1", "platform", "req-1").code, CreateCode::kCreated);

  EXPECT_THAT(GetAll(teams_), ElementsAre(Pair("t1", "team")));
}

TEST_P(RecordStoreTest, CreateWithAScoreAddsAnIndexEntry) {
  ASSERT_EQ(Create(campaigns_, "c1", "one", "", 1'700'000'000'123.0).code, CreateCode::kCreated);
  ASSERT_EQ(Create(campaigns_, "c2", "two").code, CreateCode::kCreated);  // no score: no entry
  // Millisecond timestamps survive the round trip exactly, as do fractions.
  ASSERT_EQ(Create(campaigns_, "c3", "three", "", 0.25).code, CreateCode::kCreated);

  EXPECT_THAT(Index(campaigns_), ElementsAre(Pair("c1", 1'700'000'000'123.0), Pair("c3", 0.25)));
  EXPECT_THAT(Index(teams_), IsEmpty());
}

TEST_P(RecordStoreTest, ConcurrentCreatesOfOneIdCreateItOnce) {
  std::vector<asio::awaitable<absl::StatusOr<CreateOutcome>>> ops;
  for (int i = 0; i < 20; ++i) {
    CreateRequest request{.id = "t1",
                          .document = "doc " + std::to_string(i),
                          .request_id = "req-" + std::to_string(i % 2)};
    ops.push_back(store_->Create(teams_, std::move(request)));
  }
  int created = 0, replayed = 0, exists = 0;
  std::optional<std::string> winner;
  for (absl::StatusOr<CreateOutcome>& out : RunAll(std::move(ops))) {
    ASSERT_TRUE(out.ok()) << out.status();
    switch (out->code) {
      case CreateCode::kCreated:
        ++created;
        winner = out->document;
        break;
      case CreateCode::kReplayed:
        ++replayed;
        break;
      case CreateCode::kExists:
        ++exists;
        break;
      case CreateCode::kMissingReference:
      case CreateCode::kRequestReused:
        ADD_FAILURE() << "unexpected outcome " << static_cast<int>(out->code);
        break;
    }
  }
  // One create wins; the others of its request id replay it, the other request id finds it taken.
  EXPECT_EQ(created, 1);
  EXPECT_EQ(replayed, 9);
  EXPECT_EQ(exists, 10);
  EXPECT_EQ(Get(teams_, "t1"), winner);
}

TEST_P(RecordStoreTest, CreateWritesItsRowsAndBumpsItsRevisionInTheSameStep) {
  const Table targets{"acme", "c:c1:targets"};
  const Table deliveries{"acme", "c:c1:deliveries"};
  CreateRequest request{.id = "c1", .document = "campaign", .request_id = "req-1"};
  request.rows.push_back({.table = targets, .documents = {{"a1", "T1"}, {"a2", "T2"}}});
  request.rows.push_back({.table = deliveries, .documents = {{"a1", "D1"}}});
  request.revision = "c:c1";
  CreateOutcome out = Must(store_->Create(campaigns_, request));
  EXPECT_EQ(out.code, CreateCode::kCreated);
  EXPECT_EQ(out.revision, 1);
  EXPECT_THAT(out.reads, IsEmpty());
  EXPECT_THAT(Get(campaigns_, "c1"), Optional(std::string("campaign")));
  EXPECT_THAT(GetAll(targets), ElementsAre(Pair("a1", "T1"), Pair("a2", "T2")));
  EXPECT_THAT(GetAll(deliveries), ElementsAre(Pair("a1", "D1")));
  EXPECT_EQ(Revision("acme", "c:c1"), 1);

  // A replay, and a create of the taken id, write none of their rows and bump nothing.
  CreateRequest replay = request;
  replay.rows[0].documents = {{"a9", "T9"}};
  CreateOutcome again = Must(store_->Create(campaigns_, replay));
  EXPECT_EQ(again.code, CreateCode::kReplayed);
  EXPECT_EQ(again.revision, 0);
  CreateRequest taken = replay;
  taken.request_id = "req-2";
  EXPECT_EQ(Must(store_->Create(campaigns_, taken)).code, CreateCode::kExists);
  EXPECT_THAT(GetAll(targets), ElementsAre(Pair("a1", "T1"), Pair("a2", "T2")));
  EXPECT_EQ(Revision("acme", "c:c1"), 1);
}

TEST_P(RecordStoreTest, CreateWritesThousandsOfRows) {
  const Table targets{"acme", "c:c1:targets"};
  CreateRequest request{.id = "c1", .document = "campaign"};
  TableRows& rows = request.rows.emplace_back(TableRows{.table = targets});
  for (int i = 0; i < 10'000; ++i) rows.documents.emplace_back(StrCat("a", i), StrCat("T", i));
  const TableRows expected = rows;
  ASSERT_EQ(Must(store_->Create(campaigns_, std::move(request))).code, CreateCode::kCreated);
  Documents all = GetAll(targets);
  ASSERT_EQ(all.size(), 10'000u);
  Documents want = expected.documents;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(all, want);
}

TEST_P(RecordStoreTest, CreateReadsItsLookupsAfterTheStepWhateverItsOutcome) {
  ASSERT_EQ(Create(teams_, "t1", "T1").code, CreateCode::kCreated);
  CreateRequest request{.id = "t2", .document = "T2", .request_id = "req-1"};
  request.reads.push_back({.table = teams_, .ids = {"t2", "missing", "t1"}});
  request.reads.push_back({.table = campaigns_, .ids = {}});
  CreateOutcome out = Must(store_->Create(teams_, request));
  EXPECT_EQ(out.code, CreateCode::kCreated);
  ASSERT_EQ(out.reads.size(), 2u);
  EXPECT_THAT(out.reads[0],
              ElementsAre(Optional(std::string("T2")), std::nullopt, Optional(std::string("T1"))));
  EXPECT_THAT(out.reads[1], IsEmpty());

  CreateOutcome replay = Must(store_->Create(teams_, request));
  EXPECT_EQ(replay.code, CreateCode::kReplayed);
  ASSERT_EQ(replay.reads.size(), 2u);
  EXPECT_THAT(replay.reads[0],
              ElementsAre(Optional(std::string("T2")), std::nullopt, Optional(std::string("T1"))));
}

TEST_P(RecordStoreTest, CreateWithAMissingReferenceWritesNothingAndSaysWhatItFound) {
  const Table accounts{"acme", "accounts"};
  ASSERT_EQ(Create(accounts, "a1", R"({"team":"t1"})").code, CreateCode::kCreated);
  CreateRequest request{.id = "c1", .document = "campaign", .request_id = "req-1"};
  request.rows.push_back({.table = {"acme", "c:c1:targets"}, .documents = {{"a1", "T1"}}});
  request.revision = "c:c1";
  request.references.push_back({.table = accounts, .ids = {"a1", "a2"}});
  request.follow = Follow{.of = 0, .field = "team", .table = teams_};
  CreateOutcome out = Must(store_->Create(campaigns_, request));
  EXPECT_EQ(out.code, CreateCode::kMissingReference);
  ASSERT_EQ(out.references.size(), 1u);
  EXPECT_THAT(out.references[0],
              ElementsAre(Optional(std::string(R"({"team":"t1"})")), std::nullopt));
  EXPECT_THAT(out.followed, IsEmpty());
  EXPECT_EQ(Get(campaigns_, "c1"), std::nullopt);
  EXPECT_THAT(GetAll({"acme", "c:c1:targets"}), IsEmpty());
  EXPECT_EQ(Revision("acme", "c:c1"), 0);

  // Nothing recorded the request id: once the reference exists, the same request creates.
  ASSERT_EQ(Create(accounts, "a2", R"({"team":"t2"})").code, CreateCode::kCreated);
  out = Must(store_->Create(campaigns_, request));
  EXPECT_EQ(out.code, CreateCode::kCreated);
  EXPECT_EQ(Get(campaigns_, "c1"), std::optional<std::string>("campaign"));
}

TEST_P(RecordStoreTest, CreateFindsAReplayBeforeItsReferences) {
  const Table accounts{"acme", "accounts"};
  ASSERT_EQ(Create(accounts, "a1", "{}").code, CreateCode::kCreated);
  CreateRequest request{.id = "c1", .document = "campaign", .request_id = "req-1"};
  request.references.push_back({.table = accounts, .ids = {"a1"}});
  ASSERT_EQ(Must(store_->Create(campaigns_, request)).code, CreateCode::kCreated);
  ASSERT_TRUE(Must(store_->Delete(accounts, "a1")));

  CreateOutcome replay = Must(store_->Create(campaigns_, request));
  EXPECT_EQ(replay.code, CreateCode::kReplayed);
  EXPECT_THAT(replay.document, Optional(std::string("campaign")));
  ASSERT_EQ(replay.references.size(), 1u);
  EXPECT_THAT(replay.references[0], ElementsAre(std::nullopt));
}

TEST_P(RecordStoreTest, CreateReadsWhatItsReferencesNameOnceEachAfterTheWrite) {
  const Table accounts{"acme", "accounts"};
  ASSERT_EQ(Create(teams_, "t1", "T1").code, CreateCode::kCreated);
  ASSERT_EQ(Create(accounts, "a1", R"({"id":"a1","team":"t1"})").code, CreateCode::kCreated);
  ASSERT_EQ(Create(accounts, "a2", R"({"id":"a2","team":"t9"})").code, CreateCode::kCreated);
  ASSERT_EQ(Create(accounts, "a3", R"({"id":"a3","team":"t1"})").code, CreateCode::kCreated);
  ASSERT_EQ(Create(accounts, "a4", R"({"id":"a4","team":7})").code, CreateCode::kCreated);
  ASSERT_EQ(Create(accounts, "a5", R"({"id":"a5"})").code, CreateCode::kCreated);
  ASSERT_EQ(Create(accounts, "a6", "not JSON").code, CreateCode::kCreated);
  ASSERT_EQ(Create(accounts, "a7", R"(["team","t2"])").code, CreateCode::kCreated);
  CreateRequest request{.id = "c1", .document = "campaign"};
  request.references.push_back({.table = {"acme", "media"}, .ids = {}});
  request.references.push_back(
      {.table = accounts, .ids = {"a1", "a2", "a3", "a4", "a5", "a6", "a7"}});
  request.follow = Follow{.of = 1, .field = "team", .table = teams_};
  CreateOutcome out = Must(store_->Create(campaigns_, request));
  EXPECT_EQ(out.code, CreateCode::kCreated);
  ASSERT_EQ(out.references.size(), 2u);
  EXPECT_THAT(out.references[0], IsEmpty());
  EXPECT_EQ(out.references[1].size(), 7u);
  // t1 once, then t9, which does not exist; a number, no field, or a document that is not a
  // JSON object names nothing.
  EXPECT_THAT(out.followed, ElementsAre(Optional(std::string("T1")), std::nullopt));

  // Only a create follows: the same id again (taken) reads its references, and nothing more.
  CreateOutcome taken = Must(store_->Create(campaigns_, request));
  EXPECT_EQ(taken.code, CreateCode::kExists);
  EXPECT_EQ(taken.references.size(), 2u);
  EXPECT_THAT(taken.followed, IsEmpty());
}

TEST_P(RecordStoreTest, CreateFollowingAReferenceItDoesNotHaveIsRefused) {
  CreateRequest request{.id = "c1", .document = "campaign"};
  request.follow = Follow{.of = 0, .field = "team", .table = teams_};
  auto refused = Run(store_->Create(campaigns_, request));
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_EQ(Get(campaigns_, "c1"), std::nullopt);
}

TEST_P(RecordStoreTest, CreateTouchingAnotherTenantIsRefusedAndWritesNothing) {
  CreateRequest writes{.id = "c1", .document = "campaign"};
  writes.rows.push_back({.table = {"globex", "c:c1:targets"}, .documents = {{"a1", "T1"}}});
  auto refused = Run(store_->Create(campaigns_, writes));
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();

  CreateRequest reads{.id = "c1", .document = "campaign"};
  reads.reads.push_back({.table = {"globex", "teams"}, .ids = {"t1"}});
  refused = Run(store_->Create(campaigns_, reads));
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();

  CreateRequest references{.id = "c1", .document = "campaign"};
  references.references.push_back({.table = {"globex", "accounts"}, .ids = {"a1"}});
  refused = Run(store_->Create(campaigns_, references));
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();

  CreateRequest follows{.id = "c1", .document = "campaign"};
  follows.references.push_back({.table = {"acme", "accounts"}, .ids = {}});
  follows.follow = Follow{.of = 0, .field = "team", .table = {"globex", "teams"}};
  refused = Run(store_->Create(campaigns_, follows));
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();

  EXPECT_EQ(Get(campaigns_, "c1"), std::nullopt);
  EXPECT_THAT(GetAll({"globex", "c:c1:targets"}), IsEmpty());
}

// ---------------------------------------------------------------------------------------------
// Reads

TEST_P(RecordStoreTest, GetOfAMissingRecordIsNullopt) {
  EXPECT_EQ(Get(teams_, "nope"), std::nullopt);
  ASSERT_EQ(Create(teams_, "t1", "one").code, CreateCode::kCreated);
  EXPECT_EQ(Get(teams_, "nope"), std::nullopt);
}

TEST_P(RecordStoreTest, GetManyKeepsTheOrderOfTheIds) {
  ASSERT_EQ(Create(teams_, "a", "A").code, CreateCode::kCreated);
  ASSERT_EQ(Create(teams_, "b", "B").code, CreateCode::kCreated);

  std::vector<std::string> ids = {"b", "missing", "a", "b"};
  EXPECT_THAT(Must(store_->GetMany(teams_, ids)),
              ElementsAre(Optional(std::string("B")), std::nullopt, Optional(std::string("A")),
                          Optional(std::string("B"))));
  EXPECT_THAT(Must(store_->GetMany(teams_, {})), IsEmpty());
}

TEST_P(RecordStoreTest, GetTablesReadsSeveralTablesOfOneTenant) {
  ASSERT_EQ(Create(teams_, "t1", "T1").code, CreateCode::kCreated);
  ASSERT_EQ(Create(campaigns_, "c1", "C1").code, CreateCode::kCreated);
  std::vector<Lookup> lookups;
  lookups.push_back({.table = teams_, .ids = {"missing", "t1"}});
  lookups.push_back({.table = {"acme", "segments"}, .ids = {}});
  lookups.push_back({.table = campaigns_, .ids = {"c1", "c1"}});
  LookupResults found = Must(store_->GetTables(std::move(lookups)));
  ASSERT_EQ(found.size(), 3u);
  EXPECT_THAT(found[0], ElementsAre(std::nullopt, Optional(std::string("T1"))));
  EXPECT_THAT(found[1], IsEmpty());
  EXPECT_THAT(found[2], ElementsAre(Optional(std::string("C1")), Optional(std::string("C1"))));

  EXPECT_THAT(Must(store_->GetTables({})), IsEmpty());

  std::vector<Lookup> two_tenants;
  two_tenants.push_back({.table = teams_, .ids = {"t1"}});
  two_tenants.push_back({.table = {"globex", "teams"}, .ids = {"t1"}});
  auto refused = Run(store_->GetTables(std::move(two_tenants)));
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
}

TEST_P(RecordStoreTest, DocumentsAndIdsAreBinarySafe) {
  const std::string id("a\0b", 3);
  const std::string doc("{\"x\":\"\0\xff\"}\n", 11);
  ASSERT_EQ(Create(teams_, id, doc, "req\n1").code, CreateCode::kCreated);
  EXPECT_THAT(Get(teams_, id), Optional(doc));
  EXPECT_EQ(Get(teams_, "a"), std::nullopt);
  EXPECT_EQ(Must(store_->Replace(teams_, id, doc, doc + doc)), ReplaceCode::kReplaced);
  EXPECT_THAT(GetAll(teams_), ElementsAre(Pair(id, doc + doc)));
}

TEST_P(RecordStoreTest, GetAllIsSortedById) {
  EXPECT_THAT(GetAll(teams_), IsEmpty());
  ASSERT_EQ(Create(teams_, "c", "C").code, CreateCode::kCreated);
  Must(store_->Put(teams_, "a", "A"));
  ASSERT_EQ(Create(teams_, "b", "B").code, CreateCode::kCreated);
  Must(store_->Put(teams_, "aa", "AA"));

  EXPECT_THAT(GetAll(teams_),
              ElementsAre(Pair("a", "A"), Pair("aa", "AA"), Pair("b", "B"), Pair("c", "C")));
}

// ---------------------------------------------------------------------------------------------
// Writes

TEST_P(RecordStoreTest, PutWithoutRevisionSetsTheDocumentAndLeavesTheIndex) {
  EXPECT_EQ(Must(store_->Put(teams_, "t1", "one")), 0);
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("one")));
  EXPECT_EQ(Must(store_->Put(teams_, "t1", "two")), 0);  // overwrites
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("two")));

  // Put neither adds nor removes index entries.
  ASSERT_EQ(Create(campaigns_, "c1", "one", "", 5.0).code, CreateCode::kCreated);
  Must(store_->Put(campaigns_, "c1", "changed"));
  Must(store_->Put(campaigns_, "c2", "unindexed"));
  EXPECT_THAT(Index(campaigns_), ElementsAre(Pair("c1", 5.0)));
  EXPECT_THAT(Get(campaigns_, "c1"), Optional(std::string("changed")));
}

TEST_P(RecordStoreTest, PutWithRevisionBumpsTheCounterOncePerCall) {
  EXPECT_EQ(Revision("acme", "r"), 0);
  EXPECT_EQ(Must(store_->Put(teams_, "t1", "one", "r")), 1);
  EXPECT_EQ(Must(store_->Put(teams_, "t1", "two", "r")), 2);
  EXPECT_EQ(Revision("acme", "r"), 2);
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("two")));
  EXPECT_EQ(Revision("acme", "other"), 0);
}

TEST_P(RecordStoreTest, PutManySetsEveryDocumentAndBumpsTheRevisionOnce) {
  Must(store_->Put(teams_, "b", "old"));
  Documents docs = {{"c", "C"}, {"a", "A"}, {"b", "B"}};
  EXPECT_EQ(Must(store_->PutMany(teams_, docs, "r")), 1);
  EXPECT_EQ(Revision("acme", "r"), 1);
  EXPECT_THAT(GetAll(teams_), ElementsAre(Pair("a", "A"), Pair("b", "B"), Pair("c", "C")));

  Documents more = {{"d", "D"}, {"e", "E"}};
  EXPECT_EQ(Must(store_->PutMany(teams_, more, "r")), 2);

  Documents unrevised = {{"f", "F"}};
  EXPECT_EQ(Must(store_->PutMany(teams_, unrevised)), 0);
  EXPECT_EQ(Revision("acme", "r"), 2);
  EXPECT_THAT(Get(teams_, "f"), Optional(std::string("F")));

  // Nothing to write: the revision is still bumped when asked for, and nothing else happens.
  EXPECT_EQ(Must(store_->PutMany(teams_, {})), 0);
  EXPECT_EQ(Must(store_->PutMany(teams_, {}, "r")), 3);
  EXPECT_EQ(GetAll(teams_).size(), 6u);
}

TEST_P(RecordStoreTest, ReplaceSetsTheDocumentWhenItIsStillTheExpectedOne) {
  ASSERT_EQ(Create(teams_, "t1", "one").code, CreateCode::kCreated);
  EXPECT_EQ(Must(store_->Replace(teams_, "t1", "one", "two", "r")), ReplaceCode::kReplaced);
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("two")));
  EXPECT_EQ(Revision("acme", "r"), 1);

  EXPECT_EQ(Must(store_->Replace(teams_, "t1", "two", "three")), ReplaceCode::kReplaced);
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("three")));
  EXPECT_EQ(Revision("acme", "r"), 1);  // no revision asked for
}

TEST_P(RecordStoreTest, ConcurrentReplacesOfOneReadHaveOneWinner) {
  ASSERT_EQ(Create(teams_, "t1", "v0").code, CreateCode::kCreated);
  std::vector<asio::awaitable<absl::StatusOr<ReplaceCode>>> ops;
  for (int i = 0; i < 20; ++i) {
    ops.push_back(store_->Replace(teams_, "t1", "v0", "v" + std::to_string(i + 1), "r"));
  }
  int replaced = 0, conflicts = 0;
  for (absl::StatusOr<ReplaceCode>& code : RunAll(std::move(ops))) {
    ASSERT_TRUE(code.ok()) << code.status();
    if (*code == ReplaceCode::kReplaced) ++replaced;
    if (*code == ReplaceCode::kConflict) ++conflicts;
  }
  EXPECT_EQ(replaced, 1);
  EXPECT_EQ(conflicts, 19);
  EXPECT_EQ(Revision("acme", "r"), 1);
  EXPECT_NE(Get(teams_, "t1"), std::optional<std::string>("v0"));
}

TEST_P(RecordStoreTest, ReplaceOfAChangedDocumentConflictsAndChangesNothing) {
  ASSERT_EQ(Create(teams_, "t1", "one").code, CreateCode::kCreated);
  EXPECT_EQ(Must(store_->Replace(teams_, "t1", "stale", "two", "r")), ReplaceCode::kConflict);
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("one")));
  EXPECT_EQ(Revision("acme", "r"), 0);
}

TEST_P(RecordStoreTest, ReplaceOfAMissingRecordIsNotFoundAndCreatesNothing) {
  EXPECT_EQ(Must(store_->Replace(teams_, "t1", "one", "two", "r")), ReplaceCode::kNotFound);
  EXPECT_EQ(Get(teams_, "t1"), std::nullopt);
  EXPECT_EQ(Revision("acme", "r"), 0);
}

TEST_P(RecordStoreTest, ReplaceWritesItsRowsOnlyWhenItReplaces) {
  const Table claims{"acme", "claims"};
  ASSERT_EQ(Create(teams_, "t1", "one").code, CreateCode::kCreated);
  ReplaceRequest request{.id = "t1", .expected = "one", .document = "two", .revision = "r"};
  request.rows.push_back({.table = claims, .documents = {{"m1", "c1"}, {"m2", "c1"}}});
  ReplaceOutcome out = Must(store_->Replace(teams_, request));
  EXPECT_EQ(out.code, ReplaceCode::kReplaced);
  EXPECT_THAT(out.reads, IsEmpty());
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("two")));
  EXPECT_THAT(GetAll(claims), ElementsAre(Pair("m1", "c1"), Pair("m2", "c1")));
  EXPECT_EQ(Revision("acme", "r"), 1);

  // A conflict and a missing record write none of their rows and bump nothing.
  ReplaceRequest stale = request;
  stale.document = "three";
  stale.rows[0].documents = {{"m3", "c2"}};
  EXPECT_EQ(Must(store_->Replace(teams_, stale)).code, ReplaceCode::kConflict);
  ReplaceRequest missing = stale;
  missing.id = "t9";
  EXPECT_EQ(Must(store_->Replace(teams_, missing)).code, ReplaceCode::kNotFound);
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("two")));
  EXPECT_EQ(Get(teams_, "t9"), std::nullopt);
  EXPECT_THAT(GetAll(claims), ElementsAre(Pair("m1", "c1"), Pair("m2", "c1")));
  EXPECT_EQ(Revision("acme", "r"), 1);
}

TEST_P(RecordStoreTest, ReplaceReadsItsLookupsAfterTheStepWhateverItsOutcome) {
  ASSERT_EQ(Create(teams_, "t1", "one").code, CreateCode::kCreated);
  ASSERT_EQ(Create(campaigns_, "c1", "C1").code, CreateCode::kCreated);
  ReplaceRequest request{.id = "t1", .expected = "one", .document = "two"};
  request.reads.push_back({.table = teams_, .ids = {"t1", "missing"}});
  request.reads.push_back({.table = campaigns_, .ids = {}});
  request.reads.push_back({.table = campaigns_, .ids = {"c1"}});
  ReplaceOutcome out = Must(store_->Replace(teams_, request));
  EXPECT_EQ(out.code, ReplaceCode::kReplaced);
  ASSERT_EQ(out.reads.size(), 3u);
  EXPECT_THAT(out.reads[0], ElementsAre(Optional(std::string("two")), std::nullopt));
  EXPECT_THAT(out.reads[1], IsEmpty());
  EXPECT_THAT(out.reads[2], ElementsAre(Optional(std::string("C1"))));

  ReplaceOutcome conflict = Must(store_->Replace(teams_, request));
  EXPECT_EQ(conflict.code, ReplaceCode::kConflict);
  ASSERT_EQ(conflict.reads.size(), 3u);
  EXPECT_THAT(conflict.reads[0], ElementsAre(Optional(std::string("two")), std::nullopt));
  EXPECT_THAT(conflict.reads[2], ElementsAre(Optional(std::string("C1"))));
}

TEST_P(RecordStoreTest, ReplaceTouchingAnotherTenantIsRefusedAndWritesNothing) {
  ASSERT_EQ(Create(teams_, "t1", "one").code, CreateCode::kCreated);
  ReplaceRequest writes{.id = "t1", .expected = "one", .document = "two"};
  writes.rows.push_back({.table = {"globex", "claims"}, .documents = {{"m1", "c1"}}});
  auto refused = Run(store_->Replace(teams_, writes));
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();

  ReplaceRequest reads{.id = "t1", .expected = "one", .document = "two"};
  reads.reads.push_back({.table = {"globex", "teams"}, .ids = {"t1"}});
  refused = Run(store_->Replace(teams_, reads));
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();

  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("one")));
  EXPECT_THAT(GetAll({"globex", "claims"}), IsEmpty());
}

TEST_P(RecordStoreTest, DeleteRemovesTheRecordAndItsIndexEntry) {
  ASSERT_EQ(Create(campaigns_, "c1", "one", "", 1.0).code, CreateCode::kCreated);
  ASSERT_EQ(Create(campaigns_, "c2", "two", "", 2.0).code, CreateCode::kCreated);

  EXPECT_TRUE(Must(store_->Delete(campaigns_, "c1")));
  EXPECT_EQ(Get(campaigns_, "c1"), std::nullopt);
  EXPECT_THAT(Index(campaigns_), ElementsAre(Pair("c2", 2.0)));
  EXPECT_FALSE(Must(store_->Delete(campaigns_, "c1")));
  EXPECT_FALSE(Must(store_->Delete(campaigns_, "never")));

  // The id is free again.
  EXPECT_EQ(Create(campaigns_, "c1", "again", "", 3.0).code, CreateCode::kCreated);
  EXPECT_THAT(Index(campaigns_), ElementsAre(Pair("c1", 3.0), Pair("c2", 2.0)));
}

TEST_P(RecordStoreTest, DeleteTableRemovesItsDocumentsAndIndexAndNoOtherTable) {
  ASSERT_EQ(Create(campaigns_, "c1", "one", "", 1.0).code, CreateCode::kCreated);
  ASSERT_EQ(Create(campaigns_, "c2", "two", "", 2.0).code, CreateCode::kCreated);
  ASSERT_EQ(Create(teams_, "t1", "team", "").code, CreateCode::kCreated);

  EXPECT_TRUE(Must(store_->DeleteTable(campaigns_)));
  EXPECT_THAT(GetAll(campaigns_), IsEmpty());
  EXPECT_THAT(Index(campaigns_), IsEmpty());
  EXPECT_THAT(Get(teams_, "t1"), Optional(std::string("team")));
  EXPECT_FALSE(Must(store_->DeleteTable(campaigns_))) << "nothing left to remove";
  EXPECT_FALSE(Must(store_->DeleteTable({"acme", "never"})));

  // The table takes documents again.
  ASSERT_EQ(Create(campaigns_, "c3", "three", "", 3.0).code, CreateCode::kCreated);
  EXPECT_THAT(Index(campaigns_), ElementsAre(Pair("c3", 3.0)));
}

TEST_P(RecordStoreTest, PutExpiringSetsTheDocumentAndHasTheTableExpire) {
  const Table outcomes{"acme", "outcomes:op1"};
  ASSERT_TRUE(Run(store_->PutExpiring(outcomes, "0", "done", absl::Minutes(5))).ok());
  ASSERT_TRUE(Run(store_->PutExpiring(outcomes, "1", "failed", absl::Minutes(5))).ok());
  EXPECT_THAT(GetAll(outcomes), ElementsAre(Pair("0", "done"), Pair("1", "failed")));
  if (GetParam() == Backend::kMemory) return;  // keeps them until deleted

  auto ttl = Run(client_->Exec({"PTTL", StrCat(TenantKeyPrefix("acme"), "outcomes:op1")}));
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(ttl->integer(), 0);
  EXPECT_LE(ttl->integer(), 5 * 60 * 1000);
  // A write that expires at once takes the table's earlier documents with it.
  ASSERT_TRUE(Run(store_->PutExpiring(outcomes, "2", "late", absl::Milliseconds(1))).ok());
  EXPECT_TRUE(testing::WaitFor([&] { return GetAll(outcomes).empty(); }, absl::Seconds(10)));
}

// ---------------------------------------------------------------------------------------------
// IndexBefore

TEST_P(RecordStoreTest, IndexBeforeIsHighestScoreFirstStrictlyBeforeAndLimited) {
  for (auto [id, score] : Scores{{"c10", 10}, {"c30", 30}, {"c20", 20}, {"c40", 40}}) {
    ASSERT_EQ(Create(campaigns_, id, "doc", "", score).code, CreateCode::kCreated);
  }
  EXPECT_THAT(Index(campaigns_),
              ElementsAre(Pair("c40", 40), Pair("c30", 30), Pair("c20", 20), Pair("c10", 10)));
  EXPECT_THAT(Index(campaigns_, 30.0), ElementsAre(Pair("c20", 20), Pair("c10", 10)));
  EXPECT_THAT(Index(campaigns_, 30.5),
              ElementsAre(Pair("c30", 30), Pair("c20", 20), Pair("c10", 10)));
  EXPECT_THAT(Index(campaigns_, 10.0), IsEmpty());
  EXPECT_THAT(Index(campaigns_, std::nullopt, 2), ElementsAre(Pair("c40", 40), Pair("c30", 30)));
  EXPECT_THAT(Index(campaigns_, 40.0, 1), ElementsAre(Pair("c30", 30)));
  EXPECT_THAT(Index(campaigns_, std::nullopt, 0), IsEmpty());
}

TEST_P(RecordStoreTest, IndexBeforeOrdersEqualScoresByIdDescending) {
  for (const char* id : {"b", "a", "c"}) {
    ASSERT_EQ(Create(campaigns_, id, "doc", "", 7.0).code, CreateCode::kCreated);
  }
  ASSERT_EQ(Create(campaigns_, "z", "doc", "", 6.0).code, CreateCode::kCreated);
  EXPECT_THAT(Index(campaigns_),
              ElementsAre(Pair("c", 7.0), Pair("b", 7.0), Pair("a", 7.0), Pair("z", 6.0)));
  EXPECT_THAT(Index(campaigns_, std::nullopt, 2), ElementsAre(Pair("c", 7.0), Pair("b", 7.0)));
  EXPECT_THAT(Index(campaigns_, 7.0), ElementsAre(Pair("z", 6.0)));
}

TEST_P(RecordStoreTest, IndexBeforeWithANegativeLimitHasNoLimit) {
  for (auto [id, score] : Scores{{"c1", 1}, {"c2", 2}, {"c3", 3}}) {
    ASSERT_EQ(Create(campaigns_, id, "doc", "", score).code, CreateCode::kCreated);
  }
  EXPECT_THAT(Index(campaigns_, std::nullopt, -1),
              ElementsAre(Pair("c3", 3), Pair("c2", 2), Pair("c1", 1)));
  EXPECT_THAT(Index(campaigns_, 3.0, -5), ElementsAre(Pair("c2", 2), Pair("c1", 1)));
}

TEST_P(RecordStoreTest, IndexBeforeOfATableWithNoEntriesIsEmpty) {
  EXPECT_THAT(Index(campaigns_), IsEmpty());
  EXPECT_THAT(Index(campaigns_, 100.0, 10), IsEmpty());
}

// ---------------------------------------------------------------------------------------------
// Revisions and blobs

TEST_P(RecordStoreTest, RevisionsAreCountersOfTheirTenant) {
  EXPECT_EQ(Revision("acme", "c:1"), 0);
  Must(store_->Put(teams_, "t1", "one", "c:1"));
  Must(store_->Put(Table{"globex", "teams"}, "t1", "one", "c:1"));
  Must(store_->Put(Table{"globex", "teams"}, "t1", "two", "c:1"));
  EXPECT_EQ(Revision("acme", "c:1"), 1);
  EXPECT_EQ(Revision("globex", "c:1"), 2);
  EXPECT_EQ(Revision("", "c:1"), 0);
  // A revision is the tenant's, whichever table bumped it.
  EXPECT_EQ(Must(store_->Put(Table{"acme", "accounts"}, "a1", "one", "c:1")), 2);
}

TEST_P(RecordStoreTest, BlobsAreStoredAsBytesPerTenant) {
  EXPECT_EQ(Must(store_->GetBlob("acme", "media:m1")), std::nullopt);

  const std::string bytes("\x89PNG\r\n\x1a\n\0\xff", 10);  // binary, with a NUL
  EXPECT_TRUE(Must(store_->PutBlob("acme", "media:m1", bytes)));
  EXPECT_THAT(Must(store_->GetBlob("acme", "media:m1")), Optional(bytes));
  EXPECT_EQ(Must(store_->GetBlob("globex", "media:m1")), std::nullopt);

  EXPECT_TRUE(Must(store_->PutBlob("acme", "media:m1", "replaced")));
  EXPECT_THAT(Must(store_->GetBlob("acme", "media:m1")), Optional(std::string("replaced")));
  EXPECT_TRUE(Must(store_->DeleteBlob("acme", "media:m1")));
  EXPECT_EQ(Must(store_->GetBlob("acme", "media:m1")), std::nullopt);
  EXPECT_FALSE(Must(store_->DeleteBlob("acme", "media:m1")));
}

// ---------------------------------------------------------------------------------------------
// Tenants

TEST_P(RecordStoreTest, TheSameTableAndIdInTwoTenantsAreIndependent) {
  const Table acme{"acme", "campaigns"};
  const Table globex{"globex", "campaigns"};
  const Table platform{"", "campaigns"};

  ASSERT_EQ(Create(acme, "c1", "acme doc", "req-1", 1.0).code, CreateCode::kCreated);
  // Neither the id nor the request id is taken in the other tenants.
  ASSERT_EQ(Create(globex, "c1", "globex doc", "req-1", 2.0).code, CreateCode::kCreated);
  ASSERT_EQ(Create(platform, "c1", "platform doc", "req-1", 3.0).code, CreateCode::kCreated);

  EXPECT_THAT(Get(acme, "c1"), Optional(std::string("acme doc")));
  EXPECT_THAT(Get(globex, "c1"), Optional(std::string("globex doc")));
  EXPECT_THAT(Index(acme), ElementsAre(Pair("c1", 1.0)));
  EXPECT_THAT(Index(globex), ElementsAre(Pair("c1", 2.0)));

  Must(store_->Put(globex, "c2", "globex two"));
  EXPECT_EQ(Must(store_->Replace(globex, "c1", "globex doc", "globex changed")),
            ReplaceCode::kReplaced);
  EXPECT_THAT(GetAll(acme), ElementsAre(Pair("c1", "acme doc")));

  EXPECT_TRUE(Must(store_->Delete(acme, "c1")));
  EXPECT_EQ(Get(acme, "c1"), std::nullopt);
  EXPECT_THAT(GetAll(globex), ElementsAre(Pair("c1", "globex changed"), Pair("c2", "globex two")));
  EXPECT_THAT(Index(globex), ElementsAre(Pair("c1", 2.0)));
  EXPECT_THAT(Get(platform, "c1"), Optional(std::string("platform doc")));
}

}  // namespace
}  // namespace herald::store
