// How many times each kind of job is tried before it is dead-lettered.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>

namespace herald::campaign {

// `all` for every job kind, except the kinds `by_kind` names (JobKinds() spells them, as the
// queue metrics' `kind` label does). Each limit is 1..100.
struct AttemptLimits {
  int all = 6;
  std::map<std::string, int, std::less<>> by_kind;

  int For(std::string_view kind) const;
};

// Parses "kind=N,kind=N" into AttemptLimits::by_kind: each kind one of JobKinds() at most once,
// each N in 1..100. "" names none.
absl::StatusOr<std::map<std::string, int, std::less<>>> ParseAttemptLimits(std::string_view spec);

// OK when every kind of `limits.by_kind` is known and its limit in range; the error names the
// bad entry. (`all` is checked as its own setting.)
absl::Status ValidateKindLimits(const AttemptLimits& limits);

}  // namespace herald::campaign
