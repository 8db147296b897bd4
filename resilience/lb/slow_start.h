// SlowStart: ramps a new or recovered host's weight up over a window instead of sending it its
// full share at once (cold caches, JIT warm-up, connection pools). Envoy's slow_start_config.
//
//   SlowStart ramp(SlowStart::Settings{.window = std::chrono::seconds(30)}, hosts.size());
//   ramp.start(host, now);                                  // host added or back to healthy
//   p2c.setWeight(host, ramp.weight(host, base_weight[host], now));  // e.g. every 250 ms
//   if (!ramp.ramping(host, now)) { /* stop refreshing */ }
//
// Formula (Envoy, "Slow start mode", arch_overview/upstream/load_balancing/slow_start):
//   time_factor = min(1, elapsed / window)       elapsed = now - start, 0 if now < start
//   factor      = max(min_weight_percent / 100, time_factor ^ (1 / aggression))
//   weight      = base * factor, rounded to nearest, at least 1 when base > 0
// aggression 1 ramps linearly; above 1 it ramps faster at first (2: square root), below 1 slower.
// Differences from Envoy: elapsed is exact (Envoy rounds it up to at least 1 s), and the ramp
// ends at elapsed >= window (factor exactly 1) rather than at the next host update.
// Integer weights: small bases ramp in coarse steps (base 1 stays 1); scale base weights (e.g.
// x100) for a smooth ramp.
//
// Thread-safety: none (one per worker, or guard it); const methods may run concurrently.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "resilience/clock.h"

namespace sluice::resilience {

class SlowStart {
 public:
  struct Settings {
    // How long the ramp lasts; > 0.
    std::chrono::nanoseconds window = std::chrono::seconds(30);
    // > 0, finite. 1 = linear.
    double aggression = 1.0;
    // Floor of the factor, in percent of the base weight, [0, 100]. Envoy's default 10.
    double min_weight_percent = 10.0;
  };

  // nullopt if usable, else what is wrong.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings) {
    if (settings.window <= std::chrono::nanoseconds::zero()) {
      return "SlowStart: window must be positive";
    }
    if (!std::isfinite(settings.aggression) || settings.aggression <= 0) {
      return "SlowStart: aggression must be finite and > 0";
    }
    if (!(settings.min_weight_percent >= 0 && settings.min_weight_percent <= 100)) {
      return "SlowStart: min_weight_percent must be in [0, 100]";
    }
    return std::nullopt;
  }

  // `hosts` hosts, none ramping (they are established). Precondition: validate(settings) is
  // nullopt (otherwise: window at least 1 ns, aggression 1, min_weight_percent clamped).
  SlowStart(const Settings& settings, std::size_t hosts)
      : window_ns_(settings.window.count() > 0 ? static_cast<double>(settings.window.count())
                                               : 1.0),
        inverse_aggression_(std::isfinite(settings.aggression) && settings.aggression > 0
                                ? 1.0 / settings.aggression
                                : 1.0),
        min_factor_(
            settings.min_weight_percent >= 0
                ? (settings.min_weight_percent <= 100 ? settings.min_weight_percent / 100 : 1.0)
                : 0.0),
        starts_(hosts) {}

  // The host (re)enters slow start at `now`: call when it is added or becomes healthy again.
  // Out of range: no effect.
  void start(std::size_t host, TimePoint now) {
    if (host < starts_.size()) {
      starts_[host] = now;
    }
  }

  // Ends the host's ramp at once (factor 1).
  void finish(std::size_t host) {
    if (host < starts_.size()) {
      starts_[host].reset();
    }
  }

  // True while the host's factor is below 1: started and elapsed < window.
  [[nodiscard]] bool ramping(std::size_t host, TimePoint now) const {
    return factor(host, now) < 1;
  }

  // The factor in [min_weight_percent / 100, 1] (formula in the file comment); 1 for a host not
  // ramping or out of range.
  [[nodiscard]] double factor(std::size_t host, TimePoint now) const {
    if (host >= starts_.size() || !starts_[host]) {
      return 1.0;
    }
    const TimePoint start = *starts_[host];
    const double elapsed = now > start ? static_cast<double>((now - start).count()) : 0.0;
    if (elapsed >= window_ns_) {
      return 1.0;
    }
    const double ramp = std::pow(elapsed / window_ns_, inverse_aggression_);
    return ramp > min_factor_ ? ramp : min_factor_;
  }

  // base * factor(host, now), rounded to nearest; at least 1 when base > 0, 0 when base is 0.
  [[nodiscard]] std::uint32_t weight(std::size_t host, std::uint32_t base, TimePoint now) const {
    if (base == 0) {
      return 0;
    }
    const double scaled = std::round(static_cast<double>(base) * factor(host, now));
    return scaled < 1 ? 1 : static_cast<std::uint32_t>(scaled);
  }

  // Appends a host (index size() before the call), ramping from `now` if `ramp` is true.
  void addHost(bool ramp, TimePoint now) {
    starts_.push_back(ramp ? std::optional<TimePoint>(now) : std::nullopt);
  }
  // Erases host, shifting later hosts down one index. Out of range: no effect.
  void removeHost(std::size_t host) {
    if (host < starts_.size()) {
      starts_.erase(starts_.begin() + static_cast<std::ptrdiff_t>(host));
    }
  }

  [[nodiscard]] std::size_t size() const { return starts_.size(); }

 private:
  double window_ns_;
  double inverse_aggression_;
  double min_factor_;
  std::vector<std::optional<TimePoint>> starts_;  // nullopt: not ramping
};

}  // namespace sluice::resilience
