#include "resilience/warm_up_rate_limiter.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>

namespace sluice::resilience {
namespace {

// Token counts stay exact in double below 2^53; T * rate above 2^52 is refused by validate().
constexpr double kMaxTokenProduct = 0x1.0p52;

double warmUpSeconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

std::optional<std::string> WarmUpRateLimiter::validate(const Settings& settings) {
  if (!(settings.rate_per_second > 0.0) || settings.rate_per_second > kMaxRate) {
    return "rate_per_second must be in (0, 1e9]";
  }
  if (settings.warm_up_period <= Duration::zero()) {
    return "warm_up_period must be positive";
  }
  if (settings.cold_factor < 2) {
    return "cold_factor must be at least 2";
  }
  if (warmUpSeconds(settings.warm_up_period) * settings.rate_per_second > kMaxTokenProduct) {
    return "warm_up_period * rate_per_second must be at most 2^52 tokens";
  }
  return std::nullopt;
}

WarmUpRateLimiter::Params WarmUpRateLimiter::paramsFor(const Settings& settings) {
  Params p;
  p.rate = settings.rate_per_second > 0.0 ? std::min(settings.rate_per_second, kMaxRate) : 0.0;
  const auto cf = static_cast<std::int64_t>(std::max<std::uint32_t>(settings.cold_factor, 2));
  const double t = std::max(0.0, warmUpSeconds(settings.warm_up_period));
  const double product = std::min(t * p.rate, kMaxTokenProduct);
  // Sentinel's integer arithmetic: (int)(T * count) / (cf - 1) and (int)(2 T count / (1 + cf)).
  p.warning_tokens = static_cast<std::int64_t>(product) / (cf - 1);
  p.max_tokens =
      p.warning_tokens + static_cast<std::int64_t>(2.0 * product / (1.0 + static_cast<double>(cf)));
  p.slope = p.max_tokens > p.warning_tokens
                ? (static_cast<double>(cf) - 1.0) / p.rate /
                      static_cast<double>(p.max_tokens - p.warning_tokens)
                : 0.0;
  p.cold_threshold = static_cast<std::int64_t>(p.rate) / cf;
  return p;
}

double WarmUpRateLimiter::allowedRate(std::int64_t stored_tokens, const Params& params) {
  if (params.rate <= 0.0) {
    return 0.0;
  }
  if (params.slope > 0.0 && stored_tokens >= params.warning_tokens) {
    const auto above = static_cast<double>(stored_tokens - params.warning_tokens);
    return 1.0 / (above * params.slope + 1.0 / params.rate);
  }
  return params.rate;
}

WarmUpRateLimiter::WarmUpRateLimiter(const Settings& settings) : params_(paramsFor(settings)) {
  state_.stored = params_.max_tokens;
}

std::int64_t WarmUpRateLimiter::secondOf(TimePoint now) {
  const std::int64_t ns = now.time_since_epoch().count();
  constexpr std::int64_t kSecond = 1'000'000'000;
  return ns >= 0 ? ns / kSecond : -((-(ns + 1)) / kSecond) - 1;
}

WarmUpRateLimiter::State WarmUpRateLimiter::synced(State s, std::int64_t second,
                                                   const Params& params) {
  if (s.second == kNoSecond) {
    s.second = second;  // the first call: cold, nothing passed before
    s.limit = admitLimit(s.stored, params);
    return s;
  }
  if (second <= s.second) {
    return s;  // same second, or time went backwards: count in the latest second
  }
  // Tokens are integers, so Sentinel's (long)(stored + elapsed * count) adds floor(count) per
  // second.
  const auto refill = static_cast<std::int64_t>(params.rate);
  const auto passed = static_cast<std::int64_t>(s.passed);
  // The step for the second after the last active one, as Sentinel's syncToken: refill if below
  // the warning line or if that second's traffic was cold, cap, then charge its passes.
  std::int64_t stored = s.stored;
  if (stored < params.warning_tokens || passed < params.cold_threshold) {
    stored += refill;
  }
  stored = std::max<std::int64_t>(0, std::min(stored, params.max_tokens) - passed);
  // Each idle second after that passes nothing, so it refills while Sentinel's condition holds:
  // always if cold_threshold > 0, else (rates below cold_factor) only up to the warning line.
  const std::int64_t idle = second - s.second - 1;
  if (idle > 0 && refill > 0) {
    std::int64_t target = params.max_tokens;
    if (params.cold_threshold <= 0) {
      if (stored >= params.warning_tokens) {
        target = stored;
      } else {
        const std::int64_t steps = (params.warning_tokens - stored + refill - 1) / refill;
        target = std::min(params.max_tokens, stored + steps * refill);
      }
    }
    const std::int64_t room = std::max<std::int64_t>(0, target - stored);
    stored += idle >= room / refill + 1 ? room : idle * refill;
  }
  s.stored = stored;
  s.limit = admitLimit(stored, params);
  s.second = second;
  s.passed = 0;
  return s;
}

std::uint64_t WarmUpRateLimiter::admitLimit(std::int64_t stored, const Params& params) {
  // Sentinel compares with Math.nextUp(rate) so that 1 / (1 / count) rounding just below count
  // does not refuse the count-th request. allowed <= count <= kMaxRate, so the cast is safe.
  const double allowed =
      std::nextafter(allowedRate(stored, params), std::numeric_limits<double>::infinity());
  return static_cast<std::uint64_t>(std::floor(allowed));
}

bool WarmUpRateLimiter::tryAcquire(std::uint64_t n, TimePoint now) {
  const std::lock_guard<std::mutex> lock(mu_);
  state_ = synced(state_, secondOf(now), params_);
  if (n == 0) {
    return true;
  }
  // passed + n <= allowed  <=>  passed + n <= floor(allowed) for whole requests.
  if (n > state_.limit || state_.passed > state_.limit - n) {
    return false;
  }
  state_.passed += n;
  return true;
}

WarmUpRateLimiter::Snapshot WarmUpRateLimiter::snapshot(TimePoint now) const {
  const std::lock_guard<std::mutex> lock(mu_);
  const State s = synced(state_, secondOf(now), params_);
  return Snapshot{.stored_tokens = s.stored,
                  .allowed_rate = allowedRate(s.stored, params_),
                  .passed = s.passed};
}

}  // namespace sluice::resilience
