#include "resilience/gradient_limit.h"

#include <algorithm>
#include <cmath>

namespace sluice::resilience {

std::optional<std::string> GradientLimit::validate(const Settings& settings) {
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
  if (!(settings.queue_size >= 0.0 && std::isfinite(settings.queue_size))) {
    return "queue_size must be finite and >= 0";
  }
  if (settings.long_window < 1) {
    return "long_window must be at least 1";
  }
  if (settings.window_min_samples < 1) {
    return "window_min_samples must be at least 1";
  }
  if (settings.window_min_duration < Duration::zero()) {
    return "window_min_duration must not be negative";
  }
  return std::nullopt;
}

namespace {

GradientLimit::Settings clamped(GradientLimit::Settings s) {
  s.min_limit = std::max<std::size_t>(s.min_limit, 1);
  s.min_limit = std::min(s.min_limit, AdaptiveLimit::kMaxLimit);
  s.max_limit = std::clamp(s.max_limit, s.min_limit, AdaptiveLimit::kMaxLimit);
  s.initial_limit = std::clamp(s.initial_limit, s.min_limit, s.max_limit);
  if (!(s.smoothing > 0.0 && s.smoothing <= 1.0)) {
    s.smoothing = 0.2;
  }
  if (!(s.queue_size >= 0.0 && std::isfinite(s.queue_size))) {
    s.queue_size = 4;
  }
  s.long_window = std::max<std::size_t>(s.long_window, 1);
  s.window_min_samples = std::max<std::size_t>(s.window_min_samples, 1);
  s.window_min_duration = std::max(s.window_min_duration, Duration::zero());
  return s;
}

}  // namespace

GradientLimit::GradientLimit(const Settings& settings) noexcept
    : settings_(clamped(settings)),
      limit_(settings_.initial_limit),
      estimate_snapshot_(static_cast<double>(settings_.initial_limit)),
      estimate_(static_cast<double>(settings_.initial_limit)) {}

void GradientLimit::onSample(TimePoint now, Duration rtt, std::size_t inflight,
                             bool /*dropped*/) noexcept {
  // Drops need no special case: Gradient2 reacts to their (long) RTT like to any other.
  latest_ = std::max(latest_, now);
  if (rtt <= Duration::zero()) {
    return;
  }
  if (!window_opened_at_) {
    window_opened_at_ = latest_;
  }
  ++window_samples_;
  window_rtt_sum_ns_ += static_cast<double>(rtt.count());
  window_peak_inflight_ = std::max(window_peak_inflight_, inflight);
  if (window_samples_ >= settings_.window_min_samples &&
      latest_ - *window_opened_at_ >= settings_.window_min_duration) {
    closeWindow();
  }
}

void GradientLimit::closeWindow() noexcept {
  const double short_rtt = window_rtt_sum_ns_ / static_cast<double>(window_samples_);
  const std::size_t peak = window_peak_inflight_;
  window_opened_at_.reset();
  window_samples_ = 0;
  window_rtt_sum_ns_ = 0;
  window_peak_inflight_ = 0;

  // The first update always initialises the baseline, even with warmup_windows == 0.
  if (long_updates_ < std::max<std::size_t>(settings_.warmup_windows, 1)) {
    ++long_updates_;
    long_sum_ns_ += short_rtt;
    long_rtt_ns_ = long_sum_ns_ / static_cast<double>(long_updates_);
  } else {
    const double factor = 2.0 / (static_cast<double>(settings_.long_window) + 1.0);
    // Incremental form of long * (1 - factor) + short * factor: exact when short == long, so a
    // steady latency yields a gradient of exactly 1.
    long_rtt_ns_ += (short_rtt - long_rtt_ns_) * factor;
  }
  const double long_rtt = long_rtt_ns_;
  if (long_rtt / short_rtt > 2.0) {
    long_rtt_ns_ *= 0.9;
  }
  short_rtt_snapshot_.store(std::llround(short_rtt), std::memory_order_relaxed);
  long_rtt_snapshot_.store(std::llround(long_rtt_ns_), std::memory_order_relaxed);

  if (static_cast<double>(peak) < estimate_ / 2.0) {
    return;
  }
  const double gradient = std::clamp(long_rtt / short_rtt, 0.5, 1.0);
  const double target = estimate_ * gradient + settings_.queue_size;
  estimate_ = estimate_ * (1.0 - settings_.smoothing) + target * settings_.smoothing;
  estimate_ = std::clamp(estimate_, static_cast<double>(settings_.min_limit),
                         static_cast<double>(settings_.max_limit));
  estimate_snapshot_.store(estimate_, std::memory_order_relaxed);
  limit_.store(static_cast<std::size_t>(estimate_), std::memory_order_relaxed);
}

}  // namespace sluice::resilience
