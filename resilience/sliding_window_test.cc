#include "resilience/sliding_window.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// A TimePoint `ms` milliseconds after a fixed, bucket-aligned origin.

std::int64_t sum(const SlidingWindow<std::int64_t>& w, TimePoint now) {
  std::int64_t total = 0;
  w.forEach(now, [&](const std::int64_t& v) { total += v; });
  return total;
}

std::vector<std::int64_t> visited(const SlidingWindow<std::int64_t>& w, TimePoint now) {
  std::vector<std::int64_t> out;
  w.forEach(now, [&](const std::int64_t& v) { out.push_back(v); });
  return out;
}

TEST(SlidingWindow, ReportsItsGeometry) {
  const SlidingWindow<int> w(seconds(1), 10);
  EXPECT_EQ(w.window(), seconds(1));
  EXPECT_EQ(w.bucketWidth(), milliseconds(100));
  EXPECT_EQ(w.bucketCount(), 10U);
}

TEST(SlidingWindow, EmptyWindowVisitsNothing) {
  const SlidingWindow<std::int64_t> w(seconds(1), 10);
  EXPECT_TRUE(visited(w, at(0)).empty());
}

TEST(SlidingWindow, SameBucketWithinOneWidth) {
  SlidingWindow<std::int64_t> w(seconds(1), 10);
  w.current(at(0)) += 1;
  w.current(at(99)) += 1;
  EXPECT_EQ(w.current(at(99)), 2);
  w.current(at(100)) += 5;  // next bucket starts exactly at the width boundary
  EXPECT_EQ(w.current(at(100)), 5);
  EXPECT_EQ(sum(w, at(100)), 7);
}

// Verifies the boundary: a bucket starting at s is inside iff s > now - window.
TEST(SlidingWindow, BucketLeavesExactlyOneWindowAfterItsStart) {
  SlidingWindow<std::int64_t> w(seconds(1), 10);
  w.current(at(0)) += 3;  // bucket [0, 100) ms
  EXPECT_EQ(sum(w, at(999)), 3);
  EXPECT_EQ(sum(w, at(1000) - nanoseconds(1)), 3);
  EXPECT_EQ(sum(w, at(1000)), 0);
}

TEST(SlidingWindow, StaleBucketIsResetBeforeReuse) {
  SlidingWindow<std::int64_t> w(seconds(1), 10);
  w.current(at(50)) += 4;
  // at(1050) maps to the same ring slot, one full window later.
  EXPECT_EQ(w.current(at(1050)), 0);
  w.current(at(1050)) += 1;
  EXPECT_EQ(sum(w, at(1050)), 1);
}

TEST(SlidingWindow, SkippedBucketsAreEmptied) {
  SlidingWindow<std::int64_t> w(seconds(1), 4);  // 250 ms buckets
  for (std::int64_t i = 0; i < 4; ++i) {
    w.current(at(250 * i)) += 10;
  }
  EXPECT_EQ(sum(w, at(999)), 40);
  w.current(at(1500)) += 1;  // skips the buckets starting at 1000 and 1250
  // Window ending at 1500 covers buckets starting at 750, 1000, 1250, 1500.
  EXPECT_EQ(visited(w, at(1500)), (std::vector<std::int64_t>{10, 0, 0, 1}));
}

TEST(SlidingWindow, JumpLongerThanWindowClearsEverything) {
  SlidingWindow<std::int64_t> w(seconds(1), 10);
  for (std::int64_t i = 0; i < 10; ++i) {
    w.current(at(100 * i)) += 1;
  }
  w.current(at(60'000)) += 2;
  EXPECT_EQ(visited(w, at(60'000)), (std::vector<std::int64_t>{2}));
}

TEST(SlidingWindow, ForEachVisitsOldestFirst) {
  SlidingWindow<std::int64_t> w(seconds(1), 5);  // 200 ms buckets
  for (std::int64_t i = 0; i < 5; ++i) {
    w.current(at(200 * i)) = i + 1;
  }
  EXPECT_EQ(visited(w, at(800)), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  w.current(at(1000)) = 6;
  EXPECT_EQ(visited(w, at(1000)), (std::vector<std::int64_t>{2, 3, 4, 5, 6}));
}

TEST(SlidingWindow, ForEachAtLaterTimeSkipsAgedBucketsWithoutModifying) {
  SlidingWindow<std::int64_t> w(seconds(1), 10);
  w.current(at(0)) += 1;
  w.current(at(500)) += 2;
  EXPECT_EQ(sum(w, at(1200)), 2);  // [0,100) aged out, [500,600) still inside
  EXPECT_EQ(sum(w, at(500)), 3);   // nothing was reset by the later query
}

TEST(SlidingWindow, EarlierTimeIsTreatedAsNewest) {
  SlidingWindow<std::int64_t> w(seconds(1), 10);
  w.current(at(900)) += 1;
  w.current(at(100)) += 1;  // backwards: lands in the newest bucket, resets nothing
  EXPECT_EQ(w.current(at(900)), 2);
  EXPECT_EQ(sum(w, at(0)), 2);  // forEach with an earlier time also uses the newest time
}

TEST(SlidingWindow, TimeGoingBackwardsNeverRevivesOldBuckets) {
  SlidingWindow<std::int64_t> w(seconds(1), 10);
  w.current(at(0)) += 7;
  w.current(at(5000)) += 1;
  w.current(at(0)) += 1;  // treated as 5000
  EXPECT_EQ(visited(w, at(0)), (std::vector<std::int64_t>{2}));
}

TEST(SlidingWindow, ResetForgetsBucketsAndNewestTime) {
  SlidingWindow<std::int64_t> w(seconds(1), 10);
  w.current(at(5000)) += 3;
  w.reset();
  EXPECT_TRUE(visited(w, at(5000)).empty());
  w.current(at(0)) += 1;  // an earlier time is fine after reset
  EXPECT_EQ(visited(w, at(0)), (std::vector<std::int64_t>{1}));
}

TEST(SlidingWindow, HoldsStructuredBuckets) {
  struct Counts {
    std::int64_t ok = 0;
    std::int64_t failed = 0;
    std::vector<int> samples;
  };
  SlidingWindow<Counts> w(seconds(10), 10);
  w.current(at(0)).ok += 1;
  w.current(at(0)).samples.push_back(5);
  w.current(at(3000)).failed += 2;
  Counts total;
  std::size_t samples = 0;
  w.forEach(at(3000), [&](const Counts& c) {
    total.ok += c.ok;
    total.failed += c.failed;
    samples += c.samples.size();
  });
  EXPECT_EQ(total.ok, 1);
  EXPECT_EQ(total.failed, 2);
  EXPECT_EQ(samples, 1U);
  EXPECT_TRUE(w.current(at(10'000)).samples.empty());  // slot of at(0), one window later
}

TEST(SlidingWindow, ValidateExplainsBadGeometry) {
  EXPECT_EQ(SlidingWindow<int>::validate(seconds(1), 10), std::nullopt);
  EXPECT_EQ(SlidingWindow<int>::validate(seconds(1), 0), "bucket_count must be at least 1");
  EXPECT_EQ(SlidingWindow<int>::validate(Duration::zero(), 1), "window must be positive, got 0 ns");
  EXPECT_EQ(SlidingWindow<int>::validate(nanoseconds(10), 3),
            "window (10 ns) must be divisible by bucket_count (3)");
  EXPECT_TRUE(SlidingWindow<int>::validate(seconds(1), (std::size_t{1} << 20) + 1).has_value());
}

TEST(SlidingWindow, InvalidGeometryIsCoercedNotFatal) {
  const SlidingWindow<int> zero_count(seconds(1), 0);
  EXPECT_EQ(zero_count.bucketCount(), 1U);
  EXPECT_EQ(zero_count.window(), seconds(1));
  const SlidingWindow<int> uneven(nanoseconds(10), 3);
  EXPECT_EQ(uneven.bucketWidth(), nanoseconds(3));
  EXPECT_EQ(uneven.window(), nanoseconds(9));
  const SlidingWindow<int> too_short(nanoseconds(2), 5);
  EXPECT_EQ(too_short.bucketWidth(), nanoseconds(1));
  const SlidingWindow<int> negative(-seconds(1), 2);
  EXPECT_EQ(negative.bucketWidth(), nanoseconds(1));
}

TEST(SlidingWindow, TimesBeforeTheEpochUseFloorBuckets) {
  SlidingWindow<std::int64_t> w(seconds(1), 10);
  const TimePoint minus_50ms = TimePoint{} - milliseconds(50);
  w.current(minus_50ms) += 1;   // bucket [-100, 0) ms
  w.current(TimePoint{}) += 2;  // bucket [0, 100) ms
  EXPECT_EQ(visited(w, TimePoint{}), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(sum(w, TimePoint{} + milliseconds(900)), 2);
}

TEST(SlidingWindow, ExtremeTimesDoNotOverflow) {
  SlidingWindow<std::int64_t> w(nanoseconds(4), 4);  // 1 ns buckets: epochs span all of int64
  w.current(TimePoint::min()) += 1;
  EXPECT_EQ(sum(w, TimePoint::min()), 1);
  w.current(TimePoint::max()) += 2;  // a jump of 2^64 - 1 buckets
  EXPECT_EQ(visited(w, TimePoint::max()), (std::vector<std::int64_t>{2}));
  EXPECT_EQ(sum(w, TimePoint::min()), 2);  // earlier query = newest time
}

// Verifies current()/forEach() against a brute-force list of events over many seeded random
// schedules, including time going backwards and long idle gaps.
TEST(SlidingWindow, PropertyMatchesBruteForceModel) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    const std::size_t buckets = 1 + rng() % 12;
    const std::int64_t width_ns = 1 + static_cast<std::int64_t>(rng() % 50);
    SlidingWindow<std::int64_t> w(nanoseconds(width_ns * static_cast<std::int64_t>(buckets)),
                                  buckets);
    struct Event {
      std::int64_t epoch;
      std::int64_t amount;
    };
    std::vector<Event> events;
    std::int64_t t = static_cast<std::int64_t>(rng() % 1000) - 500;
    std::int64_t newest = std::numeric_limits<std::int64_t>::min();
    auto floor_div = [](std::int64_t a, std::int64_t b) { return a / b - ((a % b < 0) ? 1 : 0); };
    for (int step = 0; step < 300; ++step) {
      switch (rng() % 8) {
        case 0:
          t -= static_cast<std::int64_t>(rng() % 40);  // backwards
          break;
        case 1:
          t += static_cast<std::int64_t>(rng() % 2000);  // long gap
          break;
        default:
          t += static_cast<std::int64_t>(rng() % 10);
      }
      const TimePoint now{nanoseconds(t)};
      if (rng() % 3 != 0) {
        newest = std::max(newest, t);  // the window only learns times through current()
        const auto amount = static_cast<std::int64_t>(rng() % 5 + 1);
        w.current(now) += amount;
        events.push_back({floor_div(newest, width_ns), amount});
      }
      // forEach treats a query earlier than the newest time as the newest time.
      const std::int64_t query_t = t + static_cast<std::int64_t>(rng() % 30);
      const std::int64_t effective_t = std::max(query_t, newest);
      const std::int64_t q = floor_div(effective_t, width_ns);
      std::int64_t expected = 0;
      for (const Event& e : events) {
        if (e.epoch <= q && q - e.epoch < static_cast<std::int64_t>(buckets)) {
          expected += e.amount;
        }
      }
      ASSERT_EQ(sum(w, TimePoint{nanoseconds(query_t)}), expected)
          << "seed " << seed << " step " << step;
      ASSERT_LE(visited(w, TimePoint{nanoseconds(query_t)}).size(), buckets);
    }
  }
}

}  // namespace
}  // namespace sluice::resilience
