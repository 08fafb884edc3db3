#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>

#include <herald/common/strings.h>
#include <herald/http/server.h>
#include <herald/upstream_sim/json_writer.h>
#include <herald/upstream_sim/server.h>

namespace herald::upstream_sim {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

// Uploads are up to 100 MB: a slow link needs minutes for one request.
constexpr absl::Duration kRequestTimeout = absl::Minutes(5);
constexpr uint32_t kMaxHeaderBytes = 64 * 1024;

ApiRequest ToApiRequest(http::Request& req) {
  ApiRequest out;
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  out.authorization = std::string(req[bhttp::field::authorization]);
  out.content_type = std::string(req[bhttp::field::content_type]);
  out.host = std::string(req[bhttp::field::host]);
  out.body = std::move(req.body());
  return out;
}

// /_sim/ and /metrics go to the control handler, everything else to the API with the faults that
// match it applied. The references outlive every session (the server's contract).
asio::awaitable<http::Reply> Handle(Api& api, Control& control, SimState& state,
                                    http::Request& req) {
  RequestCounters& counters = state.counters();
  ApiRequest api_req = ToApiRequest(req);
  ApiResponse api_res;
  const std::string_view target = api_req.target;
  if (target == "/_sim" || target.starts_with("/_sim/") || target.starts_with("/_sim?") ||
      target == "/metrics") {
    api_res = control.Handle(api_req);
  } else {
    const std::string path(target.substr(0, target.find('?')));
    // Counted until the answer is built, a fault's latency included.
    struct InFlight {
      std::atomic<int64_t>& n;
      explicit InFlight(std::atomic<int64_t>& count) : n(count) { n.fetch_add(1); }
      ~InFlight() { n.fetch_sub(1); }
    } in_flight(counters.in_flight);
    const FaultDecision fault =
        state.faults().Decide(api.TeamOf(api_req.authorization), api_req.method, path);
    if (fault.latency > absl::ZeroDuration()) {
      counters.fault_delayed.fetch_add(1, std::memory_order_relaxed);
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(absl::ToChronoNanoseconds(fault.latency));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (fault.action == FaultAction::kReset) {
      counters.fault_resets.fetch_add(1, std::memory_order_relaxed);
      co_return http::Reply{.reset = true};
    }
    if (fault.action == FaultAction::kError) {
      counters.fault_errors.fetch_add(1, std::memory_order_relaxed);
      // An answer like any other in the request counts, though the API never saw it.
      counters.requests.fetch_add(1, std::memory_order_relaxed);
      counters.CountStatus(fault.status);
      api_res.status = fault.status;
      JsonWriter w;
      w.BeginObject()
          .Field("error", fault.status >= 500 ? "Internal Server Error" : "Injected fault.")
          .Field("code", fault.code)
          .EndObject();
      api_res.body = w.Take();
      if (fault.retry_after_s) {
        api_res.headers.emplace_back("Retry-After", StrCat(*fault.retry_after_s));
      }
    } else {
      api_res = api.Handle(api_req);
      if (fault.action == FaultAction::kCommitThenLose) {
        counters.fault_lost_responses.fetch_add(1, std::memory_order_relaxed);
        co_return http::Reply{.reset = true};
      }
    }
  }
  http::Response res(static_cast<bhttp::status>(api_res.status), req.version());
  res.set(bhttp::field::content_type, "application/json");
  for (const auto& [name, value] : api_res.headers) res.set(name, value);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(api_res.body);
  res.prepare_payload();
  co_return http::Reply{.response = std::move(res)};
}

}  // namespace

class Server::Impl {
 public:
  Impl(asio::io_context& io, ServerConfig config, Api& api, Control& control, SimState& state)
      : server_(
            io.get_executor(),
            http::ServerConfig{
                .address = config.listen,
                .name = "upstream-sim",
                .idle_timeout = config.idle_timeout,
                .request_timeout = kRequestTimeout,
                .max_header_bytes = kMaxHeaderBytes,
                .max_body_bytes = config.max_body_bytes,
                .too_large_content_type = "application/json",
                .too_large_body = R"({"error":"Request too large.","code":"payload_too_large"})",
                .header_too_large_body =
                    R"({"error":"Request header fields too large.","code":"header_too_large"})",
                .server_header = "upstream-sim"},
            [&api, &control, &state](http::Request& req) {
              return Handle(api, control, state, req);
            }) {}

  absl::Status Start() { return server_.Start(); }
  uint16_t port() const { return server_.port(); }
  void Stop() { server_.Stop(); }

 private:
  http::Server server_;
};

Server::Server(asio::io_context& io, ServerConfig config, Api& api, Control& control,
               SimState& state)
    : impl_(std::make_shared<Impl>(io, std::move(config), api, control, state)) {}

Server::~Server() = default;

absl::Status Server::Start() { return impl_->Start(); }
uint16_t Server::port() const { return impl_->port(); }
void Server::Stop() { impl_->Stop(); }

}  // namespace herald::upstream_sim
