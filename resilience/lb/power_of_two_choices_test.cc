#include "resilience/lb/power_of_two_choices.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

TEST(PowerOfTwoChoices, EmptyOrNothingEligiblePicksNothing) {
  const auto load = [](std::size_t) { return 0U; };
  EXPECT_EQ(PowerOfTwoChoices(0).pick(1, load), std::nullopt);
  EXPECT_EQ(PowerOfTwoChoices(std::vector<std::uint32_t>{0, 0}).pick(1, load), std::nullopt);
  EXPECT_EQ(PowerOfTwoChoices(3).pick(1, load, [](std::size_t) { return false; }), std::nullopt);
}

TEST(PowerOfTwoChoices, SingleEligibleHostIsPickedWithoutReadingLoads) {
  const PowerOfTwoChoices p2c(50);
  int loads_read = 0;
  for (std::uint64_t value = 0; value < 100; ++value) {
    EXPECT_EQ(p2c.pick(
                  value,
                  [&](std::size_t) {
                    ++loads_read;
                    return 0U;
                  },
                  [](std::size_t i) { return i == 31; }),
              31U);
  }
  EXPECT_EQ(loads_read, 0);
}

// Verifies the defining property over seeded random loads, weights and eligibility: load() is
// read for exactly two distinct eligible hosts, and the pick is never the one with the higher
// load / weight (ties: the higher weight, else the first drawn).
TEST(PowerOfTwoChoices, NeverPicksTheBusierOfItsTwoChoices) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    const std::size_t n = 2 + rng() % 30;
    std::vector<std::uint32_t> weights(n);
    std::vector<std::uint32_t> loads(n);
    std::vector<bool> eligible(n);
    std::size_t eligible_nonzero = 0;
    for (std::size_t i = 0; i < n; ++i) {
      weights[i] = static_cast<std::uint32_t>(rng() % 5);
      loads[i] = static_cast<std::uint32_t>(rng() % 8);
      eligible[i] = rng() % 4 != 0;
      eligible_nonzero += eligible[i] && weights[i] > 0 ? 1 : 0;
    }
    const PowerOfTwoChoices p2c(weights);
    for (int pick = 0; pick < 200; ++pick) {
      std::vector<std::size_t> read;
      const std::optional<std::size_t> host = p2c.pick(
          rng(),
          [&](std::size_t i) {
            read.push_back(i);
            return loads[i];
          },
          [&](std::size_t i) { return static_cast<bool>(eligible[i]); });
      if (eligible_nonzero == 0) {
        ASSERT_EQ(host, std::nullopt);
        continue;
      }
      ASSERT_TRUE(host.has_value());
      ASSERT_TRUE(eligible[*host]);
      ASSERT_GT(weights[*host], 0U);
      if (eligible_nonzero == 1) {
        ASSERT_TRUE(read.empty());
        continue;
      }
      ASSERT_EQ(read.size(), 2U);
      ASSERT_NE(read[0], read[1]);
      ASSERT_TRUE(*host == read[0] || *host == read[1]);
      const std::size_t other = *host == read[0] ? read[1] : read[0];
      ASSERT_TRUE(eligible[other]);
      const std::uint64_t mine = std::uint64_t{loads[*host]} * weights[other];
      const std::uint64_t theirs = std::uint64_t{loads[other]} * weights[*host];
      ASSERT_LE(mine, theirs) << "seed " << seed;
      if (mine == theirs) {
        ASSERT_TRUE(weights[*host] > weights[other] ||
                    (weights[*host] == weights[other] && *host == read[0]));
      }
    }
  }
}

// Verifies that candidates are drawn in proportion to weight: the first candidate drawn (the
// first load read) follows weights 1:2:3:4.
TEST(PowerOfTwoChoices, CandidatesAreDrawnInProportionToWeight) {
  const PowerOfTwoChoices p2c(std::vector<std::uint32_t>{1, 2, 3, 4});
  std::mt19937_64 rng(3);
  std::vector<int> first(4, 0);
  constexpr int kPicks = 100000;
  for (int i = 0; i < kPicks; ++i) {
    bool seen = false;
    static_cast<void>(p2c.pick(rng(), [&](std::size_t host) {
      if (!seen) {
        ++first[host];
        seen = true;
      }
      return 0U;
    }));
  }
  for (std::size_t i = 0; i < 4; ++i) {
    const double expected = kPicks * (static_cast<double>(i) + 1) / 10.0;
    EXPECT_NEAR(first[i], expected, expected * 0.05) << i;
  }
}

// The highest in-flight count any of 20 hosts reaches while ~200 requests stay open (a random
// one finishes per new one), each placed by `pick(random, in_flight)`.
template <typename Pick>
std::uint32_t worstInFlight(Pick pick) {
  std::mt19937_64 rng(11);
  std::vector<std::uint32_t> in_flight(20, 0);
  std::vector<std::size_t> open;  // host of each open request
  std::uint32_t worst = 0;
  for (int step = 0; step < 20000; ++step) {
    const std::size_t host = pick(rng(), in_flight);
    ++in_flight[host];
    open.push_back(host);
    if (open.size() > 200) {
      const std::size_t victim = rng() % open.size();
      --in_flight[open[victim]];
      open[victim] = open.back();
      open.pop_back();
    }
    worst = std::max(worst, *std::max_element(in_flight.begin(), in_flight.end()));
  }
  return worst;
}

// Verifies load-awareness end to end: with a mean of 10 open requests per host, P2C on in-flight
// counts keeps the busiest host within a few of the mean, where a random choice (same random
// stream) lets it drift much further.
TEST(PowerOfTwoChoices, KeepsTheBusiestHostNearTheMean) {
  const PowerOfTwoChoices p2c(20);
  const std::uint32_t p2c_worst = worstInFlight([&](std::uint64_t r, const auto& in_flight) {
    return *p2c.pick(r, [&](std::size_t i) { return in_flight[i]; });
  });
  const std::uint32_t random_worst =
      worstInFlight([](std::uint64_t r, const auto&) { return static_cast<std::size_t>(r % 20); });
  EXPECT_LE(p2c_worst, 15U);
  EXPECT_GE(random_worst, p2c_worst + 6) << "random " << random_worst << " p2c " << p2c_worst;
}

TEST(PowerOfTwoChoices, TheSameRandomValueGivesTheSameHost) {
  const PowerOfTwoChoices p2c(std::vector<std::uint32_t>{3, 1, 4, 1, 5});
  const std::vector<double> cost = {5.0, 1.0, 2.5, 0.5, 9.0};
  const auto load = [&](std::size_t i) { return cost[i]; };
  for (std::uint64_t value = 0; value < 100; ++value) {
    EXPECT_EQ(p2c.pick(value, load), p2c.pick(value, load));
  }
}

TEST(PowerOfTwoChoices, WeightEditsTakeEffect) {
  PowerOfTwoChoices p2c(3);
  p2c.setWeight(0, 0);
  p2c.setWeight(1, 0);
  EXPECT_EQ(p2c.weight(2), 1U);
  for (std::uint64_t value = 0; value < 20; ++value) {
    EXPECT_EQ(p2c.pick(value, [](std::size_t) { return 0U; }), 2U);
  }
  p2c.addHost(5);
  p2c.removeHost(2);
  EXPECT_EQ(p2c.size(), 3U);
  EXPECT_EQ(p2c.pick(1, [](std::size_t) { return 0U; }), 2U);
}

}  // namespace
}  // namespace sluice::resilience
