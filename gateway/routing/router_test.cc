#include "gateway/routing/router.h"

#include <gtest/gtest.h>

namespace sluice::gateway::routing {
namespace {

config::Route route(std::string host, std::optional<std::string> prefix,
                    std::optional<std::string> exact = std::nullopt) {
  config::Route r;
  r.match.host = std::move(host);
  r.match.path_prefix = std::move(prefix);
  r.match.path = std::move(exact);
  return r;
}

TEST(Router, FirstMatchInConfigOrderWins) {
  const Router router({route("", "/api/"), route("", "/")});
  EXPECT_EQ(router.match("a", "/api/x"), 0U);
  EXPECT_EQ(router.match("a", "/apix"), 1U);
  EXPECT_EQ(router.match("a", "/"), 1U);
}

TEST(Router, ExactPathDoesNotMatchLongerPaths) {
  const Router router({route("", std::nullopt, "/healthz")});
  EXPECT_EQ(router.match("a", "/healthz"), 0U);
  EXPECT_FALSE(router.match("a", "/healthz/x"));
  EXPECT_FALSE(router.match("a", "/health"));
}

TEST(Router, HostMatchIgnoresCaseAndPort) {
  const Router router({route("example.com", "/")});
  EXPECT_EQ(router.match("EXAMPLE.com:8080", "/"), 0U);
  EXPECT_FALSE(router.match("example.org", "/"));
  EXPECT_FALSE(router.match("www.example.com", "/"));
}

TEST(Router, WildcardMatchesSubdomainsOnly) {
  const Router router({route("*.example.com", "/")});
  EXPECT_EQ(router.match("a.example.com", "/"), 0U);
  EXPECT_EQ(router.match("a.b.Example.com:80", "/"), 0U);
  EXPECT_FALSE(router.match("example.com", "/"));
  EXPECT_FALSE(router.match("badexample.com", "/"));
}

TEST(Router, NoMatchIsNullopt) {
  const Router router({route("", "/api/")});
  EXPECT_FALSE(router.match("a", "/other"));
  EXPECT_FALSE(Router({}).match("a", "/"));
}

TEST(Router, Ipv6HostLiteralKeepsItsBrackets) {
  EXPECT_EQ(hostWithoutPort("[::1]:8080"), "[::1]");
  EXPECT_EQ(hostWithoutPort("[::1]"), "[::1]");
  EXPECT_EQ(hostWithoutPort("h:1"), "h");
}

}  // namespace
}  // namespace sluice::gateway::routing
