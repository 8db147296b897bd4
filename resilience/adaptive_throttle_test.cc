#include "resilience/adaptive_throttle.h"

#include <atomic>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::seconds;

AdaptiveThrottle::Settings tenSeconds(double k = 2.0) {
  return AdaptiveThrottle::Settings{.k = k, .window = seconds(10), .bucket_count = 10};
}

void recordMany(AdaptiveThrottle& throttle, TimePoint now, int accepted, int rejected) {
  for (int i = 0; i < accepted; ++i) {
    throttle.record(now, true);
  }
  for (int i = 0; i < rejected; ++i) {
    throttle.record(now, false);
  }
}

TEST(AdaptiveThrottle, ValidateExplainsBadSettings) {
  EXPECT_EQ(AdaptiveThrottle::validate(AdaptiveThrottle::Settings{}), std::nullopt);
  EXPECT_EQ(AdaptiveThrottle::validate(tenSeconds(0.5)), "k must be finite and >= 1");
  EXPECT_EQ(AdaptiveThrottle::validate(tenSeconds(std::nan(""))), "k must be finite and >= 1");
  auto s = tenSeconds();
  s.bucket_count = 0;
  ASSERT_TRUE(AdaptiveThrottle::validate(s).has_value());
  EXPECT_EQ(AdaptiveThrottle::validate(s)->rfind("window: ", 0), 0U);
}

TEST(AdaptiveThrottle, EmptyWindowNeverRejects) {
  AdaptiveThrottle throttle(tenSeconds());
  EXPECT_EQ(throttle.rejectionProbability(kT0), 0.0);
  EXPECT_TRUE(throttle.tryAcquire(kT0, 0.0));
}

TEST(AdaptiveThrottle, HealthyBackendNeverRejects) {
  AdaptiveThrottle throttle(tenSeconds());
  recordMany(throttle, kT0, 1000, 0);
  EXPECT_EQ(throttle.rejectionProbability(kT0), 0.0);
  EXPECT_TRUE(throttle.tryAcquire(kT0, 0.0));
}

TEST(AdaptiveThrottle, ProbabilityFollowsTheSreFormula) {
  AdaptiveThrottle throttle(tenSeconds(2.0));
  recordMany(throttle, kT0, 10, 20);  // requests 30, accepts 10
  EXPECT_DOUBLE_EQ(throttle.rejectionProbability(kT0), (30.0 - 2.0 * 10.0) / 31.0);
  AdaptiveThrottle dead(tenSeconds(2.0));
  recordMany(dead, kT0, 0, 10);
  EXPECT_DOUBLE_EQ(dead.rejectionProbability(kT0), 10.0 / 11.0);
}

// Verifies the requests = K * accepts boundary: p is 0 there and positive one request later.
TEST(AdaptiveThrottle, ThrottlingStartsOneRequestPastKTimesAccepts) {
  AdaptiveThrottle throttle(tenSeconds(2.0));
  recordMany(throttle, kT0, 10, 9);  // 19 < 20
  EXPECT_EQ(throttle.rejectionProbability(kT0), 0.0);
  throttle.record(kT0, false);  // 20 == 2 * 10
  EXPECT_EQ(throttle.rejectionProbability(kT0), 0.0);
  EXPECT_TRUE(throttle.tryAcquire(kT0, 0.0));
  throttle.record(kT0, false);  // 21
  EXPECT_DOUBLE_EQ(throttle.rejectionProbability(kT0), 1.0 / 22.0);
}

// Verifies the decision boundary: rejected iff u < p.
TEST(AdaptiveThrottle, RejectsExactlyWhenUIsBelowP) {
  AdaptiveThrottle throttle(tenSeconds(2.0));
  recordMany(throttle, kT0, 10, 20);
  const double p = throttle.rejectionProbability(kT0);
  EXPECT_TRUE(throttle.tryAcquire(kT0, p));  // not below: admitted, counts nothing yet
  EXPECT_TRUE(throttle.tryAcquire(kT0, std::nextafter(p, 1.0)));
  EXPECT_EQ(throttle.snapshot(kT0).requests, 30U);
  EXPECT_FALSE(throttle.tryAcquire(kT0, std::nextafter(p, 0.0)));
  EXPECT_EQ(throttle.snapshot(kT0).requests, 31U);  // the local rejection is a request
  EXPECT_EQ(throttle.snapshot(kT0).accepts, 10U);
}

TEST(AdaptiveThrottle, OutOfRangeUIsClamped) {
  AdaptiveThrottle throttle(tenSeconds(2.0));
  recordMany(throttle, kT0, 0, 10);
  EXPECT_FALSE(throttle.tryAcquire(kT0, -3.0));
  EXPECT_FALSE(throttle.tryAcquire(kT0, std::nan("")));
  EXPECT_TRUE(throttle.tryAcquire(kT0, 5.0));  // clamps just below 1, and p < 1 always
}

TEST(AdaptiveThrottle, PermitOutcomesAreCountedAndDroppedPermitsAreNot) {
  AdaptiveThrottle throttle(tenSeconds());
  {
    auto dropped = throttle.tryAcquire(kT0, 0.5);
    EXPECT_TRUE(dropped);
  }
  EXPECT_EQ(throttle.snapshot(kT0).requests, 0U);
  auto ok = throttle.tryAcquire(kT0, 0.5);
  ok.accepted(kT0);
  ok.accepted(kT0);  // second outcome is ignored
  auto overloaded = throttle.tryAcquire(kT0, 0.5);
  overloaded.rejected(kT0);
  const auto s = throttle.snapshot(kT0);
  EXPECT_EQ(s.requests, 2U);
  EXPECT_EQ(s.accepts, 1U);
  EXPECT_FALSE(ok.admitted());
}

TEST(AdaptiveThrottle, RecoversAsTheWindowSlides) {
  AdaptiveThrottle throttle(tenSeconds());
  recordMany(throttle, kT0, 0, 100);
  EXPECT_GT(throttle.rejectionProbability(kT0 + seconds(9)), 0.99);
  EXPECT_EQ(throttle.rejectionProbability(kT0 + seconds(10)), 0.0);
}

TEST(AdaptiveThrottle, UrbgOverloadDrawsU) {
  AdaptiveThrottle throttle(tenSeconds());
  recordMany(throttle, kT0, 0, 1000000);  // p ~ 0.999999
  std::mt19937_64 rng(7);
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) {
    admitted += throttle.tryAcquire(kT0, rng) ? 1 : 0;
  }
  EXPECT_LE(admitted, 2);
}

// Property: over seeded random traffic, each decision is exactly "reject iff u < p" with p from
// an independent model of the window's counts, and the observed rejection rate tracks p.
TEST(AdaptiveThrottle, DecisionsMatchAModelOfTheWindow) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    AdaptiveThrottle throttle(tenSeconds(1.5));
    std::uint64_t requests = 0;
    std::uint64_t accepts = 0;
    const double accept_rate = 0.1 * static_cast<double>(seed);  // backend health per seed
    double expected_rejections = 0;
    int rejections = 0;
    for (int i = 0; i < 5000; ++i) {
      const double u = unit(rng);
      const double p =
          std::max(0.0, (static_cast<double>(requests) - 1.5 * static_cast<double>(accepts)) /
                            (static_cast<double>(requests) + 1.0));
      expected_rejections += p;
      auto permit = throttle.tryAcquire(kT0, u);
      ASSERT_EQ(permit.admitted(), !(u < p)) << "seed " << seed << " step " << i;
      ++requests;
      if (!permit) {
        ++rejections;
        continue;
      }
      if (unit(rng) < accept_rate) {
        permit.accepted(kT0);
        ++accepts;
      } else {
        permit.rejected(kT0);
      }
    }
    EXPECT_NEAR(rejections, expected_rejections, 4 * std::sqrt(expected_rejections) + 5);
  }
}

TEST(AdaptiveThrottleStress, ConcurrentCallersLoseNoCounts) {
  AdaptiveThrottle throttle(tenSeconds());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::atomic<int> local_rejections{0};
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);

  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 1);
      for (int i = 0; i < kPerThread; ++i) {
        auto permit = throttle.tryAcquire(kT0, rng);
        if (!permit) {
          local_rejections.fetch_add(1);
        } else if (i % 3 == 0) {
          permit.accepted(kT0);
          accepted.fetch_add(1);
        } else {
          permit.rejected(kT0);
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  const auto s = throttle.snapshot(kT0);
  EXPECT_EQ(s.requests, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(s.accepts, static_cast<std::uint64_t>(accepted.load()));
  EXPECT_GT(local_rejections.load(), 0);
}

}  // namespace
}  // namespace sluice::resilience
