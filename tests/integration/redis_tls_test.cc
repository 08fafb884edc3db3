// herald::redis::Client over TLS to a real redis-server's tls-port, with throw-away CAs made by
// the test (openssl): the server's certificate is verified (another CA's is refused), a client
// certificate is presented where the server requires one, and certificate files are read again
// at every reconnect.
#include <chrono>
#include <filesystem>
#include <mutex>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/redis/client.h>
#include <herald/testing/io_thread.h>
#include <herald/testing/net.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/subprocess.h>
#include <herald/testing/tls.h>
#include <herald/testing/wait.h>

namespace herald::redis {
namespace {

using ::testing::HasSubstr;
using testing::RedisServer;

class RedisTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("redis-tls");
    ASSERT_TRUE(testing::MakeTestCa(dir_, "trusted")) << "openssl failed";
    ASSERT_TRUE(testing::MakeTestCa(dir_, "other")) << "openssl failed";
    tls_port_ = testing::PickFreePort();
    // The plain port stays for the harness's own probes; the client under test uses tls-port.
    auto server = RedisServer::Start(
        {.extra = {StrCat("tls-port ", tls_port_),
                   StrCat("tls-cert-file ", Path("trusted-server.pem")),
                   StrCat("tls-key-file ", Path("trusted-server.key")),
                   StrCat("tls-ca-cert-file ", Path("trusted-ca.pem")), "tls-auth-clients yes"}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    io_.Start();
  }

  void TearDown() override {
    for (auto& client : clients_) client->Stop();
    clients_.clear();
    io_.Join();
  }

  std::string Path(const std::string& name) const { return StrCat(dir_, "/", name); }

  // A started client of the TLS port; its connectivity reports go to `reports_`.
  Client& Connect(ClientConfig::Tls tls) {
    ClientConfig config{.address = {"127.0.0.1", tls_port_}};
    config.tls = std::move(tls);
    config.tls.enabled = true;
    config.connect_timeout = absl::Seconds(2);
    config.reconnect_backoff_max = absl::Milliseconds(200);
    clients_.push_back(std::make_unique<Client>(io_.executor(), config));
    Client& client = *clients_.back();
    client.OnConnectivityChange([this](absl::Status status) {
      std::lock_guard<std::mutex> lock(mu_);
      reports_.push_back(status);
    });
    client.Start();
    return client;
  }

  absl::StatusOr<Reply> Exec(Client& client, Command command) {
    return io_.Run(client.Exec(std::move(command)));
  }

  // Whether a connectivity report so far mentions `text`.
  bool Reported(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const absl::Status& s : reports_) {
      if (s.message().find(text) != std::string_view::npos) return true;
    }
    return false;
  }

  std::string dir_;
  uint16_t tls_port_ = 0;
  std::unique_ptr<RedisServer> server_;
  testing::IoThread io_;
  std::mutex mu_;
  std::vector<absl::Status> reports_;
  std::vector<std::unique_ptr<Client>> clients_;
};

TEST_F(RedisTlsTest, TrustedClientWithACertificateReadsAndWrites) {
  Client& client = Connect({.ca_file = Path("trusted-ca.pem"),
                            .cert_file = Path("trusted-client.pem"),
                            .key_file = Path("trusted-client.key")});
  ASSERT_TRUE(testing::WaitFor([&] { return client.connected(); }, absl::Seconds(10)));
  ASSERT_TRUE(Exec(client, {"SET", "over-tls", "yes"}).ok());
  absl::StatusOr<Reply> got = Exec(client, {"GET", "over-tls"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->str(), "yes");
  // The same key through the plain port: one server.
  EXPECT_EQ(server_->Command({"GET", "over-tls"}).value_or(""), "yes");
}

TEST_F(RedisTlsTest, AServerCertificateOfAnotherCaIsRefused) {
  Client& client = Connect({.ca_file = Path("other-ca.pem"),
                            .cert_file = Path("trusted-client.pem"),
                            .key_file = Path("trusted-client.key")});
  ASSERT_TRUE(
      testing::WaitFor([&] { return Reported("certificate verify failed"); }, absl::Seconds(10)));
  EXPECT_FALSE(client.connected());
  absl::StatusOr<Reply> refused = Exec(client, {"PING"});
  EXPECT_FALSE(refused.ok());
}

TEST_F(RedisTlsTest, AServerThatRequiresAClientCertificateRefusesAClientWithout) {
  Client& client = Connect({.ca_file = Path("trusted-ca.pem")});
  ASSERT_TRUE(
      testing::WaitFor([&] { return Reported("certificate required"); }, absl::Seconds(10)));
  EXPECT_FALSE(client.connected());
}

TEST_F(RedisTlsTest, CertificateFilesAreReadAgainAtEveryReconnect) {
  // The client certificate is missing at first: every attempt fails, naming the file.
  const std::string cert = Path("rotating-client.pem");
  const std::string key = Path("rotating-client.key");
  Client& client = Connect({.ca_file = Path("trusted-ca.pem"), .cert_file = cert, .key_file = key});
  ASSERT_TRUE(testing::WaitFor([&] { return Reported("rotating-client.pem"); }, absl::Seconds(10)));
  EXPECT_FALSE(client.connected());
  // Installed: the next reconnect reads it and connects, without a restart.
  std::filesystem::copy_file(Path("trusted-client.key"), key);
  std::filesystem::copy_file(Path("trusted-client.pem"), cert);
  ASSERT_TRUE(testing::WaitFor([&] { return client.connected(); }, absl::Seconds(10)));
  EXPECT_TRUE(Exec(client, {"PING"}).ok());
}

TEST(RedisTlsConfigTest, CertificateOptionsNeedTlsAndBothFiles) {
  ClientConfig half{.tls = {.enabled = true, .cert_file = "client.pem"}};
  EXPECT_THAT(ValidateClientConfig(half).message(), HasSubstr("both its cert and key"));
  ClientConfig off{.tls = {.ca_file = "ca.pem"}};
  EXPECT_THAT(ValidateClientConfig(off).message(), HasSubstr("TLS is not enabled"));
  ClientConfig on{.tls = {.enabled = true, .ca_file = "ca.pem"}};
  EXPECT_TRUE(ValidateClientConfig(on).ok());
}

}  // namespace
}  // namespace herald::redis
