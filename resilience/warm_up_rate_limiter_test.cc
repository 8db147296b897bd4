#include "resilience/warm_up_rate_limiter.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/limiter_test_support.h"
#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Sentinel's worked numbers (WarmUpController.java's comments and its constructor): count 100,
// warm-up 10 s, coldFactor 3 -> warningToken 500, maxToken 1000, slope 4e-5.
WarmUpRateLimiter::Settings sentinelExample() {
  return {.rate_per_second = 100, .warm_up_period = seconds(10), .cold_factor = 3};
}

// Offers `demand` requests at the start of second `s` (kT0 is a whole second) and returns how
// many were admitted.
std::uint64_t offer(WarmUpRateLimiter& limiter, std::int64_t s, std::uint64_t demand) {
  std::uint64_t admitted = 0;
  for (std::uint64_t i = 0; i < demand; ++i) {
    admitted += limiter.tryAcquire(kT0 + seconds(s)) ? 1 : 0;
  }
  return admitted;
}

TEST(WarmUpRateLimiter, ValidateExplainsBadSettings) {
  EXPECT_EQ(WarmUpRateLimiter::validate(sentinelExample()), std::nullopt);
  auto s = sentinelExample();
  s.rate_per_second = 0;
  EXPECT_EQ(WarmUpRateLimiter::validate(s), "rate_per_second must be in (0, 1e9]");
  s = sentinelExample();
  s.warm_up_period = Duration::zero();
  EXPECT_EQ(WarmUpRateLimiter::validate(s), "warm_up_period must be positive");
  s = sentinelExample();
  s.cold_factor = 1;
  EXPECT_EQ(WarmUpRateLimiter::validate(s), "cold_factor must be at least 2");
  s = sentinelExample();
  s.rate_per_second = 1e9;
  s.warm_up_period = std::chrono::hours(24 * 365);
  EXPECT_TRUE(WarmUpRateLimiter::validate(s).has_value());
}

TEST(WarmUpRateLimiter, DerivesSentinelsTokenLevels) {
  const WarmUpRateLimiter::Params p = WarmUpRateLimiter::paramsFor(sentinelExample());
  EXPECT_EQ(p.warning_tokens, 500);  // 10 * 100 / (3 - 1)
  EXPECT_EQ(p.max_tokens, 1000);     // 500 + 2 * 10 * 100 / (1 + 3)
  EXPECT_DOUBLE_EQ(p.slope, 4e-5);   // (3 - 1) / 100 / (1000 - 500)
  EXPECT_EQ(p.cold_threshold, 33);   // (int) 100 / 3
}

// allowed(stored) = 1 / ((stored - 500) * 4e-5 + 1/100) above the warning line, 100 below.
TEST(WarmUpRateLimiter, TheAllowedRateFollowsTheWarmUpLine) {
  const WarmUpRateLimiter::Params p = WarmUpRateLimiter::paramsFor(sentinelExample());
  EXPECT_NEAR(WarmUpRateLimiter::allowedRate(1000, p), 100.0 / 3, 1e-9);  // 1 / 0.03
  EXPECT_NEAR(WarmUpRateLimiter::allowedRate(875, p), 40.0, 1e-9);        // 1 / 0.025
  EXPECT_NEAR(WarmUpRateLimiter::allowedRate(750, p), 50.0, 1e-9);        // 1 / 0.02
  EXPECT_NEAR(WarmUpRateLimiter::allowedRate(625, p), 200.0 / 3, 1e-9);   // 1 / 0.015
  EXPECT_NEAR(WarmUpRateLimiter::allowedRate(500, p), 100.0, 1e-9);
  EXPECT_DOUBLE_EQ(WarmUpRateLimiter::allowedRate(499, p), 100.0);
  EXPECT_DOUBLE_EQ(WarmUpRateLimiter::allowedRate(0, p), 100.0);
}

TEST(WarmUpRateLimiter, AColdSystemAdmitsAThirdOfTheRate) {
  WarmUpRateLimiter limiter(sentinelExample());
  EXPECT_EQ(offer(limiter, 0, 200), 33U);  // floor(33.3)
  const WarmUpRateLimiter::Snapshot snap = limiter.snapshot(kT0 + milliseconds(999));
  EXPECT_EQ(snap.stored_tokens, 1000);
  EXPECT_EQ(snap.passed, 33U);
}

// Under demand above the rate, each second's passes drain the stored tokens (1000, 967, 933,
// ...) and the allowed rate climbs along the line until stored < 500; the per-second counts
// follow from the formulas with Sentinel's integer steps (computed by hand/script from
// syncToken and canPass): the full rate 11 s after the start, one step after the 10 s warm-up.
TEST(WarmUpRateLimiter, SustainedLoadRampsToTheFullRateOverTheWarmUpPeriod) {
  WarmUpRateLimiter limiter(sentinelExample());
  const std::vector<std::uint64_t> expected = {33, 34, 36, 38, 41, 44, 47, 52, 58, 68, 83, 100};
  for (std::size_t s = 0; s < expected.size(); ++s) {
    EXPECT_EQ(offer(limiter, static_cast<std::int64_t>(s), 200), expected[s]) << "second " << s;
  }
  EXPECT_EQ(limiter.snapshot(kT0 + seconds(11)).stored_tokens, 466);  // 549 + 0 - 83
}

TEST(WarmUpRateLimiter, AWarmSystemStaysWarmUnderSustainedLoad) {
  WarmUpRateLimiter limiter(sentinelExample());
  for (std::int64_t s = 0; s < 12; ++s) {
    (void)offer(limiter, s, 200);
  }
  for (std::int64_t s = 12; s < 120; ++s) {
    ASSERT_EQ(offer(limiter, s, 200), 100U) << "second " << s;
    // Refill of 100 and 100 passes cancel below the warning line.
    ASSERT_EQ(limiter.snapshot(kT0 + seconds(s)).stored_tokens, 466);
  }
}

// Idle seconds refill 100 tokens each (466 -> 566 -> ... -> 1000): after one idle second the
// limiter admits 1 / (66 * 4e-5 + 0.01) = 79.1, after two 60.2, and from six on it is cold again.
TEST(WarmUpRateLimiter, IdlenessCoolsItBackDown) {
  const std::vector<std::pair<std::int64_t, std::uint64_t>> idle_then_admitted = {
      {1, 79}, {2, 60}, {3, 48}, {4, 40}, {5, 34}, {6, 33}, {60, 33}};
  for (const auto& [idle, admitted] : idle_then_admitted) {
    WarmUpRateLimiter limiter(sentinelExample());
    for (std::int64_t s = 0; s < 15; ++s) {
      (void)offer(limiter, s, 200);
    }
    EXPECT_EQ(offer(limiter, 15 + idle, 200), admitted) << "after " << idle << " idle seconds";
  }
}

// Traffic below count / coldFactor (33 per second) is "cold": it refills faster than it drains,
// so the limiter never warms up and the next burst still gets the cold rate.
TEST(WarmUpRateLimiter, LightTrafficKeepsItCold) {
  WarmUpRateLimiter limiter(sentinelExample());
  for (std::int64_t s = 0; s < 60; ++s) {
    ASSERT_EQ(offer(limiter, s, 20), 20U);
  }
  EXPECT_EQ(offer(limiter, 60, 200), 34U);  // stored 980: 1 / (480 * 4e-5 + 0.01) = 34.2
}

// The cold test is strict, as Sentinel's `passQps < (int) count / coldFactor`: exactly 33 per
// second is warm traffic (no refill: 1000 - 10 * 33 = 670 after ten seconds), 32 is cold (refill
// to 1000, minus the 32 passes).
TEST(WarmUpRateLimiter, TrafficAtExactlyTheColdThresholdWarmsItUp) {
  WarmUpRateLimiter at(sentinelExample());
  WarmUpRateLimiter below(sentinelExample());
  for (std::int64_t s = 0; s < 10; ++s) {
    ASSERT_EQ(offer(at, s, 33), 33U);
    ASSERT_EQ(offer(below, s, 32), 32U);
  }
  EXPECT_EQ(at.snapshot(kT0 + seconds(10)).stored_tokens, 670);
  EXPECT_EQ(below.snapshot(kT0 + seconds(10)).stored_tokens, 968);
}

TEST(WarmUpRateLimiter, RequestsOfSeveralTokensCountAsSeveral) {
  WarmUpRateLimiter limiter(sentinelExample());
  EXPECT_TRUE(limiter.tryAcquire(30, kT0));
  EXPECT_FALSE(limiter.tryAcquire(4, kT0));  // 34 > 33.3
  EXPECT_TRUE(limiter.tryAcquire(3, kT0));
  EXPECT_TRUE(limiter.tryAcquire(0, kT0));
  EXPECT_FALSE(limiter.tryAcquire(1, kT0 + milliseconds(999)));
}

// Once warm (stored below the warning line) every second admits exactly the rate.
TEST(WarmUpRateLimiter, AWarmLimiterAdmitsExactlyTheRateEverySecond) {
  WarmUpRateLimiter limiter(
      {.rate_per_second = 49, .warm_up_period = milliseconds(100), .cold_factor = 3});
  // T * count = 4.9 -> warning 4 / 2 = 2, max 2 + (int) 2.45 = 4: warm after one second.
  EXPECT_EQ(offer(limiter, 0, 100), 16U);  // 1 / (2 * 2/49/2 + 1/49) = 16.3
  for (std::int64_t s = 1; s < 5; ++s) {
    EXPECT_EQ(offer(limiter, s, 100), 49U) << "second " << s;
  }
}

TEST(WarmUpRateLimiter, AnEarlierNowCountsInTheLatestSecond) {
  WarmUpRateLimiter limiter(sentinelExample());
  EXPECT_EQ(offer(limiter, 5, 20), 20U);
  EXPECT_EQ(offer(limiter, 4, 20), 13U);  // still second 5: 33 in all
  EXPECT_EQ(limiter.snapshot(kT0).passed, 33U);
}

TEST(WarmUpRateLimiter, InvalidSettingsAreCoerced) {
  WarmUpRateLimiter zero({.rate_per_second = -1, .warm_up_period = seconds(1), .cold_factor = 3});
  EXPECT_FALSE(zero.tryAcquire(kT0));
  EXPECT_TRUE(zero.tryAcquire(0, kT0));
  // No warm-up: a plain per-second limit.
  WarmUpRateLimiter flat(
      {.rate_per_second = 10, .warm_up_period = Duration::zero(), .cold_factor = 0});
  EXPECT_EQ(flat.params().max_tokens, flat.params().warning_tokens);
  EXPECT_EQ(offer(flat, 0, 50), 10U);
}

// Concurrent callers in one second admit exactly floor(allowed(max_tokens)) (1000, up to the
// last bit of floating point): the sync, the check and the count are one step.
TEST(WarmUpRateLimiter, EightThreadsAdmitExactlyTheColdRate) {
  WarmUpRateLimiter limiter(
      {.rate_per_second = 3000, .warm_up_period = seconds(10), .cold_factor = 3});
  const WarmUpRateLimiter::Params& p = limiter.params();
  const auto expected = static_cast<std::uint64_t>(
      std::floor(std::nextafter(WarmUpRateLimiter::allowedRate(p.max_tokens, p), 1e18)));
  ASSERT_GE(expected, 999U);
  ASSERT_LE(expected, 1000U);
  std::atomic<std::uint64_t> admitted{0};
  runTogether(8, [&](int /*i*/) {
    std::uint64_t mine = 0;
    for (int k = 0; k < 500; ++k) {
      mine += limiter.tryAcquire(kT0 + milliseconds(k)) ? 1 : 0;
    }
    admitted.fetch_add(mine, std::memory_order_relaxed);
  });
  EXPECT_EQ(admitted.load(), expected);
  EXPECT_EQ(limiter.snapshot(kT0).passed, expected);
}

}  // namespace
}  // namespace sluice::resilience
