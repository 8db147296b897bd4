// AdaptiveConcurrencyLimiter microbenchmarks: tryAcquire() + outcome report for each algorithm,
// uncontended and with 2 threads. Compare with BM_MutexSemaphore_TryAcquireRelease
// (semaphore_benchmark.cc, same binary): a fixed mutex-guarded limit with no learning.
#include <chrono>
#include <memory>

#include <benchmark/benchmark.h>

#include "resilience/adaptive_concurrency_limiter.h"
#include "resilience/aimd_limit.h"
#include "resilience/auto_limit.h"
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
    case 3: {
      // brpc's defaults except the floor and ceiling; the constant `now` of the benchmark means
      // every completion after the first falls inside the 0.1 ms sampling interval, so this row
      // measures the common case: count a success and return.
      AutoLimit::Settings s;
      s.initial_limit = 100;
      s.min_limit = 100;
      s.max_limit = 1000;
      return std::make_unique<AutoLimit>(s);
    }
    case 4: {
      // Every completion sampled (interval 0), so each one runs the window bookkeeping; a window
      // still never closes because no time passes.
      AutoLimit::Settings s;
      s.initial_limit = 100;
      s.min_limit = 100;
      s.max_limit = 1000;
      s.sampling_interval = Duration::zero();
      return std::make_unique<AutoLimit>(s);
    }
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
BENCHMARK(BM_AdaptiveLimiter_AcquireSuccess<3>)
    ->Name("BM_AdaptiveLimiter_AcquireSuccess/auto")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_AdaptiveLimiter_AcquireSuccess<4>)
    ->Name("BM_AdaptiveLimiter_AcquireSuccess/auto_every_sample")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// The algorithm alone, as the limiter calls it under its mutex: one onSample() per iteration,
// time advancing 10 us per sample and rtt alternating 1 ms / 1.2 ms, so that windows close and
// limits move as they would under load: Gradient updates every sample; AutoLimit with brpc's
// 0.1 ms sampling interval samples one completion in ten and closes a 200-sample window every
// 20 ms, and with every completion sampled it closes one every 2 ms. Single-threaded: the limiter
// serializes samples anyway.
template <int Which>
void BM_AdaptiveLimit_OnSample(benchmark::State& state) {
  const std::unique_ptr<AdaptiveLimit> limit = makeLimit(Which);
  TimePoint now = kStart;
  std::size_t i = 0;
  for (auto _ : state) {
    now += std::chrono::microseconds(10);
    const auto rtt =
        (i++ % 2 == 0) ? std::chrono::microseconds(1000) : std::chrono::microseconds(1200);
    limit->onSample(now, rtt, limit->limit(), false);
    benchmark::DoNotOptimize(limit->limit());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AdaptiveLimit_OnSample<0>)->Name("BM_AdaptiveLimit_OnSample/aimd");
BENCHMARK(BM_AdaptiveLimit_OnSample<1>)->Name("BM_AdaptiveLimit_OnSample/gradient");
BENCHMARK(BM_AdaptiveLimit_OnSample<2>)->Name("BM_AdaptiveLimit_OnSample/vegas");
BENCHMARK(BM_AdaptiveLimit_OnSample<3>)->Name("BM_AdaptiveLimit_OnSample/auto");
BENCHMARK(BM_AdaptiveLimit_OnSample<4>)->Name("BM_AdaptiveLimit_OnSample/auto_every_sample");

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
