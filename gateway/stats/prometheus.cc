#include "gateway/stats/prometheus.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <string_view>

namespace sluice::gateway::stats {
namespace {

void escapeInto(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
}

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }

  // name{k="v",...} value
  template <typename Value>
  void sample(std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              Value value) {
    out_.append(name);
    if (labels.size() > 0) {
      out_.push_back('{');
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_.push_back(',');
        first = false;
        out_.append(k).append("=\"");
        escapeInto(out_, v);
        out_.push_back('"');
      }
      out_.push_back('}');
    }
    out_.push_back(' ');
    if constexpr (std::is_floating_point_v<Value>) {
      std::array<char, 64> buf{};
      const int n = std::snprintf(buf.data(), buf.size(), "%.9g", value);
      out_.append(buf.data(), static_cast<std::size_t>(std::max(0, n)));
    } else {
      out_.append(std::to_string(value));
    }
    out_.push_back('\n');
  }

 private:
  std::string& out_;
};

template <typename F>
std::uint64_t sumOver(std::span<const WorkerStats* const> shards, F&& f) {
  std::uint64_t total = 0;
  for (const WorkerStats* s : shards) total += f(*s);
  return total;
}

template <typename F>
std::int64_t sumGauge(std::span<const WorkerStats* const> shards, F&& f) {
  std::int64_t total = 0;
  for (const WorkerStats* s : shards) total += f(*s);
  return total;
}

std::string boundText(double b) {
  std::array<char, 32> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%g", b);
  return {buf.data(), static_cast<std::size_t>(std::max(0, n))};
}

void renderRoute(Writer& w, std::span<const WorkerStats* const> shards, std::string_view route,
                 std::string_view cluster,
                 const RouteStats& (*pick)(const WorkerStats&, std::size_t), std::size_t index,
                 bool counters) {
  if (counters) {
    for (std::size_t c = 0; c < kStatusClasses.size(); ++c) {
      const auto v =
          sumOver(shards, [&](const WorkerStats& s) { return pick(s, index).by_class[c].value(); });
      w.sample("sluice_requests_total",
               {{"route", route}, {"cluster", cluster}, {"code_class", kStatusClasses[c]}}, v);
    }
    return;
  }
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b <= LatencyHistogram::kBounds.size(); ++b) {
    cumulative +=
        sumOver(shards, [&](const WorkerStats& s) { return pick(s, index).latency.bucket(b); });
    const std::string le =
        b < LatencyHistogram::kBounds.size() ? boundText(LatencyHistogram::kBounds[b]) : "+Inf";
    w.sample("sluice_request_duration_seconds_bucket", {{"route", route}, {"le", le}}, cumulative);
  }
  const auto sum_ns =
      sumOver(shards, [&](const WorkerStats& s) { return pick(s, index).latency.sumNanos(); });
  w.sample("sluice_request_duration_seconds_sum", {{"route", route}},
           static_cast<double>(sum_ns) / 1e9);
  w.sample("sluice_request_duration_seconds_count", {{"route", route}}, cumulative);
}

const RouteStats& unroutedOf(const WorkerStats& s, std::size_t /*index*/) { return s.unrouted; }
const RouteStats& routeOf(const WorkerStats& s, std::size_t index) { return s.routes[index]; }

}  // namespace

std::string renderPrometheus(const MetricsLayout& layout,
                             std::span<const WorkerStats* const> shards,
                             const ProcessFacts& facts) {
  std::string out;
  out.reserve(8192);
  Writer w(out);

  w.family("sluice_build_info", "gauge", "Build information.");
  w.sample("sluice_build_info", {{"version", SLUICE_VERSION}}, 1);
  w.family("sluice_workers", "gauge", "Worker threads serving traffic.");
  w.sample("sluice_workers", {}, facts.workers);
  w.family("sluice_draining", "gauge", "1 while the process drains before exit.");
  w.sample("sluice_draining", {}, facts.draining ? 1 : 0);

  w.family("sluice_downstream_connections_active", "gauge", "Open client connections.");
  w.sample("sluice_downstream_connections_active", {},
           sumGauge(shards, [](const WorkerStats& s) { return s.downstream_active.value(); }));
  w.family("sluice_downstream_connections_total", "counter", "Client connections accepted.");
  w.sample("sluice_downstream_connections_total", {},
           sumOver(shards, [](const WorkerStats& s) { return s.downstream_total.value(); }));

  w.family("sluice_requests_total", "counter",
           "Requests answered, by route, cluster and status class (route=\"\" before routing).");
  renderRoute(w, shards, "", "", &unroutedOf, 0, true);
  for (std::size_t r = 0; r < layout.route_names.size(); ++r) {
    renderRoute(w, shards, layout.route_names[r], layout.route_clusters[r], &routeOf, r, true);
  }
  w.family("sluice_request_duration_seconds", "histogram",
           "Time from the end of the request head to the end of the response, by route.");
  renderRoute(w, shards, "", "", &unroutedOf, 0, false);
  for (std::size_t r = 0; r < layout.route_names.size(); ++r) {
    renderRoute(w, shards, layout.route_names[r], layout.route_clusters[r], &routeOf, r, false);
  }

  w.family("sluice_rejected_requests_total", "counter",
           "Requests refused by sluice before forwarding, by reason.");
  for (std::size_t i = 0; i < kRejectNames.size(); ++i) {
    w.sample("sluice_rejected_requests_total", {{"reason", kRejectNames[i]}},
             sumOver(shards, [&](const WorkerStats& s) { return s.rejected[i].value(); }));
  }

  w.family("sluice_upstream_errors_total", "counter",
           "Failed upstream attempts, by cluster and kind.");
  for (std::size_t c = 0; c < layout.cluster_names.size(); ++c) {
    for (std::size_t k = 0; k < kUpstreamErrorNames.size(); ++k) {
      w.sample(
          "sluice_upstream_errors_total",
          {{"cluster", layout.cluster_names[c]}, {"kind", kUpstreamErrorNames[k]}},
          sumOver(shards, [&](const WorkerStats& s) { return s.clusters[c].errors[k].value(); }));
    }
  }
  w.family("sluice_upstream_retries_total", "counter",
           "Upstream attempts after the first, by cluster.");
  for (std::size_t c = 0; c < layout.cluster_names.size(); ++c) {
    w.sample("sluice_upstream_retries_total", {{"cluster", layout.cluster_names[c]}},
             sumOver(shards, [&](const WorkerStats& s) { return s.clusters[c].retries.value(); }));
  }
  w.family("sluice_upstream_retry_budget_exhausted_total", "counter",
           "Retryable failures not retried because the cluster's retry budget was spent.");
  for (std::size_t c = 0; c < layout.cluster_names.size(); ++c) {
    w.sample("sluice_upstream_retry_budget_exhausted_total", {{"cluster", layout.cluster_names[c]}},
             sumOver(shards,
                     [&](const WorkerStats& s) { return s.clusters[c].retries_denied.value(); }));
  }

  struct HostGauge {
    const char* name;
    const char* type;
    const char* help;
    std::int64_t (*get)(const HostStats&);
  };
  const HostGauge host_metrics[] = {
      {"sluice_upstream_connections_active", "gauge", "Pooled upstream connections in use.",
       [](const HostStats& h) { return h.active.value(); }},
      {"sluice_upstream_connections_idle", "gauge", "Pooled upstream connections idle for reuse.",
       [](const HostStats& h) { return h.idle.value(); }},
      {"sluice_upstream_pending_requests", "gauge", "Requests waiting for a pooled connection.",
       [](const HostStats& h) { return h.pending.value(); }},
      {"sluice_upstream_connects_total", "counter", "Upstream connections opened.",
       [](const HostStats& h) { return static_cast<std::int64_t>(h.connects.value()); }},
      {"sluice_upstream_requests_total", "counter", "Requests sent to an upstream host.",
       [](const HostStats& h) { return static_cast<std::int64_t>(h.requests.value()); }},
  };
  for (const auto& m : host_metrics) {
    w.family(m.name, m.type, m.help);
    for (std::size_t c = 0; c < layout.cluster_names.size(); ++c) {
      for (std::size_t h = 0; h < layout.host_addresses[c].size(); ++h) {
        if (layout.host_addresses[c][h].empty()) continue;  // an empty slot
        w.sample(m.name,
                 {{"cluster", layout.cluster_names[c]}, {"host", layout.host_addresses[c][h]}},
                 sumGauge(shards, [&](const WorkerStats& s) { return m.get(s.hosts[c][h]); }));
      }
    }
  }

  w.family("sluice_upstream_connections_closed_total", "counter",
           "Pooled upstream connections closed, by reason: idle_timeout, upstream_closed "
           "(found closed when about to be reused), not_reusable (the exchange did not end "
           "cleanly or asked to close), idle_full (pool.max_idle reached), drain.");
  for (std::size_t c = 0; c < layout.cluster_names.size(); ++c) {
    for (std::size_t h = 0; h < layout.host_addresses[c].size(); ++h) {
      if (layout.host_addresses[c][h].empty()) continue;  // an empty slot
      for (std::size_t r = 0; r < kCloseReasonNames.size(); ++r) {
        w.sample(
            "sluice_upstream_connections_closed_total",
            {{"cluster", layout.cluster_names[c]},
             {"host", layout.host_addresses[c][h]},
             {"reason", kCloseReasonNames[r]}},
            sumOver(shards, [&](const WorkerStats& s) { return s.hosts[c][h].closed[r].value(); }));
      }
    }
  }
  w.family("sluice_upstream_host_weight", "gauge", "A host's configured balancing weight.");
  for (std::size_t c = 0; c < layout.cluster_names.size(); ++c) {
    for (std::size_t h = 0; h < layout.host_addresses[c].size(); ++h) {
      if (layout.host_addresses[c][h].empty()) continue;  // an empty slot
      w.sample("sluice_upstream_host_weight",
               {{"cluster", layout.cluster_names[c]}, {"host", layout.host_addresses[c][h]}},
               std::uint64_t{layout.host_weights[c][h]});
    }
  }
  if (!facts.host_healthy.empty()) {
    w.family("sluice_upstream_host_healthy", "gauge",
             "1 while the host is in selection: passing its active health checks (or the "
             "cluster in panic) and not ejected by outlier detection.");
    for (std::size_t c = 0; c < layout.cluster_names.size(); ++c) {
      for (std::size_t h = 0; h < layout.host_addresses[c].size(); ++h) {
        if (layout.host_addresses[c][h].empty()) continue;  // an empty slot
        w.sample("sluice_upstream_host_healthy",
                 {{"cluster", layout.cluster_names[c]}, {"host", layout.host_addresses[c][h]}},
                 std::uint64_t{facts.host_healthy[c][h] ? 1U : 0U});
      }
    }
  }

  if (!facts.health_checks.empty()) {
    w.family("sluice_health_checks_total", "counter",
             "Active health check probes by cluster, host and result.");
    for (const auto& hc : facts.health_checks) {
      for (std::size_t h = 0; h < hc.results.size(); ++h) {
        if (layout.host_addresses[hc.cluster][h].empty()) continue;
        for (std::size_t k = 0; k < kHealthCheckResults.size(); ++k) {
          w.sample("sluice_health_checks_total",
                   {{"cluster", layout.cluster_names[hc.cluster]},
                    {"host", layout.host_addresses[hc.cluster][h]},
                    {"result", kHealthCheckResults[k]}},
                   hc.results[h][k]);
        }
      }
    }
    w.family("sluice_health_check_transitions_total", "counter",
             "Hosts turned healthy or unhealthy by active health checks.");
    for (const auto& hc : facts.health_checks) {
      for (std::size_t h = 0; h < hc.transitions.size(); ++h) {
        if (layout.host_addresses[hc.cluster][h].empty()) continue;
        for (std::size_t k = 0; k < 2; ++k) {
          w.sample("sluice_health_check_transitions_total",
                   {{"cluster", layout.cluster_names[hc.cluster]},
                    {"host", layout.host_addresses[hc.cluster][h]},
                    {"to", k == 0 ? "healthy" : "unhealthy"}},
                   hc.transitions[h][k]);
        }
      }
    }
    w.family("sluice_upstream_panic", "gauge",
             "1 while too few hosts pass their health checks (lb.panic_threshold) and the "
             "cluster balances across all of them.");
    for (const auto& hc : facts.health_checks) {
      w.sample("sluice_upstream_panic", {{"cluster", layout.cluster_names[hc.cluster]}},
               std::uint64_t{hc.panic ? 1U : 0U});
    }
  }

  if (!facts.bulkheads.empty()) {
    struct Family {
      const char* name;
      const char* type;
      const char* help;
      const std::array<std::uint64_t, 4> BulkheadFacts::*values;
    };
    static constexpr Family kFamilies[] = {
        {"sluice_bulkhead_in_use", "gauge", "Units of a cluster's bulkhead caps in use.",
         &BulkheadFacts::in_use},
        {"sluice_bulkhead_limit", "gauge", "A cluster's bulkhead caps.", &BulkheadFacts::max},
        {"sluice_bulkhead_overflow_total", "counter",
         "Requests (or retries) refused because a bulkhead cap was full.",
         &BulkheadFacts::overflows}};
    for (const auto& f : kFamilies) {
      w.family(f.name, f.type, f.help);
      for (const auto& b : facts.bulkheads) {
        for (std::size_t k = 0; k < kBulkheadLimits.size(); ++k) {
          w.sample(f.name,
                   {{"cluster", layout.cluster_names[b.cluster]}, {"limit", kBulkheadLimits[k]}},
                   (b.*f.values)[k]);
        }
      }
    }
  }

  if (!facts.outliers.empty()) {
    w.family("sluice_outlier_ejections_total", "counter",
             "Hosts ejected by outlier detection, by cluster and detector.");
    for (const auto& o : facts.outliers) {
      for (std::size_t k = 0; k < kEjectionReasons.size(); ++k) {
        w.sample("sluice_outlier_ejections_total",
                 {{"cluster", layout.cluster_names[o.cluster]}, {"reason", kEjectionReasons[k]}},
                 o.ejections[k]);
      }
    }
    w.family("sluice_upstream_host_ejected", "gauge",
             "1 while outlier detection keeps the host out of selection.");
    for (const auto& o : facts.outliers) {
      for (std::size_t h = 0; h < o.ejected.size(); ++h) {
        if (layout.host_addresses[o.cluster][h].empty()) continue;
        w.sample("sluice_upstream_host_ejected",
                 {{"cluster", layout.cluster_names[o.cluster]},
                  {"host", layout.host_addresses[o.cluster][h]}},
                 std::uint64_t{o.ejected[h] ? 1U : 0U});
      }
    }
  }

  if (!layout.guard_labels.empty()) {
    w.family("sluice_guard_requests_total", "counter",
             "Admission guard verdicts by route and guard: allowed (at once), delayed (after "
             "waiting), limited (rate limit), shed (no capacity), open (circuit breaker "
             "fallback) and aborted (fault injection).");
    for (std::size_t g = 0; g < layout.guard_labels.size(); ++g) {
      const auto& [route, guard] = layout.guard_labels[g];
      for (std::size_t v = 0; v < kGuardDecisionNames.size(); ++v) {
        w.sample("sluice_guard_requests_total",
                 {{"route", route}, {"guard", guard}, {"decision", kGuardDecisionNames[v]}},
                 sumOver(shards, [&](const WorkerStats& s) { return s.guards[g][v].value(); }));
      }
    }
  }
  // Guard gauges, one family per name, in order of first appearance.
  for (std::size_t i = 0; i < facts.guard_gauges.size(); ++i) {
    const auto& first = facts.guard_gauges[i];
    bool seen = false;
    for (std::size_t j = 0; j < i && !seen; ++j) seen = facts.guard_gauges[j].name == first.name;
    if (seen) continue;
    w.family(first.name, first.type, first.help);
    for (std::size_t j = i; j < facts.guard_gauges.size(); ++j) {
      const auto& g = facts.guard_gauges[j];
      if (g.name != first.name) continue;
      const std::initializer_list<std::pair<std::string_view, std::string_view>> labels = {
          {"route", g.route}, {"cluster", g.cluster}, {"guard", g.guard}};
      const std::initializer_list<std::pair<std::string_view, std::string_view>> labels_extra = {
          {"route", g.route}, {"cluster", g.cluster}, {"guard", g.guard}, {g.label, g.label_value}};
      const auto& ls = g.label.empty() ? labels : labels_extra;
      // Counts print as integers: "%.9g" would round a large counter.
      if (g.value >= 0 && g.value < 9e15 &&
          g.value == static_cast<double>(static_cast<std::uint64_t>(g.value))) {
        w.sample(g.name, ls, static_cast<std::uint64_t>(g.value));
      } else {
        w.sample(g.name, ls, g.value);
      }
    }
  }

  w.family("sluice_handler_exceptions_total", "counter",
           "Requests whose handling threw; each was answered 500 and the worker kept serving.");
  w.sample("sluice_handler_exceptions_total", {},
           sumOver(shards, [](const WorkerStats& s) { return s.exceptions.value(); }));
  w.family("sluice_access_log_dropped_total", "counter",
           "Access log lines dropped because the log writer fell behind.");
  w.sample("sluice_access_log_dropped_total", {}, facts.access_log_dropped);
  return out;
}

}  // namespace sluice::gateway::stats
