// What a route does to a request besides choosing its upstream: the header edits it makes on
// the way up and down (their variables expanded per request), the path and Host rewrites, and
// the replies of the routes that answer themselves (redirect, direct_response).
#pragma once

#include <string>
#include <string_view>

#include "gateway/config/config.h"
#include "gateway/http/head.h"
#include "gateway/http/local_reply.h"

namespace sluice::gateway::proxy {

// The values a template's variables take for one request (config/value_template.h).
struct ActionVars {
  std::string_view client_ip;
  std::string_view request_id;
  std::string_view route;
  std::string_view cluster;     // "" for a route that answers itself
  std::string_view subset_key;  // the labels the request asked for (upstream/subset.h), or ""
};

// Appends `text` with its variables replaced. ${subset} reads "env=gray,zone=b".
void expandTemplate(std::string& out, std::string_view text, const ActionVars& vars);

// Appends "Name: value\r\n" for each field `edits` sets or adds.
void appendEditedFields(std::string& out, const config::HeaderEdits& edits, const ActionVars& vars);

// Appends `target` with the part of its path that `match` (path_prefix or path) matched
// replaced by `prefix`; the query stays.
void rewriteTarget(std::string& out, std::string_view target, const config::RouteMatch& match,
                   std::string_view prefix);

// The reply of a route with a redirect (`scheme`: the listener's, "http"): Location is the
// request's URL with the configured parts replaced; relative when neither scheme, host nor port
// is configured. A request without Host redirected to another scheme or port gets 400.
[[nodiscard]] http::LocalReply redirectReply(const config::Route& route,
                                             const http::RequestHead& head, std::string_view scheme,
                                             const ActionVars& vars);

// The reply of a route with a direct_response, its response_headers applied.
[[nodiscard]] http::LocalReply directReply(const config::Route& route, const ActionVars& vars);

}  // namespace sluice::gateway::proxy
