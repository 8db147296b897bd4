#include "resilience/deadline.h"

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(Deadline, DefaultIsInfinite) {
  const Deadline d;
  EXPECT_TRUE(d.isInfinite());
  EXPECT_EQ(d, Deadline::infinite());
  EXPECT_EQ(d.timePoint(), TimePoint::max());
}

TEST(Deadline, InfiniteNeverExpiresAndHasMaxRemaining) {
  const Deadline d = Deadline::infinite();
  EXPECT_FALSE(d.expired(kT0));
  EXPECT_FALSE(d.expired(TimePoint::max()));
  EXPECT_EQ(d.remaining(kT0), Duration::max());
  EXPECT_EQ(d.remaining(TimePoint::max()), Duration::max());
}

// Verifies the boundary: expired exactly at the deadline, not one nanosecond before.
TEST(Deadline, ExpiresExactlyAtItsTimePoint) {
  const Deadline d = Deadline::at(kT0 + milliseconds(100));
  EXPECT_FALSE(d.expired(kT0 + milliseconds(100) - nanoseconds(1)));
  EXPECT_TRUE(d.expired(kT0 + milliseconds(100)));
  EXPECT_TRUE(d.expired(kT0 + milliseconds(100) + nanoseconds(1)));
}

TEST(Deadline, RemainingCountsDownToZeroAndStaysThere) {
  const Deadline d = Deadline::at(kT0 + milliseconds(100));
  EXPECT_EQ(d.remaining(kT0), milliseconds(100));
  EXPECT_EQ(d.remaining(kT0 + milliseconds(100) - nanoseconds(1)), nanoseconds(1));
  EXPECT_EQ(d.remaining(kT0 + milliseconds(100)), Duration::zero());
  EXPECT_EQ(d.remaining(kT0 + milliseconds(500)), Duration::zero());
}

TEST(Deadline, AfterAddsTheTimeoutToNow) {
  EXPECT_EQ(Deadline::after(kT0, milliseconds(250)).timePoint(), kT0 + milliseconds(250));
}

TEST(Deadline, ZeroTimeoutIsAlreadyExpired) {
  const Deadline d = Deadline::after(kT0, Duration::zero());
  EXPECT_TRUE(d.expired(kT0));
  EXPECT_EQ(d.remaining(kT0), Duration::zero());
}

TEST(Deadline, NegativeTimeoutIsAlreadyExpired) {
  const Deadline d = Deadline::after(kT0, milliseconds(-5));
  EXPECT_TRUE(d.expired(kT0));
  EXPECT_EQ(d.timePoint(), kT0 - milliseconds(5));
}

TEST(Deadline, HugeTimeoutSaturatesToInfinite) {
  EXPECT_TRUE(Deadline::after(kT0, Duration::max()).isInfinite());
  EXPECT_TRUE(Deadline::after(TimePoint::max() - milliseconds(1), milliseconds(2)).isInfinite());
  EXPECT_FALSE(Deadline::after(kT0, std::chrono::hours(24 * 365)).isInfinite());
}

TEST(Deadline, HugeNegativeTimeoutSaturatesToTheEarliestTime) {
  EXPECT_EQ(Deadline::after(TimePoint{} - std::chrono::hours(1), Duration::min()).timePoint(),
            TimePoint::min());
  EXPECT_EQ(Deadline::after(kT0, Duration::min()).timePoint(), kT0 + Duration::min());
  EXPECT_EQ(Deadline::after(TimePoint::min() + milliseconds(1), milliseconds(-2)).timePoint(),
            TimePoint::min());
}

TEST(Deadline, RemainingSaturatesInsteadOfOverflowing) {
  const Deadline d = Deadline::at(TimePoint::max() - nanoseconds(1));
  EXPECT_EQ(d.remaining(TimePoint::min()), Duration::max());
}

TEST(Deadline, EarlierOfPicksTheEarlierAndTreatsInfiniteAsLatest) {
  const Deadline a = Deadline::at(kT0 + milliseconds(10));
  const Deadline b = Deadline::at(kT0 + milliseconds(20));
  EXPECT_EQ(earlierOf(a, b), a);
  EXPECT_EQ(earlierOf(b, a), a);
  EXPECT_EQ(earlierOf(a, Deadline::infinite()), a);
  EXPECT_EQ(earlierOf(Deadline::infinite(), b), b);
  EXPECT_TRUE(earlierOf(Deadline::infinite(), Deadline::infinite()).isInfinite());
}

TEST(Deadline, OrdersByExpiry) {
  EXPECT_LT(Deadline::at(kT0), Deadline::at(kT0 + nanoseconds(1)));
  EXPECT_LT(Deadline::at(kT0), Deadline::infinite());
  EXPECT_EQ(Deadline::at(TimePoint::max()), Deadline::infinite());
}

TEST(Deadline, IsUsableInConstantExpressions) {
  constexpr Deadline kDeadline = Deadline::after(TimePoint{} + milliseconds(1), milliseconds(1));
  static_assert(kDeadline.timePoint() == TimePoint{} + milliseconds(2));
  static_assert(kDeadline.expired(TimePoint{} + milliseconds(2)));
  static_assert(!Deadline::infinite().expired(TimePoint::max()));
  SUCCEED();
}

}  // namespace
}  // namespace sluice::resilience
