// BoundedLoad: consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
// "Consistent Hashing with Bounded Loads", SODA 2018; arXiv 1608.01350). Keys keep their ring
// host as long as it is not overloaded; a host at its cap passes new keys clockwise to the next
// host with room, so no host ever exceeds c times its fair share of the load.
//
//   BoundedLoad bounded(BoundedLoad::Settings{.balance_factor = 1.25});
//   std::optional<std::size_t> host = bounded.pick(
//       *ring, key_hash, [&](std::size_t i) { return stats[i].inFlight(); },
//       [&](std::size_t i) { return healthy[i]; });
//
// Bound (weighted form of the paper's): with L = the total load of the eligible hosts before
// this request, W = their total weight and c = balance_factor,
//   capacity(i) = ceil(c * (L + 1) * w_i / W),
// and host i may take the request iff load(i) + 1 <= capacity(i), i.e. load(i) < capacity(i).
// Computed exactly in 128-bit integers, with c rounded to a multiple of 1e-6, so the boundary
// does not depend on floating-point rounding.
// The pick walks the ring from the key's point (like RingHash::pick) to the first eligible host
// with room, so after the request every host that took it carries at most its capacity.
// Some host always has room: the capacities sum to at least c * (L + 1) >= L + 1 > L.
// If the walk passes RingHash::kMaxWalk points without finding one, it falls back to the first
// eligible host with room by index after the key's home host, so the bound always holds.
// Cost: O(n) per pick - one pass to total the eligible load and weight (as Envoy's
// hash_balance_factor does) - plus the walk. Use it where n is modest or keys must stick.
// c = 1 gives perfect balance but moves many keys; c -> infinity is plain RingHash. The paper
// (and Vimeo's deployment) use c = 1.25.
//
// Thread-safety: pick() is const; the ring is immutable. Loads are the caller's.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include "resilience/lb/ring_hash.h"

namespace sluice::resilience {

class BoundedLoad {
 public:
  struct Settings {
    // c in [1, 1000]: how far above its weighted share of the load a host may go.
    double balance_factor = 1.25;
  };

  // nullopt if usable, else what is wrong.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings) {
    if (!(settings.balance_factor >= 1.0 && settings.balance_factor <= kMaxFactor)) {
      return "BoundedLoad: balance_factor must be in [1, 1000], got " +
             std::to_string(settings.balance_factor);
    }
    return std::nullopt;
  }

  // Precondition: validate(settings) is nullopt (otherwise the factor is clamped into
  // [1, 1000]; NaN counts as 1).
  explicit BoundedLoad(const Settings& settings)
      : factor_micros_(static_cast<std::uint64_t>(std::llround(
            (settings.balance_factor >= 1.0
                 ? (settings.balance_factor <= kMaxFactor ? settings.balance_factor : kMaxFactor)
                 : 1.0) *
            static_cast<double>(kMicros)))) {}

  // The host for key_hash on `ring` under the load bound (see the file comment); nullopt if the
  // ring is empty or no host with points is eligible. `load(i)`: the host's current load, an
  // integer (e.g. requests in flight; negative counts as 0); called once per eligible host for
  // the totals and again for each host examined on the walk. `eligible` may be called more than
  // once per host and must answer consistently within a pick.
  template <typename Load, typename Eligible>
  [[nodiscard]] std::optional<std::size_t> pick(const RingHash& ring, std::uint64_t key_hash,
                                                Load&& load, Eligible&& eligible) const {
    static_assert(std::is_invocable_v<Load&, std::size_t> &&
                      std::is_integral_v<std::invoke_result_t<Load&, std::size_t>>,
                  "load must be callable as <integer>(std::size_t host)");
    static_assert(std::is_invocable_r_v<bool, Eligible&, std::size_t>,
                  "eligible must be callable as bool(std::size_t host)");
    if (ring.pointCount() == 0) {
      return std::nullopt;
    }
    Wide total_load = 0;
    Wide total_weight = 0;
    for (std::size_t host = 0; host < ring.hostCount(); ++host) {
      if (ring.pointsOf(host) != 0 && eligible(host)) {
        total_load += loadOf(load, host);
        total_weight += ring.host(host).weight;
      }
    }
    if (total_weight == 0) {
      return std::nullopt;
    }
    constexpr Wide kMaxLoad = ~std::uint64_t{0};
    // capacity(i) = ceil(numerator * w_i / denominator): < 2^30 * 2^64 * 2^32 and < 2^20 * 2^64.
    const Wide numerator =
        factor_micros_ * ((total_load < kMaxLoad ? total_load : kMaxLoad - 1) + 1);
    const Wide denominator = kMicros * total_weight;
    const auto has_room = [&](std::size_t host) {
      const Wide capacity = (numerator * ring.host(host).weight + denominator - 1) / denominator;
      return loadOf(load, host) < capacity;
    };

    std::size_t point = ring.firstPoint(key_hash);
    const std::size_t home = ring.pointHost(point);
    std::size_t previous = RingHash::kNoHost;
    const std::size_t walk =
        ring.pointCount() < RingHash::kMaxWalk ? ring.pointCount() : RingHash::kMaxWalk;
    for (std::size_t step = 0; step < walk; ++step) {
      const std::size_t host = ring.pointHost(point);
      if (host != previous && eligible(host) && has_room(host)) {
        return host;
      }
      previous = host;
      point = ring.nextPoint(point);
    }
    for (std::size_t step = 1; step <= ring.hostCount(); ++step) {
      const std::size_t host = (home + step) % ring.hostCount();
      if (ring.pointsOf(host) != 0 && eligible(host) && has_room(host)) {
        return host;
      }
    }
    return std::nullopt;  // unreachable while the capacities sum above the load
  }

  // The factor in use, after rounding to 1e-6.
  [[nodiscard]] double balanceFactor() const {
    return static_cast<double>(factor_micros_) / static_cast<double>(kMicros);
  }

 private:
  __extension__ using Wide = unsigned __int128;  // __extension__: no -Wpedantic warning
  static constexpr std::uint64_t kMicros = 1000000;
  static constexpr double kMaxFactor = 1000.0;

  template <typename Load>
  static std::uint64_t loadOf(Load& load, std::size_t host) {
    const auto value = load(host);
    if constexpr (std::is_signed_v<decltype(value)>) {
      if (value < 0) {
        return 0;
      }
    }
    return static_cast<std::uint64_t>(value);
  }

  std::uint64_t factor_micros_;
};

}  // namespace sluice::resilience
