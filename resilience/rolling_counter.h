// RollingCounter: a thread-safe rolling sum of events over the most recent window of time.
//
// Counts (or sums any signed quantity) over the last `window`, in `bucket_count` buckets, on top
// of SlidingWindow. Use it for request-rate statistics, failure counts in a circuit breaker, or
// samples for an adaptive limit.
//
//   RollingCounter errors({.window = std::chrono::seconds(10), .bucket_count = 10});
//   errors.add(1, now);                              // one error at `now`
//   if (errors.sum(now) > 50) { /* trip */ }
//   double per_second = errors.ratePerSecond(now);   // sum / window
//
// Resolution: events are attributed to whole buckets, so sum(now) covers between
// `window - window/bucket_count` and `window` of real time (see SlidingWindow).
//
// Thread-safety: every method may be called concurrently. Synchronisation is one std::mutex per
// counter, held for O(1) in add() and O(bucket_count) in sum(). Why a mutex and not atomics:
// moving to a new bucket must reset it and re-tag it with its start time in one step, or an
// increment racing with the reset is lost (or counted in the wrong bucket); doing that without a
// lock needs the tag and the value in one word, which caps either the count or the time range.
// An uncontended lock costs about as much as one contended atomic increment; when a counter is
// hot enough for the lock to matter, shard it (one counter per thread or core, summed on read).
//
// Overflow: sums saturate at the limits of std::int64_t instead of wrapping.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "resilience/clock.h"
#include "resilience/sliding_window.h"

namespace sluice::resilience {

class RollingCounter {
 public:
  struct Settings {
    Duration window = std::chrono::seconds(1);  // total time covered, > 0
    std::size_t bucket_count = 10;              // >= 1, divides window (in ns); more = finer edges
  };

  // Explains what is wrong with `settings`, or nullopt if valid (same rules as
  // SlidingWindow::validate).
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // An empty counter. Invalid settings are coerced as SlidingWindow's constructor does.
  explicit RollingCounter(const Settings& settings);

  // Adds `amount` (may be negative) to the bucket covering `now`. A `now` earlier than the
  // newest time seen counts at that newest time. Saturates instead of overflowing.
  void add(std::int64_t amount, TimePoint now);
  // add(1, now).
  void increment(TimePoint now) { add(1, now); }

  // Sum over the buckets inside the window ending at `now` (0 when nothing was added); does not
  // modify the counter. A `now` earlier than the newest time seen is treated as that time.
  [[nodiscard]] std::int64_t sum(TimePoint now) const;

  // sum(now) divided by window() in seconds.
  [[nodiscard]] double ratePerSecond(TimePoint now) const;

  // Forgets everything (including the newest time seen).
  void reset();

  [[nodiscard]] Duration window() const;
  [[nodiscard]] Duration bucketWidth() const;
  [[nodiscard]] std::size_t bucketCount() const;

 private:
  mutable std::mutex mu_;
  SlidingWindow<std::int64_t> window_;  // guarded by mu_ (geometry is immutable)
};

}  // namespace sluice::resilience
