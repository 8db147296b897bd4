// Chooses the route for a request: the first route, in config order, whose match accepts it
// (request_matcher.h has the rules). A route without match accepts everything. Route tables are
// matched linearly, with no allocation per request.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/http/head.h"
#include "gateway/routing/request_matcher.h"

namespace sluice::gateway::routing {

class Router {
 public:
  explicit Router(const std::vector<config::Route>& routes);

  [[nodiscard]] std::optional<std::size_t> match(const http::RequestHead& head) const;

 private:
  std::vector<RequestMatcher> routes_;
};

}  // namespace sluice::gateway::routing
