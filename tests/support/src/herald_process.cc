#include <sys/wait.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/net.h>
#include <herald/testing/wait.h>

namespace herald::testing {

std::string HeraldProcess::grpc_target() const { return StrCat("127.0.0.1:", grpc_port_); }

absl::StatusOr<std::unique_ptr<HeraldProcess>> HeraldProcess::Start(Options options) {
  // The ports are free when picked but may be taken by another test before herald binds them;
  // a herald that exits before it is ready is started again on new ports.
  constexpr int kAttempts = 3;
  absl::Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const uint16_t grpc_port = PickFreePort();
    const uint16_t admin_port = PickFreePort();
    const uint16_t ingest_port = PickFreePort();
    std::vector<std::string> argv = {BuildPath("services/herald/herald")};
    argv.insert(argv.end(), options.args.begin(), options.args.end());
    argv.push_back(StrCat("--grpc_address=127.0.0.1:", grpc_port));
    argv.push_back(StrCat("--admin_address=127.0.0.1:", admin_port));
    argv.push_back(StrCat("--ingest_address=127.0.0.1:", ingest_port));
    if (options.register_webhooks) {
      argv.push_back(StrCat("--public_webhook_url=", options.webhooks_over_tls ? "https" : "http",
                            "://127.0.0.1:", ingest_port, "/webhooks"));
    }
    argv.push_back("--log_format=json");
    if (options.redis_port != 0) {
      argv.push_back(StrCat("--redis_address=127.0.0.1:", options.redis_port));
    }
    auto process = Subprocess::Start({.argv = argv, .env = options.env});
    if (!process.ok()) return process.status();
    std::unique_ptr<HeraldProcess> herald(
        new HeraldProcess(std::move(*process), grpc_port, admin_port, ingest_port));
    herald->argv_ = std::move(argv);
    herald->env_ = options.env;
    herald->wait_ready_ = options.wait_ready;
    if (!options.wait_ready) return herald;
    last = herald->WaitReady();
    if (last.ok()) return herald;
    if (herald->process_.running()) return last;  // not a start-up exit: no retry
  }
  return last;
}

absl::Status HeraldProcess::Restart() {
  process_.Kill();
  earlier_logs_ += process_.Stderr();
  auto process = Subprocess::Start({.argv = argv_, .env = env_});
  if (!process.ok()) return process.status();
  process_ = std::move(*process);
  return wait_ready_ ? WaitReady() : absl::OkStatus();
}

absl::Status HeraldProcess::Restart(const std::map<std::string, std::string>& env_changes) {
  for (const auto& [name, value] : env_changes) {
    if (value.empty()) {
      env_.erase(name);
    } else {
      env_[name] = value;
    }
  }
  return Restart();
}

absl::Status HeraldProcess::WaitReady() {
  const bool ready = WaitFor(
      [&] {
        if (!process_.running()) return true;
        auto res = HttpGet(admin_port_, "/readyz");
        return res.ok() && res->status == 200;
      },
      // An upper bound, not a pause, and generous: on two cores shared with a parallel ctest's
      // heaviest suites, a start on a Redis Cluster can take more than 30 s.
      absl::Seconds(60));
  if (!ready || !process_.running()) {
    return absl::UnavailableError(StrCat("herald did not become ready; logs:\n", Logs()));
  }
  return absl::OkStatus();
}

namespace {

CommandResult RunToCompletion(std::vector<std::string> argv, std::map<std::string, std::string> env,
                              absl::Duration timeout) {
  CommandResult result;
  auto process = Subprocess::Start({.argv = std::move(argv), .env = std::move(env)});
  if (!process.ok()) {
    result.err = process.status().ToString();
    return result;
  }
  if (auto status = process->Wait(timeout); status && WIFEXITED(*status)) {
    result.exit_code = WEXITSTATUS(*status);
  }
  result.out = process->Stdout();
  result.err = process->Stderr();
  return result;
}

}  // namespace

absl::StatusOr<ApiAndIngest> StartApiAndIngest(uint16_t redis_port, uint16_t sim_port,
                                               const std::map<std::string, std::string>& env,
                                               const std::vector<std::string>& api_args,
                                               const std::vector<std::string>& ingest_args) {
  std::vector<std::string> ingest_argv = {"serve", "--role=ingest"};
  ingest_argv.insert(ingest_argv.end(), ingest_args.begin(), ingest_args.end());
  auto ingest =
      HeraldProcess::Start({.args = std::move(ingest_argv), .env = env, .redis_port = redis_port});
  if (!ingest.ok()) return ingest.status();
  std::vector<std::string> api_argv = {
      "serve", "--role=api", StrCat("--upstream_url=http://127.0.0.1:", sim_port),
      StrCat("--public_webhook_url=http://127.0.0.1:", (*ingest)->ingest_port(), "/webhooks")};
  api_argv.insert(api_argv.end(), api_args.begin(), api_args.end());
  auto api =
      HeraldProcess::Start({.args = std::move(api_argv), .env = env, .redis_port = redis_port});
  if (!api.ok()) return api.status();
  return ApiAndIngest{.api = *std::move(api), .ingest = *std::move(ingest)};
}

std::ostream& operator<<(std::ostream& os, const CommandResult& r) {
  return os << "exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
}

CommandResult RunHerald(std::vector<std::string> args, std::map<std::string, std::string> env) {
  args.insert(args.begin(), BuildPath("services/herald/herald"));
  return RunToCompletion(std::move(args), std::move(env), absl::Seconds(30));
}

CommandResult RunHeraldctl(std::string_view server, std::vector<std::string> args,
                           std::map<std::string, std::string> env) {
  args.insert(args.begin(), BuildPath("tools/heraldctl/heraldctl"));
  env.emplace("HERALD_SERVER", server);
  for (const char* name :
       {"HERALD_API_KEY", "HERALD_API_KEY_FILE", "HERALD_TENANT", "HERALD_TLS", "HERALD_TIMEOUT",
        "HERALD_TLS_CA_FILE", "HERALD_TLS_CERT_FILE", "HERALD_TLS_KEY_FILE"}) {
    env.emplace(name, "");
  }
  return RunToCompletion(std::move(args), std::move(env), absl::Seconds(60));
}

}  // namespace herald::testing
