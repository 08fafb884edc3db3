#include <herald/common/strings.h>
#include <herald/metrics/readiness.h>

namespace herald::metrics {

void Readiness::Set(std::string_view component, absl::Status status) {
  std::lock_guard lock(mu_);
  auto it = components_.find(component);
  if (it == components_.end()) {
    components_.emplace(std::string(component), std::move(status));
  } else {
    it->second = std::move(status);
  }
}

bool Readiness::Ready() const {
  std::lock_guard lock(mu_);
  for (const auto& [name, status] : components_) {
    if (!status.ok()) return false;
  }
  return true;
}

std::string Readiness::Report() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, status] : components_) {
    StrAppend(&out, name, ": ", status.ok() ? "ok" : status.message(), "\n");
  }
  return out;
}

}  // namespace herald::metrics
