// WarmUpRateLimiter microbenchmarks: tryAcquire on the admit path (a mutex, the once-per-second
// sync amortised) uncontended and with 2 threads. Compare with BM_MutexTokenBucket_TryAcquire
// (token_bucket_benchmark.cc, same binary).
#include <chrono>
#include <cstdint>
#include <memory>

#include <benchmark/benchmark.h>

#include "resilience/clock.h"
#include "resilience/warm_up_rate_limiter.h"

namespace sluice::resilience {
namespace {

constexpr TimePoint kWarmUpStart = TimePoint{} + std::chrono::hours(1);

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
std::unique_ptr<WarmUpRateLimiter> g_warm_up;

// 1e9 per second, cold: 3.3e8 admissions per second of simulated time, never reached at 1 ns of
// simulated time per call.
void setUpWarmUp(const benchmark::State& /*state*/) {
  g_warm_up = std::make_unique<WarmUpRateLimiter>(WarmUpRateLimiter::Settings{
      .rate_per_second = 1e9, .warm_up_period = std::chrono::seconds(10), .cold_factor = 3});
}
void tearDownWarmUp(const benchmark::State& /*state*/) { g_warm_up.reset(); }

// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void BM_WarmUpRateLimiter_TryAcquire(benchmark::State& state) {
  TimePoint now = kWarmUpStart;
  std::int64_t admitted = 0;
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    admitted += g_warm_up->tryAcquire(now) ? 1 : 0;
  }
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WarmUpRateLimiter_TryAcquire)
    ->Setup(setUpWarmUp)
    ->Teardown(tearDownWarmUp)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// A new second on every call: the sync's cost (the worst case; real traffic syncs once a second).
void BM_WarmUpRateLimiter_SyncEveryCall(benchmark::State& state) {
  TimePoint now = kWarmUpStart;
  for (auto _ : state) {
    now += std::chrono::seconds(1);
    benchmark::DoNotOptimize(g_warm_up->tryAcquire(now));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WarmUpRateLimiter_SyncEveryCall)->Setup(setUpWarmUp)->Teardown(tearDownWarmUp);
// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
