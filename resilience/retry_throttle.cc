#include "resilience/retry_throttle.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

namespace sluice::resilience {
namespace {

constexpr double kMilli = 1000.0;

// Rounds to whole milli-tokens: the nearest, because a decimal setting such as 0.29 arrives as
// the double just below it and must still mean 290.
std::int64_t toMilli(double value, std::int64_t lo, std::int64_t hi) {
  if (!(value >= 0.0)) {
    return lo;  // NaN and negatives
  }
  const double scaled = std::round(value * kMilli);
  if (scaled >= static_cast<double>(hi)) {
    return hi;
  }
  return std::max(lo, static_cast<std::int64_t>(scaled));
}

bool hasAtMostThreeDecimals(double value) {
  const double scaled = value * kMilli;
  return std::abs(scaled - std::round(scaled)) <= 1e-9 * std::max(1.0, std::abs(scaled));
}

}  // namespace

std::optional<std::string> RetryThrottle::validate(const Settings& settings) {
  if (!(settings.max_tokens > 0.0) || settings.max_tokens > kMaxMaxTokens) {
    return "max_tokens must be in (0, 1000]";
  }
  if (!hasAtMostThreeDecimals(settings.max_tokens)) {
    return "max_tokens supports at most 3 decimal places";
  }
  if (!(settings.token_ratio > 0.0) || !std::isfinite(settings.token_ratio)) {
    return "token_ratio must be positive and finite";
  }
  if (!hasAtMostThreeDecimals(settings.token_ratio)) {
    return "token_ratio supports at most 3 decimal places";
  }
  if (settings.token_ratio > settings.max_tokens) {
    return "token_ratio must not exceed max_tokens";
  }
  return std::nullopt;
}

RetryThrottle::RetryThrottle(const Settings& settings)
    : max_milli_(
          toMilli(settings.max_tokens, 1, static_cast<std::int64_t>(kMaxMaxTokens * kMilli))),
      ratio_milli_(toMilli(settings.token_ratio, 1, max_milli_)),
      milli_(max_milli_) {}

std::int64_t RetryThrottle::add(std::int64_t delta) {
  std::int64_t current = milli_.load(std::memory_order_relaxed);
  std::int64_t next = 0;
  do {
    next = std::clamp<std::int64_t>(current + delta, 0, max_milli_);
    if (next == current) {
      return current;  // already at a bound: nothing to write, no cache-line ownership taken
    }
  } while (!milli_.compare_exchange_weak(current, next, std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
  return next;
}

bool RetryThrottle::recordFailure() {
  return 2 * add(-static_cast<std::int64_t>(kMilli)) > max_milli_;
}

void RetryThrottle::recordSuccess() { add(ratio_milli_); }

bool RetryThrottle::retriesAllowed() const { return 2 * milliTokens() > max_milli_; }

}  // namespace sluice::resilience
