#include "gateway/upstream/cluster.h"

#include <algorithm>
#include <cmath>

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
  const auto& lb = config.lb;
  const bool moving = (lb.slow_start && health_ != nullptr) || lb.dynamic_weights;
  const std::uint32_t scale = moving ? kWeightScale : 1;
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    pools_.push_back(std::make_unique<ConnectionPool>(executor, endpoints[i], config.pool,
                                                      host_stats[i], bulkhead));
    weights.push_back(config.endpoints[i].weight * scale);
    addresses_.push_back(config.endpoints[i].address.text());
  }
  if (moving) {
    base_weights_ = weights;
    current_weights_ = weights;
  }
  if (lb.slow_start && health_ != nullptr) {
    slow_start_.emplace(
        resilience::SlowStart::Settings{lb.slow_start->window, lb.slow_start->aggression,
                                        lb.slow_start->min_weight_percent},
        endpoints.size());
    // Recoveries before this worker existed ramp too, from when they happened.
    seen_healthy_since_.assign(endpoints.size(), 0);
  }
  if (const auto& d = lb.dynamic_weights) {
    resilience::WeightAdjuster::Settings s;
    s.signal = d->signal == config::DynamicWeights::Signal::Utilization
                   ? resilience::WeightAdjuster::Signal::ReportedUtilization
                   : resilience::WeightAdjuster::Signal::Latency;
    s.decay_time = d->decay_time;
    s.min_samples = d->min_samples;
    s.error_penalty = d->error_penalty;
    s.min_factor = d->min_weight_percent / 100;
    s.blackout = d->blackout;
    s.report_ttl = d->report_ttl;
    // Samples carry their own times; the first pick refreshes and schedules the next.
    adjuster_.emplace(s, endpoints.size(), std::chrono::steady_clock::time_point{});
    next_weights_ = std::chrono::steady_clock::time_point::min();
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
  if (now >= next_weights_) refreshWeights(now);
  return balancer_->pick({tried, hash, outliers_, now, health_, panic});
}

void Cluster::onResult(std::size_t host, const AttemptResult& result) {
  balancer_->onResult(host, result);
  if (!adjuster_) return;
  // A try that got no response, or a 5xx, counts against the host; its latency counts as any.
  adjuster_->recordResponse(host, result.latency, result.success && result.status < 500,
                            result.finished);
  if (result.utilization > 0)
    adjuster_->reportUtilization(host, result.utilization, result.finished);
}

double Cluster::weightFactor(std::size_t host) const {
  if (base_weights_.empty() || base_weights_[host] == 0) return 1.0;
  return static_cast<double>(current_weights_[host]) / static_cast<double>(base_weights_[host]);
}

void Cluster::noticeRecoveries(std::chrono::steady_clock::time_point now) {
  seen_generation_ = health_->generation();
  for (std::size_t h = 0; h < seen_healthy_since_.size(); ++h) {
    const auto since = health_->healthySince(h);
    const auto ticks = since.time_since_epoch().count();
    if (ticks == seen_healthy_since_[h]) continue;
    seen_healthy_since_[h] = ticks;
    slow_start_->start(h, since);
    next_weights_ = now;
  }
}

void Cluster::refreshWeights(std::chrono::steady_clock::time_point now) {
  using Duration = std::chrono::steady_clock::duration;
  const std::vector<double> observed = adjuster_ ? adjuster_->factors(now) : std::vector<double>();
  bool ramping = false;
  for (std::size_t h = 0; h < base_weights_.size(); ++h) {
    double factor = observed.empty() ? 1.0 : observed[h];
    if (slow_start_) {
      ramping = ramping || slow_start_->ramping(h, now);
      factor *= slow_start_->factor(h, now);
    }
    const double scaled = std::round(static_cast<double>(base_weights_[h]) * factor);
    const std::uint32_t w =
        base_weights_[h] == 0 ? 0 : (scaled < 1 ? 1 : static_cast<std::uint32_t>(scaled));
    if (w != current_weights_[h]) {
      current_weights_[h] = w;
      balancer_->setWeight(h, w);
    }
  }
  // A ramp steps every 1/50 of its window (at least 10 ms); dynamic weights every
  // update_interval; with neither due, never.
  Duration next = Duration::max();
  if (ramping) {
    next = std::max<Duration>(std::chrono::milliseconds(10), config_.lb.slow_start->window / 50);
  }
  if (const auto& d = config_.lb.dynamic_weights)
    next = std::min<Duration>(next, d->update_interval);
  next_weights_ =
      next == Duration::max() ? std::chrono::steady_clock::time_point::max() : now + next;
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
