#include "gateway/server/stats_view.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "gateway/server/admin_views.h"

namespace sluice::gateway::server {

namespace {

std::int64_t unixMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// A route's (or the unrouted requests') counters summed over the workers: requests by status
// class, and the latency histogram as non-cumulative bucket counts (the last is +Inf).
template <typename Get>
nlohmann::json trafficJson(std::size_t workers, Get get) {
  std::array<std::uint64_t, stats::kStatusClasses.size()> by_class{};
  std::array<std::uint64_t, stats::LatencyHistogram::kBounds.size() + 1> buckets{};
  std::uint64_t sum_ns = 0;
  for (std::size_t w = 0; w < workers; ++w) {
    const stats::RouteStats& r = get(w);
    for (std::size_t c = 0; c < by_class.size(); ++c) by_class[c] += r.by_class[c].value();
    for (std::size_t b = 0; b < buckets.size(); ++b) buckets[b] += r.latency.bucket(b);
    sum_ns += r.latency.sumNanos();
  }
  return {{"by_class", by_class},
          {"latency_buckets", buckets},
          {"latency_sum_s", static_cast<double>(sum_ns) / 1e9}};
}

nlohmann::json guardJson(const guards::Guard& guard, std::size_t slot,
                         const stats::RouteCounters& counters) {
  nlohmann::json verdicts = nlohmann::json::object();
  if (slot != RouteBackend::kNoSlot) {
    for (std::size_t v = 0; v < stats::kGuardDecisionNames.size(); ++v) {
      verdicts[std::string(stats::kGuardDecisionNames[v])] = counters.shards.sum(
          [&](const stats::RouteShard& s) { return s.guards[slot][v].value(); });
    }
  }
  // The guard's scrape-time gauges (concurrency limit, in flight, queued; rate-limit keys...),
  // by metric name without the common prefix; a labelled one (a breaker's state) is skipped:
  // breakers have their own section.
  nlohmann::json gauges = nlohmann::json::object();
  for (const auto& g : guard.gauges()) {
    if (!g.label.empty()) continue;
    std::string_view name = g.name;
    if (name.starts_with("sluice_")) name.remove_prefix(7);
    gauges[std::string(name)] = g.value;
  }
  return {{"guard", guard.name()},
          {"shared", clusterWide(guard)},
          {"verdicts", std::move(verdicts)},
          {"gauges", std::move(gauges)}};
}

nlohmann::json reloadsJson(const ReloadHistory& history) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : history.entries()) {
    out.push_back({{"at_ms", unixMs(e.at)},
                   {"trigger", e.trigger},
                   {"applied", e.applied},
                   {"generation", e.generation},
                   {"problems", e.problems},
                   {"problem_count", e.problem_count},
                   {"took_ms", e.took_ms}});
  }
  return out;
}

}  // namespace

nlohmann::json statsJson(const Snapshot& snap, const StateRegistry& registry,
                         std::span<const stats::WorkerStats* const> shards,
                         const ServerFacts& facts) {
  const auto now = std::chrono::system_clock::now();
  std::int64_t requests_active = 0;
  std::int64_t connections_active = 0;
  for (const auto* s : shards) {
    requests_active += s->requests_active.value();
    connections_active += s->downstream_active.value();
  }

  nlohmann::json routes = nlohmann::json::array();
  {
    auto unrouted = trafficJson(shards.size(), [&](std::size_t w) -> const stats::RouteStats& {
      return shards[w]->unrouted;
    });
    unrouted["route"] = nullptr;  // answered before routing: 400, 404, ...
    unrouted["cluster"] = nullptr;
    unrouted["guards"] = nlohmann::json::array();
    routes.push_back(std::move(unrouted));
  }
  for (std::size_t r = 0; r < snap.routes.size(); ++r) {
    for (const auto& backend : snap.routes[r].backends) {
      const auto& counters = *backend.counters;
      auto j = trafficJson(counters.shards.size(), [&](std::size_t w) -> const stats::RouteStats& {
        return counters.shards[w].requests;
      });
      j["route"] = snap.config.routes[r].name;
      j["cluster"] = backend.cluster == RouteBackend::kNoCluster
                         ? nlohmann::json(nullptr)
                         : nlohmann::json(snap.config.clusters[backend.cluster].name);
      nlohmann::json guards = nlohmann::json::array();
      for (std::size_t i = 0; i < backend.guards.size(); ++i) {
        guards.push_back(guardJson(*backend.guards[i], backend.guard_slots[i], counters));
      }
      j["guards"] = std::move(guards);
      routes.push_back(std::move(j));
    }
  }

  return {
      {"version", SLUICE_VERSION},
      {"now_ms", unixMs(now)},
      {"started_ms", unixMs(facts.started)},
      {"workers", facts.workers},
      {"draining", facts.draining},
      {"requests_active", requests_active},
      {"connections_active", connections_active},
      {"config",
       {{"generation", facts.generation},
        {"source", facts.source},
        {"hash", facts.hash},
        {"reloads_ok", facts.reloads_ok},
        {"reloads_failed", facts.reloads_failed},
        {"history",
         facts.history != nullptr ? reloadsJson(*facts.history) : nlohmann::json::array()}}},
      {"latency_bounds_s", stats::LatencyHistogram::kBounds},
      {"routes", std::move(routes)},
      {"breakers", breakersJson(snap)},
      {"clusters", upstreamsJson(snap, registry)},
  };
}

}  // namespace sluice::gateway::server
