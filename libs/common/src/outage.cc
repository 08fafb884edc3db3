#include <herald/common/log.h>
#include <herald/common/outage.h>

namespace herald::log {

Outage::Outage(std::string dependency, std::string what, absl::Duration summary_every,
               const Clock* clock)
    : dependency_(std::move(dependency)),
      what_(std::move(what)),
      summary_every_(summary_every),
      clock_(clock != nullptr ? *clock : SystemClock::Get()) {}

void Outage::Failed(const absl::Status& status) {
  std::unique_lock<std::mutex> lock(mu_);
  const absl::Time now = clock_.Now();
  ++failures_;
  ++failures_since_line_;
  ok_since_failure_ = false;
  if (!down_) {
    down_ = true;
    since_ = now;
    last_line_ = now;
    failures_since_line_ = 0;
    lock.unlock();
    Warn(dependency_ + " unavailable", {{"what", what_}, {"reason", status}});
    return;
  }
  if (now - last_line_ < summary_every_) return;
  const absl::Duration down_for = now - since_;
  const int64_t failures = failures_since_line_;
  last_line_ = now;
  failures_since_line_ = 0;
  lock.unlock();
  Warn(dependency_ + " still unavailable",
       {{"what", what_}, {"for", down_for}, {"failures", failures}, {"reason", status}});
}

void Outage::Succeeded() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!down_) return;
  const absl::Time now = clock_.Now();
  if (!ok_since_failure_) {
    ok_since_failure_ = true;
    first_ok_ = now;
  }
  if (now - since_ < kSettle) return;  // perhaps a straggler: wait for the next
  down_ = false;
  const absl::Duration down_for = first_ok_ - since_;
  const int64_t failures = failures_;
  failures_ = 0;
  failures_since_line_ = 0;
  lock.unlock();
  Info(dependency_ + " recovered", {{"what", what_}, {"after", down_for}, {"failures", failures}});
}

bool Outage::down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return down_;
}

}  // namespace herald::log
