// The "scripts" component of /readyz: ready once Redis has run one of Herald's scripts for this
// process.
//
// Herald sends every script by its digest and loads it where Redis lacks it (after a restart,
// a failover or SCRIPT FLUSH), so nothing needs loading ahead of time. What can still stop
// scripts is the server: a Redis user without +@scripting, EVALSHA renamed away. A process
// facing such a server can store nothing, and says so here rather than at its first request.
// A probe script runs at start, whenever Redis (re)connects, and every `interval`. A probe that
// fails because Redis is unreachable or busy changes nothing: the "redis" component says so.
#pragma once

#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <herald/common/clock.h>
#include <herald/common/periodic.h>
#include <herald/metrics/readiness.h>
#include <herald/redis/client.h>

namespace herald::serve {

class ScriptsReadiness {
 public:
  // `redis` and `readiness` must outlive the loop (until Close() has completed).
  ScriptsReadiness(boost::asio::any_io_executor executor, redis::Client& redis,
                   metrics::Readiness& readiness, absl::Duration interval = absl::Seconds(5));

  void Start();
  // Redis (re)connected: probe now. Thread-safe (the Redis client's connectivity callback).
  void Recheck() { loop_.RunNow(); }
  boost::asio::awaitable<void> Close() { return loop_.Close(); }

 private:
  boost::asio::awaitable<void> Probe();

  redis::Client& redis_;
  metrics::Readiness& readiness_;
  const redis::Script probe_;
  bool refused_ = false;  // the last answer was a refusal; on the loop's strand
  Periodic loop_;         // last: it ends before what it uses goes
};

}  // namespace herald::serve
