// WeightedSemaphore microbenchmarks: tryAcquire(n)+release uncontended and with 2 threads
// contending, against a std::mutex-based weighted counting semaphore in the same run (and see
// semaphore_benchmark.cc for the unit-weight baseline).
#include <cstddef>
#include <mutex>

#include <benchmark/benchmark.h>

#include "resilience/weighted_semaphore.h"

namespace sluice::resilience {
namespace {

constexpr std::size_t kCapacity = 1024;  // never exhausted: measures admission + release cost
constexpr std::size_t kWeight = 3;

class MutexWeightedSemaphore {
 public:
  explicit MutexWeightedSemaphore(std::size_t capacity) : available_(capacity) {}
  bool tryAcquire(std::size_t n) {
    const std::lock_guard lock(mutex_);
    if (available_ < n) {
      return false;
    }
    available_ -= n;
    return true;
  }
  void release(std::size_t n) {
    const std::lock_guard lock(mutex_);
    available_ += n;
  }

 private:
  std::mutex mutex_;
  std::size_t available_;
};

// Google Benchmark's naming convention (BM_*) and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void BM_MutexWeightedSemaphore_TryAcquireRelease(benchmark::State& state) {
  static MutexWeightedSemaphore sem(kCapacity);
  for (auto _ : state) {
    const bool ok = sem.tryAcquire(kWeight);
    benchmark::DoNotOptimize(ok);
    if (ok) {
      sem.release(kWeight);
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MutexWeightedSemaphore_TryAcquireRelease)->Threads(1)->Threads(2)->UseRealTime();

void BM_WeightedSemaphore_TryAcquireRelease(benchmark::State& state) {
  static WeightedSemaphore sem({.capacity = kCapacity, .max_waiters = 16});
  for (auto _ : state) {
    WeightedSemaphore::Permit permit = sem.tryAcquire(kWeight);
    benchmark::DoNotOptimize(permit);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WeightedSemaphore_TryAcquireRelease)->Threads(1)->Threads(2)->UseRealTime();

// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
