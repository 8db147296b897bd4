// The forwarder's outcome decisions: which failure of a try becomes which outcome, which error is
// counted, what the host is told it did, and which status the client gets.
#include "gateway/proxy/try_outcome.h"

#include <array>
#include <ostream>
#include <set>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "gateway/proxy/retry_decision.h"

namespace sluice::gateway::proxy {

// Outcomes and errors by name in failure messages (found by argument-dependent lookup, so not in
// the anonymous namespace).
// NOLINTNEXTLINE(readability-identifier-naming): the name GoogleTest looks up
static void PrintTo(TryOutcome o, std::ostream* os) {
  constexpr std::array<std::string_view, 5> kNames = {"Done", "StaleRetry", "RetryStatus", "Failed",
                                                      "ClientFailed"};
  *os << kNames.at(static_cast<std::size_t>(o));
}

}  // namespace sluice::gateway::proxy

namespace sluice::gateway::stats {

// NOLINTNEXTLINE(readability-identifier-naming): the name GoogleTest looks up
static void PrintTo(UpstreamError e, std::ostream* os) {
  *os << kUpstreamErrorNames.at(static_cast<std::size_t>(e));
}

}  // namespace sluice::gateway::stats

namespace sluice::gateway::proxy {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using E = stats::UpstreamError;
using O = TryOutcome;

constexpr std::size_t kErrors = static_cast<std::size_t>(E::Count);

std::string nameOf(E e) {
  return std::string(stats::kUpstreamErrorNames.at(static_cast<std::size_t>(e)));
}

// A pooled connection that died while idle, for a GET sent whole: the keep-alive race.
HeadReadFailure keepAliveRace() {
  HeadReadFailure f;
  f.reused = true;
  f.replayable = true;
  return f;
}

TEST(ForwardOutcome, AClosedPooledConnectionIsReplayedNotRetried) {
  const TryEnd end = headReadFailed(keepAliveRace());
  EXPECT_EQ(end.outcome, O::StaleRetry);
}

TEST(ForwardOutcome, AHeadReadFailureIsAResetUnlessEveryStaleConditionHolds) {
  const auto failed_as_reset = [](const HeadReadFailure& f) {
    const TryEnd end = headReadFailed(f);
    return end.outcome == O::Failed && end.error == E::Reset;
  };
  auto f = keepAliveRace();
  f.received_any = true;  // the upstream had started answering: it saw the request
  EXPECT_TRUE(failed_as_reset(f));
  f = keepAliveRace();
  f.reused = false;  // a fresh connection: no race, the upstream closed on this request
  EXPECT_TRUE(failed_as_reset(f));
  f = keepAliveRace();
  f.replayable = false;  // a body or an unsafe method: not sent twice
  EXPECT_TRUE(failed_as_reset(f));
  f = keepAliveRace();
  f.send_failed = true;  // the request did not go out whole
  EXPECT_TRUE(failed_as_reset(f));
}

TEST(ForwardOutcome, ATimeoutIsATimeoutWhateverElseHeld) {
  auto f = keepAliveRace();
  f.timed_out = true;
  const TryEnd end = headReadFailed(f);
  EXPECT_EQ(end.outcome, O::Failed);
  EXPECT_EQ(end.error, E::Timeout);
}

// The client's deadline cut the try short, with no time left.
TryTimes clientCut() { return {true, true, microseconds(999)}; }

TEST(ForwardOutcome, TimeoutsThatTheClientsDeadlineCutShortAreASpentDeadline) {
  for (const E timeout : {E::Timeout, E::ConnectTimeout, E::PoolTimeout}) {
    EXPECT_EQ(chargedError(timeout, clientCut()), E::Deadline) << nameOf(timeout);
  }
}

TEST(ForwardOutcome, OtherTimeoutsStayTheUpstreamsOrThePoolsOwn) {
  auto t = clientCut();
  t.client_deadline = false;  // the route's own timeout ran out
  EXPECT_EQ(chargedError(E::Timeout, t), E::Timeout);
  t = clientCut();
  t.try_had_all = false;  // per_try_timeout ended the try
  EXPECT_EQ(chargedError(E::Timeout, t), E::Timeout);
  t = clientCut();
  t.left = milliseconds(1);  // time was left: the connect's or the pool's own limit ended it
  EXPECT_EQ(chargedError(E::ConnectTimeout, t), E::ConnectTimeout);
  EXPECT_EQ(chargedError(E::PoolTimeout, t), E::PoolTimeout);
  // Not a timeout at all.
  for (const E e : {E::ConnectFailure, E::Reset, E::BadResponse, E::NoHost, E::Overflow}) {
    EXPECT_EQ(chargedError(e, clientCut()), e) << nameOf(e);
  }
}

TEST(ForwardOutcome, TheHostIsJudgedByWhatItAnswered) {
  EXPECT_EQ(hostVerdict(O::Done, 200, false, E::Reset), 200);
  EXPECT_EQ(hostVerdict(O::Done, 503, false, E::Reset), 503);
  EXPECT_EQ(hostVerdict(O::Done, 200, true, E::Truncated), 0);  // its body was cut short
  EXPECT_EQ(hostVerdict(O::RetryStatus, 503, false, E::Reset), 503);
}

TEST(ForwardOutcome, ConnectionFailuresCountAgainstTheHost) {
  for (const E e : {E::ConnectFailure, E::ConnectTimeout, E::Timeout, E::Reset, E::BadResponse}) {
    EXPECT_EQ(hostVerdict(O::Failed, 0, false, e), 0) << nameOf(e);
  }
}

TEST(ForwardOutcome, LocalReasonsSayNothingAboutTheHost) {
  for (const E e :
       {E::PoolTimeout, E::Overflow, E::Deadline, E::NoHost, E::EmptySubset, E::Truncated}) {
    EXPECT_EQ(hostVerdict(O::Failed, 0, false, e), std::nullopt) << nameOf(e);
  }
  EXPECT_EQ(hostVerdict(O::StaleRetry, 0, false, E::Reset), std::nullopt);
  EXPECT_EQ(hostVerdict(O::ClientFailed, 200, false, E::Reset), std::nullopt);
}

TEST(ForwardOutcome, OnlyFailuresOfAnUpstreamThatWasAskedAreItsFault) {
  for (std::size_t i = 0; i < kErrors; ++i) {
    const auto e = static_cast<E>(i);
    const bool local = e == E::Deadline || e == E::Overflow || e == E::EmptySubset;
    EXPECT_EQ(upstreamAtFault(e), !local) << nameOf(e);
  }
}

TEST(ForwardOutcome, EachFailureHasItsStatus) {
  const std::array<int, kErrors> expected = {
      502,  // connect_failure
      504,  // connect_timeout
      503,  // pool_timeout
      504,  // timeout
      502,  // reset
      502,  // bad_response
      502,  // truncated
      503,  // no_host
      504,  // deadline
      503,  // overflow
      503,  // empty_subset
  };
  std::set<std::string> bodies;
  for (std::size_t i = 0; i < kErrors; ++i) {
    const auto e = static_cast<E>(i);
    const http::LocalReply r = upstreamErrorReply(e);
    EXPECT_EQ(r.status, expected.at(i)) << nameOf(e);
    EXPECT_FALSE(r.close) << nameOf(e);  // the client connection stays usable
    EXPECT_NE(r.body, "upstream error\n") << nameOf(e);
    bodies.insert(r.body);
    // Waiting helps when sluice itself is short of capacity.
    const bool retry_after = e == E::PoolTimeout || e == E::Overflow;
    EXPECT_EQ(r.fields.size(), retry_after ? 1U : 0U) << nameOf(e);
    if (retry_after && !r.fields.empty()) {
      EXPECT_EQ(r.fields[0].first, "Retry-After");
      EXPECT_EQ(r.fields[0].second, "1");
    }
  }
  EXPECT_EQ(bodies.size(), kErrors);  // each says what happened
}

// The loop end to end, as values: a reset on the first try of a GET on a route that retries
// resets is retried; its second reset, on the last try, is answered 502 and held against the host.
TEST(ForwardOutcome, ARetriedResetThenAFinalOne) {
  config::RetryPolicy p;
  p.attempts = 2;
  p.on.reset = true;
  const auto now = RetryClock::time_point{} + std::chrono::seconds(5);
  RetryRequest r{1, true, http::Verb::get, now + std::chrono::seconds(1)};
  const TryEnd first = headReadFailed({});
  ASSERT_EQ(first.outcome, O::Failed);
  EXPECT_EQ(hostVerdict(first.outcome, 0, false, first.error), 0);
  EXPECT_TRUE(planRetry(p, {causeOf(first.error)}, r, now, 0.5).retry());
  r.attempt = 2;
  const TryEnd second = headReadFailed({});
  EXPECT_EQ(planRetry(p, {causeOf(second.error)}, r, now, 0.5).verdict, RetryVerdict::NoTriesLeft);
  EXPECT_EQ(upstreamErrorReply(second.error).status, 502);
  EXPECT_TRUE(upstreamAtFault(second.error));
}

}  // namespace
}  // namespace sluice::gateway::proxy
