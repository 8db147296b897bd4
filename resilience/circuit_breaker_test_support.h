// Test support for the circuit breaker's unit tests: the count-based settings most tests start
// from, and helpers that record admitted calls and trip a breaker. Shared by
// circuit_breaker_test.cc and circuit_breaker_reconfigure_test.cc.
#pragma once

#include <chrono>

#include <gtest/gtest.h>

#include "resilience/circuit_breaker.h"
#include "resilience/clock.h"

namespace sluice::resilience {

// Count-based, window 10, trips at >= 50 % failures once 10 calls are in; open 30 s; 4 probes.
inline CircuitBreaker::Settings countBased() {
  CircuitBreaker::Settings s;
  s.window_type = CircuitBreaker::WindowType::CountBased;
  s.window_size = 10;
  s.minimum_calls = 10;
  s.failure_rate_threshold = 50;
  s.open_duration = std::chrono::seconds(30);
  s.max_open_duration = std::chrono::seconds(30);
  s.half_open_probes = 4;
  return s;
}

// Records n admitted calls of the given outcome and duration at `now`.
inline void record(CircuitBreaker& b, int n, TimePoint now, Duration d, bool failed) {
  for (int i = 0; i < n; ++i) {
    auto p = b.tryAcquire(now);
    ASSERT_TRUE(p);
    failed ? p.failure(d) : p.success(d);
  }
}
inline void succeed(CircuitBreaker& b, int n, TimePoint now,
                    Duration d = std::chrono::milliseconds(1)) {
  record(b, n, now, d, false);
}
inline void fail(CircuitBreaker& b, int n, TimePoint now,
                 Duration d = std::chrono::milliseconds(1)) {
  record(b, n, now, d, true);
}

// Trips `b` at `now` with minimum_calls failures (10 for countBased()); outcomes land at now + 0.
inline void trip(CircuitBreaker& b, TimePoint now) {
  fail(b, static_cast<int>(b.settings().minimum_calls), now, Duration::zero());
  ASSERT_EQ(b.state(), CircuitBreaker::State::Open);
}

}  // namespace sluice::resilience
