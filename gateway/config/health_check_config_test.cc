// A cluster's health_check and the lb options that go with it (panic_threshold, slow_start):
// defaults, parsing, and every broken case reported with its position.
#include "gateway/config/health_check_config.h"

#include <gtest/gtest.h>

#include "gateway/config/config_test_support.h"

namespace sluice::gateway::config {
namespace {

TEST(HealthCheckConfig, DefaultsAndFields) {
  auto c = loaded(withRoute("", "    health_check: {}\n"));
  const HealthCheck& d = *c.clusters[0].health_check;
  EXPECT_EQ(d.type, HealthCheck::Type::Http);
  EXPECT_EQ(d.path, "/");
  EXPECT_TRUE(d.host.empty());
  EXPECT_EQ(d.interval, Millis(5000));
  EXPECT_EQ(d.effectiveJitter(), Millis(500));
  EXPECT_EQ(d.timeout, Millis(1000));
  EXPECT_EQ(d.unhealthy_threshold, 3U);
  EXPECT_EQ(d.healthy_threshold, 2U);
  EXPECT_TRUE(d.expects(200) && d.expects(299));
  EXPECT_FALSE(d.expects(199) || d.expects(300) || d.expects(503));
  EXPECT_FALSE(c.clusters[1].health_check);
  EXPECT_EQ(c.clusters[0].lb.panic_threshold, 50);
  EXPECT_FALSE(c.clusters[0].lb.slow_start);

  c = loaded(
      withRoute("",
                "    health_check:\n      path: /healthz?deep=1\n      host: api.internal\n"
                "      expected_statuses: [200-204, 301]\n      interval: 2s\n"
                "      jitter: 0s\n      timeout: 250ms\n      unhealthy_threshold: 1\n"
                "      healthy_threshold: 5\n"
                "    lb:\n      policy: least_request\n      panic_threshold: 0\n"
                "      slow_start: { window: 1m, aggression: 2.5, min_weight_percent: 5 }\n"));
  const HealthCheck& h = *c.clusters[0].health_check;
  EXPECT_EQ(h.path, "/healthz?deep=1");
  EXPECT_EQ(h.host, "api.internal");
  EXPECT_TRUE(h.expects(204) && h.expects(301));
  EXPECT_FALSE(h.expects(205) || h.expects(300));
  EXPECT_EQ(h.interval, Millis(2000));
  EXPECT_EQ(h.effectiveJitter(), Millis(0));
  EXPECT_EQ(h.timeout, Millis(250));
  EXPECT_EQ(h.unhealthy_threshold, 1U);
  EXPECT_EQ(h.healthy_threshold, 5U);
  const LoadBalancing& lb = c.clusters[0].lb;
  EXPECT_EQ(lb.panic_threshold, 0);
  ASSERT_TRUE(lb.slow_start);
  EXPECT_EQ(lb.slow_start->window, Millis(60'000));
  EXPECT_EQ(lb.slow_start->aggression, 2.5);
  EXPECT_EQ(lb.slow_start->min_weight_percent, 5);

  c = loaded(withRoute("", "    health_check: { type: tcp, interval: 100ms }\n"));
  EXPECT_EQ(c.clusters[0].health_check->type, HealthCheck::Type::Tcp);
}

INSTANTIATE_TEST_SUITE_P(
    HealthCheck, ResilienceConfigRejects,
    ::testing::Values(
        BrokenSection{"unknown_type", "", "    health_check: { type: grpc }\n",
                      "t.yaml:5:27: health_check.type must be http or tcp, got 'grpc'"},
        BrokenSection{"path_on_tcp", "", "    health_check: { type: tcp, path: /x }\n",
                      "health_check.path applies to type http only"},
        BrokenSection{"relative_path", "", "    health_check: { path: healthz }\n",
                      "health_check.path must start with '/'"},
        BrokenSection{"path_with_space", "", "    health_check: { path: '/a b' }\n",
                      "health_check.path must start with '/' and hold visible ASCII only"},
        BrokenSection{"host_with_crlf", "", "    health_check: { host: \"a\\r\\nX: y\" }\n",
                      "health_check.host must be a host name"},
        BrokenSection{"status_range_backwards", "",
                      "    health_check: { expected_statuses: [299-200] }\n",
                      "item '299-200' must be a status (100-599) or a range"},
        BrokenSection{"status_out_of_range", "", "    health_check: { expected_statuses: [600] }\n",
                      "item '600' must be a status"},
        BrokenSection{"statuses_empty", "", "    health_check: { expected_statuses: [] }\n",
                      "health_check.expected_statuses must be a non-empty list"},
        BrokenSection{"interval_too_short", "", "    health_check: { interval: 1ms }\n",
                      "health_check.interval must be at least 10ms"},
        BrokenSection{"interval_without_unit", "", "    health_check: { interval: 5 }\n",
                      "health_check.interval: "},
        BrokenSection{"threshold_zero", "", "    health_check: { healthy_threshold: 0 }\n",
                      "health_check.healthy_threshold must be an integer from 1 to 1000"},
        BrokenSection{"unknown_key", "", "    health_check: { unhealthy_after: 3 }\n",
                      "unknown key 'unhealthy_after' in health_check"},
        BrokenSection{"panic_above_100", "", "    lb: { policy: random, panic_threshold: 101 }\n",
                      "lb.panic_threshold (percent) must be a number from 0 to 100"},
        BrokenSection{
            "slow_start_with_hashing", "",
            "    health_check: {}\n    lb: { policy: maglev, slow_start: { window: 10s } }\n",
            "lb.slow_start does not apply to policy maglev"},
        BrokenSection{
            "slow_start_without_checks", "",
            "    lb: { policy: round_robin, slow_start: { window: 10s } }\n",
            "t.yaml:5:44: lb.slow_start needs a health_check or discovery in cluster 'api'"},
        BrokenSection{"slow_start_aggression_zero", "",
                      "    health_check: {}\n"
                      "    lb: { policy: round_robin, slow_start: { aggression: 0 } }\n",
                      "lb.slow_start.aggression must be above 0"},
        BrokenSection{"slow_start_unknown", "",
                      "    health_check: {}\n"
                      "    lb: { policy: round_robin, slow_start: { duration: 10s } }\n",
                      "unknown key 'duration' in lb.slow_start"}),
    [](const auto& test) { return std::string(test.param.name); });

}  // namespace
}  // namespace sluice::gateway::config
