#include "resilience/lb/slow_start.h"

#include <chrono>
#include <cmath>

#include <gtest/gtest.h>

#include "resilience/clock.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

SlowStart::Settings ramp(seconds window, double aggression = 1.0, double min_percent = 10.0) {
  SlowStart::Settings settings;
  settings.window = window;
  settings.aggression = aggression;
  settings.min_weight_percent = min_percent;
  return settings;
}

TEST(SlowStart, HostsNotStartedAreAtFullWeight) {
  ManualClock clock;
  const SlowStart slow(ramp(seconds(10)), 3);
  EXPECT_EQ(slow.factor(1, clock.now()), 1.0);
  EXPECT_EQ(slow.weight(1, 100, clock.now()), 100U);
  EXPECT_FALSE(slow.ramping(1, clock.now()));
  EXPECT_EQ(slow.factor(9, clock.now()), 1.0);  // out of range
}

TEST(SlowStart, LinearRampWithAMinimumFloor) {
  ManualClock clock;
  SlowStart slow(ramp(seconds(10)), 2);
  slow.start(0, clock.now());
  EXPECT_DOUBLE_EQ(slow.factor(0, clock.now()), 0.1);  // floor: 0 < 10 %
  clock.advance(milliseconds(500));
  EXPECT_DOUBLE_EQ(slow.factor(0, clock.now()), 0.1);  // 5 % < 10 %
  clock.advance(milliseconds(2000));
  EXPECT_DOUBLE_EQ(slow.factor(0, clock.now()), 0.25);
  EXPECT_EQ(slow.weight(0, 100, clock.now()), 25U);
  EXPECT_TRUE(slow.ramping(0, clock.now()));
  clock.advance(milliseconds(7499));
  EXPECT_NEAR(slow.factor(0, clock.now()), 0.9999, 1e-12);
  clock.advance(milliseconds(1));  // exactly the window: done
  EXPECT_EQ(slow.factor(0, clock.now()), 1.0);
  EXPECT_FALSE(slow.ramping(0, clock.now()));
  EXPECT_EQ(slow.factor(1, clock.now()), 1.0);  // the other host was never started
}

TEST(SlowStart, AggressionShapesTheRamp) {
  ManualClock clock;
  SlowStart fast(ramp(seconds(100), 2.0, 0.0), 1);
  SlowStart slow(ramp(seconds(100), 0.5, 0.0), 1);
  fast.start(0, clock.now());
  slow.start(0, clock.now());
  clock.advance(seconds(25));
  EXPECT_DOUBLE_EQ(fast.factor(0, clock.now()), 0.5);     // 0.25 ^ (1/2)
  EXPECT_DOUBLE_EQ(slow.factor(0, clock.now()), 0.0625);  // 0.25 ^ 2
}

TEST(SlowStart, WeightRoundsAndNeverDropsAPositiveBaseToZero) {
  ManualClock clock;
  SlowStart slow(ramp(seconds(10), 1.0, 0.0), 1);
  slow.start(0, clock.now());
  EXPECT_EQ(slow.weight(0, 1000, clock.now()), 1U);  // factor 0
  EXPECT_EQ(slow.weight(0, 0, clock.now()), 0U);
  clock.advance(milliseconds(1234));
  EXPECT_EQ(slow.weight(0, 1000, clock.now()), 123U);  // 123.4
  EXPECT_EQ(slow.weight(0, 1, clock.now()), 1U);
  EXPECT_EQ(slow.weight(0, 0xFFFFFFFFU, clock.now() + seconds(10)), 0xFFFFFFFFU);
}

TEST(SlowStart, TimeBeforeTheStartCountsAsTheStart) {
  ManualClock clock;
  SlowStart slow(ramp(seconds(10), 1.0, 20.0), 1);
  slow.start(0, clock.now());
  EXPECT_DOUBLE_EQ(slow.factor(0, clock.now() - seconds(5)), 0.2);
}

TEST(SlowStart, RestartingAndFinishingTheRamp) {
  ManualClock clock;
  SlowStart slow(ramp(seconds(10), 1.0, 0.0), 1);
  slow.start(0, clock.now());
  clock.advance(seconds(20));
  EXPECT_EQ(slow.factor(0, clock.now()), 1.0);
  slow.start(0, clock.now());  // recovered again
  clock.advance(seconds(5));
  EXPECT_DOUBLE_EQ(slow.factor(0, clock.now()), 0.5);
  slow.finish(0);
  EXPECT_EQ(slow.factor(0, clock.now()), 1.0);
}

TEST(SlowStart, AddedHostsCanRampAndRemovalShiftsIndices) {
  ManualClock clock;
  SlowStart slow(ramp(seconds(10), 1.0, 0.0), 1);
  slow.addHost(true, clock.now());
  slow.addHost(false, clock.now());
  EXPECT_EQ(slow.size(), 3U);
  clock.advance(seconds(4));
  EXPECT_DOUBLE_EQ(slow.factor(1, clock.now()), 0.4);
  slow.removeHost(0);
  EXPECT_DOUBLE_EQ(slow.factor(0, clock.now()), 0.4);
  EXPECT_EQ(slow.factor(1, clock.now()), 1.0);
}

TEST(SlowStart, ValidateExplainsBadSettings) {
  EXPECT_EQ(SlowStart::validate(SlowStart::Settings{}), std::nullopt);
  EXPECT_NE(SlowStart::validate(ramp(seconds(0))), std::nullopt);
  EXPECT_NE(SlowStart::validate(ramp(seconds(1), 0.0)), std::nullopt);
  EXPECT_NE(SlowStart::validate(ramp(seconds(1), NAN)), std::nullopt);
  EXPECT_NE(SlowStart::validate(ramp(seconds(1), 1.0, 101.0)), std::nullopt);
  EXPECT_NE(SlowStart::validate(ramp(seconds(1), 1.0, -1.0)), std::nullopt);
}

}  // namespace
}  // namespace sluice::resilience
