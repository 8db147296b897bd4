#include "gateway/routing/router.h"

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

}  // namespace

std::string_view hostWithoutPort(std::string_view host) noexcept {
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  const auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

Router::Router(const std::vector<config::Route>& routes) {
  routes_.reserve(routes.size());
  for (const auto& r : routes) {
    Compiled c;
    if (r.match.host.rfind("*.", 0) == 0) {
      c.wildcard = true;
      c.host = r.match.host.substr(1);  // ".example.com"
    } else {
      c.host = r.match.host;
    }
    if (r.match.path) {
      c.kind = Compiled::PathKind::Exact;
      c.path = *r.match.path;
    } else if (r.match.path_prefix) {
      c.kind = Compiled::PathKind::Prefix;
      c.path = *r.match.path_prefix;
    }
    routes_.push_back(std::move(c));
  }
}

std::optional<std::size_t> Router::match(std::string_view host,
                                         std::string_view path) const noexcept {
  const std::string_view bare = hostWithoutPort(host);
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const Compiled& c = routes_[i];
    if (!c.host.empty()) {
      if (c.wildcard) {
        if (bare.size() <= c.host.size() ||
            !equalsLower(bare.substr(bare.size() - c.host.size()), c.host)) {
          continue;
        }
      } else if (!equalsLower(bare, c.host)) {
        continue;
      }
    }
    switch (c.kind) {
      case Compiled::PathKind::Any:
        return i;
      case Compiled::PathKind::Exact:
        if (path == c.path) return i;
        break;
      case Compiled::PathKind::Prefix:
        if (path.substr(0, c.path.size()) == c.path) return i;
        break;
    }
  }
  return std::nullopt;
}

}  // namespace sluice::gateway::routing
