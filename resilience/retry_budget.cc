#include "resilience/retry_budget.h"

#include <algorithm>
#include <cmath>

namespace sluice::resilience {
namespace {

double nonNegative(double x) { return std::isfinite(x) && x > 0 ? x : 0.0; }

// Decimal settings rarely multiply out exactly in binary (0.29 * 100 = 28.999999999999996); the
// tolerance makes the documented boundary hold for them. It is far below one retry for any
// realistic count, so it never admits a retry the formula forbids.
double floorOf(const RetryBudget::Settings& settings) {
  return nonNegative(settings.min_retries_per_second) *
         std::chrono::duration<double>(settings.window).count();
}

bool withinAllowance(std::uint64_t retries_after, double allowance) {
  constexpr double kRelativeTolerance = 1e-9;
  return static_cast<double>(retries_after) <=
         allowance + kRelativeTolerance * std::max(1.0, allowance);
}

}  // namespace

std::optional<std::string> RetryBudget::validate(const Settings& settings) {
  if (!std::isfinite(settings.retry_ratio) || settings.retry_ratio < 0) {
    return "retry_ratio must be finite and >= 0";
  }
  if (!std::isfinite(settings.min_retries_per_second) || settings.min_retries_per_second < 0) {
    return "min_retries_per_second must be finite and >= 0";
  }
  if (settings.max_in_flight_retries == 0) {
    return "max_in_flight_retries must be at least 1";
  }
  if (auto problem = SlidingWindow<Counts>::validate(settings.window, settings.bucket_count)) {
    return "window: " + *problem;
  }
  return std::nullopt;
}

RetryBudget::RetryBudget(const Settings& settings)
    : settings_(settings),
      floor_(floorOf(settings)),
      window_(settings.window, settings.bucket_count) {}

void RetryBudget::reconfigure(const Settings& settings, TimePoint /*now*/) {
  const std::lock_guard lock(mutex_);
  if (settings.window != settings_.window || settings.bucket_count != settings_.bucket_count) {
    window_ = SlidingWindow<Counts>(settings.window, settings.bucket_count);
  }
  settings_ = settings;
  floor_ = floorOf(settings);
}

RetryBudget::Settings RetryBudget::settings() const {
  const std::lock_guard lock(mutex_);
  return settings_;
}

void RetryBudget::recordRequests(TimePoint now, std::uint32_t count) {
  const std::lock_guard lock(mutex_);
  window_.current(now).requests += count;
}

RetryBudget::Snapshot RetryBudget::sumLocked(TimePoint now) const {
  Snapshot s;
  window_.forEach(now, [&](const Counts& c) {
    s.requests += c.requests;
    s.retries += c.retries;
  });
  s.allowance =
      std::max(nonNegative(settings_.retry_ratio) * static_cast<double>(s.requests), floor_);
  s.in_flight = in_flight_.load(std::memory_order_acquire);
  return s;
}

RetryBudget::Permit RetryBudget::tryAcquireRetry(TimePoint now) {
  const std::lock_guard lock(mutex_);
  const Snapshot s = sumLocked(now);
  if (!withinAllowance(s.retries + 1, s.allowance)) {
    return Permit{};
  }
  // Reserve the in-flight slot with a CAS so that Permit release (lock-free) never races it into
  // exceeding the cap.
  std::size_t in_flight = in_flight_.load(std::memory_order_acquire);
  do {
    if (in_flight >= settings_.max_in_flight_retries) {
      return Permit{};
    }
  } while (!in_flight_.compare_exchange_weak(in_flight, in_flight + 1, std::memory_order_acq_rel));
  window_.current(now).retries += 1;
  return Permit(this);
}

RetryBudget::Snapshot RetryBudget::snapshot(TimePoint now) const {
  const std::lock_guard lock(mutex_);
  return sumLocked(now);
}

}  // namespace sluice::resilience
