// Semaphore: a FIFO counting semaphore of unit permits - the concurrency cap for "at most N
// requests in flight" - with a lock-free tryAcquire() and an async-friendly callback wait with
// cancellation that can never leak or duplicate a permit.
//
//   Semaphore sem({.capacity = 64, .max_waiters = 1000});
//   if (Semaphore::Permit permit = sem.tryAcquire()) {
//     forward(std::move(permit));               // ~Permit gives the slot back
//   }
//
//   // Async wait (never blocks the event loop); the timeout is the caller's own timer:
//   auto r = sem.acquireAsync([loop, req](Semaphore::Permit p) {
//     loop->post([req, p = std::move(p)]() mutable { forward(req, std::move(p)); });
//   });
//   if (r.status == Semaphore::AcquireStatus::Acquired) {
//     forward(req, std::move(r.permit));        // got one at once: the callback was dropped
//   } else if (r.status == Semaphore::AcquireStatus::Queued) {
//     timer.expires_after(250ms);
//     timer.async_wait([&sem, t = r.ticket, req](auto) {
//       if (sem.cancel(t) == Semaphore::CancelResult::Cancelled) reply_503(req);
//       // AlreadyGranted: the callback owns the permit and proceeds; do nothing here.
//     });
//   } else {
//     reply_503(req);                           // QueueFull, or capacity is 0
//   }
//
// Semaphore is WeightedSemaphore (resilience/weighted_semaphore.h) with every request weighing
// one permit; every rule there applies:
//   * FIFO: a tryAcquire() fails while anyone is queued, even if a permit is free (no barging);
//     queued callbacks are granted strictly in arrival order.
//   * Timeout = your timer calling cancel(ticket). cancel() reports Cancelled (the callback is
//     destroyed uncalled) or AlreadyGranted (the callback has been or will be invoked exactly once
//     with the permit). There is no third outcome, so release/grant/cancel races cannot leak.
//   * A queued callback runs on the thread that freed the permit (a Permit's destructor, a
//     setCapacity() or a cancel()), outside the semaphore's lock, never inside acquireAsync(), and
//     without recursion if it releases its permit synchronously. It must not throw.
//   * Capacity can change at runtime; shrinking never revokes held permits (available() goes
//     negative until enough are returned). With capacity 0 every new request is rejected with
//     ExceedsCapacity; already-queued callbacks keep waiting until capacity returns or they are
//     cancelled.
//
// Thread-safety: all member functions may be called concurrently from any thread. Permit and
// WaitTicket are values used by one thread at a time. The semaphore must outlive its permits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "resilience/weighted_semaphore.h"

namespace sluice::resilience {

class Semaphore {
 public:
  static constexpr std::size_t kMaxCapacity = WeightedSemaphore::kMaxCapacity;

  struct Settings {
    // Permits when none is held (0..kMaxCapacity). 0 rejects every request until setCapacity().
    std::size_t capacity = 0;
    // Most callbacks queued at once; acquireAsync() beyond it reports QueueFull.
    std::size_t max_waiters = 1024;
  };

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings) {
    return WeightedSemaphore::validate({settings.capacity, settings.max_waiters});
  }

  // One permit, returned when destroyed, release()d or moved from. Move-only.
  class Permit {
   public:
    Permit() noexcept = default;
    // Returns the permit now (may grant the queue head on this thread). Idempotent.
    void release() noexcept { inner_.release(); }
    // True while this object holds a permit.
    explicit operator bool() const noexcept { return static_cast<bool>(inner_); }

   private:
    friend class Semaphore;
    explicit Permit(WeightedSemaphore::Permit inner) noexcept : inner_(std::move(inner)) {}
    WeightedSemaphore::Permit inner_;
  };
  using WaitTicket = WeightedSemaphore::WaitTicket;
  using AcquireStatus = WeightedSemaphore::AcquireStatus;
  using CancelResult = WeightedSemaphore::CancelResult;

  struct [[nodiscard]] AsyncAcquire {
    AcquireStatus status = AcquireStatus::QueueFull;
    Permit permit;      // valid iff status == Acquired
    WaitTicket ticket;  // valid iff status == Queued
  };

  // Precondition: validate(settings) is nullopt (capacity is clamped to kMaxCapacity otherwise).
  explicit Semaphore(const Settings& settings) noexcept
      : inner_({settings.capacity, settings.max_waiters}) {}

  // Takes a permit if one is free and nobody is queued; otherwise returns an empty Permit and
  // changes nothing. Lock-free; never waits.
  [[nodiscard]] Permit tryAcquire() noexcept { return Permit(inner_.tryAcquire(1)); }

  // Takes a permit now if tryAcquire() would; otherwise queues `on_grant` (callable as
  // `void(Semaphore::Permit)`, may be move-only) to receive one in FIFO order. Never blocks and
  // never calls `on_grant` itself. Statuses: Acquired (permit inside, callback dropped), Queued
  // (ticket inside), QueueFull (max_waiters reached), ExceedsCapacity (capacity is 0). Allocates
  // one node when queueing; std::bad_alloc propagates with nothing changed.
  template <typename F>
  [[nodiscard]] AsyncAcquire acquireAsync(F&& on_grant) {
    static_assert(std::is_invocable_v<std::decay_t<F>&, Permit>,
                  "on_grant must be callable as void(Semaphore::Permit)");
    WeightedSemaphore::AsyncAcquire r = inner_.acquireAsync(
        1, [f = std::forward<F>(on_grant)](WeightedSemaphore::Permit p) mutable {
          f(Permit(std::move(p)));
        });
    return {r.status, Permit(std::move(r.permit)), std::move(r.ticket)};
  }

  // Removes a queued waiter: Cancelled (callback destroyed uncalled), AlreadyGranted (callback
  // has been or will be invoked once with the permit), NotQueued (empty or foreign ticket).
  // Idempotent.
  CancelResult cancel(const WaitTicket& ticket) noexcept { return inner_.cancel(ticket); }

  // Changes the number of permits; growing grants waiters on this thread, shrinking never revokes
  // held permits. Clamped to kMaxCapacity.
  void setCapacity(std::size_t capacity) noexcept { inner_.setCapacity(capacity); }
  // Changes how many callbacks may wait at once; queued ones are never dropped (see
  // WeightedSemaphore::setMaxWaiters).
  void setMaxWaiters(std::size_t max_waiters) noexcept { inner_.setMaxWaiters(max_waiters); }

  // Snapshots (exact when quiescent): capacity, free permits (negative after shrinking below the
  // number held), and callbacks queued.
  [[nodiscard]] std::size_t capacity() const noexcept { return inner_.capacity(); }
  [[nodiscard]] std::int64_t available() const noexcept { return inner_.available(); }
  [[nodiscard]] std::size_t waiting() const noexcept { return inner_.waiting(); }

 private:
  WeightedSemaphore inner_;
};

static_assert(std::is_nothrow_move_constructible_v<Semaphore::Permit>);
static_assert(std::is_nothrow_move_assignable_v<Semaphore::Permit>);
static_assert(!std::is_copy_constructible_v<Semaphore::Permit>);

}  // namespace sluice::resilience
