#include "gateway/guards/key_table.h"

#include <string>

#include <gtest/gtest.h>

#include "gateway/common/testing_time.h"

namespace sluice::gateway::guards {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = RateDecision::Kind;

config::RateLimit gcra(std::uint64_t requests, config::Millis period, std::uint64_t burst) {
  config::RateLimit rl;
  rl.requests = requests;
  rl.period = period;
  rl.burst = burst;
  return rl;
}

TEST(KeyTable, EachKeyHasItsOwnLimiter) {
  const KeyLimiterFactory f(gcra(1, seconds(60), 2));
  KeyTable t(100, f);
  EXPECT_EQ(t.acquire("a", kT0).kind, Kind::Allow);
  EXPECT_EQ(t.acquire("a", kT0).kind, Kind::Allow);
  EXPECT_EQ(t.acquire("a", kT0).kind, Kind::Reject);
  EXPECT_EQ(t.acquire("b", kT0).kind, Kind::Allow);
  EXPECT_EQ(t.size(), 2U);
  EXPECT_EQ(t.evicted(), 0U);
}

TEST(KeyTable, NeverHoldsMoreThanMaxKeysAndEvictsTheLeastRecentlyUsed) {
  const KeyLimiterFactory f(gcra(1, seconds(3600), 1));
  KeyTable t(3, f);
  for (const char* k : {"a", "b", "c"}) EXPECT_EQ(t.acquire(k, kT0).kind, Kind::Allow);
  EXPECT_EQ(t.acquire("a", kT0).kind, Kind::Reject);  // touch a: b is now the oldest
  EXPECT_EQ(t.acquire("d", kT0).kind, Kind::Allow);   // evicts b
  EXPECT_EQ(t.size(), 3U);
  EXPECT_EQ(t.evicted(), 1U);
  EXPECT_EQ(t.acquire("a", kT0).kind, Kind::Reject);  // still tracked
  EXPECT_EQ(t.acquire("b", kT0).kind, Kind::Allow);   // forgotten: starts over (evicts c)
  EXPECT_EQ(t.evicted(), 2U);
  for (int i = 0; i < 10'000; ++i) (void)t.acquire("k" + std::to_string(i), kT0);
  EXPECT_EQ(t.size(), 3U);
}

TEST(KeyTable, ShardedTablesStayWithinTheirBound) {
  const KeyLimiterFactory f(gcra(1, seconds(3600), 1));
  KeyTable t(2048, f);
  for (int i = 0; i < 100'000; ++i) (void)t.acquire("key-" + std::to_string(i), kT0);
  EXPECT_LE(t.size(), 2048U);
  EXPECT_GE(t.size(), 2048U - 16);  // every shard filled up
}

TEST(KeyTable, IdleKeysAreForgottenFirstAndThatChangesNoDecision) {
  // 10 per second, burst 5: a key is whole again 500 ms after its last use.
  const KeyLimiterFactory f(gcra(10, seconds(1), 5));
  EXPECT_EQ(f.idleReset(), milliseconds(500));
  KeyTable t(1000, f);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(t.acquire("old", kT0).kind, Kind::Allow);
  EXPECT_EQ(t.acquire("old", kT0).kind, Kind::Reject);
  EXPECT_EQ(t.size(), 1U);
  // Still within its reset time: kept even though another key arrives.
  (void)t.acquire("new1", kT0 + milliseconds(400));
  EXPECT_EQ(t.size(), 2U);
  // Past it: a new key's arrival evicts it, not counted as a forced eviction.
  (void)t.acquire("new2", kT0 + milliseconds(800));
  EXPECT_EQ(t.size(), 2U);
  EXPECT_EQ(t.evicted(), 0U);
  // And a fresh limiter decides exactly as the old one would have: a whole burst.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(t.acquire("old", kT0 + seconds(2)).kind, Kind::Allow);
  EXPECT_EQ(t.acquire("old", kT0 + seconds(2)).kind, Kind::Reject);
}

TEST(KeyLimiter, GcraReportsWhatTheHeadersNeed) {
  const KeyLimiterFactory f(gcra(6, seconds(60), 2));  // T = 10 s
  auto l = f.make(kT0);
  auto d = l->acquire(kT0);
  EXPECT_EQ(d.kind, Kind::Allow);
  EXPECT_EQ(d.quota, 2U);
  EXPECT_EQ(d.window, seconds(20));
  EXPECT_EQ(d.remaining, 1U);
  EXPECT_EQ(d.reset, seconds(10));
  (void)l->acquire(kT0);
  d = l->acquire(kT0 + seconds(1));
  EXPECT_EQ(d.kind, Kind::Reject);
  EXPECT_EQ(d.wait, seconds(9));
  EXPECT_EQ(d.remaining, 0U);
  EXPECT_EQ(d.reset, seconds(19));
}

TEST(KeyLimiter, TokenBucketAdmitsTheSameAsGcra) {
  auto tb = gcra(10, seconds(1), 3);
  tb.algorithm = config::RateAlgorithm::TokenBucket;
  const KeyLimiterFactory ft(tb);
  const KeyLimiterFactory fg(gcra(10, seconds(1), 3));
  auto a = ft.make(kT0);
  auto b = fg.make(kT0);
  for (int ms = 0; ms < 3000; ms += 7) {
    const auto now = kT0 + milliseconds(ms);
    EXPECT_EQ(a->acquire(now).kind, b->acquire(now).kind) << ms;
  }
  EXPECT_EQ(ft.idleReset(), milliseconds(300));
}

TEST(KeyLimiter, LeakyBucketDelaysExcessWithinTheBurst) {
  config::RateLimit rl = gcra(10, seconds(1), 3);  // T = 100 ms, burst 3 excess
  rl.algorithm = config::RateAlgorithm::LeakyBucket;
  const KeyLimiterFactory f(rl);
  auto l = f.make(kT0);
  auto d = l->acquire(kT0);
  EXPECT_EQ(d.kind, Kind::Allow);
  EXPECT_EQ(d.quota, 4U);
  for (int i = 1; i <= 3; ++i) {
    d = l->acquire(kT0);
    EXPECT_EQ(d.kind, Kind::Delay);
    EXPECT_EQ(d.wait, milliseconds(100 * i));
  }
  d = l->acquire(kT0);
  EXPECT_EQ(d.kind, Kind::Reject);
  EXPECT_EQ(d.remaining, 0U);
  EXPECT_GT(d.wait, Duration::zero());

  rl.nodelay = true;
  const KeyLimiterFactory fn(rl);
  auto n = fn.make(kT0);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(n->acquire(kT0).kind, Kind::Allow);
  EXPECT_EQ(n->acquire(kT0).kind, Kind::Reject);
}

TEST(KeyLimiter, SlidingWindowCountsRequestsInTheWindow) {
  config::RateLimit rl = gcra(3, seconds(1), 1);
  rl.algorithm = config::RateAlgorithm::SlidingWindow;
  const KeyLimiterFactory f(rl);
  auto l = f.make(kT0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(l->acquire(kT0).kind, Kind::Allow);
  const auto d = l->acquire(kT0);
  EXPECT_EQ(d.kind, Kind::Reject);
  EXPECT_EQ(d.quota, 3U);
  EXPECT_EQ(d.window, seconds(1));
  EXPECT_EQ(d.wait, seconds(1));  // a whole window: never too early
  EXPECT_EQ(l->acquire(kT0 + milliseconds(1100)).kind, Kind::Allow);
}

}  // namespace
}  // namespace sluice::gateway::guards
