// Runs a coroutine to completion on an io_context from a test's (or a tool's) own thread.
//
//   asio::io_context ioc;
//   absl::StatusOr<Reply> r = testing::RunSync(ioc, client.Call(...));
//
// The io_context must not be run by another thread; RunSync runs it until it has no work left
// (so everything the coroutine started must finish with it) and rethrows what the coroutine
// threw.
#pragma once

#include <exception>
#include <optional>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace herald::testing {

template <typename T>
T RunSync(boost::asio::io_context& ioc, boost::asio::awaitable<T> op) {
  std::optional<T> out;
  std::exception_ptr error;
  boost::asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T value) {
    error = e;
    out = std::move(value);
  });
  ioc.restart();
  ioc.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

inline void RunSync(boost::asio::io_context& ioc, boost::asio::awaitable<void> op) {
  std::exception_ptr error;
  boost::asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e) { error = e; });
  ioc.restart();
  ioc.run();
  if (error) std::rethrow_exception(error);
}

}  // namespace herald::testing
