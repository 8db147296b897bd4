#include "resilience/sliding_window_counter.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>

namespace sluice::resilience {
namespace {

// NOLINTNEXTLINE(modernize-use-using): __extension__ needs typedef
__extension__ typedef unsigned __int128 Uint128;

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// a / b, in 64 bits when both fit (the common case: limit * window below 2^64 ns): a 128-bit
// division is a library call several times slower, and this runs on every decision.
std::uint64_t divide(Uint128 a, Uint128 b) {
  constexpr auto kMax64 = static_cast<Uint128>(std::numeric_limits<std::uint64_t>::max());
  if (a <= kMax64 && b <= kMax64) {
    return static_cast<std::uint64_t>(a) / static_cast<std::uint64_t>(b);
  }
  return static_cast<std::uint64_t>(a / b);
}

std::int64_t toInt64(Uint128 v) {
  constexpr auto kMax = static_cast<Uint128>(std::numeric_limits<std::int64_t>::max());
  return v >= kMax ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(v);
}

}  // namespace

std::optional<std::string> SlidingWindowCounter::validate(const Settings& settings) {
  if (settings.limit == 0 || settings.limit > kMaxLimit) {
    return "limit must be in [1, 2^62]";
  }
  if (settings.window <= Duration::zero()) {
    return "window must be positive";
  }
  return std::nullopt;
}

SlidingWindowCounter::Params SlidingWindowCounter::paramsFor(const Settings& settings) {
  return Params{.window_ns = std::max<std::int64_t>(1, settings.window.count()),
                .limit = std::min(settings.limit, kMaxLimit)};
}

SlidingWindowCounter::Decision SlidingWindowCounter::decide(const State& state, std::int64_t now_ns,
                                                            std::uint64_t cost,
                                                            const Params& params) {
  const std::int64_t w = std::max<std::int64_t>(1, params.window_ns);
  const std::uint64_t limit = std::min(params.limit, kMaxLimit);
  std::int64_t start = floorDiv(now_ns, w) * w;
  std::uint64_t previous = 0;
  std::uint64_t current = 0;
  if (state.window_start_ns != kNoWindow) {
    const std::uint64_t stored_previous = std::min(state.previous, kMaxLimit);
    const std::uint64_t stored_current = std::min(state.current, kMaxLimit);
    if (start <= state.window_start_ns) {
      // The same window, or time went backwards: never move the window back; an earlier `now`
      // is judged at the stored window's start, where `previous` weighs the most.
      now_ns = std::max(now_ns, state.window_start_ns);
      start = state.window_start_ns;
      previous = stored_previous;
      current = stored_current;
    } else if (start - w == state.window_start_ns) {
      previous = stored_current;
    }
  }
  const auto uw = static_cast<Uint128>(w);
  const auto elapsed = static_cast<Uint128>(now_ns - start);  // in [0, w)
  const Uint128 weighted = static_cast<Uint128>(previous) * (uw - elapsed);
  const Uint128 capacity = static_cast<Uint128>(limit) * uw;
  // Room for whole requests at `now`, before this one: floor((limit*W - previous*(W-e)) / W) -
  // current, or 0 when the estimate is already at or above the limit.
  const Uint128 used = weighted + static_cast<Uint128>(current) * uw;
  const std::uint64_t room = used >= capacity ? 0 : divide(capacity - used, uw);

  Decision d;
  d.new_state = State{.window_start_ns = start, .previous = previous, .current = current};
  d.allowed = cost == 0 || cost <= room;
  if (d.allowed) {
    d.new_state.current = current + cost;
    d.remaining = room - std::min(room, cost);
  } else if (cost > limit) {
    d.retry_after = Duration::max();
  } else {
    // Earliest time the request fits with no other admission. In this window: need
    // previous * (W - e') <= (limit - current - cost) * W, i.e. e' >= W - floor(R * W / previous).
    Uint128 at_ns = 0;  // relative to `start`
    if (current + cost <= limit && previous > 0) {
      const Uint128 slack = static_cast<Uint128>(limit - current - cost) * uw;
      const Uint128 e_min = uw - std::min(uw, slack / previous);
      at_ns = e_min < uw ? e_min : uw;  // uw: not in this window
    } else {
      at_ns = uw;
    }
    if (at_ns >= uw) {
      // Next window: `current` becomes the previous count; need current * (W - e'') + cost * W
      // <= limit * W. e'' = W means the window after, where both counts are 0.
      const Uint128 slack = static_cast<Uint128>(limit - cost) * uw;
      const Uint128 e_next =
          current == 0 ? 0 : uw - std::min(uw, slack / static_cast<Uint128>(current));
      at_ns = uw + e_next;
    }
    d.retry_after = Duration{toInt64(at_ns - elapsed)};
  }
  const auto wd = static_cast<double>(w);
  // uw - elapsed <= 2^63 fits 64 bits; converting through them avoids a 128-bit library call.
  d.estimate = static_cast<double>(previous) *
                   (static_cast<double>(static_cast<std::uint64_t>(uw - elapsed)) / wd) +
               static_cast<double>(d.new_state.current);
  return d;
}

SlidingWindowCounter::SlidingWindowCounter(const Settings& settings)
    : params_(paramsFor(settings)) {}

SlidingWindowCounter::Decision SlidingWindowCounter::tryAcquire(std::uint64_t cost, TimePoint now) {
  const std::lock_guard<std::mutex> lock(mu_);
  const Decision d = decide(state_, now.time_since_epoch().count(), cost, params_);
  if (d.allowed && cost > 0) {
    state_ = d.new_state;
  }
  return d;
}

SlidingWindowCounter::Decision SlidingWindowCounter::peek(TimePoint now) const {
  const std::lock_guard<std::mutex> lock(mu_);
  return decide(state_, now.time_since_epoch().count(), 0, params_);
}

SlidingWindowCounter::State SlidingWindowCounter::state() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

}  // namespace sluice::resilience
