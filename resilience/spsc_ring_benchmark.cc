// SpscRing microbenchmarks. The baseline (std::mutex + std::deque) is in mpmc_queue_benchmark.cc
// in the same binary: compare BM_SpscRing_PushPop with BM_MutexDeque_PushPop and
// BM_SpscRing_ProducerConsumer/threads:2 with BM_MutexDeque_ProducerConsumer/threads:2.
#include <cstddef>
#include <cstdint>
#include <thread>

#include <benchmark/benchmark.h>

#include "resilience/spsc_ring.h"

namespace sluice::resilience {
namespace {

constexpr std::size_t kCapacity = 1024;

// Google Benchmark's naming convention (BM_*) and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
void BM_SpscRing_PushPop(benchmark::State& state) {
  SpscRing<std::uint64_t> ring({.capacity = kCapacity});
  std::uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ring.tryPush(i++));
    auto v = ring.tryPop();
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpscRing_PushPop);

// Thread 0 produces, thread 1 consumes, one item per iteration each; both yield when the ring is
// full / empty so that the run progresses on a single core too.
void BM_SpscRing_ProducerConsumer(benchmark::State& state) {
  static SpscRing<std::uint64_t> ring({.capacity = kCapacity});
  const bool producer = state.thread_index() == 0;
  std::uint64_t i = 0;
  for (auto _ : state) {
    if (producer) {
      while (!ring.tryPush(i)) {
        std::this_thread::yield();
      }
      ++i;
    } else {
      while (true) {
        auto v = ring.tryPop();
        if (v) {
          benchmark::DoNotOptimize(v);
          break;
        }
        std::this_thread::yield();
      }
    }
  }
  // Items transferred: counted once, on the consuming side.
  state.SetItemsProcessed(producer ? 0 : state.iterations());
}
BENCHMARK(BM_SpscRing_ProducerConsumer)->Threads(2)->UseRealTime();

// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
