#include "gateway/config/lb_config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "resilience/lb/maglev.h"

namespace sluice::gateway::config {

namespace {

constexpr std::array<std::pair<std::string_view, LbPolicy>, 7> kPolicies = {{
    {"round_robin", LbPolicy::RoundRobin},
    {"random", LbPolicy::Random},
    {"least_request", LbPolicy::LeastRequest},
    {"least_connections", LbPolicy::LeastConnections},
    {"peak_ewma", LbPolicy::PeakEwma},
    {"ring_hash", LbPolicy::RingHash},
    {"maglev", LbPolicy::Maglev},
}};

std::string knownPolicies() {
  std::string out;
  for (const auto& [name, p] : kPolicies) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

std::optional<LbPolicy> policyNamed(Reader& r, const yaml::Node& n) {
  const auto s = r.scalar(n, "lb policy");
  if (!s) return std::nullopt;
  for (const auto& [name, p] : kPolicies) {
    if (name == *s) return p;
  }
  r.error(n, "unknown lb policy '" + *s + "' (known: " + knownPolicies() + ")");
  return std::nullopt;
}

}  // namespace

std::string_view policyName(LbPolicy p) {
  for (const auto& [name, policy] : kPolicies) {
    if (policy == p) return name;
  }
  return "round_robin";
}

void readLoadBalancing(Reader& r, const yaml::Node& n, LoadBalancing& out) {
  if (n.IsScalar()) {
    if (auto p = policyNamed(r, n)) out.policy = *p;
    return;
  }
  if (!r.map(n, "cluster lb",
             {"policy", "ring_vnodes", "ring_max_size", "maglev_table_size", "balance_factor",
              "ewma_decay", "panic_threshold", "slow_start", "dynamic_weights"}) ||
      !r.require(n, "policy", "cluster lb")) {
    return;
  }
  if (auto p = policyNamed(r, n["policy"])) out.policy = *p;
  // Each parameter belongs to one policy: a parameter of another is a mistake worth reporting.
  const auto param = [&](const char* key, LbPolicy owner) {
    return r.keyWhere(n, key, out.policy == owner, "lb.",
                      "applies to policy " + std::string(policyName(owner)) + " only");
  };
  if (const auto v = param("ring_vnodes", LbPolicy::RingHash)) {
    if (auto x = r.integer(*v, "lb.ring_vnodes", 1, 65'536)) {
      out.ring_vnodes = static_cast<std::uint32_t>(*x);
    }
  }
  if (const auto v = param("ring_max_size", LbPolicy::RingHash)) {
    if (auto x = r.integer(*v, "lb.ring_max_size", 1, 1ULL << 26U)) out.ring_max_size = *x;
  }
  if (const auto v = param("maglev_table_size", LbPolicy::Maglev)) {
    if (auto x = r.integer(*v, "lb.maglev_table_size", 3, (1ULL << 31U) - 1)) {
      if (auto why = resilience::Maglev::validate({*x})) {
        r.error(*v, "lb.maglev_table_size: " + *why);
      } else {
        out.maglev_table_size = *x;
      }
    }
  }
  if (const auto v = param("balance_factor", LbPolicy::RingHash)) {
    if (auto x = r.decimal(*v, "lb.balance_factor", 1, 1000)) out.balance_factor = *x;
  }
  if (const auto v = param("ewma_decay", LbPolicy::PeakEwma)) {
    if (auto d = r.duration(*v, "lb.ewma_decay", kMinTimeout)) out.ewma_decay = *d;
  }
  r.optional(n, "panic_threshold", out.panic_threshold, [&](const yaml::Node& v) {
    return r.decimal(v, "lb.panic_threshold (percent)", 0, 100);
  });
  // A key's host does not depend on weights there: changing them would only reshuffle keys.
  const auto weighted = [&](const char* key) {
    return r.keyWhere(n, key, !out.hashing(), "lb.",
                      "does not apply to policy " + std::string(policyName(out.policy)));
  };
  if (const auto v = weighted("slow_start")) readSlowStart(r, *v, out.slow_start.emplace());
  if (const auto v = weighted("dynamic_weights")) {
    readDynamicWeights(r, *v, out.dynamic_weights.emplace());
  }
}

void readDynamicWeights(Reader& r, const yaml::Node& n, DynamicWeights& out) {
  if (!r.map(n, "lb.dynamic_weights",
             {"signal", "header", "decay_time", "min_samples", "error_penalty",
              "min_weight_percent", "blackout", "report_ttl", "update_interval"})) {
    return;
  }
  if (const yaml::Node v = n["signal"]) {
    if (const auto s = r.scalar(v, "lb.dynamic_weights.signal")) {
      if (*s == "latency") {
        out.signal = DynamicWeights::Signal::Latency;
      } else if (*s == "utilization") {
        out.signal = DynamicWeights::Signal::Utilization;
      } else {
        r.error(v, "lb.dynamic_weights.signal must be latency or utilization, got '" + *s + "'");
      }
    }
  }
  const auto utilization_only = [&](const char* key) {
    return r.keyWhere(n, key, out.signal == DynamicWeights::Signal::Utilization,
                      "lb.dynamic_weights.", "applies to signal utilization only");
  };
  if (const auto v = utilization_only("header")) {
    if (const auto s = r.name(*v, "lb.dynamic_weights.header")) {
      out.header = *s;
      std::transform(out.header.begin(), out.header.end(), out.header.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
  }
  const auto duration = [&](const char* key, Millis& field) {
    r.optional(n, key, field, [&](const yaml::Node& v) {
      return r.duration(v, "lb.dynamic_weights." + std::string(key), kMinTimeout);
    });
  };
  duration("decay_time", out.decay_time);
  duration("update_interval", out.update_interval);
  if (const auto v = utilization_only("blackout")) {
    if (auto d = r.duration(*v, "lb.dynamic_weights.blackout", Millis(0))) out.blackout = *d;
  }
  if (const auto v = utilization_only("report_ttl")) {
    if (auto d = r.duration(*v, "lb.dynamic_weights.report_ttl", kMinTimeout)) out.report_ttl = *d;
  }
  const auto number = [&](const char* key, double& field, double min, double max) {
    r.optional(n, key, field, [&](const yaml::Node& v) {
      return r.decimal(v, "lb.dynamic_weights." + std::string(key), min, max);
    });
  };
  number("min_samples", out.min_samples, 0, 1e6);
  number("error_penalty", out.error_penalty, 0, 1000);
  number("min_weight_percent", out.min_weight_percent, 0, 100);
  if (out.min_weight_percent <= 0) {
    r.error(n["min_weight_percent"], "lb.dynamic_weights.min_weight_percent must be above 0");
  }
}

void readSlowStart(Reader& r, const yaml::Node& n, SlowStart& out) {
  if (!r.map(n, "lb.slow_start", {"window", "aggression", "min_weight_percent"})) return;
  r.optional(n, "window", out.window, [&](const yaml::Node& v) {
    return r.duration(v, "lb.slow_start.window", kMinTimeout);
  });
  if (const yaml::Node v = n["aggression"]) {
    if (auto a = r.decimal(v, "lb.slow_start.aggression", 0, 100)) {
      if (*a <= 0) {
        r.error(v, "lb.slow_start.aggression must be above 0");
      } else {
        out.aggression = *a;
      }
    }
  }
  r.optional(n, "min_weight_percent", out.min_weight_percent, [&](const yaml::Node& v) {
    return r.decimal(v, "lb.slow_start.min_weight_percent", 0, 100);
  });
}

void readHashKey(Reader& r, const yaml::Node& n, std::vector<HashKeyPart>& out,
                 const std::string& what) {
  const auto one = [&](const yaml::Node& item) -> std::optional<HashKeyPart> {
    const auto s = r.scalar(item, what + " part");
    if (!s) return std::nullopt;
    if (*s == "client_ip") return HashKeyPart{HashKeyPart::Kind::ClientIp, ""};
    if (*s == "path") return HashKeyPart{HashKeyPart::Kind::Path, ""};
    const auto colon = s->find(':');
    const std::string kind = s->substr(0, colon);
    const std::string name = colon == std::string::npos ? "" : s->substr(colon + 1);
    const bool valid_name = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_' || c == '.';
    });
    if ((kind == "header" || kind == "cookie" || kind == "query") && valid_name) {
      HashKeyPart p;
      p.kind = kind == "header"   ? HashKeyPart::Kind::Header
               : kind == "cookie" ? HashKeyPart::Kind::Cookie
                                  : HashKeyPart::Kind::Query;
      p.name = name;
      if (p.kind == HashKeyPart::Kind::Header) {
        std::transform(p.name.begin(), p.name.end(), p.name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      }
      return p;
    }
    r.error(item, what + " part '" + *s +
                      "' must be client_ip, path, header:<name>, cookie:<name> or query:<name>");
    return std::nullopt;
  };
  out.clear();
  if (n.IsSequence()) {
    if (n.size() == 0) r.error(n, what + " must not be empty");
    for (const auto& item : n) {
      if (auto p = one(item)) out.push_back(*p);
    }
  } else if (auto p = one(n)) {
    out.push_back(*p);
  }
}

std::string hashKeyText(const HashKeyPart& part) {
  switch (part.kind) {
    case HashKeyPart::Kind::ClientIp:
      return "client_ip";
    case HashKeyPart::Kind::Path:
      return "path";
    case HashKeyPart::Kind::Header:
      return "header:" + part.name;
    case HashKeyPart::Kind::Cookie:
      return "cookie:" + part.name;
    case HashKeyPart::Kind::Query:
      return "query:" + part.name;
  }
  return "client_ip";
}

}  // namespace sluice::gateway::config
