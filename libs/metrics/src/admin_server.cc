#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <herald/common/log.h>
#include <herald/common/strings.h>
#include <herald/http/server.h>
#include <herald/metrics/admin_server.h>

namespace herald::metrics {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

http::Response MakeResponse(const http::Request& req, bhttp::status status,
                            std::string_view content_type, std::string body) {
  http::Response res =
      http::MakeResponse(req, static_cast<unsigned>(status), content_type, std::move(body));
  res.set(bhttp::field::cache_control, "no-store");
  return res;
}

}  // namespace

class AdminServer::Impl {
 public:
  Impl(AdminServerConfig config, const Registry& registry, const Readiness& readiness,
       const Liveness* liveness)
      : address_(config.address),
        registry_(registry),
        readiness_(readiness),
        liveness_(liveness),
        server_(ioc_.get_executor(),
                http::ServerConfig{.address = config.address,
                                   .name = "admin",
                                   .idle_timeout = config.idle_timeout,
                                   .max_header_bytes = config.max_request_bytes,
                                   .max_body_bytes = config.max_request_bytes},
                [this](http::Request& req) -> asio::awaitable<http::Reply> {
                  co_return http::Reply{.response = Handle(req)};
                }) {}

  ~Impl() { Stop(); }

  absl::Status Start() {
    if (thread_.joinable()) return absl::FailedPreconditionError("admin server already started");
    if (absl::Status started = server_.Start(); !started.ok()) {
      return absl::Status(started.code(), StrCat("admin server: ", started.message()));
    }
    thread_ = std::thread([this] { ioc_.run(); });
    log::Info("admin server listening", {{"address", address_.host}, {"port", server_.port()}});
    return absl::OkStatus();
  }

  uint16_t port() const { return server_.port(); }

  void Stop() {
    if (!thread_.joinable()) return;
    server_.Stop();
    // run() returns once the accept loop and every session have finished.
    thread_.join();
  }

 private:
  http::Response Handle(const http::Request& req) {
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
      http::Response res = MakeResponse(req, bhttp::status::method_not_allowed, "text/plain",
                                        "method not allowed\n");
      res.set(bhttp::field::allow, "GET, HEAD");
      return res;
    }
    std::string_view path = req.target();
    path = path.substr(0, path.find('?'));
    if (path == "/metrics") {
      return MakeResponse(req, bhttp::status::ok, kTextContentType, registry_.Serialize());
    }
    if (path == "/healthz") {
      const absl::Status live = liveness_ == nullptr ? absl::OkStatus() : liveness_->Check();
      if (live.ok()) {
        std::string report = liveness_ == nullptr ? std::string() : liveness_->Report();
        if (report.empty()) report = "ok\n";
        return MakeResponse(req, bhttp::status::ok, "text/plain", std::move(report));
      }
      return MakeResponse(req, bhttp::status::service_unavailable, "text/plain",
                          StrCat(live.message(), "\n"));
    }
    if (path == "/readyz") {
      const bool ready = readiness_.Ready();
      std::string report = readiness_.Report();
      if (report.empty()) report = "ok\n";
      return MakeResponse(req, ready ? bhttp::status::ok : bhttp::status::service_unavailable,
                          "text/plain", std::move(report));
    }
    if (path == "/") {
      return MakeResponse(req, bhttp::status::ok, "text/plain",
                          "herald admin\n/metrics\n/healthz\n/readyz\n");
    }
    return MakeResponse(req, bhttp::status::not_found, "text/plain", "not found\n");
  }

  const config::HostPort address_;
  const Registry& registry_;
  const Readiness& readiness_;
  const Liveness* const liveness_;  // null: always live
  asio::io_context ioc_{1};
  http::Server server_;  // destroyed before ioc_
  std::thread thread_;
};

AdminServer::AdminServer(AdminServerConfig config, const Registry& registry,
                         const Readiness& readiness, const Liveness* liveness)
    : impl_(std::make_unique<Impl>(std::move(config), registry, readiness, liveness)) {}

AdminServer::~AdminServer() = default;

absl::Status AdminServer::Start() { return impl_->Start(); }
uint16_t AdminServer::port() const { return impl_->port(); }
void AdminServer::Stop() { impl_->Stop(); }

}  // namespace herald::metrics
