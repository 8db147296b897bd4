#include "gateway/config/route_match_config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <re2/re2.h>
#include <utility>

#include "gateway/config/route_regex.h"

namespace sluice::gateway::config {

namespace {

std::string lowered(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Query parameter names are compared %-decoded, so any text without control characters is one.
bool isQueryName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
  });
}

bool isToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), isTokenChar);
}

enum class Source : std::uint8_t { Header, Query, Cookie };

void readValueMatch(Reader& r, const yaml::Node& n, std::string_view what, Source source,
                    ValueMatch& out) {
  const std::string where = std::string(what) + " match";
  if (!r.map(n, where, {"name", "exact", "prefix", "regex", "present", "ignore_case", "invert"})) {
    return;
  }
  if (r.require(n, "name", where)) {
    if (auto v = r.scalar(n["name"], std::string(what) + " name")) {
      // Header and cookie names are RFC 9110 / 6265 tokens.
      const bool ok = source == Source::Query ? isQueryName(*v) : isToken(*v);
      if (!ok) {
        r.error(n["name"], std::string(what) + " name '" + *v + "' is not a valid " +
                               std::string(what) + " name");
      } else {
        out.name = source == Source::Header ? lowered(*v) : *v;
      }
    }
  }
  static constexpr std::array<std::pair<std::string_view, ValueMatch::Kind>, 4> kKinds = {{
      {"exact", ValueMatch::Kind::Exact},
      {"prefix", ValueMatch::Kind::Prefix},
      {"regex", ValueMatch::Kind::Regex},
      {"present", ValueMatch::Kind::Present},
  }};
  int kinds = 0;
  for (const auto& [key, kind] : kKinds) {
    const yaml::Node v = n[key];
    if (!v) continue;
    if (++kinds > 1) {
      r.error(v, where + " takes one of exact, prefix, regex or present");
      continue;
    }
    out.kind = kind;
    if (kind == ValueMatch::Kind::Present) {
      if (auto b = r.boolean(v, where + ".present")) out.invert = !*b;
      continue;
    }
    auto s = r.scalar(v, where + "." + std::string(key));
    if (!s) continue;
    if (kind == ValueMatch::Kind::Regex) {
      if (auto e = regexError(*s)) r.error(v, where + ".regex: " + *e);
    } else if (kind == ValueMatch::Kind::Prefix && s->empty()) {
      r.error(v, where + ".prefix must not be empty (use present: true)");
    }
    out.value = *s;
  }
  if (kinds == 0) r.error(n, where + " needs one of exact, prefix, regex or present");
  if (const yaml::Node ic = n["ignore_case"]) {
    if (out.kind != ValueMatch::Kind::Exact && out.kind != ValueMatch::Kind::Prefix) {
      r.error(ic, where + ".ignore_case applies to exact and prefix only");
    } else if (auto b = r.boolean(ic, where + ".ignore_case")) {
      out.ignore_case = *b;
    }
  }
  if (const yaml::Node inv = n["invert"]) {
    if (auto b = r.boolean(inv, where + ".invert")) {
      if (*b && out.kind == ValueMatch::Kind::Present && out.invert) {
        r.error(inv, where + ": present: false cannot be inverted (write present: true)");
      } else if (*b) {
        out.invert = true;
      }
    }
  }
}

void readValueMatches(Reader& r, const yaml::Node& list, Source source,
                      std::vector<ValueMatch>& out) {
  const std::string_view what = source == Source::Header  ? "header"
                                : source == Source::Query ? "query parameter"
                                                          : "cookie";
  const std::string key = "match." + std::string(source == Source::Header  ? "headers"
                                                 : source == Source::Query ? "query"
                                                                           : "cookies");
  if (!list.IsSequence() || list.size() == 0) {
    r.error(list, key + " must be a non-empty list");
    return;
  }
  for (const auto& item : list) {
    ValueMatch m;
    readValueMatch(r, item, what, source, m);
    out.push_back(std::move(m));
  }
}

void readMethods(Reader& r, const yaml::Node& list, std::vector<std::string>& out) {
  if (!list.IsSequence() || list.size() == 0) {
    r.error(list, "match.methods must be a non-empty list, e.g. [GET, HEAD]");
    return;
  }
  static constexpr std::array<std::string_view, 9> kStandard = {
      "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (const auto& item : list) {
    auto m = r.scalar(item, "match.methods item");
    if (!m) continue;
    std::string upper = *m;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (m->empty() || !std::all_of(m->begin(), m->end(), isTokenChar)) {
      r.error(item, "match.methods: '" + *m + "' is not a method name");
    } else if (upper != *m &&
               std::find(kStandard.begin(), kStandard.end(), upper) != kStandard.end()) {
      // Methods are case-sensitive: "get" would never match what clients send.
      r.error(item, "match.methods: '" + *m + "' never matches " + upper +
                        " (methods are case-sensitive)");
    } else if (std::find(out.begin(), out.end(), *m) != out.end()) {
      r.error(item, "match.methods: '" + *m + "' appears twice");
    } else {
      out.push_back(*m);
    }
  }
}

// The host a `*.example.com` pattern requires a suffix of (".example.com"), or the exact host.
bool hostCovers(std::string_view earlier, std::string_view later) {
  if (earlier.empty() || earlier == later) return true;
  if (!startsWith(earlier, "*.") || later.empty()) return false;
  const std::string_view suffix = earlier.substr(1);  // ".example.com"
  // "*.a.example.com" and "a.example.com" both end in ".example.com" with something before it.
  const std::string_view bare = startsWith(later, "*.") ? later.substr(1) : later;
  return bare.size() > suffix.size() && bare.substr(bare.size() - suffix.size()) == suffix;
}

bool pathCovers(const RouteMatch& earlier, const RE2* earlier_regex, const RouteMatch& later) {
  if (earlier.path) return later.path == earlier.path;
  if (earlier.path_prefix) {
    const auto& p = *earlier.path_prefix;
    return (later.path && startsWith(*later.path, p)) ||
           (later.path_prefix && startsWith(*later.path_prefix, p));
  }
  if (earlier.path_regex) {
    if (later.path_regex == earlier.path_regex) return true;
    return later.path && earlier_regex != nullptr && RE2::FullMatch(*later.path, *earlier_regex);
  }
  return true;
}

// A condition of `earlier` that some condition of `later` implies.
bool implied(const ValueMatch& e, const std::vector<ValueMatch>& later) {
  return std::any_of(later.begin(), later.end(), [&](const ValueMatch& l) {
    if (l == e) return true;
    // "present" follows from any value condition on the same name.
    return l.name == e.name && e.kind == ValueMatch::Kind::Present && !e.invert && !l.invert;
  });
}

bool valuesCover(const std::vector<ValueMatch>& earlier, const std::vector<ValueMatch>& later) {
  return std::all_of(earlier.begin(), earlier.end(),
                     [&](const ValueMatch& e) { return implied(e, later); });
}

}  // namespace

std::optional<std::string> regexError(const std::string& pattern) {
  const RE2 re(pattern, routeRegexOptions());
  if (re.ok()) return std::nullopt;
  return re.error();
}

std::unique_ptr<RE2> compileRouteRegex(const std::string& pattern) {
  auto re = std::make_unique<RE2>(pattern, routeRegexOptions());
  if (!re->ok()) return nullptr;
  return re;
}

void readRouteMatch(Reader& r, const yaml::Node& m, RouteMatch& out) {
  if (!r.map(m, "route match",
             {"host", "path_prefix", "path", "path_regex", "methods", "headers", "query",
              "cookies"})) {
    return;
  }
  if (const yaml::Node h = m["host"]) {
    if (auto v = r.scalar(h, "match.host")) {
      const std::string host = lowered(*v);
      const std::string_view bare =
          startsWith(host, "*.") ? std::string_view(host).substr(2) : std::string_view(host);
      if (bare.empty() || bare.find_first_of("*/ @") != std::string_view::npos) {
        r.error(h, "match.host must be a host name, optionally with a leading '*.' wildcard");
      } else {
        out.host = host;
      }
    }
  }
  int paths = 0;
  for (const char* key : {"path_prefix", "path", "path_regex"}) {
    const yaml::Node p = m[key];
    if (!p) continue;
    const std::string what = std::string("match.") + key;
    if (++paths > 1) {
      r.error(p, "route match takes one of path, path_prefix and path_regex");
      continue;
    }
    auto v = r.scalar(p, what);
    if (!v) continue;
    if (std::string_view(key) == "path_regex") {
      if (auto e = regexError(*v)) {
        r.error(p, what + ": " + *e);
      } else {
        out.path_regex = *v;
      }
    } else if (v->empty() || v->front() != '/') {
      r.error(p, what + " must start with '/'");
    } else if (std::string_view(key) == "path") {
      out.path = *v;
    } else {
      out.path_prefix = *v;
    }
  }
  if (const yaml::Node v = m["methods"]) readMethods(r, v, out.methods);
  if (const yaml::Node v = m["headers"]) readValueMatches(r, v, Source::Header, out.headers);
  if (const yaml::Node v = m["query"]) readValueMatches(r, v, Source::Query, out.query);
  if (const yaml::Node v = m["cookies"]) readValueMatches(r, v, Source::Cookie, out.cookies);
}

bool covers(const RouteMatch& earlier, const RE2* earlier_regex, const RouteMatch& later) {
  if (!hostCovers(earlier.host, later.host) || !pathCovers(earlier, earlier_regex, later)) {
    return false;
  }
  if (!earlier.methods.empty()) {
    if (later.methods.empty()) return false;
    for (const auto& m : later.methods) {
      if (std::find(earlier.methods.begin(), earlier.methods.end(), m) == earlier.methods.end()) {
        return false;
      }
    }
  }
  return valuesCover(earlier.headers, later.headers) && valuesCover(earlier.query, later.query) &&
         valuesCover(earlier.cookies, later.cookies);
}

}  // namespace sluice::gateway::config
