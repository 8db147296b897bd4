#include "resilience/lb/split_mix64.h"

#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

// Verifies the generator against the published splitmix64.c output for seed 0.
TEST(SplitMix64, MatchesTheReferenceSequence) {
  SplitMix64 draws(0);
  EXPECT_EQ(draws.next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(draws.next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(draws.next(), 0x06C45D188009454FULL);
}

TEST(SplitMix64, ScaleMapsTheFullRangeOntoZeroToBound) {
  EXPECT_EQ(SplitMix64::scale(0, 10), 0U);
  EXPECT_EQ(SplitMix64::scale(~std::uint64_t{0}, 10), 9U);
  EXPECT_EQ(SplitMix64::scale(std::uint64_t{1} << 63U, 10), 5U);
  EXPECT_EQ(SplitMix64::scale(12345, 0), 0U);
  EXPECT_EQ(SplitMix64::scale(~std::uint64_t{0}, ~std::uint64_t{0}), ~std::uint64_t{0} - 1);
}

TEST(SplitMix64, BelowIsUniformWithinTolerance) {
  SplitMix64 draws(42);
  std::vector<int> counts(7, 0);
  constexpr int kDraws = 70000;
  for (int i = 0; i < kDraws; ++i) {
    const std::uint64_t value = draws.below(7);
    ASSERT_LT(value, 7U);
    ++counts[value];
  }
  for (const int count : counts) {
    EXPECT_NEAR(count, kDraws / 7.0, 500);  // ~5.5 standard deviations
  }
}

}  // namespace
}  // namespace sluice::resilience
