// Renders the sum of all workers' stats in the Prometheus text exposition format (0.0.4).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "gateway/stats/worker_stats.h"

namespace sluice::gateway::stats {

// Label values for the indices used in WorkerStats.
struct MetricsLayout {
  std::vector<std::string> route_names;
  std::vector<std::string> route_clusters;  // cluster name of each route
  std::vector<std::string> cluster_names;
  std::vector<std::vector<std::string>> host_addresses;  // [cluster][endpoint]
};

struct ProcessFacts {
  std::size_t workers = 0;
  bool draining = false;
  std::uint64_t access_log_dropped = 0;
};

[[nodiscard]] std::string renderPrometheus(const MetricsLayout& layout,
                                           std::span<const WorkerStats* const> shards,
                                           const ProcessFacts& facts);

}  // namespace sluice::gateway::stats
