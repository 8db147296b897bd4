// Least connections: the eligible host with the lowest load per unit of weight, by a full scan.
//
//   LeastConnections lc(weights);
//   std::optional<std::size_t> host = lc.pick(
//       rng(), [&](std::size_t i) { return stats[i].inFlight(); },
//       [&](std::size_t i) { return healthy[i]; });
//
// nginx's least_conn and HAProxy's leastconn: exact rather than sampled, so it reacts to every
// difference in load, at O(n) per pick. With many hosts, or several balancers sharing hosts
// (where everyone herds onto the same least-loaded host between load updates), prefer
// PowerOfTwoChoices. Load is compared per unit of weight (compareLoadPerWeight: load / weight,
// exactly); among hosts with the lowest ratio the highest weight wins, and among hosts still tied
// one is chosen uniformly at random (from `random`), so idle hosts share the first requests
// instead of the lowest index getting them all.
//
// Thread-safety: pick() is const and may run concurrently with other picks; changing weights or
// hosts needs exclusive access.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "resilience/lb/load_per_weight.h"
#include "resilience/lb/split_mix64.h"

namespace sluice::resilience {

class LeastConnections {
 public:
  // `size` hosts of weight 1.
  explicit LeastConnections(std::size_t size) : weights_(size, 1U) {}
  // Host i has weight weights[i]; weight 0 is never picked.
  explicit LeastConnections(std::vector<std::uint32_t> weights) : weights_(std::move(weights)) {}

  // The eligible nonzero-weight host minimising load(i) / weight(i) (ties: highest weight, then
  // uniformly random among the rest, from `random`); nullopt if none. Calls eligible once per
  // nonzero-weight host and load once per eligible one, in index order. O(n).
  template <typename Load, typename Eligible>
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t random, Load&& load,
                                                Eligible&& eligible) const {
    static_assert(std::is_invocable_v<Load&, std::size_t> &&
                      std::is_arithmetic_v<std::invoke_result_t<Load&, std::size_t>>,
                  "load must be callable as <number>(std::size_t host)");
    static_assert(std::is_invocable_r_v<bool, Eligible&, std::size_t>,
                  "eligible must be callable as bool(std::size_t host)");
    using Value = std::invoke_result_t<Load&, std::size_t>;
    SplitMix64 draws(random);
    std::optional<std::size_t> best;
    Value best_load{};
    std::uint64_t ties = 0;
    for (std::size_t host = 0; host < weights_.size(); ++host) {
      const std::uint32_t weight = weights_[host];
      if (weight == 0 || !eligible(host)) {
        continue;
      }
      const Value host_load = load(host);
      std::weak_ordering order = std::weak_ordering::less;
      if (best) {
        order = compareLoadPerWeight(host_load, weight, best_load, weights_[*best]);
        if (std::is_eq(order)) {
          order = weights_[*best] <=> weight;  // a higher weight counts as less loaded
        }
      }
      if (std::is_lt(order)) {
        best = host;
        best_load = host_load;
        ties = 1;
      } else if (std::is_eq(order) && draws.below(++ties) == 0) {
        best = host;  // reservoir sampling: each of the k tied hosts kept with probability 1/k
        best_load = host_load;
      }
    }
    return best;
  }

  // As above with every host eligible.
  template <typename Load>
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t random, Load&& load) const {
    return pick(random, load, [](std::size_t) { return true; });
  }

  // Out of range: no effect.
  void setWeight(std::size_t host, std::uint32_t weight) {
    if (host < weights_.size()) {
      weights_[host] = weight;
    }
  }
  // Appends a host (index size() before the call).
  void addHost(std::uint32_t weight = 1) { weights_.push_back(weight); }
  // Erases host, shifting later hosts down one index. Out of range: no effect.
  void removeHost(std::size_t host) {
    if (host < weights_.size()) {
      weights_.erase(weights_.begin() + static_cast<std::ptrdiff_t>(host));
    }
  }

  [[nodiscard]] std::uint32_t weight(std::size_t host) const {
    return host < weights_.size() ? weights_[host] : 0;
  }
  [[nodiscard]] std::size_t size() const { return weights_.size(); }

 private:
  std::vector<std::uint32_t> weights_;
};

}  // namespace sluice::resilience
