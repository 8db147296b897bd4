#include "resilience/gcra.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
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

// 10 per second (T = 100 ms), 5 at once.
Gcra tenPerSecondBurstFive() { return Gcra({.limit = 10, .period = seconds(1), .burst = 5}); }

TEST(Gcra, AllowsTheBurstAtOnceThenOnePerInterval) {
  Gcra g = tenPerSecondBurstFive();
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(g.tryAcquire(kT0).allowed) << i;
  }
  EXPECT_FALSE(g.tryAcquire(kT0).allowed);
  EXPECT_FALSE(g.tryAcquire(at(100) - nanoseconds(1)).allowed);
  EXPECT_TRUE(g.tryAcquire(at(100)).allowed);
  EXPECT_FALSE(g.tryAcquire(at(100)).allowed);
}

TEST(Gcra, ReportsHeaderValuesExactly) {
  Gcra g = tenPerSecondBurstFive();
  Gcra::Decision d = g.tryAcquire(kT0);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.limit, 5U);
  EXPECT_EQ(d.remaining, 4U);
  EXPECT_EQ(d.reset_after, milliseconds(100));
  EXPECT_EQ(d.retry_after, Duration::zero());
  for (int i = 0; i < 4; ++i) {
    d = g.tryAcquire(kT0);
  }
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0U);
  EXPECT_EQ(d.reset_after, milliseconds(500));
  d = g.tryAcquire(at(30));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0U);
  EXPECT_EQ(d.retry_after, milliseconds(70));
  EXPECT_EQ(d.reset_after, milliseconds(470));
  d = g.peek(at(250));
  EXPECT_EQ(d.remaining, 2U);
  EXPECT_EQ(d.reset_after, milliseconds(250));
  EXPECT_EQ(g.window(), milliseconds(500));
}

TEST(Gcra, DeniedRequestChangesNothing) {
  Gcra g = tenPerSecondBurstFive();
  ASSERT_TRUE(g.tryAcquire(3, kT0).allowed);
  const std::int64_t before = g.peek(kT0).new_state;
  EXPECT_FALSE(g.tryAcquire(3, kT0).allowed);
  EXPECT_EQ(g.peek(kT0).new_state, before);
  EXPECT_TRUE(g.tryAcquire(2, kT0).allowed);
}

TEST(Gcra, CostAboveBurstIsNeverAllowed) {
  Gcra g = tenPerSecondBurstFive();
  const Gcra::Decision d = g.tryAcquire(6, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, Duration::max());
  EXPECT_EQ(d.remaining, 5U);
  EXPECT_EQ(g.peek(kT0).remaining, 5U);
}

TEST(Gcra, PeekAndCostZeroConsumeNothing) {
  Gcra g = tenPerSecondBurstFive();
  EXPECT_EQ(g.peek(kT0).remaining, 5U);
  EXPECT_TRUE(g.tryAcquire(0, kT0).allowed);
  EXPECT_EQ(g.peek(kT0).remaining, 5U);
  EXPECT_EQ(g.peek(kT0).reset_after, Duration::zero());
  EXPECT_EQ(g.peek(kT0).new_state, Gcra::kEmptyState);
}

TEST(Gcra, TimeGoingBackwardsNeverFreesRoom) {
  Gcra g = tenPerSecondBurstFive();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(g.tryAcquire(at(1000)).allowed);
  }
  EXPECT_FALSE(g.tryAcquire(at(500)).allowed);
  EXPECT_EQ(g.peek(at(500)).remaining, 0U);
  EXPECT_TRUE(g.tryAcquire(at(1100)).allowed);
}

TEST(Gcra, PureFunctionMatchesTheClass) {
  const Gcra::Params p = Gcra::paramsFor({.limit = 10, .period = seconds(1), .burst = 5});
  Gcra g({.limit = 10, .period = seconds(1), .burst = 5});
  std::int64_t state = Gcra::kEmptyState;
  std::mt19937_64 rng(7);
  std::int64_t t = kT0.time_since_epoch().count();
  for (int i = 0; i < 1000; ++i) {
    t += static_cast<std::int64_t>(rng() % 80'000'000);
    const std::uint64_t cost = rng() % 4;
    const Gcra::Decision pure = Gcra::decide(state, t, cost, p);
    const Gcra::Decision cls = g.tryAcquire(cost, TimePoint{nanoseconds(t)});
    ASSERT_EQ(pure.allowed, cls.allowed);
    ASSERT_EQ(pure.remaining, cls.remaining);
    ASSERT_EQ(pure.reset_after, cls.reset_after);
    ASSERT_EQ(pure.retry_after, cls.retry_after);
    ASSERT_EQ(pure.new_state, cls.new_state);
    state = pure.new_state;
  }
}

TEST(Gcra, ParamsRoundTheIntervalUp) {
  const Gcra::Params p = Gcra::paramsFor({.limit = 3, .period = seconds(1), .burst = 2});
  EXPECT_EQ(p.emission_interval_ns, 333'333'334);
  EXPECT_EQ(p.burst_offset_ns, 666'666'668);
  const Gcra::Params q = Gcra::paramsFor({.limit = 100, .period = std::chrono::minutes(1)});
  EXPECT_EQ(q.emission_interval_ns, 600'000'000);
}

TEST(Gcra, ValidateAndCoerce) {
  EXPECT_EQ(Gcra::validate({.limit = 10, .period = seconds(1), .burst = 5}), std::nullopt);
  EXPECT_EQ(Gcra::validate({.limit = 0}), "limit must be at least 1");
  EXPECT_EQ(Gcra::validate({.limit = 1, .period = Duration::zero()}),
            "period must be positive, got 0 ns");
  EXPECT_EQ(Gcra::validate({.limit = 1, .period = seconds(1), .burst = 0}),
            "burst must be at least 1");
  EXPECT_EQ(Gcra::validate({.limit = 2'000'000'000, .period = seconds(1)}),
            "limit/period must be at most 1e9 per second (2000000000 per 1000000000 ns)");
  const Gcra g({.limit = 0, .period = -seconds(1), .burst = 0});
  EXPECT_EQ(g.settings().limit, 1U);
  EXPECT_EQ(g.settings().period, nanoseconds(1));
  EXPECT_EQ(g.settings().burst, 1U);
  EXPECT_EQ(g.params().emission_interval_ns, 1);
}

TEST(Gcra, ExtremeInputsSaturate) {
  Gcra slow(
      {.limit = 1, .period = Duration::max(), .burst = std::numeric_limits<std::uint64_t>::max()});
  EXPECT_EQ(slow.params().emission_interval_ns, std::int64_t{1} << 62);
  EXPECT_EQ(slow.params().burst_offset_ns, std::int64_t{1} << 62);
  EXPECT_TRUE(slow.tryAcquire(kT0).allowed);
  EXPECT_FALSE(slow.tryAcquire(kT0).allowed);
  EXPECT_TRUE(slow.tryAcquire(TimePoint::max()).allowed);
  EXPECT_FALSE(slow.tryAcquire(TimePoint::min()).allowed);
  Gcra fast({.limit = std::numeric_limits<std::uint64_t>::max(), .period = seconds(1)});
  EXPECT_EQ(fast.params().emission_interval_ns, 1);
  EXPECT_TRUE(fast.tryAcquire(kT0).allowed);
  EXPECT_FALSE(fast.tryAcquire(kT0).allowed);
  EXPECT_FALSE(fast.tryAcquire(std::numeric_limits<std::uint64_t>::max(), kT0).allowed);
}

// ---- rescaleState ----------------------------------------------------------------------------

// Verifies: the requests left are kept across a rate change, then refill at the new rate.
TEST(Gcra, RescaleKeepsTheRequestsLeftUnderANewRate) {
  const Gcra::Params slow = Gcra::paramsFor({.limit = 10, .period = seconds(1), .burst = 5});
  const Gcra::Params fast = Gcra::paramsFor({.limit = 100, .period = seconds(1), .burst = 5});
  const std::int64_t t0 = kT0.time_since_epoch().count();
  std::int64_t state = Gcra::kEmptyState;
  for (int i = 0; i < 3; ++i) {
    const auto d = Gcra::decide(state, t0, 1, slow);
    ASSERT_TRUE(d.allowed);
    state = d.new_state;
  }
  ASSERT_EQ(Gcra::decide(state, t0, 0, slow).remaining, 2U);
  const std::int64_t faster = Gcra::rescaleState(state, t0, slow, fast);
  EXPECT_EQ(Gcra::decide(faster, t0, 0, fast).remaining, 2U);
  EXPECT_EQ(Gcra::decide(faster, t0, 0, fast).reset_after, milliseconds(30));
  EXPECT_EQ(Gcra::decide(faster, at(10).time_since_epoch().count(), 0, fast).remaining, 3U);
  // And back: still 2 left (exact intervals convert exactly).
  EXPECT_EQ(Gcra::rescaleState(faster, t0, fast, slow), state);
}

// Verifies: what is left is capped at the new burst, and a larger burst adds nothing.
TEST(Gcra, RescaleCapsAtTheNewBurstAndAddsNothing) {
  const Gcra::Params ten = Gcra::paramsFor({.limit = 10, .period = seconds(1), .burst = 10});
  const Gcra::Params three = Gcra::paramsFor({.limit = 10, .period = seconds(1), .burst = 3});
  const std::int64_t t0 = kT0.time_since_epoch().count();
  const std::int64_t used_two = Gcra::decide(Gcra::kEmptyState, t0, 2, ten).new_state;
  ASSERT_EQ(Gcra::decide(used_two, t0, 0, ten).remaining, 8U);
  const std::int64_t capped = Gcra::rescaleState(used_two, t0, ten, three);
  EXPECT_EQ(capped, t0);  // full, and no earlier: time going back finds no extra room
  EXPECT_EQ(Gcra::decide(capped, t0, 0, three).remaining, 3U);
  EXPECT_FALSE(Gcra::decide(capped, t0, 4, three).allowed);

  const std::int64_t used_one = Gcra::decide(Gcra::kEmptyState, t0, 1, three).new_state;
  const std::int64_t grown = Gcra::rescaleState(used_one, t0, three, ten);
  EXPECT_EQ(Gcra::decide(grown, t0, 0, ten).remaining, 2U);
  EXPECT_EQ(Gcra::decide(grown, at(800).time_since_epoch().count(), 0, ten).remaining, 10U);
}

// Verifies: states without debt are returned as they are; extreme parameters saturate.
TEST(Gcra, RescaleLeavesFullStatesAndSaturates) {
  const Gcra::Params a = Gcra::paramsFor({.limit = 10, .period = seconds(1), .burst = 5});
  const Gcra::Params huge = Gcra::paramsFor(
      {.limit = 1, .period = Duration::max(), .burst = std::numeric_limits<std::uint64_t>::max()});
  const std::int64_t t0 = kT0.time_since_epoch().count();
  EXPECT_EQ(Gcra::rescaleState(Gcra::kEmptyState, t0, a, huge), Gcra::kEmptyState);
  EXPECT_EQ(Gcra::rescaleState(t0 - 5, t0, a, huge), t0 - 5);
  EXPECT_EQ(Gcra::rescaleState(t0, t0, a, huge), t0);
  const std::int64_t spent = Gcra::decide(Gcra::kEmptyState, t0, 1, huge).new_state;
  const std::int64_t to_a = Gcra::rescaleState(spent, t0, huge, a);
  EXPECT_EQ(Gcra::decide(to_a, t0, 0, a).remaining, 0U);  // 2^62 ns per request: none left
  const std::int64_t back = Gcra::rescaleState(to_a, t0, a, huge);
  EXPECT_LE(back, t0 + huge.burst_offset_ns);
  EXPECT_FALSE(Gcra::decide(back, t0, 1, huge).allowed);
  // Time gone backwards past the room: no room, never negative.
  EXPECT_EQ(Gcra::rescaleState(t0 + 10'000'000'000, t0, a, a), t0 + a.burst_offset_ns);
}

// Verifies over random arrivals and costs: admitted cost in any window of length L is at most
// L / T + burst.
TEST(Gcra, PropertyNeverAdmitsMoreThanRateTimesIntervalPlusBurst) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    const std::uint64_t limit = 1 + rng() % 1000;
    const std::uint64_t burst = 1 + rng() % 10;
    Gcra g({.limit = limit, .period = seconds(1), .burst = burst});
    const std::int64_t t_ns = g.params().emission_interval_ns;
    struct Admission {
      std::int64_t t;
      std::uint64_t cost;
    };
    std::vector<Admission> log;
    std::int64_t t = 0;
    for (int i = 0; i < 400; ++i) {
      if (rng() % 3 != 0) {
        t += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(3 * t_ns));
      }
      const std::uint64_t cost = 1 + rng() % burst;
      if (g.tryAcquire(cost, kT0 + nanoseconds(t)).allowed) {
        log.push_back({t, cost});
      }
    }
    for (std::size_t i = 0; i < log.size(); ++i) {
      std::uint64_t sum = 0;
      for (std::size_t j = i; j < log.size(); ++j) {
        sum += log[j].cost;
        // Integer form of sum <= (t_j - t_i) / T + burst.
        ASSERT_LE(static_cast<std::int64_t>(sum - burst) * t_ns, log[j].t - log[i].t)
            << "seed " << seed;
      }
    }
  }
}

// Verifies the bound is reached: with demand whenever room frees up, exactly
// floor(t / T) + burst requests are admitted by time t.
TEST(Gcra, PropertyUnlimitedDemandReachesTheBound) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    const std::uint64_t burst = 1 + rng() % 10;
    Gcra g({.limit = 1 + rng() % 1000, .period = seconds(1), .burst = burst});
    const std::int64_t t_ns = g.params().emission_interval_ns;
    std::int64_t t = 0;
    std::uint64_t admitted = 0;
    for (int visit = 0; visit < 200; ++visit) {
      if (visit > 0) {  // gaps of at most (burst - 1) * T, or exactly T for burst 1
        t += burst == 1 ? t_ns
                        : static_cast<std::int64_t>(
                              rng() % ((burst - 1) * static_cast<std::uint64_t>(t_ns) + 1));
      }
      while (g.tryAcquire(kT0 + nanoseconds(t)).allowed) {
        ++admitted;
      }
      ASSERT_EQ(admitted, static_cast<std::uint64_t>(t / t_ns) + burst) << "seed " << seed;
    }
  }
}

// Verifies no over-admission and no lost capacity under contention (workers drive the clock;
// a final drain at the end brings the total to exactly floor(elapsed / T) + burst).
TEST(GcraStress, NoOverAdmissionUnderContention) {
  constexpr std::uint64_t kBurst = 50;
  Gcra g({.limit = 1'000'000, .period = seconds(1), .burst = kBurst});  // T = 1 us
  ManualClock clock(kT0);
  std::uint64_t total = 0;
  while (g.tryAcquire(kT0).allowed) {
    ++total;
  }
  ASSERT_EQ(total, kBurst);
  constexpr int kThreads = 3;
  constexpr int kOps = 30'000;
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
        mine += g.tryAcquire(clock.now()).allowed ? 1 : 0;
      }
      admitted.fetch_add(mine, std::memory_order_relaxed);
    });
  }
  go.store(true, std::memory_order_release);
  for (std::thread& th : threads) {
    th.join();
  }
  total += admitted.load();
  const TimePoint end = clock.now();
  const auto bound =
      static_cast<std::uint64_t>((end - kT0) / std::chrono::microseconds(1)) + kBurst;
  EXPECT_LE(total, bound);
  while (g.tryAcquire(end).allowed) {
    ++total;
  }
  EXPECT_EQ(total, bound);
}

}  // namespace
}  // namespace sluice::resilience
