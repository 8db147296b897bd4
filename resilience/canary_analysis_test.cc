#include "resilience/canary_analysis.h"

#include <array>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

// Prometheus-like bounds in seconds (the gateway's own).
constexpr std::array<double, 14> kCanaryBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};

// `n` requests, `errors` of them failed, all with latencies in the bucket ending at `bound`.
CanarySample canarySampleOf(std::uint64_t n, std::uint64_t errors, double bound) {
  CanarySample s;
  s.requests = n;
  s.errors = errors;
  s.latency.assign(kCanaryBounds.size() + 1, 0);
  for (std::size_t i = 0; i < kCanaryBounds.size(); ++i) {
    if (kCanaryBounds[i] == bound) s.latency[i] = n;
  }
  return s;
}

TEST(CanaryAnalysis, NormalQuantileMatchesTheTable) {
  EXPECT_NEAR(normalQuantile(0.5), 0, 1e-9);
  EXPECT_NEAR(normalQuantile(0.95), 1.644854, 1e-5);
  EXPECT_NEAR(normalQuantile(0.99), 2.326348, 1e-5);
  EXPECT_NEAR(normalQuantile(0.01), -2.326348, 1e-5);
}

TEST(CanaryAnalysis, QuantilesInterpolateWithinTheirBucket) {
  std::vector<std::uint64_t> b(kCanaryBounds.size() + 1, 0);
  b[4] = 50;  // (5ms, 10ms]
  b[5] = 50;  // (10ms, 25ms]
  EXPECT_NEAR(histogramQuantile(kCanaryBounds, b, 0.5), 0.010, 1e-12);
  EXPECT_NEAR(histogramQuantile(kCanaryBounds, b, 0.99), 0.010 + 0.015 * 49 / 50, 1e-12);
  EXPECT_NEAR(histogramQuantile(kCanaryBounds, b, 0.25), 0.0075, 1e-12);
  EXPECT_NEAR(histogramCountAbove(kCanaryBounds, b, 0.0175), 25, 1e-9);
  EXPECT_NEAR(histogramCountAbove(kCanaryBounds, b, 0.001), 100, 1e-9);
  EXPECT_NEAR(histogramCountAbove(kCanaryBounds, b, 0.025), 0, 1e-9);
  b.back() = 10;  // beyond the last bound: counted as above any threshold
  EXPECT_NEAR(histogramCountAbove(kCanaryBounds, b, 20.0), 10, 1e-9);
  EXPECT_EQ(histogramQuantile(kCanaryBounds, std::vector<std::uint64_t>(15, 0), 0.99), 0);
}

TEST(CanaryAnalysis, TooFewRequestsOnEitherSideIsNoVerdict) {
  CanaryAnalysisSettings s;
  s.min_requests = 100;
  // Even an obviously broken canary is not judged on 99 requests.
  EXPECT_EQ(
      analyzeCanary(canarySampleOf(1000, 0, 0.01), canarySampleOf(99, 99, 0.01), kCanaryBounds, s)
          .verdict,
      CanaryAnalysis::Verdict::Insufficient);
  EXPECT_EQ(
      analyzeCanary(canarySampleOf(99, 0, 0.01), canarySampleOf(1000, 0, 0.01), kCanaryBounds, s)
          .verdict,
      CanaryAnalysis::Verdict::Insufficient);
}

TEST(CanaryAnalysis, ErrorRatesAreComparedWithATestNotAThreshold) {
  const CanaryAnalysisSettings s;  // 1 point margin, 99 % confidence
  struct Case {
    std::uint64_t nb, eb, nc, ec;
    CanaryAnalysis::Verdict want;
  };
  const Case cases[] = {
      {1000, 0, 100, 0, CanaryAnalysis::Verdict::Healthy},
      {1000, 10, 100, 1, CanaryAnalysis::Verdict::Healthy},
      // 20 % errors against none: failed on a single interval of 100 requests.
      {1000, 0, 100, 20, CanaryAnalysis::Verdict::ErrorRate},
      // 3 % against 1 % on 100 requests is within noise at 99 %...
      {1000, 10, 100, 3, CanaryAnalysis::Verdict::Healthy},
      // ...and is not on 5000.
      {50000, 500, 5000, 150, CanaryAnalysis::Verdict::ErrorRate},
      // Both sides failing alike is not the canary's fault.
      {1000, 300, 1000, 310, CanaryAnalysis::Verdict::Healthy},
      {1000, 0, 1000, 1000, CanaryAnalysis::Verdict::ErrorRate},
  };
  for (const auto& c : cases) {
    const auto a = analyzeCanary(canarySampleOf(c.nb, c.eb, 0.01), canarySampleOf(c.nc, c.ec, 0.01),
                                 kCanaryBounds, s);
    EXPECT_EQ(a.verdict, c.want) << c.nb << "/" << c.eb << " vs " << c.nc << "/" << c.ec
                                 << ": z=" << a.error_z;
  }
}

TEST(CanaryAnalysis, ASlowerCanaryFailsOnItsTailNotOnNoise) {
  const CanaryAnalysisSettings s;  // p99, ratio 1.5, floor 5 ms
  // Same latencies: healthy.
  auto a =
      analyzeCanary(canarySampleOf(500, 0, 0.025), canarySampleOf(200, 0, 0.025), kCanaryBounds, s);
  EXPECT_EQ(a.verdict, CanaryAnalysis::Verdict::Healthy);
  EXPECT_NEAR(a.baseline_latency, 0.010 + 0.015 * 0.99, 1e-9);
  EXPECT_EQ(a.canary_slow_share, 0);
  // Three times slower (10-25 ms against 25-50 ms, then 50-100 ms): failed.
  a = analyzeCanary(canarySampleOf(500, 0, 0.025), canarySampleOf(200, 0, 0.05), kCanaryBounds, s);
  EXPECT_EQ(a.verdict, CanaryAnalysis::Verdict::Latency);
  EXPECT_GT(a.canary_slow_share, 0.4);
  EXPECT_GT(a.latency_z, a.critical_z);
  // A canary whose slow tail is 1 % of its requests, as the baseline's is: healthy.
  CanarySample c = canarySampleOf(1000, 0, 0.01);
  c.latency[5] = 10;  // (10, 25] ms
  c.latency[4] = 990;
  CanarySample b = c;
  b.requests = c.requests = 1000;
  EXPECT_EQ(analyzeCanary(b, c, kCanaryBounds, s).verdict, CanaryAnalysis::Verdict::Healthy);
  // Sub-millisecond services: twice as slow but within the 5 ms floor is not a failure.
  a = analyzeCanary(canarySampleOf(500, 0, 0.0005), canarySampleOf(200, 0, 0.001), kCanaryBounds,
                    s);
  EXPECT_EQ(a.verdict, CanaryAnalysis::Verdict::Healthy);
}

TEST(CanaryAnalysis, SmallSamplesUseTheExactTailAndLongRequestsAreNotJudged) {
  const CanaryAnalysisSettings s;
  // 100 canary requests, 1 slow one: what a p99 within the margin allows (exact binomial).
  CanarySample c = canarySampleOf(100, 0, 0.01);
  c.latency[4] = 99;
  c.latency[8] = 1;  // (100, 250] ms
  auto a = analyzeCanary(canarySampleOf(500, 0, 0.01), c, kCanaryBounds, s);
  EXPECT_EQ(a.verdict, CanaryAnalysis::Verdict::Healthy);
  // 5 slow of 100 is not chance (P = 0.003 under a 1 % tail).
  c.latency[4] = 95;
  c.latency[8] = 5;
  a = analyzeCanary(canarySampleOf(500, 0, 0.01), c, kCanaryBounds, s);
  EXPECT_EQ(a.verdict, CanaryAnalysis::Verdict::Latency) << a.latency_z;
  // A baseline slower than the last bound (10 s: long polls) leaves nothing to compare: both
  // sides alike are not failed for the requests beyond it.
  CanarySample slow = canarySampleOf(1000, 0, 0.01);
  slow.latency[4] = 900;
  slow.latency.back() = 100;
  EXPECT_EQ(analyzeCanary(slow, slow, kCanaryBounds, s).verdict, CanaryAnalysis::Verdict::Healthy);
}

TEST(CanaryAnalysis, AWindowIsTheDifferenceOfCumulativeCounters) {
  CanarySample before = canarySampleOf(100, 5, 0.01);
  CanarySample after = canarySampleOf(250, 6, 0.01);
  const CanarySample w = after.since(before);
  EXPECT_EQ(w.requests, 150U);
  EXPECT_EQ(w.errors, 1U);
  EXPECT_EQ(w.latency[4], 150U);
  // Counters that went backwards (replaced) give an empty window, not a huge one.
  const CanarySample back = before.since(after);
  EXPECT_EQ(back.requests, 0U);
  EXPECT_EQ(back.errors, 0U);
  EXPECT_EQ(back.latency[4], 0U);
}

}  // namespace
}  // namespace sluice::resilience
