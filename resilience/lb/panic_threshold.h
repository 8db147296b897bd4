// PanicThreshold: when too few hosts are healthy, balance across all of them instead of piling
// the whole load onto the few survivors (Envoy's healthy_panic_threshold).
//
//   PanicThreshold panic(PanicThreshold::Settings{.threshold_percent = 50});
//   const bool in_panic = panic.inPanic(healthy_count, hosts.size());
//   auto eligible = PanicThreshold::eligibility(in_panic, [&](std::size_t i) { return healthy[i];
//   }); std::optional<std::size_t> host = p2c.pick(rng(), load, eligible);
//
// Rationale: health checks fail in bulk for reasons other than the hosts (a network partition
// between checker and hosts, a dependency outage); if half the fleet is marked down, the other
// half gets twice its load and may fall over too. Below the threshold it is better to keep
// sending some traffic to "unhealthy" hosts, some of which likely work.
// Boundary: panic iff total > 0 and healthy * 100 < threshold_percent * total (strictly below:
// exactly at the threshold is not panic). threshold 0 disables panic mode; 100 panics as soon
// as any host is unhealthy. Counts may be host counts or weights (any consistent unit).
//
// Thread-safety: immutable; all methods const.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace sluice::resilience {

class PanicThreshold {
 public:
  struct Settings {
    // Percent of healthy hosts (or weight) below which to panic, [0, 100]. Envoy's default 50.
    double threshold_percent = 50.0;
  };

  // nullopt if usable, else what is wrong.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings) {
    if (!(settings.threshold_percent >= 0 && settings.threshold_percent <= 100)) {
      return "PanicThreshold: threshold_percent must be in [0, 100]";
    }
    return std::nullopt;
  }

  // Precondition: validate(settings) is nullopt (otherwise clamped into [0, 100]; NaN: 0).
  explicit PanicThreshold(const Settings& settings)
      : threshold_percent_(
            settings.threshold_percent >= 0
                ? (settings.threshold_percent <= 100 ? settings.threshold_percent : 100.0)
                : 0.0) {}

  // True iff total > 0 and healthy is strictly below threshold_percent % of total. healthy
  // above total counts as total. Exact (128-bit integers) with the threshold rounded to 1e-4 %.
  [[nodiscard]] bool inPanic(std::uint64_t healthy, std::uint64_t total) const {
    if (total == 0) {
      return false;
    }
    const std::uint64_t clamped = healthy < total ? healthy : total;
    __extension__ using Wide = unsigned __int128;  // __extension__: no -Wpedantic warning
    return static_cast<Wide>(clamped) * kMillionths <
           static_cast<Wide>(threshold_millionths_) * total;
  }

  // The eligibility predicate to hand a balancer: every host when in panic, else healthy(i).
  template <typename Healthy>
  [[nodiscard]] static auto eligibility(bool in_panic, Healthy&& healthy) {
    static_assert(std::is_invocable_r_v<bool, Healthy&, std::size_t>,
                  "healthy must be callable as bool(std::size_t host)");
    return [in_panic, healthy = std::forward<Healthy>(healthy)](std::size_t host) mutable {
      return in_panic || static_cast<bool>(healthy(host));
    };
  }

  [[nodiscard]] double thresholdPercent() const { return threshold_percent_; }

 private:
  static constexpr std::uint64_t kMillionths = 1000000;  // 100 % in units of 1e-4 %

  double threshold_percent_;
  std::uint64_t threshold_millionths_ =
      static_cast<std::uint64_t>(std::llround(threshold_percent_ * 10000.0));
};

}  // namespace sluice::resilience
