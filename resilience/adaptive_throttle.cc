#include "resilience/adaptive_throttle.h"

#include <algorithm>
#include <cmath>

namespace sluice::resilience {
namespace {

double clampK(double k) {
  if (std::isnan(k)) {
    return 2.0;
  }
  return std::max(k, 1.0);
}

double clampUnit(double u) {
  constexpr double kBelowOne = 1.0 - 0x1.0p-53;
  if (!(u >= 0.0)) {
    return 0.0;  // also NaN
  }
  return std::min(u, kBelowOne);
}

}  // namespace

std::optional<std::string> AdaptiveThrottle::validate(const Settings& settings) {
  if (!std::isfinite(settings.k) || settings.k < 1.0) {
    return "k must be finite and >= 1";
  }
  if (auto problem = SlidingWindow<Counts>::validate(settings.window, settings.bucket_count)) {
    return "window: " + *problem;
  }
  return std::nullopt;
}

AdaptiveThrottle::AdaptiveThrottle(const Settings& settings)
    : k_(clampK(settings.k)), window_(settings.window, settings.bucket_count) {}

AdaptiveThrottle::Snapshot AdaptiveThrottle::sumLocked(TimePoint now) const {
  Snapshot s;
  window_.forEach(now, [&](const Counts& c) {
    s.requests += c.requests;
    s.accepts += c.accepts;
  });
  const auto requests = static_cast<double>(s.requests);
  s.rejection_probability =
      std::max(0.0, (requests - k_ * static_cast<double>(s.accepts)) / (requests + 1.0));
  return s;
}

AdaptiveThrottle::Permit AdaptiveThrottle::tryAcquire(TimePoint now, double u) {
  const std::lock_guard lock(mutex_);
  if (clampUnit(u) < sumLocked(now).rejection_probability) {
    window_.current(now).requests += 1;
    return Permit{};
  }
  return Permit(this);
}

void AdaptiveThrottle::record(TimePoint now, bool accepted) {
  const std::lock_guard lock(mutex_);
  Counts& bucket = window_.current(now);
  bucket.requests += 1;
  if (accepted) {
    bucket.accepts += 1;
  }
}

double AdaptiveThrottle::rejectionProbability(TimePoint now) const {
  return snapshot(now).rejection_probability;
}

AdaptiveThrottle::Snapshot AdaptiveThrottle::snapshot(TimePoint now) const {
  const std::lock_guard lock(mutex_);
  return sumLocked(now);
}

}  // namespace sluice::resilience
