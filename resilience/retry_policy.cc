#include "resilience/retry_policy.h"

#include <algorithm>
#include <limits>

namespace sluice::resilience {

std::optional<std::string> RetryPolicy::validate(const Settings& settings) {
  if (settings.max_attempts < 1) {
    return "max_attempts must be at least 1";
  }
  if (auto problem = Backoff::validate(settings.backoff)) {
    return "backoff: " + *problem;
  }
  if (settings.max_retry_after < Duration::zero()) {
    return "max_retry_after must be >= 0";
  }
  if (settings.min_attempt_time < Duration::zero()) {
    return "min_attempt_time must be >= 0";
  }
  return std::nullopt;
}

RetryPolicy::Decision RetryPolicy::onFailure(const Failure& failure, RetryBudget* budget) {
  if (failed_attempts_ < std::numeric_limits<std::uint32_t>::max()) {
    ++failed_attempts_;
  }
  Decision decision;
  if (failed_attempts_ >= std::max<std::uint32_t>(settings_.max_attempts, 1)) {
    decision.verdict = Verdict::AttemptsExhausted;
    return decision;
  }
  if (failure.deadline.expired(failure.now)) {
    decision.verdict = Verdict::DeadlineExceeded;
    return decision;
  }
  const Duration remaining = failure.deadline.remaining(failure.now);
  Duration delay = backoff_.peek(failure.u);
  if (settings_.retry_after == RetryAfterMode::Honour && failure.retry_after) {
    const Duration hint = std::max(*failure.retry_after, Duration::zero());
    if (hint > settings_.max_retry_after) {
      decision.verdict = Verdict::RetryAfterTooLong;
      return decision;
    }
    delay = std::max(delay, hint);
  }
  // delay + min_attempt_time < remaining, written so that it cannot overflow (both are >= 0 and
  // remaining may be Duration::max() for an infinite deadline).
  if (!failure.deadline.isInfinite() &&
      (delay >= remaining || settings_.min_attempt_time >= remaining - delay)) {
    decision.verdict = Verdict::DeadlineExceeded;
    return decision;
  }
  if (budget != nullptr) {
    decision.budget_permit = budget->tryAcquireRetry(failure.now);
    if (!decision.budget_permit) {
      decision.verdict = Verdict::BudgetExhausted;
      return decision;
    }
  }
  (void)backoff_.next(failure.u);  // the retry after this one backs off further
  decision.verdict = Verdict::Retry;
  decision.delay = delay;
  return decision;
}

const char* toString(RetryPolicy::Verdict verdict) noexcept {
  switch (verdict) {
    case RetryPolicy::Verdict::Retry:
      return "retry";
    case RetryPolicy::Verdict::AttemptsExhausted:
      return "attempts_exhausted";
    case RetryPolicy::Verdict::DeadlineExceeded:
      return "deadline_exceeded";
    case RetryPolicy::Verdict::RetryAfterTooLong:
      return "retry_after_too_long";
    case RetryPolicy::Verdict::BudgetExhausted:
      return "budget_exhausted";
  }
  return "unknown";
}

}  // namespace sluice::resilience
