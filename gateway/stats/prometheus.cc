#include "gateway/stats/prometheus.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
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
      // The shortest text that reads back as the same double: a timestamp in seconds keeps
      // its fraction (a fixed "%.9g" rounded it to ten seconds).
      if (std::isnan(value)) {
        out_.append("NaN");
      } else if (std::isinf(value)) {
        out_.append(value > 0 ? "+Inf" : "-Inf");
      } else {
        std::array<char, 64> buf{};
        const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), value);
        out_.append(buf.data(), r.ptr);
      }
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

using Label = std::pair<std::string_view, std::string_view>;

// A histogram family's three series names.
struct HistogramNames {
  std::string_view bucket;
  std::string_view sum;
  std::string_view count;
};
constexpr HistogramNames kRequestDuration = {"sluice_request_duration_seconds_bucket",
                                             "sluice_request_duration_seconds_sum",
                                             "sluice_request_duration_seconds_count"};
constexpr HistogramNames kResponseHead = {"sluice_upstream_response_head_seconds_bucket",
                                          "sluice_upstream_response_head_seconds_sum",
                                          "sluice_upstream_response_head_seconds_count"};
constexpr HistogramNames kHostResponseHead = {"sluice_upstream_host_response_head_seconds_bucket",
                                              "sluice_upstream_host_response_head_seconds_sum",
                                              "sluice_upstream_host_response_head_seconds_count"};

constexpr HistogramNames kRedisDuration = {"sluice_redis_request_duration_seconds_bucket",
                                           "sluice_redis_request_duration_seconds_sum",
                                           "sluice_redis_request_duration_seconds_count"};
constexpr HistogramNames kEtcdDuration = {"sluice_etcd_request_duration_seconds_bucket",
                                          "sluice_etcd_request_duration_seconds_sum",
                                          "sluice_etcd_request_duration_seconds_count"};

// One latency histogram's series - _bucket (cumulative, by le), _sum and _count - labelled
// `first` and, when its name is not empty, `second`. `sum(f)` adds f(histogram) over the shards.
template <typename Sum>
void writeHistogram(Writer& w, const HistogramNames& name, Label first, Label second, Sum sum) {
  const auto labelled = [&](std::string_view series, auto value,
                            std::optional<std::string_view> le = std::nullopt) {
    if (le && second.first.empty()) {
      w.sample(series, {first, {"le", *le}}, value);
    } else if (le) {
      w.sample(series, {first, second, {"le", *le}}, value);
    } else if (second.first.empty()) {
      w.sample(series, {first}, value);
    } else {
      w.sample(series, {first, second}, value);
    }
  };
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b <= LatencyHistogram::kBounds.size(); ++b) {
    cumulative += sum([&](const LatencyHistogram& h) { return h.bucket(b); });
    const std::string le =
        b < LatencyHistogram::kBounds.size() ? boundText(LatencyHistogram::kBounds[b]) : "+Inf";
    labelled(name.bucket, cumulative, le);
  }
  labelled(name.sum,
           static_cast<double>(sum([](const LatencyHistogram& h) { return h.sumNanos(); })) / 1e9);
  labelled(name.count, cumulative);
}

// The families of an outside service's client: sluice_<name>_up, _requests_total{op,result} and
// _request_duration_seconds{op}.
struct ClientHelp {
  std::string_view up, up_help, requests, requests_help, duration, duration_help;
  const HistogramNames& durations;
};

void writeClient(Writer& w, const ClientHelp& h, const ProcessFacts::Client& c) {
  w.family(h.up, "gauge", h.up_help);
  w.sample(h.up, {}, std::uint64_t{c.up ? 1U : 0U});
  w.family(h.requests, "counter", h.requests_help);
  for (const auto& q : c.requests) {
    w.sample(h.requests, {{"op", q.op}, {"result", q.result}}, q.count);
  }
  w.family(h.duration, "histogram", h.duration_help);
  for (const auto& d : c.durations) {
    const LatencyHistogram* hist = d.second;
    writeHistogram(w, h.durations, {"op", d.first}, {}, [hist](auto f) { return f(*hist); });
  }
}

// Renders a route's counters (or, with histogram, its latency) summed over `count` shards.
template <typename Get>
void renderRoute(Writer& w, std::string_view route, std::string_view cluster, std::size_t count,
                 Get get, bool histogram) {
  const auto sum = [&](auto f) {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < count; ++i) total += f(get(i));
    return total;
  };
  if (!histogram) {
    for (std::size_t c = 0; c < kStatusClasses.size(); ++c) {
      const auto v = sum([&](const RouteStats& r) { return r.by_class[c].value(); });
      w.sample("sluice_requests_total",
               {{"route", route}, {"cluster", cluster}, {"code_class", kStatusClasses[c]}}, v);
    }
    return;
  }
  writeHistogram(w, kRequestDuration, {"route", route}, {"cluster", cluster},
                 [&](auto f) { return sum([&](const RouteStats& r) { return f(r.latency); }); });
}

void renderRoutes(Writer& w, const MetricsLayout& layout,
                  std::span<const WorkerStats* const> shards, bool histogram) {
  renderRoute(
      w, "", "", shards.size(),
      [&](std::size_t i) -> const RouteStats& { return shards[i]->unrouted; }, histogram);
  for (const auto& r : layout.routes) {
    renderRoute(
        w, r.name, r.cluster, r.counters->shards.size(),
        [&](std::size_t i) -> const RouteStats& { return r.counters->shards[i].requests; },
        histogram);
  }
}

}  // namespace

std::string renderPrometheus(const MetricsLayout& layout,
                             std::span<const WorkerStats* const> shards,
                             const ProcessFacts& facts) {
  std::string out;
  out.reserve(8192);
  Writer w(out);

  if (const auto& p = facts.process) {
    w.family("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
    w.sample("process_cpu_seconds_total", {}, p->cpu_seconds);
    w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    w.sample("process_resident_memory_bytes", {}, p->resident_bytes);
    w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    w.sample("process_virtual_memory_bytes", {}, p->virtual_bytes);
    w.family("process_open_fds", "gauge", "Open file descriptors.");
    w.sample("process_open_fds", {}, p->open_fds);
    w.family("process_max_fds", "gauge",
             "The limit on open file descriptors (soft RLIMIT_NOFILE).");
    w.sample("process_max_fds", {}, p->max_fds);
    w.family("process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch, in seconds.");
    // Whole seconds: the sample format keeps 9 significant digits, a tenth of this number's.
    w.sample("process_start_time_seconds", {}, std::llround(p->start_time_seconds));
  }
  w.family("sluice_build_info", "gauge", "Build information.");
  w.sample("sluice_build_info", {{"version", SLUICE_VERSION}}, 1);
  w.family("sluice_workers", "gauge", "Worker threads serving traffic.");
  w.sample("sluice_workers", {}, facts.workers);
  w.family("sluice_draining", "gauge", "1 while the process drains before exit.");
  w.sample("sluice_draining", {}, facts.draining ? 1 : 0);

  w.family("sluice_downstream_connections_active", "gauge", "Open client connections.");
  w.sample("sluice_downstream_connections_active", {},
           sumGauge(shards, [](const WorkerStats& s) { return s.downstream_active.value(); }));
  w.family("sluice_requests_active", "gauge",
           "Requests being served (from their first byte to the end of their response).");
  w.sample("sluice_requests_active", {},
           sumGauge(shards, [](const WorkerStats& s) { return s.requests_active.value(); }));
  w.family("sluice_downstream_connections_total", "counter", "Client connections accepted.");
  w.sample("sluice_downstream_connections_total", {},
           sumOver(shards, [](const WorkerStats& s) { return s.downstream_total.value(); }));

  w.family("sluice_config_generation", "gauge",
           "The config generation being served (1 at start, +1 per applied reload).");
  w.sample("sluice_config_generation", {}, facts.reloads.generation);
  w.family("sluice_config_reloads_total", "counter",
           "Config reloads, by result: success (applied) or failure (refused, nothing changed).");
  w.sample("sluice_config_reloads_total", {{"result", "success"}}, facts.reloads.succeeded);
  w.sample("sluice_config_reloads_total", {{"result", "failure"}}, facts.reloads.failed);
  w.family("sluice_config_last_reload_success_timestamp_seconds", "gauge",
           "When the config being served was applied (the start, or the last good reload).");
  w.sample("sluice_config_last_reload_success_timestamp_seconds", {},
           facts.reloads.last_success_unix);

  w.family("sluice_requests_total", "counter",
           "Requests answered, by route, cluster and status class (route=\"\" before routing).");
  renderRoutes(w, layout, shards, false);
  w.family("sluice_request_duration_seconds", "histogram",
           "Time from the end of the request head to the end of the response, by route.");
  renderRoutes(w, layout, shards, true);

  w.family("sluice_rejected_requests_total", "counter",
           "Requests refused by sluice before forwarding, by reason.");
  for (std::size_t i = 0; i < kRejectNames.size(); ++i) {
    w.sample("sluice_rejected_requests_total", {{"reason", kRejectNames[i]}},
             sumOver(shards, [&](const WorkerStats& s) { return s.rejected[i].value(); }));
  }

  w.family("sluice_slow_client_disconnects_total", "counter",
           "Client connections closed during a response because the client read it too slowly, "
           "by reason.");
  for (std::size_t i = 0; i < kSlowReaderNames.size(); ++i) {
    w.sample("sluice_slow_client_disconnects_total", {{"reason", kSlowReaderNames[i]}},
             sumOver(shards, [&](const WorkerStats& s) { return s.slow_readers[i].value(); }));
  }

  w.family("sluice_client_aborts_total", "counter",
           "Requests cancelled because the client closed its connection while they waited "
           "(route client_abort: cancel), by the phase they were in.");
  for (const RequestPhase p : kAbortablePhases) {
    const auto i = static_cast<std::size_t>(p);
    w.sample("sluice_client_aborts_total", {{"phase", kRequestPhaseNames[i]}},
             sumOver(shards, [&](const WorkerStats& s) { return s.client_aborts[i].value(); }));
  }

  w.family("sluice_upstream_errors_total", "counter",
           "Failed upstream attempts, by cluster and kind.");
  for (const auto& c : layout.clusters) {
    for (std::size_t k = 0; k < kUpstreamErrorNames.size(); ++k) {
      w.sample("sluice_upstream_errors_total",
               {{"cluster", c.name}, {"kind", kUpstreamErrorNames[k]}},
               c.counters->shards.sum(
                   [&](const ClusterShard& s) { return s.cluster.errors[k].value(); }));
    }
  }
  w.family("sluice_upstream_retries_total", "counter",
           "Upstream attempts after the first, by cluster.");
  for (const auto& c : layout.clusters) {
    w.sample(
        "sluice_upstream_retries_total", {{"cluster", c.name}},
        c.counters->shards.sum([](const ClusterShard& s) { return s.cluster.retries.value(); }));
  }
  w.family("sluice_upstream_response_head_seconds", "histogram",
           "From the start of an upstream try (pool wait and connect included) to its response "
           "head, by cluster.");
  for (const auto& c : layout.clusters) {
    writeHistogram(w, kResponseHead, {"cluster", c.name}, {}, [&](auto f) {
      return c.counters->shards.sum(
          [&](const ClusterShard& s) { return f(s.cluster.head_latency); });
    });
  }
  if (std::any_of(layout.clusters.begin(), layout.clusters.end(),
                  [](const ClusterMetrics& c) { return c.host_latency; })) {
    w.family("sluice_upstream_host_response_head_seconds", "histogram",
             "sluice_upstream_response_head_seconds by host, for the clusters with "
             "host_latency_histogram.");
    for (const auto& c : layout.clusters) {
      if (!c.host_latency) continue;
      for (const auto& h : c.hosts) {
        writeHistogram(w, kHostResponseHead, {"cluster", c.name}, {"host", h.address}, [&](auto f) {
          return c.counters->shards.sum(
              [&](const ClusterShard& s) { return f(s.hosts[h.slot].head_latency); });
        });
      }
    }
  }
  w.family("sluice_upstream_retry_budget_exhausted_total", "counter",
           "Retryable failures not retried because the cluster's retry budget was spent.");
  for (const auto& c : layout.clusters) {
    w.sample("sluice_upstream_retry_budget_exhausted_total", {{"cluster", c.name}},
             c.counters->shards.sum(
                 [](const ClusterShard& s) { return s.cluster.retries_denied.value(); }));
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
    for (const auto& c : layout.clusters) {
      for (const auto& h : c.hosts) {
        w.sample(m.name, {{"cluster", c.name}, {"host", h.address}},
                 c.counters->shards.sumSigned(
                     [&](const ClusterShard& s) { return m.get(s.hosts[h.slot]); }));
      }
    }
  }

  w.family("sluice_upstream_connections_closed_total", "counter",
           "Pooled upstream connections closed, by reason: idle_timeout, upstream_closed "
           "(found closed when about to be reused), not_reusable (the exchange did not end "
           "cleanly or asked to close), idle_full (pool.max_idle reached), drain.");
  for (const auto& c : layout.clusters) {
    for (const auto& h : c.hosts) {
      for (std::size_t r = 0; r < kCloseReasonNames.size(); ++r) {
        w.sample("sluice_upstream_connections_closed_total",
                 {{"cluster", c.name}, {"host", h.address}, {"reason", kCloseReasonNames[r]}},
                 c.counters->shards.sum(
                     [&](const ClusterShard& s) { return s.hosts[h.slot].closed[r].value(); }));
      }
    }
  }
  w.family("sluice_upstream_host_weight", "gauge", "A host's configured balancing weight.");
  for (const auto& c : layout.clusters) {
    for (const auto& h : c.hosts) {
      w.sample("sluice_upstream_host_weight", {{"cluster", c.name}, {"host", h.address}},
               std::uint64_t{h.weight});
    }
  }
  w.family("sluice_upstream_host_drained", "gauge",
           "1 while an operator has the host drained (POST /upstreams/<cluster>/<host>/drain): "
           "no balancer picks it.");
  for (const auto& c : layout.clusters) {
    for (const auto& h : c.hosts) {
      w.sample("sluice_upstream_host_drained", {{"cluster", c.name}, {"host", h.address}},
               std::uint64_t{h.drained ? 1U : 0U});
    }
  }
  if (!facts.host_healthy.empty()) {
    w.family("sluice_upstream_host_healthy", "gauge",
             "1 while the host is in selection: passing its active health checks (or the "
             "cluster in panic) and not ejected by outlier detection.");
    for (std::size_t c = 0; c < layout.clusters.size(); ++c) {
      for (const auto& h : layout.clusters[c].hosts) {
        w.sample("sluice_upstream_host_healthy",
                 {{"cluster", layout.clusters[c].name}, {"host", h.address}},
                 std::uint64_t{facts.host_healthy[c][h.slot] ? 1U : 0U});
      }
    }
  }

  if (!facts.health_checks.empty()) {
    w.family("sluice_health_checks_total", "counter",
             "Active health check probes by cluster, host and result.");
    for (const auto& hc : facts.health_checks) {
      const auto& c = layout.clusters[hc.cluster];
      for (const auto& h : c.hosts) {
        for (std::size_t k = 0; k < kHealthCheckResults.size(); ++k) {
          w.sample("sluice_health_checks_total",
                   {{"cluster", c.name}, {"host", h.address}, {"result", kHealthCheckResults[k]}},
                   hc.results[h.slot][k]);
        }
      }
    }
    w.family("sluice_health_check_transitions_total", "counter",
             "Hosts turned healthy or unhealthy by active health checks.");
    for (const auto& hc : facts.health_checks) {
      const auto& c = layout.clusters[hc.cluster];
      for (const auto& h : c.hosts) {
        for (std::size_t k = 0; k < 2; ++k) {
          w.sample(
              "sluice_health_check_transitions_total",
              {{"cluster", c.name}, {"host", h.address}, {"to", k == 0 ? "healthy" : "unhealthy"}},
              hc.transitions[h.slot][k]);
        }
      }
    }
    w.family("sluice_upstream_panic", "gauge",
             "1 while too few hosts pass their health checks (lb.panic_threshold) and the "
             "cluster balances across all of them.");
    for (const auto& hc : facts.health_checks) {
      w.sample("sluice_upstream_panic", {{"cluster", layout.clusters[hc.cluster].name}},
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
                   {{"cluster", layout.clusters[b.cluster].name}, {"limit", kBulkheadLimits[k]}},
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
                 {{"cluster", layout.clusters[o.cluster].name}, {"reason", kEjectionReasons[k]}},
                 o.ejections[k]);
      }
    }
    w.family("sluice_upstream_host_ejected", "gauge",
             "1 while outlier detection keeps the host out of selection.");
    for (const auto& o : facts.outliers) {
      const auto& c = layout.clusters[o.cluster];
      for (const auto& h : c.hosts) {
        w.sample("sluice_upstream_host_ejected", {{"cluster", c.name}, {"host", h.address}},
                 std::uint64_t{o.ejected[h.slot] ? 1U : 0U});
      }
    }
  }

  const bool any_guard = std::any_of(layout.routes.begin(), layout.routes.end(),
                                     [](const RouteMetrics& r) { return !r.guards.empty(); });
  if (any_guard) {
    w.family("sluice_guard_requests_total", "counter",
             "Admission guard verdicts by route and guard: allowed (at once), delayed (after "
             "waiting), limited (rate limit), shed (no capacity), open (circuit breaker "
             "fallback) and aborted (fault injection).");
    for (const auto& r : layout.routes) {
      for (const auto& g : r.guards) {
        const std::size_t slot = g.first;
        for (std::size_t v = 0; v < kGuardDecisionNames.size(); ++v) {
          w.sample("sluice_guard_requests_total",
                   {{"route", r.name},
                    {"cluster", r.cluster},
                    {"guard", g.second},
                    {"decision", kGuardDecisionNames[v]}},
                   r.counters->shards.sum(
                       [&](const RouteShard& s) { return s.guards[slot][v].value(); }));
        }
      }
    }
  }
  if (!layout.mirrors.empty()) {
    w.family("sluice_mirror_requests_total", "counter",
             "Copies of requests a route mirrored, by what became of them: the status class of "
             "the mirror's response, or failed, timeout, no_host, overflow, body_too_large, "
             "incomplete.");
    for (const auto& m : layout.mirrors) {
      for (std::size_t k = 0; k < kMirrorResults.size(); ++k) {
        w.sample(
            "sluice_mirror_requests_total",
            {{"route", m.route}, {"cluster", m.cluster}, {"result", kMirrorResults[k]}},
            m.counters->shards.sum([&](const MirrorShard& s) { return s.results[k].value(); }));
      }
    }
    w.family("sluice_mirror_in_flight", "gauge", "Mirrored copies sent and not finished.");
    for (const auto& m : layout.mirrors) {
      w.sample(
          "sluice_mirror_in_flight", {{"route", m.route}, {"cluster", m.cluster}},
          m.counters->shards.sumSigned([](const MirrorShard& s) { return s.in_flight.value(); }));
    }
  }
  if (!layout.canaries.empty()) {
    w.family("sluice_canary_weight", "gauge",
             "The share of a progressive canary route's requests its canary side takes (0-1).");
    for (const auto& c : layout.canaries) {
      w.sample("sluice_canary_weight", {{"route", c.route}, {"cluster", c.cluster}}, c.share);
    }
    w.family("sluice_canary_step", "gauge", "The step a progressive canary is at (0 first).");
    for (const auto& c : layout.canaries) {
      w.sample("sluice_canary_step", {{"route", c.route}}, std::uint64_t{c.step});
    }
    w.family("sluice_canary_state", "gauge",
             "1 for the state a progressive canary is in, 0 for the others.");
    for (const auto& c : layout.canaries) {
      for (const auto state : kCanaryStates) {
        w.sample("sluice_canary_state", {{"route", c.route}, {"state", state}},
                 std::uint64_t{state == c.state ? 1U : 0U});
      }
    }
    w.family("sluice_canary_decisions_total", "counter",
             "Decisions of progressive canaries: start, step, hold (too little traffic to "
             "judge), promote, rollback, and the operator's pause, resume, abort, restart.");
    for (const auto& c : layout.canaries) {
      for (const auto& [action, n] : c.decisions) {
        w.sample("sluice_canary_decisions_total", {{"route", c.route}, {"action", action}}, n);
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
      // Counts print as integers, whatever their size.
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
  if (const auto& t = facts.tracing) {
    w.family("sluice_tracing_spans_total", "counter",
             "Spans of sampled requests by fate: exported (accepted by the collector), dropped "
             "(the export queue was full), failed (in a batch the collector refused or did not "
             "answer).");
    w.sample("sluice_tracing_spans_total", {{"result", "exported"}}, t->exported);
    w.sample("sluice_tracing_spans_total", {{"result", "dropped"}}, t->dropped);
    w.sample("sluice_tracing_spans_total", {{"result", "failed"}}, t->failed);
    w.family("sluice_tracing_queued_spans", "gauge", "Spans waiting in the export queue.");
    w.sample("sluice_tracing_queued_spans", {}, t->queued);
  }
  if (const auto& r = facts.redis) {
    writeClient(
        w,
        {"sluice_redis_up",
         "1 while the Redis connection is up and set up (AUTH, SELECT, scripts), else 0.",
         "sluice_redis_requests_total",
         "Calls to Redis by purpose (op) and result: ok, server_error (an error reply), "
         "timeout (no reply within redis.timeout), io_error (the connection was lost), "
         "unavailable (not sent: disconnected or its circuit breaker open).",
         "sluice_redis_request_duration_seconds",
         "From sending a call to Redis to its reply, by op (calls that got one).", kRedisDuration},
        *r);
  }
  if (const auto& e = facts.etcd) {
    writeClient(
        w,
        {"sluice_etcd_up",
         "1 while the last request to etcd (or watch opening) got an answer, else 0.",
         "sluice_etcd_requests_total",
         "Requests to etcd by op and result: ok, timeout, unavailable (no endpoint "
         "reachable), server_error (etcd answered an error), bad_response.",
         "sluice_etcd_request_duration_seconds",
         "From sending a request to etcd to its answer, by op (answered requests).", kEtcdDuration},
        *e);
  }
  return out;
}

}  // namespace sluice::gateway::stats
