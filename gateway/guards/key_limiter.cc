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
  explicit GcraKey(const GcraParamsCell& p) : params_(p) {}
  RateDecision acquire(TimePoint now) override {
    const auto params = params_.load();
    const std::int64_t now_ns = now.time_since_epoch().count();
    std::int64_t tat = tat_.load(std::memory_order_relaxed);
    resilience::Gcra::Decision d;
    for (;;) {
      d = resilience::Gcra::decide(tat, now_ns, 1, params);
      if (!d.allowed || tat_.compare_exchange_weak(tat, d.new_state, std::memory_order_relaxed)) {
        break;
      }
    }
    return {d.allowed ? RateDecision::Kind::Allow : RateDecision::Kind::Reject,
            d.allowed ? Duration::zero() : d.retry_after,
            d.limit,
            Duration{params.burst_offset_ns},
            d.remaining,
            d.reset_after};
  }
  // What the key had left under the old parameters is what it has under the new ones (capped at
  // the new burst), refilling at the new rate: resilience::Gcra::rescaleState.
  void reconfigure(const KeyLimiterFactory& factory, TimePoint now) override {
    const auto& before = factory.gcraBefore();
    const auto after = factory.gcra().load();
    const std::int64_t now_ns = now.time_since_epoch().count();
    std::int64_t tat = tat_.load(std::memory_order_relaxed);
    while (!tat_.compare_exchange_weak(tat,
                                       resilience::Gcra::rescaleState(tat, now_ns, before, after),
                                       std::memory_order_relaxed)) {
    }
  }

 private:
  const GcraParamsCell& params_;
  std::atomic<std::int64_t> tat_{resilience::Gcra::kEmptyState};
};

class TokenBucketKey final : public KeyLimiter {
 public:
  TokenBucketKey(double rate, std::uint64_t burst, TimePoint now)
      : bucket_(rate, burst, now), rate_(rate), burst_(burst) {}
  RateDecision acquire(TimePoint now) override {
    const bool ok = bucket_.tryAcquire(now);
    const double tokens = std::max(0.0, bucket_.tokens(now));
    const double rate = rate_.load(std::memory_order_relaxed);
    const auto burst = burst_.load(std::memory_order_relaxed);
    RateDecision d;
    d.kind = ok ? RateDecision::Kind::Allow : RateDecision::Kind::Reject;
    d.wait = ok ? Duration::zero() : seconds((1.0 - tokens) / rate);
    d.quota = burst;
    d.window = seconds(static_cast<double>(burst) / rate);
    d.remaining = static_cast<std::uint64_t>(std::floor(tokens));
    d.reset = seconds((static_cast<double>(burst) - tokens) / rate);
    return d;
  }
  // The library's own: tokens at `now` are kept (capped at the new burst).
  void reconfigure(const KeyLimiterFactory& factory, TimePoint now) override {
    const double rate = factory.ratePerSecond();
    const std::uint64_t burst = factory.settings().burst;
    bucket_.setSettings({rate, burst}, now);
    rate_.store(rate, std::memory_order_relaxed);
    burst_.store(burst, std::memory_order_relaxed);
  }

 private:
  resilience::TokenBucket bucket_;
  std::atomic<double> rate_;
  std::atomic<std::uint64_t> burst_;
};

resilience::LeakyBucket::Settings leakySettings(const KeyLimiterFactory& f) {
  resilience::LeakyBucket::Settings s;
  s.rate_per_second = f.ratePerSecond();
  s.burst = f.settings().burst;
  s.delay = f.settings().delay;
  s.nodelay = f.settings().nodelay;
  return s;
}

class LeakyBucketKey final : public KeyLimiter {
 public:
  explicit LeakyBucketKey(const resilience::LeakyBucket::Settings& s)
      : bucket_(s), rate_(bucket_.settings().rate_per_second), burst_(bucket_.settings().burst) {}
  RateDecision acquire(TimePoint now) override {
    const auto r = bucket_.tryAcquire(now);
    const std::uint64_t burst = burst_.load(std::memory_order_relaxed);
    const double rate = rate_.load(std::memory_order_relaxed);
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
    d.window = seconds(static_cast<double>(burst + 1) / rate);  // saturating, like the others
    const double room = static_cast<double>(burst) - excess;
    d.remaining = room < 0 ? 0 : static_cast<std::uint64_t>(std::floor(room)) + 1;
    d.reset = seconds(excess / rate);
    return d;
  }
  // The library's own: the excess at `now` is kept.
  void reconfigure(const KeyLimiterFactory& factory, TimePoint now) override {
    const auto s = leakySettings(factory);
    bucket_.setSettings(s, now);
    rate_.store(bucket_.settings().rate_per_second, std::memory_order_relaxed);
    burst_.store(s.burst, std::memory_order_relaxed);
  }

 private:
  resilience::LeakyBucket bucket_;
  std::atomic<double> rate_;
  std::atomic<std::uint64_t> burst_;
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
  // The counts stay; only the limit changes (the period cannot: canReconfigure()).
  void reconfigure(const KeyLimiterFactory& factory, TimePoint /*now*/) override {
    limiter_.setLimit(factory.settings().requests);
  }

 private:
  resilience::SlidingWindowRateLimiter limiter_;
};

resilience::Gcra::Params gcraParams(const config::RateLimit& s) {
  return resilience::Gcra::paramsFor({s.requests, s.period, s.burst});
}

}  // namespace

resilience::Gcra::Params GcraParamsCell::load() const noexcept {
  for (;;) {
    const std::uint64_t before = seq_.load(std::memory_order_acquire);
    resilience::Gcra::Params p;
    p.emission_interval_ns = interval_.load(std::memory_order_relaxed);
    p.burst_offset_ns = offset_.load(std::memory_order_relaxed);
    p.burst = burst_.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if ((before & 1U) == 0 && seq_.load(std::memory_order_relaxed) == before) return p;
  }
}

void GcraParamsCell::store(const resilience::Gcra::Params& p) noexcept {
  seq_.fetch_add(1, std::memory_order_relaxed);  // odd: readers retry
  std::atomic_thread_fence(std::memory_order_release);
  interval_.store(p.emission_interval_ns, std::memory_order_relaxed);
  offset_.store(p.burst_offset_ns, std::memory_order_relaxed);
  burst_.store(p.burst, std::memory_order_relaxed);
  seq_.fetch_add(1, std::memory_order_release);
}

KeyLimiterFactory::KeyLimiterFactory(const config::RateLimit& settings)
    : settings_(settings), gcra_(gcraParams(settings)), gcra_before_(gcraParams(settings)) {
  setSettings(settings);
}

bool KeyLimiterFactory::canReconfigure(const config::RateLimit& a, const config::RateLimit& b) {
  return a.algorithm == b.algorithm &&
         (a.algorithm != RateAlgorithm::SlidingWindow || a.period == b.period);
}

double KeyLimiterFactory::ratePerSecond() const { return guards::ratePerSecond(settings_); }

void KeyLimiterFactory::setSettings(const config::RateLimit& settings) {
  settings_ = settings;
  gcra_before_ = gcra_.load();
  gcra_.store(gcraParams(settings_));
  const double rate = ratePerSecond();
  switch (settings_.algorithm) {
    case RateAlgorithm::Gcra:
      idle_reset_ = Duration{gcra_.load().burst_offset_ns};
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
  const double rate = ratePerSecond();
  switch (settings_.algorithm) {
    case RateAlgorithm::Gcra:
      return std::make_unique<GcraKey>(gcra_);
    case RateAlgorithm::TokenBucket:
      return std::make_unique<TokenBucketKey>(rate, settings_.burst, now);
    case RateAlgorithm::LeakyBucket:
      return std::make_unique<LeakyBucketKey>(leakySettings(*this));
    case RateAlgorithm::SlidingWindow:
      return std::make_unique<SlidingWindowKey>(
          resilience::SlidingWindowRateLimiter::Settings{settings_.requests, settings_.period, 10});
  }
  return nullptr;
}

}  // namespace sluice::gateway::guards
