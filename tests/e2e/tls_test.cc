// The gRPC API over TLS with client certificates (mTLS), with a throw-away CA made by the test
// (openssl): trusted clients get in, plain-text clients, clients without a certificate and
// clients of another CA do not; certificates replaced on disk (a rotated CA) are used for new
// connections without a restart.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/herald_api.h>
#include <herald/testing/herald_process.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/subprocess.h>
#include <herald/testing/wait.h>
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

// A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, all signed by
// that CA, as PEM files named <name>-ca.pem, <name>-server.{pem,key}, <name>-client.{pem,key}.
bool MakeCa(const std::string& dir, const std::string& name) {
  const std::string p = StrCat(dir, "/", name);
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script = StrCat(
      "set -e; cd '", dir, "';", "openssl req -x509 ", key, " -keyout ", p, "-ca.key -out ", p,
      "-ca.pem -days 1 -subj /CN=", name, "-ca;", "openssl req ", key, " -keyout ", p,
      "-server.key -out ", p, "-server.csr -subj /CN=localhost;",
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > ", p, "-san.ext;",
      "openssl x509 -req -in ", p, "-server.csr -CA ", p, "-ca.pem -CAkey ", p,
      "-ca.key -CAcreateserial -out ", p, "-server.pem -days 1 -extfile ", p, "-san.ext;",
      "openssl req ", key, " -keyout ", p, "-client.key -out ", p,
      "-client.csr -subj /CN=agency-service;", "openssl x509 -req -in ", p, "-client.csr -CA ", p,
      "-ca.pem -CAkey ", p, "-ca.key -CAcreateserial -out ", p, "-client.pem -days 1");
  const std::string command = StrCat("bash -c \"", script, "\" >/dev/null 2>&1");
  return std::system(command.c_str()) == 0;
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
  ASSERT_TRUE(MakeCa(dir, "first")) << "openssl failed";
  ASSERT_TRUE(MakeCa(dir, "second")) << "openssl failed";
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

}  // namespace
}  // namespace herald
