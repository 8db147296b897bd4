// Uniform random choice among the eligible hosts.
//
//   UniformRandom random(hosts.size());
//   std::optional<std::size_t> host = random.pick(rng(), [&](std::size_t i) { return up[i]; });
//
// `random` is a fresh uniformly random 64-bit value per pick (from any generator the caller
// owns); the pick is a pure function of it, so a fixed value replays the same choice.
// Distribution: exactly uniform over the eligible hosts (up to a bias below size / 2^64): up to
// kAttempts draws over all hosts, accepting the first eligible one (rejection sampling), then, if
// all were ineligible, one pass choosing uniformly among the eligible hosts (reservoir sampling).
// Both stages are uniform over the eligible set, so their mixture is too.
//
// Thread-safety: pick() is const and may run concurrently; add/removeHost need exclusive access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "resilience/lb/split_mix64.h"

namespace sluice::resilience {

class UniformRandom {
 public:
  // Draws over all hosts before falling back to a full pass.
  static constexpr int kAttempts = 8;

  explicit UniformRandom(std::size_t size) : size_(size) {}

  // A uniformly random host among those for which eligible(i) is true; nullopt if size() is 0 or
  // none is eligible. `eligible` may be called several times for the same host within one pick
  // and must answer consistently within it. O(1) expected when most hosts are eligible;
  // O(size()) when the draws keep missing (e.g. only a few hosts eligible).
  template <typename Eligible>
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t random, Eligible&& eligible) const {
    static_assert(std::is_invocable_r_v<bool, Eligible&, std::size_t>,
                  "eligible must be callable as bool(std::size_t host)");
    if (size_ == 0) {
      return std::nullopt;
    }
    SplitMix64 draws(random);
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      const auto host = static_cast<std::size_t>(draws.below(size_));
      if (eligible(host)) {
        return host;
      }
    }
    std::optional<std::size_t> chosen;
    std::uint64_t seen = 0;
    for (std::size_t host = 0; host < size_; ++host) {
      if (eligible(host) && draws.below(++seen) == 0) {
        chosen = host;
      }
    }
    return chosen;
  }

  // A uniformly random host (the same one pick(random, all-eligible) returns); nullopt only
  // when size() is 0.
  [[nodiscard]] std::optional<std::size_t> pick(std::uint64_t random) const {
    return pick(random, [](std::size_t) { return true; });
  }

  // Appends a host (index size() before the call).
  void addHost() { ++size_; }

  // Erases host, shifting later hosts down one index. Out of range: no effect.
  void removeHost(std::size_t host) {
    if (host < size_) {
      --size_;
    }
  }

  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  std::size_t size_;
};

}  // namespace sluice::resilience
