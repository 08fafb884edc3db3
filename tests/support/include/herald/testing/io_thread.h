// An io_context run by a thread of its own, for fixtures whose objects (Redis clients, stores,
// upstream clients) live on it, and the test thread's way to wait for awaitables run there.
//
//   testing::IoThread io;
//   redis::Client client(io.executor(), config);
//   client.Start();
//   io.Start();
//   redis::Reply pong = io.Must(client.Exec({"PING"}));  // a failed status fails the test
//   ...
//   client.Stop();
//   io.Join();  // returns once everything left on the context has finished
#pragma once

#include <future>
#include <optional>
#include <thread>
#include <utility>

#include <absl/status/statusor.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

namespace herald::testing {

class IoThread {
 public:
  using Executor = boost::asio::io_context::executor_type;

  IoThread() = default;
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  // A fixture whose TearDown never ran to its Join (a failed SetUp, say) must not hang here on
  // work it left behind: the context is stopped instead.
  ~IoThread() {
    if (!thread_.joinable()) return;
    io_.stop();
    thread_.join();
  }

  boost::asio::io_context& context() { return io_; }
  Executor executor() { return io_.get_executor(); }

  // Runs the context on a new thread until Join. The context keeps running while idle.
  void Start() {
    thread_ = std::thread([this] { io_.run(); });
  }

  // Lets the context run out of work and waits for its thread: everything started on it (a
  // client's connections, say) must be told to stop first. Does nothing if never started.
  void Join() {
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

  // Starts `op` on the context and returns what it returns, or rethrows what it throws.
  template <typename T>
  std::future<T> Spawn(boost::asio::awaitable<T> op) {
    return boost::asio::co_spawn(io_, std::move(op), boost::asio::use_future);
  }
  template <typename T>
  T Run(boost::asio::awaitable<T> op) {
    return Spawn(std::move(op)).get();
  }

  // Run, for an operation expected to succeed: a failed status fails the test and yields T{}.
  template <typename T>
  T Must(boost::asio::awaitable<absl::StatusOr<T>> op) {
    absl::StatusOr<T> result = Run(std::move(op));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? std::move(*result) : T{};
  }

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<Executor>> work_{io_.get_executor()};
  std::thread thread_;
};

}  // namespace herald::testing
