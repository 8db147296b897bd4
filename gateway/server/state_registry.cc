#include "gateway/server/state_registry.h"

#include <boost/asio/ip/address.hpp>
#include <spdlog/spdlog.h>

namespace sluice::gateway::server {

using upstream::HostSet;

std::vector<HostSet::Host> staticHosts(const config::Cluster& c,
                                       std::chrono::steady_clock::time_point now) {
  std::vector<HostSet::Host> out;
  out.reserve(c.endpoints.size());
  for (const auto& e : c.endpoints) {
    HostSet::Host h;
    h.address = e.address.text();
    h.endpoint = {boost::asio::ip::make_address(e.address.ip), e.address.port};
    h.weight = e.weight;
    h.metadata = e.metadata;
    h.added = now;
    out.push_back(std::move(h));
  }
  return out;
}

namespace {

std::size_t maxDynamic(const config::Cluster& c) {
  return c.discovery ? c.discovery->max_hosts : 0;
}

// Per-slot state shared with workers starts from the slots' occupants.
void seedSlots(StateRegistry::ClusterEntry& e) {
  const auto& slots = e.hosts->slots();
  e.published.assign(slots.size(), 0);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    e.published[i] = slots[i].occupant;
    if (auto* o = e.state->outliers()) o->reset(i, slots[i].occupant, slots[i].address);
    if (const auto& health = e.state->health(); health && slots[i].empty()) health->vacate(i);
  }
}

}  // namespace

StateRegistry::ClusterEntry* StateRegistry::cluster(std::string_view name) {
  const auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

const StateRegistry::ClusterEntry* StateRegistry::cluster(std::string_view name) const {
  const auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

RouteCanary* StateRegistry::canary(std::string_view name) const {
  const auto it = canaries_.find(name);
  return it == canaries_.end() ? nullptr : it->second.get();
}

void StateRegistry::start() {
  started_ = true;
  for (auto& [name, c] : canaries_) c->start();
  for (auto& [name, e] : clusters_) {
    if (e->checker) e->checker->start();
  }
}

void StateRegistry::stop() {
  started_ = false;
  for (auto& [name, c] : canaries_) c->stop();
  for (auto& [name, e] : clusters_) {
    if (e->checker) e->checker->stop();
    e->publish_timer.cancel();
  }
}

void StateRegistry::startChecker(ClusterEntry& e, const config::Cluster& c) {
  e.checker.reset();
  if (!c.health_check) return;
  e.checker = std::make_unique<upstream::HealthChecker>(io_, c.name, *c.health_check, *e.hosts,
                                                        e.state->health());
  if (started_) e.checker->start();
}

StateRegistry::ClusterEntry& StateRegistry::buildCluster(
    const config::Cluster& c, TimePoint now,
    std::map<std::string, std::unique_ptr<ClusterEntry>, std::less<>>& next) {
  std::unique_ptr<ClusterEntry> e;
  if (const auto it = clusters_.find(c.name); it != clusters_.end()) {
    e = std::move(it->second);
    clusters_.erase(it);
  }
  if (e && e->state->fits(c)) {
    if (e->definition != c) {
      e->state->reconfigure(c, now);
      if (e->definition.endpoints != c.endpoints || e->definition.discovery != c.discovery) {
        for (const auto& refused : e->hosts->reconfigure(staticHosts(c, now), maxDynamic(c), now)) {
          spdlog::warn("cluster '{}': endpoint {} is already there as a discovered host", c.name,
                       refused);
        }
      }
      if (e->definition.health_check != c.health_check) startChecker(*e, c);
    }
  } else {
    // A new cluster, or one whose state cannot take the new definition (more host slots, other
    // components): new state. Hosts that joined by discovery stay members.
    auto fresh = std::make_unique<ClusterEntry>(io_);
    fresh->hosts = std::make_unique<HostSet>(staticHosts(c, now), maxDynamic(c));
    if (e) {
      for (const auto& h : e->hosts->slots()) {
        if (!h.empty() && h.source != HostSet::Source::Static) fresh->hosts->upsert(h, now);
      }
    }
    fresh->state =
        std::make_shared<upstream::ClusterState>(c, fresh->hosts->capacity(), workers_, now);
    if (e) {
      // The cluster's counters go on from where they were (hosts matched by address).
      std::vector<std::size_t> slot_map(fresh->hosts->capacity(), static_cast<std::size_t>(-1));
      for (std::size_t i = 0; i < slot_map.size(); ++i) {
        const auto& h = fresh->hosts->slots()[i];
        if (!h.empty()) slot_map[i] = e->hosts->find(h.address).value_or(slot_map[i]);
      }
      fresh->state->counters().carryFrom(e->state->counters(), slot_map);
    }
    seedSlots(*fresh);
    startChecker(*fresh, c);
    e = std::move(fresh);
  }
  e->definition = c;
  auto& entry = *e;
  next.insert_or_assign(c.name, std::move(e));
  return entry;
}

std::shared_ptr<const Snapshot> StateRegistry::build(config::Config config,
                                                     std::uint64_t generation,
                                                     const ExtraGuards& extra,
                                                     guards::PermitStore* permits,
                                                     guards::BreakerStore* breakers) {
  auto snap = std::make_shared<Snapshot>(std::move(config), generation);
  const config::Config& c = snap->config;
  const auto now = std::chrono::steady_clock::now();

  std::map<std::string, std::unique_ptr<ClusterEntry>, std::less<>> clusters;
  for (const auto& cl : c.clusters) {
    snap->clusters.push_back(buildCluster(cl, now, clusters).state);
  }
  clusters_ = std::move(clusters);  // what is left of the old map (removed clusters) dies here

  auto guards = guards_.build(c, permits, breakers);
  // Counters per (route, cluster): a split's sides are measured apart, and a reload that keeps
  // the pair (a weight moved, a timeout changed) keeps its series.
  std::map<std::string, std::shared_ptr<stats::RouteCounters>, std::less<>> routes;
  std::map<std::string, std::shared_ptr<stats::MirrorCounters>, std::less<>> mirrors;
  std::map<std::string, std::shared_ptr<RouteCanary>, std::less<>> canaries;
  for (std::size_t r = 0; r < c.routes.size(); ++r) {
    const auto& route = c.routes[r];
    const auto targets = route.targets();
    RoutePlan plan;
    plan.total_weight = 0;
    for (std::size_t t = 0; t < targets.size(); ++t) {
      RouteBackend b;
      b.cluster = route.answersItself()
                      ? RouteBackend::kNoCluster
                      : *snap->clusterIndex(targets[t].cluster);  // validated: it exists
      b.weight = targets[t].weight;
      plan.total_weight += b.weight;
      const std::string key = route.name + '\n' + targets[t].cluster;
      if (const auto it = routes_.find(key); it != routes_.end()) {
        b.counters = it->second;
      } else {
        b.counters = std::make_shared<stats::RouteCounters>(workers_);
      }
      routes.insert_or_assign(key, b.counters);
      b.guards = std::move(guards[r][t]);
      if (extra) {
        for (auto& g : extra(route)) b.guards.push_back(std::move(g));
      }
      for (const auto& g : b.guards) {
        b.guard_slots.push_back(b.counters->guardSlot(g->name()).value_or(RouteBackend::kNoSlot));
      }
      b.slot = snap->backend_count++;
      plan.backends.push_back(std::move(b));
    }
    if (route.canary) {
      auto it = canaries_.find(route.name);
      std::shared_ptr<RouteCanary> canary;
      if (it != canaries_.end() && it->second->runs(c, route)) {
        canary = it->second;  // a reload that leaves it alone: it goes on where it was
      } else {
        canary = std::make_shared<RouteCanary>(io_, c, route, plan.backends[0].counters,
                                               plan.backends[1].counters);
        if (started_) canary->start();
      }
      plan.canary_share =
          std::shared_ptr<const std::atomic<std::uint32_t>>(canary, &canary->share());
      canaries.insert_or_assign(route.name, std::move(canary));
    }
    if (route.mirror) {
      plan.mirror_cluster = *snap->clusterIndex(route.mirror->cluster);  // validated: it exists
      const std::string key = route.name + '\n' + route.mirror->cluster;
      const auto it = mirrors_.find(key);
      plan.mirror =
          it != mirrors_.end() ? it->second : std::make_shared<stats::MirrorCounters>(workers_);
      mirrors.insert_or_assign(key, plan.mirror);
    }
    snap->routes.push_back(std::move(plan));
  }
  routes_ = std::move(routes);
  mirrors_ = std::move(mirrors);
  for (auto& [name, old] : canaries_) {
    const auto it = canaries.find(name);
    if (it == canaries.end() || it->second != old) old->stop();  // replaced or removed
  }
  canaries_ = std::move(canaries);
  return snap;
}

}  // namespace sluice::gateway::server
