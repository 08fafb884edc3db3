// The api role's gRPC server: registered services plus grpc.health.v1 and server reflection,
// in plain text or over TLS (optionally requiring client certificates: mTLS), the certificate
// files re-read while it runs.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>

#include <herald/common/config.h>

#include "component.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc
namespace herald::api {
class Api;
}  // namespace herald::api
namespace herald::metrics {
class Readiness;
}  // namespace herald::metrics

namespace herald::serve {

// TLS of the gRPC server. Empty cert_file: plain text.
struct GrpcTls {
  std::string cert_file;       // PEM certificate chain
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM CAs; when set, clients must present a certificate they sign
  // How often the files are read again: replaced certificates (a renewal, a rotated CA) are
  // used for new connections without a restart.
  absl::Duration reload_interval = absl::Seconds(60);
};

// Checks that the files are given together, readable, and load: the certificate with its key,
// the CAs as certificates. Errors name the flag.
absl::Status ValidateGrpcTls(const GrpcTls& tls);

// How the gRPC server keeps its connections.
struct GrpcConnections {
  // An idle connection is pinged this often, and closed when a ping is not answered within
  // keepalive_timeout: a client that vanished (a dropped NAT entry, a killed pod) frees its
  // streams' slots in minutes, not gRPC's default two hours.
  absl::Duration keepalive_time = absl::Minutes(1);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // A connection older than this is asked to reconnect (GOAWAY), so clients spread over api
  // replicas added since they connected; its calls still running after the grace are
  // cancelled (streams end UNAVAILABLE and clients resume). Infinite: never.
  absl::Duration max_connection_age = absl::InfiniteDuration();
  absl::Duration max_connection_age_grace = absl::Minutes(1);
};

// Checks the durations; errors name the flag.
absl::Status ValidateGrpcConnections(const GrpcConnections& connections);

class GrpcComponent final : public Component {
 public:
  // Serves `api`'s services, whose work runs on `executor`; `api` must outlive the component.
  // With `readiness` (which must outlive it too), grpc.health.v1 answers SERVING only while the
  // process is ready, as /readyz does; without, from the start until the drain.
  GrpcComponent(config::HostPort address, api::Api& api, boost::asio::any_io_executor executor,
                GrpcTls tls = {}, GrpcConnections connections = {},
                metrics::Readiness* readiness = nullptr);
  ~GrpcComponent() override;

  std::string_view name() const override { return "grpc"; }

  absl::Status Start() override;

  // Health turns NOT_SERVING (and no longer follows readiness), the API refuses new calls and
  // ends its streams, the server stops
  // accepting calls, running calls get until the deadline to finish and are cancelled after it;
  // returns once every call's work has ended (the API's Close()).
  void Drain(absl::Time deadline) override;

  // The bound port (the chosen one when configured with port 0). Valid after Start().
  int port() const { return port_; }

 private:
  const config::HostPort address_;
  api::Api& api_;
  const boost::asio::any_io_executor executor_;
  const GrpcTls tls_;
  const GrpcConnections connections_;
  metrics::Readiness* const readiness_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace herald::serve
