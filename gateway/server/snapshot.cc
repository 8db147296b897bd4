#include "gateway/server/snapshot.h"

#include <boost/asio/ip/address.hpp>

namespace sluice::gateway::server {

std::shared_ptr<Snapshot> Snapshot::build(config::Config config) {
  auto s =
      std::make_shared<Snapshot>(Snapshot{std::move(config), routing::Router({}), {}, {}, {}, {}});
  const config::Config& c = s->config;
  s->router = routing::Router(c.routes);
  for (const auto& cl : c.clusters) {
    auto& eps = s->endpoints.emplace_back();
    auto& names = s->layout.host_addresses.emplace_back();
    for (const auto& e : cl.endpoints) {
      eps.emplace_back(boost::asio::ip::make_address(e.address.ip), e.address.port);
      names.push_back(e.address.text());
    }
    s->layout.cluster_names.push_back(cl.name);
  }
  for (const auto& r : c.routes) {
    std::size_t index = 0;
    while (c.clusters[index].name != r.cluster) ++index;  // validated: it exists
    s->route_cluster.push_back(index);
    s->route_guards.emplace_back();
    s->layout.route_names.push_back(r.name);
    s->layout.route_clusters.push_back(r.cluster);
  }
  return s;
}

std::vector<std::size_t> Snapshot::hostsPerCluster() const {
  std::vector<std::size_t> n;
  for (const auto& eps : endpoints) n.push_back(eps.size());
  return n;
}

}  // namespace sluice::gateway::server
