#include "resilience/backoff.h"

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

// Property: for every jitter mode and many seeded random draws, delays stay within the bounds the
// header documents.
TEST(Backoff, DelaysStayWithinTheirDocumentedBounds) {
  for (const Jitter jitter : {Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated}) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      std::mt19937_64 rng(seed);
      const auto s = settings(jitter);
      Backoff backoff(s);
      for (std::uint32_t n = 0; n < 40; ++n) {
        const double exponential = std::min(2000.0, 100.0 * std::pow(2.0, static_cast<double>(n)));
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
        }
      }
    }
  }
}

}  // namespace
}  // namespace sluice::resilience
