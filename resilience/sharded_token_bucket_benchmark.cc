// ShardedTokenBucket microbenchmarks, beside TokenBucket's (token_bucket_benchmark.cc, same
// binary): the BM_MutexTokenBucket_* rows there are the baseline. Each benchmark thread passes
// its thread index as the home shard, as a thread-per-core server passes its worker index.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <benchmark/benchmark.h>

#include "resilience/clock.h"
#include "resilience/sharded_token_bucket.h"

namespace sluice::resilience {
namespace {

constexpr TimePoint kStart = TimePoint{} + std::chrono::hours(1);
constexpr std::size_t kShards = 2;  // one per benchmark thread at most

// As in token_bucket_benchmark.cc: each run gets a fresh limiter, so that every run's clocks
// may restart at kStart.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
std::unique_ptr<ShardedTokenBucket> g_bucket;

void setUpAdmit(const benchmark::State& /*state*/) {
  // Never runs out: 1e12 tokens/s against 1 ns per call (see token_bucket_benchmark.cc).
  g_bucket = std::make_unique<ShardedTokenBucket>(
      ShardedTokenBucket::Settings{.rate_per_second = 1e12, .burst = TokenBucket::kMaxBurst},
      kStart, kShards);
}
void setUpDeny(const benchmark::State& /*state*/) {
  // Empty: 4 tokens (2 per shard) taken at once, then a token every ~31 years.
  g_bucket = std::make_unique<ShardedTokenBucket>(
      ShardedTokenBucket::Settings{.rate_per_second = 1e-9, .burst = 4}, kStart, kShards);
  while (g_bucket->tryAcquire(1, kStart)) {
  }
}
void tearDown(const benchmark::State& /*state*/) { g_bucket.reset(); }

// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void runTryAcquire(benchmark::State& state) {
  ShardedTokenBucket& bucket = *g_bucket;
  const auto home = static_cast<std::size_t>(state.thread_index());
  TimePoint now = kStart;
  std::int64_t admitted = 0;
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    admitted += bucket.tryAcquire(1, now, home) ? 1 : 0;
  }
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}

void BM_ShardedTokenBucket_TryAcquire(benchmark::State& state) { runTryAcquire(state); }
BENCHMARK(BM_ShardedTokenBucket_TryAcquire)
    ->Setup(setUpAdmit)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_ShardedTokenBucket_TryAcquireDenied(benchmark::State& state) { runTryAcquire(state); }
BENCHMARK(BM_ShardedTokenBucket_TryAcquireDenied)
    ->Setup(setUpDeny)
    ->Teardown(tearDown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
