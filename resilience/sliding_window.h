// SlidingWindow: a ring of time buckets covering the most recent `window` of time.
//
// The window is cut into `bucket_count` buckets of equal width (Alibaba Sentinel's "LeapArray").
// `current(now)` returns the bucket that covers `now`, first resetting every bucket that has
// fallen out of the window; `forEach(now, f)` visits the buckets still inside it. Callers keep
// whatever they like in a bucket (counters, sums, histograms) and aggregate over `forEach`.
// Memory is fixed (bucket_count buckets); each call is amortised O(1) except `forEach`, which
// is O(bucket_count).
//
//   struct Counts { std::int64_t ok = 0; std::int64_t failed = 0; };
//   SlidingWindow<Counts> window(std::chrono::seconds(10), 10);   // 10 buckets of 1 s
//   window.current(now).failed += 1;
//   std::int64_t failed = 0;
//   window.forEach(now, [&](const Counts& c) { failed += c.failed; });
//
// Resolution: an event is attributed to its whole bucket, so a sum over the window covers
// between `window - bucketWidth()` and `window` of real time. More buckets = finer edges.
//
// Thread-safety: none. This is a building block; callers synchronise (see RollingCounter for a
// thread-safe counter built on it).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "resilience/clock.h"

namespace sluice::resilience {

// Bucket: default-constructible and move-assignable; a bucket that leaves the window is reset by
// assigning Bucket{} to it.
template <typename Bucket>
class SlidingWindow {
 public:
  // Largest accepted bucket_count (memory is bucket_count * sizeof(Bucket)).
  static constexpr std::size_t kMaxBucketCount = std::size_t{1} << 20;

  // Explains what is wrong with (window, bucket_count), or nullopt if they are valid: window > 0,
  // 1 <= bucket_count <= kMaxBucketCount, and window divisible by bucket_count (in nanoseconds).
  [[nodiscard]] static std::optional<std::string> validate(Duration window,
                                                           std::size_t bucket_count) {
    if (bucket_count == 0) {
      return "bucket_count must be at least 1";
    }
    if (bucket_count > kMaxBucketCount) {
      return "bucket_count must be at most " + std::to_string(kMaxBucketCount);
    }
    if (window <= Duration::zero()) {
      return "window must be positive, got " + std::to_string(window.count()) + " ns";
    }
    if (window.count() % static_cast<Duration::rep>(bucket_count) != 0) {
      return "window (" + std::to_string(window.count()) +
             " ns) must be divisible by bucket_count (" + std::to_string(bucket_count) + ")";
    }
    return std::nullopt;
  }

  // Creates an empty window. Pass values accepted by validate(); the constructor cannot fail, so
  // other values are coerced: bucket_count is clamped to [1, kMaxBucketCount], the bucket width
  // is window / bucket_count rounded down but at least 1 ns, and window() then reports
  // bucketWidth() * bucketCount() (a non-divisible window is rounded down).
  SlidingWindow(Duration window, std::size_t bucket_count)
      : count_(clampCount(bucket_count)),
        width_ns_(widthNs(window, count_)),
        slots_(static_cast<std::size_t>(count_)) {}

  // The bucket that covers `now`, after resetting every bucket that fell out of the window ending
  // at `now`. A `now` earlier than the newest time seen so far is treated as that newest time
  // (the event lands in the newest bucket, nothing is reset), so time going backwards never
  // revives or clears buckets. Any TimePoint is accepted, including min() and max().
  // The reference is valid until the next non-const call.
  Bucket& current(TimePoint now) {
    const std::int64_t epoch = epochOf(now);
    if (!has_newest_) {
      has_newest_ = true;
      newest_ = epoch;
      return revive(epoch);
    }
    if (epoch <= newest_) {
      return slot(newest_).value;  // live by invariant: the newest bucket is always live
    }
    const std::uint64_t steps = distance(newest_, epoch);
    if (steps >= static_cast<std::uint64_t>(count_)) {
      // Everything is older than the window: clear all, then start the new bucket.
      for (Slot& s : slots_) {
        s.live = false;
        s.value = Bucket{};
      }
      newest_ = epoch;
      return revive(epoch);
    }
    // Buckets skipped over (no events in them) become live and empty, so forEach sees them too.
    for (std::uint64_t k = 1; k <= steps; ++k) {
      revive(newest_ + static_cast<std::int64_t>(k));
    }
    newest_ = epoch;
    return slot(newest_).value;
  }

  // Calls f(const Bucket&) for each bucket inside the window ending at `now`, oldest first. A
  // bucket that starts at time s is inside iff s > now - window() (the bucket covering `now`
  // itself is inside; the one starting exactly `window()` before it is not). A `now` earlier
  // than the newest time seen is treated as that newest time. Does not modify the window: a
  // `now` later than the newest time just skips the buckets that have aged out. Buckets the
  // window never created (nothing was recorded since they entered the window) are skipped;
  // they would be Bucket{}.
  template <typename F>
  void forEach(TimePoint now, F&& f) const {
    if (!has_newest_) {
      return;
    }
    const std::int64_t query = std::max(epochOf(now), newest_);
    const auto n = static_cast<std::uint64_t>(count_);
    const std::uint64_t start = (indexOf(query) + 1) % n;  // oldest position in the ring
    for (std::uint64_t k = 0; k < n; ++k) {
      const Slot& s = slots_[static_cast<std::size_t>((start + k) % n)];
      if (s.live && s.epoch <= query && distance(s.epoch, query) < n) {
        f(std::as_const(s.value));
      }
    }
  }

  // Total time covered: bucketWidth() * bucketCount().
  [[nodiscard]] Duration window() const { return Duration{width_ns_ * count_}; }
  // Width of one bucket (>= 1 ns).
  [[nodiscard]] Duration bucketWidth() const { return Duration{width_ns_}; }
  [[nodiscard]] std::size_t bucketCount() const { return static_cast<std::size_t>(count_); }

  // Forgets every bucket and the newest time seen (the next current() starts afresh, at any
  // time, earlier or later).
  void reset() {
    for (Slot& s : slots_) {
      s.live = false;
      s.value = Bucket{};
    }
    has_newest_ = false;
    newest_ = 0;
  }

 private:
  struct Slot {
    std::int64_t epoch = 0;  // floor(bucket start / width); meaningful only when live
    bool live = false;
    Bucket value{};
  };

  static std::int64_t clampCount(std::size_t bucket_count) {
    if (bucket_count == 0) {
      return 1;
    }
    return static_cast<std::int64_t>(std::min(bucket_count, kMaxBucketCount));
  }

  static std::int64_t widthNs(Duration window, std::int64_t count) {
    const std::int64_t width = window.count() / count;
    return width < 1 ? 1 : width;
  }

  // floor(now / width): buckets are aligned to multiples of the width since the clock's epoch,
  // so every instance with the same width agrees on bucket edges. Floor (not truncation) keeps
  // times before the epoch correct.
  [[nodiscard]] std::int64_t epochOf(TimePoint now) const {
    const std::int64_t ns = now.time_since_epoch().count();
    std::int64_t q = ns / width_ns_;
    if (ns % width_ns_ < 0) {
      --q;
    }
    return q;
  }

  // to - from for from <= to, exact even when the signed difference would overflow.
  static std::uint64_t distance(std::int64_t from, std::int64_t to) {
    return static_cast<std::uint64_t>(to) - static_cast<std::uint64_t>(from);
  }

  [[nodiscard]] std::uint64_t indexOf(std::int64_t epoch) const {
    std::int64_t r = epoch % count_;
    if (r < 0) {
      r += count_;
    }
    return static_cast<std::uint64_t>(r);
  }

  Slot& slot(std::int64_t epoch) { return slots_[static_cast<std::size_t>(indexOf(epoch))]; }

  Bucket& revive(std::int64_t epoch) {
    Slot& s = slot(epoch);
    s.epoch = epoch;
    s.live = true;
    s.value = Bucket{};
    return s.value;
  }

  std::int64_t count_;
  std::int64_t width_ns_;
  std::vector<Slot> slots_;
  bool has_newest_ = false;
  std::int64_t newest_ = 0;  // epoch of the newest bucket; valid when has_newest_
};

}  // namespace sluice::resilience
