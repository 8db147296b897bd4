#include "gateway/server/admin_views.h"

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "gateway/guards/circuit_breaker_guard.h"
#include "resilience/lb/panic_threshold.h"
#include "resilience/lb/slow_start.h"

namespace sluice::gateway::server {

namespace {

using Clock = std::chrono::steady_clock;
using upstream::HostSet;

bool inPanic(const config::Cluster& cluster, const upstream::ActiveHealth* health) {
  return health != nullptr && resilience::PanicThreshold({cluster.lb.panic_threshold})
                                  .inPanic(health->healthyCount(), health->occupied());
}

// In selection now: passing active checks (or the cluster in panic) and not ejected.
bool inSelection(const config::Cluster& cluster, const upstream::ClusterState& state, std::size_t h,
                 Clock::time_point now) {
  const auto* health = state.health().get();
  const auto* outliers = state.outliers();
  return (health == nullptr || health->healthy(h) || inPanic(cluster, health)) &&
         (outliers == nullptr || !outliers->ejected(h, now));
}

nlohmann::json activeHealthJson(const upstream::ActiveHealth& health, std::size_t h,
                                Clock::time_point now) {
  const auto& s = health.status(h);
  nlohmann::json results = nlohmann::json::object();
  for (std::size_t k = 0; k < s.results.size(); ++k) {
    results[std::string(upstream::ActiveHealth::kResultNames[k])] = s.results[k];
  }
  nlohmann::json out = {
      {"healthy", s.healthy},
      {"last_result",
       s.checked
           ? nlohmann::json(
                 upstream::ActiveHealth::kResultNames[static_cast<std::size_t>(s.last_result)])
           : nlohmann::json(nullptr)},
      {"last_check_ms_ago",
       s.checked
           ? nlohmann::json(
                 std::chrono::duration_cast<std::chrono::milliseconds>(now - s.last_check).count())
           : nlohmann::json(nullptr)},
      {"consecutive_successes", s.consecutive_successes},
      {"consecutive_failures", s.consecutive_failures},
      {"results", std::move(results)}};
  return out;
}

// The slow-start factor every worker computes for the host: its ramp starts when it joined (a
// discovered host) or last came back from failing its health checks, whichever is later.
double slowStartFactor(const config::SlowStart& ss, const HostSet::Host& host,
                       const upstream::ActiveHealth* health, std::size_t h, Clock::time_point now) {
  Clock::time_point since{};
  if (host.source != HostSet::Source::Static) since = host.added;
  if (health != nullptr) since = std::max(since, health->healthySince(h));
  resilience::SlowStart ramp({ss.window, ss.aggression, ss.min_weight_percent}, 1);
  if (since.time_since_epoch().count() != 0) ramp.start(0, since);
  return ramp.factor(0, now);
}

}  // namespace

bool clusterWide(const guards::Guard& g) { return g.name().starts_with("cluster_"); }

nlohmann::json upstreamsJson(const Snapshot& snap, const StateRegistry& registry) {
  const auto now = Clock::now();
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t c = 0; c < snap.config.clusters.size(); ++c) {
    const auto& cl = snap.config.clusters[c];
    const auto& state = *snap.clusters[c];
    const auto* entry = registry.cluster(cl.name);
    const auto* outliers = state.outliers();
    const auto* health = state.health().get();
    nlohmann::json hosts = nlohmann::json::array();
    const auto& slots = entry->hosts->slots();
    const auto& shards = state.counters().shards;
    for (std::size_t h = 0; h < slots.size(); ++h) {
      const auto& slot = slots[h];
      if (slot.empty()) continue;
      // Pool numbers summed over the workers (each has its own pool per host).
      const auto gauge = [&](auto get) {
        return shards.sumSigned([&](const stats::ClusterShard& s) { return get(s.hosts[h]); });
      };
      nlohmann::json closed = nlohmann::json::object();
      for (std::size_t r = 0; r < stats::kCloseReasonNames.size(); ++r) {
        closed[std::string(stats::kCloseReasonNames[r])] =
            shards.sum([&](const stats::ClusterShard& s) { return s.hosts[h].closed[r].value(); });
      }
      nlohmann::json host = {
          {"address", slot.address},
          {"weight", slot.weight},
          {"source", HostSet::sourceName(slot.source)},
          {"drained", slot.drained},
          {"healthy", inSelection(cl, state, h, now)},
          {"ejected", false},
          {"requests",
           shards.sum([&](const stats::ClusterShard& s) { return s.hosts[h].requests.value(); })},
          {"connections",
           {{"active", gauge([](const stats::HostStats& s) { return s.active.value(); })},
            {"idle", gauge([](const stats::HostStats& s) { return s.idle.value(); })},
            {"pending", gauge([](const stats::HostStats& s) { return s.pending.value(); })},
            {"created",
             shards.sum([&](const stats::ClusterShard& s) { return s.hosts[h].connects.value(); })},
            {"closed", std::move(closed)}}}};
      if (health != nullptr) host["active_health"] = activeHealthJson(*health, h, now);
      if (const auto& ss = cl.lb.slow_start) {
        host["slow_start_factor"] = slowStartFactor(*ss, slot, health, h, now);
      }
      if (!slot.metadata.empty()) host["metadata"] = slot.metadata;
      if (outliers != nullptr) {
        if (const auto s = outliers->status(h, now)) {
          host["ejected"] = s->ejected;
          host["ejected_for_ms"] =
              s->ejected
                  ? std::chrono::duration_cast<std::chrono::milliseconds>(s->ejected_until - now)
                        .count()
                  : 0;
          host["times_ejected"] = s->times_ejected;
          host["ejection_multiplier"] = s->multiplier;
        }
      }
      hosts.push_back(std::move(host));
    }
    out.push_back(
        {{"cluster", cl.name},
         {"outlier_detection", outliers != nullptr},
         {"health_check", health != nullptr},
         {"healthy_hosts", health != nullptr ? health->healthyCount() : entry->hosts->occupied()},
         {"panic", inPanic(cl, health)},
         {"hosts", std::move(hosts)}});
  }
  return out;
}

nlohmann::json breakersJson(const Snapshot& snap) {
  nlohmann::json out = nlohmann::json::array();
  std::vector<const guards::Guard*> seen;
  for (std::size_t r = 0; r < snap.routes.size(); ++r) {
    for (const auto& backend : snap.routes[r].backends) {
      for (const auto& guard : backend.guards) {
        const auto* b = dynamic_cast<const guards::CircuitBreakerGuard*>(guard.get());
        if (b == nullptr || std::find(seen.begin(), seen.end(), b) != seen.end()) continue;
        seen.push_back(b);
        nlohmann::json j = b->status();
        const bool wide = clusterWide(*b);
        j["route"] = wide ? nlohmann::json(nullptr) : nlohmann::json(snap.config.routes[r].name);
        // A route's own breaker on a split stands for every side: no one cluster.
        j["cluster"] = (wide || snap.routes[r].backends.size() == 1) &&
                               backend.cluster != RouteBackend::kNoCluster
                           ? nlohmann::json(snap.config.clusters[backend.cluster].name)
                           : nlohmann::json(nullptr);
        j["guard"] = b->name();
        out.push_back(std::move(j));
      }
    }
  }
  return out;
}

nlohmann::json inFlightJson(std::vector<proxy::InFlightRequest> requests, std::size_t limit,
                            std::size_t answered, std::size_t workers) {
  std::sort(requests.begin(), requests.end(),
            [](const auto& a, const auto& b) { return a.age > b.age; });
  const auto ms = [](std::chrono::nanoseconds d) {
    return std::chrono::duration<double, std::milli>(d).count();
  };
  const auto text = [](const std::string& s) {
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
  };
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t i = 0; i < requests.size() && i < limit; ++i) {
    const auto& r = requests[i];
    list.push_back({{"worker", r.worker},
                    {"request_id", r.request_id},
                    {"method", r.method},
                    {"host", r.host},
                    {"path", r.path},
                    {"client", r.client},
                    {"listener", r.listener},
                    {"route", text(r.route)},
                    {"cluster", text(r.cluster)},
                    {"phase", stats::phaseName(r.phase)},
                    {"age_ms", ms(r.age)},
                    {"deadline_left_ms", r.deadline_left ? nlohmann::json(ms(*r.deadline_left))
                                                         : nlohmann::json(nullptr)},
                    {"upstream", text(r.upstream)},
                    {"attempts", r.attempts}});
  }
  return {{"in_flight", requests.size()},
          {"shown", list.size()},
          {"workers", workers},
          {"workers_answered", answered},
          {"requests", std::move(list)}};
}

std::string renderMetrics(const Snapshot& snap, const StateRegistry& registry,
                          std::span<const stats::WorkerStats* const> shards,
                          stats::ProcessFacts facts) {
  stats::MetricsLayout layout;
  // Each guard's gauges once: a cluster's guard is shared by its routes, so it is labelled with
  // the cluster and an empty route (summing over routes must not count it twice).
  std::vector<const guards::Guard*> seen;
  for (std::size_t r = 0; r < snap.routes.size(); ++r) {
    const auto& route = snap.config.routes[r];
    const auto& plan = snap.routes[r];
    if (const RouteCanary* c = registry.canary(route.name); c != nullptr && plan.canary_share) {
      const auto& rollout = c->rollout();
      auto& f = layout.canaries.emplace_back();
      f.route = route.name;
      f.cluster = c->canaryCluster();
      f.share = c->shareMillionths() / static_cast<double>(RouteCanary::kWhole);
      f.step = rollout.step();
      f.state = resilience::toString(rollout.state());
      for (std::size_t a = 0; a < resilience::CanaryRollout::kActions; ++a) {
        const auto action = static_cast<resilience::CanaryRollout::Action>(a);
        f.decisions.emplace_back(resilience::toString(action), rollout.count(action));
      }
    }
    if (plan.mirror) {
      layout.mirrors.push_back(
          {route.name, snap.config.clusters[plan.mirror_cluster].name, plan.mirror.get()});
    }
    for (const auto& backend : plan.backends) {
      const std::string cluster = backend.cluster == RouteBackend::kNoCluster
                                      ? std::string()
                                      : snap.config.clusters[backend.cluster].name;
      auto& m = layout.routes.emplace_back();
      m.name = route.name;
      m.cluster = cluster;
      m.counters = backend.counters.get();
      for (std::size_t i = 0; i < backend.guards.size(); ++i) {
        const auto& guard = *backend.guards[i];
        if (backend.guard_slots[i] != RouteBackend::kNoSlot) {
          m.guards.emplace_back(backend.guard_slots[i], std::string(guard.name()));
        }
        if (std::find(seen.begin(), seen.end(), &guard) != seen.end()) continue;
        seen.push_back(&guard);
        // A route's own guard on a split stands for every side: labelled with no cluster.
        const bool wide = clusterWide(guard);
        const bool shared_by_sides = !wide && plan.backends.size() > 1;
        for (const auto& g : guard.gauges()) {
          facts.guard_gauges.push_back({std::string(g.name), std::string(g.help),
                                        std::string(g.type), wide ? std::string() : route.name,
                                        shared_by_sides ? std::string() : cluster,
                                        std::string(guard.name()), g.value, std::string(g.label),
                                        std::string(g.label_value)});
        }
      }
    }
  }
  const auto now = Clock::now();
  for (std::size_t c = 0; c < snap.config.clusters.size(); ++c) {
    const auto& cl = snap.config.clusters[c];
    const auto& state = *snap.clusters[c];
    const auto& slots = registry.cluster(cl.name)->hosts->slots();
    auto& m = layout.clusters.emplace_back();
    m.name = cl.name;
    m.counters = &state.counters();
    m.host_latency = cl.host_latency_histogram;
    auto& healthy = facts.host_healthy.emplace_back();
    for (std::size_t h = 0; h < slots.size(); ++h) {
      healthy.push_back(inSelection(cl, state, h, now));
      if (!slots[h].empty()) {
        m.hosts.push_back({h, slots[h].address, slots[h].weight, slots[h].drained});
      }
    }
    if (const auto* health = state.health().get()) {
      auto& f = facts.health_checks.emplace_back();
      f.cluster = c;
      f.panic = inPanic(cl, health);
      for (std::size_t h = 0; h < health->hosts(); ++h) {
        const auto& s = health->status(h);
        f.results.push_back(s.results);
        f.transitions.push_back({s.became_healthy, s.became_unhealthy});
      }
    }
    if (const auto* o = state.outliers()) {
      auto& f = facts.outliers.emplace_back();
      f.cluster = c;
      for (std::size_t k = 0; k < f.ejections.size(); ++k) f.ejections[k] = o->ejections(k);
      for (std::size_t h = 0; h < o->hosts(); ++h) f.ejected.push_back(o->ejected(h, now));
    }
    if (const auto* b = state.bulkhead()) {
      auto& f = facts.bulkheads.emplace_back();
      f.cluster = c;
      for (std::size_t k = 0; k < upstream::Bulkhead::kLimits; ++k) {
        f.in_use[k] = b->inUse(k);
        f.max[k] = b->max(k);
        f.overflows[k] = b->overflows(k);
      }
    }
  }
  return stats::renderPrometheus(layout, shards, facts);
}

}  // namespace sluice::gateway::server
