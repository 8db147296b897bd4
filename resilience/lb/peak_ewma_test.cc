#include "resilience/lb/peak_ewma.h"

#include <chrono>
#include <cmath>

#include <gtest/gtest.h>

#include "resilience/clock.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

PeakEwma::Settings settings(milliseconds initial, seconds decay = seconds(10)) {
  PeakEwma::Settings s;
  s.initial_rtt = initial;
  s.decay_time = decay;
  return s;
}

TEST(PeakEwma, StartsAtTheInitialRtt) {
  ManualClock clock;
  const PeakEwma ewma(settings(milliseconds(30)), clock.now());
  EXPECT_DOUBLE_EQ(ewma.estimateNanos(clock.now()), 30e6);
  EXPECT_EQ(ewma.estimate(clock.now()), milliseconds(30));
}

TEST(PeakEwma, DecaysTowardsZeroWithoutResponses) {
  ManualClock clock;
  const PeakEwma ewma(settings(milliseconds(30)), clock.now());
  clock.advance(seconds(10));  // one decay time
  EXPECT_NEAR(ewma.estimateNanos(clock.now()), 30e6 * std::exp(-1.0), 1e-3);
  clock.advance(std::chrono::hours(1000));
  EXPECT_EQ(ewma.estimateNanos(clock.now()), 0.0);
}

TEST(PeakEwma, ASlowerResponseRaisesTheEstimateAtOnce) {
  ManualClock clock;
  PeakEwma ewma(settings(milliseconds(10)), clock.now());
  clock.advance(milliseconds(1));
  ewma.observe(milliseconds(500), clock.now());
  EXPECT_DOUBLE_EQ(ewma.estimateNanos(clock.now()), 500e6);
}

// Verifies Finagle's EWMA step: E' = E w + rtt (1 - w) with w = exp(-dt / tau), the old estimate
// decayed once (it used to be decayed twice, (E w) w).
TEST(PeakEwma, AFasterResponseMovesTheEstimateByTheTimeWeight) {
  ManualClock clock;
  PeakEwma ewma(settings(milliseconds(100)), clock.now());
  clock.advance(seconds(1));
  ewma.observe(milliseconds(20), clock.now());
  const double w = std::exp(-0.1);
  EXPECT_NEAR(ewma.estimateNanos(clock.now()), 100e6 * w + 20e6 * (1 - w), 1e-3);
}

// Where Finagle and tower compare a response with the undecayed estimate, this compares it with
// the estimate as read now: a response slower than what the balancer currently sees is a peak.
// (Finagle's E = 100 ms decayed to 50 ms, then a 60 ms response, gives 80 ms: more than both the
// reading and the response.)
TEST(PeakEwma, AResponseSlowerThanTheCurrentReadingIsAPeak) {
  ManualClock clock;
  PeakEwma ewma(settings(milliseconds(100)), clock.now());
  clock.advance(nanoseconds(static_cast<std::int64_t>(10e9 * std::log(2.0))));  // w = 1/2
  ASSERT_NEAR(ewma.estimateNanos(clock.now()), 50e6, 1.0);
  ewma.observe(milliseconds(60), clock.now());
  EXPECT_DOUBLE_EQ(ewma.estimateNanos(clock.now()), 60e6);
}

TEST(PeakEwma, SameInstantFasterResponseDoesNotMoveIt) {
  ManualClock clock;
  PeakEwma ewma(settings(milliseconds(100)), clock.now());
  ewma.observe(milliseconds(20), clock.now());
  EXPECT_DOUBLE_EQ(ewma.estimateNanos(clock.now()), 100e6);
}

TEST(PeakEwma, TimeGoingBackwardsCountsAsTheLastObservation) {
  ManualClock clock;
  PeakEwma ewma(settings(milliseconds(100)), clock.now());
  const TimePoint start = clock.now();
  clock.advance(seconds(5));
  ewma.observe(milliseconds(200), clock.now());
  EXPECT_DOUBLE_EQ(ewma.estimateNanos(start), 200e6);  // earlier read: no decay, no growth
  ewma.observe(milliseconds(50), start);               // earlier sample: as if at the stamp
  EXPECT_DOUBLE_EQ(ewma.estimateNanos(clock.now()), 200e6);
  EXPECT_EQ(ewma.lastObservation(), clock.now());
}

TEST(PeakEwma, NegativeRttCountsAsZero) {
  ManualClock clock;
  PeakEwma ewma(settings(milliseconds(0)), clock.now());
  ewma.observe(milliseconds(-5), clock.now());
  EXPECT_EQ(ewma.estimateNanos(clock.now()), 0.0);
}

TEST(PeakEwma, ValidateExplainsBadSettings) {
  EXPECT_EQ(PeakEwma::validate(PeakEwma::Settings{}), std::nullopt);
  EXPECT_NE(PeakEwma::validate(settings(milliseconds(1), seconds(0))), std::nullopt);
  EXPECT_NE(PeakEwma::validate(settings(milliseconds(-1))), std::nullopt);
}

}  // namespace
}  // namespace sluice::resilience
