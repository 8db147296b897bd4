#include "gateway/config/health_check_config.h"

#include <algorithm>

namespace sluice::gateway::config {

namespace {

constexpr Millis kMinInterval{10};

// A request target the checker can put on its request line as it is: origin-form, visible
// ASCII only (no spaces, no controls), so nothing can be smuggled into the request.
bool validPath(std::string_view p) {
  return !p.empty() && p.front() == '/' && p.size() <= 2048 &&
         std::all_of(p.begin(), p.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool validHost(std::string_view h) {
  return !h.empty() && h.size() <= 255 && std::all_of(h.begin(), h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == ':' || c == '[' || c == ']' || c == '_';
  });
}

std::optional<HealthCheck::StatusRange> statusRange(Reader& r, const yaml::Node& n) {
  const auto s = r.scalar(n, "health_check.expected_statuses item");
  if (!s) return std::nullopt;
  const auto dash = s->find('-');
  const auto first = parseUnsigned<int>(std::string_view(*s).substr(0, dash));
  const auto last =
      dash == std::string::npos ? first : parseUnsigned<int>(std::string_view(*s).substr(dash + 1));
  if (!first || !last || *first < 100 || *last > 599 || *first > *last) {
    r.error(n, "health_check.expected_statuses item '" + *s +
                   "' must be a status (100-599) or a range like 200-299");
    return std::nullopt;
  }
  return HealthCheck::StatusRange{*first, *last};
}

}  // namespace

void readHealthCheck(Reader& r, const yaml::Node& n, HealthCheck& out) {
  if (!r.map(n, "health_check",
             {"type", "path", "host", "expected_statuses", "interval", "jitter", "timeout",
              "unhealthy_threshold", "healthy_threshold"})) {
    return;
  }
  if (const yaml::Node t = n["type"]) {
    if (const auto s = r.scalar(t, "health_check.type")) {
      if (*s == "http") {
        out.type = HealthCheck::Type::Http;
      } else if (*s == "tcp") {
        out.type = HealthCheck::Type::Tcp;
      } else {
        r.error(t, "health_check.type must be http or tcp, got '" + *s + "'");
      }
    }
  }
  // The request's parts mean nothing to a TCP check: setting one there is a mistake.
  const auto http_only = [&](const char* key) {
    return r.keyWhere(n, key, out.type == HealthCheck::Type::Http, "health_check.",
                      "applies to type http only");
  };
  if (const auto p = http_only("path")) {
    if (const auto s = r.scalar(*p, "health_check.path")) {
      if (validPath(*s)) {
        out.path = *s;
      } else {
        r.error(*p,
                "health_check.path must start with '/' and hold visible ASCII only (no "
                "spaces), got '" +
                    *s + "'");
      }
    }
  }
  if (const auto h = http_only("host")) {
    if (const auto s = r.scalar(*h, "health_check.host")) {
      if (validHost(*s)) {
        out.host = *s;
      } else {
        r.error(*h, "health_check.host must be a host name or address[:port], got '" + *s + "'");
      }
    }
  }
  if (const auto e = http_only("expected_statuses")) {
    if (!e->IsSequence() || e->size() == 0) {
      r.error(*e, "health_check.expected_statuses must be a non-empty list");
    } else {
      out.expected_statuses.clear();
      for (const auto& item : *e) {
        if (auto range = statusRange(r, item)) out.expected_statuses.push_back(*range);
      }
    }
  }
  r.optional(n, "interval", out.interval, [&](const yaml::Node& v) {
    return r.duration(v, "health_check.interval", kMinInterval);
  });
  if (const yaml::Node j = n["jitter"]) {
    if (auto d = r.duration(j, "health_check.jitter", Millis(0))) out.jitter = *d;
  }
  r.optional(n, "timeout", out.timeout, [&](const yaml::Node& v) {
    return r.duration(v, "health_check.timeout", kMinTimeout);
  });
  const auto threshold = [&](const char* key, std::uint32_t& field) {
    r.optional(n, key, field, [&](const yaml::Node& v) {
      return r.integer(v, "health_check." + std::string(key), 1, 1000);
    });
  };
  threshold("unhealthy_threshold", out.unhealthy_threshold);
  threshold("healthy_threshold", out.healthy_threshold);
}

}  // namespace sluice::gateway::config
