#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>
#include <herald/metrics/readiness.h>

namespace herald::metrics {

Readiness::Readiness(Registry* registry)
    : gauge_(registry == nullptr
                 ? nullptr
                 : &BuildGauge()
                        .Name("herald_ready")
                        .Help("Whether a component of the process is ready (1) or not (0); the "
                              "process is ready when all are.")
                        .LabelNames({"component"})
                        .Register(*registry)) {}

void Readiness::Set(std::string_view component, absl::Status status) {
  std::lock_guard lock(mu_);
  if (gauge_ != nullptr) gauge_->Add({{"component", std::string(component)}}).Set(status.ok());
  auto it = components_.find(component);
  if (it == components_.end()) {
    components_.emplace(std::string(component), std::move(status));
  } else {
    it->second = std::move(status);
  }
  if (watcher_ && ReadyLocked() != reported_) {
    reported_ = !reported_;
    watcher_(reported_);
  }
}

bool Readiness::Ready() const {
  std::lock_guard lock(mu_);
  return ReadyLocked();
}

bool Readiness::ReadyLocked() const {
  for (const auto& [name, status] : components_) {
    if (!status.ok()) return false;
  }
  return true;
}

void Readiness::Watch(std::function<void(bool ready)> watcher) {
  std::lock_guard lock(mu_);
  watcher_ = std::move(watcher);
  if (watcher_) {
    reported_ = ReadyLocked();
    watcher_(reported_);
  }
}

std::string Readiness::Report() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, status] : components_) {
    StrAppend(&out, name, ": ", status.ok() ? "ok" : status.message(), "\n");
  }
  return out;
}

Liveness::Liveness(absl::Duration stall, Clock now) : stall_(stall), now_(std::move(now)) {}

void Liveness::Beat(std::string_view loop) {
  const auto now = now_();
  std::lock_guard lock(mu_);
  auto it = beats_.find(loop);
  if (it == beats_.end()) {
    beats_.emplace(std::string(loop), now);
  } else {
    it->second = now;
  }
}

std::string Liveness::Report() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [loop, beat] : beats_) StrAppend(&out, loop, ": ok\n");
  return out;
}

absl::Status Liveness::Check() const {
  const auto now = now_();
  std::string stalled;
  std::lock_guard lock(mu_);
  for (const auto& [loop, beat] : beats_) {
    const absl::Duration silent = absl::FromChrono(now - beat);
    if (silent <= stall_) continue;
    StrAppend(&stalled, stalled.empty() ? "" : "; ", loop, " has not run for ",
              absl::FormatDuration(absl::Trunc(silent, absl::Milliseconds(1))));
  }
  if (stalled.empty()) return absl::OkStatus();
  return absl::UnavailableError(
      StrCat(stalled, " (stalled past ", absl::FormatDuration(stall_), ")"));
}

}  // namespace herald::metrics
