// One cluster as one worker sees it: its load balancer, a connection pool per host, and its view
// of the state workers share (ClusterState: retry budget, outlier ejection, active health,
// bulkhead, counters). Not thread-safe; each worker builds its own on the shared ClusterState.
//
// Reloads: a changed pool or io_timeout is applied in place (reconfigure()); a changed `lb`, or
// a new ClusterState, makes the worker build a new Cluster, which takes over the idle pooled
// connections of the one it replaces (adoptIdle()), so upstream connections survive either way.
// The replaced Cluster stays alive for the requests still running on it, its pools draining.
//
// A host an operator drained (HostSet::Host::drained) has weight 0 here, so no balancer picks
// it, even in panic mode; its requests in flight finish and its connections close as they come
// back idle.
//
// pick() is where health meets balancing: hosts failing their active health checks are left
// out unless fewer than lb.panic_threshold percent pass (then all are in, as Envoy's panic
// mode), and a host that came back ramps its weight up over lb.slow_start.window. Every worker
// ramps from the same instant (ActiveHealth::healthySince), so they agree without talking.
// With lb.dynamic_weights, each worker also scales every host's weight by what it observed of
// it (resilience::WeightAdjuster: latency and errors, or reported utilization), recomputed every
// update_interval - off the per-pick path, which only compares one time.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/config.h"
#include "gateway/stats/worker_stats.h"
#include "gateway/upstream/bulkhead.h"
#include "gateway/upstream/cluster_state.h"
#include "gateway/upstream/connection_pool.h"
#include "gateway/upstream/host_set.h"
#include "gateway/upstream/load_balancer.h"
#include "gateway/upstream/outlier_ejection.h"
#include "gateway/upstream/subset.h"
#include "resilience/lb/panic_threshold.h"
#include "resilience/lb/slow_start.h"
#include "resilience/lb/weight_adjuster.h"
#include "resilience/retry_budget.h"

namespace sluice::gateway::upstream {

class Cluster {
 public:
  // `slots`: the cluster's HostSet as it is now (one per slot; empty slots have no host);
  // `worker`: which shard of the state's counters this worker writes.
  Cluster(const boost::asio::any_io_executor& executor, const config::Cluster& config,
          std::shared_ptr<ClusterState> state, std::size_t worker,
          const std::vector<HostSet::Host>& slots);

  // The same cluster with new pool limits and io_timeout (everything else equal, `lb`
  // included): applied to every pool now, idle connections kept.
  void reconfigure(const config::Cluster& config);
  // Takes the idle connections of `previous` (the Cluster this one replaces on the worker) to
  // the hosts it still has, as far as this one's pool limits and bulkhead allow.
  void adoptIdle(Cluster& previous);

  // The cluster's hosts changed (posted by the main thread): a slot that lost its host stops
  // being picked and its pool drains (in-flight requests finish, then its connections close);
  // a new host gets a pool, its weight (ramping up with lb.slow_start) and fresh counters.
  void applyHosts(const std::vector<HostSet::Host>& slots,
                  std::chrono::steady_clock::time_point now);
  // Pools of hosts that left and still have connections open.
  [[nodiscard]] std::size_t drainingPools() const noexcept { return retired_.size(); }
  // The balancer of the subset `key` names (subset.h): the hosts whose metadata carry all its
  // labels. Built on first use and kept, with its state, while some host carries them; null
  // when none does. The caller holds it for the request (a change of hosts may drop it here).
  [[nodiscard]] std::shared_ptr<LoadBalancer> subset(std::string_view key);
  [[nodiscard]] std::size_t subsetCount() const noexcept { return subsets_.size(); }

  // The host for the next try (the hosts `tried` already are avoided where possible), or
  // nullopt when no host is up. `subset`: a balancer from subset(), or null for the whole
  // cluster.
  [[nodiscard]] std::optional<std::size_t> pick(LoadBalancer* subset,
                                                std::span<const std::size_t> tried,
                                                std::uint64_t hash,
                                                std::chrono::steady_clock::time_point now);
  // An attempt on `host` starts / ended (every onStart is followed by one onResult, through the
  // same `subset`).
  void onStart(LoadBalancer* subset, std::size_t host) { balancerOf(subset).onStart(host); }
  // `occupant`: occupant(host) when the try was picked; a result of a host that has since
  // left the slot only settles the balancer's in-flight count.
  void onResult(LoadBalancer* subset, std::size_t host, std::uint64_t occupant,
                const AttemptResult& result);
  // The same for the whole cluster.
  [[nodiscard]] std::optional<std::size_t> pick(std::span<const std::size_t> tried,
                                                std::uint64_t hash,
                                                std::chrono::steady_clock::time_point now) {
    return pick(nullptr, tried, hash, now);
  }
  void onStart(std::size_t host) { onStart(nullptr, host); }
  void onResult(std::size_t host, std::uint64_t occupant, const AttemptResult& result) {
    onResult(nullptr, host, occupant, result);
  }
  [[nodiscard]] std::uint64_t occupant(std::size_t host) const noexcept { return occupants_[host]; }
  // The weight factor the balancer applies to the host now (dynamic weights x slow start), as of
  // this worker's last refresh; 1 without either.
  [[nodiscard]] double weightFactor(std::size_t host) const;

  [[nodiscard]] const config::Cluster& config() const noexcept { return config_; }
  [[nodiscard]] const std::shared_ptr<ClusterState>& state() const noexcept { return state_; }
  // This worker's counters of the cluster and of its host slots.
  [[nodiscard]] stats::ClusterStats& stats() noexcept { return shard_.cluster; }
  [[nodiscard]] stats::HostStats& hostStats(std::size_t host) noexcept {
    return shard_.hosts[host];
  }
  [[nodiscard]] LoadBalancer& balancer() noexcept { return *balancer_; }
  // Only for a host that pick() returned (an occupied slot).
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
    return state_->retryBudget().tryAcquireRetry(now);
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
  config::Cluster config_;
  boost::asio::any_io_executor executor_;
  std::shared_ptr<ClusterState> state_;
  stats::ClusterShard& shard_;
  std::unique_ptr<LoadBalancer> balancer_;
  std::vector<std::unique_ptr<ConnectionPool>> pools_;    // [slot]; null while empty
  std::vector<std::unique_ptr<ConnectionPool>> retired_;  // draining after their host left
  std::vector<std::string> addresses_;                    // [slot]; empty while empty
  std::vector<std::uint64_t> occupants_;                  // [slot]: HostSet::Host::occupant
  OutlierEjection* outliers_;
  Bulkhead* bulkhead_;
  const ActiveHealth* health_;
  resilience::PanicThreshold panic_;
  std::uint32_t unreported_requests_ = 0;
  // Weights that move (slow start, dynamic weights): the balancer's are the configured ones x
  // kWeightScale x the factors, so that they move in small steps even for weight 1.
  static constexpr std::uint32_t kWeightScale = 100;
  std::uint32_t scale_ = 1;
  std::optional<resilience::SlowStart> slow_start_;
  std::optional<resilience::WeightAdjuster> adjuster_;
  std::vector<std::uint32_t> base_weights_;     // scaled; 0 for an empty slot or a drained host
  std::vector<char> drained_;                   // [slot]: HostSet::Host::drained
  std::vector<std::uint32_t> current_weights_;  // as last given to the balancer
  std::vector<std::int64_t> seen_healthy_since_;
  // Subsets asked for and carried by some host, by key. Bounded by the hosts' metadata; beyond
  // kMaxSubsets (a safety net) the table starts over.
  struct Subset {
    Labels labels;
    std::vector<char> member;  // [slot]: the host there carries the labels
    std::shared_ptr<LoadBalancer> balancer;
  };
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  static constexpr std::size_t kMaxSubsets = 1024;
  std::unordered_map<std::string, Subset, KeyHash, std::equal_to<>> subsets_;
  std::vector<Labels> metadata_;  // [slot]
  std::uint64_t seen_generation_ = 0;
  std::chrono::steady_clock::time_point next_weights_ =
      std::chrono::steady_clock::time_point::max();

  [[nodiscard]] std::uint32_t baseWeight(const HostSet::Host& h) const noexcept {
    return h.drained ? 0 : h.weight * scale_;
  }
  void noticeRecoveries(std::chrono::steady_clock::time_point now);
  // A balancer of the cluster's policy over `weights` (0: never picked); `before`: the one it
  // replaces, whose requests in flight it takes over where the policy counts them.
  [[nodiscard]] std::unique_ptr<LoadBalancer> makeBalancer(
      const std::vector<std::uint32_t>& weights, const LoadBalancer* before) const;
  void buildBalancer();
  [[nodiscard]] std::vector<std::uint32_t> subsetWeights(const Subset& s) const;
  // After hosts moved: each subset's membership of `changed` slots is recomputed, and its
  // balancer follows (rebuilt for the hashing policies when `placed`).
  void applySubsets(const std::vector<char>& changed, bool placed,
                    std::chrono::steady_clock::time_point now);
  LoadBalancer& balancerOf(LoadBalancer* subset) noexcept {
    return subset != nullptr ? *subset : *balancer_;
  }
  void refreshWeights(std::chrono::steady_clock::time_point now);

  void flushRequests(std::chrono::steady_clock::time_point now) {
    if (unreported_requests_ == 0) return;
    state_->retryBudget().recordRequests(now, unreported_requests_);
    unreported_requests_ = 0;
  }
};

}  // namespace sluice::gateway::upstream
