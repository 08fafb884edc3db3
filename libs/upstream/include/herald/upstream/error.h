// How a failed upstream call is classified.
//
// Every error returned by herald::upstream (HttpClient::Send and every typed Client call) is an
// absl::Status whose payload carries an UpstreamError: what kind of failure it was and therefore
// what the caller may do next. The absl code is chosen to be the most specific one; the kind is
// what retry logic should look at.
//
//   kind              when                                              absl code
//   ----------------  ------------------------------------------------  ----------------------
//   kRetryable        connect/DNS failure, reset or failure before the  kUnavailable
//                     request was fully written, HTTP 5xx and 408,
//                     no pooled connection free before the deadline     kDeadlineExceeded
//                     timeout or cancellation before the request was    kDeadlineExceeded,
//                     fully written                                     kCancelled
//   kRateLimited      HTTP 429; UpstreamError::retry_after from the     kResourceExhausted
//                     Retry-After header (whole seconds), or the
//                     configured default when absent
//   kOutOfCredits     HTTP 402; retrying is useless until the team's    kFailedPrecondition
//                     credits are topped up
//   kUnauthorized     HTTP 401 (missing or revoked API key)             kUnauthenticated
//   kTerminal         HTTP 400 and 422 (validation)                     kInvalidArgument
//                     HTTP 404                                          kNotFound
//                     HTTP 403                                          kPermissionDenied
//                     other 4xx, 3xx (redirects are not followed),      kFailedPrecondition
//                     TLS certificate verification failure,
//                     a next-page link to another origin
//                     a request Herald refuses to send (bad input)      kInvalidArgument
//   kUnknownOutcome   the request was fully written, then: timeout,     kDeadlineExceeded,
//                     cancellation, connection reset or closed,         kCancelled,
//                     truncated, oversized or malformed response, a     kUnknown
//                     2xx body that does not match the contract, or
//                     HTTP 502/504 to a POST, PUT or DELETE (a gateway
//                     lost the answer of a request the API server may
//                     have executed; to a GET they are kRetryable)
//
// kUnknownOutcome means the upstream may have acted on the request. A mutating call (a mass
// message send) with that outcome must be reconciled against the upstream before it is retried;
// a read may simply be retried. Herald never re-sends a written request by itself.
//
// For HTTP errors the status message quotes the upstream's own message (JSON `error` or
// `message`) and UpstreamError::code carries its machine `code` when present.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <absl/status/status.h>
#include <absl/time/time.h>

namespace herald::upstream {

enum class ErrorKind {
  kRetryable,
  kRateLimited,
  kOutOfCredits,
  kUnauthorized,
  kTerminal,
  kUnknownOutcome,
};

// "retryable", "rate_limited", "out_of_credits", "unauthorized", "terminal", "unknown_outcome".
std::string_view ErrorKindName(ErrorKind kind);

struct UpstreamError {
  ErrorKind kind = ErrorKind::kTerminal;
  int http_status = 0;           // 0 when no HTTP response was received
  std::string code;              // the upstream's machine-readable `code`, if any
  absl::Duration retry_after;    // kRateLimited only: how long to hold off
  bool request_written = false;  // the whole request reached the socket
  // Stamped by typed Client calls: when the failed call was made, on the wall clock
  // (InfinitePast: not known), and ClientConfig::key_id of the key it was made with (empty: not
  // known). A refusal (401, 402) of a call made before its team was last resumed, or with
  // a key the team no longer has, speaks of what the operator has since fixed.
  absl::Time asked_at = absl::InfinitePast();
  std::string key_id;
};

// A status with `code` and `message` carrying `error` as its payload. `code` must not be kOk.
absl::Status MakeUpstreamStatus(absl::StatusCode code, std::string_view message,
                                const UpstreamError& error);

// `status` with the UpstreamError it carries stamped with `asked_at` and `key_id`; any other
// status as it is.
absl::Status StampCall(absl::Status status, absl::Time asked_at, std::string_view key_id);

// The classification attached by MakeUpstreamStatus; nullopt for OK and for statuses that did
// not come from herald::upstream.
std::optional<UpstreamError> GetUpstreamError(const absl::Status& status);

// Whether a failed call may succeed if made again as it is: a connection failure or 5xx
// (kRetryable), an unknown outcome, or a failure that did not come from herald::upstream (none:
// a local one). Not a rate limit, missing credits, a refused key or a terminal error.
bool IsTransient(const std::optional<UpstreamError>& error);

// Whether a call was answered 404 about what it named in the account (a mass message, a list),
// rather than about the account itself, which the upstream answers with 404
// `account_not_found` (an account it does not know, or that another team's key holds).
bool IsNotFoundInAccount(const std::optional<UpstreamError>& error);
// Whether a call was answered 404 `account_not_found`.
bool IsAccountNotFound(const std::optional<UpstreamError>& error);

}  // namespace herald::upstream
