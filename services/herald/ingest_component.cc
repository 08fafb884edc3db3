#include "ingest_component.h"

#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <herald/common/log.h>

namespace herald::serve {

IngestComponent::IngestComponent(boost::asio::any_io_executor executor, http::ServerConfig config,
                                 http::Handler handler)
    : executor_(executor), server_(std::move(executor), std::move(config), std::move(handler)) {}

IngestComponent::~IngestComponent() { server_.Stop(); }

absl::Status IngestComponent::Start() {
  absl::Status status = server_.Start();
  if (status.ok()) log::Info("ingest listening", {{"port", server_.port()}});
  return status;
}

void IngestComponent::Drain(absl::Time deadline) {
  std::future<void> closed =
      boost::asio::co_spawn(executor_, server_.Close(), boost::asio::use_future);
  if (closed.wait_until(absl::ToChronoTime(deadline)) != std::future_status::ready) {
    log::Warn("ingest drain deadline passed; closing the remaining connections");
    server_.Stop();
    closed.wait();
  }
}

}  // namespace herald::serve
