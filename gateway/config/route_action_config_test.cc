// Route actions in the config: header edits, rewrites, redirects and direct responses - what
// loads, and each mistake refused with where it is.
#include "gateway/config/route_action_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/config/config_test_support.h"

namespace sluice::gateway::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A route `r` on its own: `body` is its keys after the name (cluster included or not).
std::string route(const std::string& body) {
  return "listeners: [{ name: p, address: 127.0.0.1:8080 }]\n"
         "clusters: [{ name: api, endpoints: [127.0.0.1:9000] }]\n"
         "routes:\n  - name: r\n" +
         body;
}

TEST(RouteActionConfig, ReadsEditsRewritesAndActions) {
  const Config c =
      loaded(route("    match: { path_prefix: /api/ }\n"
                   "    cluster: api\n"
                   "    rewrite: { path_prefix: /, host: backend.internal }\n"
                   "    request_headers: { remove: [x-debug], set: { x-env: gray }, add: { x-via: "
                   "\"${route}\" } }\n"
                   "    response_headers: { remove: [server] }\n"));
  const Route& r = c.routes.at(0);
  EXPECT_EQ(r.rewrite.path_prefix, "/");
  EXPECT_EQ(r.rewrite.host, "backend.internal");
  EXPECT_EQ(r.request_headers.remove, std::vector<std::string>{"x-debug"});
  EXPECT_THAT(r.request_headers.set,
              ElementsAre(std::pair<std::string, std::string>("x-env", "gray")));
  EXPECT_THAT(r.request_headers.add,
              ElementsAre(std::pair<std::string, std::string>("x-via", "${route}")));
  EXPECT_FALSE(r.answersItself());

  const Config d = loaded(route("    redirect: { scheme: https }\n"));
  ASSERT_TRUE(d.routes.at(0).redirect);
  EXPECT_EQ(d.routes.at(0).redirect->status, 301);
  EXPECT_TRUE(d.routes.at(0).answersItself());
  EXPECT_TRUE(d.routes.at(0).cluster.empty());

  const Config e = loaded(route("    direct_response: { body: ok }\n"));
  EXPECT_EQ(e.routes.at(0).direct_response->status, 200);
  EXPECT_EQ(e.routes.at(0).direct_response->body, "ok");
}

struct Refused {
  const char* name;
  std::string body;
  std::string problem;
};

class RouteActionConfigRefuses : public ::testing::TestWithParam<Refused> {};

TEST_P(RouteActionConfigRefuses, WithOneProblem) {
  EXPECT_THAT(problems(route(GetParam().body)), ElementsAre(HasSubstr(GetParam().problem)));
}

INSTANTIATE_TEST_SUITE_P(
    Table, RouteActionConfigRefuses,
    ::testing::Values(
        Refused{"unknown_variable",
                "    cluster: api\n    request_headers: { set: { a: \"${user}\" } }\n",
                "t.yaml:6:34: request_headers.set.a: unknown variable '${user}' (known: "
                "${client_ip}, ${request_id}, ${route}, ${cluster}, ${subset})"},
        Refused{"lone_dollar", "    cluster: api\n    response_headers: { add: { a: \"5$\" } }\n",
                "response_headers.add.a: a '$' starts a variable"},
        Refused{"unclosed", "    cluster: api\n    response_headers: { add: { a: \"${route\" } }\n",
                "'${' is not closed by '}'"},
        Refused{"newline_in_value",
                "    cluster: api\n    request_headers: { set: { a: \"x\\r\\nInjected: 1\" } }\n",
                "request_headers.set.a must not hold control characters"},
        Refused{"bad_name", "    cluster: api\n    request_headers: { remove: [\"a b\"] }\n",
                "request_headers.remove: 'a b' is not a header name"},
        Refused{"framing",
                "    cluster: api\n    response_headers: { set: { Content-Length: \"5\" } }\n",
                "Content-Length is written by sluice (framing and connection)"},
        Refused{"host_header", "    cluster: api\n    request_headers: { set: { host: x } }\n",
                "host is set with rewrite.host"},
        Refused{"twice", "    cluster: api\n    request_headers: { set: { a: \"1\", A: \"2\" } }\n",
                "request_headers.set: A is listed twice"},
        Refused{"prefix_without_path_match",
                "    cluster: api\n    rewrite: { path_prefix: /v2 }\n",
                "rewrite.path_prefix needs match.path_prefix or path"},
        Refused{
            "relative_prefix",
            "    match: { path_prefix: /a }\n    cluster: api\n    rewrite: { path_prefix: v2 }\n",
            "rewrite.path_prefix must start with '/'"},
        Refused{"bad_host", "    cluster: api\n    rewrite: { host: \"a/b\" }\n",
                "rewrite.host must be a host name or address, got 'a/b'"},
        Refused{"redirect_status", "    redirect: { status: 305 }\n",
                "redirect.status must be 301, 302, 303, 307 or 308"},
        Refused{"redirect_status_range", "    redirect: { status: 200 }\n",
                "redirect.status must be an integer from 301 to 308"},
        Refused{"redirect_scheme", "    redirect: { scheme: ftp }\n",
                "redirect.scheme must be http or https"},
        Refused{"redirect_path_and_prefix",
                "    match: { path_prefix: /a }\n    redirect: { path: /b, path_prefix: /c }\n",
                "redirect takes path or path_prefix, not both"},
        Refused{"redirect_and_cluster", "    cluster: api\n    redirect: { path: /b }\n",
                "t.yaml:5:14: cluster has no effect on a route with redirect"},
        Refused{"direct_and_retry",
                "    direct_response: { body: x }\n    retry: { attempts: 3 }\n",
                "retry has no effect on a route with direct_response"},
        Refused{"both_actions", "    redirect: { path: /b }\n    direct_response: { body: x }\n",
                "route takes redirect or direct_response, not both"},
        Refused{"direct_status", "    direct_response: { status: 100 }\n",
                "direct_response.status must be an integer from 200 to 599"},
        Refused{"direct_body_size",
                "    direct_response: { body: \"" + std::string(65537, 'x') + "\" }\n",
                "direct_response.body is 65537 bytes (at most 64 KiB"},
        Refused{"no_cluster_no_action", "    match: { path: /x }\n",
                "route is missing required key 'cluster'"}),
    [](const auto& test) { return std::string(test.param.name); });

}  // namespace
}  // namespace sluice::gateway::config
