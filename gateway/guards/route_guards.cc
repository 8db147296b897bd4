#include "gateway/guards/route_guards.h"

#include "gateway/guards/circuit_breaker_guard.h"
#include "gateway/guards/concurrency_guard.h"
#include "gateway/guards/fault_guard.h"
#include "gateway/guards/rate_limit_guard.h"

namespace sluice::gateway::guards {

namespace {

std::optional<std::size_t> clusterIndex(const config::Config& config,
                                        const std::optional<std::string>& name) {
  if (!name) return std::nullopt;
  for (std::size_t i = 0; i < config.clusters.size(); ++i) {
    if (config.clusters[i].name == *name) return i;
  }
  return std::nullopt;  // validated: unreachable
}

}  // namespace

RouteGuards buildRouteGuards(const config::Config& config) {
  // Guards of a cluster are shared by every route to it.
  std::vector<std::shared_ptr<Guard>> cluster_limits;
  std::vector<std::shared_ptr<Guard>> cluster_breakers;
  for (const auto& c : config.clusters) {
    cluster_limits.push_back(c.rate_limit ? std::make_shared<RateLimitGuard>("cluster_rate_limit",
                                                                             c.name, *c.rate_limit,
                                                                             /*many_routes=*/true)
                                          : nullptr);
    cluster_breakers.push_back(c.circuit_breaker
                                   ? std::make_shared<CircuitBreakerGuard>(
                                         "cluster_circuit_breaker", *c.circuit_breaker,
                                         clusterIndex(config, c.circuit_breaker->fallback.cluster))
                                   : nullptr);
  }
  RouteGuards out;
  for (const auto& r : config.routes) {
    auto& guards = out.emplace_back();
    std::size_t cluster = 0;
    while (cluster < config.clusters.size() && config.clusters[cluster].name != r.cluster) {
      ++cluster;
    }
    if (cluster < cluster_limits.size() && cluster_limits[cluster]) {
      guards.push_back(cluster_limits[cluster]);
    }
    if (r.rate_limit) {
      guards.push_back(std::make_shared<RateLimitGuard>("rate_limit", r.name, *r.rate_limit));
    }
    if (r.concurrency) guards.push_back(std::make_shared<ConcurrencyGuard>(*r.concurrency));
    if (r.circuit_breaker) {
      guards.push_back(std::make_shared<CircuitBreakerGuard>(
          "circuit_breaker", *r.circuit_breaker,
          clusterIndex(config, r.circuit_breaker->fallback.cluster)));
    } else if (cluster < cluster_breakers.size() && cluster_breakers[cluster]) {
      guards.push_back(cluster_breakers[cluster]);
    }
    if (r.fault) guards.push_back(std::make_shared<FaultGuard>(*r.fault));
  }
  return out;
}

}  // namespace sluice::gateway::guards
