// Deadline: the point in time after which an operation's result is no longer wanted.
//
// A Deadline is an absolute TimePoint (or "infinite"), never a relative timeout, so that it can
// be handed down a call chain without drifting: each layer asks how much time is `remaining(now)`
// instead of re-adding a timeout to its own clock reading. It is a small value type (one
// TimePoint), trivially copyable, and never reads a clock.
//
//   const Deadline request = Deadline::after(now, std::chrono::seconds(2));
//   const Deadline call = earlierOf(request, Deadline::after(now, per_call_timeout));
//   if (call.expired(now)) return Status::DeadlineExceeded;
//   socket.setTimeout(call.remaining(now));
//
// Boundaries: a deadline at time T is expired at every `now >= T` (expired exactly at T), and
// `remaining(now)` is `T - now` for `now < T` and zero from T on. The infinite deadline never
// expires and has `remaining() == Duration::max()`.
//
// Thread-safety: a value type; concurrent reads of one Deadline are safe, writes need the usual
// external synchronisation.
#pragma once

#include <compare>

#include "resilience/clock.h"

namespace sluice::resilience {

class Deadline {
 public:
  // The infinite deadline (same as `Deadline::infinite()`).
  constexpr Deadline() noexcept = default;

  // Never expires; `remaining()` is Duration::max(); earlier than nothing.
  [[nodiscard]] static constexpr Deadline infinite() noexcept { return Deadline{}; }

  // Expires at `when`. `TimePoint::max()` is the infinite deadline.
  [[nodiscard]] static constexpr Deadline at(TimePoint when) noexcept { return Deadline{when}; }

  // Expires `timeout` after `now`, saturating: a timeout that would overflow TimePoint (including
  // Duration::max()) gives the infinite deadline; a zero or negative timeout gives a deadline that
  // is already expired at `now` (negative timeouts saturate at TimePoint::min()).
  [[nodiscard]] static constexpr Deadline after(TimePoint now, Duration timeout) noexcept {
    const Duration::rep n = now.time_since_epoch().count();
    const Duration::rep t = timeout.count();
    constexpr Duration::rep kMax = Duration::max().count();
    constexpr Duration::rep kMin = Duration::min().count();
    // Overflow tests written so that they cannot overflow themselves: kMax - t for t >= 0 and
    // kMin - t for t < 0 both stay in range.
    if (t >= 0 && n >= kMax - t) {
      return infinite();
    }
    if (t < 0 && n < kMin - t) {
      return Deadline{TimePoint::min()};
    }
    return Deadline{now + timeout};
  }

  [[nodiscard]] constexpr bool isInfinite() const noexcept { return when_ == TimePoint::max(); }

  // The instant of expiry; TimePoint::max() for the infinite deadline.
  [[nodiscard]] constexpr TimePoint timePoint() const noexcept { return when_; }

  // True from the deadline on (`now >= timePoint()`); never for the infinite deadline.
  [[nodiscard]] constexpr bool expired(TimePoint now) const noexcept {
    return !isInfinite() && now >= when_;
  }

  // Time left before expiry: `timePoint() - now` while not expired, zero once expired,
  // Duration::max() for the infinite deadline. Never negative.
  [[nodiscard]] constexpr Duration remaining(TimePoint now) const noexcept {
    if (isInfinite()) {
      return Duration::max();
    }
    if (now >= when_) {
      return Duration::zero();
    }
    const Duration::rep w = when_.time_since_epoch().count();
    const Duration::rep n = now.time_since_epoch().count();
    // w > n; w - n overflows only when n is negative and w > max + n.
    if (n < 0 && w > Duration::max().count() + n) {
      return Duration::max();
    }
    return when_ - now;
  }

  // The earlier of the two deadlines (the infinite deadline is later than every finite one).
  [[nodiscard]] constexpr Deadline earlierOf(Deadline other) const noexcept {
    return other.when_ < when_ ? other : *this;
  }

  // Orders deadlines by expiry; the infinite deadline compares greater than every finite one.
  // NOLINTNEXTLINE(modernize-use-nullptr): false positive on a defaulted <=> (clang-tidy 14)
  friend constexpr auto operator<=>(const Deadline&, const Deadline&) noexcept = default;

 private:
  constexpr explicit Deadline(TimePoint when) noexcept : when_(when) {}

  TimePoint when_ = TimePoint::max();
};

// The earlier of two deadlines; see Deadline::earlierOf.
[[nodiscard]] constexpr Deadline earlierOf(Deadline a, Deadline b) noexcept {
  return a.earlierOf(b);
}

}  // namespace sluice::resilience
