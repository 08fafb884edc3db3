// A retry delay on an absl::Status, as the standard google.rpc.RetryInfo detail: set with
// WithRetryInfo inside Herald, carried over gRPC by ToGrpcStatus and FromGrpcStatus
// (grpc_status.h) in the grpc-status-details-bin trailer gRPC clients read.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <absl/status/status.h>
#include <absl/time/time.h>

namespace herald {

// `status` saying to retry after `delay` (a quota, a limit, a server going away).
absl::Status WithRetryInfo(absl::Status status, absl::Duration delay);
// The delay WithRetryInfo (or a peer's RetryInfo detail, through FromGrpcStatus) gave `status`;
// nullopt when none.
std::optional<absl::Duration> RetryDelayOf(const absl::Status& status);

// The google.rpc.Status details (code, message, the RetryInfo) of a status with a retry delay;
// nullopt without one.
std::optional<std::string> RetryInfoDetails(const absl::Status& status);
// Sets on `status` the RetryInfo found in google.rpc.Status `details`, if any.
void AddRetryInfoFromDetails(std::string_view details, absl::Status& status);

}  // namespace herald
