#include <atomic>
#include <exception>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <herald/common/log.h>
#include <herald/common/periodic.h>

namespace herald {

namespace asio = boost::asio;

struct Periodic::State {
  State(asio::any_io_executor executor, absl::Duration interval, const Clock& clock, Task task)
      : strand(asio::make_strand(std::move(executor))),
        timer(clock.NewTimer(strand)),
        interval(interval),
        clock(clock),
        task(std::move(task)) {}
  // The loop and the stop request run on it: a stop can never fall between the loop's check of
  // `stopped` and its wait.
  asio::strand<asio::any_io_executor> strand;
  std::unique_ptr<Timer> timer;
  const absl::Duration interval;
  const Clock& clock;
  const Task task;
  std::atomic<bool> stopped{false};
  std::atomic<bool> run_now{false};
};

Periodic::Periodic(asio::any_io_executor executor, absl::Duration interval, const Clock& clock,
                   Task task)
    : state_(std::make_shared<State>(std::move(executor), interval, clock, std::move(task))) {}

Periodic::~Periodic() {
  RequestStop();
  gate_.CloseAndWait();
}

void Periodic::Start() {
  GateHolder hold(gate_);
  if (!hold) return;  // closed
  asio::co_spawn(state_->strand, Run(state_), [hold = std::move(hold)](std::exception_ptr e) {
    log::AbortOnException(std::move(e), "periodic task");
  });
}

void Periodic::RequestStop() {
  if (state_->stopped.exchange(true)) return;
  asio::post(state_->strand, [state = state_] { state->timer->Cancel(); });
}

void Periodic::RunNow() {
  // The flag covers a run in progress (a cancel that reaches the strand meanwhile finds no wait
  // and does nothing); the cancel, a wait the loop began after checking the flag.
  state_->run_now.store(true);
  asio::post(state_->strand, [state = state_] { state->timer->Cancel(); });
}

asio::awaitable<void> Periodic::Close() {
  RequestStop();
  co_await gate_.Close();
}

asio::awaitable<void> Periodic::Run(std::shared_ptr<State> state) {
  while (!state->stopped.load()) {
    co_await state->task();
    if (state->stopped.load()) break;
    if (state->run_now.exchange(false)) continue;
    co_await state->timer->WaitUntil(state->clock.MonotonicAfter(state->interval));
    state->run_now.store(false);
  }
}

}  // namespace herald
