// The api role's gRPC server: registered services plus grpc.health.v1 and server reflection.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include <herald/common/config.h>

#include "component.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace herald::serve {

class GrpcComponent final : public Component {
 public:
  // `services` must outlive the component.
  GrpcComponent(config::HostPort address, std::vector<grpc::Service*> services);
  ~GrpcComponent() override;

  std::string_view name() const override { return "grpc"; }

  absl::Status Start() override;

  // Health turns NOT_SERVING, the server stops accepting calls, running calls get until the
  // deadline to finish and are cancelled after it.
  void Drain(absl::Time deadline) override;

  // The bound port (the chosen one when configured with port 0). Valid after Start().
  int port() const { return port_; }

 private:
  const config::HostPort address_;
  const std::vector<grpc::Service*> services_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace herald::serve
