#include "resilience/lb/weighted_random.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

TEST(WeightedRandom, EmptyOrAllZeroPicksNothing) {
  EXPECT_EQ(WeightedRandom({}).pick(1), std::nullopt);
  EXPECT_EQ(WeightedRandom({0, 0}).pick(1), std::nullopt);
  EXPECT_EQ(WeightedRandom({1, 1}).pick(1, [](std::size_t) { return false; }), std::nullopt);
}

TEST(WeightedRandom, FindMapsEachPointToTheSliceContainingIt) {
  const WeightedRandom random({2, 0, 3, 1});
  EXPECT_EQ(random.totalWeight(), 6U);
  const std::vector<std::size_t> expected = {0, 0, 2, 2, 2, 3};
  for (std::uint64_t point = 0; point < 6; ++point) {
    EXPECT_EQ(random.find(point), expected[point]) << point;
  }
  EXPECT_EQ(random.prefixWeight(0), 0U);
  EXPECT_EQ(random.prefixWeight(2), 2U);
  EXPECT_EQ(random.prefixWeight(3), 5U);
  EXPECT_EQ(random.prefixWeight(4), 6U);
}

TEST(WeightedRandom, FrequenciesFollowWeightsWithinTolerance) {
  const WeightedRandom random({1, 2, 3, 4});
  std::mt19937_64 rng(7);
  std::vector<int> counts(4, 0);
  constexpr int kPicks = 200000;
  for (int i = 0; i < kPicks; ++i) {
    ++counts[*random.pick(rng())];
  }
  for (std::size_t i = 0; i < 4; ++i) {
    const double expected = kPicks * (static_cast<double>(i) + 1) / 10.0;
    EXPECT_NEAR(counts[i], expected, expected * 0.03) << i;  // > 4 standard deviations
  }
}

// Verifies the exact conditional distribution when the heavy host is out: 8 rejection draws
// mostly land on it, so the weighted reservoir pass does most of the work.
TEST(WeightedRandom, IneligibleHeavyHostLeavesTheOthersInProportion) {
  const WeightedRandom random({1000000, 1, 3});
  std::mt19937_64 rng(9);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 40000; ++i) {
    ++counts[*random.pick(rng(), [](std::size_t host) { return host != 0; })];
  }
  EXPECT_EQ(counts[0], 0);
  EXPECT_NEAR(counts[1], 10000, 500);
  EXPECT_NEAR(counts[2], 30000, 500);
}

TEST(WeightedRandom, ZeroWeightHostIsNeverPickedNorAsked) {
  const WeightedRandom random({0, 5, 0});
  for (std::uint64_t value = 0; value < 1000; ++value) {
    EXPECT_EQ(random.pick(value,
                          [](std::size_t host) {
                            EXPECT_EQ(host, 1U);
                            return true;
                          }),
              1U);
  }
}

TEST(WeightedRandom, HugeWeightsDoNotOverflow) {
  const WeightedRandom random(std::vector<std::uint32_t>(1000, 0xFFFFFFFFU));
  EXPECT_EQ(random.totalWeight(), 1000ULL * 0xFFFFFFFFULL);
  EXPECT_EQ(random.find(random.totalWeight() - 1), 999U);
  EXPECT_EQ(random.find(0xFFFFFFFFULL), 1U);
}

// Verifies setWeight / addHost / removeHost against a plain cumulative-sum model over seeded
// random edit sequences: every point of the weight line maps to the same host.
TEST(WeightedRandom, EditsMatchAFreshCumulativeModel) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint32_t> model(rng() % 20);
    for (std::uint32_t& w : model) {
      w = static_cast<std::uint32_t>(rng() % 6);
    }
    WeightedRandom random(model);
    for (int edit = 0; edit < 40; ++edit) {
      const std::uint64_t op = rng() % 3;
      if (op == 0 && !model.empty()) {
        const std::size_t host = rng() % model.size();
        model[host] = static_cast<std::uint32_t>(rng() % 6);
        random.setWeight(host, model[host]);
      } else if (op == 1) {
        model.push_back(static_cast<std::uint32_t>(rng() % 6));
        random.addHost(model.back());
      } else if (!model.empty()) {
        const std::size_t host = rng() % model.size();
        model.erase(model.begin() + static_cast<std::ptrdiff_t>(host));
        random.removeHost(host);
      }
      ASSERT_EQ(random.size(), model.size());
      std::uint64_t start = 0;
      for (std::size_t host = 0; host < model.size(); ++host) {
        ASSERT_EQ(random.weight(host), model[host]);
        ASSERT_EQ(random.prefixWeight(host), start);
        for (std::uint64_t point = start; point < start + model[host]; ++point) {
          ASSERT_EQ(random.find(point), host) << "seed " << seed << " edit " << edit;
        }
        start += model[host];
      }
      ASSERT_EQ(random.totalWeight(), start);
    }
  }
}

// Verifies the equal-weights shortcut (point / weight instead of the tree) gives the tree's
// answer, also after weights diverge and converge again, and after growing from empty.
TEST(WeightedRandom, EqualWeightsShortcutAgreesWithTheTree) {
  const auto check = [](const WeightedRandom& random, const std::vector<std::uint32_t>& model) {
    std::uint64_t start = 0;
    for (std::size_t host = 0; host < model.size(); ++host) {
      for (std::uint64_t point = start; point < start + model[host]; ++point) {
        ASSERT_EQ(random.find(point), host) << point;
      }
      start += model[host];
    }
  };
  std::vector<std::uint32_t> model(7, 3);
  WeightedRandom random(model);
  check(random, model);
  model[2] = 5;
  random.setWeight(2, 5);
  check(random, model);
  model[2] = 3;
  random.setWeight(2, 3);
  check(random, model);
  model.push_back(3);
  random.addHost(3);
  check(random, model);
  WeightedRandom grown({});
  grown.addHost(2);
  grown.addHost(2);
  check(grown, {2, 2});
  grown.addHost(1);
  check(grown, {2, 2, 1});
}

TEST(WeightedRandom, OutOfRangeEditsAreIgnored) {
  WeightedRandom random({1});
  random.setWeight(3, 9);
  random.removeHost(3);
  EXPECT_EQ(random.totalWeight(), 1U);
  EXPECT_EQ(random.weight(3), 0U);
}

}  // namespace
}  // namespace sluice::resilience
