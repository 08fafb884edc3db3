// A task run every `interval` of a clock until closed: the loop of the queue's statistics poller
// and of the dispatch sweep.
//
//   Periodic sweep(executor, absl::Seconds(30), clock, [&]() -> asio::awaitable<void> {
//     co_await service.SweepOnce();
//   });
//   sweep.Start();            // the first run starts at once
//   ...
//   co_await sweep.Close();   // ends the wait or lets the run in progress finish, then returns
//
// The task runs on a strand of the executor, one run at a time, and reports its own failures
// (a task that throws ends the process: it is a programming error). The interval is measured from
// the end of one run to the start of the next.
#pragma once

#include <functional>
#include <memory>

#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <herald/common/clock.h>
#include <herald/common/gate.h>

namespace herald {

class Periodic {
 public:
  using Task = std::function<boost::asio::awaitable<void>()>;

  // `task` and `clock` must outlive the loop (until Close() has completed).
  Periodic(boost::asio::any_io_executor executor, absl::Duration interval, const Clock& clock,
           Task task);
  // Closes the loop (CloseAndWait) if it is still running: destroy it from a thread that does not
  // run `executor`, or after Close() has completed.
  ~Periodic();
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;

  // Starts the loop; once only, and not after Close().
  void Start();
  // The next run starts as soon as the one in progress (if any) ends, instead of after the
  // interval: for a task that has heard its work is due. Thread-safe; does nothing once closed.
  void RunNow();
  // Stops the loop and completes once it has ended. Idempotent.
  boost::asio::awaitable<void> Close();

 private:
  struct State;
  static boost::asio::awaitable<void> Run(std::shared_ptr<State> state);
  void RequestStop();

  std::shared_ptr<State> state_;
  Gate gate_;  // entered by the loop while it runs
};

}  // namespace herald
