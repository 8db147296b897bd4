#include "resilience/vegas_limit.h"

#include <algorithm>
#include <cmath>

namespace sluice::resilience {

std::optional<std::string> VegasLimit::validate(const Settings& settings) {
  if (settings.min_limit < 1) {
    return "min_limit must be at least 1";
  }
  if (settings.max_limit < settings.min_limit) {
    return "max_limit must be >= min_limit";
  }
  if (settings.max_limit > kMaxLimit) {
    return "max_limit must be at most 2^40";
  }
  if (settings.initial_limit < settings.min_limit || settings.initial_limit > settings.max_limit) {
    return "initial_limit must be within [min_limit, max_limit]";
  }
  // Negated comparisons so that NaN is rejected too.
  if (!(settings.smoothing > 0.0 && settings.smoothing <= 1.0)) {
    return "smoothing must be in (0, 1]";
  }
  if (!(settings.alpha_factor > 0.0 && std::isfinite(settings.alpha_factor))) {
    return "alpha_factor must be finite and > 0";
  }
  if (!(settings.beta_factor >= settings.alpha_factor && std::isfinite(settings.beta_factor))) {
    return "beta_factor must be finite and >= alpha_factor";
  }
  return std::nullopt;
}

namespace {

VegasLimit::Settings clamped(VegasLimit::Settings s) {
  s.min_limit = std::clamp<std::size_t>(s.min_limit, 1, AdaptiveLimit::kMaxLimit);
  s.max_limit = std::clamp(s.max_limit, s.min_limit, AdaptiveLimit::kMaxLimit);
  s.initial_limit = std::clamp(s.initial_limit, s.min_limit, s.max_limit);
  if (!(s.smoothing > 0.0 && s.smoothing <= 1.0)) {
    s.smoothing = 1.0;
  }
  if (!(s.alpha_factor > 0.0 && std::isfinite(s.alpha_factor))) {
    s.alpha_factor = 3;
  }
  if (!(s.beta_factor >= s.alpha_factor && std::isfinite(s.beta_factor))) {
    s.beta_factor = std::max(6.0, s.alpha_factor);
  }
  return s;
}

}  // namespace

VegasLimit::VegasLimit(const Settings& settings) noexcept
    : settings_(clamped(settings)),
      limit_(settings_.initial_limit),
      estimate_snapshot_(static_cast<double>(settings_.initial_limit)),
      estimate_(static_cast<double>(settings_.initial_limit)),
      rng_(settings_.seed) {
  resetProbe();
}

double VegasLimit::log10Root(std::size_t limit) noexcept {
  if (limit < 1000) {
    // floor(log10(limit)) by counting digits: exact, unlike std::log10 near powers of ten.
    double digits = 0;
    for (std::size_t v = limit; v >= 10; v /= 10) {
      ++digits;
    }
    return std::max(1.0, digits);
  }
  return std::floor(std::sqrt(static_cast<double>(limit)));
}

void VegasLimit::resetProbe() noexcept {
  // Jitter keeps a fleet of instances from re-probing in lock step.
  probe_jitter_ = std::uniform_real_distribution<double>(0.5, 1.0)(rng_);
  samples_since_probe_ = 0;
}

void VegasLimit::setEstimate(double target) noexcept {
  target = std::clamp(target, static_cast<double>(settings_.min_limit),
                      static_cast<double>(settings_.max_limit));
  estimate_ = (1.0 - settings_.smoothing) * estimate_ + settings_.smoothing * target;
  estimate_snapshot_.store(estimate_, std::memory_order_relaxed);
  limit_.store(static_cast<std::size_t>(estimate_), std::memory_order_relaxed);
}

void VegasLimit::decrease() noexcept {
  setEstimate(estimate_ - log10Root(static_cast<std::size_t>(estimate_)));
}

void VegasLimit::onSample(TimePoint /*now*/, Duration rtt, std::size_t inflight,
                          bool dropped) noexcept {
  if (rtt <= Duration::zero()) {
    if (dropped) {
      decrease();
    }
    return;
  }

  ++samples_since_probe_;
  if (settings_.probe_multiplier > 0 &&
      static_cast<double>(samples_since_probe_) >=
          probe_jitter_ * static_cast<double>(settings_.probe_multiplier) * estimate_) {
    resetProbe();
    rtt_noload_ = rtt;
    rtt_noload_snapshot_.store(rtt.count(), std::memory_order_relaxed);
    return;
  }
  if (rtt_noload_ == Duration::zero() || rtt < rtt_noload_) {
    rtt_noload_ = rtt;
    rtt_noload_snapshot_.store(rtt.count(), std::memory_order_relaxed);
    return;
  }

  if (dropped) {
    decrease();
    return;
  }
  // inflight * 2 < L, written as a division so that a huge inflight cannot wrap.
  if (static_cast<double>(inflight) < estimate_ / 2.0) {
    return;
  }
  const auto floor_limit = static_cast<std::size_t>(estimate_);
  const double f = log10Root(floor_limit);
  const double queue = std::ceil(estimate_ * (1.0 - static_cast<double>(rtt_noload_.count()) /
                                                        static_cast<double>(rtt.count())));
  const double alpha = settings_.alpha_factor * f;
  const double beta = settings_.beta_factor * f;
  if (queue <= f) {
    setEstimate(estimate_ + beta);
  } else if (queue < alpha) {
    setEstimate(estimate_ + f);
  } else if (queue > beta) {
    setEstimate(estimate_ - f);
  }
}

}  // namespace sluice::resilience
