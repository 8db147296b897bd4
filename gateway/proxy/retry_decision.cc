#include "gateway/proxy/retry_decision.h"

#include <algorithm>

#include "resilience/backoff.h"

namespace sluice::gateway::proxy {

namespace {

// Retry-After as a pause: delay-seconds; an HTTP-date (or garbage) is a pause we will not
// honour, so it reads as "longer than any backoff".
std::optional<RetryClock::duration> retryAfterOf(const http::ResponseHead& h) {
  for (const auto& f : h.fields) {
    if (f.id != http::Field::retry_after) continue;
    const std::string_view v = f.value;
    if (v.empty() || v.size() > 9) return RetryClock::duration::max();
    std::int64_t seconds = 0;
    for (char c : v) {
      if (c < '0' || c > '9') return RetryClock::duration::max();
      seconds = seconds * 10 + (c - '0');
    }
    return std::chrono::seconds(seconds);
  }
  return std::nullopt;
}

}  // namespace

RetryCause causeOf(stats::UpstreamError e) noexcept {
  using E = stats::UpstreamError;
  switch (e) {
    case E::ConnectFailure:
    case E::ConnectTimeout:
    case E::PoolTimeout:
      return RetryCause::ConnectFailure;
    case E::Timeout:
      return RetryCause::Timeout;
    case E::Reset:
    case E::BadResponse:
      return RetryCause::Reset;
    default:
      return RetryCause::Never;
  }
}

bool isIdempotent(http::Verb v) noexcept {
  switch (v) {
    case http::Verb::get:
    case http::Verb::head:
    case http::Verb::options:
    case http::Verb::trace:
    case http::Verb::put:
    case http::Verb::delete_:
      return true;
    default:
      return false;
  }
}

FailedTry failedStatus(const http::ResponseHead& head) {
  FailedTry f{RetryCause::Status, head.status, std::nullopt};
  if (head.status == 429 || head.status == 503) f.retry_after = retryAfterOf(head);
  return f;
}

bool statusMayRetry(int status, const config::RetryPolicy& policy, bool response_started) noexcept {
  return status >= 400 && !policy.on.statuses.empty() && !response_started;
}

RetryPlan planRetry(const config::RetryPolicy& policy, const FailedTry& failure,
                    const RetryRequest& request, RetryClock::time_point now, double jitter) {
  if (request.attempt >= policy.attempts) return {RetryVerdict::NoTriesLeft};
  // Anything but a connect failure reached the upstream, which may have acted on it: only a
  // request that can be sent again, and is safe to repeat, goes out twice.
  const bool resendable = request.bodiless && (policy.any_method || isIdempotent(request.method));
  switch (failure.cause) {
    case RetryCause::ConnectFailure:
      if (!policy.on.connect_failure) return {RetryVerdict::NotListed};
      break;
    case RetryCause::Reset:
      if (!policy.on.reset) return {RetryVerdict::NotListed};
      if (!resendable) return {RetryVerdict::NotResendable};
      break;
    case RetryCause::Timeout:
      if (!policy.on.timeout) return {RetryVerdict::NotListed};
      if (!resendable) return {RetryVerdict::NotResendable};
      break;
    case RetryCause::Status:
      if (!std::binary_search(policy.on.statuses.begin(), policy.on.statuses.end(),
                              failure.status)) {
        return {RetryVerdict::NotListed};
      }
      if (!resendable) return {RetryVerdict::NotResendable};
      break;
    case RetryCause::Never:
      return {RetryVerdict::NotListed};
  }
  const resilience::Backoff::Settings backoff{policy.backoff_base, policy.backoff_max, 2.0,
                                              resilience::Jitter::Full};
  RetryClock::duration pause = resilience::Backoff::delay(backoff, request.attempt - 1, {}, jitter);
  if (failure.retry_after) {
    // The upstream asked for a pause: honour it, or do not retry if it is longer than we hold a
    // client for (the client gets the upstream's answer, Retry-After included).
    if (*failure.retry_after > policy.backoff_max) return {RetryVerdict::RetryAfterTooLong};
    pause = std::max(pause, *failure.retry_after);
  }
  if (request.deadline - now < pause + kMinTry) return {RetryVerdict::NoTimeLeft};
  return {RetryVerdict::Retry, pause};
}

}  // namespace sluice::gateway::proxy
