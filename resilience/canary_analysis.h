// Canary analysis: is a new version (the canary) worse than the version it replaces (the
// baseline), judged from what both served over the same window?
//
//   const auto a = analyzeCanary(baseline, canary, bounds, settings);
//   switch (a.verdict) { case Insufficient: wait; case Healthy: step up; default: roll back }
//
// Two questions, each a one-sided test at `confidence`, so that a verdict needs evidence and not
// one unlucky interval:
//
//   error rate  H0: canary's rate <= baseline's + max_error_increase. A z-test on the
//               difference of two proportions (Agresti-Caffo: one success and one failure
//               added to each side, which keeps the variance honest at rates near 0 or 1).
//               Fails the canary when H0 is rejected.
//   latency     The baseline's `quantile` (p99) from its histogram sets a threshold:
//               max(max_latency_ratio x that, that + min_latency_increase). If the canary's
//               quantile were within it, at most (1 - quantile) of the canary's requests would be
//               slower; a one-sided test on the share of canary requests above the threshold
//               (a z-test from n * (1 - quantile) >= 10 on, the exact binomial tail below)
//               fails the canary when it is significantly more. Not judged when the baseline's
//               quantile lies past the last bucket bound (nothing to compare with there).
//
// Nothing is judged while either side has fewer than min_requests in the window: too little
// traffic is no verdict (Insufficient), never a pass.
//
// Latencies come as bucket counts over fixed upper bounds (Prometheus-style, the last bucket
// unbounded); a quantile inside a bucket is interpolated linearly, so coarse buckets make a
// coarse threshold. Pure functions; no clock, no state.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace sluice::resilience {

struct CanarySample {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::vector<std::uint64_t> latency;  // [bucket] counts, bounds.size() + 1 of them

  // This sample minus an earlier one of the same counters (the window between them).
  [[nodiscard]] CanarySample since(const CanarySample& earlier) const;
};

struct CanaryAnalysisSettings {
  std::uint64_t min_requests = 100;     // on each side
  double max_error_increase = 0.01;     // absolute: 0.01 = one percentage point
  double max_latency_ratio = 1.5;       // canary quantile / baseline quantile
  double min_latency_increase = 0.005;  // seconds: smaller slowdowns never fail
  double quantile = 0.99;
  double confidence = 0.99;  // of each one-sided test
};

struct CanaryAnalysis {
  enum class Verdict : std::uint8_t { Insufficient, Healthy, ErrorRate, Latency };
  Verdict verdict = Verdict::Insufficient;
  double baseline_error_rate = 0;
  double canary_error_rate = 0;
  double error_z = 0;            // > critical_z: the error rate test failed
  double baseline_latency = 0;   // seconds, the baseline's quantile
  double canary_latency = 0;     // seconds, the canary's quantile
  double latency_threshold = 0;  // seconds
  double canary_slow_share = 0;  // of canary requests above the threshold
  double latency_z = 0;          // > critical_z: the latency test failed
  double critical_z = 0;
};

// `bounds`: the buckets' upper bounds in seconds, increasing.
[[nodiscard]] CanaryAnalysis analyzeCanary(const CanarySample& baseline, const CanarySample& canary,
                                           std::span<const double> bounds,
                                           const CanaryAnalysisSettings& settings);

// The q-quantile (0 < q < 1) of the latencies counted in `buckets`, interpolated within its
// bucket (0 when empty; the last finite bound when it falls in the unbounded bucket).
[[nodiscard]] double histogramQuantile(std::span<const double> bounds,
                                       std::span<const std::uint64_t> buckets, double q);

// How many of the latencies counted in `buckets` exceed `threshold` (interpolated within its
// bucket, so possibly fractional).
[[nodiscard]] double histogramCountAbove(std::span<const double> bounds,
                                         std::span<const std::uint64_t> buckets, double threshold);

// z such that P(Z <= z) = p for a standard normal Z (0 < p < 1).
[[nodiscard]] double normalQuantile(double p);

}  // namespace sluice::resilience
