#include "scripts_readiness.h"

#include <string>
#include <utility>
#include <vector>

#include <absl/status/status.h>

#include <herald/common/log.h>
#include <herald/common/strings.h>

namespace herald::serve {

namespace asio = boost::asio;

namespace {

constexpr std::string_view kComponent = "scripts";

// Redis unreachable, loading, busy or out of memory: a state of the server that passes, which
// the "redis" component (or the next probe) reports.
bool Transient(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

}  // namespace

ScriptsReadiness::ScriptsReadiness(asio::any_io_executor executor, redis::Client& redis,
                                   metrics::Readiness& readiness, absl::Duration interval)
    : redis_(redis),
      readiness_(readiness),
      probe_("return 1"),
      loop_(std::move(executor), interval, SystemClock::Get(), [this] { return Probe(); }) {}

void ScriptsReadiness::Start() {
  readiness_.Set(kComponent, absl::UnavailableError("not run yet"));
  loop_.Start();
}

asio::awaitable<void> ScriptsReadiness::Probe() {
  // Named, not braced temporaries in the co_await: g++ 12 destroys those twice.
  std::vector<std::string> keys, args;
  absl::StatusOr<redis::Reply> ran = co_await redis_.Eval(probe_, std::move(keys), std::move(args));
  if (ran.ok()) {
    if (refused_) log::Info("redis runs Herald's scripts again", {});
    refused_ = false;
    readiness_.Set(kComponent, absl::OkStatus());
    co_return;
  }
  if (Transient(ran.status())) co_return;
  std::string why = StrCat("redis refuses Herald's scripts: ", ran.status().message());
  if (ran.status().code() == absl::StatusCode::kPermissionDenied) {
    why += " (the Redis user needs +@scripting)";
  }
  if (!refused_) log::Error("redis refuses Herald's scripts", {{"status", ran.status()}});
  refused_ = true;
  readiness_.Set(kComponent, absl::FailedPreconditionError(std::move(why)));
}

}  // namespace herald::serve
