// LeakyBucket microbenchmarks: tryAcquire uncontended and with 2 threads. Compare with
// BM_MutexTokenBucket_TryAcquire (token_bucket_benchmark.cc, same binary).
#include <chrono>
#include <cstdint>
#include <memory>

#include <benchmark/benchmark.h>

#include "resilience/clock.h"
#include "resilience/leaky_bucket.h"

namespace sluice::resilience {
namespace {

constexpr TimePoint kStart = TimePoint{} + std::chrono::hours(1);

// A fresh limiter per run (see token_bucket_benchmark.cc): each run restarts time at kStart.
// Setup/Teardown are plain functions, so what the run's threads share lives here.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
std::unique_ptr<LeakyBucket> g_bucket;

// Accept path: 1e9 requests/s (T = 1 ns) with a huge burst, nodelay: every call is accepted.
void setUpAccept(const benchmark::State& /*state*/) {
  g_bucket = std::make_unique<LeakyBucket>(
      LeakyBucket::Settings{.rate_per_second = 1e9, .burst = 1'000'000'000, .nodelay = true});
}
// Reject path: one request per ~31 years, already used.
void setUpReject(const benchmark::State& /*state*/) {
  g_bucket = std::make_unique<LeakyBucket>(
      LeakyBucket::Settings{.rate_per_second = LeakyBucket::kMinRate});
  (void)g_bucket->tryAcquire(kStart);
}
void tearDown(const benchmark::State& /*state*/) { g_bucket.reset(); }

// Google Benchmark's naming convention (BM_*) and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void BM_LeakyBucket_TryAcquire(benchmark::State& state) {
  TimePoint now = kStart;
  std::int64_t accepted = 0;
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    accepted += g_bucket->tryAcquire(now).decision != LeakyBucket::Decision::Reject ? 1 : 0;
  }
  state.counters["accepted"] =
      benchmark::Counter(static_cast<double>(accepted), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LeakyBucket_TryAcquire)
    ->Name("BM_LeakyBucket_TryAcquire")
    ->Setup(setUpAccept)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_LeakyBucket_TryAcquire)
    ->Name("BM_LeakyBucket_TryAcquireRejected")
    ->Setup(setUpReject)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
