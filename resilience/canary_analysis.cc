#include "resilience/canary_analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sluice::resilience {

CanarySample CanarySample::since(const CanarySample& earlier) const {
  // Counters only grow; a window that would go negative (counters replaced) reads as empty.
  const auto minus = [](std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; };
  CanarySample out;
  out.requests = minus(requests, earlier.requests);
  out.errors = std::min(minus(errors, earlier.errors), out.requests);
  out.latency.resize(latency.size());
  for (std::size_t i = 0; i < latency.size(); ++i) {
    out.latency[i] = minus(latency[i], i < earlier.latency.size() ? earlier.latency[i] : 0);
  }
  return out;
}

namespace {

std::uint64_t bucketTotal(std::span<const std::uint64_t> buckets) {
  std::uint64_t n = 0;
  for (const auto b : buckets) n += b;
  return n;
}

double bucketLowerBound(std::span<const double> bounds, std::size_t i) {
  return i == 0 ? 0.0 : bounds[i - 1];
}

// P(X >= k) for X ~ Binomial(n, p), by the probabilities' recurrence (only for n * p < 10,
// where (1 - p)^n cannot underflow: see shareZ).
double binomialUpperTail(std::uint64_t n, std::uint64_t k, double p) {
  if (k == 0) return 1;
  if (k > n) return 0;
  const auto nn = static_cast<double>(n);
  double pmf = std::pow(1 - p, nn);  // P(X = 0)
  double below = 0;                  // P(X < i)
  for (std::uint64_t i = 0; i < k; ++i) {
    below += pmf;
    const auto ii = static_cast<double>(i);
    pmf *= (nn - ii) / (ii + 1) * p / (1 - p);
  }
  return std::max(0.0, 1 - below);
}

// The one-sided evidence, as a z score, that `above` of `n` observations exceeding a level that
// only a share `p0` should exceed is more than chance. The normal approximation needs
// n * p0 >= 10 (a p99 needs 1000 requests); below that the exact binomial tail is used,
// converted to the z with the same p-value.
double shareZ(double above, double p0, double n) {
  if (n * p0 >= 10) {
    const double sd = std::sqrt(p0 * (1 - p0) / n);
    return (above / n - p0) / sd;
  }
  const auto count = static_cast<std::uint64_t>(n);
  const auto k = static_cast<std::uint64_t>(std::floor(above));  // interpolated: round down
  const double p_value = binomialUpperTail(count, k, p0);
  if (p_value >= 1) return -std::numeric_limits<double>::infinity();
  if (p_value <= 0) return std::numeric_limits<double>::infinity();
  return normalQuantile(1 - p_value);
}

}  // namespace

double histogramQuantile(std::span<const double> bounds, std::span<const std::uint64_t> buckets,
                         double q) {
  const std::uint64_t n = bucketTotal(buckets);
  if (n == 0) return 0;
  const double rank = q * static_cast<double>(n);
  double seen = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const auto in_bucket = static_cast<double>(buckets[i]);
    if (in_bucket > 0 && seen + in_bucket >= rank) {
      if (i >= bounds.size()) return bounds.empty() ? 0 : bounds.back();  // unbounded bucket
      const double lo = bucketLowerBound(bounds, i);
      return lo + (bounds[i] - lo) * ((rank - seen) / in_bucket);
    }
    seen += in_bucket;
  }
  return bounds.empty() ? 0 : bounds.back();
}

double histogramCountAbove(std::span<const double> bounds, std::span<const std::uint64_t> buckets,
                           double threshold) {
  double above = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const auto in_bucket = static_cast<double>(buckets[i]);
    const double lo = bucketLowerBound(bounds, i);
    if (i >= bounds.size()) {
      // Unbounded: beyond the last bound, so beyond any threshold the bounds can resolve.
      above += in_bucket;
      continue;
    }
    const double hi = bounds[i];
    if (threshold <= lo) {
      above += in_bucket;
    } else if (threshold < hi) {
      above += in_bucket * (hi - threshold) / (hi - lo);
    }
  }
  return above;
}

double normalQuantile(double p) {
  // Bisection on the normal CDF (0.5 * erfc(-z / sqrt 2)): exact to 1e-12 in 60 steps, and
  // called once per analysis.
  double lo = -40;
  double hi = 40;
  for (int i = 0; i < 100; ++i) {
    const double mid = (lo + hi) / 2;
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return (lo + hi) / 2;
}

CanaryAnalysis analyzeCanary(const CanarySample& baseline, const CanarySample& canary,
                             std::span<const double> bounds,
                             const CanaryAnalysisSettings& settings) {
  CanaryAnalysis a;
  a.critical_z = normalQuantile(settings.confidence);
  const auto nb = static_cast<double>(baseline.requests);
  const auto nc = static_cast<double>(canary.requests);
  if (baseline.requests > 0) a.baseline_error_rate = static_cast<double>(baseline.errors) / nb;
  if (canary.requests > 0) a.canary_error_rate = static_cast<double>(canary.errors) / nc;
  a.baseline_latency = histogramQuantile(bounds, baseline.latency, settings.quantile);
  a.canary_latency = histogramQuantile(bounds, canary.latency, settings.quantile);
  if (baseline.requests < settings.min_requests || canary.requests < settings.min_requests) {
    return a;
  }

  // Errors: Agresti-Caffo adjusted proportions.
  const double pb = (static_cast<double>(baseline.errors) + 1) / (nb + 2);
  const double pc = (static_cast<double>(canary.errors) + 1) / (nc + 2);
  const double sd = std::sqrt(pb * (1 - pb) / (nb + 2) + pc * (1 - pc) / (nc + 2));
  a.error_z = (pc - pb - settings.max_error_increase) / sd;

  // Latency: the share of canary requests beyond what a canary within the margin would allow.
  // A baseline whose quantile is past the last bound (long polls, streams) gives no threshold
  // the buckets can resolve: latency is not judged then.
  a.latency_threshold = std::max(a.baseline_latency * settings.max_latency_ratio,
                                 a.baseline_latency + settings.min_latency_increase);
  const auto latency_n = static_cast<double>(bucketTotal(canary.latency));
  const bool resolvable = bounds.empty() || a.baseline_latency < bounds.back();
  if (latency_n > 0 && resolvable) {
    const double above = histogramCountAbove(bounds, canary.latency, a.latency_threshold);
    a.canary_slow_share = above / latency_n;
    a.latency_z = shareZ(above, 1 - settings.quantile, latency_n);
  }

  if (a.error_z > a.critical_z) {
    a.verdict = CanaryAnalysis::Verdict::ErrorRate;
  } else if (a.latency_z > a.critical_z) {
    a.verdict = CanaryAnalysis::Verdict::Latency;
  } else {
    a.verdict = CanaryAnalysis::Verdict::Healthy;
  }
  return a;
}

}  // namespace sluice::resilience
