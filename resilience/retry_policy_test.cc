#include "resilience/retry_policy.h"

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using RetryVerdict = RetryPolicy::Verdict;

// Deterministic backoff (no jitter): 100 ms, 200 ms, 400 ms, ... capped at 10 s.
RetryPolicy::Settings deterministicSettings(std::uint32_t max_attempts = 5) {
  return RetryPolicy::Settings{
      .max_attempts = max_attempts,
      .backoff = Backoff::Settings{.base = milliseconds(100),
                                   .cap = seconds(10),
                                   .multiplier = 2.0,
                                   .jitter = Jitter::None},
  };
}

RetryPolicy::Failure failureAt(TimePoint now, Deadline deadline = Deadline::infinite(),
                               std::optional<Duration> retry_after = std::nullopt) {
  return RetryPolicy::Failure{.now = now, .deadline = deadline, .retry_after = retry_after};
}

TEST(RetryPolicy, ValidateExplainsBadSettings) {
  EXPECT_EQ(RetryPolicy::validate(RetryPolicy::Settings{}), std::nullopt);
  auto s = deterministicSettings();
  s.max_attempts = 0;
  EXPECT_EQ(RetryPolicy::validate(s), "max_attempts must be at least 1");
  s = deterministicSettings();
  s.backoff.base = Duration::zero();
  EXPECT_EQ(RetryPolicy::validate(s), "backoff: base must be positive");
  s = deterministicSettings();
  s.max_retry_after = milliseconds(-1);
  EXPECT_EQ(RetryPolicy::validate(s), "max_retry_after must be >= 0");
  s = deterministicSettings();
  s.min_attempt_time = milliseconds(-1);
  EXPECT_EQ(RetryPolicy::validate(s), "min_attempt_time must be >= 0");
}

TEST(RetryPolicy, MaxAttemptsIncludesTheFirstAttempt) {
  RetryPolicy policy(deterministicSettings(3));
  EXPECT_EQ(policy.onFailure(failureAt(kT0)).verdict, RetryVerdict::Retry);
  EXPECT_EQ(policy.onFailure(failureAt(kT0)).verdict, RetryVerdict::Retry);
  EXPECT_EQ(policy.onFailure(failureAt(kT0)).verdict, RetryVerdict::AttemptsExhausted);
  EXPECT_EQ(policy.failedAttempts(), 3U);
}

TEST(RetryPolicy, OneAttemptNeverRetries) {
  RetryPolicy policy(deterministicSettings(1));
  const auto decision = policy.onFailure(failureAt(kT0));
  EXPECT_FALSE(decision);
  EXPECT_EQ(decision.verdict, RetryVerdict::AttemptsExhausted);
}

TEST(RetryPolicy, DelaysFollowTheBackoff) {
  RetryPolicy policy(deterministicSettings());
  EXPECT_EQ(policy.onFailure(failureAt(kT0)).delay, milliseconds(100));
  EXPECT_EQ(policy.onFailure(failureAt(kT0)).delay, milliseconds(200));
  EXPECT_EQ(policy.onFailure(failureAt(kT0)).delay, milliseconds(400));
}

TEST(RetryPolicy, GivesUpOnceTheDeadlineHasPassed) {
  RetryPolicy policy(deterministicSettings());
  EXPECT_EQ(policy.onFailure(failureAt(kT0, Deadline::at(kT0))).verdict,
            RetryVerdict::DeadlineExceeded);
}

// Verifies the boundary: retry only if delay < remaining (100 ms delay; deadline 1 ns either side).
TEST(RetryPolicy, RetriesOnlyIfTheDelayEndsBeforeTheDeadline) {
  const Duration delay = milliseconds(100);
  EXPECT_EQ(RetryPolicy(deterministicSettings())
                .onFailure(failureAt(kT0, Deadline::at(kT0 + delay + nanoseconds(1))))
                .verdict,
            RetryVerdict::Retry);
  EXPECT_EQ(RetryPolicy(deterministicSettings())
                .onFailure(failureAt(kT0, Deadline::at(kT0 + delay)))
                .verdict,
            RetryVerdict::DeadlineExceeded);
  EXPECT_EQ(RetryPolicy(deterministicSettings())
                .onFailure(failureAt(kT0, Deadline::at(kT0 + delay - nanoseconds(1))))
                .verdict,
            RetryVerdict::DeadlineExceeded);
}

TEST(RetryPolicy, MinAttemptTimeMustFitAfterTheDelay) {
  auto s = deterministicSettings();
  s.min_attempt_time = milliseconds(50);
  const TimePoint boundary = kT0 + milliseconds(150);
  EXPECT_EQ(
      RetryPolicy(s).onFailure(failureAt(kT0, Deadline::at(boundary + nanoseconds(1)))).verdict,
      RetryVerdict::Retry);
  EXPECT_EQ(RetryPolicy(s).onFailure(failureAt(kT0, Deadline::at(boundary))).verdict,
            RetryVerdict::DeadlineExceeded);
}

TEST(RetryPolicy, RetryAfterLongerThanTheBackoffBecomesTheDelay) {
  RetryPolicy policy(deterministicSettings());
  const auto decision = policy.onFailure(failureAt(kT0, Deadline::infinite(), seconds(3)));
  EXPECT_EQ(decision.verdict, RetryVerdict::Retry);
  EXPECT_EQ(decision.delay, seconds(3));
  // The backoff still advanced underneath.
  EXPECT_EQ(policy.onFailure(failureAt(kT0)).delay, milliseconds(200));
}

TEST(RetryPolicy, RetryAfterShorterThanTheBackoffKeepsTheBackoff) {
  RetryPolicy policy(deterministicSettings());
  EXPECT_EQ(policy.onFailure(failureAt(kT0, Deadline::infinite(), milliseconds(10))).delay,
            milliseconds(100));
}

TEST(RetryPolicy, NegativeRetryAfterCountsAsZero) {
  RetryPolicy policy(deterministicSettings());
  EXPECT_EQ(policy.onFailure(failureAt(kT0, Deadline::infinite(), seconds(-5))).delay,
            milliseconds(100));
}

// Verifies the hint boundary: a hint equal to max_retry_after is honoured, 1 ns more gives up.
TEST(RetryPolicy, RetryAfterAboveTheMaximumGivesUp) {
  auto s = deterministicSettings();
  s.max_retry_after = seconds(30);
  EXPECT_EQ(RetryPolicy(s).onFailure(failureAt(kT0, Deadline::infinite(), seconds(30))).delay,
            seconds(30));
  EXPECT_EQ(RetryPolicy(s)
                .onFailure(failureAt(kT0, Deadline::infinite(), seconds(30) + nanoseconds(1)))
                .verdict,
            RetryVerdict::RetryAfterTooLong);
}

TEST(RetryPolicy, RetryAfterBeyondTheRemainingDeadlineGivesUp) {
  RetryPolicy policy(deterministicSettings());
  EXPECT_EQ(policy.onFailure(failureAt(kT0, Deadline::at(kT0 + seconds(2)), seconds(2))).verdict,
            RetryVerdict::DeadlineExceeded);
}

TEST(RetryPolicy, IgnoredRetryAfterDoesNothing) {
  auto s = deterministicSettings();
  s.retry_after = RetryPolicy::RetryAfterMode::Ignore;
  s.max_retry_after = seconds(1);
  const auto decision = RetryPolicy(s).onFailure(failureAt(kT0, Deadline::infinite(), seconds(60)));
  EXPECT_EQ(decision.verdict, RetryVerdict::Retry);
  EXPECT_EQ(decision.delay, milliseconds(100));
}

TEST(RetryPolicy, BudgetRefusalGivesUp) {
  RetryBudget budget(RetryBudget::Settings{.retry_ratio = 0, .min_retries_per_second = 0});
  RetryPolicy policy(deterministicSettings());
  EXPECT_EQ(policy.onFailure(failureAt(kT0), &budget).verdict, RetryVerdict::BudgetExhausted);
}

TEST(RetryPolicy, AdmittedRetryCarriesItsBudgetPermit) {
  RetryBudget budget(RetryBudget::Settings{.retry_ratio = 0, .min_retries_per_second = 0.1});
  RetryPolicy policy(deterministicSettings());
  {
    const auto decision = policy.onFailure(failureAt(kT0), &budget);
    EXPECT_TRUE(decision);
    EXPECT_TRUE(decision.budget_permit);
    EXPECT_EQ(budget.inFlightRetries(), 1U);
  }
  EXPECT_EQ(budget.inFlightRetries(), 0U);
}

TEST(RetryPolicy, GivingUpForAnotherReasonSpendsNoBudget) {
  RetryBudget budget(RetryBudget::Settings{.retry_ratio = 0, .min_retries_per_second = 10});
  RetryPolicy exhausted(deterministicSettings(1));
  EXPECT_EQ(exhausted.onFailure(failureAt(kT0), &budget).verdict, RetryVerdict::AttemptsExhausted);
  RetryPolicy late(deterministicSettings());
  EXPECT_EQ(late.onFailure(failureAt(kT0, Deadline::at(kT0)), &budget).verdict,
            RetryVerdict::DeadlineExceeded);
  EXPECT_EQ(budget.snapshot(kT0).retries, 0U);
}

TEST(RetryPolicy, VerdictsHaveNames) {
  EXPECT_STREQ(toString(RetryVerdict::Retry), "retry");
  EXPECT_STREQ(toString(RetryVerdict::AttemptsExhausted), "attempts_exhausted");
  EXPECT_STREQ(toString(RetryVerdict::DeadlineExceeded), "deadline_exceeded");
  EXPECT_STREQ(toString(RetryVerdict::RetryAfterTooLong), "retry_after_too_long");
  EXPECT_STREQ(toString(RetryVerdict::BudgetExhausted), "budget_exhausted");
}

}  // namespace
}  // namespace sluice::resilience
