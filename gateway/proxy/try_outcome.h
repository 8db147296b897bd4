// How one try of the forwarder ended, and what each ending means: which failure becomes which
// outcome, which error is counted, what the host is told it did, and which status the client
// gets. Kept apart from the forwarder's coroutines (forwarder.h) for the same reason as the retry
// decision (retry_decision.h): inside them each rule could only be tested end to end.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "gateway/http/local_reply.h"
#include "gateway/stats/worker_stats.h"

namespace sluice::gateway::proxy {

enum class TryOutcome : std::uint8_t {
  Done,          // the response was relayed (possibly cut short)
  StaleRetry,    // a reused connection was dead before answering; try a fresh one
  RetryStatus,   // a status the route retries; nothing reached the client
  Failed,        // an upstream error before the response started
  ClientFailed,  // the client broke the request body or went away
};

// A read of the response head that ended without a head.
struct HeadReadFailure {
  bool timed_out = false;     // the try's deadline passed (otherwise: closed, reset, broken)
  bool received_any = false;  // some of a response had come
  bool reused = false;        // the connection had served requests before (from the pool)
  bool replayable = false;    // the request is bodiless and idempotent
  bool send_failed = false;   // the upstream had stopped taking the request
};

struct TryEnd {
  TryOutcome outcome = TryOutcome::Failed;
  stats::UpstreamError error = stats::UpstreamError::Reset;
};

// A timeout is a timeout. A connection from the pool that closes before any byte of an answer,
// for a request sent whole, is the keep-alive race (the upstream closed it as idle while it was
// being reused): the upstream never saw the request, so a replayable one goes again on a fresh
// connection, and that is not a retry. Anything else is a reset.
[[nodiscard]] TryEnd headReadFailed(const HeadReadFailure& f) noexcept;

// When a failed try ran out of time.
struct TryTimes {
  bool client_deadline = false;  // the request's deadline is the client's, earlier than the route's
  bool try_had_all = false;      // the try's own deadline was the request's (no per_try_timeout)
  std::chrono::steady_clock::duration left{};  // of the request's deadline when the try ended
};

// The error a failed try counts as. A timeout (of the response, the connect or the pool's wait)
// that the client's own deadline cut short — not the route's timeout, nor per_try_timeout, nor
// the pool's or connect's own limits — says nothing about the upstream: the client's budget was
// too short, so it is a spent deadline (504, not held against the host).
[[nodiscard]] stats::UpstreamError chargedError(stats::UpstreamError e,
                                                const TryTimes& times) noexcept;

// What the host did with the try, for its passive health and its balancer: the status of its
// response (`status`: the one relayed, or the one dropped for a retry), 0 for a connection that
// failed (refused, reset, timed out, garbage, a body cut short), nullopt when the try ended for a
// local reason that says nothing about the host (the pool's wait, the bulkhead, the client, a
// stale pooled connection, a spent deadline).
[[nodiscard]] std::optional<int> hostVerdict(TryOutcome outcome, int status, bool truncated,
                                             stats::UpstreamError error) noexcept;

// Whether a failed request counts against the upstream (ForwardResult::upstream_failed, which
// breakers and adaptive limits learn from): only if it was asked at all.
[[nodiscard]] bool upstreamAtFault(stats::UpstreamError e) noexcept;

// The reply sluice sends for an upstream failure: 502 for what the upstream did wrong, 504 for
// time that ran out, 503 when there was no host or no capacity to ask (with Retry-After where
// waiting helps).
[[nodiscard]] http::LocalReply upstreamErrorReply(stats::UpstreamError e);

}  // namespace sluice::gateway::proxy
