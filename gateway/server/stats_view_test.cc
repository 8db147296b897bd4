#include "gateway/server/stats_view.h"

#include <array>
#include <chrono>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gateway/config/loader.h"
#include "gateway/guards/circuit_breaker_guard.h"

namespace sluice::gateway::server {
namespace {

constexpr std::string_view kStatsConfig = R"(
listeners: [{ name: p, address: 127.0.0.1:1 }]
clusters:
  - name: c
    endpoints: [127.0.0.1:2, 127.0.0.1:3]
routes:
  - name: r
    cluster: c
    concurrency: { max: 4, queue: 2 }
    circuit_breaker: { failure_rate: 50 }
)";

class StatsViewTest : public ::testing::Test {
 protected:
  StatsViewTest() {
    auto loaded = config::load(kStatsConfig, "test.yaml");
    EXPECT_TRUE(loaded.ok());
    snap_ = registry_.build(std::move(*loaded.config), 1);
  }
  nlohmann::json stats(const ReloadHistory& history) {
    const std::array<const stats::WorkerStats*, 2> shards = {workers_.data(), &workers_[1]};
    return statsJson(*snap_, registry_, shards,
                     {2, false, 1, "test.yaml", "xxh3:0", 0, 0, &history, {}});
  }

  boost::asio::io_context io_;
  StateRegistry registry_{io_, 2};
  std::shared_ptr<const Snapshot> snap_;
  std::array<stats::WorkerStats, 2> workers_{};
};

// Verifies that a route's counters are summed over the workers' shards, by status class, latency
// bucket and guard verdict.
TEST_F(StatsViewTest, SumsEachRouteOverTheWorkers) {
  const auto& backend = snap_->routes[0].backends[0];
  auto& shards = backend.counters->shards;
  shards[0].requests.by_class[1].inc(3);
  shards[1].requests.by_class[1].inc(2);
  shards[1].requests.by_class[4].inc();
  shards[0].requests.latency.observe(std::chrono::microseconds(700));  // (0.5, 1] ms
  shards[1].requests.latency.observe(std::chrono::seconds(20));        // +Inf
  const std::size_t slot = backend.guard_slots[0];
  ASSERT_NE(slot, RouteBackend::kNoSlot);
  shards[0].guards[slot][0].inc(4);  // allowed
  shards[1].guards[slot][3].inc();   // shed
  workers_[0].requests_active.inc();
  workers_[1].requests_active.inc();
  workers_[1].unrouted.by_class[3].inc();  // a 404

  const auto s = stats(ReloadHistory());
  EXPECT_EQ(s["workers"], 2);
  EXPECT_EQ(s["requests_active"], 2);
  const auto& routes = s["routes"];
  ASSERT_EQ(routes.size(), 2U);
  EXPECT_TRUE(routes[0]["route"].is_null());
  EXPECT_EQ(routes[0]["by_class"], nlohmann::json({0, 0, 0, 1, 0}));
  const auto& r = routes[1];
  EXPECT_EQ(r["route"], "r");
  EXPECT_EQ(r["cluster"], "c");
  EXPECT_EQ(r["by_class"], nlohmann::json({0, 5, 0, 0, 1}));
  const auto& buckets = r["latency_buckets"];
  ASSERT_EQ(buckets.size(), stats::LatencyHistogram::kBounds.size() + 1);
  EXPECT_EQ(buckets[1], 1);
  EXPECT_EQ(buckets.back(), 1);
  EXPECT_EQ(s["latency_bounds_s"].size(), stats::LatencyHistogram::kBounds.size());
  const auto& concurrency = r["guards"][0];
  EXPECT_EQ(concurrency["guard"], "concurrency");
  EXPECT_EQ(concurrency["verdicts"]["allowed"], 4);
  EXPECT_EQ(concurrency["verdicts"]["shed"], 1);
  EXPECT_EQ(concurrency["gauges"]["concurrency_limit"], 4);
  EXPECT_EQ(concurrency["gauges"]["concurrency_queued"], 0);
  EXPECT_EQ(s["clusters"][0]["hosts"].size(), 2U);
}

// Verifies that a breaker's transitions appear, timed, oldest first.
TEST_F(StatsViewTest, ShowsEachBreakersRecentTransitions) {
  guards::CircuitBreakerGuard* breaker = nullptr;
  for (const auto& g : snap_->routes[0].backends[0].guards) {
    if (auto* b = dynamic_cast<guards::CircuitBreakerGuard*>(g.get())) breaker = b;
  }
  ASSERT_NE(breaker, nullptr);
  const auto before = std::chrono::system_clock::now();
  breaker->force(guards::CircuitBreakerGuard::Force::Open);
  breaker->force(guards::CircuitBreakerGuard::Force::Normal);
  const auto s = stats(ReloadHistory());
  const auto& history = s["breakers"][0]["history"];
  ASSERT_EQ(history.size(), 2U);
  EXPECT_EQ(history[0]["from"], "closed");
  EXPECT_EQ(history[0]["to"], "forced_open");
  EXPECT_EQ(history[1]["from"], "forced_open");
  EXPECT_EQ(history[1]["to"], "closed");
  EXPECT_GE(
      history[0]["at_ms"].get<std::int64_t>(),
      std::chrono::duration_cast<std::chrono::milliseconds>(before.time_since_epoch()).count());
}

// Verifies that the reload history keeps the last kCapacity reloads and the first problems of
// each, with the count of all of them.
TEST_F(StatsViewTest, KeepsABoundedReloadHistory) {
  ReloadHistory history;
  for (std::uint64_t i = 0; i < ReloadHistory::kCapacity + 3; ++i) {
    history.record({std::chrono::system_clock::now(), "SIGHUP", false, i,
                    std::vector<std::string>(ReloadHistory::kMaxProblems + 2, "bad"), 0, 1.5});
  }
  const auto s = stats(history);
  const auto& h = s["config"]["history"];
  ASSERT_EQ(h.size(), ReloadHistory::kCapacity);
  EXPECT_EQ(h[0]["generation"], 3);
  EXPECT_EQ(h.back()["generation"], ReloadHistory::kCapacity + 2);
  EXPECT_EQ(h.back()["problems"].size(), ReloadHistory::kMaxProblems);
  EXPECT_EQ(h.back()["problem_count"], ReloadHistory::kMaxProblems + 2);
  EXPECT_EQ(h.back()["applied"], false);
  EXPECT_EQ(s["config"]["source"], "test.yaml");
}

}  // namespace
}  // namespace sluice::gateway::server
