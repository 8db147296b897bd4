// Reader of a route's `match` (docs/configuration.md, "Routes", has the reference), and the test
// behind `validate`'s warning about a route that an earlier one hides. Internal to gateway/config.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace re2 {
class RE2;
}

namespace sluice::gateway::config {

void readRouteMatch(Reader& r, const yaml::Node& m, RouteMatch& out);

// True when every request that `later` accepts is also accepted by `earlier`: with first match
// wins, a route whose match is covered by an earlier route's never sees a request. Sound but not
// complete: it never claims cover that does not hold, and misses some that does (two different
// regular expressions are never compared). `earlier_regex`: earlier.path_regex compiled (the
// caller compiles each route's once), or null.
[[nodiscard]] bool covers(const RouteMatch& earlier, const re2::RE2* earlier_regex,
                          const RouteMatch& later);

// Why `pattern` is not a valid route regex (route_regex.h), or nullopt when it is.
[[nodiscard]] std::optional<std::string> regexError(const std::string& pattern);
// `pattern` compiled as a route regex; null if it is not valid.
[[nodiscard]] std::unique_ptr<re2::RE2> compileRouteRegex(const std::string& pattern);

}  // namespace sluice::gateway::config
