#include "resilience/auto_limit.h"

#include <algorithm>
#include <cmath>

namespace sluice::resilience {

namespace {

bool finiteNotBelow(double v, double low) { return v >= low && std::isfinite(v); }

}  // namespace

std::optional<std::string> AutoLimit::validate(const Settings& settings) {
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
  if (settings.sample_window <= Duration::zero()) {
    return "sample_window must be positive";
  }
  if (settings.min_sample_count < 1) {
    return "min_sample_count must be at least 1";
  }
  if (settings.max_sample_count < settings.min_sample_count) {
    return "max_sample_count must be >= min_sample_count";
  }
  if (settings.sampling_interval < Duration::zero()) {
    return "sampling_interval must not be negative";
  }
  if (settings.remeasure_interval <= Duration::zero()) {
    return "remeasure_interval must be positive";
  }
  // Negated comparisons so that NaN is rejected too.
  if (!(settings.remeasure_jitter >= 0.0 && settings.remeasure_jitter <= 1.0)) {
    return "remeasure_jitter must be in [0, 1]";
  }
  if (!(settings.reduce_ratio_while_remeasure > 0.0 &&
        settings.reduce_ratio_while_remeasure <= 1.0)) {
    return "reduce_ratio_while_remeasure must be in (0, 1]";
  }
  if (!(settings.ema_alpha > 0.0 && settings.ema_alpha <= 1.0)) {
    return "ema_alpha must be in (0, 1]";
  }
  if (!finiteNotBelow(settings.fail_punish_ratio, 0.0)) {
    return "fail_punish_ratio must be finite and >= 0";
  }
  if (!finiteNotBelow(settings.min_explore_ratio, 0.0)) {
    return "min_explore_ratio must be finite and >= 0";
  }
  if (!finiteNotBelow(settings.max_explore_ratio, settings.min_explore_ratio)) {
    return "max_explore_ratio must be finite and >= min_explore_ratio";
  }
  if (!(settings.explore_ratio_step > 0.0 && std::isfinite(settings.explore_ratio_step))) {
    return "explore_ratio_step must be finite and > 0";
  }
  if (!finiteNotBelow(settings.latency_fluctuation_correction, 0.0)) {
    return "latency_fluctuation_correction must be finite and >= 0";
  }
  if (!finiteNotBelow(settings.burst_headroom, 0.0)) {
    return "burst_headroom must be finite and >= 0";
  }
  return std::nullopt;
}

namespace {

AutoLimit::Settings clamped(AutoLimit::Settings s) {
  const AutoLimit::Settings d;
  s.min_limit = std::clamp<std::size_t>(s.min_limit, 1, AdaptiveLimit::kMaxLimit);
  s.max_limit = std::clamp(s.max_limit, s.min_limit, AdaptiveLimit::kMaxLimit);
  s.initial_limit = std::clamp(s.initial_limit, s.min_limit, s.max_limit);
  if (s.sample_window <= Duration::zero()) {
    s.sample_window = d.sample_window;
  }
  s.min_sample_count = std::max<std::size_t>(s.min_sample_count, 1);
  s.max_sample_count = std::max(s.max_sample_count, s.min_sample_count);
  s.sampling_interval = std::max(s.sampling_interval, Duration::zero());
  if (s.remeasure_interval <= Duration::zero()) {
    s.remeasure_interval = d.remeasure_interval;
  }
  if (!(s.remeasure_jitter >= 0.0 && s.remeasure_jitter <= 1.0)) {
    s.remeasure_jitter = d.remeasure_jitter;
  }
  if (!(s.reduce_ratio_while_remeasure > 0.0 && s.reduce_ratio_while_remeasure <= 1.0)) {
    s.reduce_ratio_while_remeasure = d.reduce_ratio_while_remeasure;
  }
  if (!(s.ema_alpha > 0.0 && s.ema_alpha <= 1.0)) {
    s.ema_alpha = d.ema_alpha;
  }
  if (!finiteNotBelow(s.fail_punish_ratio, 0.0)) {
    s.fail_punish_ratio = d.fail_punish_ratio;
  }
  if (!finiteNotBelow(s.min_explore_ratio, 0.0)) {
    s.min_explore_ratio = d.min_explore_ratio;
  }
  if (!finiteNotBelow(s.max_explore_ratio, s.min_explore_ratio)) {
    s.max_explore_ratio = std::max(d.max_explore_ratio, s.min_explore_ratio);
  }
  if (!(s.explore_ratio_step > 0.0 && std::isfinite(s.explore_ratio_step))) {
    s.explore_ratio_step = d.explore_ratio_step;
  }
  if (!finiteNotBelow(s.latency_fluctuation_correction, 0.0)) {
    s.latency_fluctuation_correction = d.latency_fluctuation_correction;
  }
  if (!finiteNotBelow(s.burst_headroom, 0.0)) {
    s.burst_headroom = d.burst_headroom;
  }
  return s;
}

}  // namespace

AutoLimit::AutoLimit(const Settings& settings) noexcept
    : settings_(clamped(settings)),
      limit_(settings_.initial_limit),
      explore_snapshot_(settings_.max_explore_ratio),
      rng_(settings_.seed),
      explore_(settings_.max_explore_ratio) {}

Duration AutoLimit::nextRemeasureDelay() noexcept {
  // Jitter keeps a fleet of instances started together from dipping in lock step.
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  const double share = 1.0 - settings_.remeasure_jitter + settings_.remeasure_jitter * u;
  return Duration(std::llround(static_cast<double>(settings_.remeasure_interval.count()) * share));
}

void AutoLimit::openWindow() noexcept {
  window_opened_at_ = latest_;
  window_successes_ = 0;
  window_ok_samples_ = 0;
  window_failed_samples_ = 0;
  window_ok_sum_ns_ = 0;
  window_failed_sum_ns_ = 0;
}

void AutoLimit::onSample(TimePoint now, Duration rtt, std::size_t /*inflight*/,
                         bool dropped) noexcept {
  latest_ = std::max(latest_, now);
  if (!started_) {
    started_ = true;
    next_remeasure_ = latest_ + nextRemeasureDelay();
  }
  if (!dropped) {
    ++window_successes_;
  }
  if (last_sample_ && latest_ - *last_sample_ < settings_.sampling_interval) {
    return;
  }
  last_sample_ = latest_;

  if (draining_until_) {
    if (latest_ < *draining_until_) {
      return;  // requests admitted before the dip may still have queued: not no-load samples
    }
    draining_until_.reset();
    have_min_latency_ = false;
    min_latency_ns_ = 0;
    next_remeasure_ = latest_ + nextRemeasureDelay();
    openWindow();
    publish();
  }
  if (!window_opened_at_) {
    window_opened_at_ = latest_;
  }

  const auto rtt_ns = static_cast<double>(std::max(rtt, Duration::zero()).count());
  if (!dropped) {
    ++window_ok_samples_;
    window_ok_sum_ns_ += rtt_ns;
  } else if (settings_.error_punish) {
    ++window_failed_samples_;
    window_failed_sum_ns_ += rtt_ns;
  }

  const std::uint64_t samples = window_ok_samples_ + window_failed_samples_;
  const Duration elapsed = latest_ - *window_opened_at_;
  if (samples < settings_.min_sample_count) {
    if (elapsed >= settings_.sample_window) {
      openWindow();  // too little traffic to learn from: keep the limit
    }
    return;
  }
  if (elapsed < settings_.sample_window && samples < settings_.max_sample_count) {
    return;
  }
  if (elapsed <= Duration::zero()) {
    return;  // no time has passed: a rate cannot be measured yet
  }
  if (window_ok_samples_ > 0) {
    closeWindow(static_cast<double>(elapsed.count()));
  } else {
    setLimit(std::floor(static_cast<double>(limit_.load(std::memory_order_relaxed)) / 2.0));
  }
  openWindow();
}

void AutoLimit::closeWindow(double elapsed_ns) noexcept {
  const double avg_latency =
      (window_failed_sum_ns_ * settings_.fail_punish_ratio + window_ok_sum_ns_) /
      static_cast<double>(window_ok_samples_);
  const double qps = static_cast<double>(window_successes_) * 1e9 / elapsed_ns;

  if (!have_min_latency_) {
    min_latency_ns_ = avg_latency;
    have_min_latency_ = true;
  } else if (avg_latency < min_latency_ns_) {
    min_latency_ns_ += (avg_latency - min_latency_ns_) * settings_.ema_alpha;
  }
  // The peak decays ten times slower than the latency: a lower rate usually means less demand,
  // not less capacity, while a lower latency means the service really got faster (brpc's note).
  if (!have_max_qps_ || qps >= max_qps_) {
    max_qps_ = qps;
    have_max_qps_ = true;
  } else {
    max_qps_ += (qps - max_qps_) * settings_.ema_alpha / 10.0;
  }

  const double little = min_latency_ns_ * max_qps_ / 1e9;  // the no-load concurrency
  if (latest_ >= next_remeasure_) {
    // Twice the current latency lets everything admitted before the dip finish first.
    draining_until_ = latest_ + Duration(std::llround(2.0 * avg_latency));
    setLimit(std::ceil(little * settings_.reduce_ratio_while_remeasure));
  } else {
    const double tolerated = min_latency_ns_ * (1.0 + settings_.min_explore_ratio *
                                                          settings_.latency_fluctuation_correction);
    const bool unqueued = avg_latency <= tolerated;
    if (unqueued || qps <= max_qps_ / (1.0 + settings_.min_explore_ratio)) {
      explore_ = std::min(settings_.max_explore_ratio, explore_ + settings_.explore_ratio_step);
    } else {
      explore_ = std::max(settings_.min_explore_ratio, explore_ - settings_.explore_ratio_step);
    }
    double target = little * (1.0 + explore_);
    // While nothing queues, room for the demand's own bursts: arrivals in flight at once vary
    // about their mean like a Poisson count, sqrt(little), and 30 % of a small mean is less
    // than one request.
    if (unqueued) target += settings_.burst_headroom * std::sqrt(little);
    // Rounded up (brpc truncates): a limit of 2 with 30 % headroom must be able to become 3, or
    // a service of a few workers never gets past the first limit its quiet start measured. The
    // small allowance keeps float noise (228.00000000001) from adding a whole slot.
    setLimit(std::ceil(target - 1e-6));
  }
  publish();
}

void AutoLimit::setLimit(double target) noexcept {
  const double bounded = std::clamp(target, static_cast<double>(settings_.min_limit),
                                    static_cast<double>(settings_.max_limit));
  limit_.store(static_cast<std::size_t>(bounded), std::memory_order_relaxed);
}

void AutoLimit::publish() noexcept {
  min_latency_snapshot_.store(std::llround(min_latency_ns_), std::memory_order_relaxed);
  max_qps_snapshot_.store(max_qps_, std::memory_order_relaxed);
  explore_snapshot_.store(explore_, std::memory_order_relaxed);
  remeasuring_snapshot_.store(draining_until_.has_value(), std::memory_order_relaxed);
}

}  // namespace sluice::resilience
