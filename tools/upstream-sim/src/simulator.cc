#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <herald/common/log.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/upstream_sim/api.h>
#include <herald/upstream_sim/control.h>
#include <herald/upstream_sim/server.h>
#include <herald/upstream_sim/simulator.h>

namespace herald::upstream_sim {

namespace asio = boost::asio;

absl::Status SimulatorOptions::Validate() const {
  if (threads < 1 || threads > 64)
    return absl::InvalidArgumentError("--threads must be in [1, 64]");
  if (tick_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--tick_interval must be positive");
  }
  HERALD_RETURN_IF_ERROR(ValidateSeed(seed));
  HERALD_RETURN_IF_ERROR(behavior.Validate());
  HERALD_RETURN_IF_ERROR(webhook_policy.Validate());
  return absl::OkStatus();
}

class Simulator::Impl {
 public:
  Impl(SimulatorOptions options, const Clock& clock)
      : options_(std::move(options)),
        clock_(clock),
        io_(options_.threads),
        emitter_(io_, options_.webhook_policy, clock),
        state_(clock, emitter_, options_.seed, options_.behavior),
        api_(state_, options_.public_url, &emitter_),
        control_(state_, emitter_, clock.Now()),
        server_(io_,
                ServerConfig{.listen = options_.listen, .max_body_bytes = options_.max_body_bytes},
                api_, control_, state_) {
    // A delivered webhook event costs its team a credit (never below zero).
    emitter_.ChargeDeliveriesTo([this](std::string_view team_id) {
      const std::shared_ptr<World> world = state_.world();
      if (Team* team = world->FindTeam(team_id)) team->Charge(1);
    });
  }

  ~Impl() { Stop(); }

  absl::Status Start() {
    HERALD_RETURN_IF_ERROR(server_.Start());
    // The first log line: tests and scripts read the port from it.
    log::Info("upstream-sim listening",
              {{"address", options_.listen.host},
               {"port", server_.port()},
               {"teams", static_cast<int64_t>(options_.seed.teams.size())},
               {"accounts", static_cast<int64_t>(state_.world()->accounts().size())}});
    for (const WebhookEndpointConfig& webhook : options_.webhooks) {
      auto id = emitter_.AddEndpoint(webhook);
      if (!id.ok()) return id.status();
    }
    state_.faults().Add(options_.faults);
    running_ = true;
    asio::co_spawn(io_, Ticker(), asio::detached);
    for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { io_.run(); });
    return absl::OkStatus();
  }

  uint16_t port() const { return server_.port(); }

  void Stop() {
    if (!running_) return;
    running_ = false;
    server_.Stop();
    emitter_.Stop();
    io_.stop();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  SimState& state() { return state_; }
  WebhookEmitter& webhooks() { return emitter_; }

 private:
  asio::awaitable<void> Ticker() {
    asio::steady_timer timer(io_);
    while (running_) {
      timer.expires_after(absl::ToChronoNanoseconds(options_.tick_interval));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      state_.engine().Tick(*state_.world(), state_.behavior());
    }
  }

  const SimulatorOptions options_;
  const Clock& clock_;
  asio::io_context io_;
  WebhookEmitter emitter_;
  SimState state_;
  Api api_;
  Control control_;
  Server server_;
  std::atomic<bool> running_{false};
  std::vector<std::thread> threads_;
};

Simulator::Simulator(SimulatorOptions options, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), clock)) {}
Simulator::~Simulator() = default;
absl::Status Simulator::Start() { return impl_->Start(); }
uint16_t Simulator::port() const { return impl_->port(); }
void Simulator::Stop() { impl_->Stop(); }
SimState& Simulator::state() { return impl_->state(); }
WebhookEmitter& Simulator::webhooks() { return impl_->webhooks(); }

}  // namespace herald::upstream_sim
