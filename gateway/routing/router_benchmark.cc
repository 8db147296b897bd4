// Routing cost per request on a 100-route table, the request taking the last route (first match
// wins, so this is the worst case):
//   host_path      distinct path prefixes: each route is rejected on its path
//   header         one path, a tenant header: each route scans the request's fields
//   cookie         one path, a tenant cookie: each route scans the Cookie field's pairs
//   query          one path, a tenant query parameter: each route %-decodes the query
//   path_regex     distinct RE2 path patterns: each route runs its regex
// bench/ measures host/path against header matching end to end under wrk.
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "gateway/http/request_parser.h"
#include "gateway/routing/router.h"

namespace sluice::gateway::routing {
namespace {

using Kind = config::ValueMatch::Kind;

const std::string kRequest =
    "GET /svc99/items?page=2&tenant=t99 HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "X-Tenant: t99\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; tenant=t99\r\n"
    "\r\n";

enum class Table { HostPath, Header, Cookie, Query, PathRegex };

std::vector<config::Route> table(Table kind) {
  std::vector<config::Route> routes(100);
  for (std::size_t i = 0; i < routes.size(); ++i) {
    config::RouteMatch& m = routes[i].match;
    const std::string n = std::to_string(i);
    m.host = "shop.example.com";
    switch (kind) {
      case Table::HostPath:
        m.path_prefix = "/svc" + n + "/";
        break;
      case Table::Header:
        m.path_prefix = "/svc99/";
        m.headers.push_back({"x-tenant", Kind::Exact, "t" + n, false, false});
        break;
      case Table::Cookie:
        m.path_prefix = "/svc99/";
        m.cookies.push_back({"tenant", Kind::Exact, "t" + n, false, false});
        break;
      case Table::Query:
        m.path_prefix = "/svc99/";
        m.query.push_back({"tenant", Kind::Exact, "t" + n, false, false});
        break;
      case Table::PathRegex:
        m.path_regex = "/svc" + n + "/[a-z]+";
        break;
    }
  }
  return routes;
}

void BM_Route100(benchmark::State& state, Table kind) {
  const Router router(table(kind));
  http::RequestHead head;
  http::RequestParser parser(head, http::RequestLimits{});
  if (!parser.parseHead(kRequest).done) state.SkipWithError("request does not parse");
  for (auto _ : state) {
    auto r = router.match(head);
    benchmark::DoNotOptimize(r);
  }
  if (router.match(head) != 99U) state.SkipWithError("the request must take the last route");
}

BENCHMARK_CAPTURE(BM_Route100, host_path, Table::HostPath);
BENCHMARK_CAPTURE(BM_Route100, header, Table::Header);
BENCHMARK_CAPTURE(BM_Route100, cookie, Table::Cookie);
BENCHMARK_CAPTURE(BM_Route100, query, Table::Query);
BENCHMARK_CAPTURE(BM_Route100, path_regex, Table::PathRegex);

}  // namespace
}  // namespace sluice::gateway::routing
