// Routing (gateway/routing) on hostile request heads: host, path, query and cookie extraction,
// %-decoding and RE2 conditions, against a table that uses every kind of condition. The facts
// a request is matched on live in per-thread buffers reused by the next request, so each head
// is matched twice, with another head in between, and must get the same route both times.
#include <string>

#include "fuzz/fuzz_target.h"
#include "fuzz/request_head.h"
#include "gateway/config/loader.h"
#include "gateway/routing/router.h"

namespace {

constexpr std::string_view kRoutes = R"(
listeners: [{ name: l, address: 127.0.0.1:1 }]
clusters: [{ name: c, endpoints: [127.0.0.1:2] }]
routes:
  - { name: exact, cluster: c, match: { host: api.example.com, path: /v1/items } }
  - { name: wildcard, cluster: c, match: { host: "*.example.com", path_prefix: /v2/ } }
  - name: regex
    cluster: c
    match: { path_regex: "/users/[0-9]+(/orders/[a-z0-9-]{1,36})?", methods: [GET, PUT] }
  - name: headers
    cluster: c
    match:
      headers:
        - { name: x-env, exact: gray }
        - { name: x-tenant, prefix: "acme-" }
        - { name: user-agent, regex: ".*[Bb]ot.*" }
  - name: query
    cluster: c
    match: { query: [{ name: version, exact: "2 beta" }, { name: id, regex: "[0-9]{1,8}" }] }
  - name: cookies
    cluster: c
    match: { cookies: [{ name: session, prefix: "s-" }, { name: canary, exact: "1" }] }
  - { name: method, cluster: c, match: { methods: [DELETE, PATCH], path_prefix: /admin } }
  - { name: fallback, cluster: c }
)";

const sluice::gateway::routing::Router& router() {
  static const auto config = sluice::gateway::config::load(kRoutes, "router_fuzz.yaml");
  SLUICE_FUZZ_CHECK(config.ok());
  static const sluice::gateway::routing::Router table(config.config->routes);
  return table;
}

}  // namespace

SLUICE_FUZZ_TARGET(router) {
  using sluice::gateway::http::RequestHead;
  const auto& table = router();
  std::string buffer;
  RequestHead head;
  if (!sluice::fuzz::parseRequestHead(input, buffer, head)) return;
  const auto first = table.match(head);
  SLUICE_FUZZ_CHECK(first.has_value());  // the last route takes everything

  std::string other_buffer;
  RequestHead other;
  const bool parsed = sluice::fuzz::parseRequestHead(
      "GET /users/1?version=2+beta&id=7 HTTP/1.1\r\nHost: a.example.com\r\n"
      "Cookie: session=s-1; canary=1\r\n",
      other_buffer, other);
  SLUICE_FUZZ_CHECK(parsed);
  (void)table.match(other);
  SLUICE_FUZZ_CHECK(table.match(head) == first);
}
