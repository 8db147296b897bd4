// ClusterState: the part of a cluster that every worker shares and that a reload keeps - its
// retry budget, passive health (outlier ejection), bulkhead caps, active health and counters.
//
// Owned by the server's state registry under the cluster's name and held by shared_ptr by every
// config generation and every worker's upstream::Cluster built on it, so that a state a reload
// replaced dies only after the last request, pool connection and permit that used it (a
// Bulkhead::Slot or a retry budget permit holds a plain pointer into it).
//
// Its wiring never changes: which components exist (outlier detection, bulkhead, health check)
// and how many host slots it has are fixed at construction, so workers read its members without
// synchronisation. What a reload may change in place is the components' parameters
// (reconfigure()); a definition that needs other wiring (fits() is false) gets a new state.
//
// Thread-safety: the components are thread-safe by their own contracts; reconfigure() and the
// host slots' bookkeeping run on the main thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "gateway/config/config.h"
#include "gateway/stats/shards.h"
#include "gateway/upstream/active_health.h"
#include "gateway/upstream/bulkhead.h"
#include "gateway/upstream/outlier_ejection.h"
#include "resilience/retry_budget.h"

namespace sluice::gateway::upstream {

class ClusterState {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // `host_slots`: the size of the cluster's HostSet (static endpoints + discovery slots).
  ClusterState(const config::Cluster& config, std::size_t host_slots, std::size_t workers,
               TimePoint now);
  ClusterState(const ClusterState&) = delete;
  ClusterState& operator=(const ClusterState&) = delete;

  // The host slots a cluster defined as `config` needs.
  [[nodiscard]] static std::size_t slotsFor(const config::Cluster& config);
  // Whether a cluster defined as `next` can keep this state: the same components, and no more
  // host slots than it has.
  [[nodiscard]] bool fits(const config::Cluster& next) const;
  // Applies `next`'s parameters to the components (retry budget, outlier detection thresholds,
  // bulkhead caps, health thresholds), keeping what they learnt. Main thread; fits(next).
  void reconfigure(const config::Cluster& next, TimePoint now);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::size_t slots() const noexcept { return slots_; }
  [[nodiscard]] resilience::RetryBudget& retryBudget() noexcept { return retry_budget_; }
  // Null when the cluster has no outlier_detection / bulkhead / health_check.
  [[nodiscard]] OutlierEjection* outliers() const noexcept { return outliers_.get(); }
  [[nodiscard]] Bulkhead* bulkhead() const noexcept { return bulkhead_.get(); }
  [[nodiscard]] const std::shared_ptr<ActiveHealth>& health() const noexcept { return health_; }
  [[nodiscard]] stats::ClusterCounters& counters() noexcept { return counters_; }
  [[nodiscard]] const stats::ClusterCounters& counters() const noexcept { return counters_; }

 private:
  std::string name_;
  std::size_t slots_;
  resilience::RetryBudget retry_budget_;
  std::unique_ptr<OutlierEjection> outliers_;
  std::unique_ptr<Bulkhead> bulkhead_;
  std::shared_ptr<ActiveHealth> health_;  // shared with the main thread's health checker
  stats::ClusterCounters counters_;
};

// The retry budget's settings for a cluster's retry_budget.
[[nodiscard]] resilience::RetryBudget::Settings retryBudgetSettings(const config::RetryBudget& c);

}  // namespace sluice::gateway::upstream
