// A route's `canary`: what loads, the defaults, and what is refused and where.
#include "gateway/config/canary_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/config/config_test_support.h"

namespace sluice::gateway::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A config whose route `pay` splits over api (baseline) and spare (canary), plus `canary`.
std::string withCanary(const std::string& canary) {
  return "listeners: [{ name: p, address: 127.0.0.1:8080 }]\n"
         "clusters:\n"
         "  - { name: api, endpoints: [127.0.0.1:9000] }\n"
         "  - { name: spare, endpoints: [127.0.0.1:9001] }\n"
         "routes:\n"
         "  - name: pay\n"
         "    split: [{ cluster: api, weight: 1 }, { cluster: spare, weight: 0 }]\n"
         "    canary: " +
         canary + "\n";
}

TEST(CanaryConfig, ReadsEveryFieldAndDefaults) {
  const Config c = loaded(withCanary(
      "{ steps: [1, 12.5, 99.5], interval: 30s, min_requests: 500, max_error_increase: 0.5, "
      "max_latency_ratio: 2, min_latency_increase: 20ms, confidence: 95 }"));
  ASSERT_TRUE(c.routes[0].canary);
  const Canary& k = *c.routes[0].canary;
  EXPECT_EQ(k.steps, (std::vector<double>{1, 12.5, 99.5}));
  EXPECT_EQ(k.interval, Millis(30'000));
  EXPECT_EQ(k.min_requests, 500U);
  EXPECT_EQ(k.max_error_increase, 0.5);
  EXPECT_EQ(k.max_latency_ratio, 2);
  EXPECT_EQ(k.min_latency_increase, Millis(20));
  EXPECT_EQ(k.confidence, 95);

  const Canary d = *loaded(withCanary("{}")).routes[0].canary;
  EXPECT_EQ(d, Canary{});
  EXPECT_EQ(d.steps, (std::vector<double>{5, 25, 50}));
  EXPECT_EQ(d.interval, Millis(60'000));
}

TEST(CanaryConfig, RefusesWhatCannotRun) {
  EXPECT_THAT(problems(withCanary("{ steps: [10, 5] }")),
              ElementsAre("t.yaml:8:27: canary.steps must increase (the canary's percent at each "
                          "step)"));
  EXPECT_THAT(problems(withCanary("{ steps: [0] }")),
              ElementsAre("t.yaml:8:23: canary step must be a number from 0.01 to 99.99, got "
                          "'0'"));
  // 100 % is the promotion after the last step, not a step: the baseline would get nothing.
  EXPECT_THAT(problems(withCanary("{ steps: [50, 100] }")),
              ElementsAre(HasSubstr("canary step must be a number from 0.01 to 99.99, got "
                                    "'100'")));
  EXPECT_THAT(problems(withCanary("{ steps: [] }")),
              ElementsAre(HasSubstr("canary.steps must be a list of percents")));
  EXPECT_THAT(problems(withCanary("{ interval: 10ms }")),
              ElementsAre(HasSubstr("canary.interval must be at least 100ms")));
  EXPECT_THAT(problems(withCanary("{ confidence: 100 }")),
              ElementsAre(HasSubstr("canary.confidence must be a number from 50.1 to 99.99")));
  EXPECT_THAT(problems(withCanary("{ max_latency_ratio: 0.5 }")),
              ElementsAre(HasSubstr("canary.max_latency_ratio must be a number from 1 to 1000")));
  EXPECT_THAT(problems(withCanary("{ min_requests: 10 }")),
              ElementsAre(HasSubstr("canary.min_requests must be an integer from 20")));
  EXPECT_THAT(problems(withCanary("{ step: [5] }")),
              ElementsAre(HasSubstr("unknown key 'step' in canary")));
  // Only a two-sided split has a baseline and a canary.
  EXPECT_THAT(problems(withRoute("    canary: {}\n")),
              ElementsAre("t.yaml:10:13: canary needs a split with two sides: the baseline "
                          "first, the canary second"));
}

}  // namespace
}  // namespace sluice::gateway::config
