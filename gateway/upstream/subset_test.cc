// Subsets: the key a request's labels make, and each worker's balancers over the hosts that
// carry them (membership follows host changes, state is the subset's own).
#include "gateway/upstream/subset.h"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "gateway/upstream/cluster.h"

namespace sluice::gateway::upstream {
namespace {

using namespace std::chrono_literals;
const auto subset_t0 = std::chrono::steady_clock::time_point{} + 1h;

config::Subset fixedSubset(Labels labels) {
  config::Subset s;
  s.labels = std::move(labels);
  return s;
}

config::Subset headerSubset(Labels labels, std::string header, std::string label) {
  config::Subset s = fixedSubset(std::move(labels));
  s.header = std::move(header);
  s.label = std::move(label);
  return s;
}

std::string keyOf(const config::Subset& s, std::optional<std::string_view> value) {
  std::string key;
  return subsetKey(s, value, key) ? key : "(none)";
}

TEST(SubsetKey, NamesTheLabelsInNameOrderWithTheHeaderValueInItsPlace) {
  const auto fixed = fixedSubset({{"env", "gray"}, {"zone", "a"}});
  EXPECT_EQ(labelsOf(keyOf(fixed, std::nullopt)), (Labels{{"env", "gray"}, {"zone", "a"}}));
  // A fixed subset ignores any header value.
  EXPECT_EQ(keyOf(fixed, "x"), keyOf(fixed, std::nullopt));

  const auto tagged = headerSubset({{"app", "pay"}, {"zone", "a"}}, "x-env", "env");
  EXPECT_EQ(labelsOf(keyOf(tagged, "gray")),
            (Labels{{"app", "pay"}, {"env", "gray"}, {"zone", "a"}}));
  EXPECT_EQ(keyOf(tagged, "gray"),
            keyOf(fixedSubset({{"app", "pay"}, {"env", "gray"}, {"zone", "a"}}), std::nullopt));
  // Without the header, the fixed labels alone; a header-only subset then asks for nothing.
  EXPECT_EQ(labelsOf(keyOf(tagged, std::nullopt)), (Labels{{"app", "pay"}, {"zone", "a"}}));
  EXPECT_EQ(keyOf(headerSubset({}, "x-env", "env"), std::nullopt), "(none)");
  EXPECT_EQ(labelsOf(keyOf(headerSubset({}, "x-env", "zz"), "")), (Labels{{"zz", ""}}));
}

TEST(SubsetKey, DifferentLabelsNeverShareAKey) {
  EXPECT_NE(keyOf(fixedSubset({{"a", "bc"}}), std::nullopt),
            keyOf(fixedSubset({{"ab", "c"}}), std::nullopt));
  EXPECT_NE(keyOf(fixedSubset({{"a", ""}, {"b", ""}}), std::nullopt),
            keyOf(fixedSubset({{"a", std::string("\0\1b\0", 4)}}), std::nullopt));
  // Header values are bytes: whatever they hold, the labels read back the same.
  const std::string odd("gr\0ay\xff", 6);
  EXPECT_EQ(labelsOf(keyOf(headerSubset({}, "x-env", "env"), odd)), (Labels{{"env", odd}}));
}

// Four hosts: 0 and 2 stable, 1 and 3 gray (3 also in zone b).
struct SubsetFixture {
  explicit SubsetFixture(config::LbPolicy policy) {
    config.name = "pay";
    config.lb.policy = policy;
    std::vector<HostSet::Host> statics;
    for (std::size_t i = 0; i < 4; ++i) {
      HostSet::Host h;
      h.endpoint = {boost::asio::ip::make_address("127.0.0.1"),
                    static_cast<std::uint16_t>(9100 + i)};
      h.address = "127.0.0.1:" + std::to_string(9100 + i);
      h.metadata = {{"env", i % 2 == 0 ? "stable" : "gray"}};
      if (i == 3) h.metadata["zone"] = "b";
      statics.push_back(h);
    }
    set = std::make_unique<HostSet>(statics, /*dynamic_slots=*/1);
    state = std::make_shared<ClusterState>(config, set->capacity(), /*workers=*/1, subset_t0);
    cluster = std::make_unique<Cluster>(io.get_executor(), config, state, 0, set->slots());
  }
  std::shared_ptr<LoadBalancer> subset(Labels labels) {
    std::string key;
    subsetKey(fixedSubset(std::move(labels)), std::nullopt, key);
    return cluster->subset(key);
  }
  // How many of `n` picks (each finished at once) go to each slot.
  std::vector<int> spread(LoadBalancer* lb, int n) {
    std::vector<int> out(set->capacity());
    for (int i = 0; i < n; ++i) {
      const auto h =
          cluster->pick(lb, {}, static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ULL, subset_t0);
      if (!h) continue;
      ++out.at(*h);
      cluster->onStart(lb, *h);
      cluster->onResult(lb, *h, cluster->occupant(*h), {true, 1ms, subset_t0, 200, 0});
    }
    return out;
  }

  boost::asio::io_context io;
  config::Cluster config;
  std::unique_ptr<HostSet> set;
  std::shared_ptr<ClusterState> state;
  std::unique_ptr<Cluster> cluster;
};

class SubsetPolicies : public ::testing::TestWithParam<config::LbPolicy> {};

TEST_P(SubsetPolicies, PickOnlyHostsCarryingTheLabels) {
  SubsetFixture f(GetParam());
  const auto gray = f.subset({{"env", "gray"}});
  ASSERT_NE(gray, nullptr);
  const auto spread = f.spread(gray.get(), 400);
  EXPECT_EQ(spread[0] + spread[2] + spread[4], 0);
  EXPECT_EQ(spread[1] + spread[3], 400);
  EXPECT_GT(spread[1], 100);  // both gray hosts serve
  EXPECT_GT(spread[3], 100);
  const auto zone_b = f.subset({{"env", "gray"}, {"zone", "b"}});
  EXPECT_EQ(f.spread(zone_b.get(), 50), (std::vector<int>{0, 0, 0, 50, 0}));
  // The whole cluster still balances over all four.
  for (const int n : f.spread(nullptr, 400)) EXPECT_LT(n, 400);
}

INSTANTIATE_TEST_SUITE_P(AllPolicies, SubsetPolicies,
                         ::testing::Values(config::LbPolicy::RoundRobin, config::LbPolicy::Random,
                                           config::LbPolicy::LeastRequest,
                                           config::LbPolicy::PeakEwma, config::LbPolicy::RingHash,
                                           config::LbPolicy::Maglev));

TEST(ClusterSubsets, WhatNoHostCarriesIsNullAndNotKept) {
  SubsetFixture f(config::LbPolicy::RoundRobin);
  EXPECT_EQ(f.subset({{"env", "blue"}}), nullptr);
  EXPECT_EQ(f.subset({{"env", "gray"}, {"zone", "a"}}), nullptr);
  EXPECT_EQ(f.cluster->subsetCount(), 0U);
  const auto gray = f.subset({{"env", "gray"}});
  EXPECT_EQ(f.subset({{"env", "gray"}}), gray);  // kept: the same balancer, its state with it
  EXPECT_EQ(f.cluster->subsetCount(), 1U);
}

TEST(ClusterSubsets, EachSubsetKeepsItsOwnBalancingState) {
  SubsetFixture f(config::LbPolicy::RoundRobin);
  const auto gray = f.subset({{"env", "gray"}});
  // Round robin over the whole cluster goes 0, 1, 2, 3 however many gray picks come between.
  std::vector<std::size_t> whole;
  for (int i = 0; i < 4; ++i) {
    whole.push_back(*f.cluster->pick(nullptr, {}, 0, subset_t0));
    const auto a = f.cluster->pick(gray.get(), {}, 0, subset_t0);
    const auto b = f.cluster->pick(gray.get(), {}, 0, subset_t0);
    EXPECT_NE(*a, *b);  // and the subset alternates between its two
  }
  std::sort(whole.begin(), whole.end());
  EXPECT_EQ(whole, (std::vector<std::size_t>{0, 1, 2, 3}));

  // Requests in flight count in the subset they were sent through.
  SubsetFixture g(config::LbPolicy::LeastConnections);
  const auto g_gray = g.subset({{"env", "gray"}});
  for (int i = 0; i < 10; ++i) g.cluster->onStart(g_gray.get(), 1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(g.cluster->pick(g_gray.get(), {}, 0, subset_t0), 3U);
  int to_one = 0;
  for (int i = 0; i < 400; ++i) to_one += g.cluster->pick(nullptr, {}, 0, subset_t0) == 1U;
  EXPECT_GT(to_one, 40);  // the whole cluster's balancer does not see the subset's load
}

TEST(ClusterSubsets, MembershipFollowsHostChanges) {
  for (const auto policy : {config::LbPolicy::RoundRobin, config::LbPolicy::RingHash}) {
    SCOPED_TRACE(static_cast<int>(policy));
    SubsetFixture f(policy);
    const auto gray = f.subset({{"env", "gray"}});
    // Host 3 is relabelled blue; a new gray host registers in the free slot.
    auto slots = f.set->slots();
    slots[3].metadata = {{"env", "blue"}};
    HostSet::Host fresh;
    fresh.endpoint = {boost::asio::ip::make_address("127.0.0.1"), 9200};
    fresh.address = "127.0.0.1:9200";
    fresh.occupant = 99;
    fresh.metadata = {{"env", "gray"}};
    slots[4] = fresh;
    f.cluster->applyHosts(slots, subset_t0);
    const auto now_gray = f.subset({{"env", "gray"}});
    EXPECT_EQ(now_gray == gray, policy != config::LbPolicy::RingHash);  // hashing rebuilds
    const auto spread = f.spread(now_gray.get(), 300);
    EXPECT_EQ(spread[0] + spread[2] + spread[3], 0);
    EXPECT_GT(spread[1], 50);
    EXPECT_GT(spread[4], 50);
    EXPECT_EQ(f.spread(f.subset({{"env", "blue"}}).get(), 10), (std::vector<int>{0, 0, 0, 10, 0}));

    // The gray hosts leave: the subset is gone, and a request still holding it finishes.
    slots[1] = HostSet::Host{};
    slots[4] = HostSet::Host{};
    f.cluster->applyHosts(slots, subset_t0);
    EXPECT_EQ(f.subset({{"env", "gray"}}), nullptr);
    now_gray->onResult(1, AttemptResult{});
  }
}

}  // namespace
}  // namespace sluice::gateway::upstream
