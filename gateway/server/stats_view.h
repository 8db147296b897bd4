// GET /stats: one compact JSON document with everything the admin dashboard (admin `/`) shows -
// per route traffic, latency buckets and guard verdicts, breakers with their recent transitions,
// clusters and hosts, the config generation and its reload history. Computed on the main thread
// from the same worker shards /metrics sums; workers do nothing for it.
//
// Counters are cumulative since the start (or since the route or cluster appeared): a client
// takes rates and windowed quantiles from the difference between two polls. So the server keeps
// no per-client window, any number of open dashboards cost the same per poll, and a missed poll
// only widens the next window.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "gateway/server/reload_history.h"
#include "gateway/server/snapshot.h"
#include "gateway/server/state_registry.h"
#include "gateway/stats/worker_stats.h"

namespace sluice::gateway::server {

// What only the server knows.
struct ServerFacts {
  std::size_t workers = 0;
  bool draining = false;
  std::uint64_t generation = 0;
  std::string_view source;  // where the config came from (a path, or "<demo>")
  std::string_view hash;    // of the config's bytes
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_failed = 0;
  const ReloadHistory* history = nullptr;
  std::chrono::system_clock::time_point started;
};

[[nodiscard]] nlohmann::json statsJson(const Snapshot& snap, const StateRegistry& registry,
                                       std::span<const stats::WorkerStats* const> shards,
                                       const ServerFacts& facts);

}  // namespace sluice::gateway::server
