// The guards of every route and cluster it sends to, built from a validated config in pipeline
// order:
//   1. the cluster's rate_limit (one guard shared by every route to that cluster),
//   2. the route's rate_limit,
//   3. the route's concurrency,
//   4. the route's circuit_breaker, or else the cluster's (shared by its routes),
//   5. the route's fault injection.
// Rate limits come first so that a request over its rate is refused before it can take (or
// queue for) a concurrency slot. The breaker comes after them so that what it learns is the
// upstream's health, not local refusals; fault injection comes last so that the failures it
// injects are what the breaker and adaptive limits see.
//
// Across reloads a GuardRegistry remembers each guard under its kind and the route or cluster it
// belongs to. For the next config it hands out the same guard object when the definition is
// unchanged, a new guard that takes over the previous one's state when only parameters changed
// (each guard's constructor says what it keeps), and a fresh guard for a new route or cluster.
// Guards whose route or cluster is gone are forgotten; requests still running on the old config
// keep them alive until they finish.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/guards/circuit_breaker_guard.h"
#include "gateway/guards/concurrency_guard.h"
#include "gateway/guards/fault_guard.h"
#include "gateway/guards/guard.h"
#include "gateway/guards/rate_limit_guard.h"

namespace sluice::gateway::guards {

using GuardList = std::vector<std::shared_ptr<Guard>>;  // in pipeline order
// [route][target]: a route's guards for each cluster it sends to (Route::targets()); the sides
// of a split share the route's own guards and each has its cluster's.
using RouteGuards = std::vector<std::vector<GuardList>>;

class GuardRegistry {
 public:
  // The guards of every route of `config` (validated), reusing what it can. Main thread.
  // `store`: where scope-global rate limits take their permits (Redis); null when the config has
  // no redis section. `breakers`: likewise, where shared circuit breakers keep their state.
  [[nodiscard]] RouteGuards build(const config::Config& config, PermitStore* store = nullptr,
                                  BreakerStore* breakers = nullptr);

  // The breakers of the last build that are shared through the store (share: redis), for
  // BreakerSync. Main thread, like build().
  [[nodiscard]] std::vector<std::shared_ptr<CircuitBreakerGuard>> sharedBreakers() const;

 private:
  template <typename G, typename Def>
  struct Held {
    Def definition;
    std::shared_ptr<G> guard;
  };
  template <typename G, typename Def>
  using Table = std::map<std::string, Held<G, Def>, std::less<>>;  // by route or cluster name

  // The guard `owner` gets for `definition`: the one `table` holds when the definition is
  // unchanged, else make(the previous guard, or null); recorded in `next`.
  template <typename G, typename Def, typename Make>
  static std::shared_ptr<G> reuse(const Table<G, Def>& table, Table<G, Def>& next,
                                  const std::string& owner, const Def& definition, Make make);

  // A rate limit's definition: its settings, and for a global one where and among how many.
  struct RateLimitDef {
    config::RateLimit limit;
    const PermitStore* store = nullptr;
    std::uint32_t instances = 1;
    friend bool operator==(const RateLimitDef&, const RateLimitDef&) = default;
  };
  Table<RateLimitGuard, RateLimitDef> cluster_limits_;
  Table<RateLimitGuard, RateLimitDef> route_limits_;
  Table<ConcurrencyGuard, config::Concurrency> concurrency_;
  // A breaker's definition: its settings and, when shared, its store.
  struct BreakerDef {
    config::CircuitBreaker breaker;
    const BreakerStore* store = nullptr;
    friend bool operator==(const BreakerDef&, const BreakerDef&) = default;
  };
  Table<CircuitBreakerGuard, BreakerDef> cluster_breakers_;
  Table<CircuitBreakerGuard, BreakerDef> route_breakers_;
  Table<FaultGuard, config::Fault> faults_;
};

// The guards of one config with no history (a first config; tests).
[[nodiscard]] RouteGuards buildRouteGuards(const config::Config& config);

}  // namespace sluice::gateway::guards
