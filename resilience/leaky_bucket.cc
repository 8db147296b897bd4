#include "resilience/leaky_bucket.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sluice::resilience {
namespace {

// GCC/Clang extension (64-bit targets): exact products of counts and intervals.
__extension__ typedef __int128 Int128;  // NOLINT(modernize-use-using): __extension__ needs typedef

constexpr std::int64_t kSaturatedNs = std::int64_t{1} << 62;
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();

LeakyBucket::Settings coerce(LeakyBucket::Settings s) {
  if (std::isnan(s.rate_per_second) || s.rate_per_second < LeakyBucket::kMinRate) {
    s.rate_per_second = LeakyBucket::kMinRate;
  } else if (s.rate_per_second > LeakyBucket::kMaxRate) {
    s.rate_per_second = LeakyBucket::kMaxRate;
  }
  if (s.nodelay) {
    s.delay = 0;
  }
  return s;
}

// The smallest whole T (ns) with T * rate >= 1e9, in [1, 2^62]: rounding the interval up keeps
// the limiter conservative. The quotient is rounded, so the neighbour below is checked with an
// exact residual (fma) instead of trusting ceil().
std::int64_t intervalNs(double rate) {
  double ns = std::ceil(1e9 / rate);
  if (ns >= static_cast<double>(kSaturatedNs)) {
    return kSaturatedNs;
  }
  if (ns > 1.0 && std::fma(ns - 1.0, rate, -1e9) >= 0.0) {
    ns -= 1.0;
  } else if (std::fma(ns, rate, -1e9) < 0.0) {
    ns += 1.0;
  }
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(ns));
}

std::int64_t times(std::uint64_t count, std::int64_t interval_ns) {
  const Int128 product = Int128{count} * interval_ns;
  return product >= kSaturatedNs ? kSaturatedNs : static_cast<std::int64_t>(product);
}

std::int64_t clampToInt64(Int128 v) {
  return static_cast<std::int64_t>(std::clamp<Int128>(v, kInt64Min, kInt64Max));
}

}  // namespace

std::optional<std::string> LeakyBucket::validate(const Settings& settings) {
  const double r = settings.rate_per_second;
  if (std::isnan(r)) {
    return "rate_per_second is NaN";
  }
  if (r < kMinRate || r > kMaxRate) {
    return "rate_per_second must be in [1e-9, 1e9], got " + std::to_string(r);
  }
  if (settings.nodelay && settings.delay > 0) {
    return "nodelay and delay (" + std::to_string(settings.delay) + ") are mutually exclusive";
  }
  return std::nullopt;
}

LeakyBucket::LeakyBucket(const Settings& settings)
    : settings_(coerce(settings)),
      interval_ns_(intervalNs(settings_.rate_per_second)),
      tolerance_ns_(times(settings_.burst, interval_ns_)),
      delay_ns_(settings_.nodelay ? kInt64Max : times(settings_.delay, interval_ns_)),
      tat_ns_(kInt64Min) {}

LeakyBucket::Result LeakyBucket::tryAcquire(TimePoint now) {
  const std::int64_t t = now.time_since_epoch().count();
  std::int64_t tat = tat_ns_.load(std::memory_order_acquire);
  for (;;) {
    // Excess before this request, as time: x = max(0, TAT - t) (nginx: e * T).
    const Int128 x = std::max<Int128>(0, Int128{tat} - t);
    if (x > tolerance_ns_) {
      return {Decision::Reject, Duration{clampToInt64(x - tolerance_ns_)}};
    }
    const std::int64_t next = clampToInt64(Int128{std::max(tat, t)} + interval_ns_);
    if (tat_ns_.compare_exchange_weak(tat, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      if (x > delay_ns_) {
        return {Decision::Delay, Duration{clampToInt64(x - delay_ns_)}};
      }
      return {Decision::Allow, Duration::zero()};
    }
  }
}

double LeakyBucket::excess(TimePoint now) const {
  const std::int64_t tat = tat_ns_.load(std::memory_order_acquire);
  const Int128 x = std::max<Int128>(0, Int128{tat} - now.time_since_epoch().count());
  return static_cast<double>(x) / static_cast<double>(interval_ns_);
}

}  // namespace sluice::resilience
