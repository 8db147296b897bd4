#include "resilience/lb/panic_threshold.h"

#include <cstddef>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

PanicThreshold threshold(double percent) {
  PanicThreshold::Settings settings;
  settings.threshold_percent = percent;
  return PanicThreshold(settings);
}

TEST(PanicThreshold, PanicsStrictlyBelowTheThreshold) {
  const PanicThreshold panic = threshold(50);
  EXPECT_FALSE(panic.inPanic(5, 10));  // exactly 50 %: not below
  EXPECT_TRUE(panic.inPanic(4, 10));
  EXPECT_FALSE(panic.inPanic(10, 10));
  EXPECT_TRUE(panic.inPanic(0, 3));
  EXPECT_FALSE(panic.inPanic(2, 3));
  EXPECT_TRUE(panic.inPanic(1, 3));
}

TEST(PanicThreshold, ZeroDisablesAndHundredPanicsOnAnyUnhealthyHost) {
  EXPECT_FALSE(threshold(0).inPanic(0, 10));
  EXPECT_TRUE(threshold(100).inPanic(9, 10));
  EXPECT_FALSE(threshold(100).inPanic(10, 10));
}

TEST(PanicThreshold, EdgeCounts) {
  const PanicThreshold panic = threshold(50);
  EXPECT_FALSE(panic.inPanic(0, 0));    // nothing to balance
  EXPECT_FALSE(panic.inPanic(12, 10));  // more healthy than total counts as all healthy
  EXPECT_TRUE(panic.inPanic(0x7FFFFFFFFFFFFFFFULL - 1, 0xFFFFFFFFFFFFFFFFULL));
}

TEST(PanicThreshold, EligibilityIsEveryHostInPanicElseTheHealthyOnes) {
  const std::vector<bool> healthy = {true, false, false};
  const auto is_healthy = [&](std::size_t i) { return static_cast<bool>(healthy[i]); };
  auto calm = PanicThreshold::eligibility(false, is_healthy);
  auto panicked = PanicThreshold::eligibility(true, is_healthy);
  for (std::size_t i = 0; i < healthy.size(); ++i) {
    EXPECT_EQ(calm(i), healthy[i]);
    EXPECT_TRUE(panicked(i));
  }
}

TEST(PanicThreshold, ValidateExplainsBadSettings) {
  EXPECT_EQ(PanicThreshold::validate(PanicThreshold::Settings{}), std::nullopt);
  EXPECT_NE(PanicThreshold::validate(PanicThreshold::Settings{-1}), std::nullopt);
  EXPECT_NE(PanicThreshold::validate(PanicThreshold::Settings{100.5}), std::nullopt);
  EXPECT_EQ(threshold(250).thresholdPercent(), 100.0);
}

}  // namespace
}  // namespace sluice::resilience
