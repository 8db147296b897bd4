#include "resilience/lb/host_stats.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/clock.h"
#include "resilience/lb/power_of_two_choices.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;

TEST(HostStats, RequestCountsInFlightUntilItsHandleEnds) {
  ManualClock clock;
  HostStats stats(PeakEwma::Settings{}, clock.now());
  {
    const HostStats::Request first = stats.start(clock.now());
    HostStats::Request second = stats.start(clock.now());
    EXPECT_EQ(stats.inFlight(), 2U);
    second.cancel();
    EXPECT_FALSE(second.active());
    EXPECT_EQ(stats.inFlight(), 1U);
    second.cancel();  // ending twice ends once
    EXPECT_EQ(stats.inFlight(), 1U);
  }
  EXPECT_EQ(stats.inFlight(), 0U);
}

TEST(HostStats, CompleteRecordsTheRequestsLatency) {
  ManualClock clock;
  HostStats stats(PeakEwma::Settings{}, clock.now());
  HostStats::Request request = stats.start(clock.now());
  clock.advance(milliseconds(400));
  request.complete(clock.now());
  EXPECT_EQ(stats.inFlight(), 0U);
  EXPECT_EQ(stats.rttEstimate(clock.now()), milliseconds(400));  // above 30 ms: a peak
}

TEST(HostStats, CancelRecordsNoLatency) {
  ManualClock clock;
  HostStats stats(PeakEwma::Settings{}, clock.now());
  HostStats::Request request = stats.start(clock.now());
  clock.advance(milliseconds(400));
  request.cancel();
  EXPECT_NEAR(stats.rttEstimateNanos(clock.now()), 30e6 * std::exp(-0.04), 1e-3);
}

TEST(HostStats, MovesTransferTheRequestExactlyOnce) {
  ManualClock clock;
  HostStats stats(PeakEwma::Settings{}, clock.now());
  HostStats::Request a = stats.start(clock.now());
  HostStats::Request b = std::move(a);
  EXPECT_FALSE(a.active());  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move): the
                             // moved-from state is specified
  EXPECT_TRUE(b.active());
  HostStats::Request c = stats.start(clock.now());
  EXPECT_EQ(stats.inFlight(), 2U);
  c = std::move(b);  // c's own request ends, b's moves in
  EXPECT_EQ(stats.inFlight(), 1U);
  c.complete(clock.now());
  EXPECT_EQ(stats.inFlight(), 0U);
  HostStats::Request empty;
  empty.complete(clock.now());
  EXPECT_EQ(stats.inFlight(), 0U);
}

TEST(HostStats, CostIsTheEstimateTimesInFlightPlusOne) {
  ManualClock clock;
  PeakEwma::Settings settings;
  settings.initial_rtt = milliseconds(10);
  HostStats stats(settings, clock.now());
  EXPECT_DOUBLE_EQ(stats.cost(clock.now()), 10e6);
  const HostStats::Request a = stats.start(clock.now());
  const HostStats::Request b = stats.start(clock.now());
  EXPECT_DOUBLE_EQ(stats.cost(clock.now()), 30e6);
  stats.observeRtt(milliseconds(20), clock.now());
  EXPECT_DOUBLE_EQ(stats.cost(clock.now()), 60e6);
}

// Verifies that peak-EWMA cost moves load away from a slowed host: a discrete-event simulation
// of 5 hosts at 10 ms, one request per ms placed by P2C on HostStats::cost(); at t = 10 s host 2
// slows to 100 ms. Its share drops from about a fifth to a few percent.
TEST(HostStats, PeakEwmaCostMovesLoadAwayFromASlowedHost) {
  constexpr std::size_t kHosts = 5;
  ManualClock clock;
  std::deque<HostStats> stats;
  for (std::size_t i = 0; i < kHosts; ++i) {
    stats.emplace_back(PeakEwma::Settings{}, clock.now());
  }
  const TimePoint start = clock.now();
  const PowerOfTwoChoices p2c(kHosts);
  std::mt19937_64 rng(17);
  std::multimap<TimePoint, HostStats::Request> completions;
  std::vector<int> before(kHosts, 0);
  std::vector<int> after(kHosts, 0);
  for (int ms = 0; ms < 20000; ++ms) {
    const TimePoint now = clock.now();
    while (!completions.empty() && completions.begin()->first <= now) {
      completions.begin()->second.complete(completions.begin()->first);
      completions.erase(completions.begin());
    }
    const std::size_t host = *p2c.pick(rng(), [&](std::size_t i) { return stats[i].cost(now); });
    const bool slowed = host == 2 && now - start >= std::chrono::seconds(10);
    completions.emplace(now + milliseconds(slowed ? 100 : 10), stats[host].start(now));
    if (ms < 10000) {
      ++before[host];
    } else if (ms >= 12000) {
      ++after[host];
    }
    clock.advance(milliseconds(1));
  }
  EXPECT_GT(before[2], 1500);  // ~2000 of 10000
  EXPECT_LT(after[2], 400);    // ~a fifth would be 1600 of 8000
  completions.clear();
  for (const HostStats& host : stats) {
    EXPECT_EQ(host.inFlight(), 0U);
  }
}

static_assert(!std::is_move_constructible_v<HostStats>);
static_assert(std::is_nothrow_move_constructible_v<HostStats::Request>);
static_assert(!std::is_copy_constructible_v<HostStats::Request>);

}  // namespace
}  // namespace sluice::resilience
