// Gcra microbenchmarks: tryAcquire (with all header values computed) uncontended and with 2
// threads. Compare with BM_MutexTokenBucket_TryAcquire (token_bucket_benchmark.cc, same binary).
#include <chrono>
#include <cstdint>
#include <memory>

#include <benchmark/benchmark.h>

#include "resilience/clock.h"
#include "resilience/gcra.h"

namespace sluice::resilience {
namespace {

constexpr TimePoint kStart = TimePoint{} + std::chrono::hours(1);

// A fresh limiter per run (see token_bucket_benchmark.cc): each run restarts time at kStart.
// Setup/Teardown are plain functions, so what the run's threads share lives here.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
std::unique_ptr<Gcra> g_limiter;

// Admit path: 1e9 per second (T = 1 ns), a huge burst.
void setUp(const benchmark::State& /*state*/) {
  g_limiter = std::make_unique<Gcra>(Gcra::Settings{
      .limit = 1'000'000'000, .period = std::chrono::seconds(1), .burst = 1'000'000'000});
}
void tearDown(const benchmark::State& /*state*/) { g_limiter.reset(); }

// Google Benchmark's naming convention (BM_*) and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void BM_Gcra_TryAcquire(benchmark::State& state) {
  TimePoint now = kStart;
  std::int64_t admitted = 0;
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    admitted += g_limiter->tryAcquire(now).allowed ? 1 : 0;
  }
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Gcra_TryAcquire)
    ->Setup(setUp)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// The pure step alone (what a Lua port mirrors), no atomics.
void BM_Gcra_Decide(benchmark::State& state) {
  const Gcra::Params p =
      Gcra::paramsFor({.limit = 100, .period = std::chrono::seconds(1), .burst = 10});
  std::int64_t tat = Gcra::kEmptyState;
  std::int64_t now = kStart.time_since_epoch().count();
  for (auto _ : state) {
    now += 1'000'000;
    const Gcra::Decision d = Gcra::decide(tat, now, 1, p);
    tat = d.new_state;
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Gcra_Decide);
// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
