#include "resilience/lb/load_per_weight.h"

#include <compare>
#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

TEST(CompareLoadPerWeight, ComparesRatiosExactly) {
  EXPECT_EQ(compareLoadPerWeight(3U, 2, 1U, 1), std::weak_ordering::greater);  // 1.5 vs 1
  EXPECT_EQ(compareLoadPerWeight(1U, 1, 3U, 2), std::weak_ordering::less);
  EXPECT_EQ(compareLoadPerWeight(2U, 4, 1U, 2), std::weak_ordering::equivalent);
  EXPECT_EQ(compareLoadPerWeight(0U, 7, 0U, 1), std::weak_ordering::equivalent);
}

TEST(CompareLoadPerWeight, HugeIntegersDoNotOverflow) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(compareLoadPerWeight(kMax, 0xFFFFFFFFU, kMax - 1, 0xFFFFFFFFU),
            std::weak_ordering::greater);
  EXPECT_EQ(compareLoadPerWeight(kMax, 0xFFFFFFFFU, kMax, 0xFFFFFFFEU), std::weak_ordering::less);
}

TEST(CompareLoadPerWeight, ZeroWeightCannotTakeLoad) {
  EXPECT_EQ(compareLoadPerWeight(0U, 0, 100U, 1), std::weak_ordering::greater);
  EXPECT_EQ(compareLoadPerWeight(100U, 1, 0U, 0), std::weak_ordering::less);
  EXPECT_EQ(compareLoadPerWeight(1U, 0, 2U, 0), std::weak_ordering::less);
}

TEST(CompareLoadPerWeight, FloatingLoadsWithNanAndNegatives) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(compareLoadPerWeight(1.5, 1, 3.0, 2), std::weak_ordering::equivalent);
  EXPECT_EQ(compareLoadPerWeight(nan, 1, 1e300, 1), std::weak_ordering::greater);
  EXPECT_EQ(compareLoadPerWeight(-5.0, 1, 0.0, 1), std::weak_ordering::equivalent);
  EXPECT_EQ(compareLoadPerWeight(-5, 1, 1, 1), std::weak_ordering::less);
}

}  // namespace
}  // namespace sluice::resilience
