// The herald binary as operators run it: flags, probes, gRPC health and reflection, and the
// SIGTERM drain.
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <absl/cleanup/cleanup.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gmock/gmock.h>
#include <grpc/health/v1/health.grpc.pb.h>
#include <grpc/reflection/v1alpha/reflection.grpc.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <herald/common/config.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/queue/queue.h>
#include <herald/redis/client.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/net.h>
#include <herald/testing/promtool.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/sim_ledger.h>
#include <herald/testing/simulator_process.h>
#include <herald/testing/wait.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/audience.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/events.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using testing::HeraldProcess;
using testing::HttpGet;
using ::testing::Not;
using testing::RunHerald;

class HeraldServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
  }

  static constexpr char kAdmin[] = "serve-test-admin-key";

  // `herald serve --role=api` with `flags`, the admin key above and this test's Redis.
  absl::StatusOr<std::unique_ptr<HeraldProcess>> StartApi(std::vector<std::string> flags) {
    std::vector<std::string> args = {"serve", "--role=api"};
    args.insert(args.end(), flags.begin(), flags.end());
    return HeraldProcess::Start({.args = std::move(args),
                                 .env = {{"HERALD_ADMIN_KEY", kAdmin}},
                                 .redis_port = redis_->port()});
  }

  // herald (`role`, --drain_timeout=2s) on an upstream simulator started with `sim_args` and this
  // test's Redis, with tenant `tenant` and its team `team` of the simulator's accounts.
  struct UpstreamStack {
    std::unique_ptr<testing::SimulatorProcess> sim;
    std::unique_ptr<HeraldProcess> herald;
    std::shared_ptr<grpc::Channel> channel;
    std::string key;
    testing::TeamWithAccounts team;
  };
  void StartOnSimulator(std::string_view role, std::vector<std::string> sim_args,
                        std::string_view tenant, const testing::TeamSpec& team,
                        UpstreamStack& out) {
    auto sim = testing::SimulatorProcess::Start({.args = std::move(sim_args)});
    ASSERT_TRUE(sim.ok()) << sim.status();
    out.sim = *std::move(sim);
    auto herald = HeraldProcess::Start(
        {.args = {"serve", StrCat("--role=", role), "--drain_timeout=2s",
                  StrCat("--upstream_url=http://127.0.0.1:", out.sim->port())},
         .env = {{"HERALD_ADMIN_KEY", kAdmin}, {"HERALD_ENCRYPTION_KEY", std::string(64, 'd')}},
         .redis_port = redis_->port()});
    ASSERT_TRUE(herald.ok()) << herald.status();
    out.herald = *std::move(herald);
    out.channel =
        grpc::CreateChannel(out.herald->grpc_target(), grpc::InsecureChannelCredentials());
    auto key = testing::CreateTenant(out.channel, kAdmin, tenant, "", absl::Seconds(30));
    ASSERT_TRUE(key.ok()) << key.status();
    out.key = *std::move(key);
    auto made = testing::CreateTeamWithAccounts(out.channel, out.key, tenant, team);
    ASSERT_TRUE(made.ok()) << made.status();
    out.team = *std::move(made);
  }

  std::unique_ptr<testing::RedisServer> redis_;
};

std::shared_ptr<grpc::Channel> Connect(const HeraldProcess& herald) {
  return grpc::CreateChannel(herald.grpc_target(), grpc::InsecureChannelCredentials());
}

// A Subscribe stream of the tenant's events, once the server has answered it (its headers are
// in: the stream is registered).
struct Subscription {
  Subscription(const std::shared_ptr<grpc::Channel>& channel, const std::string& key,
               const std::string& tenant, absl::Duration deadline)
      : context(testing::BearerContext(key, deadline)) {
    v1::SubscribeRequest req;
    req.set_parent(StrCat("tenants/", tenant));
    stream = v1::EventService::NewStub(channel)->Subscribe(context.get(), req);
    stream->WaitForInitialMetadata();
  }
  // Whether the server sent the cursor the stream starts after (it read where to start).
  bool Started() const {
    const auto& headers = context->GetServerInitialMetadata();
    return headers.find("herald-start-cursor") != headers.end();
  }
  // Reads until the server ends the stream; how it ended.
  grpc::Status End() {
    v1::Event event;
    while (stream->Read(&event)) {
    }
    return stream->Finish();
  }

  std::unique_ptr<grpc::ClientContext> context;  // outlives the stream
  std::unique_ptr<grpc::ClientReader<v1::Event>> stream;
};

TEST_F(HeraldServeTest, ProbesAndMetricsAnswer) {
  auto herald = HeraldProcess::Start({.redis_port = redis_->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  auto healthz = HttpGet((*herald)->admin_port(), "/healthz");
  ASSERT_TRUE(healthz.ok());
  EXPECT_EQ(healthz->status, 200);
  // Live because its event loop beats, not for want of a loop to watch.
  EXPECT_TRUE(testing::WaitFor([&] {
    auto beating = HttpGet((*herald)->admin_port(), "/healthz");
    return beating.ok() && beating->status == 200 && beating->body == "io: ok\n";
  }));
  auto metrics = HttpGet((*herald)->admin_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, HasSubstr("herald_build_info{roles=\"api,worker,ingest\""));
  // Before any team is used, the upstream calls' series are there at 0: a first refusal is an
  // increase the alerts see.
  EXPECT_THAT(metrics->body, HasSubstr("herald_upstream_requests_total{endpoint=\"send_mass_"
                                       "message\",outcome=\"out_of_credits\"} 0\n"));
  // Started without a platform admin key, it says what that means.
  EXPECT_THAT((*herald)->Logs(), HasSubstr("no --admin_key"));
  const absl::Status promtool = testing::PromtoolCheckMetrics(metrics->body);
  EXPECT_TRUE(promtool.ok()) << promtool;
}

TEST_F(HeraldServeTest, GrpcHealthIsServingAndReflectionListsServices) {
  auto herald = HeraldProcess::Start({.redis_port = redis_->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  auto channel = Connect(**herald);

  auto health = Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&ctx, HealthCheckRequest(), &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  // Each service by its name too.
  for (const char* service : {"herald.v1.CampaignService", "herald.v1.TenantService",
                              "herald.v1.AnalyticsService", "herald.v1.EventService"}) {
    grpc::ClientContext sctx;
    sctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    HealthCheckRequest named;
    named.set_service(service);
    const grpc::Status s = health->Check(&sctx, named, &response);
    ASSERT_TRUE(s.ok()) << service << ": " << s.error_message();
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING) << service;
  }

  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  grpc::ClientContext rctx;
  rctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = reflection->ServerReflectionInfo(&rctx);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse reply;
  ASSERT_TRUE(stream->Read(&reply));
  std::vector<std::string> names;
  for (const auto& s : reply.list_services_response().service()) names.push_back(s.name());
  EXPECT_THAT(names, ::testing::Contains("grpc.health.v1.Health"));
  EXPECT_THAT(names, ::testing::Contains("grpc.reflection.v1alpha.ServerReflection"));
  while (stream->Read(&reply)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(HeraldServeTest, SigtermDrainsAndExitsZero) {
  auto herald = HeraldProcess::Start(
      {.args = {"serve", "--role=all", "--drain_timeout=5s"}, .redis_port = redis_->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();

  // A client watching health sees the server go NOT_SERVING before it stops.
  auto health = Health::NewStub(Connect(**herald));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto watch = health->Watch(&ctx, HealthCheckRequest());
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  ASSERT_EQ(update.status(), HealthCheckResponse::SERVING);

  const absl::Time sent = absl::Now();
  (*herald)->process().Signal(SIGTERM);
  bool saw_not_serving = false;
  while (watch->Read(&update)) {
    if (update.status() == HealthCheckResponse::NOT_SERVING) saw_not_serving = true;
  }
  EXPECT_TRUE(saw_not_serving);

  // Exits 0 within the drain timeout (plus process teardown).
  const std::optional<int> status = (*herald)->process().Wait(absl::Seconds(5) + absl::Seconds(10));
  ASSERT_TRUE(status.has_value()) << "still running after the drain timeout\n" << (*herald)->Logs();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << (*herald)->Logs();
  EXPECT_LT(absl::Now() - sent, absl::Seconds(15));
  const std::string logs = (*herald)->Logs();
  EXPECT_THAT(logs, HasSubstr("\"msg\":\"draining\""));
  EXPECT_THAT(logs, HasSubstr("\"msg\":\"herald stopped\""));
}

// A worker drained while sends are stuck upstream (30 s each) and more wait for a connection
// to the upstream: at --drain_timeout every one is cancelled and the process exits, rather than
// a waiting call taking a connection its cancelled neighbour freed and starting a send, which
// the drain would then wait out.
TEST_F(HeraldServeTest, SigtermCancelsStuckAndWaitingUpstreamCallsAtTheDrainTimeout) {
  constexpr int kAccounts = 20;  // more than the upstream client's 8 connections
  UpstreamStack u;
  ASSERT_NO_FATAL_FAILURE(
      StartOnSimulator("all",
                       {"--teams=1", StrCat("--accounts_per_team=", kAccounts),
                        "--fans_per_account=10", "--rate_limit_per_minute=100000"},
                       "drain", {.team_id = "main", .rate_limit_per_minute = 0}, u));
  ASSERT_EQ(u.team.accounts.size(), static_cast<size_t>(kAccounts));
  auto slow = testing::HttpRequest(
      u.sim->port(), "POST", "/_sim/faults",
      R"({"methods":["POST"],"path_contains":"/mass-messaging","latency_ms":{"fixed":30000}})");
  ASSERT_TRUE(slow.ok() && slow->status == 200) << (slow.ok() ? slow->body : "");
  v1::CreateCampaignRequest create;
  create.set_parent("tenants/drain");
  create.mutable_campaign()->set_display_name("held upstream");
  create.mutable_campaign()->mutable_content()->set_text("hello");
  for (const std::string& account : u.team.accounts) {
    v1::AccountTarget* target = create.mutable_campaign()->add_targets();
    target->set_account(account);
    target->add_user_lists("fans");
  }
  v1::Campaign campaign;
  auto campaigns = v1::CampaignService::NewStub(u.channel);
  grpc::Status created =
      campaigns->CreateCampaign(testing::BearerContext(u.key).get(), create, &campaign);
  ASSERT_TRUE(created.ok()) << created.error_message();
  // Every send has started: 8 stuck upstream, the rest waiting for one of their connections.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto metrics = HttpGet(u.herald->admin_port(), "/metrics");
        return metrics.ok() && metrics->body.find(StrCat("herald_jobs_in_flight ", kAccounts,
                                                         "\n")) != std::string::npos;
      },
      absl::Seconds(60)))  // a bound for a loaded CI machine; it is met in about a second
      << u.herald->Logs();

  const absl::Time sent = absl::Now();
  u.herald->process().Signal(SIGTERM);
  const std::optional<int> status = u.herald->process().Wait(absl::Seconds(25));
  ASSERT_TRUE(status.has_value()) << "still running 25 s after SIGTERM\n" << u.herald->Logs();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << u.herald->Logs();
  // Well before any stuck send could have come back (30 s).
  EXPECT_LT(absl::Now() - sent, absl::Seconds(15)) << u.herald->Logs();
}

// An API call stuck on the upstream (SyncAccounts, its GET /accounts held 40 s) does not hold the
// process past --drain_timeout: at the deadline its work is cancelled, the call ends with an
// error, and the process exits.
TEST_F(HeraldServeTest, SigtermCancelsAnApiCallStuckUpstreamAtTheDrainTimeout) {
  UpstreamStack u;
  ASSERT_NO_FATAL_FAILURE(StartOnSimulator(
      "api", {"--teams=1", "--accounts_per_team=2", "--rate_limit_per_minute=100000"}, "apidrain",
      {.team_id = "main"}, u));
  auto slow = testing::HttpRequest(
      u.sim->port(), "POST", "/_sim/faults",
      R"({"methods":["GET"],"path_contains":"/accounts","latency_ms":{"fixed":40000}})");
  ASSERT_TRUE(slow.ok() && slow->status == 200) << (slow.ok() ? slow->body : "");

  grpc::Status synced;
  const std::unique_ptr<grpc::ClientContext> context =
      testing::BearerContext(u.key, absl::Minutes(2));
  std::thread caller([&] {
    v1::SyncAccountsRequest req;
    req.set_team(u.team.team.name());
    v1::SyncAccountsResponse resp;
    synced = v1::AccountService::NewStub(u.channel)->SyncAccounts(context.get(), req, &resp);
  });
  absl::Cleanup stop_caller = [&] {
    if (!caller.joinable()) return;
    context->TryCancel();
    caller.join();
  };
  ASSERT_TRUE(testing::WaitFor([&] {
    auto stats = testing::ReadSimStats(u.sim->port());
    return stats.ok() && stats->at("requests").at("in_flight").to_number<int64_t>() > 0;
  })) << u.herald->Logs();

  const absl::Time sent = absl::Now();
  u.herald->process().Signal(SIGTERM);
  const std::optional<int> status = u.herald->process().Wait(absl::Seconds(30));
  ASSERT_TRUE(status.has_value()) << "still running 30 s after SIGTERM\n" << u.herald->Logs();
  caller.join();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << u.herald->Logs();
  // Well before the upstream could have answered (40 s) or the call timed out.
  EXPECT_LT(absl::Now() - sent, absl::Seconds(15)) << u.herald->Logs();
  // The cut's own answer, before gRPC dropped the connection: a write may have taken effect.
  EXPECT_EQ(synced.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << synced.error_message();
  EXPECT_THAT(synced.error_message(), HasSubstr("shut down before the call finished"));
}

// A server stream never ends by itself (Subscribe follows the tenant's events until the client
// leaves). On SIGTERM the API closes: the stream ends at once with UNAVAILABLE, which tells the
// client to resume elsewhere, and the process exits well before its drain deadline (which would
// otherwise hold it open, then cancel the stream).
TEST_F(HeraldServeTest, SigtermEndsOpenStreamsWithUnavailableInsteadOfWaitingOutTheDrain) {
  auto herald = StartApi({"--drain_timeout=120s"});
  ASSERT_TRUE(herald.ok()) << herald.status();
  std::shared_ptr<grpc::Channel> channel = Connect(**herald);
  absl::StatusOr<std::string> key = testing::CreateTenant(channel, kAdmin, "streamer");
  ASSERT_TRUE(key.ok()) << key.status();

  // The server sends its headers as the stream opens: it is registered before the signal.
  Subscription subscription(channel, *key, "streamer", absl::Minutes(5));

  (*herald)->process().Signal(SIGTERM);
  const grpc::Status status = subscription.End();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
  const std::optional<int> exit = (*herald)->process().Wait(absl::Seconds(60));
  ASSERT_TRUE(exit.has_value()) << "still draining an ended stream\n" << (*herald)->Logs();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << (*herald)->Logs();
}

// --media_buffer_bytes bounds what the uploads in progress hold together: two uploads that would
// go over it are not both stored (one at least is refused, RESOURCE_EXHAUSTED, storing nothing),
// and the buffer is whole again once they end.
// An upload of `tenant`'s with 1 MiB sent and the call still open.
struct OpenUpload {
  std::unique_ptr<grpc::ClientContext> context;
  v1::MediaAsset asset;
  std::unique_ptr<grpc::ClientWriter<v1::UploadMediaAssetRequest>> writer;
};

OpenUpload StartUpload(v1::MediaService::Stub& media, const std::string& key,
                       const std::string& tenant) {
  OpenUpload u{.context = testing::BearerContext(key)};
  u.writer = media.UploadMediaAsset(u.context.get(), &u.asset);
  v1::UploadMediaAssetRequest part;
  part.mutable_metadata()->set_parent(StrCat("tenants/", tenant));
  v1::MediaAsset* asset = part.mutable_metadata()->mutable_media_asset();
  asset->set_type(v1::MediaAsset::IMAGE);
  asset->set_file_name("teaser.jpg");
  asset->set_content_type("image/jpeg");
  bool open = u.writer->Write(part);
  part.clear_metadata();
  for (int i = 0; open && i < 16; ++i) {
    part.set_chunk(std::string(64 * 1024, 'x'));
    open = u.writer->Write(part);
  }
  return u;
}

grpc::Status FinishUpload(OpenUpload& u) {
  u.writer->WritesDone();
  return u.writer->Finish();
}

// An upload in progress when SIGTERM comes may finish within the drain: its last chunks are
// read, the asset is stored and answered, and the process then exits.
TEST_F(HeraldServeTest, AnUploadInProgressAtSigtermFinishesWithinTheDrain) {
  auto herald = StartApi({"--drain_timeout=30s"});
  ASSERT_TRUE(herald.ok()) << herald.status();
  std::shared_ptr<grpc::Channel> channel = Connect(**herald);
  absl::StatusOr<std::string> key = testing::CreateTenant(channel, kAdmin, "drainupload");
  ASSERT_TRUE(key.ok()) << key.status();
  auto media = v1::MediaService::NewStub(channel);
  OpenUpload upload = StartUpload(*media, *key, "drainupload");
  Subscription subscription(channel, *key, "drainupload", absl::Seconds(60));

  // The stream's end says the API has closed: no new call gets in from now on.
  (*herald)->process().Signal(SIGTERM);
  const grpc::Status ended = subscription.End();
  ASSERT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
  ASSERT_THAT(ended.error_message(), HasSubstr("shutting down"));
  v1::UploadMediaAssetRequest last;
  last.set_chunk(std::string(64 * 1024, 'y'));
  EXPECT_TRUE(upload.writer->Write(last));
  const grpc::Status finished = FinishUpload(upload);
  EXPECT_TRUE(finished.ok()) << finished.error_message() << (*herald)->Logs();
  EXPECT_THAT(upload.asset.name(), HasSubstr("tenants/drainupload/media/"));
  EXPECT_EQ(upload.asset.size_bytes(), 17 * 64 * 1024);

  const std::optional<int> exit = (*herald)->process().Wait(absl::Seconds(60));
  ASSERT_TRUE(exit.has_value()) << (*herald)->Logs();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << (*herald)->Logs();
}

TEST_F(HeraldServeTest, UploadsInProgressShareABoundedBuffer) {
  auto herald = StartApi({"--media_max_bytes=1048576", "--media_buffer_bytes=1572864"});
  ASSERT_TRUE(herald.ok()) << herald.status();
  std::shared_ptr<grpc::Channel> channel = Connect(**herald);
  absl::StatusOr<std::string> key = testing::CreateTenant(channel, kAdmin, "uploads");
  ASSERT_TRUE(key.ok()) << key.status();
  auto media = v1::MediaService::NewStub(channel);

  // The first upload is still open, holding what it sent, while the second is sent in full:
  // both do not fit. Which is refused depends on how the server interleaves their chunks (both
  // may be, when each finds the other's in the buffer).
  OpenUpload first = StartUpload(*media, *key, "uploads");
  OpenUpload second = StartUpload(*media, *key, "uploads");
  const grpc::Status second_status = FinishUpload(second);
  const grpc::Status first_status = FinishUpload(first);
  int stored = 0;
  for (const grpc::Status* s : {&first_status, &second_status}) {
    if (s->ok()) {
      ++stored;
      continue;
    }
    EXPECT_EQ(s->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s->error_message();
    EXPECT_THAT(s->error_message(), HasSubstr("upload buffer"));
  }
  EXPECT_LT(stored, 2);

  // Both ended: the buffer is whole again, and only what was accepted is stored.
  OpenUpload third = StartUpload(*media, *key, "uploads");
  const grpc::Status third_status = FinishUpload(third);
  EXPECT_TRUE(third_status.ok()) << third_status.error_message();
  v1::ListMediaAssetsRequest list;
  list.set_parent("tenants/uploads");
  v1::ListMediaAssetsResponse listed;
  ASSERT_TRUE(media->ListMediaAssets(testing::BearerContext(*key).get(), list, &listed).ok());
  EXPECT_EQ(listed.media_assets_size(), stored + 1);
}

// One tenant's uploads left open hold at most half the buffer: its next upload is refused while
// another tenant's still goes through.
TEST_F(HeraldServeTest, OneTenantsUploadsInProgressHoldAtMostHalfTheBuffer) {
  auto herald = StartApi({"--media_max_bytes=1048576", "--media_buffer_bytes=3145728"});
  ASSERT_TRUE(herald.ok()) << herald.status();
  std::shared_ptr<grpc::Channel> channel = Connect(**herald);
  auto media = v1::MediaService::NewStub(channel);
  absl::StatusOr<std::string> greedy = testing::CreateTenant(channel, kAdmin, "greedy");
  ASSERT_TRUE(greedy.ok()) << greedy.status();
  absl::StatusOr<std::string> other = testing::CreateTenant(channel, kAdmin, "other");
  ASSERT_TRUE(other.ok()) << other.status();

  // Greedy's two uploads, both open, would hold 2 MiB: over its 1.5 MiB share, though the
  // buffer has room. Which is refused depends on how the server interleaves their chunks.
  OpenUpload first = StartUpload(*media, *greedy, "greedy");
  OpenUpload second = StartUpload(*media, *greedy, "greedy");
  // The other tenant's upload fits beside what greedy holds (at most 1.5 of 3 MiB).
  OpenUpload theirs = StartUpload(*media, *other, "other");
  const grpc::Status stored = FinishUpload(theirs);
  EXPECT_TRUE(stored.ok()) << stored.error_message();
  int refused = 0;
  for (OpenUpload* u : {&second, &first}) {
    const grpc::Status s = FinishUpload(*u);
    if (s.ok()) continue;
    ++refused;
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("tenant 'greedy'"));
  }
  EXPECT_GE(refused, 1);
}

// --grpc_max_connection_age: a connection past its age is asked to reconnect, and a stream still
// open on it when the grace runs out ends UNAVAILABLE, which tells the client to resume; the
// channel reconnects by itself and the next call is answered.
TEST_F(HeraldServeTest, AStreamOnAConnectionPastItsMaxAgeEndsUnavailableAndTheChannelReconnects) {
  auto herald = StartApi({"--grpc_max_connection_age=1s", "--grpc_max_connection_age_grace=1s"});
  ASSERT_TRUE(herald.ok()) << herald.status();
  std::shared_ptr<grpc::Channel> channel = Connect(**herald);
  absl::StatusOr<std::string> key = testing::CreateTenant(channel, kAdmin, "aging");
  ASSERT_TRUE(key.ok()) << key.status();

  Subscription subscription(channel, *key, "aging", absl::Seconds(30));
  const grpc::Status status = subscription.End();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  absl::StatusOr<std::string> again = testing::CreateTenant(channel, kAdmin, "aging-again");
  EXPECT_TRUE(again.ok()) << again.status();
}

// Redis stops answering during an ordinary call: the call ends UNAVAILABLE with a retry delay,
// which clients retry, not DEADLINE_EXCEEDED, and its message does not give Redis's address.
TEST_F(HeraldServeTest, ACallWhoseRedisReadTimesOutIsUnavailable) {
  auto herald = StartApi({"--redis_timeout=500ms"});
  ASSERT_TRUE(herald.ok()) << herald.status();
  std::shared_ptr<grpc::Channel> channel = Connect(**herald);
  absl::StatusOr<std::string> key = testing::CreateTenant(channel, kAdmin, "slowstore");
  ASSERT_TRUE(key.ok()) << key.status();

  auto paused = redis_->Command({"CLIENT", "PAUSE", "3000", "ALL"});
  ASSERT_TRUE(paused.ok()) << paused.status();
  v1::ListCampaignsRequest req;
  req.set_parent("tenants/slowstore");
  v1::ListCampaignsResponse resp;
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + *key);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::Status status =
      v1::CampaignService::NewStub(channel)->ListCampaigns(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("did not answer in time"));
  EXPECT_THAT(status.error_message(), Not(HasSubstr(std::to_string(redis_->port()))));
  EXPECT_THAT(status.error_details(), HasSubstr("RetryInfo"));
}

// A write whose Redis command does not answer in time may have been applied: it ends
// DEADLINE_EXCEEDED saying so, not UNAVAILABLE, which clients retry on their own (a create
// without a request_id would then be made twice).
TEST_F(HeraldServeTest, AWriteWhoseRedisCommandTimesOutSaysItsOutcomeIsUnknown) {
  auto herald = StartApi({"--redis_timeout=500ms"});
  ASSERT_TRUE(herald.ok()) << herald.status();
  std::shared_ptr<grpc::Channel> channel = Connect(**herald);
  absl::StatusOr<std::string> key = testing::CreateTenant(channel, kAdmin, "slowwrite");
  ASSERT_TRUE(key.ok()) << key.status();

  // Writes wait for 3 s; reads (the key's check) are answered.
  auto paused = redis_->Command({"CLIENT", "PAUSE", "3000", "WRITE"});
  ASSERT_TRUE(paused.ok()) << paused.status();
  v1::CreateSegmentRequest req;
  req.set_parent("tenants/slowwrite");
  req.mutable_segment()->set_display_name("Lapsed");
  req.mutable_segment()->set_expired_only(true);
  v1::Segment created;
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + *key);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::Status status =
      v1::AudienceService::NewStub(channel)->CreateSegment(&ctx, req, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("may or may not have taken effect"));
  EXPECT_THAT(status.error_message(), Not(HasSubstr(std::to_string(redis_->port()))));
}

// Redis stops answering while a stream is open: the stream's next read times out, and the
// stream ends UNAVAILABLE (open it again), not DEADLINE_EXCEEDED, which clients read as their
// own deadline and do not retry. Once Redis answers, the stream opens again.
TEST_F(HeraldServeTest, AStreamWhoseRedisReadTimesOutEndsUnavailable) {
  auto herald = StartApi({"--redis_timeout=500ms"});
  ASSERT_TRUE(herald.ok()) << herald.status();
  std::shared_ptr<grpc::Channel> channel = Connect(**herald);
  absl::StatusOr<std::string> key = testing::CreateTenant(channel, kAdmin, "stalled");
  ASSERT_TRUE(key.ok()) << key.status();

  Subscription subscription(channel, *key, "stalled", absl::Seconds(60));
  // Every client's commands wait for 3 s: well past the 500 ms each read may take.
  auto paused = redis_->Command({"CLIENT", "PAUSE", "3000", "ALL"});
  ASSERT_TRUE(paused.ok()) << paused.status();
  const grpc::Status status = subscription.End();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("did not answer in time"));

  // Once Redis answers again, the stream opens (with its start cursor) as before.
  ASSERT_TRUE(testing::WaitFor([&] {
    Subscription again(channel, *key, "stalled", absl::Seconds(5));
    const bool open = again.Started();
    again.context->TryCancel();
    again.End();
    return open;
  })) << (*herald)->Logs();
}

TEST_F(HeraldServeTest, CallsAnsweredDuringTheSigtermDrainTookEffectAndTheRestAreSafeToRetry) {
  auto herald = StartApi({"--drain_timeout=5s"});
  ASSERT_TRUE(herald.ok()) << herald.status();
  std::shared_ptr<grpc::Channel> channel = Connect(**herald);
  const auto create = [&](const std::string& id) {
    v1::CreateTenantRequest req;
    req.set_tenant_id(id);
    req.set_request_id(StrCat("create-", id));
    v1::Tenant tenant;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", StrCat("Bearer ", kAdmin));
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return v1::TenantService::NewStub(channel)->CreateTenant(&ctx, req, &tenant);
  };

  // Four clients create tenants back to back until the server stops taking calls.
  std::mutex mu;
  std::map<grpc::StatusCode, int> codes;
  std::vector<std::string> answered, unanswered;
  std::atomic<int> ok_calls{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0;; ++i) {
        const std::string id = StrCat("t", c, "-", i);
        const grpc::Status s = create(id);
        std::lock_guard<std::mutex> lock(mu);
        ++codes[s.error_code()];
        if (s.ok()) {
          answered.push_back(id);
          ++ok_calls;
          continue;
        }
        unanswered.push_back(id);
        return;
      }
    });
  }
  ASSERT_TRUE(testing::WaitFor([&] { return ok_calls.load() >= 200; }, absl::Seconds(30)));
  (*herald)->process().Signal(SIGTERM);
  for (std::thread& t : clients) t.join();
  const std::optional<int> status = (*herald)->process().Wait(absl::Seconds(15));
  ASSERT_TRUE(status.has_value()) << (*herald)->Logs();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << (*herald)->Logs();

  // A call ends OK, or UNAVAILABLE once the server refuses calls, or CANCELLED when it reached the
  // server just as it shut down (gRPC cancels calls it received but had not begun); never
  // anything else.
  for (const auto& [code, n] : codes) {
    EXPECT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::UNAVAILABLE ||
                code == grpc::StatusCode::CANCELLED)
        << n << " calls ended with code " << code;
  }
  // Every call answered OK took effect; the others, retried with their request_id against the
  // restarted server, each create their tenant exactly once.
  ASSERT_TRUE((*herald)->Restart().ok()) << (*herald)->Logs();
  channel = Connect(**herald);  // the old one is backing off from the refused connections
  for (const std::string& id : unanswered) {
    const grpc::Status retried = create(id);
    EXPECT_TRUE(retried.ok()) << id << ": " << retried.error_message();
  }
  answered.insert(answered.end(), unanswered.begin(), unanswered.end());
  for (const std::string& id : answered) {
    auto stored = redis_->Command({"HEXISTS", "hd:{platform}:tenants", id});
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(*stored, "1") << "tenant " << id << " is not stored";
  }
  auto count = redis_->Command({"HLEN", "hd:{platform}:tenants"});
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, StrCat(answered.size()));
}

TEST_F(HeraldServeTest, InvalidFlagsStopTheProcessWithAMessageNamingTheFlag) {
  auto bad_role = RunHerald({"serve", "--role=database"});
  EXPECT_EQ(bad_role.exit_code, 2);
  EXPECT_THAT(bad_role.err, HasSubstr("--role: unknown role 'database'"));

  auto bad_drain = RunHerald({"serve", "--drain-timeout=0s"});
  EXPECT_EQ(bad_drain.exit_code, 2);
  EXPECT_THAT(bad_drain.err, HasSubstr("--drain_timeout must be a positive"));

  auto bad_env = RunHerald({"serve"}, {{"HERALD_IO_THREADS", "lots"}});
  EXPECT_EQ(bad_env.exit_code, 2);
  EXPECT_THAT(bad_env.err, HasSubstr("HERALD_IO_THREADS='lots'"));

  // Without a command the flags are serve's: the same check refuses them.
  auto no_command = RunHerald({"--drain-timeout=0s"});
  EXPECT_EQ(no_command.exit_code, 2);
  EXPECT_THAT(no_command.err, HasSubstr("--drain_timeout must be a positive"));

  auto bad_command = RunHerald({"launch"});
  EXPECT_EQ(bad_command.exit_code, 2);
  EXPECT_THAT(bad_command.err, HasSubstr("unknown command 'launch'"));

  auto bad_queue = RunHerald({"queue", "purge"});
  EXPECT_EQ(bad_queue.exit_code, 2);
  EXPECT_THAT(bad_queue.err, HasSubstr("unknown queue command 'purge'"));

  auto bad_lease = RunHerald({"serve", "--lease_duration=1s"});
  EXPECT_EQ(bad_lease.exit_code, 2);
  EXPECT_THAT(bad_lease.err, HasSubstr("--lease_duration must be at least 3s"));

  for (const char* rate : {"--api_tenant_rate=nan", "--api_tenant_rate=inf"}) {
    auto bad_rate = RunHerald({"serve", rate});
    EXPECT_EQ(bad_rate.exit_code, 2) << rate;
    EXPECT_THAT(bad_rate.err, HasSubstr("--api_tenant_rate must be a finite number")) << rate;
  }

  auto bad_redis = RunHerald({"serve", "--redis_address=localhost"});
  EXPECT_EQ(bad_redis.exit_code, 2);
  EXPECT_THAT(bad_redis.err, HasSubstr("--redis_address: missing port"));

  // The queue commands' settings too, before any Redis is reached.
  auto bad_dead = RunHerald({"queue", "dead", "--dead_limit=0"});
  EXPECT_EQ(bad_dead.exit_code, 2);
  EXPECT_THAT(bad_dead.err, HasSubstr("herald: --dead_limit must be in [1, 1000], got 0"));
  for (const char* smoke :
       {"--smoke_teams=0", "--smoke_accounts=0", "--smoke_jobs=-1", "--smoke_team_per_minute=0"}) {
    auto bad_smoke = RunHerald({"queue", "smoke", smoke});
    EXPECT_EQ(bad_smoke.exit_code, 2) << smoke;
    const std::string_view flag =
        std::string_view(smoke).substr(0, std::string_view(smoke).find('='));
    EXPECT_THAT(bad_smoke.err, HasSubstr(StrCat("herald: ", flag, " must be"))) << smoke;
  }
}

TEST_F(HeraldServeTest, EnvironmentConfiguresAndCommandLineWins) {
  auto herald = HeraldProcess::Start(
      {.args = {"serve", "--role=worker"},
       .env = {{"HERALD_ROLE", "api"}, {"HERALD_ENCRYPTON_KEY_FILE", "/run/secrets/key"}},
       .redis_port = redis_->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  auto metrics = HttpGet((*herald)->admin_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, HasSubstr("roles=\"worker\""));
  // A misspelt variable is named in the log (its value is not), not silently ignored.
  EXPECT_THAT((*herald)->Logs(), HasSubstr("HERALD_ENCRYPTON_KEY_FILE"));
  EXPECT_THAT((*herald)->Logs(), ::testing::Not(HasSubstr("/run/secrets/key")));
}

TEST_F(HeraldServeTest, BusyGrpcPortFailsStartup) {
  auto first =
      HeraldProcess::Start({.args = {"serve", "--role=api"}, .redis_port = redis_->port()});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second =
      RunHerald({"serve", "--role=api", StrCat("--grpc_address=127.0.0.1:", (*first)->grpc_port()),
                 "--admin_address=127.0.0.1:0", "--log_format=json"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr("cannot listen on 127.0.0.1:"));
}

TEST_F(HeraldServeTest, HelpDocumentsEveryFlag) {
  auto help = RunHerald({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"role", "grpc_address", "admin_address", "drain_timeout", "io_threads",
                           "log_level", "log_format"}) {
    EXPECT_THAT(help.out, HasSubstr(StrCat("--", flag, "="))) << help.out;
    EXPECT_THAT(help.out, HasSubstr(config::EnvironmentName(flag))) << help.out;
  }
  auto version = RunHerald({"version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.out, HasSubstr("herald "));
}

TEST_F(HeraldServeTest, WorkersFinishEveryJobOfASmokeRun) {
  auto herald = HeraldProcess::Start({.redis_port = redis_->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  const std::string redis = StrCat("--redis_address=127.0.0.1:", redis_->port());
  auto smoke = RunHerald({"queue", "smoke", redis, "--smoke_jobs=300", "--smoke_teams=3",
                          "--smoke_accounts=4", "--smoke_team_per_minute=60000"});
  ASSERT_EQ(smoke.exit_code, 0) << smoke.out << smoke.err << (*herald)->Logs();
  EXPECT_THAT(smoke.out, HasSubstr("all 300 jobs done"));

  auto stats = RunHerald({"queue", "stats", redis});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_THAT(stats.out, ::testing::ContainsRegex("noop +ok +300"));

  auto metrics = HttpGet((*herald)->admin_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, HasSubstr("herald_jobs_total{kind=\"noop\",outcome=\"ok\"} 300\n"));
  const absl::Status promtool = testing::PromtoolCheckMetrics(metrics->body);
  EXPECT_TRUE(promtool.ok()) << promtool;
}

// Enqueues job `id` for `account`, leases it and dead-letters it with `reason`, as a worker does
// after a terminal upstream error.
boost::asio::awaitable<absl::Status> EnqueueAndDeadLetter(queue::Queue& q, std::string id,
                                                          std::string account, std::string reason) {
  queue::JobSpec spec{.id = std::move(id),
                      .kind = "send_mass_message",
                      .tenant = "t",
                      .team = "team",
                      .account = std::move(account)};
  absl::StatusOr<queue::EnqueueResult> enqueued = co_await q.Enqueue(std::move(spec));
  HERALD_CO_RETURN_IF_ERROR(enqueued.status());
  HERALD_CO_ASSIGN_OR_RETURN(queue::LeaseBatch batch, co_await q.Lease(q.ShardOf("team"), 1));
  if (batch.jobs.size() != 1) co_return absl::InternalError("nothing leased");
  HERALD_CO_ASSIGN_OR_RETURN(queue::NackResult result,
                             co_await q.DeadLetter(batch.jobs[0].ref(), std::move(reason)));
  if (result != queue::NackResult::kDead) co_return absl::InternalError("not dead-lettered");
  co_return absl::OkStatus();
}

// Runs EnqueueAndDeadLetter through the queue library on a private io_context.
absl::Status DeadLetterOneJob(uint16_t redis_port, std::string id, std::string account,
                              std::string reason) {
  boost::asio::io_context io;
  redis::Client client(io.get_executor(), {.address = {"127.0.0.1", redis_port}});
  client.Start();
  queue::Queue q(client, {});
  auto done = boost::asio::co_spawn(
      io, EnqueueAndDeadLetter(q, std::move(id), std::move(account), std::move(reason)),
      boost::asio::use_future);
  while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
  const absl::Status status = done.get();
  client.Stop();
  io.run();
  return status;
}

TEST_F(HeraldServeTest, QueueDeadListsDeadLettersWithTheirReasons) {
  const std::string redis = StrCat("--redis_address=127.0.0.1:", redis_->port());
  auto empty = RunHerald({"queue", "dead", redis});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_THAT(empty.out, HasSubstr("0 dead jobs"));

  ASSERT_TRUE(
      DeadLetterOneJob(redis_->port(), "job_dead_1", "acct_1", "422 invalid_price: price too low")
          .ok());
  auto dead = RunHerald({"queue", "dead", redis});
  ASSERT_EQ(dead.exit_code, 0) << dead.err;
  EXPECT_THAT(dead.out, HasSubstr("1 dead jobs; the newest 1:"));
  EXPECT_THAT(dead.out, ::testing::ContainsRegex(
                            "send_mass_message +acct_1 +1  job_dead_1 +422 invalid_price: price "
                            "too low"));
}

TEST_F(HeraldServeTest, ReadinessFollowsRedis) {
  auto herald = HeraldProcess::Start({.redis_port = redis_->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  const uint16_t admin = (*herald)->admin_port();
  auto status_of = [admin] {
    auto res = HttpGet(admin, "/readyz");
    return res.ok() ? res->status : 0;
  };

  // gRPC health says the same, for clients and proxies that check it instead.
  auto health = Health::NewStub(Connect(**herald));
  auto serving = [&health] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    HealthCheckResponse response;
    const grpc::Status s = health->Check(&ctx, HealthCheckRequest(), &response);
    return s.ok() ? response.status() : HealthCheckResponse::UNKNOWN;
  };
  ASSERT_EQ(serving(), HealthCheckResponse::SERVING);

  ASSERT_TRUE(redis_->Stop(/*graceful=*/false).ok());
  EXPECT_TRUE(testing::WaitFor([&] { return status_of() == 503; }));
  auto readyz = HttpGet(admin, "/readyz");
  ASSERT_TRUE(readyz.ok());
  EXPECT_THAT(readyz->body, HasSubstr("redis: "));
  EXPECT_EQ(HttpGet(admin, "/healthz")->status, 200);  // alive, just not ready
  EXPECT_EQ(serving(), HealthCheckResponse::NOT_SERVING);

  ASSERT_TRUE(redis_->Restart().ok());
  EXPECT_TRUE(testing::WaitFor([&] { return status_of() == 200; }, absl::Seconds(20)))
      << (*herald)->Logs();
  EXPECT_EQ(serving(), HealthCheckResponse::SERVING);
}

TEST_F(HeraldServeTest, ARedisUserWhoMayNotRunScriptsLeavesTheProcessNotReadyUntilGranted) {
  ASSERT_TRUE(redis_
                  ->Command({"ACL", "SETUSER", "herald", "on", ">secret", "~*", "&*", "+@all",
                             "-@scripting"})
                  .ok());
  auto herald = HeraldProcess::Start(
      {.args = {"serve", "--role=all", "--redis_username=herald", "--redis_password=secret"},
       .wait_ready = false,
       .redis_port = redis_->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  const uint16_t admin = (*herald)->admin_port();
  std::string body;
  EXPECT_TRUE(testing::WaitFor([&] {
    auto res = HttpGet(admin, "/readyz");
    if (!res.ok() || res->status != 503) return false;
    body = res->body;
    return body.find("scripts: redis refuses") != std::string::npos;
  })) << body;
  EXPECT_THAT(body, HasSubstr("redis: ok"));  // connected: the scripts are what it lacks
  EXPECT_THAT(body, HasSubstr("NOPERM"));
  EXPECT_THAT(body, HasSubstr("needs +@scripting"));

  ASSERT_TRUE(redis_->Command({"ACL", "SETUSER", "herald", "+@scripting"}).ok());
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        auto res = HttpGet(admin, "/readyz");
        return res.ok() && res->status == 200;
      },
      absl::Seconds(20)))
      << (*herald)->Logs();
  EXPECT_THAT(HttpGet(admin, "/readyz")->body, HasSubstr("scripts: ok"));
}

TEST_F(HeraldServeTest, WithoutRedisTheProcessRunsButIsNotReady) {
  const uint16_t unused = testing::PickFreePort();
  auto herald = HeraldProcess::Start({.wait_ready = false, .redis_port = unused});
  ASSERT_TRUE(herald.ok()) << herald.status();
  const uint16_t admin = (*herald)->admin_port();
  // Until start-up completes the reason is "lifecycle: starting"; then Redis is named.
  std::string body;
  EXPECT_TRUE(testing::WaitFor([&] {
    auto res = HttpGet(admin, "/readyz");
    if (!res.ok() || res->status != 503) return false;
    body = res->body;
    return body.find("redis: ") != std::string::npos;
  })) << body;
  EXPECT_THAT(body, HasSubstr("redis: "));
  EXPECT_TRUE((*herald)->process().running());
}

}  // namespace
}  // namespace herald
