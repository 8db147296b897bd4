// Readers of what a route does besides choosing a cluster: header edits (request_headers,
// response_headers), `rewrite`, and the routes that answer themselves (`redirect`,
// `direct_response`). docs/configuration.md, "Rewrites and route actions", has the reference.
// Internal to gateway/config.
#pragma once

#include <string_view>

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

// `what`: "request_headers" or "response_headers".
void readHeaderEdits(Reader& r, const yaml::Node& n, std::string_view what, HeaderEdits& out);
void readRewrite(Reader& r, const yaml::Node& n, Rewrite& out);
void readRedirect(Reader& r, const yaml::Node& n, Redirect& out);
void readDirectResponse(Reader& r, const yaml::Node& n, DirectResponse& out);

// The checks across a route's keys: an action route takes no cluster and nothing that only
// applies to forwarding; a prefix rewrite needs a path match to replace. `n`: the route's node.
void checkRouteActions(Reader& r, const yaml::Node& n, const Route& route);

}  // namespace sluice::gateway::config
