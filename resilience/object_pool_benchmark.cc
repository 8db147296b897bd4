// ObjectPool microbenchmarks: acquire + give back of a 4 KiB buffer, 1 and 2 threads, against
//   * the baseline named in docs/benchmarks.md: no pool, std::make_unique_for_overwrite (new and
//     delete of uninitialised storage - what a pool saves) and std::make_unique (the same plus
//     zeroing 4 KiB, what a careful caller pays without a pool);
//   * the alternative implementation the pool was chosen against: a std::mutex-guarded vector
//     (LIFO), same bound, same reset hook.
// Each iteration holds one buffer at a time per thread and touches one byte of it, so that the
// compiler cannot drop the allocation.
#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "resilience/object_pool.h"

namespace sluice::resilience {
namespace {

struct Buffer4K {
  std::size_t used = 0;
  std::array<char, 4096 - sizeof(std::size_t)> bytes;  // NOLINT: uninitialised on purpose
};
static_assert(sizeof(Buffer4K) == 4096);

constexpr std::size_t kPoolIdle = 64;

// The candidate not taken: the obvious bounded pool, a mutex around a vector of idle objects.
class MutexVectorPool {
 public:
  explicit MutexVectorPool(std::size_t max_idle) : max_idle_(max_idle) { idle_.reserve(max_idle); }
  std::unique_ptr<Buffer4K> acquire() {
    {
      const std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        std::unique_ptr<Buffer4K> out = std::move(idle_.back());
        idle_.pop_back();
        return out;
      }
    }
    return std::make_unique_for_overwrite<Buffer4K>();
  }
  void giveBack(std::unique_ptr<Buffer4K> buffer) {
    buffer->used = 0;
    const std::lock_guard lock(mutex_);
    if (idle_.size() < max_idle_) {
      idle_.push_back(std::move(buffer));
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Buffer4K>> idle_;
  std::size_t max_idle_;
};

void touch(Buffer4K& buffer) {
  buffer.bytes[buffer.used] = 1;
  ++buffer.used;
  benchmark::DoNotOptimize(buffer);
}

// Google Benchmark's naming convention (BM_*) and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void BM_NoPool_MakeUniqueForOverwrite4K(benchmark::State& state) {
  for (auto _ : state) {
    auto buffer = std::make_unique_for_overwrite<Buffer4K>();
    buffer->used = 0;
    touch(*buffer);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NoPool_MakeUniqueForOverwrite4K)->Threads(1)->Threads(2)->UseRealTime();

void BM_NoPool_MakeUnique4K(benchmark::State& state) {
  for (auto _ : state) {
    auto buffer = std::make_unique<Buffer4K>();
    touch(*buffer);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NoPool_MakeUnique4K)->Threads(1)->Threads(2)->UseRealTime();

void BM_MutexVectorPool_AcquireRelease4K(benchmark::State& state) {
  static MutexVectorPool pool(kPoolIdle);
  for (auto _ : state) {
    auto buffer = pool.acquire();
    touch(*buffer);
    pool.giveBack(std::move(buffer));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MutexVectorPool_AcquireRelease4K)->Threads(1)->Threads(2)->UseRealTime();

void BM_ObjectPool_AcquireRelease4K(benchmark::State& state) {
  static ObjectPool<Buffer4K> pool(
      {.max_idle = kPoolIdle}, [] { return std::make_unique_for_overwrite<Buffer4K>(); },
      [](Buffer4K& b) { b.used = 0; });
  for (auto _ : state) {
    auto buffer = pool.acquire();
    touch(*buffer);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ObjectPool_AcquireRelease4K)->Threads(1)->Threads(2)->UseRealTime();

// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
