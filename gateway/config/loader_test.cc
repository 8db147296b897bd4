#include "gateway/config/loader.h"

#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/config/config_test_support.h"

namespace sluice::gateway::config {
namespace {

using ::testing::HasSubstr;

constexpr const char* kMinimal = R"(listeners:
  - name: public
    address: 127.0.0.1:8080
clusters:
  - name: api
    endpoints: [127.0.0.1:9000]
routes:
  - name: all
    cluster: api
)";

TEST(ConfigLoader, MinimalConfigGetsDefaults) {
  const auto r = load(kMinimal, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  const Config& c = *r.config;
  ASSERT_EQ(c.listeners.size(), 1U);
  EXPECT_EQ(c.listeners[0].address.text(), "127.0.0.1:8080");
  EXPECT_EQ(c.listeners[0].timeouts.header, Millis(10'000));
  EXPECT_EQ(c.workers, 0U);
  ASSERT_EQ(c.clusters.size(), 1U);
  EXPECT_EQ(c.clusters[0].endpoints[0].weight, 1U);
  EXPECT_EQ(c.routes[0].retry.attempts, 2U);
  EXPECT_FALSE(c.admin.has_value());
}

TEST(ConfigLoader, ReadsEveryField) {
  const auto r = load(R"(workers: 3
drain_timeout: 5s
admin: { address: "[::1]:9901" }
log: { level: warn, format: json }
access_log: { enabled: true, path: stderr, fields: [status, path] }
listeners:
  - name: public
    address: 0.0.0.0:8080
    trust_forwarded: true
    limits: { request_line: 4KiB, header_bytes: 16KiB, headers: 50, body: 2MiB }
    timeouts: { header: 2s, body: 3s, idle: 4s, send: 500ms }
clusters:
  - name: api
    lb: round_robin
    io_timeout: 7s
    endpoints:
      - { address: 10.0.0.1:80, weight: 3 }
      - address: 10.0.0.2:80
    pool: { max_connections: 10, max_idle: 5, idle_timeout: 1m, connect_timeout: 250ms, max_wait: 0ms }
routes:
  - name: api
    match: { host: "*.Example.com", path_prefix: /api/ }
    cluster: api
    timeout: 1h
    max_body: 1GiB
    retry: { attempts: 3, on: [connect-failure] }
)",
                      "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  const Config& c = *r.config;
  EXPECT_EQ(c.workers, 3U);
  EXPECT_EQ(c.drain_timeout, Millis(5000));
  EXPECT_EQ(c.admin->address.text(), "[::1]:9901");
  EXPECT_EQ(c.log.level, Log::Level::Warn);
  EXPECT_EQ(c.log.format, Log::Format::Json);
  EXPECT_TRUE(c.access_log.enabled);
  EXPECT_EQ(c.access_log.fields, (std::vector<std::string>{"status", "path"}));
  const Listener& l = c.listeners[0];
  EXPECT_TRUE(l.trust_forwarded);
  EXPECT_EQ(l.limits.request_line, 4096U);
  EXPECT_EQ(l.limits.body, 2U * 1024 * 1024);
  EXPECT_EQ(l.timeouts.send, Millis(500));
  const Cluster& cl = c.clusters[0];
  EXPECT_EQ(cl.endpoints[0].weight, 3U);
  EXPECT_EQ(cl.endpoints[1].address.text(), "10.0.0.2:80");
  EXPECT_EQ(cl.pool.idle_timeout, Millis(60'000));
  EXPECT_EQ(cl.pool.max_wait, Millis(0));
  EXPECT_EQ(c.routes[0].match.host, "*.example.com");
  EXPECT_EQ(c.routes[0].timeout, Millis(3'600'000));
  EXPECT_EQ(*c.routes[0].max_body, 1024ULL * 1024 * 1024);
}

TEST(ConfigLoader, ReportsEveryProblemWithItsPosition) {
  const auto p = problems(R"(listeners:
  - name: public
    address: 127.0.0.1:8080
    timeouts: { header: 10 }
    colour: blue
clusters:
  - name: api
    endpoints: [127.0.0.1:99999]
routes:
  - name: all
    cluster: nope
)");
  EXPECT_THAT(p, ::testing::ElementsAre(
                     HasSubstr("t.yaml:5:5: unknown key 'colour' in listener"),
                     HasSubstr("t.yaml:4:25: timeouts.header: duration '10' is missing a unit"),
                     HasSubstr("t.yaml:8:17: endpoint address: invalid address '127.0.0.1:99999'"),
                     HasSubstr("t.yaml:11:14: route 'all' refers to unknown cluster 'nope'")));
}

struct BrokenCase {
  const char* name;
  const char* yaml;
  const char* expected;  // substring of the single diagnostic
};

class ConfigLoaderRejects : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(ConfigLoaderRejects, WithAClearMessage) {
  const auto p = problems(GetParam().yaml);
  ASSERT_FALSE(p.empty()) << GetParam().name;
  EXPECT_THAT(p.front(), HasSubstr(GetParam().expected)) << GetParam().name;
}

constexpr const char* kTail = R"(
clusters:
  - name: api
    endpoints: [127.0.0.1:9000]
routes:
  - name: all
    cluster: api
)";

std::string withListener(const std::string& listener_extra) {
  return "listeners:\n  - name: public\n    address: 127.0.0.1:8080\n" + listener_extra + kTail;
}

const std::string kSyntax = "listeners: [\n";
const std::string kDupKey = withListener("    address: 127.0.0.1:8081\n");
const std::string kBadType = withListener("    limits: { headers: many }\n");
const std::string kBadUnit = withListener("    limits: { body: 10 }\n");
const std::string kUnknownUnit = withListener("    timeouts: { idle: 10 years }\n");
const std::string kHostname =
    "listeners:\n  - name: p\n    address: example.com:80\n" + std::string(kTail);
const std::string kNoPort =
    "listeners:\n  - name: p\n    address: 127.0.0.1\n" + std::string(kTail);
const std::string kV6NoBrackets =
    "listeners:\n  - name: p\n    address: ::1:80\n" + std::string(kTail);
const std::string kDupListener =
    "listeners:\n  - { name: p, address: 127.0.0.1:1 }\n  - { name: p, address: 127.0.0.1:2 }\n" +
    std::string(kTail);
const std::string kSameAddress =
    "listeners:\n  - { name: a, address: 127.0.0.1:1 }\n  - { name: b, address: 127.0.0.1:1 }\n" +
    std::string(kTail);
const std::string kDupCluster =
    std::string(kMinimal) + "  - name: x\n    cluster: api\n" + "clusters_extra: 1\n";
const std::string kNotAMap = "- a\n- b\n";
const std::string kBadBool = withListener("    trust_forwarded: yes please\n");
const std::string kNoEndpoints =
    "listeners: [{ name: p, address: 127.0.0.1:1 }]\nclusters: [{ name: c, endpoints: [] "
    "}]\nroutes: [{ name: r, cluster: c }]\n";
const std::string kBadPath =
    "listeners: [{ name: p, address: 127.0.0.1:1 }]\nclusters: [{ name: c, endpoints: "
    "[127.0.0.1:2] }]\n"
    "routes: [{ name: r, cluster: c, match: { path_prefix: api } }]\n";
const std::string kBadRetry =
    "listeners: [{ name: p, address: 127.0.0.1:1 }]\nclusters: [{ name: c, endpoints: "
    "[127.0.0.1:2] }]\n"
    "routes: [{ name: r, cluster: c, retry: { on: [sometimes] } }]\n";
const std::string kDupRoute =
    "listeners: [{ name: p, address: 127.0.0.1:1 }]\nclusters: [{ name: c, endpoints: "
    "[127.0.0.1:2] }]\n"
    "routes: [{ name: r, cluster: c }, { name: r, cluster: c }]\n";
const std::string kDupClusterName =
    "listeners: [{ name: p, address: 127.0.0.1:1 }]\n"
    "clusters: [{ name: c, endpoints: [127.0.0.1:2] }, { name: c, endpoints: [127.0.0.1:3] }]\n"
    "routes: [{ name: r, cluster: c }]\n";
const std::string kZeroWeight =
    "listeners: [{ name: p, address: 127.0.0.1:1 }]\n"
    "clusters: [{ name: c, endpoints: [{ address: 127.0.0.1:2, weight: 0 }] }]\n"
    "routes: [{ name: r, cluster: c }]\n";
const std::string kBadLogField = withListener("") + "access_log: { fields: [status, colour] }\n";
const std::string kBadLogLevel = withListener("") + "log: { level: verbose }\n";
const std::string kBadLogFormat = withListener("") + "log: { format: xml }\n";
const std::string kMissingListeners = "clusters: []\nroutes: []\n";
const std::string kSlowClientKey = withListener("    slow_client: { min_rate: 1KiB }\n");
const std::string kSlowClientRate = withListener("    slow_client: { body_min_rate: 512 }\n");
const std::string kSlowClientFastRate = withListener("    slow_client: { send_min_rate: 2GiB }\n");
const std::string kSlowClientWindow = withListener("    slow_client: { window: 10ms }\n");
const std::string kSlowClientGrace = withListener("    slow_client: { grace: 2h }\n");
const std::string kRouteSlowClient =
    "listeners: [{ name: p, address: 127.0.0.1:1 }]\nclusters: [{ name: c, endpoints: "
    "[127.0.0.1:2] }]\n"
    "routes: [{ name: r, cluster: c, slow_client: { body_total: soon } }]\n";

INSTANTIATE_TEST_SUITE_P(
    Broken, ConfigLoaderRejects,
    ::testing::Values(
        BrokenCase{"syntax", kSyntax.c_str(), "t.yaml:2:1: YAML syntax error"},
        BrokenCase{"duplicate_key", kDupKey.c_str(),
                   "t.yaml:4:5: duplicate key 'address' in listener"},
        BrokenCase{"wrong_type", kBadType.c_str(), "limits.headers must be an integer"},
        BrokenCase{"missing_unit", kBadUnit.c_str(), "size '10' is missing a unit"},
        BrokenCase{"unknown_unit", kUnknownUnit.c_str(), "unknown duration unit ' years'"},
        BrokenCase{"hostname", kHostname.c_str(), "is not an IP address"},
        BrokenCase{"no_port", kNoPort.c_str(), "expected ip:port"},
        BrokenCase{"v6_no_brackets", kV6NoBrackets.c_str(), "IPv6 addresses need brackets"},
        BrokenCase{"duplicate_listener", kDupListener.c_str(),
                   "t.yaml:3:5: duplicate listener name 'p'"},
        BrokenCase{"same_address", kSameAddress.c_str(), "uses the address of 'a'"},
        BrokenCase{"unknown_top_key", kDupCluster.c_str(),
                   "unknown key 'clusters_extra' in the config"},
        BrokenCase{"not_a_map", kNotAMap.c_str(), "t.yaml:1:1: the config must be a mapping"},
        BrokenCase{"bad_bool", kBadBool.c_str(), "trust_forwarded must be true or false"},
        BrokenCase{"no_endpoints", kNoEndpoints.c_str(), "endpoints must be a non-empty list"},
        BrokenCase{"bad_path", kBadPath.c_str(), "match.path_prefix must start with '/'"},
        BrokenCase{"bad_retry", kBadRetry.c_str(), "unknown retry condition 'sometimes'"},
        BrokenCase{"duplicate_route", kDupRoute.c_str(), "duplicate route name 'r'"},
        BrokenCase{"duplicate_cluster", kDupClusterName.c_str(), "duplicate cluster name 'c'"},
        BrokenCase{"zero_weight", kZeroWeight.c_str(), "endpoint weight must be an integer from 1"},
        BrokenCase{"bad_log_field", kBadLogField.c_str(), "unknown access_log field 'colour'"},
        BrokenCase{"bad_log_level", kBadLogLevel.c_str(),
                   "log.level must be one of trace, debug, info, warn, error, off, not 'verbose'"},
        BrokenCase{"bad_log_format", kBadLogFormat.c_str(),
                   "log.format must be one of text, json, not 'xml'"},
        BrokenCase{"missing_listeners", kMissingListeners.c_str(),
                   "missing required key 'listeners'"},
        BrokenCase{"slow_client_key", kSlowClientKey.c_str(),
                   "t.yaml:4:20: unknown key 'min_rate' in slow_client"},
        BrokenCase{"slow_client_rate_unit", kSlowClientRate.c_str(),
                   "t.yaml:4:35: slow_client.body_min_rate: size '512' is missing a unit"},
        BrokenCase{"slow_client_rate_max", kSlowClientFastRate.c_str(),
                   "slow_client.send_min_rate must be at most 1GiB"},
        BrokenCase{"slow_client_window", kSlowClientWindow.c_str(),
                   "slow_client.window must be at least 100ms"},
        BrokenCase{"slow_client_grace", kSlowClientGrace.c_str(),
                   "slow_client.grace must be at most 1h"},
        BrokenCase{"route_slow_client", kRouteSlowClient.c_str(),
                   "slow_client.body_total: expected a duration"},
        BrokenCase{"empty", "", "the config is empty"}),
    [](const ::testing::TestParamInfo<BrokenCase>& param) {
      return std::string(param.param.name);
    });

// Verifies a route's slow_client overrides its listener's key by key, the rest inherited.
TEST(ConfigLoader, RouteSlowClientOverridesTheListenersKeyByKey) {
  const auto r = load(
      "listeners: [{ name: p, address: 127.0.0.1:1, slow_client: { body_total: 2m, window: 5s } "
      "}]\n"
      "clusters: [{ name: c, endpoints: [127.0.0.1:2] }]\n"
      "routes: [{ name: r, cluster: c, slow_client: { body_min_rate: 2KiB, grace: 0s } }]\n",
      "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  const SlowClient& l = r.config->listeners[0].slow_client;
  EXPECT_EQ(l.body_total, Millis(120'000));
  EXPECT_EQ(l.window, Millis(5'000));
  EXPECT_EQ(l.body_min_rate, 512U);  // default kept
  const SlowClient route = r.config->routes[0].slow_client.over(l);
  EXPECT_EQ(route.body_total, Millis(120'000));
  EXPECT_EQ(route.body_min_rate, 2048U);
  EXPECT_EQ(route.send_min_rate, 512U);
  EXPECT_EQ(route.window, Millis(5'000));
  EXPECT_EQ(route.grace, Millis(0));
}

TEST(ConfigUnits, Durations) {
  std::string why;
  EXPECT_EQ(parseDuration("250ms", &why), Millis(250));
  EXPECT_EQ(parseDuration("2s", &why), Millis(2000));
  EXPECT_EQ(parseDuration("3m", &why), Millis(180'000));
  EXPECT_EQ(parseDuration("1h", &why), Millis(3'600'000));
  EXPECT_FALSE(parseDuration("1.5s", &why));
  EXPECT_FALSE(parseDuration("-1s", &why));
  EXPECT_FALSE(parseDuration("9999999999999999999999h", &why));
  EXPECT_FALSE(parseDuration("100000h", &why));
  EXPECT_THAT(why, HasSubstr("too long"));
}

TEST(ConfigUnits, Sizes) {
  std::string why;
  EXPECT_EQ(parseSize("512B", &why), 512U);
  EXPECT_EQ(parseSize("8KiB", &why), 8192U);
  EXPECT_EQ(parseSize("1KB", &why), 1000U);
  EXPECT_EQ(parseSize("1GiB", &why), 1ULL << 30U);
  EXPECT_FALSE(parseSize("8kib", &why));
  EXPECT_FALSE(parseSize("99999999999TiB", &why));
}

TEST(ConfigUnits, Addresses) {
  std::string why;
  EXPECT_EQ(parseAddress("localhost:80", &why)->text(), "127.0.0.1:80");
  EXPECT_EQ(parseAddress("[::1]:443", &why)->text(), "[::1]:443");
  EXPECT_FALSE(parseAddress("127.0.0.1:0", &why));
  EXPECT_FALSE(parseAddress("1.2.3:80", &why));
  EXPECT_FALSE(parseAddress("[::1]443", &why));
  EXPECT_FALSE(parseAddress("127.0.0.1:8o", &why));
}

TEST(ConfigLoader, AdminTokenFile) {
  const auto r = load(
      std::string(kMinimal) + "admin: { address: 127.0.0.1:9901, token_file: /etc/sluice/t }\n",
      "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  EXPECT_EQ(r.config->admin->token_file, "/etc/sluice/t");
  EXPECT_TRUE(r.warnings.empty());

  const auto empty = load(
      std::string(kMinimal) + "admin: { address: 127.0.0.1:9901, token_file: \"\" }\n", "t.yaml");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.diagnostics.front().format(),
            "t.yaml:10:47: admin.token_file must be a file path");
}

TEST(ConfigLoader, WarnsAboutAnAdminListenerOthersCanReachWithoutAToken) {
  const auto open = load(std::string(kMinimal) + "admin: { address: 0.0.0.0:9901 }\n", "t.yaml");
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open.warnings.size(), 1U);
  EXPECT_THAT(open.warnings[0].format(),
              HasSubstr("t.yaml:10:19: warning: the admin listener on 0.0.0.0:9901 is not "
                        "loopback and has no token_file"));
  for (const char* fine :
       {"admin: { address: 127.0.0.2:9901 }\n", "admin: { address: \"[::1]:9901\" }\n",
        "admin: { address: 10.0.0.1:9901, token_file: /t }\n"}) {
    const auto r = load(std::string(kMinimal) + fine, "t.yaml");
    ASSERT_TRUE(r.ok()) << fine;
    EXPECT_TRUE(r.warnings.empty()) << fine;
  }
}

TEST(ConfigLoader, EndpointsCarryMetadata) {
  const Config c = loaded(
      "listeners: [{ name: p, address: 127.0.0.1:8080 }]\n"
      "clusters:\n"
      "  - name: pay\n"
      "    endpoints:\n"
      "      - { address: 127.0.0.1:9000, metadata: { env: gray, zone: eu-1 } }\n"
      "      - 127.0.0.1:9001\n"
      "routes: [{ name: all, cluster: pay }]\n");
  const auto& eps = c.clusters.at(0).endpoints;
  EXPECT_EQ(eps.at(0).metadata,
            (std::map<std::string, std::string>{{"env", "gray"}, {"zone", "eu-1"}}));
  EXPECT_TRUE(eps.at(1).metadata.empty());
  // The endpoints file takes the same syntax.
  const auto file =
      loadEndpoints("- { address: 127.0.0.1:9002, metadata: { env: gray } }\n", "eps.yaml");
  ASSERT_TRUE(file.endpoints) << file.diagnostics.front().format();
  EXPECT_EQ(file.endpoints->at(0).metadata.at("env"), "gray");
}

TEST(ConfigLoader, RejectsBadEndpointMetadata) {
  const auto bad = [](const std::string& metadata) {
    std::vector<std::string> out;
    for (const auto& d :
         loadEndpoints("- { address: 127.0.0.1:9002, metadata: " + metadata + " }\n", "eps.yaml")
             .diagnostics) {
      out.push_back(d.format());
    }
    return out;
  };
  EXPECT_THAT(bad("[gray]"),
              ::testing::ElementsAre("eps.yaml:1:40: endpoint metadata must be a mapping of "
                                     "names to text, e.g. { env: gray }"));
  EXPECT_THAT(bad("{ env: [a] }"),
              ::testing::ElementsAre("eps.yaml:1:47: endpoint metadata value must be a scalar "
                                     "value"));
  EXPECT_THAT(bad("{ env: " + std::string(257, 'x') + " }"),
              ::testing::ElementsAre("eps.yaml:1:42: endpoint metadata keys must be 1 to 256 "
                                     "bytes and values at most 256"));
  std::string many = "{ ";
  for (int i = 0; i < 33; ++i) many += "k" + std::to_string(i) + ": v, ";
  many += "}";
  EXPECT_THAT(bad(many), ::testing::ElementsAre(HasSubstr("has 33 entries (at most 32)")));
}

}  // namespace
}  // namespace sluice::gateway::config
