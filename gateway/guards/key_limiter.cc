#include "gateway/guards/key_limiter.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "resilience/gcra.h"
#include "resilience/leaky_bucket.h"
#include "resilience/sliding_window_rate_limiter.h"
#include "resilience/token_bucket.h"

namespace sluice::gateway::guards {
namespace {

using config::RateAlgorithm;
using std::chrono::duration_cast;

double ratePerSecond(const config::RateLimit& s) {
  return static_cast<double>(s.requests) * 1000.0 / static_cast<double>(s.period.count());
}

Duration seconds(double s) {
  if (!(s < 1e9)) return Duration::max();
  return duration_cast<Duration>(std::chrono::duration<double>(std::max(0.0, s)));
}

// GCRA keeps one TAT per key; the parameters are shared by the guard, so a key costs 8 bytes
// of state (plus the table's bookkeeping). The TAT is updated by compare-and-swap: a guard with a
// single key calls this from every worker without a lock.
class GcraKey final : public KeyLimiter {
 public:
  explicit GcraKey(const resilience::Gcra::Params& p) : params_(p) {}
  RateDecision acquire(TimePoint now) override {
    const std::int64_t now_ns = now.time_since_epoch().count();
    std::int64_t tat = tat_.load(std::memory_order_relaxed);
    resilience::Gcra::Decision d;
    for (;;) {
      d = resilience::Gcra::decide(tat, now_ns, 1, params_);
      if (!d.allowed || tat_.compare_exchange_weak(tat, d.new_state, std::memory_order_relaxed)) {
        break;
      }
    }
    return {d.allowed ? RateDecision::Kind::Allow : RateDecision::Kind::Reject,
            d.allowed ? Duration::zero() : d.retry_after,
            d.limit,
            Duration{params_.burst_offset_ns},
            d.remaining,
            d.reset_after};
  }

 private:
  const resilience::Gcra::Params& params_;
  std::atomic<std::int64_t> tat_{resilience::Gcra::kEmptyState};
};

class TokenBucketKey final : public KeyLimiter {
 public:
  TokenBucketKey(double rate, std::uint64_t burst, TimePoint now)
      : bucket_(rate, burst, now), rate_(rate), burst_(burst) {}
  RateDecision acquire(TimePoint now) override {
    const bool ok = bucket_.tryAcquire(now);
    const double tokens = std::max(0.0, bucket_.tokens(now));
    RateDecision d;
    d.kind = ok ? RateDecision::Kind::Allow : RateDecision::Kind::Reject;
    d.wait = ok ? Duration::zero() : seconds((1.0 - tokens) / rate_);
    d.quota = burst_;
    d.window = seconds(static_cast<double>(burst_) / rate_);
    d.remaining = static_cast<std::uint64_t>(std::floor(tokens));
    d.reset = seconds((static_cast<double>(burst_) - tokens) / rate_);
    return d;
  }

 private:
  resilience::TokenBucket bucket_;
  double rate_;
  std::uint64_t burst_;
};

class LeakyBucketKey final : public KeyLimiter {
 public:
  explicit LeakyBucketKey(const resilience::LeakyBucket::Settings& s)
      : bucket_(s), rate_(bucket_.settings().rate_per_second) {}
  RateDecision acquire(TimePoint now) override {
    const auto r = bucket_.tryAcquire(now);
    const std::uint64_t burst = bucket_.settings().burst;
    const double excess = bucket_.excess(now);  // what the next request would have
    RateDecision d;
    switch (r.decision) {
      case resilience::LeakyBucket::Decision::Allow:
        d.kind = RateDecision::Kind::Allow;
        break;
      case resilience::LeakyBucket::Decision::Delay:
        d.kind = RateDecision::Kind::Delay;
        d.wait = r.delay;
        break;
      case resilience::LeakyBucket::Decision::Reject:
        d.kind = RateDecision::Kind::Reject;
        d.wait = r.delay;
        break;
    }
    // The next request is accepted while its excess is <= burst; each one adds 1, and the
    // excess drains to 0 (a whole quota again) after excess * T.
    d.quota = burst + 1;
    d.window = seconds(static_cast<double>(burst + 1) / rate_);  // saturating, like the others
    const double room = static_cast<double>(burst) - excess;
    d.remaining = room < 0 ? 0 : static_cast<std::uint64_t>(std::floor(room)) + 1;
    d.reset = seconds(excess / rate_);
    return d;
  }

 private:
  resilience::LeakyBucket bucket_;
  double rate_;
};

class SlidingWindowKey final : public KeyLimiter {
 public:
  explicit SlidingWindowKey(const resilience::SlidingWindowRateLimiter::Settings& s)
      : limiter_(s) {}
  RateDecision acquire(TimePoint now) override {
    const bool ok = limiter_.tryAcquire(now);
    RateDecision d;
    d.kind = ok ? RateDecision::Kind::Allow : RateDecision::Kind::Reject;
    // When enough of the window's count expires depends on how it is spread over the buckets,
    // which the limiter does not expose; a whole window is the bound that is never too early
    // (Retry-After promises a request made after it may succeed).
    d.wait = ok ? Duration::zero() : limiter_.window();
    d.quota = limiter_.limit();
    d.window = limiter_.window();
    d.remaining = limiter_.remaining(now);
    d.reset = limiter_.window();
    return d;
  }

 private:
  resilience::SlidingWindowRateLimiter limiter_;
};

resilience::Gcra::Params gcraParams(const config::RateLimit& s) {
  return resilience::Gcra::paramsFor({s.requests, s.period, s.burst});
}

}  // namespace

KeyLimiterFactory::KeyLimiterFactory(const config::RateLimit& settings)
    : settings_(settings), gcra_(gcraParams(settings)) {
  const double rate = ratePerSecond(settings_);
  switch (settings_.algorithm) {
    case RateAlgorithm::Gcra:
      idle_reset_ = Duration{gcra_.burst_offset_ns};
      break;
    case RateAlgorithm::TokenBucket:
      idle_reset_ = seconds(static_cast<double>(settings_.burst) / rate);
      break;
    case RateAlgorithm::LeakyBucket:
      idle_reset_ = seconds(static_cast<double>(settings_.burst + 1) / rate);
      break;
    case RateAlgorithm::SlidingWindow:
      idle_reset_ = settings_.period;
      break;
  }
}

std::unique_ptr<KeyLimiter> KeyLimiterFactory::make(TimePoint now) const {
  const double rate = ratePerSecond(settings_);
  switch (settings_.algorithm) {
    case RateAlgorithm::Gcra:
      return std::make_unique<GcraKey>(gcra_);
    case RateAlgorithm::TokenBucket:
      return std::make_unique<TokenBucketKey>(rate, settings_.burst, now);
    case RateAlgorithm::LeakyBucket: {
      resilience::LeakyBucket::Settings s;
      s.rate_per_second = rate;
      s.burst = settings_.burst;
      s.delay = settings_.delay;
      s.nodelay = settings_.nodelay;
      return std::make_unique<LeakyBucketKey>(s);
    }
    case RateAlgorithm::SlidingWindow:
      return std::make_unique<SlidingWindowKey>(
          resilience::SlidingWindowRateLimiter::Settings{settings_.requests, settings_.period, 10});
  }
  return nullptr;
}

}  // namespace sluice::gateway::guards
