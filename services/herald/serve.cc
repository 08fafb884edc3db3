#include "serve.h"

#include <cmath>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <absl/strings/ascii.h>
#include <absl/strings/str_split.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <signal.h>
#include <string.h>

#include <herald/api/api.h>
#include <herald/automation/action.h>
#include <herald/automation/automations.h>
#include <herald/automation/job.h>
#include <herald/automation/trigger.h>
#include <herald/campaign/analytics.h>
#include <herald/campaign/attempts.h>
#include <herald/campaign/service.h>
#include <herald/campaign/workflow.h>
#include <herald/common/outage.h>
#include <herald/common/setting_error.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/ingest/ingest.h>
#include <herald/metrics/metrics.h>
#include <herald/metrics/readiness.h>
#include <herald/queue/metrics.h>
#include <herald/store/audit.h>
#include <herald/store/crypto.h>
#include <herald/store/record_store.h>
#include <herald/store/store.h>
#include <herald/webhooks/ingest.h>
#include <herald/webhooks/recorder.h>

#include "component.h"
#include "grpc_component.h"
#include "ingest_component.h"
#include "scripts_readiness.h"
#include "tls_files.h"
#include "worker_component.h"

#ifndef HERALD_VERSION
#define HERALD_VERSION "dev"
#endif

namespace herald::serve {
namespace asio = boost::asio;

std::string Roles::ToString() const {
  std::vector<std::string_view> names;
  if (api) names.push_back("api");
  if (worker) names.push_back("worker");
  if (ingest) names.push_back("ingest");
  return StrJoin(names, ",");
}

absl::StatusOr<Roles> ParseRoles(std::string_view value) {
  Roles roles;
  for (std::string_view part : StrSplit(value, ',')) {
    if (part == "api") {
      roles.api = true;
    } else if (part == "worker") {
      roles.worker = true;
    } else if (part == "ingest") {
      roles.ingest = true;
    } else if (part == "all") {
      roles = {.api = true, .worker = true, .ingest = true};
    } else {
      return absl::InvalidArgumentError(StrCat(
          "--role: unknown role '", part, "' (want api, worker, ingest, all, or a comma list)"));
    }
  }
  return roles;
}

namespace {

// The event loop beats every kBeatInterval; /healthz fails once it has missed kLoopStall of them.
constexpr absl::Duration kBeatInterval = absl::Seconds(1);
constexpr absl::Duration kLoopStall = absl::Seconds(15);

// Beats for the io_context it runs on until the context stops: a loop whose every thread is
// blocked stops beating, and the liveness probe restarts the process.
asio::awaitable<void> Beat(metrics::Liveness& liveness) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (true) {
    liveness.Beat("io");
    timer.expires_after(absl::ToChronoNanoseconds(kBeatInterval));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

// A secret from its flag or from a file (trailing whitespace dropped); not both. An empty file is
// an error unless `empty_ok`.
absl::StatusOr<std::string> ReadSecret(std::string_view flag, const std::string& value,
                                       const std::string& file, bool empty_ok = false) {
  if (file.empty()) return value;
  if (!value.empty()) {
    return absl::InvalidArgumentError(StrCat("--", flag, " and --", flag, "_file are exclusive"));
  }
  std::ifstream in(file);
  if (!in) return absl::InvalidArgumentError(StrCat("--", flag, "_file: cannot read '", file, "'"));
  std::stringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) {
    secret.pop_back();
  }
  if (secret.empty() && !empty_ok)
    return absl::InvalidArgumentError(StrCat("--", flag, "_file: '", file, "' is empty"));
  return secret;
}

}  // namespace

absl::StatusOr<ServeConfig> MakeServeConfig(const ServeFlags& flags) {
  ServeConfig config;
  HERALD_ASSIGN_OR_RETURN(config.roles, ParseRoles(flags.role));
  HERALD_ASSIGN_OR_RETURN(config.grpc_address,
                          config::ParseHostPort("grpc_address", flags.grpc_address));
  config.grpc_tls = {.cert_file = flags.grpc_tls_cert_file,
                     .key_file = flags.grpc_tls_key_file,
                     .client_ca_file = flags.grpc_tls_client_ca_file,
                     .reload_interval = flags.tls_reload_interval};
  HERALD_RETURN_IF_ERROR(ValidateGrpcTls(config.grpc_tls));
  config.grpc_connections = {.keepalive_time = flags.grpc_keepalive_time,
                             .max_connection_age = flags.grpc_max_connection_age,
                             .max_connection_age_grace = flags.grpc_max_connection_age_grace};
  HERALD_RETURN_IF_ERROR(ValidateGrpcConnections(config.grpc_connections));
  if (!std::isfinite(flags.api_tenant_rate) || flags.api_tenant_rate < 0) {
    return absl::InvalidArgumentError("--api_tenant_rate must be a finite number, not negative");
  }
  if (flags.api_tenant_rate > 0 && flags.api_tenant_burst < 1) {
    return absl::InvalidArgumentError("--api_tenant_burst must be at least 1");
  }
  config.api.tenant_calls_per_second = flags.api_tenant_rate;
  config.api.tenant_burst = flags.api_tenant_burst;
  HERALD_RETURN_IF_ERROR(
      config::RequireInRange("api_max_streams", flags.api_max_streams, 1, 1'000'000));
  config.api.max_streams = flags.api_max_streams;
  HERALD_RETURN_IF_ERROR(config::RequireInRange("api_max_streams_per_tenant",
                                                flags.api_max_streams_per_tenant, 1, 1'000'000));
  config.api.max_streams_per_tenant = flags.api_max_streams_per_tenant;
  if (flags.api_watch_poll < absl::Milliseconds(1) || flags.api_watch_poll > absl::Minutes(1)) {
    return absl::InvalidArgumentError("--api_watch_poll must be between 1ms and 1m");
  }
  config.api.watch_poll = flags.api_watch_poll;
  HERALD_RETURN_IF_ERROR(
      config::RequireInRange("media_max_bytes", flags.media_max_bytes, 1024, int64_t{64} << 20));
  config.api.media_max_bytes = flags.media_max_bytes;
  HERALD_RETURN_IF_ERROR(config::RequireInRange("media_buffer_bytes", flags.media_buffer_bytes,
                                                flags.media_max_bytes, int64_t{16} << 30));
  config.api.media_buffer_bytes = flags.media_buffer_bytes;
  HERALD_ASSIGN_OR_RETURN(config.admin.address,
                          config::ParseHostPort("admin_address", flags.admin_address));
  HERALD_ASSIGN_OR_RETURN(config.ingest.address,
                          config::ParseHostPort("ingest_address", flags.ingest_address));
  config.ingest.name = "ingest";
  if (flags.ingest_tls_cert_file.empty() != flags.ingest_tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--ingest_tls_cert_file and --ingest_tls_key_file go together");
  }
  if (!flags.ingest_tls_cert_file.empty()) {
    if (flags.tls_reload_interval < absl::Seconds(1)) {
      return absl::InvalidArgumentError("--tls_reload_interval must be at least 1s");
    }
    HERALD_ASSIGN_OR_RETURN(std::shared_ptr<TlsFiles> files,
                            TlsFiles::Load("ingest_tls", flags.ingest_tls_cert_file,
                                           flags.ingest_tls_key_file, flags.tls_reload_interval));
    config.ingest.tls = [files] { return files->Current(); };
  }
  HERALD_RETURN_IF_ERROR(config::RequireInRange("webhook_max_body_bytes",
                                                flags.webhook_max_body_bytes, 1024, 64 << 20));
  config.ingest.max_body_bytes = static_cast<uint64_t>(flags.webhook_max_body_bytes);
  HERALD_RETURN_IF_ERROR(config::RequireInRange("webhook_max_body_bytes_in_flight",
                                                flags.webhook_max_body_bytes_in_flight,
                                                flags.webhook_max_body_bytes, int64_t{64} << 30));
  config.ingest.max_body_bytes_in_flight =
      static_cast<uint64_t>(flags.webhook_max_body_bytes_in_flight);
  HERALD_RETURN_IF_ERROR(config::RequireInRange("ingest_batch", flags.ingest_batch, 1, 256));
  config.recorder.max_batch = flags.ingest_batch;
  if (flags.purchase_window < absl::Hours(1) || flags.purchase_window > absl::Hours(24 * 400)) {
    return absl::InvalidArgumentError(
        StrCat("--purchase_window must be between 1h and 400 days, got ",
               absl::FormatDuration(flags.purchase_window)));
  }
  config.recorder.link_ttl = flags.purchase_window;
  HERALD_RETURN_IF_ERROR(config::RequireInRange("events_kept", flags.events_kept, 1, 100'000'000));
  config.recorder.events_max_len = flags.events_kept;
  if (flags.ingest_shed_latency < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--ingest_shed_latency must not be negative");
  }
  config.ingest_shed_latency = flags.ingest_shed_latency;
  if (!flags.public_webhook_url.empty() && !flags.public_webhook_url.starts_with("http://") &&
      !flags.public_webhook_url.starts_with("https://")) {
    return absl::InvalidArgumentError(
        StrCat("--public_webhook_url: must start with http:// or https:// (got '",
               flags.public_webhook_url, "')"));
  }
  config.public_webhook_url = flags.public_webhook_url;
  if (flags.webhook_secret_overlap < absl::ZeroDuration() ||
      flags.webhook_secret_overlap > absl::Hours(24 * 30)) {
    return absl::InvalidArgumentError(
        StrCat("--webhook_secret_overlap must be from 0 to 720h, got ",
               absl::FormatDuration(flags.webhook_secret_overlap)));
  }
  config.webhook_secret_overlap = flags.webhook_secret_overlap;
  config.workflow.reconcile_schedule.clear();
  for (absl::string_view part :
       absl::StrSplit(ToAbsl(flags.reconcile_schedule), ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    absl::Duration d;
    if (!absl::ParseDuration(part, &d) || d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(StrCat("--reconcile_schedule: '", ToStd(part),
                                               "' is not a positive duration (e.g. 10m,1h)"));
    }
    config.workflow.reconcile_schedule.push_back(d);
  }
  HERALD_RETURN_IF_ERROR(config::RequirePositive("drain_timeout", flags.drain_timeout));
  config.drain_timeout = flags.drain_timeout;
  HERALD_RETURN_IF_ERROR(config::RequireInRange("io_threads", flags.io_threads, 0, 256));
  config.io_threads = flags.io_threads > 0
                          ? flags.io_threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  config.redis.cluster = flags.redis_cluster;
  // "rediss://host:port" (TLS) and "redis://host:port" name the scheme; a bare host:port is plain
  // unless --redis_tls.
  std::string_view addresses = flags.redis_address;
  config.redis.tls.enabled = flags.redis_tls;
  if (addresses.starts_with("rediss://")) {
    config.redis.tls.enabled = true;
    addresses.remove_prefix(9);
  } else if (addresses.starts_with("redis://")) {
    addresses.remove_prefix(8);
  }
  if (addresses.find('@') != std::string_view::npos) {
    // Not repeated back: the part before '@' is likely a password.
    return absl::InvalidArgumentError(
        "--redis_address: holds credentials (user:password@), which would show in process "
        "listings; give them with --redis_username and --redis_password_file");
  }
  config.redis.tls.ca_file = flags.redis_tls_ca_file;
  config.redis.tls.cert_file = flags.redis_tls_cert_file;
  config.redis.tls.key_file = flags.redis_tls_key_file;
  config.redis.tls.server_name = flags.redis_tls_server_name;
  const std::vector<std::string> nodes = absl::StrSplit(std::string(addresses), ',');
  for (size_t i = 0; i < nodes.size(); ++i) {
    HERALD_ASSIGN_OR_RETURN(config::HostPort address,
                            config::ParseHostPort("redis_address", nodes[i], false));
    if (i == 0) {
      config.redis.address = std::move(address);
    } else if (!flags.redis_cluster) {
      return absl::InvalidArgumentError(
          StrCat("--redis_address: '", flags.redis_address,
                 "' names several nodes; that needs --redis_cluster"));
    } else {
      config.redis.seeds.push_back(std::move(address));
    }
  }
  HERALD_ASSIGN_OR_RETURN(config.redis.password, ReadSecret("redis_password", flags.redis_password,
                                                            flags.redis_password_file,
                                                            /*empty_ok=*/true));
  if (!flags.redis_username.empty() && config.redis.password.empty()) {
    return absl::InvalidArgumentError(
        "--redis_username needs --redis_password (or --redis_password_file)");
  }
  config.redis.username = flags.redis_username;
  config.redis.wait_replicas = flags.redis_wait_replicas;
  config.redis.wait_timeout = flags.redis_wait_timeout;
  config.redis.connections = flags.redis_connections;
  HERALD_RETURN_IF_ERROR(config::RequirePositive("redis_timeout", flags.redis_timeout));
  config.redis.command_timeout = flags.redis_timeout;
  config.queue.shards = flags.queue_shards;
  config.worker.lease_loops = flags.worker_loops;
  config.worker.batch_size = flags.worker_batch;
  HERALD_RETURN_IF_ERROR(config::RequirePositive("lease_duration", flags.lease_duration));
  if (flags.lease_duration < absl::Seconds(3)) {
    return absl::InvalidArgumentError(StrCat("--lease_duration must be at least 3s (got ",
                                             absl::FormatDuration(flags.lease_duration), ")"));
  }
  config.queue.lease_duration = flags.lease_duration;
  config.worker.lease_duration = flags.lease_duration;
  config.worker.heartbeat_interval = flags.lease_duration / 3;
  config.queue.jobs_per_visit = flags.jobs_per_visit;
  config.queue.dead_letter_retention = flags.dead_letter_retention;
  HERALD_RETURN_IF_ERROR(
      config::RequirePositive("queue_stats_interval", flags.queue_stats_interval));
  config.queue_stats_interval = flags.queue_stats_interval;
  HERALD_RETURN_IF_ERROR(
      config::RequirePositive("dispatch_sweep_interval", flags.dispatch_sweep_interval));
  HERALD_RETURN_IF_ERROR(
      config::RequirePositive("dispatch_sweep_after", flags.dispatch_sweep_after));
  config.dispatch_sweep = {.interval = flags.dispatch_sweep_interval,
                           .after = flags.dispatch_sweep_after};
  auto level = log::ParseLevel(flags.log_level);
  if (!level.ok())
    return absl::InvalidArgumentError(StrCat("--log_level: ", level.status().message()));
  config.log_level = *level;
  auto format = log::ParseFormat(flags.log_format);
  if (!format.ok())
    return absl::InvalidArgumentError(StrCat("--log_format: ", format.status().message()));
  config.log_format = *format;
  config.upstream.base_url = flags.upstream_url;
  config.upstream.outage = std::make_shared<log::Outage>("upstream", "api calls");
  HERALD_ASSIGN_OR_RETURN(config.admin_key,
                          ReadSecret("admin_key", flags.admin_key, flags.admin_key_file));
  HERALD_ASSIGN_OR_RETURN(config.encryption_key, ReadSecret("encryption_key", flags.encryption_key,
                                                            flags.encryption_key_file));
  HERALD_ASSIGN_OR_RETURN(const std::string previous_keys,
                          ReadSecret("previous_encryption_keys", flags.previous_encryption_keys,
                                     flags.previous_encryption_keys_file));
  for (absl::string_view key :
       absl::StrSplit(previous_keys, absl::ByAnyChar(", \t\r\n"), absl::SkipEmpty())) {
    config.previous_encryption_keys.emplace_back(key.data(), key.size());
  }
  if (!config.encryption_key.empty()) {
    if (auto box = store::SecretBox::FromHexKey(config.encryption_key); !box.ok()) {
      return absl::InvalidArgumentError(StrCat("--encryption_key: ", box.status().message()));
    }
    if (auto box =
            store::SecretBox::FromHexKeys(config.encryption_key, config.previous_encryption_keys);
        !box.ok()) {
      return absl::InvalidArgumentError(
          StrCat("--previous_encryption_keys: ", box.status().message()));
    }
  } else if (!config.previous_encryption_keys.empty()) {
    return absl::InvalidArgumentError(
        "--previous_encryption_keys: needs --encryption_key, the key they are rotated to");
  }
  HERALD_RETURN_IF_ERROR(config::RequirePositive("poll_interval", flags.poll_interval));
  config.workflow.poll_min = flags.poll_interval;
  config.workflow.poll_max = std::max(flags.poll_interval, absl::Seconds(30));
  config.workflow.list_batch = flags.list_batch;
  config.workflow.reconcile_page = flags.reconcile_page;
  config.workflow.segment_page = flags.segment_page;
  config.workflow.keep_segment_lists = flags.keep_segment_lists;
  config.workflow.attempts.all = flags.max_attempts;
  if (absl::StatusOr<std::map<std::string, int, std::less<>>> by_kind =
          campaign::ParseAttemptLimits(flags.max_attempts_by_kind);
      by_kind.ok()) {
    config.workflow.attempts.by_kind = *std::move(by_kind);
  } else {
    return absl::InvalidArgumentError(
        StrCat("--max_attempts_by_kind: ", by_kind.status().message()));
  }
  config.workflow.lookup_retry = flags.lookup_retry;
  config.workflow.lookup_patience = flags.lookup_patience;
  config.workflow.send_settle = flags.send_settle;
  // Ranges live in the libraries' Validate functions (one source per setting); their errors
  // are reported under the flag that set the value.
  const std::map<std::string, std::string> flag_of = {
      {"redis.address", "redis_address"},
      {"redis.connections", "redis_connections"},
      {"redis.wait_replicas", "redis_wait_replicas"},
      {"redis.wait_timeout", "redis_wait_timeout"},
      {"redis.seeds", "redis_address"},
      {"redis.tls", "redis_tls"},
      {"redis.command_timeout", "redis_timeout"},
      {"queue.shards", "queue_shards"},
      {"queue.lease_duration", "lease_duration"},
      {"queue.jobs_per_visit", "jobs_per_visit"},
      {"queue.dead_letter_retention", "dead_letter_retention"},
      {"worker.lease_loops", "worker_loops"},
      {"worker.batch_size", "worker_batch"},
      {"worker.heartbeat_interval", "lease_duration"},
      {"workflow.list_batch", "list_batch"},
      {"workflow.reconcile_page", "reconcile_page"},
      {"workflow.segment_page", "segment_page"},
      {"workflow.max_attempts", "max_attempts"},
      {"workflow.max_attempts_by_kind", "max_attempts_by_kind"},
      {"workflow.lookup_retry", "lookup_retry"},
      {"workflow.lookup_patience", "lookup_patience"},
      {"workflow.send_settle", "send_settle"},
  };
  HERALD_RETURN_IF_ERROR(config::NameFlag(redis::ValidateClientConfig(config.redis), flag_of));
  HERALD_RETURN_IF_ERROR(config::NameFlag(queue::ValidateQueueConfig(config.queue), flag_of));
  HERALD_RETURN_IF_ERROR(config::NameFlag(queue::ValidateWorkerConfig(config.worker), flag_of));
  upstream::ClientConfig upstream_check = config.upstream;
  upstream_check.api_key = "per-team";  // each team's key is set per client
  if (absl::Status s = upstream::ValidateClientConfig(upstream_check); !s.ok()) {
    return absl::InvalidArgumentError(StrCat("--upstream_url: ", s.message()));
  }
  HERALD_RETURN_IF_ERROR(
      config::NameFlag(campaign::ValidateWorkflowConfig(config.workflow), flag_of));
  return config;
}

namespace {

// What the roles share: the Redis client, the queue over it, and the registry.
struct Shared {
  metrics::Registry& registry;
  metrics::Readiness& readiness;
  redis::Client& redis;
  queue::Queue& queue;
  asio::any_io_executor executor;
  api::Api& api;
  campaign::DeliveryWorkflow& workflow;
  automation::ActionRunner& actions;
  webhooks::Ingest& ingest;
};

// Builds the components for the configured roles, in start order.
std::vector<std::unique_ptr<Component>> MakeComponents(const ServeConfig& config,
                                                       const Shared& shared) {
  std::vector<std::unique_ptr<Component>> components;
  if (config.roles.api) {
    components.push_back(std::make_unique<GrpcComponent>(
        config.grpc_address, shared.api, shared.executor, config.grpc_tls, config.grpc_connections,
        &shared.readiness));
  }
  if (config.roles.worker) {
    components.push_back(std::make_unique<WorkerComponent>(
        shared.executor, shared.queue, config.worker, shared.registry,
        [&workflow = shared.workflow, &actions = shared.actions](queue::Worker& worker) {
          workflow.Register(worker);
          actions.Register(worker);
        }));
  }
  if (config.roles.ingest) {
    ingest::WebhookServer webhooks =
        ingest::MakeWebhookServer(config.ingest, shared.ingest, &shared.registry);
    components.push_back(std::make_unique<IngestComponent>(
        shared.executor, std::move(webhooks.config), std::move(webhooks.handler)));
  }
  return components;
}

// What the api and worker roles share beyond Redis and the queue.
struct Product {
  std::unique_ptr<store::RecordStore> records;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::AuditTrail> audit;
  std::unique_ptr<campaign::UpstreamClients> upstream;
  std::unique_ptr<campaign::Service> service;
  std::unique_ptr<campaign::DeliveryWorkflow> workflow;
  std::unique_ptr<automation::ActionRunner> actions;
  std::unique_ptr<webhooks::MessageAnalytics> message_analytics;
  std::unique_ptr<campaign::Analytics> analytics;
  std::unique_ptr<automation::Automations> automations;
  std::unique_ptr<api::Api> api;
  std::unique_ptr<webhooks::EventRecorder> recorder;
  // Fires the tenants' automations, then records through `recorder`.
  std::unique_ptr<automation::RuleDirectory> automation_rules;
  std::unique_ptr<webhooks::EventRecorder> triggering_recorder;
  std::unique_ptr<webhooks::EndpointDirectory> endpoints;
  std::unique_ptr<webhooks::Ingest> ingest;
};

// Drains every component concurrently, each against the same deadline.
void DrainAll(std::vector<std::unique_ptr<Component>>& components, absl::Time deadline) {
  std::vector<std::thread> drains;
  for (auto& c : components) {
    drains.emplace_back([&c, deadline] {
      c->Drain(deadline);
      log::Info("component drained", {{"component", c->name()}});
    });
  }
  for (auto& t : drains) t.join();
}

}  // namespace

int RunServe(const ServeConfig& config) {
  const absl::Time started = absl::Now();
  log::Info("herald starting", {{"version", HERALD_VERSION},
                                {"roles", config.roles.ToString()},
                                {"io_threads", config.io_threads}});

  metrics::Registry registry;
  metrics::RegisterProcessMetrics(registry);
  metrics::BuildGauge()
      .Name("herald_build_info")
      .Help("Always 1; labels carry the version and the roles this process runs.")
      .LabelNames({"version", "roles"})
      .Register(registry)
      .Add({{"version", HERALD_VERSION}, {"roles", config.roles.ToString()}})
      .Set(1);

  metrics::Readiness readiness(&registry);
  readiness.Set("lifecycle", absl::UnavailableError("starting"));
  metrics::Liveness liveness(kLoopStall);
  metrics::AdminServer admin(config.admin, registry, readiness, &liveness);
  if (absl::Status s = admin.Start(); !s.ok()) {
    log::Error("cannot start", {{"status", s}});
    return 1;
  }

  if (config.roles.api && config.admin_key.empty()) {
    log::Warn(
        "no --admin_key (or --admin_key_file): TenantService refuses every call, so no tenant "
        "or API key can be created through this process");
  }

  // Upstream keys are sealed at rest with this key (checked by MakeServeConfig).
  std::string encryption_key = config.encryption_key;
  if (encryption_key.empty()) {
    log::Warn(
        "no --encryption_key: upstream keys are sealed with a random key of this process "
        "and cannot be opened after a restart (development only)");
    encryption_key = store::Sha256Hex(store::RandomToken(32));
  }
  absl::StatusOr<store::SecretBox> sealed =
      store::SecretBox::FromHexKeys(encryption_key, config.previous_encryption_keys);
  if (!sealed.ok()) {
    log::Error("cannot start", {{"status", sealed.status()}});
    admin.Stop();
    return 1;
  }
  const store::SecretBox box = *std::move(sealed);

  // Signals are handled on the io_context, never in an async-signal context.
  asio::io_context ioc(config.io_threads);
  auto work = asio::make_work_guard(ioc);
  asio::signal_set signals(ioc, SIGTERM, SIGINT);
  std::promise<int> first_signal;
  signals.async_wait([&first_signal](const boost::system::error_code& ec, int signo) {
    first_signal.set_value(ec ? 0 : signo);
  });
  std::vector<std::thread> io_threads;
  for (int i = 0; i < config.io_threads; ++i) io_threads.emplace_back([&ioc] { ioc.run(); });
  asio::co_spawn(ioc, Beat(liveness), asio::detached);

  // Redis: readiness follows its connectivity and whether it runs Herald's scripts; every role
  // reports the queue's depths.
  redis::Client redis_client(ioc.get_executor(), config.redis, &registry);
  ScriptsReadiness scripts(ioc.get_executor(), redis_client, readiness);
  readiness.Set("redis", absl::UnavailableError("connecting"));
  redis_client.OnConnectivityChange([&readiness, &scripts](absl::Status status) {
    if (status.ok()) scripts.Recheck();
    readiness.Set("redis", std::move(status));
  });
  scripts.Start();
  redis_client.Start();
  queue::Queue job_queue(redis_client, config.queue);
  queue::QueueMetrics queue_metrics(registry);
  queue::StatsPoller stats_poller(ioc.get_executor(), job_queue, queue_metrics,
                                  config.queue_stats_interval);

  // The product: records in Redis, the campaign service behind the API, the delivery workflow
  // behind the workers. Destroyed (in reverse order) before the io_context stops, since it uses it.
  auto product = std::make_unique<Product>();
  product->records = store::MakeRedisRecordStore(redis_client);
  product->store = std::make_unique<store::Store>(*product->records);
  product->upstream =
      campaign::MakeUpstreamClients(ioc.get_executor(), config.upstream, box, &registry);
  product->service = std::make_unique<campaign::Service>(
      *product->store, job_queue, box, *product->upstream, SystemClock::Get(),
      campaign::ServiceConfig{.admin_key = config.admin_key,
                              .list_batch = config.workflow.list_batch,
                              .attempts = config.workflow.attempts,
                              .public_webhook_url = config.public_webhook_url,
                              .webhook_secret_overlap = config.webhook_secret_overlap});
  product->workflow = std::make_unique<campaign::DeliveryWorkflow>(
      *product->store, job_queue, *product->upstream, SystemClock::Get(), config.workflow);
  product->actions = std::make_unique<automation::ActionRunner>(*product->store, job_queue,
                                                                *product->upstream, &registry);
  product->message_analytics = std::make_unique<webhooks::MessageAnalytics>(redis_client);
  product->workflow->UseEvents(product->message_analytics.get(), &registry);
  product->workflow->UseMetrics(registry);
  if (config.roles.worker) {
    // A delivery whose step died is marked failed with the reason (closed before the product).
    stats_poller.HandDeadLettersTo([&workflow = *product->workflow](const queue::DeadJob& dead) {
      return workflow.OnDeadLetter(dead);
    });
  }
  std::vector<std::string> kinds = campaign::JobKinds();
  kinds.emplace_back(automation::kAddFanJob);
  kinds.emplace_back(automation::kRemoveFanJob);
  stats_poller.ExpectKinds(std::move(kinds));
  stats_poller.Start();
  product->service->UseMetrics(registry);
  // A campaign whose request stopped before enqueueing its jobs goes out anyway (closed before
  // the product, whose service it uses).
  std::optional<campaign::DispatchSweeper> dispatch_sweeper;
  if (config.roles.worker) {
    dispatch_sweeper.emplace(ioc.get_executor(), *product->service, config.dispatch_sweep,
                             registry);
    dispatch_sweeper->Start();
  }
  product->audit = std::make_unique<store::AuditTrail>(redis_client);
  product->service->UseAuditTrail(*product->audit);
  product->analytics =
      std::make_unique<campaign::Analytics>(*product->store, *product->message_analytics);
  product->automations = std::make_unique<automation::Automations>(
      *product->store, SystemClock::Get(), product->service.get());
  product->api = api::MakeApi(ioc.get_executor(), *product->service, *product->analytics,
                              *product->automations, config.api, &registry);
  product->recorder = webhooks::MakeRedisEventRecorder(redis_client, SystemClock::Get(),
                                                       config.recorder, &registry);
  product->endpoints = webhooks::MakeCachedDirectory(ingest::MakeTeamDirectory(*product->service),
                                                     SystemClock::Get(), absl::Seconds(10));
  product->automation_rules = automation::MakeCachedRuleDirectory(
      automation::MakeStoreRuleDirectory(*product->store), SystemClock::Get());
  product->triggering_recorder = automation::MakeTriggeringRecorder(
      *product->recorder, *product->automation_rules,
      [&job_queue](std::vector<queue::JobSpec> jobs) {
        return job_queue.EnqueueBatch(std::move(jobs));
      },
      &registry);
  product->ingest = std::make_unique<webhooks::Ingest>(
      *product->endpoints, *product->triggering_recorder, &registry,
      webhooks::IngestOptions{.shed_latency = config.ingest_shed_latency});

  std::vector<std::unique_ptr<Component>> components =
      MakeComponents(config, {.registry = registry,
                              .readiness = readiness,
                              .redis = redis_client,
                              .queue = job_queue,
                              .executor = ioc.get_executor(),
                              .api = *product->api,
                              .workflow = *product->workflow,
                              .actions = *product->actions,
                              .ingest = *product->ingest});
  int exit_code = 0;
  std::vector<std::unique_ptr<Component>> started_components;
  for (auto& c : components) {
    if (absl::Status s = c->Start(); !s.ok()) {
      log::Error("cannot start", {{"component", c->name()}, {"status", s}});
      exit_code = 1;
      break;
    }
    started_components.push_back(std::move(c));
  }

  if (exit_code == 0) {
    readiness.Set("lifecycle", absl::OkStatus());
    log::Info("herald ready", {{"admin_port", admin.port()}, {"startup", absl::Now() - started}});
    const int signo = first_signal.get_future().get();
    log::Info("draining", {{"signal", signo > 0 ? strsignal(signo) : "none"},
                           {"timeout", config.drain_timeout}});
    // A second signal during the drain ends the process at once, for operators who mean it.
    signals.async_wait([](const boost::system::error_code& ec, int) {
      if (ec) return;
      log::Warn("second signal during drain: exiting now");
      std::_Exit(1);
    });
  }

  readiness.Set("lifecycle", absl::UnavailableError("draining"));
  const absl::Time drain_start = absl::Now();
  DrainAll(started_components, drain_start + config.drain_timeout);
  started_components.clear();
  components.clear();
  // What still runs on the I/O threads ends before they stop: the queue statistics (whose
  // dead-letter handler is the product's) and the dispatch sweep before the product, then the
  // Redis connections.
  asio::co_spawn(
      ioc,
      [&stats_poller, &dispatch_sweeper, &scripts]() -> asio::awaitable<void> {
        co_await stats_poller.Close();
        if (dispatch_sweeper) co_await dispatch_sweeper->Close();
        co_await scripts.Close();
      },
      asio::use_future)
      .wait();
  dispatch_sweeper.reset();
  product.reset();
  asio::co_spawn(
      ioc, [&redis_client]() -> asio::awaitable<void> { co_await redis_client.Close(); },
      asio::use_future)
      .wait();
  signals.cancel();
  work.reset();
  ioc.stop();
  for (auto& t : io_threads) t.join();
  admin.Stop();
  log::Info("herald stopped", {{"drain", absl::Now() - drain_start}, {"exit_code", exit_code}});
  return exit_code;
}

}  // namespace herald::serve
