#include "resilience/canary_rollout.h"

#include <vector>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using RolloutAction = CanaryRollout::Action;
using RolloutState = CanaryRollout::State;

// Cumulative counters of one side, grown by hand: every request takes 5-10 ms unless slow.
struct CanarySide {
  CanarySample total{0, 0, std::vector<std::uint64_t>(3, 0)};  // bounds 10 ms, 100 ms, +Inf
  void serve(std::uint64_t n, std::uint64_t errors = 0, bool slow = false) {
    total.requests += n;
    total.errors += errors;
    total.latency[slow ? 1 : 0] += n;
  }
};

CanaryRollout::Settings rolloutSettingsForTest() {
  CanaryRollout::Settings s;
  s.steps = {0.1, 0.5};
  s.interval = std::chrono::seconds(10);
  s.analysis.min_requests = 50;
  s.latency_bounds = {0.010, 0.100};
  return s;
}

TEST(CanaryRollout, AHealthyCanaryStepsUpEachIntervalThenIsPromoted) {
  CanaryRollout r(rolloutSettingsForTest(), kT0);
  EXPECT_EQ(r.state(), RolloutState::Progressing);
  EXPECT_EQ(r.share(), 0.1);
  CanarySide base;
  CanarySide canary;
  EXPECT_FALSE(r.tick(base.total, canary.total, at(0)));  // the first counters open the window
  for (int s = 1; s <= 9; ++s) {
    base.serve(90);
    canary.serve(10);
    EXPECT_FALSE(r.tick(base.total, canary.total, at(s * 1000))) << s;  // healthy, not yet due
  }
  base.serve(90);
  canary.serve(10);
  auto d = r.tick(base.total, canary.total, at(10'000));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->action, RolloutAction::Step);
  EXPECT_EQ(d->share_before, 0.1);
  EXPECT_EQ(d->share, 0.5);
  EXPECT_EQ(d->canary_requests, 100U);
  EXPECT_EQ(d->analysis.verdict, CanaryAnalysis::Verdict::Healthy);
  EXPECT_EQ(r.step(), 1U);
  base.serve(500);
  canary.serve(500);
  d = r.tick(base.total, canary.total, at(20'000));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->action, RolloutAction::Promote);
  EXPECT_FALSE(d->manual);
  EXPECT_EQ(r.state(), RolloutState::Promoted);
  EXPECT_EQ(r.share(), 1);
  // Finished: nothing more happens, whatever the canary does now.
  canary.serve(100, 100);
  EXPECT_FALSE(r.tick(base.total, canary.total, at(40'000)));
  ASSERT_EQ(r.history().size(), 3U);
  EXPECT_EQ(r.history()[0].action, RolloutAction::Start);
  EXPECT_EQ(r.count(RolloutAction::Step), 1U);
}

TEST(CanaryRollout, AFailingCanaryIsRolledBackAsSoonAsTheEvidenceIsEnough) {
  CanaryRollout r(rolloutSettingsForTest(), kT0);
  CanarySide base;
  CanarySide canary;
  r.tick(base.total, canary.total, at(0));
  base.serve(500);
  canary.serve(40, 8);  // 20 % errors, but under min_requests: not judged yet
  EXPECT_FALSE(r.tick(base.total, canary.total, at(1000)));
  canary.serve(20, 4);
  const auto d = r.tick(base.total, canary.total, at(2000));  // long before the interval ends
  ASSERT_TRUE(d);
  EXPECT_EQ(d->action, RolloutAction::Rollback);
  EXPECT_EQ(d->analysis.verdict, CanaryAnalysis::Verdict::ErrorRate);
  EXPECT_NEAR(d->analysis.canary_error_rate, 0.2, 1e-9);
  EXPECT_EQ(d->canary_requests, 60U);
  EXPECT_EQ(r.state(), RolloutState::RolledBack);
  EXPECT_EQ(r.share(), 0);
}

TEST(CanaryRollout, ASlowCanaryIsRolledBack) {
  CanaryRollout r(rolloutSettingsForTest(), kT0);
  CanarySide base;
  CanarySide canary;
  r.tick(base.total, canary.total, at(0));
  base.serve(500);
  canary.serve(100, 0, /*slow=*/true);
  const auto d = r.tick(base.total, canary.total, at(1000));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->action, RolloutAction::Rollback);
  EXPECT_EQ(d->analysis.verdict, CanaryAnalysis::Verdict::Latency);
}

TEST(CanaryRollout, TooLittleTrafficHoldsOncePerIntervalAndKeepsTheEvidence) {
  CanaryRollout r(rolloutSettingsForTest(), kT0);
  CanarySide base;
  CanarySide canary;
  r.tick(base.total, canary.total, at(0));
  base.serve(500);
  canary.serve(30);
  EXPECT_FALSE(r.tick(base.total, canary.total, at(5000)));
  auto d = r.tick(base.total, canary.total, at(10'000));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->action, RolloutAction::Hold);
  EXPECT_EQ(r.share(), 0.1);
  EXPECT_FALSE(r.tick(base.total, canary.total, at(15'000)));  // one hold per interval
  ASSERT_TRUE(r.tick(base.total, canary.total, at(20'000)));   // the next interval's
  ASSERT_EQ(r.history().size(), 2U);  // start, and the run of holds as one entry
  EXPECT_EQ(r.history().back().repeats, 2U);
  EXPECT_EQ(r.count(RolloutAction::Hold), 2U);
  canary.serve(30);  // 60 in the window now: judged, healthy, and the step is long due
  d = r.tick(base.total, canary.total, at(21'000));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->action, RolloutAction::Step);
  EXPECT_EQ(d->canary_requests, 60U);
}

TEST(CanaryRollout, OperatorsPauseResumePromoteAbortAndRestart) {
  CanaryRollout r(rolloutSettingsForTest(), kT0);
  CanarySide base;
  CanarySide canary;
  r.tick(base.total, canary.total, at(0));
  EXPECT_FALSE(r.resume(at(1)));  // not paused
  auto d = r.pause(at(1000));
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->manual);
  EXPECT_EQ(r.state(), RolloutState::Paused);
  EXPECT_FALSE(r.pause(at(1001)));
  // Paused: a failing canary is not judged, and nothing moves.
  base.serve(500);
  canary.serve(100, 50);
  EXPECT_FALSE(r.tick(base.total, canary.total, at(20'000)));
  EXPECT_EQ(r.share(), 0.1);
  ASSERT_TRUE(r.resume(at(21'000)));
  // What happened while paused is not the new window's evidence.
  base.serve(100);
  canary.serve(100);
  EXPECT_FALSE(r.tick(base.total, canary.total, at(22'000)));
  EXPECT_EQ(r.state(), RolloutState::Progressing);
  d = r.promote(at(23'000));
  ASSERT_TRUE(d);
  EXPECT_EQ(r.share(), 1);
  EXPECT_EQ(r.state(), RolloutState::Promoted);
  EXPECT_FALSE(r.promote(at(23'001)));
  ASSERT_TRUE(r.abort(at(24'000)));
  EXPECT_EQ(r.share(), 0);
  EXPECT_EQ(r.state(), RolloutState::RolledBack);
  const auto again = r.restart(at(25'000));
  EXPECT_EQ(again.action, RolloutAction::Restart);
  EXPECT_EQ(r.state(), RolloutState::Progressing);
  EXPECT_EQ(r.step(), 0U);
  EXPECT_EQ(r.share(), 0.1);
}

TEST(CanaryRollout, ValidatesItsSettings) {
  auto s = rolloutSettingsForTest();
  EXPECT_FALSE(CanaryRollout::validate(s));
  s.steps = {};
  EXPECT_TRUE(CanaryRollout::validate(s));
  s.steps = {0.5, 0.5};
  EXPECT_TRUE(CanaryRollout::validate(s));
  s.steps = {0.5, 1.5};
  EXPECT_TRUE(CanaryRollout::validate(s));
  s.steps = {0.5, 1};  // a step of everything leaves the baseline nothing: promotion is that
  EXPECT_TRUE(CanaryRollout::validate(s));
  s = rolloutSettingsForTest();
  s.analysis.confidence = 1;
  EXPECT_TRUE(CanaryRollout::validate(s));
  s = rolloutSettingsForTest();
  s.analysis.max_latency_ratio = 0.9;
  EXPECT_TRUE(CanaryRollout::validate(s));
}

TEST(CanaryRollout, HistoryKeepsTheLastDecisions) {
  CanaryRollout r(rolloutSettingsForTest(), kT0);
  for (int i = 0; i < 150; ++i) {
    r.pause(at(i * 2));
    r.resume(at(i * 2 + 1));
  }
  EXPECT_EQ(r.history().size(), CanaryRollout::kHistory);
  EXPECT_EQ(r.history().back().action, RolloutAction::Resume);
  EXPECT_EQ(r.count(RolloutAction::Pause), 150U);
}

}  // namespace
}  // namespace sluice::resilience
