#include "resilience/gcra.h"

#include <algorithm>

namespace sluice::resilience {
namespace {

// GCC/Clang extension (64-bit targets): overflow-free intermediates. A Lua port stays exact
// with integers below 2^53 (see docs/rate-limiting.md).
__extension__ typedef __int128 Int128;  // NOLINT(modernize-use-using): __extension__ needs typedef

constexpr std::int64_t kSaturatedNs = std::int64_t{1} << 62;
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

std::int64_t clampNs(Int128 v) {
  return static_cast<std::int64_t>(std::clamp<Int128>(v, 0, kInt64Max));
}

// floor(room / t) for 0 < room <= burst_offset <= 2^62: a 64-bit division (a 128-bit one is a
// library call several times slower, and this is on every request's path).
std::uint64_t whole(Int128 room, std::int64_t t) {
  return room > 0 ? static_cast<std::uint64_t>(static_cast<std::int64_t>(room) / t) : 0;
}

Gcra::Settings coerce(Gcra::Settings s) {
  s.limit = std::max<std::uint64_t>(s.limit, 1);
  s.period = std::max(s.period, Duration{1});
  s.burst = std::max<std::uint64_t>(s.burst, 1);
  return s;
}

}  // namespace

std::optional<std::string> Gcra::validate(const Settings& settings) {
  if (settings.limit == 0) {
    return "limit must be at least 1";
  }
  if (settings.period <= Duration::zero()) {
    return "period must be positive, got " + std::to_string(settings.period.count()) + " ns";
  }
  if (settings.burst == 0) {
    return "burst must be at least 1";
  }
  if (settings.limit > static_cast<std::uint64_t>(settings.period.count())) {
    return "limit/period must be at most 1e9 per second (" + std::to_string(settings.limit) +
           " per " + std::to_string(settings.period.count()) + " ns)";
  }
  return std::nullopt;
}

Gcra::Params Gcra::paramsFor(const Settings& settings) {
  const Settings s = coerce(settings);
  Params p;
  // ceil(period / limit): a longer interval is the conservative rounding.
  const Int128 period = s.period.count();
  const Int128 t = (period + s.limit - 1) / s.limit;
  p.emission_interval_ns = static_cast<std::int64_t>(std::clamp<Int128>(t, 1, kSaturatedNs));
  p.burst_offset_ns = static_cast<std::int64_t>(
      std::min<Int128>(Int128{s.burst} * p.emission_interval_ns, kSaturatedNs));
  p.burst = s.burst;
  return p;
}

Gcra::Decision Gcra::decide(std::int64_t state, std::int64_t now_ns, std::uint64_t cost,
                            const Params& params) {
  const Int128 now = now_ns;
  const Int128 t = params.emission_interval_ns;
  const Int128 tat = state == kEmptyState ? now : std::max<Int128>(state, now);
  Decision d;
  d.limit = params.burst;
  d.new_state = state;
  // Room at `now` before this request, in time: burst_offset - (tat - now) >= 0 for any state
  // this function produced at or before `now`.
  const Int128 room = Int128{params.burst_offset_ns} - (tat - now);
  if (cost > params.burst) {
    d.remaining = whole(room, params.emission_interval_ns);
    d.retry_after = Duration::max();
    d.reset_after = Duration{clampNs(tat - now)};
    return d;
  }
  const Int128 new_tat = tat + Int128{cost} * t;
  const Int128 diff = room - Int128{cost} * t;  // now - allow_at
  if (diff < 0) {
    d.remaining = whole(room, params.emission_interval_ns);
    d.retry_after = Duration{clampNs(-diff)};
    d.reset_after = Duration{clampNs(tat - now)};
    return d;
  }
  d.allowed = true;
  d.remaining = whole(diff, params.emission_interval_ns);
  d.reset_after = Duration{clampNs(new_tat - now)};
  d.retry_after = Duration::zero();
  if (cost > 0) {
    // new_tat <= now + burst_offset <= now + 2^62 here; saturating keeps it storable anyway.
    d.new_state = static_cast<std::int64_t>(std::min<Int128>(new_tat, kInt64Max));
  }
  return d;
}

std::int64_t Gcra::rescaleState(std::int64_t state, std::int64_t now_ns, const Params& from,
                                const Params& to) {
  if (state == kEmptyState || state <= now_ns) {
    return state;
  }
  const Int128 now = now_ns;
  // Room at `now` in time of `from`; below zero only after time went backwards (no room then).
  const Int128 room = std::max<Int128>(0, Int128{from.burst_offset_ns} - (Int128{state} - now));
  // The same requests in time of `to` (room / T_from * T_to, rounded down: never more room).
  const Int128 kept = std::min<Int128>(room * to.emission_interval_ns / from.emission_interval_ns,
                                       to.burst_offset_ns);
  return static_cast<std::int64_t>(std::min<Int128>(now + to.burst_offset_ns - kept, kInt64Max));
}

Gcra::Gcra(const Settings& settings) : settings_(coerce(settings)), params_(paramsFor(settings_)) {}

Gcra::Decision Gcra::tryAcquire(std::uint64_t cost, TimePoint now) {
  const std::int64_t now_ns = now.time_since_epoch().count();
  std::int64_t state = tat_ns_.load(std::memory_order_acquire);
  for (;;) {
    const Decision d = decide(state, now_ns, cost, params_);
    if (!d.allowed || d.new_state == state) {
      return d;  // nothing to write
    }
    if (tat_ns_.compare_exchange_weak(state, d.new_state, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      return d;
    }
  }
}

Gcra::Decision Gcra::peek(TimePoint now) const {
  return decide(tat_ns_.load(std::memory_order_acquire), now.time_since_epoch().count(), 0,
                params_);
}

}  // namespace sluice::resilience
