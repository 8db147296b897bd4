// The forwarder's retry decision: each condition alone, the order in which they are checked, the
// pause (backoff, Retry-After) and the shared permissions taken last.
#include "gateway/proxy/retry_decision.h"

#include <array>
#include <ostream>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::gateway::proxy {

// Verdicts by name in failure messages (found by argument-dependent lookup, so not in the
// anonymous namespace).
// NOLINTNEXTLINE(readability-identifier-naming): the name GoogleTest looks up
static void PrintTo(RetryVerdict v, std::ostream* os) {
  constexpr std::array<std::string_view, 8> kNames = {
      "Retry",      "NoTriesLeft",  "NotListed",  "NotResendable", "RetryAfterTooLong",
      "NoTimeLeft", "BulkheadFull", "BudgetSpent"};
  *os << kNames.at(static_cast<std::size_t>(v));
}

namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using E = stats::UpstreamError;
using V = RetryVerdict;

constexpr RetryClock::time_point kNow = RetryClock::time_point{} + seconds(1000);

// A policy that retries everything it can name: each test turns off what it checks.
config::RetryPolicy everything() {
  config::RetryPolicy p;
  p.attempts = 3;
  p.on.connect_failure = true;
  p.on.reset = true;
  p.on.timeout = true;
  p.on.statuses = {429, 502, 503};  // sorted, as the config loader leaves them
  p.backoff_base = milliseconds(25);
  p.backoff_max = milliseconds(250);
  return p;
}

// A first try of a bodiless GET with a second left.
RetryRequest getRequest() { return {1, true, http::Verb::get, kNow + seconds(1)}; }

RetryRequest postWithBody() { return {1, false, http::Verb::post, kNow + seconds(1)}; }

V verdictOf(const config::RetryPolicy& p, const FailedTry& f, const RetryRequest& r,
            double jitter = 0.5) {
  return planRetry(p, f, r, kNow, jitter).verdict;
}

TEST(RetryDecision, CausesFollowTheRouteConditions) {
  EXPECT_EQ(causeOf(E::ConnectFailure), RetryCause::ConnectFailure);
  EXPECT_EQ(causeOf(E::ConnectTimeout), RetryCause::ConnectFailure);
  EXPECT_EQ(causeOf(E::PoolTimeout), RetryCause::ConnectFailure);  // nothing was sent
  EXPECT_EQ(causeOf(E::Timeout), RetryCause::Timeout);
  EXPECT_EQ(causeOf(E::Reset), RetryCause::Reset);
  EXPECT_EQ(causeOf(E::BadResponse), RetryCause::Reset);
  for (const E never : {E::Truncated, E::NoHost, E::Deadline, E::Overflow, E::EmptySubset}) {
    EXPECT_EQ(causeOf(never), RetryCause::Never)
        << stats::kUpstreamErrorNames.at(static_cast<std::size_t>(never));
  }
}

TEST(RetryDecision, IdempotentMethodsAreThoseOfRfc9110) {
  for (const auto v : {http::Verb::get, http::Verb::head, http::Verb::options, http::Verb::trace,
                       http::Verb::put, http::Verb::delete_}) {
    EXPECT_TRUE(isIdempotent(v)) << static_cast<int>(v);
  }
  for (const auto v :
       {http::Verb::post, http::Verb::patch, http::Verb::connect, http::Verb::unknown}) {
    EXPECT_FALSE(isIdempotent(v)) << static_cast<int>(v);
  }
}

TEST(RetryDecision, TriesLeftCountTheFirstTry) {
  auto p = everything();
  const FailedTry reset{RetryCause::Reset};
  auto r = getRequest();
  for (std::uint32_t attempt : {1U, 2U}) {
    r.attempt = attempt;
    EXPECT_EQ(verdictOf(p, reset, r), V::Retry) << attempt;
  }
  r.attempt = 3;
  EXPECT_EQ(verdictOf(p, reset, r), V::NoTriesLeft);
  p.attempts = 1;  // retries off
  r.attempt = 1;
  EXPECT_EQ(verdictOf(p, reset, r), V::NoTriesLeft);
}

TEST(RetryDecision, ConnectFailuresAreRetriedForAnyRequest) {
  auto p = everything();
  const FailedTry connect{RetryCause::ConnectFailure};
  // Nothing reached the upstream: a POST with a body may go to another host.
  EXPECT_EQ(verdictOf(p, connect, postWithBody()), V::Retry);
  EXPECT_EQ(verdictOf(p, connect, getRequest()), V::Retry);
  p.on.connect_failure = false;
  EXPECT_EQ(verdictOf(p, connect, getRequest()), V::NotListed);
}

TEST(RetryDecision, ResetsAndTimeoutsOnlyForRequestsSafeToSendAgain) {
  for (const RetryCause cause : {RetryCause::Reset, RetryCause::Timeout}) {
    SCOPED_TRACE(static_cast<int>(cause));
    auto p = everything();
    const FailedTry f{cause};
    EXPECT_EQ(verdictOf(p, f, getRequest()), V::Retry);
    EXPECT_EQ(verdictOf(p, f, postWithBody()), V::NotResendable);
    auto bodiless_post = getRequest();
    bodiless_post.method = http::Verb::post;
    EXPECT_EQ(verdictOf(p, f, bodiless_post), V::NotResendable);
    auto put_with_body = getRequest();
    put_with_body.method = http::Verb::put;
    put_with_body.bodiless = false;  // the body is gone: it cannot be sent again
    EXPECT_EQ(verdictOf(p, f, put_with_body), V::NotResendable);
    p.any_method = true;  // methods: any
    EXPECT_EQ(verdictOf(p, f, bodiless_post), V::Retry);
    EXPECT_EQ(verdictOf(p, f, postWithBody()), V::NotResendable);
    if (cause == RetryCause::Reset) {
      p.on.reset = false;
    } else {
      p.on.timeout = false;
    }
    EXPECT_EQ(verdictOf(p, f, getRequest()), V::NotListed);
  }
}

TEST(RetryDecision, StatusesOnlyThoseListedAndOnlyForRequestsSafeToSendAgain) {
  auto p = everything();
  EXPECT_EQ(verdictOf(p, {RetryCause::Status, 503}, getRequest()), V::Retry);
  EXPECT_EQ(verdictOf(p, {RetryCause::Status, 502}, getRequest()), V::Retry);
  EXPECT_EQ(verdictOf(p, {RetryCause::Status, 500}, getRequest()), V::NotListed);
  EXPECT_EQ(verdictOf(p, {RetryCause::Status, 504}, getRequest()), V::NotListed);
  EXPECT_EQ(verdictOf(p, {RetryCause::Status, 503}, postWithBody()), V::NotResendable);
  p.on.statuses.clear();
  EXPECT_EQ(verdictOf(p, {RetryCause::Status, 503}, getRequest()), V::NotListed);
}

TEST(RetryDecision, FailuresThatAreNeverRetried) {
  EXPECT_EQ(verdictOf(everything(), {RetryCause::Never}, getRequest()), V::NotListed);
}

TEST(RetryDecision, PauseIsFullJitterOverTheExponentialCappedAtBackoffMax) {
  const auto p = everything();  // 25 ms base, 250 ms cap
  const FailedTry reset{RetryCause::Reset};
  auto r = getRequest();
  const auto pause = [&](std::uint32_t attempt, double jitter) {
    r.attempt = attempt;
    const RetryPlan plan = planRetry(p, reset, r, kNow, jitter);
    EXPECT_TRUE(plan.retry());
    return plan.pause;
  };
  EXPECT_EQ(pause(1, 0.0), nanoseconds(0));
  EXPECT_EQ(pause(1, 0.5), microseconds(12'500));  // half of 25 ms
  EXPECT_EQ(pause(2, 0.5), milliseconds(25));      // half of 50 ms
  auto many = everything();
  many.attempts = 10;
  r.attempt = 8;  // 25 ms * 2^7 = 3.2 s, capped
  EXPECT_EQ(planRetry(many, reset, r, kNow, 0.5).pause, milliseconds(125));
  EXPECT_LE(planRetry(many, reset, r, kNow, 0.999999).pause, milliseconds(250));
}

TEST(RetryDecision, RetryAfterLengthensThePauseUpToBackoffMax) {
  const auto p = everything();
  const auto plan = [&](std::optional<RetryClock::duration> retry_after) {
    return planRetry(p, {RetryCause::Status, 503, retry_after}, getRequest(), kNow, 0.5);
  };
  // Longer than the backoff: it is the pause.
  EXPECT_EQ(plan(milliseconds(200)).pause, milliseconds(200));
  // Shorter: the backoff stands.
  EXPECT_EQ(plan(milliseconds(1)).pause, microseconds(12'500));
  EXPECT_EQ(plan(seconds(0)).pause, microseconds(12'500));
  // As long as backoff_max is still honoured; longer is not waited for at all.
  EXPECT_EQ(plan(milliseconds(250)).verdict, V::Retry);
  EXPECT_EQ(plan(milliseconds(250)).pause, milliseconds(250));
  EXPECT_EQ(plan(milliseconds(251)).verdict, V::RetryAfterTooLong);
  EXPECT_EQ(plan(seconds(1)).verdict, V::RetryAfterTooLong);
  EXPECT_EQ(plan(RetryClock::duration::max()).verdict, V::RetryAfterTooLong);
}

TEST(RetryDecision, PauseAndOneMoreTryMustFitBeforeTheDeadline) {
  const auto p = everything();
  const FailedTry asked{RetryCause::Status, 503, milliseconds(200)};  // a pause of exactly 200 ms
  auto r = getRequest();
  r.deadline = kNow + milliseconds(200) + kMinTry;
  EXPECT_EQ(planRetry(p, asked, r, kNow, 0.5).verdict, V::Retry);
  r.deadline -= nanoseconds(1);
  EXPECT_EQ(planRetry(p, asked, r, kNow, 0.5).verdict, V::NoTimeLeft);
  // A deadline already past, with no pause at all.
  r.deadline = kNow - milliseconds(5);
  EXPECT_EQ(planRetry(p, {RetryCause::Reset}, r, kNow, 0.0).verdict, V::NoTimeLeft);
  // The jitter draw decides whether the backoff fits.
  r.deadline = kNow + milliseconds(10);
  EXPECT_EQ(planRetry(p, {RetryCause::Reset}, r, kNow, 0.2).verdict, V::Retry);       // 5 ms
  EXPECT_EQ(planRetry(p, {RetryCause::Reset}, r, kNow, 0.8).verdict, V::NoTimeLeft);  // 20 ms
}

TEST(RetryDecision, ConditionsAreCheckedInOrder) {
  auto p = everything();
  auto r = postWithBody();
  r.deadline = kNow;  // no time either
  // Tries first: nothing else matters once they are spent.
  r.attempt = 3;
  EXPECT_EQ(verdictOf(p, {RetryCause::Never}, r), V::NoTriesLeft);
  r.attempt = 1;
  // Then the condition, before whether the request can be sent again.
  p.on.reset = false;
  EXPECT_EQ(verdictOf(p, {RetryCause::Reset}, r), V::NotListed);
  EXPECT_EQ(verdictOf(p, {RetryCause::Status, 500}, r), V::NotListed);
  p.on.reset = true;
  EXPECT_EQ(verdictOf(p, {RetryCause::Reset}, r), V::NotResendable);
  // A Retry-After too long is decided before the deadline.
  EXPECT_EQ(verdictOf(p, {RetryCause::ConnectFailure, 0, seconds(5)}, r), V::RetryAfterTooLong);
  EXPECT_EQ(verdictOf(p, {RetryCause::ConnectFailure}, r), V::NoTimeLeft);
}

http::ResponseHead responseWith(int status, std::vector<http::HeaderField> fields) {
  http::ResponseHead h;
  h.status = status;
  h.fields = std::move(fields);
  return h;
}

http::HeaderField retryAfter(std::string_view value) {
  return {http::Field::retry_after, "Retry-After", value};
}

TEST(RetryDecision, StatusFailuresReadRetryAfterOn429And503Only) {
  const auto on = [](int status, std::string_view value) {
    return failedStatus(
        responseWith(status, {{http::Field::server, "Server", "x"}, retryAfter(value)}));
  };
  const FailedTry f = on(503, "2");
  EXPECT_EQ(f.cause, RetryCause::Status);
  EXPECT_EQ(f.status, 503);
  EXPECT_EQ(f.retry_after, seconds(2));
  EXPECT_EQ(on(429, "0").retry_after, seconds(0));
  EXPECT_EQ(on(429, "999999999").retry_after, seconds(999'999'999));
  EXPECT_FALSE(on(500, "2").retry_after.has_value());
  EXPECT_FALSE(on(502, "2").retry_after.has_value());
  EXPECT_FALSE(failedStatus(responseWith(503, {})).retry_after.has_value());
  // What cannot be honoured reads as longer than any backoff.
  for (const std::string_view bad :
       {"Wed, 21 Oct 2015 07:28:00 GMT", "", "1234567890", "+1", "1.5", " 1", "-1"}) {
    EXPECT_EQ(on(503, bad).retry_after, RetryClock::duration::max()) << '"' << bad << '"';
  }
  // The first Retry-After counts.
  EXPECT_EQ(failedStatus(responseWith(503, {retryAfter("1"), retryAfter("x")})).retry_after,
            seconds(1));
}

TEST(RetryDecision, OnlyErrorStatusesOfRoutesThatListSomeBeforeTheResponseStarted) {
  const auto p = everything();
  EXPECT_TRUE(statusMayRetry(400, p, false));
  EXPECT_TRUE(statusMayRetry(503, p, false));
  EXPECT_FALSE(statusMayRetry(399, p, false));
  EXPECT_FALSE(statusMayRetry(200, p, false));
  EXPECT_FALSE(statusMayRetry(503, p, true));  // a byte reached the client: too late
  config::RetryPolicy none;
  EXPECT_FALSE(statusMayRetry(503, none, false));
}

// A budget that admits exactly one retry (its floor over its window), and counts its callers.
struct OneRetryBudget {
  resilience::RetryBudget budget{{0.0, 0.1, seconds(10), 10}};
  int asked = 0;
  resilience::RetryBudget::Permit operator()() {
    ++asked;
    return budget.tryAcquireRetry(kNow);
  }
};

config::Bulkhead retriesCap(std::uint32_t n) {
  config::Bulkhead b;
  b.max_retries = n;
  return b;
}

constexpr auto kRetries = static_cast<std::size_t>(upstream::Bulkhead::Limit::Retries);

TEST(RetryDecision, TakesTheBulkheadSlotThenTheBudgetPermit) {
  upstream::Bulkhead bulkhead(retriesCap(2));
  OneRetryBudget budget;
  RetryHold hold;
  EXPECT_EQ(takeRetry(
                &bulkhead, [&] { return budget(); }, hold),
            V::Retry);
  EXPECT_TRUE(hold.permit.admitted());
  EXPECT_EQ(bulkhead.inUse(kRetries), 1U);
  EXPECT_EQ(budget.budget.inFlightRetries(), 1U);
  hold.release();
  EXPECT_EQ(bulkhead.inUse(kRetries), 0U);
  EXPECT_EQ(budget.budget.inFlightRetries(), 0U);
}

TEST(RetryDecision, AFullBulkheadLeavesTheBudgetUnspent) {
  upstream::Bulkhead bulkhead(retriesCap(0));
  OneRetryBudget budget;
  RetryHold hold;
  EXPECT_EQ(takeRetry(
                &bulkhead, [&] { return budget(); }, hold),
            V::BulkheadFull);
  EXPECT_EQ(budget.asked, 0);  // the shared budget is spent only on retries that are made
  EXPECT_EQ(bulkhead.overflows(kRetries), 1U);
  EXPECT_FALSE(hold.permit.admitted());
}

TEST(RetryDecision, ASpentBudgetGivesTheBulkheadSlotBack) {
  upstream::Bulkhead bulkhead(retriesCap(5));
  OneRetryBudget budget;
  RetryHold first;
  ASSERT_EQ(takeRetry(
                &bulkhead, [&] { return budget(); }, first),
            V::Retry);
  RetryHold second;
  EXPECT_EQ(takeRetry(
                &bulkhead, [&] { return budget(); }, second),
            V::BudgetSpent);
  EXPECT_EQ(bulkhead.inUse(kRetries), 1U);  // only the first retry's
  EXPECT_FALSE(second.permit.admitted());
  EXPECT_TRUE(first.permit.admitted());
}

TEST(RetryDecision, WithoutABulkheadOnlyTheBudgetDecides) {
  OneRetryBudget budget;
  RetryHold hold;
  EXPECT_EQ(takeRetry(
                nullptr, [&] { return budget(); }, hold),
            V::Retry);
  EXPECT_EQ(takeRetry(
                nullptr, [&] { return budget(); }, hold),
            V::BudgetSpent);
  EXPECT_TRUE(hold.permit.admitted());  // a refusal leaves what the hold had
}

TEST(RetryDecision, ANewRetryReplacesTheHoldOfThePreviousOne) {
  // A status retried on a try that was itself a retry: the next retry's units are taken while
  // the current one's are still held, then replace them.
  upstream::Bulkhead bulkhead(retriesCap(2));
  resilience::RetryBudget budget({0.0, 10, seconds(10), 10});
  RetryHold hold;
  ASSERT_EQ(takeRetry(
                &bulkhead, [&] { return budget.tryAcquireRetry(kNow); }, hold),
            V::Retry);
  ASSERT_EQ(takeRetry(
                &bulkhead, [&] { return budget.tryAcquireRetry(kNow); }, hold),
            V::Retry);
  EXPECT_EQ(bulkhead.inUse(kRetries), 1U);
  EXPECT_EQ(budget.inFlightRetries(), 1U);
  // With a cap of one, the held slot is what refuses the next.
  upstream::Bulkhead one(retriesCap(1));
  RetryHold held;
  ASSERT_EQ(takeRetry(
                &one, [&] { return budget.tryAcquireRetry(kNow); }, held),
            V::Retry);
  EXPECT_EQ(takeRetry(
                &one, [&] { return budget.tryAcquireRetry(kNow); }, held),
            V::BulkheadFull);
}

}  // namespace
}  // namespace sluice::gateway::proxy
