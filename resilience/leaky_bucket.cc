#include "resilience/leaky_bucket.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

namespace sluice::resilience {
namespace {

// GCC/Clang extension (64-bit targets): exact products of counts and intervals.
__extension__ typedef __int128 Int128;  // NOLINT(modernize-use-using): __extension__ needs typedef

// Named apart from gcra.cc's equal constants: a unity batch can hold both files.
constexpr std::int64_t kBucketSaturatedNs = std::int64_t{1} << 62;
constexpr std::int64_t kBucketInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();
// tat_ns_ while setSettings rewrites the parameters; stored TATs saturate one below it.
constexpr std::int64_t kLocked = kBucketInt64Max;
constexpr std::int64_t kMaxTat = kBucketInt64Max - 1;

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
  if (ns >= static_cast<double>(kBucketSaturatedNs)) {
    return kBucketSaturatedNs;
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
  return product >= kBucketSaturatedNs ? kBucketSaturatedNs : static_cast<std::int64_t>(product);
}

std::int64_t clampToInt64(Int128 v) {
  return static_cast<std::int64_t>(std::clamp<Int128>(v, kInt64Min, kBucketInt64Max));
}

std::int64_t clampTat(Int128 v) {
  return static_cast<std::int64_t>(std::clamp<Int128>(v, kInt64Min, kMaxTat));
}

// A TAT 1 ns away from `tat` (up if `up` and there is room), never kLocked.
std::int64_t stepOff(std::int64_t tat, bool up) {
  if (up && tat < kMaxTat) {
    return tat + 1;
  }
  return tat > kInt64Min ? tat - 1 : tat + 1;
}

std::int64_t delayNs(const LeakyBucket::Settings& s, std::int64_t interval_ns) {
  return s.nodelay ? kBucketInt64Max : times(s.delay, interval_ns);
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
    : tat_ns_(kInt64Min), settings_(coerce(settings)) {
  const std::int64_t interval = intervalNs(settings_.rate_per_second);
  interval_ns_.store(interval, std::memory_order_relaxed);
  tolerance_ns_.store(times(settings_.burst, interval), std::memory_order_relaxed);
  delay_ns_.store(delayNs(settings_, interval), std::memory_order_relaxed);
}

// Consistency with setSettings, which parks the TAT at kLocked, bumps gen_, rewrites the
// parameters and stores the converted TAT: readers read gen_, then the TAT (waiting while it is
// parked), then the parameters, and re-read gen_ before using what they computed. The same gen_
// proves that the parameters belong to the TAT read. What is left is an ABA: a whole setSettings
// between that re-read and the compare-and-swap that leaves the TAT where it was. setSettings
// moves the TAT off its old value whenever the interval changes (by 1 ns if need be), so this
// needs an unchanged interval, and then the compare-and-swap stores what the new parameters
// would have stored too: the request was just decided under the old burst and delay, as if it
// had come before the change.
std::int64_t LeakyBucket::loadUnlocked() const {
  for (int spins = 0;; ++spins) {
    const std::int64_t tat = tat_ns_.load(std::memory_order_acquire);
    if (tat != kLocked) {
      return tat;
    }
    // setSettings holds the TAT for tens of ns; yield if it was descheduled meanwhile.
    if (spins >= 64) {
      std::this_thread::yield();
    }
  }
}

LeakyBucket::Params LeakyBucket::loadParams() const {
  // Acquire, paired with setSettings' release stores: a reader that sees a new parameter also
  // sees the gen_ bump made before it, so its re-read of gen_ fails.
  return {interval_ns_.load(std::memory_order_acquire),
          tolerance_ns_.load(std::memory_order_acquire), delay_ns_.load(std::memory_order_acquire)};
}

bool LeakyBucket::unchanged(std::uint64_t gen) const {
  return gen_.load(std::memory_order_acquire) == gen;
}

LeakyBucket::Result LeakyBucket::tryAcquire(TimePoint now) {
  const std::int64_t t = now.time_since_epoch().count();
  for (;;) {
    const std::uint64_t gen = gen_.load(std::memory_order_acquire);
    std::int64_t tat = loadUnlocked();
    const Params p = loadParams();
    // Retry with the same parameters while only other acquirers move the TAT.
    while (tat != kLocked) {
      // Excess before this request, as time: x = max(0, TAT - t) (nginx: e * T).
      const Int128 x = std::max<Int128>(0, Int128{tat} - t);
      if (x > p.tolerance_ns) {
        if (!unchanged(gen)) {
          break;
        }
        return {Decision::Reject, Duration{clampToInt64(x - p.tolerance_ns)}};
      }
      const std::int64_t next = clampTat(Int128{std::max(tat, t)} + p.interval_ns);
      if (!unchanged(gen)) {
        break;
      }
      if (tat_ns_.compare_exchange_weak(tat, next, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
        if (x > p.delay_ns) {
          return {Decision::Delay, Duration{clampToInt64(x - p.delay_ns)}};
        }
        return {Decision::Allow, Duration::zero()};
      }
    }
  }
}

double LeakyBucket::excess(TimePoint now) const {
  for (;;) {
    const std::uint64_t gen = gen_.load(std::memory_order_acquire);
    const std::int64_t tat = loadUnlocked();
    const std::int64_t interval = loadParams().interval_ns;
    if (unchanged(gen)) {
      const Int128 x = std::max<Int128>(0, Int128{tat} - now.time_since_epoch().count());
      return static_cast<double>(x) / static_cast<double>(interval);
    }
  }
}

void LeakyBucket::setSettings(const Settings& settings, TimePoint now) {
  const Settings s = coerce(settings);
  const std::int64_t interval = intervalNs(s.rate_per_second);
  const Params next_params{interval, times(s.burst, interval), delayNs(s, interval)};
  const std::lock_guard lock(mu_);
  settings_ = s;
  // Only setSettings writes the parameters, under mu_: this read is stable.
  const Params old = loadParams();
  if (next_params.interval_ns == old.interval_ns && next_params.tolerance_ns == old.tolerance_ns &&
      next_params.delay_ns == old.delay_ns) {
    return;  // no request can tell (a reload that left this bucket as it was)
  }
  // Only setSettings parks the TAT, and it holds mu_: the loaded value is never kLocked.
  std::int64_t tat = tat_ns_.load(std::memory_order_relaxed);
  while (!tat_ns_.compare_exchange_weak(tat, kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
  }
  gen_.store(gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  const std::int64_t t = now.time_since_epoch().count();
  const Int128 x = std::max<Int128>(0, Int128{tat} - t);  // excess at `now`, old interval
  std::int64_t next = 0;
  if (x == 0) {
    // No excess: any TAT <= t is equivalent from `now` on; step off the old one by 1 ns so that
    // an acquirer that read it cannot commit (see loadUnlocked).
    next = stepOff(tat, tat < t);
  } else {
    // The same number of requests in new intervals, rounded up, capped at burst + 1 of them.
    const Int128 scaled = (x * interval + old.interval_ns - 1) / old.interval_ns;
    next =
        clampTat(Int128{t} + std::min<Int128>(scaled, Int128{next_params.tolerance_ns} + interval));
    if (next == tat && interval != old.interval_ns) {
      // A coincidence of rounding. Down: TATs and thresholds are mostly whole intervals apart,
      // and 1 ns less keeps the comparisons at those boundaries as they were.
      next = stepOff(tat, false);
    }
  }
  interval_ns_.store(next_params.interval_ns, std::memory_order_release);
  tolerance_ns_.store(next_params.tolerance_ns, std::memory_order_release);
  delay_ns_.store(next_params.delay_ns, std::memory_order_release);
  // Release: an acquirer that reads the new TAT reads the new parameters too.
  tat_ns_.store(next, std::memory_order_release);
}

LeakyBucket::Settings LeakyBucket::settings() const {
  const std::lock_guard lock(mu_);
  return settings_;
}

}  // namespace sluice::resilience
