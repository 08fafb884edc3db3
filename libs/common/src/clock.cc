#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <herald/common/clock.h>

namespace herald {

namespace asio = boost::asio;

namespace {

// `d` as a monotonic interval: absl saturates at the chrono limits, which the cast keeps (both
// count nanoseconds).
MonoTime::duration ToMonoDuration(absl::Duration d) {
  return std::chrono::duration_cast<MonoTime::duration>(absl::ToChronoNanoseconds(d));
}

}  // namespace

MonoTime Clock::MonotonicAfter(absl::Duration d) const {
  const MonoTime now = Monotonic();
  const MonoTime::duration ahead = ToMonoDuration(std::max(d, absl::ZeroDuration()));
  return ahead >= MonoTime::max() - now ? MonoTime::max() : now + ahead;
}

asio::awaitable<bool> Clock::SleepFor(absl::Duration d) const {
  std::unique_ptr<Timer> timer = NewTimer(co_await asio::this_coro::executor);
  const MonoTime at = MonotonicAfter(d);
  co_return co_await timer->WaitUntil(at);
}

// ---------------------------------------------------------------------------------------------
// SystemClock

namespace {

class SteadyTimer final : public Timer {
 public:
  explicit SteadyTimer(asio::any_io_executor executor) : timer_(std::move(executor)) {}

  asio::awaitable<bool> WaitUntil(MonoTime at) override {
    timer_.expires_at(at);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
  }
  void Cancel() override { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

}  // namespace

std::unique_ptr<Timer> SystemClock::NewTimer(asio::any_io_executor executor) const {
  return std::make_unique<SteadyTimer>(std::move(executor));
}

const SystemClock& SystemClock::Get() {
  static const SystemClock* const clock = new SystemClock();
  return *clock;
}

// ---------------------------------------------------------------------------------------------
// ManualClock

class ManualClock::ManualTimer final : public Timer {
 public:
  ManualTimer(const ManualClock& clock, asio::any_io_executor executor)
      : clock_(clock), executor_(std::move(executor)) {}
  ~ManualTimer() override { Cancel(); }

  asio::awaitable<bool> WaitUntil(MonoTime at) override {
    Cancel();  // as an asio timer: re-arming ends the previous wait
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(bool)>(
        [this, at](auto handler) {
          asio::cancellation_slot slot = asio::get_associated_cancellation_slot(handler);
          const asio::any_io_executor executor = asio::get_associated_executor(handler, executor_);
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          id_ = clock_.Schedule(at, [shared, executor](bool fired) {
            asio::post(executor, [shared, fired] { (*shared)(fired); });
          });
          // The coroutine's own cancellation (a drain, an `||`) ends the wait like Cancel().
          if (slot.is_connected()) {
            slot.assign(
                [&clock = clock_, id = id_](asio::cancellation_type) { clock.Unschedule(id); });
          }
        },
        asio::use_awaitable);
  }

  void Cancel() override {
    if (id_ != 0) clock_.Unschedule(std::exchange(id_, 0));
  }

 private:
  const ManualClock& clock_;
  const asio::any_io_executor executor_;
  uint64_t id_ = 0;  // the pending wait's schedule entry (it may have fired since)
};

ManualClock::~ManualClock() {
  std::lock_guard lock(mu_);
  waiting_.clear();
}

std::unique_ptr<Timer> ManualClock::NewTimer(asio::any_io_executor executor) const {
  return std::make_unique<ManualTimer>(*this, std::move(executor));
}

MonoTime ManualClock::MonotonicAt(absl::Time t) const {
  const int64_t at = absl::ToUnixNanos(t);  // saturates
  if (at == std::numeric_limits<int64_t>::max()) return MonoTime::max();
  return MonoTime(std::chrono::nanoseconds(std::max(at, nanos_.load(std::memory_order_acquire))));
}

void ManualClock::Set(absl::Time t) {
  nanos_.store(absl::ToUnixNanos(t), std::memory_order_release);
  FireDue();
}

void ManualClock::Advance(absl::Duration d) {
  nanos_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_acq_rel);
  FireDue();
}

int ManualClock::pending_timers() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(waiting_.size());
}

uint64_t ManualClock::Schedule(MonoTime at, Fire fire) const {
  uint64_t id = 0;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    if (at > Monotonic()) {
      waiting_.emplace(at, std::make_pair(id, std::move(fire)));
      return id;
    }
  }
  fire(true);
  return id;
}

void ManualClock::Unschedule(uint64_t id) const {
  Fire fire;
  {
    std::lock_guard lock(mu_);
    auto it = std::find_if(waiting_.begin(), waiting_.end(),
                           [id](const auto& entry) { return entry.second.first == id; });
    if (it == waiting_.end()) return;  // fired already
    fire = std::move(it->second.second);
    waiting_.erase(it);
  }
  fire(false);
}

void ManualClock::FireDue() {
  std::vector<Fire> due;
  {
    std::lock_guard lock(mu_);
    const MonoTime now = Monotonic();
    auto end = waiting_.upper_bound(now);
    for (auto it = waiting_.begin(); it != end; ++it) due.push_back(std::move(it->second.second));
    waiting_.erase(waiting_.begin(), end);
  }
  for (Fire& fire : due) fire(true);
}

}  // namespace herald
