// Chooses the route for a request: the first route, in config order, whose match accepts the
// request's host and path. A route without match accepts everything.
//
// Host matching ignores case and the port; "*.example.com" matches any host ending in
// ".example.com" (not "example.com" itself). Paths match exactly (`path`) or by prefix
// (`path_prefix`), case-sensitively, against the path without the query. Route tables are short
// and matched linearly, with no allocation per request.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"

namespace sluice::gateway::routing {

class Router {
 public:
  explicit Router(const std::vector<config::Route>& routes);

  [[nodiscard]] std::optional<std::size_t> match(std::string_view host,
                                                 std::string_view path) const noexcept;

 private:
  struct Compiled {
    std::string host;       // lowercase; "" = any
    bool wildcard = false;  // host holds the ".example.com" suffix
    std::string path;
    enum class PathKind : std::uint8_t { Any, Exact, Prefix } kind = PathKind::Any;
  };
  std::vector<Compiled> routes_;
};

// "Example.COM:8080" -> compares as "example.com"; "[::1]:80" -> "[::1]".
[[nodiscard]] std::string_view hostWithoutPort(std::string_view host) noexcept;

}  // namespace sluice::gateway::routing
