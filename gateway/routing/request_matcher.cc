#include "gateway/routing/request_matcher.h"

#include <algorithm>
#include <re2/re2.h>
#include <stdexcept>

namespace sluice::gateway::routing {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool equalsLower(std::string_view candidate, std::string_view lowercase) {
  if (candidate.size() != lowercase.size()) return false;
  for (std::size_t i = 0; i < candidate.size(); ++i) {
    if (lower(candidate[i]) != lowercase[i]) return false;
  }
  return true;
}

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::unique_ptr<re2::RE2> compile(const std::string& pattern) {
  auto re = std::make_unique<re2::RE2>(pattern, re2::RE2::Quiet);
  if (!re->ok()) throw std::invalid_argument("invalid regex '" + pattern + "': " + re->error());
  return re;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Calls f(item) for each non-empty item of a `sep`-separated list, trimmed.
template <typename F>
void forEachItem(std::string_view list, char sep, F&& f) {
  while (!list.empty()) {
    const auto end = list.find(sep);
    const std::string_view item = trim(list.substr(0, end));
    if (!item.empty() && f(item)) return;
    if (end == std::string_view::npos) return;
    list.remove_prefix(end + 1);
  }
}

}  // namespace

std::string_view hostWithoutPort(std::string_view host) noexcept {
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  const auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

bool decodeQueryComponent(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c != '%') {
      out.push_back(c);
    } else {
      if (i + 2 >= in.size()) return false;
      const int hi = hexValue(in[i + 1]);
      const int lo = hexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return true;
}

bool RequestMatcher::Value::test(std::string_view v) const {
  using Kind = config::ValueMatch::Kind;
  switch (spec.kind) {
    case Kind::Present:
      return true;
    case Kind::Exact:
      return spec.ignore_case ? equalsIgnoringCase(v, spec.value) : v == spec.value;
    case Kind::Prefix: {
      if (v.size() < spec.value.size()) return false;
      const std::string_view head = v.substr(0, spec.value.size());
      return spec.ignore_case ? equalsIgnoringCase(head, spec.value) : head == spec.value;
    }
    case Kind::Regex:
      return re2::RE2::FullMatch(re2::StringPiece(v.data(), v.size()), *regex);
  }
  return false;
}

RequestMatcher::RequestMatcher(const config::RouteMatch& m) {
  if (m.host.rfind("*.", 0) == 0) {
    wildcard_ = true;
    host_ = m.host.substr(1);  // ".example.com"
  } else {
    host_ = m.host;
  }
  if (m.path) {
    path_kind_ = PathKind::Exact;
    path_ = *m.path;
  } else if (m.path_prefix) {
    path_kind_ = PathKind::Prefix;
    path_ = *m.path_prefix;
  } else if (m.path_regex) {
    path_kind_ = PathKind::Regex;
    path_regex_ = compile(*m.path_regex);
  }
  methods_ = m.methods;
  const auto compileAll = [](const std::vector<config::ValueMatch>& in, std::vector<Value>& out) {
    for (const auto& spec : in) {
      Value v{spec, nullptr};
      if (spec.kind == config::ValueMatch::Kind::Regex) v.regex = compile(spec.value);
      out.push_back(std::move(v));
    }
  };
  compileAll(m.headers, headers_);
  compileAll(m.query, query_);
  compileAll(m.cookies, cookies_);
}

RequestMatcher::~RequestMatcher() = default;
RequestMatcher::RequestMatcher(RequestMatcher&&) noexcept = default;
RequestMatcher& RequestMatcher::operator=(RequestMatcher&&) noexcept = default;

RequestMatcher::Facts::Facts(const http::RequestHead& head) : path(head.path()) {
  // Lowercased once here, so that each route compares bytes. Reused per thread: no allocation
  // once it has grown to the longest host seen.
  thread_local std::string lowered;
  const std::string_view bare = hostWithoutPort(head.host);
  lowered.resize(bare.size());
  std::transform(bare.begin(), bare.end(), lowered.begin(), lower);
  host = lowered;
}

bool RequestMatcher::hostMatches(std::string_view lowered) const {
  if (host_.empty()) return true;
  if (!wildcard_) return lowered == host_;
  return lowered.size() > host_.size() && lowered.substr(lowered.size() - host_.size()) == host_;
}

bool RequestMatcher::pathMatches(std::string_view path) const {
  switch (path_kind_) {
    case PathKind::Any:
      return true;
    case PathKind::Exact:
      return path == path_;
    case PathKind::Prefix:
      return path.substr(0, path_.size()) == path_;
    case PathKind::Regex:
      return re2::RE2::FullMatch(re2::StringPiece(path.data(), path.size()), *path_regex_);
  }
  return false;
}

bool RequestMatcher::headerHolds(const Value& c, const http::RequestHead& head) {
  bool holds = false;
  for (const auto& f : head.fields) {
    if (equalsLower(f.name, c.spec.name) && c.test(f.value)) {
      holds = true;
      break;
    }
  }
  return holds != c.spec.invert;
}

bool RequestMatcher::queryHolds(const Value& c, std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return c.spec.invert;
  std::string_view query = target.substr(q + 1);
  if (const auto hash = query.find('#'); hash != std::string_view::npos) {
    query = query.substr(0, hash);
  }
  // Reused per thread: decoding allocates nothing once the buffers have grown.
  thread_local std::string name;
  thread_local std::string value;
  bool holds = false;
  bool malformed = false;
  forEachItem(query, '&', [&](std::string_view item) {
    const auto eq = item.find('=');
    if (!decodeQueryComponent(item.substr(0, eq), name) || name != c.spec.name) return false;
    const std::string_view raw = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    if (!decodeQueryComponent(raw, value)) {
      malformed = true;
      return true;
    }
    holds = holds || c.test(value);
    return false;
  });
  if (malformed) return false;
  return holds != c.spec.invert;
}

bool RequestMatcher::cookieHolds(const Value& c, const http::RequestHead& head) {
  bool holds = false;
  for (const auto& f : head.fields) {
    if (f.id != http::Field::cookie) continue;
    forEachItem(f.value, ';', [&](std::string_view item) {
      const auto eq = item.find('=');
      if (eq == std::string_view::npos || trim(item.substr(0, eq)) != c.spec.name) return false;
      std::string_view v = trim(item.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      holds = c.test(v);
      return holds;
    });
    if (holds) break;
  }
  return holds != c.spec.invert;
}

bool RequestMatcher::matches(const http::RequestHead& head, const Facts& facts) const {
  if (!hostMatches(facts.host) || !pathMatches(facts.path)) return false;
  if (!methods_.empty() &&
      std::find(methods_.begin(), methods_.end(), head.method_text) == methods_.end()) {
    return false;
  }
  const auto all = [](const std::vector<Value>& conditions, auto&& holds) {
    return std::all_of(conditions.begin(), conditions.end(), holds);
  };
  return all(headers_, [&](const Value& c) { return headerHolds(c, head); }) &&
         all(query_, [&](const Value& c) { return queryHolds(c, head.target); }) &&
         all(cookies_, [&](const Value& c) { return cookieHolds(c, head); });
}

}  // namespace sluice::gateway::routing
