// Gcra: a Generic Cell Rate Algorithm limiter that also reports what IETF RateLimit headers
// need (limit, remaining, reset, retry-after).
//
// GCRA (ITU-T I.371; as used by redis-cell, go-redis/redis_rate and Brandur Leach's
// "throttled") keeps one number per key, the theoretical arrival time TAT. With the emission
// interval T = period / limit and burst b, a request of cost c at time t:
//     tat      = max(TAT, t)                 (TAT unset: t)
//     new_tat  = tat + c*T
//     allow_at = new_tat - b*T
//     allowed iff allow_at <= t              (">=": exactly enough room admits)
//     remaining   = floor((t - allow_at) / T)   requests still possible at t after this one
//     reset_after = new_tat - t                 until the full burst is available again
//     retry_after = allow_at - t                (denied) until this request would fit
// and stores new_tat only if allowed. So b requests fit at once, then one per T.
//
// The arithmetic is a pure function, decide(state, now, cost, params) -> decision + new state,
// in 64-bit integer nanoseconds with 128-bit intermediates, so a Redis Lua script can mirror it
// for a global limiter (see docs/rate-limiting.md); the Gcra class is the thread-safe local
// version on top (one atomic TAT, compare-and-swap).
//
//   Gcra limiter({.limit = 100, .period = std::chrono::minutes(1), .burst = 10});
//   const Gcra::Decision d = limiter.tryAcquire(now);
//   // RateLimit-Policy: "default";q=<d.limit>;w=<seconds(limiter.window())>
//   // RateLimit: "default";r=<d.remaining>;t=<ceil seconds(d.reset_after)>
//   if (!d.allowed) return reply429(/*Retry-After*/ d.retry_after);
//
// Header mapping (draft-ietf-httpapi-ratelimit-headers): limit q = burst (the most requests
// possible at once), window w = burst*T (the time in which an empty limiter refills), remaining
// r = `remaining`, reset t = `reset_after`; Retry-After = `retry_after` when denied.
//
// Precision and limits: T = ceil(period_ns / limit) whole nanoseconds (exact when period is a
// multiple of limit, else slightly conservative), so at most 1e9 requests per second; b*T and
// TATs saturate at 2^62 ns (~146 years) beyond `now`. Costs above burst are never allowed
// (retry_after = Duration::max()). Time going backwards never frees room: an earlier `now` is
// evaluated against the stored TAT as is, which can only deny more.
//
// Thread-safety: the static functions are pure; Gcra's methods may be called concurrently
// (tryAcquire is lock-free; a denied request writes nothing).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "resilience/clock.h"

namespace sluice::resilience {

class Gcra {
 public:
  struct Settings {
    std::uint64_t limit = 1;                    // requests per period (steady rate), >= 1
    Duration period = std::chrono::seconds(1);  // > 0
    std::uint64_t burst = 1;                    // requests possible at once, >= 1
  };

  // The integers decide() needs (what a Lua script would receive as arguments).
  struct Params {
    std::int64_t emission_interval_ns = 1;  // T = ceil(period / limit), >= 1
    std::int64_t burst_offset_ns = 1;       // burst * T, saturated at 2^62
    std::uint64_t burst = 1;
  };

  // A state value meaning "no requests recorded" (what a missing Redis key maps to).
  static constexpr std::int64_t kEmptyState = std::numeric_limits<std::int64_t>::min();

  struct Decision {
    bool allowed = false;
    std::uint64_t limit = 0;               // the burst: remaining when idle
    std::uint64_t remaining = 0;           // requests of cost 1 still possible now (after this one)
    Duration retry_after{};                // 0 if allowed; else until it would be; max() if never
    Duration reset_after{};                // until remaining == limit again
    std::int64_t new_state = kEmptyState;  // the state to store (the old one if denied)
  };

  // Explains what is wrong with `settings`, or nullopt if valid: limit 0, period <= 0, burst 0,
  // or limit/period above 1e9 per second (T would be below one nanosecond).
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Derives the integer parameters. Invalid settings are coerced: limit 0 -> 1, period <= 0 ->
  // 1 ns, burst 0 -> 1; T is at least 1 ns.
  [[nodiscard]] static Params paramsFor(const Settings& settings);

  // The pure GCRA step (formulas in the file comment). `state` is a TAT in nanoseconds since
  // the clock's epoch or kEmptyState; `now_ns` likewise. cost 0 reports without consuming
  // (new_state == state; allowed unless `now` is earlier than the state allows, i.e. time went
  // backwards). Never overflows: intermediates are 128-bit, results saturate.
  [[nodiscard]] static Decision decide(std::int64_t state, std::int64_t now_ns, std::uint64_t cost,
                                       const Params& params);

  // For a reload that changes the parameters of keys that keep their state: the state under
  // `to` that leaves the key, at `now_ns`, the requests it had left under `from` (fractions
  // included; decide()'s `remaining` is their floor), capped at to.burst. So a faster or slower
  // rate keeps what was left and refills at the new rate from `now_ns` on, and a larger burst
  // adds nothing until refilled (as TokenBucket::setSettings and Go's SetLimit/SetBurst keep
  // tokens). A state with no debt at `now_ns` (kEmptyState, or a TAT <= now_ns) is full under any
  // parameters and is returned unchanged. The room kept is rounded down to whole nanoseconds
  // (never more than exact); results saturate like decide()'s. Pure; exact in 128-bit
  // intermediates.
  [[nodiscard]] static std::int64_t rescaleState(std::int64_t state, std::int64_t now_ns,
                                                 const Params& from, const Params& to);

  // An idle limiter (full burst available). Settings are coerced as in paramsFor().
  explicit Gcra(const Settings& settings);

  // Takes `cost` (default 1) at `now` if it fits; a denied request changes nothing.
  [[nodiscard]] Decision tryAcquire(TimePoint now) { return tryAcquire(1, now); }
  [[nodiscard]] Decision tryAcquire(std::uint64_t cost, TimePoint now);

  // The decision a cost-0 request would get: headers without consuming anything.
  [[nodiscard]] Decision peek(TimePoint now) const;

  // burst * T: the RateLimit-Policy window (saturated at 2^62 ns).
  [[nodiscard]] Duration window() const { return Duration{params_.burst_offset_ns}; }

  [[nodiscard]] const Settings& settings() const { return settings_; }
  [[nodiscard]] const Params& params() const { return params_; }

 private:
  Settings settings_;
  Params params_;
  std::atomic<std::int64_t> tat_ns_{kEmptyState};
};

}  // namespace sluice::resilience
