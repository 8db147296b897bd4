// One config generation as workers serve it: the validated config and what is derived from it
// (the compiled router, each route's plan), plus shared handles to the stateful objects the
// generation uses. Immutable once built: nothing in it is written after StateRegistry::build()
// returns it, and it is shared read-only by every worker as std::shared_ptr<const Snapshot>.
//
// The state it points at (guards, cluster state, counters) is not owned by it: the server's
// StateRegistry owns that under stable names and hands the same objects to the next generation
// when their definitions allow, so that a reload keeps what they learnt. A snapshot only keeps
// them alive for the requests still running on it (see Worker: requests pin their generation).
//
// Cross-references inside a snapshot are indices into that snapshot; anything that outlives a
// generation (a breaker's fallback cluster) refers by name and is resolved here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/guards/guard.h"
#include "gateway/routing/router.h"
#include "gateway/stats/shards.h"
#include "gateway/upstream/cluster_state.h"

namespace sluice::gateway::server {

// What a route does with a request, compiled once per generation.
struct RoutePlan {
  std::size_t cluster = 0;                             // index in Snapshot::clusters
  std::vector<std::shared_ptr<guards::Guard>> guards;  // in pipeline order
  // [i]: the slot of guards[i] in counters' guard stats; kNoSlot if it has none.
  std::vector<std::size_t> guard_slots;
  std::shared_ptr<stats::RouteCounters> counters;

  static constexpr std::size_t kNoSlot = static_cast<std::size_t>(-1);
};

struct Snapshot {
  Snapshot(config::Config c, std::uint64_t gen)
      : generation(gen), config(std::move(c)), router(config.routes) {}

  std::uint64_t generation;
  config::Config config;
  routing::Router router;
  std::vector<RoutePlan> routes;                                  // [route]
  std::vector<std::shared_ptr<upstream::ClusterState>> clusters;  // [cluster]

  // The index of the cluster named `name`, if this generation has it.
  [[nodiscard]] std::optional<std::size_t> clusterIndex(std::string_view name) const {
    for (std::size_t i = 0; i < config.clusters.size(); ++i) {
      if (config.clusters[i].name == name) return i;
    }
    return std::nullopt;
  }
};

}  // namespace sluice::gateway::server
