#include "serve.h"

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace herald::serve {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ServeFlags ValidFlags() {
  return {.role = "all",
          .grpc_address = "127.0.0.1:0",
          .admin_address = "127.0.0.1:0",
          .drain_timeout = absl::Seconds(5),
          .io_threads = 2,
          .log_level = "info",
          .log_format = "json"};
}

TEST(ServeConfigTest, ValidFlagsMakeATypedConfig) {
  auto config = MakeServeConfig(ValidFlags());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->roles.api && config->roles.worker && config->roles.ingest);
  EXPECT_EQ(config->admin.address.port, 0);
  EXPECT_EQ(config->drain_timeout, absl::Seconds(5));
  EXPECT_EQ(config->log_format, log::Format::kJson);
  EXPECT_EQ(config->queue.jobs_per_visit, 16);
  EXPECT_EQ(config->worker.heartbeat_interval, absl::Seconds(10));
  EXPECT_EQ(config->grpc_connections.keepalive_time, absl::Minutes(1));
  EXPECT_EQ(config->grpc_connections.max_connection_age, absl::InfiniteDuration());
}

TEST(ServeConfigTest, WebhookSettings) {
  ServeFlags flags = ValidFlags();
  flags.public_webhook_url = "https://ingest.example.com/webhooks";
  flags.reconcile_schedule = "1m, 2h";
  auto config = MakeServeConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->public_webhook_url, "https://ingest.example.com/webhooks");
  EXPECT_EQ(config->webhook_secret_overlap, absl::Hours(24));
  EXPECT_EQ(config->workflow.reconcile_schedule,
            (std::vector<absl::Duration>{absl::Minutes(1), absl::Hours(2)}));
  flags.reconcile_schedule = "";
  config = MakeServeConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->workflow.reconcile_schedule.empty());
}

TEST(ServeConfigTest, AttemptsByKind) {
  ServeFlags flags = ValidFlags();
  flags.max_attempts = 4;
  flags.max_attempts_by_kind = "delivery_poll=10,list_add_fans=2";
  auto config = MakeServeConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->workflow.attempts.For("delivery_poll"), 10);
  EXPECT_EQ(config->workflow.attempts.For("list_add_fans"), 2);
  EXPECT_EQ(config->workflow.attempts.For("delivery_send"), 4);
}

TEST(ServeConfigTest, RolesCombine) {
  auto roles = ParseRoles("api,ingest");
  ASSERT_TRUE(roles.ok());
  EXPECT_EQ(roles->ToString(), "api,ingest");
  EXPECT_THAT(std::string(ParseRoles("api,db").status().message()), HasSubstr("unknown role 'db'"));
  EXPECT_FALSE(ParseRoles("").ok());
}

TEST(ServeConfigTest, ZeroIoThreadsMeansOnePerCore) {
  ServeFlags flags = ValidFlags();
  flags.io_threads = 0;
  auto config = MakeServeConfig(flags);
  ASSERT_TRUE(config.ok());
  EXPECT_GE(config->io_threads, 1);
}

TEST(ServeConfigTest, RedisClusterTakesSeveralSeedNodes) {
  ServeFlags flags = ValidFlags();
  flags.redis_cluster = true;
  flags.redis_address = "redis-0:7000,redis-1:7001,10.0.0.3:7002";
  auto config = MakeServeConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->redis.cluster);
  EXPECT_EQ(config->redis.address.ToString(), "redis-0:7000");
  ASSERT_EQ(config->redis.seeds.size(), 2u);
  EXPECT_EQ(config->redis.seeds[1].ToString(), "10.0.0.3:7002");
}

TEST(ServeConfigTest, RedisAuthenticatesAsAnAclUser) {
  ServeFlags flags = ValidFlags();
  flags.redis_username = "herald";
  flags.redis_password = "s3cret";
  auto config = MakeServeConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis.username, "herald");
  EXPECT_EQ(config->redis.password, "s3cret");
}

TEST(ServeConfigTest, TheRedisPasswordMayComeFromAFile) {
  const std::string file = ::testing::TempDir() + "/redis-password";
  {
    std::ofstream out(file);
    out << "s3cret\n";
  }
  ServeFlags flags = ValidFlags();
  flags.redis_username = "herald";
  flags.redis_password_file = file;
  auto config = MakeServeConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis.password, "s3cret");

  flags.redis_password = "also";
  config = MakeServeConfig(flags);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("--redis_password and --redis_password_file are exclusive"));
  flags.redis_password.clear();
  flags.redis_password_file = "/nonexistent/redis-password";
  config = MakeServeConfig(flags);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("--redis_password_file"));
}

TEST(ServeConfigTest, CredentialsInTheRedisAddressAreRefusedWithoutRepeatingThem) {
  ServeFlags flags = ValidFlags();
  for (const char* address :
       {"rediss://herald:S3CRET@redis.internal:6380", "redis://S3CRET@redis.internal:6379"}) {
    flags.redis_address = address;
    auto config = MakeServeConfig(flags);
    ASSERT_FALSE(config.ok()) << address;
    EXPECT_THAT(std::string(config.status().message()), HasSubstr("--redis_password_file"));
    EXPECT_THAT(std::string(config.status().message()), Not(HasSubstr("S3CRET")));
  }
}

TEST(ServeConfigTest, ARedissAddressMeansTls) {
  ServeFlags flags = ValidFlags();
  flags.redis_address = "rediss://redis.internal:6380";
  flags.redis_tls_ca_file = "/etc/herald/redis-ca.pem";
  auto config = MakeServeConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->redis.tls.enabled);
  EXPECT_EQ(config->redis.address.ToString(), "redis.internal:6380");
  EXPECT_EQ(config->redis.tls.ca_file, "/etc/herald/redis-ca.pem");

  flags.redis_address = "redis://redis.internal:6379";
  config = MakeServeConfig(flags);
  ASSERT_FALSE(config.ok());  // a CA file without TLS is a mistake, not ignored
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("--redis_tls"));
  flags.redis_tls_ca_file.clear();
  config = MakeServeConfig(flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->redis.tls.enabled);
}

TEST(ServeConfigTest, EveryInvalidValueNamesItsFlag) {
  struct Case {
    void (*mutate)(ServeFlags&);
    const char* flag;
  };
  const Case cases[] = {
      {[](ServeFlags& f) { f.role = "everything"; }, "--role"},
      {[](ServeFlags& f) { f.grpc_address = "7070"; }, "--grpc_address"},
      {[](ServeFlags& f) { f.admin_address = "host:http"; }, "--admin_address"},
      {[](ServeFlags& f) { f.drain_timeout = absl::ZeroDuration(); }, "--drain_timeout"},
      {[](ServeFlags& f) { f.grpc_keepalive_time = absl::ZeroDuration(); },
       "--grpc_keepalive_time"},
      {[](ServeFlags& f) { f.grpc_max_connection_age = absl::Milliseconds(10); },
       "--grpc_max_connection_age"},
      {[](ServeFlags& f) { f.grpc_max_connection_age_grace = -absl::Seconds(1); },
       "--grpc_max_connection_age_grace"},
      {[](ServeFlags& f) { f.io_threads = -1; }, "--io_threads"},
      {[](ServeFlags& f) { f.redis_address = "redis"; }, "--redis_address"},
      {[](ServeFlags& f) { f.redis_address = "a:1,b:2"; }, "--redis_cluster"},
      {[](ServeFlags& f) {
         f.redis_cluster = true;
         f.redis_address = "a:1,b";
       },
       "--redis_address"},
      {[](ServeFlags& f) { f.redis_connections = 0; }, "--redis_connections"},
      {[](ServeFlags& f) {
         f.redis_tls = true;
         f.redis_tls_cert_file = "client.pem";
       },
       "--redis_tls"},
      {[](ServeFlags& f) { f.redis_wait_replicas = -1; }, "--redis_wait_replicas"},
      {[](ServeFlags& f) {
         f.redis_wait_replicas = 1;
         f.redis_wait_timeout = absl::Seconds(10);
       },
       "--redis_wait_timeout"},
      {[](ServeFlags& f) { f.queue_shards = 0; }, "--queue_shards"},
      {[](ServeFlags& f) { f.worker_batch = 5000; }, "--worker_batch"},
      {[](ServeFlags& f) { f.worker_batch = 1001; }, "--worker_batch"},
      {[](ServeFlags& f) { f.worker_loops = 0; }, "--worker_loops"},
      {[](ServeFlags& f) { f.queue_shards = 5000; }, "--queue_shards"},
      {[](ServeFlags& f) { f.redis_connections = 65; }, "--redis_connections"},
      {[](ServeFlags& f) { f.upstream_url = "ftp://x"; }, "--upstream_url"},
      {[](ServeFlags& f) { f.encryption_key = "short"; }, "--encryption_key"},
      {[](ServeFlags& f) { f.admin_key_file = "/nonexistent/admin-key"; }, "--admin_key_file"},
      {[](ServeFlags& f) { f.poll_interval = absl::ZeroDuration(); }, "--poll_interval"},
      {[](ServeFlags& f) { f.lease_duration = absl::Seconds(1); }, "--lease_duration"},
      {[](ServeFlags& f) { f.jobs_per_visit = 0; }, "--jobs_per_visit"},
      {[](ServeFlags& f) { f.queue_stats_interval = absl::ZeroDuration(); },
       "--queue_stats_interval"},
      {[](ServeFlags& f) { f.dispatch_sweep_interval = absl::ZeroDuration(); },
       "--dispatch_sweep_interval"},
      {[](ServeFlags& f) { f.dispatch_sweep_after = -absl::Seconds(1); }, "--dispatch_sweep_after"},
      {[](ServeFlags& f) { f.log_level = "loud"; }, "--log_level"},
      {[](ServeFlags& f) { f.log_format = "xml"; }, "--log_format"},
      {[](ServeFlags& f) { f.ingest_address = "ingest"; }, "--ingest_address"},
      {[](ServeFlags& f) { f.public_webhook_url = "ingest.example.com"; }, "--public_webhook_url"},
      {[](ServeFlags& f) { f.webhook_secret_overlap = -absl::Seconds(1); },
       "--webhook_secret_overlap"},
      {[](ServeFlags& f) { f.webhook_secret_overlap = absl::Hours(24 * 31); },
       "--webhook_secret_overlap must be from 0 to 720h"},
      {[](ServeFlags& f) { f.webhook_max_body_bytes = 10; }, "--webhook_max_body_bytes"},
      {[](ServeFlags& f) { f.media_max_bytes = 10; }, "--media_max_bytes"},
      {[](ServeFlags& f) { f.media_buffer_bytes = (16 << 20) - 1; }, "--media_buffer_bytes"},
      {[](ServeFlags& f) { f.api_max_streams_per_tenant = 0; }, "--api_max_streams_per_tenant"},
      {[](ServeFlags& f) { f.api_watch_poll = absl::ZeroDuration(); },
       "--api_watch_poll must be between 1ms and 1m"},
      {[](ServeFlags& f) { f.api_watch_poll = absl::Minutes(2); }, "--api_watch_poll"},
      {[](ServeFlags& f) { f.list_batch = 101; }, "--list_batch: must be in [1, 100] (got 101)"},
      {[](ServeFlags& f) { f.list_batch = 0; }, "--list_batch"},
      {[](ServeFlags& f) { f.reconcile_page = 101; },
       "--reconcile_page: must be in [1, 100] (got 101)"},
      {[](ServeFlags& f) { f.reconcile_page = 0; }, "--reconcile_page"},
      {[](ServeFlags& f) { f.segment_page = 101; },
       "--segment_page: must be in [1, 100] (got 101)"},
      {[](ServeFlags& f) { f.ingest_tls_cert_file = "/etc/hostname"; },
       "--ingest_tls_cert_file and --ingest_tls_key_file go together"},
      {[](ServeFlags& f) {
         f.ingest_tls_cert_file = "/nonexistent/ingest.pem";
         f.ingest_tls_key_file = "/nonexistent/ingest.key";
       },
       "--ingest_tls_cert_file: cannot load '/nonexistent/ingest.pem'"},
      {[](ServeFlags& f) { f.max_attempts = 0; }, "--max_attempts: must be in [1, 100] (got 0)"},
      {[](ServeFlags& f) { f.max_attempts = 101; }, "--max_attempts"},
      {[](ServeFlags& f) { f.max_attempts_by_kind = "delivery_poll=0"; },
       "--max_attempts_by_kind: 'delivery_poll=0': attempts must be in [1, 100]"},
      {[](ServeFlags& f) { f.max_attempts_by_kind = "send=3"; },
       "--max_attempts_by_kind: 'send' is not a job kind"},
      {[](ServeFlags& f) { f.dead_letter_retention = absl::Hours(1); },
       "--dead_letter_retention: must be 0 (kept for good) or at least the idempotency window "
       "(24h)"},
      {[](ServeFlags& f) { f.dead_letter_retention = absl::Hours(-48); },
       "--dead_letter_retention"},
      {[](ServeFlags& f) { f.lookup_retry = absl::ZeroDuration(); },
       "--lookup_retry: must be positive"},
      {[](ServeFlags& f) { f.lookup_patience = absl::Seconds(-1); },
       "--lookup_patience: must not be negative"},
      {[](ServeFlags& f) { f.send_settle = absl::Seconds(-1); },
       "--send_settle: must not be negative"},
      {[](ServeFlags& f) { f.ingest_batch = 0; }, "--ingest_batch"},
      {[](ServeFlags& f) { f.ingest_batch = 257; }, "--ingest_batch"},
      {[](ServeFlags& f) { f.redis_username = "herald"; },
       "--redis_username needs --redis_password"},
      {[](ServeFlags& f) { f.purchase_window = absl::Minutes(59); },
       "--purchase_window must be between 1h and 400 days, got 59m"},
      {[](ServeFlags& f) { f.webhook_max_body_bytes_in_flight = 1000; },
       "--webhook_max_body_bytes_in_flight"},
      {[](ServeFlags& f) { f.events_kept = 0; }, "--events_kept must be in [1, 100000000] (got 0)"},
      {[](ServeFlags& f) { f.reconcile_schedule = "10m,soon"; }, "--reconcile_schedule"},
      {[](ServeFlags& f) { f.reconcile_schedule = "-1m"; }, "--reconcile_schedule"},
  };
  for (const Case& c : cases) {
    ServeFlags flags = ValidFlags();
    c.mutate(flags);
    const absl::Status status = MakeServeConfig(flags).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.flag));
  }
}

}  // namespace
}  // namespace herald::serve
