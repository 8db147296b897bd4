#include "resilience/token_bucket.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <utility>

namespace sluice::resilience {
namespace {

// GCC/Clang extension (64-bit targets): exact intermediates for unit conversions off the hot path.
__extension__ typedef __int128 Int128;  // NOLINT(modernize-use-using): __extension__ needs typedef

constexpr std::uint64_t kGenTagBits = 8;
constexpr std::uint64_t kGenTagMask = (std::uint64_t{1} << kGenTagBits) - 1;
// A word value no generation can produce (tags cycle through 0..254).
constexpr std::uint64_t kWordLocked = ~std::uint64_t{0};
constexpr std::uint64_t kGenTagCount = kGenTagMask;  // 255

// Bounds that keep every intermediate inside int64 and E inside the 56 bits of the word:
// |now_u| <= 2^53 (else rebase), burst_units < 2^53, debt <= 2^54, so |E| < 2^55.
constexpr std::int64_t kRebaseUnits = std::int64_t{1} << 53;
constexpr std::int64_t kMaxDebtUnits = std::int64_t{1} << 54;
constexpr double kTargetUnitsPerToken = 0x1p30;
constexpr double kMaxBurstUnits = 0x1p52;
constexpr double kMaxDebtForUnits = 0x1p53;  // existing debt must fit with room to spare
constexpr std::int32_t kMinShift = -62;
constexpr std::int32_t kMaxShift = 32;

constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMinInt64 = std::numeric_limits<std::int64_t>::min();

std::uint64_t pack(std::int64_t e, std::uint64_t tag) {
  return (static_cast<std::uint64_t>(e) << kGenTagBits) | tag;
}
std::int64_t unpack(std::uint64_t word) {
  return static_cast<std::int64_t>(word) >> kGenTagBits;  // arithmetic shift: sign-extends
}
std::uint64_t genTag(std::uint64_t gen) { return gen % kGenTagCount; }

std::int64_t saturateToInt64(Int128 v) {
  if (v > kMaxInt64) {
    return kMaxInt64;
  }
  if (v < kMinInt64) {
    return kMinInt64;
  }
  return static_cast<std::int64_t>(v);
}

// ns -> units, floor, without overflow (2^62 ns * 2^32 < 2^127).
Int128 unitsOf(Int128 rel_ns, std::int32_t shift) {
  if (shift >= 0) {
    return rel_ns * (Int128{1} << shift);
  }
  return rel_ns >> -shift;  // arithmetic shift: floor
}

Int128 unitsOfCeil(Int128 rel_ns, std::int32_t shift) {
  const Int128 u = unitsOf(rel_ns, shift);
  return shift < 0 && (rel_ns & ((Int128{1} << -shift) - 1)) != 0 ? u + 1 : u;
}

// units -> ns, rounded up (a wait must not end early) or down.
Int128 nsOfCeil(Int128 units, std::int32_t shift) {
  if (shift >= 0) {
    const Int128 scale = Int128{1} << shift;
    return units >= 0 ? (units + scale - 1) / scale : -((-units) / scale);
  }
  return units * (Int128{1} << -shift);
}
Int128 nsOfFloor(Int128 units, std::int32_t shift) {
  if (shift >= 0) {
    return units >> shift;
  }
  return units * (Int128{1} << -shift);
}

TimePoint addSaturating(TimePoint t, Int128 ns) {
  return TimePoint{Duration{saturateToInt64(Int128{t.time_since_epoch().count()} + ns)}};
}

struct Units {
  std::int32_t shift = 0;
  std::int64_t unit_per_token = 1;
  std::int64_t burst_units = 0;
  std::int64_t max_rel_ns = 0;
};

// Picks the fixed-point scale for (rate, burst): about 2^30 units per token for precision, fewer
// if burst*T or the existing debt would not fit the word. Frozen and unlimited buckets do not
// convert time at all, so only the token size matters for them.
Units chooseUnits(double rate, std::uint64_t burst, double debt_tokens, bool finite) {
  const double target =
      std::min({kTargetUnitsPerToken, kMaxBurstUnits / std::max(1.0, static_cast<double>(burst)),
                kMaxDebtForUnits / std::max(1.0, debt_tokens)});
  Units u;
  if (!finite) {
    u.unit_per_token = std::max<std::int64_t>(1, static_cast<std::int64_t>(target));
    u.burst_units = static_cast<std::int64_t>(burst) * u.unit_per_token;
    u.max_rel_ns = kMaxInt64;
    return u;
  }
  const double ns_per_token = 1e9 / rate;
  u.shift = std::clamp(static_cast<std::int32_t>(std::ilogb(target / ns_per_token)), kMinShift,
                       kMaxShift);
  // Slow rates would get units coarser than a ns. Keep whole ns while burst (and any existing
  // debt) still fit, so that time is never rounded: a unit coarser than a ns forces a choice
  // between admitting up to one unit early and refusing the last token of a full burst taken
  // between two units (this class refuses it; see "Precision").
  const double ns_units = std::ceil(ns_per_token);
  if (u.shift < 0 && ns_units * std::max(1.0, static_cast<double>(burst)) < kMaxBurstUnits &&
      ns_units * std::max(1.0, debt_tokens) < kMaxDebtForUnits) {
    u.shift = 0;
  }
  // unit_per_token = ceil(1e9 * 2^shift / rate), checked with an exact residual: rounding the
  // token cost up (never down) is what makes the limiter conservative.
  const double scaled = std::ldexp(1e9, u.shift);
  double upt = std::ceil(scaled / rate);
  if (std::fma(upt, rate, -scaled) < 0.0) {
    upt += 1.0;
  }
  u.unit_per_token = std::max<std::int64_t>(1, static_cast<std::int64_t>(upt));
  u.burst_units = static_cast<std::int64_t>(burst) * u.unit_per_token;
  if (u.shift >= 0) {
    u.max_rel_ns = kRebaseUnits >> u.shift;
  } else {
    u.max_rel_ns = saturateToInt64(Int128{kRebaseUnits} << -u.shift);
  }
  return u;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reservation

TokenBucket::Reservation::Reservation(Reservation&& other) noexcept
    : bucket_(std::exchange(other.bucket_, nullptr)),
      ok_(std::exchange(other.ok_, false)),
      tokens_(std::exchange(other.tokens_, 0)),
      time_to_act_(other.time_to_act_),
      gen_(other.gen_),
      rate_(other.rate_),
      act_units_(other.act_units_),
      act_floor_(other.act_floor_) {}

TokenBucket::Reservation& TokenBucket::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    bucket_ = std::exchange(other.bucket_, nullptr);
    ok_ = std::exchange(other.ok_, false);
    tokens_ = std::exchange(other.tokens_, 0);
    time_to_act_ = other.time_to_act_;
    gen_ = other.gen_;
    rate_ = other.rate_;
    act_units_ = other.act_units_;
    act_floor_ = other.act_floor_;
  }
  return *this;
}

Duration TokenBucket::Reservation::delay(TimePoint now) const {
  if (!ok_) {
    return Duration::max();
  }
  if (time_to_act_ <= now) {
    return Duration::zero();
  }
  return Duration{saturateToInt64(Int128{time_to_act_.time_since_epoch().count()} -
                                  now.time_since_epoch().count())};
}

double TokenBucket::Reservation::cancel(TimePoint now) {
  TokenBucket* bucket = std::exchange(bucket_, nullptr);
  if (bucket == nullptr) {
    return 0.0;
  }
  return bucket->cancelReservation(*this, now);
}

// ---------------------------------------------------------------------------------------------
// TokenBucket

TokenBucket::Settings TokenBucket::coerced(Settings s) {
  if (std::isnan(s.rate_per_second) || s.rate_per_second < 0.0) {
    s.rate_per_second = 0.0;
  } else if (s.rate_per_second > 0.0 && s.rate_per_second < kMinRate) {
    s.rate_per_second = kMinRate;
  } else if (std::isfinite(s.rate_per_second) && s.rate_per_second > kMaxRate) {
    s.rate_per_second = kMaxRate;
  }
  s.burst = std::min(s.burst, kMaxBurst);
  return s;
}

std::optional<std::string> TokenBucket::validate(const Settings& settings) {
  const double r = settings.rate_per_second;
  if (std::isnan(r)) {
    return "rate_per_second is NaN";
  }
  if (r < 0.0) {
    return "rate_per_second must be >= 0 (0 = never refills), got " + std::to_string(r);
  }
  if (r > 0.0 && r < kMinRate) {
    return "rate_per_second must be 0 or >= 1e-12, got " + std::to_string(r);
  }
  if (std::isfinite(r) && r > kMaxRate) {
    return "rate_per_second must be <= 1e13 or +infinity (unlimited), got " + std::to_string(r);
  }
  if (settings.burst > kMaxBurst) {
    return "burst must be <= 1e12, got " + std::to_string(settings.burst);
  }
  if (settings.burst == 0 && std::isfinite(r)) {
    return "burst 0 with a finite rate admits nothing";
  }
  return std::nullopt;
}

TokenBucket::TokenBucket(const Settings& settings, TimePoint now) : word_(0) {
  const Settings s = coerced(settings);
  Params p;
  p.mode = s.rate_per_second == 0.0        ? Mode::Frozen
           : std::isinf(s.rate_per_second) ? Mode::Unlimited
                                           : Mode::Finite;
  const Units u = chooseUnits(s.rate_per_second, s.burst, 0.0, p.mode == Mode::Finite);
  p.origin_ns = now.time_since_epoch().count();
  p.shift = u.shift;
  p.unit_per_token = u.unit_per_token;
  p.burst_units = u.burst_units;
  p.max_rel_ns = u.max_rel_ns;
  p.burst = s.burst;
  p.rate = s.rate_per_second;
  p.gen = 0;
  storeParams(p);
  // Full at `now`: E = now - burst*T, i.e. -burst_units relative to the origin `now`.
  word_.store(pack(-p.burst_units, genTag(p.gen)), std::memory_order_release);
}

TokenBucket::Params TokenBucket::loadParams() const {
  // Acquire loads: none of them may be reordered after the caller's later re-read of word_,
  // which is what validates the snapshot (a seqlock reader without fences; see unchanged()).
  Params p;
  p.origin_ns = origin_ns_.load(std::memory_order_acquire);
  p.shift = shift_.load(std::memory_order_acquire);
  p.unit_per_token = unit_per_token_.load(std::memory_order_acquire);
  p.burst_units = burst_units_.load(std::memory_order_acquire);
  p.max_rel_ns = max_rel_ns_.load(std::memory_order_acquire);
  p.mode = mode_.load(std::memory_order_acquire);
  p.burst = burst_.load(std::memory_order_acquire);
  p.rate = rate_.load(std::memory_order_acquire);
  p.gen = gen_.load(std::memory_order_acquire);
  return p;
}

void TokenBucket::storeParams(const Params& p) {
  // Release, not relaxed: a reader that sees any new value must also see the kWordLocked written
  // before it, so its later re-read or compare-and-swap of the word fails instead of pairing new
  // parameters with the old word. (Free on x86; the word's release store publishes the rest.)
  origin_ns_.store(p.origin_ns, std::memory_order_release);
  shift_.store(p.shift, std::memory_order_release);
  unit_per_token_.store(p.unit_per_token, std::memory_order_release);
  burst_units_.store(p.burst_units, std::memory_order_release);
  max_rel_ns_.store(p.max_rel_ns, std::memory_order_release);
  mode_.store(p.mode, std::memory_order_release);
  burst_.store(p.burst, std::memory_order_release);
  rate_.store(p.rate, std::memory_order_release);
  gen_.store(p.gen, std::memory_order_release);
}

std::uint64_t TokenBucket::loadUnlocked() const {
  for (int spins = 0;; ++spins) {
    const std::uint64_t w = word_.load(std::memory_order_acquire);
    if (w != kWordLocked) {
      return w;
    }
    // A reconfigure holds the word for tens of ns; yield if it was descheduled meanwhile.
    if (spins >= 64) {
      std::this_thread::yield();
    }
  }
}

bool TokenBucket::unchanged(std::uint64_t word) const {
  // Parameters are written only while the word is kWordLocked, and every reconfigure moves the
  // word to a new generation tag, so an unchanged word proves the parameters read in between
  // belong to it. (An ABA needs 255 reconfigures between the two loads *and* the same E.)
  return word_.load(std::memory_order_acquire) == word;
}

// Inlined into every caller: out of line, its 16-byte result and the rounding flag cost the hot
// path ~2 ns per call (measured, docs/benchmarks.md "TokenBucket after the Go fixes").
[[gnu::always_inline]] inline TokenBucket::NowUnits TokenBucket::toUnits(TimePoint now,
                                                                         const Params& p) {
  NowUnits out;
  if (p.mode != Mode::Finite) {
    return out;  // frozen time: the bucket never refills
  }
  std::int64_t rel = 0;
  if (__builtin_sub_overflow(now.time_since_epoch().count(), p.origin_ns, &rel)) {
    rel = now.time_since_epoch().count() > p.origin_ns ? kMaxInt64 : kMinInt64;
  }
  if (rel > p.max_rel_ns) {
    out.rebase = true;
    return out;
  }
  if (rel < -p.max_rel_ns) {
    out.too_old = true;
    return out;
  }
  // |rel| <= max_rel_ns keeps |units| <= 2^53.
  if (p.shift >= 0) {
    out.units = rel * (std::int64_t{1} << p.shift);
  } else {
    out.units = rel >> -p.shift;  // arithmetic shift: floor
    out.inexact = (rel & ((std::int64_t{1} << -p.shift) - 1)) != 0;
  }
  return out;
}

// E before adding a take's cost: the bucket's own, or a full bucket's if it has refilled. A full
// bucket's E uses `now` rounded up: rounding down would store an E earlier than exact arithmetic
// and so admit later takes early.
std::int64_t TokenBucket::takeFrom(std::int64_t e, const NowUnits& t, const Params& p) {
  return std::max(e, t.ceil() - p.burst_units);
}

// Whether a take costing `cost` (<= burst_units) fits at t: E + cost <= now rounded down. This
// also admits a full bucket: E <= now - burst implies it.
bool TokenBucket::admits(std::int64_t e, std::int64_t cost, const NowUnits& t) {
  return e + cost <= t.units;
}

bool TokenBucket::tryAcquire(std::uint64_t n, TimePoint now) {
  if (n == 0) {
    return true;
  }
  for (;;) {
    std::uint64_t w = loadUnlocked();
    const Params p = loadParams();
    if (p.mode == Mode::Unlimited || n > p.burst) {
      // A decision that writes nothing is valid only if the parameters matched the word.
      if (unchanged(w)) {
        return p.mode == Mode::Unlimited;
      }
      continue;
    }
    const NowUnits t = toUnits(now, p);
    if (t.rebase) {
      reconfigure(std::nullopt, now);
      continue;
    }
    if (t.too_old) {
      if (unchanged(w)) {
        return false;
      }
      continue;
    }
    // n <= burst, so the cost is <= burst_units < 2^53: no overflow.
    const std::int64_t cost = static_cast<std::int64_t>(n) * p.unit_per_token;
    const std::uint64_t tag = w & kGenTagMask;
    const std::int64_t full_e = t.units - p.burst_units;  // E of a full bucket at `now`, floor
    // While the word keeps this generation's tag, the parameters read above still apply, so a
    // lost race retries with the value the failed compare-and-swap returned, without reloading.
    for (;;) {
      const std::int64_t e = unpack(w);
      // admits(): max(e, full_e) + cost <= now is e + cost <= now, as cost <= burst_units.
      std::int64_t next = std::max(e, full_e) + cost;
      if (next > t.units) {
        if (unchanged(w)) {
          return false;
        }
        break;
      }
      if (e <= full_e && t.inexact) {
        ++next;  // takeFrom(): a full bucket's E is recorded with `now` rounded up
      }
      if (word_.compare_exchange_weak(w, pack(next, tag), std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
        return true;
      }
      if ((w & kGenTagMask) != tag) {
        break;  // reconfigured (or kWordLocked): reload the parameters
      }
    }
  }
}

TokenBucket::Reservation TokenBucket::reserve(std::uint64_t n, TimePoint now, Duration max_wait) {
  max_wait = std::max(max_wait, Duration::zero());
  for (;;) {
    std::uint64_t w = loadUnlocked();
    const Params p = loadParams();
    Reservation r;
    r.tokens_ = n;
    if (p.mode == Mode::Unlimited || n == 0) {
      // Nothing is taken, so there is nothing to give back either.
      if (unchanged(w)) {
        r.ok_ = true;
        r.time_to_act_ = now;
        return r;
      }
      continue;
    }
    if (n <= p.burst) {
      const NowUnits t = toUnits(now, p);
      if (t.rebase) {
        reconfigure(std::nullopt, now);
        continue;
      }
      if (!t.too_old) {
        const std::int64_t cost = static_cast<std::int64_t>(n) * p.unit_per_token;
        const std::int64_t next = takeFrom(unpack(w), t, p) + cost;
        const bool now_ok = admits(unpack(w), cost, t);
        const std::int64_t wait_units = now_ok ? 0 : next - t.units;
        const bool possible =
            wait_units <= 0 || (p.mode == Mode::Finite && wait_units <= kMaxDebtUnits);
        // The wait from the exact `now` (not from its rounded-down unit) to the end of the
        // booking, rounded up to whole ns: a wait must not end early.
        const Int128 wait_ns = now_ok ? 0
                                      : nsOfCeil(next, p.shift) -
                                            (Int128{now.time_since_epoch().count()} - p.origin_ns);
        // Duration::max() means "any wait", even one longer than a Duration can hold.
        if (possible && (max_wait == Duration::max() || wait_ns <= Int128{max_wait.count()})) {
          if (word_.compare_exchange_weak(w, pack(next, w & kGenTagMask), std::memory_order_acq_rel,
                                          std::memory_order_relaxed)) {
            r.bucket_ = this;
            r.ok_ = true;
            r.time_to_act_ = addSaturating(now, wait_ns);
            r.gen_ = p.gen;
            r.rate_ = p.rate;
            // Go's timeToAct: the end of the booking, or `now` if it was available at once.
            r.act_units_ = now_ok ? t.ceil() : next;
            r.act_floor_ = now_ok ? now
                                  : TimePoint{Duration{saturateToInt64(Int128{p.origin_ns} +
                                                                       nsOfFloor(next, p.shift))}};
            return r;
          }
          continue;
        }
      }
    }
    if (unchanged(w)) {
      r.tokens_ = 0;
      return r;  // !ok
    }
  }
}

// Tokens booked after reservation r keep their places: Go counts them as the time from r's
// timeToAct to the latest booking's (lastEvent), at the rate r was made at. If r was itself the
// latest booking, the latest becomes the time r's booking began (Go's prevEvent) unless that is
// already past. Both functions return the booked-after amount in today's units (negative when
// the latest booking is earlier than r's time to act: Go then gives back more than r took)
// and the lastEvent to keep.
//
// The latest booking's time is the one kept by the last cancel or reconfigure if nothing was
// booked since (the word is unchanged), else the end of the latest booking, E. Counting never
// starts before `now`: where Go's lastEvent is in the past (an immediate take's own time, or a
// booking whose time has come while an earlier one, moved back by a rate increase, still
// waits) sluice counts from `now`, which gives back no more than Go would (token_bucket.h).
//
// While the parameters are those r was made under, all of it is exact in units.
TokenBucket::Finding TokenBucket::bookedAfterSameUnits(const Reservation& r, const Params& p,
                                                       std::uint64_t w, const NowUnits& t,
                                                       Int128 cost) const {
  const bool kept = w == event_word_;
  const Int128 latest =
      kept ? unitsOfCeil(Int128{event_ns_} - p.origin_ns, p.shift) : Int128{unpack(w)};
  Finding f;
  f.after = std::max<Int128>(latest, t.ceil()) - r.act_units_;
  f.last_event_ns =
      kept ? event_ns_ : saturateToInt64(Int128{p.origin_ns} + nsOfCeil(latest, p.shift));
  // Within a ns: a lastEvent kept as a time has been rounded to whole ns.
  const Int128 one_ns = p.shift > 0 ? (Int128{1} << p.shift) : 1;
  if (f.after <= one_ns && f.after >= -one_ns) {
    f.after = 0;
    if (const Int128 prev = Int128{r.act_units_} - cost; prev >= t.ceil()) {
      f.last_event_ns = saturateToInt64(Int128{p.origin_ns} + nsOfCeil(prev, p.shift));
    }
  }
  return f;
}

// After a change of rate or burst (or a rebase) the units differ: work in ns, as Go does.
TokenBucket::Finding TokenBucket::bookedAfterChanged(const Reservation& r, const Params& p,
                                                     std::uint64_t w, TimePoint now) const {
  const Int128 latest_ns =
      w == event_word_ ? Int128{event_ns_} : Int128{p.origin_ns} + nsOfCeil(unpack(w), p.shift);
  const Int128 now_ns = now.time_since_epoch().count();
  const Int128 act_ns = r.act_floor_.time_since_epoch().count();
  const Int128 after_ns = std::max(latest_ns, now_ns) - act_ns;
  Finding f;
  f.last_event_ns = saturateToInt64(latest_ns);
  if (after_ns > 1 || after_ns < -1) {
    const double after_tokens = static_cast<double>(after_ns) * r.rate_ / 1e9;
    f.after = static_cast<Int128>(
        std::clamp(after_tokens * static_cast<double>(p.unit_per_token), -0x1p100, 0x1p100));
    return f;
  }
  const double span_ns = static_cast<double>(r.tokens_) / r.rate_ * 1e9;
  if (const Int128 prev_ns = act_ns - static_cast<Int128>(std::min(span_ns, 0x1p100));
      prev_ns >= now_ns) {
    f.last_event_ns = saturateToInt64(prev_ns);
  }
  return f;
}

double TokenBucket::cancelReservation(const Reservation& r, TimePoint now) {
  if (!r.ok_ || r.tokens_ == 0 || r.time_to_act_ < now) {
    return 0.0;  // Go: nothing to restore once the reservation's time has passed
  }
  // Go's lastEvent (event_*) is read and written under mu_; takes stay lock-free.
  const std::lock_guard lock(mu_);
  for (;;) {
    std::uint64_t w = word_.load(std::memory_order_acquire);  // never kWordLocked: we hold mu_
    const Params p = loadParams();  // stable: only reconfigure() writes them, under mu_
    if (p.mode == Mode::Unlimited) {
      return 0.0;
    }
    const NowUnits t = toUnits(now, p);
    if (t.rebase) {
      reconfigureLocked(std::nullopt, now);
      continue;
    }
    if (t.too_old) {
      return 0.0;
    }
    const std::int64_t e = unpack(w);
    const Int128 cost =
        Int128{static_cast<std::int64_t>(std::min(r.tokens_, kMaxBurst))} * p.unit_per_token;
    Int128 restore = cost;  // a frozen bucket cannot book anyone after this reservation
    std::int64_t last_event_ns = event_ns_;
    if (p.mode == Mode::Finite) {
      const Finding f = r.gen_ == p.gen ? bookedAfterSameUnits(r, p, w, t, cost)
                                        : bookedAfterChanged(r, p, w, now);
      restore = cost - f.after;
      last_event_ns = f.last_event_ns;
    }
    if (restore <= 0) {
      return 0.0;  // Go changes nothing, not even its latest booking
    }
    const std::int64_t full_e = t.ceil() - p.burst_units;  // rounded toward fewer tokens
    const std::int64_t base = std::max(e, full_e);
    const std::int64_t next =
        restore >= Int128{base} - full_e ? full_e : static_cast<std::int64_t>(base - restore);
    const std::uint64_t next_word = pack(next, w & kGenTagMask);
    if (word_.compare_exchange_strong(w, next_word, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
      event_word_ = next_word;
      event_ns_ = last_event_ns;
      return static_cast<double>(base - next) / static_cast<double>(p.unit_per_token);
    }
  }
}

void TokenBucket::setRate(double rate_per_second, TimePoint now) {
  Settings s = settings();
  s.rate_per_second = rate_per_second;
  reconfigure(s, now);
}

void TokenBucket::setBurst(std::uint64_t burst, TimePoint now) {
  Settings s = settings();
  s.burst = burst;
  reconfigure(s, now);
}

void TokenBucket::setSettings(const Settings& settings, TimePoint now) {
  reconfigure(settings, now);
}

TokenBucket::Settings TokenBucket::settings() const {
  for (;;) {
    const std::uint64_t w = loadUnlocked();
    const Params p = loadParams();
    if (unchanged(w)) {
      return Settings{.rate_per_second = p.rate, .burst = p.burst};
    }
  }
}

double TokenBucket::tokens(TimePoint now) const {
  for (;;) {
    const std::uint64_t w = loadUnlocked();
    const Params p = loadParams();
    double out = 0.0;
    if (p.mode == Mode::Unlimited) {
      out = std::numeric_limits<double>::infinity();
    } else {
      // Unbounded conversion: a read-only query does not rebase.
      const Int128 now_u =
          p.mode == Mode::Frozen
              ? 0
              : unitsOf(Int128{now.time_since_epoch().count()} - p.origin_ns, p.shift);
      const Int128 avail = std::min<Int128>(p.burst_units, now_u - unpack(w));
      out = static_cast<double>(avail) / static_cast<double>(p.unit_per_token);
    }
    if (unchanged(w)) {
      return out;
    }
  }
}

// Rebase (next == nullopt: same settings, new origin) or change settings. Runs under mu_ with
// the word parked at kWordLocked, so no acquirer can commit against half-written parameters; the
// new word carries the next generation tag, so an acquirer that read the old parameters cannot
// commit either (its compare-and-swap expects the old word).
void TokenBucket::reconfigure(const std::optional<Settings>& next, TimePoint now) {
  const std::lock_guard lock(mu_);
  reconfigureLocked(next, now);
}

void TokenBucket::reconfigureLocked(const std::optional<Settings>& next, TimePoint now) {
  // Only reconfigure() writes parameters, and it holds mu_: this read is stable.
  const Params old = loadParams();
  if (!next.has_value() && !toUnits(now, old).rebase) {
    return;  // another thread rebased first
  }
  std::uint64_t w = word_.load(std::memory_order_relaxed);
  while (!word_.compare_exchange_weak(w, kWordLocked, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
  }
  const std::int64_t e = unpack(w);

  const Settings s =
      coerced(next.value_or(Settings{.rate_per_second = old.rate, .burst = old.burst}));
  Params p;
  p.mode = s.rate_per_second == 0.0        ? Mode::Frozen
           : std::isinf(s.rate_per_second) ? Mode::Unlimited
                                           : Mode::Finite;
  p.origin_ns = now.time_since_epoch().count();
  p.burst = s.burst;
  p.rate = s.rate_per_second;
  p.gen = old.gen + 1;

  // Tokens available at `now` under the old parameters, in old units (negative = debt).
  bool full = old.mode == Mode::Unlimited;  // leaving "unlimited" refills, as in Go
  Int128 avail = 0;
  if (!full) {
    const Int128 now_u =
        old.mode == Mode::Frozen
            ? 0
            : unitsOf(Int128{now.time_since_epoch().count()} - old.origin_ns, old.shift);
    avail = std::min<Int128>(old.burst_units, now_u - e);
  }
  const double debt_tokens =
      avail < 0 ? static_cast<double>(-avail) / static_cast<double>(old.unit_per_token) : 0.0;
  const Units u = chooseUnits(s.rate_per_second, s.burst, debt_tokens, p.mode == Mode::Finite);
  p.shift = u.shift;
  p.unit_per_token = u.unit_per_token;
  p.burst_units = u.burst_units;
  p.max_rel_ns = u.max_rel_ns;

  Int128 new_e = 0;
  if (full) {
    new_e = -Int128{p.burst_units};
  } else if (p.unit_per_token == old.unit_per_token) {
    new_e = -avail;  // same token size: exact
  } else {
    // Same number of tokens in the new unit, rounded toward fewer tokens (E up).
    const Int128 num = -avail * p.unit_per_token;
    const Int128 den = old.unit_per_token;
    new_e = num / den + ((num % den) > 0 ? 1 : 0);
  }
  new_e = std::clamp<Int128>(new_e, -Int128{p.burst_units}, kMaxDebtUnits);
  const std::uint64_t new_word = pack(static_cast<std::int64_t>(new_e), genTag(p.gen));
  // The latest booking's time to act is a time, not a number of tokens: it survives a change
  // of rate or burst unchanged, as in Go (kept as a time, not in units). Only finite rates
  // book anything in the future, and a rate of 0 or +infinity leaves it as it was (as in Go).
  if (old.mode == Mode::Finite && w != event_word_) {
    event_ns_ = saturateToInt64(Int128{old.origin_ns} + nsOfCeil(e, old.shift));
  }
  event_word_ = new_word;
  storeParams(p);
  word_.store(new_word, std::memory_order_release);
}

}  // namespace sluice::resilience
