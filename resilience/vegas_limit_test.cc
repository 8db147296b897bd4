#include "resilience/vegas_limit.h"

#include <chrono>
#include <cstdint>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "resilience/clock.h"

namespace sluice::resilience {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

// L = 20: f(L) = 1, threshold 1, alpha 3, beta 6. No probing, no smoothing.
VegasLimit::Settings vegasBase() {
  return {.initial_limit = 20,
          .min_limit = 1,
          .max_limit = 1000,
          .smoothing = 1.0,
          .alpha_factor = 3,
          .beta_factor = 6,
          .probe_multiplier = 0,
          .seed = 1};
}

// Establishes the 10 ms no-load baseline; the first sample only sets it.
void feedBaseline(VegasLimit& limit, const ManualClock& clock) {
  limit.onSample(clock.now(), milliseconds(10), 20, false);
}

TEST(VegasLimit, DefaultSettingsAreValidAndMatchNetflix) {
  const VegasLimit::Settings d;
  EXPECT_EQ(VegasLimit::validate(d), std::nullopt);
  EXPECT_EQ(d.max_limit, 1000U);
  EXPECT_DOUBLE_EQ(d.alpha_factor, 3.0);
  EXPECT_DOUBLE_EQ(d.beta_factor, 6.0);
  EXPECT_EQ(d.probe_multiplier, 30U);
}

TEST(VegasLimit, ValidateExplainsEachBadField) {
  auto with = [](auto change) {
    VegasLimit::Settings s = vegasBase();
    change(s);
    return VegasLimit::validate(s);
  };
  EXPECT_TRUE(with([](auto& s) { s.min_limit = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.max_limit = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.max_limit = AdaptiveLimit::kMaxLimit + 1; }));
  EXPECT_TRUE(with([](auto& s) { s.initial_limit = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.smoothing = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.alpha_factor = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.beta_factor = 2; }));  // < alpha
  EXPECT_TRUE(with([](auto& s) { s.beta_factor = std::numeric_limits<double>::quiet_NaN(); }));
}

TEST(VegasLimit, Log10RootMatchesNetflixTable) {
  EXPECT_EQ(VegasLimit::log10Root(0), 1.0);
  EXPECT_EQ(VegasLimit::log10Root(1), 1.0);
  EXPECT_EQ(VegasLimit::log10Root(99), 1.0);
  EXPECT_EQ(VegasLimit::log10Root(100), 2.0);
  EXPECT_EQ(VegasLimit::log10Root(999), 2.0);
  EXPECT_EQ(VegasLimit::log10Root(1000), 31.0);  // switches to floor(sqrt) at 1000
  EXPECT_EQ(VegasLimit::log10Root(1024), 32.0);
}

TEST(VegasLimit, FirstSampleOnlySetsTheBaseline) {
  ManualClock clock;
  VegasLimit limit(vegasBase());
  EXPECT_EQ(limit.rttNoLoad(), Duration::zero());
  limit.onSample(clock.now(), milliseconds(10), 20, false);
  EXPECT_EQ(limit.rttNoLoad(), milliseconds(10));
  EXPECT_EQ(limit.limit(), 20U);
}

TEST(VegasLimit, LowerRttResetsTheBaselineWithoutChangingTheLimit) {
  ManualClock clock;
  VegasLimit limit(vegasBase());
  feedBaseline(limit, clock);
  limit.onSample(clock.now(), milliseconds(8), 20, false);
  EXPECT_EQ(limit.rttNoLoad(), milliseconds(8));
  EXPECT_EQ(limit.limit(), 20U);
}

TEST(VegasLimit, NoQueueingGrowsByBeta) {
  ManualClock clock;
  VegasLimit limit(vegasBase());
  feedBaseline(limit, clock);
  limit.onSample(clock.now(), milliseconds(10), 10, false);  // queue 0 <= threshold 1
  EXPECT_EQ(limit.limit(), 26U);
}

TEST(VegasLimit, QueueAtThresholdStillGrowsByBeta) {
  ManualClock clock;
  VegasLimit limit(vegasBase());
  feedBaseline(limit, clock);
  // ceil(20 * (1 - 10/10.4)) = ceil(0.77) = 1 == threshold: boundary is <=.
  limit.onSample(clock.now(), microseconds(10400), 10, false);
  EXPECT_EQ(limit.limit(), 26U);
}

TEST(VegasLimit, SmallQueueGrowsByLog10) {
  ManualClock clock;
  VegasLimit limit(vegasBase());
  feedBaseline(limit, clock);
  // ceil(20 * (1 - 10/10.8)) = ceil(1.48) = 2: above threshold 1, below alpha 3.
  limit.onSample(clock.now(), microseconds(10800), 10, false);
  EXPECT_EQ(limit.limit(), 21U);
}

TEST(VegasLimit, QueueBetweenAlphaAndBetaKeepsTheLimit) {
  ManualClock clock;
  VegasLimit limit(vegasBase());
  feedBaseline(limit, clock);
  // ceil(20 * (1 - 10/12)) = ceil(3.33) = 4: within [alpha 3, beta 6].
  limit.onSample(clock.now(), milliseconds(12), 10, false);
  EXPECT_EQ(limit.limit(), 20U);
  // ceil(20 * (1 - 10/14.2)) = ceil(5.92) = 6 == beta: the boundary is > beta, so unchanged.
  limit.onSample(clock.now(), microseconds(14200), 10, false);
  EXPECT_EQ(limit.limit(), 20U);
}

TEST(VegasLimit, LongQueueShrinksByLog10) {
  ManualClock clock;
  VegasLimit limit(vegasBase());
  feedBaseline(limit, clock);
  limit.onSample(clock.now(), milliseconds(20), 10, false);  // queue ceil(10) = 10 > 6
  EXPECT_EQ(limit.limit(), 19U);
}

TEST(VegasLimit, DropShrinksByLog10) {
  ManualClock clock;
  VegasLimit::Settings s = vegasBase();
  s.initial_limit = 150;  // f(150) = 2
  VegasLimit limit(s);
  feedBaseline(limit, clock);
  limit.onSample(clock.now(), milliseconds(10), 1, /*dropped=*/true);
  EXPECT_EQ(limit.limit(), 148U);
}

TEST(VegasLimit, DropIsIgnoredWhileItSetsANewBaseline) {
  ManualClock clock;
  VegasLimit limit(vegasBase());
  feedBaseline(limit, clock);
  limit.onSample(clock.now(), milliseconds(5), 20, /*dropped=*/true);  // rtt < baseline
  EXPECT_EQ(limit.limit(), 20U);
  EXPECT_EQ(limit.rttNoLoad(), milliseconds(5));
}

TEST(VegasLimit, AppLimitedSamplesKeepTheLimit) {
  ManualClock clock;
  VegasLimit limit(vegasBase());
  feedBaseline(limit, clock);
  limit.onSample(clock.now(), milliseconds(10), 9, false);  // 9 * 2 < 20
  EXPECT_EQ(limit.limit(), 20U);
  limit.onSample(clock.now(), milliseconds(10), 10, false);  // 10 * 2 == 20: not app-limited
  EXPECT_EQ(limit.limit(), 26U);
}

TEST(VegasLimit, LimitIsClampedToMinAndMax) {
  ManualClock clock;
  VegasLimit::Settings s = vegasBase();
  s.max_limit = 22;
  VegasLimit high(s);
  feedBaseline(high, clock);
  high.onSample(clock.now(), milliseconds(10), 20, false);
  EXPECT_EQ(high.limit(), 22U);

  s = vegasBase();
  s.initial_limit = 1;
  VegasLimit low(s);
  feedBaseline(low, clock);
  low.onSample(clock.now(), milliseconds(10), 1, true);
  EXPECT_EQ(low.limit(), 1U);
}

TEST(VegasLimit, SmoothingBlendsTowardsTheTarget) {
  ManualClock clock;
  VegasLimit::Settings s = vegasBase();
  s.smoothing = 0.5;
  VegasLimit limit(s);
  feedBaseline(limit, clock);
  limit.onSample(clock.now(), milliseconds(10), 10, false);  // target 26
  EXPECT_DOUBLE_EQ(limit.estimate(), 23.0);
}

TEST(VegasLimit, NonPositiveRttIsIgnoredUnlessDropped) {
  ManualClock clock;
  VegasLimit limit(vegasBase());
  feedBaseline(limit, clock);
  limit.onSample(clock.now(), Duration::zero(), 20, false);
  EXPECT_EQ(limit.limit(), 20U);
  EXPECT_EQ(limit.rttNoLoad(), milliseconds(10));
  limit.onSample(clock.now(), Duration::zero(), 20, true);
  EXPECT_EQ(limit.limit(), 19U);
}

TEST(VegasLimit, ProbeResetsTheBaselineWithinTheJitteredInterval) {
  ManualClock clock;
  VegasLimit::Settings s = vegasBase();
  s.probe_multiplier = 1;  // probe after [0.5, 1) * 1 * 20 = [10, 20) samples
  VegasLimit limit(s);
  limit.onSample(clock.now(), milliseconds(10), 1, false);  // sample 1: baseline 10 ms
  int probed_at = 0;
  for (int n = 2; n <= 25 && probed_at == 0; ++n) {
    limit.onSample(clock.now(), milliseconds(30), 1, false);  // app-limited: L stays 20
    if (limit.rttNoLoad() == milliseconds(30)) {
      probed_at = n;
    }
  }
  EXPECT_GE(probed_at, 10);
  EXPECT_LE(probed_at, 20);
  EXPECT_EQ(limit.limit(), 20U);
}

TEST(VegasLimit, SameSeedGivesTheSameTrajectory) {
  VegasLimit::Settings s = vegasBase();
  s.probe_multiplier = 2;
  s.seed = 42;
  VegasLimit a(s);
  VegasLimit b(s);
  ManualClock clock;
  std::mt19937_64 rng(9);
  for (int i = 0; i < 5000; ++i) {
    const Duration rtt = microseconds(1000 + static_cast<std::int64_t>(rng() % 20000));
    const std::size_t inflight = rng() % 60;
    const bool dropped = rng() % 50 == 0;
    a.onSample(clock.now(), rtt, inflight, dropped);
    b.onSample(clock.now(), rtt, inflight, dropped);
    ASSERT_EQ(a.estimate(), b.estimate());
    ASSERT_EQ(a.rttNoLoad(), b.rttNoLoad());
  }
}

// Property: random feedback never leaves [min, max] and limit() == floor(estimate()).
TEST(VegasLimit, RandomFeedbackKeepsTheLimitInBounds) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    std::mt19937_64 rng(seed);
    VegasLimit::Settings s;
    s.min_limit = 1 + rng() % 10;
    s.max_limit = s.min_limit + rng() % 3000;
    s.initial_limit = s.min_limit;
    s.smoothing = 0.05 + static_cast<double>(rng() % 95) / 100.0;
    s.probe_multiplier = rng() % 40;
    s.seed = seed;
    VegasLimit limit(s);
    ManualClock clock;
    for (int i = 0; i < 2000; ++i) {
      limit.onSample(clock.now(), Duration(static_cast<std::int64_t>(rng() % 100000000)),
                     rng() % (2 * s.max_limit + 1), rng() % 20 == 0);
      ASSERT_GE(limit.limit(), s.min_limit) << "seed " << seed;
      ASSERT_LE(limit.limit(), s.max_limit) << "seed " << seed;
      ASSERT_EQ(limit.limit(), static_cast<std::size_t>(limit.estimate())) << "seed " << seed;
    }
  }
}

}  // namespace
}  // namespace sluice::resilience
