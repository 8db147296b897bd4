// CircuitBreaker::observeRemoteOpen / observeRemoteClose: another instance's verdict applied to
// this breaker (shared breakers).
#include <chrono>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/circuit_breaker.h"
#include "resilience/circuit_breaker_test_support.h"

namespace sluice::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using State = CircuitBreaker::State;

struct Seen {
  State from;
  State to;
};

// Verifies: a closed breaker opens until exactly the remote deadline (not its own open
// duration), notifies once, rejects until then, and reports the open as remote.
TEST(CircuitBreakerRemote, RemoteOpenOpensAClosedBreakerUntilTheSharedDeadline) {
  ManualClock clock;
  std::vector<Seen> seen;
  CircuitBreaker b(countBased(), clock.now(), [&](State from, State to, TimePoint) {
    seen.push_back({from, to});
  });
  const TimePoint until = clock.now() + seconds(7);
  EXPECT_TRUE(b.observeRemoteOpen(until, clock.now()));
  ASSERT_EQ(b.state(), State::Open);
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].from, State::Closed);
  EXPECT_EQ(seen[0].to, State::Open);
  const auto snap = b.snapshot(clock.now());
  EXPECT_EQ(snap.open_until, until);
  EXPECT_TRUE(snap.remote_open);
  clock.advance(seconds(7) - milliseconds(1));
  EXPECT_FALSE(b.tryAcquire(clock.now()));
  clock.advance(milliseconds(1));
  EXPECT_TRUE(b.tryAcquire(clock.now()));  // a probe, at the shared deadline
  EXPECT_EQ(b.state(), State::HalfOpen);
}

// Verifies: an open breaker only ever gets a later deadline, without a notification, and its
// own open stays reported as its own.
TEST(CircuitBreakerRemote, RemoteOpenOnlyLengthensAnOpenPeriod) {
  ManualClock clock;
  int notified = 0;
  CircuitBreaker b(countBased(), clock.now(), [&](State, State, TimePoint) { ++notified; });
  trip(b, clock.now());  // open 30 s
  ASSERT_EQ(notified, 1);
  const TimePoint own = clock.now() + seconds(30);
  EXPECT_FALSE(b.observeRemoteOpen(clock.now() + seconds(10), clock.now()));
  EXPECT_EQ(b.snapshot(clock.now()).open_until, own);
  EXPECT_TRUE(b.observeRemoteOpen(clock.now() + seconds(40), clock.now()));
  const auto snap = b.snapshot(clock.now());
  EXPECT_EQ(snap.open_until, clock.now() + seconds(40));
  EXPECT_FALSE(snap.remote_open);
  EXPECT_EQ(notified, 1);
}

// Verifies: a deadline already past changes nothing.
TEST(CircuitBreakerRemote, RemoteOpenInThePastIsIgnored) {
  ManualClock clock;
  CircuitBreaker b(countBased(), clock.now());
  EXPECT_FALSE(b.observeRemoteOpen(clock.now(), clock.now()));
  EXPECT_FALSE(b.observeRemoteOpen(clock.now() - seconds(1), clock.now()));
  EXPECT_EQ(b.state(), State::Closed);
}

// Verifies: half-open reopens at the remote deadline; the probes in flight are ignored, and k is
// not counted up (the next own trip from half-open still uses the base open duration x1).
TEST(CircuitBreakerRemote, RemoteOpenReopensAHalfOpenBreakerAndIgnoresItsProbes) {
  ManualClock clock;
  auto s = countBased();
  s.open_duration_multiplier = 2;
  s.max_open_duration = seconds(600);
  CircuitBreaker b(s, clock.now());
  trip(b, clock.now());
  clock.advance(seconds(30));
  auto probe = b.tryAcquire(clock.now());
  ASSERT_TRUE(probe);
  ASSERT_EQ(b.state(), State::HalfOpen);
  EXPECT_TRUE(b.observeRemoteOpen(clock.now() + seconds(5), clock.now()));
  EXPECT_EQ(b.state(), State::Open);
  probe.success(milliseconds(1));  // from the earlier state: ignored
  EXPECT_EQ(b.state(), State::Open);
  EXPECT_EQ(b.snapshot(clock.now()).consecutive_reopens, 0U);
  clock.advance(seconds(5));
  auto p = b.tryAcquire(clock.now());
  ASSERT_TRUE(p);
  p.failure(milliseconds(1));  // 1 of 4 probes failed: 25 % < 50 %, still undecided
  fail(b, 1, clock.now());     // 2 of 4: 50 %: reopens, k = 1 (at now + the call's 1 ms)
  ASSERT_EQ(b.state(), State::Open);
  EXPECT_EQ(b.snapshot(clock.now()).open_until, clock.now() + milliseconds(1) + seconds(60));
}

// Verifies: an operator's forced state wins over other instances.
TEST(CircuitBreakerRemote, ForcedStatesIgnoreTheSharedState) {
  ManualClock clock;
  CircuitBreaker b(countBased(), clock.now());
  b.disable(clock.now());
  EXPECT_FALSE(b.observeRemoteOpen(clock.now() + seconds(5), clock.now()));
  EXPECT_EQ(b.state(), State::Disabled);
  b.forceOpen(clock.now());
  EXPECT_FALSE(b.observeRemoteClose(clock.now()));
  EXPECT_EQ(b.state(), State::ForcedOpen);
}

// Verifies: a remote close closes an open or half-open breaker with an empty window and k = 0,
// notified; a closed breaker is left alone (its window kept).
TEST(CircuitBreakerRemote, RemoteCloseClosesOpenAndHalfOpenOnly) {
  ManualClock clock;
  std::vector<Seen> seen;
  CircuitBreaker b(countBased(), clock.now(), [&](State from, State to, TimePoint) {
    seen.push_back({from, to});
  });
  fail(b, 3, clock.now());
  EXPECT_FALSE(b.observeRemoteClose(clock.now()));
  EXPECT_EQ(b.snapshot(clock.now()).calls, 3U);
  fail(b, 7, clock.now());
  ASSERT_EQ(b.state(), State::Open);
  EXPECT_TRUE(b.observeRemoteClose(clock.now()));
  EXPECT_EQ(b.state(), State::Closed);
  EXPECT_EQ(b.snapshot(clock.now()).calls, 0U);
  trip(b, clock.now());  // at the last transition: now + 1 ms
  clock.advance(seconds(31));
  ASSERT_TRUE(b.tryAcquire(clock.now()));
  ASSERT_EQ(b.state(), State::HalfOpen);
  EXPECT_TRUE(b.observeRemoteClose(clock.now()));
  EXPECT_EQ(b.state(), State::Closed);
  ASSERT_EQ(seen.size(), 5U);
  EXPECT_EQ(seen[1].to, State::Closed);
  EXPECT_EQ(seen[1].from, State::Open);
  EXPECT_EQ(seen[4].from, State::HalfOpen);
}

// Verifies: the next own trip after a remote open is reported as the breaker's own.
TEST(CircuitBreakerRemote, OwnOpenAfterARemoteOneIsNotRemote) {
  ManualClock clock;
  CircuitBreaker b(countBased(), clock.now());
  ASSERT_TRUE(b.observeRemoteOpen(clock.now() + seconds(1), clock.now()));
  clock.advance(seconds(1));
  fail(b, 2, clock.now());  // 2 of 4 probes failed: reopens on its own
  ASSERT_EQ(b.state(), State::Open);
  EXPECT_FALSE(b.snapshot(clock.now()).remote_open);
}

}  // namespace
}  // namespace sluice::resilience
