#include "gateway/proxy/mirror_result.h"

namespace sluice::gateway::proxy {

using stats::MirrorResult;

std::optional<MirrorResult> mirrorRefusal(const http::RequestHead& head,
                                          const config::Mirror& mirror,
                                          std::int64_t in_flight) noexcept {
  if (head.framing == http::Framing::Length && head.content_length > mirror.max_body) {
    return MirrorResult::BodyTooLarge;
  }
  if (in_flight >= mirror.max_in_flight) return MirrorResult::Overflow;
  return std::nullopt;
}

MirrorResult mirrorResultOf(std::optional<stats::UpstreamError> error, int status,
                            bool timeout_passed) noexcept {
  if (!error) {
    if (status < 300) return MirrorResult::Status2xx;
    if (status < 400) return MirrorResult::Status3xx;
    if (status < 500) return MirrorResult::Status4xx;
    return MirrorResult::Status5xx;
  }
  switch (*error) {
    case stats::UpstreamError::Timeout:
    case stats::UpstreamError::ConnectTimeout:
      return MirrorResult::Timeout;
    case stats::UpstreamError::PoolTimeout:
      return timeout_passed ? MirrorResult::Timeout : MirrorResult::Overflow;
    case stats::UpstreamError::Overflow:
      return MirrorResult::Overflow;
    default:
      return MirrorResult::Failed;
  }
}

bool mirrorJudgesHost(std::optional<stats::UpstreamError> error, bool stale,
                      MirrorResult result) noexcept {
  const bool local = error && (*error == stats::UpstreamError::PoolTimeout ||
                               *error == stats::UpstreamError::Overflow || stale);
  return !local && result != MirrorResult::Timeout;
}

}  // namespace sluice::gateway::proxy
