#include "gateway/routing/router.h"

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "gateway/http/request_parser.h"

namespace sluice::gateway::routing {
namespace {

using Kind = config::ValueMatch::Kind;

config::Route route(std::string host, std::optional<std::string> prefix,
                    std::optional<std::string> exact = std::nullopt) {
  config::Route r;
  r.match.host = std::move(host);
  r.match.path_prefix = std::move(prefix);
  r.match.path = std::move(exact);
  return r;
}

config::Route matching(config::RouteMatch m) {
  config::Route r;
  r.match = std::move(m);
  return r;
}

config::ValueMatch cond(std::string name, Kind kind, std::string value = "", bool invert = false,
                        bool ignore_case = false) {
  return {std::move(name), kind, std::move(value), ignore_case, invert};
}

// Parses `head` ("GET /x HTTP/1.1" plus header lines, without the final CRLFs) with the real
// request parser and routes it, so the tests see requests as the proxy does.
std::optional<std::size_t> route(const Router& router, const std::string& head) {
  const std::string bytes = head + "\r\n\r\n";
  http::RequestHead parsed;
  http::RequestParser parser(parsed, http::RequestLimits{});
  const auto r = parser.parseHead(bytes);
  if (r.error != http::RequestError::None || !r.done) {
    throw std::runtime_error("test request does not parse: " + head);
  }
  return router.match(parsed);
}

std::optional<std::size_t> route(const Router& router, const std::string& host,
                                 const std::string& target) {
  return route(router, "GET " + target + " HTTP/1.1\r\nHost: " + host);
}

bool accepts(const config::RouteMatch& m, const std::string& head) {
  return route(Router({matching(m)}), head).has_value();
}

// `request_line` plus a Host field plus `fields` ("A: 1\r\nB: 2", or "").
std::string withHost(const std::string& request_line, const std::string& fields) {
  return request_line + "\r\nHost: a" + (fields.empty() ? "" : "\r\n" + fields);
}

// "GET / HTTP/1.1\r\nX: 1" -> the same with a Host field after the request line.
std::string withHost(const std::string& head) {
  const auto eol = head.find("\r\n");
  if (eol == std::string::npos) return withHost(head, "");
  return withHost(head.substr(0, eol), head.substr(eol + 2));
}

TEST(Router, FirstMatchInConfigOrderWins) {
  const Router router({route("", "/api/"), route("", "/")});
  EXPECT_EQ(route(router, "a", "/api/x"), 0U);
  EXPECT_EQ(route(router, "a", "/apix"), 1U);
  EXPECT_EQ(route(router, "a", "/"), 1U);
}

TEST(Router, ExactPathDoesNotMatchLongerPathsAndIgnoresTheQuery) {
  const Router router({route("", std::nullopt, "/healthz")});
  EXPECT_EQ(route(router, "a", "/healthz"), 0U);
  EXPECT_EQ(route(router, "a", "/healthz?verbose=1"), 0U);
  EXPECT_FALSE(route(router, "a", "/healthz/x"));
  EXPECT_FALSE(route(router, "a", "/health"));
}

TEST(Router, HostMatchIgnoresCaseAndPort) {
  const Router router({route("example.com", "/")});
  EXPECT_EQ(route(router, "EXAMPLE.com:8080", "/"), 0U);
  EXPECT_FALSE(route(router, "example.org", "/"));
  EXPECT_FALSE(route(router, "www.example.com", "/"));
}

TEST(Router, WildcardMatchesSubdomainsOnly) {
  const Router router({route("*.example.com", "/")});
  EXPECT_EQ(route(router, "a.example.com", "/"), 0U);
  EXPECT_EQ(route(router, "a.b.Example.com:80", "/"), 0U);
  EXPECT_FALSE(route(router, "example.com", "/"));
  EXPECT_FALSE(route(router, "badexample.com", "/"));
}

TEST(Router, NoMatchIsNullopt) {
  const Router router({route("", "/api/")});
  EXPECT_FALSE(route(router, "a", "/other"));
  EXPECT_FALSE(route(Router({}), "a", "/"));
}

TEST(Router, Ipv6HostLiteralKeepsItsBrackets) {
  EXPECT_EQ(hostWithoutPort("[::1]:8080"), "[::1]");
  EXPECT_EQ(hostWithoutPort("[::1]"), "[::1]");
  EXPECT_EQ(hostWithoutPort("a.example:1"), "a.example");
}

TEST(Router, PathRegexMatchesTheWholePathOnly) {
  config::RouteMatch m;
  m.path_regex = "/users/[0-9]+/orders";
  EXPECT_TRUE(accepts(m, "GET /users/42/orders HTTP/1.1\r\nHost: a"));
  EXPECT_TRUE(accepts(m, "GET /users/42/orders?page=2 HTTP/1.1\r\nHost: a"));
  EXPECT_FALSE(accepts(m, "GET /users/42/orders/7 HTTP/1.1\r\nHost: a"));  // not a prefix match
  EXPECT_FALSE(accepts(m, "GET /v1/users/42/orders HTTP/1.1\r\nHost: a"));
  EXPECT_FALSE(accepts(m, "GET /users/x/orders HTTP/1.1\r\nHost: a"));
}

TEST(Router, MethodsAreCaseSensitiveAndAnyOfTheList) {
  config::RouteMatch m;
  m.methods = {"GET", "HEAD"};
  EXPECT_TRUE(accepts(m, "GET / HTTP/1.1\r\nHost: a"));
  EXPECT_TRUE(accepts(m, "HEAD / HTTP/1.1\r\nHost: a"));
  EXPECT_FALSE(accepts(m, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0"));
  EXPECT_FALSE(accepts(m, "get / HTTP/1.1\r\nHost: a"));
}

struct ValueCase {
  const char* what;
  config::ValueMatch condition;
  const char* head;  // request head without the final CRLFs
  bool expected;
};

class Headers : public ::testing::TestWithParam<ValueCase> {};
TEST_P(Headers, Match) {
  config::RouteMatch m;
  m.headers = {GetParam().condition};
  EXPECT_EQ(accepts(m, withHost(GetParam().head)), GetParam().expected) << GetParam().what;
}
INSTANTIATE_TEST_SUITE_P(
    Table, Headers,
    ::testing::Values(
        ValueCase{"exact", cond("x-env", Kind::Exact, "gray"), "GET / HTTP/1.1\r\nX-Env: gray",
                  true},
        ValueCase{"exact is case-sensitive in the value", cond("x-env", Kind::Exact, "gray"),
                  "GET / HTTP/1.1\r\nX-Env: GRAY", false},
        ValueCase{"exact ignore_case", cond("x-env", Kind::Exact, "gray", false, true),
                  "GET / HTTP/1.1\r\nX-Env: GRAY", true},
        ValueCase{"exact against a longer value", cond("x-env", Kind::Exact, "gray"),
                  "GET / HTTP/1.1\r\nX-Env: grayish", false},
        ValueCase{"name is case-insensitive", cond("x-env", Kind::Exact, "gray"),
                  "GET / HTTP/1.1\r\nx-ENV: gray", true},
        ValueCase{"optional whitespace is not part of the value",
                  cond("x-env", Kind::Exact, "gray"), "GET / HTTP/1.1\r\nX-Env:   gray  ", true},
        ValueCase{"any of several fields", cond("x-env", Kind::Exact, "gray"),
                  "GET / HTTP/1.1\r\nX-Env: blue\r\nX-Env: gray", true},
        ValueCase{"a list in one field is one value", cond("x-env", Kind::Exact, "gray"),
                  "GET / HTTP/1.1\r\nX-Env: blue, gray", false},
        ValueCase{"missing field", cond("x-env", Kind::Exact, "gray"), "GET / HTTP/1.1", false},
        ValueCase{"missing field, inverted", cond("x-env", Kind::Exact, "gray", true),
                  "GET / HTTP/1.1", true},
        ValueCase{"inverted exact", cond("x-env", Kind::Exact, "gray", true),
                  "GET / HTTP/1.1\r\nX-Env: gray", false},
        ValueCase{"empty value matches exact empty", cond("x-env", Kind::Exact, ""),
                  "GET / HTTP/1.1\r\nX-Env:", true},
        ValueCase{"prefix", cond("x-tenant", Kind::Prefix, "acme-"),
                  "GET / HTTP/1.1\r\nX-Tenant: acme-eu", true},
        ValueCase{"prefix longer than the value", cond("x-tenant", Kind::Prefix, "acme-"),
                  "GET / HTTP/1.1\r\nX-Tenant: acme", false},
        ValueCase{"prefix ignore_case", cond("x-tenant", Kind::Prefix, "acme-", false, true),
                  "GET / HTTP/1.1\r\nX-Tenant: ACME-eu", true},
        ValueCase{"regex matches the whole value", cond("user-agent", Kind::Regex, ".*Mobile.*"),
                  "GET / HTTP/1.1\r\nUser-Agent: x Mobile y", true},
        ValueCase{"regex is anchored", cond("x-v", Kind::Regex, "[0-9]+"),
                  "GET / HTTP/1.1\r\nX-V: 12a", false},
        ValueCase{"inverted regex", cond("user-agent", Kind::Regex, ".*bot.*", true),
                  "GET / HTTP/1.1\r\nUser-Agent: Mozilla", true},
        // A byte that is not UTF-8 is matched like any other: it cannot turn an inverted
        // condition into a pass.
        ValueCase{"inverted regex, a non-UTF-8 byte after the match",
                  cond("user-agent", Kind::Regex, ".*bot.*", true),
                  "GET / HTTP/1.1\r\nUser-Agent: evilbot\xff", false},
        ValueCase{"regex over a non-UTF-8 byte", cond("x-v", Kind::Regex, "a.b"),
                  "GET / HTTP/1.1\r\nX-V: a\xe9"
                  "b",
                  true},
        ValueCase{"present", cond("x-debug", Kind::Present), "GET / HTTP/1.1\r\nX-Debug: 0", true},
        ValueCase{"present with an empty value", cond("x-debug", Kind::Present),
                  "GET / HTTP/1.1\r\nX-Debug:", true},
        ValueCase{"absent (present: false)", cond("x-debug", Kind::Present, "", true),
                  "GET / HTTP/1.1", true},
        ValueCase{"absent but there", cond("x-debug", Kind::Present, "", true),
                  "GET / HTTP/1.1\r\nX-Debug: 1", false},
        ValueCase{"a different field with the same prefix", cond("x-env", Kind::Present),
                  "GET / HTTP/1.1\r\nX-Env-2: gray", false}));

class Query : public ::testing::TestWithParam<ValueCase> {};
TEST_P(Query, Match) {
  config::RouteMatch m;
  m.query = {GetParam().condition};
  EXPECT_EQ(accepts(m, withHost(std::string(GetParam().head) + " HTTP/1.1")), GetParam().expected)
      << GetParam().what;
}
INSTANTIATE_TEST_SUITE_P(
    Table, Query,
    ::testing::Values(
        ValueCase{"exact", cond("v", Kind::Exact, "2"), "GET /p?v=2", true},
        ValueCase{"among others", cond("v", Kind::Exact, "2"), "GET /p?a=1&v=2&b=3", true},
        ValueCase{"any occurrence", cond("v", Kind::Exact, "2"), "GET /p?v=1&v=2", true},
        ValueCase{"another value", cond("v", Kind::Exact, "2"), "GET /p?v=20", false},
        ValueCase{"a longer name", cond("v", Kind::Exact, "2"), "GET /p?vv=2", false},
        ValueCase{"no query", cond("v", Kind::Exact, "2"), "GET /p", false},
        ValueCase{"no query, inverted", cond("v", Kind::Exact, "2", true), "GET /p", true},
        ValueCase{"%-decoded", cond("q", Kind::Exact, "a b/c"), "GET /p?q=a%20b%2Fc", true},
        ValueCase{"'+' is a space", cond("q", Kind::Exact, "a b"), "GET /p?q=a+b", true},
        ValueCase{"decoded name", cond("user id", Kind::Exact, "7"), "GET /p?user%20id=7", true},
        ValueCase{"bad escape fails", cond("q", Kind::Exact, "a"), "GET /p?q=%zz", false},
        ValueCase{"bad escape fails inverted too", cond("q", Kind::Exact, "a", true),
                  "GET /p?q=%zz", false},
        ValueCase{"truncated escape fails", cond("q", Kind::Prefix, "a"), "GET /p?q=a%2", false},
        ValueCase{"bad escape in another occurrence fails", cond("q", Kind::Exact, "a"),
                  "GET /p?q=a&q=%g1", false},
        ValueCase{"bad escape in another parameter is ignored", cond("q", Kind::Exact, "a"),
                  "GET /p?x=%zz&q=a", true},
        ValueCase{"present without '='", cond("debug", Kind::Present), "GET /p?debug", true},
        ValueCase{"present with empty value", cond("debug", Kind::Present), "GET /p?debug=", true},
        ValueCase{"bare name has the empty value", cond("debug", Kind::Exact, ""), "GET /p?debug",
                  true},
        ValueCase{"absent", cond("debug", Kind::Present, "", true), "GET /p?x=1", true},
        ValueCase{"regex", cond("id", Kind::Regex, "[0-9]{3}"), "GET /p?id=123", true},
        ValueCase{"regex whole value", cond("id", Kind::Regex, "[0-9]{3}"), "GET /p?id=1234",
                  false},
        ValueCase{"'.' matches a decoded line feed", cond("ua", Kind::Regex, ".*bot.*", true),
                  "GET /p?ua=bot%0A", false},
        ValueCase{"'.' matches a decoded non-UTF-8 byte", cond("ua", Kind::Regex, "bo."),
                  "GET /p?ua=bo%FF", true},
        ValueCase{"empty items skipped", cond("v", Kind::Exact, "2"), "GET /p?&&v=2&", true}));

class Cookies : public ::testing::TestWithParam<ValueCase> {};
TEST_P(Cookies, Match) {
  config::RouteMatch m;
  m.cookies = {GetParam().condition};
  EXPECT_EQ(accepts(m, withHost(GetParam().head)), GetParam().expected) << GetParam().what;
}
INSTANTIATE_TEST_SUITE_P(
    Table, Cookies,
    ::testing::Values(ValueCase{"exact", cond("canary", Kind::Exact, "1"),
                                "GET / HTTP/1.1\r\nCookie: canary=1", true},
                      ValueCase{"among others", cond("canary", Kind::Exact, "1"),
                                "GET / HTTP/1.1\r\nCookie: sid=x; canary=1; theme=dark", true},
                      ValueCase{"in a second Cookie field", cond("canary", Kind::Exact, "1"),
                                "GET / HTTP/1.1\r\nCookie: sid=x\r\nCookie: canary=1", true},
                      ValueCase{"quoted value", cond("canary", Kind::Exact, "1"),
                                "GET / HTTP/1.1\r\nCookie: canary=\"1\"", true},
                      ValueCase{"name must be whole", cond("canary", Kind::Exact, "1"),
                                "GET / HTTP/1.1\r\nCookie: xcanary=1; canaryx=1", false},
                      ValueCase{"item without '=' is skipped", cond("canary", Kind::Present),
                                "GET / HTTP/1.1\r\nCookie: canary; a=b", false},
                      ValueCase{"no Cookie field", cond("canary", Kind::Present), "GET / HTTP/1.1",
                                false},
                      ValueCase{"absent", cond("canary", Kind::Present, "", true),
                                "GET / HTTP/1.1\r\nCookie: a=b", true},
                      ValueCase{"names are case-sensitive", cond("canary", Kind::Present),
                                "GET / HTTP/1.1\r\nCookie: Canary=1", false},
                      ValueCase{"prefix", cond("sid", Kind::Prefix, "beta-"),
                                "GET / HTTP/1.1\r\nCookie: sid=beta-42", true},
                      ValueCase{"a value holding '='", cond("t", Kind::Exact, "a=b"),
                                "GET / HTTP/1.1\r\nCookie: t=a=b", true}));

TEST(Router, EveryConditionMustHold) {
  config::RouteMatch m;
  m.path_prefix = "/pay";
  m.methods = {"POST"};
  m.headers = {cond("x-env", Kind::Exact, "gray")};
  m.cookies = {cond("beta", Kind::Present)};
  const Router router({matching(m), route("", "/")});
  const std::string all =
      "POST /pay/x HTTP/1.1\r\nHost: a\r\nX-Env: gray\r\nCookie: beta=1\r\nContent-Length: 0";
  EXPECT_EQ(route(router, all), 0U);
  EXPECT_EQ(route(router, "POST /pay/x HTTP/1.1\r\nHost: a\r\nX-Env: gray\r\nContent-Length: 0"),
            1U);
  EXPECT_EQ(route(router, "GET /pay/x HTTP/1.1\r\nHost: a\r\nX-Env: gray\r\nCookie: beta=1"), 1U);
}

TEST(Router, AnInvalidPatternIsRefusedAtConstruction) {
  config::RouteMatch m;
  m.path_regex = "(unclosed";
  EXPECT_THROW(Router({matching(m)}), std::invalid_argument);
}

TEST(Router, DecodesQueryComponents) {
  std::string out;
  EXPECT_TRUE(decodeQueryComponent("a%41%7e+b", out));
  EXPECT_EQ(out, "aA~ b");
  EXPECT_FALSE(decodeQueryComponent("%4", out));
  EXPECT_FALSE(decodeQueryComponent("%", out));
  EXPECT_FALSE(decodeQueryComponent("%g0", out));
  EXPECT_TRUE(decodeQueryComponent("", out));
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace sluice::gateway::routing
