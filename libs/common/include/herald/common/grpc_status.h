// Conversion between absl::Status (used everywhere inside Herald) and grpc::Status (used only
// at the RPC edge). The canonical codes are the same numbers in both; messages carry over, and
// so does a retry delay (retry_info.h), as the standard google.rpc.RetryInfo detail that gRPC
// clients read from the grpc-status-details-bin trailer.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/support/status.h>

#include <herald/common/retry_info.h>

namespace herald {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace herald
