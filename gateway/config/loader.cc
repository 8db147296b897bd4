#include "gateway/config/loader.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <re2/re2.h>
#include <set>
#include <sstream>

#include <boost/asio/ip/address.hpp>

#include "gateway/config/breaker_config.h"
#include "gateway/config/canary_config.h"
#include "gateway/config/discovery_config.h"
#include "gateway/config/etcd_config.h"
#include "gateway/config/guard_config.h"
#include "gateway/config/health_check_config.h"
#include "gateway/config/lb_config.h"
#include "gateway/config/mirror_config.h"
#include "gateway/config/outlier_config.h"
#include "gateway/config/redis_config.h"
#include "gateway/config/retry_config.h"
#include "gateway/config/route_action_config.h"
#include "gateway/config/route_match_config.h"
#include "gateway/config/subset_config.h"
#include "gateway/config/tracing_config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

std::string Diagnostic::format() const {
  std::ostringstream s;
  s << file;
  if (line > 0) s << ':' << line << ':' << column;
  s << ": " << message;
  return s.str();
}

std::string Address::text() const {
  if (ip.find(':') != std::string::npos) return "[" + ip + "]:" + std::to_string(port);
  return ip + ":" + std::to_string(port);
}

const Cluster* Config::findCluster(std::string_view name) const {
  for (const auto& c : clusters) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

namespace {

// Splits "123abc" into ("123", "abc").
std::pair<std::string_view, std::string_view> splitNumber(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  return {text.substr(0, i), text.substr(i)};
}

}  // namespace

std::optional<Millis> parseDuration(std::string_view text, std::string* error) {
  const auto [digits, unit] = splitNumber(text);
  const auto n = parseUnsigned<std::uint64_t>(digits);
  if (!n) {
    *error = "expected a duration like 250ms, 10s, 5m or 1h, got '" + std::string(text) + "'";
    return std::nullopt;
  }
  if (unit.empty()) {
    *error = "duration '" + std::string(text) + "' is missing a unit (ms, s, m, h)";
    return std::nullopt;
  }
  std::uint64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else {
    *error = "unknown duration unit '" + std::string(unit) + "' (use ms, s, m or h)";
    return std::nullopt;
  }
  constexpr std::uint64_t kMax = 365ULL * 24 * 3'600'000;  // a year is long enough for a timeout
  if (*n > kMax / scale) {
    *error = "duration '" + std::string(text) + "' is too long (at most 365 days)";
    return std::nullopt;
  }
  return Millis(static_cast<Millis::rep>(*n * scale));
}

std::optional<std::uint64_t> parseSize(std::string_view text, std::string* error) {
  const auto [digits, unit] = splitNumber(text);
  const auto n = parseUnsigned<std::uint64_t>(digits);
  if (!n) {
    *error = "expected a size like 512B, 8KiB, 10MiB or 1GiB, got '" + std::string(text) + "'";
    return std::nullopt;
  }
  if (unit.empty()) {
    *error = "size '" + std::string(text) + "' is missing a unit (B, KiB, MiB, GiB)";
    return std::nullopt;
  }
  std::uint64_t scale = 0;
  if (unit == "B") {
    scale = 1;
  } else if (unit == "KiB" || unit == "KB") {
    scale = unit == "KiB" ? 1024 : 1000;
  } else if (unit == "MiB" || unit == "MB") {
    scale = unit == "MiB" ? 1024ULL * 1024 : 1000ULL * 1000;
  } else if (unit == "GiB" || unit == "GB") {
    scale = unit == "GiB" ? 1024ULL * 1024 * 1024 : 1000ULL * 1000 * 1000;
  } else if (unit == "TiB") {
    scale = 1024ULL * 1024 * 1024 * 1024;
  } else {
    *error =
        "unknown size unit '" + std::string(unit) + "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB)";
    return std::nullopt;
  }
  if (*n > std::numeric_limits<std::uint64_t>::max() / scale) {
    *error = "size '" + std::string(text) + "' is too large";
    return std::nullopt;
  }
  return *n * scale;
}

std::optional<Address> parseAddress(std::string_view text, std::string* error) {
  const auto bad = [&](const std::string& why) -> std::optional<Address> {
    *error = "invalid address '" + std::string(text) + "': " + why;
    return std::nullopt;
  };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("expected [ipv6]:port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("expected ip:port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad("IPv6 addresses need brackets: [::1]:80");
    }
  }
  const auto p = parseUnsigned<std::uint32_t>(port);
  if (!p || *p == 0 || *p > 65535) return bad("port must be a number from 1 to 65535");
  Address a;
  a.port = static_cast<std::uint16_t>(*p);
  if (host == "localhost") {
    a.ip = "127.0.0.1";
    return a;
  }
  boost::system::error_code ec;
  const auto ip = boost::asio::ip::make_address(std::string(host), ec);
  if (ec) {
    return bad("'" + std::string(host) + "' is not an IP address (host names are not resolved)");
  }
  a.ip = ip.to_string();
  return a;
}

namespace {

// slow_client, on a listener (every key replaces a default) or a route (every key overrides its
// listener's): the same keys and bounds for both.
void readSlowClient(Reader& r, const yaml::Node& n, RouteSlowClient& out) {
  if (!r.map(n, "slow_client",
             {"body_total", "body_min_rate", "send_total", "send_min_rate", "window", "grace"})) {
    return;
  }
  constexpr std::uint64_t kMaxRate = std::uint64_t{1} << 30;
  const auto total = [&](const char* key, std::optional<Millis>& v) {
    if (const yaml::Node t = n[key]) {
      v = r.duration(t, std::string("slow_client.") + key, Millis{0});
    }
  };
  const auto rate = [&](const char* key, std::optional<std::uint64_t>& v) {
    const yaml::Node t = n[key];
    if (!t) return;
    const std::string what = std::string("slow_client.") + key;
    v = r.size(t, what, 0);
    if (v && *v > kMaxRate) {
      r.error(t, what + " must be at most 1GiB (bytes per second)");
      v.reset();
    }
  };
  total("body_total", out.body_total);
  rate("body_min_rate", out.body_min_rate);
  total("send_total", out.send_total);
  rate("send_min_rate", out.send_min_rate);
  if (const yaml::Node w = n["window"]) {
    out.window = r.duration(w, "slow_client.window", Millis{100});
    if (out.window && *out.window > Millis{3'600'000}) {
      r.error(w, "slow_client.window must be at most 1h");
      out.window.reset();
    }
  }
  if (const yaml::Node g = n["grace"]) {
    out.grace = r.duration(g, "slow_client.grace", Millis{0});
    if (out.grace && *out.grace > Millis{3'600'000}) {
      r.error(g, "slow_client.grace must be at most 1h");
      out.grace.reset();
    }
  }
}

void readListener(Reader& r, const yaml::Node& n, Listener& l) {
  if (!r.map(n, "listener",
             {"name", "address", "trust_forwarded", "limits", "timeouts", "slow_client"})) {
    return;
  }
  if (r.require(n, "name", "listener")) {
    if (auto v = r.name(n["name"], "listener name")) l.name = *v;
  }
  if (r.require(n, "address", "listener")) {
    if (auto v = r.address(n["address"], "listener address")) l.address = *v;
  }
  r.optional(n, "trust_forwarded", l.trust_forwarded,
             [&](const yaml::Node& v) { return r.boolean(v, "trust_forwarded"); });
  if (const yaml::Node lim = n["limits"]) {
    if (r.map(lim, "listener limits", {"request_line", "header_bytes", "headers", "body"})) {
      auto& lim_out = l.limits;
      r.optional(lim, "request_line", lim_out.request_line,
                 [&](const yaml::Node& v) { return r.size(v, "limits.request_line", 64); });
      r.optional(lim, "header_bytes", lim_out.header_bytes,
                 [&](const yaml::Node& v) { return r.size(v, "limits.header_bytes", 256); });
      r.optional(lim, "headers", lim_out.headers,
                 [&](const yaml::Node& v) { return r.integer(v, "limits.headers", 1, 10'000); });
      r.optional(lim, "body", lim_out.body,
                 [&](const yaml::Node& v) { return r.size(v, "limits.body", 0); });
      if (lim_out.request_line > lim_out.header_bytes) {
        r.error(lim, "limits.request_line must not exceed limits.header_bytes");
      }
      if (lim_out.header_bytes > std::uint64_t{16} * 1024 * 1024) {
        r.error(lim, "limits.header_bytes must be at most 16MiB");
      }
    }
  }
  if (const yaml::Node t = n["timeouts"]) {
    if (r.map(t, "listener timeouts", {"header", "body", "idle", "send"})) {
      auto& tmo = l.timeouts;
      auto d = [&](const char* what) {
        return [&r, what](const yaml::Node& v) { return r.duration(v, what, kMinTimeout); };
      };
      r.optional(t, "header", tmo.header, d("timeouts.header"));
      r.optional(t, "body", tmo.body, d("timeouts.body"));
      r.optional(t, "idle", tmo.idle, d("timeouts.idle"));
      r.optional(t, "send", tmo.send, d("timeouts.send"));
    }
  }
  if (const yaml::Node sc = n["slow_client"]) {
    RouteSlowClient set;
    readSlowClient(r, sc, set);
    l.slow_client = set.over(l.slow_client);
  }
}

void readSplit(Reader& r, const yaml::Node& n, std::vector<WeightedCluster>& out) {
  if (!n.IsSequence() || n.size() < 2) {
    r.error(n, "split must list at least two { cluster, weight } sides");
    return;
  }
  std::uint64_t total = 0;
  for (const auto& item : n) {
    WeightedCluster side;
    if (!r.map(item, "split side", {"cluster", "weight"})) continue;
    if (r.require(item, "cluster", "split side")) {
      if (auto v = r.name(item["cluster"], "split cluster")) side.cluster = *v;
    }
    if (r.require(item, "weight", "split side")) {
      if (auto w = r.integer(item["weight"], "split weight", 0, 1'000'000)) {
        side.weight = static_cast<std::uint32_t>(*w);
        total += *w;
      }
    }
    for (const auto& other : out) {
      if (!side.cluster.empty() && other.cluster == side.cluster) {
        r.error(item["cluster"], "split sends to cluster '" + side.cluster + "' twice");
      }
    }
    out.push_back(side);
  }
  if (total == 0 &&
      std::all_of(out.begin(), out.end(), [](const auto& s) { return !s.cluster.empty(); })) {
    r.error(n, "split weights add up to 0: some side must have a weight");
  }
}

void readRoute(Reader& r, const yaml::Node& n, Route& route) {
  if (!r.map(n, "route", {"name",      "match",           "cluster",         "split",
                          "split_key", "timeout",         "max_body",        "slow_client",
                          "retry",     "rate_limit",      "circuit_breaker", "fault",
                          "hash_key",  "concurrency",     "subset",          "mirror",
                          "canary",    "rewrite",         "request_headers", "response_headers",
                          "redirect",  "direct_response", "client_abort"})) {
    return;
  }
  if (r.require(n, "name", "route")) {
    if (auto v = r.name(n["name"], "route name")) route.name = *v;
  }
  if (const yaml::Node rd = n["redirect"]) readRedirect(r, rd, route.redirect.emplace());
  if (const yaml::Node d = n["direct_response"]) {
    readDirectResponse(r, d, route.direct_response.emplace());
  }
  if (route.answersItself()) {
    // checkRouteActions() refuses a cluster or split beside the action.
  } else if (n["cluster"] && n["split"]) {
    r.error(n["split"], "route takes cluster or split, not both");
  } else if (const yaml::Node s = n["split"]) {
    readSplit(r, s, route.split);
  } else if (r.require(n, "cluster", "route")) {
    if (auto v = r.name(n["cluster"], "route cluster")) route.cluster = *v;
  }
  if (const yaml::Node k = n["split_key"]) {
    if (!n["split"]) {
      r.error(k, "split_key applies to a route with a split");
    } else {
      readHashKey(r, k, route.split_key, "split_key");
    }
  }
  if (const yaml::Node m = n["match"]) readRouteMatch(r, m, route.match);
  if (const yaml::Node sub = n["subset"]) readSubset(r, sub, route.subset.emplace());
  if (const yaml::Node m = n["mirror"]) readMirror(r, m, route.mirror.emplace());
  if (const yaml::Node c = n["canary"]) readCanary(r, c, route, route.canary.emplace());
  r.optional(n, "timeout", route.timeout,
             [&](const yaml::Node& v) { return r.duration(v, "route timeout", kMinTimeout); });
  if (const yaml::Node b = n["max_body"]) {
    if (auto v = r.size(b, "route max_body", 0)) route.max_body = *v;
  }
  if (const yaml::Node sc = n["slow_client"]) readSlowClient(r, sc, route.slow_client);
  if (const yaml::Node ca = n["client_abort"]) {
    if (auto s = r.scalar(ca, "route client_abort")) {
      if (*s == "cancel") {
        route.client_abort = Route::ClientAbort::Cancel;
      } else if (*s == "finish") {
        route.client_abort = Route::ClientAbort::Finish;
      } else {
        r.error(ca, "route client_abort must be 'cancel' or 'finish', got '" + *s + "'");
      }
    }
  }
  if (const yaml::Node rt = n["retry"]) readRetry(r, rt, route.retry);
  if (const yaml::Node rl = n["rate_limit"]) readRateLimit(r, rl, route.rate_limit.emplace());
  if (const yaml::Node c = n["concurrency"]) readConcurrency(r, c, route.concurrency.emplace());
  if (const yaml::Node b = n["circuit_breaker"]) {
    readCircuitBreaker(r, b, route.circuit_breaker.emplace());
  }
  if (const yaml::Node f = n["fault"]) readFault(r, f, route.fault.emplace());
  if (const yaml::Node h = n["hash_key"]) readHashKey(r, h, route.hash_key);
  if (const yaml::Node rw = n["rewrite"]) readRewrite(r, rw, route.rewrite);
  if (const yaml::Node h = n["request_headers"]) {
    readHeaderEdits(r, h, "request_headers", route.request_headers);
  }
  if (const yaml::Node h = n["response_headers"]) {
    readHeaderEdits(r, h, "response_headers", route.response_headers);
  }
  checkRouteActions(r, n, route);
}

void readEndpoints(Reader& r, const yaml::Node& list, const std::string& where,
                   std::vector<Endpoint>& out) {
  for (const auto& e : list) {
    Endpoint ep;
    if (e.IsScalar()) {  // shorthand: "127.0.0.1:9000"
      if (auto a = r.address(e, "endpoint address")) ep.address = *a;
    } else if (r.map(e, "endpoint", {"address", "weight", "metadata"})) {
      if (r.require(e, "address", "endpoint")) {
        if (auto a = r.address(e["address"], "endpoint address")) ep.address = *a;
      }
      r.optional(e, "weight", ep.weight, [&](const yaml::Node& v) {
        return r.integer(v, "endpoint weight", 1, 1'000'000);
      });
      if (const yaml::Node m = e["metadata"]) readLabels(r, m, "endpoint metadata", ep.metadata);
    }
    for (const auto& other : out) {
      if (other.address == ep.address && ep.address.port != 0) {
        r.error(e, "duplicate endpoint " + ep.address.text() + " in " + where);
      }
    }
    out.push_back(ep);
  }
}

void readCluster(Reader& r, const yaml::Node& n, Cluster& c) {
  if (!r.map(n, "cluster",
             {"name", "endpoints", "lb", "pool", "io_timeout", "rate_limit", "retry_budget",
              "circuit_breaker", "outlier_detection", "bulkhead", "health_check", "discovery",
              "host_latency_histogram"})) {
    return;
  }
  if (r.require(n, "name", "cluster")) {
    if (auto v = r.name(n["name"], "cluster name")) c.name = *v;
  }
  if (const yaml::Node d = n["discovery"]) readDiscovery(r, d, c.discovery.emplace());
  // Hosts may all come from discovery; without it a cluster needs endpoints.
  if (c.discovery ? true : r.require(n, "endpoints", "cluster")) {
    const yaml::Node eps = n["endpoints"];
    if (!eps) {
      // discovery only
    } else if (!eps.IsSequence() || (eps.size() == 0 && !c.discovery)) {
      r.error(eps, "cluster endpoints must be a non-empty list");
    } else {
      readEndpoints(r, eps, "cluster '" + c.name + "'", c.endpoints);
    }
  }
  if (const yaml::Node lb = n["lb"]) readLoadBalancing(r, lb, c.lb);
  if (const yaml::Node p = n["pool"]) {
    if (r.map(p, "cluster pool",
              {"max_connections", "max_idle", "idle_timeout", "connect_timeout", "max_wait"})) {
      auto& pool = c.pool;
      r.optional(p, "max_connections", pool.max_connections, [&](const yaml::Node& v) {
        return r.integer(v, "pool.max_connections", 1, 1'000'000);
      });
      r.optional(p, "max_idle", pool.max_idle,
                 [&](const yaml::Node& v) { return r.integer(v, "pool.max_idle", 0, 1'000'000); });
      r.optional(p, "idle_timeout", pool.idle_timeout, [&](const yaml::Node& v) {
        return r.duration(v, "pool.idle_timeout", kMinTimeout);
      });
      r.optional(p, "connect_timeout", pool.connect_timeout, [&](const yaml::Node& v) {
        return r.duration(v, "pool.connect_timeout", kMinTimeout);
      });
      r.optional(p, "max_wait", pool.max_wait,
                 [&](const yaml::Node& v) { return r.duration(v, "pool.max_wait", Millis(0)); });
    }
  }
  r.optional(n, "io_timeout", c.io_timeout,
             [&](const yaml::Node& v) { return r.duration(v, "cluster io_timeout", kMinTimeout); });
  r.optional(n, "host_latency_histogram", c.host_latency_histogram,
             [&](const yaml::Node& v) { return r.boolean(v, "host_latency_histogram"); });
  if (const yaml::Node rl = n["rate_limit"]) readRateLimit(r, rl, c.rate_limit.emplace());
  if (const yaml::Node rb = n["retry_budget"]) readRetryBudget(r, rb, c.retry_budget);
  if (const yaml::Node b = n["circuit_breaker"]) {
    readCircuitBreaker(r, b, c.circuit_breaker.emplace());
  }
  if (const yaml::Node b = n["bulkhead"]) readBulkhead(r, b, c.bulkhead.emplace());
  if (const yaml::Node o = n["outlier_detection"]) {
    readOutlierDetection(r, o, c.outlier_detection.emplace());
  }
  if (const yaml::Node h = n["health_check"]) readHealthCheck(r, h, c.health_check.emplace());
  if (c.lb.slow_start && !c.health_check && !c.discovery) {
    // A ramp starts when a host joins or comes back from failing its checks: without discovery
    // or checks, never.
    r.error(n["lb"]["slow_start"],
            "lb.slow_start needs a health_check or discovery in cluster '" + c.name + "'");
  }
}

template <typename T, typename ReadOne>
void readList(Reader& r, const yaml::Node& root, const char* key, std::vector<T>& out,
              ReadOne&& read_one) {
  const yaml::Node list = root[key];
  if (!list) return;
  if (!list.IsSequence()) {
    r.error(list, std::string(key) + " must be a list");
    return;
  }
  for (const auto& item : list) {
    T value;
    read_one(item, value);
    out.push_back(std::move(value));
  }
}

Diagnostic syntaxError(const std::string& file_name, const yaml::Error& e) {
  return {file_name, e.line + 1, e.column + 1, "YAML syntax error: " + e.message};
}

// One of `names` at `n` (if present), stored as the enumerator at the same index.
template <typename Enum, std::size_t N>
void readLogChoice(Reader& r, const yaml::Node& n, const char* what,
                   const std::array<std::string_view, N>& names, Enum& out) {
  if (!n) return;
  const auto s = r.scalar(n, what);
  if (!s) return;
  const auto it = std::find(names.begin(), names.end(), *s);
  if (it == names.end()) {
    std::string known;
    for (auto k : names) known += (known.empty() ? "" : ", ") + std::string(k);
    r.error(n, std::string(what) + " must be one of " + known + ", not '" + *s + "'");
    return;
  }
  out = static_cast<Enum>(it - names.begin());
}

// Name uniqueness needs the node of each item to point at the duplicate.
template <typename T>
void checkUniqueNames(Reader& r, const yaml::Node& list, const std::vector<T>& items,
                      std::string_view what) {
  std::set<std::string, std::less<>> seen;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].name.empty()) continue;
    if (!seen.insert(items[i].name).second) {
      r.error(list[i], "duplicate " + std::string(what) + " name '" + items[i].name + "'");
    }
  }
}

}  // namespace

EndpointsResult loadEndpoints(std::string_view yaml, const std::string& file_name) {
  EndpointsResult result;
  const auto parsed = yaml::parse(yaml);
  if (parsed.error) {
    result.diagnostics.push_back(syntaxError(file_name, *parsed.error));
    return result;
  }
  const yaml::Node& root = parsed.root;
  Reader r(file_name, result.diagnostics);
  std::vector<Endpoint> endpoints;
  if (!root || root.IsNull()) {
    // An empty file: no hosts (a deliberate way to drain them all).
  } else if (!root.IsSequence()) {
    r.error(root, "an endpoints file must be a list of addresses or { address, weight } maps");
  } else {
    readEndpoints(r, root, "the file", endpoints);
  }
  if (result.diagnostics.empty()) result.endpoints = std::move(endpoints);
  return result;
}

LoadResult load(std::string_view yaml, const std::string& file_name) {
  LoadResult result;
  auto& diags = result.diagnostics;
  const auto parsed = yaml::parse(yaml);
  if (parsed.error) {
    diags.push_back(syntaxError(file_name, *parsed.error));
    return result;
  }
  const yaml::Node& root = parsed.root;
  Reader r(file_name, diags);
  if (!root || root.IsNull()) {
    diags.push_back({file_name, 1, 1, "the config is empty"});
    return result;
  }
  Config cfg;
  if (!r.map(root, "the config",
             {"workers", "drain_timeout", "drain_accept_grace", "listeners", "admin", "log",
              "tracing", "redis", "etcd", "access_log", "routes", "clusters"})) {
    return result;
  }
  if (const yaml::Node w = root["workers"]) {
    if (w.IsScalar() && w.Scalar() == "auto") {
      cfg.workers = 0;
    } else if (auto v = r.integer(w, "workers ('auto' or a count)", 1, 256)) {
      cfg.workers = static_cast<std::uint32_t>(*v);
    }
  }
  r.optional(root, "drain_timeout", cfg.drain_timeout,
             [&](const yaml::Node& v) { return r.duration(v, "drain_timeout", Millis(0)); });
  r.optional(root, "drain_accept_grace", cfg.drain_accept_grace,
             [&](const yaml::Node& v) { return r.duration(v, "drain_accept_grace", Millis(0)); });

  if (r.require(root, "listeners", "the config")) {
    readList(r, root, "listeners", cfg.listeners,
             [&](const yaml::Node& n, Listener& l) { readListener(r, n, l); });
    if (root["listeners"].IsSequence() && cfg.listeners.empty()) {
      r.error(root["listeners"], "at least one listener is required");
    }
    checkUniqueNames(r, root["listeners"], cfg.listeners, "listener");
  }
  if (const yaml::Node a = root["admin"]) {
    if (r.map(a, "admin", {"address", "token_file"}) && r.require(a, "address", "admin")) {
      if (auto v = r.address(a["address"], "admin address")) cfg.admin = Admin{*v, {}};
      if (const yaml::Node t = a["token_file"]; t && cfg.admin) {
        if (auto v = r.scalar(t, "admin.token_file")) {
          if (v->empty()) {
            r.error(t, "admin.token_file must be a file path");
          } else {
            cfg.admin->token_file = *v;
          }
        }
      }
    }
  }
  if (const yaml::Node lg = root["log"]) {
    if (r.map(lg, "log", {"level", "format"})) {
      readLogChoice(r, lg["level"], "log.level", kLogLevels, cfg.log.level);
      readLogChoice(r, lg["format"], "log.format", kLogFormats, cfg.log.format);
    }
  }
  if (const yaml::Node t = root["tracing"]) {
    cfg.tracing.emplace();
    readTracing(r, t, *cfg.tracing);
  }
  if (const yaml::Node rd = root["redis"]) {
    cfg.redis.emplace();
    readRedis(r, rd, *cfg.redis);
  }
  if (const yaml::Node e = root["etcd"]) {
    cfg.etcd.emplace();
    readEtcd(r, e, *cfg.etcd);
  }
  if (const yaml::Node al = root["access_log"]) {
    if (r.map(al, "access_log", {"enabled", "path", "fields"})) {
      r.optional(al, "enabled", cfg.access_log.enabled,
                 [&](const yaml::Node& v) { return r.boolean(v, "access_log.enabled"); });
      if (const yaml::Node p = al["path"]) {
        if (auto v = r.scalar(p, "access_log.path")) {
          if (v->empty()) {
            r.error(p, "access_log.path must be stdout, stderr or a file path");
          } else {
            cfg.access_log.path = *v;
          }
        }
      }
      if (const yaml::Node f = al["fields"]) {
        if (!f.IsSequence() || f.size() == 0) {
          r.error(f, "access_log.fields must be a non-empty list");
        } else {
          for (const auto& item : f) {
            auto s = r.scalar(item, "access_log field");
            if (!s) continue;
            if (std::find(kAccessLogFields.begin(), kAccessLogFields.end(), *s) ==
                kAccessLogFields.end()) {
              std::string known;
              for (auto k : kAccessLogFields) known += (known.empty() ? "" : ", ") + std::string(k);
              r.error(item, "unknown access_log field '" + *s + "' (known: " + known + ")");
            } else {
              cfg.access_log.fields.push_back(*s);
            }
          }
        }
      }
    }
  }
  if (r.require(root, "clusters", "the config")) {
    readList(r, root, "clusters", cfg.clusters,
             [&](const yaml::Node& n, Cluster& c) { readCluster(r, n, c); });
    checkUniqueNames(r, root["clusters"], cfg.clusters, "cluster");
  }
  if (r.require(root, "routes", "the config")) {
    readList(r, root, "routes", cfg.routes,
             [&](const yaml::Node& n, Route& rt) { readRoute(r, n, rt); });
    checkUniqueNames(r, root["routes"], cfg.routes, "route");
    const yaml::Node routes = root["routes"];
    // Each path_regex compiled once for the "never used" check below (pairwise over routes).
    std::vector<std::unique_ptr<re2::RE2>> regexes;
    regexes.reserve(cfg.routes.size());
    for (const auto& rt : cfg.routes) {
      regexes.push_back(rt.match.path_regex ? compileRouteRegex(*rt.match.path_regex) : nullptr);
    }
    for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
      const auto& rt = cfg.routes[i];
      // Each named cluster exists; a hash_key needs some cluster of the route that hashes.
      bool all_known = true;
      const Cluster* hashing = nullptr;
      const Cluster* first = nullptr;
      for (std::size_t t = 0; t < (rt.split.empty() ? 1 : rt.split.size()); ++t) {
        const std::string& name = rt.split.empty() ? rt.cluster : rt.split[t].cluster;
        if (name.empty()) {
          all_known = false;
          continue;
        }
        const Cluster* target = cfg.findCluster(name);
        if (target == nullptr) {
          all_known = false;
          r.error(rt.split.empty() ? routes[i]["cluster"] : routes[i]["split"][t]["cluster"],
                  "route '" + rt.name + "' refers to unknown cluster '" + name + "'");
          continue;
        }
        if (first == nullptr) first = target;
        if (target->lb.hashing() && hashing == nullptr) hashing = target;
      }
      if (rt.mirror && !rt.mirror->cluster.empty() &&
          cfg.findCluster(rt.mirror->cluster) == nullptr) {
        r.error(routes[i]["mirror"]["cluster"],
                "route '" + rt.name + "' mirrors to unknown cluster '" + rt.mirror->cluster + "'");
      }
      if (all_known && first != nullptr && !rt.hash_key.empty() && hashing == nullptr) {
        r.error(routes[i]["hash_key"],
                "hash_key has no effect: cluster '" + first->name + "' balances with " +
                    std::string(policyName(first->lb.policy)) + " (use ring_hash or maglev)");
      }
      // A fixed subset that no host can ever match (no endpoint carries its labels and none
      // can be discovered) is a typo in a label, most likely.
      if (rt.subset && rt.subset->header.empty()) {
        for (const auto& t : rt.targets()) {
          const Cluster* c = cfg.findCluster(t.cluster);
          if (c == nullptr || c->discovery) continue;
          if (std::any_of(c->endpoints.begin(), c->endpoints.end(), [&](const Endpoint& e) {
                return carriesLabels(e.metadata, rt.subset->labels);
              })) {
            continue;
          }
          std::string labels;
          for (const auto& [k, v] : rt.subset->labels) {
            labels.append(labels.empty() ? "" : ", ").append(k).append(": ").append(v);
          }
          const yaml::Mark at = routes[i]["subset"].Mark();
          result.warnings.push_back({file_name, at.line + 1, at.column + 1,
                                     "warning: route '" + rt.name + "': no endpoint of cluster '" +
                                         c->name + "' carries the subset's labels { " + labels +
                                         " } and it has no discovery, " +
                                         (rt.subset->fallback == Subset::Fallback::Cluster
                                              ? "so its requests go to the whole cluster"
                                              : "so its requests are answered 503")});
        }
      }
      // First match wins: a route an earlier one covers never sees a request.
      for (std::size_t j = 0; j < i; ++j) {
        if (!covers(cfg.routes[j].match, regexes[j].get(), rt.match)) continue;
        const yaml::Mark at = routes[i].Mark();
        result.warnings.push_back({file_name, at.line + 1, at.column + 1,
                                   "warning: route '" + rt.name + "' is never used: route '" +
                                       cfg.routes[j].name + "' (line " +
                                       std::to_string(routes[j].Mark().line + 1) +
                                       ") comes first and matches every request it does"});
        break;
      }
    }
  }
  // A fallback cluster exists and is not the cluster it stands in for.
  const auto check_fallback = [&](const std::optional<CircuitBreaker>& b, const yaml::Node& at,
                                  const std::vector<WeightedCluster>& own) {
    if (!b || !b->fallback.cluster) return;
    const yaml::Node where = at["circuit_breaker"]["fallback"]["cluster"];
    const std::string& fallback = *b->fallback.cluster;
    if (cfg.findCluster(fallback) == nullptr) {
      r.error(where, "fallback.cluster '" + fallback + "' is not a cluster");
    } else if (std::any_of(own.begin(), own.end(),
                           [&](const WeightedCluster& t) { return t.cluster == fallback; })) {
      r.error(where, "fallback.cluster '" + fallback + "' is a cluster it stands in for");
    }
  };
  for (std::size_t i = 0; i < cfg.routes.size() && root["routes"].IsSequence(); ++i) {
    check_fallback(cfg.routes[i].circuit_breaker, root["routes"][i], cfg.routes[i].targets());
  }
  for (std::size_t i = 0; i < cfg.clusters.size() && root["clusters"].IsSequence(); ++i) {
    check_fallback(cfg.clusters[i].circuit_breaker, root["clusters"][i],
                   {{cfg.clusters[i].name, 1}});
  }
  // A global limit lives in Redis: without a `redis` section there is nowhere to keep it.
  const auto check_global = [&](const std::optional<RateLimit>& rl, const yaml::Node& at) {
    if (!rl || rl->scope != RateLimit::Scope::Global || cfg.redis) return;
    r.error(at["rate_limit"]["scope"],
            "rate_limit.scope global needs a top-level redis section (where the limit is kept)");
  };
  for (std::size_t i = 0; i < cfg.routes.size() && root["routes"].IsSequence(); ++i) {
    check_global(cfg.routes[i].rate_limit, root["routes"][i]);
  }
  for (std::size_t i = 0; i < cfg.clusters.size() && root["clusters"].IsSequence(); ++i) {
    check_global(cfg.clusters[i].rate_limit, root["clusters"][i]);
  }
  // The fleet entry says where to send traffic: a wildcard listener says nothing useful.
  if (cfg.etcd && cfg.etcd->self && cfg.etcd->self->address.port == 0 && !cfg.listeners.empty()) {
    boost::system::error_code ec;
    const auto ip = boost::asio::ip::make_address(cfg.listeners.front().address.ip, ec);
    if (!ec && ip.is_unspecified()) {
      r.error(root["etcd"]["register"],
              "etcd.register needs an address: the first listener listens on " +
                  cfg.listeners.front().address.text() + ", which others cannot call");
    }
  }
  // Hosts from etcd come from the `etcd` section's cluster.
  for (std::size_t i = 0; i < cfg.clusters.size() && root["clusters"].IsSequence(); ++i) {
    const auto& d = cfg.clusters[i].discovery;
    if (!d || d->etcd.empty() || cfg.etcd) continue;
    r.error(root["clusters"][i]["discovery"]["etcd"],
            "discovery.etcd needs a top-level etcd section (the etcd cluster to watch)");
  }
  // Likewise a shared circuit breaker's state.
  const auto check_share = [&](const std::optional<CircuitBreaker>& b, const yaml::Node& at) {
    if (!b || b->share != CircuitBreaker::Share::Redis || cfg.redis) return;
    r.error(at["circuit_breaker"]["share"],
            "circuit_breaker.share redis needs a top-level redis section (where the breaker's "
            "state is shared)");
  };
  for (std::size_t i = 0; i < cfg.routes.size() && root["routes"].IsSequence(); ++i) {
    check_share(cfg.routes[i].circuit_breaker, root["routes"][i]);
  }
  for (std::size_t i = 0; i < cfg.clusters.size() && root["clusters"].IsSequence(); ++i) {
    check_share(cfg.clusters[i].circuit_breaker, root["clusters"][i]);
  }
  // Anyone who reaches an admin listener without a token can reload, drain hosts and force
  // breakers: fine on loopback, a hole anywhere else.
  if (cfg.admin && cfg.admin->token_file.empty()) {
    boost::system::error_code ec;
    const auto ip = boost::asio::ip::make_address(cfg.admin->address.ip, ec);
    if (!ec && !ip.is_loopback()) {
      const yaml::Mark at = root["admin"]["address"].Mark();
      result.warnings.push_back(
          {file_name, at.line + 1, at.column + 1,
           "warning: the admin listener on " + cfg.admin->address.text() +
               " is not loopback and has no token_file: anyone who can reach it may reload the "
               "config, drain hosts and force breakers (set admin.token_file)"});
    }
  }
  // Two sockets cannot listen on one address.
  if (cfg.admin) {
    for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
      if (cfg.listeners[i].address == cfg.admin->address && cfg.admin->address.port != 0) {
        r.error(root["admin"]["address"], "admin address " + cfg.admin->address.text() +
                                              " is also listener '" + cfg.listeners[i].name + "'");
      }
    }
  }
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (cfg.listeners[i].address == cfg.listeners[j].address &&
          cfg.listeners[i].address.port != 0) {
        r.error(root["listeners"][i], "listener '" + cfg.listeners[i].name +
                                          "' uses the address of '" + cfg.listeners[j].name + "'");
      }
    }
  }
  if (diags.empty()) {
    result.config = std::move(cfg);
  } else {
    result.warnings.clear();  // about a config that does not load: noise next to its errors
  }
  return result;
}

LoadResult loadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.diagnostics.push_back({path, 0, 0, "cannot read the file"});
    return r;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return load(buf.str(), path);
}

}  // namespace sluice::gateway::config
