// SlidingWindowCounter: the approximate sliding-window limiter of Cloudflare's "How we built rate
// limiting capable of scaling to millions of domains" (Julien Desgats, 2017), the cheap
// exact-enough limiter distributed limits use: two fixed-window counts and the time.
//
// Time is cut into fixed windows of length W aligned to the clock's epoch (window k covers
// [k*W, (k+1)*W)). The state is the start of the current window and two counts: `previous`
// (admitted in the window before it) and `current` (admitted in it so far). The previous window
// is assumed to have been uniform, so the part of it still inside the sliding window [now - W,
// now] is weighted by the fraction that is still inside:
//
//   elapsed  = now - start of the window containing now          in [0, W)
//   estimate = previous * (W - elapsed) / W + current
//   a request of cost n is admitted iff  estimate + n <= limit, and then current += n
//
// Cloudflare's worked example: limit 50 per minute, 42 in the previous minute, 18 in the current
// one, 15 s into it: estimate = 42 * 45/60 + 18 = 42 * 0.75 + 18 = 49.5.
//
// Rounding rule: none. The test is evaluated exactly in integers scaled by W (nanoseconds),
//   previous * (W - elapsed) + (current + n) * W <= limit * W,
// so the estimate after an admission never exceeds the limit. In the example the next request
// (49.5 + 1 = 50.5) is refused; it is admitted from 16 s into the minute on (42 * 44/60 + 18 =
// 48.8), when the previous minute's weight has fallen by another 0.7 request. (Rounding the
// weighted count down instead, as some write-ups do, would admit it at 15 s and let the estimate
// reach limit + 1 - epsilon; a store that keeps only integers can still mirror this rule exactly,
// see decide().) Only admitted requests are counted: a refusal changes nothing, as in the
// library's other limiters.
//
// Accuracy: exact when traffic in the previous window was uniform; otherwise the true count in
// [now - W, now] lies in [current, current + previous], as does the estimate, so they differ by
// less than `previous`. With adversarial timing (the previous window's requests bunched at its
// end) one true sliding window can hold nearly 2 * limit, the fixed-window worst case; on real
// traffic Cloudflare measured 0.003 % of 400 million requests wrongly allowed or limited.
//
// Rolling over: at a new window, `current` becomes `previous`; after an idle gap of W or more
// past the end of the current window (no request in the window before `now`'s), both are 0.
// A `now` earlier than the stored window is evaluated at the start of that window (the largest
// weight on `previous`): time going backwards can only deny more, and never moves the window back.
//
// For a distributed limit (Redis and the like) the whole decision is the pure decide(state, now,
// cost, params): three integers per key (window start, previous, current) and the time; a Lua
// port is in docs/rate-limiting.md. SlidingWindowCounter is the local, thread-safe version.
//
//   SlidingWindowCounter limiter({.limit = 50, .window = std::chrono::minutes(1)});
//   const SlidingWindowCounter::Decision d = limiter.tryAcquire(now);
//   if (!d.allowed) return reply429(/*Retry-After*/ d.retry_after);
//
// Thread-safety: decide() and paramsFor() are pure. The class's methods may be called
// concurrently; one std::mutex guards the three-word state. A lock-free variant (window tag and
// both counts packed into one 64-bit word, compare-and-swap) was measured and not kept: no faster
// uncontended, slower on two contended cores (a lost CAS redoes the whole decision; see
// docs/benchmarks.md), and it would cap the counts at 2^24 and let a long idle gap alias the tag.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>

#include "resilience/clock.h"

namespace sluice::resilience {

class SlidingWindowCounter {
 public:
  struct Settings {
    std::uint64_t limit = 1;                    // admissions per window, 1..kMaxLimit
    Duration window = std::chrono::seconds(1);  // > 0
  };

  // The integers decide() needs.
  struct Params {
    std::int64_t window_ns = 1;
    std::uint64_t limit = 0;
  };

  // What a store keeps per key. kNoWindow: nothing recorded (a missing key).
  static constexpr std::int64_t kNoWindow = std::numeric_limits<std::int64_t>::min();
  struct State {
    std::int64_t window_start_ns = kNoWindow;  // start of the window `current` counts
    std::uint64_t previous = 0;                // admitted in the window before it
    std::uint64_t current = 0;                 // admitted in it so far
  };

  struct Decision {
    bool allowed = false;
    double estimate = 0;          // the weighted count at `now`, this request included if allowed
    std::uint64_t remaining = 0;  // requests of cost 1 still admissible at `now` after this one
    // 0 if allowed; else how long until this request would fit if nothing else is admitted
    // meanwhile (exact to the nanosecond); Duration::max() if cost > limit (never).
    Duration retry_after{};
    State new_state;  // the state to store (the rolled-over one; counts unchanged if denied)
  };

  static constexpr std::uint64_t kMaxLimit = std::uint64_t{1} << 62;

  // Explains what is wrong, or nullopt: limit 0 or above kMaxLimit, window <= 0.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Invalid settings are coerced: limit 0 stays 0 (admits only cost 0, as
  // SlidingWindowRateLimiter), limit above kMaxLimit -> kMaxLimit, window <= 0 -> 1 ns.
  [[nodiscard]] static Params paramsFor(const Settings& settings);

  // The formulas above as a pure function. `now_ns` is nanoseconds since the clock's epoch (any
  // sign). cost 0 is always allowed and records nothing (a peek). Counts in `state` above
  // kMaxLimit are treated as kMaxLimit. Exact: 128-bit intermediates, no floating point in the
  // decision (`estimate` is for display).
  [[nodiscard]] static Decision decide(const State& state, std::int64_t now_ns, std::uint64_t cost,
                                       const Params& params);

  // An empty counter. Settings are coerced as in paramsFor().
  explicit SlidingWindowCounter(const Settings& settings);

  // Admits `cost` (default 1) at `now` if it fits; a refusal changes nothing.
  [[nodiscard]] Decision tryAcquire(TimePoint now) { return tryAcquire(1, now); }
  [[nodiscard]] Decision tryAcquire(std::uint64_t cost, TimePoint now);

  // What a cost-0 request would get (estimate and remaining), without recording anything.
  [[nodiscard]] Decision peek(TimePoint now) const;

  // A copy of the state (for metrics, or to hand to a store).
  [[nodiscard]] State state() const;

  [[nodiscard]] const Params& params() const { return params_; }

 private:
  Params params_;
  mutable std::mutex mu_;
  State state_;  // guarded by mu_
};

}  // namespace sluice::resilience
