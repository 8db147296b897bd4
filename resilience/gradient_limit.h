// GradientLimit: a latency-based adaptive concurrency limit that compares a long-term average RTT
// (the baseline) with the short-term RTT and shrinks the limit in proportion when requests start
// to queue. This is Netflix concurrency-limits' Gradient2 algorithm; Envoy's adaptive_concurrency
// filter uses the same gradient idea with a periodically re-measured minimum RTT instead of an
// average (differences in docs/concurrency-limiting.md).
//
//   GradientLimit limit({.initial_limit = 50, .min_limit = 10, .max_limit = 1000});
//   AdaptiveConcurrencyLimiter limiter(std::make_unique<GradientLimit>(settings));
//
// Samples are aggregated into windows. A window opens at its first sample and closes on the
// sample for which both `samples >= window_min_samples` and `now - opened_at >=
// window_min_duration` hold (>= on both). The defaults (1 sample, 0 s) update on every sample, as
// Gradient2 does; a gateway with high request rates may prefer e.g. 100 samples / 100 ms to damp
// noise. When a window closes with mean RTT `short` (the arithmetic mean of its samples' RTTs,
// dropped ones included - a timeout's long RTT is exactly the signal) and peak in-flight `peak`:
//
//   long      = EMA of `short` over `long_window` updates: long += (short - long) * 2/(N+1),
//               where the first `warmup_windows` updates use the plain arithmetic mean instead
//               (so the baseline is not dominated by the very first window);
//   if long / short > 2:  long *= 0.9     (recovering from a long overload: pull the baseline
//                                          down faster than the EMA would)
//   if peak < L / 2:      L unchanged     (app-limited: strictly less than half the limit used)
//   gradient  = clamp(long / short, 0.5, 1.0)    (1.0: no queueing; never cut more than half)
//   L_new     = L * gradient + queue_size         (queue_size: slots of allowed growth/queueing)
//   L         = clamp(L * (1 - smoothing) + L_new * smoothing, min_limit, max_limit)
//
// limit() is floor(L). Source: Gradient2Limit in github.com/Netflix/concurrency-limits (formula
// and default values; the EMA factor 2/(N+1) and warm-up are its ExpAvgMeasurement).
//
// Edge input: samples with rtt <= 0 are ignored (the ratio is undefined); a `now` earlier than one
// already seen is treated as the latest seen. Thread-safety: see AdaptiveLimit.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "resilience/adaptive_limit.h"
#include "resilience/clock.h"

namespace sluice::resilience {

class GradientLimit final : public AdaptiveLimit {
 public:
  struct Settings {
    std::size_t initial_limit = 20;      // in [min_limit, max_limit] (Gradient2 default 20)
    std::size_t min_limit = 20;          // >= 1 (Gradient2 default 20)
    std::size_t max_limit = 200;         // in [min_limit, kMaxLimit] (Gradient2 default 200)
    double smoothing = 0.2;              // in (0, 1]: weight of the new estimate per update
    double queue_size = 4;               // >= 0: growth allowance added per update
    std::size_t long_window = 600;       // >= 1 updates: EMA span of the long-term RTT
    std::size_t warmup_windows = 10;     // first updates averaged arithmetically (min. 1)
    std::size_t window_min_samples = 1;  // >= 1
    Duration window_min_duration = Duration::zero();  // >= 0
  };

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Precondition: validate(settings) is nullopt (otherwise values are clamped into range).
  explicit GradientLimit(const Settings& settings) noexcept;

  [[nodiscard]] std::size_t limit() const noexcept override {
    return limit_.load(std::memory_order_relaxed);
  }
  void onSample(TimePoint now, Duration rtt, std::size_t inflight, bool dropped) noexcept override;

  // Diagnostics, safe from any thread (relaxed snapshots of the last window update): the
  // unrounded limit estimate, the long-term RTT baseline and the last window's mean RTT. The RTTs
  // are zero before the first window closes.
  [[nodiscard]] double estimate() const noexcept {
    return estimate_snapshot_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] Duration longRtt() const noexcept {
    return Duration(long_rtt_snapshot_.load(std::memory_order_relaxed));
  }
  [[nodiscard]] Duration shortRtt() const noexcept {
    return Duration(short_rtt_snapshot_.load(std::memory_order_relaxed));
  }

 private:
  void closeWindow() noexcept;

  Settings settings_;
  std::atomic<std::size_t> limit_;
  std::atomic<double> estimate_snapshot_;
  std::atomic<std::int64_t> long_rtt_snapshot_{0};
  std::atomic<std::int64_t> short_rtt_snapshot_{0};

  // Single-writer state, touched only by onSample().
  double estimate_;
  double long_rtt_ns_ = 0;
  double long_sum_ns_ = 0;
  std::size_t long_updates_ = 0;
  std::optional<TimePoint> window_opened_at_;
  std::size_t window_samples_ = 0;
  double window_rtt_sum_ns_ = 0;
  std::size_t window_peak_inflight_ = 0;
  TimePoint latest_{};
};

}  // namespace sluice::resilience
