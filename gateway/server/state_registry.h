// StateRegistry: every stateful object of the gateway, owned by the server under a stable name,
// and the builder of config generations (Snapshot) that use them.
//
// What it holds, by kind and name:
//   guards      rate-limit tables, circuit breakers with their caches, concurrency limits with
//               their queues (guards::GuardRegistry, by route or cluster);
//   clusters    ClusterState (retry budget, outlier detection, bulkhead, active health,
//               counters), the HostSet with its static, registered and file-discovered hosts,
//               the health checker, and the bookkeeping of what workers were last told;
//   routes      the route's counters (stats::RouteCounters), its mirror's counters, and its
//               progressive canary (RouteCanary: the rollout's state and history).
// Connection pools belong to workers (each worker's upstream::Cluster); Worker::adopt() carries
// them across generations by the same rules.
//
// build(config) makes the next generation. For each object:
//   definition unchanged          -> the same object, state intact;
//   parameters changed            -> reconfigured in place, state kept (a breaker keeps its window
//                                    and state under a new threshold, a limiter its tokens under a
//                                    new rate, a HostSet its discovered hosts under new endpoints);
//   kind changed, or no longer fits -> a new object; the old one lives on only in the generations
//                                    that still run requests, and dies with the last of them;
//   removed                       -> forgotten here, likewise retired after its last request.
// Objects are held by shared_ptr, so nothing a running request uses can be freed under it.
//
// Main thread only (the health checkers and host sets run on its event loop). build() cannot
// fail: the config was validated, and what a reload may not change is refused before
// (server.h, checkReloadable()).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/config/config.h"
#include "gateway/guards/route_guards.h"
#include "gateway/server/route_canary.h"
#include "gateway/server/snapshot.h"
#include "gateway/stats/shards.h"
#include "gateway/upstream/cluster_state.h"
#include "gateway/upstream/health_checker.h"
#include "gateway/upstream/host_set.h"

namespace sluice::gateway::server {

class StateRegistry {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // A cluster's main-thread side.
  struct ClusterEntry {
    explicit ClusterEntry(boost::asio::io_context& io) : publish_timer(io) {}
    config::Cluster definition;
    std::shared_ptr<upstream::ClusterState> state;
    std::unique_ptr<upstream::HostSet> hosts;
    std::unique_ptr<upstream::HealthChecker> checker;  // null without health_check
    // What workers were last told each slot holds (Server::publishHosts), and its pacing.
    std::vector<std::uint64_t> published;
    boost::asio::steady_timer publish_timer;
    bool publish_pending = false;
    TimePoint last_publish{};
  };

  StateRegistry(boost::asio::io_context& io, std::size_t workers) : io_(io), workers_(workers) {}
  StateRegistry(const StateRegistry&) = delete;
  StateRegistry& operator=(const StateRegistry&) = delete;

  // Guards to run after a route's own (how tests put a guard of theirs through the seam).
  using ExtraGuards =
      std::function<std::vector<std::shared_ptr<guards::Guard>>(const config::Route&)>;

  // The next generation, for a validated config (see above).
  // `permits`: where global rate limits take their permits, `breakers`: where shared circuit
  // breakers keep their state (both null without a redis section).
  [[nodiscard]] std::shared_ptr<const Snapshot> build(config::Config config,
                                                      std::uint64_t generation,
                                                      const ExtraGuards& extra = {},
                                                      guards::PermitStore* permits = nullptr,
                                                      guards::BreakerStore* breakers = nullptr);
  // The shared circuit breakers of the last build (guards::GuardRegistry::sharedBreakers).
  [[nodiscard]] std::vector<std::shared_ptr<guards::CircuitBreakerGuard>> sharedBreakers() const {
    return guards_.sharedBreakers();
  }

  // Health checkers run from start() on; those a later build() creates start at once.
  void start();
  void stop();

  // The entry of the cluster named `name` in the last build, or null.
  [[nodiscard]] ClusterEntry* cluster(std::string_view name);
  [[nodiscard]] const ClusterEntry* cluster(std::string_view name) const;
  [[nodiscard]] std::size_t workers() const noexcept { return workers_; }
  // The progressive canary of route `name` in the last build, or null.
  [[nodiscard]] RouteCanary* canary(std::string_view name) const;

 private:
  ClusterEntry& buildCluster(
      const config::Cluster& c, TimePoint now,
      std::map<std::string, std::unique_ptr<ClusterEntry>, std::less<>>& next);
  void startChecker(ClusterEntry& e, const config::Cluster& c);

  boost::asio::io_context& io_;
  std::size_t workers_;
  bool started_ = false;
  guards::GuardRegistry guards_;
  std::map<std::string, std::unique_ptr<ClusterEntry>, std::less<>> clusters_;
  // By "<route>\n<cluster>": one per cluster a route sends to.
  std::map<std::string, std::shared_ptr<stats::RouteCounters>, std::less<>> routes_;
  std::map<std::string, std::shared_ptr<stats::MirrorCounters>, std::less<>> mirrors_;  // likewise
  std::map<std::string, std::shared_ptr<RouteCanary>, std::less<>> canaries_;           // by route
};

// The static endpoints of a cluster as HostSet hosts, arriving at `now`.
[[nodiscard]] std::vector<upstream::HostSet::Host> staticHosts(
    const config::Cluster& c, std::chrono::steady_clock::time_point now);

}  // namespace sluice::gateway::server
