// SlidingWindowRateLimiter and RollingCounter microbenchmarks, uncontended and with 2 threads
// (both are mutex-guarded and sum bucket_count buckets per check). Compare with
// BM_MutexTokenBucket_TryAcquire (token_bucket_benchmark.cc, same binary).
#include <chrono>
#include <cstdint>
#include <memory>

#include <benchmark/benchmark.h>

#include "resilience/clock.h"
#include "resilience/rolling_counter.h"
#include "resilience/sliding_window_rate_limiter.h"

namespace sluice::resilience {
namespace {

constexpr TimePoint kStart = TimePoint{} + std::chrono::hours(1);

// Fresh objects per run (see token_bucket_benchmark.cc): each run restarts time at kStart.
// Setup/Teardown are plain functions, so what the run's threads share lives here.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
std::unique_ptr<SlidingWindowRateLimiter> g_limiter;
// Setup/Teardown are plain functions, so what the run's threads share lives here.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
std::unique_ptr<RollingCounter> g_counter;

// Admit path: a limit no run reaches; 10 buckets of 100 ms.
void setUp(const benchmark::State& /*state*/) {
  g_limiter = std::make_unique<SlidingWindowRateLimiter>(SlidingWindowRateLimiter::Settings{
      .limit = std::uint64_t{1} << 62, .window = std::chrono::seconds(1), .bucket_count = 10});
  g_counter = std::make_unique<RollingCounter>(
      RollingCounter::Settings{.window = std::chrono::seconds(1), .bucket_count = 10});
}
void tearDown(const benchmark::State& /*state*/) {
  g_limiter.reset();
  g_counter.reset();
}

// Google Benchmark's naming convention (BM_*) and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void BM_SlidingWindowRateLimiter_TryAcquire(benchmark::State& state) {
  TimePoint now = kStart;
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    benchmark::DoNotOptimize(g_limiter->tryAcquire(now));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SlidingWindowRateLimiter_TryAcquire)
    ->Setup(setUp)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_RollingCounter_Add(benchmark::State& state) {
  TimePoint now = kStart;
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    g_counter->add(1, now);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RollingCounter_Add)
    ->Setup(setUp)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
