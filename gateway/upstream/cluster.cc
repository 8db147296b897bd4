#include "gateway/upstream/cluster.h"

#include <algorithm>
#include <cmath>

#include "gateway/upstream/lb/consistent_hash.h"
#include "gateway/upstream/lb/least_loaded.h"
#include "gateway/upstream/lb/random.h"
#include "gateway/upstream/lb/round_robin.h"

namespace sluice::gateway::upstream {

Cluster::Cluster(const boost::asio::any_io_executor& executor, const config::Cluster& config,
                 std::shared_ptr<ClusterState> state, std::size_t worker,
                 const std::vector<HostSet::Host>& slots)
    : config_(config),
      executor_(executor),
      state_(std::move(state)),
      shard_(state_->counters().shards[worker]),
      outliers_(state_->outliers()),
      bulkhead_(state_->bulkhead()),
      health_(state_->health().get()),
      panic_({config.lb.panic_threshold}) {
  const auto& lb = config.lb;
  scale_ = lb.slow_start || lb.dynamic_weights ? kWeightScale : 1;
  const std::size_t n = slots.size();
  pools_.resize(n);
  addresses_.resize(n);
  occupants_.assign(n, 0);
  base_weights_.assign(n, 0);
  drained_.assign(n, 0);
  metadata_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& h = slots[i];
    if (h.empty()) continue;
    pools_[i] = std::make_unique<ConnectionPool>(executor, h.endpoint, config.pool, shard_.hosts[i],
                                                 bulkhead_);
    addresses_[i] = h.address;
    occupants_[i] = h.occupant;
    base_weights_[i] = baseWeight(h);
    drained_[i] = h.drained ? 1 : 0;
    metadata_[i] = h.metadata;
  }
  current_weights_ = base_weights_;
  if (lb.slow_start) {
    slow_start_.emplace(
        resilience::SlowStart::Settings{lb.slow_start->window, lb.slow_start->aggression,
                                        lb.slow_start->min_weight_percent},
        n);
    // Recoveries before this worker existed ramp too, from when they happened.
    if (health_ != nullptr) seen_healthy_since_.assign(n, 0);
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
    adjuster_.emplace(s, n, std::chrono::steady_clock::time_point{});
    next_weights_ = std::chrono::steady_clock::time_point::min();
  }
  buildBalancer();
}

void Cluster::reconfigure(const config::Cluster& config) {
  config_ = config;
  for (auto& p : pools_) {
    if (p) p->setSettings(config_.pool);
  }
}

void Cluster::adoptIdle(Cluster& previous) {
  for (auto& pool : pools_) {
    if (!pool) continue;
    for (auto& old : previous.pools_) {
      if (old && old->endpoint() == pool->endpoint()) {
        pool->adoptIdle(*old);
        break;
      }
    }
  }
}

std::unique_ptr<LoadBalancer> Cluster::makeBalancer(const std::vector<std::uint32_t>& weights,
                                                    const LoadBalancer* before) const {
  switch (config_.lb.policy) {
    case config::LbPolicy::RoundRobin:
      return std::make_unique<RoundRobin>(weights);
    case config::LbPolicy::Random:
      return std::make_unique<RandomBalancer>(weights);
    case config::LbPolicy::LeastRequest:
    case config::LbPolicy::LeastConnections:
    case config::LbPolicy::PeakEwma:
      return std::make_unique<LeastLoaded>(config_.lb.policy, weights, config_.lb.ewma_decay,
                                           std::chrono::steady_clock::now());
    case config::LbPolicy::RingHash:
    case config::LbPolicy::Maglev: {
      // Hosts are placed by address; an empty slot has no weight, so no place, but needs an
      // identity of its own.
      std::vector<std::string> identities = addresses_;
      for (std::size_t i = 0; i < identities.size(); ++i) {
        if (identities[i].empty()) identities[i] = "(empty slot " + std::to_string(i) + ")";
      }
      auto rebuilt = std::make_unique<ConsistentHash>(config_.lb, identities, weights);
      if (const auto* previous = dynamic_cast<const ConsistentHash*>(before)) {
        rebuilt->carryInFlight(*previous);
      }
      return rebuilt;
    }
  }
  return nullptr;
}

void Cluster::buildBalancer() { balancer_ = makeBalancer(current_weights_, balancer_.get()); }

std::vector<std::uint32_t> Cluster::subsetWeights(const Subset& s) const {
  std::vector<std::uint32_t> w(current_weights_.size(), 0);
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (s.member[i] != 0) w[i] = current_weights_[i];
  }
  return w;
}

std::shared_ptr<LoadBalancer> Cluster::subset(std::string_view key) {
  if (const auto it = subsets_.find(key); it != subsets_.end()) return it->second.balancer;
  Subset s;
  s.labels = labelsOf(key);
  s.member.assign(metadata_.size(), 0);
  bool any = false;
  for (std::size_t i = 0; i < metadata_.size(); ++i) {
    if (occupants_[i] != 0 && config::carriesLabels(metadata_[i], s.labels)) {
      s.member[i] = 1;
      any = true;
    }
  }
  // What no host carries is not kept: clients cannot grow the table with made-up values.
  if (!any) return nullptr;
  if (subsets_.size() >= kMaxSubsets) subsets_.clear();
  s.balancer = makeBalancer(subsetWeights(s), nullptr);
  auto balancer = s.balancer;
  subsets_.emplace(std::string(key), std::move(s));
  return balancer;
}

void Cluster::applySubsets(const std::vector<char>& changed, bool placed,
                           std::chrono::steady_clock::time_point now) {
  for (auto it = subsets_.begin(); it != subsets_.end();) {
    Subset& s = it->second;
    bool moved = false;
    bool any = false;
    for (std::size_t i = 0; i < s.member.size(); ++i) {
      if (changed[i] != 0) {
        const char m = occupants_[i] != 0 && config::carriesLabels(metadata_[i], s.labels) ? 1 : 0;
        moved = moved || m != s.member[i];
        s.member[i] = m;
        s.balancer->resetHost(i, now);
        s.balancer->setWeight(i, m != 0 ? current_weights_[i] : 0);
      }
      any = any || s.member[i] != 0;
    }
    if (!any) {
      it = subsets_.erase(it);
      continue;
    }
    if ((placed || moved) && config_.lb.hashing()) {
      s.balancer = makeBalancer(subsetWeights(s), s.balancer.get());
    }
    ++it;
  }
}

void Cluster::applyHosts(const std::vector<HostSet::Host>& slots,
                         std::chrono::steady_clock::time_point now) {
  bool placed = false;  // a host arrived or left: hash tables are rebuilt
  std::vector<char> changed(occupants_.size(), 0);  // the slot's host or its labels
  for (std::size_t i = 0; i < slots.size() && i < occupants_.size(); ++i) {
    const auto& h = slots[i];
    if (h.occupant == occupants_[i]) {
      if (!h.empty() && base_weights_[i] != baseWeight(h)) {
        base_weights_[i] = baseWeight(h);
        placed = true;  // a hash table places by weight too
      }
      if (!h.empty() && drained_[i] != (h.drained ? 1 : 0)) {
        drained_[i] = h.drained ? 1 : 0;
        if (h.drained) pools_[i]->closeIdle();  // those in use close as they come back (sweep)
      }
      if (metadata_[i] != h.metadata) {
        metadata_[i] = h.metadata;
        changed[i] = 1;
      }
      continue;
    }
    changed[i] = 1;
    metadata_[i] = h.metadata;
    if (pools_[i]) {
      pools_[i]->drain();
      if (pools_[i]->open() > 0) retired_.push_back(std::move(pools_[i]));
      pools_[i].reset();
    }
    placed = true;
    occupants_[i] = h.occupant;
    shard_.hosts[i].resetCounters();
    balancer_->resetHost(i, now);
    if (adjuster_) adjuster_->resetHost(i, now);
    if (h.empty()) {
      addresses_[i].clear();
      base_weights_[i] = 0;
      drained_[i] = 0;
      continue;
    }
    pools_[i] = std::make_unique<ConnectionPool>(executor_, h.endpoint, config_.pool,
                                                 shard_.hosts[i], bulkhead_);
    addresses_[i] = h.address;
    base_weights_[i] = baseWeight(h);
    drained_[i] = h.drained ? 1 : 0;
    if (slow_start_) slow_start_->start(i, h.added);
  }
  if (placed && config_.lb.hashing()) {
    current_weights_ = base_weights_;
    buildBalancer();
  }
  refreshWeights(now);
  if (!subsets_.empty()) applySubsets(changed, placed, now);
}

std::optional<std::size_t> Cluster::pick(LoadBalancer* subset, std::span<const std::size_t> tried,
                                         std::uint64_t hash,
                                         std::chrono::steady_clock::time_point now) {
  bool panic = false;
  if (health_ != nullptr) {
    if (slow_start_ && health_->generation() != seen_generation_) noticeRecoveries(now);
    panic = panic_.inPanic(health_->healthyCount(), health_->occupied());
  }
  if (now >= next_weights_) refreshWeights(now);
  // Panic is judged over the whole cluster, subsets included: a subset whose hosts all fail
  // their checks gets no host (503) rather than the failing ones.
  return balancerOf(subset).pick({tried, hash, outliers_, now, health_, panic});
}

void Cluster::onResult(LoadBalancer* subset, std::size_t host, std::uint64_t occupant,
                       const AttemptResult& result) {
  LoadBalancer& balancer = balancerOf(subset);
  if (occupant != occupants_[host] || !result.verdict) {
    balancer.onResult(host, AttemptResult{});  // no sample: the in-flight count only
    return;
  }
  balancer.onResult(host, result);
  if (!adjuster_) return;
  // A try that got no response, or a 5xx, counts against the host; its latency counts as any.
  adjuster_->recordResponse(host, result.latency, result.success && result.status < 500,
                            result.finished);
  if (result.utilization > 0) {
    adjuster_->reportUtilization(host, result.utilization, result.finished);
  }
}

double Cluster::weightFactor(std::size_t host) const {
  if (base_weights_[host] == 0) return 1.0;
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
      for (auto& [key, subset] : subsets_) {
        if (subset.member[h] != 0) subset.balancer->setWeight(h, w);
      }
    }
  }
  // A ramp steps every 1/50 of its window (at least 10 ms); dynamic weights every
  // update_interval; with neither due, never.
  Duration next = Duration::max();
  if (ramping) {
    next = std::max<Duration>(std::chrono::milliseconds(10), config_.lb.slow_start->window / 50);
  }
  if (const auto& d = config_.lb.dynamic_weights) {
    next = std::min<Duration>(next, d->update_interval);
  }
  next_weights_ =
      next == Duration::max() ? std::chrono::steady_clock::time_point::max() : now + next;
}

void Cluster::sweep(std::chrono::steady_clock::time_point now) {
  flushRequests(now);
  if (outliers_ != nullptr) outliers_->evaluate(now);
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    if (!pools_[i]) continue;
    pools_[i]->sweep(now);
    if (drained_[i] != 0) pools_[i]->closeIdle();  // a drained host keeps no connection idle
  }
  std::erase_if(retired_, [](const auto& p) { return p->open() == 0; });
}

void Cluster::closeIdle() {
  for (auto& p : pools_) {
    if (p) p->closeIdle();
  }
  for (auto& p : retired_) p->closeIdle();
}

}  // namespace sluice::gateway::upstream
