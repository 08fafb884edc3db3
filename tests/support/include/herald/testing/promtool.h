// Runs Prometheus' own checker over exposition text.
#pragma once

#include <string>

#include <absl/status/status.h>

namespace herald::testing {

// `promtool check metrics` on `exposition`: OK when promtool accepts it, otherwise an error
// carrying promtool's output.
absl::Status PromtoolCheckMetrics(const std::string& exposition);

}  // namespace herald::testing
