#include "gateway/routing/request_matcher.h"

#include <algorithm>
#include <re2/re2.h>
#include <stdexcept>

#include "gateway/config/route_regex.h"

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
  auto re = std::make_unique<re2::RE2>(pattern, config::routeRegexOptions());
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

namespace {

// Appends `in` %-decoded to `out` ('+' read as a space); on a bad escape, leaves `out` as it
// was and returns false.
bool appendDecoded(std::string_view in, std::string& out) {
  const std::size_t start = out.size();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c != '%') {
      out.push_back(c);
    } else {
      const int hi = i + 2 < in.size() ? hexValue(in[i + 1]) : -1;
      const int lo = i + 2 < in.size() ? hexValue(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        out.resize(start);
        return false;
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return true;
}

}  // namespace

bool decodeQueryComponent(std::string_view in, std::string& out) {
  out.clear();
  return appendDecoded(in, out);
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
  const auto compile_all = [](const std::vector<config::ValueMatch>& in, std::vector<Value>& out) {
    for (const auto& spec : in) {
      Value v{spec, nullptr};
      if (spec.kind == config::ValueMatch::Kind::Regex) v.regex = compile(spec.value);
      out.push_back(std::move(v));
    }
  };
  compile_all(m.headers, headers_);
  compile_all(m.query, query_);
  compile_all(m.cookies, cookies_);
}

RequestMatcher::~RequestMatcher() = default;
RequestMatcher::RequestMatcher(RequestMatcher&&) noexcept = default;
RequestMatcher& RequestMatcher::operator=(RequestMatcher&&) noexcept = default;

// The per-thread buffers behind Facts.
struct RequestMatcher::Facts::Buffers {
  struct At {  // where a query pair's name and value are in `decoded`
    std::size_t name_at, name_len, value_at, value_len;
    bool bad_value;
  };
  std::string host;
  std::string decoded;  // the query's names and values, decoded end to end
  std::vector<At> at;
  std::vector<RequestMatcher::Pair> query;
  std::vector<RequestMatcher::Pair> cookies;
  std::vector<std::string_view> header;  // values of Facts::header_name_
};

namespace {

RequestMatcher::Facts::Buffers& buffers() {
  thread_local RequestMatcher::Facts::Buffers b;
  return b;
}

}  // namespace

RequestMatcher::Facts::Facts(const http::RequestHead& head)
    : head_(head), b_(buffers()), path_(head.path()) {
  auto& b = b_;
  const std::string_view bare = hostWithoutPort(head.host);
  b.host.resize(bare.size());
  std::transform(bare.begin(), bare.end(), b.host.begin(), lower);
  host_ = b.host;
}

const std::vector<RequestMatcher::Pair>& RequestMatcher::Facts::query() const {
  auto& b = b_;
  if (query_read_) return b.query;
  query_read_ = true;
  b.query.clear();
  b.decoded.clear();
  const std::string_view target = head_.target;
  const auto q = target.find('?');
  if (q == std::string_view::npos) return b.query;
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  // Decoded text goes end to end into one buffer, which may move as it grows: offsets first,
  // views once it is complete.
  b.at.clear();
  forEachItem(query, '&', [&](std::string_view item) {
    const auto eq = item.find('=');
    const std::size_t name_at = b.decoded.size();
    if (!appendDecoded(item.substr(0, eq), b.decoded)) return false;  // no readable name: skipped
    const std::size_t value_at = b.decoded.size();
    const std::string_view raw = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    const bool bad = !appendDecoded(raw, b.decoded);
    b.at.push_back({name_at, value_at - name_at, value_at, b.decoded.size() - value_at, bad});
    return false;
  });
  const std::string_view all = b.decoded;
  for (const auto& a : b.at) {
    b.query.push_back(
        {all.substr(a.name_at, a.name_len), all.substr(a.value_at, a.value_len), a.bad_value});
  }
  return b.query;
}

const std::vector<std::string_view>& RequestMatcher::Facts::header(
    std::string_view lowercase_name) const {
  auto& b = b_;
  if (header_read_ && header_name_ == lowercase_name) return b.header;
  header_read_ = true;
  header_name_ = lowercase_name;
  b.header.clear();
  for (const auto& f : head_.fields) {
    if (equalsLower(f.name, lowercase_name)) b.header.push_back(f.value);
  }
  return b.header;
}

const std::vector<RequestMatcher::Pair>& RequestMatcher::Facts::cookies() const {
  auto& b = b_;
  if (cookies_read_) return b.cookies;
  cookies_read_ = true;
  b.cookies.clear();
  for (const auto& f : head_.fields) {
    if (f.id != http::Field::cookie) continue;
    forEachItem(f.value, ';', [&](std::string_view item) {
      const auto eq = item.find('=');
      if (eq == std::string_view::npos) return false;  // not a pair: skipped
      std::string_view v = trim(item.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      b.cookies.push_back({trim(item.substr(0, eq)), v, false});
      return false;
    });
  }
  return b.cookies;
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

bool RequestMatcher::headerHolds(const Value& c, const Facts& facts) {
  const auto& values = facts.header(c.spec.name);
  const bool holds =
      std::any_of(values.begin(), values.end(), [&](std::string_view v) { return c.test(v); });
  return holds != c.spec.invert;
}

bool RequestMatcher::queryHolds(const Value& c, const Facts& facts) {
  bool holds = false;
  for (const Pair& p : facts.query()) {
    if (p.name != c.spec.name) continue;
    if (p.bad_value) return false;  // unreadable: fails inverted or not
    holds = holds || c.test(p.value);
  }
  return holds != c.spec.invert;
}

bool RequestMatcher::cookieHolds(const Value& c, const Facts& facts) {
  bool holds = false;
  for (const Pair& p : facts.cookies()) {
    if (p.name == c.spec.name && c.test(p.value)) {
      holds = true;
      break;
    }
  }
  return holds != c.spec.invert;
}

bool RequestMatcher::matches(const Facts& facts) const {
  const http::RequestHead& head = facts.head();
  if (!hostMatches(facts.host()) || !pathMatches(facts.path())) return false;
  if (!methods_.empty() &&
      std::find(methods_.begin(), methods_.end(), head.method_text) == methods_.end()) {
    return false;
  }
  const auto all = [](const std::vector<Value>& conditions, auto&& holds) {
    return std::all_of(conditions.begin(), conditions.end(), holds);
  };
  return all(headers_, [&](const Value& c) { return headerHolds(c, facts); }) &&
         all(query_, [&](const Value& c) { return queryHolds(c, facts); }) &&
         all(cookies_, [&](const Value& c) { return cookieHolds(c, facts); });
}

}  // namespace sluice::gateway::routing
