#include "resilience/lb/weight_adjuster.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::resilience {
namespace {

constexpr double kNanosPerSecond = 1e9;

bool finiteAtLeast(double value, double low) { return std::isfinite(value) && value >= low; }

WeightAdjuster::Settings sanitized(WeightAdjuster::Settings settings) {
  using std::chrono::nanoseconds;
  settings.decay_time = std::max(settings.decay_time, nanoseconds(1));
  settings.min_samples = finiteAtLeast(settings.min_samples, 0) ? settings.min_samples : 0;
  settings.error_penalty = finiteAtLeast(settings.error_penalty, 0) ? settings.error_penalty : 0;
  if (!(settings.min_factor > 0)) {
    settings.min_factor = 1e-6;  // NaN, zero or negative: the smallest useful floor
  }
  settings.min_factor = std::min(settings.min_factor, 1.0);
  settings.blackout = std::max(settings.blackout, nanoseconds::zero());
  settings.report_ttl = std::max(settings.report_ttl, nanoseconds(1));
  return settings;
}

}  // namespace

std::optional<std::string> WeightAdjuster::validate(const Settings& settings) {
  if (settings.decay_time <= std::chrono::nanoseconds::zero()) {
    return "WeightAdjuster: decay_time must be positive";
  }
  if (!finiteAtLeast(settings.min_samples, 0)) {
    return "WeightAdjuster: min_samples must be finite and >= 0";
  }
  if (!finiteAtLeast(settings.error_penalty, 0)) {
    return "WeightAdjuster: error_penalty must be finite and >= 0";
  }
  if (!(settings.min_factor > 0 && settings.min_factor <= 1)) {
    return "WeightAdjuster: min_factor must be in (0, 1]";
  }
  if (settings.blackout < std::chrono::nanoseconds::zero()) {
    return "WeightAdjuster: blackout must not be negative";
  }
  if (settings.report_ttl <= std::chrono::nanoseconds::zero()) {
    return "WeightAdjuster: report_ttl must be positive";
  }
  return std::nullopt;
}

WeightAdjuster::WeightAdjuster(const Settings& settings, std::size_t hosts, TimePoint now)
    : settings_(sanitized(settings)),
      tau_ns_(static_cast<double>(settings_.decay_time.count())),
      hosts_(hosts, HostState(now)) {}

double WeightAdjuster::decayFactor(const HostState& state, TimePoint now) const {
  if (now <= state.stamp) {
    return 1.0;
  }
  return std::exp(-static_cast<double>((now - state.stamp).count()) / tau_ns_);
}

void WeightAdjuster::decayTo(HostState& state, TimePoint now) const {
  if (now <= state.stamp) {
    return;  // earlier or equal: counts as happening at the stamp
  }
  const double w = decayFactor(state, now);
  state.count *= w;
  state.latency_sum_ns *= w;
  state.errors *= w;
  state.stamp = now;
}

void WeightAdjuster::recordResponse(std::size_t host, Duration latency, bool success,
                                    TimePoint now) {
  if (host >= hosts_.size()) {
    return;
  }
  HostState& state = hosts_[host];
  decayTo(state, now);
  state.count += 1;
  state.latency_sum_ns += latency > Duration::zero() ? static_cast<double>(latency.count()) : 0.0;
  state.errors += success ? 0.0 : 1.0;
}

void WeightAdjuster::reportUtilization(std::size_t host, double utilization, TimePoint now) {
  if (host >= hosts_.size() || !std::isfinite(utilization)) {
    return;
  }
  HostState& state = hosts_[host];
  if (utilization <= 0) {
    state.utilization = 0;
    state.report_run_start.reset();
    return;
  }
  // A report after the previous one expired starts a new run, with a new blackout (A58).
  if (!state.report_run_start || now - state.last_report > settings_.report_ttl) {
    state.report_run_start = now;
  }
  state.utilization = utilization;
  state.last_report = std::max(state.last_report, now);
}

bool WeightAdjuster::hasData(const HostState& state, TimePoint now) const {
  return state.count > 0 && state.count * decayFactor(state, now) >= settings_.min_samples;
}

bool WeightAdjuster::reportUsable(const HostState& state, TimePoint now) const {
  return state.report_run_start && state.utilization > 0 &&
         now - *state.report_run_start >= settings_.blackout &&
         now - state.last_report <= settings_.report_ttl;
}

std::vector<double> WeightAdjuster::factors(TimePoint now) const {
  // First the raw factor of every host with data (nullopt: none), then normalise to the best.
  std::vector<std::optional<double>> raw(hosts_.size());
  if (settings_.signal == Signal::Latency) {
    std::optional<double> best_latency;
    for (const HostState& state : hosts_) {
      if (hasData(state, now)) {
        const double mean = state.latency_sum_ns / state.count;
        best_latency = best_latency ? std::min(*best_latency, mean) : mean;
      }
    }
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      const HostState& state = hosts_[i];
      if (!hasData(state, now)) {
        continue;
      }
      const double mean = state.latency_sum_ns / state.count;
      const double speed = mean > 0 ? *best_latency / mean : 1.0;
      const double success =
          std::max(0.0, 1.0 - settings_.error_penalty * state.errors / state.count);
      raw[i] = speed * success;
    }
  } else {
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      const HostState& state = hosts_[i];
      if (!hasData(state, now) || !reportUsable(state, now)) {
        continue;
      }
      // The decay factor cancels in eps / qps. No qps factor: see the header.
      const double error_share = state.errors / state.count;  // eps / qps
      raw[i] = 1.0 / (state.utilization + error_share * settings_.error_penalty);
    }
  }
  double best = 0;
  for (const std::optional<double>& value : raw) {
    best = value ? std::max(best, *value) : best;
  }
  std::vector<double> result(hosts_.size(), 1.0);
  double sum = 0;
  std::size_t with_data = 0;
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    if (!raw[i]) {
      continue;
    }
    const double relative = best > 0 ? *raw[i] / best : 1.0;
    result[i] = std::clamp(relative, settings_.min_factor, 1.0);
    sum += result[i];
    ++with_data;
  }
  const double mean = with_data == 0 ? 1.0 : sum / static_cast<double>(with_data);
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    if (!raw[i]) {
      result[i] = mean;
    }
  }
  return result;
}

std::vector<std::uint32_t> WeightAdjuster::effectiveWeights(const std::vector<std::uint32_t>& base,
                                                            TimePoint now) const {
  const std::vector<double> factor = factors(now);
  std::vector<std::uint32_t> weights(base);
  const std::size_t n = std::min(base.size(), factor.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (base[i] == 0) {
      continue;
    }
    const double scaled = std::round(static_cast<double>(base[i]) * factor[i]);
    weights[i] = scaled < 1 ? 1 : static_cast<std::uint32_t>(scaled);
  }
  return weights;
}

std::optional<double> WeightAdjuster::meanLatencyNanos(std::size_t host) const {
  if (host >= hosts_.size() || hosts_[host].count <= 0) {
    return std::nullopt;
  }
  return hosts_[host].latency_sum_ns / hosts_[host].count;
}

std::optional<double> WeightAdjuster::errorRate(std::size_t host) const {
  if (host >= hosts_.size() || hosts_[host].count <= 0) {
    return std::nullopt;
  }
  return hosts_[host].errors / hosts_[host].count;
}

double WeightAdjuster::requestsPerSecond(std::size_t host, TimePoint now) const {
  if (host >= hosts_.size()) {
    return 0;
  }
  const HostState& state = hosts_[host];
  return state.count * decayFactor(state, now) * kNanosPerSecond / tau_ns_;
}

void WeightAdjuster::addHost(TimePoint now) { hosts_.emplace_back(now); }

void WeightAdjuster::removeHost(std::size_t host) {
  if (host < hosts_.size()) {
    hosts_.erase(hosts_.begin() + static_cast<std::ptrdiff_t>(host));
  }
}

void WeightAdjuster::resetHost(std::size_t host, TimePoint now) {
  if (host < hosts_.size()) {
    hosts_[host] = HostState(now);
  }
}

}  // namespace sluice::resilience
