// One worker's view of a cluster: health and panic in selection, and the weights that move
// (slow start, dynamic weights) - all under a manual clock.
#include "gateway/upstream/cluster.h"

#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "gateway/common/testing_time.h"

namespace sluice::gateway::upstream {
namespace {

using namespace std::chrono_literals;
using R = ActiveHealth::Result;

struct ClusterFixture {
  explicit ClusterFixture(config::LoadBalancing lb, std::size_t hosts, std::size_t dynamic = 0)
      : config(withHealthCheck(std::move(lb))),
        state(std::make_shared<ClusterState>(config, hosts + dynamic, /*workers=*/1, kT0)),
        health(*state->health()) {
    std::vector<HostSet::Host> statics;
    for (std::size_t i = 0; i < hosts; ++i) {
      HostSet::Host h;
      h.endpoint = {boost::asio::ip::make_address("127.0.0.1"),
                    static_cast<std::uint16_t>(9000 + i)};
      h.address = "127.0.0.1:" + std::to_string(9000 + i);
      statics.push_back(h);
    }
    set = std::make_unique<HostSet>(statics, dynamic);
    for (std::size_t i = hosts; i < hosts + dynamic; ++i) health.vacate(i);
    cluster = std::make_unique<Cluster>(io.get_executor(), config, state, 0, set->slots());
  }
  static config::Cluster withHealthCheck(config::LoadBalancing lb) {
    config::Cluster c;
    c.name = "c";
    c.lb = std::move(lb);
    c.health_check.emplace();
    c.health_check->healthy_threshold = 1;
    c.health_check->unhealthy_threshold = 1;
    return c;
  }
  // How many of `n` picks at `now` go to each host.
  std::vector<int> spread(int n, std::chrono::steady_clock::time_point now) {
    std::vector<int> out(set->capacity());
    for (int i = 0; i < n; ++i) {
      const auto h = cluster->pick({}, 0, now);
      if (h) ++out.at(*h);
    }
    return out;
  }

  boost::asio::io_context io;
  config::Cluster config;
  std::shared_ptr<ClusterState> state;
  ActiveHealth& health;
  std::unique_ptr<HostSet> set;
  std::unique_ptr<Cluster> cluster;
};

TEST(ClusterHealth, PanicBelowThresholdAnswersFromEveryHost) {
  config::LoadBalancing lb;
  lb.panic_threshold = 50;
  ClusterFixture f(lb, 4);
  f.health.record(0, R::ConnectFailure, kT0);
  EXPECT_EQ(f.spread(300, kT0), (std::vector<int>{0, 100, 100, 100}));
  f.health.record(1, R::ConnectFailure, kT0);  // 2 of 4 healthy: exactly 50 %, not below
  EXPECT_EQ(f.spread(200, kT0), (std::vector<int>{0, 0, 100, 100}));
  f.health.record(2, R::ConnectFailure, kT0);  // 1 of 4: panic, all four share the load
  EXPECT_EQ(f.spread(400, kT0), (std::vector<int>{100, 100, 100, 100}));

  config::LoadBalancing no_panic;
  no_panic.panic_threshold = 0;
  ClusterFixture g(no_panic, 2);
  g.health.record(0, R::ConnectFailure, kT0);
  g.health.record(1, R::ConnectFailure, kT0);
  EXPECT_FALSE(g.cluster->pick({}, 0, kT0));
}

TEST(ClusterHealth, SlowStartRampsARecoveredHost) {
  config::LoadBalancing lb;
  lb.slow_start = config::SlowStart{std::chrono::milliseconds(10'000), 1.0, 10};
  ClusterFixture f(lb, 2);
  // Established hosts are not ramped.
  EXPECT_EQ(f.spread(200, kT0), (std::vector<int>{100, 100}));
  f.health.record(1, R::ConnectFailure, kT0);
  EXPECT_EQ(f.spread(100, kT0), (std::vector<int>{100, 0}));
  f.health.record(1, R::Success, kT0 + 1s);  // back at kT0 + 1 s: weight 10 % of full
  auto s = f.spread(1100, kT0 + 1s);
  EXPECT_NEAR(s[1], 100, 2);     // 10 / (100 + 10) of 1100
  s = f.spread(1500, kT0 + 6s);  // half way: 50 / (100 + 50)
  EXPECT_NEAR(s[1], 500, 2);
  s = f.spread(1000, kT0 + 11s);  // the window is over: full weight
  EXPECT_EQ(s[1], 500);
  // Another failure and recovery ramps again from the new instant.
  f.health.record(1, R::Timeout, kT0 + 20s);
  f.health.record(1, R::Success, kT0 + 21s);
  s = f.spread(1100, kT0 + 21s);
  EXPECT_NEAR(s[1], 100, 2);
}

TEST(ClusterHosts, NewHostsRampUpAndLeavingHostsDrain) {
  config::LoadBalancing lb;
  lb.slow_start = config::SlowStart{std::chrono::milliseconds(10'000), 1.0, 10};
  ClusterFixture f(lb, 1, 2);
  EXPECT_EQ(f.spread(100, kT0), (std::vector<int>{100, 0, 0}));
  HostSet::Host joining;
  joining.address = "127.0.0.1:9100";
  joining.endpoint = {boost::asio::ip::make_address("127.0.0.1"), 9100};
  joining.source = HostSet::Source::Registry;
  ASSERT_EQ(f.set->upsert(joining, kT0), HostSet::Upsert::Added);
  f.health.occupy(1);  // as Server::publishHosts does
  f.cluster->applyHosts(f.set->slots(), kT0);
  EXPECT_EQ(f.cluster->address(1), "127.0.0.1:9100");
  EXPECT_NEAR(f.spread(1100, kT0)[1], 100, 2);   // 10 % of its weight at first
  EXPECT_EQ(f.spread(1000, kT0 + 10s)[1], 500);  // all of it after the window
  ASSERT_EQ(f.set->remove("127.0.0.1:9100", HostSet::Source::Registry, kT0 + 11s), 1U);
  f.health.vacate(1);
  f.cluster->applyHosts(f.set->slots(), kT0 + 11s);
  EXPECT_EQ(f.spread(100, kT0 + 11s), (std::vector<int>{100, 0, 0}));
  EXPECT_TRUE(f.cluster->address(1).empty());
  EXPECT_EQ(f.cluster->drainingPools(), 0U);  // no connection was open: nothing to drain
}

HostSet::Host registered(std::uint16_t port, std::uint32_t weight = 1) {
  HostSet::Host h;
  h.address = "127.0.0.1:" + std::to_string(port);
  h.endpoint = {boost::asio::ip::make_address("127.0.0.1"), port};
  h.source = HostSet::Source::Registry;
  h.weight = weight;
  return h;
}

// Keys (hashes 0..n-1 spread by a multiplier) that go to `host`.
int keysOn(Cluster& c, std::size_t host, int n = 2000) {
  int on = 0;
  for (int k = 0; k < n; ++k) {
    on += c.pick({}, static_cast<std::uint64_t>(k) * 0x9E3779B97F4A7C15ULL, kT0) == host ? 1 : 0;
  }
  return on;
}

TEST(ClusterHosts, ARegisteredWeightChangeReachesAHashTable) {
  config::LoadBalancing lb;
  lb.policy = config::LbPolicy::RingHash;
  ClusterFixture f(lb, 1, 1);
  ASSERT_EQ(f.set->upsert(registered(9100, 1), kT0), HostSet::Upsert::Added);
  f.health.occupy(1);
  f.cluster->applyHosts(f.set->slots(), kT0);
  EXPECT_NEAR(keysOn(*f.cluster, 1), 1000, 200);
  ASSERT_EQ(f.set->upsert(registered(9100, 9), kT0), HostSet::Upsert::Updated);
  f.cluster->applyHosts(f.set->slots(), kT0);
  EXPECT_NEAR(keysOn(*f.cluster, 1), 1800, 200);
}

TEST(ClusterHosts, ADrainedHostIsNeverPickedUntilUndrained) {
  for (const auto policy :
       {config::LbPolicy::RoundRobin, config::LbPolicy::LeastRequest, config::LbPolicy::Random,
        config::LbPolicy::RingHash, config::LbPolicy::Maglev}) {
    config::LoadBalancing lb;
    lb.policy = policy;
    lb.panic_threshold = 100;  // every host in panic: a drained one stays out even so
    ClusterFixture f(lb, 3);
    ASSERT_EQ(f.set->setDrained("127.0.0.1:9001", true), true);
    EXPECT_EQ(f.set->setDrained("127.0.0.1:9001", true), false);  // already
    EXPECT_EQ(f.set->setDrained("127.0.0.1:9999", true), std::nullopt);
    f.cluster->applyHosts(f.set->slots(), kT0);
    EXPECT_EQ(keysOn(*f.cluster, 1), 0) << static_cast<int>(policy);
    EXPECT_GT(keysOn(*f.cluster, 0), 0);
    EXPECT_GT(keysOn(*f.cluster, 2), 0);
    // A renewal or a weight change leaves it drained; undraining brings it back.
    auto statics = f.set->slots();
    for (auto& h : statics) {
      h.drained = false;
      h.weight = 2;
    }
    f.set->reconfigure(statics, 0, kT0);
    EXPECT_TRUE(f.set->slots()[1].drained);
    ASSERT_EQ(f.set->setDrained("127.0.0.1:9001", false), true);
    f.cluster->applyHosts(f.set->slots(), kT0);
    EXPECT_GT(keysOn(*f.cluster, 1), 0) << static_cast<int>(policy);
  }
}

TEST(ClusterHosts, AllHostsDrainedLeavesNoHost) {
  ClusterFixture f({}, 2);
  f.set->setDrained("127.0.0.1:9000", true);
  f.set->setDrained("127.0.0.1:9001", true);
  f.cluster->applyHosts(f.set->slots(), kT0);
  EXPECT_EQ(f.cluster->pick({}, 0, kT0), std::nullopt);
}

TEST(ClusterHosts, BoundedLoadsKeepCountingAcrossARebuild) {
  config::LoadBalancing lb;
  lb.policy = config::LbPolicy::RingHash;
  lb.balance_factor = 1.25;
  ClusterFixture f(lb, 4, 1);
  std::vector<int> load(5);
  const auto hot = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const auto h = f.cluster->pick({}, 42, kT0);
      f.cluster->onStart(*h);
      ++load.at(*h);
    }
  };
  hot(40);
  // A host joins (the ring is rebuilt) while those 40 are in flight; 40 more of the hot key
  // are bounded together with them: ceil(1.25 x 80 / 5) = 20 at most anywhere.
  ASSERT_EQ(f.set->upsert(registered(9200), kT0), HostSet::Upsert::Added);
  f.health.occupy(4);
  f.cluster->applyHosts(f.set->slots(), kT0);
  hot(40);
  EXPECT_LE(*std::max_element(load.begin(), load.end()), 20) << ::testing::PrintToString(load);
}

TEST(ClusterHosts, AReusedSlotForgetsWhatWasLearntOfItsLastHost) {
  config::LoadBalancing lb;
  lb.dynamic_weights.emplace();
  lb.dynamic_weights->min_samples = 1;
  ClusterFixture f(lb, 1, 1);
  ASSERT_EQ(f.set->upsert(registered(9100), kT0), HostSet::Upsert::Added);
  f.health.occupy(1);
  f.cluster->applyHosts(f.set->slots(), kT0);
  for (int i = 0; i < 50; ++i) {
    for (std::size_t h = 0; h < 2; ++h) {
      f.cluster->onStart(h);
      f.cluster->onResult(h, f.cluster->occupant(h), {true, h == 0 ? 10ms : 40ms, kT0, 200, 0});
    }
  }
  f.spread(1, kT0 + 1s);  // the weights are refreshed every update_interval
  EXPECT_DOUBLE_EQ(f.cluster->weightFactor(1), 0.25);
  // The slow host leaves; another takes its slot and starts with no record (no data: the mean
  // factor of the hosts with data, here 1).
  ASSERT_TRUE(f.set->remove("127.0.0.1:9100", HostSet::Source::Registry, kT0 + 1s));
  ASSERT_EQ(f.set->upsert(registered(9101), kT0 + 1s), HostSet::Upsert::Added);
  f.cluster->applyHosts(f.set->slots(), kT0 + 1s);
  EXPECT_DOUBLE_EQ(f.cluster->weightFactor(1), 1.0);
  // A late result of the host that left is not held against the newcomer.
  const std::uint64_t old_occupant = 1;  // not the newcomer's
  f.cluster->onResult(1, old_occupant, {true, 400ms, kT0 + 1s, 200, 0});
  f.spread(1, kT0 + 2s);
  EXPECT_DOUBLE_EQ(f.cluster->weightFactor(1), 1.0);
}

TEST(ClusterWeights, DynamicWeightsFollowObservedLatency) {
  config::LoadBalancing lb;
  lb.dynamic_weights.emplace();
  lb.dynamic_weights->min_samples = 1;
  ClusterFixture f(lb, 2);
  // Host 1 answers four times slower than host 0: its weight falls to a quarter.
  for (int i = 0; i < 50; ++i) {
    f.cluster->onStart(0);
    f.cluster->onResult(0, f.cluster->occupant(0), {true, 10ms, kT0, 200, 0});
    f.cluster->onStart(1);
    f.cluster->onResult(1, f.cluster->occupant(1), {true, 40ms, kT0, 200, 0});
  }
  EXPECT_EQ(f.spread(1250, kT0), (std::vector<int>{1000, 250}));
  EXPECT_DOUBLE_EQ(f.cluster->weightFactor(1), 0.25);
  // Errors cost weight too: host 0 now fails a third of its requests (50 of 150), so its raw
  // factor is 2/3; factors are relative to the best host, so host 1 climbs to 0.25 / (2/3).
  for (int i = 0; i < 100; ++i) {
    f.cluster->onStart(0);
    f.cluster->onResult(0, f.cluster->occupant(0), {true, 10ms, kT0, i % 2 == 0 ? 503 : 200, 0});
  }
  f.spread(1, kT0 + 500ms);  // not due before update_interval
  EXPECT_DOUBLE_EQ(f.cluster->weightFactor(1), 0.25);
  f.spread(1, kT0 + 1s);
  EXPECT_DOUBLE_EQ(f.cluster->weightFactor(0), 1.0);
  EXPECT_NEAR(f.cluster->weightFactor(1), 0.375, 0.01);
}

TEST(ClusterWeights, DynamicWeightsFollowReportedUtilization) {
  config::LoadBalancing lb;
  lb.dynamic_weights.emplace();
  lb.dynamic_weights->signal = config::DynamicWeights::Signal::Utilization;
  lb.dynamic_weights->min_samples = 1;
  lb.dynamic_weights->blackout = config::Millis(0);
  ClusterFixture f(lb, 2);
  // Same request rate, host 1 reports twice the utilization: half the capacity.
  for (int i = 0; i < 50; ++i) {
    f.cluster->onStart(0);
    f.cluster->onResult(0, f.cluster->occupant(0), {true, 10ms, kT0, 200, 0.3});
    f.cluster->onStart(1);
    f.cluster->onResult(1, f.cluster->occupant(1), {true, 10ms, kT0, 200, 0.6});
  }
  EXPECT_EQ(f.spread(300, kT0), (std::vector<int>{200, 100}));
}

TEST(ClusterWeights, BoundedLoadSpreadsAHotKey) {
  config::LoadBalancing plain;
  plain.policy = config::LbPolicy::RingHash;
  ClusterFixture p(plain, 4);
  config::LoadBalancing bounded = plain;
  bounded.balance_factor = 1.25;
  ClusterFixture b(bounded, 4);
  // 40 requests in flight with the same key: plain ring hash sends all to one host; bounded
  // loads keep every host within ceil(1.25 x 40 / 4) = 13.
  std::vector<int> plain_load(4);
  std::vector<int> bounded_load(4);
  for (int i = 0; i < 40; ++i) {
    const auto h = p.cluster->pick({}, 42, kT0);
    p.cluster->onStart(*h);
    ++plain_load.at(*h);
    const auto g = b.cluster->pick({}, 42, kT0);
    b.cluster->onStart(*g);
    ++bounded_load.at(*g);
  }
  EXPECT_EQ(*std::max_element(plain_load.begin(), plain_load.end()), 40);
  EXPECT_LE(*std::max_element(bounded_load.begin(), bounded_load.end()), 13);
  // Once the requests finish, the key goes home again.
  for (std::size_t h = 0; h < 4; ++h) {
    for (int i = 0; i < bounded_load[h]; ++i)
      b.cluster->onResult(h, b.cluster->occupant(h), {true, 1ms, kT0, 200, 0});
  }
  EXPECT_EQ(b.cluster->pick({}, 42, kT0), p.cluster->pick({}, 42, kT0));
}

}  // namespace
}  // namespace sluice::gateway::upstream
