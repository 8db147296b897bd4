// Semaphore microbenchmarks: tryAcquire()+release() uncontended and with 2 threads contending,
// against a std::mutex-based counting semaphore (the baseline named in docs/benchmarks.md) and,
// for reference, C++20 std::counting_semaphore::try_acquire().
#include <cstddef>
#include <mutex>
#include <semaphore>

#include <benchmark/benchmark.h>

#include "resilience/semaphore.h"

namespace sluice::resilience {
namespace {

// Capacity high enough that no attempt fails: the benchmarks measure the cost of an admission and
// its release, and, with two threads, the cache-line contention on the shared state.
constexpr std::size_t kCapacity = 64;

// The baseline: the obvious counting semaphore, one mutex around a counter.
class MutexSemaphore {
 public:
  explicit MutexSemaphore(std::size_t capacity) : available_(capacity) {}
  bool tryAcquire() {
    const std::lock_guard lock(mutex_);
    if (available_ == 0) {
      return false;
    }
    --available_;
    return true;
  }
  void release() {
    const std::lock_guard lock(mutex_);
    ++available_;
  }

 private:
  std::mutex mutex_;
  std::size_t available_;
};

// Google Benchmark's naming convention (BM_*) and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void BM_MutexSemaphore_TryAcquireRelease(benchmark::State& state) {
  static MutexSemaphore sem(kCapacity);
  for (auto _ : state) {
    const bool ok = sem.tryAcquire();
    benchmark::DoNotOptimize(ok);
    if (ok) {
      sem.release();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MutexSemaphore_TryAcquireRelease)->Threads(1)->Threads(2)->UseRealTime();

void BM_StdCountingSemaphore_TryAcquireRelease(benchmark::State& state) {
  static std::counting_semaphore<> sem(static_cast<std::ptrdiff_t>(kCapacity));
  for (auto _ : state) {
    const bool ok = sem.try_acquire();
    benchmark::DoNotOptimize(ok);
    if (ok) {
      sem.release();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StdCountingSemaphore_TryAcquireRelease)->Threads(1)->Threads(2)->UseRealTime();

void BM_Semaphore_TryAcquireRelease(benchmark::State& state) {
  static Semaphore sem({.capacity = kCapacity, .max_waiters = 16});
  for (auto _ : state) {
    Semaphore::Permit permit = sem.tryAcquire();
    benchmark::DoNotOptimize(permit);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Semaphore_TryAcquireRelease)->Threads(1)->Threads(2)->UseRealTime();

// The slow path: a permit released while a waiter is queued is handed to the waiter's callback
// (lock, grant, unlock, invoke); includes queueing the waiter (one allocation).
void BM_Semaphore_QueuedHandOff(benchmark::State& state) {
  Semaphore sem({.capacity = 1, .max_waiters = 16});
  Semaphore::Permit held = sem.tryAcquire();
  for (auto _ : state) {
    auto r = sem.acquireAsync([&held](Semaphore::Permit p) { held = std::move(p); });
    benchmark::DoNotOptimize(r.status);
    held.release();  // grants the waiter, whose callback stores the permit back in `held`
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Semaphore_QueuedHandOff);

// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
