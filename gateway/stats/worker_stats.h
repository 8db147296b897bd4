// Everything one worker counts, in one place (the metric catalogue is docs/metrics.md).
//
// A WorkerStats is allocated by and for one worker and written only by that worker (counter.h);
// the counters of routes and clusters are shards of per-entity blocks (shards.h). The main thread
// renders the sum over all workers (prometheus.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "gateway/stats/counter.h"
#include "gateway/stats/histogram.h"
#include "gateway/stats/request_phase.h"

namespace sluice::gateway::stats {

// Requests answered by sluice itself before or instead of forwarding.
enum class Reject : std::uint8_t {
  BadRequest,
  UriTooLong,
  HeaderTooLarge,
  BodyTooLarge,
  UnsupportedCoding,
  MethodNotAllowed,
  ExpectationFailed,
  HeaderTimeout,
  BodyTimeout,
  NoRoute,
  BodyTooSlow,   // the request body moved slower than slow_client.body_min_rate
  BodyDeadline,  // the request body took longer than slow_client.body_total
  Count
};
inline constexpr std::array<std::string_view, static_cast<std::size_t>(Reject::Count)>
    kRejectNames = {"bad_request",        "uri_too_long",       "header_too_large",
                    "body_too_large",     "unsupported_coding", "method_not_allowed",
                    "expectation_failed", "header_timeout",     "body_timeout",
                    "no_route",           "body_too_slow",      "body_deadline"};

// Why a client's connection was closed while it was being sent a response: it did not take the
// bytes in time (listener timeouts.send), took them slower than slow_client.send_min_rate, or
// for longer than slow_client.send_total.
enum class SlowReader : std::uint8_t { SendTimeout, TooSlow, Deadline, Count };
inline constexpr std::array<std::string_view, static_cast<std::size_t>(SlowReader::Count)>
    kSlowReaderNames = {"send_timeout", "too_slow", "deadline"};

// Why an attempt to an upstream failed.
enum class UpstreamError : std::uint8_t {
  ConnectFailure,  // refused / unreachable -> 502
  ConnectTimeout,  // -> 504
  PoolTimeout,     // no connection free within pool.max_wait -> 503
  Timeout,         // no response head within the route timeout, or no progress -> 504
  Reset,           // the upstream closed or reset before a complete response -> 502
  BadResponse,     // protocol violation -> 502
  Truncated,       // the body ended early; the client connection is closed
  NoHost,          // every host excluded -> 503
  Deadline,        // too little of the request's deadline left to start a try -> 504
  Overflow,        // a cluster bulkhead cap (connections, pending, requests) was full -> 503
  EmptySubset,     // no host carries the route's subset labels (fallback: none) -> 503
  Count
};
// Whether the upstream was asked at all: a spent deadline, a full bulkhead or an empty subset
// say nothing of its health, so feedback (breakers, adaptive limits) must not count them.
[[nodiscard]] inline bool upstreamAsked(UpstreamError e) noexcept {
  return e != UpstreamError::Deadline && e != UpstreamError::Overflow &&
         e != UpstreamError::EmptySubset;
}
inline constexpr std::array<std::string_view, static_cast<std::size_t>(UpstreamError::Count)>
    kUpstreamErrorNames = {"connect_failure", "connect_timeout", "pool_timeout", "timeout",
                           "reset",           "bad_response",    "truncated",    "no_host",
                           "deadline",        "overflow",        "empty_subset"};

inline constexpr std::array<std::string_view, 5> kStatusClasses = {"1xx", "2xx", "3xx", "4xx",
                                                                   "5xx"};
[[nodiscard]] inline std::size_t statusClass(int status) noexcept {
  if (status < 100 || status > 599) return 4;
  return static_cast<std::size_t>(status / 100 - 1);
}

struct RouteStats {
  std::array<Counter, 5> by_class;
  LatencyHistogram latency;
};

struct ClusterStats {
  std::array<Counter, static_cast<std::size_t>(UpstreamError::Count)> errors;
  Counter retries;
  Counter retries_denied;  // retryable failures not retried: the retry budget was spent
  // A try's start (pool wait and connect included) to its response head; tries without one
  // are counted in `errors` instead.
  LatencyHistogram head_latency;

  void error(UpstreamError e) noexcept { errors[static_cast<std::size_t>(e)].inc(); }
};

// Why a pooled upstream connection was closed.
enum class CloseReason : std::uint8_t {
  IdleTimeout,     // idle longer than pool.idle_timeout
  UpstreamClosed,  // found closed (or with stray bytes) by the upstream when about to reuse it
  NotReusable,     // the exchange did not end cleanly, or either side said Connection: close
  IdleFull,        // reusable, but pool.max_idle connections were idle already
  Drain,           // closed by a drain or shutdown
  Count
};
inline constexpr std::array<std::string_view, static_cast<std::size_t>(CloseReason::Count)>
    kCloseReasonNames = {"idle_timeout", "upstream_closed", "not_reusable", "idle_full", "drain"};

// Results of an active health check probe (upstream::ActiveHealth::Result order).
inline constexpr std::array<std::string_view, 5> kHealthCheckResults = {
    "success", "connect_failure", "timeout", "bad_status", "bad_response"};

struct HostStats {
  Gauge active;   // pooled connections in use by a request
  Gauge idle;     // pooled connections waiting for reuse
  Gauge pending;  // requests waiting for a connection
  Counter connects;
  Counter requests;
  std::array<Counter, static_cast<std::size_t>(CloseReason::Count)> closed;
  // Upstream latency to the response head, as the cluster's (exported with
  // host_latency_histogram only, but always counted: one bucket increment per try).
  LatencyHistogram head_latency;

  void closedFor(CloseReason r) noexcept { closed[static_cast<std::size_t>(r)].inc(); }
  // The slot got another host: its counters start again (gauges follow the connections).
  void resetCounters() noexcept {
    connects.reset();
    requests.reset();
    for (auto& c : closed) c.reset();
    head_latency.reset();
  }
};

// Verdicts of one guard on one route (guards::Verdict, in this order): let through at once,
// after waiting, refused by a rate limit, shed for lack of capacity, refused or redirected by an
// open circuit breaker, aborted by fault injection.
inline constexpr std::array<std::string_view, 6> kGuardDecisionNames = {
    "allowed", "delayed", "limited", "shed", "open", "aborted"};
using GuardStats = std::array<Counter, kGuardDecisionNames.size()>;

// What a worker counts that belongs to no route or cluster (those are in shards.h, owned by the
// entity so that a reload keeps them).
struct alignas(64) WorkerStats {
  Gauge downstream_active;
  Counter downstream_total;
  Gauge requests_active;  // requests being served, from their first byte to their last
  RouteStats unrouted;    // requests answered before a route was chosen (400, 404, ...)
  std::array<Counter, static_cast<std::size_t>(Reject::Count)> rejected;
  Counter exceptions;  // request handlers that threw (answered 500)
  std::array<Counter, static_cast<std::size_t>(SlowReader::Count)> slow_readers;
  // Requests cancelled because their client closed the connection while they waited, by the
  // phase (request_phase.h) they were in: queued, waiting_connection, connecting,
  // awaiting_response or backoff.
  std::array<Counter, kRequestPhaseNames.size()> client_aborts;

  void reject(Reject r) noexcept { rejected[static_cast<std::size_t>(r)].inc(); }
  void slowReader(SlowReader r) noexcept { slow_readers[static_cast<std::size_t>(r)].inc(); }
};

}  // namespace sluice::gateway::stats
