#include "gateway/upstream/active_health.h"

#include <atomic>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "gateway/common/testing_time.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/lb/round_robin.h"

namespace sluice::gateway::upstream {
namespace {

using namespace std::chrono_literals;
using R = ActiveHealth::Result;

TEST(ActiveHealth, FirstResultDecidesThenThresholds) {
  ActiveHealth h(3, /*healthy_threshold=*/2, /*unhealthy_threshold=*/3);
  EXPECT_EQ(h.healthyCount(), 3U);
  EXPECT_TRUE(h.healthy(0) && h.healthy(1) && h.healthy(2));
  // Host 0 answers; host 1 is down from the start: one failure takes it out at once.
  EXPECT_FALSE(h.record(0, R::Success, kT0));
  EXPECT_TRUE(h.record(1, R::ConnectFailure, kT0));
  EXPECT_FALSE(h.healthy(1));
  EXPECT_EQ(h.healthyCount(), 2U);
  // Later a healthy host needs unhealthy_threshold failures in a row; a success resets the run.
  EXPECT_FALSE(h.record(0, R::Timeout, kT0 + 1s));
  EXPECT_FALSE(h.record(0, R::BadStatus, kT0 + 2s));
  EXPECT_FALSE(h.record(0, R::Success, kT0 + 3s));
  EXPECT_FALSE(h.record(0, R::Timeout, kT0 + 4s));
  EXPECT_FALSE(h.record(0, R::BadResponse, kT0 + 5s));
  EXPECT_TRUE(h.healthy(0));
  EXPECT_TRUE(h.record(0, R::Timeout, kT0 + 6s));
  EXPECT_FALSE(h.healthy(0));
  EXPECT_EQ(h.healthyCount(), 1U);
  // Back: healthy_threshold successes in a row.
  const auto generation = h.generation();
  EXPECT_FALSE(h.record(1, R::Success, kT0 + 7s));
  EXPECT_FALSE(h.record(1, R::ConnectFailure, kT0 + 8s));
  EXPECT_FALSE(h.record(1, R::Success, kT0 + 9s));
  EXPECT_EQ(h.generation(), generation);
  EXPECT_TRUE(h.record(1, R::Success, kT0 + 10s));
  EXPECT_TRUE(h.healthy(1));
  EXPECT_NE(h.generation(), generation);
  EXPECT_EQ(h.healthySince(1), kT0 + 10s);
  EXPECT_EQ(h.healthySince(2).time_since_epoch().count(), 0);  // never came back
  EXPECT_EQ(h.healthyCount(), 2U);

  const auto& s = h.status(0);
  EXPECT_FALSE(s.healthy);
  EXPECT_EQ(s.consecutive_failures, 3U);
  EXPECT_EQ(s.results[static_cast<std::size_t>(R::Timeout)], 3U);
  EXPECT_EQ(s.results[static_cast<std::size_t>(R::Success)], 2U);
  EXPECT_EQ(s.became_unhealthy, 1U);
  EXPECT_EQ(s.last_check, kT0 + 6s);
  EXPECT_FALSE(h.status(2).checked);
}

TEST(ActiveHealth, UnhealthyHostsAreNeverPickedOutsidePanic) {
  ActiveHealth h(3, 1, 1);
  h.record(0, R::ConnectFailure, kT0);
  h.record(2, R::ConnectFailure, kT0);
  RoundRobin rr({1, 1, 1});
  for (int i = 0; i < 6; ++i) EXPECT_EQ(rr.pick({{}, 0, nullptr, kT0, &h, false}), 1U);
  // A retry that tried the one healthy host goes to it again, never to an unhealthy one.
  const std::size_t tried[] = {1};
  EXPECT_EQ(rr.pick({tried, 0, nullptr, kT0, &h, false}), 1U);
  // All down: nothing to pick - unless in panic, where every host is in.
  h.record(1, R::Timeout, kT0);
  EXPECT_FALSE(rr.pick({{}, 0, nullptr, kT0, &h, false}));
  std::array<int, 3> seen{};
  for (int i = 0; i < 6; ++i) ++seen.at(*rr.pick({{}, 0, nullptr, kT0, &h, true}));
  EXPECT_EQ(seen, (std::array<int, 3>{2, 2, 2}));
}

// The checker writes while workers pick (run under TSan): a picked host is always one that was
// healthy at some point of the pick, never one that stayed unhealthy throughout.
TEST(ActiveHealth, WorkersPickWhileTheCheckerWrites) {
  ActiveHealth h(4, 1, 1);
  h.record(3, R::ConnectFailure, kT0);  // never comes back
  std::atomic<bool> done{false};
  std::thread checker([&] {
    for (int i = 0; i < 20'000; ++i) {
      h.record(static_cast<std::size_t>(i % 3), i % 2 == 0 ? R::Timeout : R::Success, kT0);
    }
    done = true;
  });
  std::vector<std::thread> workers;
  std::array<std::atomic<int>, 4> picked{};
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&] {
      RoundRobin rr({1, 1, 1, 1});
      while (!done) {
        if (const auto host = rr.pick({{}, 0, nullptr, kT0, &h, false})) ++picked.at(*host);
      }
    });
  }
  checker.join();
  for (auto& w : workers) w.join();
  EXPECT_EQ(picked[3], 0);
  EXPECT_LE(h.healthyCount(), 3U);
}

}  // namespace
}  // namespace sluice::gateway::upstream
