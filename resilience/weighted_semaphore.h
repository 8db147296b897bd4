// WeightedSemaphore: a FIFO counting semaphore whose requests weigh n units each, with a
// lock-free try path and an async-friendly (callback) wait that never blocks a thread.
//
// Semantics follow golang.org/x/sync/semaphore.Weighted:
//   * a request for n units is granted when n units are free AND nobody is queued ahead of it;
//   * waiters are served strictly FIFO: a large waiter at the head is never starved by smaller
//     requests behind it - they wait too, even if they would fit (no barging);
//   * a request for more units than the capacity fails immediately (it could never be granted).
//
//   WeightedSemaphore sem({.capacity = 100, .max_waiters = 1000});
//   if (auto permit = sem.tryAcquire(body_bytes_kib)) { ... }       // fast path, never waits
//   auto r = sem.acquireAsync(body_bytes_kib, [loop](WeightedSemaphore::Permit p) {
//     loop.post([p = std::move(p)]() mutable { /* proceed; ~Permit returns the units */ });
//   });
//   switch (r.status) {
//     case AcquireStatus::Acquired: proceed(std::move(r.permit)); break;      // callback dropped
//     case AcquireStatus::Queued:   arm_timer([&, t = std::move(r.ticket)] {  // caller's timeout
//       if (sem.cancel(t) == CancelResult::Cancelled) reply_503();           // else: granted,
//     }); break;                                                              // callback runs
//     case AcquireStatus::ExceedsCapacity:
//     case AcquireStatus::QueueFull: reply_503(); break;
//   }
//
// Timeouts are the caller's: the library keeps no timers and reads no clock. Arm your own timer
// and call cancel(ticket) when it fires; cancel() tells you atomically which of the two possible
// fates the waiter had, so a timeout racing a grant can never lose or duplicate a permit:
//   * Cancelled       - the waiter was removed; its callback is destroyed without being called.
//   * AlreadyGranted  - the waiter got its units; its callback has been or will be called exactly
//                       once with the Permit (possibly on another thread, possibly after cancel()
//                       returns). The callback owns the permit; the timer must do nothing.
//
// Callbacks. A queued callback is invoked exactly once with a Permit, or destroyed uncalled when
// cancelled. It runs on the thread that made units available (a Permit release, setCapacity() or a
// cancel() that unblocked the queue head), never while the semaphore's lock is held, and never
// inside acquireAsync(). If that thread is already delivering grants for this semaphore (for
// example a callback dropped its permit synchronously), the new grants are appended to the batch
// being delivered instead of recursing, so the stack depth is bounded and grants are delivered in
// FIFO order. A callback must not throw (it is invoked from noexcept code: std::terminate) and
// should be cheap - post the real work to your event loop.
//
// Thread-safety: every member function may be called concurrently from any thread. A Permit or a
// WaitTicket is a plain value: one thread at a time may use a given object.
// Lifetime: the semaphore must outlive every Permit and every callback delivery; destroying it
// with queued waiters destroys their callbacks uncalled.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace sluice::resilience {

class WeightedSemaphore {
 public:
  // Largest accepted capacity (2^40 units): keeps every internal sum far from overflow.
  static constexpr std::size_t kMaxCapacity = std::size_t{1} << 40;

  struct Settings {
    // Units available when nothing is held. 0 is allowed: every non-zero request is then
    // rejected with ExceedsCapacity until setCapacity() raises it.
    std::size_t capacity = 0;
    // Most callbacks that may wait at once; acquireAsync() beyond it reports QueueFull. 0 turns
    // acquireAsync() into tryAcquire() with a status.
    std::size_t max_waiters = 1024;
  };

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Holds `weight()` units until destroyed, release()d or moved from. Move-only.
  class Permit {
   public:
    Permit() noexcept = default;
    Permit(Permit&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)), weight_(std::exchange(other.weight_, 0)) {}
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        release();
        owner_ = std::exchange(other.owner_, nullptr);
        weight_ = std::exchange(other.weight_, 0);
      }
      return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }

    // Returns the units now (which may grant queued waiters on this thread). Idempotent.
    void release() noexcept {
      WeightedSemaphore* const owner = std::exchange(owner_, nullptr);
      const std::size_t weight = std::exchange(weight_, 0);
      if (owner != nullptr && weight != 0) {  // a zero-weight permit never touches the owner
        owner->release(weight);
      }
    }
    // Units held: 0 for an empty permit, and for a granted request of weight 0.
    [[nodiscard]] std::size_t weight() const noexcept { return weight_; }
    // True while this permit holds a grant (even a zero-weight one).
    explicit operator bool() const noexcept { return owner_ != nullptr; }

   private:
    friend class WeightedSemaphore;
    Permit(WeightedSemaphore* owner, std::size_t weight) noexcept
        : owner_(owner), weight_(weight) {}

    WeightedSemaphore* owner_ = nullptr;
    std::size_t weight_ = 0;
  };

 private:
  struct Waiter;  // a queued callback; defined below

 public:
  // Names one queued waiter so that it can be cancelled. Copyable and cheap; dropping it does NOT
  // cancel the wait (the callback will still be granted). An empty (default) ticket is valid to
  // pass to cancel(), which then reports NotQueued.
  class WaitTicket {
   public:
    WaitTicket() noexcept = default;
    explicit operator bool() const noexcept { return waiter_ != nullptr; }

   private:
    friend class WeightedSemaphore;
    explicit WaitTicket(std::shared_ptr<Waiter> waiter) noexcept : waiter_(std::move(waiter)) {}
    std::shared_ptr<Waiter> waiter_;
  };

  enum class AcquireStatus {
    Acquired,         // granted synchronously: `permit` holds the units, the callback was dropped
    Queued,           // waiting: the callback will get the permit unless cancel() says Cancelled
    ExceedsCapacity,  // weight > capacity(): could never be granted; callback dropped
    QueueFull,        // max_waiters callbacks already wait; callback dropped
  };
  enum class CancelResult {
    Cancelled,       // removed from the queue (now or by an earlier cancel); callback destroyed
    AlreadyGranted,  // the callback has been or will be invoked exactly once with the permit
    NotQueued,       // empty ticket, or one issued by another semaphore
  };
  struct [[nodiscard]] AsyncAcquire {
    AcquireStatus status = AcquireStatus::QueueFull;
    Permit permit;      // valid iff status == Acquired
    WaitTicket ticket;  // valid iff status == Queued
  };

  // Precondition: validate(settings) is nullopt. Out-of-range values are clamped (capacity to
  // kMaxCapacity) so that construction itself never fails.
  explicit WeightedSemaphore(const Settings& settings) noexcept;
  WeightedSemaphore(const WeightedSemaphore&) = delete;
  WeightedSemaphore& operator=(const WeightedSemaphore&) = delete;
  WeightedSemaphore(WeightedSemaphore&&) = delete;
  WeightedSemaphore& operator=(WeightedSemaphore&&) = delete;
  // Destroys queued callbacks uncalled. Precondition: no Permit with a non-zero weight is
  // outstanding and no grant is being delivered (checked by assert() in debug builds).
  ~WeightedSemaphore();

  // Takes `weight` units if they are free right now and nobody is queued (FIFO: no barging past
  // waiters); otherwise returns an empty Permit and changes nothing. Lock-free, never waits.
  // weight 0 always succeeds (a zero-weight permit holds nothing); weight > capacity() fails.
  [[nodiscard]] Permit tryAcquire(std::size_t weight) noexcept;

  // Takes `weight` units now if tryAcquire() would, otherwise queues `on_grant` (callable as
  // `void(Permit)`, may be move-only) to be invoked with the permit when the units are granted in
  // FIFO order. Never blocks and never invokes `on_grant` itself. See AcquireStatus for outcomes.
  // Allocates one node when queueing (std::bad_alloc propagates; nothing is changed then).
  template <typename F>
  [[nodiscard]] AsyncAcquire acquireAsync(std::size_t weight, F&& on_grant);

  // Removes a queued waiter, telling which fate it had; see CancelResult. Idempotent: cancelling
  // the same ticket again gives the same answer. Removing the queue head may grant the waiters
  // behind it (their callbacks then run on this thread before cancel() returns).
  CancelResult cancel(const WaitTicket& ticket) noexcept;

  // Changes the capacity (clamped to kMaxCapacity). Growing grants queued waiters that now fit
  // (on this thread). Shrinking never revokes held permits: available() goes negative and units
  // returned by releases pay the deficit off before anything is granted. Waiters already queued
  // stay queued even if they now exceed the capacity (a queue head larger than the new capacity
  // blocks the queue until it is cancelled or the capacity grows again); new requests larger than
  // the capacity are rejected with ExceedsCapacity.
  void setCapacity(std::size_t capacity) noexcept;
  // Changes how many callbacks may wait at once. Waiters already queued beyond a lowered bound
  // stay queued (none is dropped); new ones get QueueFull until the queue is below it.
  void setMaxWaiters(std::size_t max_waiters) noexcept {
    max_waiters_.store(max_waiters, std::memory_order_relaxed);
  }

  // Snapshots, exact only when no other thread is changing the semaphore.
  [[nodiscard]] std::size_t capacity() const noexcept {
    return capacity_.load(std::memory_order_acquire);
  }
  // Free units: capacity minus units held; negative after shrinking below the units in use.
  [[nodiscard]] std::int64_t available() const noexcept {
    return state_.load(std::memory_order_acquire) >> 1;
  }
  // Callbacks currently queued (not counting granted ones still being delivered).
  [[nodiscard]] std::size_t waiting() const noexcept {
    return waiting_.load(std::memory_order_acquire);
  }

 private:
  using WaiterList = std::list<std::shared_ptr<Waiter>>;
  enum class WaiterState { Queued, Granted, Cancelled };

  struct Waiter {
    Waiter(const WeightedSemaphore* owner_in, std::size_t weight_in) noexcept
        : owner(owner_in), weight(weight_in) {}
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    Waiter(Waiter&&) = delete;
    Waiter& operator=(Waiter&&) = delete;
    virtual ~Waiter() = default;
    // Invokes the callback with the permit, then destroys the callback.
    virtual void grant(Permit permit) noexcept = 0;
    // Destroys the callback without invoking it.
    virtual void discard() noexcept = 0;

    const WeightedSemaphore* const owner;
    const std::size_t weight;
    WaiterState state = WaiterState::Queued;  // guarded by mutex_
    WaiterList::iterator position;            // in queue_ while state == Queued; guarded
  };

  template <typename F>
  struct CallbackWaiter final : Waiter {
    template <typename G>
    CallbackWaiter(const WeightedSemaphore* owner_in, std::size_t weight_in, G&& f)
        : Waiter(owner_in, weight_in), callback(std::in_place, std::forward<G>(f)) {}
    void grant(Permit permit) noexcept override {
      (*callback)(std::move(permit));
      callback.reset();
    }
    void discard() noexcept override { callback.reset(); }
    std::optional<F> callback;
  };

  // state_ packs the free units and a "waiters queued" bit: state = available * 2 + bit. One word
  // lets the lock-free paths check "no waiters and enough units" and take them in a single CAS.
  static constexpr std::int64_t kWaitersBit = 1;

  void release(std::size_t weight) noexcept;
  void releaseSlow(std::int64_t delta) noexcept;
  AsyncAcquire enqueue(std::shared_ptr<Waiter> waiter);
  // Moves queue heads that fit into pending_ (FIFO, stops at the first that does not fit) and
  // keeps kWaitersBit equal to !queue_.empty(). Requires mutex_.
  void grantLocked() noexcept;
  // Delivers pending_ grants with the lock released, unless another call on the stack or another
  // thread is already delivering (it will pick them up). Requires `lock` to own mutex_.
  void deliver(std::unique_lock<std::mutex>& lock) noexcept;

  std::atomic<std::int64_t> state_;
  std::atomic<std::size_t> capacity_;
  std::atomic<std::size_t> waiting_{0};
  std::atomic<std::size_t> max_waiters_;

  std::mutex mutex_;
  WaiterList queue_;         // FIFO of Queued waiters; guarded by mutex_
  WaiterList pending_;       // Granted waiters awaiting delivery, in grant order; guarded by mutex_
  bool delivering_ = false;  // some thread runs deliver()'s loop; guarded by mutex_
};

template <typename F>
WeightedSemaphore::AsyncAcquire WeightedSemaphore::acquireAsync(std::size_t weight, F&& on_grant) {
  using Callback = std::decay_t<F>;
  static_assert(std::is_invocable_v<Callback&, Permit>,
                "on_grant must be callable as void(WeightedSemaphore::Permit)");
  if (weight > capacity()) {
    return {AcquireStatus::ExceedsCapacity, {}, {}};
  }
  if (Permit permit = tryAcquire(weight)) {
    return {AcquireStatus::Acquired, std::move(permit), {}};
  }
  return enqueue(
      std::make_shared<CallbackWaiter<Callback>>(this, weight, std::forward<F>(on_grant)));
}

static_assert(std::is_nothrow_move_constructible_v<WeightedSemaphore::Permit>);
static_assert(std::is_nothrow_move_assignable_v<WeightedSemaphore::Permit>);
static_assert(!std::is_copy_constructible_v<WeightedSemaphore::Permit>);

}  // namespace sluice::resilience
