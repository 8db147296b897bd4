#include "gateway/upstream/outlier_ejection.h"

#include <gtest/gtest.h>

#include "gateway/upstream/lb/round_robin.h"

namespace sluice::gateway::upstream {
namespace {

using namespace std::chrono_literals;
const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

config::OutlierDetection settings() {
  config::OutlierDetection c;
  c.consecutive_5xx = 3;
  c.failure_percentage.reset();
  c.base_ejection_time = 10s;
  c.max_ejection_percent = 50;
  return c;
}

TEST(OutlierEjection, EjectsAfterConsecutiveFailuresUntilItsTimeIsUp) {
  OutlierEjection o(settings(), 3, t0);
  o.record(1, 503, t0);
  o.record(1, 0, t0);    // a connection failure counts too
  o.record(1, 404, t0);  // a 4xx is not a server failure: the run starts again
  o.record(1, 500, t0);
  o.record(1, 502, t0);
  EXPECT_FALSE(o.ejected(1, t0));
  o.record(1, 504, t0);
  EXPECT_TRUE(o.ejected(1, t0));
  EXPECT_TRUE(o.ejected(1, t0 + 10s - 1ns));
  EXPECT_FALSE(o.ejected(1, t0 + 10s));
  EXPECT_FALSE(o.ejected(0, t0));
  EXPECT_EQ(o.ejections(0), 1U);  // consecutive_5xx
  // The cap: a second host of three would be 67 % > 50 %.
  for (int i = 0; i < 3; ++i) o.record(2, 500, t0);
  EXPECT_FALSE(o.ejected(2, t0));
}

TEST(OutlierEjection, RoundRobinSkipsEjectedHostsWhileOthersAreLeft) {
  OutlierEjection o(settings(), 3, t0);
  for (int i = 0; i < 3; ++i) o.record(0, 500, t0);
  RoundRobin rr({1, 1, 1});
  for (int i = 0; i < 12; ++i) {
    const auto host = rr.pick({{}, 0, &o, t0});
    ASSERT_TRUE(host);
    EXPECT_NE(*host, 0U);
  }
  // A retry that already tried both healthy hosts goes to one of them again, not to the ejected.
  const std::size_t tried[] = {1, 2};
  const auto retry = rr.pick({tried, 0, &o, t0});
  ASSERT_TRUE(retry);
  EXPECT_NE(*retry, 0U);
  // Once readmitted it is picked again.
  bool zero = false;
  for (int i = 0; i < 3; ++i) zero = zero || rr.pick({{}, 0, &o, t0 + 11s}) == 0U;
  EXPECT_TRUE(zero);
}

}  // namespace
}  // namespace sluice::gateway::upstream
