// The gateway's balancers: each policy's adapter over resilience/lb, with the eligibility rules
// every policy shares (pickPreferring).
#include <array>
#include <map>

#include <gtest/gtest.h>

#include "gateway/common/testing_time.h"
#include "gateway/upstream/lb/consistent_hash.h"
#include "gateway/upstream/lb/least_loaded.h"
#include "gateway/upstream/lb/random.h"
#include "gateway/upstream/outlier_ejection.h"

namespace sluice::gateway::upstream {
namespace {

using namespace std::chrono_literals;
using config::LbPolicy;

std::array<int, 3> counts(LoadBalancer& lb, int n, const PickContext& ctx = {}) {
  std::array<int, 3> c{};
  for (int i = 0; i < n; ++i) ++c[lb.pick(ctx).value()];
  return c;
}

TEST(Balancers, RandomFollowsWeightsAndSkipsTriedHosts) {
  RandomBalancer lb({3, 1, 0});
  const auto c = counts(lb, 4000);
  EXPECT_EQ(c[2], 0);
  EXPECT_NEAR(c[0], 3000, 200);
  const std::size_t tried[] = {0};
  EXPECT_EQ(counts(lb, 100, {tried, 0, nullptr, kT0})[1], 100);
}

TEST(Balancers, LeastRequestAvoidsTheBusierHost) {
  LeastLoaded lb(LbPolicy::LeastRequest, {1, 1}, 10s, kT0);
  for (int i = 0; i < 5; ++i) lb.onStart(0);  // host 0 has five requests in flight
  for (int i = 0; i < 50; ++i) EXPECT_EQ(lb.pick({}), 1U);
  for (int i = 0; i < 5; ++i) lb.onResult(0, {true, 1ms, kT0});
  EXPECT_EQ(lb.inFlight(0), 0U);
}

TEST(Balancers, LeastConnectionsScansAllHosts) {
  LeastLoaded lb(LbPolicy::LeastConnections, {1, 1, 1}, 10s, kT0);
  lb.onStart(0);
  lb.onStart(1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(lb.pick({}), 2U);
}

TEST(Balancers, PeakEwmaMovesLoadAwayFromASlowHost) {
  LeastLoaded lb(LbPolicy::PeakEwma, {1, 1}, 10s, kT0);
  for (int i = 0; i < 5; ++i) {
    lb.onStart(0);
    lb.onResult(0, {true, 500ms, kT0 + 1ms});
    lb.onStart(1);
    lb.onResult(1, {true, 5ms, kT0 + 1ms});
  }
  PickContext ctx;
  ctx.now = kT0 + 2ms;
  EXPECT_EQ(counts(lb, 100, ctx)[1], 100);
  // A failure feeds no sample: the slow host does not look fast after failing fast.
  lb.onStart(0);
  lb.onResult(0, {false, 1us, kT0 + 3ms});
  EXPECT_EQ(lb.pick(ctx), 1U);
}

TEST(Balancers, ConsistentHashKeepsAKeyOnOneHostAndFallsBackConsistently) {
  for (auto policy : {LbPolicy::RingHash, LbPolicy::Maglev}) {
    config::LoadBalancing cfg;
    cfg.policy = policy;
    cfg.maglev_table_size = 251;
    ConsistentHash lb(cfg, {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}, {1, 1, 1});
    std::map<std::size_t, int> spread;
    for (std::uint64_t key = 0; key < 300; ++key) {
      const std::uint64_t h = hash64(std::to_string(key));
      const auto host = lb.pick({{}, h, nullptr, kT0});
      ASSERT_TRUE(host);
      EXPECT_EQ(lb.pick({{}, h, nullptr, kT0}), host);  // stable
      ++spread[*host];
      // A retry goes elsewhere, and to the same elsewhere every time.
      const std::size_t tried[] = {*host};
      const auto second = lb.pick({tried, h, nullptr, kT0});
      ASSERT_TRUE(second);
      EXPECT_NE(*second, *host);
      EXPECT_EQ(lb.pick({tried, h, nullptr, kT0}), second);
    }
    EXPECT_EQ(spread.size(), 3U);
    for (const auto& [host, n] : spread) EXPECT_GT(n, 50) << static_cast<int>(policy);
  }
}

TEST(Balancers, EveryPolicySkipsEjectedHosts) {
  config::OutlierDetection od;
  od.consecutive_5xx = 1;
  od.failure_percentage.reset();
  od.max_ejection_percent = 50;
  OutlierEjection ejection(od, 3, kT0);
  ejection.record(1, 0, 500, kT0);
  ASSERT_TRUE(ejection.ejected(1, kT0));
  config::LoadBalancing ring;
  ring.policy = LbPolicy::RingHash;
  std::vector<std::unique_ptr<LoadBalancer>> all;
  all.push_back(std::make_unique<RandomBalancer>(std::vector<std::uint32_t>{1, 1, 1}));
  for (auto p : {LbPolicy::LeastRequest, LbPolicy::LeastConnections, LbPolicy::PeakEwma}) {
    all.push_back(std::make_unique<LeastLoaded>(p, std::vector<std::uint32_t>{1, 1, 1}, 10s, kT0));
  }
  all.push_back(std::make_unique<ConsistentHash>(
      ring, std::vector<std::string>{"a:1", "b:1", "c:1"}, std::vector<std::uint32_t>{1, 1, 1}));
  for (auto& lb : all) {
    for (std::uint64_t key = 0; key < 100; ++key) {
      EXPECT_NE(lb->pick({{}, hash64(std::to_string(key)), &ejection, kT0}), 1U);
    }
  }
}

}  // namespace
}  // namespace sluice::gateway::upstream
