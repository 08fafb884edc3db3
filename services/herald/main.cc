// herald: the Herald service binary. See `herald --help`.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <absl/flags/flag.h>
#include <absl/flags/parse.h>
#include <absl/flags/reflection.h>
#include <absl/flags/usage.h>
#include <absl/flags/usage_config.h>

#include <herald/common/config.h>
#include <herald/common/log.h>
#include <herald/common/strings.h>

#include "queue_commands.h"
#include "serve.h"

#ifndef HERALD_VERSION
#define HERALD_VERSION "dev"
#endif

ABSL_FLAG(std::string, role, "all",
          "Roles this process runs: api (gRPC), worker (upstream calls), ingest (webhooks), "
          "all, or a comma list such as api,ingest.");
ABSL_FLAG(std::string, grpc_tls_cert_file, "",
          "PEM certificate chain of the gRPC server; with --grpc_tls_key_file the API is served "
          "over TLS only. Empty: plain text (behind a TLS-terminating proxy or in a trusted "
          "network).");
ABSL_FLAG(std::string, grpc_tls_key_file, "", "PEM private key of --grpc_tls_cert_file.");
ABSL_FLAG(std::string, grpc_tls_client_ca_file, "",
          "PEM CA certificates; when set, every gRPC client must present a certificate signed "
          "by one of them (mTLS) besides its bearer key.");
ABSL_FLAG(std::string, ingest_tls_cert_file, "",
          "PEM certificate chain of the webhook ingest; with --ingest_tls_key_file the ingest is "
          "served over HTTPS only (TLS 1.2+). Empty: plain HTTP (behind a TLS-terminating "
          "ingress).");
ABSL_FLAG(std::string, ingest_tls_key_file, "", "PEM private key of --ingest_tls_cert_file.");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(60),
          "How often the TLS certificate, key and CA files are read again, so renewed "
          "certificates are used without a restart.");
ABSL_FLAG(absl::Duration, grpc_keepalive_time, absl::Minutes(1),
          "How often the gRPC server pings an idle connection; one whose client does not answer "
          "within 20s is closed and its streams end (a vanished client frees its slots).");
ABSL_FLAG(absl::Duration, grpc_max_connection_age, absl::InfiniteDuration(),
          "gRPC connections older than this are asked to reconnect (GOAWAY), so clients spread "
          "over api replicas added since they connected. inf: never.");
ABSL_FLAG(absl::Duration, grpc_max_connection_age_grace, absl::Minutes(1),
          "Calls still running on a connection this long after it was asked to reconnect are "
          "cancelled (streams end UNAVAILABLE; clients resume them).");
ABSL_FLAG(double, api_tenant_rate, 500,
          "Per-tenant quota of API calls per second in each api process (a stream counts once); "
          "a call over it is RESOURCE_EXHAUSTED with google.rpc.RetryInfo. 0: no quota.");
ABSL_FLAG(int, api_tenant_burst, 1000, "Calls a tenant may make at once within its quota.");
ABSL_FLAG(int, api_max_streams, 10000,
          "Server streams (WatchCampaign, Subscribe) open at once in each api process; beyond "
          "it new ones are RESOURCE_EXHAUSTED with RetryInfo.");
ABSL_FLAG(int, api_max_streams_per_tenant, 1000,
          "Of those, one tenant's: beyond it the tenant's new streams are RESOURCE_EXHAUSTED "
          "with RetryInfo, and other tenants' still open.");
ABSL_FLAG(absl::Duration, api_watch_poll, absl::Milliseconds(200),
          "How often each WatchCampaign stream reads its campaign's revision and figures from "
          "Redis to send what changed.");
ABSL_FLAG(std::string, grpc_address, "0.0.0.0:7070",
          "host:port the api role's gRPC server listens on (port 0: any free port).");
ABSL_FLAG(std::string, ingest_address, "0.0.0.0:8080",
          "host:port the ingest role's webhook receiver listens on (POST /webhooks/{endpoint}).");
ABSL_FLAG(std::string, public_webhook_url, "",
          "The ingest role's address as the upstream reaches it, e.g. "
          "https://ingest.example.com/webhooks: each team's webhook is registered there when the "
          "team is created. Empty: teams are not registered.");
ABSL_FLAG(absl::Duration, webhook_secret_overlap, absl::Hours(24),
          "How long a team's previous webhook signing secret is still accepted after the secret "
          "changed (the upstream retries events signed before); 0: not at all. Up to 30 days.");
ABSL_FLAG(int64_t, webhook_max_body_bytes, 1 << 20,
          "Webhook bodies larger than this are refused with 413.");
ABSL_FLAG(int64_t, webhook_max_body_bytes_in_flight, int64_t{256} << 20,
          "Webhook bodies all connections may be reading at once, by their Content-Length: a "
          "request past it is answered 503 with Retry-After before its body is read, so slow "
          "senders of large bodies cannot exhaust memory. At least --webhook_max_body_bytes.");
ABSL_FLAG(int64_t, media_max_bytes, 16 << 20,
          "Media uploaded through MediaService.UploadMediaAsset larger than this is refused "
          "(1 KiB to 64 MiB).");
ABSL_FLAG(int64_t, media_buffer_bytes, int64_t{256} << 20,
          "Bytes the uploads in progress in this process may hold at once, one tenant's at most "
          "half (or media_max_bytes if more); an upload that would go over is refused "
          "(RESOURCE_EXHAUSTED, retry later). media_max_bytes to 16 GiB.");
ABSL_FLAG(int, max_attempts, 6,
          "Attempts of each delivery step and list job (1 to 100): a step whose last attempt "
          "fails is dead-lettered and its delivery marked FAILED with the reason.");
ABSL_FLAG(std::string, max_attempts_by_kind, "",
          "Attempts of some job kinds, overriding --max_attempts for them: kind=N,... with kinds "
          "as the queue metrics' kind label spells them (e.g. delivery_upload_media=3,"
          "delivery_poll=10), N 1 to 100.");
ABSL_FLAG(int, list_batch, 100,
          "Fan ids per upstream add-to-list call (1 to 100, the upstream's maximum); lower it "
          "when the upstream's limit is lower.");
ABSL_FLAG(int, segment_page, 100,
          "Fans read per upstream page when a segment scans an account's list (1 to 100, the "
          "upstream's maximum).");
ABSL_FLAG(bool, keep_segment_lists, false,
          "Keep the upstream list each segment becomes on each account (by default it is deleted "
          "once the delivery is over: after its last --reconcile_schedule round).");
ABSL_FLAG(int, reconcile_page, 100,
          "Buyers read per upstream page when reconciling a message's purchases (1 to 100, the "
          "upstream's maximum).");
ABSL_FLAG(absl::Duration, ingest_shed_latency, absl::Milliseconds(500),
          "Webhook events are answered 503 with Retry-After, without touching Redis, while "
          "recording them takes longer than this on average (one probe per 100ms keeps "
          "measuring). 0: never shed.");
ABSL_FLAG(int, ingest_batch, 64,
          "Webhook events of one tenant written to Redis in one script call, at most (group "
          "commit: events that arrive while earlier calls are in flight go together). 1 writes "
          "each event on its own.");
ABSL_FLAG(absl::Duration, purchase_window, absl::Hours(24 * 35),
          "How long after a priced mass message reaches a fan a purchase of it is still credited "
          "to its campaign: each copy's link to its mass message is kept this long (one small "
          "Redis key per copy sent).");
ABSL_FLAG(int64_t, events_kept, 100'000,
          "Applied webhook events kept per tenant for EventService.Subscribe, at least (a "
          "subscriber can resume from any of them); Redis trims the stream in whole blocks.");
ABSL_FLAG(std::string, reconcile_schedule, "10m,1h,6h,24h,72h",
          "After a campaign message finishes, read the upstream's own figures of it (fans "
          "reached, views) and, when priced, its buyers, after each of these delays (each from "
          "the previous round), to repair what lost webhooks left out. A last round that fails "
          "through its attempts is tried again, up to three times, after the first delay. "
          "Empty: never.");
ABSL_FLAG(std::string, admin_address, "0.0.0.0:9090",
          "host:port of the admin HTTP server (/metrics, /healthz, /readyz).");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(25),
          "After SIGTERM, time allowed for in-flight work before it is cancelled. Keep it below "
          "the pod's terminationGracePeriodSeconds.");
ABSL_FLAG(int, io_threads, 0, "Threads for asynchronous work; 0 means one per core.");
ABSL_FLAG(std::string, redis_address, "127.0.0.1:6379",
          "host:port of Redis; with --redis_cluster, one or more cluster nodes to read the slot "
          "map from, comma-separated (host:port,host:port,...).");
ABSL_FLAG(int, redis_wait_replicas, 0,
          "Writes that must survive a Redis failover (enqueue, ack, queue settings, records, API "
          "key index entries and ingest commits) "
          "are acknowledged only once this many replicas have them (WAIT); 0: the primary's "
          "acknowledgement suffices. See docs/architecture.md.");
ABSL_FLAG(absl::Duration, redis_wait_timeout, absl::Seconds(1),
          "With --redis_wait_replicas: how long a write waits for its replicas before it fails "
          "as unavailable (it stays on the primary; the caller retries). Below --redis_timeout.");
ABSL_FLAG(bool, redis_cluster, false,
          "Redis is a Redis Cluster: commands are routed by hash slot to each master, following "
          "redirections and failovers.");
ABSL_FLAG(std::string, redis_username, "",
          "Redis ACL user to AUTH as, with --redis_password; empty: the default user.");
ABSL_FLAG(std::string, redis_password, "",
          "Redis password (AUTH). Prefer --redis_password_file to the command line, where other "
          "users can see it, and to the environment.");
ABSL_FLAG(std::string, redis_password_file, "",
          "A file holding the Redis password (trailing whitespace dropped; an empty file: no "
          "password).");
ABSL_FLAG(bool, redis_tls, false,
          "Connect to Redis over TLS (its tls-port); also set by a rediss:// --redis_address. The "
          "server's certificate is verified.");
ABSL_FLAG(std::string, redis_tls_ca_file, "",
          "PEM file of the CAs that sign Redis' certificates (default: the system's trusted CAs).");
ABSL_FLAG(std::string, redis_tls_cert_file, "",
          "PEM client certificate for Redis servers with tls-auth-clients (with "
          "--redis_tls_key_file). Read again at every reconnect.");
ABSL_FLAG(std::string, redis_tls_key_file, "", "PEM private key of --redis_tls_cert_file.");
ABSL_FLAG(std::string, redis_tls_server_name, "",
          "Name Redis' certificate must carry (default: the host of each address connected to).");
ABSL_FLAG(int, redis_connections, 2, "Redis connections per process (commands are pipelined).");
ABSL_FLAG(absl::Duration, redis_timeout, absl::Seconds(5), "Deadline of each Redis command.");
ABSL_FLAG(int, queue_shards, 16,
          "Queue shards (Redis hash slots). Must be the same in every process and never change "
          "for a given Redis.");
ABSL_FLAG(int, worker_loops, 4, "Concurrent lease loops in the worker role.");
ABSL_FLAG(int, worker_batch, 32,
          "Most jobs leased per call, and most unfinished jobs a lease loop holds.");
ABSL_FLAG(absl::Duration, lease_duration, absl::Seconds(30),
          "How long a leased job stays with its worker without a heartbeat before it is handed "
          "to another (heartbeats every third of it).");
ABSL_FLAG(absl::Duration, dead_letter_retention, absl::Hours(24 * 30),
          "How long after it died a dead-lettered job is kept (herald queue dead lists it); older "
          "ones are purged once their delivery was marked failed. 0 keeps them for good; else "
          "at least 24h.");
ABSL_FLAG(int, jobs_per_visit, 16,
          "Jobs one account may get per turn of the queue's round-robin when its limits allow; 1 "
          "serves accounts strictly job by job. Larger values cost Redis less per job.");
ABSL_FLAG(absl::Duration, queue_stats_interval, absl::Seconds(10),
          "How often queue depths are read from Redis into the metrics.");
ABSL_FLAG(absl::Duration, dispatch_sweep_interval, absl::Seconds(30),
          "Worker role: how often the dispatch sweep looks for campaigns whose request stopped "
          "between storing a change and enqueueing its jobs.");
ABSL_FLAG(absl::Duration, dispatch_sweep_after, absl::Minutes(1),
          "Worker role: how old such a change must be before the sweep finishes it (longer than "
          "a request takes from its write to its enqueue).");
ABSL_FLAG(std::string, upstream_url, "https://app.onlyfansapi.com",
          "scheme://host[:port] of the upstream API (the simulator's address in development).");
ABSL_FLAG(std::string, admin_key, "",
          "The platform administrator's bearer key (manages tenants). Prefer the environment "
          "(HERALD_ADMIN_KEY) or --admin_key_file to the command line.");
ABSL_FLAG(std::string, admin_key_file, "", "A file holding the platform administrator's key.");
ABSL_FLAG(std::string, encryption_key, "",
          "64 hex characters: the AES-256-GCM key sealing upstream API keys at rest. Prefer "
          "HERALD_ENCRYPTION_KEY or --encryption_key_file. Unset: a random key for this process "
          "only (development).");
ABSL_FLAG(std::string, encryption_key_file, "", "A file holding the encryption key.");
ABSL_FLAG(std::string, previous_encryption_keys, "",
          "During a key rotation: the keys values may still be sealed with (64 hex characters "
          "each, separated by commas or whitespace), used to open them, never to seal. Prefer "
          "HERALD_PREVIOUS_ENCRYPTION_KEYS or --previous_encryption_keys_file.");
ABSL_FLAG(std::string, previous_encryption_keys_file, "",
          "A file holding the previous encryption keys, one per line.");
ABSL_FLAG(absl::Duration, poll_interval, absl::Milliseconds(500),
          "First check of an upstream mass message's progress after its send; later checks back "
          "off up to 30s, or come this long after the message should be done at the pace its "
          "recipients are reached.");
ABSL_FLAG(absl::Duration, lookup_retry, absl::Minutes(1),
          "When a send step's attempts run out while the upstream cannot say whether an earlier "
          "attempt created the message, a new step asks again after this long (for up to "
          "--lookup_patience after the attempt) instead of failing the delivery.");
ABSL_FLAG(absl::Duration, lookup_patience, absl::Hours(1),
          "How long after a send attempt whose outcome is unknown new steps keep asking the "
          "upstream for its message; then the delivery fails, naming the account's queue to "
          "check.");
ABSL_FLAG(absl::Duration, send_settle, absl::Seconds(30),
          "How long a send left unanswered may still reach the upstream after Herald stopped "
          "waiting (a timeout, a cancelled call, a 504) or after it began (a worker gone "
          "mid-call): until then a lookup that finds no message of it looks again later "
          "instead of sending again.");
ABSL_FLAG(int, dead_limit, 20, "herald queue dead: how many of the newest dead jobs to list.");
ABSL_FLAG(int, smoke_jobs, 1000, "herald queue smoke: no-op jobs to enqueue.");
ABSL_FLAG(int, smoke_teams, 2, "herald queue smoke: test teams.");
ABSL_FLAG(int, smoke_accounts, 10, "herald queue smoke: test accounts per team.");
ABSL_FLAG(int64_t, smoke_team_per_minute, 6000, "herald queue smoke: each team's limit.");
ABSL_FLAG(std::string, log_level, "info", "Minimum log level: debug, info, warn or error.");
ABSL_FLAG(std::string, log_format, "auto",
          "Log format: json (one object per line), text, or auto (text on a terminal).");

namespace {

constexpr char kUsage[] =
    "Herald orchestrates mass-message and PPV campaigns across creator accounts.\n"
    "\n"
    "Usage:\n"
    "  herald [serve] [flags]       run the service (see --role); serve is the default\n"
    "  herald queue stats           queue depth per shard, jobs by kind and outcome\n"
    "  herald queue dead [flags]    the newest dead-lettered jobs, with their reasons\n"
    "  herald queue smoke [flags]   enqueue no-op jobs and wait for the workers to finish them\n"
    "  herald version               print the version\n"
    "\n"
    "Every flag can also be set in the environment as HERALD_<FLAG>, e.g.\n"
    "HERALD_DRAIN_TIMEOUT=10s; the command line wins. Flag names may be written with\n"
    "dashes or underscores (--drain-timeout or --drain_timeout).";

// Herald's own --help: every flag of this binary with its environment variable and default.
// (Abseil's --help exits with status 1; --helpfull still shows Abseil's and gRPC's flags.)
void PrintHelp() {
  std::printf("%s\n\nFlags:\n", kUsage);
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->Filename().find("services/herald/") != std::string::npos) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  for (const absl::CommandLineFlag* flag : flags) {
    const std::string name(flag->Name());
    std::printf("  --%s=%s  (env %s)\n      %s\n", name.c_str(), flag->DefaultValue().c_str(),
                herald::config::EnvironmentName(name).c_str(), flag->Help().c_str());
  }
}

bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-help" || arg == "-h" || arg == "help") return true;
  }
  return false;
}

int Fail(std::string_view message) {
  std::fprintf(stderr, "herald: %.*s\n", static_cast<int>(message.size()), message.data());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  absl::FlagsUsageConfig usage;
  // --helpshort lists Herald's flags; --helpfull adds Abseil's and gRPC's.
  usage.contains_help_flags = [](absl::string_view file) {
    return file.find("services/herald/") != absl::string_view::npos;
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.version_string = [] { return herald::StrCat("herald ", HERALD_VERSION, "\n"); };
  usage.normalize_filename = [](absl::string_view file) {
    const size_t at = file.find("services/");
    return std::string(at == absl::string_view::npos ? file : file.substr(at));
  };
  absl::SetFlagsUsageConfig(usage);

  if (WantsHelp(argc, argv)) {
    PrintHelp();
    return 0;
  }
  if (absl::Status s = herald::config::ApplyEnvironment(); !s.ok())
    return Fail(herald::ToStd(s.message()));
  std::vector<std::string> storage;
  std::vector<char*> args = herald::config::NormalizeFlagSpelling(argc, argv, storage);
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()) - 1, args.data());

  // `herald --role=all` is `herald serve --role=all`: serving is what the binary is for.
  const std::string_view command = positional.size() < 2 ? "serve" : positional[1];
  if (command == "version") {
    std::printf("herald %s\n", HERALD_VERSION);
    return 0;
  }
  if (command != "serve" && command != "queue") {
    return Fail(herald::StrCat("unknown command '", command, "'; see --help"));
  }
  std::string_view subcommand;
  if (command == "queue") {
    if (positional.size() != 3)
      return Fail("expected 'queue stats', 'queue dead' or 'queue smoke'");
    subcommand = positional[2];
    if (subcommand != "stats" && subcommand != "dead" && subcommand != "smoke") {
      return Fail(herald::StrCat("unknown queue command '", subcommand, "'"));
    }
  } else if (positional.size() > 2) {
    return Fail(herald::StrCat("unexpected argument '", positional[2], "'"));
  }

  auto config = herald::serve::MakeServeConfig({
      .role = absl::GetFlag(FLAGS_role),
      .grpc_address = absl::GetFlag(FLAGS_grpc_address),
      .grpc_tls_cert_file = absl::GetFlag(FLAGS_grpc_tls_cert_file),
      .grpc_tls_key_file = absl::GetFlag(FLAGS_grpc_tls_key_file),
      .grpc_tls_client_ca_file = absl::GetFlag(FLAGS_grpc_tls_client_ca_file),
      .ingest_tls_cert_file = absl::GetFlag(FLAGS_ingest_tls_cert_file),
      .ingest_tls_key_file = absl::GetFlag(FLAGS_ingest_tls_key_file),
      .tls_reload_interval = absl::GetFlag(FLAGS_tls_reload_interval),
      .grpc_keepalive_time = absl::GetFlag(FLAGS_grpc_keepalive_time),
      .grpc_max_connection_age = absl::GetFlag(FLAGS_grpc_max_connection_age),
      .grpc_max_connection_age_grace = absl::GetFlag(FLAGS_grpc_max_connection_age_grace),
      .api_tenant_rate = absl::GetFlag(FLAGS_api_tenant_rate),
      .api_max_streams = absl::GetFlag(FLAGS_api_max_streams),
      .api_max_streams_per_tenant = absl::GetFlag(FLAGS_api_max_streams_per_tenant),
      .api_watch_poll = absl::GetFlag(FLAGS_api_watch_poll),
      .api_tenant_burst = absl::GetFlag(FLAGS_api_tenant_burst),
      .admin_address = absl::GetFlag(FLAGS_admin_address),
      .ingest_address = absl::GetFlag(FLAGS_ingest_address),
      .public_webhook_url = absl::GetFlag(FLAGS_public_webhook_url),
      .webhook_secret_overlap = absl::GetFlag(FLAGS_webhook_secret_overlap),
      .reconcile_schedule = absl::GetFlag(FLAGS_reconcile_schedule),
      .webhook_max_body_bytes = absl::GetFlag(FLAGS_webhook_max_body_bytes),
      .webhook_max_body_bytes_in_flight = absl::GetFlag(FLAGS_webhook_max_body_bytes_in_flight),
      .media_max_bytes = absl::GetFlag(FLAGS_media_max_bytes),
      .media_buffer_bytes = absl::GetFlag(FLAGS_media_buffer_bytes),
      .list_batch = absl::GetFlag(FLAGS_list_batch),
      .reconcile_page = absl::GetFlag(FLAGS_reconcile_page),
      .segment_page = absl::GetFlag(FLAGS_segment_page),
      .keep_segment_lists = absl::GetFlag(FLAGS_keep_segment_lists),
      .max_attempts = absl::GetFlag(FLAGS_max_attempts),
      .max_attempts_by_kind = absl::GetFlag(FLAGS_max_attempts_by_kind),
      .ingest_batch = absl::GetFlag(FLAGS_ingest_batch),
      .purchase_window = absl::GetFlag(FLAGS_purchase_window),
      .events_kept = absl::GetFlag(FLAGS_events_kept),
      .ingest_shed_latency = absl::GetFlag(FLAGS_ingest_shed_latency),
      .drain_timeout = absl::GetFlag(FLAGS_drain_timeout),
      .io_threads = absl::GetFlag(FLAGS_io_threads),
      .redis_address = absl::GetFlag(FLAGS_redis_address),
      .redis_cluster = absl::GetFlag(FLAGS_redis_cluster),
      .redis_wait_replicas = absl::GetFlag(FLAGS_redis_wait_replicas),
      .redis_wait_timeout = absl::GetFlag(FLAGS_redis_wait_timeout),
      .redis_username = absl::GetFlag(FLAGS_redis_username),
      .redis_password = absl::GetFlag(FLAGS_redis_password),
      .redis_password_file = absl::GetFlag(FLAGS_redis_password_file),
      .redis_tls = absl::GetFlag(FLAGS_redis_tls),
      .redis_tls_ca_file = absl::GetFlag(FLAGS_redis_tls_ca_file),
      .redis_tls_cert_file = absl::GetFlag(FLAGS_redis_tls_cert_file),
      .redis_tls_key_file = absl::GetFlag(FLAGS_redis_tls_key_file),
      .redis_tls_server_name = absl::GetFlag(FLAGS_redis_tls_server_name),
      .redis_connections = absl::GetFlag(FLAGS_redis_connections),
      .redis_timeout = absl::GetFlag(FLAGS_redis_timeout),
      .queue_shards = absl::GetFlag(FLAGS_queue_shards),
      .worker_loops = absl::GetFlag(FLAGS_worker_loops),
      .worker_batch = absl::GetFlag(FLAGS_worker_batch),
      .lease_duration = absl::GetFlag(FLAGS_lease_duration),
      .jobs_per_visit = absl::GetFlag(FLAGS_jobs_per_visit),
      .dead_letter_retention = absl::GetFlag(FLAGS_dead_letter_retention),
      .queue_stats_interval = absl::GetFlag(FLAGS_queue_stats_interval),
      .dispatch_sweep_interval = absl::GetFlag(FLAGS_dispatch_sweep_interval),
      .dispatch_sweep_after = absl::GetFlag(FLAGS_dispatch_sweep_after),
      .log_level = absl::GetFlag(FLAGS_log_level),
      .log_format = absl::GetFlag(FLAGS_log_format),
      .upstream_url = absl::GetFlag(FLAGS_upstream_url),
      .admin_key = absl::GetFlag(FLAGS_admin_key),
      .admin_key_file = absl::GetFlag(FLAGS_admin_key_file),
      .encryption_key = absl::GetFlag(FLAGS_encryption_key),
      .encryption_key_file = absl::GetFlag(FLAGS_encryption_key_file),
      .previous_encryption_keys = absl::GetFlag(FLAGS_previous_encryption_keys),
      .previous_encryption_keys_file = absl::GetFlag(FLAGS_previous_encryption_keys_file),
      .poll_interval = absl::GetFlag(FLAGS_poll_interval),
      .lookup_retry = absl::GetFlag(FLAGS_lookup_retry),
      .lookup_patience = absl::GetFlag(FLAGS_lookup_patience),
      .send_settle = absl::GetFlag(FLAGS_send_settle),
  });
  if (!config.ok()) return Fail(herald::ToStd(config.status().message()));
  herald::log::Configure({.min_level = config->log_level, .format = config->log_format});
  // A misspelt setting is otherwise silently ignored (HERALD_ENCRYPTON_KEY_FILE: a random key).
  // heraldctl's variables may be set beside herald's. Only the name is logged, never the value.
  for (const std::string& name : herald::config::UnknownEnvironment(
           {"HERALD_SERVER", "HERALD_API_KEY", "HERALD_API_KEY_FILE", "HERALD_TENANT", "HERALD_TLS",
            "HERALD_TIMEOUT", "HERALD_TLS_CA_FILE", "HERALD_TLS_CERT_FILE",
            "HERALD_TLS_KEY_FILE"})) {
    herald::log::Warn("environment variable ignored: no herald setting has its name",
                      {{"variable", name}});
  }
  if (subcommand == "stats") return herald::serve::RunQueueStats(config->redis, config->queue);
  if (subcommand == "dead") {
    const int limit = absl::GetFlag(FLAGS_dead_limit);
    if (limit < 1 || limit > 1000) {
      return Fail(herald::StrCat("--dead_limit must be in [1, 1000], got ", limit));
    }
    return herald::serve::RunQueueDead(config->redis, config->queue, limit);
  }
  if (subcommand == "smoke") {
    const herald::serve::SmokeConfig smoke{
        .jobs = absl::GetFlag(FLAGS_smoke_jobs),
        .teams = absl::GetFlag(FLAGS_smoke_teams),
        .accounts_per_team = absl::GetFlag(FLAGS_smoke_accounts),
        .team_per_minute = absl::GetFlag(FLAGS_smoke_team_per_minute)};
    if (absl::Status s = herald::serve::CheckSmokeConfig(smoke); !s.ok()) {
      return Fail(herald::ToStd(s.message()));
    }
    return herald::serve::RunQueueSmoke(config->redis, config->queue, smoke);
  }
  return herald::serve::RunServe(*config);
}
