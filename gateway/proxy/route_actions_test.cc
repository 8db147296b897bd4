// Route actions: template expansion, header edits on the way up and down, path and Host
// rewrites, and the replies of redirect and direct_response routes.
#include "gateway/proxy/route_actions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/http/head_writer.h"
#include "gateway/upstream/subset.h"

namespace sluice::gateway::proxy {
namespace {

using ::testing::Pair;
using ::testing::UnorderedElementsAre;

std::string expanded(std::string_view text, std::string_view subset_key = {}) {
  std::string out;
  expandTemplate(out, text, {"10.0.0.7", "req-1", "pay", "pay-v2", subset_key});
  return out;
}

TEST(RouteActions, TemplatesExpandEveryVariable) {
  EXPECT_EQ(expanded("${client_ip}|${request_id}|${route}|${cluster}"),
            "10.0.0.7|req-1|pay|pay-v2");
  EXPECT_EQ(expanded("cost: $$5 ${route}${route}"), "cost: $5 paypay");
  EXPECT_EQ(expanded("plain"), "plain");
  config::Subset s;
  s.labels = {{"zone", "b"}};
  s.header = "x-env";
  s.label = "env";
  std::string key;
  ASSERT_TRUE(upstream::subsetKey(s, "gray", key));
  EXPECT_EQ(expanded("[${subset}]", key), "[env=gray,zone=b]");
  EXPECT_EQ(expanded("[${subset}]"), "[]");
}

TEST(RouteActions, PrefixRewritesReplaceWhatTheMatchMatched) {
  config::RouteMatch prefix;
  prefix.path_prefix = "/api/v1/";
  config::RouteMatch exact;
  exact.path = "/old";
  const auto rewrite = [](const config::RouteMatch& m, std::string_view target,
                          std::string_view to) {
    std::string out;
    rewriteTarget(out, target, m, to);
    return out;
  };
  EXPECT_EQ(rewrite(prefix, "/api/v1/users?id=3", "/"), "/users?id=3");
  EXPECT_EQ(rewrite(prefix, "/api/v1/", "/v1/"), "/v1/");
  EXPECT_EQ(rewrite(exact, "/old?a=1&b", "/new"), "/new?a=1&b");
  EXPECT_EQ(rewrite(exact, "/old", "/new/x"), "/new/x");
}

http::RequestHead requestFor(std::string_view target, std::string_view host) {
  http::RequestHead h;
  h.method = http::Verb::get;
  h.method_text = "GET";
  h.target = target;
  h.host = host;
  return h;
}

std::string locationOf(const http::LocalReply& r) {
  for (const auto& [k, v] : r.fields) {
    if (k == "Location") return v;
  }
  return "(none)";
}

struct RedirectCase {
  const char* name;
  config::Redirect redirect;
  const char* target;
  const char* host;
  int status;
  const char* location;
};

class RedirectReplies : public ::testing::TestWithParam<RedirectCase> {};

TEST_P(RedirectReplies, LocationIsTheRequestWithThePartsReplaced) {
  const auto& c = GetParam();
  config::Route route;
  route.name = "r";
  route.match.path_prefix = "/old/";
  route.redirect = c.redirect;
  const auto reply = redirectReply(route, requestFor(c.target, c.host), "http", {});
  EXPECT_EQ(reply.status, c.status);
  if (c.status < 400) {
    EXPECT_EQ(locationOf(reply), c.location);
    EXPECT_TRUE(reply.body.empty());
    EXPECT_TRUE(reply.content_type.empty());
  }
}

config::Redirect make(int status, std::optional<std::string> scheme,
                      std::optional<std::string> host, std::optional<std::uint16_t> port,
                      std::optional<std::string> path, std::optional<std::string> prefix,
                      bool strip = false) {
  return {status, std::move(scheme), std::move(host), port, std::move(path), std::move(prefix),
          strip};
}

INSTANTIATE_TEST_SUITE_P(
    Table, RedirectReplies,
    ::testing::Values(
        RedirectCase{"path_only_is_relative", make(301, {}, {}, {}, "/new", {}), "/old/a?x=1",
                     "example.com:8080", 301, "/new?x=1"},
        RedirectCase{"prefix", make(308, {}, {}, {}, {}, "/v2/"), "/old/a/b?x=1", "h", 308,
                     "/v2/a/b?x=1"},
        RedirectCase{"prefix_strip_query", make(307, {}, {}, {}, {}, "/v2/", true), "/old/a?x=1",
                     "h", 307, "/v2/a"},
        RedirectCase{"https_drops_the_port", make(301, "https", {}, {}, {}, {}), "/old/a?x=1",
                     "example.com:8080", 301, "https://example.com/old/a?x=1"},
        RedirectCase{"same_scheme_keeps_the_port", make(302, "http", {}, {}, "/p", {}), "/old/a",
                     "example.com:8080", 302, "http://example.com:8080/p"},
        RedirectCase{"host_and_port", make(301, {}, "new.example", 8443, {}, {}, true),
                     "/old/a?x=1", "example.com", 301, "http://new.example:8443/old/a"},
        RedirectCase{"ipv6_host", make(301, "https", {}, {}, {}, {}), "/old/", "[::1]:8080", 301,
                     "https://[::1]/old/"},
        RedirectCase{"no_host_to_redirect_to", make(301, "https", {}, {}, {}, {}), "/old/", "", 400,
                     ""}),
    [](const auto& test) { return std::string(test.param.name); });

TEST(RouteActions, DirectRepliesCarryTheirHeadersAndTheRoutesResponseHeaders) {
  config::Route route;
  route.name = "tea";
  route.direct_response.emplace();
  route.direct_response->status = 418;
  route.direct_response->body = "{}";
  route.direct_response->headers = {{"Content-Type", "application/json"},
                                    {"x-id", "${request_id}"}};
  route.response_headers.set = {{"x-id", "set ${route}"}};
  route.response_headers.add = {{"x-more", "1"}};
  const auto reply = directReply(route, {"1.2.3.4", "rid", "tea", "", ""});
  EXPECT_EQ(reply.status, 418);
  EXPECT_EQ(reply.body, "{}");
  EXPECT_EQ(reply.content_type, "application/json");
  EXPECT_THAT(reply.fields, UnorderedElementsAre(Pair("x-id", "set tea"), Pair("x-more", "1")));
  // No body, no content type unless one is given.
  route.direct_response->body.clear();
  route.direct_response->headers.clear();
  EXPECT_EQ(directReply(route, {}).content_type, "");
  route.direct_response->body = "ok\n";
  EXPECT_EQ(directReply(route, {}).content_type, "text/plain; charset=utf-8");
}

TEST(RouteActions, HeaderEditsApplyOnTheWayUpAndDown) {
  http::RequestHead req = requestFor("/api/v1/x?q", "shop.example");
  req.fields = {{http::Field::host, "Host", "shop.example"},
                {http::Field::unknown, "X-Debug", "1"},
                {http::Field::unknown, "x-env", "prod"},
                {http::Field::accept, "Accept", "*/*"}};
  config::HeaderEdits edits;
  edits.remove = {"x-debug"};
  edits.set = {{"X-Env", "gray"}};
  edits.add = {{"X-Via", "${route}"}};
  std::string extra;
  appendEditedFields(extra, edits, {"", "", "pay", "", ""});
  EXPECT_EQ(extra, "X-Env: gray\r\nX-Via: pay\r\n");
  http::FieldEdits fields{edits.remove, edits.set, extra, "/v1/x?q", "backend.internal"};
  std::string out;
  http::ForwardingInfo fwd;
  fwd.client_ip = "1.2.3.4";
  fwd.proto = "http";
  fwd.request_id = "rid";
  http::writeUpstreamRequest(out, req, fwd, &fields);
  EXPECT_EQ(out,
            "GET /v1/x?q HTTP/1.1\r\nAccept: */*\r\nHost: backend.internal\r\nX-Env: gray\r\n"
            "X-Via: pay\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: shop.example\r\nX-Request-Id: rid\r\n");

  http::ResponseHead resp;
  resp.status = 200;
  resp.reason = "OK";
  resp.fields = {{http::Field::server, "Server", "upstream/1.0"},
                 {http::Field::unknown, "X-Env", "old"}};
  config::HeaderEdits down;
  down.remove = {"SERVER"};
  down.set = {{"x-env", "${cluster}"}};
  std::string down_extra;
  appendEditedFields(down_extra, down, {"", "", "", "pay-v2", ""});
  const http::FieldEdits down_fields{down.remove, down.set, down_extra};
  std::string head;
  http::writeDownstreamResponse(head, resp, {http::Framing::None, 0, false, false}, "",
                                &down_fields);
  EXPECT_EQ(head, "HTTP/1.1 200 OK\r\nx-env: pay-v2\r\n\r\n");
}

}  // namespace
}  // namespace sluice::gateway::proxy
