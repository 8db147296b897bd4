#include "gateway/guards/transition_log.h"

#include <gtest/gtest.h>

namespace sluice::gateway::guards {
namespace {

using LogState = TransitionLog::State;

TEST(TransitionLog, StartsEmpty) { EXPECT_TRUE(TransitionLog().recent().empty()); }

// Verifies that the log keeps the last kCapacity transitions, oldest first, once it wraps.
TEST(TransitionLog, KeepsTheLastTransitionsOldestFirst) {
  TransitionLog log;
  const std::chrono::system_clock::time_point t0{};
  const std::size_t n = TransitionLog::kCapacity + 5;
  for (std::size_t i = 0; i < n; ++i) {
    log.record(i % 2 == 0 ? LogState::Closed : LogState::Open,
               i % 2 == 0 ? LogState::Open : LogState::Closed, t0 + std::chrono::seconds(i));
  }
  const auto recent = log.recent();
  ASSERT_EQ(recent.size(), TransitionLog::kCapacity);
  EXPECT_EQ(recent.front().at, t0 + std::chrono::seconds(5));
  EXPECT_EQ(recent.back().at, t0 + std::chrono::seconds(n - 1));
  EXPECT_EQ(recent.back().from, LogState::Closed);  // n - 1 is even
  EXPECT_EQ(recent.back().to, LogState::Open);
  for (std::size_t i = 1; i < recent.size(); ++i) EXPECT_LT(recent[i - 1].at, recent[i].at);
}

}  // namespace
}  // namespace sluice::gateway::guards
