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

#include "serve.h"

#ifndef HERALD_VERSION
#define HERALD_VERSION "dev"
#endif

ABSL_FLAG(std::string, role, "all",
          "Roles this process runs: api (gRPC), worker (upstream calls), ingest (webhooks), "
          "all, or a comma list such as api,ingest.");
ABSL_FLAG(std::string, grpc_address, "0.0.0.0:7070",
          "host:port the api role's gRPC server listens on (port 0: any free port).");
ABSL_FLAG(std::string, admin_address, "0.0.0.0:9090",
          "host:port of the admin HTTP server (/metrics, /healthz, /readyz).");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(25),
          "After SIGTERM, time allowed for in-flight work before it is cancelled. Keep it below "
          "the pod's terminationGracePeriodSeconds.");
ABSL_FLAG(int, io_threads, 0, "Threads for asynchronous work; 0 means one per core.");
ABSL_FLAG(std::string, log_level, "info", "Minimum log level: debug, info, warn or error.");
ABSL_FLAG(std::string, log_format, "auto",
          "Log format: json (one object per line), text, or auto (text on a terminal).");

namespace {

constexpr char kUsage[] =
    "Herald orchestrates mass-message and PPV campaigns across creator accounts.\n"
    "\n"
    "Usage:\n"
    "  herald serve [flags]   run the service (see --role)\n"
    "  herald version         print the version\n"
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

  if (positional.size() != 2) {
    return Fail("expected one command (serve or version); see --help");
  }
  const std::string_view command = positional[1];
  if (command == "version") {
    std::printf("herald %s\n", HERALD_VERSION);
    return 0;
  }
  if (command != "serve")
    return Fail(herald::StrCat("unknown command '", command, "'; see --help"));

  auto config = herald::serve::MakeServeConfig({
      .role = absl::GetFlag(FLAGS_role),
      .grpc_address = absl::GetFlag(FLAGS_grpc_address),
      .admin_address = absl::GetFlag(FLAGS_admin_address),
      .drain_timeout = absl::GetFlag(FLAGS_drain_timeout),
      .io_threads = absl::GetFlag(FLAGS_io_threads),
      .log_level = absl::GetFlag(FLAGS_log_level),
      .log_format = absl::GetFlag(FLAGS_log_format),
  });
  if (!config.ok()) return Fail(herald::ToStd(config.status().message()));
  herald::log::Configure({.min_level = config->log_level, .format = config->log_format});
  return herald::serve::RunServe(*config);
}
