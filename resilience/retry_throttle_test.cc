#include "resilience/retry_throttle.h"

#include <atomic>
#include <cmath>
#include <cstdint>

#include <gtest/gtest.h>

#include "resilience/limiter_test_support.h"

namespace sluice::resilience {
namespace {

// gRFC A6's example configuration ("Throttling Configuration"): maxTokens 10, tokenRatio 0.1.
RetryThrottle::Settings a6Example() { return {.max_tokens = 10, .token_ratio = 0.1}; }

TEST(RetryThrottle, ValidateAcceptsTheA6ExampleAndExplainsBadSettings) {
  EXPECT_EQ(RetryThrottle::validate(a6Example()), std::nullopt);
  EXPECT_EQ(RetryThrottle::validate({.max_tokens = 1000, .token_ratio = 0.001}), std::nullopt);
  EXPECT_EQ(RetryThrottle::validate({.max_tokens = 0, .token_ratio = 0.1}),
            "max_tokens must be in (0, 1000]");
  EXPECT_EQ(RetryThrottle::validate({.max_tokens = 1000.001, .token_ratio = 0.1}),
            "max_tokens must be in (0, 1000]");
  EXPECT_EQ(RetryThrottle::validate({.max_tokens = 10, .token_ratio = 0}),
            "token_ratio must be positive and finite");
  EXPECT_EQ(RetryThrottle::validate({.max_tokens = 10, .token_ratio = 0.0005}),
            "token_ratio supports at most 3 decimal places");
  EXPECT_EQ(RetryThrottle::validate({.max_tokens = 10.0001, .token_ratio = 0.1}),
            "max_tokens supports at most 3 decimal places");
  EXPECT_EQ(RetryThrottle::validate({.max_tokens = 1, .token_ratio = 2}),
            "token_ratio must not exceed max_tokens");
}

TEST(RetryThrottle, StartsFullWithRetriesAllowed) {
  const RetryThrottle throttle(a6Example());
  EXPECT_EQ(throttle.milliTokens(), 10'000);
  EXPECT_TRUE(throttle.retriesAllowed());
}

// A6: "Every failed RPC will decrement the token_count by 1 ... If token_count is less than or
// equal to the threshold, defined to be (maxTokens / 2), then RPCs will not be retried". From
// 10: 9, 8, 7, 6 are above 5; the fifth failure reaches 5, which is not.
TEST(RetryThrottle, TheFifthFailureFromFullStopsRetriesAtTheHalfwayMark) {
  RetryThrottle throttle(a6Example());
  for (int i = 1; i <= 4; ++i) {
    EXPECT_TRUE(throttle.recordFailure()) << "failure " << i;
  }
  EXPECT_EQ(throttle.milliTokens(), 6'000);
  EXPECT_FALSE(throttle.recordFailure());
  EXPECT_EQ(throttle.milliTokens(), 5'000);
  EXPECT_FALSE(throttle.retriesAllowed());
  EXPECT_FALSE(throttle.recordFailure());  // the sixth: 4 <= 5
  EXPECT_EQ(throttle.milliTokens(), 4'000);
}

// A6: "Every successful RPC will increment the token_count by tokenRatio" and retries resume
// "until token_count rises over the threshold". In fixed point 4 + 10 * 0.1 is exactly 5, still
// not over 5, so it takes 11 successes; from 5 a single one (5.1).
TEST(RetryThrottle, SuccessesReenableRetriesOnlyOnceTheCountRisesAboveHalf) {
  RetryThrottle throttle(a6Example());
  for (int i = 0; i < 6; ++i) {
    (void)throttle.recordFailure();
  }
  ASSERT_EQ(throttle.milliTokens(), 4'000);
  for (int i = 1; i <= 10; ++i) {
    throttle.recordSuccess();
    EXPECT_FALSE(throttle.retriesAllowed()) << "after " << i << " successes";
  }
  EXPECT_EQ(throttle.milliTokens(), 5'000);
  throttle.recordSuccess();
  EXPECT_EQ(throttle.milliTokens(), 5'100);
  EXPECT_TRUE(throttle.retriesAllowed());

  RetryThrottle at_five(a6Example());
  for (int i = 0; i < 5; ++i) {
    (void)at_five.recordFailure();
  }
  at_five.recordSuccess();
  EXPECT_TRUE(at_five.retriesAllowed());
}

// A6: "The token_count will always be between 0 and maxTokens."
TEST(RetryThrottle, TheCountStaysBetweenZeroAndMaxTokens) {
  RetryThrottle throttle(a6Example());
  for (int i = 0; i < 25; ++i) {
    (void)throttle.recordFailure();
  }
  EXPECT_EQ(throttle.milliTokens(), 0);
  throttle.recordSuccess();
  EXPECT_EQ(throttle.milliTokens(), 100);
  for (int i = 0; i < 500; ++i) {
    throttle.recordSuccess();
  }
  EXPECT_EQ(throttle.milliTokens(), 10'000);
}

// A6's example "throttles retry attempts and hedged RPCs when the client's ratio of failures to
// successes exceeds ~10%": one failure per 11 successes (9.1 %) never throttles, one per 9
// (11.1 %) drains the count below the threshold and keeps it there.
TEST(RetryThrottle, AFailureRatioBelowTokenRatioKeepsRetriesAndAboveItStopsThem) {
  RetryThrottle below(a6Example());
  RetryThrottle above(a6Example());
  for (int round = 0; round < 1000; ++round) {
    EXPECT_TRUE(below.recordFailure()) << "round " << round;
    for (int i = 0; i < 11; ++i) {
      below.recordSuccess();
    }
    (void)above.recordFailure();
    for (int i = 0; i < 9; ++i) {
      above.recordSuccess();
    }
  }
  EXPECT_TRUE(below.retriesAllowed());
  EXPECT_FALSE(above.recordFailure());
  EXPECT_LE(above.milliTokens(), 5'000);
}

TEST(RetryThrottle, DecimalSettingsAreExactMilliTokens) {
  const RetryThrottle decimal({.max_tokens = 7.5, .token_ratio = 0.29});  // 0.29 is 0.28999...
  EXPECT_EQ(decimal.maxMilliTokens(), 7'500);
  EXPECT_EQ(decimal.milliTokenRatio(), 290);
}

// An odd max in milli-tokens: the threshold 1.003 / 2 = 0.5015 is not a whole milli-token, and
// the test 2 * count > max decides without rounding it either way: 0.501 is not above, 0.502 is.
TEST(RetryThrottle, TheHalfwayTestIsExactForAnOddMaximum) {
  RetryThrottle throttle({.max_tokens = 1.003, .token_ratio = 0.001});
  EXPECT_FALSE(throttle.recordFailure());
  ASSERT_EQ(throttle.milliTokens(), 3);
  for (int i = 0; i < 498; ++i) {
    throttle.recordSuccess();
  }
  EXPECT_EQ(throttle.milliTokens(), 501);
  EXPECT_FALSE(throttle.retriesAllowed());
  throttle.recordSuccess();
  EXPECT_TRUE(throttle.retriesAllowed());
}

TEST(RetryThrottle, InvalidSettingsAreCoerced) {
  const RetryThrottle tiny({.max_tokens = 0, .token_ratio = -1});
  EXPECT_EQ(tiny.maxMilliTokens(), 1);
  EXPECT_EQ(tiny.milliTokenRatio(), 1);
  const RetryThrottle huge({.max_tokens = 5000, .token_ratio = 1e9});
  EXPECT_EQ(huge.maxMilliTokens(), 1'000'000);
  EXPECT_EQ(huge.milliTokenRatio(), 1'000'000);
  const RetryThrottle nan({.max_tokens = std::nan(""), .token_ratio = std::nan("")});
  EXPECT_EQ(nan.maxMilliTokens(), 1);
  EXPECT_EQ(nan.milliTokenRatio(), 1);
}

// Concurrent updates lose nothing: the counts are chosen so that no interleaving reaches a
// bound, so the exact final count is order-independent; then saturation from both sides.
TEST(RetryThrottle, EightThreadsKeepTheCountExact) {
  constexpr int kThreads = 8;
  RetryThrottle throttle({.max_tokens = 1000, .token_ratio = 0.75});
  runTogether(kThreads, [&](int /*i*/) {
    for (int k = 0; k < 50; ++k) {
      (void)throttle.recordFailure();
    }
  });
  ASSERT_EQ(throttle.milliTokens(), 600'000);  // 1000 - 8 * 50
  // Mixed: every interleaving stays within [600 - 200, 600 + 150], inside [0, 1000].
  runTogether(kThreads, [&](int /*i*/) {
    for (int k = 0; k < 25; ++k) {
      (void)throttle.recordFailure();
      throttle.recordSuccess();
    }
  });
  EXPECT_EQ(throttle.milliTokens(), 550'000);  // 600 - 200 + 200 * 0.75
  runTogether(kThreads, [&](int /*i*/) {
    for (int k = 0; k < 1000; ++k) {
      (void)throttle.recordFailure();
    }
  });
  EXPECT_EQ(throttle.milliTokens(), 0);
  std::atomic<int> allowed{0};
  runTogether(kThreads, [&](int /*i*/) {
    for (int k = 0; k < 1000; ++k) {
      throttle.recordSuccess();
      if (throttle.retriesAllowed()) {
        allowed.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  EXPECT_EQ(throttle.milliTokens(), 1'000'000);
  EXPECT_GT(allowed.load(), 0);
}

}  // namespace
}  // namespace sluice::resilience
