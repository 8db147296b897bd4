// The admission seam: what runs between routing and forwarding.
//
// A route has an ordered list of guards (rate limit, concurrency limit, circuit breaker, fault
// injection, ... as they arrive). Each guard either lets the request continue (returns nullopt)
// or answers it locally (returns a LocalReply: 429, 503, a fallback body). admit() is a
// coroutine, so a guard may wait - for a delay slot or a concurrency permit - without blocking
// its worker. Every request that a guard admitted is reported back through complete() with its
// outcome and latency, whatever happened after (that is how adaptive limits and breakers learn);
// a request a guard refused is not.
//
// Guards are shared by all workers of a route and must be thread-safe; state that is cheaper per
// worker stays per worker inside the guard. A guard that throws turns into a 500 for that request
// only (counted in sluice_handler_exceptions_total).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "gateway/http/local_reply.h"
#include "gateway/proxy/request_context.h"

namespace sluice::gateway::guards {

struct Completion {
  int status = 0;                       // what the client got (0: connection dropped)
  std::chrono::nanoseconds latency{0};  // from the end of the request head to the end
  bool upstream_failed = false;         // no usable upstream response (502/503/504)
};

class Guard {
 public:
  virtual ~Guard() = default;

  [[nodiscard]] virtual std::string_view name() const = 0;

  // nullopt = continue to the next guard / to forwarding.
  virtual boost::asio::awaitable<std::optional<http::LocalReply>> admit(
      proxy::RequestContext& ctx) = 0;

  // Called once for each request this guard admitted, after the response is finished.
  virtual void complete(const proxy::RequestContext& /*ctx*/, const Completion& /*c*/) {}
};

}  // namespace sluice::gateway::guards
