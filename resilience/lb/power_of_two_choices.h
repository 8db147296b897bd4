// Power of two choices (P2C) least-request: draw two distinct eligible hosts at random, send the
// request to the one with the lower load per unit of weight.
//
//   PowerOfTwoChoices p2c(weights);
//   std::optional<std::size_t> host = p2c.pick(
//       rng(), [&](std::size_t i) { return stats[i].inFlight(); },  // or stats[i].cost(now)
//       [&](std::size_t i) { return healthy[i]; });
//
// Source: Mitzenmacher, "The power of two choices in randomized load balancing" (IEEE TPDS
// 2001): two random choices instead of one cut the maximum load from O(log n / log log n) to
// O(log log n), at O(1) cost per pick and without the herding of a full least-loaded scan (many
// balancers with stale loads all piling onto the same "least" host). Envoy's LEAST_REQUEST and
// linkerd/Finagle's balancers use it.
//
// Weights: candidates are drawn in proportion to weight (a weight-3 host is three times as likely
// to be drawn as a weight-1 host) and compared by load / weight (compareLoadPerWeight), so with
// equal loads per weight traffic follows the weights, and a host of twice the weight must carry
// twice the load before it looks as busy. Drawing uniformly instead would cap any host's share at
// about 2/n whatever its weight.
// Load: whatever the caller measures, larger = busier: requests in flight (least-request), or a
// latency-aware cost such as HostStats::cost(now) (peak EWMA). Equal loads per weight: the higher
// weight wins, then the first candidate drawn (which is itself random).
//
// Thread-safety: pick() is const and may run concurrently with other picks; changing weights or
// hosts needs exclusive access. One instance per worker is the intended use.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "resilience/lb/load_per_weight.h"
#include "resilience/lb/split_mix64.h"
#include "resilience/lb/weighted_random.h"

namespace sluice::resilience {

class PowerOfTwoChoices {
 public:
  // Candidate draws per choice before falling back to a weighted pass over all hosts.
  static constexpr int kAttempts = 8;

  // `size` hosts of weight 1.
  explicit PowerOfTwoChoices(std::size_t size) : sampler_(std::vector<std::uint32_t>(size, 1U)) {}
  // Host i has weight weights[i]; weight 0 is never picked.
  explicit PowerOfTwoChoices(const std::vector<std::uint32_t>& weights) : sampler_(weights) {}

  // Draws candidate A among the eligible nonzero-weight hosts with probability proportional to
  // weight, then candidate B the same way among the others, and returns the one with the smaller
  // load(i) / weight(i) (ties: higher weight, then A). Only one eligible host: that host, with
  // load not called. None: nullopt. `load` is called exactly once for each of the two
  // candidates and must return an arithmetic type; `eligible` may be called several times for a
  // host within one pick and must answer consistently within it. `random`: a fresh uniformly
  // random value per pick; the pick is a pure function of it. O(log n) expected when most of the
  // weight is eligible; O(n) when draws keep missing (then a weighted pass, still exact).
  template <typename Load, typename Eligible>
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t random, Load&& load,
                                                Eligible&& eligible) const {
    static_assert(std::is_invocable_v<Load&, std::size_t> &&
                      std::is_arithmetic_v<std::invoke_result_t<Load&, std::size_t>>,
                  "load must be callable as <number>(std::size_t host)");
    static_assert(std::is_invocable_r_v<bool, Eligible&, std::size_t>,
                  "eligible must be callable as bool(std::size_t host)");
    SplitMix64 draws(random);
    const std::optional<std::size_t> first = draw(draws, eligible, WeightedRandom::kNoHost);
    if (!first) {
      return std::nullopt;
    }
    const std::optional<std::size_t> second = draw(draws, eligible, *first);
    if (!second) {
      return first;
    }
    const std::uint32_t weight_a = sampler_.weight(*first);
    const std::uint32_t weight_b = sampler_.weight(*second);
    // Named locals: load(A) is called before load(B) (argument evaluation order is unspecified).
    const auto load_a = load(*first);
    const auto load_b = load(*second);
    const std::weak_ordering order = compareLoadPerWeight(load_a, weight_a, load_b, weight_b);
    if (std::is_lt(order)) {
      return first;
    }
    if (std::is_gt(order)) {
      return second;
    }
    return weight_b > weight_a ? second : first;
  }

  // As above with every host eligible.
  template <typename Load>
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t random, Load&& load) const {
    return pick(random, load, [](std::size_t) { return true; });
  }

  // Changes a host's weight in O(log n). Out of range: no effect.
  void setWeight(std::size_t host, std::uint32_t weight) { sampler_.setWeight(host, weight); }
  // Appends a host (index size() before the call).
  void addHost(std::uint32_t weight = 1) { sampler_.addHost(weight); }
  // Erases host, shifting later hosts down one index; O(n). Out of range: no effect.
  void removeHost(std::size_t host) { sampler_.removeHost(host); }

  [[nodiscard]] std::uint32_t weight(std::size_t host) const { return sampler_.weight(host); }
  [[nodiscard]] std::size_t size() const { return sampler_.size(); }

 private:
  // One eligible host other than `excluded`, with probability proportional to weight. The draw
  // skips the excluded host's slice of the weight line, so it never needs to be rejected.
  template <typename Eligible>
  std::optional<std::size_t> draw(SplitMix64& draws, Eligible& eligible,
                                  std::size_t excluded) const {
    const std::uint64_t total = sampler_.totalWeight();
    const std::uint64_t skip_weight =
        excluded == WeightedRandom::kNoHost ? 0 : sampler_.weight(excluded);
    if (total == skip_weight) {
      return std::nullopt;
    }
    const std::uint64_t skip_start =
        excluded == WeightedRandom::kNoHost ? total : sampler_.prefixWeight(excluded);
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      std::uint64_t point = draws.below(total - skip_weight);
      if (point >= skip_start) {
        point += skip_weight;
      }
      const std::size_t host = sampler_.find(point);
      if (eligible(host)) {
        return host;
      }
    }
    return sampler_.pickByScan(draws, eligible, excluded);
  }

  WeightedRandom sampler_;
};

}  // namespace sluice::resilience
