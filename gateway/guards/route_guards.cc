#include "gateway/guards/route_guards.h"

#include "gateway/guards/concurrency_guard.h"
#include "gateway/guards/rate_limit_guard.h"

namespace sluice::gateway::guards {

RouteGuards buildRouteGuards(const config::Config& config) {
  std::vector<std::shared_ptr<Guard>> cluster_limits;
  for (const auto& c : config.clusters) {
    cluster_limits.push_back(c.rate_limit ? std::make_shared<RateLimitGuard>("cluster_rate_limit",
                                                                             c.name, *c.rate_limit,
                                                                             /*many_routes=*/true)
                                          : nullptr);
  }
  RouteGuards out;
  for (const auto& r : config.routes) {
    auto& guards = out.emplace_back();
    for (std::size_t i = 0; i < config.clusters.size(); ++i) {
      if (config.clusters[i].name == r.cluster && cluster_limits[i]) {
        guards.push_back(cluster_limits[i]);
      }
    }
    if (r.rate_limit) {
      guards.push_back(std::make_shared<RateLimitGuard>("rate_limit", r.name, *r.rate_limit));
    }
    if (r.concurrency) guards.push_back(std::make_shared<ConcurrencyGuard>(*r.concurrency));
  }
  return out;
}

}  // namespace sluice::gateway::guards
