#include "gateway/config/config_yaml.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <initializer_list>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "gateway/config/breaker_config.h"
#include "gateway/config/guard_config.h"
#include "gateway/config/lb_config.h"

namespace sluice::gateway::config {

std::string durationText(Millis d) {
  static constexpr std::array<std::pair<std::int64_t, std::string_view>, 3> kUnits = {{
      {3'600'000, "h"},
      {60'000, "m"},
      {1'000, "s"},
  }};
  const std::int64_t ms = d.count();
  if (ms != 0) {
    for (const auto& [scale, unit] : kUnits) {
      if (ms % scale == 0) return std::to_string(ms / scale) + std::string(unit);
    }
  }
  return std::to_string(ms) + "ms";
}

std::string sizeText(std::uint64_t bytes) {
  // The unit that gives the smallest number; binary units win a tie (listed first).
  static constexpr std::array<std::pair<std::uint64_t, std::string_view>, 7> kUnits = {{
      {1ULL << 40U, "TiB"},
      {1ULL << 30U, "GiB"},
      {1ULL << 20U, "MiB"},
      {1ULL << 10U, "KiB"},
      {1'000'000'000, "GB"},
      {1'000'000, "MB"},
      {1'000, "KB"},
  }};
  std::uint64_t best = bytes;
  std::string_view best_unit = "B";
  if (bytes != 0) {
    for (const auto& [scale, unit] : kUnits) {
      if (bytes % scale == 0 && bytes / scale < best) {
        best = bytes / scale;
        best_unit = unit;
      }
    }
  }
  return std::to_string(best) + std::string(best_unit);
}

std::string rateText(std::uint64_t requests, Millis period) {
  std::string per = durationText(period);
  // "100/s" rather than "100/1s" (parseRate reads both).
  if (per.size() > 1 && per.front() == '1' && (per[1] < '0' || per[1] > '9')) per.erase(0, 1);
  return std::to_string(requests) + "/" + per;
}

std::string decimalText(double v) {
  // The shortest fixed-point text that reads back as exactly v (the loader takes no exponent).
  std::array<char, 512> buf{};
  const auto [end, ec] =
      std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed);
  if (ec != std::errc()) return "nan";  // unreachable for a finite double
  return {buf.data(), end};
}

namespace {

// Whether YAML would resolve `s`, written plain, to something other than a string. yaml-cpp's
// own conversions decide, which also know YAML 1.1's yes/no/on/off and octal or hex numbers.
bool looksTyped(const std::string& s) {
  const YAML::Node node(s);
  bool b = false;
  double d = 0;
  long long i = 0;
  return YAML::convert<bool>::decode(node, b) || YAML::convert<double>::decode(node, d) ||
         YAML::convert<long long>::decode(node, i);
}

// yaml-cpp's emitter with the few shapes the schema needs. Every scalar goes through the
// emitter as a string, which quotes and escapes it where YAML would read it otherwise.
class Writer {
 public:
  Writer() { out_.SetIndent(2); }

  void beginMap(const char* key, bool flow = false) {
    out_ << YAML::Key << key << YAML::Value;
    if (flow) out_ << YAML::Flow;
    out_ << YAML::BeginMap;
  }
  void beginMap() { out_ << YAML::BeginMap; }
  void endMap() { out_ << YAML::EndMap; }
  void beginList(const char* key) { out_ << YAML::Key << key << YAML::Value << YAML::BeginSeq; }
  void endList() { out_ << YAML::EndSeq; }

  // A value the schema formats itself: a number, a duration, a size, a keyword, an address.
  void text(const char* key, const std::string& value) {
    out_ << YAML::Key << key << YAML::Value << value;
  }
  // A string the config's author chose (a name, a path, a body, a header value): quoted also
  // where YAML alone would not need it but a reader would take it for a boolean, a number or
  // null ("yes", "0123", "true"), which the loader would read back as text anyway.
  void string(const char* key, const std::string& value) {
    out_ << YAML::Key << key << YAML::Value;
    if (looksTyped(value)) out_ << YAML::DoubleQuoted;
    out_ << value;
  }
  // A map entry whose key the config's author chose too (endpoint metadata).
  void entry(const std::string& key, const std::string& value) {
    out_ << YAML::Key;
    if (looksTyped(key) || key.empty()) out_ << YAML::DoubleQuoted;
    out_ << key << YAML::Value;
    if (looksTyped(value)) out_ << YAML::DoubleQuoted;
    out_ << value;
  }
  void flag(const char* key, bool value) { text(key, value ? "true" : "false"); }
  template <typename Int>
  void count(const char* key, Int value) {
    text(key, std::to_string(value));
  }
  void duration(const char* key, Millis value) { text(key, durationText(value)); }
  void size(const char* key, std::uint64_t value) { text(key, sizeText(value)); }
  void decimal(const char* key, double value) { text(key, decimalText(value)); }

  // key: [a, b, c]
  void flowList(const char* key, const std::vector<std::string>& items) {
    out_ << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& item : items) out_ << item;
    out_ << YAML::EndSeq;
  }

  // { k1: v1, k2: v2 } as a list item.
  void flowItem(std::initializer_list<std::pair<const char*, std::string>> fields) {
    out_ << YAML::Flow << YAML::BeginMap;
    for (const auto& [key, value] : fields) out_ << YAML::Key << key << YAML::Value << value;
    out_ << YAML::EndMap;
  }

  [[nodiscard]] std::string str() const { return std::string(out_.c_str()) + "\n"; }

 private:
  YAML::Emitter out_;
};

void writeRetry(Writer& w, const RetryPolicy& r) {
  w.beginMap("retry");
  w.count("attempts", r.attempts);
  // The shortest list that loads back to the same conditions: 5xx and gateway-error stand for
  // their statuses when all of them are there (the loader sorts and merges the statuses).
  std::vector<std::string> on;
  if (r.on.connect_failure) on.emplace_back("connect-failure");
  if (r.on.reset) on.emplace_back("reset");
  if (r.on.timeout) on.emplace_back("timeout");
  std::vector<int> statuses = r.on.statuses;
  const auto take_all = [&](const std::vector<int>& group, const char* name) {
    const bool all = std::all_of(group.begin(), group.end(), [&](int s) {
      return std::find(statuses.begin(), statuses.end(), s) != statuses.end();
    });
    if (!all) return;
    on.emplace_back(name);
    std::erase_if(statuses,
                  [&](int s) { return std::find(group.begin(), group.end(), s) != group.end(); });
  };
  std::vector<int> five_xx;
  for (int s = 500; s <= 599; ++s) five_xx.push_back(s);
  take_all(five_xx, "5xx");
  take_all({502, 503, 504}, "gateway-error");
  for (int s : statuses) on.push_back(std::to_string(s));
  w.flowList("on", on);
  if (r.per_try_timeout) w.duration("per_try_timeout", *r.per_try_timeout);
  w.text("methods", r.any_method ? "any" : "idempotent");
  w.duration("backoff_base", r.backoff_base);
  w.duration("backoff_max", r.backoff_max);
  w.endMap();
}

void writeRateLimit(Writer& w, const RateLimit& rl) {
  w.beginMap("rate_limit");
  w.text("algorithm", std::string(algorithmName(rl.algorithm)));
  w.text("rate", rateText(rl.requests, rl.period));
  if (rl.algorithm != RateAlgorithm::SlidingWindow) w.count("burst", rl.burst);
  if (rl.algorithm == RateAlgorithm::LeakyBucket) {
    w.count("delay", rl.delay);
    w.flag("nodelay", rl.nodelay);
  }
  std::vector<std::string> key;
  key.reserve(rl.key.size());
  for (const auto& part : rl.key) key.push_back(keyPartText(part));
  w.flowList("key", key);
  w.count("max_keys", rl.max_keys);
  w.count("status", rl.status);
  w.text("scope", std::string(scopeName(rl.scope)));
  if (rl.scope == RateLimit::Scope::Global) {
    w.text("on_failure", std::string(onFailureName(rl.on_failure)));
  }
  w.endMap();
}

void writeConcurrency(Writer& w, const Concurrency& c) {
  w.beginMap("concurrency");
  if (c.adaptive) {
    const auto& a = *c.adaptive;
    w.beginMap("adaptive");
    w.text("algorithm", std::string(algorithmName(a.algorithm)));
    w.count("initial", a.initial);
    w.count("min", a.min);
    w.count("max", a.max);
    if (a.algorithm == AdaptiveConcurrency::Algorithm::Aimd) {
      w.duration("timeout", a.timeout);
      w.duration("backoff_cooldown", a.backoff_cooldown);
    }
    if (a.algorithm == AdaptiveConcurrency::Algorithm::Gradient) {
      w.count("window_samples", a.window_samples);
      w.duration("window_duration", a.window_duration);
    }
    w.endMap();
  } else {
    w.count("max", c.max);
  }
  w.count("queue", c.queue);
  w.duration("queue_timeout", c.queue_timeout);
  if (c.queue_delay) {
    w.beginMap("queue_delay");
    w.duration("target", c.queue_delay->target);
    w.duration("interval", c.queue_delay->interval);
    w.endMap();
  }
  w.count("status", c.status);
  w.duration("retry_after", c.retry_after);
  w.endMap();
}

void writeFallback(Writer& w, const Fallback& f) {
  w.beginMap("fallback");
  if (f.cluster) {
    // Forwarding takes no static answer or cache; only its content type may be set.
    w.string("cluster", *f.cluster);
    w.string("content_type", f.content_type);
    w.endMap();
    return;
  }
  w.count("status", f.status);
  w.string("body", f.body);
  w.string("content_type", f.content_type);
  w.beginMap("headers", /*flow=*/f.headers.empty());  // "headers: {}" when there are none
  for (const auto& [name, value] : f.headers) w.string(name.c_str(), value);
  w.endMap();
  if (f.cache) {
    w.beginMap("cache");
    w.count("entries", f.cache_entries);
    w.size("max_body", f.cache_max_body);
    w.size("max_bytes", f.cache_max_bytes);
    w.endMap();
  } else {
    w.flag("cache", false);
  }
  w.endMap();
}

// Statuses as the loader reads them: "5xx" when all of 500-599 are there, the others one by one.
std::vector<std::string> failureStatuses(const std::vector<int>& statuses) {
  std::vector<std::string> out;
  const bool all_5xx = std::count_if(statuses.begin(), statuses.end(),
                                     [](int s) { return s >= 500 && s <= 599; }) == 100;
  if (all_5xx) out.emplace_back("5xx");
  for (int s : statuses) {
    if (!all_5xx || s < 500 || s > 599) out.push_back(std::to_string(s));
  }
  return out;
}

void writeCircuitBreaker(Writer& w, const CircuitBreaker& b) {
  w.beginMap("circuit_breaker");
  if (b.window_time) {
    w.duration("window", *b.window_time);
  } else {
    w.count("window", b.window);
  }
  w.count("minimum_calls", b.minimum_calls);
  w.decimal("failure_rate", b.failure_rate);
  w.decimal("slow_call_rate", b.slow_call_rate);
  if (b.slow_call_duration) w.duration("slow_call_duration", *b.slow_call_duration);
  w.duration("open_duration", b.open_duration);
  w.decimal("open_duration_multiplier", b.open_duration_multiplier);
  w.duration("max_open_duration", b.max_open_duration);
  w.count("half_open_probes", b.half_open_probes);
  // Empty only in a hand-built config: the loader's default is 5xx.
  if (!b.failure_statuses.empty()) {
    w.flowList("failure_statuses", failureStatuses(b.failure_statuses));
  }
  writeFallback(w, b.fallback);
  if (b.share == CircuitBreaker::Share::Redis) {
    w.text("share", "redis");
    w.text("share_mode", std::string(shareModeName(b.share_mode)));
  }
  w.endMap();
}

void writeFault(Writer& w, const Fault& f) {
  w.beginMap("fault");
  // Each part is there when it was configured: a delay is at least 1ms, an abort status >= 200.
  if (f.delay.count() > 0) {
    w.beginMap("delay");
    w.duration("duration", f.delay);
    w.decimal("percent", f.delay_percent);
    w.endMap();
  }
  if (f.abort_status != 0) {
    w.beginMap("abort");
    w.count("status", f.abort_status);
    w.decimal("percent", f.abort_percent);
    w.endMap();
  }
  w.endMap();
}

void writeValueMatches(Writer& w, const char* key, const std::vector<ValueMatch>& list) {
  if (list.empty()) return;
  w.beginList(key);
  for (const auto& m : list) {
    w.beginMap();
    w.string("name", m.name);
    switch (m.kind) {
      case ValueMatch::Kind::Present:
        w.flag("present", !m.invert);
        break;
      case ValueMatch::Kind::Exact:
        w.string("exact", m.value);
        break;
      case ValueMatch::Kind::Prefix:
        w.string("prefix", m.value);
        break;
      case ValueMatch::Kind::Regex:
        w.string("regex", m.value);
        break;
    }
    if (m.ignore_case) w.flag("ignore_case", true);
    if (m.invert && m.kind != ValueMatch::Kind::Present) w.flag("invert", true);
    w.endMap();
  }
  w.endList();
}

void writeRouteMatch(Writer& w, const RouteMatch& m) {
  if (m == RouteMatch{}) return;
  w.beginMap("match");
  if (!m.host.empty()) w.string("host", m.host);
  if (m.path_prefix) w.string("path_prefix", *m.path_prefix);
  if (m.path) w.string("path", *m.path);
  if (m.path_regex) w.string("path_regex", *m.path_regex);
  if (!m.methods.empty()) w.flowList("methods", m.methods);
  writeValueMatches(w, "headers", m.headers);
  writeValueMatches(w, "query", m.query);
  writeValueMatches(w, "cookies", m.cookies);
  w.endMap();
}

void writeFields(Writer& w, const char* key,
                 const std::vector<std::pair<std::string, std::string>>& fields) {
  if (fields.empty()) return;
  w.beginMap(key, /*flow=*/true);
  for (const auto& [k, v] : fields) w.entry(k, v);
  w.endMap();
}

void writeHeaderEdits(Writer& w, const char* key, const HeaderEdits& e) {
  if (e.empty()) return;
  w.beginMap(key);
  if (!e.remove.empty()) w.flowList("remove", e.remove);
  writeFields(w, "set", e.set);
  writeFields(w, "add", e.add);
  w.endMap();
}

void writeRouteActions(Writer& w, const Route& r) {
  if (r.rewrite.path_prefix || r.rewrite.host) {
    w.beginMap("rewrite");
    if (r.rewrite.path_prefix) w.string("path_prefix", *r.rewrite.path_prefix);
    if (r.rewrite.host) w.string("host", *r.rewrite.host);
    w.endMap();
  }
  writeHeaderEdits(w, "request_headers", r.request_headers);
  writeHeaderEdits(w, "response_headers", r.response_headers);
  if (const auto& rd = r.redirect) {
    w.beginMap("redirect");
    w.count("status", rd->status);
    if (rd->scheme) w.string("scheme", *rd->scheme);
    if (rd->host) w.string("host", *rd->host);
    if (rd->port) w.count("port", *rd->port);
    if (rd->path) w.string("path", *rd->path);
    if (rd->path_prefix) w.string("path_prefix", *rd->path_prefix);
    w.flag("strip_query", rd->strip_query);
    w.endMap();
  }
  if (const auto& d = r.direct_response) {
    w.beginMap("direct_response");
    w.count("status", d->status);
    w.string("body", d->body);
    writeFields(w, "headers", d->headers);
    w.endMap();
  }
}

void writeRoute(Writer& w, const Route& r) {
  w.beginMap();
  w.string("name", r.name);
  writeRouteMatch(w, r.match);
  if (r.answersItself()) {
    // no cluster
  } else if (r.split.empty()) {
    w.string("cluster", r.cluster);
  } else {
    w.beginList("split");
    for (const auto& side : r.split) {
      w.flowItem({{"cluster", side.cluster}, {"weight", std::to_string(side.weight)}});
    }
    w.endList();
  }
  if (!r.split_key.empty()) {
    std::vector<std::string> parts;
    parts.reserve(r.split_key.size());
    for (const auto& part : r.split_key) parts.push_back(hashKeyText(part));
    w.flowList("split_key", parts);
  }
  if (const auto& sub = r.subset) {
    w.beginMap("subset");
    if (!sub->labels.empty()) {
      w.beginMap("labels", /*flow=*/true);
      for (const auto& [k, v] : sub->labels) w.entry(k, v);
      w.endMap();
    }
    if (!sub->header.empty()) {
      w.beginMap("from_header", /*flow=*/true);
      w.string("name", sub->header);
      w.string("label", sub->label);
      w.endMap();
    }
    w.text("fallback", sub->fallback == Subset::Fallback::Cluster ? "cluster" : "none");
    w.endMap();
  }
  if (const auto& c = r.canary) {
    w.beginMap("canary");
    std::vector<std::string> steps;
    steps.reserve(c->steps.size());
    for (const double v : c->steps) steps.push_back(decimalText(v));
    w.flowList("steps", steps);
    w.duration("interval", c->interval);
    w.count("min_requests", c->min_requests);
    w.decimal("max_error_increase", c->max_error_increase);
    w.decimal("max_latency_ratio", c->max_latency_ratio);
    w.duration("min_latency_increase", c->min_latency_increase);
    w.decimal("confidence", c->confidence);
    w.endMap();
  }
  if (const auto& m = r.mirror) {
    w.beginMap("mirror");
    w.string("cluster", m->cluster);
    w.decimal("percent", m->percent);
    w.size("max_body", m->max_body);
    w.duration("timeout", m->timeout);
    w.count("max_in_flight", m->max_in_flight);
    w.endMap();
  }
  writeRouteActions(w, r);
  w.duration("timeout", r.timeout);
  if (r.max_body) w.size("max_body", *r.max_body);
  if (!r.answersItself()) {
    w.text("client_abort", r.client_abort == Route::ClientAbort::Cancel ? "cancel" : "finish");
  }
  if (const RouteSlowClient& sc = r.slow_client; !sc.empty()) {
    w.beginMap("slow_client");
    if (sc.body_total) w.duration("body_total", *sc.body_total);
    if (sc.body_min_rate) w.size("body_min_rate", *sc.body_min_rate);
    if (sc.send_total) w.duration("send_total", *sc.send_total);
    if (sc.send_min_rate) w.size("send_min_rate", *sc.send_min_rate);
    if (sc.window) w.duration("window", *sc.window);
    if (sc.grace) w.duration("grace", *sc.grace);
    w.endMap();
  }
  if (!r.answersItself()) writeRetry(w, r.retry);
  if (r.rate_limit) writeRateLimit(w, *r.rate_limit);
  if (r.concurrency) writeConcurrency(w, *r.concurrency);
  if (r.circuit_breaker) writeCircuitBreaker(w, *r.circuit_breaker);
  if (r.fault) writeFault(w, *r.fault);
  if (!r.hash_key.empty()) {
    std::vector<std::string> parts;
    parts.reserve(r.hash_key.size());
    for (const auto& part : r.hash_key) parts.push_back(hashKeyText(part));
    w.flowList("hash_key", parts);
  }
  w.endMap();
}

void writeLoadBalancing(Writer& w, const LoadBalancing& lb) {
  w.beginMap("lb");
  w.text("policy", std::string(policyName(lb.policy)));
  // A parameter of another policy is an error: only the policy's own are written.
  switch (lb.policy) {
    case LbPolicy::RingHash:
      w.count("ring_vnodes", lb.ring_vnodes);
      w.count("ring_max_size", lb.ring_max_size);
      if (lb.balance_factor) w.decimal("balance_factor", *lb.balance_factor);
      break;
    case LbPolicy::Maglev:
      w.count("maglev_table_size", lb.maglev_table_size);
      break;
    case LbPolicy::PeakEwma:
      w.duration("ewma_decay", lb.ewma_decay);
      break;
    case LbPolicy::RoundRobin:
    case LbPolicy::Random:
    case LbPolicy::LeastRequest:
    case LbPolicy::LeastConnections:
      break;
  }
  w.decimal("panic_threshold", lb.panic_threshold);
  if (const auto& s = lb.slow_start) {
    w.beginMap("slow_start");
    w.duration("window", s->window);
    w.decimal("aggression", s->aggression);
    w.decimal("min_weight_percent", s->min_weight_percent);
    w.endMap();
  }
  if (const auto& d = lb.dynamic_weights) {
    const bool utilization = d->signal == DynamicWeights::Signal::Utilization;
    w.beginMap("dynamic_weights");
    w.text("signal", utilization ? "utilization" : "latency");
    if (utilization) w.string("header", d->header);
    w.duration("decay_time", d->decay_time);
    w.decimal("min_samples", d->min_samples);
    w.decimal("error_penalty", d->error_penalty);
    w.decimal("min_weight_percent", d->min_weight_percent);
    if (utilization) {
      w.duration("blackout", d->blackout);
      w.duration("report_ttl", d->report_ttl);
    }
    w.duration("update_interval", d->update_interval);
    w.endMap();
  }
  w.endMap();
}

void writeHealthCheck(Writer& w, const HealthCheck& h) {
  const bool http = h.type == HealthCheck::Type::Http;
  w.beginMap("health_check");
  w.text("type", http ? "http" : "tcp");
  if (http) {
    w.string("path", h.path);
    if (!h.host.empty()) w.string("host", h.host);
    std::vector<std::string> statuses;
    statuses.reserve(h.expected_statuses.size());
    for (const auto& s : h.expected_statuses) {
      statuses.push_back(s.first == s.last
                             ? std::to_string(s.first)
                             : std::to_string(s.first) + "-" + std::to_string(s.last));
    }
    w.flowList("expected_statuses", statuses);
  }
  w.duration("interval", h.interval);
  if (h.jitter) w.duration("jitter", *h.jitter);  // unset: interval / 10, which follows interval
  w.duration("timeout", h.timeout);
  w.count("unhealthy_threshold", h.unhealthy_threshold);
  w.count("healthy_threshold", h.healthy_threshold);
  w.endMap();
}

void writeCluster(Writer& w, const Cluster& c) {
  w.beginMap();
  w.string("name", c.name);
  w.beginList("endpoints");
  for (const auto& e : c.endpoints) {
    if (e.metadata.empty()) {
      w.flowItem({{"address", e.address.text()}, {"weight", std::to_string(e.weight)}});
      continue;
    }
    w.beginMap();
    w.text("address", e.address.text());
    w.count("weight", e.weight);
    w.beginMap("metadata", /*flow=*/true);
    for (const auto& [k, v] : e.metadata) w.entry(k, v);
    w.endMap();
    w.endMap();
  }
  w.endList();
  writeLoadBalancing(w, c.lb);
  w.beginMap("pool");
  w.count("max_connections", c.pool.max_connections);
  w.count("max_idle", c.pool.max_idle);
  w.duration("idle_timeout", c.pool.idle_timeout);
  w.duration("connect_timeout", c.pool.connect_timeout);
  w.duration("max_wait", c.pool.max_wait);
  w.endMap();
  w.duration("io_timeout", c.io_timeout);
  w.flag("host_latency_histogram", c.host_latency_histogram);
  if (c.rate_limit) writeRateLimit(w, *c.rate_limit);
  w.beginMap("retry_budget");
  w.decimal("percent", c.retry_budget.percent);
  w.decimal("min_per_second", c.retry_budget.min_per_second);
  w.duration("window", c.retry_budget.window);
  w.endMap();
  if (c.circuit_breaker) writeCircuitBreaker(w, *c.circuit_breaker);
  if (const auto& o = c.outlier_detection) {
    w.beginMap("outlier_detection");
    w.count("consecutive_5xx", o->consecutive_5xx);
    w.count("consecutive_gateway_failure", o->consecutive_gateway_failure);
    w.text("failure_percentage",
           o->failure_percentage ? decimalText(*o->failure_percentage) : std::string("off"));
    w.count("failure_percentage_minimum_hosts", o->failure_percentage_minimum_hosts);
    w.count("failure_percentage_request_volume", o->failure_percentage_request_volume);
    w.duration("interval", o->interval);
    w.duration("base_ejection_time", o->base_ejection_time);
    w.duration("max_ejection_time", o->max_ejection_time);
    w.decimal("max_ejection_percent", o->max_ejection_percent);
    w.endMap();
  }
  if (const auto& b = c.bulkhead) {
    w.beginMap("bulkhead");
    w.count("max_connections", b->max_connections);
    w.count("max_pending", b->max_pending);
    w.count("max_requests", b->max_requests);
    w.count("max_retries", b->max_retries);
    w.endMap();
  }
  if (c.health_check) writeHealthCheck(w, *c.health_check);
  if (const auto& d = c.discovery) {
    w.beginMap("discovery");
    w.flag("registry", d->registry);
    w.duration("default_ttl", d->default_ttl);
    w.duration("max_ttl", d->max_ttl);
    if (!d->file.empty()) w.string("file", d->file);
    w.duration("file_interval", d->file_interval);
    if (!d->etcd.empty()) w.string("etcd", d->etcd);
    w.count("max_hosts", d->max_hosts);
    w.endMap();
  }
  w.endMap();
}

}  // namespace

std::string toYaml(const Config& config) {
  Writer w;
  w.beginMap();
  w.text("workers", config.workers == 0 ? std::string("auto") : std::to_string(config.workers));
  w.duration("drain_timeout", config.drain_timeout);
  w.duration("drain_accept_grace", config.drain_accept_grace);
  w.beginList("listeners");
  for (const auto& l : config.listeners) {
    w.beginMap();
    w.string("name", l.name);
    w.text("address", l.address.text());
    w.flag("trust_forwarded", l.trust_forwarded);
    w.beginMap("limits");
    w.size("request_line", l.limits.request_line);
    w.size("header_bytes", l.limits.header_bytes);
    w.count("headers", l.limits.headers);
    w.size("body", l.limits.body);
    w.endMap();
    w.beginMap("timeouts");
    w.duration("header", l.timeouts.header);
    w.duration("body", l.timeouts.body);
    w.duration("idle", l.timeouts.idle);
    w.duration("send", l.timeouts.send);
    w.endMap();
    const SlowClient& sc = l.slow_client;
    w.beginMap("slow_client");
    w.duration("body_total", sc.body_total);
    w.size("body_min_rate", sc.body_min_rate);
    w.duration("send_total", sc.send_total);
    w.size("send_min_rate", sc.send_min_rate);
    w.duration("window", sc.window);
    w.duration("grace", sc.grace);
    w.endMap();
    w.endMap();
  }
  w.endList();
  if (config.admin) {
    w.beginMap("admin");
    w.text("address", config.admin->address.text());
    if (!config.admin->token_file.empty()) w.string("token_file", config.admin->token_file);
    w.endMap();
  }
  w.beginMap("log");
  w.text("level", std::string(kLogLevels[static_cast<std::size_t>(config.log.level)]));
  w.text("format", std::string(kLogFormats[static_cast<std::size_t>(config.log.format)]));
  w.endMap();
  if (const auto& t = config.tracing) {
    w.beginMap("tracing");
    w.string("otlp_endpoint", t->otlp_endpoint);
    w.decimal("sample_ratio", t->sample_ratio);
    w.string("service_name", t->service_name);
    w.count("queue", t->queue);
    w.count("batch", t->batch);
    w.duration("flush_interval", t->flush_interval);
    w.duration("timeout", t->timeout);
    w.endMap();
  }
  if (const auto& rd = config.redis) {
    w.beginMap("redis");
    w.text("address", rd->address.text());
    w.duration("timeout", rd->timeout);
    if (!rd->username.empty()) w.string("username", rd->username);
    if (!rd->password_file.empty()) w.string("password_file", rd->password_file);
    w.count("db", rd->db);
    w.string("key_prefix", rd->key_prefix);
    w.count("instances", rd->instances);
    w.endMap();
  }
  if (const auto& e = config.etcd) {
    w.beginMap("etcd");
    std::vector<std::string> endpoints;
    for (const auto& a : e->endpoints) endpoints.push_back(a.text());
    w.flowList("endpoints", endpoints);
    w.duration("timeout", e->timeout);
    if (const auto& self = e->self) {
      w.beginMap("register");
      w.string("prefix", self->prefix);
      if (!self->name.empty()) w.string("name", self->name);
      if (self->address.port != 0) w.text("address", self->address.text());
      w.duration("ttl", self->ttl);
      w.endMap();
    }
    w.endMap();
  }
  w.beginMap("access_log");
  w.flag("enabled", config.access_log.enabled);
  w.string("path", config.access_log.path);
  if (!config.access_log.fields.empty()) w.flowList("fields", config.access_log.fields);
  w.endMap();
  w.beginList("routes");
  for (const auto& r : config.routes) writeRoute(w, r);
  w.endList();
  w.beginList("clusters");
  for (const auto& c : config.clusters) writeCluster(w, c);
  w.endList();
  w.endMap();
  return w.str();
}

}  // namespace sluice::gateway::config
