#include "resilience/aimd_limit.h"

#include <chrono>
#include <limits>

#include <gtest/gtest.h>

#include "resilience/clock.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

AimdLimit::Settings base() {
  return {.initial_limit = 10,
          .min_limit = 2,
          .max_limit = 12,
          .backoff_ratio = 0.5,
          .increase = 1,
          .timeout = milliseconds(500),
          .backoff_cooldown = Duration::zero()};
}

TEST(AimdLimit, DefaultSettingsAreValid) {
  EXPECT_EQ(AimdLimit::validate({}), std::nullopt);
  EXPECT_EQ(AimdLimit::validate(base()), std::nullopt);
}

TEST(AimdLimit, ValidateExplainsEachBadField) {
  auto with = [](auto change) {
    AimdLimit::Settings s = base();
    change(s);
    return AimdLimit::validate(s);
  };
  EXPECT_TRUE(with([](auto& s) { s.min_limit = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.max_limit = 1; }));
  EXPECT_TRUE(with([](auto& s) { s.max_limit = AdaptiveLimit::kMaxLimit + 1; }));
  EXPECT_TRUE(with([](auto& s) { s.initial_limit = 1; }));
  EXPECT_TRUE(with([](auto& s) { s.initial_limit = 13; }));
  EXPECT_TRUE(with([](auto& s) { s.backoff_ratio = 0.49; }));
  EXPECT_TRUE(with([](auto& s) { s.backoff_ratio = 1.0; }));
  EXPECT_TRUE(with([](auto& s) { s.backoff_ratio = std::numeric_limits<double>::quiet_NaN(); }));
  EXPECT_TRUE(with([](auto& s) { s.increase = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.timeout = Duration::zero(); }));
  EXPECT_TRUE(with([](auto& s) { s.backoff_cooldown = milliseconds(-1); }));
  EXPECT_FALSE(with([](auto& s) { s.backoff_ratio = 0.5; }));
}

TEST(AimdLimit, StartsAtInitialLimit) {
  AimdLimit limit(base());
  EXPECT_EQ(limit.limit(), 10U);
}

TEST(AimdLimit, SuccessWithHalfTheLimitInFlightAddsOne) {
  ManualClock clock;
  AimdLimit limit(base());
  limit.onSample(clock.now(), milliseconds(10), /*inflight=*/5, false);  // 5 * 2 >= 10
  EXPECT_EQ(limit.limit(), 11U);
}

TEST(AimdLimit, SuccessBelowHalfTheLimitIsAppLimited) {
  ManualClock clock;
  AimdLimit limit(base());
  limit.onSample(clock.now(), milliseconds(10), /*inflight=*/4, false);  // 4 * 2 < 10
  EXPECT_EQ(limit.limit(), 10U);
}

TEST(AimdLimit, OddLimitNeedsCeilOfHalf) {
  ManualClock clock;
  AimdLimit::Settings s = base();
  s.initial_limit = 11;
  AimdLimit limit(s);
  limit.onSample(clock.now(), milliseconds(10), /*inflight=*/5, false);  // 10 < 11
  EXPECT_EQ(limit.limit(), 11U);
  limit.onSample(clock.now(), milliseconds(10), /*inflight=*/6, false);  // 12 >= 11
  EXPECT_EQ(limit.limit(), 12U);
}

TEST(AimdLimit, IncreaseNeverExceedsMaxLimit) {
  ManualClock clock;
  AimdLimit::Settings s = base();
  s.increase = 5;
  AimdLimit limit(s);
  limit.onSample(clock.now(), milliseconds(10), 10, false);
  EXPECT_EQ(limit.limit(), 12U);
  limit.onSample(clock.now(), milliseconds(10), 12, false);
  EXPECT_EQ(limit.limit(), 12U);
}

TEST(AimdLimit, DropMultipliesByBackoffRatio) {
  ManualClock clock;
  AimdLimit limit(base());
  limit.onSample(clock.now(), milliseconds(10), 10, /*dropped=*/true);
  EXPECT_EQ(limit.limit(), 5U);  // floor(10 * 0.5)
}

TEST(AimdLimit, DropRoundsDownAndNeverGoesBelowMinLimit) {
  ManualClock clock;
  AimdLimit::Settings s = base();
  s.backoff_ratio = 0.9;
  s.initial_limit = 3;
  AimdLimit limit(s);
  limit.onSample(clock.now(), milliseconds(10), 1, true);
  EXPECT_EQ(limit.limit(), 2U);  // floor(2.7) = 2
  limit.onSample(clock.now(), milliseconds(10), 1, true);
  EXPECT_EQ(limit.limit(), 2U);  // min_limit
}

TEST(AimdLimit, RttAboveTimeoutCountsAsDropButEqualDoesNot) {
  ManualClock clock;
  AimdLimit limit(base());
  limit.onSample(clock.now(), milliseconds(500), 5, false);  // == timeout: a success
  EXPECT_EQ(limit.limit(), 11U);
  limit.onSample(clock.now(), milliseconds(500) + Duration(1), 5, false);
  EXPECT_EQ(limit.limit(), 5U);  // floor(11 * 0.5)
}

TEST(AimdLimit, CooldownIgnoresDropsSoonAfterADecrease) {
  ManualClock clock;
  AimdLimit::Settings s = base();
  s.initial_limit = 12;
  s.backoff_cooldown = milliseconds(100);
  AimdLimit limit(s);
  limit.onSample(clock.now(), milliseconds(10), 1, true);
  EXPECT_EQ(limit.limit(), 6U);
  clock.advance(milliseconds(99));
  limit.onSample(clock.now(), milliseconds(10), 1, true);
  EXPECT_EQ(limit.limit(), 6U);  // 99 ms < 100 ms cooldown
  clock.advance(milliseconds(1));
  limit.onSample(clock.now(), milliseconds(10), 1, true);
  EXPECT_EQ(limit.limit(), 3U);  // exactly the cooldown later: decreases again
}

TEST(AimdLimit, CooldownDoesNotDelayIncreases) {
  ManualClock clock;
  AimdLimit::Settings s = base();
  s.backoff_cooldown = milliseconds(100);
  AimdLimit limit(s);
  limit.onSample(clock.now(), milliseconds(10), 1, true);
  EXPECT_EQ(limit.limit(), 5U);
  limit.onSample(clock.now(), milliseconds(10), 5, false);
  EXPECT_EQ(limit.limit(), 6U);
}

TEST(AimdLimit, TimeGoingBackwardsCountsAsTheLatestTime) {
  ManualClock clock;
  AimdLimit::Settings s = base();
  s.initial_limit = 12;
  s.backoff_cooldown = milliseconds(100);
  AimdLimit limit(s);
  limit.onSample(clock.now(), milliseconds(10), 1, true);
  EXPECT_EQ(limit.limit(), 6U);
  // An hour in the past is treated as "now": still inside the cooldown, no decrease.
  limit.onSample(clock.now() - std::chrono::hours(1), milliseconds(10), 1, true);
  EXPECT_EQ(limit.limit(), 6U);
}

TEST(AimdLimit, InvalidSettingsAreClampedIntoRange) {
  AimdLimit::Settings s;
  s.min_limit = 0;
  s.max_limit = 0;
  s.initial_limit = 0;
  s.backoff_ratio = 3;
  AimdLimit limit(s);
  EXPECT_EQ(limit.limit(), 1U);
  ManualClock clock;
  limit.onSample(clock.now(), milliseconds(1), 1, true);
  EXPECT_EQ(limit.limit(), 1U);
}

TEST(AimdLimit, HugeInflightDoesNotOverflow) {
  ManualClock clock;
  AimdLimit limit(base());
  limit.onSample(clock.now(), milliseconds(1), std::numeric_limits<std::size_t>::max(), false);
  EXPECT_EQ(limit.limit(), 11U);
}

}  // namespace
}  // namespace sluice::resilience
