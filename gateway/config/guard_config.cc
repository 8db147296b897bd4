#include "gateway/config/guard_config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

namespace sluice::gateway::config {
namespace {

constexpr std::array<std::pair<std::string_view, RateAlgorithm>, 4> kRateAlgorithms = {{
    {"gcra", RateAlgorithm::Gcra},
    {"token_bucket", RateAlgorithm::TokenBucket},
    {"leaky_bucket", RateAlgorithm::LeakyBucket},
    {"sliding_window", RateAlgorithm::SlidingWindow},
}};

constexpr std::array<std::pair<std::string_view, RateLimit::Scope>, 2> kRateScopes = {{
    {"local", RateLimit::Scope::Local},
    {"global", RateLimit::Scope::Global},
}};

constexpr std::array<std::pair<std::string_view, RateLimit::OnFailure>, 3> kOnFailure = {{
    {"allow", RateLimit::OnFailure::Allow},
    {"deny", RateLimit::OnFailure::Deny},
    {"local", RateLimit::OnFailure::Local},
}};

constexpr std::array<std::pair<std::string_view, AdaptiveConcurrency::Algorithm>, 4>
    kAdaptiveAlgorithms = {{
        {"gradient", AdaptiveConcurrency::Algorithm::Gradient},
        {"aimd", AdaptiveConcurrency::Algorithm::Aimd},
        {"vegas", AdaptiveConcurrency::Algorithm::Vegas},
        {"auto", AdaptiveConcurrency::Algorithm::Auto},
    }};

// Sets `out` from the name in `n` looked up in `table`, or reports the name and the known ones.
template <typename Table, typename Value>
void readName(Reader& r, const yaml::Node& n, const std::string& what, const Table& table,
              Value& out) {
  auto v = r.scalar(n, what);
  if (!v) return;
  for (const auto& [name, value] : table) {
    if (name == *v) {
      out = value;
      return;
    }
  }
  std::string known;
  for (const auto& [name, value] : table) known += (known.empty() ? "" : ", ") + std::string(name);
  r.error(n, "unknown " + what + " '" + *v + "' (known: " + known + ")");
}

template <typename Table, typename Value>
std::string_view nameIn(const Table& table, Value v) {
  for (const auto& [name, value] : table) {
    if (value == v) return name;
  }
  return "?";
}

std::optional<int> replyStatus(Reader& r, const yaml::Node& n, std::string_view what) {
  auto v = r.integer(n, what, 0, 999);
  if (!v) return std::nullopt;
  if (*v != 429 && *v != 503) {
    r.error(n, std::string(what) + " must be 429 or 503");
    return std::nullopt;
  }
  return static_cast<int>(*v);
}

void readKey(Reader& r, const yaml::Node& n, RateLimit& out) {
  // A single part may be written without the list: `key: client_ip`.
  std::vector<yaml::Node> items;
  if (n.IsSequence()) {
    for (const auto& item : n) items.push_back(item);
  } else {
    items.push_back(n);
  }
  if (items.empty()) {
    r.error(n, "rate_limit.key must name at least one part");
    return;
  }
  out.key.clear();
  for (const auto& item : items) {
    auto s = r.scalar(item, "rate_limit.key part");
    if (!s) continue;
    RateKeyPart part;
    if (*s == "client_ip") {
      part.kind = RateKeyPart::Kind::ClientIp;
    } else if (*s == "route") {
      part.kind = RateKeyPart::Kind::Route;
    } else if (s->rfind("header:", 0) == 0 && s->size() > 7 &&
               std::all_of(s->begin() + 7, s->end(), isTokenChar)) {
      part.kind = RateKeyPart::Kind::Header;
      part.header = s->substr(7);
      std::transform(part.header.begin(), part.header.end(), part.header.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    } else {
      r.error(item, "unknown rate_limit.key part '" + *s +
                        "' (known: client_ip, route, header:<field name>)");
      continue;
    }
    if (std::find(out.key.begin(), out.key.end(), part) != out.key.end()) {
      r.error(item, "rate_limit.key part '" + *s + "' appears twice");
      continue;
    }
    out.key.push_back(std::move(part));
  }
}

}  // namespace

std::optional<RateText> parseRate(std::string_view text, std::string* error) {
  const auto slash = text.find('/');
  const auto bad = [&] {
    *error = "expected a rate like 100/s, 6000/m or 5/10s, got '" + std::string(text) + "'";
    return std::nullopt;
  };
  if (slash == std::string_view::npos) return bad();
  const auto n = parseUnsigned<std::uint64_t>(text.substr(0, slash));
  if (!n) return bad();
  if (*n == 0) {
    *error = "a rate must allow at least 1 request per period";
    return std::nullopt;
  }
  std::string per(text.substr(slash + 1));
  if (per == "ms" || per == "s" || per == "m" || per == "h") per.insert(0, "1");
  std::string why;
  const auto period = parseDuration(per, &why);
  if (!period) return bad();
  if (period->count() <= 0) {
    *error = "a rate's period must be at least 1ms";
    return std::nullopt;
  }
  // Both algorithms keep nanosecond integers: at most one request per nanosecond.
  if (static_cast<double>(*n) / static_cast<double>(period->count()) > 1e6) {
    *error = "rate '" + std::string(text) + "' is above 1e9 requests per second";
    return std::nullopt;
  }
  return RateText{*n, *period};
}

void readRateLimit(Reader& r, const yaml::Node& n, RateLimit& out) {
  if (!r.map(n, "rate_limit",
             {"algorithm", "rate", "burst", "delay", "nodelay", "key", "max_keys", "status",
              "scope", "on_failure"})) {
    return;
  }
  if (const yaml::Node a = n["algorithm"]) {
    readName(r, a, "rate_limit.algorithm", kRateAlgorithms, out.algorithm);
  }
  if (r.require(n, "rate", "rate_limit")) {
    if (auto v = r.scalar(n["rate"], "rate_limit.rate")) {
      std::string why;
      if (auto rate = parseRate(*v, &why)) {
        out.requests = rate->requests;
        out.period = rate->period;
      } else {
        r.error(n["rate"], "rate_limit.rate: " + why);
      }
    }
  }
  const bool leaky = out.algorithm == RateAlgorithm::LeakyBucket;
  out.burst = leaky ? 0 : 1;
  if (const yaml::Node b = n["burst"]) {
    if (out.algorithm == RateAlgorithm::SlidingWindow) {
      r.error(b,
              "rate_limit.burst does not apply to sliding_window (its rate is the most "
              "requests in any window)");
    } else if (auto v = r.integer(b, "rate_limit.burst", leaky ? 0 : 1, 1'000'000'000)) {
      out.burst = *v;
    }
  }
  for (const char* key : {"delay", "nodelay"}) {
    if (n[key] && !leaky) {
      r.error(n[key], std::string("rate_limit.") + key + " applies only to leaky_bucket");
    }
  }
  if (leaky) {
    r.optional(n, "delay", out.delay, [&](const yaml::Node& v) {
      return r.integer(v, "rate_limit.delay", 0, 1'000'000'000);
    });
    r.optional(n, "nodelay", out.nodelay,
               [&](const yaml::Node& v) { return r.boolean(v, "rate_limit.nodelay"); });
    if (out.nodelay && out.delay > 0) {
      r.error(n["delay"], "rate_limit takes delay or nodelay, not both");
    }
  }
  if (const yaml::Node k = n["key"]) readKey(r, k, out);
  r.optional(n, "max_keys", out.max_keys, [&](const yaml::Node& v) {
    return r.integer(v, "rate_limit.max_keys", 1, 10'000'000);
  });
  r.optional(n, "status", out.status,
             [&](const yaml::Node& v) { return replyStatus(r, v, "rate_limit.status"); });
  if (const yaml::Node s = n["scope"]) readName(r, s, "rate_limit.scope", kRateScopes, out.scope);
  if (out.scope == RateLimit::Scope::Global && out.algorithm != RateAlgorithm::Gcra &&
      out.algorithm != RateAlgorithm::TokenBucket) {
    r.error(n["scope"],
            "rate_limit.scope global needs algorithm gcra or token_bucket (one number per key, "
            "kept in Redis)");
  }
  // Redis keeps a global limit's times in whole microseconds (Lua numbers are doubles).
  if (out.scope == RateLimit::Scope::Global && out.requests > 0 &&
      static_cast<double>(out.requests) / static_cast<double>(out.period.count()) > 1e3) {
    r.error(n["rate"], "rate_limit.rate: a global limit allows at most 1000000/s per key");
  }
  if (const yaml::Node f = n["on_failure"]) {
    if (out.scope != RateLimit::Scope::Global) {
      r.error(f, "rate_limit.on_failure applies only to scope global");
    } else {
      readName(r, f, "rate_limit.on_failure", kOnFailure, out.on_failure);
    }
  }
}

void readConcurrency(Reader& r, const yaml::Node& n, Concurrency& out) {
  if (!r.map(
          n, "concurrency",
          {"max", "adaptive", "queue", "queue_timeout", "queue_delay", "status", "retry_after"})) {
    return;
  }
  if (n["max"] && n["adaptive"]) {
    r.error(n, "concurrency takes max (a static limit) or adaptive, not both");
  } else if (!n["max"] && !n["adaptive"]) {
    r.error(n, "concurrency needs max (a static limit) or adaptive");
  }
  r.optional(n, "max", out.max,
             [&](const yaml::Node& v) { return r.integer(v, "concurrency.max", 1, 10'000'000); });
  if (const yaml::Node a = n["adaptive"]) {
    if (r.map(a, "concurrency.adaptive",
              {"algorithm", "initial", "min", "max", "timeout", "backoff_cooldown",
               "window_samples", "window_duration"})) {
      AdaptiveConcurrency ad;
      if (const yaml::Node alg = a["algorithm"]) {
        readName(r, alg, "concurrency.adaptive.algorithm", kAdaptiveAlgorithms, ad.algorithm);
      }
      const auto count = [&](const char* what) {
        return [&r, what](const yaml::Node& v) { return r.integer(v, what, 1, 10'000'000); };
      };
      r.optional(a, "initial", ad.initial, count("concurrency.adaptive.initial"));
      r.optional(a, "min", ad.min, count("concurrency.adaptive.min"));
      r.optional(a, "max", ad.max, count("concurrency.adaptive.max"));
      if (const yaml::Node t = a["timeout"]) {
        if (ad.algorithm != AdaptiveConcurrency::Algorithm::Aimd) {
          r.error(t, "concurrency.adaptive.timeout applies only to aimd");
        } else if (auto v = r.duration(t, "concurrency.adaptive.timeout", kMinTimeout)) {
          ad.timeout = *v;
        }
      }
      if (const yaml::Node b = a["backoff_cooldown"]) {
        if (ad.algorithm != AdaptiveConcurrency::Algorithm::Aimd) {
          r.error(b, "concurrency.adaptive.backoff_cooldown applies only to aimd");
        } else if (auto v = r.duration(b, "concurrency.adaptive.backoff_cooldown", Millis(0))) {
          ad.backoff_cooldown = *v;
        }
      }
      if (const yaml::Node w = a["window_samples"]) {
        if (ad.algorithm != AdaptiveConcurrency::Algorithm::Gradient) {
          r.error(w, "concurrency.adaptive.window_samples applies only to gradient");
        } else if (auto v = r.integer(w, "concurrency.adaptive.window_samples", 1, 1'000'000)) {
          ad.window_samples = static_cast<std::uint32_t>(*v);
        }
      }
      if (const yaml::Node d = a["window_duration"]) {
        if (ad.algorithm != AdaptiveConcurrency::Algorithm::Gradient) {
          r.error(d, "concurrency.adaptive.window_duration applies only to gradient");
        } else if (auto v = r.duration(d, "concurrency.adaptive.window_duration", Millis(0))) {
          ad.window_duration = *v;
        }
      }
      if (ad.min > ad.max) {
        r.error(a, "concurrency.adaptive.min must not exceed concurrency.adaptive.max");
      } else if (ad.initial < ad.min || ad.initial > ad.max) {
        r.error(a, "concurrency.adaptive.initial must lie within [min, max] (" +
                       std::to_string(ad.min) + ".." + std::to_string(ad.max) + ")");
      }
      out.adaptive = ad;
    }
  }
  r.optional(n, "queue", out.queue,
             [&](const yaml::Node& v) { return r.integer(v, "concurrency.queue", 0, 1'000'000); });
  r.optional(n, "queue_timeout", out.queue_timeout, [&](const yaml::Node& v) {
    return r.duration(v, "concurrency.queue_timeout", kMinTimeout);
  });
  if (const yaml::Node q = n["queue_delay"]) {
    if (r.map(q, "concurrency.queue_delay", {"target", "interval"})) {
      QueueDelay qd;
      r.optional(q, "target", qd.target, [&](const yaml::Node& v) {
        return r.duration(v, "concurrency.queue_delay.target", kMinTimeout);
      });
      r.optional(q, "interval", qd.interval, [&](const yaml::Node& v) {
        return r.duration(v, "concurrency.queue_delay.interval", kMinTimeout);
      });
      if (out.queue == 0) {
        r.error(q, "concurrency.queue_delay needs a queue (concurrency.queue > 0)");
      } else if (qd.interval < qd.target) {
        r.error(q, "concurrency.queue_delay.interval must not be shorter than its target");
      }
      out.queue_delay = qd;
    }
  }
  r.optional(n, "status", out.status,
             [&](const yaml::Node& v) { return replyStatus(r, v, "concurrency.status"); });
  r.optional(n, "retry_after", out.retry_after, [&](const yaml::Node& v) {
    return r.duration(v, "concurrency.retry_after", Millis(0));
  });
}

std::string_view algorithmName(RateAlgorithm a) { return nameIn(kRateAlgorithms, a); }
std::string_view scopeName(RateLimit::Scope s) { return nameIn(kRateScopes, s); }
std::string_view onFailureName(RateLimit::OnFailure f) { return nameIn(kOnFailure, f); }

std::string_view algorithmName(AdaptiveConcurrency::Algorithm a) {
  return nameIn(kAdaptiveAlgorithms, a);
}

std::string keyPartText(const RateKeyPart& part) {
  switch (part.kind) {
    case RateKeyPart::Kind::ClientIp:
      return "client_ip";
    case RateKeyPart::Kind::Route:
      return "route";
    case RateKeyPart::Kind::Header:
      return "header:" + part.header;
  }
  return "?";
}

}  // namespace sluice::gateway::config
