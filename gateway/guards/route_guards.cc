#include "gateway/guards/route_guards.h"

#include <initializer_list>

namespace sluice::gateway::guards {

template <typename G, typename Def, typename Make>
std::shared_ptr<G> GuardRegistry::reuse(const Table<G, Def>& table, Table<G, Def>& next,
                                        const std::string& owner, const Def& definition,
                                        Make make) {
  std::shared_ptr<G> guard;
  if (const auto it = table.find(owner); it == table.end()) {
    guard = make(nullptr);
  } else if (it->second.definition == definition) {
    guard = it->second.guard;
  } else {
    guard = make(it->second.guard.get());
  }
  next.insert_or_assign(owner, Held<G, Def>{definition, guard});
  return guard;
}

RouteGuards GuardRegistry::build(const config::Config& config, PermitStore* store,
                                 BreakerStore* breakers) {
  Table<RateLimitGuard, RateLimitDef> cluster_limits;
  Table<RateLimitGuard, RateLimitDef> route_limits;
  const GlobalScope global{store, config.redis ? config.redis->instances : 1};
  const auto def = [&](const config::RateLimit& rl) {
    const bool g = rl.scope == config::RateLimit::Scope::Global;
    return RateLimitDef{rl, g ? store : nullptr, g ? global.instances : 1};
  };
  Table<ConcurrencyGuard, config::Concurrency> concurrency;
  const auto breaker_def = [&](const config::CircuitBreaker& b) {
    const bool shared = b.share == config::CircuitBreaker::Share::Redis;
    return BreakerDef{b, shared ? breakers : nullptr};
  };
  Table<CircuitBreakerGuard, BreakerDef> cluster_breakers;
  Table<CircuitBreakerGuard, BreakerDef> route_breakers;
  Table<FaultGuard, config::Fault> faults;

  // Guards of a cluster are shared by every route to it.
  std::map<std::string_view, std::shared_ptr<Guard>> cluster_limit;
  std::map<std::string_view, std::shared_ptr<Guard>> cluster_breaker;
  for (const auto& c : config.clusters) {
    if (c.rate_limit) {
      cluster_limit[c.name] =
          reuse(cluster_limits_, cluster_limits, c.name, def(*c.rate_limit),
                [&](const RateLimitGuard* prev) {
                  return std::make_shared<RateLimitGuard>(
                      "cluster_rate_limit", c.name, *c.rate_limit,
                      /*many_routes=*/true, prev, resilience::Clock::now(), global);
                });
    }
    if (c.circuit_breaker) {
      cluster_breaker[c.name] = reuse(
          cluster_breakers_, cluster_breakers, c.name, breaker_def(*c.circuit_breaker),
          [&](const CircuitBreakerGuard* prev) {
            return std::make_shared<CircuitBreakerGuard>(
                "cluster_circuit_breaker", *c.circuit_breaker, prev, "cluster " + c.name, breakers);
          });
    }
  }
  RouteGuards out;
  for (const auto& r : config.routes) {
    // The route's own guards: one object whichever side of a split a request takes.
    std::shared_ptr<Guard> limit;
    std::shared_ptr<Guard> conc;
    std::shared_ptr<Guard> breaker;
    std::shared_ptr<Guard> fault;
    if (r.rate_limit) {
      limit = reuse(
          route_limits_, route_limits, r.name, def(*r.rate_limit), [&](const RateLimitGuard* prev) {
            return std::make_shared<RateLimitGuard>("rate_limit", r.name, *r.rate_limit, false,
                                                    prev, resilience::Clock::now(), global);
          });
    }
    if (r.concurrency) {
      conc = reuse(concurrency_, concurrency, r.name, *r.concurrency,
                   [&](const ConcurrencyGuard* prev) {
                     return std::make_shared<ConcurrencyGuard>(*r.concurrency, prev);
                   });
    }
    if (r.circuit_breaker) {
      breaker =
          reuse(route_breakers_, route_breakers, r.name, breaker_def(*r.circuit_breaker),
                [&](const CircuitBreakerGuard* prev) {
                  return std::make_shared<CircuitBreakerGuard>(
                      "circuit_breaker", *r.circuit_breaker, prev, "route " + r.name, breakers);
                });
    }
    if (r.fault) {
      fault = reuse(faults_, faults, r.name, *r.fault, [&](const FaultGuard* /*prev*/) {
        return std::make_shared<FaultGuard>(*r.fault);
      });
    }
    auto& sides = out.emplace_back();
    for (const auto& target : r.targets()) {
      auto& guards = sides.emplace_back();
      const auto put = [&](const std::shared_ptr<Guard>& g) {
        if (g) guards.push_back(g);
      };
      if (const auto it = cluster_limit.find(target.cluster); it != cluster_limit.end()) {
        put(it->second);
      }
      put(limit);
      put(conc);
      if (breaker) {
        put(breaker);
      } else if (const auto it = cluster_breaker.find(target.cluster);
                 it != cluster_breaker.end()) {
        put(it->second);
      }
      put(fault);
    }
  }
  cluster_limits_ = std::move(cluster_limits);
  route_limits_ = std::move(route_limits);
  concurrency_ = std::move(concurrency);
  cluster_breakers_ = std::move(cluster_breakers);
  route_breakers_ = std::move(route_breakers);
  faults_ = std::move(faults);
  return out;
}

std::vector<std::shared_ptr<CircuitBreakerGuard>> GuardRegistry::sharedBreakers() const {
  std::vector<std::shared_ptr<CircuitBreakerGuard>> out;
  for (const auto* table : {&cluster_breakers_, &route_breakers_}) {
    for (const auto& [owner, held] : *table) {
      if (!held.guard->sharedKey().empty()) out.push_back(held.guard);
    }
  }
  return out;
}

RouteGuards buildRouteGuards(const config::Config& config) {
  GuardRegistry registry;
  return registry.build(config);
}

}  // namespace sluice::gateway::guards
