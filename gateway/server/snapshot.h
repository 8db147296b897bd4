// Everything derived from one validated config that workers share read-only: the config itself,
// the compiled router, resolved endpoints, per-route guards and the metric layout. Built once
// (cannot fail: the config was validated) and held by std::shared_ptr<const Snapshot>; a reload
// builds a new one and hands it to each worker, which swaps its own pointer between requests.
#pragma once

#include <memory>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/config.h"
#include "gateway/guards/guard.h"
#include "gateway/routing/router.h"
#include "gateway/stats/prometheus.h"
#include "gateway/upstream/active_health.h"
#include "gateway/upstream/bulkhead.h"
#include "gateway/upstream/host_set.h"
#include "gateway/upstream/outlier_ejection.h"
#include "resilience/retry_budget.h"

namespace sluice::gateway::server {

struct Snapshot {
  config::Config config;
  routing::Router router;
  std::vector<std::size_t> route_cluster;  // route index -> cluster index
  // [cluster]: the hosts as they are now - static endpoints, then slots for discovered ones.
  // Main thread only (the server posts copies to workers); everything per host is per slot.
  std::vector<std::unique_ptr<upstream::HostSet>> host_sets;
  std::vector<std::vector<std::shared_ptr<guards::Guard>>> route_guards;  // [route] in order
  std::vector<std::size_t> guard_slot_base;  // route -> its first slot in WorkerStats::guards
  stats::MetricsLayout layout;
  // [cluster]: shared by every worker (workers report first attempts in batches,
  // upstream/cluster.h).
  std::vector<std::unique_ptr<resilience::RetryBudget>> retry_budgets;
  // [cluster]: passive health shared by every worker; null without outlier_detection.
  std::vector<std::unique_ptr<upstream::OutlierEjection>> outliers;
  std::vector<std::unique_ptr<upstream::Bulkhead>> bulkheads;  // [cluster]; null without one
  // [cluster]: written by the main thread's health checkers, read by workers; null without
  // health_check. Shared: a checker's probes hold it too.
  std::vector<std::shared_ptr<upstream::ActiveHealth>> health;

  [[nodiscard]] static std::shared_ptr<Snapshot> build(config::Config config);
  [[nodiscard]] std::vector<std::size_t> hostsPerCluster() const;  // slots per cluster
  // Re-derives guard_slot_base and the guard labels after route_guards changed (tests inject
  // guards through the seam).
  void indexGuards();
};

}  // namespace sluice::gateway::server
