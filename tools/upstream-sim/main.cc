// upstream-sim: a simulator of the creator platform's REST API (OnlyFansAPI.com) for
// development, tests, demos and benchmarks. See tools/upstream-sim/README.md and --help.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <absl/flags/flag.h>
#include <absl/flags/parse.h>
#include <absl/flags/usage.h>
#include <absl/flags/usage_config.h>

#include <herald/common/config.h>
#include <herald/common/log.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/upstream_sim/simulator.h>

ABSL_FLAG(std::string, listen, "127.0.0.1:8080",
          "host:port to listen on (port 0: any free port). The /_sim/ control endpoints need "
          "no key, so keep the default loopback address unless the network is trusted.");
ABSL_FLAG(std::string, port_file, "",
          "When set, the bound port is written to this file (atomically) once serving.");
ABSL_FLAG(int, threads, 2, "Threads running the server, the delivery engine and webhooks.");
ABSL_FLAG(std::string, public_url, "",
          "Prefix of absolute links (next_page, polling_url); default http://<Host header>.");

ABSL_FLAG(uint64_t, seed, 1, "Seed for everything generated (fans, ids, purchases).");
ABSL_FLAG(std::string, seed_file, "",
          "JSON seed file with exact teams, keys, accounts, fans and lists (see README). "
          "Overrides --teams, --accounts_per_team, --fans_per_account, --lists_per_account.");
ABSL_FLAG(int, teams, 1, "Generated teams: team-<i> with API key sim-key-<i>.");
ABSL_FLAG(int, accounts_per_team, 2, "Generated accounts per team.");
ABSL_FLAG(int, fans_per_account, 100, "Generated fans (with spend histories) per account.");
ABSL_FLAG(int, lists_per_account, 2, "Generated user lists per account, ~10% of its fans each.");
ABSL_FLAG(int64_t, rate_limit_per_minute, 1000, "Per-team requests per minute (generated teams).");
ABSL_FLAG(absl::Duration, rate_limit_window, absl::Minutes(1),
          "Length of the fixed windows each team's limit is counted in (1s..1m, every team); a "
          "window admits the per-minute limit scaled to its length. Shorter than a minute, tests "
          "reach the limit without waiting for minutes.");
ABSL_FLAG(int64_t, credits, 1'000'000'000, "Starting credits per team (generated teams).");

ABSL_FLAG(double, delivery_rate, 100, "Mass-message recipients delivered per second per queue.");
ABSL_FLAG(absl::Duration, unsend_window, absl::Seconds(60),
          "How long after a queue starts sending it can still be unsent (DELETE).");
ABSL_FLAG(double, purchase_probability, 0.05,
          "Chance a recipient of a priced message buys it (before fan weighting).");
ABSL_FLAG(std::string, fan_behavior, "spend_weighted",
          "uniform (every fan buys with --purchase_probability) or spend_weighted (past big "
          "spenders buy more; the average fan at --purchase_probability).");
ABSL_FLAG(absl::Duration, purchase_delay_min, absl::Seconds(1),
          "Earliest purchase after delivery.");
ABSL_FLAG(absl::Duration, purchase_delay_max, absl::Seconds(30), "Latest purchase after delivery.");
ABSL_FLAG(double, view_probability, 0.4, "Chance a recipient opens a message.");
ABSL_FLAG(double, new_subscribers_per_second, 0,
          "New subscribers per second over all accounts (subscriptions.new events).");
ABSL_FLAG(int, max_ids_per_list_add, 100, "Most ids accepted by one add-users-to-list call.");
ABSL_FLAG(int, member_page_shortfall, 0,
          "A list's members are answered this many fewer per page than asked (one at least), "
          "nextOffset saying where the list goes on.");
ABSL_FLAG(int, buyer_page_shortfall, 0,
          "A message's buyers are answered this many fewer per page than asked (one at least), "
          "_pagination.next_page saying where the list goes on.");
ABSL_FLAG(int64_t, upload_credits_per_mb, 3, "Credits an upload costs per started megabyte.");
ABSL_FLAG(std::string, upload_response_shape, "flat",
          "flat (the documented body, media id as prefixed_id) or data (the vendor's marketing "
          "sample: the usual envelope, media id as data.id) for POST .../media/upload.");
ABSL_FLAG(absl::Duration, tick_interval, absl::Milliseconds(10), "Delivery engine period.");

ABSL_FLAG(std::vector<std::string>, webhook_url, {},
          "Webhook endpoint(s) receiving every team's events (http:// or https://; comma list).");
ABSL_FLAG(std::string, webhook_secret, "", "Signing secret for --webhook_url endpoints.");
ABSL_FLAG(int, webhook_max_retries, 5, "Retries after a failed webhook attempt.");
ABSL_FLAG(absl::Duration, webhook_retry_base, absl::Seconds(1),
          "First retry delay; doubles per attempt (+-20% jitter), capped at 60s.");
ABSL_FLAG(absl::Duration, webhook_timeout, absl::Seconds(10),
          "Deadline for one webhook request and its response.");
ABSL_FLAG(double, webhook_duplicate_rate, 0, "Chance an event is delivered twice.");
ABSL_FLAG(int, webhook_concurrency, 32, "Connections per webhook endpoint.");
ABSL_FLAG(int64_t, webhook_max_backlog, 500'000,
          "Events queued per endpoint; more are dropped (and counted in the ledger).");

ABSL_FLAG(std::string, faults, "",
          "Fault rules as JSON (an object or an array), as POST /_sim/faults takes them.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warn or error.");
ABSL_FLAG(std::string, log_format, "auto", "json, text, or auto (text on a terminal).");

namespace {

namespace sim = herald::upstream_sim;

constexpr char kUsage[] =
    "upstream-sim simulates the creator platform's REST API (OnlyFansAPI.com): accounts, mass\n"
    "messages delivered over time, media uploads, user lists, engagement, signed webhooks,\n"
    "per-team rate limits and credits, fault injection, and a ground-truth ledger.\n"
    "\n"
    "Usage: upstream-sim [flags]\n"
    "\n"
    "Quick start: upstream-sim --listen=127.0.0.1:8080 --teams=2 --fans_per_account=1000\n"
    "then: curl -H 'Authorization: Bearer sim-key-1' localhost:8080/api/accounts\n"
    "Control endpoints (no key, local use only): /_sim/health, /_sim/teams, /_sim/ledger,\n"
    "/_sim/stats, /_sim/faults, /_sim/webhooks, /_sim/behavior, /_sim/reset; Prometheus\n"
    "metrics on /metrics. Every flag can also be set as HERALD_<FLAG> in the environment.";

int Fail(std::string_view message) {
  std::fprintf(stderr, "upstream-sim: %.*s\n", static_cast<int>(message.size()), message.data());
  return 2;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(herald::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WritePortFile(const std::string& path, uint16_t port) {
  const std::string tmp = herald::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) return absl::UnavailableError(herald::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    return absl::UnavailableError(herald::StrCat("cannot rename to ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<sim::SimulatorOptions> OptionsFromFlags() {
  sim::SimulatorOptions o;
  auto listen = herald::config::ParseHostPort("listen", absl::GetFlag(FLAGS_listen));
  if (!listen.ok()) return listen.status();
  o.listen = *listen;
  o.threads = absl::GetFlag(FLAGS_threads);
  o.public_url = absl::GetFlag(FLAGS_public_url);
  o.tick_interval = absl::GetFlag(FLAGS_tick_interval);

  const std::string seed_file = absl::GetFlag(FLAGS_seed_file);
  if (!seed_file.empty()) {
    auto text = ReadFile(seed_file);
    if (!text.ok()) return text.status();
    auto spec = sim::ParseSeedJson(*text, absl::GetFlag(FLAGS_seed));
    if (!spec.ok()) return spec.status();
    o.seed = *spec;
  } else {
    const int teams = absl::GetFlag(FLAGS_teams);
    const int accounts = absl::GetFlag(FLAGS_accounts_per_team);
    const int fans = absl::GetFlag(FLAGS_fans_per_account);
    const int lists = absl::GetFlag(FLAGS_lists_per_account);
    HERALD_RETURN_IF_ERROR(herald::config::RequireInRange("teams", teams, 1, 100'000));
    HERALD_RETURN_IF_ERROR(
        herald::config::RequireInRange("accounts_per_team", accounts, 0, 1'000'000));
    HERALD_RETURN_IF_ERROR(herald::config::RequireInRange("fans_per_account", fans, 0, 50'000'000));
    HERALD_RETURN_IF_ERROR(herald::config::RequireInRange("lists_per_account", lists, 0, 1000));
    HERALD_RETURN_IF_ERROR(herald::config::RequireInRange(
        "rate_limit_per_minute", absl::GetFlag(FLAGS_rate_limit_per_minute), 1, INT64_MAX));
    HERALD_RETURN_IF_ERROR(
        herald::config::RequireInRange("credits", absl::GetFlag(FLAGS_credits), 0, INT64_MAX));
    o.seed =
        sim::MakeQuickSeed({.teams = teams,
                            .accounts_per_team = accounts,
                            .fans_per_account = fans,
                            .lists_per_account = lists,
                            .rate_limit_per_minute = absl::GetFlag(FLAGS_rate_limit_per_minute),
                            .credits = absl::GetFlag(FLAGS_credits),
                            .seed = absl::GetFlag(FLAGS_seed)});
  }

  const absl::Duration window = absl::GetFlag(FLAGS_rate_limit_window);
  if (window < absl::Seconds(1) || window > absl::Minutes(1)) {
    return absl::InvalidArgumentError(herald::StrCat(
        "--rate_limit_window: must be in [1s, 1m] (got ", absl::FormatDuration(window), ")"));
  }
  for (sim::TeamSeed& team : o.seed.teams) team.rate_limit_window = window;

  sim::Behavior& b = o.behavior;
  b.delivery_rate = absl::GetFlag(FLAGS_delivery_rate);
  b.unsend_window = absl::GetFlag(FLAGS_unsend_window);
  b.purchase_probability = absl::GetFlag(FLAGS_purchase_probability);
  const std::string fan_behavior = absl::GetFlag(FLAGS_fan_behavior);
  HERALD_RETURN_IF_ERROR(
      herald::config::RequireOneOf("fan_behavior", fan_behavior, {"uniform", "spend_weighted"}));
  b.fan_behavior =
      fan_behavior == "uniform" ? sim::FanBehavior::kUniform : sim::FanBehavior::kSpendWeighted;
  b.purchase_delay_min = absl::GetFlag(FLAGS_purchase_delay_min);
  b.purchase_delay_max = absl::GetFlag(FLAGS_purchase_delay_max);
  b.view_probability = absl::GetFlag(FLAGS_view_probability);
  b.new_subscribers_per_second = absl::GetFlag(FLAGS_new_subscribers_per_second);
  b.max_ids_per_list_add = absl::GetFlag(FLAGS_max_ids_per_list_add);
  b.member_page_shortfall = absl::GetFlag(FLAGS_member_page_shortfall);
  b.buyer_page_shortfall = absl::GetFlag(FLAGS_buyer_page_shortfall);
  b.upload_credits_per_mb = absl::GetFlag(FLAGS_upload_credits_per_mb);
  const std::string upload_shape = absl::GetFlag(FLAGS_upload_response_shape);
  HERALD_RETURN_IF_ERROR(
      herald::config::RequireOneOf("upload_response_shape", upload_shape, {"flat", "data"}));
  b.upload_response_shape = *sim::ParseUploadResponseShape(upload_shape);

  sim::WebhookPolicy& p = o.webhook_policy;
  p.max_retries = absl::GetFlag(FLAGS_webhook_max_retries);
  p.retry_base = absl::GetFlag(FLAGS_webhook_retry_base);
  p.request_timeout = absl::GetFlag(FLAGS_webhook_timeout);
  p.duplicate_rate = absl::GetFlag(FLAGS_webhook_duplicate_rate);
  p.concurrency = absl::GetFlag(FLAGS_webhook_concurrency);
  p.max_backlog = absl::GetFlag(FLAGS_webhook_max_backlog);
  for (const std::string& url : absl::GetFlag(FLAGS_webhook_url)) {
    if (url.empty()) continue;
    o.webhooks.push_back({.url = url, .secret = absl::GetFlag(FLAGS_webhook_secret)});
  }
  const std::string faults = absl::GetFlag(FLAGS_faults);
  if (!faults.empty()) {
    auto rules = sim::ParseFaultRules(faults);
    if (!rules.ok()) return rules.status();
    o.faults = *rules;
  }
  HERALD_RETURN_IF_ERROR(o.Validate());
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return file.find("upstream-sim/") != absl::string_view::npos;
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.normalize_filename = [](absl::string_view file) {
    const size_t at = file.find("tools/");
    return std::string(at == absl::string_view::npos ? file : file.substr(at));
  };
  absl::SetFlagsUsageConfig(usage);

  if (absl::Status s = herald::config::ApplyEnvironment(); !s.ok()) {
    return Fail(herald::ToStd(s.message()));
  }
  std::vector<std::string> storage;
  std::vector<char*> args = herald::config::NormalizeFlagSpelling(argc, argv, storage);
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()) - 1, args.data());
  if (positional.size() != 1) return Fail("unexpected arguments; see --help");

  auto level = herald::log::ParseLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) return Fail(herald::ToStd(level.status().message()));
  auto format = herald::log::ParseFormat(absl::GetFlag(FLAGS_log_format));
  if (!format.ok()) return Fail(herald::ToStd(format.status().message()));
  herald::log::Configure({.min_level = *level, .format = *format});

  auto options = OptionsFromFlags();
  if (!options.ok()) return Fail(herald::ToStd(options.status().message()));

  // Signals are taken synchronously by this thread so the simulator's threads never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  sim::Simulator simulator(*options);
  if (absl::Status s = simulator.Start(); !s.ok()) {
    herald::log::Error("upstream-sim cannot start", {{"error", s}});
    return 1;
  }
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty()) {
    if (absl::Status s = WritePortFile(port_file, simulator.port()); !s.ok()) {
      herald::log::Error("cannot write the port file", {{"error", s}});
      return 1;
    }
  }
  int signo = 0;
  sigwait(&signals, &signo);
  herald::log::Info("upstream-sim stopping", {{"signal", signo}});
  simulator.Stop();
  return 0;
}
