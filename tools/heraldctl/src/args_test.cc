#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/retry_info.h>
#include <herald/heraldctl/args.h>
#include <herald/heraldctl/cli.h>
#include <herald/heraldctl/exit_codes.h>
#include <herald/heraldctl/names.h>

namespace herald::heraldctl {
namespace {

using ::testing::HasSubstr;

std::optional<std::string> NoEnv(std::string_view) { return std::nullopt; }

absl::StatusOr<ParsedCommand> Parse(std::vector<std::string> args, const EnvLookup& env = NoEnv) {
  return ParseCommandLine(args, Commands(), env);
}

TEST(ParseCommandLineTest, ResourceVerbArgsAndFlagsInAnyOrder) {
  auto parsed = Parse({"--server=h:1", "accounts", "create", "--team", "t1", "acct_a", "--pace=60",
                       "--max_in_flight=2", "--json"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec->resource, "accounts");
  EXPECT_EQ(parsed->spec->verb, "create");
  EXPECT_EQ(parsed->args, std::vector<std::string>{"acct_a"});
  EXPECT_EQ(parsed->Get("team"), "t1");
  EXPECT_EQ(parsed->Get("pace"), "60");
  EXPECT_EQ(parsed->Get("max-in-flight"), "2");  // underscores read as dashes
  EXPECT_EQ(parsed->global.server, "h:1");
  EXPECT_TRUE(parsed->global.json);
}

TEST(ParseCommandLineTest, GlobalsFromEnvironmentFlagsWin) {
  const EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HERALD_SERVER") return "env:7070";
    if (name == "HERALD_TENANT") return "acme";
    if (name == "HERALD_API_KEY") return "k-env";
    return std::nullopt;
  };
  auto parsed = Parse({"teams", "list", "--server", "flag:1"}, env);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->global.server, "flag:1");
  EXPECT_EQ(parsed->global.tenant, "acme");
  EXPECT_EQ(parsed->global.key, "k-env");
  auto defaults = Parse({"teams", "list"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->global.server, "127.0.0.1:7070");
  EXPECT_EQ(defaults->global.timeout_seconds, 30);
}

TEST(ParseCommandLineTest, AKeyFileFlagWinsOverTheEnvironmentsKey) {
  const EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HERALD_API_KEY") return "k-env";
    return std::nullopt;
  };
  auto parsed = Parse({"tenants", "list", "--key-file=/run/admin.key"}, env);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->global.key, "") << "the environment's key would hide the file's";
  EXPECT_EQ(parsed->global.key_file, "/run/admin.key");
  const EnvLookup file_env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HERALD_API_KEY_FILE") return "/run/env.key";
    return std::nullopt;
  };
  parsed = Parse({"tenants", "list", "--key=k-flag"}, file_env);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->global.key, "k-flag");
  EXPECT_EQ(parsed->global.key_file, "");
}

TEST(ParseCommandLineTest, AKeyGivenTwoWaysInOnePlaceIsAUsageError) {
  const EnvLookup both = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HERALD_API_KEY") return "k-env";
    if (name == "HERALD_API_KEY_FILE") return "/run/env.key";
    return std::nullopt;
  };
  auto parsed = Parse({"teams", "list"}, both);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()),
              HasSubstr("HERALD_API_KEY and HERALD_API_KEY_FILE are both set"));
  // A flag settles it; so does help, which needs no key.
  parsed = Parse({"teams", "list", "--key-file=/run/flag.key"}, both);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->global.key_file, "/run/flag.key");
  EXPECT_EQ(parsed->global.key, "");
  EXPECT_TRUE(Parse({"teams", "list", "--help"}, both).ok());
  parsed = Parse({"teams", "list", "--key=k", "--key-file=/run/flag.key"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("--key and --key-file both"));
}

TEST(ParseCommandLineTest, ABadEnvironmentValueYieldsToItsFlagAndNeverBlocksHelp) {
  const EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HERALD_TIMEOUT") return "abc";
    if (name == "HERALD_TLS") return "on";
    return std::nullopt;
  };
  auto parsed = Parse({"teams", "list", "--timeout=5", "--tls=false"}, env);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->global.timeout_seconds, 5);
  EXPECT_TRUE(Parse({"--help"}, env).ok());
  EXPECT_TRUE(Parse({"teams", "list", "--help"}, env).ok());
  auto refused = Parse({"teams", "list", "--tls=false"}, env);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("HERALD_TIMEOUT"));
}

TEST(ParseCommandLineTest, BooleanFlags) {
  auto parsed = Parse({"campaigns", "create", "--draft", "--locked-text=false"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->GetBool("draft"));
  EXPECT_TRUE(parsed->Has("locked-text"));
  EXPECT_FALSE(parsed->GetBool("locked-text"));
  EXPECT_FALSE(Parse({"campaigns", "create", "--draft=maybe"}).ok());
}

TEST(ParseCommandLineTest, UsageErrors) {
  EXPECT_THAT(Parse({"nope", "list"}).status().message(), HasSubstr("unknown resource 'nope'"));
  EXPECT_THAT(Parse({"teams", "explode"}).status().message(),
              HasSubstr("unknown command 'teams explode'"));
  EXPECT_THAT(Parse({"teams", "list", "--bogus=1"}).status().message(),
              HasSubstr("unknown flag --bogus"));
  EXPECT_THAT(Parse({"teams", "get"}).status().message(), HasSubstr("missing arguments"));
  EXPECT_THAT(Parse({"teams", "get", "a", "b"}).status().message(),
              HasSubstr("unexpected argument 'b'"));
  EXPECT_THAT(Parse({"teams", "create", "t", "--rate-limit"}).status().message(),
              HasSubstr("needs a value"));
  // A flag where a value was due is not taken as the value.
  EXPECT_THAT(Parse({"campaigns", "get", "c1", "--tenant", "--json"}).status().message(),
              HasSubstr("--tenant needs a value (ID), not the flag --json"));
  auto dashed = Parse({"campaigns", "create", "--text=--not a flag"});
  ASSERT_TRUE(dashed.ok()) << dashed.status();
  EXPECT_EQ(dashed->Get("text"), "--not a flag");
  EXPECT_THAT(Parse({"teams", "list", "--timeout=0"}).status().message(), HasSubstr("seconds"));
  EXPECT_THAT(Parse({"teams"}).status().message(), HasSubstr("needs a command"));
  // A short flag is a mistake wherever it stands, not a positional argument.
  EXPECT_THAT(Parse({"lists", "create", "acct_a", "-n"}).status().message(),
              HasSubstr("unknown flag -n"));
  EXPECT_THAT(Parse({"campaigns", "get", "-v"}).status().message(), HasSubstr("unknown flag -v"));
  auto after_dashes = Parse({"lists", "create", "acct_a", "--", "-n"});
  ASSERT_TRUE(after_dashes.ok()) << after_dashes.status();
  EXPECT_EQ(after_dashes->args[1], "-n");
}

TEST(ParseCommandLineTest, AnalyticsCommands) {
  auto top = Parse({"campaigns", "top", "--since=7d", "--limit", "5"});
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->Get("since"), "7d");
  EXPECT_THAT(Parse({"campaigns", "top", "c1"}).status().message(),
              HasSubstr("unexpected argument 'c1'"));
  EXPECT_THAT(Parse({"accounts", "overview"}).status().message(), HasSubstr("missing arguments"));
  auto buyers = Parse({"campaigns", "buyers", "c1", "--limit", "25"});
  ASSERT_TRUE(buyers.ok()) << buyers.status();
  EXPECT_EQ(buyers->args, std::vector<std::string>{"c1"});
  EXPECT_EQ(buyers->Get("limit"), "25");
  EXPECT_TRUE(Parse({"campaigns", "stats", "tenants/acme/campaigns/c1", "--json"}).ok());
  EXPECT_THAT(Parse({"campaigns", "stats"}).status().message(), HasSubstr("missing arguments"));
  EXPECT_THAT(Parse({"campaigns", "stats", "c1", "--limit=3"}).status().message(),
              HasSubstr("unknown flag --limit"));
  EXPECT_THAT(Parse({"teams", "register-webhook", "a", "b"}).status().message(),
              HasSubstr("unexpected argument 'b'"));
}

TEST(ParseCommandLineTest, DoubleDashEndsFlags) {
  auto parsed = Parse({"lists", "create", "acct_a", "--", "--weird name"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->args[1], "--weird name");
}

TEST(ParseCommandLineTest, HelpAtEveryLevel) {
  auto top = Parse({"--help"});
  ASSERT_TRUE(top.ok());
  EXPECT_TRUE(top->help);
  EXPECT_EQ(top->spec, nullptr);
  auto resource = Parse({"campaigns", "--help"});
  ASSERT_TRUE(resource.ok());
  EXPECT_EQ(resource->help_resource, "campaigns");
  auto command = Parse({"campaigns", "create", "-h"});
  ASSERT_TRUE(command.ok());
  EXPECT_TRUE(command->help);
  EXPECT_EQ(command->spec->verb, "create");
  auto word = Parse({"help", "teams", "get"});
  ASSERT_TRUE(word.ok());
  EXPECT_TRUE(word->help);
  EXPECT_EQ(word->spec->resource, "teams");
  // Missing arguments do not matter when asking for help.
  EXPECT_TRUE(Parse({"teams", "get", "--help"}).ok());
  // --help takes a value like any boolean flag.
  auto valued = Parse({"campaigns", "list", "--help=true"});
  ASSERT_TRUE(valued.ok()) << valued.status();
  EXPECT_TRUE(valued->help);
  auto off = Parse({"campaigns", "list", "--help=false"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->help);
  EXPECT_FALSE(Parse({"campaigns", "list", "--help=maybe"}).ok());
}

TEST(HelpTest, EveryCommandHasUsageFlagsAndExitCodes) {
  for (const CommandSpec& spec : Commands()) {
    const std::string help = CommandHelp(spec);
    EXPECT_THAT(help, HasSubstr(spec.resource + " " + spec.verb)) << help;
    EXPECT_THAT(help, HasSubstr("--server")) << help;
    EXPECT_THAT(help, HasSubstr("Exit codes")) << help;
    for (const FlagSpec& flag : spec.flags) EXPECT_THAT(help, HasSubstr("--" + flag.name));
    EXPECT_NE(spec.run, nullptr);
  }
  EXPECT_THAT(ProgramHelp(Commands()), HasSubstr("campaigns watch"));
  EXPECT_THAT(ResourceHelp(Commands(), "keys"), HasSubstr("heraldctl keys create [TENANT]"));
}

TEST(ParseCommandLineTest, RepeatedFlagsKeepEveryValue) {
  auto parsed = Parse({"events", "tail", "--type=a", "--account", "x", "--type", "b,c"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->GetAll("type"), (std::vector<std::string>{"a", "b,c"}));
  EXPECT_EQ(parsed->GetAll("account"), std::vector<std::string>{"x"});
  EXPECT_EQ(parsed->Get("type"), "b,c");  // the last one
  EXPECT_TRUE(parsed->GetAll("from").empty());
}

TEST(HelpTest, RequiredCommandsExist) {
  for (const auto& [resource, verb] :
       std::vector<std::pair<std::string, std::string>>{{"tenants", "create"},
                                                        {"keys", "create"},
                                                        {"keys", "revoke"},
                                                        {"audit", "list"},
                                                        {"admin", "rotate-encryption-key"},
                                                        {"teams", "pause"},
                                                        {"teams", "resume"},
                                                        {"teams", "register-webhook"},
                                                        {"accounts", "sync"},
                                                        {"media", "upload"},
                                                        {"lists", "add"},
                                                        {"segments", "create"},
                                                        {"campaigns", "watch"},
                                                        {"campaigns", "cancel"},
                                                        {"campaigns", "test-send"},
                                                        {"campaigns", "queue"},
                                                        {"campaigns", "stats"},
                                                        {"campaigns", "buyers"},
                                                        {"campaigns", "top"},
                                                        {"accounts", "overview"},
                                                        {"events", "tail"}}) {
    EXPECT_TRUE(Parse({resource, verb, "--help"}).ok()) << resource << " " << verb;
  }
}

TEST(RunCliTest, UsageErrorsExitTwoWithoutContactingTheServer) {
  std::ostringstream out, err;
  EXPECT_EQ(RunCli({"teams", "list"}, NoEnv, out, err, {}), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("HERALD_TENANT"));
  err.str("");
  EXPECT_EQ(RunCli({"teams", "create", "t1", "--tenant=acme"}, NoEnv, out, err, {}), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("--upstream-key-file"));
  err.str("");
  EXPECT_EQ(RunCli({"teams", "create", "t1", "--tenant=acme", "--upstream-key-env=NOPE"}, NoEnv,
                   out, err, {}),
            kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("$NOPE is not set"));
  EXPECT_EQ(RunCli({}, NoEnv, out, err, {}), kExitUsage);
  out.str("");
  EXPECT_EQ(RunCli({"campaigns", "create", "--help"}, NoEnv, out, err, {}), kExitOk);
  EXPECT_THAT(out.str(), HasSubstr("--price=DOLLARS"));
}

TEST(RunCliTest, UnreachableServerIsExitEight) {
  std::ostringstream out, err;
  // Port 1 on localhost refuses connections.
  EXPECT_EQ(RunCli({"tenants", "list", "--server=127.0.0.1:1", "--timeout=5"}, NoEnv, out, err, {}),
            kExitUnavailable);
  EXPECT_THAT(err.str(), HasSubstr("UNAVAILABLE"));
}

TEST(ExitCodeTest, MapsGrpcCodes) {
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kOk, "x")), kExitOk);
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kNotFound, "x")), kExitNotFound);
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kAlreadyExists, "x")), kExitAlreadyExists);
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kFailedPrecondition, "x")), kExitRejected);
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kInvalidArgument, "x")), kExitRejected);
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kUnauthenticated, "x")), kExitAuth);
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kPermissionDenied, "x")), kExitAuth);
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kUnavailable, "x")), kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kDeadlineExceeded, "x")), kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kAborted, "x")), kExitUnavailable)
      << "a retry may succeed";
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kInternal, "x")), kExitRpcError);
  // RESOURCE_EXHAUSTED: a limit that frees up says when to retry; a size limit does not.
  EXPECT_EQ(ExitCodeFor(WithRetryInfo(absl::ResourceExhaustedError("quota"), absl::Seconds(1))),
            kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(absl::ResourceExhaustedError("too big")), kExitRejected);
  EXPECT_EQ(ExitCodeFor(absl::Status(absl::StatusCode::kUnimplemented, "x")), kExitRpcError);
}

TEST(NamesTest, ShortIdsResolveInTheTenantFullNamesPassThrough) {
  const Names names("acme");
  EXPECT_EQ(*names.Resolve("campaigns", "c1"), "tenants/acme/campaigns/c1");
  EXPECT_EQ(*names.Resolve("campaigns", "tenants/other/campaigns/c1"),
            "tenants/other/campaigns/c1");
  EXPECT_EQ(*names.Parent(), "tenants/acme");
  EXPECT_EQ(*names.Tenant("beta"), "tenants/beta");
  EXPECT_EQ(*names.Tenant("tenants/beta"), "tenants/beta");
  EXPECT_FALSE(names.Tenant("tenants/beta/teams/x").ok());
  EXPECT_FALSE(names.Resolve("campaigns", "campaigns/c1").ok());
  EXPECT_FALSE(names.Resolve("campaigns", "").ok());
  const Names none("");
  EXPECT_FALSE(none.Parent().ok());
  EXPECT_THAT(none.Resolve("accounts", "acct_a").status().message(), HasSubstr("--tenant"));
  EXPECT_EQ(*none.Resolve("accounts", "tenants/a/accounts/acct_a"), "tenants/a/accounts/acct_a");
  EXPECT_EQ(ShortId("tenants/a/accounts/acct_a"), "acct_a");
  EXPECT_EQ(ShortId("x"), "x");
}

}  // namespace
}  // namespace herald::heraldctl
