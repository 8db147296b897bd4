#include "resilience/lb/uniform_random.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

TEST(UniformRandom, EmptyOrNothingEligiblePicksNothing) {
  EXPECT_EQ(UniformRandom(0).pick(7), std::nullopt);
  EXPECT_EQ(UniformRandom(5).pick(7, [](std::size_t) { return false; }), std::nullopt);
}

TEST(UniformRandom, TheSameRandomValueGivesTheSameHost) {
  const UniformRandom random(100);
  for (std::uint64_t value = 0; value < 50; ++value) {
    EXPECT_EQ(random.pick(value), random.pick(value));
    EXPECT_EQ(random.pick(value), random.pick(value, [](std::size_t) { return true; }));
  }
}

TEST(UniformRandom, FrequenciesAreUniformWithinTolerance) {
  const UniformRandom random(10);
  std::mt19937_64 rng(1);
  std::vector<int> counts(10, 0);
  for (int i = 0; i < 100000; ++i) {
    ++counts[*random.pick(rng())];
  }
  for (const int count : counts) {
    EXPECT_NEAR(count, 10000, 500);  // ~5 standard deviations
  }
}

// Verifies both stages (rejection, then the reservoir pass, hit often with 7 of 10 hosts out)
// keep the choice uniform over the eligible hosts.
TEST(UniformRandom, IneligibleHostsAreNeverPickedAndTheRestStayUniform) {
  const UniformRandom random(10);
  std::mt19937_64 rng(2);
  std::vector<int> counts(10, 0);
  const auto eligible = [](std::size_t i) { return i == 2 || i == 5 || i == 9; };
  for (int i = 0; i < 60000; ++i) {
    ++counts[*random.pick(rng(), eligible)];
  }
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_NEAR(counts[i], eligible(i) ? 20000 : 0, 600) << i;
  }
}

TEST(UniformRandom, FindsTheOnlyEligibleHostAmongMany) {
  const UniformRandom random(1000);
  for (std::uint64_t value = 0; value < 100; ++value) {
    EXPECT_EQ(random.pick(value, [](std::size_t i) { return i == 777; }), 777U);
  }
}

TEST(UniformRandom, AddAndRemoveHostChangeTheRange) {
  UniformRandom random(1);
  random.addHost();
  EXPECT_EQ(random.size(), 2U);
  random.removeHost(5);
  EXPECT_EQ(random.size(), 2U);
  random.removeHost(0);
  random.removeHost(0);
  EXPECT_EQ(random.pick(3), std::nullopt);
}

}  // namespace
}  // namespace sluice::resilience
