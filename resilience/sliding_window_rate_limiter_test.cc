#include "resilience/sliding_window_rate_limiter.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(SlidingWindowRateLimiter, AdmitsUpToTheLimitPerWindow) {
  SlidingWindowRateLimiter l({.limit = 3, .window = seconds(1), .bucket_count = 10});
  EXPECT_TRUE(l.tryAcquire(at(0)));
  EXPECT_TRUE(l.tryAcquire(2, at(50)));
  EXPECT_FALSE(l.tryAcquire(at(999)));
  EXPECT_EQ(l.count(at(999)), 3U);
  EXPECT_EQ(l.remaining(at(999)), 0U);
}

// Verifies the boundary: the bucket [0, 100) ms leaves exactly one window after its start.
TEST(SlidingWindowRateLimiter, CapacityReturnsWhenBucketsLeaveTheWindow) {
  SlidingWindowRateLimiter l({.limit = 3, .window = seconds(1), .bucket_count = 10});
  ASSERT_TRUE(l.tryAcquire(2, at(10)));   // bucket [0, 100)
  ASSERT_TRUE(l.tryAcquire(1, at(450)));  // bucket [400, 500)
  EXPECT_FALSE(l.tryAcquire(at(1000) - nanoseconds(1)));
  EXPECT_TRUE(l.tryAcquire(2, at(1000)));
  EXPECT_FALSE(l.tryAcquire(at(1000)));
  EXPECT_EQ(l.count(at(1400) - nanoseconds(1)), 3U);
  EXPECT_EQ(l.count(at(1400)), 2U);  // [400, 500) left: its start is not > 1400 - 1000
}

TEST(SlidingWindowRateLimiter, FailedAcquireChangesNothing) {
  SlidingWindowRateLimiter l({.limit = 5, .window = seconds(1), .bucket_count = 5});
  ASSERT_TRUE(l.tryAcquire(4, at(0)));
  EXPECT_FALSE(l.tryAcquire(2, at(0)));
  EXPECT_EQ(l.count(at(0)), 4U);
  EXPECT_TRUE(l.tryAcquire(1, at(0)));
}

TEST(SlidingWindowRateLimiter, ZeroAndOversizedRequests) {
  SlidingWindowRateLimiter l({.limit = 5, .window = seconds(1), .bucket_count = 5});
  EXPECT_TRUE(l.tryAcquire(0, at(0)));
  EXPECT_FALSE(l.tryAcquire(6, at(0)));
  EXPECT_FALSE(l.tryAcquire(std::numeric_limits<std::uint64_t>::max(), at(0)));
  EXPECT_TRUE(l.tryAcquire(5, at(0)));
  EXPECT_FALSE(l.tryAcquire(std::numeric_limits<std::uint64_t>::max(), at(0)));
  EXPECT_EQ(l.count(at(0)), 5U);
}

TEST(SlidingWindowRateLimiter, TimeGoingBackwardsFreesNothing) {
  SlidingWindowRateLimiter l({.limit = 2, .window = seconds(1), .bucket_count = 10});
  ASSERT_TRUE(l.tryAcquire(2, at(5000)));
  EXPECT_FALSE(l.tryAcquire(at(0)));
  EXPECT_EQ(l.count(at(0)), 2U);
  EXPECT_TRUE(l.tryAcquire(at(6000)));
}

TEST(SlidingWindowRateLimiter, ValidateAndGeometry) {
  using S = SlidingWindowRateLimiter::Settings;
  EXPECT_EQ(SlidingWindowRateLimiter::validate(S{.limit = 1, .window = seconds(1)}), std::nullopt);
  EXPECT_EQ(SlidingWindowRateLimiter::validate(S{.limit = 0}), "limit must be at least 1");
  EXPECT_EQ(SlidingWindowRateLimiter::validate(
                S{.limit = 1, .window = nanoseconds(10), .bucket_count = 3}),
            "window (10 ns) must be divisible by bucket_count (3)");
  SlidingWindowRateLimiter zero({.limit = 0, .window = seconds(1), .bucket_count = 1});
  EXPECT_TRUE(zero.tryAcquire(0, at(0)));
  EXPECT_FALSE(zero.tryAcquire(1, at(0)));
  const SlidingWindowRateLimiter l({.limit = 7, .window = seconds(6), .bucket_count = 3});
  EXPECT_EQ(l.limit(), 7U);
  EXPECT_EQ(l.window(), seconds(6));
  EXPECT_EQ(l.bucketWidth(), seconds(2));
  EXPECT_EQ(l.bucketCount(), 3U);
}

// Verifies the bucket-level guarantee over random arrivals: admissions in any k consecutive
// buckets total at most limit * ceil(k / bucket_count) (any bucket_count consecutive buckets at
// most limit), which bounds every interval touching k buckets.
TEST(SlidingWindowRateLimiter, PropertyNeverExceedsLimitPerWindowOfBuckets) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    const std::uint64_t limit = 1 + rng() % 20;
    const std::size_t count = 1 + rng() % 10;
    const std::int64_t width_ms = 1 + static_cast<std::int64_t>(rng() % 50);
    SlidingWindowRateLimiter l({.limit = limit,
                                .window = milliseconds(width_ms * static_cast<std::int64_t>(count)),
                                .bucket_count = count});
    std::map<std::int64_t, std::uint64_t> per_bucket;  // bucket index -> admitted
    std::int64_t t_ns = 0;
    for (int i = 0; i < 500; ++i) {
      t_ns += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(width_ms * 1'000'000));
      const std::uint64_t n = 1 + rng() % limit;
      if (l.tryAcquire(n, kT0 + nanoseconds(t_ns))) {
        // Buckets are aligned to the clock's epoch, not to kT0.
        per_bucket[(kT0.time_since_epoch().count() + t_ns) / (width_ms * 1'000'000)] += n;
      }
    }
    if (per_bucket.empty()) {
      continue;
    }
    const std::int64_t last = per_bucket.rbegin()->first;
    for (std::int64_t first = per_bucket.begin()->first; first <= last; ++first) {
      std::uint64_t sum = 0;
      for (std::int64_t k = 1; first + k - 1 <= last; ++k) {
        const auto it = per_bucket.find(first + k - 1);
        sum += it == per_bucket.end() ? 0 : it->second;
        const auto windows = (static_cast<std::uint64_t>(k) + count - 1) / count;
        ASSERT_LE(sum, limit * windows) << "seed " << seed << " buckets " << first << "+" << k;
      }
    }
  }
}

// Verifies the bound is reached: with a request in every bucket and unlimited demand, every
// bucket_count consecutive buckets hold exactly `limit`.
TEST(SlidingWindowRateLimiter, PropertyUnlimitedDemandFillsEveryWindow) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    const std::uint64_t limit = 1 + rng() % 20;
    const std::size_t count = 1 + rng() % 10;
    const std::int64_t width_ns = 1'000'000;
    SlidingWindowRateLimiter l({.limit = limit,
                                .window = nanoseconds(width_ns * static_cast<std::int64_t>(count)),
                                .bucket_count = count});
    std::vector<std::uint64_t> per_bucket(200, 0);  // kT0 is a multiple of the 1 ms width
    for (std::size_t b = 0; b < per_bucket.size(); ++b) {
      const std::int64_t t =
          static_cast<std::int64_t>(b) * width_ns + static_cast<std::int64_t>(rng() % width_ns);
      while (l.tryAcquire(kT0 + nanoseconds(t))) {
        ++per_bucket[b];
      }
    }
    for (std::size_t first = 0; first + count <= per_bucket.size(); ++first) {
      std::uint64_t sum = 0;
      for (std::size_t k = 0; k < count; ++k) {
        sum += per_bucket[first + k];
      }
      ASSERT_EQ(sum, limit) << "seed " << seed << " first " << first;
    }
  }
}

// ---- setLimit ------------------------------------------------------------------------------

// Verifies: a new limit keeps the counts: a higher one admits the difference, a lower one below
// the count admits nothing (remaining 0, not a wrapped-around count) until buckets leave.
TEST(SlidingWindowRateLimiter, SetLimitKeepsTheCounts) {
  SlidingWindowRateLimiter l({.limit = 5, .window = seconds(1), .bucket_count = 10});
  ASSERT_TRUE(l.tryAcquire(3, kT0));
  l.setLimit(10);
  EXPECT_EQ(l.limit(), 10U);
  EXPECT_EQ(l.count(kT0), 3U);
  EXPECT_EQ(l.remaining(kT0), 7U);
  EXPECT_TRUE(l.tryAcquire(7, kT0));
  EXPECT_FALSE(l.tryAcquire(at(100)));
  l.setLimit(4);
  EXPECT_EQ(l.count(at(500)), 10U);
  EXPECT_EQ(l.remaining(at(500)), 0U);
  EXPECT_FALSE(l.tryAcquire(at(500)));
  EXPECT_TRUE(l.tryAcquire(0, at(500)));
  EXPECT_EQ(l.count(at(1000)), 0U);  // kT0's bucket has left the window
  EXPECT_TRUE(l.tryAcquire(4, at(1000)));
  EXPECT_FALSE(l.tryAcquire(at(1000)));
}

// Verifies: requests larger than the new limit are refused; limit 0 admits only n == 0.
TEST(SlidingWindowRateLimiter, SetLimitBoundsTheRequestSize) {
  SlidingWindowRateLimiter l({.limit = 5, .window = seconds(1), .bucket_count = 10});
  l.setLimit(2);
  EXPECT_FALSE(l.tryAcquire(3, kT0));
  EXPECT_TRUE(l.tryAcquire(2, kT0));
  l.setLimit(0);
  EXPECT_FALSE(l.tryAcquire(1, at(5000)));
  EXPECT_TRUE(l.tryAcquire(0, at(5000)));
  EXPECT_EQ(l.remaining(at(5000)), 0U);
}

// Verifies no over-admission under contention: workers drive the clock through many windows
// with unlimited demand; the total admitted is exactly `limit` per bucket_count buckets.
TEST(SlidingWindowRateLimiterStress, NoOverAdmissionUnderContention) {
  constexpr std::uint64_t kLimit = 20;
  constexpr std::int64_t kWidthNs = 10'000;  // 10 us buckets (kT0 is a multiple), 10 per window
  SlidingWindowRateLimiter l(
      {.limit = kLimit, .window = nanoseconds(kWidthNs * 10), .bucket_count = 10});
  ManualClock clock(kT0);
  constexpr int kThreads = 3;
  constexpr int kOps = 20'000;
  std::atomic<bool> go{false};
  std::atomic<std::uint64_t> admitted{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      while (!go.load(std::memory_order_acquire)) {
      }
      std::uint64_t mine = 0;
      for (int k = 0; k < kOps; ++k) {
        if (k % 4 == 0) {
          clock.advance(nanoseconds(500));
        }
        mine += l.tryAcquire(clock.now()) ? 1 : 0;
      }
      admitted.fetch_add(mine, std::memory_order_relaxed);
    });
  }
  go.store(true, std::memory_order_release);
  for (std::thread& th : threads) {
    th.join();
  }
  // The run touched buckets 0..last; windows of 10 buckets starting at bucket 0 each admit at
  // most kLimit (and, with demand in every bucket, exactly kLimit once they are complete).
  const auto last = static_cast<std::uint64_t>((clock.now() - kT0).count() / kWidthNs);
  EXPECT_LE(admitted.load(), kLimit * (last / 10 + 1));
  EXPECT_GE(admitted.load(), kLimit * (last / 10));
  EXPECT_LE(l.count(clock.now()), kLimit);
}

// Threads take single admissions at one instant while the limit flips between 20 and 30: never
// more than 30 are admitted, and never fewer than 20 (a refusal needs the count at the limit).
TEST(SlidingWindowRateLimiterStress, SetLimitRacingAcquires) {
  for (int round = 0; round < 20; ++round) {
    SlidingWindowRateLimiter l({.limit = 20, .window = seconds(1), .bucket_count = 10});
    std::atomic<std::uint64_t> admitted{0};
    std::atomic<int> running{3};
    std::vector<std::thread> threads;
    threads.reserve(3);
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 100; ++i) {
          if (l.tryAcquire(kT0)) {
            admitted.fetch_add(1);
          }
        }
        running.fetch_sub(1);
      });
    }
    for (int k = 0; running.load() > 0; ++k) {
      l.setLimit(k % 2 == 0 ? 30 : 20);
    }
    for (std::thread& th : threads) {
      th.join();
    }
    EXPECT_GE(admitted.load(), 20U);
    EXPECT_LE(admitted.load(), 30U);
    EXPECT_EQ(l.count(kT0), admitted.load());
  }
}

}  // namespace
}  // namespace sluice::resilience
