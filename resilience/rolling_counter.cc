#include "resilience/rolling_counter.h"

#include <limits>

namespace sluice::resilience {
namespace {

std::int64_t saturatingAdd(std::int64_t a, std::int64_t b) {
  std::int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) {
    return b > 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  }
  return out;
}

}  // namespace

std::optional<std::string> RollingCounter::validate(const Settings& settings) {
  return SlidingWindow<std::int64_t>::validate(settings.window, settings.bucket_count);
}

RollingCounter::RollingCounter(const Settings& settings)
    : window_(settings.window, settings.bucket_count) {}

void RollingCounter::add(std::int64_t amount, TimePoint now) {
  const std::lock_guard lock(mu_);
  std::int64_t& bucket = window_.current(now);
  bucket = saturatingAdd(bucket, amount);
}

std::int64_t RollingCounter::sum(TimePoint now) const {
  const std::lock_guard lock(mu_);
  std::int64_t total = 0;
  window_.forEach(now, [&](const std::int64_t& v) { total = saturatingAdd(total, v); });
  return total;
}

double RollingCounter::ratePerSecond(TimePoint now) const {
  const double seconds = std::chrono::duration<double>(window_.window()).count();
  return static_cast<double>(sum(now)) / seconds;
}

void RollingCounter::reset() {
  const std::lock_guard lock(mu_);
  window_.reset();
}

// The geometry never changes after construction, so these read it without the lock.
Duration RollingCounter::window() const { return window_.window(); }
Duration RollingCounter::bucketWidth() const { return window_.bucketWidth(); }
std::size_t RollingCounter::bucketCount() const { return window_.bucketCount(); }

}  // namespace sluice::resilience
