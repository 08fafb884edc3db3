// The ingest role: the webhook receiver (services/ingest) on its own HTTP port.
#pragma once

#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include <herald/http/server.h>

#include "component.h"

namespace herald::serve {

class IngestComponent final : public Component {
 public:
  IngestComponent(boost::asio::any_io_executor executor, http::ServerConfig config,
                  http::Handler handler);
  ~IngestComponent() override;

  std::string_view name() const override { return "ingest"; }

  absl::Status Start() override;

  // Stops accepting, lets requests being recorded finish and be answered, and closes the
  // connections; whatever is still open at the deadline is closed. An event whose request was
  // cut off was not acknowledged, so the upstream sends it again.
  void Drain(absl::Time deadline) override;

  uint16_t port() const { return server_.port(); }

 private:
  boost::asio::any_io_executor executor_;
  http::Server server_;
};

}  // namespace herald::serve
