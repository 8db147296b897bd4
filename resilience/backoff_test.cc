#include "resilience/backoff.h"

#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Backoff::Settings settings(Jitter jitter) {
  return Backoff::Settings{
      .base = milliseconds(100), .cap = seconds(2), .multiplier = 2.0, .jitter = jitter};
}

TEST(Backoff, ValidateAcceptsDefaultsAndExplainsBadSettings) {
  EXPECT_EQ(Backoff::validate(Backoff::Settings{}), std::nullopt);
  auto s = settings(Jitter::None);
  s.base = Duration::zero();
  EXPECT_EQ(Backoff::validate(s), "base must be positive");
  s = settings(Jitter::None);
  s.cap = milliseconds(99);
  EXPECT_EQ(Backoff::validate(s), "cap must be at least base");
  s = settings(Jitter::None);
  s.multiplier = 0.5;
  EXPECT_EQ(Backoff::validate(s), "multiplier must be finite and at least 1");
  s.multiplier = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(Backoff::validate(s).has_value());
}

TEST(Backoff, NoJitterDoublesUpToTheCap) {
  Backoff backoff(settings(Jitter::None));
  EXPECT_EQ(backoff.next(0.5), milliseconds(100));
  EXPECT_EQ(backoff.next(0.5), milliseconds(200));
  EXPECT_EQ(backoff.next(0.5), milliseconds(400));
  EXPECT_EQ(backoff.next(0.5), milliseconds(800));
  EXPECT_EQ(backoff.next(0.5), milliseconds(1600));
  EXPECT_EQ(backoff.next(0.5), seconds(2));
  EXPECT_EQ(backoff.next(0.5), seconds(2));
  EXPECT_EQ(backoff.attempts(), 7U);
}

TEST(Backoff, FullJitterScalesTheExponentialByU) {
  Backoff backoff(settings(Jitter::Full));
  EXPECT_EQ(backoff.next(0.0), Duration::zero());
  EXPECT_EQ(backoff.next(0.5), milliseconds(100));   // 0.5 * 200 ms
  EXPECT_EQ(backoff.next(0.25), milliseconds(100));  // 0.25 * 400 ms
}

TEST(Backoff, EqualJitterKeepsAtLeastHalf) {
  Backoff backoff(settings(Jitter::Equal));
  EXPECT_EQ(backoff.next(0.0), milliseconds(50));
  EXPECT_EQ(backoff.next(0.5), milliseconds(150));  // 100 + 0.5 * 100
}

TEST(Backoff, DecorrelatedJitterDrawsBetweenBaseAndThreeTimesThePrevious) {
  Backoff backoff(settings(Jitter::Decorrelated));
  EXPECT_EQ(backoff.next(0.0), milliseconds(100));  // [100, 300) at u = 0
  EXPECT_EQ(backoff.next(0.5), milliseconds(200));  // 100 + 0.5 * (300 - 100)
  EXPECT_EQ(backoff.next(0.5), milliseconds(350));  // 100 + 0.5 * (600 - 100)
}

TEST(Backoff, DecorrelatedJitterIsCapped) {
  Backoff backoff(settings(Jitter::Decorrelated));
  Duration last{};
  for (int i = 0; i < 50; ++i) {
    last = backoff.next(0.999);
  }
  EXPECT_EQ(last, seconds(2));
}

TEST(Backoff, UOutsideTheUnitIntervalIsClamped) {
  const auto s = settings(Jitter::Full);
  EXPECT_EQ(Backoff::delay(s, 0, s.base, -1.0), Duration::zero());
  EXPECT_EQ(Backoff::delay(s, 0, s.base, std::nan("")), Duration::zero());
  const Duration high = Backoff::delay(s, 0, s.base, 7.0);
  EXPECT_LT(high, milliseconds(100));
  EXPECT_GT(high, milliseconds(99));
}

TEST(Backoff, HugeAttemptCountsSaturateAtTheCap) {
  const auto s = settings(Jitter::None);
  EXPECT_EQ(Backoff::delay(s, 5000, s.base, 0.0), seconds(2));
  EXPECT_EQ(Backoff::delay(s, std::numeric_limits<std::uint32_t>::max(), s.base, 0.0), seconds(2));
}

TEST(Backoff, MaximalCapDoesNotOverflow) {
  Backoff::Settings s{
      .base = seconds(1), .cap = Duration::max(), .multiplier = 10.0, .jitter = Jitter::None};
  EXPECT_EQ(Backoff::delay(s, 1000, s.base, 0.0), Duration::max());
  s.jitter = Jitter::Decorrelated;
  EXPECT_EQ(Backoff::delay(s, 0, Duration::max(), 0.9999999), Duration::max());
}

TEST(Backoff, MultiplierOneIsConstant) {
  auto s = settings(Jitter::None);
  s.multiplier = 1.0;
  Backoff backoff(s);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(backoff.next(0.3), milliseconds(100));
  }
}

TEST(Backoff, ResetStartsOver) {
  Backoff backoff(settings(Jitter::None));
  (void)backoff.next(0.0);
  (void)backoff.next(0.0);
  backoff.reset();
  EXPECT_EQ(backoff.attempts(), 0U);
  EXPECT_EQ(backoff.peek(0.0), milliseconds(100));
  EXPECT_EQ(backoff.attempts(), 0U);
}

// Resilience4j's IntervalFunction.ofRandomized(interval, randomizationFactor): "interval +/-
// randomizationFactor * interval", i.e. uniform in [interval * (1 - f), interval * (1 + f)).
// Multiplier 1 makes the exponential a fixed interval, as ofRandomized is.
Backoff::Settings symmetric(Duration base, double multiplier, double factor, Duration cap) {
  return Backoff::Settings{.base = base,
                           .cap = cap,
                           .multiplier = multiplier,
                           .jitter = Jitter::Symmetric,
                           .randomization_factor = factor};
}

constexpr double kJustBelowOne = 1.0 - 0x1.0p-53;

TEST(Backoff, SymmetricJitterDrawsWithinTheFactorOnBothSidesOfTheInterval) {
  const auto s = symmetric(seconds(1), 1.0, 0.5, seconds(10));
  EXPECT_EQ(Backoff::delay(s, 0, s.base, 0.0), milliseconds(500));
  EXPECT_EQ(Backoff::delay(s, 0, s.base, 0.25), milliseconds(750));
  EXPECT_EQ(Backoff::delay(s, 0, s.base, 0.5), milliseconds(1000));
  EXPECT_EQ(Backoff::delay(s, 0, s.base, 0.75), milliseconds(1250));
  const Duration top = Backoff::delay(s, 0, s.base, kJustBelowOne);
  // u < 1, so the upper end is open in exact arithmetic; in double it can round onto it.
  EXPECT_LE(top, milliseconds(1500));
  EXPECT_GE(top, milliseconds(1500) - std::chrono::nanoseconds(1));
  EXPECT_EQ(Backoff::delay(s, 7, s.base, 0.0), milliseconds(500));  // fixed interval: n is moot
}

// Resilience4j's defaults for ofExponentialRandomBackoff(): initial 500 ms, multiplier 1.5,
// factor 0.5: the n-th interval 500 * 1.5^n ms (500, 750, 1125, 1687.5) randomized by +/- 50 %.
TEST(Backoff, SymmetricJitterRandomizesEachExponentialStep) {
  Backoff middle(symmetric(milliseconds(500), 1.5, 0.5, seconds(60)));
  EXPECT_EQ(middle.next(0.5), milliseconds(500));
  EXPECT_EQ(middle.next(0.5), milliseconds(750));
  EXPECT_EQ(middle.next(0.5), milliseconds(1125));
  EXPECT_EQ(middle.next(0.5), std::chrono::microseconds(1'687'500));
  Backoff low(symmetric(milliseconds(500), 1.5, 0.5, seconds(60)));
  EXPECT_EQ(low.next(0.0), milliseconds(250));
  EXPECT_EQ(low.next(0.0), milliseconds(375));
  EXPECT_EQ(low.next(0.0), std::chrono::microseconds(562'500));
}

TEST(Backoff, SymmetricJitterWithFactorZeroIsNoJitter) {
  const auto s = symmetric(milliseconds(100), 2.0, 0.0, seconds(2));
  auto none = s;
  none.jitter = Jitter::None;
  for (std::uint32_t n = 0; n < 8; ++n) {
    for (const double u : {0.0, 0.3, kJustBelowOne}) {
      EXPECT_EQ(Backoff::delay(s, n, s.base, u), Backoff::delay(none, n, none.base, u));
    }
  }
}

// f = 1 spans [0, 2g): u = 0 gives 0 and the mean stays g (Full jitter's mean is g/2).
TEST(Backoff, SymmetricJitterWithFactorOneSpansZeroToTwiceTheInterval) {
  const auto s = symmetric(milliseconds(400), 2.0, 1.0, seconds(60));
  EXPECT_EQ(Backoff::delay(s, 1, s.base, 0.0), Duration::zero());
  EXPECT_EQ(Backoff::delay(s, 1, s.base, 0.5), milliseconds(800));
  EXPECT_LE(Backoff::delay(s, 1, s.base, kJustBelowOne), milliseconds(1600));
  EXPECT_GT(Backoff::delay(s, 1, s.base, kJustBelowOne), milliseconds(1599));
}

// Resilience4j's ofExponentialRandomBackoff(initial, multiplier, factor, maxInterval) randomizes
// the uncapped interval and then takes min(result, maxInterval): a draw above the cap is the cap,
// and once g * (1 - f) >= cap every draw is the cap.
TEST(Backoff, SymmetricJitterCapsTheRandomizedDelayNotTheInterval) {
  const auto s = symmetric(milliseconds(500), 2.0, 0.5, seconds(1));
  EXPECT_EQ(Backoff::delay(s, 1, s.base, 0.0), milliseconds(500));  // g = 1000: [500, 1500)
  EXPECT_EQ(Backoff::delay(s, 1, s.base, 0.25), milliseconds(750));
  EXPECT_EQ(Backoff::delay(s, 1, s.base, 0.9), seconds(1));  // 1400 ms, capped
  for (const double u : {0.0, 0.5, kJustBelowOne}) {
    EXPECT_EQ(Backoff::delay(s, 2, s.base, u), seconds(1));  // g = 2000: [1000, 3000) -> cap
  }
}

TEST(Backoff, SymmetricJitterSaturatesAtTheCapForHugeAttempts) {
  const auto s = symmetric(milliseconds(100), 2.0, 1.0, seconds(2));
  EXPECT_EQ(Backoff::delay(s, 5000, s.base, 0.0), Duration::zero());  // f = 1, u = 0: 0 * g
  EXPECT_EQ(Backoff::delay(s, 5000, s.base, 0.5), seconds(2));
  EXPECT_EQ(Backoff::delay(s, std::numeric_limits<std::uint32_t>::max(), s.base, 0.5), seconds(2));
  const auto max_cap = symmetric(seconds(1), 10.0, 0.5, Duration::max());
  EXPECT_EQ(Backoff::delay(max_cap, 1000, max_cap.base, kJustBelowOne), Duration::max());
}

TEST(Backoff, ValidateRequiresARandomizationFactorInTheUnitInterval) {
  auto s = symmetric(milliseconds(100), 2.0, 0.0, seconds(2));
  EXPECT_EQ(Backoff::validate(s), std::nullopt);
  s.randomization_factor = 1.0;
  EXPECT_EQ(Backoff::validate(s), std::nullopt);
  for (const double bad : {-0.01, 1.01, std::nan("")}) {
    s.randomization_factor = bad;
    EXPECT_EQ(Backoff::validate(s), "randomization_factor must be in [0, 1]");
  }
}

TEST(Backoff, AnOutOfRangeRandomizationFactorIsClamped) {
  const auto two = symmetric(milliseconds(400), 1.0, 2.0, seconds(60));
  EXPECT_EQ(Backoff::delay(two, 0, two.base, 0.0), Duration::zero());  // as f = 1
  const auto nan = symmetric(milliseconds(400), 1.0, std::nan(""), seconds(60));
  EXPECT_EQ(Backoff::delay(nan, 0, nan.base, 0.9), milliseconds(400));  // as f = 0
}

// Property: for every jitter mode and many seeded random draws, delays stay within the bounds the
// header documents.
TEST(Backoff, DelaysStayWithinTheirDocumentedBounds) {
  for (const Jitter jitter :
       {Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated, Jitter::Symmetric}) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      std::mt19937_64 rng(seed);
      const auto s = settings(jitter);
      Backoff backoff(s);
      for (std::uint32_t n = 0; n < 40; ++n) {
        const double uncapped = 100.0 * std::pow(2.0, static_cast<double>(n));
        const double exponential = std::min(2000.0, uncapped);
        const auto ms = std::chrono::duration<double, std::milli>(backoff.next(rng)).count();
        ASSERT_GE(ms, 0.0);
        ASSERT_LE(ms, 2000.0);
        switch (jitter) {
          case Jitter::None:
            ASSERT_DOUBLE_EQ(ms, exponential);
            break;
          case Jitter::Full:
            ASSERT_LE(ms, exponential);
            break;
          case Jitter::Equal:
            ASSERT_GE(ms, exponential / 2);
            ASSERT_LE(ms, exponential);
            break;
          case Jitter::Decorrelated:
            ASSERT_GE(ms, 100.0);
            break;
          case Jitter::Symmetric:  // factor 0.5: [g/2, 3g/2), then capped
            ASSERT_GE(ms, std::min(2000.0, uncapped * 0.5) - 1e-6);
            ASSERT_LE(ms, std::min(2000.0, uncapped * 1.5));
            break;
        }
      }
    }
  }
}

}  // namespace
}  // namespace sluice::resilience
