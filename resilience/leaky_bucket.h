// LeakyBucket: a lock-free request limiter with the semantics of nginx's `limit_req`.
//
// Requests drain at `rate_per_second`. A request that arrives while earlier ones have not yet
// drained is "excess"; up to `burst` excess requests are accepted, the rest rejected. Accepted
// excess is either delayed to the rate (the default: the caller learns how long to wait), served
// at once (`nodelay`), or served at once up to `delay` excess requests and delayed beyond that
// (nginx `delay=N`). The first request after an idle period is never excess.
//
//   LeakyBucket limit({.rate_per_second = 10, .burst = 20, .delay = 8});   // limit_req burst=20
//   delay=8 const LeakyBucket::Result r = limit.tryAcquire(now); switch (r.decision) {
//     case LeakyBucket::Decision::Allow:  serve(); break;
//     case LeakyBucket::Decision::Delay:  serveAfter(r.delay); break;
//     case LeakyBucket::Decision::Reject: reply503(/*retry after*/ r.delay); break;
//   }
//
// Arithmetic (from ngx_http_limit_req_module.c, in continuous time instead of nginx's
// milliseconds and 1/1000-request fixed point): with T = 1/rate, a request at t after the
// previous accepted one at t0 with excess e0 has
//     excess e = max(0, e0 + 1 - (t - t0) / T)
// and is rejected iff e > burst (so burst = 0 still accepts one request per T, and burst + 1
// requests can arrive at once); if accepted, it is delayed by (e - delay) * T when e > delay
// (delay = 0 by default; `nodelay` never delays), and e becomes the new e0. The state kept is
// the single time TAT = t0 + (e0 + 1) * T (GCRA form), so e = max(0, TAT - t) / T and an
// accepted request sets TAT = max(TAT, t) + T.
//
// Precision: times are whole nanoseconds and T is rounded UP to whole nanoseconds, so the rate
// is exact when 1e9/rate is an integer and slightly conservative otherwise (relative error
// < 1/T_ns); rates above 1e9/s cannot be represented (validate() rejects them; the constructor
// clamps them to 1e9/s). Tolerances beyond 2^62 ns (~146 years) saturate.
//
// Time going backwards never drains: an earlier `now` sees at least as much excess as it had.
//
// Settings can change in place (setSettings): a config reload keeps the excess.
//
// Thread-safety: all methods may be called concurrently. tryAcquire is lock-free: one atomic
// 64-bit TAT updated by compare-and-swap; a rejected request writes nothing. setSettings takes
// a mutex and briefly (tens of ns) parks the TAT while it rewrites the parameters; concurrent
// acquirers spin, then yield, until it is released.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "resilience/clock.h"

namespace sluice::resilience {

class LeakyBucket {
 public:
  struct Settings {
    double rate_per_second = 1.0;  // requests per second, in [kMinRate, kMaxRate]
    std::uint64_t burst = 0;       // excess requests accepted (nginx burst=)
    std::uint64_t delay = 0;       // excess requests served without delay (nginx delay=)
    bool nodelay = false;          // never delay (nginx nodelay); excludes delay > 0
  };

  static constexpr double kMinRate = 1e-9;  // one request per ~31.7 years
  static constexpr double kMaxRate = 1e9;   // one request per nanosecond

  enum class Decision : std::uint8_t {
    Allow,   // serve now
    Delay,   // serve after `delay` (accounted already: do not call again for this request)
    Reject,  // over the burst; `delay` says when a request would next be accepted
  };

  struct Result {
    Decision decision = Decision::Reject;
    // Delay: how long to hold the request (> 0). Reject: the earliest time from now at which a
    // request would be accepted (a Retry-After hint, > 0). Allow: zero.
    Duration delay{};
  };

  // Explains what is wrong with `settings`, or nullopt if valid: rate NaN, outside
  // [kMinRate, kMaxRate]; nodelay together with delay > 0 (nginx accepts either, not both).
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // An idle bucket (no excess). Invalid settings are coerced: NaN or a rate below kMinRate ->
  // kMinRate, above kMaxRate -> kMaxRate; nodelay wins over delay.
  explicit LeakyBucket(const Settings& settings);

  // Accounts one request at `now` and says whether to serve it now, after a delay, or not at
  // all. Reject changes nothing. A delay > burst behaves like nodelay.
  [[nodiscard]] Result tryAcquire(TimePoint now);

  // The excess, in requests, that a request arriving at `now` would have (0 when idle): it is
  // accepted iff this is <= burst. A snapshot.
  [[nodiscard]] double excess(TimePoint now) const;

  // Replaces the settings (coerced as in the constructor), keeping the excess: the excess at
  // `now` is measured at the old rate (what drained until `now` is gone), kept as a number of
  // requests, and drains at the new rate from `now` on (exact to within 1 ns).
  //
  // Cap: the kept excess is capped at burst + 1 requests of the new settings, the most they can
  // leave (the request accepted at an excess of `burst` adds one). A bucket fuller than that
  // behaves as one that has just accepted its last allowed request: the next request is
  // accepted one new interval later, and the excess (and a RateLimit reset derived from it)
  // never exceeds what the new burst allows. Requests the old settings accepted beyond that are
  // not counted again; with delays, those still waiting may be served alongside new ones.
  //
  // Settings that give the same interval, burst and delay change nothing (a reload that left
  // this bucket as it was). A `now` earlier than the change's is judged against the converted
  // state, so going back across a change does not restore the old excess.
  //
  // Thread-safety: serialised by a mutex; concurrent tryAcquire calls wait for tens of ns and
  // are decided under the old or the new settings.
  void setSettings(const Settings& settings, TimePoint now);

  // The coerced settings in effect (a copy, taken under the mutex).
  [[nodiscard]] Settings settings() const;

 private:
  struct Params {
    std::int64_t interval_ns = 1;
    std::int64_t tolerance_ns = 0;
    std::int64_t delay_ns = 0;
  };

  [[nodiscard]] std::int64_t loadUnlocked() const;
  [[nodiscard]] Params loadParams() const;
  [[nodiscard]] bool unchanged(std::uint64_t gen) const;

  // The TAT, parked at a value no real TAT takes while setSettings rewrites the parameters.
  std::atomic<std::int64_t> tat_ns_;  // theoretical arrival time; min() = idle
  // Written only by setSettings, under mu_, while tat_ns_ is parked.
  std::atomic<std::int64_t> interval_ns_;   // T, >= 1
  std::atomic<std::int64_t> tolerance_ns_;  // burst * T, saturated at 2^62
  std::atomic<std::int64_t> delay_ns_;      // delay * T, saturated; "never" for nodelay
  std::atomic<std::uint64_t> gen_{0};       // bumped by each change, while tat_ns_ is parked
  mutable std::mutex mu_;                   // serialises setSettings; guards settings_
  Settings settings_;
};

}  // namespace sluice::resilience
