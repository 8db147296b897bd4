// KeyLimiter: one client's rate limiter inside a rate_limit guard, whatever the algorithm, with
// one answer shape - allow, delay or reject, plus what the IETF RateLimit headers need.
//
// Each algorithm is the resilience library's own (resilience/gcra.h, token_bucket.h,
// leaky_bucket.h, sliding_window_rate_limiter.h); this file only adapts them:
//
//   algorithm       admits                                     delay   quota q / window w
//   gcra            `requests` per `period`, `burst` at once   never   burst / burst*T
//   token_bucket    the same (Go's x/time/rate)                never   burst / burst/rate
//   leaky_bucket    nginx limit_req: rate, burst excess,       yes     burst+1 / (burst+1)*T
//                   delay / nodelay
//   sliding_window  at most `requests` in any `period`         never   requests / period
//
// (T = period / requests.) A rejection's wait is exact for the first three; sliding_window does
// not know when enough of its count will expire, so it answers a whole period (never too early).
// `idleReset()` is how long a key must stay unused before its limiter is back in its initial
// state, so that forgetting it changes no decision (KeyTable evicts such keys first).
//
// Thread-safety: a KeyLimiter is used under its KeyTable shard's lock, or shared by every worker
// without a lock when the guard has a single key; every implementation is lock-free or locks
// itself (tested under TSan in rate_limit_guard_test.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "gateway/config/config.h"
#include "resilience/clock.h"
#include "resilience/gcra.h"

namespace sluice::gateway::guards {

using resilience::Duration;
using resilience::TimePoint;

struct RateDecision {
  enum class Kind : std::uint8_t { Allow, Delay, Reject };
  Kind kind = Kind::Reject;
  Duration wait{};              // Delay: hold the request this long; Reject: retry after this
  std::uint64_t quota = 0;      // RateLimit-Policy q
  Duration window{};            // RateLimit-Policy w
  std::uint64_t remaining = 0;  // RateLimit r: requests still possible now
  Duration reset{};             // RateLimit t: until the quota is whole again
};

class KeyLimiter {
 public:
  virtual ~KeyLimiter() = default;
  [[nodiscard]] virtual RateDecision acquire(TimePoint now) = 0;
};

// Makes limiters for one validated rate_limit config.
class KeyLimiterFactory {
 public:
  explicit KeyLimiterFactory(const config::RateLimit& settings);

  [[nodiscard]] std::unique_ptr<KeyLimiter> make(TimePoint now) const;
  [[nodiscard]] Duration idleReset() const { return idle_reset_; }

 private:
  config::RateLimit settings_;
  resilience::Gcra::Params gcra_;  // shared by every GCRA key (they keep a reference)
  Duration idle_reset_{};
};

}  // namespace sluice::gateway::guards
