// The gRPC API over TLS with client certificates (mTLS), with a throw-away CA made by the test
// (openssl): trusted clients get in, plain-text clients, clients without a certificate and
// clients of another CA do not; certificates replaced on disk (a rotated CA) are used for new
// connections without a restart.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/herald_stack.h>
#include <herald/testing/net.h>
#include <herald/testing/observability.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/subprocess.h>
#include <herald/testing/tls.h>
#include <herald/testing/wait.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

namespace herald {
namespace {

using testing::HeraldProcess;
using testing::RedisServer;

constexpr char kAdminKey[] = "admin-key-for-tls-test";

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A channel to `target` trusting `ca`'s certificates, presenting `client`'s certificate when
// not empty.
std::shared_ptr<grpc::Channel> TlsChannel(const std::string& target, const std::string& dir,
                                          const std::string& ca, const std::string& client) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = Read(StrCat(dir, "/", ca, "-ca.pem"));
  if (!client.empty()) {
    options.pem_private_key = Read(StrCat(dir, "/", client, "-client.key"));
    options.pem_cert_chain = Read(StrCat(dir, "/", client, "-client.pem"));
  }
  return grpc::CreateChannel(target, grpc::SslCredentials(options));
}

grpc::Status ListTenants(const std::shared_ptr<grpc::Channel>& channel) {
  v1::ListTenantsRequest req;
  v1::ListTenantsResponse res;
  auto ctx = testing::BearerContext(kAdminKey, absl::Seconds(5));
  return v1::TenantService::NewStub(channel)->ListTenants(ctx.get(), req, &res);
}

TEST(TlsTest, MutualTlsAdmitsTrustedClientsOnlyAndPicksUpReplacedCertificates) {
  const std::string dir = testing::MakeTempDir("tls");
  ASSERT_TRUE(testing::MakeTestCa(dir, "first")) << "openssl failed";
  ASSERT_TRUE(testing::MakeTestCa(dir, "second")) << "openssl failed";
  // The files herald reads: the first CA's, to start with.
  const std::string cert = StrCat(dir, "/server.pem"), key = StrCat(dir, "/server.key"),
                    client_ca = StrCat(dir, "/client-ca.pem");
  const auto install = [&](const std::string& ca) {
    std::filesystem::copy_file(StrCat(dir, "/", ca, "-server.pem"), cert + ".new");
    std::filesystem::copy_file(StrCat(dir, "/", ca, "-server.key"), key + ".new");
    std::filesystem::copy_file(StrCat(dir, "/", ca, "-ca.pem"), client_ca + ".new");
    std::filesystem::rename(key + ".new", key);
    std::filesystem::rename(cert + ".new", cert);
    std::filesystem::rename(client_ca + ".new", client_ca);
  };
  install("first");

  auto redis = RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto herald = HeraldProcess::Start(
      {.args = {"serve", "--role=api", StrCat("--grpc_tls_cert_file=", cert),
                StrCat("--grpc_tls_key_file=", key),
                StrCat("--grpc_tls_client_ca_file=", client_ca), "--tls_reload_interval=1s"},
       .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", std::string(64, 'd')}},
       .redis_port = (*redis)->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  const std::string target = (*herald)->grpc_target();

  // A client of the first CA, with its certificate: in.
  grpc::Status s = ListTenants(TlsChannel(target, dir, "first", "first"));
  EXPECT_TRUE(s.ok()) << s.error_message() << (*herald)->Logs();
  // Plain text, TLS without a client certificate, a certificate of another CA: refused.
  EXPECT_FALSE(ListTenants(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())).ok());
  EXPECT_FALSE(ListTenants(TlsChannel(target, dir, "first", "")).ok());
  EXPECT_FALSE(ListTenants(TlsChannel(target, dir, "first", "second")).ok());
  // heraldctl: the private CA and the client certificate from its flags or environment.
  const std::string first = StrCat(dir, "/first");
  const testing::CommandResult by_flags =
      testing::RunHeraldctl(target,
                            {"tenants", "list", StrCat("--tls-ca-file=", first, "-ca.pem"),
                             StrCat("--tls-cert-file=", first, "-client.pem"),
                             StrCat("--tls-key-file=", first, "-client.key")},
                            {{"HERALD_API_KEY", kAdminKey}});
  EXPECT_EQ(by_flags.exit_code, 0) << by_flags;
  const testing::CommandResult by_env =
      testing::RunHeraldctl(target, {"tenants", "list"},
                            {{"HERALD_API_KEY", kAdminKey},
                             {"HERALD_TLS_CA_FILE", StrCat(first, "-ca.pem")},
                             {"HERALD_TLS_CERT_FILE", StrCat(first, "-client.pem")},
                             {"HERALD_TLS_KEY_FILE", StrCat(first, "-client.key")}});
  EXPECT_EQ(by_env.exit_code, 0) << by_env;
  const testing::CommandResult no_certificate = testing::RunHeraldctl(
      target, {"tenants", "list", "--timeout=5", StrCat("--tls-ca-file=", first, "-ca.pem")},
      {{"HERALD_API_KEY", kAdminKey}});
  EXPECT_EQ(no_certificate.exit_code, 8) << no_certificate;
  const testing::CommandResult half = testing::RunHeraldctl(
      target, {"tenants", "list", StrCat("--tls-cert-file=", first, "-client.pem")},
      {{"HERALD_API_KEY", kAdminKey}});
  EXPECT_EQ(half.exit_code, 2) << half;
  EXPECT_NE(half.err.find("--tls-cert-file and --tls-key-file go together"), std::string::npos)
      << half;
  // TLS does not replace the bearer key.
  {
    v1::ListTenantsRequest req;
    v1::ListTenantsResponse res;
    auto ctx = testing::BearerContext("not-the-admin-key", absl::Seconds(5));
    EXPECT_EQ(v1::TenantService::NewStub(TlsChannel(target, dir, "first", "first"))
                  ->ListTenants(ctx.get(), req, &res)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }

  // The second CA replaces the first on disk: new connections use it, without a restart.
  install("second");
  EXPECT_TRUE(testing::WaitFor(
      [&] { return ListTenants(TlsChannel(target, dir, "second", "second")).ok(); },
      absl::Seconds(20)))
      << (*herald)->Logs();
  EXPECT_FALSE(ListTenants(TlsChannel(target, dir, "first", "first")).ok());
  EXPECT_TRUE((*herald)->process().running());
}

// One HTTPS POST to 127.0.0.1:`port` trusting the certificates of `ca_file` only: the
// response's status, or why there was none.
absl::StatusOr<unsigned> HttpsPost(uint16_t port, const std::string& ca_file,
                                   const std::string& target) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace bhttp = beast::http;
  asio::io_context io;
  asio::ssl::context context(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  context.load_verify_file(ca_file, ec);
  if (ec) return absl::InternalError(StrCat("CA file: ", ec.message()));
  beast::ssl_stream<beast::tcp_stream> stream(io, context);
  stream.set_verify_mode(asio::ssl::verify_peer);
  stream.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
  beast::get_lowest_layer(stream).socket().connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return absl::UnavailableError(StrCat("connect: ", ec.message()));
  stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return absl::UnavailableError(StrCat("handshake: ", ec.message()));
  bhttp::request<bhttp::string_body> request{bhttp::verb::post, target, 11};
  request.set(bhttp::field::host, "127.0.0.1");
  request.set(bhttp::field::content_type, "application/json");
  request.body() = "{}";
  request.prepare_payload();
  bhttp::write(stream, request, ec);
  if (ec) return absl::UnavailableError(StrCat("write: ", ec.message()));
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> response;
  bhttp::read(stream, buffer, response, ec);
  if (ec) return absl::UnavailableError(StrCat("read: ", ec.message()));
  return response.result_int();
}

// TLS files that would refuse every handshake stop the process at start, naming the flag: a
// certificate with another certificate's key, and a client CA file that holds no certificate.
TEST(TlsTest, GrpcTlsFilesThatDoNotLoadStopTheProcess) {
  const std::string dir = testing::MakeTempDir("grpc-tls-bad");
  ASSERT_TRUE(testing::MakeTestCa(dir, "first")) << "openssl failed";
  ASSERT_TRUE(testing::MakeTestCa(dir, "second")) << "openssl failed";
  const std::string cert = StrCat("--grpc_tls_cert_file=", dir, "/first-server.pem");
  const std::string not_a_ca = StrCat(dir, "/not-a-ca.pem");
  std::ofstream(not_a_ca) << "not a certificate\n";

  auto mismatched = testing::RunHerald(
      {"serve", "--role=api", cert, StrCat("--grpc_tls_key_file=", dir, "/second-server.key")});
  EXPECT_EQ(mismatched.exit_code, 2) << mismatched.err;
  EXPECT_THAT(mismatched.err, ::testing::HasSubstr("--grpc_tls_key_file: cannot load"));

  auto no_ca = testing::RunHerald({"serve", "--role=api", cert,
                                   StrCat("--grpc_tls_key_file=", dir, "/first-server.key"),
                                   StrCat("--grpc_tls_client_ca_file=", not_a_ca)});
  EXPECT_EQ(no_ca.exit_code, 2) << no_ca.err;
  EXPECT_THAT(no_ca.err, ::testing::HasSubstr("--grpc_tls_client_ca_file: cannot load"));
}

// The webhook ingest over HTTPS: answered over TLS only, and a certificate replaced on disk is
// used for new connections without a restart.
TEST(TlsTest, TheIngestServesHttpsOnlyAndPicksUpReplacedCertificates) {
  const std::string dir = testing::MakeTempDir("ingest-tls");
  ASSERT_TRUE(testing::MakeTestCa(dir, "first")) << "openssl failed";
  ASSERT_TRUE(testing::MakeTestCa(dir, "second")) << "openssl failed";
  const std::string cert = StrCat(dir, "/ingest.pem"), key = StrCat(dir, "/ingest.key");
  const auto install = [&](const std::string& ca) {
    std::filesystem::copy_file(StrCat(dir, "/", ca, "-server.pem"), cert + ".new");
    std::filesystem::copy_file(StrCat(dir, "/", ca, "-server.key"), key + ".new");
    std::filesystem::rename(key + ".new", key);
    std::filesystem::rename(cert + ".new", cert);
  };
  install("first");

  auto redis = RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto herald = HeraldProcess::Start(
      {.args = {"serve", "--role=ingest", StrCat("--ingest_tls_cert_file=", cert),
                StrCat("--ingest_tls_key_file=", key), "--tls_reload_interval=1s"},
       .env = {{"HERALD_ENCRYPTION_KEY", std::string(64, 'd')}},
       .redis_port = (*redis)->port()});
  ASSERT_TRUE(herald.ok()) << herald.status();
  const uint16_t port = (*herald)->ingest_port();
  const std::string first_ca = StrCat(dir, "/first-ca.pem");
  const std::string second_ca = StrCat(dir, "/second-ca.pem");

  // Over TLS, an unsigned delivery is refused as over plain HTTP.
  absl::StatusOr<unsigned> answered = HttpsPost(port, first_ca, "/webhooks/nobody.none");
  ASSERT_TRUE(answered.ok()) << answered.status() << (*herald)->Logs();
  EXPECT_EQ(*answered, 401u);
  // Plain HTTP gets no answer; a client trusting another CA does not get in.
  auto plain = testing::HttpRequest(port, "POST", "/webhooks/nobody.none", "{}",
                                    {{"Content-Type", "application/json"}}, absl::Seconds(5));
  EXPECT_FALSE(plain.ok() && plain->status != 0) << plain->status;
  EXPECT_FALSE(HttpsPost(port, second_ca, "/webhooks/nobody.none").ok());

  // The second CA's certificate replaces the first on disk: new connections use it.
  install("second");
  EXPECT_TRUE(testing::WaitFor([&] { return HttpsPost(port, second_ca, "/webhooks/x.y").ok(); },
                               absl::Seconds(20)))
      << (*herald)->Logs();
  EXPECT_FALSE(HttpsPost(port, first_ca, "/webhooks/x.y").ok());
  EXPECT_TRUE((*herald)->process().running());
}

TEST(TlsTest, HeraldReachesRedisOverTlsWithAClientCertificate) {
  const std::string dir = testing::MakeTempDir("redis-tls");
  ASSERT_TRUE(testing::MakeTestCa(dir, "redis")) << "openssl failed";
  const uint16_t tls_port = testing::PickFreePort();
  // Redis requires TLS clients with a certificate of its CA on tls-port (the plain port is the
  // harness's).
  auto redis = RedisServer::Start(
      {.extra = {StrCat("tls-port ", tls_port), StrCat("tls-cert-file ", dir, "/redis-server.pem"),
                 StrCat("tls-key-file ", dir, "/redis-server.key"),
                 StrCat("tls-ca-cert-file ", dir, "/redis-ca.pem"), "tls-auth-clients yes"}});
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto herald = HeraldProcess::Start(
      {.args = {"serve", "--role=api", StrCat("--redis_address=rediss://127.0.0.1:", tls_port),
                StrCat("--redis_tls_ca_file=", dir, "/redis-ca.pem"),
                StrCat("--redis_tls_cert_file=", dir, "/redis-client.pem"),
                StrCat("--redis_tls_key_file=", dir, "/redis-client.key")},
       .env = {{"HERALD_ADMIN_KEY", kAdminKey}, {"HERALD_ENCRYPTION_KEY", std::string(64, 'd')}}});
  ASSERT_TRUE(herald.ok()) << herald.status();  // ready: Redis answered over TLS
  const auto channel =
      grpc::CreateChannel((*herald)->grpc_target(), grpc::InsecureChannelCredentials());
  ASSERT_TRUE(testing::CreateTenant(channel, kAdminKey, "over-tls").ok()) << (*herald)->Logs();
  // The tenant is in that Redis (read back through its plain port).
  EXPECT_EQ((*redis)->Command({"HEXISTS", "hd:{platform}:tenants", "over-tls"}).value_or(""), "1");
}

// Webhooks over TLS end to end: a team registered with Herald's https:// ingest URL gets the
// upstream's events over TLS, the ingest's certificate checked against the CA the simulator is
// told to trust.
TEST(TlsTest, TheUpstreamDeliversWebhooksToAnHttpsIngest) {
  const std::string dir = testing::MakeTempDir("webhooks-tls");
  ASSERT_TRUE(testing::MakeTestCa(dir, "hooks")) << "openssl failed";
  auto stack = testing::HeraldStack::Start(
      {.simulator_args = {"--teams=1", "--accounts_per_team=1", "--fans_per_account=5",
                          "--delivery_rate=2000", "--rate_limit_per_minute=100000"},
       .simulator_env = {{"SSL_CERT_FILE", StrCat(dir, "/hooks-ca.pem")}},
       .herald_args = {StrCat("--ingest_tls_cert_file=", dir, "/hooks-server.pem"),
                       StrCat("--ingest_tls_key_file=", dir, "/hooks-server.key"),
                       "--poll_interval=50ms", "--log_level=warn"},
       .admin_key = kAdminKey,
       .encryption_key = std::string(64, 'd'),
       .register_webhooks = true,
       .webhooks_over_tls = true});
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto key = testing::CreateTenant((*stack)->channel(), kAdminKey, "secure");
  ASSERT_TRUE(key.ok()) << key.status();
  auto team = testing::CreateTeamWithAccounts((*stack)->channel(), *key, "secure");
  ASSERT_TRUE(team.ok()) << team.status();
  EXPECT_TRUE(team->team.webhook_id().starts_with("wh_")) << team->team.webhook_error();

  v1::CreateCampaignRequest req =
      testing::CampaignToFans("secure", team->accounts, "Over TLS", 0, "");
  req.mutable_campaign()->mutable_content()->clear_media();
  v1::Campaign created;
  const grpc::Status s = v1::CampaignService::NewStub((*stack)->channel())
                             ->CreateCampaign(testing::BearerContext(*key).get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // Its messages.sent events reach the ingest over TLS and are applied.
  const auto applied = [&] {
    auto metrics = testing::HttpGet((*stack)->herald().admin_port(), "/metrics");
    return metrics.ok()
               ? testing::SeriesValue(
                     metrics->body,
                     R"(herald_webhook_events_total{result="applied",type="messages.sent"})")
                     .value_or(0)
               : 0.0;
  };
  EXPECT_TRUE(testing::WaitFor([&] { return applied() > 0; }, absl::Seconds(30)))
      << (*stack)->sim().Logs() << (*stack)->herald().Logs();
}

}  // namespace
}  // namespace herald
