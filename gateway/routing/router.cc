#include "gateway/routing/router.h"

namespace sluice::gateway::routing {

Router::Router(const std::vector<config::Route>& routes) {
  routes_.reserve(routes.size());
  for (const auto& r : routes) routes_.emplace_back(r.match);
}

std::optional<std::size_t> Router::match(const http::RequestHead& head) const {
  const RequestMatcher::Facts facts(head);
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i].matches(facts)) return i;
  }
  return std::nullopt;
}

}  // namespace sluice::gateway::routing
