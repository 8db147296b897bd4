#include "resilience/lb/bounded_load.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/lb/hash_test_support.h"
#include "resilience/lb/ring_hash.h"
#include "resilience/lb/weighted_host.h"

namespace sluice::resilience {
namespace {

std::vector<WeightedHost> hosts(const std::vector<std::uint32_t>& weights) {
  std::vector<WeightedHost> out;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    out.push_back(WeightedHost{"backend-" + std::to_string(i), weights[i]});
  }
  return out;
}

BoundedLoad::Settings factor(double c) {
  BoundedLoad::Settings settings;
  settings.balance_factor = c;
  return settings;
}

constexpr auto kAll = [](std::size_t) { return true; };

TEST(BoundedLoad, ValidateRequiresAFiniteFactorOfAtLeastOne) {
  EXPECT_EQ(BoundedLoad::validate(BoundedLoad::Settings{}), std::nullopt);
  EXPECT_EQ(BoundedLoad::validate(factor(1.0)), std::nullopt);
  EXPECT_NE(BoundedLoad::validate(factor(0.99)), std::nullopt);
  EXPECT_NE(BoundedLoad::validate(factor(1000.5)), std::nullopt);
  EXPECT_EQ(BoundedLoad(factor(1.1234567)).balanceFactor(), 1.123457);
  EXPECT_NE(BoundedLoad::validate(factor(INFINITY)), std::nullopt);
  EXPECT_NE(BoundedLoad::validate(factor(NAN)), std::nullopt);
}

TEST(BoundedLoad, UnloadedHostsGetTheirRingKeys) {
  const auto ring = RingHash::build(hosts({1, 1, 1, 1}), RingHash::Settings{}, xxh3);
  const BoundedLoad bounded(BoundedLoad::Settings{});
  for (std::uint64_t key = 1; key < 2000; ++key) {
    const std::uint64_t hash = key * 0x9E3779B97F4A7C15ULL;
    EXPECT_EQ(bounded.pick(
                  *ring, hash, [](std::size_t) { return 0U; }, kAll),
              ring->pick(hash));
  }
}

// Verifies the boundary: with loads {3, 0, 0, 0} and c = 1.25 the cap is ceil(1.25 * 4 / 4) = 2,
// so a key homed on host 0 (load 3 >= 2) walks on to the next host clockwise with room.
TEST(BoundedLoad, FullHomeHostPassesTheKeyClockwise) {
  const auto ring = RingHash::build(hosts({1, 1, 1, 1}), RingHash::Settings{}, xxh3);
  const BoundedLoad bounded(factor(1.25));
  const std::vector<std::uint32_t> loads = {3, 0, 0, 0};
  int checked = 0;
  for (std::uint64_t key = 1; key < 4000; ++key) {
    const std::uint64_t hash = key * 0x9E3779B97F4A7C15ULL;
    if (ring->pick(hash) != 0U) {
      continue;
    }
    std::size_t point = ring->firstPoint(hash);
    while (ring->pointHost(point) == 0) {
      point = ring->nextPoint(point);
    }
    ASSERT_EQ(bounded.pick(
                  *ring, hash, [&](std::size_t i) { return loads[i]; }, kAll),
              ring->pointHost(point));
    ++checked;
  }
  EXPECT_GT(checked, 500);
}

TEST(BoundedLoad, HostJustUnderItsCapStillTakesTheKey) {
  const auto ring = RingHash::build(hosts({1, 1, 1, 1}), RingHash::Settings{}, xxh3);
  const BoundedLoad bounded(factor(1.25));
  const std::vector<std::uint32_t> loads = {1, 0, 0, 0};    // cap ceil(1.25 * 2 / 4) = 1: full
  const std::vector<std::uint32_t> lighter = {1, 1, 1, 0};  // cap ceil(1.25 * 4 / 4) = 2: room
  for (std::uint64_t key = 1; key < 4000; ++key) {
    const std::uint64_t hash = key * 0x9E3779B97F4A7C15ULL;
    if (ring->pick(hash) == 0U) {
      EXPECT_NE(bounded.pick(
                    *ring, hash, [&](std::size_t i) { return loads[i]; }, kAll),
                0U);
      EXPECT_EQ(bounded.pick(
                    *ring, hash, [&](std::size_t i) { return lighter[i]; }, kAll),
                0U);
    }
  }
}

TEST(BoundedLoad, EmptyRingOrNothingEligiblePicksNothing) {
  const BoundedLoad bounded(BoundedLoad::Settings{});
  const auto empty = RingHash::build({}, RingHash::Settings{}, xxh3);
  const auto load = [](std::size_t) { return 0U; };
  EXPECT_EQ(bounded.pick(*empty, 1, load, kAll), std::nullopt);
  const auto ring = RingHash::build(hosts({1, 1}), RingHash::Settings{}, xxh3);
  EXPECT_EQ(bounded.pick(*ring, 1, load, [](std::size_t) { return false; }), std::nullopt);
}

// Verifies the guarantee over seeded random simulations (weights, c, arrivals and departures,
// some hosts ineligible for a while): after every placement the chosen host's load is at most
// ceil(c * total_load * w / W), with total_load (including the new request) and W over the
// eligible hosts.
TEST(BoundedLoad, NeverExceedsTheBound) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    const std::size_t n = 2 + rng() % 12;
    std::vector<std::uint32_t> weights(n);
    for (std::uint32_t& w : weights) {
      w = static_cast<std::uint32_t>(1 + rng() % 4);
    }
    RingHash::Settings ring_settings;
    ring_settings.vnodes_per_weight_unit = 40;
    const auto ring = RingHash::build(hosts(weights), ring_settings, xxh3);
    const std::uint64_t c_percent = 100 + rng() % 100;  // c = 1.00 .. 1.99
    const BoundedLoad bounded(factor(static_cast<double>(c_percent) / 100.0));
    std::vector<std::uint32_t> load(n, 0);
    std::vector<bool> eligible(n, true);
    std::vector<std::size_t> open;
    for (int step = 0; step < 3000; ++step) {
      if (step % 500 == 0) {  // change who is eligible now and then (keep one)
        for (std::size_t i = 0; i < n; ++i) {
          eligible[i] = i == 0 || rng() % 5 != 0;
        }
      }
      const auto is_eligible = [&](std::size_t i) { return static_cast<bool>(eligible[i]); };
      const std::optional<std::size_t> host = bounded.pick(
          *ring, rng(), [&](std::size_t i) { return load[i]; }, is_eligible);
      ASSERT_TRUE(host.has_value());
      ASSERT_TRUE(eligible[*host]);
      ++load[*host];
      open.push_back(*host);
      std::uint64_t total_load = 0;
      std::uint64_t total_weight = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (eligible[i]) {
          total_load += load[i];
          total_weight += weights[i];
        }
      }
      // ceil(c * total_load * w / W) with c = c_percent / 100, in exact integers.
      const std::uint64_t numerator = c_percent * total_load * weights[*host];
      const std::uint64_t cap = (numerator + 100 * total_weight - 1) / (100 * total_weight);
      ASSERT_LE(load[*host], cap) << "seed " << seed << " step " << step;
      if (open.size() > 60 || rng() % 3 == 0) {
        const std::size_t victim = rng() % open.size();
        --load[open[victim]];
        open[victim] = open.back();
        open.pop_back();
      }
    }
  }
}

// Verifies the spread it buys: 200 requests for one hot key over 10 hosts at c = 1.25 spread so
// that no host holds more than ceil(1.25 * 200 / 10) = 25, where plain ring hashing would put
// all 200 on one host.
TEST(BoundedLoad, HotKeySpillsOverInsteadOfPilingUp) {
  const auto ring =
      RingHash::build(hosts(std::vector<std::uint32_t>(10, 1)), RingHash::Settings{}, xxh3);
  const BoundedLoad bounded(factor(1.25));
  std::vector<std::uint32_t> load(10, 0);
  for (int i = 0; i < 200; ++i) {
    ++load[*bounded.pick(
        *ring, 0xC0FFEE, [&](std::size_t h) { return load[h]; }, kAll)];
  }
  for (const std::uint32_t l : load) {
    EXPECT_LE(l, 25U);
  }
  EXPECT_EQ(load[*ring->pick(0xC0FFEE)], 25U);  // the home host fills to its cap first
}

}  // namespace
}  // namespace sluice::resilience
