#include "gateway/proxy/try_outcome.h"

#include "gateway/proxy/retry_decision.h"

namespace sluice::gateway::proxy {

namespace {

bool isTimeout(stats::UpstreamError e) {
  return e == stats::UpstreamError::Timeout || e == stats::UpstreamError::ConnectTimeout ||
         e == stats::UpstreamError::PoolTimeout;
}

}  // namespace

TryEnd headReadFailed(const HeadReadFailure& f) noexcept {
  if (f.timed_out) return {TryOutcome::Failed, stats::UpstreamError::Timeout};
  if (!f.received_any && f.reused && f.replayable && !f.send_failed) {
    return {TryOutcome::StaleRetry, stats::UpstreamError::Reset};
  }
  return {TryOutcome::Failed, stats::UpstreamError::Reset};
}

stats::UpstreamError chargedError(stats::UpstreamError e, const TryTimes& times) noexcept {
  if (isTimeout(e) && times.client_deadline && times.try_had_all && times.left < kMinTry) {
    return stats::UpstreamError::Deadline;
  }
  return e;
}

std::optional<int> hostVerdict(TryOutcome outcome, int status, bool truncated,
                               stats::UpstreamError error) noexcept {
  switch (outcome) {
    case TryOutcome::Done:
      return truncated ? 0 : status;
    case TryOutcome::RetryStatus:
      return status;
    case TryOutcome::Failed:
      if (error != stats::UpstreamError::PoolTimeout && error != stats::UpstreamError::Overflow &&
          causeOf(error) != RetryCause::Never) {
        return 0;
      }
      return std::nullopt;
    case TryOutcome::StaleRetry:
    case TryOutcome::ClientFailed:
      return std::nullopt;
  }
  return std::nullopt;
}

bool upstreamAtFault(stats::UpstreamError e) noexcept { return stats::upstreamAsked(e); }

http::LocalReply upstreamErrorReply(stats::UpstreamError e) {
  using E = stats::UpstreamError;
  switch (e) {
    case E::ConnectFailure:
      return http::LocalReply::text(502, "upstream connect failed");
    case E::ConnectTimeout:
      return http::LocalReply::text(504, "upstream connect timeout");
    case E::PoolTimeout: {
      auto r = http::LocalReply::text(503, "upstream connection pool exhausted");
      r.fields.emplace_back("Retry-After", "1");
      return r;
    }
    case E::Timeout:
      return http::LocalReply::text(504, "upstream timeout");
    case E::Reset:
      return http::LocalReply::text(502, "upstream closed the connection");
    case E::BadResponse:
      return http::LocalReply::text(502, "invalid upstream response");
    case E::Truncated:
      return http::LocalReply::text(502, "upstream response truncated");
    case E::NoHost:
      return http::LocalReply::text(503, "no healthy upstream host");
    case E::Deadline:
      return http::LocalReply::text(504, "deadline exceeded");
    case E::Overflow: {
      auto r = http::LocalReply::text(503, "upstream cluster overloaded");
      r.fields.emplace_back("Retry-After", "1");
      return r;
    }
    case E::EmptySubset:
      return http::LocalReply::text(503, "no upstream host in the route's subset");
    case E::Count:
      break;
  }
  return http::LocalReply::text(502, "upstream error");
}

}  // namespace sluice::gateway::proxy
