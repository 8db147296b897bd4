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
// Reconfiguring (a reload that changes the rate, burst, delay or - sliding_window - the count,
// but not the algorithm): every key keeps what it has, as Go's SetLimit/SetBurst do. A gcra or
// token_bucket key with n requests left still has n (at most the new burst); a leaky bucket
// keeps its excess (its fill: a larger burst is more room above it); a sliding window keeps its
// counts (a larger count is more room above them). What a key has is measured at the moment of
// the change with the old parameters, and it then refills (drains) at the new rate.
//
// Thread-safety: a KeyLimiter is used under its KeyTable shard's lock, or shared by every worker
// without a lock when the guard has a single key; every implementation is lock-free or locks
// itself (tested under TSan in rate_limit_guard_test.cc). reconfigure() may run concurrently with
// acquire(): a request decided in the same instant may still see the old parameters.
#pragma once

#include <atomic>
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

class KeyLimiterFactory;

class KeyLimiter {
 public:
  virtual ~KeyLimiter() = default;
  [[nodiscard]] virtual RateDecision acquire(TimePoint now) = 0;
  // Takes on `factory`'s settings, which it has just changed (see above).
  virtual void reconfigure(const KeyLimiterFactory& factory, TimePoint now) = 0;
};

// GCRA parameters that every key of a guard reads on each request and a reload may change: a
// sequence lock, so that a reader always gets one consistent set without a lock or an allocation.
// One writer at a time.
class GcraParamsCell {
 public:
  explicit GcraParamsCell(const resilience::Gcra::Params& p) { store(p); }
  [[nodiscard]] resilience::Gcra::Params load() const noexcept;
  void store(const resilience::Gcra::Params& p) noexcept;

 private:
  std::atomic<std::uint64_t> seq_{0};
  std::atomic<std::int64_t> interval_{1};
  std::atomic<std::int64_t> offset_{1};
  std::atomic<std::uint64_t> burst_{1};
};

// Makes limiters for one validated rate_limit config.
class KeyLimiterFactory {
 public:
  explicit KeyLimiterFactory(const config::RateLimit& settings);

  // Whether keys made for `a` can take on `b` in place: the same algorithm (and, for
  // sliding_window, the same period: its buckets are slices of it).
  [[nodiscard]] static bool canReconfigure(const config::RateLimit& a, const config::RateLimit& b);
  // New settings for the keys made from now on; existing keys take them in reconfigure(). Not
  // concurrent with make() (a KeyTable calls it under every shard's lock).
  void setSettings(const config::RateLimit& settings);

  [[nodiscard]] std::unique_ptr<KeyLimiter> make(TimePoint now) const;
  [[nodiscard]] Duration idleReset() const { return idle_reset_; }
  [[nodiscard]] const config::RateLimit& settings() const { return settings_; }
  [[nodiscard]] double ratePerSecond() const;
  // GCRA: the parameters now, and those before the last setSettings().
  [[nodiscard]] const GcraParamsCell& gcra() const { return gcra_; }
  [[nodiscard]] const resilience::Gcra::Params& gcraBefore() const { return gcra_before_; }

 private:
  config::RateLimit settings_;
  GcraParamsCell gcra_;  // shared by every GCRA key (they keep a reference)
  resilience::Gcra::Params gcra_before_;
  Duration idle_reset_{};
};

}  // namespace sluice::gateway::guards
