#include "gateway/config/breaker_config.h"

#include <algorithm>
#include <cctype>
#include <iterator>

namespace sluice::gateway::config {

namespace {

// Fields sluice writes itself in a local reply, or that describe the connection or framing.
bool isReservedField(std::string_view name) {
  static constexpr std::string_view kReserved[] = {
      "content-length", "transfer-encoding", "connection",   "keep-alive",  "upgrade", "te",
      "trailer",        "proxy-connection",  "content-type", "x-request-id"};
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(std::begin(kReserved), std::end(kReserved), lower) != std::end(kReserved);
}

std::optional<int> status(Reader& r, const yaml::Node& n, std::string_view what, int min) {
  if (auto v = r.integer(n, what, static_cast<std::uint64_t>(min), 599)) {
    return static_cast<int>(*v);
  }
  return std::nullopt;
}

void readFallback(Reader& r, const yaml::Node& n, Fallback& out) {
  if (!r.map(n, "circuit_breaker.fallback",
             {"status", "body", "content_type", "headers", "cache", "cluster"})) {
    return;
  }
  r.optional(n, "status", out.status,
             [&](const yaml::Node& v) { return status(r, v, "fallback.status", 200); });
  if (const yaml::Node b = n["body"]) {
    if (auto s = r.scalar(b, "fallback.body")) out.body = *s;
  }
  if (const yaml::Node ct = n["content_type"]) {
    if (auto s = r.scalar(ct, "fallback.content_type")) {
      if (s->empty() || s->find_first_of("\r\n") != std::string::npos) {
        r.error(ct, "fallback.content_type must be a non-empty value without CR or LF");
      } else {
        out.content_type = *s;
      }
    }
  }
  if (const yaml::Node h = n["headers"]) {
    if (!h.IsMap()) {
      r.error(h, "fallback.headers must be a mapping of field names to values");
    } else {
      for (const auto& kv : h) {
        auto name = r.name(kv.first, "fallback header name");
        auto value = r.scalar(kv.second, "fallback header value");
        if (!name || !value) continue;
        if (value->find_first_of("\r\n") != std::string::npos) {
          r.error(kv.second, "fallback header value must not contain CR or LF");
          continue;
        }
        if (isReservedField(*name)) {
          r.error(kv.first, "fallback header '" + *name +
                                "' is set by sluice (framing, connection and content type "
                                "are not configurable here; use fallback.content_type)");
          continue;
        }
        out.headers.emplace_back(*name, *value);
      }
    }
  }
  if (const yaml::Node c = n["cache"]) {
    if (c.IsScalar()) {
      if (auto v = r.boolean(c, "fallback.cache")) out.cache = *v;
    } else if (r.map(c, "fallback.cache", {"entries", "max_body", "max_bytes"})) {
      out.cache = true;
      r.optional(c, "entries", out.cache_entries, [&](const yaml::Node& v) {
        return r.integer(v, "fallback.cache.entries", 1, 1'000'000);
      });
      r.optional(c, "max_body", out.cache_max_body,
                 [&](const yaml::Node& v) { return r.size(v, "fallback.cache.max_body", 1); });
      r.optional(c, "max_bytes", out.cache_max_bytes,
                 [&](const yaml::Node& v) { return r.size(v, "fallback.cache.max_bytes", 1); });
    }
  }
  if (const yaml::Node c = n["cluster"]) {
    if (auto s = r.name(c, "fallback.cluster")) out.cluster = *s;
  }
  if (out.cluster && (out.cache || n["status"] || n["body"] || n["headers"])) {
    r.error(n,
            "fallback.cluster forwards to another cluster: it takes no status, body, headers "
            "or cache");
  }
}

void readShare(Reader& r, const yaml::Node& n, CircuitBreaker& out) {
  if (const yaml::Node sh = n["share"]) {
    if (auto v = r.scalar(sh, "circuit_breaker.share")) {
      if (*v == "redis") {
        out.share = CircuitBreaker::Share::Redis;
      } else if (*v == "none") {
        out.share = CircuitBreaker::Share::None;
      } else {
        r.error(sh, "unknown circuit_breaker.share '" + *v + "' (known: none, redis)");
      }
    }
  }
  if (const yaml::Node m = n["share_mode"]) {
    if (auto v = r.scalar(m, "circuit_breaker.share_mode")) {
      if (*v == "authoritative") {
        out.share_mode = CircuitBreaker::ShareMode::Authoritative;
      } else if (*v == "hint") {
        out.share_mode = CircuitBreaker::ShareMode::Hint;
      } else {
        r.error(m, "unknown circuit_breaker.share_mode '" + *v + "' (known: authoritative, hint)");
      }
    }
    if (out.share != CircuitBreaker::Share::Redis) {
      r.error(m, "circuit_breaker.share_mode applies only with share: redis");
    }
  }
}

}  // namespace

std::string_view shareModeName(CircuitBreaker::ShareMode m) {
  return m == CircuitBreaker::ShareMode::Hint ? "hint" : "authoritative";
}

resilience::CircuitBreaker::Settings breakerSettings(const CircuitBreaker& c) {
  using Settings = resilience::CircuitBreaker::Settings;
  Settings s;
  if (c.window_time) {
    s.window_type = resilience::CircuitBreaker::WindowType::TimeBased;
    s.window_duration = *c.window_time;
    s.window_buckets = 10;
  } else {
    s.window_type = resilience::CircuitBreaker::WindowType::CountBased;
    s.window_size = c.window;
  }
  s.minimum_calls = c.minimum_calls;
  s.failure_rate_threshold = c.failure_rate;
  s.slow_call_rate_threshold = c.slow_call_rate;
  if (c.slow_call_duration) s.slow_call_duration = *c.slow_call_duration;
  s.open_duration = c.open_duration;
  s.open_duration_multiplier = c.open_duration_multiplier;
  s.max_open_duration = c.max_open_duration;
  s.half_open_probes = c.half_open_probes;
  return s;
}

void readCircuitBreaker(Reader& r, const yaml::Node& n, CircuitBreaker& out) {
  if (!r.map(n, "circuit_breaker",
             {"window", "minimum_calls", "failure_rate", "slow_call_rate", "slow_call_duration",
              "open_duration", "open_duration_multiplier", "max_open_duration", "half_open_probes",
              "failure_statuses", "fallback", "share", "share_mode"})) {
    return;
  }
  readShare(r, n, out);
  if (const yaml::Node w = n["window"]) {
    // A count ("100": the last 100 calls) or a duration ("10s": the calls of the last 10 s).
    const auto s = r.scalar(w, "circuit_breaker.window");
    if (s && parseUnsigned<std::uint32_t>(*s)) {
      if (auto v = r.integer(w, "circuit_breaker.window (calls)", 1,
                             resilience::CircuitBreaker::kMaxWindowSize)) {
        out.window = static_cast<std::uint32_t>(*v);
      }
    } else if (s) {
      if (auto d =
              r.duration(w, "circuit_breaker.window (a call count or a duration)", Millis(100))) {
        out.window_time = *d;
      }
    }
  }
  r.optional(n, "minimum_calls", out.minimum_calls, [&](const yaml::Node& v) {
    return r.integer(v, "circuit_breaker.minimum_calls", 1,
                     resilience::CircuitBreaker::kMaxWindowSize);
  });
  r.optional(n, "failure_rate", out.failure_rate, [&](const yaml::Node& v) {
    return r.decimal(v, "circuit_breaker.failure_rate (percent)", 0, 100);
  });
  r.optional(n, "slow_call_rate", out.slow_call_rate, [&](const yaml::Node& v) {
    return r.decimal(v, "circuit_breaker.slow_call_rate (percent)", 0, 100);
  });
  if (const yaml::Node d = n["slow_call_duration"]) {
    if (auto v = r.duration(d, "circuit_breaker.slow_call_duration", kMinTimeout)) {
      out.slow_call_duration = *v;
    }
  }
  r.optional(n, "open_duration", out.open_duration, [&](const yaml::Node& v) {
    return r.duration(v, "circuit_breaker.open_duration", kMinTimeout);
  });
  r.optional(n, "open_duration_multiplier", out.open_duration_multiplier, [&](const yaml::Node& v) {
    return r.decimal(v, "circuit_breaker.open_duration_multiplier", 1, 100);
  });
  r.optional(n, "max_open_duration", out.max_open_duration, [&](const yaml::Node& v) {
    return r.duration(v, "circuit_breaker.max_open_duration", kMinTimeout);
  });
  r.optional(n, "half_open_probes", out.half_open_probes, [&](const yaml::Node& v) {
    return r.integer(v, "circuit_breaker.half_open_probes", 1, 1000);
  });
  if (const yaml::Node fs = n["failure_statuses"]) {
    if (!fs.IsSequence() || fs.size() == 0) {
      r.error(fs, "circuit_breaker.failure_statuses must be a non-empty list of statuses or 5xx");
    } else {
      for (const auto& item : fs) {
        const auto s = r.scalar(item, "failure_statuses entry");
        if (!s) continue;
        if (*s == "5xx") {
          for (int st = 500; st <= 599; ++st) out.failure_statuses.push_back(st);
        } else if (auto st = status(r, item, "failure_statuses entry (a status or 5xx)", 400)) {
          out.failure_statuses.push_back(*st);
        }
      }
    }
  }
  std::sort(out.failure_statuses.begin(), out.failure_statuses.end());
  out.failure_statuses.erase(std::unique(out.failure_statuses.begin(), out.failure_statuses.end()),
                             out.failure_statuses.end());
  if (out.failure_statuses.empty()) {
    for (int st = 500; st <= 599; ++st) out.failure_statuses.push_back(st);
  }
  if (const yaml::Node f = n["fallback"]) readFallback(r, f, out.fallback);
  if (!out.window_time && out.minimum_calls > out.window) {
    r.error(n, "circuit_breaker.minimum_calls (" + std::to_string(out.minimum_calls) +
                   ") cannot exceed the window (" + std::to_string(out.window) + " calls)");
  } else if (out.max_open_duration < out.open_duration) {
    r.error(n, "circuit_breaker.max_open_duration must be at least open_duration");
  } else if (auto why = resilience::CircuitBreaker::validate(breakerSettings(out))) {
    r.error(n, "circuit_breaker: " + *why);
  }
}

void readFault(Reader& r, const yaml::Node& n, Fault& out) {
  if (!r.map(n, "fault", {"delay", "abort"})) return;
  if (const yaml::Node d = n["delay"]) {
    if (r.map(d, "fault.delay", {"duration", "percent"}) &&
        r.require(d, "duration", "fault.delay")) {
      r.optional(d, "duration", out.delay, [&](const yaml::Node& v) {
        return r.duration(v, "fault.delay.duration", kMinTimeout);
      });
      out.delay_percent = 100;
      r.optional(d, "percent", out.delay_percent,
                 [&](const yaml::Node& v) { return r.decimal(v, "fault.delay.percent", 0, 100); });
    }
  }
  if (const yaml::Node a = n["abort"]) {
    if (r.map(a, "fault.abort", {"status", "percent"}) && r.require(a, "status", "fault.abort")) {
      r.optional(a, "status", out.abort_status,
                 [&](const yaml::Node& v) { return status(r, v, "fault.abort.status", 200); });
      out.abort_percent = 100;
      r.optional(a, "percent", out.abort_percent,
                 [&](const yaml::Node& v) { return r.decimal(v, "fault.abort.percent", 0, 100); });
    }
  }
  if (!n["delay"] && !n["abort"]) r.error(n, "fault needs a delay, an abort or both");
}

}  // namespace sluice::gateway::config
