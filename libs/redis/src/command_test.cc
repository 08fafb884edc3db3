#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/redis/client.h>

namespace herald::redis {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CommandTest, BuildsBinarySafeArguments) {
  const std::string key = "key";
  Command c{"SET", key};
  c.Arg(std::string_view("a\0b", 3)).Arg(int64_t{-12});
  const std::vector<std::string> keys = {"k1", "k2"};
  c.Args(keys);
  EXPECT_THAT(c.args(), ElementsAre("SET", "key", std::string("a\0b", 3), "-12", "k1", "k2"));
  EXPECT_FALSE(c.empty());
  EXPECT_TRUE(Command().empty());
}

TEST(CommandTest, ConstructorTakesTextAndIntegers) {
  const std::string key = "k";
  const std::string_view view = "v";
  const Command c{"SETEX", key, 30, view, int64_t{-5}, uint16_t{7}};
  EXPECT_THAT(c.args(), ElementsAre("SETEX", "k", "30", "v", "-5", "7"));
  const Command single = {"PING"};
  EXPECT_THAT(single.args(), ElementsAre("PING"));
}

TEST(ScriptTest, Sha1OfKnownStrings) {
  // FIPS 180-1 test vector, and what `printf 'return 1' | sha1sum` prints.
  EXPECT_EQ(Script("abc").sha1(), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(Script("return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
  EXPECT_EQ(Script("return 1").source(), "return 1");
}

TEST(ClientConfigTest, Validation) {
  EXPECT_TRUE(ValidateClientConfig({}).ok());

  ClientConfig no_host;
  no_host.address.host = "";
  EXPECT_THAT(std::string(ValidateClientConfig(no_host).message()), HasSubstr("redis.address"));

  ClientConfig zero_port;
  zero_port.address.port = 0;
  EXPECT_EQ(ValidateClientConfig(zero_port).code(), absl::StatusCode::kInvalidArgument);

  ClientConfig pool;
  pool.connections = 0;
  EXPECT_THAT(std::string(ValidateClientConfig(pool).message()), HasSubstr("redis.connections"));
  pool.connections = 65;
  EXPECT_FALSE(ValidateClientConfig(pool).ok());

  ClientConfig timeout;
  timeout.command_timeout = absl::ZeroDuration();
  EXPECT_THAT(std::string(ValidateClientConfig(timeout).message()),
              HasSubstr("redis.command_timeout"));

  ClientConfig backoff;
  backoff.reconnect_backoff_min = absl::Seconds(5);
  backoff.reconnect_backoff_max = absl::Seconds(1);
  EXPECT_THAT(std::string(ValidateClientConfig(backoff).message()),
              HasSubstr("redis.reconnect_backoff_min"));
}

}  // namespace
}  // namespace herald::redis
