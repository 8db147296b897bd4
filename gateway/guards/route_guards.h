// The guards of every route, built from a validated config in pipeline order:
//   1. the cluster's rate_limit (one guard shared by every route to that cluster),
//   2. the route's rate_limit,
//   3. the route's concurrency,
//   4. the route's circuit_breaker, or else the cluster's (shared by its routes),
//   5. the route's fault injection.
// Rate limits come first so that a request over its rate is refused before it can take (or
// queue for) a concurrency slot. The breaker comes after them so that what it learns is the
// upstream's health, not local refusals; fault injection comes last so that the failures it
// injects are what the breaker and adaptive limits see.
#pragma once

#include <memory>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/guards/guard.h"

namespace sluice::gateway::guards {

using RouteGuards = std::vector<std::vector<std::shared_ptr<Guard>>>;  // [route] in order

[[nodiscard]] RouteGuards buildRouteGuards(const config::Config& config);

}  // namespace sluice::gateway::guards
