#include "gateway/config/config_json.h"

#include <type_traits>

#include "gateway/config/breaker_config.h"
#include "gateway/config/guard_config.h"
#include "gateway/config/lb_config.h"
#include "gateway/config/retry_config.h"

namespace sluice::gateway::config {
namespace {

using nlohmann::json;

json limits(const ListenerLimits& l) {
  return {{"request_line_bytes", l.request_line},
          {"header_bytes", l.header_bytes},
          {"headers", l.headers},
          {"body_bytes", l.body}};
}

json timeouts(const ListenerTimeouts& t) {
  return {{"header_ms", t.header.count()},
          {"body_ms", t.body.count()},
          {"idle_ms", t.idle.count()},
          {"send_ms", t.send.count()}};
}

// A listener's slow_client (every value) or a route's (null: the listener's applies).
template <typename Duration, typename Rate>
json slowClient(const Duration& body_total, const Rate& body_min_rate, const Duration& send_total,
                const Rate& send_min_rate, const Duration& window, const Duration& grace) {
  const auto ms = [](const auto& d) -> json {
    if constexpr (std::is_same_v<std::decay_t<decltype(d)>, Millis>) {
      return d.count();
    } else {
      return d ? json(d->count()) : json(nullptr);
    }
  };
  const auto bytes = [](const auto& v) -> json {
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::uint64_t>) {
      return v;
    } else {
      return v ? json(*v) : json(nullptr);
    }
  };
  return {{"body_total_ms", ms(body_total)}, {"body_min_rate_bytes_per_s", bytes(body_min_rate)},
          {"send_total_ms", ms(send_total)}, {"send_min_rate_bytes_per_s", bytes(send_min_rate)},
          {"window_ms", ms(window)},         {"grace_ms", ms(grace)}};
}

json slowClient(const SlowClient& s) {
  return slowClient(s.body_total, s.body_min_rate, s.send_total, s.send_min_rate, s.window,
                    s.grace);
}

json slowClient(const RouteSlowClient& s) {
  return slowClient(s.body_total, s.body_min_rate, s.send_total, s.send_min_rate, s.window,
                    s.grace);
}

json circuitBreaker(const std::optional<CircuitBreaker>& b) {
  if (!b) return nullptr;
  const auto& fb = b->fallback;
  json fallback = fb.cluster ? json{{"cluster", *fb.cluster}}
                             : json{{"status", fb.status},
                                    {"body", fb.body},
                                    {"content_type", fb.content_type},
                                    {"headers", fb.headers},
                                    {"cache", fb.cache ? json{{"entries", fb.cache_entries},
                                                              {"max_body_bytes", fb.cache_max_body},
                                                              {"max_bytes", fb.cache_max_bytes}}
                                                       : json(nullptr)}};
  return {{"window", b->window_time ? json{{"duration_ms", b->window_time->count()}}
                                    : json{{"calls", b->window}}},
          {"minimum_calls", b->minimum_calls},
          {"failure_rate", b->failure_rate},
          {"slow_call_rate", b->slow_call_rate},
          {"slow_call_duration_ms",
           b->slow_call_duration ? json(b->slow_call_duration->count()) : json(nullptr)},
          {"open_duration_ms", b->open_duration.count()},
          {"open_duration_multiplier", b->open_duration_multiplier},
          {"max_open_duration_ms", b->max_open_duration.count()},
          {"half_open_probes", b->half_open_probes},
          {"failure_statuses", b->failure_statuses},
          {"fallback", fallback},
          {"share", b->share == CircuitBreaker::Share::Redis ? "redis" : "none"},
          {"share_mode", shareModeName(b->share_mode)}};
}

json valueMatches(const std::vector<ValueMatch>& list) {
  json out = json::array();
  for (const auto& m : list) {
    json one = {{"name", m.name}};
    switch (m.kind) {
      case ValueMatch::Kind::Present:
        one["present"] = !m.invert;
        break;
      case ValueMatch::Kind::Exact:
        one["exact"] = m.value;
        break;
      case ValueMatch::Kind::Prefix:
        one["prefix"] = m.value;
        break;
      case ValueMatch::Kind::Regex:
        one["regex"] = m.value;
        break;
    }
    if (m.kind == ValueMatch::Kind::Exact || m.kind == ValueMatch::Kind::Prefix) {
      one["ignore_case"] = m.ignore_case;
    }
    if (m.kind != ValueMatch::Kind::Present) one["invert"] = m.invert;
    out.push_back(std::move(one));
  }
  return out;
}

json split(const std::vector<WeightedCluster>& sides) {
  json out = json::array();
  for (const auto& s : sides) out.push_back({{"cluster", s.cluster}, {"weight", s.weight}});
  return out;
}

json hashKey(const std::vector<HashKeyPart>& parts) {
  json out = json::array();
  for (const auto& p : parts) out.push_back(hashKeyText(p));
  return out;
}

json loadBalancing(const LoadBalancing& lb) {
  json out = {{"policy", policyName(lb.policy)}};
  if (lb.policy == LbPolicy::RingHash) {
    out["ring_vnodes"] = lb.ring_vnodes;
    out["ring_max_size"] = lb.ring_max_size;
    out["balance_factor"] = lb.balance_factor ? json(*lb.balance_factor) : json(nullptr);
  }
  if (lb.policy == LbPolicy::Maglev) out["maglev_table_size"] = lb.maglev_table_size;
  if (lb.policy == LbPolicy::PeakEwma) out["ewma_decay_ms"] = lb.ewma_decay.count();
  out["panic_threshold"] = lb.panic_threshold;
  out["slow_start"] = lb.slow_start
                          ? json{{"window_ms", lb.slow_start->window.count()},
                                 {"aggression", lb.slow_start->aggression},
                                 {"min_weight_percent", lb.slow_start->min_weight_percent}}
                          : json(nullptr);
  if (const auto& d = lb.dynamic_weights) {
    const bool utilization = d->signal == DynamicWeights::Signal::Utilization;
    out["dynamic_weights"] = {{"signal", utilization ? "utilization" : "latency"},
                              {"decay_time_ms", d->decay_time.count()},
                              {"min_samples", d->min_samples},
                              {"error_penalty", d->error_penalty},
                              {"min_weight_percent", d->min_weight_percent},
                              {"update_interval_ms", d->update_interval.count()}};
    if (utilization) {
      out["dynamic_weights"]["header"] = d->header;
      out["dynamic_weights"]["blackout_ms"] = d->blackout.count();
      out["dynamic_weights"]["report_ttl_ms"] = d->report_ttl.count();
    }
  } else {
    out["dynamic_weights"] = nullptr;
  }
  return out;
}

json fault(const std::optional<Fault>& f) {
  if (!f) return nullptr;
  return {{"delay_ms", f->delay.count()},
          {"delay_percent", f->delay_percent},
          {"abort_status", f->abort_status},
          {"abort_percent", f->abort_percent}};
}

json healthCheck(const std::optional<HealthCheck>& h) {
  if (!h) return nullptr;
  json out = {{"type", h->type == HealthCheck::Type::Http ? "http" : "tcp"},
              {"interval_ms", h->interval.count()},
              {"jitter_ms", h->effectiveJitter().count()},
              {"timeout_ms", h->timeout.count()},
              {"unhealthy_threshold", h->unhealthy_threshold},
              {"healthy_threshold", h->healthy_threshold}};
  if (h->type == HealthCheck::Type::Http) {
    json statuses = json::array();
    for (const auto& s : h->expected_statuses) {
      statuses.push_back(s.first == s.last
                             ? std::to_string(s.first)
                             : std::to_string(s.first) + "-" + std::to_string(s.last));
    }
    out["path"] = h->path;
    out["host"] = h->host.empty() ? json(nullptr) : json(h->host);
    out["expected_statuses"] = std::move(statuses);
  }
  return out;
}

json outlierDetection(const std::optional<OutlierDetection>& o) {
  if (!o) return nullptr;
  return {
      {"consecutive_5xx", o->consecutive_5xx},
      {"consecutive_gateway_failure", o->consecutive_gateway_failure},
      {"failure_percentage", o->failure_percentage ? json(*o->failure_percentage) : json("off")},
      {"failure_percentage_minimum_hosts", o->failure_percentage_minimum_hosts},
      {"failure_percentage_request_volume", o->failure_percentage_request_volume},
      {"interval_ms", o->interval.count()},
      {"base_ejection_time_ms", o->base_ejection_time.count()},
      {"max_ejection_time_ms", o->max_ejection_time.count()},
      {"max_ejection_percent", o->max_ejection_percent}};
}

json rateLimit(const std::optional<RateLimit>& rl) {
  if (!rl) return nullptr;
  json key = json::array();
  for (const auto& part : rl->key) key.push_back(keyPartText(part));
  json out = {{"algorithm", algorithmName(rl->algorithm)},
              {"requests", rl->requests},
              {"period_ms", rl->period.count()},
              {"key", key},
              {"max_keys", rl->max_keys},
              {"status", rl->status},
              {"scope", scopeName(rl->scope)}};
  if (rl->scope == RateLimit::Scope::Global) out["on_failure"] = onFailureName(rl->on_failure);
  if (rl->algorithm != RateAlgorithm::SlidingWindow) out["burst"] = rl->burst;
  if (rl->algorithm == RateAlgorithm::LeakyBucket) {
    out["delay"] = rl->delay;
    out["nodelay"] = rl->nodelay;
  }
  return out;
}

json concurrency(const std::optional<Concurrency>& c) {
  if (!c) return nullptr;
  json out = {
      {"queue", c->queue},
      {"queue_timeout_ms", c->queue_timeout.count()},
      {"queue_delay", c->queue_delay ? json{{"target_ms", c->queue_delay->target.count()},
                                            {"interval_ms", c->queue_delay->interval.count()}}
                                     : json(nullptr)},
      {"status", c->status},
      {"retry_after_ms", c->retry_after.count()}};
  if (c->adaptive) {
    const auto& a = *c->adaptive;
    out["adaptive"] = {{"algorithm", algorithmName(a.algorithm)},
                       {"initial", a.initial},
                       {"min", a.min},
                       {"max", a.max}};
    if (a.algorithm == AdaptiveConcurrency::Algorithm::Aimd) {
      out["adaptive"]["timeout_ms"] = a.timeout.count();
      out["adaptive"]["backoff_cooldown_ms"] = a.backoff_cooldown.count();
    }
    if (a.algorithm == AdaptiveConcurrency::Algorithm::Gradient) {
      out["adaptive"]["window_samples"] = a.window_samples;
      out["adaptive"]["window_duration_ms"] = a.window_duration.count();
    }
  } else {
    out["max"] = c->max;
  }
  return out;
}

json subset(const std::optional<Subset>& s) {
  if (!s) return nullptr;
  return {{"labels", s->labels},
          {"from_header",
           s->header.empty() ? json(nullptr) : json({{"name", s->header}, {"label", s->label}})},
          {"fallback", s->fallback == Subset::Fallback::Cluster ? "cluster" : "none"}};
}

json mirror(const std::optional<Mirror>& m) {
  if (!m) return nullptr;
  return {{"cluster", m->cluster},
          {"percent", m->percent},
          {"max_body_bytes", m->max_body},
          {"timeout_ms", m->timeout.count()},
          {"max_in_flight", m->max_in_flight}};
}

json canary(const std::optional<Canary>& c) {
  if (!c) return nullptr;
  return {{"steps", c->steps},
          {"interval_ms", c->interval.count()},
          {"min_requests", c->min_requests},
          {"max_error_increase", c->max_error_increase},
          {"max_latency_ratio", c->max_latency_ratio},
          {"min_latency_increase_ms", c->min_latency_increase.count()},
          {"confidence", c->confidence}};
}

json fields(const std::vector<std::pair<std::string, std::string>>& f) {
  json out = json::object();
  for (const auto& [k, v] : f) out[k] = v;
  return out;
}

json headerEdits(const HeaderEdits& e) {
  return {{"remove", e.remove}, {"set", fields(e.set)}, {"add", fields(e.add)}};
}

template <typename T>
json orNull(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json routeActions(const Route& r) {
  json out = {{"rewrite",
               {{"path_prefix", orNull(r.rewrite.path_prefix)}, {"host", orNull(r.rewrite.host)}}},
              {"request_headers", headerEdits(r.request_headers)},
              {"response_headers", headerEdits(r.response_headers)},
              {"redirect", nullptr},
              {"direct_response", nullptr}};
  if (const auto& rd = r.redirect) {
    out["redirect"] = {{"status", rd->status},          {"scheme", orNull(rd->scheme)},
                       {"host", orNull(rd->host)},      {"port", orNull(rd->port)},
                       {"path", orNull(rd->path)},      {"path_prefix", orNull(rd->path_prefix)},
                       {"strip_query", rd->strip_query}};
  }
  if (const auto& d = r.direct_response) {
    out["direct_response"] = {
        {"status", d->status}, {"body", d->body}, {"headers", fields(d->headers)}};
  }
  return out;
}

}  // namespace

json toJson(const Config& c) {
  json out;
  out["workers"] = c.workers == 0 ? json("auto") : json(c.workers);
  out["drain_timeout_ms"] = c.drain_timeout.count();
  out["drain_accept_grace_ms"] = c.drain_accept_grace.count();
  out["listeners"] = json::array();
  for (const auto& l : c.listeners) {
    out["listeners"].push_back({{"name", l.name},
                                {"address", l.address.text()},
                                {"trust_forwarded", l.trust_forwarded},
                                {"limits", limits(l.limits)},
                                {"timeouts", timeouts(l.timeouts)},
                                {"slow_client", slowClient(l.slow_client)}});
  }
  out["admin"] = c.admin
                     ? json{{"address", c.admin->address.text()},
                            {"token_file", c.admin->token_file.empty() ? json(nullptr)
                                                                       : json(c.admin->token_file)}}
                     : json(nullptr);
  out["log"] = {{"level", kLogLevels[static_cast<std::size_t>(c.log.level)]},
                {"format", kLogFormats[static_cast<std::size_t>(c.log.format)]}};
  out["tracing"] = c.tracing ? json{{"otlp_endpoint", c.tracing->otlp_endpoint},
                                    {"sample_ratio", c.tracing->sample_ratio},
                                    {"service_name", c.tracing->service_name},
                                    {"queue", c.tracing->queue},
                                    {"batch", c.tracing->batch},
                                    {"flush_interval_ms", c.tracing->flush_interval.count()},
                                    {"timeout_ms", c.tracing->timeout.count()}}
                             : json(nullptr);
  out["redis"] = c.redis ? json{{"address", c.redis->address.text()},
                                {"timeout_ms", c.redis->timeout.count()},
                                {"username", c.redis->username},
                                {"password_file", c.redis->password_file},
                                {"db", c.redis->db},
                                {"key_prefix", c.redis->key_prefix},
                                {"instances", c.redis->instances}}
                         : json(nullptr);
  if (c.etcd) {
    json endpoints = json::array();
    for (const auto& a : c.etcd->endpoints) endpoints.push_back(a.text());
    json self = nullptr;
    if (const auto& r = c.etcd->self) {
      self = {{"prefix", r->prefix},
              {"name", r->name},
              {"address", r->address.port != 0 ? json(r->address.text()) : json(nullptr)},
              {"ttl_ms", r->ttl.count()}};
    }
    out["etcd"] = {
        {"endpoints", endpoints}, {"timeout_ms", c.etcd->timeout.count()}, {"register", self}};
  } else {
    out["etcd"] = nullptr;
  }
  out["access_log"] = {{"enabled", c.access_log.enabled},
                       {"path", c.access_log.path},
                       {"fields", c.access_log.fields}};
  out["routes"] = json::array();
  for (const auto& r : c.routes) {
    json match = json::object();
    if (!r.match.host.empty()) match["host"] = r.match.host;
    if (r.match.path_prefix) match["path_prefix"] = *r.match.path_prefix;
    if (r.match.path) match["path"] = *r.match.path;
    if (r.match.path_regex) match["path_regex"] = *r.match.path_regex;
    if (!r.match.methods.empty()) match["methods"] = r.match.methods;
    if (!r.match.headers.empty()) match["headers"] = valueMatches(r.match.headers);
    if (!r.match.query.empty()) match["query"] = valueMatches(r.match.query);
    if (!r.match.cookies.empty()) match["cookies"] = valueMatches(r.match.cookies);
    json retry = {
        {"attempts", r.retry.attempts},
        {"on", retryOnText(r.retry.on)},
        {"per_try_timeout_ms",
         r.retry.per_try_timeout ? json(r.retry.per_try_timeout->count()) : json(nullptr)},
        {"methods", r.retry.any_method ? "any" : "idempotent"},
        {"backoff_base_ms", r.retry.backoff_base.count()},
        {"backoff_max_ms", r.retry.backoff_max.count()}};
    out["routes"].push_back(
        {{"name", r.name},
         {"match", match},
         {"cluster", r.split.empty() ? json(r.cluster) : json(nullptr)},
         {"split", split(r.split)},
         {"split_key", hashKey(r.split_key)},
         {"subset", subset(r.subset)},
         {"mirror", mirror(r.mirror)},
         {"canary", canary(r.canary)},
         {"actions", routeActions(r)},
         {"timeout_ms", r.timeout.count()},
         {"max_body_bytes", r.max_body ? json(*r.max_body) : json(nullptr)},
         {"slow_client", slowClient(r.slow_client)},
         {"client_abort", r.client_abort == Route::ClientAbort::Cancel ? "cancel" : "finish"},
         {"retry", retry},
         {"rate_limit", rateLimit(r.rate_limit)},
         {"concurrency", concurrency(r.concurrency)},
         {"circuit_breaker", circuitBreaker(r.circuit_breaker)},
         {"fault", fault(r.fault)},
         {"hash_key", hashKey(r.hash_key)}});
  }
  out["clusters"] = json::array();
  for (const auto& cl : c.clusters) {
    json eps = json::array();
    for (const auto& e : cl.endpoints) {
      eps.push_back(
          {{"address", e.address.text()}, {"weight", e.weight}, {"metadata", e.metadata}});
    }
    const auto& p = cl.pool;
    out["clusters"].push_back(
        {{"name", cl.name},
         {"lb", loadBalancing(cl.lb)},
         {"endpoints", eps},
         {"io_timeout_ms", cl.io_timeout.count()},
         {"host_latency_histogram", cl.host_latency_histogram},
         {"pool",
          {{"max_connections", p.max_connections},
           {"max_idle", p.max_idle},
           {"idle_timeout_ms", p.idle_timeout.count()},
           {"connect_timeout_ms", p.connect_timeout.count()},
           {"max_wait_ms", p.max_wait.count()}}},
         {"rate_limit", rateLimit(cl.rate_limit)},
         {"retry_budget",
          {{"percent", cl.retry_budget.percent},
           {"min_per_second", cl.retry_budget.min_per_second},
           {"window_ms", cl.retry_budget.window.count()}}},
         {"circuit_breaker", circuitBreaker(cl.circuit_breaker)},
         {"outlier_detection", outlierDetection(cl.outlier_detection)},
         {"discovery", cl.discovery
                           ? json{{"max_hosts", cl.discovery->max_hosts},
                                  {"registry", cl.discovery->registry},
                                  {"default_ttl_ms", cl.discovery->default_ttl.count()},
                                  {"max_ttl_ms", cl.discovery->max_ttl.count()},
                                  {"file", cl.discovery->file.empty() ? json(nullptr)
                                                                      : json(cl.discovery->file)},
                                  {"file_interval_ms", cl.discovery->file_interval.count()},
                                  {"etcd", cl.discovery->etcd.empty() ? json(nullptr)
                                                                      : json(cl.discovery->etcd)}}
                           : json(nullptr)},
         {"health_check", healthCheck(cl.health_check)},
         {"bulkhead", cl.bulkhead ? json{{"max_connections", cl.bulkhead->max_connections},
                                         {"max_pending", cl.bulkhead->max_pending},
                                         {"max_requests", cl.bulkhead->max_requests},
                                         {"max_retries", cl.bulkhead->max_retries}}
                                  : json(nullptr)}});
  }
  return out;
}

}  // namespace sluice::gateway::config
