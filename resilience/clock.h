// Time in sluice::resilience.
//
// Every primitive in this library takes the current time as an explicit `TimePoint now`
// argument instead of reading a clock. That keeps each primitive deterministic: production code
// passes `Clock::now()` (or a cached per-event-loop-tick value), tests pass a `ManualClock`'s
// time and advance it by hand, with no sleeps.
//
//   resilience::ManualClock clock;
//   TokenBucket bucket({.rate_per_second = 10, .burst = 5}, clock.now());
//   if (bucket.tryAcquire(1, clock.now())) { /* admitted */ }
//   clock.advance(std::chrono::milliseconds(100));
//
// Time is monotonic by contract (steady_clock), but every primitive must still tolerate a `now`
// that is earlier than one it has already seen (two threads racing to read the clock): it treats
// such a call as happening at the latest time it knows, never refilling or crashing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sluice::resilience {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;  // nanoseconds

// A clock advanced by hand, for tests and simulations. Thread-safe: `now()` and `advance()` may
// race freely (both are single atomic operations).
class ManualClock {
 public:
  // Well after the epoch, so that `now() - some_duration` never underflows in tests.
  static constexpr TimePoint kDefaultStart = TimePoint{} + std::chrono::hours(24);

  explicit ManualClock(TimePoint start = kDefaultStart) : ns_(start.time_since_epoch().count()) {}

  [[nodiscard]] TimePoint now() const noexcept {
    return TimePoint{Duration{ns_.load(std::memory_order_acquire)}};
  }
  void advance(Duration d) noexcept { ns_.fetch_add(d.count(), std::memory_order_acq_rel); }
  void set(TimePoint t) noexcept {
    ns_.store(t.time_since_epoch().count(), std::memory_order_release);
  }

 private:
  std::atomic<std::int64_t> ns_;
};

}  // namespace sluice::resilience
