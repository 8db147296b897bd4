#include "gateway/server/snapshot.h"

#include <boost/asio/ip/address.hpp>

#include "gateway/guards/route_guards.h"

namespace sluice::gateway::server {

std::shared_ptr<Snapshot> Snapshot::build(config::Config config) {
  auto s = std::make_shared<Snapshot>(
      Snapshot{std::move(config), routing::Router({}), {}, {}, {}, {}, {}, {}, {}, {}, {}});
  const config::Config& c = s->config;
  s->router = routing::Router(c.routes);
  for (const auto& cl : c.clusters) {
    auto& eps = s->endpoints.emplace_back();
    auto& names = s->layout.host_addresses.emplace_back();
    auto& weights = s->layout.host_weights.emplace_back();
    for (const auto& e : cl.endpoints) {
      eps.emplace_back(boost::asio::ip::make_address(e.address.ip), e.address.port);
      names.push_back(e.address.text());
      weights.push_back(e.weight);
    }
    s->layout.cluster_names.push_back(cl.name);
    resilience::RetryBudget::Settings budget;
    budget.retry_ratio = cl.retry_budget.percent / 100.0;
    budget.min_retries_per_second = cl.retry_budget.min_per_second;
    budget.window = cl.retry_budget.window;
    budget.bucket_count = 10;
    s->retry_budgets.push_back(std::make_unique<resilience::RetryBudget>(budget));
    s->outliers.push_back(cl.outlier_detection ? std::make_unique<upstream::OutlierEjection>(
                                                     *cl.outlier_detection, cl.endpoints.size(),
                                                     std::chrono::steady_clock::now())
                                               : nullptr);
    s->bulkheads.push_back(cl.bulkhead ? std::make_unique<upstream::Bulkhead>(*cl.bulkhead)
                                       : nullptr);
    s->health.push_back(cl.health_check
                            ? std::make_shared<upstream::ActiveHealth>(
                                  cl.endpoints.size(), cl.health_check->healthy_threshold,
                                  cl.health_check->unhealthy_threshold)
                            : nullptr);
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
  for (const auto& eps : endpoints) n.push_back(eps.size());
  return n;
}

}  // namespace sluice::gateway::server
