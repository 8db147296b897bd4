// Renders the sum of all workers' stats in the Prometheus text exposition format (0.0.4).
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "gateway/stats/process_metrics.h"
#include "gateway/stats/shards.h"
#include "gateway/stats/worker_stats.h"

namespace sluice::gateway::stats {

// The routes and clusters of the config being served, with their counters (shards.h) and label
// values, in config order. Counters belong to the route or cluster, not to the config: a reload
// that keeps one keeps its series monotonic.
struct RouteMetrics {
  std::string name;
  std::string cluster;
  const RouteCounters* counters = nullptr;
  // The route's guards now: their slots in counters and their names (the `guard` label).
  std::vector<std::pair<std::size_t, std::string>> guards;
};
struct HostLabel {
  std::size_t slot = 0;  // index in the cluster's counters and in the facts below
  std::string address;
  std::uint32_t weight = 1;
  bool drained = false;  // by an operator (admin API)
};
struct ClusterMetrics {
  std::string name;
  const ClusterCounters* counters = nullptr;
  std::vector<HostLabel> hosts;  // occupied slots only
  bool host_latency = false;     // export its hosts' latency histograms
};
// A route's mirror: the route, the cluster it copies to, its counters.
struct MirrorMetrics {
  std::string route;
  std::string cluster;
  const MirrorCounters* counters = nullptr;
};
// A route's progressive canary, as of the scrape (server/route_canary.h).
struct CanaryFacts {
  std::string route;
  std::string cluster;  // the canary side
  double share = 0;     // of the route's requests, 0-1
  std::size_t step = 0;
  std::string_view state;                                             // one of kCanaryStates
  std::vector<std::pair<std::string_view, std::uint64_t>> decisions;  // by action
};
inline constexpr std::array<std::string_view, 4> kCanaryStates = {"progressing", "paused",
                                                                  "promoted", "rolled_back"};
struct MetricsLayout {
  std::vector<RouteMetrics> routes;
  std::vector<MirrorMetrics> mirrors;
  std::vector<CanaryFacts> canaries;
  std::vector<ClusterMetrics> clusters;
};

// A gauge a guard reports at scrape time (rendered with route and guard labels).
struct GuardGaugeSample {
  std::string name;
  std::string help;
  std::string type;   // "gauge" or "counter"
  std::string route;  // "" for a guard shared by a cluster's routes
  std::string cluster;
  std::string guard;
  double value = 0;
  std::string label;  // an extra label when not empty
  std::string label_value;
};

// A cluster's outlier detection, as of the scrape.
struct OutlierFacts {
  std::size_t cluster = 0;                   // index in the layout
  std::array<std::uint64_t, 3> ejections{};  // consecutive_5xx, consecutive_gateway_failure,
                                             // failure_percentage
  std::vector<bool> ejected;                 // [slot]
};
inline constexpr std::array<std::string_view, 3> kEjectionReasons = {
    "consecutive_5xx", "consecutive_gateway_failure", "failure_percentage"};

// A cluster's bulkhead, as of the scrape (limits: connections, pending, requests, retries).
struct BulkheadFacts {
  std::size_t cluster = 0;
  std::array<std::uint64_t, 4> in_use{};
  std::array<std::uint64_t, 4> max{};
  std::array<std::uint64_t, 4> overflows{};
};
inline constexpr std::array<std::string_view, 4> kBulkheadLimits = {"connections", "pending",
                                                                    "requests", "retries"};

// A cluster's active health checks, as of the scrape.
struct HealthCheckFacts {
  std::size_t cluster = 0;
  bool panic = false;  // balancing across unhealthy hosts too
  std::vector<std::array<std::uint64_t, kHealthCheckResults.size()>> results;  // [slot][result]
  std::vector<std::array<std::uint64_t, 2>> transitions;  // [slot][to healthy, to unhealthy]
};

// Config reloads (server.h).
struct ReloadFacts {
  std::uint64_t generation = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  double last_success_unix = 0;  // seconds since the epoch (the start counts as a success)
};

struct ProcessFacts {
  std::optional<ProcessMetrics> process;  // process_* families; left out when unset
  std::size_t workers = 0;
  bool draining = false;
  ReloadFacts reloads;
  std::uint64_t access_log_dropped = 0;
  struct Tracing {
    std::uint64_t exported = 0;
    std::uint64_t dropped = 0;
    std::uint64_t failed = 0;
    std::uint64_t queued = 0;
  };
  std::optional<Tracing> tracing;  // once a config has had tracing
  // A client of an outside service (Redis, etcd): whether it is up, its requests and durations.
  struct Client {
    bool up = false;
    struct Requests {
      std::string_view op;
      std::string_view result;
      std::uint64_t count = 0;
    };
    std::vector<Requests> requests;
    std::vector<std::pair<std::string_view, const LatencyHistogram*>> durations;  // by op
  };
  std::optional<Client> redis;                  // once a config has had a redis section
  std::optional<Client> etcd;                   // with a config from etcd
  std::vector<GuardGaugeSample> guard_gauges;   // grouped by name in the output
  std::vector<OutlierFacts> outliers;           // clusters with outlier_detection
  std::vector<BulkheadFacts> bulkheads;         // clusters with a bulkhead
  std::vector<HealthCheckFacts> health_checks;  // clusters with health_check
  std::vector<std::vector<bool>> host_healthy;  // [cluster][slot]: in selection now
};

[[nodiscard]] std::string renderPrometheus(const MetricsLayout& layout,
                                           std::span<const WorkerStats* const> shards,
                                           const ProcessFacts& facts);

}  // namespace sluice::gateway::stats
