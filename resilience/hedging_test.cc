#include "resilience/hedging.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using Outcome = HedgeCoordinator::Outcome;
using Verdict = HedgeCoordinator::Verdict;

constexpr HedgingPolicy kPolicy{.delay = milliseconds(50), .max_extra_attempts = 2};

TEST(HedgingPolicy, ValidateExplainsBadPolicies) {
  EXPECT_EQ(HedgingPolicy::validate(HedgingPolicy{}), std::nullopt);
  EXPECT_EQ(HedgingPolicy::validate({.delay = milliseconds(-1)}), "delay must be >= 0");
  EXPECT_EQ(HedgingPolicy::validate({.max_extra_attempts = 65}),
            "max_extra_attempts must be at most 64");
}

TEST(HedgeCoordinator, FirstAttemptLaunchesImmediately) {
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0);
  const auto step = hedge.poll(kT0);
  ASSERT_TRUE(step.launch);
  EXPECT_EQ(step.launch->index, 0U);
  EXPECT_FALSE(step.done);
  EXPECT_EQ(step.wake_at, kT0 + milliseconds(50));
  EXPECT_EQ(hedge.launched(), 1U);
}

// Verifies the delay boundary: the backup launches at exactly last launch + delay.
TEST(HedgeCoordinator, BackupLaunchesExactlyAfterTheDelay) {
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0);
  (void)hedge.poll(kT0);
  const auto early = hedge.poll(kT0 + milliseconds(50) - nanoseconds(1));
  EXPECT_FALSE(early.launch);
  EXPECT_EQ(early.wake_at, kT0 + milliseconds(50));
  const auto due = hedge.poll(kT0 + milliseconds(50));
  ASSERT_TRUE(due.launch);
  EXPECT_EQ(due.launch->index, 1U);
  EXPECT_EQ(due.wake_at, kT0 + milliseconds(100));
  const auto last = hedge.poll(kT0 + milliseconds(100));
  ASSERT_TRUE(last.launch);
  EXPECT_EQ(last.launch->index, 2U);
  EXPECT_EQ(last.wake_at, std::nullopt);  // max_extra_attempts reached
  EXPECT_FALSE(hedge.poll(kT0 + milliseconds(500)).launch);
  EXPECT_EQ(hedge.launched(), 3U);
}

TEST(HedgeCoordinator, TimeGoingBackwardsLaunchesNothingEarly) {
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0);
  (void)hedge.poll(kT0);
  EXPECT_FALSE(hedge.poll(kT0 - milliseconds(100)).launch);
}

TEST(HedgeCoordinator, FirstSuccessWinsAndCancelsTheOthers) {
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0);
  const auto a0 = hedge.poll(kT0).launch;
  const auto a1 = hedge.poll(kT0 + milliseconds(50)).launch;
  ASSERT_TRUE(a0 && a1);
  EXPECT_EQ(hedge.report(1, Outcome::Success, kT0 + milliseconds(60)), Verdict::Final);
  EXPECT_EQ(a0->token.reason(), CancelReason::Cancelled);
  EXPECT_FALSE(a1->token.isCancelled());  // the winner is left alone
  EXPECT_FALSE(request.isCancelled());    // never the parent
  EXPECT_EQ(hedge.winner(), 1U);
  EXPECT_TRUE(hedge.done());
  EXPECT_TRUE(hedge.poll(kT0 + milliseconds(100)).done);
  EXPECT_EQ(hedge.report(0, Outcome::Success, kT0 + milliseconds(70)), Verdict::Superseded);
}

TEST(HedgeCoordinator, FatalFailureIsFinal) {
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0);
  const auto a0 = hedge.poll(kT0).launch;
  const auto a1 = hedge.poll(kT0 + milliseconds(50)).launch;
  EXPECT_EQ(hedge.report(0, Outcome::FatalFailure, kT0 + milliseconds(55)), Verdict::Final);
  EXPECT_TRUE(a1->token.isCancelled());
  EXPECT_EQ(hedge.winner(), 0U);
}

TEST(HedgeCoordinator, NonFatalFailureLaunchesTheNextAttemptAtOnce) {
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0);
  (void)hedge.poll(kT0);
  EXPECT_EQ(hedge.report(0, Outcome::Failure, kT0 + milliseconds(1)), Verdict::Wait);
  const auto step = hedge.poll(kT0 + milliseconds(1));
  ASSERT_TRUE(step.launch);
  EXPECT_EQ(step.launch->index, 1U);
}

TEST(HedgeCoordinator, FailureOfTheLastPossibleAttemptIsFinal) {
  CancellationSource request;
  HedgeCoordinator hedge({.delay = milliseconds(50), .max_extra_attempts = 1}, request.token(),
                         kT0);
  (void)hedge.poll(kT0);
  (void)hedge.poll(kT0 + milliseconds(50));
  EXPECT_EQ(hedge.report(0, Outcome::Failure, kT0 + milliseconds(60)), Verdict::Wait);
  EXPECT_EQ(hedge.report(1, Outcome::Failure, kT0 + milliseconds(61)), Verdict::Final);
  EXPECT_EQ(hedge.winner(), 1U);
}

TEST(HedgeCoordinator, NoHedgingMeansOneAttempt) {
  CancellationSource request;
  HedgeCoordinator hedge({.delay = milliseconds(50), .max_extra_attempts = 0}, request.token(),
                         kT0);
  const auto step = hedge.poll(kT0);
  EXPECT_TRUE(step.launch);
  EXPECT_EQ(step.wake_at, std::nullopt);
  EXPECT_EQ(hedge.report(0, Outcome::Failure, kT0), Verdict::Final);
}

TEST(HedgeCoordinator, DuplicateAndUnknownReportsAreSuperseded) {
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0);
  (void)hedge.poll(kT0);
  (void)hedge.poll(kT0 + milliseconds(50));
  EXPECT_EQ(hedge.report(7, Outcome::Success, kT0), Verdict::Superseded);
  EXPECT_EQ(hedge.report(0, Outcome::Failure, kT0 + milliseconds(51)), Verdict::Wait);
  EXPECT_EQ(hedge.report(0, Outcome::Success, kT0 + milliseconds(52)), Verdict::Superseded);
  EXPECT_FALSE(hedge.done());
}

TEST(HedgeCoordinator, ZeroDelayLaunchesEveryAttemptAtOnce) {
  CancellationSource request;
  HedgeCoordinator hedge({.delay = Duration::zero(), .max_extra_attempts = 3}, request.token(),
                         kT0);
  std::uint32_t launched = 0;
  while (hedge.poll(kT0).launch) {
    ++launched;
  }
  EXPECT_EQ(launched, 4U);
}

TEST(HedgeCoordinator, CancellingTheRequestCancelsAttemptsAndStopsEverything) {
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0);
  const auto a0 = hedge.poll(kT0).launch;
  request.cancel();
  EXPECT_EQ(a0->token.reason(), CancelReason::Cancelled);
  EXPECT_EQ(hedge.report(0, Outcome::Success, kT0), Verdict::Superseded);
  EXPECT_TRUE(hedge.poll(kT0 + milliseconds(50)).done);
  EXPECT_EQ(hedge.winner(), std::nullopt);
}

TEST(HedgeCoordinator, PassedRequestDeadlineExpiresAttemptsAndStopsLaunching) {
  CancellationSource request(Deadline::at(kT0 + milliseconds(80)));
  HedgeCoordinator hedge(kPolicy, request.token(), kT0);
  const auto a0 = hedge.poll(kT0).launch;
  const auto a1 = hedge.poll(kT0 + milliseconds(50)).launch;
  EXPECT_EQ(a1->token.deadline(), Deadline::at(kT0 + milliseconds(80)));
  const auto step = hedge.poll(kT0 + milliseconds(80));
  EXPECT_TRUE(step.done);
  EXPECT_FALSE(step.launch);
  EXPECT_EQ(a0->token.reason(), CancelReason::DeadlineExceeded);
  EXPECT_EQ(a1->token.reason(), CancelReason::DeadlineExceeded);
  EXPECT_FALSE(request.isCancelled());  // the owner observes its own deadline
}

TEST(HedgeCoordinator, ExplicitCancelCancelsOutstandingAttempts) {
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0);
  const auto a0 = hedge.poll(kT0).launch;
  hedge.cancel();
  EXPECT_TRUE(a0->token.isCancelled());
  EXPECT_TRUE(hedge.done());
  EXPECT_EQ(hedge.report(0, Outcome::Success, kT0), Verdict::Superseded);
}

TEST(HedgeCoordinator, BudgetRefusalStopsHedgingAndMakesTheLastFailureFinal) {
  RetryBudget budget(RetryBudget::Settings{.retry_ratio = 0, .min_retries_per_second = 0});
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0, &budget);
  EXPECT_TRUE(hedge.poll(kT0).launch);  // the first attempt needs no budget
  const auto step = hedge.poll(kT0 + milliseconds(50));
  EXPECT_FALSE(step.launch);
  EXPECT_EQ(step.wake_at, std::nullopt);
  EXPECT_EQ(hedge.report(0, Outcome::Failure, kT0 + milliseconds(60)), Verdict::Final);
}

TEST(HedgeCoordinator, BackupsHoldBudgetPermitsUntilTheyReport) {
  RetryBudget budget(RetryBudget::Settings{.retry_ratio = 0, .min_retries_per_second = 0.2});
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0, &budget);
  (void)hedge.poll(kT0);
  ASSERT_TRUE(hedge.poll(kT0 + milliseconds(50)).launch);
  EXPECT_EQ(budget.inFlightRetries(), 1U);
  EXPECT_EQ(hedge.report(1, Outcome::Failure, kT0 + milliseconds(55)), Verdict::Wait);
  EXPECT_EQ(budget.inFlightRetries(), 0U);
  EXPECT_EQ(hedge.report(0, Outcome::Success, kT0 + milliseconds(56)), Verdict::Final);
}

TEST(HedgeCoordinator, FailureWithNothingOutstandingReservesTheNextBackupsBudget) {
  RetryBudget budget(RetryBudget::Settings{.retry_ratio = 0, .min_retries_per_second = 0.1});
  CancellationSource request;
  HedgeCoordinator hedge(kPolicy, request.token(), kT0, &budget);
  (void)hedge.poll(kT0);
  EXPECT_EQ(hedge.report(0, Outcome::Failure, kT0 + milliseconds(1)), Verdict::Wait);
  EXPECT_EQ(budget.inFlightRetries(), 1U);  // reserved for attempt 1
  const auto step = hedge.poll(kT0 + milliseconds(1));
  ASSERT_TRUE(step.launch);
  EXPECT_EQ(budget.snapshot(kT0).retries, 1U);  // the reservation was used, not a second permit
  // Budget (1 retry per 10 s) is now spent: attempt 1's failure is final.
  EXPECT_EQ(hedge.report(1, Outcome::Failure, kT0 + milliseconds(2)), Verdict::Final);
  EXPECT_EQ(budget.inFlightRetries(), 0U);
}

TEST(HedgeCoordinatorStress, ConcurrentReportsProduceExactlyOneFinal) {
  for (int round = 0; round < 200; ++round) {
    CancellationSource request;
    HedgeCoordinator hedge({.delay = Duration::zero(), .max_extra_attempts = 3}, request.token(),
                           kT0);
    std::vector<HedgeCoordinator::Attempt> attempts;
    while (auto step = hedge.poll(kT0).launch) {
      attempts.push_back(*step);
    }
    std::vector<Verdict> verdicts(attempts.size());
    std::vector<std::thread> threads;
    for (std::uint32_t i = 0; i < attempts.size(); ++i) {
      threads.emplace_back([&, i] {
        const Outcome outcome = i % 2 == 0 ? Outcome::Success : Outcome::Failure;
        verdicts[i] = hedge.report(i, outcome, kT0);
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
    int finals = 0;
    for (std::size_t i = 0; i < attempts.size(); ++i) {
      // Reported before the decision (Wait) or the winner (Final): left alone. Still outstanding
      // when the decision was made (Superseded): cancelled.
      if (verdicts[i] == Verdict::Final) {
        ++finals;
      }
      ASSERT_EQ(attempts[i].token.isCancelled(), verdicts[i] == Verdict::Superseded) << i;
    }
    ASSERT_EQ(finals, 1);
    ASSERT_TRUE(hedge.winner().has_value());
    ASSERT_EQ(verdicts[*hedge.winner()], Verdict::Final);
  }
}

}  // namespace
}  // namespace sluice::resilience
