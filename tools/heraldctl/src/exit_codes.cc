#include <herald/common/retry_info.h>
#include <herald/heraldctl/exit_codes.h>

namespace herald::heraldctl {

ExitCode ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kAlreadyExists:
      return kExitAlreadyExists;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return kExitRejected;
    case absl::StatusCode::kResourceExhausted:
      return RetryDelayOf(status).has_value() ? kExitUnavailable : kExitRejected;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kExitAuth;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
      return kExitUnavailable;
    default:
      return kExitRpcError;
  }
}

std::string_view ExitCodeHelp() {
  return R"(Exit codes:
  0  success
  1  the RPC failed (INTERNAL, UNKNOWN, UNIMPLEMENTED, ...), a watch ended before the
     campaign was final, or the output could not be written
  2  usage error: bad command line or input file; nothing was sent
  3  campaigns watch: the campaign ended in a final state other than COMPLETED;
     campaigns cancel: cancelled, but some accounts' messages could not be undone
  4  NOT_FOUND
  5  ALREADY_EXISTS
  6  rejected by the server: INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE,
     RESOURCE_EXHAUSTED without a retry delay (e.g. a file over the size limit)
  7  UNAUTHENTICATED or PERMISSION_DENIED (check --key / HERALD_API_KEY)
  8  UNAVAILABLE, DEADLINE_EXCEEDED or CANCELLED: the server was not reached or did not
     answer in time; ABORTED: the request met a concurrent change; RESOURCE_EXHAUSTED with
     a retry delay (a quota or limit; the message says when). A retry may succeed
)";
}

}  // namespace herald::heraldctl
