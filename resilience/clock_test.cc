#include "resilience/clock.h"

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

TEST(ManualClock, AdvancesOnlyWhenTold) {
  ManualClock clock;
  const TimePoint start = clock.now();
  EXPECT_EQ(clock.now(), start);
  clock.advance(milliseconds(250));
  EXPECT_EQ(clock.now() - start, milliseconds(250));
}

TEST(ManualClock, SetMovesToAnExactTime) {
  ManualClock clock;
  const TimePoint target = clock.now() + std::chrono::hours(3);
  clock.set(target);
  EXPECT_EQ(clock.now(), target);
}

TEST(ManualClock, StartsFarEnoughFromTheEpochToSubtract) {
  ManualClock clock;
  EXPECT_GT(clock.now() - std::chrono::hours(1), TimePoint{});
}

}  // namespace
}  // namespace sluice::resilience
