#include "worker_component.h"

namespace herald::serve {

WorkerComponent::WorkerComponent(boost::asio::any_io_executor executor, queue::Queue& queue,
                                 queue::WorkerConfig config, metrics::Registry& registry,
                                 const std::function<void(queue::Worker&)>& register_handlers)
    : worker_(std::move(executor), queue, config, &registry) {
  if (register_handlers) register_handlers(worker_);
  worker_.Handle(std::string(kNoopJobKind),
                 [](const queue::LeasedJob&) -> boost::asio::awaitable<queue::JobResult> {
                   co_return queue::JobResult::Ok();
                 });
}

absl::Status WorkerComponent::Start() {
  worker_.Start();
  return absl::OkStatus();
}

void WorkerComponent::Drain(absl::Time deadline) { worker_.Drain(deadline); }

}  // namespace herald::serve
