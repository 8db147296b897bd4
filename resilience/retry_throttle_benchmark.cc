// RetryThrottle microbenchmarks: a success/failure mix (nine successes, one failure) uncontended
// and with 2 threads, against MutexRetryThrottle, grpc-go's design (a float count under a
// mutex).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>

#include <benchmark/benchmark.h>

#include "resilience/retry_throttle.h"

namespace sluice::resilience {
namespace {

class MutexRetryThrottle {
 public:
  MutexRetryThrottle(double max_tokens, double ratio)
      : max_(max_tokens), ratio_(ratio), tokens_(max_tokens) {}
  bool recordFailure() {
    const std::lock_guard lock(mu_);
    tokens_ = std::max(0.0, tokens_ - 1.0);
    return tokens_ > max_ / 2;
  }
  void recordSuccess() {
    const std::lock_guard lock(mu_);
    tokens_ = std::min(max_, tokens_ + ratio_);
  }

 private:
  std::mutex mu_;
  double max_;
  double ratio_;
  double tokens_;  // guarded by mu_
};

// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables)
std::unique_ptr<RetryThrottle> g_throttle;
std::unique_ptr<MutexRetryThrottle> g_mutex_throttle;
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)

// 1000 tokens, ratio 0.2: one failure in ten keeps the count moving (not pinned at a bound,
// where the lock-free version skips its write).
void setUpThrottle(const benchmark::State& /*state*/) {
  g_throttle = std::make_unique<RetryThrottle>(
      RetryThrottle::Settings{.max_tokens = 1000, .token_ratio = 0.2});
  g_mutex_throttle = std::make_unique<MutexRetryThrottle>(1000, 0.2);
}
void tearDownThrottle(const benchmark::State& /*state*/) {
  g_throttle.reset();
  g_mutex_throttle.reset();
}

// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
template <typename Throttle>
void runMix(benchmark::State& state, Throttle& throttle) {
  std::uint32_t i = 0;
  for (auto _ : state) {
    if (++i % 10 == 0) {
      benchmark::DoNotOptimize(throttle.recordFailure());
    } else {
      throttle.recordSuccess();
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RetryThrottle_Record(benchmark::State& state) { runMix(state, *g_throttle); }
BENCHMARK(BM_RetryThrottle_Record)
    ->Setup(setUpThrottle)
    ->Teardown(tearDownThrottle)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_MutexRetryThrottle_Record(benchmark::State& state) { runMix(state, *g_mutex_throttle); }
BENCHMARK(BM_MutexRetryThrottle_Record)
    ->Setup(setUpThrottle)
    ->Teardown(tearDownThrottle)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// The read-only check a hedge makes.
void BM_RetryThrottle_RetriesAllowed(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(g_throttle->retriesAllowed());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RetryThrottle_RetriesAllowed)
    ->Setup(setUpThrottle)
    ->Teardown(tearDownThrottle)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
