#include "gateway/config/route_action_config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "gateway/config/value_template.h"

namespace sluice::gateway::config {

namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Fields sluice writes itself: framing and connection management, and Host (rewrite.host).
constexpr std::array<std::string_view, 9> kReserved = {
    "content-length", "transfer-encoding", "connection",       "keep-alive", "te",
    "trailer",        "upgrade",           "proxy-connection", "host"};

std::optional<std::string> fieldName(Reader& r, const yaml::Node& n, const std::string& what) {
  auto name = r.scalar(n, what + " name");
  if (!name) return std::nullopt;
  if (name->empty() || !std::all_of(name->begin(), name->end(), isTokenChar)) {
    r.error(n, what + ": '" + *name + "' is not a header name");
    return std::nullopt;
  }
  for (const auto reserved : kReserved) {
    if (iequal(*name, reserved)) {
      r.error(n, what + ": " + *name +
                     (reserved == "host" ? " is set with rewrite.host"
                                         : " is written by sluice (framing and connection)"));
      return std::nullopt;
    }
  }
  return name;
}

// A header value: a template (value_template.h) of visible text, spaces and tabs.
std::optional<std::string> fieldValue(Reader& r, const yaml::Node& n, const std::string& what) {
  auto value = r.scalar(n, what);
  if (!value) return std::nullopt;
  const bool clean = std::all_of(value->begin(), value->end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
  if (!clean) {
    r.error(n, what + " must not hold control characters (CR, LF, NUL, ...)");
    return std::nullopt;
  }
  if (auto why = templateError(*value)) {
    r.error(n, what + ": " + *why);
    return std::nullopt;
  }
  return value;
}

void readFields(Reader& r, const yaml::Node& m, const std::string& what,
                std::vector<std::pair<std::string, std::string>>& out) {
  if (!m.IsMap()) {
    r.error(m, what + " must be a mapping of header names to values, e.g. { x-env: gray }");
    return;
  }
  for (const auto& kv : m) {
    auto name = fieldName(r, kv.first, what);
    auto value = fieldValue(r, kv.second, what + "." + kv.first.Scalar());
    if (!name || !value) continue;
    if (std::any_of(out.begin(), out.end(),
                    [&](const auto& f) { return iequal(f.first, *name); })) {
      r.error(kv.first, what + ": " + *name + " is listed twice");
      continue;
    }
    out.emplace_back(std::move(*name), std::move(*value));
  }
}

std::optional<std::string> pathText(Reader& r, const yaml::Node& n, const std::string& what) {
  auto p = r.scalar(n, what);
  if (!p) return std::nullopt;
  const bool clean = std::all_of(p->begin(), p->end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f && c != '?' && c != '#';
  });
  if (p->empty() || p->front() != '/' || !clean) {
    r.error(n, what + " must start with '/' and hold no spaces, '?', '#' or control characters");
    return std::nullopt;
  }
  return p;
}

std::optional<std::string> hostText(Reader& r, const yaml::Node& n, const std::string& what) {
  auto h = r.scalar(n, what);
  if (!h) return std::nullopt;
  const bool clean = std::all_of(h->begin(), h->end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_' ||
           c == ':' || c == '[' || c == ']';
  });
  if (h->empty() || !clean) {
    r.error(n, what + " must be a host name or address, got '" + *h + "'");
    return std::nullopt;
  }
  return h;
}

}  // namespace

void readHeaderEdits(Reader& r, const yaml::Node& n, std::string_view what, HeaderEdits& out) {
  const std::string where(what);
  if (!r.map(n, where, {"remove", "set", "add"})) return;
  if (const yaml::Node rm = n["remove"]) {
    if (!rm.IsSequence()) {
      r.error(rm, where + ".remove must be a list of header names");
    } else {
      for (const auto& item : rm) {
        if (auto name = fieldName(r, item, where + ".remove")) out.remove.push_back(*name);
      }
    }
  }
  if (const yaml::Node s = n["set"]) readFields(r, s, where + ".set", out.set);
  if (const yaml::Node a = n["add"]) readFields(r, a, where + ".add", out.add);
}

void readRewrite(Reader& r, const yaml::Node& n, Rewrite& out) {
  if (!r.map(n, "rewrite", {"path_prefix", "host"})) return;
  if (const yaml::Node p = n["path_prefix"]) {
    out.path_prefix = pathText(r, p, "rewrite.path_prefix");
  }
  if (const yaml::Node h = n["host"]) out.host = hostText(r, h, "rewrite.host");
}

void readRedirect(Reader& r, const yaml::Node& n, Redirect& out) {
  if (!r.map(n, "redirect",
             {"status", "scheme", "host", "port", "path", "path_prefix", "strip_query"})) {
    return;
  }
  if (const yaml::Node s = n["status"]) {
    if (auto v = r.integer(s, "redirect.status", 301, 308)) {
      if (*v == 304 || *v == 305 || *v == 306) {
        r.error(s, "redirect.status must be 301, 302, 303, 307 or 308");
      } else {
        out.status = static_cast<int>(*v);
      }
    }
  }
  if (const yaml::Node s = n["scheme"]) {
    if (auto v = r.scalar(s, "redirect.scheme")) {
      if (*v == "http" || *v == "https") {
        out.scheme = *v;
      } else {
        r.error(s, "redirect.scheme must be http or https");
      }
    }
  }
  if (const yaml::Node h = n["host"]) out.host = hostText(r, h, "redirect.host");
  if (const yaml::Node p = n["port"]) {
    if (auto v = r.integer(p, "redirect.port", 1, 65535)) out.port = static_cast<std::uint16_t>(*v);
  }
  if (n["path"] && n["path_prefix"]) {
    r.error(n["path_prefix"], "redirect takes path or path_prefix, not both");
  } else if (const yaml::Node p = n["path"]) {
    out.path = pathText(r, p, "redirect.path");
  } else if (const yaml::Node pp = n["path_prefix"]) {
    out.path_prefix = pathText(r, pp, "redirect.path_prefix");
  }
  if (const yaml::Node q = n["strip_query"]) {
    if (auto v = r.boolean(q, "redirect.strip_query")) out.strip_query = *v;
  }
}

void readDirectResponse(Reader& r, const yaml::Node& n, DirectResponse& out) {
  if (!r.map(n, "direct_response", {"status", "body", "headers"})) return;
  if (const yaml::Node s = n["status"]) {
    if (auto v = r.integer(s, "direct_response.status", 200, 599)) {
      out.status = static_cast<int>(*v);
    }
  }
  if (const yaml::Node b = n["body"]) {
    if (auto v = r.scalar(b, "direct_response.body")) {
      if (v->size() > DirectResponse::kMaxBody) {
        r.error(b, "direct_response.body is " + std::to_string(v->size()) +
                       " bytes (at most 64 KiB: serve larger files from an upstream)");
      } else {
        out.body = *v;
      }
    }
  }
  if (const yaml::Node h = n["headers"]) readFields(r, h, "direct_response.headers", out.headers);
}

void checkRouteActions(Reader& r, const yaml::Node& n, const Route& route) {
  if (n["redirect"] && n["direct_response"]) {
    r.error(n["direct_response"], "route takes redirect or direct_response, not both");
  }
  if (route.answersItself()) {
    const char* action = route.redirect ? "redirect" : "direct_response";
    for (const char* key : {"cluster", "split", "split_key", "subset", "rewrite", "request_headers",
                            "retry", "hash_key", "circuit_breaker", "mirror", "canary"}) {
      if (const yaml::Node v = n[key]) {
        std::string message(key);
        message += " has no effect on a route with ";
        message += action;
        message += " (it answers itself, with no upstream)";
        r.error(v, std::move(message));
      }
    }
  }
  if (route.match.path_prefix || route.match.path) return;
  // What a prefix replaces is what match.path_prefix or match.path matched.
  if (route.rewrite.path_prefix) {
    r.error(n["rewrite"]["path_prefix"], "rewrite.path_prefix needs match.path_prefix or path");
  }
  if (route.redirect && route.redirect->path_prefix) {
    r.error(n["redirect"]["path_prefix"], "redirect.path_prefix needs match.path_prefix or path");
  }
}

}  // namespace sluice::gateway::config
