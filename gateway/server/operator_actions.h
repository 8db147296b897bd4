// What an operator changes at run time through the admin API, besides reloads and the log level:
// circuit breakers forced open or closed, and hosts drained. Main thread. Each action is logged
// at warn (who changed what is the first question of an incident review) and answered with the
// new state as JSON; with admin.token_file set, each needs the bearer token (admin_server.h).
//
//   POST /breakers/route/<route>/<action>       the route's own breaker
//   POST /breakers/cluster/<cluster>/<action>   the breaker its cluster shares among routes
//        action: force-open | force-closed | normal   (CircuitBreakerGuard::Force)
//   POST /upstreams/<cluster>/<ip:port>/drain     no new request goes to the host; those in
//                                                 flight finish, its connections close
//   POST /upstreams/<cluster>/<ip:port>/undrain   back into balancing
//
// Both kinds of state outlive reloads: a forced breaker stays forced while its route or cluster
// keeps its breaker, a drained host stays drained while it stays in its cluster.
#pragma once

#include <functional>
#include <string_view>

#include "gateway/admin/admin_server.h"
#include "gateway/server/snapshot.h"
#include "gateway/server/state_registry.h"

namespace sluice::gateway::server {

// Anything under /breakers/ (the list itself is /breakers).
[[nodiscard]] admin::Response breakerAction(const Snapshot& snap, const admin::ApiRequest& r);

// Anything under /upstreams/. `publish(cluster)` passes the cluster's changed hosts on to the
// workers.
[[nodiscard]] admin::Response hostAction(StateRegistry& registry, const admin::ApiRequest& r,
                                         const std::function<void(std::string_view)>& publish);

}  // namespace sluice::gateway::server
