#include "resilience/rolling_counter.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RollingCounter, StartsAtZero) {
  const RollingCounter c({.window = seconds(1), .bucket_count = 10});
  EXPECT_EQ(c.sum(at(0)), 0);
  EXPECT_EQ(c.ratePerSecond(at(0)), 0.0);
}

TEST(RollingCounter, SumsEventsInsideTheWindow) {
  RollingCounter c({.window = seconds(1), .bucket_count = 10});
  c.increment(at(0));
  c.add(4, at(250));
  c.add(-2, at(900));
  EXPECT_EQ(c.sum(at(900)), 3);
  EXPECT_EQ(c.sum(at(1099)), 2);  // the [0,100) bucket has left the window
  EXPECT_EQ(c.sum(at(1250)), -2);
  EXPECT_EQ(c.sum(at(1900)), 0);
}

TEST(RollingCounter, RateIsSumPerSecondOfWindow) {
  RollingCounter c({.window = seconds(2), .bucket_count = 4});
  c.add(10, at(0));
  EXPECT_DOUBLE_EQ(c.ratePerSecond(at(100)), 5.0);
}

TEST(RollingCounter, EarlierTimeCountsAtNewestTime) {
  RollingCounter c({.window = seconds(1), .bucket_count = 10});
  c.add(1, at(5000));
  c.add(1, at(0));  // backwards: lands in the newest bucket
  EXPECT_EQ(c.sum(at(5000)), 2);
  EXPECT_EQ(c.sum(at(5999)), 2);
  EXPECT_EQ(c.sum(at(6000)), 0);
}

TEST(RollingCounter, SaturatesInsteadOfOverflowing) {
  RollingCounter c({.window = seconds(1), .bucket_count = 2});
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  c.add(max, at(0));
  c.add(max, at(0));
  EXPECT_EQ(c.sum(at(0)), max);
  c.add(max, at(600));  // second bucket
  EXPECT_EQ(c.sum(at(600)), max);
  c.add(std::numeric_limits<std::int64_t>::min(), at(600));
  c.add(std::numeric_limits<std::int64_t>::min(), at(600));
  EXPECT_EQ(c.sum(at(1100)), std::numeric_limits<std::int64_t>::min());
}

TEST(RollingCounter, ResetForgetsEverything) {
  RollingCounter c({.window = seconds(1), .bucket_count = 10});
  c.add(3, at(5000));
  c.reset();
  EXPECT_EQ(c.sum(at(5000)), 0);
  c.add(1, at(0));  // earlier times count normally after a reset
  EXPECT_EQ(c.sum(at(0)), 1);
}

TEST(RollingCounter, ValidateAndGeometry) {
  EXPECT_EQ(RollingCounter::validate({.window = seconds(1), .bucket_count = 10}), std::nullopt);
  EXPECT_EQ(RollingCounter::validate({.window = seconds(1), .bucket_count = 0}),
            "bucket_count must be at least 1");
  const RollingCounter c({.window = seconds(3), .bucket_count = 6});
  EXPECT_EQ(c.window(), seconds(3));
  EXPECT_EQ(c.bucketWidth(), milliseconds(500));
  EXPECT_EQ(c.bucketCount(), 6U);
}

// Verifies no increment is lost while buckets rotate under concurrent writers: every thread
// adds at times that stay inside one window, so the final sum must equal the number of adds.
TEST(RollingCounterStress, NoLostIncrementsWhileBucketsRotate) {
  RollingCounter c({.window = seconds(10), .bucket_count = 100});  // 100 ms buckets
  ManualClock clock(at(0));
  constexpr int kThreads = 4;
  constexpr int kAddsPerThread = 20'000;
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  threads.reserve(kThreads + 1);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      while (!go.load(std::memory_order_acquire)) {
      }
      for (int i = 0; i < kAddsPerThread; ++i) {
        c.increment(clock.now());
        if (i % 64 == 0) {
          (void)c.sum(clock.now());
        }
      }
    });
  }
  // Advances time by up to 8 s in total, so buckets keep rotating but nothing ages out.
  threads.emplace_back([&] {
    while (!go.load(std::memory_order_acquire)) {
    }
    for (int i = 0; i < 8000; ++i) {
      clock.advance(milliseconds(1));
      std::this_thread::yield();
    }
  });
  go.store(true, std::memory_order_release);
  for (std::thread& th : threads) {
    th.join();
  }
  EXPECT_EQ(c.sum(clock.now()), std::int64_t{kThreads} * kAddsPerThread);
}

}  // namespace
}  // namespace sluice::resilience
