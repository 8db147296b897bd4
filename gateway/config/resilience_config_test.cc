// The route and cluster sections of the resilience issue: retry, retry_budget, circuit_breaker
// and fault - defaults, parsing, and every broken case reported with its position.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/config/breaker_config.h"
#include "gateway/config/config_test_support.h"
#include "gateway/config/lb_config.h"
#include "gateway/config/loader.h"
#include "gateway/config/retry_config.h"

namespace sluice::gateway::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ResilienceConfig, RetryDefaultsAndFields) {
  auto c = loaded(withRoute(""));
  const RetryPolicy& d = c.routes[0].retry;
  EXPECT_EQ(d.attempts, 2U);
  EXPECT_TRUE(d.on.connect_failure);
  EXPECT_FALSE(d.on.reset || d.on.timeout || !d.on.statuses.empty());
  EXPECT_FALSE(d.per_try_timeout);
  EXPECT_FALSE(d.any_method);
  EXPECT_EQ(c.clusters[0].retry_budget.percent, 20);

  c = loaded(
      withRoute("    retry:\n      attempts: 3\n      on: [reset, timeout, gateway-error, 429]\n"
                "      per_try_timeout: 250ms\n      methods: any\n      backoff_base: 10ms\n"
                "      backoff_max: 1s\n",
                "    retry_budget: { percent: 12.5, min_per_second: 0, window: 30s }\n"));
  const RetryPolicy& p = c.routes[0].retry;
  EXPECT_EQ(p.attempts, 3U);
  EXPECT_FALSE(p.on.connect_failure);  // a list replaces the default
  EXPECT_TRUE(p.on.reset && p.on.timeout);
  EXPECT_THAT(p.on.statuses, ElementsAre(429, 502, 503, 504));
  EXPECT_EQ(p.per_try_timeout, Millis(250));
  EXPECT_TRUE(p.any_method);
  EXPECT_EQ(p.backoff_base, Millis(10));
  EXPECT_EQ(p.backoff_max, Millis(1000));
  EXPECT_THAT(retryOnText(p.on), ElementsAre("reset", "timeout", "429", "502", "503", "504"));
  EXPECT_EQ(c.clusters[0].retry_budget.percent, 12.5);
  EXPECT_EQ(c.clusters[0].retry_budget.min_per_second, 0);
  EXPECT_EQ(c.clusters[0].retry_budget.window, Millis(30'000));
}

TEST(ResilienceConfig, BreakerDefaultsFieldsAndFallbacks) {
  auto c = loaded(withRoute("", "    circuit_breaker: {}\n"));
  const CircuitBreaker& d = *c.clusters[0].circuit_breaker;
  EXPECT_EQ(d.window, 100U);
  EXPECT_EQ(d.minimum_calls, 20U);
  EXPECT_EQ(d.failure_statuses.size(), 100U);  // 500-599
  EXPECT_EQ(d.fallback.status, 503);
  EXPECT_FALSE(d.fallback.cache || d.fallback.cluster);

  c = loaded(withRoute(
      "    circuit_breaker:\n      window: 10s\n      minimum_calls: 5\n      failure_rate: 40\n"
      "      slow_call_rate: 80\n      slow_call_duration: 2s\n      open_duration: 1s\n"
      "      open_duration_multiplier: 2\n      max_open_duration: 1m\n      half_open_probes: 2\n"
      "      failure_statuses: [502, 503]\n"
      "      fallback:\n        status: 200\n        body: '{\"items\":[]}'\n"
      "        content_type: application/json\n        headers: { X-Degraded: 'yes' }\n"
      "        cache: { entries: 10, max_body: 4KiB }\n"));
  const CircuitBreaker& b = *c.routes[0].circuit_breaker;
  EXPECT_EQ(b.window_time, Millis(10'000));
  EXPECT_EQ(b.minimum_calls, 5U);
  EXPECT_EQ(b.failure_rate, 40);
  EXPECT_EQ(b.slow_call_duration, Millis(2000));
  EXPECT_EQ(b.open_duration_multiplier, 2);
  EXPECT_THAT(b.failure_statuses, ElementsAre(502, 503));
  EXPECT_EQ(b.fallback.status, 200);
  EXPECT_EQ(b.fallback.content_type, "application/json");
  ASSERT_EQ(b.fallback.headers.size(), 1U);
  EXPECT_TRUE(b.fallback.cache);
  EXPECT_EQ(b.fallback.cache_entries, 10U);
  EXPECT_EQ(b.fallback.cache_max_body, 4096U);
  const auto s = breakerSettings(b);
  EXPECT_EQ(s.window_type, resilience::CircuitBreaker::WindowType::TimeBased);
  EXPECT_EQ(s.half_open_probes, 2U);

  c = loaded(withRoute("    circuit_breaker: { fallback: { cluster: spare } }\n"));
  EXPECT_EQ(c.routes[0].circuit_breaker->fallback.cluster, "spare");
  EXPECT_EQ(c.routes[0].circuit_breaker->share, CircuitBreaker::Share::None);

  c = loaded("redis: { address: 127.0.0.1:6379 }\n" +
             withRoute("    circuit_breaker: { share: redis }\n",
                       "    circuit_breaker: { share: redis, share_mode: hint }\n"));
  EXPECT_EQ(c.routes[0].circuit_breaker->share, CircuitBreaker::Share::Redis);
  EXPECT_EQ(c.routes[0].circuit_breaker->share_mode, CircuitBreaker::ShareMode::Authoritative);
  EXPECT_EQ(c.clusters[0].circuit_breaker->share_mode, CircuitBreaker::ShareMode::Hint);
}

TEST(ResilienceConfig, OutlierDetection) {
  auto c = loaded(withRoute("", "    outlier_detection: {}\n"));
  const OutlierDetection& d = *c.clusters[0].outlier_detection;
  EXPECT_EQ(d.consecutive_5xx, 5U);
  EXPECT_EQ(d.failure_percentage, 85.0);
  EXPECT_EQ(d.max_ejection_percent, 10.0);
  c = loaded(withRoute("",
                       "    outlier_detection: { consecutive_gateway_failure: 2, "
                       "failure_percentage: off, interval: 1s, max_ejection_percent: 50 }\n"));
  const OutlierDetection& o = *c.clusters[0].outlier_detection;
  EXPECT_EQ(o.consecutive_gateway_failure, 2U);
  EXPECT_FALSE(o.failure_percentage);
  EXPECT_EQ(o.interval, Millis(1000));
  EXPECT_EQ(o.max_ejection_percent, 50.0);
}

TEST(ResilienceConfig, LoadBalancingAndHashKeys) {
  auto c = loaded(withRoute("    hash_key: [cookie:sid, 'header:X-User', query:u, path]\n",
                            "    lb: { policy: ring_hash, ring_vnodes: 50 }\n"));
  EXPECT_EQ(c.clusters[0].lb.policy, LbPolicy::RingHash);
  EXPECT_EQ(c.clusters[0].lb.ring_vnodes, 50U);
  using K = HashKeyPart::Kind;
  EXPECT_THAT(c.routes[0].hash_key,
              ElementsAre(HashKeyPart{K::Cookie, "sid"}, HashKeyPart{K::Header, "x-user"},
                          HashKeyPart{K::Query, "u"}, HashKeyPart{K::Path, ""}));
  for (const char* p : {"random", "least_request", "least_connections", "peak_ewma", "maglev"}) {
    c = loaded(withRoute("", "    lb: " + std::string(p) + "\n"));
    EXPECT_EQ(policyName(c.clusters[0].lb.policy), p);
  }
  c = loaded(withRoute("", "    lb: { policy: peak_ewma, ewma_decay: 2s }\n"));
  EXPECT_EQ(c.clusters[0].lb.ewma_decay, Millis(2000));
  EXPECT_FALSE(c.clusters[0].lb.balance_factor || c.clusters[0].lb.dynamic_weights);
  c = loaded(
      withRoute("    hash_key: path\n", "    lb: { policy: ring_hash, balance_factor: 1.25 }\n"));
  EXPECT_EQ(c.clusters[0].lb.balance_factor, 1.25);
  c = loaded(withRoute("", "    lb: { policy: least_request, dynamic_weights: {} }\n"));
  const DynamicWeights& d = *c.clusters[0].lb.dynamic_weights;
  EXPECT_EQ(d.signal, DynamicWeights::Signal::Latency);
  EXPECT_EQ(d.decay_time, Millis(10'000));
  EXPECT_EQ(d.update_interval, Millis(1000));
  EXPECT_EQ(d.min_weight_percent, 10);
  c = loaded(withRoute("",
                       "    lb:\n      policy: round_robin\n      dynamic_weights:\n"
                       "        signal: utilization\n        header: X-Load\n"
                       "        blackout: 0s\n        report_ttl: 30s\n"
                       "        update_interval: 250ms\n        error_penalty: 2\n"));
  const DynamicWeights& u = *c.clusters[0].lb.dynamic_weights;
  EXPECT_EQ(u.signal, DynamicWeights::Signal::Utilization);
  EXPECT_EQ(u.header, "x-load");
  EXPECT_EQ(u.blackout, Millis(0));
  EXPECT_EQ(u.report_ttl, Millis(30'000));
  EXPECT_EQ(u.update_interval, Millis(250));
  EXPECT_EQ(u.error_penalty, 2);
}

TEST(ResilienceConfig, Fault) {
  auto c =
      loaded(withRoute("    fault:\n      delay: { duration: 100ms, percent: 50 }\n"
                       "      abort: { status: 503 }\n"));
  const Fault& f = *c.routes[0].fault;
  EXPECT_EQ(f.delay, Millis(100));
  EXPECT_EQ(f.delay_percent, 50);
  EXPECT_EQ(f.abort_status, 503);
  EXPECT_EQ(f.abort_percent, 100);
}

TEST_P(ResilienceConfigRejects, WithPositionAndReason) {
  const auto& b = GetParam();
  const auto p = problems(withRoute(b.route, b.cluster));
  ASSERT_EQ(p.size(), 1U) << ::testing::PrintToString(p);
  EXPECT_THAT(p[0], HasSubstr(b.expected));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ResilienceConfigRejects,
    ::testing::Values(
        BrokenSection{"retry_unknown_condition", "    retry: { on: [flaky] }\n", "",
                      "t.yaml:10:19: unknown retry condition 'flaky'"},
        BrokenSection{"retry_status_out_of_range", "    retry: { on: [302] }\n", "",
                      "unknown retry condition '302'"},
        BrokenSection{"retry_on_empty", "    retry: { on: [] }\n", "",
                      "retry.on must be a non-empty"},
        BrokenSection{"retry_methods", "    retry: { methods: post }\n", "",
                      "retry.methods must be 'idempotent' or 'any'"},
        BrokenSection{"retry_backoff_order", "    retry: { backoff_base: 1s, backoff_max: 10ms }\n",
                      "", "retry.backoff_max (10ms) must be at least retry.backoff_base (1000ms)"},
        BrokenSection{"retry_per_try_unit", "    retry: { per_try_timeout: 5 }\n", "",
                      "retry.per_try_timeout"},
        BrokenSection{"retry_unknown_key", "    retry: { tries: 3 }\n", "", "unknown key 'tries'"},
        BrokenSection{"budget_percent", "", "    retry_budget: { percent: -1 }\n",
                      "t.yaml:5:30: retry_budget.percent must be a number from 0 to 1000"},
        BrokenSection{"budget_window", "", "    retry_budget: { window: 10ms }\n",
                      "retry_budget.window must be at least 100ms"},
        BrokenSection{"breaker_window", "    circuit_breaker: { window: 0 }\n", "",
                      "circuit_breaker.window (calls) must be an integer from 1"},
        BrokenSection{"breaker_window_garbage", "    circuit_breaker: { window: lots }\n", "",
                      "circuit_breaker.window (a call count or a duration)"},
        BrokenSection{"breaker_minimum_above_window",
                      "    circuit_breaker: { window: 10, minimum_calls: 20 }\n", "",
                      "circuit_breaker.minimum_calls (20) cannot exceed the window (10 calls)"},
        BrokenSection{"breaker_rate", "    circuit_breaker: { failure_rate: 150 }\n", "",
                      "circuit_breaker.failure_rate (percent) must be a number from 0 to 100"},
        BrokenSection{"breaker_max_open",
                      "    circuit_breaker: { open_duration: 1m, "
                      "max_open_duration: 10s }\n",
                      "", "max_open_duration must be at least open_duration"},
        BrokenSection{"breaker_failure_status",
                      "    circuit_breaker: { failure_statuses: [200] }\n", "",
                      "failure_statuses entry (a status or 5xx) must be an integer from 400"},
        BrokenSection{"breaker_share_without_redis", "    circuit_breaker: { share: redis }\n", "",
                      "t.yaml:10:31: circuit_breaker.share redis needs a top-level redis section"},
        BrokenSection{"breaker_share_unknown", "    circuit_breaker: { share: etcd }\n", "",
                      "unknown circuit_breaker.share 'etcd' (known: none, redis)"},
        BrokenSection{"breaker_share_mode_alone", "    circuit_breaker: { share_mode: hint }\n", "",
                      "circuit_breaker.share_mode applies only with share: redis"},
        BrokenSection{"fallback_unknown_cluster",
                      "    circuit_breaker: { fallback: { cluster: nowhere } }\n", "",
                      "fallback.cluster 'nowhere' is not a cluster"},
        BrokenSection{"fallback_own_cluster",
                      "    circuit_breaker: { fallback: { cluster: api } }\n", "",
                      "fallback.cluster 'api' is a cluster it stands in for"},
        BrokenSection{"fallback_cluster_and_body",
                      "    circuit_breaker: { fallback: { cluster: spare, body: x } }\n", "",
                      "fallback.cluster forwards to another cluster"},
        BrokenSection{"fallback_header_name",
                      "    circuit_breaker: { fallback: { headers: { 'bad name': x } } }\n", "",
                      "fallback header name 'bad name'"},
        BrokenSection{"fallback_framing_header",
                      "    circuit_breaker: { fallback: { headers: { Content-Length: '5' } } }\n",
                      "", "fallback header 'Content-Length' is set by sluice"},
        BrokenSection{
            "fallback_content_type_crlf",
            "    circuit_breaker: { fallback: { content_type: \"text/plain\\r\\nX: y\" } }\n", "",
            "fallback.content_type must be a non-empty value without CR or LF"},
        BrokenSection{"fallback_status", "    circuit_breaker: { fallback: { status: 99 } }\n", "",
                      "fallback.status must be an integer from 200 to 599"},
        BrokenSection{"outlier_percentage_zero", "",
                      "    outlier_detection: { failure_percentage: 0 }\n",
                      "outlier_detection.failure_percentage must be above 0 (or 'off')"},
        BrokenSection{"outlier_times", "",
                      "    outlier_detection: { base_ejection_time: 1m, max_ejection_time: 10s }\n",
                      "max_ejection_time must be at least base_ejection_time"},
        BrokenSection{"outlier_unknown", "", "    outlier_detection: { consecutive_500: 3 }\n",
                      "unknown key 'consecutive_500' in outlier_detection"},
        BrokenSection{"bulkhead_zero_requests", "", "    bulkhead: { max_requests: 0 }\n",
                      "bulkhead.max_requests must be an integer from 1"},
        BrokenSection{"bulkhead_unknown", "", "    bulkhead: { max_pending_requests: 5 }\n",
                      "unknown key 'max_pending_requests' in bulkhead"},
        BrokenSection{"lb_unknown", "", "    lb: fastest\n",
                      "unknown lb policy 'fastest' (known: "},
        BrokenSection{"lb_param_of_other_policy", "",
                      "    lb: { policy: maglev, ring_vnodes: 10 }\n",
                      "lb.ring_vnodes applies to policy ring_hash only"},
        BrokenSection{"lb_maglev_not_prime", "",
                      "    lb: { policy: maglev, maglev_table_size: 1000 }\n",
                      "lb.maglev_table_size: "},
        BrokenSection{"balance_factor_on_maglev", "",
                      "    lb: { policy: maglev, balance_factor: 1.5 }\n",
                      "lb.balance_factor applies to policy ring_hash only"},
        BrokenSection{"balance_factor_below_one", "",
                      "    lb: { policy: ring_hash, balance_factor: 0.5 }\n",
                      "lb.balance_factor must be a number from 1 to 1000"},
        BrokenSection{"dynamic_weights_with_hashing", "",
                      "    lb: { policy: ring_hash, dynamic_weights: {} }\n",
                      "lb.dynamic_weights does not apply to policy ring_hash"},
        BrokenSection{"dynamic_weights_signal", "",
                      "    lb: { policy: random, dynamic_weights: { signal: cpu } }\n",
                      "lb.dynamic_weights.signal must be latency or utilization, got 'cpu'"},
        BrokenSection{"dynamic_weights_header_for_latency", "",
                      "    lb: { policy: random, dynamic_weights: { header: X-Load } }\n",
                      "lb.dynamic_weights.header applies to signal utilization only"},
        BrokenSection{"dynamic_weights_min_weight_zero", "",
                      "    lb: { policy: random, dynamic_weights: { min_weight_percent: 0 } }\n",
                      "lb.dynamic_weights.min_weight_percent must be above 0"},
        BrokenSection{"hash_key_without_hashing", "    hash_key: client_ip\n", "",
                      "hash_key has no effect: cluster 'api' balances with round_robin"},
        BrokenSection{"hash_key_bad_part", "    hash_key: ['cookie:']\n", "    lb: ring_hash\n",
                      "hash_key part 'cookie:' must be client_ip, path, header:<name>"},
        BrokenSection{"fault_empty", "    fault: {}\n", "",
                      "fault needs a delay, an abort or both"},
        BrokenSection{"fault_abort_without_status", "    fault: { abort: { percent: 5 } }\n", "",
                      "fault.abort is missing required key 'status'"},
        BrokenSection{"fault_percent", "    fault: { delay: { duration: 1s, percent: 101 } }\n", "",
                      "fault.delay.percent must be a number from 0 to 100"}),
    [](const auto& test) { return std::string(test.param.name); });

}  // namespace
}  // namespace sluice::gateway::config
