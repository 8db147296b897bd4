// WarmUpRateLimiter: a per-second rate limit that starts cold and warms up, as Alibaba Sentinel's
// WarmUpController (flow control behaviour "warm up"): a system that has been idle (cold caches,
// connection pools not yet filled, JIT not yet done) is let in at rate / cold_factor, and the
// allowed rate climbs to the full rate over warm_up_period of sustained traffic; it cools back
// down when traffic falls below rate / cold_factor.
//
// Model (Sentinel's token-bucket reading of Guava's SmoothWarmingUp). With count = rate per second,
// T = warm_up_period in seconds and cf = cold_factor, all token counts being integers as in
// Sentinel:
//
//   warning_tokens = floor(T * count) / (cf - 1)                  (integer division)
//   max_tokens     = warning_tokens + floor(2 * T * count / (1 + cf))
//   slope          = (cf - 1) / count / (max_tokens - warning_tokens)
//   cold_threshold = floor(count) / cf                             (integer division)
//
// `stored` tokens measure how cold the system is; a new limiter is cold (stored = max_tokens).
// The allowed rate for the current second is
//
//   allowed(stored) = 1 / ((stored - warning_tokens) * slope + 1 / count)   if stored >= warning
//                   = count                                                  otherwise
//
// which falls linearly in *interval* from 1/count at warning_tokens to cf/count at max_tokens:
// a cold limiter allows count/cf per second. Sentinel's example, count 100, cf 3, T = 10 s:
// warning 500, max 1000, slope 4e-5; allowed(1000) = 33.3, allowed(750) = 50, allowed(625) =
// 66.7, allowed(<= 500) = 100. A request of n is admitted iff passed_this_second + n <=
// allowed(stored) (Sentinel compares with Math.nextUp of the rate, so that floating error cannot
// refuse exactly `count`; so does this class).
//
// Tokens are synchronised once per second (seconds aligned to the clock's epoch), at the first
// call of a new second, from the passes p of the second before:
//
//   if stored < warning_tokens or p < cold_threshold:  stored += floor(count)  (refill: cold)
//   stored = min(stored, max_tokens);  stored = max(0, stored - p)       (traffic warms it up)
//
// Under sustained demand above the rate, each second's passes drain `stored` towards
// warning_tokens, so the allowed rate climbs; in the continuous limit the time from max_tokens to
// warning_tokens is exactly T (the area of Guava's trapezoid: slope * (max - warning)^2 / 2 +
// (max - warning) / count = T). With Sentinel's per-second integer steps the example admits 33,
// 34, 36, 38, 41, 44, 47, 52, 58, 68, 83 and then 100 per second: the full rate from 11 s after
// the start, one per-second step after T. At the full rate the refill and the passes cancel and it
// stays warm; below cold_threshold per second it refills by `count` per second and is cold again
// (max_tokens) after about (max_tokens - stored) / count idle seconds.
//
//   WarmUpRateLimiter limiter({.rate_per_second = 100, .warm_up_period = 10s, .cold_factor = 3});
//   if (!limiter.tryAcquire(now)) return reply429();
//
// Where this deliberately differs from Sentinel (WarmUpController.java), and why:
//  * Counting: Sentinel reads passQps from its node's rolling one-second window (two 500 ms
//    buckets) and the previous second's passes from a per-minute array; this class counts its
//    own admissions in the current epoch-aligned second. So it is a fixed one-second window:
//    up to 2 * allowed may pass within one second across a boundary (Sentinel's 500 ms buckets
//    bound that at 1.5x). Use it behind or in front of a TokenBucket if bursts matter.
//  * Gaps: Sentinel subtracts only the passes of the second immediately before the sync, so a
//    request pattern with an idle second in between is never charged; here a sync after idle
//    seconds first applies the step for the last active second (charging its passes) and then
//    refills `count` per idle second, i.e. exactly what Sentinel computes when it is called every
//    second. The state is the same as Sentinel's whenever traffic is continuous.
//  * stored == warning_tokens exactly: Sentinel refills only below or strictly above it, so a
//    limiter idle at exactly warning_tokens never cools down; here the cold test applies at
//    equality too (idle at warning_tokens refills).
//  * Settings: a Duration warm-up (Sentinel: whole seconds) and explicit coercion (Sentinel
//    throws for cold_factor <= 1). A warm-up so short that max_tokens == warning_tokens means no
//    warm-up (a plain `count` per second; Sentinel would divide by zero).
// Guava's SmoothWarmingUp differs more: it spaces individual permits (a leaky-bucket style
// interval) instead of counting a per-second quota, fixes cold_factor at 3, and puts the
// threshold at 0.5 * T * count whatever the factor (Sentinel's T * count / (cf - 1) is the same
// for cf = 3).
//
// Time going backwards: a `now` in an earlier second counts in the latest second seen (nothing
// is re-synchronised or refunded).
//
// Thread-safety: all methods may be called concurrently; one std::mutex guards the four-word
// state (the sync, the check and the count are one step). The static functions are pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>

#include "resilience/clock.h"

namespace sluice::resilience {

class WarmUpRateLimiter {
 public:
  struct Settings {
    double rate_per_second = 1;                          // Sentinel `count`: the warm rate
    Duration warm_up_period = std::chrono::seconds(10);  // cold to warm under full load
    std::uint32_t cold_factor = 3;                       // cold rate = rate / cold_factor, >= 2
  };

  static constexpr double kMaxRate = 1e9;  // per second

  // The derived constants (formulas in the file comment).
  struct Params {
    double rate = 0;  // count
    std::int64_t warning_tokens = 0;
    std::int64_t max_tokens = 0;
    double slope = 0;  // 0 when there is no warm-up (max == warning)
    std::int64_t cold_threshold = 0;
  };

  struct Snapshot {
    std::int64_t stored_tokens = 0;  // after the sync for `now`'s second
    double allowed_rate = 0;         // allowed(stored_tokens) for that second
    std::uint64_t passed = 0;        // admitted in that second so far
  };

  // Explains what is wrong, or nullopt: rate not in (0, kMaxRate], warm_up_period <= 0,
  // cold_factor < 2, or T * rate too large for the token counts (above 2^52).
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Derives Params. Invalid settings are coerced: a rate that is NaN or <= 0 -> 0 (admits only
  // n == 0), above kMaxRate -> kMaxRate; cold_factor < 2 -> 2; warm_up_period <= 0 -> no
  // warm-up; T * rate capped at 2^52 tokens.
  [[nodiscard]] static Params paramsFor(const Settings& settings);

  // allowed(stored) from the file comment.
  [[nodiscard]] static double allowedRate(std::int64_t stored_tokens, const Params& params);

  // A cold limiter (stored = max_tokens). Settings are coerced as in paramsFor().
  explicit WarmUpRateLimiter(const Settings& settings);

  // Admits n requests in `now`'s second if passed + n <= allowed(stored); otherwise changes
  // nothing (but the once-per-second sync). n == 0 is always admitted.
  [[nodiscard]] bool tryAcquire(std::uint64_t n, TimePoint now);
  [[nodiscard]] bool tryAcquire(TimePoint now) { return tryAcquire(1, now); }

  // The state as the next call in `now`'s second would see it (nothing is changed).
  [[nodiscard]] Snapshot snapshot(TimePoint now) const;

  [[nodiscard]] const Params& params() const { return params_; }

 private:
  static constexpr std::int64_t kNoSecond = std::numeric_limits<std::int64_t>::min();

  struct State {
    std::int64_t second = kNoSecond;  // the second `passed` counts (the last sync)
    std::uint64_t passed = 0;
    std::int64_t stored = 0;
    // floor(nextUp(allowed(stored))): the most `passed` may reach this second, computed once
    // per second so that the hot path compares integers.
    std::uint64_t limit = 0;
  };

  // The state at the start of `second` (or the latest second seen, if that is later).
  [[nodiscard]] static State synced(State s, std::int64_t second, const Params& params);
  [[nodiscard]] static std::int64_t secondOf(TimePoint now);
  [[nodiscard]] static std::uint64_t admitLimit(std::int64_t stored, const Params& params);

  Params params_;
  mutable std::mutex mu_;
  State state_;  // guarded by mu_
};

}  // namespace sluice::resilience
