// Conversion between absl::Status (used everywhere inside Herald) and grpc::Status (used only
// at the RPC edge). The canonical codes are the same numbers in both; messages carry over.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/support/status.h>

namespace herald {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace herald
