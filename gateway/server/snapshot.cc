#include "gateway/server/snapshot.h"

#include <boost/asio/ip/address.hpp>

#include "gateway/guards/route_guards.h"

namespace sluice::gateway::server {

std::shared_ptr<Snapshot> Snapshot::build(config::Config config) {
  auto s = std::make_shared<Snapshot>(
      Snapshot{std::move(config), routing::Router({}), {}, {}, {}, {}, {}, {}, {}, {}, {}});
  const config::Config& c = s->config;
  s->router = routing::Router(c.routes);
  const auto now = std::chrono::steady_clock::now();
  for (const auto& cl : c.clusters) {
    std::vector<upstream::HostSet::Host> statics;
    for (const auto& e : cl.endpoints) {
      upstream::HostSet::Host h;
      h.address = e.address.text();
      h.endpoint = {boost::asio::ip::make_address(e.address.ip), e.address.port};
      h.weight = e.weight;
      h.added = now;
      statics.push_back(std::move(h));
    }
    const auto& set = *s->host_sets.emplace_back(
        std::make_unique<upstream::HostSet>(statics, cl.discovery ? cl.discovery->max_hosts : 0));
    const std::size_t slots = set.capacity();
    auto& names = s->layout.host_addresses.emplace_back(slots);
    auto& weights = s->layout.host_weights.emplace_back(slots);
    for (std::size_t i = 0; i < statics.size(); ++i) {
      names[i] = statics[i].address;
      weights[i] = statics[i].weight;
    }
    s->layout.cluster_names.push_back(cl.name);
    resilience::RetryBudget::Settings budget;
    budget.retry_ratio = cl.retry_budget.percent / 100.0;
    budget.min_retries_per_second = cl.retry_budget.min_per_second;
    budget.window = cl.retry_budget.window;
    budget.bucket_count = 10;
    s->retry_budgets.push_back(std::make_unique<resilience::RetryBudget>(budget));
    s->outliers.push_back(cl.outlier_detection ? std::make_unique<upstream::OutlierEjection>(
                                                     *cl.outlier_detection, slots, now)
                                               : nullptr);
    if (auto* o = s->outliers.back().get()) {
      for (std::size_t i = 0; i < slots; ++i) o->reset(i, set.slots()[i].occupant);
    }
    s->bulkheads.push_back(cl.bulkhead ? std::make_unique<upstream::Bulkhead>(*cl.bulkhead)
                                       : nullptr);
    s->health.push_back(cl.health_check ? std::make_shared<upstream::ActiveHealth>(
                                              slots, cl.health_check->healthy_threshold,
                                              cl.health_check->unhealthy_threshold)
                                        : nullptr);
    if (const auto& health = s->health.back()) {
      for (std::size_t i = statics.size(); i < slots; ++i) health->vacate(i);
    }
  }
  for (const auto& r : c.routes) {
    std::size_t index = 0;
    while (c.clusters[index].name != r.cluster) ++index;  // validated: it exists
    s->route_cluster.push_back(index);
    s->layout.route_names.push_back(r.name);
    s->layout.route_clusters.push_back(r.cluster);
  }
  s->route_guards = guards::buildRouteGuards(c);
  s->indexGuards();
  return s;
}

void Snapshot::indexGuards() {
  guard_slot_base.clear();
  layout.guard_labels.clear();
  for (std::size_t r = 0; r < route_guards.size(); ++r) {
    guard_slot_base.push_back(layout.guard_labels.size());
    for (const auto& g : route_guards[r]) {
      layout.guard_labels.emplace_back(layout.route_names[r], std::string(g->name()));
    }
  }
}

std::vector<std::size_t> Snapshot::hostsPerCluster() const {
  std::vector<std::size_t> n;
  for (const auto& set : host_sets) n.push_back(set->capacity());
  return n;
}

}  // namespace sluice::gateway::server
