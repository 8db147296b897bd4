// AdaptiveConcurrencyLimiter microbenchmarks: tryAcquire() + outcome report for each algorithm,
// uncontended and with 2 threads. Compare with BM_MutexSemaphore_TryAcquireRelease
// (semaphore_benchmark.cc, same binary): a fixed mutex-guarded limit with no learning.
#include <chrono>
#include <memory>

#include <benchmark/benchmark.h>

#include "resilience/adaptive_concurrency_limiter.h"
#include "resilience/aimd_limit.h"
#include "resilience/clock.h"
#include "resilience/gradient_limit.h"
#include "resilience/vegas_limit.h"

namespace sluice::resilience {
namespace {

std::unique_ptr<AdaptiveLimit> makeLimit(int which) {
  switch (which) {
    case 0:
      return std::make_unique<AimdLimit>(
          AimdLimit::Settings{.initial_limit = 100, .min_limit = 100, .max_limit = 1000});
    case 1:
      return std::make_unique<GradientLimit>(
          GradientLimit::Settings{.initial_limit = 100, .min_limit = 100, .max_limit = 1000});
    default:
      return std::make_unique<VegasLimit>(
          VegasLimit::Settings{.initial_limit = 100, .min_limit = 100, .max_limit = 1000});
  }
}

// Fixed, clock-free time: the benchmark measures the limiter, not Clock::now().
constexpr TimePoint kStart = TimePoint{} + std::chrono::hours(1);

// Google Benchmark's naming convention (BM_*) and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
template <int Which>
void BM_AdaptiveLimiter_AcquireSuccess(benchmark::State& state) {
  static AdaptiveConcurrencyLimiter limiter(makeLimit(Which));
  for (auto _ : state) {
    auto permit = limiter.tryAcquire(kStart);
    if (permit) {
      permit.success(kStart + std::chrono::milliseconds(1));
    }
    benchmark::DoNotOptimize(permit);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AdaptiveLimiter_AcquireSuccess<0>)
    ->Name("BM_AdaptiveLimiter_AcquireSuccess/aimd")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_AdaptiveLimiter_AcquireSuccess<1>)
    ->Name("BM_AdaptiveLimiter_AcquireSuccess/gradient")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_AdaptiveLimiter_AcquireSuccess<2>)
    ->Name("BM_AdaptiveLimiter_AcquireSuccess/vegas")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// Admission alone: acquire + ignore (no sample, no lock).
void BM_AdaptiveLimiter_AcquireIgnore(benchmark::State& state) {
  static AdaptiveConcurrencyLimiter limiter(makeLimit(0));
  for (auto _ : state) {
    auto permit = limiter.tryAcquire(kStart);
    benchmark::DoNotOptimize(permit);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AdaptiveLimiter_AcquireIgnore)->Threads(1)->Threads(2)->UseRealTime();

// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
