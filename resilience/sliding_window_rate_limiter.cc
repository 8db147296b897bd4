#include "resilience/sliding_window_rate_limiter.h"

namespace sluice::resilience {

std::optional<std::string> SlidingWindowRateLimiter::validate(const Settings& settings) {
  if (settings.limit == 0) {
    return "limit must be at least 1";
  }
  return SlidingWindow<std::uint64_t>::validate(settings.window, settings.bucket_count);
}

SlidingWindowRateLimiter::SlidingWindowRateLimiter(const Settings& settings)
    : limit_(settings.limit), window_(settings.window, settings.bucket_count) {}

std::uint64_t SlidingWindowRateLimiter::countLocked(TimePoint now) const {
  // Never above the largest limit set (every admission kept it so), so the sum cannot overflow.
  std::uint64_t total = 0;
  window_.forEach(now, [&](const std::uint64_t& v) { total += v; });
  return total;
}

bool SlidingWindowRateLimiter::tryAcquire(std::uint64_t n, TimePoint now) {
  if (n == 0) {
    return true;
  }
  const std::lock_guard lock(mu_);
  const std::uint64_t limit = limit_.load(std::memory_order_relaxed);
  // The count may exceed a lowered limit: compare without subtracting from it.
  if (n > limit || countLocked(now) > limit - n) {
    return false;
  }
  window_.current(now) += n;
  return true;
}

std::uint64_t SlidingWindowRateLimiter::count(TimePoint now) const {
  const std::lock_guard lock(mu_);
  return countLocked(now);
}

std::uint64_t SlidingWindowRateLimiter::remaining(TimePoint now) const {
  const std::lock_guard lock(mu_);
  const std::uint64_t limit = limit_.load(std::memory_order_relaxed);
  const std::uint64_t count = countLocked(now);
  return count >= limit ? 0 : limit - count;
}

void SlidingWindowRateLimiter::setLimit(std::uint64_t limit) {
  const std::lock_guard lock(mu_);
  limit_.store(limit, std::memory_order_relaxed);
}

}  // namespace sluice::resilience
