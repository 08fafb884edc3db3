// `herald serve`: configuration of a serving process and its lifecycle.
//
// A process runs one or more roles (api, worker, ingest) plus the admin server. Each role is a
// Component; RunServe starts them, waits for SIGTERM or SIGINT, then drains: readiness turns
// false first (so load balancers stop sending), every component stops accepting and finishes or
// returns its in-flight work before the drain deadline, and the process exits 0.
#pragma once

#include <string>
#include <string_view>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <herald/api/api.h>
#include <herald/campaign/dispatch_sweeper.h>
#include <herald/campaign/workflow.h>
#include <herald/common/config.h>
#include <herald/common/log.h>
#include <herald/http/server.h>
#include <herald/metrics/admin_server.h>
#include <herald/queue/queue.h>
#include <herald/queue/worker.h>
#include <herald/redis/client.h>
#include <herald/upstream/client.h>
#include <herald/webhooks/recorder.h>

#include "grpc_component.h"

namespace herald::serve {

struct Roles {
  bool api = false;
  bool worker = false;
  bool ingest = false;

  std::string ToString() const;  // "api,worker"
};

// "api", "worker", "ingest", "all", or a comma-separated combination ("api,ingest").
absl::StatusOr<Roles> ParseRoles(std::string_view value);

struct ServeConfig {
  Roles roles;
  config::HostPort grpc_address{"0.0.0.0", 7070};
  GrpcTls grpc_tls;
  GrpcConnections grpc_connections;
  api::ApiConfig api;
  metrics::AdminServerConfig admin;
  // The ingest role's webhook receiver.
  http::ServerConfig ingest;
  // Where the upstream reaches the ingest role ("https://…/webhooks"); empty: teams are not
  // registered for webhooks.
  std::string public_webhook_url;
  // How long a team's previous webhook signing secret is accepted after it changed.
  absl::Duration webhook_secret_overlap = absl::Hours(24);
  // How the ingest role writes events (group commit).
  webhooks::RecorderConfig recorder;
  absl::Duration ingest_shed_latency;
  // Time allowed after SIGTERM for in-flight work to finish; Kubernetes'
  // terminationGracePeriodSeconds must be longer.
  absl::Duration drain_timeout = absl::Seconds(25);
  // Threads running Herald's own asynchronous work (worker coroutines, upstream calls).
  int io_threads = 2;
  redis::ClientConfig redis;
  queue::QueueConfig queue;
  queue::WorkerConfig worker;
  // How often queue depths are read from Redis into the metrics.
  absl::Duration queue_stats_interval = absl::Seconds(10);
  // The worker role's dispatch sweep (campaign::DispatchSweeper).
  campaign::DispatchSweepConfig dispatch_sweep;
  log::Level log_level = log::Level::kInfo;
  log::Format log_format = log::Format::kAuto;
  // The upstream API (its base_url; each team's key is set per call).
  upstream::ClientConfig upstream;
  campaign::WorkflowConfig workflow;
  // The platform administrator's bearer secret (TenantService); empty: tenant management is
  // refused.
  std::string admin_key;
  // 64 hex characters: the AES-256-GCM key sealing upstream keys at rest. Empty: a random key
  // for this process only (development; sealed keys do not survive a restart).
  std::string encryption_key;
  // Keys values may still be sealed with during a rotation: opened with, never sealed with.
  std::vector<std::string> previous_encryption_keys;
};

// The raw flag values, before validation.
struct ServeFlags {
  std::string role;
  std::string grpc_address;
  std::string grpc_tls_cert_file;
  std::string grpc_tls_key_file;
  std::string grpc_tls_client_ca_file;
  std::string ingest_tls_cert_file;
  std::string ingest_tls_key_file;
  absl::Duration tls_reload_interval = absl::Seconds(60);
  absl::Duration grpc_keepalive_time = absl::Minutes(1);
  absl::Duration grpc_max_connection_age = absl::InfiniteDuration();
  absl::Duration grpc_max_connection_age_grace = absl::Minutes(1);
  double api_tenant_rate = 500;
  int api_max_streams = 10000;
  int api_max_streams_per_tenant = 1000;
  absl::Duration api_watch_poll = absl::Milliseconds(200);
  int api_tenant_burst = 1000;
  std::string admin_address;
  std::string ingest_address = "0.0.0.0:8080";
  std::string public_webhook_url;
  absl::Duration webhook_secret_overlap = absl::Hours(24);
  std::string reconcile_schedule = "10m,1h,6h,24h,72h";
  int64_t webhook_max_body_bytes = 1 << 20;
  int64_t webhook_max_body_bytes_in_flight = int64_t{256} << 20;
  int64_t media_max_bytes = 16 << 20;
  int64_t media_buffer_bytes = int64_t{256} << 20;
  int list_batch = 100;
  int reconcile_page = 100;
  int segment_page = 100;
  bool keep_segment_lists = false;
  int max_attempts = 6;
  std::string max_attempts_by_kind;  // kind=N,...
  int ingest_batch = 64;
  absl::Duration purchase_window = absl::Hours(24 * 35);
  int64_t events_kept = 100'000;
  absl::Duration ingest_shed_latency = absl::Milliseconds(500);
  absl::Duration drain_timeout;
  int io_threads = 0;  // 0: one per core
  std::string redis_address = "127.0.0.1:6379";
  bool redis_cluster = false;
  int redis_wait_replicas = 0;
  absl::Duration redis_wait_timeout = absl::Seconds(1);
  std::string redis_username;
  std::string redis_password;
  std::string redis_password_file;
  bool redis_tls = false;
  std::string redis_tls_ca_file;
  std::string redis_tls_cert_file;
  std::string redis_tls_key_file;
  std::string redis_tls_server_name;
  int redis_connections = 2;
  absl::Duration redis_timeout = absl::Seconds(5);
  int queue_shards = 16;
  int worker_loops = 4;
  int worker_batch = 32;
  absl::Duration lease_duration = absl::Seconds(30);
  int jobs_per_visit = 16;
  absl::Duration dead_letter_retention = absl::Hours(24 * 30);
  absl::Duration queue_stats_interval = absl::Seconds(10);
  absl::Duration dispatch_sweep_interval = absl::Seconds(30);
  absl::Duration dispatch_sweep_after = absl::Minutes(1);
  std::string log_level;
  std::string log_format;
  std::string upstream_url = "https://app.onlyfansapi.com";
  std::string admin_key;
  std::string admin_key_file;
  std::string encryption_key;
  std::string encryption_key_file;
  std::string previous_encryption_keys;
  std::string previous_encryption_keys_file;
  absl::Duration poll_interval = absl::Milliseconds(500);
  absl::Duration lookup_retry = absl::Minutes(1);
  absl::Duration lookup_patience = absl::Hours(1);
  absl::Duration send_settle = absl::Seconds(30);
};

// Validates flags into a ServeConfig. Errors name the offending flag.
absl::StatusOr<ServeConfig> MakeServeConfig(const ServeFlags& flags);

// Runs until SIGTERM/SIGINT and a completed drain. Returns the process exit code: 0 after a clean
// drain, 1 when a component fails to start.
int RunServe(const ServeConfig& config);

}  // namespace herald::serve
