// The admission seam: what runs between routing and forwarding.
//
// A route has an ordered list of guards (its cluster's rate limit, its own rate limit, its
// concurrency limit; circuit breakers and fault injection as they arrive). Each guard either
// lets the request continue (Allowed, or Delayed when it made the request wait first) or answers
// it locally (Limited / Shed with a LocalReply: 429, 503, a fallback body). Most decisions are
// immediate (check()); one that must wait for a concurrency permit is a coroutine (admit()),
// and a delay is a `wait` the connection sleeps on its worker's timer - nothing blocks a worker.
// Every request that a guard admitted is reported back through complete() with its outcome and
// latency, whatever happened after (that is how adaptive limits and breakers learn); a request a
// guard refused is not. The connection counts every verdict per route and guard
// (sluice_guard_requests_total), so guards do not touch stats on the hot path.
//
// Anything a guard holds for the duration of a request (a concurrency slot) goes into
// ctx.permits, which returns it when the request is over, however it ends.
//
// Guards are shared by all workers of a route and must be thread-safe; state that is cheaper per
// worker stays per worker inside the guard. A guard that throws turns into a 500 for that request
// only (counted in sluice_handler_exceptions_total).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "gateway/http/local_reply.h"
#include "gateway/proxy/request_context.h"

namespace sluice::gateway::guards {

enum class Verdict : std::uint8_t {
  Allowed,  // continue at once
  Delayed,  // continue, after waiting (for the rate, for a free slot)
  Limited,  // refused by a rate limit: reply
  Shed,     // refused for lack of capacity (concurrency, queue full, queue timeout): reply
  Open,     // an open circuit breaker: reply with its fallback, or continue to a fallback cluster
  Aborted,  // fault injection: reply with the injected status
  Count
};
inline constexpr const auto& kVerdictNames = stats::kGuardDecisionNames;
static_assert(kVerdictNames.size() == static_cast<std::size_t>(Verdict::Count));

struct Admission {
  Verdict verdict = Verdict::Allowed;
  std::optional<http::LocalReply> reply;  // set iff the verdict is Limited or Shed
  // Delayed: continue only after this long (the connection waits on its worker's timer).
  std::chrono::nanoseconds wait{0};
  // Continue, but to the cluster of this name instead of the route's: a fallback. (By name:
  // the guard outlives config generations, which may number their clusters differently.)
  const std::string* cluster = nullptr;

  [[nodiscard]] static Admission allowed() { return {}; }
  [[nodiscard]] static Admission delayed(std::chrono::nanoseconds wait = {}) {
    return {Verdict::Delayed, std::nullopt, wait, nullptr};
  }
  [[nodiscard]] bool admitted() const { return !reply.has_value(); }
};

// A value a guard reports at scrape time (keys tracked, current limit, ...).
struct GuardGauge {
  std::string_view name;  // metric name without labels, e.g. "sluice_rate_limit_keys"
  std::string_view help;
  double value = 0;
  std::string_view type = "gauge";  // or "counter" (name ends in _total)
  // One more label besides route, cluster and guard (e.g. state="open"), if label is not empty.
  std::string_view label;
  std::string_view label_value;
};

struct Completion {
  int status = 0;                       // what the client got (0: connection dropped)
  std::chrono::nanoseconds latency{0};  // from the end of the guards (queueing and delays
                                        // excluded) to the end of the response
  bool upstream_failed = false;         // no usable upstream response (502/503/504)
  // The outcome says nothing about the upstream: the request's deadline ran out before or
  // during its try, or a bulkhead refused it. Feedback (breakers, adaptive limits) ignores it.
  bool no_verdict = false;
  // From the start of its last upstream try to the end of the response (`latency` when there
  // was no try): what adaptive concurrency limits learn from - a retried request's first try
  // and backoff say nothing about queueing in the upstream.
  std::chrono::nanoseconds last_try{0};
};

class Guard {
 public:
  virtual ~Guard() = default;

  // The `guard` label of its metrics: "rate_limit", "cluster_rate_limit", "concurrency".
  [[nodiscard]] virtual std::string_view name() const = 0;

  // The decision when it can be made at once - the common case - without a coroutine frame;
  // nullopt when it needs waiting for something other than time (a concurrency slot), and then
  // the connection awaits admit(). A delay is an Admission with a `wait`.
  virtual std::optional<Admission> check(proxy::RequestContext& /*ctx*/) { return std::nullopt; }

  // The decision, waiting as long as it takes. Called only when check() returned nullopt.
  virtual boost::asio::awaitable<Admission> admit(proxy::RequestContext& ctx) = 0;

  // Called once for each request this guard admitted, after the response is finished (before
  // ctx's permits are released).
  virtual void complete(proxy::RequestContext& /*ctx*/, const Completion& /*c*/) {}

  // Gauges for /metrics (read from the admin thread, concurrently with admit/complete).
  [[nodiscard]] virtual std::vector<GuardGauge> gauges() const { return {}; }
};

}  // namespace sluice::gateway::guards
