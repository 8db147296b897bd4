#include "gateway/upstream/cluster.h"

#include "gateway/upstream/lb/consistent_hash.h"
#include "gateway/upstream/lb/least_loaded.h"
#include "gateway/upstream/lb/random.h"
#include "gateway/upstream/lb/round_robin.h"

namespace sluice::gateway::upstream {

Cluster::Cluster(const boost::asio::any_io_executor& executor, const config::Cluster& config,
                 const std::vector<boost::asio::ip::tcp::endpoint>& endpoints,
                 std::vector<stats::HostStats>& host_stats, resilience::RetryBudget& retry_budget,
                 OutlierEjection* outliers, Bulkhead* bulkhead)
    : config_(config), retry_budget_(retry_budget), outliers_(outliers), bulkhead_(bulkhead) {
  std::vector<std::uint32_t> weights;
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    pools_.push_back(std::make_unique<ConnectionPool>(executor, endpoints[i], config.pool,
                                                      host_stats[i], bulkhead));
    weights.push_back(config.endpoints[i].weight);
    addresses_.push_back(config.endpoints[i].address.text());
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

void Cluster::sweep(std::chrono::steady_clock::time_point now) {
  flushRequests(now);
  if (outliers_ != nullptr) outliers_->evaluate(now);
  for (auto& p : pools_) p->sweep(now);
}

void Cluster::closeIdle() {
  for (auto& p : pools_) p->closeIdle();
}

}  // namespace sluice::gateway::upstream
