#include "gateway/config/guard_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/config/config_test_support.h"
#include "gateway/config/loader.h"

namespace sluice::gateway::config {
namespace {

using ::testing::HasSubstr;

std::string withOneCluster(const std::string& route_extra, const std::string& cluster_extra = "") {
  return "listeners: [{ name: p, address: 127.0.0.1:8080 }]\n"
         "clusters:\n  - name: api\n    endpoints: [127.0.0.1:9000]\n" +
         cluster_extra + "routes:\n  - name: all\n    cluster: api\n" + route_extra;
}

TEST(GuardConfig, ParsesRates) {
  std::string why;
  auto r = parseRate("100/s", &why);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->requests, 100U);
  EXPECT_EQ(r->period, Millis(1000));
  r = parseRate("6000/m", &why);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->period, Millis(60'000));
  r = parseRate("5/10s", &why);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->requests, 5U);
  EXPECT_EQ(r->period, Millis(10'000));
  for (const char* bad : {"100", "100/", "/s", "0/s", "-1/s", "1.5/s", "10/x", "10/10"}) {
    EXPECT_FALSE(parseRate(bad, &why)) << bad;
    EXPECT_FALSE(why.empty());
  }
  EXPECT_FALSE(parseRate("2000000000/s", &why));
  EXPECT_THAT(why, HasSubstr("above 1e9"));
}

TEST(GuardConfig, RateLimitDefaultsAndFields) {
  auto r = load(withOneCluster("    rate_limit: { rate: 100/s }\n"), "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  const RateLimit& rl = *r.config->routes[0].rate_limit;
  EXPECT_EQ(rl.algorithm, RateAlgorithm::Gcra);
  EXPECT_EQ(rl.requests, 100U);
  EXPECT_EQ(rl.burst, 1U);
  ASSERT_EQ(rl.key.size(), 1U);
  EXPECT_EQ(rl.key[0].kind, RateKeyPart::Kind::ClientIp);
  EXPECT_EQ(rl.max_keys, 100'000U);
  EXPECT_EQ(rl.status, 429);

  r = load(
      withOneCluster("    rate_limit:\n      algorithm: leaky_bucket\n      rate: 10/s\n"
                     "      burst: 20\n      delay: 8\n      key: [client_ip, 'header:X-Api-Key']\n"
                     "      max_keys: 5000\n      status: 503\n"),
      "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  const RateLimit& lb = *r.config->routes[0].rate_limit;
  EXPECT_EQ(lb.algorithm, RateAlgorithm::LeakyBucket);
  EXPECT_EQ(lb.burst, 20U);
  EXPECT_EQ(lb.delay, 8U);
  ASSERT_EQ(lb.key.size(), 2U);
  EXPECT_EQ(lb.key[1].kind, RateKeyPart::Kind::Header);
  EXPECT_EQ(lb.key[1].header, "x-api-key");  // lower-cased
  EXPECT_EQ(keyPartText(lb.key[1]), "header:x-api-key");
  EXPECT_EQ(lb.status, 503);

  r = load(withOneCluster("", "    rate_limit: { rate: 1000/s, burst: 50, key: route }\n"),
           "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  EXPECT_EQ(r.config->clusters[0].rate_limit->key[0].kind, RateKeyPart::Kind::Route);
  // Leaky bucket's burst is nginx's excess, 0 by default.
  r = load(withOneCluster("    rate_limit: { algorithm: leaky_bucket, rate: 1/s }\n"), "t.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->routes[0].rate_limit->burst, 0U);
}

TEST(GuardConfig, ConcurrencyStaticAndAdaptive) {
  auto r = load(withOneCluster("    concurrency: { max: 64, queue: 10, queue_timeout: 250ms }\n"),
                "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  const Concurrency& c = *r.config->routes[0].concurrency;
  EXPECT_EQ(c.max, 64U);
  EXPECT_FALSE(c.adaptive);
  EXPECT_EQ(c.queue, 10U);
  EXPECT_EQ(c.queue_timeout, Millis(250));
  EXPECT_EQ(c.status, 503);
  EXPECT_EQ(c.retry_after, Millis(1000));
  EXPECT_FALSE(c.queue_delay);

  r = load(withOneCluster("    concurrency: { max: 4, queue: 8, queue_delay: { target: 10ms } }\n"),
           "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  ASSERT_TRUE(r.config->routes[0].concurrency->queue_delay);
  EXPECT_EQ(r.config->routes[0].concurrency->queue_delay->target, Millis(10));
  EXPECT_EQ(r.config->routes[0].concurrency->queue_delay->interval, Millis(100));

  r = load(
      withOneCluster("    concurrency:\n      adaptive: { algorithm: aimd, initial: 8, min: 2, "
                     "max: 100, timeout: 200ms }\n"),
      "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  const auto& a = *r.config->routes[0].concurrency->adaptive;
  EXPECT_EQ(a.algorithm, AdaptiveConcurrency::Algorithm::Aimd);
  EXPECT_EQ(a.initial, 8U);
  EXPECT_EQ(a.timeout, Millis(200));
  EXPECT_EQ(a.backoff_cooldown, Millis(0));  // off unless set

  r = load(withOneCluster("    concurrency:\n      adaptive: { algorithm: aimd, backoff_cooldown: "
                          "300ms }\n"),
           "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  EXPECT_EQ(r.config->routes[0].concurrency->adaptive->backoff_cooldown, Millis(300));

  r = load(withOneCluster("    concurrency:\n      adaptive: { window_samples: 100, "
                          "window_duration: 100ms }\n"),
           "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  const auto& g = *r.config->routes[0].concurrency->adaptive;
  EXPECT_EQ(g.algorithm, AdaptiveConcurrency::Algorithm::Gradient);
  EXPECT_EQ(g.window_samples, 100U);
  EXPECT_EQ(g.window_duration, Millis(100));

  r = load(withOneCluster("    concurrency:\n      adaptive: { algorithm: auto, min: 2 }\n"),
           "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  EXPECT_EQ(r.config->routes[0].concurrency->adaptive->algorithm,
            AdaptiveConcurrency::Algorithm::Auto);
}

class GuardConfigRejects : public ::testing::TestWithParam<BrokenSection> {};

TEST_P(GuardConfigRejects, WithPositionAndReason) {
  const auto& b = GetParam();
  const auto p = problems(withOneCluster(b.route, b.cluster));
  ASSERT_EQ(p.size(), 1U) << ::testing::PrintToString(p);
  EXPECT_THAT(p[0], HasSubstr(b.expected));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GuardConfigRejects,
    ::testing::Values(
        BrokenSection{"missing_rate", "    rate_limit: { burst: 5 }\n", "",
                      "t.yaml:8:17: rate_limit is missing required key 'rate'"},
        BrokenSection{"rate_without_unit", "    rate_limit: { rate: 100 }\n", "",
                      "t.yaml:8:25: rate_limit.rate: expected a rate like 100/s"},
        BrokenSection{
            "unknown_algorithm", "    rate_limit: { rate: 1/s, algorithm: magic }\n", "",
            "unknown rate_limit.algorithm 'magic' (known: gcra, token_bucket, leaky_bucket, "
            "sliding_window)"},
        BrokenSection{"burst_zero", "    rate_limit: { rate: 1/s, burst: 0 }\n", "",
                      "rate_limit.burst must be an integer from 1"},
        BrokenSection{"burst_on_sliding_window",
                      "    rate_limit: { rate: 1/s, algorithm: sliding_window, burst: 3 }\n", "",
                      "rate_limit.burst does not apply to sliding_window"},
        BrokenSection{"delay_on_gcra", "    rate_limit: { rate: 1/s, delay: 3 }\n", "",
                      "rate_limit.delay applies only to leaky_bucket"},
        BrokenSection{"delay_and_nodelay",
                      "    rate_limit: { rate: 1/s, algorithm: leaky_bucket, burst: 5, delay: 2, "
                      "nodelay: true }\n",
                      "", "rate_limit takes delay or nodelay, not both"},
        BrokenSection{"unknown_key_part",
                      "    rate_limit: { rate: 1/s, key: [client_ip, cookie] }\n", "",
                      "unknown rate_limit.key part 'cookie'"},
        BrokenSection{"repeated_key_part", "    rate_limit: { rate: 1/s, key: [route, route] }\n",
                      "", "rate_limit.key part 'route' appears twice"},
        BrokenSection{"bad_header_name", "    rate_limit: { rate: 1/s, key: 'header:x y' }\n", "",
                      "unknown rate_limit.key part 'header:x y'"},
        BrokenSection{"wrong_status", "    rate_limit: { rate: 1/s, status: 500 }\n", "",
                      "rate_limit.status must be 429 or 503"},
        BrokenSection{"unknown_field", "    rate_limit: { rate: 1/s, rate_per_ip: 3 }\n", "",
                      "unknown key 'rate_per_ip' in rate_limit"},
        BrokenSection{"cluster_limit_bad", "", "    rate_limit: { rate: fast }\n",
                      "rate_limit.rate: expected a rate"},
        BrokenSection{"concurrency_empty", "    concurrency: { queue: 3 }\n", "",
                      "concurrency needs max (a static limit) or adaptive"},
        BrokenSection{"concurrency_both", "    concurrency: { max: 3, adaptive: {} }\n", "",
                      "concurrency takes max (a static limit) or adaptive, not both"},
        BrokenSection{"concurrency_zero", "    concurrency: { max: 0 }\n", "",
                      "concurrency.max must be an integer from 1"},
        BrokenSection{"queue_timeout_unit", "    concurrency: { max: 3, queue_timeout: 5 }\n", "",
                      "concurrency.queue_timeout: duration '5' is missing a unit"},
        BrokenSection{"adaptive_bounds", "    concurrency: { adaptive: { min: 10, max: 5 } }\n", "",
                      "concurrency.adaptive.min must not exceed concurrency.adaptive.max"},
        BrokenSection{"adaptive_initial",
                      "    concurrency: { adaptive: { initial: 500, max: 100 } }\n", "",
                      "concurrency.adaptive.initial must lie within [min, max] (1..100)"},
        BrokenSection{
            "adaptive_algorithm", "    concurrency: { adaptive: { algorithm: tcp } }\n", "",
            "unknown concurrency.adaptive.algorithm 'tcp' (known: gradient, aimd, vegas, auto)"},
        BrokenSection{"timeout_not_aimd",
                      "    concurrency: { adaptive: { algorithm: vegas, timeout: 1s } }\n", "",
                      "concurrency.adaptive.timeout applies only to aimd"},
        BrokenSection{"cooldown_not_aimd",
                      "    concurrency: { adaptive: { backoff_cooldown: 1s } }\n", "",
                      "t.yaml:8:50: concurrency.adaptive.backoff_cooldown applies only to aimd"},
        BrokenSection{"window_not_gradient",
                      "    concurrency: { adaptive: { algorithm: vegas, window_samples: 10 } }\n",
                      "", "concurrency.adaptive.window_samples applies only to gradient"},
        BrokenSection{"window_duration_not_gradient",
                      "    concurrency: { adaptive: { algorithm: aimd, window_duration: 1s } }\n",
                      "", "concurrency.adaptive.window_duration applies only to gradient"},
        BrokenSection{"queue_delay_without_queue",
                      "    concurrency: { max: 3, queue_delay: { target: 5ms } }\n", "",
                      "concurrency.queue_delay needs a queue (concurrency.queue > 0)"},
        BrokenSection{"queue_delay_interval",
                      "    concurrency: { max: 3, queue: 5, queue_delay: { target: 50ms, "
                      "interval: 10ms } }\n",
                      "", "concurrency.queue_delay.interval must not be shorter than its target"},
        BrokenSection{"window_samples_zero",
                      "    concurrency: { adaptive: { window_samples: 0 } }\n", "",
                      "concurrency.adaptive.window_samples must be an integer from 1"}),
    [](const ::testing::TestParamInfo<BrokenSection>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace sluice::gateway::config
