// AimdLimit: a loss-based adaptive concurrency limit - additive increase while requests succeed
// and the limit is being used, multiplicative decrease on a drop or a timeout (the TCP Reno idea
// applied to request concurrency, as in Netflix concurrency-limits' AIMDLimit).
//
//   AimdLimit limit({.initial_limit = 20, .min_limit = 2, .max_limit = 500,
//                    .backoff_ratio = 0.9, .timeout = std::chrono::seconds(2)});
//   AdaptiveConcurrencyLimiter limiter(std::make_unique<AimdLimit>(limit_settings));
//
// Rules, applied by onSample(now, rtt, inflight, dropped) to the current limit L:
//   * Drop: `dropped`, or rtt > timeout (strictly greater; rtt == timeout is not a drop):
//       L' = max(min_limit, min(L - 1, floor(L * backoff_ratio)))
//     so every decrease removes at least one slot (the `L - 1` term) and never goes below
//     min_limit. If backoff_cooldown > 0, a drop that arrives less than backoff_cooldown after the
//     previous decrease is ignored (now - last_decrease < cooldown; == cooldown decreases again):
//     one overload episode usually produces a burst of timeouts, and reacting to each would
//     collapse the limit to min_limit (TCP likewise decreases once per window).
//   * Success with inflight * 2 >= L (the caller used at least half of the limit):
//       L' = min(max_limit, L + increase)
//   * Success with inflight * 2 < L: unchanged (app-limited: no evidence that more would work).
// Defaults mirror Netflix AIMDLimit (backoff 0.9, timeout 5 s, +1 per qualifying success).
//
// Thread-safety: see AdaptiveLimit - limit() from any thread, onSample() serialized by the caller.
// Time going backwards (a `now` before one already seen) is treated as the latest time seen.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "resilience/adaptive_limit.h"
#include "resilience/clock.h"

namespace sluice::resilience {

class AimdLimit final : public AdaptiveLimit {
 public:
  struct Settings {
    std::size_t initial_limit = 20;  // in [min_limit, max_limit]
    std::size_t min_limit = 1;       // >= 1: a limit of 0 would never admit and never recover
    std::size_t max_limit = 200;     // in [min_limit, kMaxLimit]
    double backoff_ratio = 0.9;      // in [0.5, 1), as in Netflix AIMDLimit
    std::size_t increase = 1;        // slots added per qualifying success, >= 1
    Duration timeout = std::chrono::seconds(5);    // rtt above this is a drop; > 0
    Duration backoff_cooldown = Duration::zero();  // >= 0; 0 = react to every drop
  };

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Precondition: validate(settings) is nullopt (otherwise values are clamped into range, so the
  // object is still usable, but not as configured).
  explicit AimdLimit(const Settings& settings) noexcept;

  [[nodiscard]] std::size_t limit() const noexcept override {
    return limit_.load(std::memory_order_relaxed);
  }
  void onSample(TimePoint now, Duration rtt, std::size_t inflight, bool dropped) noexcept override;

 private:
  Settings settings_;
  std::atomic<std::size_t> limit_;
  std::size_t current_;  // single writer (onSample); limit_ publishes it
  std::optional<TimePoint> last_decrease_;
  TimePoint latest_{};
};

}  // namespace sluice::resilience
