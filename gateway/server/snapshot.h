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

#include <atomic>
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
#include "resilience/lb/split_mix64.h"

namespace sluice::gateway::server {

// One cluster a route sends to, and what applies on the way there: a plain route has one, a
// split has one per side.
struct RouteBackend {
  // Index in Snapshot::clusters; kNoCluster for a route that answers itself (redirect,
  // direct_response), whose one backend carries its guards and counters.
  std::size_t cluster = 0;
  std::uint32_t weight = 1;
  std::vector<std::shared_ptr<guards::Guard>> guards;  // in pipeline order
  // [i]: the slot of guards[i] in counters' guard stats; kNoSlot if it has none.
  std::vector<std::size_t> guard_slots;
  // The (route, cluster) pair's counters: each side of a split is measured on its own.
  std::shared_ptr<stats::RouteCounters> counters;
  std::size_t slot = 0;  // index of this backend in WorkerGeneration::backends

  static constexpr std::size_t kNoSlot = static_cast<std::size_t>(-1);
  static constexpr std::size_t kNoCluster = static_cast<std::size_t>(-1);
};

// What a route does with a request, compiled once per generation.
struct RoutePlan {
  std::vector<RouteBackend> backends;  // one, or a split's sides in config order
  std::uint64_t total_weight = 1;
  // The route's mirror (config::Route::mirror): its cluster's index in Snapshot::clusters and
  // its counters; null counters when the route has none.
  std::size_t mirror_cluster = RouteBackend::kNoCluster;
  std::shared_ptr<stats::MirrorCounters> mirror;

  // A progressive canary's share of the requests, in millionths of them, for the second side
  // (server/route_canary.h publishes it); null when the split's weights decide.
  std::shared_ptr<const std::atomic<std::uint32_t>> canary_share;
  static constexpr std::uint64_t kCanaryWhole = 1'000'000;

  // The backend for `draw`, uniform over 64-bit values (or a sticky key's hash). A draw is a
  // point in [0, 1) and side i takes the interval of its share of total_weight, in list order:
  // a key keeps its side while the shares around it do not move over it, whatever the total
  // (moving share from the first side to the last moves keys one way only, as a canary's steps
  // do).
  [[nodiscard]] std::size_t pick(std::uint64_t draw) const noexcept {
    if (backends.size() == 1) return 0;
    if (canary_share) {
      const std::uint64_t canary = canary_share->load(std::memory_order_relaxed);
      return resilience::SplitMix64::scale(draw, kCanaryWhole) < kCanaryWhole - canary ? 0 : 1;
    }
    std::uint64_t bucket = resilience::SplitMix64::scale(draw, total_weight);
    for (std::size_t i = 0; i < backends.size(); ++i) {
      if (bucket < backends[i].weight) return i;
      bucket -= backends[i].weight;
    }
    return backends.size() - 1;
  }
};

struct Snapshot {
  Snapshot(config::Config c, std::uint64_t gen)
      : generation(gen), config(std::move(c)), router(config.routes) {}

  std::uint64_t generation;
  config::Config config;
  routing::Router router;
  std::vector<RoutePlan> routes;  // [route]
  std::size_t backend_count = 0;  // RouteBackend::slot runs from 0 to this
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
