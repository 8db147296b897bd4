// The judgements of request mirroring (mirror.h): whether a request is copied at all, which result
// a sent copy is counted as (sluice_mirror_requests_total{result}), and whether its end is held
// for or against the mirror's host. Kept out of mirror.cc's fire-and-forget task, where they
// would show only through a counter in an end-to-end test.
#pragma once

#include <cstdint>
#include <optional>

#include "gateway/config/config.h"
#include "gateway/http/head.h"
#include "gateway/stats/shards.h"
#include "gateway/stats/worker_stats.h"

namespace sluice::gateway::proxy {

// Why a request is not copied, decided before any of it is collected: a body known to be over
// max_body (BodyTooLarge; a chunked body is judged as it arrives), or max_in_flight copies already
// running on this worker (Overflow). nullopt: copy it.
[[nodiscard]] std::optional<stats::MirrorResult> mirrorRefusal(const http::RequestHead& head,
                                                               const config::Mirror& mirror,
                                                               std::int64_t in_flight) noexcept;

// The result of a copy that was sent: its response's status class, or what ended it. A wait for a
// pooled connection that ended when the mirror's own timeout had passed (`timeout_passed`) is that
// timeout; one that ended before it was the pool's max_wait, a full pool.
[[nodiscard]] stats::MirrorResult mirrorResultOf(std::optional<stats::UpstreamError> error,
                                                 int status, bool timeout_passed) noexcept;

// Whether the copy's end is fed to the host's passive health and balancer: not when it ended for a
// local reason (the pool's wait, the bulkhead, a stale pooled connection), nor when the mirror's
// own timeout ended it: that timeout is usually shorter than what the cluster's other routes
// allow, and must not eject hosts that serve them well.
[[nodiscard]] bool mirrorJudgesHost(std::optional<stats::UpstreamError> error, bool stale,
                                    stats::MirrorResult result) noexcept;

}  // namespace sluice::gateway::proxy
