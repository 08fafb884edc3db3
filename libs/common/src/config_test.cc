#include <cstdlib>

#include <absl/flags/flag.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/config.h>

ABSL_FLAG(int, config_test_workers, 4, "test flag");
ABSL_FLAG(absl::Duration, config_test_timeout, absl::Seconds(30), "test flag");

namespace herald::config {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, EnvironmentNameIsPrefixedAndUpperCase) {
  EXPECT_EQ(EnvironmentName("drain_timeout"), "HERALD_DRAIN_TIMEOUT");
  EXPECT_EQ(EnvironmentName("io-threads"), "HERALD_IO_THREADS");
}

TEST(ConfigTest, EnvironmentSetsFlags) {
  setenv("HERALD_CONFIG_TEST_WORKERS", "12", 1);
  setenv("HERALD_CONFIG_TEST_TIMEOUT", "1500ms", 1);
  ASSERT_TRUE(ApplyEnvironment().ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_config_test_workers), 12);
  EXPECT_EQ(absl::GetFlag(FLAGS_config_test_timeout), absl::Milliseconds(1500));
  unsetenv("HERALD_CONFIG_TEST_WORKERS");
  unsetenv("HERALD_CONFIG_TEST_TIMEOUT");
}

TEST(ConfigTest, InvalidEnvironmentValueNamesTheVariableAndTheFlag) {
  setenv("HERALD_CONFIG_TEST_WORKERS", "many", 1);
  const absl::Status status = ApplyEnvironment();
  unsetenv("HERALD_CONFIG_TEST_WORKERS");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("HERALD_CONFIG_TEST_WORKERS='many'"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("--config_test_workers"));
}

TEST(ConfigTest, UnknownEnvironmentNamesMisspeltSettingsOnly) {
  setenv("HERALD_CONFIG_TEST_WORKRS", "12", 1);     // misspelt
  setenv("HERALD_CONFIG_TEST_WORKERS", "12", 1);    // a flag's
  setenv("HERALD_CONFIG_TEST_OTHERS", "x", 1);      // another program's
  setenv("NOT_HERALD_CONFIG_TEST_WORKRS", "1", 1);  // not Herald's at all
  const std::vector<std::string> unknown = UnknownEnvironment({"HERALD_CONFIG_TEST_OTHERS"});
  unsetenv("HERALD_CONFIG_TEST_WORKRS");
  unsetenv("HERALD_CONFIG_TEST_WORKERS");
  unsetenv("HERALD_CONFIG_TEST_OTHERS");
  unsetenv("NOT_HERALD_CONFIG_TEST_WORKRS");
  EXPECT_THAT(unknown, ::testing::Contains("HERALD_CONFIG_TEST_WORKRS"));
  EXPECT_THAT(unknown, ::testing::Not(::testing::Contains("HERALD_CONFIG_TEST_WORKERS")));
  EXPECT_THAT(unknown, ::testing::Not(::testing::Contains("HERALD_CONFIG_TEST_OTHERS")));
  EXPECT_THAT(unknown, ::testing::Not(::testing::Contains("NOT_HERALD_CONFIG_TEST_WORKRS")));
}

TEST(ConfigTest, DashedFlagNamesAreRewrittenUpToTheValue) {
  char a0[] = "herald", a1[] = "serve", a2[] = "--drain-timeout=5s", a3[] = "-io-threads",
       a4[] = "--", a5[] = "--keep-me";
  char* argv[] = {a0, a1, a2, a3, a4, a5};
  std::vector<std::string> storage;
  std::vector<char*> out = NormalizeFlagSpelling(6, argv, storage);
  ASSERT_EQ(out.size(), 7u);
  EXPECT_STREQ(out[1], "serve");
  EXPECT_STREQ(out[2], "--drain_timeout=5s");
  EXPECT_STREQ(out[3], "-io_threads");
  EXPECT_STREQ(out[5], "--keep-me");
  EXPECT_EQ(out[6], nullptr);
}

TEST(ConfigTest, ParsesHostPortForms) {
  auto v4 = ParseHostPort("admin_address", "0.0.0.0:9090");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "0.0.0.0");
  EXPECT_EQ(v4->port, 9090);
  auto v6 = ParseHostPort("admin_address", "[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "[::1]:0");
}

TEST(ConfigTest, HostPortErrorsNameTheFlag) {
  EXPECT_THAT(std::string(ParseHostPort("admin_address", "localhost").status().message()),
              HasSubstr("--admin_address: missing port"));
  EXPECT_THAT(std::string(ParseHostPort("redis", "h:99999").status().message()),
              HasSubstr("invalid port"));
  EXPECT_THAT(std::string(ParseHostPort("redis", "h:0", false).status().message()),
              HasSubstr("port 0"));
  EXPECT_THAT(std::string(ParseHostPort("redis", "::1:80").status().message()),
              HasSubstr("brackets"));
  EXPECT_THAT(std::string(ParseHostPort("redis", ":80").status().message()),
              HasSubstr("missing host"));
}

TEST(ConfigTest, RangeAndDurationChecks) {
  EXPECT_TRUE(RequireInRange("io_threads", 4, 1, 64).ok());
  EXPECT_THAT(std::string(RequireInRange("io_threads", 0, 1, 64).message()),
              HasSubstr("--io_threads must be in [1, 64] (got 0)"));
  EXPECT_TRUE(RequirePositive("drain_timeout", absl::Seconds(1)).ok());
  EXPECT_FALSE(RequirePositive("drain_timeout", absl::ZeroDuration()).ok());
  EXPECT_FALSE(RequirePositive("drain_timeout", absl::InfiniteDuration()).ok());
  EXPECT_TRUE(RequireOneOf("role", "api", {"api", "worker"}).ok());
  EXPECT_THAT(std::string(RequireOneOf("role", "db", {"api", "worker"}).message()),
              HasSubstr("--role must be one of api, worker (got 'db')"));
}

}  // namespace
}  // namespace herald::config
