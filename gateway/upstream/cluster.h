// One cluster as one worker sees it: its load balancer, a connection pool per host, and its view
// of the state workers share (retry budget, outlier ejection, active health, bulkhead). Not
// thread-safe; each worker builds its own from the shared Snapshot.
//
// pick() is where health meets balancing: hosts failing their active health checks are left
// out unless fewer than lb.panic_threshold percent pass (then all are in, as Envoy's panic
// mode), and a host that came back ramps its weight up over lb.slow_start.window. Every worker
// ramps from the same instant (ActiveHealth::healthySince), so they agree without talking.
// With lb.dynamic_weights, each worker also scales every host's weight by what it observed of
// it (resilience::WeightAdjuster: latency and errors, or reported utilization), recomputed every
// update_interval - off the per-pick path, which only compares one time.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/config.h"
#include "gateway/stats/worker_stats.h"
#include "gateway/upstream/bulkhead.h"
#include "gateway/upstream/connection_pool.h"
#include "gateway/upstream/load_balancer.h"
#include "gateway/upstream/outlier_ejection.h"
#include "resilience/lb/panic_threshold.h"
#include "resilience/lb/slow_start.h"
#include "resilience/lb/weight_adjuster.h"
#include "resilience/retry_budget.h"

namespace sluice::gateway::upstream {

class Cluster {
 public:
  Cluster(const boost::asio::any_io_executor& executor, const config::Cluster& config,
          const std::vector<boost::asio::ip::tcp::endpoint>& endpoints,
          std::vector<stats::HostStats>& host_stats, resilience::RetryBudget& retry_budget,
          OutlierEjection* outliers, Bulkhead* bulkhead, const ActiveHealth* health);

  // The host for the next try (the hosts `tried` already are avoided where possible), or
  // nullopt when no host is up.
  [[nodiscard]] std::optional<std::size_t> pick(std::span<const std::size_t> tried,
                                                std::uint64_t hash,
                                                std::chrono::steady_clock::time_point now);
  // An attempt on `host` starts / ended (every onStart is followed by one onResult).
  void onStart(std::size_t host) { balancer_->onStart(host); }
  void onResult(std::size_t host, const AttemptResult& result);
  // The weight factor the balancer applies to the host now (dynamic weights x slow start), as of
  // this worker's last refresh; 1 without either.
  [[nodiscard]] double weightFactor(std::size_t host) const;

  [[nodiscard]] const config::Cluster& config() const noexcept { return config_; }
  [[nodiscard]] LoadBalancer& balancer() noexcept { return *balancer_; }
  [[nodiscard]] ConnectionPool& pool(std::size_t host) noexcept { return *pools_[host]; }
  [[nodiscard]] std::size_t size() const noexcept { return pools_.size(); }
  [[nodiscard]] const std::string& address(std::size_t host) const noexcept {
    return addresses_[host];
  }

  // The retry budget is shared by all workers; first attempts are reported to it in batches of
  // kBudgetBatch (and at every sweep), so that the hot path touches no shared cache line. A
  // retry decision first flushes this worker's batch: what other workers have not reported yet
  // (fewer than kBudgetBatch requests each) only makes the budget slightly stricter.
  static constexpr std::uint32_t kBudgetBatch = 32;
  void recordRequest(std::chrono::steady_clock::time_point now) {
    if (++unreported_requests_ >= kBudgetBatch) flushRequests(now);
  }
  [[nodiscard]] resilience::RetryBudget::Permit tryAcquireRetry(
      std::chrono::steady_clock::time_point now) {
    flushRequests(now);
    return retry_budget_.tryAcquireRetry(now);
  }

  // The cluster's passive health (shared by all workers), or null when not configured.
  [[nodiscard]] OutlierEjection* outliers() const noexcept { return outliers_; }
  // The cluster's caps (shared by all workers), or null when not configured.
  [[nodiscard]] Bulkhead* bulkhead() const noexcept { return bulkhead_; }
  // The cluster's active health (shared by all workers), or null without health_check.
  [[nodiscard]] const ActiveHealth* health() const noexcept { return health_; }

  void sweep(std::chrono::steady_clock::time_point now);
  void closeIdle();

 private:
  const config::Cluster& config_;
  std::unique_ptr<LoadBalancer> balancer_;
  std::vector<std::unique_ptr<ConnectionPool>> pools_;
  std::vector<std::string> addresses_;
  resilience::RetryBudget& retry_budget_;
  OutlierEjection* outliers_;
  Bulkhead* bulkhead_;
  const ActiveHealth* health_;
  resilience::PanicThreshold panic_;
  std::uint32_t unreported_requests_ = 0;
  // Weights that move (slow start, dynamic weights): the balancer's are the configured ones x
  // kWeightScale x the factors, so that they move in small steps even for weight 1.
  static constexpr std::uint32_t kWeightScale = 100;
  std::optional<resilience::SlowStart> slow_start_;
  std::optional<resilience::WeightAdjuster> adjuster_;
  std::vector<std::uint32_t> base_weights_;     // scaled
  std::vector<std::uint32_t> current_weights_;  // as last given to the balancer
  std::vector<std::int64_t> seen_healthy_since_;
  std::uint64_t seen_generation_ = 0;
  std::chrono::steady_clock::time_point next_weights_ =
      std::chrono::steady_clock::time_point::max();

  void noticeRecoveries(std::chrono::steady_clock::time_point now);
  void refreshWeights(std::chrono::steady_clock::time_point now);

  void flushRequests(std::chrono::steady_clock::time_point now) {
    if (unreported_requests_ == 0) return;
    retry_budget_.recordRequests(now, unreported_requests_);
    unreported_requests_ = 0;
  }
};

}  // namespace sluice::gateway::upstream
