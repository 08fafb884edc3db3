#include "grpc_component.h"

#include <algorithm>
#include <fstream>
#include <future>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <herald/api/api.h>
#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/metrics/readiness.h>

#include "tls_files.h"

namespace herald::serve {

namespace {

// A channel argument's milliseconds (gRPC takes an int), capped at a day.
int Millis(absl::Duration d) {
  return static_cast<int>(absl::ToInt64Milliseconds(std::min(d, absl::Hours(24))));
}

absl::Status Readable(std::string_view flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(StrCat("--", flag, ": cannot read '", path, "'"));
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> Credentials(const GrpcTls& tls) {
  if (tls.cert_file.empty()) return grpc::InsecureServerCredentials();
  namespace tls_api = grpc::experimental;
  const auto every =
      static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(tls.reload_interval)));
  auto provider = std::make_shared<tls_api::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file, every);
  tls_api::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.client_ca_file.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return tls_api::TlsServerCredentials(options);
}

}  // namespace

absl::Status ValidateGrpcTls(const GrpcTls& tls) {
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError("--grpc_tls_cert_file and --grpc_tls_key_file go together");
  }
  if (tls.cert_file.empty()) {
    if (!tls.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--grpc_tls_client_ca_file needs --grpc_tls_cert_file and --grpc_tls_key_file");
    }
    return absl::OkStatus();
  }
  if (tls.reload_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--tls_reload_interval must be at least 1s");
  }
  if (absl::Status s = Readable("grpc_tls_cert_file", tls.cert_file); !s.ok()) return s;
  if (absl::Status s = Readable("grpc_tls_key_file", tls.key_file); !s.ok()) return s;
  // gRPC reads the files only at a handshake: a certificate that does not load, or a key that
  // does not match it, would start a server that refuses every connection and still reports
  // ready. They are loaded here, as the ingest's are.
  if (absl::Status s =
          TlsFiles::Load("grpc_tls", tls.cert_file, tls.key_file, tls.reload_interval).status();
      !s.ok()) {
    return s;
  }
  if (tls.client_ca_file.empty()) return absl::OkStatus();
  if (absl::Status s = Readable("grpc_tls_client_ca_file", tls.client_ca_file); !s.ok()) return s;
  return CheckCaFile("grpc_tls_client_ca_file", tls.client_ca_file);
}

absl::Status ValidateGrpcConnections(const GrpcConnections& connections) {
  const std::pair<std::string_view, absl::Duration> at_least_a_second[] = {
      {"grpc_keepalive_time", connections.keepalive_time},
      {"grpc_max_connection_age", connections.max_connection_age},
      {"grpc_max_connection_age_grace", connections.max_connection_age_grace}};
  for (const auto& [flag, value] : at_least_a_second) {
    if (value < absl::Seconds(1)) {
      return absl::InvalidArgumentError(StrCat("--", flag, " must be at least 1s"));
    }
  }
  return absl::OkStatus();
}

GrpcComponent::GrpcComponent(config::HostPort address, api::Api& api,
                             boost::asio::any_io_executor executor, GrpcTls tls,
                             GrpcConnections connections, metrics::Readiness* readiness)
    : address_(std::move(address)),
      api_(api),
      executor_(std::move(executor)),
      tls_(std::move(tls)),
      connections_(connections),
      readiness_(readiness) {}

GrpcComponent::~GrpcComponent() {
  if (server_) {
    if (readiness_ != nullptr) readiness_->Watch(nullptr);
    server_->Shutdown();
    server_->Wait();
  }
}

absl::Status GrpcComponent::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = address_.ToString();
  // Without this, gRPC binds with SO_REUSEPORT and a second server would silently share the port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(connections_.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(connections_.keepalive_timeout));
  // Clients may ping as often as every 10 s, with or without calls, without being told
  // "too many pings" (gRPC's default: one every 5 min, and only during calls).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  if (connections_.max_connection_age != absl::InfiniteDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               Millis(connections_.max_connection_age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               Millis(connections_.max_connection_age_grace));
  }
  // About gRPC's default, stated: a request is read whole before any handler or key check sees
  // it, so this bounds what an unauthenticated caller makes the server hold per call. Uploads
  // come in chunks of up to 4 MiB (media.proto); the KiB is their message's framing.
  builder.SetMaxReceiveMessageSize((4 << 20) + 1024);
  builder.AddListeningPort(address, Credentials(tls_), &port_);
  for (grpc::Service* service : api_.services()) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(StrCat("gRPC server: cannot listen on ", address));
  }
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  // Each service by name as well as the server as a whole (""): the one-argument calls below
  // set every name registered here.
  for (const std::string& name : api_.service_names()) health->SetServingStatus(name, false);
  if (readiness_ != nullptr) {
    readiness_->Watch([health](bool ready) { health->SetServingStatus(ready); });
  } else {
    health->SetServingStatus(true);
  }
  const std::string_view security = tls_.cert_file.empty()        ? "plaintext"
                                    : tls_.client_ca_file.empty() ? "tls"
                                                                  : "mtls";
  log::Info("gRPC server listening",
            {{"address", address_.host}, {"port", port_}, {"security", security}});
  return absl::OkStatus();
}

void GrpcComponent::Drain(absl::Time deadline) {
  if (!server_) return;
  if (readiness_ != nullptr) readiness_->Watch(nullptr);
  server_->GetHealthCheckService()->SetServingStatus(false);
  // The API refuses new calls and ends its streams from now on; `closed` completes when the last
  // call's work has ended. Calls still running are cut a little before gRPC's deadline, which
  // drops the connections, so that their answer (what the cut means) reaches the clients.
  const absl::Duration margin = std::min(absl::Seconds(1), (deadline - absl::Now()) / 5);
  std::future<void> closed =
      boost::asio::co_spawn(executor_, api_.Close(deadline - margin), boost::asio::use_future);
  server_->Shutdown(absl::ToChronoTime(deadline));
  server_->Wait();
  server_.reset();
  if (closed.wait_until(absl::ToChronoTime(deadline)) != std::future_status::ready) {
    // gRPC has cancelled these calls and the API their work, which ends as its Redis and
    // upstream calls see the cancellation (or time out); nothing it uses is destroyed before.
    log::Warn("API calls still running at the drain deadline; waiting for them to end");
    closed.wait();
  }
}

}  // namespace herald::serve
