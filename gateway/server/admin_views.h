// What the admin API shows of the running gateway - /upstreams, /breakers and /metrics - computed
// on the main thread from the generation being served and the state registry. Kept apart from
// server.cc, which wires the process; a view reads, it never changes anything.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "gateway/proxy/in_flight_request.h"
#include "gateway/server/snapshot.h"
#include "gateway/server/state_registry.h"
#include "gateway/stats/prometheus.h"
#include "gateway/stats/worker_stats.h"

namespace sluice::gateway::server {

// Clusters and hosts: weight, health checks, outlier ejection, pools (summed over workers).
[[nodiscard]] nlohmann::json upstreamsJson(const Snapshot& snap, const StateRegistry& registry);
// Whether a guard is its cluster's, shared by all the routes to it (shown once, with its cluster
// and no route), rather than one route's own.
[[nodiscard]] bool clusterWide(const guards::Guard& g);
// Every circuit breaker once: state, rates, transitions.
[[nodiscard]] nlohmann::json breakersJson(const Snapshot& snap);
// GET /debug/requests: the requests in flight, oldest first, at most `limit` of them; `answered`
// of `workers` workers replied in time.
[[nodiscard]] nlohmann::json inFlightJson(std::vector<proxy::InFlightRequest> requests,
                                          std::size_t limit, std::size_t answered,
                                          std::size_t workers);
// The Prometheus exposition. `facts` carries what only the server knows (workers, drain,
// reloads, the access log's drops); the rest is filled in here.
[[nodiscard]] std::string renderMetrics(const Snapshot& snap, const StateRegistry& registry,
                                        std::span<const stats::WorkerStats* const> shards,
                                        stats::ProcessFacts facts);

}  // namespace sluice::gateway::server
