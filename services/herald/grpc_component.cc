#include "grpc_component.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <herald/common/log.h>
#include <herald/common/strings.h>

namespace herald::serve {

GrpcComponent::GrpcComponent(config::HostPort address, std::vector<grpc::Service*> services)
    : address_(std::move(address)), services_(std::move(services)) {}

GrpcComponent::~GrpcComponent() {
  if (server_) {
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
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
  for (grpc::Service* service : services_) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(StrCat("gRPC server: cannot listen on ", address));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  log::Info("gRPC server listening", {{"address", address_.host}, {"port", port_}});
  return absl::OkStatus();
}

void GrpcComponent::Drain(absl::Time deadline) {
  if (!server_) return;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(absl::ToChronoTime(deadline));
  server_->Wait();
  server_.reset();
}

}  // namespace herald::serve
