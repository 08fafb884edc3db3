#include <absl/strings/cord.h>

#include <herald/common/strings.h>
#include <herald/upstream/error.h>

namespace herald::upstream {
namespace {

// The payload is a few "key=value" lines; the message stays in the status itself.
constexpr std::string_view kPayloadUrl = "type.herald/herald.upstream.UpstreamError";

}  // namespace

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kRetryable:
      return "retryable";
    case ErrorKind::kRateLimited:
      return "rate_limited";
    case ErrorKind::kOutOfCredits:
      return "out_of_credits";
    case ErrorKind::kUnauthorized:
      return "unauthorized";
    case ErrorKind::kTerminal:
      return "terminal";
    case ErrorKind::kUnknownOutcome:
      return "unknown_outcome";
  }
  return "terminal";
}

namespace {

void SetUpstreamPayload(absl::Status& status, const UpstreamError& error) {
  std::string code_text;
  for (char c : error.code) code_text.push_back(c == '\n' ? ' ' : c);
  std::string text = StrCat("kind=", static_cast<int>(error.kind), "\nhttp=", error.http_status,
                            "\nretry_after_ms=", absl::ToInt64Milliseconds(error.retry_after),
                            "\nwritten=", error.request_written ? 1 : 0, "\ncode=", code_text);
  if (error.asked_at != absl::InfinitePast()) {
    text += StrCat("\nasked_ms=", absl::ToUnixMillis(error.asked_at));
  }
  if (!error.key_id.empty()) {
    text += "\nkey_id=";
    for (char c : error.key_id) text.push_back(c == '\n' ? ' ' : c);
  }
  status.SetPayload(ToAbsl(kPayloadUrl), absl::Cord(std::move(text)));
}

}  // namespace

absl::Status MakeUpstreamStatus(absl::StatusCode code, std::string_view message,
                                const UpstreamError& error) {
  absl::Status status(code, ToAbsl(message));
  SetUpstreamPayload(status, error);
  return status;
}

absl::Status StampCall(absl::Status status, absl::Time asked_at, std::string_view key_id) {
  std::optional<UpstreamError> error = GetUpstreamError(status);
  if (!error) return status;
  error->asked_at = asked_at;
  error->key_id = std::string(key_id);
  SetUpstreamPayload(status, *error);
  return status;
}

bool IsTransient(const std::optional<UpstreamError>& error) {
  return !error || error->kind == ErrorKind::kRetryable ||
         error->kind == ErrorKind::kUnknownOutcome;
}

bool IsNotFoundInAccount(const std::optional<UpstreamError>& error) {
  return error && error->http_status == 404 && !IsAccountNotFound(error);
}

bool IsAccountNotFound(const std::optional<UpstreamError>& error) {
  return error && error->http_status == 404 && error->code == "account_not_found";
}

std::optional<UpstreamError> GetUpstreamError(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  const auto payload = status.GetPayload(ToAbsl(kPayloadUrl));
  if (!payload.has_value()) return std::nullopt;
  const std::string text(*payload);
  UpstreamError error;
  for (std::string_view line : StrSplit(text, '\n')) {
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, eq);
    const std::string_view value = line.substr(eq + 1);
    if (key == "kind") {
      const int kind = ParseInt<int>(value).value_or(static_cast<int>(ErrorKind::kTerminal));
      if (kind >= 0 && kind <= static_cast<int>(ErrorKind::kUnknownOutcome)) {
        error.kind = static_cast<ErrorKind>(kind);
      }
    } else if (key == "http") {
      error.http_status = ParseInt<int>(value).value_or(0);
    } else if (key == "retry_after_ms") {
      error.retry_after = absl::Milliseconds(ParseInt<int64_t>(value).value_or(0));
    } else if (key == "written") {
      error.request_written = value == "1";
    } else if (key == "code") {
      error.code = std::string(value);
    } else if (key == "asked_ms") {
      if (auto ms = ParseInt<int64_t>(value)) error.asked_at = absl::FromUnixMillis(*ms);
    } else if (key == "key_id") {
      error.key_id = std::string(value);
    }
  }
  return error;
}

}  // namespace herald::upstream
