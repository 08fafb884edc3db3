#include <cassert>
#include <future>
#include <memory>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <herald/common/gate.h>

namespace herald {

namespace asio = boost::asio;

// The counter and the flag are sequentially consistent on purpose: TryEnter() increments then
// reads the flag, Close() sets the flag then reads the counter, and one of the two must see the
// other (a Dekker pair); acquire/release alone would let both miss.

Gate::~Gate() { assert(inside() == 0 && "a gate destroyed with work inside"); }

bool Gate::TryEnter() {
  inside_.fetch_add(1);
  if (closing_.load()) {
    // Undone through Leave(): a Close() that saw this transient entry waits for its departure.
    Leave();
    return false;
  }
  return true;
}

void Gate::EnterNested() {
  const int64_t before = inside_.fetch_add(1);
  assert(before > 0 && "EnterNested() from outside the gate");
  (void)before;
}

void Gate::Leave() {
  const int64_t before = inside_.fetch_sub(1);
  assert(before > 0 && "Leave() without a matching TryEnter()");
  if (before == 1 && closing_.load()) WakeWaiters();
}

void Gate::WakeWaiters() {
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(mu_);
    // Re-checked under the lock that Close() registers under: a refused TryEnter() may have
    // raised the count again; its own Leave() wakes the waiters then.
    if (inside_.load() != 0) return;
    waiters.swap(waiters_);
  }
  for (std::function<void()>& wake : waiters) wake();
}

asio::awaitable<void> Gate::Close() {
  closing_.store(true);
  if (inside_.load() == 0) co_return;
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [this](auto handler) {
        std::unique_lock lock(mu_);
        if (inside_.load() == 0) {
          // The last one left between the check above and the lock.
          lock.unlock();
          asio::post(std::move(handler));
          return;
        }
        // std::function needs a copyable target; the completion handler is move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        waiters_.push_back([shared] { asio::post(std::move(*shared)); });
      },
      asio::use_awaitable);
}

void Gate::CloseAndWait() {
  closing_.store(true);
  if (inside_.load() == 0) return;
  // Shared with the waiter, which may still be inside set_value() when this thread wakes.
  auto empty = std::make_shared<std::promise<void>>();
  std::future<void> done = empty->get_future();
  {
    std::unique_lock lock(mu_);
    if (inside_.load() == 0) return;
    waiters_.push_back([empty] { empty->set_value(); });
  }
  done.wait();
}

}  // namespace herald
