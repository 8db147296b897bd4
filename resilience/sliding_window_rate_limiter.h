// SlidingWindowRateLimiter: at most `limit` admissions per sliding window, counted in buckets.
//
// The window (e.g. 1 minute) is cut into `bucket_count` buckets (e.g. 60 of 1 s) on top of
// SlidingWindow. A request of n is admitted iff the admissions counted in the buckets inside the
// window ending at `now`, plus n, stay <= limit; it is then counted in the current bucket.
//
//   SlidingWindowRateLimiter limiter(
//       {.limit = 100, .window = std::chrono::minutes(1), .bucket_count = 60});
//   if (!limiter.tryAcquire(now)) return reply429();
//
// Guarantee (exact, because admissions are attributed to whole buckets of width
// w = window / bucket_count): the admissions in any bucket_count consecutive buckets total at
// most `limit`. Hence any interval of length <= window - w holds at most `limit`, and an
// interval touching k buckets holds at most limit * ceil(k / bucket_count) (an arbitrary
// interval of length `window` touches bucket_count + 1 buckets: up to 2 * limit at the seam,
// the price of bucketing; more buckets make the seam narrower, not the bound smaller). Use
// TokenBucket or Gcra when a smooth rate matters more than a count per window. With unlimited
// demand every bucket_count consecutive buckets hold exactly `limit`.
//
// Time going backwards: a `now` earlier than the newest seen counts at the newest time (the
// window never moves back, so nothing is freed).
//
// The limit can change in place (setLimit), keeping the counts; the window's length and buckets
// cannot (a count per window of another length is not the same quantity: build a new limiter).
//
// Thread-safety: all methods may be called concurrently; one std::mutex guards the window (the
// admission check sums bucket_count buckets and must be atomic with the increment). Cost per
// call is O(bucket_count).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "resilience/clock.h"
#include "resilience/sliding_window.h"

namespace sluice::resilience {

class SlidingWindowRateLimiter {
 public:
  struct Settings {
    std::uint64_t limit = 1;                    // admissions per window, >= 1
    Duration window = std::chrono::seconds(1);  // > 0
    std::size_t bucket_count = 10;  // >= 1 and divides window (in ns); more = narrower seams
  };

  // Explains what is wrong with `settings`, or nullopt if valid: limit 0, or a window/bucket
  // geometry SlidingWindow::validate rejects.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // An empty limiter. Invalid settings are coerced: limit 0 stays 0 (admits only n == 0); the
  // geometry as SlidingWindow's constructor does.
  explicit SlidingWindowRateLimiter(const Settings& settings);

  // Admits n if count(now) + n <= limit, counting it at `now`; otherwise changes nothing.
  // n == 0 is always admitted; n > limit never.
  [[nodiscard]] bool tryAcquire(std::uint64_t n, TimePoint now);
  [[nodiscard]] bool tryAcquire(TimePoint now) { return tryAcquire(1, now); }

  // Admissions counted in the window ending at `now` (a snapshot).
  [[nodiscard]] std::uint64_t count(TimePoint now) const;
  // limit - count(now), or 0 while the count is above a lowered limit: what a request could
  // take now.
  [[nodiscard]] std::uint64_t remaining(TimePoint now) const;

  // Replaces the limit, keeping what the window has counted: the new limit judges the next
  // request against the admissions already in the window. A limit below the current count
  // admits nothing (but n == 0) until enough buckets leave the window; limit 0 admits only
  // n == 0, as in the constructor. The window length and bucket count cannot change in place:
  // the counts are per bucket of the current width. Thread-safe: takes the mutex, so a
  // concurrent tryAcquire is judged wholly under the old or the new limit.
  void setLimit(std::uint64_t limit);

  // The limit in effect. Lock-free.
  [[nodiscard]] std::uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  [[nodiscard]] Duration window() const { return window_.window(); }
  [[nodiscard]] Duration bucketWidth() const { return window_.bucketWidth(); }
  [[nodiscard]] std::size_t bucketCount() const { return window_.bucketCount(); }

 private:
  [[nodiscard]] std::uint64_t countLocked(TimePoint now) const;

  mutable std::mutex mu_;
  std::atomic<std::uint64_t> limit_;     // written under mu_; read lock-free by limit()
  SlidingWindow<std::uint64_t> window_;  // guarded by mu_ (geometry is immutable)
};

}  // namespace sluice::resilience
