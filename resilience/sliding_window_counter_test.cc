#include "resilience/sliding_window_counter.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <random>

#include <gtest/gtest.h>

#include "resilience/limiter_test_support.h"
#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using Counter = SlidingWindowCounter;

std::int64_t ns(TimePoint t) { return t.time_since_epoch().count(); }

// Admits `count` requests of cost 1 at `now`, all of which must fit.
void admit(Counter& counter, std::uint64_t count, TimePoint now) {
  for (std::uint64_t i = 0; i < count; ++i) {
    ASSERT_TRUE(counter.tryAcquire(now).allowed) << "request " << i;
  }
}

TEST(SlidingWindowCounter, ValidateExplainsBadSettings) {
  EXPECT_EQ(Counter::validate({.limit = 50, .window = std::chrono::minutes(1)}), std::nullopt);
  EXPECT_EQ(Counter::validate({.limit = 0, .window = seconds(1)}), "limit must be in [1, 2^62]");
  EXPECT_EQ(Counter::validate({.limit = Counter::kMaxLimit + 1, .window = seconds(1)}),
            "limit must be in [1, 2^62]");
  EXPECT_EQ(Counter::validate({.limit = 1, .window = Duration::zero()}), "window must be positive");
  const Counter::Params p = Counter::paramsFor({.limit = 0, .window = -seconds(1)});
  EXPECT_EQ(p.limit, 0U);
  EXPECT_EQ(p.window_ns, 1);
}

// Cloudflare's example ("How we built rate limiting capable of scaling to millions of domains",
// 2017): limit 50 per minute, 42 requests in the previous minute, 18 in the current one, 15 s
// into it: 42 * (60 - 15) / 60 + 18 = 49.5. Windows are aligned to the epoch; kT0 is a whole
// minute.
TEST(SlidingWindowCounter, CloudflaresExampleEstimatesFortyNineAndAHalf) {
  Counter counter({.limit = 50, .window = std::chrono::minutes(1)});
  admit(counter, 42, kT0);  // the previous minute
  const TimePoint minute = kT0 + std::chrono::minutes(1);
  admit(counter, 18, minute + seconds(15));
  const Counter::Decision peek = counter.peek(minute + seconds(15));
  EXPECT_DOUBLE_EQ(peek.estimate, 49.5);
  EXPECT_EQ(peek.remaining, 0U);  // floor(50 - 49.5) = 0 whole requests
}

// The rounding rule: none; admitted iff the estimate including the request stays <= limit. So
// at 49.5 the next request (50.5) is refused, and fits once 42 * (60 - e) / 60 + 19 <= 50, i.e.
// e >= 60 - 60 * 31 / 42 = 15.714285714... s (rounded up to the nanosecond); at 16 s the estimate
// is 42 * 44 / 60 + 18 = 48.8.
TEST(SlidingWindowCounter, TheRequestThatWouldTakeTheEstimatePastTheLimitWaits) {
  const Counter::Params p = Counter::paramsFor({.limit = 50, .window = std::chrono::minutes(1)});
  const std::int64_t minute = ns(kT0 + std::chrono::minutes(1));
  const Counter::State state{.window_start_ns = minute, .previous = 42, .current = 18};
  const Counter::Decision at15 = Counter::decide(state, minute + 15'000'000'000, 1, p);
  EXPECT_FALSE(at15.allowed);
  EXPECT_DOUBLE_EQ(at15.estimate, 49.5);
  EXPECT_EQ(at15.new_state.current, 18U);
  const std::int64_t fits_at = minute + 15'714'285'715;  // 60 s - floor(31 * 60 s / 42)
  EXPECT_EQ(at15.retry_after, nanoseconds(fits_at - (minute + 15'000'000'000)));
  EXPECT_FALSE(Counter::decide(state, fits_at - 1, 1, p).allowed);
  EXPECT_TRUE(Counter::decide(state, fits_at, 1, p).allowed);
  const Counter::Decision at16 = Counter::decide(state, minute + 16'000'000'000, 0, p);
  EXPECT_DOUBLE_EQ(at16.estimate, 48.8);
  EXPECT_EQ(at16.remaining, 1U);
}

TEST(SlidingWindowCounter, AnEstimateExactlyAtTheLimitIsAdmitted) {
  Counter counter({.limit = 10, .window = seconds(1)});
  admit(counter, 10, kT0);
  const TimePoint half = kT0 + milliseconds(1500);  // previous weighs 10 * 0.5 = 5
  admit(counter, 5, half);
  EXPECT_DOUBLE_EQ(counter.peek(half).estimate, 10.0);
  EXPECT_FALSE(counter.tryAcquire(half).allowed);
}

TEST(SlidingWindowCounter, TheCurrentWindowBecomesThePreviousAtTheSeam) {
  Counter counter({.limit = 10, .window = seconds(1)});
  admit(counter, 10, kT0 + milliseconds(300));
  EXPECT_FALSE(counter.tryAcquire(kT0 + seconds(1)).allowed);                // weight 1: still 10
  const Counter::Decision d = counter.tryAcquire(kT0 + milliseconds(1100));  // 9 + 1
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.new_state.window_start_ns, ns(kT0 + seconds(1)));
  EXPECT_EQ(d.new_state.previous, 10U);
  EXPECT_EQ(d.new_state.current, 1U);
  EXPECT_FALSE(counter.tryAcquire(kT0 + milliseconds(1100)).allowed);
  EXPECT_EQ(counter.peek(kT0 + milliseconds(1500)).remaining, 4U);  // 10 - (5 + 1)
}

TEST(SlidingWindowCounter, AnIdleGapOfAWholeWindowForgetsBothCounts) {
  Counter counter({.limit = 10, .window = seconds(1)});
  admit(counter, 10, kT0 + milliseconds(999));
  // Window 1 saw nothing, so at window 2 the previous window is empty, however close to the
  // seam the old requests were.
  const Counter::Decision d = counter.peek(kT0 + seconds(2));
  EXPECT_EQ(d.remaining, 10U);
  EXPECT_EQ(d.new_state.previous, 0U);
  EXPECT_EQ(d.new_state.current, 0U);
  admit(counter, 10, kT0 + seconds(2));
  EXPECT_EQ(counter.peek(kT0 + std::chrono::hours(5)).remaining, 10U);
}

TEST(SlidingWindowCounter, RetryAfterPointsIntoTheNextWindowWhenThisOneIsFull) {
  Counter counter({.limit = 10, .window = seconds(1)});
  admit(counter, 10, kT0 + milliseconds(500));
  const Counter::Decision d = counter.tryAcquire(kT0 + milliseconds(500));
  EXPECT_FALSE(d.allowed);
  // Next window: 10 * (1 - e) + 1 <= 10 from e = 0.1 s, i.e. at 1.1 s.
  EXPECT_EQ(d.retry_after, milliseconds(600));
  EXPECT_FALSE(counter.tryAcquire(kT0 + milliseconds(1100) - nanoseconds(1)).allowed);
  EXPECT_TRUE(counter.tryAcquire(kT0 + milliseconds(1100)).allowed);
}

TEST(SlidingWindowCounter, ACostAboveTheLimitNeverFitsAndCostZeroAlwaysDoes) {
  Counter counter({.limit = 3, .window = seconds(1)});
  const Counter::Decision big = counter.tryAcquire(4, kT0);
  EXPECT_FALSE(big.allowed);
  EXPECT_EQ(big.retry_after, Duration::max());
  admit(counter, 3, kT0);
  const Counter::Decision zero = counter.tryAcquire(0, kT0);
  EXPECT_TRUE(zero.allowed);
  EXPECT_EQ(counter.state().current, 3U);
  EXPECT_TRUE(counter.tryAcquire(3, kT0 + seconds(2)).allowed);
}

TEST(SlidingWindowCounter, TimeGoingBackwardsNeverFreesRoom) {
  Counter counter({.limit = 10, .window = seconds(1)});
  admit(counter, 10, kT0 + milliseconds(200));
  admit(counter, 5, kT0 + milliseconds(1500));
  // Earlier in the same window: previous weighs more, so less room.
  EXPECT_FALSE(counter.tryAcquire(kT0 + milliseconds(1400)).allowed);
  // An earlier window is judged at the stored window's start (weight 1): nothing fits.
  EXPECT_FALSE(counter.tryAcquire(kT0 + milliseconds(300)).allowed);
  EXPECT_EQ(counter.state().window_start_ns, ns(kT0 + seconds(1)));
}

// Property, over seeded random schedules: after every admission the estimate is at most the
// limit, the current window holds at most `limit`, and no true sliding window of length W holds
// more than 2 * limit.
TEST(SlidingWindowCounter, RandomSchedulesStayWithinTheDocumentedBounds) {
  constexpr std::uint64_t kLimit = 20;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    Counter counter({.limit = kLimit, .window = milliseconds(100)});
    std::deque<std::int64_t> log;
    TimePoint now = kT0;
    for (int i = 0; i < 3000; ++i) {
      now += nanoseconds(rng() % 10'000'000);  // 0..10 ms
      const std::uint64_t cost = 1 + rng() % 3;
      const Counter::Decision d = counter.tryAcquire(cost, now);
      if (!d.allowed) {
        continue;
      }
      ASSERT_LE(d.estimate, static_cast<double>(kLimit) + 1e-9);
      ASSERT_LE(d.new_state.current, kLimit);
      for (std::uint64_t k = 0; k < cost; ++k) {
        log.push_back(ns(now));
      }
      while (log.front() <= ns(now) - 100'000'000) {
        log.pop_front();
      }
      ASSERT_LE(log.size(), 2 * kLimit) << "seed " << seed;
    }
  }
}

// Concurrent admissions at one instant admit exactly the limit: the check and the increment are
// one step.
TEST(SlidingWindowCounter, EightThreadsAdmitExactlyTheLimit) {
  Counter counter({.limit = 1000, .window = seconds(1)});
  std::atomic<std::uint64_t> admitted{0};
  runTogether(8, [&](int /*i*/) {
    std::uint64_t mine = 0;
    for (int k = 0; k < 500; ++k) {
      mine += counter.tryAcquire(kT0 + milliseconds(10)).allowed ? 1 : 0;
    }
    admitted.fetch_add(mine, std::memory_order_relaxed);
  });
  EXPECT_EQ(admitted.load(), 1000U);
  EXPECT_EQ(counter.state().current, 1000U);
}

// With a moving shared clock the per-window counts never exceed the limit and every admission is
// recorded.
TEST(SlidingWindowCounter, ConcurrentAdmissionsAcrossWindowsAreAllCounted) {
  Counter counter({.limit = 50, .window = std::chrono::microseconds(100)});
  ManualClock clock;
  std::atomic<std::uint64_t> admitted{0};
  runTogether(4, [&](int /*i*/) {
    std::uint64_t mine = 0;
    for (int k = 0; k < 20'000; ++k) {
      if (k % 8 == 0) {
        clock.advance(nanoseconds(100));
      }
      const Counter::Decision d = counter.tryAcquire(clock.now());
      mine += d.allowed ? 1 : 0;
      if (d.allowed) {
        EXPECT_LE(d.new_state.current, 50U);
      }
    }
    admitted.fetch_add(mine, std::memory_order_relaxed);
  });
  // 4 * 20000 / 8 * 100 ns = 1 ms of clock: 10 windows of 100 us, at most 50 each plus the last.
  EXPECT_LE(admitted.load(), 50U * 11);
  EXPECT_GT(admitted.load(), 0U);
}

}  // namespace
}  // namespace sluice::resilience
