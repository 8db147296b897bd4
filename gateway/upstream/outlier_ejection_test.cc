#include "gateway/upstream/outlier_ejection.h"

#include <gtest/gtest.h>

#include "gateway/common/testing_time.h"
#include "gateway/upstream/lb/round_robin.h"

namespace sluice::gateway::upstream {
namespace {

using namespace std::chrono_literals;

config::OutlierDetection settings() {
  config::OutlierDetection c;
  c.consecutive_5xx = 3;
  c.failure_percentage.reset();
  c.base_ejection_time = 10s;
  c.max_ejection_percent = 50;
  return c;
}

TEST(OutlierEjection, EjectsAfterConsecutiveFailuresUntilItsTimeIsUp) {
  OutlierEjection o(settings(), 3, kT0);
  o.record(1, 0, 503, kT0);
  o.record(1, 0, 0, kT0);    // a connection failure counts too
  o.record(1, 0, 404, kT0);  // a 4xx is not a server failure: the run starts again
  o.record(1, 0, 500, kT0);
  o.record(1, 0, 502, kT0);
  EXPECT_FALSE(o.ejected(1, kT0));
  o.record(1, 0, 504, kT0);
  EXPECT_TRUE(o.ejected(1, kT0));
  EXPECT_TRUE(o.ejected(1, kT0 + 10s - 1ns));
  EXPECT_FALSE(o.ejected(1, kT0 + 10s));
  EXPECT_FALSE(o.ejected(0, kT0));
  EXPECT_EQ(o.ejections(0), 1U);  // consecutive_5xx
  // The cap: a second host of three would be 67 % > 50 %.
  for (int i = 0; i < 3; ++i) o.record(2, 0, 500, kT0);
  EXPECT_FALSE(o.ejected(2, kT0));
}

TEST(OutlierEjection, RoundRobinSkipsEjectedHostsWhileOthersAreLeft) {
  OutlierEjection o(settings(), 3, kT0);
  for (int i = 0; i < 3; ++i) o.record(0, 0, 500, kT0);
  RoundRobin rr({1, 1, 1});
  for (int i = 0; i < 12; ++i) {
    const auto host = rr.pick({{}, 0, &o, kT0});
    ASSERT_TRUE(host);
    EXPECT_NE(*host, 0U);
  }
  // A retry that already tried both healthy hosts goes to one of them again, not to the ejected.
  const std::size_t tried[] = {1, 2};
  const auto retry = rr.pick({tried, 0, &o, kT0});
  ASSERT_TRUE(retry);
  EXPECT_NE(*retry, 0U);
  // Once readmitted it is picked again.
  bool zero = false;
  for (int i = 0; i < 3; ++i) zero = zero || rr.pick({{}, 0, &o, kT0 + 11s}) == 0U;
  EXPECT_TRUE(zero);
}

TEST(OutlierEjection, SlotsFollowTheirHosts) {
  // Four slots, two of them empty: the 50 % cap is over the two real hosts.
  OutlierEjection o(settings(), 4, kT0);
  o.reset(0, 11);
  o.reset(1, 12);
  o.reset(2, 0);
  o.reset(3, 0);
  for (int i = 0; i < 3; ++i) o.record(0, 11, 500, kT0);
  EXPECT_TRUE(o.ejected(0, kT0));
  for (int i = 0; i < 3; ++i) o.record(1, 12, 500, kT0);
  EXPECT_FALSE(o.ejected(1, kT0));  // a second of two would be 100 %
  // Slot 0 gets another host: it starts clean, and late failures of the old one (picked as
  // occupant 11) are not held against it.
  o.reset(0, 21);
  EXPECT_FALSE(o.ejected(0, kT0));
  for (int i = 0; i < 5; ++i) o.record(0, 11, 500, kT0);
  EXPECT_FALSE(o.ejected(0, kT0));
  for (int i = 0; i < 3; ++i) o.record(0, 21, 500, kT0 + 1s);
  EXPECT_TRUE(o.ejected(0, kT0 + 1s));
  EXPECT_FALSE(o.status(2, kT0));  // an empty slot has no status
}

}  // namespace
}  // namespace sluice::gateway::upstream
