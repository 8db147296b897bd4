#include "resilience/adaptive_concurrency_limiter.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/aimd_limit.h"
#include "resilience/clock.h"
#include "resilience/gradient_limit.h"
#include "resilience/vegas_limit.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

// A limit set by hand that records what it is fed, and detects concurrent onSample() calls.
class FakeLimit final : public AdaptiveLimit {
 public:
  struct Sample {
    TimePoint now;
    Duration rtt;
    std::size_t inflight;
    bool dropped;
  };
  explicit FakeLimit(std::size_t limit) : limit_(limit) {}
  [[nodiscard]] std::size_t limit() const noexcept override { return limit_.load(); }
  void onSample(TimePoint now, Duration rtt, std::size_t inflight, bool dropped) noexcept override {
    if (inside_.exchange(true)) {
      overlapped_ = true;
    }
    if (record_) {
      samples_.push_back({now, rtt, inflight, dropped});
    }
    count_.fetch_add(1);
    if (dropped) {
      drops_.fetch_add(1);
    }
    inside_.store(false);
  }
  void set(std::size_t limit) { limit_.store(limit); }
  void stopRecording() { record_ = false; }
  [[nodiscard]] const std::vector<Sample>& samples() const { return samples_; }
  [[nodiscard]] std::int64_t count() const { return count_.load(); }
  [[nodiscard]] std::int64_t drops() const { return drops_.load(); }
  [[nodiscard]] bool overlapped() const { return overlapped_.load(); }

 private:
  std::atomic<std::size_t> limit_;
  std::atomic<bool> inside_{false};
  std::atomic<bool> overlapped_{false};
  std::atomic<std::int64_t> count_{0};
  std::atomic<std::int64_t> drops_{0};
  bool record_ = true;
  std::vector<Sample> samples_;
};

struct Fixture {
  explicit Fixture(std::size_t limit) {
    auto owned = std::make_unique<FakeLimit>(limit);
    fake = owned.get();
    limiter = std::make_unique<AdaptiveConcurrencyLimiter>(std::move(owned));
  }
  FakeLimit* fake = nullptr;
  std::unique_ptr<AdaptiveConcurrencyLimiter> limiter;
  ManualClock clock;
};

TEST(AdaptiveConcurrencyLimiter, AdmitsExactlyLimitRequests) {
  Fixture f(3);
  std::vector<AdaptiveConcurrencyLimiter::Permit> permits;
  for (int i = 0; i < 3; ++i) {
    permits.push_back(f.limiter->tryAcquire(f.clock.now()));
    ASSERT_TRUE(permits.back());
  }
  EXPECT_EQ(f.limiter->inflight(), 3U);
  EXPECT_FALSE(f.limiter->tryAcquire(f.clock.now()));  // inflight == limit: strict <
  EXPECT_EQ(f.limiter->inflight(), 3U);                // a refusal changes nothing
  EXPECT_EQ(f.limiter->limit(), 3U);
}

TEST(AdaptiveConcurrencyLimiter, SuccessReportsRttSinceAdmissionAndInflightAtAdmission) {
  Fixture f(5);
  auto first = f.limiter->tryAcquire(f.clock.now());
  f.clock.advance(milliseconds(5));
  auto second = f.limiter->tryAcquire(f.clock.now());
  EXPECT_EQ(second.inflightAtAdmission(), 2U);
  f.clock.advance(milliseconds(20));
  second.success(f.clock.now());
  EXPECT_FALSE(second);
  ASSERT_EQ(f.fake->samples().size(), 1U);
  const auto& s = f.fake->samples()[0];
  EXPECT_EQ(s.now, f.clock.now());
  EXPECT_EQ(s.rtt, milliseconds(20));
  EXPECT_EQ(s.inflight, 2U);
  EXPECT_FALSE(s.dropped);
  EXPECT_EQ(f.limiter->inflight(), 1U);
}

TEST(AdaptiveConcurrencyLimiter, SuccessWithExplicitRttUsesIt) {
  Fixture f(5);
  auto permit = f.limiter->tryAcquire(f.clock.now());
  f.clock.advance(milliseconds(50));
  permit.success(f.clock.now(), milliseconds(7));
  ASSERT_EQ(f.fake->samples().size(), 1U);
  EXPECT_EQ(f.fake->samples()[0].rtt, milliseconds(7));
}

TEST(AdaptiveConcurrencyLimiter, DroppedReportsADrop) {
  Fixture f(5);
  auto permit = f.limiter->tryAcquire(f.clock.now());
  f.clock.advance(milliseconds(30));
  permit.dropped(f.clock.now());
  ASSERT_EQ(f.fake->samples().size(), 1U);
  EXPECT_TRUE(f.fake->samples()[0].dropped);
  EXPECT_EQ(f.fake->samples()[0].rtt, milliseconds(30));
  EXPECT_EQ(f.limiter->inflight(), 0U);
}

TEST(AdaptiveConcurrencyLimiter, DestroyedWithoutOutcomeIsIgnored) {
  Fixture f(1);
  { auto permit = f.limiter->tryAcquire(f.clock.now()); }
  EXPECT_TRUE(f.fake->samples().empty());
  EXPECT_EQ(f.limiter->inflight(), 0U);
  auto again = f.limiter->tryAcquire(f.clock.now());
  EXPECT_TRUE(again);
  again.ignore();
  EXPECT_TRUE(f.fake->samples().empty());
  EXPECT_EQ(f.limiter->inflight(), 0U);
}

TEST(AdaptiveConcurrencyLimiter, OnlyTheFirstOutcomeCounts) {
  Fixture f(2);
  auto permit = f.limiter->tryAcquire(f.clock.now());
  permit.success(f.clock.now());
  permit.dropped(f.clock.now());
  permit.ignore();
  EXPECT_EQ(f.fake->samples().size(), 1U);
  EXPECT_EQ(f.limiter->inflight(), 0U);
}

TEST(AdaptiveConcurrencyLimiter, MoveTransfersTheSlot) {
  Fixture f(2);
  auto a = f.limiter->tryAcquire(f.clock.now());
  AdaptiveConcurrencyLimiter::Permit b = std::move(a);
  // The moved-from state is specified (empty), so using it is the point of the test.
  // NOLINTBEGIN(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_FALSE(a);
  a.success(f.clock.now());  // a no-op on an empty permit
  // NOLINTEND(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_TRUE(f.fake->samples().empty());
  EXPECT_EQ(f.limiter->inflight(), 1U);
  auto c = f.limiter->tryAcquire(f.clock.now());
  b = std::move(c);  // the permit b held is ignored (slot back, no sample)
  EXPECT_EQ(f.limiter->inflight(), 1U);
  EXPECT_TRUE(f.fake->samples().empty());
  b.success(f.clock.now());
  EXPECT_EQ(f.fake->samples().size(), 1U);
  EXPECT_EQ(f.limiter->inflight(), 0U);
}

TEST(AdaptiveConcurrencyLimiter, NegativeRttIsReportedAsZero) {
  Fixture f(2);
  auto permit = f.limiter->tryAcquire(f.clock.now());
  permit.success(f.clock.now() - milliseconds(3));
  ASSERT_EQ(f.fake->samples().size(), 1U);
  EXPECT_EQ(f.fake->samples()[0].rtt, Duration::zero());
}

TEST(AdaptiveConcurrencyLimiter, ShrinkingTheLimitRevokesNothing) {
  Fixture f(3);
  auto a = f.limiter->tryAcquire(f.clock.now());
  auto b = f.limiter->tryAcquire(f.clock.now());
  auto c = f.limiter->tryAcquire(f.clock.now());
  f.fake->set(1);
  EXPECT_TRUE(a && b && c);
  EXPECT_FALSE(f.limiter->tryAcquire(f.clock.now()));
  a.ignore();
  b.ignore();
  EXPECT_FALSE(f.limiter->tryAcquire(f.clock.now()));  // 1 in flight, limit 1
  c.ignore();
  EXPECT_TRUE(f.limiter->tryAcquire(f.clock.now()));
}

TEST(AdaptiveConcurrencyLimiter, DropsFromAimdReduceAdmissions) {
  AimdLimit::Settings s;
  s.initial_limit = 8;
  s.min_limit = 1;
  s.backoff_ratio = 0.5;
  AdaptiveConcurrencyLimiter limiter(std::make_unique<AimdLimit>(s));
  ManualClock clock;
  auto p = limiter.tryAcquire(clock.now());
  p.dropped(clock.now() + milliseconds(10));
  EXPECT_EQ(limiter.limit(), 4U);
  std::vector<AdaptiveConcurrencyLimiter::Permit> held;
  while (auto q = limiter.tryAcquire(clock.now())) {
    held.push_back(std::move(q));
  }
  EXPECT_EQ(held.size(), 4U);
}

TEST(AdaptiveConcurrencyLimiter, WorksWithEveryAlgorithm) {
  std::vector<std::unique_ptr<AdaptiveLimit>> limits;
  limits.push_back(std::make_unique<AimdLimit>(AimdLimit::Settings{}));
  limits.push_back(std::make_unique<GradientLimit>(GradientLimit::Settings{}));
  limits.push_back(std::make_unique<VegasLimit>(VegasLimit::Settings{}));
  for (auto& limit : limits) {
    AdaptiveConcurrencyLimiter limiter(std::move(limit));
    ManualClock clock;
    const std::size_t initial = limiter.limit();
    // Saturate with fast successes: every algorithm grows from its initial limit.
    for (int round = 0; round < 50; ++round) {
      std::vector<AdaptiveConcurrencyLimiter::Permit> batch;
      while (auto p = limiter.tryAcquire(clock.now())) {
        batch.push_back(std::move(p));
      }
      clock.advance(milliseconds(10));
      for (auto& p : batch) {
        p.success(clock.now());
      }
    }
    EXPECT_GT(limiter.limit(), initial);
    EXPECT_EQ(limiter.inflight(), 0U);
  }
}

// Verifies the admission bound under contention with a fixed limit: never more than `limit`
// permits at once, every outcome reaches the algorithm exactly once, serialized.
TEST(AdaptiveConcurrencyLimiterStress, NoOverAdmissionAndEveryOutcomeCounted) {
  constexpr std::size_t kLimit = 5;
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  Fixture f(kLimit);
  f.fake->stopRecording();
  std::atomic<std::int64_t> holding{0};
  std::atomic<std::int64_t> max_holding{0};
  std::atomic<std::int64_t> outcomes{0};
  std::atomic<std::int64_t> drops{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 3);
      start.arrive_and_wait();
      for (int i = 0; i < kIterations; ++i) {
        auto p = f.limiter->tryAcquire(f.clock.now());
        if (!p) {
          continue;
        }
        const auto now = holding.fetch_add(1) + 1;
        auto seen = max_holding.load();
        while (now > seen && !max_holding.compare_exchange_weak(seen, now)) {
        }
        ASSERT_LE(p.inflightAtAdmission(), kLimit);
        holding.fetch_sub(1);
        switch (rng() % 3) {
          case 0:
            p.success(f.clock.now());
            outcomes.fetch_add(1);
            break;
          case 1:
            p.dropped(f.clock.now());
            outcomes.fetch_add(1);
            drops.fetch_add(1);
            break;
          default:
            break;  // ignored
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_LE(max_holding.load(), static_cast<std::int64_t>(kLimit));
  EXPECT_EQ(f.fake->count(), outcomes.load());
  EXPECT_EQ(f.fake->drops(), drops.load());
  EXPECT_FALSE(f.fake->overlapped());
  EXPECT_EQ(f.limiter->inflight(), 0U);
}

// Verifies that a real algorithm changing the limit concurrently with admissions keeps the
// in-flight count consistent (returns to zero, never exceeds max_limit).
TEST(AdaptiveConcurrencyLimiterStress, ChangingLimitKeepsInflightConsistent) {
  constexpr int kThreads = 4;
  constexpr int kIterations = 10000;
  AimdLimit::Settings s;
  s.initial_limit = 4;
  s.min_limit = 1;
  s.max_limit = 8;
  AdaptiveConcurrencyLimiter limiter(std::make_unique<AimdLimit>(s));
  ManualClock clock;
  std::atomic<std::int64_t> holding{0};
  std::atomic<std::int64_t> max_holding{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 11);
      start.arrive_and_wait();
      for (int i = 0; i < kIterations; ++i) {
        auto p = limiter.tryAcquire(clock.now());
        if (!p) {
          continue;
        }
        const auto now = holding.fetch_add(1) + 1;
        auto seen = max_holding.load();
        while (now > seen && !max_holding.compare_exchange_weak(seen, now)) {
        }
        holding.fetch_sub(1);
        if (rng() % 10 == 0) {
          p.dropped(clock.now());
        } else {
          p.success(clock.now(), milliseconds(1));
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_LE(max_holding.load(), static_cast<std::int64_t>(s.max_limit));
  EXPECT_EQ(limiter.inflight(), 0U);
  EXPECT_GE(limiter.limit(), s.min_limit);
  EXPECT_LE(limiter.limit(), s.max_limit);
}

}  // namespace
}  // namespace sluice::resilience
