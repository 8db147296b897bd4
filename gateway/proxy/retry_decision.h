// Whether a failed try is tried again, and after what pause: the forwarder's retry decision
// (docs/retries-and-deadlines.md) as functions of values. The forwarder's loop is a coroutine
// around sockets, pools and timers; kept inside it, each condition below could only be tested end
// to end, by making an upstream fail in just the right way. Here the time, the deadline and the
// random draw are parameters, so every condition and their order can be tested alone.
//
// The conditions, in the order they are checked:
//   1. tries left (the route's `attempts` counts the first try);
//   2. a failure the route retries: a connect failure for any request (nothing was sent); a
//      reset, a timeout or a listed status only for a request that can be sent again and is safe
//      to repeat (no body; an idempotent method, unless the route says `methods: any`);
//   3. the pause: full-jitter exponential backoff; the upstream's Retry-After (429/503) lengthens
//      it, and one longer than backoff_max means no retry at all (the client gets the upstream's
//      answer, Retry-After included, rather than being held for it);
//   4. the pause and one more try (kMinTry) fit before the request's deadline;
//   5. a retry slot of the cluster's bulkhead, then 6. the cluster's retry budget. These two are
//      shared by every worker and taking them spends them, so they come last: only a retry that
//      passed everything else may spend them. planRetry() checks 1-4, takeRetry() 5-6.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

#include "gateway/config/config.h"
#include "gateway/http/head.h"
#include "gateway/stats/worker_stats.h"
#include "gateway/upstream/bulkhead.h"
#include "resilience/retry_budget.h"

namespace sluice::gateway::proxy {

using RetryClock = std::chrono::steady_clock;

// Least deadline left worth starting a try with (or, after a retry's pause, continuing with):
// less, and the upstream would be loaded with work whose answer nobody waits for.
inline constexpr auto kMinTry = std::chrono::milliseconds(1);

// A failure as the route's retry conditions (`retry.on`) name it.
enum class RetryCause : std::uint8_t { ConnectFailure, Reset, Timeout, Status, Never };

// The condition that covers `e`: a pool timeout is a connect failure (nothing was sent); garbage
// from the upstream is a reset; a truncated body, a spent deadline, no host, a full bulkhead or an
// empty subset are never retried.
[[nodiscard]] RetryCause causeOf(stats::UpstreamError e) noexcept;

// Safe to repeat (RFC 9110 9.2.2): the upstream may have acted on a try that failed after the
// request left.
[[nodiscard]] bool isIdempotent(http::Verb v) noexcept;

// What a failed try says.
struct FailedTry {
  RetryCause cause = RetryCause::Never;
  int status = 0;  // RetryCause::Status: the response's status
  // The pause the upstream asked for (Retry-After on a 429 or 503); duration::max() for one we
  // will not honour (an HTTP-date, garbage).
  std::optional<RetryClock::duration> retry_after;
};

// A response with this head as a failed try: its status, and its Retry-After if a 429 or 503.
[[nodiscard]] FailedTry failedStatus(const http::ResponseHead& head);

// Whether a response may be dropped for a retry at all, before anything else is weighed: an error
// status, on a route that lists statuses, and not one byte of any response sent to the client yet.
[[nodiscard]] bool statusMayRetry(int status, const config::RetryPolicy& policy,
                                  bool response_started) noexcept;

// The request, as far as retrying it goes.
struct RetryRequest {
  std::uint32_t attempt = 1;  // the try that failed; 1 for the first
  bool bodiless = true;       // nothing to send again but the head
  http::Verb method = http::Verb::get;
  RetryClock::time_point deadline;  // the request's absolute deadline
};

// Why a failure is not retried (the first condition that said no), or Retry.
enum class RetryVerdict : std::uint8_t {
  Retry,
  NoTriesLeft,
  NotListed,          // the route does not retry this kind of failure
  NotResendable,      // it does, but the request has a body or a method not safe to repeat
  RetryAfterTooLong,  // the upstream asked for a pause longer than backoff_max
  NoTimeLeft,         // the pause and one more try do not fit before the deadline
  BulkheadFull,       // the cluster's max_retries are in flight
  BudgetSpent,        // the cluster's retry budget said no
};

struct RetryPlan {
  RetryVerdict verdict = RetryVerdict::NotListed;
  RetryClock::duration pause{};  // Retry: the wait before the next try

  [[nodiscard]] bool retry() const noexcept { return verdict == RetryVerdict::Retry; }
};

// Conditions 1 to 4. `jitter`: a uniform draw in [0, 1) for the backoff's full jitter.
[[nodiscard]] RetryPlan planRetry(const config::RetryPolicy& policy, const FailedTry& failure,
                                  const RetryRequest& request, RetryClock::time_point now,
                                  double jitter);

// What a retry holds while it is in flight, so that the bulkhead and the budget's in-flight
// count see it until the try ends.
struct RetryHold {
  upstream::Bulkhead::Slot slot;
  resilience::RetryBudget::Permit permit;

  void release() noexcept {
    permit.release();
    slot.release();
  }
};

// Conditions 5 and 6, for a plan that passed 1 to 4: a retry unit of `bulkhead` (null: no caps),
// then a permit from `ask_budget()` (a callable returning a resilience::RetryBudget::Permit; the
// cluster reports its pending first tries before asking). A refused budget gives the slot back.
// On Retry both go into `hold`, replacing (and so releasing) what it held; otherwise `hold` is
// left as it was.
template <typename AskBudget>
[[nodiscard]] RetryVerdict takeRetry(upstream::Bulkhead* bulkhead, AskBudget&& ask_budget,
                                     RetryHold& hold) {
  auto slot = upstream::Bulkhead::acquire(bulkhead, upstream::Bulkhead::Limit::Retries);
  if (!slot) return RetryVerdict::BulkheadFull;
  resilience::RetryBudget::Permit permit = std::forward<AskBudget>(ask_budget)();
  if (!permit) return RetryVerdict::BudgetSpent;
  hold.permit = std::move(permit);
  hold.slot = std::move(*slot);
  return RetryVerdict::Retry;
}

}  // namespace sluice::gateway::proxy
