#include "resilience/auto_limit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/adaptive_concurrency_limiter.h"
#include "resilience/clock.h"
#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Small windows (10..20 samples), every completion sampled, no remeasure within a test and no
// jitter, so that each window close can be computed by hand.
AutoLimit::Settings handFed() {
  AutoLimit::Settings s;
  s.min_limit = 1;
  s.min_sample_count = 10;
  s.max_sample_count = 20;
  s.sampling_interval = Duration::zero();
  s.remeasure_interval = std::chrono::hours(1);
  s.remeasure_jitter = 0;
  s.burst_headroom = 0;  // brpc's formula, so that limits are computed by hand
  return s;
}

// Feeds `n` completions `spacing` apart, the first at `first`; returns the time of the last.
TimePoint feed(AutoLimit& limit, TimePoint first, int n, Duration spacing, Duration rtt,
               bool dropped = false) {
  TimePoint t = first;
  for (int i = 0; i < n; ++i) {
    t = first + spacing * i;
    limit.onSample(t, rtt, 1, dropped);
  }
  return t;
}

// Closes the first window (20 samples 1 ms apart at 100 ms) and a second one at exactly 2000
// requests/s (20 samples 0.5 ms apart): min_latency = 100 ms, max_qps = 2000, explore 0.3.
TimePoint prime(AutoLimit& limit) {
  const TimePoint first_close = feed(limit, kT0, 20, milliseconds(1), milliseconds(100));
  return feed(limit, first_close + microseconds(500), 20, microseconds(500), milliseconds(100));
}

TEST(AutoLimit, DefaultsAreBrpcsFlags) {
  const AutoLimit::Settings d;
  EXPECT_EQ(AutoLimit::validate(d), std::nullopt);
  EXPECT_EQ(d.initial_limit, 40U);                          // auto_cl_initial_max_concurrency
  EXPECT_EQ(d.min_limit, 9U);                               // bthread_concurrency 8 + 1
  EXPECT_EQ(d.sample_window, seconds(1));                   // sample_window_size_ms 1000
  EXPECT_EQ(d.min_sample_count, 100U);                      // min_sample_count
  EXPECT_EQ(d.max_sample_count, 200U);                      // max_sample_count
  EXPECT_EQ(d.sampling_interval, microseconds(100));        // sampling_interval_ms 0.1
  EXPECT_EQ(d.remeasure_interval, seconds(50));             // remeasure_interval_ms 50000
  EXPECT_DOUBLE_EQ(d.remeasure_jitter, 0.5);                // interval/2 + rand(interval/2)
  EXPECT_DOUBLE_EQ(d.reduce_ratio_while_remeasure, 0.9);    // reduce_ratio_while_remeasure
  EXPECT_DOUBLE_EQ(d.ema_alpha, 0.1);                       // alpha_factor_for_ema
  EXPECT_TRUE(d.error_punish);                              // enable_error_punish
  EXPECT_DOUBLE_EQ(d.fail_punish_ratio, 1.0);               // fail_punish_ratio
  EXPECT_DOUBLE_EQ(d.max_explore_ratio, 0.3);               // max_explore_ratio
  EXPECT_DOUBLE_EQ(d.min_explore_ratio, 0.06);              // min_explore_ratio
  EXPECT_DOUBLE_EQ(d.explore_ratio_step, 0.02);             // change_rate_of_explore_ratio
  EXPECT_DOUBLE_EQ(d.latency_fluctuation_correction, 1.0);  // ..._correction_factor
  EXPECT_DOUBLE_EQ(d.burst_headroom, 2.0);                  // ours (brpc: 0): see the header
  const AutoLimit limit(d);
  EXPECT_EQ(limit.limit(), 40U);
  EXPECT_DOUBLE_EQ(limit.exploreRatio(), 0.3);
  EXPECT_EQ(limit.minLatency(), Duration::zero());
  EXPECT_FALSE(limit.remeasuring());
}

TEST(AutoLimit, ValidateExplainsEachBadField) {
  auto with = [](auto change) {
    AutoLimit::Settings s;
    change(s);
    return AutoLimit::validate(s);
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(with([](auto& s) { s.min_limit = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.max_limit = 8; }));
  EXPECT_TRUE(with([](auto& s) { s.max_limit = AdaptiveLimit::kMaxLimit + 1; }));
  EXPECT_TRUE(with([](auto& s) { s.initial_limit = 8; }));
  EXPECT_TRUE(with([](auto& s) { s.sample_window = Duration::zero(); }));
  EXPECT_TRUE(with([](auto& s) { s.min_sample_count = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.max_sample_count = 99; }));
  EXPECT_TRUE(with([](auto& s) { s.sampling_interval = microseconds(-1); }));
  EXPECT_TRUE(with([](auto& s) { s.remeasure_interval = Duration::zero(); }));
  EXPECT_TRUE(with([](auto& s) { s.remeasure_jitter = 1.5; }));
  EXPECT_TRUE(with([&](auto& s) { s.remeasure_jitter = nan; }));
  EXPECT_TRUE(with([](auto& s) { s.reduce_ratio_while_remeasure = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.ema_alpha = 0; }));
  EXPECT_TRUE(with([](auto& s) { s.ema_alpha = 1.1; }));
  EXPECT_TRUE(with([](auto& s) { s.fail_punish_ratio = -1; }));
  EXPECT_TRUE(with([&](auto& s) { s.fail_punish_ratio = inf; }));
  EXPECT_TRUE(with([](auto& s) { s.min_explore_ratio = -0.1; }));
  EXPECT_TRUE(with([](auto& s) { s.max_explore_ratio = 0.05; }));
  EXPECT_TRUE(with([](auto& s) { s.explore_ratio_step = 0; }));
  EXPECT_TRUE(with([&](auto& s) { s.latency_fluctuation_correction = nan; }));
  EXPECT_EQ(with([](auto& s) { s.sampling_interval = Duration::zero(); }), std::nullopt);
}

TEST(AutoLimit, InvalidSettingsAreClampedIntoAUsableLimit) {
  AutoLimit::Settings s;
  s.min_limit = 0;
  s.initial_limit = 0;
  s.ema_alpha = std::numeric_limits<double>::quiet_NaN();
  const AutoLimit limit(s);
  EXPECT_EQ(limit.limit(), 1U);
}

// Verifies Little's law with brpc's headroom: limit = min_latency * max_qps * (1 + 0.3) while the
// latency stays at its minimum.
TEST(AutoLimit, SteadyLatencySettlesAtMaxQpsTimesMinLatencyTimesOnePointThree) {
  AutoLimit limit(handFed());
  prime(limit);
  EXPECT_EQ(limit.minLatency(), milliseconds(100));
  EXPECT_DOUBLE_EQ(limit.maxQps(), 2000.0);
  EXPECT_DOUBLE_EQ(limit.exploreRatio(), 0.3);
  EXPECT_EQ(limit.limit(), 260U);  // 0.1 s * 2000/s * 1.3
}

TEST(AutoLimit, WindowClosesAtMaxSampleCountBeforeTheWindowTime) {
  AutoLimit limit(handFed());
  const TimePoint t = feed(limit, kT0, 19, milliseconds(1), milliseconds(100));
  EXPECT_EQ(limit.limit(), 40U);
  EXPECT_EQ(limit.maxQps(), 0.0);
  limit.onSample(t + milliseconds(1), milliseconds(100), 1, false);  // the 20th sample
  EXPECT_NEAR(limit.maxQps(), 20 / 0.019, 1e-6);                     // 20 successes over 19 ms
  EXPECT_NE(limit.limit(), 40U);
}

TEST(AutoLimit, WindowClosesAtTheWindowTimeWithAtLeastMinSampleCount) {
  AutoLimit limit(handFed());
  // 11 samples 100 ms apart: the 11th is 1 s after the window opened.
  const TimePoint t = feed(limit, kT0, 10, milliseconds(100), milliseconds(50));
  EXPECT_EQ(limit.maxQps(), 0.0);
  limit.onSample(t + milliseconds(100), milliseconds(50), 1, false);
  EXPECT_NEAR(limit.maxQps(), 11.0, 1e-9);  // 11 successes in 1 s
  EXPECT_EQ(limit.minLatency(), milliseconds(50));
  EXPECT_EQ(limit.limit(), 1U);  // floor(0.05 * 11 * 1.3) = 0, clamped to min_limit
}

TEST(AutoLimit, WindowWithTooFewSamplesIsDiscardedAndTheLimitKept) {
  AutoLimit limit(handFed());
  // 8 samples over 1.05 s: fewer than min_sample_count when the window time runs out, so the
  // 8th discards the window and opens a fresh, empty one.
  const TimePoint t = feed(limit, kT0, 8, milliseconds(150), milliseconds(100));
  EXPECT_EQ(limit.limit(), 40U);
  EXPECT_EQ(limit.maxQps(), 0.0);
  // Without the discard, 12 more samples would close the window; with it, 20 are needed.
  const TimePoint u = feed(limit, t + milliseconds(1), 19, milliseconds(1), milliseconds(100));
  EXPECT_EQ(limit.maxQps(), 0.0);
  limit.onSample(u + milliseconds(1), milliseconds(100), 1, false);
  EXPECT_NEAR(limit.maxQps(), 1000.0, 1e-6);  // 20 successes since the discard, in 20 ms
  EXPECT_EQ(limit.limit(), 130U);             // 0.1 s * 1000/s * 1.3
}

TEST(AutoLimit, RisingLatencyAtPeakThroughputShrinksTheExploreRatioToSixPercent) {
  AutoLimit limit(handFed());
  TimePoint t = prime(limit);
  std::size_t previous = limit.limit();
  for (int window = 1; window <= 15; ++window) {
    // Same 2000/s, but 150 ms: more than min_latency * 1.06, so requests are queueing.
    t = feed(limit, t + microseconds(500), 20, microseconds(500), milliseconds(150));
    const double explore = std::max(0.06, 0.3 - 0.02 * window);
    EXPECT_NEAR(limit.exploreRatio(), explore, 1e-9) << window;
    EXPECT_NEAR(static_cast<double>(limit.limit()), 200.0 * (1.0 + explore), 1.0) << window;
    EXPECT_LE(limit.limit(), previous);
    previous = limit.limit();
  }
  EXPECT_EQ(limit.minLatency(), milliseconds(100));  // a higher latency never raises it
  EXPECT_EQ(limit.limit(), 212U);                    // 200 * 1.06
}

// Verifies: while requests do not queue, the limit leaves burst_headroom x sqrt(little) above
// brpc's; once latency rises, the headroom goes. little = 100 ms x 2000/s = 200.
TEST(AutoLimit, UnqueuedDemandGetsRoomForItsBursts) {
  AutoLimit::Settings s = handFed();
  s.burst_headroom = 2;
  AutoLimit limit(s);
  TimePoint t = prime(limit);
  EXPECT_EQ(limit.limit(), 289U);  // ceil(200 x 1.3 + 2 x sqrt(200)) = ceil(288.28)
  feed(limit, t + microseconds(500), 20, microseconds(500), milliseconds(150));
  EXPECT_EQ(limit.limit(), 256U);  // 200 x 1.28: queueing, no headroom
}

// Verifies: a small limit can grow. Each window is served at exactly the limit (limit / 10 ms
// requests per second at the no-load 10 ms), so the next limit is ceil(limit x 1.3): 2 -> 3 ->
// 4 -> 6. Truncating, as brpc does, would keep it at 2 for ever (floor(2.6) = 2).
TEST(AutoLimit, ASmallLimitGrowsWhenItIsFullyUsed) {
  AutoLimit::Settings s = handFed();
  s.initial_limit = 2;
  AutoLimit limit(s);
  TimePoint t = kT0;
  for (const std::size_t expected : {3U, 4U, 6U}) {
    const std::size_t now_limit = limit.limit();
    // 20 completions at now_limit / 10 ms per second: 10 ms / now_limit apart.
    const auto spacing = microseconds(10'000 / now_limit);
    t = feed(limit, t + spacing, 20, spacing, milliseconds(10));
    t = feed(limit, t + spacing, 20, spacing, milliseconds(10));  // the second window decides
    EXPECT_EQ(limit.limit(), expected) << "from " << now_limit;
  }
}

TEST(AutoLimit, LatencyWithinSixPercentOfTheMinimumStillGrowsTheExploreRatio) {
  AutoLimit limit(handFed());
  TimePoint t = prime(limit);
  for (int window = 0; window < 5; ++window) {
    t = feed(limit, t + microseconds(500), 20, microseconds(500), milliseconds(150));
  }
  ASSERT_NEAR(limit.exploreRatio(), 0.2, 1e-9);
  t = feed(limit, t + microseconds(500), 20, microseconds(500), microseconds(106000));
  EXPECT_NEAR(limit.exploreRatio(), 0.22, 1e-9);
  t = feed(limit, t + microseconds(500), 20, microseconds(500), microseconds(106001));
  EXPECT_NEAR(limit.exploreRatio(), 0.2, 1e-9);
}

TEST(AutoLimit, ThroughputBelowThePeakGrowsTheExploreRatioEvenWhenLatencyIsHigh) {
  AutoLimit limit(handFed());
  TimePoint t = prime(limit);
  for (int window = 0; window < 5; ++window) {
    t = feed(limit, t + microseconds(500), 20, microseconds(500), milliseconds(150));
  }
  ASSERT_NEAR(limit.exploreRatio(), 0.2, 1e-9);
  // 1000/s is below max_qps / 1.06: demand fell, so there is room to explore again.
  feed(limit, t + milliseconds(1), 20, milliseconds(1), milliseconds(150));
  EXPECT_NEAR(limit.exploreRatio(), 0.22, 1e-9);
}

TEST(AutoLimit, MinLatencyFollowsLowerLatenciesByTheEmaAndIgnoresHigherOnes) {
  AutoLimit limit(handFed());
  TimePoint t = prime(limit);
  t = feed(limit, t + microseconds(500), 20, microseconds(500), milliseconds(300));
  EXPECT_EQ(limit.minLatency(), milliseconds(100));
  feed(limit, t + microseconds(500), 20, microseconds(500), milliseconds(50));
  EXPECT_EQ(limit.minLatency(), milliseconds(95));  // 100 + (50 - 100) * 0.1
}

TEST(AutoLimit, MaxQpsJumpsUpAtOnceAndDecaysAtATenthOfTheEmaFactor) {
  AutoLimit limit(handFed());
  TimePoint t = prime(limit);
  ASSERT_DOUBLE_EQ(limit.maxQps(), 2000.0);
  t = feed(limit, t + milliseconds(1), 20, milliseconds(1), milliseconds(100));  // 1000/s
  EXPECT_NEAR(limit.maxQps(), 1990.0, 1e-9);  // 2000 + (1000 - 2000) * 0.01
  feed(limit, t + microseconds(250), 20, microseconds(250), milliseconds(100));  // 4000/s
  EXPECT_NEAR(limit.maxQps(), 4000.0, 1e-9);
}

// Verifies brpc's error punishment: the failures' latency is added to the successes' total and
// divided by the successes only, and failures do not count as throughput.
TEST(AutoLimit, FailedRequestsPenaliseTheAverageLatency) {
  AutoLimit limit(handFed());
  TimePoint t = prime(limit);
  // 10 successes and 10 failures at 100 ms in 5 ms: avg = (10 * 100 + 10 * 100) / 10 = 200 ms
  // at an unchanged 2000/s (failures are not throughput), so the service looks congested.
  for (int i = 0; i < 20; ++i) {
    t += microseconds(250);
    limit.onSample(t, milliseconds(100), 1, /*dropped=*/i % 2 == 1);
  }
  EXPECT_NEAR(limit.exploreRatio(), 0.28, 1e-9);
  EXPECT_NEAR(limit.maxQps(), 2000.0, 1e-9);
  EXPECT_EQ(limit.minLatency(), milliseconds(100));

  AutoLimit::Settings lenient = handFed();
  lenient.error_punish = false;
  AutoLimit unpunished(lenient);
  TimePoint u = prime(unpunished);
  for (int i = 0; i < 40; ++i) {  // 20 sampled successes; the failures are not samples
    u += microseconds(250);
    unpunished.onSample(u, milliseconds(100), 1, /*dropped=*/i % 2 == 1);
  }
  EXPECT_NEAR(unpunished.exploreRatio(), 0.3, 1e-9);
}

TEST(AutoLimit, FailPunishRatioScalesTheFailuresLatency) {
  AutoLimit::Settings s = handFed();
  s.fail_punish_ratio = 0.05;
  AutoLimit limit(s);
  TimePoint t = prime(limit);
  // avg = (10 * 100 * 0.05 + 10 * 100) / 10 = 105 ms: within 6 % of the minimum.
  for (int i = 0; i < 20; ++i) {
    t += microseconds(250);
    limit.onSample(t, milliseconds(100), 1, /*dropped=*/i % 2 == 1);
  }
  EXPECT_NEAR(limit.exploreRatio(), 0.3, 1e-9);
}

TEST(AutoLimit, AWindowWhereEverySampleFailedHalvesTheLimit) {
  AutoLimit limit(handFed());
  feed(limit, kT0, 20, milliseconds(1), milliseconds(100), /*dropped=*/true);
  EXPECT_EQ(limit.limit(), 20U);
  feed(limit, kT0 + milliseconds(20), 20, milliseconds(1), milliseconds(100), true);
  EXPECT_EQ(limit.limit(), 10U);
  EXPECT_EQ(limit.maxQps(), 0.0);  // nothing learned about throughput
}

TEST(AutoLimit, SamplingIntervalSkipsLatencySamplesButCountsEverySuccess) {
  AutoLimit::Settings s = handFed();
  s.sampling_interval = milliseconds(1);
  AutoLimit limit(s);
  // Completions every 0.5 ms: only those on whole milliseconds are samples, so the 20th sample
  // is the 39th completion, 19 ms after the first; all 39 count as throughput.
  const TimePoint t = feed(limit, kT0, 38, microseconds(500), milliseconds(100));
  EXPECT_EQ(limit.maxQps(), 0.0);
  limit.onSample(t + microseconds(500), milliseconds(100), 1, false);
  EXPECT_NEAR(limit.maxQps(), 39 / 0.019, 1e-6);
}

TEST(AutoLimit, TimeGoingBackwardsCountsAsTheLatestTime) {
  AutoLimit limit(handFed());
  feed(limit, kT0, 19, milliseconds(1), milliseconds(100));
  limit.onSample(kT0, milliseconds(100), 1, false);  // treated as kT0 + 18 ms
  EXPECT_NEAR(limit.maxQps(), 20 / 0.018, 1e-6);
}

TEST(AutoLimit, ZeroOrNegativeRttIsTreatedAsZero) {
  AutoLimit limit(handFed());
  feed(limit, kT0, 20, milliseconds(1), milliseconds(-5));
  EXPECT_EQ(limit.minLatency(), Duration::zero());
  EXPECT_EQ(limit.limit(), 1U);  // zero latency: the no-load concurrency is 0, clamped
}

// Steady traffic at 2000/s, 100 ms, windows every 10 ms; remeasure every 1 s without jitter.
struct RemeasureRun {
  AutoLimit limit;
  TimePoint t;
  explicit RemeasureRun(const AutoLimit::Settings& s) : limit(s), t(kT0) {}
  // One completion 0.5 ms after the previous one.
  void step(Duration rtt) {
    t += microseconds(500);
    limit.onSample(t, rtt, 1, false);
  }
};

AutoLimit::Settings remeasureEverySecond() {
  AutoLimit::Settings s = handFed();
  s.remeasure_interval = seconds(1);
  return s;
}

// Verifies the periodic dip: at the first window close at or after first sample + interval, the
// limit drops to ceil(min_latency * max_qps * 0.9), samples are ignored for 2 * avg latency,
// then min_latency is measured afresh and the next dip is one interval after that.
TEST(AutoLimit, RemeasureDropsTheLimitAtItsIntervalAndRelearnsMinLatency) {
  RemeasureRun run(remeasureEverySecond());
  const TimePoint first = run.t + microseconds(500);
  while (!run.limit.remeasuring()) {
    run.step(milliseconds(100));
    ASSERT_LT(run.t, first + seconds(2));
  }
  const TimePoint dip = run.t;
  // Windows close every 20 samples = 10 ms; the first close at or after 1 s is exactly at 1 s.
  EXPECT_GE(dip, first + seconds(1));
  EXPECT_LT(dip, first + seconds(1) + milliseconds(10));
  const std::size_t dipped = run.limit.limit();
  EXPECT_EQ(dipped, static_cast<std::size_t>(std::ceil(0.1 * run.limit.maxQps() * 0.9)));
  EXPECT_NEAR(run.limit.maxQps(), 2000, 50);  // the first window's 2105/s, decayed toward 2000

  // While draining (2 * 100 ms) nothing changes, even with very different latencies.
  while (run.t + microseconds(500) < dip + milliseconds(200)) {
    run.step(milliseconds(900));
    ASSERT_EQ(run.limit.limit(), dipped);
    ASSERT_TRUE(run.limit.remeasuring());
  }
  // The service's no-load latency has meanwhile risen to 120 ms; a plain minimum would never
  // learn that. The first sample at the drain's end forgets the old minimum.
  run.step(milliseconds(120));
  const TimePoint restart = run.t;
  EXPECT_FALSE(run.limit.remeasuring());
  EXPECT_EQ(run.limit.minLatency(), Duration::zero());
  for (int i = 0; i < 19; ++i) {
    run.step(milliseconds(120));
  }
  EXPECT_EQ(run.limit.minLatency(), milliseconds(120));
  EXPECT_GT(run.limit.limit(), dipped);

  // The next dip: the first window close at or after restart + 1 s.
  while (!run.limit.remeasuring()) {
    run.step(milliseconds(120));
    ASSERT_LT(run.t, restart + seconds(2));
  }
  EXPECT_GE(run.t, restart + seconds(1));
  EXPECT_LT(run.t, restart + seconds(1) + milliseconds(10));
}

TEST(AutoLimit, RemeasureJitterSpreadsTheIntervalOverItsSecondHalf) {
  std::vector<Duration> delays;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    AutoLimit::Settings s = remeasureEverySecond();
    s.remeasure_jitter = 0.5;
    s.seed = seed;
    RemeasureRun run(s);
    const TimePoint first = run.t + microseconds(500);
    while (!run.limit.remeasuring()) {
      run.step(milliseconds(100));
      ASSERT_LT(run.t, first + seconds(2));
    }
    const Duration delay = run.t - first;
    EXPECT_GE(delay, milliseconds(500)) << seed;
    EXPECT_LT(delay, seconds(1) + milliseconds(10)) << seed;
    delays.push_back(delay);
  }
  std::sort(delays.begin(), delays.end());
  EXPECT_GT(delays.back() - delays.front(), milliseconds(100));  // not in lock step
}

TEST(AutoLimit, SameSeedRepeatsTheSameRemeasureTimes) {
  auto first_dip = [](std::uint64_t seed) {
    AutoLimit::Settings s = remeasureEverySecond();
    s.remeasure_jitter = 0.5;
    s.seed = seed;
    RemeasureRun run(s);
    while (!run.limit.remeasuring()) {
      run.step(milliseconds(100));
    }
    return run.t;
  };
  EXPECT_EQ(first_dip(42), first_dip(42));
}

// A simulated server behind an AdaptiveConcurrencyLimiter + AutoLimit: `workers` requests are
// served at once, each for `service` time, the rest wait in a FIFO; arrivals are open-loop, one
// every `gap` (more than the server can take). Its best concurrency is `workers` (capacity
// workers / service per second times service latency).
class SimulatedServer {
 public:
  SimulatedServer(AdaptiveConcurrencyLimiter& limiter, std::size_t workers, Duration service,
                  Duration gap)
      : limiter_(limiter), workers_(workers), service_(service), gap_(gap) {}

  void setWorkers(std::size_t workers) { workers_ = workers; }

  // Runs until `end`; calls `probe(now)` every `probe_every`.
  template <typename Probe>
  void runUntil(TimePoint end, Duration probe_every, Probe probe) {
    TimePoint next_probe = now_ + probe_every;
    while (now_ < end) {
      const TimePoint next_done = running_.empty() ? TimePoint::max() : running_.begin()->first;
      if (next_done <= next_arrival_) {
        now_ = next_done;
        auto node = running_.extract(running_.begin());
        node.mapped().success(now_);
        ++completed_;
        startWaiting();
      } else {
        now_ = next_arrival_;
        next_arrival_ += gap_;
        auto permit = limiter_.tryAcquire(now_);
        if (!permit) {
          ++rejected_;
        } else {
          waiting_.push_back(std::move(permit));
          startWaiting();
        }
      }
      while (next_probe <= now_) {
        probe(next_probe);
        next_probe += probe_every;
      }
    }
  }

  [[nodiscard]] TimePoint now() const { return now_; }
  [[nodiscard]] std::uint64_t completed() const { return completed_; }

 private:
  void startWaiting() {
    while (running_.size() < workers_ && !waiting_.empty()) {
      running_.emplace(now_ + service_, std::move(waiting_.front()));
      waiting_.pop_front();
    }
  }

  AdaptiveConcurrencyLimiter& limiter_;
  std::size_t workers_;
  Duration service_;
  Duration gap_;
  TimePoint now_ = kT0;
  TimePoint next_arrival_ = kT0;
  std::multimap<TimePoint, AdaptiveConcurrencyLimiter::Permit> running_;
  std::deque<AdaptiveConcurrencyLimiter::Permit> waiting_;
  std::uint64_t completed_ = 0;
  std::uint64_t rejected_ = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Verifies convergence with brpc's defaults: 50 workers at 20 ms serve 2500/s, so the best
// concurrency is 50; the offered load is 5000/s. The limit must settle just above 50 (the 6 %
// minimum headroom once latency rises), dip to 45 during remeasures, and never let the queue -
// and so the latency - grow unbounded.
TEST(AutoLimitSimulation, ConvergesNearThroughputTimesNoLoadLatency) {
  AdaptiveConcurrencyLimiter limiter(std::make_unique<AutoLimit>(AutoLimit::Settings{}));
  SimulatedServer server(limiter, 50, milliseconds(20), microseconds(200));
  std::vector<double> limits;
  server.runUntil(kT0 + seconds(120), milliseconds(100), [&](TimePoint now) {
    if (now >= kT0 + seconds(20)) {
      limits.push_back(static_cast<double>(limiter.limit()));
    }
  });
  const double settled = median(limits);
  EXPECT_GE(settled, 50.0);
  EXPECT_LE(settled, 50.0 * 1.1);
  EXPECT_GE(*std::min_element(limits.begin(), limits.end()), 45.0);  // the 0.9 dip
  // At most brpc's 30 % plus the burst headroom (2 x sqrt(50)), which a window without
  // queueing - right after a remeasure's dip - allows for a moment.
  EXPECT_LE(*std::max_element(limits.begin(), limits.end()), 50.0 * 1.3 + 2 * std::sqrt(50.0) + 1);
  // Throughput stays near the server's capacity (2500/s) despite the dips.
  EXPECT_GE(static_cast<double>(server.completed()), 0.95 * 2500 * 120);
  const auto& algorithm = dynamic_cast<const AutoLimit&>(limiter.algorithm());
  EXPECT_EQ(algorithm.minLatency(), milliseconds(20));
  EXPECT_NEAR(algorithm.maxQps(), 2500, 2500 * 0.05);
}

// Verifies that losing half the workers (capacity 2500/s -> 1250/s, best concurrency 50 -> 25)
// shrinks the limit to near the new best concurrency.
TEST(AutoLimitSimulation, LosingCapacityShrinksTheLimit) {
  AdaptiveConcurrencyLimiter limiter(std::make_unique<AutoLimit>(AutoLimit::Settings{}));
  SimulatedServer server(limiter, 50, milliseconds(20), microseconds(200));
  std::vector<double> before;
  server.runUntil(kT0 + seconds(60), milliseconds(100), [&](TimePoint now) {
    if (now >= kT0 + seconds(20)) {
      before.push_back(static_cast<double>(limiter.limit()));
    }
  });
  server.setWorkers(25);
  std::vector<double> after;
  server.runUntil(kT0 + seconds(300), milliseconds(100), [&](TimePoint now) {
    if (now >= kT0 + seconds(240)) {
      after.push_back(static_cast<double>(limiter.limit()));
    }
  });
  EXPECT_GE(median(before), 50.0);
  EXPECT_LE(median(after), 25.0 * 1.3);
  EXPECT_GE(median(after), 25.0 * 0.9);
}

}  // namespace
}  // namespace sluice::resilience
