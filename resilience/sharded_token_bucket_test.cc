#include "resilience/sharded_token_bucket.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/limiter_test_support.h"
#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// Takes single tokens until refused; returns how many.
std::uint64_t drain(ShardedTokenBucket& b, TimePoint now) {
  std::uint64_t n = 0;
  while (b.tryAcquire(1, now)) {
    ++n;
  }
  return n;
}

// ----- shards ----------------------------------------------------------------------------------

TEST(ShardedTokenBucket, ShardCountIsAPowerOfTwoWithinBounds) {
  auto shards = [](ShardedTokenBucket::Settings s, std::size_t requested) {
    return ShardedTokenBucket(s, kT0, requested).shardsInUse();
  };
  const ShardedTokenBucket::Settings roomy{.rate_per_second = 1000, .burst = 1000};
  EXPECT_EQ(shards(roomy, 1), 1U);
  EXPECT_EQ(shards(roomy, 4), 4U);
  EXPECT_EQ(shards(roomy, 6), 4U);  // rounded down
  EXPECT_EQ(shards(roomy, 1000), ShardedTokenBucket::kMaxShards);
  EXPECT_GE(shards(roomy, 0), 1U);  // one per hardware thread
  // Every shard holds at least two tokens.
  EXPECT_EQ(shards({.rate_per_second = 1000, .burst = 5}, 8), 2U);
  EXPECT_EQ(shards({.rate_per_second = 1000, .burst = 3}, 8), 1U);
  EXPECT_EQ(shards({.rate_per_second = 1000, .burst = 0}, 8), 1U);
  // A share of the rate below TokenBucket::kMinRate is not a legal rate: fewer shards.
  EXPECT_EQ(shards({.rate_per_second = 2e-12, .burst = 8}, 8), 2U);
  EXPECT_EQ(shards({.rate_per_second = 1e-12, .burst = 8}, 8), 1U);
  // Rate 0 and +infinity split freely.
  EXPECT_EQ(shards({.rate_per_second = 0, .burst = 16}, 8), 8U);
  EXPECT_EQ(shards({.rate_per_second = kInf, .burst = 16}, 8), 8U);
}

// ----- admission -------------------------------------------------------------------------------

TEST(ShardedTokenBucket, StartsFullAndStealsFromOtherShards) {
  ShardedTokenBucket b({.rate_per_second = 10, .burst = 10}, kT0, 4);
  ASSERT_EQ(b.shardsInUse(), 4U);
  EXPECT_DOUBLE_EQ(b.tokens(kT0), 10.0);
  // One thread takes the whole burst: its own shard's share, then the others'.
  EXPECT_EQ(drain(b, kT0), 10U);
  EXPECT_DOUBLE_EQ(b.tokens(kT0), 0.0);
}

TEST(ShardedTokenBucket, FailedAcquireChangesNothing) {
  ShardedTokenBucket b({.rate_per_second = 4, .burst = 8}, kT0, 4);
  ASSERT_EQ(drain(b, kT0), 8U);
  EXPECT_FALSE(b.tryAcquire(1, at(100)));
  EXPECT_DOUBLE_EQ(b.tokens(at(100)), 0.4);
  EXPECT_FALSE(b.tryAcquire(1, at(100)));
  EXPECT_DOUBLE_EQ(b.tokens(at(100)), 0.4);
  // Each shard refills at rate / 4: every shard has its token back after one second.
  EXPECT_EQ(drain(b, at(1000)), 4U);
}

TEST(ShardedTokenBucket, RequestMustFitInOneShard) {
  ShardedTokenBucket b({.rate_per_second = 0, .burst = 10}, kT0, 2);  // shares 5 + 5
  ASSERT_EQ(b.shardsInUse(), 2U);
  EXPECT_FALSE(b.tryAcquire(6, kT0));  // 10 available, but no shard holds 6
  EXPECT_TRUE(b.tryAcquire(4, kT0));
  EXPECT_TRUE(b.tryAcquire(4, kT0));  // the other shard
  EXPECT_DOUBLE_EQ(b.tokens(kT0), 2.0);
  EXPECT_FALSE(b.tryAcquire(2, kT0));  // 1 + 1 does not add up
  EXPECT_TRUE(b.tryAcquire(0, kT0));
  EXPECT_EQ(drain(b, kT0), 2U);
}

TEST(ShardedTokenBucket, UnevenBurstSplitsTheRateInProportion) {
  // 11 tokens over 4 shards: 3 + 3 + 3 + 2, rates 3/11, 3/11, 3/11 and 2/11 of 11/s.
  ShardedTokenBucket b({.rate_per_second = 11, .burst = 11}, kT0, 4);
  ASSERT_EQ(b.shardsInUse(), 4U);
  ASSERT_EQ(drain(b, kT0), 11U);
  // Each share is shaved by 2^-50 so the total never exceeds 11/s: after 10 s at most 110
  // tokens, and each shard misses at most its last one by a unit.
  std::uint64_t admitted = 0;
  for (int ms = 50; ms <= 10'000; ms += 50) {
    admitted += drain(b, at(ms));
  }
  EXPECT_LE(admitted, 110U);
  EXPECT_GE(admitted, 106U);
}

TEST(ShardedTokenBucket, ZeroRateSpendsBurstOnce) {
  ShardedTokenBucket b({.rate_per_second = 0, .burst = 8}, kT0, 4);
  EXPECT_EQ(drain(b, kT0), 8U);
  EXPECT_EQ(drain(b, at(1'000'000)), 0U);
}

TEST(ShardedTokenBucket, InfiniteRateAllowsEverything) {
  ShardedTokenBucket b({.rate_per_second = kInf, .burst = 1}, kT0, 4);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(b.tryAcquire(1'000'000, kT0));
  }
  EXPECT_EQ(b.tokens(kT0), kInf);
}

TEST(ShardedTokenBucket, TimeGoingBackwardsNeverRefills) {
  ShardedTokenBucket b({.rate_per_second = 4, .burst = 4}, kT0, 2);
  ASSERT_EQ(drain(b, at(1000)), 4U);
  EXPECT_EQ(drain(b, kT0), 0U);
  EXPECT_EQ(drain(b, at(500)), 0U);
}

TEST(ShardedTokenBucket, ExtremeValuesDoNotCrash) {
  ShardedTokenBucket huge({.rate_per_second = 1e13, .burst = TokenBucket::kMaxBurst}, kT0, 64);
  EXPECT_TRUE(huge.tryAcquire(1'000'000, kT0));
  EXPECT_FALSE(huge.tryAcquire(TokenBucket::kMaxBurst, kT0));  // more than one share
  EXPECT_TRUE(huge.tryAcquire(1, TimePoint::max()));
  EXPECT_FALSE(huge.tryAcquire(1, TimePoint::min()));
  ShardedTokenBucket tiny({.rate_per_second = 1e-10, .burst = 2}, kT0, 2);
  EXPECT_EQ(drain(tiny, kT0), 2U);
  EXPECT_EQ(drain(tiny, at(1000)), 0U);
}

// ----- runtime changes -------------------------------------------------------------------------

TEST(ShardedTokenBucket, SetRateKeepsAccruedTokens) {
  ShardedTokenBucket b({.rate_per_second = 4, .burst = 8}, kT0, 4);
  ASSERT_EQ(drain(b, kT0), 8U);
  b.setRate(40, at(1000));  // 4 tokens accrued at the old rate are kept
  EXPECT_DOUBLE_EQ(b.tokens(at(1000)), 4.0);
  EXPECT_DOUBLE_EQ(b.tokens(at(1100)), 8.0);  // + 4 at the new rate
  EXPECT_DOUBLE_EQ(b.settings().rate_per_second, 40.0);
}

TEST(ShardedTokenBucket, SetBurstRedistributesConservatively) {
  ShardedTokenBucket b({.rate_per_second = 1, .burst = 100}, kT0, 8);
  ASSERT_EQ(b.shardsInUse(), 8U);
  b.setBurst(2, kT0);
  EXPECT_EQ(b.shardsInUse(), 1U);
  EXPECT_DOUBLE_EQ(b.tokens(kT0), 2.0);
  EXPECT_EQ(drain(b, kT0), 2U);
  b.setBurst(16, kT0);  // more room, no new tokens
  EXPECT_EQ(b.shardsInUse(), 8U);
  EXPECT_EQ(drain(b, kT0), 0U);
  EXPECT_EQ(drain(b, at(16'000)), 16U);
  EXPECT_EQ(b.settings().burst, 16U);
}

TEST(ShardedTokenBucket, ValidateAndCoerceAsTokenBucket) {
  EXPECT_FALSE(ShardedTokenBucket::validate({.rate_per_second = 10, .burst = 5}).has_value());
  EXPECT_TRUE(ShardedTokenBucket::validate({.rate_per_second = -1, .burst = 5}).has_value());
  EXPECT_TRUE(ShardedTokenBucket::validate({.rate_per_second = 10, .burst = 0}).has_value());
  ShardedTokenBucket b({.rate_per_second = std::nan(""), .burst = 5}, kT0, 2);
  EXPECT_EQ(b.settings().rate_per_second, 0.0);
}

// ----- properties ------------------------------------------------------------------------------

// Verifies the bound holds exactly across shards: random times, random sizes up to one share.
TEST(ShardedTokenBucket, PropertyNeverAdmitsMoreThanRateTimesIntervalPlusBurst) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    const double rate = std::uniform_real_distribution<double>(0.5, 5000)(rng);
    const std::uint64_t burst = 1 + rng() % 40;
    ShardedTokenBucket b({.rate_per_second = rate, .burst = burst}, kT0, 1U << (rng() % 4));
    const std::uint64_t share = (burst + b.shardsInUse() - 1) / b.shardsInUse();
    const auto interval_ns = static_cast<std::int64_t>(1e9 / rate);
    std::vector<Admission> log;
    std::int64_t t = 0;
    for (int i = 0; i < 400; ++i) {
      t += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(interval_ns * 2 + 1));
      const std::uint64_t n = 1 + rng() % share;
      if (b.tryAcquire(n, kT0 + nanoseconds(t))) {
        log.push_back({.t_ns = t, .n = n});
      }
    }
    const std::optional<std::string> over = findOverAdmission(log, rate, burst);
    ASSERT_FALSE(over.has_value()) << "seed " << seed << ": " << *over;
  }
}

// Verifies the bound is reached: a greedy single-token client (stealing from every shard) takes
// every token of every shard. Shards refill separately, so at time t it has admitted the sum of
// the shards' whole tokens, k * floor(burst/k + rate/k * t) for equal shares with a whole-ns
// token interval, which is floor(burst + rate * t) less at most k - 1 fractions, and equal to it
// at every multiple of the shares' interval.
TEST(ShardedTokenBucket, PropertyUnlimitedDemandReachesTheBound) {
  constexpr double kRates[] = {4, 8, 40, 400, 4000, 4e6, 3, 7.5, 1234.5};
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    const double rate = kRates[rng() % std::size(kRates)];
    const std::uint64_t burst = 4 * (1 + rng() % 10) + (rng() % 2);  // sometimes uneven
    ShardedTokenBucket b({.rate_per_second = rate, .burst = burst}, kT0, 4);
    const std::size_t k = b.shardsInUse();
    const auto kd = static_cast<long double>(k);
    const long double share_interval = 1e9L / (static_cast<long double>(rate) / kd);
    const bool exact = burst % k == 0 && std::floor(share_interval) == share_interval;
    const auto interval_ns = static_cast<std::int64_t>(1e9 / rate);
    std::int64_t t = 0;
    std::uint64_t admitted = 0;
    for (int visit = 0; visit < 300; ++visit) {
      if (visit > 0) {
        t += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(interval_ns + 1));
      }
      admitted += drain(b, kT0 + nanoseconds(t));
      const long double accrued = static_cast<long double>(rate) * t / 1e9L;
      const auto bound =
          static_cast<std::uint64_t>(std::floor(static_cast<long double>(burst) + accrued));
      ASSERT_LE(admitted, bound) << "seed " << seed;
      ASSERT_GE(admitted + k, bound) << "seed " << seed << " rate " << rate;
      if (exact) {
        const auto per_shard = static_cast<std::uint64_t>(
            std::floor(static_cast<long double>(burst) / kd + accrued / kd));
        ASSERT_EQ(admitted, k * per_shard) << "seed " << seed << " rate " << rate << " t " << t;
      }
    }
  }
}

// ----- concurrency -----------------------------------------------------------------------------

// Verifies no over-admission and no lost tokens under contention: with the bucket emptied first
// and time advancing, every token that accrued is either admitted or still in some shard.
TEST(ShardedTokenBucketStress, NoOverAdmissionAndNoLostTokens) {
  constexpr double kRate = 4e6;  // 1e6/s per shard: one token per microsecond, exact
  ShardedTokenBucket b({.rate_per_second = kRate, .burst = 4'000'000}, kT0, 4);
  ASSERT_EQ(b.shardsInUse(), 4U);
  ASSERT_EQ(drain(b, kT0), 4'000'000U);
  ManualClock clock(kT0);
  const std::uint64_t admitted = acquireConcurrently(b, clock, 3, 30'000);
  const TimePoint end = clock.now();
  const double accrued = kRate * std::chrono::duration<double>(end - kT0).count();
  EXPECT_LE(static_cast<double>(admitted), accrued);
  EXPECT_GT(admitted, 0U);
  EXPECT_DOUBLE_EQ(static_cast<double>(admitted) + b.tokens(end), accrued);
}

// Verifies reconfigurations racing with acquirers create and lose nothing: re-applying the same
// settings keeps every shard's share, so exactly the burst is admitted.
TEST(ShardedTokenBucketStress, ReconfigureRacingAcquirersConservesTokens) {
  constexpr std::uint64_t kBurst = 200'000;
  ShardedTokenBucket b({.rate_per_second = 0, .burst = kBurst}, kT0, 4);
  const auto [admitted, reconfigs] = drainWhileReconfiguring(
      b, kT0, 3, [&] { b.setSettings({.rate_per_second = 0, .burst = kBurst}, kT0); });
  EXPECT_GT(reconfigs, 0);
  EXPECT_EQ(admitted, kBurst);
  EXPECT_EQ(b.tokens(kT0), 0.0);
}

}  // namespace
}  // namespace sluice::resilience
