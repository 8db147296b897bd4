// Weighted random choice: host i is picked with probability w_i / W among the eligible hosts.
//
//   WeightedRandom random({3, 1, 1});  // host 0 gets 60 %
//   std::optional<std::size_t> host = random.pick(rng(), [&](std::size_t i) { return up[i]; });
//   random.setWeight(2, 4);            // O(log n), no rebuild
//
// The weights live in a Fenwick (binary indexed) tree of prefix sums (Fenwick, "A new data
// structure for cumulative frequency tables", 1994), so a pick is one O(log n) descent (one
// division while all weights are equal) and a weight change, e.g. every slow-start step, an
// O(log n) update instead of an O(n) rebuild.
// `random` is a fresh uniformly random 64-bit value per pick; the pick is a pure function of it.
// Distribution: exact (up to a bias below W / 2^64): up to kAttempts weighted draws over all
// hosts accepting the first eligible one (rejection sampling), then one weighted pass over the
// eligible hosts (weighted reservoir sampling); both give P(i) = w_i / sum of eligible weights.
//
// Thread-safety: pick() is const and may run concurrently with other picks; anything that
// changes weights or hosts needs exclusive access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "resilience/lb/split_mix64.h"

namespace sluice::resilience {

class WeightedRandom {
 public:
  // Weighted draws over all hosts before falling back to a full pass.
  static constexpr int kAttempts = 8;

  // One host per element, host i of weight weights[i]; weight 0 is never picked. O(n).
  explicit WeightedRandom(std::vector<std::uint32_t> weights);

  // A host among the eligible nonzero-weight ones, host i with probability w_i / (their total
  // weight); nullopt if there is none. `eligible` may be called several times for the same host
  // within one pick and must answer consistently within it; it is never called for weight-0
  // hosts. O(log n) expected when most of the weight is eligible, O(n) when draws keep missing.
  template <typename Eligible>
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t random, Eligible&& eligible) const {
    static_assert(std::is_invocable_r_v<bool, Eligible&, std::size_t>,
                  "eligible must be callable as bool(std::size_t host)");
    if (total_ == 0) {
      return std::nullopt;
    }
    SplitMix64 draws(random);
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      const std::size_t host = find(draws.below(total_));
      if (eligible(host)) {
        return host;
      }
    }
    return pickByScan(draws, eligible, kNoHost);
  }

  // A host with every host eligible: P(i) = w_i / totalWeight(); nullopt only when the total is
  // 0. One SplitMix64 step and one O(log n) descent.
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t random) const {
    if (total_ == 0) {
      return std::nullopt;
    }
    SplitMix64 draws(random);
    return find(draws.below(total_));
  }

  // The host whose slice of [0, totalWeight()) contains `point`: the i with
  // prefix(i) <= point < prefix(i + 1), where prefix(i) is the sum of the weights of hosts
  // 0..i-1. Always a nonzero-weight host. Precondition: point < totalWeight().
  [[nodiscard]] std::size_t find(std::uint64_t point) const {
    if (unequal_ == 0 && common_weight_ != 0) {
      return static_cast<std::size_t>(point / common_weight_);  // all weights equal: same answer
    }
    std::size_t position = 0;  // hosts [0, position) lie wholly below the point
    for (std::size_t step = top_step_; step != 0; step >>= 1U) {
      const std::size_t next = position + step;
      if (next <= weights_.size() && tree_[next] <= point) {
        position = next;
        point -= tree_[next];
      }
    }
    return position;
  }

  // Sum of the weights of hosts 0..host-1 (the start of host's slice of the weight line);
  // totalWeight() for host >= size(). O(log n).
  [[nodiscard]] std::uint64_t prefixWeight(std::size_t host) const {
    if (host >= weights_.size()) {
      return total_;
    }
    std::uint64_t sum = 0;
    for (std::size_t k = host; k != 0; k &= k - 1) {  // k - lowbit(k)
      sum += tree_[k];
    }
    return sum;
  }

  // The single weighted pass behind pick(): among eligible nonzero-weight hosts other than
  // `excluded` (kNoHost: none), host i with probability w_i / (their total). nullopt if none.
  // Exposed for balancers that draw candidates, such as PowerOfTwoChoices.
  template <typename Eligible>
  [[nodiscard]] std::optional<std::size_t> pickByScan(SplitMix64& draws, Eligible& eligible,
                                                      std::size_t excluded) const {
    std::optional<std::size_t> chosen;
    std::uint64_t seen = 0;
    for (std::size_t host = 0; host < weights_.size(); ++host) {
      const std::uint32_t weight = weights_[host];
      if (weight == 0 || host == excluded || !eligible(host)) {
        continue;
      }
      seen += weight;
      if (draws.below(seen) < weight) {
        chosen = host;
      }
    }
    return chosen;
  }

  // Changes a host's weight in O(log n). Out of range: no effect.
  void setWeight(std::size_t host, std::uint32_t weight);

  // Appends a host (index size() before the call) in O(log n).
  void addHost(std::uint32_t weight);

  // Erases host, shifting later hosts down one index; O(n). Out of range: no effect.
  void removeHost(std::size_t host);

  [[nodiscard]] std::uint32_t weight(std::size_t host) const {
    return host < weights_.size() ? weights_[host] : 0;
  }
  // Sum of all weights (eligible or not).
  [[nodiscard]] std::uint64_t totalWeight() const { return total_; }
  [[nodiscard]] std::size_t size() const { return weights_.size(); }

  static constexpr std::size_t kNoHost = static_cast<std::size_t>(-1);

 private:
  void rebuild();

  std::vector<std::uint32_t> weights_;
  // 1-based Fenwick tree: tree_[k] = sum of weights_[k - lowbit(k), k). tree_[0] unused.
  std::vector<std::uint64_t> tree_;
  std::size_t top_step_ = 0;  // largest power of two <= size(), 0 when empty
  std::uint64_t total_ = 0;
  // The common case of equal weights skips the tree: weights_[0] at the last rebuild, and how
  // many hosts now weigh something else.
  std::uint32_t common_weight_ = 0;
  std::size_t unequal_ = 0;
};

}  // namespace sluice::resilience
