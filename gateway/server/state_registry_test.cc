// The state registry across config generations: for each stateful kind, an unchanged
// definition keeps the very object, changed parameters keep the state, and a changed kind or a
// removal makes a new object while the old one lives exactly as long as a generation using it.
#include "gateway/server/state_registry.h"

#include <array>

#include <gtest/gtest.h>

#include "gateway/config/loader.h"
#include "gateway/guards/circuit_breaker_guard.h"
#include "gateway/guards/concurrency_guard.h"
#include "gateway/guards/rate_limit_guard.h"

namespace sluice::gateway::server {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kBase = R"(
listeners: [{ name: p, address: 127.0.0.1:1 }]
clusters:
  - name: c
    endpoints: [127.0.0.1:2, 127.0.0.1:3]
    retry_budget: { percent: 20 }
    outlier_detection: { consecutive_5xx: 5 }
    bulkhead: { max_requests: 10 }
    health_check: { path: /h, interval: 5s }
    discovery: { registry: true, max_hosts: 2 }
    rate_limit: { rate: 10/s, burst: 5, key: client_ip }
    circuit_breaker: { failure_rate: 50 }
  - name: d
    endpoints: [127.0.0.1:4]
routes:
  - name: r
    cluster: c
    rate_limit: { rate: 1/s, burst: 2, key: route }
    concurrency: { max: 4, queue: 2 }
  - name: s
    cluster: d
    circuit_breaker: { failure_rate: 50, minimum_calls: 2, window: 2 }
)";

config::Config load(std::string_view yaml) {
  auto r = config::load(yaml, "test.yaml");
  EXPECT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : r.diagnostics.front().format());
  return std::move(*r.config);
}

std::string edit(std::string yaml, std::string_view from, std::string_view to) {
  const auto at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) yaml.replace(at, from.size(), to);
  return yaml;
}

template <typename G>
G* guardOf(const Snapshot& s, std::size_t route, std::string_view name) {
  for (const auto& g : s.routes[route].backends[0].guards) {
    if (g->name() == name) return dynamic_cast<G*>(g.get());
  }
  return nullptr;
}

class StateRegistryTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Snapshot> build(std::string_view yaml) {
    return registry_.build(load(yaml), ++generation_);
  }
  boost::asio::io_context io_;
  StateRegistry registry_{io_, 2};
  std::uint64_t generation_ = 0;
};

TEST_F(StateRegistryTest, AnUnchangedDefinitionKeepsEveryObject) {
  const auto a = build(kBase);
  auto* hosts = registry_.cluster("c")->hosts.get();
  const auto b = build(kBase);
  EXPECT_EQ(b->generation, 2U);
  EXPECT_EQ(a->clusters, b->clusters);  // ClusterState: budget, outliers, bulkhead, health
  EXPECT_EQ(registry_.cluster("c")->hosts.get(), hosts);
  for (std::size_t r = 0; r < a->routes.size(); ++r) {
    EXPECT_EQ(a->routes[r].backends[0].guards, b->routes[r].backends[0].guards);
    EXPECT_EQ(a->routes[r].backends[0].counters, b->routes[r].backends[0].counters);
  }
}

TEST_F(StateRegistryTest, ClusterParametersChangeInPlace) {
  const auto a = build(kBase);
  auto& state = *a->clusters[0];
  // Some state to keep: a registered host, a held bulkhead slot, an outlier report.
  auto* entry = registry_.cluster("c");
  upstream::HostSet::Host joined;
  joined.address = "127.0.0.1:9";
  joined.endpoint = {boost::asio::ip::make_address("127.0.0.1"), 9};
  joined.source = upstream::HostSet::Source::Registry;
  joined.ttl = 30s;
  ASSERT_EQ(entry->hosts->upsert(joined, std::chrono::steady_clock::now()),
            upstream::HostSet::Upsert::Added);
  auto slot = upstream::Bulkhead::acquire(state.bulkhead(), upstream::Bulkhead::Limit::Requests);
  ASSERT_TRUE(slot);

  auto b = build(edit(edit(std::string(kBase), "max_requests: 10", "max_requests: 1"),
                      "percent: 20", "percent: 50"));
  EXPECT_EQ(b->clusters[0].get(), &state);  // the same state, reconfigured
  EXPECT_EQ(state.bulkhead()->max(2), 1U);
  EXPECT_EQ(state.bulkhead()->inUse(2), 1U);  // the held slot still counts
  EXPECT_FALSE(upstream::Bulkhead::acquire(state.bulkhead(), upstream::Bulkhead::Limit::Requests));
  EXPECT_TRUE(registry_.cluster("c")->hosts->find("127.0.0.1:9"));

  // Endpoints change in place too, within the slots: the registered host stays.
  b = build(edit(std::string(kBase), "[127.0.0.1:2, 127.0.0.1:3]", "[127.0.0.1:2, 127.0.0.1:5]"));
  EXPECT_EQ(b->clusters[0].get(), &state);
  const auto& set = *registry_.cluster("c")->hosts;
  EXPECT_TRUE(set.find("127.0.0.1:2") && set.find("127.0.0.1:5") && set.find("127.0.0.1:9"));
  EXPECT_FALSE(set.find("127.0.0.1:3"));
}

TEST_F(StateRegistryTest, AClusterThatNoLongerFitsGetsNewStateAndTheOldLivesWithItsGeneration) {
  auto a = build(kBase);
  std::weak_ptr<upstream::ClusterState> old = a->clusters[0];
  upstream::HostSet::Host joined;
  joined.address = "127.0.0.1:9";
  joined.endpoint = {boost::asio::ip::make_address("127.0.0.1"), 9};
  joined.source = upstream::HostSet::Source::Registry;
  joined.ttl = 30s;
  registry_.cluster("c")->hosts->upsert(joined, std::chrono::steady_clock::now());
  auto& before = a->clusters[0]->counters().shards;
  before[1].cluster.retries.inc(3);
  before[0].hosts[1].requests.inc(5);  // 127.0.0.1:3
  before[1].hosts[1].requests.inc(2);

  // One more endpoint than there are slots: a new state; discovered hosts stay members.
  const auto b = build(edit(std::string(kBase), "[127.0.0.1:2, 127.0.0.1:3]",
                            "[127.0.0.1:2, 127.0.0.1:3, 127.0.0.1:6]"));
  EXPECT_NE(b->clusters[0], a->clusters[0]);
  EXPECT_TRUE(registry_.cluster("c")->hosts->find("127.0.0.1:9"));
  // Its counters go on from where they were: the series stay monotonic.
  const auto& after = b->clusters[0]->counters().shards;
  EXPECT_EQ(after.sum([](const stats::ClusterShard& s) { return s.cluster.retries.value(); }), 3U);
  const auto slot = *registry_.cluster("c")->hosts->find("127.0.0.1:3");
  EXPECT_EQ(after.sum([&](const stats::ClusterShard& s) { return s.hosts[slot].requests.value(); }),
            7U);
  EXPECT_FALSE(old.expired());  // generation a still runs requests
  a.reset();
  EXPECT_TRUE(old.expired());

  // Without outlier detection the cluster's wiring differs: a new state again.
  const auto c =
      build(edit(std::string(kBase), "    outlier_detection: { consecutive_5xx: 5 }\n", ""));
  EXPECT_NE(c->clusters[0], b->clusters[0]);
  EXPECT_EQ(c->clusters[0]->outliers(), nullptr);
}

TEST_F(StateRegistryTest, ARemovedClusterOrRouteIsForgottenAfterItsLastGeneration) {
  auto a = build(kBase);
  std::weak_ptr<upstream::ClusterState> d = a->clusters[1];
  std::weak_ptr<stats::RouteCounters> s = a->routes[1].backends[0].counters;
  std::weak_ptr<guards::Guard> breaker = a->routes[1].backends[0].guards.front();
  std::string without = edit(std::string(kBase), "  - name: d\n    endpoints: [127.0.0.1:4]\n", "");
  without = without.substr(0, without.find("  - name: s\n"));
  const auto b = build(without);
  EXPECT_EQ(registry_.cluster("d"), nullptr);
  ASSERT_EQ(b->routes.size(), 1U);
  EXPECT_FALSE(d.expired() || s.expired() || breaker.expired());
  a.reset();
  EXPECT_TRUE(d.expired() && s.expired() && breaker.expired());
}

TEST_F(StateRegistryTest, ARateLimitKeepsItsKeysUnderNewNumbersAndNotUnderANewKey) {
  const auto a = build(kBase);
  const auto* before = guardOf<guards::RateLimitGuard>(*a, 0, "rate_limit");
  ASSERT_NE(before, nullptr);
  const auto b = build(edit(std::string(kBase), "rate: 1/s, burst: 2, key: route",
                            "rate: 2/s, burst: 3, key: route"));
  const auto* rate = guardOf<guards::RateLimitGuard>(*b, 0, "rate_limit");
  EXPECT_NE(rate, before);                      // a new guard for the new numbers...
  EXPECT_TRUE(rate->sharesStateWith(*before));  // ...on the same limiter
  const auto c = build(edit(std::string(kBase), "rate: 1/s, burst: 2, key: route",
                            "rate: 1/s, burst: 2, key: client_ip"));
  EXPECT_FALSE(guardOf<guards::RateLimitGuard>(*c, 0, "rate_limit")->sharesStateWith(*rate));
  const auto d = build(edit(std::string(kBase), "rate: 1/s, burst: 2, key: route",
                            "rate: 1/s, key: route, algorithm: sliding_window"));
  EXPECT_FALSE(guardOf<guards::RateLimitGuard>(*d, 0, "rate_limit")
                   ->sharesStateWith(*guardOf<guards::RateLimitGuard>(*c, 0, "rate_limit")));
}

TEST_F(StateRegistryTest, ABreakerKeepsItsStateUnderANewThreshold) {
  const auto a = build(kBase);
  auto* breaker = guardOf<guards::CircuitBreakerGuard>(*a, 1, "circuit_breaker");
  ASSERT_NE(breaker, nullptr);
  breaker->breaker().forceOpen(std::chrono::steady_clock::now());
  const auto b = build(edit(std::string(kBase), "failure_rate: 50, minimum_calls: 2",
                            "failure_rate: 90, minimum_calls: 2"));
  auto* after = guardOf<guards::CircuitBreakerGuard>(*b, 1, "circuit_breaker");
  EXPECT_NE(after, breaker);
  EXPECT_EQ(&after->breaker(), &breaker->breaker());
  EXPECT_EQ(after->breaker().state(), resilience::CircuitBreaker::State::ForcedOpen);
  EXPECT_EQ(after->breaker().settings().failure_rate_threshold, 90.0);
}

TEST_F(StateRegistryTest, AConcurrencyLimitKeepsItsSlotsUnderANewMax) {
  const auto a = build(kBase);
  auto* before = guardOf<guards::ConcurrencyGuard>(*a, 0, "concurrency");
  ASSERT_NE(before, nullptr);
  proxy::RequestContext ctx;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(before->check(ctx)->admitted());
  EXPECT_FALSE(before->check(ctx));  // full: would queue
  const auto b = build(edit(std::string(kBase), "max: 4, queue: 2", "max: 5, queue: 2"));
  auto* after = guardOf<guards::ConcurrencyGuard>(*b, 0, "concurrency");
  EXPECT_EQ(after->limit(), 5U);
  proxy::RequestContext other;
  EXPECT_TRUE(after->check(other)->admitted());  // the fifth, with the four still held
  EXPECT_FALSE(after->check(other));
}

TEST_F(StateRegistryTest, RouteCountersFollowTheRouteName) {
  const auto a = build(kBase);
  a->routes[0].backends[0].counters->shards[1].requests.by_class[1].inc();
  // Routes reordered and one renamed: counters follow names, not positions.
  std::string swapped = edit(std::string(kBase), "  - name: s\n", "  - name: t\n");
  const auto b = build(swapped);
  EXPECT_EQ(b->routes[0].backends[0].counters, a->routes[0].backends[0].counters);
  EXPECT_NE(b->routes[1].backends[0].counters, a->routes[1].backends[0].counters);
  EXPECT_EQ(b->routes[0].backends[0].counters->shards[1].requests.by_class[1].value(), 1U);
}

constexpr std::string_view kSplit = R"(
listeners: [{ name: p, address: 127.0.0.1:1 }]
clusters:
  - name: v1
    endpoints: [127.0.0.1:2]
    circuit_breaker: { failure_rate: 50 }
  - name: v2
    endpoints: [127.0.0.1:3]
    rate_limit: { rate: 10/s, key: client_ip }
routes:
  - name: pay
    split: [{ cluster: v1, weight: 90 }, { cluster: v2, weight: 10 }]
    concurrency: { max: 4 }
)";

std::vector<std::string_view> names(const RouteBackend& b) {
  std::vector<std::string_view> out;
  for (const auto& g : b.guards) out.push_back(g->name());
  return out;
}

TEST_F(StateRegistryTest, EachSideOfASplitHasItsClustersGuardsAndItsOwnCounters) {
  const auto a = build(kSplit);
  const RoutePlan& plan = a->routes.at(0);
  ASSERT_EQ(plan.backends.size(), 2U);
  EXPECT_EQ(plan.total_weight, 100U);
  EXPECT_EQ(a->config.clusters[plan.backends[0].cluster].name, "v1");
  EXPECT_EQ(a->config.clusters[plan.backends[1].cluster].name, "v2");
  EXPECT_EQ(names(plan.backends[0]),
            (std::vector<std::string_view>{"concurrency", "cluster_circuit_breaker"}));
  EXPECT_EQ(names(plan.backends[1]),
            (std::vector<std::string_view>{"cluster_rate_limit", "concurrency"}));
  // The route's own guard is one object on both sides; counters are per side.
  EXPECT_EQ(plan.backends[0].guards[0], plan.backends[1].guards[1]);
  EXPECT_NE(plan.backends[0].counters, plan.backends[1].counters);
  EXPECT_EQ(a->backend_count, 2U);
  EXPECT_NE(plan.backends[0].slot, plan.backends[1].slot);
  // Weights moved by a reload: the same counters and guards, the new weights.
  const auto b = build(edit(std::string(kSplit), "weight: 90 }, { cluster: v2, weight: 10",
                            "weight: 50 }, { cluster: v2, weight: 50"));
  EXPECT_EQ(b->routes[0].backends[0].weight, 50U);
  EXPECT_EQ(b->routes[0].backends[1].counters, plan.backends[1].counters);
  EXPECT_EQ(b->routes[0].backends[1].guards, plan.backends[1].guards);
}

RoutePlan weighted(std::vector<std::uint32_t> weights) {
  RoutePlan plan;
  plan.total_weight = 0;
  for (auto w : weights) {
    plan.backends.emplace_back().weight = w;
    plan.total_weight += w;
  }
  return plan;
}

TEST(RoutePlan, PicksSidesByShareAndKeepsAKeyWhileItsShareHoldsIt) {
  const RoutePlan plan = weighted({90, 10});
  std::array<int, 2> seen{};
  constexpr int kDraws = 100'000;
  resilience::SplitMix64 rng(7);
  for (int i = 0; i < kDraws; ++i) ++seen.at(plan.pick(rng.next()));
  EXPECT_NEAR(seen[1], kDraws / 10, kDraws / 100);
  EXPECT_EQ(weighted({0, 5}).pick(0), 1U);
  EXPECT_EQ(weighted({0, 5}).pick(~0ULL), 1U);
  EXPECT_EQ(weighted({5, 0}).pick(~0ULL), 0U);
  // Moving share from the first side to the last only moves keys onto the last side, whatever
  // the total.
  const RoutePlan before = weighted({90, 10});
  const RoutePlan after = weighted({700, 300});
  for (int i = 0; i < 10'000; ++i) {
    const std::uint64_t key = rng.next();
    if (before.pick(key) == 1) {
      EXPECT_EQ(after.pick(key), 1U);
    }
  }
}

}  // namespace
}  // namespace sluice::gateway::server
