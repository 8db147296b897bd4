#include "resilience/gradient_limit.h"

#include <chrono>
#include <cstdint>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "resilience/clock.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

// smoothing 1 makes each update land exactly on the formula's target.
GradientLimit::Settings gradientBase() {
  return {.initial_limit = 10,
          .min_limit = 1,
          .max_limit = 100,
          .smoothing = 1.0,
          .queue_size = 2,
          .long_window = 1000,
          .warmup_windows = 1,
          .window_min_samples = 1,
          .window_min_duration = Duration::zero()};
}

TEST(GradientLimit, DefaultSettingsAreValidAndMatchGradient2) {
  const GradientLimit::Settings d;
  EXPECT_EQ(GradientLimit::validate(d), std::nullopt);
  EXPECT_EQ(d.initial_limit, 20U);
  EXPECT_EQ(d.max_limit, 200U);
  EXPECT_DOUBLE_EQ(d.smoothing, 0.2);
  EXPECT_DOUBLE_EQ(d.queue_size, 4.0);
  EXPECT_EQ(d.long_window, 600U);
}

TEST(GradientLimit, ValidateExplainsEachBadField) {
  auto with = [](auto change) {
    GradientLimit::Settings s = gradientBase();
    change(s);
    return GradientLimit::validate(s);
  };
  EXPECT_TRUE(with([](auto& s) { s.min_limit = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.max_limit = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.max_limit = AdaptiveLimit::kMaxLimit + 1; }));
  EXPECT_TRUE(with([](auto& s) { s.initial_limit = 101; }));
  EXPECT_TRUE(with([](auto& s) { s.smoothing = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.smoothing = 1.5; }));
  EXPECT_TRUE(with([](auto& s) { s.smoothing = std::numeric_limits<double>::quiet_NaN(); }));
  EXPECT_TRUE(with([](auto& s) { s.queue_size = -1; }));
  EXPECT_TRUE(with([](auto& s) { s.queue_size = std::numeric_limits<double>::infinity(); }));
  EXPECT_TRUE(with([](auto& s) { s.long_window = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.window_min_samples = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.window_min_duration = milliseconds(-1); }));
}

TEST(GradientLimit, SteadyLatencyGrowsByQueueSize) {
  ManualClock clock;
  GradientLimit limit(gradientBase());
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  // long == short == 100 ms: gradient 1, target = 10 * 1 + 2.
  EXPECT_EQ(limit.limit(), 12U);
  limit.onSample(clock.now(), milliseconds(100), 12, false);
  EXPECT_EQ(limit.limit(), 14U);
  EXPECT_EQ(limit.longRtt(), milliseconds(100));
  EXPECT_EQ(limit.shortRtt(), milliseconds(100));
}

TEST(GradientLimit, RisingLatencyShrinksByTheRttRatio) {
  ManualClock clock;
  GradientLimit::Settings s = gradientBase();
  s.warmup_windows = 10;  // long RTT = arithmetic mean of the windows so far
  GradientLimit limit(s);
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  ASSERT_EQ(limit.limit(), 12U);
  limit.onSample(clock.now(), milliseconds(300), 12, false);
  // long = (100 + 300) / 2 = 200, gradient = 200 / 300, target = 12 * 2/3 + 2 = 10.
  EXPECT_NEAR(limit.estimate(), 10.0, 1e-9);
  EXPECT_EQ(limit.longRtt(), milliseconds(200));
}

TEST(GradientLimit, GradientIsClampedAtOneHalf) {
  ManualClock clock;
  GradientLimit limit(gradientBase());
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  ASSERT_EQ(limit.limit(), 12U);
  limit.onSample(clock.now(), milliseconds(1000), 12, false);
  // long ~= 101.8 ms, ratio ~0.10 -> clamped to 0.5: target = 12 * 0.5 + 2.
  EXPECT_DOUBLE_EQ(limit.estimate(), 8.0);
}

TEST(GradientLimit, GradientIsClampedAtOneWhenLatencyFalls) {
  ManualClock clock;
  GradientLimit limit(gradientBase());
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  limit.onSample(clock.now(), milliseconds(80), 12, false);
  // long > short would give a gradient > 1; clamped to 1: target = 12 + 2.
  EXPECT_DOUBLE_EQ(limit.estimate(), 14.0);
}

TEST(GradientLimit, SmoothingBlendsOldAndNewEstimates) {
  ManualClock clock;
  GradientLimit::Settings s = gradientBase();
  s.smoothing = 0.25;
  GradientLimit limit(s);
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  // target 12; 10 * 0.75 + 12 * 0.25 = 10.5
  EXPECT_DOUBLE_EQ(limit.estimate(), 10.5);
  EXPECT_EQ(limit.limit(), 10U);  // floor
}

TEST(GradientLimit, AppLimitedWindowKeepsTheLimitButLearnsTheRtt) {
  ManualClock clock;
  GradientLimit limit(gradientBase());
  limit.onSample(clock.now(), milliseconds(100), /*inflight=*/4, false);  // 4 < 10 / 2
  EXPECT_EQ(limit.limit(), 10U);
  EXPECT_EQ(limit.longRtt(), milliseconds(100));
  limit.onSample(clock.now(), milliseconds(100), /*inflight=*/5, false);  // 5 == 10 / 2: updates
  EXPECT_EQ(limit.limit(), 12U);
}

TEST(GradientLimit, LongRttIsPulledDownWhenMoreThanTwiceTheShortRtt) {
  ManualClock clock;
  GradientLimit limit(gradientBase());
  limit.onSample(clock.now(), milliseconds(1000), 10, false);
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  // EMA: 1000 + (100 - 1000) * 2 / 1001 = 998.2018 ms; ratio > 2, so * 0.9 = 898.3816 ms.
  const double expected_ms = (1000.0 + (100.0 - 1000.0) * 2.0 / 1001.0) * 0.9;
  using Ms = std::chrono::duration<double, std::milli>;
  EXPECT_NEAR(Ms(limit.longRtt()).count(), expected_ms, 1e-6);
}

TEST(GradientLimit, ExactlyTwiceTheShortRttIsNotPulledDown) {
  ManualClock clock;
  GradientLimit::Settings s = gradientBase();
  s.long_window = 1;  // factor 2 / (1 + 1) = 1: the EMA jumps to each new value
  s.warmup_windows = 2;
  GradientLimit limit(s);
  limit.onSample(clock.now(), milliseconds(300), 10, false);
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  // warm-up mean (300 + 100) / 2 = 200 = 2 * short: not > 2, stays 200.
  EXPECT_EQ(limit.longRtt(), milliseconds(200));
}

TEST(GradientLimit, WindowClosesOnlyWithEnoughSamplesAndTime) {
  ManualClock clock;
  GradientLimit::Settings s = gradientBase();
  s.window_min_samples = 3;
  s.window_min_duration = milliseconds(100);
  GradientLimit limit(s);
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  clock.advance(milliseconds(50));
  limit.onSample(clock.now(), milliseconds(200), 10, false);
  clock.advance(milliseconds(10));
  limit.onSample(clock.now(), milliseconds(300), 10, false);  // 3 samples but only 60 ms
  EXPECT_EQ(limit.shortRtt(), Duration::zero());
  EXPECT_EQ(limit.limit(), 10U);
  clock.advance(milliseconds(40));  // exactly 100 ms after the window opened
  limit.onSample(clock.now(), milliseconds(400), 10, false);
  EXPECT_EQ(limit.shortRtt(), milliseconds(250));  // mean of 100, 200, 300, 400
  EXPECT_EQ(limit.limit(), 12U);                   // first window: long == short
}

TEST(GradientLimit, WindowUsesPeakInflightForTheAppLimitedCheck) {
  ManualClock clock;
  GradientLimit::Settings s = gradientBase();
  s.window_min_samples = 2;
  GradientLimit limit(s);
  limit.onSample(clock.now(), milliseconds(100), 9, false);
  limit.onSample(clock.now(), milliseconds(100), 1, false);
  EXPECT_EQ(limit.limit(), 12U);  // peak 9 >= 5
}

TEST(GradientLimit, NonPositiveRttIsIgnored) {
  ManualClock clock;
  GradientLimit limit(gradientBase());
  limit.onSample(clock.now(), Duration::zero(), 10, false);
  limit.onSample(clock.now(), milliseconds(-5), 10, true);
  EXPECT_EQ(limit.limit(), 10U);
  EXPECT_EQ(limit.longRtt(), Duration::zero());
}

TEST(GradientLimit, DroppedSamplesCountThroughTheirRtt) {
  ManualClock clock;
  GradientLimit limit(gradientBase());
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  limit.onSample(clock.now(), milliseconds(100), 12, /*dropped=*/true);
  EXPECT_EQ(limit.limit(), 14U);  // same as a success with the same RTT
}

TEST(GradientLimit, EstimateStaysWithinMinAndMax) {
  ManualClock clock;
  GradientLimit::Settings s = gradientBase();
  s.min_limit = 9;
  s.max_limit = 11;
  GradientLimit limit(s);
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  EXPECT_EQ(limit.limit(), 11U);
  limit.onSample(clock.now(), milliseconds(10000), 11, false);  // target 11 * 0.5 + 2 = 7.5
  EXPECT_EQ(limit.limit(), 9U);
}

TEST(GradientLimit, TimeGoingBackwardsDoesNotCloseOrStallWindows) {
  ManualClock clock;
  GradientLimit::Settings s = gradientBase();
  s.window_min_samples = 2;
  s.window_min_duration = milliseconds(100);
  GradientLimit limit(s);
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  limit.onSample(clock.now() - std::chrono::hours(1), milliseconds(100), 10, false);
  EXPECT_EQ(limit.limit(), 10U);  // treated as "now": 0 ms into the window
  clock.advance(milliseconds(100));
  limit.onSample(clock.now(), milliseconds(100), 10, false);
  EXPECT_EQ(limit.limit(), 12U);
}

// Property: under random latencies and load the limit always stays within [min, max], the
// estimate is finite, and limit() == floor(estimate()).
TEST(GradientLimit, RandomFeedbackKeepsTheLimitInBounds) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    std::mt19937_64 rng(seed);
    GradientLimit::Settings s;
    s.min_limit = 1 + rng() % 10;
    s.max_limit = s.min_limit + rng() % 500;
    s.initial_limit = s.min_limit;
    s.smoothing = 0.05 + static_cast<double>(rng() % 95) / 100.0;
    s.window_min_samples = 1 + rng() % 5;
    GradientLimit limit(s);
    ManualClock clock;
    for (int i = 0; i < 2000; ++i) {
      clock.advance(milliseconds(rng() % 10));
      limit.onSample(clock.now(), Duration(static_cast<std::int64_t>(rng() % 1000000000)),
                     rng() % (s.max_limit + 1), rng() % 10 == 0);
      ASSERT_GE(limit.limit(), s.min_limit) << "seed " << seed;
      ASSERT_LE(limit.limit(), s.max_limit) << "seed " << seed;
      ASSERT_EQ(limit.limit(), static_cast<std::size_t>(limit.estimate())) << "seed " << seed;
    }
  }
}

}  // namespace
}  // namespace sluice::resilience
