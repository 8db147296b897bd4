// VegasLimit: a delay-based adaptive concurrency limit modelled on TCP Vegas, as adapted by
// Netflix concurrency-limits' VegasLimit. It keeps the lowest RTT seen (the no-load RTT) and
// estimates how many of the in-flight requests are merely queueing:
//
//   queue = ceil(L * (1 - rtt_noload / rtt))        (Little's law: L - throughput * rtt_noload)
//
// and grows the limit while that queue is short, shrinks it when it is long.
//
//   VegasLimit limit({.initial_limit = 20, .max_limit = 1000});
//   AdaptiveConcurrencyLimiter limiter(std::make_unique<VegasLimit>(settings));
//
// With L the current estimate and f(L) = max(1, floor(log10(L))) for L < 1000, floor(sqrt(L))
// otherwise (Netflix's Log10RootFunction, applied to floor(L)), onSample(now, rtt, inflight,
// dropped) does, in order:
//   1. Probe: every `probe_multiplier * L * jitter` samples (jitter uniform in [0.5, 1), fresh
//      after each probe, from a PRNG seeded with `seed`) the baseline is reset to this sample's
//      rtt and nothing else happens - so a baseline measured in a quieter past cannot pin the
//      limit low forever. The comparison is samples_since_probe >= threshold.
//      probe_multiplier == 0 disables probing.
//   2. Baseline: if there is no baseline yet or rtt < rtt_noload (strictly), rtt_noload = rtt and
//      nothing else happens.
//   3. Otherwise, with alpha = alpha_factor * f(L), beta = beta_factor * f(L),
//      threshold = f(L):
//        dropped                       -> L' = L - f(L)
//        inflight * 2 < L              -> unchanged (app-limited)
//        queue <= threshold            -> L' = L + beta   (no queueing: grow fast)
//        queue <  alpha                -> L' = L + f(L)
//        queue >  beta                 -> L' = L - f(L)
//        otherwise (alpha..beta)       -> unchanged
//      then L' is clamped to [min_limit, max_limit] and smoothed:
//        L = (1 - smoothing) * L + smoothing * L'.
// limit() is floor(L). Defaults are Netflix's (alpha 3, beta 6, smoothing 1, probe 30, max 1000).
//
// Edge input: a sample with rtt <= 0 carries no delay information; it is ignored unless it is a
// drop, which still decreases the limit (a zero-time rejection is an overload signal). A `now`
// earlier than one already seen is treated as the latest seen (Vegas itself counts samples, not
// time). Thread-safety: see AdaptiveLimit.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "resilience/adaptive_limit.h"
#include "resilience/clock.h"

namespace sluice::resilience {

class VegasLimit final : public AdaptiveLimit {
 public:
  struct Settings {
    std::size_t initial_limit = 20;     // in [min_limit, max_limit]
    std::size_t min_limit = 1;          // >= 1
    std::size_t max_limit = 1000;       // in [min_limit, kMaxLimit]
    double smoothing = 1.0;             // in (0, 1]
    double alpha_factor = 3;            // > 0: alpha = alpha_factor * f(L)
    double beta_factor = 6;             // >= alpha_factor: beta = beta_factor * f(L)
    std::size_t probe_multiplier = 30;  // 0 disables baseline probing
    std::uint64_t seed = 0x5eed;        // probe jitter PRNG seed (fixed => reproducible)
  };

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Precondition: validate(settings) is nullopt (otherwise values are clamped into range).
  explicit VegasLimit(const Settings& settings) noexcept;

  [[nodiscard]] std::size_t limit() const noexcept override {
    return limit_.load(std::memory_order_relaxed);
  }
  void onSample(TimePoint now, Duration rtt, std::size_t inflight, bool dropped) noexcept override;

  // f(L) from the header comment, for floor(L) = `limit`.
  [[nodiscard]] static double log10Root(std::size_t limit) noexcept;

  // Diagnostics, safe from any thread: the unrounded estimate and the no-load RTT baseline
  // (zero before the first sample).
  [[nodiscard]] double estimate() const noexcept {
    return estimate_snapshot_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] Duration rttNoLoad() const noexcept {
    return Duration(rtt_noload_snapshot_.load(std::memory_order_relaxed));
  }

 private:
  void decrease() noexcept;
  void setEstimate(double target) noexcept;
  void resetProbe() noexcept;

  Settings settings_;
  std::atomic<std::size_t> limit_;
  std::atomic<double> estimate_snapshot_;
  std::atomic<std::int64_t> rtt_noload_snapshot_{0};

  // Single-writer state, touched only by onSample().
  double estimate_;
  Duration rtt_noload_ = Duration::zero();  // zero = no baseline yet
  std::mt19937_64 rng_;
  double probe_jitter_ = 1.0;
  std::size_t samples_since_probe_ = 0;
};

}  // namespace sluice::resilience
