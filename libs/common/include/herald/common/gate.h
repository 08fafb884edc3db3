// A gate, as Seastar's: work enters it while the component is open; Close() stops new entries
// and completes once everything that entered has left. One shutdown model for every component
// (servers, the worker, pollers, the Redis client): close the gate, await it, then destroy.
//
//   if (!gate.TryEnter()) co_return;  // closing: refuse new work
//   GateHolder hold(gate, adopt);     // leaves on scope exit
//   ...
//   co_await gate.Close();            // in the owner's shutdown
//
// Thread-safe: Enter and Leave may run on any thread; Close may be awaited on any executor.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace herald {

class Gate {
 public:
  Gate() = default;
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  ~Gate();  // Must not be destroyed while anything is inside.

  // Enters unless the gate is closing or closed; returns whether it entered.
  [[nodiscard]] bool TryEnter();
  // Enters a gate the caller is already inside (it holds an entry for the whole call), for work
  // that inside work starts and that may outlive it. Succeeds while the gate is closing: Close()
  // cannot have completed with the caller inside, and now waits for this entry too.
  void EnterNested();
  // Leaves after a successful TryEnter() or an EnterNested(). The last to leave a closing gate
  // completes Close().
  void Leave();

  // Refuses new entries and completes when nothing is inside. Idempotent: every caller resumes
  // once the gate is empty. A caller that has to wait resumes on its own executor (posted to it,
  // never run inside Leave()). A gate is not reopened; a closed gate refuses entries for good.
  boost::asio::awaitable<void> Close();

  // Close() for an owner whose shutdown runs on a thread of its own (a drain thread, a
  // destructor on the main thread): blocks until the gate is empty. Never call it from a thread
  // that runs the work inside the gate.
  void CloseAndWait();

  bool closing() const { return closing_.load(std::memory_order_acquire); }
  int64_t inside() const { return inside_.load(std::memory_order_acquire); }

 private:
  void WakeWaiters();

  std::atomic<int64_t> inside_{0};
  std::atomic<bool> closing_{false};
  std::mutex mu_;
  std::vector<std::function<void()>> waiters_;  // resume Close() callers; guarded by mu_
};

// Holds one entry of a gate and leaves it on destruction.
class GateHolder {
 public:
  GateHolder() = default;
  // Enters `gate`; check held() before doing the work.
  explicit GateHolder(Gate& gate) : gate_(gate.TryEnter() ? &gate : nullptr) {}
  // An entry taken with gate.EnterNested(): always held.
  static GateHolder Nested(Gate& gate) {
    gate.EnterNested();
    GateHolder holder;
    holder.gate_ = &gate;
    return holder;
  }
  GateHolder(GateHolder&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
  GateHolder& operator=(GateHolder&& other) noexcept {
    if (this != &other) {
      Release();
      gate_ = std::exchange(other.gate_, nullptr);
    }
    return *this;
  }
  ~GateHolder() { Release(); }

  bool held() const { return gate_ != nullptr; }
  explicit operator bool() const { return held(); }

 private:
  void Release() {
    if (gate_ != nullptr) std::exchange(gate_, nullptr)->Leave();
  }
  Gate* gate_ = nullptr;
};

// An entry of a gate that lives inside a shared object: keeps the object alive until the entry
// has left (members are destroyed in reverse order, so `hold` leaves before `owner` lets go).
template <typename Owner>
struct OwnedGateHolder {
  std::shared_ptr<Owner> owner;
  GateHolder hold;
};

}  // namespace herald
