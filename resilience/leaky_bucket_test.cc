#include "resilience/leaky_bucket.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
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
using Decision = LeakyBucket::Decision;

testing::AssertionResult is(const LeakyBucket::Result& r, Decision d, Duration delay) {
  if (r.decision == d && r.delay == delay) {
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure()
         << "decision " << static_cast<int>(r.decision) << " delay " << r.delay.count() << " ns";
}

TEST(LeakyBucket, FirstRequestIsAllowed) {
  LeakyBucket b({.rate_per_second = 1, .burst = 0});
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Allow, Duration::zero()));
}

// Verifies the boundary: with burst 0 the next request is accepted exactly T later, not before.
TEST(LeakyBucket, BurstZeroAcceptsOnePerInterval) {
  LeakyBucket b({.rate_per_second = 10, .burst = 0});
  ASSERT_EQ(b.tryAcquire(kT0).decision, Decision::Allow);
  EXPECT_TRUE(is(b.tryAcquire(at(100) - nanoseconds(1)), Decision::Reject, nanoseconds(1)));
  EXPECT_TRUE(is(b.tryAcquire(at(100)), Decision::Allow, Duration::zero()));
  EXPECT_TRUE(is(b.tryAcquire(at(150)), Decision::Reject, milliseconds(50)));
}

// Verifies nginx's default: excess within the burst is delayed to the rate, beyond rejected.
TEST(LeakyBucket, DefaultDelaysExcessToTheRate) {
  LeakyBucket b({.rate_per_second = 10, .burst = 5});
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Allow, Duration::zero()));
  for (int k = 1; k <= 5; ++k) {
    EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Delay, milliseconds(100) * k)) << k;
  }
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Reject, milliseconds(100)));
  EXPECT_TRUE(is(b.tryAcquire(at(100)), Decision::Delay, milliseconds(500)));
}

TEST(LeakyBucket, NodelayServesTheBurstAtOnce) {
  LeakyBucket b({.rate_per_second = 10, .burst = 5, .nodelay = true});
  for (int k = 0; k <= 5; ++k) {
    EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Allow, Duration::zero())) << k;
  }
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Reject, milliseconds(100)));
  EXPECT_TRUE(is(b.tryAcquire(at(100)), Decision::Allow, Duration::zero()));
}

// Verifies nginx delay=N: excess up to N is served at once, beyond it delayed by (e - N) * T.
TEST(LeakyBucket, DelayThresholdServesFirstExcessAtOnce) {
  LeakyBucket b({.rate_per_second = 10, .burst = 4, .delay = 2});
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Allow, Duration::zero()));   // excess 0
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Allow, Duration::zero()));   // excess 1
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Allow, Duration::zero()));   // excess 2
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Delay, milliseconds(100)));  // excess 3
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Delay, milliseconds(200)));  // excess 4
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Reject, milliseconds(100)));
}

TEST(LeakyBucket, DelayAboveBurstActsLikeNodelay) {
  LeakyBucket b({.rate_per_second = 10, .burst = 3, .delay = 10});
  for (int k = 0; k <= 3; ++k) {
    EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Allow, Duration::zero())) << k;
  }
  EXPECT_EQ(b.tryAcquire(kT0).decision, Decision::Reject);
}

TEST(LeakyBucket, RejectChangesNothing) {
  LeakyBucket b({.rate_per_second = 10, .burst = 1});
  ASSERT_EQ(b.tryAcquire(kT0).decision, Decision::Allow);
  ASSERT_EQ(b.tryAcquire(kT0).decision, Decision::Delay);
  EXPECT_DOUBLE_EQ(b.excess(kT0), 2.0);
  const LeakyBucket::Result r = b.tryAcquire(at(50));
  ASSERT_TRUE(is(r, Decision::Reject, milliseconds(50)));
  EXPECT_DOUBLE_EQ(b.excess(at(50)), 1.5);
  // The retry-after hint is exact: rejected 1 ns before, accepted at it.
  EXPECT_EQ(b.tryAcquire(at(100) - nanoseconds(1)).decision, Decision::Reject);
  EXPECT_EQ(b.tryAcquire(at(100)).decision, Decision::Delay);
}

TEST(LeakyBucket, ExcessDrainsAtTheRate) {
  LeakyBucket b({.rate_per_second = 4, .burst = 10, .nodelay = true});
  for (int k = 0; k < 5; ++k) {
    ASSERT_EQ(b.tryAcquire(kT0).decision, Decision::Allow);
  }
  EXPECT_DOUBLE_EQ(b.excess(kT0), 5.0);
  EXPECT_DOUBLE_EQ(b.excess(at(500)), 3.0);
  EXPECT_DOUBLE_EQ(b.excess(at(1250)), 0.0);
  EXPECT_DOUBLE_EQ(b.excess(at(60'000)), 0.0);  // never negative: idle credit does not pile up
}

TEST(LeakyBucket, TimeGoingBackwardsNeverDrains) {
  LeakyBucket b({.rate_per_second = 10, .burst = 1, .nodelay = true});
  ASSERT_EQ(b.tryAcquire(at(1000)).decision, Decision::Allow);
  ASSERT_EQ(b.tryAcquire(at(1000)).decision, Decision::Allow);
  EXPECT_EQ(b.tryAcquire(at(500)).decision, Decision::Reject);
  EXPECT_GE(b.excess(at(500)), b.excess(at(1000)));
  EXPECT_EQ(b.tryAcquire(at(1100)).decision, Decision::Allow);
}

TEST(LeakyBucket, ExtremeInputsSaturate) {
  LeakyBucket slow({.rate_per_second = LeakyBucket::kMinRate,
                    .burst = std::numeric_limits<std::uint64_t>::max()});
  // T = 1e18 ns; excess saturates at 2^62 ns (~146 years), i.e. 4 requests: 5 are accepted.
  int accepted = 0;
  while (slow.tryAcquire(kT0).decision != Decision::Reject && accepted < 100) {
    ++accepted;
  }
  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(slow.tryAcquire(TimePoint::max()).decision, Decision::Allow);
  EXPECT_NE(slow.tryAcquire(TimePoint::min()).decision, Decision::Allow);
  LeakyBucket fast({.rate_per_second = 1e12, .burst = 0});  // clamped to 1e9/s
  EXPECT_EQ(fast.settings().rate_per_second, LeakyBucket::kMaxRate);
  EXPECT_EQ(fast.tryAcquire(kT0).decision, Decision::Allow);
  EXPECT_EQ(fast.tryAcquire(kT0).decision, Decision::Reject);
  EXPECT_EQ(fast.tryAcquire(kT0 + nanoseconds(1)).decision, Decision::Allow);
}

TEST(LeakyBucket, ValidateAndCoerce) {
  using S = LeakyBucket::Settings;
  EXPECT_EQ(LeakyBucket::validate(S{.rate_per_second = 10, .burst = 5, .delay = 2}), std::nullopt);
  EXPECT_EQ(LeakyBucket::validate(S{.rate_per_second = std::nan("")}), "rate_per_second is NaN");
  EXPECT_EQ(LeakyBucket::validate(S{.rate_per_second = 0}),
            "rate_per_second must be in [1e-9, 1e9], got 0.000000");
  EXPECT_EQ(LeakyBucket::validate(S{.rate_per_second = 2e9}),
            "rate_per_second must be in [1e-9, 1e9], got 2000000000.000000");
  EXPECT_EQ(LeakyBucket::validate(S{.rate_per_second = 1, .burst = 5, .delay = 2, .nodelay = true}),
            "nodelay and delay (2) are mutually exclusive");
  const LeakyBucket b({.rate_per_second = -1, .burst = 5, .delay = 2, .nodelay = true});
  EXPECT_EQ(b.settings().rate_per_second, LeakyBucket::kMinRate);
  EXPECT_EQ(b.settings().delay, 0U);
  EXPECT_TRUE(b.settings().nodelay);
}

// nginx's arithmetic, re-derived for the test (not nginx code): milliseconds, excess in
// 1/1000 requests, rate in requests per 1000 s, integer division.
struct NginxModel {
  std::int64_t rate_milli = 1000;  // r/s * 1000
  std::int64_t burst_milli = 0;    // burst * 1000
  std::int64_t delay_milli = 0;    // delay * 1000 (huge for nodelay)
  bool seen = false;
  std::int64_t excess = 0;
  std::int64_t last_ms = 0;

  // Returns -1 for reject, else the delay in ms.
  std::int64_t request(std::int64_t now_ms) {
    std::int64_t e = 0;
    if (seen) {
      e = std::max<std::int64_t>(0, excess - rate_milli * (now_ms - last_ms) / 1000 + 1000);
      if (e > burst_milli) {
        return -1;
      }
    }
    seen = true;
    excess = e;
    last_ms = now_ms;
    return e <= delay_milli ? 0 : (e - delay_milli) * 1000 / rate_milli;
  }
};

// Verifies decisions and delays against nginx's integer arithmetic at millisecond arrivals
// (where it is exact for whole r/s rates), over many seeded random schedules.
TEST(LeakyBucket, PropertyMatchesNginxArithmetic) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    constexpr std::int64_t kRates[] = {1, 2, 4, 5, 8, 10, 20, 25, 50, 100, 1000};
    const std::int64_t rate = kRates[rng() % std::size(kRates)];
    const std::uint64_t burst = rng() % 8;
    const bool nodelay = rng() % 3 == 0;
    const std::uint64_t delay = nodelay ? 0 : rng() % 5;
    LeakyBucket b({.rate_per_second = static_cast<double>(rate),
                   .burst = burst,
                   .delay = delay,
                   .nodelay = nodelay});
    NginxModel model{
        .rate_milli = rate * 1000,
        .burst_milli = static_cast<std::int64_t>(burst) * 1000,
        .delay_milli = nodelay ? std::int64_t{1} << 50 : static_cast<std::int64_t>(delay) * 1000};
    std::int64_t ms = 0;
    for (int i = 0; i < 300; ++i) {
      ms += static_cast<std::int64_t>(rng() % (2000 / rate + 2));
      const std::int64_t expected = model.request(ms);
      const LeakyBucket::Result r = b.tryAcquire(at(ms));
      if (expected < 0) {
        ASSERT_EQ(r.decision, Decision::Reject) << "seed " << seed << " i " << i;
      } else if (expected == 0) {
        ASSERT_EQ(r.decision, Decision::Allow) << "seed " << seed << " i " << i;
      } else {
        ASSERT_EQ(r.decision, Decision::Delay) << "seed " << seed << " i " << i;
        // nginx truncates the delay to whole milliseconds.
        ASSERT_EQ(std::chrono::floor<milliseconds>(r.delay).count(), expected);
      }
    }
  }
}

// Verifies over random arrivals: accepted requests in any window of length L number at most
// rate*L + burst + 1, and (default delay mode) their service times are at least T apart.
TEST(LeakyBucket, PropertyNeverAcceptsMoreThanRateTimesIntervalPlusBurst) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    const double rate = rng() % 2 == 0 ? static_cast<double>(1 + rng() % 1000)
                                       : std::uniform_real_distribution<double>(0.5, 5000)(rng);
    const std::uint64_t burst = rng() % 10;
    const bool nodelay = rng() % 2 == 0;
    LeakyBucket b({.rate_per_second = rate, .burst = burst, .nodelay = nodelay});
    const double interval_ns = 1e9 / rate;
    std::vector<std::int64_t> accepted;  // arrival times
    std::vector<std::int64_t> served;    // arrival + delay
    std::int64_t t = 0;
    for (int i = 0; i < 400; ++i) {
      if (rng() % 3 != 0) {
        t += static_cast<std::int64_t>(
            std::uniform_real_distribution<double>(0, 3 * interval_ns)(rng));
      }
      const LeakyBucket::Result r = b.tryAcquire(kT0 + nanoseconds(t));
      if (r.decision != Decision::Reject) {
        accepted.push_back(t);
        served.push_back(t + r.delay.count());
      }
    }
    for (std::size_t i = 0; i < accepted.size(); ++i) {
      for (std::size_t j = i; j < accepted.size(); ++j) {
        const long double bound = static_cast<long double>(rate) *
                                      static_cast<long double>(accepted[j] - accepted[i]) / 1e9L +
                                  static_cast<long double>(burst) + 1;
        ASSERT_LE(static_cast<long double>(j - i + 1), bound + 1e-9L) << "seed " << seed;
      }
    }
    if (!nodelay) {
      std::sort(served.begin(), served.end());
      for (std::size_t i = 1; i < served.size(); ++i) {
        ASSERT_GE(static_cast<double>(served[i] - served[i - 1]), interval_ns - 1e-6)
            << "seed " << seed;
      }
    }
  }
}

// Verifies the bound is reached: with demand whenever capacity frees up, the number accepted by
// time t is exactly floor(t / T) + burst + 1.
TEST(LeakyBucket, PropertyUnlimitedDemandReachesTheBound) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    // Rates whose interval is a whole number of ns (1e9 / rate exact).
    constexpr std::int64_t kRates[] = {1, 2, 4, 5, 8, 10, 16, 20, 25, 40, 50, 64, 100, 125, 1000};
    const std::int64_t rate = kRates[rng() % std::size(kRates)];
    const std::int64_t interval_ns = 1'000'000'000 / rate;
    const std::uint64_t burst = rng() % 10;
    LeakyBucket b(
        {.rate_per_second = static_cast<double>(rate), .burst = burst, .nodelay = rng() % 2 == 0});
    std::int64_t t = 0;
    std::uint64_t accepted = 0;
    for (int visit = 0; visit < 200; ++visit) {
      // A drain leaves the excess above burst, so gaps of at most burst * T (exactly T
      // when burst is 0) keep a request waiting whenever capacity frees up.
      if (visit > 0) {
        t += burst == 0 ? interval_ns
                        : static_cast<std::int64_t>(
                              rng() % (burst * static_cast<std::uint64_t>(interval_ns) + 1));
      }
      while (b.tryAcquire(kT0 + nanoseconds(t)).decision != Decision::Reject) {
        ++accepted;
      }
      ASSERT_EQ(accepted, static_cast<std::uint64_t>(t / interval_ns) + burst + 1)
          << "seed " << seed << " t " << t;
    }
  }
}

// ---- setSettings ---------------------------------------------------------------------------

// Verifies: the excess drains at the old rate until the change, is kept in requests, and drains
// at the new rate after it (slower and faster).
TEST(LeakyBucket, SetSettingsKeepsTheExcessAndDrainsAtTheNewRate) {
  LeakyBucket slower({.rate_per_second = 10, .burst = 10, .nodelay = true});  // T = 100 ms
  for (int k = 0; k < 5; ++k) {
    ASSERT_EQ(slower.tryAcquire(kT0).decision, Decision::Allow);
  }
  slower.setSettings({.rate_per_second = 1, .burst = 10, .nodelay = true}, at(200));
  EXPECT_EQ(slower.settings().rate_per_second, 1.0);
  EXPECT_DOUBLE_EQ(slower.excess(at(200)), 3.0);  // 2 drained at 10/s
  EXPECT_DOUBLE_EQ(slower.excess(at(1200)), 2.0);
  EXPECT_DOUBLE_EQ(slower.excess(at(3200)), 0.0);

  LeakyBucket faster({.rate_per_second = 10, .burst = 10, .nodelay = true});
  for (int k = 0; k < 5; ++k) {
    ASSERT_EQ(faster.tryAcquire(kT0).decision, Decision::Allow);
  }
  faster.setSettings({.rate_per_second = 100, .burst = 10, .nodelay = true}, at(200));
  EXPECT_DOUBLE_EQ(faster.excess(at(200)), 3.0);
  EXPECT_DOUBLE_EQ(faster.excess(at(210)), 2.0);
}

// Verifies: a smaller burst caps the excess at burst + 1: the next request is accepted exactly
// one new interval later, not after the old excess drains.
TEST(LeakyBucket, SetSettingsCapsTheExcessAtTheNewBurstPlusOne) {
  LeakyBucket b({.rate_per_second = 10, .burst = 10, .nodelay = true});
  for (int k = 0; k <= 10; ++k) {
    ASSERT_EQ(b.tryAcquire(kT0).decision, Decision::Allow);
  }
  ASSERT_DOUBLE_EQ(b.excess(kT0), 11.0);
  b.setSettings({.rate_per_second = 10, .burst = 2, .nodelay = true}, kT0);
  EXPECT_DOUBLE_EQ(b.excess(kT0), 3.0);
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Reject, milliseconds(100)));
  EXPECT_TRUE(is(b.tryAcquire(at(100)), Decision::Allow, Duration::zero()));
  EXPECT_EQ(b.tryAcquire(at(100)).decision, Decision::Reject);
}

// Verifies: a larger burst keeps the excess and admits exactly the difference.
TEST(LeakyBucket, SetSettingsToALargerBurstAdmitsTheDifference) {
  LeakyBucket b({.rate_per_second = 10, .burst = 10, .nodelay = true});
  int accepted = 0;
  while (b.tryAcquire(kT0).decision != Decision::Reject) {
    ++accepted;
  }
  ASSERT_EQ(accepted, 11);
  b.setSettings({.rate_per_second = 10, .burst = 20, .nodelay = true}, kT0);
  accepted = 0;
  while (b.tryAcquire(kT0).decision != Decision::Reject) {
    ++accepted;
  }
  EXPECT_EQ(accepted, 10);
}

// Verifies: delay settings apply to the next request, with the excess kept.
TEST(LeakyBucket, SetSettingsChangesTheDelayRule) {
  LeakyBucket b({.rate_per_second = 10, .burst = 5});
  ASSERT_TRUE(is(b.tryAcquire(kT0), Decision::Allow, Duration::zero()));
  ASSERT_TRUE(is(b.tryAcquire(kT0), Decision::Delay, milliseconds(100)));
  ASSERT_TRUE(is(b.tryAcquire(kT0), Decision::Delay, milliseconds(200)));
  b.setSettings({.rate_per_second = 10, .burst = 5, .delay = 3}, kT0);
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Allow, Duration::zero()));  // excess 3 <= delay
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Delay, milliseconds(100)));
  b.setSettings({.rate_per_second = 10, .burst = 5, .nodelay = true}, kT0);
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Allow, Duration::zero()));
  EXPECT_TRUE(is(b.tryAcquire(kT0), Decision::Reject, milliseconds(100)));
}

// Verifies: a bucket with no excess stays without excess: a burst-0 bucket whose interval just
// elapsed still accepts at that instant after a change, and an idle one accepts at once.
TEST(LeakyBucket, SetSettingsWithoutExcessKeepsTheBucketIdle) {
  LeakyBucket b({.rate_per_second = 10, .burst = 0});
  ASSERT_EQ(b.tryAcquire(kT0).decision, Decision::Allow);  // TAT = kT0 + 100 ms
  b.setSettings({.rate_per_second = 20, .burst = 0}, at(100));
  EXPECT_DOUBLE_EQ(b.excess(at(100)), 0.0);
  EXPECT_TRUE(is(b.tryAcquire(at(100)), Decision::Allow, Duration::zero()));
  EXPECT_TRUE(is(b.tryAcquire(at(100)), Decision::Reject, milliseconds(50)));

  LeakyBucket idle({.rate_per_second = 10, .burst = 0});
  idle.setSettings({.rate_per_second = 1, .burst = 0}, kT0);
  EXPECT_TRUE(is(idle.tryAcquire(kT0), Decision::Allow, Duration::zero()));
  EXPECT_TRUE(is(idle.tryAcquire(kT0), Decision::Reject, std::chrono::seconds(1)));
}

// Verifies: settings that give the same parameters change nothing, however often applied; and a
// burst-only change at the boundary keeps the boundary (x == tolerance is still accepted).
TEST(LeakyBucket, SetSettingsKeepsExactBoundaries) {
  const LeakyBucket::Settings s{.rate_per_second = 10, .burst = 3, .nodelay = true};
  LeakyBucket same(s);
  for (int k = 0; k < 3; ++k) {
    ASSERT_EQ(same.tryAcquire(kT0).decision, Decision::Allow);
    same.setSettings(s, kT0);
  }
  EXPECT_TRUE(is(same.tryAcquire(kT0), Decision::Allow, Duration::zero()));  // excess 3 <= 3
  EXPECT_TRUE(is(same.tryAcquire(kT0), Decision::Reject, milliseconds(100)));

  LeakyBucket burst_only(s);
  for (int k = 0; k < 3; ++k) {
    ASSERT_EQ(burst_only.tryAcquire(kT0).decision, Decision::Allow);
  }
  burst_only.setSettings({.rate_per_second = 10, .burst = 4, .nodelay = true}, kT0);
  burst_only.setSettings(s, kT0);  // excess 3 kept through both
  EXPECT_EQ(burst_only.tryAcquire(kT0).decision, Decision::Allow);
  EXPECT_EQ(burst_only.tryAcquire(kT0).decision, Decision::Reject);
}

// Verifies no over-acceptance and no lost capacity under contention: workers drive the clock
// and hammer the bucket; a final drain at the end time brings the total to exactly
// floor(elapsed / T) + burst + 1.
TEST(LeakyBucketStress, NoOverAcceptanceUnderContention) {
  constexpr std::uint64_t kBurst = 50;
  LeakyBucket b({.rate_per_second = 1e6, .burst = kBurst, .nodelay = true});  // T = 1 us
  ManualClock clock(kT0);
  // Fill the burst first, so the excess stays near the burst and no capacity can be lost to
  // idle time however the workers interleave.
  std::uint64_t total = 0;
  while (b.tryAcquire(kT0).decision != Decision::Reject) {
    ++total;
  }
  ASSERT_EQ(total, kBurst + 1);
  constexpr int kThreads = 3;
  constexpr int kOps = 30'000;
  std::atomic<bool> go{false};
  std::atomic<std::uint64_t> accepted{0};
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
        if (b.tryAcquire(clock.now()).decision != Decision::Reject) {
          ++mine;
        }
      }
      accepted.fetch_add(mine, std::memory_order_relaxed);
    });
  }
  go.store(true, std::memory_order_release);
  for (std::thread& th : threads) {
    th.join();
  }
  total += accepted.load();
  const TimePoint end = clock.now();
  const auto bound =
      static_cast<std::uint64_t>((end - kT0) / std::chrono::microseconds(1)) + kBurst + 1;
  EXPECT_LE(total, bound);
  while (b.tryAcquire(end).decision != Decision::Reject) {
    ++total;
  }
  EXPECT_EQ(total, bound);
}

// Threads take requests at one instant until refused while another thread keeps switching the
// rate (1000/s <-> 2000/s, converting the excess exactly) and the delay rule: the excess in
// requests must survive every switch, so exactly burst + 1 requests are accepted.
TEST(LeakyBucketStress, SetSettingsRacingAcquiresKeepsTheExcess) {
  const LeakyBucket::Settings a{.rate_per_second = 1000, .burst = 40, .nodelay = true};
  const LeakyBucket::Settings b{.rate_per_second = 2000, .burst = 40, .delay = 5};
  for (int round = 0; round < 20; ++round) {
    LeakyBucket bucket(a);
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<int> running{3};
    std::vector<std::thread> threads;
    threads.reserve(3);
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&] {
        std::uint64_t mine = 0;
        while (bucket.tryAcquire(kT0).decision != Decision::Reject) {
          ++mine;
        }
        accepted.fetch_add(mine);
        running.fetch_sub(1);
      });
    }
    int changes = 0;
    while (running.load() > 0) {
      bucket.setSettings(changes++ % 2 == 0 ? b : a, kT0);
    }
    for (std::thread& th : threads) {
      th.join();
    }
    ASSERT_EQ(accepted.load(), 41U) << "round " << round << ", " << changes << " changes";
    bucket.setSettings(a, kT0);
    EXPECT_DOUBLE_EQ(bucket.excess(kT0), 41.0);
  }
}

}  // namespace
}  // namespace sluice::resilience
