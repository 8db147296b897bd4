#include "gateway/upstream/cluster.h"

#include <algorithm>

#include "gateway/upstream/lb/consistent_hash.h"
#include "gateway/upstream/lb/least_loaded.h"
#include "gateway/upstream/lb/random.h"
#include "gateway/upstream/lb/round_robin.h"

namespace sluice::gateway::upstream {

Cluster::Cluster(const boost::asio::any_io_executor& executor, const config::Cluster& config,
                 const std::vector<boost::asio::ip::tcp::endpoint>& endpoints,
                 std::vector<stats::HostStats>& host_stats, resilience::RetryBudget& retry_budget,
                 OutlierEjection* outliers, Bulkhead* bulkhead, const ActiveHealth* health)
    : config_(config),
      retry_budget_(retry_budget),
      outliers_(outliers),
      bulkhead_(bulkhead),
      health_(health),
      panic_({config.lb.panic_threshold}) {
  std::vector<std::uint32_t> weights;
  const std::uint32_t scale = config.lb.slow_start ? kWeightScale : 1;
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    pools_.push_back(std::make_unique<ConnectionPool>(executor, endpoints[i], config.pool,
                                                      host_stats[i], bulkhead));
    weights.push_back(config.endpoints[i].weight * scale);
    addresses_.push_back(config.endpoints[i].address.text());
  }
  if (const auto& ss = config.lb.slow_start; ss && health_ != nullptr) {
    slow_start_.emplace(
        resilience::SlowStart::Settings{ss->window, ss->aggression, ss->min_weight_percent},
        endpoints.size());
    base_weights_ = weights;
    current_weights_ = weights;
    // Recoveries before this worker existed (a reload) ramp too, from when they happened.
    seen_healthy_since_.assign(endpoints.size(), 0);
  }
  switch (config.lb.policy) {
    case config::LbPolicy::RoundRobin:
      balancer_ = std::make_unique<RoundRobin>(std::move(weights));
      break;
    case config::LbPolicy::Random:
      balancer_ = std::make_unique<RandomBalancer>(std::move(weights));
      break;
    case config::LbPolicy::LeastRequest:
    case config::LbPolicy::LeastConnections:
    case config::LbPolicy::PeakEwma:
      balancer_ = std::make_unique<LeastLoaded>(config.lb.policy, weights, config.lb.ewma_decay,
                                                std::chrono::steady_clock::now());
      break;
    case config::LbPolicy::RingHash:
    case config::LbPolicy::Maglev:
      balancer_ = std::make_unique<ConsistentHash>(config.lb, addresses_, weights);
      break;
  }
}

std::optional<std::size_t> Cluster::pick(std::span<const std::size_t> tried, std::uint64_t hash,
                                         std::chrono::steady_clock::time_point now) {
  bool panic = false;
  if (health_ != nullptr) {
    if (slow_start_ && health_->generation() != seen_generation_) noticeRecoveries(now);
    panic = panic_.inPanic(health_->healthyCount(), health_->hosts());
  }
  if (ramping_ && now >= next_ramp_step_) rampWeights(now);
  return balancer_->pick({tried, hash, outliers_, now, health_, panic});
}

void Cluster::noticeRecoveries(std::chrono::steady_clock::time_point now) {
  seen_generation_ = health_->generation();
  for (std::size_t h = 0; h < seen_healthy_since_.size(); ++h) {
    const auto since = health_->healthySince(h);
    const auto ticks = since.time_since_epoch().count();
    if (ticks == seen_healthy_since_[h]) continue;
    seen_healthy_since_[h] = ticks;
    slow_start_->start(h, since);
    ramping_ = true;
    next_ramp_step_ = now;
  }
}

void Cluster::rampWeights(std::chrono::steady_clock::time_point now) {
  // Steps of 1/50 of the window (at least 10 ms): smooth enough, and off the per-pick path.
  constexpr auto kMinStep = std::chrono::milliseconds(10);
  const auto step =
      std::max<std::chrono::steady_clock::duration>(kMinStep, config_.lb.slow_start->window / 50);
  bool still = false;
  for (std::size_t h = 0; h < base_weights_.size(); ++h) {
    still = still || slow_start_->ramping(h, now);
    const std::uint32_t w = slow_start_->weight(h, base_weights_[h], now);
    if (w != current_weights_[h]) {
      current_weights_[h] = w;
      balancer_->setWeight(h, w);
    }
  }
  ramping_ = still;
  next_ramp_step_ = now + step;
}

void Cluster::sweep(std::chrono::steady_clock::time_point now) {
  flushRequests(now);
  if (outliers_ != nullptr) outliers_->evaluate(now);
  for (auto& p : pools_) p->sweep(now);
}

void Cluster::closeIdle() {
  for (auto& p : pools_) p->closeIdle();
}

}  // namespace sluice::gateway::upstream
