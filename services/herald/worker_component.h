// The worker role: the job queue's worker runtime with Herald's job handlers.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include <herald/metrics/metrics.h>
#include <herald/queue/queue.h>
#include <herald/queue/worker.h>

#include "component.h"

namespace herald::serve {

// The job kind every worker handles: does nothing and succeeds. `herald queue smoke` uses it to
// check a deployment end to end (API → Redis → workers) without touching the upstream.
inline constexpr std::string_view kNoopJobKind = "noop";

class WorkerComponent final : public Component {
 public:
  // `queue` and `registry` must outlive the component. `register_handlers` adds the handlers
  // of Herald's job kinds (the no-op kind is always handled).
  WorkerComponent(boost::asio::any_io_executor executor, queue::Queue& queue,
                  queue::WorkerConfig config, metrics::Registry& registry,
                  const std::function<void(queue::Worker&)>& register_handlers = {});

  std::string_view name() const override { return "worker"; }
  absl::Status Start() override;
  // Stops leasing; in-flight jobs finish until the deadline, the rest are released back.
  void Drain(absl::Time deadline) override;

 private:
  queue::Worker worker_;
};

}  // namespace herald::serve
