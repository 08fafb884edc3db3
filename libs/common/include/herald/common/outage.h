// Quiet, legible logs of a dependency that fails: one line when it goes down, a summary at most
// every `summary_every` while it stays down, one line when it is back.
//
//   log::Outage leases("redis", "queue leases");
//   if (!batch.ok()) leases.Failed(batch.status()); else leases.Succeeded();
//
// A worker that cannot reach Redis tries many times a second (every shard, every loop); without
// this each try would log a warning. The counts of every failure go to metrics; the log tells a
// person when it started, how it goes, and when it ended:
//
//   warn  redis unavailable        what=queue leases reason=UNAVAILABLE: ... connection refused
//   warn  redis still unavailable  what=queue leases for=30s failures=2875 reason=...
//   info  redis recovered          what=queue leases after=41.2s failures=3930
//
// A success within a second of the outage's start does not end it: when a server goes away its
// connections close one after the other, and a call answered on one still open would otherwise
// log a recovery between two "unavailable" lines. The outage ends at the first success from
// then on with no failure after it; `after` counts to that success.
//
// Thread-safe. Failed() and Succeeded() are cheap when nothing changes (a mutex and a compare).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include <absl/status/status.h>
#include <absl/time/time.h>

#include <herald/common/clock.h>

namespace herald::log {

class Outage {
 public:
  // `dependency`: what failed ("redis", "upstream"); `what`: the work it failed for. `clock`
  // (default: the system's) must outlive the object.
  Outage(std::string dependency, std::string what, absl::Duration summary_every = absl::Seconds(30),
         const Clock* clock = nullptr);

  Outage(const Outage&) = delete;
  Outage& operator=(const Outage&) = delete;

  // A call to the dependency failed with `status` (transient: the caller retries).
  void Failed(const absl::Status& status);
  // A call to the dependency succeeded.
  void Succeeded();

  // How long after an outage starts a success is taken for a straggler.
  static constexpr absl::Duration kSettle = absl::Seconds(1);

  bool down() const;

 private:
  const std::string dependency_;
  const std::string what_;
  const absl::Duration summary_every_;
  const Clock& clock_;

  mutable std::mutex mu_;
  bool down_ = false;                // guarded by mu_
  absl::Time since_;                 // when it went down; guarded by mu_
  absl::Time first_ok_;              // first success since the last failure; guarded by mu_
  bool ok_since_failure_ = false;    // guarded by mu_
  absl::Time last_line_;             // guarded by mu_
  int64_t failures_ = 0;             // since it went down; guarded by mu_
  int64_t failures_since_line_ = 0;  // guarded by mu_
};

}  // namespace herald::log
