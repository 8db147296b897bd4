// Config's defaulted operator==: what a reload uses to tell an unchanged definition.
#include "gateway/config/config.h"

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gateway/config/config_test_support.h"

namespace sluice::gateway::config {
namespace {

constexpr const char* kConfig = R"(workers: 2
admin: { address: 127.0.0.1:9901 }
listeners:
  - name: public
    address: 127.0.0.1:8080
    limits: { body: 1MiB }
clusters:
  - name: api
    endpoints: [{ address: 127.0.0.1:9000, weight: 2 }, 127.0.0.1:9001]
    lb: { policy: least_request, slow_start: { window: 10s } }
    health_check: { path: /healthz, expected_statuses: [200-299] }
    circuit_breaker: { fallback: { headers: { X-A: b } } }
routes:
  - name: all
    cluster: api
    retry: { on: [reset, 503] }
    rate_limit: { rate: 10/s, key: [client_ip, "header:X-Key"] }
)";

TEST(ConfigEquality, TheSameTextLoadsToEqualConfigs) {
  const Config a = loaded(kConfig);
  const Config b = loaded(kConfig);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a != b);
  EXPECT_TRUE(Config{} == Config{});
}

TEST(ConfigEquality, OneChangedFieldAtAnyDepthMakesThemUnequal) {
  const Config base = loaded(kConfig);
  const std::vector<std::pair<const char*, std::function<void(Config&)>>> changes = {
      {"workers", [](Config& c) { c.workers = 3; }},
      {"admin", [](Config& c) { c.admin.reset(); }},
      {"listener limit", [](Config& c) { c.listeners[0].limits.body += 1; }},
      {"listener address ip", [](Config& c) { c.listeners[0].address.ip = "127.0.0.2"; }},
      {"endpoint weight", [](Config& c) { c.clusters[0].endpoints[1].weight = 2; }},
      {"endpoint removed", [](Config& c) { c.clusters[0].endpoints.pop_back(); }},
      {"slow start window", [](Config& c) { c.clusters[0].lb.slow_start->window += Millis(1); }},
      {"health check range",
       [](Config& c) { c.clusters[0].health_check->expected_statuses[0].last = 298; }},
      {"fallback header value",
       [](Config& c) { c.clusters[0].circuit_breaker->fallback.headers[0].second = "c"; }},
      {"fallback cache bytes",
       [](Config& c) { c.clusters[0].circuit_breaker->fallback.cache_max_bytes -= 1; }},
      {"breaker failure rate",
       [](Config& c) { c.clusters[0].circuit_breaker->failure_rate = 50.5; }},
      {"retry status", [](Config& c) { c.routes[0].retry.on.statuses.push_back(504); }},
      {"rate key header", [](Config& c) { c.routes[0].rate_limit->key[1].header = "x-other"; }},
      {"route fault added", [](Config& c) { c.routes[0].fault.emplace(); }},
      {"access log path", [](Config& c) { c.access_log.path = "stderr"; }},
  };
  for (const auto& [what, change] : changes) {
    Config changed = base;
    ASSERT_TRUE(changed == base) << what;
    change(changed);
    EXPECT_FALSE(changed == base) << what;
    EXPECT_TRUE(changed != base) << what;
  }
}

}  // namespace
}  // namespace sluice::gateway::config
