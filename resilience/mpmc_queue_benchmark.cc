// MpmcQueue microbenchmarks against a std::mutex + std::deque bounded queue (the baseline named
// in docs/benchmarks.md; SpscRing's benchmarks compare with it too, same binary):
//   *_PushPop                 one thread, push then pop: the uncontended cost of a round trip.
//   *_ProducerConsumer/threads:2   thread 0 produces, thread 1 consumes (an item per iteration).
//   *_ProducerConsumer/threads:4   2 producers, 2 consumers.
// Producers and consumers yield when the queue is full / empty, so that the benchmark also makes
// progress when threads share one core (taskset -c 1).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include <benchmark/benchmark.h>

#include "resilience/mpmc_queue.h"

namespace sluice::resilience {
namespace {

constexpr std::size_t kCapacity = 1024;

// The baseline: a bounded queue made of the obvious parts.
class MutexDequeQueue {
 public:
  explicit MutexDequeQueue(std::size_t capacity) : capacity_(capacity) {}
  bool tryPush(std::uint64_t v) {
    const std::lock_guard lock(mutex_);
    if (items_.size() == capacity_) {
      return false;
    }
    items_.push_back(v);
    return true;
  }
  std::optional<std::uint64_t> tryPop() {
    const std::lock_guard lock(mutex_);
    if (items_.empty()) {
      return std::nullopt;
    }
    const std::uint64_t v = items_.front();
    items_.pop_front();
    return v;
  }

 private:
  std::mutex mutex_;
  std::deque<std::uint64_t> items_;
  std::size_t capacity_;
};

// Google Benchmark's naming convention (BM_*) and its `for (auto _ : state)` idiom.
// NOLINTBEGIN(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)
template <typename Queue>
void pushPop(benchmark::State& state, Queue& queue) {
  std::uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(queue.tryPush(i++));
    auto v = queue.tryPop();
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}

// Even thread indices produce, odd ones consume; every thread moves one item per iteration, so
// producers and consumers finish together.
template <typename Queue>
void producerConsumer(benchmark::State& state, Queue& queue) {
  const bool producer = state.thread_index() % 2 == 0;
  std::uint64_t i = 0;
  for (auto _ : state) {
    if (producer) {
      while (!queue.tryPush(i)) {
        std::this_thread::yield();
      }
      ++i;
    } else {
      while (true) {
        auto v = queue.tryPop();
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

void BM_MutexDeque_PushPop(benchmark::State& state) {
  MutexDequeQueue queue(kCapacity);
  pushPop(state, queue);
}
BENCHMARK(BM_MutexDeque_PushPop);

void BM_MpmcQueue_PushPop(benchmark::State& state) {
  MpmcQueue<std::uint64_t> queue({.capacity = kCapacity});
  pushPop(state, queue);
}
BENCHMARK(BM_MpmcQueue_PushPop);

void BM_MutexDeque_ProducerConsumer(benchmark::State& state) {
  static MutexDequeQueue queue(kCapacity);
  producerConsumer(state, queue);
}
BENCHMARK(BM_MutexDeque_ProducerConsumer)->Threads(2)->Threads(4)->UseRealTime();

void BM_MpmcQueue_ProducerConsumer(benchmark::State& state) {
  static MpmcQueue<std::uint64_t> queue({.capacity = kCapacity});
  producerConsumer(state, queue);
}
BENCHMARK(BM_MpmcQueue_ProducerConsumer)->Threads(2)->Threads(4)->UseRealTime();

// NOLINTEND(readability-identifier-naming,clang-analyzer-deadcode.DeadStores)

}  // namespace
}  // namespace sluice::resilience
