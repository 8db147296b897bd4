// Backoff: how long to wait before retry number n, with jitter so that clients that failed
// together do not retry together.
//
// Formulas from Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog (2015),
// generalised to any growth multiplier m (the article uses m = 2). With attempt n = 0 for the
// first retry, `base`, `cap`, and a uniform random u in [0, 1) passed in by the caller:
//
//   exponential(n)  = min(cap, base * m^n)
//   Jitter::None          sleep = exponential(n)
//   Jitter::Full          sleep = u * exponential(n)                       in [0, exponential(n))
//   Jitter::Equal         sleep = exponential(n) / 2 + u * exponential(n) / 2
//   Jitter::Decorrelated  sleep = min(cap, base + u * (3 * previous - base)), previous starts at
//                         base (the article's "random_between(base, sleep * 3)"; the factor 3 is
//                         the article's and is fixed; `multiplier` does not apply)
//   Jitter::Symmetric     sleep = min(cap, g * (1 - f) + u * 2 * f * g),  g = base * m^n uncapped,
//                         f = randomization_factor: uniform in [g(1-f), g(1+f)), then capped
//                         (the open end can be reached by rounding in double when u is within
//                         2^-52 of 1)
//
// Jitter::Symmetric is Resilience4j's IntervalFunction.ofRandomized / ofExponentialRandomBackoff
// ("interval +/- randomizationFactor * interval"; its defaults are base 500 ms, multiplier 1.5,
// factor 0.5). The order is Resilience4j's (resilience4j-core IntervalFunction.java): the
// exponential is randomized first and the cap (its maxInterval) applied to the randomized value,
// so a delay never exceeds cap (this header's promise for every mode), and once
// g * (1 - f) >= cap every draw is exactly cap: the jitter vanishes at saturation. Capping before
// randomizing (Google's and cenkalti/backoff's ExponentialBackOff) would keep the spread there but
// return up to cap * (1 + f); if jitter at the cap matters more than the bound, use Full or Equal
// jitter, or a cap of the wanted ceiling / (1 + f) and Jitter::Symmetric below it. Differences
// from Resilience4j: the exponential is kept in double nanoseconds (Resilience4j truncates to
// whole milliseconds at every step: 500, 750, 1125, 1687, 2530 ms where this gives 1687.5 and
// 2531.25 ms), the result is rounded down to whole nanoseconds (Resilience4j: milliseconds), and
// the randomization is min + u * (max - min) with u in [0, 1) (Resilience4j 1.x added 1 ms to the
// range, `min + random * (max - min + 1)`; later versions dropped it).
//
// Full jitter spreads retries best and is the default; decorrelated jitter grows less
// predictably and suits long retry chains. Randomness is a parameter: pass `u` (tests pass fixed
// values) or any UniformRandomBitGenerator.
//
//   Backoff backoff(Backoff::Settings{.base = 100ms, .cap = 10s});
//   std::mt19937_64 rng(seed);
//   for (int attempt = 0; attempt < 5 && !ok; ++attempt) {
//     ok = call();
//     if (!ok) sleep_until(now + backoff.next(rng));
//   }
//
// Edge input: u outside [0, 1) (including NaN) is clamped into it; huge n or m saturate at
// `cap` (computed in double, never overflowing). Results are always in [0, cap] and, for
// Jitter::Decorrelated, in [min(base, cap), cap]. A randomization_factor outside [0, 1] is
// clamped into it (NaN counts as 0: no jitter); factor 0 is Jitter::None, factor 1 draws from
// [0, 2g) (the mean stays g, unlike Full jitter's g/2).
//
// Thread-safety: none; one Backoff per operation (it is a few words; copy it from a template).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>

#include "resilience/clock.h"

namespace sluice::resilience {

enum class Jitter : std::uint8_t { None, Full, Equal, Decorrelated, Symmetric };

class Backoff {
 public:
  struct Settings {
    Duration base = std::chrono::milliseconds(100);  // first delay (before jitter)
    Duration cap = std::chrono::seconds(10);         // no delay is ever longer
    double multiplier = 2.0;                         // growth per attempt (not for Decorrelated)
    Jitter jitter = Jitter::Full;
    // Jitter::Symmetric only: the delay is drawn from [g(1-f), g(1+f)); in [0, 1].
    double randomization_factor = 0.5;
  };

  // Explains what is wrong, or nullopt: base > 0, cap >= base, multiplier >= 1 and finite,
  // randomization_factor in [0, 1] (as Resilience4j's checkRandomizationFactor).
  [[nodiscard]] static std::optional<std::string> validate(const Settings& s) {
    if (s.base <= Duration::zero()) {
      return "base must be positive";
    }
    if (s.cap < s.base) {
      return "cap must be at least base";
    }
    if (!std::isfinite(s.multiplier) || s.multiplier < 1.0) {
      return "multiplier must be finite and at least 1";
    }
    if (!(s.randomization_factor >= 0.0 && s.randomization_factor <= 1.0)) {
      return "randomization_factor must be in [0, 1]";
    }
    return std::nullopt;
  }

  // Pass settings accepted by validate(); others are used as given, with results still clamped
  // to [0, cap].
  explicit Backoff(const Settings& settings) noexcept
      : settings_(settings), previous_(settings.base) {}

  // The delay before the next retry; advances the attempt counter. `u` is a uniform random
  // number in [0, 1) (ignored by Jitter::None).
  [[nodiscard]] Duration next(double u) noexcept {
    const Duration delay = delayFor(attempts_, previous_, u);
    previous_ = delay;
    if (attempts_ < std::numeric_limits<std::uint32_t>::max()) {
      ++attempts_;
    }
    return delay;
  }

  // Same, drawing u from `rng` (any UniformRandomBitGenerator, e.g. std::mt19937_64).
  template <typename Urbg>
  [[nodiscard]] Duration next(Urbg& rng) {
    return next(std::generate_canonical<double, 53>(rng));
  }

  // The delay next(u) would return, without advancing.
  [[nodiscard]] Duration peek(double u) const noexcept { return delayFor(attempts_, previous_, u); }

  // Back to the first attempt (e.g. after a success).
  void reset() noexcept {
    attempts_ = 0;
    previous_ = settings_.base;
  }

  // Number of delays handed out since construction or reset().
  [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }

  [[nodiscard]] const Settings& settings() const noexcept { return settings_; }

  // The formula above as a pure function: the delay before retry `attempt` (0-based) given the
  // previous delay (used only by Jitter::Decorrelated).
  [[nodiscard]] static Duration delay(const Settings& s, std::uint32_t attempt, Duration previous,
                                      double u) noexcept {
    const double cap = std::max(0.0, nanos(s.cap));
    const double base = std::clamp(nanos(s.base), 0.0, cap);
    u = clampUnit(u);
    double result = 0;
    switch (s.jitter) {
      case Jitter::None:
        result = exponential(s, attempt);
        break;
      case Jitter::Full:
        result = u * exponential(s, attempt);
        break;
      case Jitter::Equal: {
        const double e = exponential(s, attempt);
        result = e / 2 + u * (e / 2);
        break;
      }
      case Jitter::Decorrelated: {
        const double upper = std::max(3.0 * nanos(previous), base);
        result = std::min(cap, base + u * (upper - base));
        break;
      }
      case Jitter::Symmetric: {
        const double f = clampFactor(s.randomization_factor);
        const double g = uncappedExponential(s, attempt);
        result = std::min(cap, (g - f * g) + u * (2.0 * f * g));
        break;
      }
    }
    return fromNanos(std::clamp(result, 0.0, cap));
  }

 private:
  [[nodiscard]] Duration delayFor(std::uint32_t attempt, Duration previous,
                                  double u) const noexcept {
    return delay(settings_, attempt, previous, u);
  }

  static double nanos(Duration d) noexcept { return static_cast<double>(d.count()); }

  // Rounds down. Callers have clamped to [0, cap]; a cap near Duration::max() can still round up
  // to 2^63 in double, which must not reach the (then undefined) integer conversion.
  static Duration fromNanos(double ns) noexcept {
    constexpr double kTwoTo63 = 0x1.0p63;
    if (ns >= kTwoTo63) {
      return Duration::max();
    }
    return Duration{static_cast<Duration::rep>(ns)};
  }

  static double clampUnit(double u) noexcept {
    constexpr double kBelowOne = 1.0 - 0x1.0p-53;  // largest double below 1
    if (!(u >= 0.0)) {
      return 0.0;  // also catches NaN
    }
    return std::min(u, kBelowOne);
  }

  static double clampFactor(double f) noexcept {
    if (!(f >= 0.0)) {
      return 0.0;  // also catches NaN
    }
    return std::min(f, 1.0);
  }

  // base * m^n before the cap, held below 2^1000 so that g * (1 - f) and 2 * f * g stay finite
  // (inf * 0 would be NaN at f = 1); every cap is below 2^63, so the bound changes no result.
  static double uncappedExponential(const Settings& s, std::uint32_t attempt) noexcept {
    constexpr double kHuge = 0x1.0p1000;
    const double grown = std::max(0.0, nanos(s.base)) *
                         std::pow(std::max(s.multiplier, 1.0), static_cast<double>(attempt));
    return std::isnan(grown) ? kHuge : std::min(grown, kHuge);
  }

  // min(cap, base * m^n) in double; pow saturates to +inf, which min() turns into cap.
  static double exponential(const Settings& s, std::uint32_t attempt) noexcept {
    const double cap = std::max(0.0, nanos(s.cap));
    const double grown =
        nanos(s.base) * std::pow(std::max(s.multiplier, 1.0), static_cast<double>(attempt));
    return std::isnan(grown) ? cap : std::min(cap, grown);
  }

  Settings settings_;
  std::uint32_t attempts_ = 0;
  Duration previous_;
};

}  // namespace sluice::resilience
