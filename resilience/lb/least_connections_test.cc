#include "resilience/lb/least_connections.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

TEST(LeastConnections, PicksTheLowestLoadPerWeight) {
  const LeastConnections lc(std::vector<std::uint32_t>{1, 4, 2});
  const std::vector<std::uint32_t> loads = {2, 6, 4};  // 2, 1.5, 2
  EXPECT_EQ(lc.pick(0, [&](std::size_t i) { return loads[i]; }), 1U);
}

TEST(LeastConnections, EmptyOrNothingEligiblePicksNothing) {
  const auto load = [](std::size_t) { return 0U; };
  EXPECT_EQ(LeastConnections(0).pick(1, load), std::nullopt);
  EXPECT_EQ(LeastConnections(3).pick(1, load, [](std::size_t) { return false; }), std::nullopt);
  EXPECT_EQ(LeastConnections(std::vector<std::uint32_t>{0}).pick(1, load), std::nullopt);
}

TEST(LeastConnections, IneligibleAndZeroWeightHostsAreSkipped) {
  const LeastConnections lc(std::vector<std::uint32_t>{1, 0, 1, 1});
  const std::vector<std::uint32_t> loads = {5, 0, 0, 3};
  EXPECT_EQ(lc.pick(
                0, [&](std::size_t i) { return loads[i]; }, [](std::size_t i) { return i != 2; }),
            3U);
}

TEST(LeastConnections, TiesGoToTheHigherWeight) {
  const LeastConnections lc(std::vector<std::uint32_t>{1, 3, 2});
  for (std::uint64_t value = 0; value < 50; ++value) {
    EXPECT_EQ(lc.pick(value, [](std::size_t) { return 0U; }), 1U);
  }
}

// Verifies that idle equal hosts share the first requests evenly instead of host 0 taking all.
TEST(LeastConnections, RemainingTiesAreBrokenUniformly) {
  const LeastConnections lc(5);
  std::mt19937_64 rng(5);
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 50000; ++i) {
    ++counts[*lc.pick(rng(), [](std::size_t) { return 0U; })];
  }
  for (const int count : counts) {
    EXPECT_NEAR(count, 10000, 500);
  }
}

// Verifies against brute force over seeded random loads and weights.
TEST(LeastConnections, PickHasTheMinimalRatio) {
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    std::mt19937_64 rng(seed);
    const std::size_t n = 1 + rng() % 40;
    std::vector<std::uint32_t> weights(n);
    std::vector<std::uint32_t> loads(n);
    for (std::size_t i = 0; i < n; ++i) {
      weights[i] = static_cast<std::uint32_t>(rng() % 4);
      loads[i] = static_cast<std::uint32_t>(rng() % 10);
    }
    const LeastConnections lc(weights);
    const std::optional<std::size_t> host = lc.pick(rng(), [&](std::size_t i) { return loads[i]; });
    bool any = false;
    for (const std::uint32_t w : weights) {
      any = any || w > 0;
    }
    ASSERT_EQ(host.has_value(), any);
    if (!host) {
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (weights[i] == 0) {
        continue;
      }
      ASSERT_LE(std::uint64_t{loads[*host]} * weights[i], std::uint64_t{loads[i]} * weights[*host])
          << "seed " << seed;
    }
  }
}

TEST(LeastConnections, EditsTakeEffect) {
  LeastConnections lc(2);
  const auto load = [](std::size_t i) { return i == 0 ? 1U : 2U; };
  EXPECT_EQ(lc.pick(0, load), 0U);
  lc.setWeight(1, 4);  // 2 / 4 < 1 / 1
  EXPECT_EQ(lc.weight(1), 4U);
  EXPECT_EQ(lc.pick(0, load), 1U);
  lc.removeHost(1);
  lc.addHost(1);
  EXPECT_EQ(lc.size(), 2U);
  EXPECT_EQ(lc.pick(0, load), 0U);
}

}  // namespace
}  // namespace sluice::resilience
