#include "gateway/log/log_throttle.h"

#include <gtest/gtest.h>

namespace sluice::gateway::log {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(LogThrottle, ABurstThenOneLinePerIntervalAndACountOfTheRest) {
  LogThrottle t(3, seconds(1));
  const LogThrottle::Clock::time_point start{};
  std::uint64_t held = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(t.allow("api/connect", start, held));
    EXPECT_EQ(held, 0U);
  }
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(t.allow("api/connect", start + milliseconds(i), held));
  EXPECT_FALSE(t.allow("api/connect", start + milliseconds(900), held));
  ASSERT_TRUE(t.allow("api/connect", start + milliseconds(1000), held));
  EXPECT_EQ(held, 11U);
  EXPECT_FALSE(t.allow("api/connect", start + milliseconds(1500), held));
  // A quiet key earns its burst back, never more.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(t.allow("api/connect", start + seconds(60), held));
  EXPECT_FALSE(t.allow("api/connect", start + seconds(60), held));
}

TEST(LogThrottle, KeysAreIndependent) {
  LogThrottle t(1, seconds(10));
  const LogThrottle::Clock::time_point now{};
  std::uint64_t held = 0;
  EXPECT_TRUE(t.allow("a", now, held));
  EXPECT_FALSE(t.allow("a", now, held));
  EXPECT_TRUE(t.allow("b", now, held));
}

}  // namespace
}  // namespace sluice::gateway::log
