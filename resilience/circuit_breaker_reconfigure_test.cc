// CircuitBreaker::reconfigure: new settings in place, state kept (config reload).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/circuit_breaker.h"
#include "resilience/circuit_breaker_test_support.h"
#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;
using State = CircuitBreaker::State;
using Settings = CircuitBreaker::Settings;
using WindowType = CircuitBreaker::WindowType;

// Time-based, 10 s in 10 buckets, otherwise as countBased().
Settings timeBased() {
  Settings s = countBased();
  s.window_type = WindowType::TimeBased;
  s.window_duration = seconds(10);
  s.window_buckets = 10;
  return s;
}

// ---- Thresholds: window and state kept --------------------------------------------------------

// Verifies: new thresholds keep the counted outcomes; reconfigure itself never trips, and the
// next outcome (whatever it is) is judged by the new thresholds, for both window types.
TEST(CircuitBreakerReconfigure, LoweredThresholdKeepsTheWindowAndTripsAtTheNextOutcome) {
  for (const Settings& base : {countBased(), timeBased()}) {
    std::vector<std::pair<State, State>> seen;
    CircuitBreaker b(base, kT0,
                     [&](State from, State to, TimePoint) { seen.emplace_back(from, to); });
    fail(b, 4, kT0, Duration::zero());
    succeed(b, 4, kT0, Duration::zero());  // 8 calls, 50 % failures: below minimum_calls

    Settings lower = base;
    lower.minimum_calls = 5;
    lower.failure_rate_threshold = 40;
    b.reconfigure(lower, kT0 + milliseconds(1));

    EXPECT_EQ(b.state(), State::Closed);
    EXPECT_TRUE(seen.empty()) << "reconfigure must not transition";
    const auto snap = b.snapshot(kT0 + milliseconds(1));
    EXPECT_EQ(snap.calls, 8U);
    EXPECT_EQ(snap.failures, 4U);
    EXPECT_EQ(b.settings().failure_rate_threshold, 40);

    succeed(b, 1, kT0 + milliseconds(2), Duration::zero());  // 4 / 9 = 44 % >= 40 %
    EXPECT_EQ(b.state(), State::Open);
    ASSERT_EQ(seen.size(), 1U);
    EXPECT_EQ(seen[0], std::make_pair(State::Closed, State::Open));
  }
}

// Verifies: a raised threshold keeps the window too, and stops what would have tripped.
TEST(CircuitBreakerReconfigure, RaisedThresholdKeepsTheWindowAndAppliesAtOnce) {
  CircuitBreaker b(countBased(), kT0);
  succeed(b, 5, kT0, Duration::zero());
  fail(b, 4, kT0, Duration::zero());  // 9 calls, 4 failures
  Settings higher = countBased();
  higher.failure_rate_threshold = 60;
  b.reconfigure(higher, kT0);
  fail(b, 1, kT0, Duration::zero());  // 5 / 10 = 50 %: would trip under the old 50 %
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_EQ(b.snapshot(kT0).failures, 5U);
  fail(b, 1, kT0, Duration::zero());  // the oldest success leaves: 6 / 10 = 60 %
  EXPECT_EQ(b.state(), State::Open);
}

// Verifies: a permit acquired before a threshold change records into the same window.
TEST(CircuitBreakerReconfigure, PermitFromBeforeAThresholdChangeStillCounts) {
  CircuitBreaker b(countBased(), kT0);
  fail(b, 4, kT0, Duration::zero());
  auto early = b.tryAcquire(kT0);
  ASSERT_TRUE(early);
  Settings lower = countBased();
  lower.minimum_calls = 5;
  lower.failure_rate_threshold = 100;
  b.reconfigure(lower, kT0);
  early.failure(Duration::zero());  // 5 / 5 = 100 %
  EXPECT_EQ(b.state(), State::Open);
}

// Verifies: slow_call_duration classifies outcomes reported after the change, and outcomes
// already in the window keep their classification.
TEST(CircuitBreakerReconfigure, SlowCallDurationAppliesToLaterOutcomes) {
  Settings s = countBased();
  s.slow_call_duration = milliseconds(100);
  s.slow_call_rate_threshold = 100;
  CircuitBreaker b(s, kT0);
  auto p = b.tryAcquire(kT0);
  p.success(milliseconds(50));  // fast under 100 ms
  s.slow_call_duration = milliseconds(10);
  b.reconfigure(s, kT0);
  b.tryAcquire(kT0).success(milliseconds(50));  // slow under 10 ms
  const auto snap = b.snapshot(kT0);
  EXPECT_EQ(snap.calls, 2U);
  EXPECT_EQ(snap.slow_calls, 1U);
}

// ---- Open and half-open ------------------------------------------------------------------------

// Verifies: the running open period keeps its deadline whether the new open duration is shorter
// or longer; the next open period uses the new duration.
TEST(CircuitBreakerReconfigure, OpenBreakerKeepsItsDeadlineAndTheNextOpenUsesTheNewDuration) {
  for (const Duration new_open : {Duration{seconds(5)}, Duration{seconds(120)}}) {
    CircuitBreaker b(countBased(), kT0);
    trip(b, kT0);
    Settings s = countBased();
    s.open_duration = new_open;
    s.max_open_duration = new_open;
    s.half_open_probes = 1;
    b.reconfigure(s, kT0 + seconds(1));

    EXPECT_EQ(b.state(), State::Open);
    EXPECT_EQ(b.snapshot(kT0 + seconds(1)).open_until, kT0 + seconds(30));
    EXPECT_FALSE(b.tryAcquire(kT0 + seconds(29)));  // not shortened to 5 s
    auto probe = b.tryAcquire(kT0 + seconds(30));   // not lengthened to 120 s
    ASSERT_TRUE(probe);
    EXPECT_EQ(b.state(), State::HalfOpen);

    probe.failure(Duration::zero());  // one probe now: it reopens
    EXPECT_EQ(b.state(), State::Open);
    EXPECT_EQ(b.snapshot(kT0 + seconds(30)).open_until, kT0 + seconds(30) + new_open);
  }
}

// Verifies: the count of consecutive reopens (k) survives a reconfigure, so backoff continues.
TEST(CircuitBreakerReconfigure, ConsecutiveReopensSurvive) {
  Settings s = countBased();
  s.open_duration = seconds(1);
  s.open_duration_multiplier = 2;
  s.max_open_duration = seconds(100);
  s.half_open_probes = 1;
  CircuitBreaker b(s, kT0);
  trip(b, kT0);                                              // k = 0: 1 s
  b.tryAcquire(kT0 + seconds(1)).failure(Duration::zero());  // k = 1: 2 s
  ASSERT_EQ(b.snapshot(kT0).consecutive_reopens, 1U);
  s.open_duration = seconds(10);
  s.open_duration_multiplier = 3;
  b.reconfigure(s, kT0 + seconds(2));
  EXPECT_EQ(b.snapshot(kT0 + seconds(2)).open_until, kT0 + seconds(3));
  b.tryAcquire(kT0 + seconds(3)).failure(Duration::zero());  // k = 2: 10 s * 3^2
  EXPECT_EQ(b.snapshot(kT0 + seconds(3)).open_until, kT0 + seconds(3) + seconds(90));
}

// Verifies: half-open probes in flight and outcomes in survive; with fewer probes allowed than
// are already in, no more are admitted and the next outcome decides over all the outcomes in
// (here 2 outcomes under 1 allowed probe: reopen iff failures * 100 >= 60 * 2).
TEST(CircuitBreakerReconfigure, HalfOpenKeepsItsProbesAndDecidesUnderFewerProbes) {
  for (const bool first_fails : {false, true}) {
    CircuitBreaker b(countBased(), kT0);  // 4 probes, 50 %
    trip(b, kT0);
    const TimePoint t = kT0 + seconds(30);
    auto p1 = b.tryAcquire(t);
    auto p2 = b.tryAcquire(t);
    auto p3 = b.tryAcquire(t);
    ASSERT_TRUE(p1 && p2 && p3);
    first_fails ? p1.failure(Duration::zero()) : p1.success(Duration::zero());
    ASSERT_EQ(b.state(), State::HalfOpen);
    Settings s = countBased();
    s.half_open_probes = 1;
    s.failure_rate_threshold = 60;
    b.reconfigure(s, t);
    EXPECT_EQ(b.state(), State::HalfOpen);
    EXPECT_EQ(b.snapshot(t).probes_in_flight, 2U);
    EXPECT_EQ(b.snapshot(t).probe_outcomes, 1U);
    EXPECT_FALSE(b.tryAcquire(t)) << "3 probes in, 1 allowed";

    p2.failure(Duration::zero());  // 1 or 2 failures out of 2: 50 % < 60 % or 100 %
    EXPECT_EQ(b.state(), first_fails ? State::Open : State::Closed);
  }
}

// Verifies: more probes allowed admits more at once.
TEST(CircuitBreakerReconfigure, HalfOpenAdmitsMoreProbesWhenRaised) {
  CircuitBreaker b(countBased(), kT0);
  trip(b, kT0);
  const TimePoint t = kT0 + seconds(30);
  std::vector<CircuitBreaker::Permit> probes;
  while (auto p = b.tryAcquire(t)) {
    probes.push_back(std::move(p));
  }
  ASSERT_EQ(probes.size(), 4U);
  Settings s = countBased();
  s.half_open_probes = 6;
  b.reconfigure(s, t);
  EXPECT_TRUE(b.tryAcquire(t));
  EXPECT_EQ(b.state(), State::HalfOpen);
}

// Verifies: forced states are kept (initial_state is ignored by reconfigure).
TEST(CircuitBreakerReconfigure, ForcedStatesAreKept) {
  CircuitBreaker forced(countBased(), kT0);
  forced.forceOpen(kT0);
  Settings s = timeBased();
  s.initial_state = State::Disabled;
  forced.reconfigure(s, kT0);
  EXPECT_EQ(forced.state(), State::ForcedOpen);
  EXPECT_FALSE(forced.tryAcquire(kT0 + seconds(600)));

  CircuitBreaker disabled(countBased(), kT0);
  disabled.disable(kT0);
  s.initial_state = State::Closed;
  disabled.reconfigure(s, kT0);
  EXPECT_EQ(disabled.state(), State::Disabled);
  fail(disabled, 100, kT0, Duration::zero());
  EXPECT_EQ(disabled.state(), State::Disabled);
}

// ---- Window changes -----------------------------------------------------------------------------

// Verifies: a new window size restarts the closed window but keeps Closed, and outcomes of
// permits acquired before the change are ignored.
TEST(CircuitBreakerReconfigure, WindowSizeChangeRestartsTheWindowAndKeepsClosed) {
  std::vector<std::pair<State, State>> seen;
  CircuitBreaker b(countBased(), kT0,
                   [&](State from, State to, TimePoint) { seen.emplace_back(from, to); });
  fail(b, 5, kT0, Duration::zero());
  succeed(b, 4, kT0, Duration::zero());
  auto early = b.tryAcquire(kT0);
  Settings s = countBased();
  s.window_size = 20;
  b.reconfigure(s, kT0);
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_EQ(b.snapshot(kT0).calls, 0U);
  early.failure(Duration::zero());
  EXPECT_EQ(b.snapshot(kT0).calls, 0U) << "a permit from before the restart was counted";

  fail(b, 9, kT0, Duration::zero());  // minimum_calls 10 still
  EXPECT_EQ(b.state(), State::Closed);
  fail(b, 1, kT0, Duration::zero());
  EXPECT_EQ(b.state(), State::Open);
  EXPECT_EQ(seen.size(), 1U);
}

// Verifies: a window change keeps an open breaker open with its deadline, and the window it
// closes into has the new size.
TEST(CircuitBreakerReconfigure, WindowSizeChangeKeepsOpenAndClosesIntoTheNewWindow) {
  CircuitBreaker b(countBased(), kT0);
  trip(b, kT0);
  Settings s = countBased();
  s.window_size = 3;
  s.minimum_calls = 3;
  s.half_open_probes = 1;
  b.reconfigure(s, kT0 + seconds(1));
  EXPECT_EQ(b.state(), State::Open);
  EXPECT_FALSE(b.tryAcquire(kT0 + seconds(29)));
  b.tryAcquire(kT0 + seconds(30)).success(Duration::zero());
  ASSERT_EQ(b.state(), State::Closed);
  const TimePoint t = kT0 + seconds(31);
  succeed(b, 5, t, Duration::zero());
  EXPECT_EQ(b.snapshot(t).calls, 3U);
  fail(b, 2, t, Duration::zero());  // 2 / 3 >= 50 %
  EXPECT_EQ(b.state(), State::Open);
}

// Verifies: count-based rings shrink and grow (within and beyond the first allocation) and
// always hold exactly window_size outcomes: window_size failures after any number of successes
// trip a 100 % threshold exactly at the last one.
TEST(CircuitBreakerReconfigure, ResizedCountWindowHoldsExactlyTheNewSize) {
  Settings s = countBased();
  s.failure_rate_threshold = 100;
  CircuitBreaker b(s, kT0);
  for (const std::uint32_t size :
       {5U, 10U, 7U, 30U, 1U, 200U, 64U, CircuitBreaker::kMaxWindowSize}) {
    s.window_size = size;
    s.minimum_calls = size;
    b.reconfigure(s, kT0);
    ASSERT_EQ(b.state(), State::Closed);
    succeed(b, static_cast<int>(size) + 3, kT0, Duration::zero());
    ASSERT_EQ(b.snapshot(kT0).calls, size);
    fail(b, static_cast<int>(size) - 1, kT0, Duration::zero());
    ASSERT_EQ(b.state(), State::Closed) << size;
    fail(b, 1, kT0, Duration::zero());
    ASSERT_EQ(b.state(), State::Open) << size;
    b.reset(kT0);
  }
}

// Verifies: switching the window type restarts the window and keeps the state; the new type is
// the one that counts afterwards.
TEST(CircuitBreakerReconfigure, WindowTypeChangeRestartsTheWindow) {
  CircuitBreaker b(countBased(), kT0);
  fail(b, 9, kT0, Duration::zero());
  b.reconfigure(timeBased(), kT0);
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_EQ(b.snapshot(kT0).calls, 0U);
  fail(b, 9, kT0, Duration::zero());
  EXPECT_EQ(b.state(), State::Closed);
  // Time-based: outcomes leave the window with time.
  EXPECT_EQ(b.snapshot(kT0 + seconds(11)).calls, 0U);
  fail(b, 1, kT0, Duration::zero());
  EXPECT_EQ(b.state(), State::Open);

  b.reset(kT0);
  fail(b, 9, kT0, Duration::zero());
  b.reconfigure(countBased(), kT0);
  EXPECT_EQ(b.snapshot(kT0).calls, 0U);
  fail(b, 9, kT0 + seconds(20), Duration::zero());  // count-based: time does not age them
  EXPECT_EQ(b.snapshot(kT0 + seconds(40)).calls, 9U);
  fail(b, 1, kT0 + seconds(40), Duration::zero());
  EXPECT_EQ(b.state(), State::Open);
}

// Verifies: a time-based window with a new duration restarts; the same geometry keeps it.
TEST(CircuitBreakerReconfigure, TimeWindowKeptOnlyWithTheSameGeometry) {
  CircuitBreaker b(timeBased(), kT0);
  fail(b, 3, kT0, Duration::zero());
  Settings s = timeBased();
  s.failure_rate_threshold = 90;
  b.reconfigure(s, kT0);
  EXPECT_EQ(b.snapshot(kT0).calls, 3U);
  s.window_duration = seconds(20);
  b.reconfigure(s, kT0);
  EXPECT_EQ(b.snapshot(kT0).calls, 0U);
  fail(b, 3, kT0, Duration::zero());
  s.window_buckets = 20;
  b.reconfigure(s, kT0);
  EXPECT_EQ(b.snapshot(kT0).calls, 0U);
}

// Verifies: invalid settings are coerced as the constructor does (reconfigure cannot fail).
TEST(CircuitBreakerReconfigure, InvalidSettingsAreCoerced) {
  CircuitBreaker b(countBased(), kT0);
  Settings bad = countBased();
  bad.window_size = 0;
  bad.minimum_calls = 50;
  bad.failure_rate_threshold = 250;
  b.reconfigure(bad, kT0);
  const Settings got = b.settings();
  EXPECT_EQ(got.window_size, 1U);
  EXPECT_EQ(got.minimum_calls, 1U);
  EXPECT_EQ(got.failure_rate_threshold, 100);
  EXPECT_EQ(CircuitBreaker::validate(got), std::nullopt);
  fail(b, 1, kT0, Duration::zero());
  EXPECT_EQ(b.state(), State::Open);
}

// ---- Stress ------------------------------------------------------------------------------------

// Threads record random outcomes (keeping some permits across changes) while one thread keeps
// reconfiguring thresholds, window sizes (shrinking and growing the ring) and window types. Run
// under TSan/ASan this checks the lock-free paths against the reconfigure; here it checks that
// the notifications still form one legal chain and that the window is exact afterwards.
TEST(CircuitBreakerStress, ReconfigureRacingRecordsKeepsTheBreakerConsistent) {
  ManualClock clock;
  std::mutex seen_mutex;
  std::vector<std::pair<State, State>> seen;
  Settings s;
  s.window_size = 20;
  s.minimum_calls = 10;
  s.open_duration = microseconds(500);
  s.max_open_duration = microseconds(500);
  s.half_open_probes = 3;
  CircuitBreaker b(s, clock.now(), [&](State from, State to, TimePoint) {
    const std::lock_guard lock(seen_mutex);
    seen.emplace_back(from, to);
  });
  constexpr int kWorkers = 3;
  std::atomic<int> running{kWorkers};
  std::vector<std::thread> threads;
  threads.reserve(kWorkers);
  for (int t = 0; t < kWorkers; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 7);
      std::vector<CircuitBreaker::Permit> held;
      for (int i = 1; i <= 8000; ++i) {
        if (i % 16 == 0) {
          clock.advance(microseconds(50));
        }
        if (auto p = b.tryAcquire(clock.now())) {
          held.push_back(std::move(p));
        }
        // Finish a random held permit, sometimes long after it was acquired.
        if (!held.empty() && rng() % 3 != 0) {
          const std::size_t k = rng() % held.size();
          const auto roll = rng() % 10;
          if (roll < 5) {
            held[k].failure(microseconds(rng() % 200));
          } else if (roll < 9) {
            held[k].success(microseconds(rng() % 200));
          }  // else dropped
          held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
        }
      }
      held.clear();
      running.fetch_sub(1);
    });
  }
  std::mt19937_64 rng(99);
  int reconfigures = 0;
  while (running.load() > 0) {
    Settings next = s;
    next.window_type = rng() % 4 == 0 ? WindowType::TimeBased : WindowType::CountBased;
    next.window_duration = milliseconds(1 + rng() % 3);
    next.window_buckets = 1;
    next.window_size = static_cast<std::uint32_t>(1 + rng() % 300);
    next.minimum_calls = 1 + static_cast<std::uint32_t>(rng() % next.window_size);
    next.failure_rate_threshold = static_cast<double>(30 + rng() % 71);
    next.slow_call_duration = microseconds(rng() % 300);
    next.half_open_probes = static_cast<std::uint32_t>(1 + rng() % 4);
    b.reconfigure(next, clock.now());
    ++reconfigures;
    if (reconfigures % 64 == 0) {
      std::this_thread::yield();
    }
  }
  for (auto& thread : threads) {
    thread.join();
  }
  RecordProperty("reconfigures", reconfigures);

  {
    const std::lock_guard lock(seen_mutex);
    ASSERT_GE(seen.size(), 2U) << "the test did not exercise transitions";
    State expected_from = State::Closed;
    for (std::size_t i = 0; i < seen.size(); ++i) {
      const auto [from, to] = seen[i];
      ASSERT_EQ(from, expected_from) << "event " << i;
      const bool legal = (from == State::Closed && to == State::Open) ||
                         (from == State::Open && to == State::HalfOpen) ||
                         (from == State::HalfOpen && (to == State::Open || to == State::Closed));
      ASSERT_TRUE(legal) << i << ": " << toString(from) << " -> " << toString(to);
      expected_from = to;
    }
    EXPECT_EQ(expected_from, b.state());
  }

  // Single-threaded afterwards, the window is exact again.
  Settings last = countBased();
  last.failure_rate_threshold = 100;
  b.reconfigure(last, clock.now());
  b.reset(clock.now());
  succeed(b, 25, clock.now(), Duration::zero());
  fail(b, 9, clock.now(), Duration::zero());
  EXPECT_EQ(b.snapshot(clock.now()).failures, 9U);
  EXPECT_EQ(b.state(), State::Closed);
  fail(b, 1, clock.now(), Duration::zero());
  EXPECT_EQ(b.state(), State::Open);
}

}  // namespace
}  // namespace sluice::resilience
