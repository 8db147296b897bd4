#include "resilience/lb/weight_adjuster.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/clock.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

WeightAdjuster::Settings latencySettings(double min_samples = 10) {
  WeightAdjuster::Settings settings;
  settings.min_samples = min_samples;
  return settings;
}

WeightAdjuster::Settings utilizationSettings() {
  WeightAdjuster::Settings settings;
  settings.signal = WeightAdjuster::Signal::ReportedUtilization;
  settings.min_samples = 1;
  return settings;
}

void respond(WeightAdjuster& adjuster, std::size_t host, int count, milliseconds latency,
             int failures, TimePoint now) {
  for (int i = 0; i < count; ++i) {
    adjuster.recordResponse(host, latency, i >= failures, now);
  }
}

TEST(WeightAdjuster, WithoutDataEveryFactorIsOne) {
  ManualClock clock;
  const WeightAdjuster adjuster(latencySettings(), 3, clock.now());
  EXPECT_EQ(adjuster.factors(clock.now()), (std::vector<double>{1.0, 1.0, 1.0}));
  EXPECT_EQ(adjuster.effectiveWeights({5, 0, 7}, clock.now()),
            (std::vector<std::uint32_t>{5, 0, 7}));
}

// Verifies the latency formula: a host twice as slow as the fastest gets half the weight.
TEST(WeightAdjuster, SlowerHostGetsProportionallyLessWeight) {
  ManualClock clock;
  WeightAdjuster adjuster(latencySettings(), 3, clock.now());
  respond(adjuster, 0, 20, milliseconds(10), 0, clock.now());
  respond(adjuster, 1, 20, milliseconds(20), 0, clock.now());
  respond(adjuster, 2, 20, milliseconds(40), 0, clock.now());
  const std::vector<double> factors = adjuster.factors(clock.now());
  EXPECT_DOUBLE_EQ(factors[0], 1.0);
  EXPECT_DOUBLE_EQ(factors[1], 0.5);
  EXPECT_DOUBLE_EQ(factors[2], 0.25);
  EXPECT_EQ(adjuster.effectiveWeights({100, 100, 100}, clock.now()),
            (std::vector<std::uint32_t>{100, 50, 25}));
}

TEST(WeightAdjuster, ErrorsCutTheWeightInProportion) {
  ManualClock clock;
  WeightAdjuster adjuster(latencySettings(), 2, clock.now());
  respond(adjuster, 0, 20, milliseconds(10), 0, clock.now());
  respond(adjuster, 1, 20, milliseconds(10), 4, clock.now());  // 20 % errors
  EXPECT_DOUBLE_EQ(*adjuster.errorRate(1), 0.2);
  EXPECT_DOUBLE_EQ(adjuster.factors(clock.now())[1], 0.8);
}

TEST(WeightAdjuster, FactorsAreRelativeToTheBestHostAndFloored) {
  ManualClock clock;
  WeightAdjuster adjuster(latencySettings(), 3, clock.now());
  respond(adjuster, 0, 20, milliseconds(10), 10, clock.now());  // 50 % errors, fastest
  respond(adjuster, 1, 20, milliseconds(10), 0, clock.now());
  respond(adjuster, 2, 20, milliseconds(1000), 0, clock.now());  // 1 %: floored at 10 %
  const std::vector<double> factors = adjuster.factors(clock.now());
  EXPECT_DOUBLE_EQ(factors[0], 0.5);
  EXPECT_DOUBLE_EQ(factors[1], 1.0);
  EXPECT_DOUBLE_EQ(factors[2], 0.1);
}

TEST(WeightAdjuster, HostsWithoutEnoughSamplesGetTheMeanFactor) {
  ManualClock clock;
  WeightAdjuster adjuster(latencySettings(10), 3, clock.now());
  respond(adjuster, 0, 20, milliseconds(10), 0, clock.now());
  respond(adjuster, 1, 20, milliseconds(20), 0, clock.now());
  respond(adjuster, 2, 9, milliseconds(1000), 0, clock.now());  // 9 < 10 samples
  EXPECT_DOUBLE_EQ(adjuster.factors(clock.now())[2], 0.75);
}

// Verifies time decay: after 3 decay times the 20 samples count as 20 / e^3 ~ 1 < 10.
TEST(WeightAdjuster, OldSamplesFadeOutOfTheData) {
  ManualClock clock;
  WeightAdjuster adjuster(latencySettings(10), 2, clock.now());
  respond(adjuster, 0, 20, milliseconds(10), 0, clock.now());
  respond(adjuster, 1, 20, milliseconds(40), 0, clock.now());
  EXPECT_DOUBLE_EQ(adjuster.factors(clock.now())[1], 0.25);
  EXPECT_NEAR(adjuster.requestsPerSecond(1, clock.now()), 2.0, 1e-9);  // 20 / 10 s
  clock.advance(seconds(30));
  EXPECT_EQ(adjuster.factors(clock.now()), (std::vector<double>{1.0, 1.0}));
}

TEST(WeightAdjuster, NewSamplesOutweighDecayedOnes) {
  ManualClock clock;
  WeightAdjuster adjuster(latencySettings(1), 1, clock.now());
  respond(adjuster, 0, 10, milliseconds(100), 0, clock.now());
  clock.advance(seconds(10));
  respond(adjuster, 0, 10, milliseconds(10), 0, clock.now());
  const double old_weight = 10 * std::exp(-1.0);
  EXPECT_NEAR(*adjuster.meanLatencyNanos(0), (old_weight * 100e6 + 10 * 10e6) / (old_weight + 10),
              1e-3);
}

// capacity = 1 / (u + eps / qps * penalty), relative to the best (gRFC A58 without its qps factor).
TEST(WeightAdjuster, ReportedUtilizationFollowsTheA58Formula) {
  ManualClock clock;
  WeightAdjuster adjuster(utilizationSettings(), 3, clock.now());
  respond(adjuster, 0, 100, milliseconds(5), 0, clock.now());   // qps 10
  respond(adjuster, 1, 100, milliseconds(5), 0, clock.now());   // qps 10
  respond(adjuster, 2, 100, milliseconds(5), 20, clock.now());  // qps 10, eps 2
  adjuster.reportUtilization(0, 0.25, clock.now());
  adjuster.reportUtilization(1, 0.5, clock.now());
  adjuster.reportUtilization(2, 0.3, clock.now());
  EXPECT_EQ(adjuster.factors(clock.now()), (std::vector<double>{1.0, 1.0, 1.0}));  // blackout
  clock.advance(seconds(10));
  // capacities 1 / 0.25 = 4, 1 / 0.5 = 2, 1 / (0.3 + 0.2 * 1) = 2
  const std::vector<double> factors = adjuster.factors(clock.now());
  EXPECT_DOUBLE_EQ(factors[0], 1.0);
  EXPECT_DOUBLE_EQ(factors[1], 0.5);
  EXPECT_DOUBLE_EQ(factors[2], 0.5);
}

// The traffic this client sends a host is its own doing: a host that got fewer requests (its
// weight was lower) must not look less capable for it, or its weight would run down to the floor.
TEST(WeightAdjuster, ReportedUtilizationDoesNotFeedOnItsOwnTrafficShare) {
  ManualClock clock;
  WeightAdjuster adjuster(utilizationSettings(), 2, clock.now());
  adjuster.reportUtilization(0, 0.5, clock.now());
  adjuster.reportUtilization(1, 0.5, clock.now());
  clock.advance(seconds(10));
  respond(adjuster, 0, 400, milliseconds(5), 0, clock.now());
  respond(adjuster, 1, 100, milliseconds(5), 0, clock.now());
  EXPECT_EQ(adjuster.factors(clock.now()), (std::vector<double>{1.0, 1.0}));
}

TEST(WeightAdjuster, ReportsExpireAndRestartTheBlackout) {
  ManualClock clock;
  WeightAdjuster adjuster(utilizationSettings(), 2, clock.now());
  adjuster.reportUtilization(0, 0.2, clock.now());
  adjuster.reportUtilization(1, 0.8, clock.now());
  clock.advance(seconds(10));
  respond(adjuster, 0, 100, milliseconds(5), 0, clock.now());
  respond(adjuster, 1, 100, milliseconds(5), 0, clock.now());
  EXPECT_DOUBLE_EQ(adjuster.factors(clock.now())[1], 0.25);
  clock.advance(std::chrono::minutes(3) + seconds(1));  // report_ttl passed
  respond(adjuster, 0, 100, milliseconds(5), 0, clock.now());
  respond(adjuster, 1, 100, milliseconds(5), 0, clock.now());
  EXPECT_EQ(adjuster.factors(clock.now()), (std::vector<double>{1.0, 1.0}));
  adjuster.reportUtilization(1, 0.8, clock.now());  // a new run: blackout again
  adjuster.reportUtilization(0, 0.2, clock.now());
  EXPECT_EQ(adjuster.factors(clock.now()), (std::vector<double>{1.0, 1.0}));
  adjuster.reportUtilization(1, 0.0, clock.now());  // "no usable report"
  clock.advance(seconds(10));
  adjuster.reportUtilization(0, 0.2, clock.now());
  EXPECT_EQ(adjuster.factors(clock.now()), (std::vector<double>{1.0, 1.0}));  // 1 has none
}

TEST(WeightAdjuster, EffectiveWeightsRoundAndKeepPositiveBasesPositive) {
  ManualClock clock;
  WeightAdjuster::Settings settings = latencySettings(1);
  settings.min_factor = 0.001;
  WeightAdjuster adjuster(settings, 3, clock.now());
  respond(adjuster, 0, 5, milliseconds(1), 0, clock.now());
  respond(adjuster, 1, 5, milliseconds(3), 0, clock.now());
  respond(adjuster, 2, 5, milliseconds(1000), 0, clock.now());
  EXPECT_EQ(adjuster.effectiveWeights({10, 10, 10, 4}, clock.now()),
            (std::vector<std::uint32_t>{10, 3, 1, 4}));
}

TEST(WeightAdjuster, HostEditsAndOutOfRangeInput) {
  ManualClock clock;
  WeightAdjuster adjuster(latencySettings(1), 2, clock.now());
  respond(adjuster, 1, 5, milliseconds(40), 0, clock.now());
  adjuster.addHost(clock.now());
  respond(adjuster, 2, 5, milliseconds(10), 0, clock.now());
  EXPECT_DOUBLE_EQ(adjuster.factors(clock.now())[1], 0.25);
  adjuster.removeHost(0);
  EXPECT_EQ(adjuster.size(), 2U);
  EXPECT_DOUBLE_EQ(adjuster.factors(clock.now())[0], 0.25);
  adjuster.resetHost(0, clock.now());
  EXPECT_EQ(adjuster.meanLatencyNanos(0), std::nullopt);
  adjuster.recordResponse(7, milliseconds(1), true, clock.now());
  adjuster.reportUtilization(7, 0.5, clock.now());
  adjuster.reportUtilization(0, NAN, clock.now());
  EXPECT_EQ(adjuster.errorRate(7), std::nullopt);
}

TEST(WeightAdjuster, ValidateExplainsBadSettings) {
  EXPECT_EQ(WeightAdjuster::validate(WeightAdjuster::Settings{}), std::nullopt);
  WeightAdjuster::Settings bad;
  bad.min_factor = 0;
  EXPECT_NE(WeightAdjuster::validate(bad), std::nullopt);
  bad = WeightAdjuster::Settings{};
  bad.decay_time = seconds(0);
  EXPECT_NE(WeightAdjuster::validate(bad), std::nullopt);
  bad = WeightAdjuster::Settings{};
  bad.error_penalty = -1;
  EXPECT_NE(WeightAdjuster::validate(bad), std::nullopt);
  bad = WeightAdjuster::Settings{};
  bad.report_ttl = seconds(0);
  EXPECT_NE(WeightAdjuster::validate(bad), std::nullopt);
}

}  // namespace
}  // namespace sluice::resilience
