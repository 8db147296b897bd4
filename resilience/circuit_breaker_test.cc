#include "resilience/circuit_breaker.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "resilience/circuit_breaker_test_support.h"
#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using State = CircuitBreaker::State;
using Settings = CircuitBreaker::Settings;

struct Recorded {
  State from;
  State to;
  TimePoint at;
  bool operator==(const Recorded&) const = default;
};

// ---- Settings ----------------------------------------------------------------------------

TEST(CircuitBreaker, ValidateAcceptsDefaultsAndExplainsBadSettings) {
  EXPECT_EQ(CircuitBreaker::validate(Settings{}), std::nullopt);
  const auto problem = [](auto mutate) {
    Settings s = countBased();
    mutate(s);
    return CircuitBreaker::validate(s).value_or("valid");
  };
  EXPECT_EQ(problem([](Settings& s) { s.window_size = 0; }), "window_size must be in [1, 65535]");
  EXPECT_EQ(problem([](Settings& s) { s.window_size = 65536; }),
            "window_size must be in [1, 65535]");
  EXPECT_EQ(problem([](Settings& s) { s.minimum_calls = 11; }),
            "minimum_calls must not exceed window_size (the breaker could never trip)");
  EXPECT_EQ(problem([](Settings& s) { s.minimum_calls = 0; }), "minimum_calls must be at least 1");
  EXPECT_EQ(problem([](Settings& s) { s.failure_rate_threshold = 100.5; }),
            "failure_rate_threshold must be in [0, 100]");
  EXPECT_EQ(problem([](Settings& s) { s.slow_call_rate_threshold = std::nan(""); }),
            "slow_call_rate_threshold must be in [0, 100]");
  EXPECT_EQ(problem([](Settings& s) { s.slow_call_duration = milliseconds(-1); }),
            "slow_call_duration must be >= 0");
  EXPECT_EQ(problem([](Settings& s) { s.open_duration = milliseconds(-1); }),
            "open_duration must be >= 0");
  EXPECT_EQ(problem([](Settings& s) { s.open_duration_multiplier = 0.5; }),
            "open_duration_multiplier must be finite and >= 1");
  EXPECT_EQ(problem([](Settings& s) { s.max_open_duration = seconds(29); }),
            "max_open_duration must be at least open_duration");
  EXPECT_EQ(problem([](Settings& s) { s.half_open_probes = 0; }),
            "half_open_probes must be in [1, 1048576]");
  EXPECT_EQ(problem([](Settings& s) { s.initial_state = State::HalfOpen; }),
            "initial_state must be Closed, ForcedOpen or Disabled");
  EXPECT_EQ(problem([](Settings& s) {
              s.window_type = CircuitBreaker::WindowType::TimeBased;
              s.window_duration = seconds(10);
              s.window_buckets = 3;
              s.minimum_calls = 1000;  // fine for a time-based window
            }).rfind("window: ", 0),
            0U);
}

TEST(CircuitBreaker, FromHystrixMapsEveryProperty) {
  const CircuitBreaker::HystrixSettings h{.request_volume_threshold = 20,
                                          .error_threshold_percentage = 50,
                                          .sleep_window = seconds(5),
                                          .rolling_window = seconds(10),
                                          .rolling_buckets = 10};
  const Settings s = CircuitBreaker::fromHystrix(h);
  EXPECT_EQ(CircuitBreaker::validate(s), std::nullopt);
  EXPECT_EQ(s.window_type, CircuitBreaker::WindowType::TimeBased);
  EXPECT_EQ(s.window_duration, seconds(10));
  EXPECT_EQ(s.window_buckets, 10U);
  EXPECT_EQ(s.minimum_calls, 20U);
  EXPECT_EQ(s.failure_rate_threshold, 50.0);
  EXPECT_EQ(s.slow_call_duration, Duration::max());
  EXPECT_EQ(s.open_duration, seconds(5));
  EXPECT_EQ(s.max_open_duration, seconds(5));
  EXPECT_EQ(s.half_open_probes, 1U);
  EXPECT_EQ(s.initial_state, State::Closed);
  EXPECT_EQ(CircuitBreaker::fromHystrix({.force_closed = true}).initial_state, State::Disabled);
  EXPECT_EQ(CircuitBreaker::fromHystrix({.force_open = true, .force_closed = true}).initial_state,
            State::ForcedOpen);
  EXPECT_EQ(CircuitBreaker::fromHystrix({.error_threshold_percentage = 150}).failure_rate_threshold,
            100.0);
}

// Verifies Hystrix's behaviour end to end: volume 20 and 50 % errors over 10 s trip; the sleep
// window admits one trial request.
TEST(CircuitBreaker, HystrixMappingBehavesLikeHystrix) {
  const auto settings = CircuitBreaker::fromHystrix({});
  {
    CircuitBreaker b(settings, kT0);
    fail(b, 19, kT0);
    EXPECT_EQ(b.state(), State::Closed);  // 19 requests: below the volume threshold
    fail(b, 1, kT0);
    EXPECT_EQ(b.state(), State::Open);
  }
  {
    CircuitBreaker b(settings, kT0);
    succeed(b, 11, kT0);
    fail(b, 9, kT0);  // 45 %
    EXPECT_EQ(b.state(), State::Closed);
    fail(b, 2, kT0);  // 11 of 22 = 50 %
    EXPECT_EQ(b.state(), State::Open);
    const TimePoint opened = kT0 + milliseconds(1);  // outcomes land at acquire + 1 ms
    EXPECT_FALSE(b.tryAcquire(opened + seconds(5) - nanoseconds(1)));
    auto trial = b.tryAcquire(opened + seconds(5));
    ASSERT_TRUE(trial);
    EXPECT_EQ(b.state(), State::HalfOpen);
    EXPECT_FALSE(b.tryAcquire(opened + seconds(5)));  // one trial request only
    trial.success(milliseconds(1));
    EXPECT_EQ(b.state(), State::Closed);
  }
}

// ---- Closed ------------------------------------------------------------------------------

// Verifies the minimum-calls boundary: with 100 % failures, 9 calls keep it closed, 10 trip it.
TEST(CircuitBreaker, MayTripOnlyOnceMinimumCallsAreIn) {
  CircuitBreaker b(countBased(), kT0);
  fail(b, 9, kT0);
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_EQ(b.snapshot(kT0).calls, 9U);
  fail(b, 1, kT0);
  EXPECT_EQ(b.state(), State::Open);
}

// Verifies the failure-rate boundary (>=): 4 of 10 stays closed, 5 and 6 of 10 trip.
TEST(CircuitBreaker, TripsAtTheFailureRateThresholdNotBelow) {
  for (const auto& [failures, expected] :
       {std::pair{4, State::Closed}, {5, State::Open}, {6, State::Open}}) {
    CircuitBreaker b(countBased(), kT0);
    succeed(b, 10 - failures, kT0);
    fail(b, failures, kT0);
    EXPECT_EQ(b.state(), expected) << failures << " failures of 10";
  }
}

// Verifies the slow-call boundaries: duration == slow_call_duration is not slow, 1 ns more is;
// and the slow-rate threshold is >= like the failure rate.
TEST(CircuitBreaker, SlowCallsAreStrictlyAboveTheDurationAndTripAtTheRate) {
  auto s = countBased();
  s.slow_call_duration = milliseconds(100);
  s.slow_call_rate_threshold = 50;
  {
    CircuitBreaker b(s, kT0);
    succeed(b, 10, kT0, milliseconds(100));
    EXPECT_EQ(b.snapshot(kT0).slow_calls, 0U);
    EXPECT_EQ(b.state(), State::Closed);
  }
  for (const auto& [slow, expected] :
       {std::pair{4, State::Closed}, {5, State::Open}, {6, State::Open}}) {
    CircuitBreaker b(s, kT0);
    succeed(b, 10 - slow, kT0, milliseconds(1));
    succeed(b, slow, kT0, milliseconds(100) + nanoseconds(1));
    EXPECT_EQ(b.state(), expected) << slow << " slow calls of 10";
  }
}

TEST(CircuitBreaker, SlowFailureCountsInBothRates) {
  auto s = countBased();
  s.slow_call_duration = milliseconds(100);
  s.failure_rate_threshold = 100;
  s.slow_call_rate_threshold = 100;
  CircuitBreaker b(s, kT0);
  fail(b, 3, kT0, seconds(1));
  const auto snap = b.snapshot(kT0);
  EXPECT_EQ(snap.failures, 3U);
  EXPECT_EQ(snap.slow_calls, 3U);
  EXPECT_DOUBLE_EQ(snap.failure_rate, 100.0);
  EXPECT_DOUBLE_EQ(snap.slow_call_rate, 100.0);
}

TEST(CircuitBreaker, CountWindowKeepsOnlyTheLastNOutcomes) {
  auto s = countBased();
  s.window_size = 4;
  s.minimum_calls = 4;
  CircuitBreaker b(s, kT0);
  succeed(b, 4, kT0);
  fail(b, 1, kT0);  // window: S S S F (25 %)
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_EQ(b.snapshot(kT0).calls, 4U);
  fail(b, 1, kT0);  // window: S S F F (50 %)
  EXPECT_EQ(b.state(), State::Open);
}

TEST(CircuitBreaker, TimeWindowForgetsCallsOlderThanTheWindow) {
  Settings s = countBased();
  s.window_type = CircuitBreaker::WindowType::TimeBased;
  s.window_duration = seconds(10);
  s.window_buckets = 10;
  s.minimum_calls = 4;
  CircuitBreaker b(s, kT0);
  fail(b, 3, kT0, Duration::zero());
  // 10 s later the first bucket has left the window: 3 more failures make only 3 calls.
  fail(b, 3, kT0 + seconds(10), Duration::zero());
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_EQ(b.snapshot(kT0 + seconds(10)).calls, 3U);
  fail(b, 1, kT0 + seconds(10), Duration::zero());
  EXPECT_EQ(b.state(), State::Open);
}

TEST(CircuitBreaker, OutcomesAreRecordedAtAcquireTimePlusDuration) {
  Settings s = countBased();
  s.window_type = CircuitBreaker::WindowType::TimeBased;
  s.window_duration = seconds(10);
  s.window_buckets = 10;
  CircuitBreaker b(s, kT0);
  auto p = b.tryAcquire(kT0);
  p.success(seconds(15));  // lands at kT0 + 15 s
  EXPECT_EQ(b.snapshot(kT0 + seconds(15)).calls, 1U);
  EXPECT_EQ(b.snapshot(kT0 + seconds(25)).calls, 0U);
  auto q = b.tryAcquire(kT0);
  q.failure(seconds(-3));  // negative counts as zero: lands at kT0, i.e. the newest bucket
  EXPECT_EQ(b.snapshot(kT0 + seconds(15)).failures, 1U);
}

TEST(CircuitBreaker, DroppedPermitsAreIgnoredNeverCountedAsSuccess) {
  CircuitBreaker b(countBased(), kT0);
  for (int i = 0; i < 50; ++i) {
    auto p = b.tryAcquire(kT0);
    ASSERT_TRUE(p);
  }
  {
    auto p = b.tryAcquire(kT0);
    p.release();
    p.success(milliseconds(1));  // after release: no-op
  }
  EXPECT_EQ(b.snapshot(kT0).calls, 0U);
  fail(b, 10, kT0);
  EXPECT_EQ(b.state(), State::Open);  // no phantom successes diluted the failures
}

TEST(CircuitBreaker, SecondOutcomeOnAPermitIsIgnored) {
  CircuitBreaker b(countBased(), kT0);
  auto p = b.tryAcquire(kT0);
  p.failure(milliseconds(1));
  p.success(milliseconds(1));
  p.failure(milliseconds(1));
  EXPECT_EQ(b.snapshot(kT0).calls, 1U);
  EXPECT_FALSE(p.admitted());
}

TEST(CircuitBreaker, OutcomesFromAnEarlierStateAreIgnored) {
  CircuitBreaker b(countBased(), kT0);
  auto stale = b.tryAcquire(kT0);
  trip(b, kT0);
  stale.success(milliseconds(1));  // acquired while closed, finished while open: ignored
  EXPECT_EQ(b.state(), State::Open);
  b.reset(kT0);
  auto before_reset = b.tryAcquire(kT0);
  b.reset(kT0);
  before_reset.failure(milliseconds(1));
  EXPECT_EQ(b.snapshot(kT0).calls, 0U);
}

// ---- Open --------------------------------------------------------------------------------

// Verifies the open-duration boundary: rejected 1 ns before opened + 30 s, probing from it.
TEST(CircuitBreaker, OpenRejectsUntilTheOpenDurationIsOver) {
  CircuitBreaker b(countBased(), kT0);
  trip(b, kT0);
  EXPECT_EQ(b.snapshot(kT0).open_until, kT0 + seconds(30));
  EXPECT_FALSE(b.tryAcquire(kT0 + seconds(30) - nanoseconds(1)));
  EXPECT_EQ(b.state(), State::Open);
  auto probe = b.tryAcquire(kT0 + seconds(30));
  EXPECT_TRUE(probe);
  EXPECT_EQ(b.state(), State::HalfOpen);
  EXPECT_EQ(b.snapshot(kT0).rejected, 1U);
}

TEST(CircuitBreaker, TimeGoingBackwardsKeepsItOpen) {
  CircuitBreaker b(countBased(), kT0);
  trip(b, kT0);
  EXPECT_FALSE(b.tryAcquire(kT0 - seconds(100)));
  EXPECT_EQ(b.state(), State::Open);
}

TEST(CircuitBreaker, OpenDurationGrowsOnRepeatedTripsUpToTheCapAndResetsOnClose) {
  auto s = countBased();
  s.open_duration = seconds(10);
  s.open_duration_multiplier = 2;
  s.max_open_duration = seconds(35);
  s.half_open_probes = 1;
  CircuitBreaker b(s, kT0);
  trip(b, kT0);
  std::vector<Duration> durations;
  TimePoint now = kT0;
  for (int i = 0; i < 4; ++i) {
    const TimePoint until = *b.snapshot(now).open_until;
    durations.push_back(until - now);
    now = until;
    auto probe = b.tryAcquire(now);
    ASSERT_TRUE(probe);
    probe.failure(Duration::zero());  // reopens at `now`
  }
  EXPECT_EQ(durations, (std::vector<Duration>{seconds(10), seconds(20), seconds(35), seconds(35)}));
  EXPECT_EQ(b.snapshot(now).consecutive_reopens, 4U);
  now = *b.snapshot(now).open_until;
  b.tryAcquire(now).success(Duration::zero());
  EXPECT_EQ(b.state(), State::Closed);
  trip(b, now);
  EXPECT_EQ(*b.snapshot(now).open_until - now, seconds(10));
}

TEST(CircuitBreaker, ZeroOpenDurationProbesAtOnce) {
  auto s = countBased();
  s.open_duration = Duration::zero();
  s.max_open_duration = Duration::zero();
  CircuitBreaker b(s, kT0);
  trip(b, kT0);
  EXPECT_TRUE(b.tryAcquire(kT0));
  EXPECT_EQ(b.state(), State::HalfOpen);
}

// ---- Half-open ---------------------------------------------------------------------------

class HalfOpen : public ::testing::Test {
 protected:
  // 10 probes, 50 %: reopen at 5 failures, close at 6 successes.
  HalfOpen() : breaker_(settings(), kT0) {
    trip(breaker_, kT0);
    now_ = kT0 + seconds(30);
  }
  static Settings settings() {
    auto s = countBased();
    s.half_open_probes = 10;
    return s;
  }
  CircuitBreaker::Permit probe() { return breaker_.tryAcquire(now_); }
  std::vector<CircuitBreaker::Permit> allProbes() {
    std::vector<CircuitBreaker::Permit> probes;
    probes.reserve(10);
    for (int i = 0; i < 10; ++i) {
      probes.push_back(probe());
    }
    return probes;
  }

  CircuitBreaker breaker_;
  TimePoint now_;
};

TEST_F(HalfOpen, AdmitsOnlyTheConfiguredNumberOfProbes) {
  std::vector<CircuitBreaker::Permit> probes = allProbes();
  for (const auto& p : probes) {
    EXPECT_TRUE(p);
  }
  EXPECT_FALSE(probe());
  EXPECT_EQ(breaker_.snapshot(now_).probes_in_flight, 10U);
  probes.pop_back();  // dropped without an outcome: the slot is free again
  EXPECT_TRUE(probe());
}

TEST_F(HalfOpen, FinishedProbesStillCountAgainstTheLimit) {
  std::vector<CircuitBreaker::Permit> probes = allProbes();
  probes[0].success(Duration::zero());
  probes[1].failure(Duration::zero());
  EXPECT_EQ(breaker_.state(), State::HalfOpen);
  EXPECT_FALSE(probe());
}

// Verifies the early decision boundaries: 4 failures (with 1 unknown that could make 5) wait;
// the 5th failure reopens at once.
TEST_F(HalfOpen, ReopensAsSoonAsTheFailureRateIsCertain) {
  std::vector<CircuitBreaker::Permit> probes = allProbes();
  for (int i = 0; i < 5; ++i) {
    probes[i].success(Duration::zero());
  }
  for (int i = 5; i < 9; ++i) {
    probes[i].failure(Duration::zero());
  }
  EXPECT_EQ(breaker_.state(), State::HalfOpen);  // 4 failures + 1 to come: undecided
  probes[9].failure(Duration::zero());
  EXPECT_EQ(breaker_.state(), State::Open);
}

TEST_F(HalfOpen, ReopensAfterFiveFailuresWithoutWaitingForTheRest) {
  std::vector<CircuitBreaker::Permit> probes = allProbes();
  for (int i = 0; i < 4; ++i) {
    probes[i].failure(Duration::zero());
  }
  EXPECT_EQ(breaker_.state(), State::HalfOpen);
  probes[4].failure(Duration::zero());
  EXPECT_EQ(breaker_.state(), State::Open);
  probes[5].success(Duration::zero());  // a late probe of the old state is ignored
  EXPECT_EQ(breaker_.state(), State::Open);
}

// Verifies the close boundary: after 5 successes, 5 unknown could still make 50 %; the 6th closes.
TEST_F(HalfOpen, ClosesAsSoonAsTheFailureRateCannotReachTheThreshold) {
  std::vector<CircuitBreaker::Permit> probes = allProbes();
  for (int i = 0; i < 5; ++i) {
    probes[i].success(Duration::zero());
  }
  EXPECT_EQ(breaker_.state(), State::HalfOpen);
  probes[5].success(Duration::zero());
  EXPECT_EQ(breaker_.state(), State::Closed);
  EXPECT_EQ(breaker_.snapshot(now_).calls, 0U);  // closed with an empty window
  probes[6].failure(Duration::zero());           // probe of the old state: ignored
  EXPECT_EQ(breaker_.snapshot(now_).calls, 0U);
}

TEST_F(HalfOpen, SlowProbesReopenToo) {
  auto s = settings();
  s.slow_call_duration = milliseconds(100);
  s.slow_call_rate_threshold = 50;
  CircuitBreaker b(s, kT0);
  trip(b, kT0);
  for (int i = 0; i < 5; ++i) {
    b.tryAcquire(now_).success(seconds(1));
  }
  EXPECT_EQ(b.state(), State::Open);
}

TEST(CircuitBreaker, SingleProbeDecidesAlone) {
  auto s = countBased();
  s.half_open_probes = 1;
  CircuitBreaker b(s, kT0);
  trip(b, kT0);
  b.tryAcquire(kT0 + seconds(30)).failure(Duration::zero());
  EXPECT_EQ(b.state(), State::Open);
  b.tryAcquire(kT0 + seconds(60)).success(Duration::zero());
  EXPECT_EQ(b.state(), State::Closed);
}

// ---- Forced states and notifications -------------------------------------------------------

TEST(CircuitBreaker, ForcedOpenRejectsEverythingUntilReset) {
  CircuitBreaker b(countBased(), kT0);
  b.forceOpen(kT0);
  EXPECT_EQ(b.state(), State::ForcedOpen);
  EXPECT_FALSE(b.tryAcquire(kT0 + std::chrono::hours(1000)));
  b.reset(kT0 + seconds(1));
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_TRUE(b.tryAcquire(kT0 + seconds(1)));
}

TEST(CircuitBreaker, DisabledAdmitsEverythingAndRecordsNothing) {
  CircuitBreaker b(countBased(), kT0);
  b.disable(kT0);
  fail(b, 100, kT0);
  EXPECT_EQ(b.state(), State::Disabled);
  b.reset(kT0);
  EXPECT_EQ(b.snapshot(kT0).calls, 0U);
}

TEST(CircuitBreaker, InitialStateCanBeForced) {
  auto s = countBased();
  s.initial_state = State::ForcedOpen;
  CircuitBreaker b(s, kT0);
  EXPECT_EQ(b.state(), State::ForcedOpen);
  EXPECT_FALSE(b.tryAcquire(kT0));
}

TEST(CircuitBreaker, ResetWhileClosedEmptiesTheWindowSilently) {
  std::vector<Recorded> seen;
  CircuitBreaker b(countBased(), kT0, [&](State from, State to, TimePoint at) {
    seen.push_back({from, to, at});
  });
  fail(b, 9, kT0);
  b.reset(kT0);
  EXPECT_EQ(b.snapshot(kT0).calls, 0U);
  fail(b, 9, kT0);
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_TRUE(seen.empty());
}

TEST(CircuitBreaker, ListenerSeesEveryTransitionInOrderWithItsTime) {
  std::vector<Recorded> seen;
  auto s = countBased();
  s.half_open_probes = 1;
  CircuitBreaker b(s, kT0, [&](State from, State to, TimePoint at) {
    seen.push_back({from, to, at});
  });
  trip(b, kT0);
  b.tryAcquire(kT0 + seconds(30)).success(milliseconds(5));
  b.forceOpen(kT0 + seconds(40));
  b.forceOpen(kT0 + seconds(41));  // already forced: no event
  b.disable(kT0 + seconds(50));
  b.reset(kT0 + seconds(60));
  EXPECT_THAT(seen,
              ::testing::ElementsAre(
                  Recorded{State::Closed, State::Open, kT0},
                  Recorded{State::Open, State::HalfOpen, kT0 + seconds(30)},
                  Recorded{State::HalfOpen, State::Closed, kT0 + seconds(30) + milliseconds(5)},
                  Recorded{State::Closed, State::ForcedOpen, kT0 + seconds(40)},
                  Recorded{State::ForcedOpen, State::Disabled, kT0 + seconds(50)},
                  Recorded{State::Disabled, State::Closed, kT0 + seconds(60)}));
}

TEST(CircuitBreaker, TransitionTimesNeverGoBackwards) {
  std::vector<Recorded> seen;
  CircuitBreaker b(countBased(), kT0, [&](State from, State to, TimePoint at) {
    seen.push_back({from, to, at});
  });
  b.forceOpen(kT0 + seconds(10));
  b.reset(kT0);  // earlier than the last transition: treated as kT0 + 10 s
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[1].at, kT0 + seconds(10));
}

TEST(CircuitBreaker, ListenerMayCallBackIntoTheBreaker) {
  std::vector<State> states_seen_inside;
  CircuitBreaker* self = nullptr;
  CircuitBreaker b(countBased(), kT0, [&](State, State to, TimePoint at) {
    states_seen_inside.push_back(self->state());
    (void)self->snapshot(at);
    if (to == State::Open) {
      self->forceOpen(at);  // a transition from inside the listener
    }
  });
  self = &b;
  fail(b, 10, kT0);
  EXPECT_EQ(b.state(), State::ForcedOpen);
  EXPECT_EQ(states_seen_inside.size(), 2U);  // both delivered, in order, without deadlock
}

TEST(CircuitBreaker, StatesHaveNames) {
  EXPECT_STREQ(toString(State::Closed), "closed");
  EXPECT_STREQ(toString(State::Open), "open");
  EXPECT_STREQ(toString(State::HalfOpen), "half_open");
  EXPECT_STREQ(toString(State::ForcedOpen), "forced_open");
  EXPECT_STREQ(toString(State::Disabled), "disabled");
}

// ---- Property: count-based window against a reference model --------------------------------

// A deque of the last N outcomes decides when the breaker must trip; the lock-free ring has to
// agree on every single outcome, over seeded random configurations and outcome streams.
TEST(CircuitBreaker, CountWindowMatchesAReferenceModel) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    Settings s;
    s.window_size = 1 + static_cast<std::uint32_t>(rng() % 30);
    s.minimum_calls = 1 + static_cast<std::uint32_t>(rng() % s.window_size);
    s.failure_rate_threshold = static_cast<double>(10 + rng() % 91);
    s.slow_call_rate_threshold = static_cast<double>(10 + rng() % 91);
    s.slow_call_duration = milliseconds(100);
    s.open_duration = Duration::zero();
    s.max_open_duration = Duration::zero();
    CircuitBreaker b(s, kT0);
    std::deque<std::pair<bool, bool>> model;  // (failed, slow)
    for (int step = 0; step < 3000; ++step) {
      const bool failed = rng() % 100 < 30;
      const bool slow = rng() % 100 < 20;
      auto p = b.tryAcquire(kT0);
      ASSERT_TRUE(p);
      ASSERT_EQ(b.state(), State::Closed);
      const Duration d = slow ? milliseconds(150) : milliseconds(50);
      failed ? p.failure(d) : p.success(d);
      model.emplace_back(failed, slow);
      if (model.size() > s.window_size) {
        model.pop_front();
      }
      std::size_t f = 0;
      std::size_t sl = 0;
      for (const auto& [mf, ms] : model) {
        f += mf ? 1 : 0;
        sl += ms ? 1 : 0;
      }
      const auto calls = static_cast<double>(model.size());
      const bool must_trip = model.size() >= s.minimum_calls &&
                             (static_cast<double>(f) * 100 >= s.failure_rate_threshold * calls ||
                              static_cast<double>(sl) * 100 >= s.slow_call_rate_threshold * calls);
      ASSERT_EQ(b.state() == State::Open, must_trip) << "seed " << seed << " step " << step;
      if (must_trip) {
        b.reset(kT0);
        model.clear();
      } else {
        const auto snap = b.snapshot(kT0);
        ASSERT_EQ(snap.calls, model.size());
        ASSERT_EQ(snap.failures, f);
        ASSERT_EQ(snap.slow_calls, sl);
      }
    }
  }
}

// ---- Stress --------------------------------------------------------------------------------

// Many threads race for probes of one half-open breaker and keep every permit they get: exactly
// half_open_probes are admitted, never more.
TEST(CircuitBreakerStress, HalfOpenNeverAdmitsMoreProbesThanConfigured) {
  constexpr int kThreads = 4;
  for (int round = 0; round < 50; ++round) {
    auto s = countBased();
    s.half_open_probes = 5;
    CircuitBreaker b(s, kT0);
    trip(b, kT0);
    const TimePoint now = kT0 + seconds(30);
    std::atomic<bool> go{false};
    std::atomic<int> admitted{0};
    std::vector<std::vector<CircuitBreaker::Permit>> kept(kThreads);
    std::vector<std::thread> threads;
    threads.reserve(kThreads);

    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        while (!go.load()) {
          std::this_thread::yield();
        }
        for (int i = 0; i < 200; ++i) {
          if (auto p = b.tryAcquire(now)) {
            admitted.fetch_add(1);
            kept[t].push_back(std::move(p));
          }
        }
      });
    }
    go.store(true);
    for (auto& thread : threads) {
      thread.join();
    }
    ASSERT_EQ(admitted.load(), 5);
    ASSERT_EQ(b.state(), State::HalfOpen);
  }
}

// Threads hammer one breaker with random outcomes while time advances and an operator forces
// and resets it: the notifications must form one unbroken chain of legal transitions that ends
// in the breaker's final state (so none was lost, duplicated or reordered).
TEST(CircuitBreakerStress, ConcurrentUseNeverLosesATransition) {
  ManualClock clock;
  std::mutex seen_mutex;
  std::vector<Recorded> seen;
  Settings s;
  s.window_size = 20;
  s.minimum_calls = 10;
  s.failure_rate_threshold = 50;
  s.open_duration = milliseconds(1);
  s.open_duration_multiplier = 2;
  s.max_open_duration = milliseconds(8);
  s.half_open_probes = 3;
  CircuitBreaker b(s, clock.now(), [&](State from, State to, TimePoint at) {
    const std::lock_guard lock(seen_mutex);
    seen.push_back({from, to, at});
  });
  // Each worker also moves time forward (no thread waits for the scheduler), and one of them
  // plays the operator.
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  threads.reserve(3);

  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 1);
      ready.fetch_add(1);
      while (ready.load() < 3) {
        std::this_thread::yield();
      }
      for (int i = 1; i <= 6000; ++i) {
        if (i % 20 == 0) {
          clock.advance(microseconds(100));
        }
        if (t == 0 && i % 1500 == 0) {
          b.forceOpen(clock.now());
          b.reset(clock.now());
        }
        auto p = b.tryAcquire(clock.now());
        if (!p) {
          continue;
        }
        const auto roll = rng() % 10;
        if (roll < 5) {
          p.failure(microseconds(rng() % 500));
        } else if (roll < 9) {
          p.success(microseconds(rng() % 500));
        }  // else dropped
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }

  const std::lock_guard lock(seen_mutex);
  ASSERT_GE(seen.size(), 10U) << "the test did not exercise transitions";
  RecordProperty("transitions", static_cast<int>(seen.size()));
  State expected_from = State::Closed;
  TimePoint last = TimePoint::min();
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const Recorded& r = seen[i];
    ASSERT_EQ(r.from, expected_from) << "event " << i;
    ASSERT_NE(r.from, r.to) << "event " << i;
    const bool legal = (r.from == State::Closed && r.to == State::Open) ||
                       (r.from == State::Open && r.to == State::HalfOpen) ||
                       (r.from == State::HalfOpen && r.to != State::HalfOpen) ||
                       r.to == State::ForcedOpen || r.to == State::Disabled ||
                       r.to == State::Closed;
    ASSERT_TRUE(legal) << toString(r.from) << " -> " << toString(r.to);
    ASSERT_GE(r.at, last) << "event " << i;
    last = r.at;
    expected_from = r.to;
  }
  EXPECT_EQ(expected_from, b.state());
}

// The lock-free closed path loses no outcome under contention: with a window larger than the
// number of calls every outcome is counted, and once the ring has wrapped the totals still equal
// the ring's contents (1000 single-threaded successes afterwards must leave zero failures).
TEST(CircuitBreakerStress, LockFreeWindowCountsEveryOutcome) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  for (const std::uint32_t window : {CircuitBreaker::kMaxWindowSize, 1000U}) {
    auto s = countBased();
    s.window_size = window;
    s.minimum_calls = window;
    s.failure_rate_threshold = 100;  // never reached: a third of the calls fail
    CircuitBreaker b(s, kT0);
    std::atomic<int> failures{0};
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    threads.reserve(kThreads);

    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) {
          std::this_thread::yield();
        }
        for (int i = 0; i < kPerThread; ++i) {
          auto p = b.tryAcquire(kT0);
          if ((i + t) % 3 == 0) {
            p.failure(milliseconds(1));
            failures.fetch_add(1);
          } else {
            p.success(milliseconds(1));
          }
        }
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
    const auto snap = b.snapshot(kT0);
    ASSERT_EQ(b.state(), State::Closed);
    if (window >= kThreads * kPerThread) {
      EXPECT_EQ(snap.calls, static_cast<std::uint64_t>(kThreads * kPerThread));
      EXPECT_EQ(snap.failures, static_cast<std::uint64_t>(failures.load()));
    } else {
      EXPECT_EQ(snap.calls, window);
      EXPECT_LE(snap.failures, window);
      succeed(b, static_cast<int>(window), kT0);
      EXPECT_EQ(b.snapshot(kT0).calls, window);
      EXPECT_EQ(b.snapshot(kT0).failures, 0U);
    }
  }
}

}  // namespace
}  // namespace sluice::resilience
