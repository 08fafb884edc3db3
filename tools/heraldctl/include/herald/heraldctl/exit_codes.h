// Exit codes heraldctl promises to scripts. Documented in README.md and `heraldctl --help`;
// never renumbered.
#pragma once

#include <string_view>

#include <absl/status/status.h>

namespace herald::heraldctl {

enum ExitCode : int {
  kExitOk = 0,
  // The RPC failed for a reason not listed below (INTERNAL, UNKNOWN, UNIMPLEMENTED, ...).
  kExitRpcError = 1,
  // The command line or an input file is wrong; nothing was sent.
  kExitUsage = 2,
  // The campaign did not end as asked: `campaigns watch`, it ended in a final state other than
  // COMPLETED; `campaigns cancel`, it is cancelled but some accounts' messages could not be
  // undone on the upstream.
  kExitCampaignOutcome = 3,
  // NOT_FOUND.
  kExitNotFound = 4,
  // ALREADY_EXISTS.
  kExitAlreadyExists = 5,
  // The server refused the request as it stands: INVALID_ARGUMENT, FAILED_PRECONDITION,
  // OUT_OF_RANGE, or RESOURCE_EXHAUSTED without a retry delay (a size limit). Retrying the same
  // request will not help.
  kExitRejected = 6,
  // UNAUTHENTICATED or PERMISSION_DENIED: check --key / HERALD_API_KEY.
  kExitAuth = 7,
  // UNAVAILABLE, DEADLINE_EXCEEDED or CANCELLED: the server could not be reached or did not
  // answer in time; ABORTED: the request met a concurrent change; RESOURCE_EXHAUSTED with a
  // retry delay: a quota or limit that frees up. A retry may succeed.
  kExitUnavailable = 8,
};

// The exit code for an RPC that ended with `status` (kExitOk for OK); its retry delay
// (RetryDelayOf) tells a RESOURCE_EXHAUSTED that passes from one that does not.
ExitCode ExitCodeFor(const absl::Status& status);

// The exit-code table, as printed by --help.
std::string_view ExitCodeHelp();

}  // namespace herald::heraldctl
