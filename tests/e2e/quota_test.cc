// Per-tenant API quotas: a tenant over its calls per second is refused with RESOURCE_EXHAUSTED
// and the standard google.rpc.RetryInfo detail (read here from the grpc-status-details-bin
// trailer without Herald's code), while another tenant and the platform administrator go on.
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/net.h>
#include <herald/testing/observability.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/wait.h>
#include <herald/testing/webhook_events.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/events.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald {
namespace {

using google::protobuf::UnknownFieldSet;
using testing::BearerContext;
using ::testing::HasSubstr;

constexpr char kAdminKey[] = "admin-key-for-quota-test";

grpc::Status ListCampaigns(const std::shared_ptr<grpc::Channel>& channel, const std::string& key,
                           const std::string& tenant) {
  v1::ListCampaignsRequest req;
  req.set_parent(StrCat("tenants/", tenant));
  v1::ListCampaignsResponse res;
  return v1::CampaignService::NewStub(channel)->ListCampaigns(BearerContext(key).get(), req, &res);
}

// The retry delay of a google.rpc.Status carrying a google.rpc.RetryInfo, decoded from the wire
// format; nullopt when there is none.
std::optional<absl::Duration> RetryDelay(const std::string& status_details) {
  UnknownFieldSet status;
  if (!status.ParseFromString(status_details)) return std::nullopt;
  for (int i = 0; i < status.field_count(); ++i) {
    if (status.field(i).number() != 3) continue;  // details: google.protobuf.Any
    UnknownFieldSet any;
    if (!any.ParseFromString(status.field(i).length_delimited())) continue;
    std::string type_url, value;
    for (int j = 0; j < any.field_count(); ++j) {
      if (any.field(j).number() == 1) type_url = any.field(j).length_delimited();
      if (any.field(j).number() == 2) value = any.field(j).length_delimited();
    }
    if (type_url != "type.googleapis.com/google.rpc.RetryInfo") continue;
    UnknownFieldSet retry_info, duration;
    if (!retry_info.ParseFromString(value) || retry_info.field_count() != 1 ||
        !duration.ParseFromString(retry_info.field(0).length_delimited())) {
      return std::nullopt;
    }
    absl::Duration d;
    for (int k = 0; k < duration.field_count(); ++k) {
      if (duration.field(k).number() == 1) d += absl::Seconds(duration.field(k).varint());
      if (duration.field(k).number() == 2) d += absl::Nanoseconds(duration.field(k).varint());
    }
    return d;
  }
  return std::nullopt;
}

TEST(QuotaTest, ATenantOverItsQuotaIsToldWhenToRetryAndOthersGoOn) {
  auto redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto herald = testing::HeraldProcess::Start(
      {.args = {"serve", "--role=api", "--api_tenant_rate=0.5", "--api_tenant_burst=3"},
       .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", std::string(64, 'c')}},
       .redis_port = (*redis)->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  auto channel = grpc::CreateChannel((*herald)->grpc_target(), grpc::InsecureChannelCredentials());
  auto busy = testing::CreateTenant(channel, kAdminKey, "busy");
  auto calm = testing::CreateTenant(channel, kAdminKey, "calm");
  ASSERT_TRUE(busy.ok() && calm.ok());

  // Three calls at once (the burst), then refused: one call per two seconds after that.
  for (int i = 0; i < 3; ++i) {
    grpc::Status s = ListCampaigns(channel, *busy, "busy");
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
  }
  const grpc::Status refused = ListCampaigns(channel, *busy, "busy");
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("over its API quota"), std::string::npos);
  const std::optional<absl::Duration> delay = RetryDelay(refused.error_details());
  ASSERT_TRUE(delay.has_value()) << "no RetryInfo in the status details";
  EXPECT_GT(*delay, absl::ZeroDuration());
  EXPECT_LE(*delay, absl::Seconds(2));

  // Another tenant, and the platform administrator, are not held back.
  EXPECT_TRUE(ListCampaigns(channel, *calm, "calm").ok());
  v1::ListTenantsRequest req;
  v1::ListTenantsResponse res;
  EXPECT_TRUE(v1::TenantService::NewStub(channel)
                  ->ListTenants(BearerContext(kAdminKey).get(), req, &res)
                  .ok());
}

// A stream of the events of tenant `tenant` (whose key is `key`), open until `within` passes:
// DEADLINE_EXCEEDED means it was admitted and stayed open; RESOURCE_EXHAUSTED that it was
// refused.
grpc::Status Subscribe(const std::shared_ptr<grpc::Channel>& channel, const std::string& key,
                       absl::Duration within, const std::string& tenant = "streams") {
  auto ctx = BearerContext(key, within);
  v1::SubscribeRequest req;
  req.set_parent(StrCat("tenants/", tenant));
  auto reader = v1::EventService::NewStub(channel)->Subscribe(ctx.get(), req);
  v1::Event event;
  while (reader->Read(&event)) {
  }
  return reader->Finish();
}

// A redis-server and `herald serve --role=api`, and the key of its tenant "streams".
struct StreamsApi {
  std::unique_ptr<testing::RedisServer> redis;
  std::unique_ptr<testing::HeraldProcess> herald;
  std::shared_ptr<grpc::Channel> channel;
  std::string key;
};
void StartStreamsApi(const std::string& flag, StreamsApi* api) {
  auto redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  api->redis = *std::move(redis);
  auto herald = testing::HeraldProcess::Start(
      {.args = {"serve", "--role=api", flag},
       .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", std::string(64, 'c')}},
       .redis_port = api->redis->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  api->herald = *std::move(herald);
  api->channel =
      grpc::CreateChannel(api->herald->grpc_target(), grpc::InsecureChannelCredentials());
  auto key = testing::CreateTenant(api->channel, kAdminKey, "streams");
  ASSERT_TRUE(key.ok()) << key.status();
  api->key = *std::move(key);
}

TEST(QuotaTest, StreamsBeyondTheProcessLimitAreRefusedUntilOneCloses) {
  StreamsApi api;
  ASSERT_NO_FATAL_FAILURE(StartStreamsApi("--api_max_streams=1", &api));
  const auto& channel = api.channel;
  const std::string& key = api.key;

  // Streams open, as /metrics says.
  const auto open = [&] {
    auto metrics = testing::HttpGet(api.herald->admin_port(), "/metrics");
    return metrics.ok() ? testing::SeriesValue(metrics->body,
                                               R"(herald_grpc_streams_open{method="Subscribe"})")
                        : std::nullopt;
  };

  // One stream open takes the only slot: its headers arrive once it is admitted.
  auto held = BearerContext(key, absl::Seconds(60));
  v1::SubscribeRequest req;
  req.set_parent("tenants/streams");
  auto stub = v1::EventService::NewStub(channel);
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader = stub->Subscribe(held.get(), req);
  reader->WaitForInitialMetadata();
  EXPECT_EQ(open(), 1);
  std::thread holder([&] {
    v1::Event event;
    while (reader->Read(&event)) {
    }
  });
  const grpc::Status second = Subscribe(channel, key, absl::Seconds(5));
  held->TryCancel();
  holder.join();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << second.error_message();
  EXPECT_THAT(second.error_message(), HasSubstr("1 streams open"));
  EXPECT_TRUE(RetryDelay(second.error_details()).has_value());
  EXPECT_TRUE(testing::WaitFor([&] { return open() == 0; })) << open().value_or(-1);
  // The slot is free again once the first stream is done.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Subscribe(channel, key, absl::Milliseconds(300)).error_code() ==
               grpc::StatusCode::DEADLINE_EXCEEDED;
      },
      absl::Seconds(10)));
}

// A subscriber that stops reading for good is cut off, and its call cancelled once the write
// it left in flight has waited a few seconds: its slot goes to the next stream, though the
// client stays connected and never reads again.
TEST(QuotaTest, AStreamWhoseClientStopsReadingGivesBackItsSlot) {
  StreamsApi api;
  ASSERT_NO_FATAL_FAILURE(StartStreamsApi("--api_max_streams=1", &api));
  const auto& channel = api.channel;
  const std::string& key = api.key;
  const auto append = [&](int count) {
    return testing::AppendStreamEvents(api.redis->port(), api.redis->password(), "streams", count);
  };
  ASSERT_TRUE(append(1).ok());

  // The server's writes stall once this client stops reading.
  auto stalled_channel = testing::SmallWindowChannel(api.herald->grpc_target());
  auto stalled = BearerContext(key, absl::Seconds(120));
  v1::SubscribeRequest req;
  req.set_parent("tenants/streams");
  req.set_cursor("0");
  auto reader = v1::EventService::NewStub(stalled_channel)->Subscribe(stalled.get(), req);
  v1::Event event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(append(40'000).ok());

  // The stalled stream holds the only slot until it is cut off and its call cancelled.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Subscribe(channel, key, absl::Milliseconds(300)).error_code() ==
               grpc::StatusCode::DEADLINE_EXCEEDED;
      },
      absl::Seconds(60)))
      << api.herald->Logs();
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

// One tenant's streams beyond its share are refused while other tenants' still open: a tenant
// cannot take every stream slot of a server.
TEST(QuotaTest, ATenantsStreamsBeyondItsShareAreRefusedAndOthersStillOpen) {
  StreamsApi api;
  ASSERT_NO_FATAL_FAILURE(StartStreamsApi("--api_max_streams_per_tenant=1", &api));
  const auto& channel = api.channel;
  const std::string& key = api.key;
  auto other_key = testing::CreateTenant(channel, kAdminKey, "others");
  ASSERT_TRUE(other_key.ok()) << other_key.status();

  // The tenant's one stream: its headers arrive once it is admitted.
  auto held = BearerContext(key, absl::Seconds(60));
  v1::SubscribeRequest req;
  req.set_parent("tenants/streams");
  auto reader = v1::EventService::NewStub(channel)->Subscribe(held.get(), req);
  reader->WaitForInitialMetadata();
  std::thread holder([&] {
    v1::Event event;
    while (reader->Read(&event)) {
    }
  });
  const grpc::Status second = Subscribe(channel, key, absl::Seconds(5));
  const grpc::Status others = Subscribe(channel, *other_key, absl::Milliseconds(300), "others");
  held->TryCancel();
  holder.join();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << second.error_message();
  EXPECT_THAT(second.error_message(), HasSubstr("tenant 'streams' has 1 streams open"));
  EXPECT_TRUE(RetryDelay(second.error_details()).has_value());
  EXPECT_EQ(others.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << others.error_message();
  // The tenant's slot is free again once its stream is done.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Subscribe(channel, key, absl::Milliseconds(300)).error_code() ==
               grpc::StatusCode::DEADLINE_EXCEEDED;
      },
      absl::Seconds(10)));
}

}  // namespace
}  // namespace herald
