#include "gateway/config/route_match_config.h"

#include <re2/re2.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/config/config_test_support.h"

namespace sluice::gateway::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Kind = ValueMatch::Kind;

// withRoute() with `match` as the route's match (a flow or block mapping after "match: ").
std::string withMatch(const std::string& match) { return withRoute("    match: " + match + "\n"); }

TEST(RouteMatchConfig, ReadsEveryCondition) {
  const Config c = loaded(withRoute(R"(    match:
      host: API.example.com
      path_regex: "/users/[0-9]+"
      methods: [GET, HEAD, PURGE]
      headers:
        - { name: X-Env, exact: gray }
        - { name: x-tenant, prefix: Acme-, ignore_case: true }
        - { name: user-agent, regex: ".*bot.*", invert: true }
        - { name: x-debug, present: false }
        - { name: x-trace, present: true }
      query:
        - { name: "user id", exact: "a b" }
      cookies:
        - { name: canary, exact: "1" }
)"));
  const RouteMatch& m = c.routes.at(0).match;
  EXPECT_EQ(m.host, "api.example.com");
  EXPECT_EQ(m.path_regex, "/users/[0-9]+");
  EXPECT_FALSE(m.path || m.path_prefix);
  EXPECT_THAT(m.methods, ElementsAre("GET", "HEAD", "PURGE"));
  EXPECT_THAT(m.headers, ElementsAre(ValueMatch{"x-env", Kind::Exact, "gray", false, false},
                                     ValueMatch{"x-tenant", Kind::Prefix, "Acme-", true, false},
                                     ValueMatch{"user-agent", Kind::Regex, ".*bot.*", false, true},
                                     ValueMatch{"x-debug", Kind::Present, "", false, true},
                                     ValueMatch{"x-trace", Kind::Present, "", false, false}));
  EXPECT_THAT(m.query, ElementsAre(ValueMatch{"user id", Kind::Exact, "a b", false, false}));
  EXPECT_THAT(m.cookies, ElementsAre(ValueMatch{"canary", Kind::Exact, "1", false, false}));
}

struct BrokenMatch {
  const char* name;
  std::string match;
  std::string expected;  // the one problem, "t.yaml:line:col: message"
};

class RouteMatchConfigRejects : public ::testing::TestWithParam<BrokenMatch> {};

TEST_P(RouteMatchConfigRejects, WithItsPosition) {
  EXPECT_THAT(problems(withMatch(GetParam().match)), ElementsAre(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RouteMatchConfigRejects,
    ::testing::Values(
        BrokenMatch{"bad_regex", R"({ path_regex: "/a(b" })",
                    "t.yaml:10:26: match.path_regex: missing ): /a(b"},
        BrokenMatch{"two_paths", "{ path: /a, path_regex: /b }",
                    "t.yaml:10:36: route match takes one of path, path_prefix and path_regex"},
        BrokenMatch{"methods_not_a_list", "{ methods: GET }",
                    "t.yaml:10:23: match.methods must be a non-empty list, e.g. [GET, HEAD]"},
        BrokenMatch{"lowercase_method", "{ methods: [get] }",
                    "t.yaml:10:24: match.methods: 'get' never matches GET (methods are "
                    "case-sensitive)"},
        BrokenMatch{"bad_method", "{ methods: [\"GE T\"] }",
                    "t.yaml:10:24: match.methods: 'GE T' is not a method name"},
        BrokenMatch{"duplicate_method", "{ methods: [GET, GET] }",
                    "t.yaml:10:29: match.methods: 'GET' appears twice"},
        BrokenMatch{"headers_empty", "{ headers: [] }",
                    "t.yaml:10:23: match.headers must be a non-empty list"},
        BrokenMatch{"header_without_name", "{ headers: [{ exact: a }] }",
                    "t.yaml:10:24: header match is missing required key 'name'"},
        BrokenMatch{"header_bad_name", "{ headers: [{ name: \"x env\", present: true }] }",
                    "t.yaml:10:32: header name 'x env' is not a valid header name"},
        BrokenMatch{"header_no_condition", "{ headers: [{ name: x }] }",
                    "t.yaml:10:24: header match needs one of exact, prefix, regex or present"},
        BrokenMatch{"header_two_conditions", "{ headers: [{ name: x, exact: a, prefix: b }] }",
                    "t.yaml:10:53: header match takes one of exact, prefix, regex or present"},
        BrokenMatch{"header_bad_regex", "{ headers: [{ name: x, regex: \"[a\" }] }",
                    "t.yaml:10:42: header match.regex: missing ]: [a"},
        BrokenMatch{"empty_prefix", "{ headers: [{ name: x, prefix: \"\" }] }",
                    "t.yaml:10:43: header match.prefix must not be empty (use present: true)"},
        BrokenMatch{"ignore_case_on_regex",
                    "{ headers: [{ name: x, regex: a, ignore_case: true }] }",
                    "t.yaml:10:58: header match.ignore_case applies to exact and prefix only"},
        BrokenMatch{"inverted_absent", "{ headers: [{ name: x, present: false, invert: true }] }",
                    "t.yaml:10:59: header match: present: false cannot be inverted (write "
                    "present: true)"},
        BrokenMatch{"unknown_key", "{ headers: [{ name: x, exact: a, equals: a }] }",
                    "t.yaml:10:45: unknown key 'equals' in header match (known: name, exact, "
                    "prefix, regex, present, ignore_case, invert)"},
        BrokenMatch{"query_bad_name", "{ query: [{ name: \"a\\tb\", present: true }] }",
                    "t.yaml:10:30: query parameter name 'a\tb' is not a valid query parameter "
                    "name"},
        BrokenMatch{"cookie_bad_name", "{ cookies: [{ name: \"a;b\", exact: x }] }",
                    "t.yaml:10:32: cookie name 'a;b' is not a valid cookie name"},
        BrokenMatch{"unknown_match_key", "{ header: [] }",
                    "t.yaml:10:14: unknown key 'header' in route match (known: host, path_prefix, "
                    "path, path_regex, methods, headers, query, cookies)"}),
    [](const auto& p) { return std::string(p.param.name); });

RouteMatch parsed(const std::string& flow) {
  const Config c = loaded(withMatch(flow));
  return c.routes.empty() ? RouteMatch{} : c.routes[0].match;
}

struct CoverCase {
  const char* earlier;
  const char* later;
  bool covered;
};

class RouteMatchCovers : public ::testing::TestWithParam<CoverCase> {};

TEST_P(RouteMatchCovers, SoundlyDecidesWhetherALaterRouteIsHidden) {
  const RouteMatch earlier = parsed(GetParam().earlier);
  const auto regex = earlier.path_regex ? compileRouteRegex(*earlier.path_regex) : nullptr;
  EXPECT_EQ(covers(earlier, regex.get(), parsed(GetParam().later)), GetParam().covered)
      << GetParam().earlier << " before " << GetParam().later;
}

INSTANTIATE_TEST_SUITE_P(
    Table, RouteMatchCovers,
    ::testing::Values(
        CoverCase{"{}", "{ path: /a }", true}, CoverCase{"{ path: /a }", "{}", false},
        CoverCase{"{ path_prefix: /api }", "{ path_prefix: /api/v1 }", true},
        CoverCase{"{ path_prefix: /api/v1 }", "{ path_prefix: /api }", false},
        CoverCase{"{ path_prefix: /api }", "{ path: /api/x }", true},
        CoverCase{"{ path: /a }", "{ path: /a, methods: [GET] }", true},
        CoverCase{"{ path: /a }", "{ path: /b }", false},
        CoverCase{"{ path_regex: \"/u/[0-9]+\" }", "{ path: /u/42 }", true},
        CoverCase{"{ path_regex: \"/u/[0-9]+\" }", "{ path: /u/x }", false},
        CoverCase{"{ path_regex: \"/u/.*\" }", "{ path_prefix: /u/ }", false},  // not decided
        CoverCase{"{ host: \"*.example.com\" }", "{ host: a.example.com }", true},
        CoverCase{"{ host: \"*.example.com\" }", "{ host: \"*.a.example.com\" }", true},
        CoverCase{"{ host: \"*.example.com\" }", "{ host: example.com }", false},
        CoverCase{"{ host: a.example.com }", "{ host: \"*.example.com\" }", false},
        CoverCase{"{ host: a.example.com }", "{}", false},
        CoverCase{"{ methods: [GET, HEAD] }", "{ methods: [GET] }", true},
        CoverCase{"{ methods: [GET] }", "{ methods: [GET, HEAD] }", false},
        CoverCase{"{ methods: [GET] }", "{}", false},
        CoverCase{"{ headers: [{ name: x-env, exact: gray }] }",
                  "{ headers: [{ name: X-Env, exact: gray }, { name: x-b, present: true }] }",
                  true},
        CoverCase{"{ headers: [{ name: x-env, present: true }] }",
                  "{ headers: [{ name: x-env, regex: \"g.*\" }] }", true},
        CoverCase{"{ headers: [{ name: x-env, present: true }] }",
                  "{ headers: [{ name: x-env, exact: g, invert: true }] }", false},
        CoverCase{"{ headers: [{ name: x-env, exact: gray }] }", "{}", false},
        CoverCase{"{ headers: [{ name: x-env, exact: gray }] }",
                  "{ headers: [{ name: x-env, exact: blue }] }", false},
        CoverCase{"{ query: [{ name: v, exact: \"2\" }] }",
                  "{ cookies: [{ name: v, exact: \"2\" }] }", false},
        CoverCase{"{ cookies: [{ name: b, present: false }] }",
                  "{ cookies: [{ name: b, present: false }], path: /x }", true}));

TEST(RouteMatchConfig, WarnsAboutARouteAnEarlierRouteHides) {
  const std::string yaml =
      "listeners: [{ name: p, address: 127.0.0.1:8080 }]\n"
      "clusters: [{ name: c, endpoints: [127.0.0.1:9000] }]\n"
      "routes:\n"
      "  - { name: api, cluster: c, match: { path_prefix: /api } }\n"
      "  - { name: gray, cluster: c, match: { path_prefix: /api/v1, headers: [{ name: x-env, "
      "exact: gray }] } }\n"
      "  - { name: rest, cluster: c }\n";
  const auto r = load(yaml, "t.yaml");
  ASSERT_TRUE(r.ok());  // a warning does not refuse the config
  ASSERT_EQ(r.warnings.size(), 1U);
  EXPECT_EQ(r.warnings[0].format(),
            "t.yaml:5:5: warning: route 'gray' is never used: route 'api' (line 4) comes first "
            "and matches every request it does");
  // In the other order, nothing is hidden.
  const auto fine = load(
      "listeners: [{ name: p, address: 127.0.0.1:8080 }]\n"
      "clusters: [{ name: c, endpoints: [127.0.0.1:9000] }]\n"
      "routes:\n"
      "  - { name: gray, cluster: c, match: { path_prefix: /api, headers: [{ name: x-env, "
      "exact: gray }] } }\n"
      "  - { name: api, cluster: c, match: { path_prefix: /api } }\n"
      "  - { name: rest, cluster: c }\n",
      "t.yaml");
  ASSERT_TRUE(fine.ok());
  EXPECT_THAT(fine.warnings, IsEmpty());
}

}  // namespace
}  // namespace sluice::gateway::config
