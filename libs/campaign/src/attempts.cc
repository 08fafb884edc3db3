#include <algorithm>
#include <optional>
#include <vector>

#include <absl/strings/ascii.h>

#include <herald/campaign/attempts.h>
#include <herald/campaign/workflow.h>
#include <herald/common/strings.h>

namespace herald::campaign {
namespace {

constexpr int kMaxAttempts = 100;

std::string_view TrimSpaces(std::string_view s) {
  return ToStd(absl::StripAsciiWhitespace(ToAbsl(s)));
}

bool KnownKind(std::string_view kind) {
  const std::vector<std::string> kinds = JobKinds();
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

absl::Status BadKind(std::string_view kind) {
  return absl::InvalidArgumentError(
      StrCat("'", kind, "' is not a job kind (one of ", StrJoin(JobKinds(), ", "), ")"));
}

}  // namespace

int AttemptLimits::For(std::string_view kind) const {
  const auto it = by_kind.find(kind);
  return it == by_kind.end() ? all : it->second;
}

absl::StatusOr<std::map<std::string, int, std::less<>>> ParseAttemptLimits(std::string_view spec) {
  std::map<std::string, int, std::less<>> out;
  if (TrimSpaces(spec).empty()) return out;
  for (std::string_view entry : StrSplit(spec, ',')) {
    entry = TrimSpaces(entry);
    const size_t equals = entry.find('=');
    if (equals == std::string_view::npos) {
      return absl::InvalidArgumentError(
          StrCat("'", entry, "': expected kind=attempts, e.g. delivery_poll=10"));
    }
    const std::string_view kind = TrimSpaces(entry.substr(0, equals));
    if (!KnownKind(kind)) return BadKind(kind);
    const std::optional<int> attempts = ParseInt<int>(TrimSpaces(entry.substr(equals + 1)));
    if (!attempts || *attempts < 1 || *attempts > kMaxAttempts) {
      return absl::InvalidArgumentError(
          StrCat("'", entry, "': attempts must be in [1, ", kMaxAttempts, "]"));
    }
    if (!out.emplace(kind, *attempts).second) {
      return absl::InvalidArgumentError(StrCat("'", kind, "' is named twice"));
    }
  }
  return out;
}

absl::Status ValidateKindLimits(const AttemptLimits& limits) {
  for (const auto& [kind, attempts] : limits.by_kind) {
    if (!KnownKind(kind)) return BadKind(kind);
    if (attempts < 1 || attempts > kMaxAttempts) {
      return absl::InvalidArgumentError(
          StrCat("'", kind, "': must be in [1, ", kMaxAttempts, "] (got ", attempts, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace herald::campaign
